"""RoI max pooling (RoI 池化) for hw2 Part C, exactly as torchvision's CPU kernel computes it.

Read reference/hw2/README.md first: this is the kernel (torchvision/csrc/ops/cpu/roi_pool_kernel.cpp),
not "crop the map and adaptive-max-pool the crop", which differs on .5 corners and at the borders.
"""
from __future__ import annotations

import torch


def round_half_away_from_zero(x: torch.Tensor) -> torch.Tensor:
    """C's round(): halves go away from zero (2.5 -> 3, -2.5 -> -3).

    torch.round, numpy.round and Python's round() all round half to even (2.5 -> 2): that is the
    trap. x - trunc(x) is exact in floating point, so this never rounds a value like 0.49999997 up
    (floor(x + 0.5) would).
    """
    t = torch.trunc(x)
    return t + torch.sign(x) * ((x - t).abs() >= 0.5)


def _bin_edges(roi_size: int, pooled: int, dtype: torch.dtype) -> tuple[list[int], list[int]]:
    """Start (floor) and end (ceil, exclusive) of each of `pooled` bins over `roi_size` cells.

    The bin size is fractional and, like the kernel, computed in the features' dtype.
    Neighbouring bins may share a cell; no bin is empty before clipping.
    """
    bin_size = torch.tensor(roi_size, dtype=dtype) / pooled
    i = torch.arange(pooled, dtype=dtype)
    return torch.floor(i * bin_size).long().tolist(), torch.ceil((i + 1) * bin_size).long().tolist()


def roi_pool(features: torch.Tensor, rois: torch.Tensor, output_size, spatial_scale: float) -> torch.Tensor:
    """RoI max pooling (感兴趣区域池化), Fast R-CNN's layer, like torchvision.ops.roi_pool on the CPU.

    For each RoI:
      1. batch index: rois[k, 0] truncated to int;
      2. corners: x * spatial_scale, rounded half away from zero, in the features' dtype;
      3. RoI size in cells: max(end - start + 1, 1) (the end cell is included; a malformed RoI
         with x2 < x1 becomes one cell);
      4. bin (i, j) covers rows floor(i * bin_h) .. ceil((i + 1) * bin_h) - 1 of the *unclipped*
         RoI, offset by its start, and only then clipped to the feature map;
      5. output = max over the bin, or 0 if the clipped bin is empty.

    Args:
        features: (B, C, H, W) feature map (特征图).
        rois: (K, 5) rows [batch_index, x1, y1, x2, y2] in image coordinates.
        output_size: int or (h, w).
        spatial_scale: feature-map size / image size, e.g. 1/16 for VGG16's conv5.

    Returns:
        (K, C, h, w) in the features' dtype; K = 0 gives shape (0, C, h, w).
    """
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    _, C, H, W = features.shape
    out = features.new_zeros((rois.shape[0], C, out_h, out_w))   # empty bins stay 0
    rois = rois.to(features.dtype)
    # The product and the rounding happen in the features' dtype, as in the C++ template.
    corners = round_half_away_from_zero(rois[:, 1:] * spatial_scale).long()
    for k in range(rois.shape[0]):
        b = int(rois[k, 0])                       # C's (int) cast truncates
        x1, y1, x2, y2 = corners[k].tolist()
        roi_w, roi_h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        row_starts, row_ends = _bin_edges(roi_h, out_h, features.dtype)
        col_starts, col_ends = _bin_edges(roi_w, out_w, features.dtype)
        for i in range(out_h):
            top = min(max(row_starts[i] + y1, 0), H)
            bottom = min(max(row_ends[i] + y1, 0), H)
            for j in range(out_w):
                left = min(max(col_starts[j] + x1, 0), W)
                right = min(max(col_ends[j] + x1, 0), W)
                if bottom > top and right > left:
                    out[k, :, i, j] = features[b, :, top:bottom, left:right].amax(dim=(-2, -1))
    return out
