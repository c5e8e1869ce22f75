"""Test-case generators, one per function item: `<item>(seed, public) -> list[dict]`.

Each case is {"id", "about": {"zh", "en"}, "args": [...], "kwargs": {...}}.
public=True (the public seed): hand-worked edge cases, then a few random ones from the seed.
public=False (a hidden seed): random cases from torch.Generator(seed), with a few edge shapes.

Every case avoids what the reference semantics leave open (README.md): no fully masked query
rows, no score ties in NMS, dyadic thresholds where an IoU equals the threshold, no pair of
zero-area boxes in IoU, |dw|, |dh| < log(1000/16), power-of-two scales in roi_pool.

Every case also passes exactly what the starter documents, and nothing else: the argument kinds
are declared once, in the rubric's `[items.signature]` tables, and `grade.py validate` checks every
case of every seed against them (an `int` output_size where the starter says `(h, w)` cost students
who unpacked it, as documented, half of roi_pool).
"""
from __future__ import annotations

import math
import zlib

import torch

from . import attention as _attention
from . import boxes as _boxes

F32 = torch.float32
# Random cases per hidden seed and function, beside the hidden edge cases. Measured: every known
# mistake (mistakes.py) already fails on the first 3 of each hidden seed alone (a test keeps it
# so); 8 made every submission run 58 more calls that decided nothing new.
HIDDEN_RANDOM = 4


def _case(id: str, zh: str, en: str, *args, **kwargs) -> dict:
    return {"id": id, "about": {"zh": zh, "en": en}, "args": list(args), "kwargs": kwargs}


def _rng(item: str, seed: int, public: bool) -> torch.Generator:
    # One stream per (item, seed, public); crc32, not hash(), which changes between processes.
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(item.encode()) + int(public))


def _t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=F32)


def _randint(g, low: int, high: int) -> int:
    """An int in [low, high]."""
    return int(torch.randint(low, high + 1, (1,), generator=g))


def _choice(g, options):
    return options[_randint(g, 0, len(options) - 1)]


# --- attention ---------------------------------------------------------------------------------

def _random_mask(g, shape) -> torch.Tensor:
    """A bool mask that leaves at least one key (True) in every query row."""
    mask = torch.rand(shape, generator=g) < 0.6
    keep = torch.randint(shape[-1], (*shape[:-1], 1), generator=g)
    return mask.scatter(-1, keep, True)


def _random_sdpa(g, id: str) -> dict:
    batch = _choice(g, [(), (2,), (2, 3)])
    n_q, n_k = _randint(g, 1, 6), _randint(g, 1, 6)
    d = _choice(g, [2, 4, 8, 16])
    d_v = _choice(g, [1, 3, 5, d])
    Q = torch.randn(*batch, n_q, d, generator=g)
    K = torch.randn(*batch, n_k, d, generator=g)
    V = torch.randn(*batch, n_k, d_v, generator=g)
    kind = _choice(g, ["none", "full", "keys", "causal"])
    if kind == "causal" and n_q == n_k:
        mask = _attention.causal_mask(n_q)
    elif kind == "keys":   # key-padding style: one row of keys broadcast over every query
        mask = _random_mask(g, (*batch, 1, n_k))
    elif kind in ("full", "causal"):
        mask = _random_mask(g, (*batch, n_q, n_k))
    else:
        mask = None
    about = f"batch {batch}, n_q={n_q}, n_k={n_k}, d={d}, d_v={d_v}, mask: {kind if mask is not None else 'none'}"
    return _case(id, "随机：" + about, "random: " + about, Q, K, V, mask)


