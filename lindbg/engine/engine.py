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

from lindbg.arch.x86_64 import GENERAL_REGISTERS, WatchKind
from lindbg.arch.x86_64_displaced import call_instruction_length
from lindbg.constants import (
    CDS,
    CES,
    CSS,
    CodeLevel,
    EventMask,
    Notify,
    OutputMask,
    ProcessOptions,
    SessionStatus,
    SourceOptions,
    Status,
)
from lindbg.engine import status as status_rules
from lindbg.engine.extensions import Extension, load_object
from lindbg.engine.handles import (
    Breakpoint,
    ExceptionInfo,
    Frame,
    LastEvent,
    Module,
    Process,
    Thread,
    ThreadDetails,
)
from lindbg.engine.inbox import Inbox
from lindbg.engine.linestep import LineSpan, LineStep, StepAction
from lindbg.engine.modules import ProcessModules
from lindbg.engine.session_table import Session, SessionInput, SessionState
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
    EventKind,
    MemoryRegion,
    ResumeMode,
    SignalState,
    Target,
    TargetEvent,
)

if TYPE_CHECKING:
    from lindbg.engine.client import DebugClient
    from lindbg.engine.frame_inspector import FrameInspector

_T = TypeVar("_T")

#: Signals that break in by default (cdb's default event filters, Linux names).
DEFAULT_BREAK_SIGNALS = frozenset({4, 5, 6, 7, 8, 11})  # SIGILL SIGTRAP SIGABRT SIGBUS SIGFPE SIGSEGV

_GO_STATUSES = frozenset({Status.GO, Status.GO_HANDLED, Status.GO_NOT_HANDLED, Status.IGNORE_EVENT})
_STEP_STATUSES = frozenset({Status.STEP_INTO, Status.STEP_OVER, Status.STEP_BRANCH})
_WATCH_KINDS = {
    "e": WatchKind.EXECUTE,
    "w": WatchKind.WRITE,
    "rw": WatchKind.READ_WRITE,
    "r": WatchKind.READ_WRITE,
}

_EVENT_BITS = (
    EventMask.BREAKPOINT,
    EventMask.EXCEPTION,
    EventMask.CREATE_THREAD,
    EventMask.EXIT_THREAD,
    EventMask.CREATE_PROCESS,
    EventMask.EXIT_PROCESS,
    EventMask.LOAD_MODULE,
    EventMask.UNLOAD_MODULE,
    EventMask.SYSTEM_ERROR,
    EventMask.SESSION_STATUS,
    EventMask.CHANGE_DEBUGGEE_STATE,
    EventMask.CHANGE_ENGINE_STATE,
    EventMask.CHANGE_SYMBOL_STATE,
)


class _StepOverMark:
    """The engine's own breakpoint at a call's return address (STEP_OVER)."""

    __slots__ = ("address", "enabled", "pid", "rsp", "tid")

    def __init__(self, pid: int, tid: int, address: int, rsp: int) -> None:
        self.pid = pid
        self.tid = tid
        self.address = address
        self.rsp = rsp
        self.enabled = True


#: The longest near call a range step may have entered (prefixes, REX, ff /2 with SIB
#: and a 32-bit displacement).
_LONGEST_CALL = 15

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


def _is_symbolic(expression: str) -> bool:
    """Could ``expression`` name something in a module that is not loaded yet?"""
    return "!" in expression or _SOURCE_LINE.match(expression) is not None


class _AddressSpace:
    """The stack walker's view of one process: memory words and module CFI."""

    def __init__(self, engine: Engine, pid: int) -> None:
        assert engine.target is not None
        self._read = engine.target.memory_reader(pid)
        self._engine = engine
        self._modules = engine._modules_of(pid)

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


class _LoaderMark:
    """The engine's own breakpoint where the loader can be watched: the program's
    entry point (``entry``: the DT_NEEDED libraries are mapped) or ``r_brk``
    (``rendezvous``: every dlopen/dlclose)."""

    __slots__ = ("address", "enabled", "kind", "pid")

    def __init__(self, pid: int, address: int, kind: str) -> None:
        self.pid = pid
        self.address = address
        self.kind = kind
        self.enabled = True


