"""Stage 5: turn the run and the comparisons into per-item results with points, by the rubric.

An item passes only if every case passes under every seed (public and hidden), so a value
hard-coded from the public run fails. When it does not pass, the first explanation that fits
every failing case decides the credit: a known mistake of the rubric; the right numbers in the
wrong container (a near miss: a list for a tensor, int32 for int64); for script variables, a
right computation on inputs that differ from the seeded ones (only on inputs that tell the right
formula from every known mistake), or on the student's own wrong upstream values (follow-through:
a partial, never a pass, refused for values that do not follow the seeds or a changed locked
input); otherwise the rubric's proportional credit, earned on hidden cases, where a trivial case
(an empty, all-zero or all-one answer) counts only alongside a passing non-trivial one.
"""
from __future__ import annotations

import dataclasses
import re

import torch

from . import diagnose
from .compare import compare, matches, near_miss, passing, trivial
from .expected import ReferenceSource
from .model import CaseCheck, CellRun, ErrorInfo, ItemResult, Layout, RunResult, Text, Value
from .rubric import Item, Rubric

ABSENT = Value(kind="absent")


def score_items(rubric: Rubric, layout: Layout, run: RunResult, ref: ReferenceSource) -> tuple[ItemResult, ...]:
    out = []
    written = {w.item: w for w in layout.written}
    sources = diagnose.cell_sources(layout.blocks)
    broken = diagnose.broken_cells(run.cells, sources)
    for item in rubric.items:
        if item.kind == "written":
            out.append(_written(item, written.get(item.id)))
            continue
        r = _variable(item, rubric, layout, run, ref) if item.kind == "variable" else _function(item, rubric, layout, run, ref)
        out.append(_explained(r, item, layout, run, sources, broken))
    return tuple(out)


def _explained(r: ItemResult, item: Item, layout: Layout, run: RunResult, sources: dict, broken: list) -> ItemResult:
    """The result with what its pages show about an error worked out here, once: the item's own
    error and the earlier one to fix first (each failing case's diagnosis is `_diagnosed`'s)."""
    if r.status != "error":
        return r
    error = _own_error(r, item, layout, run)
    cause = diagnose.root_cause(error, broken) if error is not None else None
    hint = diagnose.error_hint(cause, sources.get(cause.cell, ""), broken) if cause is not None else None
    return dataclasses.replace(r, error=error, cause=cause, cause_hint=hint)


def _diagnosed(item: Item, checks: list, ref: ReferenceSource) -> list:
    """Each failing public case with what its own values show (the assignment's hint first, then
    the generic diagnoses): worked out once, here, and kept in the result for the pages."""
    try:
        hook = ref.resolve(item.hints, item, "hints") if item.hints else None
    except LookupError:       # a student's pack carries no assignment code
        hook = None
    return [dataclasses.replace(c, diagnosis=diagnose.case_hint(item, c, hook))
            if c.public and not c.passed and c.error is None else c for c in checks]


def _own_error(r: ItemResult, item: Item, layout: Layout, run: RunResult) -> ErrorInfo | None:
    """A variable's: its cell's in the public run; a function's: its first case's that raised (a public one first)."""
    at = layout.checkpoints.get(item.name) if item.kind == "variable" else None
    if at is not None:
        cell = _cell_run(run, "public", at)
        return cell.error if cell else None
    raised = [c for c in r.cases if c.error is not None]
    return next((c.error for c in raised if c.public), raised[0].error if raised else None)


def _result(item: Item, status: str, credit: float, message: Text, hint: Text | None = None,
            cases: tuple = (), mistake: str | None = None, answer: str | None = None) -> ItemResult:
    return ItemResult(id=item.id, part=item.part, status=status, points=round(item.points * credit, 4),
                      max_points=item.points, message=message, hint=hint, cases=tuple(cases), mistake=mistake,
                      answer=answer)


