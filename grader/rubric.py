"""Load and validate a rubric (TOML). A bad rubric is refused here, with the file, item and field.

The format is documented in docs/rubric-format.md. Validation is a small explicit schema below:
each table lists its keys with a type and a default; an unknown key is answered with "did you mean".
"""
from __future__ import annotations

import difflib
import hashlib
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .errors import RubricError
from .contract import Signature
from .contract_parse import parse_signature
from .model import Text

KINDS = ("variable", "function", "written")
DTYPE_RULES = ("floating", "exact", "any")
PARTIAL_MODES = ("none", "proportional")


@dataclass(frozen=True)
class Limits:
    cell_seconds: float = 10.0
    memory_mb: int = 2048
    processes: int = 64
    output_kb: int = 256
    file_mb: int = 64
    max_elements: int = 1_000_000


@dataclass(frozen=True)
class Tolerance:
    rtol: float = 1e-4
    atol: float = 1e-5


DRAWINGS = ("table", "heatmap", "boxes", "sequence")
ORDERS = ("exact", "any")


@dataclass(frozen=True)
class Output:
    """What the rubric says about one returned value (or a variable item's value): how it is
    compared, what must hold of it, how the page draws it ([items.outputs.<name>])."""
    tolerance: Tolerance
    order: str = "exact"          # "any": a set (of indices), compared sorted
    rows_sum_to_one: bool = False  # each row is a distribution
    draw: str = "table"


@dataclass(frozen=True)
class Mistake:
    id: str
    function: str
    credit: float
    hint: Text


@dataclass(frozen=True)
class Item:
    id: str
    part: str
    kind: str
    name: str
    points: float
    title: Text
    dtype: str = "floating"
    partial: str = "none"
    case_credit: float = 0.0
    tolerance: Tolerance = Tolerance()
    mistakes: tuple[Mistake, ...] = ()
    reference: str = ""
    cases: str = ""
    returns: tuple[str, ...] = ()
    follows: str = ""
    question: Text | None = None
    concepts: tuple["Concept", ...] = ()
    signature: Signature | None = None   # [items.signature]: the function's contract (grader/contract.py)
    outputs: tuple = ()                  # (output name, Output) pairs ([items.outputs.<name>]): an Item is hashable
    seconds: float | None = None         # [items.limits] seconds: this item's time limit per call
    hints: str = ""                      # "module.function" of the reference package: (args, got) -> {zh, en} | None
    reminder: Text | None = None         # a property the answer must have

    def location(self) -> str:
        return f"item {self.id!r}"

    @property
    def names(self) -> tuple[str, ...]:
        """The names of what the item returns (a variable item: its own name)."""
        return self.returns or (self.name,)

    def output(self, name: str) -> Output:
        return next((o for n, o in self.outputs if n == name), None) or Output(self.tolerance)


@dataclass(frozen=True)
class Part:
    id: str
    title: Text


@dataclass(frozen=True)
class Script:
    inputs: str
    expected: str
    capture: tuple[str, ...] = ()
    changed_inputs_credit: float = 0.0
    locked_inputs: tuple[str, ...] = ()
    follow_through_credit: float = 0.5


@dataclass(frozen=True)
class NearMisses:
    """Credit kept when the numbers are right but their container is not (docs/rubric-format.md)."""
    container: float = 0.5        # a list or tuple where a tensor is expected
    integer_dtype: float = 0.75   # another integer dtype (int32 indices for int64) under dtype = "exact"
    float_dtype: float = 0.75     # another floating dtype (float64 for float32) under dtype = "exact"


@dataclass(frozen=True)
class Rubric:
    path: Path
    sha256: str
    id: str
    title: Text
    reference: Path
    starter: tuple[Path, ...]
    lang: str
    public_seed: int
    hidden_seeds: tuple[int, ...]
    limits: Limits
    parts: tuple[Part, ...]
    items: tuple[Item, ...]
    script: Script | None = None
    near_misses: NearMisses = NearMisses()
    section_aliases: tuple = ()          # [written] section_aliases: (text, section number) pairs

    def item(self, item_id: str) -> Item:
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)

    @cached_property
    def runs(self) -> tuple[tuple[str, int], ...]:
        """(label, seed) for every run a script item is graded under; the public one first."""
        hidden = tuple((f"hidden-{i}", s) for i, s in enumerate(self.hidden_seeds, 1))
        return (("public", self.public_seed),) + hidden

    def items_of(self, kind: str) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.kind == kind)


# --- the schema ------------------------------------------------------------------------------
# key -> (type check, default or REQUIRED). Types are checked by `check_table`, which names the place.
REQUIRED = object()
_TEXT = "text"          # a string or {zh = ..., en = ...}

