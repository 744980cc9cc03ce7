"""lindbg.procserver.link: the smart client's RSP link, against real peers only.

A ``lindbgsrv`` subprocess and, where installed, a real ``gdbserver --multi``:
negotiation, a breakpoint hit parsed from the stop reply, memory in pieces and
up to an unreadable page, registers, host I/O, waits that end by deadline, by
wake and by interrupt, a server killed mid-wait, ``monitor exit``. A proxy in
the middle damages and drops packets in ack mode to make the link retransmit.
Everything is loopback; nothing sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import re
import select
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import WAIT, Programs, tls_files
from procserver_support import Gdbserver, Lindbgsrv

from lindbg.arch.x86_64_gdb import RegisterLayout
from lindbg.errors import InvalidOperationError, MemoryAccessError
from lindbg.procserver.link import (
    BadReplyError,
    LinkLostError,
    RemoteFileNotFoundError,
    RspLink,
    StopReply,
    UnsupportedPacketError,
    format_thread_id,
    parse_stop,
    parse_thread_id,
)

RIP = 16
RAX = 0
KIB = 1024

needs_gdbserver = pytest.mark.skipif(shutil.which("gdbserver") is None, reason="needs gdbserver")


def hexarg(text: str) -> bytes:
    return text.encode().hex().encode()


def vrun(*argv: str) -> bytes:
    return b"vRun;" + b";".join(hexarg(arg) for arg in argv)


@pytest.fixture
def lindbgsrv() -> Iterator[Lindbgsrv]:
    server = Lindbgsrv()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def gdbserver() -> Iterator[Gdbserver]:
    server = Gdbserver()
    try:
        yield server
    finally:
        server.close()


# ---------------------------------------------------------------- helpers


def maps(link: RspLink, pid: int) -> list[tuple[int, int, str, int, str]]:
    """(start, end, perms, offset, path) of each mapping of ``pid``, read through the
    server's host I/O."""
    text = link.file_read(f"/proc/{pid}/maps").decode()
    result = []
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        start, end = (int(part, 16) for part in fields[0].split("-"))
        result.append((start, end, fields[1], int(fields[2], 16), fields[5] if len(fields) > 5 else ""))
    return result


def last_readable_run(regions: list[tuple[int, int, str, int, str]]) -> tuple[int, int]:
    """The longest stretch of readable mappings, back to back, that unmapped or
    unreadable memory follows: (start, end)."""
    runs: list[tuple[int, int]] = []
    for start, end, perms, _, path in regions:
        if path in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
            if runs and runs[-1][1] == start:
                runs.pop()  # what follows may or may not read: no clear end
            continue
        if not perms.startswith("r"):
            continue
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return max(runs, key=lambda run: run[1] - run[0])


def pid_of(stop: StopReply) -> int:
    assert stop.pid is not None and stop.pid > 0, stop
    return stop.pid


def run_to_breakpoint(link: RspLink, programs: Programs) -> tuple[int, StopReply]:
    """Start checksum, stop it at target_fn; (pid, the breakpoint's stop)."""
    target_fn = programs.symbol("checksum", "target_fn")
    started = parse_stop(link.request(vrun(programs.path("checksum"))))
    assert (started.kind, started.signal) == ("signal", 5)
    pid = pid_of(started)
    assert started.tid == pid
    assert link.request(b"Z0,%x,1" % target_fn) == b"OK"
    link.resume(b"vCont;c")
    payload = link.wait_stop(time.monotonic() + WAIT)
    assert payload is not None
    stop = parse_stop(payload)
    assert (stop.kind, stop.signal, stop.reason) == ("signal", 5, "swbreak"), payload
    assert (stop.pid, stop.tid) == (pid, pid)
    assert stop.registers[RIP] == target_fn.to_bytes(8, "little")
    return pid, stop


