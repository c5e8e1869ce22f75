"""`grade.py validate RUBRIC`: is this assignment ready to hand out? Each check reports what failed
and goes on, so one run lists every problem:

1. the rubric loads and every function it names resolves;
2. every function item declares its contract (`[items.signature]`, grader/contract.py); every case
   of every seed, public and hidden, passes arguments of the declared kinds, the reference returns
   values of the declared kinds, and each starter's `def` line names the declared arguments, with
   defaults where the contract lets one be left out; before that, the item's `returns` names as
   many outputs as the reference returns (one problem that names the cause, not one per case);
3. the committed starter files are what `release` makes of the solution notebook
   (`<reference>/solution.ipynb`), byte for byte;
4. every written item is found in the solution by the grader's own locator (validate_solution.py);
5. every known mistake is caught by its item: it fails the item (unless its credit is full) and
   the item shows that mistake's hint;
6. the pack builds and loads back;
7. in the sandbox: the solution notebook scores full marks on every auto-graded item, through the
   instructor's grader and through the pack's self-check; each unmodified starter scores zero on
   every item; the solution's captured inputs are the canonical ones, under every seed
   (validate_solution.py, with the hint that explains a difference).

The log gets one line per check ("known mistakes caught: OK") and, last, what was checked
("checked 11 items, 86 cases under 3 seeds, 38 known mistakes, 3 written questions, 5 captured
inputs, 2 starters"); the CLI prints both.

Why (5) scores the mistakes' values instead of grading a notebook per mistake: a mistake is
declared by its *values* (`mistakes.<fn>` on the case inputs), and that is all the scorer ever sees
of a submission's function (the values it returns, case by case). Handing `score_items` a run
whose calls return exactly the mistake's values therefore tests the very decision a student's
notebook would get, for every seed and case, in milliseconds and without writing a notebook per
mistake (which would need the mistake's source spliced into the solution, helpers and all). Where a
mistake raises on some case, the run says the function raised there, as the sandbox would.
"""
from __future__ import annotations

import ast
import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Callable

from . import contract, contract_check
from .errors import GraderError, SubmissionError
from .expected import Reference
from .model import CallOutcome, ErrorInfo, GradeResult, Layout, RunResult, Value
from .rubric import Item, Rubric, load_rubric
from .score import score_items
from .validate_solution import capture_problems, written_problems

NO_LAYOUT = dict(blocks=(), blanks=(), unfilled=frozenset(), skipped=(), written=())


def validate(rubric_path: str | Path, sandbox: str = "bwrap", log: Callable[[str], None] = lambda s: None,
             worker=None) -> list[str]:
    """Every problem found, as a sentence that names the file or item and the fix; [] when ready.
    `worker`: a warm sandbox worker to grade in (a `pipeline.JobRunner`, left open), else one of its own."""
    try:
        rubric = load_rubric(rubric_path)
        ref = Reference(rubric)
        ref.check()
    except GraderError as e:
        return [str(e)]
    problems: list[str] = []

    def check(step: str, found: list[str]) -> None:
        log(f"{step}: {'OK' if not found else f'{len(found)} problem(s)'}")
        problems.extend(found)

    solution = rubric.reference / "solution.ipynb"
    check("cases and starter follow the declared signatures", contract_problems(rubric, ref) + signature_problems(rubric))
    check("starter up to date", starter_problems(rubric, solution))
    if rubric.items_of("written"):
        check("written questions found in the solution", written_problems(rubric, solution))
    check("known mistakes caught", mistake_problems(rubric, ref))
    graded = grade_all(rubric, ref, solution, sandbox, worker)
    check("the pack builds", graded.pack_problems)
    check("the solution scores full marks (grader and pack self-check)", solution_problems(rubric, graded))
    check("each unmodified starter scores zero", starter_score_problems(rubric, graded))
    if rubric.script and rubric.script.capture:
        check("the solution's captured inputs are the canonical ones", capture_problems(rubric, ref, graded.solution))
    log(summary(rubric, ref))
    return problems


