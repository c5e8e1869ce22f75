"""The student pack: what students get to check their work before they submit, without the solution.

`build_pack(rubric, out)` writes, into one folder:
- `<id>.ipynb`, `<id>.py`: the starter students fill in;
- `<id>.checks.safetensors`: the public seed's cases as numbers only. Tensors are safetensors
  entries; the structure (which tensor is which case's argument, expected value or known-mistake
  value, plus the ids and descriptions) is JSON in the file's `__metadata__`. Nothing in it can
  execute on load, and nothing of the hidden seeds is computed, let alone written;
- `<id>.rubric.toml`: the public parts of the rubric (points, tolerances, mistakes' hints and
  credits); no hidden seeds, no reference paths, no function names;
- `grade.py` (the 9-line CLI shim) and a short README.

`load_pack(checks)` reads it back into a `Rubric` and a `PackedReference`, which answers the
scorer's questions (`cases`, `expected`, `mistake`, `script_*`) from those numbers. What needs
the reference *code* (`resolve`: recognising changed inputs or follow-through) is not available
in a self-check; the scorer already treats a failing `resolve` as "no such explanation".
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import tomllib
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as st_save

from . import rubric as _rubric
from .errors import GraderError, RubricError
from .expected import Case, Reference
from .model import Text
from .rubric import Item, Rubric, load_rubric

FORMAT = "dl-autograder-checks"
VERSION = 1
CHECKS_SUFFIX = ".checks.safetensors"
PACKED = "(public checks)"     # stands in for the code names a pack does not carry


class PackError(GraderError):
    """A pack (checks file or its rubric) is missing, from another assignment, or damaged."""


# === writing ======================================================================================
def build_pack(rubric_path: str | Path, out: str | Path) -> list[Path]:
    """Write the student pack for a rubric into `out`; returns the files written."""
    rubric = load_rubric(rubric_path)
    ref = Reference(rubric)
    ref.check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for starter in rubric.starter:
        if not starter.is_file():
            raise RubricError(rubric.path, "[assignment]", "starter", f"{starter} does not exist; run "
                              f"`grade.py release` on the solution notebook to make it")
        dest = out / f"{rubric.id}{starter.suffix}"
        shutil.copyfile(starter, dest)
        written.append(dest)
    toml_name = f"{rubric.id}.rubric.toml"
    toml_text = public_rubric_toml(rubric)
    (out / toml_name).write_text(toml_text, encoding="utf-8")
    checks = out / f"{rubric.id}{CHECKS_SUFFIX}"
    checks.write_bytes(checks_bytes(rubric, ref, toml_name, hashlib.sha256(toml_text.encode()).hexdigest()))
    shim = out / "grade.py"
    shim.write_text(_SHIM.format(id=rubric.id), encoding="utf-8")
    readme = out / "README.md"
    readme.write_text(_README.format(id=rubric.id, title_zh=rubric.title.zh, title_en=rubric.title.en),
                      encoding="utf-8")
    return written + [out / toml_name, checks, shim, readme]


_SHIM = '''#!/usr/bin/env python3
"""Self-check: `python grade.py check {id}.ipynb` (needs the grader installed: see README.md)."""
import sys

from grader.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''

_README = """# {title_zh} / {title_en}

Fill in `{id}.ipynb` (or `{id}.py`), then check it (检查你的作业):

    pip install dl-autograder        # or the course's install command
    python grade.py check {id}.ipynb

