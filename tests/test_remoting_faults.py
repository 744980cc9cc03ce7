"""Faults at a debugging server, on real loopback sockets: wrong and missing passwords,
what crosses the wire at login, peers that send garbage or nothing, clients that vanish
mid-command or never read their output, a rejoin after a kill, fifty clients at once,
and both ends of the server going away (``shutdown_servers`` and a SIGKILLed
``lindbg -server``).

Each fault must end with its own error while the session and the other clients carry
on: after it, a well-behaved remote client logs in and sees ``.echo still here``.

The test thread owns the engine and serves it (``Served.serve_while``) while the
remote side runs on other threads or in child processes. Nothing sleeps to
synchronise: the tests wait on condition variables fed by output callbacks, on a
remote client's own ``dispatch_callbacks``, on ``select`` with timeouts, or on pipes
a child process writes to.
"""

from __future__ import annotations

import base64
import contextlib
import random
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped, unused-ignore]
import pytest
from conftest import WAIT, LineReader, OutputPipe, Programs, Recorder
from remoting_support import REMOTE_WAIT, Served

import lindbg
from lindbg import (
    CES,
    DebugClient,
    EngineUnusableError,
    EventMask,
    InvalidOperationError,
    LindbgError,
    OutputCallbacks,
    SessionStatus,
    Status,
)
from lindbg.protocols.session import (
    MAX_FRAME,
    PROTOCOL_VERSION,
    FrameDecoder,
    Role,
    SessionConnection,
    encode,
)
from lindbg.remoting.client import RemoteClient
from lindbg.remoting.server import ServerEntry, ServerHub
from lindbg.transports.options import TransportError

pytestmark = pytest.mark.timeout(90)

PASSWORD = "s3cr3t-Pa55"
REPO = Path(__file__).resolve().parent.parent
#: A remote client in a process of its own: it logs in, says who it is, runs one
#: command line, says so, then waits (on its stdin) to be killed.
CHILD_CLIENT = """
import sys
import lindbg
remote = lindbg.debug_connect(sys.argv[1])
print(remote.identity, flush=True)
remote.execute(sys.argv[2])
print("returned", flush=True)
sys.stdin.read()
"""


# ------------------------------------------------------------------ harness


class Lines(OutputCallbacks):
    """Output callbacks that keep every text; another thread may wait for a line.

    ``wake`` runs after each text while ``armed`` (a remote client's ``exit_dispatch``,
    so that the ``dispatch_callbacks`` of ``remote_wait`` returns and looks again). It
    is armed only there, so that no exit request is left pending for a later call or
    dispatch (test_a_pending_exit_dispatch_does_not_make_a_remote_call_spin)."""

    def __init__(self, wake: Callable[[], None] | None = None) -> None:
        self.texts: list[str] = []
        self.wake = wake
        self.armed = False
        self._cond = threading.Condition()

    def output(self, mask: int, text: str) -> None:
        with self._cond:
            self.texts.append(text)
            self._cond.notify_all()
        if self.wake is not None and self.armed:
            self.wake()

    @property
    def text(self) -> str:
        with self._cond:
            return "".join(self.texts)

    def lines(self) -> list[str]:
        return self.text.splitlines()

    def find(self, needle: str | re.Pattern[str]) -> str | None:
        """The first line holding ``needle`` (a string, or a pattern it must match)."""
        for line in self.lines():
            if isinstance(needle, str) and needle in line:
                return line
            if isinstance(needle, re.Pattern) and needle.search(line):
                return line
        return None

    def count(self, needle: str) -> int:
        return sum(1 for line in self.lines() if needle in line)

    def wait_for(self, needle: str | re.Pattern[str], timeout: float = WAIT) -> str:
        """Wait for a line written by callbacks that another thread runs (the engine's)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self.find(needle)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no line with {needle!r} within {timeout} s; got {self.lines()!r}")
                self._cond.wait(remaining)

    def wait_count(self, needle: str, count: int, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.count(needle) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"fewer than {count} lines with {needle!r}; got {self.lines()!r}")
                self._cond.wait(remaining)


def remote_wait(remote: RemoteClient, lines: Lines, needle: str, timeout: float = WAIT) -> str:
    """Run ``remote``'s callbacks (on its owner thread) until its output has ``needle``."""
    deadline = time.monotonic() + timeout
    lines.armed = True  # the callbacks run on this thread, inside dispatch_callbacks
    try:
        while True:
            found = lines.find(needle)
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"remote: no line with {needle!r} within {timeout} s; got {lines.lines()!r}"
                )
            remote.dispatch_callbacks(timeout=remaining)
    finally:
        lines.armed = False


