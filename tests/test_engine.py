"""The engine end to end on the bundled samples, under both sandbox kinds: what is tested here is
grading (the same under bwrap and without a sandbox), not confinement (test_security.py). Each test
that takes `engine_grader` or `engine_samples` runs once per kind."""
from __future__ import annotations

import json

import pytest

from helpers import RUBRIC, GOLDEN, PART_A, SAMPLE_NAMES, SAMPLES, golden_diff, golden_record, read_golden, statuses


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_matches_its_golden_record(engine_samples, golden, name):
    """Each sample's score, and each item's status, points, known mistake, message and hint in both
    languages, exactly as in tests/golden/<name>.json."""
    result = engine_samples[name]
    record = golden_record(result)
    expected = golden.expected(name, record)
    assert record == expected, golden_diff(record, expected)
    assert result.max_score == 40.0


def test_every_golden_record_is_of_a_bundled_sample(golden):
    """One golden record per sample: none left over from a sample that is gone (with
    --update-golden, a left-over record is deleted)."""
    stale = sorted(p for p in GOLDEN.glob("*.json") if p.stem not in SAMPLE_NAMES)
    if golden.update:
        for p in stale:
            p.unlink()
        stale = []
    assert stale == [], f"golden records of no sample: {[p.name for p in stale]}"


def test_seed_sheet_names_the_broken_line(engine_samples):
    result = engine_samples["000_be4a6993b089033a"]
    q = next(i for i in result.items if i.id == "Q")
    assert q.status == "error"
    assert "W Q = torch.randn(4, 4)" in q.message.en and "SyntaxError" in q.message.en
    first = next(c for c in result.run.cells if c.run == "public" and c.cell == 2)
    assert first.error.type == "SyntaxError" and first.error.line == 10 and first.error.caret == 3
    # the written answers were still found and kept for the instructor
    answers = {i.id: i.answer for i in result.items if i.id.startswith("written.")}
    assert answers["written.1.2"].startswith("在计算梯度时,进行梯度裁剪")
    assert answers["written.3.2"].startswith("最大改进")


def test_known_mistakes_named(engine_samples):
    result = engine_samples["005_detection_mistakes"]
    by_id = {i.id: i for i in result.items}
    assert by_id["box_iou"].mistake == "iou-plus-one"
    assert by_id["nms"].mistake == "nms-ge"
    assert by_id["roi_pool"].mistake == "roi-bankers-rounding"
    assert by_id["encode_boxes"].mistake == "encode-log-inverted"
    assert by_id["decode_boxes"].status == "pass"


def test_follow_through_and_limits(engine_samples):
    r8 = engine_samples["008_no_scale_script"]
    by_id = {i.id: i for i in r8.items}
    assert by_id["score"].mistake == "score-no-scale" and by_id["score"].status == "partial"
    assert by_id["attention"].mistake == "follows-upstream" and by_id["attention"].points == 0.75
    r7 = engine_samples["007_partly_broken"]
    # nms's reference takes milliseconds: its infinite loop is stopped after the derived 1 s, not a cell's 3 s
    assert r7.run.limit_hit.startswith("time limit of 1 s reached in nms()")
    assert 1.0 <= r7.run.seconds < 2.5
    assert {i.id: i.status for i in r7.items}["box_iou"] == "pass"      # graded after nms hung
    skipped = " ".join(t.en for t in r7.layout.skipped)
    assert "%matplotlib inline" in skipped and "!pip install tqdm" in skipped


def test_grading_twice_gives_the_same_result(engine_grader):
    from grader.report import to_json
    a = to_json(engine_grader.grade(SAMPLES / "004_attention_mistakes"), "en")
    b = to_json(engine_grader.grade(SAMPLES / "004_attention_mistakes"), "en")
    strip = lambda d: json.dumps({k: v for k, v in d.items() if k not in ("run", "environment")}, sort_keys=True)
    assert strip(a) == strip(b)


def _script(tmp_path, body: str, name="hw2.py"):
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def test_hard_coded_answer_fails_hidden_seeds(engine_grader, tmp_path):
    from reference.hw2 import part_a
    q = part_a.compute(part_a.canonical_inputs(0))["Q"].tolist()
    body = PART_A.replace("Q = X @ W_Q", f"Q = torch.tensor({q})")
    result = engine_grader.grade(_script(tmp_path, body))
    item = next(i for i in result.items if i.id == "Q")
    assert item.status == "fail"
    assert [c.passed for c in item.cases] == [True, False, False]


def test_reseeding_is_diagnosed_as_changed_inputs(engine_grader, tmp_path):
    body = PART_A.replace("W_Q = torch.randn(4, 4)", "torch.manual_seed(42)\nW_Q = torch.randn(4, 4)")
    item = next(i for i in engine_grader.grade(_script(tmp_path, body)).items if i.id == "Q")
    assert item.status == "partial" and item.mistake == "changed-inputs" and item.points == 0.5
    body = PART_A.replace("W_V = torch.randn(4, 4)", "W_V = torch.randn(4, 4)\nX = X * 2")
    item = next(i for i in engine_grader.grade(_script(tmp_path, body)).items if i.id == "Q")
    assert item.mistake == "changed-inputs" and item.points == 0.0 and "`X`" in item.hint.en


