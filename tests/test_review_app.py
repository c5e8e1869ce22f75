"""The review web app (issue 17), end to end: a real batch graded under the sandbox, the real
`grade.py review OUT --serve` process, real headless Chromium pressing real keys, and the scores
read back from the SQLite file, grades.csv, the Gradescope export and the students' feedback pages.

The class: ann, bob and cy handed in the same script (one group of three identical answers per
question), dan's answer to 1.1 holds a <script>, eve handed in the blank starter (no answers)."""
from __future__ import annotations

import csv
import json
import select
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from browser import Browser, evaluate, press, type_text, wait_for
from helpers import ROOT, RUBRIC, SAMPLES

SCRIPT_SAMPLE = SAMPLES / "008_no_scale_script"
SAME = ["ann", "bob", "cy"]
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> 我不会 RNN'
ANSWER_1_1 = "反向传播时梯度要在时间上连乘很多个矩阵"


@pytest.fixture(scope="module")
def graded_batch(tmp_path_factory):
    from grader.batch import run_batch
    subs = tmp_path_factory.mktemp("subs")
    for name in SAME:
        shutil.copytree(SCRIPT_SAMPLE, subs / name)
    shutil.copytree(SCRIPT_SAMPLE, subs / "dan")
    script = (subs / "dan" / "hw2.py").read_text(encoding="utf-8")
    first = next(line for line in script.splitlines() if ANSWER_1_1 in line)
    (subs / "dan" / "hw2.py").write_text(script.replace(first, "# " + HOSTILE), encoding="utf-8")
    shutil.copytree(SAMPLES / "006_blank_starter", subs / "eve")
    out = tmp_path_factory.mktemp("out")
    sandbox = "bwrap" if shutil.which("bwrap") else "none"
    run_batch(subs, RUBRIC, out, jobs=2, sandbox=sandbox, lang="en", progress=False, timeout=3)
    return out


@pytest.fixture
def out(graded_batch, tmp_path):
    """A fresh copy of the graded batch for each test: they all write scores."""
    copy = tmp_path / "out"
    shutil.copytree(graded_batch, copy)
    return copy


class Server:
    """`grade.py review OUT --serve` as a TA starts it; `url` is the URL it prints."""

    def __init__(self, out, tmp_path, *extra):
        self.log = open(tmp_path / "server.log", "w+")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "grade.py"), "review", str(out), "--serve",
                                      "--port", "0", *extra], stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     cwd=ROOT)
        if not select.select([self.proc.stdout], [], [], 60)[0]:
            self.close()
            raise TimeoutError("the review server printed no URL in 60 s")
        first = self.proc.stdout.readline()
        assert first.startswith("Reviewing "), first + self._stderr()
        self.url = first.split(" at ")[1].strip()
        self.base, self.token = self.url.split("/?token=")

    def page(self, path: str, token: bool = True) -> str:
        return f"{self.base}{path}" + (f"?token={self.token}" if token else "")

    def _stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        print("review server's console:\n" + self._stderr())     # shown by pytest when a test fails
        self.proc.stdout.close()
        self.log.close()


@pytest.fixture
def server(out, tmp_path):
    s = Server(out, tmp_path)
    yield s
    s.close()


@pytest.fixture
def browser(tmp_path):
    with Browser(tmp_path / "profile-1") as b:
        yield b


def overrides(out, item):
    with sqlite3.connect(out / "gradebook.sqlite") as db:
        return db.execute("SELECT student, points, comment, author, old_points FROM overrides WHERE item = ? "
                          "ORDER BY id", (item,)).fetchall()


def csv_rows(out):
    with open(out / "grades.csv", encoding="utf-8") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


def csv_shows(out, item: str, points: dict[str, str]) -> None:
    rows = csv_rows(out)
    assert {s: rows[s][item] for s in points} == points


