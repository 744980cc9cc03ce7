"""Execution control: STEP_INTO, STEP_OVER over a call, set_interrupt from
another thread, wait_for_event timeouts, and the precedence of statuses
returned by several clients."""

from __future__ import annotations

import threading
import time

from conftest import WAIT, Harness, Recorder, process_state

from lindbg import DebugClient, EventMask, Status


def break_at_call(harness: Harness) -> tuple[int, int]:
    """Run the data fixture to the ``call add`` inside step_caller; (address, length)."""
    harness.launch("data")
    address, length = harness.programs.call_site("data", "step_caller", "add")
    bp = harness.client.add_breakpoint(address)
    harness.go()
    assert harness.rip() == address
    harness.client.remove_breakpoint(bp)
    return address, length


def test_step_into_enters_the_called_function(harness: Harness) -> None:
    address, length = break_at_call(harness)
    rsp = harness.client.get_register("rsp")
    harness.go(Status.STEP_INTO)
    assert harness.client.get_execution_status() == Status.BREAK
    assert harness.rip() == harness.symbol("data", "add")
    assert harness.client.get_register("rsp") == rsp - 8
    return_address = int.from_bytes(harness.client.read_memory(rsp - 8, 8), "little")
    assert return_address == address + length


def test_step_into_from_a_breakpoint_executes_exactly_one_instruction(harness: Harness) -> None:
    harness.launch("data")
    add = harness.symbol("data", "add")
    assert harness.client.read_memory(add, 1) == b"\x55"  # push %rbp (no endbr64: -fcf-protection=none)
    harness.client.add_breakpoint(add)
    harness.go()
    rsp = harness.client.get_register("rsp")
    harness.go(Status.STEP_INTO)
    assert harness.rip() == add + 1
    assert harness.client.get_register("rsp") == rsp - 8
    harness.go(Status.STEP_INTO)
    assert harness.rip() == add + 4  # mov %rsp,%rbp is 3 bytes


def test_step_over_a_call_stops_after_it_with_the_result(harness: Harness) -> None:
    address, length = break_at_call(harness)
    rsp = harness.client.get_register("rsp")
    harness.go(Status.STEP_OVER)
    assert harness.client.get_execution_status() == Status.BREAK
    assert harness.rip() == address + length
    assert harness.client.get_register("rsp") == rsp
    assert harness.client.get_register("rax") & 0xFFFFFFFF == 5  # add(2, 3)
    # the temporary mark at the return address is gone: no int3, output intact
    assert harness.client.read_memory(address + length, 1) == harness.programs.code_bytes(
        "data", address + length, 1
    )
    assert harness.run_to_end() == 0
    assert harness.pipe.wait_eof() == harness.programs.reference("data")


def test_step_over_a_plain_instruction_is_one_instruction(harness: Harness) -> None:
    harness.launch("data")
    add = harness.symbol("data", "add")
    harness.client.add_breakpoint(add)
    harness.go()
    harness.go(Status.STEP_OVER)
    assert harness.rip() == add + 1


def test_step_over_a_call_containing_a_breakpoint_stops_at_the_breakpoint(harness: Harness) -> None:
    _address, _ = break_at_call(harness)
    add = harness.symbol("data", "add")
    harness.client.add_breakpoint(add)
    harness.go(Status.STEP_OVER)
    assert harness.rip() == add


def test_set_interrupt_from_another_thread_breaks_a_long_loop(harness: Harness) -> None:
    process = harness.launch("loop")
    moments: dict[str, float] = {}
    failures: list[BaseException] = []

    def interrupter() -> None:
        try:
            harness.pipe.wait_for("ready")
            moments["interrupt"] = time.monotonic()
            harness.client.set_interrupt()
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    helper = threading.Thread(target=interrupter)
    harness.client.set_execution_status(Status.GO)
    helper.start()
    try:
        broke = harness.client.wait_for_event(timeout=WAIT)
        returned = time.monotonic()
    finally:
        helper.join(WAIT)
    assert not failures, failures
    assert broke is True
    assert returned - moments["interrupt"] < 2.0, "set_interrupt must break in promptly (spec: 100 ms)"
    assert harness.client.get_execution_status() == Status.BREAK
    assert process_state(process.pid) not in (None, "Z")
    assert "finished" not in harness.pipe.lines
    # registers are readable: the target really is stopped
    assert harness.rip() != 0


def test_wait_for_event_timeout_returns_false_and_target_keeps_running(harness: Harness) -> None:
    harness.launch("loop")
    harness.client.set_execution_status(Status.GO)
    start = time.monotonic()
    assert harness.client.wait_for_event(timeout=0.2) is False
    assert time.monotonic() - start >= 0.15
    harness.run_until_output("ready")  # it ran on after the timeout
    harness.client.set_interrupt()
    assert harness.client.wait_for_event(timeout=WAIT) is True
    assert harness.client.get_execution_status() == Status.BREAK


def test_break_wins_over_go_when_two_clients_disagree(harness: Harness) -> None:
    log: list[tuple[object, ...]] = []
    first = Recorder(mask=EventMask.BREAKPOINT, log=log, answers={"breakpoint": Status.GO})
    second_client = harness.client.create_client()
    second = Recorder(mask=EventMask.BREAKPOINT, log=[], answers={"breakpoint": Status.BREAK})
    harness.client.set_event_callbacks(first)
    second_client.set_event_callbacks(second)
    harness.launch("checksum", "3")
    bp = harness.client.add_breakpoint(harness.symbol("checksum", "target_fn"))
    harness.go()
    assert harness.client.get_execution_status() == Status.BREAK
    assert bp.hit_count == 1
    assert first.of("breakpoint") == second.of("breakpoint") == [("breakpoint", bp.id)]


