"""Stage 5: turn the run and the comparisons into per-item results with points, by the rubric.

An item passes only if every case passes under every seed (public and hidden), so a value
hard-coded from the public run fails. When it does not pass, the first explanation that fits
every failing case decides the credit: a known mistake of the rubric; for script variables, a
right computation on inputs that differ from the seeded ones, or on the student's own (wrong)
upstream values; otherwise the rubric's proportional credit, if any.
"""
from __future__ import annotations

import re

from . import diagnose
from .compare import compare, matches, passing
from .expected import Reference
from .model import CaseCheck, CellRun, ItemResult, Layout, RunResult, Text, Value
from .rubric import Item, Rubric

ABSENT = Value(kind="absent")


def score_items(rubric: Rubric, layout: Layout, run: RunResult, ref: Reference) -> tuple[ItemResult, ...]:
    out = []
    written = {w.item: w for w in layout.written}
    for item in rubric.items:
        if item.kind == "written":
            out.append(_written(item, written.get(item.id)))
        elif item.kind == "variable":
            out.append(_variable(item, rubric, layout, run, ref))
        else:
            out.append(_function(item, layout, run, ref))
    return tuple(out)


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
def _variable(item: Item, rubric: Rubric, layout: Layout, run: RunResult, ref: Reference) -> ItemResult:
    name = item.name
    if name in layout.unfilled:
        return _result(item, "missing", 0.0, Text(f"`{name}` 的 #todo 留空未填", f"the #todo for `{name}` was left blank"))
    key = layout.checkpoints.get(name)
    if key is None:
        return _result(item, "missing", 0.0, Text(f"没有找到给 `{name}` 赋值的代码", f"no code assigns `{name}`"))
    checks, explanations = [], []
    for label, seed in rubric.runs:
        got = run.captures.get((label, name), ABSENT)
        expected = ref.script_expected(seed)[name]
        public = label == "public"
        if got.kind == "absent":
            cell = _cell_run(run, label, key)
            return _result(item, "error", 0.0, _why_absent(name, cell), hint=_error_hint(cell, layout, run),
                           cases=tuple(checks))
        m = compare(got, expected, item)
        why = [] if m.passed else _explain_variable(item, rubric, run, ref, label, seed, got)
        checks.append(CaseCheck(case_id=label, run=label, public=public, passed=m.passed, message=m.message,
                                mistake=why[0][0] if why else None, max_abs=m.max_abs, max_rel=m.max_rel, where=m.where,
                                n_diff=m.n_diff, expected=expected if public else None, got=got.tensor if public else None))
        if not m.passed:
            explanations.append(why)
    return _verdict(item, checks, explanations)


def _explain_variable(item, rubric, run, ref, label, seed, got) -> list[tuple]:
    """Every (id, credit, hint) that fits this seed's value, most specific first: the rubric's known
    mistakes, then a right computation on changed inputs, then on the student's own upstream values."""
    found = [(m.id, m.credit, m.hint) for m in item.mistakes
             if matches(got, ref.script_mistake(item, m.id, seed), item)]
    if found:
        return found
    script = rubric.script
    student_inputs = {n: run.captures.get((label, n), ABSENT) for n in script.capture}
    if all(v.kind == "tensor" for v in student_inputs.values()):
        try:
            theirs = ref.resolve(script.expected)({n: v.tensor for n, v in student_inputs.items()})[item.name]
        except Exception:
            theirs = None
        if matches(got, theirs, item):
            canonical = ref.script_inputs(seed)
            changed = [n for n, v in student_inputs.items()
                       if not (v.tensor.shape == canonical[n].shape and bool((v.tensor.double() - canonical[n].double()).abs().max() <= 1e-6))]
            locked = [n for n in changed if n in script.locked_inputs]
            credit = 0.0 if locked else script.changed_inputs_credit
            names = ", ".join(f"`{n}`" for n in changed)
            return [("changed-inputs", credit, Text(
                f"计算方法正确，但输入与给定的不同（{names}）：" + ("`X` 被修改了，这一项不得分。" if locked else
                "可能多调用了随机数、调整了单元顺序或自行设置了随机种子；请按原顺序运行，不要重新设置种子。"),
                f"the computation is right, but the inputs differ from the seeded ones ({names}): " +
                ("`X` itself was changed, which earns nothing." if locked else
                 "randomness consumed in another order, an extra cell, or a seed of your own; run the cells in the given order without reseeding.")))]
    if item.follows:
        upstream = {n: v.tensor for (l, n), v in run.captures.items() if l == label and v.kind == "tensor"}
        try:
            own = ref.resolve(item.follows)(upstream)
        except Exception:
            own = None
        if matches(got, own, item):
            return [("follows-upstream", script.follow_through_credit, Text(
                f"按你自己的上游结果计算，`{item.name}` 这一步是对的；错误出在前面的步骤。",
                f"`{item.name}` is computed correctly from your own earlier values; the error is in an earlier step."))]
    return []


