"""hw1's reference package (reference/hw1) against torch's own modules, and its cases and known
mistakes against the rubric (rubrics/hw1.toml).

- rnn_cell, lstm_cell, gru_cell, rnn_forward and clip_grad_norm equal torch.nn.RNNCell (tanh),
  LSTMCell, GRUCell, LSTM (one layer, batch_first=False) and clip_grad_norm_ to 1e-6, on several
  seeds and shapes (batch of 1, T = 1, I != H) and on every generated case of every seed;
- the script part: canonical_inputs(seed) is what the starter's cell draws after the grader's seed,
  J is torch.autograd's Jacobian, the follow-through functions agree with compute;
- cases are deterministic per seed, their ids unique, their arguments as the starter documents;
- every known mistake runs on every case, differs from the reference on at least one public case,
  and on each hidden seed alone; no hint function raises;
- the solution notebook's code gives the reference's values; the starter is what release makes of it.

Nothing here goes through the grader's rubric loader or sandbox: the rubric is read with tomllib,
the reference imported as a package, so these checks hold whatever state the engine is in.
"""
from __future__ import annotations

import importlib
import json
import tomllib

import pytest
import torch

from helpers import ROOT

import reference.hw1 as hw1
from reference.hw1 import cases, hints, mistakes, part_a

RUBRIC_PATH = ROOT / "rubrics" / "hw1.toml"
RUBRIC = tomllib.loads(RUBRIC_PATH.read_text(encoding="utf-8"))
PUBLIC = RUBRIC["assignment"]["public_seed"]
HIDDEN = RUBRIC["assignment"]["hidden_seeds"]
SEEDS = [(PUBLIC, True)] + [(s, False) for s in HIDDEN]
ITEMS = {i["id"]: i for i in RUBRIC["items"]}
FUNCTIONS = [i for i in RUBRIC["items"] if i["kind"] == "function"]
VARIABLES = [i for i in RUBRIC["items"] if i["kind"] == "variable"]
EXACT = dict(rtol=1e-6, atol=1e-6)


def resolve(dotted: str):
    """'module.function' relative to reference.hw1, or a name the package exports (as the grader resolves it)."""
    if "." not in dotted:
        return getattr(hw1, dotted)
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(f"reference.hw1.{module}"), name)


def _clone(x):
    if isinstance(x, torch.Tensor):
        return x.clone()
    if isinstance(x, (list, tuple)):
        return type(x)(_clone(v) for v in x)
    if isinstance(x, dict):
        return {k: _clone(v) for k, v in x.items()}
    return x


def _same(a, b) -> bool:
    """Bit-for-bit equal nested values (for determinism)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _tolerance(item):
    tol = {**RUBRIC.get("tolerance", {}), **item.get("tolerance", {})}
    return tol.get("rtol", 1e-4), tol.get("atol", 1e-5)


def differs(got, want, item) -> bool:
    """Does `got` fail against `want` under the item's tolerance, compared part by part?"""
    rtol, atol = _tolerance(item)

    def walk(g, w) -> bool:
        if isinstance(w, torch.Tensor):
            if not isinstance(g, torch.Tensor) or g.shape != w.shape:
                return True
            return not torch.allclose(g.double(), w.double(), rtol=rtol, atol=atol, equal_nan=True)
        if isinstance(w, (tuple, list)):
            return not isinstance(g, (tuple, list)) or len(g) != len(w) or any(walk(x, y) for x, y in zip(g, w))
        if isinstance(w, dict):
            return not isinstance(g, dict) or set(g) != set(w) or any(walk(g[k], w[k]) for k in w)
        return g != w
    return walk(got, want)


def _all_cases(item_id: str):
    gen = getattr(cases, item_id)
    return [(seed, public, c) for seed, public in SEEDS for c in gen(seed, public)]


