"""`grade.py redraw OUT`: the feedback pages, the summary and the exports drawn again from what a
batch stored, each run's record and the snapshot of the rubric it was graded with (both in the
gradebook): no sandbox, no student files, no reference package, no rubric path. A manual score
redraws its student's page this way (`review`), and a new page design reaches a whole class
without running anyone's code again.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import exports, record
from .errors import UsageError
from .feedback import render_feedback
from .gradebook import Gradebook, apply_overrides
from .pack import load_pack_rubric
from .similarity import find_pairs


@dataclass(frozen=True)
class Redrawn:
    pages: tuple[str, ...]           # students whose page was drawn again
    missing: tuple[str, ...]         # runs stored without a record (an older gradebook): grade again


def open_batch(out: Path) -> Gradebook:
    """The gradebook of a batch's output folder, which must exist (redraw and review only read and add)."""
    path = out / "gradebook.sqlite"
    if not path.exists():
        raise UsageError(f"{path} does not exist; run `grade.py batch ... --out {out}` first")
    return Gradebook(path)


def redraw(out_dir, students: set[str] | None = None) -> Redrawn:
    out = Path(out_dir)
    with open_batch(out) as book:
        runs = book.latest()
        unknown = sorted((students or set()) - set(runs))
        if unknown:
            raise UsageError(f"no graded submission for {', '.join(map(repr, unknown))} in {book.path}")
        done = redraw_pages(out, book, set(runs) if students is None else students)
        refresh_exports(out, book, set(runs) if students is None else students)
    return done


class Snapshots:
    """The rubric (and the reference's shown values) a run was graded with, read once each."""

    def __init__(self, book: Gradebook):
        self.book, self._seen = book, {}

    def get(self, key: str):
        if key not in self._seen:
            snap = self.book.snapshot(key)
            self._seen[key] = None if snap is None else (
                load_pack_rubric(self.book.path.with_name(f"rubric-{key[:12]}.toml"), text=snap.rubric_toml),
                record.load_values(snap.tensors))
        return self._seen[key]


def redraw_pages(out: Path, book: Gradebook, students: set[str]) -> Redrawn:
    if not students:      # the usual case after a batch: parsing every stored result for nothing cost 0.2 s / 200
        return Redrawn((), ())
    runs = book.latest()
    overrides = book.overrides()
    last = book.last_override_ids()
    snapshots = Snapshots(book)
    drawn, missing = [], []
    for student in sorted(students):
        run = runs.get(student)
        kept = book.record(run.id) if run is not None else None
        snap = snapshots.get(run.rubric_sha256) if kept is not None else None
        if snap is None:
            missing.append(student)
            continue
        rubric, shared = snap
        result = apply_overrides(record.load(*kept, shared), overrides.get(student, {}))
        page = out / "feedback" / f"{student}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        tmp = page.with_name(page.name + ".tmp")
        tmp.write_text(render_feedback(result, run.result.get("lang") or rubric.lang, rubric=rubric), encoding="utf-8")
        os.replace(tmp, page)
        book.page_drawn(student, last.get(student, 0))
        drawn.append(student)
    return Redrawn(tuple(drawn), tuple(missing))


def refresh_exports(out: Path, book: Gradebook, students: set[str]) -> None:
    """The students' exports, the whole CSV and the summary page, from the gradebook alone."""
    runs = book.latest()
    if not runs:
        return
    snap = Snapshots(book).get(next(iter(runs.values())).rubric_sha256)
    if snap is None:
        raise UsageError(f"{book.path} holds no snapshot of its rubric (a gradebook from an older grader): "
                         "run `grade.py batch` once to store it")
    rubric = snap[0]
    any_run = next(iter(runs.values()))
    grades = exports.write_all(out, book, [i.id for i in rubric.items], students)
    pairs, n = find_pairs({s: c.run.own_code for s, c in grades.items()})
    exports.render_summary(out, exports.summary_data(grades, rubric, any_run.result.get("lang") or rubric.lang,
                                                     pairs, n, {}, exports.pages(out)))
