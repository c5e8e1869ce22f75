"""What `grade.py validate` checks of the solution notebook against the rubric, beyond its score:
where the grader will look for things in a student's copy of it.

1. every written item is found in the solution by the very locator the grader uses on a student's
   notebook (`blanks.locate_written`, with the rubric's `section_aliases`): a written id that
   matches no heading would give every student "no answer found";
2. every `[script] capture` the solution makes, under every seed, is the value `script.inputs`
   (`canonical_inputs(seed)`) returns: otherwise the script items are graded against inputs the
   students' notebooks never make, and the message says why (the draw-order rule, a reseed, fixed
   data that differs).

Read-only: the solution's run is the one validate already made in the sandbox; nothing here runs
code.
"""
from __future__ import annotations

import re
from pathlib import Path

from .blanks import locate_written
from .errors import SubmissionError
from .load import load_submission
from .model import GradeResult, Layout
from .rubric import Rubric
from .score import same_tensor

# Every `S.Q` a notebook could number a question with; asking the locator for all of them lists
# the headings it recognises (for the message), whatever the rubric's ids.
_ANY_QUESTION = tuple(f"any.{s}.{q}" for s in range(1, 31) for q in range(1, 31))


# --- 1. written ids against the solution's headings -------------------------------------------------
def written_problems(rubric: Rubric, solution: Path) -> list[str]:
    written = rubric.items_of("written")
    if not written or not solution.is_file():
        return []           # a missing solution is reported by the starter check
    try:
        sub = load_submission(solution)
    except SubmissionError as e:
        return [f"{solution}: cannot be read for its written questions: {e.problem_en}"]
    found = {w.item for w in locate_written(sub, tuple(i.id for i in written), rubric.section_aliases)
             if w.cell is not None}
    headings = [w.item.split(".", 1)[1] for w in locate_written(sub, _ANY_QUESTION, rubric.section_aliases)
                if w.cell is not None]
    named = {i.id.split(".", 1)[1] for i in written if i.id.count(".") == 2}
    unused = [h for h in headings if h not in named]
    problems = []
    for item in written:
        if item.id in found:
            continue
        listed = f"its headings are {', '.join(headings)}" if headings else "it has no numbered question headings"
        if item.id.count(".") != 2:
            fix = (f"a written item's id is `<prefix>.<section>.<question>`, numbered as the solution's "
                   f"heading (`written.1.2` for `### 1.2 ...`): rename it")
        else:
            fix = (f"rename the item to the question it grades"
                   + (f" (no written item names {', '.join(unused)})" if unused else "")
                   + f", or number the solution's heading `### {item.id.split('.', 1)[1]}` and release the starter again")
        problems.append(f"{rubric.path}: {item.id} is not found in {solution.name}: {listed}; every student "
                        f"would get \"no answer found\". Fix: {fix}")
    return problems


# --- 2. the captured inputs against the canonical inputs --------------------------------------------
# What draws from a global random number generator (torch's, numpy's, random's), as a line of a
# notebook writes it: a draw before the script part's shifts every value it draws. A call given a
# `generator=` of its own draws from that one and is left out.
_DRAWS = re.compile(
    r"\b(?:torch\.(?:rand|randn|randint|randperm|rand_like|randn_like|randint_like|normal|bernoulli|multinomial|poisson)"
    r"|(?:np|numpy)\.random\.(?!seed\b)\w+|random\.(?:random|randint|randrange|uniform|gauss|choice|choices|shuffle|sample)"
    r"|(?:torch\.)?nn\.(?:Linear|Bilinear|Conv[123]d|ConvTranspose[123]d|RNN|LSTM|GRU|RNNCell|LSTMCell|GRUCell|Embedding"
    r"|MultiheadAttention|Transformer\w*))\s*\(|\.(?:normal_|uniform_|random_|bernoulli_|exponential_|cauchy_|log_normal_)\s*\(")
_RESEEDS = re.compile(r"\b(?:torch\.(?:random\.)?manual_seed|torch\.seed|torch\.cuda\.manual_seed(?:_all)?"
                      r"|(?:np|numpy)\.random\.seed|random\.seed)\s*\(")


