"""One contract per function item (`[items.signature]`, grader/contract.py): the rubric declares the
argument and return kinds the starter documents, and `grade.py validate` holds every case of every
seed, the reference's results and the starter's def lines to it. Plus what the contract is for: a
student who implements exactly what the starter documents passes, and the numerical-stability cases
catch a softmax that does not subtract the row max, public and hidden."""
from __future__ import annotations

import ast
import shutil
import textwrap

import pytest
import torch

from helpers import ROOT, RUBRIC, needs_bwrap
from grader import contract, contract_check, contract_parse
from grader.errors import RubricError
from grader.expected import Reference
from grader.rubric import load_rubric
from grader.validate import contract_problems, signature_problems, validate

TEXT = RUBRIC.read_text(encoding="utf-8")


def sig(**table) -> contract.Signature:
    return contract_parse.parse_signature(table, RUBRIC, "item 'f'")


def call(signature, *args, **kwargs) -> list[tuple]:
    problems, _ = contract_check.check_call(signature, args, kwargs)
    return [(p.name, p.declared, p.passed, p.reason) for p in problems]


# --- the declaration ---------------------------------------------------------------------------------
ROI = sig(args=[{"name": "features", "kind": "tensor", "dtype": "floating", "shape": ["B", "C", "H", "W"]},
                {"name": "rois", "kind": "tensor", "dtype": "floating", "shape": ["K", 5]},
                {"name": "output_size", "kind": "tuple", "of": "int", "length": 2},
                {"name": "spatial_scale", "kind": "float"}],
          returns=[{"name": "pooled", "kind": "tensor", "dtype": "floating",
                    "shape": ["K", "C", "output_size[0]", "output_size[1]"]}])
SDPA = sig(args=[{"name": "Q", "kind": "tensor", "dtype": "floating", "shape": ["...", "n_q", "d"]},
                 {"name": "K", "kind": "tensor", "dtype": "floating", "shape": ["...", "n_k", "d"]},
                 {"name": "V", "kind": "tensor", "dtype": "floating", "shape": ["...", "n_k", "d_v"]},
                 {"name": "mask", "kind": "tensor", "dtype": "bool", "shape": ["...", "n_q", "n_k"],
                  "broadcast": True, "optional": True}])


def test_a_call_of_the_declared_kinds_has_no_problem_and_binds_the_dims():
    problems, env = contract_check.check_call(ROI, (torch.zeros(2, 3, 5, 6), torch.zeros(4, 5), (2, 3), 0.5), {})
    assert problems == []
    assert contract_check.check_returns(ROI, torch.zeros(4, 3, 2, 3), env) == []
    ret = contract_check.check_returns(ROI, torch.zeros(4, 3, 3, 3), env)
    assert [(p.name, p.reason) for p in ret] == [("pooled", "dim output_size[0] is 3, but argument output_size makes it 2")]


def test_each_kind_of_departure_is_named_with_declared_and_passed():
    f, r = torch.zeros(1, 1, 4, 4), torch.zeros(1, 5)
    assert call(ROI, f, r, 3, 1.0) == [("output_size", "a tuple of 2 ints", "3 (an int)", "")]
    assert call(ROI, f, r, [3, 3], 1.0) == [("output_size", "a tuple of 2 ints", "[3, 3] (a list)",
                                             "a list is not a tuple (the student's function gets exactly "
                                             "what the case passes)")]
    assert call(ROI, f, r, (3, 3.0), 1.0) == [("output_size", "a tuple of 2 ints", "(3, 3.0) (a tuple)",
                                               "item 1 is 3.0 (a float)")]
    assert call(ROI, f, r, (3, 3), 1) == [("spatial_scale", "a float", "1 (an int)",
                                           "an int is not a float here: write it as a float (3.0)")]
    assert call(ROI, f, torch.zeros(1, 4), (2, 2), 1.0) == [
        ("rois", "a floating-point tensor of shape (K, 5)", "a float32 tensor of shape (1, 4)", "dim 1 is 4, not 5")]
    assert call(ROI, f, r.long(), (2, 2), 1.0) == [
        ("rois", "a floating-point tensor of shape (K, 5)", "an int64 tensor of shape (1, 5)", "dtype int64")]
    assert call(ROI, f, r, (2, 2)) == [("spatial_scale", "a float", "nothing", "it is required")]
    assert call(ROI, f, r, (2, 2), 1.0, scale=2.0)[0][:2] == ("scale", "no argument 'scale' in "
                                                              "(features, rois, output_size, spatial_scale)")