class Bench:
    """One engine with its servers, the local output, the remote clients and child
    processes a test made (all ended by the fixture)."""

    def __init__(self, client: DebugClient) -> None:
        self.served = Served(client)
        self.client = client
        self.local = Lines()
        client.set_output_callbacks(self.local)
        self.remotes: list[RemoteClient] = []
        self.children: list[subprocess.Popen[bytes]] = []
        self.relays: list[Relay] = []

    @property
    def hub(self) -> ServerHub:
        hub = self.client._engine.servers
        assert hub is not None
        return hub

    def start(self, options: str = "tcp:port=0", **tunables: float) -> ServerEntry:
        """Start a server; ``tunables`` set the hub's attributes (handshake_timeout, ...)."""
        entry = self.served.start(options)
        for name, value in tunables.items():
            assert hasattr(self.hub, name), name
            setattr(self.hub, name, value)
        return entry

    def connect(
        self, entry: ServerEntry, extra: str = "", port: int | None = None
    ) -> tuple[RemoteClient, Lines]:
        """A remote client of ``entry`` (or of a relay's ``port``) owned by the calling
        thread, with output callbacks that wake its ``dispatch_callbacks``."""
        text = Served.connect_string(entry, extra)
        if port is not None:
            text = text.replace(f"port={entry.port}", f"port={port}")
        remote = lindbg.debug_connect(text)
        self.remotes.append(remote)
        lines = Lines(wake=remote.exit_dispatch)
        remote.set_output_callbacks(lines)
        return remote, lines

    def spawn_client(
        self, entry: ServerEntry, command: str
    ) -> tuple[subprocess.Popen[bytes], LineReader, str]:
        """A child process that logs in and runs ``command``; its identity."""
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD_CLIENT, Served.connect_string(entry), command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
        )
        self.children.append(child)
        assert child.stdout is not None
        said = LineReader(child.stdout.fileno())
        identity = said.wait_for("", timeout=REMOTE_WAIT)
        assert re.fullmatch(r".+\\.+ \(tcp 127\.0\.0\.1:\d+\)", identity), identity
        return child, said, identity

    def close(self) -> None:
        for remote in self.remotes:
            with contextlib.suppress(LindbgError, OSError):
                remote.close()
        for child in self.children:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            child.wait(WAIT)
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    stream.close()
        for relay in self.relays:
            relay.close()
        self.served.close()


@pytest.fixture
def bench(client: DebugClient) -> Iterator[Bench]:
    made = Bench(client)
    yield made
    made.close()


def assert_still_serving(bench: Bench, entry: ServerEntry, extra: str = "") -> None:
    """A new, well-behaved remote client logs in and runs a command (on a thread that
    is not the engine's, while the engine is served)."""
    remote, lines = bench.connect(entry, extra)
    try:
        remote.execute(".echo still here")
        assert "still here" in lines.lines()
        bench.local.wait_for(f"{remote.identity}: .echo still here")
    finally:
        remote.close()


def kill(child: subprocess.Popen[bytes]) -> None:
    child.send_signal(signal.SIGKILL)
    assert child.wait(WAIT) == -signal.SIGKILL


def read_to_end(sock: socket.socket, timeout: float = WAIT) -> bytes:
    """Everything ``sock`` receives until the peer closes (EOF or reset)."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"the server did not close the connection within {timeout} s")
        ready, _, _ = select.select([sock], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return bytes(data)
        if not chunk:
            return bytes(data)
        data += chunk


def raw_login(port: int, host: str, user: str) -> tuple[socket.socket, SessionConnection, dict[str, Any]]:
    """Log in by hand (no RemoteClient): the socket, the connection and the welcome."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    connection = SessionConnection(Role.CLIENT)
    sock.sendall(connection.hello(host, user))
    challenge = next_messages(sock, connection)[0]
    sock.sendall(connection.answer_challenge(challenge))
    welcome = next_messages(sock, connection)[0]
    assert welcome["t"] == "welcome", welcome
    connection.check_welcome(welcome)
    return sock, connection, welcome


def next_messages(sock: socket.socket, connection: SessionConnection) -> list[dict[str, Any]]:
    while True:
        data = sock.recv(65536)
        assert data, "the server closed the connection"
        messages = connection.receive_data(data)
        if messages:
            return messages


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


