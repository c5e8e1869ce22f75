"""The student pack: what it holds, that it answers like the reference on the public cases, and
that nothing of the solution (reference source, hidden seeds, hidden values) is in it."""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from grader.errors import RubricError
from grader.expected import Reference
from grader.pack import load_pack, load_pack_rubric
from grader.rubric import load_rubric
from helpers import ROOT, RUBRIC


@pytest.fixture(scope="module")
def reference():
    return Reference(load_rubric(RUBRIC))


def pack_files(pack_dir: Path) -> list[Path]:
    """The pack's own files (not the submissions put beside them)."""
    return [p for p in pack_dir.iterdir() if p.name.startswith(("hw2.", "grade.py", "README"))]


def test_pack_holds_the_starter_checks_and_public_rubric(pack_dir):
    names = {p.name for p in pack_files(pack_dir)}
    assert names == {"hw2.ipynb", "hw2.py", "hw2.checks.safetensors", "hw2.rubric.toml", "grade.py", "README.md"}
    assert (pack_dir / "hw2.ipynb").read_bytes() == (ROOT / "reference/hw2/starter.ipynb").read_bytes()
    assert (pack_dir / "hw2.py").read_bytes() == (ROOT / "reference/hw2/starter.py").read_bytes()
    data = tomllib.loads((pack_dir / "hw2.rubric.toml").read_text(encoding="utf-8"))
    assert "hidden_seeds" not in data["assignment"] and "reference" not in data["assignment"]
    for item in data["items"]:
        assert not {"reference", "cases", "follows", "concepts"} & set(item), item["id"]
        for m in item.get("mistakes", []):
            assert set(m) == {"id", "credit", "hint"}


def test_pack_rubric_matches_the_rubric_and_has_only_the_public_run(pack_dir):
    full = load_rubric(RUBRIC)
    packed = load_pack_rubric(pack_dir / "hw2.rubric.toml")
    assert packed.runs == (("public", 0),)
    assert [i.id for i in packed.items] == [i.id for i in full.items]
    for a, b in zip(packed.items, full.items):
        assert (a.kind, a.name, a.points, a.dtype, a.partial, a.case_credit, a.tolerance, a.returns) == \
               (b.kind, b.name, b.points, b.dtype, b.partial, b.case_credit, b.tolerance, b.returns)
        assert [(m.id, m.credit, m.hint) for m in a.mistakes] == [(m.id, m.credit, m.hint) for m in b.mistakes]


def test_packed_reference_answers_like_the_reference_on_public_cases(reference, pack_dir):
    rubric, packed = load_pack(pack_dir / "hw2.checks.safetensors")
    for item in rubric.items_of("function"):
        full_item = reference.rubric.item(item.id)
        public = [c for c in reference.cases(full_item) if c.public]
        mine = packed.cases(item)
        assert [c.id for c in mine] == [c.id for c in public]
        for a, b in zip(mine, public):
            assert _same(a.args, b.args) and _same(a.kwargs, b.kwargs)
            assert _same(packed.expected(item, a), reference.expected(full_item, b))
            for m in item.mistakes:
                assert _same(packed.mistake(item, m.id, a), reference.mistake(full_item, m.id, b)), (item.id, m.id)
    assert _same(packed.script_expected(0), reference.script_expected(0))
    assert _same(packed.script_inputs(0), reference.script_inputs(0))
    with pytest.raises(Exception, match="public seed"):
        packed.script_expected(2024)
    with pytest.raises(LookupError):
        packed.resolve("part_a.compute")


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b) if not a.is_floating_point() \
            else a.dtype == b.dtype and a.shape == b.shape and bool(torch.equal(a.nan_to_num(7.5), b.nan_to_num(7.5)))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)


# --- nothing of the solution leaks ----------------------------------------------------------------
def _pack_text(pack_dir: Path) -> str:
    """Every pack file as text, the checks file's JSON header included."""
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in pack_files(pack_dir))


