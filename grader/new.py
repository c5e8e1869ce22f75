"""`grade.py new <id>`: a new assignment's skeleton, complete and passing `grade.py validate` as made.

An instructor starts from something that works and changes it step by step, re-running validate,
rather than from an empty file and the format's reference (docs/authoring.md). The templates are
package data (grader/skeleton/, listed in pyproject.toml), so `new` works from an installed wheel
too. Each one is copied with `__ID__` replaced by the id; the starter is not a template but what
`release` makes of the solution, so it is exactly what `grade.py release` would write and validate's
"starter up to date" check holds from the start.
"""
from __future__ import annotations

import keyword
from pathlib import Path

from .errors import UsageError
from .release import release

SKELETON = Path(__file__).resolve().parent / "skeleton"
PLACEHOLDER = "__ID__"


def targets(root: Path, assignment: str) -> dict[Path, Path]:
    """destination -> template, every file `new` writes except the starter."""
    reference = root / "reference" / assignment
    out = {root / "rubrics" / f"{assignment}.toml": SKELETON / "rubric.toml"}
    for template in sorted((SKELETON / "reference").iterdir()):
        if template.is_file() and template.suffix in (".py", ".md", ".ipynb"):   # no editor or bytecode leftovers
            out[reference / template.name] = template
    return out


def new_assignment(assignment: str, root: str | Path = ".") -> list[Path]:
    """Write the skeleton of `assignment` under `root` (rubrics/, reference/<id>/); the files written.
    Refuses (UsageError, naming the file) before writing anything if any of them exists."""
    if not assignment.isidentifier() or keyword.iskeyword(assignment):
        # The id names the rubric, the reference folder and the pack's files (<id>.ipynb,
        # <id>.checks.safetensors), and is found again in folder names (submissions/<id>/): an
        # identifier is safe in all of them, and in the TOML and JSON it is pasted into.
        raise UsageError(f"{assignment!r} is not a valid assignment id: use a Python identifier "
                         "(letters, digits and _, not starting with a digit, not a keyword)")
    root = Path(root)
    files = targets(root, assignment)
    reference = root / "reference" / assignment
    starter = [reference / "starter.ipynb", reference / "starter.py"]
    # The whole reference folder counts, not only the files we would write: a half-written
    # assignment of that id already lives there, and mixing the two would be worse than refusing.
    for path in [*files, reference, *starter]:
        if path.exists():
            raise UsageError(f"{path} already exists: `new` never overwrites an assignment; choose another id "
                             "or remove it first")
    for dest, template in files.items():
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(template.read_text(encoding="utf-8").replace(PLACEHOLDER, assignment), encoding="utf-8")
    written = list(files)
    written += release(reference / "solution.ipynb", starter[0], starter[1])
    return written


def next_steps(assignment: str, root: str | Path = ".") -> list[str]:
    """The two commands to run next, with paths as the caller will type them from here."""
    rubric = Path(root) / "rubrics" / f"{assignment}.toml"
    return [f"python grade.py validate {rubric}",
            f"python grade.py pack {rubric} --out {Path(root) / 'dist' / assignment}"]
