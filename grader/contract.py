"""Function contracts: the kinds of the arguments a function item accepts and of the values it
returns, declared once in the rubric (`[items.signature]`, docs/rubric-format.md).

The contract is what the starter documents to students. `grade.py validate` holds the assignment to
it: every generated case (public and hidden seeds) must pass arguments of the declared kinds, the
reference must return values of the declared kinds, and each starter's `def` line must name the
declared arguments, with defaults exactly where the contract lets an argument be left out. A case
outside the contract grades students on something they were never told (an `int` where the starter
says `output_size: (h, w)`), so it is the assignment's bug, not theirs.

Three modules: this one, the contract itself (`Spec`, `Signature`) and whether one value is of a
declared kind (`check_value`); grader/contract_parse.py reads it from the rubric's TOML;
grader/contract_check.py holds a case's arguments, the reference's returns and the starter's `def`
lines to it. None imports or runs a submission (`def` lines are read with `ast`), and torch is
imported only when a value is checked, so loading a rubric stays light.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("tensor", "int", "float", "number", "bool", "str", "tuple", "list", "dict", "any")
DTYPE_FAMILIES = ("floating", "integer", "bool", "complex")
DTYPE_NAMES = ("float16", "bfloat16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64",
               "complex64", "complex128")
ELLIPSIS = "..."
INDEXED = re.compile(r"^([A-Za-z_]\w*)\[(\d+)\]$")


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
        text = describe_spec(self)
        if self.optional:
            text += ", or None"
        if self.default is not NO_DEFAULT:
            text += f" (default {python_literal(self.default)})"
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
            parts.append(a.name if not a.may_omit else f"{a.name}={python_literal(default)}")
        return "(" + ", ".join(parts) + ")"


@dataclass(frozen=True)
class Problem:
    """One argument (or returned value) outside its declaration."""
    name: str
    declared: str
    passed: str
    reason: str = ""


def frozen_value(v):
    return tuple(frozen_value(x) for x in v) if isinstance(v, list) else v


# === describing ===================================================================================
_PLURAL = {"int": "ints", "float": "floats", "number": "numbers", "bool": "bools", "str": "strings"}


def describe_spec(s: Spec) -> str:
    if s.kind == "tensor":
        dtype = " or ".join("floating-point" if d == "floating" else d for d in s.dtype)
        text = f"{'an' if dtype.startswith('int') else 'a'} {dtype} tensor" if dtype else "a tensor"
        if s.shape is not None:
            text += f" {'broadcastable to' if s.broadcast else 'of shape'} {shape_text(s.shape)}"
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
        simple = s.of.kind in _PLURAL and describe_spec(s.of) == describe_spec(Spec(kind=s.of.kind)) and not s.of.optional
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


def shape_text(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def python_literal(v) -> str:
    """A TOML/Python value as Python source would write it."""
    if isinstance(v, tuple):
        return "(" + ", ".join(python_literal(x) for x in v) + ("," if len(v) == 1 else "") + ")"
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
        return f"{'an' if dtype.startswith('int') else 'a'} {dtype} tensor of shape {shape_text(tuple(v.shape))}"
    return f"a {type(v).__name__}"


def _short(v) -> str:
    if _is_tensor(v):
        return f"<{str(v.dtype).replace('torch.', '')} tensor {shape_text(tuple(v.shape))}>"
    if isinstance(v, (tuple, list, dict)):
        return describe_value(v).rsplit(" (a ", 1)[0]
    return repr(v)


def _is_tensor(v) -> bool:
    import torch
    return isinstance(v, torch.Tensor)


# === checking values ==============================================================================
class Env:
    """What one call has bound so far: the arguments' values, the named dims, the leading dims."""

    def __init__(self, values: dict):
        self.values = values
        self.dims: dict[str, tuple[int, str]] = {}      # dim name -> (size, the argument that set it)
        self.batch: tuple[tuple, str] | None = None      # "..." -> (dims, the argument that set them)

    def size(self, dim) -> tuple[int | None, str]:
        """A declared dim's size if known, and where it comes from."""
        if isinstance(dim, int):
            return dim, ""
        m = INDEXED.match(dim)
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


def check_value(spec: Spec, value, env: Env, who: str = "") -> str | None:
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


def _matches(shape: tuple, actual: tuple, env: Env, who: str) -> str | None:
    """Does `actual` have the declared shape? Binds new dim names (and "...") in env if it does."""
    fixed = shape[1:] if shape and shape[0] == ELLIPSIS else shape
    if shape and shape[0] == ELLIPSIS:
        if len(actual) < len(fixed):
            return f"{len(actual)} dims, at least {len(fixed)} declared"
        lead, rest = actual[:len(actual) - len(fixed)], actual[len(actual) - len(fixed):]
        if env.batch is not None and env.batch[0] != lead:
            return f"its leading dims (...) are {shape_text(lead)}, but {env.batch[1]} has {shape_text(env.batch[0])}"
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


def _broadcasts(shape: tuple, actual: tuple, env: Env, who: str) -> str | None:
    """Does `actual` broadcast to the declared shape (as far as it is known)? Binds nothing."""
    fixed = shape[1:] if shape and shape[0] == ELLIPSIS else shape
    target = [env.size(d)[0] for d in fixed]
    if shape and shape[0] == ELLIPSIS:
        lead = list(env.batch[0]) if env.batch is not None else [None] * max(0, len(actual) - len(fixed))
        target = lead + target
    if len(actual) > len(target):
        return f"{len(actual)} dims, more than the {len(target)} of {shape_text(shape)}"
    for size, want in zip(reversed(actual), reversed(target)):
        if want is not None and size not in (1, want):
            return f"shape {shape_text(actual)} does not broadcast to {shape_text(tuple('?' if t is None else t for t in target))}"
    return None
