"""Reading a function item's contract from the rubric (`[items.signature]`, docs/rubric-format.md)
into a `Signature` (grader/contract.py), with an error that names the file, the item and the field
for anything it cannot take ("did you mean" for a misspelt kind or dtype)."""
from __future__ import annotations

import difflib
import re
from dataclasses import replace
from pathlib import Path

from .contract import (DTYPE_FAMILIES, DTYPE_NAMES, ELLIPSIS, INDEXED, KINDS, Env, Signature, Spec, check_value,
                       describe_spec, frozen_value, python_literal)
from .errors import RubricError

_BY_KIND = {"tensor": ("dtype", "shape", "rank", "broadcast"), "int": ("min", "max"), "float": ("min", "max"),
            "number": ("min", "max"), "bool": (), "str": ("choices",), "tuple": ("of", "length", "items"),
            "list": ("of", "length"), "dict": ("keys",), "any": ()}
_IDENT = re.compile(r"^[A-Za-z_]\w*$")


def parse_signature(raw, path: Path, where: str) -> Signature:
    """A `[items.signature]` table -> Signature, or a RubricError naming the exact place."""
    field = "signature"
    if not isinstance(raw, dict):
        raise RubricError(path, where, field, "must be a table with `args` (and optionally `returns`)")
    _known(raw, ("args", "returns"), path, where, field)
    if "args" not in raw:
        raise RubricError(path, where, field, "needs `args`, the list of the function's arguments (it may be empty: args = [])")
    sig = []
    for key in ("args", "returns"):
        entries = raw.get(key, [])
        if not isinstance(entries, list):
            raise RubricError(path, where, f"{field}.{key}", "must be an array of tables { name = ..., kind = ... }")
        specs = tuple(_spec(e, path, where, f"{field}.{key}[{i}]", named=True, is_return=key == "returns")
                      for i, e in enumerate(entries))
        names = [s.name for s in specs]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise RubricError(path, where, f"{field}.{key}", f"names {dup!r} twice")
        sig.append(specs)
    args, returns = sig
    for i, a in enumerate(args):
        later = [b.name for b in args[i + 1:] if not b.may_omit]
        if a.may_omit and later:
            raise RubricError(path, where, f"{field}.args[{i}]",
                              f"{a.name!r} may be left out but {later[0]!r} after it may not: a Python def "
                              "cannot have a required parameter after one with a default")
    return Signature(args=args, returns=returns)


def _known(table: dict, keys, path, where, field):
    for key in table:
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(keys)}"
            raise RubricError(path, where, f"{field}.{key}", f"unknown key{hint}")


