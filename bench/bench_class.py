"""A realistic class of hw2 submissions, graded end to end, and checked.

    python bench/bench_class.py [--n 200] [--jobs 2] [--seed 0] [--repeat 1] [--fresh-sample 10]
                                [--loops 0.02] [--exceptions 0.03] [--blank 0.05] [--mistakes 0.20]
                                [--scale 200,2000] [--expect-grades DIGEST] [--keep DIR]

Generates N submissions (bench/class_mix.py: notebooks, scripts and Markdown answer sheets; several
coding styles per function, loops and vectorised; known mistakes, exceptions, infinite loops and
blank starters in the stated shares, seeded) and grades them the way an instructor does: one
`python grade.py batch SUBS --out OUT --rubric rubrics/hw2.toml --jobs J` process, timed from its
start to its exit (feedback pages included), against its floor (bench/floor.py: the start, the
students' own code and the time limits they reached, which no overhead could remove), with its peak memory (RSS of its largest process, from
wait4; PSS of its whole process tree, sandboxes included, sampled twice a second). Then a sample, chosen across the
kinds in proportion, with one fresh `python grade.py grade X --rubric ... --json ...` process each
and the same parallelism: the ratio of the two rates is measured in the same run.

Every result is checked against its kind's verdict (correct: every auto-graded item passes at full
points; mistake: its item is not a pass, and a known one is recognised as that mistake; exception:
its item is an error; infinite loop: its item is an error with a time-limit message; blank: 0;
every item the fault cannot reach passes). Any wrong verdict, or a fresh grade that differs from
the batch's, makes the bench exit 1 with the students named: it must not get faster by grading wrong.
Each run prints a digest of every item's status and points: `--expect-grades` makes a later run
(same seed and N, another commit) fail unless its grades are the same. `--scale 200,2000` grades
classes of those sizes and compares the time per submission.
"""
from __future__ import annotations

import argparse
import collections
import glob
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import class_mix  # noqa: E402
import floor  # noqa: E402

RUBRIC = ROOT / "rubrics" / "hw2.toml"
GRADE = [sys.executable, str(ROOT / "grade.py")]
AUTO = [i["id"] for i in tomllib.loads(RUBRIC.read_text(encoding="utf-8"))["items"] if i["kind"] != "written"]


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def tree_pss_kb(root: int) -> int:
    """Proportional set size of a process and all its descendants (shared pages counted once)."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        for f in glob.glob(f"/proc/{pid}/task/*/children"):
            try:
                todo += [int(p) for p in Path(f).read_text().split()]
            except OSError:
                pass
        try:
            total += int(re.search(r"^Pss:\s+(\d+)", Path(f"/proc/{pid}/smaps_rollup").read_text(), re.M).group(1))
        except (OSError, AttributeError):
            pass
    return total


def batch(subs: Path, out: Path, jobs: int) -> dict:
    """One `grade.py batch` process: seconds from its start to its exit, its peak memory, its counts."""
    log = out.parent / f"{out.name}.log"
    with open(log, "w") as so, open(f"{log}.err", "w") as se:
        t0 = time.perf_counter()
        proc = subprocess.Popen(GRADE + ["batch", str(subs), "--out", str(out), "--rubric", str(RUBRIC),
                                         "--jobs", str(jobs)], stdout=so, stderr=se)
        peak, done = [0], threading.Event()

        def sample():                 # twice a second: cheap next to the batch, enough for its plateau
            while not done.wait(0.5):
                peak[0] = max(peak[0], tree_pss_kb(proc.pid))
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)     # the rusage of this child (and what it reaped)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    stdout, stderr = log.read_text(), Path(f"{log}.err").read_text()
    m = re.search(r"(\d+) graded, \d+ unchanged, (\d+) with problems", stdout)
    if proc.returncode != 0 or not m:
        sys.exit(f"grade.py batch failed ({proc.returncode}):\n{stdout[-2000:]}\n{stderr[-2000:]}")
    return {"seconds": seconds, "graded": int(m.group(1)), "problems": int(m.group(2)),
            "not_graded": re.findall(r"^\s*(\S+): not graded: (.*)$", stderr, re.M),
            "maxrss_mb": usage.ru_maxrss / 1024, "pss_mb": peak[0] / 1024,
            "pages": len(list((out / "feedback").glob("*.html")))}


def verdict(s: class_mix.Student, result: dict) -> str | None:
    """Why this result is wrong for the student's kind, or None."""
    items = {i["id"]: i for i in result["items"]}
    if s.kind == "blank":
        return None if result["score"] == 0 else f"blank starter scored {result['score']}"
    wrong = [f"{i} {items[i]['status']} {items[i]['points']}/{items[i]['max_points']}" for i in AUTO
             if i != s.target and i not in s.affected
             and (items[i]["status"] != "pass" or items[i]["points"] != items[i]["max_points"])]
    if wrong:
        return "expected a full pass: " + ", ".join(wrong)
    if s.kind == "correct":
        return None
    t = items[s.target]
    said = f"{s.target} {t['status']} ({t['message'][:90]})"
    if s.kind == "mistake" and t["status"] == "pass":
        return f"mistake {s.mistake or 'unlisted'} passed: {said}"
    if s.kind == "mistake" and s.mistake and t.get("mistake") != s.mistake:
        return f"mistake {s.mistake} recognised as {t.get('mistake')}: {said}"
    if s.kind in ("exception", "loop") and t["status"] != "error":
        return f"{s.kind} not an error: {said}"
    if s.kind == "loop" and not re.search(r"时间限制|time limit", t["message"], re.I):
        return f"infinite loop without a time-limit message: {said}"
    return None


