"""`grade.py release`: the hw2 starter is made from the solution notebook, byte for byte."""
from __future__ import annotations

import json

import nbformat
import pytest

from helpers import ROOT
from grader.cli import main
from grader.release import ReleaseError, blank_code, release, starter_notebook

HW2 = ROOT / "reference" / "hw2"


def test_release_round_trips_the_hw2_solution_to_the_committed_starter_byte_for_byte(tmp_path):
    assert main(["release", str(HW2 / "solution.ipynb"), "--out", str(tmp_path / "s.ipynb"),
                 "--py", str(tmp_path / "s.py")]) == 0
    assert (tmp_path / "s.ipynb").read_bytes() == (HW2 / "starter.ipynb").read_bytes()
    assert (tmp_path / "s.py").read_bytes() == (HW2 / "starter.py").read_bytes()
    nbformat.validate(nbformat.read(tmp_path / "s.ipynb", as_version=4))


def test_top_level_regions_become_one_blank_per_name_and_functions_raise():
    src = ("x = 1\n#todo compute y and z\n### BEGIN SOLUTION\ny, z = x + 1, x + 2\ny += 1\n### END SOLUTION\nprint(y)\n"
           "def f(a):\n    \"\"\"doc\"\"\"\n    ### BEGIN SOLUTION\n    #todo return twice a\n    return 2 * a\n"
           "    ### END SOLUTION")
    assert blank_code(src, "cell 1") == ("x = 1\n#todo compute y and z\ny = ...\nz = ...\nprint(y)\n"
                                         "def f(a):\n    \"\"\"doc\"\"\"\n    #todo return twice a\n"
                                         "    raise NotImplementedError")


def test_hidden_tests_dropped_answers_blanked_outputs_cleared():
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("#todo\n### BEGIN SOLUTION\na = 2\n### END SOLUTION", execution_count=3)
    code.outputs = [nbformat.v4.new_output("stream", text="2\n")]
    nb.cells = [code, nbformat.v4.new_code_cell("### BEGIN HIDDEN TESTS\nassert a == 2\n### END HIDDEN TESTS"),
                nbformat.v4.new_markdown_cell("**答 / Answer:**\n\nthe answer is 42")]
    out = starter_notebook(json.loads(nbformat.writes(nb)))
    assert len(out["cells"]) == 2
    assert "".join(out["cells"][0]["source"]) == "#todo\na = ..."
    assert out["cells"][0]["outputs"] == [] and out["cells"][0]["execution_count"] is None
    assert "".join(out["cells"][1]["source"]) == "**答 / Answer:**\n"


@pytest.mark.parametrize("src, problem", [
    ("### BEGIN SOLUTION\na = 1\n", "never closed"),
    ("a = 1\n### END SOLUTION\n", "without a"),
    ("### BEGIN SOLUTION\nprint(1)\n### END SOLUTION\n", "must assign a name"),
])
def test_malformed_regions_name_the_cell_and_line(src, problem):
    with pytest.raises(ReleaseError, match=f"cell 4, line \\d+.*{problem}"):
        blank_code(src, "sol.ipynb, cell 4")


def test_unreadable_solution_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "bad.ipynb").write_text("{not json")
    assert main(["release", str(tmp_path / "bad.ipynb"), "--out", str(tmp_path / "s.ipynb")]) == 2
    assert "bad.ipynb" in capsys.readouterr().err
    with pytest.raises(ReleaseError):
        release(tmp_path / "missing.ipynb", tmp_path / "s.ipynb")
