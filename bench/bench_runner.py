"""CPU the sandbox harness spends per graded submission: the runner loop, and the whole warm worker.

    python bench/bench_runner.py [--samples 9] [--rounds 10] [--only runner|worker|check]
                                 [--probe PATH] [--profile]

(a) runner: the jobs of the bundled samples go to a fresh interpreter that imports nothing but
    the sandbox's runtime (grader/sandbox/runtime/) and prepares itself as the zygote and worker
    do (`zygote.warm_up`, the calls' inputs decoded once); for each sample it forks a child per run
    that executes `execute.run` on the job, outside any sandbox, as each job's runner is forked
    in the worker. Reported per sample (medians):
    - fresh: CPU of one run in a new fork (copy-on-write and first-use costs included), the
      harness's share (CPU minus what the step records say the student's code took, timed here in
      CPU rather than wall time) and the minor page faults;
    - warm: the same job run again in the same child, which isolates the harness's Python cost.
(b) worker: a warm bwrap worker (`Grader(..., sandbox="bwrap", slot=6)`) grades every sample
    `--rounds` times. The sandbox's CPU is the worker's own CPU plus that of the runners it reaped
    (utime+stime+cutime+cstime of /proc/<worker>/stat, 10 ms ticks), read before and after each
    submission; minor faults the same way. CPU time, not wall time: other work on the machine
    (2 cores, shared) does not count.
(c) check: the runtime's safetensors writer (codec) against safetensors.torch.save/load, every dtype, odd
    shapes (0-d, empty, non-contiguous, expanded, offset views); run before (a) and (b).

`--probe PATH` runs (a), (b) and (c) with another runtime, for a before/after: a runtime folder,
    git archive HEAD grader/sandbox/runtime | tar -x -C /tmp/before
    python bench/bench_runner.py --probe /tmp/before/grader/sandbox/runtime; python bench/bench_runner.py
or a single-file probe.py of before the runtime was a package (b2ddc73 and earlier):
    git show b2ddc73:grader/sandbox/probe.py > /tmp/probe_before.py
    python bench/bench_runner.py --probe /tmp/probe_before.py
007_partly_broken is left out: it loops for the full time limit by design. `--profile` prints a
cProfile of the runner loop (all samples, warm, `--samples` times each) instead.
"""
from __future__ import annotations

import argparse
import base64
import gc
import importlib.util
import json
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "grader" / "sandbox" / "runtime"
ENTRY = ROOT / "grader" / "sandbox" / "probe.py"          # the sandbox's entry script, which loads a runtime
RUBRIC = ROOT / "rubrics" / "hw2.toml"
SLOW = {"007_partly_broken"}
TICK = os.sysconf("SC_CLK_TCK")


def samples() -> list[Path]:
    return sorted(p for p in (ROOT / "submissions" / "hw2").iterdir() if p.is_dir() and p.name not in SLOW)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:6.1f} ms"


def median_of(rows: list, i: int) -> float:
    return statistics.median(r[i] for r in rows)


# --- (a) the runner loop, in a worker-like interpreter -------------------------------------------
def write_jobs(path: Path) -> None:
    """The samples' jobs as the trusted side builds them, for the child interpreter; their runs
    write under path's folder."""
    sys.path.insert(0, str(ROOT))
    from grader.blanks import layout as locate
    from grader.expected import Reference
    from grader.load import load_submission
    from grader.rubric import load_rubric
    from grader.run import build_job
    rubric = load_rubric(RUBRIC)
    reference = Reference(rubric)
    variables = tuple(i.name for i in rubric.items_of("variable")) + (rubric.script.capture if rubric.script else ())
    written = tuple(i.id for i in rubric.items_of("written"))
    out = []
    for p in samples():
        spec, blob = build_job(rubric, locate(load_submission(p), variables, written), reference)
        spec = dict(spec, id=0, tmp=tempfile.mkdtemp(prefix=f"{p.name}-", dir=path.parent))
        spec["limits"] = dict(spec["limits"], nproc=0)
        out.append({"name": p.name, "spec": spec, "blob": base64.b64encode(blob).decode()})
    path.write_text(json.dumps(out))


def in_child_interpreter(args: argparse.Namespace, mode: str) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        jobs = Path(tmp) / "jobs.json"
        write_jobs(jobs)
        subprocess.run([sys.executable, "-B", __file__, "--child", mode, "--jobs", str(jobs),
                        "--probe", args.probe, "--samples", str(args.samples)], check=True)


def load_probe(path: str):
    """The runtime at `path`: a package folder (seen through the single-file probe's names, which
    the rest of this file uses), or a single-file probe.py of before the split."""
    if os.path.isdir(path):
        return Runtime(path)
    spec = importlib.util.spec_from_file_location("probe", path)
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    return probe


