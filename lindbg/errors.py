"""The exception hierarchy: every error lindbg raises is a ``LindbgError``.

Messages are one line and name what failed and where (pid, tid, address), so a
console can print ``str(error)`` as it is.
"""

from __future__ import annotations


class LindbgError(Exception):
    """Base of every error raised by lindbg."""


class EngineUnusableError(LindbgError):
    """The engine was ended with ``end_session(REENTRANT)``: no call can succeed.

    Create a new ``DebugClient`` (a new engine) to debug again.
    """


class NoDebuggeeError(LindbgError):
    """The call needs a target and the engine has none (no session)."""


class InvalidOperationError(LindbgError):
    """The call is not valid in the current state (running target, a dump, a
    local client asked to DISCONNECT, a wrong thread ...). The engine is unchanged."""


class TargetAccessError(LindbgError):
    """The operating system refused an operation on the target (ptrace, /proc).

    ``pid`` and ``tid`` name the process and thread when known; the OS error, if
    any, is in ``__cause__``.
    """

    def __init__(self, message: str, pid: int | None = None, tid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid
        self.tid = tid


class MemoryAccessError(TargetAccessError):
    """Target memory at ``address`` could not be read or written."""

    def __init__(self, message: str, address: int, pid: int | None = None) -> None:
        super().__init__(message, pid=pid)
        self.address = address


class DumpFileError(TargetAccessError):
    """A file is not a readable core: the message is one line naming the file and
    what is wrong (missing, not ELF, not a core, another architecture, truncated
    before its threads ...).

    Raised only when opening: damage that still leaves threads to show is reported
    as warnings of the opened core instead. The OS error, if any, is in ``__cause__``.
    """


class TimeoutExpiredError(LindbgError):
    """A wait with a timeout ended before the awaited thing happened."""


class ExpressionError(LindbgError):
    """An expression (MASM for ``?``, C++ for ``??``) could not be evaluated;
    ``str()`` is cdb's message.

    ``position`` is the offset in the evaluated text where the failing token starts
    (``len(text)`` at the end of the input).
    """

    def __init__(self, message: str, position: int = 0) -> None:
        super().__init__(message)
        self.position = position
