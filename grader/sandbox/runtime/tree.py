"""The one codec for trusted values (a case's arguments, the reference's expected values in a
pack): a tree of tensors, numbers, str, None, tuples, lists and dicts with str keys as JSON, each
tensor replaced by a key its caller stores (a safetensors entry). Torch-free: both sides import it.

What a submission returns travels the other way through `codec.encode`, which trusts nothing it
walks; this one is for values the grader itself made.
"""
from __future__ import annotations

import builtins
import math

from .protocol import MAX_DEPTH

# A copy of builtins, as every module of the runtime takes one (see the package's docstring): the
# sandbox decodes a case's arguments with it after student code has run.
__builtins__ = dict(vars(builtins))


def encode(value, put, depth: int = 0) -> dict:
    """`put(tensor) -> key` stores a tensor; anything else is written inline."""
    if depth > MAX_DEPTH:
        raise TypeError(f"a value nested deeper than {MAX_DEPTH} levels")
    if value is None:
        return {"t": "none"}
    if isinstance(value, bool):
        return {"t": "bool", "v": value}
    if isinstance(value, int):
        return {"t": "int", "v": value}
    if isinstance(value, float):
        return {"t": "float", "v": value if math.isfinite(value) else repr(value)}   # JSON has no inf/nan
    if isinstance(value, str):
        return {"t": "str", "v": value}
    if isinstance(value, (tuple, list)):
        return {"t": "list" if isinstance(value, list) else "tuple", "v": [encode(x, put, depth + 1) for x in value]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("a dict whose keys are not all str")
        return {"t": "dict", "k": list(value), "v": [encode(x, put, depth + 1) for x in value.values()]}
    if type(value).__name__ == "Tensor":
        return {"t": "tensor", "key": put(value)}
    raise TypeError(f"a {type(value).__name__} (tensors, numbers, str, None, tuples, lists and dicts only)")


def decode(enc, get, depth: int = 0):
    """`get(key) -> tensor` fetches a stored tensor (a fresh copy, where the caller wants one)."""
    t = enc.get("t") if isinstance(enc, dict) and depth <= MAX_DEPTH else None
    if t == "tensor":
        return get(enc["key"])
    if t == "none":
        return None
    if t in ("bool", "int", "str"):
        return enc["v"]
    if t == "num":               # checks files written before int and float were told apart
        return enc["v"]
    if t == "float":
        return float(enc["v"])
    if t in ("tuple", "list"):
        seq = [decode(x, get, depth + 1) for x in enc["v"]]
        return tuple(seq) if t == "tuple" else seq
    if t == "dict":
        return {str(k): decode(x, get, depth + 1) for k, x in zip(enc["k"], enc["v"])}
    raise ValueError(f"unknown or too deeply nested value {str(enc)[:80]!r}")