TOP_KEYS = {"schema": (int, REQUIRED), "assignment": (dict, REQUIRED), "limits": (dict, {}),
        "tolerance": (dict, {}), "parts": (list, []), "script": (dict, None), "items": (list, REQUIRED),
        "near_misses": (dict, {}), "written": (dict, {})}
# How a course's answer sheets number their sections beyond "1.2" and 一/二/三: what a damaged PDF
# extraction puts for a numeral (a sheet whose 三 came out as "Ξ").
WRITTEN_KEYS = {"section_aliases": (dict, {})}
ASSIGNMENT_KEYS = {"id": (str, REQUIRED), "title": (_TEXT, REQUIRED), "reference": (str, REQUIRED),
               "starter": (list, []), "lang": (str, "zh"), "public_seed": (int, REQUIRED),
               "hidden_seeds": (list, [])}
LIMITS_KEYS = {"cell_seconds": ((int, float), 10.0), "memory_mb": (int, 2048), "processes": (int, 64),
           "output_kb": (int, 256), "file_mb": (int, 64), "max_elements": (int, 1_000_000)}
TOLERANCE_KEYS = {"rtol": ((int, float), 1e-4), "atol": ((int, float), 1e-5)}
NEAR_MISSES_KEYS = {"container": ((int, float), NearMisses.container),
                "integer_dtype": ((int, float), NearMisses.integer_dtype),
                "float_dtype": ((int, float), NearMisses.float_dtype)}
PART_KEYS = {"id": (str, REQUIRED), "title": (_TEXT, REQUIRED)}
SCRIPT_KEYS = {"inputs": (str, REQUIRED), "expected": (str, REQUIRED), "capture": (list, []),
           "changed_inputs_credit": ((int, float), 0.0), "locked_inputs": (list, []),
           "follow_through_credit": ((int, float), 0.5)}
ITEM_KEYS = {"id": (str, REQUIRED), "part": (str, REQUIRED), "kind": (str, REQUIRED), "name": (str, ""),
         "points": ((int, float), REQUIRED), "title": (_TEXT, ""), "dtype": (str, "floating"),
         "partial": (str, "none"), "case_credit": ((int, float), 0.0), "tolerance": (dict, None),
         "mistakes": (list, []), "reference": (str, ""), "cases": (str, ""), "returns": (list, []),
         "follows": (str, ""), "question": (_TEXT, None), "concepts": (list, []),
         "signature": (dict, None), "outputs": (dict, {}), "limits": (dict, None), "hints": (str, ""),
         "reminder": (_TEXT, None)}
OUTPUT_KEYS = {"rtol": ((int, float), None), "atol": ((int, float), None), "order": (str, "exact"),
               "rows_sum_to_one": (bool, False), "draw": (str, "table")}
ITEM_LIMITS_KEYS = {"seconds": ((int, float), None)}
MISTAKE_KEYS = {"id": (str, REQUIRED), "function": (str, REQUIRED), "credit": ((int, float), REQUIRED),
            "hint": (_TEXT, REQUIRED)}


def check_table(table: dict, schema: dict, where: str, path: Path) -> dict:
    if not isinstance(table, dict):
        raise RubricError(path, where, "", "must be a table")
    for key in table:
        if key not in schema:
            close = difflib.get_close_matches(key, schema, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(schema)}"
            raise RubricError(path, where, key, f"unknown key{hint}")
    out = {}
    for key, (typ, default) in schema.items():
        if key not in table:
            if default is REQUIRED:
                raise RubricError(path, where, key, "is required")
            out[key] = default
            continue
        value = table[key]
        if typ == _TEXT:
            value = _text(value, path, where, key)
        elif isinstance(value, bool) and typ is not bool:   # TOML true/false is an int to isinstance
            raise RubricError(path, where, key, f"must be {_typename(typ)}, not a boolean")
        elif not isinstance(value, typ):
            raise RubricError(path, where, key, f"must be {_typename(typ)}, got {type(value).__name__} {value!r}")
        out[key] = value
    return out


def _typename(typ) -> str:
    names = {int: "an integer", float: "a number", str: "a string", list: "an array", dict: "a table"}
    if isinstance(typ, tuple):
        return "a number"
    return names.get(typ, str(typ))


def _text(value, path: Path, where: str, key: str) -> Text:
    if isinstance(value, str):
        return Text.same(value)
    if isinstance(value, dict) and set(value) == {"zh", "en"} and all(isinstance(v, str) for v in value.values()):
        return Text(value["zh"], value["en"])
    raise RubricError(path, where, key, 'must be a string or a table { zh = "...", en = "..." }')


