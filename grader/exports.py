"""What a batch hands back, built from the gradebook alone (the current grade of every student, manual
scores included): results/<student>.json, grades.csv, gradescope/<student>/results.json and the data
of summary.html. Built from stored JSON, so `review` can refresh them without grading anything.
"""
from __future__ import annotations

import csv
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .gradebook import Gradebook, Run, apply_overrides_json

# Gradescope's documented visibilities are visible | hidden | after_due_date | after_published;
# the hidden-seed checks are for the grade, not for students to fish for before the deadline.
GRADESCOPE_VISIBILITY = "after_published"


@dataclass(frozen=True)
class Current:
    """One student's current grade: the latest run with manual scores laid over it."""
    run: Run
    result: dict                     # JSON schema 1, manual scores applied; `brief` (no cases)


def brief(result: dict) -> dict:
    """What the CSV and the summary read of a result: its scores and items, without the items'
    cases and answers or the run's cells. A class's grades are held together (a whole result is
    ~160 KB in memory, its brief ~25 KB): a batch of 2000 held 300 MB of cases it never read."""
    return {**{k: v for k, v in result.items() if k != "run"},
            "items": [{k: v for k, v in i.items() if k not in ("cases", "answer")} for i in result["items"]]}


def current(book: Gradebook, students: set[str] | None = None, known: dict | None = None) -> dict[str, Current]:
    """Every student's current grade, brief (`brief`): the results' files hold them whole."""
    runs = book.latest(known=known, keep=brief)
    overrides = book.overrides()
    return {s: Current(r, apply_overrides_json(r.result, overrides.get(s, {})))
            for s, r in runs.items() if students is None or s in students}


def write_atomic(path: Path, text: str) -> None:
    # Write then rename: a crash mid-write leaves the old file, never half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def encode(data) -> str:
    # Compact on purpose: with `indent` the json module falls back to its pure-Python encoder, which
    # cost a batch ~30 ms per student on results that hold tensors as nested lists.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def write_csv(out: Path, grades: dict[str, Current], item_ids: list[str]) -> Path:
    """student, one column per item, total, max, and the manual-score comments (so a spreadsheet
    shows why a score is not the grader's)."""
    path = out / "grades.csv"
    tmp = path.with_name("grades.csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student", *item_ids, "total", "max", "status", "manual"])
        for s in sorted(grades):
            r = grades[s].result
            pts = {i["id"]: i["points"] for i in r["items"]}
            manual = "; ".join(f"{i['id']}: {i['manual']['comment']}" for i in r["items"] if i.get("manual"))
            w.writerow([s, *(_num(pts.get(i, "")) for i in item_ids), _num(r["score"]), _num(r["max_score"]),
                        grades[s].run.failed or "graded", manual])
    os.replace(tmp, path)
    return path


def _num(x):
    return f"{x:g}" if isinstance(x, float) else x


def gradescope(result: dict, seconds: float) -> dict:
    """Gradescope's autograder results format: top-level score/execution_time/output/visibility and
    one test per rubric item with score, max_score, status, name, number, output, visibility."""
    tests = []
    for n, it in enumerate(result["items"], 1):
        out = it["message"] + (f"\n{it['hint']}" if it.get("hint") else "")
        tests.append({"score": it["points"], "max_score": it["max_points"],
                      "status": "passed" if it["points"] >= it["max_points"] else "failed",
                      "name": f"{it['part']}: {it['id']}", "number": str(n), "output": out,
                      "tags": [it["status"]] + ([it["mistake"]] if it.get("mistake") else []),
                      "visibility": "visible"})
    return {"score": result["score"], "execution_time": round(seconds, 3),
            "output": result["load_error"] or "", "visibility": "visible",
            "stdout_visibility": "hidden", "tests": tests}


def write_student(out: Path, student: str, result: dict, seconds: float, text: str | None = None) -> None:
    """One student's exports: results/<student>.json (`text`: `result` already serialised by
    `encode`) and gradescope/<student>/results.json."""
    write_atomic(out / "results" / f"{student}.json", text or encode(result))
    write_atomic(out / "gradescope" / student / "results.json", encode(gradescope(result, seconds)))


