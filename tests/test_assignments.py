"""Contract tests over every assignment (issue 15): each rubric in rubrics/ (discovered, not listed)
passes `validate` (its solution scores full marks, its starter zero, every known mistake is caught),
and each bundled sample of hw1 and hw3 gets what its golden record says (tests/golden/<assignment>/
<sample>.json; hw2's samples have theirs in test_engine.py and test_feedback.py). Also: a batch
folder of assignment folders is graded per assignment, and one that mixes an assignment folder with
a loose student folder is refused.

Graders are expensive: one warm bwrap grader per rubric for the module (`graders`), which validate
grades in too."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from helpers import GOLDEN, ROOT, golden_diff, golden_record, needs_bwrap
from grader.rubric import load_rubric
from grader.validate import validate

RUBRICS = sorted((ROOT / "rubrics").glob("*.toml"))
SUBMISSIONS = ROOT / "submissions"
GOLDEN_ASSIGNMENTS = ("hw1", "hw3")
SAMPLES = [(a, p.name) for a in GOLDEN_ASSIGNMENTS for p in sorted((SUBMISSIONS / a).iterdir()) if p.is_dir()]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable

# What each sample must show, beyond matching its golden record: "correct", every auto-graded item
# passes with full points; "blank", the starter, zero with every item missing; else its known
# mistakes (item -> mistake id), each with its hint and credit, every other auto-graded item passing.
VERDICTS = {
    "hw1/000_correct_notebook": "correct",
    "hw1/001_loops_script": "correct",
    "hw1/002_three_mistakes": {"lstm_cell": "lstm-gate-order-ifog", "gru_cell": "gru-z-swapped",
                               # the unrolled LSTM reuses the wrong lstm_cell: the rubric's follow-on mistake
                               "rnn_forward": "forward-lstm-gate-order-ifog", "clip_grad_norm": "clip-per-tensor"},
    "hw1/003_blank_starter": "blank",
    "hw3/001_correct_notebook": "correct",
    "hw3/002_correct_loops_script": "correct",
    "hw3/003_three_mistakes": {"conv2d": "conv-flipped-kernel", "batch_norm": "bn-unbiased-var", "Y": "y-avg-pool"},
    "hw3/004_blank_starter": "blank",
}


@pytest.fixture(scope="module")
def graders():
    """rubric path -> its warm bwrap Grader, opened on first use (one per rubric for the module)
    and closed at the module's end."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    from grader.pipeline import Grader
    opened = {}

    def get(rubric):
        if rubric not in opened:
            opened[rubric] = Grader(rubric, sandbox="bwrap")
        return opened[rubric]
    yield get
    for g in opened.values():
        g.close()


@pytest.fixture(scope="module")
def sample_results(graders):
    """(assignment, sample) -> its result, each graded once, by its own assignment's grader."""
    done = {}

    def get(assignment, name):
        if (assignment, name) not in done:
            grader = graders(ROOT / "rubrics" / f"{assignment}.toml")
            done[assignment, name] = grader.grade(SUBMISSIONS / assignment / name)
        return done[assignment, name]
    return get


# --- every rubric: validate passes ------------------------------------------------------------------
@needs_bwrap
@pytest.mark.parametrize("rubric", RUBRICS, ids=lambda p: p.stem)
def test_validate_passes(rubric, graders):
    lines = []
    problems = validate(rubric, sandbox="bwrap", log=lines.append, worker=graders(rubric).worker)
    assert problems == []
    # each check ran and passed, the ones the contract names explicitly
    loaded = load_rubric(rubric)
    for step in ("cases and starter follow the declared signatures", "starter up to date", "known mistakes caught",
                 "the pack builds", "the solution scores full marks (grader and pack self-check)",
                 "each unmodified starter scores zero"):
        assert f"{step}: OK" in lines, lines
    if loaded.items_of("written"):
        assert "written questions found in the solution: OK" in lines
    if loaded.script and loaded.script.capture:
        assert "the solution's captured inputs are the canonical ones: OK" in lines
    mistakes = sum(len(i.mistakes) for i in loaded.items)
    assert lines[-1].startswith(f"checked {len(loaded.items)} items, ") and f", {mistakes} known mistakes, " in lines[-1]


# --- hw1 and hw3: each sample's golden record and verdicts -------------------------------------------
@needs_bwrap
@pytest.mark.parametrize("assignment,name", SAMPLES, ids=[f"{a}/{n}" for a, n in SAMPLES])
def test_sample_matches_its_golden_record(sample_results, golden, assignment, name):
    record = golden_record(sample_results(assignment, name))
    expected = golden.expected(f"{assignment}/{name}", record)
    assert record == expected, golden_diff(record, expected)


