"""The review app's HTTP server: the standard library's ThreadingHTTPServer, a handful of fixed
routes, pages from jinja2 templates (autoescaped) and one JSON write, `POST /api/score`.

Why the standard library: the app has four routes, one JSON body and a few TAs as users; the
gradebook is SQLite on the same disk. A framework (Starlette, FastAPI with uvicorn) would add an
ASGI server and several packages for routing we write in twenty lines, and nothing we need is
missing: a thread per request, HTTP/1.1 keep-alive, headers we set ourselves. A score is committed
in the request; the pages and exports it changes are drawn by one background thread (`refresh`).

Safety:
- It listens on 127.0.0.1 unless `--host` says otherwise. Every write needs the token printed with
  the URL (a page on another site cannot know it, so it cannot score through the TA's browser);
  away from loopback every read needs it too. On loopback the Host header must name the server,
  so a site that rebinds its DNS name to 127.0.0.1 reads nothing.
- Answers reach the page only through autoescaped templates, and a Content-Security-Policy lets
  only the page's own script (by nonce) run: an answer holding `<script>` is shown as text.
- No part of a request names a file: students and questions are looked up among the gradebook's.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import signal
import socket
import sys
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from ..errors import UsageError
from ..gradebook import Gradebook, ScoreChange
from ..redraw import open_batch
from ..review import score_problem
from ..templating import template
from .refresh import Refresher
from .text import words
from .views import Batch, index_view, question_view, score_json, student_view

MAX_BODY = 256 * 1024          # a group of a thousand answers with a long comment fits many times over
MAX_COMMENT, MAX_AUTHOR = 4000, 80


class ReviewServer(ThreadingHTTPServer):
    daemon_threads = True       # a TA's open keep-alive connection never holds up Ctrl-C

    def __init__(self, out: Path, host: str, port: int):
        self.out = out
        self.token = secrets.token_urlsafe(24)
        self.loopback = is_loopback(host)
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), ReviewHandler)
        self.host, self.port = host, self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}/?token={self.token}"
        self.hosts = {f"{shown}:{self.port}", f"localhost:{self.port}", f"127.0.0.1:{self.port}", f"[::1]:{self.port}"}
        self.refresher = Refresher(out)

    def server_close(self):
        super().server_close()
        self.refresher.stop()         # the pages and exports of the last scores, before exiting

    def book(self) -> Gradebook:
        # one connection per request: sqlite3 connections are not shared across threads here
        return Gradebook(self.out / "gradebook.sqlite")


def is_loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback
                   for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


def start(out_dir, host: str = "127.0.0.1", port: int = 8765) -> ReviewServer:
    """A review server on the batch's output folder, listening but not yet serving."""
    out = Path(out_dir)
    open_batch(out).close()          # the gradebook must exist: the same message as review and redraw
    words("预热")                      # jieba loads its dictionary now, not during the first page
    try:
        return ReviewServer(out, host, port)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port} ({e.strerror or e}); pass another --port "
                         "(--port 0 takes any free one)") from None


def serve(out_dir, host: str = "127.0.0.1", port: int = 8765) -> int:
    server = start(out_dir, host, port)
    print(f"Reviewing {server.out} at {server.url}", flush=True)
    if not server.loopback:
        print(f"Listening on {host}, reachable from other machines: share the whole URL (its token) only "
              "with the teaching assistants", flush=True)
    print("Ctrl-C stops the server.", flush=True)

    def stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)       # `kill` ends it as Ctrl-C does: the last scores' pages drawn
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


