"""The stored result is the record (issue 14, section 1): `grade.py redraw` draws every page, the
summary and the exports again from the gradebook alone, byte for byte, with no sandbox, no student
files and no reference package; a manual score redraws only its student's page, running nothing."""
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys

import pytest

from helpers import ROOT, RUBRIC, SAMPLES, needs_bwrap

pytestmark = needs_bwrap
STUDENTS = ["001_seed_repaired", "004_attention_mistakes", "005_detection_mistakes"]


@pytest.fixture
def graded(tmp_path):
    from grader.batch import run_batch
    subs = tmp_path / "subs"
    for name in STUDENTS:
        shutil.copytree(SAMPLES / name, subs / name)
    out = tmp_path / "out"
    run_batch(subs, RUBRIC, out, jobs=2, sandbox="bwrap", lang="en", progress=False, timeout=3)
    return subs, out


def _files(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.suffix in (".html", ".csv", ".json")}


REDRAW = """
import sys
from grader.cli import main
code = main(["redraw", {out!r}])
print("exit", code, "sandbox imported", any(m.startswith("grader.sandbox") for m in sys.modules),
      "reference imported", any(m.startswith("_grader_reference_") for m in sys.modules))
"""


def test_redraw_gives_the_batchs_pages_and_exports_byte_for_byte_from_the_gradebook_alone(graded, tmp_path):
    subs, out = graded
    before = _files(out)
    assert len([k for k in before if k.startswith("feedback/")]) == len(STUDENTS)
    shutil.rmtree(subs)                                 # no student files...
    for k in before:
        if not k.endswith("summary.html"):
            (out / k).unlink()                          # ...and nothing drawn left to copy from
    run = subprocess.run([sys.executable, "-c", REDRAW.format(out=str(out))], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, env={"PATH": "/nonexistent"})      # no bwrap on the PATH either
    assert run.returncode == 0, run.stderr[-2000:]
    assert "exit 0 sandbox imported False reference imported False" in run.stdout, run.stdout
    after = _files(out)
    assert sorted(after) == sorted(before)
    assert [k for k in before if after[k] != before[k]] == []


def test_a_manual_score_redraws_only_its_students_page_and_runs_nothing(graded):
    from grader.review import review
    _, out = graded
    before = _files(out)
    runs = sqlite3.connect(out / "gradebook.sqlite").execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    outcome = review(out, student="004_attention_mistakes", item="written.2.2", points=1.5, comment="good")
    assert outcome.stale_pages == ()                     # drawn at once, not left for the next batch
    after = _files(out)
    changed = sorted(k for k in before if after[k] != before[k])
    assert changed == ["feedback/004_attention_mistakes.html", "grades.csv",
                       "gradescope/004_attention_mistakes/results.json", "results/004_attention_mistakes.json",
                       "summary.html"]
    page = after["feedback/004_attention_mistakes.html"].decode()
    item = page.split('id="item-written.2.2"')[1].split("</article>")[0]
    assert '<span class="badge s-partial">partial</span> <span class="pts">1.5 / 2</span>' in item
    assert "Instructor&#39;s score 1.5: good" in item and "awaiting" not in item     # the TA's comment, on the page
    stored = json.loads(after["results/004_attention_mistakes.json"])
    assert stored["score"] == 19.5 + 1.5
    assert sqlite3.connect(out / "gradebook.sqlite").execute("SELECT COUNT(*) FROM runs").fetchone()[0] == runs


def test_a_record_builds_only_the_models_own_types():
    from grader.record import RecordError, load
    for bad in (b'{"record": 1, "fields": {}, "result": ["os.system", "echo"]}',
                b'{"record": 1, "fields": {}, "result": ["subprocess.Popen"]}', b'{"record": 2, "result": null}'):
        with pytest.raises(RecordError):
            load(bad, b"")


def test_a_students_value_equal_to_the_references_is_recorded_as_a_reference_and_read_back_exactly():
    import torch
    from grader.model import CaseCheck, Text
    from grader.record import dump, load, shared_keys
    expected = torch.tensor([[0.25, 0.75], [1.0, -0.0]])
    close = expected.clone()
    close[1, 1] = 0.0                  # +0.0 where the reference has -0.0: equal by value, not by bits
    shown = {"case/x/public/expected": expected}
    cases = (CaseCheck("a", "public", True, True, Text.same("ok"), expected=expected, got=expected.clone()),
             CaseCheck("b", "public", True, True, Text.same("ok"), expected=expected, got=close))
    body, _ = dump(cases, shared=shared_keys(shown))
    text = body.decode()
    assert text.count('"$r":"case/x/public/expected"') == 3 and text.count('"$b"') == 1, text
    back = load(body, b"", shown)
    assert torch.equal(back[0].got, expected) and torch.equal(back[1].got, close)
    assert str(back[1].got[1, 1].item()) == "0.0" and str(back[0].got[1, 1].item()) == "-0.0"
