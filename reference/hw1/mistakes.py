"""Known mistakes (常见错误): each one re-implements an item the wrong way, with the item's signature.

The grader runs a student's failing answer against these; when one matches every failing case, the
student gets the mistake's partial credit and its hint (rubrics/hw1.toml maps ids to these
functions). Part A mistakes take the canonical inputs dict (part_a.canonical_inputs) and return the
item's value. Each one is a mistake students really make; where it comes from is noted beside it.
"""
from __future__ import annotations

import torch

from . import part_a as _part_a
from .cells import lstm_cell as _lstm_cell
from .clipping import EPS


# --- Part A: the unrolled RNN script ---------------------------------------------------------------

def _xw(inputs):
    return inputs["X"] @ inputs["W_xh"].T + inputs["b_h"]


def xw_not_transposed(inputs):          # hw2's habit (Q = X @ W_Q): X @ W_xh, but W_xh is (hidden, input)
    return inputs["X"] @ inputs["W_xh"] + inputs["b_h"]


def xw_no_bias(inputs):
    return inputs["X"] @ inputs["W_xh"].T


def _states(inputs, *, transpose=True, act=torch.tanh):
    XW, W_hh, h = _xw(inputs), inputs["W_hh"], inputs["h0"]
    out = []
    for t in range(XW.shape[0]):
        h = act(XW[t] + h @ (W_hh.T if transpose else W_hh))
        out.append(h)
    return out


def h_w_hh_not_transposed(inputs):      # h @ W_hh instead of h @ W_hh.T (W_hh h in column form)
    return torch.stack(_states(inputs, transpose=False))


def h_no_tanh(inputs):                  # a linear RNN: the activation forgotten
    return torch.stack(_states(inputs, act=lambda a: a))


def h_includes_h0(inputs):              # H = [h0, h1, ..., h5]: six rows, the initial state kept as the first
    return torch.stack([inputs["h0"]] + _states(inputs))


def h_stale_state(inputs):              # the state appended before the update: [h0, h1, ..., h4]
    return torch.stack([inputs["h0"]] + _states(inputs)[:-1])


def _H(inputs):
    return torch.stack(_states(inputs))


def j_order_reversed(inputs):           # J = J_1 J_2 ... J_5 (multiplied on the right) instead of J_5 ... J_1
    H, W = _H(inputs), inputs["W_hh"]
    J = torch.eye(W.shape[0])
    for t in range(H.shape[0]):
        J = J @ torch.diag(1 - H[t] ** 2) @ W
    return J


def j_no_tanh_derivative(inputs):       # W_hh ** 5: the tanh' factors diag(1 - h_t^2) left out
    W = inputs["W_hh"]
    return torch.linalg.matrix_power(W, _H(inputs).shape[0])


def j_tanh_applied_twice(inputs):       # diag(1 - tanh(h_t)^2): tanh' taken of the state, which is already tanh(a_t)
    H, W = _H(inputs), inputs["W_hh"]
    J = torch.eye(W.shape[0])
    for t in range(H.shape[0]):
        J = torch.diag(1 - torch.tanh(H[t]) ** 2) @ W @ J
    return J


def j_transposed(inputs):               # dh0/dh5 laid out as [j, i]: the gradient's layout (backprop's W^T D ...)
    return _part_a.compute(inputs)["J"].T


# --- cells: rnn_cell -------------------------------------------------------------------------------

def rnn_sigmoid(x, h, W_xh, W_hh, b_h):
    return torch.sigmoid(x @ W_xh.T + h @ W_hh.T + b_h)


def rnn_no_activation(x, h, W_xh, W_hh, b_h):
    return x @ W_xh.T + h @ W_hh.T + b_h


def rnn_ignores_h(x, h, W_xh, W_hh, b_h):    # the recurrent term h @ W_hh.T forgotten
    return torch.tanh(x @ W_xh.T + b_h)


# --- cells: lstm_cell ------------------------------------------------------------------------------

