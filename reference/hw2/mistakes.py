"""Known mistakes (常见错误): each one re-implements an item the wrong way, with the item's signature.

The grader runs a student's failing answer against these; when one matches, the student gets the
mistake's partial credit and its hint (rubrics/hw2.toml maps ids to these functions).
Part A mistakes take the canonical inputs dict (part_a.canonical_inputs) and return the item's value.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import boxes as _boxes
from .attention import causal_mask
from .roi_pool import round_half_away_from_zero

NEG_INF = float("-inf")


# --- Part A: the self-attention script -----------------------------------------------------------

def _qkv(inputs):
    return inputs["X"] @ inputs["W_Q"], inputs["X"] @ inputs["W_K"], inputs["X"] @ inputs["W_V"]


def q_weight_transposed(inputs):        # qkv-weight-transposed: nn.Linear's x @ W.T habit
    return inputs["X"] @ inputs["W_Q"].T


def k_weight_transposed(inputs):
    return inputs["X"] @ inputs["W_K"].T


def v_weight_transposed(inputs):
    return inputs["X"] @ inputs["W_V"].T


def score_no_scale(inputs):
    Q, K, _ = _qkv(inputs)
    return Q @ K.T


def score_div_d(inputs):
    Q, K, _ = _qkv(inputs)
    return Q @ K.T / Q.shape[-1]


def score_transposed(inputs):           # K Q^T: rows are keys, not queries
    Q, K, _ = _qkv(inputs)
    return K @ Q.T / math.sqrt(Q.shape[-1])


def score_d_from_seq_len(inputs):       # d = X.shape[0] (5 words) instead of the vector size 4
    Q, K, _ = _qkv(inputs)
    return Q @ K.T / math.sqrt(inputs["X"].shape[0])


def _score(inputs):
    Q, K, _ = _qkv(inputs)
    return Q @ K.T / math.sqrt(Q.shape[-1])


def attention_softmax_dim0(inputs):
    return F.softmax(_score(inputs), dim=0)


def output_attention_transposed(inputs):
    _, _, V = _qkv(inputs)
    return F.softmax(_score(inputs), dim=-1).T @ V


def output_score_times_v(inputs):       # softmax skipped: the raw scores weight V
    _, _, V = _qkv(inputs)
    return _score(inputs) @ V


# --- Part B: scaled_dot_product_attention --------------------------------------------------------

def softmax_unstable(scores, dim=-1):
    """The textbook formula as written, exp(s) / sum(exp(s)), without subtracting the row max: in
    float32 exp overflows to inf above about 88.7 (inf / inf = NaN) and a row whose scores are all
    below about -104 underflows to 0 / 0 = NaN. The order of operations is the one students write,
    so the NaN and 0 land where theirs do."""
    e = torch.exp(scores)
    return e / e.sum(dim=dim, keepdim=True)


def _sdpa(Q, K, V, mask, *, scale, fill=NEG_INF, invert=False, after=False, dim=-1, add=False, unstable=False):
    """The reference with one knob turned; each public mistake below turns exactly one."""
    scores = Q @ K.transpose(-2, -1) * scale
    if mask is not None and add:
        scores = scores + mask.to(scores.dtype)
    elif mask is not None and not after:
        allowed = ~mask if invert else mask
        scores = torch.where(allowed, scores, torch.tensor(fill, dtype=scores.dtype))
    weights = softmax_unstable(scores, dim) if unstable else torch.softmax(scores, dim=dim)
    if mask is not None and after:
        weights = torch.where(mask, weights, torch.zeros((), dtype=weights.dtype))
    return weights @ V, weights


def sdpa_no_scale(Q, K, V, mask=None):
    return _sdpa(Q, K, V, mask, scale=1.0)


def sdpa_scale_dv(Q, K, V, mask=None):
    return _sdpa(Q, K, V, mask, scale=1 / math.sqrt(V.shape[-1]))


def sdpa_mask_fill_zero(Q, K, V, mask=None):
    return _sdpa(Q, K, V, mask, scale=1 / math.sqrt(Q.shape[-1]), fill=0.0)


def sdpa_mask_inverted(Q, K, V, mask=None):
    return _sdpa(Q, K, V, mask, scale=1 / math.sqrt(Q.shape[-1]), invert=True)


def sdpa_mask_after_softmax(Q, K, V, mask=None):
    return _sdpa(Q, K, V, mask, scale=1 / math.sqrt(Q.shape[-1]), after=True)


def sdpa_softmax_dim0(Q, K, V, mask=None):  # softmax over the queries (dim -2)
    return _sdpa(Q, K, V, mask, scale=1 / math.sqrt(Q.shape[-1]), dim=-2)


def sdpa_mask_added_as_float(Q, K, V, mask=None):  # mask.float() added to the scores (+1 / +0)
    return _sdpa(Q, K, V, mask, scale=1 / math.sqrt(Q.shape[-1]), add=True)


def sdpa_unstable_softmax(Q, K, V, mask=None):     # e = exp(scores); e / e.sum(-1): NaN on large scores
    return _sdpa(Q, K, V, mask, scale=1 / math.sqrt(Q.shape[-1]), unstable=True)


# --- Part B: causal_mask -------------------------------------------------------------------------

def causal_no_diagonal(n):
    return torch.ones(n, n, dtype=torch.bool).tril(-1)


def causal_inverted(n):                 # True on the future: nn.MultiheadAttention's polarity
    return torch.ones(n, n, dtype=torch.bool).triu(1)


def causal_float(n):                    # right pattern, wrong type: a float mask is added, not applied
    return torch.ones(n, n).tril()


# --- Part B: multi_head_attention ----------------------------------------------------------------

def _mha(X, W_Q, W_K, W_V, W_O, num_heads, causal, *, scale_dim=None, interleave=False,
         project=True, average=False, transpose_w=False, unstable=False):
    if transpose_w:
        W_Q, W_K, W_V, W_O = W_Q.T, W_K.T, W_V.T, W_O.T
    n, d_model = X.shape
    d_head = d_model // num_heads

    def split(M):
        if interleave:   # head h gets columns h, h + num_heads, ... instead of a contiguous chunk
            return M.reshape(n, d_head, num_heads).permute(2, 0, 1)
        return M.reshape(n, num_heads, d_head).transpose(0, 1)

    Q, K, V = split(X @ W_Q), split(X @ W_K), split(X @ W_V)
    scores = Q @ K.transpose(-2, -1) / math.sqrt(scale_dim or d_head)
    if causal:
        scores = scores.masked_fill(~causal_mask(n), NEG_INF)
    weights = softmax_unstable(scores) if unstable else torch.softmax(scores, dim=-1)
    heads = weights @ V
    if interleave:
        concat = heads.permute(1, 2, 0).reshape(n, d_model)
    else:
        concat = heads.transpose(0, 1).reshape(n, d_model)
    out = concat @ W_O if project else concat
    return out, (weights.mean(dim=0) if average else weights)


def mha_scale_dmodel(X, W_Q, W_K, W_V, W_O, num_heads, causal=False):
    return _mha(X, W_Q, W_K, W_V, W_O, num_heads, causal, scale_dim=X.shape[-1])


def mha_heads_interleaved(X, W_Q, W_K, W_V, W_O, num_heads, causal=False):
    return _mha(X, W_Q, W_K, W_V, W_O, num_heads, causal, interleave=True)


def mha_no_output_projection(X, W_Q, W_K, W_V, W_O, num_heads, causal=False):
    return _mha(X, W_Q, W_K, W_V, W_O, num_heads, causal, project=False)


def mha_weights_averaged(X, W_Q, W_K, W_V, W_O, num_heads, causal=False):
    return _mha(X, W_Q, W_K, W_V, W_O, num_heads, causal, average=True)


def mha_weight_transposed(X, W_Q, W_K, W_V, W_O, num_heads, causal=False):
    return _mha(X, W_Q, W_K, W_V, W_O, num_heads, causal, transpose_w=True)


def mha_causal_ignored(X, W_Q, W_K, W_V, W_O, num_heads, causal=False):
    return _mha(X, W_Q, W_K, W_V, W_O, num_heads, False)


def mha_unstable_softmax(X, W_Q, W_K, W_V, W_O, num_heads, causal=False):   # per head, exp without the row max
    return _mha(X, W_Q, W_K, W_V, W_O, num_heads, causal, unstable=True)


# --- Part C: box_iou -----------------------------------------------------------------------------

def _iou(b1, b2, *, plus=0.0, clamp=True, subtract_inter=True):
    area1 = (b1[:, 2] - b1[:, 0] + plus) * (b1[:, 3] - b1[:, 1] + plus)
    area2 = (b2[:, 2] - b2[:, 0] + plus) * (b2[:, 3] - b2[:, 1] + plus)
    wh = torch.min(b1[:, None, 2:], b2[:, 2:]) - torch.max(b1[:, None, :2], b2[:, :2]) + plus
    if clamp:
        wh = wh.clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2 - (inter if subtract_inter else 0)
    return inter / union


def iou_plus_one(boxes1, boxes2):       # py-faster-rcnn's pixel convention: w = x2 - x1 + 1
    return _iou(boxes1, boxes2, plus=1.0)


def iou_no_clamp(boxes1, boxes2):
    return _iou(boxes1, boxes2, clamp=False)


def iou_union_sum(boxes1, boxes2):      # union = a1 + a2: the overlap counted twice
    return _iou(boxes1, boxes2, subtract_inter=False)


def iou_paired(boxes1, boxes2):         # IoU of boxes1[i] with boxes2[i] only: (min(N, M),), not (N, M)
    n = min(len(boxes1), len(boxes2))
    return _iou(boxes1[:n], boxes2[:n]).diagonal()


def iou_cxcywh(boxes1, boxes2):         # boxes read as (cx, cy, w, h)
    def corners(b):
        return torch.cat([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], dim=1)
    return _iou(corners(boxes1), corners(boxes2))


# --- Part C: nms ---------------------------------------------------------------------------------

def _nms(boxes, scores, iou_threshold, *, ge=False, sort=True):
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64)
    order = torch.argsort(scores, descending=True, stable=True) if sort else torch.arange(len(boxes))
    iou = _boxes.box_iou(boxes, boxes).double()
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= (iou[i] >= iou_threshold) if ge else (iou[i] > iou_threshold)
    return torch.tensor(keep, dtype=torch.int64)


def nms_ge(boxes, scores, iou_threshold):
    return _nms(boxes, scores, iou_threshold, ge=True)


def nms_no_sort(boxes, scores, iou_threshold):
    return _nms(boxes, scores, iou_threshold, sort=False)


def nms_index_order(boxes, scores, iou_threshold):   # the right boxes, listed by index, not by score
    return _nms(boxes, scores, iou_threshold).sort().values


def nms_returns_mask(boxes, scores, iou_threshold):  # a bool keep-mask over the boxes, not indices
    mask = torch.zeros(len(boxes), dtype=torch.bool)
    mask[_nms(boxes, scores, iou_threshold)] = True
    return mask


# --- Part C: encode_boxes / decode_boxes ---------------------------------------------------------

def _cs(boxes, plus=0.0):
    w = boxes[:, 2] - boxes[:, 0] + plus
    h = boxes[:, 3] - boxes[:, 1] + plus
    return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h


def encode_plus_one(proposals, targets):
    px, py, pw, ph = _cs(proposals, 1.0)
    gx, gy, gw, gh = _cs(targets, 1.0)
    return torch.stack([(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], dim=1)


def encode_log_inverted(proposals, targets):  # log(pw / gw) instead of log(gw / pw)
    px, py, pw, ph = _cs(proposals)
    gx, gy, gw, gh = _cs(targets)
    return torch.stack([(gx - px) / pw, (gy - py) / ph, torch.log(pw / gw), torch.log(ph / gh)], dim=1)


def encode_roles_swapped(proposals, targets):  # torchvision's argument order (ground truth first)
    return _boxes.encode_boxes(targets, proposals)


def encode_weights_10_10_5_5(proposals, targets):  # Faster R-CNN's BoxCoder weights
    return _boxes.encode_boxes(proposals, targets) * torch.tensor([10.0, 10.0, 5.0, 5.0])


def decode_returns_cxcywh(proposals, deltas):
    x1, y1, x2, y2 = _boxes.decode_boxes(proposals, deltas).unbind(dim=1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=1)


def decode_no_exp(proposals, deltas):          # w = dw * pw: the log-space width used linearly
    px, py, pw, ph = _cs(proposals)
    dx, dy, dw, dh = deltas.unbind(dim=1)
    cx, cy, w, h = dx * pw + px, dy * ph + py, dw * pw, dh * ph
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=1)


def decode_weights_10_10_5_5(proposals, deltas):
    return _boxes.decode_boxes(proposals, deltas / torch.tensor([10.0, 10.0, 5.0, 5.0]))


# --- Part C: roi_pool ----------------------------------------------------------------------------

def _roi(features, rois, output_size, spatial_scale, *, rounding=round_half_away_from_zero,
         plus_one=1, empty=0.0, use_batch=True, swap_xy=False):
    """The kernel with one knob turned (see roi_pool.py for the commented original)."""
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    _, C, H, W = features.shape
    out = features.new_zeros((rois.shape[0], C, out_h, out_w))
    rois = rois.to(features.dtype)
    corners = rounding(rois[:, 1:] * spatial_scale).long()
    for k in range(rois.shape[0]):
        b = int(rois[k, 0]) if use_batch else 0
        x1, y1, x2, y2 = corners[k].tolist()
        if swap_xy:
            x1, y1, x2, y2 = y1, x1, y2, x2
        rw, rh = max(x2 - x1 + plus_one, 1), max(y2 - y1 + plus_one, 1)
        bh, bw = torch.tensor(rh, dtype=features.dtype) / out_h, torch.tensor(rw, dtype=features.dtype) / out_w
        for i in range(out_h):
            top = min(max(int(torch.floor(i * bh)) + y1, 0), H)
            bottom = min(max(int(torch.ceil((i + 1) * bh)) + y1, 0), H)
            for j in range(out_w):
                left = min(max(int(torch.floor(j * bw)) + x1, 0), W)
                right = min(max(int(torch.ceil((j + 1) * bw)) + x1, 0), W)
                if bottom > top and right > left:
                    out[k, :, i, j] = features[b, :, top:bottom, left:right].amax(dim=(-2, -1))
                else:
                    out[k, :, i, j] = empty
    return out


def roi_bankers_rounding(features, rois, output_size, spatial_scale):  # torch.round: 2.5 -> 2
    return _roi(features, rois, output_size, spatial_scale, rounding=torch.round)


def roi_truncate(features, rois, output_size, spatial_scale):          # int(): 2.7 -> 2, -0.5 -> 0
    return _roi(features, rois, output_size, spatial_scale, rounding=torch.trunc)


def roi_no_plus_one(features, rois, output_size, spatial_scale):       # end cell excluded
    return _roi(features, rois, output_size, spatial_scale, plus_one=0)


def roi_empty_bins_neg_inf(features, rois, output_size, spatial_scale):
    return _roi(features, rois, output_size, spatial_scale, empty=NEG_INF)


def roi_batch_ignored(features, rois, output_size, spatial_scale):     # always features[0]
    return _roi(features, rois, output_size, spatial_scale, use_batch=False)


def roi_xy_swapped(features, rois, output_size, spatial_scale):        # rois read as [b, y1, x1, y2, x2]
    return _roi(features, rois, output_size, spatial_scale, swap_xy=True)


def roi_crop_adaptive(features, rois, output_size, spatial_scale):
    """Crop the (rounded, clipped) RoI out of the map, then adaptive_max_pool2d the crop: agrees with
    the kernel only for interior RoIs whose size divides evenly."""
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    _, C, H, W = features.shape
    out = features.new_zeros((rois.shape[0], C, out_h, out_w))
    corners = round_half_away_from_zero(rois[:, 1:].to(features.dtype) * spatial_scale).long()
    for k in range(rois.shape[0]):
        x1, y1, x2, y2 = corners[k].tolist()
        crop = features[int(rois[k, 0]), :, max(y1, 0):min(y2 + 1, H), max(x1, 0):min(x2 + 1, W)]
        if crop.numel():
            out[k] = F.adaptive_max_pool2d(crop, (out_h, out_w))
    return out
