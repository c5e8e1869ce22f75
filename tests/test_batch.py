"""`batch` end to end: real bwrap sandbox, real SQLite file, real output folder.

007_partly_broken is left out: its infinite loop costs ~10 s and teaches the batch nothing new.
"""
from __future__ import annotations

import csv
import json
import re
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from helpers import ROOT, RUBRIC, SAMPLE_NAMES, SAMPLES, needs_bwrap, read_golden

pytestmark = needs_bwrap

# What `grade` gives each sample (its golden record, tests/golden/<sample>.json, which test_engine
# checks `grade` against): the batch must give exactly this.
EXPECTED = {name: read_golden(name)["score"] for name in SAMPLE_NAMES if name != "007_partly_broken"}


def copy_samples(dest, names):
    dest.mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copytree(SAMPLES / n, dest / n)
    return dest


def batch(subs, out, **kw):
    from grader.batch import run_batch
    args = dict(jobs=2, force=False, dask_address=None, sandbox="bwrap", lang="en", progress=False, timeout=3)
    args.update(kw)
    return run_batch(subs, RUBRIC, out, **args)


def csv_totals(out):
    with open(out / "grades.csv", encoding="utf-8") as f:
        return {r["student"]: float(r["total"]) for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    subs = copy_samples(tmp_path_factory.mktemp("subs"), EXPECTED)
    out = tmp_path_factory.mktemp("out")
    summary = batch(subs, out)
    return subs, out, summary


def test_batch_gives_exact_grades_in_csv_and_sqlite(graded):
    subs, out, summary = graded
    assert summary.graded == len(EXPECTED) and not summary.errors
    assert csv_totals(out) == EXPECTED
    db = sqlite3.connect(out / "gradebook.sqlite")
    rows = dict(db.execute("SELECT student, score FROM runs"))
    assert rows == EXPECTED
    with open(out / "grades.csv", encoding="utf-8") as f:
        row = next(r for r in csv.DictReader(f) if r["student"] == "004_attention_mistakes")
    assert float(row["attention"]) == 0.25 and float(row["box_iou"]) == 2.0
    for s in EXPECTED:
        result = json.loads((out / "results" / f"{s}.json").read_text(encoding="utf-8"))
        assert result["schema"] == 1 and result["score"] == EXPECTED[s]
    page = (out / "summary.html").read_text(encoding="utf-8")
    for needle in ("Score histogram", "Per-item pass rate", "softmax-dim0", "Similar submissions",
                   "004_attention_mistakes"):
        assert needle in page
    # written answers are counted as handed in (five of these eight samples answer 1.2), not as passed
    assert re.search(r"<td>written\.1\.2</td>.*?<td class=\"num\">(\d+)/(\d+)</td><td>answered; for review</td>",
                     page, re.S).groups() == ("5", str(len(EXPECTED)))


def test_two_threads_share_one_sandbox(tmp_path):
    """jobs=1: one sandbox, two grader threads taking turns on it; every grade is still exact."""
    names = ["002_correct_notebook", "004_attention_mistakes", "005_detection_mistakes", "006_blank_starter"]
    out = tmp_path / "out"
    summary = batch(copy_samples(tmp_path / "subs", names), out, jobs=1)
    assert summary.graded == 4 and not summary.errors
    assert csv_totals(out) == {n: EXPECTED[n] for n in names}


def test_a_processes_grader_threads_fork_their_workers_from_one_zygote():
    """A Dask worker's (or a process pool's) threads each keep a warm Grader with a slot of its
    own, but all their workers come from one sandbox zygote: one torch import, not one a thread."""
    import threading
    from grader import executors as b
    from grader.batch import make_config
    from grader.rubric import load_rubric
    cfg = make_config(load_rubric(RUBRIC), "bwrap", 3, "en")
    sample = next((SAMPLES / "003_correct_script").iterdir())
    graders, scores = [], []

    def work():
        g = b.cached_grader(cfg)
        graders.append(g)
        scores.append(g.grade(sample).score)

    threads = [threading.Thread(target=work) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        one, two = graders
        assert one.worker.slot != two.worker.slot and one.worker.sandbox is two.worker.sandbox
        zygote = one.worker.sandbox
        assert zygote.worker_pid(one.worker.slot) and zygote.worker_pid(two.worker.slot)
        assert scores == [EXPECTED["003_correct_script"]] * 2
    finally:
        assert b.close_graders() == 2
    assert zygote.proc is None          # closed with the last of them


def test_the_sandbox_dies_with_the_process_that_started_it(tmp_path):
    """kill -9 of the grader leaves nothing running: the zygote sees its control socket close and
    exits, and its workers (and their jobs) go with it. Started from a thread that has ended by
    then, as a Dask worker's zygote may be."""
    code = textwrap.dedent("""
        import threading, time
        from grader.sandbox import Worker
        w = Worker("bwrap", slot=0)
        t = threading.Thread(target=w.start)
        t.start(); t.join()
        print(w.sandbox.proc.pid, w.sandbox.worker_pid(0), flush=True)
        time.sleep(60)
        """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        sandbox, worker = (int(p) for p in proc.stdout.readline().split())
        assert os.path.exists(f"/proc/{worker}"), "the worker outlived the thread that started it"
    finally:
        proc.kill()
        proc.wait()
    def running(pid):      # a zombie nobody reaped yet (its parent died) runs nothing
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    for _ in range(100):
        if not running(sandbox) and not running(worker):
            break
        time.sleep(0.05)
    assert not running(worker) and not running(sandbox)


def dead(worker, seconds: float = 10.0) -> None:
    """Wait until a killed worker has exited (its answer pipe at end-of-file): a job sent before
    that would be the job the worker died under, not one sent after its death."""
    import select
    assert select.select([worker._answers], [], [], seconds)[0], "the worker did not die"


def test_pool_restarts_a_worker_that_died(tmp_path):
    """A worker of the pool killed between two submissions (OOM killer, an admin's kill) is
    forked again for the next one, which is graded as if nothing happened; the other slot's worker
    is not touched. A zygote that died (and took its workers with it) is started again."""
    from grader.executors import claim_slot
    from grader.pipeline import Grader
    from grader.sandbox import WorkerPool
    sample = next((SAMPLES / "003_correct_script").iterdir())
    (a, fa), (b, fb) = claim_slot(), claim_slot()
    pool = WorkerPool("bwrap", [a, b])
    try:
        g = Grader(RUBRIC, timeout=3, worker=pool)
        g.warm()
        assert g.grade(sample).score == EXPECTED["003_correct_script"]
        first, other = pool.sandbox.worker_pid(a), pool.sandbox.worker_pid(b)
        assert first and other and first != other
        os.kill(first, signal.SIGKILL)
        dead(pool.workers[0])
        for _ in range(3):              # whichever worker each grade borrows
            assert g.grade(sample).score == EXPECTED["003_correct_script"]
        assert pool.sandbox.worker_pid(a) not in (None, first)
        assert pool.sandbox.worker_pid(b) == other
        zygote = pool.sandbox.proc.pid
        def parent(pid):
            with open(f"/proc/{pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])

        os.kill(parent(parent(pool.sandbox.worker_pid(b))), signal.SIGKILL)     # worker < keeper < zygote
        for w in pool.workers:
            dead(w)
        for _ in range(3):
            assert g.grade(sample).score == EXPECTED["003_correct_script"]
        assert pool.sandbox.proc.pid != zygote
        g.close()                        # a Grader on a shared pool leaves the pool running
        assert pool.sandbox.proc.poll() is None and pool.started
    finally:
        pool.close()
        os.close(fa)
        os.close(fb)


def test_rerun_grades_nothing(graded):
    subs, out, _ = graded
    before = sqlite3.connect(out / "gradebook.sqlite").execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    summary = batch(subs, out)
    assert summary.graded == 0 and summary.skipped == len(EXPECTED)
    after = sqlite3.connect(out / "gradebook.sqlite").execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    assert after == before
    assert csv_totals(out) == EXPECTED


def test_a_rerun_with_nothing_to_grade_imports_no_torch(graded):
    """Nothing to grade, no page to redraw: the summary and the exports come from the gradebook,
    and importing torch would be most of the rerun's time (1.4 s of 2 s, measured)."""
    subs, out, _ = graded
    code = ("import sys; from grader.batch import run_batch; "
            "s = run_batch(sys.argv[1], sys.argv[2], sys.argv[3], jobs=2, progress=False); "
            "print(s.graded, s.skipped, 'torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code, str(subs), str(RUBRIC), str(out)], capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert run.stdout.split() == ["0", str(len(EXPECTED)), "False"], run.stderr[-2000:]


def test_changed_submission_is_regraded(tmp_path):
    subs = copy_samples(tmp_path / "subs", ["001_seed_repaired", "006_blank_starter"])
    out = tmp_path / "out"
    batch(subs, out, jobs=1)
    shutil.rmtree(subs / "006_blank_starter")
    shutil.copytree(SAMPLES / "002_correct_notebook", subs / "006_blank_starter")
    summary = batch(subs, out, jobs=1)
    assert summary.graded == 1
    assert csv_totals(out)["006_blank_starter"] == 25.0
    from grader.gradebook import Gradebook
    with Gradebook(out / "gradebook.sqlite") as book:       # history kept, latest wins
        assert [r.score for r in book.history("006_blank_starter")] == [0.0, 25.0]


def test_gradescope_results_follow_the_documented_format(graded):
    _, out, _ = graded
    gs = json.loads((out / "gradescope" / "004_attention_mistakes" / "results.json").read_text(encoding="utf-8"))
    assert gs["score"] == 19.5 and isinstance(gs["execution_time"], float)
    assert gs["visibility"] in ("hidden", "after_due_date", "after_published", "visible")
    assert gs["stdout_visibility"] in ("hidden", "after_due_date", "after_published", "visible")
    assert len(gs["tests"]) == 21
    for t in gs["tests"]:
        assert set(t) <= {"score", "max_score", "status", "name", "name_format", "number", "output",
                          "output_format", "tags", "visibility", "extra_data"}
        assert isinstance(t["score"], float) and isinstance(t["max_score"], float) and t["name"]
        assert t["status"] in ("passed", "failed") and isinstance(t["tags"], list)
    assert sum(t["score"] for t in gs["tests"]) == gs["score"]
    att = next(t for t in gs["tests"] if t["name"].endswith(": attention"))
    assert att["status"] == "failed" and "softmax-dim0" in att["tags"]


def test_bad_inputs_each_get_a_reason(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "corrupt.ipynb").write_text('{"cells": [', encoding="utf-8")
    (subs / "empty.py").write_bytes(b"")
    (subs / "binary.ipynb").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00" + os.urandom(200))
    (subs / "gbk.py").write_bytes("# 中文注释\nprint('你好')\n".encode("gbk"))
    two = subs / "two_files"
    two.mkdir()
    (two / "a.py").write_text("x = 1\n", encoding="utf-8")
    (two / "b.ipynb").write_text("{}", encoding="utf-8")
    # 50 MB of outputs on one tiny cell: loads (under the 64 MB limit) and grades like any other
    blob = "x" * (50 * 2**20)
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": 1, "source": "x = 1",
         "outputs": [{"output_type": "stream", "name": "stdout", "text": blob}]}]}
    (subs / "huge.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    out = tmp_path / "out"
    summary = batch(subs, out)
    assert summary.graded == 6 and not summary.errors
    res = {s: json.loads((out / "results" / f"{s}.json").read_text(encoding="utf-8"))
           for s in ("corrupt", "empty", "binary", "gbk", "two_files", "huge")}
    assert "broken JSON" in res["corrupt"]["load_error"]
    assert "empty" in res["empty"]["load_error"]
    assert "binary" in res["binary"]["load_error"]
    assert "2 submission files" in res["two_files"]["load_error"]
    assert res["gbk"]["load_error"] is None and "GBK" in " ".join(res["gbk"]["run"]["load_notes"])
    assert res["huge"]["load_error"] is None
    for s in ("corrupt", "empty", "binary", "two_files"):
        assert res[s]["score"] == 0.0
    with open(out / "grades.csv", encoding="utf-8") as f:
        status = {r["student"]: r["status"] for r in csv.DictReader(f)}
    assert status["corrupt"].startswith("could not be loaded") and status["gbk"] == "graded"
    assert "could not be loaded" in (out / "summary.html").read_text(encoding="utf-8")


_KILLABLE = """
from grader.batch import run_batch
run_batch({subs!r}, {rubric!r}, {out!r}, jobs=1, force=False, dask_address=None, sandbox="bwrap",
          lang="en", progress=False, timeout=3)
"""


def test_killed_batch_resumes_with_nothing_lost_or_doubled(tmp_path):
    # 12 students from 3 fast samples, each copy made distinct so none is skipped by hash
    subs = tmp_path / "subs"
    names = ["001_seed_repaired", "003_correct_script", "006_blank_starter"]
    for k in range(12):
        src = SAMPLES / names[k % 3]
        shutil.copytree(src, subs / f"s{k:02d}")
        f = next((subs / f"s{k:02d}").iterdir())
        f.write_bytes(f.read_bytes() + f"\n# copy {k}\n".encode())
    out = tmp_path / "out"
    db = out / "gradebook.sqlite"
    code = _KILLABLE.format(subs=str(subs), rubric=str(RUBRIC), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, cwd=ROOT)   # `python -c` imports from cwd
    committed = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                committed = sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            except sqlite3.OperationalError:
                committed = 0
            if committed >= 3:
                break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)      # the coordinator and its sandbox workers, no goodbye
    proc.wait()
    assert 3 <= committed < 12, "the batch should have been killed halfway"
    kept = sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    summary = batch(subs, out, jobs=1)
    assert summary.skipped == kept and summary.graded == 12 - kept
    rows = sqlite3.connect(db).execute("SELECT student, COUNT(*) FROM runs GROUP BY student").fetchall()
    assert len(rows) == 12 and all(n == 1 for _, n in rows)
    totals = csv_totals(out)
    assert [totals[f"s{k:02d}"] for k in range(3)] == [6.0, 25.0, 0.0]
    # every student has every export, those committed before the kill too
    assert all((out / "gradescope" / f"s{k:02d}" / "results.json").is_file() for k in range(12))
    assert all((out / "results" / f"s{k:02d}.json").is_file() for k in range(12))


def test_manual_scores_survive_force(tmp_path):
    from grader.review import review
    from grader.errors import UsageError
    subs = copy_samples(tmp_path / "subs", ["003_correct_script", "006_blank_starter"])
    out = tmp_path / "out"
    batch(subs, out, jobs=1)
    sheet = tmp_path / "manual.csv"
    sheet.write_text("student,item,points,comment\n"
                     "003_correct_script,written.1.1,1.5,misses the spectral radius\n"
                     "003_correct_script,box_iou,1,hard-coded the test boxes\n", encoding="utf-8")
    outcome = review(out, csv_path=sheet)
    assert len(outcome.recorded) == 2
    assert csv_totals(out)["003_correct_script"] == 25.0 + 1.5 - 1.0      # exports follow at once
    with pytest.raises(UsageError, match="did you mean 'written.1.1'"):
        review(out, student="003_correct_script", item="written.11", points=1)
    with pytest.raises(UsageError, match="outside"):
        review(out, student="003_correct_script", item="written.1.2", points=9)
    summary = batch(subs, out, jobs=1, force=True)
    assert summary.graded == 2
    assert csv_totals(out)["003_correct_script"] == 25.5
    result = json.loads((out / "results" / "003_correct_script.json").read_text(encoding="utf-8"))
    w = next(i for i in result["items"] if i["id"] == "written.1.1")
    assert w["points"] == 1.5 and "misses the spectral radius" in w["message"]
    with open(out / "grades.csv", encoding="utf-8") as f:
        row = next(r for r in csv.DictReader(f) if r["student"] == "003_correct_script")
    assert "hard-coded the test boxes" in row["manual"] and row["box_iou"] == "1"
    gs = json.loads((out / "gradescope" / "003_correct_script" / "results.json").read_text(encoding="utf-8"))
    assert gs["score"] == 25.5


def test_review_lists_concepts_as_suggestions(tmp_path):
    from grader.review import review
    from grader.review import concept_hits
    from grader.rubric import load_rubric
    item = load_rubric(RUBRIC).item("written.1.2")
    hits = dict(concept_hits("Clip when the gradient norm exceeds a threshold; 梯度爆炸", item.concepts))
    assert hits["阈值 / threshold"] == "threshold" and hits["梯度爆炸 / exploding gradients"] == "梯度爆炸"
    assert hits["按比例缩放 / rescale"] is None
    subs = copy_samples(tmp_path / "subs", ["002_correct_notebook"])
    out = tmp_path / "out"
    batch(subs, out, jobs=1)
    listing = str(review(out, student="002_correct_notebook"))
    assert "written.1.1: awaiting review" in listing and "answer:" in listing


def test_dask_local_cluster_gives_the_same_grades(tmp_path, graded):
    distributed = pytest.importorskip("distributed")
    names = ["000_be4a6993b089033a", "004_attention_mistakes", "005_detection_mistakes"]
    subs = copy_samples(tmp_path / "subs", names)
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        summary = batch(subs, out, dask_address=cluster.scheduler_address)
    assert summary.graded == 3 and not summary.errors
    local = json.loads((graded[1] / "results" / "004_attention_mistakes.json").read_text(encoding="utf-8"))
    remote = json.loads((out / "results" / "004_attention_mistakes.json").read_text(encoding="utf-8"))
    assert csv_totals(out) == {n: EXPECTED[n] for n in names}
    assert [(i["id"], i["points"], i["status"]) for i in remote["items"]] == \
           [(i["id"], i["points"], i["status"]) for i in local["items"]]


def test_grade_py_exits_with_its_code_and_its_output_complete(tmp_path):
    """grade.py leaves without the interpreter's teardown: the exit code, the last line printed
    and the files written (gradebook included) must all be there as before."""
    subs = copy_samples(tmp_path / "subs", ["003_correct_script"])
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}    # buffered, as users run it
    run = subprocess.run([sys.executable, str(ROOT / "grade.py"), "batch", str(subs), "--out", str(out)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("1 submissions: 1 graded, 0 unchanged") and run.stdout.endswith("gradebook.sqlite)\n")
    assert csv_totals(out) == {"003_correct_script": 25.0}
    with sqlite3.connect(out / "gradebook.sqlite") as db:
        assert db.execute("select count(*) from runs").fetchone() == (1,)
    bad = subprocess.run([sys.executable, str(ROOT / "grade.py"), "validate", str(tmp_path / "missing.toml")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert bad.returncode == 1 and "missing.toml: cannot be read" in bad.stderr


def test_batch_starts_its_sandboxes_before_importing_torch():
    """The sandboxes boot (each importing torch) while the coordinator imports its own: nothing the
    batch needs before spawning them may import torch (measured: 0.45 s of a 200-submission run)."""
    code = ("import sys; import grader.cli, grader.batch, grader.gradebook, grader.rubric, grader.sandbox, "
            "grader.exports, grader.similarity; "
            "from grader.sandbox import bwrap; bwrap.python_environment(); bwrap.seccomp_filter(); "
            "grader.rubric.load_rubric(sys.argv[1]); print('torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code, str(RUBRIC)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.stdout.strip() == "False", run.stderr[-2000:]


def test_progress_says_so_before_the_first_result_and_then_counts():
    import io
    from grader.batch import Progress
    log = io.StringIO()
    bar = Progress(2, True, stream=log)
    assert log.getvalue() == "[........................] 0/2 graded, 0 failed, starting the sandboxes\n"
    bar.step(False)
    bar.step(True)          # the last one is always drawn
    last = log.getvalue().splitlines()[-1]
    assert last.startswith("[" + "#" * 24 + "] 2/2 graded, 1 failed, ") and last.endswith("/s, ETA 0:00")
    quiet = io.StringIO()
    Progress(2, False, stream=quiet).step(False)
    assert quiet.getvalue() == ""
