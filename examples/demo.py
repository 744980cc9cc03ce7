#!/usr/bin/env python3
"""lindbg demo: debug examples/sample.c through the Python API.

Shows the notifications as they arrive, breakpoint hits on ``compute``,
registers and memory, then each way of ending a session, one launch each:
ACTIVE_DETACH, ACTIVE_TERMINATE, PASSIVE and running to completion (END),
and finally REENTRANT on a fresh engine.

Run it with ``make demo`` (which builds examples/build/sample first). It exits
0 when everything behaved as DESIGN.md says, and 1 with a message naming what
did not.
"""

from __future__ import annotations

import ctypes
import enum
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lindbg import (
    CDS,
    CES,
    DebugClient,
    EndFlags,
    EngineUnusableError,
    EventCallbacks,
    EventMask,
    LindbgError,
    SessionStatus,
    Status,
)

HERE = Path(__file__).resolve().parent
SAMPLE_SOURCE = HERE / "sample.c"
SAMPLE = HERE / "build" / "sample"
SAMPLE_CFLAGS = ["-g", "-O0", "-no-pie", "-fcf-protection=none"]
ROUNDS = 4  # compute() calls made by sample.c (its ROUNDS)
BUFFER_TEXT = b"lindbg sample"  # sample.c's sample_buffer
WAIT = 30.0  # seconds any single wait may take before the demo calls it a failure

#: pids this demo launched, killed on the way out if something went wrong
_launched: list[int] = []


class DemoError(Exception):
    """Something did not behave as documented: the message says what."""


def check(condition: bool, what: str) -> None:
    if not condition:
        raise DemoError(what)


def heading(title: str) -> None:
    print()
    print("=" * 78)
    print(title)
    print("=" * 78, flush=True)


def say(text: str) -> None:
    print(text, flush=True)


def name_of(enum_type: type[enum.Enum], value: int) -> str:
    """``SessionStatus.END`` for a known value, hex for anything else."""
    try:
        member = enum_type(value)
    except ValueError:
        return f"{value:#x}"
    return f"{enum_type.__name__}.{member.name or repr(member)}"


def signal_name(signo: int) -> str:
    try:
        return signal.Signals(signo).name
    except ValueError:
        return f"signal {signo}"


# --------------------------------------------------------------------- callbacks


class Printer(EventCallbacks):
    """Prints every notification and event as it arrives, and remembers them."""

    def __init__(self) -> None:
        #: what ``breakpoint`` answers: BREAK stops there, GO counts the hit and goes on
        self.breakpoint_answer = Status.BREAK
        self.statuses: list[SessionStatus] = []
        self.exit_codes: list[int] = []
        self.count = 0

    def _say(self, text: str) -> None:
        self.count += 1
        say(f"    [callback] {text}")

    def get_interest_mask(self) -> int:
        return int(
            EventMask.BREAKPOINT
            | EventMask.EXCEPTION
            | EventMask.CREATE_PROCESS
            | EventMask.EXIT_PROCESS
            | EventMask.SESSION_STATUS
            | EventMask.CHANGE_ENGINE_STATE
            | EventMask.CHANGE_DEBUGGEE_STATE
        )

    def session_status(self, status: Any) -> None:
        self.statuses.append(SessionStatus(int(status)))
        self._say(f"session_status({name_of(SessionStatus, int(status))})")

    def change_engine_state(self, flags: int, argument: int) -> None:
        shown = name_of(Status, argument) if flags & CES.EXECUTION_STATUS else f"{argument:#x}"
        self._say(f"change_engine_state({name_of(CES, flags)}, {shown})")

    def change_debuggee_state(self, flags: int, argument: int) -> None:
        self._say(f"change_debuggee_state({name_of(CDS, flags)}, {argument:#x})")

    def create_process(self, process: Any) -> Status:
        self._say(f"create_process(pid {process.pid})")
        return Status.NO_CHANGE

    def exit_process(self, exit_code: int) -> Status:
        self.exit_codes.append(exit_code)
        self._say(f"exit_process(exit code {exit_code})")
        return Status.NO_CHANGE

    def exception(self, exc: Any) -> Status:
        chance = "first" if exc.first_chance else "second"
        self._say(f"exception({signal_name(exc.signal)} at {exc.address:#x}, {chance} chance)")
        return Status.NO_CHANGE

    def breakpoint(self, bp: Any) -> Status:
        self._say(
            f"breakpoint(id {bp.id} at {bp.address:#x}, hit_count {bp.hit_count}) "
            f"-> {self.breakpoint_answer.name}"
        )
        return self.breakpoint_answer


