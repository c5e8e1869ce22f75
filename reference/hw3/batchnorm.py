"""batch_norm for (N, D) inputs, with the running statistics of torch.nn.functional.batch_norm."""
from __future__ import annotations

import torch

MODES = ("train", "eval")


def batch_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, running_mean: torch.Tensor,
               running_var: torch.Tensor, mode: str, momentum: float = 0.1, eps: float = 1e-5):
    """Batch normalisation of x (N, D) over the batch dim. Returns (out, running_mean, running_var),
    the last two NEW tensors (the arguments are not changed in place).

    mode "train": normalise with the batch mean and the BIASED batch variance (divided by N);
    running_mean <- (1 - momentum) * running_mean + momentum * mean,
    running_var  <- (1 - momentum) * running_var + momentum * unbiased variance (divided by N - 1),
    exactly as torch.nn.functional.batch_norm(..., training=True) updates its buffers (N >= 2).
    mode "eval": normalise with running_mean and running_var; they are returned unchanged.
    """
    if mode == "train":
        n = x.shape[0]
        mean = x.mean(dim=0)
        var = ((x - mean) ** 2).mean(dim=0)                  # biased: what the batch is normalised with
        out = (x - mean) / torch.sqrt(var + eps) * gamma + beta
        unbiased = var * (n / (n - 1))
        new_mean = (1 - momentum) * running_mean + momentum * mean
        new_var = (1 - momentum) * running_var + momentum * unbiased
        return out, new_mean, new_var
    if mode == "eval":
        out = (x - running_mean) / torch.sqrt(running_var + eps) * gamma + beta
        return out, running_mean.clone(), running_var.clone()
    raise ValueError(f"mode must be 'train' or 'eval', not {mode!r}")
