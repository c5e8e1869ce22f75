"""Hostile submissions under the real bwrap sandbox. Each asserts the reason reported, that the
host is untouched, and (last, `assert_next_submission_graded_right`) that the next submission is
graded right."""
from __future__ import annotations

import os
import socket
import textwrap
import uuid

import pytest

from helpers import PART_A, ROOT, RUBRIC, assert_next_submission_graded_right, needs_bwrap, statuses

pytestmark = needs_bwrap


def hostile(grader, tmp_path, code: str, extra: str = ""):
    """Grade Part A (correct) + a hostile cell; return (result, the hostile cell's public run)."""
    path = tmp_path / f"hostile-{uuid.uuid4().hex[:6]}.py"
    path.write_text(PART_A + "\n# %%\n" + textwrap.dedent(code) + "\n" + textwrap.dedent(extra), encoding="utf-8")
    result = grader.grade(path)
    cell = next(c for c in result.run.cells if c.run == "public" and c.cell == 2)
    assert statuses(result)["Q"] == "pass", "Part A must still be graded"
    return result, cell


def test_no_network(bwrap_grader, tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        _, cell = hostile(bwrap_grader, tmp_path, f"""
            import socket
            for addr in [("127.0.0.1", {port}), ("1.1.1.1", 80), ("pypi.org", 443)]:
                s = socket.socket(); s.settimeout(1)
                try:
                    s.connect(addr); print("CONNECTED", addr)
                except OSError as e:
                    print("refused", addr, type(e).__name__)
            """)
    finally:
        server.close()
    assert "CONNECTED" not in cell.stdout and cell.stdout.count("refused") == 3
    assert_next_submission_graded_right(bwrap_grader)


def test_cannot_read_host_files_reference_or_rubric(bwrap_grader, tmp_path):
    targets = [ROOT / "reference" / "hw2" / "roi_pool.py", ROOT / "rubrics" / "hw2.toml", ROOT / "submissions",
               "/etc/shadow", "/etc/passwd", "/root/.bashrc", "/home"]
    _, cell = hostile(bwrap_grader, tmp_path, f"""
        import os
        for p in {[str(t) for t in targets]!r}:
            try:
                print("READ", p, len(open(p).read()) if os.path.isfile(p) else os.listdir(p))
            except OSError as e:
                print("denied", p, type(e).__name__)
        """)
    assert "READ" not in cell.stdout and cell.stdout.count("denied") == len(targets)
    assert_next_submission_graded_right(bwrap_grader)


def test_cannot_write_outside_the_work_dir(bwrap_grader, tmp_path):
    marker = ROOT / f"pwned-{uuid.uuid4().hex}"
    _, cell = hostile(bwrap_grader, tmp_path, f"""
        for p in [{str(marker)!r}, "/usr/pwned", "/opt/grader/probe.py", "/proc/sys/kernel/hostname"]:
            try:
                open(p, "w").write("x"); print("WROTE", p)
            except OSError as e:
                print("denied", p, type(e).__name__)
        open("mine.txt", "w").write("the work dir is writable")
        print("workdir ok")
        """)
    assert "WROTE" not in cell.stdout and cell.stdout.count("denied") == 4 and "workdir ok" in cell.stdout
    assert not marker.exists()
    assert_next_submission_graded_right(bwrap_grader)


def test_bounded_fork_bomb_is_stopped_by_the_process_limit(bwrap_grader, tmp_path):
    _, cell = hostile(bwrap_grader, tmp_path, """
        import os, time
        made, err = 0, None
        for i in range(400):
            try:
                pid = os.fork()
            except OSError as e:
                err = type(e).__name__; break
            if pid == 0:
                time.sleep(60); os._exit(0)
            made += 1
        print("forked", made, err)
        """)
    made = int(cell.stdout.split()[1])
    assert made < 64 and "BlockingIOError" in cell.stdout
    assert_next_submission_graded_right(bwrap_grader)


def test_memory_bomb_costs_its_cell_only(bwrap_grader, tmp_path):
    result, cell = hostile(bwrap_grader, tmp_path, "hog = bytearray(16 * 2**30)\n")
    assert cell.status == "limit" and cell.error.type == "MemoryError"
    assert "memory" in result.run.limit_hit
    assert_next_submission_graded_right(bwrap_grader)


@pytest.mark.parametrize("code", ["while True:\n    pass\n", "import time\ntime.sleep(10**6)\n",
                                  "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass\n"])
def test_time_limit_named_with_its_place(bwrap_grader, tmp_path, code):
    result, cell = hostile(bwrap_grader, tmp_path, code, "\n# %%\nafter = 1\nprint('after ran')\n")
    assert cell.status == "limit" and result.run.limit_hit == "time limit of 3 s reached in cell 2"
    later = next(c for c in result.run.cells if c.run == "public" and c.cell == 3)
    assert later.status == "ok" and "after ran" in later.stdout
    assert_next_submission_graded_right(bwrap_grader)


def test_stdout_flood_is_truncated(bwrap_grader, tmp_path):
    _, cell = hostile(bwrap_grader, tmp_path, "for i in range(300000):\n    print('x' * 99)\n")
    assert cell.status == "ok" and cell.truncated and len(cell.stdout) == 256 * 1024
    assert_next_submission_graded_right(bwrap_grader)


def test_filling_the_disk_hits_the_sandbox_limit(bwrap_grader, tmp_path):
    _, cell = hostile(bwrap_grader, tmp_path, """
        chunk = b"0" * 2**20
        n = 0
        try:
            with open("big.bin", "wb") as f:
                for _ in range(4096):
                    f.write(chunk); n += 1
        except OSError as e:
            print("stopped", n, e.errno)
        """)
    n = int(cell.stdout.split()[1])
    assert "stopped" in cell.stdout and n <= 512
    assert_next_submission_graded_right(bwrap_grader)


def test_setsid_daemon_is_gone_before_the_next_job(bwrap_grader, tmp_path):
    hostile(bwrap_grader, tmp_path, """
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                while True:
                    time.sleep(0.05)
            os._exit(0)
        time.sleep(0.2)
        """)
    _, cell = hostile(bwrap_grader, tmp_path, """
        import os
        me, parent = os.getpid(), os.getppid()
        others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me, parent)]
        print("others", others)
        """)
    assert cell.stdout.strip() == "others []"
    assert_next_submission_graded_right(bwrap_grader)


def test_cannot_kill_the_worker_or_see_its_environment(bwrap_grader, tmp_path):
    _, cell = hostile(bwrap_grader, tmp_path, """
        import os, signal
        for pid in (os.getppid(), 1):
            try:
                os.kill(pid, signal.SIGKILL); print("KILLED", pid)
            except OSError as e:
                print("denied", type(e).__name__)
        try:
            print("ENV", open("/proc/1/environ").read())
        except OSError as e:
            print("environ denied", type(e).__name__)
        print("cmdline", open("/proc/1/cmdline").read().replace("\\0", " "))
        st = open("/proc/self/status").read()
        print("uid", os.getuid(), [l for l in st.splitlines() if l.startswith("CapEff")][0].split()[1])
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        print("unshare-user", libc.unshare(0x10000000), ctypes.get_errno())
        print("unshare-mount", libc.unshare(0x00020000), ctypes.get_errno())
        print("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None), ctypes.get_errno())
        caps = [l.split() for l in open("/proc/1/status") if l.startswith("Cap")]
        print("worker", " ".join(f"{name}{int(v, 16) & (1 << 21 | 1 << 8)}" for name, v in caps))
        """)
    out = cell.stdout
    assert "KILLED" not in out and out.count("denied") == 3
    # pid 1 is the slot's worker: its command line is the interpreter the job itself runs on,
    # nothing of bwrap's (the host paths it binds) nor of the trusted side's
    cmdline = out.split("cmdline")[1].split("\n")[0]
    assert str(ROOT) not in out and "bwrap" not in cmdline and "/opt/grader/probe.py" in cmdline
    assert "uid 60000 0000000000000000" in out
    assert "unshare-user -1 1" in out         # EPERM: no nested user namespace
    assert "unshare-mount -1 1" in out and "mount -1 1" in out
    # the worker (pid 1 here) gave up what its zygote needed to make its namespaces: no
    # CAP_SYS_ADMIN (bit 21) nor CAP_SETPCAP (bit 8) in any set, the bounding one included
    assert "worker CapInh:0 CapPrm:0 CapEff:0 CapBnd:0 CapAmb:0" in out, out
    assert_next_submission_graded_right(bwrap_grader)


def test_exit_after_printing_fake_results_is_an_incomplete_run(bwrap_grader, tmp_path):
    result, cell = hostile(bwrap_grader, tmp_path, """
        import os, sys
        print('{"score": 40, "max_score": 40, "items": []}')
        sys.exit(0)
        """, """
        # %%
        import os
        def box_iou(a, b):
            print("ALL TESTS PASSED")
            os._exit(0)
        """)
    assert cell.status == "exit" and "sys.exit(0)" in cell.note
    item = next(i for i in result.items if i.id == "box_iou")
    assert item.status == "error" and "exited" in item.message.en
    assert result.score == 3.0          # Q, K, V only: nothing else was credited
    assert_next_submission_graded_right(bwrap_grader)


def test_monkeypatching_torch_and_builtins_changes_nothing(bwrap_grader, tmp_path):
    result, _ = hostile(bwrap_grader, tmp_path, """
        import torch, builtins
        torch.allclose = lambda *a, **k: True
        torch.Tensor.__eq__ = lambda *a, **k: True
        torch.testing.assert_close = lambda *a, **k: None
        builtins.abs = lambda x: 0
        def box_iou(a, b):
            return torch.zeros(a.shape[0], b.shape[0])
        """)
    item = next(i for i in result.items if i.id == "box_iou")
    assert item.status in ("fail", "partial") and item.points < 2.0
    assert_next_submission_graded_right(bwrap_grader)


def test_tensor_subclass_and_reduce_payload_are_refused(bwrap_grader, tmp_path):
    marker = ROOT / f"unpickled-{uuid.uuid4().hex}"
    result, _ = hostile(bwrap_grader, tmp_path, f"""
        import torch, os
        class Evil(torch.Tensor):
            @classmethod
            def __torch_function__(cls, func, types, args=(), kwargs=None):
                return True
        class Payload:
            def __reduce__(self):
                return (os.system, ("touch {marker}",))
        def box_iou(a, b):
            return torch.zeros(a.shape[0], b.shape[0]).as_subclass(Evil)
        def nms(boxes, scores, t):
            return Payload()
        def encode_boxes(p, g):
            return torch.zeros(1).expand(10**9)
        def decode_boxes(p, d):
            return torch.empty(p.shape[0], 4, device="meta")
        """)
    by_id = {i.id: i for i in result.items}
    assert "subclass of torch.Tensor" in by_id["box_iou"].cases[0].message.en
    assert "not a tensor or a number" in by_id["nms"].cases[0].message.en
    assert "1000000000 elements" in by_id["encode_boxes"].cases[0].message.en
    assert "on device meta" in by_id["decode_boxes"].cases[0].message.en
    assert not marker.exists()
    assert_next_submission_graded_right(bwrap_grader)


def test_files_named_like_modules_in_the_work_dir_are_harmless(bwrap_grader, tmp_path):
    result, cell = hostile(bwrap_grader, tmp_path, """
        for name in ("torch.py", "grader.py", "safetensors.py", "probe.py", "numpy.py"):
            open(name, "w").write("raise SystemExit('shadowed')\\n")
        import torch, numpy
        print("still", torch.__name__, hasattr(torch, "randn"))
        """, """
        # %%
        import torch
        def causal_mask(n):
            return torch.ones(n, n, dtype=torch.bool).tril()
        """)
    assert "still torch True" in cell.stdout
    assert statuses(result)["causal_mask"] == "pass"
    assert_next_submission_graded_right(bwrap_grader)


def test_warnings_and_stderr_never_cost_points(bwrap_grader, tmp_path):
    result, cell = hostile(bwrap_grader, tmp_path, """
        import sys, warnings
        warnings.warn("this API is deprecated")
        print("to stderr", file=sys.stderr)
        import torch
        def causal_mask(n):
            warnings.warn("inside a graded function")
            print("noise", file=sys.stderr)
            return torch.ones(n, n, dtype=torch.bool).tril()
        """)
    assert cell.status == "ok" and "deprecated" in cell.stderr and "to stderr" in cell.stderr
    assert statuses(result)["causal_mask"] == "pass"
    assert_next_submission_graded_right(bwrap_grader)


def test_student_code_sees_pythons_usual_garbage_collector(bwrap_grader, tmp_path):
    """The worker imports torch with the collector turned down (a faster start); a runner's code
    gets Python's defaults back, and so sees what it would see anywhere else."""
    import subprocess
    import sys
    defaults = subprocess.run([sys.executable, "-c", "import gc; print(gc.get_threshold())"], capture_output=True,
                              text=True, check=True).stdout.strip()      # this Python's own, not this process's
    _, cell = hostile(bwrap_grader, tmp_path, "import gc\nprint('threshold', gc.get_threshold(), gc.isenabled())\n")
    assert cell.status == "ok" and f"threshold {defaults} True" in cell.stdout
    assert_next_submission_graded_right(bwrap_grader)


def test_a_slot_sees_nothing_of_another_slots_job(tmp_path):
    """Two slots' workers come from one zygote, but each has its own /tmp, /dev/shm, IPC and
    processes: while one slot's job runs (files written, a daemon started, a SysV segment made),
    the other slot's job finds none of it."""
    import threading
    import time
    from grader.executors import claim_slot
    from grader.pipeline import Grader
    from grader.sandbox import WorkerPool
    mark = uuid.uuid4().hex[:8]
    writer = tmp_path / "writer.py"
    writer.write_text(PART_A + "\n# %%\n" + textwrap.dedent(f"""
        import ctypes, os, subprocess, time
        open("/tmp/left-{mark}", "w").write("secret")
        open("/dev/shm/left-{mark}", "w").write("secret")
        ctypes.CDLL(None).shmget(0x5157, 4096, 0o1666)     # IPC_CREAT, world-readable
        subprocess.Popen(["sleep", "30"], start_new_session=True)
        open("/tmp/ready-{mark}", "w").close()
        time.sleep(4)
        """), encoding="utf-8")
    reader = tmp_path / "reader.py"
    reader.write_text(PART_A + "\n# %%\n" + textwrap.dedent("""
        import ctypes, os
        print("tmp", sorted(os.listdir("/tmp")), "shm", sorted(os.listdir("/dev/shm")))
        print("shmget", ctypes.CDLL(None).shmget(0x5157, 0, 0))
        print("procs", sorted(open(f"/proc/{p}/cmdline").read().split("\\0")[0]
                              for p in os.listdir("/proc") if p.isdigit()))
        """), encoding="utf-8")
    (a, fa), (b, fb) = claim_slot(), claim_slot()
    pool = WorkerPool("bwrap", [a, b])
    try:
        pool.spawn()
        pool.wait_ready()
        first, second = (Grader(RUBRIC, timeout=8, worker=w) for w in pool.workers)
        results = {}
        thread = threading.Thread(target=lambda: results.update(writer=first.grade(writer)))
        thread.start()
        ready = f"/proc/{pool.sandbox.worker_pid(a)}/root/tmp/ready-{mark}"   # its /tmp, seen from here
        for _ in range(200):
            if os.path.exists(ready):
                break
            time.sleep(0.05)
        assert os.path.exists(ready), "the writer's job did not start"
        seen = second.grade(reader)
        thread.join()
    finally:
        pool.close()
        os.close(fa)
        os.close(fb)
    cell = next(c for c in seen.run.cells if c.run == "public" and c.cell == 2)
    assert mark not in cell.stdout and "tmp ['job-" in cell.stdout, cell.stdout
    assert "shmget -1" in cell.stdout            # no such segment in this slot's IPC namespace
    procs = cell.stdout.split("procs")[1]
    assert "sleep" not in procs and procs.count("python") == 2, procs      # its worker and itself
    wrote = next(c for c in results["writer"].run.cells if c.run == "public" and c.cell == 2)
    assert wrote.status == "ok", wrote


def test_a_worker_that_cannot_set_itself_up_says_why():
    """A worker refuses jobs rather than run them with less confinement than asked: when its own
    /tmp cannot be mounted, the error names the sandbox and the reason."""
    from grader.errors import SandboxError
    from grader.sandbox import Worker
    w = Worker("bwrap", slot=0, tmp_mb=-1)      # "size=-1m": the kernel refuses the mount
    with pytest.raises(SandboxError, match=r"the bwrap sandbox did not start: (?s:.*)mount /tmp: Invalid argument"):
        w.start()
    assert w.sandbox.proc is None
