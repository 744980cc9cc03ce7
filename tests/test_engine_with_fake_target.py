"""The engine's session logic, driven through the public API against a
FakeTarget (``create_process(argv, server=fake)``): the notification order of
DESIGN.md section 3, the default event filters, the endings and the least
execution wins rule, with no process, no ptrace and no compiler.

Each test is a straight story: callbacks and extension notifications append
to one ``log`` (conftest's Recorder and RecordingExtension) and the whole list
is asserted; what the engine asked of the target is ``fake.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import ALL_EVENTS, WAIT, Recorder, RecordingExtension, extension_item

from lindbg import (
    CDS,
    CES,
    DebugClient,
    EndFlags,
    EngineUnusableError,
    EventCallbacks,
    EventMask,
    InvalidOperationError,
    Notify,
    ProcessOptions,
    SessionStatus,
    Status,
)
from lindbg.targets.base import Capability, EventKind, ResumeMode, TargetEvent
from lindbg.testing import FakeTarget
from lindbg.testing.fake_target import FIRST_PID, KILLED

PID = FIRST_PID
CODE, STACK = 0x401000, 0x7FFFFFFDE000
#: push rbp; mov rbp, rsp; four nops; pop rbp; ret
PROGRAM = bytes.fromhex("554889e5909090905dc3")
IMAGES = {"prog": {CODE: PROGRAM, STACK: bytes(0x1000)}}
#: Where the tests' breakpoint goes: the first nop.
BP = CODE + 4
CONTINUE = ResumeMode.CONTINUE

GO_ = ("change_engine_state", CES.EXECUTION_STATUS, Status.GO)
BREAK_ = ("change_engine_state", CES.EXECUTION_STATUS, Status.BREAK)
NO_DEBUGGEE_ = ("change_engine_state", CES.EXECUTION_STATUS, Status.NO_DEBUGGEE)
ACCESSIBLE = extension_item(Notify.SESSION_ACCESSIBLE)
INACCESSIBLE = extension_item(Notify.SESSION_INACCESSIBLE)
INACTIVE = extension_item(Notify.SESSION_INACTIVE)


@pytest.fixture(autouse=True)
def reap_leftovers() -> None:
    """Overrides conftest's: nothing here starts a process (or needs gcc)."""


@dataclass
class Session:
    """An engine debugging ``prog`` on a FakeTarget, stopped at its initial break."""

    client: DebugClient
    fake: FakeTarget
    recorder: Recorder
    #: Callbacks and extension notifications, in order.
    log: list[tuple[Any, ...]]

    def go(self, status: Status = Status.GO) -> bool:
        """Resume with ``status``; what ``wait_for_event`` says (True: broke in or ended)."""
        self.client.set_execution_status(status)
        return self.client.wait_for_event(timeout=WAIT)

    def resumes(self) -> list[tuple[Any, ...]]:
        return [entry for entry in self.fake.log if entry[0] == "resume"]


def _start(fake: FakeTarget | None = None, **answers: Any) -> Session:
    fake = fake if fake is not None else FakeTarget(images=IMAGES)
    client = DebugClient()
    log: list[tuple[Any, ...]] = []
    client.load_extension(RecordingExtension(log))
    recorder = Recorder(ALL_EVENTS, log, answers)
    client.set_event_callbacks(recorder)
    client.create_process(["prog"], server=fake)
    fake.processes[PID].registers[PID].rip = CODE
    fake.processes[PID].registers[PID].rsp = STACK + 0x800
    return Session(client, fake, recorder, log)


@pytest.fixture
def session() -> Iterator[Session]:
    started = _start()
    yield started
    with contextlib.suppress(EngineUnusableError):  # a test may have ended it for good
        if started.client.get_execution_status() != Status.NO_DEBUGGEE:
            started.client.end_session(EndFlags.ACTIVE_TERMINATE)


def _signal(signo: int, address: int = 0) -> TargetEvent:
    return TargetEvent(EventKind.SIGNAL, PID, PID, signal=signo, address=address)


# -------------------------------------------------------------- session start