class Runtime:
    """The runtime package under the names of the single-file probe.py it was split from."""

    def __init__(self, folder: str):
        # Loaded as the sandbox's entry script loads it, and as runtime/__main__.py goes on: torch
        # imported with the collector turned down.
        entry = importlib.util.spec_from_file_location("probe_entry", ENTRY)
        loader = importlib.util.module_from_spec(entry)
        entry.loader.exec_module(loader)
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(50_000, *self._gc_threshold[1:])
        loader.load(folder, "runtime")
        from runtime import codec, execute, protocol, zygote
        self.__file__, self._execute, self._zygote = folder, execute, zygote
        self.plan, self._CALLS, self._FRAME = protocol.plan, execute.CALLS, protocol.STEP_FRAME
        self.st, self._encode, self._safetensors = codec.st, codec.encode, codec.safetensors_file

    def _warm_up(self) -> None:
        self._zygote.warm_up(self._gc_threshold)

    def _runner(self, *args) -> None:
        self._execute.run(*args)

    @property
    def _perf_counter(self):
        return self._execute._perf_counter

    @_perf_counter.setter
    def _perf_counter(self, clock) -> None:
        self._execute._perf_counter = clock


def prepare_like_the_worker(probe) -> None:
    if hasattr(probe, "_warm_up"):
        probe._warm_up()
    else:                       # an older probe.py: main() did this inline
        import torch
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.zeros(1) @ torch.zeros(1)
        gc.collect()
        gc.freeze()


def inherit_calls(probe, spec: dict, blob: bytes) -> None:
    """As the worker does for a rubric's first job: the calls' inputs decoded before any fork."""
    gc.unfreeze()
    probe._CALLS.update(key=spec["calls_key"], calls=spec["runs"][0]["calls"], blob=blob,
                        tensors=probe.st.load(blob) if blob else {})
    gc.collect()
    gc.freeze()


def run_once(probe, spec: dict, workdir: str) -> None:
    os.makedirs(workdir)
    if hasattr(probe, "_FRAME"):        # the runner reports over its channel: a file here, read afterwards
        fd = os.open(os.path.join(workdir, "frames"), os.O_WRONLY | os.O_CREAT, 0o600)
        probe._runner(spec, probe._CALLS["blob"], probe.plan(spec), 0, set(), fd, workdir)
        os.close(fd)
        return
    r, w = os.pipe()
    probe._runner(spec, probe._CALLS["blob"], probe.plan(spec), 0, set(), w, workdir)
    os.close(r)