def write_all(out: Path, book: Gradebook, item_ids: list[str], students: set[str] | None = None,
              known: dict | None = None) -> dict[str, Current]:
    """Refresh every export of the given students (all when None) and the CSV; returns all grades,
    brief. `known`: student -> Run the caller has in hand, brief (see Gradebook.latest)."""
    grades = current(book, known=known)
    overrides = book.overrides()
    for s in sorted(grades if students is None else students & grades.keys()):
        run = book.latest(s)[s]      # whole, one at a time
        write_student(out, s, apply_overrides_json(run.result, overrides.get(s, {})), run.seconds)
    write_csv(out, grades, item_ids)
    return grades


# -- the summary page's data (the template only lays it out) --------------------------------------
def summary_data(grades: dict[str, Current], rubric, lang: str, pairs, n_pairs: int, errors: dict[str, str],
                 pages: set[str]) -> dict:
    results = [c.result for c in grades.values()]
    maxs = max((r["max_score"] for r in results), default=rubric_max(rubric)) or 1.0
    bins = 10
    hist = [0] * bins
    for r in results:
        hist[min(bins - 1, int(r["score"] / maxs * bins))] += 1
    top = max(hist, default=0) or 1
    histogram = [{"label": f"{maxs * i / bins:g}–{maxs * (i + 1) / bins:g}", "count": c, "pct": round(100 * c / top)}
                 for i, c in enumerate(hist)]
    items = []
    for it in rubric.items:
        got = [i for r in results for i in r["items"] if i["id"] == it.id]
        passed = sum(i["status"] == "pass" for i in got)
        # Written answers are never "passed" by the grader: count the answers handed in instead.
        answered = sum(i["status"] == "manual" or bool(i.get("manual")) for i in got)
        items.append({"id": it.id, "title": it.title(lang), "points": it.points, "n": len(got), "passed": passed,
                      "written": it.kind == "written", "answered": answered,
                      "rate": round(100 * passed / len(got)) if got else 0,
                      "mean": round(sum(i["points"] for i in got) / len(got), 2) if got else 0})
    mistakes = Counter((i["id"], i["mistake"]) for r in results for i in r["items"] if i.get("mistake"))
    trouble = [{"student": s, "why": c.run.failed} for s, c in sorted(grades.items()) if c.run.failed]
    trouble += [{"student": s, "why": f"grader error: {e}"} for s, e in sorted(errors.items())]
    slowest = sorted(grades.items(), key=lambda kv: -kv[1].run.seconds)[:10]
    return {
        "title": rubric.title(lang), "lang": lang, "n": len(results),
        "mean": round(sum(r["score"] for r in results) / len(results), 2) if results else 0,
        "max_score": maxs, "histogram": histogram, "items": items,
        "mistakes": [{"item": i, "mistake": m, "count": n} for (i, m), n in mistakes.most_common(20)],
        "trouble": trouble,
        "slowest": [{"student": s, "seconds": round(c.run.seconds, 2)} for s, c in slowest],
        "students": [{"student": s, "score": c.result["score"], "max": c.result["max_score"],
                      "status": c.run.failed or "graded", "page": f"feedback/{s}.html" if s in pages else None,
                      "json": f"results/{s}.json", "manual": sum(1 for i in c.result["items"] if i.get("manual"))}
                     for s, c in sorted(grades.items())],
        "pairs": [{"a": p.a, "b": p.b, "similarity": round(100 * p.similarity), "tokens": p.tokens,
                   "regions": [{"name": r, "a": ca, "b": cb, "similarity": round(100 * sim)}
                               for r, ca, cb, sim in p.regions]} for p in pairs],
        "n_pairs": n_pairs,
    }


def rubric_max(rubric) -> float:
    return sum(i.points for i in rubric.items)


def pages(out: Path) -> set[str]:
    return {p.name[:-5] for p in (out / "feedback").glob("*.html")}


def render_summary(out: Path, data: dict) -> Path:
    from .templating import template
    path = out / "summary.html"
    write_atomic(path, template("summary.html.j2").render(**data))
    return path