def summary(rubric: Rubric, ref: Reference) -> str:
    """One line: what validate checked."""
    cases = 0
    for item in rubric.items_of("function"):
        try:
            cases += len(ref.cases(item))
        except Exception:       # reported by the contract check
            pass
    n = lambda k, word: f"{k} {word}{'' if k == 1 else 's'}"
    parts = [n(len(rubric.items), "item"), f"{n(cases, 'case')} under {n(len(rubric.runs), 'seed')}",
             n(sum(len(i.mistakes) for i in rubric.items), "known mistake"),
             n(len(rubric.items_of("written")), "written question")]
    if rubric.script and rubric.script.capture:
        parts.append(n(len(rubric.script.capture), "captured input"))
    parts.append(n(len(rubric.starter), "starter"))
    return "checked " + ", ".join(parts)


# --- 2. one contract per function item ---------------------------------------------------------------
def contract_problems(rubric: Rubric, ref: Reference) -> list[str]:
    """Every case of every seed against its item's declared signature, and the reference's value
    on it against the declared returns. A case outside the contract grades students on something
    the starter never told them. An item whose `returns` names another number of outputs than the
    reference returns gets that one problem, not one per case."""
    problems = []
    for item in rubric.items_of("function"):
        where = f"{rubric.path}: item {item.id!r}"
        try:
            cases = ref.cases(item)
        except Exception as e:    # a generator that raises is a problem to report, not a crash
            problems.append(f"{where}: the case generator {item.cases!r} raised {type(e).__name__}: {e}")
            continue
        miscounted = returns_problem(item, ref, cases)
        if miscounted:
            problems.append(f"{where}: {miscounted}")
        if item.signature is None:
            problems.append(f"{where}: declares no [items.signature]; declare the kinds of the arguments and "
                            "returned values the starter documents (docs/rubric-format.md)")
            continue
        for case in cases:
            at = f"{where}: case {case.id!r} (seed {case.seed})"
            found, env = contract_check.check_call(item.signature, case.args, case.kwargs)
            problems += [f"{at}: argument {p.name}: declared {p.declared}; the case passes {p.passed}"
                         + (f" ({p.reason})" if p.reason else "") for p in found]
            if found:
                continue
            try:
                value = ref.expected(item, case)
            except Exception as e:
                problems.append(f"{at}: the reference {item.reference!r} raises {type(e).__name__}: {e}")
                continue
            if not miscounted:
                problems += [f"{at}: returned {p.name}: declared {p.declared}; the reference returns {p.passed}"
                             + (f" ({p.reason})" if p.reason else "") for p in contract_check.check_returns(item.signature, value, env)]
    return problems


def returns_problem(item: Item, ref: Reference, cases) -> str:
    """'' when the item's `returns` (or its signature's) names as many top-level outputs as the
    reference returns on the first public case (several names: a tuple or list of that length;
    one name: any value); else the cause, in one sentence with the fix."""
    names = item.names
    case = next((c for c in cases if c.public), cases[0] if cases else None)
    if len(names) < 2 or case is None:
        return ""
    try:
        value = ref.expected(item, case)
    except Exception:
        return ""             # reported where the case is checked
    if isinstance(value, (tuple, list)) and len(value) == len(names):
        return ""
    if isinstance(value, (tuple, list)):
        got = f"a {type(value).__name__} of {len(value)}"
        declared = "[items.signature] returns" if item.signature and item.signature.returns else "the item's `returns`"
        fix = f"name exactly its {len(value)} output{'s' if len(value) != 1 else ''} in {declared}"
    else:
        got = f"one value, {contract.describe_value(value)}"
        fix = "declare one output (one name), or make the reference return the tuple the starter documents"
    return (f"returns names {len(names)} outputs ({', '.join(names)}) but the reference {item.reference!r} returns "
            f"{got} (case {case.id!r}): {fix}; every student's answer is compared output by output against these names")


def signature_problems(rubric: Rubric) -> list[str]:
    """Each starter's `def` of each function item against the declared arguments (read with ast)."""
    problems = []
    items = [i for i in rubric.items_of("function") if i.signature is not None]
    for starter in rubric.starter:
        if not starter.is_file() or not items:
            continue      # a missing starter is reported where it is graded
        try:
            defs = contract_check.function_defs(starter)
        except SubmissionError as e:
            problems.append(f"{starter}: cannot be read for its def lines: {e}")
            continue
        for item in items:
            if item.name not in defs:
                problems.append(f"{starter}: defines no function `{item.name}` (item {item.id!r}); the starter "
                                f"must give its def line: def {item.name}{item.signature.text()}")
                continue
            cell, fn = defs[item.name]
            problems += [f"{starter}: cell {cell}, line {fn.lineno}: def {fn.name}({ast.unparse(fn.args)}) "
                         f"(item {item.id!r}): {p}" for p in contract_check.def_problems(item.signature, fn)]
    return problems