def scaled_dot_product_attention(seed: int, public: bool) -> list[dict]:
    g = _rng("scaled_dot_product_attention", seed, public)
    cases = []
    if public:
        # Integer entries and d = 4: the scores are exact (scale 1/2), so hand-checkable.
        Q = _t([[1, 0, 1, 0], [0, 2, 0, 0]])
        K = _t([[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 1, 1]])
        V = _t([[1, 0], [0, 1], [2, 2]])
        cases.append(_case("hand-2q-3k", "手算：2 个查询、3 个键，d=4，d_v=2（d_v ≠ d）",
                           "hand-worked: 2 queries, 3 keys, d=4, d_v=2 (d_v != d)", Q, K, V, None))
        cases.append(_case("zero-queries-uniform", "Q 全为 0：权重均匀，输出是 V 各行的平均",
                           "all-zero Q: uniform weights, the output is the mean of V's rows",
                           torch.zeros(2, 4), K, V, None))
        cases.append(_case("causal-mask", "因果掩码：第 i 个查询只能看到键 0..i",
                           "causal mask: query i sees keys 0..i only",
                           torch.randn(4, 4, generator=g), torch.randn(4, 4, generator=g),
                           torch.randn(4, 3, generator=g), _attention.causal_mask(4)))
        cases.append(_case("dv-differs-from-d", "d=8，d_v=3：缩放因子应为 sqrt(d)，不是 sqrt(d_v)",
                           "d=8, d_v=3: scale by sqrt(d), not sqrt(d_v)",
                           torch.randn(3, 8, generator=g), torch.randn(5, 8, generator=g),
                           torch.randn(5, 3, generator=g), None))
        cases.append(_case("mask-broadcast-keys", "批量输入 (2, 3, 4)，掩码形状 (2, 1, 5) 沿查询维广播",
                           "batched input (2, 3, 4), mask (2, 1, 5) broadcast over the queries",
                           torch.randn(2, 3, 4, generator=g), torch.randn(2, 5, 4, generator=g),
                           torch.randn(2, 5, 2, generator=g), _t([[[1, 1, 1, 0, 0]], [[1, 0, 1, 1, 0]]]).bool()))
        cases.append(_case("batched-heads-mask", "四维输入 (2, 3, 4, 8)，一个 (4, 4) 掩码广播到所有批次和头",
                           "4-d input (2, 3, 4, 8), one (4, 4) mask broadcast over batch and heads",
                           torch.randn(2, 3, 4, 8, generator=g), torch.randn(2, 3, 4, 8, generator=g),
                           torch.randn(2, 3, 4, 8, generator=g), _random_mask(g, (4, 4))))
        big = 4 * torch.randint(-10, 11, (3, 4), generator=g).float()   # integer scores from -520 to 300
        cases.append(_case("large-scores", "得分很大（-520 到 300，整数）：不减去行最大值时 exp(300) 上溢为 inf，inf / inf 得 NaN",
                           "large scores (-520 to 300, integers): without subtracting the row max, exp(300) overflows to inf and inf / inf is NaN",
                           big, 10 * torch.randint(-1, 2, (4, 4), generator=g).float(),
                           torch.randn(4, 2, generator=g), None))
        cases.append(_case("softmax-overflow-underflow",
                           "数值稳定性：第 0 行得分 (300, 295, 0, 240)，exp 上溢；第 1 行得分全都很小 (-150, -155, -150, -120)，"
                           "exp 全部下溢为 0，0 / 0 得 NaN。应先减去每行最大值（或用 torch.softmax）",
                           "numerical stability: row 0 has scores (300, 295, 0, 240), where exp overflows; row 1's are all very "
                           "negative (-150, -155, -150, -120), where every exp underflows to 0 and 0 / 0 is NaN. Subtract "
                           "each row's max first (or use torch.softmax)",
                           _t([[10, 10, 10, 10], [-10, -10, -10, 10], [0, 6, 0, 0]]),
                           _t([[15, 15, 15, 15], [15, 15, 15, 14], [15, -15, 15, -15], [12, 12, 12, 12]]),
                           _t([[1, 0], [0, 1], [2, 2], [-1, 3]]), None))
        cases.append(_case("one-key", "只有一个键：权重全为 1，输出就是 V",
                           "a single key: every weight is 1 and the output is V",
                           torch.randn(3, 4, generator=g), torch.randn(1, 4, generator=g),
                           torch.randn(1, 5, generator=g), None))
        cases += [_random_sdpa(g, f"random-{i}") for i in range(1, 4)]
    else:
        cases.append(_case("single-query", "只有一个查询", "a single query",
                           torch.randn(1, 8, generator=g), torch.randn(4, 8, generator=g),
                           torch.randn(4, 2, generator=g), _random_mask(g, (1, 4))))
        cases += [_random_sdpa(g, f"random-{i}") for i in range(1, HIDDEN_RANDOM + 1)]
        cases.append(_large_scores_sdpa(g, "large-scores"))
    return cases


def _stability_factor(largest: float) -> int:
    """The integer f that brings the largest score to about 250-480 once Q and K (or X) are scaled by
    f, i.e. the scores by f**2: far past float32's exp overflow (about 88.7)."""
    return math.ceil(math.sqrt(250 / largest))


