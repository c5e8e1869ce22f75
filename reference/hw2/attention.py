"""Attention (注意力) for hw2 Part B: scaled dot-product attention, the causal mask, multi-head attention.

Teaching reference: pure torch, no autograd tricks, every shape written down.
Semantics are pinned in reference/hw2/README.md.
"""
from __future__ import annotations

import math

import torch


def scaled_dot_product_attention(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor,
                                 mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention (缩放点积注意力).

    softmax(Q K^T / sqrt(d)) V, with d = Q.shape[-1] (the key/query size d_k, never d_v).

    Args:
        Q: (..., n_q, d) queries (查询).
        K: (..., n_k, d) keys (键).
        V: (..., n_k, d_v) values (值); d_v may differ from d.
        mask: optional bool tensor broadcastable to (..., n_q, n_k); True = the query may attend
            to that key (允许关注). Every query row must keep at least one key: a fully masked row
            has no well-defined answer (see README).

    Returns:
        output (..., n_q, d_v) and weights (..., n_q, n_k), the attention weights (注意力权重),
        each row summing to 1.
    """
    d = Q.shape[-1]
    scores = Q @ K.transpose(-2, -1) / math.sqrt(d)
    if mask is not None:
        if mask.dtype != torch.bool:
            # A float mask would be *added* to the scores (torch's convention); hw2's mask is boolean.
            raise TypeError(f"mask must be a bool tensor, got {mask.dtype}")
        # -inf (not -1e9) so that a masked key gets exactly zero weight; torch.where broadcasts
        # the mask against the scores (masked_fill cannot grow the scores' shape).
        scores = torch.where(mask, scores, torch.tensor(float("-inf"), dtype=scores.dtype))
    # softmax over the keys (last dim); torch.softmax subtracts the row max, so large scores do not overflow.
    weights = torch.softmax(scores, dim=-1)
    return weights @ V, weights


def causal_mask(n: int) -> torch.Tensor:
    """Causal mask (因果掩码 / 下三角掩码): (n, n) bool, True where key j <= query i.

    Query i may look at itself and at the past, never at the future.
    """
    return torch.ones(n, n, dtype=torch.bool).tril()


def multi_head_attention(X: torch.Tensor, W_Q: torch.Tensor, W_K: torch.Tensor, W_V: torch.Tensor,
                         W_O: torch.Tensor, num_heads: int,
                         causal: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-head self-attention (多头自注意力), no biases.

    Q = X W_Q, K = X W_K, V = X W_V (hw2 writes X @ W, not nn.Linear's X @ W.T). Head h owns the
    contiguous columns h*d_head:(h+1)*d_head of Q, K and V (d_head = d_model // num_heads) and is
    scaled by 1/sqrt(d_head). The heads' outputs are concatenated in head order, then @ W_O.

    Args:
        X: (n, d_model) the sequence (leading batch dims also work).
        W_Q, W_K, W_V, W_O: (d_model, d_model).
        num_heads: must divide d_model.
        causal: apply causal_mask(n) in every head (decoder self-attention, 解码器的掩码自注意力).

    Returns:
        output (n, d_model) and weights (num_heads, n, n), one attention matrix per head
        (not averaged over heads, unlike nn.MultiheadAttention's default).
    """
    n, d_model = X.shape[-2], X.shape[-1]
    if d_model % num_heads:
        raise ValueError(f"num_heads={num_heads} does not divide d_model={d_model}")
    d_head = d_model // num_heads

    def split_heads(M: torch.Tensor) -> torch.Tensor:
        # (..., n, d_model) -> (..., n, num_heads, d_head) -> (..., num_heads, n, d_head)
        return M.reshape(*M.shape[:-1], num_heads, d_head).transpose(-3, -2)

    Q, K, V = split_heads(X @ W_Q), split_heads(X @ W_K), split_heads(X @ W_V)
    mask = causal_mask(n).to(X.device) if causal else None
    # Q.shape[-1] is d_head here, so each head is scaled by sqrt(d_head).
    heads, weights = scaled_dot_product_attention(Q, K, V, mask)
    # (..., num_heads, n, d_head) -> (..., n, num_heads, d_head) -> (..., n, d_model): concat in head order
    concat = heads.transpose(-3, -2).reshape(*X.shape[:-1], d_model)
    return concat @ W_O, weights