def check_memory(link: RspLink, programs: Programs, pid: int, stop: StopReply) -> None:
    target_fn = programs.symbol("checksum", "target_fn")
    # the breakpoint's int3 does not show
    code = link.read_memory(target_fn, 16)
    assert code == programs.code_bytes("checksum", target_fn, 16)
    assert code[0] != 0xCC

    regions = maps(link, pid)
    # 200 KiB of a file mapping, in pieces, as the file holds it
    start, _, _, offset, path = next(
        region
        for region in regions
        if region[2].startswith("r-x") and region[1] - region[0] >= 200 * KIB and region[4].startswith("/")
    )
    data = link.read_memory(start, 200 * KIB)
    with open(path, "rb") as mapped:
        mapped.seek(offset)
        assert data == mapped.read(200 * KIB)
    # up to the end of the stack and no further
    stack_end = next(region[1] for region in regions if region[4] == "[stack]")
    assert all(not region[0] <= stack_end < region[1] for region in regions)
    tail = link.read_memory(stack_end - 100, 200)
    assert len(tail) == 100
    with pytest.raises(MemoryAccessError) as raised:
        link.read_memory(stack_end, 16)
    assert raised.value.address == stack_end

    # a read of many pieces (several in flight with no acks) that runs off the end of
    # readable memory: all that is readable, as small reads see it
    start, end = last_readable_run(regions)
    size = min(640 * KIB, end - start)
    data = link.read_memory(end - size, size + 64 * KIB)
    assert len(data) == size
    assert data == b"".join(link.read_memory(page, 4 * KIB) for page in range(end - size, end, 4 * KIB))

    # a write, read back, undone
    sink = programs.symbol("checksum", "sink")
    old = link.read_memory(sink, 4)
    link.write_memory(sink, b"\x12\x34\x56\x78")
    assert link.read_memory(sink, 4) == b"\x12\x34\x56\x78"
    link.write_memory(sink, old)
    assert link.read_memory(sink, 4) == old


def check_registers(link: RspLink, stop: StopReply) -> None:
    layout = link.layout
    values = link.read_registers()
    assert len(values) == len(layout)
    assert values[[reg.name for reg in layout].index("rip")] == stop.registers[RIP]
    assert link.read_register(RIP) == stop.registers[RIP]
    rax = link.read_register(RAX)
    assert rax is not None
    link.write_register(RAX, (0x1122334455667788).to_bytes(8, "little"))
    assert link.read_register(RAX) == (0x1122334455667788).to_bytes(8, "little")
    link.write_register(RAX, rax)
    assert link.read_registers() == values


def interrupt_a_running_loop(link: RspLink, programs: Programs) -> int:
    """Start ``loop`` and run it: a deadline, a wake and an interrupt end the waits."""
    pid = pid_of(parse_stop(link.request(vrun(programs.path("loop"), "30"))))
    link.resume(b"vCont;c")
    with pytest.raises(InvalidOperationError):
        link.request(b"g")
    begun = time.monotonic()
    assert link.wait_stop(begun + 0.2) is None
    assert time.monotonic() - begun < WAIT
    # a wake from another thread, before or during the wait: no wake is lost
    waker = threading.Thread(target=link.wake)
    waker.start()
    assert link.wait_stop(time.monotonic() + WAIT) is None
    waker.join(WAIT)
    assert link.running
    stopper = threading.Thread(target=link.interrupt)
    stopper.start()
    payload = link.wait_stop(time.monotonic() + WAIT)
    stopper.join(WAIT)
    assert payload is not None
    stop = parse_stop(payload)
    assert (stop.kind, stop.signal, stop.pid) == ("signal", 2, pid), payload
    assert not link.running
    return pid


# ---------------------------------------------------------------- lindbgsrv


def test_lindbgsrv_negotiation_breakpoint_memory_registers(lindbgsrv: Lindbgsrv, programs: Programs) -> None:
    with RspLink.connect(lindbgsrv.address, timeout=WAIT) as link:
        size = link.features["PacketSize"]
        assert isinstance(size, str) and int(size, 16) >= 0x40000
        assert link.packet_size >= 0x40000
        assert link.features["multiprocess"] is True
        assert link.features["swbreak"] is True
        assert link.no_ack
        assert link.initial_stop == b"W00"
        assert link.layout == RegisterLayout.default()
        with pytest.raises(UnsupportedPacketError):
            link.read_object("btrace")

        pid, stop = run_to_breakpoint(link, programs)
        check_memory(link, programs, pid, stop)
        check_registers(link, stop)
        assert "exit" in link.monitor("help")
        assert link.request(b"vKill;%x" % pid) == b"OK"
        assert link.monitor("exit") == ""
        assert lindbgsrv.exited() == 0
        with pytest.raises(LinkLostError):
            link.request(b"?")
    assert link.closed