def _large_scores_sdpa(g, id: str) -> dict:
    """Integer Q and K scaled so that the largest score is 250 or more (and positive, so its row
    overflows in a softmax that does not subtract the row max). d is 4 or 16, so 1/sqrt(d) is a power
    of two and every score is exact whatever order a student computes it in."""
    while True:
        n_q, n_k = _randint(g, 2, 5), _randint(g, 2, 6)
        d = _choice(g, [4, 16])
        Q = torch.randint(-3, 4, (n_q, d), generator=g).float()
        K = torch.randint(-3, 4, (n_k, d), generator=g).float()
        raw = Q @ K.T / math.sqrt(d)
        if float(raw.abs().max()) > 0:
            break
    if float(raw.max()) < float(-raw.min()):
        Q, raw = -Q, -raw
    f = _stability_factor(float(raw.max()))
    V = torch.randn(n_k, _choice(g, [2, 3, d]), generator=g)
    top = float(raw.max()) * f * f
    about = f"n_q={n_q}, n_k={n_k}, d={d}, largest score {top:g}"
    return _case(id, "数值稳定性（随机）：" + about + "；不减去行最大值的 softmax 会溢出",
                 "numerical stability (random): " + about + "; a softmax that does not subtract the row max overflows",
                 Q * f, K * f, V, None)


def causal_mask(seed: int, public: bool) -> list[dict]:
    g = _rng("causal_mask", seed, public)
    if public:
        about = {1: ("单个位置：只能看自己", "one position: it sees itself only"),
                 2: ("两个位置", "two positions"),
                 3: ("三个位置：下三角（含对角线）", "three positions: lower triangle, diagonal included"),
                 5: ("五个位置（与 Part A 的序列长度相同）", "five positions (the length of Part A's sequence)"),
                 8: ("八个位置", "eight positions")}
        return [_case(f"n-{n}", zh, en, n) for n, (zh, en) in about.items()]
    sizes = sorted({1, *(_randint(g, 2, 16) for _ in range(5))})
    return [_case(f"n-{n}", f"n = {n}", f"n = {n}", n) for n in sizes]


def _mha_weights(g, d_model: int):
    # Scaled like a common initialisation so the scores stay moderate.
    return [torch.randn(d_model, d_model, generator=g) / math.sqrt(d_model) for _ in range(4)]


def _random_mha(g, id: str) -> dict:
    d_model, num_heads = _choice(g, [(4, 2), (6, 2), (6, 3), (8, 2), (8, 4), (12, 3), (12, 4), (16, 4)])
    n = _randint(g, 1, 7)
    causal = bool(_randint(g, 0, 1))
    X = torch.randn(n, d_model, generator=g)
    about = f"n={n}, d_model={d_model}, num_heads={num_heads}, causal={causal}"
    return _case(id, "随机：" + about, "random: " + about, X, *_mha_weights(g, d_model), num_heads, causal=causal)


def multi_head_attention(seed: int, public: bool) -> list[dict]:
    g = _rng("multi_head_attention", seed, public)
    cases = []
    if public:
        X = _t([[1, 0, 1, 0], [1, 2, 1, 0], [0, 1, 0, 1], [0, 1, 0, 0], [1, 0, 1, 0]])   # Part A's X
        eye = torch.eye(4)
        cases.append(_case("identity-weights-2-heads", "所有 W 为单位矩阵，2 个头：Q = K = V = X（Part A 的 X）",
                           "every W is the identity, 2 heads: Q = K = V = X (Part A's X)",
                           X, eye, eye, eye, eye, 2, causal=False))
        cases.append(_case("one-head", "1 个头：与单头注意力相同（缩放 sqrt(d_model)）",
                           "one head: plain attention (scaled by sqrt(d_model))",
                           X, *_mha_weights(g, 4), 1, causal=False))
        cases.append(_case("two-heads", "d_model=4，2 个头：每个头缩放 sqrt(2)", "d_model=4, 2 heads: each scaled by sqrt(2)",
                           X, *_mha_weights(g, 4), 2, causal=False))
        cases.append(_case("two-heads-causal", "2 个头并使用因果掩码", "2 heads with the causal mask",
                           X, *_mha_weights(g, 4), 2, causal=True))
        cases.append(_case("four-heads", "d_model=8，4 个头：头按连续的列切分", "d_model=8, 4 heads: heads are contiguous column chunks",
                           torch.randn(5, 8, generator=g), *_mha_weights(g, 8), 4, causal=False))
        cases.append(_case("single-token-causal", "只有一个词，因果掩码：每个头的权重都是 1",
                           "one token, causal: every head's weight is 1",
                           torch.randn(1, 6, generator=g), *_mha_weights(g, 6), 3, causal=True))
        cases += [_random_mha(g, f"random-{i}") for i in range(1, 3)]
        cases.append(_large_scores_mha(g, "large-scores", causal=False))
    else:
        cases += [_random_mha(g, f"random-{i}") for i in range(1, HIDDEN_RANDOM + 1)]
        cases.append(_large_scores_mha(g, "large-scores", causal=bool(_randint(g, 0, 1))))
    return cases