# === the reference against torch's modules ========================================================
SHAPES = [(1, 1, 1), (1, 3, 4), (2, 4, 4), (3, 5, 2), (4, 2, 6)]     # (B, I, H)


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("B,I,H", SHAPES)
def test_rnn_cell_is_torch_rnncell(seed, B, I, H):
    torch.manual_seed(seed)
    m = torch.nn.RNNCell(I, H, nonlinearity="tanh")
    x, h = torch.randn(B, I), torch.randn(B, H)
    with torch.no_grad():
        torch.testing.assert_close(hw1.rnn_cell(x, h, m.weight_ih, m.weight_hh, m.bias_ih + m.bias_hh), m(x, h), **EXACT)


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("B,I,H", SHAPES)
def test_lstm_cell_is_torch_lstmcell(seed, B, I, H):
    torch.manual_seed(seed)
    m = torch.nn.LSTMCell(I, H)
    x, h, c = torch.randn(B, I), torch.randn(B, H), torch.randn(B, H) * 2
    with torch.no_grad():
        got = hw1.lstm_cell(x, (h, c), m.weight_ih, m.weight_hh, m.bias_ih, m.bias_hh)
        want = m(x, (h, c))
    assert isinstance(got, tuple) and len(got) == 2
    torch.testing.assert_close(got[0], want[0], **EXACT)
    torch.testing.assert_close(got[1], want[1], **EXACT)


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("B,I,H", SHAPES)
def test_gru_cell_is_torch_grucell(seed, B, I, H):
    torch.manual_seed(seed)
    m = torch.nn.GRUCell(I, H)
    x, h = torch.randn(B, I), torch.randn(B, H)
    with torch.no_grad():
        torch.testing.assert_close(hw1.gru_cell(x, h, m.weight_ih, m.weight_hh, m.bias_ih, m.bias_hh), m(x, h), **EXACT)


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("T,B,I,H", [(1, 1, 1, 1), (1, 2, 3, 4), (4, 1, 3, 2), (6, 3, 2, 5), (12, 2, 4, 4)])
def test_rnn_forward_is_torch_lstm(seed, T, B, I, H):
    torch.manual_seed(seed)
    m = torch.nn.LSTM(I, H, num_layers=1, batch_first=False)
    xs, h0, c0 = torch.randn(T, B, I), torch.randn(B, H), torch.randn(B, H)
    with torch.no_grad():
        out, (h_n, c_n) = m(xs, (h0[None], c0[None]))
        got = hw1.rnn_forward(xs, h0, c0, m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)
    assert isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], tuple) and len(got[1]) == 2
    torch.testing.assert_close(got[0], out, **EXACT)
    torch.testing.assert_close(got[1][0], h_n[0], **EXACT)
    torch.testing.assert_close(got[1][1], c_n[0], **EXACT)
    torch.testing.assert_close(got[0][-1], got[1][0], rtol=0, atol=0)


def _torch_clip(grads: dict, max_norm: float) -> dict:
    params = []
    for g in grads.values():
        p = torch.nn.Parameter(torch.zeros_like(g))
        p.grad = g.clone()
        params.append(p)
    torch.nn.utils.clip_grad_norm_(params, max_norm)
    return {k: p.grad for k, p in zip(grads, params)}


@pytest.mark.parametrize("seed", [0, 1, 7, 11])
@pytest.mark.parametrize("scale,max_norm", [(0.01, 1.0), (1.0, 1.0), (100.0, 0.5), (1.0, 50.0), (1e3, 2.0)])
def test_clip_grad_norm_is_torch_clip_grad_norm_(seed, scale, max_norm):
    g = torch.Generator().manual_seed(seed)
    grads = {"W_ih": torch.randn(8, 3, generator=g) * scale, "W_hh": torch.randn(8, 2, generator=g) * scale,
             "b_ih": torch.randn(8, generator=g) * scale, "b_hh": torch.randn(8, generator=g) * scale}
    before = _clone(grads)
    got = hw1.clip_grad_norm(grads, max_norm)
    want = _torch_clip(grads, max_norm)
    assert list(got) == list(grads)                                  # same keys, same order
    for k in grads:
        torch.testing.assert_close(got[k], want[k], **EXACT)
        assert got[k] is not grads[k]                                # new tensors ...
    assert _same(grads, before)                                      # ... and the input untouched


def test_clip_grad_norm_edge_cases():
    zeros = {"W_ih": torch.zeros(4, 2), "W_hh": torch.zeros(4, 1), "b_ih": torch.zeros(4), "b_hh": torch.zeros(4)}
    out = hw1.clip_grad_norm(zeros, 1.0)
    assert all(torch.equal(v, torch.zeros_like(v)) for v in out.values())          # no 0/0
    for k in zeros:
        torch.testing.assert_close(out[k], _torch_clip(zeros, 1.0)[k], rtol=0, atol=0)
    exact = {k: v.clone() for k, v in zeros.items()}
    exact["W_ih"][0, 0], exact["b_hh"][1] = 3.0, 4.0                                # norm exactly 5
    out = hw1.clip_grad_norm(exact, 5.0)
    for k in exact:
        torch.testing.assert_close(out[k], _torch_clip(exact, 5.0)[k], **EXACT)
        torch.testing.assert_close(out[k], exact[k], rtol=1e-6, atol=1e-6)          # at max_norm: as good as unchanged


