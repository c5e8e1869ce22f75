"""Test-case generators, one per function item: `<item>(seed, public) -> list[dict]`.

Each case is {"id", "about": {"zh", "en"}, "args": [...], "kwargs": {...}}.
public=True (the public seed): hand-worked edge cases, then a few random ones from the seed.
public=False (a hidden seed): random cases from torch.Generator(seed), with a few edge shapes.

Every case passes exactly what the starter documents (rubrics/hw3.toml, [items.signature]):
float32 tensors, int stride / padding / kernel_size, `mode` as a keyword ("train" or "eval"),
`momentum` and `eps` as keyword floats when they are not the defaults. What the semantics leave
open is avoided (README.md): no kernel larger than the (unpadded) input, batch_norm in train mode
always has N >= 2, momentum is never 0.5 (where a reversed momentum is invisible).
"""
from __future__ import annotations

import zlib

import torch

from .conv import output_size

F32 = torch.float32
# Random cases per hidden seed and function, beside the hidden edge cases.
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


def _randn(g, *shape) -> torch.Tensor:
    return torch.randn(*shape, generator=g)


# --- conv2d --------------------------------------------------------------------------------------

def _conv_inputs(g, N, C, H, W, F, KH, KW):
    return _randn(g, N, C, H, W), _randn(g, F, C, KH, KW), _randn(g, F)


def _random_conv_shape(g):
    """(N, C, H, W, F, KH, KW, stride, padding) with the kernel no larger than the input itself
    (so a mistake that pads the wrong dims, or not at all, still has an output to compare)."""
    while True:
        N, C, F = _randint(g, 1, 3), _randint(g, 1, 4), _randint(g, 1, 4)
        H, W = _randint(g, 3, 9), _randint(g, 3, 9)
        KH, KW = _randint(g, 1, 4), _randint(g, 1, 4)
        stride, padding = _randint(g, 1, 3), _randint(g, 0, 2)
        if KH <= H and KW <= W:
            return N, C, H, W, F, KH, KW, stride, padding


def _shape_about(N, C, H, W, F, KH, KW, stride, padding) -> str:
    OH, OW = output_size(H, KH, stride, padding), output_size(W, KW, stride, padding)
    return (f"x ({N}, {C}, {H}, {W}), w ({F}, {C}, {KH}, {KW}), stride={stride}, padding={padding} "
            f"-> ({N}, {F}, {OH}, {OW})")


def _random_conv(g, id: str) -> dict:
    shape = _random_conv_shape(g)
    N, C, H, W, F, KH, KW, stride, padding = shape
    about = _shape_about(*shape)
    return _case(id, "随机：" + about, "random: " + about, *_conv_inputs(g, N, C, H, W, F, KH, KW), stride, padding)