@pytest.fixture(params=["tcp", "ssl"])
def any_lindbgsrv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lindbgsrv]:
    """lindbgsrv over tcp (the link polls the socket) and over TLS (it has a reader thread)."""
    if request.param == "tcp":
        server = Lindbgsrv()
    else:
        cert, key, ca = tls_files(tmp_path)
        server = Lindbgsrv(f"ssl:port=0,cert={cert},key={key}", f"ssl:server=localhost,cafile={ca}")
    try:
        yield server
    finally:
        server.close()


def test_lindbgsrv_waits_end_by_deadline_wake_interrupt_and_loss(
    any_lindbgsrv: Lindbgsrv, programs: Programs
) -> None:
    lindbgsrv = any_lindbgsrv
    link = RspLink.connect(lindbgsrv.address, timeout=WAIT)
    try:
        interrupt_a_running_loop(link, programs)
        # the server dies while the target runs: the wait ends at once
        link.resume(b"vCont;c")
        killed_at: list[float] = []

        def kill() -> None:
            killed_at.append(time.monotonic())
            lindbgsrv.process.kill()

        killer = threading.Thread(target=kill)
        killer.start()
        with pytest.raises(LinkLostError) as raised:
            link.wait_stop(time.monotonic() + WAIT)
        assert time.monotonic() - killed_at[0] < 1.0
        killer.join(WAIT)
        assert "\n" not in str(raised.value)
        assert link.closed
        # dead for good: every call fails at once, with the same message
        began = time.monotonic()
        with pytest.raises(LinkLostError) as again:
            link.request(b"?")
        assert str(again.value) == str(raised.value)
        with pytest.raises(LinkLostError):
            link.interrupt()
        link.wake()  # harmless
        assert time.monotonic() - began < 1.0
    finally:
        link.close()
    link.close()  # idempotent


def test_a_request_fails_when_the_server_dies(lindbgsrv: Lindbgsrv) -> None:
    link = RspLink.connect(lindbgsrv.address, timeout=WAIT)
    try:
        lindbgsrv.process.kill()
        lindbgsrv.process.wait(WAIT)
        began = time.monotonic()
        with pytest.raises(LinkLostError, match="connection is lost"):
            link.request(b"?")
        assert time.monotonic() - began < 1.0
    finally:
        link.close()


def test_close_from_another_thread_ends_a_wait(lindbgsrv: Lindbgsrv, programs: Programs) -> None:
    link = RspLink.connect(lindbgsrv.address, timeout=WAIT)
    try:
        link.request(vrun(programs.path("loop"), "30"))
        link.resume(b"vCont;c")
        closer = threading.Thread(target=link.close)
        closer.start()
        with pytest.raises(LinkLostError, match="closed"):
            link.wait_stop(time.monotonic() + WAIT)
        closer.join(WAIT)
        assert link.closed
    finally:
        link.close()
    # the server stopped the program when we went: a new client finds it there
    with RspLink.connect(lindbgsrv.address, timeout=WAIT) as again:
        assert parse_stop(again.initial_stop).kind == "signal"
        assert again.monitor("exit") == ""
    assert lindbgsrv.exited() == 0


# ---------------------------------------------------------------- gdbserver


