"""Property hints (rubric `hints = "hints.<item>"`): asked about a failing public case when no known
mistake and no generic diagnosis explains it. Each takes the case's positional arguments and what
the student's function returned, and says what property the answer lacks, or None.

They only read `got`; it may be anything a submission returned (None, a list, a dict missing keys).
"""
from __future__ import annotations

import torch

from .conv import output_size


def _shape(t) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def _conv_args(args):
    x, w = args[0], args[1]
    stride = args[3] if len(args) > 3 else 1
    padding = args[4] if len(args) > 4 else 0
    return x, w, stride, padding


def conv2d(args: tuple, got):
    x, w, stride, padding = _conv_args(args)
    N, _, H, W = x.shape
    F, _, KH, KW = w.shape
    OH, OW = output_size(H, KH, stride, padding), output_size(W, KW, stride, padding)
    if isinstance(got, torch.Tensor) and tuple(got.shape) != (N, F, OH, OW):
        return {"zh": f"输出形状是 {_shape(got)}，应为 (N, F, OH, OW) = ({N}, {F}, {OH}, {OW})："
                      f"OH = (H + 2*padding - KH) // stride + 1 = ({H} + {2 * padding} - {KH}) // {stride} + 1 = {OH}，"
                      f"OW = ({W} + {2 * padding} - {KW}) // {stride} + 1 = {OW}。",
                "en": f"The output has shape {_shape(got)}; it should be (N, F, OH, OW) = ({N}, {F}, {OH}, {OW}): "
                      f"OH = (H + 2*padding - KH) // stride + 1 = ({H} + {2 * padding} - {KH}) // {stride} + 1 = {OH}, "
                      f"OW = ({W} + {2 * padding} - {KW}) // {stride} + 1 = {OW}."}
    return None


def max_pool2d(args: tuple, got):
    x, k, s = args[0], args[1], args[2]
    N, C, H, W = x.shape
    OH, OW = output_size(H, k, s), output_size(W, k, s)
    if isinstance(got, torch.Tensor) and tuple(got.shape) != (N, C, OH, OW):
        return {"zh": f"输出形状是 {_shape(got)}，应为 ({N}, {C}, {OH}, {OW})：OH = (H - kernel_size) // stride + 1 = "
                      f"({H} - {k}) // {s} + 1 = {OH}（无填充，放不下的窗口丢弃），OW 同理。",
                "en": f"The output has shape {_shape(got)}; it should be ({N}, {C}, {OH}, {OW}): OH = (H - kernel_size) // "
                      f"stride + 1 = ({H} - {k}) // {s} + 1 = {OH} (no padding; a window that does not fit is dropped), "
                      "likewise OW."}
    if isinstance(got, torch.Tensor) and got.shape == (N, C, OH, OW) and x.numel():
        top = x.unfold(2, k, s).unfold(3, k, s).amax(dim=(-2, -1))
        got = got.to(x.dtype)
        if bool((got > top + 1e-6).any()):
            return {"zh": "有的输出比它所在窗口里的每个值都大（例如全是负数的窗口得到了 0）：最大池化的结果必须是窗口中的某一个值，"
                          "不要从 0 开始取最大值。",
                    "en": "Some outputs are larger than every value in their window (e.g. 0 for a window of negatives): a max "
                          "pool returns one of the window's values; do not start the running max at 0."}
        if bool((got < top - 1e-6).any()):
            return {"zh": "有的输出小于所在窗口的最大值：每个输出应是窗口 x[..., i*stride : i*stride+kernel_size, "
                          "j*stride : j*stride+kernel_size] 中最大的那个值。",
                    "en": "Some outputs are below their window's maximum: each output is the largest value of the window "
                          "x[..., i*stride : i*stride+kernel_size, j*stride : j*stride+kernel_size]."}
    return None


def conv2d_backward(args: tuple, got):
    dout, x, w, b = args[0], args[1], args[2], args[3]
    want = {"dx": x.shape, "dw": w.shape, "db": b.shape}
    if not isinstance(got, dict):
        return {"zh": f"应返回字典 {{\"dx\": ..., \"dw\": ..., \"db\": ...}}，而不是 {type(got).__name__}。",
                "en": f"Return a dict {{\"dx\": ..., \"dw\": ..., \"db\": ...}}, not a {type(got).__name__}."}
    missing = [k for k in want if k not in got]
    if missing:
        return {"zh": f"返回的字典缺少键 {', '.join(missing)}：键必须正好是 \"dx\"、\"dw\"、\"db\"。",
                "en": f"The returned dict lacks the key(s) {', '.join(missing)}: the keys are exactly \"dx\", \"dw\", \"db\"."}
    wrong = [(k, v) for k, v in got.items() if k in want and isinstance(v, torch.Tensor) and v.shape != want[k]]
    if wrong:
        k, v = wrong[0]
        of = {"dx": "x", "dw": "w", "db": "b"}[k]
        return {"zh": f"{k} 的形状是 {_shape(v)}，应与 {of} 相同：{_shape(torch.empty(want[k]))}。每个梯度的形状与对应的参数相同。",
                "en": f"{k} has shape {_shape(v)}; it must have {of}'s shape, {_shape(torch.empty(want[k]))}. "
                      "Every gradient has the shape of what it is the gradient of."}
    return None


def batch_norm(args: tuple, got):
    x = args[0]
    if not isinstance(got, tuple) or len(got) != 3:
        return {"zh": "应返回三个值组成的元组 (out, running_mean, running_var)。",
                "en": "Return a tuple of three values, (out, running_mean, running_var)."}
    out = got[0]
    if isinstance(out, torch.Tensor) and out.shape != x.shape:
        return {"zh": f"out 的形状是 {_shape(out)}，应与 x 相同 {_shape(x)}：均值和方差沿批次维（dim=0）计算，每个特征一个。",
                "en": f"out has shape {_shape(out)}; it must have x's shape {_shape(x)}: the mean and variance are taken "
                      "over the batch dim (dim=0), one per feature."}
    return None