def _lstm(x, state, W_ih, W_hh, b_ih, b_hh, *, order="ifgo", forget=True, cand=torch.tanh, cell_tanh=True,
          old_cell=False, swap=False, use_b_hh=True):
    h, c = state
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + (b_hh if use_b_hh else 0)
    chunks = dict(zip(order, gates.chunk(4, dim=1)))
    i, f, o = torch.sigmoid(chunks["i"]), torch.sigmoid(chunks["f"]), torch.sigmoid(chunks["o"])
    g = cand(chunks["g"])
    c_next = (f * c if forget else c) + i * g
    if old_cell:
        h_next = o * torch.tanh(c)
    elif cell_tanh:
        h_next = o * torch.tanh(c_next)
    else:
        h_next = o * c_next
    return (c_next, h_next) if swap else (h_next, c_next)


def lstm_gate_order_ifog(x, state, W_ih, W_hh, b_ih, b_hh):      # CS231n's i, f, o, g instead of torch's i, f, g, o
    return _lstm(x, state, W_ih, W_hh, b_ih, b_hh, order="ifog")


def lstm_no_forget_gate(x, state, W_ih, W_hh, b_ih, b_hh):       # c' = c + i*g: f never applied
    return _lstm(x, state, W_ih, W_hh, b_ih, b_hh, forget=False)


def lstm_sigmoid_candidate(x, state, W_ih, W_hh, b_ih, b_hh):    # g = sigmoid(...) like the three gates
    return _lstm(x, state, W_ih, W_hh, b_ih, b_hh, cand=torch.sigmoid)


def lstm_h_without_tanh(x, state, W_ih, W_hh, b_ih, b_hh):       # h' = o * c'
    return _lstm(x, state, W_ih, W_hh, b_ih, b_hh, cell_tanh=False)


def lstm_old_cell_in_h(x, state, W_ih, W_hh, b_ih, b_hh):        # h' = o * tanh(c): the previous cell state
    return _lstm(x, state, W_ih, W_hh, b_ih, b_hh, old_cell=True)


def lstm_no_b_hh(x, state, W_ih, W_hh, b_ih, b_hh):              # one bias only: b_hh left out
    return _lstm(x, state, W_ih, W_hh, b_ih, b_hh, use_b_hh=False)


def lstm_returns_c_h(x, state, W_ih, W_hh, b_ih, b_hh):          # (c', h') instead of (h', c')
    return _lstm(x, state, W_ih, W_hh, b_ih, b_hh, swap=True)


# --- cells: gru_cell -------------------------------------------------------------------------------

def _gru(x, h, W_ih, W_hh, b_ih, b_hh, *, order="rzn", swap_z=False, reset="torch", cand=torch.tanh):
    gi = dict(zip(order, (x @ W_ih.T + b_ih).chunk(3, dim=1)))
    W_hn = dict(zip(order, W_hh.chunk(3, dim=0)))["n"]
    b_hn = dict(zip(order, b_hh.chunk(3, dim=0)))["n"]
    gh = dict(zip(order, (h @ W_hh.T + b_hh).chunk(3, dim=1)))
    r = torch.sigmoid(gi["r"] + gh["r"])
    z = torch.sigmoid(gi["z"] + gh["z"])
    if reset == "torch":              # r * (W_hn h + b_hn)
        n = cand(gi["n"] + r * gh["n"])
    elif reset == "outside-bias":     # r * (W_hn h) + b_hn
        n = cand(gi["n"] + r * (h @ W_hn.T) + b_hn)
    else:                             # W_hn (r * h) + b_hn: Cho et al. (2014), d2l
        n = cand(gi["n"] + (r * h) @ W_hn.T + b_hn)
    return z * n + (1 - z) * h if swap_z else (1 - z) * n + z * h


def gru_z_swapped(x, h, W_ih, W_hh, b_ih, b_hh):              # h' = z*n + (1-z)*h: the update gate's roles swapped
    return _gru(x, h, W_ih, W_hh, b_ih, b_hh, swap_z=True)


def gru_reset_outside_bias(x, h, W_ih, W_hh, b_ih, b_hh):     # r * (W_hn h) + b_hn: b_hn outside the reset gate
    return _gru(x, h, W_ih, W_hh, b_ih, b_hh, reset="outside-bias")


def gru_reset_before_matmul(x, h, W_ih, W_hh, b_ih, b_hh):    # W_hn (r * h) + b_hn: the paper's / d2l's variant
    return _gru(x, h, W_ih, W_hh, b_ih, b_hh, reset="before-matmul")


