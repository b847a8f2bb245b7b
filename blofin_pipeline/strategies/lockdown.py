"""Kernel-enforced lockdown of the processes that run untrusted strategy code.

Three Linux mechanisms, none of which needs privileges or namespaces (so they work as an
unprivileged user and inside a container under Docker's default seccomp profile):

* **Landlock** (an LSM, syscalls 444-446, called directly through ctypes): the file
  system is read-only and only below an allow-list (Python's prefixes, the directories
  that hold numpy/pandas, this package, the system's shared libraries); no write,
  create, remove, rename, truncate or device ioctl anywhere; no ``/proc`` (so no other
  process's ``environ``), no home, no workspace, no database. From ABI 4 also no TCP
  bind/connect; from ABI 6 no signal to, and no abstract unix socket of, any process
  outside the sandbox.
* **seccomp-bpf** (through libseccomp, the `pyseccomp` package): the process is killed
  (SIGSYS) on any attempt to create a process (fork, vfork, clone without
  CLONE_THREAD, posix_spawn), exec, create a socket, ptrace or read another process's
  memory; kernel interfaces a strategy has no use for (mount, namespaces, io_uring,
  bpf, keyrings, chmod/chown/xattr...) fail with EPERM. Threads stay allowed: numeric
  libraries may use them, and they share every limit of their process.
* **NO_NEW_PRIVS, no capabilities, rlimits**: no privilege can be gained (set before
  Landlock and seccomp, as they require), every capability is dropped (root in a
  container included), and CPU time, address space, file size, core dumps and open
  files are capped.

`lock_server` is applied once by the fork server (Landlock, NO_NEW_PRIVS, capabilities:
inherited by every child); `lock_child` by each forked child before it reads any code.
Any failure raises `SandboxUnavailable`: the sandbox fails closed, there is no degraded
mode.
"""
from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from blofin_pipeline.exceptions import SandboxUnavailable
from blofin_pipeline.strategies.landlock import (
    MIN_LANDLOCK_ABI,
    apply_landlock,
    landlock_abi,
    landlock_unavailable_reason,
)

# --- prctl / capabilities -------------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522

# --- clone flags (include/uapi/linux/sched.h) ------------------------------------------
CLONE_THREAD = 0x00010000
CLONE_NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)
TIOCSTI = 0x5412
TIOCLINUX = 0x541C

# Attempting one of these kills the process: a strategy never needs them, and an attempt
# is an attack (or a bug we want to see as a rejection, not as a swallowed error).
KILL_SYSCALLS: tuple[str, ...] = (
    "fork", "vfork", "execve", "execveat",
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
)
# These fail with EPERM: kernel surface a strategy has no use for.
DENY_SYSCALLS: tuple[str, ...] = (
    "setsid", "setpgid", "unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
    "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "swapon", "swapoff", "reboot", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "acct", "quotactl", "quotactl_fd", "syslog", "iopl",
    "ioperm", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "bpf",
    "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "keyctl", "add_key", "request_key", "kcmp", "process_madvise",
    "process_mrelease", "pidfd_open", "pidfd_send_signal", "name_to_handle_at",
    "open_by_handle_at", "mknod", "mknodat", "fanotify_init", "lookup_dcookie",
    "vhangup", "uselib", "personality",
    # identity: nothing to gain with NO_NEW_PRIVS and no capabilities, but no reason either
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid",
    "setfsgid", "setgroups", "capset",
    # metadata writes Landlock does not mediate
    "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat", "utime",
    "utimes", "utimensat", "futimesat", "setxattr", "lsetxattr", "fsetxattr",
    "removexattr", "lremovexattr", "fremovexattr", "truncate",
)
# Syscalls newer than some libseccomp releases know by name (same number everywhere).
NEW_SYSCALL_NUMBERS: dict[str, int] = {
    "fchmodat2": 452, "setxattrat": 463, "removexattrat": 466, "open_tree_attr": 467,
    "statmount": 457, "listmount": 458,
}


@dataclass(frozen=True)
class ChildLimits:
    """Resource limits of one sandboxed child (a session serving one strategy)."""

    memory_mb: int = 1024            # address space, the interpreter included
    session_cpu_seconds: int = 600   # hard cap on the child's whole life
    open_files: int = 64


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int
_libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _errno_error(what: str) -> SandboxUnavailable:
    err = ctypes.get_errno()
    return SandboxUnavailable(f"{what} failed: {os.strerror(err)} (errno {err})")


def _prctl(option: int, arg2: int = 0, arg3: int = 0, what: str = "prctl") -> int:
    result = _libc.prctl(option, arg2, arg3, 0, 0)
    if result < 0:
        raise _errno_error(what)
    return result


# --- privileges -------------------------------------------------------------------
def set_no_new_privs() -> None:
    _prctl(PR_SET_NO_NEW_PRIVS, 1, what="prctl(PR_SET_NO_NEW_PRIVS)")
    if _libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1:
        raise SandboxUnavailable("NO_NEW_PRIVS did not stick")


def drop_capabilities() -> None:
    """Empty the bounding, ambient, effective, permitted and inheritable sets."""
    try:
        last_cap = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        last_cap = 63
    for cap in range(last_cap + 1):
        # Needs CAP_SETPCAP; without it there is nothing in the bounding set to fear:
        # NO_NEW_PRIVS stops file capabilities, and the sets below are emptied anyway.
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(version=LINUX_CAPABILITY_VERSION_3, pid=0)
    data = (_CapData * 2)()
    if _libc.capset(ctypes.byref(header), data) != 0:
        raise _errno_error("capset")


