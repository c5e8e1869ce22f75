"""Known mistakes: each re-implements an item the wrong way, one way students really get it wrong.

A function item's mistake takes the reference's arguments; a script item's takes the inputs dict
(part_a.canonical_inputs) and returns the item's value. When a failing answer matches a mistake on
every failing case, the student gets its credit and hint (the rubric's [[items.mistakes]]).
`grade.py validate` checks that each one fails its item and is recognised as itself.
"""
from __future__ import annotations

import torch


def y_no_relu(inputs):              # the activation forgotten: a linear layer
    return inputs["X"] @ inputs["W"]


def normalize_columns(x: torch.Tensor) -> torch.Tensor:    # the norm over dim 0, each column's
    return x / x.norm(dim=0, keepdim=True)