def test_a_session_starts_active_then_breaks_in_without_running_the_target() -> None:
    fake = FakeTarget(images=IMAGES)
    client = DebugClient()
    log: list[tuple[Any, ...]] = []
    client.load_extension(RecordingExtension(log))
    client.set_event_callbacks(Recorder(ALL_EVENTS, log))
    process = client.create_process(["prog", "--flag"], server=fake)
    try:
        assert log == [
            ("session_status", SessionStatus.ACTIVE),
            extension_item(Notify.SESSION_ACTIVE),
            ("change_debuggee_state", CDS.ALL, 0),
            ("create_process", PID),
            BREAK_,
            ACCESSIBLE,
        ]
        assert (process.pid, process.executable, process.origin) == (PID, "prog", "create")
        assert client.get_execution_status() == Status.BREAK
        assert client.wait_for_event(timeout=0) is True  # stopped: nothing to wait for
        assert fake.log == [("launch", PID, ["prog", "--flag"])]
    finally:
        client.end_session(EndFlags.ACTIVE_TERMINATE)


def test_attaching_starts_the_session_the_same_way() -> None:
    fake = FakeTarget(images=IMAGES, attachable={4242: "prog"})
    client = DebugClient()
    recorder = Recorder()
    client.set_event_callbacks(recorder)
    process = client.attach_process(4242, server=fake)
    try:
        assert recorder.log == [
            ("session_status", SessionStatus.ACTIVE),
            ("change_debuggee_state", CDS.ALL, 0),
            ("create_process", 4242),
            BREAK_,
        ]
        assert process.origin == "attach"
        assert fake.log == [("attach", 4242)]
    finally:
        client.end_session(EndFlags.ACTIVE_DETACH)
    assert fake.log[-1] == ("detach", 4242)


def test_an_interest_mask_limits_what_a_client_hears() -> None:
    fake = FakeTarget(images=IMAGES)
    client = DebugClient()
    recorder = Recorder(EventMask.SESSION_STATUS | EventMask.CREATE_PROCESS)
    client.set_event_callbacks(recorder)
    client.create_process(["prog"], server=fake)
    client.end_session(EndFlags.ACTIVE_TERMINATE)
    assert recorder.log == [
        ("session_status", SessionStatus.ACTIVE),
        ("create_process", PID),
        ("session_status", SessionStatus.END_SESSION_ACTIVE_TERMINATE),
    ]


# ---------------------------------------------------------------- breakpoints


def test_a_breakpoint_hit_calls_back_then_breaks_in(session: Session) -> None:
    bp = session.client.add_breakpoint(BP)
    assert session.fake.log[-1] == ("claim_site", PID, BP)
    assert session.fake.memory_reader(PID)(BP, 1) == b"\xcc"
    assert session.client.read_memory(BP, 1) == PROGRAM[4:5]  # the program's byte, not the int3
    session.log.clear()
    session.fake.push(TargetEvent(EventKind.BREAKPOINT, PID, PID, address=BP))
    assert session.go() is True
    assert session.log == [GO_, INACCESSIBLE, ("breakpoint", bp.id), BREAK_, ACCESSIBLE]
    assert session.resumes() == [("resume", CONTINUE, PID, 0)]
    assert session.client.get_register("rip") == BP
    assert bp.hit_count == 1
    event = session.client.get_last_event()
    assert event is not None and (event.kind, event.breakpoint_id) == ("breakpoint", bp.id)


@dataclass
class Voter(EventCallbacks):
    """Answers every breakpoint with ``answer`` and says so in ``log``."""

    name: str
    answer: Status
    log: list[tuple[str, int]]

    def get_interest_mask(self) -> int:
        return int(EventMask.BREAKPOINT)

    def breakpoint(self, bp: Any) -> Status:
        self.log.append((self.name, bp.id))
        return self.answer


@pytest.mark.parametrize(
    ("first", "second", "then"),
    [
        (Status.GO, Status.BREAK, None),
        (Status.BREAK, Status.GO, None),
        (Status.GO, Status.GO, ResumeMode.CONTINUE),
        (Status.GO, Status.STEP_INTO, ResumeMode.STEP),
        (Status.STEP_INTO, Status.GO, ResumeMode.STEP),
    ],
)
def test_the_least_execution_any_client_asks_for_wins(
    session: Session, first: Status, second: Status, then: ResumeMode | None
) -> None:
    votes: list[tuple[str, int]] = []
    session.client.set_event_callbacks(Voter("first", first, votes))
    session.client.create_client().set_event_callbacks(Voter("second", second, votes))
    bp = session.client.add_breakpoint(BP)
    session.fake.push(TargetEvent(EventKind.BREAKPOINT, PID, PID, address=BP), _signal(signal.SIGSEGV))
    assert session.go() is True
    assert votes == [("first", bp.id), ("second", bp.id)]  # in client creation order
    event = session.client.get_last_event()
    assert event is not None
    if then is None:
        assert session.resumes() == [("resume", CONTINUE, PID, 0)]
        assert event.kind == "breakpoint"
    else:
        assert session.resumes() == [("resume", CONTINUE, PID, 0), ("resume", then, PID, 0)]
        assert (event.kind, event.signal) == ("exception", signal.SIGSEGV)


