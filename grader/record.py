"""The stored record of a grade: a `GradeResult`, whole, as JSON plus its tensors (safetensors),
and back. Pages, exports and reviews are drawn from it (`grade.py redraw`), never by running a
student's code again.

The record is the result's own dataclasses written field by field: a dataclass becomes a list,
`["ItemResult", field, field, ...]` in the order the record's `fields` table names them (so an old
record outlives a field added to the model); a tuple, a list, a frozenset or a dict with
non-string keys is tagged so it comes back as what it was. Reading it back builds only the
model's own types (a fixed table), never anything a name in the file chooses.

The reference's values (a public case's inputs and expected value, the script's expected
tensors) are the same in every student's record: they are written once per rubric, in the
snapshot (`shown_values`), and a record refers to them by name (`{"$r": key}`). The student's
own tensors are written inline, their bytes in base64 (`{"$b": [dtype, shape, data]}`): exact,
compact, and a few µs each, where a safetensors entry costs ~45 µs and a record has about a
hundred (bfloat16, which numpy cannot hold, goes to the safetensors file).

What the run's values were (`RunResult.captures`, each call's `value`) is not kept: the scored
cases (`CaseCheck.got`, `expected`) hold every value a page, an export or a review shows, and the
run's own copies doubled a record's size and its time (measured: 34 -> under 10 ms a record).
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from . import model

RECORD = 1
_TYPES = {cls.__name__: cls for cls in (
    model.Text, model.Cell, model.Submission, model.Block, model.Written, model.ErrorInfo, model.Value,
    model.CellRun, model.CallOutcome, model.RunResult, model.CaseCheck, model.ItemResult, model.GradeResult,
    model.Blank, model.Layout)}
_FIELDS = {cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in _TYPES.values()}
_PLAIN = {str, int, float, bool, type(None)}
# the run's own values, not kept (see above): written as empty
_NOT_KEPT = {model.RunResult: ("captures",), model.CallOutcome: ("value",)}
_EMPTY = {"captures": {}, "value": None}
_DTYPES = {str(t).removeprefix("torch."): t for t in (torch.float16, torch.bfloat16, torch.float32, torch.float64,
                                                     torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64,
                                                     torch.bool)}


class RecordError(ValueError):
    pass


def content_key(t: torch.Tensor, raw: bytes) -> tuple:
    return (str(t.dtype), tuple(t.shape), hashlib.blake2b(raw, digest_size=16).digest())


def shared_keys(values: dict[str, torch.Tensor]) -> dict:
    """What `dump` needs to write a snapshot's tensor as a reference: each one by identity
    (id(tensor) -> key) and by content (a student's value equal to the reference's, bit for
    bit, is written as a reference too: most of a right answer's values)."""
    out: dict = {}
    for key, t in values.items():
        c = t.detach().to("cpu").contiguous()
        out[id(t)] = key
        if c.dtype in _DTYPES.values() and c.dtype is not torch.bfloat16:
            out.setdefault(content_key(c, c.numpy().tobytes()), key)
    return out


def dump(result: model.GradeResult, shared: dict | None = None) -> tuple[bytes, bytes]:
    """(the record's JSON, its values as safetensors). `shared`: `shared_keys` of the tensors the
    snapshot already holds (the reference's values), written as references."""
    shared = shared or {}
    tensors: dict[str, torch.Tensor] = {}
    seen: dict[int, dict] = {}          # a tensor met twice (a case's `got` is its call's value) is written once

    def enc(x):
        kind = type(x)
        if kind in _PLAIN:        # JSON writes NaN and Infinity as such, and reads them back
            return x
        if kind is model.Text:
            return ["Text", x.zh, x.en]
        names = _FIELDS.get(kind)
        if names is not None:
            drop = _NOT_KEPT.get(kind, ())
            out = [kind.__name__]
            for n in names:          # a loop, not enc() on every field: most are plain (a record has ~5000)
                v = getattr(x, n)
                out.append(_EMPTY[n] if n in drop else v if type(v) in _PLAIN else enc(v))
            return out
        if isinstance(x, torch.Tensor):
            ref = shared.get(id(x))
            if ref is not None:
                return {"$r": ref}
            if id(x) in seen:
                return seen[id(x)]
            t = x.detach().to("cpu")
            dtype = str(t.dtype).removeprefix("torch.")
            if dtype in _DTYPES and t.dtype is not torch.bfloat16:     # numpy has no bfloat16
                raw = t.contiguous().numpy().tobytes()
                ref = shared.get(content_key(t, raw)) if shared else None
                out = {"$r": ref} if ref is not None else {"$b": [dtype, list(t.shape), base64.b64encode(raw).decode("ascii")]}
            else:
                key = str(len(tensors))
                # a copy of its own: safetensors refuses two entries sharing storage (a tuple of views)
                tensors[key] = t.contiguous().clone()
                out = {"$t": key}
            seen[id(x)] = out
            return out
        if isinstance(x, tuple):
            return {"$tuple": [enc(v) for v in x]}
        if isinstance(x, frozenset):
            return {"$set": sorted(x)}
        if isinstance(x, list):
            return {"$list": [enc(v) for v in x]}
        if isinstance(x, dict):
            if all(isinstance(k, str) and not k.startswith("$") for k in x):
                return {k: enc(v) for k, v in x.items()}
            return {"$pairs": [[enc(k), enc(v)] for k, v in x.items()]}
        raise RecordError(f"cannot record a {type(x).__name__}")

    # A dataclass is a list: its type's name, then its fields in the order `fields` lists them
    # (written once per record, so a record outlives a field added to the model later).
    fields = {name: list(_FIELDS[cls]) for name, cls in _TYPES.items()}
    body = json.dumps({"record": RECORD, "fields": fields, "result": enc(result)}, ensure_ascii=False,
                      separators=(",", ":"))
    return body.encode("utf-8"), st_save(tensors) if tensors else b""


def load(record: bytes, values: bytes, shared: dict[str, torch.Tensor] | None = None) -> model.GradeResult:
    """The GradeResult a record holds; `shared` is the snapshot's values (`load_values`)."""
    data = json.loads(record)
    if data.get("record") != RECORD:
        raise RecordError(f"record format {data.get('record')!r}; this grader reads {RECORD}")
    tensors = st_load(values) if values else {}
    shared = shared or {}

    fields = data.get("fields") or {}

    def dec(x):
        if isinstance(x, list):
            cls = _TYPES.get(x[0]) if x and isinstance(x[0], str) else None
            if cls is None:
                raise RecordError(f"unknown type {x[0]!r} in a record" if x else "an empty entry in a record")
            known = set(_FIELDS[cls])
            return cls(**{n: dec(v) for n, v in zip(fields.get(x[0], ()), x[1:]) if n in known})
        if not isinstance(x, dict):
            return x
        if "$list" in x:
            return [dec(v) for v in x["$list"]]
        if "$t" in x:
            return tensors[x["$t"]]
        if "$b" in x:
            dtype, shape, raw = x["$b"]
            data = bytearray(base64.b64decode(raw))
            return (torch.frombuffer(data, dtype=_DTYPES[dtype]) if data else torch.empty(0, dtype=_DTYPES[dtype])).reshape(shape)
        if "$r" in x:
            if x["$r"] not in shared:
                raise RecordError(f"the record refers to {x['$r']!r}, which its rubric snapshot does not hold")
            return shared[x["$r"]]
        if "$tuple" in x:
            return tuple(dec(v) for v in x["$tuple"])
        if "$set" in x:
            return frozenset(x["$set"])
        if "$pairs" in x:
            return {_hashable(dec(k)): dec(v) for k, v in x["$pairs"]}
        return {k: dec(v) for k, v in x.items()}

    return dec(data["result"])


def _hashable(k):
    return tuple(k) if isinstance(k, list) else k


def shown_values(reference) -> dict[str, torch.Tensor]:
    """The reference's values a record may show (public cases' inputs and expected values, the
    public run's script values), by key: stored once per rubric (the snapshot), referred to by
    every record of it. `dump`'s `shared` is {id(tensor): key} of these very tensors."""
    rubric = reference.rubric
    found: dict[str, torch.Tensor] = {}

    def add(key: str, value) -> None:
        if isinstance(value, torch.Tensor):
            found.setdefault(key, value)
        elif isinstance(value, (tuple, list)):
            for n, v in enumerate(value):
                add(f"{key}/{n}", v)
        elif isinstance(value, dict):
            for k, v in value.items():
                add(f"{key}/{k}", v)

    if rubric.script is not None and rubric.items_of("variable"):
        add("script/expected", reference.script_expected(rubric.public_seed))
    for item in rubric.items_of("function"):
        for case in reference.cases(item):
            if case.public:
                add(f"case/{item.id}/{case.id}/expected", reference.expected(item, case))
                add(f"case/{item.id}/{case.id}/args", case.args)
    return found


def save_values(values: dict[str, torch.Tensor]) -> bytes:
    return st_save({k: t.detach().contiguous().clone() for k, t in values.items()}) if values else b""


def load_values(data: bytes) -> dict[str, torch.Tensor]:
    return st_load(data) if data else {}
