"""Part A (手动展开 RNN): the seeded script, as the grader replays it.

The student's script takes the fixed sequence X (5 steps, 4 features: the same 5 word vectors as
hw2's self-attention script), draws W_xh, W_hh and b_h after the grader's seed, and fills in, at
the #todo checkpoints:
  XW  (5, 4): the input term of every step, XW[t] = W_xh x_t + b_h, i.e. X @ W_xh.T + b_h;
  H   (5, 4): the hidden states, H[t] = tanh(XW[t] + W_hh h_{t-1}), from h0 = 0 (H[t] is h_{t+1});
  J   (4, 4): the Jacobian of the last hidden state with respect to h0, J[i, j] = dH[-1][i] / dh0[j],
              = D_5 W_hh D_4 W_hh ... D_1 W_hh with D_t = diag(1 - H[t-1] ** 2) (the chain rule
              through time, the product question 1.1 is about).

- canonical_inputs(seed): the inputs the seeded starter makes, without touching the global RNG.
- compute(inputs): every Part A item's expected value.
- follows_<item>(ns): the item recomputed from the student's OWN upstream variables, so a correct
  step after a wrong one can still earn follow-through credit (后续步骤按学生自己的上游结果判分).
"""
from __future__ import annotations

import torch

# The seed sheet's 5 word vectors (hw2's X), read here as a sequence of 5 steps with 4 features.
X = torch.tensor([[1.0, 0.0, 1.0, 0.0],
                  [1.0, 2.0, 1.0, 0.0],
                  [0.0, 1.0, 0.0, 1.0],
                  [0.0, 1.0, 0.0, 0.0],
                  [1.0, 0.0, 1.0, 0.0]])
HIDDEN = 4


def canonical_inputs(seed: int) -> dict[str, torch.Tensor]:
    """X, h0 and the weights that the starter's cell makes after `torch.manual_seed(seed)`:
        W_xh = torch.randn(4, 4) * 0.5
        W_hh = torch.randn(4, 4) * 0.5
        b_h = torch.randn(4) * 0.1
    drawn from a private torch.Generator (the same Mersenne Twister stream on the CPU) so the
    grader's global RNG is left alone. The scales keep the states off tanh's flat ends, so J is
    of order 0.1 to 1 under every seed the rubric uses (not lost in the tolerance)."""
    g = torch.Generator().manual_seed(seed)
    W_xh = torch.randn(HIDDEN, 4, generator=g) * 0.5
    W_hh = torch.randn(HIDDEN, HIDDEN, generator=g) * 0.5
    b_h = torch.randn(HIDDEN, generator=g) * 0.1
    return {"X": X.clone(), "h0": torch.zeros(HIDDEN), "W_xh": W_xh, "W_hh": W_hh, "b_h": b_h}


def _unroll(XW: torch.Tensor, W_hh: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    h, states = h0, []
    for t in range(XW.shape[0]):
        h = torch.tanh(XW[t] + h @ W_hh.T)
        states.append(h)
    return torch.stack(states)


def _jacobian(H: torch.Tensor, W_hh: torch.Tensor) -> torch.Tensor:
    J = torch.eye(W_hh.shape[0], dtype=W_hh.dtype)
    for t in range(H.shape[0]):
        J = torch.diag(1 - H[t] ** 2) @ W_hh @ J      # d h_{t+1} / d h_t, applied on the left
    return J


def compute(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every Part A item from the inputs: XW (输入项), H (隐藏状态), J (雅可比矩阵)."""
    X, W_xh, W_hh, b_h = inputs["X"], inputs["W_xh"], inputs["W_hh"], inputs["b_h"]
    h0 = inputs.get("h0", torch.zeros(W_hh.shape[0]))
    XW = X @ W_xh.T + b_h
    H = _unroll(XW, W_hh, h0)
    J = _jacobian(H, W_hh)
    return {"XW": XW, "H": H, "J": J}


# --- follow-through: each item from the student's own upstream variables ----------------------

def follows_H(ns: dict) -> torch.Tensor:
    h0 = ns.get("h0")
    if h0 is None:
        h0 = torch.zeros(ns["W_hh"].shape[0])
    return _unroll(ns["XW"], ns["W_hh"], h0)


def follows_J(ns: dict) -> torch.Tensor:
    return _jacobian(ns["H"], ns["W_hh"])
