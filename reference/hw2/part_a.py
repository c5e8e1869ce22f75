"""Part A (自注意力脚本): the seed's self-attention script, as the grader replays it.

The student's script builds X (fixed), then W_Q, W_K, W_V = three torch.randn(4, 4) after a seed,
and fills in Q, K, V, score, attention and output at the #todo checkpoints.

- canonical_inputs(seed): the inputs the seeded starter makes, without touching the global RNG.
- compute(inputs): every Part A item's expected value.
- follows_<item>(ns): the item recomputed from the student's OWN upstream variables, so a correct
  step after a wrong one can still earn follow-through credit (后续步骤按学生自己的上游结果判分).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Exactly as in the seed answer sheet: 5 words, 4-dimensional word vectors (5 个词，4 维词向量).
X = torch.tensor([[1.0, 0.0, 1.0, 0.0],
                  [1.0, 2.0, 1.0, 0.0],
                  [0.0, 1.0, 0.0, 1.0],
                  [0.0, 1.0, 0.0, 0.0],
                  [1.0, 0.0, 1.0, 0.0]])


def canonical_inputs(seed: int) -> dict[str, torch.Tensor]:
    """X and the weights that `torch.manual_seed(seed); W_Q = torch.randn(4, 4); W_K = ...; W_V = ...`
    produce, drawn from a private torch.Generator (same Mersenne Twister stream on the CPU) so the
    grader's global RNG is left alone."""
    g = torch.Generator().manual_seed(seed)
    W_Q = torch.randn(4, 4, generator=g)
    W_K = torch.randn(4, 4, generator=g)
    W_V = torch.randn(4, 4, generator=g)
    return {"X": X.clone(), "W_Q": W_Q, "W_K": W_K, "W_V": W_V}


def compute(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every Part A item from the inputs: Q, K, V (查询/键/值), score (注意力得分), attention (注意力权重), output."""
    X, W_Q, W_K, W_V = inputs["X"], inputs["W_Q"], inputs["W_K"], inputs["W_V"]
    Q, K, V = X @ W_Q, X @ W_K, X @ W_V
    d = W_Q.shape[-1]                         # 4: the query/key size, as the seed writes it
    score = Q @ K.T / math.sqrt(d)
    attention = F.softmax(score, dim=-1)      # each row (one query) sums to 1
    output = attention @ V
    return {"Q": Q, "K": K, "V": V, "score": score, "attention": attention, "output": output}


# --- follow-through: each item from the student's own upstream variables ----------------------

def follows_Q(ns: dict) -> torch.Tensor:
    return ns["X"] @ ns["W_Q"]


def follows_K(ns: dict) -> torch.Tensor:
    return ns["X"] @ ns["W_K"]


def follows_V(ns: dict) -> torch.Tensor:
    return ns["X"] @ ns["W_V"]


def follows_score(ns: dict) -> torch.Tensor:
    # d from the student's Q (its last dim), which is W_Q.shape[-1] in any script that ran this far.
    Q, K = ns["Q"], ns["K"]
    return Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])


def follows_attention(ns: dict) -> torch.Tensor:
    return F.softmax(ns["score"], dim=-1)


def follows_output(ns: dict) -> torch.Tensor:
    return ns["attention"] @ ns["V"]
