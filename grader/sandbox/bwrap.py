"""How the sandbox is confined: the bubblewrap command line and the two seccomp filters.

One bwrap sandbox holds a zygote that imports torch once and forks a worker per slot (the runtime
package, runtime/, started by its entry script probe.py: the only grader code bound inside).
Each worker takes PID, mount and IPC namespaces of its own, with its own /tmp and /dev/shm, so
two slots are as far apart as two bwrap sandboxes; that takes CAP_SYS_ADMIN, which only the
zygote keeps: each worker drops it (with CAP_SETPCAP, which lets it drop it from the bounding
set) before it reads a job, and installs the strict filter.

Each pitfall measured on the target machines has its answer here:
- run as root, bwrap's child keeps root's capabilities: we drop them all but the few the worker
  needs to hand each job to an unprivileged uid (the runner drops those too before student code);
- RLIMIT_NPROC is not enforced for uid 0: the student's code runs as a per-slot uid 60000+slot,
  so the process limit holds;
- a `setsid` grandchild outlives its sandbox: each worker is the first process of its own PID
  namespace (the kernel kills all of it with the worker) and the subreaper of every job process,
  killed after each job;
- not --die-with-parent: Linux ties it to the *thread* that started bwrap, and a zygote serves all
  of a process's threads (a Dask worker's). The zygote exits when the trusted process's end of its
  control socket closes, which the kernel does when that process dies, however it dies; bwrap then
  exits and the kernel kills everything in its PID namespace;
- /proc/1 inside is bwrap itself: it is started with an empty environment and its arguments
  come through a file descriptor (`--args`), so its cmdline and environ reveal nothing;
- a tmpfs without --size eats host RAM: every tmpfs has one;
- nested user namespaces: refused by seccomp (clone/unshare with CLONE_NEW*), or by
  --disable-userns where bwrap runs unprivileged;
- terminal injection (TIOCSTI): --new-session.
"""
from __future__ import annotations

import errno
import functools
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import SandboxError

JOB_UID_BASE = 60000
PROBE = Path(__file__).with_name("probe.py")        # the sandbox's entry script: loads RUNTIME, beside it
RUNTIME = Path(__file__).with_name("runtime")       # the package of all the grader code that runs inside
# Where the sandbox sees them (read-only): the entry finds the runtime beside itself.
PROBE_MOUNT, RUNTIME_MOUNT = "/opt/grader/probe.py", "/opt/grader/runtime"
GRADER_TREE = str(Path(__file__).resolve().parents[2])     # the folder holding grader/ (and reference/, rubrics/)
DISTRIBUTION = "dl-autograder"
_WORKER_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER")
# For the zygote only, to give each worker its own namespaces and mounts (and to drop the
# capability from the worker's bounding set): no worker keeps them.
_ZYGOTE_CAPS = ("CAP_SYS_ADMIN", "CAP_SETPCAP")


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


# Where the sandbox sees the directories of the grader's Python environment that lie outside /usr
# and the base interpreter's installation (a venv's site-packages, a path an editable install adds):
# neutral names, so no host path of the project or its venv is visible inside.
ENV_MOUNT = "/opt/env"
# Asked of the interpreter itself, isolated (-I: no PYTHONPATH, user site or script folder) and
# first without `site`: the stdlib is what it has before, the environment what `site` then adds.
_ASK_ENVIRONMENT = ("import json, os, sys; stdlib = list(sys.path); import site; site.main(); "
                    "print(json.dumps({'executable': os.path.realpath(sys.executable), 'base_prefix': sys.base_prefix, "
                    "'stdlib': stdlib, 'path': sys.path, 'sites': site.getsitepackages()}))")


@dataclass(frozen=True)
class PythonEnv:
    """The grader's own Python environment, as the sandboxed interpreter is to see it."""
    executable: str                         # the real interpreter (a venv's `python` links to it)
    base_prefix: str                        # its installation (stdlib), seen where it is
    paths: tuple[tuple[str, str], ...]      # (host directory, where the sandbox sees it), in sys.path order
    sites: tuple[str, ...]                  # those whose .pth files count, as the sandbox sees them
    hidden: tuple[str, ...]                 # files of the grader's own install, as the sandbox sees them

    def probe_args(self) -> list[str]:
        """The probe's options that rebuild sys.path inside: it runs with -S, so nothing else is on it."""
        return [a for _, inside in self.paths for a in ("--path", inside)] + \
               [a for site in self.sites for a in ("--site", site)]


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


