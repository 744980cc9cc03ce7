"""Engine features beyond DESIGN.md section 7 (docs/engine.md): step counts,
reading into a caller's buffer, one-stop breakpoints that stay exact, and
vfork children that are not followed."""

from __future__ import annotations

import pytest
from conftest import Harness, Recorder

from lindbg import EventMask, InvalidOperationError, MemoryAccessError, ProcessOptions, SessionStatus, Status


def test_step_count_equals_that_many_single_steps(harness: Harness) -> None:
    """`t 8` from step_caller stays in the (non-PIE) program: compare the address
    it reaches with eight separate steps of an identical run."""
    steps = 8
    harness.launch("data")
    harness.client.add_breakpoint(harness.symbol("data", "step_caller"))
    harness.go()
    trail = []
    for _ in range(steps):
        harness.go(Status.STEP_INTO)
        trail.append(harness.rip())
    harness.client.end_session(0)

    harness.launch("data")
    bp = harness.client.add_breakpoint(harness.symbol("data", "step_caller"))
    harness.go()
    harness.client.remove_breakpoint(bp)  # the lean stepping loop runs without breakpoints
    harness.client.set_execution_status(Status.STEP_INTO, count=steps)
    assert harness.client.wait_for_event(timeout=10) is True
    assert harness.client.get_execution_status() == Status.BREAK
    assert harness.rip() == trail[-1]
    assert harness.symbol("data", "add") in trail  # it stepped into the call


def test_step_count_with_a_breakpoint_in_the_way_stops_at_it(harness: Harness) -> None:
    harness.client.set_event_callbacks(Recorder(mask=EventMask.BREAKPOINT))
    harness.launch("data")
    harness.client.add_breakpoint(harness.symbol("data", "step_caller"))
    add = harness.client.add_breakpoint(harness.symbol("data", "add"))
    harness.go()
    harness.client.set_execution_status(Status.STEP_INTO, count=1000)
    assert harness.client.wait_for_event(timeout=10) is True
    assert harness.rip() == add.address
    assert add.hit_count == 1


def test_step_count_must_be_positive(harness: Harness) -> None:
    harness.launch("data")
    with pytest.raises(InvalidOperationError, match="at least 1, not 0"):
        harness.client.set_execution_status(Status.STEP_INTO, count=0)


def test_read_memory_into_fills_the_callers_buffer_without_int3(harness: Harness) -> None:
    harness.launch("data")
    probe = harness.symbol("data", "probe")
    original = harness.client.read_memory(probe, 32)
    harness.client.add_breakpoint(probe)
    buffer = bytearray(32)
    assert harness.client.read_memory_into(probe, buffer) == 32
    assert bytes(buffer) == original
    view = memoryview(bytearray(64))[16:48]
    harness.client.read_memory_into(probe, view)
    assert view.tobytes() == original


def test_read_memory_into_unmapped_memory_names_the_address(harness: Harness) -> None:
    harness.launch("data")
    with pytest.raises(MemoryAccessError, match="0x10") as raised:
        harness.client.read_memory_into(0x10, bytearray(8))
    assert raised.value.address == 0x10


def test_breakpoints_on_every_function_keep_the_program_exact(harness: Harness) -> None:
    """Each first instruction is emulated on resume (one stop a hit) or stepped:
    either way the program must compute exactly what it does undebugged."""
    hits: list[int] = []

    def count(bp: object) -> Status:
        hits.append(harness.client.get_register("rip"))
        return Status.GO

    harness.client.set_event_callbacks(Recorder(mask=EventMask.BREAKPOINT, answers={"breakpoint": count}))
    harness.launch("data")
    names = ("probe", "report", "write_watched", "read_watched", "add", "step_caller")
    for name in names:
        harness.client.add_breakpoint(harness.symbol("data", name))
    assert harness.run_to_end() == 0
    assert len(hits) == 1 + 1 + 3 + 2 + 1 + 1
    output = harness.pipe.wait_eof()
    reference = harness.programs.reference("data")
    assert output[:-1] == reference[:-1]  # the checksum line sees the int3 bytes


