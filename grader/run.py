"""Stage 3: run a submission in a worker and decode what came back into a `RunResult`.

The job says which blocks to run under which seed, which names to capture after which block,
and which functions to call on which inputs. What comes back was written next to the student's
code, so it is parsed as hostile data: JSON with size caps, tensors only through safetensors,
every field type-checked. Nothing is unpickled, imported or evaluated.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import weakref

import safetensors.torch as st
import torch

from .expected import Reference
from .model import CallOutcome, CellRun, ErrorInfo, Layout, RunResult, Submission, Value
from .rubric import Rubric
from .sandbox import Worker, WorkerDied
from .sandbox.runtime import tree
from .sandbox.runtime.protocol import (derived_seconds, CHANNEL_LOST, EXITS, FD_OUTPUT, MAX_DEPTH, MAX_PARTS, MAX_STR, answer_seconds, plan, split_record,
                                      step_of)

MAX_JSON_LINE = 4 * 2**20
_DTYPES = {torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.int16, torch.int32,
           torch.int64, torch.uint8, torch.bool}


def build_job(rubric: Rubric, layout: Layout, reference: Reference, timeout: float | None = None) -> tuple[dict, bytes]:
    variables = [i.name for i in rubric.items_of("variable")] + list(rubric.script.capture if rubric.script else ())
    capture_at: dict[str, list[str]] = {}
    for name in variables:
        if name in layout.checkpoints:
            capture_at.setdefault(layout.checkpoints[name], []).append(name)
    # the wire names a block "cell.index"; everything on this side keeps the two numbers
    blocks = [{"key": f"{b.cell}.{b.index}", "cell": b.cell, "index": b.index, "source": b.source,
               "capture": capture_at.get(b.at, [])}
              for b in layout.blocks]
    last_capture = max((i for i, b in enumerate(blocks) if b["capture"]), default=-1)
    calls, blob, calls_key = build_calls(reference)
    runs = []
    for label, seed in rubric.runs:
        if label == "public":
            runs.append({"label": label, "seed": seed, "blocks": blocks, "calls": calls})
        elif last_capture >= 0:   # hidden seeds only matter for captured variables
            runs.append({"label": label, "seed": seed, "blocks": blocks[:last_capture + 1], "calls": []})
    lim = rubric.limits
    limits = {"cell_seconds": timeout or lim.cell_seconds, "memory_mb": lim.memory_mb, "processes": lim.processes,
              "output_kb": lim.output_kb, "file_mb": lim.file_mb, "max_elements": lim.max_elements}
    return {"runs": runs, "limits": limits, "calls_key": calls_key}, blob


_CALLS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def build_calls(reference: Reference) -> tuple[list, bytes, str]:
    """The function calls and their inputs are the same for every submission: built once per Reference."""
    cached = _CALLS.get(reference)
    if cached is None:
        tensors: dict[str, torch.Tensor] = {}
        calls = []
        for item in reference.rubric.items_of("function"):
            cases = [{"id": c.id, "args": [_arg(a, f"{item.id}/{c.id}/{k}", tensors) for k, a in enumerate(c.args)],
                      "kwargs": {k: _arg(v, f"{item.id}/{c.id}/{k}", tensors) for k, v in c.kwargs.items()}}
                     for c in reference.cases(item)]
            calls.append({"item": item.id, "name": item.name, "cases": cases,
                          "seconds": call_seconds(item, reference)})
        blob = st.save({k: v.detach().clone().contiguous() for k, v in tensors.items()}) if tensors else b""
        key = hashlib.sha256(json.dumps(calls).encode() + blob).hexdigest()[:16]
        cached = _CALLS[reference] = (calls, blob, key)
    return cached


def call_seconds(item, reference) -> float:
    """A function item's time limit: the rubric's, else one derived from the reference's own time
    (protocol.derived_seconds); a student's pack has no reference code to time."""
    timed = getattr(reference, "seconds", None)
    # the reference is timed (three rounds of every case) only when the rubric does not pin the limit
    own = timed(item) if timed is not None and item.seconds is None else None
    return derived_seconds({"cell_seconds": reference.rubric.limits.cell_seconds}, item.seconds, own)


