"""Generic diagnosis: why a tensor differs from the expected one, when no known mistake of the
rubric explains it; and hints for errors (a SyntaxError from a space inside a name, a NameError
that follows from an earlier broken cell).

Pure functions on tensors and `ErrorInfo`s, each returning a bilingual `Text` or None. None of them
puts a reference value into a hint unless `reveal=True` (public cases only): a factor, a shape, an
index or the student's own row sums are fine; an expected number never is.
"""
from __future__ import annotations

import difflib
import io
import keyword
import math
import re
import tokenize
from typing import Iterable, Sequence

import torch

from .model import CaseCheck, ErrorInfo, Text, value_parts

RTOL, ATOL = 1e-4, 1e-5


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = RTOL, atol: float = ATOL) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol, equal_nan=False))


def _fmt(xs: Iterable[float], limit: int = 6) -> str:
    xs = list(xs)
    s = ", ".join(f"{x:.3g}" for x in xs[:limit])
    return s + (", …" if len(xs) > limit else "")


# --- value diagnoses ------------------------------------------------------------------------------
def nonfinite(got: torch.Tensor) -> Text | None:
    """NaN/Inf in the student's value, and where the first one is."""
    if not got.is_floating_point():
        return None
    bad = ~torch.isfinite(got)
    if not bad.any():
        return None
    where = [int(i) for i in bad.nonzero()[0]]
    kind = "NaN" if bool(got[tuple(where)].isnan()) else "Inf"
    n = int(bad.sum())
    return Text(f"结果中有 {n} 个 NaN/Inf，第一个（{kind}）在 {where}：检查除以 0、log(0)、整行都被屏蔽的 softmax，或 -inf 参与了乘法。",
                f"the result has {n} NaN/Inf value(s), the first ({kind}) at {where}: look for a division by 0, log(0), "
                f"a softmax over a fully masked row, or -inf multiplied by something.")


def transposed(expected: torch.Tensor, got: torch.Tensor) -> Text | None:
    """The student's value is the expected one with its last two dims swapped."""
    if expected.dim() < 2 or _close(got, expected):    # a symmetric value is its own transpose
        return None
    if _close(got, expected.transpose(-2, -1)):
        return Text("你的结果正好是正确结果的转置（最后两维互换）：检查矩阵乘法的顺序（如 B @ A.T 与 A @ B.T）或多余的 .T。",
                    "your value is exactly the transpose of the right one (last two dims swapped): check the order of a "
                    "matrix product (B @ A.T vs A @ B.T) or a stray .T.")
    return None


def _factor_name(r: float, dims: Sequence[int]) -> tuple[str, str] | None:
    """Name a ratio got/expected: sqrt(d), d, 2, or their inverses; (zh, en) reasons."""
    for d in sorted(set(x for x in dims if x > 1)):
        if math.isclose(r, math.sqrt(d), rel_tol=1e-3):
            return (f"sqrt(d) = {math.sqrt(d):g}（d = {d}）倍：可能漏了除以 sqrt(d) 的缩放",
                    f"sqrt(d) = {math.sqrt(d):g} times (d = {d}): the 1/sqrt(d) scaling seems to be missing")
        if math.isclose(r, 1 / math.sqrt(d), rel_tol=1e-3):
            return (f"1/sqrt(d) = 1/{math.sqrt(d):g}（d = {d}）倍：可能多除了一次 sqrt(d)，或用 d 代替了 sqrt(d)",
                    f"1/sqrt(d) = 1/{math.sqrt(d):g} times (d = {d}): divided by sqrt(d) once too often, or by d instead of sqrt(d)")
        if math.isclose(r, d, rel_tol=1e-3):
            return (f"d = {d} 倍", f"d = {d} times")
        if math.isclose(r, 1 / d, rel_tol=1e-3):
            return (f"1/d = 1/{d} 倍：可能除以了 d", f"1/d = 1/{d} times: divided by d")
    for k, zh, en in ((2.0, "2 倍", "2 times"), (0.5, "1/2 倍", "1/2 times"), (-1.0, "-1 倍：符号反了", "-1 times: the sign is flipped")):
        if math.isclose(r, k, rel_tol=1e-3):
            return (zh, en)
    return None