def test_shapes_bind_names_leading_dims_and_broadcast():
    Q, K, V = torch.zeros(2, 3, 4), torch.zeros(2, 5, 4), torch.zeros(2, 5, 7)
    assert call(SDPA, Q, K, V) == call(SDPA, Q, K, V, None) == []
    assert call(SDPA, Q, K, V, torch.ones(2, 1, 5, dtype=torch.bool)) == []      # broadcast over the queries
    assert call(SDPA, Q, K, V, torch.ones(5, dtype=torch.bool)) == []
    assert call(SDPA, Q, torch.zeros(2, 5, 3), V)[0][3] == "dim d is 3, but argument Q makes it 4"
    assert call(SDPA, Q, torch.zeros(3, 5, 4), V)[0][3] == "its leading dims (...) are (3,), but argument Q has (2,)"
    assert call(SDPA, Q, K, V, torch.ones(2, 3, 4, dtype=torch.bool))[0][3] == \
        "shape (2, 3, 4) does not broadcast to (2, 3, 5)"
    assert call(SDPA, Q, K, V, torch.ones(2, 3, 5))[0][1:] == (
        "a bool tensor broadcastable to (..., n_q, n_k), or None", "a float32 tensor of shape (2, 3, 5)", "dtype float32")


def test_numbers_bools_strings_defaults_and_int_arguments_as_dims():
    s = sig(args=[{"name": "n", "kind": "int", "min": 1},
                  {"name": "t", "kind": "float", "min": 0.0, "max": 1.0},
                  {"name": "how", "kind": "str", "choices": ["mean", "sum"], "default": "mean"},
                  {"name": "causal", "kind": "bool", "default": False}],
            returns=[{"name": "m", "kind": "tensor", "dtype": "bool", "shape": ["n", "n"]}])
    assert s.text() == "(n, t, how='mean', causal=False)"
    assert call(s, 3, 0.5) == call(s, 3, 0.5, "sum", causal=True) == []
    assert call(s, 0, 0.5) == [("n", "an int >= 1", "0 (an int)", "out of range")]
    assert call(s, True, 0.5)[0][2] == "True (a bool)"                   # a bool is not an int
    assert call(s, 2, float("nan"))[0][3] == "out of range"
    assert call(s, 2, 0.5, "max")[0][1:] == ("one of 'mean', 'sum' (default 'mean')", "'max' (a string)",
                                             "not one of the choices")
    assert call(s, 2, 0.5, causal=1)[0][:3] == ("causal", "a bool (default False)", "1 (an int)")
    _, env = contract_check.check_call(s, (3, 0.5), {})
    assert contract_check.check_returns(s, torch.ones(3, 3, dtype=torch.bool), env) == []
    assert contract_check.check_returns(s, torch.ones(3, 3), env)[0].reason == "dtype float32"


@pytest.mark.parametrize("table,field,message", [
    ({"args": [{"name": "x", "kind": "tensr"}]}, "signature.args[0].kind", "is 'tensr', must be one of .*did you mean 'tensor'"),
    ({"args": [{"name": "x", "kind": "int", "shape": [2]}]}, "signature.args[0].shape", "does not apply to kind = 'int' \\(only to tensor\\)"),
    ({"args": [{"name": "x", "kind": "tensor", "dtyp": "bool"}]}, "signature.args[0].dtyp", "unknown key; did you mean 'dtype'"),
    ({"args": [{"name": "x", "kind": "tensor", "dtype": "float"}]}, "signature.args[0] (x).dtype", "is 'float': a family"),
    ({"args": [{"name": "x", "kind": "tensor", "shape": ["n", "..."]}]}, "signature.args[0] (x).shape", "entry '...'"),
    ({"args": [{"name": "x", "kind": "int", "default": 0.5}]}, "signature.args[0] (x).default", "is 0.5, which is not an int"),
    ({"args": [{"name": "x", "kind": "int", "default": 1}, {"name": "y", "kind": "int"}]}, "signature.args[0]",
     "'x' may be left out but 'y' after it may not"),
    ({"args": [{"name": "x", "kind": "int"}, {"name": "x", "kind": "int"}]}, "signature.args", "names 'x' twice"),
    ({"args": [], "returns": [{"name": "y", "kind": "int", "default": 1}]}, "signature.returns[0].default", "a returned value has no default"),
    ({"returns": []}, "signature", "needs `args`"),
])
def test_a_bad_declaration_is_refused_naming_the_field(table, field, message):
    with pytest.raises(RubricError, match=f"field '{__import__('re').escape(field)}': {message}"):
        sig(**table)


