"""fork followed (a CREATE_PROCESS for the child) and not followed
(ONLY_THIS_PROCESS: the child runs free with no int3 in it), and exec."""

from __future__ import annotations

from conftest import Harness, Recorder

from lindbg import EventMask, ProcessOptions, SessionStatus, Status

MASK = EventMask.CREATE_PROCESS | EventMask.EXIT_PROCESS | EventMask.SESSION_STATUS | EventMask.BREAKPOINT


def lines_without_pids(lines: list[str]) -> list[str]:
    """The forker's output without its one pid-dependent line."""
    return [line for line in lines if not line.startswith("child pid=")]


def test_followed_fork_reports_the_child_with_create_process(harness: Harness) -> None:
    recorder = Recorder(mask=MASK)
    harness.client.set_event_callbacks(recorder)
    parent = harness.launch("forker")
    assert harness.run_to_end() == 0
    output = harness.pipe.wait_eof()
    child_pid = int(harness.pipe.wait_for("child pid=").split("=")[1])
    assert recorder.of("create_process") == [("create_process", parent.pid), ("create_process", child_pid)]
    assert recorder.processes[1].pid == child_pid
    assert recorder.of("exit_process") == [("exit_process", 0), ("exit_process", 0)]
    assert recorder.of("session_status")[-1] == ("session_status", SessionStatus.END)
    assert lines_without_pids(output) == lines_without_pids(harness.programs.reference("forker"))


def test_followed_fork_child_can_be_stopped_and_its_registers_read(harness: Harness) -> None:
    recorder = Recorder(mask=MASK, answers={"create_process": Status.NO_CHANGE})
    harness.client.set_event_callbacks(recorder)
    harness.launch("forker")
    recorder.answers["create_process"] = Status.BREAK
    harness.go()
    assert harness.client.get_execution_status() == Status.BREAK
    child_pid = recorder.of("create_process")[-1][1]
    assert child_pid in [process.pid for process in harness.client.processes()]
    assert child_pid in [thread.tid for thread in harness.client.threads()]
    assert harness.client.get_register("rip", child_pid) != 0
    recorder.answers["create_process"] = Status.NO_CHANGE
    harness.run_to_end()
    output = harness.pipe.wait_eof()
    assert "child exited 0" in output


def test_fork_not_followed_child_runs_free_without_int3(harness: Harness) -> None:
    recorder = Recorder(mask=MASK)
    harness.client.set_event_callbacks(recorder)
    parent = harness.launch("forker", options=ProcessOptions.ONLY_THIS_PROCESS)
    work = harness.symbol("forker", "work")
    bp = harness.client.add_breakpoint(work)  # in memory when the program forks
    harness.go()
    # the first hit is the parent's work(5): the child's work(7) was not ours
    assert harness.client.current_thread().tid == parent.pid
    assert bp.hit_count == 1
    child_checksum = harness.pipe.wait_for("child checksum=")
    assert "child exited 0" in harness.pipe.lines
    harness.client.remove_breakpoint(bp)
    assert harness.run_to_end() == 0
    assert recorder.of("create_process") == [("create_process", parent.pid)]
    assert recorder.of("exit_process") == [("exit_process", 0)]
    reference = harness.programs.reference("forker")
    assert child_checksum in reference, "the child's code must hold no int3"
    assert lines_without_pids(harness.pipe.wait_eof()) == lines_without_pids(reference)


def test_exec_keeps_the_session_and_runs_the_new_program(harness: Harness) -> None:
    recorder = Recorder(mask=MASK)
    harness.client.set_event_callbacks(recorder)
    checksum = harness.programs.path("checksum")
    process = harness.launch("execer", checksum, "4", "5")
    before = harness.client.add_breakpoint(harness.symbol("execer", "before_exec"))
    harness.go()
    assert before.hit_count == 1
    assert harness.run_to_end() == 0
    assert recorder.of("exit_process") == [("exit_process", 5)]
    assert recorder.of("session_status")[-1] == ("session_status", SessionStatus.END)
    assert process.exit_code == 5
    output = harness.pipe.wait_eof()
    assert output[0] == "exec now 2"
    # the old image's breakpoint left nothing in the new one
    assert output[1:] == harness.programs.reference("checksum", "4", "5")