def scaled(expected: torch.Tensor, got: torch.Tensor, dims: Sequence[int] = ()) -> Text | None:
    """got == r * expected for one constant r != 1; name r when it is sqrt(d), d, 2 (or inverses)."""
    if got.shape != expected.shape or not expected.is_floating_point() or not got.is_floating_point():
        return None
    e, g = expected.double().flatten(), got.double().flatten()
    ok = torch.isfinite(e) & torch.isfinite(g)
    e, g = e[ok], g[ok]
    if int((e.abs() > 1e-9).sum()) < 2:     # one number is always "some factor" of another
        return None
    r = float((g * e).sum() / (e * e).sum())        # least-squares ratio
    if math.isclose(r, 1.0, rel_tol=1e-3) or abs(r) < 1e-9 or not _close(g, r * e, rtol=1e-3, atol=1e-5):
        return None
    named = _factor_name(r, dims)
    if named:
        return Text(f"你的结果恰好是正确结果的 {named[0]}。", f"your values are exactly {named[1]} the right ones.")
    return Text(f"你的结果恰好是正确结果的 {r:.4g} 倍：检查缩放因子。",
                f"your values are exactly {r:.4g} times the right ones: check a scaling factor.")


def reshaped(expected: torch.Tensor, got: torch.Tensor) -> Text | None:
    """The right values in another shape: a missing/extra batch dim, or a reshape/view."""
    es, gs = tuple(expected.shape), tuple(got.shape)
    if es == gs:
        return None
    if gs == (1,) + es and _close(got[0], expected):
        return Text(f"值是对的，但多了一个大小为 1 的批次维：形状应为 {es}，你的是 {gs}（去掉 unsqueeze 或用 squeeze(0)）。",
                    f"the values are right but there is an extra batch dim of size 1: the shape should be {es}, yours is {gs} "
                    "(drop the unsqueeze, or squeeze(0)).")
    if es == (1,) + gs and _close(got, expected[0]):
        return Text(f"值是对的，但少了批次维：形状应为 {es}，你的是 {gs}。",
                    f"the values are right but the batch dim is missing: the shape should be {es}, yours is {gs}.")
    if len(es) >= 1 and gs == es[1:] and _close(got, expected[0]):
        return Text(f"只返回了批次中的第一个元素：形状应为 {es}，你的是 {gs}；对整个批次计算（用 ... 或 transpose(-2, -1)）。",
                    f"only the first element of the batch came back: the shape should be {es}, yours is {gs}; compute over "
                    "the whole batch (use ... or transpose(-2, -1)).")
    if got.numel() == expected.numel() and got.numel() > 0:
        if _close(got.flatten(), expected.flatten()):
            return Text(f"值与顺序都对，只是形状不同：应为 {es}，你的是 {gs}（reshape/view 到正确的形状）。",
                        f"the right values in the right order, but in another shape: {gs} instead of {es} (reshape/view it).")
        if expected.is_floating_point() and got.is_floating_point() and _close(got.flatten().sort().values, expected.flatten().sort().values):
            return Text(f"值都对，但排列不同、形状为 {gs} 而非 {es}：可能用了 reshape/view，而需要的是 transpose/permute。",
                        f"the right values, arranged differently in shape {gs} instead of {es}: a reshape/view where a "
                        "transpose/permute was needed?")
    return None


def broadcast(expected: torch.Tensor, got: torch.Tensor) -> Text | None:
    """A shape that only broadcasting could produce: e.g. (N,) combined with (N, 1) gives (N, N)."""
    es, gs = tuple(expected.shape), tuple(got.shape)
    if es == gs or got.numel() <= expected.numel():
        return None
    import numpy    # torch.broadcast_shapes imports sympy on its first call: half a second of a batch
    try:
        if tuple(numpy.broadcast_shapes(es, gs)) != gs:
            return None
    except ValueError:
        return None
    return Text(f"形状为 {gs}，比应有的 {es} 大：这是广播出来的形状，某个运算的两个操作数维度没有对齐（如 (N,) 与 (N, 1) 相加得到 (N, N)）。",
                f"the shape {gs} is larger than the expected {es}: broadcasting produced it, two operands were not aligned "
                f"(e.g. (N,) combined with (N, 1) gives (N, N)).")