@pytest.mark.parametrize("item", ["rnn_cell", "lstm_cell", "gru_cell", "rnn_forward", "clip_grad_norm"])
def test_every_generated_case_agrees_with_torch(item):
    """Not only hand-built inputs: every case of every seed, through torch's own module."""
    for seed, public, case in _all_cases(item):
        args = _clone(case["args"])
        got = getattr(hw1, item)(*_clone(args))
        with torch.no_grad():
            if item == "rnn_cell":
                x, h, W_xh, W_hh, b_h = args
                m = torch.nn.RNNCell(x.shape[1], h.shape[1])
                m.weight_ih.copy_(W_xh), m.weight_hh.copy_(W_hh), m.bias_ih.copy_(b_h), m.bias_hh.zero_()
                want = m(x, h)
            elif item == "lstm_cell":
                x, (h, c), *w = args
                m = torch.nn.LSTMCell(x.shape[1], h.shape[1])
                for p, v in zip((m.weight_ih, m.weight_hh, m.bias_ih, m.bias_hh), w):
                    p.copy_(v)
                want = m(x, (h, c))
            elif item == "gru_cell":
                x, h, *w = args
                m = torch.nn.GRUCell(x.shape[1], h.shape[1])
                for p, v in zip((m.weight_ih, m.weight_hh, m.bias_ih, m.bias_hh), w):
                    p.copy_(v)
                want = m(x, h)
            elif item == "rnn_forward":
                xs, h0, c0, *w = args
                m = torch.nn.LSTM(xs.shape[2], h0.shape[1])
                for p, v in zip((m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0), w):
                    p.copy_(v)
                out, (h_n, c_n) = m(xs, (h0[None], c0[None]))
                want = (out, (h_n[0], c_n[0]))
            else:
                want = _torch_clip(*args)
        assert not differs(got, want, {"tolerance": EXACT}), f"{item} {seed} {case['id']}"


# === the script part ==============================================================================
@pytest.mark.parametrize("seed", [PUBLIC, *HIDDEN, 1, 42])
def test_canonical_inputs_equal_the_starters_draws(seed):
    state = torch.get_rng_state()
    inputs = part_a.canonical_inputs(seed)
    assert torch.equal(torch.get_rng_state(), state)          # the global RNG is untouched
    torch.manual_seed(seed)                                    # what the grader does before the notebook runs
    W_xh = torch.randn(4, 4) * 0.5
    W_hh = torch.randn(4, 4) * 0.5
    b_h = torch.randn(4) * 0.1
    torch.set_rng_state(state)
    assert torch.equal(inputs["W_xh"], W_xh) and torch.equal(inputs["W_hh"], W_hh) and torch.equal(inputs["b_h"], b_h)
    assert torch.equal(inputs["X"], part_a.X) and torch.equal(inputs["h0"], torch.zeros(4))


@pytest.mark.parametrize("seed", [PUBLIC, *HIDDEN])
def test_part_a_against_rnncell_and_autograd(seed):
    inputs = part_a.canonical_inputs(seed)
    r = part_a.compute(inputs)
    m = torch.nn.RNNCell(4, 4)
    with torch.no_grad():
        m.weight_ih.copy_(inputs["W_xh"]), m.weight_hh.copy_(inputs["W_hh"])
        m.bias_ih.copy_(inputs["b_h"]), m.bias_hh.zero_()
        h, states = inputs["h0"][None], []
        for x in inputs["X"]:
            h = m(x[None], h)
            states.append(h[0])
    torch.testing.assert_close(r["H"], torch.stack(states), **EXACT)
    torch.testing.assert_close(r["XW"], inputs["X"] @ inputs["W_xh"].T + inputs["b_h"], rtol=0, atol=0)

    def last_state(h0):
        h = h0
        for t in range(inputs["X"].shape[0]):
            h = torch.tanh(r["XW"][t] + h @ inputs["W_hh"].T)
        return h
    torch.testing.assert_close(r["J"], torch.autograd.functional.jacobian(last_state, inputs["h0"]), **EXACT)
    # J is of order 0.1 to 1 (not lost in the tolerance) under every seed the rubric uses
    assert 0.05 < float(r["J"].abs().max()) < 10
    assert (r["H"].abs() < 1).all()


