"""Function contracts: the kinds of the arguments a function item accepts and of the values it
returns, declared once in the rubric (`[items.signature]`, docs/rubric-format.md).

The contract is what the starter documents to students. `grade.py validate` holds the assignment to
it: every generated case (public and hidden seeds) must pass arguments of the declared kinds, the
reference must return values of the declared kinds, and each starter's `def` line must name the
declared arguments, with defaults exactly where the contract lets an argument be left out. A case
outside the contract grades students on something they were never told (an `int` where the starter
says `output_size: (h, w)`), so it is the assignment's bug, not theirs.

This module reads TOML tables and Python values; it never imports or runs a submission (the
starter's `def` lines are read with `ast`). torch is imported only when a value is checked, so
loading a rubric stays light.
"""
from __future__ import annotations

import ast
import difflib
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import RubricError

KINDS = ("tensor", "int", "float", "number", "bool", "str", "tuple", "list", "dict", "any")
DTYPE_FAMILIES = ("floating", "integer", "bool", "complex")
DTYPE_NAMES = ("float16", "bfloat16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64",
               "complex64", "complex128")
ELLIPSIS = "..."
_BY_KIND = {"tensor": ("dtype", "shape", "rank", "broadcast"), "int": ("min", "max"), "float": ("min", "max"),
            "number": ("min", "max"), "bool": (), "str": ("choices",), "tuple": ("of", "length", "items"),
            "list": ("of", "length"), "dict": ("keys",), "any": ()}
_IDENT = re.compile(r"^[A-Za-z_]\w*$")
_INDEXED = re.compile(r"^([A-Za-z_]\w*)\[(\d+)\]$")


class _NoDefault:
    def __repr__(self):
        return "NO_DEFAULT"


NO_DEFAULT = _NoDefault()


@dataclass(frozen=True)
class Spec:
    """One argument's (or returned value's) kind. Fields other than `kind` are constraints that
    apply to that kind only (see _BY_KIND)."""
    kind: str
    name: str = ""
    dtype: tuple[str, ...] = ()          # families or exact dtype names; any of them
    shape: tuple | None = None           # ints, dim names ("n", "output_size[0]"), "..." first
    rank: int | None = None
    broadcast: bool = False              # the tensor need only broadcast to `shape`
    min: int | float | None = None
    max: int | float | None = None
    choices: tuple[str, ...] = ()
    of: "Spec | None" = None             # a tuple's or list's element kind
    length: int | None = None            # a tuple's or list's length
    items: tuple["Spec", ...] = ()       # a tuple's elements, by position, each named: (h, c)
    keys: tuple["Spec", ...] = ()        # a dict's entries: its exact keys (the names) and their kinds
    optional: bool = False               # None is accepted too, and is the default
    default: object = NO_DEFAULT         # the argument may be left out; this is its value then

    @property
    def may_omit(self) -> bool:
        return self.optional or self.default is not NO_DEFAULT

    def describe(self) -> str:
        """'a tuple of 2 ints', 'a bool tensor broadcastable to (..., n_q, n_k), or None'."""
        text = _describe(self)
        if self.optional:
            text += ", or None"
        if self.default is not NO_DEFAULT:
            text += f" (default {_py(self.default)})"
        return text


@dataclass(frozen=True)
class Signature:
    args: tuple[Spec, ...]
    returns: tuple[Spec, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args)

    @property
    def return_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.returns)

    def text(self) -> str:
        """The declared parameter list as a `def` line would write it: (x, weight, n, bias=False)."""
        parts = []
        for a in self.args:
            default = None if a.optional and a.default is NO_DEFAULT else a.default
            parts.append(a.name if not a.may_omit else f"{a.name}={_py(default)}")
        return "(" + ", ".join(parts) + ")"


@dataclass(frozen=True)
class Problem:
    """One argument (or returned value) outside its declaration."""
    name: str
    declared: str
    passed: str
    reason: str = ""


