"""Assignment-specific hints (rubric: `hints = "hints.<item>"`): asked about a failing public case
when no known mistake and no generic diagnosis explains it.

Each function takes (args, got): the case's positional arguments as a tuple and the student's
returned value as plain data (tensors, tuples, lists, dicts, numbers), and returns
{"zh": ..., "en": ...} or None. A hint says what is wrong and why, never the answer's numbers.
It must not raise: anything unexpected in `got` gives None (a safety net wraps every call anyway).
"""
from __future__ import annotations

import itertools

import torch

from . import cells as _cells
from .sequence import rnn_forward as _rnn_forward

RTOL, ATOL = 1e-4, 1e-5


def _close(a, b) -> bool:
    return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
            and bool(torch.allclose(a.double(), b.double(), rtol=RTOL, atol=ATOL)))


def _hint(zh: str, en: str) -> dict:
    return {"zh": zh, "en": en}


def _outside_tanh_range(t) -> bool:
    return isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel() > 0 and bool((t.abs() > 1 + 1e-6).any())


# --- rnn_cell ------------------------------------------------------------------------------------

def rnn_cell(args, got):
    if _outside_tanh_range(got):
        return _hint("结果中有绝对值大于 1 的数：h' = tanh(...) 的每个元素都在 (-1, 1) 之内，检查激活函数是否用在了整个和 "
                     "x W_xh^T + h W_hh^T + b_h 上。",
                     "some entries have absolute value above 1: every entry of h' = tanh(...) lies in (-1, 1); check that "
                     "the activation is applied to the whole sum x W_xh^T + h W_hh^T + b_h.")
    return None


# --- lstm_cell -----------------------------------------------------------------------------------

_GATES = "ifgo"


def _lstm_in_order(x, state, W_ih, W_hh, b_ih, b_hh, order: str):
    """lstm_cell with the 4 row blocks read in `order` (a permutation of "ifgo")."""
    h, c = state
    blocks = dict(zip(order, (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)))
    i, f, o = torch.sigmoid(blocks["i"]), torch.sigmoid(blocks["f"]), torch.sigmoid(blocks["o"])
    c_next = f * c + i * torch.tanh(blocks["g"])
    return o * torch.tanh(c_next), c_next


def lstm_cell(args, got):
    if not (isinstance(got, (tuple, list)) and len(got) == 2 and all(isinstance(v, torch.Tensor) for v in got)):
        return _hint("lstm_cell 应返回两个张量组成的元组 (h', c')，与 torch.nn.LSTMCell 相同。",
                     "lstm_cell must return a tuple of two tensors (h', c'), as torch.nn.LSTMCell does.")
    h, c = got
    ref_h, ref_c = _cells.lstm_cell(*args)
    if _close(h, ref_h) and _close(c, ref_c):
        return None       # right on this case (a gate order can agree with it, e.g. with all-zero weights)
    for order in ("".join(p) for p in itertools.permutations(_GATES)):
        if order == _GATES:
            continue
        want_h, want_c = _lstm_in_order(*args, order=order)
        if _close(h, want_h) and _close(c, want_c):
            return _hint(f"四个门的顺序读成了 {', '.join(order)}：torch.nn.LSTMCell 的 W_ih、W_hh、b_ih、b_hh 每 H 行一个门，"
                         "顺序是 i（输入门）、f（遗忘门）、g（候选细胞状态）、o（输出门）。",
                         f"the four gates were read in the order {', '.join(order)}: torch.nn.LSTMCell stores one gate per "
                         "block of H rows of W_ih, W_hh, b_ih, b_hh, in the order i (input), f (forget), g (cell candidate), "
                         "o (output).")
    if _close(c, ref_c):
        return _hint("c' 正确，h' 不对：h' = o ⊙ tanh(c')，用的是新的细胞状态 c'，外面还要套 tanh。",
                     "c' is right but h' is not: h' = o * tanh(c'), with the new cell state c' inside a tanh.")
    if _outside_tanh_range(h):
        return _hint("h' 中有绝对值大于 1 的数：h' = o ⊙ tanh(c') 一定在 (-1, 1) 之内。",
                     "h' has entries with absolute value above 1: h' = o * tanh(c') always lies in (-1, 1).")
    return None


# --- gru_cell ------------------------------------------------------------------------------------

def _gru_in_order(x, h, W_ih, W_hh, b_ih, b_hh, order: str):
    gi = dict(zip(order, (x @ W_ih.T + b_ih).chunk(3, dim=1)))
    gh = dict(zip(order, (h @ W_hh.T + b_hh).chunk(3, dim=1)))
    r, z = torch.sigmoid(gi["r"] + gh["r"]), torch.sigmoid(gi["z"] + gh["z"])
    n = torch.tanh(gi["n"] + r * gh["n"])
    return (1 - z) * n + z * h


def gru_cell(args, got):
    if not isinstance(got, torch.Tensor) or _close(got, _cells.gru_cell(*args)):
        return None
    for order in ("".join(p) for p in itertools.permutations("rzn")):
        if order != "rzn" and _close(got, _gru_in_order(*args, order=order)):
            return _hint(f"三个门的顺序读成了 {', '.join(order)}：torch.nn.GRUCell 的权重每 H 行一个门，顺序是 r（重置门）、"
                         "z（更新门）、n（候选状态）。",
                         f"the three gates were read in the order {', '.join(order)}: torch.nn.GRUCell stores one gate per "
                         "block of H rows, in the order r (reset), z (update), n (new).")
    if _outside_tanh_range(got) and bool((args[1].abs() <= 1).all()):
        return _hint("结果中有绝对值大于 1 的数：h' = (1 - z) ⊙ n + z ⊙ h 是 n 与 h 的加权平均（权重之和为 1），"
                     "当 |h| ≤ 1 时 h' 也在 [-1, 1] 之内。",
                     "some entries exceed 1 in absolute value: h' = (1 - z) * n + z * h averages n and h with weights "
                     "summing to 1, so it stays within [-1, 1] when |h| <= 1.")
    return None


