"""The hw2 reference is exact: attention against torch's own implementations, box ops, NMS and
RoI pooling against hand-worked numbers (and a line-by-line port of torchvision's C++ kernel),
Part A against the seeded global RNG and pinned values."""
from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
import torch
import torch.nn.functional as F

# `reference` is the repository's folder (conftest.py puts the repository on sys.path)
from reference.hw2 import (box_iou, causal_mask, cases, decode_boxes, encode_boxes, multi_head_attention, nms,
                           part_a, roi_pool, scaled_dot_product_attention)
from reference.hw2.roi_pool import round_half_away_from_zero


def t(rows, dtype=torch.float32):
    return torch.tensor(rows, dtype=dtype)


# --- attention ---------------------------------------------------------------------------------

def _random_attention_inputs(g, masked: bool):
    batch = [(), (3,), (2, 3)][int(torch.randint(3, (1,), generator=g))]
    n_q, n_k = (int(v) for v in torch.randint(1, 7, (2,), generator=g))
    d, d_v = (int(v) for v in torch.randint(1, 17, (2,), generator=g))
    Q = torch.randn(*batch, n_q, d, generator=g, dtype=torch.float64)
    K = torch.randn(*batch, n_k, d, generator=g, dtype=torch.float64)
    V = torch.randn(*batch, n_k, d_v, generator=g, dtype=torch.float64)
    mask = None
    if masked:   # random, broadcast over the batch half of the time, never a fully masked row
        shape = (n_q, n_k) if int(torch.randint(2, (1,), generator=g)) else (*batch, n_q, n_k)
        mask = torch.rand(shape, generator=g) < 0.5
        mask = mask.scatter(-1, torch.randint(n_k, (*shape[:-1], 1), generator=g), True)
    return Q, K, V, mask


@pytest.mark.parametrize("masked", [False, True])
def test_sdpa_matches_torch(masked):
    g = torch.Generator().manual_seed(123 + masked)
    for _ in range(100):
        Q, K, V, mask = _random_attention_inputs(g, masked)
        out, weights = scaled_dot_product_attention(Q, K, V, mask)
        expected = F.scaled_dot_product_attention(Q, K, V, attn_mask=mask)
        torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
        # The weights: softmax rows, zero where masked, and they produce the output.
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1], dtype=torch.float64))
        if mask is not None:
            assert (weights[~mask.expand_as(weights)] == 0).all()
        torch.testing.assert_close(weights @ V, out, rtol=0, atol=0)


def test_sdpa_float32_and_scale_by_d_not_dv():
    Q, K = t([[1, 0, 1, 0], [0, 2, 0, 0]]), t([[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 1, 1]])
    V = t([[1, 0], [0, 1], [2, 2]])
    out, w = scaled_dot_product_attention(Q, K, V)
    # scores / 2: row 0 = [1, 0, 1], row 1 = [0, 1, 1]
    e = math.e
    torch.testing.assert_close(w, t([[e / (2 * e + 1), 1 / (2 * e + 1), e / (2 * e + 1)],
                                     [1 / (2 * e + 1), e / (2 * e + 1), e / (2 * e + 1)]]))
    torch.testing.assert_close(out, w @ V)


def test_sdpa_large_scores_do_not_overflow():
    Q = t([[10, 10, 10, 10]])
    K = t([[10, 10, 10, 10], [-10, -10, -10, -10]])      # scores 200 and -200
    out, w = scaled_dot_product_attention(Q, K, t([[1.0], [2.0]]))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(w, t([[1.0, 0.0]]))


def test_sdpa_rejects_float_mask():
    with pytest.raises(TypeError):
        scaled_dot_product_attention(torch.ones(2, 2), torch.ones(2, 2), torch.ones(2, 2), torch.ones(2, 2))