def _arg(value, key: str, tensors: dict) -> dict:
    def put(t: torch.Tensor) -> str:
        name = f"{key}.{len(tensors)}"
        tensors[name] = t
        return name
    try:
        return tree.encode(value, put)
    except TypeError as e:
        raise TypeError(f"a case argument cannot be sent to the sandbox: {e}") from None


def execute(sub: Submission, layout: Layout, rubric: Rubric, reference: Reference, worker: Worker,
            timeout: float | None = None) -> RunResult:
    spec, blob = build_job(rubric, layout, reference, timeout)
    t0 = time.perf_counter()
    waited = 0.0
    try:
        reply = worker.run(spec, blob, answer_seconds(spec))
        header, files, waited = reply.header, reply.files, reply.waited
        notes = list(worker.notes)
    except WorkerDied as e:
        header, files = {"events": [], "seconds": 0.0}, {}
        notes = list(worker.notes) + [f"the sandbox worker died during this job ({e}); the job's code may have "
                                      "killed it. Results recorded before that point are kept."]
    # A job queued behind another thread's (a pool's worker busy with an infinite loop) is not
    # charged for the wait: the seconds are its own, and a batch's slowest list means something.
    seconds = time.perf_counter() - t0 - waited
    return dataclasses.replace(decode(spec, header, files, rubric, worker.kind, seconds, notes), waited=waited)


def decode(spec: dict, header: dict, files: dict, rubric: Rubric, sandbox: str, seconds: float,
           notes: list[str]) -> RunResult:
    steps = plan(spec)
    records: dict[int, dict] = {}
    values: dict[int, dict] = {}      # each step's own tensors: a record reaches no other step's
    for name, data in sorted(files.items()):
        n = step_of(name)
        if n is not None and n < len(steps):
            # filed by the worker under the step it saw running (supervise.watch), whatever the record says
            records[n], values[n] = _step_record(data, n, notes)
        elif name == FD_OUTPUT and data.strip():
            notes.append("output written below Python (C extensions, subprocesses): "
                         + data[:2000].decode("utf-8", "replace"))
    events = {e["step"]: e for e in header.get("events", []) if isinstance(e, dict) and isinstance(e.get("step"), int)}
    cells, captures, calls = [], {}, {}
    limit_hit = exit_note = None
    for n, step in enumerate(steps):
        run = spec["runs"][step["run"]]
        rec, tensors = records.get(n, {}), values.get(n, {})
        if step["kind"] == "block":
            block = run["blocks"][step["index"]]
            raw = events.get(n)
            if isinstance(raw, dict) and raw.get("skipped") is True:      # the same cell spun out under an earlier seed
                cell_run = CellRun(cell=block["cell"], block=block["index"], run=run["label"], status="skipped",
                                   note=_s(raw.get("status"), 300))
            else:
                event = _event(raw, rec, f"cell {block['cell']}")
                cell_run = _cell_run(block, run["label"], rec, event, rubric.limits.output_kb * 1024)
            cells.append(cell_run)
            if cell_run.status == "limit" and limit_hit is None:
                limit_hit = f"{cell_run.note} in cell {block['cell']}"
            meta = rec.get("captures") if isinstance(rec.get("captures"), dict) else {}
            for name in block["capture"]:
                captures[(run["label"], name)] = _value(meta.get(name), tensors, rubric.limits.max_elements)
        else:
            call = run["calls"][step["index"]]
            event = _event(events.get(n), rec, f"{call['name']}()")
            outcomes = _call_outcomes(call, rec, event, tensors, rubric.limits.max_elements)
            calls[call["item"]] = outcomes
            if event and not event[1] and limit_hit is None:
                limit_hit = f"{event[0]} in {call['name']}()"
        if event and event[2] and exit_note is None:
            exit_note = f"{event[0]} (the {run['label']} run)"
    if exit_note:
        notes.append(exit_note)
    student = sum(c.seconds for c in cells) + sum(o.seconds for v in calls.values() for o in v)
    return RunResult(sandbox=sandbox, seconds=seconds, student_seconds=student, cells=tuple(cells),
                     captures=captures, calls=calls, limit_hit=limit_hit, notes=tuple(notes))


