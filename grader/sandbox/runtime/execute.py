"""The runner's own work, in the forked process that runs the student's code: its blocks in order
under each seed, the names captured after them, its functions called on the trusted side's inputs;
each step's output, errors and exits recorded, and its record sent to the worker (`report`) as soon
as the step ends.

Everything here runs next to the student's code, so what the runner needs after that code has
started is bound at import (below, and in codec), and builtins are looked up in a copy taken then
(see the package's docstring). What the student's code can still forge by reaching into this
process on purpose (gc, frames, ctypes) is bounded by the worker (watch) and checked by the
trusted side.
"""
from __future__ import annotations

import builtins
import fcntl
import io
import itertools
import linecache
import os
import random
import sys
import time
import traceback

import torch

from .codec import Inputs, dumps, encode, safetensors_file
from .confine import set_limits
from .protocol import BEGIN, CHANNEL_LOST, DONE, END, EXIT, FD_OUTPUT, MAX_RESULT_BYTES, RECORD_HEAD, STEP_FRAME

try:
    import numpy
    import numpy.random     # every runner seeds it, and numpy 2 imports it lazily (~11 ms a runner)
except ImportError:  # pragma: no cover
    numpy = None
try:
    import posix
except ImportError:  # pragma: no cover
    posix = None

# A copy of builtins, as every module of the runtime takes one (see the package's docstring).
__builtins__ = dict(vars(builtins))

# The function calls of the last job that brought them, with their inputs decoded once; runners
# forked later inherit them, so jobs of the same rubric do not send or parse them again.
CALLS = {"key": None, "calls": None, "blob": b"", "tensors": None}

# Bound when the runtime is imported, before any student code runs: what sends a step's report goes
# through none of what the student's code can replace (os.write, json.dumps, struct.pack,
# time.perf_counter, os._exit).
_write, _getpid, _getframe, _os_exit, _perf_counter = os.write, os.getpid, sys._getframe, os._exit, time.perf_counter
_fstat = os.fstat
_pack_frame, _pack_len = STEP_FRAME.pack, RECORD_HEAD.pack
_seed_random, _seed_torch = random.seed, torch.default_generator.manual_seed
_seed_numpy = numpy.random.seed if numpy is not None else None
_channel = [None]               # the inode of the runner's channel, as it was given


def run(spec, blob, steps, resume_at, skip, progress_fd, workdir):
    """Run the job's steps from `resume_at` (those before it silently, those in `skip` not at all),
    reporting each over `progress_fd`. The caller ends the process afterwards."""
    limits = spec["limits"]
    set_limits(limits, steps)
    os.chdir(workdir)
    outdir = os.path.join(workdir, "out")
    os.makedirs(outdir, exist_ok=True)
    os.makedirs(os.path.join(workdir, "tmp"), exist_ok=True)
    os.environ.update(HOME=workdir, TMPDIR=os.path.join(workdir, "tmp"), MPLBACKEND="Agg")
    sink = os.open(os.path.join(outdir, FD_OUTPUT), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
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
    inputs = Inputs(blob, CALLS["tensors"] if blob is CALLS["blob"] and blob else None)
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
        this = spec["runs"][step["run"]]
        if step["kind"] == "block" and step["index"] == 0:
            namespace = _fresh_namespace(this["seed"])
        if n in skip:
            continue
        replay = n < resume_at
        if replay and steps[resume_at]["run"] != step["run"]:
            continue
        _send(progress_fd, BEGIN, n)
        tensors = {}
        if step["kind"] == "block":
            result = _run_block(this["blocks"][step["index"]], namespace, limits, replay, n, tensors, codes, progress_fd)
        else:
            result = _run_call(this["calls"][step["index"]], namespace, inputs, limits, n, tensors, this["seed"],
                               progress_fd)
        _send(progress_fd, END, n, b"" if replay else _report(result, n, tensors))
    _send(progress_fd, DONE, 0)


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
        text = dumps(result)
    except (TypeError, ValueError, RecursionError, OverflowError):      # not ours to crash on
        text = dumps({"kind": result.get("kind"), "status": "error", "step": n,
                      "note": "the grader could not record what this step produced"})
    data = safetensors_file(tensors) if tensors else b""
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
    _send(step.fd, EXIT, step.n, _report(result, step.n, step.tensors))


class CappedText(io.TextIOBase):
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


def _compiled(source: str, filename: str, codes: dict):
    code = codes.get((filename, source))
    if code is None:
        code = codes[filename, source] = compile(source, filename, "exec", dont_inherit=True)
    return code


def _run_block(block, namespace, limits, replay, n, tensors, codes, fd=-1) -> dict:
    global _now
    filename = f"<cell {block['cell']}>"
    linecache.cache[filename] = (len(block["source"]), None, block["source"].splitlines(True), filename)
    out = CappedText(limits["output_kb"] * 1024)
    err = CappedText(limits["output_kb"] * 1024)
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
        meta[name] = encode(namespace[name], f"{n}:{name}", tensors, limits) if name in namespace else {"kind": "absent"}
    return meta


def _run_call(call, namespace, inputs, limits, n, tensors, seed, fd=-1) -> dict:
    global _now
    result = {"kind": "call", "item": call["item"], "cases": []}
    fn = namespace.get(call["name"]) if namespace is not None else None
    _seed_torch(seed)    # once per item: torch.manual_seed costs ~0.1 ms a call
    out, err = CappedText(4096), CappedText(4096)
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
        entry["value"] = encode(value, f"{n}:{call['item']}/{case['id']}", tensors, limits)
    _now = None
    return result


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
