"""The engine's breakpoints: software (a site in the target) and hardware (a debug
register), deferred ones resolved when their module loads (WinDbg's ``bu``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lindbg.arch.x86_64 import WatchKind
from lindbg.constants import (
    CES,
    EventMask,
    OutputMask,
)
from lindbg.engine.handles import (
    Breakpoint,
    Module,
)
from lindbg.errors import (
    InvalidOperationError,
    LindbgError,
)
from lindbg.targets.base import (
    Capability,
)

if TYPE_CHECKING:
    from lindbg.engine.engine import Engine

_WATCH_KINDS = {
    "e": WatchKind.EXECUTE,
    "w": WatchKind.WRITE,
    "rw": WatchKind.READ_WRITE,
    "r": WatchKind.READ_WRITE,
}

_SOURCE_LINE = re.compile(r"^(.+\.[A-Za-z0-9+]+):(\d+)$")


def is_symbolic(expression: str) -> bool:
    """Could ``expression`` name something in a module that is not loaded yet?"""
    return "!" in expression or _SOURCE_LINE.match(expression) is not None


class BreakpointTable:
    """Every breakpoint of the session, by id."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.by_id: dict[int, Breakpoint] = {}
        self._next_id = 0

    def add(self, location: int | str, access: str | None, size: int, one_shot: bool) -> Breakpoint:
        target = self._engine.require_capability(Capability.BREAKPOINTS, "set breakpoints")
        if access is not None and access not in _WATCH_KINDS:
            raise InvalidOperationError(f"breakpoint access must be 'e', 'w', 'rw' or 'r', not '{access}'")
        if access is not None and target.running:
            raise InvalidOperationError("hardware breakpoints need a stopped target; break in first")
        if access is not None and Capability.HARDWARE_BREAKPOINTS not in target.capabilities:
            raise target.refusal("set hardware breakpoints")
        pid = self._engine.current_pid
        expression = location.strip() if isinstance(location, str) else ""
        address = self._try_resolve(location)
        bp = Breakpoint(
            self._engine, self._next_id, pid, address or 0, access, size if access else 1, one_shot
        )
        bp.expression = expression
        if address is None:
            if not is_symbolic(expression):
                raise InvalidOperationError(f"Couldn't resolve error at '{expression}'")
            bp.deferred = True  # resolved when a module that has it loads
        else:
            self.place(bp)
        self._next_id += 1
        self.by_id[bp.id] = bp
        self._engine.dispatch.notify(
            EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.BREAKPOINTS, bp.id
        )
        return bp

    def _try_resolve(self, location: int | str) -> int | None:
        """The address ``location`` names now, or None if no loaded module has it."""
        if isinstance(location, int):
            return location
        try:
            return self._engine.resolve(location)
        except InvalidOperationError:
            return None

    def defer_in(self, module: Module) -> None:
        """A module went away: its breakpoints wait for it to come back (WinDbg's `bu`)."""
        for bp in list(self.by_id.values()):
            if bp.pid != module.pid or bp.deferred or not module.base <= bp.address < module.end:
                continue
            self.unplace(bp)
            if bp.expression and is_symbolic(bp.expression):
                bp.deferred = True
            else:
                self.forget(bp)

    def resolve_deferred(self, pid: int) -> None:
        """Modules changed in ``pid``: place the deferred breakpoints that now resolve."""
        for bp in list(self.by_id.values()):
            if not bp.deferred or bp.pid != pid or not bp.enabled:
                continue
            address = self._try_resolve(bp.expression)
            if address is None:
                continue
            bp.address = address
            bp.deferred = False
            try:
                self.place(bp)
            except LindbgError as error:
                bp.deferred = True
                self._engine.dispatch.output(
                    OutputMask.WARNING, f"breakpoint {bp.id} at {address:#x}: {error}\n"
                )
                continue
            self._engine.dispatch.notify(
                EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.BREAKPOINTS, bp.id
            )

    def place(self, bp: Breakpoint) -> None:
        target = self._engine.session_target
        if bp.access is None:
            bp._placement = target.claim_site(bp.pid, bp.address, bp)
        else:
            slot = target.set_hardware(bp.pid, bp.address, _WATCH_KINDS[bp.access], bp.size)
            slot.owners.append(bp)
            bp._placement = slot

    def unplace(self, bp: Breakpoint) -> None:
        placement = bp._placement
        bp._placement = None
        target = self._engine.target
        if placement is None or target is None:
            return
        if bp.access is None:
            target.release_site(bp.pid, bp.address, bp)
            return
        if bp in placement.owners:
            placement.owners.remove(bp)
        if not placement.owners:
            target.clear_hardware(bp.pid, placement)

    def set_enabled(self, bp: Breakpoint, enabled: bool) -> None:
        self._engine.check_usable()
        if not bp.is_valid:
            raise InvalidOperationError(f"breakpoint {bp.id} no longer exists")
        if enabled == bp._enabled:
            return
        if enabled:
            self.place(bp)
        else:
            self.unplace(bp)
        bp._enabled = enabled
        self._engine.dispatch.notify(
            EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.BREAKPOINTS, bp.id
        )

    def remove(self, bp: Breakpoint) -> None:
        self._engine.check_usable()
        if self.by_id.get(bp.id) is not bp:
            raise InvalidOperationError(f"breakpoint {bp.id} does not exist")
        self.unplace(bp)
        self.forget(bp)
        self._engine.dispatch.notify(
            EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.BREAKPOINTS, bp.id
        )

    def forget(self, bp: Breakpoint) -> None:
        self.by_id.pop(bp.id, None)
        bp.is_valid = False
        bp._enabled = False
