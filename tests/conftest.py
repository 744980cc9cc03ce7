"""Shared machinery of the engine tests: compiled C fixtures, output pipes,
recording callbacks and process hygiene.

Nothing here sleeps to synchronise: tests wait on lines the programs print
(through a FIFO or a pipe, with ``select`` and a timeout), on pidfds, or on the
engine's own ``wait_for_event(timeout=...)``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lindbg import (
    DebugClient,
    EndFlags,
    EventCallbacks,
    EventMask,
    LindbgError,
    Notify,
    Process,
    SessionStatus,
    Status,
)

# Decompressed debug sections are cached on disk (lindbg.symbols.sectioncache): the
# tests use a directory of their own, never the user's cache.
_SECTION_CACHE = os.environ.setdefault(
    "LINDBG_CACHE_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), f"lindbg-test-cache-{os.getuid()}")
)
FIXTURE_SOURCES = Path(__file__).parent / "fixtures"
CFLAGS = ["-g", "-O0", "-no-pie", "-pthread", "-fcf-protection=none"]
#: Seconds any single wait may take before the test fails (generous: 2 loaded cores).
WAIT = 10.0
#: Every event bit: a recorder with this mask hears everything.
ALL_EVENTS = 0x1FFF
#: The environment variable the fixtures read to find their output FIFO.
OUTPUT_VARIABLE = "LINDBG_TEST_OUT"
#: waitpid flag: wait for clone children (threads) and traced processes too.
_WALL = 0x40000000


# --------------------------------------------------------------- fixtures (C)


class Programs:
    """The compiled C fixtures: paths, symbol addresses and reference runs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._symbols: dict[str, dict[str, int]] = {}
        self._references: dict[tuple[str, ...], list[str]] = {}

    def path(self, name: str) -> str:
        """Absolute path of the fixture built from ``fixtures/<name>.c``."""
        return str(self.directory / name)

    def symbol(self, name: str, symbol: str) -> int:
        """Address of ``symbol`` in fixture ``name`` (absolute: built -no-pie)."""
        table = self._symbols.get(name)
        if table is None:
            listing = subprocess.run(
                ["nm", self.path(name)], capture_output=True, text=True, check=True
            ).stdout
            table = {}
            for line in listing.splitlines():
                parts = line.split()
                if len(parts) == 3:
                    table[parts[2]] = int(parts[0], 16)
            self._symbols[name] = table
        return table[symbol]

    def call_site(self, name: str, function: str, callee: str) -> tuple[int, int]:
        """(address, length) of the first ``call <callee>`` inside ``function``."""
        listing = subprocess.run(
            ["objdump", "-d", f"--disassemble={function}", self.path(name)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        pattern = re.compile(
            r"^\s*([0-9a-f]+):\s+((?:[0-9a-f]{2} )+)\s*call\s+[0-9a-f]+ <" + re.escape(callee) + ">"
        )
        for line in listing.splitlines():
            match = pattern.match(line)
            if match:
                return int(match.group(1), 16), len(match.group(2).split())
        raise AssertionError(f"no call to {callee} in {function} of {name}:\n{listing}")

    def code_bytes(self, name: str, address: int, size: int) -> bytes:
        """The bytes the executable file holds at virtual ``address`` (from its
        program headers), i.e. the code with no debugger's marks in it."""
        with open(self.path(name), "rb") as elf:
            data = elf.read()
        phoff = int.from_bytes(data[0x20:0x28], "little")
        phentsize = int.from_bytes(data[0x36:0x38], "little")
        phnum = int.from_bytes(data[0x38:0x3A], "little")
        for index in range(phnum):
            entry = data[phoff + index * phentsize : phoff + (index + 1) * phentsize]
            kind = int.from_bytes(entry[0:4], "little")
            offset = int.from_bytes(entry[8:16], "little")
            vaddr = int.from_bytes(entry[16:24], "little")
            filesz = int.from_bytes(entry[32:40], "little")
            if kind == 1 and vaddr <= address and address + size <= vaddr + filesz:  # PT_LOAD
                start = offset + address - vaddr
                return data[start : start + size]
        raise AssertionError(f"{address:#x} is not in a loaded segment of {name}")

    def reference(self, name: str, *args: str) -> list[str]:
        """The output lines of the fixture run directly, with no debugger (cached)."""
        key = (name, *args)
        if key not in self._references:
            environment = {k: v for k, v in os.environ.items() if k != OUTPUT_VARIABLE}
            run = subprocess.run(
                [self.path(name), *args],
                capture_output=True,
                text=True,
                timeout=60,
                env=environment,
                check=False,
            )
            self._references[key] = run.stdout.splitlines()
        return list(self._references[key])


@pytest.fixture(scope="session")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Programs:
    """Compile every ``fixtures/*.c`` once per test session."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the test fixtures")
    directory = tmp_path_factory.mktemp("fixtures")
    for source in sorted(FIXTURE_SOURCES.glob("*.c")):
        subprocess.run(
            ["gcc", *CFLAGS, "-o", str(directory / source.stem), str(source)],
            check=True,
            capture_output=True,
        )
    return Programs(directory)


# ------------------------------------------------------------- output lines


class LineReader:
    """Lines read from a file descriptor, waited for with ``select`` and a timeout."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.lines: list[str] = []
        self.eof = False
        self._partial = b""

    def pump(self, timeout: float) -> None:
        """Read what arrives within ``timeout`` seconds (at most one wake-up)."""
        if self.eof:
            return
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0.0))
        if not ready:
            return
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                self.eof = True
                if self._partial:
                    self.lines.append(self._partial.decode(errors="replace"))
                    self._partial = b""
                return
            *complete, self._partial = (self._partial + chunk).split(b"\n")
            self.lines.extend(line.decode(errors="replace") for line in complete)

    def wait_for(self, prefix: str, timeout: float = WAIT) -> str:
        """The first line starting with ``prefix``, waiting up to ``timeout`` s for it."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if line.startswith(prefix):
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.eof:
                raise AssertionError(
                    f"no line starting with {prefix!r} within {timeout} s; got {self.lines!r}"
                )
            self.pump(remaining)

    def count(self, prefix: str) -> int:
        """How many lines read so far start with ``prefix``."""
        return sum(1 for line in self.lines if line.startswith(prefix))

    def wait_eof(self, timeout: float = WAIT) -> list[str]:
        """Every line, once every writer has closed its end (or fail after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"output still open after {timeout} s; got {self.lines!r}")
            self.pump(remaining)
        return list(self.lines)


