"""Students' self-check: grade a submission against a pack's public checks, then turn the result
into what a student or a CI gate wants: an exit code and JUnit XML.

The grading itself is the instructor's pipeline (`Grader`), unchanged: only the reference is
swapped for a `PackedReference`, and the pack's rubric has no hidden seeds, so every run is the
public one. Written answers are reviewed by the instructor, so they never decide an exit code.
"""
from __future__ import annotations

import datetime
import socket
from pathlib import Path
from xml.etree import ElementTree as ET

from .model import GradeResult
from .pack import find_checks, load_pack
from .pipeline import Grader
from .rubric import Rubric


def open_checker(submission: str | Path, checks: str | Path | None = None, sandbox: str | None = None,
                 timeout: float | None = None) -> Grader:
    """A `Grader` that answers from the pack's checks file (found beside the submission unless given)."""
    from .sandbox import default_kind
    rubric, reference = load_pack(find_checks(submission, checks))
    return Grader(rubric, sandbox=sandbox or default_kind(), timeout=timeout, reference=reference)


def written_ids(rubric: Rubric) -> frozenset[str]:
    return frozenset(i.id for i in rubric.items_of("written"))


def passed(result: GradeResult, rubric: Rubric) -> bool:
    manual = written_ids(rubric)
    return all(i.status == "pass" for i in result.items if i.id not in manual)


def exit_code(result: GradeResult, rubric: Rubric, fail_under: float | None = None) -> int:
    """0: every auto-graded item passes (or, with --fail-under, the score reaches it); 1 otherwise."""
    if fail_under is not None:
        return 0 if result.score >= fail_under else 1
    return 0 if passed(result, rubric) else 1


def junit_xml(result: GradeResult, rubric: Rubric, lang: str) -> bytes:
    """JUnit XML as Jenkins, GitLab and GitHub test reporters read it (the junit-10 schema's shape:
    testsuites > testsuite(name, tests, failures, errors, skipped, time) > testcase(name, classname,
    time) > failure(message, type) | skipped(message)). One testcase per rubric item."""
    suite, manual = rubric.id, written_ids(rubric)
    seconds = f"{result.run.seconds:.3f}" if result.run else "0"
    cases, failures, skipped = [], 0, 0
    for i in result.items:
        case = ET.Element("testcase", name=i.id, classname=f"{suite}.{i.part}", time="0")
        if i.id in manual:
            skipped += 1
            ET.SubElement(case, "skipped", message="written answer: reviewed by the instructor"
                          if lang == "en" else "书面回答：由教师评阅")
        elif i.status != "pass":
            failures += 1
            text = i.message(lang) + (("\n" + ("hint: " if lang == "en" else "提示：") + i.hint(lang)) if i.hint else "")
            f = ET.SubElement(case, "failure", message=i.message(lang)[:500], type=i.status)
            f.text = f"{i.points:g}/{i.max_points:g}: {text}"
        cases.append(case)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0"}
    root = ET.Element("testsuites", name=f"{suite} self-check", time=seconds, **counts)
    ts = ET.SubElement(root, "testsuite", name=suite, skipped=str(skipped), time=seconds, hostname=socket.gethostname(),
                       timestamp=datetime.datetime.now().replace(microsecond=0).isoformat(), **counts)
    props = ET.SubElement(ts, "properties")
    for k, v in (("score", f"{result.score:g}"), ("max_score", f"{result.max_score:g}"),
                 ("submission", result.submission.path), ("checks", "public cases only")):
        ET.SubElement(props, "property", name=k, value=v)
    ts.extend(cases)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"