def _starter_text() -> str:
    return (ROOT / "reference/hw2/starter.py").read_text(encoding="utf-8")


def _solution_lines() -> list[str]:
    """Non-trivial lines of the reference's code and of the solution notebook's solution regions."""
    lines = []
    for path in sorted((ROOT / "reference/hw2").glob("*.py")):
        if path.name == "starter.py":
            continue
        lines += path.read_text(encoding="utf-8").splitlines()
    nb = json.loads((ROOT / "reference/hw2/solution.ipynb").read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        lines += [l for region in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", src, re.S)
                  for l in region.splitlines()]
    return lines


def test_no_line_of_the_reference_code_is_in_the_pack(pack_dir):
    text, starter = _pack_text(pack_dir), _starter_text()
    checked = 0
    for raw in _solution_lines():
        line = raw.strip()
        if len(line) <= 25 or line in starter:    # short lines are not evidence; the starter's text is public
            continue
        checked += 1
        assert line not in text, f"reference line found in the pack: {line!r}"
    assert checked > 300      # the search ran on the code, not on nothing


def test_no_hidden_seed_or_hidden_value_is_in_the_pack(reference, pack_dir):
    text = _pack_text(pack_dir)
    for seed in reference.rubric.hidden_seeds:
        assert not re.search(rf"(?<![\d.]){seed}(?![\d.])", text), f"hidden seed {seed} appears in the pack"
    hidden, public = set(), set()
    for item in reference.rubric.items_of("function"):
        for case in reference.cases(item):
            bag = public if case.public else hidden
            _floats(case.args, bag)
            _floats(reference.expected(item, case), bag)
            for m in item.mistakes:
                _floats(reference.mistake(item, m.id, case), public if case.public else set())
    for label, seed in reference.rubric.runs:
        bag = public if label == "public" else hidden
        _floats(reference.script_inputs(seed), bag)
        _floats(reference.script_expected(seed), bag)
    hidden -= public          # a value both seeds share (0.5, 1/7, ...) proves nothing
    assert len(hidden) > 1000
    packed = set()
    with safe_open(str(pack_dir / "hw2.checks.safetensors"), framework="pt") as f:
        for key in f.keys():
            _floats(f.get_tensor(key), packed)
    assert packed and not (packed & hidden), f"{len(packed & hidden)} hidden values are in the checks file"


def _floats(x, bag: set) -> None:
    """Fractional float values as float32 bit patterns (integers and 0.5 steps are too common to count)."""
    if isinstance(x, torch.Tensor):
        if x.is_floating_point() and x.numel():
            v = x.detach().to(torch.float32).flatten().numpy()
            v = v[np.isfinite(v)]
            v = v[np.abs(v * 4 - np.round(v * 4)) > 1e-3]
            bag.update(v.view(np.int32).tolist())
    elif isinstance(x, dict):
        for v in x.values():
            _floats(v, bag)
    elif isinstance(x, (tuple, list)):
        for v in x:
            _floats(v, bag)


# --- the pack rubric is validated like a rubric ---------------------------------------------------
def test_a_pack_rubric_with_hidden_seeds_is_refused(pack_dir, tmp_path):
    text = (pack_dir / "hw2.rubric.toml").read_text(encoding="utf-8")
    bad = tmp_path / "hw2.rubric.toml"
    bad.write_text(text.replace("public_seed = 0", "public_seed = 0\nhidden_seeds = [1]"), encoding="utf-8")
    with pytest.raises(RubricError, match="hidden_seeds.*unknown key"):
        load_pack_rubric(bad)


def test_pack_command(tmp_path, capsys):
    from grader.cli import main
    assert main(["pack", str(RUBRIC), "--out", str(tmp_path / "dist")]) == 0
    assert (tmp_path / "dist" / "hw2.checks.safetensors").is_file()
    assert main(["pack", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "x")]) == 2
    assert "nope.toml" in capsys.readouterr().err
