"""Bookkeeping records of the live target: processes, threads, breakpoint sites.

These hold state only; ``LiveTarget`` (target.py) owns the logic.
"""

from __future__ import annotations

import enum
from typing import Any

from lindbg.arch.x86_64 import UserRegs
from lindbg.arch.x86_64_displaced import DisplacedInstruction
from lindbg.os.linux.memory import ProcessMemory


class ThreadState(enum.Enum):
    #: Created by clone/fork; its first ptrace stop has not been seen yet.
    NEW = enum.auto()
    RUNNING = enum.auto()
    STOPPED = enum.auto()
    #: Stopped in PTRACE_EVENT_EXIT: it dies as soon as it is resumed.
    EXITING = enum.auto()


class LiveThread:
    """One traced thread. ``regs`` is read once per stop and cached until resume."""

    __slots__ = (
        "hit_site",
        "interrupt_pending",
        "pending_signal",
        "process",
        "regs",
        "regs_dirty",
        "regs_valid",
        "state",
        "tid",
    )

    def __init__(self, tid: int, process: LiveProcess, state: ThreadState) -> None:
        self.tid = tid
        self.process = process
        self.state = state
        self.regs = UserRegs()
        self.regs_valid = False
        self.regs_dirty = False
        #: A signal to deliver when the thread is next resumed.
        self.pending_signal = 0
        #: A PTRACE_INTERRUPT was sent and its EVENT_STOP not yet seen.
        self.interrupt_pending = False
        #: The site whose hit was reported for this stop: resuming steps over it.
        self.hit_site: Site | None = None


class Site:
    """A software breakpoint (int3) in one address space.

    ``owners`` are the engine's breakpoints at this address (opaque here);
    ``plan`` emulates the displaced instruction so a hit costs one stop.
    """

    __slots__ = ("address", "inserted", "original", "owners", "plan")

    def __init__(self, address: int, original: bytes, plan: DisplacedInstruction | None) -> None:
        self.address = address
        self.original = original
        self.plan = plan
        self.inserted = False
        self.owners: list[Any] = []


class HardwareSlot:
    """A debug register in use: address, kind bits and size."""

    __slots__ = ("address", "kind", "owners", "size")

    def __init__(self, address: int, kind: int, size: int) -> None:
        self.address = address
        self.kind = kind
        self.size = size
        self.owners: list[Any] = []


class LiveProcess:
    """One traced process and everything the target keeps for it."""

    def __init__(self, pid: int, *, launched: bool, parent: LiveProcess | None = None) -> None:
        self.pid = pid
        self.launched = launched
        self.threads: dict[int, LiveThread] = {}
        self.memory = ProcessMemory(pid)
        #: Software breakpoint sites by address. A vfork child shares its
        #: parent's dict (same memory) until it execs.
        self.sites: dict[int, Site] = {}
        self.hw_slots: list[HardwareSlot | None] = [None, None, None, None]
        self.dr7 = 0
        self.parent = parent
        self.exit_reported = False
        self.exit_code: int | None = None
        self.exec_count = 0
        self.gone = False
        #: A vfork child we do not follow, traced only until it calls execve.
        self.hidden = False
        #: Attached, and a child of this very process: its exit status belongs to
        #: the code that started it, so the engine never reaps it.
        self.parent_reaps = False

    def live_threads(self) -> list[LiveThread]:
        return list(self.threads.values())
