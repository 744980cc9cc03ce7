"""Waking a thread blocked in waitpid(2) from another thread.

The engine thread blocks in ``waitpid`` while its targets run. To make it look
at its request queue (or notice a timeout, or an ``end_session(REENTRANT)``),
another thread sends it ``WAKE_SIGNAL`` with ``pthread_kill``. The signal's
handler must be a C function (a Python handler only runs on the main thread
and would not interrupt anything), and it must be installed without
SA_RESTART so that the blocked ``waitpid`` fails with EINTR. The C library's
``getpid`` serves as that handler: it ignores its argument, touches no state
and is async-signal-safe.
"""

from __future__ import annotations

import ctypes
import signal
import threading

from lindbg.os.linux.libc import libc, os_error

#: A real-time signal that neither glibc nor CPython uses.
WAKE_SIGNAL = int(signal.SIGRTMAX) - 3


class _SigAction(ctypes.Structure):
    _fields_ = [
        ("sa_handler", ctypes.c_void_p),
        ("sa_mask", ctypes.c_uint64 * 16),
        ("sa_flags", ctypes.c_int),
        ("sa_restorer", ctypes.c_void_p),
    ]


_installed = False
_install_lock = threading.Lock()


def install_wake_handler() -> None:
    """Install the no-op handler for ``WAKE_SIGNAL`` once per process."""
    global _installed
    with _install_lock:
        if _installed:
            return
        action = _SigAction()
        action.sa_handler = ctypes.cast(libc.getpid, ctypes.c_void_p).value
        action.sa_flags = 0
        if libc.sigaction(WAKE_SIGNAL, ctypes.byref(action), None) != 0:
            raise os_error("sigaction(WAKE_SIGNAL)")
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {WAKE_SIGNAL})
        _installed = True


def wake(thread_ident: int) -> None:
    """Interrupt whatever system call the thread ``thread_ident`` is blocked in."""
    try:
        signal.pthread_kill(thread_ident, WAKE_SIGNAL)
    except (ProcessLookupError, OSError):
        pass