@functools.lru_cache(maxsize=None)
def python_environment(mount: str = ENV_MOUNT) -> PythonEnv:
    """This interpreter's environment: the venv's site-packages, what its .pth files add, editable
    installs; never the base interpreter's site-packages when a venv has its own (a sandbox that
    ran the base interpreter's torch once passed CI). Asked of the interpreter in a subprocess
    (~20 ms, once a process): this process's sys.path also holds what tests and scripts inserted.

    `mount=""` keeps host paths (the unsandboxed kind). Directories holding the grader's own
    checkout are never included: its reference solutions and rubrics sit beside it."""
    run = subprocess.run([sys.executable, "-I", "-S", "-c", _ASK_ENVIRONMENT], capture_output=True, text=True,
                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, cwd="/", timeout=60)
    if run.returncode != 0:
        raise SandboxError(f"cannot read the Python environment of {sys.executable}: {run.stderr.strip()[-500:]}")
    env = json.loads(run.stdout)
    base, stdlib = os.path.realpath(env["base_prefix"]), set(env["stdlib"])
    sites = [os.path.realpath(p) for p in env["sites"]]
    # A source checkout's folder (grader/ beside reference/ and rubrics/), unless it is a site-packages
    # folder the grader was installed into (its files are hidden below).
    checkout = None if GRADER_TREE in sites else GRADER_TREE
    paths: dict[str, str] = {}
    moved = 0
    for entry in env["path"]:
        real = os.path.realpath(entry)
        if entry in stdlib or real in paths or not os.path.isdir(real) or (checkout and _within(checkout, real)):
            continue
        if not mount or _within(real, "/usr") or _within(real, base):
            paths[real] = real
        else:
            paths[real], moved = f"{mount}/{moved}", moved + 1
    return PythonEnv(env["executable"], base, tuple(paths.items()), tuple(paths[r] for r in sites if r in paths),
                     _own_files(paths))


def _own_files(paths: dict[str, str]) -> tuple[str, ...]:
    """The files of the grader's own installed distribution inside the environment (an editable
    install's finder names the project's folder): the sandbox cannot read them (/dev/null bound over each, on a nodev mount). It runs probe.py
    and the runtime package, nothing else of the grader."""
    # Looked up in the environment's folders only: a checkout's own egg-info is on this process's path.
    files = [f for d in importlib.metadata.distributions(name=DISTRIBUTION, path=list(paths)) for f in d.files or ()]
    hidden = []
    for f in files:
        real = os.path.realpath(f.locate())
        folder = next((p for p in paths if _within(real, p)), None)
        if folder is not None and os.path.isfile(real) and paths[folder] != folder:
            hidden.append(paths[folder] + real[len(folder):])
    return tuple(hidden)


def job_uid(slot: int) -> int | None:
    """The uid a slot's jobs run as: one per slot when we are root (RLIMIT_NPROC then counts that
    slot's processes only); None when unprivileged, where the jobs keep our uid."""
    return JOB_UID_BASE + slot if os.geteuid() == 0 else None