# -------------------------------------------------------------------- signals


def test_default_filters_pass_sigusr1_to_the_program_and_break_on_sigsegv(session: Session) -> None:
    session.log.clear()
    session.fake.push(_signal(signal.SIGUSR1), _signal(signal.SIGSEGV, address=0x10))
    assert session.go() is True
    assert session.log == [
        GO_,
        INACCESSIBLE,
        ("exception", signal.SIGUSR1, True),
        ("exception", signal.SIGSEGV, True),
        BREAK_,
        ACCESSIBLE,
    ]
    assert session.resumes() == [("resume", CONTINUE, PID, 0), ("resume", CONTINUE, PID, signal.SIGUSR1)]
    assert session.recorder.exceptions[-1].address == 0x10
    # the held SIGSEGV reaches the program when it runs again (GO passes it on)
    session.client.set_execution_status(Status.GO)
    assert session.client.wait_for_event(timeout=0.05) is False
    assert session.resumes()[-1] == ("resume", CONTINUE, PID, signal.SIGSEGV)


def test_go_handled_swallows_the_signal_it_broke_on(session: Session) -> None:
    session.fake.push(_signal(signal.SIGSEGV))
    assert session.go() is True
    session.client.set_execution_status(Status.GO_HANDLED)
    assert session.client.wait_for_event(timeout=0.05) is False
    assert session.resumes()[-1] == ("resume", CONTINUE, PID, 0)


def test_callbacks_decide_before_the_filters() -> None:
    def answer(exc: Any) -> Status:
        return Status.BREAK if exc.signal == signal.SIGUSR1 else Status.GO_NOT_HANDLED

    started = _start(exception=answer)
    try:
        started.fake.push(_signal(signal.SIGSEGV), _signal(signal.SIGUSR1))
        assert started.go() is True
        assert started.recorder.of("exception") == [
            ("exception", signal.SIGSEGV, True),
            ("exception", signal.SIGUSR1, True),
        ]
        assert started.resumes() == [("resume", CONTINUE, PID, 0), ("resume", CONTINUE, PID, signal.SIGSEGV)]
    finally:
        started.client.end_session(EndFlags.ACTIVE_TERMINATE)


def test_a_signal_that_would_kill_gets_a_second_chance(session: Session) -> None:
    session.fake.fatal_signals = {signal.SIGUSR1, signal.SIGSEGV}
    session.fake.push(_signal(signal.SIGUSR1), _signal(signal.SIGSEGV))
    assert session.go() is True
    # SIGUSR1 passes at both chances; SIGSEGV breaks at its first, and again at its second
    assert session.recorder.of("exception") == [
        ("exception", signal.SIGUSR1, True),
        ("exception", signal.SIGUSR1, False),
        ("exception", signal.SIGSEGV, True),
    ]
    assert session.resumes()[-1] == ("resume", CONTINUE, PID, signal.SIGUSR1)
    session.log.clear()
    assert session.go() is True
    assert session.log == [GO_, INACCESSIBLE, ("exception", signal.SIGSEGV, False), BREAK_, ACCESSIBLE]


# ------------------------------------------------------------------ the end


def test_the_last_process_exiting_ends_the_session_without_a_break(session: Session) -> None:
    process = session.client.processes()[0]
    session.log.clear()
    session.fake.push(
        TargetEvent(EventKind.EXIT_PROCESS, PID, PID, code=3),
        TargetEvent(EventKind.PROCESS_GONE, PID, PID, code=3),
    )
    assert session.go() is True
    assert session.log == [
        GO_,
        INACCESSIBLE,
        ("exit_process", 3),
        NO_DEBUGGEE_,
        ("session_status", SessionStatus.END),
        INACTIVE,
    ]
    assert session.client.get_execution_status() == Status.NO_DEBUGGEE
    assert (process.is_valid, process.exit_code) == (False, 3)
    assert session.fake.process_ids() == []
    assert len(session.resumes()) == 2  # after the exit event too: the process goes on to its end


