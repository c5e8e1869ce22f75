"""hw3's reference package (reference/hw3) against torch's own implementations, and the rubric's
known mistakes, cases and solution against the reference.

- conv2d and max_pool2d against torch.nn.functional.conv2d / max_pool2d, conv2d_backward against
  autograd through F.conv2d, batch_norm against F.batch_norm (training, with its running-statistics
  update, and eval), on several seeds and shapes, in float64 to 1e-6;
- the reference on every generated case (float32, as students get them) against torch, within the
  rubric's tolerance;
- every known mistake in rubrics/hw3.toml differs from the reference on at least one public case
  (else the grader could hand a right answer a mistake's hint), and runs there;
- the generators are deterministic per (seed, public), and pass what the starter documents;
- the solution notebook's own (loop-based) functions agree with the reference on every case within
  the rubric's tolerance, so the tolerances leave room for a right answer that sums in another order;
- the committed starter is what `release` makes of the solution, and every written item's id is a
  heading of the solution with an answer under it.
"""
from __future__ import annotations

import importlib.util
import json
import sys
import tomllib

import pytest
import torch
import torch.nn.functional as F

from helpers import ROOT

RUBRIC_PATH = ROOT / "rubrics" / "hw3.toml"
RUBRIC = tomllib.loads(RUBRIC_PATH.read_text(encoding="utf-8"))
PKG_DIR = (RUBRIC_PATH.parent / RUBRIC["assignment"]["reference"]).resolve()
PKG_NAME = "_hw3_reference_under_test"
SEEDS = [RUBRIC["assignment"]["public_seed"], *RUBRIC["assignment"]["hidden_seeds"]]
F64 = torch.float64


def _package():
    """Import the reference package from the rubric's path, as the grader does."""
    if PKG_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(PKG_NAME, PKG_DIR / "__init__.py",
                                                      submodule_search_locations=[str(PKG_DIR)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[PKG_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[PKG_NAME]


def resolve(dotted: str):
    pkg = _package()
    if "." not in dotted:
        return getattr(pkg, dotted)
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(f"{PKG_NAME}.{module}"), name)


REF = _package()
ITEMS = {item["id"]: item for item in RUBRIC["items"]}
FUNCTION_ITEMS = [i for i in RUBRIC["items"] if i["kind"] == "function"]


def _clone(x):
    if isinstance(x, torch.Tensor):
        return x.clone()
    if isinstance(x, (list, tuple)):
        return type(x)(_clone(v) for v in x)
    if isinstance(x, dict):
        return {k: _clone(v) for k, v in x.items()}
    return x


def _f64(x):
    return x.to(F64) if isinstance(x, torch.Tensor) and x.is_floating_point() else x


def _close(a, b, rtol=1e-6, atol=1e-6):
    assert a.shape == b.shape, (a.shape, b.shape)
    torch.testing.assert_close(a.to(F64), b.to(F64), rtol=rtol, atol=atol)


# === the reference against torch.nn.functional, float64 ==========================================
# (N, C, H, W, F, KH, KW, stride, padding): stride 2 with padding 1, 1x1 kernels, non-square inputs
# and kernels, N = 1, a remainder that no window reaches, a kernel as large as the padded input.
CONV_SHAPES = [
    (2, 3, 7, 7, 4, 3, 3, 1, 0), (2, 3, 7, 7, 4, 3, 3, 2, 1), (1, 2, 5, 8, 3, 2, 3, 1, 1),
    (3, 3, 4, 6, 2, 1, 1, 1, 0), (2, 1, 8, 8, 2, 3, 3, 2, 0), (1, 1, 6, 9, 2, 3, 2, 3, 1),
    (2, 2, 4, 5, 3, 3, 3, 1, 2), (1, 4, 3, 3, 2, 5, 5, 1, 1), (2, 2, 9, 4, 1, 4, 1, 2, 2),
]


def _conv_inputs(seed, shape):
    N, C, H, W, Fo, KH, KW, stride, padding = shape
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(N, C, H, W, generator=g, dtype=F64), torch.randn(Fo, C, KH, KW, generator=g, dtype=F64),
            torch.randn(Fo, generator=g, dtype=F64), stride, padding)


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("shape", CONV_SHAPES, ids=lambda s: "x{}".format(s))
def test_conv2d_matches_torch(seed, shape):
    x, w, b, stride, padding = _conv_inputs(seed, shape)
    _close(REF.conv2d(x, w, b, stride, padding), F.conv2d(x, w, b, stride=stride, padding=padding))


def test_conv2d_defaults_are_stride_1_padding_0():
    x, w, b, _, _ = _conv_inputs(3, CONV_SHAPES[0])
    _close(REF.conv2d(x, w, b), F.conv2d(x, w, b))


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("shape", CONV_SHAPES, ids=lambda s: "x{}".format(s))
def test_conv2d_backward_matches_autograd(seed, shape):
    x, w, b, stride, padding = _conv_inputs(seed, shape)
    xx, ww, bb = (t.clone().requires_grad_() for t in (x, w, b))
    out = F.conv2d(xx, ww, bb, stride=stride, padding=padding)
    dout = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed + 100), dtype=F64)
    out.backward(dout)
    grads = REF.conv2d_backward(dout, x, w, b, stride, padding)
    assert isinstance(grads, dict) and list(grads) == ["dx", "dw", "db"]
    _close(grads["dx"], xx.grad)
    _close(grads["dw"], ww.grad)
    _close(grads["db"], bb.grad)


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("shape,k,s", [((2, 3, 4, 4), 2, 2), ((1, 2, 7, 7), 3, 2), ((2, 1, 5, 7), 2, 2),
                                       ((1, 3, 5, 6), 1, 2), ((2, 2, 4, 5), 2, 1), ((1, 1, 6, 9), 3, 3),
                                       ((3, 2, 8, 3), 3, 1), ((1, 1, 2, 2), 2, 5)])
