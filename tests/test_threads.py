"""Threads: create/exit callbacks, breakpoints hit concurrently in every
thread, thread lists at a break."""

from __future__ import annotations

from conftest import Harness, Recorder

from lindbg import EventMask, Status

THREADS = 4
CALLS_PER_THREAD = 10


def test_thread_create_and_exit_callbacks_for_every_thread(harness: Harness) -> None:
    recorder = Recorder(mask=EventMask.CREATE_THREAD | EventMask.EXIT_THREAD | EventMask.EXIT_PROCESS)
    harness.client.set_event_callbacks(recorder)
    process = harness.launch("threads", str(THREADS))
    assert harness.run_to_end() == 0
    created = [entry[1] for entry in recorder.of("create_thread")]
    assert len(created) == THREADS
    assert len(set(created)) == THREADS
    assert process.pid not in created
    assert all(thread.pid == process.pid for thread in recorder.threads)
    assert recorder.of("exit_thread") == [("exit_thread", 0)] * THREADS
    # every thread was created before it exited, and the process exit comes last
    first_exit = next(i for i, entry in enumerate(recorder.log) if entry[0] == "exit_thread")
    first_create = next(i for i, entry in enumerate(recorder.log) if entry[0] == "create_thread")
    assert first_create < first_exit
    assert recorder.log[-1] == ("exit_process", 0)
    assert harness.pipe.wait_eof() == harness.programs.reference("threads", str(THREADS))


def test_breakpoint_is_hit_by_every_thread_and_the_program_result_is_intact(harness: Harness) -> None:
    hitters: list[int] = []

    def on_breakpoint(bp: object) -> Status:
        hitters.append(harness.client.current_thread().tid)
        return Status.GO

    harness.client.set_event_callbacks(
        Recorder(mask=EventMask.BREAKPOINT, answers={"breakpoint": on_breakpoint})
    )
    process = harness.launch("threads", str(THREADS))
    bp = harness.client.add_breakpoint(harness.symbol("threads", "thread_work"))
    assert harness.run_to_end() == 0
    assert bp.hit_count == THREADS * CALLS_PER_THREAD
    assert len(set(hitters)) == THREADS
    assert process.pid not in hitters
    output = harness.pipe.wait_eof()
    reference = harness.programs.reference("threads", str(THREADS))
    # results and total are the same; the checksum line differs (int3 still set at exit)
    assert output[:-1] == reference[:-1]


def test_threads_are_listed_at_a_break_and_the_current_thread_is_the_hitter(harness: Harness) -> None:
    process = harness.launch("threads", str(THREADS))
    assert [thread.tid for thread in harness.client.threads()] == [process.pid]
    harness.client.add_breakpoint(harness.symbol("threads", "thread_work"))
    harness.go()
    current = harness.client.current_thread()
    tids = [thread.tid for thread in harness.client.threads()]
    assert current.tid in tids
    assert current.tid != process.pid
    assert process.pid in tids
    assert len(tids) >= 2
    assert harness.rip() == harness.symbol("threads", "thread_work")
    # every listed thread is stopped: each one's registers can be read
    for tid in tids:
        assert harness.client.get_register("rip", tid) != 0


def test_stepping_one_thread_at_a_multithreaded_breakpoint(harness: Harness) -> None:
    harness.launch("threads", str(THREADS))
    work = harness.symbol("threads", "thread_work")
    bp = harness.client.add_breakpoint(work)
    harness.go()
    tid = harness.client.current_thread().tid
    harness.client.remove_breakpoint(bp)
    harness.go(Status.STEP_INTO)
    assert harness.client.current_thread().tid == tid
    assert harness.rip() == work + 1
    assert harness.run_to_end() == 0
    assert harness.pipe.wait_eof() == harness.programs.reference("threads", str(THREADS))
