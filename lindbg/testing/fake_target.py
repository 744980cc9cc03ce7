"""A scripted ``Target``: the engine's session logic tested without ptrace.

``FakeTarget`` holds what a target holds as plain data a test sets up and
inspects: processes and threads, a sparse page-granular memory per process,
each thread's ``UserRegs``, breakpoint sites (the int3 is written into the fake
memory and hidden from ``read_memory``, as ``LiveTarget`` does) and four
debug-register slots.

What the kernel would report is a script: ``push`` queues ``TargetEvent``
records, or callables that make one from the target when their turn comes.
While the target runs (after ``resume`` or ``step_range``), ``wait_event``
takes the next, stops the target and applies it: BREAKPOINT fills ``sites``
from the site or slot at ``address`` when empty (and puts rip on a site),
CREATE_THREAD adds ``new_id``, EXIT_THREAD removes ``tid``, CREATE_PROCESS
copies process ``code`` as ``pid``, EXEC drops the other threads, the sites
and the slots, EXIT_PROCESS marks the process exiting (still readable),
PROCESS_GONE removes it. Nothing else happens unless scripted. With nothing
to report, or the target stopped, ``wait_event`` blocks on a condition until
``wake``, a ``push`` or the deadline: nothing sleeps. Requests that change the
target are recorded in ``log`` (see ``FakeTarget``).
"""

from __future__ import annotations

import errno
import itertools
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from lindbg.arch import register_state
from lindbg.arch.x86_64 import BREAKPOINT_INSTRUCTION, DEBUG_REGISTER_SLOTS, UserRegs, WatchKind
from lindbg.errors import InvalidOperationError, MemoryAccessError, TargetAccessError
from lindbg.targets.base import Capability, EventKind, MemoryRegion, ResumeMode, Target, TargetEvent

PAGE_SIZE = 0x1000
#: What a FakeTarget can do unless its constructor says otherwise.
DEFAULT_CAPABILITIES = Capability.RUN | Capability.WRITE | Capability.BREAKPOINTS | Capability.LAUNCH
DEFAULT_CAPABILITIES |= Capability.HARDWARE_BREAKPOINTS | Capability.ATTACH
#: The pid of the first process ``launch`` makes (then 1001, 1002 ...).
FIRST_PID = 1000
#: The exit code ``kill_process`` reports for a process that was not exiting.
KILLED = 128 + int(signal.SIGKILL)
#: One entry of the script.
ScriptItem: TypeAlias = "TargetEvent | Callable[[FakeTarget], TargetEvent]"
_OFFSET = PAGE_SIZE - 1


@dataclass(eq=False)
class FakeSite:
    """An int3 the fake wrote for ``owners``; ``original`` is the program's byte."""

    address: int
    original: int
    owners: list[Any] = field(default_factory=list)


@dataclass(eq=False)
class FakeSlot:
    """A debug register in use; ``owners`` is the engine's list."""

    address: int
    kind: WatchKind
    size: int
    owners: list[Any] = field(default_factory=list)


@dataclass(eq=False)
class FakeProcess:
    """One process of a FakeTarget: every field is the test's to read or set."""

    pid: int
    executable: str
    auxv: dict[int, int]
    #: Registers by tid, the leader first.
    registers: dict[int, UserRegs]
    #: Page-aligned address -> its PAGE_SIZE bytes; a missing page is unmapped.
    pages: dict[int, bytearray] = field(default_factory=dict)
    sites: dict[int, FakeSite] = field(default_factory=dict)
    slots: list[FakeSlot | None] = field(default_factory=lambda: [None] * DEBUG_REGISTER_SLOTS)
    #: Set by EXIT_PROCESS (exiting), PROCESS_GONE and kill_process.
    exit_code: int | None = None