def in_fork(fn):
    """fn() in a forked child, as each job's runner is; its JSON result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.write(w, json.dumps(fn()).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 1 << 16):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def records(workdir: str):
    path = os.path.join(workdir, "frames")
    if os.path.exists(path):
        data, pos = open(path, "rb").read(), 0
        while pos < len(data):
            tag, n, size = struct.unpack_from(">cII", data, pos)
            payload, pos = data[pos + 9:pos + 9 + size], pos + 9 + size
            if tag == b"E" and payload:
                k = int.from_bytes(payload[:4], "big")
                yield json.loads(payload[4:4 + k])
        return
    for name in os.listdir(os.path.join(workdir, "out")):
        if name.startswith("steps-"):
            for line in open(os.path.join(workdir, "out", name), encoding="utf-8"):
                yield json.loads(line)


def student_cpu(workdir: str) -> float:
    total = 0.0
    for rec in records(workdir):
        total += rec["seconds"] if rec["kind"] == "block" else sum(c.get("seconds", 0) for c in rec["cases"])
    return total


def timed_runs(probe, spec: dict, tag: str, n: int) -> list[list[float]]:
    """[runner CPU, student code CPU, minor faults] of n runs in this process."""
    # The step records time the student's code with perf_counter; read CPU time instead, so that
    # the harness's share is not blurred by whatever else the machine runs.
    probe.time = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("_")})
    probe.time.perf_counter = time.process_time
    if hasattr(probe, "_perf_counter"):
        probe._perf_counter = time.process_time
    out = []
    for k in range(n):
        workdir = os.path.join(spec["tmp"], f"{tag}{os.getpid()}-{k}")
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        c0 = time.process_time()
        run_once(probe, spec, workdir)
        cpu = time.process_time() - c0
        out.append([cpu, student_cpu(workdir), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0])
    return out


def child_runner(probe, jobs: list, n: int) -> None:
    print(f"(a) runner loop, {Path(probe.__file__)}: medians of {n} runs per sample")
    rows = []
    for job in jobs:
        spec, blob = job["spec"], base64.b64decode(job["blob"])
        inherit_calls(probe, spec, blob)
        fresh = [in_fork(lambda: timed_runs(probe, spec, "f", 1)[0]) for _ in range(n)]
        warm = in_fork(lambda: timed_runs(probe, spec, "w", n + 1)[1:])
        row = [median_of(fresh, 0), statistics.median(c - s for c, s, _ in fresh), median_of(fresh, 2),
               median_of(warm, 0), statistics.median(c - s for c, s, _ in warm)]
        rows.append(row)
        print(f"  {job['name']:24s} fresh: cpu {ms(row[0])}, harness {ms(row[1])}, {row[2]:5.0f} faults   "
              f"warm: cpu {ms(row[3])}, harness {ms(row[4])}", flush=True)
    mean = [statistics.mean(r[i] for r in rows) for i in range(5)]
    print(f"  {'mean per job':24s} fresh: cpu {ms(mean[0])}, harness {ms(mean[1])}, {mean[2]:5.0f} faults   "
          f"warm: cpu {ms(mean[3])}, harness {ms(mean[4])}")
    print("  (harness = runner CPU minus the student's code's CPU as its step records time it)")


def child_profile(probe, jobs: list, n: int) -> None:
    import cProfile
    import pstats
    spec0 = jobs[0]["spec"]
    inherit_calls(probe, spec0, base64.b64decode(jobs[0]["blob"]))
    stats = os.path.join(spec0["tmp"], "runner.prof")

    def profiled():
        for job in jobs:            # first runs: imports and caches, as (a)'s warm figures
            run_once(probe, job["spec"], os.path.join(job["spec"]["tmp"], f"p-warm-{os.getpid()}"))
        prof = cProfile.Profile()
        prof.enable()
        for k in range(n):
            for job in jobs:
                run_once(probe, job["spec"], os.path.join(job["spec"]["tmp"], f"p{os.getpid()}-{k}"))
        prof.disable()
        prof.dump_stats(stats)
        return 0

    in_fork(profiled)
    pstats.Stats(stats).sort_stats("tottime").print_stats(30)


# --- (b) a warm bwrap worker, end to end ---------------------------------------------------------
def usage(pid: int) -> tuple[float, float, int]:
    """(user seconds, system seconds, minor faults) of the process and its reaped children."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        v = f.read().rsplit(b")", 1)[1].split()
    # after the command: state=0 ppid=1 ... minflt=7 cminflt=8 majflt=9 cmajflt=10 utime=11 stime=12 cutime=13 cstime=14
    return (int(v[11]) + int(v[13])) / TICK, (int(v[12]) + int(v[14])) / TICK, int(v[7]) + int(v[8])


