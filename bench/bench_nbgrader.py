"""The peer, side by side: `nbgrader autograde` against `grade.py batch` on the same notebooks, one run.

    python bench/bench_nbgrader.py [-n 20] [--jobs 2] [--rounds 2] [--venv DIR] [--include-broken]
                                   [--keep DIR]

1. nbgrader is not a project dependency: it lives in a virtualenv of its own (default
   ~/.cache/grader-bench/nbgrader-venv, `--venv` to move it), created with the project venv's base
   interpreter (`.venv/bin/python -c "import sys; print(sys._base_executable)"`), holding `nbgrader`,
   `torch==2.13.0` (the project's pin) and the project venv's numpy version (torch warns on every
   import without numpy). Reused when it imports all of them with torch 2.13.0 on that interpreter;
   otherwise (re)installed. Before installing, `pip install --dry-run --report` says what pip would
   fetch: if that includes CUDA packages (`nvidia-*`, `triton`: the PyPI build of torch), the
   install goes to the PyTorch CPU index instead. Any failure stops the script with pip's own
   last lines and exit status 3.
2. An nbgrader course in a temp dir. Its source notebook is reference/hw2/solution.ipynb (which
   already marks its answers with nbgrader's `### BEGIN/END SOLUTION`), given nbgrader cell
   metadata: the two Part A cells and the eight function cells are autograded-answer (solution)
   cells; after them, one autograded test cell per rubric item (14, each worth the rubric's
   points: Q, K, V, score, attention, output, then the eight functions); the seven written answers are
   manually graded answer cells (the rubric's points; autograde only records them). The solution's
   own hidden-tests cell is dropped (its asserts are the test cells' visible parts). Each function's
   test cell: one visible `assert` (a hand-worked example), then hidden tests that run every case
   grade.py runs for that item (reference/hw2/cases.py, public seed and both hidden seeds: 162
   calls in all) against the reference implementation (reference/hw2, copied beside the course)
   with the rubric's tolerances, `assert torch.allclose(...)` (`torch.equal` and the dtype for the
   exact items, causal_mask and nms), one assert per returned tensor. Part A's six cells check each
   variable from the student's own upstream values (as grade.py's follow-through does; nbgrader runs
   `torch.randn` unseeded, so no fixed expected value exists) and that X is unchanged. nbgrader's
   per-cell timeout is set to the rubric's `cell_seconds` (10 s; its default is 30 s).
   `nbgrader generate_assignment hw2` makes the release (untimed).
3. N submissions: copies of the bundled notebook samples (submissions/hw2/*/hw2.ipynb, in turn;
   007_partly_broken, whose infinite loop measures the time limit rather than the grader, only with
   `--include-broken`, as in bench_batch.py). nbgrader grades by cell metadata, so each sample is
   adapted to the release: start from the released notebook (nbgrader's metadata, ids, locked and
   test cells) and put the student's cells into it: a student cell goes into the release cell with
   the same cell id (the samples saved with nbformat 4.5 keep the starter's ids, which are the
   solution's); without ids (002_correct_notebook, nbformat 4.4), into the cell at the same
   position when the notebook has the solution's layout, or the function cell whose `def` it
   holds. Only editable cells take the student's text (nbgrader overwrites locked and test cells
   anyway); a student's code cell that matches nothing (an extra cell) is inserted after the last
   matched one. Each copy gets a distinct `metadata.bench_copy`. The very same file is
   `submitted/<student>/hw2/hw2.ipynb` for nbgrader and `<student>/hw2.ipynb` for grade.py.
4. Timed, from process start to exit, wall clock: `nbgrader autograde hw2` (one process, as an
   instructor runs it: nbgrader grades one notebook after another, one kernel each) in a fresh copy
   of the course, and `.venv/bin/python grade.py batch SUBS --out OUT --rubric rubrics/hw2.toml
   --jobs J` into a new output folder (so it grades all N). `--rounds R` (default 2) runs both R
   times, alternating which goes first (round 1: nbgrader then grade.py; round 2: grade.py then
   nbgrader; ...); every run is printed and the figures are each tool's LAST run (with the
   default, its second: the first warms the page cache and the venvs' bytecode).
5. Prints both wall times, submissions/s, the ratio, the versions, and each sample's score under
   both graders (untimed: `nbgrader export` and grade.py's grades.csv) as a check that both graded.
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PY = ROOT / ".venv" / "bin" / "python"
RUBRIC = ROOT / "rubrics" / "hw2.toml"
SOLUTION = ROOT / "reference" / "hw2" / "solution.ipynb"
REFERENCE = ROOT / "reference" / "hw2"
DEFAULT_VENV = Path.home() / ".cache" / "grader-bench" / "nbgrader-venv"
TORCH = "torch==2.13.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
BROKEN = "007_partly_broken"
ASSIGNMENT = "hw2"


class BenchError(Exception):
    """A failure to report plainly (with an exit status) instead of a traceback."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------