def gru_gate_order_zrn(x, h, W_ih, W_hh, b_ih, b_hh):         # the row blocks read as z, r, n
    return _gru(x, h, W_ih, W_hh, b_ih, b_hh, order="zrn")


def gru_sigmoid_candidate(x, h, W_ih, W_hh, b_ih, b_hh):      # n = sigmoid(...)
    return _gru(x, h, W_ih, W_hh, b_ih, b_hh, cand=torch.sigmoid)


# --- sequence: rnn_forward -------------------------------------------------------------------------

def _forward(xs, h0, c0, W_ih, W_hh, b_ih, b_hh, *, cell=_lstm_cell, carry=True, keep="h"):
    h, c = h0, c0
    hs, cs = [], []
    for x in xs:
        h, c = cell(x, (h, c) if carry else (h0, c0), W_ih, W_hh, b_ih, b_hh)
        hs.append(h)
        cs.append(c)
    return torch.stack(hs if keep == "h" else cs), (h, c)


def forward_state_swapped(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):        # (outputs, (c_n, h_n))
    outputs, (h, c) = _forward(xs, h0, c0, W_ih, W_hh, b_ih, b_hh)
    return outputs, (c, h)


def forward_only_outputs(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):         # the state not returned
    return _forward(xs, h0, c0, W_ih, W_hh, b_ih, b_hh)[0]


def forward_state_h_only(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):         # (outputs, h_n): nn.RNN's / nn.GRU's shape
    outputs, (h, _) = _forward(xs, h0, c0, W_ih, W_hh, b_ih, b_hh)
    return outputs, h


def forward_batch_first(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):          # torch.stack(hs, dim=1): (B, T, H)
    outputs, state = _forward(xs, h0, c0, W_ih, W_hh, b_ih, b_hh)
    return outputs.transpose(0, 1), state


def forward_outputs_cell_states(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):  # outputs stacks c_t, not h_t
    return _forward(xs, h0, c0, W_ih, W_hh, b_ih, b_hh, keep="c")


def forward_state_not_carried(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):    # every step starts again from (h0, c0)
    return _forward(xs, h0, c0, W_ih, W_hh, b_ih, b_hh, carry=False)


def forward_lstm_gate_order_ifog(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):  # a reused lstm_cell with the i, f, o, g order
    return _forward(xs, h0, c0, W_ih, W_hh, b_ih, b_hh, cell=lstm_gate_order_ifog)


# --- clipping: clip_grad_norm ----------------------------------------------------------------------

def _scaled(grads, total, max_norm, clamp=True):
    coef = max_norm / (total + EPS)
    if clamp:
        coef = torch.clamp(coef, max=1.0)
    return {k: g * coef for k, g in grads.items()}


def _l2(grads):
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads.values()]))


def clip_per_tensor(grads, max_norm):       # each tensor clipped to max_norm on its own: the direction changes
    return {k: _scaled({k: g}, torch.linalg.vector_norm(g), max_norm)[k] for k, g in grads.items()}


def clip_by_value(grads, max_norm):         # clamp(-max_norm, max_norm) per entry: clip_grad_value_, not clip_grad_norm_
    return {k: g.clamp(-max_norm, max_norm) for k, g in grads.items()}


def clip_by_max_abs(grads, max_norm):       # the largest |entry| (the infinity norm) used instead of the L2 norm
    total = torch.stack([g.abs().max() if g.numel() else torch.zeros(()) for g in grads.values()]).max()
    return _scaled(grads, total, max_norm)


def clip_sum_of_norms(grads, max_norm):     # sum of the per-tensor norms instead of the norm of all of them
    total = torch.stack([torch.linalg.vector_norm(g) for g in grads.values()]).sum()
    return _scaled(grads, total, max_norm)


def clip_squared_norm(grads, max_norm):     # sum of squares, the square root forgotten
    total = sum((g ** 2).sum() for g in grads.values())
    return _scaled(grads, total, max_norm)


def clip_always_rescale(grads, max_norm):   # g * max_norm / norm without min(1, .): small gradients scaled up
    return _scaled(grads, _l2(grads), max_norm, clamp=False)