# --- 3. the starter is the released solution -----------------------------------------------------
def starter_problems(rubric: Rubric, solution: Path) -> list[str]:
    from .release import ReleaseError, notebook_text, percent_script, starter_notebook
    if not solution.is_file():
        return [f"{solution}: no solution notebook; validate grades it and releases the starter from it"]
    try:
        starter = starter_notebook(json.loads(solution.read_text(encoding="utf-8")), solution)
    except (ReleaseError, ValueError) as e:
        return [f"{solution}: {e}"]
    made = {".ipynb": notebook_text(starter), ".py": percent_script(starter)}
    problems = []
    for path in rubric.starter:
        if path.suffix not in made:
            continue
        if not path.is_file() or path.read_text(encoding="utf-8") != made[path.suffix]:
            problems.append(f"{path} is not what `release` makes of {solution.name}: run `python grade.py release "
                            f"{solution} --out {path.with_suffix('.ipynb')} --py {path.with_suffix('.py')}`")
    return problems


# --- 5. known mistakes ------------------------------------------------------------------------------
def mistake_problems(rubric: Rubric, ref: Reference) -> list[str]:
    problems = []
    for item in rubric.items:
        for m in item.mistakes:
            alone = dataclasses.replace(rubric, items=(item,))
            try:
                run, layout = (_function_run if item.kind == "function" else _script_run)(rubric, ref, item, m.id)
                result = score_items(alone, layout, run, ref)[0]
            except Exception as e:   # the reference (or its generator) raising is reported by the contract check
                problems.append(f"{rubric.path}: item {item.id!r}: mistake {m.id!r} cannot be checked: the reference "
                                f"raised {type(e).__name__}: {e}; fix the reference first")
                continue
            if result.mistake == m.id and result.hint == m.hint and (result.status != "pass" or m.credit >= 1.0):
                continue
            if result.status == "pass" and result.mistake is None:
                why = "gives the reference's values on every case, so it can never be told apart"
            elif result.mistake:
                why = f"is reported as mistake {result.mistake!r} (same values on every case): remove one or add a case that separates them"
            else:
                why = _unrecognised(result, m.id)
            problems.append(f"{rubric.path}: item {item.id!r}: mistake {m.id!r} ({m.function}) {why}")
    return problems


def _unrecognised(result, mistake: str) -> str:
    failing = [c for c in result.cases if not c.passed]
    others = sorted({c.mistake for c in failing if c.mistake and c.mistake != mistake})
    raised = [c.case_id for c in failing if c.mistake is None]
    if others:
        n = sum(1 for c in failing if c.mistake in others)
        return (f"is not shown: on {n} case(s) its values coincide with {', '.join(map(repr, others))}, listed "
                "before it; the scorer credits each case to the first mistake that matches, so no single mistake "
                "explains the item and the hint is lost (grader/score.py should prefer a mistake that matches every failing case)")
    if raised:
        return (f"is not recognised: it raises (or matches nothing) on {len(raised)} case(s), e.g. {raised[0]}, "
                "and a case it cannot explain rules it out; make the mistake handle every case")
    return f"is not recognised ({result.status}: {result.message.en[:200]})"


def _function_run(rubric: Rubric, ref: Reference, item: Item, mistake: str):
    outcomes = []
    for case in ref.cases(item):
        got = ref.mistake(item, mistake, case)   # None: the mistake raised on this case
        outcomes.append(CallOutcome(case.id, "ok", value=Value.of(got)) if got is not None else
                        CallOutcome(case.id, "error", error=ErrorInfo("Exception", "the mistake raised", "")))
    run = RunResult(sandbox="none", seconds=0.0, student_seconds=0.0, cells=(), captures={},
                    calls={item.id: tuple(outcomes)})
    return run, Layout(checkpoints={}, **NO_LAYOUT)


