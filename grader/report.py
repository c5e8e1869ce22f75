"""Present a `GradeResult`: the JSON result (schema 1) and the concise terminal table."""
from __future__ import annotations

import math

import torch

from .model import CaseCheck, CellRun, ErrorInfo, GradeResult, ItemResult

SCHEMA = 1
MAX_LISTED = 256       # tensors larger than this are summarised, not listed, in JSON


def to_json(result: GradeResult, lang: str) -> dict:
    run = result.run
    return {
        "schema": SCHEMA,
        "submission": result.submission.path,
        "student": result.submission.student,
        "sha256": result.submission.sha256,
        "rubric": result.rubric_path,
        "assignment": result.assignment,
        "lang": lang,
        "score": result.score,
        "max_score": result.max_score,
        "load_error": result.load_error(lang) if result.load_error else None,
        "items": [_item(i, lang) for i in result.items],
        "run": None if run is None else {
            "sandbox": run.sandbox, "seconds": round(run.seconds, 4), "student_seconds": round(run.student_seconds, 4),
            "limit_hit": run.limit_hit, "cells": [_cell(c) for c in run.cells], "notes": list(run.notes),
            "skipped": [t(lang) for t in (result.layout.skipped if result.layout else ())],
            "load_notes": [t(lang) for t in result.submission.notes]},
        "environment": result.environment,
    }


def _item(i: ItemResult, lang: str) -> dict:
    return {"id": i.id, "part": i.part, "status": i.status, "points": i.points, "max_points": i.max_points,
            "message": i.message(lang), "hint": i.hint(lang) if i.hint else None, "mistake": i.mistake,
            "answer": i.answer, "cases": [_case(c, lang) for c in i.cases]}


def _case(c: CaseCheck, lang: str) -> dict:
    return {"id": c.case_id, "run": c.run, "public": c.public, "passed": c.passed, "message": c.message(lang),
            "about": c.about(lang) if c.about else None, "mistake": c.mistake,
            "max_abs_error": _num(c.max_abs), "max_rel_error": _num(c.max_rel),
            "where": list(c.where) if c.where else None, "n_diff": c.n_diff,
            # The values of a failing case only: a passing one's are the reference's within
            # tolerance, the same for every student, and were 90% of every stored result.
            "expected": None if c.passed else plain(c.expected), "got": None if c.passed else plain(c.got)}


def _cell(c: CellRun) -> dict:
    return {"cell": c.cell, "block": c.block, "run": c.run, "status": c.status, "seconds": round(c.seconds, 5),
            "stdout": c.stdout, "stderr": c.stderr, "truncated": c.truncated, "note": c.note,
            "error": _error(c.error)}


def _error(e: ErrorInfo | None) -> dict | None:
    if e is None:
        return None
    return {"type": e.type, "message": e.message, "traceback": e.traceback, "cell": e.cell, "line": e.line,
            "source_line": e.source_line, "caret": e.caret}


def _num(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def plain(x):
    """JSON-safe form of a value: small tensors as nested lists, larger ones summarised."""
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    if isinstance(x, torch.Tensor):
        if x.numel() > MAX_LISTED:
            return {"shape": list(x.shape), "dtype": str(x.dtype).replace("torch.", "")}
        values = x.tolist()
        # Walking the nested lists is the slow part of a result's JSON: only a tensor that holds a
        # NaN or an infinity needs it (JSON has no spelling for them).
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            values = _finite(values)
        return {"shape": list(x.shape), "dtype": str(x.dtype).replace("torch.", ""), "values": values}
    if isinstance(x, (tuple, list)):
        return [plain(v) for v in x]
    return str(x)


def _finite(v):
    if isinstance(v, list):
        return [_finite(i) for i in v]
    return v if not isinstance(v, float) or math.isfinite(v) else str(v)


_MARK = {"pass": "✓", "partial": "~", "fail": "✗", "error": "!", "missing": "·", "manual": "✎"}


def table(result: GradeResult, lang: str) -> str:
    """The terminal view: one line per item, then what the instructor must know about the run."""
    rows = [f"{result.submission.student}  ({result.submission.path})"]
    if result.load_error:
        rows.append(("无法读取：" if lang == "zh" else "could not be read: ") + result.load_error(lang))
    width = max((len(i.id) for i in result.items), default=4)
    for i in result.items:
        msg = i.message(lang).replace("\n", " ")
        if i.hint:
            msg += "  → " + i.hint(lang).replace("\n", " ")
        rows.append(f" {_MARK.get(i.status, '?')} {i.id:<{width}}  {i.status:<7} {i.points:>5.2f}/{i.max_points:<5.2f} {msg[:150]}")
    rows.append(f" {'score' if lang == 'en' else '得分'}: {result.score:g} / {result.max_score:g}")
    if result.run is not None:
        if result.run.limit_hit:
            rows.append(f" limit: {result.run.limit_hit}")
        for n in result.run.notes:
            rows.append(f" note: {n[:200]}")
        rows.append(f" {result.run.sandbox} sandbox, {result.run.seconds:.2f} s")
    return "\n".join(rows)