def check(students, results_dir: Path, label: str) -> tuple[list[str], str]:
    """(wrong verdicts, a digest of every item's status and points: messages, which quote measured
    time limits, are left out)."""
    wrong, grades = [], hashlib.sha256()
    for s in students:
        f = results_dir / f"{s.name}.json"
        result = json.loads(f.read_text(encoding="utf-8")) if f.exists() else None
        why = verdict(s, result) if result else "no result"
        if why:
            wrong.append(f"{label}: {s.name} ({s.fmt}, {s.kind} {s.target or ''}): {why}")
        for i in result["items"] if result else ():
            grades.update(f"{s.name} {i['id']} {i['status']} {i['points']}\n".encode())
    return wrong, grades.hexdigest()[:16]


def breakdown(students, results_dir: Path) -> str:
    """Where the slots' time went: the results' own seconds, summed per kind."""
    secs = collections.defaultdict(list)
    for s in students:
        r = json.loads((results_dir / f"{s.name}.json").read_text(encoding="utf-8"))
        secs[s.kind].append(r["run"]["seconds"])
    return ", ".join(f"{k} {sum(v):.1f} s (median {statistics.median(v):.2f}, max {max(v):.2f})"
                     for k in class_mix.KINDS if (v := secs[k]))


def sample(students, k: int) -> list:
    """k students spread over the kinds in proportion (systematic sample of the list sorted by kind)."""
    ranked = sorted(students, key=lambda s: (class_mix.KINDS.index(s.kind), s.name))
    return [ranked[int((i + 0.5) * len(ranked) / k)] for i in range(min(k, len(ranked)))]


def fresh(subs: Path, chosen, jobs: int, out: Path) -> float:
    out.mkdir()

    def one(s):
        subprocess.run(GRADE + ["grade", str(subs / s.name), "--rubric", str(RUBRIC), "--json", str(out / f"{s.name}.json")],
                       check=True, capture_output=True)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, chosen))
    return time.perf_counter() - t0


def show_mix(students, shares):
    kinds = collections.Counter(s.kind for s in students)
    fmts = collections.Counter(s.fmt for s in students)
    n = len(students)
    print(f"mix of {n} (asked: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()) + "):")
    print("  kinds:   " + ", ".join(f"{k} {kinds[k]}" for k in class_mix.KINDS))
    print("  formats: " + ", ".join(f"{f} {fmts[f]}" for f in ("ipynb", "py", "md")))
    for kind in ("mistake", "exception", "loop"):
        where = collections.Counter(s.mistake or s.target for s in students if s.kind == kind)
        if where:
            print(f"  {kind}s: " + ", ".join(f"{w} {c}" for w, c in sorted(where.items())))


