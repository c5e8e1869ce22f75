"""One question's answers in groups that a reviewer can score together, in this order:

1. empty answers (nothing written, or the question not found): one group, scored 0 in one action;
2. identical answers (the same words, whatever the spaces, punctuation or case), then
   near-identical ones (a copy with a few words changed): one group per cluster;
3. every other answer, grouped by the set of the rubric's concepts it mentions, most concepts first.

A group is a suggestion: the page lets the reviewer take any answer out of its group and score it alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .text import ConceptFinder, Match, Word, likeness, shingles, words

# Two answers sharing this much of their neighbouring-word pairs (Jaccard) are near-identical: a
# copied answer with one word in ten changed still is (≈ 0.8), two students' own words about the
# same idea are far below (≈ 0.1-0.3 on the bundled samples).
NEAR = 0.7
# Too short to call alike by shared word pairs ("RNN", "不知道"): only identical ones group.
MIN_WORDS_TO_LIKEN = 6


@dataclass
class Answer:
    student: str
    text: str
    words: tuple[Word, ...] = ()
    matches: list[Match] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.words

    @property
    def concepts(self) -> tuple[int, ...]:
        return tuple(sorted({m.concept for m in self.matches}))


@dataclass
class Group:
    key: str                         # stable between two loads of the page while the answers stay the same
    kind: str                        # "empty" | "identical" | "similar" | "concepts"
    members: list[Answer]
    concepts: tuple[int, ...] = ()   # what the group's answers mention (for "concepts": exactly that)


def analyse(student: str, text: str | None, finder: ConceptFinder) -> Answer:
    text = text or ""
    ws = words(text)
    return Answer(student, text, ws, finder.find(ws) if ws else [])


def group_answers(answers: list[Answer]) -> list[Group]:
    empty = sorted((a for a in answers if a.empty), key=lambda a: a.student)
    written = [a for a in answers if not a.empty]
    groups = [Group("empty", "empty", empty)] if empty else []

    # identical: the same sequence of words
    same: dict[tuple, list[Answer]] = {}
    for a in written:
        same.setdefault(tuple(w.norm for w in a.words), []).append(a)
    forms = list(same.values())
    # near-identical: clusters of those forms (union-find over the pairs that are alike)
    parent = list(range(len(forms)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    marks = [shingles(f[0].words) if len(f[0].words) >= MIN_WORDS_TO_LIKEN else None for f in forms]
    for i in range(len(forms)):
        if marks[i] is None:
            continue
        for j in range(i + 1, len(forms)):
            if marks[j] is not None and root(i) != root(j) and _close(marks[i], marks[j]):
                parent[root(j)] = root(i)
    clusters: dict[int, list[list[Answer]]] = {}
    for i, f in enumerate(forms):
        clusters.setdefault(root(i), []).append(f)

    alike, alone = [], []
    for parts in clusters.values():
        members = sorted((a for f in parts for a in f), key=lambda a: a.student)
        if len(members) == 1:
            alone.append(members[0])
        else:
            kind = "identical" if len(parts) == 1 else "similar"
            alike.append(Group(f"{kind}:{members[0].student}", kind, members, members[0].concepts))
    alike.sort(key=lambda g: (-len(g.members), g.key))

    by_concepts: dict[tuple[int, ...], list[Answer]] = {}
    for a in alone:
        by_concepts.setdefault(a.concepts, []).append(a)
    rest = [Group("concepts:" + ",".join(map(str, c)), "concepts", sorted(m, key=lambda a: a.student), c)
            for c, m in by_concepts.items()]
    rest.sort(key=lambda g: (-len(g.concepts), -len(g.members), g.key))
    return groups + alike + rest


def _close(a: frozenset, b: frozenset) -> bool:
    # the sizes alone bound the Jaccard similarity: most pairs are ruled out without a set operation
    small, large = sorted((len(a), len(b)))
    return small >= NEAR * large and likeness(a, b) >= NEAR