# ----------------------------------------------------------------------- helpers


def build_sample() -> None:
    """Build the sample if `make demo` has not (or it is older than sample.c)."""
    if SAMPLE.exists() and SAMPLE.stat().st_mtime >= SAMPLE_SOURCE.stat().st_mtime:
        return
    compiler = shutil.which("gcc")
    check(compiler is not None, f"{SAMPLE} is missing and there is no gcc to build it: run `make demo`")
    SAMPLE.parent.mkdir(parents=True, exist_ok=True)
    command = [str(compiler), *SAMPLE_CFLAGS, "-o", str(SAMPLE), str(SAMPLE_SOURCE)]
    say("building the sample: " + " ".join(command))
    subprocess.run(command, check=True)


def nm_symbols(path: Path) -> dict[str, int]:
    """Symbol -> address from `nm` (the binary is -no-pie: these are run-time addresses)."""
    check(shutil.which("nm") is not None, "`nm` (binutils) is needed to find the sample's addresses")
    result = subprocess.run(["nm", "--defined-only", str(path)], capture_output=True, text=True)
    check(result.returncode == 0, f"nm {path} failed: {result.stderr.strip()}")
    symbols: dict[str, int] = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            symbols[parts[2]] = int(parts[0], 16)
    return symbols


def is_our_child(pid: int) -> bool:
    """True if ``pid`` exists and this process is its parent."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return int(fields[1]) == os.getpid()


def pid_exists(pid: int) -> bool:
    """True while the process exists, zombies included (a zombie is still in /proc)."""
    return os.path.exists(f"/proc/{pid}")


class Launch:
    """One run of the sample under ``client``, its stdout going to a pipe we read."""

    def __init__(self, client: DebugClient) -> None:
        read_end, write_end = os.pipe()
        try:
            self.process = client.create_process([str(SAMPLE)], stdout=write_end)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self._read_end = read_end
        self.pid: int = self.process.pid
        _launched.append(self.pid)

    def output(self) -> str:
        """Everything the program wrote (call once it is gone: reads to end of file)."""
        chunks = []
        while True:
            chunk = os.read(self._read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(self._read_end)
        return b"".join(chunks).decode(errors="replace")


def show_output(text: str) -> None:
    if not text:
        say("  program output: (none: it never flushed its stdout)")
        return
    say("  program output:")
    for line in text.splitlines():
        say(f"    | {line}")


def launch(client: DebugClient, printer: Printer) -> Launch:
    say("  create_process(['examples/build/sample']) ...")
    run = Launch(client)
    rip = client.get_register("rip")
    status = client.get_execution_status()
    say(f"  -> pid {run.pid}, stopped at its first instruction (ld.so) rip = {rip:#x}, status {status.name}")
    check(status == Status.BREAK, f"create_process should return with the target stopped, not {status.name}")
    check(printer.statuses[-1:] == [SessionStatus.ACTIVE], "no session_status(ACTIVE) at the session's start")
    return run


def go_until_break(client: DebugClient, what: str) -> None:
    say(f"  set_execution_status(GO); wait_for_event(timeout={WAIT:g}) ...")
    client.set_execution_status(Status.GO)
    check(client.wait_for_event(timeout=WAIT), f"timed out after {WAIT:g} s waiting for {what}")
    status = client.get_execution_status()
    check(status == Status.BREAK, f"expected the target stopped at {what}, execution status is {status.name}")


def expect_session_end(client: DebugClient, printer: Printer, reason: SessionStatus) -> None:
    check(
        printer.statuses[-1:] == [reason],
        f"expected session_status({reason.name}) last, saw {[s.name for s in printer.statuses[-3:]]}",
    )
    status = client.get_execution_status()
    check(status == Status.NO_DEBUGGEE, f"the status after the end is {status.name} (not NO_DEBUGGEE)")
    say(f"  session ended: {reason.name}; execution status {status.name}")


def wait_for_child(pid: int, timeout: float) -> int:
    """Reap our own (detached) child and return its exit code."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            reaped, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError as error:
            raise DemoError(f"pid {pid} cannot be waited for after the detach ({error})") from None
        if reaped == pid and (os.WIFEXITED(status) or os.WIFSIGNALED(status)):
            return os.waitstatus_to_exitcode(status)
        check(time.monotonic() < deadline, f"pid {pid} still running {timeout:g} s after the detach")
        time.sleep(0.02)


