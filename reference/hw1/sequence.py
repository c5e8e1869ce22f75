"""The LSTM unrolled over a sequence: torch.nn.LSTM with one layer, batch_first=False."""
from __future__ import annotations

import torch

from .cells import lstm_cell


def rnn_forward(xs: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, W_ih: torch.Tensor, W_hh: torch.Tensor,
                b_ih: torch.Tensor, b_hh: torch.Tensor):
    """Run lstm_cell over the T steps of xs (T, B, I) from the state (h0, c0), each (B, H).

    Returns (outputs, (h_n, c_n)): outputs (T, B, H) holds the hidden state h_t after every step
    (outputs[t] = h_{t+1}, so outputs[-1] is h_n); (h_n, c_n) is the state after the last step.
    Exactly what torch.nn.LSTM(I, H) returns, without its leading num_layers dim on h_n, c_n."""
    h, c = h0, c0
    hs = []
    for x in xs:                       # xs[t]: (B, I)
        h, c = lstm_cell(x, (h, c), W_ih, W_hh, b_ih, b_hh)
        hs.append(h)
    return torch.stack(hs), (h, c)
