"""Find pairs of submissions whose own code is suspiciously alike.

Whole-notebook comparison flags everyone (the shared starter dominates), so only the student's own
code is compared: the filled-in `#todo` blocks and the bodies of the rubric's functions, with every
line that also appears in the starter removed. Code is tokenized with the stdlib tokenizer and
identifiers are renamed in order of first use (`v1`, `v2`, ...), so renaming variables or reformatting
does not hide a copy; attribute names (`torch.softmax`) and keywords are kept, because they carry the
method. Regions are compared with difflib's SequenceMatcher (stdlib, well kept); a cheap shingle
overlap runs first so a 300-student class does not cost 45,000 SequenceMatcher calls.

What it costs (`find_pairs`): the SequenceMatcher calls grow with the pairs of distinct codes of a
region that overlap (a class writes each region in far fewer ways than it has students), and
the rest is array work over every pair of distinct students, one student's row at a time: about
0.4 s for the 200-student bench class and 1.8 s for 2000 (`bench/bench_similarity.py`). Memory:
two float64 matrices per region, of its distinct codes squared (16 variants: nothing; 2000 distinct
codes of a region: 64 MB while that class is compared).
"""
from __future__ import annotations

import builtins
import difflib
import functools
import io
import keyword
import tokenize
from dataclasses import dataclass
from pathlib import Path

from .model import GradeResult

MIN_REGION_TOKENS = 12      # `y = x @ w` can be written only one way: short regions prove nothing
MIN_SHARED_TOKENS = 60      # a pair must have this much of its own code in common to be judged
THRESHOLD = 0.9             # similarity at which a pair is listed
PREFILTER = 0.5             # shingle overlap below which a pair cannot reach THRESHOLD in practice
SHINGLE = 5
MAX_PAIRS = 100             # listed in the summary; the count says how many more there were

_KEEP = set(keyword.kwlist) | set(dir(builtins))


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    similarity: float
    tokens: int                         # tokens compared
    regions: tuple[tuple[str, str, str, float], ...]   # (region, code of a, code of b, similarity)


@functools.lru_cache(maxsize=8)
def starter_lines(paths: tuple[str, ...]) -> frozenset[str]:
    """Every stripped line of the starter files: these are the instructor's, not the student's.
    Read once per process (loading a notebook costs ~0.1 s)."""
    from .load import load_submission
    lines: set[str] = set()
    for p in paths:
        try:
            sub = load_submission(Path(p))
        except Exception:      # a missing starter only makes the comparison stricter, never wrong
            continue
        for c in sub.code_cells:
            lines.update(l.strip() for l in c.source.splitlines())
    lines.discard("")
    return frozenset(lines)


def own_code(result: GradeResult, functions: frozenset[str], starter: frozenset[str]) -> dict[str, str]:
    """region -> the student's own lines in it. Regions are named by their #todo or function so the
    same question is compared with the same question."""
    out: dict[str, str] = {}
    if result.layout is None:
        return out
    for b in result.layout.blocks:
        named = sorted(b.defines & functions)
        if named:
            region = "def " + named[0]
        elif b.todo is not None and not b.blank:
            # bilingual todos ("计算… / compute …") may come with one language only: key on the first
            region = "#todo " + b.todo.split(" / ")[0].strip()
        else:
            continue
        lines = [l for l in b.source.splitlines() if l.strip() and l.strip() not in starter
                 and not l.strip().startswith("#")]
        if lines:
            out[region] = (out.get(region, "") + "\n" + "\n".join(lines)).strip("\n")
    return out


def normalise(code: str) -> tuple[str, ...]:
    """Tokens with identifiers renamed by order of first use; comments and layout dropped."""
    names: dict[str, str] = {}
    out: list[str] = []
    prev = ""
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(_dedent(code)).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        toks = []
    for t in toks:
        if t.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                      tokenize.ENDMARKER):
            continue
        s = t.string
        if t.type == tokenize.NAME and s not in _KEEP and prev != ".":
            s = names.setdefault(s, f"v{len(names) + 1}")
        elif t.type == tokenize.STRING:
            s = "STR"
        out.append(s)
        prev = t.string
    if not out and code.strip():        # untokenizable: fall back to whitespace-split words
        out = code.split()
    return tuple(out)


def _dedent(code: str) -> str:
    # Lines of a function body come without their `def`: strip the common indent so it tokenizes.
    import textwrap
    return textwrap.dedent(code) + "\n"


def _shingles(tokens: tuple[str, ...]) -> set:
    return {tokens[i:i + SHINGLE] for i in range(max(1, len(tokens) - SHINGLE + 1))}