class ReviewHandler(BaseHTTPRequestHandler):
    server: ReviewServer
    protocol_version = "HTTP/1.1"
    server_version = "grade-review"
    sys_version = ""

    # -- routing -------------------------------------------------------------------------------
    def do_GET(self):
        self._guarded(write=False)

    def do_POST(self):
        self._guarded(write=True)

    def _guarded(self, write: bool):
        try:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if self.server.loopback and self.headers.get("Host", "") not in self.server.hosts:
                return self._error(HTTPStatus.MISDIRECTED_REQUEST, "this server answers to 127.0.0.1 and localhost only")
            token = self.headers.get("X-Review-Token") or (query.get("token") or [""])[0]
            valid = hmac.compare_digest(token.encode(), self.server.token.encode())
            if (write or not self.server.loopback) and not valid:
                return self._error(HTTPStatus.FORBIDDEN, "missing or wrong token: open the URL the server printed "
                                   "(it ends in ?token=...)")
            parts = [unquote(p) for p in url.path.split("/")[1:]]
            if write:
                return self._score() if parts == ["api", "score"] else self._error(HTTPStatus.NOT_FOUND, "no such action")
            return self._page(parts, token if valid else "")
        except (BrokenPipeError, ConnectionResetError):
            return                   # the browser went away (a reload mid-answer): nobody to tell
        except Exception:            # a bug of ours: the TA sees a plain 500, the console the traceback
            traceback.print_exc(file=sys.stderr)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "the review server failed; see its console")

    def _page(self, parts: list[str], token: str):
        if parts == ["favicon.ico"]:
            return self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")
        with self.server.book() as book:
            batch = Batch(book)
            if parts in ([""], []):
                return self._render("review_index.html.j2", index_view(batch), token)
            if len(parts) == 2 and parts[0] == "q":
                q = batch.question(parts[1])
                if q is None:
                    known = ", ".join(x.id for x in batch.questions)
                    return self._error(HTTPStatus.NOT_FOUND, f"no written question {parts[1]!r}; the questions are {known}")
                return self._render("review_question.html.j2", question_view(batch, q), token)
            if len(parts) == 2 and parts[0] == "s":
                if parts[1] not in batch.rubrics:
                    return self._error(HTTPStatus.NOT_FOUND, f"no graded submission for student {parts[1]!r}")
                return self._render("review_student.html.j2",
                                    student_view(batch, parts[1], book.score_history(parts[1])), token)
        return self._error(HTTPStatus.NOT_FOUND, "no such page")

    # -- the one write ---------------------------------------------------------------------------
    def _score(self):
        """{item, points (null clears), comment, author, members: [{student, seen}]} -> what was
        recorded, what was not (someone scored it since `seen`), and the question's progress."""
        if self.headers.get_content_type() != "application/json":
            return self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the score as application/json")
        declared = self.headers.get("Content-Length", "")
        length = int(declared) if declared.isdigit() else 0
        if not 0 < length <= MAX_BODY:
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a score request holds 1 to {MAX_BODY} bytes")
        try:
            body = json.loads(self.rfile.read(length))
            item, points, members = body["item"], body["points"], body["members"]
            comment = str(body.get("comment") or "")[:MAX_COMMENT]
            author = " ".join(str(body.get("author") or "").split())[:MAX_AUTHOR]
            pairs = [(str(m["student"]), int(m["seen"])) for m in members]
        except (ValueError, KeyError, TypeError):
            return self._error(HTTPStatus.BAD_REQUEST, "expected {item, points, comment, author, members: [{student, seen}]}")
        author = author or f"anonymous at {self.client_address[0]}"
        with self.server.book() as book:
            batch = Batch(book)
            if batch.question(item) is None or not pairs:
                return self._error(HTTPStatus.BAD_REQUEST, f"no written question {item!r}, or no answer to score")
            problems = [p for s, _ in pairs if (p := score_problem(batch.run(s), s, item, points))]
            if problems:
                return self._error(HTTPStatus.BAD_REQUEST, "nothing was recorded: " + "; ".join(problems))
            changes = [ScoreChange(s, item, None if points is None else float(points), comment, author, seen)
                       for s, seen in pairs]
            # one transaction checks each answer's `seen` and writes: SQLite orders concurrent writers
            recorded, conflicts = book.add_overrides(changes)
            self.server.refresher.touch(o.student for o in recorded)
            batch.heads.update(((o.student, o.item), o) for o in recorded)
            progress = batch.progress(item)
        answer = {"recorded": [score_json(o) for o in recorded],
                  "conflicts": [{"student": c.change.student, "current": score_json(c.current)} for c in conflicts],
                  "progress": progress}
        self._send(HTTPStatus.CONFLICT if conflicts else HTTPStatus.OK,
                   json.dumps(answer, ensure_ascii=False).encode(), "application/json")

    # -- responses -------------------------------------------------------------------------------
    def _render(self, name: str, data: dict, token: str):
        nonce = secrets.token_urlsafe(16)

        def href(*segments: str) -> str:
            path = "/" + "/".join(quote(s, safe="") for s in segments)
            return path + (f"?token={quote(token)}" if token else "")

        html = template(name).render(**data, token=token, nonce=nonce, href=href)
        self._send(HTTPStatus.OK, html.encode(), "text/html; charset=utf-8", nonce)

    def _error(self, status: HTTPStatus, message: str):
        if self.command == "POST":
            # the body may be unread: this connection's next request could not be told from it
            self.close_connection = True
            return self._send(status, json.dumps({"error": message}).encode(), "application/json")
        nonce = secrets.token_urlsafe(16)
        html = template("review_error.html.j2").render(title=f"{status.value} {status.phrase}", message=message,
                                                        nonce=nonce, token="", href=lambda *s: "/")
        self._send(status, html.encode(), "text/html; charset=utf-8", nonce)

    def _send(self, status: HTTPStatus, body: bytes, kind: str, nonce: str = ""):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")      # the token in the URL stays here
        script = f"'nonce-{nonce}'" if nonce else "'none'"
        self.send_header("Content-Security-Policy", f"default-src 'none'; script-src {script}; "
                         f"style-src {script}; connect-src 'self'; form-action 'none'; base-uri 'none'; "
                         "frame-ancestors 'none'")
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code="-", size="-"):
        # one line per write on the console, not per page, and never a URL's query (the token)
        if self.command == "POST":
            sys.stderr.write(f"{self.address_string()} POST {urlsplit(self.path).path} {int(code)}\n")

    def log_message(self, format, *args):       # noqa: A002 (the standard library's name)
        pass      # the standard library's own lines quote the request line, token included
