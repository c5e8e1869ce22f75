"""What several test modules share, in one plain module (not a test module, no fixtures): the
repository's paths, the `needs_bwrap` mark, bits of student code that tests grade, the golden
record of a result, and the check that a grader still grades right after a hostile submission.

Test modules import it as `from helpers import ...` (pytest puts `tests/` on sys.path, as it does
for every test folder without an `__init__.py`). Fixtures (warm graders, the student pack, the
golden records) are in `conftest.py`.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUBRIC = ROOT / "rubrics" / "hw2.toml"
SAMPLES = ROOT / "submissions" / "hw2"        # the other assignments' samples: test_assignments.py
GOLDEN = ROOT / "tests" / "golden"
# every bundled sample (a folder under submissions/): each has a golden record, GOLDEN / <name>.json
SAMPLE_NAMES = sorted(p.name for p in SAMPLES.iterdir() if p.is_dir())

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (CI installs it)")


def statuses(result) -> dict:
    """item id -> status."""
    return {i.id: i.status for i in result.items}


# --- golden records --------------------------------------------------------------------------------
def golden_record(result) -> dict:
    """What a student is told about a graded sample, in both languages: the score, and for each
    item its status, points, known mistake, message and hint. Nothing that depends on the run
    (timings, the sandbox kind, paths, captured values): the record is the same on every run and
    under either sandbox kind."""
    def text(t):
        return None if t is None else {"en": t.en, "zh": t.zh}
    return {
        "score": result.score,
        "max_score": result.max_score,
        "load_error": text(result.load_error),
        "items": {i.id: {"status": i.status, "points": i.points, "max_points": i.max_points, "mistake": i.mistake,
                         "message": text(i.message), "hint": text(i.hint),
                         # what score worked out for the page: each failing public case's diagnosis, the error to fix first
                         "diagnoses": [text(c.diagnosis) for c in i.cases if c.diagnosis is not None],
                         "cause_hint": text(i.cause_hint)} for i in result.items},
    }


def golden_diff(got: dict, expected: dict) -> str:
    """Where a record differs from its golden record, one line a field, for an assertion's message."""
    lines = [f"{key}: got {got.get(key)!r}, golden {expected.get(key)!r}"
             for key in sorted(set(got) | set(expected)) if key != "items" and got.get(key) != expected.get(key)]
    mine, theirs = got.get("items", {}), expected.get("items", {})
    for item in list(mine) + [i for i in theirs if i not in mine]:
        a, b = mine.get(item), theirs.get(item)
        if a is None or b is None:
            lines.append(f"{item}: {'not in the golden record' if b is None else 'missing from the result'}")
            continue
        lines += [f"{item}.{field}: got {a.get(field)!r}, golden {b.get(field)!r}"
                  for field in sorted(set(a) | set(b)) if a.get(field) != b.get(field)]
    return "differs from its golden record (if this change is meant, run pytest --update-golden and review " \
           "the diff):\n" + "\n".join(lines)


def golden_path(name: str) -> Path:
    return GOLDEN / f"{name}.json"


def read_golden(name: str) -> dict:
    """A sample's golden record as committed (written only by `pytest --update-golden`)."""
    path = golden_path(name)
    if not path.exists():
        pytest.fail(f"no golden record {path.relative_to(ROOT)}: run `pytest --update-golden` once, then review "
                    f"the new file", pytrace=False)
    return json.loads(path.read_text(encoding="utf-8"))


def write_golden(name: str, record: dict) -> None:
    text = json.dumps(record, ensure_ascii=False, indent=2) + "\n"
    path = golden_path(name)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


# --- after a hostile submission --------------------------------------------------------------------
CORRECT_SCRIPT = SAMPLES / "003_correct_script"


def assert_next_submission_graded_right(grader) -> None:
    """The grader that just graded a hostile submission grades the next one right: the correct
    script sample gets its full 25 points, whatever the previous submission did."""
    after = grader.grade(CORRECT_SCRIPT)
    assert after.score == 25.0, [(i.id, i.status, i.message.en) for i in after.items if i.status != "pass"]


# --- student code ----------------------------------------------------------------------------------
# Part A's first cell, correct: Q, K and V (cells that follow it are the test's own).
PART_A = '''import torch
import torch.nn.functional as F
X = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 2.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]])
W_Q = torch.randn(4, 4)
W_K = torch.randn(4, 4)
W_V = torch.randn(4, 4)
#todo compute Q K V
Q = X @ W_Q
K = X @ W_K
V = X @ W_V
'''

# A correct box_iou (needs `torch` imported before it).
BOX_IOU = '''
def box_iou(boxes1, boxes2):
    a, b = boxes1[:, None, :], boxes2[None, :, :]
    iw = (torch.min(a[..., 2], b[..., 2]) - torch.max(a[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.min(a[..., 3], b[..., 3]) - torch.max(a[..., 1], b[..., 1])).clamp(min=0)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a + area_b - inter)
'''
