"""The gradebook: one SQLite file (stdlib sqlite3, WAL) that keeps every grading run and every
manual score, and answers "what is this student's grade now".

- `runs` is append-only: a regrade adds a row, so history is never lost. The current grade is the
  student's latest run with the manual scores (`overrides`) laid over it.
- `overrides` is append-only too; the latest row per (student, item) wins, `points IS NULL` clears it.
  Automatic regrades never touch it, which is what makes a manual score survive `--force`. Each row
  is also the score's history: who gave it, when, and the points it replaced. A writer may say which
  row it saw in force (`ScoreChange.seen`): when another has been added since, nothing is written
  and the conflict is returned, so two reviewers never silently overwrite each other.
- Only the coordinator writes, one transaction per submission, so a crash (even kill -9) loses at
  most the submission being graded, and a rerun sees exactly what was committed.
"""
from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import GraderError
from .model import GradeResult, Text

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    student TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    rubric_sha256 TEXT NOT NULL,
    grader_version TEXT NOT NULL,
    graded_at REAL NOT NULL,
    seconds REAL NOT NULL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    failed TEXT,                 -- why the submission could not be graded normally, or NULL
    own_code TEXT NOT NULL,      -- JSON {region: source}: the student's own code, for similarity
    result TEXT NOT NULL         -- the automatic result, JSON schema 1 (no manual scores in it)
);
CREATE INDEX IF NOT EXISTS runs_student ON runs (student, id);
CREATE TABLE IF NOT EXISTS overrides (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    student TEXT NOT NULL,
    item TEXT NOT NULL,
    points REAL,                 -- NULL clears an earlier manual score
    comment TEXT NOT NULL,
    created_at REAL NOT NULL,
    author TEXT NOT NULL DEFAULT '',  -- who scored ('' in rows from before it was kept)
    old_points REAL               -- the manual score this one replaced, NULL when there was none
);
CREATE INDEX IF NOT EXISTS overrides_student ON overrides (student, item, id);
-- which override a student's feedback page already shows (a later one makes the page stale)
CREATE TABLE IF NOT EXISTS pages (
    student TEXT PRIMARY KEY,
    override_id INTEGER NOT NULL
);
-- the whole result of a run (grader/record.py): what pages, exports and reviews are drawn from
CREATE TABLE IF NOT EXISTS records (
    run INTEGER PRIMARY KEY,     -- runs.id
    record BLOB NOT NULL,        -- the GradeResult as JSON
    tensors BLOB NOT NULL        -- its values, safetensors (the reference's: in its snapshot)
);
-- the rubric a run was graded with, as its pages need it, and the reference's shown values
CREATE TABLE IF NOT EXISTS snapshots (
    rubric_sha256 TEXT PRIMARY KEY,   -- runs.rubric_sha256
    rubric TEXT NOT NULL,             -- the public rubric TOML (pack format) with the written items' concepts
    tensors BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class Snapshot:
    rubric_toml: str
    tensors: bytes


@dataclass(frozen=True)
class Run:
    id: int
    student: str
    content_sha256: str
    rubric_sha256: str
    grader_version: str
    graded_at: float
    seconds: float
    score: float
    max_score: float
    failed: str | None
    own_code: dict
    result: dict


# Columns added to a table after gradebooks were already in use: (table, column, declaration).
# Opening an older gradebook adds them, so it keeps working, and older graders can still write it.
_ADDED_COLUMNS = (("overrides", "author", "TEXT NOT NULL DEFAULT ''"), ("overrides", "old_points", "REAL"))


@dataclass(frozen=True)
class Override:
    """A manual score (a row of `overrides`). `points` is None only for a row that cleared one, as
    `override_heads` and `score_history` return them; `overrides()` leaves those out."""
    student: str
    item: str
    points: float | None
    comment: str
    created_at: float
    id: int = 0
    author: str = ""
    old_points: float | None = None


@dataclass(frozen=True)
class ScoreChange:
    """A manual score to record. `seen`: the id of the row the writer saw in force for this answer
    (0: none); None records it whatever happened since (the command line's CSV)."""
    student: str
    item: str
    points: float | None
    comment: str = ""
    author: str = ""
    seen: int | None = None


@dataclass(frozen=True)
class ScoreConflict:
    """A change not recorded: someone else's score (`current`, None if it was cleared) came first."""
    change: ScoreChange
    current: Override | None


class StaleScore(GraderError):
    """A manual score given against an older state of the answer than the gradebook's."""


class Gradebook:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we open transactions ourselves, one per submission.
        self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable against process crashes in WAL mode (only power loss can drop the last
        # commits), and saves an fsync per submission.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        def missing():
            have = {(t, row[1]) for t in {t for t, _, _ in _ADDED_COLUMNS}
                    for row in self.db.execute(f"PRAGMA table_info({t})")}
            return [(t, c, d) for t, c, d in _ADDED_COLUMNS if (t, c) not in have]
        if not missing():
            return
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for table, column, declaration in missing():      # again: another process may have added them
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- runs ------------------------------------------------------------------------------------
    def add_run(self, student: str, content_sha256: str, rubric_sha256: str, grader_version: str,
                seconds: float, failed: str | None, own_code: dict, result: dict,
                page_override_id: int | None = None, result_json: str | None = None,
                record: tuple[bytes, bytes] | None = None) -> Run:
        """Store a run (one transaction) and return it as `latest` would. `result_json`: the result
        already serialised by the caller, to spare a second encoding of the same dict. `record`:
        the whole result (record JSON, tensors), stored with the run."""
        graded_at = time.time()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            cur = self.db.execute(
                "INSERT INTO runs (student, content_sha256, rubric_sha256, grader_version, graded_at, seconds, "
                "score, max_score, failed, own_code, result) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (student, content_sha256, rubric_sha256, grader_version, graded_at, seconds,
                 float(result["score"]), float(result["max_score"]), failed,
                 json.dumps(own_code, ensure_ascii=False), result_json or json.dumps(result, ensure_ascii=False)))
            if record is not None:
                self.db.execute("INSERT INTO records (run, record, tensors) VALUES (?, ?, ?)", (cur.lastrowid, *record))
            if page_override_id is not None:
                self.db.execute("INSERT OR REPLACE INTO pages (student, override_id) VALUES (?, ?)",
                                (student, page_override_id))
        return Run(id=cur.lastrowid, student=student, content_sha256=content_sha256, rubric_sha256=rubric_sha256,
                   grader_version=grader_version, graded_at=graded_at, seconds=seconds, score=float(result["score"]),
                   max_score=float(result["max_score"]), failed=failed, own_code=own_code, result=result)

    def latest(self, student: str | None = None, known: dict[str, Run] | None = None,
               keep: Callable[[dict], dict] | None = None) -> dict[str, Run]:
        """The current run of every student (or of one). `known`: runs the caller holds already
        (a batch's own); where one is still the latest, it is used instead of parsing its JSON.
        `keep`: what to hold of each result read (a class's worth of whole results is large)."""
        if student is not None:     # the index (student, id): not the whole class's latest, filtered
            rows = self.db.execute("SELECT * FROM runs WHERE student = ? ORDER BY id DESC LIMIT 1", (student,))
        else:
            rows = self.db.execute("SELECT r.* FROM runs r JOIN (SELECT student, MAX(id) AS id FROM runs GROUP BY "
                                   "student) m ON r.id = m.id ORDER BY r.student")
        known = known or {}
        return {row[1]: known[row[1]] if row[1] in known and known[row[1]].id == row[0] else _run(row, keep)
                for row in rows}

    def fingerprints(self) -> dict[str, tuple[str, str, str]]:
        """student -> (content, rubric, grader version) of the latest run: enough to decide what to skip
        without parsing every stored result."""
        rows = self.db.execute(
            "SELECT r.student, r.content_sha256, r.rubric_sha256, r.grader_version FROM runs r JOIN "
            "(SELECT student, MAX(id) AS id FROM runs GROUP BY student) m ON r.id = m.id")
        return {s: (c, rb, v) for s, c, rb, v in rows}

    def history(self, student: str) -> list[Run]:
        return [_run(r) for r in self.db.execute("SELECT * FROM runs WHERE student = ? ORDER BY id", (student,))]

    def count_runs(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def record(self, run_id: int) -> tuple[bytes, bytes] | None:
        """(record JSON, tensors) of a run; None for a run stored before records were kept."""
        row = self.db.execute("SELECT record, tensors FROM records WHERE run = ?", (run_id,)).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def has_snapshot(self, rubric_sha256: str) -> bool:
        return self.db.execute("SELECT 1 FROM snapshots WHERE rubric_sha256 = ?", (rubric_sha256,)).fetchone() is not None

    def add_snapshot(self, rubric_sha256: str, rubric_toml: str, tensors: bytes) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR IGNORE INTO snapshots (rubric_sha256, rubric, tensors) VALUES (?, ?, ?)",
                            (rubric_sha256, rubric_toml, tensors))

    def snapshot(self, rubric_sha256: str) -> Snapshot | None:
        row = self.db.execute("SELECT rubric, tensors FROM snapshots WHERE rubric_sha256 = ?",
                              (rubric_sha256,)).fetchone()
        return None if row is None else Snapshot(row[0], bytes(row[1]))

    def page_drawn(self, student: str, override_id: int) -> None:
        """The student's page now shows the manual scores up to this override."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR REPLACE INTO pages (student, override_id) VALUES (?, ?)", (student, override_id))

    # -- manual scores ---------------------------------------------------------------------------
    def add_override(self, student: str, item: str, points: float | None, comment: str, author: str = "",
                     seen: int | None = None) -> int:
        """Record one manual score and return its id; StaleScore when `seen` is given and no longer
        the row in force (see ScoreChange)."""
        recorded, conflicts = self.add_overrides([ScoreChange(student, item, points, comment, author, seen)])
        if conflicts:
            now = conflicts[0].current
            given = "no score" if now is None or now.points is None else f"{now.points:g}"
            raise StaleScore(f"{student} {item}: scored {given} by {(now.author if now else '') or 'someone'} since "
                             f"override {seen} you saw; look at it again, then score it")
        return recorded[0].id

    def add_overrides(self, changes) -> tuple[list[Override], list[ScoreConflict]]:
        """Record manual scores in one transaction (a group's, at once): each one whose `seen` is
        still the row in force, or that has no `seen`; the others come back as conflicts."""
        recorded, conflicts = [], []
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")     # the check and the write see the same gradebook
            for ch in changes:
                head = self._head(ch.student, ch.item)
                if ch.seen is not None and (head.id if head else 0) != ch.seen:
                    conflicts.append(ScoreConflict(ch, head))
                    continue
                at = time.time()
                old = head.points if head else None
                row = self.db.execute("INSERT INTO overrides (student, item, points, comment, created_at, author, "
                                      "old_points) VALUES (?,?,?,?,?,?,?)",
                                      (ch.student, ch.item, ch.points, ch.comment, at, ch.author, old)).lastrowid
                recorded.append(Override(ch.student, ch.item, ch.points, ch.comment, at, row, ch.author, old))
        return recorded, conflicts

    def _head(self, student: str, item: str) -> Override | None:
        row = self.db.execute(f"SELECT {_OVERRIDE_FIELDS} FROM overrides WHERE student = ? AND item = ? "
                              "ORDER BY id DESC LIMIT 1", (student, item)).fetchone()
        return None if row is None else _override(row)

    def override_heads(self, item: str | None = None) -> dict[tuple[str, str], Override]:
        """(student, item) -> the latest row, a cleared score's too: what a reviewer sees and
        names as `seen` when scoring."""
        sql = (f"SELECT {_OVERRIDE_FIELDS} FROM overrides WHERE id IN "
               "(SELECT MAX(id) FROM overrides GROUP BY student, item)")
        args: tuple = ()
        if item is not None:
            sql += " AND item = ?"
            args = (item,)
        return {(o.student, o.item): o for o in map(_override, self.db.execute(sql, args))}

    def score_history(self, student: str, item: str | None = None) -> list[Override]:
        """Every manual score given to a student (or one of their answers), oldest first."""
        sql = f"SELECT {_OVERRIDE_FIELDS} FROM overrides WHERE student = ?"
        args: tuple = (student,)
        if item is not None:
            sql += " AND item = ?"
            args += (item,)
        return [_override(r) for r in self.db.execute(sql + " ORDER BY id", args)]

    def overrides(self, student: str | None = None) -> dict[str, dict[str, Override]]:
        """student -> item -> the manual score in force (cleared ones left out)."""
        sql = (f"SELECT {_OVERRIDE_FIELDS} FROM overrides WHERE id IN "
               "(SELECT MAX(id) FROM overrides GROUP BY student, item)")
        args: tuple = ()
        if student is not None:
            sql += " AND student = ?"
            args = (student,)
        out: dict[str, dict[str, Override]] = {}
        for o in map(_override, self.db.execute(sql, args)):
            if o.points is not None:
                out.setdefault(o.student, {})[o.item] = o
        return out

    def last_override_ids(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT student, MAX(id) FROM overrides GROUP BY student"))

    def stale_pages(self) -> set[str]:
        """Students whose feedback page predates their latest manual score."""
        rows = self.db.execute(
            "SELECT o.student FROM (SELECT student, MAX(id) AS id FROM overrides GROUP BY student) o "
            "LEFT JOIN pages p ON p.student = o.student WHERE p.override_id IS NULL OR p.override_id < o.id")
        return {r[0] for r in rows}


_OVERRIDE_FIELDS = "student, item, points, comment, created_at, id, author, old_points"


def _override(row) -> Override:
    return Override(*row[:6], author=row[6] or "", old_points=row[7])


def _run(row, keep: Callable[[dict], dict] | None = None) -> Run:
    result = json.loads(row[11])
    return Run(id=row[0], student=row[1], content_sha256=row[2], rubric_sha256=row[3], grader_version=row[4],
               graded_at=row[5], seconds=row[6], score=row[7], max_score=row[8], failed=row[9],
               own_code=json.loads(row[10]), result=keep(result) if keep is not None else result)


# -- the current grade: the automatic result with the manual scores laid over it -------------------
def overridden(status: str, max_points: float, message: Text, o: Override) -> tuple[str, float, Text]:
    """What a manual score makes of an item, wherever it is shown (a page's GradeResult, an export's
    JSON): its status and points, and its message (the automatic one kept after an override)."""
    zh = f"教师评分 {o.points:g} 分" + (f"：{o.comment}" if o.comment else "")
    en = f"Instructor's score {o.points:g}" + (f": {o.comment}" if o.comment else "")
    msg = Text(zh, en)
    if status != "manual":        # an override of an automatic item: keep what the grader said
        msg = msg + Text(f"（自动评分：{message.zh}）", f" (automatic: {message.en})")
    new = "pass" if o.points >= max_points else "fail" if o.points <= 0 else "partial"
    return new, float(o.points), msg


def apply_overrides(result: GradeResult, overrides: dict[str, Override]) -> GradeResult:
    """The result a student sees: manual scores replace the automatic ones, with the comment."""
    if not overrides:
        return result
    items = []
    for it in result.items:
        o = overrides.get(it.id)
        if o is not None:
            status, points, msg = overridden(it.status, it.max_points, it.message, o)
            it = dataclasses.replace(it, status=status, points=points, message=msg)
        items.append(it)
    return dataclasses.replace(result, items=tuple(items))


def apply_overrides_json(result: dict, overrides: dict[str, Override]) -> dict:
    """Same as `apply_overrides`, on the stored JSON (exports are built from the gradebook alone):
    the JSON holds one language's message, which stands for both."""
    if not overrides:
        return result
    lang = result.get("lang", "zh")
    out = dict(result, items=[])
    for it in result["items"]:
        o = overrides.get(it["id"])
        if o is not None:
            status, points, msg = overridden(it["status"], it["max_points"], Text.same(it["message"]), o)
            it = dict(it, status=status, points=points, message=msg(lang),
                      manual={"points": o.points, "comment": o.comment})
        out["items"].append(it)
    out["score"] = round(sum(i["points"] for i in out["items"]), 4)
    return out
