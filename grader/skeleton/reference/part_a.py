"""The script part, as the grader replays it.

The starter's cell holds the fixed matrix X (4, 3), draws W = torch.randn(3, 2) after the grader's
seed (the starter never reseeds: the grader seeds torch before the notebook's first cell), and the
student fills in Y = relu(X @ W) at the #todo.

- canonical_inputs(seed): the inputs the seeded starter makes, drawn from a private generator so
  the grader's own random state is left alone;
- compute(inputs): every script item's expected value, from those inputs (or a student's own,
  captured ones: that is how changed inputs are recognised).
"""
from __future__ import annotations

import torch

# Fixed data, the same under every seed (locked_inputs in the rubric: changing it earns nothing).
X = torch.tensor([[1.0, -2.0, 0.5],
                  [0.0, 3.0, -1.0],
                  [2.0, 1.0, -0.5],
                  [-1.5, 0.5, 1.0]])


def canonical_inputs(seed: int) -> dict[str, torch.Tensor]:
    """X, and the W that `torch.manual_seed(seed); W = torch.randn(3, 2)` makes: a fresh
    torch.Generator seeded alike draws the same numbers (the same Mersenne Twister on the CPU).
    Every random draw the starter makes before W must be repeated here, in the same order."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(3, 2, generator=g)
    return {"X": X.clone(), "W": W}


def compute(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every script item: Y (4, 2)."""
    return {"Y": torch.relu(inputs["X"] @ inputs["W"])}
