"""`grade.py new <id>` (issue 15, authoring): the skeleton it makes passes `grade.py validate` as
made, through the real command line and the real bwrap sandbox, from a folder that is not the
checkout; it never overwrites, and refuses an id that is not an identifier."""
from __future__ import annotations

import json
import subprocess
import sys

from helpers import ROOT, needs_bwrap

GRADE = str(ROOT / "grade.py")


def _grade(*args, cwd) -> subprocess.CompletedProcess:
    # sys.executable is the venv's python (the suite runs there; tests/README.md)
    return subprocess.run([sys.executable, GRADE, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@needs_bwrap
def test_new_skeleton_validates_and_is_never_overwritten(tmp_path):
    made = _grade("new", "hw9", "--dir", str(tmp_path), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    reference = tmp_path / "reference" / "hw9"
    for name in ("__init__.py", "part_a.py", "cases.py", "mistakes.py", "README.md", "solution.ipynb",
                 "starter.ipynb", "starter.py"):
        assert (reference / name).is_file(), name
        assert "__ID__" not in (reference / name).read_text(encoding="utf-8"), name
    rubric = tmp_path / "rubrics" / "hw9.toml"
    assert 'id = "hw9"' in rubric.read_text(encoding="utf-8")
    assert f"python grade.py validate {rubric}" in made.stdout
    assert f"python grade.py pack {rubric} --out {tmp_path / 'dist' / 'hw9'}" in made.stdout
    # the starter carries the id, so `grade`/`check` know the assignment without --rubric
    starter = json.loads((reference / "starter.ipynb").read_text(encoding="utf-8"))
    assert starter["metadata"]["grader"]["assignment"] == "hw9"

    checked = _grade("validate", "rubrics/hw9.toml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "rubrics/hw9.toml: OK" in checked.stdout

    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    again = _grade("new", "hw9", "--dir", str(tmp_path), cwd=tmp_path)
    assert again.returncode == 2
    assert f"{rubric} already exists" in again.stderr
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_new_refuses_a_reference_folder_that_exists(tmp_path):
    (tmp_path / "reference" / "hw9").mkdir(parents=True)
    (tmp_path / "reference" / "hw9" / "cases.py").write_text("# someone's work\n")
    done = _grade("new", "hw9", "--dir", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert str(tmp_path / "reference" / "hw9" / "cases.py") + " already exists" in done.stderr
    assert not (tmp_path / "rubrics").exists()       # refused before writing anything
    assert (tmp_path / "reference" / "hw9" / "cases.py").read_text() == "# someone's work\n"


def test_new_refuses_an_id_that_is_not_an_identifier(tmp_path):
    for bad in ("9hw", "hw-9", "hw 9", "../hw9", "class"):
        done = _grade("new", bad, "--dir", str(tmp_path), cwd=tmp_path)
        assert done.returncode == 2, bad
        assert f"{bad!r} is not a valid assignment id" in done.stderr, (bad, done.stderr)
    assert list(tmp_path.iterdir()) == []