def _large_scores_mha(g, id: str, causal: bool) -> dict:
    """Integer X and weights, X scaled so that some head's largest (unmasked) score is 250 or more
    and positive: a per-head softmax that does not subtract the row max overflows. d_head is 4 or
    16, so every score is exact."""
    while True:
        d_model, num_heads = _choice(g, [(8, 2), (16, 4), (16, 1)])
        n = _randint(g, 2, 6)
        X = torch.randint(-2, 3, (n, d_model), generator=g).float()
        W = [torch.randint(-1, 2, (d_model, d_model), generator=g).float() for _ in range(4)]
        d_head = d_model // num_heads
        Q = (X @ W[0]).reshape(n, num_heads, d_head).transpose(0, 1)
        K = (X @ W[1]).reshape(n, num_heads, d_head).transpose(0, 1)
        raw = Q @ K.transpose(-2, -1) / math.sqrt(d_head)
        if causal:
            raw = raw[:, _attention.causal_mask(n)]
        if float(raw.abs().max()) > 0:
            break
    if float(raw.max()) < float(-raw.min()):
        W[0], raw = -W[0], -raw
    f = _stability_factor(float(raw.max()))
    top = float(raw.max()) * f * f
    about = f"n={n}, d_model={d_model}, num_heads={num_heads}, causal={causal}, largest score {top:g}"
    return _case(id, "数值稳定性：" + about + "；每个头的 softmax 都应先减去行最大值",
                 "numerical stability: " + about + "; each head's softmax must subtract the row max",
                 X * f, *W, num_heads, causal=causal)


# --- boxes -------------------------------------------------------------------------------------

def _random_boxes(g, n: int, span: float = 50.0, integer: bool = False) -> torch.Tensor:
    """n boxes with positive width and height (never zero-area)."""
    xy = torch.rand(n, 2, generator=g) * span
    wh = 1 + torch.rand(n, 2, generator=g) * (span / 2)
    if integer:
        xy, wh = xy.floor(), wh.floor()
    return torch.cat([xy, xy + wh], dim=1)


def box_iou(seed: int, public: bool) -> list[dict]:
    g = _rng("box_iou", seed, public)
    cases = []
    if public:
        a = _t([[0, 0, 2, 2]])
        cases.append(_case("no-overlap", "不相交：一个在对角方向，一个在右侧，IoU 为 0（交集宽高须截断为 0）",
                           "disjoint: one diagonal, one to the right; IoU 0 (clamp the intersection's width and height at 0)",
                           a, _t([[3, 3, 5, 5], [5, 0, 7, 2]])))
        cases.append(_case("identical-boxes", "两个相同的框：IoU 为 1", "two identical boxes: IoU 1",
                           _t([[1, 2, 5, 4]]), _t([[1, 2, 5, 4]])))
        cases.append(_case("contained", "小框在大框内：IoU = 4/16 = 0.25", "a box inside another: IoU = 4/16 = 0.25",
                           _t([[0, 0, 4, 4]]), _t([[1, 1, 3, 3]])))
        cases.append(_case("half-overlap", "重叠一半：IoU = 2/(4+4-2) = 1/3", "half overlapping: IoU = 2/(4+4-2) = 1/3",
                           a, _t([[1, 0, 3, 2]])))
        cases.append(_case("touching-edges", "只共享一条边：交集面积为 0", "sharing an edge only: zero intersection",
                           a, _t([[2, 0, 4, 2], [0, 2, 2, 4]])))
        cases.append(_case("zero-area-box", "一个面积为 0 的框（线段）与普通框：IoU 为 0",
                           "a zero-area box (a segment) against ordinary boxes: IoU 0",
                           _t([[1, 1, 1, 3]]), _t([[0, 0, 2, 2], [0, 0, 4, 4]])))
        cases.append(_case("pairwise-3-by-2", "3 个框对 2 个框：结果是 (3, 2) 的两两 IoU 矩阵，不是逐对的",
                           "3 boxes against 2: the (3, 2) matrix of every pair, not paired IoUs",
                           _t([[0, 0, 4, 4], [2, 2, 6, 6], [0.5, 0.5, 1.5, 3.5]]), _t([[0, 0, 4, 4], [1, 1, 5, 3]])))
        cases.append(_case("empty-boxes1", "boxes1 为空：结果形状 (0, 2)", "empty boxes1: the result has shape (0, 2)",
                           torch.zeros(0, 4), _t([[0, 0, 1, 1], [0, 0, 2, 2]])))
        cases.append(_case("random-1", "随机：4 个框对 5 个框", "random: 4 boxes against 5",
                           _random_boxes(g, 4, 20), _random_boxes(g, 5, 20)))
        cases.append(_case("random-2", "随机整数坐标：6 个框对 3 个框", "random integer coordinates: 6 boxes against 3",
                           _random_boxes(g, 6, 20, True), _random_boxes(g, 3, 20, True)))
    else:
        for i in range(1, HIDDEN_RANDOM + 1):
            n, m = _randint(g, 1, 8), _randint(g, 1, 8)
            span = _choice(g, [10.0, 50.0, 300.0])
            integer = bool(_randint(g, 0, 1))
            about = f"{n} x {m} boxes, span {span:g}" + (", integer" if integer else "")
            cases.append(_case(f"random-{i}", "随机：" + about, "random: " + about,
                               _random_boxes(g, n, span, integer), _random_boxes(g, m, span, integer)))
        cases.append(_case("empty-boxes2", "boxes2 为空", "empty boxes2", _random_boxes(g, 3), torch.zeros(0, 4)))
    return cases


