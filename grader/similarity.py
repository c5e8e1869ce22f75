"""Find pairs of submissions whose own code is suspiciously alike.

Whole-notebook comparison flags everyone (the shared starter dominates), so only the student's own
code is compared: the filled-in `#todo` blocks and the bodies of the rubric's functions, with every
line that also appears in the starter removed. Code is tokenized with the stdlib tokenizer and
identifiers are renamed in order of first use (`v1`, `v2`, ...), so renaming variables or reformatting
does not hide a copy; attribute names (`torch.softmax`) and keywords are kept, because they carry the
method. Regions are compared with difflib's SequenceMatcher (stdlib, well kept); a cheap shingle
overlap runs first so a 300-student class does not cost 45,000 SequenceMatcher calls.
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

    Students whose normalised code is identical form one group and are compared as one: a copy
    shared by many students would otherwise cost every pair of them a comparison, and tokenizing
    (the stdlib tokenizer is pure Python before 3.12) is done once per distinct piece of code."""
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
    reps = [members[0] for members in groups.values()]
    members = {m[0]: m for m in groups.values()}
    shingles = {s: set().union(*(_shingles(t) | {(r,)} for r, t in norm[s].items())) for s in reps}
    pairs: list[Pair] = []
    cache: dict[tuple, float] = {}
    for rep in reps:                       # copies of one another: identical once normalised
        group = members[rep]
        pairs += [_compare(a, b, norm, codes, cache) for i, a in enumerate(group) for b in group[i + 1:]]
    for i, a in enumerate(reps):
        for b in reps[i + 1:]:
            sa, sb = shingles[a], shingles[b]
            if len(sa & sb) / max(1, min(len(sa), len(sb))) < PREFILTER:
                continue
            p = _compare(a, b, norm, codes, cache)
            if p is not None and p.similarity >= threshold:
                pairs += [_compare(*sorted((x, y)), norm, codes, cache) for x in members[a] for y in members[b]]
    pairs = [p for p in pairs if p is not None and p.similarity >= threshold]
    pairs.sort(key=lambda p: (-p.similarity, -p.tokens, p.a, p.b))
    return pairs[:MAX_PAIRS], len(pairs)


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
            ratio = cache[key] = difflib.SequenceMatcher(None, ta, tb, autojunk=False).ratio()
        weight = (len(ta) + len(tb)) / 2
        total += weight
        matched += ratio * weight
        regions.append((r, codes[a][r], codes[b][r], round(ratio, 3)))
    if total < MIN_SHARED_TOKENS:
        return None
    return Pair(a, b, round(matched / total, 3), int(total), tuple(regions))