def test_the_rubric_loader_takes_the_signature_and_its_return_names():
    rubric = load_rubric(RUBRIC)
    for item in rubric.items_of("function"):
        assert item.signature is not None, item.id
        assert item.returns == item.signature.return_names
    assert rubric.item("roi_pool").signature.text() == "(features, rois, output_size, spatial_scale)"
    assert rubric.item("multi_head_attention").signature.text() == "(X, W_Q, W_K, W_V, W_O, num_heads, causal=False)"


def test_returns_named_twice_must_agree(tmp_path):
    path = tmp_path / "hw2.toml"
    path.write_text(TEXT.replace('cases = "cases.nms"\n', 'cases = "cases.nms"\nreturns = ["kept"]\n')
                    .replace('"../reference/hw2"', f'"{ROOT / "reference" / "hw2"}"'), encoding="utf-8")
    with pytest.raises(RubricError, match=r"item 'nms', field 'returns': is \['kept'\], but the signature returns \['keep'\]"):
        load_rubric(path)


# --- validate ---------------------------------------------------------------------------------------
def test_validate_holds_every_hw2_case_and_starter_to_the_contract():
    rubric = load_rubric(RUBRIC)
    assert contract_problems(rubric, Reference(rubric)) == []
    assert signature_problems(rubric) == []


@pytest.fixture()
def int_output_size(tmp_path):
    """hw2 as it was: its public roi_pool case passes output_size as the int 3."""
    ref = tmp_path / "ref"
    shutil.copytree(ROOT / "reference" / "hw2", ref, ignore=shutil.ignore_patterns("__pycache__"))
    cases = ref / "cases.py"
    text = cases.read_text(encoding="utf-8")
    old = "fmap(1, 1, 5, 5), _t([[0, 0, 0, 3, 3]]), (3, 3), 1.0))"
    assert text.count(old) == 1
    cases.write_text(text.replace(old, old.replace("(3, 3)", "3")), encoding="utf-8")
    rubric = tmp_path / "hw2.toml"
    rubric.write_text(TEXT.replace("../reference/hw2", "ref"), encoding="utf-8")
    return rubric


def test_validate_fails_on_a_case_outside_the_contract(int_output_size):
    rubric = load_rubric(int_output_size)
    assert contract_problems(rubric, Reference(rubric)) == [
        f"{int_output_size}: item 'roi_pool': case 'public:output-3x3-shared-rows' (seed 0): argument output_size: "
        "declared a tuple of 2 ints; the case passes 3 (an int)"]


@needs_bwrap
def test_validate_command_lists_the_contract_problem(int_output_size):
    problems = validate(int_output_size, sandbox="bwrap")
    assert problems == [
        f"{int_output_size}: item 'roi_pool': case 'public:output-3x3-shared-rows' (seed 0): argument output_size: "
        "declared a tuple of 2 ints; the case passes 3 (an int)"]


