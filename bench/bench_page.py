"""Time to render one feedback page, per bundled sample.

Grades every sample once with a warm sandboxed worker, then renders each sample's page `--rounds`
times (the rubric's language and the student view by default: what `grade.py batch` writes) and
prints the median CPU time (process_time) and wall time (perf_counter) per page. CPU time is the
figure to quote: other processes on a shared machine inflate wall time, not CPU time. Torch runs
single-threaded by default, as in the batch coordinator: with a thread pool, a busy machine makes
pool threads spin and inflates CPU time too.

    python bench/bench_page.py [--rounds 20] [--lang zh|en] [--view student|instructor] [--slot 7] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.feedback import render_feedback  # noqa: E402
from grader.pipeline import Grader  # noqa: E402


def samples() -> list[Path]:
    """The submission file of each sample folder."""
    folders = sorted(p for p in (ROOT / "submissions" / "hw2").iterdir() if p.is_dir())
    return [min(f for f in d.iterdir() if f.is_file()) for d in folders]


def timed(render, rounds: int) -> tuple[float, float]:
    """Median CPU and wall milliseconds of one render."""
    cpu, wall = [], []
    for _ in range(rounds):
        c0, w0 = time.process_time(), time.perf_counter()
        render()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu) * 1000, statistics.median(wall) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--lang", choices=("zh", "en"), help="default: the rubric's")
    ap.add_argument("--view", choices=("student", "instructor"), default="student")
    ap.add_argument("--slot", type=int, default=7, help="sandbox slot (uid), to keep clear of other runs")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads in this process")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    with Grader(ROOT / "rubrics" / "hw2.toml", sandbox="bwrap", slot=args.slot) as g:
        g.warm()
        results = [(p.parent.name, g.grade(p)) for p in samples()]
    lang = args.lang or g.rubric.lang
    render_feedback(results[0][1], lang, args.view, g.rubric)     # compiles the template: not a page's cost

    print(f"rounds: {args.rounds}; lang: {lang}; view: {args.view}; torch threads: {args.threads}; median ms per page")
    print(f"{'sample':<28}{'cpu':>8}{'wall':>8}{'KiB':>7}")
    rows = []
    for name, r in results:
        cpu, wall = timed(lambda: render_feedback(r, lang, args.view, g.rubric), args.rounds)
        size = len(render_feedback(r, lang, args.view, g.rubric).encode()) / 1024
        rows.append((cpu, wall))
        print(f"{name:<28}{cpu:8.2f}{wall:8.2f}{size:7.0f}")
    print(f"{'mean over samples':<28}{statistics.mean(c for c, _ in rows):8.2f}{statistics.mean(w for _, w in rows):8.2f}")


if __name__ == "__main__":
    main()
