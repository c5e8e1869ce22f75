"""Property hints for hw2's functions (the rubric's `hints = "hints.<name>"`).

Each takes a failing public case's arguments and the student's value (plain: tensors, numbers,
tuples) and returns {"zh": ..., "en": ...} or None. They look only at the student's own output
and the case's inputs, so they reveal no reference value. The grader asks them after its generic
diagnoses (NaN, transpose, order, shape, scale, rows that must sum to 1) found nothing.
"""
from __future__ import annotations

import torch


def box_iou(args, got):
    if len(args) < 2 or not isinstance(got, torch.Tensor) or not got.is_floating_point() or got.numel() == 0:
        return None
    boxes1, boxes2 = args[0], args[1]
    g = got.double()
    if bool(((g < -1e-6) | (g > 1 + 1e-6)).any()):
        return {"zh": f"IoU 必须在 [0, 1] 内，你的结果范围是 [{float(g.min()):.3g}, {float(g.max()):.3g}]。",
                "en": f"an IoU must lie in [0, 1]; yours range over [{float(g.min()):.3g}, {float(g.max()):.3g}]."}
    if isinstance(boxes1, torch.Tensor) and isinstance(boxes2, torch.Tensor) and boxes1.shape == boxes2.shape \
            and torch.equal(boxes1, boxes2) and g.dim() == 2 and g.shape[0] == g.shape[1]:
        if not torch.allclose(g, g.T, atol=1e-5):
            return {"zh": "同一组框两两的 IoU 矩阵应对称，你的不对称。",
                    "en": "the IoU matrix of a set of boxes with itself must be symmetric; yours is not."}
    return None


def nms(args, got):
    scores = args[1] if len(args) >= 2 else None
    if not isinstance(scores, torch.Tensor) or not isinstance(got, torch.Tensor) or got.dim() != 1 \
            or got.is_floating_point() or got.dtype == torch.bool:
        return None
    if got.numel() and (int(got.min()) < 0 or int(got.max()) >= len(scores)):
        return None
    s = scores[got.long()]
    if s.numel() > 1 and bool((s[1:] > s[:-1]).any()):
        return {"zh": "返回的下标没有按分数从高到低排列。", "en": "the returned indices are not in decreasing score."}
    return None


def _causal(mask, weights):
    """Weights under a causal (lower-triangular) mask must be zero above the diagonal."""
    if not isinstance(mask, torch.Tensor) or not isinstance(weights, torch.Tensor) or mask.dtype != torch.bool:
        return None
    if mask.dim() != 2 or mask.shape[0] != mask.shape[1] or not torch.equal(mask, torch.ones_like(mask).tril()):
        return None
    n = mask.shape[0]
    if weights.shape[-2:] != (n, n):
        return None
    above = weights.double().triu(1).abs()
    if float(above.max()) <= 1e-6:
        return None
    where = [int(i) for i in (above > 1e-6).nonzero()[0]]
    return {"zh": f"因果掩码下，对角线以上的权重必须为 0：你的在 {where} 处不是 0（查询不能看到未来的键）。",
            "en": f"under a causal mask the weights above the diagonal must be 0: yours are not, e.g. at {where} "
                  f"(a query must not see future keys)."}


def scaled_dot_product_attention(args, got):
    """(Q, K, V, mask) -> (output, weights)."""
    if len(args) >= 4 and isinstance(got, tuple) and len(got) == 2:
        return _causal(args[3], got[1])
    return None