def capture_problems(rubric: Rubric, ref, result: GradeResult | None) -> list[str]:
    """Each captured name of the solution's run, under every seed (the public one first), against
    `script.inputs(seed)`; one problem per cause, with the hint that explains it."""
    script = rubric.script
    if script is None or not script.capture or result is None or result.run is None:
        return []
    where = result.submission.path
    canonical, problems = {}, []
    for label, seed in rubric.runs:
        try:
            canonical[label] = ref.script_inputs(seed)
        except Exception as e:        # the instructor's code: report it, do not crash
            return [f"{rubric.path}: [script] inputs {script.inputs!r} raised {type(e).__name__} on seed {seed}: {e}"]
    public = canonical["public"]
    for name in script.capture:
        if name not in public:
            problems.append(f"{rubric.path}: [script] capture names `{name}`, but {script.inputs}({rubric.public_seed}) "
                            f"returns no `{name}` (it returns {', '.join(map(str, public)) or 'nothing'}): return it "
                            f"from {script.inputs}, or drop it from capture")
    names = [n for n in script.capture if n in public]
    absent = [n for n in names if _captured(result, "public", n) is None]
    if absent:
        problems.append(f"{where}: the solution never defines {_ticked(absent)} ([script] capture): define "
                        f"{'it' if len(absent) == 1 else 'them'} in the script part, as the starter does, or drop "
                        f"{'it' if len(absent) == 1 else 'them'} from capture")
    differ = {}       # name -> [(label, seed, how)] of the runs where the captured value is not the canonical one
    for name in names:
        if name in absent:
            continue
        for label, seed in rubric.runs:
            how = _difference(_captured(result, label, name), canonical[label].get(name))
            if how:
                differ.setdefault(name, []).append((label, seed, how))
    by_cause: dict[str, list[str]] = {}
    for name in differ:
        by_cause.setdefault(_cause(name, rubric, result, canonical), []).append(name)
    for cause, group in by_cause.items():
        label, seed, how = differ[group[0]][0]
        seeds = sorted({s for n in group for _, s, _ in differ[n]}, key=[s for _, s in rubric.runs].index)
        problems.append(f"{where}: the captured {_ticked(group)} {'differs' if len(group) == 1 else 'differ'} from "
                        f"{script.inputs}(seed) under seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} "
                        f"(`{group[0]}`, seed {seed}: {how}): {_hint(cause, group, rubric, result)}")
    return problems


def _captured(result: GradeResult, label: str, name: str):
    value = result.run.captures.get((label, name))
    return None if value is None or value.kind == "absent" else value.plain()


def _difference(got, want) -> str:
    """'' when the captured value is the canonical one (tensors within 1e-6), else how it differs."""
    import torch
    if isinstance(want, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"{type(got).__name__} where a tensor is expected"
        if got.shape != want.shape:
            return f"shape {tuple(got.shape)}, canonical {tuple(want.shape)}"
        if same_tensor(got, want):        # the scorer's own rule for "the seeded inputs"
            return ""
        return f"largest difference {float((got.double() - want.double()).abs().max()):.3g}"
    try:
        same = bool(got == want)
    except Exception:           # values that do not compare (a list of tensors): not the same
        same = False
    return "" if same else f"{got!r}, canonical {want!r}"


def _same(a, b) -> bool:
    return not _difference(a, b)


def _cause(name: str, rubric: Rubric, result: GradeResult, canonical: dict) -> str:
    """'fixed' (the canonical value is the same under every seed: fixed data, and the notebook's is
    another), 'reseed' (the notebook's is the same under every seed, or it calls a seed function
    before it), else 'order' (something draws before the script part's draws)."""
    labels = [label for label, _ in rubric.runs]
    wants = [canonical[l][name] for l in labels]
    gots = [_captured(result, l, name) for l in labels]
    if len(labels) > 1 and all(_same(w, wants[0]) for w in wants[1:]):
        return "fixed"
    if (len(labels) > 1 and all(_same(g, gots[0]) for g in gots[1:])) or _before(result, name, _RESEEDS):
        return "reseed"
    return "order"


def _before(result: GradeResult, name: str, pattern: re.Pattern) -> str:
    """The first line before `name` is made (earlier blocks, then the lines above its assignment in
    its own block) that matches `pattern`, as "cell C, line L: `code`"; '' if none."""
    layout: Layout | None = result.layout
    at = layout.checkpoints.get(name) if layout else None
    if at is None:
        return ""
    assign = re.compile(rf"^\s*{re.escape(name)}\s*(?::[^=]*)?=(?!=)")
    for block in layout.blocks:
        if block.at > at:
            break
        for n, line in enumerate(block.source.split("\n"), 1):
            if block.at == at and assign.match(line):
                break
            code = line.split("#", 1)[0]
            if pattern.search(code) and "generator=" not in code:
                return f"cell {block.cell}, line {n}: `{line.strip()[:80]}`"
    return ""


def _hint(cause: str, names: list[str], rubric: Rubric, result: GradeResult) -> str:
    inputs, them = rubric.script.inputs, _ticked(names)
    if cause == "fixed":
        return (f"{them} {'is' if len(names) == 1 else 'are'} fixed data ({inputs} returns the same under every seed), "
                f"and the solution's {'is' if len(names) == 1 else 'are'} not that: make the notebook and {inputs} agree, "
                "then release the starter again")
    if cause == "reseed":
        where = _before(result, names[0], _RESEEDS)
        return (f"the notebook reseeds{f' ({where})' if where else ''}: the grader seeds torch, random and numpy with "
                f"each run's seed, public and hidden, before the first cell, and a seed of the notebook's own gives "
                f"the same {them} under every seed; remove it from the solution and release the starter again")
    where = _before(result, names[0], _DRAWS)
    first = f"an earlier cell draws random numbers before the given draws ({where})" if where else \
        "something draws random numbers before the given draws, or draws them in another order or shape"
    return (f"{first}. The draw-order rule: the grader seeds the run before the first cell and {inputs} reproduces "
            f"the script part's draws as the notebook's first random draws, in its order; move the other draw "
            f"after the script part (or give it a torch.Generator of its own), or make {inputs} draw as the "
            "notebook does, then release the starter again")


def _ticked(names) -> str:
    return ", ".join(f"`{n}`" for n in names)