def _why_absent(name: str, cell: CellRun | None, never: Text = Text("没有得到值", "was never computed")) -> Text:
    if cell is not None and cell.error is not None:
        e = cell.error
        where = f"cell {e.cell or cell.cell}, line {e.line}" if e.line else f"cell {cell.cell}"
        zwhere = f"第 {e.cell or cell.cell} 个单元第 {e.line} 行" if e.line else f"第 {cell.cell} 个单元"
        src = f": `{e.source_line.strip()}`" if e.source_line.strip() else ""
        return Text(f"`{name}` {never.zh}：{zwhere}出错{src}（{e.type}: {e.message}）",
                    f"`{name}` {never.en}: {where} raised {e.type}{src} ({e.message})")
    if cell is not None and cell.status in ("limit", "exit"):
        return Text(f"`{name}` {never.zh}：第 {cell.cell} 个单元{cell.note}", f"`{name}` {never.en}: cell {cell.cell}: {cell.note}")
    return Text(f"`{name}` {never.zh}（所在单元未运行完）", f"`{name}` {never.en} (its cell did not finish)")


def _defining_cell(layout: Layout, run: RunResult, name: str) -> CellRun | None:
    """The public run of a cell that defines function `name` but did not finish (an import that
    failed above the `def`, a syntax error): the reason the function does not exist."""
    for b in layout.blocks:
        if name in b.defines or (b.syntax_error and re.search(rf"^\s*def\s+{re.escape(name)}\s*\(", b.source, re.M)):
            cell = _cell_run(run, "public", b.key)
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


def _cell_run(run: RunResult, label: str, key: str) -> CellRun | None:
    cell, block = (int(x) for x in key.split("."))
    return next((c for c in run.cells if c.run == label and c.cell == cell and c.block == block), None)


# --- functions ----------------------------------------------------------------------------------
def _function(item: Item, layout: Layout, run: RunResult, ref: Reference) -> ItemResult:
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
                                    inputs=case.args if show else None))
            explanations.append([])
            candidates = set()        # an error is no known mistake: none can explain every failure
            continue
        m = passed.get(case.id) or compare(o.value, expected, item)
        why = []
        if not m.passed:
            # two mistakes can agree on one case (both causal variants give [[False]] for n = 1),
            # so the verdict looks for one that fits every failing case
            why = _fitting(item, o.value, case, ref, candidates)
            candidates &= {w[0] for w in why}
            explanations.append(why)
        checks.append(CaseCheck(case_id=case.id, run=case.run, public=case.public, passed=m.passed, message=m.message,
                                about=case.about, mistake=why[0][0] if why else None, max_abs=m.max_abs, max_rel=m.max_rel,
                                where=m.where, n_diff=m.n_diff, expected=expected if show else None,
                                got=_plain(o.value) if show else None, inputs=case.args if show else None))
    if errors == len(cases):
        first = next(c for c in checks)
        err = next((o.error for o in outcomes.values() if o.error is not None), None)
        src = diagnose.cell_sources(layout.blocks).get(err.cell, "") if err is not None else ""
        return _result(item, "error", 0.0, Text(f"`{item.name}` 在所有测试中都出错：", f"`{item.name}` failed on every case: ")
                       + first.message, hint=diagnose.error_hint(err, src), cases=checks)
    return _verdict(item, checks, explanations)


def _fitting(item: Item, value, case, ref: Reference, candidates: set) -> list[tuple]:
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
        return Text(f"超出限制：{o.note or '内存'}", f"limit reached: {o.note or 'memory'}")
    if o.status == "missing":
        return Text(o.note, o.note)
    e = o.error
    if e is None:
        return Text("运行出错", "raised an error")
    where = f" (cell {e.cell}, line {e.line}: `{e.source_line.strip()}`)" if e.line else ""
    return Text(f"抛出 {e.type}: {e.message}{where}", f"raised {e.type}: {e.message}{where}")


def _plain(v: Value):
    if v is None:
        return None
    if v.kind == "tensor":
        return v.tensor
    if v.kind == "tuple":
        return tuple(_plain(i) for i in v.items)
    return v.number if v.kind in ("number", "bool") else v.describe()


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
        if credit >= 1.0:      # e.g. right given the student's own earlier values: say that, not the numbers
            return _result(item, "pass", credit, Text("按你自己的上游结果计算是正确的；与参考答案相比，", "computed correctly from your own earlier values; against the reference, ")
                           + message, hint=hint, cases=checks, mistake=mid)
        return _result(item, "partial" if credit > 0 else "fail", credit, message, hint=hint, cases=checks, mistake=mid)
    # No single known mistake explains every failure: fall back to a generic diagnosis (values from
    # public cases only) or a property the answer must have.
    hint = next((e[0][2] for e in explanations if e), None) or diagnose.generic_hint(item.name, item.returns, checks)
    passed = len(checks) - len(failing)
    credit = item.case_credit * passed / len(checks) if item.partial == "proportional" else 0.0
    summary = Text(f"{passed}/{len(checks)} 个测试通过。", f"{passed} of {len(checks)} checks passed. ")
    return _result(item, "partial" if credit > 0 else "fail", credit, summary + message, hint=hint, cases=checks)


def _case_label(c: CaseCheck) -> Text:
    seed_zh = "公开种子" if c.public else "隐藏种子"
    seed_en = "public seed" if c.public else "a hidden seed"
    if c.about is not None and (c.about.en or c.about.zh):
        return Text(f"测试“{c.about.zh or c.about.en}”（{seed_zh}）", f"case “{c.about.en or c.about.zh}” ({seed_en})")
    return Text(seed_zh, seed_en)
