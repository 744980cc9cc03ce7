"""Signals as exceptions: first and second chance, the default filters,
GO_HANDLED swallowing a signal and GO_NOT_HANDLED delivering it, and the exit
code of a death by signal (128+N)."""

from __future__ import annotations

import signal

from conftest import Harness, Recorder

from lindbg import EventMask, SessionStatus, Status

MASK = EventMask.EXCEPTION | EventMask.EXIT_PROCESS | EventMask.SESSION_STATUS


def test_segfault_breaks_first_chance_then_second_chance_then_dies_with_139(harness: Harness) -> None:
    recorder = Recorder(mask=MASK)
    harness.client.set_event_callbacks(recorder)
    process = harness.launch("signals", "segv")
    crash = harness.symbol("signals", "crash")
    harness.go()
    assert harness.client.get_execution_status() == Status.BREAK
    assert recorder.of("exception") == [("exception", signal.SIGSEGV, True)]
    first = recorder.exceptions[0]
    assert first.pid == process.pid
    assert first.tid == process.pid
    assert first.address in (0x10, harness.rip())  # the fault address (si_addr) or the faulting instruction
    assert crash <= harness.rip() < crash + 32  # stopped on the faulting store in crash()
    harness.go()
    assert harness.client.get_execution_status() == Status.BREAK
    assert recorder.of("exception")[1] == ("exception", signal.SIGSEGV, False)
    harness.go()
    assert harness.client.get_execution_status() == Status.NO_DEBUGGEE
    assert recorder.of("exit_process") == [("exit_process", 128 + signal.SIGSEGV)]
    assert recorder.of("session_status")[-1] == ("session_status", SessionStatus.END)
    assert process.exit_code == 128 + signal.SIGSEGV
    assert harness.pipe.wait_eof() == ["mode=segv"]


def test_abort_breaks_first_chance_and_dies_with_134(harness: Harness) -> None:
    recorder = Recorder(mask=MASK)
    harness.client.set_event_callbacks(recorder)
    harness.launch("signals", "abort")
    harness.go()
    assert harness.client.get_execution_status() == Status.BREAK
    assert recorder.of("exception") == [("exception", signal.SIGABRT, True)]
    harness.run_to_end()
    assert recorder.of("exception")[-1] == ("exception", signal.SIGABRT, False)
    assert recorder.of("exit_process") == [("exit_process", 128 + signal.SIGABRT)]


def test_go_handled_at_a_segfault_break_reexecutes_the_faulting_instruction(harness: Harness) -> None:
    recorder = Recorder(mask=MASK)
    harness.client.set_event_callbacks(recorder)
    harness.launch("signals", "segv")
    harness.go()
    rip = harness.rip()
    harness.go(Status.GO_HANDLED)
    # the signal was swallowed: the store faults again, a new first chance
    assert recorder.of("exception") == [("exception", signal.SIGSEGV, True)] * 2
    assert harness.rip() == rip


def test_sigusr1_is_passed_silently_by_default_and_kills_with_138(harness: Harness) -> None:
    recorder = Recorder(mask=MASK)
    harness.client.set_event_callbacks(recorder)
    process = harness.launch("signals", "usr1")
    harness.go()  # no break in: the signal is passed, the program dies, the session ends
    assert harness.client.get_execution_status() == Status.NO_DEBUGGEE
    assert recorder.of("exception")[0] == ("exception", signal.SIGUSR1, True)
    assert recorder.of("exit_process") == [("exit_process", 128 + signal.SIGUSR1)]
    assert process.exit_code == 128 + signal.SIGUSR1
    assert harness.pipe.wait_eof() == ["mode=usr1"]


def test_go_handled_swallows_a_sigusr1_the_program_would_die_of(harness: Harness) -> None:
    recorder = Recorder(mask=MASK, answers={"exception": Status.GO_HANDLED})
    harness.client.set_event_callbacks(recorder)
    harness.launch("signals", "usr1")
    assert harness.run_to_end() == 0
    assert recorder.of("exception") == [("exception", signal.SIGUSR1, True)]
    assert recorder.of("exit_process") == [("exit_process", 0)]
    assert harness.pipe.wait_eof() == ["mode=usr1", "survived caught=0"]


def test_go_not_handled_delivers_a_fatal_sigusr1_after_a_second_chance(harness: Harness) -> None:
    recorder = Recorder(mask=MASK, answers={"exception": Status.GO_NOT_HANDLED})
    harness.client.set_event_callbacks(recorder)
    harness.launch("signals", "usr1")
    harness.run_to_end()
    assert recorder.of("exception") == [
        ("exception", signal.SIGUSR1, True),
        ("exception", signal.SIGUSR1, False),
    ]
    assert recorder.of("exit_process") == [("exit_process", 128 + signal.SIGUSR1)]
    assert harness.pipe.wait_eof() == ["mode=usr1"]


def test_go_not_handled_delivers_sigusr1_to_the_program_handler(harness: Harness) -> None:
    recorder = Recorder(mask=MASK, answers={"exception": Status.GO_NOT_HANDLED})
    harness.client.set_event_callbacks(recorder)
    harness.launch("signals", "usr1-handler")
    assert harness.run_to_end() == 0
    # caught: no second chance, since it does not kill
    assert recorder.of("exception") == [("exception", signal.SIGUSR1, True)]
    assert harness.pipe.wait_eof() == ["mode=usr1-handler", "survived caught=1"]


def test_break_from_exception_callback_then_go_handled_at_the_break(harness: Harness) -> None:
    recorder = Recorder(mask=MASK, answers={"exception": Status.BREAK})
    harness.client.set_event_callbacks(recorder)
    harness.launch("signals", "usr1")
    harness.go()
    assert harness.client.get_execution_status() == Status.BREAK
    assert recorder.of("exception") == [("exception", signal.SIGUSR1, True)]
    harness.client.set_event_callbacks(None)
    harness.go(Status.GO_HANDLED)
    assert harness.client.get_execution_status() == Status.NO_DEBUGGEE
    assert harness.pipe.wait_eof() == ["mode=usr1", "survived caught=0"]


def test_exit_code_of_a_normal_exit(harness: Harness) -> None:
    recorder = Recorder(mask=MASK)
    harness.client.set_event_callbacks(recorder)
    process = harness.launch("checksum", "1", "42")
    harness.run_to_end()
    assert recorder.of("exit_process") == [("exit_process", 42)]
    assert process.exit_code == 42
