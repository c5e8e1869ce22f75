"""What follows a score in the review app: the students' feedback pages, grades.csv, the Gradescope
export and the summary, drawn again from the gradebook (`review.show_scores`) by one thread.

Why a thread: drawing them again reads every student's stored result (the CSV and the summary are
the class's), about a second for 200 students, while committing a score takes milliseconds. A TA
pressing a digit per answer would wait that second each time; instead the score is committed and
answered at once, and the files follow within about a second, several scores' worth at a time.
One thread also means two TAs' scores never redraw grades.csv at the same moment. On shutdown
(Ctrl-C, SIGTERM) what is still pending is drawn before the server exits.
"""
from __future__ import annotations

import sys
import threading
import traceback
from pathlib import Path

from ..gradebook import Gradebook
from ..review import show_scores


class Refresher:
    def __init__(self, out: Path):
        self.out = out
        self._pending: set[str] = set()
        self._busy = False
        self._stopping = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="review-refresh", daemon=True)
        self._thread.start()

    def touch(self, students) -> None:
        """These students' manual scores changed: draw what shows them again, soon."""
        with self._changed:
            self._pending |= set(students)
            self._changed.notify_all()

    def pending(self) -> int:
        """Students whose pages and exports are still to be drawn (0: everything is up to date)."""
        with self._changed:
            return len(self._pending) + (1 if self._busy else 0)

    def stop(self, timeout: float = 120.0) -> None:
        """Draw what is pending, then end the thread."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._stopping:
                    self._changed.wait()
                if not self._pending:
                    return
                students, self._pending, self._busy = self._pending, set(), True
            try:
                with Gradebook(self.out / "gradebook.sqlite") as book:
                    show_scores(self.out, book, students)
            except Exception:       # a bug, or a full disk: the scores are committed; say so and go on
                traceback.print_exc(file=sys.stderr)
                print(f"the pages of {', '.join(sorted(students))} were not drawn again; "
                      f"`grade.py redraw {self.out}` draws them from the gradebook", file=sys.stderr)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()
