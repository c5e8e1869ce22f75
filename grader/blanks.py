"""Stage 2: find the `#todo` blanks, split cells into blocks at them, and locate written answers.

Everything here reads source text and Python ASTs only; nothing is executed. A `#todo` comment
between top-level statements opens a new block, so a variable is captured right after the block
that computes it and a later cell that reuses the name does not clobber it.
"""
from __future__ import annotations

import ast
import re
import threading
from dataclasses import dataclass

from .model import Blank, Block, Cell, Layout, Submission, Text, Written

TODO = re.compile(r"^\s*#+\s*todo(?![a-z])[\s:：,，.-]*(?P<text>.*)$", re.IGNORECASE)
# `%magic`, `!shell`, `x = !ls`, and what nbconvert's script export makes of them: `get_ipython().…`
_MAGIC = re.compile(r"^(?P<indent>\s*)(?:[%!]|\w+\s*=\s*[%!]|(?:\w+\s*=\s*)?get_ipython\(\)\.)")
_RUN_AS_PYTHON = {"time", "timeit", "capture", "prun"}   # cell magics whose body is still Python


def layout(sub: Submission, wanted_variables: tuple[str, ...] = (), written_ids: tuple[str, ...] = (),
           section_aliases: tuple = ()) -> Layout:
    blocks: list[Block] = []
    blanks: list[Blank] = []
    skipped: list[Text] = []
    definitions: list[Definition] = []
    signatures: dict[str, tuple[str, ...]] = {}
    for cell in sub.code_cells:
        source, notes = strip_magics(cell)
        skipped.extend(notes)
        cell_blocks, cell_blanks, cell_definitions, cell_signatures = _split(cell.index, source)
        blocks.extend(cell_blocks)
        blanks.extend(cell_blanks)
        definitions.extend(cell_definitions)
        for name, params in cell_signatures.items():
            signatures.setdefault(name, params)
    # As in Python, the last definition of a function is the one that counts: a starter stub kept
    # above a working version is not "unfilled". A variable is unfilled when no assignment to it
    # computes anything (only the starter's `name = ...`).
    filled: dict[str, bool] = {}
    for d in definitions:
        filled[d.name] = d.filled if d.function else filled.get(d.name, False) or d.filled
    checkpoints = {}
    for name in wanted_variables:
        # captured right after the first block that computes it (a later reuse of the name does not
        # clobber it), or after the placeholder if nothing does
        real = next((d.block for d in definitions if d.name == name and d.filled and not d.function), None)
        for b in blocks:
            if b.at == real or (real is None and (name in b.assigns or (b.syntax_error and _assigns_textually(b.source, name)))):
                checkpoints[name] = b.at
                break
    return Layout(blocks=tuple(blocks), blanks=tuple(blanks), checkpoints=checkpoints,
                  unfilled=frozenset(n for n, f in filled.items() if not f), skipped=tuple(skipped),
                  written=tuple(locate_written(sub, written_ids, section_aliases)), signatures=signatures)


def strip_magics(cell: Cell) -> tuple[str, list[Text]]:
    """IPython magics and shell escapes are not Python: each becomes `pass` (keeping indentation and
    line numbers) and is reported, so the rest of the cell still runs."""
    lines = cell.source.split("\n")
    notes = []
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        magic = first[2:].split()[0] if len(first) > 2 else ""
        if magic not in _RUN_AS_PYTHON:
            notes.append(Text(f"第 {cell.index} 个代码单元是 %%{magic} 单元魔法，未运行。",
                              f"cell {cell.index} is a %%{magic} cell magic; it was not run."))
            return "", notes
        lines[0] = ""
        notes.append(Text(f"第 {cell.index} 个单元：已忽略 {first}，其余代码照常运行。",
                          f"cell {cell.index}: {first} was ignored; the rest of the cell ran."))
    for i, line in enumerate(lines):
        m = _MAGIC.match(line)
        if m and not line.lstrip().startswith("!="):
            notes.append(Text(f"第 {cell.index} 个单元第 {i + 1} 行：跳过 IPython/命令行语句 `{line.strip()[:60]}`。",
                              f"cell {cell.index}, line {i + 1}: skipped the IPython/shell line `{line.strip()[:60]}`."))
            lines[i] = m.group("indent") + "pass"
    return "\n".join(lines), notes


# CPython before 3.12 keeps the AST builder's recursion depth per interpreter, not per thread: a
# garbage collection inside one thread's ast.parse can switch to another thread's, and either then
# fails with "SystemError: AST constructor recursion depth mismatch" (cpython gh-106905). Batch
# grader threads parse concurrently, so parsing takes turns; it is a small share of a grade.
_PARSE_LOCK = threading.Lock()


