"""`grade.py review`: manual scores (a CSV or one at a time) recorded in the gradebook, the exports
and summary refreshed at once, and the written answers listed with the rubric's concepts each one
mentions. The gradebook itself (`gradebook.py`) only stores. The review web app (`--serve`,
`grader/serve/`) checks scores with `score_problem` and draws what they change with `show_scores`."""
from __future__ import annotations

import csv
import difflib
import getpass
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .gradebook import Gradebook, Override, ScoreChange, ScoreConflict
from .redraw import Snapshots, open_batch, redraw_pages, refresh_exports
from .serve.text import ConceptFinder, words


@dataclass(frozen=True)
class ReviewOutcome:
    recorded: tuple[Override, ...]
    stale_pages: tuple[str, ...]     # feedback pages redrawn by the next `batch` run (runs without a record)
    listing: str                     # what to show the instructor

    def __str__(self) -> str:
        return self.listing


def concept_hits(answer: str, concepts) -> list[tuple[str, str | None]]:
    """(concept, the keyword found or None) per concept: a suggestion for the reviewer, never a grade
    (found among the answer's words, `serve/text.py`)."""
    matches = ConceptFinder(concepts).find(words(answer or ""))
    return [(c.label, next((m.word for m in matches if m.concept == n), None)) for n, c in enumerate(concepts)]


def score_problem(run, student: str, item: str, points) -> str | None:
    """Why this manual score cannot be recorded (naming the student, item and fix), or None."""
    if run is None:
        return f"no graded submission for student {student!r}"
    maxes = {i["id"]: i["max_points"] for i in run.result["items"]}
    if item not in maxes:
        close = difflib.get_close_matches(item, maxes, n=1)
        return f"{student}: no item {item!r}" + (f"; did you mean {close[0]!r}?" if close else "")
    if points is None:
        return None                   # clearing a manual score
    try:
        points = float(points)
    except (TypeError, ValueError):
        return f"{student} {item}: points {points!r} is not a number"
    if not 0 <= points <= maxes[item]:
        return f"{student} {item}: points {points:g} outside 0..{maxes[item]:g}"
    return None


def record_scores(out: Path, book: Gradebook, changes) -> tuple[list[Override], list[ScoreConflict]]:
    """Record manual scores (one transaction) and bring what they change up to date at once.
    Changes whose answer someone else scored since the writer looked come back as conflicts,
    unrecorded."""
    recorded, conflicts = book.add_overrides(changes)
    if recorded:
        show_scores(out, book, {o.student for o in recorded})
    return recorded, conflicts


def show_scores(out: Path, book: Gradebook, students: set[str]) -> None:
    """What the students' manual scores change, drawn again from the gradebook: their feedback
    pages (from their stored records: nobody's code runs), their results and Gradescope exports,
    grades.csv and the summary."""
    if (out / "feedback").is_dir():
        redraw_pages(out, book, students)
    refresh_exports(out, book, students)


def cli_author() -> str:
    """Who gave a score on the command line, for the score's history."""
    try:
        return f"{getpass.getuser()} (command line)"
    except (KeyError, OSError):          # no user name in this environment (a container's bare uid)
        return "command line"


def review(out_dir, csv_path=None, student=None, item=None, points=None, comment=None) -> ReviewOutcome:
    """Record manual scores (a CSV of student,item,points,comment, or one given here) and refresh the
    exports; with no points, list the written answers with the concepts each mentions. Raises
    UsageError, recording nothing, when any row names an unknown student or item or a bad score."""
    out = Path(out_dir)
    with open_batch(out) as book:
        runs = book.latest()
        rows = []
        if csv_path is not None:
            rows = _read_csv(Path(csv_path))
        elif points is not None:
            if not (student and item):
                raise UsageError("a manual score needs --student, --item and --points")
            rows = [(0, student, item, points, comment or "")]
        problems = []
        checked = []
        author = cli_author()
        for line, s, it, p, c in rows:
            where = f"line {line}: " if line else ""
            problem = score_problem(runs.get(s), s, it, p)
            if problem:
                problems.append(where + problem)
                continue
            checked.append(ScoreChange(s, it, float(p), c, author))
        if problems:
            raise UsageError("no manual score was recorded:\n  " + "\n  ".join(problems))
        # no `seen`: a CSV is the instructor's last word, whatever was scored since (the history keeps it)
        recorded = tuple(record_scores(out, book, checked)[0]) if checked else ()
        listing = _listing(book, runs, student, item) if not recorded else \
            f"recorded {len(recorded)} manual score(s) for {len({o.student for o in recorded})} student(s)"
        stale = tuple(sorted(book.stale_pages())) if (out / "feedback").is_dir() else ()
        if stale and recorded:
            listing += (f"\n{len(stale)} feedback page(s), graded before records were kept, will show the new scores after the next "
                        "`grade.py batch` run (it redraws only those)")
        return ReviewOutcome(recorded, stale, listing)


def _read_csv(path: Path) -> list[tuple]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot be read as UTF-8 CSV ({e})")
    reader = csv.reader(text.splitlines())
    rows = []
    for n, row in enumerate(reader, 1):
        if not row or not any(x.strip() for x in row):
            continue
        if n == 1 and [x.strip().lower() for x in row[:3]] == ["student", "item", "points"]:
            continue       # a header row
        if len(row) < 3:
            raise UsageError(f"{path}, line {n}: expected student,item,points[,comment], got {','.join(row)!r}")
        rows.append((n, row[0].strip(), row[1].strip(), row[2].strip(), (row[3] if len(row) > 3 else "").strip()))
    return rows


def _listing(book: Gradebook, runs: dict, student, item) -> str:
    """The written answers with any manual score: for a class, each answer's opening line; for one
    student, the whole answers and the concepts each mentions."""
    if not runs:
        return "the gradebook is empty"
    snap = Snapshots(book).get(next(iter(runs.values())).rubric_sha256)
    rubric = snap[0] if snap is not None else None     # concepts are suggestions: without them, none
    written = {i.id for i in rubric.items if i.kind == "written"} if rubric is not None else None
    overrides = book.overrides()
    lines = []
    for s in ([student] if student else sorted(runs)):
        run = runs.get(s)
        if run is None:
            lines.append(f"{s}: no graded submission")
            continue
        for it in run.result["items"]:
            is_written = it["id"] in written if written is not None else it["status"] == "manual"
            if (item and it["id"] != item) or (not item and not is_written):
                continue
            answer = (it.get("answer") or "").strip()
            o = overrides.get(s, {}).get(it["id"])
            mark = (f"manual score {o.points:g}/{it['max_points']:g}" + (f" by {o.author}" if o.author else "")
                    + (f" ({o.comment})" if o.comment else "")) if o else \
                f"awaiting review (0/{it['max_points']:g})" if answer else f"no answer (0/{it['max_points']:g})"
            lines.append(f"{s}  {it['id']}: {mark}")
            if not student:      # a class: each answer's start, one line, so the listing stays readable
                if answer:
                    lines.append("    " + _excerpt(answer))
                continue
            lines.append("    answer: " + (answer.replace("\n", "\n            ") if answer else "(none)"))
            try:
                concepts = rubric.item(it["id"]).concepts if rubric is not None else ()
            except KeyError:
                concepts = ()
            for name, found in concept_hits(answer, concepts) if answer else ():
                lines.append(f"    {'✓' if found else '·'} {name}" + (f"  (\"{found}\")" if found else ""))
    return "\n".join(lines) or "nothing awaits review"


def _excerpt(answer: str, width: int = 100) -> str:
    flat = " ".join(answer.split())
    return flat if len(flat) <= width else flat[:width - 1] + "…"
