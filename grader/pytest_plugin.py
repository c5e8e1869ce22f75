"""pytest plugin: `pytest --grade homework.ipynb` runs the pack's public checks as one test per rubric
item, named by the item id (`homework.ipynb::<item>`), so an assignment repo gates on plain pytest.

Registered through the `pytest11` entry point; it does nothing unless `--grade` is given, so it never
touches other test suites. The submission is graded once, lazily, by the first item that runs
(`--collect-only` starts no sandbox); each item then reports its own status from that one result.
Written answers are skipped: the instructor reviews them.
"""
from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser):
    g = parser.getgroup("grade", "self-check a homework submission against its pack's public checks")
    g.addoption("--grade", metavar="SUBMISSION", help="the notebook or script to check, e.g. homework.ipynb")
    g.addoption("--grade-checks", metavar="FILE", help="the pack's .checks.safetensors (default: beside the submission)")
    g.addoption("--grade-sandbox", choices=("bwrap", "none"), default=None, help="default: bwrap where installed")
    g.addoption("--grade-html", metavar="OUT.html", help="also write the feedback page")
    g.addoption("--grade-lang", choices=("zh", "en"), default=None)


def pytest_configure(config):
    if config.getoption("--grade"):
        config.pluginmanager.register(_Session(config), "grader-session")


class _Session:
    """Holds the pack and, once graded, the result, for the items to share."""

    def __init__(self, config):
        from .errors import GraderError
        from .pack import find_checks, load_pack
        self.config = config
        self.submission = Path(config.getoption("--grade"))
        if not self.submission.exists():
            raise pytest.UsageError(f"--grade {self.submission}: no such file; pass the notebook you filled in")
        try:
            self.rubric, self.reference = load_pack(find_checks(self.submission, config.getoption("--grade-checks")))
        except GraderError as e:
            raise pytest.UsageError(str(e))
        self.lang = config.getoption("--grade-lang") or self.rubric.lang
        self._result = None
        self.collected = False

    def result(self):
        if self._result is None:
            from .pipeline import Grader
            from .sandbox import default_kind
            sandbox = self.config.getoption("--grade-sandbox") or default_kind()
            with Grader(self.rubric, sandbox=sandbox, reference=self.reference) as grader:
                self._result = grader.grade(self.submission)
            html = self.config.getoption("--grade-html")
            if html:
                from .feedback import write_feedback
                write_feedback(self._result, html, self.lang, view="student", rubric=self.rubric)
        return self._result

    def pytest_collect_file(self, file_path, parent):
        # The submission is collected where pytest's own walk finds it (the usual case: it is in
        # the folder pytest runs in), so it is counted and selected (-k, ::item) like any test file.
        if file_path.resolve() == self.submission.resolve() and not self.collected:
            self.collected = True
            return _Submission.from_parent(parent, path=file_path, session_state=self)
        return None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        if not self.collected:   # outside the paths pytest was given: add its items anyway
            self.collected = True
            items.extend(_Submission.from_parent(session, path=self.submission.resolve(), session_state=self).collect())


class _Submission(pytest.File):
    def __init__(self, *, session_state, **kw):
        super().__init__(**kw)
        self.state = session_state

    def collect(self):
        for item in self.state.rubric.items:
            yield RubricItem.from_parent(self, name=item.id, kind=item.kind)


class GradeFailure(Exception):
    pass


class RubricItem(pytest.Item):
    def __init__(self, *, kind: str, **kw):
        super().__init__(**kw)
        self.kind = kind

    def runtest(self):
        state = self.parent.state
        if self.kind == "written":
            pytest.skip("written answer: reviewed by the instructor")
        r = next(i for i in state.result().items if i.id == self.name)
        if r.status != "pass":
            lang = state.lang
            hint = f"\n  hint: {r.hint(lang)}" if r.hint else ""
            raise GradeFailure(f"{r.id}: {r.status}, {r.points:g}/{r.max_points:g}: {r.message(lang)}{hint}")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, GradeFailure):
            return str(excinfo.value)   # the grader's message is the whole story; no plugin traceback
        return super().repr_failure(excinfo, style)
