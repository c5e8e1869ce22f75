"""The sandbox's process tree: the zygote, which imported torch once, forks a keeper and a worker
per slot when the trusted side asks; a worker confines itself, then serves its slot's jobs, each in
a runner it forks (supervise).

    zygote (bwrap's child; subreaper)        one per sandbox, holds CAP_SYS_ADMIN
      keeper (makes the worker's namespaces)  one per slot, only waits
        worker (pid 1 of its namespaces)      drops CAP_SYS_ADMIN, strict seccomp, serves jobs
          runner                              one per job, the job's uid, runs the student's code

The zygote ends when the trusted side's end of its control socket closes, and kills everything it
made on the way out; a keeper dies with the zygote and a worker with its keeper (PDEATHSIG).
"""
from __future__ import annotations

import builtins
import ctypes
import gc
import json
import os
import select
import signal
import socket
import sys
import traceback

import torch

from . import execute
from .codec import load_safetensors
from .confine import (CAP_SETPCAP, CAP_SYS_ADMIN, CLONE_NEWIPC, CLONE_NEWNS, CLONE_NEWPID, PR_SET_CHILD_SUBREAPER,
                      PR_SET_DUMPABLE, PR_SET_NAME, PR_SET_PDEATHSIG, drop_capabilities, libc, load_seccomp,
                      own_mounts, prctl, unshare)
from .protocol import parse_control, read_job, write_frame
from .supervise import Runner, keep_from_runners, kill_descendants, remove_tree, run_job

try:
    import numpy
except ImportError:  # pragma: no cover
    numpy = None

# A copy of builtins, as every module of the runtime takes one (see the package's docstring).
__builtins__ = dict(vars(builtins))

# A worker that has served this many jobs is in a batch: only then are its pages collapsed, so a
# student's single check (and a batch's start) never waits for it.
COLLAPSE_AFTER_JOBS = 8


def main(argv: list[str], gc_threshold: tuple[int, ...] | None = None) -> int:
    """The zygote: `argv` holds `--isolate TMP_MB` (each worker its own namespaces and mounts) and
    `--seccomp-fd N` (the workers' strict filter); stdin is the control socket. `gc_threshold`: the
    collector's thresholds to give back before forking (the entry lowered them for torch's import)."""
    opts = {k: int(argv[argv.index(k) + 1]) for k in ("--isolate", "--seccomp-fd") if k in argv}
    seccomp = b""
    if "--seccomp-fd" in opts:
        with open(opts["--seccomp-fd"], "rb") as f:
            seccomp = f.read()
    prctl(PR_SET_DUMPABLE, 0)       # children of another uid cannot ptrace us anyway; same uid neither
    # What a killed worker or keeper leaves (a job's daemon, without --isolate's PID namespace)
    # comes back to us, to be killed when we end.
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    warm_up(gc_threshold or gc.get_threshold())
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
            kill_descendants()
            return 0
        while _reap_any():
            pass
        verb, slot, job_uid = parse_control(msg)
        old = workers.pop(slot, None)
        if old is not None:
            _stop_worker(old)
        if verb == "spawn" and len(fds) == 2:
            workers[slot] = _fork_worker(slot, job_uid, fds, opts, seccomp)
        for fd in fds:
            os.close(fd)


def warm_up(gc_threshold: tuple[int, ...]) -> None:
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
    gc.set_threshold(*gc_threshold)


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
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != zygote:
                return                  # the zygote died before the line above
            if "--isolate" in opts:
                unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC)
            alive_r, alive_w = os.pipe()        # end-of-file here: the keeper is gone
            worker = os.fork()
            if worker == 0:
                os.close(alive_w)
                code = 1
                try:
                    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
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


def _worker(slot: int, job_uid: int | None, fds: list[int], opts: dict, seccomp: bytes) -> int:
    """Confine this worker, say it is ready, then serve jobs until the trusted side closes its pipe."""
    ctrl_in, ctrl_out = fds
    keep_from_runners(ctrl_in, ctrl_out)
    os.setsid()
    prctl(PR_SET_NAME, ctypes.c_char_p(b"grader-slot%d" % slot))   # what `ps` shows
    # The job's stdin and stdout point elsewhere; the zygote's socket (fd 0) is not ours to keep.
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    if "--isolate" in opts:
        own_mounts(opts["--isolate"])
        drop_capabilities(CAP_SYS_ADMIN, CAP_SETPCAP)
    if seccomp:
        load_seccomp(seccomp)
    prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans (setsid daemons) come back to us, to be killed
    write_frame(ctrl_out, json.dumps({"ready": True, "torch": torch.__version__, "slot": slot,
                                      "python": sys.version.split()[0],
                                      "numpy": getattr(numpy, "__version__", None)}).encode())
    calls = execute.CALLS
    spare = Runner.fork(job_uid)
    served = 0
    while True:
        try:
            spec, blob = read_job(ctrl_in)
        except EOFError:
            return 0
        key = spec.get("calls_key")
        if spec["runs"] and spec["runs"][0].get("calls") is None and key == calls["key"]:
            spec["runs"][0]["calls"], blob = calls["calls"], calls["blob"]
        elif key:
            calls.update(key=key, calls=spec["runs"][0]["calls"] if spec["runs"] else [], blob=blob,
                         tensors=load_safetensors(blob) if blob else {})
        reply, workdir = run_job(spec, blob, job_uid, spare)
        write_frame(ctrl_out, reply)
        # Cleanup and the next runner's fork happen after the answer, while the trusted side
        # compares; still before the next job is read, so nothing of this job meets the next.
        kill_descendants()
        remove_tree(workdir)
        served += 1
        if served == COLLAPSE_AFTER_JOBS:
            collapse_heap()
        spare = Runner.fork(job_uid)


_HUGE = 2 * 2**20
_MADV_COLLAPSE = 25


def collapse_heap() -> None:
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
    madvise, mincore = libc.madvise, libc.mincore
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
