"""Words of a written answer, the rubric's concepts found in them, and how alike two answers are.

Chinese has no spaces, so a concept is looked for among words, not characters: jieba cuts both the
answer and the concept's words, and a concept is found where its words follow one another in the
answer. A substring test would find 加法 ("addition") in 增加法 and 求和 ("sum") in 要求和; the
word test does not. English words are compared lowercased, in their inflected forms too (warp:
warped, additive: additively), but "norm" is not found in "normal". Punctuation and spaces are not
words: "d_model / h" is found in "d_model/h" and "W_Q" in a Markdown-escaped "W\\_Q".

Found concepts are a suggestion for the reviewer, never a grade: jieba's cut can still miss one
(缩放到 is cut 缩 / 放到), and saying a word is not understanding it.
"""
from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

# jieba cuts without its HMM guesses: an unknown word then always falls into the same pieces, in a
# concept as in an answer, whatever surrounds it (the guesses depend on the neighbouring characters).
_HMM = False
_tokenizer = None
_lock = threading.Lock()         # jieba loads its dictionary on first use; the app cuts from several threads
_taught: set[str] = set()         # concept words added to jieba's dictionary
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")


@dataclass(frozen=True)
class Word:
    norm: str          # what is compared: lowercased, a plural's "s" dropped
    start: int         # where it is in the text (characters), for highlighting
    end: int


@dataclass(frozen=True)
class Match:
    start: int
    end: int
    concept: int       # index in the item's concepts
    word: str          # the concept's word that was found


def _jieba():
    global _tokenizer
    with _lock:
        if _tokenizer is None:
            import jieba
            jieba.setLogLevel(logging.WARNING)     # not "Building prefix dict..." on the server's console
            _tokenizer = jieba.Tokenizer()
            _tokenizer.initialize()
        return _tokenizer


def _norm(piece: str) -> str:
    w = piece.strip().lower()
    # an English plural compares as its singular; "process", "is", "bus"... keep theirs
    if w.isascii() and w.isalpha() and len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    return w


def words(text: str) -> tuple[Word, ...]:
    """The words of a text, in order, without spaces and punctuation."""
    out = []
    for piece, start, end in _jieba().tokenize(text or "", HMM=_HMM):
        # trim what jieba leaves around a word ("norm." as one piece, a stray underscore)
        lead = len(piece) - len(piece.lstrip("._-%#&+"))
        core = piece.strip("._-%#&+")
        if core and any(ch.isalnum() for ch in core):
            out.append(Word(_norm(core), start + lead, start + lead + len(core)))
    return tuple(out)


# An English concept word is found in its inflected forms too (warp: warped; additive: additively),
# only these: "norm" is not in "normal", "sum" not in "summary".
_ENGLISH_ENDINGS = ("", "s", "es", "d", "ed", "ing", "ly", "ally")


def _same(answer_word: str, concept_word: str) -> bool:
    if answer_word == concept_word:
        return True
    return (concept_word.isascii() and concept_word.isalpha() and len(concept_word) >= 3
            and answer_word.startswith(concept_word) and answer_word[len(concept_word):] in _ENGLISH_ENDINGS)


class ConceptFinder:
    """Finds an item's concepts (`rubric.Concept`s) in answers. Made once per question: it teaches
    jieba the concepts' Chinese words first (池化, 雅可比 are not in its dictionary and would be cut
    into characters), so a concept and an answer are cut alike."""

    def __init__(self, concepts):
        self.concepts = tuple(concepts)
        tokenizer = _jieba()
        with _lock:
            for concept in self.concepts:
                for word in concept.words:
                    for run in _CJK_RUN.findall(word):
                        if len(run) > 1 and run not in _taught:
                            tokenizer.add_word(run)
                            _taught.add(run)
        self._seqs = [(index, word, tuple(w.norm for w in words(word)))
                      for index, concept in enumerate(self.concepts) for word in concept.words]

    def find(self, found_words: tuple[Word, ...]) -> list[Match]:
        """Every place a concept's word occurs among an answer's words, the longest where two overlap."""
        norms = [w.norm for w in found_words]
        hits = []
        for index, word, seq in self._seqs:
            n = len(seq)
            for i in range(len(norms) - n + 1) if n else ():
                if all(_same(norms[i + k], seq[k]) for k in range(n)):
                    hits.append(Match(found_words[i].start, found_words[i + n - 1].end, index, word))
        hits.sort(key=lambda m: (m.start, -(m.end - m.start)))
        kept, reach = [], -1
        for m in hits:
            if m.start >= reach:
                kept.append(m)
                reach = m.end
        return kept


def segments(text: str, matches: list[Match]) -> list[tuple[str, int | None]]:
    """The text cut into (piece, concept index or None), for a template to highlight. Plain
    strings: the template escapes each piece, so no answer can add markup."""
    out, at = [], 0
    for m in matches:
        if m.start > at:
            out.append((text[at:m.start], None))
        out.append((text[m.start:m.end], m.concept))
        at = m.end
    if at < len(text):
        out.append((text[at:], None))
    return out


def shingles(ws: tuple[Word, ...]) -> frozenset:
    """Pairs of neighbouring words: two answers that share most of them say the same thing in the
    same words (a copy with a word changed, spaces or punctuation apart)."""
    norms = [w.norm for w in ws]
    if len(norms) < 2:
        return frozenset(norms)
    return frozenset(zip(norms, norms[1:]))


def likeness(a: frozenset, b: frozenset) -> float:
    """Jaccard similarity of two answers' shingles, 0..1."""
    if not a or not b:
        return 1.0 if a == b else 0.0
    return len(a & b) / len(a | b)
