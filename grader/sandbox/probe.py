"""The only grader code that runs inside the sandbox: a zygote, the warm workers it forks, and the
job runners they fork.

It is started once per sandbox (`python probe.py [--isolate TMP_MB] [--seccomp-fd N]`) and
imports torch once. That first process is the zygote: for every "spawn SLOT UID" message on its
stdin (a Unix socket that also carries the worker's two pipes; UID is the uid the slot's jobs run
as, or "-" to keep ours) it forks a worker for that slot, so a batch's sandboxes share one torch import instead of paying one
each. With --isolate a worker first takes namespaces of its own (PID, mount, IPC) and mounts its
own /tmp, /dev/shm and /proc, then gives up the capabilities that allowed it and installs the strict
seccomp filter: two slots see and reach each other no more than two separate sandboxes would.

A worker reads jobs from its pipe and answers on the other, one frame each (4-byte length +
bytes). For each job it forks a runner that drops to the job's uid, runs the student's blocks in
order under each seed, captures the values the rubric wants, and calls the student's functions
on the inputs the trusted side sent. The runner sends what each step produced to the worker as soon
as the step ends, over a pipe (_FRAME), so nothing the student's code does later (exit, delete
files, replace json or os.write) loses it. The worker times every step and kills the runner when a step
overruns; the runner is then re-forked, replays the earlier steps of that run silently, and goes
on after the step that was stopped, so a limit hit costs that step only.

This file imports nothing of the grader (the sandbox sees only this file) and trusts nothing it
reads back from the runner: it only forwards bytes, which the trusted side checks.
"""
from __future__ import annotations

import ctypes
import fcntl
import gc
import io
import itertools
import json
import linecache
import os
import random
import resource
import select
import signal
import socket
import stat
import struct
import sys
import time
import traceback

import builtins as _builtins

try:
    import posix
except ImportError:  # pragma: no cover
    posix = None

# Every function of this file looks builtins up in this copy, taken before any student code runs
# (a function keeps the `__builtins__` of its module as it was when it was defined): a runner's
# student code that replaces `builtins.len` or `builtins.open` changes its own namespace, not ours.
__builtins__ = dict(vars(_builtins))


def _use_environment(argv: list[str]) -> None:
    """Put the grader's own environment on sys.path: `--path DIR` for each of its directories, in
    order, and `--site DIR` for those whose .pth files count (their import lines run, as `site`
    runs them). The interpreter is started with -S, so nothing else (the base interpreter's
    site-packages) is on it; the trusted side computed the list (bwrap.python_environment)."""
    import site
    given = lambda flag: [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]  # noqa: E731
    sys.path.extend(given("--path"))
    for folder in given("--site"):
        site.addsitedir(folder)


if __name__ == "__main__":         # the trusted side imports this file too (for its plan), and keeps its own path
    _use_environment(sys.argv)

# torch's import makes ~1M objects and keeps them all: with fewer collections meanwhile it takes 5%
# less CPU (60 ms a worker start). The defaults are back before any runner forks (_warm_up), so a
# student's code sees Python's usual collector.
_GC_DEFAULTS = gc.get_threshold()
gc.set_threshold(50_000, *_GC_DEFAULTS[1:])

import torch  # noqa: E402
import safetensors.torch as st

try:
    import numpy
    import numpy.random     # every runner seeds it, and numpy 2 imports it lazily (~11 ms a runner)
except ImportError:  # pragma: no cover
    numpy = None

