"""The events a target reports, turned into callbacks and decisions: breakpoints,
signals as first- and second-chance exceptions, threads, forks, exec, exits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lindbg.constants import (
    EventFilter,
    EventMask,
    OutputMask,
    Status,
)
from lindbg.engine import status as status_rules
from lindbg.engine.breakpoints import is_symbolic
from lindbg.engine.handles import (
    ExceptionInfo,
    LastEvent,
)
from lindbg.engine.loading import LoaderMark
from lindbg.engine.session_table import SessionInput
from lindbg.engine.stepping import GO_STATUSES, STEP_STATUSES, StepOverMark
from lindbg.os.linux.signals import signal_description
from lindbg.targets.base import (
    EventKind,
    TargetEvent,
)

if TYPE_CHECKING:
    from lindbg.engine.engine import Engine


class EventHandling:
    """Handles one ``TargetEvent``: ``dispatch`` is True when the engine breaks in."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def dispatch(self, event: TargetEvent) -> bool:
        """Handle one target event; True when ``wait_for_event`` should return."""
        kind = event.kind
        if kind is EventKind.BREAKPOINT:
            return self.on_breakpoint(event)
        if kind is EventKind.SIGNAL:
            return self.on_signal(event.pid, event.tid, event.signal, event.address, first_chance=True)
        if kind is EventKind.STEP:
            self._engine.set_current(event.pid, event.tid)
            return self._engine.stepping.finished(event.pid, event.tid)
        if kind is EventKind.INTERRUPT:
            self._engine.set_current(event.pid, event.tid)
            self._engine.stepping.clear_step_over()
            self._engine.recorded_event = LastEvent(
                "break", event.pid, event.tid, "Break instruction exception - code 80000003"
            )
            return self.after(Status.BREAK)
        if kind is EventKind.CREATE_THREAD:
            process = self._engine.processes.get(event.pid)
            if process is None:
                return self.after(Status.GO)
            thread = self._engine.register_thread(process, event.new_id)
            decided = self._engine.dispatch.event(EventMask.CREATE_THREAD, "create_thread", thread)
            return self.after(
                decided, default=Status.GO, pid=event.pid, tid=event.new_id, what="create_thread"
            )
        if kind is EventKind.EXIT_THREAD:
            gone = self._engine.threads.get(event.tid)
            if gone is not None:
                del self._engine.threads[event.tid]
                gone.is_valid = False
                owner = self._engine.processes.get(gone.pid)
                if owner is not None and gone in owner.threads:
                    owner.threads.remove(gone)
            decided = self._engine.dispatch.event(EventMask.EXIT_THREAD, "exit_thread", event.code)
            return self.after(decided, default=Status.GO, pid=event.pid, tid=event.tid, what="exit_thread")
        if kind is EventKind.CREATE_PROCESS:
            parent = self._engine.processes.get(event.code)
            child = self._engine.register_process(event.pid, parent.options if parent is not None else 0)
            child.parent_pid = event.code
            self._engine.loading.inherit(event.code, event.pid)
            decided = self._engine.dispatch.event(EventMask.CREATE_PROCESS, "create_process", child)
            return self.after(decided, default=Status.GO, pid=event.pid, tid=event.tid, what="create_process")
        if kind is EventKind.EXEC:
            return self._on_exec(event)
        if kind is EventKind.EXIT_PROCESS:
            process = self._engine.processes.get(event.pid)
            if process is not None:
                process.exit_code = event.code
            decided = self._engine.dispatch.event(EventMask.EXIT_PROCESS, "exit_process", event.code)
            default = Status.BREAK if self._engine.break_on_exit else Status.GO
            return self.after(decided, default=default, pid=event.pid, tid=event.tid, what="exit_process")
        assert kind is EventKind.PROCESS_GONE
        return self._on_process_gone(event)

    def after(
        self, decided: Status, default: Status = Status.BREAK, pid: int = 0, tid: int = 0, what: str = ""
    ) -> bool:
        """Act on the combined status of an event; True if the engine broke in."""
        if decided is Status.NO_CHANGE:
            decided = self._engine.stepping.running_status() if default is Status.GO else default
        if decided is Status.BREAK:
            if what:
                self._engine.set_current(pid, tid)
                self._engine.recorded_event = LastEvent(what, pid, tid, what.replace("_", " "))
            self._engine.stepping.clear_step_over()
            self._engine.announce_break()
            return True
        if decided in STEP_STATUSES:
            self._engine.status = decided
        else:
            self._engine.status = Status.GO if decided is Status.IGNORE_EVENT else decided
        if self._engine.target is not None and self._engine.target.process_ids():
            self._engine.stepping.resume()
        return False

    def on_breakpoint(self, event: TargetEvent) -> bool:
        owners = event.sites
        self._engine.current_pid = event.pid
        self._engine.current_tid = event.tid
        decided = Status.NO_CHANGE
        user_hit = None
        listeners = self._engine.dispatch.listeners[EventMask.BREAKPOINT]
        # releasing a mark edits the site's owner list: count them before that
        alone = len(owners) == 1
        for owner in list(owners):
            if owner.__class__ is LoaderMark:
                decided = status_rules.stronger(decided, self._engine.loading.on_mark(owner, event.pid))
                continue
            if owner.__class__ is StepOverMark:
                if self._engine.stepping.step_over_done(owner, event.tid):
                    self._engine.stepping.clear_step_over()
                    if user_hit is None and alone:
                        return self._engine.stepping.finished(event.pid, event.tid)
                    decided = Status.BREAK
                continue
            if not owner.enabled:
                continue
            owner.hit_count += 1
            if owner.passes_left > 1:
                owner.passes_left -= 1
                continue
            user_hit = owner
            for client, callbacks in listeners:
                decided = status_rules.stronger(
                    decided, self._engine.dispatch.invoke(client, callbacks.breakpoint, owner)
                )
            if owner.one_shot:
                self._engine.breakpoint_table.remove(owner)
        if user_hit is None:
            if decided is Status.NO_CHANGE:
                decided = self._engine.stepping.running_status()
        else:
            self._engine.recorded_event = None
            self._engine.last_breakpoint_hit = (event.pid, event.tid, user_hit.id)
            if decided is Status.NO_CHANGE:
                decided = Status.BREAK
        if decided is Status.BREAK:
            self._engine.stepping.clear_step_over()
            self._engine.announce_break()
            return True
        self._engine.status = Status.GO if decided is Status.IGNORE_EVENT else decided
        self._engine.stepping.resume()
        return False

    def _would_kill(self, pid: int, signo: int) -> bool:
        return self._engine.session_target.delivery_kills(pid, signo)

    def on_signal(self, pid: int, tid: int, signo: int, address: int, *, first_chance: bool) -> bool:
        if signo in self._engine.swallowed_signals:
            self._engine.status = self._engine.stepping.running_status()
            self._engine.stepping.resume()
            return False
        self._engine.current_pid = pid
        self._engine.current_tid = tid
        info = ExceptionInfo(signo, address, first_chance, pid, tid)
        chance = "first chance" if first_chance else "!!! second chance !!!"
        description = f"{signal_description(signo)} - code {signo:08x} ({chance})"
        self._engine.recorded_event = LastEvent("exception", pid, tid, description, signal=signo)
        mode = self._engine.event_filter(signo)
        if mode is EventFilter.OUTPUT:
            # sxn: the engine prints the event as it passes, to every client
            self._engine.dispatch.output(OutputMask.NORMAL, f"({pid:x}.{tid:x}): {description}\n")
        decided = explicit = self._engine.dispatch.event(EventMask.EXCEPTION, "exception", info)
        if decided is Status.NO_CHANGE:
            breaks = mode is EventFilter.BREAK or (
                not first_chance and mode is EventFilter.SECOND_CHANCE_BREAK
            )
            decided = Status.BREAK if breaks else Status.GO_NOT_HANDLED
        if decided is Status.BREAK or (decided in STEP_STATUSES and decided is not Status.GO_HANDLED):
            self._engine.held_signal = (tid, signo, first_chance, address)
            if decided is Status.BREAK:
                self._engine.stepping.clear_step_over()
                self._engine.announce_break()
                return True
        if decided is Status.GO_HANDLED:
            self._engine.held_signal = None
        elif decided in GO_STATUSES:
            if first_chance and self._would_kill(pid, signo):
                return self.on_signal(pid, tid, signo, address, first_chance=False)
            self._engine.held_signal = (tid, signo, first_chance, address)
        if explicit is Status.NO_CHANGE:
            self._engine.status = self._engine.stepping.running_status()
        else:
            self._engine.status = Status.GO if decided is Status.IGNORE_EVENT else decided
        self._engine.stepping.resume()
        return False

    def _on_exec(self, event: TargetEvent) -> bool:
        process = self._engine.processes.get(event.pid)
        if process is None:
            return self.after(Status.GO)
        for bp in [bp for bp in self._engine.breakpoint_table.by_id.values() if bp.pid == event.pid]:
            bp._placement = None  # its int3 went with the old image
            if bp.expression and is_symbolic(bp.expression):
                bp.deferred = True  # resolved again in the new image, as gdb does
            else:
                self._engine.breakpoint_table.forget(bp)
        for thread in process.threads[1:]:
            thread.is_valid = False
            self._engine.threads.pop(thread.tid, None)
        process.threads = process.threads[:1]
        process.executable = self._engine.session_target.executable(event.pid)
        old = self._engine.loading.trackers.pop(event.pid, None)
        self._engine.loading.marks.pop(event.pid, None)  # their int3 bytes went with the old image
        decided = self._engine.loading.announce([], old.forget() if old is not None else [])
        decided = status_rules.stronger(
            decided, self._engine.dispatch.event(EventMask.CREATE_PROCESS, "create_process", process)
        )
        decided = status_rules.stronger(decided, self._engine.loading.track(event.pid, attached=False))
        return self.after(decided, default=Status.GO, pid=event.pid, tid=event.tid, what="exec")

    def _on_process_gone(self, event: TargetEvent) -> bool:
        process = self._engine.processes.pop(event.pid, None)
        if process is not None:
            already_reported = process.exit_code is not None
            process.exit_code = event.code
            process.is_valid = False
            for thread in process.threads:
                thread.is_valid = False
                self._engine.threads.pop(thread.tid, None)
            if not already_reported:
                self._engine.dispatch.event(EventMask.EXIT_PROCESS, "exit_process", event.code)
        for bp in [bp for bp in self._engine.breakpoint_table.by_id.values() if bp.pid == event.pid]:
            bp._placement = None
            self._engine.breakpoint_table.forget(bp)
        tracker = self._engine.loading.trackers.pop(event.pid, None)
        if tracker is not None:
            tracker.forget()
        self._engine.loading.marks.pop(event.pid, None)
        if not self._engine.processes:
            self._engine.finish_session(SessionInput.TARGETS_EXITED)
            return True
        if self._engine.current_pid == event.pid:
            first = next(iter(self._engine.processes.values()))
            self._engine.current_pid = first.pid
            self._engine.current_tid = first.threads[0].tid if first.threads else first.pid
        self._engine.status = Status.GO
        self._engine.stepping.resume()
        return False