@pytest.mark.parametrize("seed", [PUBLIC, *HIDDEN])
def test_follows_agree_with_compute(seed):
    inputs = part_a.canonical_inputs(seed)
    r = part_a.compute(inputs)
    ns = {**inputs, **r}
    for item in VARIABLES:
        if item.get("follows"):
            torch.testing.assert_close(resolve(item["follows"])(ns), r[item["id"]], rtol=0, atol=0)
    # follow-through from a wrong upstream value: J from an H without tanh is not the reference's J
    wrong = {**ns, "H": mistakes.h_no_tanh(inputs)}
    assert differs(part_a.follows_J(wrong), r["J"], ITEMS["J"])


def test_part_a_values_under_the_public_seed():
    r = part_a.compute(part_a.canonical_inputs(0))
    assert r["XW"].shape == (5, 4) and r["H"].shape == (5, 4) and r["J"].shape == (4, 4)
    assert abs(part_a.canonical_inputs(0)["W_xh"][0, 0].item() - (-1.1258398 * 0.5)) < 1e-6   # torch.manual_seed(0); randn
    assert abs(r["J"][3, 1].item() - 1.0935) < 1e-3


# === cases ========================================================================================
@pytest.mark.parametrize("item", [i["id"] for i in FUNCTIONS])
def test_cases_are_deterministic_per_seed(item):
    gen = getattr(cases, item)
    for seed, public in SEEDS:
        first, second = gen(seed, public), gen(seed, public)
        assert len(first) == len(second) and all(_same(a, b) for a, b in zip(first, second))
        ids = [c["id"] for c in first]
        assert len(ids) == len(set(ids)), f"duplicate case ids in {item} seed {seed}"
        for c in first:
            assert set(c) <= {"id", "about", "args", "kwargs"} and c["about"]["zh"] and c["about"]["en"]
    # the seeds draw different cases
    assert not _same(gen(HIDDEN[0], False), gen(HIDDEN[1], False))


def test_cases_follow_the_documented_shapes():
    """What the starter's docstrings say (the rubric's signatures say it again for validate)."""
    for _, _, c in _all_cases("rnn_cell"):
        x, h, W_xh, W_hh, b_h = c["args"]
        (B, I), H = x.shape, h.shape[1]
        assert h.shape == (B, H) and W_xh.shape == (H, I) and W_hh.shape == (H, H) and b_h.shape == (H,)
    for item, gates in (("lstm_cell", 4), ("gru_cell", 3)):
        for _, _, c in _all_cases(item):
            x, state, W_ih, W_hh, b_ih, b_hh = c["args"]
            if item == "lstm_cell":
                assert isinstance(state, tuple) and len(state) == 2 and state[0].shape == state[1].shape
                state = state[0]
            (B, I), H = x.shape, state.shape[1]
            assert state.shape == (B, H)
            assert W_ih.shape == (gates * H, I) and W_hh.shape == (gates * H, H)
            assert b_ih.shape == b_hh.shape == (gates * H,)
    for _, _, c in _all_cases("rnn_forward"):
        xs, h0, c0, W_ih, W_hh, b_ih, b_hh = c["args"]
        T, B, I = xs.shape
        H = h0.shape[1]
        assert T >= 1 and h0.shape == c0.shape == (B, H) and W_ih.shape == (4 * H, I) and W_hh.shape == (4 * H, H)
    for _, _, c in _all_cases("clip_grad_norm"):
        grads, max_norm = c["args"]
        assert isinstance(grads, dict) and tuple(grads) == cases.GRAD_KEYS
        assert isinstance(max_norm, float) and max_norm > 0
    for item in ("rnn_cell", "lstm_cell", "gru_cell", "rnn_forward", "clip_grad_norm"):
        for _, _, c in _all_cases(item):
            for a in c["args"]:
                for t in (a if isinstance(a, tuple) else a.values() if isinstance(a, dict) else (a,)):
                    assert not isinstance(t, torch.Tensor) or t.dtype == torch.float32


