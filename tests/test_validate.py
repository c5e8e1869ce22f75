"""`grade.py validate`: the real hw2 assignment, and a broken copy of it (stale starter, a wrong
solution, a "mistake" that is the reference itself), graded for real in the sandbox; and what an
author gets wrong (issue 15), one thing broken per test in a copy of hw1: a written id that matches
no heading, `returns` naming another number of outputs than the reference returns, captured inputs
that are not the canonical ones (an earlier draw, a reseed, fixed data), and the summary line."""
from __future__ import annotations

import shutil

import pytest

from helpers import RUBRIC, ROOT, needs_bwrap
from grader.cli import main
from grader.expected import Reference
from grader.rubric import load_rubric
from grader.validate import grading_problems, mistake_problems, starter_problems, validate


@pytest.fixture(scope="module")
def hw2():
    rubric = load_rubric(RUBRIC)
    return rubric, Reference(rubric)


def test_real_rubric_starter_is_the_released_solution(hw2):
    rubric, _ = hw2
    assert starter_problems(rubric, rubric.reference / "solution.ipynb") == []


@needs_bwrap
def test_real_rubric_solution_full_marks_starter_zero_pack_builds(hw2):
    rubric, ref = hw2
    assert grading_problems(rubric, ref, rubric.reference / "solution.ipynb", "bwrap") == []


def test_real_rubric_every_known_mistake_is_caught_with_its_hint(hw2):
    """Including mistakes whose values coincide with an earlier mistake's on some case
    (causal-inverted and causal-no-diagonal agree for n = 1): the scorer looks across cases."""
    rubric, ref = hw2
    assert mistake_problems(rubric, ref) == []


@pytest.fixture()
def broken(tmp_path):
    """A copy of hw2 with three faults validate must each report."""
    ref = tmp_path / "ref"
    shutil.copytree(ROOT / "reference" / "hw2", ref, ignore=shutil.ignore_patterns("__pycache__"))
    # 1. the committed starter was edited by hand, so it is no longer the released solution
    starter = ref / "starter.ipynb"
    starter.write_text(starter.read_text(encoding="utf-8").replace("Q = ...", "Q = X @ W_Q"), encoding="utf-8")
    # 2. the solution's causal mask is wrong (upper instead of lower triangle)
    sol = ref / "solution.ipynb"
    sol.write_text(sol.read_text(encoding="utf-8").replace("torch.tril(", "torch.triu("), encoding="utf-8")
    # 3. a "known mistake" that is the reference itself can never be told apart
    text = RUBRIC.read_text(encoding="utf-8").replace("../reference/hw2", "ref")
    text = text.replace('  [[items.mistakes]]\n  id = "nms-ge"', '  [[items.mistakes]]\n  id = "same-as-reference"\n'
                        '  function = "nms"\n  credit = 0.5\n  hint = "never shown"\n  [[items.mistakes]]\n  id = "nms-ge"')
    rubric = tmp_path / "hw2.toml"
    rubric.write_text(text, encoding="utf-8")
    return rubric