def command(tmp_mb: int, zygote_filter_fd: int | None, worker_filter_fd: int | None) -> tuple[list[str], list[str], list[str]]:
    """(bwrap, the options to pass on the --args descriptor, the zygote's command)."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxError("bubblewrap (bwrap) is not installed; install it with `apt-get install -y bubblewrap`, "
                           "or pass --sandbox none to run unsandboxed")
    root = os.geteuid() == 0
    args = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--new-session", "--clearenv",
            "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "OMP_NUM_THREADS", "1",
            "--setenv", "MKL_NUM_THREADS", "1", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
            "--setenv", "HOME", "/tmp", "--setenv", "LANG", "C.UTF-8"]
    if root:
        args += ["--cap-drop", "ALL"] + [a for cap in _WORKER_CAPS + _ZYGOTE_CAPS for a in ("--cap-add", cap)]
    else:
        args += ["--unshare-user", "--disable-userns"] + [a for cap in _ZYGOTE_CAPS for a in ("--cap-add", cap)]
    for path in ("/usr", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime"):
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    for link in ("/bin", "/lib", "/lib64", "/lib32", "/sbin"):
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            args += ["--ro-bind", link, link]
    env = python_environment()
    moved = [(host, inside) for host, inside in env.paths if host != inside]
    for host, inside in ([] if _within(env.base_prefix, "/usr") else [(env.base_prefix, env.base_prefix)]) + moved:
        # Parents bwrap creates would copy the host's modes (/root is 0700): the job's uid must
        # be able to walk down to the interpreter's files to import anything new.
        parts = Path(inside).parts
        for i in range(2, len(parts)):
            args += ["--perms", "0755", "--dir", str(Path(*parts[:i]))]
        args += ["--ro-bind", host, inside]
    for inside in env.hidden:
        args += ["--ro-bind", "/dev/null", inside]
    # The zygote's own /tmp and /dev/shm: it writes nothing there. Each worker mounts its own
    # (tmp_mb for /tmp) over them, in its own mount namespace.
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(16 * 2**20), "--tmpfs", "/tmp",
             "--perms", "1777", "--size", str(16 * 2**20), "--tmpfs", "/dev/shm",
             "--ro-bind", str(RUNTIME), RUNTIME_MOUNT, "--ro-bind", str(PROBE), PROBE_MOUNT, "--chdir", "/tmp"]
    if zygote_filter_fd is not None:
        args += ["--seccomp", str(zygote_filter_fd)]
    zygote = [env.executable, "-I", "-S", "-B", PROBE_MOUNT, "--isolate", str(tmp_mb)] + env.probe_args()
    if worker_filter_fd is not None:
        zygote += ["--seccomp-fd", str(worker_filter_fd)]
    return [bwrap], args, zygote


_NS_FLAGS = {"CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
             "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
             "CLONE_NEWNET": 0x40000000}
_DENIED = ("unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "ptrace", "process_vm_readv",
           "process_vm_writev", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
           "kexec_load", "init_module", "finit_module", "delete_module", "open_by_handle_at",
           "name_to_handle_at", "fsopen", "fsmount", "move_mount", "open_tree", "fsconfig", "fspick",
           "syslog", "acct", "swapon", "swapoff", "reboot", "iopl", "ioperm", "mount_setattr")


# What the zygote may do that a worker may not: give each worker its namespaces and mounts.
_ZYGOTE_ALLOWS = ("unshare", "mount")
_ZYGOTE_UNSHARE = ("CLONE_NEWNS", "CLONE_NEWIPC", "CLONE_NEWPID")


def seccomp_filter(zygote: bool = False) -> tuple[object | None, str]:
    """A compiled seccomp program as an open temporary file, or (None, why not).

    libseccomp (through pyseccomp) compiles it; the denied calls are the ones a job never needs
    and that widen what a process can see or do: namespaces, mounts, tracing, kernel keyrings.
    The zygote's filter (`zygote=True`) lets it unshare a worker's PID, mount and IPC namespaces
    and mount that worker's filesystems; never a user or network namespace."""
    try:
        import pyseccomp as sc
    except Exception as e:  # missing package, or libseccomp.so.2 not loadable
        return None, f"seccomp filter not applied ({type(e).__name__}: {e})"
    f = sc.SyscallFilter(sc.ALLOW)
    for name in _DENIED:
        if zygote and name in _ZYGOTE_ALLOWS:
            continue
        try:
            f.add_rule(sc.ERRNO(errno.EPERM), name)
        except Exception:
            continue            # not a syscall on this architecture
    for name, flag in _NS_FLAGS.items():
        f.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        if zygote and name not in _ZYGOTE_UNSHARE:
            f.add_rule(sc.ERRNO(errno.EPERM), "unshare", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    if zygote:      # CLONE_NEWTIME shares its bit with clone's exit signal: a rule for unshare only
        f.add_rule(sc.ERRNO(errno.EPERM), "unshare", sc.Arg(0, sc.MASKED_EQ, 0x80, 0x80))
    try:
        f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")   # its flags live in memory seccomp cannot read; libc falls back to clone
    except Exception:
        pass
    out = tempfile.TemporaryFile()
    f.export_bpf(out)
    out.flush()
    out.seek(0)
    return out, ""
