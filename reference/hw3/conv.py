"""conv2d, max_pool2d and conv2d_backward, with the semantics of torch.nn.functional (README.md).

Windows are taken with `Tensor.unfold` (a strided view: `x.unfold(2, KH, stride)` is every
window of KH rows that starts on a multiple of the stride), so the output sizes follow from the
same floor rule as torch's: OH = (H + 2 * padding - KH) // stride + 1.
"""
from __future__ import annotations

import torch


def output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution or pooling along one dim: floor((size + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _pad(x: torch.Tensor, padding: int) -> torch.Tensor:
    """Zeros around the last two dims, `padding` on each of the four sides."""
    if padding == 0:
        return x
    N, C, H, W = x.shape
    out = x.new_zeros(N, C, H + 2 * padding, W + 2 * padding)
    out[:, :, padding:padding + H, padding:padding + W] = x
    return out


def _windows(x: torch.Tensor, kh: int, kw: int, stride: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, OH, OW, kh, kw): the window under each output position."""
    return x.unfold(2, kh, stride).unfold(3, kw, stride)


def conv2d(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride: int = 1, padding: int = 0) -> torch.Tensor:
    """2-d convolution as torch.nn.functional.conv2d: a cross-correlation (the kernel is not
    flipped), zero padding on every side, output (N, F, OH, OW)."""
    KH, KW = w.shape[-2:]
    win = _windows(_pad(x, padding), KH, KW, stride)              # (N, C, OH, OW, KH, KW)
    out = torch.einsum("ncijkl,fckl->nfij", win, w)
    return out + b.reshape(1, -1, 1, 1)


def max_pool2d(x: torch.Tensor, kernel_size: int, stride: int) -> torch.Tensor:
    """Max pooling as torch.nn.functional.max_pool2d(x, kernel_size, stride) (no padding, floor
    rule: a window that would run past the border is not taken)."""
    return _windows(x, kernel_size, kernel_size, stride).amax(dim=(-2, -1))


def conv2d_backward(dout: torch.Tensor, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
                    stride: int, padding: int) -> dict[str, torch.Tensor]:
    """Gradients of sum(dout * conv2d(x, w, b, stride, padding)) with respect to x, w and b.

    db sums dout over the batch and every output position; dw correlates every window of the
    padded input with dout, summed over the batch; dx scatters dout through the kernel back onto
    the padded input (each output position adds w * dout[n, f, i, j] to the window it came
    from), then drops the padding. Input rows and columns that no window reaches (the floor rule
    with stride > 1) get zero gradient."""
    N, C, H, W = x.shape
    F_, _, KH, KW = w.shape
    OH, OW = dout.shape[-2:]
    xp = _pad(x, padding)
    db = dout.sum(dim=(0, 2, 3))
    dw = torch.einsum("nfij,ncijkl->fckl", dout, _windows(xp, KH, KW, stride))
    dxp = torch.zeros_like(xp)
    for k in range(KH):
        for l in range(KW):
            # every output position (i, j) read xp[..., i * stride + k, j * stride + l] with weight w[:, :, k, l]
            contribution = torch.einsum("nfij,fc->ncij", dout, w[:, :, k, l])
            dxp[:, :, k:k + stride * (OH - 1) + 1:stride, l:l + stride * (OW - 1) + 1:stride] += contribution
    dx = dxp[:, :, padding:padding + H, padding:padding + W]
    return {"dx": dx.contiguous(), "dw": dw, "db": db}