def test_max_pool2d_matches_torch(seed, shape, k, s):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
    _close(REF.max_pool2d(x, k, s), F.max_pool2d(x, k, s))


def _bn_inputs(seed, N, D):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, D, generator=g, dtype=F64) * (0.5 + 2 * torch.rand(D, generator=g, dtype=F64)) \
        + 3 * torch.randn(D, generator=g, dtype=F64)
    gamma = 0.5 + torch.rand(D, generator=g, dtype=F64)
    beta = torch.randn(D, generator=g, dtype=F64)
    rm = torch.randn(D, generator=g, dtype=F64)
    rv = 0.5 + torch.rand(D, generator=g, dtype=F64)
    return x, gamma, beta, rm, rv


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("N,D,momentum,eps", [(2, 3, 0.1, 1e-5), (4, 2, 0.1, 1e-5), (8, 5, 0.3, 1e-5),
                                              (16, 1, 0.01, 1e-3), (5, 4, 0.9, 0.1), (3, 6, 1.0, 1e-5),
                                              (7, 3, 0.0, 1e-5)])
def test_batch_norm_train_matches_torch_and_its_running_statistics(seed, N, D, momentum, eps):
    x, gamma, beta, rm, rv = _bn_inputs(seed, N, D)
    given = [t.clone() for t in (x, gamma, beta, rm, rv)]
    torch_rm, torch_rv = rm.clone(), rv.clone()     # F.batch_norm updates these buffers in place
    want = F.batch_norm(x, torch_rm, torch_rv, gamma, beta, training=True, momentum=momentum, eps=eps)
    out, new_rm, new_rv = REF.batch_norm(x, gamma, beta, rm, rv, mode="train", momentum=momentum, eps=eps)
    _close(out, want)
    _close(new_rm, torch_rm)
    _close(new_rv, torch_rv)
    # new tensors; the arguments are left as they were
    for before, after in zip(given, (x, gamma, beta, rm, rv)):
        assert torch.equal(before, after)
    assert new_rm is not rm and new_rv is not rv


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("N,D", [(1, 3), (4, 2), (9, 5)])
def test_batch_norm_eval_matches_torch_and_keeps_the_running_statistics(seed, N, D):
    x, gamma, beta, rm, rv = _bn_inputs(seed, N, D)
    want = F.batch_norm(x, rm.clone(), rv.clone(), gamma, beta, training=False, eps=1e-5)
    out, new_rm, new_rv = REF.batch_norm(x, gamma, beta, rm, rv, mode="eval")
    _close(out, want)
    assert torch.equal(new_rm, rm) and torch.equal(new_rv, rv)
    assert new_rm is not rm and new_rv is not rv