def test_the_console_stops_at_exit_while_the_process_is_still_readable(session: Session) -> None:
    session.client.set_break_on_process_exit(True)
    session.fake.push(
        TargetEvent(EventKind.EXIT_PROCESS, PID, PID, code=3),
        TargetEvent(EventKind.PROCESS_GONE, PID, PID, code=3),
    )
    assert session.go() is True
    assert session.log[-3:] == [("exit_process", 3), BREAK_, ACCESSIBLE]
    assert session.client.read_memory(CODE, len(PROGRAM)) == PROGRAM
    session.log.clear()
    assert session.go() is True
    assert session.log == [GO_, INACCESSIBLE, NO_DEBUGGEE_, ("session_status", SessionStatus.END), INACTIVE]


def test_active_detach_removes_breakpoints_and_hands_back_the_held_signal(session: Session) -> None:
    session.client.add_breakpoint(BP)
    session.fake.push(_signal(signal.SIGSEGV))
    assert session.go() is True
    session.log.clear()
    session.client.end_session(EndFlags.ACTIVE_DETACH)
    assert session.log == [
        NO_DEBUGGEE_,
        ("session_status", SessionStatus.END_SESSION_ACTIVE_DETACH),
        INACTIVE,
    ]
    assert session.fake.log[-2:] == [("set_pending_signal", PID, signal.SIGSEGV), ("detach", PID)]
    assert not any(entry[0] == "kill" for entry in session.fake.log)
    left = session.fake.gone[PID]  # the process as it was let go: its own bytes, no int3
    assert bytes(left.pages[CODE][: len(PROGRAM)]) == PROGRAM


def test_active_detach_of_a_running_target(session: Session) -> None:
    session.client.set_execution_status(Status.GO)
    assert session.client.wait_for_event(timeout=0.05) is False
    assert session.fake.running
    session.client.end_session(EndFlags.ACTIVE_DETACH)
    assert session.fake.log[-1] == ("detach", PID)
    assert session.recorder.of("session_status")[-1] == (
        "session_status",
        SessionStatus.END_SESSION_ACTIVE_DETACH,
    )


def test_active_terminate_kills_every_process(session: Session) -> None:
    process = session.client.processes()[0]
    session.log.clear()
    session.client.end_session(EndFlags.ACTIVE_TERMINATE)
    assert session.log == [
        NO_DEBUGGEE_,
        ("session_status", SessionStatus.END_SESSION_ACTIVE_TERMINATE),
        INACTIVE,
    ]
    assert session.fake.log[-1] == ("kill", PID)
    assert process.exit_code == KILLED
    assert session.fake.process_ids() == []


@pytest.mark.parametrize(("options", "release"), [(0, "kill"), (ProcessOptions.DETACH_ON_EXIT, "detach")])
def test_a_passive_end_releases_each_process_by_its_options(options: int, release: str) -> None:
    fake = FakeTarget(images=IMAGES)
    client = DebugClient()
    recorder = Recorder()
    client.set_event_callbacks(recorder)
    client.create_process(["prog"], server=fake, options=options)
    client.end_session(EndFlags.PASSIVE)
    assert fake.log[-1] == (release, PID)
    assert recorder.log[-2:] == [NO_DEBUGGEE_, ("session_status", SessionStatus.END_SESSION_PASSIVE)]


# ------------------------------------------------------------ other threads


def test_set_interrupt_from_another_thread_breaks_in(session: Session) -> None:
    session.client.set_execution_status(Status.GO)

    def interrupt() -> None:
        if session.fake.waiting.wait(WAIT):  # the engine thread is inside wait_event
            session.client.set_interrupt()

    interrupter = threading.Thread(target=interrupt)
    interrupter.start()
    try:
        assert session.client.wait_for_event(timeout=WAIT) is True
    finally:
        interrupter.join(WAIT)
    assert ("request_interrupt",) in session.fake.log
    assert session.log[-2:] == [BREAK_, ACCESSIBLE]
    event = session.client.get_last_event()
    assert event is not None and (event.kind, event.tid) == ("break", PID)


