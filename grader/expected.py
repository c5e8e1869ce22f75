"""The trusted side's ground truth: the reference package, the generated cases, and the values the
reference (and each known mistake) gives on them. Computed once per rubric and cached, so a batch
pays for it once, not per submission.
"""
from __future__ import annotations

import hashlib
import importlib.util
import time
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

from .errors import RubricError
from .model import Text
from .rubric import Item, Rubric


@dataclass(frozen=True)
class Case:
    item: str
    run: str              # "public" | "hidden-1" ...
    seed: int
    public: bool
    id: str               # unique within the item: "<run>:<case id>"
    about: Text
    args: tuple
    kwargs: dict


class ReferenceSource(Protocol):
    """What scoring asks of the ground truth: the instructor's `Reference` (the reference package's
    code), or a student's `pack.PackedReference` (the public seed's values only; its `resolve`
    raises LookupError, so diagnoses that recompute from the student's values are skipped)."""
    rubric: Rubric

    def resolve(self, dotted: str, item: Item | None = None, field: str = "") -> Callable: ...
    def script_inputs(self, seed: int) -> dict: ...
    def script_expected(self, seed: int) -> dict: ...
    def script_mistake(self, item: Item, mistake_id: str, seed: int): ...
    def cases(self, item: Item) -> tuple[Case, ...]: ...
    def expected(self, item: Item, case: Case): ...
    def mistake(self, item: Item, mistake_id: str, case: Case): ...


class Reference:
    """The reference package's code: a `ReferenceSource` that computes every value, once."""

    def __init__(self, rubric: Rubric):
        self.rubric = rubric
        self.package = _import_package(rubric.reference)
        self._cases: dict[str, tuple[Case, ...]] = {}
        self._values: dict[tuple, Any] = {}
        self._seconds: dict[str, float] = {}      # item id -> the reference's own time over its cases

    def resolve(self, dotted: str, item: Item | None = None, field: str = ""):
        obj = self.package
        for part in dotted.split("."):
            if not hasattr(obj, part):
                sub = f"{obj.__name__}.{part}"
                try:
                    obj = importlib.import_module(sub)
                    continue
                except ImportError:
                    raise RubricError(self.rubric.path, item.location() if item else "", field,
                                      f"{dotted!r} names nothing in the reference package {self.rubric.reference}")
            obj = getattr(obj, part)
        if not callable(obj):
            raise RubricError(self.rubric.path, item.location() if item else "", field, f"{dotted!r} is not a function")
        return obj

    def check(self) -> None:
        """Resolve every name the rubric uses, so a typo is reported before any grading."""
        if self.rubric.script:
            self.resolve(self.rubric.script.inputs, None, "script.inputs")
            self.resolve(self.rubric.script.expected, None, "script.expected")
        for item in self.rubric.items:
            if item.kind == "function":
                self.resolve(item.reference, item, "reference")
                self.resolve(item.cases, item, "cases")
            if item.follows:
                self.resolve(item.follows, item, "follows")
            for m in item.mistakes:
                self.resolve(m.function, item, f"mistakes {m.id!r} function")

    # -- script items --------------------------------------------------------------------------
    def script_inputs(self, seed: int) -> dict:
        key = ("inputs", seed)
        if key not in self._values:
            self._values[key] = self.resolve(self.rubric.script.inputs)(seed)
        return self._values[key]

    def script_expected(self, seed: int) -> dict:
        key = ("expected", seed)
        if key not in self._values:
            self._values[key] = self.resolve(self.rubric.script.expected)(self.script_inputs(seed))
        return self._values[key]

    def script_mistake(self, item: Item, mistake_id: str, seed: int):
        key = ("script-mistake", item.id, mistake_id, seed)
        if key not in self._values:
            m = next(m for m in item.mistakes if m.id == mistake_id)
            self._values[key] = _safely(self.resolve(m.function), (self.script_inputs(seed),), {})
        return self._values[key]

    # -- function items ------------------------------------------------------------------------
    def cases(self, item: Item) -> tuple[Case, ...]:
        if item.id not in self._cases:
            gen = self.resolve(item.cases, item, "cases")
            out = []
            for label, seed in self.rubric.runs:
                public = label == "public"
                for i, raw in enumerate(gen(seed, public)):
                    out.append(_case(raw, item, label, seed, public, i, self.rubric))
            ids = [c.id for c in out]
            if len(set(ids)) != len(ids):
                raise RubricError(self.rubric.path, item.location(), "cases", "the generator returned duplicate case ids")
            self._cases[item.id] = tuple(out)
        return self._cases[item.id]

    def expected(self, item: Item, case: Case):
        key = ("expected", item.id, case.id)
        if key not in self._values:
            fn = self.resolve(item.reference, item, "reference")
            self._values[key] = fn(*_clone(case.args), **_clone(case.kwargs))
        return self._values[key]

    def seconds(self, item: Item) -> float:
        """The reference's own time for all of an item's cases (what a student's call of them is
        measured against: run.call_seconds): this thread's CPU time, the least of three rounds, so
        that a loaded machine or a first call's warm-up does not move it (a limit a student's
        message quotes should be the same from run to run)."""
        if item.id in self._seconds:
            return self._seconds[item.id]
        fn = self.resolve(item.reference, item, "reference")
        total = 0.0
        for case in self.cases(item):
            self.expected(item, case)
            best = float("inf")
            for _ in range(3):
                args, kwargs = _clone(case.args), _clone(case.kwargs)
                t0 = time.thread_time()
                fn(*args, **kwargs)
                best = min(best, time.thread_time() - t0)
            total += best
        self._seconds[item.id] = total
        return total

    def mistake(self, item: Item, mistake_id: str, case: Case):
        key = ("mistake", item.id, mistake_id, case.id)
        if key not in self._values:
            m = next(m for m in item.mistakes if m.id == mistake_id)
            self._values[key] = _safely(self.resolve(m.function), _clone(case.args), _clone(case.kwargs))
        return self._values[key]


def _safely(fn, args, kwargs):
    """A known mistake may legitimately fail on some inputs (a shape error): that means 'no match'."""
    try:
        return fn(*args, **kwargs)
    except Exception:
        return None


def _clone(x):
    if isinstance(x, torch.Tensor):
        return x.clone()
    if isinstance(x, (list, tuple)):
        return type(x)(_clone(v) for v in x)
    if isinstance(x, dict):
        return {k: _clone(v) for k, v in x.items()}
    return x


def _case(raw, item: Item, label: str, seed: int, public: bool, i: int, rubric: Rubric) -> Case:
    if not isinstance(raw, dict) or "args" not in raw:
        raise RubricError(rubric.path, item.location(), "cases", f"case {i} from {item.cases!r} is not a dict with 'args'")
    about = raw.get("about") or {}
    text = Text(about.get("zh", ""), about.get("en", "")) if isinstance(about, dict) else Text.same(str(about))
    return Case(item=item.id, run=label, seed=seed, public=public, id=f"{label}:{raw.get('id', i)}", about=text,
                args=tuple(raw["args"]), kwargs=dict(raw.get("kwargs") or {}))


@lru_cache(maxsize=None)
def _import_package(path: Path):
    """Import the reference package from its folder under a private name, so it never collides
    with (or is shadowed by) anything called `reference` on sys.path. The name comes from the whole
    path: two courses' `…/reference/<id>` folders are two packages, not one imported twice."""
    name = "_grader_reference_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(name, path / "__init__.py", submodule_search_locations=[str(path)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
