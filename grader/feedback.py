"""The per-student HTML feedback page: one self-contained file, rendered by an autoescaped jinja2
template from data prepared here (the template only loops and branches).

The fragments a page holds hundreds of (tensor tables, heatmap cells, drawn boxes, code lines,
rich-text messages) are built here as `Markup` instead, because a template tag per cell made
rendering the coordinator's main cost in a batch. Whatever text in them can come from a student
(names, messages, code, labels) goes through `escape`, as the template's autoescaping would; the
rest are numbers formatted here, which hold no markup characters. The rest of the data reaches the
template as `Fields` (attribute) objects, not dicts: jinja reads `x.y` with getattr first, which on
a dict raises and catches an AttributeError for every field read.

Visibility is decided per field here, not in the template: the student view gets public cases'
inputs, expected and got values and every hint; of hidden cases only that they failed. score.py
already drops hidden values from the result; this module also keeps hidden case *messages* (which
quote numbers) and hidden runs' output off the student page. The reference's code is never read.
"""
from __future__ import annotations

import datetime
import re
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace as Fields

import torch
from markupsafe import Markup, escape

from . import drawings
from .diagnose import note_text
from .model import CaseCheck, ErrorInfo, GradeResult, ItemResult, Text, value_parts
from .rubric import Output, Tolerance
from .templating import template

# Every fixed string of the page, in both languages; the template gets them as `page.t`.
T = {k: Text(zh, en) for k, (zh, en) in {
    "feedback": ("作业反馈", "Feedback"),
    "student": ("学生", "Student"), "file": ("文件", "File"), "score": ("得分", "Score"),
    "part": ("部分", "Part"), "points": ("分数", "Points"), "graded_in": ("评分用时", "Graded in"),
    "seconds_unit": ("秒", "s"), "generated": ("评分时间", "Graded"),
    "view_student": ("学生视图", "student view"), "view_instructor": ("教师视图（含全部信息）", "instructor view (everything)"),
    "what_broke": ("出错的地方", "What broke"),
    "cost": ("影响的题目", "What it cost"), "lost": ("失分", "points lost"),
    "notices": ("运行说明", "Notes on the run"), "hint": ("提示", "Hint"), "message": ("结果", "Result"),
    "cases_passed": ("通过的测试", "checks passed"),
    "hidden_cases": ("隐藏测试", "Hidden checks"),
    "hidden_summary": ("隐藏测试中有 {failed}/{total} 个未通过（隐藏测试的输入与答案不公开）。",
                       "{failed} of {total} hidden checks failed (their inputs and answers are not shown)."),
    "hidden_failed_msg": ("{passed}/{total} 个测试通过；未通过的是隐藏测试，具体数值不公开，请参考提示。",
                          "{passed} of {total} checks passed; the failing ones are hidden checks, whose values are not shown: see the hint."),
    "first_failing": ("第一个未通过的公开测试", "First failing public check"),
    "example": ("公开测试示例", "An example public check"),
    "inputs": ("输入", "Inputs"), "expected": ("正确结果", "Expected"), "got": ("你的结果", "Yours"),
    "differs": ("个元素不同（已标出）", "element(s) differ (marked)"),
    "slice": ("显示切片", "showing slice"),
    "heatmaps": ("热力图：你的 / 正确 / 差值", "Heatmaps: yours / reference / difference"),
    "yours": ("你的", "yours"), "reference": ("正确", "reference"), "difference": ("差值（你的 − 正确）", "difference (yours − reference)"),
    "kept_yours": ("你保留的框", "boxes you kept"), "kept_reference": ("应保留的框", "boxes that should be kept"),
    "two_sets": ("两组框（蓝 a / 橙 b）", "the two sets of boxes (blue a / orange b)"),
    "boxes": ("输入的框（灰）、正确结果（绿）、你的结果（红虚线）", "input boxes (grey), the reference's (green), yours (red, dashed)"),
    "sequence": ("随时间变化：实线为你的，虚线为正确结果（前几个分量）", "over time: yours solid, the reference dashed (the first components)"),
    "all_cases": ("全部测试", "All checks"), "public_cases": ("公开测试", "Public checks"),
    "code": ("你的代码", "Your code"), "cell": ("单元", "cell"),
    "todo_legend": ("黄色为 #todo 区域，红色为出错的行", "yellow: the #todo region; red: the line that raised"),
    "traceback": ("报错信息", "Traceback"),
    "written": ("书面回答", "Written answers"), "review": ("待教师评阅", "awaiting the instructor's review"),
    "no_answer": ("未找到该题的回答", "no answer found for this question"), "question": ("题目", "Question"),
    "environment": ("运行环境", "Environment"), "runs": ("各单元运行记录", "Cell runs"),
    "mistake": ("匹配的常见错误", "matched known mistake"),
    "load_error": ("无法读取提交：", "The submission could not be read: "),
    "limit_hit": ("触发了资源限制：", "A limit was reached: "),
    "no_sandbox": ("本次评分没有使用沙箱。", "This submission was graded without a sandbox."),
    "sandbox_note": ("沙箱：", "Sandbox: "),
    "seeds": ("公开种子 {public}，另有 {hidden} 个隐藏种子", "public seed {public}, plus {hidden} hidden seed(s)"),
    "where": ("第 {cell} 个单元第 {line} 行", "cell {cell}, line {line}"), "where_cell": ("第 {cell} 个单元", "cell {cell}"),
    "diagnosis": ("从这个测试看出", "What this check shows"),
}.items()}
STATUS = {k: Text(zh, en) for k, (zh, en) in {
    "pass": ("通过", "pass"), "partial": ("部分正确", "partial"), "fail": ("未通过", "fail"),
    "error": ("出错", "error"), "missing": ("未完成", "missing"), "manual": ("人工评阅", "manual review")}.items()}