@needs_gdbserver
def test_gdbserver_session(gdbserver: Gdbserver, programs: Programs) -> None:
    with RspLink.connect(gdbserver.address, timeout=WAIT) as link:
        assert link.features["multiprocess"] is True
        assert link.features["qXfer:features:read"] is True
        assert link.packet_size == int(str(link.features["PacketSize"]), 16)
        assert link.no_ack
        assert link.initial_stop == b"W00"  # no process: the description comes later

        pid, stop = run_to_breakpoint(link, programs)
        layout = link.layout
        assert layout.architecture == "i386:x86-64"
        assert len(link.request(b"g")) == 2 * layout.g_size
        with open("/proc/cpuinfo") as cpuinfo:
            flags = cpuinfo.read()
        if re.search(r"\bavx512f\b", flags):
            assert "zmm31h" in layout and "k7" in layout
            assert layout.g_size == 2416
        elif re.search(r"\bavx\b", flags):
            assert "ymm15h" in layout
        assert layout != RegisterLayout.default()

        # gdbserver 13 has no x (empty reply): memory goes through m
        assert link.request(b"x%x,0" % programs.symbol("checksum", "target_fn")) == b""
        check_memory(link, programs, pid, stop)
        check_registers(link, stop)  # p and P are empty replies: g and G instead
        assert b"checksum" in link.file_read(f"/proc/{pid}/maps")
        with pytest.raises(RemoteFileNotFoundError) as missing:
            link.file_read("/nonexistent/lindbg-test")
        assert missing.value.errno == 2
        assert link.read_object("exec-file", f"{pid:x}") == programs.path("checksum").encode()
        assert link.request(b"vKill;%x" % pid) == b"OK"

        interrupt_a_running_loop(link, programs)
        assert "exit" in link.monitor("help")
        assert link.console_output  # help came as O packets
        assert link.monitor("exit") == ""
        assert gdbserver.exited() == 0


# ---------------------------------------------------------------- ack mode through a proxy


class Direction:
    """One way through the proxy: follows the framing, counts naks, and damages
    or drops the next packet when armed."""

    def __init__(self) -> None:
        self.mode: str | None = None  # "corrupt" | "drop"
        self.done = threading.Event()
        self.naks = 0
        self._in_frame = False
        self._checksum_left = 0
        self._dropping = False
        self._lock = threading.Lock()

    def arm(self, mode: str) -> None:
        with self._lock:
            self.done.clear()
            self.mode = mode

    def __call__(self, data: bytes) -> bytes:
        out = bytearray()
        with self._lock:
            for byte in data:
                dropped = self._dropping
                if self._checksum_left:
                    self._checksum_left -= 1
                    if not self._checksum_left:
                        self._dropping = False
                        self._in_frame = False
                elif self._in_frame:
                    if byte == ord("#"):
                        self._checksum_left = 2
                    elif self.mode == "corrupt":
                        byte ^= 1  # a letter or digit stays one: only the checksum tells
                        self.mode = None
                        self.done.set()
                elif byte == ord("$"):
                    self._in_frame = True
                    if self.mode == "drop":
                        self._dropping = dropped = True
                        self.mode = None
                        self.done.set()
                elif byte == ord("-"):
                    self.naks += 1
                if not dropped:
                    out.append(byte)
        return bytes(out)


class Proxy:
    """Forwards one connection from 127.0.0.1:``port`` to ``upstream``, through
    ``to_server`` and ``to_client``."""

    def __init__(self, upstream: int) -> None:
        self.to_server = Direction()
        self.to_client = Direction()
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop_read, self._stop_write = socket.socketpair()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"tcp:server=127.0.0.1,port={self.port}"

    def _run(self) -> None:
        ready, _, _ = select.select([self._listener, self._stop_read], [], [])
        if self._stop_read in ready:
            return
        client, _ = self._listener.accept()
        server = socket.create_connection(("127.0.0.1", self._upstream), timeout=WAIT)
        server.settimeout(None)
        routes: dict[socket.socket, tuple[socket.socket, Callable[[bytes], bytes]]] = {
            client: (server, self.to_server),
            server: (client, self.to_client),
        }
        with client, server:
            while True:
                ready, _, _ = select.select([client, server, self._stop_read], [], [])
                if self._stop_read in ready:
                    return
                for sock in ready:
                    other, tamper = routes[sock]
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    with contextlib.suppress(OSError):
                        other.sendall(tamper(data))

    def close(self) -> None:
        self._stop_write.send(b"x")
        self._thread.join(WAIT)
        self._listener.close()
        self._stop_read.close()
        self._stop_write.close()


