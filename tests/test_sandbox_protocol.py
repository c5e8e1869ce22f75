"""The sandbox's runtime as a package (issue 14, section 2): one small module per job, a torch-free
protocol module that both sides import without side effects, one formula per budget, the wire
formats defined once; and inside the sandbox, only the runtime is there to see."""
from __future__ import annotations

import ast
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "grader" / "sandbox" / "runtime"
SANDBOX = ROOT / "grader" / "sandbox"
HOST_SIDE = (ROOT / "grader" / "run.py", SANDBOX / "__init__.py", SANDBOX / "bwrap.py", SANDBOX / "probe.py")
sys.path.insert(0, str(ROOT))

from grader.sandbox.runtime import protocol  # noqa: E402


def _fresh(code: str) -> str:
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout


# --- the package's shape -----------------------------------------------------------------------
def test_each_runtime_module_is_small_and_says_its_job():
    modules = sorted(RUNTIME.glob("*.py"))
    assert {m.name for m in modules} >= {"__init__.py", "__main__.py", "protocol.py", "zygote.py", "confine.py",
                                         "supervise.py", "execute.py", "codec.py"}
    for path in modules:
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) < 400, path.name
        assert ast.get_docstring(ast.parse(text)), path.name
    # the entry script only loads the package
    assert len((SANDBOX / "probe.py").read_text().splitlines()) < 60