MAX_TABLE = 100        # elements: larger tensors are summarised, not tabulated


def render_feedback(result: GradeResult, lang: str = "zh", view: str = "student", rubric=None) -> str:
    if view not in ("student", "instructor"):
        raise ValueError(f"view must be 'student' or 'instructor', not {view!r}")
    return template("feedback.html.j2").render(page=prepare(result, lang, view, rubric))


def write_feedback(result: GradeResult, path, lang: str = "zh", view: str = "student", rubric=None) -> None:
    Path(path).write_text(render_feedback(result, lang, view, rubric), encoding="utf-8")


# --- the page -------------------------------------------------------------------------------------
def prepare(result: GradeResult, lang: str, view: str, rubric=None) -> Fields:
    rubric = rubric or _load_rubric(result.rubric_path)
    ctx = _Context(result, lang, view == "instructor", rubric)
    items = [ctx.item(i) for i in result.items]
    parts = []
    for pid, title in ctx.parts():
        mine = [it for it in items if it.part == pid]
        if not mine:
            continue
        src = [i for i in result.items if i.part == pid]
        parts.append(Fields(id=pid, title=title, entries=[m for m in mine if not m.written],
                            written=[m for m in mine if m.written],
                            score=_pts(sum(i.points for i in src)), max=_pts(sum(i.max_points for i in src)),
                            code=ctx.code_for(src), open=any(i.status in ("error", "fail", "partial") for i in src)))
    env = result.environment or {}
    return Fields(
        lang=lang, view=view, instructor=ctx.instructor, t=_strings(lang),
        title=ctx.title, student=result.submission.student, path=Path(result.submission.path).name,
        format=result.submission.format, score=_pts(result.score), max=_pts(result.max_score),
        percent=round(100 * result.score / result.max_score) if result.max_score else 0,
        parts=parts, broke=ctx.what_broke(), notices=[_rich(n) for n in ctx.notices()],
        load_error=result.load_error(lang) if result.load_error else None,
        seconds=f"{env.get('seconds', 0) or 0:.1f}",
        # when it was graded, not drawn: a page drawn again from the stored record is the same page
        generated=env.get("graded_at") or datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        environment=ctx.environment(), runs=ctx.runs() if ctx.instructor else [],
    )