# === parsing ======================================================================================
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
                (isinstance(dim, str) and (_IDENT.match(dim) or _INDEXED.match(dim) or (dim == ELLIPSIS and j == 0)))
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
        default = _frozen(raw["default"])
        why = check_value(replace(spec, optional=False), default, _Env({}))
        if why is not None:
            raise RubricError(path, where, f"{here}.default",
                              f"is {_py(default)}, which is not {_describe(spec)} ({why}); for None write optional = true")
        spec = replace(spec, default=default)
    return spec


def _frozen(v):
    return tuple(_frozen(x) for x in v) if isinstance(v, list) else v


# === describing ===================================================================================
_PLURAL = {"int": "ints", "float": "floats", "number": "numbers", "bool": "bools", "str": "strings"}


def _describe(s: Spec) -> str:
    if s.kind == "tensor":
        dtype = " or ".join("floating-point" if d == "floating" else d for d in s.dtype)
        text = f"{'an' if dtype.startswith('int') else 'a'} {dtype} tensor" if dtype else "a tensor"
        if s.shape is not None:
            text += f" {'broadcastable to' if s.broadcast else 'of shape'} {_shape_text(s.shape)}"
        elif s.rank is not None:
            text += f" of rank {s.rank}"
        return text
    if s.kind == "tuple" and s.items:
        return "a tuple (" + ", ".join(f"{i.name}: {i.describe()}" for i in s.items) + ")"
    if s.kind == "dict":
        return "a dict" + (" {" + ", ".join(f"{k.name!r}: {k.describe()}" for k in s.keys) + "}" if s.keys else "")
    if s.kind in ("tuple", "list"):
        n = f"{s.length} " if s.length is not None else ""
        if s.of is None:
            return f"a {s.kind} of {n}items" if n else f"a {s.kind}"
        simple = s.of.kind in _PLURAL and _describe(s.of) == _describe(Spec(kind=s.of.kind)) and not s.of.optional
        return f"a {s.kind} of {n}{_PLURAL[s.of.kind]}" if simple else f"a {s.kind} of {n}items, each {s.of.describe()}"
    if s.kind == "str" and s.choices:
        return "one of " + ", ".join(map(repr, s.choices))
    base = {"int": "an int", "float": "a float", "number": "a number (int or float)", "bool": "a bool",
            "str": "a string", "any": "any value"}[s.kind]
    if s.min is not None and s.max is not None:
        return f"{base} in [{s.min}, {s.max}]"
    if s.min is not None:
        return f"{base} >= {s.min}"
    if s.max is not None:
        return f"{base} <= {s.max}"
    return base


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _py(v) -> str:
    """A TOML/Python value as Python source would write it."""
    if isinstance(v, tuple):
        return "(" + ", ".join(_py(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v)


def describe_value(v) -> str:
    """What a case passes, for a message: '3 (an int)', 'a float32 tensor of shape (2, 4)'."""
    if v is None:
        return "None"
    if isinstance(v, bool):
        return f"{v} (a bool)"
    if isinstance(v, int):
        return f"{v} (an int)"
    if isinstance(v, float):
        return f"{v!r} (a float)"
    if isinstance(v, str):
        return f"{v!r} (a string)"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {_short(x)}" for k, x in v.items()) + "} (a dict)"
    if isinstance(v, (tuple, list)):
        inner = ", ".join(_short(x) for x in v)
        return (f"[{inner}] (a list)" if isinstance(v, list)
                else f"({inner}{',' if len(v) == 1 else ''}) (a tuple)")
    if _is_tensor(v):
        dtype = str(v.dtype).replace("torch.", "")
        return f"{'an' if dtype.startswith('int') else 'a'} {dtype} tensor of shape {_shape_text(tuple(v.shape))}"
    return f"a {type(v).__name__}"


