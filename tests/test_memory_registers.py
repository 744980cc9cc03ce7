"""Memory and registers: reads and writes seen by the program, unmapped memory
errors naming the address, general, sub- and vector registers."""

from __future__ import annotations

import pytest
from conftest import Harness

from lindbg import LindbgError, MemoryAccessError, Status

#: The 16 bytes data.c loads into xmm0 before calling probe().
XMM0_PATTERN = bytes.fromhex("1032547698badcfe0123456789abcdef")
UNMAPPED = 0xDEAD0000


def test_read_memory_returns_program_data(harness: Harness) -> None:
    harness.launch("data")
    message = harness.symbol("data", "message")
    assert harness.client.read_memory(message, 16) == b"hello from data\x00"
    assert harness.client.read_memory(message, 0) == b""


def test_write_memory_is_seen_by_the_program(harness: Harness) -> None:
    harness.launch("data")
    message = harness.symbol("data", "message")
    harness.client.write_memory(message, b"patched\x00")
    assert harness.client.read_memory(message, 8) == b"patched\x00"
    harness.run_to_end()
    assert "message=patched" in harness.pipe.wait_eof()


def test_read_of_unmapped_memory_raises_memory_access_error_naming_the_address(harness: Harness) -> None:
    harness.launch("data")
    with pytest.raises(MemoryAccessError) as caught:
        harness.client.read_memory(UNMAPPED, 16)
    assert f"{UNMAPPED:#x}" in str(caught.value).lower()
    assert caught.value.address == UNMAPPED
    assert harness.client.get_execution_status() == Status.BREAK  # the session goes on


def test_write_of_unmapped_memory_raises_memory_access_error_naming_the_address(harness: Harness) -> None:
    harness.launch("data")
    with pytest.raises(MemoryAccessError) as caught:
        harness.client.write_memory(UNMAPPED + 8, b"\x01\x02")
    assert f"{UNMAPPED + 8:#x}" in str(caught.value).lower()


def test_read_across_the_end_of_a_mapping_raises_memory_access_error(harness: Harness) -> None:
    harness.launch("data")
    message = harness.symbol("data", "message")
    page_end = (message | 0xFFF) + 1
    # the data segment of a small -no-pie program is followed by unmapped memory
    # or the heap; find the end of its mapping from /proc to be sure
    pid = harness.client.processes()[0].pid
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            low, high = (int(part, 16) for part in line.split()[0].split("-"))
            if low <= message < high:
                page_end = high
                break
    with open(f"/proc/{pid}/maps") as maps:
        starts = {int(line.split("-")[0], 16) for line in maps}
    if page_end in starts:
        pytest.skip("the mapping of message is followed directly by another mapping")
    with pytest.raises(MemoryAccessError):
        harness.client.read_memory(page_end - 8, 16)


def test_xmm0_holds_the_value_the_program_set(harness: Harness) -> None:
    harness.launch("data")
    probe = harness.symbol("data", "probe")
    harness.client.add_breakpoint(probe)
    harness.go()
    assert harness.rip() == probe
    assert harness.client.get_register("xmm0") == int.from_bytes(XMM0_PATTERN, "little")


def test_set_register_changes_what_the_program_sees(harness: Harness) -> None:
    harness.launch("data")
    report = harness.symbol("data", "report")
    harness.client.add_breakpoint(report)
    harness.go()
    assert harness.client.get_register("rdi") == 42
    harness.client.set_register("rdi", 12345)
    assert harness.client.get_register("rdi") == 12345
    harness.run_to_end()
    output = harness.pipe.wait_eof()
    assert "value=12345" in output
    assert "value=42" not in output


def test_set_rip_moves_execution(harness: Harness) -> None:
    """Skipping report(42)'s body by returning at once: set rip to its ``ret``."""
    harness.launch("data")
    report = harness.symbol("data", "report")
    harness.client.add_breakpoint(report)
    harness.go()
    rsp = harness.client.get_register("rsp")
    return_address = int.from_bytes(harness.client.read_memory(rsp, 8), "little")
    harness.client.set_register("rip", return_address)
    harness.client.set_register("rsp", rsp + 8)
    assert harness.rip() == return_address
    harness.run_to_end()
    output = harness.pipe.wait_eof()
    assert not any(line.startswith("value=") for line in output)
    assert any(line.startswith("message=") for line in output)


def test_sub_registers_are_views_of_rax(harness: Harness) -> None:
    harness.launch("data")
    harness.client.add_breakpoint(harness.symbol("data", "report"))
    harness.go()
    harness.client.set_register("rax", 0x1122334455667788)
    assert harness.client.get_register("eax") == 0x55667788
    assert harness.client.get_register("ax") == 0x7788
    assert harness.client.get_register("al") == 0x88
    harness.client.set_register("al", 0x99)
    assert harness.client.get_register("rax") == 0x1122334455667799


def test_general_registers_are_consistent_at_a_breakpoint(harness: Harness) -> None:
    harness.launch("data")
    report = harness.symbol("data", "report")
    harness.client.add_breakpoint(report)
    harness.go()
    rsp = harness.client.get_register("rsp")
    assert rsp % 16 == 8  # just after a call on the SysV ABI
    assert harness.client.get_register("cs") != 0
    assert harness.client.get_register("fs_base") != 0  # glibc's thread pointer
    assert harness.client.get_register("eflags") & 0x2  # the always-one bit


def test_unknown_register_name_raises_a_lindbg_error(harness: Harness) -> None:
    harness.launch("data")
    with pytest.raises(LindbgError):
        harness.client.get_register("no_such_register")
