"""Values already captured survive whatever the submission's code does later (issue 13, finding 8):
it exits the process, deletes its working directory, replaces json/pickle/safetensors/os.write/open.
Each submission has a correct Part A and a correct `box_iou` before the code that does it; under the
real bwrap sandbox, they are still graded, and the run's reason is the true one; and (last in each
test) the next submission is graded right."""
from __future__ import annotations

import textwrap
import uuid

from helpers import BOX_IOU as CORRECT_BOX_IOU
from helpers import PART_A, assert_next_submission_graded_right, needs_bwrap

pytestmark = needs_bwrap

BOX_IOU = "\n# %%" + CORRECT_BOX_IOU

# cell 3: the last cell of Part A; what a test adds to it runs after `output` is computed
ATTENTION = '''
# %%
#todo compute the attention scores
score = Q @ K.T / 2.0
attention = score.softmax(dim=-1)
#todo the weighted sum
output = attention @ V
'''

PART_A_ITEMS = ("Q", "K", "V", "score", "attention", "output")


def grade(grader, tmp_path, last_cell_tail: str = "", extra_cell: str = ""):
    """Part A (cells 1 and 3) and box_iou (cell 2), all correct; `last_cell_tail` is appended to
    cell 3, `extra_cell` (if any) is cell 4. Returns the result and the source of cell 3 or 4."""
    tail, extra = textwrap.dedent(last_cell_tail), textwrap.dedent(extra_cell)
    body = PART_A + BOX_IOU + ATTENTION + tail + ("\n# %%\n" + extra if extra else "")
    path = tmp_path / f"survive-{uuid.uuid4().hex[:6]}.py"
    path.write_text(body, encoding="utf-8")
    return grader.grade(path), (extra if extra else ATTENTION.split("# %%\n", 1)[1] + tail)


def line_of(source: str, text: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), 1) if text in line)


def assert_graded(result):
    by_id = {i.id: i for i in result.items}
    for name in PART_A_ITEMS:
        item = by_id[name]
        assert (item.status, item.points) == ("pass", item.max_points), (name, item.status, item.message.en)
        assert len(item.cases) == 3 and all(c.passed for c in item.cases)       # the public and both hidden seeds
    box = by_id["box_iou"]
    assert (box.status, box.points) == ("pass", 2.0), box.message.en
    assert box.cases and all(c.passed for c in box.cases)
    # nothing else was credited: the other functions are not defined
    assert result.score == sum(by_id[n].max_points for n in PART_A_ITEMS) + 2.0


def last_block(result, cell: int, run: str = "public"):
    return [c for c in result.run.cells if c.run == run and c.cell == cell][-1]


def test_os_exit_in_the_last_block_keeps_every_value_computed_before(bwrap_grader, tmp_path):
    result, source = grade(bwrap_grader, tmp_path, """
        print("output computed")
        import os
        os._exit(0)
        print("never printed")
        """)
    assert_graded(result)
    line = line_of(source, "os._exit(0)")
    why = f"the program exited by calling os._exit(0) in cell 3, line {line}: the values computed before that point were graded"
    for run in ("public", "hidden-1", "hidden-2"):        # the cell ends every run it is in
        cell = last_block(result, 3, run)
        assert (cell.status, cell.note) == ("exit", why)
    assert "output computed" in last_block(result, 3).stdout and "never printed" not in last_block(result, 3).stdout
    assert result.run.limit_hit is None and f"{why} (the public run)" in result.run.notes
    assert_next_submission_graded_right(bwrap_grader)


def test_exit_below_python_is_reported_as_the_worker_saw_it(bwrap_grader, tmp_path):
    # posix's _exit reached without the os module (ctypes): no line to name, the truth still told
    result, _ = grade(bwrap_grader, tmp_path, extra_cell="""
        import ctypes
        ctypes.CDLL(None)._exit(3)
        """)
    assert_graded(result)
    cell = last_block(result, 4)
    assert (cell.status, cell.note) == ("exit", "the process exited (exit code 3) during cell 4: "
                                                "the values computed before that point were graded")
    assert_next_submission_graded_right(bwrap_grader)


def test_deleting_the_working_directory_loses_nothing(bwrap_grader, tmp_path):
    result, _ = grade(bwrap_grader, tmp_path, extra_cell="""
        import os, shutil
        here = os.getcwd()
        for root, dirs, files in os.walk(here, topdown=False):
            for name in files:
                os.unlink(os.path.join(root, name))
            for name in dirs:
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        print("left:", os.listdir(here))
        """)
    assert_graded(result)
    cell = last_block(result, 4)
    assert cell.status == "ok" and "left: []" in cell.stdout
    assert_next_submission_graded_right(bwrap_grader)


