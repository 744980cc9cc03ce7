"""The engine's seams, end to end with real processes: requests from other threads
carried to the engine thread (breakpoints, setters, ``execute``), output origins and
prompts, shared event filters, the callback timeout of a stalled client, the inbox's
descriptor, a source line stepped as one ``step_range`` request, and the console
serving other threads while its prompt waits.

Every cross-thread test follows one pattern: the test's thread (the engine thread)
waits in ``dispatch_callbacks`` while a helper thread does the work and then calls
``exit_dispatch``; every wait is bounded (``WAIT``), nothing sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest
from conftest import FIXTURE_SOURCES, WAIT, Harness, Recorder, assert_reaped

from lindbg import CES, DebugClient, EventFilter, EventMask, OutputMask, Status
from lindbg.cli.console import run_console
from lindbg.constants import CodeLevel
from lindbg.engine.dispatch import OutputOrigin
from lindbg.engine.inbox import Inbox
from lindbg.targets.base import ResumeMode
from lindbg.targets.live import LiveTarget

# ------------------------------------------------------------------ helpers


def serve_while(client: DebugClient, work: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Run ``work`` on a helper thread while this (the engine) thread waits in
    ``dispatch_callbacks``; the helper ends the dispatch when done. Returns what
    ``work`` returned and re-raises what it raised."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed to the test's thread
            outcome["error"] = error
        finally:
            with contextlib.suppress(Exception):
                client.exit_dispatch(client)

    helper = threading.Thread(target=run, name="seams-helper", daemon=True)
    helper.start()
    assert client.dispatch_callbacks(timeout=timeout), (
        f"the helper thread did not finish within {timeout} s (its requests were not served?)"
    )
    helper.join(timeout)
    assert not helper.is_alive(), "the helper thread is still running"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


class OriginRecorder:
    """Output callbacks with ``output_from``: keeps (mask, text, origin) in order and
    calls ``on_text`` (if given) for each piece."""

    def __init__(self, on_text: Callable[[int, str, OutputOrigin], None] | None = None) -> None:
        self.items: list[tuple[int, str, OutputOrigin]] = []
        self.on_text = on_text

    def output_from(self, mask: int, text: str, origin: OutputOrigin) -> None:
        self.items.append((int(mask), text, origin))
        if self.on_text is not None:
            self.on_text(mask, text, origin)

    def texts(self) -> list[str]:
        return [text for _, text, _ in self.items]

    def joined(self) -> str:
        return "".join(self.texts())

    def with_text(self, needle: str) -> list[tuple[int, str, OutputOrigin]]:
        return [item for item in self.items if needle in item[1]]


class ThreadRecorder(Recorder):
    """A ``Recorder`` that also notes which threads its change_engine_state ran on."""

    def __init__(self, mask: int) -> None:
        super().__init__(mask=mask)
        self.idents: set[int] = set()

    def change_engine_state(self, flags: int, argument: int) -> None:
        self.idents.add(threading.get_ident())
        super().change_engine_state(flags, argument)


class PlainRecorder:
    """Output callbacks with ``output`` only (no origin)."""

    def __init__(self) -> None:
        self.items: list[tuple[int, str]] = []

    def output(self, mask: int, text: str) -> None:
        self.items.append((int(mask), text))


def line_of(source: str, text: str) -> int:
    """The number of the first line of ``fixtures/<source>`` containing ``text``."""
    with open(FIXTURE_SOURCES / source) as handle:
        for number, line in enumerate(handle, 1):
            if text in line:
                return number
    raise AssertionError(f"{text!r} not in {source}")


# ------------------------------------------- 1. breakpoints from another thread


def test_hardware_breakpoint_disabled_and_enabled_from_another_thread_still_works(harness: Harness) -> None:
    client = harness.client
    harness.launch("checksum", "3")
    target_fn = harness.symbol("checksum", "target_fn")
    second_fn = harness.symbol("checksum", "second_fn")
    hardware = client.add_breakpoint(target_fn, access="e")
    software = client.add_breakpoint(second_fn)

    # off and on again from a thread that is not the tracer (ptrace pokeuser of the
    # debug registers must be carried to the engine thread)
    def toggle() -> tuple[bool, bool]:
        hardware.enabled = False
        off = hardware.enabled
        hardware.enabled = True
        return off, hardware.enabled

    assert serve_while(client, toggle) == (False, True)
    harness.go()
    assert harness.rip() == target_fn
    assert (hardware.hit_count, software.hit_count) == (1, 0)

    harness.go()  # second_fn of the same iteration
    assert harness.rip() == second_fn

    def disable() -> bool:
        hardware.enabled = False
        return hardware.enabled

    assert serve_while(client, disable) is False
    harness.go()  # iteration 2: target_fn runs past the disabled debug register
    assert harness.rip() == second_fn
    assert (hardware.hit_count, software.hit_count) == (1, 2)

    def enable() -> bool:
        hardware.enabled = True
        return hardware.enabled

    assert serve_while(client, enable) is True
    harness.go()  # iteration 3
    assert harness.rip() == target_fn
    assert (hardware.hit_count, software.hit_count) == (2, 2)

    client.remove_breakpoint(hardware)
    client.remove_breakpoint(software)
    assert harness.run_to_end() == 0
    assert harness.pipe.wait_eof() == harness.programs.reference("checksum", "3")


# ------------------------------------------------ 2. setters from another thread


def test_signal_filters_exit_break_and_threads_set_from_another_thread_take_effect(harness: Harness) -> None:
    client = harness.client
    recorder = ThreadRecorder(
        mask=EventMask.EXCEPTION | EventMask.EXIT_PROCESS | EventMask.CHANGE_ENGINE_STATE
    )
    client.set_event_callbacks(recorder)
    process = harness.launch("signals", "usr1-handler")
    recorder.idents.clear()
    assert client.get_event_filter(signal.SIGUSR1) is EventFilter.IGNORE  # the default: passed on
    assert client.get_event_filter(signal.SIGSEGV) is EventFilter.BREAK

    def configure() -> list[int]:
        client.set_signal_break(signal.SIGUSR1, True)
        client.set_event_filter(signal.SIGSEGV, EventFilter.OUTPUT)
        client.set_break_on_process_exit(True)
        return [thread.tid for thread in client.threads()]

    assert serve_while(client, configure) == [process.pid]
    assert client.get_event_filter(signal.SIGUSR1) is EventFilter.BREAK
    assert client.signal_breaks(signal.SIGUSR1)
    assert client.get_event_filter(signal.SIGSEGV) is EventFilter.OUTPUT
    # the filter changes were announced to this thread's callbacks, and on this thread:
    # the setters ran on the engine thread, not on the helper that called them
    changes = recorder.of("change_engine_state")
    assert ("change_engine_state", int(CES.EVENT_FILTERS), int(signal.SIGUSR1)) in changes
    assert ("change_engine_state", int(CES.EVENT_FILTERS), int(signal.SIGSEGV)) in changes
    assert recorder.idents == {threading.get_ident()}

    # SIGUSR1 now breaks at its first chance ...
    harness.go()
    assert client.get_execution_status() == Status.BREAK
    assert recorder.of("exception") == [("exception", signal.SIGUSR1, True)]
    last = client.get_last_event()
    assert last is not None and last.signal == signal.SIGUSR1
    # ... and passed on, the program's handler gets it
    harness.go(Status.GO_NOT_HANDLED)
    # the process exit now stops, like cdb's final breakpoint
    assert client.get_execution_status() == Status.BREAK
    assert recorder.of("exit_process") == [("exit_process", 0)]
    harness.go()
    assert client.get_execution_status() == Status.NO_DEBUGGEE
    assert harness.pipe.wait_eof() == ["mode=usr1-handler", "survived caught=1"]


def test_a_signal_swallowed_from_another_thread_is_neither_reported_nor_delivered(harness: Harness) -> None:
    client = harness.client
    recorder = Recorder(mask=EventMask.EXCEPTION)
    client.set_event_callbacks(recorder)
    harness.launch("signals", "usr1-handler")

    def swallow() -> None:
        client.set_signal_break(signal.SIGUSR1, True)  # would break, if it were reported
        client.set_signal_swallowed(signal.SIGUSR1, True)

    serve_while(client, swallow)
    assert harness.run_to_end() == 0
    assert recorder.of("exception") == []
    assert harness.pipe.wait_eof() == ["mode=usr1-handler", "survived caught=0"]


# ------------------------------------------------ 3. execute, origins and prompts


def test_execute_from_another_thread_runs_on_the_engine_thread_and_marks_its_output(harness: Harness) -> None:
    client = harness.client
    mine = OriginRecorder()
    client.set_output_callbacks(mine)
    harness.launch("checksum")
    rip = harness.rip()
    theirs = OriginRecorder()
    ran_on: list[int] = []

    def work() -> DebugClient:
        other = client.create_client()  # owned by this helper thread
        other.set_output_callbacks(theirs)
        other.execute("r rip")  # reads registers: only the tracer thread can
        # returned only once the command had finished: every client on the engine
        # thread has heard its whole output already
        ran_on.append(len(mine.with_text(f"rip={rip:016x}")))
        other.output(OutputMask.PROMPT, "B-prompt> ")
        other.execute(".echo fence-b")
        # what was posted to this thread is run here (output of other-thread clients)
        other.dispatch_callbacks(timeout=0)
        return other

    other = serve_while(client, work)
    assert ran_on == [1]

    # ordinary output reaches both clients, marked as the client whose command it was
    for recorder in (mine, theirs):
        (line,) = recorder.with_text(f"rip={rip:016x}")
        assert line[2].kind == "client"
        assert line[2].client is other
        assert recorder.with_text("fence-b")
    # B's prompt went only to B
    assert [item[0] for item in theirs.with_text("B-prompt> ")] == [int(OutputMask.PROMPT)]
    assert mine.with_text("B-prompt> ") == []
    assert theirs.with_text("B-prompt> ")[0][2].client is other

    # A's prompt goes only to A: a client on another thread hears the fence sent
    # after the prompt, and never the prompt (its inbox is FIFO)
    listener_error: list[BaseException] = []
    seen_by_b: list[OriginRecorder] = []
    ready = threading.Event()
    done = threading.Event()

    def second_listener() -> None:
        try:
            listener = client.create_client()
            recorder = OriginRecorder()

            def on_text(mask: int, text: str, origin: OutputOrigin) -> None:
                if "fence-a" in text:
                    listener.exit_dispatch(listener)

            recorder.on_text = on_text
            listener.set_output_callbacks(recorder)
            seen_by_b.append(recorder)
            ready.set()
            assert listener.dispatch_callbacks(timeout=WAIT), "the listener never heard fence-a"
        except BaseException as error:
            listener_error.append(error)
        finally:
            done.set()

    thread = threading.Thread(target=second_listener, daemon=True)
    thread.start()
    assert ready.wait(WAIT)
    client.output(OutputMask.PROMPT, "A-prompt> ")
    client.output(OutputMask.NORMAL, "fence-a\n")
    assert done.wait(WAIT)
    thread.join(WAIT)
    if listener_error:
        raise listener_error[0]
    (listener_recorder,) = seen_by_b
    assert listener_recorder.with_text("fence-a")
    assert listener_recorder.with_text("A-prompt> ") == []
    assert [item[0] for item in mine.with_text("A-prompt> ")] == [int(OutputMask.PROMPT)]
    assert mine.with_text("A-prompt> ")[0][2].client is client


def test_output_callbacks_without_output_from_get_output(harness: Harness) -> None:
    client = harness.client
    plain = PlainRecorder()
    client.set_output_callbacks(plain)
    harness.launch("checksum")
    client.execute(".echo plain-text")
    assert (int(OutputMask.NORMAL), "plain-text\n") in plain.items


def test_execute_returns_only_after_its_output_reached_the_calling_clients_callbacks(
    harness: Harness,
) -> None:
    """The reply of an ``execute`` may be done before the calling thread has run what
    the command posted to it (its client's output): the test forces that interleaving
    (the caller descheduled in its first ``Inbox.wait`` until the command has
    finished, which happens unforced about 1 run in 50); ``Engine.call`` must still
    deliver the output before it returns."""
    client = harness.client
    harness.launch("checksum")
    rip = harness.rip()
    theirs = OriginRecorder()
    in_wait = threading.Event()
    command_done = threading.Event()
    fence_error: list[BaseException] = []

    def fence() -> None:
        # a request queued on the engine thread behind the helper's execute: when it
        # has been served, the execute has finished and its reply is set
        try:
            assert in_wait.wait(WAIT)
            client.get_event_filter(signal.SIGUSR1)
        except BaseException as error:
            fence_error.append(error)
        finally:
            command_done.set()

    def work() -> list[str]:
        other = client.create_client()
        other.set_output_callbacks(theirs)
        inbox = client._engine.inbox_for(threading.get_ident())
        original_wait = inbox.wait
        first = [True]

        def descheduled_wait(timeout: float | None, *, for_exit: bool = True) -> None:
            if first[0]:
                first[0] = False
                in_wait.set()
                assert command_done.wait(WAIT)
                return
            original_wait(timeout, for_exit=for_exit)

        inbox.wait = descheduled_wait  # type: ignore[method-assign]
        threading.Thread(target=fence, daemon=True).start()
        other.execute("r rip")
        heard = theirs.texts()
        other.dispatch_callbacks(timeout=0)  # (drain, so nothing is left queued)
        return heard

    heard = serve_while(client, work)
    assert not fence_error
    assert f"rip={rip:016x}\n" in heard


# ------------------------------------------------------ 4. shared event filters


def test_event_filters_are_shared_by_every_client_and_sxn_prints_as_it_passes(harness: Harness) -> None:
    a = harness.client
    a_out = OriginRecorder()
    a.set_output_callbacks(a_out)
    b = a.create_client()
    b_out = OriginRecorder()
    b.set_output_callbacks(b_out)
    recorder = Recorder(mask=EventMask.EXCEPTION | EventMask.CHANGE_ENGINE_STATE)
    a.set_event_callbacks(recorder)
    process = harness.launch("signals", "usr1-handler")

    a.execute("sxe usr1")
    assert b.get_event_filter(signal.SIGUSR1) is EventFilter.BREAK
    mark = len(b_out.items)
    b.execute("sx")
    listing = [text for _, text, _ in b_out.items[mark:]]
    (usr1,) = [line for line in "".join(listing).splitlines() if line.strip().startswith("sigusr1 -")]
    assert usr1.rstrip().endswith("- Break"), usr1

    b.execute("sxn usr1")
    assert a.get_event_filter(signal.SIGUSR1) is EventFilter.OUTPUT
    mark_a, mark_b = len(a_out.items), len(b_out.items)
    breaks_before = recorder.log.count(("change_engine_state", int(CES.EXECUTION_STATUS), int(Status.BREAK)))

    harness.go()  # passes SIGUSR1 to the handler, prints it, never breaks; runs to the end
    assert a.get_execution_status() == Status.NO_DEBUGGEE
    assert recorder.of("exception") == [("exception", signal.SIGUSR1, True)]
    breaks_after = recorder.log.count(("change_engine_state", int(CES.EXECUTION_STATUS), int(Status.BREAK)))
    assert breaks_after == breaks_before
    prefix = f"({process.pid:x}.{process.pid:x}): "
    for out, mark_at in ((a_out, mark_a), (b_out, mark_b)):
        notices = [item for item in out.items[mark_at:] if item[1].startswith(prefix)]
        assert len(notices) == 1, out.items[mark_at:]
        mask, text, origin = notices[0]
        assert mask == int(OutputMask.NORMAL)
        assert text.endswith("(first chance)\n")
        assert f"code {int(signal.SIGUSR1):08x}" in text
        assert (origin.kind, origin.client) == ("engine", None)  # not a command's output
    assert harness.pipe.wait_eof() == ["mode=usr1-handler", "survived caught=1"]


# ----------------------------------------------------------- 5. callback timeout


def test_a_stalled_client_is_marked_unresponsive_and_votes_go(harness: Harness) -> None:
    client = harness.client
    out = OriginRecorder()
    client.set_output_callbacks(out)
    harness.launch("checksum", "3")
    bp = client.add_breakpoint(harness.symbol("checksum", "target_fn"))

    # the main client: no opinion on the first hit (a breakpoint's default is BREAK),
    # BREAK on the second
    def main_answer(hit: Any) -> Status:
        return Status.NO_CHANGE if hit.hit_count == 1 else Status.BREAK

    mine = Recorder(mask=EventMask.BREAKPOINT, answers={"breakpoint": main_answer})
    client.set_event_callbacks(mine)

    ready = threading.Event()
    release = threading.Event()
    stalled_box: list[DebugClient] = []
    stalled_log: list[tuple[Any, ...]] = []
    after_release: dict[str, Any] = {}

    def stalled_thread() -> None:
        try:
            stalled = client.create_client()

            def answer(hit: Any) -> Status:
                stalled.exit_dispatch(stalled)
                return Status.NO_CHANGE

            stalled.set_event_callbacks(
                Recorder(mask=EventMask.BREAKPOINT, log=stalled_log, answers={"breakpoint": answer})
            )
            stalled_box.append(stalled)
            ready.set()
            release.wait(WAIT * 3)  # never dispatches meanwhile
            after_release["was_unresponsive"] = stalled.unresponsive
            after_release["dispatched"] = stalled.dispatch_callbacks(timeout=WAIT)
            after_release["unresponsive"] = stalled.unresponsive
        except BaseException as error:
            after_release["error"] = error

    thread = threading.Thread(target=stalled_thread, daemon=True)
    thread.start()
    try:
        assert ready.wait(WAIT)
        (stalled,) = stalled_box
        client._engine.dispatch.callback_timeout = 0.5
        assert stalled.unresponsive is False

        # hit 1: the main client says NO_CHANGE, the stalled client's vote is GO after
        # the timeout: GO is stronger than NO_CHANGE, so the target goes on; hit 2:
        # the main client's BREAK beats it, without waiting for the stalled one again
        harness.go()
        assert client.get_execution_status() == Status.BREAK
        assert harness.rip() == bp.address
        assert bp.hit_count == 2
        assert mine.of("breakpoint") == [("breakpoint", bp.id)] * 2
        assert stalled.unresponsive is True
        warnings = [item for item in out.items if "did not answer" in item[1]]
        assert len(warnings) == 1, out.items
        assert warnings[0][0] == int(OutputMask.WARNING)
        assert stalled_log == []  # its callback never ran
    finally:
        release.set()
        thread.join(WAIT)
    assert not thread.is_alive()
    if "error" in after_release:
        raise after_release["error"]
    # once its thread dispatches, the stalled callback (only the first: the second hit
    # did not wait for it) runs and the client answers again
    assert after_release == {"was_unresponsive": True, "dispatched": True, "unresponsive": False}
    assert stalled_log == [("breakpoint", bp.id)]

    client.remove_breakpoint(bp)
    assert harness.run_to_end() == 0
    assert harness.pipe.wait_eof() == harness.programs.reference("checksum", "3")


def test_a_stalled_clients_go_vote_overrides_the_default_break(harness: Harness) -> None:
    """Nobody but the stalled client has an opinion: its GO wins over NO_CHANGE and a
    breakpoint only the default would have stopped at does not stop the target."""
    client = harness.client
    harness.launch("checksum", "3")
    bp = client.add_breakpoint(harness.symbol("checksum", "target_fn"))
    client.set_event_callbacks(Recorder(mask=EventMask.BREAKPOINT))  # NO_CHANGE
    ready = threading.Event()
    release = threading.Event()
    box: list[DebugClient] = []

    def stalled_thread() -> None:
        stalled = client.create_client()
        stalled.set_event_callbacks(Recorder(mask=EventMask.BREAKPOINT))
        box.append(stalled)
        ready.set()
        release.wait(WAIT * 3)

    thread = threading.Thread(target=stalled_thread, daemon=True)
    thread.start()
    try:
        assert ready.wait(WAIT)
        client._engine.dispatch.callback_timeout = 0.5
        harness.go()  # returns: the session ended
        assert client.get_execution_status() == Status.NO_DEBUGGEE
        assert bp.hit_count == 3
        assert box[0].unresponsive is True
    finally:
        release.set()
        thread.join(WAIT)
    # the result is intact (the checksum line differs: the int3 was still set at exit)
    assert harness.pipe.wait_eof()[:-1] == harness.programs.reference("checksum", "3")[:-1]


# -------------------------------------------------------------- 6. inbox fileno


def test_inbox_fileno_is_readable_exactly_while_work_is_queued() -> None:
    inbox = Inbox(threading.get_ident())
    fd = inbox.fileno()
    try:
        assert select.select([fd], [], [], 0.05)[0] == []
        ran: list[str] = []
        posted = threading.Event()

        def post() -> None:
            inbox.post(lambda: ran.append("work"), want_reply=False)
            posted.set()

        poster = threading.Thread(target=post, daemon=True)
        poster.start()
        assert select.select([fd], [], [], WAIT)[0] == [fd]
        assert posted.wait(WAIT)
        poster.join(WAIT)
        assert inbox.run_pending() == 1
        assert ran == ["work"]
        assert select.select([fd], [], [], 0.05)[0] == []
        # an exit request makes it readable too
        inbox.request_exit()
        assert select.select([fd], [], [], WAIT)[0] == [fd]
        assert inbox.take_exit_request()
        inbox.run_pending()
        assert select.select([fd], [], [], 0.05)[0] == []
    finally:
        inbox.close()


def test_a_thread_selects_on_its_inbox_and_hears_engine_output(harness: Harness) -> None:
    """A thread that waits on a socket and its inbox: output the engine thread sends
    to that thread's client makes the descriptor readable; run_pending delivers it."""
    client = harness.client
    harness.launch("checksum")
    armed = threading.Event()
    sent = threading.Event()
    result: dict[str, Any] = {}

    def listener() -> None:
        try:
            other = client.create_client()
            recorder = OriginRecorder()
            other.set_output_callbacks(recorder)
            inbox = client._engine.inbox_for(threading.get_ident())
            fd = inbox.fileno()
            result["idle"] = select.select([fd], [], [], 0.05)[0]
            armed.set()
            result["readable"] = select.select([fd], [], [], WAIT)[0] == [fd]
            assert sent.wait(WAIT)
            result["ran"] = inbox.run_pending()
            result["texts"] = recorder.texts()
            result["after"] = select.select([fd], [], [], 0.05)[0]
        except BaseException as error:
            result["error"] = error

    thread = threading.Thread(target=listener, daemon=True)
    thread.start()
    assert armed.wait(WAIT)
    client.output(OutputMask.NORMAL, "to-everyone\n")
    sent.set()
    thread.join(WAIT)
    assert not thread.is_alive()
    if "error" in result:
        raise result["error"]
    assert result["idle"] == []
    assert result["readable"] is True
    assert result["ran"] >= 1
    assert "to-everyone\n" in result["texts"]
    assert result["after"] == []


# ------------------------------------------------------- 7. step_range per line


class CountingTarget(LiveTarget):
    """The live target, counting the engine's resume and step_range requests."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[Any, ...]] = []

    def step_range(self, tid: int, low: int, high: int) -> None:
        self.requests.append(("step_range", tid, low, high))
        super().step_range(tid, low, high)

    def resume(self, mode: ResumeMode, tid: int, signal: int) -> None:
        self.requests.append(("resume", mode, tid, signal))
        super().resume(mode, tid, signal)


@pytest.mark.parametrize("status", [Status.STEP_OVER, Status.STEP_INTO], ids=["p", "t"])
def test_a_source_line_without_calls_is_one_step_range_request(harness: Harness, status: Status) -> None:
    client = harness.client
    target = CountingTarget()  # made on the engine thread: it is the tracer
    process = client.create_process([harness.programs.path("stepping")], env=harness.pipe.env, server=target)
    line = line_of("stepping.c", "struct pair pairs[3]")
    bp = client.add_breakpoint(f"stepping.c:{line}")
    harness.go()
    client.remove_breakpoint(bp)
    start = harness.rip()
    here = client.source_line(start)
    assert here is not None and here.line == line and here.address == start
    following = client.resolve(f"stepping.c:{line + 1}")
    instructions = [insn for insn in client.disassemble(start, 32) if insn.address < following]
    assert len(instructions) >= 5  # stepping it one instruction at a time would be many requests
    assert not any("call" in str(insn) for insn in instructions)

    client.set_code_level(CodeLevel.SOURCE)
    target.requests.clear()
    harness.go(status)
    assert client.get_execution_status() == Status.BREAK
    assert target.requests == [("step_range", process.pid, start, following)]
    landed = client.source_line(harness.rip())
    assert landed is not None
    assert (landed.line, landed.address) == (line + 1, harness.rip())
    assert harness.rip() == following

    client.set_code_level(CodeLevel.ASSEMBLY)
    assert harness.run_to_end() == 0
    assert harness.pipe.wait_eof() == harness.programs.reference("stepping")


# ------------------------------------------------------------------ 8. console


def test_the_console_prompt_serves_other_threads_while_it_waits(harness: Harness) -> None:
    client = harness.client
    out = OriginRecorder()
    at_prompt = threading.Event()

    def on_text(mask: int, text: str, origin: OutputOrigin) -> None:
        if mask & OutputMask.PROMPT and text.endswith("> "):
            at_prompt.set()

    out.on_text = on_text
    client.set_output_callbacks(out)
    process = harness.launch("checksum")
    target_fn = harness.symbol("checksum", "target_fn")
    expected_bytes = harness.programs.code_bytes("checksum", target_fn, 8)
    read_fd, write_fd = os.pipe()
    stream = os.fdopen(read_fd, "r")
    done = threading.Event()
    result: dict[str, Any] = {}

    def helper() -> None:
        try:
            assert at_prompt.wait(WAIT), "the console never showed its prompt"
            result["memory"] = client.read_memory(target_fn, 8)
            other = client.create_client()
            theirs = OriginRecorder()
            other.set_output_callbacks(theirs)
            other.execute(".echo hi")
            result["console_heard"] = [item for item in out.items if item[1] == "hi\n"]
            other.dispatch_callbacks(timeout=0)  # (what was posted to this thread)
            result["other_heard"] = theirs.with_text("hi\n")
        except BaseException as error:
            result["error"] = error
        finally:
            done.set()
            os.write(write_fd, b"q\n")

    def watchdog() -> None:
        # should the helper hang (its requests never served), end the console anyway
        if not done.wait(WAIT):
            with contextlib.suppress(OSError):
                os.write(write_fd, b"q\n")

    threads = [threading.Thread(target=helper, daemon=True), threading.Thread(target=watchdog, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        code = run_console(client, [], stream)
    finally:
        stream.close()
    for thread in threads:
        thread.join(WAIT)
    os.close(write_fd)
    assert done.is_set(), "the helper's requests were not served while the prompt waited"
    if "error" in result:
        raise result["error"]
    assert code == 0
    assert result["memory"] == expected_bytes
    (heard,) = result["console_heard"]
    assert heard[2].client is not client  # the other client's command
    (echoed,) = result["other_heard"]
    assert echoed[2].client is heard[2].client
    assert client.get_execution_status() == Status.NO_DEBUGGEE  # `q` ended the session
    assert_reaped(process.pid)
