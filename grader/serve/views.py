"""What each page of the review app shows, read from the gradebook: plain dicts and lists for the
templates (which escape everything), nothing written. One `Batch` per request: it reads every
answer's latest manual score once, and the students' stored results only when a page shows them
(parsing them all takes a third of a second for 200 students: a score does without)."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from functools import cached_property

from ..gradebook import Gradebook, Override, apply_overrides_json
from ..redraw import Snapshots
from .groups import Answer, Group, analyse, group_answers
from .text import ConceptFinder, segments

GROUP_TITLES = {"empty": "No answer", "identical": "Identical answers", "similar": "Near-identical answers"}


@dataclass(frozen=True)
class Question:
    id: str
    title: str
    text: str                # the question itself, in the batch's language ("" when unknown)
    concepts: tuple          # rubric.Concept, () when the gradebook has no rubric snapshot


class Batch:
    def __init__(self, book: Gradebook):
        self.book = book
        self.rubrics = {s: r for s, (_, r, _) in book.fingerprints().items()}     # student -> rubric key, no JSON parsed
        self.heads = book.override_heads()
        self.snapshots = Snapshots(book)
        # the class's rubric: the one most of its current runs were graded with
        key = Counter(self.rubrics.values()).most_common(1)[0][0] if self.rubrics else None
        snap = self.snapshots.get(key) if key else None
        self.rubric = snap[0] if snap is not None else None
        one = self.run(next(iter(self.rubrics))) if self.rubrics else None
        self.lang = (one.result.get("lang") if one else None) or (self.rubric.lang if self.rubric else "en")
        self.questions = self._questions()

    @cached_property
    def runs(self) -> dict:
        """student -> current run, every student's result parsed."""
        return self.book.latest()

    def run(self, student: str):
        """One student's current run (None: no such student), without parsing the others'."""
        if "runs" in self.__dict__:
            return self.runs.get(student)
        return self.book.latest(student).get(student)

    def _questions(self) -> list[Question]:
        if self.rubric is not None:
            return [Question(i.id, i.title(self.lang), i.question(self.lang) if i.question else "", i.concepts)
                    for i in self.rubric.items if i.kind == "written"]
        # a gradebook without its rubric: the items some student's answer awaits review for
        seen = dict.fromkeys(i["id"] for r in self.runs.values() for i in r.result["items"] if i["status"] == "manual")
        return [Question(q, q, "", ()) for q in seen]

    def question(self, item: str) -> Question | None:
        return next((q for q in self.questions if q.id == item), None)

    def item_result(self, student: str, item: str) -> dict | None:
        run = self.run(student)
        return None if run is None else next((i for i in run.result["items"] if i["id"] == item), None)

    def progress(self, item: str) -> dict:
        """How many of the answers to a question carry a manual score, of how many: the students
        graded with a rubric that asks it (every item of a rubric is in each of its results)."""
        asks = {}
        for key in set(self.rubrics.values()):
            snap = self.snapshots.get(key)
            asks[key] = snap is None or any(i.id == item for i in snap[0].items)
        students = [s for s, key in self.rubrics.items() if asks[key]]
        if any(self.snapshots.get(k) is None for k in asks):       # no rubric to tell by: look at the results
            students = [s for s in students if self.item_result(s, item) is not None]
        graded = sum(1 for s in students if _scored(self.heads.get((s, item))))
        return {"graded": graded, "total": len(students)}


def _scored(head: Override | None) -> bool:
    return head is not None and head.points is not None


def when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def score_json(o: Override | None) -> dict | None:
    """A manual score as the page's script receives it."""
    if o is None:
        return None
    return {"id": o.id, "student": o.student, "item": o.item, "points": o.points, "comment": o.comment,
            "author": o.author, "at": when(o.created_at), "old_points": o.old_points}


def _card(batch: Batch, q: Question, a: Answer, result: dict) -> dict:
    head = batch.heads.get((a.student, q.id))
    return {"student": a.student, "item": q.id, "empty": a.empty, "segments": segments(a.text, a.matches),
            "max_points": result["max_points"], "seen": head.id if head else 0,
            "score": score_json(head) if _scored(head) else None, "concepts": a.concepts}


def _group_title(g: Group, labels: list[str]) -> str:
    if g.kind in GROUP_TITLES:
        return GROUP_TITLES[g.kind]
    return "Mentions " + " · ".join(labels[c] for c in g.concepts) if g.concepts else "Mentions none of the concepts"


def index_view(batch: Batch) -> dict:
    questions = [{"id": q.id, "title": q.title, **batch.progress(q.id)} for q in batch.questions]
    students = []
    for s, run in batch.runs.items():
        mine = [q.id for q in batch.questions if batch.item_result(s, q.id) is not None]
        students.append({"student": s, "failed": run.failed, "answers": len(mine),
                         "graded": sum(1 for q in mine if _scored(batch.heads.get((s, q))))})
    return {"title": "Written answers", "questions": questions, "students": students}


def question_view(batch: Batch, q: Question) -> dict:
    finder = ConceptFinder(q.concepts)
    results = {s: batch.item_result(s, q.id) for s in batch.runs}
    answers = [analyse(s, r.get("answer"), finder) for s, r in results.items() if r is not None]
    labels = [c.label for c in q.concepts]
    groups = [{"key": g.key, "kind": g.kind, "title": _group_title(g, labels), "concepts": g.concepts,
               "cards": [_card(batch, q, a, results[a.student]) for a in g.members]}
              for g in group_answers(answers)]
    ids = [x.id for x in batch.questions]
    at = ids.index(q.id)
    return {"title": q.title, "question": q, "labels": labels, "groups": groups, "progress": batch.progress(q.id),
            "prev": ids[at - 1] if at > 0 else None, "next": ids[at + 1] if at + 1 < len(ids) else None}


def student_view(batch: Batch, student: str, history: list[Override]) -> dict:
    """A student's written answers, each with its scoring, beside their automatically graded items
    (manual scores laid over, as the student's page shows them). `history`: their manual scores."""
    run = batch.run(student)
    shown = apply_overrides_json(run.result, {k[1]: o for k, o in batch.heads.items()
                                              if k[0] == student and _scored(o)})
    written = []
    for q in batch.questions:
        result = batch.item_result(student, q.id)
        if result is None:
            continue
        a = analyse(student, result.get("answer"), ConceptFinder(q.concepts))
        written.append({"question": q, "labels": [c.label for c in q.concepts],
                        "card": _card(batch, q, a, result),
                        "history": [score_json(o) for o in history if o.item == q.id]})
    asked = {q.id for q in batch.questions}
    auto = [{"id": i["id"], "status": i["status"], "points": i["points"], "max_points": i["max_points"],
             "message": i["message"]} for i in shown["items"] if i["id"] not in asked]
    names = sorted(batch.rubrics)
    at = names.index(student)
    return {"title": student, "student": student, "failed": run.failed, "written": written, "auto": auto,
            "score": shown["score"], "max_score": shown["max_score"],
            "prev": names[at - 1] if at > 0 else None, "next": names[at + 1] if at + 1 < len(names) else None}