def parse(source: str) -> ast.Module:
    with _PARSE_LOCK:
        return ast.parse(source)


@dataclass(frozen=True)
class Definition:
    """One top-level definition of a name, in source order: filled, or the starter's placeholder
    (`name = ...`, a stub function)."""
    name: str
    filled: bool
    function: bool
    block: tuple[int, int]   # (cell, index) of the block it is in


def _split(cell_index: int, source: str) -> tuple[list[Block], list[Blank], list[Definition], dict]:
    lines = source.split("\n")
    todos = [(i + 1, m.group("text").strip()) for i, l in enumerate(lines) if (m := TODO.match(l))]
    try:
        tree = parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        err = {"line": getattr(e, "lineno", None), "offset": getattr(e, "offset", None),
               "message": getattr(e, "msg", str(e)), "text": (getattr(e, "text", "") or "").rstrip("\n")}
        block = Block(cell=cell_index, index=0, source=source, first_line=1, last_line=len(lines),
                      todo=todos[0][1] if todos else None, assigns=frozenset(), defines=frozenset(),
                      blank=False, syntax_error=err)
        return [block], [Blank(cell_index, ln, text, True) for ln, text in todos], [], {}

    stmts = tree.body
    inside = lambda ln: any(s.lineno < ln <= (s.end_lineno or s.lineno) for s in stmts)
    # Only a #todo between top-level statements opens a block; one inside a def marks that function.
    starts = [ln for ln, _ in todos if not inside(ln)]
    bounds = sorted(set([1] + starts))
    blocks, blanks, definitions = [], [], []
    for k, first in enumerate(bounds):
        last = bounds[k + 1] - 1 if k + 1 < len(bounds) else len(lines)
        body = [s for s in stmts if first <= s.lineno <= last]
        todo = next((t for ln, t in todos if ln == first), None)
        if not body and todo is None:
            continue
        assigns = frozenset(n for s in body for n in _assigned_names(s))
        # A name is left blank when every assignment to it here is still `name = ...`; the block is
        # blank when nothing in it computes anything (a `print(output)` kept from the starter aside).
        filled = {n for s in body if not _is_blank_stmt(s) for n in _assigned_names(s)}
        left = {n for s in body if _is_blank_stmt(s) for n in _assigned_names(s)} - filled
        blank = todo is not None and not filled and all(_is_blank_stmt(s) or _is_print(s) for s in body)
        defines = frozenset(s.name for s in body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))
        key = (cell_index, len(blocks))
        definitions += [Definition(n, True, False, key) for n in sorted(filled)]
        if todo is not None:
            definitions += [Definition(n, False, False, key) for n in sorted(left)]
        if blank:
            blanks.append(Blank(cell_index, first, todo, False))
        elif todo is not None:
            blanks.append(Blank(cell_index, first, todo, True))
        masked = [l if first <= i + 1 <= last else "" for i, l in enumerate(lines)]
        blocks.append(Block(cell=cell_index, index=len(blocks), source="\n".join(masked), first_line=first,
                            last_line=last, todo=todo, assigns=assigns, defines=defines, blank=blank))
    # Functions whose body is still the stub count as unfilled, wherever their #todo sits.
    signatures = {}
    for s in stmts:
        if isinstance(s, ast.FunctionDef):     # the feedback page names a case's inputs after these
            signatures.setdefault(s.name, tuple(a.arg for a in s.args.args))
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner = [ln for ln, _ in todos if s.lineno < ln <= (s.end_lineno or s.lineno)]
            stub = _is_stub(s)
            block = next((b.at for b in blocks if b.first_line <= s.lineno <= b.last_line), (cell_index, 0))
            definitions.append(Definition(s.name, not stub, True, block))
            for ln in inner:
                blanks.append(Blank(cell_index, ln, next(t for l2, t in todos if l2 == ln), not stub))
    return blocks, blanks, definitions, signatures


def _is_blank_stmt(s: ast.stmt) -> bool:
    if isinstance(s, ast.Pass):
        return True
    if isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and (s.value.value is Ellipsis or isinstance(s.value.value, str)):
        return True
    if isinstance(s, (ast.Assign, ast.AnnAssign)) and isinstance(s.value, ast.Constant) and s.value.value in (Ellipsis, None):
        return True
    if isinstance(s, ast.Raise) and s.exc is not None:
        exc = s.exc.func if isinstance(s.exc, ast.Call) else s.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    return False


def _is_print(s: ast.stmt) -> bool:
    return isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and isinstance(s.value.func, ast.Name) \
        and s.value.func.id in ("print", "display")


