"""The similarity report: the class-wide fast path computes exactly the pair-by-pair definition,
and a pair's similarity does not depend on which student's name sorts first. No sandbox needed."""
import difflib
import random

from grader import similarity
from grader.similarity import code_ratio, find_pairs, normalise

# Two ways to write one block whose difflib ratio depends on the argument order (0.389 one way,
# 0.444 the other): SequenceMatcher's longest-match choices follow its first argument.
SPLIT = "Q = X @ W_Q\nK = X @ W_K\nV = X @ W_V"
COMPREHENSION = "Q, K, V = [X @ W for W in (W_Q, W_K, W_V)]"
SHARED = "\n".join(f"acc{i} = boxes[:, {i}] * scale + offset{i}" for i in range(12))


def test_code_ratio_is_symmetric_where_difflib_is_not():
    a, b = normalise(SPLIT), normalise(COMPREHENSION)
    one = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    other = difflib.SequenceMatcher(None, b, a, autojunk=False).ratio()
    assert round(one, 3) != round(other, 3)          # the trap is real
    assert code_ratio(a, b) == code_ratio(b, a) in (one, other)


def test_pair_similarity_does_not_depend_on_names():
    pairs = {}
    for first, second in (("ann", "bob"), ("bob", "ann")):
        codes = {first: {"#todo qkv": SPLIT, "def f": SHARED}, second: {"#todo qkv": COMPREHENSION, "def f": SHARED}}
        got, n = find_pairs(codes, threshold=0.0)
        assert n == 1
        pairs[first] = got[0].similarity
    assert pairs["ann"] == pairs["bob"]


def _variants(region: int, k: int) -> str:
    """Region `region`'s k-th way of being written: kin to the others, not the same."""
    lines = [f"r{region}_{i} = torch.clamp(x[:, {i}] * w{i}, min=0) + b{i}" for i in range(6 + region)]
    rng = random.Random(region * 100 + k)
    for _ in range(k):          # each variant edits a few lines of the shared base
        i = rng.randrange(len(lines))
        lines[i] = rng.choice([f"t{k} = x.sum(dim={i % 2})", lines[i].replace("clamp", "relu"), lines[i] + " * 2"])
    return "\n".join(lines)


def test_fast_path_is_the_pair_by_pair_definition(monkeypatch):
    """A class of 150 built from a few ways to write each of four regions (some students skip a
    region, some are identical copies): every pair and the count, exactly."""
    rng = random.Random(7)
    codes = {}
    for n in range(150):
        codes[f"s{rng.randrange(10**6):06d}"] = {f"region {r}": _variants(r, rng.randrange(5))
                                                for r in range(4) if rng.random() > 0.1}
    monkeypatch.setattr(similarity, "MAX_PAIRS", 10**6)
    expected = similarity.pair_by_pair(codes)
    got, n = find_pairs(codes)
    assert 200 < n == len(expected) < 150 * 149 // 2       # neither nothing nor everything
    assert got == expected
    monkeypatch.setattr(similarity, "MAX_PAIRS", 25)       # the listed head is the same head
    head, n_head = find_pairs(codes)
    assert n_head == n and head == expected[:25]
