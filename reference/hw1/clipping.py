"""Gradient clipping by global norm on a dict of gradients (torch.nn.utils.clip_grad_norm_'s formula)."""
from __future__ import annotations

import torch

EPS = 1e-6   # torch.nn.utils.clip_grad_norm_ adds it to the norm before dividing


def clip_grad_norm(grads: dict[str, torch.Tensor], max_norm: float) -> dict[str, torch.Tensor]:
    """Scale every gradient by the same factor so their global L2 norm is at most max_norm.

    total_norm = sqrt(sum over every tensor of sum(g ** 2))   (the norm of all of them concatenated)
    coef = min(max_norm / (total_norm + 1e-6), 1)
    returns {name: g * coef}: new tensors, the same keys in the same order; `grads` is untouched.

    The same numbers as clip_grad_norm_(parameters, max_norm) leaves in the parameters' .grad
    (norm_type 2). Below max_norm coef is 1 (the gradients come back unchanged); all-zero gradients
    stay zero (no 0/0)."""
    if not grads:
        return {}
    norms = torch.stack([torch.linalg.vector_norm(g) for g in grads.values()])
    total_norm = torch.linalg.vector_norm(norms)
    coef = torch.clamp(max_norm / (total_norm + EPS), max=1.0)
    return {name: g * coef for name, g in grads.items()}
