"""The gradebook: one SQLite file (stdlib sqlite3, WAL) that keeps every grading run and every
manual score, and answers "what is this student's grade now".

- `runs` is append-only: a regrade adds a row, so history is never lost. The current grade is the
  student's latest run with the manual scores (`overrides`) laid over it.
- `overrides` is append-only too; the latest row per (student, item) wins, `points IS NULL` clears it.
  Automatic regrades never touch it, which is what makes a manual score survive `--force`.
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
    created_at REAL NOT NULL
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


@dataclass(frozen=True)
class Override:
    student: str
    item: str
    points: float
    comment: str
    created_at: float


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

    def latest(self, student: str | None = None, known: dict[str, Run] | None = None) -> dict[str, Run]:
        """The current run of every student (or of one). `known`: runs the caller holds already
        (a batch's own); where one is still the latest, it is used instead of parsing its JSON."""
        sql = ("SELECT r.* FROM runs r JOIN (SELECT student, MAX(id) AS id FROM runs GROUP BY student) m "
               "ON r.id = m.id")
        args: tuple = ()
        if student is not None:
            sql += " WHERE r.student = ?"
            args = (student,)
        known = known or {}
        return {row[1]: known[row[1]] if row[1] in known and known[row[1]].id == row[0] else _run(row)
                for row in self.db.execute(sql + " ORDER BY r.student", args)}

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
    def add_override(self, student: str, item: str, points: float | None, comment: str) -> int:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db.execute("INSERT INTO overrides (student, item, points, comment, created_at) "
                                   "VALUES (?,?,?,?,?)", (student, item, points, comment, time.time())).lastrowid

    def overrides(self, student: str | None = None) -> dict[str, dict[str, Override]]:
        """student -> item -> the manual score in force (cleared ones left out)."""
        sql = ("SELECT o.student, o.item, o.points, o.comment, o.created_at FROM overrides o JOIN "
               "(SELECT student, item, MAX(id) AS id FROM overrides GROUP BY student, item) m ON o.id = m.id")
        args: tuple = ()
        if student is not None:
            sql += " WHERE o.student = ?"
            args = (student,)
        out: dict[str, dict[str, Override]] = {}
        for s, item, points, comment, at in self.db.execute(sql, args):
            if points is not None:
                out.setdefault(s, {})[item] = Override(s, item, points, comment, at)
        return out

    def last_override_ids(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT student, MAX(id) FROM overrides GROUP BY student"))

    def stale_pages(self) -> set[str]:
        """Students whose feedback page predates their latest manual score."""
        rows = self.db.execute(
            "SELECT o.student FROM (SELECT student, MAX(id) AS id FROM overrides GROUP BY student) o "
            "LEFT JOIN pages p ON p.student = o.student WHERE p.override_id IS NULL OR p.override_id < o.id")
        return {r[0] for r in rows}


def _run(row) -> Run:
    return Run(id=row[0], student=row[1], content_sha256=row[2], rubric_sha256=row[3], grader_version=row[4],
               graded_at=row[5], seconds=row[6], score=row[7], max_score=row[8], failed=row[9],
               own_code=json.loads(row[10]), result=json.loads(row[11]))


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