def _distinct_scores(g, n: int) -> torch.Tensor:
    """n distinct scores in (0, 1]: a permutation, so no two boxes tie."""
    return (torch.randperm(n, generator=g).float() + 1) / n


def _random_nms(g, id: str, n: int, threshold: float) -> dict:
    """Clustered boxes (so suppression happens), some duplicated, with distinct scores, and no IoU
    within 1e-5 of a non-dyadic threshold (torchvision compares in float64, tensors in float32)."""
    for _ in range(100):
        centres = torch.rand(max(1, n // 3), 2, generator=g) * 40
        pick = torch.randint(len(centres), (n,), generator=g)
        xy = centres[pick] + torch.randn(n, 2, generator=g) * 3
        wh = 6 + torch.rand(n, 2, generator=g) * 10
        boxes = torch.cat([xy, xy + wh], dim=1)
        if n >= 4:   # an exact duplicate: IoU exactly 1
            boxes[n - 1] = boxes[0]
        iou = _boxes.box_iou(boxes, boxes)
        if not ((iou - threshold).abs() < 1e-5).any() or threshold in (0.0, 0.25, 0.5, 0.75, 1.0):
            break
    about = f"{n} boxes, iou_threshold={threshold}"
    return _case(id, "随机：" + about, "random: " + about, boxes, _distinct_scores(g, n), threshold)


def _exact_threshold_nms(g, id: str) -> dict:
    """Integer boxes with partners at IoU exactly 0.5 (half as wide), 0.25 (a quarter as wide) and
    0 (touching), far apart from each other; the threshold is one of those dyadic values, where
    `>` and `>=` part ways."""
    boxes = []
    for k in range(3):
        x, y = 40 * k + _randint(g, 0, 5), _randint(g, 0, 30)
        w, h = 4 * _randint(g, 1, 4), _randint(g, 2, 8)
        boxes += [[x, y, x + w, y + h], [x, y, x + w // 2, y + h], [x + w // 4 * 3, y, x + w, y + h],
                  [x + w, y, x + 2 * w, y + h]]
    threshold = _choice(g, [0.0, 0.25, 0.5])
    about = f"12 boxes with IoU exactly 0.5, 0.25 and 0 to a partner, iou_threshold={threshold}"
    return _case(id, "随机：12 个框，与同组框的 IoU 恰为 0.5、0.25 和 0，阈值 " + str(threshold),
                 "random: " + about, _t(boxes), _distinct_scores(g, len(boxes)), threshold)


def nms(seed: int, public: bool) -> list[dict]:
    g = _rng("nms", seed, public)
    cases = []
    if public:
        cases.append(_case("empty-input", "没有框：返回空的 int64 张量", "no boxes: an empty int64 tensor",
                           torch.zeros(0, 4), torch.zeros(0), 0.5))
        cases.append(_case("single-box", "只有一个框", "a single box", _t([[1, 1, 3, 4]]), _t([0.3]), 0.5))
        cases.append(_case("no-overlap", "三个互不相交的框：全部保留，按分数从高到低排列",
                           "three disjoint boxes: all kept, in decreasing score",
                           _t([[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5]]), _t([0.5, 0.9, 0.7]), 0.5))
        cases.append(_case("identical-boxes", "三个相同的框：只保留分数最高的一个",
                           "three identical boxes: only the highest-scoring one is kept",
                           _t([[0, 0, 2, 2]] * 3), _t([0.2, 0.9, 0.5]), 0.5))
        cases.append(_case("threshold-exactly-0.5", "IoU 恰好等于阈值 0.5：不抑制（只有 IoU > 阈值才抑制）",
                           "IoU exactly equal to the threshold 0.5: kept (suppress only when IoU > threshold)",
                           _t([[0, 0, 4, 4], [0, 0, 4, 2], [0, 0, 4, 1]]), _t([0.9, 0.8, 0.7]), 0.5))
        cases.append(_case("threshold-exactly-0.75", "IoU 恰好为 0.75 = 阈值：保留", "IoU exactly 0.75 = threshold: kept",
                           _t([[0, 0, 4, 4], [1, 0, 4, 4]]), _t([0.4, 0.6]), 0.75))
        cases.append(_case("threshold-0", "阈值 0：只共享边（IoU = 0）的框保留，有任何重叠的框被抑制",
                           "threshold 0: a box sharing only an edge (IoU 0) is kept, any overlap is suppressed",
                           _t([[0, 0, 2, 2], [2, 0, 4, 2], [1, 1, 3, 3]]), _t([0.9, 0.8, 0.7]), 0.0))
        cases.append(_case("threshold-1", "阈值 1：IoU 不可能大于 1，全部保留（包括两个相同的框）",
                           "threshold 1: no IoU exceeds 1, so every box is kept (two identical ones included)",
                           _t([[0, 0, 2, 2], [0, 0, 2, 2], [1, 0, 3, 2]]), _t([0.6, 0.9, 0.3]), 1.0))
        cases.append(_case("chain", "链式：A 抑制 B（IoU 0.6）；C 只与被抑制的 B 重叠较多（与 A 的 IoU 1/3），应保留",
                           "chain: A suppresses B (IoU 0.6); C overlaps mostly the suppressed B (IoU 1/3 with A), so C is kept",
                           _t([[0, 0, 4, 4], [1, 0, 5, 4], [2, 0, 6, 4]]), _t([0.9, 0.8, 0.7]), 0.5))
        cases.append(_case("best-box-last", "分数最高的框在最后：必须先按分数排序",
                           "the best box comes last: sort by score first",
                           _t([[0, 0, 4, 4], [10, 10, 12, 12], [0, 0, 4, 3]]), _t([0.5, 0.7, 0.8]), 0.5))
        cases.append(_random_nms(g, "random-1", 8, 0.5))
        cases.append(_random_nms(g, "random-2", 20, 0.3))
    else:
        cases.append(_case("empty-input", "没有框", "no boxes", torch.zeros(0, 4), torch.zeros(0), 0.7))
        for i, thr in enumerate([0.3, 0.5, 0.7, 0.25, 0.0, 1.0, 0.45, 0.6][:HIDDEN_RANDOM], 1):
            cases.append(_random_nms(g, f"random-{i}", _randint(g, 2, 24), thr))
        cases += [_exact_threshold_nms(g, f"exact-threshold-{i}") for i in range(1, 3)]
    return cases


def _proposals(g, n: int) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * 100
    wh = 4 + torch.rand(n, 2, generator=g) * 60
    return torch.cat([xy, xy + wh], dim=1)


def _random_deltas(g, n: int) -> torch.Tensor:
    # |dw|, |dh| <= 1.5, well below the log(1000/16) ~ 4.135 clamp of detection libraries.
    return torch.cat([torch.rand(n, 2, generator=g) - 0.5, (torch.rand(n, 2, generator=g) - 0.5) * 3], dim=1)


def encode_boxes(seed: int, public: bool) -> list[dict]:
    g = _rng("encode_boxes", seed, public)
    cases = []
    if public:
        P = _t([[0, 0, 4, 2]])
        cases.append(_case("identical-boxes", "目标与候选框相同：偏移全为 0", "target equals the proposal: all deltas 0", P, P.clone()))
        cases.append(_case("shift-half-width", "目标右移半个宽度：dx = 0.5，其余为 0",
                           "target shifted right by half the width: dx = 0.5, the rest 0", P, _t([[2, 0, 6, 2]])))
        cases.append(_case("double-size", "中心不变、宽高加倍：dw = dh = log 2",
                           "same centre, twice the width and height: dw = dh = log 2", P, _t([[-2, -1, 6, 3]])))
        cases.append(_case("half-pixel-corners", "坐标含 .5：宽度是 x2 - x1，不加 1",
                           "coordinates with .5: the width is x2 - x1, no +1",
                           _t([[0.5, 1.5, 3.5, 5.5], [10, 10, 20, 30]]), _t([[1, 2, 4, 4], [12.5, 5, 17.5, 25]])))
        cases.append(_case("empty", "没有框：形状 (0, 4)", "no boxes: shape (0, 4)", torch.zeros(0, 4), torch.zeros(0, 4)))
        for i, n in enumerate([3, 6], 1):
            P = _proposals(g, n)
            cases.append(_case(f"random-{i}", f"随机：{n} 对框", f"random: {n} pairs of boxes", P, _boxes.decode_boxes(P, _random_deltas(g, n))))
    else:
        for i in range(1, HIDDEN_RANDOM + 1):
            n = _randint(g, 1, 10)
            P = _proposals(g, n)
            cases.append(_case(f"random-{i}", f"随机：{n} 对框", f"random: {n} pairs of boxes", P, _boxes.decode_boxes(P, _random_deltas(g, n))))
    return cases


def decode_boxes(seed: int, public: bool) -> list[dict]:
    g = _rng("decode_boxes", seed, public)
    cases = []
    if public:
        P = _t([[0, 0, 4, 2]])
        cases.append(_case("zero-deltas", "偏移全为 0：得到候选框本身", "zero deltas: the proposal itself", P, torch.zeros(1, 4)))
        cases.append(_case("shift-half-width", "dx = 0.5：右移半个宽度", "dx = 0.5: shifted right by half the width",
                           P, _t([[0.5, 0, 0, 0]])))
        cases.append(_case("log2-size", "dw = dh = log 2：中心不变、宽高加倍", "dw = dh = log 2: same centre, twice the size",
                           P, _t([[0, 0, math.log(2), math.log(2)]])))
        cases.append(_case("negative-deltas", "负的偏移：向左上移动并缩小", "negative deltas: moved up-left and shrunk",
                           _t([[10, 10, 20, 30]]), _t([[-0.25, -0.5, -math.log(2), -1.0]])))
        cases.append(_case("half-pixel-proposals", "候选框坐标含 .5", "proposals with .5 coordinates",
                           _t([[0.5, 1.5, 3.5, 5.5], [2.5, 2.5, 7.5, 4.5]]), _t([[0.1, -0.2, 0.3, 0.4], [0, 0, 1, -1]])))
        cases.append(_case("empty", "没有框：形状 (0, 4)", "no boxes: shape (0, 4)", torch.zeros(0, 4), torch.zeros(0, 4)))
        for i, n in enumerate([3, 6], 1):
            cases.append(_case(f"random-{i}", f"随机：{n} 个框", f"random: {n} boxes", _proposals(g, n), _random_deltas(g, n)))
    else:
        for i in range(1, HIDDEN_RANDOM + 1):
            n = _randint(g, 1, 10)
            cases.append(_case(f"random-{i}", f"随机：{n} 个框", f"random: {n} boxes", _proposals(g, n), _random_deltas(g, n)))
    return cases


# --- roi_pool ----------------------------------------------------------------------------------

_SCALES = [1.0, 0.5, 0.25, 1 / 16]


def _random_rois(g, k: int, batch: int, H: int, W: int, scale: float) -> torch.Tensor:
    """RoIs whose corners fall on half-cells of the feature map (x * scale = m / 2), so many of them
    land exactly on .5 and separate round-half-away-from-zero from every other rounding; some reach
    past the borders, a few are malformed (x2 < x1)."""
    b = torch.randint(batch, (k, 1), generator=g).float()
    x = torch.randint(-3, 2 * W + 3, (k, 2), generator=g).float() / 2
    y = torch.randint(-3, 2 * H + 3, (k, 2), generator=g).float() / 2
    if float(torch.rand((), generator=g)) < 0.8:   # mostly well-formed
        x, y = x.sort(dim=1).values, y.sort(dim=1).values
    feat = torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], dim=1)
    return torch.cat([b, feat / scale], dim=1)     # back to image coordinates (exact: scale is 2^-k)


def _random_roi_case(g, id: str) -> dict:
    B, C = _randint(g, 1, 2), _randint(g, 1, 3)
    H, W = _randint(g, 3, 8), _randint(g, 3, 8)
    k = _randint(g, 1, 4)
    scale = _choice(g, _SCALES)
    # (2, 2) and (3, 3) stand where the ints 2 and 3 once did (the starter documents a tuple); the
    # list keeps its length, so every draw from the generator, and so every case, is as before.
    size = _choice(g, [(2, 2), (2, 3), (3, 2), (1, 1), (2, 2), (3, 3)])
    features = torch.randn(B, C, H, W, generator=g)
    about = f"B={B}, C={C}, H={H}, W={W}, K={k}, output_size={size}, spatial_scale={scale:g}"
    return _case(id, "随机：" + about, "random: " + about, features, _random_rois(g, k, B, H, W, scale), size, scale)


def roi_pool(seed: int, public: bool) -> list[dict]:
    g = _rng("roi_pool", seed, public)

    def fmap(*shape):   # distinct values (a shuffled arange), so every max is unambiguous
        n = math.prod(shape)
        return torch.randperm(n, generator=g).float().reshape(shape)

    cases = []
    if public:
        cases.append(_case("whole-map", "RoI 覆盖整个 4x4 特征图，输出 2x2：等同于 2x2 最大池化",
                           "the RoI covers the whole 4x4 map, output 2x2: plain 2x2 max pooling",
                           fmap(1, 1, 4, 4), _t([[0, 0, 0, 3, 3]]), (2, 2), 1.0))
        cases.append(_case("half-pixel-corners", "scale 1/2，角点乘以 scale 后为 .5：四舍五入远离 0（2.5 → 3），不是银行家舍入",
                           "scale 1/2, corners land on .5: round half away from zero (2.5 -> 3), not half to even",
                           fmap(1, 2, 6, 6), _t([[0, 1, 1, 5, 7], [0, 3, 0, 9, 5]]), (2, 2), 0.5))
        cases.append(_case("roi-partly-outside", "RoI 部分超出特征图（左上为负、右下越界）：先在未裁剪的 RoI 上划分 bin，再裁剪",
                           "RoI partly outside the map (negative top-left, past the bottom-right): bins laid over the unclipped RoI, then clipped",
                           fmap(1, 1, 6, 6), _t([[0, -3, -1, 8, 7]]), (2, 3), 1.0))
        cases.append(_case("bin-clipped-empty", "RoI 大部分在图外：裁剪后为空的 bin 输出 0",
                           "RoI mostly outside the map: bins that are empty after clipping give 0",
                           fmap(1, 2, 4, 4), _t([[0, 2, 2, 9, 9]]), (2, 2), 1.0))
        cases.append(_case("bin-rounds-empty", "x1 * scale = 2.5 舍入为 3 = W：整个 RoI 落在图外，输出全 0（银行家舍入得 2 则不为空）",
                           "x1 * scale = 2.5 rounds to 3 = W: the whole RoI is off the map, all zeros (half-to-even gives 2, not empty)",
                           fmap(1, 2, 3, 3), _t([[0, 5, 0, 7, 5]]), (2, 1), 0.5))
        cases.append(_case("negative-half", "x1 * scale = -0.5 舍入为 -1（远离 0），不是 0",
                           "x1 * scale = -0.5 rounds to -1 (away from zero), not 0",
                           fmap(1, 1, 5, 5), _t([[0, -1, -1, 5, 7]]), (3, 2), 0.5))
        cases.append(_case("batch-index-1", "RoI 的批次索引为 1：必须从第二张特征图中取值",
                           "RoI with batch index 1: pool from the second image's map",
                           fmap(2, 2, 4, 5), _t([[1, 0, 0, 4, 3], [0, 1, 1, 3, 3]]), (2, 2), 1.0))
        cases.append(_case("scale-1-16", "spatial_scale = 1/16（VGG16 conv5）：图像坐标 8、24、40 映射为 .5",
                           "spatial_scale = 1/16 (VGG16 conv5): image coordinates 8, 24, 40 map to .5",
                           fmap(1, 1, 6, 6), _t([[0, 8, 24, 72, 88], [0, 0, 0, 40, 40]]), (2, 2), 1 / 16))
        cases.append(_case("malformed-roi", "x2 < x1 的畸形 RoI：大小按 1 个单元处理",
                           "a malformed RoI with x2 < x1: treated as one cell wide",
                           fmap(1, 1, 4, 4), _t([[0, 3, 0, 1, 3]]), (2, 2), 1.0))
        cases.append(_case("output-3x3-shared-rows", "output_size = (3, 3)，RoI 为 4x4 个格子：bin 大小 4/3，相邻的 bin 共享行和列",
                           "output_size = (3, 3) over a 4x4-cell RoI: bins are 4/3 cells, so neighbouring bins share a row and a column",
                           fmap(1, 1, 5, 5), _t([[0, 0, 0, 3, 3]]), (3, 3), 1.0))
        cases.append(_case("empty-rois", "没有 RoI：输出形状 (0, C, h, w)", "no RoIs: output shape (0, C, h, w)",
                           fmap(1, 3, 4, 4), torch.zeros(0, 5), (2, 2), 0.5))
        cases += [_random_roi_case(g, f"random-{i}") for i in range(1, 4)]
    else:
        cases += [_random_roi_case(g, f"random-{i}") for i in range(1, HIDDEN_RANDOM + 1)]
        features = torch.randn(2, 2, 5, 6, generator=g)
        rois = _random_rois(g, 3, 1, 5, 6, 0.5)
        rois[:, 0] = 1
        cases.append(_case("batch-index-1", "随机：所有 RoI 的批次索引为 1", "random: every RoI has batch index 1",
                           features, rois, (2, 2), 0.5))
        cases.append(_case("empty-rois", "没有 RoI", "no RoIs", torch.randn(2, 2, 4, 4, generator=g),
                           torch.zeros(0, 5), (3, 2), 0.25))
    return cases