def _step_record(data: bytes, n: int, notes: list[str]) -> tuple[dict, dict]:
    """A step's record as the runner sent it (protocol.split_record): a 4-byte length, the JSON
    record, then the step's tensors as one safetensors file. Hostile bytes: anything malformed is nothing."""
    parts = split_record(data)
    rec = _json(parts[0]) if parts is not None else None
    if not isinstance(rec, dict):
        return {}, {}
    tensors = {}
    if parts[1]:
        try:
            tensors = st.load(parts[1])
        except Exception as e:
            notes.append(f"step {n}: unreadable tensor data ({type(e).__name__}); its values are lost")
    return rec, tensors


def _event(raw, rec: dict, where: str) -> tuple[str, bool, bool] | None:
    """What the worker saw end a step: (the reason, whether the process exited rather than hit a
    limit, whether it exited by itself during the step). An exit the process announced (the
    runner's exit hook, runtime/execute.py: how, code, cell, line) is named only when the worker
    saw that exit code."""
    if not isinstance(raw, dict):
        return None
    text = _s(raw.get("status"), 300)
    code = raw.get("exit_code")
    if not isinstance(code, int) or isinstance(code, bool):
        return text, "exited" in text or "ended" in text, False
    claim = rec.get("exit") if isinstance(rec.get("exit"), dict) else {}
    said = {k: claim.get(k) for k in ("code", "cell", "line")}
    if claim.get("how") in EXITS and all(isinstance(v, int) and not isinstance(v, bool) for v in said.values()) \
            and said["code"] % 256 == code:
        text = (f"the program exited by calling {claim['how']}({said['code']}) in cell {said['cell']}, "
                f"line {said['line']}: the values computed before that point were graded")
    elif code == CHANNEL_LOST:
        text = (f"the program closed or replaced the grader's channel to its worker during {where}, which ended "
                "the run there: the values computed before that point were graded")
    else:
        text = f"the process exited (exit code {code}) during {where}: the values computed before that point were graded"
    return text, True, True


def _json(line: bytes):
    if not line or len(line) > MAX_JSON_LINE:
        return None
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def _s(x, cap: int = 20000) -> str:
    return x[:cap] if isinstance(x, str) else ""


def _error(raw) -> ErrorInfo | None:
    if not isinstance(raw, dict):
        return None
    num = lambda v: v if isinstance(v, int) and not isinstance(v, bool) else None
    return ErrorInfo(type=_s(raw.get("type"), 100), message=_s(raw.get("message"), 2000),
                     traceback=_s(raw.get("traceback"), 8000), cell=num(raw.get("cell")), line=num(raw.get("line")),
                     source_line=_s(raw.get("source_line"), 500), caret=num(raw.get("caret")))


def _cell_run(block: dict, label: str, rec: dict, event: tuple | None, out_cap: int) -> CellRun:
    if event:
        # it finished, then something it left behind ended the process; or it exited, having
        # reported what it had computed (its record)
        status = "exit" if event[1] or rec else "limit"
        seconds = rec.get("seconds") if isinstance(rec.get("seconds"), (int, float)) else 0.0
        return CellRun(cell=block["cell"], block=block["index"], run=label, status=status,
                       seconds=float(seconds), note=event[0], stdout=_s(rec.get("stdout"), out_cap),
                       stderr=_s(rec.get("stderr"), out_cap), error=_error(rec.get("error")))
    if not rec:
        return CellRun(cell=block["cell"], block=block["index"], run=label, status="skipped",
                       note="no record of this cell: the run ended before it")
    status = rec.get("status") if rec.get("status") in ("ok", "error", "limit", "exit") else "error"
    note = _s(rec.get("note"), 300)
    if status == "limit" and not note:
        note = "memory limit reached"
    dropped = rec.get("dropped") if isinstance(rec.get("dropped"), int) else 0
    return CellRun(cell=block["cell"], block=block["index"], run=label, status=status,
                   seconds=float(rec.get("seconds") or 0.0) if isinstance(rec.get("seconds"), (int, float)) else 0.0,
                   stdout=_s(rec.get("stdout"), out_cap), stderr=_s(rec.get("stderr"), out_cap), truncated=dropped > 0,
                   error=_error(rec.get("error")), note=note)


