"""`grade.py batch`: grade a folder of submissions on every core, resumably, into a gradebook.

Shape: the coordinator (this process, one thread) decides what needs grading, hands `Task`s to
executors and is the only writer of the gradebook and the output folder. An executor turns a Task
into a `Graded` (plain, picklable) with a Grader it keeps warm: threads here (each owns one Grader;
the sandbox worker is a subprocess, so the GIL is free while a job runs), processes, or Dask workers
(`distributed.py`). Each Graded is committed at once, one transaction per submission, so an
interrupted batch loses nothing already graded and a rerun skips it (same content, rubric and grader).
"""
from __future__ import annotations

import atexit
import fcntl
import hashlib
import os
import queue
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .gradebook import Gradebook, apply_overrides, review  # noqa: F401  (review: for the CLI)
from .load import _IGNORED

VERSION = "0.1.0"
# Modules that only present or coordinate: editing them must not make every submission regrade.
# (A new feedback page design is applied with --force: it changes no grade.)
_NOT_ENGINE = {"batch.py", "gradebook.py", "exports.py", "similarity.py", "distributed.py", "cli.py",
               "feedback.py"}


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
        elif p.is_file() and not _IGNORED.match(p.name):
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
    engine = [p for p in here.rglob("*.py") if p.name not in _NOT_ENGINE and "__pycache__" not in p.parts]
    return f"{VERSION}+{tree_hash(engine)}"


# -- the executor side: Task -> Graded -------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    rubric_path: str
    sandbox: str
    timeout: float | None
    lang: str
    functions: frozenset
    starter: tuple                   # the starter files' paths: their lines are nobody's own code


@dataclass(frozen=True)
class Task:
    student: str
    path: str
    content_sha256: str
    overrides: dict = field(default_factory=dict)      # item -> Override, shown in the feedback page
    override_id: int = 0


@dataclass(frozen=True)
class Graded:
    student: str
    content_sha256: str
    seconds: float
    failed: str | None
    own_code: dict
    result: dict | None              # JSON schema 1, automatic scores only
    feedback_html: bytes | None = None
    error: str | None = None         # the grader itself broke on this one: nothing is committed
    override_id: int = 0
    page_error: str | None = None    # graded, but the feedback page could not be drawn


def render_page(grader, result, task: Task, cfg: Config) -> bytes:
    """Pages are rendered where the GradeResult lives (possibly a Dask worker on another machine)
    and travel back as bytes: the coordinator alone writes the output folder."""
    from .feedback import render_feedback
    # The Grader's rubric spares the page a rubric load of its own (the hot path).
    return render_feedback(apply_overrides(result, task.overrides), cfg.lang, rubric=grader.rubric).encode("utf-8")


def grade_task(grader, task: Task, cfg: Config) -> Graded:
    from .report import to_json
    from .similarity import own_code, starter_lines
    t0 = time.perf_counter()
    try:
        result = grader.grade(task.path, task.student)
        html, page_error = None, None
        try:
            html = render_page(grader, result, task, cfg)
        except Exception as e:    # a broken page must not cost the grade; the next run redraws it
            page_error = f"feedback page: {type(e).__name__}: {e}"[:500]
        failed = None
        if result.load_error is not None:
            failed = "could not be loaded: " + result.load_error("en")
        elif result.run is not None and result.run.limit_hit:
            failed = "hit a limit: " + result.run.limit_hit
        return Graded(task.student, task.content_sha256, time.perf_counter() - t0, failed,
                      own_code(result, cfg.functions, starter_lines(cfg.starter)), to_json(result, cfg.lang), html,
                      override_id=task.override_id, page_error=page_error)
    except Exception as e:     # a grader bug on one submission must not stop the class
        return Graded(task.student, task.content_sha256, time.perf_counter() - t0, None, {}, None,
                      error=f"{type(e).__name__}: {e}"[:500])


_SLOT_DIR = Path(tempfile.gettempdir()) / f"grader-slots-{os.getuid()}"
_graders: list = []
_graders_lock = threading.Lock()
_local = threading.local()


