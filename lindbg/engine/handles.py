"""The objects clients hold: processes, threads, breakpoints, exception records.

Handles are small and stay readable after their target is gone (``is_valid``
turns False), so a callback may keep one without keeping the target alive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lindbg.engine.engine import Engine


class Thread:
    """A thread of a debugged process."""

    __slots__ = ("is_valid", "pid", "tid")

    def __init__(self, pid: int, tid: int) -> None:
        self.pid = pid
        self.tid = tid
        self.is_valid = True

    def __repr__(self) -> str:
        return f"<Thread {self.pid}.{self.tid}{'' if self.is_valid else ' (gone)'}>"


class Process:
    """A debugged process. ``exit_code`` is set once it has exited."""

    def __init__(self, pid: int, options: int, executable: str = "") -> None:
        self.pid = pid
        self.options = options
        self.executable = executable
        self.threads: list[Thread] = []
        self.exit_code: int | None = None
        self.is_valid = True
        #: The pid of the process this one was forked from, if followed.
        self.parent_pid: int | None = None
        #: How the engine came to debug it: "create", "attach" or "examine" (a dump).
        self.origin = "create"

    def __repr__(self) -> str:
        state = "" if self.is_valid else f" exited {self.exit_code}"
        return f"<Process {self.pid}{state}>"


class Breakpoint:
    """An engine breakpoint: software (int3) or hardware (debug register).

    ``access`` is None for a software breakpoint, else "e", "w" or "rw".
    Setting ``enabled`` inserts or removes it in the target at once.
    """

    def __init__(
        self,
        engine: Engine,
        bp_id: int,
        pid: int,
        address: int,
        access: str | None,
        size: int,
        one_shot: bool,
    ) -> None:
        self._engine = engine
        self.id = bp_id
        self.pid = pid
        self.address = address
        self.access = access
        self.size = size
        self.one_shot = one_shot
        self.hit_count = 0
        #: dbgeng's pass count: the hit that triggers the breakpoint (1: every hit);
        #: ``passes_left`` counts down to 1 and stays there once reached.
        self.pass_count = 1
        self.passes_left = 1
        self._enabled = True
        self.is_valid = True
        #: The target's record (a Site or a HardwareSlot) while inserted.
        self._placement: Any = None
        #: Free for the console (commands to run on a hit).
        self.command = ""
        #: What the user typed ("app!compute", "app.c:42"), kept to resolve it again.
        self.expression = ""
        #: True while the expression names something not loaded yet (WinDbg's `bu`).
        self.deferred = False

    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        engine = self._engine
        engine.call(lambda: engine.breakpoint_table.set_enabled(self, bool(value)))

    def set_pass_count(self, count: int) -> None:
        """Trigger on the ``count``-th hit from now and on every hit after it."""
        if count < 1:
            raise ValueError("a pass count is at least 1")
        self.pass_count = self.passes_left = count

    def __repr__(self) -> str:
        kind = "sw" if self.access is None else f"hw {self.access} {self.size}"
        return (
            f"<Breakpoint {self.id} {kind} {self.address:#x} hits={self.hit_count} enabled={self._enabled}>"
        )


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    """A signal reported as an exception (first or second chance)."""

    signal: int
    address: int
    first_chance: bool
    pid: int
    tid: int

    @property
    def code(self) -> int:
        """The exception code cdb shows: the signal number."""
        return self.signal


@dataclass(frozen=True, slots=True)
class LastEvent:
    """What the last event the engine processed was (``.lastevent``)."""

    kind: str
    pid: int
    tid: int
    description: str
    breakpoint_id: int | None = None
    signal: int = 0


@dataclass(frozen=True, slots=True)
class ThreadDetails:
    """What ``~`` shows of a thread beyond its ids: its name (comm), nice value,
    scheduling policy and CPU affinity mask."""

    name: str
    priority: int
    priority_class: int
    affinity: int


class Module:
    """A loaded ELF image (executable, shared library, vDSO) of one process.

    ``base``/``end`` span its mapping (``end`` exclusive); ``bias`` is what
    the loader added to its link-time addresses.
    """

    __slots__ = ("base", "bias", "build_id", "end", "is_valid", "name", "path", "pid", "symbol_state")

    def __init__(self, pid: int, name: str, path: str, base: int, end: int, bias: int, build_id: str) -> None:
        self.pid = pid
        self.name = name
        self.path = path
        self.base = base
        self.end = end
        self.bias = bias
        self.build_id = build_id
        self.is_valid = True
        #: cdb's `lm` status: "deferred" until a question needs its symbols.
        self.symbol_state = "deferred"

    @property
    def size(self) -> int:
        return self.end - self.base

    def __contains__(self, address: int) -> bool:
        return self.base <= address < self.end

    def __repr__(self) -> str:
        return f"<Module {self.name} {self.base:#x}-{self.end:#x} {self.path}>"


class Frame:
    """One frame of a stack: where it is and, when known, in which function and line.

    ``str(frame)`` is cdb's call-site form: ``module!function+0xoff [file @ line]``.
    """

    __slots__ = (
        "file",
        "function",
        "how",
        "inline",
        "line",
        "module",
        "number",
        "offset",
        "pc",
        "return_address",
        "sp",
    )

    def __init__(
        self,
        number: int,
        pc: int,
        sp: int,
        return_address: int,
        how: str,
        module: str | None,
        function: str | None,
        offset: int,
        file: str | None,
        line: int | None,
        inline: bool = False,
    ) -> None:
        #: An inlined call (DWARF DW_TAG_inlined_subroutine): no stack frame of its
        #: own, it shares pc and sp with the frame that follows it.
        self.inline = inline
        self.number = number
        self.pc = pc
        self.sp = sp
        self.return_address = return_address
        self.how = how
        self.module = module
        self.function = function
        self.offset = offset
        self.file = file
        self.line = line

    @property
    def location(self) -> str:
        if self.module is None:
            return f"0x{self.pc >> 32:08x}`{self.pc & 0xFFFFFFFF:08x}"
        if self.function is None:
            return f"{self.module}+{self.offset:#x}"
        if self.inline or not self.offset:  # cdb names an inlined call without an offset
            return f"{self.module}!{self.function}"
        return f"{self.module}!{self.function}+{self.offset:#x}"

    def __str__(self) -> str:
        if self.file is not None and self.line is not None:
            return f"{self.location} [{self.file} @ {self.line}]"
        return self.location

    def __repr__(self) -> str:
        return f"<Frame {self.number} {self} sp={self.sp:#x}>"
