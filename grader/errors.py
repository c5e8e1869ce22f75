"""Errors grouped by whose fault they are. The library raises these; the CLI formats them."""
from __future__ import annotations


class GraderError(Exception):
    """Base: something a user can fix. `str()` is the whole message."""


class RubricError(GraderError):
    """The instructor's rubric is wrong. Names the file, the item and the field."""

    def __init__(self, path, where: str, field: str, problem: str):
        self.path, self.where, self.field, self.problem = str(path), where, field, problem
        place = ", ".join(p for p in (where, f"field {field!r}" if field else "") if p)
        super().__init__(f"{self.path}: {place + ': ' if place else ''}{problem}")


class SubmissionError(GraderError):
    """The student's file cannot be read as a submission. Becomes a result, never a crash."""

    def __init__(self, path, problem_en: str, problem_zh: str = ""):
        self.path, self.problem_en, self.problem_zh = str(path), problem_en, problem_zh or problem_en
        super().__init__(f"{self.path}: {problem_en}")


class SandboxError(GraderError):
    """The sandbox cannot be started on this machine (not the student's fault)."""


class UsageError(GraderError):
    """A command-line mistake; exit code 2."""