def memory(pid: int) -> str:
    """The worker's resident, anonymous and huge-page memory (see zygote.collapse_heap)."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        got = dict(line.split(":", 1) for line in f if ":" in line)
    return ", ".join(f"{k} {int(got[k].split()[0]) // 1024} MB" for k in ("Rss", "Anonymous", "AnonHugePages") if k in got)


def bench_worker(rounds: int, probe: str) -> None:
    sys.path.insert(0, str(ROOT))
    from grader.pipeline import Grader
    from grader.sandbox import bwrap
    if os.path.isdir(probe):
        bwrap.RUNTIME = Path(probe)     # the folder bwrap binds as the runtime
    else:
        bwrap.PROBE = Path(probe)       # a self-contained probe.py, bound as the entry script
    paths = samples()
    print(f"(b) warm bwrap worker, {probe}, slot 6: {len(paths)} samples x {rounds} rounds")
    per = {p.name: [] for p in paths}
    rounds_ = []
    with Grader(RUBRIC, sandbox="bwrap", slot=6) as g:
        g.warm()
        for p in paths:            # reference values cached; the worker holds the calls' inputs
            g.grade(p)
        pid = g.worker.sandbox.worker_pid(g.worker.slot)
        print(f"  worker memory at the start: {memory(pid)}")
        for _ in range(rounds):
            this = []
            for p in paths:
                time.sleep(0.05)   # idle, so the previous job's cleanup is over before we read
                u0, s0, f0 = usage(pid)
                h0, w0 = time.process_time(), time.perf_counter()
                g.grade(p)
                h1, w1 = time.process_time(), time.perf_counter()
                time.sleep(0.05)   # and this job's (the runner reaped, the next one forked)
                u1, s1, f1 = usage(pid)
                row = (u1 - u0, s1 - s0, f1 - f0, h1 - h0, w1 - w0)
                per[p.name].append(row)
                this.append(row)
            rounds_.append([statistics.mean(r[i] for r in this) for i in range(5)])
        print(f"  worker memory at the end:   {memory(pid)}")
    for name, got in per.items():
        m = [statistics.mean(r[i] for r in got) for i in range(5)]
        print(f"  {name:24s} sandbox cpu {ms(m[0] + m[1])} (user {ms(m[0])}, sys {ms(m[1])})  "
              f"faults {m[2]:5.0f}   host cpu {ms(m[3])}")
    m = [median_of(rounds_, i) for i in range(5)]
    print(f"  {'per job (median round)':24s} sandbox cpu {ms(m[0] + m[1])} (user {ms(m[0])}, sys {ms(m[1])})  "
          f"faults {m[2]:5.0f}   host cpu {ms(m[3])}   wall {ms(m[4])}")
    print(f"  (per-sample figures: means of {rounds} rounds of {1000 / TICK:g} ms ticks)")


# --- (c) the safetensors writer -------------------------------------------------------------------
def check_writer(probe) -> None:
    import itertools

    import safetensors.torch as st
    import torch
    dtypes = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16,
              torch.bfloat16, torch.float32, torch.float64]

    def make(dtype, shape):
        x = torch.randn(shape, dtype=torch.float64) * 100
        return (x > 0) if dtype is torch.bool else x.to(dtype)

    values = {f"{d}{s}": make(d, s) for d, s in itertools.product(dtypes, [(), (0,), (3, 0), (0, 5, 2), (1,), (7,),
                                                                              (3, 5), (2, 3, 4), (1, 1, 1, 1)])}
    for d in dtypes:
        base = make(d, (6, 8))
        values.update({f"{d}.t": base.t(), f"{d}.step": base[1:5:2, 3::2], f"{d}.offset": base[2:],
                       f"{d}.col": base[:, 1], f"{d}.elem": base[2, 3], f"{d}.none": base[3:3],
                       f"{d}.expand": make(d, (1, 4)).expand(3, 4)})
        if d.is_floating_point:
            values[f"{d}.grad"] = make(d, (2, 3)).requires_grad_()
            values[f"{d}.neg"] = torch._neg_view(make(d, (4,)))
    pending = {}
    for key, v in values.items():
        assert probe._encode(v, key, pending, {"max_elements": 10**6})["kind"] == "tensor", key
    if not hasattr(probe, "_safetensors"):
        print("(c) this runtime writes through safetensors.torch: nothing to check")
        return
    ours = probe._safetensors({k: pending[k] for k in values})
    theirs = st.save({k: v.detach().resolve_neg().clone(memory_format=torch.contiguous_format) for k, v in values.items()})
    got, want = st.load(ours), st.load(theirs)
    assert got.keys() == want.keys() == values.keys()
    for key, v in values.items():
        assert got[key].dtype == v.dtype and got[key].shape == v.shape and torch.equal(got[key], want[key]), key
    tensor = torch.arange(6.0)
    kept = {}
    probe._encode(tensor, "later", kept, {"max_elements": 10})
    tensor.add_(1)                          # the student changes it after returning it
    assert torch.equal(st.load(probe._safetensors(kept))["later"], torch.arange(6.0))
    print(f"(c) safetensors writer: {len(values)} tensors ({len(dtypes)} dtypes, 0-d, empty, non-contiguous) load "
          f"equal to safetensors.torch.save's; bytes identical: {ours == theirs}")


# --- entry points ---------------------------------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    probe = load_probe(args.probe)
    if args.child == "check":
        check_writer(probe)
        return
    prepare_like_the_worker(probe)
    jobs = json.loads(Path(args.jobs).read_text())
    (child_profile if args.child == "profile" else child_runner)(probe, jobs, args.samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=9, help="runs per sample in (a)")
    ap.add_argument("--rounds", type=int, default=10, help="rounds over all samples in (b)")
    ap.add_argument("--only", choices=("runner", "worker", "check"))
    ap.add_argument("--probe", default=str(RUNTIME),
                    help="the runtime measured: a runtime folder (default: the tree's) or a single-file probe.py")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--child", choices=("runner", "profile", "check"), help=argparse.SUPPRESS)
    ap.add_argument("--jobs", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
    elif args.profile:
        in_child_interpreter(args, "profile")
    else:
        if args.only in (None, "check"):
            subprocess.run([sys.executable, "-B", __file__, "--child", "check", "--probe", args.probe], check=True)
        if args.only in (None, "runner"):
            in_child_interpreter(args, "runner")
        if args.only in (None, "worker"):
            bench_worker(args.rounds, args.probe)


if __name__ == "__main__":
    main()