def rows_sum(got: torch.Tensor, name: str, reveal: bool = True) -> Text | None:
    """Each row (the last dim) of a distribution-valued output (the rubric's `rows_sum_to_one`)
    must sum to 1; say over which dim it does."""
    if not got.is_floating_point() or got.dim() < 1 or got.numel() == 0 or not torch.isfinite(got).all():
        return None
    sums = got.double().sum(dim=-1)
    if torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
        return None
    yours = f"，你的行和为 {_fmt(sums.flatten().tolist())}" if reveal else ""
    yours_en = f", yours sum to {_fmt(sums.flatten().tolist())}" if reveal else ""
    if got.dim() >= 2:
        cols = got.double().sum(dim=-2)
        if torch.allclose(cols, torch.ones_like(cols), atol=1e-4):
            dim = "0" if got.dim() == 2 else "-2"
            return Text(f"softmax 取在了第 {dim} 维：`{name}` 的每一行（沿最后一维）之和应为 1{yours}；应使用 dim=-1。",
                        f"softmax was taken over dim {dim}: each row of `{name}` (along the last dim) must sum to 1{yours_en}; use dim=-1.")
    return Text(f"`{name}` 的每一行之和应为 1{yours}：检查 softmax 及其维度。",
                f"each row of `{name}` must sum to 1{yours_en}: check the softmax and its dim.")


def reordered(expected: torch.Tensor, got: torch.Tensor) -> Text | None:
    """Indices right but in another order (NMS returns them in decreasing score)."""
    if expected.dim() != 1 or got.dim() != 1 or expected.shape != got.shape or expected.is_floating_point():
        return None
    if torch.equal(got.long(), expected.long()) or not torch.equal(got.long().sort().values, expected.long().sort().values):
        return None
    return Text("下标是对的，但顺序不同：请按题目要求的顺序返回。",
                "the right indices, in another order: return them in the order the task asks for.")


def tensor_hint(expected, got, name: str = "", dims: Sequence[int] = (), reveal: bool = True,
                rows_sum_to_one: bool = False) -> Text | None:
    """The first generic explanation that fits, most specific first."""
    if not isinstance(expected, torch.Tensor) or not isinstance(got, torch.Tensor):
        return None
    for check in (lambda: nonfinite(got), lambda: transposed(expected, got), lambda: reordered(expected, got),
                  lambda: reshaped(expected, got), lambda: broadcast(expected, got),
                  lambda: rows_sum(got, name, reveal) if rows_sum_to_one else None,
                  lambda: scaled(expected, got, dims)):
        hint = check()
        if hint is not None:
            return hint
    return None


# --- what score.py asks for -----------------------------------------------------------------------
def _dims(inputs) -> list[int]:
    out = []
    for a in inputs or ():
        if isinstance(a, torch.Tensor) and a.dim() >= 1:
            out.append(int(a.shape[-1]))
    return out


def case_hint(item, check: CaseCheck, hook=None) -> Text | None:
    """A hint from one failing public case's expected and got values and inputs: the assignment's
    own (`hook`, the rubric's `hints`: (args, got) -> {zh, en} | None) first, then the generic
    ones: outputs of a tuple returned in another order, and per output tensor NaN, a transpose,
    another order, a reshape, broadcasting, rows that must sum to 1, a scale factor."""
    if check.expected is None or check.got is None:
        return None
    if hook is not None:
        try:
            said = hook(tuple(check.inputs or ()), check.got)
        except Exception:          # an assignment's hint that fails on a value it did not expect says nothing
            said = None
        if isinstance(said, dict) and isinstance(said.get("zh"), str) and isinstance(said.get("en"), str):
            return Text(said["zh"], said["en"])
    names = item.names
    hint = swapped(names, check.expected, check.got)
    if hint is not None:
        return hint
    inputs = check.inputs or ()
    for label, e, g in value_parts(check.expected, check.got, names):
        if not isinstance(e, torch.Tensor) or not isinstance(g, torch.Tensor):
            continue
        if _close(g, e) if g.shape == e.shape and g.dtype == e.dtype else False:
            continue
        top = label.split("[")[0]
        hint = tensor_hint(e, g, label, _dims(inputs) + list(e.shape),
                           rows_sum_to_one=item.output(top).rows_sum_to_one if top in names else False)
        if hint is not None:
            return hint
    return None


