"""One time step of the three recurrent cells, exactly as torch.nn.RNNCell (tanh), LSTMCell and
GRUCell compute it (README.md, "Semantics decisions").

Weights are stored as torch stores them, (out_features, in_features), and applied as `x @ W.T`;
a batch is the first dim: x (B, I), h and c (B, H). Nothing is modified in place.
"""
from __future__ import annotations

import torch


def rnn_cell(x: torch.Tensor, h: torch.Tensor, W_xh: torch.Tensor, W_hh: torch.Tensor,
             b_h: torch.Tensor) -> torch.Tensor:
    """h' = tanh(x W_xh^T + h W_hh^T + b_h).  x (B, I), h (B, H), W_xh (H, I), W_hh (H, H), b_h (H,).

    torch.nn.RNNCell(nonlinearity="tanh") with bias_ih + bias_hh = b_h."""
    return torch.tanh(x @ W_xh.T + h @ W_hh.T + b_h)


def lstm_cell(x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], W_ih: torch.Tensor,
              W_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step, as torch.nn.LSTMCell: returns (h', c').

    x (B, I); state = (h, c), each (B, H); W_ih (4H, I), W_hh (4H, H), b_ih and b_hh (4H,).
    The 4H rows are the gates in the order i (input), f (forget), g (cell candidate), o (output):
        i, f, g, o = (x W_ih^T + b_ih + h W_hh^T + b_hh).chunk(4, dim=1)
        c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
        h' = sigmoid(o) * tanh(c')
    """
    h, c = state
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_next = f * c + i * g
    h_next = o * torch.tanh(c_next)
    return h_next, c_next


def gru_cell(x: torch.Tensor, h: torch.Tensor, W_ih: torch.Tensor, W_hh: torch.Tensor,
             b_ih: torch.Tensor, b_hh: torch.Tensor) -> torch.Tensor:
    """One GRU step, as torch.nn.GRUCell: returns h'.

    x (B, I), h (B, H); W_ih (3H, I), W_hh (3H, H), b_ih and b_hh (3H,), rows in the order
    r (reset), z (update), n (new):
        r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
        z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
        n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))      # r multiplies b_hn too
        h' = (1 - z) * n + z * h
    """
    i_r, i_z, i_n = (x @ W_ih.T + b_ih).chunk(3, dim=1)
    h_r, h_z, h_n = (h @ W_hh.T + b_hh).chunk(3, dim=1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h
