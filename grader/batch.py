"""`grade.py batch`: grade a folder of submissions on every core, resumably, into a gradebook.

Shape: the coordinator (this process, one thread) decides what needs grading, hands `Task`s to
executors and is the only writer of the gradebook and the output folder. An executor turns a Task
into a `Graded` (plain, picklable) with a Grader it keeps warm: threads here (each owns one Grader;
the sandbox worker is a subprocess, so the GIL is free while a job runs), processes, or Dask workers
(`distributed.py`). Each Graded is committed at once, one transaction per submission, so an
interrupted batch loses nothing already graded and a rerun skips it (same content, rubric and grader).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .executors import Config, Executor, Graded, Task, run_processes, run_threads
from .gradebook import Gradebook
from .load import IGNORED

VERSION = "0.1.0"
# What a grade depends on, listed (not what it does not: a new module would then regrade every
# class): the pipeline's modules, from loading a submission to its JSON result, the sandbox folder
# whole. tests/test_batch.py checks that this covers everything `pipeline` imports. Editing anything
# else (pages, exports, the pack, the CLI) regrades nobody; a new page design: `batch --force`.
ENGINE = ("pipeline.py", "load.py", "blanks.py", "run.py", "sandbox", "expected.py", "compare.py", "score.py",
          "diagnose.py", "rubric.py", "contract.py", "contract_parse.py", "model.py", "errors.py", "report.py")


# -- what is graded, and its identity -------------------------------------------------------------
def discover(root: str | Path) -> list[tuple[str, Path]]:
    """(student, path): one per folder, or one per file at the top level. Anything odd in a folder
    (two notebooks, no notebook) is the Grader's to report, as that student's result."""
    root = Path(root)
    found = []
    for p in sorted(root.iterdir()):
        if p.name.startswith(".") or p.name == "__MACOSX":
            continue
        if p.is_dir():
            found.append((p.name, p))
        elif p.is_file() and not IGNORED.match(p.name):
            found.append((p.stem, p))
    stems = [s for s, _ in found]
    # a.ipynb and a.py side by side would share an id: fall back to the whole file name for those
    return [(p.name if p.is_file() and stems.count(s) > 1 else s, p) for s, p in found]


def content_hash(path: Path) -> str:
    """Every file of a student's folder (names and bytes), so any change to what they handed in
    counts, including a second file that makes the submission ambiguous."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path.parent if path.is_file() else path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def tree_hash(paths) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def rubric_hash(rubric) -> str:
    """The rubric file and its reference package: a fixed reference answer changes every grade."""
    ref = [p for p in Path(rubric.reference).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return rubric.sha256[:32] + "+" + tree_hash(ref)


def grader_version() -> str:
    here = Path(__file__).parent
    engine = [f for name in ENGINE for f in ((here / name).rglob("*.py") if (here / name).is_dir() else [here / name])
              if "__pycache__" not in f.parts]
    return f"{VERSION}+{tree_hash(engine)}"


# -- the coordinator -------------------------------------------------------------------------------
@dataclass
class BatchSummary:
    out_dir: Path
    total: int = 0
    graded: int = 0
    skipped: int = 0
    failed: int = 0                   # graded, but could not be loaded or hit a limit
    errors: dict = field(default_factory=dict)   # student -> grader error (not committed; retried next run)
    page_errors: dict = field(default_factory=dict)   # student -> why the page is missing (redrawn next run)
    seconds: float = 0.0
    similar_pairs: int = 0

    @property
    def rate(self) -> float:
        return self.graded / self.seconds if self.seconds else 0.0


class Progress:
    def __init__(self, total: int, enabled: bool, stream=sys.stderr):
        self.total, self.enabled, self.stream = total, enabled, stream
        self.done = self.failed = 0
        self.t0 = self.last = time.monotonic()
        self.tty = enabled and stream.isatty()
        if enabled and total:
            self.draw(self.t0)     # at once: the sandboxes take a second or two to boot before the first result

    def step(self, failed: bool) -> None:
        self.done += 1
        self.failed += failed
        now = time.monotonic()
        # on a terminal redraw at most 10 times a second; in a log, a line every 5 s
        if self.enabled and (now - self.last >= (0.1 if self.tty else 5.0) or self.done == self.total):
            self.last = now
            self.draw(now)

    def draw(self, now: float) -> None:
        rate = self.done / max(now - self.t0, 1e-9)
        eta = (self.total - self.done) / rate if rate else 0
        width = 24
        fill = int(width * self.done / max(self.total, 1))
        pace = f"{rate:.1f}/s, ETA {int(eta) // 60}:{int(eta) % 60:02d}" if self.done else "starting the sandboxes"
        line = f"[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} graded, {self.failed} failed, {pace}"
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def make_config(rubric, sandbox: str, timeout: float | None, lang: str | None) -> Config:
    return Config(rubric_path=str(rubric.path), sandbox=sandbox, timeout=timeout, lang=lang or rubric.lang,
                  functions=frozenset(i.name for i in rubric.items_of("function")),
                  starter=tuple(str(p) for p in rubric.starter))


def run_batch(submissions_dir, rubric_path, out_dir, jobs: int = 0, force: bool = False,
              dask_address: str | None = None, sandbox: str = "bwrap", lang: str | None = None,
              progress: bool = True, timeout: float | None = None, executor: str = "threads") -> BatchSummary:
    from . import exports
    from .rubric import load_rubric
    from .similarity import find_pairs
    t0 = time.perf_counter()
    rubric = load_rubric(rubric_path)
    cfg = make_config(rubric, sandbox, timeout, lang)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = jobs or os.cpu_count() or 1
    summary = BatchSummary(out_dir=out)
    fingerprint = (rubric_hash(rubric), grader_version())
    with Gradebook(out / "gradebook.sqlite") as book:
        found = discover(submissions_dir)
        tasks = plan(book, found, fingerprint, force, cfg, out)
        summary.total, summary.skipped = len(found), len(found) - len(tasks)
        bar = Progress(len(tasks), progress)
        results = choose_executor(executor, dask_address)(tasks, cfg, jobs)
        runs = {}          # this batch's runs, kept so the exports below need not parse them back
        for g in results:
            run = commit(book, out, g, fingerprint, summary)
            if run is not None:     # held for the CSV and the summary: brief, or a class's cases stay in memory
                runs[g.student] = dataclasses.replace(run, result=exports.brief(run.result))
            bar.step(bool(g.failed or g.error))
        # Students graded now have their exports (commit writes them); any whose exports are
        # missing (an output folder from elsewhere, files deleted) get them here. The CSV is whole.
        unexported = {s for s, _ in found if not (out / "gradescope" / s / "results.json").exists()}
        if not book.has_snapshot(fingerprint[0]):     # after grading: the reference's values are computed by then
            store_snapshot(book, fingerprint[0], rubric, cfg)
        # pages that predate a manual score, drawn again from their records (no grading)
        stale = book.stale_pages()
        if stale:           # (redraw reads records: torch, which a rerun with nothing to do never needs)
            from .redraw import redraw_pages
            redraw_pages(out, book, stale)
        grades = exports.write_all(out, book, [i.id for i in rubric.items], unexported, known=runs)
        pairs, n = find_pairs({s: c.run.own_code for s, c in grades.items()})
        summary.similar_pairs = n
        exports.render_summary(out, exports.summary_data(grades, rubric, cfg.lang, pairs, n, summary.errors,
                                                         exports.pages(out)))
    summary.seconds = time.perf_counter() - t0
    return summary


def store_snapshot(book: Gradebook, key: str, rubric, cfg: Config) -> None:
    """The rubric as the pages need it and the reference's shown values, once per rubric: every
    record of it refers to them, and `redraw` needs nothing else (no reference package, no sandbox)."""
    from .executors import shared_reference
    from .pack import public_rubric_toml
    from .record import save_values, shown_values
    book.add_snapshot(key, public_rubric_toml(rubric, concepts=True), save_values(shown_values(shared_reference(cfg))))


def choose_executor(kind: str, dask_address=None) -> Executor:
    if dask_address:
        import functools
        from .distributed import run_dask
        return functools.partial(run_dask, address=dask_address)
    return run_processes if kind == "processes" else run_threads


def plan(book: Gradebook, found, fingerprint, force: bool, cfg: Config, out: Path) -> list[Task]:
    """What needs grading: new or changed submissions (all with force). A page that predates a
    manual score is redrawn from its run's record (`redraw`); only a run stored without a record
    (an older gradebook) is graded again for it."""
    prints = book.fingerprints()
    overrides = book.overrides()
    last_ids = book.last_override_ids()
    stale = book.stale_pages()
    if stale:
        runs = book.latest()
        stale = {s for s in stale if s in runs and book.record(runs[s].id) is None}
    tasks = []
    for student, path in found:
        sha = content_hash(path)
        if not force and prints.get(student) == (sha, *fingerprint) and student not in stale:
            continue
        tasks.append(Task(student, str(path), sha, overrides.get(student, {}), last_ids.get(student, 0)))
    return tasks


def commit(book: Gradebook, out: Path, g: Graded, fingerprint, summary: BatchSummary):
    """Write one Graded's files, then its run; returns the stored Run (None for a grader error)."""
    if g.error is not None:
        summary.errors[g.student] = g.error
        return None
    from .exports import encode, write_student
    from .gradebook import apply_overrides_json
    # The files first, then the gradebook: a committed run always has its page and exports, and a
    # crash in between leaves an uncommitted run that the next batch grades (and writes) again.
    if g.feedback_html is not None:
        page = out / "feedback" / f"{g.student}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        tmp = page.with_name(page.name + ".tmp")
        tmp.write_bytes(g.feedback_html)
        os.replace(tmp, page)
    shown = apply_overrides_json(g.result, book.overrides(g.student).get(g.student, {}))
    text = encode(g.result)         # encoded once: the results file and the gradebook hold the same JSON
    write_student(out, g.student, shown, g.seconds, text if shown is g.result else None)
    run = book.add_run(g.student, g.content_sha256, fingerprint[0], fingerprint[1], g.seconds, g.failed, g.own_code,
                       g.result, page_override_id=g.override_id if g.feedback_html is not None else None,
                       result_json=text, record=g.record)
    if g.page_error:
        summary.page_errors[g.student] = g.page_error
    summary.graded += 1
    summary.failed += bool(g.failed)
    return run
