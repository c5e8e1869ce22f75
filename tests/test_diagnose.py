"""Generic diagnosis (grader/diagnose.py): each explanation on hand-made tensors, with exact values."""
from __future__ import annotations

import math

import torch

from grader import diagnose
from grader.model import CaseCheck, ErrorInfo, Text

E = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


def test_transpose_is_named():
    hint = diagnose.tensor_hint(E, E.T)          # expected E, got its transpose
    assert hint is not None and "transpose" in hint.en and "转置" in hint.zh
    assert diagnose.transposed(E, E) is None
    sym = torch.tensor([[1.0, 2.0], [2.0, 1.0]])
    assert diagnose.transposed(sym, sym.T) is None          # a symmetric value is not "transposed"


def test_factor_sqrt_d():
    e = torch.tensor([[0.5, -1.25], [2.0, 0.75]])
    hint = diagnose.scaled(e, e * math.sqrt(16), dims=[16])
    assert "sqrt(d) = 4 times (d = 16)" in hint.en and "1/sqrt(d) scaling seems to be missing" in hint.en
    assert "sqrt(d) = 4（d = 16）倍" in hint.zh
    inv = diagnose.scaled(e, e / 4, dims=[16])
    assert "1/sqrt(d) = 1/4 times (d = 16)" in inv.en


def test_factor_d_two_and_unnamed():
    e = torch.tensor([1.0, -2.0, 3.0])
    assert "d = 8 times" in diagnose.scaled(e, e * 8, dims=[8]).en
    assert "2 times" in diagnose.scaled(e, e * 2).en
    assert "-1 times: the sign is flipped" in diagnose.scaled(e, -e).en
    assert "exactly 1.7 times" in diagnose.scaled(e, e * 1.7).en
    assert diagnose.scaled(e, e) is None
    assert diagnose.scaled(e, e + 1) is None
    assert diagnose.scaled(torch.tensor([0.25]), torch.tensor([0.36])) is None   # one number proves nothing


def test_reshape_and_batch_dims():
    e = torch.arange(6.0).reshape(2, 3)
    assert "in another shape: (3, 2) instead of (2, 3)" in diagnose.reshaped(e, e.reshape(3, 2)).en
    assert "extra batch dim of size 1" in diagnose.reshaped(e, e[None]).en
    assert "batch dim is missing" in diagnose.reshaped(e[None], e).en
    b = torch.arange(12.0).reshape(2, 2, 3)
    assert "only the first element of the batch" in diagnose.reshaped(b, b[0]).en
    perm = diagnose.reshaped(b, b.permute(0, 2, 1).reshape(2, 2, 3).reshape(4, 3))
    assert perm is not None and "transpose/permute" in perm.en


def test_broadcasting_error():
    e = torch.tensor([1.0, 2.0, 3.0])
    got = e[:, None] + torch.zeros(3)          # (3,) met (3, 1): (3, 3)
    hint = diagnose.broadcast(e, got)
    assert "(3, 3) is larger than the expected (3,)" in hint.en
    assert diagnose.broadcast(e, torch.zeros(4, 5)) is None          # shapes no broadcast relates
    assert diagnose.broadcast(torch.zeros(5, 1), torch.zeros(5, 3)) is not None


def test_rows_sum_names_the_dim_and_the_sums():
    scores = torch.tensor([[1.0, 2.0, 0.5], [0.0, 3.0, 1.0], [2.0, 0.0, 0.0]])
    got = torch.softmax(scores, dim=0)
    hint = diagnose.rows_sum(got, "attention")
    sums = got.sum(dim=-1).tolist()
    assert hint.en.startswith("softmax was taken over dim 0: each row of `attention` (along the last dim) must sum to 1, yours sum to ")
    assert f"{sums[0]:.3g}, {sums[1]:.3g}" in hint.en
    assert "softmax 取在了第 0 维" in hint.zh
    assert diagnose.rows_sum(torch.softmax(scores, dim=-1), "attention") is None
    assert "yours sum to" not in diagnose.rows_sum(got, "attention", reveal=False).en


def test_nan_position():
    got = torch.tensor([[1.0, 2.0], [float("nan"), float("inf")]])
    hint = diagnose.nonfinite(got)
    assert "2 NaN/Inf value(s), the first (NaN) at [1, 0]" in hint.en
    assert diagnose.tensor_hint(torch.zeros(2, 2), got) == hint


def test_indices_in_another_order():
    hint = diagnose.reordered(torch.tensor([3, 0, 2]), torch.tensor([0, 2, 3]))
    assert hint.en == "the right indices, in another order: return them in the order the task asks for."
    assert diagnose.reordered(torch.tensor([3, 0]), torch.tensor([0, 2])) is None


