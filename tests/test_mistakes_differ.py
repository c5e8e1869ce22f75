"""Every known mistake in rubrics/hw2.toml must be distinguishable from the reference on the
public cases (else the grader could hand a correct answer a mistake's hint), and must run."""
from __future__ import annotations

import importlib
import importlib.util
import sys
import tomllib

import pytest
import torch

from helpers import ROOT

RUBRIC_PATH = ROOT / "rubrics" / "hw2.toml"
RUBRIC = tomllib.loads(RUBRIC_PATH.read_text(encoding="utf-8"))
PKG_DIR = (RUBRIC_PATH.parent / RUBRIC["assignment"]["reference"]).resolve()
PKG_NAME = "_hw2_reference_under_test"


def _package():
    """Import the reference package from the rubric's path, as the grader would."""
    if PKG_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(PKG_NAME, PKG_DIR / "__init__.py",
                                                      submodule_search_locations=[str(PKG_DIR)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[PKG_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[PKG_NAME]


def resolve(dotted: str):
    """'module.function' relative to the package, or a bare name exported by the package."""
    pkg = _package()
    if "." not in dotted:
        return getattr(pkg, dotted)
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(f"{PKG_NAME}.{module}"), name)


def _tolerance(item):
    tol = {**RUBRIC.get("tolerance", {}), **item.get("tolerance", {})}
    return tol.get("rtol", 1e-4), tol.get("atol", 1e-5)


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def differs(got, want, item) -> bool:
    got, want = _as_tuple(got), _as_tuple(want)
    if len(got) != len(want):
        return True
    rtol, atol = _tolerance(item)
    for g, w in zip(got, want):
        if not isinstance(g, torch.Tensor) or g.shape != w.shape:
            return True
        if item.get("dtype") == "exact" and g.dtype != w.dtype:
            return True
        if not torch.allclose(g.to(torch.float64), w.to(torch.float64), rtol=rtol, atol=atol, equal_nan=True):
            return True
    return False


def _clone(args):
    return [a.clone() if isinstance(a, torch.Tensor) else a for a in args]


def _public_runs(item):
    """(case id, args, kwargs, expected) for every public case of the item."""
    seed = RUBRIC["assignment"]["public_seed"]
    if item["kind"] == "variable":
        inputs = resolve(RUBRIC["script"]["inputs"])(seed)
        expected = resolve(RUBRIC["script"]["expected"])(inputs)[item["id"]]
        return [("canonical", [inputs], {}, expected)]
    reference = resolve(item["reference"])
    runs = []
    for case in resolve(item["cases"])(seed, True):
        want = reference(*_clone(case["args"]), **case.get("kwargs", {}))
        runs.append((case["id"], case["args"], case.get("kwargs", {}), want))
    return runs


MISTAKES = [(item, m) for item in RUBRIC["items"] for m in item.get("mistakes", [])]


@pytest.mark.parametrize("item,mistake", MISTAKES, ids=[f"{i['id']}:{m['id']}" for i, m in MISTAKES])
def test_mistake_differs_from_reference_on_a_public_case(item, mistake):
    fn = resolve(mistake["function"])
    differing, errors = [], []
    for case_id, args, kwargs, want in _public_runs(item):
        try:
            got = fn(*_clone(args), **kwargs)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{case_id}: {type(e).__name__}: {e}")
            continue
        if differs(got, want, item):
            differing.append(case_id)
    assert not errors, f"{mistake['id']} raises on public cases: {errors}"
    assert differing, f"{mistake['id']} is indistinguishable from the reference on every public case"


def test_every_named_function_exists():
    names = [RUBRIC["script"]["inputs"], RUBRIC["script"]["expected"]]
    for item in RUBRIC["items"]:
        names += [item[k] for k in ("reference", "cases", "follows") if item.get(k)]
        names += [m["function"] for m in item.get("mistakes", [])]
    missing = []
    for name in names:
        try:
            assert callable(resolve(name))
        except (AttributeError, ImportError, AssertionError):
            missing.append(name)
    assert not missing, missing


def test_item_ids_and_mistake_ids():
    ids = [i["id"] for i in RUBRIC["items"]]
    assert ids == ["Q", "K", "V", "score", "attention", "output",
                   "scaled_dot_product_attention", "causal_mask", "multi_head_attention",
                   "box_iou", "nms", "encode_boxes", "decode_boxes", "roi_pool",
                   "written.1.1", "written.1.2", "written.1.3", "written.2.2", "written.2.3",
                   "written.3.1", "written.3.2"]
    required = {
        "Q": {"qkv-weight-transposed"}, "K": {"qkv-weight-transposed"}, "V": {"qkv-weight-transposed"},
        "score": {"score-no-scale", "score-div-d", "score-transposed"}, "attention": {"softmax-dim0"},
        "output": {"output-attention-transposed"},
        "scaled_dot_product_attention": {"sdpa-no-scale", "sdpa-scale-dv", "sdpa-mask-fill-zero", "sdpa-mask-inverted",
                                         "sdpa-mask-after-softmax", "sdpa-softmax-dim0", "sdpa-unstable-softmax"},
        "causal_mask": {"causal-no-diagonal", "causal-inverted"},
        "multi_head_attention": {"mha-scale-dmodel", "mha-heads-interleaved", "mha-no-output-projection",
                                 "mha-weights-averaged", "mha-weight-transposed", "mha-unstable-softmax"},
        "box_iou": {"iou-plus-one", "iou-no-clamp", "iou-union-sum"}, "nms": {"nms-ge", "nms-no-sort"},
        "encode_boxes": {"encode-plus-one", "encode-log-inverted", "encode-roles-swapped", "encode-weights-10-10-5-5"},
        "decode_boxes": {"decode-returns-cxcywh", "decode-no-exp"},
        "roi_pool": {"roi-bankers-rounding", "roi-truncate", "roi-no-plus-one", "roi-empty-bins-neg-inf",
                     "roi-batch-ignored", "roi-crop-adaptive"},
    }
    for item in RUBRIC["items"]:
        have = [m["id"] for m in item.get("mistakes", [])]
        assert len(have) == len(set(have)), item["id"]
        assert required.get(item["id"], set()) <= set(have), (item["id"], required[item["id"]] - set(have))
        for m in item.get("mistakes", []):
            assert 0 <= m["credit"] <= 0.5
            assert m["hint"]["zh"] and m["hint"]["en"]


@pytest.mark.parametrize("item", [i for i in RUBRIC["items"] if i["kind"] == "function"], ids=lambda i: i["id"])
def test_cases_are_deterministic_small_and_well_formed(item):
    gen = resolve(item["cases"])
    for seed, public in [(RUBRIC["assignment"]["public_seed"], True)] + [(s, False) for s in RUBRIC["assignment"]["hidden_seeds"]]:
        first, second = gen(seed, public), gen(seed, public)
        assert 4 <= len(first) <= 15
        ids = [c["id"] for c in first]
        assert len(ids) == len(set(ids))
        for a, b in zip(first, second):
            assert a["id"] == b["id"] and set(a["about"]) == {"zh", "en"}
            for x, y in zip(a["args"], b["args"]):
                assert type(x) is type(y)
                if isinstance(x, torch.Tensor):
                    assert x.numel() <= 4000 and torch.equal(x, y)
                else:
                    assert x is None or isinstance(x, (int, float, bool)) or (
                        isinstance(x, tuple) and all(isinstance(v, int) for v in x)), x
                    assert x == y


def _hidden_runs(item):
    """{hidden seed: [(args, kwargs, expected)]} for a function item."""
    reference = resolve(item["reference"])
    out = {}
    for seed in RUBRIC["assignment"]["hidden_seeds"]:
        out[seed] = [(c["args"], c.get("kwargs", {}), reference(*_clone(c["args"]), **c.get("kwargs", {})))
                     for c in resolve(item["cases"])(seed, False)]
    return out


FUNCTION_MISTAKES = [(item, m) for item, m in MISTAKES if item["kind"] == "function"]


@pytest.mark.parametrize("item,mistake", FUNCTION_MISTAKES, ids=[f"{i['id']}:{m['id']}" for i, m in FUNCTION_MISTAKES])
def test_each_hidden_seed_alone_catches_every_known_mistake(item, mistake):
    """What makes HIDDEN_RANDOM (cases.py) enough: a student whose code is right on the public
    cases but carries a known mistake still fails every hidden seed, each on its own."""
    fn = resolve(mistake["function"])
    for seed, runs in _hidden_runs(item).items():
        caught = 0
        for args, kwargs, want in runs:
            try:
                caught += differs(fn(*_clone(args), **kwargs), want, item)
            except Exception:  # noqa: BLE001 - an error is caught too
                caught += 1
        assert caught, f"{mistake['id']} passes every case of hidden seed {seed}"