def _short(v) -> str:
    if _is_tensor(v):
        return f"<{str(v.dtype).replace('torch.', '')} tensor {_shape_text(tuple(v.shape))}>"
    if isinstance(v, (tuple, list, dict)):
        return describe_value(v).rsplit(" (a ", 1)[0]
    return repr(v)


def _is_tensor(v) -> bool:
    import torch
    return isinstance(v, torch.Tensor)


# === checking values ==============================================================================
class _Env:
    """What one call has bound so far: the arguments' values, the named dims, the leading dims."""

    def __init__(self, values: dict):
        self.values = values
        self.dims: dict[str, tuple[int, str]] = {}      # dim name -> (size, the argument that set it)
        self.batch: tuple[tuple, str] | None = None      # "..." -> (dims, the argument that set them)

    def size(self, dim) -> tuple[int | None, str]:
        """A declared dim's size if known, and where it comes from."""
        if isinstance(dim, int):
            return dim, ""
        m = _INDEXED.match(dim)
        if m and m.group(1) in self.values:
            seq, i = self.values[m.group(1)], int(m.group(2))
            if isinstance(seq, (tuple, list)) and i < len(seq) and _is_int(seq[i]):
                return seq[i], f"argument {m.group(1)}"
            return None, ""
        if dim in self.values and _is_int(self.values[dim]):
            return self.values[dim], f"argument {dim}"
        if dim in self.dims:
            size, by = self.dims[dim]
            return size, by
        return None, ""


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_value(spec: Spec, value, env: _Env, who: str = "") -> str | None:
    """None when `value` is of the declared kind; else why not: "" when the kind itself differs (the
    two descriptions say it all), else the detail (a dim, a dtype, a range)."""
    if value is None:
        return None if spec.optional or spec.kind == "any" else "None is not accepted"
    k = spec.kind
    if k == "any":
        return None
    if k == "bool":
        return None if isinstance(value, bool) else ""
    if k in ("int", "float", "number"):
        ok = {"int": _is_int(value), "float": isinstance(value, float),
              "number": _is_int(value) or isinstance(value, float)}[k]
        if not ok:
            return ("an int is not a float here: write it as a float (3.0)" if k == "float" and _is_int(value)
                    else "")
        if (spec.min is not None and not value >= spec.min) or (spec.max is not None and not value <= spec.max):
            return "out of range"
        return None
    if k == "str":
        if not isinstance(value, str):
            return ""
        return None if not spec.choices or value in spec.choices else "not one of the choices"
    if k == "dict":
        if not isinstance(value, dict):
            return ""
        if spec.keys and set(value) != {s.name for s in spec.keys}:
            return f"keys {sorted(value)}, not {sorted(s.name for s in spec.keys)}"
        for s in spec.keys:
            why = check_value(s, value[s.name], env, who)
            if why is not None:
                return f"[{s.name!r}] is {describe_value(value[s.name])}" + (f": {why}" if why else "")
        return None
    if k in ("tuple", "list"):
        if not isinstance(value, tuple if k == "tuple" else list):
            return (f"a {type(value).__name__} is not a {k} (the student's function gets exactly what the case "
                    f"passes)" if isinstance(value, (tuple, list)) else "")
        if spec.items:
            if len(value) != len(spec.items):
                return f"{len(value)} items, not {len(spec.items)}"
            for s, x in zip(spec.items, value):
                why = check_value(s, x, env, who)
                if why is not None:
                    return f"{s.name} is {describe_value(x)}" + (f": {why}" if why else "")
            return None
        if spec.length is not None and len(value) != spec.length:
            return f"{len(value)} items, not {spec.length}"
        if spec.of is not None:
            for i, x in enumerate(value):
                why = check_value(spec.of, x, env, who)
                if why is not None:
                    return f"item {i} is {describe_value(x)}" + (f": {why}" if why else "")
        return None
    # tensor
    import torch
    if not isinstance(value, torch.Tensor):
        return ""
    if spec.dtype and not any(_dtype_is(value, d) for d in spec.dtype):
        return f"dtype {str(value.dtype).replace('torch.', '')}"
    if spec.rank is not None and value.dim() != spec.rank:
        return f"{value.dim()} dims, not {spec.rank}"
    if spec.shape is not None:
        return (_broadcasts if spec.broadcast else _matches)(spec.shape, tuple(value.shape), env, who)
    return None