class FakeTarget(Target):
    """A target whose processes, memory, registers and events a test scripts.

    Args:
        capabilities: what it can do; the rest is refused as "the target is a
            fake: cannot ...".
        images: program name -> the memory ``launch`` maps for it
            (``{"prog": {0x401000: code}}``); an unknown name maps nothing.
        attachable: pid -> program name: the processes ``attach`` can take.
        auxv: the auxiliary vector every new process starts with.

    ``log`` entries: ("launch", pid, argv), ("attach", pid), ("resume", mode,
    tid, the signal tid gets), ("deliver", tid, signal) for each other thread
    a CONTINUE delivers one to, ("step_range", tid, low, high),
    ("request_interrupt",), ("set_pending_signal", tid, signal),
    ("write_memory", pid, address, data), ("set_register", tid, name, value),
    ("claim_site", pid, address), ("release_site", pid, address),
    ("set_hardware", pid, address, kind, size), ("clear_hardware", pid,
    address), ("detach", pid), ("kill", pid), ("restore_breakpoint_bytes",).
    """

    kind = "fake"

    def __init__(
        self,
        *,
        capabilities: Capability = DEFAULT_CAPABILITIES,
        images: Mapping[str, Mapping[int, bytes]] | None = None,
        attachable: Mapping[int, str] | None = None,
        auxv: Mapping[int, int] | None = None,
    ) -> None:
        self.capabilities = capabilities
        self.images = dict(images or {})
        self.attachable = dict(attachable or {})
        self.default_auxv = dict(auxv or {})
        self.processes: dict[int, FakeProcess] = {}
        #: Processes detached, killed or gone, as they were when they left.
        self.gone: dict[int, FakeProcess] = {}
        self.log: list[tuple[Any, ...]] = []
        #: tid -> the signal it gets when it next runs (``set_pending_signal``).
        self.pending_signals: dict[int, int] = {}
        #: Signals whose delivery would end the process (``delivery_kills``).
        self.fatal_signals: set[int] = set()
        #: What ``wait_event`` reports next, in order (``push`` adds, from any thread).
        self.script: deque[ScriptItem] = deque()
        #: Set while a ``wait_event`` is blocked with nothing to report.
        self.waiting = threading.Event()
        self.running = False
        self._pids = itertools.count(FIRST_PID)
        self._cond = threading.Condition()
        self._wake_pending = False
        self._interrupt_requested = False
        #: The thread last resumed or stepped: where a break-in lands.
        self._resumed = 0

    def push(self, *items: ScriptItem) -> None:
        """Any thread: queue events for ``wait_event``; a callable is called with
        this target when its turn comes and returns the event."""
        with self._cond:
            self.script.extend(items)
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._wake_pending = True
            self._cond.notify_all()

    def wait_event(self, deadline: float | None) -> TargetEvent | None:
        """The next scripted event (an INTERRUPT first if one was requested), or
        None when woken, at the deadline, or at once if there is no process."""
        self._need(Capability.RUN, "run")
        with self._cond:
            while True:
                if self._interrupt_requested:
                    self._interrupt_requested = False
                    if self.running and self.processes:
                        item: ScriptItem = self._break_in()
                        break
                if self.running and self.script:
                    item = self.script.popleft()
                    break
                if self._wake_pending:
                    self._wake_pending = False
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if not self.processes or (remaining is not None and remaining <= 0):
                    return None
                self.waiting.set()
                try:
                    self._cond.wait(remaining)
                finally:
                    self.waiting.clear()
        event = item(self) if callable(item) else item
        self.running = False
        self._apply(event)
        return event

    def _break_in(self) -> TargetEvent:
        process = self._find(self._resumed) or next(iter(self.processes.values()))
        tid = self._resumed if self._resumed in process.registers else next(iter(process.registers))
        return TargetEvent(EventKind.INTERRUPT, process.pid, tid)

    def _apply(self, event: TargetEvent) -> None:
        """What ``event`` does to the target (the module's docstring says)."""
        kind, process = event.kind, self.processes.get(event.pid)
        if kind is EventKind.CREATE_PROCESS:
            parent = self._process(event.code)
            process = self.processes[event.pid] = FakeProcess(
                event.pid, parent.executable, dict(parent.auxv), {event.pid: _copy(parent.registers)}
            )
            process.pages = {base: bytearray(page) for base, page in parent.pages.items()}
            process.sites = {at: FakeSite(at, s.original, s.owners) for at, s in parent.sites.items()}
        elif process is None:
            return
        elif kind is EventKind.BREAKPOINT:
            site = process.sites.get(event.address)
            slot = next((s for s in process.slots if s is not None and s.address == event.address), None)
            found = site or slot
            if not event.sites and found is not None:
                event.sites = found.owners
            if site is not None and event.tid in process.registers:
                process.registers[event.tid].rip = event.address
        elif kind is EventKind.CREATE_THREAD:
            process.registers[event.new_id] = _copy({0: process.registers[event.tid]})
        elif kind is EventKind.EXIT_THREAD:
            process.registers.pop(event.tid, None)
        elif kind is EventKind.EXEC:
            process.registers = {process.pid: process.registers.get(event.tid, UserRegs())}
            self._unmark(process)
        elif kind is EventKind.EXIT_PROCESS:
            process.exit_code = event.code
        elif kind is EventKind.PROCESS_GONE:
            process.exit_code = event.code
            self._forget(process)

    def resume(self, mode: ResumeMode, tid: int, signal: int) -> None:
        """Run (RUN): ``tid`` gets ``signal`` or its pending one; a CONTINUE
        delivers every other pending signal too."""
        self._need(Capability.RUN, "run or step it")
        if mode is ResumeMode.STEP:
            self._thread(tid)
        self.log.append(("resume", mode, tid, signal or self.pending_signals.pop(tid, 0)))
        if mode is ResumeMode.CONTINUE:
            self.log.extend(("deliver", other, signo) for other, signo in self.pending_signals.items())
            self.pending_signals.clear()
        self._resumed = tid
        self.running = True

    def step_range(self, tid: int, low: int, high: int) -> None:
        """Run ``tid`` (RUN); what it reports is the script's."""
        self._need(Capability.RUN, "run or step it")
        self._thread(tid)
        self.log.append(("step_range", tid, low, high))
        self._resumed = tid
        self.running = True

    def request_interrupt(self) -> None:
        self.log.append(("request_interrupt",))
        self._interrupt_requested = True

    @property
    def interrupt_requested(self) -> bool:
        return self._interrupt_requested

    def set_pending_signal(self, tid: int, signo: int) -> None:
        self._thread(tid)
        self.log.append(("set_pending_signal", tid, signo))
        self.pending_signals[tid] = signo

    def delivery_kills(self, pid: int, signo: int) -> bool:
        return signo in self.fatal_signals

    def launch(
        self,
        argv: list[str],
        env: dict[str, str] | None,
        cwd: str | None,
        stdio: tuple[int | None, int | None, int | None] = (None, None, None),
    ) -> int:
        """A new process (pid FIRST_PID, then on) with ``argv[0]``'s image (LAUNCH)."""
        self._need(Capability.LAUNCH, "start a process")
        if not argv:
            raise InvalidOperationError("create_process: empty command line")
        pid = next(self._pids)
        self._new_process(pid, argv[0])
        self.log.append(("launch", pid, list(argv)))
        return pid

    def attach(self, pid: int) -> int:
        """Debug process ``pid`` of ``attachable``, with its program's image (ATTACH)."""
        self._need(Capability.ATTACH, "attach to a process")
        if pid in self.processes:
            raise InvalidOperationError(f"process {pid} is already being debugged")
        if pid not in self.attachable:
            raise TargetAccessError(f"cannot attach to process {pid}: no such process", pid)
        self._new_process(pid, self.attachable[pid])
        self.log.append(("attach", pid))
        return pid

    def _new_process(self, pid: int, program: str) -> None:
        self.processes[pid] = FakeProcess(pid, program, dict(self.default_auxv), {pid: UserRegs()})
        for address, data in self.images.get(program, {}).items():
            self.map_memory(pid, address, data)

    def process_ids(self) -> list[int]:
        return list(self.processes)

    def thread_ids(self, pid: int) -> list[int]:
        return list(self._process(pid).registers)

    def executable(self, pid: int) -> str:
        return self._process(pid).executable

    def auxv(self, pid: int) -> dict[int, int]:
        """The test's auxiliary vector of ``pid`` (ProcessLookupError once it is gone)."""
        if pid not in self.processes:
            raise ProcessLookupError(errno.ESRCH, f"process {pid} is gone")
        return dict(self.processes[pid].auxv)

    def mapping_path_at(self, pid: int, address: int) -> str:
        return ""

    def memory_map(self, pid: int) -> list[MemoryRegion]:
        """One "rwxp" region, with no path, per run of adjacent mapped pages."""
        regions: list[MemoryRegion] = []
        for base in sorted(self._process(pid).pages):
            start = regions.pop().start if regions and regions[-1].end == base else base
            regions.append(MemoryRegion(start, base + PAGE_SIZE, "rwxp", 0, ""))
        return regions

    def map_memory(self, pid: int, address: int, data: bytes) -> None:
        """Map the pages ``data`` covers at ``address`` (zero-filled) and store it
        there as the program's own stores would: breakpoint sites are not consulted."""
        process = self._process(pid)
        for base in range(address & ~_OFFSET, address + len(data), PAGE_SIZE):
            process.pages.setdefault(base, bytearray(PAGE_SIZE))
        _poke(process, address, data)

    def memory_reader(self, pid: int) -> Callable[[int, int], bytes]:
        """Raw reads, as LiveTarget's: breakpoint bytes show; fewer bytes where memory ends."""
        process = self._process(pid)
        return lambda address, size: _peek(process, address, size)

    def read_memory(self, pid: int, address: int, size: int) -> bytes:
        process = self._process(pid)
        data = bytearray(_peek(process, address, size))
        if len(data) < size:
            bad = address + len(data)
            raise MemoryAccessError(f"memory access error at {bad:#x} (process {pid})", bad, pid)
        for site in process.sites.values():
            if address <= site.address < address + size:
                data[site.address - address] = site.original
        return bytes(data)

    def read_memory_into(self, pid: int, address: int, buffer: bytearray | memoryview) -> None:
        buffer[:] = self.read_memory(pid, address, len(buffer))

    def write_memory(self, pid: int, address: int, data: bytes) -> None:
        """Store ``data`` (WRITE; nothing if a byte is unmapped); a site keeps its
        int3 and takes the written byte as the program's."""
        self._need(Capability.WRITE, "write memory")
        process = self._process(pid)
        mapped = len(_peek(process, address, len(data)))
        if mapped < len(data):
            bad = address + mapped
            raise MemoryAccessError(f"memory access error at {bad:#x} (process {pid})", bad, pid)
        payload = bytearray(data)
        for site in process.sites.values():
            if address <= site.address < address + len(data):
                site.original = payload[site.address - address]
                payload[site.address - address] = BREAKPOINT_INSTRUCTION[0]
        _poke(process, address, payload)
        self.log.append(("write_memory", pid, address, bytes(data)))

    def general_registers(self, tid: int) -> UserRegs:
        """The registers themselves (setting a field changes the thread)."""
        return self._stopped(tid)

    def get_register(self, tid: int, name: str) -> int:
        """General registers and what derives from them; the fake keeps no FP or vector state."""
        return register_state.read_state(name, self._stopped(tid), lambda: None, lambda: None)

    def set_register(self, tid: int, name: str, value: int) -> None:
        self._need(Capability.WRITE, "change registers")
        register_state.write(name, self._stopped(tid), value)
        self.log.append(("set_register", tid, name, value))

    def claim_site(self, pid: int, address: int, owner: Any) -> FakeSite:
        self._need(Capability.BREAKPOINTS, "set breakpoints")
        process = self._process(pid)
        site = process.sites.get(address)
        if site is None:
            original = _peek(process, address, 1)
            if not original:
                why = f"cannot set a breakpoint at {address:#x} in process {pid}: memory not readable"
                raise MemoryAccessError(why, address, pid)
            site = process.sites[address] = FakeSite(address, original[0])
            _poke(process, address, BREAKPOINT_INSTRUCTION)
        site.owners.append(owner)
        self.log.append(("claim_site", pid, address))
        return site

    def release_site(self, pid: int, address: int, owner: Any) -> None:
        process = self.processes.get(pid)
        site = process.sites.get(address) if process is not None else None
        if process is None or site is None or owner not in site.owners:
            return
        site.owners.remove(owner)
        self.log.append(("release_site", pid, address))
        if not site.owners:
            del process.sites[address]
            _poke(process, address, bytes([site.original]))

    def breakpoint_under(self, tid: int) -> list[Any] | None:
        site = self._thread(tid).sites.get(self._stopped(tid).rip)
        return site.owners if site is not None else None

    def set_hardware(self, pid: int, address: int, kind: WatchKind, size: int) -> FakeSlot:
        self._need(Capability.HARDWARE_BREAKPOINTS, "set hardware breakpoints")
        slots = self._process(pid).slots
        if None not in slots:
            raise InvalidOperationError(f"all {len(slots)} debug registers of process {pid} are in use")
        slot = slots[slots.index(None)] = FakeSlot(address, WatchKind(kind), size)
        self.log.append(("set_hardware", pid, address, WatchKind(kind), size))
        return slot

    def clear_hardware(self, pid: int, slot: Any) -> None:
        process = self.processes.get(pid)
        if process is not None and slot in process.slots:
            process.slots[process.slots.index(slot)] = None
            self.log.append(("clear_hardware", pid, slot.address))

    def restore_breakpoint_bytes(self) -> None:
        self.log.append(("restore_breakpoint_bytes",))
        for process in list(self.processes.values()):
            for site in list(process.sites.values()):
                _poke(process, site.address, bytes([site.original]))

    def detach_process(self, pid: int) -> None:
        """Put back the bytes under every site of ``pid``, free its slots, forget it."""
        process = self._process(pid)
        self._unmark(process)
        self.log.append(("detach", pid))
        self._forget(process)

    def kill_process(self, pid: int) -> int:
        """Forget ``pid``; its exit code if it was exiting, else KILLED."""
        process = self._process(pid)
        code = process.exit_code = KILLED if process.exit_code is None else process.exit_code
        self.log.append(("kill", pid))
        self._forget(process)
        return code

    def detach_all(self) -> None:
        self.running = False
        for pid in list(self.processes):
            self.detach_process(pid)

    def terminate_all(self) -> dict[int, int]:
        self.running = False
        return {pid: self.kill_process(pid) for pid in list(self.processes)}

    def _need(self, capability: Capability, what: str) -> None:
        if capability not in self.capabilities:
            raise self.refusal(what)

    def _process(self, pid: int) -> FakeProcess:
        process = self.processes.get(pid)
        if process is None:
            raise InvalidOperationError(f"process {pid} is not being debugged")
        return process

    def _find(self, tid: int) -> FakeProcess | None:
        return next((p for p in self.processes.values() if tid in p.registers), None)

    def _thread(self, tid: int) -> FakeProcess:
        process = self._find(tid)
        if process is None:
            raise InvalidOperationError(f"thread {tid} is not being debugged")
        return process

    def _stopped(self, tid: int) -> UserRegs:
        regs = self._thread(tid).registers[tid]
        if self.running:
            raise InvalidOperationError(f"thread {tid} is running")
        return regs

    def _unmark(self, process: FakeProcess) -> None:
        for site in process.sites.values():
            _poke(process, site.address, bytes([site.original]))
        process.sites.clear()
        process.slots = [None] * DEBUG_REGISTER_SLOTS

    def _forget(self, process: FakeProcess) -> None:
        self.processes.pop(process.pid, None)
        self.gone[process.pid] = process


def _peek(process: FakeProcess, address: int, size: int) -> bytes:
    """Up to ``size`` raw bytes at ``address``: fewer where mapped memory ends."""
    out = bytearray()
    while len(out) < size and (page := process.pages.get((address + len(out)) & ~_OFFSET)) is not None:
        start = (address + len(out)) & _OFFSET
        out += page[start : start + size - len(out)]
    return bytes(out)


def _poke(process: FakeProcess, address: int, data: bytes | bytearray) -> None:
    """Store ``data`` at mapped ``address`` as it is (no site consulted)."""
    for index, byte in enumerate(data):
        process.pages[(address + index) & ~_OFFSET][(address + index) & _OFFSET] = byte


def _copy(registers: dict[int, UserRegs]) -> UserRegs:
    """A copy of the first thread's registers in ``registers``."""
    return UserRegs.from_buffer_copy(next(iter(registers.values())))