class OutputPipe(LineReader):
    """A FIFO a fixture writes its stdout to (it reads the path from LINDBG_TEST_OUT).

    The test holds a write end of its own until ``wait_eof``, so that reading
    never sees end-of-file before the program has opened the FIFO.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / "output.fifo"
        os.mkfifo(self.path)
        read_fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self._hold: int | None = os.open(self.path, os.O_WRONLY)
        super().__init__(read_fd)

    @property
    def env(self) -> dict[str, str]:
        """The environment to start a fixture with so that it writes here."""
        return dict(os.environ, **{OUTPUT_VARIABLE: str(self.path)})

    def wait_eof(self, timeout: float = WAIT, *, expect_output: bool = True) -> list[str]:
        """Every line, once the program and every child of it have closed the FIFO.

        With ``expect_output`` (the default) it first waits for a line, which
        proves the program has opened the FIFO; else end-of-file could come
        before the program got that far. Pass False for a program that was
        killed (it may never open the FIFO).
        """
        deadline = time.monotonic() + timeout
        while expect_output and not self.lines and self._hold is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the program wrote no line within {timeout} s")
            self.pump(remaining)
        if self._hold is not None:
            os.close(self._hold)
            self._hold = None
        return super().wait_eof(max(deadline - time.monotonic(), 0.1))

    def close(self) -> None:
        """Close both ends."""
        if self._hold is not None:
            os.close(self._hold)
            self._hold = None
        with contextlib.suppress(OSError):
            os.close(self.fd)


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[OutputPipe]:
    """A fresh output FIFO for the fixture a test debugs."""
    output = OutputPipe(tmp_path)
    yield output
    output.close()


# ---------------------------------------------------------------- processes


def tls_files(directory: Path) -> tuple[str, str, str]:
    """A certificate for 127.0.0.1 and localhost, its key and its authority's
    certificate (trustme), written into ``directory``: (cert, key, cafile)."""
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1", "localhost")
    cert, key, ca = directory / "cert.pem", directory / "key.pem", directory / "ca.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key))
    authority.cert_pem.write_to_path(str(ca))
    return str(cert), str(key), str(ca)


def process_state(pid: int) -> str | None:
    """The state letter of ``pid`` in /proc (``Z`` for a zombie), None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()[0]


