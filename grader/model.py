"""The plain data types that pass between the pipeline's stages.

load -> Submission; blanks -> Block/Blank; sandbox -> RunResult; compare -> CaseCheck;
score -> ItemResult/GradeResult. Frozen dataclasses: a stage reads what the previous one made and
never edits it in place.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATUSES = ("pass", "partial", "fail", "error", "missing", "manual")


@dataclass(frozen=True)
class Text:
    """A message in both languages the course is taught in."""
    zh: str
    en: str

    def __call__(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en

    def __add__(self, other: "Text") -> "Text":
        return Text(self.zh + other.zh, self.en + other.en)

    @staticmethod
    def same(s: str) -> "Text":
        return Text(s, s)

    def as_dict(self) -> dict:
        return {"zh": self.zh, "en": self.en}


@dataclass(frozen=True)
class Cell:
    index: int            # 1-based, as students count cells
    kind: str             # "code" | "markdown"
    source: str


@dataclass(frozen=True)
class Submission:
    path: str
    student: str
    format: str           # "ipynb" | "py" | "md"
    cells: tuple[Cell, ...]
    sha256: str
    notes: tuple[Text, ...] = ()

    @property
    def code_cells(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.kind == "code")


@dataclass(frozen=True)
class Block:
    """A unit of execution: a code cell, or the part of one that a `#todo` comment opens."""
    cell: int
    index: int                 # 0-based within the cell
    source: str                # the whole cell's lines, with lines outside the block blanked (keeps line numbers)
    first_line: int
    last_line: int
    todo: str | None           # the text of the #todo that opens this block
    assigns: frozenset[str]    # top-level names this block assigns
    defines: frozenset[str]    # top-level functions/classes this block defines
    blank: bool                # a #todo block left as the starter had it
    syntax_error: dict | None = None   # {"line", "offset", "message", "text"} when the cell does not parse

    @property
    def at(self) -> tuple[int, int]:
        """(cell, index): where a checkpoint sits."""
        return (self.cell, self.index)


@dataclass(frozen=True)
class Written:
    item: str
    text: str
    cell: int | None


@dataclass(frozen=True)
class ErrorInfo:
    type: str
    message: str
    traceback: str            # trimmed to the student's own code
    cell: int | None = None
    line: int | None = None
    source_line: str = ""
    caret: int | None = None  # 1-based column, SyntaxError only


@dataclass(frozen=True)
class Value:
    """A value that came back from the sandbox, already checked and decoded.

    kind: "tensor" | "number" | "bool" | "str" | "none" | "tuple" | "dict" | "absent" | "refused"
    (a "tuple" is a tuple or a list: `type_name` says which; a "dict" has str keys, `keys[i]` for `items[i]`)
    """
    kind: str
    tensor: Any = None        # torch.Tensor for kind == "tensor"
    number: Any = None        # int/float/bool for kind == "number"/"bool"
    items: tuple["Value", ...] = ()
    type_name: str = ""
    reason: str = ""          # why it was refused
    text: str = ""            # kind == "str"
    keys: tuple[str, ...] = ()

    @staticmethod
    def of(v) -> "Value":
        """A trusted Python value (the reference's, a known mistake's) as a Value."""
        if v is None:
            return Value(kind="none")
        if isinstance(v, bool):
            return Value(kind="bool", number=v)
        if isinstance(v, (int, float)):
            return Value(kind="number", number=v)
        if isinstance(v, str):
            return Value(kind="str", text=v)
        if isinstance(v, (tuple, list)):
            return Value(kind="tuple", items=tuple(Value.of(x) for x in v), type_name=type(v).__name__)
        if isinstance(v, dict):
            return Value(kind="dict", items=tuple(Value.of(x) for x in v.values()), keys=tuple(v), type_name="dict")
        return Value(kind="tensor", tensor=v)

    def plain(self):
        """As plain Python (tensors, numbers, str, tuples, lists, dicts); what cannot be, as its description."""
        if self.kind == "tensor":
            return self.tensor
        if self.kind == "tuple":
            items = [v.plain() for v in self.items]
            return items if self.type_name == "list" else tuple(items)
        if self.kind == "dict":
            return {k: v.plain() for k, v in zip(self.keys, self.items)}
        if self.kind in ("number", "bool"):
            return self.number
        if self.kind == "str":
            return self.text
        return None if self.kind == "none" else self.describe()

    def describe(self) -> str:
        if self.kind == "tensor":
            t = self.tensor
            return f"tensor{tuple(t.shape)} {str(t.dtype).replace('torch.', '')}"
        if self.kind in ("number", "bool"):
            return repr(self.number)
        if self.kind == "tuple":
            inner = ", ".join(v.describe() for v in self.items)
            return f"[{inner}]" if self.type_name == "list" else f"({inner}{',' if len(self.items) == 1 else ''})"
        if self.kind == "dict":
            return "{" + ", ".join(f"{k!r}: {v.describe()}" for k, v in zip(self.keys, self.items)) + "}"
        if self.kind == "str":
            return repr(self.text if len(self.text) <= 40 else self.text[:37] + "...")
        if self.kind == "none":
            return "None"
        if self.kind == "absent":
            return "not defined"
        return f"{self.type_name} (refused: {self.reason})"


def value_parts(expected, got, names: tuple) -> list[tuple[str, object, object]]:
    """(label, expected part, got part) down to the leaves, where got has the expected structure:
    `out`, `state[0]`, `grads['dx']`. A part whose structure differs is one pair, as it is."""
    if len(names) > 1 and isinstance(expected, (tuple, list)) and isinstance(got, (tuple, list)) \
            and len(expected) == len(got) == len(names):
        return [p for n, e, g in zip(names, expected, got) for p in _leaves(n, e, g)]
    return _leaves(names[0] if names else "", expected, got)


def _leaves(label: str, e, g) -> list[tuple[str, object, object]]:
    if isinstance(e, (tuple, list)) and isinstance(g, (tuple, list)) and len(e) == len(g):
        return [p for i, (a, b) in enumerate(zip(e, g)) for p in _leaves(f"{label}[{i}]", a, b)]
    if isinstance(e, dict) and isinstance(g, dict) and set(e) == set(g):
        return [p for k in e for p in _leaves(f"{label}[{k!r}]", e[k], g[k])]
    return [(label, e, g)]


@dataclass(frozen=True)
class CellRun:
    cell: int
    block: int
    run: str                  # "public" or "hidden-1", ...
    status: str               # "ok" | "error" | "limit" | "exit" | "skipped"
    seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    error: ErrorInfo | None = None
    note: str = ""


@dataclass(frozen=True)
class CallOutcome:
    case_id: str
    status: str               # "ok" | "error" | "limit" | "exit" | "missing"
    value: Value | None = None
    error: ErrorInfo | None = None
    seconds: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class RunResult:
    sandbox: str
    seconds: float
    student_seconds: float
    cells: tuple[CellRun, ...]
    captures: dict            # (run, name) -> Value
    calls: dict               # item id -> tuple[CallOutcome, ...]
    limit_hit: str | None = None
    notes: tuple[str, ...] = ()
    waited: float = 0.0       # seconds the job queued for a free sandbox worker (not in `seconds`)


@dataclass(frozen=True)
class CaseCheck:
    case_id: str
    run: str                  # seed label: "public" | "hidden-1" ...
    public: bool
    passed: bool
    message: Text
    about: Text | None = None
    mistake: str | None = None        # id of the known mistake this case's value matches
    max_abs: float | None = None
    max_rel: float | None = None
    where: tuple | None = None
    n_diff: int | None = None
    expected: Any = None
    got: Any = None
    inputs: Any = None
    trivial: bool = False             # the right answer is empty or constant: a trivial answer passes it too
    error: "ErrorInfo | None" = None  # the error the call raised, for a case that did not run to a value
    diagnosis: Text | None = None     # what this failing public case's own values show (row sums, a transpose)


@dataclass(frozen=True)
class ItemResult:
    id: str
    part: str
    status: str
    points: float
    max_points: float
    message: Text
    hint: Text | None = None
    cases: tuple[CaseCheck, ...] = ()
    answer: str | None = None         # written answers, as submitted
    mistake: str | None = None
    error: ErrorInfo | None = None    # an "error" item's own error, from the public run
    cause: ErrorInfo | None = None    # the error to fix first: `error`, or the earlier one it follows from
    cause_hint: Text | None = None    # what to do about `cause`


@dataclass(frozen=True)
class GradeResult:
    submission: Submission
    rubric_path: str
    assignment: str
    items: tuple[ItemResult, ...]
    run: RunResult | None
    environment: dict = field(default_factory=dict)
    load_error: Text | None = None
    layout: "Layout | None" = None

    @property
    def score(self) -> float:
        return round(sum(i.points for i in self.items), 4)

    @property
    def max_score(self) -> float:
        return round(sum(i.max_points for i in self.items), 4)


@dataclass(frozen=True)
class Blank:
    """One `#todo` in the submission: where it is, what it asks, whether it was filled in."""
    cell: int
    line: int
    text: str
    filled: bool


@dataclass(frozen=True)
class Layout:
    """What `blanks` found in a submission: how to run it and where each item's answer lives."""
    blocks: tuple[Block, ...]
    blanks: tuple[Blank, ...]
    checkpoints: dict          # variable name -> (cell, index) of the block after which it is captured
    unfilled: frozenset        # names (variables or functions) whose #todo was left as the starter had it
    skipped: tuple[Text, ...]  # magics and shell lines that were not run
    written: tuple[Written, ...]
    signatures: dict = field(default_factory=dict)   # function -> its parameter names, first definition