def test_edge_cases_are_public():
    ids = {item: {c["id"] for c in getattr(cases, item)(PUBLIC, True)} for item in ("rnn_cell", "lstm_cell", "gru_cell", "rnn_forward", "clip_grad_norm")}
    assert {"batch-1", "zero-state"} <= ids["rnn_cell"] & ids["lstm_cell"] & ids["gru_cell"]
    assert {"T-1", "batch-1"} <= ids["rnn_forward"]
    assert {"zero-gradients", "norm-exactly-max", "below-max"} <= ids["clip_grad_norm"]
    one = next(c for c in cases.rnn_forward(PUBLIC, True) if c["id"] == "T-1")
    assert one["args"][0].shape[0] == 1
    exact = next(c for c in cases.clip_grad_norm(PUBLIC, True) if c["id"] == "norm-exactly-max")
    grads, max_norm = exact["args"]
    assert float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads.values()))) == max_norm


# === known mistakes ===============================================================================
def _mistake_ids():
    return [(i["id"], m["id"]) for i in RUBRIC["items"] for m in i.get("mistakes", [])]


def _function_runs(item, public_only: bool, seed=None):
    reference = resolve(item["reference"])
    for s, public, case in _all_cases(item["id"]):
        if (public_only and not public) or (seed is not None and s != seed):
            continue
        yield case, reference(*_clone(case["args"]), **_clone(case.get("kwargs", {})))


@pytest.mark.parametrize("item_id,mistake_id", _mistake_ids())
def test_every_mistake_runs_and_differs_on_a_public_case(item_id, mistake_id):
    item = ITEMS[item_id]
    m = next(m for m in item["mistakes"] if m["id"] == mistake_id)
    fn = resolve(m["function"])
    assert m["hint"]["zh"] and m["hint"]["en"] and 0 <= m["credit"] < 1
    if item["kind"] == "variable":
        for seed in [PUBLIC, *HIDDEN]:
            inputs = part_a.canonical_inputs(seed)
            want = part_a.compute(inputs)[item["id"]]
            assert differs(fn(_clone(inputs)), want, item), f"{mistake_id} equals the reference under seed {seed}"
        return
    differing = []
    for case, want in _function_runs(item, public_only=False):
        args = _clone(case["args"])
        got = fn(*args, **_clone(case.get("kwargs", {})))            # runs on every case of every seed
        assert _same(args, case["args"]), f"{mistake_id} modified its arguments on {case['id']}"
        if differs(got, want, item):
            differing.append(case["id"])
    public = {c["id"] for c, _ in _function_runs(item, public_only=True)}
    assert public & set(differing), f"{mistake_id} gives the reference's values on every public case"
    for seed in HIDDEN:   # each hidden seed on its own catches the mistake
        hidden = [c for c, w in _function_runs(item, False, seed)
                  if differs(fn(*_clone(c["args"])), w, item)]
        assert hidden, f"{mistake_id} is not caught by hidden seed {seed} alone"


@pytest.mark.parametrize("item", [i["id"] for i in FUNCTIONS + VARIABLES])
def test_no_two_mistakes_are_the_same_everywhere(item):
    """Two mistakes with the same values on every case could never be told apart."""
    it = ITEMS[item]
    values = {}
    for m in it.get("mistakes", []):
        fn = resolve(m["function"])
        if it["kind"] == "variable":
            values[m["id"]] = [fn(part_a.canonical_inputs(s)) for s in [PUBLIC, *HIDDEN]]
        else:
            values[m["id"]] = [fn(*_clone(c["args"])) for _, _, c in _all_cases(item)]
    ids = list(values)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            assert any(differs(x, y, it) for x, y in zip(values[a], values[b])), f"{a} and {b} are indistinguishable"


def test_the_reference_passes_every_case_under_the_rubric_tolerance():
    for item in FUNCTIONS:
        for case, want in _function_runs(item, public_only=False):
            assert not differs(resolve(item["reference"])(*_clone(case["args"])), want, item)


