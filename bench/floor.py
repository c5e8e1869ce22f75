"""The floor under a batch's time: what no grader overhead could remove, measured in the same run.

A batch cannot finish before (a) its start (the interpreter, torch, the sandboxes booting, the
reference's values), measured as `grade.py batch` on a class of one, less that one submission's
own time; plus (b) the time the students' own code ran (`run.student_seconds` of every result:
blocks and function calls, as timed inside the runner) and the time limits it reached (a job that
hit a limit is counted whole: its limit is the rubric's rule, not overhead), spread over the slots.
Everything above the floor is the grader's: scoring, pages, records, the runner's fork, encoding.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def startup_seconds(one: Path, rubric: Path, out: Path, jobs: int) -> float:
    """Wall time of `grade.py batch` on the class of one submission `one`, less that submission's own
    run: what any batch pays before and after grading."""
    subs = out / "one"
    subs.mkdir(parents=True)
    (shutil.copytree if one.is_dir() else shutil.copy)(one, subs / one.name)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "grade.py"), "batch", str(subs), "--out", str(out / "out"),
                    "--rubric", str(rubric), "--jobs", str(jobs)], check=True, capture_output=True)
    seconds = time.perf_counter() - t0
    result = next((out / "out" / "results").glob("*.json"))
    return seconds - json.loads(result.read_text(encoding="utf-8"))["run"]["seconds"]


def own_seconds(results: Path) -> tuple[float, float]:
    """(the students' own code, the jobs that reached a limit), summed over a batch's results."""
    code = limits = 0.0
    for f in results.glob("*.json"):
        run = json.loads(f.read_text(encoding="utf-8")).get("run") or {}
        if run.get("limit_hit"):
            limits += run.get("seconds", 0.0)
        else:
            code += run.get("student_seconds", 0.0)
    return code, limits


def report(n: int, batch_seconds: float, results: Path, startup: float, jobs: int) -> str:
    code, limits = own_seconds(results)
    floor = startup + (code + limits) / jobs
    return (f"floor: start {startup:.2f} s + (students' own code {code:.2f} s + jobs at a time limit {limits:.2f} s)"
            f" / {jobs} slots = {floor:.2f} s, at most {n / floor:.1f} submissions/s; this batch took "
            f"{batch_seconds:.2f} s, {batch_seconds / floor:.2f}x the floor "
            f"({1000 * (batch_seconds - floor) / n:.1f} ms a submission above it)")
