"""A process server with a password: the login exchange by itself, then a real
``lindbgsrv password=...`` against the smart client, a bare socket and gdb."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from conftest import WAIT, Programs
from procserver_support import Lindbgsrv, Raw

from lindbg.constants import EndFlags, Status
from lindbg.engine.client import DebugClient
from lindbg.errors import LindbgError
from lindbg.procserver.auth import (
    AUTH_FEATURE,
    LOGIN_FIRST,
    WRONG_PASSWORD,
    ServerLogin,
    login_request,
    welcome_is_genuine,
)
from lindbg.procserver.link import NegotiationError, RspLink
from lindbg.procserver.server import ProcessServer
from lindbg.protocols.rsp import hex_encode

SECRET = "open sesame"


def hello_nonce(login: ServerLogin) -> str:
    name, _, value = login.feature().lstrip(b";").decode().partition("=")
    assert name == AUTH_FEATURE
    return value


# ---------------------------------------------------------------- the exchange


def test_a_right_proof_logs_in_and_the_server_proves_itself() -> None:
    login = ServerLogin(SECRET)
    snonce = hello_nonce(login)
    packet, cnonce = login_request(SECRET, snonce)
    assert SECRET.encode() not in packet and hex_encode(SECRET.encode()) not in packet
    args = packet.partition(b":")[2]
    welcome = login.answer(args)
    assert login.done and not login.refused
    assert welcome_is_genuine(SECRET, snonce, cnonce, welcome)
    # a server that knows another password cannot fake the welcome
    impostor = ServerLogin("something else")
    assert not welcome_is_genuine(SECRET, snonce, cnonce, impostor.answer(args))


@pytest.mark.parametrize("args", [b"", b",", b"zz,zz", b"00,", b"00112233,deadbeef"])
def test_a_wrong_or_malformed_proof_is_refused(args: bytes) -> None:
    login = ServerLogin(SECRET)
    assert login.answer(args) == WRONG_PASSWORD
    assert login.refused and not login.done


def test_a_proof_for_another_password_or_another_nonce_is_refused() -> None:
    login = ServerLogin(SECRET)
    packet, _ = login_request("guess", hello_nonce(login))
    assert login.answer(packet.partition(b":")[2]) == WRONG_PASSWORD
    # a proof made for another connection's nonce is no good on this one
    replayed, _ = login_request(SECRET, hello_nonce(ServerLogin(SECRET)))
    other = ServerLogin(SECRET)
    assert other.answer(replayed.partition(b":")[2]) == WRONG_PASSWORD


# ---------------------------------------------------------------- a real server


@pytest.fixture
def server() -> Iterator[Lindbgsrv]:
    peer = Lindbgsrv(f"tcp:port=0,password={SECRET}", f"tcp:server=127.0.0.1,password={SECRET}")
    yield peer
    peer.close()


def test_the_smart_client_logs_in_and_debugs(server: Lindbgsrv, programs: Programs) -> None:
    client = DebugClient()
    handle = client.connect_process_server(server.address)
    client.create_process([programs.path("checksum")], server=handle)
    client.add_breakpoint("checksum!target_fn")
    client.set_execution_status(Status.GO)
    assert client.wait_for_event(WAIT)
    assert client.get_execution_status() == Status.BREAK
    assert client.resolve("checksum!target_fn") == client.get_register("rip")
    client.end_session(EndFlags.ACTIVE_TERMINATE)
    client.end_process_server(handle)
    assert server.exited() == 0
    assert server.process.stdout is not None
    assert SECRET not in server.process.stdout.read()


def test_no_password_or_a_wrong_one_is_refused_and_the_server_serves_on(server: Lindbgsrv) -> None:
    with pytest.raises(NegotiationError, match="has a password"):
        RspLink.connect(f"tcp:server=127.0.0.1,port={server.port}", timeout=WAIT)
    with pytest.raises(NegotiationError, match="wrong password") as raised:
        RspLink.connect(f"tcp:server=127.0.0.1,port={server.port},password=guess", timeout=WAIT)
    assert "guess" not in str(raised.value) and SECRET not in str(raised.value)
    with RspLink.connect(server.address, timeout=WAIT) as link:
        assert link.request(b"?") == b"W00"  # no process yet: logged in


def test_a_client_that_asks_no_password_of_a_server_without_one_is_told(programs: Programs) -> None:
    peer = Lindbgsrv()
    try:
        with pytest.raises(NegotiationError, match="asks no password"):
            RspLink.connect(f"tcp:server=127.0.0.1,port={peer.port},password={SECRET}", timeout=WAIT)
    finally:
        peer.close()


def test_an_unauthenticated_peer_gets_nothing(server: Lindbgsrv, programs: Programs) -> None:
    raw = Raw(server.port)
    try:
        hello = raw.ask(b"qSupported:multiprocess+")
        assert f";{AUTH_FEATURE}=".encode() in hello
        program = hex_encode(programs.path("checksum").encode())
        for packet in (b"?", b"g", b"m400000,10", b"vRun;" + program, b"vAttach;1", b"QStartNoAckMode"):
            assert raw.ask(packet) == LOGIN_FIRST, packet
        assert raw.ask(b"qfThreadInfo") == LOGIN_FIRST
        # a wrong proof: refused, and the connection ends
        assert raw.ask(b"QLindbgAuth:00,00") == WRONG_PASSWORD
        assert raw.at_end()
    finally:
        raw.close()
    # nothing was started: the server has no child
    children = subprocess.run(
        ["ps", "--ppid", str(server.process.pid), "-o", "pid="], capture_output=True, text=True, check=False
    )
    assert children.stdout.strip() == ""


def test_gdb_is_told_the_server_wants_a_login(server: Lindbgsrv, programs: Programs) -> None:
    done = subprocess.run(
        [
            "gdb",
            "-nx",
            "-batch",
            "-ex",
            f"target extended-remote 127.0.0.1:{server.port}",
            "-ex",
            "info threads",
        ],
        capture_output=True,
        text=True,
        timeout=WAIT * 3,
        check=False,
    )
    assert "password" in done.stdout + done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_plain_rsp_is_refused_beyond_loopback() -> None:
    server = ProcessServer("tcp:port=0,bind=0.0.0.0")
    try:
        with pytest.raises(LindbgError, match="without a password or TLS"):
            server.start(WAIT)
    finally:
        if not server.ended:
            server.stop()
            assert server.wait(WAIT)