def swapped(names: Sequence[str], expected, got) -> Text | None:
    """A tuple's outputs returned in another order (`(c, h)` for `(h, c)`): each of the student's
    parts equals another part of the expected value."""
    if not (isinstance(expected, (tuple, list)) and isinstance(got, (tuple, list)) and len(expected) == len(got) > 1):
        return None
    labels = list(names) if len(names) == len(expected) else [f"[{i}]" for i in range(len(expected))]

    def same(a, b):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and _close(a, b)
    order = []
    for g in got:
        match = [j for j, e in enumerate(expected) if same(g, e)]
        if len(match) != 1:
            return None
        order.append(match[0])
    if sorted(order) != list(range(len(expected))) or order == list(range(len(expected))):
        return None
    yours = ", ".join(labels[j] for j in order)
    want = ", ".join(labels)
    return Text(f"返回值的顺序不对：你返回的是 ({yours})，应为 ({want})。每一项本身都是对的，只需调换顺序。",
                f"the returned values are in another order: you return ({yours}), the order is ({want}). Each one is "
                f"right; swap them.")


# --- errors ---------------------------------------------------------------------------------------
def _name_pairs(line: str) -> list[tuple[str, str]]:
    """Two identifiers separated only by spaces (`learning rate`), outside strings and comments."""
    try:
        toks = [t for t in tokenize.generate_tokens(io.StringIO(line + "\n").readline)
                if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []
    pairs = []
    for a, b in zip(toks, toks[1:]):
        if a.type == b.type == tokenize.NAME and not keyword.iskeyword(a.string) and not keyword.iskeyword(b.string) \
                and a.end[1] < b.start[1] and line[a.end[1]:b.start[1]].strip() == "":
            pairs.append((a.string, b.string))
    return pairs


def syntax_hint(error: ErrorInfo, cell_source: str = "") -> Text | None:
    """`learning rate = ...`: a space inside a name. Names the fix and the other lines with the same slip."""
    if error is None or error.type != "SyntaxError":
        return None
    pairs = _name_pairs(error.source_line or "")
    if not pairs:
        return None
    a, b = pairs[0]
    others = []
    for no, line in enumerate(cell_source.splitlines(), 1):
        if no != error.line and _name_pairs(line):
            others.append(no)
    more_zh = f"第 {', '.join(map(str, others))} 行也有同样的问题（{'、'.join(f'`{x} {y}`' for n in others for x, y in _name_pairs(cell_source.splitlines()[n - 1]))}）。" if others else ""
    more_en = f" Lines {', '.join(map(str, others))} have the same slip ({', '.join(f'`{x} {y}`' for n in others for x, y in _name_pairs(cell_source.splitlines()[n - 1]))})." if others else ""
    return Text(f"你是想写 `{a}_{b}` 吗？变量名中不能有空格，`{a} {b}` 会被读成两个名字。{more_zh}",
                f"did you mean `{a}_{b}`? names cannot contain spaces: `{a} {b}` reads as two names.{more_en}")


def _undefined(error: ErrorInfo) -> str | None:
    m = re.match(r"name '(\w+)' is not defined", error.message or "")
    return m.group(1) if m and error.type == "NameError" else None


def cause(error: ErrorInfo, broken: Sequence[tuple[ErrorInfo, str]]) -> ErrorInfo | None:
    """For a NameError, the earlier error that kept the name from being defined: a cell whose broken
    line would have defined it (`learning rate = ...` defines `learning_rate`), or whose code assigns it."""
    name = _undefined(error) if error else None
    if name is None:
        return None
    here = (error.cell or 0, error.line or 0)
    for earlier, source in broken:
        if (earlier.cell or 0, earlier.line or 0) >= here:     # only an error before this one can cause it
            continue
        fixes = {f"{a}_{b}" for a, b in _name_pairs(earlier.source_line or "")}
        if name in fixes or re.search(rf"^\s*{re.escape(name)}\s*=(?!=)", source or "", re.M):
            return earlier
    return None


def root_cause(error: ErrorInfo, broken: Sequence[tuple[ErrorInfo, str]]) -> ErrorInfo:
    """Follow `cause` back to the first error of the chain (the one to fix)."""
    seen = set()
    while (c := cause(error, broken)) is not None and id(c) not in seen:
        seen.add(id(c))
        error = c
    return error


def name_hint(error: ErrorInfo, known: Iterable[str] = (), broken: Sequence[tuple[ErrorInfo, str]] = ()) -> Text | None:
    """A NameError: a name an earlier broken cell would have defined, or a near-miss of a known name."""
    name = _undefined(error) if error else None
    if name is None:
        return None
    earlier = cause(error, broken)
    if earlier is not None:
        where_en = f"cell {earlier.cell}, line {earlier.line}" if earlier.line else f"cell {earlier.cell}"
        where_zh = f"第 {earlier.cell} 个单元第 {earlier.line} 行" if earlier.line else f"第 {earlier.cell} 个单元"
        return Text(f"`{name}` 没有定义，是因为前面{where_zh}出错（{earlier.type}），定义它的代码没有运行：先修好那一处。",
                    f"`{name}` is undefined because an earlier error ({earlier.type}, {where_en}) stopped the code that "
                    f"defines it: fix that one first.")
    close = difflib.get_close_matches(name, [k for k in known if k != name], n=1, cutoff=0.7)
    if close:
        return Text(f"`{name}` 没有定义：你是想写 `{close[0]}` 吗？", f"`{name}` is not defined: did you mean `{close[0]}`?")
    return None


def cell_sources(blocks) -> dict[int, str]:
    """Each cell's code, put back together from its blocks (each keeps the cell's line numbers)."""
    lines: dict[int, list[str]] = {}
    for b in blocks:
        mine = b.source.split("\n")
        have = lines.setdefault(b.cell, [""] * len(mine))
        have.extend([""] * (len(mine) - len(have)))
        for i, line in enumerate(mine):
            if line.strip() and not have[i].strip():
                have[i] = line
    return {c: "\n".join(ls) for c, ls in lines.items()}


def broken_cells(cells, sources: dict[int, str], run: str = "public") -> list[tuple[ErrorInfo, str]]:
    """The errors of one run, in order, each with its cell's code."""
    return [(c.error, sources.get(c.cell, "")) for c in cells if c.run == run and c.error is not None]


def identifiers(source: str) -> set[str]:
    return set(re.findall(r"\b[A-Za-z_]\w*\b", source or ""))


def error_hint(error: ErrorInfo | None, cell_source: str = "", broken: Sequence[tuple[ErrorInfo, str]] = ()) -> Text | None:
    """The hint for a run-time or parse error in the student's code, or None."""
    if error is None:
        return None
    return syntax_hint(error, cell_source) or name_hint(error, identifiers(cell_source), broken) or import_hint(error)


def import_hint(error: ErrorInfo) -> Text | None:
    """A module the grader's environment does not have (torchvision is the usual one)."""
    m = re.match(r"No module named '([\w.]+)'", error.message or "")
    if error.type not in ("ModuleNotFoundError", "ImportError") or m is None:
        return None
    mod = m.group(1).split(".")[0]
    return Text(f"评分环境中没有 `{mod}`（只有 torch 和 numpy）：请只用 torch 实现，不要依赖 `{mod}`。",
                f"`{mod}` is not available where your code is graded (torch and numpy are): implement this "
                f"with torch only, without `{mod}`.")


# The runtime reports why a step stopped in English (it is the same text in logs); a student's
# page shows it in their language. Unknown notes are shown as they are in both.
_NOTES = [
    (r"time limit of (\S+) s reached", "超过了 {0} 秒的时间限制"),
    (r"CPU time limit reached", "超过了 CPU 时间限制"),
    (r"killed \(SIGKILL; most likely the memory limit\)", "进程被强制结束（多半是超过了内存限制）"),
    (r"memory limit reached", "超过了内存限制"),
    (r"file size limit reached", "写入的文件超过了大小限制"),
    (r"crashed \(segmentation fault\)", "进程崩溃（段错误）"),
    (r"aborted", "进程中止（abort）"),
    (r"killed by signal (\w+)", "进程被信号 {0} 结束"),
    (r"the process exited \(exit code (-?\d+)\) before the step finished", "这一步完成之前进程就退出了（退出码 {0}）"),
    (r"no record of this cell: the run ended before it", "没有这个单元的记录：运行在它之前就结束了"),
    (r"no result for this case", "没有这个测试的结果"),
]


def note_text(note: str) -> Text:
    """A runtime note in both languages (`time limit of 3 s reached` -> 超过了 3 秒的时间限制)."""
    for pattern, zh in _NOTES:
        m = re.fullmatch(pattern, note or "")
        if m:
            return Text(zh.format(*m.groups()), note)
    return Text.same(note)
