"""Test-case generators, one per function item: `<item>(seed, public) -> list[dict]`.

Each case is {"id", "about": {"zh", "en"}, "args": [...], "kwargs": {...}}.
public=True (the public seed): hand-worked edge cases, then a few random ones from the seed.
public=False (a hidden seed): random cases from torch.Generator(seed), with a few edge shapes.

Every case passes exactly what the starter documents (the rubric's `[items.signature]` tables):
float32 tensors, batch first in a cell (x (B, I), h (B, H)), time first in a sequence (xs (T, B, I)),
the LSTM state as a tuple (h, c), weights as torch stores them ((4H, I) for an LSTM, (3H, I) for a
GRU), gradients as a dict with the keys W_ih, W_hh, b_ih, b_hh, and max_norm as a float.

What the cases avoid (README.md): nothing here is ambiguous in the reference semantics; the one
place an answer may legitimately differ, a norm exactly at max_norm (torch scales by
max_norm / (max_norm + 1e-6), a student's `if norm > max_norm` does not scale at all), differs by
about 2e-7 relative, far inside the tolerance, so both are right.
"""
from __future__ import annotations

import zlib

import torch

F32 = torch.float32
# Random cases per hidden seed and function, beside the hidden edge cases. Measured like hw2's:
# every known mistake (mistakes.py) fails on each hidden seed alone (tests/test_hw1_reference.py).
HIDDEN_RANDOM = 4
GRAD_KEYS = ("W_ih", "W_hh", "b_ih", "b_hh")


def _case(id: str, zh: str, en: str, *args, **kwargs) -> dict:
    return {"id": id, "about": {"zh": zh, "en": en}, "args": list(args), "kwargs": kwargs}


def _rng(item: str, seed: int, public: bool) -> torch.Generator:
    # One stream per (item, seed, public); crc32, not hash(), which changes between processes.
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(item.encode()) + int(public))


def _t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=F32)


def _randint(g, low: int, high: int) -> int:
    """An int in [low, high]."""
    return int(torch.randint(low, high + 1, (1,), generator=g))


def _choice(g, options):
    return options[_randint(g, 0, len(options) - 1)]


def _randn(g, *shape, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=g) * scale


def _weights(g, gates: int, I: int, H: int, scale: float = 0.6, zero: bool = False):
    """W_ih (gates*H, I), W_hh (gates*H, H), b_ih, b_hh (gates*H,): random, or all zeros."""
    if zero:
        return (torch.zeros(gates * H, I), torch.zeros(gates * H, H), torch.zeros(gates * H), torch.zeros(gates * H))
    return (_randn(g, gates * H, I, scale=scale), _randn(g, gates * H, H, scale=scale),
            _randn(g, gates * H, scale=0.5), _randn(g, gates * H, scale=0.5))


# --- rnn_cell ----------------------------------------------------------------------------------

def _random_rnn(g, id: str, B: int | None = None) -> dict:
    B = B if B is not None else _randint(g, 1, 4)
    I, H = _randint(g, 1, 6), _randint(g, 1, 6)
    about = f"B={B}, I={I}, H={H}"
    return _case(id, "随机：" + about, "random: " + about, _randn(g, B, I), _randn(g, B, H, scale=0.8),
                 _randn(g, H, I, scale=0.6), _randn(g, H, H, scale=0.6), _randn(g, H, scale=0.5))


def rnn_cell(seed: int, public: bool) -> list[dict]:
    g = _rng("rnn_cell", seed, public)
    cases = []
    if public:
        cases.append(_case("hand-identity", "手算：W_xh = W_hh = 单位矩阵，b_h = 0，h' = tanh(x + h)",
                           "hand-worked: W_xh = W_hh = identity, b_h = 0, so h' = tanh(x + h)",
                           _t([[0.5, -1.0]]), _t([[0.5, 2.0]]), torch.eye(2), torch.eye(2), torch.zeros(2)))
        cases.append(_case("batch-1", "批量大小为 1：x (1, 3)，h (1, 4)", "a batch of one: x (1, 3), h (1, 4)",
                           _randn(g, 1, 3), _randn(g, 1, 4), _randn(g, 4, 3, scale=0.6), _randn(g, 4, 4, scale=0.6),
                           _randn(g, 4, scale=0.5)))
        cases.append(_case("zero-state", "初始状态 h = 0：只剩输入项 tanh(x W_xh^T + b_h)",
                           "zero state h = 0: only the input term, tanh(x W_xh^T + b_h)",
                           _randn(g, 3, 3), torch.zeros(3, 2), _randn(g, 2, 3, scale=0.6), _randn(g, 2, 2, scale=0.6),
                           _randn(g, 2, scale=0.5)))
        cases.append(_case("non-square", "I = 3 ≠ H = 5：权重形状为 (H, I)，计算 x @ W_xh.T（不转置会报形状错误）",
                           "I = 3 != H = 5: the weights are (H, I), so x @ W_xh.T (without the transpose the shapes do not fit)",
                           _randn(g, 2, 3), _randn(g, 2, 5), _randn(g, 5, 3, scale=0.6), _randn(g, 5, 5, scale=0.6),
                           _randn(g, 5, scale=0.5)))
        cases.append(_case("saturated", "输入很大：tanh 饱和，结果接近 ±1（sigmoid 会接近 0 或 1）",
                           "large inputs: tanh saturates near ±1 (a sigmoid would give values near 0 or 1)",
                           _randn(g, 2, 4, scale=5.0), _randn(g, 2, 3), _randn(g, 3, 4), _randn(g, 3, 3),
                           _randn(g, 3)))
        cases += [_random_rnn(g, f"random-{i}") for i in range(1, 3)]
    else:
        cases += [_random_rnn(g, f"random-{i}") for i in range(1, HIDDEN_RANDOM + 1)]
        cases.append(_random_rnn(g, "batch-1", B=1))
    return cases


