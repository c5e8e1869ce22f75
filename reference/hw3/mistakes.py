"""Known mistakes (常见错误): each re-implements an item the wrong way a student would, with the
item's signature. The grader runs a student's failing answer against these; when one matches on
every failing case, the student gets the mistake's partial credit and its hint (rubrics/hw3.toml
maps ids to these functions). Part A mistakes take the canonical inputs dict
(part_a.canonical_inputs) and return the item's value.

Each mistake turns exactly one knob of the reference, so its values are what the student's code
with that one slip returns (tests/test_hw3_reference.py checks each differs from the reference on
at least one public case).
"""
from __future__ import annotations

import torch

from .conv import _pad, _windows, conv2d, conv2d_backward, max_pool2d, output_size


# --- Part A: the convolutional layer script ----------------------------------------------------

def z_no_padding(inputs):            # F.conv2d(X, W, bias): padding=1 forgotten, (1, 2, 6, 6)
    return conv2d(inputs["X"], inputs["W"], inputs["bias"], stride=1, padding=0)


def z_flipped_kernel(inputs):        # textbook convolution (kernel rotated 180 degrees)
    return conv2d(inputs["X"], inputs["W"].flip(-2, -1), inputs["bias"], stride=1, padding=1)


def z_no_bias(inputs):
    return conv2d(inputs["X"], inputs["W"], torch.zeros_like(inputs["bias"]), stride=1, padding=1)


def _A(inputs):
    return torch.clamp(conv2d(inputs["X"], inputs["W"], inputs["bias"], stride=1, padding=1), min=0)


def y_avg_pool(inputs):              # F.avg_pool2d instead of max pooling
    A = _A(inputs)
    return _windows(A, 2, 2, 2).mean(dim=(-2, -1))


def y_no_relu(inputs):               # pooled Z instead of A
    return max_pool2d(conv2d(inputs["X"], inputs["W"], inputs["bias"], stride=1, padding=1), 2, 2)


def y_stride_1(inputs):              # F.max_pool2d(A, 2, stride=1) (or nn.MaxPool2d(2, 1)): (1, 2, 7, 7)
    return max_pool2d(_A(inputs), 2, 1)


# --- conv2d ------------------------------------------------------------------------------------

def conv_flipped_kernel(x, w, b, stride=1, padding=0):
    """The textbook (signal-processing) convolution, kernel rotated by 180 degrees; deep-learning
    libraries compute the cross-correlation."""
    return conv2d(x, w.flip(-2, -1), b, stride, padding)


def conv_no_plus_one(x, w, b, stride=1, padding=0):
    """OH = (H + 2p - KH) // s without the + 1: the loops stop one output row and column early."""
    out = conv2d(x, w, b, stride, padding)
    OH = (x.shape[2] + 2 * padding - w.shape[2]) // stride
    OW = (x.shape[3] + 2 * padding - w.shape[3]) // stride
    return out[:, :, :OH, :OW].contiguous()


def conv_padding_counted_once(x, w, b, stride=1, padding=0):
    """OH = (H + p - KH) // s + 1: the padding added to one side only in the size formula; the
    padded input is right, so the result is the right one cut short."""
    out = conv2d(x, w, b, stride, padding)
    OH = output_size(x.shape[2] + padding, w.shape[2], stride)
    OW = output_size(x.shape[3] + padding, w.shape[3], stride)
    return out[:, :, :OH, :OW].contiguous()


def conv_pad_width_only(x, w, b, stride=1, padding=0):
    """F.pad(x, (p, p)): F.pad's tuple starts at the LAST dim, so only the width is padded; the
    output size then follows from the padded tensor's own shape."""
    xp = torch.nn.functional.pad(x, (padding, padding))
    KH, KW = w.shape[-2:]
    out = torch.einsum("ncijkl,fckl->nfij", _windows(xp, KH, KW, stride), w)
    return out + b.reshape(1, -1, 1, 1)


def conv_no_bias(x, w, b, stride=1, padding=0):
    return conv2d(x, w, torch.zeros_like(b), stride, padding)


def conv_kernel_hw_swapped(x, w, b, stride=1, padding=0):
    """The kernel's rows and columns swapped, w[f, c, l, k] for w[f, c, k, l] (loop indices mixed
    up): the convolution with w.transpose(-1, -2). A non-square kernel makes the output's shape
    change too; a non-symmetric square one its values."""
    wt = w.transpose(-2, -1)
    return conv2d(x, wt, b, stride, padding)


# --- max_pool2d --------------------------------------------------------------------------------

def pool_mean(x, kernel_size, stride):
    """Average pooling: the window's mean instead of its max."""
    return _windows(x, kernel_size, kernel_size, stride).mean(dim=(-2, -1))


def pool_stride_ignored(x, kernel_size, stride):
    """The stride taken as the kernel size (F.max_pool2d(x, k) or a loop stepping by k)."""
    return max_pool2d(x, kernel_size, kernel_size)


def pool_zero_init(x, kernel_size, stride):
    """The running max started at 0 (out = torch.zeros(...); out = max(out, value)): windows whose
    values are all negative give 0."""
    return max_pool2d(x, kernel_size, stride).clamp(min=0)


# --- conv2d_backward ---------------------------------------------------------------------------

def _grads(dout, x, w, b, stride, padding, **change):
    g = conv2d_backward(dout, x, w, b, stride, padding)
    g.update(change)
    return g