def lock_server(read_paths: list[str]) -> int:
    """Lockdown of the fork server itself (inherited by every child): NO_NEW_PRIVS, no
    capabilities, not dumpable, Landlock. Returns the Landlock ABI in force."""
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(f"the strategy sandbox needs Linux, not {sys.platform}")
    set_no_new_privs()
    drop_capabilities()
    _prctl(PR_SET_DUMPABLE, 0, what="prctl(PR_SET_DUMPABLE)")
    return apply_landlock(read_paths)


# --- seccomp ------------------------------------------------------------------------
def _seccomp_module():
    try:
        import pyseccomp
    except (ImportError, RuntimeError) as err:  # RuntimeError: libseccomp.so missing
        raise SandboxUnavailable(
            f"seccomp is unavailable: {err} (install the pinned requirements and the "
            f"system's libseccomp2)") from err
    return pyseccomp


def check_seccomp() -> None:
    """Raise SandboxUnavailable unless a filter can be built (libseccomp present)."""
    sc = _seccomp_module()
    sc.SyscallFilter(sc.ALLOW)


def _add(filt, sc, action: int, name: str, *args) -> None:
    try:
        number = sc.resolve_syscall(sc.system_arch(), name)
    except Exception:  # noqa: BLE001 - pyseccomp raises various errors for unknown names
        number = -1
    if number is None or number < 0:
        number = NEW_SYSCALL_NUMBERS.get(name)
        if number is None:
            return  # not a syscall on this architecture (e.g. 'fork' on aarch64)
    filt.add_rule(action, number, *args)


def seccomp_filter(own_pid: int):
    """The child's filter (default: allow; see KILL_SYSCALLS and DENY_SYSCALLS)."""
    sc = _seccomp_module()
    kill = sc.KILL_PROCESS
    eperm = sc.ERRNO(errno.EPERM)
    filt = sc.SyscallFilter(sc.ALLOW)
    for name in KILL_SYSCALLS:
        _add(filt, sc, kill, name)
    for name in DENY_SYSCALLS + tuple(NEW_SYSCALL_NUMBERS):
        _add(filt, sc, eperm, name)
    # glibc tries clone3 first and falls back to clone on ENOSYS; clone's flags are
    # visible to the filter, clone3's (in memory) are not.
    _add(filt, sc, sc.ERRNO(errno.ENOSYS), "clone3")
    _add(filt, sc, kill, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
    for flag in CLONE_NAMESPACE_FLAGS:
        _add(filt, sc, kill, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    # Signals only to itself (Landlock ABI 6 scopes signals as well).
    for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
        _add(filt, sc, eperm, name, sc.Arg(0, sc.NE, own_pid))
    _add(filt, sc, eperm, "tkill")
    # Injecting keystrokes into a terminal (no terminal is open, but be sure).
    for request in (TIOCSTI, TIOCLINUX):
        _add(filt, sc, eperm, "ioctl", sc.Arg(1, sc.EQ, request))
    return filt


# --- the child ------------------------------------------------------------------------
def _limit(kind: int, soft: int, hard: int | None = None) -> None:
    hard = soft if hard is None else hard
    _, current_hard = resource.getrlimit(kind)
    if current_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(kind, (soft, hard))


def lock_child(limits: ChildLimits, server_pid: int, read_paths: list[str]) -> None:
    """Lockdown of a freshly forked child, before it reads any strategy code.

    Dies with its server (PDEATHSIG); a Landlock domain of its own, nested in the
    server's (so from ABI 6 it cannot signal the server, or any other child); rlimits;
    then the seccomp filter (last: it forbids what the steps before may use).
    NO_NEW_PRIVS and the dropped capabilities are inherited from the server.
    """
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, what="prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != server_pid:  # the server died before PDEATHSIG was armed
        os._exit(70)
    apply_landlock(read_paths)
    _limit(resource.RLIMIT_CPU, limits.session_cpu_seconds, limits.session_cpu_seconds + 1)
    _limit(resource.RLIMIT_AS, limits.memory_mb * 1024 * 1024)
    _limit(resource.RLIMIT_FSIZE, 0)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_NOFILE, limits.open_files)
    _limit(resource.RLIMIT_MEMLOCK, 0)
    _limit(resource.RLIMIT_MSGQUEUE, 0)
    seccomp_filter(os.getpid()).load()


def set_call_cpu_limit(seconds: int) -> None:
    """CPU limit of the next call: SIGXCPU at `seconds` more CPU time than used so far
    (the soft limit moves; the session's hard cap does not)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(used) + 1 + int(seconds)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


@dataclass(frozen=True)
class Support:
    """What this machine offers the sandbox (for `probe` and the README's checks)."""

    landlock_abi: int
    landlock_problem: str | None
    seccomp_problem: str | None

    @property
    def ok(self) -> bool:
        return self.landlock_problem is None and self.seccomp_problem is None


def probe() -> Support:
    """Check, without restricting this process, that the mechanisms are there."""
    abi = landlock_abi()
    landlock_problem = None if abi >= MIN_LANDLOCK_ABI else landlock_unavailable_reason()
    try:
        check_seccomp()
        seccomp_problem = None
    except SandboxUnavailable as err:
        seccomp_problem = str(err)
    return Support(landlock_abi=abi, landlock_problem=landlock_problem,
                   seccomp_problem=seccomp_problem)
