"""The command line: thin compositions of the pipeline's stages. Library code raises; this is
the one place that turns an error into a message and an exit code."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import GraderError, RubricError, SandboxError, UsageError

RUBRIC_HELP = ("the assignment's rubric; by default the one the submission names, or the only one in rubrics/ "
               "(grader/assignments.py)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="grade", description="Autograder for deep-learning homework.")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grade", help="grade one submission (a file, or a folder holding one)")
    g.add_argument("submission", nargs="+")
    g.add_argument("--rubric", help=RUBRIC_HELP)
    g.add_argument("--json", metavar="OUT.json", help="write the result as JSON")
    g.add_argument("--sandbox", choices=("bwrap", "none"), default=None,
                   help="bwrap (default where installed) or none (unsandboxed)")
    g.add_argument("--timeout", type=float, help="seconds per cell and per function item (overrides the rubric)")
    g.add_argument("--lang", choices=("zh", "en"), help="feedback language (default: the rubric's)")
    g.add_argument("--html", metavar="OUT.html", help="write the feedback page")
    g.add_argument("--view", choices=("student", "instructor"), default="student", help="what the page shows")

    b = sub.add_parser("batch", help="grade every submission in a folder: feedback, gradebook, exports")
    b.add_argument("submissions")
    b.add_argument("--rubric", help=RUBRIC_HELP + "; a folder of <assignment>/<student>/ folders grades each "
                   "assignment against its own rubric, into OUT/<assignment>/")
    b.add_argument("--out", default="out")
    b.add_argument("--jobs", type=int, default=0, help="parallel sandboxes (default: one per core)")
    b.add_argument("--force", action="store_true", help="regrade even unchanged submissions")
    b.add_argument("--dask", metavar="SCHEDULER_ADDRESS", help="grade on a Dask cluster, e.g. tcp://host:8786")
    b.add_argument("--sandbox", choices=("bwrap", "none"), default="bwrap",
                   help="batch grading refuses to run unsandboxed unless --sandbox none is given")
    b.add_argument("--timeout", type=float)
    b.add_argument("--lang", choices=("zh", "en"))

    r = sub.add_parser("review", help="manual scores and overrides (CSV or one at a time); list written answers")
    r.add_argument("out", help="the batch's output folder")
    r.add_argument("--csv", help="a CSV of student,item,points,comment")
    r.add_argument("--student")
    r.add_argument("--item")
    r.add_argument("--points", type=float)
    r.add_argument("--comment")
    r.add_argument("--serve", action="store_true",
                   help="start the review web app for teaching assistants (docs/review.md) and print its URL")
    r.add_argument("--host", default="127.0.0.1",
                   help="with --serve: the address to listen on (default 127.0.0.1, this machine only); "
                        "any other needs the printed URL's token on every request")
    r.add_argument("--port", type=int, default=8765, help="with --serve: the port (default 8765; 0 takes a free one)")

    d = sub.add_parser("redraw", help="draw every feedback page, the summary and the exports again from what a "
                       "batch stored (no sandbox, no student files)")
    d.add_argument("out", help="the batch's output folder")
    d.add_argument("--student", action="append", help="only this student's page (repeatable)")

    v = sub.add_parser("validate", help="check an assignment end to end: solution full marks, starter zero, "
                       "every known mistake caught, the pack builds, the starter is up to date")
    v.add_argument("rubric", nargs="?", help=RUBRIC_HELP)
    v.add_argument("--sandbox", choices=("bwrap", "none"), default=None)

    k = sub.add_parser("pack", help="build the student pack: starter, public checks, public rubric")
    k.add_argument("rubric", nargs="?", help=RUBRIC_HELP)
    k.add_argument("--out", required=True, help="the pack's folder, e.g. dist/<assignment>/")

    c = sub.add_parser("check", help="students: check a submission against the pack's public checks")
    c.add_argument("submission")
    c.add_argument("--checks", metavar="FILE.checks.safetensors", help="default: the one beside the submission")
    c.add_argument("--html", metavar="OUT.html", help="feedback page (default: <submission>.feedback.html beside it)")
    c.add_argument("--junit", metavar="OUT.xml", help="write JUnit XML, one testcase per item")
    c.add_argument("--fail-under", type=float, metavar="POINTS", help="exit 1 only when the score is below POINTS")
    c.add_argument("--sandbox", choices=("bwrap", "none"), default=None)
    c.add_argument("--timeout", type=float)
    c.add_argument("--lang", choices=("zh", "en"))

    e = sub.add_parser("release", help="make the starter from a solution notebook (#todo blanks, no hidden tests)")
    e.add_argument("solution")
    e.add_argument("--out", required=True, metavar="STARTER.ipynb")
    e.add_argument("--py", metavar="STARTER.py", help="also write the starter as a percent-format script")

    n = sub.add_parser("new", help="authoring: make a new assignment's skeleton (rubric, reference package, "
                       "solution, starter) that passes validate as made")
    n.add_argument("id", help="the assignment id, a Python identifier (it names the rubric, the reference folder "
                   "and the pack's files)")
    n.add_argument("--dir", default=".", help="where rubrics/ and reference/ are (default: here)")
    return p




def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:       # argparse already printed the usage error
        return 2 if e.code else 0
    if args.command in ("grade", "validate", "check", "pack"):
        # The commands that compute with torch. A batch imports it later, on purpose: its sandboxes
        # boot (each importing torch) while this process imports its own; prepare_host sets the
        # threads there. review, redraw and release never grade.
        from .pipeline import single_threaded_torch
        single_threaded_torch()
    try:
        if args.command == "grade":
            return cmd_grade(args)
        if args.command == "validate":
            return cmd_validate(args)
        if args.command == "batch":
            return cmd_batch(args)
        if args.command == "pack":
            return cmd_pack(args)
        if args.command == "check":
            return cmd_check(args)
        if args.command == "release":
            return cmd_release(args)
        if args.command == "new":
            return cmd_new(args)
        if args.command == "redraw":
            from .redraw import redraw
            done = redraw(args.out, set(args.student) if args.student else None)
            print(f"{len(done.pages)} feedback page(s) drawn again in {args.out}/feedback, exports and summary.html refreshed")
            if done.missing:
                print(f"{len(done.missing)} run(s) stored without a record (an older grader): "
                      f"{', '.join(done.missing)}; `grade.py batch --force` grades them again", file=sys.stderr)
            return 0
        if args.command == "review" and args.serve:
            if args.csv or args.points is not None:
                raise UsageError("--serve records scores in the browser: leave out --csv and --points")
            from .serve.app import serve
            return serve(args.out, args.host, args.port)
        if args.command == "review":
            from .review import review
            print(review(args.out, csv_path=args.csv, student=args.student, item=args.item, points=args.points,
                         comment=args.comment))
            return 0
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (RubricError, SandboxError, GraderError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 2


def cmd_grade(args) -> int:
    from .pipeline import Grader
    from .report import table, to_json
    from .sandbox import default_kind
    if (args.json or args.html) and len(args.submission) > 1:
        raise UsageError("--json and --html take one submission; use `grade.py batch` for many")
    from .assignments import choose
    sandbox = args.sandbox or default_kind()
    with Grader(choose(args.rubric, args.submission[0], "grade"), sandbox=sandbox, timeout=args.timeout) as grader:
        lang = args.lang or grader.rubric.lang
        if sandbox == "none":
            print("warning: running without a sandbox: the submission can read and write your files"
                  if lang == "en" else "警告：未使用沙箱运行，提交的代码可以读写你的文件", file=sys.stderr)
        for path in args.submission:
            result = grader.grade(path)
            print(table(result, lang))
            if args.json:
                Path(args.json).write_text(json.dumps(to_json(result, lang), ensure_ascii=False, indent=1),
                                           encoding="utf-8")
            if args.html:
                from .feedback import write_feedback
                write_feedback(result, args.html, lang, view=args.view, rubric=grader.rubric)
    return 0


def cmd_batch(args) -> int:
    from .assignments import choose, known_rubrics, split_by_assignment
    from .batch import run_batch
    groups = split_by_assignment(args.submissions) if not args.rubric else None
    if groups is None:
        groups = {"": Path(args.submissions)}
        rubrics = {"": choose(args.rubric, args.submissions, "batch")}
    else:           # several assignments, each against its own rubric, each into its own folder
        rubrics = {a: known_rubrics()[a] for a in groups}
    for assignment, folder in groups.items():
        out = Path(args.out) / assignment if assignment else Path(args.out)
        summary = run_batch(folder, rubrics[assignment], out, jobs=args.jobs, force=args.force,
                            dask_address=args.dask, sandbox=args.sandbox, lang=args.lang, timeout=args.timeout)
        print(f"{assignment + ': ' if assignment else ''}{summary.total} submissions: {summary.graded} graded, "
              f"{summary.skipped} unchanged, {summary.failed} with problems; {summary.rate:.1f}/s. Results in "
              f"{summary.out_dir}/ (summary.html, grades.csv, gradebook.sqlite)")
        for student, why in summary.errors.items():
            print(f"  {student}: not graded: {why}", file=sys.stderr)
    return 0


def cmd_validate(args) -> int:
    from .assignments import choose
    from .sandbox import default_kind
    from .validate import validate
    args.rubric = choose(args.rubric, None, "validate")
    problems = validate(args.rubric, sandbox=args.sandbox or default_kind(), log=print)
    if problems:
        print(f"{args.rubric}: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(f"{args.rubric}: OK")
    return 0


def cmd_pack(args) -> int:
    from .assignments import choose
    from .pack import build_pack
    files = build_pack(choose(args.rubric, None, "pack"), args.out)
    print(f"pack written to {args.out}: " + ", ".join(f.name for f in files))
    return 0


def cmd_check(args) -> int:
    from .check import exit_code, junit_xml, open_checker
    from .feedback import write_feedback
    from .report import table
    sub = Path(args.submission)
    if not sub.exists():
        raise UsageError(f"{sub}: no such file; pass the notebook (.ipynb) or script (.py) you filled in")
    with open_checker(sub, args.checks, args.sandbox, args.timeout) as grader:
        lang = args.lang or grader.rubric.lang
        if grader.worker.kind == "none":
            print("warning: bubblewrap is not installed: your code runs without a sandbox" if lang == "en"
                  else "警告：未安装 bubblewrap，代码在沙箱外运行", file=sys.stderr)
        result = grader.grade(sub)
        print(table(result, lang))
        print(" public checks only: the grade also uses hidden cases" if lang == "en"
              else " 仅运行公开测试；最终成绩还包括隐藏测试")
        html = Path(args.html) if args.html else (sub if sub.is_dir() else sub.parent) / f"{sub.stem}.feedback.html"
        write_feedback(result, html, lang, view="student", rubric=grader.rubric)
        print(f" feedback: {html}")
        if args.junit:
            Path(args.junit).write_bytes(junit_xml(result, grader.rubric, lang))
        return exit_code(result, grader.rubric, args.fail_under)


def cmd_release(args) -> int:
    from .release import release
    written = release(args.solution, args.out, args.py)
    print("written: " + ", ".join(str(p) for p in written))
    return 0


def cmd_new(args) -> int:
    from .new import new_assignment, next_steps
    written = new_assignment(args.id, args.dir)
    print(f"created {args.id}, a tiny assignment that passes validate; edit it into yours (docs/authoring.md):")
    for path in written:
        print(f"  {path}")
    print("next:")
    for command in next_steps(args.id, args.dir):
        print(f"  {command}")
    return 0


def exit_without_teardown(code: int) -> None:
    """Exit as the interpreter would, minus its teardown: freeing torch's modules and objects one
    by one takes 0.3 s of every command (a tenth of a student's `check`), for nothing. What the
    teardown would do that matters still happens: other threads are joined, exit handlers run,
    output is flushed. Every file the grader writes is closed before `main` returns."""
    import atexit
    import os
    import threading
    for t in threading.enumerate():
        if t is not threading.main_thread() and not t.daemon:
            t.join()
    atexit._run_exitfuncs()       # CPython's own call at exit; handlers registered by libraries too
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a reader that went away (`| head`), a closed stream: nothing to save
            pass
    os._exit(code)


if __name__ == "__main__":
    exit_without_teardown(main())