def test_vfork_child_not_followed_runs_its_exec(harness: Harness) -> None:
    """posix_spawn uses vfork: with ONLY_THIS_PROCESS the child shares the
    parent's memory (and int3 bytes) until it execs, and must still get there
    without a word to the callbacks."""
    recorder = Recorder(mask=EventMask.CREATE_PROCESS | EventMask.BREAKPOINT | EventMask.EXIT_PROCESS)
    harness.client.set_event_callbacks(recorder)
    process = harness.launch("spawner", options=ProcessOptions.ONLY_THIS_PROCESS)
    bp = harness.client.add_breakpoint(harness.symbol("spawner", "spawn_point"))
    assert harness.run_to_end() == 2
    assert bp.hit_count == 2
    assert [entry[1] for entry in recorder.of("create_process")] == [process.pid]
    assert recorder.of("exit_process") == [("exit_process", 0)]
    lines = harness.pipe.wait_eof()
    assert "child-exit=0 after 9" in lines


def test_vfork_child_followed_is_a_process_of_the_session(harness: Harness) -> None:
    recorder = Recorder(mask=EventMask.CREATE_PROCESS | EventMask.EXIT_PROCESS)
    harness.client.set_event_callbacks(recorder)
    process = harness.launch("spawner")
    assert harness.run_to_end() == 0
    created = [entry[1] for entry in recorder.of("create_process")]
    assert created[0] == process.pid
    assert len(created) == 3  # the program, the vfork child, and the child's exec
    assert created[1] == created[2] != process.pid
    assert recorder.of("exit_process") == [("exit_process", 0), ("exit_process", 0)]
    assert "child-exit=0 after 9" in harness.pipe.wait_eof()


def test_an_internal_fault_mid_event_ends_the_session_with_failure(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When ptrace fails under the engine in the middle of an event (here the
    resume after a breakpoint hit), the session ends with FAILURE (system_error
    first), the program is let go intact, and the engine debugs the next one."""
    from lindbg.os.linux import ptrace

    recorder = Recorder(mask=EventMask.SESSION_STATUS | EventMask.SYSTEM_ERROR)
    harness.client.set_event_callbacks(recorder)
    process = harness.launch("data")
    harness.client.add_breakpoint(harness.symbol("data", "probe"))
    harness.client.set_event_callbacks(
        Recorder(
            mask=EventMask.SESSION_STATUS | EventMask.SYSTEM_ERROR | EventMask.BREAKPOINT,
            log=recorder.log,
            answers={"breakpoint": lambda bp: Status.GO},
        )
    )

    real_cont = ptrace.cont
    calls = []

    def cont_failing_once_after_the_hit(tid: int, sig: int = 0) -> None:
        calls.append(tid)
        if len(calls) == 2:  # the first resume after the breakpoint hit
            raise OSError(5, f"PTRACE_CONT (tid {tid}): Input/output error")
        real_cont(tid, sig)

    monkeypatch.setattr(ptrace, "cont", cont_failing_once_after_the_hit)
    harness.client.set_execution_status(Status.GO)
    assert harness.client.wait_for_event(timeout=10) is True
    monkeypatch.undo()
    assert harness.client.get_execution_status() == Status.NO_DEBUGGEE
    assert recorder.of("system_error")
    assert recorder.of("session_status")[-1] == ("session_status", SessionStatus.FAILURE)
    # the engine let the program go: it finishes on its own, no longer traced
    assert harness.pipe.wait_eof()
    assert_reaped_or_gone(process.pid)
    harness.launch("data")
    assert harness.run_to_end() == 0


def assert_reaped_or_gone(pid: int) -> None:
    """``pid`` is no longer traced by us: gone, or running free."""
    try:
        with open(f"/proc/{pid}/status") as status:
            tracer = next(line for line in status if line.startswith("TracerPid:"))
    except (OSError, StopIteration):
        return
    assert int(tracer.split()[1]) == 0
