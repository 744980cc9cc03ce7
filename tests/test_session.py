"""The session model (DESIGN section 3): notification order at start, break,
resume and every kind of end; every ``end_session`` flag checked from outside
the engine (/proc, the program's own output, its exit status)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    Harness,
    OutputPipe,
    Programs,
    Recorder,
    RecordingExtension,
    assert_in_order,
    assert_reaped,
    extension_item,
    reap_child,
    wait_exited,
)

from lindbg import (
    CDS,
    CES,
    EndFlags,
    EventMask,
    InvalidOperationError,
    Notify,
    ProcessOptions,
    SessionStatus,
    Status,
)

EXEC = int(CES.EXECUTION_STATUS)


def engine_state(status: Status) -> tuple[str, int, int]:
    """The log entry of change_engine_state(EXECUTION_STATUS, status)."""
    return ("change_engine_state", EXEC, int(status))


def record_everything(harness: Harness) -> Recorder:
    """A recorder hearing every event plus an extension writing to the same log."""
    recorder = Recorder()
    harness.client.set_event_callbacks(recorder)
    harness.client.load_extension(RecordingExtension(recorder.log))
    return recorder


START = [
    ("session_status", SessionStatus.ACTIVE),
    extension_item(Notify.SESSION_ACTIVE),
    ("change_debuggee_state", int(CDS.ALL), 0),
]


def end_items(reason: SessionStatus) -> list[tuple[Any, ...]]:
    """The three notifications of an end, in order."""
    return [
        engine_state(Status.NO_DEBUGGEE),
        ("session_status", reason),
        extension_item(Notify.SESSION_INACTIVE),
    ]


def assert_ended(recorder: Recorder, reason: SessionStatus, harness: Harness) -> None:
    """The session ended with ``reason``: order, nothing after, state NO_DEBUGGEE."""
    assert_in_order(recorder.log, end_items(reason))
    assert recorder.log[-1] == extension_item(Notify.SESSION_INACTIVE), recorder.log
    assert recorder.of("session_status")[-1] == ("session_status", reason)
    assert harness.client.get_execution_status() == Status.NO_DEBUGGEE


# ------------------------------------------------------------------ ordering


def test_extension_loaded_without_session_hears_nothing_until_start(harness: Harness) -> None:
    recorder = record_everything(harness)
    assert [entry for entry in recorder.log if entry[0] == "ext"] == []
    harness.launch("checksum")
    assert recorder.log.count(extension_item(Notify.SESSION_ACTIVE)) == 1


def test_start_notifications_in_order_then_initial_break(harness: Harness) -> None:
    recorder = record_everything(harness)
    process = harness.launch("checksum")
    after_start = assert_in_order(recorder.log, START)
    assert recorder.of("session_status") == [("session_status", SessionStatus.ACTIVE)]
    # the launch is reported, then the initial break makes the target accessible
    assert_in_order(
        recorder.log,
        [
            ("create_process", process.pid),
            engine_state(Status.BREAK),
            extension_item(Notify.SESSION_ACCESSIBLE),
        ],
        after_start,
    )
    assert harness.client.get_execution_status() == Status.BREAK


def test_resume_and_break_notifications_in_order(harness: Harness) -> None:
    recorder = record_everything(harness)
    harness.launch("checksum")
    bp = harness.client.add_breakpoint(harness.symbol("checksum", "target_fn"))
    mark = len(recorder.log)
    harness.go()
    assert_in_order(
        recorder.log,
        [
            engine_state(Status.GO),
            extension_item(Notify.SESSION_INACCESSIBLE),
            ("breakpoint", bp.id),
            engine_state(Status.BREAK),
            extension_item(Notify.SESSION_ACCESSIBLE),
        ],
        mark,
    )
    assert recorder.log[-1] == extension_item(Notify.SESSION_ACCESSIBLE)


def test_step_notifications_say_step_into_then_break(harness: Harness) -> None:
    recorder = record_everything(harness)
    harness.launch("checksum")
    mark = len(recorder.log)
    harness.go(Status.STEP_INTO)
    assert_in_order(
        recorder.log,
        [
            engine_state(Status.STEP_INTO),
            extension_item(Notify.SESSION_INACCESSIBLE),
            engine_state(Status.BREAK),
            extension_item(Notify.SESSION_ACCESSIBLE),
        ],
        mark,
    )


def test_extension_loaded_during_stopped_session_is_told_active_then_accessible(harness: Harness) -> None:
    harness.launch("checksum")
    log: list[tuple[Any, ...]] = []
    harness.client.load_extension(RecordingExtension(log))
    assert log == [extension_item(Notify.SESSION_ACTIVE), extension_item(Notify.SESSION_ACCESSIBLE)]


# ---------------------------------------------------------- ends, from outside


def test_process_exit_ends_session_with_end_and_normal_output(harness: Harness) -> None:
    recorder = record_everything(harness)
    process = harness.launch("checksum", "4", "3")
    assert harness.run_to_end() == 0, "a normal exit must not break in through the API"
    assert recorder.of("exit_process") == [("exit_process", 3)]
    assert_ended(recorder, SessionStatus.END, harness)
    assert harness.pipe.wait_eof() == harness.programs.reference("checksum", "4", "3")
    assert_reaped(process.pid)


def test_active_terminate_at_initial_break_kills_and_reaps(harness: Harness) -> None:
    recorder = record_everything(harness)
    process = harness.launch("checksum")
    harness.client.end_session(EndFlags.ACTIVE_TERMINATE)
    assert_reaped(process.pid)
    assert_ended(recorder, SessionStatus.END_SESSION_ACTIVE_TERMINATE, harness)
    assert harness.pipe.wait_eof(expect_output=False) == []


@pytest.mark.parametrize("flags", [EndFlags.ACTIVE_TERMINATE, EndFlags.PASSIVE])
def test_terminated_process_reports_death_by_sigkill_as_exit_code_137(
    harness: Harness, flags: EndFlags
) -> None:
    recorder = Recorder(mask=EventMask.EXIT_PROCESS)
    harness.client.set_event_callbacks(recorder)
    process = harness.launch("checksum")
    harness.client.end_session(flags)
    assert process.exit_code == 128 + signal.SIGKILL
    assert recorder.of("exit_process") in ([], [("exit_process", 128 + signal.SIGKILL)])


def test_active_terminate_of_stopped_multithreaded_process_reaps_every_thread(harness: Harness) -> None:
    recorder = record_everything(harness)
    process = harness.launch("threads", "4")
    harness.client.add_breakpoint(harness.symbol("threads", "thread_work"))
    harness.go()
    tids = [thread.tid for thread in harness.client.threads()]
    assert len(tids) >= 2
    harness.client.end_session(EndFlags.ACTIVE_TERMINATE)
    for tid in tids:
        assert_reaped(tid)
    assert_reaped(process.pid)
    assert_ended(recorder, SessionStatus.END_SESSION_ACTIVE_TERMINATE, harness)


def test_active_terminate_while_running_kills_and_reaps(harness: Harness) -> None:
    recorder = record_everything(harness)
    process = harness.launch("loop")
    harness.run_until_output("ready")
    harness.client.end_session(EndFlags.ACTIVE_TERMINATE)
    assert_reaped(process.pid)
    assert_ended(recorder, SessionStatus.END_SESSION_ACTIVE_TERMINATE, harness)


def test_active_detach_at_initial_break_lets_program_finish_normally(harness: Harness) -> None:
    recorder = record_everything(harness)
    process = harness.launch("checksum")
    harness.client.end_session(EndFlags.ACTIVE_DETACH)
    assert_ended(recorder, SessionStatus.END_SESSION_ACTIVE_DETACH, harness)
    assert harness.pipe.wait_eof() == harness.programs.reference("checksum")
    assert reap_child(process.pid) == 0


def test_active_detach_while_stopped_at_breakpoint_leaves_no_int3(harness: Harness) -> None:
    recorder = record_everything(harness)
    process = harness.launch("checksum", "5")
    target = harness.symbol("checksum", "target_fn")
    harness.client.add_breakpoint(target)
    harness.client.add_breakpoint(harness.symbol("checksum", "second_fn"))
    harness.client.add_breakpoint(harness.symbol("checksum", "main"))
    harness.go()
    harness.go()
    assert harness.rip() == target
    harness.client.end_session(EndFlags.ACTIVE_DETACH)
    assert_ended(recorder, SessionStatus.END_SESSION_ACTIVE_DETACH, harness)
    # the same result (the instruction under the breakpoint ran once, correctly)
    # and the same code checksum as without a debugger
    assert harness.pipe.wait_eof() == harness.programs.reference("checksum", "5")
    assert reap_child(process.pid) == 0


def test_active_detach_clears_hardware_breakpoints_and_watchpoints(harness: Harness) -> None:
    process = harness.launch("data")
    probe = harness.symbol("data", "probe")
    harness.client.add_breakpoint(probe, access="e")
    harness.client.add_breakpoint(harness.symbol("data", "watched"), access="w", size=4)
    harness.client.add_breakpoint(harness.symbol("data", "add"), access="e")
    harness.go()
    assert harness.rip() == probe
    harness.client.end_session(EndFlags.ACTIVE_DETACH)
    # a debug register left armed would kill the detached program with SIGTRAP
    assert harness.pipe.wait_eof() == harness.programs.reference("data")
    assert reap_child(process.pid) == 0


def test_active_detach_while_running_lets_program_finish(harness: Harness) -> None:
    process = harness.launch("loop", "1.5")
    harness.client.add_breakpoint(harness.symbol("loop", "main"))
    harness.go()
    harness.run_until_output("ready")
    harness.client.end_session(EndFlags.ACTIVE_DETACH)
    assert harness.client.get_execution_status() == Status.NO_DEBUGGEE
    assert harness.pipe.wait_eof() == harness.programs.reference("loop", "1.5")
    assert reap_child(process.pid) == 0


def test_passive_terminates_a_process_without_detach_on_exit(harness: Harness) -> None:
    recorder = record_everything(harness)
    process = harness.launch("checksum")
    harness.client.add_breakpoint(harness.symbol("checksum", "target_fn"))
    harness.go()
    harness.client.end_session(EndFlags.PASSIVE)
    assert_reaped(process.pid)
    assert_ended(recorder, SessionStatus.END_SESSION_PASSIVE, harness)
    assert harness.pipe.wait_eof(expect_output=False) == []


def test_passive_detaches_a_process_with_detach_on_exit(harness: Harness) -> None:
    recorder = record_everything(harness)
    process = harness.launch("checksum", options=ProcessOptions.DETACH_ON_EXIT)
    harness.client.add_breakpoint(harness.symbol("checksum", "target_fn"))
    harness.go()
    harness.client.end_session(EndFlags.PASSIVE)
    assert_ended(recorder, SessionStatus.END_SESSION_PASSIVE, harness)
    assert harness.pipe.wait_eof() == harness.programs.reference("checksum")
    assert reap_child(process.pid) == 0


def test_disconnect_on_a_local_client_is_invalid_and_keeps_the_session(harness: Harness) -> None:
    harness.launch("checksum")
    with pytest.raises(InvalidOperationError):
        harness.client.end_session(EndFlags.DISCONNECT)
    assert harness.client.get_execution_status() == Status.BREAK
    harness.run_to_end()
    assert harness.pipe.wait_eof() == harness.programs.reference("checksum")


ENDINGS = {
    "passive": EndFlags.PASSIVE,
    "active_terminate": EndFlags.ACTIVE_TERMINATE,
    "active_detach": EndFlags.ACTIVE_DETACH,
    "process_exit": None,
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_engine_runs_a_new_session_after_each_end(
    harness: Harness, ending: str, programs: Programs, tmp_path: Path
) -> None:
    recorder = record_everything(harness)
    first = harness.launch("checksum", "1")
    flags = ENDINGS[ending]
    if flags is None:
        harness.run_to_end()
    else:
        harness.client.end_session(flags)
    if flags == EndFlags.ACTIVE_DETACH:
        assert reap_child(first.pid) == 0
    harness.pipe.wait_eof(expect_output=flags in (None, EndFlags.ACTIVE_DETACH))
    mark = len(recorder.log)

    (tmp_path / "second").mkdir()
    second_pipe = OutputPipe(tmp_path / "second")
    try:
        second = harness.client.create_process([programs.path("checksum"), "2"], env=second_pipe.env)
        assert second.pid != first.pid
        bp = harness.client.add_breakpoint(harness.symbol("checksum", "target_fn"))
        harness.go()
        assert bp.hit_count == 1
        harness.client.remove_breakpoint(bp)  # the program checksums its code at exit
        harness.run_to_end()
        assert second_pipe.wait_eof() == programs.reference("checksum", "2")
    finally:
        second_pipe.close()
    assert_in_order(recorder.log, START, mark)
    assert_ended(recorder, SessionStatus.END, harness)


def test_engine_leaves_unrelated_child_processes_to_their_owner(harness: Harness) -> None:
    """A program embedding the engine keeps its own children: the engine must not
    reap a process it does not debug (waitpid(-1) would steal its exit status)."""
    unrelated = subprocess.Popen(
        [harness.programs.path("sleeper"), "0", "7"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    assert unrelated.stdin is not None
    unrelated.stdin.close()
    assert wait_exited(unrelated.pid)  # a zombie now, waiting for us
    harness.launch("checksum")
    harness.client.add_breakpoint(harness.symbol("checksum", "target_fn"))
    harness.go()
    harness.run_to_end()
    assert unrelated.wait(timeout=10) == 7
