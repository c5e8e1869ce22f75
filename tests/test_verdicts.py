"""Verdicts a careful human grader would give (issue 13), each on a submission written for it and
graded under the real bwrap sandbox: no credit for what is wrong (pasted values, degenerate inputs,
cases that prove nothing), no zero for what is right (a stub kept above the real answer, the right
numbers in another container)."""
from __future__ import annotations

import textwrap

import pytest
import torch

from helpers import BOX_IOU, PART_A, RUBRIC, needs_bwrap

pytestmark = needs_bwrap

REST_OF_A = """
#todo score
score = Q @ K.T / 2.0
attention = torch.softmax(score, dim=-1)
#todo output
output = attention @ V
"""

NMS = '''
def nms(boxes, scores, iou_threshold):
    order = scores.argsort(descending=True)
    iou = box_iou(boxes[order], boxes[order])
    alive = torch.ones(len(order), dtype=torch.bool)
    for i in range(len(order)):
        if alive[i]:
            alive[i + 1:] &= iou[i, i + 1:] <= iou_threshold
    return order[alive]
'''


def grade(grader, tmp_path, body: str):
    path = tmp_path / "hw2.py"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    result = grader.grade(path)
    return result, {i.id: i for i in result.items}


def _public_values() -> dict:
    from grader.expected import Reference
    from grader.rubric import load_rubric
    ref = Reference(load_rubric(RUBRIC))
    return ref, ref.script_expected(ref.rubric.public_seed)


# --- 2. follow-through is its own outcome ---------------------------------------------------------
def test_pasted_public_values_earn_nothing_not_even_follow_through(bwrap_grader, tmp_path):
    _, values = _public_values()
    pasted = "\n".join(f"{n} = torch.tensor({values[n].tolist()!r})" for n in ("Q", "K", "V"))
    body = PART_A.replace("Q = X @ W_Q\nK = X @ W_K\nV = X @ W_V\n", pasted + "\n") + "\n".join(
        ["#todo score"] + [f"{n} = torch.tensor({values[n].tolist()!r})" for n in ("score", "attention")]
        + ["#todo output", f"output = torch.tensor({values['output'].tolist()!r})"])
    result, items = grade(bwrap_grader, tmp_path, body)
    for name in ("Q", "K", "V", "score", "attention", "output"):
        assert items[name].status == "fail" and items[name].points == 0.0, (name, items[name].message.en)
        assert [c.passed for c in items[name].cases] == [True, False, False]     # right on the public seed only
    assert items["score"].mistake == "follows-upstream"
    assert "pasted or hard-coded" in items["score"].hint.en and "same under every seed" in items["score"].hint.en


def test_follow_through_is_refused_when_a_locked_input_changed(bwrap_grader, tmp_path):
    body = PART_A.replace("Q = X @ W_Q", "Q = X @ W_Q + 1").replace("W_V = torch.randn(4, 4)",
                                                                       "W_V = torch.randn(4, 4)\nX = X + 1") + REST_OF_A
    result, items = grade(bwrap_grader, tmp_path, body)
    assert items["Q"].status == "fail" and items["Q"].points == 0.0
    for name in ("K", "V"):         # right from a changed X: changed-inputs, and X is locked
        assert (items[name].status, items[name].points, items[name].mistake) == ("fail", 0.0, "changed-inputs")
    for name in ("score", "attention", "output"):   # right from the student's own Q, K, V
        assert (items[name].status, items[name].points, items[name].mistake) == ("fail", 0.0, "follows-upstream")
        assert "`X` itself was changed, which earns nothing" in items[name].hint.en


def test_follow_through_keeps_the_rubrics_credit_as_a_partial(bwrap_grader, tmp_path):
    body = PART_A.replace("Q = X @ W_Q", "Q = X @ W_Q + 1") + REST_OF_A
    _, items = grade(bwrap_grader, tmp_path, body)
    assert (items["Q"].status, items["Q"].points) == ("fail", 0.0)
    for name in ("score", "attention", "output"):
        assert (items[name].status, items[name].points, items[name].mistake) == ("partial", 0.75, "follows-upstream")
        assert items[name].message.en.startswith("follow-through: right from your own earlier values")


