"""lindbg: dbgeng's session and remote-debugging model for Linux processes.

Everything a user needs is importable from here (DESIGN.md section 7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from lindbg.remoting.client import RemoteClient
from lindbg.errors import (
    EngineUnusableError,
    InvalidOperationError,
    LindbgError,
    MemoryAccessError,
    NoDebuggeeError,
    TargetAccessError,
    TimeoutExpiredError,
)


def debug_connect(options: str, *, timeout: float = 10.0) -> RemoteClient:
    """Join the session of a debugging server (DESIGN section 4) and return a client of
    it: ``tcp:server=HOST,port=P[,password=W]``, ``npipe:pipe=NAME``,
    ``ssl:server=HOST,port=P[,cafile=FILE]``, ``spipe:pipe=NAME``, ``com:port=DEV,baud=N``.

    Raises:
        TransportError: the option string is wrong, or nothing answers there.
        InvalidOperationError: the server refused the login (a wrong password).
    """
    from lindbg.remoting.client import debug_connect as connect

    return connect(options, timeout=timeout)


def __getattr__(name: str) -> object:
    # the remote client's modules (msgpack, asyncio, ssl) load only when used
    if name == "RemoteClient":
        from lindbg.remoting.client import RemoteClient

        return RemoteClient
    raise AttributeError(f"module 'lindbg' has no attribute {name!r}")


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
    "RemoteClient",
    "SessionStatus",
    "Status",
    "TargetAccessError",
    "Thread",
    "TimeoutExpiredError",
    "debug_connect",
]