def _call_outcomes(call: dict, rec: dict, event: tuple | None, tensors: dict, cap: int) -> tuple[CallOutcome, ...]:
    got = {c.get("id"): c for c in rec.get("cases", []) if isinstance(c, dict)} if isinstance(rec.get("cases"), list) else {}
    out = []
    for case in call["cases"]:
        c = got.get(case["id"])
        if c is None:       # the cases after the one a limit or an exit stopped
            out.append(CallOutcome(case_id=case["id"], status=("exit" if event[1] else "limit") if event else "error",
                                   note=event[0] if event else "no result for this case"))
            continue
        status = c.get("status") if c.get("status") in ("ok", "error", "limit", "missing") else "error"
        secs = c.get("seconds") if isinstance(c.get("seconds"), (int, float)) else 0.0
        value = _value(c.get("value"), tensors, cap) if status == "ok" else None
        out.append(CallOutcome(case_id=case["id"], status=status, value=value, error=_error(c.get("error")),
                               seconds=float(secs), note=_s(c.get("note"), 300)))
    return tuple(out)


def _value(meta, tensors: dict, cap: int, depth: int = 0, budget: list | None = None) -> Value:
    """The runner's description of a value, checked: nothing in it is trusted (see codec.encode
    for what may arrive: the same depth and size limits hold here)."""
    budget = budget if budget is not None else [MAX_PARTS]
    if not isinstance(meta, dict):
        return Value(kind="absent")
    kind = meta.get("kind")
    if kind == "tensor":
        t = tensors.get(meta.get("key")) if isinstance(meta.get("key"), str) else None
        if t is None:
            return Value(kind="refused", type_name="torch.Tensor", reason="the tensor's data is missing")
        if type(t) is not torch.Tensor or t.dtype not in _DTYPES or t.numel() > cap:
            return Value(kind="refused", type_name="torch.Tensor", reason=f"unsupported tensor ({t.dtype}, {t.numel()} elements)")
        return Value(kind="tensor", tensor=t)
    if kind in ("number", "bool"):
        v = meta.get("value")
        if kind == "bool" and isinstance(v, bool) or kind == "number" and isinstance(v, (int, float)) and not isinstance(v, bool):
            return Value(kind=kind, number=v)
        return Value(kind="refused", type_name="?", reason="malformed number")
    if kind == "none":
        return Value(kind="none")
    if kind == "str":
        v = meta.get("value")
        return Value(kind="str", text=v) if isinstance(v, str) and len(v) <= MAX_STR else \
            Value(kind="refused", type_name="str", reason="malformed string")
    items = meta.get("items")
    if kind in ("tuple", "dict") and depth < MAX_DEPTH and isinstance(items, list):
        numbers = len(items) <= cap and all(isinstance(m, dict) and m.get("kind") in ("number", "bool") for m in items)
        if not numbers:          # a long list of plain numbers is fine (see codec.encode); other parts count
            budget[0] -= len(items)
        if budget[0] >= 0:
            parts = tuple(_value(m, tensors, cap, depth + 1, budget) for m in items)
            if kind == "tuple":
                return Value(kind="tuple", items=parts, type_name="list" if meta.get("type") == "list" else "tuple")
            keys = meta.get("keys")
            if isinstance(keys, list) and len(keys) == len(items) and all(isinstance(k, str) and len(k) <= 200 for k in keys) \
                    and len(set(keys)) == len(keys):
                return Value(kind="dict", items=parts, keys=tuple(keys), type_name="dict")
        return Value(kind="refused", type_name=kind, reason="malformed or too large a container")
    if kind == "refused":
        return Value(kind="refused", type_name=_s(meta.get("type"), 200), reason=_s(meta.get("reason"), 300))
    return Value(kind="absent")