@lru_cache(maxsize=None)
def _strings(lang: str) -> Fields:
    """The page's fixed strings in one language (shared by every page: the template only reads them)."""
    return Fields(**{k: v(lang) for k, v in T.items()})


def _load_rubric(path: str):
    from .rubric import load_rubric
    try:
        return load_rubric(path)
    except Exception:      # the page still renders without titles: ids stand in for them
        return None


def _rich(s: str) -> Markup:
    """A message with its `code` spans set in <code>; the text itself escaped."""
    return Markup("".join(f"<code>{escape(part)}</code>" if k % 2 else escape(part)
                          for k, part in enumerate(re.split(r"`([^`\n]+)`", s)) if part))


def _nonempty(v) -> bool:
    return any(isinstance(x, torch.Tensor) and x.numel() > 0 for x in (v if isinstance(v, tuple) else (v,)))


def _pts(x: float) -> str:
    return f"{x:g}"


class _Context:
    """What every section needs: the result, the language, the view, and the student's code."""

    def __init__(self, result: GradeResult, lang: str, instructor: bool, rubric):
        self.r, self.lang, self.instructor, self.rubric = result, lang, instructor, rubric
        self.cells = {c.index: c.source for c in result.submission.cells if c.kind == "code"}
        self.title = rubric.title(lang) if rubric else result.assignment

    def tr(self, text: Text | None) -> str | None:
        return text(self.lang) if text is not None else None

    def rich(self, text: Text | None) -> Markup | None:
        return _rich(text(self.lang)) if text is not None else None

    def parts(self):
        if self.rubric:
            return [(p.id, p.title(self.lang)) for p in self.rubric.parts]
        seen = dict.fromkeys(i.part for i in self.r.items)
        return [(p, p) for p in seen]

    def rubric_item(self, item_id: str):
        try:
            return self.rubric.item(item_id) if self.rubric else None
        except KeyError:
            return None

    # -- items -------------------------------------------------------------------------------
    def item(self, i: ItemResult) -> Fields:
        ri = self.rubric_item(i.id)
        name = ri.name if ri and ri.name else i.id
        returns = ri.names if ri else (name,)
        written = ri.kind == "written" if ri else i.answer is not None
        failing = [c for c in i.cases if not c.passed]
        hidden = [c for c in i.cases if not c.public]
        out = Fields(id=i.id, name=name, part=i.part, title=ri.title(self.lang) if ri else i.id,
                     status=i.status, status_label=STATUS[i.status](self.lang) if i.status in STATUS else i.status,
                     points=_pts(i.points), max=_pts(i.max_points), message=_rich(self._message(i, failing)),
                     hint=self.rich(i.hint), mistake=i.mistake if self.instructor else None, written=written,
                     answer=i.answer, question=self.tr(ri.question) if ri and ri.question else None,
                     n_cases=len(i.cases), n_passed=len(i.cases) - len(failing),
                     hidden_note=T["hidden_summary"](self.lang).format(failed=sum(not c.passed for c in hidden), total=len(hidden))
                     if any(not c.passed for c in hidden) else "",
                     public=self._case_lines(i),
                     shown=None, example=None, error=_error_view(i.error, self.lang) if i.error else None)
        shown = next((c for c in failing if c.public and (c.expected is not None or c.got is not None)), None)
        if shown is not None:
            out.shown = self._case_detail(shown, name, returns, ri)
        elif i.status == "pass":     # a passing item still shows what a public case looks like, folded
            first = next((c for c in i.cases if c.public and _nonempty(c.expected)), None)
            out.example = self._case_detail(first, name, returns, ri) if first is not None else None
        return out

    def _message(self, i: ItemResult, failing: list[CaseCheck]) -> str:
        # The item's message quotes its first failing case; when that case is hidden its numbers
        # come from hidden inputs, so the student gets a count instead.
        if not self.instructor and failing and not failing[0].public:
            n = len(i.cases) - len(failing)
            return T["hidden_failed_msg"](self.lang).format(passed=n, total=len(i.cases))
        return i.message(self.lang)

    def _case_lines(self, i: ItemResult) -> list[Fields]:
        """The list of an item's checks: the instructor's for every item, the student's (public
        checks only) for items that did not pass."""
        if i.status == "pass" and not self.instructor:
            return []
        return [self._case_line(c) for c in i.cases if c.public or self.instructor]

    def _case_line(self, c: CaseCheck) -> Fields:
        return Fields(id=c.case_id, passed=c.passed, public=c.public, about=self.tr(c.about) or "",
                      message=_rich(c.message(self.lang)) if not c.passed else Markup(),
                      mistake=c.mistake if self.instructor else None)

    def _case_detail(self, c: CaseCheck, name: str, returns: tuple, ri) -> Fields:
        params = self._params(name)
        inputs = []
        for k, a in enumerate(c.inputs or ()):
            inputs.append(Fields(name=params[k] if k < len(params) else f"arg{k + 1}", **vars(_value(a))))
        outputs, boxes = [], []
        titles = {k: T[k](self.lang) for k in ("kept_yours", "kept_reference", "two_sets", "boxes")}
        for label, e, g in value_parts(c.expected, c.got, returns):
            top = label.split("[")[0]
            rule = ri.output(top) if ri and top in returns else Output(Tolerance())
            outputs.append(_compare_view(label, e, g, rule))
            if rule.draw == "boxes":
                boxes += drawings.box_panels(e, g, c.inputs, titles)
        # What this (public) case's values show, e.g. the student's own row sums: safe to quote here.
        return Fields(about=self.tr(c.about) or "", message=_rich(c.message(self.lang)), passed=c.passed,
                      diagnosis=self.rich(c.diagnosis), inputs=inputs, outputs=outputs, boxes=boxes,
                      sequence_note=T["sequence"](self.lang))

    def _params(self, name: str) -> tuple[str, ...]:
        """The student's own parameter names for a function item (from their code, not the reference's)."""
        return self.r.layout.signatures.get(name, ()) if self.r.layout else ()

    # -- the student's code ------------------------------------------------------------------
    def code_for(self, items) -> list[Fields]:
        """The cells holding a part's answers, with their #todo regions and error lines marked."""
        lay = self.r.layout
        if lay is None:
            return []
        cells: list[int] = []
        for i in items:
            ri = self.rubric_item(i.id)
            name = ri.name if ri and ri.name else i.id
            at = lay.checkpoints.get(name)
            found = [at[0]] if at else [b.cell for b in lay.blocks if name in b.defines]
            cells += [c for c in found if c not in cells]
        return [self._cell_view(c) for c in sorted(cells)]

    def _cell_view(self, cell: int) -> Fields:
        lay = self.r.layout
        src = self.cells.get(cell, "")
        todo = set()
        for blank in lay.blanks:
            if blank.cell == cell:
                end = max((b.last_line for b in lay.blocks if b.cell == cell and b.first_line <= blank.line <= b.last_line),
                          default=blank.line)
                todo.update(range(blank.line, end + 1))
        errors = {}
        public = [c.error for c in (self.r.run.cells if self.r.run else ()) if c.run == "public" and c.error]
        public += [c.error for i in self.r.items for c in i.cases if c.public and c.error]
        for e in public:
            if e.cell == cell and e.line:
                errors.setdefault(e.line, e)
        lines = "".join(_code_line(no, text, no in todo, errors.get(no)) for no, text in enumerate(src.split("\n"), 1))
        return Fields(cell=cell, lines=Markup(lines))

    # -- what broke, notices, environment ------------------------------------------------------
    def what_broke(self) -> list[Fields]:
        """Each root error of the public run, with the items it cost (errors that follow from it included)."""
        roots: dict[tuple, Fields] = {}
        for i in self.r.items:
            root = i.cause
            if i.status != "error" or root is None:
                continue
            ri = self.rubric_item(i.id)
            k = (root.cell, root.line, root.type, root.message)
            if k not in roots:      # the view and the hint once per root error, not once per item it cost
                roots[k] = Fields(error=_error_view(root, self.lang), cost=[], lost=0.0, hint=self.rich(i.cause_hint))
            entry = roots[k]
            entry.cost.append(ri.title(self.lang) + f" ({i.id})" if ri else i.id)
            entry.lost += i.max_points - i.points
        for e in roots.values():
            e.lost = _pts(e.lost)
        return list(roots.values())

    def notices(self) -> list[str]:
        out = []
        run, lang = self.r.run, self.lang
        if self.r.load_error:
            out.append(T["load_error"](lang) + self.r.load_error(lang))
        if run is not None:
            hit = next((c for c in run.cells if c.status == "limit"), None)
            if hit is not None:
                note = note_text(hit.note)
                out.append(T["limit_hit"](lang) + (f"{note.zh}（第 {hit.cell} 个单元）" if lang == "zh"
                                                   else f"{note.en} in cell {hit.cell}"))
            if run.sandbox == "none":
                out.append(T["no_sandbox"](lang))
            out += [T["sandbox_note"](lang) + n for n in run.notes]
        if self.r.layout:
            out += [t(lang) for t in self.r.layout.skipped]
        out += [t(lang) for t in self.r.submission.notes]
        return out

    def environment(self) -> list[tuple[str, str]]:
        env = dict(self.r.environment or {})
        seeds = env.pop("seeds", None) or {}
        rows = [(k, str(env[k])) for k in ("python", "torch", "numpy", "sandbox", "platform") if env.get(k)]
        if seeds:   # the student sees how many hidden seeds there were, never which
            rows.append(("seeds", T["seeds"](self.lang).format(public=seeds.get("public"), hidden=seeds.get("hidden"))))
        if self.instructor:
            rows += [("rubric", self.r.rubric_path), ("rubric sha256", str(env.get("rubric_sha256", ""))),
                     ("submission sha256", self.r.submission.sha256), ("file", self.r.submission.path)]
        return rows

    def runs(self) -> list[Fields]:
        if self.r.run is None:
            return []
        return [Fields(cell=c.cell, block=c.block, run=c.run, status=c.status, seconds=f"{c.seconds:.3f}", note=c.note,
                       stdout=(c.stdout or "")[-600:], error=f"{c.error.type}: {c.error.message}" if c.error else "")
                for c in self.r.run.cells]