def assert_reaped(pid: int) -> None:
    """``pid`` must be gone from /proc: not running, not a zombie."""
    state = process_state(pid)
    assert state is None, f"process {pid} still exists (state {state}); it should have been killed and reaped"


def wait_exited(pid: int, timeout: float = WAIT) -> bool:
    """Wait (pidfd, no polling) until ``pid`` has exited; True if it has."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


def reap_child(pid: int, timeout: float = WAIT) -> int:
    """Wait for our child ``pid`` to exit and reap it; its exit code (128+N for signal N)."""
    assert wait_exited(pid, timeout), f"process {pid} did not exit within {timeout} s"
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


_libc = ctypes.CDLL(None, use_errno=True)
_PTRACE_CONT = 7


def kill_and_reap(pid: int) -> None:
    """SIGKILL ``pid`` and wait until every thread of it is gone.

    Works when this thread traces it (an engine made unusable by REENTRANT, or
    a test that failed mid-session): a killed tracee still stops at
    PTRACE_EVENT_EXIT until its tracer lets it go, so each stop is continued.
    Threads that are neither our children nor our tracees are left to their
    parent.
    """
    try:
        tids = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for tid in sorted(tids, key=lambda t: t == pid):  # the leader last
        while True:
            try:
                _, status = os.waitpid(tid, _WALL)
            except ChildProcessError:
                break
            if not os.WIFSTOPPED(status):
                break
            _libc.ptrace(_PTRACE_CONT, tid, None, None)


def _fixture_processes(directory: Path) -> list[int]:
    """Pids of live processes running one of our compiled fixtures."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            executable = os.readlink(f"/proc/{entry}/exe")
            if executable.startswith(str(directory) + os.sep):
                found.append(int(entry))
    return found


@pytest.fixture(autouse=True)
def reap_leftovers(programs: Programs) -> Iterator[None]:
    """After each test, kill and reap any fixture process it left behind, so one
    failing test does not poison the next (and the next's engine's waitpid)."""
    yield
    for pid in _fixture_processes(programs.directory):
        kill_and_reap(pid)
    while True:  # reap whatever of ours is now a zombie
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG | _WALL)
        except ChildProcessError:
            break
        if pid == 0:
            break


# ---------------------------------------------------------------- recording


def extension_item(notify: int) -> tuple[str, Notify]:
    """The log entry a ``RecordingExtension`` writes for ``notify``."""
    return ("ext", Notify(notify))


class RecordingExtension:
    """An extension object that logs ``debug_extension_notify`` calls."""

    def __init__(self, log: list[tuple[Any, ...]]) -> None:
        self.log = log

    def debug_extension_notify(self, notify: int, argument: int) -> None:
        """Record the notification."""
        self.log.append(extension_item(notify))


Answer = Status | Callable[..., Status]