class Relay:
    """A TCP forwarder on 127.0.0.1 between one client and a server's port that keeps
    every byte that passes, each way.

    With ``hold_until``, the server's ``welcome`` frame and the frames after it are held
    back until an ``output`` frame whose text holds ``hold_until`` arrives, then sent on
    in one write: what a busy machine, Nagle, a TLS record or any proxy may do to the
    frames a server writes back to back (TCP carries a byte stream, not messages)."""

    def __init__(self, port: int, hold_until: str | None = None) -> None:
        self.target = port
        self.hold_until = hold_until
        self.upstream = bytearray()  # client -> server
        self.downstream = bytearray()  # server -> client
        self.held_frames: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]
        self._pending = bytearray()
        self._held: list[bytes] | None = None
        self._released = hold_until is None
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="test-relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            ready, _, _ = select.select([self._listener], [], [], REMOTE_WAIT)
            if not ready:
                return
            client, _ = self._listener.accept()
            self._sockets.append(client)
            server = socket.create_connection(("127.0.0.1", self.target), timeout=WAIT)
            self._sockets.append(server)
            peers = {client: server, server: client}
            readers = [client, server]
            while readers:
                ready, _, _ = select.select(readers, [], [], REMOTE_WAIT)
                if not ready:
                    return
                for sock in ready:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        readers.remove(sock)
                        with contextlib.suppress(OSError):
                            peers[sock].shutdown(socket.SHUT_WR)
                        continue
                    if sock is client:
                        self.upstream += data
                        server.sendall(data)
                    else:
                        self.downstream += data
                        self._forward_down(client, data)
        except BaseException as error:
            self.failure = error

    def _forward_down(self, client: socket.socket, data: bytes) -> None:
        if self._released:
            client.sendall(data)
            return
        self._pending += data
        while len(self._pending) >= 4:
            size = int.from_bytes(self._pending[:4], "big")
            if len(self._pending) < 4 + size:
                return
            whole = bytes(self._pending[: 4 + size])
            del self._pending[: 4 + size]
            message = msgpack.unpackb(whole[4:], raw=False)
            if self._held is None:
                if message["t"] != "welcome":
                    client.sendall(whole)
                    continue
                self._held = []
            self._held.append(whole)
            self.held_frames.append(message["t"] + ":" + str(message.get("text", "")))
            if message["t"] == "output" and self.hold_until in message["text"]:
                client.sendall(b"".join(self._held) + bytes(self._pending))
                self._pending.clear()
                self._released = True
                return

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(WAIT)
        for sock in self._sockets:
            sock.close()
        assert not self._thread.is_alive()


# ------------------------------------------------------------------ 1. passwords


def test_a_wrong_or_missing_password_is_refused_with_one_note_that_does_not_show_it(bench: Bench) -> None:
    entry = bench.start(f"tcp:port=0,password={PASSWORD}", refusal_delay=0.05)
    wrong = "Wr0ng-guess-77"

    def work() -> None:
        with pytest.raises(InvalidOperationError) as refused:
            lindbg.debug_connect(Served.connect_string(entry, f"password={wrong}"))
        message = str(refused.value)
        assert "refused the login" in message
        assert "wrong password" in message
        assert wrong not in message and PASSWORD not in message
        bench.local.wait_count("gave a wrong password", 1)

        # no password at all, to a server that has one
        with pytest.raises(InvalidOperationError) as missing:
            lindbg.debug_connect(Served.connect_string(entry))
        assert "refused the login: wrong password" in str(missing.value)
        bench.local.wait_count("gave a wrong password", 2)

        # by hand, to know the peer's port the note must name
        sock = socket.create_connection(("127.0.0.1", entry.port), timeout=WAIT)
        with sock:
            port = sock.getsockname()[1]
            connection = SessionConnection(Role.CLIENT, password=wrong)
            sock.sendall(connection.hello("guesshost", "guesser"))
            sock.sendall(connection.answer_challenge(next_messages(sock, connection)[0]))
            verdict = next_messages(sock, connection)
            assert [m["t"] for m in verdict] == ["refused"]
            assert verdict[0]["message"] == "wrong password"
            assert read_to_end(sock) == b""
        note = bench.local.wait_for(f"tcp 127.0.0.1:{port} gave")
        assert note == f"lindbg: a client at tcp 127.0.0.1:{port} gave a wrong password: disconnected"

        assert_still_serving(bench, entry, f"password={PASSWORD}")

    bench.served.serve_while(work)
    notes = [line for line in bench.local.lines() if "wrong password" in line]
    assert len(notes) == 3, notes
    for line in notes:
        assert re.fullmatch(
            r"lindbg: a client at tcp 127\.0\.0\.1:\d+ gave a wrong password: disconnected", line
        )
    assert len({line.split(" gave ")[0] for line in notes}) == 3, "one note per refused peer"
    assert wrong not in bench.local.text
    assert PASSWORD not in bench.local.text
    # a refused peer never became a client
    assert "guesser" not in bench.local.text


# ------------------------------------------------------------------ 2. the wire