def test_reentrant_end_from_another_thread_stops_a_wait_within_100_ms(session: Session) -> None:
    session.client.add_breakpoint(BP)
    session.client.set_execution_status(Status.GO)
    ended: list[float] = []

    def end() -> None:
        if session.fake.waiting.wait(WAIT):
            ended.append(time.monotonic())
            session.client.end_session(EndFlags.REENTRANT)

    thread = threading.Thread(target=end)
    thread.start()
    try:
        with pytest.raises(EngineUnusableError):
            session.client.wait_for_event(timeout=3 * WAIT)
        raised = time.monotonic()
    finally:
        thread.join(WAIT)
    assert ended and raised - ended[0] < 0.1
    assert ("restore_breakpoint_bytes",) in session.fake.log
    assert session.fake.memory_reader(PID)(BP, 1) == PROGRAM[4:5]
    with pytest.raises(EngineUnusableError):
        session.client.get_execution_status()


# -------------------------------------------------------------- capabilities


def test_what_the_target_cannot_do_is_refused_in_its_words() -> None:
    fake = FakeTarget(images=IMAGES, capabilities=Capability.LAUNCH)
    client = DebugClient()
    client.create_process(["prog"], server=fake)
    try:
        with pytest.raises(InvalidOperationError, match=r"^the target is a fake: cannot run or step it$"):
            client.set_execution_status(Status.GO)
        with pytest.raises(InvalidOperationError, match=r"^the target is a fake: cannot write memory$"):
            client.write_memory(CODE, b"\x90")
        with pytest.raises(InvalidOperationError, match=r"^the target is a fake: cannot set breakpoints$"):
            client.add_breakpoint(BP)
        assert client.read_memory(CODE, len(PROGRAM)) == PROGRAM
    finally:
        client.end_session(EndFlags.ACTIVE_DETACH)


def test_active_terminate_kills_even_on_a_target_that_cannot_run() -> None:
    fake = FakeTarget(images=IMAGES, capabilities=Capability.LAUNCH)
    client = DebugClient()
    client.create_process(["prog"], server=fake)
    client.end_session(EndFlags.ACTIVE_TERMINATE)
    assert fake.log[-1] == ("kill", PID)


def test_a_refused_launch_leaves_the_engine_free_for_another_target() -> None:
    client = DebugClient()
    with pytest.raises(InvalidOperationError, match=r"^the target is a fake: "):
        client.create_process(["prog"], server=FakeTarget(capabilities=Capability.ATTACH))
    fake = FakeTarget(images=IMAGES)
    try:
        assert client.create_process(["prog"], server=fake).pid == PID
    finally:
        client.end_session(EndFlags.ACTIVE_TERMINATE)


def test_a_target_that_cannot_launch_or_attach_refuses_in_the_contracts_words() -> None:
    client = DebugClient()
    with pytest.raises(InvalidOperationError, match=r"^the target is a fake: cannot start a process$"):
        client.create_process(["prog"], server=FakeTarget(capabilities=Capability.ATTACH))
    with pytest.raises(InvalidOperationError, match=r"^the target is a fake: cannot attach to a process$"):
        client.attach_process(4242, server=FakeTarget(capabilities=Capability.LAUNCH))


# ------------------------------------------------------------------ hygiene


def test_importing_the_fake_target_touches_no_ptrace_machinery() -> None:
    probe = (
        "import json, sys, threading\n"
        "def caught():\n"
        "    with open('/proc/self/status') as f:\n"
        "        return next(l.split()[1] for l in f if l.startswith('SigCgt:'))\n"
        "before = caught()\n"
        "import lindbg.testing.fake_target\n"
        "print(json.dumps({'modules': sorted(m for m in sys.modules if m.startswith('lindbg')),\n"
        "                  'caught': [before, caught()], 'threads': threading.active_count()}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=dict(os.environ),
    )
    found = json.loads(run.stdout)
    ptrace_side = {
        "lindbg.targets.live",
        "lindbg.os.linux.ptrace",
        "lindbg.os.linux.wakeup",
        "lindbg.os.linux.memory",
    }
    assert "lindbg.testing.fake_target" in found["modules"]
    assert ptrace_side.isdisjoint(found["modules"])
    assert found["caught"][0] == found["caught"][1]  # no signal handler installed
    assert found["threads"] == 1