# --- lstm_cell ---------------------------------------------------------------------------------

def _random_lstm(g, id: str, B: int | None = None) -> dict:
    B = B if B is not None else _randint(g, 1, 4)
    I, H = _randint(g, 1, 6), _randint(g, 1, 6)
    about = f"B={B}, I={I}, H={H}"
    state = (_randn(g, B, H, scale=0.8), _randn(g, B, H))
    return _case(id, "随机：" + about, "random: " + about, _randn(g, B, I), state, *_weights(g, 4, I, H))


def lstm_cell(seed: int, public: bool) -> list[dict]:
    g = _rng("lstm_cell", seed, public)
    cases = []
    if public:
        cases.append(_case("zero-weights", "手算：权重和偏置全为 0，四个门 i = f = o = 0.5，g = 0：c' = 0.5 c，h' = 0.5 tanh(0.5 c)",
                           "hand-worked: all weights and biases 0, so i = f = o = 0.5 and g = 0: c' = 0.5 c, h' = 0.5 tanh(0.5 c)",
                           _t([[1.0, -2.0]]), (_t([[0.3, -0.7]]), _t([[2.0, -1.0]])), *_weights(g, 4, 2, 2, zero=True)))
        W_ih, W_hh, b_ih, b_hh = _weights(g, 4, 3, 2)
        b_ih[2:4] += 3.0     # the forget gate's rows (f is the second block of H = 2 rows): f close to 1
        cases.append(_case("forget-gate-open", "遗忘门偏置很大（f ≈ 1）：c' ≈ c + i·g，细胞状态几乎原样保留",
                           "a large forget-gate bias (f close to 1): c' is about c + i*g, the cell state is kept",
                           _randn(g, 2, 3), (_randn(g, 2, 2), _randn(g, 2, 2, scale=2.0)), W_ih, W_hh, b_ih, b_hh))
        cases.append(_case("batch-1", "批量大小为 1", "a batch of one",
                           _randn(g, 1, 4), (_randn(g, 1, 3), _randn(g, 1, 3)), *_weights(g, 4, 4, 3)))
        cases.append(_case("zero-state", "初始状态 h = c = 0", "zero initial state h = c = 0",
                           _randn(g, 3, 2), (torch.zeros(3, 4), torch.zeros(3, 4)), *_weights(g, 4, 2, 4)))
        cases.append(_case("non-square", "I = 5 ≠ H = 3：W_ih 为 (4H, I) = (12, 5)，按 i, f, g, o 的顺序每 H 行一个门",
                           "I = 5 != H = 3: W_ih is (4H, I) = (12, 5), one gate per block of H rows, in the order i, f, g, o",
                           _randn(g, 2, 5), (_randn(g, 2, 3), _randn(g, 2, 3)), *_weights(g, 4, 5, 3)))
        cases += [_random_lstm(g, f"random-{i}") for i in range(1, 3)]
    else:
        cases += [_random_lstm(g, f"random-{i}") for i in range(1, HIDDEN_RANDOM + 1)]
        cases.append(_random_lstm(g, "batch-1", B=1))
    return cases


# --- gru_cell ----------------------------------------------------------------------------------

def _random_gru(g, id: str, B: int | None = None) -> dict:
    B = B if B is not None else _randint(g, 1, 4)
    I, H = _randint(g, 1, 6), _randint(g, 1, 6)
    about = f"B={B}, I={I}, H={H}"
    return _case(id, "随机：" + about, "random: " + about, _randn(g, B, I), _randn(g, B, H, scale=0.8),
                 *_weights(g, 3, I, H))