def test_batch_norm_refuses_an_unknown_mode():
    x, gamma, beta, rm, rv = _bn_inputs(0, 4, 2)
    with pytest.raises(ValueError):
        REF.batch_norm(x, gamma, beta, rm, rv, mode="test")


def test_hand_worked_values():
    x = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = torch.tensor([[[[1.0, 2.0], [0.0, -1.0]]]])
    assert REF.conv2d(x, w, torch.zeros(1)).flatten().tolist() == [0.0, 2.0, 6.0, 8.0]
    grads = REF.conv2d_backward(torch.ones(1, 1, 2, 2), x, w, torch.zeros(1), 1, 0)
    assert grads["db"].tolist() == [4.0]
    assert grads["dw"].flatten().tolist() == [12.0, 16.0, 24.0, 28.0]
    assert grads["dx"].flatten().tolist() == [1.0, 3.0, 2.0, 1.0, 2.0, 1.0, 0.0, -1.0, -1.0]
    assert REF.max_pool2d(torch.arange(16.0).reshape(1, 1, 4, 4), 2, 2).flatten().tolist() == [5.0, 7.0, 13.0, 15.0]
    out, rm, rv = REF.batch_norm(torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0], [7.0, 14.0]]), torch.ones(2),
                                 torch.zeros(2), torch.zeros(2), torch.ones(2), mode="train")
    torch.testing.assert_close(out[:, 0], torch.tensor([-3.0, -1.0, 1.0, 3.0]) / (5 + 1e-5) ** 0.5)
    torch.testing.assert_close(rm, torch.tensor([0.4, 0.8]))
    torch.testing.assert_close(rv, torch.tensor([0.9 + 0.1 * 20 / 3, 0.9 + 0.1 * 80 / 3]))


# === Part A =======================================================================================
@pytest.mark.parametrize("seed", SEEDS)
def test_part_a_inputs_are_the_seeded_starters_draws_and_compute_is_conv_relu_pool(seed):
    state = torch.get_rng_state()
    try:
        torch.manual_seed(seed)
        X, W, bias = torch.randn(1, 3, 8, 8), torch.randn(2, 3, 3, 3), torch.randn(2)
    finally:
        torch.set_rng_state(state)
    before = torch.get_rng_state()
    inputs = resolve(RUBRIC["script"]["inputs"])(seed)
    assert torch.equal(torch.get_rng_state(), before), "canonical_inputs must leave the global RNG alone"
    assert list(inputs) == ["X", "W", "bias"] == RUBRIC["script"]["capture"]
    for name, want in zip(("X", "W", "bias"), (X, W, bias)):
        assert torch.equal(inputs[name], want)
    got = resolve(RUBRIC["script"]["expected"])(inputs)
    Z = F.conv2d(X.to(F64), W.to(F64), bias.to(F64), stride=1, padding=1)
    want = {"Z": Z, "A": F.relu(Z), "Y": F.max_pool2d(F.relu(Z), 2, 2)}
    assert set(got) == {i["id"] for i in RUBRIC["items"] if i["kind"] == "variable"}
    for name in want:
        _close(got[name], want[name], rtol=1e-5, atol=1e-5)
    assert got["Y"].shape == (1, 2, 4, 4)
    assert (got["Z"] < 0).any(), "the ReLU must matter on the canonical inputs"


def test_part_a_follows_recompute_from_the_students_own_values():
    inputs = resolve(RUBRIC["script"]["inputs"])(0)
    expected = resolve(RUBRIC["script"]["expected"])(inputs)
    ns = {**inputs, **expected}
    for item in RUBRIC["items"]:
        if item["kind"] == "variable":
            _close(resolve(item["follows"])(ns), expected[item["id"]])
    wrong = {**ns, "A": expected["Z"]}            # a wrong A: Y follows it
    _close(resolve(ITEMS["Y"]["follows"])(wrong), F.max_pool2d(expected["Z"], 2, 2))


# === cases ========================================================================================
def _cases(item, seed, public):
    return resolve(item["cases"])(seed, public)


