"""The value codec of the runner: a student's value into plain data and raw tensor bytes, the
step's record as JSON and safetensors, and the trusted side's inputs back into fresh tensors.

It runs next to the student's code, so what decides how much memory is read, and what is read,
is bound here at import (torch.Tensor's own methods and descriptors, json's C encoder), before
any student code runs: `torch.Tensor.size = ...` or `json.dumps = ...` later changes nothing here.
What comes out is checked again by the trusted side (grader/run.py), which trusts none of it.
"""
from __future__ import annotations

import builtins
import ctypes
import json
import struct

import safetensors.torch as st
import torch

from . import tree
from .protocol import MAX_DEPTH, MAX_PARTS, MAX_STR

try:
    import numpy
except ImportError:  # pragma: no cover
    numpy = None

# A copy of builtins, as every module of the runtime takes one (see the package's docstring).
__builtins__ = dict(vars(builtins))


class _Budget:
    """What one value may still use: parts (containers and their items) and tensor elements."""
    __slots__ = ("parts", "elements")

    def __init__(self, limits: dict):
        self.parts, self.elements = MAX_PARTS, limits["max_elements"]


def encode(value, key: str, tensors: dict, limits: dict, depth: int = 0, budget: _Budget | None = None) -> dict:
    """Turn a student's value into plain data: exactly torch.Tensor (checked before anything is
    copied), Python numbers, str, None, and tuples, lists and dicts with str keys of those, nested
    up to MAX_DEPTH with MAX_PARTS parts in all. Only the exact built-in types are walked (no
    subclass's methods run); everything else is refused by name. A tensor's (tag, shape, bytes)
    goes into `tensors` under `key`."""
    budget = budget or _Budget(limits)
    kind = type(value)
    if kind is _T:
        if budget.elements < _numel(value) <= limits["max_elements"]:     # (a tensor over the limit alone: below)
            return {"kind": "refused", "type": "torch.Tensor",
                    "reason": f"the value's tensors hold more than {limits['max_elements']} elements in all"}
        out = _encode_tensor(value, key, tensors, limits)
        budget.elements -= _numel(value) if out["kind"] == "tensor" else 0
        return out
    if kind in (bool, int, float):
        if kind is int and abs(value) > 2**62:
            return {"kind": "refused", "type": "int", "reason": "integer too large"}
        return {"kind": "bool" if kind is bool else "number", "value": value}
    if value is None:
        return {"kind": "none"}
    if kind is str:
        if len(value) > MAX_STR:
            return {"kind": "refused", "type": "str", "reason": f"a string of {len(value)} characters (at most {MAX_STR})"}
        return {"kind": "str", "value": value}
    if kind in (tuple, list, dict):
        if depth >= MAX_DEPTH:
            return {"kind": "refused", "type": kind.__name__, "reason": f"nested deeper than {MAX_DEPTH} levels"}
        if kind is not dict and _numbers(value, budget.elements):
            # A list of plain numbers may be long (a function returning a list of indices): the trusted
            # side grades it as a near miss of a tensor, so it must arrive whole.
            budget.elements -= len(value)
            return {"kind": "tuple", "type": kind.__name__, "items": [_number(v) for v in value]}
        if len(value) > budget.parts:
            return {"kind": "refused", "type": kind.__name__, "reason": f"more than {MAX_PARTS} parts in all"}
        budget.parts -= len(value)
        if kind is dict:
            if any(type(k) is not str for k in value):
                return {"kind": "refused", "type": "dict", "reason": "a dict whose keys are not all str"}
            return {"kind": "dict", "keys": list(value),
                    "items": [encode(v, f"{key}/{i}", tensors, limits, depth + 1, budget)
                              for i, v in enumerate(value.values())]}
        return {"kind": "tuple", "type": kind.__name__,
                "items": [encode(v, f"{key}/{i}", tensors, limits, depth + 1, budget) for i, v in enumerate(value)]}
    if isinstance(value, _T):
        return {"kind": "refused", "type": _typename(value),
                "reason": "a subclass of torch.Tensor is not accepted; return a plain torch.Tensor"}
    if kind is _ndarray:
        return {"kind": "refused", "type": "numpy.ndarray", "reason": "a numpy array, not a torch.Tensor"}
    return {"kind": "refused", "type": _typename(value), "reason": "not a tensor or a number"}


def _numbers(value, cap: int) -> bool:
    return len(value) > 16 and len(value) <= cap and all(type(v) in (bool, int, float) for v in value)


def _number(v) -> dict:
    if type(v) is int and abs(v) > 2**62:
        return {"kind": "refused", "type": "int", "reason": "integer too large"}
    return {"kind": "bool" if type(v) is bool else "number", "value": v}


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
load_safetensors = st.load


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
_pack_u64 = struct.Struct("<Q").pack


def safetensors_file(tensors: dict) -> bytes:
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
    text = dumps(header)
    text += b" " * (-len(text) % 8)
    return b"".join([_pack_u64(len(text)), text] + chunks)


def _unencodable(value):
    raise TypeError(f"{type(value).__name__} is not JSON")


try:
    from _json import encode_basestring_ascii as _ascii, make_encoder as _make_encoder
    # json.dumps' own C encoder, made once here: json.dumps, JSONEncoder and json.encoder's
    # module attributes are looked up anew on every call, so the student's code could replace them.
    _json_chunks = _make_encoder(None, _unencodable, _ascii, None, ":", ",", False, False, True)

    def dumps(value) -> bytes:
        """Compact JSON, as bytes."""
        return "".join(_json_chunks(value, 0)).encode()
except ImportError:  # pragma: no cover  (an interpreter without the C accelerator)
    _json_dumps = json.dumps

    def dumps(value) -> bytes:
        """Compact JSON, as bytes."""
        return _json_dumps(value, separators=(",", ":")).encode()


class Inputs:
    """Arguments sent by the trusted side: one safetensors blob plus JSON descriptions. Each call
    gets fresh copies, so a function that edits its inputs in place cannot affect the next case.
    `tensors`: the blob already decoded (the worker keeps a rubric's inputs), or None."""

    def __init__(self, blob: bytes, tensors: dict | None = None):
        self.blob, self.tensors = blob, tensors

    def load(self) -> None:
        if self.tensors is None:
            self.tensors = load_safetensors(self.blob) if self.blob else {}

    def decode(self, arg):
        return tree.decode(arg, self._fresh)

    def _fresh(self, key: str):
        self.load()
        return _clone(self.tensors[key])
