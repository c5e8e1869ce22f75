"""What both sides of the sandbox agree on: the wire formats, the job's steps and its time budgets.

The trusted side imports this module (grader/sandbox/__init__.py, grader/run.py) and so does the
sandbox's runtime; it imports nothing but the standard library (no torch) and changes nothing when
imported (no collector thresholds, no paths), so importing it is free on the trusted side.

The wire, from the trusted side in:
- control socket to the zygote: `spawn SLOT UID` (with the worker's two pipes attached; UID "-"
  keeps the zygote's uid) and `stop SLOT`; closing the socket ends the sandbox;
- a worker's pipes: frames of a 4-byte big-endian length and the bytes (FRAME_HEAD); a job is two
  frames (its JSON spec, then the calls' inputs as one safetensors file), the worker's "ready"
  message and each answer one frame. An answer (`reply`) is a JSON header (events, seconds, the
  list of files), a newline, then the files back to back: each step's record (`step_file`) and the
  beginning of what the job wrote below Python (FD_OUTPUT);
- a runner's channel to its worker: frames of a tag, a step number and a payload (STEP_FRAME):
      B n            step n begins            E n [record]   step n ended; what it produced
      X n [record]   step n's code is ending the process (os._exit): what it produced until then
      D              every step is done
  a record is a 4-byte length, the step's JSON record, then its tensors as one safetensors file
  (`record`, `split_record`).
"""
from __future__ import annotations

import json
import os
import struct

# --- limits both sides hold to -----------------------------------------------------------------
MAX_RESULT_BYTES = 256 * 2**20      # one runner's records together, and any one frame on its channel
# A value that crosses (a case's arguments, a returned or captured value) may nest tuples, lists and
# dicts with str keys: this deep, with at most this many parts in all (a list of plain numbers,
# a list of indices, may be longer: up to max_elements), and strings up to this long.
MAX_DEPTH = 6
MAX_PARTS = 4096
MAX_STR = 10_000
CHANNEL_LOST = 101                  # a runner's exit code when its channel was closed or replaced under it
EXITS = ("os._exit", "posix._exit")     # the exits a runner's exit hook reports (how it was called)
FD_OUTPUT = "fd-output.txt"         # what the job wrote to its descriptors 1 and 2, below Python
FD_OUTPUT_BYTES = 1 << 16           # of which the answer carries the beginning only


# --- the job's steps and its budgets -------------------------------------------------------------
def plan(spec: dict) -> list[dict]:
    """Every step of the job in order: each run's blocks, then (public run only) its calls, each
    with its time limit (`seconds`: a cell's is the rubric's cell_seconds; a function item's, the
    one the trusted side set for it, from the rubric or the reference's own time)."""
    steps = []
    cell = step_seconds(spec["limits"])
    for r, run in enumerate(spec["runs"]):
        for b, block in enumerate(run["blocks"]):
            steps.append({"kind": "block", "run": r, "index": b, "seconds": cell})
        for c, call in enumerate(run.get("calls", [])):
            own = call.get("seconds")
            steps.append({"kind": "call", "run": r, "index": c,
                          "seconds": float(own) if isinstance(own, (int, float)) and 0 < own <= 600 else cell})
    return steps


def step_seconds(limits: dict) -> float:
    """Wall time a cell may take (a function item's cases: its own `seconds` in the plan, this by
    default): the worker stops it then."""
    return float(limits["cell_seconds"])


# A function item's time limit, when its rubric sets none: the reference's own time for the item's
# cases times CALL_FACTOR, at least CALL_FLOOR, rounded up to 1, 2 or 5 times a power of ten (so
# the limit, and a student's message quoting it, does not move with the machine's speed of the
# day), at most a cell's. An infinite loop in a function whose reference takes milliseconds then
# costs a second, not a cell's ten. The slowest correct styles measured (Python loops over every
# element, bench/bench_limits.py) take at most 25x the reference's time, and tens of ms.
CALL_FLOOR = 1.0
CALL_FACTOR = 100.0


def derived_seconds(limits: dict, rubric_seconds: float | None, reference_seconds: float | None) -> float:
    if rubric_seconds is not None:
        return float(rubric_seconds)
    if reference_seconds is None:
        return step_seconds(limits)
    want = max(CALL_FLOOR, CALL_FACTOR * reference_seconds)
    nice = next(m * 10.0 ** e for e in range(0, 4) for m in (1, 2, 5) if m * 10.0 ** e >= want)
    return min(step_seconds(limits), nice)