def test_causal_mask():
    assert causal_mask(1).tolist() == [[True]]
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    m = causal_mask(7)
    assert m.dtype == torch.bool and m.shape == (7, 7)
    i, j = torch.meshgrid(torch.arange(7), torch.arange(7), indexing="ij")
    assert torch.equal(m, j <= i)


@pytest.mark.parametrize("causal", [False, True])
def test_mha_matches_nn_multihead_attention(causal):
    g = torch.Generator().manual_seed(7 + causal)
    configs = [(4, 1), (4, 2), (4, 4), (6, 2), (6, 3), (8, 2), (8, 4), (12, 3), (12, 6), (16, 4)]
    for k in range(100):
        d_model, h = configs[k % len(configs)]
        n = int(torch.randint(1, 8, (1,), generator=g))
        X = torch.randn(n, d_model, generator=g, dtype=torch.float64)
        W_Q, W_K, W_V, W_O = (torch.randn(d_model, d_model, generator=g, dtype=torch.float64) / math.sqrt(d_model)
                              for _ in range(4))
        out, weights = multi_head_attention(X, W_Q, W_K, W_V, W_O, h, causal=causal)

        mha = torch.nn.MultiheadAttention(d_model, h, bias=False, batch_first=True, dtype=torch.float64)
        with torch.no_grad():
            # nn.Linear-style weights are (out, in) and applied as x @ W.T: transpose ours.
            mha.in_proj_weight.copy_(torch.cat([W_Q.T, W_K.T, W_V.T]))
            mha.out_proj.weight.copy_(W_O.T)
            # nn.MultiheadAttention's bool mask means True = NOT allowed: the opposite of ours.
            attn_mask = ~causal_mask(n) if causal else None
            ref_out, ref_w = mha(X[None], X[None], X[None], attn_mask=attn_mask,
                                 need_weights=True, average_attn_weights=False)
        assert out.shape == (n, d_model) and weights.shape == (h, n, n)
        torch.testing.assert_close(out, ref_out[0], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(weights, ref_w[0], rtol=1e-10, atol=1e-10)


def test_mha_identity_weights_is_per_head_attention():
    X = part_a.X
    eye = torch.eye(4)
    out, w = multi_head_attention(X, eye, eye, eye, eye, 2)
    for head in range(2):
        cols = slice(2 * head, 2 * head + 2)
        o, wh = scaled_dot_product_attention(X[:, cols], X[:, cols], X[:, cols])
        torch.testing.assert_close(w[head], wh)
        torch.testing.assert_close(out[:, cols], o)


# --- box_iou -----------------------------------------------------------------------------------

def test_box_iou_hand_worked():
    a = t([[0, 0, 2, 2]])
    assert box_iou(a, t([[3, 3, 5, 5], [5, 0, 7, 2]])).tolist() == [[0.0, 0.0]]      # no overlap
    assert box_iou(a, a.clone()).tolist() == [[1.0]]                                 # identical
    assert box_iou(t([[0, 0, 4, 4]]), t([[1, 1, 3, 3]])).tolist() == [[0.25]]        # contained
    torch.testing.assert_close(box_iou(a, t([[1, 0, 3, 2]])), t([[1 / 3]]))          # 2 / (4 + 4 - 2)
    assert box_iou(a, t([[2, 0, 4, 2], [0, 2, 2, 4]])).tolist() == [[0.0, 0.0]]      # touching edges
    torch.testing.assert_close(box_iou(t([[0, 0, 4, 4], [2, 2, 6, 6]]), t([[0, 0, 4, 4], [1, 1, 5, 3]])),
                               t([[1.0, 6 / 18], [4 / 28, 3 / 21]]))                 # pairwise (N, M)


def test_box_iou_zero_area_and_empty():
    # A zero-area box (a segment) against an ordinary box: 0.
    assert box_iou(t([[1, 1, 1, 3]]), t([[0, 0, 2, 2]])).tolist() == [[0.0]]
    # Two identical zero-area boxes: 0 / 0 = NaN, as torchvision (hw2's cases never contain this pair).
    assert torch.isnan(box_iou(t([[1, 1, 1, 1]]), t([[1, 1, 1, 1]]))).all()
    assert box_iou(torch.zeros(0, 4), t([[0, 0, 1, 1], [0, 0, 2, 2]])).shape == (0, 2)
    assert box_iou(t([[0, 0, 1, 1]]), torch.zeros(0, 4)).shape == (1, 0)


# --- nms ---------------------------------------------------------------------------------------

def keep(boxes, scores, thr):
    out = nms(t(boxes), t(scores), thr)
    assert out.dtype == torch.int64
    return out.tolist()


def test_nms_hand_worked():
    empty = nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert empty.dtype == torch.int64 and empty.shape == (0,)
    assert keep([[1, 1, 3, 4]], [0.3], 0.5) == [0]
    assert keep([[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5]], [0.5, 0.9, 0.7], 0.5) == [1, 2, 0]   # no overlap
    assert keep([[0, 0, 2, 2]] * 3, [0.2, 0.9, 0.5], 0.5) == [1]                                 # identical
    # IoU exactly 0.5 (A-B, B-C) and 0.25 (A-C): equal to the threshold is kept.
    assert keep([[0, 0, 4, 4], [0, 0, 4, 2], [0, 0, 4, 1]], [0.9, 0.8, 0.7], 0.5) == [0, 1, 2]
    # At 0.25: A suppresses B (0.5 > 0.25) but keeps C (IoU 0.25, equal), and B no longer suppresses.
    assert keep([[0, 0, 4, 4], [0, 0, 4, 2], [0, 0, 4, 1]], [0.9, 0.8, 0.7], 0.25) == [0, 2]
    # Threshold 0: touching (IoU 0) kept, any overlap suppressed. Threshold 1: everything kept.
    assert keep([[0, 0, 2, 2], [2, 0, 4, 2], [1, 1, 3, 3]], [0.9, 0.8, 0.7], 0.0) == [0, 1]
    assert keep([[0, 0, 2, 2], [0, 0, 2, 2], [1, 0, 3, 2]], [0.6, 0.9, 0.3], 1.0) == [1, 0, 2]
    # Chain: A suppresses B (IoU 0.6); C overlaps A by 1/3 only, so C survives B's suppression.
    assert keep([[0, 0, 4, 4], [1, 0, 5, 4], [2, 0, 6, 4]], [0.9, 0.8, 0.7], 0.5) == [0, 2]
    assert keep([[0, 0, 4, 4], [10, 10, 12, 12], [0, 0, 4, 3]], [0.5, 0.7, 0.8], 0.5) == [2, 1]   # best last


def test_nms_compares_threshold_like_torchvision():
    # IoU 30/100 is 0.3f = 0.30000001 in float32; torchvision compares it with the double 0.3: suppressed.
    assert keep([[0, 0, 10, 10], [0, 0, 10, 3]], [0.9, 0.8], 0.3) == [0]


def test_nms_score_ties():
    # Overlapping boxes with equal scores: exactly one survives (which one is unspecified; stable here).
    out = keep([[0, 0, 2, 2], [0, 0, 2, 2]], [0.5, 0.5], 0.5)
    assert len(out) == 1 and out[0] in (0, 1)
    # 20 disjoint boxes, all tied: all kept, in some order.
    boxes = [[3 * i, 0, 3 * i + 2, 2] for i in range(20)]
    assert sorted(keep(boxes, [0.5] * 20, 0.5)) == list(range(20))


def test_nms_zero_area_boxes():
    # Two identical points: IoU NaN, never > threshold, both kept (as torchvision).
    assert keep([[1, 1, 1, 1], [1, 1, 1, 1]], [0.9, 0.8], 0.5) == [0, 1]


def test_nms_matches_brute_force_definition():
    g = torch.Generator().manual_seed(5)
    for _ in range(50):
        n = int(torch.randint(1, 30, (1,), generator=g))
        xy = torch.rand(n, 2, generator=g) * 30
        boxes = torch.cat([xy, xy + 5 + torch.rand(n, 2, generator=g) * 10], 1)
        scores = torch.randperm(n, generator=g).float()
        thr = float(torch.rand((), generator=g))
        got = nms(boxes, scores, thr).tolist()
        # Definition: a box is kept iff no higher-scoring KEPT box overlaps it with IoU > thr.
        order = sorted(range(n), key=lambda i: -scores[i].item())
        iou = box_iou(boxes, boxes).double()
        kept = []
        for i in order:
            if all(iou[k, i] <= thr for k in kept):
                kept.append(i)
        assert got == kept


# --- encode / decode ---------------------------------------------------------------------------

def test_encode_hand_worked():
    P = t([[0, 0, 4, 2]])
    assert encode_boxes(P, P).tolist() == [[0.0, 0.0, 0.0, 0.0]]
    assert encode_boxes(P, t([[2, 0, 6, 2]])).tolist() == [[0.5, 0.0, 0.0, 0.0]]
    torch.testing.assert_close(encode_boxes(P, t([[-2, -1, 6, 3]])), t([[0, 0, math.log(2), math.log(2)]]))
    # .5 coordinates: P centre (2, 3.5), size (3, 4); G centre (2.5, 3), size (3, 2).
    torch.testing.assert_close(encode_boxes(t([[0.5, 1.5, 3.5, 5.5]]), t([[1, 2, 4, 4]])),
                               t([[0.5 / 3, -0.5 / 4, 0.0, math.log(0.5)]]))
    assert encode_boxes(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 4)


def test_decode_hand_worked():
    P = t([[0, 0, 4, 2]])
    assert decode_boxes(P, torch.zeros(1, 4)).tolist() == [[0.0, 0.0, 4.0, 2.0]]
    assert decode_boxes(P, t([[0.5, 0, 0, 0]])).tolist() == [[2.0, 0.0, 6.0, 2.0]]
    torch.testing.assert_close(decode_boxes(P, t([[0, 0, math.log(2), math.log(2)]])), t([[-2, -1, 6, 3]]))
    assert decode_boxes(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 4)


def test_encode_decode_round_trip():
    g = torch.Generator().manual_seed(11)
    xy = torch.rand(200, 2, generator=g, dtype=torch.float64) * 100
    P = torch.cat([xy, xy + 4 + torch.rand(200, 2, generator=g, dtype=torch.float64) * 60], 1)
    D = torch.cat([torch.rand(200, 2, generator=g, dtype=torch.float64) - 0.5,
                   (torch.rand(200, 2, generator=g, dtype=torch.float64) - 0.5) * 4], 1)
    torch.testing.assert_close(encode_boxes(P, decode_boxes(P, D)), D, rtol=1e-10, atol=1e-10)
    G = decode_boxes(P, D)
    torch.testing.assert_close(decode_boxes(P, encode_boxes(P, G)), G, rtol=1e-10, atol=1e-10)


# --- roi_pool ----------------------------------------------------------------------------------

def grid(b, c, h, w, offset=0.0):
    """Feature map whose value at (row r, col c) is offset + w*r + c, so every max is the bin's
    bottom-right cell: easy to work out by hand."""
    return (offset + torch.arange(h * w, dtype=torch.float32).reshape(h, w)).expand(b, c, h, w).clone()


def test_round_half_away_from_zero():
    x = t([0.5, 1.5, 2.5, -0.5, -2.5, 2.4999998, 0.49999997, -0.49999997, 3.0, -3.7])
    assert round_half_away_from_zero(x).tolist() == [1, 2, 3, -1, -3, 2, 0, 0, 3, -4]
    assert torch.round(t([2.5])).item() == 2.0      # the trap: torch.round is half to even


def test_roi_pool_hand_worked():
    f4 = grid(1, 1, 4, 4)
    # Whole 4x4 map into 2x2: plain 2x2 max pooling.
    assert roi_pool(f4, t([[0, 0, 0, 3, 3]]), (2, 2), 1.0)[0, 0].tolist() == [[5, 7], [13, 15]]
    # .5 corners at scale 1/2: (0.5, 0.5, 2.5, 3.5) -> (1, 1, 3, 4); RoI 3 wide, 4 high;
    # rows {1,2}, {3,4}; column bins (bin 1.5) {1,2}, {2,3}.
    f6 = grid(1, 1, 6, 6)
    assert roi_pool(f6, t([[0, 1, 1, 5, 7]]), (2, 2), 0.5)[0, 0].tolist() == [[14, 15], [26, 27]]
    # Partly outside: (-3, -1, 8, 7), 12 x 9 cells; row bins 4.5 -> [-1,4)->[0,4), [3,8)->[3,6);
    # column bins 4 -> [-3,1)->[0,1), [1,5), [5,9)->[5,6).
    assert roi_pool(f6, t([[0, -3, -1, 8, 7]]), (2, 3), 1.0)[0, 0].tolist() == [[18, 22, 23], [30, 34, 35]]
    # Mostly outside: the second row and column of bins are clipped to nothing: 0.
    assert roi_pool(f4, t([[0, 2, 2, 9, 9]]), (2, 2), 1.0)[0, 0].tolist() == [[15, 0], [0, 0]]
    # Bin rounds empty: x1 = 2.5 -> 3 = W, so every bin is off the 3x3 map.
    assert roi_pool(grid(1, 2, 3, 3), t([[0, 5, 0, 7, 5]]), (2, 1), 0.5).tolist() == [[[[0], [0]]] * 2]
    # Negative half: (-0.5, -0.5, 2.5, 3.5) -> (-1, -1, 3, 4): 5 wide, 6 high, rows [-1,1), [1,3), [3,5);
    # column bins 2.5 -> [-1,2), [1,4).
    f5 = grid(1, 1, 5, 5)
    assert roi_pool(f5, t([[0, -1, -1, 5, 7]]), (3, 2), 0.5)[0, 0].tolist() == [[1, 3], [11, 13], [21, 23]]
    # Scale 1/16: (8, 24, 72, 88) / 16 = (0.5, 1.5, 4.5, 5.5) -> (1, 2, 5, 6): bins 2.5 over 5 cells.
    assert roi_pool(f6, t([[0, 8, 24, 72, 88]]), (2, 2), 1 / 16)[0, 0].tolist() == [[27, 29], [33, 35]]
    # Malformed (x2 < x1): one cell wide at column 3; two 0.5-wide bins share it.
    assert roi_pool(f4, t([[0, 3, 0, 1, 3]]), (2, 2), 1.0)[0, 0].tolist() == [[7, 7], [15, 15]]
    # int output size: 3 -> (3, 3), bins 4/3: [0,2), [1,3), [2,4) (neighbours share a row).
    assert roi_pool(f4, t([[0, 0, 0, 3, 3]]), 3, 1.0)[0, 0].tolist() == [[5, 6, 7], [9, 10, 11], [13, 14, 15]]


def test_roi_pool_batch_index_and_empty():
    f = torch.cat([grid(1, 2, 4, 4), grid(1, 2, 4, 4, offset=100.0)])
    out = roi_pool(f, t([[1, 0, 0, 3, 3], [0, 0, 0, 3, 3]]), (2, 2), 1.0)
    assert out.shape == (2, 2, 2, 2)
    assert out[0, 1].tolist() == [[105, 107], [113, 115]] and out[1, 0].tolist() == [[5, 7], [13, 15]]
    assert roi_pool(f, t([[1.9, 0, 0, 3, 3]]), 1, 1.0)[0, 0, 0, 0].item() == 115     # batch index truncated
    assert roi_pool(f, torch.zeros(0, 5), (2, 3), 0.5).shape == (0, 2, 2, 3)
    assert roi_pool(f, torch.zeros(0, 5), 3, 0.5).shape == (0, 2, 3, 3)
    assert roi_pool(f.double(), t([[0, 0, 0, 3, 3]], torch.float64), 2, 1.0).dtype == torch.float64


def _kernel_port(features, rois, pooled_h, pooled_w, spatial_scale):
    """torchvision/csrc/ops/cpu/roi_pool_kernel.cpp, line by line, with numpy float32 scalars for T
    and decimal ROUND_HALF_UP (= C's round, halves away from zero): an independent oracle."""
    T = np.float32
    feats = features.numpy()
    _, C, H, W = feats.shape
    out = np.zeros((len(rois), C, pooled_h, pooled_w), dtype=T)

    def c_round(v):
        return int(Decimal(float(v)).quantize(Decimal(1), rounding=ROUND_HALF_UP))

    for n, roi in enumerate(rois.numpy().astype(T)):
        b = int(roi[0])
        sw, sh, ew, eh = (c_round(T(v) * T(spatial_scale)) for v in roi[1:])
        rw, rh = max(ew - sw + 1, 1), max(eh - sh + 1, 1)
        bh, bw = T(rh) / T(pooled_h), T(rw) / T(pooled_w)
        for ph in range(pooled_h):
            for pw in range(pooled_w):
                hs = min(max(int(math.floor(T(ph) * bh)) + sh, 0), H)
                he = min(max(int(math.ceil(T(ph + 1) * bh)) + sh, 0), H)
                ws = min(max(int(math.floor(T(pw) * bw)) + sw, 0), W)
                we = min(max(int(math.ceil(T(pw + 1) * bw)) + sw, 0), W)
                empty = he <= hs or we <= ws
                for c in range(C):
                    m = T(0) if empty else T(-np.finfo(T).max)
                    for h in range(hs, he):
                        for w in range(ws, we):
                            if feats[b, c, h, w] > m:
                                m = feats[b, c, h, w]
                    out[n, c, ph, pw] = m
    return torch.from_numpy(out)


def test_roi_pool_matches_kernel_port_on_all_generated_cases():
    for seed, public in [(0, True), (2024, False), (31337, False), (5, False)]:
        for case in cases.roi_pool(seed, public):
            features, rois, size, scale = case["args"]
            ph, pw = (size, size) if isinstance(size, int) else size
            assert torch.equal(roi_pool(features, rois, size, scale), _kernel_port(features, rois, ph, pw, scale)), case["id"]


def test_roi_pool_matches_kernel_port_at_awkward_scales():
    # Non-power-of-two scales too: the reference computes in float32 like the kernel.
    g = torch.Generator().manual_seed(3)
    for scale in [0.3, 0.1, 1 / 3, 0.7, 1 / 16, 0.0625]:
        features = torch.randn(2, 2, 7, 9, generator=g)
        xy = torch.randint(-10, 40, (6, 4), generator=g).float() + torch.randint(0, 4, (6, 4), generator=g) * 0.25
        rois = torch.cat([torch.randint(0, 2, (6, 1), generator=g).float(), xy], 1)
        assert torch.equal(roi_pool(features, rois, (3, 2), scale), _kernel_port(features, rois, 3, 2, scale))


# --- Part A ------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 42, 2024, 31337])
def test_canonical_inputs_equal_the_global_rng_sequence(seed):
    state = torch.get_rng_state()
    inputs = part_a.canonical_inputs(seed)
    assert torch.equal(torch.get_rng_state(), state)          # the global RNG is untouched
    torch.manual_seed(seed)
    W_Q = torch.randn(4, 4)
    W_K = torch.randn(4, 4)
    W_V = torch.randn(4, 4)
    torch.set_rng_state(state)
    assert torch.equal(inputs["W_Q"], W_Q) and torch.equal(inputs["W_K"], W_K) and torch.equal(inputs["W_V"], W_V)
    assert torch.equal(inputs["X"], part_a.X)


def test_part_a_seed_X_exactly():
    assert part_a.X.tolist() == [[1, 0, 1, 0], [1, 2, 1, 0], [0, 1, 0, 1], [0, 1, 0, 0], [1, 0, 1, 0]]
    assert part_a.X.dtype == torch.float32


def test_part_a_values_under_seed_0():
    inputs = part_a.canonical_inputs(0)
    r = part_a.compute(inputs)
    assert abs(inputs["W_Q"][0, 0].item() - (-1.1258398)) < 1e-6       # torch.manual_seed(0); torch.randn
    assert abs(r["score"][0, 1].item() - 5.9642873) < 1e-5
    assert abs(r["attention"][1, 0].item() - 0.32617053) < 1e-6
    torch.testing.assert_close(r["output"], t([[0.08902237, 1.02046669, 0.38557327, 1.09487617],
                                               [-0.16938421, 1.21624994, -0.69520462, -0.08971052],
                                               [0.85878134, 2.26984930, -0.78787559, -1.02687943],
                                               [0.54295409, 1.82942796, -0.66454828, -0.66427952],
                                               [0.08902237, 1.02046669, 0.38557327, 1.09487617]]),
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(r["attention"].sum(-1), torch.ones(5))
    # The seed's own code, literally.
    Q, K, V = inputs["X"] @ inputs["W_Q"], inputs["X"] @ inputs["W_K"], inputs["X"] @ inputs["W_V"]
    d = inputs["W_Q"].shape[-1]
    score = Q @ K.T / (d ** 0.5)
    assert torch.equal(r["output"], F.softmax(score, dim=-1) @ V)


def test_part_a_follow_through_agrees_on_correct_upstream():
    inputs = part_a.canonical_inputs(0)
    r = part_a.compute(inputs)
    ns = {**inputs, **r}
    for item in ["Q", "K", "V", "score", "attention", "output"]:
        torch.testing.assert_close(getattr(part_a, f"follows_{item}")(ns), r[item], rtol=0, atol=1e-6)
    # ... and follows a wrong upstream: an unscaled score still gives the softmax of that score.
    ns["score"] = ns["Q"] @ ns["K"].T
    torch.testing.assert_close(part_a.follows_attention(ns), F.softmax(ns["Q"] @ ns["K"].T, dim=-1))


# --- cases stay clear of the ambiguities --------------------------------------------------------

SEEDS = [(0, True), (2024, False), (31337, False), (99, False)]


def test_attention_cases_have_no_fully_masked_rows():
    for seed, public in SEEDS:
        for case in cases.scaled_dot_product_attention(seed, public):
            mask = case["args"][3]
            if mask is not None:
                assert mask.dtype == torch.bool and mask.any(-1).all(), case["id"]
        assert any(c["args"][2].shape[-1] != c["args"][0].shape[-1] for c in cases.scaled_dot_product_attention(seed, public))


def test_nms_cases_have_no_ties_and_no_near_threshold_ious():
    for seed, public in SEEDS:
        for case in cases.nms(seed, public):
            boxes, scores, thr = case["args"]
            assert len(scores.unique()) == len(scores), case["id"]
            if thr not in (0.0, 0.25, 0.5, 0.75, 1.0):
                assert not ((box_iou(boxes, boxes) - thr).abs() < 1e-5).any(), case["id"]


def test_box_cases_avoid_degenerate_pairs_and_large_deltas():
    for seed, public in SEEDS:
        for case in cases.box_iou(seed, public):
            a, b = case["args"]
            zero = lambda x: ((x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1]) == 0)  # noqa: E731
            assert not (zero(a)[:, None] & zero(b)[None, :]).any(), case["id"]
        for case in cases.decode_boxes(seed, public):
            assert (case["args"][1][:, 2:].abs() < math.log(1000 / 16)).all()
        for case in cases.encode_boxes(seed, public):
            deltas = encode_boxes(*case["args"])
            assert (deltas[:, 2:].abs() < math.log(1000 / 16)).all()
        for case in cases.roi_pool(seed, public):
            assert case["args"][3] in (1.0, 0.5, 0.25, 1 / 16)


def test_roi_pool_cases_pass_output_size_as_the_starter_documents_it():
    """The starter says `output_size: (h, w)`: a tuple of two ints in every case of every seed
    (an int once cost students who unpacked it, as documented, half the item)."""
    for seed, public in SEEDS:
        for case in cases.roi_pool(seed, public):
            size = case["args"][2]
            assert type(size) is tuple and len(size) == 2 and all(type(v) is int for v in size), (seed, case["id"])


def _scores(case, item):
    if item == "scaled_dot_product_attention":
        Q, K = case["args"][:2]
        return [Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])]
    X, W_Q, W_K, _, _, h = case["args"]
    n, d_model = X.shape
    split = lambda M: M.reshape(n, h, d_model // h).transpose(0, 1)  # noqa: E731
    s = split(X @ W_Q) @ split(X @ W_K).transpose(-2, -1) / math.sqrt(d_model // h)
    return [s[:, causal_mask(n)] if case["kwargs"].get("causal") else s]


@pytest.mark.parametrize("item", ["scaled_dot_product_attention", "multi_head_attention"])
def test_every_seed_has_a_stability_case_that_overflows_a_naive_softmax(item):
    """Scores of 250 or more (float32's exp overflows above ~88.7), exact (integer inputs, d a power
    of four): the reference stays finite, exp(s) / sum(exp(s)) gives NaN."""
    from reference.hw2 import mistakes
    gen, ref = getattr(cases, item), {"scaled_dot_product_attention": scaled_dot_product_attention,
                                      "multi_head_attention": multi_head_attention}[item]
    naive = {"scaled_dot_product_attention": mistakes.sdpa_unstable_softmax,
             "multi_head_attention": mistakes.mha_unstable_softmax}[item]
    for seed, public in SEEDS:
        stable = [c for c in gen(seed, public) if "large-scores" in c["id"] or "overflow" in c["id"]]
        assert stable, (item, seed)
        for case in stable:
            (s,) = _scores(case, item)
            assert float(s.max()) >= 250 and torch.equal(s * 4, (s * 4).round()), case["id"]   # exact quarters
            out, w = ref(*case["args"], **case["kwargs"])
            assert torch.isfinite(out).all() and torch.isfinite(w).all()
            bad_out, _ = naive(*case["args"], **case["kwargs"])
            assert not torch.isfinite(bad_out).all(), (item, seed, case["id"])
        for case in gen(seed, public):
            if case["id"] not in {c["id"] for c in stable}:     # elsewhere the naive softmax is right: only stability tells them apart
                got, want = naive(*case["args"], **case["kwargs"]), ref(*case["args"], **case["kwargs"])
                for g, e in zip(got, want):
                    torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)


def test_stability_hand_case_overflows_and_underflows():
    case = next(c for c in cases.scaled_dot_product_attention(0, True) if c["id"] == "softmax-overflow-underflow")
    (s,) = _scores(case, "scaled_dot_product_attention")
    assert s.tolist()[:2] == [[300, 295, 0, 240], [-150, -155, -150, -120]]
    _, w = scaled_dot_product_attention(*case["args"])
    torch.testing.assert_close(w[0, :2], torch.tensor([1, math.exp(-5)]) / (1 + math.exp(-5)))
    assert float(w[1, 3]) == pytest.approx(1.0)