class Recorder(EventCallbacks):
    """Event callbacks that log every call as a tuple, in order.

    ``answers`` maps a callback name ("breakpoint", "exception", ...) to the
    Status it returns, or to a function of the callback's argument returning one.
    Entries: ("session_status", SessionStatus), ("change_engine_state", flags,
    argument), ("change_debuggee_state", flags, argument), ("breakpoint", id),
    ("exception", signal, first_chance), ("create_process", pid),
    ("exit_process", code), ("create_thread", tid), ("exit_thread", code), ...
    """

    def __init__(
        self,
        mask: int = ALL_EVENTS,
        log: list[tuple[Any, ...]] | None = None,
        answers: dict[str, Answer] | None = None,
    ) -> None:
        self.mask = mask
        self.log: list[tuple[Any, ...]] = log if log is not None else []
        self.answers = answers or {}
        self.exceptions: list[Any] = []
        self.processes: list[Any] = []
        self.threads: list[Any] = []

    def _answer(self, name: str, argument: Any) -> Status:
        answer = self.answers.get(name, Status.NO_CHANGE)
        return answer(argument) if callable(answer) else answer

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        """The log entries of one kind."""
        return [entry for entry in self.log if entry[0] == kind]

    def get_interest_mask(self) -> int:
        return int(self.mask)

    def breakpoint(self, bp: Any) -> Status:
        self.log.append(("breakpoint", bp.id))
        return self._answer("breakpoint", bp)

    def exception(self, exc: Any) -> Status:
        self.log.append(("exception", exc.signal, exc.first_chance))
        self.exceptions.append(exc)
        return self._answer("exception", exc)

    def create_thread(self, thread: Any) -> Status:
        self.log.append(("create_thread", thread.tid))
        self.threads.append(thread)
        return self._answer("create_thread", thread)

    def exit_thread(self, exit_code: int) -> Status:
        self.log.append(("exit_thread", exit_code))
        return self._answer("exit_thread", exit_code)

    def create_process(self, process: Any) -> Status:
        self.log.append(("create_process", process.pid))
        self.processes.append(process)
        return self._answer("create_process", process)

    def exit_process(self, exit_code: int) -> Status:
        self.log.append(("exit_process", exit_code))
        return self._answer("exit_process", exit_code)

    def load_module(self, module: Any) -> Status:
        self.log.append(("load_module", module))
        return self._answer("load_module", module)

    def unload_module(self, module: Any) -> Status:
        self.log.append(("unload_module", module))
        return self._answer("unload_module", module)

    def system_error(self, error: int, level: int) -> Status:
        self.log.append(("system_error", error, level))
        return self._answer("system_error", error)

    def session_status(self, status: Any) -> None:
        self.log.append(("session_status", SessionStatus(status)))

    def change_debuggee_state(self, flags: int, argument: int) -> None:
        self.log.append(("change_debuggee_state", int(flags), int(argument)))

    def change_engine_state(self, flags: int, argument: int) -> None:
        self.log.append(("change_engine_state", int(flags), int(argument)))

    def change_symbol_state(self, flags: int, argument: int) -> None:
        self.log.append(("change_symbol_state", int(flags), int(argument)))


def assert_in_order(log: list[tuple[Any, ...]], expected: list[tuple[Any, ...]], start: int = 0) -> int:
    """``expected`` must appear in ``log[start:]`` in this order (other entries may
    sit between). Returns the index just after the last match."""
    position = start
    for item in expected:
        for index in range(position, len(log)):
            if log[index] == item:
                position = index + 1
                break
        else:
            raise AssertionError(
                f"{item!r} missing (in order) after index {position} of {expected!r} in log {log!r}"
            )
    return position


# ---------------------------------------------------------------- debugging