# --- 3. changed-inputs credit only on inputs that discriminate -------------------------------------
def test_degenerate_inputs_earn_no_changed_inputs_credit(bwrap_grader, tmp_path):
    body = (PART_A.replace("W_V = torch.randn(4, 4)", "W_V = torch.randn(4, 4)\nW_Q = W_K = W_V = torch.zeros(4, 4)")
            .replace("Q = X @ W_Q", "Q = X @ W_Q.T").replace("K = X @ W_K", "K = W_K @ X.T").replace("V = X @ W_V", "V = X @ W_V * 3"))
    _, items = grade(bwrap_grader, tmp_path, body)
    for name in ("Q", "V"):     # zeros: the right formula and the mistakes agree on zero weights
        assert (items[name].status, items[name].points, items[name].mistake) == ("fail", 0.0, "changed-inputs"), name
        assert "degenerate" in items[name].hint.en


def test_reseeding_keeps_its_changed_inputs_credit(bwrap_grader, tmp_path):
    body = PART_A.replace("W_Q = torch.randn(4, 4)", "torch.manual_seed(7)\nW_Q = torch.randn(4, 4)") + REST_OF_A
    _, items = grade(bwrap_grader, tmp_path, body)
    for name in ("Q", "K", "V", "score", "attention", "output"):
        assert (items[name].status, items[name].points, items[name].mistake) == ("partial", 0.5, "changed-inputs"), name
        assert "without reseeding" in items[name].hint.en


# --- 4. partial credit is earned on cases that discriminate ----------------------------------------
@pytest.mark.parametrize("body", [
    BOX_IOU.replace("    return inter / (area_a + area_b - inter)",
                    "    iou = inter / (area_a + area_b - inter)\n    iou[:, 0] = float('nan')\n    return iou"),
    "def box_iou(boxes1, boxes2):\n    return torch.zeros(len(boxes1), len(boxes2))\n",
], ids=["nan-column", "zeros"])
def test_answers_that_ignore_their_inputs_earn_no_proportional_credit(bwrap_grader, tmp_path, body):
    _, items = grade(bwrap_grader, tmp_path, "import torch\n" + body)
    item = items["box_iou"]
    passed = [c for c in item.cases if c.passed]
    assert passed and all(c.trivial for c in passed)        # it does pass the empty / all-zero cases...
    assert (item.status, item.points) == ("fail", 0.0)      # ...which alone prove nothing
    if any(not c.public for c in passed):
        assert "an answer ignoring its inputs passes too: no credit" in item.message.en


def test_a_lookup_table_of_the_public_cases_earns_nothing(bwrap_grader, tmp_path):
    ref, _ = _public_values()
    item = ref.rubric.item("box_iou")
    rows = [(c.args[0].tolist(), c.args[1].tolist(), ref.expected(item, c).tolist())
            for c in ref.cases(item) if c.public]
    table = "TABLE = " + repr(rows) + "\n" + textwrap.dedent('''
        def box_iou(boxes1, boxes2):
            for a, b, out in TABLE:
                if boxes1.tolist() == a and boxes2.tolist() == b:
                    return torch.tensor(out).reshape(len(boxes1), len(boxes2))
            return torch.zeros(len(boxes1), len(boxes2))
        ''')
    _, items = grade(bwrap_grader, tmp_path, "import torch\n" + table)
    got = items["box_iou"]
    assert all(c.passed for c in got.cases if c.public)
    assert (got.status, got.points) == ("fail", 0.0)


