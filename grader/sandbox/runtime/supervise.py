"""A worker's side of one job: fork the runner, follow what it reports step by step against the
clock (`watch`), kill it when a step overruns and fork another that replays the run's earlier
steps silently and goes on after the stopped one; then reap it, kill whatever the job left
behind, and put the answer together.

The worker is a process the student's code cannot reach, but everything it reads from a runner
was written next to that code: it only counts, orders and forwards those bytes, and the trusted
side checks them.
"""
from __future__ import annotations

import builtins
import json
import os
import select
import signal
import stat
import time

from . import execute
from .confine import become
from .protocol import (BEGIN, DONE, END, EXIT, FD_OUTPUT, FD_OUTPUT_BYTES, MAX_RESULT_BYTES, STEP_FRAME, TAGS,
                       job_seconds, plan, read_frame, reply, step_file, step_seconds, write_frame)

# A copy of builtins, as every module of the runtime takes one (see the package's docstring).
__builtins__ = dict(vars(builtins))

_os_exit = os._exit             # a runner's os._exit becomes its exit hook (execute); the fork's end is ours
_worker_fds: list[int] = []     # the worker's control pipes: no runner keeps them


def keep_from_runners(*fds: int) -> None:
    """The worker's own descriptors, which every runner closes before anything else."""
    _worker_fds[:] = fds


class Runner:
    """A forked runner process, already without privileges, waiting on a pipe for its job."""

    def __init__(self, pid: int, job_fd: int, progress_fd: int, calls_key):
        self.pid, self.job_fd, self.progress_fd, self.calls_key = pid, job_fd, progress_fd, calls_key

    @classmethod
    def fork(cls, job_uid, job: tuple | None = None) -> "Runner":
        """With `job` = (spec, blob, resume_at, skip, workdir) the child starts on it at once
        (a resumed run); without, it waits for `start()`."""
        calls = execute.CALLS
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
                        head["spec"]["runs"][0]["calls"], blob = calls["calls"], calls["blob"]
                    job = (head["spec"], blob, head["resume_at"], set(head["skip"]), head["workdir"])
                os.close(job_r)
                spec, blob, resume_at, skip, workdir = job
                execute.run(spec, blob, plan(spec), resume_at, skip, prog_w, workdir)
            finally:
                _os_exit(0)         # not os._exit: in a runner, that is the student's (execute's exit hook)
        os.close(job_r)
        os.close(prog_w)
        return cls(pid, job_w, prog_r, calls["key"])

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
        reap(self.pid)
        os.close(self.progress_fd)


def _become_runner(job_uid) -> None:
    """Leave the worker's session, close its control pipe, and drop every privilege."""
    os.setsid()
    for fd in _worker_fds:
        os.close(fd)
    become(job_uid)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # an over-long write fails instead of killing


def run_job(spec: dict, blob: bytes, job_uid: int | None, spare: Runner) -> tuple[bytes, str]:
    """Run one job on `spare` (a runner forked before the job came) and the runners forked after
    it; (the answer for the trusted side, the job's working directory to remove)."""
    started = time.monotonic()
    workdir = os.path.join(spec["tmp"], f"job-{spec['id']}")
    os.makedirs(workdir, mode=0o700)
    if job_uid is not None:
        os.chown(workdir, job_uid, job_uid)
    steps = plan(spec)
    events: list[dict] = []         # what the worker itself saw: kills, crashes, exits
    got = Results()                 # what the runners reported, step by step, as it came
    skip: set[int] = set()
    resume_at = 0
    runner = spare if spare.start(spec, blob, workdir) else None
    if runner is None:
        spare.discard()
    while resume_at < len(steps):
        if runner is None:
            runner = Runner.fork(job_uid, (spec, blob, resume_at, skip, workdir))
        current, stopped, done = watch(runner.pid, runner.progress_fd, spec["limits"], steps, resume_at, got)
        os.close(runner.progress_fd)
        if done:
            break       # the runner exits on its own; it is reaped after the answer is sent
        status, killed = reap(runner.pid)
        kill_descendants()
        runner = None
        event = {"step": current, "status": stopped or _describe_status(status)}
        if stopped is None and killed:
            event["status"] = "the process closed its channel to the grader without ending, and was stopped"
        elif stopped is None and os.WIFEXITED(status):
            event["exit_code"] = os.WEXITSTATUS(status)     # the trusted side words it (see run.decode)
        events.append(event)
        skip.add(current)
        resume_at = max(resume_at, current + 1)   # a replayed step that dies is skipped, not rerun
        if stopped is not None and stopped.startswith(TIME_LIMIT) and steps[current]["kind"] == "block":
            # The same cell under the other seeds would spin as long again (three seeds tripled an
            # infinite loop's cost): those runs skip it, and say why.
            for later in _same_block_later(steps, current):
                if later not in skip:
                    skip.add(later)
                    events.append({"step": later, "skipped": True,
                                   "status": "not run: this cell reached its time limit under the first seed"})
    files = _collect(workdir) + [(step_file(n), got.parts[n]) for n in sorted(got.parts)]
    return reply({"events": events, "seconds": time.monotonic() - started}, files), workdir


