"""The pytest plugin, run as a student's repo runs it: `pytest --grade hw2.ipynb` in the pack's
folder, in a fresh pytest process (the plugin is loaded by its entry point when the package is
installed, with `-p grader.pytest_plugin` otherwise)."""
from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points

from helpers import ROOT, needs_bwrap

INSTALLED = any(ep.name == "grader" for ep in entry_points(group="pytest11"))


def run_pytest(pack_dir, *args: str) -> subprocess.CompletedProcess:
    load = [] if INSTALLED else ["-p", "grader.pytest_plugin"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *load, *args],
                          cwd=pack_dir, env=env, capture_output=True, text=True, timeout=300)


@needs_bwrap
def test_passing_notebook_one_test_per_item(pack_dir):
    r = run_pytest(pack_dir, "--grade", "correct.ipynb", "-v", "--grade-lang", "en")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "14 passed, 7 skipped" in r.stdout
    for item in ("correct.ipynb::Q PASSED", "correct.ipynb::roi_pool PASSED", "correct.ipynb::written.1.1 SKIPPED"):
        assert item in r.stdout


@needs_bwrap
def test_failing_notebook_names_the_item_and_its_hint(pack_dir):
    r = run_pytest(pack_dir, "--grade", "mistakes.ipynb", "--grade-lang", "en", "--grade-html", "page.html")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED mistakes.ipynb::" in r.stdout and "hint:" in r.stdout
    assert "Traceback" not in r.stdout          # the grader's message, not the plugin's stack
    assert (pack_dir / "page.html").is_file()


def test_without_grade_the_plugin_adds_nothing_and_bad_paths_are_usage_errors(pack_dir, tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    load = [] if INSTALLED else ["-p", "grader.pytest_plugin"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *load, "-q"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout + r.stderr
    r = run_pytest(pack_dir, "--grade", "nope.ipynb")
    assert r.returncode == 4 and "nope.ipynb" in r.stderr, r.stdout + r.stderr
