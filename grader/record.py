"""The stored record of a grade: a `GradeResult`, whole, as JSON plus its tensors (safetensors),
and back. Pages, exports and reviews are drawn from it (`grade.py redraw`), never by running a
student's code again.

The record is the result's own dataclasses written field by field: a dataclass becomes
`{"$": "ItemResult", ...fields}`, a tensor `{"$t": key}` into the values file, a tuple, a frozenset
or a dict with non-string keys is tagged so it comes back as what it was. Reading it back builds
only the model's own types (a fixed table), never anything a name in the file chooses.

The reference's values (a public case's inputs and expected value, the script's expected
tensors) are the same in every student's record: they are written once per rubric, in the
snapshot (`snapshot_values`), and a record refers to them by name (`{"$r": key}`).
"""
from __future__ import annotations

import dataclasses
import json
import math

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from . import model

RECORD = 1
_TYPES = {cls.__name__: cls for cls in (
    model.Text, model.Cell, model.Submission, model.Block, model.Written, model.ErrorInfo, model.Value,
    model.CellRun, model.CallOutcome, model.RunResult, model.CaseCheck, model.ItemResult, model.GradeResult,
    model.Blank, model.Layout)}


class RecordError(ValueError):
    pass


def dump(result: model.GradeResult, shared: dict[int, str] | None = None) -> tuple[bytes, bytes]:
    """(the record's JSON, its values as safetensors). `shared`: id(tensor) -> key of the tensors
    the snapshot already holds (the reference's values), written as references."""
    shared = shared or {}
    tensors: dict[str, torch.Tensor] = {}

    def enc(x):
        if isinstance(x, torch.Tensor):
            ref = shared.get(id(x))
            if ref is not None:
                return {"$r": ref}
            key = str(len(tensors))
            # a copy of its own: safetensors refuses two entries sharing storage (a tuple of views)
            tensors[key] = x.detach().to("cpu").contiguous().clone()
            return {"$t": key}
        if dataclasses.is_dataclass(x):
            return {"$": type(x).__name__, **{f.name: enc(getattr(x, f.name)) for f in dataclasses.fields(x)}}
        if isinstance(x, tuple):
            return {"$tuple": [enc(v) for v in x]}
        if isinstance(x, frozenset):
            return {"$set": sorted(x)}
        if isinstance(x, list):
            return [enc(v) for v in x]
        if isinstance(x, dict):
            if all(isinstance(k, str) and not k.startswith("$") for k in x):
                return {k: enc(v) for k, v in x.items()}
            return {"$pairs": [[enc(k), enc(v)] for k, v in x.items()]}
        if isinstance(x, float) and not math.isfinite(x):
            return {"$float": repr(x)}
        if x is None or isinstance(x, (str, int, float, bool)):
            return x
        raise RecordError(f"cannot record a {type(x).__name__}")

    body = json.dumps({"record": RECORD, "result": enc(result)}, ensure_ascii=False, separators=(",", ":"))
    return body.encode("utf-8"), st_save(tensors) if tensors else b""


def load(record: bytes, values: bytes, shared: dict[str, torch.Tensor] | None = None) -> model.GradeResult:
    """The GradeResult a record holds; `shared` is the snapshot's values (`load_values`)."""
    data = json.loads(record)
    if data.get("record") != RECORD:
        raise RecordError(f"record format {data.get('record')!r}; this grader reads {RECORD}")
    tensors = st_load(values) if values else {}
    shared = shared or {}

    def dec(x):
        if isinstance(x, list):
            return [dec(v) for v in x]
        if not isinstance(x, dict):
            return x
        if "$t" in x:
            return tensors[x["$t"]]
        if "$r" in x:
            if x["$r"] not in shared:
                raise RecordError(f"the record refers to {x['$r']!r}, which its rubric snapshot does not hold")
            return shared[x["$r"]]
        if "$" in x:
            cls = _TYPES.get(x["$"])
            if cls is None:
                raise RecordError(f"unknown type {x['$']!r} in a record")
            names = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: dec(v) for k, v in x.items() if k in names})
        if "$tuple" in x:
            return tuple(dec(v) for v in x["$tuple"])
        if "$set" in x:
            return frozenset(x["$set"])
        if "$pairs" in x:
            return {_hashable(dec(k)): dec(v) for k, v in x["$pairs"]}
        if "$float" in x:
            return float(x["$float"])
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