def gru_cell(seed: int, public: bool) -> list[dict]:
    g = _rng("gru_cell", seed, public)
    cases = []
    if public:
        cases.append(_case("zero-weights", "手算：权重和偏置全为 0，r = z = 0.5，n = 0：h' = 0.5 h",
                           "hand-worked: all weights and biases 0, so r = z = 0.5 and n = 0: h' = 0.5 h",
                           _t([[1.0, 2.0, 3.0]]), _t([[0.4, -0.8]]), *_weights(g, 3, 3, 2, zero=True)))
        W_ih, W_hh, b_ih, b_hh = _weights(g, 3, 2, 3)
        b_hh[6:9] = _t([2.0, -2.0, 1.5])      # a large b_hn: r * (W_hn h + b_hn) vs r * W_hn h + b_hn shows
        cases.append(_case("reset-gate-bias", "b_hn 较大：重置门 r 也要乘 b_hn，n = tanh(W_in x + b_in + r * (W_hn h + b_hn))",
                           "a large b_hn: the reset gate multiplies b_hn too, n = tanh(W_in x + b_in + r * (W_hn h + b_hn))",
                           _randn(g, 2, 2), _randn(g, 2, 3), W_ih, W_hh, b_ih, b_hh))
        cases.append(_case("batch-1", "批量大小为 1", "a batch of one",
                           _randn(g, 1, 4), _randn(g, 1, 3), *_weights(g, 3, 4, 3)))
        cases.append(_case("zero-state", "初始状态 h = 0", "zero initial state h = 0",
                           _randn(g, 3, 3), torch.zeros(3, 2), *_weights(g, 3, 3, 2)))
        cases.append(_case("non-square", "I = 5 ≠ H = 2：W_ih 为 (3H, I) = (6, 5)，按 r, z, n 的顺序每 H 行一个门",
                           "I = 5 != H = 2: W_ih is (3H, I) = (6, 5), one gate per block of H rows, in the order r, z, n",
                           _randn(g, 2, 5), _randn(g, 2, 2), *_weights(g, 3, 5, 2)))
        cases += [_random_gru(g, f"random-{i}") for i in range(1, 3)]
    else:
        cases += [_random_gru(g, f"random-{i}") for i in range(1, HIDDEN_RANDOM + 1)]
        cases.append(_random_gru(g, "batch-1", B=1))
    return cases


# --- rnn_forward -------------------------------------------------------------------------------

def _sequence(g, id: str, zh: str, en: str, T: int, B: int, I: int, H: int, zero_state: bool = False) -> dict:
    xs = _randn(g, T, B, I)
    h0, c0 = (torch.zeros(B, H), torch.zeros(B, H)) if zero_state else (_randn(g, B, H, scale=0.8), _randn(g, B, H))
    return _case(id, zh, en, xs, h0, c0, *_weights(g, 4, I, H))


def _random_sequence(g, id: str, T: int | None = None) -> dict:
    T = T if T is not None else _randint(g, 2, 7)
    B, I, H = _randint(g, 1, 3), _randint(g, 1, 5), _randint(g, 1, 5)
    about = f"T={T}, B={B}, I={I}, H={H}"
    return _sequence(g, id, "随机：" + about, "random: " + about, T, B, I, H)


def rnn_forward(seed: int, public: bool) -> list[dict]:
    g = _rng("rnn_forward", seed, public)
    cases = []
    if public:
        cases.append(_sequence(g, "T-1", "只有一个时间步 T = 1：outputs 形状 (1, B, H)，outputs[0] 就是 h_n",
                               "a single step T = 1: outputs has shape (1, B, H) and outputs[0] is h_n", 1, 2, 3, 4))
        cases.append(_sequence(g, "batch-1", "批量大小为 1，T = 4", "a batch of one, T = 4", 4, 1, 3, 2))
        cases.append(_sequence(g, "zero-state", "初始状态为 0，T = 3", "zero initial state, T = 3", 3, 2, 2, 3,
                               zero_state=True))
        cases.append(_sequence(g, "T-equals-B", "T = B = 3：outputs 必须是 (T, B, H)，时间在第 0 维，不是 (B, T, H)",
                               "T = B = 3: outputs must be (T, B, H), time first, not (B, T, H)", 3, 3, 2, 2))
        cases.append(_sequence(g, "long-sequence", "较长的序列 T = 12：状态必须一步步传下去",
                               "a longer sequence, T = 12: the state must be carried from step to step", 12, 2, 3, 3))
        cases += [_random_sequence(g, f"random-{i}") for i in range(1, 3)]
    else:
        cases += [_random_sequence(g, f"random-{i}") for i in range(1, HIDDEN_RANDOM + 1)]
        cases.append(_random_sequence(g, "T-1", T=1))
    return cases