def job_seconds(limits: dict, steps: list[dict]) -> float:
    """Wall time a runner may take for the whole job, whatever its steps report (the worker's
    clock, which no frame can switch off): its steps' limits and two cells more."""
    return sum(s["seconds"] for s in steps) + 2 * step_seconds(limits)


def cpu_seconds(limits: dict, steps: list[dict]) -> int:
    """The runner's RLIMIT_CPU: the job's wall-time budget, and a margin."""
    return int(job_seconds(limits, steps)) + 5


def answer_seconds(spec: dict) -> float:
    """How long the trusted side waits for a job's answer before it presumes the worker stuck:
    the job's budget, one step more (a replay's cleanup) and half a minute."""
    limits = spec["limits"]
    return job_seconds(limits, plan(spec)) + step_seconds(limits) + 30


# --- framing: 4-byte length, then the bytes ------------------------------------------------------
FRAME_HEAD = struct.Struct(">I")


def frame(data: bytes) -> bytes:
    return FRAME_HEAD.pack(len(data)) + data


def read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        b = os.read(fd, min(n, 1 << 20))
        if not b:
            raise EOFError
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def read_frame(fd: int) -> bytes:
    (n,) = FRAME_HEAD.unpack(read_exact(fd, FRAME_HEAD.size))
    return read_exact(fd, n)


def write_frame(fd: int, data: bytes) -> None:
    view = memoryview(frame(data))
    while view:
        view = view[os.write(fd, view):]


def job(spec: dict, blob: bytes) -> bytes:
    """A job as the trusted side writes it to a worker: the spec's frame, then the inputs' frame."""
    return frame(json.dumps(spec).encode()) + frame(blob)


def read_job(fd: int) -> tuple[dict, bytes]:
    spec = json.loads(read_frame(fd))
    return spec, read_frame(fd)


# --- the zygote's control socket -----------------------------------------------------------------
def spawn_message(slot: int, job_uid: int | None) -> bytes:
    return b"spawn %d %s" % (slot, b"-" if job_uid is None else b"%d" % job_uid)


def stop_message(slot: int) -> bytes:
    return b"stop %d" % slot


def parse_control(msg: bytes) -> tuple[str, int, int | None]:
    """(verb, slot, the uid the slot's jobs run as or None) of a control message."""
    verb, slot, *uid = msg.decode().split()
    return verb, int(slot), None if uid in ([], ["-"]) else int(uid[0])


# --- a worker's answer ---------------------------------------------------------------------------
def step_file(n: int) -> str:
    """The name an answer files step n's record under (the step the worker saw running)."""
    return f"step-{n:05d}"


def step_of(name: str) -> int | None:
    return int(name[5:]) if name.startswith("step-") and name[5:].isdigit() else None


def reply(header: dict, files: list[tuple[str, bytes]]) -> bytes:
    header = dict(header, files=[[name, len(data)] for name, data in files])
    return json.dumps(header).encode() + b"\n" + b"".join(data for _, data in files)


def split_reply(raw: bytes) -> tuple[dict, dict[str, bytes]]:
    """(the worker's header, {file name: bytes}); the files' bytes are the runner's, untrusted."""
    head, _, body = raw.partition(b"\n")
    header = json.loads(head)
    files, pos = {}, 0
    for name, size in header.get("files", []):
        files[name] = body[pos:pos + size]
        pos += size
    return header, files


# --- a runner's channel to its worker --------------------------------------------------------------
STEP_FRAME = struct.Struct(">cII")          # tag, step, payload size; then the payload
BEGIN, END, EXIT, DONE = b"B", b"E", b"X", b"D"
TAGS = frozenset((BEGIN, END, EXIT, DONE))
RECORD_HEAD = struct.Struct(">I")           # a record: the JSON's length, the JSON, the tensors


def split_record(data: bytes) -> tuple[bytes, bytes] | None:
    """(the record's JSON, its safetensors bytes) or None when the length does not fit."""
    size = RECORD_HEAD.unpack_from(data)[0] if len(data) >= RECORD_HEAD.size else -1
    start = RECORD_HEAD.size
    if not 0 < size <= len(data) - start:
        return None
    return data[start:start + size], data[start + size:]