def test_a_hidden_case_and_the_references_result_are_held_to_it_too(tmp_path):
    """A small assignment of its own: one function item whose hidden cases pass a float threshold
    as an int and whose reference returns the wrong dtype; its starter's def forgets a default."""
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "__init__.py").write_text("from .impl import clip\n", encoding="utf-8")
    (ref / "impl.py").write_text(textwrap.dedent('''
        import torch
        def clip(x, limit, inplace=False):
            return x.clamp(-limit, limit).double()
        def cases(seed, public):
            x = torch.arange(6.0).reshape(2, 3)
            if public:
                return [{"id": "half", "args": [x, 0.5]}]
            return [{"id": "int-limit", "args": [x, 2], "kwargs": {"inplace": False}}]
    '''), encoding="utf-8")
    (ref / "starter.py").write_text("# %%\ndef clip(x, limit, inplace):\n    raise NotImplementedError\n", encoding="utf-8")
    rubric = tmp_path / "a.toml"
    rubric.write_text(textwrap.dedent('''
        schema = 1
        [assignment]
        id = "a"
        title = "A"
        reference = "ref"
        starter = ["ref/starter.py"]
        public_seed = 0
        hidden_seeds = [7]
        [[items]]
        id = "clip"
        part = "A"
        kind = "function"
        points = 1
        reference = "clip"
        cases = "impl.cases"
          [items.signature]
          args = [
            { name = "x", kind = "tensor", dtype = "float32", shape = ["...", "n"] },
            { name = "limit", kind = "float", min = 0.0 },
            { name = "inplace", kind = "bool", default = false },
          ]
          returns = [{ name = "y", kind = "tensor", dtype = "float32", shape = ["...", "n"] }]
    '''), encoding="utf-8")
    loaded = load_rubric(rubric)
    assert loaded.item("clip").returns == ("y",)
    where = f"{rubric.resolve()}: item 'clip'"
    assert contract_problems(loaded, Reference(loaded)) == [
        f"{where}: case 'public:half' (seed 0): returned y: declared a float32 tensor of shape (..., n); "
        "the reference returns a float64 tensor of shape (2, 3) (dtype float64)",
        f"{where}: case 'hidden-1:int-limit' (seed 7): argument limit: declared a float >= 0.0; the case passes "
        "2 (an int) (an int is not a float here: write it as a float (3.0))"]
    assert signature_problems(loaded) == [
        f"{ref / 'starter.py'}: cell 1, line 1: def clip(x, limit, inplace) (item 'clip'): `inplace` has no default, "
        "but the signature lets it be left out (inplace=False)"]


def test_a_function_item_without_a_signature_is_a_problem(tmp_path):
    start = TEXT.index('id = "box_iou"')
    block_start = TEXT.index("  [items.signature]", start)
    block_end = TEXT.index("  [[items.mistakes]]", block_start)
    text = (TEXT[:block_start] + TEXT[block_end:]).replace('cases = "cases.box_iou"\n', 'cases = "cases.box_iou"\nreturns = ["iou"]\n')
    path = tmp_path / "hw2.toml"
    path.write_text(text.replace('"../reference/hw2"', f'"{ROOT / "reference" / "hw2"}"'), encoding="utf-8")
    rubric = load_rubric(path)
    assert contract_problems(rubric, Reference(rubric)) == [
        f"{path}: item 'box_iou': declares no [items.signature]; declare the kinds of the arguments and returned "
        "values the starter documents (docs/rubric-format.md)"]


def test_def_lines_are_compared_by_names_order_and_defaults():
    s = sig(args=[{"name": "X", "kind": "tensor"}, {"name": "num_heads", "kind": "int"},
                  {"name": "causal", "kind": "bool", "default": False}])

    def problems(src):
        return contract_check.def_problems(s, ast.parse(src).body[0])

    assert problems("def f(X, num_heads, causal=False): pass") == []
    assert problems("def f(X, num_heads, *, causal=False): pass") == []
    assert problems("def f(X, heads, causal=False): pass") == [
        "its parameters are (X, heads, causal); the signature declares (X, num_heads, causal=False)"]
    assert problems("def f(X, num_heads, causal=True): pass") == [
        "`causal` defaults to True, but the signature declares False"]
    assert problems("def f(X, num_heads=2, causal=False): pass") == [
        "`num_heads` has a default (2), but the signature declares it required (give it `optional = true` or a `default`)"]
    assert problems("def f(X, num_heads, causal=False, **kw): pass") == ["it takes **kw, which the signature does not declare"]