def test_the_password_never_crosses_the_wire_in_any_form(bench: Bench) -> None:
    entry = bench.start(f"tcp:port=0,password={PASSWORD}")
    relay = Relay(entry.port)
    bench.relays.append(relay)

    def work() -> list[str]:
        remote, lines = bench.connect(entry, f"password={PASSWORD}", port=relay.port)
        remote.execute(".echo through the relay")
        assert "through the relay" in lines.lines()
        servers = remote.servers()
        remote.close()
        return servers

    servers = bench.served.serve_while(work)
    relay.close()
    assert relay.failure is None, relay.failure
    assert any("Password=*" in line for line in servers), servers
    assert not any(PASSWORD in line for line in servers)

    # the recording is real: the login, the command and its output passed through it
    assert b".echo through the relay" in relay.upstream
    assert b"through the relay\n" in relay.downstream
    assert b"hmac-sha256" in relay.downstream

    secret = PASSWORD.encode()
    forms = {
        "utf-8": secret,
        "utf-16-le": PASSWORD.encode("utf-16-le"),
        "utf-16-be": PASSWORD.encode("utf-16-be"),
        "utf-32-le": PASSWORD.encode("utf-32-le"),
        "hex": secret.hex().encode(),
        "HEX": secret.hex().upper().encode(),
        "base64": base64.b64encode(secret),
        "base64 unpadded": base64.b64encode(secret).rstrip(b"="),
        "base64 urlsafe": base64.urlsafe_b64encode(secret),
        "base64 of utf-16": base64.b64encode(PASSWORD.encode("utf-16-le")),
        "base32": base64.b32encode(secret),
    }
    for direction, recorded in (("client to server", relay.upstream), ("server to client", relay.downstream)):
        for name, form in forms.items():
            assert form not in recorded, f"the password ({name}) went {direction}"
            assert form.lower() not in bytes(recorded).lower(), f"the password ({name}) went {direction}"


# ------------------------------------------------------------------ 3. garbage


def _random_frame() -> bytes:
    payload = random.Random(20240501).randbytes(512)
    return frame(payload)


def _hello() -> bytes:
    return SessionConnection(Role.CLIENT).hello("garblehost", "garbler")


GARBAGE = {
    # 4 KiB of noise: its first four bytes announce 0xE1... bytes, far over the limit
    "random bytes": bytes([0xE1]) + random.Random(7).randbytes(4095),
    "a frame of random bytes": _random_frame(),
    "a header announcing 100 MB": (100 << 20).to_bytes(4, "big"),
    "a header announcing 100 MB after a hello": _hello() + (100 << 20).to_bytes(4, "big"),
    "a frame that is not a map": frame(msgpack.packb([1, 2, 3])),
    "an auth before the hello": encode({"t": "auth", "proof": b"x" * 32}),
    "a second hello before the challenge": _hello() + _hello(),
    "a hello of another protocol version": frame(
        msgpack.packb(
            {"t": "hello", "v": PROTOCOL_VERSION + 1, "host": "h", "user": "u", "cnonce": b"n" * 16},
            use_bin_type=True,
        )
    ),
}


@pytest.mark.parametrize("garbage", list(GARBAGE.values()), ids=list(GARBAGE))
def test_garbage_before_the_login_ends_that_connection_only(bench: Bench, garbage: bytes) -> None:
    entry = bench.start(handshake_timeout=WAIT)

    def work() -> None:
        watcher, watcher_lines = bench.connect(entry)
        sock = socket.create_connection(("127.0.0.1", entry.port), timeout=WAIT)
        with sock:
            port = sock.getsockname()[1]
            sock.sendall(garbage)
            answer = read_to_end(sock)
            # at most the challenge to a valid hello (if TCP split what we sent); never a welcome
            kinds = [m["t"] for m in FrameDecoder().feed(answer)]
            assert kinds in ([], ["challenge"]), kinds
        note = bench.local.wait_for(f"a peer at tcp 127.0.0.1:{port} ")
        assert "broke the session protocol" in note, note
        # nothing of that peer reached the session
        assert "garbler" not in bench.local.text
        watcher.execute(".echo the watcher carries on")
        assert "the watcher carries on" in watcher_lines.lines()
        assert_still_serving(bench, entry)

    bench.served.serve_while(work)
    assert bench.local.count("broke the session protocol") == 1


def test_garbage_after_the_login_ends_that_client_and_is_noted(bench: Bench) -> None:
    entry = bench.start()

    def work() -> None:
        watcher, watcher_lines = bench.connect(entry)
        sock, _, welcome = raw_login(entry.port, "garblehost", "garbler")
        identity = welcome["identity"]
        with sock:
            bench.local.wait_for(f"{identity} connected at")
            sock.sendall((100 << 20).to_bytes(4, "big") + b"\xc1" * 64)
            read_to_end(sock)  # the server closes that connection
        note = bench.local.wait_for(f"{identity} broke the session protocol")
        reason = f"frame of {100 << 20} bytes exceeds the limit of {MAX_FRAME}"
        assert note.startswith(f"{identity} broke the session protocol ({reason}) at "), note
        remote_wait(watcher, watcher_lines, f"{identity} broke the session protocol")
        watcher.execute(".echo the watcher carries on")
        assert "the watcher carries on" in watcher_lines.lines()
        assert_still_serving(bench, entry)

    bench.served.serve_while(work)
    assert bench.local.count("broke the session protocol") == 1


# ------------------------------------------------------------------ 4. silence


#: What the silent peer sends, and the frames the server answers before closing.
SILENCES = {
    "says nothing": (b"", []),
    "says hello, then nothing": (_hello(), ["challenge"]),
    "stops inside its first frame": (_hello()[:7], []),
}