def _written(item: Item, answer) -> ItemResult:
    if answer is None or not answer.text.strip():
        return _result(item, "missing", 0.0, Text("未找到该题的回答", "no answer found for this question"))
    return _result(item, "manual", 0.0, Text("书面回答，待教师评阅", "written answer, awaiting the instructor's review"),
                   answer=answer.text)


# --- script variables ---------------------------------------------------------------------------
def _variable(item: Item, rubric: Rubric, layout: Layout, run: RunResult, ref: ReferenceSource) -> ItemResult:
    name = item.name
    if name in layout.unfilled:
        return _result(item, "missing", 0.0, Text(f"`{name}` 的 #todo 留空未填", f"the #todo for `{name}` was left blank"))
    key = layout.checkpoints.get(name)
    if key is None:
        return _result(item, "missing", 0.0, Text(f"没有找到给 `{name}` 赋值的代码", f"no code assigns `{name}`"))
    checks, explanations = [], []
    pasted = _fixed_across_seeds(rubric, run, name)
    for label, seed in rubric.runs:
        got = run.captures.get((label, name), ABSENT)
        expected = ref.script_expected(seed)[name]
        public = label == "public"
        if got.kind == "absent":
            cell = _cell_run(run, label, key)
            return _result(item, "error", 0.0, _why_absent(name, cell), hint=_error_hint(cell, layout, run),
                           cases=tuple(checks))
        m = compare(got, expected, item)
        why = [] if m.passed else _explain_variable(item, rubric, run, ref, label, seed, got, pasted)
        checks.append(CaseCheck(case_id=label, run=label, public=public, passed=m.passed, message=m.message,
                                mistake=why[0][0] if why else None, max_abs=m.max_abs, max_rel=m.max_rel, where=m.where,
                                n_diff=m.n_diff, expected=expected if public else None, got=got.tensor if public else None))
        if not m.passed:
            explanations.append(why)
    return _verdict(item, _diagnosed(item, checks, ref), explanations)


def _explain_variable(item, rubric, run, ref, label, seed, got, pasted: bool) -> list[tuple]:
    """Every (id, credit, hint) that fits this seed's value, most specific first: the rubric's known
    mistakes, a near miss, then a right computation on changed inputs, then on the student's own
    upstream values (follow-through)."""
    expected = ref.script_expected(seed)[item.name]
    found = [(m.id, m.credit, m.hint) for m in item.mistakes
             if matches(got, ref.script_mistake(item, m.id, seed), item)] or _near(item, rubric, got, expected)
    if found:
        return found
    script = rubric.script
    student_inputs = {n: run.captures.get((label, n), ABSENT) for n in script.capture}
    canonical = ref.script_inputs(seed)
    known = {n: v.tensor for n, v in student_inputs.items() if v.kind == "tensor"}
    changed = [n for n, t in known.items() if not same_tensor(t, canonical.get(n))]
    locked = [n for n in changed if n in script.locked_inputs]
    names = ", ".join(f"`{n}`" for n in changed)
    if len(known) == len(student_inputs):
        try:
            theirs = ref.resolve(script.expected)(dict(known))[item.name]
        except Exception:
            theirs = None
        if matches(got, theirs, item):
            if locked:
                return [("changed-inputs", 0.0, _locked_text(locked, names))]
            if not _inputs_tell_apart(item, ref, known, theirs):
                return [("changed-inputs", 0.0, Text(
                    f"计算结果与你自己的输入（{names}）一致，但这些输入是退化的：在它们上面正确公式和常见错误给出相同的值，"
                    "无法判断计算方法是否正确，这一项不得分。请使用题目给定的输入。",
                    f"the value agrees with your own inputs ({names}), but they are degenerate: on them the right formula "
                    "and the common mistakes give the same values, so the computation cannot be checked and earns nothing. "
                    "Use the inputs the task gives."))]
            return [("changed-inputs", script.changed_inputs_credit, Text(
                f"计算方法正确，但输入与给定的不同（{names}）：可能多调用了随机数、调整了单元顺序或自行设置了随机种子；"
                "请按原顺序运行，不要重新设置种子。",
                f"the computation is right, but the inputs differ from the seeded ones ({names}): randomness consumed "
                "in another order, an extra cell, or a seed of your own; run the cells in the given order without reseeding."))]
    if item.follows:
        upstream = {n: v.tensor for (l, n), v in run.captures.items() if l == label and v.kind == "tensor"}
        try:
            own = ref.resolve(item.follows)(upstream)
        except Exception:
            own = None
        if matches(got, own, item):
            if locked:
                return [(FOLLOWS, 0.0, _locked_text(locked, names))]
            if pasted:
                return [(FOLLOWS, 0.0, Text(
                    f"`{item.name}` 与你自己前面的值一致，但它在每个随机种子下都相同，而你的输入随种子变化：这些值是粘贴或写死的，"
                    "不是计算出来的，因此不给后续步骤分。",
                    f"`{item.name}` agrees with your own earlier values, but it is the same under every seed while your "
                    "inputs change with the seed: the values were pasted or hard-coded, not computed, so no follow-through "
                    "credit is given."))]
            return [(FOLLOWS, script.follow_through_credit, Text(
                f"按你自己的上游结果计算，`{item.name}` 这一步是对的（后续步骤给部分分）；错误出在前面的步骤，改正后这一项也会正确。",
                f"follow-through: `{item.name}` is computed correctly from your own earlier values (partial credit); the "
                "error is in an earlier step, and fixing it will make this one right too."))]
    return []