_CTRL_IN = _CTRL_OUT = -1
_PR_SET_DUMPABLE, _PR_SET_NAME, _PR_SET_SECCOMP, _PR_SET_CHILD_SUBREAPER, _PR_SET_NO_NEW_PRIVS = 4, 15, 22, 36, 38
_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, *args) -> None:
    """prctl(option, *args), the rest zero, raising on failure; integers go as unsigned longs (the
    kernel reads all four arguments as such), anything else (a pointer) as it is."""
    args = [ctypes.c_ulong(a) if isinstance(a, int) else a for a in args] + [ctypes.c_ulong(0)] * (4 - len(args))
    if _libc.prctl(option, *args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


MAX_RESULT_BYTES = 256 * 2**20
# The function calls of the last job that brought them, with their inputs decoded once; runners
# forked later inherit them, so jobs of the same rubric do not send or parse them again.
_CALLS = {"key": None, "calls": None, "blob": b"", "tensors": None}


# --- framing --------------------------------------------------------------------------------------
def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        b = os.read(fd, min(n, 1 << 20))
        if not b:
            raise EOFError
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def read_frame(fd: int) -> bytes:
    (n,) = struct.unpack(">I", _read_exact(fd, 4))
    return _read_exact(fd, n)


def write_frame(fd: int, data: bytes) -> None:
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


# --- the zygote ---------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    opts = {k: int(argv[argv.index(k) + 1]) for k in ("--isolate", "--seccomp-fd") if k in argv}
    seccomp = b""
    if "--seccomp-fd" in opts:
        with open(opts["--seccomp-fd"], "rb") as f:
            seccomp = f.read()
    _prctl(_PR_SET_DUMPABLE, 0)       # children of another uid cannot ptrace us anyway; same uid neither
    # What a killed worker or keeper leaves (a job's daemon, without --isolate's PID namespace)
    # comes back to us, to be killed when we end.
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    _warm_up()
    control = socket.socket(fileno=0)
    workers: dict[int, int] = {}        # slot -> the pid of its worker's keeper
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(control, 64, 2)
        except OSError:
            msg, fds = b"", []
        if not msg:                     # the trusted side closed the socket (or died): so do we,
            for keeper in workers.values():     # with every process of ours: it waits for our exit
                os.kill(keeper, signal.SIGKILL)
            _kill_descendants()
            return 0
        while _reap_any():
            pass
        verb, slot, *uid = msg.decode().split()
        old = workers.pop(int(slot), None)
        if old is not None:
            _stop_worker(old)
        if verb == "spawn" and len(fds) == 2:
            job_uid = None if uid == ["-"] else int(uid[0])
            workers[int(slot)] = _fork_worker(int(slot), job_uid, fds, opts, seccomp)
        for fd in fds:
            os.close(fd)


def _reap_any() -> bool:
    try:
        return os.waitpid(-1, os.WNOHANG)[0] > 0
    except ChildProcessError:
        return False


def _stop_worker(pid: int) -> None:
    """Kill a worker's keeper: the worker dies with it (see _fork_worker), and with --isolate the
    worker is its PID namespace's first process, so the kernel kills everything in it too."""
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (OSError, ChildProcessError):
        pass


_CLONE_NEWNS, _CLONE_NEWIPC, _CLONE_NEWPID = 0x00020000, 0x08000000, 0x20000000
_PR_SET_PDEATHSIG = 1


def _fork_worker(slot: int, job_uid: int | None, fds: list[int], opts: dict, seccomp: bytes) -> int:
    """Fork the worker of `slot` through a keeper, and return the keeper's pid. A new PID namespace
    takes effect for the children of the process that made it, so the keeper makes it and the
    worker, its child, is that namespace's first process. The keeper only waits: it dies with the
    zygote and the worker dies with it (PR_SET_PDEATHSIG), so a zygote that dies takes every
    worker, and its jobs, along."""
    zygote = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != zygote:
                return                  # the zygote died before the line above
            if "--isolate" in opts and _libc.unshare(_CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWIPC) != 0:
                raise OSError(ctypes.get_errno(), "unshare: " + os.strerror(ctypes.get_errno()))
            alive_r, alive_w = os.pipe()        # end-of-file here: the keeper is gone
            worker = os.fork()
            if worker == 0:
                os.close(alive_w)
                code = 1
                try:
                    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
                    if not select.select([alive_r], [], [], 0)[0]:     # (getppid() is 0 across namespaces)
                        os.close(alive_r)
                        code = _worker(slot, job_uid, fds, opts, seccomp)
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            os.close(alive_r)
            for fd in fds:
                os.close(fd)
            os.waitpid(worker, 0)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(0)
    return pid


# --- the worker ---------------------------------------------------------------------------------
def _worker(slot: int, job_uid: int | None, fds: list[int], opts: dict, seccomp: bytes) -> int:
    global _CTRL_IN, _CTRL_OUT
    _CTRL_IN, _CTRL_OUT = fds
    os.setsid()
    _prctl(_PR_SET_NAME, ctypes.c_char_p(b"grader-slot%d" % slot))   # what `ps` shows
    # The job's stdin and stdout point elsewhere; the zygote's socket (fd 0) is not ours to keep.
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    if "--isolate" in opts:
        _own_mounts(opts["--isolate"])
        _drop_capabilities(_CAP_SYS_ADMIN, _CAP_SETPCAP)
    if seccomp:
        _load_seccomp(seccomp)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)  # orphans (setsid daemons) come back to us, to be killed
    write_frame(_CTRL_OUT, json.dumps({"ready": True, "torch": torch.__version__, "slot": slot,
                                       "python": sys.version.split()[0],
                                       "numpy": getattr(numpy, "__version__", None)}).encode())
    spare = _Runner.fork(job_uid)
    served = 0
    while True:
        try:
            spec = json.loads(read_frame(_CTRL_IN))
            blob = read_frame(_CTRL_IN)
        except EOFError:
            return 0
        key = spec.get("calls_key")
        if spec["runs"] and spec["runs"][0].get("calls") is None and key == _CALLS["key"]:
            spec["runs"][0]["calls"], blob = _CALLS["calls"], _CALLS["blob"]
        elif key:
            _CALLS.update(key=key, calls=spec["runs"][0]["calls"] if spec["runs"] else [], blob=blob,
                          tensors=st.load(blob) if blob else {})
        reply, workdir = run_job(spec, blob, job_uid, spare)
        write_frame(_CTRL_OUT, reply)
        # Cleanup and the next runner's fork happen after the answer, while the trusted side
        # compares; still before the next job is read, so nothing of this job meets the next.
        _kill_descendants()
        _remove_tree(workdir)
        served += 1
        if served == COLLAPSE_AFTER_JOBS:
            _collapse_heap()
        spare = _Runner.fork(job_uid)


_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x8, 0x4000, 0x40000
_CAP_SETPCAP, _CAP_SYS_ADMIN = 8, 21
_PR_CAPBSET_DROP = 24


def _own_mounts(tmp_mb: int) -> None:
    """This worker's /tmp and /dev/shm (what one job writes there, or fills, no other slot sees)
    and a /proc of its own PID namespace. Private first, so nothing mounted here reaches the zygote."""
    def mount(source, target, fstype, flags, data=None):
        if _libc.mount(source, target.encode(), fstype, flags, data) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount {target}: {os.strerror(err)}")

    mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    mount(b"tmpfs", "/tmp", b"tmpfs", _MS_NOSUID | _MS_NODEV, b"size=%dm,mode=1777" % tmp_mb)
    mount(b"tmpfs", "/dev/shm", b"tmpfs", _MS_NOSUID | _MS_NODEV, b"size=16m,mode=1777")
    mount(b"proc", "/proc", b"proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    os.chdir("/tmp")            # the zygote's /tmp stays below; the jobs' paths all start here


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _drop_capabilities(*caps: int) -> None:
    """Out of the bounding set, then out of the effective, permitted and inheritable sets (and so
    the ambient one): gone for good, no exec can give them back."""
    for cap in caps:        # CAP_SETPCAP, dropped last, is what allows dropping from the bounding set
        _prctl(_PR_CAPBSET_DROP, cap)
    head, data = _CapHeader(0x20080522, 0), (_CapData * 2)()     # _LINUX_CAPABILITY_VERSION_3
    if _libc.capget(ctypes.byref(head), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    for cap in caps:
        word, bit = divmod(cap, 32)
        for field in ("effective", "permitted", "inheritable"):
            setattr(data[word], field, getattr(data[word], field) & ~(1 << bit))
    if _libc.capset(ctypes.byref(head), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


_SECCOMP_MODE_FILTER = 2


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _load_seccomp(program: bytes) -> None:
    """Install the strict filter compiled by the trusted side (raw BPF, 8 bytes an instruction).
    It stacks on the zygote's looser one; every runner inherits both."""
    code = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.addressof(code))
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    _prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog))