def _is_stub(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return all(_is_blank_stmt(s) for s in fn.body)


def _assigned_names(s: ast.stmt) -> list[str]:
    targets: list[ast.expr] = []
    if isinstance(s, ast.Assign):
        targets = list(s.targets)
    elif isinstance(s, (ast.AugAssign, ast.AnnAssign)):
        targets = [s.target]
    elif isinstance(s, (ast.For, ast.AsyncFor)):
        targets = [s.target]
    elif isinstance(s, (ast.With, ast.AsyncWith)):
        targets = [i.optional_vars for i in s.items if i.optional_vars is not None]
    names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    if isinstance(s, (ast.If, ast.Try, ast.While, ast.For, ast.With)):
        for child in ast.iter_child_nodes(s):
            if isinstance(child, ast.stmt):
                names += _assigned_names(child)
    return names


def _assigns_textually(source: str, name: str) -> bool:
    """For a cell that does not parse: does some line still read like `name = ...`?"""
    return re.search(rf"^\s*{re.escape(name)}\s*(\[[^\]]*\])?\s*[-+*/@]?=(?!=)", source, re.MULTILINE) is not None


# --- written answers -----------------------------------------------------------------------------
_CN_NUM = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_FULL_ID = re.compile(r"^\s*(?:#+\s*)?(?:\*\*)?\s*(?:[Qq问题]*\s*)?(?P<s>\d+)\s*[.．-]\s*(?P<q>\d+)(?![\d.])")
_SECTION = r"^\s*(?:#+\s*)?(?:第\s*)?(?P<n>[一二三四五六七八九十]{aliases})\s*(?:部分|题|[、.．:：]|\s*$)"
_QUESTION = re.compile(r"^\s*(?:#+\s*)?(?P<q>\d+)\s*(?:[.．、)）:：]\s*$|\s*$)")


def locate_written(sub: Submission, written_ids: tuple[str, ...], section_aliases: tuple = ()) -> list[Written]:
    """Answers are found by their numbers: `### 2.2 ...` headings, or a section numeral (一/二/三,
    or one of the rubric's `section_aliases`) followed by bare question numbers `1`, `2`, ... as
    in hand-written sheets. A question number that does not grow starts the next section even when
    the section heading was lost."""
    aliases = dict(section_aliases)
    section_re = re.compile(_SECTION.format(aliases="".join("|" + re.escape(a) for a in aliases)))
    wanted = {i.split(".", 1)[1]: i for i in written_ids if i.count(".") == 2}
    answers: dict[str, list[str]] = {}
    first_cell: dict[str, int] = {}
    section, question, current, level = 0, 0, None, 0
    for cell in sub.cells:
        if cell.kind != "markdown":
            if current in wanted:   # a code cell ends a written answer (not the text around a code exercise)
                current = None
            continue
        for line in cell.source.split("\n"):
            heading = len(line) - len(line.lstrip("#")) if line.startswith("#") else 0
            if (m := _FULL_ID.match(line)) and f"{int(m['s'])}.{int(m['q'])}" in wanted:
                section, question, level = int(m["s"]), int(m["q"]), heading
                current = f"{section}.{question}"
            elif (m := section_re.match(line)) and len(line.strip()) <= 12:
                section = _CN_NUM.get(m["n"]) or aliases.get(m["n"]) or section + 1
                question, current = 0, None
                continue
            elif (m := _QUESTION.match(line)):
                q = int(m["q"])
                if q <= question or section == 0:
                    section += 1
                question, level = q, heading
                current = f"{section}.{question}"
            elif current is not None and 0 < heading <= level:
                current = None      # a heading as high as the question's own ends its answer
                continue
            else:
                if current is not None:
                    answers[current].append(line)
                continue
            first_cell.setdefault(current, cell.index)
            answers.setdefault(current, [])
    out = []
    for key, item_id in wanted.items():
        text = _clean_answer("\n".join(answers.get(key, [])))
        out.append(Written(item=item_id, text=text, cell=first_cell.get(key)))
    return out


# An answer cell's bold label, kept from the starter (`**Answer:**`, `**答 / Answer:**`): a short
# bold text ending with a colon, at the very start.
ANSWER_LABEL = re.compile(r"^\s*\*\*[^*\n]{0,30}[:：]\*\*\s*|^\s*\*\*[^*\n]{0,30}\*\*[:：]\s*")


def _clean_answer(text: str) -> str:
    text = ANSWER_LABEL.sub("", text.strip())
    text = re.sub(r"(?m)^\S+\.md \d{4}-\d{2}-\d{2}\s*$", "", text)   # PDF page headers
    return text.strip()
