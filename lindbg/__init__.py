"""lindbg: dbgeng's session and remote-debugging model for Linux processes.

Everything a user needs is importable from here (DESIGN.md section 7).
"""

from lindbg import constants as _constants
from lindbg.constants import (
    CDS,
    CES,
    CSS,
    EndFlags,
    EventFilter,
    EventMask,
    Notify,
    OutputMask,
    ProcessOptions,
    SessionStatus,
    Status,
)
from lindbg.engine.callbacks import EventCallbacks, OutputCallbacks
from lindbg.engine.client import DebugClient
from lindbg.engine.handles import Breakpoint, ExceptionInfo, LastEvent, Process, Thread
from lindbg.engine.processor import CommandProcessor, set_default_processor
from lindbg.errors import (
    EngineUnusableError,
    InvalidOperationError,
    LindbgError,
    MemoryAccessError,
    NoDebuggeeError,
    TargetAccessError,
    TimeoutExpiredError,
)


def debug_connect(options: str) -> DebugClient:
    """Connect to a debugging server (DESIGN section 4) and return a client of its engine.

    Raises:
        InvalidOperationError: this build of lindbg has no debugging servers; it
            debugs on this machine only (local clients of one engine).
    """
    raise InvalidOperationError(
        f"cannot connect to '{options}': this lindbg has no debugging servers (local sessions only)"
    )


def _cdb_language() -> CommandProcessor:
    """The command language ``DebugClient.execute`` speaks: cdb's (lindbg.commands),
    imported when a client first executes a command."""
    from lindbg.commands.interpreter import CommandLanguage

    return CommandLanguage()


set_default_processor(_cdb_language)
globals().update(_constants.dbgeng_names())

__all__ = [
    "CDS",
    "CES",
    "CSS",
    "Breakpoint",
    "DebugClient",
    "EndFlags",
    "EngineUnusableError",
    "EventCallbacks",
    "EventFilter",
    "EventMask",
    "ExceptionInfo",
    "InvalidOperationError",
    "LastEvent",
    "LindbgError",
    "MemoryAccessError",
    "NoDebuggeeError",
    "Notify",
    "OutputCallbacks",
    "OutputMask",
    "Process",
    "ProcessOptions",
    "SessionStatus",
    "Status",
    "TargetAccessError",
    "Thread",
    "TimeoutExpiredError",
    "debug_connect",
]