def claim_slot(limit: int = 256):
    """A sandbox slot (and so a job uid) no other Grader on this machine holds: an flock per slot,
    held for the life of the Grader, works across threads, processes and Dask workers alike."""
    _SLOT_DIR.mkdir(exist_ok=True)
    for k in range(1, limit):      # slot 0 stays for `grade.py grade`, which takes it without a lock
        fd = os.open(_SLOT_DIR / f"{k}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return k, fd
        except BlockingIOError:
            os.close(fd)
    raise RuntimeError(f"all {limit} sandbox slots are taken on this machine")


_references: dict = {}
_sandboxes: dict = {}       # kind -> the Sandbox (zygote) this process's threads fork their workers from


def _per_process(cache: dict, key, make):
    """The one `cache[key]` of this process, made by `make()` the first time any thread asks."""
    with _graders_lock:
        value = cache.get(key)
        if value is None:
            value = cache[key] = make()
        return value


def shared_reference(cfg: Config):
    """One Reference per rubric for all of this process's graders: its values are computed once,
    not once per thread (CPython's dict operations keep the shared caches consistent)."""
    from .expected import Reference
    from .rubric import load_rubric

    def make():
        ref = Reference(load_rubric(cfg.rubric_path))
        ref.check()
        return ref
    return _per_process(_references, cfg.rubric_path, make)


def shared_sandbox(kind: str):
    """One zygote per process for all its graders' workers: a Dask worker's threads pay for one
    torch import in the sandbox, not one each."""
    from .sandbox import Sandbox
    return _per_process(_sandboxes, kind, lambda: Sandbox(kind))


def prepare_host(cfg: Config) -> None:
    """What the trusted side needs before its first submission, computed once per process and
    meant to run while the sandboxes boot: the reference's values and call inputs, the starter's
    lines, the compiled page template."""
    from .pipeline import prepare_reference, single_threaded_torch
    from .similarity import starter_lines
    from .templating import template
    single_threaded_torch()      # a process pool's or Dask worker's process is ours too
    prepare_reference(shared_reference(cfg))
    starter_lines(cfg.starter)
    template("feedback.html.j2")


def new_grader(cfg: Config):
    from .pipeline import Grader
    from .sandbox import Worker
    slot, fd = claim_slot()
    worker = None
    try:
        worker = Worker(slot=slot, sandbox=shared_sandbox(cfg.sandbox))
        g = Grader(cfg.rubric_path, timeout=cfg.timeout, reference=shared_reference(cfg), worker=worker)
        g.worker.spawn()        # it boots (about a second) while this thread prepares the host's side
        prepare_host(cfg)
        g.warm()
    except BaseException:
        if worker is not None:
            worker.close()
        os.close(fd)
        raise
    g._slot_fd = fd
    with _graders_lock:
        _graders.append(g)
    return g


def release(g) -> None:
    g.worker.close()            # the Grader was handed its worker: closing it is ours to do
    os.close(g._slot_fd)
    with _graders_lock:
        if g in _graders:
            _graders.remove(g)


def cached_grader(cfg: Config):
    """One warm Grader per thread of a process (a process pool or a Dask worker's threads)."""
    g = getattr(_local, "grader", None)
    if g is None or _local.cfg != cfg or g not in _graders:    # not in _graders: closed by close_graders
        if g is not None and g in _graders:
            release(g)
        _local.grader, _local.cfg = new_grader(cfg), cfg
    return _local.grader


def grade_cached(task: Task, cfg: Config) -> Graded:
    return grade_task(cached_grader(cfg), task, cfg)


def close_graders() -> int:
    with _graders_lock:
        gs = list(_graders)
    for g in gs:
        release(g)
    with _graders_lock:
        boxes = list(_sandboxes.values())
        _sandboxes.clear()
    for box in boxes:
        box.close()
    return len(gs)


atexit.register(close_graders)


def run_threads(tasks: list[Task], cfg: Config, jobs: int):
    """Yield Graded as they finish. `jobs` warm sandboxes in a pool, and one thread more than
    sandboxes, each with a Grader on the pool: while one thread scores on the trusted side, the
    sandbox it used runs another thread's submission (measured: 11% of the machine sat idle
    with one thread per sandbox)."""
    from .sandbox import WorkerPool      # not torch: the sandboxes boot while prepare_host imports it
    todo: queue.Queue = queue.Queue()
    for t in tasks:
        todo.put(t)
    done: queue.Queue = queue.Queue()
    stop = threading.Event()
    # no more sandboxes than submissions: a rerun with nothing to grade starts none
    n_workers = min(max(1, jobs), len(tasks))
    if not n_workers:
        return
    slots: list = []
    pool = None

    def work():
        from .pipeline import Grader
        try:
            g = Grader(cfg.rubric_path, sandbox=cfg.sandbox, timeout=cfg.timeout, reference=shared_reference(cfg),
                       worker=pool)
            g.warm()            # the shared values are ready: this waits for the sandboxes
        except BaseException as e:       # the sandbox cannot start: the instructor's problem, raise it
            done.put(e)
            return
        try:
            while not stop.is_set():
                try:
                    t = todo.get_nowait()
                except queue.Empty:
                    break
                done.put(grade_task(g, t, cfg))
        finally:
            done.put(None)

    n_threads = n_workers + 1 if len(tasks) > n_workers else n_workers
    threads = [threading.Thread(target=work, daemon=True, name=f"grader-{k}") for k in range(n_threads)]
    try:
        for _ in range(n_workers):
            slots.append(claim_slot())
        pool = WorkerPool(cfg.sandbox, [slot for slot, _ in slots])
        pool.spawn()
        prepare_host(cfg)       # once, here, not by every thread at once against the booting sandboxes
        for th in threads:
            th.start()
        alive = len(threads)
        while alive:
            try:
                item = done.get(timeout=0.5)      # a timeout keeps Ctrl-C deliverable
            except queue.Empty:
                continue
            if item is None:
                alive -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        for th in threads:
            if th.ident is not None:
                th.join(timeout=30)
        if pool is not None:
            pool.close()
        for _, fd in slots:
            os.close(fd)


def run_processes(tasks: list[Task], cfg: Config, jobs: int):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    # forkserver: the coordinator may hold threads and an open SQLite handle, which fork would copy.
    if not tasks:
        return
    with ProcessPoolExecutor(max_workers=min(max(1, jobs), len(tasks)), mp_context=mp.get_context("forkserver")) as pool:
        futures = [pool.submit(grade_cached, t, cfg) for t in tasks]
        try:
            for f in as_completed(futures):
                yield f.result()
        finally:
            pool.shutdown(cancel_futures=True)


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
        if dask_address:
            from .distributed import run_dask
            results = run_dask(tasks, cfg, dask_address)
        elif executor == "processes":
            results = run_processes(tasks, cfg, jobs)
        else:
            results = run_threads(tasks, cfg, jobs)
        runs = {}          # this batch's runs, kept so the exports below need not parse them back
        for g in results:
            run = commit(book, out, g, fingerprint, summary)
            if run is not None:
                runs[g.student] = run
            bar.step(bool(g.failed or g.error))
        # Students graded now have their exports (commit writes them); any whose exports are
        # missing (an output folder from elsewhere, files deleted) get them here. The CSV is whole.
        unexported = {s for s, _ in found if not (out / "gradescope" / s / "results.json").exists()}
        grades = exports.write_all(out, book, [i.id for i in rubric.items], unexported, known=runs)
        pairs, n = find_pairs({s: c.run.own_code for s, c in grades.items()})
        summary.similar_pairs = n
        exports.render_summary(out, exports.summary_data(grades, rubric, cfg.lang, pairs, n, summary.errors,
                                                         exports.pages(out)))
    summary.seconds = time.perf_counter() - t0
    return summary


def plan(book: Gradebook, found, fingerprint, force: bool, cfg: Config, out: Path) -> list[Task]:
    """What needs grading: new or changed submissions (all with force), and students whose feedback
    page predates a manual score (the page needs the full GradeResult to redraw). A page that failed
    to draw is not retried on every run: a new feedback module changes the grader version anyway."""
    prints = book.fingerprints()
    overrides = book.overrides()
    last_ids = book.last_override_ids()
    stale = book.stale_pages()
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
                       result_json=text)
    if g.page_error:
        summary.page_errors[g.student] = g.page_error
    summary.graded += 1
    summary.failed += bool(g.failed)
    return run