FOLLOWS = "follows-upstream"


def _locked_text(locked: list[str], names: str) -> Text:
    which = ", ".join(f"`{n}`" for n in locked)
    return Text(f"输入与给定的不同（{names}）：{which} 被修改了，这一项不得分。",
                f"the inputs differ from the given ones ({names}): {which} itself was changed, which earns nothing.")


def same_tensor(a: torch.Tensor, b) -> bool:
    """Equal within 1e-6: the student's input and the seeded one, or one seed's value and another's."""
    if not isinstance(b, torch.Tensor) or a.shape != b.shape:
        return False
    return a.numel() == 0 or bool((a.double() - b.double()).abs().max() <= 1e-6)


def _inputs_tell_apart(item: Item, ref: ReferenceSource, inputs: dict, right) -> bool:
    """Do these inputs separate the right value from every known mistake's (and from a trivial
    answer)? With all-zero weights every formula gives zeros: agreeing with them proves nothing."""
    if right is None or trivial(right):
        return False
    as_value = _as_value(right)
    for m in item.mistakes:
        try:
            wrong = ref.resolve(m.function)(dict(inputs))
        except Exception:
            continue
        if matches(as_value, wrong, item):
            return False
    return True


def _as_value(t) -> Value:
    return Value(kind="tuple", items=tuple(_as_value(x) for x in t)) if isinstance(t, (tuple, list)) \
        else Value(kind="tensor", tensor=t)


def _fixed_across_seeds(rubric: Rubric, run: RunResult, name: str) -> bool:
    """Is the student's `name` the same under every seed while their own inputs are not (and the
    reference's value changes)? Then it was pasted or hard-coded, not computed from the inputs."""
    runs = [label for label, _ in rubric.runs]
    values = [run.captures.get((label, name), ABSENT) for label in runs]
    if len(runs) < 2 or any(v.kind != "tensor" for v in values):
        return False
    if not all(same_tensor(values[0].tensor, v.tensor) for v in values[1:]):
        return False
    for n in rubric.script.capture:
        inputs = [run.captures.get((label, n), ABSENT) for label in runs]
        if all(v.kind == "tensor" for v in inputs) and not all(same_tensor(inputs[0].tensor, v.tensor) for v in inputs[1:]):
            return True
    return False