@pytest.mark.parametrize(("said", "answered"), list(SILENCES.values()), ids=list(SILENCES))
def test_a_peer_that_does_not_log_in_is_disconnected_after_the_handshake_timeout(
    bench: Bench, said: bytes, answered: list[str]
) -> None:
    entry = bench.start(handshake_timeout=0.5)

    def work() -> float:
        watcher, watcher_lines = bench.connect(entry)
        sock = socket.create_connection(("127.0.0.1", entry.port), timeout=WAIT)
        with sock:
            port = sock.getsockname()[1]
            started = time.monotonic()
            if said:
                sock.sendall(said)
            answer = read_to_end(sock, timeout=5.0)
            waited = time.monotonic() - started
        assert [m["t"] for m in FrameDecoder().feed(answer)] == answered
        note = bench.local.wait_for(f"a peer at tcp 127.0.0.1:{port} ")
        assert note == f"lindbg: a peer at tcp 127.0.0.1:{port} did not log in within 0.5 s: disconnected"
        watcher.execute(".echo the watcher carries on")
        assert "the watcher carries on" in watcher_lines.lines()
        assert_still_serving(bench, entry)
        return waited

    waited = bench.served.serve_while(work)
    assert 0.4 <= waited < 5.0, waited


# ------------------------------------------------------------------ 5. a client killed mid-command


def test_a_client_killed_while_its_g_runs_leaves_the_session_running(
    bench: Bench, programs: Programs, pipe: OutputPipe
) -> None:
    entry = bench.start("tcp:port=0,persist=1")
    bench.client.create_process([programs.path("loop")], env=pipe.env)

    def work() -> None:
        other, other_lines = bench.connect(entry)
        child, _, identity = bench.spawn_client(entry, "g")
        name = identity.split(" (")[0]
        bench.local.wait_for(f"{identity}: g")
        pipe.wait_for("ready")  # the target runs the dead client's g
        kill(child)

        lost = bench.local.wait_for(f"{identity} lost its connection at")
        assert lost.endswith("its place is kept for 1 s"), lost
        clients = other.clients()
        assert f"{name} (disconnected, rejoin pending)" in clients, clients
        assert bench.client.connected_clients() == clients
        # the others go on while the target runs: a command, then a break-in
        other.execute(".echo still here")
        assert "still here" in other_lines.lines()
        assert other.get_execution_status() == Status.GO
        other.set_interrupt()
        remote_wait(other, other_lines, "Break instruction exception")
        assert other.get_execution_status() == Status.BREAK

        # persist expires: the place is gone, and everyone was told
        remote_wait(other, other_lines, f"{identity} disconnected at", timeout=REMOTE_WAIT)
        bench.local.wait_for(f"{identity} disconnected at")
        clients = other.clients()
        assert not any("rejoin pending" in line for line in clients), clients
        assert not any(line.startswith(identity) for line in clients), clients
        assert any(line.startswith(f"{other.identity}, last active") for line in clients), clients
        assert_still_serving(bench, entry)

    bench.served.serve_while(work)
    assert bench.client.get_execution_status() == Status.BREAK


# ------------------------------------------------------------------ 6. a client that never reads


def test_a_client_that_never_reads_its_output_is_dropped_without_stalling_the_others(bench: Bench) -> None:
    entry = bench.start("tcp:port=0,persist=30", output_limit=64 << 10)
    chunk = ".echo " + "x" * 2000
    batch = ";".join([chunk] * 20)  # some 40 KB of output a call

    def work() -> tuple[float, int]:
        good, good_lines = bench.connect(entry)
        staller, _, welcome = raw_login(entry.port, "stallhost", "staller")
        identity = welcome["identity"]
        with staller:
            bench.local.wait_for(f"{identity} connected at")
            worst = 0.0
            produced = 0
            while good_lines.find(f"{identity} was dropped") is None:
                assert produced < 64 << 20, "64 MB of output and the silent client is still there"
                started = time.monotonic()
                good.execute(batch)
                worst = max(worst, time.monotonic() - started)
                produced += 20 * 2000
            dropped = good_lines.find(f"{identity} was dropped")
            assert dropped is not None
            assert re.fullmatch(
                re.escape(identity) + r" was dropped at .+: it did not read its output \(64 KiB waiting\)",
                dropped,
            ), dropped
            bench.local.wait_for(f"{identity} was dropped at")
            # the dropped link is closed (what was in flight may still be read first)
            read_to_end(staller, timeout=REMOTE_WAIT)
        started = time.monotonic()
        good.execute(".echo after the drop")
        worst = max(worst, time.monotonic() - started)
        assert "after the drop" in good_lines.lines()
        clients = good.clients()
        assert not any("staller" in line for line in clients), clients
        assert_still_serving(bench, entry)
        return worst, produced

    worst, produced = bench.served.serve_while(work)
    assert worst < 5.0, f"a command took {worst:.2f} s while a client did not read"
    assert produced < 64 << 20


# ------------------------------------------------------------------ 7. rejoin