def eventually(check, timeout: float = 30.0):
    """`check` passes within the timeout: the server draws the pages and exports that follow a score
    in its own thread, a moment after it has answered (the score itself is committed by then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, KeyError, IndexError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def card(student: str) -> str:
    return f'document.querySelector(\'article.answer[data-student="{student}"]\')'


def settled_status(b) -> str:
    """The status line once the page has its answer from the server."""
    return wait_for(b, "(t => t && t !== 'saving…' && t)(document.getElementById('status').textContent)")


def students_in_group(b, title_start: str) -> list[str]:
    return evaluate(b, f"""Array.from(document.querySelectorAll('section.group')).filter(
        g => g.querySelector('h2').textContent.startsWith({json.dumps(title_start)})).map(
        g => Array.from(g.querySelectorAll('article.answer')).map(a => a.dataset.student))""")


# --- in the browser -----------------------------------------------------------------------------
def test_score_a_group_of_three_then_one_member_alone(out, server, browser):
    before = csv_rows(out)
    runs_before = sqlite3.connect(out / "gradebook.sqlite").execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    b = browser
    b.open(server.page("/q/written.1.1"))
    assert students_in_group(b, "No answer") == [["eve"]]
    assert students_in_group(b, "Identical answers") == [SAME]
    assert evaluate(b, "document.querySelector('#progress').textContent.replace(/\\s+/g, ' ').trim()") == "0 / 5 graded"
    # the concepts are highlighted in the answer's text
    marks = evaluate(b, f"Array.from({card('ann')}.querySelectorAll('mark')).map(m => m.textContent)")
    assert "连乘" in marks
    evaluate(b, "document.getElementById('who').focus()")
    type_text(b, "Alice TA")
    group = "Array.from(document.querySelectorAll('section.group')).find(g => g.querySelector('h2').textContent.startsWith('Identical'))"
    evaluate(b, f"{group}.querySelector('header input.points').focus()")
    type_text(b, "1.5")
    evaluate(b, f"{group}.querySelector('header input.comment').focus()")
    type_text(b, "names the repeated product, not why it vanishes")
    press(b, "Enter")                              # points and comment for all three, one action
    assert settled_status(b) == "saved (3)"

    b.open(server.page("/q/written.1.1"))          # reload: what the server holds now
    for s in SAME:
        assert evaluate(b, f"{card(s)}.querySelector('.score').textContent") == "1.5 / 2"
    assert evaluate(b, "document.querySelector('#progress .graded').textContent") == "3"
    assert overrides(out, "written.1.1") == [(s, 1.5, "names the repeated product, not why it vanishes", "Alice TA", None)
                                            for s in SAME]
    def files_show_the_scores():
        after = csv_rows(out)
        for s in SAME:
            assert after[s]["written.1.1"] == "1.5"
            assert float(after[s]["total"]) == float(before[s]["total"]) + 1.5
            page = (out / "feedback" / f"{s}.html").read_text(encoding="utf-8")
            item = page.split('id="item-written.1.1"')[1].split("</article>")[0]
            assert '<span class="badge s-partial">partial</span> <span class="pts">1.5 / 2</span>' in item
            gradescope = json.loads((out / "gradescope" / s / "results.json").read_text(encoding="utf-8"))
            test = next(t for t in gradescope["tests"] if t["name"].endswith("written.1.1"))
            assert test["score"] == 1.5 and gradescope["score"] == float(before[s]["total"]) + 1.5
            assert test["output"] == "Instructor's score 1.5: names the repeated product, not why it vanishes"
        assert after["dan"]["written.1.1"] == before["dan"]["written.1.1"] == "0"
    eventually(files_show_the_scores)

    # keys: the empty answer gets 0 with Shift+0; bob moves out of the group and gets 2 alone
    evaluate(b, f"{card('eve')}.click()")
    press(b, "0", shift=True)
    wait_for(b, f"{card('eve')}.classList.contains('scored')")
    evaluate(b, f"{card('bob')}.click()")
    press(b, "m")
    assert students_in_group(b, "Identical answers") == [["ann", "cy"]]
    assert students_in_group(b, "Moved out") == [["bob"]]
    press(b, "2")
    wait_for(b, f"{card('bob')}.querySelector('.score').textContent === '2 / 2'")
    latest = {s: (p, old) for s, p, _, _, old in overrides(out, "written.1.1")}
    assert latest == {"ann": (1.5, None), "bob": (2.0, 1.5), "cy": (1.5, None), "eve": (0.0, None)}
    eventually(lambda: csv_shows(out, "written.1.1", {"ann": "1.5", "bob": "2", "eve": "0"}))
    b.open(server.page("/q/written.1.1"))          # this browser remembers that bob was moved out
    assert students_in_group(b, "Moved out") == [["bob"]]
    assert evaluate(b, "document.querySelector('#progress .graded').textContent") == "4"
    # scoring ran nobody's code: no run was added
    assert sqlite3.connect(out / "gradebook.sqlite").execute("SELECT COUNT(*) FROM runs").fetchone()[0] == runs_before


def test_a_concurrent_edit_to_the_same_answer_is_reported_not_overwritten(out, server, browser, tmp_path):
    first = browser
    first.open(server.page("/q/written.1.2"))
    with Browser(tmp_path / "profile-2") as second:
        second.open(server.page("/q/written.1.2"))
        evaluate(second, "document.getElementById('who').value = 'Bob TA'")
        evaluate(second, f"{card('ann')}.click()")
        press(second, "1")
        wait_for(second, f"{card('ann')}.classList.contains('scored')")
    # the first browser still shows ann unscored, and scores her 2
    evaluate(first, "document.getElementById('who').value = 'Alice TA'")
    evaluate(first, f"{card('ann')}.click()")
    press(first, "2")
    note = wait_for(first, f"{card('ann')}.querySelector('.note.conflict')?.textContent")
    assert note.startswith("Not saved: Bob TA changed this answer to 1 / 2 at ") and "Yours was 2" in note
    assert evaluate(first, f"{card('ann')}.querySelector('.score').textContent") == "1 / 2"
    assert overrides(out, "written.1.2") == [("ann", 1.0, "", "Bob TA", None)]
    eventually(lambda: csv_shows(out, "written.1.2", {"ann": "1"}))
    # having seen theirs, Save replaces it on purpose, and the history keeps both
    evaluate(first, f"{card('ann')}.querySelector('button.save').click()")
    wait_for(first, f"{card('ann')}.querySelector('.score').textContent === '2 / 2'")
    assert overrides(out, "written.1.2") == [("ann", 1.0, "", "Bob TA", None), ("ann", 2.0, "", "Alice TA", 1.0)]
    eventually(lambda: csv_shows(out, "written.1.2", {"ann": "2"}))


def test_an_answer_holding_a_script_is_shown_as_text_and_never_runs(out, server, browser):
    b = browser
    for path in ("/q/written.1.1", "/s/dan"):
        b.open(server.page(path))
        assert evaluate(b, "typeof window.__pwned") == "undefined"
        assert evaluate(b, f"{card('dan')}.querySelector('.text').textContent").startswith(HOSTILE[:60])
        assert evaluate(b, "document.querySelectorAll('article script, article img').length") == 0
    with urllib.request.urlopen(server.page("/s/dan")) as reply:
        html = reply.read().decode()
        assert "script-src 'nonce-" in reply.headers["Content-Security-Policy"]
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html and "<script>window" not in html


def test_the_student_page_shows_written_answers_beside_the_automatic_results(out, server, browser):
    b = browser
    b.open(server.page("/s/ann"))
    items = evaluate(b, "Array.from(document.querySelectorAll('article.answer')).map(a => a.dataset.item)")
    assert items == ["written.1.1", "written.1.2", "written.1.3", "written.2.2", "written.2.3", "written.3.1",
                     "written.3.2"]
    auto = evaluate(b, "Array.from(document.querySelectorAll('table.auto td:first-child')).map(t => t.textContent)")
    assert "box_iou" in auto and "written.1.1" not in auto
    evaluate(b, f"{card('ann')}.click()")                     # the first card: written.1.1
    press(b, "1")
    wait_for(b, f"{card('ann')}.classList.contains('scored')")
    assert overrides(out, "written.1.1")[0][:2] == ("ann", 1.0)


# --- the token ----------------------------------------------------------------------------------
def _post(url: str, body: dict, token: str | None = None):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              **({"X-Review-Token": token} if token else {})})
    try:
        with urllib.request.urlopen(request) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url) as reply:
            return reply.status
    except urllib.error.HTTPError as e:
        return e.code


def _outward_address() -> str | None:
    """This machine's address on a network (not loopback), if it has one."""
    for probe in ("10.255.255.255", "192.0.2.1", "198.51.100.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.connect((probe, 9))       # UDP: no packet is sent, the route picks the address
            except OSError:
                continue
            address = s.getsockname()[0]
            if not address.startswith("127."):
                return address
    return None


def test_away_from_loopback_every_request_needs_the_token(out, tmp_path, browser):
    address = _outward_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    server = Server(out, tmp_path, "--host", address)
    try:
        assert server.base.startswith(f"http://{address}:")
        score = {"item": "written.1.1", "points": 2, "author": "intruder", "members": [{"student": "ann", "seen": 0}]}
        status, body = _post(f"{server.base}/api/score", score)
        assert status == 403 and "token" in body["error"]
        status, _ = _post(f"{server.base}/api/score", score, token="not-the-token")
        assert status == 403
        assert overrides(out, "written.1.1") == []
        assert _get(server.page("/q/written.1.1", token=False)) == 403
        browser.open(server.page("/", token=False))
        assert "missing or wrong token" in evaluate(browser, "document.body.textContent")
        browser.open(server.page("/q/written.1.1"))
        assert evaluate(browser, "document.querySelectorAll('article.answer').length") == 5
        status, body = _post(f"{server.base}/api/score", score, token=server.token)
        assert status == 200 and [r["student"] for r in body["recorded"]] == ["ann"]
        assert overrides(out, "written.1.1") == [("ann", 2.0, "", "intruder", None)]
    finally:
        server.close()


def test_on_loopback_reads_are_open_but_writes_need_the_token_and_the_host_must_be_ours(out, server):
    assert server.base.startswith("http://127.0.0.1:")
    assert _get(server.page("/q/written.1.1", token=False)) == 200
    status, _ = _post(f"{server.base}/api/score", {"item": "written.1.1", "points": 1,
                                                   "members": [{"student": "ann", "seen": 0}]})
    assert status == 403 and overrides(out, "written.1.1") == []
    rebound = urllib.request.Request(server.page("/"), headers={"Host": "attacker.example:80"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(rebound)
    assert refused.value.code == 421
    # names and paths in a request are looked up, never opened
    assert _get(server.page("/s/..%2F..%2Fgradebook.sqlite")) == 404
    assert _get(f"{server.base}/../grades.csv") == 404
    status, body = _post(f"{server.base}/api/score", {"item": "written.1.1", "points": 3,
                                                      "members": [{"student": "ann", "seen": 0}]}, server.token)
    assert status == 400 and "outside 0..2" in body["error"]


# --- without a browser --------------------------------------------------------------------------
def test_an_older_gradebook_opens_and_keeps_its_manual_scores(tmp_path):
    from grader.gradebook import Gradebook, StaleScore
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:        # the overrides table as gradebooks had it before issue 17
        db.execute("CREATE TABLE overrides (id INTEGER PRIMARY KEY AUTOINCREMENT, student TEXT NOT NULL, "
                   "item TEXT NOT NULL, points REAL, comment TEXT NOT NULL, created_at REAL NOT NULL)")
        db.execute("INSERT INTO overrides (student, item, points, comment, created_at) VALUES ('ann', 'w', 1, 'ok', 0)")
    with Gradebook(path) as book:
        assert book.overrides()["ann"]["w"].points == 1.0 and book.overrides()["ann"]["w"].author == ""
        head = book.override_heads()[("ann", "w")]
        new = book.add_override("ann", "w", 2.0, "better", author="bo", seen=head.id)
        with pytest.raises(StaleScore, match="ann w: scored 2 by bo"):
            book.add_override("ann", "w", 0.5, "", author="cy", seen=head.id)
        assert [(o.points, o.author, o.old_points) for o in book.score_history("ann")] == [(1.0, "", None),
                                                                                          (2.0, "bo", 1.0)]
        assert book.override_heads()[("ann", "w")].id == new


def test_groups_identical_near_identical_empty_and_by_concepts():
    from grader.rubric import load_rubric
    from grader.serve.groups import analyse, group_answers
    from grader.serve.text import ConceptFinder
    finder = ConceptFinder(load_rubric(RUBRIC).item("written.1.2").concepts)
    long = "设置一个阈值,反向传播后如果梯度的范数超过阈值,就把梯度按比例缩小到阈值大小,方向不变,再更新参数,这样可以避免梯度爆炸。"
    answers = {"a": long, "b": long.replace(",", ", "), "c": long.replace("再更新参数", "然后更新参数"),
               "d": "", "e": "   ", "f": "Clip the gradient norm at a threshold.", "g": "Rescale when the norm is large",
               "h": "Clip when the norms exceed a threshold", "i": "不知道"}
    groups = group_answers([analyse(s, t, finder) for s, t in answers.items()])
    got = [(g.kind, [a.student for a in g.members]) for g in groups]
    assert got == [("empty", ["d", "e"]), ("similar", ["a", "b", "c"]), ("concepts", ["f", "h"]),
                   ("concepts", ["g"]), ("concepts", ["i"])]
    assert groups[2].concepts == (0, 1)          # threshold, gradient norm (plural "norms" too)
    assert groups[3].concepts == (1, 2)          # rescale, norm; "normal" would not count


def test_chinese_concepts_are_found_among_words_not_characters():
    from grader.rubric import Concept
    from grader.serve.text import ConceptFinder, words
    finder = ConceptFinder([Concept(("加法",), ("additive",)), Concept(("求和",), ("sum",)), Concept(("池化",), ())])
    found = lambda text: sorted({m.concept for m in finder.find(words(text))})     # noqa: E731
    assert found("增加法则, 要求和谐") == []                  # 加法 and 求和 only as characters across words
    assert found("更新是加法, 然后求和, 用 RoI 池化") == [0, 1, 2]
    assert found("the update is additively combined; a summary") == [0]


def test_the_command_line_listing_shows_the_answers(out):
    from grader.review import review
    listing = str(review(out, item="written.1.1"))
    assert f"ann  written.1.1: awaiting review (0/2)\n    {ANSWER_1_1}" in listing
    assert "eve  written.1.1: no answer (0/2)" in listing
    review(out, student="ann", item="written.1.1", points=1.0, comment="cli")
    assert overrides(out, "written.1.1")[0][3].endswith("(command line)")