def _dtype_is(t, want: str) -> bool:
    import torch
    if want == "floating":
        return t.is_floating_point()
    if want == "complex":
        return t.is_complex()
    if want == "bool":
        return t.dtype == torch.bool
    if want == "integer":
        return not (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)
    return t.dtype == getattr(torch, want)


def _matches(shape: tuple, actual: tuple, env: _Env, who: str) -> str | None:
    """Does `actual` have the declared shape? Binds new dim names (and "...") in env if it does."""
    fixed = shape[1:] if shape and shape[0] == ELLIPSIS else shape
    if shape and shape[0] == ELLIPSIS:
        if len(actual) < len(fixed):
            return f"{len(actual)} dims, at least {len(fixed)} declared"
        lead, rest = actual[:len(actual) - len(fixed)], actual[len(actual) - len(fixed):]
        if env.batch is not None and env.batch[0] != lead:
            return f"its leading dims (...) are {_shape_text(lead)}, but {env.batch[1]} has {_shape_text(env.batch[0])}"
    else:
        if len(actual) != len(fixed):
            return f"{len(actual)} dims, not {len(fixed)}"
        lead, rest = None, actual
    new: dict[str, int] = {}
    for j, (dim, size) in enumerate(zip(fixed, rest)):
        want, by = env.size(dim)
        if want is None and dim in new:
            want, by = new[dim], "an earlier dim of this shape"
        if want is None:
            new[dim] = size
        elif want != size:
            named = f"dim {dim}" if isinstance(dim, str) else f"dim {j + (len(lead) if lead else 0)}"
            return f"{named} is {size}" + (f", but {by} makes it {want}" if by else f", not {want}")
    for dim, size in new.items():
        env.dims[dim] = (size, who or "an argument")
    if lead is not None and env.batch is None:
        env.batch = (lead, who or "an argument")
    return None


def _broadcasts(shape: tuple, actual: tuple, env: _Env, who: str) -> str | None:
    """Does `actual` broadcast to the declared shape (as far as it is known)? Binds nothing."""
    fixed = shape[1:] if shape and shape[0] == ELLIPSIS else shape
    target = [env.size(d)[0] for d in fixed]
    if shape and shape[0] == ELLIPSIS:
        lead = list(env.batch[0]) if env.batch is not None else [None] * max(0, len(actual) - len(fixed))
        target = lead + target
    if len(actual) > len(target):
        return f"{len(actual)} dims, more than the {len(target)} of {_shape_text(shape)}"
    for size, want in zip(reversed(actual), reversed(target)):
        if want is not None and size not in (1, want):
            return f"shape {_shape_text(actual)} does not broadcast to {_shape_text(tuple('?' if t is None else t for t in target))}"
    return None


def check_call(sig: Signature, args: tuple, kwargs: dict) -> tuple[list[Problem], _Env]:
    """The problems of one call `f(*args, **kwargs)` against the declared arguments, and what the
    call bound (for check_returns)."""
    problems: list[Problem] = []
    values: dict = {}
    names = sig.names
    specs = {a.name: a for a in sig.args}
    for i, v in enumerate(args):
        if i >= len(names):
            problems.append(Problem(f"#{i + 1}", f"{len(names)} arguments {sig.text()}", describe_value(v),
                                    f"{len(args)} positional arguments"))
            continue
        values[names[i]] = v
    for k, v in kwargs.items():
        if k not in specs:
            close = difflib.get_close_matches(k, names, n=1)
            problems.append(Problem(k, f"no argument {k!r} in {sig.text()}", describe_value(v),
                                    f"did you mean {close[0]!r}?" if close else ""))
        elif k in values:
            problems.append(Problem(k, "the argument once", "it both by position and by keyword"))
        else:
            values[k] = v
    env = _Env(values)
    for a in sig.args:
        if a.name not in values and not a.may_omit:
            problems.append(Problem(a.name, a.describe(), "nothing", "it is required"))
    # Tensors that only broadcast are checked last, against the dims the others have bound.
    for a in sorted(sig.args, key=lambda a: a.broadcast):
        if a.name in values:
            why = check_value(a, values[a.name], env, f"argument {a.name}")
            if why is not None:
                problems.append(Problem(a.name, a.describe(), describe_value(values[a.name]), why))
    return problems, env


