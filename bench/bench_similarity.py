"""The similarity report alone, on realistic classes of several sizes, and checked.

    python bench/bench_similarity.py [--sizes 200,2000] [--seed 0] [--check 200]

Generates each class with bench/class_mix.py (the mix bench_class.py grades), takes every
student's own code the way a batch does (load, locate the blanks, `similarity.own_code`; no
sandbox), and times `find_pairs` on it: seconds, milliseconds per student and the ratio between
the sizes. `--check N` also compares, on the class of N, every listed pair and the count with
`similarity.pair_by_pair`, the same definition one pair at a time: the bench exits 1 if they differ, so the fast path cannot drift from what it claims to compute.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import class_mix  # noqa: E402
from grader import similarity  # noqa: E402
from grader.blanks import layout as locate  # noqa: E402
from grader.load import load_submission  # noqa: E402
from grader.rubric import load_rubric  # noqa: E402

SHARES = {"loop": 0.02, "exception": 0.03, "blank": 0.05, "mistake": 0.20}


def class_codes(dest: Path, n: int, seed: int) -> dict[str, dict[str, str]]:
    rubric = load_rubric(ROOT / "rubrics" / "hw2.toml")
    functions = frozenset(i.name for i in rubric.items_of("function"))
    starter = similarity.starter_lines(tuple(str(p) for p in rubric.starter))
    variables = tuple(i.name for i in rubric.items_of("variable")) + (rubric.script.capture if rubric.script else ())
    written = tuple(i.id for i in rubric.items_of("written"))
    class_mix.make_class(dest, n, seed, SHARES)
    codes = {}
    for p in sorted(dest.iterdir()):
        lay = locate(load_submission(p), variables, written, rubric.section_aliases)
        codes[p.name] = similarity.own_code(types.SimpleNamespace(layout=lay), functions, starter)
    return codes


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="200,2000")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", type=int, default=200, help="compare with the pair-by-pair computation at this size (0: no)")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    per_student, failed = {}, False
    with tempfile.TemporaryDirectory(prefix="bench-similarity-") as tmp:
        for n in sizes:
            codes = class_codes(Path(tmp) / f"class{n}", n, args.seed)
            t0 = time.perf_counter()
            pairs, count = similarity.find_pairs(codes)
            seconds = time.perf_counter() - t0
            per_student[n] = seconds / n
            print(f"{n} students: find_pairs {seconds:.2f} s = {1000 * seconds / n:.2f} ms per student; "
                  f"{count} pairs at or above {similarity.THRESHOLD}, {len(pairs)} listed")
            if n == args.check:
                expected = similarity.pair_by_pair(codes)
                expected_count = len(expected)
                same = count == expected_count and pairs == expected[:similarity.MAX_PAIRS]
                failed |= not same
                print(f"  pair-by-pair check at {n}: {'the same pairs, values and count' if same else 'DIFFERENT'}"
                      f" ({expected_count} pairs)")
    if len(sizes) > 1:
        a, b = sizes[0], sizes[-1]
        print(f"per student: {1000 * per_student[a]:.2f} ms at {a}, {1000 * per_student[b]:.2f} ms at {b} "
              f"({per_student[b] / per_student[a]:.2f}x)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
