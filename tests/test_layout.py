"""The shape of `grader/` (issue 14): no import cycles, no imports of another module's private
names, the regrade fingerprint covering exactly what grading depends on, and reference packages
keyed by their whole path. Read from the source with `ast`: nothing is imported to check it."""
from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

GRADER = ROOT / "grader"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[tuple[str, str]]]:
    """module -> {(imported module, imported name)} for every relative import, function-level ones
    included (a lazy import still makes a cycle)."""
    out = {}
    for path in GRADER.rglob("*.py"):
        name = _module(path)
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.add((sub, "") if node.module is None or (GRADER.parent / (sub.replace(".", "/") + ".py")).exists()
                              else (base, alias.name))
        out[name] = found
    return out


def _graph() -> dict[str, set[str]]:
    return {m: {target for target, _ in deps} for m, deps in _imports().items()}


def test_no_import_cycle_in_grader():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(m, stack):
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if d not in graph:
                continue
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_no_module_imports_another_modules_private_names():
    private = sorted((m, target, name) for m, deps in _imports().items() for target, name in deps
                     if name.startswith("_") and name != "__version__")
    assert private == []


def test_the_regrade_fingerprint_covers_everything_grading_imports():
    from grader.batch import ENGINE
    graph = _graph()
    closure, todo = set(), ["grader.pipeline"]
    while todo:
        m = todo.pop()
        if m in closure or m not in graph:
            continue
        closure.add(m)
        todo += graph[m]
    engine = {f"grader.{n[:-3]}" if n.endswith(".py") else f"grader.{n}" for n in ENGINE}
    uncovered = sorted(m for m in closure if not any(m == e or m.startswith(e + ".") for e in engine))
    assert uncovered == []
    # and nothing that only presents, coordinates or packs: editing those regrades nobody
    for name in ("grader.pack", "grader.feedback", "grader.batch", "grader.exports", "grader.cli", "grader.review"):
        assert name not in engine and name not in closure


def test_editing_a_page_module_keeps_the_fingerprint(tmp_path, monkeypatch):
    import shutil

    import grader.batch as batch
    copy = tmp_path / "grader"
    shutil.copytree(GRADER, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(batch, "__file__", str(copy / "batch.py"))
    before = batch.grader_version()
    (copy / "pack.py").write_text((copy / "pack.py").read_text() + "\n# edited\n")
    (copy / "feedback.py").write_text((copy / "feedback.py").read_text() + "\n# edited\n")
    assert batch.grader_version() == before
    (copy / "score.py").write_text((copy / "score.py").read_text() + "\n# edited\n")
    assert batch.grader_version() != before


def test_two_reference_folders_with_the_same_name_are_two_packages(tmp_path):
    from grader.expected import _import_package
    made = []
    for course, value in (("a", 1), ("b", 2)):
        pkg = tmp_path / course / "reference" / "hw2"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(f"VALUE = {value}\n")
        made.append(_import_package(pkg))
    assert [m.VALUE for m in made] == [1, 2] and made[0].__name__ != made[1].__name__


def test_the_engine_names_no_assignment():
    """Everything specific to an assignment lives in its rubric and reference package: no bundled
    assignment's id or function name appears in grader/ (code, comments or templates)."""
    import re
    from grader.rubric import load_rubric
    names = set()
    for path in sorted((ROOT / "rubrics").glob("*.toml")):
        rubric = load_rubric(path)
        names.add(rubric.id)
        names |= {i.name for i in rubric.items_of("function")}
        names |= {i.name for i in rubric.items_of("variable") if len(i.name) > 2 and not i.name.isalpha()}
    assert {"hw1", "hw2", "hw3", "nms", "box_iou", "lstm_cell", "conv2d_backward"} <= names
    found = []
    for f in sorted((ROOT / "grader").rglob("*")):
        if f.suffix not in (".py", ".j2") or "skeleton" in f.parts:
            continue
        text = f.read_text(encoding="utf-8")
        found += [f"{f.relative_to(ROOT)}: {n}" for n in sorted(names) if re.search(rf"(?<![\w/]){re.escape(n)}\b", text)]
    assert found == []
