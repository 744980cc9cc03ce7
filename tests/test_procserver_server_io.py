"""lindbg.procserver.server's own I/O, on raw loopback sockets against a server in this
process. On a plain socket the tracer thread reads and writes the connection itself
(waiting on the socket while the target is stopped, with a one-shot watch of it while
the target runs); these check what that must keep: ack mode is stop-and-wait, a
waiting client's early packets are answered once its turn comes, ^C stops a running
target and a client that goes while it runs leaves it stopped, bad frames get their
``-``, and ``stop`` ends the server whether its client is idle, its target runs or its
client has stopped reading. Nothing sleeps to synchronise."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from conftest import WAIT, Programs
from procserver_support import Raw

from lindbg.procserver.server import ProcessServer
from lindbg.protocols.rsp import frame

TARGET_XML = b"qXfer:features:read:target.xml:0,3fff0"


@pytest.fixture
def server() -> Iterator[ProcessServer]:
    running = ProcessServer("tcp:port=0")
    running.start()
    try:
        yield running
    finally:
        running.stop()
        assert running.wait(WAIT)


def vrun(*argv: str) -> bytes:
    return b"vRun;" + b";".join(arg.encode().hex().encode() for arg in argv)


def test_ack_mode_sends_a_reply_only_after_the_ack_of_the_one_before(server: ProcessServer) -> None:
    raw = Raw(server.port)
    try:
        # two requests in one write: both are acked, the second's reply waits
        raw.sock.sendall(b"+" + frame(b"?") + frame(b"vMustReplyEmpty"))
        raw.read_exactly(b"++" + frame(b"W00"))
        # a nak gets the first reply again: the second has not gone out meanwhile
        raw.sock.sendall(b"-")
        raw.read_exactly(frame(b"W00"))
        raw.sock.sendall(b"+")
        raw.read_exactly(frame(b""))
        raw.sock.sendall(b"+")
        # a damaged frame is naked, its good copy acked and answered
        raw.sock.sendall(b"$?#00" + frame(b"?"))
        raw.read_exactly(b"-+" + frame(b"W00"))
        raw.sock.sendall(b"+")
    finally:
        raw.close()


def test_a_waiting_clients_early_packets_are_answered_when_its_turn_comes(server: ProcessServer) -> None:
    first = Raw(server.port)
    second = Raw(server.port)
    third = Raw(server.port)
    try:
        first.no_ack()
        assert first.ask(b"?") == b"W00"
        # sent while the first is served: read (or left in the socket) until the turn
        second.sock.sendall(second.codec.send_packet(b"?"))
        third.sock.sendall(b"+" + frame(b"QStartNoAckMode"))
        assert first.ask(b"vMustReplyEmpty") == b""
        first.close()
        assert second.answer() == b"W00"
        second.close()
        third.read_exactly(b"+" + frame(b"OK"))
        third.sock.sendall(b"+" + frame(b"?"))  # the ack of the OK, then no acks
        third.read_exactly(frame(b"W00"))
    finally:
        first.close()
        second.close()
        third.close()


def test_interrupt_and_a_client_gone_while_the_target_runs(server: ProcessServer, programs: Programs) -> None:
    raw = Raw(server.port)
    try:
        raw.no_ack()
        assert raw.ask(b"qSupported:multiprocess+;swbreak+").startswith(b"PacketSize=")
        assert raw.ask(vrun(programs.path("loop"), "30")).startswith(b"T05")
        raw.sock.sendall(raw.codec.send_packet(b"vCont;c"))
        raw.sock.sendall(b"\x03")
        assert raw.answer().startswith(b"T02")  # SIGINT
        raw.sock.sendall(raw.codec.send_packet(b"vCont;c"))
    finally:
        raw.close()  # gone while it runs
    again = Raw(server.port)
    try:
        stop = again.ask(b"?")
        assert stop.startswith(b"T"), stop  # stopped for the next client
        assert again.ask(b"vMustReplyEmpty") == b""
    finally:
        again.close()


def test_stop_ends_the_server_with_its_client_idle() -> None:
    server = ProcessServer("tcp:port=0")
    server.start()
    raw = Raw(server.port)
    try:
        raw.no_ack()
        assert raw.ask(b"?") == b"W00"
        server.stop()
        assert server.wait(WAIT)
        assert raw.at_end()
    finally:
        raw.close()
        server.stop()


def test_stop_ends_the_server_while_the_target_runs(programs: Programs) -> None:
    server = ProcessServer("tcp:port=0")
    server.start()
    raw = Raw(server.port)
    try:
        raw.no_ack()
        stop = raw.ask(vrun(programs.path("loop"), "30"))
        assert stop.startswith(b"T05thread:")
        pid = int(stop.split(b"thread:")[1].split(b";")[0].lstrip(b"p").split(b".")[0], 16)
        raw.sock.sendall(raw.codec.send_packet(b"vCont;c"))
        assert raw.ask(b"vMustReplyEmpty") == b""  # served while it runs: the vCont is in
        server.stop()
        assert server.wait(WAIT)
        assert raw.at_end()
        with pytest.raises(ProcessLookupError):  # launched here: killed and reaped
            os.kill(pid, 0)
    finally:
        raw.close()
        server.stop()


def test_a_client_that_stops_reading_cannot_keep_the_server_from_stopping() -> None:
    server = ProcessServer("tcp:port=0")
    server.start()
    raw = Raw(server.port)
    try:
        raw.no_ack()
        reply = raw.ask(TARGET_XML)
        assert reply.startswith(b"l<?xml")
        # requests, never read, until the server stops reading them: its writes wait
        request = raw.codec.send_packet(TARGET_XML)
        flood = request * 256
        raw.sock.setblocking(False)
        sent, full = 0, False
        while not full and sent < 64 * 1024 * 1024:
            try:
                sent += raw.sock.send(flood)
            except BlockingIOError:
                full = True
        assert full, "the server kept reading while nobody read its replies"
        server.stop()
        assert server.wait(WAIT)
    finally:
        raw.close()
        server.stop()