def grade_class(n: int, args, shares, tmp: Path, wrong: list) -> tuple:
    subs = tmp / f"subs{n}"
    t0 = time.perf_counter()
    students = class_mix.make_class(subs, n, args.seed, shares)
    print(f"generated {n} submissions in {time.perf_counter() - t0:.1f} s")
    show_mix(students, shares)
    runs = []
    for k in range(args.repeat):             # each into a new output folder: every run grades all N
        print(f"  batch run {k + 1}/{args.repeat} ... ({load()})", flush=True)
        r = batch(subs, tmp / f"out{n}_{k}", args.jobs)
        bad, r["digest"] = check(students, tmp / f"out{n}_{k}" / "results", f"batch run {k + 1}")
        runs.append(r)
        print(f"  run {k + 1}: {r['seconds']:.2f} s = {n / r['seconds']:.2f} submissions/s, {r['graded']} graded, "
              f"{r['problems']} with problems, {r['pages']} pages, peak RSS {r['maxrss_mb']:.0f} MB (largest process), "
              f"peak PSS {r['pss_mb']:.0f} MB (process tree), grades {r['digest']}")
        wrong += [f"run {k + 1}: {who}: not graded: {why}" for who, why in r["not_graded"]]
        if r["graded"] != n or r["pages"] != n:
            wrong.append(f"run {k + 1}: {r['graded']} graded, {r['pages']} pages for {n} submissions")
        if not bad and k == 0:
            print(f"  time per submission as graded, summed by kind: {breakdown(students, tmp / f'out{n}_0' / 'results')}")
        wrong += bad
    if len({r["digest"] for r in runs}) > 1:
        wrong.append("the runs' grades differ: " + ", ".join(r["digest"] for r in runs))
    return subs, students, runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="submissions in the class")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="the class's seed: same seed, same submissions")
    ap.add_argument("--loops", type=float, default=0.02, help="share with an infinite loop in one function")
    ap.add_argument("--exceptions", type=float, default=0.03, help="share raising in one function")
    ap.add_argument("--blank", type=float, default=0.05, help="share of unmodified starters")
    ap.add_argument("--mistakes", type=float, default=0.20, help="share with one known mistake")
    ap.add_argument("--repeat", type=int, default=1, help="batch runs; the median is reported")
    ap.add_argument("--fresh-sample", type=int, default=10, help="graded with a fresh process each (0: skip)")
    ap.add_argument("--scale", help="comma-separated class sizes to compare per submission, e.g. 200,2000")
    ap.add_argument("--expect-grades", metavar="DIGEST",
                    help="fail unless the grades' digest is this one (printed by an earlier run: same seed and N)")
    ap.add_argument("--keep", type=Path, help="copy the generated class(es) and outputs here")
    args = ap.parse_args()
    shares = {"loop": args.loops, "exception": args.exceptions, "blank": args.blank, "mistake": args.mistakes}
    sizes = [int(x) for x in args.scale.split(",")] if args.scale else [args.n]
    print(f"before: {load()} on {os.cpu_count()} cores; jobs={args.jobs}, seed={args.seed}", flush=True)
    wrong: list[str] = []
    per_sub = {}
    with tempfile.TemporaryDirectory(prefix="bench-class-") as tmp:
        tmp = Path(tmp)
        for i, n in enumerate(sizes):
            subs, students, runs = grade_class(n, args, shares, tmp, wrong)
            if i == 0 and args.expect_grades and runs[0]["digest"] != args.expect_grades:
                wrong.append(f"grades {runs[0]['digest']}, expected {args.expect_grades} (same seed and N?)")
            batch_s = statistics.median(r["seconds"] for r in runs)
            per_sub[n] = batch_s / n
            rate = n / batch_s
            each = f" (median of {len(runs)}: " + ", ".join(f"{r['seconds']:.2f}" for r in runs) + " s)" if len(runs) > 1 else ""
            print(f"batch (one `grade.py batch` process, jobs={args.jobs}): {n} submissions in {batch_s:.2f} s = "
                  f"{rate:.2f} submissions/s, {1000 * per_sub[n]:.1f} ms per submission{each}; "
                  f"peak RSS {max(r['maxrss_mb'] for r in runs):.0f} MB, peak PSS {max(r['pss_mb'] for r in runs):.0f} MB")
            if i == 0:
                first = next(s for s in students if s.kind == "correct")
                startup = floor.startup_seconds(subs / first.name, RUBRIC, tmp / "startup", args.jobs)
                alone = batch(subs, tmp / "alone", 1)      # the students' code timed with a core to itself
                bad, digest = check(students, tmp / "alone" / "results", "one slot")
                wrong += bad + ([f"one slot: grades {digest}, not {runs[0]['digest']}"] if digest != runs[0]["digest"] else [])
                print(floor.report(n, batch_s, tmp / "alone" / "results", startup, args.jobs))
            if i == 0 and args.fresh_sample > 0:
                chosen = sample(students, args.fresh_sample)
                print(f"fresh sample: {', '.join(s.name for s in chosen)} ({load()})", flush=True)
                fresh_s = fresh(subs, chosen, args.jobs, tmp / "fresh")
                wrong += check(chosen, tmp / "fresh", "fresh")[0]
                batch_res = tmp / f"out{n}_0" / "results"
                for s in chosen:
                    a, b = (json.loads((d / f"{s.name}.json").read_text(encoding="utf-8")) for d in (batch_res, tmp / "fresh"))
                    if [(x["id"], x["points"]) for x in a["items"]] != [(x["id"], x["points"]) for x in b["items"]]:
                        wrong.append(f"fresh: {s.name}: points differ from the batch's ({a['score']} vs {b['score']})")
                fresh_rate = len(chosen) / fresh_s
                print(f"fresh process per submission (jobs={args.jobs}): {len(chosen)} in {fresh_s:.1f} s = "
                      f"{fresh_rate:.2f} submissions/s")
                print(f"ratio batch / fresh: {rate / fresh_rate:.1f}x")
            if args.keep:
                shutil.copytree(tmp, args.keep, dirs_exist_ok=True)
            shutil.rmtree(subs)
    if len(sizes) > 1:
        a, b = sizes[0], sizes[-1]
        print(f"scale: {1000 * per_sub[a]:.1f} ms per submission at {a}, {1000 * per_sub[b]:.1f} ms at {b}: "
              f"{per_sub[b] / per_sub[a]:.2f}x (target: at most 1.10x)")
    print(f"after: {load()}")
    if wrong:
        print(f"WRONG VERDICTS ({len(wrong)}):", *wrong, sep="\n  ")
        return 1
    print("verdicts: every submission got its kind's expected grade")
    return 0


if __name__ == "__main__":
    sys.exit(main())
