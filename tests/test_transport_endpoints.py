"""Real listeners and connections of every transport, on loopback only: tcp (ports,
ranges, clicon both ways, IPv6), npipe (the private directory, stale and live sockets),
ssl and spipe with ``trustme`` certificates, and com over two pty pairs joined by a relay.

The server side runs on an asyncio loop in a thread of its own, as it does in lindbg;
clients are the blocking streams of ``connect()``. Nothing sleeps to synchronise: the
tests wait on queues and events with generous timeouts (2 loaded cores).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import select
import shutil
import socket
import ssl
import stat
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme

from lindbg.transports.endpoints import Listener, Stream, StreamHandler, connect, open_listener
from lindbg.transports.npipe import pipe_directory, pipe_path
from lindbg.transports.options import TransportError, parse_client_options, parse_server_options

pytestmark = pytest.mark.timeout(60)

#: Seconds any single wait may take before the test fails.
WAIT = 10.0
T = TypeVar("T")


# ------------------------------------------------------------------ harness


class IoThread:
    """An asyncio loop in a thread: the server side of every test runs here."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.reported: list[dict[str, Any]] = []
        self.loop.set_exception_handler(self._report)
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-io", daemon=True)
        self.thread.start()

    def _report(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # In debug mode (python -X dev) asyncio reports every refused TLS handshake; that
        # is the peer's failure, not the listener's.
        refused = isinstance(context.get("exception"), ssl.SSLError) and self.loop.get_debug()
        if not refused:
            self.reported.append(context)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = WAIT) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def listen(self, text: str, handler: StreamHandler) -> Listener:
        return self.run(open_listener(parse_server_options(text), handler))

    def settle(self, condition: Callable[[], bool]) -> bool:
        """Let the loop run its pending callbacks until ``condition`` holds (or WAIT ends)."""
        deadline = self.loop.time() + WAIT
        while not condition():
            if self.loop.time() > deadline:
                return False
            self.run(asyncio.sleep(0))
        return True

    def stop(self) -> None:
        async def cancel_the_rest() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


