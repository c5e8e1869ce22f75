"""Linux confinement of the sandbox's processes: prctl, a worker's own mounts, dropping
capabilities, the seccomp filter, a runner's uid and its resource limits.

Nothing here decides *what* is allowed: the trusted side compiled the seccomp filter
(bwrap.seccomp_filter) and sent the limits with each job; this module applies them.
"""
from __future__ import annotations

import builtins
import ctypes
import os
import resource

from .protocol import cpu_seconds

# A copy of builtins, as every module of the runtime takes one (see the package's docstring).
__builtins__ = dict(vars(builtins))

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NAME, PR_SET_SECCOMP = 1, 4, 15, 22
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 36, 38, 24
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID = 0x00020000, 0x08000000, 0x20000000
CAP_SETPCAP, CAP_SYS_ADMIN = 8, 21
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x8, 0x4000, 0x40000
_SECCOMP_MODE_FILTER = 2
libc = ctypes.CDLL(None, use_errno=True)


def prctl(option: int, *args) -> None:
    """prctl(option, *args), the rest zero, raising on failure; integers go as unsigned longs (the
    kernel reads all four arguments as such), anything else (a pointer) as it is."""
    args = [ctypes.c_ulong(a) if isinstance(a, int) else a for a in args] + [ctypes.c_ulong(0)] * (4 - len(args))
    if libc.prctl(option, *args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


def unshare(flags: int) -> None:
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), "unshare: " + os.strerror(ctypes.get_errno()))


def own_mounts(tmp_mb: int) -> None:
    """This worker's /tmp and /dev/shm (what one job writes there, or fills, no other slot sees)
    and a /proc of its own PID namespace. Private first, so nothing mounted here reaches the zygote."""
    def mount(source, target, fstype, flags, data=None):
        if libc.mount(source, target.encode(), fstype, flags, data) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount {target}: {os.strerror(err)}")

    mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    mount(b"tmpfs", "/tmp", b"tmpfs", _MS_NOSUID | _MS_NODEV, b"size=%dm,mode=1777" % tmp_mb)
    mount(b"tmpfs", "/dev/shm", b"tmpfs", _MS_NOSUID | _MS_NODEV, b"size=16m,mode=1777")
    mount(b"proc", "/proc", b"proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    os.chdir("/tmp")            # the zygote's /tmp stays below; the jobs' paths all start here


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities(*caps: int) -> None:
    """Out of the bounding set, then out of the effective, permitted and inheritable sets (and so
    the ambient one): gone for good, no exec can give them back."""
    for cap in caps:        # CAP_SETPCAP, dropped last, is what allows dropping from the bounding set
        prctl(PR_CAPBSET_DROP, cap)
    head, data = _CapHeader(0x20080522, 0), (_CapData * 2)()     # _LINUX_CAPABILITY_VERSION_3
    if libc.capget(ctypes.byref(head), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    for cap in caps:
        word, bit = divmod(cap, 32)
        for field in ("effective", "permitted", "inheritable"):
            setattr(data[word], field, getattr(data[word], field) & ~(1 << bit))
    if libc.capset(ctypes.byref(head), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load_seccomp(program: bytes) -> None:
    """Install the strict filter compiled by the trusted side (raw BPF, 8 bytes an instruction).
    It stacks on the zygote's looser one; every runner inherits both."""
    code = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.addressof(code))
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog))


def become(job_uid: int | None) -> None:
    """Take the job's uid (when there is one: the worker runs as root), and with it lose every
    capability."""
    if job_uid is not None:
        os.setgroups([])
        os.setresgid(job_uid, job_uid, job_uid)
        os.setresuid(job_uid, job_uid, job_uid)      # every capability is gone from here on


def set_limits(limits: dict, steps: list) -> None:
    """A runner's resource limits, soft and hard alike (never above a hard limit already set)."""
    def cap(which, value):
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))

    with open("/proc/self/status") as f:
        vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
    cap(resource.RLIMIT_AS, vm + int(limits["memory_mb"]) * 2**20)
    cap(resource.RLIMIT_CPU, cpu_seconds(limits, steps))
    cap(resource.RLIMIT_FSIZE, int(limits["file_mb"]) * 2**20)
    cap(resource.RLIMIT_CORE, 0)
    if limits.get("nproc"):
        cap(resource.RLIMIT_NPROC, int(limits["nproc"]))
