"""The Target interface the engine drives, and the events targets report.

A target owns one or more processes (a live ptrace system, a core file, a
process server). It knows nothing of clients or callbacks: it reports raw
``TargetEvent`` records; the engine turns them into callbacks and decides
how to resume.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lindbg.arch.x86_64 import UserRegs


class EventKind(enum.Enum):
    """What a ``TargetEvent`` reports."""

    #: A software or hardware breakpoint of the engine was hit.
    BREAKPOINT = enum.auto()
    #: A single step (or a step-over's internal breakpoint) completed.
    STEP = enum.auto()
    #: A signal arrived (an exception in dbgeng terms).
    SIGNAL = enum.auto()
    #: The engine asked the target to break in (``set_interrupt``).
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
    signal: int = 0
    code: int = 0
    new_id: int = 0
    sites: list[Any] | tuple[()] = ()
    first_chance: bool = True


class ResumeMode(enum.Enum):
    """How ``Target.resume`` lets the target run."""

    CONTINUE = enum.auto()
    #: Step one instruction of the given thread; the other threads stay stopped.
    STEP = enum.auto()


class Target(abc.ABC):
    """What the engine needs from any kind of target.

    All methods are called on the engine thread. Memory and register methods
    need the target stopped (``InvalidOperationError`` otherwise).
    """

    #: "live" (processes that run) or "dump" (a core file: read-only, never runs).
    kind = "live"
    #: True between resume() and the next reported event.
    running = False

    @abc.abstractmethod
    def memory_reader(self, pid: int) -> Callable[[int, int], bytes]:
        """A fast raw reader of ``pid``'s memory for symbols and unwinding
        (``read(address, size)``, raising ``MemoryAccessError``)."""

    @abc.abstractmethod
    def general_registers(self, tid: int) -> UserRegs:
        """The general registers of stopped ``tid`` (do not keep the object)."""

    @abc.abstractmethod
    def auxv(self, pid: int) -> dict[int, int]:
        """``pid``'s auxiliary vector (AT_* -> value)."""

    @abc.abstractmethod
    def executable(self, pid: int) -> str:
        """The path of the program image of ``pid`` ('' if unknown)."""

    @abc.abstractmethod
    def mapping_path_at(self, pid: int, address: int) -> str:
        """The file mapped at ``address`` in ``pid`` ('' if none)."""

    @abc.abstractmethod
    def process_ids(self) -> list[int]:
        """Pids of the processes this target holds, in creation order."""

    @abc.abstractmethod
    def thread_ids(self, pid: int) -> list[int]:
        """Thread ids of process ``pid`` (its leader first)."""

    @abc.abstractmethod
    def wait_event(self) -> TargetEvent | None:
        """Block until the target reports an event.

        Returns:
            The event, with every thread of the target stopped; or None when the
            wait was interrupted (the engine's wake-up) with the target still running.
        """

    @abc.abstractmethod
    def resume(self, mode: ResumeMode, tid: int, signal: int) -> None:
        """Let the target run; ``signal`` (0: none) is delivered to thread ``tid``."""

    @abc.abstractmethod
    def read_memory(self, pid: int, address: int, size: int) -> bytes:
        """Read target memory as the program sees it (breakpoints hidden).

        Raises:
            MemoryAccessError: some byte of the range is not readable.
        """

    @abc.abstractmethod
    def read_memory_into(self, pid: int, address: int, buffer: bytearray | memoryview) -> None:
        """Fill ``buffer`` from ``address`` (breakpoints hidden), with no extra copy.

        Raises:
            MemoryAccessError: some byte of the range is not readable.
        """

    @abc.abstractmethod
    def write_memory(self, pid: int, address: int, data: bytes) -> None:
        """Write target memory (breakpoints stay in place)."""

    @abc.abstractmethod
    def get_register(self, tid: int, name: str) -> int:
        """Value of register ``name`` of stopped thread ``tid``."""

    @abc.abstractmethod
    def set_register(self, tid: int, name: str, value: int) -> None:
        """Set register ``name`` of stopped thread ``tid``."""

    @abc.abstractmethod
    def detach_all(self) -> None:
        """Remove every breakpoint, restore registers and let every process run free."""

    @abc.abstractmethod
    def terminate_all(self) -> dict[int, int]:
        """Kill every process and reap it; return each one's exit code by pid."""