def _choice(value: str, allowed: tuple, path: Path, where: str, key: str) -> str:
    if value not in allowed:
        close = difflib.get_close_matches(value, allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise RubricError(path, where, key, f"is {value!r}, must be one of {', '.join(allowed)}{hint}")
    return value


def _fraction(value: float, path: Path, where: str, key: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise RubricError(path, where, key, f"is {value}, must be between 0 and 1")
    return float(value)


def load_rubric(path: str | Path) -> Rubric:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RubricError(path, "", "", f"cannot be read ({e.strerror}); pass --rubric with the path of a rubric .toml")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise RubricError(path, "", "", f"is not valid TOML: {e}")
    top = check_table(data, TOP_KEYS, "top level", path)
    if top["schema"] != 1:
        raise RubricError(path, "top level", "schema", f"is {top['schema']}, this grader reads schema 1")
    a = check_table(top["assignment"], ASSIGNMENT_KEYS, "[assignment]", path)
    lang = _choice(a["lang"], ("zh", "en"), path, "[assignment]", "lang")
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in a["hidden_seeds"]):
        raise RubricError(path, "[assignment]", "hidden_seeds", "must be an array of integers")
    if a["public_seed"] in a["hidden_seeds"]:
        raise RubricError(path, "[assignment]", "hidden_seeds", "must not repeat the public seed")
    base = path.resolve().parent
    reference = (base / a["reference"]).resolve()
    if not (reference / "__init__.py").is_file():
        raise RubricError(path, "[assignment]", "reference",
                          f"{a['reference']!r} is not a Python package directory (no {reference / '__init__.py'})")
    limits = Limits(**check_table(top["limits"], LIMITS_KEYS, "[limits]", path))
    for key in ("cell_seconds", "memory_mb", "processes", "max_elements"):
        if getattr(limits, key) <= 0:
            raise RubricError(path, "[limits]", key, "must be positive")
    tol = Tolerance(**check_table(top["tolerance"], TOLERANCE_KEYS, "[tolerance]", path))
    parts = tuple(Part(**check_table(p, PART_KEYS, f"parts[{i}]", path)) for i, p in enumerate(top["parts"]))
    script = None
    if top["script"] is not None:
        s = check_table(top["script"], SCRIPT_KEYS, "[script]", path)
        script = Script(inputs=s["inputs"], expected=s["expected"], capture=tuple(s["capture"]),
                        changed_inputs_credit=_fraction(s["changed_inputs_credit"], path, "[script]", "changed_inputs_credit"),
                        locked_inputs=tuple(s["locked_inputs"]),
                        follow_through_credit=_fraction(s["follow_through_credit"], path, "[script]", "follow_through_credit"))
    near = check_table(top["near_misses"], NEAR_MISSES_KEYS, "[near_misses]", path)
    near_misses = NearMisses(**{k: _fraction(v, path, "[near_misses]", k) for k, v in near.items()})
    aliases = check_table(top["written"], WRITTEN_KEYS, "[written]", path)["section_aliases"]
    for text, n in aliases.items():
        if not (isinstance(n, int) and not isinstance(n, bool) and n > 0 and 0 < len(text) <= 4):
            raise RubricError(path, "[written]", f"section_aliases.{text}", "maps a short text to a section number (an integer > 0)")
    items = tuple(parse_item(raw_item, i, tol, parts, path) for i, raw_item in enumerate(top["items"]))
    seen = set()
    for it in items:
        if it.id in seen:
            raise RubricError(path, f"item {it.id!r}", "id", "appears twice; item ids must be unique")
        seen.add(it.id)
    if any(it.kind == "variable" for it in items) and script is None:
        raise RubricError(path, "[script]", "", "is required when an item has kind = \"variable\"")
    return Rubric(path=path.resolve(), sha256=hashlib.sha256(raw).hexdigest(), id=a["id"], title=a["title"],
                  reference=reference, starter=tuple((base / s).resolve() for s in a["starter"]), lang=lang,
                  public_seed=a["public_seed"], hidden_seeds=tuple(a["hidden_seeds"]), limits=limits,
                  parts=parts, items=items, script=script, near_misses=near_misses,
                  section_aliases=tuple(aliases.items()))


def parse_item(raw: dict, index: int, default_tol: Tolerance, parts: tuple[Part, ...], path: Path) -> Item:
    named = isinstance(raw, dict) and isinstance(raw.get("id"), str)
    where = f"item {raw['id']!r}" if named else f"items[{index}] (the {index + 1}th [[items]] table)"
    d = check_table(raw, ITEM_KEYS, where, path)
    where = f"item {d['id']!r}"
    kind = _choice(d["kind"], KINDS, path, where, "kind")
    if parts and d["part"] not in {p.id for p in parts}:
        raise RubricError(path, where, "part", f"is {d['part']!r}, not one of the [[parts]]: {', '.join(p.id for p in parts)}")
    if d["points"] < 0:
        raise RubricError(path, where, "points", "must not be negative")
    tol = default_tol
    if d["tolerance"] is not None:
        merged = {"rtol": default_tol.rtol, "atol": default_tol.atol, **d["tolerance"]}
        tol = Tolerance(**check_table(merged, TOLERANCE_KEYS, where + ".tolerance", path))
    if kind == "function":
        for key in ("reference", "cases"):
            if not d[key]:
                raise RubricError(path, where, key, 'is required for kind = "function"')
    signature = None
    if d["signature"] is not None:
        if kind != "function":
            raise RubricError(path, where, "signature", 'only a kind = "function" item has a signature')
        signature = parse_signature(d["signature"], path, where)
        if d["returns"] and signature.returns and tuple(d["returns"]) != signature.return_names:
            raise RubricError(path, where, "returns", f"is {d['returns']}, but the signature returns "
                              f"{list(signature.return_names)}: name them once, in the signature")
        d["returns"] = d["returns"] or list(signature.return_names)
    if kind == "written" and d["question"] is None:
        raise RubricError(path, where, "question", 'is required for kind = "written"')
    mistakes = []
    for j, m in enumerate(d["mistakes"]):
        md = check_table(m, MISTAKE_KEYS, f"{where}.mistakes[{j}]", path)
        mistakes.append(Mistake(id=md["id"], function=md["function"], hint=md["hint"],
                                credit=_fraction(md["credit"], path, f"{where} mistake {md['id']!r}", "credit")))
    concepts = tuple(_concept(c, path, where) for c in d["concepts"])
    names = tuple(d["returns"]) or (d["name"] or d["id"],)
    outputs = {}
    for name, raw_out in d["outputs"].items():
        if name not in names:
            raise RubricError(path, where, f"outputs.{name}", f"names no output of this item; its outputs are {list(names)}")
        o = check_table(raw_out, OUTPUT_KEYS, f"{where}.outputs.{name}", path)
        outputs[name] = Output(tolerance=Tolerance(rtol=float(tol.rtol if o["rtol"] is None else o["rtol"]),
                                                   atol=float(tol.atol if o["atol"] is None else o["atol"])),
                               order=_choice(o["order"], ORDERS, path, f"{where}.outputs.{name}", "order"),
                               rows_sum_to_one=o["rows_sum_to_one"],
                               draw=_choice(o["draw"], DRAWINGS, path, f"{where}.outputs.{name}", "draw"))
    seconds = None
    if d["limits"] is not None:
        seconds = check_table(d["limits"], ITEM_LIMITS_KEYS, f"{where}.limits", path)["seconds"]
        if seconds is not None and not 0 < seconds <= 600:
            raise RubricError(path, where, "limits.seconds", "must be more than 0 and at most 600")
    return Item(id=d["id"], part=d["part"], kind=kind, name=d["name"] or d["id"], points=float(d["points"]),
                title=d["title"] or Text.same(d["id"]),
                dtype=_choice(d["dtype"], DTYPE_RULES, path, where, "dtype"),
                partial=_choice(d["partial"], PARTIAL_MODES, path, where, "partial"),
                case_credit=_fraction(d["case_credit"], path, where, "case_credit"), tolerance=tol,
                mistakes=tuple(mistakes), reference=d["reference"], cases=d["cases"],
                returns=tuple(d["returns"]), follows=d["follows"], question=d["question"], concepts=concepts,
                signature=signature, outputs=tuple(outputs.items()), seconds=seconds, hints=d["hints"], reminder=d["reminder"])


@dataclass(frozen=True)
class Concept:
    """What a good written answer mentions, as the words that say it in each language (the first is its name)."""
    zh: tuple[str, ...]
    en: tuple[str, ...]

    @property
    def label(self) -> str:
        return " / ".join(dict.fromkeys(w for w in (self.zh[:1] + self.en[:1]) if w))

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(w for w in self.zh + self.en if w)


def _concept(raw, path: Path, where: str) -> Concept:
    if isinstance(raw, dict) and set(raw) == {"zh", "en"} and all(isinstance(v, list) for v in raw.values()):
        return Concept(tuple(map(str, raw["zh"])), tuple(map(str, raw["en"])))
    raise RubricError(path, where, "concepts", "each concept must be { zh = [...], en = [...] }")
