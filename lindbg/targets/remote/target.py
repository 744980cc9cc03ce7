"""Processes of a process server, reached over the GDB remote protocol.

The engine runs here (symbols, expressions, stepping logic, commands); the
server, ``lindbgsrv`` or ``gdbserver --multi``, does the ptrace calls. Each
member of the ``Target`` contract becomes the fewest packets that answer it.

Strategy (round trips are the cost, see docs/procserver.md "The smart client"):

* A stop costs one reply. Breakpoints are the server's (``Z0``): it steps
  over them itself when the target resumes, so a hit that the engine resumes
  is one ``vCont`` and one stop reply. The hit's owners are found here from the
  reply's ``swbreak``/``hwbreak``/``watch`` reason and the expedited ``rip``.
* Registers: the stop reply's expedited registers give ``rip`` (and, from
  ``lindbgsrv`` asked with the ``lindbg-stops`` feature, every general
  register); anything else is one ``g`` per thread per stop, kept until the
  target runs. Register writes go out at once (``P``).
* Memory: small reads come from page-sized blocks kept until the target runs
  (``memory.StopMemory``); large ones go in packet-sized binary pieces.
* Threads: ``QThreadEvents`` makes the server report thread births (``create``)
  and deaths (``w``) as stops, so the thread list is known without asking
  after each stop; a stop naming a thread not yet seen adds it.
* What /proc would tell on the server's machine (maps, the signal masks of
  ``!signals``) is read through host I/O (``vFile``) when asked, never on the
  hot path.

Forks are not followed: both servers let a child go unless the client asks for
fork events, which this client does not (``follow_forks`` is ignored).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lindbg.arch import register_state, x86_64, x86_64_gdb
from lindbg.arch.x86_64 import UserRegs, WatchKind
from lindbg.errors import InvalidOperationError, LindbgError, MemoryAccessError, TargetAccessError
from lindbg.os.linux.signals import is_fatal_by_default
from lindbg.procserver.link import (
    LinkLostError,
    RemoteError,
    RemoteFileError,
    RspLink,
    RspLinkError,
    StopReply,
    UnsupportedPacketError,
    format_thread_id,
    parse_stop,
    parse_thread_id,
)
from lindbg.protocols import gdb_signals
from lindbg.protocols.rsp import hex_encode
from lindbg.targets.base import (
    Capability,
    EventKind,
    MemoryRegion,
    ResumeMode,
    SignalState,
    Target,
    TargetEvent,
)
from lindbg.targets.remote.memory import StopMemory

if TYPE_CHECKING:
    pass

_RIP = 16
_GDB_SIGTRAP = 5
_GDB_SIGINT = 2
#: The Z packet type of each watch kind (``Z1`` is an execute breakpoint).
_Z_TYPE = {WatchKind.EXECUTE: 1, WatchKind.WRITE: 2, WatchKind.READ_WRITE: 4}
#: Seconds ``detach_all``/``terminate_all`` give a running target to stop.
_STOP_TIMEOUT = 5.0
#: Every general register lindbg's ``UserRegs`` holds, by gdb name.
_USER_REGISTERS = frozenset(x86_64.GENERAL_REGISTERS)


@dataclass(eq=False, slots=True)
class RemoteSite:
    """A software breakpoint the server holds for us (``Z0``)."""

    pid: int
    address: int
    owners: list[Any] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class RemoteSlot:
    """A hardware breakpoint or watchpoint the server holds (``Z1``-``Z4``)."""

    pid: int
    address: int
    kind: WatchKind
    size: int
    owners: list[Any] = field(default_factory=list)


class _Registers:
    """One thread's registers as read during one stop."""

    __slots__ = ("expedited", "extras", "fxsave", "regs", "whole")

    def __init__(self) -> None:
        self.regs = UserRegs()
        #: The stop reply's registers (regnum -> raw bytes), until ``regs`` needs them.
        self.expedited: dict[int, bytes] | None = None
        #: The FXSAVE area rebuilt from a ``g`` reply (None until read).
        self.fxsave: bytearray | None = None
        #: Values of registers ``UserRegs`` has no room for (``ymm0h`` ...).
        self.extras: dict[str, bytes] = {}
        #: Every general register is known (from ``g`` or a full stop reply).
        self.whole = False


class _Process:
    __slots__ = ("attached", "executable", "memory", "pid", "threads")

    def __init__(self, pid: int, memory: StopMemory, *, attached: bool) -> None:
        self.pid = pid
        self.memory = memory
        #: Thread ids in the order the server named them (the leader first).
        self.threads: list[int] = []
        self.executable: str | None = None
        self.attached = attached