def check_returns(sig: Signature, value, env: _Env) -> list[Problem]:
    """The problems of a returned value against the declared returns, with the call's dims."""
    if not sig.returns:
        return []
    if len(sig.returns) == 1:
        values = [value[0] if isinstance(value, tuple) and len(value) == 1 else value]
    elif isinstance(value, (tuple, list)) and len(value) == len(sig.returns):
        values = list(value)
    else:
        return [Problem("(" + ", ".join(sig.return_names) + ")", f"a tuple of {len(sig.returns)} values",
                        describe_value(value))]
    problems = []
    for spec, v in zip(sig.returns, values):
        why = check_value(spec, v, env, f"the returned {spec.name}")
        if why is not None:
            problems.append(Problem(spec.name, spec.describe(), describe_value(v), why))
    return problems


# === the starter's def lines ======================================================================
def function_defs(path: str | Path) -> dict:
    """{name: (cell index, ast.FunctionDef)} of the top-level functions a notebook or script
    defines (the last definition of a name wins, as when it runs). Read with ast, never run."""
    from .blanks import parse, strip_magics
    from .load import load_submission
    found = {}
    for cell in load_submission(path).code_cells:
        source, _ = strip_magics(cell)
        try:
            tree = parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found[node.name] = (cell.index, node)
    return found


def def_problems(sig: Signature, fn: ast.FunctionDef) -> list[str]:
    """How a `def` line disagrees with the declared arguments: names, order, defaults."""
    a = fn.args
    params = a.posonlyargs + a.args + a.kwonlyargs
    names = tuple(p.arg for p in params)
    problems = []
    if a.vararg or a.kwarg:
        extra = ", ".join(f"{'*' if v is a.vararg else '**'}{v.arg}" for v in (a.vararg, a.kwarg) if v)
        problems.append(f"it takes {extra}, which the signature does not declare")
    if names != sig.names:
        return problems + [f"its parameters are ({', '.join(names)}); the signature declares {sig.text()}"]
    positional = a.posonlyargs + a.args
    defaults = dict(zip((p.arg for p in positional[len(positional) - len(a.defaults):]), a.defaults))
    defaults.update({p.arg: d for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None})
    for spec in sig.args:
        node = defaults.get(spec.name)
        if node is None and spec.may_omit:
            want = None if spec.default is NO_DEFAULT else spec.default
            problems.append(f"`{spec.name}` has no default, but the signature lets it be left out ({spec.name}={_py(want)})")
        elif node is not None and not spec.may_omit:
            problems.append(f"`{spec.name}` has a default ({ast.unparse(node)}), but the signature declares it "
                            "required (give it `optional = true` or a `default`)")
        elif node is not None:
            want = None if spec.default is NO_DEFAULT else spec.default
            try:
                got = _frozen(ast.literal_eval(node))
            except ValueError:
                continue          # not a literal: nothing to compare with
            if not (got == want and type(got) is type(want)) and not (isinstance(got, float) and isinstance(want, float)
                                                                      and math.isclose(got, want)):
                problems.append(f"`{spec.name}` defaults to {ast.unparse(node)}, but the signature declares {_py(want)}")
    return problems
