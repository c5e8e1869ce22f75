"""Which assignment a command is about: never a silent default.

In order: the rubric given (`--rubric`); the one the submission names (its notebook's
`metadata.grader.assignment`, a file named after a rubric's id such as `<id>.ipynb`, or a folder
on its path named after one, as in `submissions/<id>/alice/`); the only rubric there is. Otherwise
an error that lists the rubrics. Rubrics are looked for in `./rubrics/` and beside the grader
(`<checkout>/rubrics/`), each `<id>.toml`.

A batch folder whose top-level folders are named after rubrics (`submissions/<a>/`,
`submissions/<b>/`) holds several assignments: each is graded against its own rubric into
`OUT/<id>/`.
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import UsageError

HERE = Path(__file__).resolve().parent.parent / "rubrics"


def rubric_dirs() -> list[Path]:
    dirs = [Path.cwd() / "rubrics", HERE]
    return [d for i, d in enumerate(dirs) if d.is_dir() and d.resolve() not in {x.resolve() for x in dirs[:i]}]


def known_rubrics() -> dict[str, Path]:
    """id -> rubric path, the first found of each id."""
    found: dict[str, Path] = {}
    for d in rubric_dirs():
        for p in sorted(d.glob("*.toml")):
            found.setdefault(p.stem, p)
    return found


def named_by(submission: str | Path, known: dict[str, Path]) -> str | None:
    """The assignment a submission names, or None."""
    path = Path(submission)
    files = [path] if path.is_file() else sorted(p for p in path.glob("*") if p.is_file()) if path.is_dir() else []
    for f in files:
        if f.suffix == ".ipynb":
            try:
                meta = json.loads(f.read_text(encoding="utf-8")).get("metadata", {})
                said = (meta.get("grader") or {}).get("assignment") if isinstance(meta, dict) else None
            except (OSError, ValueError, AttributeError):
                said = None
            if isinstance(said, str) and said in known:
                return said
        if f.stem in known:
            return f.stem
    for part in reversed(path.resolve().parts[:-1] if path.is_file() else path.resolve().parts):
        if part in known:
            return part
    return None


def choose(rubric: str | None, submission: str | Path | None = None, what: str = "this command") -> Path:
    """The rubric to use (see the module's docstring); UsageError when it cannot be told."""
    if rubric:
        return Path(rubric)
    known = known_rubrics()
    if submission is not None:
        named = named_by(submission, known)
        if named is None and Path(submission).is_dir():
            # a batch folder: its students' files name it, if they all name the same one
            said = {named_by(p, known) for p in sorted(Path(submission).iterdir())[:50] if not p.name.startswith(".")}
            named = said.pop() if len(said) == 1 else None
        if named is not None:
            return known[named]
    if len(known) == 1:
        return next(iter(known.values()))
    listing = ", ".join(f"{k} ({p})" for k, p in known.items()) or "none found"
    where = f" for {submission}" if submission is not None else ""
    raise UsageError(f"which assignment{where}? {what} needs --rubric PATH: nothing names one (a notebook's "
                     f"metadata.grader.assignment, a file or folder named after a rubric id). Rubrics: {listing}")


def split_by_assignment(folder: str | Path) -> dict[str, Path] | None:
    """{id: subfolder} when the batch folder's top-level folders are named after rubrics; None
    when none is (a folder of one assignment's submissions). A mix of both is an error."""
    folder = Path(folder)
    known = known_rubrics()
    subs = [p for p in sorted(folder.iterdir()) if not p.name.startswith(".")] if folder.is_dir() else []
    named = {p.name: p for p in subs if p.is_dir() and p.name in known}
    if not named:
        return None
    others = [p.name for p in subs if p.name not in named]
    if others:
        raise UsageError(f"{folder}: holds assignment folders ({', '.join(named)}) and other entries "
                         f"({', '.join(others[:5])}{'…' if len(others) > 5 else ''}): put every submission "
                         f"inside its assignment's folder ({folder}/<assignment>/<student>/)")
    return named