def _spec(raw, path: Path, where: str, field: str, named: bool, is_return: bool = False) -> Spec:
    if isinstance(raw, str):                  # `of = "int"`: a bare kind
        raw = {"kind": raw}
    if not isinstance(raw, dict):
        raise RubricError(path, where, field, "must be a table { name = ..., kind = ... }")
    kind = raw.get("kind")
    if not isinstance(kind, str):
        raise RubricError(path, where, f"{field}.kind", f"is required: one of {', '.join(KINDS)}")
    if kind not in KINDS:
        close = difflib.get_close_matches(kind, KINDS, n=1)
        raise RubricError(path, where, f"{field}.kind", f"is {kind!r}, must be one of {', '.join(KINDS)}"
                          + (f"; did you mean {close[0]!r}?" if close else ""))
    allowed = (("name",) if named else ()) + ("kind", "optional") + (("default",) if named and not is_return else ()) \
        + _BY_KIND[kind]
    for key in raw:
        if key in allowed:
            continue
        owners = [k for k, keys in _BY_KIND.items() if key in keys]
        if owners:
            raise RubricError(path, where, f"{field}.{key}", f"does not apply to kind = {kind!r} (only to {', '.join(owners)})")
        if key == "default" and is_return:
            raise RubricError(path, where, f"{field}.{key}", "a returned value has no default")
        if key in ("name", "default") and not named:
            raise RubricError(path, where, f"{field}.{key}", "a tuple's element kind has no name or default")
        _known({key: None}, allowed, path, where, field)
    name = raw.get("name", "")
    if named and not (isinstance(name, str) and _IDENT.match(name)):
        raise RubricError(path, where, f"{field}.name", "is required: the argument's name, a Python identifier")
    here = f"{field} ({name})" if name else field
    kw: dict = {}
    for flag in ("optional", "broadcast"):
        if flag in raw:
            if not isinstance(raw[flag], bool):
                raise RubricError(path, where, f"{here}.{flag}", "must be true or false")
            kw[flag] = raw[flag]
    if "dtype" in raw:
        dtypes = raw["dtype"] if isinstance(raw["dtype"], list) else [raw["dtype"]]
        for d in dtypes:
            if d not in DTYPE_FAMILIES + DTYPE_NAMES:
                close = difflib.get_close_matches(str(d), DTYPE_FAMILIES + DTYPE_NAMES, n=1)
                raise RubricError(path, where, f"{here}.dtype",
                                  f"is {d!r}: a family ({', '.join(DTYPE_FAMILIES)}) or a dtype name ({', '.join(DTYPE_NAMES)})"
                                  + (f"; did you mean {close[0]!r}?" if close else ""))
        kw["dtype"] = tuple(dtypes)
    if "shape" in raw:
        shape = raw["shape"]
        if "rank" in raw:
            raise RubricError(path, where, f"{here}.rank", "give `shape` or `rank`, not both")
        if not isinstance(shape, list):
            raise RubricError(path, where, f"{here}.shape", 'must be an array such as ["...", "n", 4]')
        for j, dim in enumerate(shape):
            ok = (isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0) or \
                (isinstance(dim, str) and (_IDENT.match(dim) or INDEXED.match(dim) or (dim == ELLIPSIS and j == 0)))
            if not ok:
                raise RubricError(path, where, f"{here}.shape",
                                  f"entry {dim!r}: each entry is a size (an integer >= 0), a dim name (\"n\"), an "
                                  "argument's element (\"output_size[0]\") or, first only, \"...\" (any leading dims)")
        kw["shape"] = tuple(shape)
    if "rank" in raw:
        if not (isinstance(raw["rank"], int) and not isinstance(raw["rank"], bool) and raw["rank"] >= 0):
            raise RubricError(path, where, f"{here}.rank", "must be an integer >= 0")
        kw["rank"] = raw["rank"]
    if kw.get("broadcast") and "shape" not in kw:
        raise RubricError(path, where, f"{here}.broadcast", "needs a `shape` to broadcast to")
    for bound in ("min", "max"):
        if bound in raw:
            v = raw[bound]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind == "int" and not isinstance(v, int)):
                raise RubricError(path, where, f"{here}.{bound}", f"must be {'an integer' if kind == 'int' else 'a number'}")
            kw[bound] = v
    if "min" in kw and "max" in kw and kw["min"] > kw["max"]:
        raise RubricError(path, where, f"{here}.min", f"is {kw['min']}, more than max = {kw['max']}")
    if "choices" in raw:
        if not (isinstance(raw["choices"], list) and raw["choices"] and all(isinstance(c, str) for c in raw["choices"])):
            raise RubricError(path, where, f"{here}.choices", "must be a non-empty array of strings")
        kw["choices"] = tuple(raw["choices"])
    if "length" in raw:
        if not (isinstance(raw["length"], int) and not isinstance(raw["length"], bool) and raw["length"] >= 0):
            raise RubricError(path, where, f"{here}.length", "must be an integer >= 0")
        kw["length"] = raw["length"]
    if "of" in raw:
        kw["of"] = _spec(raw["of"], path, where, f"{here}.of", named=False)
    for part in ("items", "keys"):       # nested values: each part named (a position's label, a dict's key)
        if part in raw:
            if not (isinstance(raw[part], list) and raw[part]):
                raise RubricError(path, where, f"{here}.{part}", "must be a non-empty array of { name = ..., kind = ... }")
            specs = []
            for j, x in enumerate(raw[part]):
                label = x.get("name") if part == "items" and isinstance(x, dict) else None   # a position's name is optional
                if part == "items":
                    x = {k: v for k, v in x.items() if k != "name"} if isinstance(x, dict) else x
                one = _spec(x, path, where, f"{here}.{part}[{j}]", named=part == "keys", is_return=True)
                specs.append(replace(one, name=label if isinstance(label, str) else f"[{j}]") if part == "items" else one)
            kw[part] = tuple(specs)
    if kw.get("items") and ("of" in kw or "length" in kw):
        raise RubricError(path, where, f"{here}.items", "give `items` (each position's kind) or `of`/`length`, not both")
    spec = Spec(kind=kind, name=name, **kw)
    if "default" in raw:
        default = frozen_value(raw["default"])
        why = check_value(replace(spec, optional=False), default, Env({}))
        if why is not None:
            raise RubricError(path, where, f"{here}.default",
                              f"is {python_literal(default)}, which is not {describe_spec(spec)} ({why}); for None write optional = true")
        spec = replace(spec, default=default)
    return spec