def test_protocol_imports_nothing_but_the_standard_library():
    imported = set()
    for node in ast.walk(ast.parse((RUNTIME / "protocol.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "protocol imports nothing of the runtime"
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "json", "os", "struct"}


def test_the_trusted_side_imports_only_the_protocol_and_changes_no_collector_setting():
    out = _fresh("""
        import gc, sys
        before = gc.get_threshold()
        import grader.sandbox
        heavy = sorted(m for m in ("torch", "safetensors", "numpy") if m in sys.modules)
        print("sandbox", gc.get_threshold() == before, heavy)
        import grader.run
        print("run", gc.get_threshold() == before,
              sorted(m for m in sys.modules if m.startswith("grader.sandbox.runtime") or m == "grader.sandbox.probe"))
        """)
    assert "sandbox True []" in out, out
    # and the codec of trusted values (torch-free, no side effects)
    assert "run True ['grader.sandbox.runtime', 'grader.sandbox.runtime.protocol', 'grader.sandbox.runtime.tree']" in out, out


def test_the_runtime_modules_next_to_student_code_keep_their_own_builtins():
    out = _fresh("""
        import builtins, importlib
        for name in ("codec", "confine", "execute", "supervise", "tree", "zygote"):
            m = importlib.import_module("grader.sandbox.runtime." + name)
            b = m.__dict__["__builtins__"]
            print(name, isinstance(b, dict) and b is not vars(builtins) and b["len"] is len)
        """)
    assert out.split() == [w for name in ("codec", "confine", "execute", "supervise", "tree", "zygote") for w in (name, "True")]


# --- one formula per budget, used by both sides ------------------------------------------------------
def test_every_budget_is_one_protocol_function():
    limits = {"cell_seconds": 3}
    spec = {"runs": [{"blocks": [{}] * 4, "calls": [{}] * 3}, {"blocks": [{}] * 2}], "limits": limits}
    steps = protocol.plan(spec)
    assert len(steps) == 9 and {s["seconds"] for s in steps} == {3.0}
    assert protocol.step_seconds(limits) == 3.0
    assert protocol.job_seconds(limits, steps) == 3 * (9 + 2)
    assert protocol.cpu_seconds(limits, steps) == 3 * (9 + 2) + 5
    assert protocol.answer_seconds(spec) == 3 * (9 + 3) + 30
    # a function item's own limit (the rubric's, or derived from the reference's time) counts as it is
    spec["runs"][0]["calls"][1] = {"seconds": 0.5}
    steps = protocol.plan(spec)
    assert [s["seconds"] for s in steps][4:7] == [3.0, 0.5, 3.0]
    assert protocol.job_seconds(limits, steps) == 3 * 8 + 0.5 + 6
    # nobody else reads the step limit or counts the steps into a budget
    for path in [*HOST_SIDE, *RUNTIME.glob("*.py")]:
        if path.name == "protocol.py":
            continue
        text = path.read_text(encoding="utf-8")
        reads = [line for line in text.splitlines() if "cell_seconds" in line and '"cell_seconds":' not in line]
        assert reads == [], (path.name, reads)
        assert "n_steps + 2" not in text and "steps + 3" not in text, path.name
    uses = {"run.py": "answer_seconds(spec)", "confine.py": "cpu_seconds(limits, steps)",
            "supervise.py": "job_seconds(limits, steps)"}
    for name, call in uses.items():
        path = ROOT / "grader" / name if name == "run.py" else RUNTIME / name
        assert call in path.read_text(encoding="utf-8"), name


def test_the_worker_stops_a_runner_at_the_protocols_job_budget(monkeypatch):
    from grader.sandbox.runtime import supervise
    monkeypatch.setattr(supervise, "job_seconds", lambda limits, steps: 0.2)
    sleeper = subprocess.Popen(["sleep", "30"])
    r, w = os.pipe()
    try:
        os.write(w, protocol.STEP_FRAME.pack(protocol.BEGIN, 0, 0))
        t0 = time.monotonic()
        step, why, done = supervise.watch(sleeper.pid, r, {"cell_seconds": 30}, [{"seconds": 30.0}] * 3)
        assert time.monotonic() - t0 < 5 and (step, done) == (0, False) and "time limit" in why
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
    finally:
        os.close(r)
        os.close(w)
        sleeper.kill()


def test_each_step_is_stopped_at_its_own_limit():
    """A function item's limit (derived from the reference's time) holds for its step only."""
    from grader.sandbox.runtime import supervise
    sleeper = subprocess.Popen(["sleep", "30"])
    r, w = os.pipe()
    steps = [{"seconds": 30.0}, {"seconds": 0.3}, {"seconds": 30.0}]
    try:
        os.write(w, protocol.STEP_FRAME.pack(protocol.BEGIN, 0, 0) + protocol.STEP_FRAME.pack(protocol.END, 0, 0)
                 + protocol.STEP_FRAME.pack(protocol.BEGIN, 1, 0))
        t0 = time.monotonic()
        step, why, done = supervise.watch(sleeper.pid, r, {"cell_seconds": 30}, steps)
        took = time.monotonic() - t0
        assert 0.25 < took < 3 and (step, done) == (1, False) and why == "time limit of 0.3 s reached"
    finally:
        os.close(r)
        os.close(w)
        sleeper.kill()


def test_a_limit_follows_the_reference_within_a_floor_and_a_cap():
    limits = {"cell_seconds": 10}
    assert protocol.derived_seconds(limits, None, 0.0001) == protocol.CALL_FLOOR == 1.0
    assert protocol.derived_seconds(limits, None, 0.011) == 2.0     # 1.1 s, rounded up to a steady figure
    assert protocol.derived_seconds(limits, None, 0.03) == 5.0
    assert protocol.derived_seconds(limits, None, 1.0) == 10.0       # at most a cell's
    assert protocol.derived_seconds(limits, 2.5, 0.0001) == 2.5     # the rubric's own wins
    assert protocol.derived_seconds(limits, None, None) == 10.0     # nothing to time: a cell's


def test_a_runner_gets_the_protocols_cpu_limit():
    out = _fresh("""
        import resource
        from grader.sandbox.runtime import confine, protocol
        limits = {"cell_seconds": 2.5, "memory_mb": 4096, "file_mb": 8, "nproc": 0}
        steps = [{"seconds": 2.5}] * 7
        confine.set_limits(limits, steps)
        print(resource.getrlimit(resource.RLIMIT_CPU), protocol.cpu_seconds(limits, steps))
        """)
    assert out.split() == ["(27,", "27)", "27"]


# --- the wire formats, defined once -----------------------------------------------------------------
def test_frames_jobs_and_control_messages_round_trip():
    spec, blob = {"runs": [], "limits": {"cell_seconds": 1}, "calls_key": "k"}, b"\0blob" * 1000
    r, w = os.pipe()
    try:
        os.write(w, protocol.job(spec, blob))
        assert protocol.read_job(r) == (spec, blob)
        protocol.write_frame(w, b"ready")
        assert protocol.read_frame(r) == b"ready"
        os.close(w)
        w = -1
        with pytest.raises(EOFError):
            protocol.read_frame(r)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    assert protocol.parse_control(protocol.spawn_message(3, 60003)) == ("spawn", 3, 60003)
    assert protocol.parse_control(protocol.spawn_message(0, None)) == ("spawn", 0, None)
    assert protocol.parse_control(protocol.stop_message(2)) == ("stop", 2, None)


def test_answers_and_records_round_trip_and_malformed_records_are_nothing():
    files = [(protocol.FD_OUTPUT, b"below python"), (protocol.step_file(12), b"\0\0\0\2{}tensors")]
    header, got = protocol.split_reply(protocol.reply({"events": [], "seconds": 0.5}, files))
    assert header["events"] == [] and header["seconds"] == 0.5 and got == dict(files)
    assert [protocol.step_of(n) for n in got] == [None, 12] and protocol.step_of("step-x") is None
    assert protocol.split_record(protocol.RECORD_HEAD.pack(2) + b"{}tensors") == (b"{}", b"tensors")
    for bad in (b"", b"\0\0", protocol.RECORD_HEAD.pack(0) + b"{}", protocol.RECORD_HEAD.pack(99) + b"{}"):
        assert protocol.split_record(bad) is None


# --- inside the sandbox: the runtime, and nothing else of the grader -----------------------------------
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (CI installs it)")
def test_inside_the_sandbox_only_the_runtime_is_there(bwrap_grader, tmp_path):
    path = tmp_path / f"inside-{uuid.uuid4().hex[:6]}.py"
    path.write_text(textwrap.dedent("""
        import os, sys
        for folder in ("/opt/grader", "/opt/grader/runtime"):
            try:
                print(folder, sorted(n for n in os.listdir(folder) if n != "__pycache__"))
            except PermissionError:     # run as root, the job's uid cannot even look
                print(folder, "denied")
        print("on-path", [p for p in sys.path if p.startswith("/opt/grader")])
        for name in ("grader", "grader.sandbox"):
            try:
                __import__(name)
                print("IMPORTED", name)
            except ImportError:
                print("no", name)
        try:
            open("/opt/grader/runtime/protocol.py", "a")
            print("WROTE")
        except OSError as e:
            print("read-only", type(e).__name__)
        """), encoding="utf-8")
    result = bwrap_grader.grade(path)
    cell = next(c for c in result.run.cells if c.run == "public")
    out = cell.stdout
    runtime = sorted(p.name for p in RUNTIME.glob("*.py"))
    assert "/opt/grader denied" in out or "/opt/grader ['probe.py', 'runtime']" in out, (out, cell.error)
    assert "/opt/grader/runtime denied" in out or f"/opt/grader/runtime {runtime}" in out, out
    assert "on-path []" in out
    assert "IMPORTED" not in out and "no grader" in out and "WROTE" not in out and "read-only" in out