class Harness:
    """One engine (``client``) plus the fixtures and output pipe of a test."""

    def __init__(self, client: DebugClient, programs: Programs, pipe: OutputPipe) -> None:
        self.client = client
        self.programs = programs
        self.pipe = pipe

    def launch(self, name: str, *args: str, options: int = 0) -> Process:
        """Start fixture ``name`` under the engine, writing to ``self.pipe``."""
        return self.client.create_process(
            [self.programs.path(name), *args], env=self.pipe.env, options=options
        )

    def symbol(self, name: str, symbol: str) -> int:
        """Address of ``symbol`` in fixture ``name``."""
        return self.programs.symbol(name, symbol)

    def go(self, status: Status = Status.GO, timeout: float = WAIT) -> None:
        """Resume with ``status`` and wait until the target breaks in or the session ends."""
        self.client.set_execution_status(status)
        assert self.client.wait_for_event(timeout=timeout), f"wait_for_event timed out after {timeout} s"

    def run_to_end(self, limit: int = 100) -> int:
        """Resume (GO) until the session has ended; returns how many breaks came first."""
        breaks = 0
        while self.client.get_execution_status() != Status.NO_DEBUGGEE:
            assert breaks < limit, f"still breaking in after {limit} resumes"
            self.go()
            if self.client.get_execution_status() != Status.NO_DEBUGGEE:
                breaks += 1
        return breaks

    def run_until_output(self, prefix: str, timeout: float = WAIT) -> str:
        """Let the target run (GO) until its output has a line starting with
        ``prefix``; the target is left running (wait_for_event timed out)."""
        deadline = time.monotonic() + timeout
        if self.client.get_execution_status() == Status.BREAK:
            self.client.set_execution_status(Status.GO)
        while True:
            assert self.client.wait_for_event(timeout=0.05) is False, (
                "the target broke in or ended unexpectedly"
            )
            for line in self.pipe.lines:
                if line.startswith(prefix):
                    return line
            assert time.monotonic() < deadline, f"no {prefix!r} line within {timeout} s: {self.pipe.lines!r}"
            self.pipe.pump(0)

    def rip(self) -> int:
        """The current thread's instruction pointer."""
        return self.client.get_register("rip")


@pytest.fixture(scope="session")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> str:
    """libplugin.so, built once from tests/fixtures/lib/plugin.c (dlopener loads it)."""
    source = FIXTURE_SOURCES / "lib" / "plugin.c"
    target = tmp_path_factory.mktemp("plugin") / "libplugin.so"
    subprocess.run(["gcc", "-g", "-O0", "-shared", "-fPIC", "-o", str(target), str(source)], check=True)
    return str(target)


@pytest.fixture
def client() -> Iterator[DebugClient]:
    """A new engine; whatever session a test leaves open is terminated afterwards."""
    debug_client = DebugClient()
    yield debug_client
    with contextlib.suppress(LindbgError):
        if debug_client.get_execution_status() != Status.NO_DEBUGGEE:
            debug_client.end_session(EndFlags.ACTIVE_TERMINATE)


@pytest.fixture
def harness(client: DebugClient, programs: Programs, pipe: OutputPipe) -> Harness:
    """A ``Harness`` around this test's engine and output pipe."""
    return Harness(client, programs, pipe)


__all__ = [
    "ALL_EVENTS",
    "WAIT",
    "EventMask",
    "Harness",
    "LineReader",
    "OutputPipe",
    "Programs",
    "Recorder",
    "RecordingExtension",
    "assert_in_order",
    "assert_reaped",
    "extension_item",
    "kill_and_reap",
    "process_state",
    "reap_child",
    "wait_exited",
]


def gdb_at(program: str, location: str | None, *commands: str, timeout: float = 120) -> str:
    """What ``gdb -batch`` prints for ``commands`` after ``break LOCATION`` and
    ``run`` (no location: the commands alone, on the file), standard output."""
    args = ["gdb", "-batch", "-nx", "-ex", "set pagination off"]
    if location is not None:
        args += ["-ex", f"break {location}", "-ex", "run"]
    for command in commands:
        args += ["-ex", command]
    run = subprocess.run([*args, program], capture_output=True, text=True, timeout=timeout, check=False)
    return run.stdout