@needs_bwrap
@pytest.mark.parametrize("assignment,name", SAMPLES, ids=[f"{a}/{n}" for a, n in SAMPLES])
def test_sample_gets_its_expected_verdict(sample_results, assignment, name):
    result = sample_results(assignment, name)
    rubric = load_rubric(ROOT / "rubrics" / f"{assignment}.toml")
    auto = [i for i in result.items if rubric.item(i.id).kind != "written"]
    assert result.assignment == assignment and [i.id for i in result.items] == [i.id for i in rubric.items]
    verdict = VERDICTS.get(f"{assignment}/{name}")
    assert verdict is not None, f"{assignment}/{name}: say in VERDICTS what this sample must show"
    if verdict == "correct":
        assert [(i.id, i.status) for i in auto if i.status != "pass" or i.points != i.max_points] == []
    elif verdict == "blank":
        assert result.score == 0.0
        assert {i.status for i in result.items} == {"missing"}
    else:
        for i in auto:
            if i.id not in verdict:
                assert (i.id, i.status) == (i.id, "pass")
                continue
            mistake = next(m for m in rubric.item(i.id).mistakes if m.id == verdict[i.id])
            assert (i.id, i.status, i.mistake) == (i.id, "partial", mistake.id)
            assert i.hint == mistake.hint
            assert i.points == pytest.approx(mistake.credit * i.max_points)


@pytest.mark.parametrize("assignment", GOLDEN_ASSIGNMENTS)
def test_every_golden_record_is_of_a_bundled_sample(golden, assignment):
    """None left over from a sample that is gone (with --update-golden, a left-over one is deleted)."""
    names = {n for a, n in SAMPLES if a == assignment}
    stale = sorted(p for p in (GOLDEN / assignment).glob("*.json") if p.stem not in names)
    if golden.update:
        for p in stale:
            p.unlink()
        stale = []
    assert stale == [], f"golden records of no sample: {[p.name for p in stale]}"


# --- batch: one folder per assignment ----------------------------------------------------------------
def _batch(folder, out, cwd):
    return subprocess.run([PYTHON, str(ROOT / "grade.py"), "batch", str(folder), "--out", str(out), "--jobs", "1"],
                          cwd=cwd, capture_output=True, text=True, timeout=900)


@needs_bwrap
def test_batch_grades_each_assignment_folder_against_its_own_rubric(tmp_path):
    chosen = {"hw1": ("000_correct_notebook", "002_three_mistakes"), "hw2": ("002_correct_notebook", "006_blank_starter")}
    folder = tmp_path / "submissions"
    for assignment, names in chosen.items():
        for name in names:
            shutil.copytree(SUBMISSIONS / assignment / name, folder / assignment / name)
    out = tmp_path / "out"
    done = _batch(folder, out, cwd=tmp_path)        # no rubrics/ here: the checkout's are found
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["hw1", "hw2"]
    for assignment, names in chosen.items():
        assert f"{assignment}: 2 submissions: 2 graded" in done.stdout
        rubric = load_rubric(ROOT / "rubrics" / f"{assignment}.toml")
        for name in names:
            result = json.loads((out / assignment / "results" / f"{name}.json").read_text(encoding="utf-8"))
            assert result["assignment"] == assignment
            assert [i["id"] for i in result["items"]] == [i.id for i in rubric.items]
            golden = GOLDEN / (f"{assignment}/{name}.json" if assignment != "hw2" else f"{name}.json")
            assert result["score"] == json.loads(golden.read_text(encoding="utf-8"))["score"], (assignment, name)
        assert (out / assignment / "grades.csv").is_file() and (out / assignment / "summary.html").is_file()


def test_batch_refuses_a_folder_mixing_an_assignment_folder_and_a_student_folder(tmp_path):
    folder = tmp_path / "submissions"
    shutil.copytree(SUBMISSIONS / "hw1" / "000_correct_notebook", folder / "hw1" / "000_correct_notebook")
    shutil.copytree(SUBMISSIONS / "hw1" / "001_loops_script", folder / "alice")
    out = tmp_path / "out"
    done = _batch(folder, out, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{folder}: holds assignment folders (hw1) and other entries (alice)" in done.stderr
    assert f"put every submission inside its assignment's folder ({folder}/<assignment>/<student>/)" in done.stderr
    assert not out.exists()