def test_replacing_serialisers_and_builtins_after_the_last_block_loses_nothing(bwrap_grader, tmp_path):
    result, _ = grade(bwrap_grader, tmp_path, extra_cell="""
        import builtins, json, os, pickle, struct, time
        import safetensors.torch
        import torch

        def refuse(*args, **kwargs):
            raise OSError("replaced by the submission")

        json.dumps = lambda *a, **k: "{}"
        json.JSONEncoder.encode = lambda self, o: "{}"
        pickle.dumps = lambda *a, **k: b""
        torch.Tensor.tolist = lambda self: []
        torch.Tensor.detach = lambda self: torch.zeros(1)
        torch.Tensor.clone = lambda self, *a, **k: torch.zeros(1)
        safetensors.torch.save = lambda *a, **k: b""
        safetensors.torch.load = lambda *a, **k: {}
        struct.pack = lambda *a: b""
        os.write = lambda fd, data: len(data)
        time.perf_counter = lambda: 0.0
        builtins.open = refuse
        builtins.len = lambda x: 0
        builtins.sorted = lambda *a, **k: []
        print("replaced")
        """)
    assert_graded(result)
    cell = last_block(result, 4)
    assert cell.status == "ok" and "replaced" in cell.stdout
    assert_next_submission_graded_right(bwrap_grader)


def test_forged_frames_cannot_replace_a_value_reported_before(bwrap_grader, tmp_path):
    # The student's code shares the runner's process and can write to its channel to the worker.
    # A record forged for an earlier step (Q's, under the public seed) is not taken; frames that
    # do not parse end the run there, and what was reported before is kept.
    result, source = grade(bwrap_grader, tmp_path, extra_cell="""
        import json, os, stat, struct
        import safetensors.torch
        import torch
        fake = json.dumps({"kind": "block", "status": "ok", "step": 0, "captures": {
            name: {"kind": "tensor", "key": name} for name in ("Q", "K", "V")}}).encode()
        blob = safetensors.torch.save({name: torch.zeros(5, 4) for name in ("Q", "K", "V")})
        record = struct.pack(">I", len(fake)) + fake + blob
        frames = (struct.pack(">cII", b"E", 0, len(record)) + record
                  + struct.pack(">cII", b"X", 0, len(record)) + record)
        def is_pipe(fd):
            try:
                return stat.S_ISFIFO(os.fstat(fd).st_mode)
            except OSError:
                return False
        pipes = [fd for fd in map(int, os.listdir("/proc/self/fd")) if fd > 2 and is_pipe(fd)]
        for fd in pipes:
            try:
                os.write(fd, frames)
            except OSError:
                pass
        print("forged", len(pipes))
        for fd in pipes:
            try:
                os.write(fd, b"garbage that is no frame at all")
            except OSError:
                pass
        print("not reached")
        """)
    assert_graded(result)
    cell = last_block(result, 4)
    assert cell.status == "exit" and "the grader's own channel" in cell.note, cell.note
    assert_next_submission_graded_right(bwrap_grader)


def test_closing_the_grader_channel_ends_the_run_there_and_says_so(bwrap_grader, tmp_path):
    result, _ = grade(bwrap_grader, tmp_path, extra_cell="""
        import os
        os.closerange(3, 4096)
        print("closed")
        """)
    assert_graded(result)
    cell = last_block(result, 4)
    assert (cell.status, cell.note) == ("exit", "the program closed or replaced the grader's channel to its worker "
                                                "during cell 4, which ended the run there: the values computed "
                                                "before that point were graded")
    assert_next_submission_graded_right(bwrap_grader)


def test_a_killed_runner_replays_and_loses_or_doubles_nothing(bwrap_grader, tmp_path):
    # Killed between Part A's two cells, in every run: Q, K, V were reported before the kill, the
    # re-forked runner replays the run's earlier cells silently and reports score, attention, output.
    kill = "\n# %%\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
    path = tmp_path / f"killed-{uuid.uuid4().hex[:6]}.py"
    path.write_text(PART_A + BOX_IOU + kill + ATTENTION, encoding="utf-8")
    result = bwrap_grader.grade(path)
    assert_graded(result)
    for run in ("public", "hidden-1", "hidden-2"):
        cell = last_block(result, 3, run)
        assert cell.status == "limit" and "SIGKILL" in cell.note
        assert [c.status for c in result.run.cells if c.run == run and c.cell == 4] == ["ok", "ok"]
    assert_next_submission_graded_right(bwrap_grader)
