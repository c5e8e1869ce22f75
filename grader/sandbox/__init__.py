"""Run a job in a warm worker: one long-lived worker process per slot, all forked from one
sandboxed zygote (the runtime package, `runtime/`), confined by bubblewrap (`bwrap`) or, where
there is none, run as plain child processes that say so (`none`). Of the runtime, this side
imports only `runtime.protocol` (the wire formats and budgets; no torch, no side effects).

The zygote imports torch once and forks a worker per slot (a batch's sandboxes share that
import); a worker forks a runner per job, so a job costs a fork, not an interpreter start. A
worker that dies (killed by the job, or a hard limit) is forked again for the next job; the job
that killed it gets a result that says what happened.
"""
from __future__ import annotations

import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import dataclasses
from dataclasses import dataclass

from ..errors import SandboxError
from . import bwrap
from .runtime import protocol

KINDS = ("bwrap", "none")
READY_SECONDS = 120.0
CLOSE_SECONDS = 10.0


@dataclass(frozen=True)
class Reply:
    header: dict                 # the worker's own account: events (kills, exits), seconds, file list
    files: dict                  # name -> bytes written by the runner (untrusted)
    waited: float = 0.0          # seconds the job waited for a free worker (a pool's): not its own time


class WorkerDied(Exception):
    pass


def default_kind() -> str:
    return "bwrap" if sys.platform == "linux" and bwrap.bwrap_path() else "none"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise SandboxError(f"unknown sandbox {kind!r}; choose one of {', '.join(KINDS)}")


class Sandbox:
    """The zygote: one confined process that imports torch once and forks a worker per slot when
    asked ("spawn SLOT" on a Unix socket, with the worker's two pipes attached). Asking again for
    a slot replaces its worker; "stop SLOT" ends it. Closing the socket ends them all."""

    def __init__(self, kind: str = "bwrap", tmp_mb: int = 512):
        _check_kind(kind)
        self.kind, self.tmp_mb = kind, tmp_mb
        self.proc: subprocess.Popen | None = None
        self.notes: tuple[str, ...] = ()
        self._control: socket.socket | None = None
        self._stderr = None
        self._info = None                   # bwrap's --info-fd
        self._lock = threading.Lock()       # a pool's threads may replace their workers at once

    def start(self) -> None:
        """Start the zygote without waiting for it: it imports torch (about a second) while the
        caller prepares its side; the workers it forks say when they are ready."""
        notes = []
        # Its stderr (and its workers') goes to a file: a pipe nobody drains would block it once full.
        self._stderr = tempfile.TemporaryFile()
        self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if self.kind == "bwrap":
            (zygote_filter, why), (worker_filter, _) = bwrap.seccomp_filter(zygote=True), bwrap.seccomp_filter()
            if zygote_filter is None:
                notes.append(why)
            filters = [f for f in (zygote_filter, worker_filter) if f is not None]
            argv, args, zygote = bwrap.command(self.tmp_mb, zygote_filter and zygote_filter.fileno(),
                                               worker_filter and worker_filter.fileno())
            info_r, info_w = os.pipe()      # bwrap writes its pid 1's pid there: close() waits for it
            args += ["--info-fd", str(info_w)]
            r, w = os.pipe()
            os.write(w, b"\0".join(a.encode() for a in args) + b"\0")
            os.close(w)
            # bwrap reads its arguments from a pipe so /proc/1/cmdline inside shows only `--args N`;
            # an empty environment so /proc/1/environ shows nothing of ours.
            self.proc = subprocess.Popen(argv + ["--args", str(r)] + zygote, stdin=theirs.fileno(), stdout=self._stderr,
                                         stderr=self._stderr, env={}, start_new_session=True,
                                         pass_fds=(r, info_w, *(f.fileno() for f in filters)))
            os.close(r)
            os.close(info_w)
            self._info = os.fdopen(info_r, "rb")
            for f in filters:
                f.close()
        else:
            notes.append("not sandboxed: the submission ran as an ordinary process with this platform's "
                         "resource limits only (no filesystem or network isolation)")
            env = bwrap.python_environment(mount="")
            self.proc = subprocess.Popen([env.executable, "-I", "-S", "-B", str(bwrap.PROBE)] + env.probe_args(),
                                         stdin=theirs.fileno(),
                                         stdout=self._stderr, stderr=self._stderr, start_new_session=True,
                                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_NUM_THREADS": "1",
                                              "HOME": os.environ.get("HOME", "/tmp")})
        theirs.close()
        self.notes = tuple(notes)

    def fork_worker(self, slot: int, job_uid: int | None) -> tuple[int, int]:
        """A new worker for `slot` whose jobs run as `job_uid` (None: as the worker), its old one,
        if any, killed first: (the descriptor to write its jobs to, the descriptor to read its
        answers from). A zygote that died (the OOM killer) took its workers with it: it is
        started again."""
        with self._lock:
            for _ in range(2):
                if self.proc is None or self.proc.poll() is not None:
                    self.close()
                    self.start()
                job_r, job_w = os.pipe()
                reply_r, reply_w = os.pipe()
                try:
                    socket.send_fds(self._control, [protocol.spawn_message(slot, job_uid)], [job_r, reply_w])
                    return job_w, reply_r
                except OSError as e:        # the zygote is gone: start it again, once
                    why = f"{e}; {self.stderr_tail() or 'no output'}"
                    os.close(job_w)
                    os.close(reply_r)
                    self.close()
                finally:
                    os.close(job_r)
                    os.close(reply_w)
        raise SandboxError(f"the {self.kind} sandbox stopped answering: {why}")

    def stop_worker(self, slot: int) -> None:
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                try:
                    self._control.send(protocol.stop_message(slot))
                except OSError:
                    pass

    def worker_pid(self, slot: int) -> int | None:
        """The slot's worker as the host sees it (for `ps`, benchmarks and tests): the process named
        grader-slotN that descends from this sandbox."""
        if self.proc is None:
            return None
        parent = {}
        for name in os.listdir("/proc"):
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    head, _, rest = f.read().rpartition(b")")
                parent[int(name)] = (int(rest.split()[1]), head.partition(b"(")[2])
            except (OSError, ValueError, IndexError):
                continue
        for pid, (ppid, comm) in parent.items():
            if comm == b"grader-slot%d" % slot:
                while ppid > 1 and ppid != self.proc.pid:
                    ppid = parent.get(ppid, (0, b""))[0]
                if ppid == self.proc.pid:
                    return pid
        return None

    def stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            return self._stderr.read()[-2000:].decode(errors="replace").strip()
        except Exception:
            return ""

    def close(self) -> None:
        """End the zygote and wait until every process of the sandbox is gone, so a command that
        returns leaves none behind: closing the socket makes the zygote kill its workers and
        everything they made, then exit; under bwrap, bwrap exits only once the kernel has
        emptied the sandbox's PID namespace. Killed outright only if that takes too long."""
        if self._control is not None:
            self._control.close()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=CLOSE_SECONDS)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait()
            self.proc = None
        if self._info is not None:
            _wait_for_exit(self._info)
        for f in (self._stderr, self._info):
            if f is not None:
                f.close()
        self._control = self._stderr = self._info = None


