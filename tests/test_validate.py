"""`grade.py validate`: the real hw2 assignment, and a broken copy of it (stale starter, a wrong
solution, a "mistake" that is the reference itself), graded for real in the sandbox."""
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
