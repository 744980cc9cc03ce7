"""The ``Target`` contract: everything the engine asks of any kind of target.

A target owns one or more processes (live processes under ptrace, a core file,
a process server's processes). It knows nothing of clients or callbacks: it
reports raw ``TargetEvent`` records; the engine turns them into callbacks and
decides how to resume.

What a kind cannot do it says through ``capabilities`` (a core file cannot run
or be written); the engine checks a capability before it asks, so the user gets
one line ("the target is a dump: cannot run or step it") and the engine never
tests a target's class. The base class gives every capability-gated member an
implementation that raises that refusal, so a kind implements only what it has.

Threads. Every member is called on the engine thread, except ``wake`` and
``restore_breakpoint_bytes``, which any thread may call at any time. Memory and
register members need the target stopped (``running`` False); they raise
``InvalidOperationError`` naming the thread otherwise.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lindbg.errors import InvalidOperationError

if TYPE_CHECKING:
    from lindbg.arch.x86_64 import UserRegs, WatchKind
    from lindbg.formats.corewriter import ProcessImage

#: ``read_into(address, view)``: fill ``view`` from ``address`` (raises MemoryAccessError).
ReadInto = Callable[[int, memoryview], None]


class EventKind(enum.Enum):
    """What a ``TargetEvent`` reports."""

    #: A software or hardware breakpoint of the engine was hit.
    BREAKPOINT = enum.auto()
    #: A single step, a range step, or a step-over's internal breakpoint completed.
    STEP = enum.auto()
    #: A signal arrived (an exception in dbgeng terms).
    SIGNAL = enum.auto()
    #: The engine asked the target to break in (``request_interrupt``).
    INTERRUPT = enum.auto()
    CREATE_THREAD = enum.auto()
    EXIT_THREAD = enum.auto()
    #: A followed fork child appeared (its first stop has been seen or is coming).
    CREATE_PROCESS = enum.auto()
    #: A process replaced its image with execve.
    EXEC = enum.auto()
    #: A process is about to exit (it is still stopped and readable).
    EXIT_PROCESS = enum.auto()
    #: A process has gone and was reaped; nothing is left of it.
    PROCESS_GONE = enum.auto()


@dataclass(slots=True)
class TargetEvent:
    """One event of a target. Fields not meaningful for ``kind`` stay 0/None."""

    kind: EventKind
    pid: int
    tid: int
    address: int = 0
    #: SIGNAL: the signal that stopped it; PROCESS_GONE: the one that killed it (0: exited).
    signal: int = 0
    #: EXIT_*: the exit code; CREATE_PROCESS: the parent's pid.
    code: int = 0
    #: CREATE_THREAD: the new thread's id.
    new_id: int = 0
    #: BREAKPOINT: the owners of the site or debug register that was hit.
    sites: list[Any] | tuple[()] = ()
    first_chance: bool = True


class ResumeMode(enum.Enum):
    """How ``Target.resume`` lets the target run."""

    CONTINUE = enum.auto()
    #: Step one instruction of the given thread; the other threads stay stopped.
    STEP = enum.auto()


class Capability(enum.Flag):
    """What a kind of target can do beyond being read."""

    NONE = 0
    #: resume, step, step_range, request_interrupt: the processes run.
    RUN = enum.auto()
    #: write_memory, set_register.
    WRITE = enum.auto()
    #: claim_site / release_site: software breakpoints.
    BREAKPOINTS = enum.auto()
    #: set_hardware / clear_hardware: debug registers.
    HARDWARE_BREAKPOINTS = enum.auto()
    #: launch a program.
    LAUNCH = enum.auto()
    #: attach to a running process.
    ATTACH = enum.auto()
    #: core_image: describe a stopped process for a core file.
    CORE_IMAGE = enum.auto()
    #: open_files: the file descriptors of a process.
    OPEN_FILES = enum.auto()


@dataclass(frozen=True, slots=True)
class MemoryRegion:
    """One mapping of a process's address space (``!maps``)."""

    start: int
    end: int
    #: ``rwxp`` as /proc/PID/maps writes it ('-' where a right is missing).
    permissions: str
    offset: int
    path: str


