"""The sandboxed interpreter runs the grader's own Python environment (the venv's torch, numpy and
safetensors, not the base interpreter's), sees no host path of the project, and a command that
returns leaves no process of its sandbox behind."""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import uuid

import pytest

from helpers import PART_A, ROOT, RUBRIC, needs_bwrap

ASK = """
# %%
import hashlib, importlib, json, sys
info = {"path": sys.path}
for name in ("torch", "numpy", "safetensors"):
    m = importlib.import_module(name)
    info[name] = [getattr(m, "__version__", None), m.__file__, hashlib.sha256(open(m.__file__, "rb").read()).hexdigest()]
try:
    import grader
    info["grader"] = repr(grader)
except ImportError:
    info["grader"] = None
import os
info["own files"] = {}           # the grader's own install, where the sandbox sees the environment
for folder in [p for p in sys.path if p.startswith("/opt/env/")]:
    for name in os.listdir(folder):
        if "autograder" in name and not os.path.isdir(os.path.join(folder, name)):
            try:
                info["own files"][name] = open(os.path.join(folder, name), "rb").read().decode(errors="replace")
            except OSError as e:
                info["own files"][name] = type(e).__name__
print("ENV" + json.dumps(info))
"""


def _sandbox_environment(grader, tmp_path) -> dict:
    path = tmp_path / f"env-{uuid.uuid4().hex[:6]}.py"
    path.write_text(PART_A + ASK, encoding="utf-8")
    result = grader.grade(path)
    cell = next(c for c in result.run.cells if c.run == "public" and c.cell == 2)
    assert cell.status == "ok", (cell.status, cell.note, cell.stdout[-2000:])
    return json.loads(cell.stdout.split("ENV", 1)[1])


def _host_path(inside: str, kind: str) -> str:
    """Where a file the sandbox sees lies on the host."""
    from grader.sandbox import bwrap
    if kind == "bwrap":
        for host, seen in bwrap.python_environment().paths:
            if inside.startswith(seen + "/"):
                return host + inside[len(seen):]
    return os.path.realpath(inside)


def _check_environment(inside: dict, kind: str) -> None:
    for name in ("torch", "numpy", "safetensors"):
        module = importlib.import_module(name)
        version, file, digest = inside[name]
        # the very file this process imported, not one of the same version elsewhere
        assert _host_path(file, kind) == os.path.realpath(module.__file__), (name, file, module.__file__)
        assert version == getattr(module, "__version__", None)
        assert digest == hashlib.sha256(open(module.__file__, "rb").read()).hexdigest()
    # every site-packages folder of this environment is on the sandbox's path...
    import site
    seen = [_host_path(p + "/", kind).rstrip("/") for p in inside["path"]]
    for folder in site.getsitepackages():
        assert os.path.realpath(folder) in seen, (folder, inside["path"])
    # ...and, in a venv, nothing of the base interpreter's site-packages
    if sys.prefix != sys.base_prefix:
        base_site = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})["purelib"]
        assert os.path.realpath(base_site) not in seen and base_site not in inside["path"]


@needs_bwrap
def test_the_bwrap_sandbox_runs_the_graders_own_environment_at_neutral_paths(bwrap_grader, tmp_path):
    inside = _sandbox_environment(bwrap_grader, tmp_path)
    _check_environment(inside, "bwrap")
    assert inside["torch"][1].startswith("/opt/env/") or inside["torch"][1].startswith(sys.base_prefix)
    dump = json.dumps(inside)
    assert str(ROOT) not in dump and sys.prefix not in dump, dump[:2000]
    # the grader's own install is not importable inside, and its files (an editable install's
    # finder names the project's folder) cannot be read
    assert inside["grader"] is None
    assert inside["own files"] and set(inside["own files"].values()) == {"PermissionError"}, inside["own files"]


def test_the_unsandboxed_kind_runs_the_graders_own_environment(tmp_path):
    from grader.pipeline import Grader
    with Grader(RUBRIC, sandbox="none", timeout=10) as g:
        inside = _sandbox_environment(g, tmp_path)
    _check_environment(inside, "none")


FORKS = """
# %%
import ctypes, os, time
for i in range(40):
    if os.fork() == 0:
        os.setsid() if i % 2 else None
        ctypes.CDLL(None).prctl(15, b"{marker}", 0, 0, 0)
        time.sleep(600)
        os._exit(0)
print("forked")
"""


# Runs a command as a child subreaper: whatever the command leaves running is re-parented to this
# wrapper (not to init), so its live descendants at the moment the command returns are exactly
# what the command left, whatever else runs on the machine. Prints them, then kills them.
LEFTOVERS = r"""
import ctypes, json, os, signal, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)          # PR_SET_CHILD_SUBREAPER
run = subprocess.run(sys.argv[1:], capture_output=True, text=True)
def tree():
    parent, info = {}, {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                head, _, rest = open(f"/proc/{p}/stat", "rb").read().rpartition(b")")
            except OSError:
                continue
            parent[int(p)] = int(rest.split()[1])
            info[int(p)] = (head.partition(b"(")[2].decode(), rest.split()[0].decode())
    out = []
    for pid in info:
        up = parent.get(pid, 0)
        while up > 1 and up != os.getpid():
            up = parent.get(up, 0)
        if up == os.getpid() and info[pid][1] != "Z":
            out.append(f"{pid} {info[pid][0]} {info[pid][1]}")
    return out
left = tree()
for line in left:
    try:
        os.kill(int(line.split()[0]), signal.SIGKILL)
    except OSError:
        pass
print(json.dumps({"returncode": run.returncode, "stderr": run.stderr[-2000:], "left": left}))
"""


@pytest.mark.parametrize("command,sandbox", [pytest.param("grade", "bwrap", marks=needs_bwrap), ("grade", "none"),
                                             pytest.param("batch", "bwrap", marks=needs_bwrap)])
def test_a_command_returns_only_once_its_sandbox_is_gone(tmp_path, command, sandbox):
    marker = f"left{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "subs" / "s1"
    folder.mkdir(parents=True)
    (folder / "forks.py").write_text(PART_A + textwrap.dedent(FORKS.format(marker=marker)), encoding="utf-8")
    result = tmp_path / "out" / "results" / "s1.json"
    target = ([str(folder / "forks.py"), "--json", str(result)] if command == "grade"
              else [str(tmp_path / "subs"), "--out", str(tmp_path / "out")])
    result.parent.mkdir(parents=True, exist_ok=True)
    command_line = [sys.executable, str(ROOT / "grade.py"), command, *target, "--sandbox", sandbox, "--rubric", str(RUBRIC)]
    wrapped = subprocess.run([sys.executable, "-c", LEFTOVERS, *command_line], capture_output=True, text=True,
                             timeout=300, cwd=tmp_path)
    run = json.loads(wrapped.stdout)
    assert run["returncode"] == 0, run["stderr"]
    cells = json.loads(result.read_text(encoding="utf-8"))["run"]["cells"]
    assert any("forked" in c.get("stdout", "") for c in cells), cells         # the children were made
    assert run["left"] == [], run["left"]