def _wait_for_exit(info) -> None:
    """bwrap exits once its pid 1 has reported the zygote's exit, a moment before that pid 1 has
    finished exiting (the kernel empties the PID namespace then). Wait for it: only a zombie,
    for the system's init to reap, may be left when the command returns."""
    try:
        pid = int(json.loads(info.read() or b"{}").get("child-pid", 0))
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + CLOSE_SECONDS
    while pid and time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rpartition(b")")[2].split()[0] == b"Z":
                    return
        except (OSError, IndexError):
            return
        time.sleep(0.001)


class Worker:
    """One slot's worker. `sandbox`: a zygote shared with other slots (its owner closes it);
    without one, the worker starts a zygote of its own and closes it with itself."""

    def __init__(self, kind: str = "bwrap", slot: int = 0, tmp_mb: int = 512, sandbox: Sandbox | None = None):
        _check_kind(kind if sandbox is None else sandbox.kind)
        self.sandbox = sandbox if sandbox is not None else Sandbox(kind, tmp_mb)
        self._owns_sandbox = sandbox is None
        self.kind, self.slot = self.sandbox.kind, slot
        self.info: dict = {}
        self.job_uid = bwrap.job_uid(slot) if self.kind == "bwrap" else None
        self._jobs = None                # where jobs are written (a file over the pipe's descriptor)
        self._answers: int | None = None    # the descriptor answers are read from
        self._counter = 0
        self._tmp = None
        self._sent_key = None
        self._user_processes: int | None = None

    @property
    def started(self) -> bool:
        return self._jobs is not None

    @property
    def notes(self) -> tuple[str, ...]:
        return self.sandbox.notes

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        """Ask for the worker without waiting for it. `wait_ready` (or the first job) waits."""
        if self._jobs is not None:
            return
        job_w, self._answers = self.sandbox.fork_worker(self.slot, self.job_uid)
        self._jobs = os.fdopen(job_w, "wb")
        os.set_blocking(self._answers, False)
        self.info = {}

    def wait_ready(self) -> None:
        if self.info:
            return
        try:
            self.info = json.loads(self._read_frame(time.monotonic() + READY_SECONDS))
        except WorkerDied:
            err = self.sandbox.stderr_tail()
            self.close()
            raise SandboxError(f"the {self.kind} sandbox did not start: {err or 'no output'}")

    def close(self) -> None:
        if self._jobs is not None:
            self.sandbox.stop_worker(self.slot)
            self._jobs.close()
            os.close(self._answers)
            self._jobs = self._answers = None
            self._sent_key = None
        if self._owns_sandbox:
            self.sandbox.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def _gone(self) -> bool:
        """Between jobs a worker never writes: anything to read (its end-of-file) means it died."""
        return bool(select.select([self._answers], [], [], 0)[0])

    # -- one job -------------------------------------------------------------------------------
    def run(self, spec: dict, blob: bytes, budget: float) -> Reply:
        """Send a job and wait for the answer at most `budget` seconds. Raises WorkerDied (and
        leaves the worker closed, to be restarted) when the worker did not answer. A worker that
        died before the job reached it (between jobs: the OOM killer, an admin's kill) is not the
        job's doing: it is restarted and the job sent again, once."""
        if self._jobs is not None and self.info and self._gone():
            self.close()
        for attempt in (1, 2):
            if self._jobs is None:
                self.spawn()
            self.wait_ready()
            key, frame = self._frame(spec, blob)
            try:
                self._jobs.write(frame)
                self._jobs.flush()
                break
            except OSError as e:          # BrokenPipeError: nobody reads the other end any more
                self.close()
                if attempt == 2:
                    raise WorkerDied(str(e) or "the worker stopped answering")
        self._sent_key = key
        try:
            raw = self._read_frame(time.monotonic() + budget)
        except (WorkerDied, OSError) as e:
            self.close()
            raise WorkerDied(str(e) or "the worker stopped answering")
        header, files = protocol.split_reply(raw)
        return Reply(header=header, files=files)

    def _frame(self, spec: dict, blob: bytes) -> tuple[str | None, bytes]:
        """The job as this worker should receive it: its calls' key, and spec + blob framed."""
        self._counter += 1
        key = spec.get("calls_key")
        if key and key == self._sent_key:
            # The worker keeps the function calls and their inputs of the last job that brought
            # them; they are the same for every submission of a rubric, so they travel once.
            runs = [dict(spec["runs"][0], calls=None)] + spec["runs"][1:]
            spec, blob = dict(spec, runs=runs), b""
        if self.kind != "bwrap" and self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="grader-jobs-")   # one per worker, removed on close
        spec = dict(spec, id=self._counter, tmp="/tmp" if self.kind == "bwrap" else self._tmp.name)
        spec["limits"] = dict(spec["limits"], nproc=self._nproc(spec["limits"]["processes"]))
        return key, protocol.job(spec, blob)

    def _nproc(self, processes: int) -> int:
        if self.job_uid is not None:     # a uid of its own: the count starts at zero
            return processes
        # Same uid as the user who runs the grader: the limit counts their other processes too,
        # counted once per worker rather than on every job.
        if self._user_processes is None:
            uid = os.getuid()
            mine = 0
            for p in os.listdir("/proc") if os.path.isdir("/proc") else ():
                if p.isdigit():
                    try:
                        mine += os.stat(f"/proc/{p}").st_uid == uid
                    except OSError:
                        pass
            self._user_processes = mine
        return self._user_processes + processes + 16

    def _read_frame(self, deadline: float) -> bytes:
        (n,) = protocol.FRAME_HEAD.unpack(self._read(protocol.FRAME_HEAD.size, deadline))
        return self._read(n, deadline)

    def _read(self, n: int, deadline: float) -> bytes:
        fd = self._answers
        chunks = []
        while n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerDied("no answer within the time budget")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            try:
                b = os.read(fd, min(n, 1 << 20))
            except BlockingIOError:
                continue
            if not b:
                raise WorkerDied("the worker exited")
            chunks.append(b)
            n -= len(b)
        return b"".join(chunks)