@dataclass(frozen=True, slots=True)
class SignalState:
    """A thread's signal masks (bit N-1 is signal N): what ``!signals`` shows."""

    blocked: int
    ignored: int
    caught: int
    #: Queued for this thread alone.
    pending: int
    #: Queued for the whole process.
    shared_pending: int

    @classmethod
    def from_status(cls, fields: dict[str, str]) -> SignalState:
        """The masks of a /proc ``status`` file's fields (SigBlk, SigIgn, SigCgt,
        SigPnd, ShdPnd; a missing or bad one is 0)."""

        def mask(key: str) -> int:
            try:
                return int(fields.get(key, "0"), 16)
            except ValueError:
                return 0

        return cls(mask("SigBlk"), mask("SigIgn"), mask("SigCgt"), mask("SigPnd"), mask("ShdPnd"))


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    """What the target knows of a thread beyond its id."""

    name: str
    priority: int
    policy: int
    affinity: int


class Target(abc.ABC):
    """What the engine needs from any kind of target (see the module's docstring)."""

    #: The kind in the user's words: "live", "dump", "remote"; refusals name it.
    kind = "live"
    #: What this kind can do beyond being read.
    capabilities = Capability.NONE
    #: True between resume()/step_range() and the next reported event.
    running = False
    #: Whether processes the debuggee forks are debugged too (ONLY_THIS_PROCESS clear).
    follow_forks = True

    @property
    def lost(self) -> str | None:
        """Why the target can no longer be reached (a process server's link is gone);
        None while it can. The engine ends the session with FAILURE when it is set."""
        return None

    def refusal(self, what: str) -> InvalidOperationError:
        """The one-line error for asking this kind of target to ``what``."""
        return InvalidOperationError(f"the target is a {self.kind}: cannot {what}")

    # --------------------------------------------------------------- structure

    @abc.abstractmethod
    def process_ids(self) -> list[int]:
        """Pids of the processes this target holds, in creation order."""

    @abc.abstractmethod
    def thread_ids(self, pid: int) -> list[int]:
        """Thread ids of process ``pid`` (its leader, or the thread a core names, first).

        Raises:
            InvalidOperationError: ``pid`` is not one of this target's processes.
        """

    @abc.abstractmethod
    def executable(self, pid: int) -> str:
        """The path of the program image of ``pid`` ('' if unknown)."""

    @abc.abstractmethod
    def auxv(self, pid: int) -> dict[int, int]:
        """``pid``'s auxiliary vector (AT_* -> value).

        Raises:
            OSError: the target cannot tell (the process is gone).
        """

    @abc.abstractmethod
    def mapping_path_at(self, pid: int, address: int) -> str:
        """The file mapped at ``address`` in ``pid`` ('' if none)."""

    @abc.abstractmethod
    def memory_map(self, pid: int) -> list[MemoryRegion]:
        """Every mapping of ``pid``, by address.

        Raises:
            TargetAccessError: the target cannot list them (names why).
        """

    def thread_info(self, tid: int) -> ThreadInfo | None:
        """Name, priority, scheduling policy and affinity of ``tid``; None when the
        kind keeps none of it (a core)."""
        return None

    def signal_state(self, pid: int, tid: int) -> SignalState:
        """The signal masks of thread ``tid``.

        Raises:
            InvalidOperationError: this kind cannot tell.
            TargetAccessError: the thread is gone.
        """
        raise self.refusal("tell the signal state of a thread")

    def delivery_kills(self, pid: int, signo: int) -> bool:
        """True if delivering ``signo`` to ``pid`` would end it: the signal's default
        action terminates and the program neither catches nor ignores it."""
        return False

    def image_file(self, pid: int, path: str, build_id: str) -> str:
        """A file on this machine holding the image ``pid`` maps from ``path`` (its
        build-id hex, '' if none), for symbols: ``path`` itself unless the target is
        on another machine."""
        return path

    def open_files(self, pid: int) -> list[tuple[int, str]]:
        """(descriptor, what it refers to) for each open file of ``pid`` (OPEN_FILES).

        Raises:
            InvalidOperationError: this kind cannot tell.
            TargetAccessError: the process is gone.
        """
        raise self.refusal("list open files")

    # ------------------------------------------------------------------ memory

    @abc.abstractmethod
    def memory_reader(self, pid: int) -> Callable[[int, int], bytes]:
        """A fast raw reader of ``pid``'s memory for symbols and unwinding:
        ``read(address, size)`` returns up to ``size`` bytes (fewer where memory ends)."""

    @abc.abstractmethod
    def read_memory(self, pid: int, address: int, size: int) -> bytes:
        """Read memory as the program sees it (breakpoint bytes hidden).

        Raises:
            MemoryAccessError: some byte of the range is not readable (names the first).
        """

    @abc.abstractmethod
    def read_memory_into(self, pid: int, address: int, buffer: bytearray | memoryview) -> None:
        """Fill ``buffer`` from ``address`` (breakpoints hidden), with no extra copy.

        Raises:
            MemoryAccessError: some byte of the range is not readable.
        """

    def write_memory(self, pid: int, address: int, data: bytes) -> None:
        """Write memory (WRITE); breakpoints stay in place over what is written.

        Raises:
            MemoryAccessError: some byte of the range is not writable.
        """
        raise self.refusal("write memory")

    # --------------------------------------------------------------- registers

    @abc.abstractmethod
    def general_registers(self, tid: int) -> UserRegs:
        """The general registers of stopped ``tid`` (a cache: do not keep the object)."""

    @abc.abstractmethod
    def get_register(self, tid: int, name: str) -> int:
        """Register ``name`` (any width, flags, FP, vector) of stopped thread ``tid``.

        Raises:
            InvalidOperationError: no such register, or the thread runs.
            TargetAccessError: the registers cannot be read.
        """

    def set_register(self, tid: int, name: str, value: int) -> None:
        """Set register ``name`` of stopped thread ``tid`` (WRITE)."""
        raise self.refusal("change registers")

    def float_state(self, tid: int) -> bytes | None:
        """The FXSAVE area (512 bytes) of stopped ``tid``; None when the kind has none."""
        return None

    # -------------------------------------------------------------- processes

    def launch(
        self,
        argv: list[str],
        env: dict[str, str] | None,
        cwd: str | None,
        stdio: tuple[int | None, int | None, int | None] = (None, None, None),
    ) -> int:
        """Start ``argv`` stopped at its first instruction; return its pid (LAUNCH).

        Raises:
            TargetAccessError: the program could not be started (names it and why).
        """
        raise self.refusal("start a process")

    def attach(self, pid: int) -> int:
        """Stop every thread of running process ``pid`` and debug it (ATTACH).

        Raises:
            TargetAccessError: no such process, or the system refused (says why).
        """
        raise self.refusal("attach to a process")

    def core_image(
        self, pid: int, *, full: bool, current_tid: int, siginfo_tid: int | None
    ) -> tuple[ProcessImage, ReadInto]:
        """Stopped ``pid`` described for a core file, and a reader of its memory
        with breakpoint bytes hidden (CORE_IMAGE)."""
        raise self.refusal("write a dump of it (it is one)")

    # -------------------------------------------------------------- execution

    def wait_event(self, deadline: float | None) -> TargetEvent | None:
        """Block until the target reports an event, ``wake`` is called, or the
        monotonic clock reaches ``deadline`` (None: no deadline).

        Returns:
            The event, with every thread of the target stopped; or None (woken or
            deadline) with the target as it was.
        Raises:
            TargetAccessError, OSError: the target cannot go on (the engine ends
                the session with FAILURE).
        """
        raise self.refusal("run")

    def wake(self) -> None:
        """Any thread: make a ``wait_event`` in progress, or the next one, return None soon."""
        return None

    def resume(self, mode: ResumeMode, tid: int, signal: int) -> None:
        """Let the target run (RUN); ``signal`` (0: none) is delivered to thread ``tid``.

        STEP runs one instruction of ``tid`` alone and reports STEP."""
        raise self.refusal("run or step it")

    def step_range(self, tid: int, low: int, high: int) -> None:
        """Step ``tid`` alone at least once and on while its pc stays in
        ``[low, high)`` (RSP's ``vCont;r``), stepping over the engine's breakpoints
        in the range; report STEP where it leaves (or the event that stopped it).
        The default takes one step: the engine then asks again."""
        self.resume(ResumeMode.STEP, tid, 0)

    def step_many(self, tid: int, count: int, should_stop: Callable[[], bool]) -> int:
        """Single-step stopped ``tid`` up to ``count`` times reporting nothing; return
        how many plain steps completed (0: this kind has no such fast path, the
        engine steps one request at a time). Anything else the thread reports is
        kept for ``wait_event``."""
        return 0

    def request_interrupt(self) -> None:
        """Stop the running target: the next ``wait_event`` reports INTERRUPT."""
        return None

    @property
    def interrupt_requested(self) -> bool:
        """A break-in is asked for and not yet delivered."""
        return False

    def set_pending_signal(self, tid: int, signo: int) -> None:
        """Deliver ``signo`` to ``tid`` when it next runs or is detached."""
        return None

    # ------------------------------------------------------------ breakpoints

    def claim_site(self, pid: int, address: int, owner: Any) -> Any:
        """Insert (or share) the breakpoint instruction at ``address`` on behalf of
        ``owner`` (BREAKPOINTS); return the site. A hit reports every owner.

        Raises:
            MemoryAccessError: the address is not mapped or not writable.
        """
        raise self.refusal("set breakpoints")

    def release_site(self, pid: int, address: int, owner: Any) -> None:
        """``owner`` no longer wants the site at ``address``; the last one out removes it."""
        return None

    def breakpoint_under(self, tid: int) -> list[Any] | None:
        """If stopped ``tid`` sits on a site it has not executed yet (a step landed
        there), count it as hit: return the owners and make the next resume step
        over it. None when it is not on a site."""
        return None

    def set_hardware(self, pid: int, address: int, kind: WatchKind, size: int) -> Any:
        """Program a debug register of every thread of ``pid``, those created later
        included (HARDWARE_BREAKPOINTS); return the slot (its ``owners`` list is
        the engine's).

        Raises:
            InvalidOperationError: every debug register is in use.
        """
        raise self.refusal("set hardware breakpoints")

    def clear_hardware(self, pid: int, slot: Any) -> None:
        """Free the debug register holding ``slot``."""
        return None

    def restore_breakpoint_bytes(self) -> None:
        """Any thread, no lock, best effort: put the program's own bytes back
        wherever a breakpoint is (``end_session(REENTRANT)``)."""
        return None

    # ---------------------------------------------------------------- endings

    @abc.abstractmethod
    def detach_process(self, pid: int) -> None:
        """Remove every breakpoint of ``pid``, restore the registers the engine
        changed and let it run free; a dump just forgets it."""

    @abc.abstractmethod
    def kill_process(self, pid: int) -> int:
        """End ``pid`` for good (SIGKILL, reaped: no zombie); return its exit code."""

    @abc.abstractmethod
    def detach_all(self) -> None:
        """``detach_process`` for every process (stopping a running target first)."""

    @abc.abstractmethod
    def terminate_all(self) -> dict[int, int]:
        """``kill_process`` for every process; each one's exit code by pid."""
