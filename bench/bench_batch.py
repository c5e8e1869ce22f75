"""Throughput of `batch` against one fresh interpreter per submission, in the same run.

    python bench/bench_batch.py [-n 200] [--jobs 2] [--executor threads|processes] [--fresh-sample 20]

Generates N hw2 submissions (copies of the fast samples, mixed correct and mistaken, each with a
distinct trailing comment so every content hash differs) in a temp dir, grades them end to end with
`run_batch` (feedback pages included), then grades a sample of
them with `python grade.py grade X --json ...` subprocesses using the same parallelism, and prints
submissions per second for both and the ratio. 007_partly_broken (an infinite loop, ~10 s by
design) is left out: it measures the time limit, not the grader.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SAMPLES = ["001_seed_repaired", "002_correct_notebook", "003_correct_script", "004_attention_mistakes",
           "005_detection_mistakes", "006_blank_starter", "008_no_scale_script", "000_be4a6993b089033a"]


def generate(dest: Path, n: int) -> Path:
    for k in range(n):
        src = ROOT / "submissions" / SAMPLES[k % len(SAMPLES)]
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
                        "--sandbox", "bwrap"], check=True, capture_output=True)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, paths))
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--executor", choices=("threads", "processes"), default="threads")
    ap.add_argument("--fresh-sample", type=int, default=20,
                    help="how many of the N to grade with a fresh interpreter each (the rate is per submission)")
    args = ap.parse_args()
    from grader.batch import run_batch
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        subs = generate(tmp / "subs", args.n)
        t0 = time.perf_counter()
        s = run_batch(subs, ROOT / "rubrics" / "hw2.toml", tmp / "out", jobs=args.jobs, force=False,
                      dask_address=None, sandbox="bwrap", lang=None, progress=True, executor=args.executor)
        batch_s = time.perf_counter() - t0
        assert s.graded == args.n and not s.errors, s
        pages = len(list((tmp / "out" / "feedback").glob("*.html")))
        t0 = time.perf_counter()
        rerun = run_batch(subs, ROOT / "rubrics" / "hw2.toml", tmp / "out", jobs=args.jobs, force=False,
                          dask_address=None, sandbox="bwrap", lang=None, progress=False)
        rerun_s = time.perf_counter() - t0
        assert rerun.graded == 0, rerun
        sample = sorted(subs.iterdir())[:args.fresh_sample]
        (tmp / "fresh").mkdir()
        fresh_s = fresh(sample, args.jobs, tmp / "fresh")
    batch_rate = args.n / batch_s
    print(f"batch ({args.executor}, jobs={args.jobs}): {args.n} submissions in {batch_s:.1f} s = "
          f"{batch_rate:.2f} submissions/s  (feedback pages: {pages})")
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
