"""Nested values, end to end through a real sandbox: a function returning `(out, (h, c))`, a dict
of gradients, a list of 20 states, a `mode="train"` keyword, a set of indices in any order; and
the caps that keep a hostile nested value from costing the trusted side (depth, parts, keys)."""
from __future__ import annotations

import textwrap

import pytest

from grader.pipeline import Grader
from helpers import needs_bwrap

REFERENCE = '''
import torch

def lstm_like(x):
    return x * 2, (x + 1, x - 1)

def grads(x):
    return {"dx": x * 3, "dw": x.sum(0), "db": x.sum()}

def states(x):
    return [x * k for k in range(20)]

def scale(x, mode="eval"):
    return x * (2.0 if mode == "train" else 1.0)

def keep(x):
    return torch.nonzero(x > 0).flatten()
'''

CASES = '''
import torch

def _x(seed, public):
    g = torch.Generator().manual_seed(seed * 2 + public)
    return torch.randn(3, 4, generator=g)

def one(seed, public):
    return [{"id": "a", "args": [_x(seed, public)]}]

def modes(seed, public):
    x = _x(seed, public)
    return [{"id": "train", "args": [x], "kwargs": {"mode": "train"}}, {"id": "eval", "args": [x], "kwargs": {"mode": "eval"}}]

def flat(seed, public):
    return [{"id": "a", "args": [_x(seed, public).flatten()]}]
'''

RUBRIC = '''
schema = 1
[assignment]
id = "nest"
title = { zh = "嵌套", en = "nested" }
reference = "reference/nest"
lang = "en"
public_seed = 0
hidden_seeds = [5]
[[parts]]
id = "A"
title = { zh = "A", en = "A" }
[[items]]
id = "lstm_like"
part = "A"
kind = "function"
points = 1
reference = "lstm_like"
cases = "cases.one"
returns = ["out", "state"]
[[items]]
id = "grads"
part = "A"
kind = "function"
points = 1
reference = "grads"
cases = "cases.one"
  [items.outputs.grads]
  atol = 0.01
[[items]]
id = "states"
part = "A"
kind = "function"
points = 1
reference = "states"
cases = "cases.one"
[[items]]
id = "scale"
part = "A"
kind = "function"
points = 1
reference = "scale"
cases = "cases.modes"
[[items]]
id = "keep"
part = "A"
kind = "function"
points = 1
reference = "keep"
cases = "cases.flat"
dtype = "exact"
  [items.outputs.keep]
  order = "any"
'''


@pytest.fixture(scope="module")
def nest_grader(tmp_path_factory):
    root = tmp_path_factory.mktemp("nest")
    pkg = root / "reference" / "nest"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(REFERENCE)
    (pkg / "cases.py").write_text(CASES)
    (root / "nest.toml").write_text(RUBRIC)
    g = Grader(root / "nest.toml", sandbox="bwrap")
    yield g
    g.close()


def grade(g, tmp_path, body: str):
    path = tmp_path / "student.py"
    path.write_text("import torch\n" + textwrap.dedent(body))
    return {i.id: i for i in g.grade(path, "student").items}


@needs_bwrap
def test_right_nested_answers_pass_in_any_documented_form(nest_grader, tmp_path):
    items = grade(nest_grader, tmp_path, """
        def lstm_like(x):
            return x * 2, [x + 1, x - 1]          # a list where a tuple is documented unpacks the same
        def grads(x):
            return {"db": x.sum() + 0.001, "dw": x.sum(0), "dx": x * 3}   # any key order; within this output's atol
        def states(x):
            out = []
            for k in range(20):
                out.append(x * k)
            return out
        def scale(x, mode="eval"):
            return x * 2 if mode == "train" else x.clone()
        def keep(x):
            return torch.nonzero(x > 0).flatten().flip(0)   # a set of indices, in another order
        """)
    assert {k: v.status for k, v in items.items()} == dict.fromkeys(items, "pass")


@needs_bwrap
def test_a_wrong_part_is_named_by_its_path(nest_grader, tmp_path):
    items = grade(nest_grader, tmp_path, """
        def lstm_like(x):
            return x * 2, (x - 1, x + 1)          # h and c swapped
        def grads(x):
            return {"dx": x * 3, "dw": x.sum(1)}  # dw over the wrong dim, db missing
        def states(x):
            return [x * k for k in range(19)]
        def scale(x, mode="eval"):
            return x * 2                          # ignores mode
        def keep(x):
            return torch.nonzero(x > 0).flatten().to(torch.int32)
        """)
    assert items["lstm_like"].status == "fail"
    assert "`state[0]`" in items["lstm_like"].cases[0].message.en
    assert "missing 'db'" in items["grads"].cases[0].message.en
    assert "should be a list of 20 values" in items["states"].cases[0].message.en
    scale = {c.case_id.split(":")[1]: c.passed for c in items["scale"].cases if c.public}
    assert scale == {"train": True, "eval": False}
    assert items["keep"].status == "partial" and items["keep"].mistake == "near-miss-integer-dtype"


@needs_bwrap
def test_hostile_nested_values_are_refused_with_a_reason_and_cost_nothing(nest_grader, tmp_path):
    items = grade(nest_grader, tmp_path, """
        def lstm_like(x):
            v = [x]
            for _ in range(10):
                v = [v]
            return v                               # nested 11 deep
        def grads(x):
            return {1: x, "dw": x}                 # a key that is not a str
        def states(x):
            loop = []
            loop.append(loop)
            return loop                            # a list that contains itself
        def scale(x, mode="eval"):
            return [[x] * 100 for _ in range(100)] # 10 000 parts
        class Key(str):
            calls = 0
            def __hash__(self):                    # fine for the student's own dict; never again
                Key.calls += 1
                if Key.calls > 1:
                    raise SystemExit("ran the student's hash")
                return str.__hash__(self)
        def keep(x):
            return {Key("keep"): x}
        """)
    msg = lambda i: items[i].cases[0].message.en
    assert "nested deeper than 6 levels" in msg("lstm_like"), msg("lstm_like")
    assert "keys are not all str" in msg("grads")
    assert "nested deeper than 6 levels" in msg("states")
    assert "more than 4096 parts" in msg("scale")
    assert "keys are not all str" in msg("keep")
    assert all(i.status == "fail" and i.points == 0 for i in items.values())