def _item(**kw):
    from grader.rubric import Item, Output, Tolerance
    outputs = tuple((n, Output(Tolerance(), rows_sum_to_one=True)) for n in kw.pop("rows", ()))
    return Item(id="x", part="A", kind="function", name=kw.pop("name", "x"), points=1, title=Text.same("x"),
                outputs=outputs, **kw)


def test_swapped_outputs_of_a_tuple_are_named():
    h, c = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])
    check = CaseCheck("c", "public", True, False, Text.same("x"), expected=(h, c), got=(c, h))
    hint = diagnose.case_hint(_item(returns=("h", "c")), check)
    assert hint.en == "the returned values are in another order: you return (c, h), the order is (h, c). Each one is right; swap them."
    assert diagnose.swapped(("h", "c"), (h, c), (h, c)) is None
    assert diagnose.swapped(("h", "c"), (h, c), (c, c)) is None


def test_nested_parts_are_diagnosed_by_their_path():
    e = {"dx": E, "dw": torch.ones(2)}
    check = CaseCheck("c", "public", True, False, Text.same("x"), expected=e, got={"dx": E.T.contiguous(), "dw": torch.ones(2)})
    hint = diagnose.case_hint(_item(name="grads"), check)
    assert hint is not None and "transpose" in hint.en


def test_hw2_property_hints_live_in_its_reference_package():
    from helpers import ROOT
    from grader.expected import Reference
    from grader.rubric import load_rubric
    ref = Reference(load_rubric(ROOT / "rubrics" / "hw2.toml"))
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]])
    iou = ref.resolve("hints.box_iou")
    assert "[0, 1]" in iou((boxes, boxes), torch.tensor([[1.0, 1.5], [0.2, 1.0]]))["en"]
    assert "symmetric" in iou((boxes, boxes), torch.tensor([[1.0, 0.2], [0.1, 1.0]]))["en"]
    nms = ref.resolve("hints.nms")
    assert nms((boxes, torch.tensor([0.1, 0.9, 0.5]), 0.5), torch.tensor([2, 1]))["en"] == \
        "the returned indices are not in decreasing score."
    sdpa = ref.resolve("hints.scaled_dot_product_attention")
    w = torch.full((3, 3), 1 / 3)
    said = sdpa((w, w, w, torch.ones(3, 3, dtype=torch.bool).tril()), (w, w))
    assert "above the diagonal must be 0" in said["en"] and "[0, 1]" in said["en"]
    for item in ref.rubric.items:
        if item.reminder is not None:     # a reminder names no value
            assert item.reminder.zh and not any(ch.isdigit() and ch not in "01" for ch in item.reminder.en), item.id


def test_case_hint_uses_public_values_only():
    e = torch.softmax(torch.tensor([[1.0, 2.0], [0.5, 0.0]]), dim=-1)
    g = torch.softmax(torch.tensor([[1.0, 2.0], [0.5, 0.0]]), dim=0)
    item = _item(name="attention", rows=("attention",))
    public = CaseCheck("c", "public", True, False, Text.same("x"), expected=e, got=g)
    hidden = CaseCheck("h", "hidden-1", False, False, Text.same("x"))
    assert "softmax was taken over dim 0" in diagnose.case_hint(item, public).en
    assert diagnose.case_hint(item, hidden) is None
    # without the rubric's rows_sum_to_one, the rows are not the grader's business
    assert diagnose.case_hint(_item(name="attention"), public) is None


def test_space_in_a_name():
    err = ErrorInfo("SyntaxError", "invalid syntax", "", cell=2, line=10, source_line="W Q = torch.randn(4, 4)", caret=3)
    src = "\n" * 9 + "W Q = torch.randn(4, 4)\nW K = torch.randn(4, 4)\nW_V = torch.randn(4, 4)\n# a comment with two words\n"
    hint = diagnose.syntax_hint(err, src)
    assert hint.en.startswith("did you mean `W_Q`? names cannot contain spaces")
    assert "Lines 11 have the same slip (`W K`)" in hint.en
    assert "你是想写 `W_Q` 吗？变量名中不能有空格" in hint.zh
    later = ErrorInfo("NameError", "name 'W_Q' is not defined", "", cell=4, line=2, source_line="d = W_Q.shape[-1]")
    assert diagnose.root_cause(later, [(err, src), (later, "")]) is err
    assert "earlier error (SyntaxError, cell 2, line 10)" in diagnose.error_hint(later, "", [(err, src)]).en


def test_name_near_miss():
    err = ErrorInfo("NameError", "name 'atten' is not defined", "", cell=20, line=9, source_line="return attn @ V, atten")
    hint = diagnose.error_hint(err, "def f(Q, K, V):\n    attn = Q\n    return attn @ V, atten\n")
    assert hint.en == "`atten` is not defined: did you mean `attn`?"
