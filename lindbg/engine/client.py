"""``DebugClient``: the object users hold (dbgeng's IDebugClient family).

A client belongs to the thread that created it: its callbacks run there,
inside that thread's ``wait_for_event`` or ``dispatch_callbacks``. Calls made
from other threads are carried to the engine thread through its inbox.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lindbg.constants import CodeLevel, EndFlags, EventFilter, SourceOptions, Status
from lindbg.engine.callbacks import EventCallbacks, OutputCallbacks
from lindbg.engine.dispatch import OutputOrigin
from lindbg.engine.engine import Engine
from lindbg.engine.extensions import Extension
from lindbg.engine.handles import Breakpoint, Frame, LastEvent, Module, Process, Thread, ThreadDetails
from lindbg.errors import InvalidOperationError, NoDebuggeeError
from lindbg.os.linux.identity import local_name
from lindbg.symbols.disassembly import Instruction
from lindbg.symbols.lines import SourceLine
from lindbg.targets.base import MemoryRegion, SignalState, Target

if TYPE_CHECKING:
    from lindbg.engine.frame_inspector import FrameVariables, SymbolDescription
    from lindbg.engine.processor import CommandProcessor
    from lindbg.remoting.server import ServerEntry
    from lindbg.symbols.types import Type
    from lindbg.symbols.values import Value
    from lindbg.targets.remote.connection import ProcessServerConnection

_StdioSpec = Any  # an int file descriptor, an object with fileno(), or None


def _fd(spec: _StdioSpec) -> int | None:
    """A file descriptor for ``spec``; ``subprocess.DEVNULL`` opens /dev/null."""
    if spec is None:
        return None
    if spec == subprocess.DEVNULL:
        return os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    if isinstance(spec, int):
        return spec
    return int(spec.fileno())


def _target_of(server: Any) -> Target | None:
    """The target a ``server=`` argument names (None: this machine); engine thread
    (a process server connection's target is made over its link on first use)."""
    if server is None or isinstance(server, Target):
        return server
    from lindbg.targets.remote.connection import ProcessServerConnection

    if isinstance(server, ProcessServerConnection):
        return server.target
    raise InvalidOperationError(f"not a process server: {server!r}")


class DebugClient:
    """A client of an engine. ``DebugClient()`` creates a new engine.

    Every method may be called from any thread (the call runs on the engine thread)
    and raises ``EngineUnusableError`` once the engine was ended with
    ``end_session(REENTRANT)``; those that need a session raise ``NoDebuggeeError``
    without one, and those that need the target stopped raise
    ``InvalidOperationError`` while it runs.

    Args:
        engine: internal; use ``create_client()`` to add a client to an engine.
    """

    def __init__(self, _engine: Engine | None = None) -> None:
        self._engine = _engine if _engine is not None else Engine()
        self.owner = threading.get_ident()
        self.event_callbacks: EventCallbacks | None = None
        self.output_callbacks: OutputCallbacks | None = None
        self.interest_mask = 0
        #: False once the client has been disconnected (DISCONNECT).
        self.enabled = True
        #: True while a callback of this client (on its own thread) has not answered
        #: in time: the engine counts its vote as GO and does not wait for it.
        self.unresponsive = False
        #: Who this client is, as the other clients see it: ``HOST\user`` and, for a
        #: debugging server's remote client, how it is connected ("tcp 127.0.0.1:40122").
        self.name = local_name()
        self.transport = ""
        #: When this client last ran a command (time.time()), for ``.clients``.
        self.last_active = time.time()
        self._engine.dispatch.add_client(self)
        self._engine.inbox_for(self.owner)

    @property
    def identity(self) -> str:
        """``HOST\\user``, with ``(TRANSPORT)`` for a remote client: the prefix the
        others see before this client's commands."""
        return f"{self.name} ({self.transport})" if self.transport else self.name

    # ---------------------------------------------------------------- clients

    def create_client(self) -> DebugClient:
        """A new client of the same engine, owned by the calling thread."""
        self._engine.check_usable()
        return DebugClient(self._engine)

    def set_event_callbacks(self, callbacks: EventCallbacks | None) -> None:
        """Register (or with None remove) this client's event callbacks.

        The interest mask is read once here, as dbgeng does.
        """
        engine = self._engine
        engine.check_usable()
        # no engine-thread round trip: the listener table is replaced whole, and
        # an event being dispatched keeps the table it started with
        self.event_callbacks = callbacks
        self.interest_mask = int(callbacks.get_interest_mask()) if callbacks is not None else 0
        engine.dispatch.refresh_listeners()

    def get_event_callbacks(self) -> EventCallbacks | None:
        """The event callbacks registered with ``set_event_callbacks`` (None: none)."""
        return self.event_callbacks

    def set_output_callbacks(self, callbacks: OutputCallbacks | None) -> None:
        """Register (or with None remove) this client's output callbacks."""
        self._engine.check_usable()
        self.output_callbacks = callbacks

    def get_output_callbacks(self) -> OutputCallbacks | None:
        """The output callbacks registered with ``set_output_callbacks`` (None: none)."""
        return self.output_callbacks

    def output(self, mask: int, text: str) -> None:
        """Send ``text`` to every client's output callbacks."""
        engine = self._engine
        engine.call(lambda: engine.dispatch.output(mask, text, OutputOrigin("client", self)))

    # --------------------------------------------------------------- targets

    def create_process(
        self,
        argv_or_cmdline: list[str] | str,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        options: int = 0,
        server: Any = None,
        *,
        stdin: _StdioSpec = None,
        stdout: _StdioSpec = None,
        stderr: _StdioSpec = None,
    ) -> Process:
        """Start a program under the debugger, stopped at its first instruction.

        Args:
            argv_or_cmdline: argv list, or a command line split like a shell would (no shell runs).
            env: the whole environment (None: inherit). cwd: working directory.
            options: ``ProcessOptions`` bits (DETACH_ON_EXIT, ONLY_THIS_PROCESS).
            server: where the process runs: None for this machine, a process server
                (``connect_process_server``'s handle), or a ``Target`` (an embedder's
                own kind of target; the tests' scripted one).
            stdin, stdout, stderr: file descriptors or file objects for the program.
        Raises:
            TargetAccessError: the program could not be started (names it and why).
        """
        stdio = (_fd(stdin), _fd(stdout), _fd(stderr))
        engine = self._engine
        try:
            return engine.call(
                lambda: engine.create_process(argv_or_cmdline, env, cwd, options, stdio, _target_of(server))
            )
        finally:
            for spec, fd in zip((stdin, stdout, stderr), stdio, strict=True):
                if spec == subprocess.DEVNULL and fd is not None:
                    os.close(fd)

    def attach_process(self, pid: int, server: Any = None, options: int = 0) -> Process:
        """Attach to every thread of ``pid``; returns with the target stopped.
        ``server``: as for ``create_process``; a process that a process server
        already holds stopped (its last client went) is taken over as it is."""
        engine = self._engine
        return engine.call(lambda: engine.attach_process(int(pid), options, _target_of(server)))

    def open_dump_file(self, path: str, image_dirs: Sequence[str] = ()) -> Process:
        """Open an ELF core file as the target (dbgeng's OpenDumpFile + the first
        WaitForEvent): returns with the session active, stopped (BREAK) and
        read-only. ``image_dirs`` are searched, by file name, for mapped files
        that are no longer where the core says they were (cdb's ``-i``).

        Raises:
            DumpFileError: the file is not a readable x86-64 core.
        """
        engine = self._engine
        return engine.call(lambda: engine.open_dump_file(str(path), list(image_dirs)))

    def write_dump_file(
        self,
        path: str,
        full: bool = True,
        *,
        overwrite: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Write an ELF core of the current (stopped) process that gdb reads: every
        thread's registers, the signal it is stopped on, and its memory (every
        readable mapping when ``full``, else what the kernel's default filter
        keeps), with the program's own bytes where breakpoints are. Non-invasive.
        ``progress(done, total)`` hears about the memory written.

        Raises:
            InvalidOperationError: the file exists and not ``overwrite``; the target runs.
        """
        engine = self._engine
        engine.call(lambda: engine.write_dump_file(str(path), full, overwrite, progress))

    def end_session(self, flags: int) -> None:
        """End the session as dbgeng's EndSession does (see ``EndFlags``)."""
        flags = int(flags)
        engine = self._engine
        if flags == EndFlags.REENTRANT:
            engine.end_reentrant()
            return
        if flags == EndFlags.DISCONNECT:
            engine.check_usable()
            raise InvalidOperationError("end_session(DISCONNECT) is for remote clients; this client is local")
        if flags not in (EndFlags.PASSIVE, EndFlags.ACTIVE_TERMINATE, EndFlags.ACTIVE_DETACH):
            raise InvalidOperationError(f"end_session: unknown flags {flags}")
        engine.call(lambda: engine.end_session(flags))

    def processes(self) -> list[Process]:
        """Processes of the session, in the order they were gained."""
        return self._engine.call(lambda: list(self._engine.processes.values()))

    def threads(self, pid: int | None = None) -> list[Thread]:
        """Threads of process ``pid`` (None: every process)."""

        def collect() -> list[Thread]:
            return [t for t in self._engine.threads.values() if pid is None or t.pid == pid]

        return self._engine.call(collect)

    def current_thread(self) -> Thread:
        """The thread of the last event (or the one set with ``set_current_thread``)."""

        def current() -> Thread:
            engine = self._engine
            thread = engine.threads.get(engine.current_tid)
            if thread is None:
                raise NoDebuggeeError("no current thread: there is no debuggee")
            return thread

        return self._engine.call(current)

    def set_current_thread(self, tid: int) -> None:
        """Make thread ``tid`` current (cdb's ``~Ns``): registers, stacks and steps use it.

        Raises:
            InvalidOperationError: ``tid`` is not a thread of the session.
        """
        self._engine.call(lambda: self._engine.set_current_thread(tid))

    def get_process_options(self) -> int:
        """The current process's ``ProcessOptions`` (dbgeng's GetProcessOptions)."""
        return self._engine.call(self._engine.get_process_options)

    def set_process_options(self, options: int) -> None:
        """Replace the current process's ``ProcessOptions``; ONLY_THIS_PROCESS set
        means processes it creates from now on run undebugged (cdb's ``.childdbg 0``)."""
        self._engine.call(lambda: self._engine.set_process_options(options))

    def thread_details(self, tid: int) -> ThreadDetails | None:
        """Name (comm), nice value, scheduling policy and affinity of thread ``tid``."""
        return self._engine.call(lambda: self._engine.thread_details(tid))

    def memory_map(self, pid: int | None = None) -> list[MemoryRegion]:
        """The mappings of the current process (or of ``pid``), by address (``!maps``).

        Raises:
            NoDebuggeeError: there is no session.
            TargetAccessError: the target cannot list them.
        """
        return self._engine.call(lambda: self._engine.memory_map(pid))

    def open_files(self, pid: int | None = None) -> list[tuple[int, str]]:
        """(descriptor, what it refers to) for each open file of the current process
        (or of ``pid``) (``!fds``).

        Raises:
            InvalidOperationError: the target cannot tell (a dump).
            TargetAccessError: the process is gone.
        """
        return self._engine.call(lambda: self._engine.open_files(pid))

    def auxv(self, pid: int | None = None) -> dict[int, int]:
        """The auxiliary vector (AT_* -> value) the kernel gave the current process
        (or ``pid``) (``!auxv``).

        Raises:
            TargetAccessError: the target cannot read it.
        """
        return self._engine.call(lambda: self._engine.auxv(pid))

    def signal_state(self, thread: int | None = None) -> SignalState:
        """Blocked, ignored, caught and pending signals of the current thread (or of
        thread id ``thread``) (``!signals``).

        Raises:
            InvalidOperationError: the target cannot tell (a dump).
        """
        return self._engine.call(lambda: self._engine.signal_state(thread))

    def get_last_event(self) -> LastEvent | None:
        """What the last event was (``.lastevent``)."""
        return self._engine.call(lambda: self._engine.last_event)

    # -------------------------------------------------------------- execution

    def get_execution_status(self) -> Status:
        """BREAK while the target is stopped, GO/STEP_* while it runs (or is about to),
        NO_DEBUGGEE without a session (dbgeng's GetExecutionStatus)."""
        engine = self._engine
        engine.check_usable()
        return engine.status

    def set_execution_status(self, status: int, count: int = 1) -> None:
        """GO, GO_HANDLED, GO_NOT_HANDLED, STEP_INTO, STEP_OVER, or BREAK (= interrupt).

        ``count`` (steps only) takes that many steps before breaking in, as cdb's
        ``t N`` / ``p N`` do; any event that breaks in ends the steps early.
        """
        self._engine.call(lambda: self._engine.set_execution_status(Status(int(status)), count))

    def set_interrupt(self) -> None:
        """Break into the running target; callable from any thread."""
        self._engine.set_interrupt()

    def wait_for_event(self, timeout: float | None = None) -> bool:
        """Run the target until it breaks in or the session ends (True) or ``timeout`` (False)."""
        engine = self._engine
        return engine.call(lambda: engine.wait_for_event(timeout))

    def dispatch_callbacks(self, timeout: float | None = None) -> bool:
        """Run this thread's callbacks (and, on the engine thread, other threads'
        requests) until ``exit_dispatch`` (True) or ``timeout`` (False)."""
        engine = self._engine
        engine.check_usable()
        return engine.inbox_for(threading.get_ident()).dispatch(timeout, engine.check_usable)

    def exit_dispatch(self, client: DebugClient) -> None:
        """Make ``client``'s thread leave ``dispatch_callbacks``."""
        self._engine.check_usable()
        self._engine.inbox_for(client.owner).request_exit()

    # ------------------------------------------------------------ breakpoints

    def add_breakpoint(
        self, location: int | str, *, access: str | None = None, size: int = 1, one_shot: bool = False
    ) -> Breakpoint:
        """Set a breakpoint at ``location``: an address, ``"mod!sym[+off]"``, ``"sym"`` or
        ``"file.c:LINE"``. A ``mod!sym`` or ``file:line`` that no loaded module has yet is
        a deferred breakpoint (``bp.deferred``), placed when such a module loads (WinDbg's ``bu``).

        ``access`` None gives a software breakpoint; "e", "w" or "rw" a hardware
        one in a debug register ("r" is treated as "rw": x86 has no read-only watch).
        """
        engine = self._engine
        return engine.call(lambda: engine.breakpoint_table.add(location, access, size, one_shot))

    def remove_breakpoint(self, bp: Breakpoint) -> None:
        """Remove ``bp`` from the target and the session (``bc``); ``bp.is_valid`` turns False.

        Raises:
            InvalidOperationError: ``bp`` no longer exists.
        """
        self._engine.call(lambda: self._engine.breakpoint_table.remove(bp))

    def breakpoints(self) -> list[Breakpoint]:
        """The session's breakpoints, by id."""
        return self._engine.call(
            lambda: sorted(self._engine.breakpoint_table.by_id.values(), key=lambda b: b.id)
        )

    # ------------------------------------------------------ memory, registers

    def read_memory(self, address: int, size: int) -> bytes:
        """Bytes of the current process as the program sees them (no int3)."""
        return self._engine.call(lambda: self._engine.read_memory(address, size))

    def read_memory_into(self, address: int, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` with memory at ``address`` without an extra copy (dbgeng's
        ReadVirtual into a caller's buffer); returns the number of bytes read.

        Raises:
            MemoryAccessError: some byte of the range is not readable (names the address).
        """
        return self._engine.call(lambda: self._engine.read_memory_into(address, buffer))

    def write_memory(self, address: int, data: bytes) -> None:
        """Write ``data`` at ``address`` of the current process (breakpoints stay in place).

        Raises:
            MemoryAccessError: some byte is not writable (names it).
            InvalidOperationError: the target cannot be written (a dump).
        """
        self._engine.call(lambda: self._engine.write_memory(address, data))

    def get_register(self, name: str, thread: int | None = None) -> int:
        """Register ``name`` of the current thread (or of thread id ``thread``)."""
        return self._engine.call(lambda: self._engine.get_register(name, thread))

    def set_register(self, name: str, value: int, thread: int | None = None) -> None:
        """Set register ``name`` of the current thread (or of thread id ``thread``).

        Raises:
            InvalidOperationError: no such register, the thread runs, or a dump.
        """
        self._engine.call(lambda: self._engine.set_register(name, value, thread))

    # --------------------------------------------------------------- commands

    def execute(self, command_text: str) -> None:
        """Run console commands in cdb's syntax (``;`` separates them) on the engine
        thread, as this client typed them, and return when they have finished; their
        text and errors go to the output callbacks (dbgeng's Execute).

        Raises:
            EngineUnusableError: the engine was ended with REENTRANT.
            InvalidOperationError: the engine has no command processor.
        """
        engine = self._engine
        engine.call(lambda: engine.execute(self, command_text))

    def set_command_processor(self, processor: CommandProcessor) -> None:
        """Replace the command language of this client's engine (all its clients)."""
        engine = self._engine

        def install() -> None:
            engine.processor = processor

        engine.call(install)

    def set_event_filter(self, signo: int, mode: EventFilter) -> None:
        """What signal ``signo`` does when no callback asks for more, for the whole
        session (cdb's ``sxe``/``sxd``/``sxn``/``sxi``; dbgeng's filter options).

        Raises:
            InvalidOperationError: not a signal number.
        """
        engine = self._engine
        engine.call(lambda: engine.set_event_filter(int(signo), EventFilter(mode)))

    def get_event_filter(self, signo: int) -> EventFilter:
        """The event filter of ``signo`` (IGNORE where none was set)."""
        engine = self._engine
        return engine.call(lambda: engine.event_filter(int(signo)))

    def set_signal_break(self, signo: int, breaks: bool, second_chance: bool | None = None) -> None:
        """Whether ``signo`` breaks in when no callback asks for more: at its first
        chance (``breaks``), and when passing it would kill the process
        (``second_chance``, by default the same as ``breaks``): ``set_event_filter``
        with BREAK, SECOND_CHANCE_BREAK or IGNORE."""
        second = breaks if second_chance is None else second_chance
        mode = (
            EventFilter.BREAK if breaks else EventFilter.SECOND_CHANCE_BREAK if second else EventFilter.IGNORE
        )
        self.set_event_filter(signo, mode)

    def signal_breaks(self, signo: int) -> bool:
        """True if ``signo`` breaks in at its first chance."""
        return self.get_event_filter(signo) is EventFilter.BREAK

    def set_signal_swallowed(self, signo: int, swallowed: bool = True) -> None:
        """Make the debugger take ``signo`` for itself: neither reported nor delivered
        (the console does this with SIGINT from its terminal, which breaks in)."""
        engine = self._engine

        def change() -> None:
            if swallowed:
                engine.swallowed_signals.add(int(signo))
            else:
                engine.swallowed_signals.discard(int(signo))

        engine.call(change)

    def set_break_on_process_exit(self, enabled: bool) -> None:
        """Stop when a process is about to exit, like cdb's final breakpoint (the
        console's default; ``-G`` turns it off)."""
        engine = self._engine

        def change() -> None:
            engine.break_on_exit = bool(enabled)

        engine.call(change)

    # -------------------------------------------------------------- servers

    def start_server(self, options: str) -> ServerEntry:
        """Start a debugging server (``.server``): remote clients (``lindbg -remote``,
        ``lindbg.debug_connect``) join this session through it. Returns its entry
        (``.id``, ``.description``, ``.port``, ``.path``). The thread that created the
        engine must wait in ``wait_for_event`` or ``dispatch_callbacks`` for remote
        clients' requests to run.

        Raises:
            TransportError: a malformed option string, an insecure bind, a port in use.
        """
        engine = self._engine

        def start() -> ServerEntry:
            from lindbg.remoting.server import hub_of

            return hub_of(engine).start(options)

        return engine.call(start)

    def start_process_server(self, options: str) -> ServerEntry:
        """Start a process server in this process (what ``lindbgsrv -t OPTIONS`` runs):
        gdb or a smart client debugs this machine's processes through it. It has a
        tracer thread of its own; it is listed in ``.servers`` as a Process Server,
        and ``.endsrv`` (``end_server``) ends it.

        Raises:
            TransportError: a malformed option string, an insecure bind, a port in use.
        """
        from lindbg.procserver.server import ProcessServer

        server = ProcessServer(options)
        server.start()
        engine = self._engine

        def register() -> ServerEntry:
            from lindbg.remoting.server import hub_of

            hub = hub_of(engine)
            hub.process_servers.append(server)
            return hub.add_entry(server.options, "Process Server", server.stop, endpoint=server)

        return engine.call(register)

    def wait_for_process_server_end(self, timeout: float | None = None) -> bool:
        """Wait until the first process server started in this process has ended
        (``monitor exit``, ``.endsrv``); False when ``timeout`` passed first. Once
        one has ended, True at once.

        Raises:
            InvalidOperationError: no process server was started in this process.
        """
        engine = self._engine
        hub = engine.servers
        servers = list(hub.process_servers) if hub is not None else []
        if not servers:
            raise InvalidOperationError("no process server was started in this process")
        return bool(servers[0].wait(timeout))

    def connect_process_server(self, options: str) -> ProcessServerConnection:
        """Connect to a process server (``lindbgsrv``, ``gdbserver --multi``) as a
        smart client: the handle goes to ``create_process``/``attach_process`` as
        ``server=``; the engine, symbols and commands stay here.

        Raises:
            TransportError: bad options, or nobody answers there.
            NegotiationError: the peer is not an extended-remote RSP server.
        """
        from lindbg.targets.remote.connection import ProcessServerConnection

        engine = self._engine

        def connect() -> ProcessServerConnection:
            connection = ProcessServerConnection.connect(options)
            engine.process_server_connections.append(connection)
            return connection

        return engine.call(connect)

    def disconnect_process_server(self, server: ProcessServerConnection) -> None:
        """End this engine's link to a process server; the server runs on (and
        ``lindbgsrv`` keeps its processes stopped for the next client).

        Raises:
            InvalidOperationError: the session debugs through it (end the session first).
        """
        engine = self._engine
        engine.call(lambda: engine.drop_process_server(server, end=False))

    def end_process_server(self, server: ProcessServerConnection) -> None:
        """Ask a process server to exit (``monitor exit``, ``.endpsrv``) and close
        the link. A session debugging through it is terminated first (its programs
        would go with the server)."""
        engine = self._engine
        engine.call(lambda: engine.drop_process_server(server, end=True))

    def get_running_process_system_ids(self, server: ProcessServerConnection | None = None) -> list[int]:
        """Pids of the processes on the server's machine (None: this machine)."""
        return [pid for pid, _ in self.running_processes(server)]

    def running_processes(self, server: ProcessServerConnection | None = None) -> list[tuple[int, str]]:
        """(pid, command line) of each process on the server's machine (None: this
        machine), by pid: what ``.tlist`` shows."""
        engine = self._engine
        return engine.call(lambda: engine.running_processes(server))

    def servers(self) -> list[ServerEntry]:
        """The servers of this engine, by id, as ``.servers`` lists them."""
        engine = self._engine
        return engine.call(lambda: list(engine.servers.servers) if engine.servers is not None else [])

    def end_server(self, server_id: int) -> None:
        """Stop server ``server_id`` accepting clients (``.endsrv``); clients already
        connected through it stay.

        Raises:
            InvalidOperationError: no active server has that id.
        """
        engine = self._engine

        def end() -> None:
            if engine.servers is None:
                raise InvalidOperationError(f"no active server with id {server_id}")
            engine.servers.end(int(server_id))

        engine.call(end)

    def connected_clients(self) -> list[str]:
        """``.clients``: ``HOST\\user, last active <time>`` for each client of the session,
        local ones first."""
        engine = self._engine

        def lines() -> list[str]:
            from lindbg.remoting.lines import local_client_lines

            hub = engine.servers
            local = [c for c in engine.dispatch.clients if hub is None or not hub.is_seat_proxy(c)]
            return local_client_lines(local) if hub is None else hub.client_lines(local)

        return engine.call(lines)

    def shutdown_servers(self, message: str = "the debugging server exited") -> None:
        """Say goodbye to every remote client and close every server (a console
        leaving does this)."""
        engine = self._engine

        def shut() -> None:
            hub = engine.servers
            if hub is not None:
                hub.close(message)

        engine.call(shut)

    # ---------------------------------------------------------------- modules

    def modules(self, pid: int | None = None) -> list[Module]:
        """The modules of the current process (or of ``pid``), in load order:
        the program, the dynamic loader, the vDSO, then the shared libraries."""
        return self._engine.call(lambda: self._engine.loading.modules(pid))

    def resolve(self, expression: str) -> int:
        """The address of ``mod!sym[+off]``, ``sym[+off]``, ``file.c:LINE``, ``mod`` or a number.

        Raises:
            InvalidOperationError: cdb's "Couldn't resolve error at '...'".
        """
        return self._engine.call(lambda: self._engine.resolve(expression))

    def symbol_at(self, address: int) -> str | None:
        """cdb's ``module!symbol+0xoff`` (or ``module+0xoff``) for ``address``; None outside modules."""
        return self._engine.call(lambda: self._engine.symbol_at(address))

    def source_line(self, address: int) -> SourceLine | None:
        """The DWARF line that holds ``address`` (file, line, the row's runtime address)."""
        return self._engine.call(lambda: self._engine.source_line(address))

    def current_source_line(self) -> SourceLine | None:
        """The source line the current stop presents (where ``k`` puts frame 0): the
        pc's line, or the call site of an inlined call a `t` stopped in front of."""
        return self._engine.call(self._engine.current_source_line)

    def stack(self, thread: int | None = None, max_frames: int | None = None) -> list[Frame]:
        """The stack of the current thread (or of thread id ``thread``), innermost first;
        ``str(frame)`` is cdb's ``module!function+0xoff [file @ line]``."""
        return self._engine.call(lambda: self._engine.stack(thread, max_frames))

    def disassemble(self, address: int, count: int) -> list[Instruction]:
        """``count`` instructions from ``address`` of the current process (int3 hidden),
        branch and rip-relative targets named (``insn.target_symbol``)."""
        return self._engine.call(lambda: self._engine.disassemble(address, count))

    def find_symbols(self, pattern: str) -> list[tuple[str, int]]:
        """``(module!name, address)`` matching ``mod!pat*`` (``*`` and ``?``, case-insensitive)."""
        return self._engine.call(lambda: self._engine.find_symbols(pattern))

    def set_symbol_path(self, path: str) -> None:
        """Extra directories for separate debug files, ';'-separated (cdb's ``.sympath``);
        /usr/lib/debug is always searched too."""
        self._engine.call(lambda: self._engine.set_symbol_path(path))

    def get_symbol_path(self) -> str:
        """The extra debug-file directories, ';'-separated (``set_symbol_path``)."""
        return ";".join(self._engine.symbols.search_paths)

    # -------------------------------------------------------------- variables

    def set_scope_frame(self, frame: int) -> None:
        """Make frame ``frame`` of the current thread the local context (``.frame N``)."""
        self._engine.call(lambda: self._engine.set_scope_frame(frame))

    def get_scope_frame(self) -> int:
        """The frame number ``dv``, ``??`` and ``locals()`` look at (``.frame``)."""
        return self._engine.scope_frame

    def frame_variables(self, frame: int | None = None) -> FrameVariables:
        """The function and the parameters then locals of a frame (default: the scope
        frame), each a (kind, Value) pair; what ``dv`` shows."""
        engine = self._engine

        def collect() -> FrameVariables:
            number = engine.scope_frame if frame is None else frame
            return engine.frame_inspector().variables(number)

        return engine.call(collect)

    def frame_registers(self, frame: int) -> dict[str, int]:
        """The registers of frame ``frame`` that the unwinder recovered (rip, rsp and
        the callee-saved ones; every register for frame 0), by name."""
        engine = self._engine
        return engine.call(lambda: engine.frame_inspector().registers(frame))

    def describe_symbols(self, pattern: str) -> list[tuple[str, int, SymbolDescription]]:
        """``find_symbols`` with what DWARF says of each (``x``): a function's
        parameter and return types, a data symbol's type and value."""
        engine = self._engine

        def run() -> list[tuple[str, int, SymbolDescription]]:
            found = engine.find_symbols(pattern)
            inspector = engine.frame_inspector()
            return [
                (name, address, inspector.describe(name.split("!", 1)[-1], address))
                for name, address in found
            ]

        return engine.call(run)

    def arguments(self, frame: int | None = None) -> list[Value]:
        """The parameters of a frame (default: the scope frame) as Values."""
        return [value for kind, value in self.frame_variables(frame).entries if kind == "param"]

    def locals(self, frame: int | None = None) -> list[Value]:
        """The local variables in scope at a frame's pc (innermost block first)."""
        return [value for kind, value in self.frame_variables(frame).entries if kind == "local"]

    def evaluate(self, expression: str, frame: int | None = None) -> Value:
        """A C/C++ expression (``??``'s language) at a frame, as a Value.

        Raises:
            CExprError: a syntax error, an unknown name or type, a bad operation;
                the message is cdb's (``Couldn't resolve error at 'nosuch'``).
        """
        engine = self._engine

        def run() -> Value:
            number = engine.scope_frame if frame is None else frame
            return engine.frame_inspector().evaluate(expression, number)

        return engine.call(run)

    def type(self, name: str) -> Type:
        """A type by name (``pair``, ``struct pair``, ``ns::Box<int>``, ``char *``)."""
        engine = self._engine

        def find() -> Type:
            found = engine.frame_inspector().find_type(name, engine.scope_frame)
            if found is None:
                raise InvalidOperationError(f"Symbol {name} not found.")
            return found

        return engine.call(find)

    # ----------------------------------------------------------------- source

    def set_source_path(self, path: str) -> None:
        """Directories searched for source files, ';'-separated (cdb's ``.srcpath``);
        a file's own DWARF path is always tried first."""
        self._engine.call(lambda: self._engine.set_source_path(path))

    def get_source_path(self) -> str:
        """The source directories, ';'-separated (``set_source_path``)."""
        return ";".join(self._engine.source_path)

    def find_source_file(self, dwarf_path: str) -> str | None:
        """Where the source file DWARF calls ``dwarf_path`` is on disk (None: not found)."""
        return self._engine.call(lambda: self._engine.find_source_file(dwarf_path))

    def source_text(self, dwarf_path: str) -> list[str] | None:
        """The lines of a source file named as DWARF names it (None: not found or unreadable)."""
        return self._engine.call(lambda: self._engine.source_text(dwarf_path))

    def get_source_options(self) -> SourceOptions:
        """cdb's ``l+``/``l-`` bits (``SourceOptions``)."""
        return self._engine.source_options

    def set_source_options(self, options: int) -> None:
        """Replace the source option bits; TRACE_LINES makes ``p``/``t`` step by line."""
        self._engine.call(lambda: self._engine.set_source_options(options))

    def get_code_level(self) -> CodeLevel:
        """SOURCE when steps go by source line, else ASSEMBLY."""
        return self._engine.code_level

    def set_code_level(self, level: int) -> None:
        """SOURCE or ASSEMBLY (dbgeng's SetCodeLevel): sets or clears TRACE_LINES."""
        options = self._engine.source_options
        if level == CodeLevel.SOURCE:
            options |= SourceOptions.TRACE_LINES
        else:
            options &= ~SourceOptions.TRACE_LINES
        self.set_source_options(options)

    # ------------------------------------------------------------- extensions

    def load_extension(self, spec: Any) -> Extension:
        """Load an extension: a path to a .py file, a module name, or an object."""
        return self._engine.call(lambda: self._engine.load_extension(spec, self))

    def unload_extension(self, extension: Extension) -> None:
        """Unload ``extension`` (its ``debug_extension_uninitialize`` runs).

        Raises:
            InvalidOperationError: it is not loaded.
        """
        self._engine.call(lambda: self._engine.unload_extension(extension))

    def extensions(self) -> list[Extension]:
        """The loaded extensions, in load order."""
        return list(self._engine.dispatch.extensions)
