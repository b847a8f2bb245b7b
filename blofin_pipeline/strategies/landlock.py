"""Landlock, through its three syscalls (ctypes): a read-only view of an allow-list.

The `landlock` package on PyPI (1.0.0.dev5) only handles file-system rights; this
module uses what the running kernel offers: the file system (ABI 1-3, 5), TCP bind and
connect (ABI 4), signals and abstract unix sockets outside the domain (ABI 6). See
`lockdown` for how the sandbox combines it with seccomp and rlimits.
"""
from __future__ import annotations

import ctypes
import errno
import os
import sys
import sysconfig
from pathlib import Path

from blofin_pipeline.exceptions import SandboxUnavailable

# include/uapi/linux/landlock.h
SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on every architecture (>= 5.13)
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1 << 0
LANDLOCK_RULE_PATH_BENEATH = 1

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13       # ABI 2
FS_TRUNCATE = 1 << 14    # ABI 3
FS_IOCTL_DEV = 1 << 15   # ABI 5
NET_BIND_TCP = 1 << 0    # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

MIN_LANDLOCK_ABI = 1
READ_RIGHTS = FS_READ_FILE | FS_READ_DIR
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64),
                ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # __attribute__((packed)) in the uapi header
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _errno_error(what: str) -> SandboxUnavailable:
    err = ctypes.get_errno()
    return SandboxUnavailable(f"{what} failed: {os.strerror(err)} (errno {err})")


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or disabled."""
    ctypes.set_errno(0)
    version = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                            ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return int(version) if version > 0 else 0


def landlock_unavailable_reason() -> str:
    ctypes.set_errno(0)
    _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                  ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    err = ctypes.get_errno()
    return {
        errno.ENOSYS: "the kernel has no Landlock (older than 5.13, or built without "
                      "CONFIG_SECURITY_LANDLOCK)",
        errno.EOPNOTSUPP: "Landlock is disabled at boot (add 'landlock' to the lsm= kernel "
                          "parameter)",
        errno.EPERM: "a seccomp profile refuses the Landlock syscalls (Docker before 23.0 "
                     "does: upgrade Docker or allow landlock_create_ruleset, "
                     "landlock_add_rule and landlock_restrict_self)",
    }.get(err, f"landlock_create_ruleset failed: {os.strerror(err)} (errno {err})")


def _handled_fs(abi: int) -> int:
    rights = (FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_READ_DIR | FS_REMOVE_DIR
              | FS_REMOVE_FILE | FS_MAKE_CHAR | FS_MAKE_DIR | FS_MAKE_REG | FS_MAKE_SOCK
              | FS_MAKE_FIFO | FS_MAKE_BLOCK | FS_MAKE_SYM)
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def apply_landlock(read_paths: list[str]) -> int:
    """Restrict this process (and its future children) to reading `read_paths`.

    Every file-system right the kernel knows is handled, and only READ_FILE/READ_DIR is
    granted below the given paths; network and scope restrictions are added when the ABI
    has them. Returns the ABI version used. NO_NEW_PRIVS must already be set.
    """
    abi = landlock_abi()
    if abi < MIN_LANDLOCK_ABI:
        raise SandboxUnavailable(f"Landlock is unavailable: {landlock_unavailable_reason()}")
    attr = _RulesetAttr(handled_access_fs=_handled_fs(abi))
    size = 8
    if abi >= 4:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        size = 24
    ruleset = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr),
                            ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise _errno_error("landlock_create_ruleset")
    try:
        for path in read_paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                is_dir = os.path.isdir(path)
                rule = _PathBeneathAttr(
                    allowed_access=READ_RIGHTS if is_dir else FS_READ_FILE, parent_fd=fd)
                if _libc.syscall(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset),
                                 ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH),
                                 ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                    raise _errno_error(f"landlock_add_rule({path!r})")
            finally:
                os.close(fd)
        if _libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset),
                         ctypes.c_uint32(0)) < 0:
            raise _errno_error("landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


def allowed_read_paths(package_dir: str | None = None) -> list[str]:
    """What a sandboxed interpreter may read: Python's installation, the directories
    numpy and pandas live in, this package, shared libraries and time-zone data.

    Refuses (SandboxUnavailable) a prefix that would open the whole file system.
    """
    import numpy
    import pandas

    if package_dir is None:
        package_dir = str(Path(__file__).resolve().parents[1])
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, package_dir}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        value = sysconfig.get_paths().get(key)
        if value:
            paths.add(value)
    for module in (numpy, pandas):
        paths.add(str(Path(module.__file__).resolve().parents[1]))
    # Extension modules imported lazily may dlopen() system libraries; read-only access
    # to the loader's cache and the library directories lets them load.
    paths.update({"/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib",
                  "/etc/ld.so.cache", "/usr/share/zoneinfo"})
    too_wide = {"/", os.path.realpath(os.path.expanduser("~"))}
    resolved = set()
    for p in paths:
        real = os.path.realpath(p)
        if real in too_wide:
            raise SandboxUnavailable(
                f"refusing to let the sandbox read {real!r}: install Python and the "
                f"project's libraries outside the root and home directories")
        resolved.add(real)
    return sorted(resolved)
