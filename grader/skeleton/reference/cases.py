"""Test-case generators, one per function item: `<item>(seed, public) -> list[dict]`.

Each case is {"id", "about": {"zh", "en"}, "args": [...], "kwargs": {...}}, and passes exactly what
the item's [items.signature] declares (here one float32 tensor x of shape (N, D)).
public=True (the public seed): hand-worked and edge cases with meaningful ids, then a few random
ones; their values go into the students' pack. public=False (a hidden seed): random cases drawn
from that seed, plus an edge case or two. Deterministic per (seed, public): a private
torch.Generator, never the global one.

What the cases avoid: a row of zeros (0/0: NaN, or 0 with an eps, both defensible).
"""
from __future__ import annotations

import zlib

import torch

HIDDEN_RANDOM = 4      # random cases per hidden seed


def _case(id: str, zh: str, en: str, *args, **kwargs) -> dict:
    return {"id": id, "about": {"zh": zh, "en": en}, "args": list(args), "kwargs": kwargs}


def _rng(item: str, seed: int, public: bool) -> torch.Generator:
    # One stream per (item, seed, public); crc32, not hash(), which changes between processes.
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(item.encode()) + int(public))


def _randint(g: torch.Generator, low: int, high: int) -> int:
    """An int in [low, high]."""
    return int(torch.randint(low, high + 1, (1,), generator=g))


def _random(g: torch.Generator, id: str, N: int | None = None, D: int | None = None) -> dict:
    N = N if N is not None else _randint(g, 2, 6)
    D = D if D is not None else _randint(g, 2, 6)
    about = f"N={N}, D={D}"
    return _case(id, "随机：" + about, "random: " + about, torch.randn(N, D, generator=g) * 3)


def normalize_rows(seed: int, public: bool) -> list[dict]:
    g = _rng("normalize_rows", seed, public)
    cases = []
    if public:
        cases.append(_case("hand-3-4-5", "手算：(3, 4) 的长度是 5，结果为 (0.6, 0.8)；(0, -2) 变为 (0, -1)",
                           "hand-worked: (3, 4) has length 5, so (0.6, 0.8); (0, -2) becomes (0, -1)",
                           torch.tensor([[3.0, 4.0], [0.0, -2.0]])))
        cases.append(_case("one-row", "只有一行：(1, 4)", "a single row: (1, 4)", torch.randn(1, 4, generator=g)))
        cases.append(_case("one-column", "只有一列：(5, 1)，每个结果都是 ±1", "a single column: (5, 1), every result is ±1",
                           torch.randn(5, 1, generator=g)))
        cases += [_random(g, f"random-{i}") for i in (1, 2)]
    else:
        cases += [_random(g, f"random-{i}") for i in range(1, HIDDEN_RANDOM + 1)]
        cases.append(_random(g, "one-row", N=1))
    return cases
