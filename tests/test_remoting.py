"""Debugging servers end to end: one live session shared by local and remote clients
over real sockets (tcp, npipe, ssl, spipe), the seed's .server/.servers/.endsrv/.clients
transcript, the event sequence a remote client hears, DISCONNECT and `q`."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Programs, Recorder, tls_files
from remoting_support import Served

import lindbg
from lindbg import (
    DebugClient,
    EndFlags,
    EngineUnusableError,
    EventMask,
    InvalidOperationError,
    OutputCallbacks,
    Status,
)
from lindbg.os.linux.identity import local_name

LINDBG = [sys.executable, "-m", "lindbg.cli.lindbg_main"]


class Lines(OutputCallbacks):
    """Every piece of output, joined."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def output(self, mask: int, text: str) -> None:
        self.parts.append(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)


@pytest.fixture
def served() -> Iterator[Served]:
    session = Served()
    yield session
    session.close()


def _pipe_name(tag: str) -> str:
    return f"t{os.getpid()}-{tag}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_seeds_server_transcript(served: Served) -> None:
    screen = Lines()
    served.client.set_output_callbacks(screen)
    rabbit, tiger, port = _pipe_name("rabbit"), _pipe_name("tiger"), _free_port()
    for command in (
        f".server npipe:pipe={rabbit}",
        f".server tcp:port={port}",
        f".server npipe:pipe={tiger},password=hardtoguess",
        ".servers",
        ".endsrv 0",
        ".endsrv 1",
        ".servers",
        ".clients",
    ):
        served.client.execute(command)
    text = screen.text
    assert "hardtoguess" not in text
    expected = (
        f"Server started with 'npipe:pipe={rabbit}'\n"
        f"Server started with 'tcp:port={port}'\n"
        f"Server started with 'npipe:pipe={tiger},password=*'\n"
        f"0 - Debugger Server - npipe:Pipe={rabbit}\n"
        f"1 - Debugger Server - tcp:Port={port}\n"
        f"2 - Debugger Server - npipe:Pipe={tiger},Password=*\n"
        "Server told to exit.  Actual exit may be delayed until\n"
        "the next connection attempt.\n"
        "Server told to exit.  Actual exit may be delayed until\n"
        "the next connection attempt.\n"
        "0 - <Disabled, exit pending>\n"
        "1 - <Disabled, exit pending>\n"
        f"2 - Debugger Server - npipe:Pipe={tiger},Password=*\n"
    )
    assert text.startswith(expected)
    clients = text[len(expected) :].splitlines()
    assert len(clients) == 1
    assert re.fullmatch(
        re.escape(local_name()) + r", last active \w{3} \w{3} \d\d \d\d:\d\d:\d\d \d{4}", clients[0]
    )


def test_an_ended_server_exits_at_the_next_connection_attempt(served: Served) -> None:
    entry = served.start("tcp:port=0")
    served.client.end_server(entry.id)
    assert served.client.servers()[0].line() == "0 - <Disabled, exit pending>"
    with pytest.raises(lindbg.LindbgError):
        served.serve_while(lambda: lindbg.debug_connect(Served.connect_string(entry), timeout=5))

    assert served.serve_until(lambda: served.client.servers()[0].line() == "0 - <Disabled>", timeout=10)