# 1. nbgrader's own virtualenv
# ---------------------------------------------------------------------------------------------

PROBE = r"""
import json, sys
import nbgrader, nbclient, ipykernel, numpy, torch
from jupyter_client.kernelspec import KernelSpecManager
spec = KernelSpecManager().get_kernel_spec("python3")
print(json.dumps({"nbgrader": nbgrader.__version__, "torch": torch.__version__, "cuda": torch.version.cuda,
                  "numpy": numpy.__version__,
                  "nbclient": nbclient.__version__, "ipykernel": ipykernel.__version__,
                  "python": sys.version.split()[0], "base": sys._base_executable,
                  "kernel_argv0": spec.argv[0], "kernel_dir": spec.resource_dir}))
"""


def project_facts() -> dict:
    if not PROJECT_PY.exists():
        raise BenchError(f"the project venv is missing ({PROJECT_PY}): run scripts/setup.sh first")
    out = subprocess.run([str(PROJECT_PY), "-c", "import json, sys, numpy, torch; print(json.dumps({"
                          "'base': sys._base_executable, 'torch': torch.__version__, 'numpy': numpy.__version__,"
                          "'python': sys.version.split()[0]}))"], capture_output=True, text=True)
    if out.returncode != 0:
        raise BenchError(f"the project venv does not import torch and numpy:\n{tail(out.stderr)}")
    return json.loads(out.stdout)


def probe(venv: Path) -> dict | None:
    py = venv / "bin" / "python"
    if not py.exists():
        return None
    out = subprocess.run([str(py), "-c", PROBE], capture_output=True, text=True, env=venv_env(venv))
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None


