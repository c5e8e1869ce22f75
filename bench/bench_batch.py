"""Throughput of `batch` against one fresh interpreter per submission, in the same run.

    python bench/bench_batch.py [-n 200] [--jobs 2] [--repeat 1] [--fresh-sample 20]
                                [--in-process [--executor processes]]

Generates N hw2 submissions (copies of the fast samples, mixed correct and mistaken, each with a
distinct trailing comment so every content hash differs) in a temp dir and grades them end to end
the way an instructor does: one `python grade.py batch SUBS --out OUT --jobs J` process, timed
from its start to its exit (the interpreter's start and its torch import included), feedback pages
included, against its floor (bench/floor.py: the start, and the students' own code spread over the
slots). Then the same command again with nothing left to grade. Then a sample of them with one
`python grade.py grade X --json ...` process each, with the same parallelism. Prints submissions
per second for both and the ratio. `--repeat K` grades all N K times (a new output folder each)
and reports the median: the machine's speed drifts from run to run. `--in-process` times `run_batch` inside this process instead
(torch already imported; it also accepts `--executor processes`). 007_partly_broken (an infinite
loop, ~10 s by design) is left out: it measures the time limit, not the grader.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUBRIC = ROOT / "rubrics" / "hw2.toml"     # the samples are hw2's; a folder of them names no assignment
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import floor  # noqa: E402
SAMPLES = ["001_seed_repaired", "002_correct_notebook", "003_correct_script", "004_attention_mistakes",
           "005_detection_mistakes", "006_blank_starter", "008_no_scale_script", "000_be4a6993b089033a"]


def generate(dest: Path, n: int) -> Path:
    for k in range(n):
        src = ROOT / "submissions" / "hw2" / SAMPLES[k % len(SAMPLES)]
        d = dest / f"student{k:04d}"
        shutil.copytree(src, d)
        f = next(p for p in d.iterdir() if p.is_file())
        if f.suffix == ".ipynb":      # keep the notebook valid: vary its metadata, not its code
            nb = json.loads(f.read_text(encoding="utf-8"))
            nb.setdefault("metadata", {})["bench_copy"] = k
            f.write_text(json.dumps(nb, ensure_ascii=False, indent=1), encoding="utf-8")
        else:
            f.write_bytes(f.read_bytes() + f"\n# copy {k}\n".encode())
    return dest


def fresh(paths: list[Path], jobs: int, out: Path) -> float:
    def one(p: Path) -> None:
        subprocess.run([sys.executable, str(ROOT / "grade.py"), "grade", str(p), "--json", str(out / f"{p.name}.json"),
                        "--sandbox", "bwrap", "--rubric", str(RUBRIC)], check=True, capture_output=True)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, paths))
    return time.perf_counter() - t0


def batch(subs: Path, out: Path, args) -> tuple[float, int]:
    """(seconds, submissions graded) of one batch over `subs`."""
    if args.in_process:
        import grader.pipeline  # noqa: F401  (torch and the engine imported before the clock starts)
        from grader.batch import run_batch
    t0 = time.perf_counter()
    if args.in_process:
        s = run_batch(subs, RUBRIC, out, jobs=args.jobs, force=False, dask_address=None,
                      sandbox="bwrap", lang=None, progress=False, executor=args.executor)
        assert not s.errors, s
        return time.perf_counter() - t0, s.graded
    proc = subprocess.run([sys.executable, str(ROOT / "grade.py"), "batch", str(subs), "--out", str(out),
                           "--jobs", str(args.jobs), "--rubric", str(RUBRIC)], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0 and "not graded" not in proc.stderr, proc.stderr[-2000:]
    return seconds, int(re.search(r"(\d+) graded", proc.stdout).group(1))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--in-process", action="store_true", help="time run_batch in this process, torch imported")
    ap.add_argument("--executor", choices=("threads", "processes"), default="threads",
                    help="with --in-process: the batch's executor")
    ap.add_argument("--repeat", type=int, default=1,
                    help="grade the N this many times and report the median (the machine's speed drifts)")
    ap.add_argument("--fresh-sample", type=int, default=20,
                    help="how many of the N to grade with a fresh interpreter each (the rate is per submission)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        subs = generate(tmp / "subs", args.n)
        runs = []
        for k in range(args.repeat):      # each into a new output folder: every run grades all N
            seconds, graded = batch(subs, tmp / f"out{k}", args)
            assert graded == args.n, graded
            runs.append(seconds)
        batch_s = statistics.median(runs)
        pages = len(list((tmp / "out0" / "feedback").glob("*.html")))
        startup = floor.startup_seconds(subs / "student0001", RUBRIC, tmp / "startup", args.jobs)
        batch(subs, tmp / "alone", argparse.Namespace(**{**vars(args), "jobs": 1}))   # the students' code, a core to itself
        below = floor.report(args.n, batch_s, tmp / "alone" / "results", startup, args.jobs)
        rerun_s, regraded = batch(subs, tmp / "out0", args)
        assert regraded == 0, regraded
        sample = sorted(subs.iterdir())[:args.fresh_sample]
        (tmp / "fresh").mkdir()
        fresh_s = fresh(sample, args.jobs, tmp / "fresh")
    how = f"run_batch in this process, {args.executor}" if args.in_process else "one `grade.py batch` process"
    batch_rate = args.n / batch_s
    each = f"; median of {len(runs)}: " + ", ".join(f"{r:.2f}" for r in runs) + " s" if len(runs) > 1 else ""
    print(f"batch ({how}, jobs={args.jobs}): {args.n} submissions in {batch_s:.2f} s = "
          f"{batch_rate:.2f} submissions/s  (feedback pages: {pages}{each})")
    print(below)
    print(f"incremental rerun (nothing to grade): {rerun_s:.2f} s")
    if sample:
        fresh_rate = len(sample) / fresh_s
        print(f"fresh interpreter per submission (jobs={args.jobs}): {len(sample)} in {fresh_s:.1f} s = "
              f"{fresh_rate:.2f} submissions/s")
        print(f"ratio batch / fresh: {batch_rate / fresh_rate:.1f}x")
    print(f"target 25 submissions/s: {'met' if batch_rate >= 25 else 'not met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