# === hints ========================================================================================
@pytest.mark.parametrize("item", [i for i in FUNCTIONS if i.get("hints")], ids=lambda i: i["id"])
def test_hints_never_raise_and_stay_silent_on_right_answers(item):
    fn = resolve(item["hints"])
    for case, want in _function_runs(item, public_only=True):
        assert fn(tuple(case["args"]), want) is None, case["id"]
        for m in item.get("mistakes", []):
            got = resolve(m["function"])(*_clone(case["args"]))
            out = fn(tuple(case["args"]), got)
            assert out is None or (set(out) == {"zh", "en"} and out["zh"] and out["en"])
        for junk in (None, 3.0, "x", [1, 2], {"a": 1}, (torch.zeros(1),)):
            out = fn(tuple(case["args"]), junk)
            assert out is None or set(out) == {"zh", "en"}


def test_lstm_hint_names_an_unlisted_gate_order():
    case = next(c for c in cases.lstm_cell(PUBLIC, True) if c["id"] == "non-square")
    got = hints._lstm_in_order(*case["args"], order="gifo")
    out = hints.lstm_cell(tuple(case["args"]), got)
    assert out is not None and "g, i, f, o" in out["en"]


def test_rnn_forward_hint_catches_a_list_of_states():
    case = next(c for c in cases.rnn_forward(PUBLIC, True) if c["id"] == "batch-1")
    outputs, state = hw1.rnn_forward(*case["args"])
    out = hints.rnn_forward(tuple(case["args"]), (list(outputs), state))
    assert out is not None and "torch.stack" in out["en"]


def test_clip_hint_catches_the_norm_returned_instead_of_the_dict():
    case = cases.clip_grad_norm(PUBLIC, True)[0]
    assert "total norm" in hints.clip_grad_norm(tuple(case["args"]), 5.0)["en"]


# === the solution notebook and the starter ========================================================
SOLUTION = ROOT / "reference" / "hw1" / "solution.ipynb"


def _run_notebook(path, seed: int) -> dict:
    """Run a notebook's code cells as the grader does (the RNG seeded first, one namespace)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    ns: dict = {"__name__": "__main__"}
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), str(path), "exec"), ns)
    finally:
        torch.set_rng_state(state)
    return ns


@pytest.mark.parametrize("seed", [PUBLIC, *HIDDEN])
def test_solution_notebook_gives_the_reference_values(seed, capsys):
    ns = _run_notebook(SOLUTION, seed)
    want = part_a.compute(part_a.canonical_inputs(seed))
    for item in VARIABLES:
        assert not differs(ns[item["name"]], want[item["id"]], item), item["id"]
    if seed == PUBLIC:
        for item in FUNCTIONS:
            for case, expected in _function_runs(item, public_only=False):
                assert not differs(ns[item["name"]](*_clone(case["args"])), expected, item), (item["id"], case["id"])


def test_starter_is_released_from_the_solution_and_defines_every_stub():
    from grader.release import notebook_text, percent_script, starter_notebook
    starter = starter_notebook(json.loads(SOLUTION.read_text(encoding="utf-8")), SOLUTION)
    assert (ROOT / "reference" / "hw1" / "starter.ipynb").read_text(encoding="utf-8") == notebook_text(starter)
    assert (ROOT / "reference" / "hw1" / "starter.py").read_text(encoding="utf-8") == percent_script(starter)
    ns: dict = {}
    source = "\n".join("".join(c["source"]) for c in starter["cells"] if c["cell_type"] == "code")
    exec(compile(source, "starter", "exec"), ns)
    for item in FUNCTIONS:
        params = ns[item["name"]].__code__.co_varnames[:ns[item["name"]].__code__.co_argcount]
        assert params == tuple(a["name"] for a in item["signature"]["args"])
        with pytest.raises(NotImplementedError):
            ns[item["name"]](*_clone(getattr(cases, item["id"])(PUBLIC, True)[0]["args"]))
    for item in VARIABLES:
        assert ns[item["name"]] is Ellipsis


def test_written_ids_match_the_solutions_headings():
    """written.S.Q answers sit under a `### S.Q` heading (grader/blanks.py finds them by number)."""
    from grader.blanks import locate_written
    from grader.load import load_submission
    written = tuple(i["id"] for i in RUBRIC["items"] if i["kind"] == "written")
    found = {w.item: w.text for w in locate_written(load_submission(SOLUTION), written)}
    assert set(found) == set(written)
    assert all(len(text) > 200 for text in found.values()), found
    blank = {w.item: w.text for w in locate_written(load_submission(ROOT / "reference" / "hw1" / "starter.ipynb"), written)}
    assert all(not text for text in blank.values()), blank