def venv_env(venv: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


def usable(facts: dict | None, base: str) -> bool:
    # torch 2.13.0, its CPU build (a CUDA build is GBs more and grades nothing faster here)
    return (bool(facts) and facts["torch"].split("+")[0] == TORCH.split("==")[1] and facts["cuda"] is None
            and facts["base"] == base)


def pip(venv: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, env=venv_env(venv))


def would_fetch(venv: Path, reqs: list[str], extra: list[str]) -> list[str]:
    """The distributions `pip install` would fetch (a dry run; names, lower case)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        dry = pip(venv, "install", "--dry-run", "--quiet", "--report", str(report), *extra, *reqs)
        if dry.returncode != 0:
            raise BenchError(f"cannot install nbgrader here: `pip install --dry-run {' '.join(extra + reqs)}` "
                             f"failed (exit {dry.returncode}):\n{tail(dry.stdout + dry.stderr)}", 3)
        return [i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]]


def ensure_venv(venv: Path, project: dict) -> dict:
    """nbgrader's venv, reused when it works, else created/repaired; its probe facts."""
    base = project["base"]
    facts = probe(venv)
    if usable(facts, base):
        print(f"nbgrader venv: reusing {venv}", flush=True)
        return facts
    # imports everything but is the wrong torch (a CUDA build, another version) or the wrong base
    # interpreter, or has no interpreter at all: start again; imports not everything: install into it
    clear = venv.exists() and (facts is not None or not (venv / "bin" / "python").exists())
    how = "recreating" if clear else "repairing" if venv.exists() else "creating"
    print(f"nbgrader venv: {how} {venv} (base interpreter {base}) ...", flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    made = subprocess.run([base, "-m", "venv", *(["--clear"] if clear else []), str(venv)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        raise BenchError(f"cannot create the venv {venv} with {base}:\n{tail(made.stderr)}", 3)
    reqs = ["nbgrader", TORCH, f"numpy=={project['numpy']}"]
    extra: list[str] = []
    # What would pip fetch? The PyPI build of torch 2.13 pulls several GB of CUDA libraries; this
    # machine's pip finds the CPU wheel (find-links), another may not. Then the CPU build, pinned
    # by its local version (`+cpu`, which PyPI cannot hold), from PyTorch's CPU index: no fallback
    # to the CUDA build is possible.
    cuda = [n for n in would_fetch(venv, reqs, extra) if n.startswith("nvidia-") or n == "triton"]
    if cuda:
        print(f"  pip would fetch torch's CUDA build ({', '.join(cuda[:3])}, ...): the CPU build from {CPU_INDEX}",
              flush=True)
        reqs = ["nbgrader", TORCH + "+cpu", f"numpy=={project['numpy']}"]
        extra = ["--extra-index-url", CPU_INDEX]
        cuda = [n for n in would_fetch(venv, reqs, extra) if n.startswith("nvidia-") or n == "triton"]
        if cuda:
            raise BenchError(f"cannot install nbgrader here without torch's CUDA build ({', '.join(cuda)})", 3)
    t0 = time.perf_counter()
    done = pip(venv, "install", "--quiet", *extra, *reqs)
    if done.returncode != 0:
        raise BenchError(f"cannot install nbgrader here: `pip install {' '.join(extra + reqs)}` into {venv} "
                         f"failed (exit {done.returncode}):\n{tail(done.stdout + done.stderr)}", 3)
    facts = probe(venv)
    if not usable(facts, base):
        raise BenchError(f"installed, but {venv} still does not import nbgrader with {TORCH} (CPU) "
                         f"(probe: {facts}); remove it and run again", 3)
    print(f"  installed in {time.perf_counter() - t0:.0f} s", flush=True)
    return facts


def check_kernel(venv: Path, facts: dict) -> None:
    """nbgrader runs notebooks in the `python3` kernel: it must be this venv's interpreter."""
    argv0 = facts["kernel_argv0"]
    # jupyter_client replaces a bare `python`/`python3` with the interpreter that launches the kernel
    if argv0 not in ("python", "python3", f"python{sys.version_info.major}") and \
            Path(argv0).resolve() != (venv / "bin" / "python").resolve():
        raise BenchError(f"the `python3` Jupyter kernel is {argv0} (from {facts['kernel_dir']}), not {venv}'s "
                         "interpreter: nbgrader would grade with another environment")


# ---------------------------------------------------------------------------------------------
# 2. the nbgrader course
# ---------------------------------------------------------------------------------------------

# One visible, hand-worked example per function (the solution's own hidden-tests cell).
VISIBLE = {
    "scaled_dot_product_attention":
        "_out, _w = scaled_dot_product_attention(torch.eye(2), torch.eye(2), torch.ones(2, 3))\n"
        "assert torch.allclose(_out, torch.ones(2, 3)) and torch.allclose(_w.sum(-1), torch.ones(2))",
    "causal_mask":
        "assert torch.equal(causal_mask(3), torch.tensor([[True, False, False], [True, True, False], "
        "[True, True, True]]))",
    "multi_head_attention":
        "_X = torch.eye(4)\n"
        "_o, _w = multi_head_attention(_X, torch.eye(4), torch.eye(4), torch.eye(4), torch.eye(4), 2)\n"
        "assert _o.shape == (4, 4) and _w.shape == (2, 4, 4)\n"
        "assert torch.allclose(_w.sum(-1), torch.ones(2, 4))",
    "box_iou":
        "assert torch.allclose(box_iou(torch.tensor([[0., 0., 2., 2.]]), torch.tensor([[1., 1., 3., 3.]])), "
        "torch.tensor([[1 / 7]]))",
    "nms":
        "assert nms(torch.tensor([[0., 0., 2., 2.], [0., 0., 2., 2.], [5., 5., 6., 6.]]), "
        "torch.tensor([0.8, 0.9, 0.1]), 0.5).tolist() == [1, 2]",
    "encode_boxes":
        "_p = torch.tensor([[0., 0., 4., 2.]])\n_t = torch.tensor([[1., 1., 3., 5.]])\n"
        "assert torch.allclose(encode_boxes(_p, _t), torch.tensor([[0., 1., -0.6931472, 0.6931472]]))",
    "decode_boxes":
        "_p = torch.tensor([[0., 0., 4., 2.]])\n"
        "assert torch.allclose(decode_boxes(_p, torch.zeros(1, 4)), _p)",
    "roi_pool":
        "assert roi_pool(torch.arange(16.).reshape(1, 1, 4, 4), torch.tensor([[0., 0., 0., 3., 3.]]), (2, 2), "
        "1.0).flatten().tolist() == [5., 7., 13., 15.]",
}

FUNCTION_TEST = '''\
# {item}: {points:g} points
{visible}
### BEGIN HIDDEN TESTS
# every case grade.py runs for this item (public seed and hidden seeds), against the reference
import copy as _copy, sys as _sys
if {refdir!r} not in _sys.path:
    _sys.path.insert(0, {refdir!r})
from hw2_reference import cases as _cases, {item} as _reference
for _seed, _public in {seeds!r}:
    for _case in _cases.{item}(_seed, _public):
        _got = {item}(*_copy.deepcopy(_case["args"]), **_copy.deepcopy(_case["kwargs"]))
        _exp = _reference(*_case["args"], **_case["kwargs"])
        _got, _exp = (_got if isinstance(_got, tuple) else (_got,)), (_exp if isinstance(_exp, tuple) else (_exp,))
        assert len(_got) == len(_exp), (_case["id"], "returns", len(_got), "values")
        for _g, _e in zip(_got, _exp):
            assert isinstance(_g, torch.Tensor) and _g.shape == _e.shape, (_case["id"], getattr(_g, "shape", _g))
{compare}
### END HIDDEN TESTS
'''
COMPARE_EXACT = '            assert _g.dtype == _e.dtype and torch.equal(_g, _e), _case["id"]'
COMPARE_CLOSE = ('            assert _g.is_floating_point() and torch.allclose(_g.to(_e.dtype), _e, rtol={rtol!r}, '
                 'atol={atol!r}, equal_nan=True), _case["id"]')

PART_A_TESTS = {
    "Q": "assert torch.allclose(Q, X @ W_Q, rtol={rtol}, atol={atol})",
    "K": "assert torch.allclose(K, X @ W_K, rtol={rtol}, atol={atol})",
    "V": "assert torch.allclose(V, X @ W_V, rtol={rtol}, atol={atol})",
    "score": "assert torch.allclose(score, Q @ K.T / math.sqrt(W_Q.shape[-1]), rtol={rtol}, atol={atol})",
    "attention": "assert torch.allclose(attention, torch.softmax(score, dim=-1), rtol={rtol}, atol={atol})\n"
                 "assert torch.allclose(attention.sum(-1), torch.ones(attention.shape[0]), rtol={rtol}, atol={atol})",
    "output": "assert torch.allclose(output, attention @ V, rtol={rtol}, atol={atol})",
}
PART_A_TEST = '''\
# {item}: {points:g} point(s); Part A draws W_Q, W_K, W_V unseeded: each step is checked from the
# student's own earlier values (grade.py's follow-through)
import math
import torch
assert isinstance({item}, torch.Tensor) and {item}.is_floating_point()
{visible}
### BEGIN HIDDEN TESTS
assert torch.equal(X, torch.tensor({x!r})), "X was changed"
assert {item}.shape == {shape!r}, {item}.shape
### END HIDDEN TESTS
'''
PART_A_SHAPES = {"Q": (5, 4), "K": (5, 4), "V": (5, 4), "score": (5, 5), "attention": (5, 5), "output": (5, 4)}
X_ROWS = [[1.0, 0.0, 1.0, 0.0], [1.0, 2.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0],
          [1.0, 0.0, 1.0, 0.0]]


def nbmeta(grade_id: str, *, solution: bool, grade: bool, locked: bool, points: float | None = None) -> dict:
    m = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution,
         "task": False}
    if grade:
        m["points"] = points
    return {"nbgrader": m}


def code_cell(cell_id: str, source: str, metadata: dict) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": cell_id, "metadata": metadata, "outputs": [],
            "source": source}


def source_notebook(rubric: dict, refdir: Path) -> tuple[dict, dict]:
    """The nbgrader source notebook made from the solution; and {item: points} of what it grades."""
    sol = json.loads(SOLUTION.read_text(encoding="utf-8"))
    items = {it["id"]: it for it in rubric["items"]}
    tol = rubric["tolerance"]
    a = rubric["assignment"]
    seeds = [(a["public_seed"], True)] + [(s, False) for s in a["hidden_seeds"]]
    cells, graded = [], {}
    for c in sol["cells"]:
        cid, src = c["id"], "".join(c["source"])
        if cid == "hidden-tests":          # replaced by the per-item test cells below
            continue
        c = copy.deepcopy(c)
        if cid.startswith("answer-"):      # a written answer: manually graded
            item = "written." + cid.removeprefix("answer-").replace("-", ".")
            c["metadata"] = nbmeta(cid, solution=True, grade=True, locked=False, points=items[item]["points"])
            graded[item] = items[item]["points"]
            cells.append(c)
            continue
        if c["cell_type"] != "code" or "### BEGIN SOLUTION" not in src:
            cells.append(c)                # text, questions and import cells stay plain
            continue
        c["metadata"] = nbmeta(cid, solution=True, grade=False, locked=False)
        cells.append(c)
        if cid == "part-a-2":              # after Part A: one test cell per variable
            for item, visible in PART_A_TESTS.items():
                it = items[item]
                t = it.get("tolerance", tol)
                text = PART_A_TEST.format(item=item, points=it["points"], visible=visible.format(**t),
                                          x=X_ROWS, shape=PART_A_SHAPES[item])
                cells.append(code_cell(f"test-{item}", text, nbmeta(f"test_{item}", solution=False, grade=True,
                                                                    locked=True, points=it["points"])))
                graded[item] = it["points"]
        elif cid.startswith("part-a"):
            pass
        else:
            item = re.match(r"def (\w+)\(", src).group(1)
            it = items[item]
            t = it.get("tolerance", tol)
            compare = COMPARE_EXACT if it["dtype"] == "exact" else COMPARE_CLOSE.format(rtol=t["rtol"], atol=t["atol"])
            text = FUNCTION_TEST.format(item=item, points=it["points"], visible=VISIBLE[item], refdir=str(refdir),
                                        seeds=seeds, compare=compare)
            cells.append(code_cell(f"test-{cid}", text, nbmeta(f"test_{item}", solution=False, grade=True,
                                                               locked=True, points=it["points"])))
            graded[item] = it["points"]
    nb = dict(sol, cells=cells)
    nb["nbformat"], nb["nbformat_minor"] = 4, 5
    return nb, graded


def copy_reference(dest: Path) -> Path:
    """The reference implementations and case generators, as a package the hidden tests import
    (outside the course, so the release does not carry them)."""
    pkg = dest / "hw2_reference"
    pkg.mkdir(parents=True)
    for name in ("__init__.py", "attention.py", "boxes.py", "roi_pool.py", "cases.py"):
        shutil.copy(REFERENCE / name, pkg / name)
    return dest


def nbgrader(venv: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "nbgrader"), *args], cwd=cwd, capture_output=True, text=True,
                          env=venv_env(venv))


