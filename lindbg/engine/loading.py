"""Module loading: the modules of each process image, learnt at start and whenever
the dynamic loader's rendezvous breakpoint says its list changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lindbg.constants import (
    CSS,
    EventMask,
    OutputMask,
    Status,
)
from lindbg.engine import status as status_rules
from lindbg.engine.handles import (
    Module,
)
from lindbg.engine.modules import ProcessModules
from lindbg.errors import (
    LindbgError,
)
from lindbg.targets.base import (
    Capability,
)

if TYPE_CHECKING:
    from lindbg.engine.engine import Engine


class LoaderMark:
    """The engine's own breakpoint where the loader can be watched: the program's
    entry point (``entry``: the DT_NEEDED libraries are mapped) or ``r_brk``
    (``rendezvous``: every dlopen/dlclose)."""

    __slots__ = ("address", "enabled", "kind", "pid")

    def __init__(self, pid: int, address: int, kind: str) -> None:
        self.pid = pid
        self.address = address
        self.kind = kind
        self.enabled = True


class ModuleLoading:
    """Each process's modules and the loader marks that watch them."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        #: pid -> its modules.
        self.trackers: dict[int, ProcessModules] = {}
        #: pid -> the engine's breakpoints that watch its loader.
        self.marks: dict[int, list[LoaderMark]] = {}

    def track(self, pid: int, *, attached: bool) -> Status:
        """Learn the modules of a new process image and watch its loader."""
        target = self._engine.target
        assert target is not None
        try:
            tracker = ProcessModules(
                pid,
                target.memory_reader(pid),
                target.auxv(pid),
                target.executable(pid),
                lambda address: target.mapping_path_at(pid, address),
            )
            loaded = tracker.initial()
        except (OSError, KeyError, ValueError) as error:
            self._engine.dispatch.output(
                OutputMask.WARNING, f"cannot list the modules of process {pid}: {error}\n"
            )
            return Status.NO_CHANGE
        self.trackers[pid] = tracker
        if attached:
            more, _ = tracker.refresh()
            loaded += more
            if Capability.BREAKPOINTS in target.capabilities:  # a dump's loader never runs again
                self._watch_rendezvous(pid, tracker)
        elif tracker.entry_point:
            self._plant_mark(LoaderMark(pid, tracker.entry_point, "entry"))
        return self.announce(loaded, [])

    def announce(self, loaded: list[Module], unloaded: list[Module]) -> Status:
        decided = Status.NO_CHANGE
        for module in unloaded:
            decided = status_rules.stronger(
                decided, self._engine.dispatch.event(EventMask.UNLOAD_MODULE, "unload_module", module)
            )
            self._engine.dispatch.notify(
                EventMask.CHANGE_SYMBOL_STATE, "change_symbol_state", CSS.UNLOADS, module.base
            )
        for module in loaded:
            decided = status_rules.stronger(
                decided, self._engine.dispatch.event(EventMask.LOAD_MODULE, "load_module", module)
            )
            self._engine.dispatch.notify(
                EventMask.CHANGE_SYMBOL_STATE, "change_symbol_state", CSS.LOADS, module.base
            )
        for module in unloaded:
            self._engine.symbols.forget_module(module)
            self._engine.breakpoint_table.defer_in(module)
        if loaded:
            self._engine.breakpoint_table.resolve_deferred(loaded[0].pid)
        return decided

    def _watch_rendezvous(self, pid: int, tracker: ProcessModules) -> None:
        address = tracker.rendezvous_break_address()
        marks = self.marks.get(pid, [])
        if address and not any(m.kind == "rendezvous" for m in marks):
            self._plant_mark(LoaderMark(pid, address, "rendezvous"))

    def _plant_mark(self, mark: LoaderMark) -> None:
        try:
            self._engine.session_target.claim_site(mark.pid, mark.address, mark)
        except LindbgError as error:
            self._engine.dispatch.output(
                OutputMask.WARNING, f"cannot watch the loader of process {mark.pid}: {error}\n"
            )
            return
        self.marks.setdefault(mark.pid, []).append(mark)

    def _remove_mark(self, mark: LoaderMark) -> None:
        marks = self.marks.get(mark.pid, [])
        if mark in marks:
            marks.remove(mark)
        if self._engine.target is not None:
            self._engine.target.release_site(mark.pid, mark.address, mark)

    def on_mark(self, mark: LoaderMark, pid: int) -> Status:
        """The loader reached a point where its module list may have changed."""
        tracker = self.trackers.get(pid)
        if tracker is None:
            return Status.NO_CHANGE
        try:
            loaded, unloaded = tracker.refresh()
        except OSError as error:
            self._engine.dispatch.output(
                OutputMask.WARNING, f"cannot read the loader's list of process {pid}: {error}\n"
            )
            return Status.NO_CHANGE
        if mark.kind == "entry" and mark.pid == pid:
            self._remove_mark(mark)
            self._watch_rendezvous(pid, tracker)
        return self.announce(loaded, unloaded)

    def inherit(self, parent_pid: int, child_pid: int) -> None:
        """A fork child has its parent's mappings, and its copy of the loader marks."""
        parent = self.trackers.get(parent_pid)
        target = self._engine.target
        if parent is None or target is None or child_pid not in target.process_ids():
            return
        self.trackers[child_pid] = parent.copy_for(child_pid, target.memory_reader(child_pid))

    def modules(self, pid: int | None = None) -> list[Module]:
        self._engine.require_session()
        tracker = self.trackers.get(self._engine.current_pid if pid is None else pid)
        found = list(tracker.modules) if tracker is not None else []
        for module in found:
            module.symbol_state = self._engine.symbols.state_of(module)
        return found

    def module_at(self, address: int, pid: int | None = None) -> Module | None:
        tracker = self.trackers.get(self._engine.current_pid if pid is None else pid)
        return tracker.at(address) if tracker is not None else None

    def modules_of(self, pid: int | None = None) -> list[Module]:
        tracker = self.trackers.get(self._engine.current_pid if pid is None else pid)
        return tracker.modules if tracker is not None else []
