"""The engine: one per ``DebugClient()`` family, driven by its engine thread.

Strategy. The engine thread (the thread that created the first client) makes
every target call. ``wait_for_event`` runs the event loop: resume the target,
block in the target's ``wait_event``, turn the event into callbacks, combine
their statuses (least execution wins) and either resume at once (the hot
path: a breakpoint whose callbacks say GO never leaves this thread) or break
in and return. Other threads reach the engine through its ``Inbox``; posting
there wakes the target's wait (``Target.wake``) so the engine thread comes out
to run it.

Notifications follow DESIGN.md section 3 exactly; ``_announce_*`` are the
only places that send them, so their order is written down once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import re
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from lindbg.arch.x86_64 import GENERAL_REGISTERS
from lindbg.constants import (
    CDS,
    CES,
    CSS,
    CodeLevel,
    EndFlags,
    EventFilter,
    EventMask,
    Notify,
    OutputMask,
    ProcessOptions,
    SessionStatus,
    SourceOptions,
    Status,
)
from lindbg.engine import processor as processor_module
from lindbg.engine import status as status_rules
from lindbg.engine.breakpoints import BreakpointTable
from lindbg.engine.dispatch import Dispatcher, OutputOrigin
from lindbg.engine.events import EventHandling
from lindbg.engine.extensions import Extension, load_object
from lindbg.engine.handles import (
    ExceptionInfo,
    Frame,
    LastEvent,
    Module,
    Process,
    Thread,
    ThreadDetails,
)
from lindbg.engine.inbox import Inbox
from lindbg.engine.loading import ModuleLoading
from lindbg.engine.processor import CommandProcessor
from lindbg.engine.session_table import Session, SessionInput, SessionState
from lindbg.engine.stepping import GO_STATUSES, STEP_STATUSES, Stepping
from lindbg.engine.symbol_index import SymbolIndex
from lindbg.errors import (
    EngineUnusableError,
    InvalidOperationError,
    LindbgError,
    MemoryAccessError,
    NoDebuggeeError,
    TargetAccessError,
)
from lindbg.os.linux.signals import signal_description
from lindbg.symbols.cfi import CallFrameTable
from lindbg.symbols.disassembly import Instruction, disassemble_memory
from lindbg.symbols.lines import SourceLine
from lindbg.symbols.sourcefiles import SourceFiles
from lindbg.symbols.stackwalk import RawFrame
from lindbg.symbols.stackwalk import walk as walk_stack
from lindbg.targets.base import (
    Capability,
    MemoryRegion,
    SignalState,
    Target,
)

if TYPE_CHECKING:
    from lindbg.engine.client import DebugClient
    from lindbg.engine.frame_inspector import FrameInspector
    from lindbg.remoting.server import ServerHub
    from lindbg.targets.remote.connection import ProcessServerConnection

_T = TypeVar("_T")

#: Signals that break in by default (cdb's default event filters, Linux names).
DEFAULT_BREAK_SIGNALS = frozenset({4, 5, 6, 7, 8, 11})  # SIGILL SIGTRAP SIGABRT SIGBUS SIGFPE SIGSEGV


_SOURCE_LINE = re.compile(r"^(.+\.[A-Za-z0-9+]+):(\d+)$")


def _number(text: str) -> int | None:
    """cdb numbers: ``0x`` hex, ``0n`` decimal, else hex (the default radix)."""
    text = text.strip().lower()
    try:
        if text.startswith("0n"):
            return int(text[2:], 10)
        return int(text[2:] if text.startswith("0x") else text, 16)
    except ValueError:
        return None


class _AddressSpace:
    """The stack walker's view of one process: memory words and module CFI."""

    def __init__(self, engine: Engine, pid: int) -> None:
        assert engine.target is not None
        self._read = engine.target.memory_reader(pid)
        self._engine = engine
        self._modules = engine.loading.modules_of(pid)

    def read_u64(self, address: int) -> int:
        data = self._read(address, 8)
        if len(data) < 8:
            raise MemoryAccessError(f"memory access error at {address:#x}", address)
        return int.from_bytes(data, "little")

    def table_for(self, pc: int) -> tuple[CallFrameTable, int] | None:
        module = next((m for m in self._modules if m.base <= pc < m.end), None)
        if module is None:
            return None
        frames = self._engine.symbols.of(module, self._read).frames
        return (frames, module.bias) if frames is not None else None


def _frame(
    number: int,
    item: RawFrame,
    module: str | None,
    function: str | None,
    offset: int,
    where: tuple[str | None, int | None],
    inline: bool,
) -> Frame:
    """A ``Frame`` of the walked frame ``item``, named and placed."""
    return Frame(
        number,
        item.pc,
        item.sp,
        item.return_address,
        item.how,
        module,
        function,
        offset,
        where[0],
        where[1],
        inline,
    )


def _renumbered(frame: Frame, number: int) -> Frame:
    """``frame`` as frame ``number`` (inline frames hidden in front of it)."""
    return Frame(
        number,
        frame.pc,
        frame.sp,
        frame.return_address,
        frame.how,
        frame.module,
        frame.function,
        frame.offset,
        frame.file,
        frame.line,
        frame.inline,
    )