def make_course(course: Path, venv: Path, rubric: dict, refdir: Path) -> tuple[dict, dict]:
    """Source, config and release of the course; (released notebook, {item: points})."""
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    seconds = rubric["limits"]["cell_seconds"]
    (course / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        "c.CourseDirectory.course_id = 'hw2-bench'\n"
        f"c.Execute.timeout = {seconds}  # the rubric's cell_seconds (nbgrader's default: 30)\n",
        encoding="utf-8")
    nb, graded = source_notebook(rubric, refdir)
    (course / "source" / ASSIGNMENT / "hw2.ipynb").write_text(json.dumps(nb, ensure_ascii=False, indent=1),
                                                              encoding="utf-8")
    made = nbgrader(venv, ["generate_assignment", ASSIGNMENT, "--force"], course)
    release = course / "release" / ASSIGNMENT / "hw2.ipynb"
    if made.returncode != 0 or not release.exists():
        raise BenchError(f"`nbgrader generate_assignment {ASSIGNMENT}` failed (exit {made.returncode}):\n"
                         f"{tail(made.stdout + made.stderr)}")
    return json.loads(release.read_text(encoding="utf-8")), graded


# ---------------------------------------------------------------------------------------------
# 3. submissions adapted to the release
# ---------------------------------------------------------------------------------------------

