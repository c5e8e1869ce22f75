"""Authoring: make the starter students receive from the one solution notebook the instructor keeps.

Rules (each bundled starter is exactly what they make from its reference/<id>/solution.ipynb):
- a code region between `### BEGIN SOLUTION` and `### END SOLUTION` becomes a blank:
  at the top level of a cell, one `name = ...` per name the region assigns (the `#todo` blocks the
  grader's blank detection recognises as unfilled); indented (inside a function), a
  `raise NotImplementedError` at the region's indentation. The `#todo` line stays, whether it is
  just above BEGIN or the first line inside the region;
- a cell holding `### BEGIN HIDDEN TESTS` is dropped;
- a markdown answer cell (one that begins with a bold label ending in a colon, `**Answer:**`) keeps only that label;
- outputs and execution counts are cleared; ids and metadata are kept.

The notebook is written as nbformat writes it (sorted keys, one-space indent, UTF-8, newline at
the end); the script in jupytext's percent format (`# %%` cells, markdown as `# ` comments, two
blank lines around functions as PEP 8 wants).
"""
from __future__ import annotations

import ast
import copy
import json
import re
import textwrap
from pathlib import Path

from .blanks import ANSWER_LABEL, TODO, parse
from .errors import GraderError

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN = "### BEGIN HIDDEN TESTS"
ANSWER = ANSWER_LABEL


class ReleaseError(GraderError):
    """The solution notebook cannot be turned into a starter (names the cell and line)."""


def release(solution: str | Path, out: str | Path, py: str | Path | None = None) -> list[Path]:
    solution = Path(solution)
    try:
        nb = json.loads(solution.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ReleaseError(f"{solution}: cannot be read as a notebook ({e})")
    starter = starter_notebook(nb, solution)
    out = Path(out)
    out.write_text(notebook_text(starter), encoding="utf-8")
    written = [out]
    if py is not None:
        Path(py).write_text(percent_script(starter), encoding="utf-8")
        written.append(Path(py))
    return written


def notebook_text(nb: dict) -> str:
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def starter_notebook(nb: dict, path: Path | str = "<notebook>") -> dict:
    nb = copy.deepcopy(nb)
    cells = []
    for n, cell in enumerate(nb.get("cells", []), 1):
        source = _text(cell.get("source", ""))
        if cell.get("cell_type") == "code":
            if HIDDEN in source:
                continue
            cell["source"] = _lines(blank_code(source, f"{path}, cell {n}"))
            cell["outputs"] = []
            cell["execution_count"] = None
        elif cell.get("cell_type") == "markdown" and ANSWER.match(source):
            cell["source"] = _lines(source.splitlines()[0] + "\n")
        cells.append(cell)
    nb["cells"] = cells
    return nb


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else source


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def blank_code(source: str, where: str) -> str:
    lines = source.split("\n")
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.strip() != BEGIN:
            if line.strip() == END:
                raise ReleaseError(f"{where}, line {i + 1}: {END} without a {BEGIN} above it")
            out.append(line)
            i += 1
            continue
        indent = line[:len(line) - len(line.lstrip())]
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == END), None)
        if end is None:
            raise ReleaseError(f"{where}, line {i + 1}: {BEGIN} is never closed; add {END} after the solution")
        region = lines[i + 1:end]
        if region and TODO.match(region[0]):        # "#todo" as the region's first line: students keep it
            out.append(region[0])
            region = region[1:]
        out.extend(_blank(region, indent, f"{where}, line {i + 1}"))
        i = end + 1
    return "\n".join(out)


def _blank(region: list[str], indent: str, where: str) -> list[str]:
    if indent:   # inside a function: the stub raises, so calling it unfilled says so
        return [indent + "raise NotImplementedError"]
    try:
        tree = parse(textwrap.dedent("\n".join(region)))
    except SyntaxError as e:
        raise ReleaseError(f"{where}: the solution does not parse ({e.msg}, line {e.lineno} of the region)")
    names = []
    for node in tree.body:
        for name in _assigned(node):
            if name not in names:
                names.append(name)
    if not names:
        raise ReleaseError(f"{where}: a top-level solution region must assign a name (it becomes `name = ...`); "
                           "put code that assigns nothing outside the region")
    return [f"{name} = ..." for name in names]


def _assigned(node) -> list[str]:
    targets = {ast.Assign: lambda n: n.targets, ast.AnnAssign: lambda n: [n.target],
               ast.AugAssign: lambda n: [n.target]}.get(type(node), lambda n: [])(node)
    out = []
    for t in targets:
        if isinstance(t, ast.Name):
            out.append(t.id)
        elif isinstance(t, (ast.Tuple, ast.List)):
            out.extend(e.id for e in t.elts if isinstance(e, ast.Name))
    return out


# --- the percent-format script ----------------------------------------------------------------------
def percent_script(nb: dict) -> str:
    chunks = []
    for cell in nb["cells"]:
        src = _text(cell.get("source", ""))
        if cell["cell_type"] == "markdown":
            body = "\n".join("# " + l if l else "#" for l in src.split("\n"))
            chunks.append(("markdown", "# %% [markdown]\n" + body))
        elif cell["cell_type"] == "code":
            chunks.append(("code", "# %%\n" + src))
    out = ""
    for n, (kind, text) in enumerate(chunks):
        if n:
            prev_kind, prev = chunks[n - 1]
            out += "\n" * (1 + _blank_lines_between(prev_kind, prev, kind, text))
        out += text
    return out + "\n"


def _blank_lines_between(prev_kind: str, prev: str, kind: str, text: str) -> int:
    """PEP 8: two blank lines around a top-level function or class, one otherwise."""
    if prev_kind != "code":
        return 1
    if re.search(r"^(def|class|async def|@)", prev, re.MULTILINE):
        return 2
    if kind == "code":
        first = next((l for l in text.split("\n")[1:] if l.strip() and not l.startswith("#")), "")
        if re.match(r"(def|class|async def|@)", first):
            return 2
    return 1
