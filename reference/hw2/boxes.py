"""Box operations (边界框运算) for hw2 Part C: IoU, NMS, and the R-CNN box coding.

Boxes are (x1, y1, x2, y2) in continuous coordinates: width = x2 - x1, no "+1 pixel"
(torchvision's convention, not py-faster-rcnn's). Semantics are pinned in reference/hw2/README.md.
"""
from __future__ import annotations

import torch


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area (面积) of (N, 4) boxes: (x2 - x1) * (y2 - y1)."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise intersection over union (交并比, IoU), like torchvision.ops.box_iou.

    Args:
        boxes1: (N, 4), boxes2: (M, 4), both (x1, y1, x2, y2).

    Returns:
        (N, M): entry [i, j] is IoU(boxes1[i], boxes2[j]). Two zero-area boxes give 0/0 = NaN,
        as in torchvision; hw2's test cases never contain such a pair.
    """
    area1, area2 = box_area(boxes1), box_area(boxes2)
    # Broadcasting (N, 1, 2) against (M, 2) gives every pair at once.
    top_left = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    # Disjoint boxes have a negative width or height here: clamp it, or two negatives multiply
    # to a positive "intersection".
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2 - inter   # inclusion-exclusion (容斥): the overlap counted once
    return inter / union


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression (非极大值抑制), like torchvision.ops.nms.

    Visit boxes in decreasing score; keep a box unless a box kept before it overlaps it with
    IoU > iou_threshold (strictly: IoU equal to the threshold is kept).

    Args:
        boxes: (N, 4) (x1, y1, x2, y2); scores: (N,); iou_threshold: a Python float.

    Returns:
        int64 tensor of the kept indices, in decreasing score order; empty input gives an empty
        int64 tensor. Equal scores are visited in index order here (a stable sort), but any order
        among ties is acceptable: hw2's cases have no ties.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64)
    order = torch.argsort(scores, descending=True, stable=True)
    iou = box_iou(boxes, boxes)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        # torchvision compares the float IoU with the threshold as a double; do the same, so that
        # e.g. IoU 0.3f (0.30000001) > 0.3 exactly as in torchvision.
        suppressed |= iou[i].double() > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


def _centres_and_sizes(boxes: torch.Tensor):
    """(x1, y1, x2, y2) -> centre x, centre y, width, height (中心点与宽高)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h


def encode_boxes(proposals: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Box regression targets (边界框回归目标) (dx, dy, dw, dh) of `targets` relative to `proposals`.

    dx = (gx - px) / pw, dy = (gy - py) / ph, dw = log(gw / pw), dh = log(gh / ph), with centres
    x1 + 0.5 w and widths x2 - x1; weights (1, 1, 1, 1). Note the argument order: proposals first
    (torchvision's encode_boxes takes the ground truth first).

    Args:
        proposals: (N, 4) region proposals (候选框) P; targets: (N, 4) ground-truth boxes (真实框) G.

    Returns:
        (N, 4) deltas.
    """
    px, py, pw, ph = _centres_and_sizes(proposals)
    gx, gy, gw, gh = _centres_and_sizes(targets)
    return torch.stack([(gx - px) / pw, (gy - py) / ph,
                        torch.log(gw / pw), torch.log(gh / ph)], dim=1)


def decode_boxes(proposals: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Apply regression deltas (应用回归偏移) to proposals: the inverse of encode_boxes.

    centre = delta * size + proposal centre, size = exp(delta) * proposal size.

    Args:
        proposals: (N, 4) (x1, y1, x2, y2); deltas: (N, 4) (dx, dy, dw, dh).

    Returns:
        (N, 4) boxes as (x1, y1, x2, y2), not (cx, cy, w, h). No clamp on dw, dh (detection
        libraries clamp them at log(1000/16); hw2's cases stay below that).
    """
    px, py, pw, ph = _centres_and_sizes(proposals)
    dx, dy, dw, dh = deltas.unbind(dim=1)
    cx, cy = dx * pw + px, dy * ph + py
    w, h = torch.exp(dw) * pw, torch.exp(dh) * ph
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=1)
