"""Software breakpoints (many, enable/disable/remove, hit counts, one-shot),
hardware execute breakpoints and write / read-write watchpoints, and
``read_memory`` hiding the int3 bytes."""

from __future__ import annotations

import pytest
from conftest import Harness, Recorder

from lindbg import EventMask, InvalidOperationError, Status


def test_breakpoint_breaks_at_its_address_and_counts_hits(harness: Harness) -> None:
    recorder = Recorder(mask=EventMask.BREAKPOINT)
    harness.client.set_event_callbacks(recorder)
    harness.launch("checksum", "3")
    target = harness.symbol("checksum", "target_fn")
    bp = harness.client.add_breakpoint(target)
    assert bp.address == target
    assert bp.enabled
    assert bp.hit_count == 0
    for expected in (1, 2, 3):
        harness.go()
        assert harness.client.get_execution_status() == Status.BREAK
        assert harness.rip() == target
        assert bp.hit_count == expected
    assert recorder.of("breakpoint") == [("breakpoint", bp.id)] * 3
    harness.client.remove_breakpoint(bp)
    assert harness.run_to_end() == 0
    # the displaced instruction under the breakpoint ran correctly each time
    assert harness.pipe.wait_eof() == harness.programs.reference("checksum", "3")


def test_many_breakpoints_with_go_callbacks_all_count_their_hits(harness: Harness) -> None:
    recorder = Recorder(mask=EventMask.BREAKPOINT, answers={"breakpoint": Status.GO})
    harness.client.set_event_callbacks(recorder)
    harness.launch("checksum", "25")
    target = harness.client.add_breakpoint(harness.symbol("checksum", "target_fn"))
    second = harness.client.add_breakpoint(harness.symbol("checksum", "second_fn"))
    main = harness.client.add_breakpoint(harness.symbol("checksum", "main"))
    assert len({target.id, second.id, main.id}) == 3
    assert harness.run_to_end() == 0
    assert (target.hit_count, second.hit_count, main.hit_count) == (25, 25, 1)
    assert len(recorder.of("breakpoint")) == 51
    result = harness.pipe.wait_eof()[0]
    assert result == harness.programs.reference("checksum", "25")[0]


def test_disabled_breakpoint_is_skipped_and_fires_again_when_enabled(harness: Harness) -> None:
    harness.launch("checksum", "3")
    target = harness.client.add_breakpoint(harness.symbol("checksum", "target_fn"))
    second_address = harness.symbol("checksum", "second_fn")
    second = harness.client.add_breakpoint(second_address)
    target.enabled = False
    assert target.enabled is False
    harness.go()
    assert harness.rip() == second_address
    assert (target.hit_count, second.hit_count) == (0, 1)
    # a disabled breakpoint leaves the original byte in memory
    assert harness.client.read_memory(target.address, 1) == harness.programs.code_bytes(
        "checksum", target.address, 1
    )
    target.enabled = True
    harness.go()
    assert harness.rip() == target.address
    assert (target.hit_count, second.hit_count) == (1, 1)


def test_removed_breakpoint_is_not_hit_again(harness: Harness) -> None:
    harness.launch("checksum", "3")
    target = harness.client.add_breakpoint(harness.symbol("checksum", "target_fn"))
    harness.go()
    assert target.hit_count == 1
    harness.client.remove_breakpoint(target)
    assert target not in harness.client.breakpoints()
    assert harness.run_to_end() == 0
    assert target.hit_count == 1
    assert harness.pipe.wait_eof() == harness.programs.reference("checksum", "3")


def test_removing_a_breakpoint_twice_is_an_invalid_operation(harness: Harness) -> None:
    harness.launch("checksum")
    bp = harness.client.add_breakpoint(harness.symbol("checksum", "target_fn"))
    harness.client.remove_breakpoint(bp)
    with pytest.raises(InvalidOperationError):
        harness.client.remove_breakpoint(bp)


