"""The pipeline, top to bottom: load -> locate blanks -> run in the sandbox -> compare and score.

`Grader` holds what is worth keeping between submissions (the rubric, the reference values, a
warm worker) and turns any path into a `GradeResult`. A submission that cannot be loaded, or
that breaks the sandbox, still gets a result that says why; only the instructor's own errors
(a bad rubric, a sandbox that cannot start) raise.
"""
from __future__ import annotations

import datetime
import platform
import sys
import time
from pathlib import Path
from typing import Protocol

from .blanks import layout as locate
from .errors import SubmissionError
from .expected import Reference, ReferenceSource
from .load import load_submission
from .model import GradeResult, ItemResult, Submission, Text
from .rubric import Rubric, load_rubric
from .run import build_calls, execute
from .sandbox import Worker
from .score import score_items


def single_threaded_torch() -> None:
    """The trusted side's tensors are tiny (a few hundred elements), so torch's intra-op thread pool
    can only cost there: on a machine a batch keeps busy, an OpenMP barrier waits for a descheduled
    pool thread, and a 5x5 softmax took 5-8 ms instead of 3 µs. For the grader's processes only
    (the CLI and batch executors), never as a side effect of importing the package."""
    import torch
    torch.set_num_threads(1)


def prepare_reference(reference) -> None:
    """The reference's values and the function calls' inputs, computed (and cached on the
    Reference, which Graders may share) before the first submission needs them."""
    rubric = reference.rubric
    for label, seed in rubric.runs:
        if rubric.script:
            reference.script_expected(seed)
    for item in rubric.items_of("function"):
        for case in reference.cases(item):
            reference.expected(item, case)
    build_calls(reference)


class JobRunner(Protocol):
    """Where a submission's job runs: one slot's `sandbox.Worker`, or a `sandbox.WorkerPool` that a
    batch's threads share (`run` borrows whichever worker is free)."""
    kind: str

    @property
    def started(self) -> bool: ...
    @property
    def info(self) -> dict: ...
    @property
    def notes(self) -> tuple[str, ...]: ...
    def spawn(self) -> None: ...
    def wait_ready(self) -> None: ...
    def run(self, spec: dict, blob: bytes, budget: float): ...
    def close(self) -> None: ...


class Grader:
    def __init__(self, rubric: Rubric | str | Path, sandbox: str = "bwrap", timeout: float | None = None, slot: int = 0,
                 reference: ReferenceSource | None = None, worker: JobRunner | None = None):
        """`reference` defaults to the rubric's reference package; a student's self-check passes the
        pack's, which answers from the public checks instead. `worker`: a job runner shared with
        other Graders (the caller closes it), else a Worker of its own."""
        self.rubric = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
        if reference is None:
            reference = Reference(self.rubric)
            reference.check()
        self.reference = reference
        self.timeout = timeout
        self.worker = worker if worker is not None else Worker(sandbox, slot)
        self._owns_worker = worker is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._owns_worker:
            self.worker.close()

    def grade(self, path: str | Path, student: str | None = None) -> GradeResult:
        t0 = time.perf_counter()
        try:
            sub = load_submission(path, student)
        except SubmissionError as e:
            return self._unloadable(Path(path), student, Text(e.problem_zh, e.problem_en))
        variables = tuple(i.name for i in self.rubric.items_of("variable")) + (
            self.rubric.script.capture if self.rubric.script else ())
        lay = locate(sub, variables, tuple(i.id for i in self.rubric.items_of("written")), self.rubric.section_aliases)
        run = execute(sub, lay, self.rubric, self.reference, self.worker, self.timeout)
        items = score_items(self.rubric, lay, run, self.reference)
        env = self.environment(time.perf_counter() - t0 - run.waited)
        return GradeResult(submission=sub, rubric_path=str(self.rubric.path), assignment=self.rubric.id,
                           items=items, run=run, environment=env, layout=lay)

    def warm(self) -> None:
        """Start the sandbox and compute the reference's values now, so that the first submission's
        grading time is its own (a batch lists its slowest submissions). The values are computed
        while the worker boots."""
        if not self.worker.started:
            self.worker.spawn()
        prepare_reference(self.reference)
        self.worker.wait_ready()

    def environment(self, seconds: float) -> dict:
        info = self.worker.info
        return {"python": info.get("python") or platform.python_version(), "torch": info.get("torch"),
                "numpy": info.get("numpy"), "sandbox": self.worker.kind, "platform": sys.platform,
                "seeds": {"public": self.rubric.public_seed, "hidden": len(self.rubric.hidden_seeds)},
                "rubric_sha256": self.rubric.sha256, "seconds": round(seconds, 4),
                "graded_at": datetime.datetime.now().strftime("%Y-%m-%d %H:%M")}

    def _unloadable(self, path: Path, student: str | None, why: Text) -> GradeResult:
        sub = Submission(path=str(path), student=student or (path.name if path.is_dir() else path.stem),
                         format=path.suffix.lstrip(".") or "unknown", cells=(), sha256="")
        reason = Text("无法读取提交：", "the submission could not be read: ") + why
        items = tuple(ItemResult(id=i.id, part=i.part, status="error", points=0.0, max_points=i.points, message=reason)
                      for i in self.rubric.items)
        return GradeResult(submission=sub, rubric_path=str(self.rubric.path), assignment=self.rubric.id, items=items,
                           run=None, environment=self.environment(0.0), load_error=why)