def test_later_cell_reusing_a_name_does_not_clobber_the_checkpoint(engine_grader, tmp_path):
    body = PART_A + "\n# %%\nQ = None  # reused later for something else\n"
    item = next(i for i in engine_grader.grade(_script(tmp_path, body)).items if i.id == "Q")
    assert item.status == "pass"


def test_without_a_sandbox_the_same_grades_and_it_says_so(none_samples):
    result = none_samples["004_attention_mistakes"]
    assert golden_record(result) == read_golden("004_attention_mistakes")
    assert result.run.sandbox == "none" and "not sandboxed" in result.run.notes[0]


def test_every_result_names_the_sandbox_it_ran_in(engine_samples, sandbox_kind):
    for name, result in engine_samples.items():
        assert result.run.sandbox == sandbox_kind, name
        assert any("not sandboxed" in n for n in result.run.notes) == (sandbox_kind == "none"), (name, result.run.notes)


def test_cli_exit_codes_and_json(tmp_path):
    from grader.cli import main
    out = tmp_path / "r.json"
    assert main(["grade", str(SAMPLES / "001_seed_repaired"), "--json", str(out), "--timeout", "3"]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["schema"] == 1 and data["score"] == 6.0 and data["max_score"] == 40.0
    assert [i["status"] for i in data["items"][:6]] == ["pass"] * 6 and data["run"]["sandbox"] == "bwrap"
    assert main(["grade", str(tmp_path / "nope.py"), "--rubric", str(RUBRIC)]) == 0   # a missing file is a result, not a crash
    assert main(["grade", str(tmp_path / "nope.py")]) == 2          # which assignment? never a silent default
    assert main(["grade", "x.py", "--rubric", str(tmp_path / "none.toml")]) == 2
    assert main(["frobnicate"]) == 2


def test_nbconvert_exported_script_with_ipython_calls(engine_grader, tmp_path):
    """A notebook exported with `jupyter nbconvert --to script`: `# In[ ]:` cells, magics turned
    into get_ipython() calls, and Jupyter's `display` used without an import."""
    body = ("#!/usr/bin/env python\n# coding: utf-8\n\n# In[1]:\n\n\nget_ipython().run_line_magic('matplotlib', 'inline')\n"
            + PART_A + "display(Q)\n\n\n# In[2]:\n\n\nget_ipython().system('pip install tqdm')\nprint('after')\n")
    result = engine_grader.grade(_script(tmp_path, body))
    assert statuses(result)["Q"] == "pass"
    code = [c for c in result.run.cells if c.run == "public"]
    assert [c.cell for c in code] == [2, 2, 3]          # cell 1 is the shebang and coding comment
    assert all(c.status == "ok" for c in code) and "tensor(" in code[1].stdout and "after" in code[2].stdout
    assert sum("get_ipython()" in t.en for t in result.layout.skipped) == 2


def test_follow_through_is_a_marked_partial_never_a_pass(engine_samples):
    item = next(i for i in engine_samples["008_no_scale_script"].items if i.id == "output")
    assert item.status == "partial" and item.points == 0.75 and item.mistake == "follows-upstream"
    assert item.message.en.startswith("follow-through: right from your own earlier values; against the reference, ")
    assert item.hint.en.startswith("follow-through: `output` is computed correctly from your own earlier values")


def test_function_whose_cell_failed_names_the_cause(engine_grader, tmp_path):
    body = ("# %%\nimport torch\n# %%\nimport torchvision\n"
            "def nms(boxes, scores, iou_threshold):\n    return torchvision.ops.nms(boxes, scores, iou_threshold)\n")
    item = next(i for i in engine_grader.grade(_script(tmp_path, body)).items if i.id == "nms")
    assert item.status == "error"
    assert item.message.en == ("`nms` was never defined: cell 2, line 1 raised ModuleNotFoundError: "
                               "`import torchvision` (No module named 'torchvision')")
    assert item.hint.en.startswith("`torchvision` is not available where your code is graded")


def test_passing_cases_carry_their_largest_error(engine_samples):
    """Single- and multi-output functions alike (sdpa returns (output, weights)): a passing case
    reports its largest absolute error, which is within tolerance."""
    r = engine_samples["003_correct_script"]
    for item_id in ("scaled_dot_product_attention", "box_iou"):
        item = next(i for i in r.items if i.id == item_id)
        assert item.status == "pass"
        errors = [c.max_abs for c in item.cases]
        assert all(e is not None and 0.0 <= e <= 1e-4 for e in errors), (item_id, errors)


def test_result_json_holds_values_of_failing_cases_only(engine_samples):
    """A passing case's values are the reference's within tolerance (the same for every student):
    the JSON keeps them out; a failing public case keeps both sides, as numbers."""
    from grader.report import to_json
    data = to_json(engine_samples["004_attention_mistakes"], "en")
    cases = [c for i in data["items"] for c in i["cases"]]
    passing = [c for c in cases if c["passed"]]
    failing = [c for c in cases if not c["passed"] and c["public"] and c["run"] == "public"]
    assert passing and failing
    assert all(c["expected"] is None and c["got"] is None for c in passing)
    assert all(c["expected"] is not None and c["got"] is not None for c in failing)
    first = failing[0]["expected"]
    first = first[0] if isinstance(first, list) else first
    assert set(first) == {"shape", "dtype", "values"} and first["dtype"] == "float32"


def test_cli_runs_torch_on_one_thread(tmp_path):
    """The trusted side's tensors are tiny: the CLI turns torch's thread pool off (on a loaded
    machine its barriers cost milliseconds per operation)."""
    import torch
    from grader.cli import main
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert main(["grade", str(tmp_path / "nope.py"), "--rubric", str(RUBRIC)]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_cases_checked_together_match_one_by_one():
    """compare.passing checks a function item's cases in one pass; every case it reports must get
    exactly the Match compare() gives it, and every case compare() passes on a float tensor is
    reported (mixed dtypes, multi-output tuples, one element out, NaN, shapes off included), and so
    is every integer or boolean tensor compared for equality (indices, masks)."""
    import torch
    from grader.compare import compare, passing
    from grader.model import Value
    from grader.rubric import Item, Text
    one = Item(id="f", part="B", kind="function", name="f", points=1, title=Text("f", "f"), returns=("out",))
    two = Item(id="g", part="B", kind="function", name="g", points=1, title=Text("g", "g"), returns=("out", "w"))
    anydt = Item(id="h", part="B", kind="function", name="h", points=1, title=Text("h", "h"), returns=("out",), dtype="any")
    mixed = Item(id="k", part="C", kind="function", name="k", points=1, title=Text("k", "k"), returns=("boxes", "keep"))
    gen = torch.Generator().manual_seed(0)
    e1, e2, e3 = (torch.randn(3, 4, generator=gen) for _ in range(3))
    t = lambda x: Value("tensor", tensor=x)
    nudged = e1.clone()
    nudged[1, 2] += 1e-3
    nan = e1.clone()
    nan[0, 0] = float("nan")
    cases = {
        one: [("exact", t(e1.clone()), e1), ("tiny", t(e1 + 1e-7), e1), ("f64", t(e1.double()), e1),
              ("f16", t(e2.half()), e2), ("nudged", t(nudged), e1), ("nan", t(nan), e1), ("shape", t(e1.T), e1),
              ("int", t(e1.long()), e1), ("one-tuple", Value("tuple", items=(t(e3 + 1e-6),)), e3),
              ("number", Value("number", number=1.0), e1), ("empty", t(torch.empty(0)), torch.empty(0))],
        two: [("both", Value("tuple", items=(t(e1 + 2e-6), t(e2))), (e1, e2)),
              ("second-off", Value("tuple", items=(t(e1), t(e2 + 1))), (e1, e2)),
              ("arity", Value("tuple", items=(t(e1),)), (e1, e2))],
        anydt: [("big-int", t(torch.tensor([16777217, 3])), torch.tensor([16777217.0, 3.0], dtype=torch.float64)),
                ("f32", t(e1.clone()), e1)],
        mixed: [("right", Value("tuple", items=(t(e1 + 1e-6), t(torch.tensor([2, 0])))), (e1, torch.tensor([2, 0]))),
                ("index-off", Value("tuple", items=(t(e1), t(torch.tensor([0, 2])))), (e1, torch.tensor([2, 0]))),
                ("int32", Value("tuple", items=(t(e1), t(torch.tensor([2, 0], dtype=torch.int32)))), (e1, torch.tensor([2, 0]))),
                ("masks", Value("tuple", items=(t(torch.tensor([True, False])), t(torch.tensor([1])))),
                 (torch.tensor([True, False]), torch.tensor([1]))),
                ("mask-off", Value("tuple", items=(t(torch.tensor([True, True])), t(torch.tensor([1])))),
                 (torch.tensor([True, False]), torch.tensor([1])))],
    }
    for item, pairs in cases.items():
        fast = passing(pairs, item)
        slow = {cid: compare(got, exp, item) for cid, got, exp in pairs}
        assert fast == {cid: slow[cid] for cid in fast}
        assert set(fast) == {cid for cid, m in slow.items() if m.passed and cid != "empty"}, (set(fast), slow)
    assert set(passing(cases[one], one)) == {"exact", "tiny", "f64", "one-tuple"}      # half precision is not within 1e-4
    assert set(passing(cases[anydt], anydt)) == {"big-int", "f32"}
    assert set(passing(cases[mixed], mixed)) == {"right", "int32", "masks"}     # (the default dtype rule: any integer)