# --- values ---------------------------------------------------------------------------------------
_num = drawings.num


def _summary(t: torch.Tensor) -> str:
    return f"tensor{tuple(t.shape)} {str(t.dtype).replace('torch.', '')}"


def _value(v) -> Fields:
    """A value as a table (small tensors), or a one-line summary."""
    if isinstance(v, torch.Tensor):
        return Fields(summary=_summary(v), table=_table(v) if 0 < v.numel() <= MAX_TABLE and v.dim() <= 2 else None)
    return Fields(summary=_num(v) if not isinstance(v, (tuple, list)) else repr(v), table=None)


def _matrix(t: torch.Tensor) -> list[list]:
    """A tensor of at most two dimensions as rows of Python numbers (one conversion, not one per element)."""
    return (t.reshape(1, -1) if t.dim() < 2 else t).tolist()


def _table(t: torch.Tensor, diff: torch.Tensor | None = None, cls: str = "") -> Markup:
    """A small tensor as an HTML table, the elements `diff` flags marked. Elements are numbers
    (_num of bool/int/float): nothing to escape."""
    flags = _matrix(diff) if diff is not None else None
    rows = []
    for r, row in enumerate(_matrix(t)):
        marks = flags[r] if flags is not None else (False,) * len(row)
        rows.append("<tr>" + "".join(f'<td class="diff">{_num(x)}</td>' if d else f"<td>{_num(x)}</td>"
                                     for x, d in zip(row, marks)) + "</tr>\n")
    return Markup(f'<div class="scroll"><table class="tensor {cls}">\n{"".join(rows)}</table></div>\n')