def text(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def defined(cell: dict) -> str | None:
    m = re.search(r"^def (\w+)\(", text(cell), re.M) if cell["cell_type"] == "code" else None
    return m.group(1) if m else None


def editable(cell: dict) -> bool:
    nbm = cell.get("metadata", {}).get("nbgrader", {})
    return not nbm.get("locked", False) and not (nbm.get("grade", False) and not nbm.get("solution", False))


def adapt(student: dict, release: dict, solution_ids: list[str]) -> tuple[dict, list[str]]:
    """The student's notebook as nbgrader expects it (see the module's docstring); and what could
    not be placed."""
    nb = copy.deepcopy(release)
    cells = nb["cells"]
    where = {c["id"]: i for i, c in enumerate(cells)}
    defs = {defined(c): c["id"] for c in cells if defined(c) and editable(c)}
    has_ids = any("id" in c for c in student["cells"])
    same_layout = len(student["cells"]) >= len(solution_ids) - 1 and not has_ids
    placed: list[tuple[str, dict]] = []       # (release id, student cell), in the student's order
    extra: list[tuple[str | None, dict]] = [] # (release id of the last placed cell, student cell)
    unplaced = []
    for k, sc in enumerate(student["cells"]):
        rid = None
        if sc.get("id") in where:
            rid = sc["id"]
        elif defined(sc) in defs:
            rid = defs[defined(sc)]
        elif same_layout and k < len(solution_ids) and solution_ids[k] in where:
            rid = solution_ids[k]
        if rid is not None and cells[where[rid]]["cell_type"] == sc["cell_type"]:
            placed.append((rid, sc))
        elif sc["cell_type"] == "code" and text(sc).strip():
            extra.append((placed[-1][0] if placed else None, sc))
        elif sc["cell_type"] == "code" or sc.get("id", "") not in where:
            if text(sc).strip() and sc["cell_type"] != "markdown":
                unplaced.append(sc.get("id", f"cell {k}"))
    for rid, sc in placed:
        c = cells[where[rid]]
        if editable(c):
            c["source"] = text(sc)
            if c["cell_type"] == "code":
                c["outputs"], c["execution_count"] = [], None
    for n, (after, sc) in enumerate(extra):
        new = {"cell_type": "code", "execution_count": None, "id": f"extra-{n}", "metadata": {}, "outputs": [],
               "source": text(sc)}
        pos = where[after] + 1 if after is not None else 0
        cells.insert(pos, new)
        where = {c["id"]: i for i, c in enumerate(cells)}
    return nb, unplaced


def make_submissions(course: Path, subs: Path, release: dict, n: int, samples: list[Path]) -> dict[str, str]:
    """N copies, into submitted/<student>/hw2/ and SUBS/<student>/; {student: sample name}."""
    solution_ids = [c["id"] for c in json.loads(SOLUTION.read_text(encoding="utf-8"))["cells"]]
    adapted = {}
    for p in samples:
        nb, unplaced = adapt(json.loads(p.read_text(encoding="utf-8")), release, solution_ids)
        if unplaced:
            print(f"  note: {p.parent.name}: cells not placed: {unplaced}", flush=True)
        adapted[p.parent.name] = nb
    who = {}
    for k in range(n):
        name = samples[k % len(samples)].parent.name
        nb = copy.deepcopy(adapted[name])
        nb["metadata"]["bench_copy"] = k
        body = json.dumps(nb, ensure_ascii=False, indent=1)
        student = f"student{k:04d}"
        for d in (course / "submitted" / student / ASSIGNMENT, subs / student):
            d.mkdir(parents=True)
            (d / "hw2.ipynb").write_text(body, encoding="utf-8")
        who[student] = name
    return who


# ---------------------------------------------------------------------------------------------
# 4. the timed runs
# ---------------------------------------------------------------------------------------------

def time_nbgrader(venv: Path, template: Path, course: Path, n: int) -> float:
    shutil.copytree(template, course)
    t0 = time.perf_counter()
    proc = nbgrader(venv, ["autograde", ASSIGNMENT], course)
    seconds = time.perf_counter() - t0
    (course / "autograde.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    done = list((course / "autograded").glob(f"*/{ASSIGNMENT}/hw2.ipynb"))
    if proc.returncode != 0 or len(done) != n:
        raise BenchError(f"`nbgrader autograde {ASSIGNMENT}` failed (exit {proc.returncode}, {len(done)} of {n} "
                         f"autograded):\n{tail(proc.stdout + proc.stderr)}")
    return seconds


def time_batch(subs: Path, out: Path, jobs: int, n: int) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([str(PROJECT_PY), str(ROOT / "grade.py"), "batch", str(subs), "--out", str(out),
                           "--rubric", str(RUBRIC), "--jobs", str(jobs)], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    m = re.search(r"(\d+) graded", proc.stdout)
    if proc.returncode != 0 or "not graded" in proc.stderr or not m or int(m.group(1)) != n:
        raise BenchError(f"`grade.py batch` failed (exit {proc.returncode}):\n{tail(proc.stdout + proc.stderr)}")
    return seconds


def nbgrader_scores(venv: Path, course: Path) -> dict[str, tuple[float, float]]:
    proc = nbgrader(venv, ["export", "--to", "nbgrader-grades.csv"], course)
    path = course / "nbgrader-grades.csv"
    if proc.returncode != 0 or not path.exists():
        print(f"  note: `nbgrader export` failed: {tail(proc.stderr, 5)}")
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {r["student_id"]: (float(r["score"]), float(r["max_score"])) for r in csv.DictReader(f)}


def batch_scores(out: Path) -> dict[str, tuple[float, float]]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        return {r["student"]: (float(r["total"]), float(r["max"])) for r in csv.DictReader(f)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=20, help="submissions (default 20)")
    ap.add_argument("--jobs", type=int, default=2, help="grade.py batch --jobs (default 2)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="run both this many times, alternating which goes first; report each one's last run")
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV, help=f"nbgrader's virtualenv (default {DEFAULT_VENV})")
    ap.add_argument("--include-broken", action="store_true",
                    help=f"also copy {BROKEN} (an infinite loop: it measures the time limits)")
    ap.add_argument("--keep", type=Path, help="build everything in this (new) folder and keep it")
    args = ap.parse_args()
    if args.n < 1 or args.rounds < 1:
        ap.error("-n and --rounds must be at least 1")
    try:
        return run(args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.status


def run(args) -> int:
    project = project_facts()
    venv = args.venv.expanduser().absolute()
    facts = ensure_venv(venv, project)
    check_kernel(venv, facts)
    rubric = tomllib.loads(RUBRIC.read_text(encoding="utf-8"))
    samples = sorted(p for p in (ROOT / "submissions" / "hw2").glob("*/hw2.ipynb")
                     if args.include_broken or p.parent.name != BROKEN)
    if args.keep:
        args.keep.mkdir(parents=True)
        tmp_ctx = None
        tmp = args.keep.absolute()
    else:
        tmp_ctx = tempfile.TemporaryDirectory(prefix="bench-nbgrader-")
        tmp = Path(tmp_ctx.name)
    try:
        refdir = copy_reference(tmp / "autograder")
        template = tmp / "course"
        release, graded = make_course(template, venv, rubric, refdir)
        subs = tmp / "subs"
        who = make_submissions(template, subs, release, args.n, samples)
        print(f"{args.n} notebooks: copies of {', '.join(p.parent.name for p in samples)}; nbgrader assignment: "
              f"{sum(1 for c in release['cells'] if c['metadata'].get('nbgrader', {}).get('grade'))} graded cells, "
              f"{sum(graded.values()):g} points", flush=True)
        runs: dict[str, list[float]] = {"nbgrader": [], "batch": []}
        last = {}
        for r in range(args.rounds):
            order = ("nbgrader", "batch") if r % 2 == 0 else ("batch", "nbgrader")
            for tool in order:
                load = os.getloadavg()[0]     # other work on the machine skews both: printed with each run
                if tool == "nbgrader":
                    course = tmp / f"course-run{r + 1}"
                    s = time_nbgrader(venv, template, course, args.n)
                    last["nbgrader"] = course
                else:
                    out = tmp / f"out-run{r + 1}"
                    s = time_batch(subs, out, args.jobs, args.n)
                    last["batch"] = out
                runs[tool].append(s)
                label = "nbgrader autograde" if tool == "nbgrader" else f"grade.py batch --jobs {args.jobs}"
                print(f"round {r + 1}: {label}: {s:.2f} s   (load average before: {load:.2f}, after: "
                      f"{os.getloadavg()[0]:.2f}; {os.cpu_count()} cores)", flush=True)
        nb_s, gb_s = runs["nbgrader"][-1], runs["batch"][-1]
        nb_scores, gb_scores = nbgrader_scores(venv, last["nbgrader"]), batch_scores(last["batch"])
    finally:
        if tmp_ctx is not None:
            tmp_ctx.cleanup()

    which = "each tool's last run" + (f" (run {args.rounds} of {args.rounds}; rounds alternate which goes first)"
                                      if args.rounds > 1 else "")
    print()
    print(f"nbgrader {facts['nbgrader']} (torch {facts['torch']}, numpy {facts['numpy']}, nbclient "
          f"{facts['nbclient']}, ipykernel {facts['ipykernel']}, Python {facts['python']}) in {venv}")
    print(f"grade.py: torch {project['torch']}, numpy {project['numpy']}, Python {project['python']}, bwrap sandbox")
    print(f"figures: {which}")
    nb_rate, gb_rate = args.n / nb_s, args.n / gb_s
    print(f"nbgrader autograde (one process, notebooks one after another): {args.n} in {nb_s:.2f} s = "
          f"{nb_rate:.2f} submissions/s   (all runs: {', '.join(f'{x:.2f}' for x in runs['nbgrader'])} s)")
    print(f"grade.py batch --jobs {args.jobs} (one process, start to exit): {args.n} in {gb_s:.2f} s = "
          f"{gb_rate:.2f} submissions/s   (all runs: {', '.join(f'{x:.2f}' for x in runs['batch'])} s)")
    print(f"ratio grade.py batch / nbgrader autograde: {gb_rate / nb_rate:.1f}x")
    written = sum(v for k, v in graded.items() if k.startswith("written."))
    print(f"scores (untimed, a check that both graded alike; the {written:g} points of written answers await "
          "manual grading in both, so they count 0 here):")
    for sample in dict.fromkeys(who.values()):
        students = [s for s, w in who.items() if w == sample]
        nbs = {nb_scores.get(s) for s in students}
        gbs = {gb_scores.get(s) for s in students}
        fmt = lambda v: ", ".join("?" if x is None else f"{x[0]:g}/{x[1]:g}" for x in sorted(v, key=str))  # noqa: E731
        print(f"  {sample} (x{len(students)}): nbgrader {fmt(nbs)}; grade.py {fmt(gbs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