def _near(item: Item, rubric: Rubric, got: Value, expected) -> list[tuple]:
    """The right numbers in the wrong container, with the rubric's credit and what to change."""
    near = near_miss(got, expected, item)
    if near is None:
        return []
    dt = str(near.expected.dtype).replace("torch.", "")
    if near.kind == "container":
        what = "list" if near.got.type_name == "list" else "tuple"
        hint = Text(f"数值正确，但 `{item.name}` 返回的是 Python {what}，应返回 torch.Tensor：例如 torch.tensor(结果, dtype=torch.{dt})。",
                    f"the numbers are right, but `{item.name}` returned a Python {what}: return a torch.Tensor, "
                    f"e.g. torch.tensor(result, dtype=torch.{dt}).")
    else:
        gdt = str(near.got.tensor.dtype).replace("torch.", "")
        fix = {"int64": ".long()", "int32": ".int()", "float32": ".float()", "float64": ".double()"}.get(dt, f".to(torch.{dt})")
        hint = Text(f"数值正确，但 dtype 是 {gdt}，应为 {dt}：在返回前加上 {fix}（或创建张量时指定 dtype=torch.{dt}）。",
                    f"the numbers are right, but the dtype is {gdt}; it should be {dt}: add {fix} before returning "
                    f"(or create the tensor with dtype=torch.{dt}).")
    return [(f"near-miss-{near.kind.replace('_', '-')}", getattr(rubric.near_misses, near.kind), hint)]


def _why_absent(name: str, cell: CellRun | None, never: Text = Text("没有得到值", "was never computed")) -> Text:
    if cell is not None and cell.error is not None:
        e = cell.error
        where = f"cell {e.cell or cell.cell}, line {e.line}" if e.line else f"cell {cell.cell}"
        zwhere = f"第 {e.cell or cell.cell} 个单元第 {e.line} 行" if e.line else f"第 {cell.cell} 个单元"
        src = f": `{e.source_line.strip()}`" if e.source_line.strip() else ""
        return Text(f"`{name}` {never.zh}：{zwhere}出错{src}（{e.type}: {e.message}）",
                    f"`{name}` {never.en}: {where} raised {e.type}{src} ({e.message})")
    if cell is not None and cell.status in ("limit", "exit"):
        note = diagnose.note_text(cell.note)
        return Text(f"`{name}` {never.zh}：第 {cell.cell} 个单元{note.zh}", f"`{name}` {never.en}: cell {cell.cell}: {note.en}")
    return Text(f"`{name}` {never.zh}（所在单元未运行完）", f"`{name}` {never.en} (its cell did not finish)")


def _defining_cell(layout: Layout, run: RunResult, name: str) -> CellRun | None:
    """The public run of a cell that defines function `name` but did not finish (an import that
    failed above the `def`, a syntax error): the reason the function does not exist."""
    for b in layout.blocks:
        if name in b.defines or (b.syntax_error and re.search(rf"^\s*def\s+{re.escape(name)}\s*\(", b.source, re.M)):
            cell = _cell_run(run, "public", b.at)
            if cell is not None and cell.status != "ok":
                return cell
    return None


def _error_hint(cell: CellRun | None, layout: Layout, run: RunResult) -> Text | None:
    """What to fix for a cell's error (a space in a name; a NameError caused by an earlier broken cell)."""
    if cell is None or cell.error is None:
        return None
    sources = diagnose.cell_sources(layout.blocks)
    return diagnose.error_hint(cell.error, sources.get(cell.error.cell or cell.cell, ""),
                               diagnose.broken_cells(run.cells, sources, cell.run))


def _cell_run(run: RunResult, label: str, at: tuple[int, int]) -> CellRun | None:
    cell, block = at
    return next((c for c in run.cells if c.run == label and c.cell == cell and c.block == block), None)


