"""Stage 1: a path on disk -> a `Submission` (one ordered list of cells, whatever the format).

Notebooks go through nbformat (which upgrades nbformat 3 and older); percent-format scripts are
split at `# %%` (and nbconvert's `# In[ ]:` markers); Markdown answer sheets become text cells with
their fenced Python blocks as code cells. Nothing here runs the submission.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from .errors import SubmissionError
from .model import Cell, Submission, Text

SUFFIXES = (".ipynb", ".py", ".md")
MAX_BYTES = 64 * 1024 * 1024
IGNORED = re.compile(r"^(\.|__pycache__$|__MACOSX$|.*\.(json|html|csv|xml|txt|log)$)")


def find_submission_file(path: Path) -> Path:
    """A submission is a file, or a folder holding exactly one notebook/script/answer sheet."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise SubmissionError(path, "does not exist", "文件不存在")
    candidates = sorted(p for p in path.iterdir()
                        if p.is_file() and p.suffix.lower() in SUFFIXES and not IGNORED.match(p.name))
    if not candidates:
        others = ", ".join(sorted(p.name for p in path.iterdir())[:5]) or "nothing"
        raise SubmissionError(path, f"holds no .ipynb, .py or .md file (found: {others})",
                              f"文件夹中没有 .ipynb、.py 或 .md 文件（找到：{others}）")
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise SubmissionError(path, f"holds {len(candidates)} submission files ({names}); keep exactly one",
                              f"文件夹中有 {len(candidates)} 个作业文件（{names}），只能保留一个")
    return candidates[0]


def load_submission(path: str | Path, student: str | None = None) -> Submission:
    path = Path(path)
    file = find_submission_file(path)
    student = student or (path.name if path.is_dir() else path.stem)
    try:
        raw = file.read_bytes()
    except OSError as e:
        raise SubmissionError(file, f"cannot be read ({e.strerror})", f"无法读取（{e.strerror}）")
    if len(raw) > MAX_BYTES:
        raise SubmissionError(file, f"is {len(raw) // 2**20} MB; the limit is {MAX_BYTES // 2**20} MB "
                              "(clear the notebook's outputs and submit again)",
                              f"文件大小 {len(raw) // 2**20} MB，超过上限 {MAX_BYTES // 2**20} MB（请清除输出后重新提交）")
    if not raw.strip():
        raise SubmissionError(file, "is empty", "文件为空")
    text, notes = decode_text(raw, file)
    fmt = file.suffix.lower().lstrip(".")
    if fmt == "ipynb":
        cells = _notebook_cells(text, file)
    elif fmt == "py":
        cells = _script_cells(text)
    else:
        cells = _markdown_cells(text)
    if not any(c.source.strip() for c in cells):
        raise SubmissionError(file, "is empty", "文件为空")
    return Submission(path=str(file), student=student, format=fmt, cells=tuple(cells),
                      sha256=hashlib.sha256(raw).hexdigest(), notes=tuple(notes))


def decode_text(raw: bytes, file: Path) -> tuple[str, list[Text]]:
    if b"\x00" in raw[:65536]:
        raise SubmissionError(file, "is a binary file, not a notebook, script or Markdown sheet",
                              "是二进制文件，不是 notebook、脚本或 Markdown 答卷")
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    # GBK is the common non-UTF-8 encoding on Chinese Windows machines.
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        raise SubmissionError(file, "is neither UTF-8 nor GBK text; save it as UTF-8",
                              "既不是 UTF-8 也不是 GBK 文本，请另存为 UTF-8")
    return text, [Text("文件不是 UTF-8 编码，已按 GBK 读取；请以 UTF-8 保存。",
                       "The file is not UTF-8; it was read as GBK. Please save as UTF-8.")]


def _notebook_cells(text: str, file: Path) -> list[Cell]:
    import nbformat
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SubmissionError(file, f"is not a valid notebook: broken JSON at line {e.lineno}, column {e.colno}; "
                              "open it in Jupyter and save it again",
                              f"不是有效的 notebook：第 {e.lineno} 行第 {e.colno} 列 JSON 损坏；请在 Jupyter 中打开并重新保存")
    if not isinstance(data, dict) or "nbformat" not in data:
        raise SubmissionError(file, "is JSON but not a Jupyter notebook (no 'nbformat' field)",
                              "是 JSON 文件但不是 Jupyter notebook（缺少 nbformat 字段）")
    try:
        # From the JSON already parsed, and without nbformat.reads' schema validation: it only logs
        # what it finds, and cost a batch a millisecond a notebook (seconds on a 50 MB one).
        nb = nbformat.convert(nbformat.from_dict(data), 4)
    except Exception as e:  # nbformat raises a zoo of types for broken notebooks
        raise SubmissionError(file, f"is not a readable notebook ({type(e).__name__}: {e})"[:400],
                              f"notebook 无法读取（{type(e).__name__}）")
    cells = []
    for cell in nb.get("cells", []):
        kind = cell.get("cell_type")
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        if kind in ("code", "markdown") and isinstance(source, str):
            cells.append(Cell(index=len(cells) + 1, kind=kind, source=source))
    return cells


_PERCENT = re.compile(r"^# ?%%(?P<rest>.*)$")
_NBCONVERT = re.compile(r"^# In\[[ 0-9]*\]:\s*$")


def _script_cells(text: str) -> list[Cell]:
    chunks: list[tuple[str, list[str]]] = [("code", [])]
    for line in text.splitlines():
        m = _PERCENT.match(line)
        if m or _NBCONVERT.match(line):
            kind = "markdown" if m and re.search(r"\[(markdown|md)\]", m.group("rest")) else "code"
            chunks.append((kind, []))
            continue
        chunks[-1][1].append(line)
    cells = []
    for kind, lines in chunks:
        if kind == "markdown":
            lines = [re.sub(r"^# ?", "", l) for l in lines]
        source = "\n".join(lines).strip("\n")
        if source.strip():
            cells.append(Cell(index=len(cells) + 1, kind=kind, source=source))
    return cells


_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>```+|~~~+)\s*(?P<info>[^`\s]*)[^`]*$")
_CODE_LANGS = {"", "python", "py", "python3", "ipython", "ipython3", "pycon"}


def _markdown_cells(text: str) -> list[Cell]:
    """Fenced python blocks are code cells; the rest is text. An unlabelled fence counts as code
    (answer sheets exported from editors often drop the language tag)."""
    cells: list[Cell] = []
    buf: list[str] = []
    fence: str | None = None
    kind = "markdown"

    def flush(k: str):
        source = "\n".join(buf).strip("\n")
        if source.strip():
            cells.append(Cell(index=len(cells) + 1, kind=k, source=source))
        buf.clear()

    for line in text.splitlines():
        m = _FENCE.match(line)
        if fence is None and m:
            flush("markdown")
            fence = m.group("fence")
            kind = "code" if m.group("info").lower() in _CODE_LANGS else "markdown"
            continue
        if fence is not None and line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
            flush(kind)
            fence, kind = None, "markdown"
            continue
        buf.append(line)
    flush(kind if fence is not None else "markdown")
    return cells