def _kill_a_client_that_ran_a_command(bench: Bench, entry: ServerEntry) -> str:
    """A child process logs in, runs a command and is SIGKILLed; its identity."""

    def work() -> str:
        child, said, identity = bench.spawn_client(entry, ".echo first life")
        said.wait_for("returned")
        kill(child)
        lost = bench.local.wait_for(f"{identity} lost its connection at")
        assert lost.endswith("its place is kept for 30 s"), lost
        return identity

    return bench.served.serve_while(work)


def test_a_killed_client_rejoins_its_place_within_persist(
    bench: Bench, programs: Programs, pipe: OutputPipe
) -> None:
    entry = bench.start("tcp:port=0,persist=30")
    bench.client.create_process([programs.path("loop")], env=pipe.env)
    first = _kill_a_client_that_ran_a_command(bench, entry)
    assert bench.client.get_execution_status() == Status.BREAK
    bench.client.execute(".echo while away")
    assert bench.client.get_execution_status() == Status.BREAK
    assert f"{first.split(' (')[0]} (disconnected, rejoin pending)" in bench.client.connected_clients()

    relay = Relay(entry.port)  # records what the server sends the rejoining client
    bench.relays.append(relay)

    def work() -> None:
        remote, lines = bench.connect(entry, port=relay.port)
        assert remote.rejoined is True
        assert remote.identity.split(" (")[0] == first.split(" (")[0]
        bench.local.wait_for(f"{remote.identity} rejoined at")
        clients = remote.clients()
        assert any(line.startswith(f"{remote.identity}, last active") for line in clients), clients
        assert not any("rejoin pending" in line for line in clients), clients
        assert remote.get_execution_status() == Status.BREAK
        remote.execute(".echo back again")
        assert "back again" in lines.lines()
        assert_still_serving(bench, entry)

    bench.served.serve_while(work)
    assert bench.client.get_execution_status() == Status.BREAK
    relay.close()
    # the server replayed what was said while the client was away (whether the client
    # shows it is test_a_rejoining_client_gets_the_output_it_missed's business)
    assert b"while away\n" in relay.downstream
    # and nothing the first life had already received
    assert b"first life" not in relay.downstream


def test_a_rejoining_client_gets_the_output_it_missed(
    bench: Bench, programs: Programs, pipe: OutputPipe
) -> None:
    entry = bench.start("tcp:port=0,persist=30")
    bench.client.create_process([programs.path("loop")], env=pipe.env)
    _kill_a_client_that_ran_a_command(bench, entry)
    bench.client.execute(".echo while away")
    # the rejoining client's link delivers the welcome and the replay in one read
    relay = Relay(entry.port, hold_until="rejoined at")
    bench.relays.append(relay)

    def work() -> None:
        remote, lines = bench.connect(entry, port=relay.port)
        assert remote.rejoined is True
        remote.execute(".echo back again")
        assert "back again" in lines.lines()
        assert "while away" in lines.lines(), (relay.held_frames, lines.lines())

    bench.served.serve_while(work)


def test_output_that_arrives_with_the_welcome_is_not_lost(bench: Bench) -> None:
    entry = bench.start()
    relay = Relay(entry.port, hold_until="connected at")
    bench.relays.append(relay)

    def work() -> None:
        remote, lines = bench.connect(entry, port=relay.port)
        remote.execute(".echo hello")
        assert "hello" in lines.lines()
        assert lines.find(f"{remote.identity} connected at") is not None, (relay.held_frames, lines.lines())

    bench.served.serve_while(work)


def test_a_pending_exit_dispatch_does_not_make_a_remote_call_spin(
    bench: Bench, programs: Programs, pipe: OutputPipe
) -> None:
    entry = bench.start()
    # the call below lasts as long as the target runs: about a second
    bench.client.create_process([programs.path("loop"), "1"], env=pipe.env)

    def work() -> tuple[float, float, bool]:
        remote, _ = bench.connect(entry)
        # another thread asks the owner's next dispatch_callbacks to return
        asker = threading.Thread(target=remote.exit_dispatch)
        asker.start()
        asker.join()
        cpu, wall = time.thread_time(), time.monotonic()
        remote.execute("g")
        cpu, wall = time.thread_time() - cpu, time.monotonic() - wall
        # the request was kept for the dispatch it was meant for
        return cpu, wall, remote.dispatch_callbacks(timeout=0)

    cpu, wall, kept = bench.served.serve_while(work)
    assert kept is True
    assert pipe.wait_for("finished")
    assert wall >= 0.5, wall
    assert cpu < 0.2 * wall, f"the caller used {cpu:.2f} s of CPU waiting {wall:.2f} s for its call"