def find_pairs(codes: dict[str, dict[str, str]], threshold: float = THRESHOLD) -> tuple[list[Pair], int]:
    """codes: student -> region -> own code. Returns (the most similar pairs, how many pairs passed).

    A pair's similarity is the token-weighted mean, over the regions both wrote, of the two codes'
    SequenceMatcher ratio (`code_ratio`). Students whose normalised code is identical form one
    group, scored as one (`_scored`); only the listed pairs are built as `Pair`s (`_listed`)."""
    tokens: dict[str, tuple[str, ...]] = {}
    for regions in codes.values():
        for c in regions.values():
            if c not in tokens:
                tokens[c] = normalise(c)
    norm = {s: {r: tokens[c] for r, c in regions.items()} for s, regions in codes.items()}
    norm = {s: {r: t for r, t in regions.items() if len(t) >= MIN_REGION_TOKENS} for s, regions in norm.items()}
    groups: dict[tuple, list[str]] = {}
    for s in sorted(norm):
        if sum(map(len, norm[s].values())) >= MIN_SHARED_TOKENS:
            groups.setdefault(tuple(sorted(norm[s].items())), []).append(s)
    members = list(groups.values())
    # (similarity, tokens, group a, group b); a == b: the pairs inside one group of identical copies
    found = [(1.0, sum(map(len, norm[g[0]].values())), k, k) for k, g in enumerate(members) if len(g) > 1]
    found += _scored([norm[g[0]] for g in members], threshold)
    count = sum(len(members[a]) * len(members[b]) if a != b else len(members[a]) * (len(members[a]) - 1) // 2
                for _, _, a, b in found)
    return _listed(found, members, norm, codes), count


