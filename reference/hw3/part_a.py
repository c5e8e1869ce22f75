"""Part A (卷积层脚本): one convolutional layer on a seeded image, as the grader replays it.

The starter draws, right after the grader seeds the RNG and before any other random draw,
    X = torch.randn(1, 3, 8, 8); W = torch.randn(2, 3, 3, 3); bias = torch.randn(2)
and the student fills in, at the #todo checkpoints,
    Z = the convolution of X with W and bias, stride 1, padding 1    (1, 2, 8, 8)
    A = ReLU(Z)                                                      (1, 2, 8, 8)
    Y = 2x2 max pooling of A with stride 2: the feature map          (1, 2, 4, 4)

- canonical_inputs(seed): the inputs the seeded starter makes, without touching the global RNG.
- compute(inputs): every Part A item's expected value.
- follows_<item>(ns): the item recomputed from the student's OWN upstream variables, so a right
  step after a wrong one can still earn follow-through credit (后续步骤按学生自己的上游结果判分).
"""
from __future__ import annotations

import torch

from .conv import conv2d, max_pool2d

SHAPES = {"X": (1, 3, 8, 8), "W": (2, 3, 3, 3), "bias": (2,)}   # in the order the starter draws them


def canonical_inputs(seed: int) -> dict[str, torch.Tensor]:
    """X, W and bias as `torch.manual_seed(seed)` followed by the starter's three torch.randn calls
    make them, drawn from a private torch.Generator (the same Mersenne Twister stream on the CPU),
    so the grader's global RNG is left alone."""
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(*shape, generator=g) for name, shape in SHAPES.items()}


def compute(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    Z = conv2d(inputs["X"], inputs["W"], inputs["bias"], stride=1, padding=1)
    A = torch.clamp(Z, min=0)
    Y = max_pool2d(A, 2, 2)
    return {"Z": Z, "A": A, "Y": Y}


# --- follow-through: each item from the student's own upstream variables ----------------------

def follows_Z(ns: dict) -> torch.Tensor:
    return conv2d(ns["X"], ns["W"], ns["bias"], stride=1, padding=1)


def follows_A(ns: dict) -> torch.Tensor:
    return torch.clamp(ns["Z"], min=0)


def follows_Y(ns: dict) -> torch.Tensor:
    return max_pool2d(ns["A"], 2, 2)
