"""`grade.py check`: the self-check from a pack alone, its exit codes and its JUnit XML."""
from __future__ import annotations

import re
import shutil
from xml.etree import ElementTree as ET

import pytest

from grader.check import exit_code, junit_xml
from grader.cli import main
from grader.pack import load_pack_rubric
from helpers import ROOT, needs_bwrap

pytestmark = needs_bwrap


@pytest.fixture(scope="module")
def rubric(pack_dir):
    return load_pack_rubric(pack_dir / "hw2.rubric.toml")


def test_correct_notebook_passes_every_auto_graded_item(rubric, pack_results):
    result = pack_results["correct.ipynb"]
    auto = [i for i in result.items if not i.id.startswith("written")]
    assert all(i.status == "pass" for i in auto), [(i.id, i.status, i.message.en) for i in auto]
    assert all(i.status == "manual" for i in result.items if i.id.startswith("written"))
    assert exit_code(result, rubric) == 0
    assert exit_code(result, rubric, fail_under=result.score + 1) == 1


def test_blank_starter_fails_and_fail_under_gates_on_points(rubric, pack_results):
    result = pack_results["blank.ipynb"]
    assert result.score == 0 and exit_code(result, rubric) == 1
    assert exit_code(result, rubric, fail_under=0) == 0


def test_known_mistakes_show_their_hints_from_the_pack(rubric, pack_results):
    result = pack_results["mistakes.ipynb"]
    hinted = {i.id: i.mistake for i in result.items if i.mistake}
    assert hinted, "the sample with attention mistakes should match known mistakes"
    for i in result.items:
        if i.mistake and i.mistake in {m.id for m in rubric.item(i.id).mistakes}:
            assert i.hint == next(m.hint for m in rubric.item(i.id).mistakes if m.id == i.mistake)
    assert exit_code(result, rubric) == 1


# --- JUnit XML ------------------------------------------------------------------------------------
# The rules of the JUnit schema Jenkins' xunit plugin validates against (junit-10.xsd), which GitLab
# and GitHub's test reporters also read: element nesting, required attributes, the time pattern.
_TIME = re.compile(r"^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?$")
_CHILDREN = {"testsuites": {"testsuite"}, "testsuite": {"testsuite", "properties", "testcase", "system-out", "system-err"},
             "properties": {"property"}, "property": set(),
             "testcase": {"skipped", "error", "failure", "system-out", "system-err"},
             "failure": set(), "error": set(), "skipped": set()}
_REQUIRED = {"testsuite": {"name", "tests", "failures", "errors"}, "testcase": {"name"}, "property": {"name", "value"}}
_ALLOWED = {"testsuites": {"name", "time", "tests", "failures", "errors"},
            "testsuite": {"name", "tests", "failures", "errors", "group", "time", "skipped", "timestamp", "hostname",
                          "id", "package", "file", "log", "url"},
            "testcase": {"name", "time", "classname", "group"}, "failure": {"type", "message"},
            "error": {"type", "message"}, "skipped": {"type", "message"}, "properties": set(), "property": {"name", "value"}}


def assert_junit_schema(el: ET.Element) -> None:
    assert el.tag in _CHILDREN, f"unknown element <{el.tag}>"
    assert _REQUIRED.get(el.tag, set()) <= set(el.attrib), f"<{el.tag}> lacks {_REQUIRED[el.tag] - set(el.attrib)}"
    assert set(el.attrib) <= _ALLOWED[el.tag], f"<{el.tag}> has unknown attributes {set(el.attrib) - _ALLOWED[el.tag]}"
    if el.tag in ("testsuites", "testsuite") and "time" in el.attrib:
        assert _TIME.match(el.attrib["time"]), el.attrib["time"]
    if el.tag in ("property", "properties", "testsuites"):
        assert not (el.text or "").strip()
    for child in el:
        assert child.tag in _CHILDREN[el.tag], f"<{child.tag}> inside <{el.tag}>"
        assert_junit_schema(child)


def test_junit_xml_is_valid_and_has_one_testcase_per_item(rubric, pack_results):
    result = pack_results["mistakes.ipynb"]
    root = ET.fromstring(junit_xml(result, rubric, "en"))
    assert root.tag == "testsuites"
    assert_junit_schema(root)
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [i.id for i in result.items]
    failing = [i for i in result.items if i.status != "pass" and not i.id.startswith("written")]
    assert int(suite.get("tests")) == len(cases) and int(suite.get("failures")) == len(failing) > 0
    assert int(suite.get("skipped")) == len(rubric.items_of("written"))
    for i in failing:
        f = next(c for c in cases if c.get("name") == i.id).find("failure")
        assert f.get("type") == i.status and i.message.en[:100] in f.get("message")
        if i.hint:
            assert i.hint.en in f.text


def test_the_schema_check_itself_can_fail():
    bad = ET.fromstring('<testsuites><testsuite name="s" tests="1"><testcase/></testsuite></testsuites>')
    with pytest.raises(AssertionError):
        assert_junit_schema(bad)


# --- the command ----------------------------------------------------------------------------------
def test_check_command_from_a_pack_without_reference(pack_dir, tmp_path, monkeypatch, capsys):
    from grader import expected
    def no_reference(*a, **k):
        raise AssertionError("the self-check must not touch the reference package")
    monkeypatch.setattr(expected.Reference, "__init__", no_reference)
    folder = tmp_path / "work"
    shutil.copytree(pack_dir, folder)
    junit = tmp_path / "out.xml"
    code = main(["check", str(folder / "correct.ipynb"), "--junit", str(junit), "--lang", "en"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "roi_pool" in out and "public checks only" in out
    assert (folder / "correct.feedback.html").is_file()
    assert_junit_schema(ET.parse(junit).getroot())
    assert main(["check", str(folder / "blank.ipynb"), "--checks", str(folder / "hw2.checks.safetensors"),
                 "--html", str(tmp_path / "b.html")]) == 1
    assert (tmp_path / "b.html").is_file()


def test_check_usage_errors_exit_2(pack_dir, tmp_path, capsys):
    lonely = tmp_path / "hw2.ipynb"
    shutil.copyfile(pack_dir / "correct.ipynb", lonely)
    assert main(["check", str(lonely)]) == 2
    assert "checks.safetensors" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "missing.ipynb")]) == 2
    assert main(["check", str(lonely), "--checks", str(tmp_path / "nope.checks.safetensors")]) == 2
    assert main(["check"]) == 2


def test_ci_examples_are_workflows_that_run_the_commands():
    yaml = pytest.importorskip("yaml")
    student = yaml.safe_load((ROOT / "docs/ci/student-assignment.yml").read_text(encoding="utf-8"))
    steps = student["jobs"]["check"]["steps"]
    runs = " ".join(s.get("run", "") for s in steps)
    assert "bubblewrap" in runs and "grade.py check hw2.ipynb" in runs and "--junit" in runs
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and "feedback.html" in upload["with"]["path"]
    course = yaml.safe_load((ROOT / "docs/ci/course-validate.yml").read_text(encoding="utf-8"))
    assert any("grade.py validate rubrics/hw2.toml" in s.get("run", "") for s in course["jobs"]["validate"]["steps"])