def test_ack_mode_recovers_damaged_and_lost_packets(lindbgsrv: Lindbgsrv) -> None:
    proxy = Proxy(lindbgsrv.port)
    try:
        with RspLink.connect(proxy.address, timeout=WAIT, no_ack=False) as link:
            assert not link.no_ack
            assert link.layout == RegisterLayout.default()
            assert proxy.to_server.naks == proxy.to_client.naks == 0

            # a reply damaged on the way: we nak it, the server sends it again
            proxy.to_client.arm("corrupt")
            assert link.refresh_layout() == RegisterLayout.default()
            assert proxy.to_client.done.is_set()
            assert proxy.to_server.naks == 1

            # our packet damaged on the way: the server naks it, we send it again
            proxy.to_server.arm("corrupt")
            assert link.read_object("features", "target.xml").startswith(b"<?xml")
            assert proxy.to_server.done.is_set()
            assert proxy.to_client.naks == 1

            # our packet lost: no '+' comes, we send it again after ack_timeout
            link.ack_timeout = 0.2
            proxy.to_server.arm("drop")
            began = time.monotonic()
            assert link.request(b"?") == b"W00"
            assert proxy.to_server.done.is_set()
            assert 0.2 <= time.monotonic() - began < WAIT

            assert link.monitor("exit") == ""
        assert lindbgsrv.exited() == 0
    finally:
        proxy.close()


def test_connecting_to_nothing_is_a_one_line_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    with pytest.raises(Exception) as raised:
        RspLink.connect(f"tcp:server=127.0.0.1,port={port}", timeout=WAIT)
    assert "\n" not in str(raised.value) and str(port) in str(raised.value)


def test_a_peer_that_is_no_rsp_server_fails_the_connect_cleanly() -> None:
    """Something that accepts and hangs up at once."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def hang_up() -> None:
            peer, _ = listener.accept()
            peer.close()

        closer = threading.Thread(target=hang_up)
        closer.start()
        with pytest.raises(LinkLostError) as raised:
            RspLink.connect(f"tcp:server=127.0.0.1,port={port}", timeout=WAIT)
        closer.join(WAIT)
    assert "connection is lost" in str(raised.value) and "\n" not in str(raised.value)


# ---------------------------------------------------------------- parse_stop


def test_parse_stop_replies() -> None:
    gdbserver_stop = parse_stop(
        b"T05swbreak:;06:f0e6ffffff7f0000;07:b8e6ffffff7f0000;10:8812400000000000;thread:p2982.2982;core:0;"
    )
    assert gdbserver_stop == StopReply(
        "signal",
        signal=5,
        pid=0x2982,
        tid=0x2982,
        registers={
            6: bytes.fromhex("f0e6ffffff7f0000"),
            7: bytes.fromhex("b8e6ffffff7f0000"),
            16: bytes.fromhex("8812400000000000"),
        },
        reason="swbreak",
    )
    watch = parse_stop(b"T05thread:1f;watch:404028;10:xxxxxxxxxxxxxxxx;")
    assert (watch.pid, watch.tid, watch.reason, watch.reason_value) == (None, 0x1F, "watch", b"404028")
    assert watch.registers == {}
    fork = parse_stop(b"T05fork:p10.10;thread:p0f.0f;")
    assert (fork.reason, fork.reason_value, fork.pid) == ("fork", b"p10.10", 0xF)
    assert parse_stop(b"T02thread:p-1.-1;").tid == -1
    assert parse_stop(b"S0b") == StopReply("signal", signal=11)
    assert parse_stop(b"W07;process:2b96") == StopReply("exited", pid=0x2B96, exit_code=7)
    assert parse_stop(b"W00") == StopReply("exited", exit_code=0)
    assert parse_stop(b"X09;process:10") == StopReply("killed", signal=9, pid=0x10)
    assert parse_stop(b"N") == StopReply("no-resumed")
    assert parse_stop(b"O6869") == StopReply("output", reason_value=b"hi")
    assert parse_stop(b"w00;p12.13") == StopReply("thread-exited", pid=0x12, tid=0x13, exit_code=0)
    for bad in (b"", b"E01", b"OK", b"T5", b"Tzz", b"T05thread", b"T05thread:q", b"W", b"X09;process:zz"):
        with pytest.raises(BadReplyError):
            parse_stop(bad)
    assert parse_thread_id(b"p1a.1b") == (0x1A, 0x1B)
    assert parse_thread_id(b"1b") == (None, 0x1B)
    assert format_thread_id(0x1A, 0x1B) == b"p1a.1b"
    assert format_thread_id(None, -1) == b"-1"
    assert format_thread_id(-1, -1) == b"p-1.-1"
