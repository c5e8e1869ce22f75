"""The gradebook on a real SQLite file, and the similarity normaliser: no sandbox needed."""
from __future__ import annotations

from grader.gradebook import Gradebook, apply_overrides_json
from grader.similarity import find_pairs, normalise


def _result(score=1.0):
    return {"schema": 1, "lang": "en", "score": score, "max_score": 3.0, "load_error": None, "items": [
        {"id": "f", "part": "B", "status": "pass" if score else "fail", "points": score, "max_points": 1.0,
         "message": "ok", "hint": None, "mistake": None},
        {"id": "w", "part": "W", "status": "manual", "points": 0.0, "max_points": 2.0,
         "message": "awaiting review", "hint": None, "mistake": None}]}


def test_runs_are_kept_and_the_latest_is_current(tmp_path):
    with Gradebook(tmp_path / "g.sqlite") as book:
        book.add_run("ann", "c1", "r", "v", 0.1, None, {}, _result(0.0))
        book.add_run("ann", "c2", "r", "v", 0.1, None, {}, _result(1.0))
        book.add_run("bob", "c3", "r", "v", 0.1, "could not be loaded: empty", {}, _result(0.0))
        assert [r.content_sha256 for r in book.history("ann")] == ["c1", "c2"]
        assert book.latest()["ann"].score == 1.0
        assert book.fingerprints()["ann"] == ("c2", "r", "v")
    # a second connection (a rerun) sees the same thing: WAL, committed per call
    with Gradebook(tmp_path / "g.sqlite") as book:
        assert book.count_runs() == 3 and book.latest()["bob"].failed.startswith("could not")


def test_latest_manual_score_wins_and_can_be_cleared(tmp_path):
    with Gradebook(tmp_path / "g.sqlite") as book:
        book.add_run("ann", "c", "r", "v", 0.1, None, {}, _result())
        book.add_override("ann", "w", 1.0, "first")
        book.add_override("ann", "w", 1.5, "second look")
        book.add_override("ann", "f", 0.5, "hard-coded")
        book.add_override("ann", "f", None, "")
        cur = book.overrides()["ann"]
        assert set(cur) == {"w"} and cur["w"].points == 1.5
        assert book.stale_pages() == {"ann"}
        out = apply_overrides_json(book.latest()["ann"].result, cur)
        w = out["items"][1]
        assert w["points"] == 1.5 and w["status"] == "partial" and "second look" in w["message"]
        assert out["score"] == 2.5


def test_normalise_sees_through_renames_and_layout():
    a = "def f(x, y):\n    total = x + y  # add\n    return torch.relu(total)\n"
    b = "def f(a,b):\n\n    s=a+b\n    return torch.relu( s )\n"
    c = "def f(x, y):\n    return torch.sigmoid(x * y)\n"
    assert normalise(a) == normalise(b)
    assert normalise(a) != normalise(c)


def test_pairs_found_on_own_code_only():
    body = "\n".join(f"    acc{i} = boxes[:, {i}] * scale + offset{i}" for i in range(8))
    renamed = body.replace("acc", "tmp").replace("offset", "shift")
    other = "\n".join(f"    w{i} = torch.clamp(scores[{i}], min=0) - {i}" for i in range(8))
    pairs, n = find_pairs({"ann": {"def f": body}, "bob": {"def f": renamed}, "cy": {"def f": other}})
    assert n == 1 and (pairs[0].a, pairs[0].b) == ("ann", "bob") and pairs[0].similarity == 1.0


def test_pairs_of_copies_shared_by_many():
    """Identical copies are compared once as a group; every pair of the class is still listed,
    each as (smaller, larger) with its own students' code."""
    body = "\n".join(f"    acc{i} = boxes[:, {i}] * scale + offset{i}" for i in range(12))
    near = body + "\n    acc0 = acc0 + 1"                      # a copy with one line added
    codes = {"zed": {"def f": body}, "amy": {"def f": body.replace("acc", "t")}, "bob": {"def f": near}}
    pairs, n = find_pairs(codes)
    got = {(p.a, p.b): p.similarity for p in pairs}
    assert n == 3 and set(got) == {("amy", "zed"), ("amy", "bob"), ("bob", "zed")}
    assert got[("amy", "zed")] == 1.0 and 0.9 <= got[("amy", "bob")] == got[("bob", "zed")] < 1.0
    bz = next(p for p in pairs if (p.a, p.b) == ("bob", "zed"))
    assert bz.regions[0][1] == near and bz.regions[0][2] == body
    assert [(p.a, p.b) for p in pairs][0] == ("amy", "zed")


def test_a_class_is_held_brief_and_exported_whole(tmp_path):
    """The CSV and the summary read each student's scores, not their cases: the grades held for a
    whole class are brief (a batch of 2000 held 300 MB of cases), and the results files are whole,
    manual scores applied."""
    import csv
    import json
    from grader.exports import write_all
    whole = _result(1.0)
    whole["items"][0]["cases"] = [{"case_id": "c1", "passed": True, "max_abs": 0.0}]
    whole["items"][1]["answer"] = "a long written answer"
    whole["run"] = {"cells": [{"cell": 1, "status": "ok"}]}
    with Gradebook(tmp_path / "g.sqlite") as book:
        book.add_run("ann", "c", "r", "v", 0.1, None, {}, whole)
        book.add_override("ann", "w", 1.5, "good")
        grades = write_all(tmp_path, book, ["f", "w"])
    held = grades["ann"].result
    assert "run" not in held and all("cases" not in i and "answer" not in i for i in held["items"])
    assert held["score"] == 2.5 and held["items"][1]["manual"] == {"points": 1.5, "comment": "good"}
    written = json.loads((tmp_path / "results" / "ann.json").read_text(encoding="utf-8"))
    assert written["items"][0]["cases"] == whole["items"][0]["cases"] and written["run"] == whole["run"]
    assert written["items"][1]["answer"] == "a long written answer" and written["score"] == 2.5
    rows = list(csv.reader(open(tmp_path / "grades.csv", encoding="utf-8")))
    assert rows[1] == ["ann", "1", "1.5", "2.5", "3", "graded", "w: good"]
