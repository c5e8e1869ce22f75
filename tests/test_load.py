"""Loading every format into one list of cells, and locating blanks and written answers."""
from __future__ import annotations

import json

import pytest

from helpers import SAMPLES
from grader.blanks import layout, strip_magics
from grader.errors import SubmissionError
from grader.load import load_submission
from grader.model import Cell, Submission

WRITTEN = ("written.1.1", "written.1.2", "written.1.3", "written.2.2", "written.2.3", "written.3.1", "written.3.2")


def test_nbformat3_notebook_is_upgraded(tmp_path):
    nb3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [
        {"cell_type": "code", "input": "x = 1\n#todo compute y\ny = x + 1", "outputs": [], "language": "python"},
        {"cell_type": "markdown", "source": "### 1.1 Q\nanswer"}]}]}
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(nb3), encoding="utf-8")
    sub = load_submission(path)
    assert [(c.kind, c.source) for c in sub.cells] == [("code", "x = 1\n#todo compute y\ny = x + 1"),
                                                       ("markdown", "### 1.1 Q\nanswer")]


def test_percent_and_nbconvert_scripts_split_into_cells(tmp_path):
    p = tmp_path / "a.py"
    p.write_text("# %% [markdown]\n# ### 2.2 Title\n# my answer\n# %%\nx = 1\n# In[3]:\ny = 2\n", encoding="utf-8")
    sub = load_submission(p)
    assert [(c.kind, c.source) for c in sub.cells] == [("markdown", "### 2.2 Title\nmy answer"), ("code", "x = 1"),
                                                       ("code", "y = 2")]


@pytest.mark.parametrize("data,reason", [
    (b"", "is empty"), (b"\x00\x01\x02binary", "is a binary file"),
    (b'{"cells": [', "broken JSON at line 1"), (b'{"a": 1}', "not a Jupyter notebook"),
])
def test_broken_files_give_a_reason(tmp_path, data, reason):
    p = tmp_path / "x.ipynb"
    p.write_bytes(data)
    with pytest.raises(SubmissionError, match=reason):
        load_submission(p)


def test_gbk_file_is_read_with_a_note(tmp_path):
    p = tmp_path / "hw2.py"
    p.write_bytes("# 注意力\nx = 1\n".encode("gbk"))
    sub = load_submission(p)
    assert sub.cells[0].source == "# 注意力\nx = 1" and "GBK" in sub.notes[0].en


def test_two_files_in_one_folder_is_refused(tmp_path):
    (tmp_path / "a.py").write_text("x = 1")
    (tmp_path / "b.ipynb").write_text("{}")
    with pytest.raises(SubmissionError, match="holds 2 submission files"):
        load_submission(tmp_path)


@pytest.mark.parametrize("line", ["#todo", "# TODO:", "#todo 计算注意力得分", "  #  ToDo - compute", "#TODO：算"])
def test_todo_spellings_open_a_block(line):
    sub_cells = (Cell(1, "code", f"a = 1\n{line}\nb = ...\n"),)
    from grader.model import Submission
    lay = layout(Submission("x.py", "s", "py", sub_cells, ""), ("a", "b"))
    assert len(lay.blocks) == 2 and lay.checkpoints == {"a": (1, 0), "b": (1, 1)}
    assert "b" in lay.unfilled and not lay.blanks[0].filled


def test_filled_vs_blank_function_stubs():
    from grader.model import Submission
    src = ('def f(x):\n    """doc"""\n    #todo implement\n    raise NotImplementedError\n\n'
           'def g(x):\n    #todo implement\n    return x\n')
    lay = layout(Submission("x.py", "s", "py", (Cell(1, "code", src),), ""))
    assert "f" in lay.unfilled and "g" not in lay.unfilled


def test_magics_are_skipped_keeping_line_numbers():
    source, notes = strip_magics(Cell(3, "code", "%matplotlib inline\nif True:\n    !pip install tqdm\nx = 1"))
    assert source == "pass\nif True:\n    pass\nx = 1"
    assert [n.en.split(":")[0] for n in notes] == ["cell 3, line 1", "cell 3, line 3"]


def test_written_answers_of_the_seed_sheet_by_their_numbers():
    sub = load_submission(SAMPLES / "000_be4a6993b089033a")
    found = {w.item: w.text for w in layout(sub, (), WRITTEN).written}
    assert found["written.1.1"].startswith("因为vanilla RNN在求梯度时")
    assert found["written.2.2"].startswith("多头自注意是将Q,K,V矩阵映射到多个子空间")
    assert found["written.2.3"].startswith("Transformer结构中encoder和decoder的区别")
    assert found["written.3.1"].startswith("## R-CNN模型的主要步骤") and "2.md 2024-11-21" not in found["written.3.2"]
    assert all(found.values())


def test_written_answers_of_a_notebook_by_headings():
    sub = load_submission(SAMPLES / "006_blank_starter")
    assert all(w.text == "" for w in layout(sub, (), WRITTEN).written)
    sub = load_submission(SAMPLES / "002_correct_notebook")
    assert all(w.text for w in layout(sub, (), WRITTEN).written)


def test_blanks_are_located_from_many_threads_at_once():
    """Batch threads locate blanks concurrently. On CPython < 3.12 a garbage collection (here,
    cycles whose finalizer runs Python code) inside one thread's ast.parse let another thread's
    parse in, and one of them failed with "AST constructor recursion depth mismatch": that
    submission got a grader error instead of a grade."""
    import threading
    source = "\n".join(f"def f{i}(x):\n    # todo\n    return [(a, b) for a in range(x) for b in {{k: v for k, v in zip(x, x)}}"
                       f" if a and (b or not a)]" for i in range(40))
    errors = []

    class Cycle:
        def __del__(self):
            sum(range(50))

    def garbage():
        for _ in range(100_000):
            c = Cycle()
            c.me = c

    def locate():
        for _ in range(300):
            try:
                layout(Submission("x.py", "s", "py", (Cell(1, "code", source),), ""))
            except Exception as e:
                errors.append(repr(e))
                return

    threads = [threading.Thread(target=garbage)] + [threading.Thread(target=locate) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