def _slice(e: torch.Tensor, g: torch.Tensor):
    """A 2-D view of two same-shaped tensors: the leading index where they differ most."""
    if e.dim() <= 2:
        return e, g, ""
    err = (e.double() - g.double()).abs().nan_to_num(nan=1e9, posinf=1e9)
    lead = [int(i) for i in (err == err.max()).nonzero()[0][:-2]] if err.numel() else [0] * (e.dim() - 2)
    idx = tuple(lead)
    return e[idx], g[idx], "[" + ", ".join(map(str, lead)) + ", :, :]"


def _compare_view(name: str, e, g, rule: Output) -> Fields:
    # Each value on its own only when they cannot be set side by side: the page shows one or the other.
    plot = drawings.sequence_plot(e, g) if rule.draw == "sequence" else None
    view = _paired(name, e, g, rule) or Fields(name=name, expected=_value(e) if e is not None else None,
                                               got=_value(g) if g is not None else None, table=None, heatmaps=None, slice="")
    view.plot = plot
    return view


def _paired(name: str, e, g, rule: Output) -> Fields | None:
    """Same-shaped tensors side by side (a 2-D slice beyond two dimensions), the elements outside
    the output's tolerance marked; heatmaps too where the rubric draws it so. None when they
    cannot be paired up."""
    if not (isinstance(e, torch.Tensor) and isinstance(g, torch.Tensor) and e.shape == g.shape and e.numel()):
        return None
    es, gs, label = _slice(e, g)
    if es.numel() > MAX_TABLE:
        return None
    if es.is_floating_point() or gs.is_floating_point():
        e64, g64 = es.double(), gs.double()
        diff = ~torch.isclose(g64, e64, rtol=rule.tolerance.rtol, atol=rule.tolerance.atol, equal_nan=True)
    else:
        diff = es.long() != gs.long()
    heat = rule.draw == "heatmap" and es.dim() == 2 and es.is_floating_point() and gs.is_floating_point()
    table = Fields(expected=_table(es, None, "expected"), got=_table(gs, diff, "got"), n_diff=int(diff.sum()))
    return Fields(name=name, expected=None, got=None, table=table, heatmaps=drawings.heatmaps(e64, g64) if heat else None, slice=label)


def _caret(e: ErrorInfo) -> str | None:
    """The `^` under a SyntaxError's column."""
    return " " * max((e.caret or 1) - 1, 0) + "^" if e.caret else None


def _code_line(no: int, text: str, todo: bool, e: ErrorInfo | None) -> str:
    """One line of the student's code: its #todo and error marks, the error's caret and message."""
    out = [f'<div class="ln{" todo" if todo else ""}{" err" if e else ""}"><span class="no">{no}</span>'
           f'<span class="tx">{escape(text)}</span>']
    if e is not None:
        if e.caret:
            out.append(f'<span class="no"></span><span class="tx caret">{_caret(e)}</span>')
        out.append(f'<span class="note">↑ {escape(f"{e.type}: {e.message}")}</span>')
    out.append("</div>")
    return "".join(out)


def _error_view(e: ErrorInfo, lang: str) -> Fields:
    where = T["where"](lang).format(cell=e.cell, line=e.line) if e.line else (T["where_cell"](lang).format(cell=e.cell) if e.cell else "")
    return Fields(type=e.type, message=e.message, where=where, source_line=e.source_line, caret=_caret(e),
                  traceback=e.traceback.strip() if e.traceback else "")