class WorkerPool:
    """Warm workers behind one Worker's interface: `run` borrows whichever is free. A batch gives
    its threads one more Grader than it has sandboxes, so while a thread scores on the trusted
    side, its sandbox already runs another thread's submission instead of waiting. The workers
    are forked from one zygote: the pool pays for one torch import, not one per slot."""

    def __init__(self, kind: str, slots: list[int], tmp_mb: int = 512):
        self.sandbox = Sandbox(kind, tmp_mb)
        self.workers = [Worker(slot=slot, sandbox=self.sandbox) for slot in slots]
        self._free: queue.Queue = queue.Queue()
        for w in self.workers:
            self._free.put(w)
        self.kind = kind
        self._lock = threading.Lock()      # every thread's warm() waits for the workers: one reads each

    @property
    def started(self) -> bool:
        return all(w.started for w in self.workers)

    @property
    def info(self) -> dict:
        return self.workers[0].info

    @property
    def notes(self) -> tuple[str, ...]:     # the same for every worker of one kind
        return self.workers[0].notes

    def spawn(self) -> None:
        with self._lock:
            for w in self.workers:
                w.spawn()

    def wait_ready(self) -> None:
        with self._lock:
            for w in self.workers:
                w.wait_ready()

    def run(self, spec: dict, blob: bytes, budget: float) -> Reply:
        t0 = time.perf_counter()
        w = self._free.get()
        waited = time.perf_counter() - t0
        try:
            return dataclasses.replace(w.run(spec, blob, budget), waited=waited)
        finally:
            self._free.put(w)

    def close(self) -> None:
        for w in self.workers:
            w.close()
        self.sandbox.close()