def test_a_pending_exit_dispatch_does_not_make_the_engine_spin_awaiting_a_remote_vote(
    bench: Bench, programs: Programs, pipe: OutputPipe
) -> None:
    entry = bench.start()
    bench.client.create_process([programs.path("checksum"), "1"], env=pipe.env)
    bench.client.execute("bp checksum!target_fn")
    ready = threading.Event()
    stop = threading.Event()
    asked: list[int] = []
    voters: list[RemoteClient] = []

    class SlowVoter(Recorder):
        def breakpoint(self, bp: Any) -> Status:
            asked.append(bp.id)
            threading.Event().wait(1.0)  # its user takes a second to answer
            return Status.NO_CHANGE

    def voter() -> None:
        remote = lindbg.debug_connect(Served.connect_string(entry))
        remote.set_event_callbacks(SlowVoter(mask=EventMask.BREAKPOINT))
        voters.append(remote)
        ready.set()
        while not stop.is_set():
            remote.dispatch_callbacks(timeout=REMOTE_WAIT)
        remote.close()

    thread = threading.Thread(target=voter, name="slow-voter", daemon=True)
    thread.start()
    bench.served.serve_while(lambda: ready.wait(REMOTE_WAIT))
    # some thread asks the engine thread's next dispatch_callbacks to return
    asker = threading.Thread(target=bench.client.exit_dispatch, args=(bench.client,))
    asker.start()
    asker.join()
    cpu, wall = time.thread_time(), time.monotonic()
    bench.client.execute("g")  # the breakpoint waits for the remote vote
    cpu, wall = time.thread_time() - cpu, time.monotonic() - wall
    assert asked == [0]
    assert bench.client.get_execution_status() == Status.BREAK
    assert bench.client.dispatch_callbacks(timeout=0) is True  # the request was kept

    def finish() -> None:
        stop.set()
        voters[0].exit_dispatch()
        thread.join(REMOTE_WAIT)
        assert not thread.is_alive()

    bench.served.serve_while(finish)
    assert wall >= 0.5, wall
    assert cpu < 0.2 * wall, f"the engine thread used {cpu:.2f} s of CPU awaiting a vote for {wall:.2f} s"


# ------------------------------------------------------------------ 8. load


def test_fifty_clients_at_once_each_get_every_line_in_order(
    bench: Bench, programs: Programs, pipe: OutputPipe
) -> None:
    clients = 50
    hits = 200
    echoes = 100
    entry = bench.start()
    bench.client.create_process([programs.path("checksum"), str(hits)], env=pipe.env)
    bench.client.execute('bp checksum!target_fn "r rdi; gc"')
    connected = threading.Semaphore(0)
    results: list[Any] = [None] * clients
    started = time.monotonic()

    def member(index: int) -> None:
        try:
            remote = lindbg.debug_connect(Served.connect_string(entry))
            done = threading.Event()

            class Collect(OutputCallbacks):
                def __init__(self) -> None:
                    self.texts: list[str] = []

                def output(self, mask: int, text: str) -> None:
                    self.texts.append(text)
                    if "load done" in text:
                        done.set()
                        remote.exit_dispatch()

            collect = Collect()
            remote.set_output_callbacks(collect)
            voter = Recorder(mask=EventMask.BREAKPOINT) if index % 25 == 0 else None
            if voter is not None:
                remote.set_event_callbacks(voter)
            connected.release()
            deadline = time.monotonic() + REMOTE_WAIT
            while not done.is_set() and time.monotonic() < deadline:
                remote.dispatch_callbacks(timeout=deadline - time.monotonic())
            remote.close()
            results[index] = ("".join(collect.texts), voter)
        except BaseException as error:
            results[index] = error
            connected.release()

    threads = [
        threading.Thread(target=member, args=(i,), name=f"member-{i}", daemon=True) for i in range(clients)
    ]

    def all_connected() -> None:
        for thread in threads:
            thread.start()
        for _ in range(clients):
            assert connected.acquire(timeout=REMOTE_WAIT), "not every client logged in"

    bench.served.serve_while(all_connected)
    assert len(bench.client.connected_clients()) == clients + 1

    # the local side runs the target: 200 breakpoint hits, each with output
    bench.client.execute("g")
    assert bench.client.get_execution_status() == Status.NO_DEBUGGEE

    def drive() -> None:
        driver, _ = bench.connect(entry)
        for number in range(echoes):
            driver.execute(f".echo line {number}")
        driver.execute(".echo load done")
        for thread in threads:
            thread.join(REMOTE_WAIT)
            assert not thread.is_alive()
        driver.close()

    bench.served.serve_while(drive)
    elapsed = time.monotonic() - started
    for index, result in enumerate(results):
        assert not isinstance(result, BaseException), f"client {index}: {result!r}"
        assert result is not None, f"client {index} did not finish"
        text, voter = result
        lines = text.splitlines()
        registers = [int(m.group(1), 16) for m in map(re.compile(r"^rdi=([0-9a-f]{16})$").match, lines) if m]
        assert registers == list(range(hits)), f"client {index}: breakpoint output {registers[:10]}..."
        assert lines.count("Breakpoint 0 hit") == hits
        said = [int(m.group(1)) for m in map(re.compile(r"^line (\d+)$").match, lines) if m]
        assert said == list(range(echoes)), f"client {index}: {said[:10]}..."
        if voter is not None:
            assert len(voter.of("breakpoint")) == hits
    assert elapsed < 60, f"{clients} clients took {elapsed:.1f} s"