The check runs the public test cases only and writes `{id}.feedback.html` beside your notebook.
Your grade also uses hidden cases, so passing here is necessary, not sufficient.
本地检查只运行公开测试；最终成绩还包括隐藏测试。
"""


def checks_bytes(rubric: Rubric, ref, toml_name: str, toml_sha256: str) -> bytes:
    """The checks file: public-seed values only. Only the public seed is ever passed to the
    reference here, so a hidden value cannot end up in the pack by mistake."""
    enc = _Encoder()
    seed = rubric.public_seed
    structure: dict = {"format": FORMAT, "version": VERSION, "assignment": rubric.id, "public_seed": seed,
                       "rubric": toml_name, "rubric_sha256": toml_sha256, "script": None, "functions": {}}
    if rubric.script and rubric.items_of("variable"):
        expected = ref.script_expected(seed)
        structure["script"] = {
            "inputs": {k: enc.value(v) for k, v in ref.script_inputs(seed).items()},
            "expected": {i.name: enc.value(expected[i.name]) for i in rubric.items_of("variable")},
            "mistakes": {i.id: {m.id: enc.value(ref.script_mistake(i, m.id, seed)) for m in i.mistakes}
                         for i in rubric.items_of("variable")}}
    for item in rubric.items_of("function"):
        cases = []
        for case in ref.cases(item):
            if not case.public:
                continue
            cases.append({"id": case.id, "about": case.about.as_dict(),
                          "args": [enc.value(a) for a in case.args],
                          "kwargs": {k: enc.value(v) for k, v in case.kwargs.items()},
                          "expected": enc.value(ref.expected(item, case)),
                          "mistakes": {m.id: enc.value(ref.mistake(item, m.id, case)) for m in item.mistakes}})
        structure["functions"][item.id] = cases
    return st_save(enc.tensors, metadata={"checks": json.dumps(structure, ensure_ascii=False, allow_nan=False)})


class _Encoder:
    """Plain values -> JSON, each tensor -> a safetensors entry named t0, t1, ..."""

    def __init__(self):
        self.tensors: dict[str, torch.Tensor] = {}

    def value(self, v):
        from .sandbox.runtime import tree     # here, not at the top: redraw reads pack rubrics and starts no sandbox
        return tree.encode(v, self._put)

    def _put(self, t: torch.Tensor) -> str:
        key = f"t{len(self.tensors)}"
        self.tensors[key] = t.detach().cpu().clone().contiguous()   # own storage: safetensors refuses shared
        return key


def public_rubric_toml(rubric: Rubric, concepts: bool = False) -> str:
    """The rubric as students may see it. Written field by field (an allowlist), so a key added to
    the rubric later stays out of the pack until someone decides it is public. `concepts`: the
    written items' concepts too, for the instructor's own snapshot (the batch's gradebook), never
    for a pack."""
    q = lambda s: json.dumps(s, ensure_ascii=False)     # JSON string escapes are valid TOML basic strings
    text = lambda t: f"{{ zh = {q(t.zh)}, en = {q(t.en)} }}"
    num = lambda x: repr(float(x))
    lim = rubric.limits
    lines = [f"# Public rubric of {rubric.id} for the students' self-check, written by `grade.py pack`.",
             "# The grade itself also uses hidden cases, which are not in this pack.", "schema = 1", "",
             "[assignment]", f"id = {q(rubric.id)}", f"title = {text(rubric.title)}", f"lang = {q(rubric.lang)}",
             f"public_seed = {rubric.public_seed}", "", "[limits]",
             f"cell_seconds = {num(lim.cell_seconds)}", f"memory_mb = {lim.memory_mb}", f"processes = {lim.processes}",
             f"output_kb = {lim.output_kb}", f"file_mb = {lim.file_mb}", f"max_elements = {lim.max_elements}"]
    near = rubric.near_misses
    lines += ["", "[near_misses]", f"container = {num(near.container)}", f"integer_dtype = {num(near.integer_dtype)}",
              f"float_dtype = {num(near.float_dtype)}"]
    for p in rubric.parts:
        lines += ["", "[[parts]]", f"id = {q(p.id)}", f"title = {text(p.title)}"]
    if rubric.script:
        s = rubric.script
        lines += ["", "[script]", f"capture = {json.dumps(list(s.capture))}",
                  f"changed_inputs_credit = {num(s.changed_inputs_credit)}",
                  f"locked_inputs = {json.dumps(list(s.locked_inputs))}",
                  f"follow_through_credit = {num(s.follow_through_credit)}"]
    for it in rubric.items:
        lines += ["", "[[items]]", f"id = {q(it.id)}", f"part = {q(it.part)}", f"kind = {q(it.kind)}",
                  f"name = {q(it.name)}", f"points = {num(it.points)}", f"title = {text(it.title)}"]
        if it.kind == "written":
            lines.append(f"question = {text(it.question)}")
            if concepts and it.concepts:
                words = lambda t: json.dumps(list(t), ensure_ascii=False)     # noqa: E731
                lines.append("concepts = [" + ", ".join(f"{{ zh = {words(c.zh)}, en = {words(c.en)} }}"
                                                         for c in it.concepts) + "]")
            continue
        lines += [f"dtype = {q(it.dtype)}", f"partial = {q(it.partial)}", f"case_credit = {num(it.case_credit)}"]
        if it.returns:
            lines.append(f"returns = {json.dumps(list(it.returns))}")
        if it.reminder is not None:
            lines.append(f"reminder = {text(it.reminder)}")
        lines += ["  [items.tolerance]", f"  rtol = {num(it.tolerance.rtol)}", f"  atol = {num(it.tolerance.atol)}"]
        if it.seconds is not None:
            lines += ["  [items.limits]", f"  seconds = {num(it.seconds)}"]
        for name, o in it.outputs:      # how each output is compared and drawn (its `hints` code stays home)
            lines += [f"  [items.outputs.{q(name)}]", f"  rtol = {num(o.tolerance.rtol)}", f"  atol = {num(o.tolerance.atol)}",
                      f"  order = {q(o.order)}", f"  rows_sum_to_one = {'true' if o.rows_sum_to_one else 'false'}",
                      f"  draw = {q(o.draw)}"]
        for m in it.mistakes:
            lines += ["  [[items.mistakes]]", f"  id = {q(m.id)}", f"  credit = {num(m.credit)}",
                      f"  hint = {text(m.hint)}"]
    return "\n".join(lines) + "\n"


# === reading ======================================================================================
def _without(schema: dict, *keys: str) -> dict:
    return {k: v for k, v in schema.items() if k not in keys}


# The pack rubric's schema: the full rubric's, minus what a pack must not (and does not) carry.
_P_TOP = _without(_rubric.TOP_KEYS, "tolerance")
_P_ASSIGNMENT = _without(_rubric.ASSIGNMENT_KEYS, "reference", "starter", "hidden_seeds")
_P_SCRIPT = _without(_rubric.SCRIPT_KEYS, "inputs", "expected")
_P_ITEM = _without(_rubric.ITEM_KEYS, "reference", "cases", "follows", "hints")     # concepts: the snapshot's only
_P_MISTAKE = _without(_rubric.MISTAKE_KEYS, "function")


def load_pack_rubric(path: str | Path, text: str | None = None) -> Rubric:
    """A `Rubric` from a pack's rubric TOML (or the instructor's snapshot of it, given as `text`).
    Validated with the rubric's own schema (minus the keys a pack leaves out), so a hand-edited pack
    rubric gets the same "did you mean" answers."""
    path = Path(path)
    try:
        raw = path.read_bytes() if text is None else text.encode("utf-8")
        data = tomllib.loads(raw.decode("utf-8"))
    except OSError as e:
        raise PackError(f"{path}: cannot be read ({e.strerror}); it belongs beside the checks file, as "
                        "`grade.py pack` writes them")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise RubricError(path, "", "", f"is not valid TOML: {e}")
    top = _rubric.check_table(data, _P_TOP, "top level", path)
    a = _rubric.check_table(top["assignment"], _P_ASSIGNMENT, "[assignment]", path)
    parts = tuple(_rubric.Part(**_rubric.check_table(p, _rubric.PART_KEYS, f"parts[{i}]", path))
                  for i, p in enumerate(top["parts"]))
    script = None
    if top["script"] is not None:
        s = _rubric.check_table(top["script"], _P_SCRIPT, "[script]", path)
        script = _rubric.Script(inputs=PACKED, expected=PACKED, capture=tuple(s["capture"]),
                                changed_inputs_credit=float(s["changed_inputs_credit"]),
                                locked_inputs=tuple(s["locked_inputs"]),
                                follow_through_credit=float(s["follow_through_credit"]))
    items = []
    for i, raw_item in enumerate(top["items"]):
        _rubric.check_table(raw_item, _P_ITEM, f"items[{i}]", path)
        for j, m in enumerate(raw_item.get("mistakes", [])):
            _rubric.check_table(m, _P_MISTAKE, f"items[{i}].mistakes[{j}]", path)
        # The full item parser does the type and range checks; the code names it requires are
        # placeholders, never resolved (PackedReference answers by item id).
        full = dict(raw_item, mistakes=[dict(m, function=PACKED) for m in raw_item.get("mistakes", [])])
        if full.get("kind") == "function":
            full.update(reference=PACKED, cases=PACKED)
        items.append(_rubric.parse_item(full, i, _rubric.Tolerance(), parts, path))
    return Rubric(path=path.resolve(), sha256=hashlib.sha256(raw).hexdigest(), id=a["id"], title=a["title"],
                  reference=path.resolve().parent, starter=(), lang=a["lang"], public_seed=a["public_seed"],
                  hidden_seeds=(), limits=_rubric.Limits(**_rubric.check_table(top["limits"], _rubric.LIMITS_KEYS, "[limits]", path)),
                  parts=parts, items=tuple(items), script=script,
                  near_misses=_rubric.NearMisses(**_rubric.check_table(top["near_misses"], _rubric.NEAR_MISSES_KEYS,
                                                                  "[near_misses]", path)))


def find_checks(submission: str | Path, checks: str | Path | None = None) -> Path:
    """The checks file given, or the one beside the submission (inside it, for a folder)."""
    if checks is not None:
        p = Path(checks)
        if not p.is_file():
            raise PackError(f"{p}: no such checks file; pass --checks with the {CHECKS_SUFFIX} file of your pack")
        return p
    sub = Path(submission)
    folder = sub if sub.is_dir() else sub.parent
    found = sorted(folder.glob(f"*{CHECKS_SUFFIX}"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise PackError(f"no *{CHECKS_SUFFIX} file in {folder.resolve()} (where {sub.name} is checked from): copy it "
                        f"there from the assignment pack, or pass --checks PATH")
    raise PackError(f"several checks files in {folder}: {', '.join(p.name for p in found)}; choose one with --checks")


def load_pack(checks: str | Path) -> tuple[Rubric, "PackedReference"]:
    checks = Path(checks)
    try:
        with safe_open(str(checks), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:   # safetensors raises its own error types for a damaged header
        raise PackError(f"{checks}: not a readable checks file ({e}); download the assignment pack again")
    try:
        structure = json.loads(meta["checks"])
    except (KeyError, ValueError):
        raise PackError(f"{checks}: a safetensors file, but not a checks file written by `grade.py pack`")
    if structure.get("format") != FORMAT or structure.get("version") != VERSION:
        raise PackError(f"{checks}: checks format {structure.get('format')!r} version {structure.get('version')!r}; "
                        f"this grader reads {FORMAT!r} version {VERSION}: update the grader or the pack")
    toml = checks.parent / structure["rubric"]
    rubric = load_pack_rubric(toml)
    if hashlib.sha256(toml.read_bytes()).hexdigest() != structure["rubric_sha256"]:
        raise PackError(f"{toml} does not belong to {checks.name} (it was changed or comes from another pack); "
                        "use the pair from one `grade.py pack`")
    return rubric, PackedReference(rubric, structure, tensors)


class PackedReference:
    """Answers the scorer's questions from a checks file: the public seed's values, nothing else."""

    def __init__(self, rubric: Rubric, structure: dict, tensors: dict):
        self.rubric = rubric
        self._tensors = tensors
        self._script = structure.get("script")
        self._seed = structure["public_seed"]
        self._functions = structure.get("functions", {})
        self._cases: dict[str, tuple[Case, ...]] = {}
        for item in rubric.items_of("function"):
            if item.id not in self._functions:
                raise PackError(f"{rubric.path}: item {item.id!r} has no cases in the checks file; rebuild the pack")

    def _decode(self, enc):
        from .sandbox.runtime import tree
        try:
            return tree.decode(enc, self._tensors.__getitem__)
        except (ValueError, KeyError) as e:
            raise PackError(f"a value in the checks file cannot be read ({e}); update the grader or rebuild the pack")

    def _seed_check(self, seed: int) -> None:
        if seed != self._seed:
            raise PackError(f"the checks file holds the public seed {self._seed} only, not seed {seed}")

    # -- script items ---------------------------------------------------------------------------
    def script_inputs(self, seed: int) -> dict:
        self._seed_check(seed)
        return {k: self._decode(v) for k, v in self._script["inputs"].items()}

    def script_expected(self, seed: int) -> dict:
        self._seed_check(seed)
        return {k: self._decode(v) for k, v in self._script["expected"].items()}

    def script_mistake(self, item: Item, mistake_id: str, seed: int):
        self._seed_check(seed)
        return self._decode(self._script["mistakes"][item.id][mistake_id])

    # -- function items -------------------------------------------------------------------------
    def cases(self, item: Item) -> tuple[Case, ...]:
        if item.id not in self._cases:
            self._cases[item.id] = tuple(
                Case(item=item.id, run="public", seed=self._seed, public=True, id=c["id"],
                     about=Text(c["about"]["zh"], c["about"]["en"]), args=tuple(self._decode(a) for a in c["args"]),
                     kwargs={k: self._decode(v) for k, v in c["kwargs"].items()})
                for c in self._functions[item.id])
        return self._cases[item.id]

    def _raw_case(self, item: Item, case: Case) -> dict:
        return next(c for c in self._functions[item.id] if c["id"] == case.id)

    def expected(self, item: Item, case: Case):
        return self._decode(self._raw_case(item, case)["expected"])

    def mistake(self, item: Item, mistake_id: str, case: Case):
        return self._decode(self._raw_case(item, case)["mistakes"][mistake_id])

    def resolve(self, dotted: str, *_, **__):
        """A pack has no code: diagnoses that recompute from the student's own values are skipped."""
        raise LookupError(f"{dotted!r}: the self-check has the public values, not the reference code")