TIME_LIMIT = "time limit of"


def _same_block_later(steps: list[dict], n: int) -> list[int]:
    """The steps that run step n's block again, under a later run's seed."""
    s = steps[n]
    return [k for k, t in enumerate(steps) if k > n and t["kind"] == "block" and t["index"] == s["index"]
            and t["run"] > s["run"]]


_TAMPERED = ("the run was ended here: the program wrote into the grader's own channel to its worker "
             "(what it had reported before was kept)")


class Results:
    """The records the runners of one job sent, by step: the first one for a step is kept."""

    def __init__(self):
        self.parts: dict[int, bytes] = {}
        self.size = 0

    def add(self, step: int, payload) -> None:
        if step not in self.parts and self.size + len(payload) <= MAX_RESULT_BYTES:
            self.parts[step] = bytes(payload)
            self.size += len(payload)


def watch(pid: int, rfd: int, limits: dict, steps: list, resume_at: int = 0,
          got: Results | None = None) -> tuple[int, str | None, bool]:
    """Follow the runner's frames (protocol.STEP_FRAME) and keep what it reports in `got`. Returns
    (the step to blame, why, finished every step).

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
    got = got if got is not None else Results()
    n_steps = len(steps)
    limit = steps[0]["seconds"] if steps else step_seconds(limits)     # the step that runs next, or runs
    buf = bytearray()
    current, last = None, -1
    deadline = time.monotonic() + limit
    job_deadline = time.monotonic() + job_seconds(limits, steps)
    head = STEP_FRAME.size
    while True:
        now = time.monotonic()
        ready, _, _ = select.select([rfd], [], [], max(0.0, min(deadline, job_deadline) - now))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            blame = current if current is not None else last + 1
            return min(blame, n_steps - 1), f"{TIME_LIMIT} {limit:g} s reached", False
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
            tag, n, size = STEP_FRAME.unpack_from(buf, pos)
            if tag not in TAGS or size > MAX_RESULT_BYTES:
                os.kill(pid, signal.SIGKILL)
                blame = current if current is not None else last + 1
                return min(blame, n_steps - 1), _TAMPERED, False
            if end - pos - head < size:
                break
            start, pos = pos + head, pos + head + size
            if tag == BEGIN:
                if current is None and last < n < n_steps:
                    current = last = n
                    limit = steps[n]["seconds"]
                    deadline = time.monotonic() + limit
            elif tag == END:
                if n == current:
                    current = None
                    limit = steps[n + 1]["seconds"] if n + 1 < n_steps else step_seconds(limits)
                    deadline = time.monotonic() + limit
                    if size and n >= resume_at:
                        got.add(n, memoryview(buf)[start:pos])
            elif tag == EXIT:
                if n == current and size and n >= resume_at:
                    got.add(n, memoryview(buf)[start:pos])
            elif tag == DONE and current is None and last == n_steps - 1:
                return 0, None, True
        del buf[:pos]


def reap(pid: int, grace: float = 2.0) -> tuple[int, bool]:
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


def kill_descendants() -> None:
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


def _collect(workdir: str) -> list[tuple[str, bytes]]:
    """The beginning of what the job wrote to its file descriptors 1 and 2 below Python. Only
    that file: what the runner reports came over its channel (watch), and nothing the student's
    code writes into the working directory is mistaken for it."""
    try:
        fd = os.open(os.path.join(workdir, "out", FD_OUTPUT), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return []
    try:
        data = os.read(fd, FD_OUTPUT_BYTES) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    finally:
        os.close(fd)
    return [(FD_OUTPUT, data)] if data else []


def remove_tree(path: str) -> None:
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