def bwd_db_wrong_axes(dout, x, w, b, stride, padding):
    """db = dout.sum(dim=(2, 3)): summed over the positions but not over the batch, shape (N, F)."""
    return _grads(dout, x, w, b, stride, padding, db=dout.sum(dim=(2, 3)))


def bwd_db_mean(dout, x, w, b, stride, padding):
    """db = dout.mean(dim=(0, 2, 3)): averaged instead of summed."""
    return _grads(dout, x, w, b, stride, padding, db=dout.mean(dim=(0, 2, 3)))


def bwd_dw_last_sample_only(dout, x, w, b, stride, padding):
    """dw assigned (=) instead of accumulated (+=) in the loop over the batch: only the last
    sample's contribution is left."""
    g = conv2d_backward(dout[-1:], x[-1:], w, b, stride, padding)
    return _grads(dout, x, w, b, stride, padding, dw=g["dw"])


def bwd_dw_batch_mean(dout, x, w, b, stride, padding):
    """dw divided by N: the batch averaged, though dout already holds each sample's gradient."""
    g = conv2d_backward(dout, x, w, b, stride, padding)
    return _grads(dout, x, w, b, stride, padding, dw=g["dw"] / x.shape[0])


def bwd_dx_kernel_flipped(dout, x, w, b, stride, padding):
    """dx from the kernel rotated by 180 degrees: the full convolution of dout with the flipped
    kernel written with the unflipped one (or the flip applied twice)."""
    g = conv2d_backward(dout, x, w.flip(-2, -1), b, stride, padding)
    return _grads(dout, x, w, b, stride, padding, dx=g["dx"])


def bwd_dx_padded(dout, x, w, b, stride, padding):
    """dx returned with the padding still on: the gradient of the padded input, (N, C, H + 2p, W + 2p)."""
    N, C, H, W = x.shape
    F_, _, KH, KW = w.shape
    OH, OW = dout.shape[-2:]
    dxp = torch.zeros_like(_pad(x, padding))
    for k in range(KH):
        for l in range(KW):
            dxp[:, :, k:k + stride * (OH - 1) + 1:stride, l:l + stride * (OW - 1) + 1:stride] += \
                torch.einsum("nfij,fc->ncij", dout, w[:, :, k, l])
    return _grads(dout, x, w, b, stride, padding, dx=dxp)


# --- batch_norm --------------------------------------------------------------------------------

def _bn(x, gamma, beta, running_mean, running_var, mode, momentum, eps, *, norm_unbiased=False,
        eval_batch=False, update=True, reversed_momentum=False, running_biased=False, eps_outside=False):
    """The reference with one knob turned; each mistake below turns exactly one."""
    n = x.shape[0]
    if mode == "train" or eval_batch:
        mean = x.mean(dim=0)
        biased = ((x - mean) ** 2).mean(dim=0)
        unbiased = biased * (n / (n - 1)) if n > 1 else torch.full_like(biased, float("nan"))
        var = unbiased if norm_unbiased else biased
    else:
        mean, var = running_mean, running_var
    out = (x - mean) / (torch.sqrt(var) + eps if eps_outside else torch.sqrt(var + eps)) * gamma + beta
    if mode != "train" or not update:
        return out, running_mean.clone(), running_var.clone()
    keep, take = (momentum, 1 - momentum) if reversed_momentum else (1 - momentum, momentum)
    new_mean = keep * running_mean + take * mean
    new_var = keep * running_var + take * (biased if running_biased else unbiased)
    return out, new_mean, new_var


def bn_unbiased_var(x, gamma, beta, running_mean, running_var, mode, momentum=0.1, eps=1e-5):
    """Normalised with torch.var's default, the unbiased variance (divided by N - 1)."""
    return _bn(x, gamma, beta, running_mean, running_var, mode, momentum, eps, norm_unbiased=True)


def bn_eval_uses_batch_stats(x, gamma, beta, running_mean, running_var, mode, momentum=0.1, eps=1e-5):
    """mode ignored when normalising: eval mode normalises with the batch's own statistics."""
    return _bn(x, gamma, beta, running_mean, running_var, mode, momentum, eps, eval_batch=True)


def bn_running_not_updated(x, gamma, beta, running_mean, running_var, mode, momentum=0.1, eps=1e-5):
    """The running statistics returned as they came in, even in train mode."""
    return _bn(x, gamma, beta, running_mean, running_var, mode, momentum, eps, update=False)


def bn_momentum_reversed(x, gamma, beta, running_mean, running_var, mode, momentum=0.1, eps=1e-5):
    """running = momentum * running + (1 - momentum) * batch: Keras' convention for `momentum`,
    torch's reversed (in torch the new batch gets weight `momentum`)."""
    return _bn(x, gamma, beta, running_mean, running_var, mode, momentum, eps, reversed_momentum=True)


def bn_running_var_biased(x, gamma, beta, running_mean, running_var, mode, momentum=0.1, eps=1e-5):
    """running_var updated with the biased variance the batch was normalised with (as CS231n's
    reference does); torch updates it with the unbiased one."""
    return _bn(x, gamma, beta, running_mean, running_var, mode, momentum, eps, running_biased=True)


def bn_eps_outside_sqrt(x, gamma, beta, running_mean, running_var, mode, momentum=0.1, eps=1e-5):
    """(x - mean) / (sqrt(var) + eps) instead of / sqrt(var + eps): only a feature with a tiny
    variance shows it."""
    return _bn(x, gamma, beta, running_mean, running_var, mode, momentum, eps, eps_outside=True)