@needs_bwrap
def test_broken_rubric_exits_1_with_a_list_of_what_failed(broken, capsys):
    assert main(["validate", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "starter.ipynb is not what `release` makes of solution.ipynb" in err
    assert "starter.py" not in err.split("is not what")[0]          # the .py is still up to date
    assert "mistake 'same-as-reference' (nms) gives the reference's values" in err
    assert "the solution does not score full marks on causal_mask" in err
    assert "the solution (pack self-check) does not score full marks on causal_mask" in err
    assert "scores points on Q" in err                               # the hand-edited starter fills Q


def test_unloadable_rubric_is_one_problem(tmp_path):
    assert validate(tmp_path / "nope.toml") == [f"{tmp_path / 'nope.toml'}: cannot be read (No such file or directory); "
                                                "pass --rubric with the path of a rubric .toml"]
    assert main(["validate", str(tmp_path / "nope.toml")]) == 1


# --- what an author gets wrong (issue 15): a copy of hw1, one thing broken per test -----------------
@pytest.fixture()
def hw1_copy(tmp_path):
    """rubrics/hw1.toml and reference/hw1 copied into tmp_path with the same layout, so the rubric's
    relative paths (`../reference/hw1`) hold unchanged; returns the rubric's path."""
    shutil.copytree(ROOT / "reference" / "hw1", tmp_path / "reference" / "hw1",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "rubrics").mkdir()
    shutil.copyfile(ROOT / "rubrics" / "hw1.toml", tmp_path / "rubrics" / "hw1.toml")
    return tmp_path / "rubrics" / "hw1.toml"


def _edit(path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def _edit_solution(rubric_path, edit) -> None:
    """edit(cells) changes the copy's solution notebook; the starter is then released from it again,
    so only the intended check can fail."""
    import json

    from grader.release import release
    ref = rubric_path.parent.parent / "reference" / "hw1"
    nb = json.loads((ref / "solution.ipynb").read_text(encoding="utf-8"))
    edit(nb["cells"])
    (ref / "solution.ipynb").write_text(json.dumps(nb, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    release(ref / "solution.ipynb", ref / "starter.ipynb", ref / "starter.py")


def _first_code_cell(cells) -> int:
    return next(k for k, c in enumerate(cells) if c["cell_type"] == "code")


@pytest.fixture(scope="module")
def worker():
    """One warm bwrap worker for this module's sandboxed checks (a worker runs whatever job it is sent)."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    from grader.sandbox import Worker
    w = Worker("bwrap")
    yield w
    w.close()


def _captures(rubric_path, worker) -> list[str]:
    from grader.validate import grade_all
    from grader.validate_solution import capture_problems
    rubric = load_rubric(rubric_path)
    ref = Reference(rubric)
    return capture_problems(rubric, ref, grade_all(rubric, ref, rubric.reference / "solution.ipynb", "bwrap", worker).solution)


# 1. written ids against the solution's headings
def test_a_written_id_that_matches_no_heading_is_named_with_the_headings(hw1_copy):
    from grader.validate_solution import written_problems
    _edit(hw1_copy, 'id = "written.1.3"', 'id = "written.3.1"')
    rubric = load_rubric(hw1_copy)
    assert written_problems(rubric, rubric.reference / "solution.ipynb") == [
        f"{rubric.path}: written.3.1 is not found in solution.ipynb: its headings are 1.1, 1.2, 1.3; every student "
        "would get \"no answer found\". Fix: rename the item to the question it grades (no written item names 1.3), "
        "or number the solution's heading `### 3.1` and release the starter again"]


def test_a_written_id_that_is_not_numbered_is_named(hw1_copy):
    from grader.validate_solution import written_problems
    _edit(hw1_copy, 'id = "written.1.2"', 'id = "written.clipping"')
    rubric = load_rubric(hw1_copy)
    [problem] = written_problems(rubric, rubric.reference / "solution.ipynb")
    assert problem.startswith(f"{rubric.path}: written.clipping is not found in solution.ipynb: its headings are 1.1, 1.2, 1.3;")
    assert "a written item's id is `<prefix>.<section>.<question>`" in problem


@needs_bwrap
def test_validate_command_fails_on_a_written_id_it_used_to_pass(hw1_copy, capsys):
    """Before issue 15 this printed OK, and every student then got "no answer found"."""
    _edit(hw1_copy, 'id = "written.1.3"', 'id = "written.3.1"')
    assert main(["validate", str(hw1_copy)]) == 1
    out, err = capsys.readouterr()
    assert "written questions found in the solution: 1 problem(s)" in out
    assert f"{hw1_copy.resolve()}: written.3.1 is not found in solution.ipynb: its headings are 1.1, 1.2, 1.3;" in err
    assert f"{hw1_copy}: 1 problem(s):" in err


# 2. returns against what the reference returns
def test_returns_naming_more_outputs_than_the_reference_is_one_problem_naming_the_cause(hw1_copy):
    from grader.validate import contract_problems
    _edit(hw1_copy, '    { name = "c", kind = "tensor", dtype = "floating", shape = ["B", "H"] },\n  ]',
          '    { name = "c", kind = "tensor", dtype = "floating", shape = ["B", "H"] },\n'
          '    { name = "cell_gates", kind = "tensor" },\n  ]')
    rubric = load_rubric(hw1_copy)
    assert contract_problems(rubric, Reference(rubric)) == [      # not one per case (17 before)
        f"{rubric.path}: item 'lstm_cell': returns names 3 outputs (h, c, cell_gates) but the reference 'lstm_cell' "
        "returns a tuple of 2 (case 'public:zero-weights'): name exactly its 2 outputs in [items.signature] returns; "
        "every student's answer is compared output by output against these names"]


def test_returns_naming_two_outputs_of_a_reference_returning_one_value(hw1_copy):
    from grader.validate import contract_problems
    _edit(hw1_copy, '    { name = "h_next", kind = "tensor", dtype = "floating", shape = ["B", "H"] },\n  ]\n'
          '  [[items.mistakes]]\n  id = "rnn-sigmoid"',
          '    { name = "h_next", kind = "tensor", dtype = "floating", shape = ["B", "H"] },\n'
          '    { name = "h_pre", kind = "tensor", dtype = "floating", shape = ["B", "H"] },\n  ]\n'
          '  [[items.mistakes]]\n  id = "rnn-sigmoid"')
    rubric = load_rubric(hw1_copy)
    [problem] = contract_problems(rubric, Reference(rubric))
    assert problem.startswith(f"{rubric.path}: item 'rnn_cell': returns names 2 outputs (h_next, h_pre) but the "
                              "reference 'rnn_cell' returns one value, a float32 tensor of shape")
    assert "declare one output (one name)" in problem


# 3. captured inputs against the canonical inputs
@needs_bwrap
def test_an_earlier_cell_drawing_random_numbers_is_named_with_the_draw_order_rule(hw1_copy, worker):
    def extra_draw(cells):
        cells.insert(_first_code_cell(cells), {"cell_type": "code", "execution_count": None, "metadata": {},
                                               "outputs": [], "source": "import torch\nnoise = torch.randn(3)\n"})
    _edit_solution(hw1_copy, extra_draw)
    [problem] = _captures(hw1_copy, worker)
    solution = hw1_copy.parent.parent / "reference" / "hw1" / "solution.ipynb"
    assert problem.startswith(f"{solution}: the captured `W_xh`, `W_hh`, `b_h` differ from part_a.canonical_inputs(seed) "
                              "under seeds 0, 2024, 31337 (`W_xh`, seed 0: largest difference ")
    assert "an earlier cell draws random numbers before the given draws (cell 10, line 2: `noise = torch.randn(3)`). " \
           "The draw-order rule:" in problem


@needs_bwrap
def test_a_solution_that_reseeds_is_named(hw1_copy, worker):
    def reseed(cells):
        first = cells[_first_code_cell(cells)]
        first["source"] = "import torch\ntorch.manual_seed(0)\n" + "".join(first["source"])
    _edit_solution(hw1_copy, reseed)
    [problem] = _captures(hw1_copy, worker)
    # seed 0 is the public seed: only the hidden seeds show it
    assert "the captured `W_xh`, `W_hh`, `b_h` differ from part_a.canonical_inputs(seed) under seeds 2024, 31337" in problem
    assert "the notebook reseeds (cell 10, line 2: `torch.manual_seed(0)`): the grader seeds torch, random and numpy" in problem


@needs_bwrap
def test_fixed_data_that_differs_and_a_capture_canonical_inputs_lacks_are_named(hw1_copy, worker):
    part_a = hw1_copy.parent.parent / "reference" / "hw1" / "part_a.py"
    _edit(part_a, "X = torch.tensor([[1.0, 0.0, 1.0, 0.0],", "X = torch.tensor([[1.0, 0.5, 1.0, 0.0],")
    _edit(hw1_copy, 'capture = ["X", "h0", "W_xh", "W_hh", "b_h"]', 'capture = ["X", "h0", "W_xh", "W_hh", "b_h", "c0"]')
    missing, fixed = _captures(hw1_copy, worker)
    assert missing == (f"{hw1_copy.resolve()}: [script] capture names `c0`, but part_a.canonical_inputs(0) returns no "
                       "`c0` (it returns X, h0, W_xh, W_hh, b_h): return it from part_a.canonical_inputs, or drop it from capture")
    assert "the captured `X` differs from part_a.canonical_inputs(seed) under seeds 0, 2024, 31337 (`X`, seed 0: " \
           "largest difference 0.5): `X` is fixed data" in fixed


@needs_bwrap
def test_validate_names_the_cause_beside_the_partial_score(hw1_copy, worker):
    """What validate said before issue 15 was only "does not score full marks … partial, 0.5/1"."""
    def extra_draw(cells):
        cells.insert(_first_code_cell(cells), {"cell_type": "code", "execution_count": None, "metadata": {},
                                               "outputs": [], "source": "import torch\nnoise = torch.randn(3)\n"})
    _edit_solution(hw1_copy, extra_draw)
    lines = []
    problems = validate(hw1_copy, sandbox="bwrap", log=lines.append, worker=worker)
    assert any("the solution does not score full marks on XW (partial, 0.5/1" in p for p in problems)
    assert any("The draw-order rule:" in p for p in problems)
    assert "the solution's captured inputs are the canonical ones: 1 problem(s)" in lines


# 4. the summary line
@needs_bwrap
def test_validate_command_ends_with_what_it_checked(hw1_copy, capsys):
    assert main(["validate", str(hw1_copy)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rubric = load_rubric(hw1_copy)
    ref = Reference(rubric)
    cases = sum(len(ref.cases(i)) for i in rubric.items_of("function"))
    mistakes = sum(len(i.mistakes) for i in rubric.items)
    assert lines[-2:] == [f"checked 11 items, {cases} cases under 3 seeds, {mistakes} known mistakes, "
                          "3 written questions, 5 captured inputs, 2 starters", f"{hw1_copy}: OK"]


def test_a_reference_that_raises_is_reported_not_a_crash(hw1_copy):
    """The contract check names the case; the known-mistake check cannot run and says why, once per mistake."""
    cells = hw1_copy.parent.parent / "reference" / "hw1" / "cells.py"
    _edit(cells, "    return torch.tanh(x @ W_xh.T + h @ W_hh.T + b_h)", "    raise ValueError('unfinished reference')")
    rubric = load_rubric(hw1_copy)
    ref = Reference(rubric)
    from grader.validate import contract_problems
    contract = [p for p in contract_problems(rubric, ref) if "'rnn_cell'" in p]
    assert contract and all("the reference 'rnn_cell' raises ValueError: unfinished reference" in p for p in contract)
    mistakes = [p for p in mistake_problems(rubric, ref) if "'rnn_cell'" in p]
    n = len(next(i for i in rubric.items if i.id == "rnn_cell").mistakes)
    assert len(mistakes) == n >= 1
    assert all("cannot be checked: the reference raised ValueError: unfinished reference; fix the reference first" in p
               for p in mistakes)
