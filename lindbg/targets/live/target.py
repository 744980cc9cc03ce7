"""Live processes on ptrace: the all-stop model.

Strategy. Every tracee is *seized* (PTRACE_SEIZE), launched ones too (the
child stops itself before execve and the engine thread seizes it), so that
stopping threads uses PTRACE_INTERRUPT and never queues a SIGSTOP that could
leak into the program after a detach. When one thread reports an event, every
other running thread is interrupted and waited for before the event is
returned (all-stop); events those threads report meanwhile are kept in
``_deferred`` and returned by later ``wait_event`` calls without resuming,
except breakpoint hits, which are rewound (the thread re-hits the int3 when it
runs again, so nothing is lost if the breakpoint is removed in between).

The hot path is a breakpoint hit on a thread followed by ``resume``: one
waitpid, one GETREGS, then the displaced instruction is emulated (registers
and at most one stack write) and the thread continues: one ptrace stop per hit.
Instructions that cannot be emulated fall back to restore, single-step,
re-insert.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lindbg.arch import register_state, x86_64
from lindbg.arch.x86_64 import BREAKPOINT_INSTRUCTION, UserRegs
from lindbg.arch.x86_64_displaced import DisplacedFault, DisplacedInstruction, plan_displaced
from lindbg.errors import InvalidOperationError, MemoryAccessError, TargetAccessError
from lindbg.os.linux import procfs
from lindbg.os.linux import ptrace as pt
from lindbg.os.linux.signals import is_fatal_by_default
from lindbg.targets.base import (
    Capability,
    EventKind,
    MemoryRegion,
    ReadInto,
    ResumeMode,
    SignalState,
    Target,
    TargetEvent,
    ThreadInfo,
)
from lindbg.targets.live.doorbell import Doorbell
from lindbg.targets.live.state import HardwareSlot, LiveProcess, LiveThread, Site, ThreadState

if TYPE_CHECKING:
    from lindbg.formats.corewriter import ProcessImage

_BASE_OPTIONS = (
    pt.PTRACE_O_TRACECLONE
    | pt.PTRACE_O_TRACEFORK
    | pt.PTRACE_O_TRACEVFORK
    | pt.PTRACE_O_TRACEEXEC
    | pt.PTRACE_O_TRACEEXIT
)
#: Only this thread's children and tracees: another engine in the same
#: process (another thread) keeps its own.
_WAIT_ALL = pt.WALL | pt.WNOTHREAD
_STOP_SIGNALS = frozenset(int(s) for s in (signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU))
_INT3 = BREAKPOINT_INSTRUCTION
#: The most PTRACE_PEEKDATA reads one fallback read may take (64 KiB of words).
_PEEK_LIMIT = 1 << 16
#: Bytes asked for with PTRACE_GETREGSET(NT_X86_XSTATE) (the kernel trims the reply).
_XSTATE_SIZE = 4096
#: How long terminating a process may take before the engine gives up on it.
_KILL_TIMEOUT = 10.0
#: The wait status of a completed single step: stopped by a plain SIGTRAP.
_STEPPED = (pt.SIGTRAP << 8) | 0x7F
#: Steps of a range step taken between two looks at the deadline and the wake flag.
_RANGE_BATCH = 256


class LiveTarget(Target):
    """Every process the engine debugs through ptrace (one per engine).

    Must be used from one thread only: the thread that created it is the
    tracer of every process it launches or attaches (``wake`` and
    ``restore_breakpoint_bytes`` excepted).
    """

    kind = "live"
    capabilities = (
        Capability.RUN
        | Capability.WRITE
        | Capability.BREAKPOINTS
        | Capability.HARDWARE_BREAKPOINTS
        | Capability.LAUNCH
        | Capability.ATTACH
        | Capability.CORE_IMAGE
        | Capability.OPEN_FILES
    )

    def __init__(self) -> None:
        self.processes: dict[int, LiveProcess] = {}
        self._threads: dict[int, LiveThread] = {}
        self._deferred: deque[tuple[int, int]] = deque()
        #: Events already decided (a finished single step) waiting to be reported.
        self._ready: deque[TargetEvent] = deque()
        #: A resume() postponed until the deferred statuses are reported.
        self._postponed: tuple[ResumeMode, int, int] | None = None
        #: Statuses of tids whose creation event has not been seen yet.
        self._early: dict[int, int] = {}
        #: True between resume() and the next reported event.
        self.running = False
        self._interrupt_requested = False
        #: Set when a followed vfork child should not be followed (ONLY_THIS_PROCESS).
        self.follow_forks = True
        self._tracer_tid = pt.gettid()
        #: A child of the engine thread that we do not debug has exited and its
        #: owner has not reaped it: waitpid(-1) would steal its status.
        self._foreign_zombie = 0
        #: Set by ``wake`` (any thread); the next look at it makes wait_event return None.
        self._wake_pending = False
        self._doorbell = Doorbell(threading.get_ident(), lambda: self._wake_pending)
        #: The range step in progress (``step_range``): thread, [low, high).
        self._ranging: tuple[LiveThread, int, int] | None = None

    # ------------------------------------------------------------------ setup

    def launch(
        self,
        argv: list[str],
        env: dict[str, str] | None,
        cwd: str | None,
        stdio: tuple[int | None, int | None, int | None] = (None, None, None),
    ) -> int:
        """Start ``argv`` traced and stopped at its first instruction; return its pid.

        Raises:
            TargetAccessError: the program could not be started (message names it).
        """
        if not argv:
            raise InvalidOperationError("create_process: empty command line")
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        program = argv[0]
        environment = dict(os.environ) if env is None else env
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                os.close(read_end)
                for target_fd, fd in enumerate(stdio):
                    if fd is not None:
                        os.dup2(fd, target_fd)
                if cwd is not None:
                    os.chdir(cwd)
                os.kill(os.getpid(), signal.SIGSTOP)
                if "/" in program:
                    os.execve(program, argv, environment)
                os.execvpe(program, argv, environment)
            except OSError as error:
                os.write(write_end, f"{error.errno}".encode())
            os._exit(127)
        os.close(write_end)
        try:
            _, status = _wait_blocking(pid, pt.WUNTRACED)
            if not pt.is_stopped(status):
                raise TargetAccessError(f"cannot start '{program}': {_launch_failure(read_end)}", pid)
            pt.seize(pid, _BASE_OPTIONS | pt.PTRACE_O_EXITKILL)
            os.kill(pid, signal.SIGCONT)
            while True:
                _, status = _wait_blocking(pid, _WAIT_ALL)
                if not pt.is_stopped(status):
                    raise TargetAccessError(f"cannot start '{program}': {_launch_failure(read_end)}", pid)
                if pt.event_of(status) == pt.PTRACE_EVENT_EXEC:
                    break
                pt.cont(pid, 0)  # the group-stop trap and the SIGCONT stop
        finally:
            os.close(read_end)
        process = LiveProcess(pid, launched=True)
        self._add_process(process)
        self._add_thread(process, pid, ThreadState.STOPPED)
        return pid

    def attach(self, pid: int) -> int:
        """Seize every thread of ``pid`` and stop them all; return ``pid``.

        Raises:
            TargetAccessError: no such process, or ptrace refused (message says why).
        """
        if pid in self.processes:
            raise InvalidOperationError(f"process {pid} is already being debugged")
        if not procfs.process_exists(pid):
            raise TargetAccessError(f"cannot attach to process {pid}: no such process", pid)
        process = LiveProcess(pid, launched=False)
        seized: set[int] = set()
        try:
            while True:  # threads may be created while we attach
                fresh = [tid for tid in procfs.thread_ids(pid) if tid not in seized]
                if not fresh:
                    break
                for tid in fresh:
                    try:
                        pt.seize(tid, _BASE_OPTIONS)
                    except OSError as error:
                        if tid == pid:
                            raise TargetAccessError(
                                f"cannot attach to process {pid}: {error.strerror}", pid
                            ) from error
                        continue  # the thread exited meanwhile
                    seized.add(tid)
                    pt.interrupt(tid)
        except OSError as error:
            raise TargetAccessError(f"cannot attach to process {pid}: {error}", pid) from error
        process.parent_reaps = procfs.parent_pid(pid) == os.getpid()
        self._add_process(process)
        for tid in seized:
            thread = self._add_thread(process, tid, ThreadState.RUNNING)
            thread.interrupt_pending = True
        self._wait_until_stopped([self._threads[tid] for tid in seized])
        return pid

    def _add_process(self, process: LiveProcess) -> None:
        self.processes[process.pid] = process

    def _add_thread(self, process: LiveProcess, tid: int, state: ThreadState) -> LiveThread:
        thread = LiveThread(tid, process, state)
        process.threads[tid] = thread
        self._threads[tid] = thread
        early = self._early.pop(tid, None)
        if early is not None and state is ThreadState.NEW:
            thread.state = ThreadState.STOPPED  # its first stop came before its parent's event
        if process.dr7:
            self._apply_debug_registers_to(thread)
        return thread

    # --------------------------------------------------------------- queries

    def process_ids(self) -> list[int]:
        return list(self.processes)

    def thread_ids(self, pid: int) -> list[int]:
        return list(self._process(pid).threads)

    def _process(self, pid: int) -> LiveProcess:
        process = self.processes.get(pid)
        if process is None:
            raise InvalidOperationError(f"process {pid} is not being debugged")
        return process

    def _thread(self, tid: int) -> LiveThread:
        thread = self._threads.get(tid)
        if thread is None:
            raise InvalidOperationError(f"thread {tid} is not being debugged")
        return thread

    # ---------------------------------------------------------------- events

    def request_interrupt(self) -> None:
        """Stop the running target at the next ``wait_event`` (engine thread)."""
        self._interrupt_requested = True

    @property
    def interrupt_requested(self) -> bool:
        """A break-in is asked for and not yet delivered."""
        return self._interrupt_requested

    def wake(self) -> None:
        """Any thread: make the engine thread's ``wait_event`` return None soon."""
        self._wake_pending = True
        self._doorbell.ring()

    def wait_event(self, deadline: float | None = None) -> TargetEvent | None:
        doorbell = self._doorbell
        doorbell.set_deadline(deadline)
        doorbell.blocked = True
        try:
            return self._next_event(deadline)
        finally:
            doorbell.blocked = False

    def _next_event(self, deadline: float | None) -> TargetEvent | None:
        while True:
            if self._ready:
                self._stop_all()
                return self._ready.popleft()
            if self._deferred:
                tid, status = self._deferred.popleft()
                event = self._on_status(tid, status)
                if event is not None:
                    self._postponed = None
                    self._stop_all()
                    return event
                continue
            if self._postponed is not None:
                mode, tid, sig = self._postponed
                self._postponed = None
                self.resume(mode, tid, sig)
                continue
            if self._interrupt_requested:
                self._interrupt_requested = False
                if self.running:
                    event = self._break_in()
                    if event is not None:
                        return event
                    continue
            if not self._threads:
                return None
            if self._wake_pending:
                self._wake_pending = False
                return None
            if self._ranging is not None:
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                thread, low, high = self._ranging
                if thread.tid not in self._threads or self._step_thread(thread, low, high, _RANGE_BATCH):
                    self._ranging = None
                continue
            try:
                if self._foreign_zombie:
                    found = self._poll_own()
                    if found is None:
                        return None
                    tid, status = found
                else:
                    tid, status = self._wait_own()
                    if tid == 0:
                        continue
            except InterruptedError:
                self._wake_pending = False
                return None
            except ChildProcessError:
                return self._all_gone()
            event = self._on_status(tid, status)
            if event is not None:
                self._stop_all()
                return event

    def _wait_own(self) -> tuple[int, int]:
        """Block for the next status of one of our tracees; (0, 0) to retry.

        The engine thread may have children of its own that the embedding
        program will reap: waitpid(-1) would steal their exit status. So the
        next status is only peeked at (WNOWAIT) and consumed if it is ours. A
        ptrace stop is always ours (this thread is the only tracer waiting here);
        job-control stops of other children are not reported without WSTOPPED.
        """
        pid, code, status = pt.peek_child(pt.P_ALL, 0, pt.WEXITED | _WAIT_ALL)
        if code == pt.CLD_TRAPPED:
            return pt.waitpid(pid, _WAIT_ALL)
        thread = self._threads.get(pid)
        if thread is None:
            self._foreign_zombie = pid
            return 0, 0
        if thread.process.parent_reaps and pid == thread.process.pid:
            self._foreign_zombie = pid  # report its end, leave the zombie to its parent
            return pid, status
        return pt.waitpid(pid, _WAIT_ALL)

    def _poll_own(self) -> tuple[int, int] | None:
        """One round over our tids without blocking, while a foreign zombie exists."""
        for tid in list(self._threads):
            found = pt.waitpid(tid, _WAIT_ALL | pt.WNOHANG)
            if found[0]:
                return found
        try:
            pid, _, _ = pt.peek_child(pt.P_PID, self._foreign_zombie, pt.WEXITED | pt.WNOHANG | _WAIT_ALL)
        except ChildProcessError:
            pid = 0
        if pid == 0:
            self._foreign_zombie = 0  # its owner reaped it: block again
            return None
        time.sleep(0.001)
        return None

    def _all_gone(self) -> TargetEvent | None:
        """waitpid says there is nothing left: report every process as gone."""
        for pid in list(self.processes):
            return self._process_gone(self.processes[pid], 0)
        return None

    def _break_in(self) -> TargetEvent | None:
        first = next((t for t in self._threads.values() if t.state is not ThreadState.NEW), None)
        if first is None:
            return None
        if self._ranging is not None:
            first = self._ranging[0]  # the stepped thread is where the break-in is
            self._ranging = None
        self._stop_all()
        self.running = False
        return TargetEvent(EventKind.INTERRUPT, first.process.pid, first.tid)

    def _on_status(self, tid: int, status: int) -> TargetEvent | None:
        """Turn one raw wait status into an event, or handle it silently (None)."""
        thread = self._threads.get(tid)
        if thread is None:
            self._early[tid] = status  # a new thread/process ahead of its creation event
            return None
        process = thread.process
        if status == _STEPPED and not process.hidden and thread.state is ThreadState.RUNNING:
            # the hot path: a plain SIGTRAP stop of a running thread (a breakpoint hit)
            thread.regs_valid = False
            thread.hit_site = None
            thread.state = ThreadState.STOPPED
            return self._on_sigtrap(thread)
        if process.hidden:
            return self._on_hidden_status(thread, status)
        if not pt.is_stopped(status):
            return self._thread_gone(thread, status)
        thread.regs_valid = False
        thread.hit_site = None
        previous = thread.state
        thread.state = ThreadState.STOPPED
        sig = pt.stop_signal(status)
        event = pt.event_of(status)
        if event == 0:
            if sig == pt.SIGTRAP:
                return self._on_sigtrap(thread)
            return TargetEvent(
                EventKind.SIGNAL, process.pid, tid, signal=sig, address=self._fault_address(tid)
            )
        if event == pt.PTRACE_EVENT_STOP:
            if previous is ThreadState.NEW:
                return self._resume_quietly(thread)
            if thread.interrupt_pending:
                thread.interrupt_pending = False
                return self._resume_quietly(thread)
            # a group-stop (SIGSTOP delivered to the program) or a stale trap:
            # the debugger keeps the program running (documented in docs/engine.md)
            return self._resume_quietly(thread)
        if event == pt.PTRACE_EVENT_CLONE:
            new_tid = pt.geteventmsg(tid)
            self._add_thread(process, new_tid, ThreadState.NEW)
            return TargetEvent(EventKind.CREATE_THREAD, process.pid, tid, new_id=new_tid)
        if event in (pt.PTRACE_EVENT_FORK, pt.PTRACE_EVENT_VFORK):
            return self._on_fork(thread, pt.geteventmsg(tid), vfork=event == pt.PTRACE_EVENT_VFORK)
        if event == pt.PTRACE_EVENT_EXEC:
            return self._on_exec(thread, pt.geteventmsg(tid))
        if event == pt.PTRACE_EVENT_EXIT:
            code = pt.exit_code_of(pt.geteventmsg(tid))
            thread.state = ThreadState.EXITING
            if tid == process.pid and not process.exit_reported:
                process.exit_reported = True
                process.exit_code = code
                return TargetEvent(EventKind.EXIT_PROCESS, process.pid, tid, code=code)
            if process.exit_reported:
                return self._resume_quietly(thread)
            return TargetEvent(EventKind.EXIT_THREAD, process.pid, tid, code=code)
        if event == pt.PTRACE_EVENT_VFORK_DONE:
            return self._resume_quietly(thread)
        return self._resume_quietly(thread)

    def _on_hidden_status(self, thread: LiveThread, status: int) -> TargetEvent | None:
        """A vfork child we do not follow: let it run to its execve, silently."""
        process = thread.process
        if not pt.is_stopped(status):
            self._forget_process(process)
            return None
        thread.state = ThreadState.STOPPED
        if pt.event_of(status) == pt.PTRACE_EVENT_EXEC:
            with contextlib.suppress(OSError):
                pt.detach(process.pid, 0)
            self._forget_process(process)
            return None
        signo = pt.stop_signal(status) if pt.event_of(status) == 0 else 0
        self._continue_thread(thread, 0 if signo == pt.SIGTRAP else signo)
        return None

    def _on_sigtrap(self, thread: LiveThread) -> TargetEvent | None:
        process = thread.process
        regs = self._regs(thread)
        site = process.sites.get(regs.rip - 1)
        if site is not None and site.inserted:
            regs.rip -= 1
            thread.regs_dirty = True
            thread.hit_site = site
            return TargetEvent(
                EventKind.BREAKPOINT, process.pid, thread.tid, address=site.address, sites=site.owners
            )
        if process.dr7:
            dr6 = pt.peekuser(thread.tid, x86_64.debugreg_offset(6))
            for slot_index in range(x86_64.DEBUG_REGISTER_SLOTS):
                slot = process.hw_slots[slot_index]
                if dr6 & (1 << slot_index) and slot is not None:
                    pt.pokeuser(thread.tid, x86_64.debugreg_offset(6), 0)
                    return TargetEvent(
                        EventKind.BREAKPOINT, process.pid, thread.tid, address=slot.address, sites=slot.owners
                    )
        return TargetEvent(
            EventKind.SIGNAL,
            process.pid,
            thread.tid,
            signal=pt.SIGTRAP,
            address=self._fault_address(thread.tid),
        )

    def _fault_address(self, tid: int) -> int:
        try:
            return int(pt.getsiginfo(tid).si_addr)
        except OSError:
            return 0

    def _on_fork(self, thread: LiveThread, child_pid: int, *, vfork: bool) -> TargetEvent | None:
        parent = thread.process
        child = LiveProcess(child_pid, launched=False, parent=parent)
        if vfork:
            child.sites = parent.sites  # one address space until the child execs
        else:
            child.sites = {address: _copy_site(site) for address, site in parent.sites.items()}
        self._add_process(child)
        self._add_thread(child, child_pid, ThreadState.NEW)
        if not self.follow_forks:
            self._drop_child(child, vfork=vfork)
            return self._resume_quietly(thread)
        return TargetEvent(EventKind.CREATE_PROCESS, child_pid, child_pid, new_id=child_pid, code=parent.pid)

    def _drop_child(self, child: LiveProcess, *, vfork: bool) -> None:
        """Let a fork child we do not follow run free, without our int3 bytes."""
        thread = child.threads[child.pid]
        self._wait_until_stopped([thread])
        if not vfork:
            for site in child.sites.values():
                if site.inserted:
                    child.memory.write(site.address, site.original)
        # a vfork child shares the parent's memory: its int3 bytes stay; a hit
        # there before exec would kill it, which is why ONLY_THIS_PROCESS keeps
        # vfork children traced until exec (see _on_exec) rather than here
        if vfork:
            child.hidden = True
            self._continue_thread(thread, 0)  # its parent waits for its execve
            return
        with contextlib.suppress(OSError):
            pt.detach(child.pid, 0)
        self._forget_process(child)

    def _on_exec(self, thread: LiveThread, former_tid: int) -> TargetEvent | None:
        process = thread.process
        # the exec'ing thread takes over the leader's tid; the others are gone
        for other in list(process.threads.values()):
            if other.tid != process.pid:
                self._threads.pop(other.tid, None)
                del process.threads[other.tid]
        if process.pid not in process.threads:
            self._threads.pop(thread.tid, None)
            self._add_thread(process, process.pid, ThreadState.STOPPED)
        process.sites = {}
        process.hw_slots = [None, None, None, None]
        process.dr7 = 0
        process.exec_count += 1
        process.memory.close()
        return TargetEvent(EventKind.EXEC, process.pid, process.pid)

    def _thread_gone(self, thread: LiveThread, status: int) -> TargetEvent | None:
        process = thread.process
        self._threads.pop(thread.tid, None)
        process.threads.pop(thread.tid, None)
        if thread.tid == process.pid or not process.threads:
            return self._process_gone(process, status)
        return None

    def _process_gone(self, process: LiveProcess, status: int) -> TargetEvent:
        code = pt.exit_code_of(status) if process.exit_code is None else process.exit_code
        process.exit_code = code
        for tid in list(process.threads):
            self._threads.pop(tid, None)
        process.threads.clear()
        self._forget_process(process)
        killer = 0 if pt.is_exited(status) else pt.term_signal(status)
        return TargetEvent(EventKind.PROCESS_GONE, process.pid, process.pid, code=code, signal=killer)

    def _forget_process(self, process: LiveProcess) -> None:
        for tid in list(process.threads):
            self._threads.pop(tid, None)
        self.processes.pop(process.pid, None)
        process.memory.close()
        process.gone = True

    def _resume_quietly(self, thread: LiveThread) -> TargetEvent | None:
        """An internal stop: if the target is meant to run, let this thread go on."""
        if self.running:
            self._continue_thread(thread, 0)
        return None

    # ------------------------------------------------------------- all-stop

    def _stop_all(self) -> None:
        """Interrupt every running thread and wait until all are stopped."""
        self.running = False
        waiting = []
        for thread in self._threads.values():
            if thread.state is ThreadState.RUNNING:
                try:
                    pt.interrupt(thread.tid)
                except OSError:
                    continue  # it is exiting; its exit status will come
                thread.interrupt_pending = True
                waiting.append(thread)
            elif thread.state is ThreadState.NEW:
                waiting.append(thread)
        if waiting:
            self._wait_until_stopped(waiting)

    def _wait_until_stopped(self, threads: list[LiveThread]) -> None:
        for thread in threads:
            while thread.state in (ThreadState.RUNNING, ThreadState.NEW) and thread.tid in self._threads:
                try:
                    _, status = _wait_blocking(thread.tid, _WAIT_ALL)
                except ChildProcessError:
                    self._thread_gone(thread, 0)
                    break
                self._on_status_while_stopping(thread, status)

    def _take_pending_hit(self, thread: LiveThread) -> None:
        """A thread the interrupt stopped just after it executed one of our int3s: the
        kernel reports the interrupt before the SIGTRAP, which stays queued. Left
        there, it would surface after the breakpoint is gone, as a trap nobody set.
        So take it now: resumed, the thread stops for the queued signal before it
        runs any code; then rewind it to the breakpoint, which it hits again when it
        runs (or, if the breakpoint is removed meanwhile, runs the original code)."""
        sites = thread.process.sites
        if not sites:
            return
        regs = self._regs(thread)
        site = sites.get(regs.rip - 1)
        if site is None or not site.inserted:
            return
        if procfs.pending_signals(thread.tid) != 1 << (pt.SIGTRAP - 1):
            return  # no queued trap (or other signals too: left to the usual path)
        if thread.regs_dirty:
            return
        thread.regs_valid = False
        try:
            pt.cont(thread.tid, 0)
        except ProcessLookupError:
            return
        _, status = _wait_blocking(thread.tid, _WAIT_ALL)
        if pt.is_stopped(status) and pt.event_of(status) == 0 and pt.stop_signal(status) == pt.SIGTRAP:
            regs = self._regs(thread)
            regs.rip -= 1
            thread.regs_dirty = True
            return
        self._deferred.append((thread.tid, status))

    def _on_status_while_stopping(self, thread: LiveThread, status: int) -> None:
        if not pt.is_stopped(status):
            self._deferred.append((thread.tid, status))
            thread.state = ThreadState.STOPPED  # gone: the deferred status removes it
            return
        previous = thread.state
        thread.state = ThreadState.STOPPED
        thread.regs_valid = False
        event = pt.event_of(status)
        if event == pt.PTRACE_EVENT_STOP and (thread.interrupt_pending or previous is ThreadState.NEW):
            thread.interrupt_pending = False
            if previous is not ThreadState.NEW:
                self._take_pending_hit(thread)
            return
        if event == 0 and pt.stop_signal(status) == pt.SIGTRAP:
            regs = self._regs(thread)
            site = thread.process.sites.get(regs.rip - 1)
            if site is not None and site.inserted:
                regs.rip -= 1  # rewind: it hits again when resumed
                thread.regs_dirty = True
                return
        self._deferred.append((thread.tid, status))

    # ---------------------------------------------------------------- resume

    def resume(self, mode: ResumeMode, tid: int, signal: int) -> None:
        if self._deferred or self._ready:
            self.running = True
            self._postponed = (mode, tid, signal)
            return  # report what is queued before anything runs again
        if signal:
            self._thread(tid).pending_signal = signal
        if self._interrupt_requested and tid in self._threads:
            # a break-in asked for while the engine was between two steps of a longer
            # step (a source line, `t N`): nothing runs, the next event is the break
            self._interrupt_requested = False
            self.running = True
            thread = self._threads[tid]
            self._ready.append(TargetEvent(EventKind.INTERRUPT, thread.process.pid, tid))
            return
        if mode is ResumeMode.STEP:
            self._step_thread(self._thread(tid))
            self.running = True
            return
        self.running = True
        for thread in list(self._threads.values()):
            if thread.state is ThreadState.STOPPED or thread.state is ThreadState.EXITING:
                sig = thread.pending_signal
                thread.pending_signal = 0
                self._continue_thread(thread, sig)
            if self._deferred:
                self._postponed = (ResumeMode.CONTINUE, 0, 0)
                return

    def _continue_thread(self, thread: LiveThread, sig: int) -> None:
        tid = thread.tid
        site = thread.hit_site
        if site is not None:
            thread.hit_site = None
            regs = self._regs(thread)
            at_site = site.inserted and regs.rip == site.address and thread.state is not ThreadState.EXITING
            if at_site and not self._step_over_site(thread, site, regs):
                return  # the step reported something else: deferred
        if thread.regs_valid:
            if thread.regs_dirty:
                pt.setregs(tid, thread.regs)
                thread.regs_dirty = False
            thread.regs_valid = False
        try:
            pt.cont(tid, sig)
        except ProcessLookupError:
            thread.state = ThreadState.EXITING  # killed meanwhile: its exit status follows
            return
        thread.state = ThreadState.RUNNING

    def _step_over_site(self, thread: LiveThread, site: Site, regs: UserRegs) -> bool:
        """Move ``thread`` past the int3 at ``site``; False if it stopped for another reason.

        The displaced instruction is emulated when it can be, with the program's
        own page protections: a load from an unreadable page or a store to a
        read-only one is instead really executed, so the CPU raises the fault.
        """
        plan = site.plan
        if plan is None:
            return self._single_step_over(thread, site)
        process = thread.process
        try:
            write = plan.apply(regs, self._program_reader(process) if plan.reads_memory else None)
        except DisplacedFault:
            return self._single_step_over(thread, site)
        thread.regs_dirty = True
        if write is None:
            return True
        address, data = write
        if process.memory.write_as_program(address, data) == len(data):
            return True
        thread.regs_valid = False  # undo the emulation: the kernel still has the old registers
        self._regs(thread).rip = site.address
        thread.regs_dirty = True
        return self._single_step_over(thread, site)

    def _program_reader(self, process: LiveProcess) -> Callable[[int, int], bytes]:
        """``read(address, size)`` for emulated loads: program protections, int3 hidden."""
        memory = process.memory

        def read(address: int, size: int) -> bytes:
            data = memory.read_as_program(address, size)
            end = address + len(data)
            for site in process.sites.values():
                if site.inserted and address <= site.address < end:
                    patched = bytearray(data)
                    patched[site.address - address] = site.original[0]
                    data = bytes(patched)
            return data

        return read

    def _single_step_over(self, thread: LiveThread, site: Site) -> bool:
        memory = thread.process.memory
        memory.write(site.address, site.original)
        try:
            status = self._raw_single_step(thread)
        finally:
            if site.inserted and not thread.process.gone:
                memory.write(site.address, _INT3)
        if pt.is_stopped(status) and pt.event_of(status) == 0 and pt.stop_signal(status) == pt.SIGTRAP:
            thread.state = ThreadState.STOPPED
            return True
        self._deferred.append((thread.tid, status))
        thread.state = ThreadState.STOPPED
        return False

    def _raw_single_step(self, thread: LiveThread) -> int:
        if thread.regs_dirty:
            pt.setregs(thread.tid, thread.regs)
            thread.regs_dirty = False
        thread.regs_valid = False
        pt.singlestep(thread.tid, 0)
        while True:
            _, status = _wait_blocking(thread.tid, _WAIT_ALL)
            if (
                pt.is_stopped(status)
                and pt.event_of(status) == pt.PTRACE_EVENT_STOP
                and thread.interrupt_pending
            ):
                thread.interrupt_pending = False
                pt.singlestep(thread.tid, 0)
                continue
            return status

    def step_range(self, tid: int, low: int, high: int) -> None:
        """Step ``tid`` alone at least once and on while its pc is in ``[low, high)``.

        The steps are taken inside ``wait_event``, a batch at a time, so a deadline
        or a ``wake`` (a break-in) ends a range that never ends."""
        if self._deferred or self._ready or self._interrupt_requested:
            self.resume(ResumeMode.STEP, tid, 0)  # what is queued is reported first
            return
        self._ranging = (self._thread(tid), low, high)
        self.running = True

    def _step_thread(self, thread: LiveThread, low: int = 0, high: int = 0, limit: int = 1) -> bool:
        """Single-step ``thread`` alone (the others stay stopped), on while its pc stays
        in ``[low, high)``, at most ``limit`` times. True when that ended the step (a
        STEP event or another status is queued); False when still in the range."""
        thread.hit_site = None
        sig = thread.pending_signal
        thread.pending_signal = 0
        sites = thread.process.sites
        memory = thread.process.memory
        for _ in range(limit):
            site = sites.get(self._regs(thread).rip) if sites else None
            restored = site is not None and site.inserted
            if restored:
                assert site is not None
                memory.write(site.address, site.original)
            if thread.regs_dirty:
                pt.setregs(thread.tid, thread.regs)
                thread.regs_dirty = False
            thread.regs_valid = False
            pt.singlestep(thread.tid, sig)
            sig = 0
            thread.state = ThreadState.RUNNING
            _, status = _wait_blocking(thread.tid, _WAIT_ALL)
            if restored:
                assert site is not None
                if not thread.process.gone:
                    memory.write(site.address, _INT3)
            if status != _STEPPED:
                self._deferred.appendleft((thread.tid, status))
                return True
            thread.state = ThreadState.STOPPED
            if low >= high or not low <= self._regs(thread).rip < high:
                break  # (a plain step, no range: its registers are not read here)
        else:
            return False
        self._ready.append(TargetEvent(EventKind.STEP, thread.process.pid, thread.tid))
        return True

    def step_many(self, tid: int, count: int, should_stop: Callable[[], bool]) -> int:
        """Single-step stopped ``tid`` up to ``count`` times with no events; return
        how many plain steps completed.

        Stops early (leaving the thread stopped, anything it reported queued for
        ``wait_event``) when the thread is on or near breakpoints, reports
        something other than a step, or ``should_stop()`` says so (checked every
        64 steps).
        """
        thread = self._threads.get(tid)
        if thread is None or thread.process.sites or self._deferred or self._ready:
            return 0
        if thread.regs_dirty:
            pt.setregs(tid, thread.regs)
            thread.regs_dirty = False
        thread.regs_valid = False
        thread.hit_site = None
        sig = thread.pending_signal
        thread.pending_signal = 0
        step, wait = pt.singlestep, pt.waitpid
        done = 0
        while done < count:
            if done & 63 == 63 and should_stop():
                break
            step(tid, sig)
            sig = 0
            try:
                status = wait(tid, _WAIT_ALL)[1]
            except InterruptedError:
                status = _wait_blocking(tid, _WAIT_ALL)[1]
            if status != _STEPPED:
                self._deferred.appendleft((tid, status))
                break
            done += 1
        return done

    # ------------------------------------------------------------ breakpoints

    def insert_site(self, pid: int, address: int) -> Site:
        """Insert (or reuse) the int3 at ``address`` of ``pid``.

        Raises:
            MemoryAccessError: the address is not mapped or not writable.
        """
        process = self._process(pid)
        site = process.sites.get(address)
        if site is not None and site.inserted:
            return site
        original = process.memory.read(address, 16)
        if not original:
            raise MemoryAccessError(
                f"cannot set a breakpoint at {address:#x} in process {pid}: memory not readable", address, pid
            )
        if site is None:
            site = Site(address, original[:1], _plan(original, address))
            process.sites[address] = site
        if process.memory.write(address, _INT3) != 1:
            del process.sites[address]
            raise MemoryAccessError(
                f"cannot set a breakpoint at {address:#x} in process {pid}: memory not writable", address, pid
            )
        site.inserted = True
        return site

    def claim_site(self, pid: int, address: int, owner: Any) -> Site:
        """Insert the int3 at ``address`` (or share it) on behalf of ``owner``.

        Raises:
            MemoryAccessError: the address is not mapped or not writable.
        """
        site = self.insert_site(pid, address)
        site.owners.append(owner)
        return site

    def release_site(self, pid: int, address: int, owner: Any) -> None:
        """``owner`` no longer wants the int3 at ``address``; the last one out removes it."""
        process = self.processes.get(pid)
        site = process.sites.get(address) if process is not None else None
        if site is None or owner not in site.owners:
            return
        site.owners.remove(owner)
        if not site.owners:
            self.remove_site(pid, address)

    def remove_site(self, pid: int, address: int) -> None:
        """Put the original byte back at ``address`` and forget the site."""
        process = self.processes.get(pid)
        if process is None:
            return
        site = process.sites.pop(address, None)
        if site is not None and site.inserted:
            site.inserted = False
            process.memory.write(address, site.original)

    def set_hardware(self, pid: int, address: int, kind: x86_64.WatchKind, size: int) -> HardwareSlot:
        """Program a free debug register of every thread of ``pid``.

        Raises:
            InvalidOperationError: all four debug registers are in use.
        """
        process = self._process(pid)
        for slot in process.hw_slots:
            if slot is not None and slot.address == address and slot.kind == kind and slot.size == size:
                return slot
        for index, slot in enumerate(process.hw_slots):
            if slot is None:
                new_slot = HardwareSlot(address, int(kind), size)
                process.hw_slots[index] = new_slot
                process.dr7 = x86_64.dr7_enable(process.dr7, index, kind, size)
                for thread in process.threads.values():
                    self._apply_debug_registers_to(thread)
                return new_slot
        raise InvalidOperationError(
            f"all {x86_64.DEBUG_REGISTER_SLOTS} debug registers of process {pid} are in use"
        )

    def clear_hardware(self, pid: int, slot_to_clear: HardwareSlot) -> None:
        """Free the debug register holding ``slot_to_clear``."""
        process = self.processes.get(pid)
        if process is None:
            return
        for index, slot in enumerate(process.hw_slots):
            if slot is slot_to_clear:
                process.hw_slots[index] = None
                process.dr7 = x86_64.dr7_disable(process.dr7, index)
                for thread in process.threads.values():
                    self._apply_debug_registers_to(thread)

    def _apply_debug_registers_to(self, thread: LiveThread) -> None:
        if thread.state is ThreadState.NEW:
            return
        process = thread.process
        try:
            pt.pokeuser(thread.tid, x86_64.debugreg_offset(7), 0)
            for index, slot in enumerate(process.hw_slots):
                if slot is not None:
                    pt.pokeuser(thread.tid, x86_64.debugreg_offset(index), slot.address)
            if process.dr7:
                pt.pokeuser(thread.tid, x86_64.debugreg_offset(7), process.dr7)
        except OSError as error:
            raise TargetAccessError(
                f"cannot program the debug registers of thread {thread.tid}: {error.strerror}",
                process.pid,
                thread.tid,
            ) from error

    # ------------------------------------------------------- memory, registers

    def read_memory(self, pid: int, address: int, size: int) -> bytes:
        process = self._process(pid)
        data = process.memory.read(address, size)
        if len(data) < size:
            data += self._peek_words(process, address + len(data), size - len(data))
        if len(data) < size:
            bad = address + len(data)
            raise MemoryAccessError(f"memory access error at {bad:#x} (process {pid})", bad, pid)
        if process.sites:
            end = address + size
            patched = None
            for site in process.sites.values():
                if site.inserted and address <= site.address < end:
                    if patched is None:
                        patched = bytearray(data)
                    patched[site.address - address] = site.original[0]
            if patched is not None:
                return bytes(patched)
        return data

    def _peek_words(self, process: LiveProcess, address: int, size: int) -> bytes:
        """The last resort when process_vm_readv and /proc/PID/mem both refuse
        (a kernel without them): PTRACE_PEEKDATA word by word, stopping at the
        first word that cannot be read."""
        thread = next((t for t in process.threads.values() if t.state is ThreadState.STOPPED), None)
        if thread is None or size > _PEEK_LIMIT:
            return b""
        out = bytearray()
        start = address & ~7
        try:
            for word_address in range(start, address + size, 8):
                out += pt.peekdata(thread.tid, word_address).to_bytes(8, "little")
        except OSError:
            pass
        skip = address - start
        return bytes(out[skip : skip + size]) if len(out) > skip else b""

    def read_memory_into(self, pid: int, address: int, buffer: bytearray | memoryview) -> None:
        """Fill ``buffer`` from ``address`` (breakpoints hidden), with no extra copy.

        Raises:
            MemoryAccessError: some byte of the range is not readable.
        """
        process = self._process(pid)
        got = process.memory.read_into(address, buffer)
        if got < len(buffer):
            bad = address + got
            raise MemoryAccessError(f"memory access error at {bad:#x} (process {pid})", bad, pid)
        end = address + len(buffer)
        for site in process.sites.values():
            if site.inserted and address <= site.address < end:
                buffer[site.address - address] = site.original[0]

    def write_memory(self, pid: int, address: int, data: bytes) -> None:
        process = self._process(pid)
        payload = bytearray(data)
        end = address + len(data)
        for site in process.sites.values():
            if site.inserted and address <= site.address < end:
                offset = site.address - address
                site.original = bytes(payload[offset : offset + 1])
                site.plan = _plan(bytes(payload[offset : offset + 16]), site.address)
                payload[offset] = _INT3[0]
        written = process.memory.write(address, bytes(payload))
        if written < len(data):
            bad = address + max(written, 0)
            raise MemoryAccessError(f"memory access error at {bad:#x} (process {pid})", bad, pid)

    def _regs(self, thread: LiveThread) -> UserRegs:
        if not thread.regs_valid:
            pt.getregs(thread.tid, thread.regs)
            thread.regs_valid = True
            thread.regs_dirty = False
        return thread.regs

    def _stopped_thread(self, tid: int) -> LiveThread:
        thread = self._thread(tid)
        if thread.state in (ThreadState.RUNNING, ThreadState.NEW):
            raise InvalidOperationError(f"thread {tid} is running")
        return thread

    def get_register(self, tid: int, name: str) -> int:
        thread = self._stopped_thread(tid)
        try:
            return register_state.read_state(
                name,
                self._regs(thread),
                lambda: bytes(pt.getfpregs(tid)),
                lambda: pt.getregset(tid, x86_64.NT_X86_XSTATE, _XSTATE_SIZE),
            )
        except OSError as error:
            raise TargetAccessError(
                f"cannot read registers of thread {tid}: {error.strerror}", tid=tid
            ) from error

    def set_register(self, tid: int, name: str, value: int) -> None:
        thread = self._stopped_thread(tid)
        register_state.write(name, self._regs(thread), value)
        thread.regs_dirty = True

    def float_state(self, tid: int) -> bytes | None:
        self._stopped_thread(tid)
        try:
            return bytes(pt.getfpregs(tid))
        except OSError as error:
            raise TargetAccessError(
                f"cannot read the FP registers of thread {tid}: {error.strerror}", tid=tid
            ) from error

    def general_registers(self, tid: int) -> UserRegs:
        """The cached general registers of stopped ``tid`` (do not keep the object)."""
        return self._regs(self._stopped_thread(tid))

    def memory_reader(self, pid: int) -> Callable[[int, int], bytes]:
        return self._process(pid).memory.read

    def auxv(self, pid: int) -> dict[int, int]:
        return procfs.auxv(pid)

    def executable(self, pid: int) -> str:
        return procfs.executable(pid)

    def mapping_path_at(self, pid: int, address: int) -> str:
        return procfs.mapping_path_at(pid, address)

    def memory_map(self, pid: int) -> list[MemoryRegion]:
        self._process(pid)
        try:
            return [MemoryRegion(*fields) for fields in procfs.maps(pid)]
        except OSError as error:
            raise TargetAccessError(
                f"cannot read /proc/{pid}/maps: {error.strerror or error}", pid
            ) from error

    def thread_info(self, tid: int) -> ThreadInfo | None:
        thread = self._thread(tid)
        try:
            return ThreadInfo(*procfs.task_details(thread.process.pid, tid))
        except OSError:
            return None

    def signal_state(self, pid: int, tid: int) -> SignalState:
        self._thread(tid)
        try:
            fields = procfs.task_status_fields(pid, tid)
        except OSError as error:
            raise TargetAccessError(
                f"cannot read /proc/{pid}/task/{tid}/status: {error.strerror or error}", pid, tid
            ) from error
        return SignalState.from_status(fields)

    def delivery_kills(self, pid: int, signo: int) -> bool:
        return is_fatal_by_default(signo) and not procfs.signal_is_caught_or_ignored(pid, signo)

    def open_files(self, pid: int) -> list[tuple[int, str]]:
        self._process(pid)
        try:
            return procfs.open_files(pid)
        except OSError as error:
            raise TargetAccessError(f"cannot read /proc/{pid}/fd: {error.strerror or error}", pid) from error

    def core_image(
        self, pid: int, *, full: bool, current_tid: int, siginfo_tid: int | None
    ) -> tuple[ProcessImage, ReadInto]:
        from lindbg.targets.live.snapshot import memory_reader, snapshot  # only for .dump

        image = snapshot(self, pid, full=full, current_tid=current_tid, siginfo_tid=siginfo_tid)
        return image, memory_reader(self, pid)

    def set_pending_signal(self, tid: int, signo: int) -> None:
        """Deliver ``signo`` to ``tid`` when it next runs (or is detached)."""
        self._thread(tid).pending_signal = signo

    def breakpoint_under(self, tid: int) -> list[Any] | None:
        """If stopped ``tid`` sits on one of our int3s it has not executed yet
        (a step landed there), count it as hit: return the site's owners and
        make the next resume step over it. None when it is not on a site."""
        thread = self._stopped_thread(tid)
        sites = thread.process.sites
        if not sites:
            return None
        site = sites.get(self._regs(thread).rip)
        if site is None or not site.inserted:
            return None
        thread.hit_site = site
        return site.owners

    # ---------------------------------------------------------------- endings

    def detach_process(self, pid: int) -> None:
        """Remove our marks from ``pid`` and let it run free (target stopped)."""
        process = self._process(pid)
        self._settle_deferred(process)
        for site in list(process.sites.values()):
            if site.inserted and (process.parent is None or process.sites is not process.parent.sites):
                process.memory.write(site.address, site.original)
                site.inserted = False
        if process.dr7:
            process.hw_slots = [None, None, None, None]
            process.dr7 = 0
            for thread in process.threads.values():
                with contextlib.suppress(TargetAccessError):
                    self._apply_debug_registers_to(thread)
        for thread in list(process.threads.values()):
            if thread.regs_dirty:
                with contextlib.suppress(OSError):
                    pt.setregs(thread.tid, thread.regs)
            with contextlib.suppress(OSError):
                pt.detach(thread.tid, thread.pending_signal)
        self._forget_process(process)

    def _settle_deferred(self, process: LiveProcess) -> None:
        """Before a detach: account for what this process reported but we did not
        report yet, so no thread stays traced, no fork child keeps our int3 bytes
        and no signal is lost."""
        mine = [(tid, status) for tid, status in self._deferred if tid in process.threads]
        self._deferred = deque(entry for entry in self._deferred if entry[0] not in process.threads)
        for tid, status in mine:
            thread = process.threads[tid]
            if not pt.is_stopped(status):
                self._threads.pop(tid, None)
                process.threads.pop(tid, None)
                continue
            event = pt.event_of(status)
            if event == 0 and pt.stop_signal(status) != pt.SIGTRAP:
                thread.pending_signal = pt.stop_signal(status)
            elif event == pt.PTRACE_EVENT_CLONE:
                self._add_thread(process, pt.geteventmsg(tid), ThreadState.NEW)
            elif event in (pt.PTRACE_EVENT_FORK, pt.PTRACE_EVENT_VFORK):
                child = LiveProcess(pt.geteventmsg(tid), launched=False, parent=process)
                vfork = event == pt.PTRACE_EVENT_VFORK
                child.sites = process.sites if vfork else dict(process.sites)
                self._add_process(child)
                self._add_thread(child, child.pid, ThreadState.NEW)
                self._wait_until_stopped([child.threads[child.pid]])
                self.detach_process(child.pid)
        for tid in procfs.thread_ids(process.pid) if procfs.process_exists(process.pid) else []:
            if tid not in process.threads:  # a clone we never heard of: traced all the same
                self._add_thread(process, tid, ThreadState.NEW)
        self._wait_until_stopped([t for t in process.threads.values() if t.state is ThreadState.NEW])

    def kill_process(self, pid: int) -> int:
        """SIGKILL ``pid`` and reap every thread of it; return its exit code."""
        process = self._process(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._deferred = deque(entry for entry in self._deferred if entry[0] not in process.threads)
        # the leader is reaped last, and only once every thread is: include the
        # threads we never heard of (their clone event was still queued)
        tids = set(process.threads)
        with contextlib.suppress(OSError):
            tids.update(procfs.thread_ids(pid))
        tids.update(tid for tid in self._early if tid not in self._threads)
        for tid in tids:
            self._early.pop(tid, None)
            with contextlib.suppress(OSError):
                pt.cont(tid, 0)  # out of any stop, the exit stop included
        # poll rather than block: whoever else waits on these pids (the program
        # that started an attached process) may consume a notification we need
        remaining = sorted(tids, key=lambda t: t == pid)
        deadline = time.monotonic() + _KILL_TIMEOUT
        while remaining and time.monotonic() < deadline:
            tid = remaining[0]
            try:
                if tid == pid and process.parent_reaps:
                    reported, code, status = pt.peek_child(pt.P_PID, pid, pt.WEXITED | pt.WNOHANG | _WAIT_ALL)
                    if code == pt.CLD_TRAPPED:
                        reported, status = pt.waitpid(tid, _WAIT_ALL | pt.WNOHANG)
                else:
                    reported, status = pt.waitpid(tid, _WAIT_ALL | pt.WNOHANG)
            except ChildProcessError:
                remaining.pop(0)
                continue
            except InterruptedError:
                continue
            if reported == 0:
                with contextlib.suppress(OSError):
                    pt.cont(tid, 0)
                time.sleep(0.0005)
            elif not pt.is_stopped(status):
                if tid == pid:
                    process.exit_code = pt.exit_code_of(status)
                remaining.pop(0)
            else:
                with contextlib.suppress(OSError):
                    pt.cont(tid, 0)
        self._forget_process(process)
        return process.exit_code if process.exit_code is not None else 128 + int(signal.SIGKILL)

    def detach_all(self) -> None:
        if self.running:
            self._stop_all()
        self._ranging = None
        for pid in list(self.processes):
            self.detach_process(pid)
        self._deferred.clear()
        self._ready.clear()
        self._postponed = None
        self._early.clear()

    def terminate_all(self) -> dict[int, int]:
        """Kill and reap every process; return each one's exit code by pid."""
        self._ranging = None
        codes = {pid: self.kill_process(pid) for pid in list(self.processes)}
        self._deferred.clear()
        self._ready.clear()
        self._postponed = None
        self._early.clear()
        self.running = False
        return codes

    def restore_breakpoint_bytes(self) -> None:
        """Best effort, from any thread, no ptrace: put original bytes back."""
        for process in list(self.processes.values()):
            memory = process.memory
            for site in list(process.sites.values()):
                if site.inserted:
                    with contextlib.suppress(Exception):
                        memory.write(site.address, site.original)


def _plan(code: bytes, address: int) -> DisplacedInstruction | None:
    """The emulation plan for the instruction under a breakpoint, if any.

    A decoder bug must cost speed, never the breakpoint: on any error the
    site uses the single-step fallback.
    """
    try:
        return plan_displaced(code, address)
    except Exception:
        return None


def _launch_failure(error_pipe: int) -> str:
    """Why the child died before execve: the errno it wrote, in words."""
    report = os.read(error_pipe, 64).decode()
    if report.isdigit():
        return os.strerror(int(report))
    return "it exited before it could be traced"


def _copy_site(site: Site) -> Site:
    copy = Site(site.address, site.original, site.plan)
    copy.inserted = site.inserted
    copy.owners = site.owners
    return copy


def _wait_blocking(pid: int, options: int) -> tuple[int, int]:
    """waitpid for one tid, retrying when the engine's wake-up signal interrupts it."""
    while True:
        try:
            return pt.waitpid(pid, options)
        except InterruptedError:
            continue