class Engine:
    """Everything one family of clients shares. Reached only through ``DebugClient``."""

    def __init__(self) -> None:
        self.thread_ident = threading.get_ident()
        self.session = Session()
        self.target: Target | None = None
        self.status = Status.NO_DEBUGGEE
        self.processes: dict[int, Process] = {}
        self.threads: dict[int, Thread] = {}
        self.current_pid = 0
        self.current_tid = 0
        #: What the last event was (built on demand for a breakpoint hit: ``last_event``).
        self.recorded_event: LastEvent | None = None
        #: (pid, tid, breakpoint id) of the last breakpoint hit.
        self.last_breakpoint_hit: tuple[int, int, int] | None = None
        #: Stop at process exit like cdb's final breakpoint (the console sets it).
        self.break_on_exit = False
        #: The event filter of each signal that has one (sx*); the others: IGNORE.
        self.filters: dict[int, EventFilter] = dict.fromkeys(DEFAULT_BREAK_SIGNALS, EventFilter.BREAK)
        #: Runs ``execute`` (the console language, supplied by the top-level package).
        self.processor: CommandProcessor | None = None
        #: Signals the debugger takes for itself: never reported, never delivered
        #: (the console's SIGINT, which it turns into a break-in).
        self.swallowed_signals: set[int] = set()
        #: (tid, signal, first_chance, address) of the exception the target is stopped on.
        self.held_signal: tuple[int, int, bool, int] | None = None
        self.symbols = SymbolIndex(self._process_reader, self._image_file)
        #: Directories searched for source files whose DWARF path does not exist (``.srcpath``).
        self.source_path: list[str] = []
        #: cdb's ``l+``/``l-`` bits; TRACE_LINES mirrors the code level.
        self.source_options = SourceOptions(0)
        self.source_files = SourceFiles()
        #: The frame ``dv``, ``??`` and ``client.locals()`` look at (``.frame N``); any
        #: execution resets it to 0.
        self.scope_frame = 0
        #: Bumped whenever frames may have changed (a resume, a register write): the
        #: cached FrameInspector of the last question is valid while it stays the same.
        self.generation = 0
        self._inspector: tuple[tuple[int, int], FrameInspector] | None = None
        self.unusable_reason: str | None = None
        #: The debugging servers and remote clients (``lindbg.remoting``), once one starts.
        self.servers: ServerHub | None = None
        #: Process servers this engine is a smart client of (``connect_process_server``).
        self.process_server_connections: list[ProcessServerConnection] = []
        #: True while others share the session (a server runs or a remote client is
        #: connected): each command is shown to the other clients.
        self.shared = False
        self._inboxes: dict[int, Inbox] = {}
        self.inbox = self.inbox_for(self.thread_ident)
        self.inbox.on_post = self._wake_target
        #: set_interrupt was called and the target has not been asked yet.
        self.interrupt_pending = False
        # the collaborators, each one job (DESIGN section 1's engine, split along its seams)
        self.dispatch = Dispatcher(self)
        self.loading = ModuleLoading(self)
        self.breakpoint_table = BreakpointTable(self)
        self.stepping = Stepping(self)
        self.events = EventHandling(self)

    def inbox_for(self, ident: int) -> Inbox:
        inbox = self._inboxes.get(ident)
        if inbox is None:
            inbox = self._inboxes[ident] = Inbox(ident)
        return inbox

    def _wake_target(self) -> None:
        """Any thread: bring the engine thread out of its target's wait."""
        target = self.target
        if target is not None:
            target.wake()

    def check_usable(self) -> None:
        if self.unusable_reason is not None:
            raise EngineUnusableError(self.unusable_reason)

    def call(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the engine thread and return its result (any thread)."""
        self.check_usable()
        if threading.get_ident() == self.thread_ident:
            try:
                return fn()
            finally:
                self._end_if_lost()
        caller = self.inbox_for(threading.get_ident())

        def run_and_wake() -> Any:
            try:
                return fn()
            finally:
                self._end_if_lost()
                caller.wake()

        reply = self.inbox.post(run_and_wake)
        assert reply is not None
        while not reply.done:
            caller.run_pending()
            caller.wait(0.05, for_exit=False)
            self.check_usable()
        caller.run_pending()  # what the call posted here (its output) arrives before it returns
        return reply.result()  # type: ignore[no-any-return]

    def announce_session_start(self) -> None:
        self.dispatch.notify(EventMask.SESSION_STATUS, "session_status", SessionStatus.ACTIVE)
        self.dispatch.notify_extensions(Notify.SESSION_ACTIVE)
        self.dispatch.notify(EventMask.CHANGE_DEBUGGEE_STATE, "change_debuggee_state", CDS.ALL, 0)

    def announce_session_end(self, reason: SessionStatus) -> None:
        self.dispatch.notify(
            EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.EXECUTION_STATUS, Status.NO_DEBUGGEE
        )
        self.dispatch.notify(EventMask.SESSION_STATUS, "session_status", reason)
        self.dispatch.notify_extensions(Notify.SESSION_INACTIVE)

    def announce_break(self) -> None:
        self.status = Status.BREAK
        self.stepping.end()
        self.dispatch.notify(
            EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.EXECUTION_STATUS, Status.BREAK
        )
        self.dispatch.notify_extensions(Notify.SESSION_ACCESSIBLE)

    def announce_resume(self, status: Status) -> None:
        self.status = status
        self.dispatch.notify(
            EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.EXECUTION_STATUS, status
        )
        self.dispatch.notify_extensions(Notify.SESSION_INACCESSIBLE)

    def _target_for_new_process(self, capability: Capability, what: str, where: Target | None) -> Target:
        """The target a launch or attach goes to: ``where`` if given, else this
        machine's live target, made on first use; refused while a target that cannot
        take processes (a dump) is open. A session has one target."""
        if where is not None and self.target is not None and where is not self.target:
            raise InvalidOperationError(f"a session has one target: end it before you {what} elsewhere")
        if self.target is None:
            if where is None:
                from lindbg.targets.live import LiveTarget  # ptrace: loaded when a process starts

                where = LiveTarget()
            if capability not in where.capabilities:
                raise where.refusal(what)
            self.target = where
        if capability not in self.target.capabilities:
            raise InvalidOperationError(
                f"the target is a {self.target.kind}: end the session (.kill, .detach or end_session)"
                f" before you {what}"
            )
        return self.target

    # ------------------------------------------------------- process servers

    def drop_process_server(self, connection: ProcessServerConnection, *, end: bool) -> None:
        """Close a smart client's link (``end``: ask the server to exit first, after
        terminating the session if it debugs through that server).

        Raises:
            InvalidOperationError: not ours, or (``end`` False) the session debugs through it.
        """
        if connection not in self.process_server_connections:
            raise InvalidOperationError(f"not a process server of this engine: {connection!r}")
        if self.target is not None and self.target is connection.made_target:
            if not end:
                raise InvalidOperationError(
                    f"the session debugs through {connection.label}: end it (.detach, .kill) first"
                )
            self.end_session(EndFlags.ACTIVE_TERMINATE)  # its programs go with the server
        self.process_server_connections.remove(connection)
        if end:
            connection.end_server()
        else:
            connection.close()

    def running_processes(self, connection: ProcessServerConnection | None) -> list[tuple[int, str]]:
        """(pid, command line) of the processes on ``connection``'s machine (None: here)."""
        if connection is None:
            from lindbg.procserver.xfer import osdata_processes, parse_osdata_processes

            return parse_osdata_processes(osdata_processes())
        return connection.running_process_ids()

    @property
    def session_target(self) -> Target:
        """The target of the active session (event paths run only in one)."""
        assert self.target is not None
        return self.target

    def require_session(self) -> Target:
        self.check_usable()
        if not self.session.active or self.target is None:
            raise NoDebuggeeError("no debuggee: start or attach to a process first")
        return self.target

    def require_capability(self, capability: Capability, what: str) -> Target:
        """The session's target if it can do ``what``, else its one-line refusal."""
        target = self.require_session()
        if capability not in target.capabilities:
            raise target.refusal(what)
        return target

    def require_stopped(self) -> Target:
        target = self.require_session()
        if target.running:
            raise InvalidOperationError("the target is running; break in first (set_interrupt)")
        return target

    def create_process(
        self,
        command: list[str] | str,
        env: dict[str, str] | None,
        cwd: str | None,
        options: int,
        stdio: tuple[int | None, int | None, int | None],
        where: Target | None = None,
    ) -> Process:
        self.check_usable()
        argv = shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]
        target = self._target_for_new_process(Capability.LAUNCH, "start a process", where)
        if target.running:
            raise InvalidOperationError("the target is running; break in before starting another process")
        target.follow_forks = not options & ProcessOptions.ONLY_THIS_PROCESS
        try:
            pid = target.launch(argv, env, cwd, stdio)
        except LindbgError:
            if not target.process_ids():
                self.target = None
            raise
        return self._gained_process(pid, options, "initial")

    def attach_process(self, pid: int, options: int, where: Target | None = None) -> Process:
        self.check_usable()
        target = self._target_for_new_process(Capability.ATTACH, "attach to a process", where)
        if target.running:
            raise InvalidOperationError("the target is running; break in before attaching to another process")
        target.follow_forks = not options & ProcessOptions.ONLY_THIS_PROCESS
        try:
            target.attach(pid)
        except LindbgError:
            if not target.process_ids():
                self.target = None
            raise
        return self._gained_process(pid, options, "attach")

    def open_dump_file(self, path: str, image_dirs: Sequence[str]) -> Process:
        """Open an ELF core as the session's target: stopped for good, read-only.

        The session starts as a live one does (ACTIVE, CDS.ALL), the process and
        its modules are reported, then the signal the core records (NT_SIGINFO)
        as the EXCEPTION event; the session ends in BREAK.

        Raises:
            DumpFileError: not a readable x86-64 core (one line naming the file).
            InvalidOperationError: a session is already active.
        """
        self.check_usable()
        if self.target is not None:
            raise InvalidOperationError("a session is active: end it before opening a dump file")
        from lindbg.targets.dump.target import DumpTarget  # cores: loaded when one is opened

        target = DumpTarget(path, image_dirs)
        self.target = target
        self.dispatch.output(OutputMask.NORMAL, f"Loading Dump File [{path}]\n")
        kind = (
            "User Mini Dump File with Full Memory: Only application data is available"
            if target.has_full_memory()
            else "User Mini Dump File: Only registers, stack and portions of memory are available"
        )
        self.dispatch.output(OutputMask.NORMAL, f"{kind}\n\n")
        for warning in target.warnings:
            self.dispatch.output(OutputMask.WARNING, f"WARNING: {warning}\n")
        pid = target.pid
        process = self.register_process(pid, 0)
        process.origin = "examine"
        self.current_pid = pid
        self.current_tid = target.thread_ids(pid)[0]
        siginfo = target.core.siginfo
        signo = siginfo.signo if siginfo is not None else target.core.threads[0].signal
        address = siginfo.address if siginfo is not None else 0
        if signo:
            description = (
                f"{signal_description(signo)} - code {signo:08x} (first/second chance not available)"
            )
            self.recorded_event = LastEvent("exception", pid, self.current_tid, description, signal=signo)
        if self.session.apply(SessionInput.TARGET_GAINED) is SessionStatus.ACTIVE:
            self.announce_session_start()
        self.dispatch.event(EventMask.CREATE_PROCESS, "create_process", process)
        self.loading.track(pid, attached=True)
        if signo:
            info = ExceptionInfo(signo, address, False, pid, self.current_tid)
            self.dispatch.event(EventMask.EXCEPTION, "exception", info)
        self.announce_break()
        return process

    def write_dump_file(
        self, path: str, full: bool, overwrite: bool, progress: Callable[[int, int], None] | None
    ) -> None:
        """Write an ELF core of the current process, stopped as it is now; the
        process carries on afterwards exactly as before (nothing is changed)."""
        from lindbg.formats.corewriter import write_core

        target = self.require_capability(Capability.CORE_IMAGE, "write a dump of it (it is one)")
        if target.running:
            raise InvalidOperationError("the target is running; break in before writing a dump")
        held = self.held_signal
        image, read_into = target.core_image(
            self.current_pid,
            full=full,
            current_tid=self.current_tid,
            siginfo_tid=held[0] if held is not None else None,
        )
        write_core(image, path, read_into, overwrite=overwrite, progress=progress)

    def _gained_process(self, pid: int, options: int, how: str) -> Process:
        process = self.register_process(pid, options)
        process.origin = "attach" if how == "attach" else "create"
        assert self.target is not None
        self.current_pid = pid
        self.current_tid = self.target.thread_ids(pid)[0]
        self.recorded_event = LastEvent(
            how, pid, self.current_tid, "Break instruction exception - code 80000003"
        )
        if self.session.apply(SessionInput.TARGET_GAINED) is SessionStatus.ACTIVE:
            self.announce_session_start()
        decided = self.dispatch.event(EventMask.CREATE_PROCESS, "create_process", process)
        decided = status_rules.stronger(decided, self.loading.track(pid, attached=how == "attach"))
        if decided is Status.NO_CHANGE or decided is Status.BREAK:
            self.announce_break()
        else:
            self.status = decided  # stopped; the next wait_for_event resumes it
        return process

    def register_process(self, pid: int, options: int) -> Process:
        assert self.target is not None
        process = Process(pid, options, self.target.executable(pid))
        self.processes[pid] = process
        for tid in self.target.thread_ids(pid):
            self.register_thread(process, tid)
        return process

    def register_thread(self, process: Process, tid: int) -> Thread:
        thread = Thread(process.pid, tid)
        process.threads.append(thread)
        self.threads[tid] = thread
        return thread

    def end_session(self, flags: int) -> None:
        """PASSIVE, ACTIVE_TERMINATE or ACTIVE_DETACH (engine thread)."""
        self.check_usable()
        if not self.session.active or self.target is None:
            return
        what = {
            0: SessionInput.END_PASSIVE,
            1: SessionInput.END_ACTIVE_TERMINATE,
            2: SessionInput.END_ACTIVE_DETACH,
        }[flags]
        if Capability.RUN not in self.target.capabilities:  # a dump: closing it is all there is
            try:
                if what is SessionInput.END_ACTIVE_TERMINATE:
                    self.target.terminate_all()
                else:
                    self.target.detach_all()
            finally:
                self.finish_session(what)
            return
        target = self.target
        try:
            if what is SessionInput.END_ACTIVE_TERMINATE:
                for pid, code in target.terminate_all().items():
                    if pid in self.processes:
                        self.processes[pid].exit_code = code
            elif what is SessionInput.END_ACTIVE_DETACH:
                self._prepare_detach()
                target.detach_all()
            else:
                self._prepare_detach()
                live_pids = target.process_ids()
                for pid, process in list(self.processes.items()):
                    if pid not in live_pids:
                        continue
                    if process.options & ProcessOptions.DETACH_ON_EXIT:
                        target.detach_process(pid)
                    else:
                        process.exit_code = target.kill_process(pid)
        finally:
            self.finish_session(what)

    def _prepare_detach(self) -> None:
        """Stop the target and hand a held signal back to its thread."""
        target = self.session_target
        if target.running:
            target.detach_all()  # stops everything first
            return
        held = self.held_signal
        if held is not None:
            tid, signo = held[0], held[1]
            target.set_pending_signal(tid, signo)
            self.held_signal = None

    def finish_session(self, what: SessionInput) -> None:
        reason = self.session.apply(what)
        self._inspector = None
        self.generation += 1
        for bp in self.breakpoint_table.by_id.values():
            bp.is_valid = False
            bp._placement = None
        self.breakpoint_table.by_id.clear()
        for process in self.processes.values():
            process.is_valid = False
        for thread in self.threads.values():
            thread.is_valid = False
        self.processes.clear()
        self.threads.clear()
        for tracker in self.loading.trackers.values():
            tracker.forget()
        self.loading.trackers.clear()
        self.loading.marks.clear()
        self.symbols.close()
        self.target = None
        self.held_signal = None
        self.stepping.step_over = None
        self.interrupt_pending = False
        self.status = Status.NO_DEBUGGEE
        if reason is not None:
            self.announce_session_end(reason)

    def end_reentrant(self) -> None:
        """end_session(REENTRANT): no lock, any thread, best effort."""
        if self.unusable_reason is not None:
            return
        self.unusable_reason = (
            "the engine was ended with end_session(REENTRANT); no further calls are possible, "
            "create a new DebugClient"
        )
        target = self.target
        if target is not None:
            with contextlib.suppress(Exception):
                target.restore_breakpoint_bytes()
        with contextlib.suppress(Exception):
            self.session.state = SessionState.UNUSABLE
        self._wake_target()
        for inbox in list(self._inboxes.values()):
            inbox.wake()

    def set_execution_status(self, status: Status, count: int = 1) -> None:
        target = self.require_capability(Capability.RUN, "run or step it")
        if count < 1:
            raise InvalidOperationError(f"a step count must be at least 1, not {count}")
        if status is Status.BREAK:
            self.set_interrupt()
            return
        if status not in GO_STATUSES and status not in STEP_STATUSES:
            raise InvalidOperationError(f"cannot set the execution status to {status.name}")
        if target.running:
            raise InvalidOperationError("the target is already running")
        if status in STEP_STATUSES:
            self.stepping.begin(status, count, by_line=self.code_level is CodeLevel.SOURCE)
        if self.status is Status.BREAK:
            self.announce_resume(status)
        else:
            self.status = status

    def set_interrupt(self) -> None:
        """Any thread: break into a running target within milliseconds."""
        self.check_usable()
        target = self.target
        if target is None or not target.running:
            return
        self.interrupt_pending = True
        self._wake_target()

    def wait_for_event(self, timeout: float | None) -> bool:
        target = self.require_session()
        deadline = None if timeout is None else time.monotonic() + timeout
        if not target.running:
            if self.status is Status.BREAK:
                return True
            if self.stepping.resume_from_break():
                return True
        return self._event_loop(deadline)

    def _event_loop(self, deadline: float | None) -> bool:
        inbox = self.inbox
        while True:
            if inbox:
                inbox.run_pending()
            self.check_usable()
            target = self.target
            if target is None or not self.session.active:
                return True
            if self.interrupt_pending:
                self.interrupt_pending = False
                target.request_interrupt()
            elif deadline is not None and time.monotonic() >= deadline:
                return False
            if not target.running and self.status is Status.BREAK:
                return True  # a request from another thread broke in or ended
            try:
                event = target.wait_event(deadline)
            except (OSError, TargetAccessError) as error:
                self.fail(error)
                return True
            if event is None:
                continue
            try:
                if self.events.dispatch(event):
                    return True
            except (OSError, TargetAccessError) as error:
                self.fail(error)
                return True

    def _end_if_lost(self) -> None:
        """A call found the target unreachable (its link died): end the session with
        FAILURE now, not at the next wait."""
        target = self.target
        if target is None or not self.session.active:
            return
        reason = target.lost
        if reason is not None:
            self.fail(TargetAccessError(reason))

    def fail(self, error: BaseException) -> None:
        """The session cannot go on: report it, clean up, end with FAILURE."""
        self.dispatch.notify(EventMask.SYSTEM_ERROR, "system_error", getattr(error, "errno", 0) or 0, 1)
        self.dispatch.output(OutputMask.ERROR, f"session failed: {error}\n")
        target = self.target
        if target is not None:
            try:
                target.detach_all()
            except Exception:
                with contextlib.suppress(Exception):
                    target.terminate_all()
        self.finish_session(SessionInput.FAILED)

    def set_current(self, pid: int, tid: int) -> None:
        self.current_pid = pid
        self.current_tid = tid

    def _process_reader(self, pid: int) -> Callable[[int, int], bytes] | None:
        target = self.target
        if target is None or pid not in target.process_ids():
            return None
        return target.memory_reader(pid)

    def _image_file(self, module: Module) -> str:
        target = self.target
        if target is None:
            return module.path
        return target.image_file(module.pid, module.path, module.build_id)

    def memory_reader(self) -> Callable[[int, int], bytes]:
        target = self.require_session()
        return target.memory_reader(self.current_pid)

    def resolve(self, expression: str) -> int:
        """An address from ``mod!sym[+off]``, ``sym[+off]``, ``file.c:LINE`` or a number.

        Raises:
            InvalidOperationError: cdb's "Couldn't resolve error at '...'" naming the part.
        """
        self.require_session()
        text = expression.strip().replace("`", "")
        if not text:
            raise InvalidOperationError("Couldn't resolve error at '<EOL>'")
        line_match = _SOURCE_LINE.match(text)
        if line_match is not None:
            found = self.symbols.resolve_line(self.loading.modules_of(), line_match[1], int(line_match[2]))
            if not found:
                raise InvalidOperationError(f"Couldn't resolve error at '{text}': no code for that line")
            return min(found)
        base, offset = text, 0
        head, plus, tail = text.rpartition("+")
        if plus and head and _number(tail) is not None:
            base, offset = head.strip(), _number(tail) or 0
        number = _number(base)
        if number is not None and (base.lower().startswith(("0x", "0n")) or base.isdigit()):
            return number + offset
        module_name, bang, name = base.rpartition("!")
        modules = self.loading.modules_of()
        if not bang:
            module_name, name = "", base
            module = next((m for m in modules if m.name.lower() == name.lower()), None)
            if module is not None:  # a bare module name is its base, as in cdb
                return module.base + offset
        if bang and not name:  # "mod!" or a bare module name: its base
            module = next((m for m in modules if m.name.lower() == module_name.lower()), None)
            if module is None:
                raise InvalidOperationError(f"Couldn't resolve error at '{text}'")
            return module.base + offset
        found = self.symbols.resolve_symbol(modules, module_name or None, name)
        if found:
            return found[0] + offset
        if not bang and number is not None:
            return number + offset
        raise InvalidOperationError(f"Couldn't resolve error at '{text}'")

    def disassemble(self, address: int, count: int) -> list[Instruction]:
        """Decoded instructions with their branch and rip-relative targets named."""
        listing = disassemble_memory(self.read_memory_partial, address, count)
        modules = self.loading.modules_of()
        read = self.memory_reader()
        named = []
        for insn in listing:
            if insn.target is not None:
                located = self.symbols.locate(modules, insn.target, read)
                if located is not None:
                    insn = dataclasses.replace(insn, target_symbol=str(located))
            named.append(insn)
        return named

    def find_symbols(self, pattern: str) -> list[tuple[str, int]]:
        """``(module!name, address)`` for ``mod!pat`` / ``*!pat`` / ``pat`` (cdb wildcards),
        by address."""
        self.require_session()
        module_part, bang, name = pattern.strip().rpartition("!")
        modules = self.loading.modules_of()
        if bang and module_part not in ("", "*"):
            modules = [m for m in modules if fnmatch.fnmatchcase(m.name.lower(), module_part.lower())]
        found = []
        for module in modules:
            table = self.symbols.of(module).symbols
            for symbol in table.match(name or "*"):
                found.append((f"{module.name}!{symbol.name}", symbol.address + module.bias))
        return sorted(found, key=lambda item: item[1])

    def set_symbol_path(self, path: str) -> None:
        """Directories searched for separate debug files (';'-separated, as in dbgeng)."""
        self.check_usable()
        self.symbols.set_search_paths([p for p in path.split(";") if p.strip()])
        self.dispatch.notify(EventMask.CHANGE_SYMBOL_STATE, "change_symbol_state", CSS.PATHS, 0)

    def set_source_path(self, path: str) -> None:
        """Directories searched for source files (';'-separated, as ``.srcpath``)."""
        self.check_usable()
        self.source_path = [p.strip() for p in path.split(";") if p.strip()]
        self.source_files.forget()
        self.dispatch.notify(EventMask.CHANGE_SYMBOL_STATE, "change_symbol_state", CSS.PATHS, 0)

    def find_source_file(self, dwarf_path: str) -> str | None:
        return self.source_files.find(dwarf_path, self.source_path)

    def source_text(self, dwarf_path: str) -> list[str] | None:
        found = self.find_source_file(dwarf_path)
        return self.source_files.lines(found) if found is not None else None

    @property
    def code_level(self) -> CodeLevel:
        if self.source_options & SourceOptions.TRACE_LINES:
            return CodeLevel.SOURCE
        return CodeLevel.ASSEMBLY

    def set_source_options(self, options: int) -> None:
        """Replace the ``l+``/``l-`` bits; a change of TRACE_LINES is a code-level change."""
        self.check_usable()
        before = self.code_level
        self.source_options = SourceOptions(options & 0xF)
        if self.code_level is not before:
            self.dispatch.notify(
                EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.CODE_LEVEL, int(self.code_level)
            )

    def symbol_at(self, address: int) -> str | None:
        """cdb's ``module!symbol+0xoff`` for ``address`` (None outside every module)."""
        self.require_session()
        located = self.symbols.locate(self.loading.modules_of(), address, self.memory_reader())
        return str(located) if located is not None else None

    def source_line(self, address: int) -> SourceLine | None:
        self.require_session()
        return self.symbols.source_line(self.loading.modules_of(), address, self.memory_reader())

    def current_source_line(self) -> SourceLine | None:
        """The line the current thread's stop presents: the pc's row, or the call
        site of inlined calls a `t` stopped in front of (a virtual inline frame)."""
        target = self.require_stopped()
        rip = target.get_register(self.current_tid, "rip")
        row = self.source_line(rip)
        if not self.stepping.hidden_inline_frames(self.current_tid):
            return row
        frame = self.stack(None, 1)[0]
        if frame.file is None or frame.line is None:
            return row
        return SourceLine(frame.file, frame.line, row.address if row is not None else rip, True)

    def raw_stack(self, tid: int, max_frames: int = 256) -> list[RawFrame]:
        """The unwound frames of stopped thread ``tid`` (no inline frames, no names)."""
        target = self.require_stopped()
        thread = self.threads[tid]
        regs = target.general_registers(tid)
        registers = {name: int(getattr(regs, name)) for name in GENERAL_REGISTERS}
        return walk_stack(registers, _AddressSpace(self, thread.pid), max_frames)

    def frame_inspector(self, tid: int | None = None) -> FrameInspector:
        """Source-level views of thread ``tid``'s frames (variables, expressions)."""
        from lindbg.engine.frame_inspector import FrameInspector  # DWARF variables: loaded on first use

        target = self.require_stopped()
        tid = self.current_tid if tid is None else tid
        cached = self._inspector
        if cached is not None and cached[0] == (tid, self.generation):
            return cached[1]
        thread = self._thread_of(tid)
        process_read = target.memory_reader(thread.pid)

        def read(address: int, size: int) -> bytes:
            # Values read lazily, maybe on a client's thread: through the engine thread
            data = self.call(lambda: process_read(address, size))
            if len(data) < size:
                bad = address + len(data)
                raise MemoryAccessError(f"memory access error at {bad:#x}", bad)
            return data

        modules = self.loading.modules_of(thread.pid)

        def symbolize(address: int) -> str | None:
            # gdb's <name+off> after a pointer into a module; mangled C++ names are
            # left out (no demangler: gdb would print them demangled)
            located = self.call(lambda: self.symbols.locate(modules, address, process_read))
            if located is None or located.symbol is None or located.symbol.name.startswith("_Z"):
                return None
            name = located.symbol.name
            return name if located.offset == 0 else f"{name}+{located.offset}"

        inspector = FrameInspector(
            self.raw_stack(tid),
            modules,
            self.symbols,
            read,
            lambda name: target.get_register(tid, name),
            symbolize,
            self.stepping.hidden_inline_frames(tid),
        )
        # kept until anything could change the frames: a resume, a register write
        self._inspector = ((tid, self.generation), inspector)
        return inspector

    def set_scope_frame(self, number: int) -> None:
        """Make frame ``number`` (as ``k`` numbers them) the local context (``.frame N``)."""
        self.frame_inspector().frame(number)  # raises for a frame that does not exist
        self.scope_frame = number
        self.dispatch.notify(EventMask.CHANGE_SYMBOL_STATE, "change_symbol_state", CSS.SCOPE, 0)

    def stack(self, tid: int | None, max_frames: int | None) -> list[Frame]:
        target = self.require_stopped()
        thread = self._thread_of(tid)
        tid = thread.tid
        raw = self.raw_stack(tid, max_frames or 256)
        modules = self.loading.modules_of(thread.pid)
        read = target.memory_reader(thread.pid)
        frames: list[Frame] = []
        for index, item in enumerate(raw):
            # a return address belongs to the call before it: name and line of pc - 1
            lookup = item.pc if index == 0 or item.how == "signal" else item.pc - 1
            located = self.symbols.locate(modules, lookup, read)
            if lookup != item.pc and (located is None or located.symbol is None):
                # a signal trampoline's return address is its first byte (the byte
                # before it is padding that no symbol covers): name it as it is
                lookup = item.pc
                located = self.symbols.locate(modules, lookup, read)
            line = self.symbols.source_line(modules, lookup, read)
            module_name = located.module.name if located is not None else None
            where = (line.file, line.line) if line is not None else (None, None)
            # inlined calls first (innermost out), each at the line of the call it made
            for call in self.symbols.inlined_at(modules, lookup, read):
                frames.append(
                    _frame(len(frames), item, module_name, call.name, item.pc - call.low, where, True)
                )
                where = (call.call_file, call.call_line)
            if located is None:
                function, offset = None, 0
            else:
                function = located.symbol.name if located.symbol is not None else None
                offset = located.offset + (item.pc - lookup)
            frames.append(_frame(len(frames), item, module_name, function, offset, where, False))
        hidden = self.stepping.hidden_inline_frames(tid)
        if hidden:
            frames = [_renumbered(frame, index) for index, frame in enumerate(frames[hidden:])]
        return frames

    def read_memory(self, address: int, size: int) -> bytes:
        target = self.require_session()
        if size < 0:
            raise InvalidOperationError(f"cannot read {size} bytes")
        return target.read_memory(self.current_pid, address, size)

    def read_memory_partial(self, address: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``address``: fewer where memory ends (disassembly)."""
        target = self.require_session()
        try:
            return target.read_memory(self.current_pid, address, size)
        except MemoryAccessError as error:
            readable = error.address - address
            return target.read_memory(self.current_pid, address, readable) if readable > 0 else b""

    def read_memory_into(self, address: int, buffer: bytearray | memoryview) -> int:
        target = self.require_session()
        target.read_memory_into(self.current_pid, address, buffer)
        return len(buffer)

    def write_memory(self, address: int, data: bytes) -> None:
        target = self.require_capability(Capability.WRITE, "write memory")
        target.write_memory(self.current_pid, address, bytes(data))
        self.generation += 1
        self.dispatch.notify(EventMask.CHANGE_DEBUGGEE_STATE, "change_debuggee_state", CDS.DATA, address)

    def get_register(self, name: str, tid: int | None) -> int:
        target = self.require_stopped()
        return target.get_register(self.current_tid if tid is None else tid, name)

    def set_register(self, name: str, value: int, tid: int | None) -> None:
        target = self.require_capability(Capability.WRITE, "change registers")
        target.set_register(self.current_tid if tid is None else tid, name, value)
        self.generation += 1
        self.dispatch.notify(EventMask.CHANGE_DEBUGGEE_STATE, "change_debuggee_state", CDS.REGISTERS, 0)

    def set_current_thread(self, tid: int) -> None:
        self.require_session()
        thread = self._thread_of(tid)
        self.set_current(thread.pid, tid)
        self.dispatch.notify(EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.CURRENT_THREAD, tid)

    def get_process_options(self) -> int:
        self.require_session()
        return self.processes[self.current_pid].options

    def set_process_options(self, options: int) -> None:
        """dbgeng's SetProcessOptions for the current process: ONLY_THIS_PROCESS
        decides whether the children it forks from now on are debugged."""
        target = self.require_capability(Capability.RUN, "change how it follows child processes")
        self.processes[self.current_pid].options = int(options)
        target.follow_forks = not options & ProcessOptions.ONLY_THIS_PROCESS

    def thread_details(self, tid: int) -> ThreadDetails | None:
        """Name, priority and affinity of ``tid`` (None when the target cannot tell)."""
        self.require_session()
        self._thread_of(tid)
        info = self.session_target.thread_info(tid)
        if info is None:
            return None  # a core keeps no per-thread names or scheduling
        return ThreadDetails(info.name, info.priority, info.policy, info.affinity)

    def _thread_of(self, tid: int | None) -> Thread:
        """Thread ``tid`` of the session (None: the current one)."""
        tid = self.current_tid if tid is None else tid
        thread = self.threads.get(tid)
        if thread is None:
            raise InvalidOperationError(f"thread {tid} is not being debugged")
        return thread

    def _process_of(self, pid: int | None) -> int:
        self.require_session()
        pid = self.current_pid if pid is None else pid
        if pid not in self.processes:
            raise InvalidOperationError(f"process {pid} is not being debugged")
        return pid

    def memory_map(self, pid: int | None) -> list[MemoryRegion]:
        pid = self._process_of(pid)
        return self.session_target.memory_map(pid)

    def open_files(self, pid: int | None) -> list[tuple[int, str]]:
        pid = self._process_of(pid)
        return self.session_target.open_files(pid)

    def auxv(self, pid: int | None) -> dict[int, int]:
        pid = self._process_of(pid)
        try:
            return self.session_target.auxv(pid)
        except OSError as error:
            raise TargetAccessError(f"cannot read the auxiliary vector of process {pid}: {error}") from error

    def signal_state(self, tid: int | None) -> SignalState:
        self.require_session()
        thread = self._thread_of(tid)
        return self.session_target.signal_state(thread.pid, thread.tid)

    # ----------------------------------------------------------- event filters

    def event_filter(self, signo: int) -> EventFilter:
        return self.filters.get(signo, EventFilter.IGNORE)

    def set_event_filter(self, signo: int, mode: EventFilter) -> None:
        """Set what ``signo`` does when no callback asks for more (dbgeng's
        SetSpecificFilterParameters / cdb's sx*), for every client of the session."""
        self.check_usable()
        if not 0 < signo < 65:
            raise InvalidOperationError(f"no such signal: {signo}")
        self.filters[signo] = EventFilter(mode)
        self.dispatch.notify(EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.EVENT_FILTERS, signo)

    # ---------------------------------------------------------------- execute

    def execute(self, client: DebugClient, text: str) -> None:
        """Run a command line for ``client`` (dbgeng's Execute): on the engine thread,
        its output marked as that client's."""
        self.check_usable()
        processor = self.processor
        if processor is None:
            factory = processor_module.default_processor
            if factory is None:
                raise InvalidOperationError("this engine has no command processor")
            processor = self.processor = factory()
        client.last_active = time.time()
        if self.shared:
            # the others see who typed what (DESIGN section 4)
            self.dispatch.output(
                OutputMask.NORMAL, f"{client.identity}: {text}\n", OutputOrigin("client", client), client
            )
        with self.dispatch.output_from(client):
            processor.execute(client, text)

    @property
    def last_event(self) -> LastEvent | None:
        if self.recorded_event is None and self.last_breakpoint_hit is not None:
            # built on demand: a breakpoint hit is the hot path
            pid, tid, bp_id = self.last_breakpoint_hit
            self.recorded_event = LastEvent(
                "breakpoint", pid, tid, f"Hit breakpoint {bp_id}", breakpoint_id=bp_id
            )
        return self.recorded_event

    def load_extension(self, spec: Any, client: DebugClient) -> Extension:
        self.check_usable()
        name, obj = load_object(spec)
        extension = Extension(name, obj)
        initialize = getattr(obj, "debug_extension_initialize", None)
        if callable(initialize):
            initialize(client)
        self.dispatch.extensions.append(extension)
        self.dispatch.notify(EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.EXTENSIONS, 0)
        if self.session.active:
            extension.notify(int(Notify.SESSION_ACTIVE), 0)
            if self.target is not None and not self.target.running and self.status is Status.BREAK:
                extension.notify(int(Notify.SESSION_ACCESSIBLE), 0)
        return extension

    def unload_extension(self, extension: Extension) -> None:
        self.check_usable()
        if extension not in self.dispatch.extensions:
            raise InvalidOperationError(f"extension {extension.name} is not loaded")
        self.dispatch.extensions.remove(extension)
        uninitialize = getattr(extension.obj, "debug_extension_uninitialize", None)
        if callable(uninitialize):
            uninitialize()
        self.dispatch.notify(EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.EXTENSIONS, 0)