# --- what the contract is for: graded for real ------------------------------------------------------
STUDENT = '''
# %%
import math
import torch


# %%
def scaled_dot_product_attention(Q, K, V, mask=None):
    d = Q.shape[-1]
    scores = Q @ K.transpose(-2, -1) / math.sqrt(d)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    e = torch.exp(scores)                      # the textbook formula, without the row max
    weights = e / e.sum(-1, keepdim=True)
    return weights @ V, weights


# %%
def causal_mask(n):
    return torch.ones(n, n, dtype=torch.bool).tril()


# %%
def multi_head_attention(X, W_Q, W_K, W_V, W_O, num_heads, causal=False):
    n, d_model = X.shape
    d_head = d_model // num_heads
    split = lambda M: M.reshape(n, num_heads, d_head).transpose(0, 1)
    mask = causal_mask(n) if causal else None
    heads, weights = scaled_dot_product_attention(split(X @ W_Q), split(X @ W_K), split(X @ W_V), mask)
    return heads.transpose(0, 1).reshape(n, d_model) @ W_O, weights


# %%
def roi_pool(features, rois, output_size, spatial_scale):
    oh, ow = output_size                       # exactly what the starter documents: (h, w)
    _, C, H, W = features.shape
    out = torch.zeros(rois.shape[0], C, oh, ow, dtype=features.dtype)
    for k in range(rois.shape[0]):
        b = int(rois[k, 0])
        x1, y1, x2, y2 = [int(math.copysign(math.floor(abs(float(v) * spatial_scale) + 0.5), float(v)))
                          for v in rois[k, 1:]]
        bin_h = max(y2 - y1 + 1, 1) / oh
        bin_w = max(x2 - x1 + 1, 1) / ow
        for i in range(oh):
            top = min(max(math.floor(i * bin_h) + y1, 0), H)
            bottom = min(max(math.ceil((i + 1) * bin_h) + y1, 0), H)
            for j in range(ow):
                left = min(max(math.floor(j * bin_w) + x1, 0), W)
                right = min(max(math.ceil((j + 1) * bin_w) + x1, 0), W)
                if bottom > top and right > left:
                    out[k, :, i, j] = features[b, :, top:bottom, left:right].amax(dim=(-2, -1))
    return out
'''


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    path = tmp_path_factory.mktemp("contract") / "hw2.py"
    path.write_text(STUDENT, encoding="utf-8")
    return path


@needs_bwrap
def test_roi_pool_written_to_the_starters_contract_passes_every_case(bwrap_grader, student):
    roi = next(i for i in bwrap_grader.grade(student).items if i.id == "roi_pool")
    assert (roi.status, roi.points) == ("pass", 3.0), roi.message.en
    runs = {c.run for c in roi.cases}
    assert runs == {"public", "hidden-1", "hidden-2"} and all(c.passed for c in roi.cases)


@needs_bwrap
def test_unstable_softmax_fails_the_stability_cases_with_its_hint(bwrap_grader, student):
    rubric = bwrap_grader.rubric
    by_id = {i.id: i for i in bwrap_grader.grade(student).items}
    for item_id, mistake in (("scaled_dot_product_attention", "sdpa-unstable-softmax"),
                             ("multi_head_attention", "mha-unstable-softmax")):
        result, declared = by_id[item_id], next(m for m in rubric.item(item_id).mistakes if m.id == mistake)
        assert (result.status, result.mistake, result.points) == ("partial", mistake, 1.5), result.message.en
        assert result.hint == declared.hint and "torch.softmax" in declared.hint.en and "torch.softmax" in declared.hint.zh
        failing = {c.case_id for c in result.cases if not c.passed}
        assert failing and all("large-scores" in c or "overflow" in c for c in failing), failing
        assert {c.split(":")[0] for c in failing} == {"public", "hidden-1", "hidden-2"}   # every seed has one
        assert all(c.mistake == mistake for c in result.cases if not c.passed)
    assert by_id["causal_mask"].status == "pass"


@needs_bwrap
def test_the_self_check_sees_a_stability_case(checker, student):
    """The pack carries a public stability case, so a student's `grade.py check` catches the
    unstable softmax before submitting, with the hint."""
    by_id = {i.id: i for i in checker.grade(student).items}
    sdpa = by_id["scaled_dot_product_attention"]
    assert (sdpa.status, sdpa.mistake, sdpa.points) == ("partial", "sdpa-unstable-softmax", 1.5)
    assert {c.case_id for c in sdpa.cases if not c.passed} == {"public:large-scores", "public:softmax-overflow-underflow"}
    assert (by_id["multi_head_attention"].mistake, by_id["roi_pool"].status) == ("mha-unstable-softmax", "pass")