# --- rnn_forward ---------------------------------------------------------------------------------

def rnn_forward(args, got):
    xs, h0 = args[0], args[1]
    T, B, H = xs.shape[0], xs.shape[1], h0.shape[-1]
    if isinstance(got, torch.Tensor):
        return _hint("只返回了一个张量：rnn_forward 应返回 (outputs, (h_n, c_n))，与 torch.nn.LSTM 相同。",
                     "a single tensor was returned: rnn_forward must return (outputs, (h_n, c_n)), as torch.nn.LSTM does.")
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return _hint("rnn_forward 应返回两项：(outputs, (h_n, c_n))。", "rnn_forward must return two things: (outputs, (h_n, c_n)).")
    outputs, state = got
    if isinstance(outputs, (list, tuple)):
        return _hint(f"outputs 是 Python {type(outputs).__name__}：请用 torch.stack(hs) 把每一步的 h_t 叠成 (T, B, H) = ({T}, {B}, {H}) 的张量。",
                     f"outputs is a Python {type(outputs).__name__}: stack the steps' h_t with torch.stack(hs) into a "
                     f"(T, B, H) = ({T}, {B}, {H}) tensor.")
    if isinstance(outputs, torch.Tensor) and tuple(outputs.shape) == (B, T, H) and B != T:
        return _hint(f"outputs 的形状是 (B, T, H) = {tuple(outputs.shape)}：本题时间在第 0 维（batch_first=False），应为 (T, B, H)，"
                     "即 torch.stack(hs, dim=0)。",
                     f"outputs has shape (B, T, H) = {tuple(outputs.shape)}: time comes first here (batch_first=False), "
                     "so it must be (T, B, H), i.e. torch.stack(hs, dim=0).")
    if isinstance(state, torch.Tensor):
        return _hint("第二项应是元组 (h_n, c_n)，LSTM 的状态包括隐藏状态和细胞状态两部分。",
                     "the second item must be the tuple (h_n, c_n): an LSTM's state is both the hidden and the cell state.")
    want_out, _ = _rnn_forward(*args)
    if (isinstance(outputs, torch.Tensor) and isinstance(state, (tuple, list)) and len(state) == 2
            and isinstance(state[0], torch.Tensor) and outputs.shape == want_out.shape
            and not _close(outputs[-1], state[0])):
        return _hint("outputs[-1] 与 h_n 不相等：outputs 的最后一步就是最后的隐藏状态 h_n。",
                     "outputs[-1] differs from h_n: the last step of outputs is the final hidden state h_n.")
    return None


# --- clip_grad_norm ------------------------------------------------------------------------------

def clip_grad_norm(args, got):
    grads, max_norm = args[0], args[1]
    if isinstance(got, (int, float)) or (isinstance(got, torch.Tensor) and got.numel() == 1):
        return _hint("返回了一个数：torch.nn.utils.clip_grad_norm_ 返回的是裁剪前的总范数，而本题要返回裁剪后的梯度字典 "
                     "{名字: 张量}。",
                     "a number was returned: torch.nn.utils.clip_grad_norm_ returns the total norm before clipping, but "
                     "here the function returns the dict of clipped gradients {name: tensor}.")
    if not isinstance(got, dict):
        return _hint("应返回一个字典，键与 grads 相同，值是裁剪后的梯度张量。",
                     "return a dict with the same keys as grads, holding the clipped gradient tensors.")
    if set(got) != set(grads):
        missing, extra = sorted(set(grads) - set(got)), sorted(set(got) - set(grads))
        return _hint(f"返回的字典键不对（缺少 {missing}，多出 {extra}）：应保留 grads 的每一个键。",
                     f"the returned dict has the wrong keys (missing {missing}, extra {extra}): keep every key of grads.")
    if not all(isinstance(v, torch.Tensor) and v.shape == grads[k].shape for k, v in got.items()):
        return None
    norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(v.double()) for v in got.values()])))
    if norm > max_norm * (1 + 1e-4) + 1e-6:
        return _hint(f"裁剪后的全局范数是 {norm:.4g}，仍大于 max_norm = {max_norm:.4g}：全局范数是把所有梯度拼在一起的 L2 范数。",
                     f"the clipped gradients' global norm is {norm:.4g}, still above max_norm = {max_norm:.4g}: the global "
                     "norm is the L2 norm of all the gradients taken together.")
    ratios = [float((got[k].double() * g.double()).sum() / (g.double() ** 2).sum()) for k, g in grads.items()
              if float((g ** 2).sum()) > 0]
    if ratios and max(ratios) - min(ratios) > 1e-4 * max(1.0, max(abs(r) for r in ratios)):
        return _hint("各个梯度的缩放系数不同：按全局范数裁剪时，所有梯度都乘以同一个系数 min(1, max_norm / total_norm)，"
                     "这样整体方向不变。",
                     "the gradients were scaled by different factors: clipping by the global norm multiplies every "
                     "gradient by the same factor min(1, max_norm / total_norm), which keeps the overall direction.")
    return None
