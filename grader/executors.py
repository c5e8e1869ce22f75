"""Executors: each turns `Task`s into `Graded`s with Graders it keeps warm, and all have one shape,
`Executor = (tasks, cfg, jobs) -> Iterator[Graded]`, so the coordinator (`batch.py`) picks one
without knowing how it works: threads sharing one pool of sandboxes (`run_threads`), a process
pool (`run_processes`), or a Dask cluster (`distributed.run_dask`, bound to its address).

A Graded is plain and picklable (result JSON, the student's own code, the page as bytes): the
coordinator alone writes the gradebook and the output folder.
"""
from __future__ import annotations

import atexit
import fcntl
import os
import queue
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .gradebook import apply_overrides


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
    record: tuple | None = None      # (record JSON, tensors): the whole GradeResult (grader/record.py)


def render_page(grader, result, task: Task, cfg: Config) -> bytes:
    """Pages are rendered where the GradeResult lives (possibly a Dask worker on another machine)
    and travel back as bytes: the coordinator alone writes the output folder."""
    from .feedback import render_feedback
    # The Grader's rubric spares the page a rubric load of its own (the hot path).
    return render_feedback(apply_overrides(result, task.overrides), cfg.lang, rubric=grader.rubric).encode("utf-8")


def grade_task(grader, task: Task, cfg: Config) -> Graded:
    from . import record      # torch: imported once the sandboxes boot, not before (see run_threads)
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
        try:
            kept = record.dump(result, shared=shown_ids(cfg, grader.reference))
        except Exception as e:    # without a record the page is redrawn by grading again, as before
            kept, page_error = None, page_error or f"record: {type(e).__name__}: {e}"[:500]
        failed = None
        if result.load_error is not None:
            failed = "could not be loaded: " + result.load_error("en")
        elif result.run is not None and result.run.limit_hit:
            failed = "hit a limit: " + result.run.limit_hit
        waited = result.run.waited if result.run is not None else 0.0     # queued behind another job: not its time
        return Graded(task.student, task.content_sha256, time.perf_counter() - t0 - waited, failed,
                      own_code(result, cfg.functions, starter_lines(cfg.starter)), to_json(result, cfg.lang), html,
                      override_id=task.override_id, page_error=page_error, record=kept)
    except Exception as e:     # a grader bug on one submission must not stop the class
        return Graded(task.student, task.content_sha256, time.perf_counter() - t0, None, {}, None,
                      error=f"{type(e).__name__}: {e}"[:500])


_SLOT_DIR = Path(tempfile.gettempdir()) / f"grader-slots-{os.getuid()}"
_graders: dict = {}         # each live Grader of this process -> the descriptor holding its slot's lock
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


_shown: dict = {}


def shown_ids(cfg: Config, reference) -> dict:
    """`record.shared_keys` of the reference's values a record refers to instead of holding (they
    are the same in every record: the batch's snapshot holds them once)."""
    from .record import shared_keys, shown_values
    return _per_process(_shown, (cfg.rubric_path, id(reference)), lambda: shared_keys(shown_values(reference)))


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
    with _graders_lock:
        _graders[g] = fd
    return g


def release(g) -> None:
    g.worker.close()            # the Grader was handed its worker: closing it is ours to do
    with _graders_lock:
        fd = _graders.pop(g, None)
    if fd is not None:
        os.close(fd)


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


Executor = Callable[[list, Config, int], Iterator[Graded]]