class Echo:
    """A handler that sends back what it reads; ``!`` makes it fail. Records each peer."""

    def __init__(self) -> None:
        self.peers: queue.Queue[dict[str, Any]] = queue.Queue()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, label: str) -> None:
        peer: dict[str, Any] = {"label": label}
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            peer["nodelay"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        tls = writer.get_extra_info("ssl_object")
        if tls is not None:
            peer["tls"] = tls.version()
        self.peers.put(peer)
        while True:
            data = await reader.read(65536)
            if not data:
                return
            if data.startswith(b"!"):
                raise RuntimeError("the handler fails on purpose")
            writer.write(data)
            await writer.drain()

    def next_peer(self) -> dict[str, Any]:
        return self.peers.get(timeout=WAIT)


@pytest.fixture
def io() -> Iterator[IoThread]:
    thread = IoThread()
    yield thread
    thread.stop()
    assert thread.reported == [], "the event loop reported errors"


@pytest.fixture
def pipes(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private XDG_RUNTIME_DIR (short: socket paths must fit 107 bytes)."""
    runtime = tempfile.mkdtemp(prefix="ldt-")
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
    yield runtime
    shutil.rmtree(runtime, ignore_errors=True)


class Certificates:
    def __init__(self, directory: Path) -> None:
        self.authority = trustme.CA()
        issued = self.authority.issue_cert("localhost", "127.0.0.1", "::1")
        self.ca = str(directory / "ca.pem")
        self.cert = str(directory / "cert.pem")
        self.key = str(directory / "key.pem")
        self.authority.cert_pem.write_to_path(self.ca)
        with open(self.cert, "wb") as chain:
            for blob in issued.cert_chain_pems:
                chain.write(blob.bytes())
        issued.private_key_pem.write_to_path(self.key)
        other = self.authority.issue_cert("example.org")
        self.other_cert = str(directory / "other-cert.pem")
        self.other_key = str(directory / "other-key.pem")
        other.cert_chain_pems[0].write_to_path(self.other_cert)
        other.private_key_pem.write_to_path(self.other_key)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("certs"))


def client(text: str, timeout: float = WAIT) -> Stream:
    return connect(parse_client_options(text), timeout=timeout)


def round_trip(stream: Stream, payload: bytes = b"ping") -> None:
    stream.send(payload)
    received = b""
    while len(received) < len(payload):
        chunk = stream.recv()
        assert chunk, f"the stream ended after {received!r}"
        received += chunk
    assert received == payload


def client_nodelay(stream: Stream) -> int:
    duplicate = socket.socket(fileno=os.dup(stream.fileno()))
    try:
        return duplicate.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        duplicate.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def in_thread(work: Callable[[], T]) -> tuple[threading.Thread, queue.Queue[T | BaseException]]:
    results: queue.Queue[T | BaseException] = queue.Queue()

    def run() -> None:
        try:
            results.put(work())
        except BaseException as error:
            results.put(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, results


def result_of(results: queue.Queue[T | BaseException]) -> T:
    value = results.get(timeout=WAIT)
    if isinstance(value, BaseException):
        raise value
    return value


# ------------------------------------------------------------------ tcp


def test_tcp_any_free_port_round_trip(io: IoThread) -> None:
    echo = Echo()
    listener = io.listen("tcp:port=0", echo)
    assert listener.port is not None and listener.port > 0
    assert listener.description == f"tcp:Port={listener.port}"
    assert listener.path is None
    with client(f"tcp:server=127.0.0.1,port={listener.port}") as stream:
        assert stream.label == f"tcp 127.0.0.1:{listener.port}"
        round_trip(stream)
        peer = echo.next_peer()
        assert peer["label"].startswith("tcp 127.0.0.1:")
        assert peer["nodelay"] != 0
        assert client_nodelay(stream) != 0
    io.run(listener.close())
    assert listener.closed
    io.run(listener.close())  # idempotent
    with pytest.raises(TransportError, match=f"127.0.0.1:{listener.port}"):
        client(f"tcp:server=127.0.0.1,port={listener.port}")


def test_tcp_range_skips_a_taken_port(io: IoThread) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        taken = int(blocker.getsockname()[1])
        last = min(taken + 40, 65535)
        listener = io.listen(f"tcp:port={taken}:{last}", Echo())
        try:
            assert listener.port is not None and taken < listener.port <= last
            assert listener.description == f"tcp:Port={listener.port}"
            with client(f"tcp:server=localhost,port={listener.port}") as stream:
                round_trip(stream)
        finally:
            io.run(listener.close())


def test_tcp_taken_ports_are_errors(io: IoThread) -> None:
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        first.listen(1)
        port = int(first.getsockname()[1])
        with pytest.raises(TransportError, match=f"tcp: cannot listen on 127.0.0.1:{port}: "):
            io.listen(f"tcp:port={port}", Echo())
        try:
            second.bind(("127.0.0.1", port + 1))
        except OSError:
            pytest.skip("the port after a free one is taken")
        second.listen(1)
        with pytest.raises(TransportError, match=f"tcp: no free port in {port}:{port + 1}"):
            io.listen(f"tcp:port={port}:{port + 1}", Echo())


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback")
def test_tcp_ipv6(io: IoThread) -> None:
    echo = Echo()
    listener = io.listen("tcp:port=0,ipversion=6", echo)
    assert listener.description == f"tcp:Port={listener.port},IpVersion=6"
    with client(f"tcp:server=::1,port={listener.port},ipversion=6") as stream:
        assert stream.label == f"tcp [::1]:{listener.port}"
        round_trip(stream)
        assert echo.next_peer()["label"].startswith("tcp [::1]:")
    io.run(listener.close())


def test_tcp_connect_errors_name_host_and_port() -> None:
    port = free_port()
    with pytest.raises(TransportError) as caught:
        client(f"tcp:server=127.0.0.1,port={port}")
    assert f"tcp: cannot connect to 127.0.0.1:{port}: " in str(caught.value)
    assert "refused" in str(caught.value).lower()
    with pytest.raises(TransportError, match=re.escape("bad..host:5")):
        client("tcp:server=bad..host,port=5")


def test_options_of_the_wrong_role_are_refused(io: IoThread) -> None:
    with pytest.raises(TransportError, match="server options"):
        io.run(open_listener(parse_client_options("tcp:server=h,port=1"), Echo()))
    with pytest.raises(TransportError, match="client options"):
        connect(parse_server_options("tcp:port=1"))


def test_an_exposed_server_is_refused_before_listening(io: IoThread) -> None:
    with pytest.raises(TransportError, match=re.escape("binding 0.0.0.0 without a password or TLS")):
        io.listen("tcp:port=0,bind=0.0.0.0", Echo())


def test_closing_a_listener_keeps_its_connections(io: IoThread) -> None:
    listener = io.listen("tcp:port=0", Echo())
    with client(f"tcp:server=127.0.0.1,port={listener.port}") as stream:
        round_trip(stream, b"before")
        io.run(listener.close())
        round_trip(stream, b"after")


def test_a_failing_handler_ends_only_its_connection(io: IoThread) -> None:
    listener = io.listen("tcp:port=0", Echo())
    with client(f"tcp:server=127.0.0.1,port={listener.port}") as failing:
        failing.send(b"!boom")
        assert failing.recv() == b""
    with client(f"tcp:server=127.0.0.1,port={listener.port}") as stream:
        round_trip(stream)
    io.run(listener.close())
    # The fixture checks that the loop's exception handler heard nothing.


def test_clicon_server_connects_to_a_waiting_client(io: IoThread) -> None:
    port = free_port()
    echo = Echo()
    thread, results = in_thread(lambda: client(f"tcp:clicon=127.0.0.1,port={port}"))
    listener = io.listen(f"tcp:port={port},clicon=127.0.0.1", echo)
    assert listener.description == f"tcp:Port={port},CliCon=127.0.0.1"
    assert listener.port == port
    stream = result_of(results)
    thread.join(WAIT)
    with stream:
        assert stream.label.startswith("tcp 127.0.0.1:")
        round_trip(stream)
        peer = echo.next_peer()
        assert peer["label"] == f"tcp 127.0.0.1:{port}"
        assert peer["nodelay"] != 0
        assert client_nodelay(stream) != 0
    # When that connection ends the server connects out again, to the next client.
    with client(f"tcp:clicon=localhost,port={port}") as again:
        round_trip(again)
    io.run(listener.close())
    with pytest.raises(TransportError, match=f"tcp: no server connected to port {port} within 1 s"):
        client(f"tcp:clicon=localhost,port={port}", timeout=1.0)


def test_clicon_server_started_before_its_client(io: IoThread) -> None:
    port = free_port()
    listener = io.listen(f"tcp:port={port},clicon=localhost", Echo())
    with client(f"tcp:clicon=localhost,port={port},bind=127.0.0.1") as stream:
        round_trip(stream)
    io.run(listener.close())


# ------------------------------------------------------------------ npipe


def test_npipe_round_trip_modes_and_removal(io: IoThread, pipes: str) -> None:
    echo = Echo()
    listener = io.listen("npipe:pipe=rabbit", echo)
    path = pipe_path("rabbit")
    assert listener.path == path
    assert listener.description == "npipe:Pipe=rabbit"
    assert os.path.dirname(path) == os.path.join(pipes, "lindbg")
    directory = os.lstat(os.path.dirname(path))
    assert stat.S_ISDIR(directory.st_mode) and stat.S_IMODE(directory.st_mode) == 0o700
    status = os.lstat(path)
    assert stat.S_ISSOCK(status.st_mode) and stat.S_IMODE(status.st_mode) == 0o600
    with client("npipe:server=localhost,pipe=rabbit") as stream:
        assert stream.label == "npipe rabbit"
        round_trip(stream)
        assert echo.next_peer()["label"] == "npipe rabbit"
    io.run(listener.close())
    assert not os.path.lexists(path)
    with pytest.raises(TransportError, match="npipe: no server on pipe 'rabbit'"):
        client("npipe:pipe=rabbit")


def test_npipe_stale_socket_is_replaced(io: IoThread, pipes: str) -> None:
    path = pipe_path("stale")
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(path)  # closed without unlinking: what a crashed server leaves
    with pytest.raises(TransportError, match="no server on pipe 'stale'"):
        client("npipe:pipe=stale")
    listener = io.listen("npipe:pipe=stale", Echo())
    with client("npipe:pipe=stale") as stream:
        round_trip(stream)
    io.run(listener.close())


def test_npipe_in_use_is_refused(io: IoThread, pipes: str) -> None:
    listener = io.listen("npipe:pipe=busy", Echo())
    with pytest.raises(TransportError, match="npipe: pipe 'busy' is in use by another server"):
        io.listen("npipe:pipe=busy", Echo())
    with client("npipe:pipe=busy") as stream:
        round_trip(stream)
    io.run(listener.close())


def test_npipe_path_that_is_not_a_socket_is_refused(io: IoThread, pipes: str) -> None:
    Path(pipe_path("plain")).write_text("not a socket")
    with pytest.raises(TransportError, match="not a socket"):
        io.listen("npipe:pipe=plain", Echo())


@pytest.mark.parametrize("damage", ["symlink", "mode", "file", "owner"])
def test_pipe_directory_that_others_could_reach_is_refused(pipes: str, damage: str) -> None:
    directory = os.path.join(pipes, "lindbg")
    if damage == "symlink":
        os.mkdir(os.path.join(pipes, "elsewhere"), 0o700)
        os.symlink(os.path.join(pipes, "elsewhere"), directory)
        expected = "symbolic link"
    elif damage == "mode":
        os.mkdir(directory)
        os.chmod(directory, 0o755)
        expected = "mode 0755"
    elif damage == "file":
        Path(directory).write_text("")
        expected = "not a directory"
    else:
        if os.getuid() != 0:
            pytest.skip("only root can give a directory away")
        os.mkdir(directory, 0o700)
        os.chown(directory, 54321, -1)
        expected = "belongs to uid 54321"
    for create in (True, False):
        with pytest.raises(TransportError, match=expected):
            pipe_directory(create=create)
    with pytest.raises(TransportError, match="someone else could reach the sockets"):
        client("npipe:pipe=p")


# ------------------------------------------------------------------ ssl and spipe


def test_ssl_round_trip_with_the_right_authority(io: IoThread, certs: Certificates) -> None:
    echo = Echo()
    listener = io.listen(f"ssl:port=0,cert={certs.cert},key={certs.key}", echo)
    assert listener.description == f"ssl:Port={listener.port},Cert={certs.cert},Key={certs.key}"
    for host in ("127.0.0.1", "localhost"):
        with client(f"ssl:server={host},port={listener.port},cafile={certs.ca}") as stream:
            assert stream.label.startswith("ssl ") and stream.label.endswith(f":{listener.port}")
            round_trip(stream)
            # No "!" in it: a chunk starting with one makes Echo fail on purpose.
            round_trip(stream, os.urandom(200_000).replace(b"!", b"?"))
            peer = echo.next_peer()
            assert peer["label"].startswith("ssl 127.0.0.1:")
            assert peer["nodelay"] != 0
            assert client_nodelay(stream) != 0
    io.run(listener.close())


def test_tls_stream_with_concurrent_senders_and_a_reader(io: IoThread, certs: Certificates) -> None:
    listener = io.listen(f"ssl:port=0,cert={certs.cert},key={certs.key}", Echo())
    rounds, size = 200, 1000
    with client(f"ssl:server=localhost,port={listener.port},cafile={certs.ca}") as stream:
        received = bytearray()
        done = threading.Event()

        def read_all() -> None:
            while len(received) < 2 * rounds * size:
                chunk = stream.recv()
                if not chunk:
                    break
                received.extend(chunk)
            done.set()

        def send_many(byte: bytes) -> None:
            for _ in range(rounds):
                stream.send(byte * size)

        threads = [threading.Thread(target=read_all, daemon=True)]
        threads += [threading.Thread(target=send_many, args=(byte,), daemon=True) for byte in (b"a", b"b")]
        for thread in threads:
            thread.start()
        assert done.wait(WAIT), f"only {len(received)} bytes came back"
        assert received.count(b"a") == received.count(b"b") == rounds * size
        for thread in threads:
            thread.join(WAIT)
    io.run(listener.close())


def test_ssl_without_the_authority_is_not_accepted(io: IoThread, certs: Certificates) -> None:
    listener = io.listen(f"ssl:port=0,cert={certs.cert},key={certs.key}", Echo())
    with pytest.raises(TransportError) as caught:
        client(f"ssl:server=localhost,port={listener.port}")
    assert str(caught.value).startswith("ssl: the server's certificate was not accepted: ")
    assert "\n" not in str(caught.value)
    # The listener shrugs the failed handshake off.
    with client(f"ssl:server=localhost,port={listener.port},cafile={certs.ca}") as stream:
        round_trip(stream)
    io.run(listener.close())


def test_ssl_certificate_for_another_host_is_not_accepted(io: IoThread, certs: Certificates) -> None:
    listener = io.listen(f"ssl:port=0,cert={certs.other_cert},key={certs.other_key}", Echo())
    with pytest.raises(TransportError, match="certificate was not accepted"):
        client(f"ssl:server=localhost,port={listener.port},cafile={certs.ca}")
    io.run(listener.close())


def test_ssl_tls13(io: IoThread, certs: Certificates) -> None:
    echo = Echo()
    listener = io.listen(f"ssl:port=0,cert={certs.cert},key={certs.key},proto=tls1.3", echo)
    assert listener.description.endswith(",Proto=tls1.3")
    with client(f"ssl:server=localhost,port={listener.port},cafile={certs.ca},proto=tls1.3") as stream:
        round_trip(stream)
        assert echo.next_peer()["tls"] == "TLSv1.3"
    io.run(listener.close())


def test_ssl_clicon_keeps_the_server_the_tls_server(io: IoThread, certs: Certificates) -> None:
    port = free_port()
    echo = Echo()
    listener = io.listen(f"ssl:port={port},clicon=localhost,cert={certs.cert},key={certs.key}", echo)
    with client(f"ssl:clicon=localhost,port={port},cafile={certs.ca}") as stream:
        round_trip(stream)
        assert "tls" in echo.next_peer()
    io.run(listener.close())


def test_ssl_bad_files_are_named(io: IoThread, certs: Certificates, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = [
        (f"cert={missing},key={certs.key}", f"ssl: cannot read cert={missing}: "),
        (f"cert={certs.cert},key={missing}", f"ssl: cannot read key={missing}: "),
        (f"cert={garbage},key={certs.key}", f"ssl: cert={garbage} holds no PEM certificate"),
        (f"cert={certs.cert},key={garbage}", f"ssl: key={garbage} holds no usable PEM private key"),
        (f"cert={certs.cert},key={certs.other_key}", f"ssl: key={certs.other_key} does not match"),
    ]
    for files, message in cases:
        with pytest.raises(TransportError) as caught:
            io.listen(f"ssl:port=0,{files}", Echo())
        assert str(caught.value).startswith(message)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(TransportError, match=f"ssl: cannot read cafile={missing}"):
        client(f"ssl:server=localhost,port=1,cafile={missing}")


def test_spipe_round_trip(io: IoThread, pipes: str, certs: Certificates) -> None:
    echo = Echo()
    listener = io.listen(f"spipe:pipe=tiger,cert={certs.cert},key={certs.key},password=w", echo)
    assert listener.description == f"spipe:Pipe=tiger,Cert={certs.cert},Key={certs.key},Password=*"
    with client(f"spipe:pipe=tiger,cafile={certs.ca}") as stream:
        assert stream.label == "spipe tiger"
        round_trip(stream)
        peer = echo.next_peer()
        assert peer["label"] == "spipe tiger" and "tls" in peer
    with pytest.raises(TransportError, match="spipe: the server's certificate was not accepted"):
        client("spipe:pipe=tiger")
    io.run(listener.close())
    assert not os.path.lexists(pipe_path("tiger"))


# ------------------------------------------------------------------ com


class PtyLine:
    """Two pty pairs and a relay copying master1 <-> master2: a null-modem cable."""

    def __init__(self) -> None:
        self.master1, self.slave1 = os.openpty()
        self.master2, self.slave2 = os.openpty()
        # The slaves stay open here too, so a peer closing its end never hangs a pty up.
        self.server_path = os.ttyname(self.slave1)
        self.client_path = os.ttyname(self.slave2)
        self._stop_read, self._stop_write = os.pipe()
        self._thread = threading.Thread(target=self._relay, name="pty-relay", daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        poller = select.poll()
        for fd in (self.master1, self.master2, self._stop_read):
            poller.register(fd, select.POLLIN)
        other = {self.master1: self.master2, self.master2: self.master1}
        while True:
            for fd, _ in poller.poll():
                if fd == self._stop_read:
                    return
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    return
                view = memoryview(data)
                while view:
                    view = view[os.write(other[fd], view) :]

    def close(self) -> None:
        os.write(self._stop_write, b"x")
        self._thread.join(WAIT)
        for fd in (self.master1, self.slave1, self.master2, self.slave2, self._stop_read, self._stop_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def opened_by_us(self, path: str) -> int:
        """How many descriptors of this process are open on ``path``."""
        count = 0
        for name in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/self/fd/{name}") == path:
                    count += 1
        return count


@pytest.fixture
def pty_line() -> Iterator[PtyLine]:
    line = PtyLine()
    yield line
    line.close()


def test_com_over_a_pty(io: IoThread, pty_line: PtyLine) -> None:
    echo = Echo()
    listener = io.listen(f"com:port={pty_line.server_path},baud=115200,channel=3", echo)
    assert listener.path == pty_line.server_path
    assert listener.port is None
    assert listener.description == f"com:Port={pty_line.server_path},Baud=115200,Channel=3"
    assert echo.next_peer()["label"] == f"com {pty_line.server_path}"
    with client(f"com:port={pty_line.client_path},baud=115200") as stream:
        assert stream.label == f"com {pty_line.client_path}"
        round_trip(stream)
        round_trip(stream, bytes(range(256)) * 8)
    # A line has no end of connection: the next client talks to the same handler call,
    # until it returns (here: fails); the line is then reused for a fresh call.
    with client(f"com:port={pty_line.client_path},baud=115200") as stream:
        round_trip(stream, b"same call")
        stream.send(b"!")
        assert echo.next_peer()["label"] == f"com {pty_line.server_path}"
        round_trip(stream, b"second")
    io.run(listener.close())
    assert io.settle(lambda: pty_line.opened_by_us(pty_line.server_path) == 1), "the device stayed open"


def test_com_missing_device_is_an_error(io: IoThread, tmp_path: Path) -> None:
    missing = str(tmp_path / "ttyNone")
    with pytest.raises(TransportError, match=f"com: cannot open port={missing}: "):
        io.listen(f"com:port={missing},baud=9600", Echo())
    with pytest.raises(TransportError, match=f"com: cannot open port={missing}: "):
        client(f"com:port={missing},baud=9600")


# ------------------------------------------------------------------ shutdown


@pytest.fixture(params=["tcp", "ssl", "npipe", "com"])
def quiet_stream(
    request: pytest.FixtureRequest, io: IoThread, pipes: str, certs: Certificates, pty_line: PtyLine
) -> Iterator[Stream]:
    """A connected stream whose server never writes."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, label: str) -> None:
        await reader.read()

    kind = request.param
    if kind == "tcp":
        listener = io.listen("tcp:port=0", silent)
        stream = client(f"tcp:server=127.0.0.1,port={listener.port}")
    elif kind == "ssl":
        listener = io.listen(f"ssl:port=0,cert={certs.cert},key={certs.key}", silent)
        stream = client(f"ssl:server=localhost,port={listener.port},cafile={certs.ca}")
    elif kind == "npipe":
        listener = io.listen("npipe:pipe=quiet", silent)
        stream = client("npipe:pipe=quiet")
    else:
        listener = io.listen(f"com:port={pty_line.server_path},baud=9600", silent)
        stream = client(f"com:port={pty_line.client_path},baud=9600")
    yield stream
    stream.close()
    io.run(listener.close())


def test_shutdown_wakes_a_blocked_recv(quiet_stream: Stream) -> None:
    entered = threading.Event()
    finished = threading.Event()
    received: list[bytes] = []

    def reader() -> None:
        entered.set()
        received.append(quiet_stream.recv())
        finished.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert entered.wait(WAIT)
    # Whether the reader is already blocked or about to block, shutdown must end its recv.
    assert not finished.wait(0.05)
    quiet_stream.shutdown()
    assert finished.wait(WAIT), "recv did not wake up"
    assert received == [b""]
    quiet_stream.shutdown()  # twice is fine
    with pytest.raises(ConnectionError):
        quiet_stream.send(b"too late")
    quiet_stream.close()
    quiet_stream.close()
    thread.join(WAIT)
