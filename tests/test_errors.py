"""Errors: calls that need a debuggee once the session has ended
(NoDebuggeeError), failing launches and attaches, calls on a running target."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Harness, Recorder

from lindbg import (
    DebugClient,
    EndFlags,
    EngineUnusableError,
    InvalidOperationError,
    LindbgError,
    MemoryAccessError,
    NoDebuggeeError,
    Status,
    TargetAccessError,
)


def debuggee_calls(client: DebugClient, address: int) -> dict[str, Callable[[], Any]]:
    """Calls that need a debuggee."""
    return {
        "read_memory": lambda: client.read_memory(address, 4),
        "write_memory": lambda: client.write_memory(address, b"\x90"),
        "get_register": lambda: client.get_register("rip"),
        "set_register": lambda: client.set_register("rax", 1),
        "add_breakpoint": lambda: client.add_breakpoint(address),
        "set_execution_status": lambda: client.set_execution_status(Status.GO),
        "wait_for_event": lambda: client.wait_for_event(timeout=1),
    }


def assert_all_raise_no_debuggee(calls: dict[str, Callable[[], Any]]) -> None:
    """Every call raises NoDebuggeeError."""
    wrong = []
    for name, call in calls.items():
        try:
            call()
        except NoDebuggeeError:
            continue
        except Exception as error:
            wrong.append(f"{name} raised {type(error).__name__}: {error}")
        else:
            wrong.append(f"{name} returned normally")
    assert wrong == []


def test_error_classes_are_lindbg_errors() -> None:
    for error in (
        EngineUnusableError,
        NoDebuggeeError,
        MemoryAccessError,
        InvalidOperationError,
        TargetAccessError,
    ):
        assert issubclass(error, LindbgError)
    assert issubclass(MemoryAccessError, TargetAccessError)


def test_calls_without_any_session_raise_no_debuggee(client: DebugClient) -> None:
    assert client.get_execution_status() == Status.NO_DEBUGGEE
    assert_all_raise_no_debuggee(debuggee_calls(client, 0x401000))


@pytest.mark.parametrize("flags", [None, EndFlags.PASSIVE, EndFlags.ACTIVE_TERMINATE, EndFlags.ACTIVE_DETACH])
def test_calls_after_the_session_ended_raise_no_debuggee(harness: Harness, flags: EndFlags | None) -> None:
    process = harness.launch("checksum")
    address = harness.symbol("checksum", "target_fn")
    if flags is None:
        harness.run_to_end()
    else:
        harness.client.end_session(flags)
    assert harness.client.get_execution_status() == Status.NO_DEBUGGEE
    assert harness.client.processes() == []
    assert_all_raise_no_debuggee(debuggee_calls(harness.client, address))
    assert process.is_valid is False


def test_ending_a_session_that_does_not_exist_changes_nothing(client: DebugClient) -> None:
    recorder = Recorder()
    client.set_event_callbacks(recorder)
    client.end_session(EndFlags.ACTIVE_TERMINATE)
    assert recorder.of("session_status") == []
    assert client.get_execution_status() == Status.NO_DEBUGGEE


def test_launching_a_missing_program_raises_target_access_error_and_starts_no_session(
    client: DebugClient, tmp_path: Any
) -> None:
    recorder = Recorder()
    client.set_event_callbacks(recorder)
    missing = str(tmp_path / "no-such-program")
    with pytest.raises(TargetAccessError) as caught:
        client.create_process([missing])
    assert "no-such-program" in str(caught.value)
    assert recorder.of("session_status") == []
    assert client.get_execution_status() == Status.NO_DEBUGGEE


def test_attaching_to_a_pid_that_does_not_exist_raises_target_access_error(client: DebugClient) -> None:
    gone = max(int(entry) for entry in os.listdir("/proc") if entry.isdigit()) + 100000
    with pytest.raises(TargetAccessError) as caught:
        client.attach_process(gone)
    assert str(gone) in str(caught.value)
    assert client.get_execution_status() == Status.NO_DEBUGGEE


def test_register_access_while_the_target_runs_is_an_invalid_operation(harness: Harness) -> None:
    harness.launch("loop")
    harness.run_until_output("ready")
    with pytest.raises(InvalidOperationError):
        harness.client.get_register("rip")
    with pytest.raises(InvalidOperationError):
        harness.client.set_execution_status(Status.GO)
    harness.client.set_interrupt()
    assert harness.client.wait_for_event(timeout=10)
    assert harness.client.get_register("rip") != 0


def test_breakpoint_handles_are_invalid_after_the_session_ended(harness: Harness) -> None:
    harness.launch("checksum")
    bp = harness.client.add_breakpoint(harness.symbol("checksum", "target_fn"))
    harness.client.end_session(EndFlags.ACTIVE_TERMINATE)
    assert harness.client.breakpoints() == []
    with pytest.raises(LindbgError):
        harness.client.remove_breakpoint(bp)
