"""Run a job in a warm worker: one long-lived `probe.py` process per slot, confined by bubblewrap
(`bwrap`) or, where there is none, run as a plain child process that says so (`none`).

The worker imports torch once and forks a runner per job, so a job costs a fork, not an
interpreter start. A worker that dies (killed by the job, or a hard limit) is restarted for
the next job; the job that killed it gets a result that says what happened.
"""
from __future__ import annotations

import json
import os
import queue
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from ..errors import SandboxError
from . import bwrap

KINDS = ("bwrap", "none")
READY_SECONDS = 120.0


@dataclass(frozen=True)
class Reply:
    header: dict                 # the worker's own account: events (kills, exits), seconds, file list
    files: dict                  # name -> bytes written by the runner (untrusted)


class WorkerDied(Exception):
    pass


def default_kind() -> str:
    return "bwrap" if sys.platform == "linux" and bwrap.bwrap_path() else "none"


class Worker:
    def __init__(self, kind: str = "bwrap", slot: int = 0, tmp_mb: int = 512):
        if kind not in KINDS:
            raise SandboxError(f"unknown sandbox {kind!r}; choose one of {', '.join(KINDS)}")
        self.kind, self.slot, self.tmp_mb = kind, slot, tmp_mb
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self.notes: tuple[str, ...] = ()
        self.job_uid: int | None = None
        self._counter = 0
        self._tmp = None
        self._sent_key = None
        self._user_processes: int | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        """Start the worker without waiting for it: it imports torch (about a second) while the
        caller prepares its side. `wait_ready` (or the first job) waits for it."""
        notes = []
        # The worker's stderr goes to a file: a pipe nobody drains would block it once full.
        self._stderr = tempfile.TemporaryFile()
        if self.kind == "bwrap":
            seccomp, why = bwrap.seccomp_filter()
            if seccomp is None:
                notes.append(why)
            sfd = seccomp.fileno() if seccomp is not None else None
            argv, args, worker, self.job_uid = bwrap.command(self.slot, self.tmp_mb, sfd)
            r, w = os.pipe()
            os.write(w, b"\0".join(a.encode() for a in args) + b"\0")
            os.close(w)
            # bwrap reads its arguments from a pipe so /proc/1/cmdline inside shows only `--args N`;
            # an empty environment so /proc/1/environ shows nothing of ours.
            self.proc = subprocess.Popen(argv + ["--args", str(r)] + worker, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._stderr, env={}, start_new_session=True,
                                         pass_fds=(r,) if sfd is None else (r, sfd))
            os.close(r)
            if seccomp is not None:
                seccomp.close()
        else:
            notes.append("not sandboxed: the submission ran as an ordinary process with this platform's "
                         "resource limits only (no filesystem or network isolation)")
            self.proc = subprocess.Popen([sys.executable, "-I", "-B", str(bwrap.PROBE)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._stderr, start_new_session=True,
                                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_NUM_THREADS": "1",
                                              "HOME": os.environ.get("HOME", "/tmp")})
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.notes = tuple(notes)
        self.info = {}

    def wait_ready(self) -> None:
        if self.info:
            return
        try:
            self.info = json.loads(self._read_frame(time.monotonic() + READY_SECONDS))
        except WorkerDied:
            err = self._stderr_tail()
            self.close()
            raise SandboxError(f"the {self.kind} sandbox did not start: {err or 'no output'}")

    def close(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
            for s in (self.proc.stdin, self.proc.stdout, self._stderr):
                s.close()
            self.proc = None
            self._sent_key = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    # -- one job -------------------------------------------------------------------------------
    def run(self, spec: dict, blob: bytes, budget: float) -> Reply:
        """Send a job and wait for the answer at most `budget` seconds. Raises WorkerDied (and
        leaves the worker closed, to be restarted) when the worker did not answer. A worker that
        died before the job reached it (between jobs: the OOM killer, an admin's kill) is not the
        job's doing: it is restarted and the job sent again, once."""
        if self.proc is not None and self.proc.poll() is not None:
            self.close()
        for attempt in (1, 2):
            if self.proc is None:
                self.spawn()
            self.wait_ready()
            key, frame = self._frame(spec, blob)
            try:
                self.proc.stdin.write(frame)
                self.proc.stdin.flush()
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
        head, _, body = raw.partition(b"\n")
        header = json.loads(head)
        files, pos = {}, 0
        for name, size in header.get("files", []):
            files[name] = body[pos:pos + size]
            pos += size
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
        data = json.dumps(spec).encode()
        return key, struct.pack(">I", len(data)) + data + struct.pack(">I", len(blob)) + blob

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
        head = self._read(4, deadline)
        (n,) = struct.unpack(">I", head)
        return self._read(n, deadline)

    def _read(self, n: int, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()
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

    def _stderr_tail(self) -> str:
        try:
            self.proc.kill()
            self.proc.wait()
            self._stderr.seek(0)
            return self._stderr.read()[-2000:].decode(errors="replace").strip()
        except Exception:
            return ""


class WorkerPool:
    """Warm workers behind one Worker's interface: `run` borrows whichever is free. A batch gives
    its threads one more Grader than it has sandboxes, so while a thread scores on the trusted
    side, its sandbox already runs another thread's submission instead of waiting."""

    def __init__(self, workers: list[Worker]):
        self.workers = workers
        self._free: queue.Queue = queue.Queue()
        for w in workers:
            self._free.put(w)
        self.kind = workers[0].kind
        self._lock = threading.Lock()      # every thread's warm() waits for the workers: one reads each

    @property
    def proc(self):
        return self.workers[0].proc

    @property
    def info(self) -> dict:
        return self.workers[0].info

    @property
    def notes(self) -> tuple[str, ...]:     # the same for every worker of one kind
        return self.workers[0].notes

    def spawn(self) -> None:
        with self._lock:
            for w in self.workers:
                if w.proc is None:
                    w.spawn()

    def wait_ready(self) -> None:
        with self._lock:
            for w in self.workers:
                w.wait_ready()

    def run(self, spec: dict, blob: bytes, budget: float) -> Reply:
        w = self._free.get()
        try:
            return w.run(spec, blob, budget)
        finally:
            self._free.put(w)

    def close(self) -> None:
        for w in self.workers:
            w.close()