def _warm_up() -> None:
    """What every runner would otherwise redo after its fork: done once, before forking."""
    torch.set_num_threads(1)
    # What torch.use_deterministic_algorithms does, minus importing torch's compiler to set its
    # config: that import is 1 s and 70 MB per worker start, and only torch.compile reads it. (A
    # runner whose code imports torch.optim pays that import itself, within its cell's time.)
    torch._C._set_deterministic_algorithms(True, warn_only=True)
    torch.zeros(1) @ torch.zeros(1)                 # warm the kernels
    repr(torch.zeros(1))                            # printing a tensor imports more of torch (~5 ms a runner)
    gc.collect()
    gc.freeze()     # the runner's garbage collector then never walks (and so never copies) our pages
    gc.set_threshold(*_GC_DEFAULTS)


_HUGE = 2 * 2**20
_MADV_COLLAPSE = 25
# A worker that has served this many jobs is in a batch: only then are its pages collapsed, so a
# student's single check (and a batch's start) never waits for it.
COLLAPSE_AFTER_JOBS = 8


def _collapse_heap() -> None:
    """Back the worker's heap with 2 MB pages where the kernel can (MADV_COLLAPSE, Linux 6.1+;
    elsewhere refused, and nothing changes); 0.05-0.4 s, once, between two jobs (no runner
    exists then to share the pages being moved). Every job forks this process (~150 MB
    of its own memory) and the runner exits again: fork copies, and exit tears down, one
    page-table entry per 4 KB page, ~55000, but one per 2 MB page: ~6 ms less CPU a job. A runner
    that writes into a huge page still copies only 4 KB of it (the kernel splits the runner's
    mapping first). Only 2 MB stretches already (almost) all in memory are collapsed: filling
    sparse ones would cost memory."""
    if not sys.platform.startswith("linux"):
        return          # `--sandbox none` on macOS: the advice number means something else there
    madvise, mincore = _libc.madvise, _libc.mincore
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
    resident = (ctypes.c_ubyte * (_HUGE // 4096))()
    for start, end in _anonymous_regions():
        for chunk in range(-(-start // _HUGE) * _HUGE, end - _HUGE + 1, _HUGE):
            if mincore(chunk, _HUGE, resident) == 0 and sum(b & 1 for b in resident) >= len(resident) * 7 // 8:
                madvise(chunk, _HUGE, _MADV_COLLAPSE)


def _anonymous_regions() -> list[tuple[int, int]]:
    """Private writable memory backed by no file: malloc's heap and arenas, Python's arenas."""
    out = []
    try:
        with open("/proc/self/maps") as f:
            lines = f.readlines()
    except OSError:     # no /proc mounted
        return out
    for line in lines:
        fields = line.split()
        if fields[1] == "rw-p" and (len(fields) == 5 or fields[5] == "[heap]"):
            out.append(tuple(int(x, 16) for x in fields[0].split("-")))
    return out


class _Runner:
    """A forked runner process, already without privileges, waiting on a pipe for its job."""

    def __init__(self, pid: int, job_fd: int, progress_fd: int, calls_key):
        self.pid, self.job_fd, self.progress_fd, self.calls_key = pid, job_fd, progress_fd, calls_key

    @classmethod
    def fork(cls, job_uid, job: tuple | None = None) -> "_Runner":
        """With `job` = (spec, blob, resume_at, skip, workdir) the child starts on it at once
        (a resumed run); without, it waits for `start()`."""
        job_r, job_w = os.pipe()
        prog_r, prog_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(job_w)
                os.close(prog_r)
                _become_runner(job_uid)
                if job is None:
                    head = json.loads(read_frame(job_r))
                    blob = read_frame(job_r)
                    if head.get("inherited"):     # the calls this runner was forked with
                        head["spec"]["runs"][0]["calls"], blob = _CALLS["calls"], _CALLS["blob"]
                    job = (head["spec"], blob, head["resume_at"], set(head["skip"]), head["workdir"])
                os.close(job_r)
                spec, blob, resume_at, skip, workdir = job
                _runner(spec, blob, plan(spec), resume_at, skip, prog_w, workdir)
            finally:
                _os_exit(0)         # not os._exit: in a runner, that is the student's (see _exit_hook)
        os.close(job_r)
        os.close(prog_w)
        return cls(pid, job_w, prog_r, _CALLS["key"])

    def start(self, spec: dict, blob: bytes, workdir: str) -> bool:
        try:
            inherited = bool(spec["runs"]) and self.calls_key is not None and spec.get("calls_key") == self.calls_key
            if inherited:
                spec = dict(spec, runs=[dict(spec["runs"][0], calls=None)] + spec["runs"][1:])
            head = json.dumps({"spec": spec, "resume_at": 0, "skip": [], "workdir": workdir,
                               "inherited": inherited}).encode()
            write_frame(self.job_fd, head)
            write_frame(self.job_fd, b"" if inherited else blob)
            return True
        except OSError:
            return False
        finally:
            os.close(self.job_fd)

    def discard(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        _reap(self.pid)
        os.close(self.progress_fd)


def run_job(spec: dict, blob: bytes, job_uid: int | None, spare: _Runner) -> tuple[bytes, str]:
    started = time.monotonic()
    workdir = os.path.join(spec["tmp"], f"job-{spec['id']}")
    os.makedirs(workdir, mode=0o700)
    if job_uid is not None:
        os.chown(workdir, job_uid, job_uid)
    steps = plan(spec)
    events: list[dict] = []         # what the worker itself saw: kills, crashes, exits
    got = _Results()                # what the runners reported, step by step, as it came
    skip: set[int] = set()
    resume_at = 0
    limit = float(spec["limits"]["cell_seconds"])
    runner = spare if spare.start(spec, blob, workdir) else None
    if runner is None:
        spare.discard()
    while resume_at < len(steps):
        if runner is None:
            runner = _Runner.fork(job_uid, (spec, blob, resume_at, skip, workdir))
        current, stopped, done = _watch(runner.pid, runner.progress_fd, limit, len(steps), resume_at, got)
        os.close(runner.progress_fd)
        if done:
            break       # the runner exits on its own; it is reaped after the answer is sent
        status, killed = _reap(runner.pid)
        _kill_descendants()
        runner = None
        event = {"step": current, "status": stopped or _describe_status(status)}
        if stopped is None and killed:
            event["status"] = "the process closed its channel to the grader without ending, and was stopped"
        elif stopped is None and os.WIFEXITED(status):
            event["exit_code"] = os.WEXITSTATUS(status)     # the trusted side words it (see run.decode)
        events.append(event)
        skip.add(current)
        resume_at = max(resume_at, current + 1)   # a replayed step that dies is skipped, not rerun
    files = _collect(workdir) + [(f"step-{n:05d}", got.parts[n]) for n in sorted(got.parts)]
    header = {"events": events, "seconds": time.monotonic() - started, "files": [[n, len(b)] for n, b in files]}
    return json.dumps(header).encode() + b"\n" + b"".join(b for _, b in files), workdir


def plan(spec: dict) -> list[dict]:
    """Every step of the job in order: each run's blocks, then (public run only) its calls."""
    steps = []
    for r, run in enumerate(spec["runs"]):
        for b, block in enumerate(run["blocks"]):
            steps.append({"kind": "block", "run": r, "index": b})
        for c, call in enumerate(run.get("calls", [])):
            steps.append({"kind": "call", "run": r, "index": c})
    return steps


# The runner's channel to its worker: frames of a tag, a step number and a payload.
#   B n      step n begins                      E n [record]  step n ended; what it produced
#   X n [record]  step n's code is ending the process (os._exit): what it produced until then
#   D        every step is done
# A record is a 4-byte length, the step's JSON record, then its tensors as one safetensors file.
_FRAME = struct.Struct(">cII")
_TAGS = frozenset((b"B", b"E", b"X", b"D"))
_TAMPERED = ("the run was ended here: the program wrote into the grader's own channel to its worker "
             "(what it had reported before was kept)")


class _Results:
    """The records the runners of one job sent, by step: the first one for a step is kept."""

    def __init__(self):
        self.parts: dict[int, bytes] = {}
        self.size = 0

    def add(self, step: int, payload) -> None:
        if step not in self.parts and self.size + len(payload) <= MAX_RESULT_BYTES:
            self.parts[step] = bytes(payload)
            self.size += len(payload)


def _watch(pid: int, rfd: int, limit: float, n_steps: int, resume_at: int = 0,
           got: _Results | None = None) -> tuple[int, str | None, bool]:
    """Follow the runner's frames (see _FRAME) and keep what it reports in `got`. Returns (the step
    to blame, why, finished every step).

    The student's code runs in the runner's process and can write to this pipe too (it can find
    the descriptor), so nothing read here is trusted, it is only put in order; the trusted side
    checks every byte (safetensors' parser, exact torch.Tensor, sizes). What forging could still
    do is bounded here, by what this process knows itself:
    - a step begins only after the one before it ended, and steps only go forward: a record for
      step n is taken only while step n runs, and the first one kept; nothing can replace what an
      earlier step (another seed's run, an earlier case) reported, nor a value the runner of an
      earlier attempt sent (a re-forked runner's replayed steps, below `resume_at`, report nothing);
    - the record is filed under the step this process counted, never under a number it carries,
      and the trusted side reads a step's tensors only through that step's own record.
    So a forger can only report, for the step that runs and the steps after it (all of them: the
    runner's own frames then come out of order and are ignored), values its own code computed in
    this process: what assigning the variable or returning the value gets it anyway. To pass a
    hidden seed's check it must compute that seed's right values, which is the homework; it
    cannot reuse anything reported under another seed. Frames that do not parse end the run
    there (_TAMPERED), with everything reported before kept.
    Any frame only ever moves the deadline forward within a whole-job budget; none can switch the
    clock off."""
    got = got if got is not None else _Results()
    buf = bytearray()
    current, last = None, -1
    deadline = time.monotonic() + limit
    job_deadline = time.monotonic() + limit * (n_steps + 2)
    head = _FRAME.size
    while True:
        now = time.monotonic()
        ready, _, _ = select.select([rfd], [], [], max(0.0, min(deadline, job_deadline) - now))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            blame = current if current is not None else last + 1
            return min(blame, n_steps - 1), f"time limit of {limit:g} s reached", False
        chunk = os.read(rfd, 1 << 16)      # (asking for 1 MB costs 8x more a read: a buffer that size each time)
        if not chunk:
            if current is not None:
                return current, None, False
            if last < 0 or last >= n_steps - 1:
                return 0, None, last >= 0
            # It died between steps: something the last step left behind (a thread, a signal
            # handler) ended it. That step's effects are lost; the run goes on without them.
            return last, "the process ended right after this step (a thread or handler it started ended it)", False
        buf += chunk
        pos, end = 0, len(buf)
        while end - pos >= head:
            tag, n, size = _FRAME.unpack_from(buf, pos)
            if tag not in _TAGS or size > MAX_RESULT_BYTES:
                os.kill(pid, signal.SIGKILL)
                blame = current if current is not None else last + 1
                return min(blame, n_steps - 1), _TAMPERED, False
            if end - pos - head < size:
                break
            start, pos = pos + head, pos + head + size
            if tag == b"B":
                if current is None and last < n < n_steps:
                    current = last = n
                    deadline = time.monotonic() + limit
            elif tag == b"E":
                if n == current:
                    current = None
                    deadline = time.monotonic() + limit
                    if size and n >= resume_at:
                        got.add(n, memoryview(buf)[start:pos])
            elif tag == b"X":
                if n == current and size and n >= resume_at:
                    got.add(n, memoryview(buf)[start:pos])
            elif current is None and last == n_steps - 1:      # D
                return 0, None, True
        del buf[:pos]


def _reap(pid: int, grace: float = 2.0) -> tuple[int, bool]:
    """Wait for the runner; one that lingers after saying it is done (or after closing its
    channel) is killed. Returns its wait status, and whether we killed it."""
    end = time.monotonic() + grace
    killed = False
    while True:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0, killed
        if got:
            return status, killed
        if time.monotonic() > end:
            os.kill(pid, signal.SIGKILL)
            end, killed = float("inf"), True
        time.sleep(0.0005)


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        names = {signal.SIGKILL: "killed (SIGKILL; most likely the memory limit)",
                 signal.SIGXCPU: "CPU time limit reached", signal.SIGSEGV: "crashed (segmentation fault)",
                 signal.SIGXFSZ: "file size limit reached", signal.SIGABRT: "aborted"}
        return names.get(sig, f"killed by signal {signal.Signals(sig).name}")
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    return f"the process exited (exit code {code}) before the step finished"


def _descendants() -> list[int]:
    me = os.getpid()
    parent = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
                parent[int(name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    out, frontier = [], [me]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c != me]
        out += kids
        frontier += kids
    return out


def _kill_descendants() -> None:
    """Every process the job made, daemons included (we are their subreaper), is killed and reaped."""
    for _ in range(50):
        pids = _descendants()
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        while True:
            try:
                got, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if got == 0:
                time.sleep(0.002)
                if not _descendants():
                    break


_FD_OUTPUT_BYTES = 1 << 16      # the trusted side shows its beginning only


def _collect(workdir: str) -> list[tuple[str, bytes]]:
    """The beginning of what the job wrote to its file descriptors 1 and 2 below Python. Only
    that file: what the runner reports came over its channel (_watch), and nothing the student's
    code writes into the working directory is mistaken for it."""
    try:
        fd = os.open(os.path.join(workdir, "out", "fd-output.txt"), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return []
    try:
        data = os.read(fd, _FD_OUTPUT_BYTES) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    finally:
        os.close(fd)
    return [("fd-output.txt", data)] if data else []


def _remove_tree(path: str) -> None:
    for root, dirs, files in os.walk(path, topdown=False):
        for n in files + dirs:
            p = os.path.join(root, n)
            try:
                os.chmod(p, 0o700, follow_symlinks=False) if not os.path.islink(p) else None
                os.rmdir(p) if n in dirs and not os.path.islink(p) else os.unlink(p)
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


# --- the runner (a forked child: everything below runs next to the student's code) --------------
class _CappedText(io.TextIOBase):
    """stdout/stderr of one step: kept up to a cap, the rest dropped and counted."""

    def __init__(self, cap: int):
        self.cap, self.parts, self.size, self.dropped = cap, [], 0, 0

    def writable(self):
        return True

    def write(self, s):
        s = str(s)
        room = self.cap - self.size
        if room > 0:
            self.parts.append(s[:room])
            self.size += min(len(s), room)
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def value(self) -> str:
        return "".join(self.parts)

    def reset(self) -> None:
        self.parts, self.size, self.dropped = [], 0, 0


def _become_runner(job_uid) -> None:
    """Leave the worker's session, close its control pipe, and drop every privilege."""
    os.setsid()
    for fd in (_CTRL_IN, _CTRL_OUT):
        os.close(fd)
    if job_uid is not None:
        os.setgroups([])
        os.setresgid(job_uid, job_uid, job_uid)
        os.setresuid(job_uid, job_uid, job_uid)      # every capability is gone from here on
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # an over-long write fails instead of killing


def _runner(spec, blob, steps, resume_at, skip, progress_fd, workdir):
    limits = spec["limits"]
    _set_limits(limits, len(steps))
    os.chdir(workdir)
    outdir = os.path.join(workdir, "out")
    os.makedirs(outdir, exist_ok=True)
    os.makedirs(os.path.join(workdir, "tmp"), exist_ok=True)
    os.environ.update(HOME=workdir, TMPDIR=os.path.join(workdir, "tmp"), MPLBACKEND="Agg")
    sink = os.open(os.path.join(outdir, "fd-output.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(sink, 1)
    os.dup2(sink, 2)
    os.close(sink)
    sys.path[:] = [p for p in sys.path if p not in ("", ".", workdir)]
    sys.argv = ["submission"]
    try:        # the whole job's reports then usually fit in the pipe: the runner seldom waits for the worker
        fcntl.fcntl(progress_fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (AttributeError, OSError):
        pass
    _channel[0] = os.fstat(progress_fd).st_ino
    inputs = _Inputs(blob)
    if any(s["kind"] == "call" for s in steps[resume_at:]):
        inputs.load()       # now, while safetensors.torch and torch are still as imported
    codes = {}          # each block compiled once per job, though it runs under every seed
    namespace = None
    # What a step produced is sent to the worker as soon as the step ends (a block's captures, a
    # function item's results), and what the step that is running produced until then, when its
    # code ends the process (_exit_hook): nothing in this process or its working directory holds
    # it afterwards, so nothing the student's code does later (delete files, replace json.dumps,
    # os.write, builtins, exit) can lose or change it. A replayed step (a re-forked runner
    # going back over the earlier steps of its run) reports nothing: it was reported the first time.
    os._exit = _exit_hook("os._exit")
    if posix is not None:
        posix._exit = _exit_hook("posix._exit")
    for n, step in enumerate(steps):
        run = spec["runs"][step["run"]]
        if step["kind"] == "block" and step["index"] == 0:
            namespace = _fresh_namespace(run["seed"])
        if n in skip:
            continue
        replay = n < resume_at
        if replay and steps[resume_at]["run"] != step["run"]:
            continue
        _send(progress_fd, b"B", n)
        tensors = {}
        if step["kind"] == "block":
            result = _run_block(run["blocks"][step["index"]], namespace, limits, replay, n, tensors, codes, progress_fd)
        else:
            result = _run_call(run["calls"][step["index"]], namespace, inputs, limits, n, tensors, run["seed"], progress_fd)
        _send(progress_fd, b"E", n, b"" if replay else _report(result, n, tensors))
    _send(progress_fd, b"D", 0)


# Bound when the probe is imported, before any student code runs: what sends a step's report
# goes through none of what the student's code can replace (os.write, json.dumps, struct.pack,
# time.perf_counter; builtins: see the top of the file). The student's code shares this
# process, so it could still reach into our own objects on purpose (gc, frames, ctypes): what
# that can and cannot forge is bounded by the worker (_watch), and checked by the trusted side.
_write, _getpid, _getframe, _os_exit, _perf_counter = os.write, os.getpid, sys._getframe, os._exit, time.perf_counter
_fstat = os.fstat
_channel = [None]               # the inode of the runner's channel, as it was given
CHANNEL_LOST = 101              # a runner's exit code when its channel was closed or replaced under it
_pack_frame, _pack_len, _pack_u64 = _FRAME.pack, struct.Struct(">I").pack, struct.Struct("<Q").pack


def _unencodable(value):
    raise TypeError(f"{type(value).__name__} is not JSON")


try:
    from _json import encode_basestring_ascii as _ascii, make_encoder as _make_encoder
    # json.dumps' own C encoder, made once here: json.dumps, JSONEncoder and json.encoder's
    # module attributes are looked up anew on every call, so the student's code could replace them.
    _json_chunks = _make_encoder(None, _unencodable, _ascii, None, ":", ",", False, False, True)

    def _dumps(value) -> bytes:
        return "".join(_json_chunks(value, 0)).encode()
except ImportError:  # pragma: no cover  (an interpreter without the C accelerator)
    _json_dumps = json.dumps

    def _dumps(value) -> bytes:
        return _json_dumps(value, separators=(",", ":")).encode()


def _send(fd: int, tag: bytes, step: int, payload: bytes = b"") -> None:
    """One frame to the worker. A channel the student's code closed or replaced (os.closerange,
    os.dup2) reaches nobody any more: the runner then ends, in a way the worker can tell."""
    try:
        if _fstat(fd).st_ino != _channel[0]:
            raise OSError
        data = memoryview(_pack_frame(tag, step, len(payload)) + payload)
        while data:
            data = data[_write(fd, data):]
    except OSError:
        _os_exit(CHANNEL_LOST)


def _report(result: dict, n: int, tensors: dict) -> bytes:
    """A step's record for the worker: its JSON (4-byte length first), then its tensors. A record
    the trusted side would refuse anyway (over its size cap) goes without its tensors."""
    result["step"] = n
    try:
        text = _dumps(result)
    except (TypeError, ValueError, RecursionError, OverflowError):      # not ours to crash on
        text = _dumps({"kind": result.get("kind"), "status": "error", "step": n,
                       "note": "the grader could not record what this step produced"})
    data = _safetensors(tensors) if tensors else b""
    if len(text) + len(data) > MAX_RESULT_BYTES - 8:
        data = b""
    return _pack_len(len(text)) + text + data


class _Step:
    """The step that is running, as the exit hook needs it to report what it produced so far."""
    __slots__ = ("n", "fd", "result", "tensors", "limits", "block", "namespace", "out", "err", "t0", "case")

    def __init__(self, n, fd, result, tensors, limits, block=None, namespace=None, out=None, err=None, t0=0.0):
        self.n, self.fd, self.result, self.tensors, self.limits = n, fd, result, tensors, limits
        self.block, self.namespace, self.out, self.err, self.t0, self.case = block, namespace, out, err, t0, None


_now: _Step | None = None       # set while a step that reports runs (not while one is replayed)
_pid = [None]                   # the runner's pid: its forks inherit the hook, and report nothing


def _exit_hook(how: str):
    """What os._exit (and posix._exit) become in a runner: report the step that runs, with what it
    produced until now (a block's captures as they stand, a function item's finished cases) and
    where the exit was called, then exit as asked. Only the runner itself reports, once."""
    _pid[0] = _getpid()

    def _exit(*args, **kwargs):
        code = args[0] if len(args) == 1 and not kwargs else kwargs.get("status") if not args and len(kwargs) == 1 else None
        if type(code) in (int, bool) and -2**31 <= code < 2**31:     # otherwise _exit raises, and nothing ends
            try:
                _report_exit(how, int(code), _getframe(1))
            except BaseException:
                pass
        _os_exit(*args, **kwargs)

    _exit.__name__ = _exit.__qualname__ = "_exit"
    return _exit


def _report_exit(how: str, code: int, frame) -> None:
    global _now
    step, _now = _now, None
    if step is None or _getpid() != _pid[0]:
        return
    cell = line = None
    while frame is not None:                    # the innermost of the student's own frames
        name = frame.f_code.co_filename
        if name.startswith("<cell ") and name[6:-1].isdigit():
            cell, line = int(name[6:-1]), frame.f_lineno
            break
        frame = frame.f_back
    result = step.result
    result["exit"] = {"how": how, "code": code, "cell": cell, "line": line}
    if step.block is not None:
        result.update(status="exit", note=f"{how}({code}) was called", seconds=_perf_counter() - step.t0,
                      captures=_capture(step.block, step.namespace, step.n, step.tensors, step.limits),
                      stdout=step.out.value(), stderr=step.err.value(), dropped=step.out.dropped + step.err.dropped)
    elif step.case is not None:                 # the case that was running never returned
        result["cases"] = [c for c in result["cases"] if c is not step.case]
    _send(step.fd, b"X", step.n, _report(result, step.n, step.tensors))


def _set_limits(limits: dict, n_steps: int) -> None:
    def cap(which, value):
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))

    with open("/proc/self/status") as f:
        vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
    cap(resource.RLIMIT_AS, vm + int(limits["memory_mb"]) * 2**20)
    cap(resource.RLIMIT_CPU, int(limits["cell_seconds"] * (n_steps + 2)) + 5)
    cap(resource.RLIMIT_FSIZE, int(limits["file_mb"]) * 2**20)
    cap(resource.RLIMIT_CORE, 0)
    if limits.get("nproc"):
        cap(resource.RLIMIT_NPROC, int(limits["nproc"]))


def _fresh_namespace(seed: int) -> dict:
    _seed_random(seed)
    _seed_torch(seed)       # the CPU generator is all there is here; torch.manual_seed costs 0.1 ms
    if _seed_numpy is not None:
        _seed_numpy(seed % 2**32)
    import builtins
    # Jupyter gives every notebook `display`; notebooks call it without importing it.
    return {"__name__": "__main__", "__builtins__": builtins, "display": _display}


def _display(*objs, **kwargs):
    for o in objs:
        print(repr(o))


_seed_random, _seed_torch = random.seed, torch.default_generator.manual_seed
_seed_numpy = numpy.random.seed if numpy is not None else None


def _safetensors(tensors: dict) -> bytes:
    """The safetensors file of {name: (dtype, shape, bytes)}, written here rather than by
    safetensors.torch, whose Python side costs ~40 µs a tensor. The format: header length (8 bytes,
    little-endian), a JSON header padded with spaces to a multiple of 8, then the data back to
    back. In safetensors' own order (by dtype, widest first, then by name), which keeps every
    tensor aligned and makes the file byte for byte what safetensors.torch.save writes."""
    header, chunks, offset = {}, [], 0
    for name, (dtype, shape, data) in sorted(tensors.items(), key=lambda kv: (_ST_ORDER[kv[1][0]], kv[0])):
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = _dumps(header)
    text += b" " * (-len(text) % 8)
    return b"".join([_pack_u64(len(text)), text] + chunks)


def _compiled(source: str, filename: str, codes: dict):
    code = codes.get((filename, source))
    if code is None:
        code = codes[filename, source] = compile(source, filename, "exec", dont_inherit=True)
    return code


def _run_block(block, namespace, limits, replay, n, tensors, codes, fd=-1) -> dict:
    global _now
    filename = f"<cell {block['cell']}>"
    linecache.cache[filename] = (len(block["source"]), None, block["source"].splitlines(True), filename)
    out = _CappedText(limits["output_kb"] * 1024)
    err = _CappedText(limits["output_kb"] * 1024)
    result = {"kind": "block", "key": block["key"], "status": "ok"}
    t0 = _perf_counter()
    if not replay:
        _now = _Step(n, fd, result, tensors, limits, block, namespace, out, err, t0)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = (io.StringIO(), io.StringIO()) if replay else (out, err)
    try:
        exec(_compiled(block["source"], filename, codes), namespace)
    except SystemExit as e:
        result.update(status="exit", note=_exit_note(e))
    except BaseException as e:  # the student's exception, whatever it is, is a result
        result.update(status="limit" if _is_memory_error(e) else "error", error=_error_info(e))
    finally:
        sys.stdout, sys.stderr = saved
        _now = None
    result.update(seconds=_perf_counter() - t0)
    if not replay:
        result.update(captures=_capture(block, namespace, n, tensors, limits),
                      stdout=out.value(), stderr=err.value(), dropped=out.dropped + err.dropped)
    return result


def _capture(block, namespace, n, tensors, limits) -> dict:
    meta = {}
    for name in block.get("capture", []):
        meta[name] = _encode(namespace[name], f"{n}:{name}", tensors, limits) if name in namespace else {"kind": "absent"}
    return meta


def _exit_note(e: SystemExit) -> str:
    """sys.exit(...) in a cell ends that cell only, as in a notebook; where it was called."""
    try:
        note = f"sys.exit({e.code!r}) was called"[:200]
        frames = _cell_frames(e.__traceback__)
        if frames:
            note += f" in cell {frames[-1].filename[6:-1]}, line {frames[-1].lineno}"
        return note
    except BaseException:
        return "sys.exit() was called"


def _run_call(call, namespace, inputs, limits, n, tensors, seed, fd=-1) -> dict:
    global _now
    result = {"kind": "call", "item": call["item"], "cases": []}
    fn = namespace.get(call["name"]) if namespace is not None else None
    _seed_torch(seed)    # once per item: torch.manual_seed costs ~0.1 ms a call
    out, err = _CappedText(4096), _CappedText(4096)
    _now = step = _Step(n, fd, result, tensors, limits)
    for case in call["cases"]:
        entry = {"id": case["id"], "status": "ok"}
        result["cases"].append(entry)
        if not callable(fn):
            entry.update(status="missing", note=f"{call['name']} is not defined" if fn is None
                         else f"{call['name']} is a {type(fn).__name__}, not a function")
            continue
        args = [inputs.decode(a) for a in case["args"]]
        kwargs = {k: inputs.decode(v) for k, v in case.get("kwargs", {}).items()}
        out.reset()
        err.reset()
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        step.case = entry
        t0 = _perf_counter()
        try:
            value = fn(*args, **kwargs)
        except SystemExit as e:
            entry.update(status="error", error={"type": "SystemExit", "message": _exit_note(e),
                                                "traceback": "", "cell": None, "line": None})
            continue
        except BaseException as e:
            entry.update(status="limit" if _is_memory_error(e) else "error", error=_error_info(e))
            continue
        finally:
            step.case = None
            sys.stdout, sys.stderr = saved
            entry["seconds"] = _perf_counter() - t0
            if out.size:
                entry["stdout"] = out.value()
        if isinstance(value, NotImplementedError):
            value = None
        entry["value"] = _encode(value, f"{n}:{call['item']}/{case['id']}", tensors, limits)
    _now = None
    return result


def _is_memory_error(e: BaseException) -> bool:
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and "can't allocate memory" in str(e))


def _error_info(e: BaseException) -> dict:
    """The traceback trimmed to the student's own cells, with cell and line numbers; an exception
    that cannot be described (its __str__ raises, traceback was replaced) is still a result."""
    try:
        return _describe_error(e)
    except BaseException:
        return {"type": type(e).__name__, "message": "(the error could not be described)", "cell": None,
                "line": None, "traceback": ""}


def _describe_error(e: BaseException) -> dict:
    info = {"type": type(e).__name__, "message": str(e)[:2000], "cell": None, "line": None}
    if isinstance(e, SyntaxError):
        cell = (e.filename or "").removeprefix("<cell ").removesuffix(">")
        info.update(message=e.msg, cell=int(cell) if cell.isdigit() else None, line=e.lineno,
                    source_line=(e.text or "").rstrip("\n"), caret=e.offset, traceback="")
        return info
    frames = _cell_frames(e.__traceback__)
    lines = []
    for f in frames:
        lines.append(f"  {f.filename[1:-1]}, line {f.lineno}, in {f.name}\n    {f.line or ''}")
    if frames:
        last = frames[-1]
        info.update(cell=int(last.filename[6:-1]), line=last.lineno, source_line=last.line or "")
    info["traceback"] = "\n".join(lines + [f"{type(e).__name__}: {str(e)[:2000]}"])
    return info


def _cell_frames(tb) -> traceback.StackSummary:
    """extract_tb(tb) without the frames outside the student's cells: extracting ours and torch's
    (source positions, source files read) costs ~40 µs a frame, and they were dropped anyway."""
    frames = traceback.walk_tb(tb)
    limit = getattr(sys, "tracebacklimit", None)
    if limit is not None:       # extract_tb cuts the whole traceback there, before our filter
        frames = itertools.islice(frames, max(limit, 0))
    return traceback.StackSummary.extract((f, n) for f, n in frames if f.f_code.co_filename.startswith("<cell "))


def _encode(value, key: str, tensors: dict, limits: dict, depth: int = 0) -> dict:
    """Turn a student's value into plain data: exactly torch.Tensor (checked before anything is
    copied), Python numbers, None and shallow tuples/lists. Everything else is refused by name."""
    kind = type(value)
    if kind is _T:
        return _encode_tensor(value, key, tensors, limits)
    if kind in (bool, int, float):
        if kind is int and abs(value) > 2**62:
            return {"kind": "refused", "type": "int", "reason": "integer too large"}
        return {"kind": "bool" if kind is bool else "number", "value": value}
    if value is None:
        return {"kind": "none"}
    if kind in (tuple, list) and depth == 0 and (len(value) <= MAX_TUPLE or _numbers(value, limits["max_elements"])):
        # A list of plain numbers may be long (nms returning a list of indices): the trusted side
        # grades it as a near miss of a tensor, so it must arrive whole.
        return {"kind": "tuple", "type": kind.__name__,
                "items": [_encode(v, f"{key}/{i}", tensors, limits, 1) for i, v in enumerate(value)]}
    if isinstance(value, _T):
        return {"kind": "refused", "type": _typename(value),
                "reason": "a subclass of torch.Tensor is not accepted; return a plain torch.Tensor"}
    if kind is _ndarray:
        return {"kind": "refused", "type": "numpy.ndarray", "reason": "a numpy array, not a torch.Tensor"}
    return {"kind": "refused", "type": _typename(value), "reason": "not a tensor or a number"}


MAX_TUPLE = 16


def _numbers(value, cap: int) -> bool:
    return len(value) <= cap and all(type(v) in (bool, int, float) for v in value)


def _typename(value) -> str:
    t = type(value)
    return f"{t.__module__}.{t.__qualname__}" if t.__module__ not in ("builtins",) else t.__qualname__


def _encode_tensor(t, key, tensors, limits) -> dict:
    # Read through torch.Tensor's own descriptors, bound below: exact type already checked above.
    if _is_sparse(t) or _layout(t) != _strided:
        return {"kind": "refused", "type": "torch.Tensor", "reason": f"a {_layout(t)} tensor; a dense tensor is expected"}
    if _device(t).type != "cpu":
        return {"kind": "refused", "type": "torch.Tensor", "reason": f"on device {_device(t).type}; move it to the CPU"}
    numel = _numel(t)
    if numel > limits["max_elements"]:
        return {"kind": "refused", "type": "torch.Tensor",
                "reason": f"{numel} elements (shape {tuple(_size(t))}); the limit is {limits['max_elements']}"}
    if _dtype(t) not in _DTYPES:
        return {"kind": "refused", "type": "torch.Tensor", "reason": f"dtype {_dtype(t)} is not supported"}
    plain = _detach(t)
    if _is_conj(plain) or _is_neg(plain):
        plain = _resolve_neg(_resolve_conj(plain))
    tag = _DTYPES.get(_dtype(plain))
    if tag is None or not _within_storage(plain):     # only a tensor someone tampered with
        return {"kind": "refused", "type": "torch.Tensor", "reason": "its shape or dtype does not match its storage"}
    tensors[key] = (tag, list(_size(plain)), _snapshot(plain))
    return {"kind": "tensor", "key": key, "requires_grad": bool(_requires_grad(t))}


# Bound at import: what decides how much raw memory is read, and what is read, must not go through
# anything the student's code can replace (torch.Tensor.size = ..., torch.Tensor.detach = ...).
_T = torch.Tensor
_contiguous, _data_ptr, _numel, _element_size = _T.contiguous, _T.data_ptr, _T.numel, _T.element_size
_size, _stride, _storage_offset, _untyped_storage = _T.size, _T.stride, _T.storage_offset, _T.untyped_storage
_storage_nbytes, _dtype, _string_at = torch.UntypedStorage.nbytes, _T.dtype.__get__, ctypes.string_at
_is_sparse, _layout, _device, _requires_grad = (_T.is_sparse.__get__, _T.layout.__get__, _T.device.__get__,
                                                _T.requires_grad.__get__)
_detach, _is_conj, _is_neg, _resolve_conj, _resolve_neg, _clone = (_T.detach, _T.is_conj, _T.is_neg, _T.resolve_conj,
                                                                   _T.resolve_neg, _T.clone)
_strided, _ndarray = torch.strided, numpy.ndarray if numpy is not None else None
_load_safetensors = st.load


def _within_storage(t) -> bool:
    """A tensor's shape can be made to outrun its storage (`untyped_storage().resize_(0)`);
    copying it would read memory that is not its own, or crash."""
    if _numel(t) == 0:
        return True
    last = _storage_offset(t) + sum((n - 1) * step for n, step in zip(_size(t), _stride(t)))
    return (last + 1) * _element_size(t) <= _storage_nbytes(_untyped_storage(t))


def _snapshot(t) -> bytes:
    """The tensor's bytes, copied now: the student's code may still change the tensor later."""
    dense = _contiguous(t)          # the tensor itself when it is already dense, else a dense copy
    size = _numel(dense) * _element_size(dense)
    return _string_at(_data_ptr(dense), size) if size else b""


# What the trusted side accepts back (it checks again), with their safetensors names; complex and
# quantized tensors are refused.
_DTYPES = {torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16", torch.int32: "I32",
           torch.int64: "I64", torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32",
           torch.float64: "F64"}
_ST_ORDER = {tag: rank for rank, tag in enumerate(("I64", "F64", "F32", "I32", "BF16", "F16", "I16", "I8", "U8", "BOOL"))}


class _Inputs:
    """Arguments sent by the trusted side: one safetensors blob plus JSON descriptions. Each call
    gets fresh copies, so a function that edits its inputs in place cannot affect the next case."""

    def __init__(self, blob: bytes):
        self.blob, self.tensors = blob, (_CALLS["tensors"] if blob is _CALLS["blob"] and blob else None)

    def load(self) -> None:
        if self.tensors is None:
            self.tensors = _load_safetensors(self.blob) if self.blob else {}

    def decode(self, arg):
        t = arg["t"]
        if t == "tensor":
            self.load()
            return _clone(self.tensors[arg["key"]])
        if t in ("num", "bool"):
            return arg["v"]
        if t == "none":
            return None
        if t == "tuple":
            return tuple(self.decode(a) for a in arg["v"])
        raise ValueError(f"unknown argument kind {t!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
