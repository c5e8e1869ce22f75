"""Time limits that follow the work, through a real sandbox: an infinite loop in a function whose
reference takes milliseconds is stopped after the derived limit; a cell that spins out under the
public seed is not run again under the hidden seeds; and a submission queued behind another one's
infinite loop is not charged for the wait."""
from __future__ import annotations

import sqlite3

from grader.batch import run_batch
from helpers import RUBRIC, SAMPLES, needs_bwrap

SCRIPT = (SAMPLES / "003_correct_script" / "hw2.py").read_text(encoding="utf-8")
NMS_LOOP = SCRIPT.replace("def nms(", "def nms_unused(") + "\ndef nms(boxes, scores, t):\n    while True:\n        pass\n"
CELL_LOOP = "x = 0\nwhile True:\n    x += 1\n" + SCRIPT


@needs_bwrap
def test_an_infinite_loop_in_a_fast_function_costs_a_second_not_a_cell(bwrap_grader, tmp_path):
    path = tmp_path / "hw2.py"
    path.write_text(NMS_LOOP, encoding="utf-8")
    result = bwrap_grader.grade(path)
    nms = next(i for i in result.items if i.id == "nms")
    assert nms.status == "error" and "time limit of 1 s reached" in nms.message.en
    assert result.run.limit_hit == "time limit of 1 s reached in nms()"
    # the 1 s limit plus the rest of the run, far from the rubric's 10 s cell limit (margin for a loaded machine)
    assert 1.0 <= result.run.seconds < 5
    assert {i.id: i.status for i in result.items}["roi_pool"] == "pass"     # graded after the loop


@needs_bwrap
def test_a_cell_that_spins_out_is_not_run_again_under_the_hidden_seeds(tmp_path):
    from grader.pipeline import Grader
    path = tmp_path / "hw2.py"
    path.write_text(CELL_LOOP, encoding="utf-8")
    with Grader(RUBRIC, sandbox="bwrap", timeout=2) as g:
        result = g.grade(path)
    first = [c for c in result.run.cells if c.cell == 1]
    assert [(c.run, c.status) for c in first] == [("public", "limit"), ("hidden-1", "skipped"), ("hidden-2", "skipped")]
    assert first[1].note == "not run: this cell reached its time limit under the first seed"
    # once the limit (2 s), not once per seed (3 x 2 s); the margin is for a loaded machine
    assert result.run.seconds < 3 * 2


@needs_bwrap
def test_a_submission_queued_behind_an_infinite_loop_is_not_charged_for_the_wait(tmp_path):
    subs = tmp_path / "subs"
    for name, body in (("a_loop", CELL_LOOP), ("b_right", SCRIPT), ("c_right", SCRIPT + "\n# another\n")):
        (subs / name).mkdir(parents=True)
        (subs / name / "hw2.py").write_text(body, encoding="utf-8")
    out = tmp_path / "out"
    run_batch(subs, RUBRIC, out, jobs=1, progress=False, timeout=3)     # one sandbox, two threads
    with sqlite3.connect(out / "gradebook.sqlite") as db:
        seconds = dict(db.execute("SELECT student, seconds FROM runs"))
    assert seconds["a_loop"] >= 3.0
    # they waited for the one sandbox while the loop spun; their own time is a normal submission's
    assert seconds["b_right"] < 1.0 and seconds["c_right"] < 1.0, seconds
