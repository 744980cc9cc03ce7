"""Attach to running programs (single- and multi-threaded), then detach and
check that they keep running correctly, or terminate them."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest
from conftest import WAIT, LineReader, Programs, Recorder, assert_reaped

from lindbg import DebugClient, EndFlags, EventMask, SessionStatus, Status


class Sleeper:
    """A sleeper fixture started by the test (our child, not the engine's)."""

    def __init__(self, programs: Programs, threads: int) -> None:
        self.popen = subprocess.Popen(
            [programs.path("sleeper"), str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.popen.stdout is not None
        self.output = LineReader(self.popen.stdout.fileno())
        self.output.wait_for("ready")
        self.pid = self.popen.pid
        self.threads = threads

    def ask_alive(self) -> str:
        """Ask the program whether its workers make progress; its answer line."""
        assert self.popen.stdin is not None
        before = self.output.count("alive ")
        self.popen.stdin.write(b"report\n")
        self.popen.stdin.flush()
        while self.output.count("alive ") == before:
            self.output.wait_for("alive ")
            if self.output.count("alive ") == before:
                self.output.pump(WAIT)
        return [line for line in self.output.lines if line.startswith("alive ")][-1]

    def finish(self) -> tuple[int, list[str]]:
        """Close its stdin (it stops) and return (exit code, output lines)."""
        assert self.popen.stdin is not None
        self.popen.stdin.close()
        lines = self.output.wait_eof()
        return self.popen.wait(timeout=WAIT), lines

    def kill(self) -> None:
        """Make sure it is gone (test cleanup)."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=WAIT)
        if self.popen.stdin is not None and not self.popen.stdin.closed:
            self.popen.stdin.close()
        if self.popen.stdout is not None:
            self.popen.stdout.close()


@pytest.fixture
def sleepers(programs: Programs) -> Iterator[list[Sleeper]]:
    """Sleepers started by a test; killed afterwards whatever happened.

    Tests request it before ``client``, so that the engine has ended its session
    (and stopped tracing) before this teardown waits for the sleepers: a
    waitpid here on a traced process would steal the engine's ptrace stops.
    """
    started: list[Sleeper] = []
    yield started
    for sleeper in started:
        sleeper.kill()


def start_sleeper(programs: Programs, sleepers: list[Sleeper], threads: int) -> Sleeper:
    """Start a sleeper with ``threads`` workers and wait for its ``ready`` line."""
    sleeper = Sleeper(programs, threads)
    sleepers.append(sleeper)
    return sleeper


def reference_end(programs: Programs, threads: int) -> list[str]:
    """The sleeper's last lines when it runs with no debugger."""
    return programs.reference("sleeper", str(threads))[-2:]


def test_attach_stops_the_process_and_reports_it(
    sleepers: list[Sleeper], client: DebugClient, programs: Programs
) -> None:
    sleeper = start_sleeper(programs, sleepers, 0)
    recorder = Recorder(mask=EventMask.CREATE_PROCESS | EventMask.SESSION_STATUS)
    client.set_event_callbacks(recorder)
    process = client.attach_process(sleeper.pid)
    assert process.pid == sleeper.pid
    assert client.get_execution_status() == Status.BREAK
    assert recorder.log == [("session_status", SessionStatus.ACTIVE), ("create_process", sleeper.pid)]
    assert [thread.tid for thread in client.threads()] == [sleeper.pid]
    with open(f"/proc/{sleeper.pid}/status") as status:
        tracer = next(line for line in status if line.startswith("TracerPid:"))
    assert int(tracer.split()[1]) != 0


def test_detach_after_a_breakpoint_hit_lets_the_sleeper_finish_normally(
    sleepers: list[Sleeper], client: DebugClient, programs: Programs
) -> None:
    sleeper = start_sleeper(programs, sleepers, 0)
    client.attach_process(sleeper.pid)
    tick = programs.symbol("sleeper", "tick")
    bp = client.add_breakpoint(tick)
    client.set_execution_status(Status.GO)
    assert client.wait_for_event(timeout=WAIT)
    assert client.get_register("rip") == tick
    assert bp.hit_count == 1
    client.end_session(EndFlags.ACTIVE_DETACH)  # stopped at the breakpoint
    assert client.get_execution_status() == Status.NO_DEBUGGEE
    assert sleeper.ask_alive() == "alive 0"
    code, lines = sleeper.finish()
    assert code == 0
    assert lines[-2:] == reference_end(programs, 0), "the code checksum must be unchanged (no int3 left)"


def test_attach_and_detach_of_a_multithreaded_process_keeps_every_thread_running(
    sleepers: list[Sleeper], client: DebugClient, programs: Programs
) -> None:
    sleeper = start_sleeper(programs, sleepers, 3)
    process = client.attach_process(sleeper.pid)
    tids = sorted(thread.tid for thread in client.threads())
    assert len(tids) == 4
    assert sorted(int(tid) for tid in os.listdir(f"/proc/{sleeper.pid}/task")) == tids
    assert process.pid in tids
    worker_tick = programs.symbol("sleeper", "worker_tick")
    bp = client.add_breakpoint(worker_tick)
    client.set_execution_status(Status.GO)
    assert client.wait_for_event(timeout=WAIT)
    assert client.get_register("rip") == worker_tick
    assert client.current_thread().tid != sleeper.pid
    assert bp.hit_count == 1
    client.end_session(EndFlags.ACTIVE_DETACH)  # stopped at the breakpoint, in a worker
    assert sleeper.ask_alive() == "alive 3"
    assert sleeper.ask_alive() == "alive 3"
    code, lines = sleeper.finish()
    assert code == 0
    assert lines[-2:] == reference_end(programs, 3)


def test_detach_with_a_watchpoint_and_hardware_breakpoint_set_keeps_threads_running(
    sleepers: list[Sleeper], client: DebugClient, programs: Programs
) -> None:
    sleeper = start_sleeper(programs, sleepers, 2)
    client.attach_process(sleeper.pid)
    client.add_breakpoint(programs.symbol("sleeper", "worker_ticks"), access="w", size=8)
    client.add_breakpoint(programs.symbol("sleeper", "tick"), access="e")
    client.set_execution_status(Status.GO)
    assert client.wait_for_event(timeout=WAIT)
    client.end_session(EndFlags.ACTIVE_DETACH)
    # a debug register left armed in any thread would kill it with SIGTRAP
    assert sleeper.ask_alive() == "alive 2"
    code, lines = sleeper.finish()
    assert code == 0
    assert lines[-2:] == reference_end(programs, 2)


def test_detach_while_running_leaves_the_process_running(
    sleepers: list[Sleeper], client: DebugClient, programs: Programs
) -> None:
    sleeper = start_sleeper(programs, sleepers, 2)
    client.attach_process(sleeper.pid)
    client.add_breakpoint(programs.symbol("sleeper", "main"))  # never hit again: main is running
    client.set_execution_status(Status.GO)
    assert client.wait_for_event(timeout=0.2) is False
    client.end_session(EndFlags.ACTIVE_DETACH)
    assert sleeper.ask_alive() == "alive 2"
    code, lines = sleeper.finish()
    assert code == 0
    assert lines[-2:] == reference_end(programs, 2)


def test_terminate_after_attach_kills_the_process(
    sleepers: list[Sleeper], client: DebugClient, programs: Programs
) -> None:
    sleeper = start_sleeper(programs, sleepers, 2)
    client.attach_process(sleeper.pid)
    client.end_session(EndFlags.ACTIVE_TERMINATE)
    # we are its parent: we reap it, and it died of SIGKILL
    assert sleeper.popen.wait(timeout=WAIT) == -signal.SIGKILL
    assert_reaped(sleeper.pid)


def test_attach_again_after_detach(sleepers: list[Sleeper], client: DebugClient, programs: Programs) -> None:
    sleeper = start_sleeper(programs, sleepers, 1)
    client.attach_process(sleeper.pid)
    client.end_session(EndFlags.ACTIVE_DETACH)
    client.attach_process(sleeper.pid)
    tick = programs.symbol("sleeper", "tick")
    client.add_breakpoint(tick)
    client.set_execution_status(Status.GO)
    assert client.wait_for_event(timeout=WAIT)
    assert client.get_register("rip") == tick
    client.end_session(EndFlags.ACTIVE_DETACH)
    code, lines = sleeper.finish()
    assert code == 0
    assert lines[-2:] == reference_end(programs, 1)