def conv2d(seed: int, public: bool) -> list[dict]:
    g = _rng("conv2d", seed, public)
    cases = []
    if public:
        x = torch.arange(1, 10, dtype=F32).reshape(1, 1, 3, 3)
        w = _t([[[[1, 2], [0, -1]]]])
        cases.append(_case("hand-asymmetric-kernel",
                           "手算：x = 1..9 (3x3)，核 [[1, 2], [0, -1]]，b = 0，默认步长 1、无填充：输出 [[0, 2], [6, 8]]；"
                           "核不对称，翻转核（数学上的卷积）会得到不同的结果",
                           "hand-worked: x = 1..9 (3x3), kernel [[1, 2], [0, -1]], b = 0, default stride 1 and no padding: "
                           "output [[0, 2], [6, 8]]; the kernel is not symmetric, so a flipped kernel (the textbook "
                           "convolution) gives other numbers",
                           x, w, torch.zeros(1)))
        eye = torch.zeros(2, 2, 3, 3)
        eye[0, 0, 1, 1] = eye[1, 1, 1, 1] = 1.0
        cases.append(_case("identity-kernel-padding-1", "中心为 1 的 3x3 核，填充 1：输出 = x + b（形状不变）",
                           "3x3 kernels with a 1 in the centre, padding 1: the output is x + b (same shape)",
                           _randn(g, 2, 2, 5, 5), eye, _t([0.5, -1.0]), 1, 1))
        cases.append(_case("stride-2-padding-1", "N=2，C=3，7x7 输入，4 个 3x3 核，步长 2、填充 1：输出 4x4",
                           "N=2, C=3, 7x7 input, four 3x3 kernels, stride 2, padding 1: output 4x4",
                           *_conv_inputs(g, 2, 3, 7, 7, 4, 3, 3), 2, 1))
        cases.append(_case("padding-2", "填充 2（每边各 2 行/列）：4x5 输入、3x3 核，输出 6x7",
                           "padding 2 (two rows/columns on every side): 4x5 input, 3x3 kernel, output 6x7",
                           *_conv_inputs(g, 1, 2, 4, 5, 3, 3, 3), 1, 2))
        cases.append(_case("kernel-1x1", "1x1 卷积：每个像素上对通道做线性组合（3 个通道 -> 2 个）",
                           "1x1 convolution: a linear map over the channels at every pixel (3 channels -> 2)",
                           *_conv_inputs(g, 2, 3, 4, 6, 2, 1, 1)))
        cases.append(_case("non-square-input-and-kernel", "非正方形：5x8 输入，2x3 核（KH=2，KW=3），输出 4x6",
                           "non-square: 5x8 input, a 2x3 kernel (KH=2, KW=3), output 4x6",
                           *_conv_inputs(g, 2, 2, 5, 8, 3, 2, 3), 1, 0))
        cases.append(_case("stride-2-floor", "步长 2、无填充，8x8 输入、3x3 核：(8 - 3) // 2 + 1 = 3，最后一行/列用不到",
                           "stride 2, no padding, 8x8 input, 3x3 kernel: (8 - 3) // 2 + 1 = 3, the last row and column are not reached",
                           *_conv_inputs(g, 1, 2, 8, 8, 2, 3, 3), 2, 0))
        cases.append(_case("stride-3-padding-1-non-square", "步长 3、填充 1，6x9 输入、3x2 核：输出 2x4",
                           "stride 3, padding 1, 6x9 input, a 3x2 kernel: output 2x4",
                           *_conv_inputs(g, 2, 1, 6, 9, 2, 3, 2), 3, 1))
        cases.append(_case("batch-of-one", "N=1：单张图像，3 个通道、4 个 3x3 核，填充 1",
                           "N=1: a single image, 3 channels, four 3x3 kernels, padding 1",
                           *_conv_inputs(g, 1, 3, 6, 6, 4, 3, 3), 1, 1))
        cases.append(_case("kernel-covers-input", "核与输入一样大（4x4）：每个核输出 1x1",
                           "the kernel is as large as the input (4x4): a 1x1 output per kernel",
                           *_conv_inputs(g, 2, 2, 4, 4, 3, 4, 4), 1, 0))
        cases += [_random_conv(g, f"random-{i}") for i in range(1, 4)]
    else:
        cases += [_random_conv(g, f"random-{i}") for i in range(1, HIDDEN_RANDOM + 1)]
        H, W = _randint(g, 5, 9), _randint(g, 5, 9)
        cases.append(_case("stride-2-padding-1", f"随机：{H}x{W} 输入，3x3 核，步长 2、填充 1",
                           f"random: {H}x{W} input, 3x3 kernel, stride 2, padding 1",
                           *_conv_inputs(g, 2, 2, H, W, 3, 3, 3), 2, 1))
        cases.append(_case("non-square-kernel", "随机：3x1 核，填充 2", "random: a 3x1 kernel, padding 2",
                           *_conv_inputs(g, 1, 3, H, W, 2, 3, 1), 1, 2))
    return cases


# --- max_pool2d ----------------------------------------------------------------------------------

