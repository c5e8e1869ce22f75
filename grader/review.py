"""`grade.py review`: manual scores (a CSV or one at a time) recorded in the gradebook, the exports
and summary refreshed at once, and the written answers listed with the rubric's concepts each one
mentions. The gradebook itself (`gradebook.py`) only stores."""
from __future__ import annotations

import csv
import difflib
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .gradebook import Gradebook, Override
from .redraw import Snapshots, open_batch, redraw_pages, refresh_exports


@dataclass(frozen=True)
class ReviewOutcome:
    recorded: tuple[Override, ...]
    stale_pages: tuple[str, ...]     # feedback pages redrawn by the next `batch` run (runs without a record)
    listing: str                     # what to show the instructor

    def __str__(self) -> str:
        return self.listing


def concept_hits(answer: str, concepts) -> list[tuple[str, str | None]]:
    """(concept, the keyword found or None) per concept: a suggestion for the reviewer, never a grade."""
    low = (answer or "").lower()
    out = []
    for c in concepts:
        found = next((w for w in c.words if w.lower() in low), None)
        out.append((c.label, found))
    return out


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
        for line, s, it, p, c in rows:
            where = f"line {line}: " if line else ""
            run = runs.get(s)
            if run is None:
                problems.append(f"{where}no graded submission for student {s!r}")
                continue
            maxes = {i["id"]: i["max_points"] for i in run.result["items"]}
            if it not in maxes:
                close = difflib.get_close_matches(it, maxes, n=1)
                problems.append(f"{where}{s}: no item {it!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
                continue
            try:
                p = float(p)
            except (TypeError, ValueError):
                problems.append(f"{where}{s} {it}: points {p!r} is not a number")
                continue
            if not 0 <= p <= maxes[it]:
                problems.append(f"{where}{s} {it}: points {p:g} outside 0..{maxes[it]:g}")
                continue
            checked.append((s, it, p, c))
        if problems:
            raise UsageError("no manual score was recorded:\n  " + "\n  ".join(problems))
        for s, it, p, c in checked:
            book.add_override(s, it, p, c)
        recorded = tuple(Override(s, it, p, c, 0.0) for s, it, p, c in checked)
        if recorded:
            students = {o.student for o in recorded}
            # their pages at once, from their records: nobody's code runs again
            if (out / "feedback").is_dir():
                redraw_pages(out, book, students)
            refresh_exports(out, book, students)
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
    """Written answers awaiting review, each with its concept suggestions and any manual score."""
    if not runs:
        return "the gradebook is empty"
    snap = Snapshots(book).get(next(iter(runs.values())).rubric_sha256)
    rubric = snap[0] if snap is not None else None     # concepts are suggestions: without them, none
    overrides = book.overrides()
    lines = []
    for s in ([student] if student else sorted(runs)):
        run = runs.get(s)
        if run is None:
            lines.append(f"{s}: no graded submission")
            continue
        for it in run.result["items"]:
            if (item and it["id"] != item) or (not item and it["status"] != "manual"):
                continue
            o = overrides.get(s, {}).get(it["id"])
            mark = f"manual score {o.points:g}/{it['max_points']:g} ({o.comment})" if o else \
                f"awaiting review (0/{it['max_points']:g})"
            lines.append(f"{s}  {it['id']}: {mark}")
            if student:          # the answers themselves only for one student: a class would flood
                answer = (it.get("answer") or "").strip()
                lines.append("    answer: " + (answer.replace("\n", "\n            ") if answer else "(none)"))
                try:
                    concepts = rubric.item(it["id"]).concepts if rubric is not None else ()
                except KeyError:
                    concepts = ()
                for name, found in concept_hits(answer, concepts):
                    lines.append(f"    {'✓' if found else '·'} {name}" + (f"  (\"{found}\")" if found else ""))
    return "\n".join(lines) or "nothing awaits review"