def _runs():
    public = RUBRIC["assignment"]["public_seed"]
    return [(public, True)] + [(s, False) for s in RUBRIC["assignment"]["hidden_seeds"]]


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("item", FUNCTION_ITEMS, ids=lambda i: i["id"])
def test_cases_are_deterministic_per_seed_and_ids_unique(item):
    for seed, public in _runs():
        first, second = _cases(item, seed, public), _cases(item, seed, public)
        assert _same(first, second), f"{item['id']}: seed {seed} gives different cases on a second call"
        ids = [c["id"] for c in first]
        assert len(ids) == len(set(ids)), ids
        for c in first:
            assert set(c) <= {"id", "about", "args", "kwargs"} and c["about"]["zh"] and c["about"]["en"]
    a, b = _cases(item, SEEDS[1], False), _cases(item, SEEDS[2], False)
    assert not _same([c["args"] for c in a], [c["args"] for c in b]), "two hidden seeds give the same cases"


def _all_cases(item):
    return [(seed, c) for seed, public in _runs() for c in _cases(item, seed, public)]


def test_conv_cases_follow_the_contract():
    for name in ("conv2d", "conv2d_backward"):
        for seed, c in _all_cases(ITEMS[name]):
            args = c["args"]
            assert not c["kwargs"]
            tensors = args[:3] if name == "conv2d" else args[1:4]
            x, w, b = tensors
            assert all(t.dtype == torch.float32 for t in (x, w, b))
            assert x.dim() == 4 and w.dim() == 4 and b.shape == (w.shape[0],) and w.shape[1] == x.shape[1]
            rest = args[3:] if name == "conv2d" else args[4:]
            stride, padding = (list(rest) + [1, 0][len(rest):])[:2]
            assert type(stride) is int and stride >= 1 and type(padding) is int and padding >= 0
            assert w.shape[2] <= x.shape[2] and w.shape[3] <= x.shape[3], "a kernel larger than the input"
            if name == "conv2d_backward":
                assert len(args) == 6
                assert args[0].shape == REF.conv2d(x, w, b, stride, padding).shape


def test_pool_cases_follow_the_contract():
    for seed, c in _all_cases(ITEMS["max_pool2d"]):
        x, k, s = c["args"]
        assert not c["kwargs"] and x.dtype == torch.float32 and x.dim() == 4
        assert type(k) is int and type(s) is int and 1 <= k <= min(x.shape[2:]) and s >= 1


def test_batch_norm_cases_follow_the_contract():
    modes = set()
    for seed, c in _all_cases(ITEMS["batch_norm"]):
        x, gamma, beta, rm, rv = c["args"]
        kwargs = c["kwargs"]
        assert set(kwargs) <= {"mode", "momentum", "eps"} and kwargs["mode"] in ("train", "eval")
        modes.add(kwargs["mode"])
        assert x.dim() == 2 and all(t.shape == (x.shape[1],) for t in (gamma, beta, rm, rv))
        assert all(t.dtype == torch.float32 for t in (x, gamma, beta, rm, rv)) and (rv > 0).all()
        if kwargs["mode"] == "train":
            assert x.shape[0] >= 2, "train mode needs N >= 2 (torch refuses N = 1)"
        for key in ("momentum", "eps"):
            if key in kwargs:
                assert type(kwargs[key]) is float
        assert kwargs.get("momentum", 0.1) != 0.5, "a reversed momentum is invisible at 0.5"
    assert modes == {"train", "eval"}


@pytest.mark.parametrize("item", FUNCTION_ITEMS, ids=lambda i: i["id"])
def test_reference_agrees_with_torch_on_every_case(item):
    """The float32 reference on the cases students get, against torch in float64, to the rubric's tolerance."""
    for seed, c in _all_cases(item):
        args, kwargs = _clone(c["args"]), _clone(c["kwargs"])
        got = resolve(item["reference"])(*args, **kwargs)
        a64 = [_f64(a) for a in c["args"]]
        if item["id"] == "conv2d":
            want = F.conv2d(a64[0], a64[1], a64[2], *a64[3:])
        elif item["id"] == "max_pool2d":
            want = F.max_pool2d(*a64)
        elif item["id"] == "conv2d_backward":
            dout, x, w, b, stride, padding = a64
            xx, ww, bb = (t.clone().requires_grad_() for t in (x, w, b))
            F.conv2d(xx, ww, bb, stride=stride, padding=padding).backward(dout)
            want = {"dx": xx.grad, "dw": ww.grad, "db": bb.grad}
        else:
            x, gamma, beta, rm, rv = a64
            momentum, eps = kwargs.get("momentum", 0.1), kwargs.get("eps", 1e-5)
            training = kwargs["mode"] == "train"
            out = F.batch_norm(x, rm, rv, gamma, beta, training=training, momentum=momentum, eps=eps)
            want = (out, rm, rv)
        assert not _differs(got, want, item), f"{item['id']} {seed}:{c['id']}"


