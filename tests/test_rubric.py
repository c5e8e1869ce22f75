"""A bad rubric is refused on load with the file, the item and the field."""
from __future__ import annotations

import re

import pytest

from helpers import RUBRIC
from grader.errors import RubricError
from grader.expected import Reference
from grader.rubric import load_rubric

TEXT = RUBRIC.read_text(encoding="utf-8")


def broken(tmp_path, old: str, new: str, count: int = 1):
    assert old in TEXT, old
    path = tmp_path / "hw2.toml"
    path.write_text(TEXT.replace(old, new, count).replace('"../reference/hw2"', f'"{RUBRIC.parent.parent / "reference" / "hw2"}"'),
                    encoding="utf-8")
    return path


def test_the_real_rubric_loads_and_resolves():
    rubric = load_rubric(RUBRIC)
    assert [i.id for i in rubric.items][:6] == ["Q", "K", "V", "score", "attention", "output"]
    assert rubric.runs == (("public", 0), ("hidden-1", 2024), ("hidden-2", 31337))
    assert sum(i.points for i in rubric.items) == 40.0
    Reference(rubric).check()


@pytest.mark.parametrize("old,new,message", [
    ('id = "Q"\n', 'id = "Q"\npionts = 1\n', r"item 'Q'.*field 'pionts': unknown key; did you mean 'points'\?"),
    ('kind = "function"', 'kind = "functon"', r"field 'kind': is 'functon', must be one of variable, function, written; did you mean 'function'\?"),
    ("public_seed = 0", 'public_seed = "zero"', r"\[assignment\], field 'public_seed': must be an integer"),
    ("public_seed = 0", "", r"\[assignment\], field 'public_seed': is required"),
    ('id = "K"', 'id = "Q"', r"item 'Q', field 'id': appears twice"),
    ("credit = 0.25", "credit = 2.5", r"field 'credit': is 2.5, must be between 0 and 1"),
    ('dtype = "exact"', 'dtype = "exactly"', r"field 'dtype': is 'exactly'.*did you mean 'exact'\?"),
    ("[limits]", "[limits]\ncell_secs = 3", r"\[limits\], field 'cell_secs': unknown key; did you mean 'cell_seconds'\?"),
    ("schema = 1", "schema = 2", r"field 'schema': is 2, this grader reads schema 1"),
])
def test_bad_rubric_is_refused_naming_file_item_and_field(tmp_path, old, new, message):
    with pytest.raises(RubricError) as err:
        load_rubric(broken(tmp_path, old, new))
    assert str(err.value).startswith(str(tmp_path / "hw2.toml"))
    assert re.search(message, str(err.value)), str(err.value)


def test_a_function_name_that_does_not_exist_is_refused_before_grading(tmp_path):
    m = re.search(r'function = "(mistakes\.\w+)"', TEXT)
    rubric = load_rubric(broken(tmp_path, m.group(0), 'function = "mistakes.no_such_thing"'))
    with pytest.raises(RubricError, match=r"'mistakes.no_such_thing' names nothing in the reference package"):
        Reference(rubric).check()


def test_not_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[assignment\nid = 1", encoding="utf-8")
    with pytest.raises(RubricError, match="is not valid TOML"):
        load_rubric(bad)
    with pytest.raises(RubricError, match="cannot be read"):
        load_rubric(tmp_path / "nope.toml")