class Engine:
    """Everything one family of clients shares. Reached only through ``DebugClient``."""

    def __init__(self) -> None:
        self.thread_ident = threading.get_ident()
        self.session = Session()
        self.clients: list[DebugClient] = []
        #: (client, callbacks object) for each event bit, in client creation order.
        self._listeners: dict[int, list[tuple[DebugClient, Any]]] = {int(bit): [] for bit in _EVENT_BITS}
        self.target: Target | None = None
        self.status = Status.NO_DEBUGGEE
        self.processes: dict[int, Process] = {}
        self.threads: dict[int, Thread] = {}
        self.breakpoints: dict[int, Breakpoint] = {}
        self._next_breakpoint_id = 0
        self.extensions: list[Extension] = []
        self.current_pid = 0
        self.current_tid = 0
        self._last_event: LastEvent | None = None
        self._last_breakpoint: tuple[int, int, int] | None = None
        #: Stop at process exit like cdb's final breakpoint (the console sets it).
        self.break_on_exit = False
        self.break_signals: set[int] = set(DEFAULT_BREAK_SIGNALS)
        #: Signals that break when passing them would kill the process (second chance).
        self.second_chance_signals: set[int] = set(DEFAULT_BREAK_SIGNALS)
        #: Signals the debugger takes for itself: never reported, never delivered
        #: (the console's SIGINT, which it turns into a break-in).
        self.swallowed_signals: set[int] = set()
        #: (tid, signal, first_chance, address) of the exception the target is stopped on.
        self._held_signal: tuple[int, int, bool, int] | None = None
        self._step_over: _StepOverMark | None = None
        self._modules: dict[int, ProcessModules] = {}
        self.symbols = SymbolIndex(self._process_reader)
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
        self._generation = 0
        self._inspector: tuple[tuple[int, int], FrameInspector] | None = None
        self._loader_marks: dict[int, list[_LoaderMark]] = {}
        #: The thread a step in progress steps (events of others may intervene).
        self._step_tid = 0
        #: Steps still to take before a step (``t N``/``p N``) breaks in.
        self._steps_left = 0
        #: The source-line step in progress (SOURCE code level), if any.
        self._line_step: LineStep | None = None
        #: (tid, pc, count): a `t` stopped at the first instruction of ``count`` inlined
        #: calls and presents their call site (gdb's and WinDbg's virtual inline
        #: frames); the next `t` enters one without running. Any resume clears it.
        self._hidden_inline: tuple[int, int, int] | None = None
        self._virtual_step = False
        self._unusable_reason: str | None = None
        self._inboxes: dict[int, Inbox] = {}
        self.inbox = self.inbox_for(self.thread_ident)
        self.inbox.on_post = self._wake_target
        self._interrupt = False
        #: The [low, high) of the range step in progress (a source line), if any.
        self._range_step: tuple[int, int] | None = None

    # --------------------------------------------------------- thread plumbing

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
        if self._unusable_reason is not None:
            raise EngineUnusableError(self._unusable_reason)

    def call(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the engine thread and return its result (any thread)."""
        self.check_usable()
        if threading.get_ident() == self.thread_ident:
            return fn()
        caller = self.inbox_for(threading.get_ident())

        def run_and_wake() -> Any:
            try:
                return fn()
            finally:
                caller.wake()

        reply = self.inbox.post(run_and_wake)
        assert reply is not None
        while not reply.done:
            caller.run_pending()
            caller.wait(0.05)
            self.check_usable()
        return reply.result()  # type: ignore[no-any-return]

    # ---------------------------------------------------------------- clients

    def add_client(self, client: DebugClient) -> None:
        self.clients.append(client)

    def remove_client(self, client: DebugClient) -> None:
        if client in self.clients:
            self.clients.remove(client)
        self.refresh_listeners()

    def refresh_listeners(self) -> None:
        """Recompute who hears what (on registration, never per event)."""
        table: dict[int, list[tuple[DebugClient, Any]]] = {int(bit): [] for bit in _EVENT_BITS}
        for client in self.clients:
            callbacks = client.event_callbacks
            if callbacks is None or not client.enabled:
                continue
            mask = int(client.interest_mask)
            for bit in _EVENT_BITS:
                if mask & bit:
                    table[int(bit)].append((client, callbacks))
        self._listeners = table

    def _invoke(self, client: DebugClient, fn: Callable[..., Any], *args: Any) -> Any:
        """Call a callback on its client's thread and return what it returned."""
        if client.owner == self.thread_ident:
            try:
                return fn(*args)
            except Exception as error:  # a broken callback must not break the session
                self._callback_failed(fn, error)
                return None
        inbox = self.inbox_for(client.owner)

        def run() -> Any:
            try:
                return fn(*args)
            except Exception as error:
                self._callback_failed(fn, error)
                return None
            finally:
                self.inbox.wake()

        reply = inbox.post(run)
        assert reply is not None
        while not reply.done:
            self.inbox.run_pending()
            self.inbox.wait(0.05)
            if self._unusable_reason is not None:
                return None
        return reply.result()

    def _callback_failed(self, fn: Callable[..., Any], error: Exception) -> None:
        name = getattr(fn, "__qualname__", repr(fn))
        self.output(OutputMask.ERROR, f"callback {name} raised {type(error).__name__}: {error}\n")

    def _event(self, bit: int, method: str, *args: Any) -> Status:
        """Ask every interested client; return the combined status."""
        result = Status.NO_CHANGE
        for client, callbacks in self._listeners[bit]:
            result = status_rules.stronger(result, self._invoke(client, getattr(callbacks, method), *args))
        return result

    def _notify(self, bit: int, method: str, *args: Any) -> None:
        for client, callbacks in self._listeners[bit]:
            self._invoke(client, getattr(callbacks, method), *args)

    def _notify_extensions(self, what: Notify) -> None:
        for extension in list(self.extensions):
            try:
                extension.notify(int(what), 0)
            except Exception as error:
                self.output(OutputMask.ERROR, f"extension {extension.name} notify raised {error}\n")

    def output(self, mask: int, text: str) -> None:
        """Send ``text`` to every client's output callbacks (the engine never prints)."""
        for client in self.clients:
            out = client.output_callbacks
            if out is not None and client.enabled:
                if client.owner == self.thread_ident:
                    with contextlib.suppress(Exception):
                        out.output(mask, text)
                else:
                    self.inbox_for(client.owner).post(_bind_output(out, mask, text), want_reply=False)

    # ----------------------------------------------------- announcements (§3)

    def _announce_session_start(self) -> None:
        self._notify(EventMask.SESSION_STATUS, "session_status", SessionStatus.ACTIVE)
        self._notify_extensions(Notify.SESSION_ACTIVE)
        self._notify(EventMask.CHANGE_DEBUGGEE_STATE, "change_debuggee_state", CDS.ALL, 0)

    def _announce_session_end(self, reason: SessionStatus) -> None:
        self._notify(
            EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.EXECUTION_STATUS, Status.NO_DEBUGGEE
        )
        self._notify(EventMask.SESSION_STATUS, "session_status", reason)
        self._notify_extensions(Notify.SESSION_INACTIVE)

    def _announce_break(self) -> None:
        self.status = Status.BREAK
        self._line_step = None
        self._step_tid = 0
        self._notify(EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.EXECUTION_STATUS, Status.BREAK)
        self._notify_extensions(Notify.SESSION_ACCESSIBLE)

    def _announce_resume(self, status: Status) -> None:
        self.status = status
        self._notify(EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.EXECUTION_STATUS, status)
        self._notify_extensions(Notify.SESSION_INACCESSIBLE)

    # -------------------------------------------------------- session control

    def _target_for_new_process(self, capability: Capability, what: str, where: Target | None) -> Target:
        """The target a launch or attach goes to: ``where`` if given, else this
        machine's live target, made on first use; refused while a target that cannot
        take processes (a dump) is open. A session has one target."""
        if where is not None and self.target is not None and where is not self.target:
            raise InvalidOperationError(f"a session has one target: end it before {what} elsewhere")
        if self.target is None:
            if where is None:
                from lindbg.targets.live import LiveTarget  # ptrace: loaded when a process starts

                where = LiveTarget()
            self.target = where
        if capability not in self.target.capabilities:
            raise InvalidOperationError(
                f"the target is a {self.target.kind}: end the session (.kill, .detach or end_session)"
                f" before {what}"
            )
        return self.target

    @property
    def _session_target(self) -> Target:
        """The target of the active session (event paths run only in one)."""
        assert self.target is not None
        return self.target

    def _require_session(self) -> Target:
        self.check_usable()
        if not self.session.active or self.target is None:
            raise NoDebuggeeError("no debuggee: start or attach to a process first")
        return self.target

    def _require_capability(self, capability: Capability, what: str) -> Target:
        """The session's target if it can do ``what``, else its one-line refusal."""
        target = self._require_session()
        if capability not in target.capabilities:
            raise target.refusal(what)
        return target

    def _require_stopped(self) -> Target:
        target = self._require_session()
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
        target = self._target_for_new_process(Capability.LAUNCH, "starting a process", where)
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
        target = self._target_for_new_process(Capability.ATTACH, "attaching to a process", where)
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
        self.output(OutputMask.NORMAL, f"Loading Dump File [{path}]\n")
        kind = (
            "User Mini Dump File with Full Memory: Only application data is available"
            if target.has_full_memory()
            else "User Mini Dump File: Only registers, stack and portions of memory are available"
        )
        self.output(OutputMask.NORMAL, f"{kind}\n\n")
        for warning in target.warnings:
            self.output(OutputMask.WARNING, f"WARNING: {warning}\n")
        pid = target.pid
        process = self._register_process(pid, 0)
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
            self._last_event = LastEvent("exception", pid, self.current_tid, description, signal=signo)
        if self.session.apply(SessionInput.TARGET_GAINED) is SessionStatus.ACTIVE:
            self._announce_session_start()
        self._event(EventMask.CREATE_PROCESS, "create_process", process)
        self._track_modules(pid, attached=True)
        if signo:
            info = ExceptionInfo(signo, address, False, pid, self.current_tid)
            self._event(EventMask.EXCEPTION, "exception", info)
        self._announce_break()
        return process

    def write_dump_file(
        self, path: str, full: bool, overwrite: bool, progress: Callable[[int, int], None] | None
    ) -> None:
        """Write an ELF core of the current process, stopped as it is now; the
        process carries on afterwards exactly as before (nothing is changed)."""
        from lindbg.formats.corewriter import write_core

        target = self._require_capability(Capability.CORE_IMAGE, "write a dump of it (it is one)")
        if target.running:
            raise InvalidOperationError("the target is running; break in before writing a dump")
        held = self._held_signal
        image, read_into = target.core_image(
            self.current_pid,
            full=full,
            current_tid=self.current_tid,
            siginfo_tid=held[0] if held is not None else None,
        )
        write_core(image, path, read_into, overwrite=overwrite, progress=progress)

    def _gained_process(self, pid: int, options: int, how: str) -> Process:
        process = self._register_process(pid, options)
        process.origin = "attach" if how == "attach" else "create"
        assert self.target is not None
        self.current_pid = pid
        self.current_tid = self.target.thread_ids(pid)[0]
        self._last_event = LastEvent(
            how, pid, self.current_tid, "Break instruction exception - code 80000003"
        )
        if self.session.apply(SessionInput.TARGET_GAINED) is SessionStatus.ACTIVE:
            self._announce_session_start()
        decided = self._event(EventMask.CREATE_PROCESS, "create_process", process)
        decided = status_rules.stronger(decided, self._track_modules(pid, attached=how == "attach"))
        if decided is Status.NO_CHANGE or decided is Status.BREAK:
            self._announce_break()
        else:
            self.status = decided  # stopped; the next wait_for_event resumes it
        return process

    # ---------------------------------------------------------------- modules

    def _track_modules(self, pid: int, *, attached: bool) -> Status:
        """Learn the modules of a new process image and watch its loader."""
        target = self.target
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
            self.output(OutputMask.WARNING, f"cannot list the modules of process {pid}: {error}\n")
            return Status.NO_CHANGE
        self._modules[pid] = tracker
        if attached:
            more, _ = tracker.refresh()
            loaded += more
            if Capability.BREAKPOINTS in target.capabilities:  # a dump's loader never runs again
                self._watch_rendezvous(pid, tracker)
        elif tracker.entry_point:
            self._plant_loader_mark(_LoaderMark(pid, tracker.entry_point, "entry"))
        return self._announce_modules(loaded, [])

    def _announce_modules(self, loaded: list[Module], unloaded: list[Module]) -> Status:
        decided = Status.NO_CHANGE
        for module in unloaded:
            decided = status_rules.stronger(
                decided, self._event(EventMask.UNLOAD_MODULE, "unload_module", module)
            )
            self._notify(EventMask.CHANGE_SYMBOL_STATE, "change_symbol_state", CSS.UNLOADS, module.base)
        for module in loaded:
            decided = status_rules.stronger(
                decided, self._event(EventMask.LOAD_MODULE, "load_module", module)
            )
            self._notify(EventMask.CHANGE_SYMBOL_STATE, "change_symbol_state", CSS.LOADS, module.base)
        for module in unloaded:
            self.symbols.forget_module(module)
            self._defer_breakpoints_in(module)
        if loaded:
            self._resolve_deferred(loaded[0].pid)
        return decided

    def _watch_rendezvous(self, pid: int, tracker: ProcessModules) -> None:
        address = tracker.rendezvous_break_address()
        marks = self._loader_marks.get(pid, [])
        if address and not any(m.kind == "rendezvous" for m in marks):
            self._plant_loader_mark(_LoaderMark(pid, address, "rendezvous"))

    def _plant_loader_mark(self, mark: _LoaderMark) -> None:
        try:
            self._session_target.claim_site(mark.pid, mark.address, mark)
        except LindbgError as error:
            self.output(OutputMask.WARNING, f"cannot watch the loader of process {mark.pid}: {error}\n")
            return
        self._loader_marks.setdefault(mark.pid, []).append(mark)

    def _remove_loader_mark(self, mark: _LoaderMark) -> None:
        marks = self._loader_marks.get(mark.pid, [])
        if mark in marks:
            marks.remove(mark)
        if self.target is not None:
            self.target.release_site(mark.pid, mark.address, mark)

    def _on_loader_mark(self, mark: _LoaderMark, pid: int) -> Status:
        """The loader reached a point where its module list may have changed."""
        tracker = self._modules.get(pid)
        if tracker is None:
            return Status.NO_CHANGE
        try:
            loaded, unloaded = tracker.refresh()
        except OSError as error:
            self.output(OutputMask.WARNING, f"cannot read the loader's list of process {pid}: {error}\n")
            return Status.NO_CHANGE
        if mark.kind == "entry" and mark.pid == pid:
            self._remove_loader_mark(mark)
            self._watch_rendezvous(pid, tracker)
        return self._announce_modules(loaded, unloaded)

    def _inherit_modules(self, parent_pid: int, child_pid: int) -> None:
        """A fork child has its parent's mappings, and its copy of the loader marks."""
        parent = self._modules.get(parent_pid)
        target = self.target
        if parent is None or target is None or child_pid not in target.process_ids():
            return
        self._modules[child_pid] = parent.copy_for(child_pid, target.memory_reader(child_pid))

    def modules(self, pid: int | None = None) -> list[Module]:
        self._require_session()
        tracker = self._modules.get(self.current_pid if pid is None else pid)
        found = list(tracker.modules) if tracker is not None else []
        for module in found:
            module.symbol_state = self.symbols.state_of(module)
        return found

    def module_at(self, address: int, pid: int | None = None) -> Module | None:
        tracker = self._modules.get(self.current_pid if pid is None else pid)
        return tracker.at(address) if tracker is not None else None

    def _register_process(self, pid: int, options: int) -> Process:
        assert self.target is not None
        process = Process(pid, options, self.target.executable(pid))
        self.processes[pid] = process
        for tid in self.target.thread_ids(pid):
            self._register_thread(process, tid)
        return process

    def _register_thread(self, process: Process, tid: int) -> Thread:
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
                self.target.detach_all()
            finally:
                self._finish_session(what)
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
            self._finish_session(what)

    def _prepare_detach(self) -> None:
        """Stop the target and hand a held signal back to its thread."""
        target = self._session_target
        if target.running:
            target.detach_all()  # stops everything first
            return
        held = self._held_signal
        if held is not None:
            tid, signo = held[0], held[1]
            target.set_pending_signal(tid, signo)
            self._held_signal = None

    def _finish_session(self, what: SessionInput) -> None:
        reason = self.session.apply(what)
        self._inspector = None
        self._generation += 1
        for bp in self.breakpoints.values():
            bp.is_valid = False
            bp.placement = None
        self.breakpoints.clear()
        for process in self.processes.values():
            process.is_valid = False
        for thread in self.threads.values():
            thread.is_valid = False
        self.processes.clear()
        self.threads.clear()
        for tracker in self._modules.values():
            tracker.forget()
        self._modules.clear()
        self._loader_marks.clear()
        self.symbols.close()
        self.target = None
        self._held_signal = None
        self._step_over = None
        self._interrupt = False
        self.status = Status.NO_DEBUGGEE
        if reason is not None:
            self._announce_session_end(reason)

    def end_reentrant(self) -> None:
        """end_session(REENTRANT): no lock, any thread, best effort."""
        if self._unusable_reason is not None:
            return
        self._unusable_reason = (
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

    # --------------------------------------------------------------- running

    def set_execution_status(self, status: Status, count: int = 1) -> None:
        target = self._require_capability(Capability.RUN, "run or step it")
        if count < 1:
            raise InvalidOperationError(f"a step count must be at least 1, not {count}")
        if status is Status.BREAK:
            self.set_interrupt()
            return
        if status not in _GO_STATUSES and status not in _STEP_STATUSES:
            raise InvalidOperationError(f"cannot set the execution status to {status.name}")
        if target.running:
            raise InvalidOperationError("the target is already running")
        if status in _STEP_STATUSES:
            self._step_tid = self.current_tid
            self._steps_left = count
            self._line_step = None
            if status is not Status.STEP_BRANCH and self.code_level is CodeLevel.SOURCE:
                hidden = self.hidden_inline_frames(self.current_tid)
                if status is Status.STEP_INTO and hidden and count == 1:
                    # enter one inlined call at this pc: nothing runs
                    self._hidden_inline = (
                        self.current_tid,
                        target.get_register(self.current_tid, "rip"),
                        hidden - 1,
                    )
                    self._virtual_step = True
                    self._generation += 1
                    self.scope_frame = 0
                else:
                    self._line_step = self._begin_line_step(self.current_tid, over=status is Status.STEP_OVER)
        if self.status is Status.BREAK:
            self._announce_resume(status)
        else:
            self.status = status

    def set_interrupt(self) -> None:
        """Any thread: break into a running target within milliseconds."""
        self.check_usable()
        target = self.target
        if target is None or not target.running:
            return
        self._interrupt = True
        self._wake_target()

    def wait_for_event(self, timeout: float | None) -> bool:
        target = self._require_session()
        deadline = None if timeout is None else time.monotonic() + timeout
        if not target.running:
            if self.status is Status.BREAK:
                return True
            if self._resume_from_break():
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
            if self._interrupt:
                self._interrupt = False
                target.request_interrupt()
            elif deadline is not None and time.monotonic() >= deadline:
                return False
            if not target.running and self.status is Status.BREAK:
                return True  # a request from another thread broke in or ended
            try:
                event = target.wait_event(deadline)
            except (OSError, TargetAccessError) as error:
                self._fail(error)
                return True
            if event is None:
                continue
            try:
                if self._dispatch(event):
                    return True
            except (OSError, TargetAccessError) as error:
                self._fail(error)
                return True

    def _fail(self, error: BaseException) -> None:
        """The session cannot go on: report it, clean up, end with FAILURE."""
        self._notify(EventMask.SYSTEM_ERROR, "system_error", getattr(error, "errno", 0) or 0, 1)
        self.output(OutputMask.ERROR, f"session failed: {error}\n")
        target = self.target
        if target is not None:
            try:
                target.detach_all()
            except Exception:
                with contextlib.suppress(Exception):
                    target.terminate_all()
        self._finish_session(SessionInput.FAILED)

    def _resume(self) -> None:
        """Let the target run as ``self.status`` says (GO or a step)."""
        target = self._session_target
        held = self._held_signal
        if held is not None:
            self._held_signal = None
            if self.status is not Status.GO_HANDLED:
                target.set_pending_signal(held[0], held[1])
        self.scope_frame = 0
        self._generation += 1
        self._hidden_inline = None
        self._range_step = None
        status = self.status
        tid = self._step_tid or self.current_tid
        single = status is Status.STEP_INTO or status is Status.STEP_BRANCH
        plan = self._line_step
        if plan is not None and status in _STEP_STATUSES and self._step_over is None:
            single = True
            pc = target.get_register(tid, "rip")
            code = target.read_memory(self.threads[tid].pid, pc, 16)
            if call_instruction_length(code) is not None:
                if plan.over:
                    single = not self._plant_step_over(tid)
                else:
                    plan.entered_call = True
            elif plan.prologue_end is None and plan.low <= pc < plan.high:
                # the rest of the line in one request (RSP's vCont;r); a call on the
                # way is recognised where the step comes out (_entered_call)
                self._range_step = (plan.low, plan.high)
                target.step_range(tid, plan.low, plan.high)
                return
        elif status is Status.STEP_OVER and self._step_over is None:
            single = not self._plant_step_over(tid)  # not on a call: one instruction
        target.resume(ResumeMode.STEP if single else ResumeMode.CONTINUE, tid, 0)

    def _step_finished(self, pid: int, tid: int) -> bool:
        """One step (or step over a call) completed: take the next or break in."""
        self._clear_step_over()
        plan = self._line_step
        stepped_range, self._range_step = self._range_step, None
        if plan is not None and tid == plan.tid and self.status in _STEP_STATUSES:
            pc = self._session_target.get_register(tid, "rip")
            if stepped_range is not None and not stepped_range[0] <= pc < stepped_range[1]:
                plan.entered_call = self._entered_call(tid, stepped_range)
            setup = self._frame_setup(tid, pc) if plan.entered_call else 0
            action = plan.decide(pc, self._line_span(pc), self._inline_depth(pc), setup)
            if action is StepAction.STEP:
                self._resume()
                return False
            if action is StepAction.RUN_TO_RETURN and not plan.over and self._plant_stub_target_mark(tid, pc):
                plan.entered_call = True  # decided again at the function the stub jumps to
                self._session_target.resume(ResumeMode.CONTINUE, tid, 0)
                return False
            if action is StepAction.RUN_TO_RETURN and self._plant_return_mark(tid):
                self._session_target.resume(ResumeMode.CONTINUE, tid, 0)
                return False
            self._line_step = None
            if not plan.over:
                self._hide_entered_inlines(tid, pc, plan.start_depth)
            if self._steps_left > 1:
                # `p N` in source mode: N lines, each its own plan
                self._line_step = self._begin_line_step(tid, over=plan.over)
        self._steps_left -= 1
        target = self._session_target
        if self._steps_left > 0:
            owners = target.breakpoint_under(tid)
            if owners and any(o.__class__ is Breakpoint and o.enabled for o in owners):
                # a step of `t N` landed on a breakpoint: it is hit, as in cdb and gdb
                self._steps_left = 0
                return self._on_breakpoint(TargetEvent(EventKind.BREAKPOINT, pid, tid, sites=owners))
        if self._steps_left > 0 and self.status in _STEP_STATUSES:
            if self.status is not Status.STEP_OVER and self._steps_left > 1 and self._line_step is None:
                # the hot part of `t N`: plain steps in the target, no event objects
                self._steps_left -= target.step_many(tid, self._steps_left - 1, self._has_interrupt)
            self._resume()
            return False
        self._steps_left = 0
        self._last_event = LastEvent("step", pid, tid, "Single step exception - code 80000004")
        self._announce_break()
        return True

    def _entered_call(self, tid: int, stepped: tuple[int, int]) -> bool:
        """Did a range step leave its range by a call (``[rsp]`` a return address
        just past a call instruction of the range)?"""
        target = self._session_target
        pid = self.threads[tid].pid
        try:
            rsp = target.get_register(tid, "rsp")
            ret = int.from_bytes(target.read_memory(pid, rsp, 8), "little")
            if not stepped[0] < ret <= stepped[1]:
                return False
            before = target.read_memory(pid, ret - _LONGEST_CALL, _LONGEST_CALL)
        except MemoryAccessError:
            return False
        return any(
            call_instruction_length(before[_LONGEST_CALL - length :]) == length
            for length in range(2, _LONGEST_CALL + 1)
        )

    def _has_interrupt(self) -> bool:
        target = self.target
        requested = target is not None and target.interrupt_requested
        return self._interrupt or requested or self._unusable_reason is not None

    def _running_status(self) -> Status:
        """What an event nobody cared about resumes with: the step in progress, or GO."""
        return self.status if self.status in _STEP_STATUSES else Status.GO

    def _resume_from_break(self) -> bool:
        """Resume a stopped target; True if that instead produced a new break."""
        if self._virtual_step:
            self._virtual_step = False
            self._steps_left = 0
            tid = self.current_tid
            self._last_event = LastEvent(
                "step", self.current_pid, tid, "Single step exception - code 80000004"
            )
            self._announce_break()
            return True
        held = self._held_signal
        if held is not None and held[2] and self.status is not Status.GO_HANDLED:
            tid, signo, _, address = held
            thread = self.threads.get(tid)
            pid = thread.pid if thread is not None else self.current_pid
            if self._would_kill(pid, signo):
                self._held_signal = None
                return self._on_signal(pid, tid, signo, address, first_chance=False)
        self._resume()
        return False

    def _plant_step_over(self, tid: int) -> bool:
        """If ``tid`` sits on a call, put a mark at its return address; True if so."""
        target = self._session_target
        thread = self.threads[tid]
        rip = target.get_register(tid, "rip")
        code = target.read_memory(thread.pid, rip, 16)
        length = call_instruction_length(code)
        if length is None:
            return False
        mark = _StepOverMark(thread.pid, tid, rip + length, target.get_register(tid, "rsp"))
        target.claim_site(thread.pid, mark.address, mark)
        self._step_over = mark
        return True

    def hidden_inline_frames(self, tid: int) -> int:
        """How many innermost inlined calls thread ``tid`` is presented outside of."""
        hidden = self._hidden_inline
        if hidden is None or hidden[0] != tid or self.target is None:
            return 0
        if self.target.get_register(tid, "rip") != hidden[1]:
            return 0
        return hidden[2]

    def _hide_entered_inlines(self, tid: int, pc: int, start_depth: int) -> None:
        """A `t` that stops on the first instruction of inlined calls it entered stops
        on their call site first, as gdb and WinDbg do."""
        calls = self.symbols.inlined_at(self._modules_of(), pc, self._memory_reader())
        entered = 0
        for call in calls[: max(0, len(calls) - start_depth)]:
            if call.low != pc:
                break
            entered += 1
        if entered:
            self._hidden_inline = (tid, pc, entered)

    def _frame_setup(self, tid: int, pc: int) -> int:
        """The length of ``[endbr64] push rbp; mov rsp, rbp`` at a function's entry ``pc``;
        0 when the function sets up no frame pointer there."""
        code = self._session_target.read_memory(self.threads[tid].pid, pc, 8)
        start = 4 if code[:4] == b"\xf3\x0f\x1e\xfa" else 0
        if code[start : start + 1] == b"\x55" and code[start + 1 : start + 4] in (
            b"\x48\x89\xe5",
            b"\x48\x8b\xec",
        ):
            return start + 4
        return 0

    def _plant_stub_target_mark(self, tid: int, pc: int) -> bool:
        """`t` into a PLT stub (``[endbr64;] [bnd] jmp *GOT(%rip)``): if the GOT slot
        holds a function with line information, a mark there, so the step goes on in
        the library's code as gdb's does (a slot the loader has not filled yet still
        points into the PLT: that call is stepped over)."""
        target = self._session_target
        thread = self.threads[tid]
        code = target.read_memory(thread.pid, pc, 16)
        start = 4 if code[:4] == b"\xf3\x0f\x1e\xfa" else 0
        if code[start : start + 1] == b"\xf2":
            start += 1
        if code[start : start + 2] != b"\xff\x25":
            return False
        next_ip = pc + start + 6
        slot = next_ip + int.from_bytes(code[start + 2 : start + 6], "little", signed=True)
        try:
            destination = int.from_bytes(target.read_memory(thread.pid, slot, 8), "little")
        except MemoryAccessError:
            return False
        if self._line_span(destination) is None:
            # not bound yet (lazy binding: the slot leads to the loader's resolver):
            # the function the slot's relocation names, wherever it is loaded
            destination = self._plt_destination(slot) or 0
            if not destination or self._line_span(destination) is None:
                return False
        mark = _StepOverMark(thread.pid, tid, destination, target.get_register(tid, "rsp"))
        target.claim_site(thread.pid, destination, mark)
        self._step_over = mark
        return True

    def _plt_destination(self, slot: int) -> int | None:
        """The address of the function GOT ``slot`` is for, looked up by name in the
        other modules (the binding the loader is about to make)."""
        modules = self._modules_of()
        owner = next((m for m in modules if m.base <= slot < m.end), None)
        image = self.symbols.of(owner, self._memory_reader()).image if owner is not None else None
        if owner is None or image is None:
            return None
        name = image.plt_slots.get(slot - owner.bias)
        if name is None:
            return None
        others = [m for m in modules if m is not owner]
        try:
            found = self.symbols.resolve_symbol(others, None, name)
        except LindbgError:
            return None
        return found[0] if found else None

    def _plant_return_mark(self, tid: int) -> bool:
        """At a function's first instruction: a mark at its return address (``[rsp]``)."""
        target = self._session_target
        thread = self.threads[tid]
        rsp = target.get_register(tid, "rsp")
        try:
            address = int.from_bytes(target.read_memory(thread.pid, rsp, 8), "little")
        except MemoryAccessError:
            return False
        mark = _StepOverMark(thread.pid, tid, address, rsp + 8)
        target.claim_site(thread.pid, address, mark)
        self._step_over = mark
        return True

    def _line_span(self, pc: int) -> LineSpan | None:
        """The line holding runtime ``pc`` and its span (runtime addresses)."""
        found = self.symbols.line_span(self._modules_of(), pc, self._memory_reader())
        return LineSpan(*found) if found is not None else None

    def _inline_depth(self, pc: int) -> int:
        return len(self.symbols.inlined_at(self._modules_of(), pc, self._memory_reader()))

    def _begin_line_step(self, tid: int, *, over: bool) -> LineStep | None:
        """A source-line step from where ``tid`` is, or None (no line information
        there: the step is one instruction, as cdb's source mode does)."""
        pc = self._session_target.get_register(tid, "rip")
        span = self._line_span(pc)
        if span is None:
            return None
        return LineStep(tid, over, span, self._inline_depth(pc))

    def _clear_step_over(self) -> None:
        mark = self._step_over
        if mark is None or self.target is None:
            return
        self._step_over = None
        self.target.release_site(mark.pid, mark.address, mark)

    # ----------------------------------------------------------------- events

    def _dispatch(self, event: TargetEvent) -> bool:
        """Handle one target event; True when ``wait_for_event`` should return."""
        kind = event.kind
        if kind is EventKind.BREAKPOINT:
            return self._on_breakpoint(event)
        if kind is EventKind.SIGNAL:
            return self._on_signal(event.pid, event.tid, event.signal, event.address, first_chance=True)
        if kind is EventKind.STEP:
            self._set_current(event.pid, event.tid)
            return self._step_finished(event.pid, event.tid)
        if kind is EventKind.INTERRUPT:
            self._set_current(event.pid, event.tid)
            self._clear_step_over()
            self._last_event = LastEvent(
                "break", event.pid, event.tid, "Break instruction exception - code 80000003"
            )
            return self._after(Status.BREAK)
        if kind is EventKind.CREATE_THREAD:
            process = self.processes.get(event.pid)
            if process is None:
                return self._after(Status.GO)
            thread = self._register_thread(process, event.new_id)
            decided = self._event(EventMask.CREATE_THREAD, "create_thread", thread)
            return self._after(
                decided, default=Status.GO, pid=event.pid, tid=event.new_id, what="create_thread"
            )
        if kind is EventKind.EXIT_THREAD:
            gone = self.threads.get(event.tid)
            if gone is not None:
                del self.threads[event.tid]
                gone.is_valid = False
                owner = self.processes.get(gone.pid)
                if owner is not None and gone in owner.threads:
                    owner.threads.remove(gone)
            decided = self._event(EventMask.EXIT_THREAD, "exit_thread", event.code)
            return self._after(decided, default=Status.GO, pid=event.pid, tid=event.tid, what="exit_thread")
        if kind is EventKind.CREATE_PROCESS:
            parent = self.processes.get(event.code)
            child = self._register_process(event.pid, parent.options if parent is not None else 0)
            child.parent_pid = event.code
            self._inherit_modules(event.code, event.pid)
            decided = self._event(EventMask.CREATE_PROCESS, "create_process", child)
            return self._after(
                decided, default=Status.GO, pid=event.pid, tid=event.tid, what="create_process"
            )
        if kind is EventKind.EXEC:
            return self._on_exec(event)
        if kind is EventKind.EXIT_PROCESS:
            process = self.processes.get(event.pid)
            if process is not None:
                process.exit_code = event.code
            decided = self._event(EventMask.EXIT_PROCESS, "exit_process", event.code)
            default = Status.BREAK if self.break_on_exit else Status.GO
            return self._after(decided, default=default, pid=event.pid, tid=event.tid, what="exit_process")
        assert kind is EventKind.PROCESS_GONE
        return self._on_process_gone(event)

    def _set_current(self, pid: int, tid: int) -> None:
        self.current_pid = pid
        self.current_tid = tid

    def _after(
        self, decided: Status, default: Status = Status.BREAK, pid: int = 0, tid: int = 0, what: str = ""
    ) -> bool:
        """Act on the combined status of an event; True if the engine broke in."""
        if decided is Status.NO_CHANGE:
            decided = self._running_status() if default is Status.GO else default
        if decided is Status.BREAK:
            if what:
                self._set_current(pid, tid)
                self._last_event = LastEvent(what, pid, tid, what.replace("_", " "))
            self._clear_step_over()
            self._announce_break()
            return True
        if decided in _STEP_STATUSES:
            self.status = decided
        else:
            self.status = Status.GO if decided is Status.IGNORE_EVENT else decided
        if self.target is not None and self.target.process_ids():
            self._resume()
        return False

    def _on_breakpoint(self, event: TargetEvent) -> bool:
        owners = event.sites
        self.current_pid = event.pid
        self.current_tid = event.tid
        decided = Status.NO_CHANGE
        user_hit = None
        listeners = self._listeners[EventMask.BREAKPOINT]
        # releasing a mark edits the site's owner list: count them before that
        alone = len(owners) == 1
        for owner in list(owners):
            if owner.__class__ is _LoaderMark:
                decided = status_rules.stronger(decided, self._on_loader_mark(owner, event.pid))
                continue
            if owner.__class__ is _StepOverMark:
                if self._step_over_done(owner, event.tid):
                    self._clear_step_over()
                    if user_hit is None and alone:
                        return self._step_finished(event.pid, event.tid)
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
                decided = status_rules.stronger(decided, self._invoke(client, callbacks.breakpoint, owner))
            if owner.one_shot:
                self.remove_breakpoint(owner)
        if user_hit is None:
            if decided is Status.NO_CHANGE:
                decided = self._running_status()
        else:
            self._last_event = None
            self._last_breakpoint = (event.pid, event.tid, user_hit.id)
            if decided is Status.NO_CHANGE:
                decided = Status.BREAK
        if decided is Status.BREAK:
            self._clear_step_over()
            self._announce_break()
            return True
        self.status = Status.GO if decided is Status.IGNORE_EVENT else decided
        self._resume()
        return False

    def _step_over_done(self, mark: _StepOverMark, tid: int) -> bool:
        if tid != mark.tid or self.target is None:
            return False
        return self.target.get_register(tid, "rsp") >= mark.rsp

    def _would_kill(self, pid: int, signo: int) -> bool:
        return self._session_target.delivery_kills(pid, signo)

    def _on_signal(self, pid: int, tid: int, signo: int, address: int, *, first_chance: bool) -> bool:
        if signo in self.swallowed_signals:
            self.status = self._running_status()
            self._resume()
            return False
        self.current_pid = pid
        self.current_tid = tid
        info = ExceptionInfo(signo, address, first_chance, pid, tid)
        chance = "first chance" if first_chance else "!!! second chance !!!"
        self._last_event = LastEvent(
            "exception", pid, tid, f"{signal_description(signo)} - code {signo:08x} ({chance})", signal=signo
        )
        decided = explicit = self._event(EventMask.EXCEPTION, "exception", info)
        if decided is Status.NO_CHANGE:
            breaks = self.break_signals if first_chance else self.second_chance_signals
            decided = Status.BREAK if signo in breaks else Status.GO_NOT_HANDLED
        if decided is Status.BREAK or (decided in _STEP_STATUSES and decided is not Status.GO_HANDLED):
            self._held_signal = (tid, signo, first_chance, address)
            if decided is Status.BREAK:
                self._clear_step_over()
                self._announce_break()
                return True
        if decided is Status.GO_HANDLED:
            self._held_signal = None
        elif decided in _GO_STATUSES:
            if first_chance and self._would_kill(pid, signo):
                return self._on_signal(pid, tid, signo, address, first_chance=False)
            self._held_signal = (tid, signo, first_chance, address)
        if explicit is Status.NO_CHANGE:
            self.status = self._running_status()
        else:
            self.status = Status.GO if decided is Status.IGNORE_EVENT else decided
        self._resume()
        return False

    def _on_exec(self, event: TargetEvent) -> bool:
        process = self.processes.get(event.pid)
        if process is None:
            return self._after(Status.GO)
        for bp in [bp for bp in self.breakpoints.values() if bp.pid == event.pid]:
            bp.placement = None  # its int3 went with the old image
            if bp.expression and _is_symbolic(bp.expression):
                bp.deferred = True  # resolved again in the new image, as gdb does
            else:
                self._forget_breakpoint(bp)
        for thread in process.threads[1:]:
            thread.is_valid = False
            self.threads.pop(thread.tid, None)
        process.threads = process.threads[:1]
        process.executable = self._session_target.executable(event.pid)
        old = self._modules.pop(event.pid, None)
        self._loader_marks.pop(event.pid, None)  # their int3 bytes went with the old image
        decided = self._announce_modules([], old.forget() if old is not None else [])
        decided = status_rules.stronger(
            decided, self._event(EventMask.CREATE_PROCESS, "create_process", process)
        )
        decided = status_rules.stronger(decided, self._track_modules(event.pid, attached=False))
        return self._after(decided, default=Status.GO, pid=event.pid, tid=event.tid, what="exec")

    def _on_process_gone(self, event: TargetEvent) -> bool:
        process = self.processes.pop(event.pid, None)
        if process is not None:
            already_reported = process.exit_code is not None
            process.exit_code = event.code
            process.is_valid = False
            for thread in process.threads:
                thread.is_valid = False
                self.threads.pop(thread.tid, None)
            if not already_reported:
                self._event(EventMask.EXIT_PROCESS, "exit_process", event.code)
        for bp in [bp for bp in self.breakpoints.values() if bp.pid == event.pid]:
            bp.placement = None
            self._forget_breakpoint(bp)
        tracker = self._modules.pop(event.pid, None)
        if tracker is not None:
            tracker.forget()
        self._loader_marks.pop(event.pid, None)
        if not self.processes:
            self._finish_session(SessionInput.TARGETS_EXITED)
            return True
        if self.current_pid == event.pid:
            first = next(iter(self.processes.values()))
            self.current_pid = first.pid
            self.current_tid = first.threads[0].tid if first.threads else first.pid
        self.status = Status.GO
        self._resume()
        return False

    # ------------------------------------------------------------ breakpoints

    def add_breakpoint(
        self, location: int | str, access: str | None, size: int, one_shot: bool
    ) -> Breakpoint:
        target = self._require_capability(Capability.BREAKPOINTS, "set breakpoints")
        if access is not None and access not in _WATCH_KINDS:
            raise InvalidOperationError(f"breakpoint access must be 'e', 'w', 'rw' or 'r', not '{access}'")
        if access is not None and target.running:
            raise InvalidOperationError("hardware breakpoints need a stopped target; break in first")
        if access is not None and Capability.HARDWARE_BREAKPOINTS not in target.capabilities:
            raise target.refusal("set hardware breakpoints")
        pid = self.current_pid
        expression = location.strip() if isinstance(location, str) else ""
        address = self._try_resolve(location)
        bp = Breakpoint(
            self, self._next_breakpoint_id, pid, address or 0, access, size if access else 1, one_shot
        )
        bp.expression = expression
        if address is None:
            if not _is_symbolic(expression):
                raise InvalidOperationError(f"Couldn't resolve error at '{expression}'")
            bp.deferred = True  # resolved when a module that has it loads
        else:
            self._place(bp)
        self._next_breakpoint_id += 1
        self.breakpoints[bp.id] = bp
        self._notify(EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.BREAKPOINTS, bp.id)
        return bp

    def _try_resolve(self, location: int | str) -> int | None:
        """The address ``location`` names now, or None if no loaded module has it."""
        if isinstance(location, int):
            return location
        try:
            return self.resolve(location)
        except InvalidOperationError:
            return None

    def _defer_breakpoints_in(self, module: Module) -> None:
        """A module went away: its breakpoints wait for it to come back (WinDbg's `bu`)."""
        for bp in list(self.breakpoints.values()):
            if bp.pid != module.pid or bp.deferred or not module.base <= bp.address < module.end:
                continue
            self._unplace(bp)
            if bp.expression and _is_symbolic(bp.expression):
                bp.deferred = True
            else:
                self._forget_breakpoint(bp)

    def _resolve_deferred(self, pid: int) -> None:
        """Modules changed in ``pid``: place the deferred breakpoints that now resolve."""
        for bp in list(self.breakpoints.values()):
            if not bp.deferred or bp.pid != pid or not bp.enabled:
                continue
            address = self._try_resolve(bp.expression)
            if address is None:
                continue
            bp.address = address
            bp.deferred = False
            try:
                self._place(bp)
            except LindbgError as error:
                bp.deferred = True
                self.output(OutputMask.WARNING, f"breakpoint {bp.id} at {address:#x}: {error}\n")
                continue
            self._notify(EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.BREAKPOINTS, bp.id)

    # ------------------------------------------------------------------ symbols

    def _modules_of(self, pid: int | None = None) -> list[Module]:
        tracker = self._modules.get(self.current_pid if pid is None else pid)
        return tracker.modules if tracker is not None else []

    def _process_reader(self, pid: int) -> Callable[[int, int], bytes] | None:
        target = self.target
        if target is None or pid not in target.process_ids():
            return None
        return target.memory_reader(pid)

    def _memory_reader(self) -> Callable[[int, int], bytes]:
        target = self._require_session()
        return target.memory_reader(self.current_pid)

    def resolve(self, expression: str) -> int:
        """An address from ``mod!sym[+off]``, ``sym[+off]``, ``file.c:LINE`` or a number.

        Raises:
            InvalidOperationError: cdb's "Couldn't resolve error at '...'" naming the part.
        """
        self._require_session()
        text = expression.strip().replace("`", "")
        if not text:
            raise InvalidOperationError("Couldn't resolve error at '<EOL>'")
        line_match = _SOURCE_LINE.match(text)
        if line_match is not None:
            found = self.symbols.resolve_line(self._modules_of(), line_match[1], int(line_match[2]))
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
        modules = self._modules_of()
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
        modules = self._modules_of()
        read = self._memory_reader()
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
        self._require_session()
        module_part, bang, name = pattern.strip().rpartition("!")
        modules = self._modules_of()
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
        self._notify(EventMask.CHANGE_SYMBOL_STATE, "change_symbol_state", CSS.PATHS, 0)

    def set_source_path(self, path: str) -> None:
        """Directories searched for source files (';'-separated, as ``.srcpath``)."""
        self.check_usable()
        self.source_path = [p.strip() for p in path.split(";") if p.strip()]
        self.source_files.forget()
        self._notify(EventMask.CHANGE_SYMBOL_STATE, "change_symbol_state", CSS.PATHS, 0)

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
            self._notify(
                EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.CODE_LEVEL, int(self.code_level)
            )

    def symbol_at(self, address: int) -> str | None:
        """cdb's ``module!symbol+0xoff`` for ``address`` (None outside every module)."""
        self._require_session()
        located = self.symbols.locate(self._modules_of(), address, self._memory_reader())
        return str(located) if located is not None else None

    def source_line(self, address: int) -> SourceLine | None:
        self._require_session()
        return self.symbols.source_line(self._modules_of(), address, self._memory_reader())

    def current_source_line(self) -> SourceLine | None:
        """The line the current thread's stop presents: the pc's row, or the call
        site of inlined calls a `t` stopped in front of (a virtual inline frame)."""
        target = self._require_stopped()
        rip = target.get_register(self.current_tid, "rip")
        row = self.source_line(rip)
        if not self.hidden_inline_frames(self.current_tid):
            return row
        frame = self.stack(None, 1)[0]
        if frame.file is None or frame.line is None:
            return row
        return SourceLine(frame.file, frame.line, row.address if row is not None else rip, True)

    def _raw_stack(self, tid: int, max_frames: int = 256) -> list[RawFrame]:
        """The unwound frames of stopped thread ``tid`` (no inline frames, no names)."""
        target = self._require_stopped()
        thread = self.threads[tid]
        regs = target.general_registers(tid)
        registers = {name: int(getattr(regs, name)) for name in GENERAL_REGISTERS}
        return walk_stack(registers, _AddressSpace(self, thread.pid), max_frames)

    def frame_inspector(self, tid: int | None = None) -> FrameInspector:
        """Source-level views of thread ``tid``'s frames (variables, expressions)."""
        from lindbg.engine.frame_inspector import FrameInspector  # DWARF variables: loaded on first use

        target = self._require_stopped()
        tid = self.current_tid if tid is None else tid
        cached = self._inspector
        if cached is not None and cached[0] == (tid, self._generation):
            return cached[1]
        thread = self.threads.get(tid)
        if thread is None:
            raise InvalidOperationError(f"thread {tid} is not being debugged")
        process_read = target.memory_reader(thread.pid)

        def read(address: int, size: int) -> bytes:
            # Values read lazily, maybe on a client's thread: through the engine thread
            data = self.call(lambda: process_read(address, size))
            if len(data) < size:
                bad = address + len(data)
                raise MemoryAccessError(f"memory access error at {bad:#x}", bad)
            return data

        modules = self._modules_of(thread.pid)

        def symbolize(address: int) -> str | None:
            # gdb's <name+off> after a pointer into a module; mangled C++ names are
            # left out (no demangler: gdb would print them demangled)
            located = self.call(lambda: self.symbols.locate(modules, address, process_read))
            if located is None or located.symbol is None or located.symbol.name.startswith("_Z"):
                return None
            name = located.symbol.name
            return name if located.offset == 0 else f"{name}+{located.offset}"

        inspector = FrameInspector(
            self._raw_stack(tid),
            modules,
            self.symbols,
            read,
            lambda name: target.get_register(tid, name),
            symbolize,
            self.hidden_inline_frames(tid),
        )
        # kept until anything could change the frames: a resume, a register write
        self._inspector = ((tid, self._generation), inspector)
        return inspector

    def set_scope_frame(self, number: int) -> None:
        """Make frame ``number`` (as ``k`` numbers them) the local context (``.frame N``)."""
        self.frame_inspector().frame(number)  # raises for a frame that does not exist
        self.scope_frame = number
        self._notify(EventMask.CHANGE_SYMBOL_STATE, "change_symbol_state", CSS.SCOPE, 0)

    def stack(self, tid: int | None, max_frames: int | None) -> list[Frame]:
        target = self._require_stopped()
        tid = self.current_tid if tid is None else tid
        thread = self.threads.get(tid)
        if thread is None:
            raise InvalidOperationError(f"thread {tid} is not being debugged")
        raw = self._raw_stack(tid, max_frames or 256)
        modules = self._modules_of(thread.pid)
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
        hidden = self.hidden_inline_frames(tid)
        if hidden:
            frames = [_renumbered(frame, index) for index, frame in enumerate(frames[hidden:])]
        return frames

    def _place(self, bp: Breakpoint) -> None:
        target = self._session_target
        if bp.access is None:
            bp.placement = target.claim_site(bp.pid, bp.address, bp)
        else:
            slot = target.set_hardware(bp.pid, bp.address, _WATCH_KINDS[bp.access], bp.size)
            slot.owners.append(bp)
            bp.placement = slot

    def _unplace(self, bp: Breakpoint) -> None:
        placement = bp.placement
        bp.placement = None
        target = self.target
        if placement is None or target is None:
            return
        if bp.access is None:
            target.release_site(bp.pid, bp.address, bp)
            return
        if bp in placement.owners:
            placement.owners.remove(bp)
        if not placement.owners:
            target.clear_hardware(bp.pid, placement)

    def set_breakpoint_enabled(self, bp: Breakpoint, enabled: bool) -> None:
        self.check_usable()
        if not bp.is_valid:
            raise InvalidOperationError(f"breakpoint {bp.id} no longer exists")
        if enabled == bp._enabled:
            return
        if enabled:
            self._place(bp)
        else:
            self._unplace(bp)
        bp._enabled = enabled
        self._notify(EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.BREAKPOINTS, bp.id)

    def remove_breakpoint(self, bp: Breakpoint) -> None:
        self.check_usable()
        if self.breakpoints.get(bp.id) is not bp:
            raise InvalidOperationError(f"breakpoint {bp.id} does not exist")
        self._unplace(bp)
        self._forget_breakpoint(bp)
        self._notify(EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.BREAKPOINTS, bp.id)

    def _forget_breakpoint(self, bp: Breakpoint) -> None:
        self.breakpoints.pop(bp.id, None)
        bp.is_valid = False
        bp._enabled = False

    # ------------------------------------------------------ memory, registers

    def read_memory(self, address: int, size: int) -> bytes:
        target = self._require_session()
        if size < 0:
            raise InvalidOperationError(f"cannot read {size} bytes")
        return target.read_memory(self.current_pid, address, size)

    def read_memory_partial(self, address: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``address``: fewer where memory ends (disassembly)."""
        target = self._require_session()
        try:
            return target.read_memory(self.current_pid, address, size)
        except MemoryAccessError as error:
            readable = error.address - address
            return target.read_memory(self.current_pid, address, readable) if readable > 0 else b""

    def read_memory_into(self, address: int, buffer: bytearray | memoryview) -> int:
        target = self._require_session()
        target.read_memory_into(self.current_pid, address, buffer)
        return len(buffer)

    def write_memory(self, address: int, data: bytes) -> None:
        target = self._require_capability(Capability.WRITE, "write memory")
        target.write_memory(self.current_pid, address, bytes(data))
        self._generation += 1
        self._notify(EventMask.CHANGE_DEBUGGEE_STATE, "change_debuggee_state", CDS.DATA, address)

    def get_register(self, name: str, tid: int | None) -> int:
        target = self._require_stopped()
        return target.get_register(self.current_tid if tid is None else tid, name)

    def set_register(self, name: str, value: int, tid: int | None) -> None:
        target = self._require_capability(Capability.WRITE, "change registers")
        target.set_register(self.current_tid if tid is None else tid, name, value)
        self._generation += 1
        self._notify(EventMask.CHANGE_DEBUGGEE_STATE, "change_debuggee_state", CDS.REGISTERS, 0)

    def set_current_thread(self, tid: int) -> None:
        self._require_session()
        thread = self.threads.get(tid)
        if thread is None:
            raise InvalidOperationError(f"thread {tid} is not being debugged")
        self._set_current(thread.pid, tid)
        self._notify(EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.CURRENT_THREAD, tid)

    def get_process_options(self) -> int:
        self._require_session()
        return self.processes[self.current_pid].options

    def set_process_options(self, options: int) -> None:
        """dbgeng's SetProcessOptions for the current process: ONLY_THIS_PROCESS
        decides whether the children it forks from now on are debugged."""
        target = self._require_capability(Capability.RUN, "change how it follows child processes")
        self.processes[self.current_pid].options = int(options)
        target.follow_forks = not options & ProcessOptions.ONLY_THIS_PROCESS

    def thread_details(self, tid: int) -> ThreadDetails | None:
        """Name, priority and affinity of ``tid`` (None when the target cannot tell)."""
        self._require_session()
        thread = self.threads.get(tid)
        if thread is None:
            raise InvalidOperationError(f"thread {tid} is not being debugged")
        info = self._session_target.thread_info(tid)
        if info is None:
            return None  # a core keeps no per-thread names or scheduling
        return ThreadDetails(info.name, info.priority, info.policy, info.affinity)

    def _process_of(self, pid: int | None) -> int:
        self._require_session()
        pid = self.current_pid if pid is None else pid
        if pid not in self.processes:
            raise InvalidOperationError(f"process {pid} is not being debugged")
        return pid

    def memory_map(self, pid: int | None) -> list[MemoryRegion]:
        pid = self._process_of(pid)
        return self._session_target.memory_map(pid)

    def open_files(self, pid: int | None) -> list[tuple[int, str]]:
        pid = self._process_of(pid)
        return self._session_target.open_files(pid)

    def auxv(self, pid: int | None) -> dict[int, int]:
        pid = self._process_of(pid)
        try:
            return self._session_target.auxv(pid)
        except OSError as error:
            raise TargetAccessError(f"cannot read the auxiliary vector of process {pid}: {error}") from error

    def signal_state(self, tid: int | None) -> SignalState:
        self._require_session()
        tid = self.current_tid if tid is None else tid
        thread = self.threads.get(tid)
        if thread is None:
            raise InvalidOperationError(f"thread {tid} is not being debugged")
        return self._session_target.signal_state(thread.pid, tid)

    @property
    def last_event(self) -> LastEvent | None:
        if self._last_event is None and self._last_breakpoint is not None:
            # built on demand: a breakpoint hit is the hot path
            pid, tid, bp_id = self._last_breakpoint
            self._last_event = LastEvent(
                "breakpoint", pid, tid, f"Hit breakpoint {bp_id}", breakpoint_id=bp_id
            )
        return self._last_event

    # ------------------------------------------------------------- extensions

    def load_extension(self, spec: Any, client: DebugClient) -> Extension:
        self.check_usable()
        name, obj = load_object(spec)
        extension = Extension(name, obj)
        initialize = getattr(obj, "debug_extension_initialize", None)
        if callable(initialize):
            initialize(client)
        self.extensions.append(extension)
        self._notify(EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.EXTENSIONS, 0)
        if self.session.active:
            extension.notify(int(Notify.SESSION_ACTIVE), 0)
            if self.target is not None and not self.target.running and self.status is Status.BREAK:
                extension.notify(int(Notify.SESSION_ACCESSIBLE), 0)
        return extension

    def unload_extension(self, extension: Extension) -> None:
        self.check_usable()
        if extension not in self.extensions:
            raise InvalidOperationError(f"extension {extension.name} is not loaded")
        self.extensions.remove(extension)
        uninitialize = getattr(extension.obj, "debug_extension_uninitialize", None)
        if callable(uninitialize):
            uninitialize()
        self._notify(EventMask.CHANGE_ENGINE_STATE, "change_engine_state", CES.EXTENSIONS, 0)


def _bind_output(out: Any, mask: int, text: str) -> Callable[[], None]:
    """A call of ``out.output(mask, text)`` to run later on the client's thread."""

    def deliver() -> None:
        with contextlib.suppress(Exception):
            out.output(mask, text)

    return deliver