# === known mistakes ===============================================================================
def _tolerances(item, output: str | None):
    tol = {"rtol": 1e-4, "atol": 1e-5, **RUBRIC.get("tolerance", {}), **item.get("tolerance", {})}
    if output is not None:
        tol.update({k: v for k, v in item.get("outputs", {}).get(output, {}).items() if k in ("rtol", "atol")})
    return tol["rtol"], tol["atol"]


def _output_names(item):
    if item["kind"] == "variable":
        return [item["id"]]
    return [r["name"] for r in item["signature"]["returns"]]


def _differs(got, want, item) -> bool:
    """Would the grader tell these apart? Part by part, each output at its own tolerance."""
    names = _output_names(item)
    got_parts = got if len(names) > 1 else (got,)
    want_parts = want if len(names) > 1 else (want,)
    if not isinstance(got_parts, tuple) or len(got_parts) != len(want_parts):
        return True
    return any(_part_differs(g, w, *_tolerances(item, n)) for g, w, n in zip(got_parts, want_parts, names))


def _part_differs(g, w, rtol, atol) -> bool:
    if isinstance(w, dict):
        return not isinstance(g, dict) or list(g) != list(w) or any(_part_differs(g[k], w[k], rtol, atol) for k in w)
    if not isinstance(g, torch.Tensor) or g.shape != w.shape:
        return True
    return not torch.allclose(g.to(F64), w.to(F64), rtol=rtol, atol=atol, equal_nan=True)


def _public_runs(item):
    seed = RUBRIC["assignment"]["public_seed"]
    if item["kind"] == "variable":
        inputs = resolve(RUBRIC["script"]["inputs"])(seed)
        return [("canonical", [inputs], {}, resolve(RUBRIC["script"]["expected"])(inputs)[item["id"]])]
    reference = resolve(item["reference"])
    return [(c["id"], c["args"], c["kwargs"], reference(*_clone(c["args"]), **_clone(c["kwargs"])))
            for c in _cases(item, seed, True)]


MISTAKES = [(item, m) for item in RUBRIC["items"] for m in item.get("mistakes", [])]


@pytest.mark.parametrize("item,mistake", MISTAKES, ids=[f"{i['id']}:{m['id']}" for i, m in MISTAKES])
def test_mistake_differs_from_reference_on_a_public_case(item, mistake):
    fn = resolve(mistake["function"])
    differing, errors = [], []
    for case_id, args, kwargs, want in _public_runs(item):
        try:
            got = fn(*_clone(args), **_clone(kwargs))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{case_id}: {type(e).__name__}: {e}")
            continue
        if _differs(got, want, item):
            differing.append(case_id)
    assert not errors, f"{mistake['id']} raises on public cases: {errors}"
    assert differing, f"{mistake['id']} is indistinguishable from the reference on every public case"


@pytest.mark.parametrize("item,mistake", MISTAKES, ids=[f"{i['id']}:{m['id']}" for i, m in MISTAKES])
def test_mistake_has_specific_hints_in_both_languages(item, mistake):
    hint = mistake["hint"]
    assert set(hint) == {"zh", "en"} and len(hint["zh"]) >= 20 and len(hint["en"]) >= 40
    assert 0 < mistake["credit"] < 1


def test_every_named_function_exists_and_the_points_add_up():
    names = [RUBRIC["script"]["inputs"], RUBRIC["script"]["expected"]]
    for item in RUBRIC["items"]:
        names += [item[k] for k in ("reference", "cases", "follows", "hints") if item.get(k)]
        names += [m["function"] for m in item.get("mistakes", [])]
    assert all(callable(resolve(n)) for n in names)
    assert sum(i["points"] for i in RUBRIC["items"]) == 40
    ids = [m["id"] for _, m in MISTAKES]
    assert len(ids) == len(set(ids))


