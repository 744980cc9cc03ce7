"""GDB's own signal numbers (``enum gdb_signal``), which the remote protocol uses in
stop replies (``T05``, ``X0b``) and resume packets (``C1e``) whatever the host's
numbering. They match Linux for 1-6, 8, 9, 11, 13, 14 and 15 only."""

from __future__ import annotations

import signal

#: Linux signal number -> gdb signal number (the names are the same on both sides).
_GDB_BY_NAME = {
    "SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5, "SIGABRT": 6,
    "SIGFPE": 8, "SIGKILL": 9, "SIGBUS": 10, "SIGSEGV": 11, "SIGSYS": 12, "SIGPIPE": 13,
    "SIGALRM": 14, "SIGTERM": 15, "SIGURG": 16, "SIGSTOP": 17, "SIGTSTP": 18, "SIGCONT": 19,
    "SIGCHLD": 20, "SIGTTIN": 21, "SIGTTOU": 22, "SIGIO": 23, "SIGXCPU": 24, "SIGXFSZ": 25,
    "SIGVTALRM": 26, "SIGPROF": 27, "SIGWINCH": 28, "SIGUSR1": 30, "SIGUSR2": 31,
    "SIGPWR": 32,
}  # fmt: skip
#: GDB_SIGNAL_REALTIME_34 .. _64 are 46..76; 33 is GDB_SIGNAL_REALTIME_33 at 45.
_GDB_REALTIME_33 = 45
#: GDB_SIGNAL_UNKNOWN: what a number without a gdb counterpart becomes.
GDB_SIGNAL_UNKNOWN = 143

_TO_GDB = {int(getattr(signal, name)): number for name, number in _GDB_BY_NAME.items()}
_FROM_GDB = {number: host for host, number in _TO_GDB.items()}


def to_gdb(signo: int) -> int:
    """The gdb number of host signal ``signo`` (0 stays 0)."""
    if signo == 0:
        return 0
    number = _TO_GDB.get(signo)
    if number is not None:
        return number
    if 33 <= signo <= 64:
        return _GDB_REALTIME_33 + signo - 33
    return GDB_SIGNAL_UNKNOWN


def from_gdb(number: int) -> int:
    """The host signal of gdb signal ``number``; 0 for 0 or one the host lacks."""
    host = _FROM_GDB.get(number)
    if host is not None:
        return host
    if _GDB_REALTIME_33 <= number <= _GDB_REALTIME_33 + 31:
        return 33 + number - _GDB_REALTIME_33
    return 0