# --- functions ----------------------------------------------------------------------------------
def _function(item: Item, rubric: Rubric, layout: Layout, run: RunResult, ref: ReferenceSource) -> ItemResult:
    if item.name in layout.unfilled:
        return _result(item, "missing", 0.0, Text(f"函数 `{item.name}` 仍是未实现的模板", f"`{item.name}` is still the unfilled stub"))
    outcomes = {o.case_id: o for o in run.calls.get(item.id, ())}
    cases = ref.cases(item)
    if not outcomes or all(o.status == "missing" for o in outcomes.values()):
        broken = _defining_cell(layout, run, item.name)
        if broken is not None:
            return _result(item, "error", 0.0, _why_absent(item.name, broken, Text("没有被定义", "was never defined")),
                           hint=_error_hint(broken, layout, run))
        note = next((o.note for o in outcomes.values() if o.note), "")
        return _result(item, "missing", 0.0, Text(f"没有定义函数 `{item.name}`", f"`{item.name}` is not defined")
                       if not note or "not defined" in note else Text(note, note))
    checks, explanations, errors = [], [], 0
    candidates = {mk.id for mk in item.mistakes}      # the known mistakes that fit every failing case so far
    expecteds = {c.id: ref.expected(item, c) for c in cases}
    passed = passing([(c.id, outcomes[c.id].value, expecteds[c.id]) for c in cases
                      if c.id in outcomes and outcomes[c.id].status == "ok"], item)
    for case in cases:
        o = outcomes.get(case.id)
        expected = expecteds[case.id]
        show = case.public
        if o is None or o.status != "ok":
            errors += 1
            msg = _outcome_message(item, o)
            checks.append(CaseCheck(case_id=case.id, run=case.run, public=case.public, passed=False, message=msg,
                                    about=case.about, expected=expected if show else None,
                                    inputs=case.args if show else None, trivial=trivial(expected),
                                    error=o.error if o is not None else None))
            explanations.append([])
            candidates = set()        # an error is no known mistake: none can explain every failure
            continue
        m = passed.get(case.id) or compare(o.value, expected, item)
        why = []
        if not m.passed:
            # two mistakes can agree on one case (both causal variants give [[False]] for n = 1),
            # so the verdict looks for one that fits every failing case
            why = _fitting(item, o.value, case, ref, candidates) or _near(item, rubric, o.value, expected)
            candidates &= {w[0] for w in why}
            explanations.append(why)
        checks.append(CaseCheck(case_id=case.id, run=case.run, public=case.public, passed=m.passed, message=m.message,
                                about=case.about, mistake=why[0][0] if why else None, max_abs=m.max_abs, max_rel=m.max_rel,
                                where=m.where, n_diff=m.n_diff, expected=expected if show else None,
                                got=(o.value.plain() if o.value is not None else None) if show else None, inputs=case.args if show else None,
                                trivial=trivial(expected)))
    if errors == len(cases):
        first = next(c for c in checks)
        err = next((o.error for o in outcomes.values() if o.error is not None), None)
        src = diagnose.cell_sources(layout.blocks).get(err.cell, "") if err is not None else ""
        return _result(item, "error", 0.0, Text(f"`{item.name}` 在所有测试中都出错：", f"`{item.name}` failed on every case: ")
                       + first.message, hint=diagnose.error_hint(err, src), cases=checks)
    return _verdict(item, _diagnosed(item, checks, ref), explanations)


def _fitting(item: Item, value, case, ref: ReferenceSource, candidates: set) -> list[tuple]:
    """(id, credit, hint) of the known mistakes this failing value matches, in the rubric's order:
    all of them up to the first match (it labels the case), after that only those that fit every
    earlier failing case too. The others cannot be the verdict's common mistake, and testing them
    was most of the time a failing submission cost to score."""
    found = []
    for mk in item.mistakes:
        if found and mk.id not in candidates:
            continue
        if matches(value, ref.mistake(item, mk.id, case), item):
            found.append((mk.id, mk.credit, mk.hint))
    return found


def _outcome_message(item: Item, o) -> Text:
    if o is None:
        return Text("没有这个测试的结果", "no result for this case")
    if o.status == "limit":
        note = diagnose.note_text(o.note or "memory limit reached")
        return Text(f"超出限制：{note.zh}", f"limit reached: {note.en}")
    if o.status == "exit":
        note = diagnose.note_text(o.note)
        return Text(f"程序在此之前已退出：{note.zh}", f"not run: {note.en}")
    if o.status == "missing":
        return Text(o.note, o.note)
    e = o.error
    if e is None:
        return Text("运行出错", "raised an error")
    where = f" (cell {e.cell}, line {e.line}: `{e.source_line.strip()}`)" if e.line else ""
    return Text(f"抛出 {e.type}: {e.message}{where}", f"raised {e.type}: {e.message}{where}")