def test_property_hints_name_the_expected_shape():
    x, w, b = torch.zeros(2, 3, 7, 7), torch.zeros(4, 3, 3, 3), torch.zeros(4)
    hint = resolve(ITEMS["conv2d"]["hints"])((x, w, b, 2, 1), torch.zeros(2, 4, 3, 3))
    assert "(2, 4, 4, 4)" in hint["en"] and "(2, 4, 4, 4)" in hint["zh"]
    assert resolve(ITEMS["conv2d"]["hints"])((x, w, b, 2, 1), torch.zeros(2, 4, 4, 4)) is None
    hint = resolve(ITEMS["conv2d_backward"]["hints"])((torch.zeros(2, 4, 4, 4), x, w, b, 2, 1),
                                                       {"dx": x, "dw": w})
    assert "db" in hint["en"]
    assert resolve(ITEMS["conv2d_backward"]["hints"])((torch.zeros(2, 4, 4, 4), x, w, b, 2, 1), [x, w, b]) is not None
    assert resolve(ITEMS["batch_norm"]["hints"])((torch.zeros(4, 2),) * 5, None) is not None
    assert resolve(ITEMS["max_pool2d"]["hints"])((-torch.ones(1, 1, 4, 4), 2, 2), torch.zeros(1, 1, 2, 2)) is not None


# === the solution notebook, the starter and the written ids =======================================
SOLUTION = PKG_DIR / "solution.ipynb"


def _solution_namespace():
    nb = json.loads(SOLUTION.read_text(encoding="utf-8"))
    ns: dict = {}
    state = torch.get_rng_state()
    try:
        torch.manual_seed(RUBRIC["assignment"]["public_seed"])
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), str(SOLUTION), "exec"), ns)   # hidden tests included
    finally:
        torch.set_rng_state(state)
    return ns


@pytest.fixture(scope="module")
def solution_ns():
    return _solution_namespace()


def test_solution_script_values_are_the_expected_ones(solution_ns):
    expected = resolve(RUBRIC["script"]["expected"])(resolve(RUBRIC["script"]["inputs"])(RUBRIC["assignment"]["public_seed"]))
    for item in RUBRIC["items"]:
        if item["kind"] == "variable":
            assert not _differs(solution_ns[item["name"] if "name" in item else item["id"]], expected[item["id"]], item)


@pytest.mark.parametrize("item", FUNCTION_ITEMS, ids=lambda i: i["id"])
def test_solution_functions_agree_with_the_reference_within_tolerance(solution_ns, item):
    """The solution's loops sum in another order than the reference's einsum: the tolerance must
    leave room for that on every case of every seed."""
    fn = solution_ns[item.get("name", item["id"])]
    reference = resolve(item["reference"])
    for seed, c in _all_cases(item):
        got = fn(*_clone(c["args"]), **_clone(c["kwargs"]))
        want = reference(*_clone(c["args"]), **_clone(c["kwargs"]))
        assert not _differs(got, want, item), f"{item['id']} {seed}:{c['id']}"


def test_committed_starter_is_what_release_makes_of_the_solution():
    from grader.release import notebook_text, percent_script, starter_notebook
    starter = starter_notebook(json.loads(SOLUTION.read_text(encoding="utf-8")), SOLUTION)
    assert (PKG_DIR / "starter.ipynb").read_text(encoding="utf-8") == notebook_text(starter)
    assert (PKG_DIR / "starter.py").read_text(encoding="utf-8") == percent_script(starter)


def test_written_ids_match_the_solutions_headings():
    from grader.blanks import locate_written
    from grader.load import load_submission
    written = tuple(i["id"] for i in RUBRIC["items"] if i["kind"] == "written")
    found = {w.item: w.text for w in locate_written(load_submission(SOLUTION), written)}
    assert set(found) == set(written)
    assert all(len(text) > 200 for text in found.values()), {k: len(v) for k, v in found.items()}
    starter = {w.item: w.text for w in locate_written(load_submission(PKG_DIR / "starter.ipynb"), written)}
    assert all(text == "" for text in starter.values()), starter