def test_one_shot_breakpoint_fires_once_then_is_gone(harness: Harness) -> None:
    harness.launch("checksum", "3")
    target = harness.symbol("checksum", "target_fn")
    bp = harness.client.add_breakpoint(target, one_shot=True)
    harness.go()
    assert harness.rip() == target
    assert bp.hit_count == 1
    assert bp not in harness.client.breakpoints()
    assert harness.run_to_end() == 0
    assert harness.pipe.wait_eof() == harness.programs.reference("checksum", "3")


def test_two_breakpoints_at_one_address_both_count_and_one_removed_keeps_the_other(harness: Harness) -> None:
    harness.launch("checksum", "3")
    target = harness.symbol("checksum", "target_fn")
    first = harness.client.add_breakpoint(target)
    second = harness.client.add_breakpoint(target)
    harness.go()
    assert (first.hit_count, second.hit_count) == (1, 1)
    harness.client.remove_breakpoint(first)
    harness.go()
    assert harness.rip() == target
    assert (first.hit_count, second.hit_count) == (1, 2)


def test_read_memory_hides_breakpoint_bytes(harness: Harness) -> None:
    harness.launch("checksum")
    target = harness.symbol("checksum", "target_fn")
    second = harness.symbol("checksum", "second_fn")
    start = min(target, second)
    length = max(target, second) - start + 8
    original = harness.client.read_memory(start, length)
    assert original == harness.programs.code_bytes("checksum", start, length)
    harness.client.add_breakpoint(target)
    harness.client.add_breakpoint(second)
    harness.client.add_breakpoint(target + 1)  # inside an instruction: bytes still hidden
    assert harness.client.read_memory(start, length) == original
    assert harness.client.read_memory(target, 1) == original[target - start : target - start + 1]
    harness.go()  # stopped on one of them: still hidden
    assert harness.client.read_memory(start, length) == original


def test_hardware_execute_breakpoint_breaks_at_its_address(harness: Harness) -> None:
    harness.launch("checksum", "3")
    second = harness.symbol("checksum", "second_fn")
    bp = harness.client.add_breakpoint(second, access="e")
    for expected in (1, 2):
        harness.go()
        assert harness.rip() == second
        assert bp.hit_count == expected
    # no int3 anywhere: the program's own checksum is unchanged even while it is set
    harness.client.set_event_callbacks(Recorder(mask=EventMask.BREAKPOINT, answers={"breakpoint": Status.GO}))
    assert harness.run_to_end() == 0
    assert bp.hit_count == 3
    assert harness.pipe.wait_eof() == harness.programs.reference("checksum", "3")


def test_write_watchpoint_breaks_after_each_write_only(harness: Harness) -> None:
    harness.launch("data")
    watched = harness.symbol("data", "watched")
    wp = harness.client.add_breakpoint(watched, access="w", size=4)
    for value in (1, 2, 3):
        harness.go()
        assert wp.hit_count == value
        # the trap comes after the store: memory already holds the new value
        assert int.from_bytes(harness.client.read_memory(watched, 4), "little") == value
    assert harness.run_to_end() == 0, "reads of the watched variable must not trigger a write watchpoint"
    assert wp.hit_count == 3
    assert harness.pipe.wait_eof() == harness.programs.reference("data")


def test_read_write_watchpoint_breaks_on_reads_and_writes(harness: Harness) -> None:
    harness.client.set_event_callbacks(Recorder(mask=EventMask.BREAKPOINT, answers={"breakpoint": Status.GO}))
    harness.launch("data")
    wp = harness.client.add_breakpoint(harness.symbol("data", "watched"), access="rw", size=4)
    assert harness.run_to_end() == 0
    assert wp.hit_count == 5  # three writes, two reads
    assert harness.pipe.wait_eof() == harness.programs.reference("data")


def test_watchpoint_ignores_writes_to_a_neighbouring_variable(harness: Harness) -> None:
    harness.client.set_event_callbacks(Recorder(mask=EventMask.BREAKPOINT, answers={"breakpoint": Status.GO}))
    harness.launch("data")
    wp = harness.client.add_breakpoint(harness.symbol("data", "neighbour"), access="w", size=4)
    assert harness.run_to_end() == 0
    assert wp.hit_count == 1