def _distinct(g, *shape) -> torch.Tensor:
    """Distinct values (a shuffled arange, centred): every max is unambiguous, and about half are negative."""
    n = 1
    for s in shape:
        n *= s
    return (torch.randperm(n, generator=g).float() - n // 2).reshape(shape) / 4


def _random_pool(g, id: str) -> dict:
    while True:
        N, C = _randint(g, 1, 3), _randint(g, 1, 3)
        H, W = _randint(g, 2, 9), _randint(g, 2, 9)
        k, s = _randint(g, 1, 3), _randint(g, 1, 3)
        if k <= H and k <= W:
            break
    about = f"x ({N}, {C}, {H}, {W}), kernel_size={k}, stride={s}"
    return _case(id, "随机：" + about, "random: " + about, _randn(g, N, C, H, W), k, s)


def max_pool2d(seed: int, public: bool) -> list[dict]:
    g = _rng("max_pool2d", seed, public)
    cases = []
    if public:
        cases.append(_case("hand-4x4", "手算：x = 0..15 (4x4)，2x2 窗口、步长 2：输出 [[5, 7], [13, 15]]",
                           "hand-worked: x = 0..15 (4x4), 2x2 windows, stride 2: output [[5, 7], [13, 15]]",
                           torch.arange(16, dtype=F32).reshape(1, 1, 4, 4), 2, 2))
        cases.append(_case("overlapping-3-stride-2", "重叠窗口：3x3 窗口、步长 2，7x7 输入：输出 3x3",
                           "overlapping windows: 3x3 windows, stride 2, 7x7 input: output 3x3",
                           _distinct(g, 2, 2, 7, 7), 3, 2))
        cases.append(_case("odd-size-floor", "5x7 输入，2x2 窗口、步长 2：输出 2x3，最后一行/列被丢弃（向下取整）",
                           "5x7 input, 2x2 windows, stride 2: output 2x3, the last row and column are dropped (floor)",
                           _distinct(g, 1, 3, 5, 7), 2, 2))
        cases.append(_case("all-negative", "所有值都为负：最大值也是负数（不能从 0 开始取最大值）",
                           "every value is negative: so is every max (do not start the running max at 0)",
                           -1 - torch.rand(2, 2, 4, 6, generator=g), 2, 2))
        cases.append(_case("kernel-1-stride-2", "1x1 窗口、步长 2：隔行隔列取样", "1x1 windows, stride 2: every other row and column",
                           _distinct(g, 1, 2, 5, 6), 1, 2))
        cases.append(_case("stride-1", "2x2 窗口、步长 1：输出 (H-1)x(W-1)", "2x2 windows, stride 1: output (H-1)x(W-1)",
                           _distinct(g, 2, 1, 4, 5), 2, 1))
        cases.append(_case("batch-of-one-non-square", "N=1，非正方形 6x9 输入，3x3 窗口、步长 3",
                           "N=1, non-square 6x9 input, 3x3 windows, stride 3",
                           _distinct(g, 1, 4, 6, 9), 3, 3))
        cases += [_random_pool(g, f"random-{i}") for i in range(1, 3)]
    else:
        cases += [_random_pool(g, f"random-{i}") for i in range(1, HIDDEN_RANDOM + 1)]
        cases.append(_case("overlapping-negative", "随机：全为负数，3x3 窗口、步长 2", "random: all negative, 3x3 windows, stride 2",
                           -1 - torch.rand(1, 2, 7, 6, generator=g), 3, 2))
    return cases


# --- conv2d_backward -----------------------------------------------------------------------------

def _backward_case(g, id: str, zh: str, en: str, N, C, H, W, F, KH, KW, stride, padding) -> dict:
    x, w, b = _conv_inputs(g, N, C, H, W, F, KH, KW)
    dout = _randn(g, N, F, output_size(H, KH, stride, padding), output_size(W, KW, stride, padding))
    return _case(id, zh, en, dout, x, w, b, stride, padding)


def _random_backward(g, id: str) -> dict:
    shape = _random_conv_shape(g)
    about = _shape_about(*shape)
    return _backward_case(g, id, "随机：" + about, "random: " + about, *shape)


def conv2d_backward(seed: int, public: bool) -> list[dict]:
    g = _rng("conv2d_backward", seed, public)
    cases = []
    if public:
        x = torch.arange(1, 10, dtype=F32).reshape(1, 1, 3, 3)
        w = _t([[[[1, 2], [0, -1]]]])
        cases.append(_case("hand-ones", "手算：x = 1..9 (3x3)，核 [[1, 2], [0, -1]]，dout 全为 1 (2x2)：db = 4，"
                           "dw[k, l] = 以 (k, l) 开始的 2x2 块之和，dx = 核在每个位置上的累加",
                           "hand-worked: x = 1..9 (3x3), kernel [[1, 2], [0, -1]], dout all ones (2x2): db = 4, "
                           "dw[k, l] = the sum of the 2x2 block starting at (k, l), dx = the kernel added at every position",
                           torch.ones(1, 1, 2, 2), x, w, torch.zeros(1), 1, 0))
        cases.append(_backward_case(g, "stride-1-batch-3", "N=3，步长 1、无填充：dw 和 db 要对整个批次求和",
                                    "N=3, stride 1, no padding: dw and db sum over the whole batch", 3, 2, 5, 5, 2, 3, 3, 1, 0))
        cases.append(_backward_case(g, "stride-2-padding-1", "N=2，7x7 输入，3x3 核，步长 2、填充 1：dx 去掉填充后形状与 x 相同",
                                    "N=2, 7x7 input, 3x3 kernel, stride 2, padding 1: dx, with the padding dropped, has x's shape",
                                    2, 3, 7, 7, 4, 3, 3, 2, 1))
        cases.append(_backward_case(g, "stride-2-unreached-row", "8x8 输入，3x3 核，步长 2、无填充：最后一行/列不在任何窗口中，梯度为 0",
                                    "8x8 input, 3x3 kernel, stride 2, no padding: the last row and column are in no window, so their gradient is 0",
                                    2, 1, 8, 8, 2, 3, 3, 2, 0))
        cases.append(_backward_case(g, "kernel-1x1", "1x1 卷积，N=2", "1x1 convolution, N=2", 2, 3, 4, 5, 2, 1, 1, 1, 0))
        cases.append(_backward_case(g, "non-square", "非正方形：5x8 输入，2x3 核，填充 1", "non-square: 5x8 input, a 2x3 kernel, padding 1",
                                    2, 2, 5, 8, 3, 2, 3, 1, 1))
        cases.append(_backward_case(g, "padding-2", "填充 2：dx 要裁掉每边 2 行/列", "padding 2: dx drops two rows/columns on every side",
                                    2, 2, 4, 4, 2, 3, 3, 1, 2))
        cases.append(_backward_case(g, "batch-of-one", "N=1，步长 1、填充 1", "N=1, stride 1, padding 1", 1, 2, 5, 5, 3, 3, 3, 1, 1))
        cases += [_random_backward(g, f"random-{i}") for i in range(1, 3)]
    else:
        cases += [_random_backward(g, f"random-{i}") for i in range(1, HIDDEN_RANDOM + 1)]
        cases.append(_backward_case(g, "stride-2-padding-1", "随机：步长 2、填充 1，N=2", "random: stride 2, padding 1, N=2",
                                    2, 2, _randint(g, 5, 9), _randint(g, 5, 9), 3, 3, 3, 2, 1))
    return cases


# --- batch_norm ----------------------------------------------------------------------------------

def _bn_params(g, D: int):
    gamma = 0.5 + torch.rand(D, generator=g)
    beta = _randn(g, D)
    running_mean = _randn(g, D) * 0.5
    running_var = 0.5 + torch.rand(D, generator=g)
    return gamma, beta, running_mean, running_var


def _random_bn(g, id: str, mode: str) -> dict:
    N = _randint(g, 2 if mode == "train" else 1, 16)
    D = _randint(g, 1, 6)
    x = _randn(g, N, D) * (0.5 + 2 * torch.rand(D, generator=g)) + 3 * _randn(g, D)
    kwargs = {"mode": mode}
    if _randint(g, 0, 1):
        kwargs["momentum"] = _choice(g, [0.01, 0.05, 0.2, 0.3, 0.9])
    about = f"mode={mode!r}, x ({N}, {D})" + (f", momentum={kwargs['momentum']}" if "momentum" in kwargs else "")
    return _case(id, "随机：" + about, "random: " + about, x, *_bn_params(g, D), **kwargs)


def batch_norm(seed: int, public: bool) -> list[dict]:
    g = _rng("batch_norm", seed, public)
    cases = []
    if public:
        x = _t([[1, 2], [3, 6], [5, 10], [7, 14]])
        ones, zeros = torch.ones(2), torch.zeros(2)
        cases.append(_case("train-hand", "手算：训练模式，两列的均值 4 和 8，有偏方差 5 和 20（除以 N=4）；gamma=1，beta=0；"
                           "running_var 用无偏方差 20/3 和 80/3 更新：0.9 * 1 + 0.1 * 20/3",
                           "hand-worked: train mode, column means 4 and 8, biased variances 5 and 20 (divided by N=4); "
                           "gamma=1, beta=0; running_var is updated with the unbiased variances 20/3 and 80/3: 0.9 * 1 + 0.1 * 20/3",
                           x, ones, zeros, zeros.clone(), ones.clone(), mode="train"))
        cases.append(_case("train-gamma-beta", "训练模式，N=8，D=3，gamma、beta 和滑动统计量都不平凡",
                           "train mode, N=8, D=3, non-trivial gamma, beta and running statistics",
                           _randn(g, 8, 3) * 2 + 1, *_bn_params(g, 3), mode="train"))
        cases.append(_case("train-momentum-0.3", "训练模式，momentum=0.3：新的批统计量权重为 0.3",
                           "train mode, momentum=0.3: the new batch statistics get weight 0.3",
                           _randn(g, 6, 4), *_bn_params(g, 4), mode="train", momentum=0.3))
        cases.append(_case("train-two-samples", "训练模式，N=2：无偏方差是有偏方差的 2 倍",
                           "train mode, N=2: the unbiased variance is twice the biased one",
                           _randn(g, 2, 3), *_bn_params(g, 3), mode="train"))
        tiny = torch.cat([_randn(g, 5, 1) * 1e-3, _randn(g, 5, 2)], dim=1)
        cases.append(_case("train-tiny-variance", "训练模式，第 0 列的方差约 1e-6，与 eps = 1e-5 同量级：eps 必须加在根号里面",
                           "train mode, column 0 has a variance of about 1e-6, the order of eps = 1e-5: eps goes inside the square root",
                           tiny, *_bn_params(g, 3), mode="train"))
        cases.append(_case("train-eps-1e-3", "训练模式，eps=1e-3", "train mode, eps=1e-3",
                           _randn(g, 4, 2) * 0.1, *_bn_params(g, 2), mode="train", eps=1e-3))
        rm, rv = _t([1.0, -2.0, 0.5]), _t([4.0, 0.25, 1.0])
        cases.append(_case("eval-running-stats", "测试模式：用 running_mean = (1, -2, 0.5)、running_var = (4, 0.25, 1) 归一化，不用本批的统计量；"
                           "滑动统计量原样返回",
                           "eval mode: normalise with running_mean = (1, -2, 0.5) and running_var = (4, 0.25, 1), not the batch's "
                           "statistics; the running statistics come back unchanged",
                           _randn(g, 5, 3) * 3, _t([1.0, 2.0, 0.5]), _t([0.0, 1.0, -1.0]), rm, rv, mode="eval"))
        cases.append(_case("eval-batch-of-one", "测试模式，N=1：单个样本也能归一化（训练模式下不行）",
                           "eval mode, N=1: a single sample can be normalised (in train mode it cannot)",
                           _randn(g, 1, 4), *_bn_params(g, 4), mode="eval"))
        cases.append(_random_bn(g, "random-1", "train"))
        cases.append(_random_bn(g, "random-2", "eval"))
    else:
        for i in range(1, HIDDEN_RANDOM + 1):
            cases.append(_random_bn(g, f"random-{i}", "train" if i % 2 else "eval"))
        tiny = torch.cat([_randn(g, 6, 2), _randn(g, 6, 1) * 1e-3], dim=1)
        cases.append(_case("train-tiny-variance", "随机：训练模式，一列的方差约 1e-6", "random: train mode, one column with a variance of about 1e-6",
                           tiny, *_bn_params(g, 3), mode="train"))
        cases.append(_case("eval-batch-of-one", "随机：测试模式，N=1", "random: eval mode, N=1",
                           _randn(g, 1, 3), *_bn_params(g, 3), mode="eval", momentum=0.2))
    return cases