class RemoteTarget(Target):
    """The processes one ``RspLink`` reaches (one per link; engine thread only,
    ``wake`` excepted)."""

    kind = "remote"
    capabilities = (
        Capability.RUN
        | Capability.WRITE
        | Capability.BREAKPOINTS
        | Capability.HARDWARE_BREAKPOINTS
        | Capability.LAUNCH
        | Capability.ATTACH
    )

    def __init__(self, link: RspLink) -> None:
        self.link = link
        self._multiprocess = link.features.get("multiprocess") is True
        self._processes: dict[int, _Process] = {}
        self._thread_pid: dict[int, int] = {}
        self._registers: dict[int, _Registers] = {}
        self._sites: dict[tuple[int, int], RemoteSite] = {}
        self._slots: dict[int, list[RemoteSlot]] = {}
        #: The thread the server's ``Hg`` names (its memory is the one m/x/Z use).
        self._selected: tuple[int, int] | None = None
        self._ready: deque[TargetEvent] = deque()
        self._stepping: int | None = None
        self._interrupt_requested = False
        self._pending_signals: dict[int, int] = {}
        self._maps: dict[int, list[MemoryRegion]] = {}
        self._fetched_images: dict[str, str] = {}
        self.running = False
        self.follow_forks = False
        #: The server reports births and deaths of threads as stops (``QThreadEvents``)
        #: and every general register in each stop. Only lindbgsrv is asked:
        #: gdbserver 13 crashes (SIGSEGV) when threads come and go with them on.
        self._thread_events = link.features.get("lindbg-stops") is True
        #: lindbgsrv steps over its breakpoints itself when a thread resumes from one.
        self._server_steps_over = self._thread_events
        if self._thread_events and link.request(b"QThreadEvents:1") != b"OK":
            self._thread_events = False

    def __repr__(self) -> str:
        return f"<RemoteTarget {self.link.label} pids={list(self._processes)}>"

    @property
    def lost(self) -> str | None:
        return self.link.failure

    # --------------------------------------------------------------- helpers

    def _thread_text(self, pid: int, tid: int) -> bytes:
        return format_thread_id(pid if self._multiprocess else None, tid)

    def _process(self, pid: int) -> _Process:
        process = self._processes.get(pid)
        if process is None:
            raise InvalidOperationError(f"process {pid} is not debugged through {self.link.label}")
        return process

    def _pid_of(self, tid: int) -> int:
        pid = self._thread_pid.get(tid)
        if pid is None:
            raise InvalidOperationError(f"no thread {tid}")
        return pid

    def _check_stopped(self, what: str) -> None:
        if self.running:
            raise InvalidOperationError(f"the target is running: cannot {what}")

    def _select(self, pid: int, tid: int | None = None) -> None:
        """Point the server's ``Hg`` at ``tid`` (or any thread of ``pid``)."""
        if tid is None:
            if self._selected is not None and self._selected[0] == pid:
                return
            threads = self._process(pid).threads
            tid = threads[0] if threads else pid
        if self._selected == (pid, tid):
            return
        reply = self.link.request(b"Hg" + self._thread_text(pid, tid))
        if reply != b"OK":
            raise TargetAccessError(
                f"{self.link.label}: cannot select thread {tid} (the server answered {reply[:20]!r})",
                pid,
                tid,
            )
        self._selected = (pid, tid)

    def _fetcher(self, pid: int) -> Callable[[int, int], bytes]:
        def fetch(address: int, size: int) -> bytes:
            self._check_stopped(f"read the memory of process {pid}")
            self._select(pid)
            return self.link.read_memory(address, size)

        return fetch

    def _forget_stop(self) -> None:
        """The target runs: every register and byte read so far may change."""
        self._registers.clear()
        self._maps.clear()
        for process in self._processes.values():
            process.memory.clear()

    # --------------------------------------------------------------- structure

    def process_ids(self) -> list[int]:
        return list(self._processes)

    def thread_ids(self, pid: int) -> list[int]:
        return list(self._process(pid).threads)

    def executable(self, pid: int) -> str:
        process = self._process(pid)
        if process.executable is None:
            try:
                data = self.link.read_object("exec-file", f"{pid:x}")
                process.executable = os.fsdecode(data)
            except RspLinkError as error:
                if isinstance(error, LinkLostError):
                    raise
                process.executable = ""
        return process.executable

    def auxv(self, pid: int) -> dict[int, int]:
        self._select(pid)
        try:
            data = self.link.read_object("auxv")
        except (RemoteError, UnsupportedPacketError) as error:
            raise OSError(f"cannot read the auxiliary vector of process {pid}: {error}") from error
        pairs = memoryview(data)[: len(data) // 16 * 16].cast("Q")
        return {pairs[i]: pairs[i + 1] for i in range(0, len(pairs), 2) if pairs[i]}

    def memory_map(self, pid: int) -> list[MemoryRegion]:
        self._process(pid)
        found = self._maps.get(pid)
        if found is None:
            try:
                text = self.link.file_read(f"/proc/{pid}/maps").decode("utf-8", "surrogateescape")
            except (RemoteFileError, UnsupportedPacketError) as error:
                raise TargetAccessError(f"cannot read /proc/{pid}/maps: {error}", pid) from error
            found = self._maps[pid] = [_region(line) for line in text.splitlines() if line.strip()]
        return found

    def mapping_path_at(self, pid: int, address: int) -> str:
        try:
            regions = self.memory_map(pid)
        except TargetAccessError:
            return ""
        for region in regions:
            if region.start <= address < region.end:
                return region.path
        return ""

    def _status_fields(self, pid: int, tid: int | None = None) -> dict[str, str]:
        path = f"/proc/{pid}/status" if tid is None else f"/proc/{pid}/task/{tid}/status"
        try:
            text = self.link.file_read(path).decode("utf-8", "replace")
        except (RemoteFileError, UnsupportedPacketError) as error:
            raise TargetAccessError(f"cannot read {path}: {error}", pid, tid) from error
        fields: dict[str, str] = {}
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep:
                fields[name] = value.strip()
        return fields

    def signal_state(self, pid: int, tid: int) -> SignalState:
        fields = self._status_fields(pid, tid)
        return SignalState.from_status(fields)

    def delivery_kills(self, pid: int, signo: int) -> bool:
        if not is_fatal_by_default(signo):
            return False
        try:
            fields = self._status_fields(pid)
        except TargetAccessError:
            return True
        bit = 1 << (signo - 1)
        try:
            handled = int(fields.get("SigCgt", "0"), 16) | int(fields.get("SigIgn", "0"), 16)
        except ValueError:
            return True
        return not handled & bit

    # ------------------------------------------------------------------ memory

    def memory_reader(self, pid: int) -> Callable[[int, int], bytes]:
        memory = self._process(pid).memory

        def read(address: int, size: int) -> bytes:
            try:
                return memory.read(address, size)
            except MemoryAccessError:
                return b""

        return read

    def read_memory(self, pid: int, address: int, size: int) -> bytes:
        data = self._process(pid).memory.read(address, size)
        if len(data) < size:
            raise MemoryAccessError(
                f"cannot read memory at {address + len(data):#x} in process {pid}", address + len(data), pid
            )
        return data

    def read_memory_into(self, pid: int, address: int, buffer: bytearray | memoryview) -> None:
        view = memoryview(buffer).cast("B")
        view[:] = self.read_memory(pid, address, len(view))

    def write_memory(self, pid: int, address: int, data: bytes) -> None:
        self._check_stopped(f"write the memory of process {pid}")
        process = self._process(pid)
        self._select(pid)
        try:
            self.link.write_memory(address, bytes(data))
        finally:
            process.memory.written(address, len(data))

    # --------------------------------------------------------------- registers

    def _state(self, tid: int, *, whole: bool = False) -> _Registers:
        """``tid``'s registers of this stop; ``whole``: the FP/vector ones too
        (a ``g`` even when the stop reply gave every general register)."""
        self._check_stopped(f"read the registers of thread {tid}")
        pid = self._pid_of(tid)
        state = self._registers.get(tid)
        if state is None:
            state = self._registers[tid] = _Registers()
        if state.expedited is not None:
            self._expand(state)
        if not state.whole or (whole and state.fxsave is None):
            self._select(pid, tid)
            values = self.link.read_registers()
            fxsave = bytearray(512)
            try:
                state.extras = x86_64_gdb.decode_g(values, state.regs, fxsave, self.link.layout)
            except ValueError as error:
                message = f"{self.link.label}: bad registers of thread {tid}: {error}"
                raise TargetAccessError(message, pid, tid) from error
            state.fxsave = fxsave
            state.whole = True
        return state

    def general_registers(self, tid: int) -> UserRegs:
        return self._state(tid).regs

    def get_register(self, tid: int, name: str) -> int:
        if name == "rip" and not self.running:
            known = self._known_rip(tid)  # expedited in every stop reply
            if known >= 0:
                return known
        state = self._state(tid)

        def fxsave() -> bytes | None:
            area = self._state(tid, whole=True).fxsave
            return bytes(area) if area is not None else None

        def xstate() -> bytes | None:
            return _xstate(self._state(tid, whole=True))

        return register_state.read_state(name, state.regs, fxsave, xstate)

    def set_register(self, tid: int, name: str, value: int) -> None:
        state = self._state(tid)
        before = UserRegs.from_buffer_copy(state.regs)
        register_state.write(name, state.regs, value)
        layout = self.link.layout
        self._select(self._pid_of(tid), tid)
        for field_name in _USER_REGISTERS:
            if getattr(before, field_name) == getattr(state.regs, field_name):
                continue
            register = layout.get(field_name)
            encoded = x86_64_gdb.read_register(field_name, state.regs, None, layout)
            if register is None or encoded is None:
                ctypes.memmove(ctypes.addressof(state.regs), ctypes.addressof(before), ctypes.sizeof(before))
                raise InvalidOperationError(f"the server has no register {field_name}")
            self.link.write_register(register.regnum, encoded)

    def float_state(self, tid: int) -> bytes | None:
        fxsave = self._state(tid, whole=True).fxsave
        return bytes(fxsave) if fxsave is not None else None

    # -------------------------------------------------------------- processes

    def launch(
        self,
        argv: list[str],
        env: dict[str, str] | None,
        cwd: str | None,
        stdio: tuple[int | None, int | None, int | None] = (None, None, None),
    ) -> int:
        if any(fd is not None for fd in stdio):
            raise InvalidOperationError(
                "a process server's program uses the server's terminal: it cannot take this one's files"
            )
        link = self.link
        with contextlib.suppress(RspLinkError):
            link.request(b"QStartupWithShell:0")  # argv as given, not re-split by a shell
        if env is not None:
            self._expect_ok(b"QEnvironmentReset", "clear the environment")
            for key, value in env.items():
                self._expect_ok(
                    b"QEnvironmentHexEncoded:" + hex_encode(os.fsencode(f"{key}={value}")),
                    "set the environment",
                )
        if cwd is not None:
            self._expect_ok(b"QSetWorkingDir:" + hex_encode(os.fsencode(cwd)), "set the working directory")
        payload = b"vRun;" + b";".join(hex_encode(os.fsencode(arg)) for arg in argv)
        reply = link.request(payload, timeout=30.0)
        stop = self._parse(reply, f"start {argv[0]!r}")
        if stop.kind != "signal" or stop.tid is None:
            raise TargetAccessError(
                f"{link.label}: cannot start {argv[0]!r} (the server answered {reply[:40]!r})"
            )
        pid = stop.pid if stop.pid is not None else stop.tid
        self._adopt(pid, attached=False)
        self._record_stop(stop, pid, stop.tid)
        return pid

    def _expect_ok(self, payload: bytes, what: str) -> None:
        reply = self.link.request(payload)
        if reply != b"OK":
            raise TargetAccessError(f"{self.link.label}: cannot {what} (the server answered {reply[:20]!r})")

    def _parse(self, reply: bytes, what: str) -> StopReply:
        if reply.startswith(b"E"):
            raise TargetAccessError(f"{self.link.label}: cannot {what} (the server answered {reply[:20]!r})")
        try:
            return parse_stop(reply)
        except RspLinkError as error:
            raise TargetAccessError(f"{self.link.label}: cannot {what}: {error}") from error

    def attach(self, pid: int) -> int:
        if pid in self._processes:
            raise InvalidOperationError(f"process {pid} is already debugged")
        held = self.held_processes()
        if pid in held:
            # the server kept it stopped for us (a client that left, or we reconnect)
            self._adopt(pid, attached=True, threads=held[pid])
            return pid
        reply = self.link.request(b"vAttach;%x" % pid, timeout=30.0)
        stop = self._parse(reply, f"attach to process {pid}")
        if stop.kind != "signal":
            raise TargetAccessError(f"{self.link.label}: cannot attach to process {pid}: it is gone", pid)
        self._adopt(pid, attached=True)
        self._record_stop(stop, pid, stop.tid if stop.tid is not None else pid)
        return pid

    def held_processes(self) -> dict[int, list[int]]:
        """The processes the server holds now, with their threads (``qfThreadInfo``)."""
        found: dict[int, list[int]] = {}
        reply = self.link.request(b"qfThreadInfo")
        while reply.startswith(b"m"):
            for text in reply[1:].split(b","):
                if not text:
                    continue
                pid, tid = parse_thread_id(text)
                found.setdefault(pid if pid is not None else tid, []).append(tid)
            reply = self.link.request(b"qsThreadInfo")
        return found

    def _adopt(self, pid: int, *, attached: bool, threads: list[int] | None = None) -> None:
        process = _Process(pid, StopMemory(self._fetcher(pid)), attached=attached)
        self._processes[pid] = process
        for tid in threads if threads is not None else self.held_processes().get(pid, [pid]):
            self._add_thread(process, tid)
        if pid in process.threads:
            process.threads.remove(pid)
            process.threads.insert(0, pid)
        self._selected = None

    def _add_thread(self, process: _Process, tid: int) -> None:
        if tid not in process.threads:
            process.threads.append(tid)
        self._thread_pid[tid] = process.pid

    def _record_stop(self, stop: StopReply, pid: int, tid: int) -> None:
        """Keep what a stop reply told of the stopped thread's registers: all the
        general ones (lindbgsrv's ``lindbg-regs``) or the expedited few (decoded
        only when asked: a resumed breakpoint hit needs just the pc)."""
        self._selected = (pid, tid)
        if stop.general is not None and len(stop.general) == ctypes.sizeof(UserRegs):
            state = _Registers()
            state.regs = UserRegs.from_buffer_copy(stop.general)
            state.whole = True
            self._registers[tid] = state
        elif stop.registers:
            state = _Registers()
            state.expedited = stop.registers
            self._registers[tid] = state

    def _expand(self, state: _Registers) -> None:
        """Decode expedited registers into ``state.regs`` (never all of them: a
        ``g`` fills the rest)."""
        expedited, state.expedited = state.expedited, None
        for regnum, value in (expedited or {}).items():
            register = self.link.layout.by_regnum(regnum)
            if register is not None and register.name in _USER_REGISTERS and len(value) == register.size:
                setattr(state.regs, register.name, int.from_bytes(value, "little"))

    # -------------------------------------------------------------- execution

    def wake(self) -> None:
        self.link.wake()

    def request_interrupt(self) -> None:
        self._interrupt_requested = True
        if self.running and not self._ready:
            self.link.interrupt()

    @property
    def interrupt_requested(self) -> bool:
        return self._interrupt_requested

    def set_pending_signal(self, tid: int, signo: int) -> None:
        self._pid_of(tid)
        self._pending_signals[tid] = signo

    def resume(self, mode: ResumeMode, tid: int, signal: int) -> None:
        if self._ready:
            self.running = True
            return  # report what is queued before anything runs again
        if signal:
            self._pending_signals[tid] = signal
        if self._interrupt_requested and tid in self._thread_pid:
            self._interrupt_requested = False
            self.running = True
            self._ready.append(TargetEvent(EventKind.INTERRUPT, self._thread_pid[tid], tid))
            return
        if not self._server_steps_over and tid in self._thread_pid:
            site = self._sites.get((self._thread_pid[tid], self._known_rip(tid)))
            if site is not None and self._step_off(site, tid, mode):
                return
        actions = []
        if mode is ResumeMode.STEP:
            signo = self._pending_signals.pop(tid, 0)
            step = b"S%02x:" % gdb_signals.to_gdb(signo) if signo else b"s:"
            actions.append(step + self._thread_ref(tid))
            self._stepping = tid
        else:
            for thread, signo in self._pending_signals.items():
                if thread in self._thread_pid:
                    actions.append(b"C%02x:" % gdb_signals.to_gdb(signo) + self._thread_ref(thread))
            self._pending_signals.clear()
            actions.append(b"c")
            self._stepping = None
        self._forget_stop()
        self.link.resume(b"vCont;" + b";".join(actions))
        self.running = True

    def _known_rip(self, tid: int) -> int:
        """``tid``'s pc if this stop told it (the event thread's is expedited), else -1."""
        state = self._registers.get(tid)
        if state is None:
            return -1
        if state.expedited is not None:
            raw = state.expedited.get(_RIP)
            return int.from_bytes(raw, "little") if raw is not None and len(raw) == 8 else -1
        return int(state.regs.rip)

    def _step_off(self, site: RemoteSite, tid: int, mode: ResumeMode) -> bool:
        """Step ``tid`` off the breakpoint it sits on, as gdb does with gdbserver
        (which re-reports a breakpoint of the client's at the pc it resumes from):
        remove it, step that thread alone, put it back. True when that step is
        what the engine hears of next (a STEP asked for, or anything else that
        happened): it is queued and the target counts as running."""
        pid = site.pid
        self._point(0, pid, site.address, 1, insert=False)
        signo = self._pending_signals.pop(tid, 0)
        step = b"S%02x:" % gdb_signals.to_gdb(signo) if signo else b"s:"
        self._forget_stop()
        self._stepping = tid
        try:
            self.link.resume(b"vCont;" + step + self._thread_ref(tid))
            reply = self.link.wait_stop(time.monotonic() + _STOP_TIMEOUT)
            if reply is None:  # a blocking system call: break it off
                self.link.interrupt()
                reply = self.link.wait_stop(time.monotonic() + _STOP_TIMEOUT)
            if reply is None:
                raise TargetAccessError(f"{self.link.label}: a step of thread {tid} did not end", pid, tid)
        finally:
            if pid in self._processes and (pid, site.address) in self._sites and not self.link.closed:
                self._point(0, pid, site.address, 1, insert=True)
        event = self._on_stop(reply, poll=False)
        if event is None or (event.kind is EventKind.STEP and mode is ResumeMode.CONTINUE):
            return False
        self._ready.append(event)
        self.running = True
        return True

    def _thread_ref(self, tid: int) -> bytes:
        return self._thread_text(self._thread_pid[tid], tid)

    def wait_event(self, deadline: float | None) -> TargetEvent | None:
        if self._ready:
            event = self._ready.popleft()
            if not self._ready:
                self.running = False
            return event
        if not self.running:
            return None
        while True:
            reply = self.link.wait_stop(deadline)
            if reply is None:
                return None
            found = self._on_stop(reply)
            if found is not None:
                self.running = bool(self._ready)
                return found
            # nothing the engine hears of: the target runs on as it was
            if self._stepping is not None and self._stepping in self._thread_pid:
                self.link.resume(b"vCont;s:" + self._thread_ref(self._stepping))
            else:
                self._stepping = None
                self.link.resume(b"vCont;c")

    def _on_stop(self, reply: bytes, *, poll: bool = True) -> TargetEvent | None:
        try:
            stop = parse_stop(reply)
        except RspLinkError as error:
            raise TargetAccessError(f"{self.link.label}: {error}") from error
        if stop.kind == "output":
            return None
        if stop.kind in ("exited", "killed"):
            return self._on_exit(stop)
        if stop.kind == "thread-exited":
            tid = stop.tid or 0
            pid = self._thread_pid.pop(tid, stop.pid or 0)
            process = self._processes.get(pid)
            if process is not None and tid in process.threads:
                process.threads.remove(tid)
            self._forget_stop()
            return TargetEvent(EventKind.EXIT_THREAD, pid, tid, code=stop.exit_code or 0)
        if stop.kind != "signal":
            raise TargetAccessError(f"{self.link.label}: unexpected stop reply {reply[:40]!r}")
        tid = stop.tid if stop.tid is not None and stop.tid > 0 else self._stepping or 0
        pid = stop.pid if stop.pid is not None and stop.pid > 0 else self._thread_pid.get(tid, 0)
        process = self._processes.get(pid)
        if process is None:
            raise TargetAccessError(f"{self.link.label}: a stop of unknown process {pid}")
        self._forget_stop()
        known = tid in self._thread_pid
        self._record_stop(stop, pid, tid)
        if stop.reason == "create":
            if known:
                return None  # already reported: it stopped before its birth was told
            self._add_thread(process, tid)
            return TargetEvent(EventKind.CREATE_THREAD, pid, tid, new_id=tid)
        event = self._classify(stop, pid, tid)
        if event is None:
            return None
        if not self._thread_events:
            return self._with_thread_changes(event) if poll else event
        if known:
            return event
        # a thread whose birth the server has not told yet: the birth comes first
        self._add_thread(process, tid)
        self._ready.append(event)
        return TargetEvent(EventKind.CREATE_THREAD, pid, tid, new_id=tid)

    def _with_thread_changes(self, event: TargetEvent) -> TargetEvent:
        """``event``, after the births and deaths of threads that the server's list
        shows since the last stop (a server without thread events)."""
        held = self.held_processes()
        changes: list[TargetEvent] = []
        for pid, process in self._processes.items():
            now = held.get(pid, [])
            for tid in now:
                if tid not in self._thread_pid:
                    self._add_thread(process, tid)
                    changes.append(TargetEvent(EventKind.CREATE_THREAD, pid, tid, new_id=tid))
            for tid in [tid for tid in process.threads if tid not in now and tid != event.tid]:
                process.threads.remove(tid)
                self._thread_pid.pop(tid, None)
                changes.append(TargetEvent(EventKind.EXIT_THREAD, pid, tid))
        if not changes:
            return event
        self._ready.extend(changes[1:])
        self._ready.append(event)
        return changes[0]

    def _classify(self, stop: StopReply, pid: int, tid: int) -> TargetEvent | None:
        """The event a stop reply is; None for a hit of a breakpoint removed since
        (the server reported it late: nothing ran, the target resumes as it was)."""
        stepping, self._stepping = self._stepping, None
        rip = self._expedited_rip(stop, tid)
        signal_number = stop.signal
        if self._interrupt_requested and signal_number in (_GDB_SIGINT, 0):
            self._interrupt_requested = False
            return TargetEvent(EventKind.INTERRUPT, pid, tid, address=rip)
        if signal_number == _GDB_SIGTRAP:
            reason = stop.reason
            if reason == "swbreak" or (reason is None and stepping is None):
                site = self._sites.get((pid, rip))
                if site is not None:
                    return TargetEvent(EventKind.BREAKPOINT, pid, tid, address=rip, sites=site.owners)
            if reason in ("hwbreak", "watch", "rwatch", "awatch"):
                slot = self._slot_hit(pid, reason, stop.reason_value, rip)
                if slot is not None:
                    return TargetEvent(
                        EventKind.BREAKPOINT, pid, tid, address=slot.address, sites=slot.owners
                    )
            if stepping is not None and reason is None:
                return TargetEvent(EventKind.STEP, pid, tid, address=rip)
            if reason in ("swbreak", "hwbreak", "watch", "rwatch", "awatch"):
                self._stepping = stepping  # resumed as it was (a step is stepped again)
                return None
        host = gdb_signals.from_gdb(signal_number)
        return TargetEvent(EventKind.SIGNAL, pid, tid, signal=host, address=rip)

    def _expedited_rip(self, stop: StopReply, tid: int) -> int:
        raw = stop.registers.get(_RIP)
        if raw is not None and len(raw) == 8:
            return int.from_bytes(raw, "little")
        try:
            return self.get_register(tid, "rip")
        except LindbgError:
            return 0

    def _slot_hit(self, pid: int, reason: str, value: bytes | None, rip: int) -> RemoteSlot | None:
        slots = self._slots.get(pid, [])
        if reason == "hwbreak":
            return next((s for s in slots if s.kind is WatchKind.EXECUTE and s.address == rip), None)
        try:
            address = int(value or b"", 16)
        except ValueError:
            address = -1
        watches = [s for s in slots if s.kind is not WatchKind.EXECUTE]
        for slot in watches:
            if slot.address <= address < slot.address + slot.size:
                return slot
        return watches[0] if len(watches) == 1 else None

    def _on_exit(self, stop: StopReply) -> TargetEvent:
        pid = self._exit_pid(stop)
        self._stepping = None
        self._forget_process(pid)
        if stop.kind == "killed":
            host = gdb_signals.from_gdb(stop.signal)
            return TargetEvent(EventKind.PROCESS_GONE, pid, pid, signal=host, code=128 + host)
        return TargetEvent(EventKind.PROCESS_GONE, pid, pid, code=(stop.exit_code or 0) & 0xFF)

    def _exit_pid(self, stop: StopReply) -> int:
        """The process a W/X reply is about (the only one when it names none)."""
        return stop.pid if stop.pid is not None else next(iter(self._processes), 0)

    def _forget_process(self, pid: int) -> None:
        process = self._processes.pop(pid, None)
        if process is None:
            return
        for tid in process.threads:
            self._thread_pid.pop(tid, None)
            self._registers.pop(tid, None)
            self._pending_signals.pop(tid, None)
        for key in [key for key in self._sites if key[0] == pid]:
            del self._sites[key]
        self._slots.pop(pid, None)
        self._maps.pop(pid, None)
        if self._selected is not None and self._selected[0] == pid:
            self._selected = None

    # ------------------------------------------------------------ breakpoints

    def _point(self, kind: int, pid: int, address: int, length: int, *, insert: bool) -> bytes:
        self._check_stopped("change breakpoints")
        self._select(pid)
        packet = b"%s%d,%x,%x" % (b"Z" if insert else b"z", kind, address, length)
        return self.link.request(packet)

    def claim_site(self, pid: int, address: int, owner: Any) -> RemoteSite:
        self._process(pid)
        site = self._sites.get((pid, address))
        if site is None:
            reply = self._point(0, pid, address, 1, insert=True)
            if reply != b"OK":
                why = (
                    "the server has no software breakpoints"
                    if not reply
                    else f"the server answered {reply!r}"
                )
                raise MemoryAccessError(f"cannot set a breakpoint at {address:#x} ({why})", address, pid)
            site = self._sites[(pid, address)] = RemoteSite(pid, address)
        site.owners.append(owner)
        return site

    def release_site(self, pid: int, address: int, owner: Any) -> None:
        site = self._sites.get((pid, address))
        if site is None:
            return
        if owner in site.owners:
            site.owners.remove(owner)
        if not site.owners:
            del self._sites[(pid, address)]
            if pid in self._processes and not self.link.closed:
                self._point(0, pid, address, 1, insert=False)

    def breakpoint_under(self, tid: int) -> list[Any] | None:
        pid = self._pid_of(tid)
        if not any(key[0] == pid for key in self._sites):
            return None
        site = self._sites.get((pid, self.get_register(tid, "rip")))
        return site.owners if site is not None else None

    def set_hardware(self, pid: int, address: int, kind: WatchKind, size: int) -> RemoteSlot:
        self._process(pid)
        slots = self._slots.setdefault(pid, [])
        if len(slots) >= x86_64.DEBUG_REGISTER_SLOTS:
            raise InvalidOperationError("every debug register is in use")
        reply = self._point(_Z_TYPE[kind], pid, address, size, insert=True)
        if reply != b"OK":
            why = "it has no hardware breakpoints" if not reply else f"it answered {reply!r}"
            raise InvalidOperationError(f"the server cannot watch {address:#x} ({why})")
        slot = RemoteSlot(pid, address, kind, size)
        slots.append(slot)
        return slot

    def clear_hardware(self, pid: int, slot: Any) -> None:
        slots = self._slots.get(pid, [])
        if slot in slots:
            slots.remove(slot)
            if pid in self._processes and not self.link.closed:
                self._point(_Z_TYPE[slot.kind], pid, slot.address, slot.size, insert=False)

    # ---------------------------------------------------------------- endings

    def _stop_running(self) -> None:
        """Stop a running target and swallow what it reports (for detach/kill)."""
        if not self.running:
            return
        self._ready.clear()
        if self.link.running:
            self.link.interrupt()
            deadline = time.monotonic() + _STOP_TIMEOUT
            while self.link.running:
                reply = self.link.wait_stop(deadline)
                if reply is None:
                    raise TargetAccessError(
                        f"{self.link.label}: the target did not stop within {_STOP_TIMEOUT:g} s"
                    )
                with contextlib.suppress(LindbgError):
                    stop = parse_stop(reply)
                    if stop.kind in ("exited", "killed"):
                        self._forget_process(self._exit_pid(stop))
        self.running = False
        self._interrupt_requested = False
        self._forget_stop()

    def _remove_points(self, pid: int) -> None:
        for key, site in list(self._sites.items()):
            if key[0] == pid:
                del self._sites[key]
                with contextlib.suppress(RspLinkError):
                    self._point(0, pid, site.address, 1, insert=False)
        for slot in self._slots.pop(pid, []):
            with contextlib.suppress(RspLinkError):
                self._point(_Z_TYPE[slot.kind], pid, slot.address, slot.size, insert=False)

    def detach_process(self, pid: int) -> None:
        self._stop_running()
        self._process(pid)
        self._remove_points(pid)
        payload = b"D;%x" % pid if self._multiprocess else b"D"
        reply = self.link.request(payload)
        self._forget_process(pid)
        if reply != b"OK":
            raise TargetAccessError(
                f"{self.link.label}: cannot detach from process {pid} ({reply[:20]!r})", pid
            )

    def kill_process(self, pid: int) -> int:
        self._stop_running()
        self._process(pid)
        reply = self.link.request(b"vKill;%x" % pid)
        self._forget_process(pid)
        if reply != b"OK":
            raise TargetAccessError(f"{self.link.label}: cannot kill process {pid} ({reply[:20]!r})", pid)
        return 128 + 9

    def detach_all(self) -> None:
        if self._let_go_if_lost():
            return
        self._stop_running()
        for pid in list(self._processes):
            self.detach_process(pid)

    def terminate_all(self) -> dict[int, int]:
        if self._let_go_if_lost():
            return {}
        self._stop_running()
        return {pid: self.kill_process(pid) for pid in list(self._processes)}

    def _let_go_if_lost(self) -> bool:
        """With the link gone there is nothing to ask: forget every process (the
        server, if it lives, keeps them stopped for the next client)."""
        if not self.link.closed:
            return False
        for pid in list(self._processes):
            self._forget_process(pid)
        self._ready.clear()
        self.running = False
        return True

    # ---------------------------------------------------------------- files

    def image_file(self, pid: int, path: str, build_id: str) -> str:
        """A local file with the image the server's process maps from ``path``: the
        same path here when its build-id matches (or neither has one), else a copy
        fetched through host I/O once per link (deleted by ``close``)."""
        if not path or path.startswith("["):
            return path
        if _local_matches(path, build_id):
            return path
        key = f"{build_id}:{path}"
        fetched = self._fetched_images.get(key)
        if fetched is None:
            try:
                data = self.link.file_read(path, pid=pid)
            except (RemoteFileError, UnsupportedPacketError):
                return path  # what is here is better than nothing
            handle, fetched = tempfile.mkstemp(prefix="lindbg-remote-", suffix="-" + os.path.basename(path))
            with os.fdopen(handle, "wb") as f:
                f.write(data)
            self._fetched_images[key] = fetched
        return fetched

    def close(self) -> None:
        """Delete the images fetched for symbols."""
        for fetched in self._fetched_images.values():
            with contextlib.suppress(OSError):
                os.unlink(fetched)
        self._fetched_images.clear()


def _local_matches(path: str, build_id: str) -> bool:
    from lindbg.symbols.elffile import ElfImage

    if not os.path.isfile(path):
        return False
    if not build_id:
        return True
    try:
        local = ElfImage(path).build_id
    except LindbgError:
        return False
    return local is not None and local.hex() == build_id


def _region(line: str) -> MemoryRegion:
    fields = line.split(maxsplit=5)
    start, _, end = fields[0].partition("-")
    return MemoryRegion(
        int(start, 16), int(end, 16), fields[1], int(fields[2], 16), fields[5] if len(fields) == 6 else ""
    )


def _xstate(state: _Registers) -> bytes | None:
    """An XSAVE area holding what the ``g`` reply gave of the AVX upper halves."""
    if not any(name.startswith("ymm") for name in state.extras):
        return None
    area = bytearray(x86_64.XSAVE_YMM_HI_OFFSET + 16 * 16)
    for index in range(16):
        value = state.extras.get(f"ymm{index}h")
        if value is not None and len(value) == 16:
            start = x86_64.XSAVE_YMM_HI_OFFSET + 16 * index
            area[start : start + 16] = value
    return bytes(area)
