"""Shared fixtures. Real components: a real bwrap sandbox, real files.

- `bwrap_grader`, `none_grader`: one warm grader of each sandbox kind for the whole session.
- `engine_grader`, `engine_samples`: the same, parametrized over both kinds (a test that takes them
  runs once under bwrap and once without a sandbox), and every bundled sample graded once per kind.
- `bwrap_samples`: every bundled sample graded once under bwrap.
- `golden`: the golden records, tests/golden/<sample>.json (`pytest --update-golden` rewrites them).
- `pack_dir`, `checker`, `pack_results`: the student pack, its warm self-check grader, and what it
  makes of three submissions.

Plain helpers (paths, the `needs_bwrap` mark, student code, `golden_record`) are in `helpers.py`.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

# The repository on sys.path, once, for the whole suite: `reference` (the hw2 reference package the
# tests check directly) is a folder of the repository, not an installed package. `grader` is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

pytest.register_assert_rewrite("helpers")      # its assertions report their values, as a test's do
import helpers  # noqa: E402
from helpers import RUBRIC, SAMPLE_NAMES, SAMPLES, read_golden, write_golden  # noqa: E402

# Still importable from here for a module that has not moved to `helpers` yet (tests/test_redraw.py);
# test modules import them from `helpers`.
ROOT, needs_bwrap, statuses = helpers.ROOT, helpers.needs_bwrap, helpers.statuses

SANDBOX_KINDS = ("bwrap", "none")


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/golden/<sample>.json from this run's results instead of comparing "
                          "with them (then review the diff before committing)")


# --- warm graders ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def bwrap_grader():
    """One warm sandboxed grader for the whole session, with a short per-cell limit."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    from grader.pipeline import Grader
    with Grader(RUBRIC, sandbox="bwrap", timeout=3) as g:
        yield g


@pytest.fixture(scope="session")
def none_grader():
    """One warm unsandboxed grader (`--sandbox none`) for the whole session, same limits."""
    from grader.pipeline import Grader
    with Grader(RUBRIC, sandbox="none", timeout=3) as g:
        yield g


@pytest.fixture(scope="session", params=SANDBOX_KINDS)
def sandbox_kind(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def engine_grader(sandbox_kind, request):
    """The warm grader of each sandbox kind: for tests of grading itself, not of confinement."""
    return request.getfixturevalue(f"{sandbox_kind}_grader")


def _grade_samples(grader) -> dict:
    return {name: grader.grade(SAMPLES / name) for name in SAMPLE_NAMES}


@pytest.fixture(scope="session")
def bwrap_samples(bwrap_grader) -> dict:
    """sample name -> its result under bwrap, graded once for every test that only reads it."""
    return _grade_samples(bwrap_grader)


@pytest.fixture(scope="session")
def none_samples(none_grader) -> dict:
    """sample name -> its result without a sandbox."""
    return _grade_samples(none_grader)


@pytest.fixture(scope="session")
def engine_samples(sandbox_kind, request) -> dict:
    """sample name -> its result, under each sandbox kind (the kind of `engine_grader`)."""
    return request.getfixturevalue(f"{sandbox_kind}_samples")


# --- golden records -------------------------------------------------------------------------------
class Golden:
    """The committed golden records. `expected(name, record)` returns the sample's record as
    committed; with `--update-golden` it first writes `record` there (once a sample per run: a
    second result of the same sample, such as the other sandbox kind's, is compared with it)."""

    def __init__(self, update: bool):
        self.update = update
        self.written: set[str] = set()

    def expected(self, name: str, record: dict) -> dict:
        if self.update and name not in self.written:
            write_golden(name, record)
            self.written.add(name)
        return read_golden(name)


@pytest.fixture(scope="session")
def golden(request) -> Golden:
    return Golden(request.config.getoption("--update-golden"))


# --- the student pack -----------------------------------------------------------------------------
CORRECT = SAMPLES / "002_correct_notebook" / "hw2.ipynb"
MISTAKES = SAMPLES / "004_attention_mistakes" / "hw2.ipynb"


@pytest.fixture(scope="session")
def pack_dir(tmp_path_factory) -> Path:
    """The student pack, built by the real `build_pack` from the real hw2 rubric into a temporary
    folder with no reference/ near it, plus three submissions beside its checks file:
    correct.ipynb, mistakes.ipynb and blank.ipynb (the starter)."""
    from grader.pack import build_pack
    folder = tmp_path_factory.mktemp("pack")
    build_pack(RUBRIC, folder)
    shutil.copyfile(CORRECT, folder / "correct.ipynb")
    shutil.copyfile(MISTAKES, folder / "mistakes.ipynb")
    shutil.copyfile(folder / "hw2.ipynb", folder / "blank.ipynb")
    return folder


@pytest.fixture(scope="session")
def checker(pack_dir):
    """A warm self-check grader on the pack (bwrap), as `grade.py check` opens it."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    from grader.check import open_checker
    g = open_checker(pack_dir / "correct.ipynb", sandbox="bwrap", timeout=3)
    yield g
    g.close()


@pytest.fixture(scope="session")
def pack_results(checker, pack_dir) -> dict:
    """file name -> what the self-check makes of it, for the pack's three submissions."""
    return {name: checker.grade(pack_dir / name) for name in ("correct.ipynb", "mistakes.ipynb", "blank.ipynb")}