def test_step_into_wins_over_go_when_two_clients_disagree(harness: Harness) -> None:
    first = Recorder(mask=EventMask.BREAKPOINT, answers={"breakpoint": Status.GO})
    second_client = harness.client.create_client()
    second = Recorder(mask=EventMask.BREAKPOINT, answers={"breakpoint": Status.STEP_INTO})
    second_client.set_event_callbacks(second)
    harness.client.set_event_callbacks(first)
    harness.launch("checksum", "3")
    target = harness.symbol("checksum", "target_fn")
    harness.client.add_breakpoint(target)
    harness.go()
    # the breakpoint is not a break (GO/STEP_INTO); the step after it is
    assert harness.client.get_execution_status() == Status.BREAK
    assert harness.rip() == target + 1


def test_go_not_handled_wins_over_go_handled_when_two_clients_disagree(harness: Harness) -> None:
    first = Recorder(mask=EventMask.EXCEPTION, answers={"exception": Status.GO_HANDLED})
    second_client = harness.client.create_client()
    second = Recorder(mask=EventMask.EXCEPTION, answers={"exception": Status.GO_NOT_HANDLED})
    harness.client.set_event_callbacks(first)
    second_client.set_event_callbacks(second)
    harness.launch("signals", "usr1-handler")
    assert harness.run_to_end() == 0
    # the signal was delivered: the program's handler ran
    assert "survived caught=1" in harness.pipe.wait_eof()
    assert first.of("exception") == [("exception", 10, True)]


def test_go_handled_wins_over_go_when_two_clients_disagree(harness: Harness) -> None:
    first = Recorder(mask=EventMask.EXCEPTION, answers={"exception": Status.GO})
    second_client = harness.client.create_client()
    second = Recorder(mask=EventMask.EXCEPTION, answers={"exception": Status.GO_HANDLED})
    harness.client.set_event_callbacks(first)
    second_client.set_event_callbacks(second)
    harness.launch("signals", "usr1-handler")
    assert harness.run_to_end() == 0
    assert "survived caught=0" in harness.pipe.wait_eof()


def test_callbacks_of_clients_run_in_client_creation_order(harness: Harness) -> None:
    log: list[tuple[object, ...]] = []

    class Named(Recorder):
        def __init__(self, name: str) -> None:
            super().__init__(mask=EventMask.BREAKPOINT, log=log)
            self.name = name

        def breakpoint(self, bp: object) -> Status:
            log.append(("breakpoint", self.name))
            return Status.NO_CHANGE

    second_client = harness.client.create_client()
    third_client = harness.client.create_client()
    third_client.set_event_callbacks(Named("third"))
    harness.client.set_event_callbacks(Named("first"))
    second_client.set_event_callbacks(Named("second"))
    harness.launch("checksum")
    harness.client.add_breakpoint(harness.symbol("checksum", "target_fn"))
    harness.go()
    assert log == [("breakpoint", "first"), ("breakpoint", "second"), ("breakpoint", "third")]


def test_callbacks_of_a_client_created_on_another_thread_run_on_that_thread(harness: Harness) -> None:
    """DESIGN section 3: a client's callbacks run on the thread that created it,
    inside that thread's dispatch_callbacks; its BREAK is honoured."""
    idents: list[int] = []
    failures: list[BaseException] = []
    others: list[DebugClient] = []

    def on_breakpoint(bp: object) -> Status:
        idents.append(threading.get_ident())
        return Status.BREAK

    def remote() -> None:
        try:
            other = harness.client.create_client()
            others.append(other)
            other.set_event_callbacks(
                Recorder(mask=EventMask.BREAKPOINT, answers={"breakpoint": on_breakpoint})
            )
            other.exit_dispatch(harness.client)  # the engine thread may go on
            assert other.dispatch_callbacks(timeout=WAIT), "never told to leave dispatch_callbacks"
        except BaseException as error:
            failures.append(error)

    harness.client.set_event_callbacks(Recorder(mask=EventMask.BREAKPOINT, answers={"breakpoint": Status.GO}))
    helper = threading.Thread(target=remote)
    helper.start()
    try:
        assert harness.client.dispatch_callbacks(timeout=WAIT), "the other thread never called exit_dispatch"
        harness.launch("checksum", "3")
        target = harness.symbol("checksum", "target_fn")
        bp = harness.client.add_breakpoint(target)
        harness.go()
        assert harness.rip() == target
        assert bp.hit_count == 1
    finally:
        if others:
            harness.client.exit_dispatch(others[0])
        helper.join(WAIT)
    assert not failures, failures
    assert idents == [helper.ident]


def test_a_client_hears_only_what_its_interest_mask_asks_for(harness: Harness) -> None:
    quiet = Recorder(mask=EventMask.SESSION_STATUS)
    harness.client.set_event_callbacks(quiet)
    harness.launch("checksum", "2")
    harness.client.add_breakpoint(harness.symbol("checksum", "target_fn"))
    harness.go()
    harness.run_to_end()
    assert {entry[0] for entry in quiet.log} == {"session_status"}
