"""Per-submission overhead of the engine: warm worker vs a fresh interpreter per submission.

Grades every bundled sample (except the one that deliberately hangs) several times with one warm
sandboxed worker, then once each with a fresh worker per submission (a new interpreter that
imports torch, as a grader without a warm worker would). Overhead = wall time of `grade()` minus
the time the student's own code ran. Prints medians and the ratio.

    python bench/bench_overhead.py [--sandbox bwrap|none] [--rounds 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.pipeline import Grader  # noqa: E402
from grader.sandbox import default_kind  # noqa: E402

SLOW = {"007_partly_broken"}       # an infinite loop by design: measures the time limit, not overhead


def overhead(grader: Grader, path: Path) -> tuple[float, float]:
    t0 = time.perf_counter()
    result = grader.grade(path)
    total = time.perf_counter() - t0
    student = result.run.student_seconds if result.run else 0.0
    return total, total - student


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sandbox", default=default_kind())
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    samples = sorted(p for p in (ROOT / "submissions" / "hw2").iterdir() if p.is_dir() and p.name not in SLOW)
    rubric = ROOT / "rubrics" / "hw2.toml"

    with Grader(rubric, sandbox=args.sandbox) as g:
        for p in samples:          # warm-up: reference values cached, worker started
            g.grade(p)
        warm = [overhead(g, p) for _ in range(args.rounds) for p in samples]

    cold = []
    for p in samples:
        t0 = time.perf_counter()
        with Grader(rubric, sandbox=args.sandbox) as g:   # fresh interpreter: pays the torch import
            g.worker.start()
            total, over = overhead(g, p)
        cold.append((time.perf_counter() - t0, time.perf_counter() - t0 - (total - over)))

    w = statistics.median(o for _, o in warm)
    c = statistics.median(o for _, o in cold)
    print(f"sandbox: {args.sandbox}; samples: {len(samples)}; warm rounds: {args.rounds}")
    print(f"warm worker : median total {statistics.median(t for t, _ in warm) * 1000:7.1f} ms, "
          f"median overhead {w * 1000:7.1f} ms per submission")
    print(f"fresh worker: median total {statistics.median(t for t, _ in cold) * 1000:7.1f} ms, "
          f"median overhead {c * 1000:7.1f} ms per submission")
    print(f"ratio (fresh / warm overhead): {c / w:.1f}x")
    print(f"target: median warm overhead <= 50 ms: {'met' if w <= 0.050 else 'NOT met'}")


if __name__ == "__main__":
    main()