# --- clip_grad_norm ----------------------------------------------------------------------------

def _grads(g, I: int, H: int, scale: float = 1.0) -> dict[str, torch.Tensor]:
    """An LSTM's four gradients (W_ih (4H, I), W_hh (4H, H), b_ih, b_hh (4H,)), in GRAD_KEYS order."""
    return {"W_ih": _randn(g, 4 * H, I, scale=scale), "W_hh": _randn(g, 4 * H, H, scale=scale),
            "b_ih": _randn(g, 4 * H, scale=scale), "b_hh": _randn(g, 4 * H, scale=scale)}


def _norm(grads: dict) -> float:
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(v) for v in grads.values()])))


def _random_clip(g, id: str) -> dict:
    I, H = _randint(g, 1, 4), _randint(g, 1, 3)
    grads = _grads(g, I, H, scale=_choice(g, [0.1, 1.0, 10.0]))
    norm = _norm(grads)
    # max_norm a quarter, half, twice or four times the gradients' norm (a power of two apart, so
    # never within the tolerance of "exactly at max_norm")
    max_norm = float(norm * _choice(g, [0.25, 0.5, 2.0, 4.0]))
    about = f"I={I}, H={H}, global norm {norm:.4g}, max_norm {max_norm:.4g}"
    return _case(id, "随机：" + about, "random: " + about, grads, max_norm)


def clip_grad_norm(seed: int, public: bool) -> list[dict]:
    g = _rng("clip_grad_norm", seed, public)
    cases = []
    if public:
        exact = {"W_ih": torch.zeros(8, 3), "W_hh": torch.zeros(8, 2), "b_ih": torch.zeros(8), "b_hh": torch.zeros(8)}
        exact["W_ih"][0, 0], exact["b_hh"][5] = 3.0, -4.0
        cases.append(_case("norm-exactly-max", "全局范数恰好等于 max_norm（3 和 -4，范数 5）：不需要裁剪（结果与原梯度相同，误差在容差内）",
                           "the global norm is exactly max_norm (3 and -4, norm 5): nothing to clip (the gradients come back "
                           "as they are, within the tolerance)", exact, 5.0))
        halve = {k: v * 2 for k, v in exact.items()}
        cases.append(_case("hand-halve", "手算：全局范数 10（6 和 -8），max_norm = 5：每个梯度都乘以 5 / 10 = 0.5",
                           "hand-worked: global norm 10 (6 and -8), max_norm = 5: every gradient is multiplied by 5 / 10 = 0.5",
                           halve, 5.0))
        cases.append(_case("zero-gradients", "梯度全为 0：结果仍是 0（不能出现 0/0 = NaN）",
                           "all-zero gradients: the result is zeros (no 0/0 = NaN)",
                           {k: torch.zeros_like(v) for k, v in _grads(g, 3, 2).items()}, 1.0))
        small = _grads(g, 3, 2, scale=0.1)
        cases.append(_case("below-max", f"全局范数 {_norm(small):.3g} 小于 max_norm = 10：梯度原样返回，不能放大",
                           f"global norm {_norm(small):.3g} below max_norm = 10: the gradients come back unchanged, not scaled up",
                           small, 10.0))
        one = _grads(g, 3, 2, scale=0.1)
        one["W_hh"] = one["W_hh"] * 300
        cases.append(_case("one-large-tensor", "只有 W_hh 的梯度很大：所有梯度按同一个全局系数缩放，不是各自裁剪",
                           "only W_hh's gradient is large: every gradient is scaled by the same global factor, not clipped on its own",
                           one, 1.0))
        big = _grads(g, 4, 3, scale=100.0)
        cases.append(_case("exploding", f"梯度爆炸：全局范数 {_norm(big):.4g}，max_norm = 1",
                           f"exploding gradients: global norm {_norm(big):.4g}, max_norm = 1", big, 1.0))
        cases += [_random_clip(g, f"random-{i}") for i in range(1, 3)]
    else:
        cases += [_random_clip(g, f"random-{i}") for i in range(1, HIDDEN_RANDOM + 1)]
        grads = _grads(g, 2, 2)
        cases.append(_case("zero-gradients", "梯度全为 0", "all-zero gradients",
                           {k: torch.zeros_like(v) for k, v in grads.items()}, 0.5))
    return cases
