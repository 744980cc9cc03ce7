"""The callback interfaces clients implement (dbgeng's IDebugEventCallbacks
and IDebugOutputCallbacks). Every method has a do-nothing default."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lindbg.constants import SessionStatus, Status

if TYPE_CHECKING:
    from lindbg.engine.handles import Breakpoint, ExceptionInfo, Module, Process, Thread


class EventCallbacks:
    """Subclass and override what you need; ``get_interest_mask`` says which.

    Event methods return a ``Status`` (``NO_CHANGE`` leaves the decision to
    the other clients and the engine's defaults); notification methods
    (``session_status`` and the ``change_*`` family) return nothing.
    """

    def get_interest_mask(self) -> int:
        """Which events and notifications this object wants (``EventMask`` bits)."""
        return 0

    def breakpoint(self, bp: Breakpoint) -> Status:
        return Status.NO_CHANGE

    def exception(self, exc: ExceptionInfo) -> Status:
        return Status.NO_CHANGE

    def create_thread(self, thread: Thread) -> Status:
        return Status.NO_CHANGE

    def exit_thread(self, exit_code: int) -> Status:
        return Status.NO_CHANGE

    def create_process(self, process: Process) -> Status:
        return Status.NO_CHANGE

    def exit_process(self, exit_code: int) -> Status:
        return Status.NO_CHANGE

    def load_module(self, module: Module) -> Status:
        return Status.NO_CHANGE

    def unload_module(self, module: Module) -> Status:
        return Status.NO_CHANGE

    def system_error(self, error: int, level: int) -> Status:
        return Status.NO_CHANGE

    def session_status(self, status: SessionStatus) -> None:
        return None

    def change_debuggee_state(self, flags: int, argument: int) -> None:
        return None

    def change_engine_state(self, flags: int, argument: int) -> None:
        return None

    def change_symbol_state(self, flags: int, argument: int) -> None:
        return None


class OutputCallbacks:
    """Receives the engine's text output with its ``OutputMask`` bits."""

    def output(self, mask: int, text: str) -> None:
        return None