# ------------------------------------------------------------------ 9. the server goes away


def test_shutdown_servers_says_goodbye_to_every_remote_client(bench: Bench) -> None:
    members = 3
    entry = bench.start()
    connected = threading.Semaphore(0)
    results: list[Any] = [None] * members

    def member(index: int) -> None:
        try:
            remote = lindbg.debug_connect(Served.connect_string(entry))
            recorder = Recorder(mask=EventMask.SESSION_STATUS | EventMask.CHANGE_ENGINE_STATE)
            remote.set_event_callbacks(recorder)
            connected.release()
            with pytest.raises(EngineUnusableError) as ended:
                remote.dispatch_callbacks(timeout=REMOTE_WAIT)
            started = time.monotonic()
            with pytest.raises(EngineUnusableError) as later:
                remote.execute(".echo anyone there")
            with pytest.raises(EngineUnusableError):
                remote.get_register("rip")
            results[index] = (remote.farewell, str(ended.value), str(later.value), time.monotonic() - started)
        except BaseException as error:
            results[index] = error
            connected.release()

    threads = [threading.Thread(target=member, args=(i,), daemon=True) for i in range(members)]

    def all_connected() -> None:
        for thread in threads:
            thread.start()
        for _ in range(members):
            assert connected.acquire(timeout=REMOTE_WAIT)
        bench.local.wait_count(" connected at", members)

    bench.served.serve_while(all_connected)
    bench.client.shutdown_servers()
    for thread in threads:
        thread.join(REMOTE_WAIT)
        assert not thread.is_alive()
    for result in results:
        assert not isinstance(result, BaseException), result
        farewell, ended, later, took = result
        assert farewell == "the debugging server exited"
        assert "the debugging server exited" in ended
        assert "the debugging server exited" in later
        assert took < 1.0
    assert all(server.line().endswith("<Disabled>") for server in bench.client.servers())
    with pytest.raises(TransportError):
        lindbg.debug_connect(Served.connect_string(entry), timeout=WAIT)

    # the session carries on, and a new server serves it
    bench.client.execute(".echo local still here")
    assert "local still here" in bench.local.lines()
    again = bench.start()
    bench.served.serve_while(lambda: assert_still_serving(bench, again))


def test_a_killed_server_process_fails_its_clients_at_once(programs: Programs) -> None:
    lindbg_command = REPO / ".venv" / "bin" / "lindbg"
    command = (
        [str(lindbg_command)] if lindbg_command.exists() else [sys.executable, "-m", "lindbg.cli.lindbg_main"]
    )
    server = subprocess.Popen(
        [*command, "-c", ".servers", "-server", "tcp:port=0", programs.path("loop")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    remotes: list[tuple[RemoteClient, Recorder]] = []
    try:
        assert server.stdout is not None
        said = LineReader(server.stdout.fileno())
        line = said.wait_for("0 - Debugger Server - tcp:Port=", timeout=REMOTE_WAIT)
        port = int(line.rsplit("=", 1)[1])
        for _ in range(2):
            remote = lindbg.debug_connect(f"tcp:server=127.0.0.1,port={port}")
            lines = Lines()
            remote.set_output_callbacks(lines)
            recorder = Recorder(mask=EventMask.SESSION_STATUS | EventMask.CHANGE_ENGINE_STATE)
            remote.set_event_callbacks(recorder)
            remote.execute(".echo before the end")
            assert "before the end" in lines.lines()
            remotes.append((remote, recorder))
        assert remotes[0][0].get_execution_status() == Status.BREAK

        killed = time.monotonic()
        kill(server)
        for remote, recorder in remotes:
            with pytest.raises(EngineUnusableError):
                remote.dispatch_callbacks(timeout=REMOTE_WAIT)
            failed = time.monotonic() - killed
            assert failed < 2.0, f"the client noticed after {failed:.2f} s"
            assert recorder.log[-2:] == [
                ("change_engine_state", int(CES.EXECUTION_STATUS), int(Status.NO_DEBUGGEE)),
                ("session_status", SessionStatus.FAILURE),
            ], recorder.log
            assert remote.farewell is None
            assert remote.unusable_reason is not None and "lost" in remote.unusable_reason
            started = time.monotonic()
            with pytest.raises(EngineUnusableError):
                remote.execute(".echo anyone there")
            with pytest.raises(EngineUnusableError):
                remote.read_memory(0x400000, 4)
            assert time.monotonic() - started < 1.0
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(WAIT)
        for stream in (server.stdin, server.stdout):
            if stream is not None:
                stream.close()
        for remote, _ in remotes:
            with contextlib.suppress(LindbgError):
                remote.close()
