"""Shared fixtures. Real components: a real bwrap sandbox, real files."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUBRIC = ROOT / "rubrics" / "hw2.toml"
SAMPLES = ROOT / "submissions"

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (CI installs it)")


@pytest.fixture(scope="session")
def bwrap_grader():
    """One warm sandboxed grader for the whole session, with a short per-cell limit."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    from grader.pipeline import Grader
    g = Grader(RUBRIC, sandbox="bwrap", timeout=3)
    yield g
    g.close()


def statuses(result) -> dict:
    return {i.id: i.status for i in result.items}