def test_three_clients_on_two_transports_share_one_session(served: Served, programs: Programs) -> None:
    local_screen = Lines()
    served.client.set_output_callbacks(local_screen)
    served.client.create_process([programs.path("checksum")])
    tcp = served.start("tcp:port=0")
    pipe = served.start(f"npipe:pipe={_pipe_name('share')}")
    seen: dict[str, Any] = {}

    def remote_work() -> None:
        first = lindbg.debug_connect(Served.connect_string(tcp))
        second = lindbg.debug_connect(Served.connect_string(pipe))
        first_screen, second_screen = Lines(), Lines()
        first.set_output_callbacks(first_screen)
        second.set_output_callbacks(second_screen)
        first.execute("bp checksum!main")
        second.execute("g")
        seen["rip"] = first.get_register("rip")
        seen["main"] = first.resolve("checksum!main")
        first.execute(".echo from the first")
        second.execute("k")
        # a round trip on each makes sure the other's output has arrived
        first.execute(".echo sync")
        second.execute(".echo sync")
        seen["first"], seen["second"] = first_screen.text, second_screen.text
        seen["first_identity"], seen["second_identity"] = first.identity, second.identity
        seen["clients"] = second.clients()
        first.end_session(EndFlags.DISCONNECT)
        second.end_session(EndFlags.DISCONNECT)

    served.serve_while(remote_work)
    assert seen["rip"] == seen["main"]
    first_id, second_id = seen["first_identity"], seen["second_identity"]
    assert first_id.startswith(local_name() + " (tcp 127.0.0.1:")
    assert second_id.startswith(local_name() + " (npipe")
    # each sees the other's commands, prefixed with who typed them, and all output
    assert f"{second_id}: g\n" in seen["first"]
    assert f"{first_id}: bp checksum!main\n" in seen["second"]
    assert "from the first" in seen["second"]
    assert "checksum!main" in seen["first"]  # the stack the second client asked for
    assert f"{first_id}: .echo from the first\n" in local_screen.text
    assert f"{second_id} connected at " in local_screen.text
    assert served.serve_until(lambda: f"{second_id} disconnected at " in local_screen.text)
    assert f"{first_id} disconnected at " in local_screen.text
    assert len(seen["clients"]) == 3
    # the session stays for the local client after both left
    assert served.client.get_execution_status() == Status.BREAK
    assert served.client.get_register("rip") == seen["main"]