# --- the verdict ----------------------------------------------------------------------------------
def _verdict(item: Item, checks: list, explanations: list) -> ItemResult:
    failing = [c for c in checks if not c.passed]
    if not failing:
        return _result(item, "pass", 1.0, Text("全部测试通过", "all checks passed"), cases=checks)
    first = failing[0]
    where = _case_label(first)
    message = Text(f"{where.zh}：", f"{where.en}: ") + first.message
    # The explanation that fits every failing case, if there is one; the first in the rubric's order.
    common = [e for e in explanations[0] if all(any(x[0] == e[0] for x in other) for other in explanations[1:])] \
        if explanations and all(explanations) else []
    if common:
        mid, credit, hint = common[0]
        if mid == FOLLOWS and credit > 0:     # never a pass: the value is not the reference's
            message = Text("后续步骤给分：按你自己的上游结果计算是正确的；与参考答案相比，",
                           "follow-through: right from your own earlier values; against the reference, ") + message
        return _result(item, "partial" if credit > 0 else "fail", credit, message, hint=hint, cases=checks, mistake=mid)
    # No single known mistake explains every failure: fall back to a generic diagnosis (values from
    # public cases only) or a property the answer must have.
    hint = next((e[0][2] for e in explanations if e), None) or \
        next((c.diagnosis for c in checks if c.diagnosis is not None), None) or item.reminder
    passed = len(checks) - len(failing)
    summary = Text(f"{passed}/{len(checks)} 个测试通过。", f"{passed} of {len(checks)} checks passed. ")
    if item.partial != "proportional":
        return _result(item, "fail", 0.0, summary + message, hint=hint, cases=checks)
    earned, counted, why = proportional(checks)
    credit = item.case_credit * earned / counted if counted else 0.0
    return _result(item, "partial" if credit > 0 else "fail", credit, summary + why + message, hint=hint, cases=checks)


def proportional(checks: list[CaseCheck]) -> tuple[int, int, Text]:
    """(cases that earn credit, cases counted, why): partial credit is earned on hidden cases (the
    public ones are in the students' hands, answers included), and a trivial case (an empty,
    all-zero or all-one answer, which an answer ignoring its inputs passes) counts only
    alongside a passing non-trivial one. Without hidden cases (a student's check) the public
    ones are counted the same way."""
    counted = [c for c in checks if not c.public] or checks
    real = any(c.passed and not c.trivial for c in counted)
    earned = sum(1 for c in counted if c.passed and (real or not c.trivial))
    kind = ("隐藏", "hidden ") if any(not c.public for c in checks) else ("", "")
    if earned == 0 and any(c.passed for c in counted):
        return 0, len(counted), Text(
            f"通过的{kind[0]}测试答案都是空的、全 0 或全 1，只忽略输入也能通过，因此不给分。",
            f"the {kind[1]}checks passed all have an empty, all-zero or all-one answer, which an answer ignoring "
            f"its inputs passes too: no credit. ")
    return earned, len(counted), Text(f"部分分按{kind[0]}测试计：{earned}/{len(counted)}。",
                                      f"partial credit counts {kind[1]}checks: {earned} of {len(counted)}. ")


def _case_label(c: CaseCheck) -> Text:
    seed_zh = "公开种子" if c.public else "隐藏种子"
    seed_en = "public seed" if c.public else "a hidden seed"
    if c.about is not None and (c.about.en or c.about.zh):
        return Text(f"测试“{c.about.zh or c.about.en}”（{seed_zh}）", f"case “{c.about.en or c.about.zh}” ({seed_en})")
    return Text(seed_zh, seed_en)