def kill_and_reap(pid: int) -> None:
    """SIGKILL one of our children and reap it, continuing it past any ptrace stop."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            reaped, status = os.waitpid(pid, os.WNOHANG | 0x40000000)  # __WALL
        except ChildProcessError:
            return
        if reaped == pid:
            if not os.WIFSTOPPED(status):
                return
            libc.ptrace(7, pid, None, None)  # PTRACE_CONT: a stop on the way out
        time.sleep(0.01)


# ---------------------------------------------------------------------- sessions


def session_detach(client: DebugClient, printer: Printer, compute: int, buffer: int) -> None:
    heading("1. Breakpoints, registers, memory; then end_session(ACTIVE_DETACH)")
    run = launch(client, printer)
    bp = client.add_breakpoint(compute)
    say(f"  add_breakpoint({compute:#x})  # compute, address from nm -> breakpoint id {bp.id}")
    for n in (1, 2):
        go_until_break(client, f"hit {n} of compute")
        rip = client.get_register("rip")
        rdi = client.get_register("rdi")
        say(f"  hit {n}: rip = {rip:#x}  rdi = {rdi:#x} (compute's argument)  hit_count = {bp.hit_count}")
        check(rip == compute, f"hit {n}: rip is {rip:#x}, expected compute at {compute:#x}")
        check(rdi & 0xFFFFFFFF == n, f"hit {n}: rdi is {rdi:#x}, expected the argument {n}")
        check(bp.hit_count == n, f"hit {n}: hit_count is {bp.hit_count}, expected {n}")
    data = client.read_memory(buffer, 16)
    say(f"  read_memory({buffer:#x}, 16)  # sample_buffer: {data.hex(' ')}  {data!r}")
    check(data.startswith(BUFFER_TEXT), f"sample_buffer reads {data!r}, expected it to start {BUFFER_TEXT!r}")
    code = client.read_memory(compute, 4)
    say(f"  read_memory({compute:#x}, 4)   # compute's code, as the program has it: {code.hex(' ')}")
    check(code[0] != 0xCC, "read_memory shows the breakpoint's int3 instead of the program's byte")

    say("  end_session(ACTIVE_DETACH) ...")
    client.end_session(EndFlags.ACTIVE_DETACH)
    expect_session_end(client, printer, SessionStatus.END_SESSION_ACTIVE_DETACH)
    exit_code = wait_for_child(run.pid, WAIT)
    output = run.output()
    say(f"  the program ran on without the debugger and exited with {exit_code}")
    show_output(output)
    check(exit_code == 0, f"the detached program exited with {exit_code}, expected 0")
    check(
        f"compute({ROUNDS})" in output and "done" in output,
        "the detached program did not finish its work (its output is incomplete)",
    )


def session_kill(client: DebugClient, printer: Printer, compute: int, flags: EndFlags) -> None:
    reason = {
        EndFlags.ACTIVE_TERMINATE: SessionStatus.END_SESSION_ACTIVE_TERMINATE,
        EndFlags.PASSIVE: SessionStatus.END_SESSION_PASSIVE,
    }[flags]
    if flags == EndFlags.ACTIVE_TERMINATE:
        heading("2. end_session(ACTIVE_TERMINATE): the process is killed and reaped")
    else:
        heading("3. end_session(PASSIVE): released per its process options (none set: terminated)")
    run = launch(client, printer)
    bp = client.add_breakpoint(compute)
    say(f"  add_breakpoint({compute:#x}) -> id {bp.id}")
    go_until_break(client, "the first hit of compute")
    say(f"  stopped at rip = {client.get_register('rip'):#x}")
    say(f"  end_session({flags.name}) ...")
    client.end_session(flags)
    expect_session_end(client, printer, reason)
    check(not pid_exists(run.pid), f"pid {run.pid} still exists after end_session({flags.name})")
    say(f"  pid {run.pid} is gone: /proc/{run.pid} does not exist (killed and reaped, no zombie)")
    show_output(run.output())


def session_complete(client: DebugClient, printer: Printer, compute: int) -> None:
    heading("4. Running to completion: the session ends with END")
    run = launch(client, printer)
    bp = client.add_breakpoint(compute)
    printer.breakpoint_answer = Status.GO
    say(f"  add_breakpoint({compute:#x}) -> id {bp.id}; the callback answers GO: count the hit, go on")
    say(f"  set_execution_status(GO); wait_for_event(timeout={WAIT:g}) ...")
    try:
        client.set_execution_status(Status.GO)
        ended = client.wait_for_event(timeout=WAIT)
        check(ended, f"timed out after {WAIT:g} s waiting for the program's end")
    finally:
        printer.breakpoint_answer = Status.BREAK
    expect_session_end(client, printer, SessionStatus.END)
    check(printer.exit_codes[-1:] == [0], f"exit_process reported {printer.exit_codes[-1:]}, expected [0]")
    check(run.process.exit_code == 0, f"process.exit_code is {run.process.exit_code}, expected 0")
    check(bp.hit_count == ROUNDS, f"the breakpoint counted {bp.hit_count} hits, expected {ROUNDS}")
    check(not pid_exists(run.pid), f"pid {run.pid} still exists after it exited")
    say(f"  exit code {run.process.exit_code}; breakpoint hit_count = {bp.hit_count} (never stopped)")
    output = run.output()
    show_output(output)
    check("done" in output, "the program's output is incomplete")


def session_reentrant(compute: int) -> None:
    heading("5. end_session(REENTRANT) on a fresh engine, from another thread")
    printer = Printer()
    client = DebugClient()
    client.set_event_callbacks(printer)
    run = launch(client, printer)
    bp = client.add_breakpoint(compute)
    say(f"  add_breakpoint({compute:#x}) -> id {bp.id}")
    go_until_break(client, "the first hit of compute")
    before = printer.count
    failures: list[BaseException] = []

    def end_it() -> None:
        try:
            client.end_session(EndFlags.REENTRANT)
        except BaseException as error:
            failures.append(error)

    say("  end_session(REENTRANT) from a second thread ...")
    helper = threading.Thread(target=end_it, name="reentrant")
    helper.start()
    helper.join(WAIT)
    check(not helper.is_alive(), "end_session(REENTRANT) did not return")
    if failures:
        raise DemoError(f"end_session(REENTRANT) raised {failures[0]!r}")
    check(printer.count == before, "end_session(REENTRANT) sent notifications; it must send none")
    say("  no notifications were sent")
    try:
        client.get_register("rip")
    except EngineUnusableError as error:
        say(f"  the next call, get_register('rip'), raised EngineUnusableError: {error}")
    else:
        raise DemoError("get_register after end_session(REENTRANT) did not raise EngineUnusableError")
    # REENTRANT does only what needs no lock: the process is left where it was.
    kill_and_reap(run.pid)
    check(not pid_exists(run.pid), f"pid {run.pid} could not be cleaned up")
    say(f"  (the demo killed pid {run.pid} itself: REENTRANT leaves the target where it was)")
    run.output()


# -------------------------------------------------------------------------- main


def run_demo() -> None:
    build_sample()
    symbols = nm_symbols(SAMPLE)
    for name in ("compute", "sample_buffer"):
        check(name in symbols, f"`nm {SAMPLE}` does not list {name}")
    compute, buffer = symbols["compute"], symbols["sample_buffer"]
    say(f"sample: {SAMPLE}")
    say(f"nm: compute = {compute:#x}, sample_buffer = {buffer:#x}")

    printer = Printer()
    client = DebugClient()
    client.set_event_callbacks(printer)
    session_detach(client, printer, compute, buffer)
    session_kill(client, printer, compute, EndFlags.ACTIVE_TERMINATE)
    session_kill(client, printer, compute, EndFlags.PASSIVE)
    session_complete(client, printer, compute)
    session_reentrant(compute)


def main() -> int:
    try:
        run_demo()
    except DemoError as error:
        print(f"\ndemo FAILED: {error}", file=sys.stderr)
        return 1
    except LindbgError as error:
        print(f"\ndemo FAILED: lindbg raised {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        for pid in _launched:
            if is_our_child(pid):
                kill_and_reap(pid)
    heading("demo OK: every way of ending a session behaved as documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
