"""end_session(REENTRANT): from a second thread while the first waits in
wait_for_event it returns at once, the wait ends with EngineUnusableError,
every later call raises it, breakpoint bytes are restored, and a new
DebugClient works afterwards."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import WAIT, Harness, OutputPipe, Programs, Recorder, kill_and_reap

from lindbg import (
    DebugClient,
    EndFlags,
    EngineUnusableError,
    EventCallbacks,
    SessionStatus,
    Status,
)


def test_reentrant_from_another_thread_returns_at_once_and_ends_the_wait(harness: Harness) -> None:
    recorder = Recorder()
    harness.client.set_event_callbacks(recorder)
    process = harness.launch("loop")
    moments: dict[str, float] = {}
    failures: list[BaseException] = []
    marks: list[int] = []

    def ender() -> None:
        try:
            harness.pipe.wait_for("ready")
            marks.append(len(recorder.log))  # the program is in its loop: no event is due
            moments["called"] = time.monotonic()
            harness.client.end_session(EndFlags.REENTRANT)
            moments["returned"] = time.monotonic()
        except BaseException as error:
            failures.append(error)

    helper = threading.Thread(target=ender)
    harness.client.set_execution_status(Status.GO)
    helper.start()
    try:
        with pytest.raises(EngineUnusableError) as caught:
            harness.client.wait_for_event(timeout=WAIT)
        raised = time.monotonic()
    finally:
        helper.join(WAIT)
    assert not failures, failures
    assert moments["returned"] - moments["called"] < 1.0, "REENTRANT must not wait for the engine"
    assert raised - moments["called"] < 2.0, "the wait in progress must end promptly (spec: 100 ms)"
    assert "reentrant" in str(caught.value).lower()
    assert recorder.log[marks[0] :] == [], "REENTRANT sends no notifications"
    kill_and_reap(process.pid)


def test_every_call_after_reentrant_raises_engine_unusable(harness: Harness, programs: Programs) -> None:
    process = harness.launch("checksum")
    bp = harness.client.add_breakpoint(harness.symbol("checksum", "target_fn"))
    client = harness.client
    client.end_session(EndFlags.REENTRANT)
    calls: dict[str, Callable[[], Any]] = {
        "get_execution_status": client.get_execution_status,
        "set_execution_status": lambda: client.set_execution_status(Status.GO),
        "wait_for_event": lambda: client.wait_for_event(timeout=1),
        "set_interrupt": client.set_interrupt,
        "read_memory": lambda: client.read_memory(bp.address, 4),
        "write_memory": lambda: client.write_memory(bp.address, b"\x90"),
        "get_register": lambda: client.get_register("rip"),
        "set_register": lambda: client.set_register("rax", 1),
        "add_breakpoint": lambda: client.add_breakpoint(bp.address + 1),
        "remove_breakpoint": lambda: client.remove_breakpoint(bp),
        "create_process": lambda: client.create_process([programs.path("checksum")]),
        "attach_process": lambda: client.attach_process(process.pid),
        "end_session passive": lambda: client.end_session(EndFlags.PASSIVE),
        "end_session terminate": lambda: client.end_session(EndFlags.ACTIVE_TERMINATE),
        "end_session detach": lambda: client.end_session(EndFlags.ACTIVE_DETACH),
        "create_client": client.create_client,
        "set_event_callbacks": lambda: client.set_event_callbacks(EventCallbacks()),
        "dispatch_callbacks": lambda: client.dispatch_callbacks(timeout=0.1),
        "load_extension": lambda: client.load_extension(object()),
    }
    not_raising = []
    for name, call in calls.items():
        try:
            call()
        except EngineUnusableError:
            continue
        except Exception as error:
            not_raising.append(f"{name} raised {type(error).__name__}: {error}")
        else:
            not_raising.append(f"{name} returned normally")
    assert not_raising == []
    kill_and_reap(process.pid)


def test_reentrant_restores_breakpoint_bytes_in_the_process(harness: Harness) -> None:
    process = harness.launch("checksum")
    target = harness.symbol("checksum", "target_fn")
    second = harness.symbol("checksum", "second_fn")
    harness.client.add_breakpoint(target)
    harness.client.add_breakpoint(second)
    harness.client.end_session(EndFlags.REENTRANT)
    with open(f"/proc/{process.pid}/mem", "rb") as memory:
        memory.seek(target)
        at_target = memory.read(4)
        memory.seek(second)
        at_second = memory.read(4)
    assert at_target == harness.programs.code_bytes("checksum", target, 4)
    assert at_second == harness.programs.code_bytes("checksum", second, 4)
    kill_and_reap(process.pid)


def test_reentrant_twice_is_harmless(harness: Harness) -> None:
    process = harness.launch("checksum")
    harness.client.end_session(EndFlags.REENTRANT)
    harness.client.end_session(EndFlags.REENTRANT)
    with pytest.raises(EngineUnusableError):
        harness.client.get_execution_status()
    kill_and_reap(process.pid)


def test_a_new_debug_client_works_after_reentrant(
    harness: Harness, programs: Programs, tmp_path: Any
) -> None:
    old = harness.launch("checksum")
    harness.client.end_session(EndFlags.REENTRANT)
    kill_and_reap(old.pid)
    (tmp_path / "new").mkdir()
    pipe = OutputPipe(tmp_path / "new")
    try:
        fresh = DebugClient()
        recorder = Recorder()
        fresh.set_event_callbacks(recorder)
        fresh.create_process([programs.path("checksum"), "2"], env=pipe.env)
        bp = fresh.add_breakpoint(programs.symbol("checksum", "target_fn"))
        fresh.set_execution_status(Status.GO)
        assert fresh.wait_for_event(timeout=WAIT)
        assert fresh.get_register("rip") == bp.address
        fresh.remove_breakpoint(bp)
        fresh.set_execution_status(Status.GO)
        assert fresh.wait_for_event(timeout=WAIT)
        assert fresh.get_execution_status() == Status.NO_DEBUGGEE
        assert recorder.of("session_status") == [
            ("session_status", SessionStatus.ACTIVE),
            ("session_status", SessionStatus.END),
        ]
        assert pipe.wait_eof() == programs.reference("checksum", "2")
        with pytest.raises(EngineUnusableError):  # the old one stays unusable
            harness.client.get_execution_status()
    finally:
        pipe.close()
