"""Linux signal facts the engine needs: names, and which ones kill by default."""

from __future__ import annotations

import signal

#: Signals whose default action does not terminate the process.
_NON_FATAL_BY_DEFAULT = frozenset(
    int(s) for s in (signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH,
                     signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
)  # fmt: skip


def is_fatal_by_default(signo: int) -> bool:
    """True if the default action of ``signo`` terminates the process."""
    return signo not in _NON_FATAL_BY_DEFAULT


def signal_name(signo: int) -> str:
    """``SIGSEGV``-style name, or ``SIG<n>`` for an unnamed number."""
    try:
        return signal.Signals(signo).name
    except ValueError:
        return f"SIG{signo}"


def signal_description(signo: int) -> str:
    """strsignal() text, e.g. ``Segmentation fault``."""
    return signal.strsignal(signo) or signal_name(signo)