def code_ratio(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """difflib's ratio, taken in one fixed order of the two codes: SequenceMatcher is not symmetric
    (its junk and longest-match choices follow its first argument), and a pair's similarity must
    not depend on which student's name sorts first."""
    a, b = min(a, b), max(a, b)
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _scored(students: list[dict[str, tuple]], threshold: float) -> list[tuple[float, int, int, int]]:
    """(similarity, tokens, a, b) of every pair of these (distinct) students at or above threshold.

    Only pairs whose shingles overlap at least PREFILTER are judged: below that a pair cannot reach
    THRESHOLD in practice. A shingle belongs to its region, so the shingles two students share are
    the sum over regions of what their two codes share: counted once per pair of distinct codes of
    a region (`_shared_shingles`), however many students wrote them. Every pair of students is then
    filtered and scored with array operations, one student's row at a time."""
    import numpy as np      # not at import: a batch imports this module before its sandboxes boot
    n = len(students)
    regions = sorted({r for s in students for r in s})
    if n < 2 or not regions:
        return []
    local = np.zeros((n, len(regions)), dtype=np.int64)      # each student's code of each region, numbered
    length = np.zeros((n, len(regions)), dtype=np.float64)   # its token count (0: not written)
    variants: list[list[tuple]] = []
    for k, r in enumerate(regions):
        seen: dict[tuple, int] = {}
        for i, s in enumerate(students):
            if r in s:
                local[i, k], length[i, k] = seen.setdefault(s[r], len(seen)), len(s[r])
        variants.append(list(seen) + [()])       # the last: "not written", which shares nothing
        local[length[:, k] == 0, k] = len(seen)
    shared = [_shared_shingles(v) for v in variants]
    # the regions' matrices end to end: region k's entry (x, y) is at starts[k] + x * sizes[k] + y
    sizes = np.array([len(v) for v in variants])
    starts = np.concatenate(([0], np.cumsum(sizes * sizes)[:-1]))
    flat = np.concatenate([m.ravel() for m in shared])
    own = flat[starts + local * sizes + local].sum(axis=1)     # each student's own shingle count
    # each region's ratios likewise, computed the first time a pair of students needs them (NaN: not yet)
    ratio = np.full(len(flat), np.nan)
    found = []
    for i in range(n - 1):
        common = flat[starts + local[i] * sizes + local[i + 1:]].sum(axis=1)
        near = np.nonzero(common / np.maximum(1.0, np.minimum(own[i], own[i + 1:])) >= PREFILTER)[0] + i + 1
        if not len(near):
            continue
        at = starts + local[i] * sizes + local[near]
        for where in np.unique(at[np.isnan(ratio[at])]).tolist():
            k = int(np.searchsorted(starts, where, side="right")) - 1
            x, y = divmod(where - int(starts[k]), int(sizes[k]))
            v = variants[k]
            ratio[where] = 1.0 if x == y else code_ratio(v[x], v[y]) if v[x] and v[y] else 0.0
        la, lb = length[i], length[near]
        weight = np.where((la > 0) & (lb > 0), (la + lb) / 2, 0.0)
        total = weight.sum(axis=1)
        similarity = np.round((weight * ratio[at]).sum(axis=1) / np.maximum(total, 1.0), 3)
        for j in np.nonzero((total >= MIN_SHARED_TOKENS) & (similarity >= threshold))[0].tolist():
            found.append((float(similarity[j]), int(total[j]), i, int(near[j])))
    return found


def _shared_shingles(variants: list[tuple]) -> "np.ndarray":
    """How many shingles (and the region itself, counted as one) each pair of a region's codes has
    in common: a row per code, counted from the other codes holding each of its shingles (an
    inverted index, one bincount a row). A region written a thousand ways costs its shared
    shingles, not a million set intersections. The empty code shares nothing, not even the region."""
    import numpy as np
    holders: dict[tuple, list[int]] = {}
    own = [(_shingles(t) | {("<region>",)}) if t else set() for t in variants]
    for v, got in enumerate(own):
        for sh in got:
            holders.setdefault(sh, []).append(v)
    index = {sh: np.array(vs) for sh, vs in holders.items()}
    shared = np.zeros((len(variants), len(variants)))
    for v, got in enumerate(own):
        if got:
            shared[v] = np.bincount(np.concatenate([index[sh] for sh in got]), minlength=len(variants))
    return shared


def _listed(found, members: list[list[str]], norm, codes) -> list[Pair]:
    """The MAX_PAIRS pairs of students to list, in order (most similar, then most code, then
    names), built from the scored pairs of groups: a group pair stands for every pair of its
    members, which are expanded only as far as the list reaches."""
    found = sorted(found, key=lambda f: (-f[0], -f[1]))
    chosen: list[tuple] = []
    for sim, tok, a, b in found:
        if len(chosen) >= MAX_PAIRS and (-sim, -tok) > (-chosen[-1][0], -chosen[-1][1]):
            break
        chosen += [(sim, tok) + tuple(sorted((x, y))) for x in members[a] for y in members[b] if a != b or x < y]
        chosen.sort(key=lambda c: (-c[0], -c[1], c[2], c[3]))
        del chosen[MAX_PAIRS:]
    cache: dict[tuple, float] = {}
    return [_compare(x, y, norm, codes, cache) for _, _, x, y in chosen]


def pair_by_pair(codes: dict[str, dict[str, str]]) -> list[Pair]:
    """`find_pairs`' definition, one pair at a time and slowly (quadratic in Python): every pair of
    eligible students whose code is identical or whose region-tagged shingles overlap at least
    PREFILTER, judged by `_compare`; all of them, in the listed order. What the fast path must
    equal: tests/test_similarity.py and bench/bench_similarity.py check it."""
    norm = {k: {r: normalise(c) for r, c in regions.items()} for k, regions in codes.items()}
    norm = {k: {r: t for r, t in regions.items() if len(t) >= MIN_REGION_TOKENS} for k, regions in norm.items()}
    eligible = sorted(k for k in norm if sum(map(len, norm[k].values())) >= MIN_SHARED_TOKENS)
    shingles = {k: set().union(*({(r,) + x for x in _shingles(t)} | {(r,)} for r, t in norm[k].items()))
                for k in eligible}
    found, cache = [], {}
    for i, a in enumerate(eligible):
        for b in eligible[i + 1:]:
            sa, sb = shingles[a], shingles[b]
            if norm[a] != norm[b] and len(sa & sb) / max(1, min(len(sa), len(sb))) < PREFILTER:
                continue
            p = _compare(a, b, norm, codes, cache)
            if p is not None and p.similarity >= THRESHOLD:
                found.append(p)
    return sorted(found, key=lambda p: (-p.similarity, -p.tokens, p.a, p.b))


def _compare(a: str, b: str, norm, codes, cache) -> Pair | None:
    common = sorted(set(norm[a]) & set(norm[b]))
    total = matched = 0.0
    regions = []
    for r in common:
        ta, tb = norm[a][r], norm[b][r]
        key = (ta, tb)
        if ta == tb:
            ratio = 1.0
        elif key in cache:
            ratio = cache[key]
        else:       # identical copies are common in a class: the cache spares recomputing their pairs
            ratio = cache[key] = code_ratio(ta, tb)
        weight = (len(ta) + len(tb)) / 2
        total += weight
        matched += ratio * weight
        regions.append((r, codes[a][r], codes[b][r], round(ratio, 3)))
    if total < MIN_SHARED_TOKENS:
        return None
    return Pair(a, b, round(matched / total, 3), int(total), tuple(regions))
