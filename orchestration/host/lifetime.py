"""Child processes that die with their parent: Linux's PR_SET_PDEATHSIG, a no-op elsewhere.

A parent killed by SIGKILL (a host, a test run) cannot stop what it started; the kernel can.
The child asks for a signal on its parent's death, then checks that its parent is still the
process that started it: a parent that died before the request leaves nobody to signal it.

Standard library only: bench/common.py loads this file by path into environments that do
not have the package installed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable
from functools import partial

PR_SET_PDEATHSIG = 1


def _find_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Looked up once, here: in a child between fork and exec, dlopen/dlsym could wait on a lock
# another thread of the parent held at the fork.
_PRCTL = _find_prctl()


def die_with_parent(parent_pid: int, signum: int = signal.SIGKILL) -> None:
    """In a child process: have the kernel send `signum` when the parent dies, or send it now
    when the parent (`parent_pid`, as the parent saw itself) has already gone.

    Best effort: where prctl fails the child runs on, as it would without this call.
    """
    if _PRCTL is None or _PRCTL(PR_SET_PDEATHSIG, ctypes.c_ulong(signum), 0, 0, 0) != 0:
        return
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)


def dies_with_this_process(signum: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A `preexec_fn` for subprocess.Popen: the child gets `signum` when this process dies.

    None (no preexec_fn) off Linux, and when called off the main thread: the kernel sends
    the signal when the *thread* that forked the child exits, and only the main thread is
    known to live as long as the process.
    """
    if _PRCTL is None or threading.current_thread() is not threading.main_thread():
        return None
    return partial(_before_exec, os.getpid(), signum)


def _before_exec(parent_pid: int, signum: int) -> None:
    # Until exec the child still has this process's handlers; a Python one would only set a
    # flag that nothing reads any more, and the signal would be lost.
    if signum != signal.SIGKILL:
        signal.signal(signum, signal.SIG_DFL)
    die_with_parent(parent_pid, signum)