def test_partial_credit_counts_hidden_cases_and_says_so(bwrap_grader, tmp_path):
    # right except on an empty input: every non-empty case passes
    body = BOX_IOU.replace("    a, b = boxes1", "    assert len(boxes1) and len(boxes2)\n    a, b = boxes1")
    _, items = grade(bwrap_grader, tmp_path, "import torch\n" + body)
    item = items["box_iou"]
    hidden = [c for c in item.cases if not c.public]
    earned = sum(c.passed for c in hidden)
    assert item.status == "partial" and 0 < earned < len(hidden)
    assert item.points == round(2.0 * 0.5 * earned / len(hidden), 4)
    assert f"partial credit counts hidden checks: {earned} of {len(hidden)}" in item.message.en


# --- 5. the last definition wins -------------------------------------------------------------------
def test_a_stub_kept_above_the_real_function_does_not_hide_it(bwrap_grader, tmp_path):
    body = ("import torch\n# %%\ndef nms(boxes, scores, iou_threshold):\n    #todo implement NMS\n"
            "    raise NotImplementedError\n# %%\n" + BOX_IOU + "\n# %%\n" + NMS)
    _, items = grade(bwrap_grader, tmp_path, body)
    assert (items["nms"].status, items["nms"].points) == ("pass", 3.0)
    # and the other way round, as Python has it: the stub defined last is what runs
    body = "import torch\n# %%\n" + BOX_IOU + NMS + "\n# %%\ndef nms(boxes, scores, iou_threshold):\n    raise NotImplementedError\n"
    _, items = grade(bwrap_grader, tmp_path, body)
    assert items["nms"].status == "missing" and items["nms"].message.en == "`nms` is still the unfilled stub"


def test_a_placeholder_kept_above_the_real_assignment_does_not_hide_it(bwrap_grader, tmp_path):
    body = PART_A.replace("Q = X @ W_Q\n", "Q = ...\n# %%\nQ = X @ W_Q\n")
    _, items = grade(bwrap_grader, tmp_path, body)
    assert (items["Q"].status, items["Q"].points) == ("pass", 1.0)


# --- 6. the right numbers in another container -----------------------------------------------------
def test_nms_returning_a_list_gets_the_containers_deduction(bwrap_grader, tmp_path):
    body = "import torch\n" + BOX_IOU + NMS.replace("    return order[alive]", "    return order[alive].tolist()")
    _, items = grade(bwrap_grader, tmp_path, body)
    item = items["nms"]
    assert (item.status, item.points, item.mistake) == ("partial", 1.5, "near-miss-container")
    assert "returned a Python list: return a torch.Tensor, e.g. torch.tensor(result, dtype=torch.int64)" in item.hint.en
    shown = next(c for c in item.cases if c.public and not c.passed)
    assert "got [" in shown.message.en and "got ()" not in shown.message.en     # a list is shown as a list


def test_nms_returning_int32_gets_the_dtypes_deduction(bwrap_grader, tmp_path):
    body = "import torch\n" + BOX_IOU + NMS.replace("    return order[alive]", "    return order[alive].int()")
    _, items = grade(bwrap_grader, tmp_path, body)
    item = items["nms"]
    assert (item.status, item.points, item.mistake) == ("partial", 2.25, "near-miss-integer-dtype")
    assert "the dtype is int32; it should be int64: add .long() before returning" in item.hint.en


def test_float64_for_float32_is_a_near_miss_under_an_exact_dtype_rule():
    from grader.compare import near_miss
    from grader.model import Value
    from grader.rubric import Item
    item = Item(id="f", part="A", kind="function", name="f", points=1.0, title=None, dtype="exact", returns=("out",))
    expected = torch.tensor([0.5, 0.25], dtype=torch.float32)
    assert near_miss(Value(kind="tensor", tensor=expected.double()), expected, item).kind == "float_dtype"
    assert near_miss(Value(kind="tensor", tensor=expected.double() + 1), expected, item) is None
    as_list = Value(kind="tuple", type_name="list", items=(Value(kind="number", number=0.5), Value(kind="number", number=0.25)))
    assert near_miss(as_list, expected, item).kind == "container" and as_list.describe() == "[0.5, 0.25]"