def _normalised(log: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Log entries with handles reduced to what both sides can compare."""
    out = []
    for entry in log:
        items = []
        for item in entry:
            if hasattr(item, "kind") and hasattr(item, "fields"):  # a RemoteHandle
                item = item.name if item.kind == "Module" else item
            elif hasattr(item, "path") and hasattr(item, "base"):  # a Module
                item = item.name
            items.append(int(item) if isinstance(item, int) else item)
        out.append(tuple(items))
    return out


def test_a_remote_client_hears_the_same_events_in_the_same_order(served: Served, programs: Programs) -> None:
    local = Recorder(mask=0x1FFF & ~EventMask.LOAD_MODULE & ~EventMask.UNLOAD_MODULE)
    served.client.set_event_callbacks(local)
    served.client.create_process([programs.path("checksum")])
    entry = served.start("tcp:port=0")
    remote_log: list[tuple[Any, ...]] = []
    start_at: list[int] = []

    def remote_work() -> None:
        remote = lindbg.debug_connect(Served.connect_string(entry))
        recorder = Recorder(mask=0x1FFF & ~EventMask.LOAD_MODULE & ~EventMask.UNLOAD_MODULE, log=remote_log)
        remote.set_event_callbacks(recorder)
        remote.execute(".echo sync")  # the interest mask is registered before this returns
        start_at.append(len(local.log))
        remote.execute("bp checksum!main")
        remote.execute("g")
        remote.execute("g")  # to the end of the program
        remote.end_session(EndFlags.DISCONNECT)

    served.serve_while(remote_work)
    local_part = _normalised(local.log[start_at[0] :])
    assert ("breakpoint", 0) in local_part
    assert ("session_status", lindbg.SessionStatus.END) in [(e[0], e[1]) for e in local_part if len(e) > 1]
    assert _normalised(remote_log) == local_part


def test_a_remote_callback_votes_on_a_breakpoint(served: Served, programs: Programs) -> None:
    served.client.create_process([programs.path("checksum")])
    entry = served.start("tcp:port=0")
    votes: list[int] = []

    def remote_work() -> Status:
        remote = lindbg.debug_connect(Served.connect_string(entry))

        class Voter(lindbg.EventCallbacks):
            def get_interest_mask(self) -> int:
                return int(EventMask.BREAKPOINT)

            def breakpoint(self, bp: Any) -> Status:
                votes.append(bp.id)
                return Status.GO  # a local client alone would break here

        remote.set_event_callbacks(Voter())
        remote.add_breakpoint("checksum!main")
        remote.set_execution_status(Status.GO)
        remote.wait_for_event(timeout=30)
        status = remote.get_execution_status()
        remote.end_session(EndFlags.DISCONNECT)
        return status

    assert served.serve_while(remote_work) == Status.NO_DEBUGGEE
    assert votes == [0]


def test_disconnect_leaves_the_session_and_disables_the_client(served: Served, programs: Programs) -> None:
    screen = Lines()
    served.client.set_output_callbacks(screen)
    served.client.create_process([programs.path("checksum")])
    entry = served.start("tcp:port=0")
    errors: list[BaseException] = []

    def remote_work() -> str:
        remote = lindbg.debug_connect(Served.connect_string(entry))
        remote.execute(".echo hello")
        remote.end_session(EndFlags.DISCONNECT)
        try:
            remote.execute(".echo after")
        except EngineUnusableError as error:
            errors.append(error)
        return remote.identity

    identity = served.serve_while(remote_work)
    assert served.serve_until(lambda: f"{identity} disconnected at" in screen.text)
    assert errors and "DISCONNECT" in str(errors[0])
    assert served.client.get_execution_status() == Status.BREAK
    assert len(served.client.connected_clients()) == 1
    with pytest.raises(InvalidOperationError):
        served.client.end_session(EndFlags.DISCONNECT)  # the local client stays local


def test_q_from_a_remote_client_ends_the_session_for_everyone(served: Served, programs: Programs) -> None:
    process = served.client.create_process([programs.path("loop")])
    entry = served.start("tcp:port=0")
    seen: dict[str, Any] = {}

    def remote_work() -> None:
        quitter = lindbg.debug_connect(Served.connect_string(entry))
        bystander = lindbg.debug_connect(Served.connect_string(entry))
        quitter.execute("q")
        try:
            bystander.dispatch_callbacks(timeout=10)
        except EngineUnusableError as error:
            seen["error"] = str(error)
        seen["farewell"] = bystander.farewell

    served.serve_while(remote_work)
    assert served.client.get_execution_status() == Status.NO_DEBUGGEE
    assert "the session was ended by" in (seen["farewell"] or "")
    assert "error" in seen
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)


@pytest.mark.parametrize("transport", ["ssl", "spipe"])
def test_tls_servers_verify_and_carry_the_session(served: Served, tmp_path: Path, transport: str) -> None:
    cert, key, ca = tls_files(tmp_path)
    where = "port=0" if transport == "ssl" else f"pipe={_pipe_name(transport)}"
    entry = served.start(f"{transport}:{where},cert={cert},key={key},password=pw")
    assert "Password=*" in entry.line()

    def remote_work() -> tuple[str, str]:
        with pytest.raises(lindbg.LindbgError):
            lindbg.debug_connect(Served.connect_string(entry, "password=pw"), timeout=5)  # no cafile
        remote = lindbg.debug_connect(Served.connect_string(entry, f"cafile={ca},password=pw"))
        screen = Lines()
        remote.set_output_callbacks(screen)
        remote.execute(".echo over tls")
        remote.end_session(EndFlags.DISCONNECT)
        return screen.text, remote.identity

    text, identity = served.serve_while(remote_work)
    assert "over tls" in text
    assert f"({transport} " in identity


def test_an_insecure_bind_is_refused_naming_insecure() -> None:
    client = DebugClient()
    with pytest.raises(lindbg.LindbgError, match="insecure"):
        client.start_server("tcp:port=0,bind=0.0.0.0")
    assert client.servers() == []


def _readline_with_timeout(stream: Any, timeout: float, wanted: str) -> str:
    import select

    seen = ""
    fd = stream.fileno()
    import time

    deadline = time.monotonic() + timeout
    while wanted not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{wanted!r} did not appear; got {seen!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536).decode()
            if not chunk:
                raise AssertionError(f"end of output before {wanted!r}; got {seen!r}")
            seen += chunk
    return seen


@contextlib.contextmanager
def _console_server(args: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    """``lindbg ARGS`` with piped standard streams, killed if the test leaves it running."""
    env = {k: v for k, v in os.environ.items() if k != "LINDBG_TEST_OUT"}
    server = subprocess.Popen([*LINDBG, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        yield server
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_lindbg_server_and_lindbg_remote_consoles(programs: Programs) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "LINDBG_TEST_OUT"}
    with _console_server(["-server", f"tcp:port={port}", programs.path("checksum")]) as server:
        assert server.stdout is not None and server.stdin is not None
        seen = _readline_with_timeout(server.stdout, 30, "0:000> ")
        assert f"Server started with 'tcp:port={port}'" in seen
        remote = subprocess.run(
            [*LINDBG, "-remote", f"tcp:server=127.0.0.1,port={port}"],
            input="bp checksum!main\ng\nk\n",
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert remote.returncode == 0, remote.stderr
        assert "checksum!main" in remote.stdout
        assert "Breakpoint 0 hit" in remote.stdout
        seen += _readline_with_timeout(server.stdout, 30, "disconnected at")
        assert ": bp checksum!main" in seen
        assert "(tcp 127.0.0.1:" in seen
        server.stdin.write(b"q\n")
        server.stdin.flush()
        assert server.wait(timeout=30) == 0


def test_a_session_over_a_serial_line(served: Served) -> None:
    from test_transport_endpoints import PtyLine

    line = PtyLine()
    try:
        served.start(f"com:port={line.server_path},baud=115200,password=pw")

        def remote_work() -> tuple[str, str]:
            remote = lindbg.debug_connect(f"com:port={line.client_path},baud=115200,password=pw")
            screen = Lines()
            remote.set_output_callbacks(screen)
            remote.execute(".echo over the line")
            remote.end_session(EndFlags.DISCONNECT)
            return screen.text, remote.identity

        text, identity = served.serve_while(remote_work)
        assert "over the line" in text
        assert f"(com {line.server_path})" in identity
    finally:
        served.close()
        line.close()


@pytest.mark.parametrize("command", [".detach", ".kill"])
def test_detach_and_kill_from_a_remote_client_act_on_the_shared_session(
    served: Served, programs: Programs, command: str
) -> None:
    process = served.client.create_process([programs.path("loop"), "0.2"])
    entry = served.start("tcp:port=0")

    def remote_work() -> Status:
        remote = lindbg.debug_connect(Served.connect_string(entry))
        remote.execute(command)
        status = remote.get_execution_status()
        remote.end_session(EndFlags.DISCONNECT)
        return status

    assert served.serve_while(remote_work) == Status.NO_DEBUGGEE
    assert served.client.get_execution_status() == Status.NO_DEBUGGEE
    if command == ".kill":
        with pytest.raises(ProcessLookupError):
            os.kill(process.pid, 0)
    else:
        # detached, it runs on to its end on its own (it is our child: reap it)
        _, status = os.waitpid(process.pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_a_password_on_the_command_line_is_hidden_from_ps(programs: Programs) -> None:
    port = _free_port()
    with _console_server(
        ["-server", f"tcp:port={port},password=Sup3rSecret", programs.path("checksum")]
    ) as server:
        assert server.stdout is not None and server.stdin is not None
        seen = _readline_with_timeout(server.stdout, 30, "0:000> ")
        assert "Sup3rSecret" not in seen
        with open(f"/proc/{server.pid}/cmdline", "rb") as f:
            cmdline = f.read()
        assert b"Sup3rSecret" not in cmdline
        assert b"password=***********" in cmdline
        server.stdin.write(b"q\n")
        server.stdin.flush()
        assert server.wait(timeout=30) == 0