def _script_run(rubric: Rubric, ref: Reference, item: Item, mistake: str):
    captures = {}
    for label, seed in rubric.runs:
        values = dict(ref.script_inputs(seed), **ref.script_expected(seed))
        values[item.name] = ref.script_mistake(item, mistake, seed)
        captures.update({(label, n): Value.of(v) if v is not None else Value(kind="absent") for n, v in values.items()})
    run = RunResult(sandbox="none", seconds=0.0, student_seconds=0.0, cells=(), captures=captures, calls={})
    return run, Layout(checkpoints={n: (1, 0) for (_, n) in captures}, **NO_LAYOUT)


# --- 6, 7. the pack, and real grading in the sandbox ------------------------------------------------
@dataclasses.dataclass
class Graded:
    """What the sandbox made of the assignment's own files: the solution through the instructor's
    grader and through the pack's self-check, each starter (None: the file does not exist), and
    why the pack did not build."""
    solution: GradeResult | None = None
    self_check: GradeResult | None = None
    starters: dict = dataclasses.field(default_factory=dict)
    pack_problems: list = dataclasses.field(default_factory=list)


def grade_all(rubric: Rubric, ref: Reference, solution: Path, sandbox: str, worker=None) -> Graded:
    """Build the pack, then grade the solution (twice: grader and pack self-check) and each starter,
    in one warm worker (`worker`, or one of its own)."""
    from .pack import build_pack, load_pack
    from .pipeline import Grader
    graded = Graded()
    with tempfile.TemporaryDirectory(prefix="grader-validate-") as tmp:
        try:
            build_pack(rubric.path, tmp)
            pack_rubric, packed = load_pack(next(Path(tmp).glob("*.checks.safetensors")))
        except (GraderError, StopIteration) as e:
            graded.pack_problems.append(f"{rubric.path}: the pack does not build: {e}")
            pack_rubric = None
        with Grader(rubric, sandbox=sandbox, reference=ref, worker=worker) as grader:
            if solution.is_file():
                graded.solution = grader.grade(solution)
                if pack_rubric is not None:
                    # One warm worker serves both graders: a worker runs whatever job it is sent.
                    checker = Grader(pack_rubric, sandbox=sandbox, reference=packed, worker=grader.worker)
                    graded.self_check = checker.grade(solution)
            for starter in rubric.starter:
                graded.starters[starter] = grader.grade(starter) if starter.is_file() else None
    return graded


def grading_problems(rubric: Rubric, ref: Reference, solution: Path, sandbox: str, worker=None) -> list[str]:
    """The pack builds, the solution scores full marks, each starter zero (one sandbox run)."""
    graded = grade_all(rubric, ref, solution, sandbox, worker)
    return graded.pack_problems + solution_problems(rubric, graded) + starter_score_problems(rubric, graded)


def solution_problems(rubric: Rubric, graded: Graded) -> list[str]:
    problems = []
    if graded.solution is not None:
        problems += _full_marks(graded.solution, rubric, "the solution")
    if graded.self_check is not None:
        problems += _full_marks(graded.self_check, rubric, "the solution (pack self-check)")
    return problems


def starter_score_problems(rubric: Rubric, graded: Graded) -> list[str]:
    problems = []
    for starter, result in graded.starters.items():
        if result is None:
            problems.append(f"{starter}: the starter named in {rubric.path.name} does not exist")
            continue
        scored = [f"{i.id} ({i.points:g})" for i in result.items if i.points > 0]
        if scored:
            problems.append(f"{starter}: the unmodified starter scores points on {', '.join(scored)}; "
                            "those items must start blank (`name = ...` or `raise NotImplementedError`)")
    return problems


def _full_marks(result, rubric: Rubric, what: str) -> list[str]:
    written = {i.id for i in rubric.items_of("written")}
    short = [f"{i.id} ({i.status}, {i.points:g}/{i.max_points:g}: {i.message.en[:150]})"
             for i in result.items if i.id not in written and (i.status != "pass" or i.points < i.max_points)]
    return [f"{result.submission.path}: {what} does not score full marks on {', '.join(short)}"] if short else []
