"""Process servers as the tests run them: ``lindbgsrv`` and a real ``gdbserver
--multi``, each a subprocess on a loopback port that ``close`` leaves nothing of."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading

from conftest import WAIT

from lindbg.protocols.rsp import Packet, Role, RspConnection

LINDBGSRV = [sys.executable, "-m", "lindbg.cli.lindbgsrv_main"]


class Peer:
    """A server subprocess on a loopback port; ``close`` leaves nothing running."""

    process: subprocess.Popen[str]
    port: int

    @property
    def address(self) -> str:
        return f"tcp:server=127.0.0.1,port={self.port}"

    def exited(self, timeout: float = WAIT) -> int:
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(WAIT)


class Lindbgsrv(Peer):
    def __init__(
        self, options: str = "tcp:port=0", client: str = "tcp:server=127.0.0.1", *extra: str
    ) -> None:
        self._client = client
        self.process = subprocess.Popen(
            [*LINDBGSRV, "-t", options, *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.search(r":Port=(\d+)", line)
        if match is None:
            self.close()
            raise AssertionError(f"lindbgsrv said {line!r}")
        self.port = int(match.group(1))
        started = re.search(r"process (\d+) started", line)
        #: The pid of the program given with ``-c``, once started.
        self.first_pid = int(started.group(1)) if started else None

    @property
    def address(self) -> str:
        return f"{self._client},port={self.port}"


class Gdbserver(Peer):
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            ["gdbserver", "--multi", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        said = []
        for line in self.process.stderr:
            said.append(line)
            match = re.search(r"Listening on port (\d+)", line)
            if match is not None:
                self.port = int(match.group(1))
                break
        else:
            self.close()
            raise AssertionError(f"gdbserver said {said!r}")
        # Drained on, so that its messages never fill the pipe.
        threading.Thread(target=self.process.stderr.read, daemon=True).start()


class Raw:
    """A client on a bare socket: bytes exactly as sent, or packets through a codec."""

    def __init__(self, port: int | None) -> None:
        assert port is not None
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.codec = RspConnection(Role.CLIENT)
        self.received = b""
        self.pending: list[bytes] = []

    def read_exactly(self, expected: bytes) -> None:
        """The next bytes on the wire are ``expected``, nothing else in between."""
        while len(self.received) < len(expected):
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.received += data
        got, self.received = self.received[: len(expected)], self.received[len(expected) :]
        assert got == expected

    def ask(self, payload: bytes) -> bytes:
        self.sock.sendall(self.codec.send_packet(payload))
        return self.answer()

    def answer(self) -> bytes:
        while not self.pending:
            data = self.sock.recv(65536)
            events = self.codec.receive_data(data)
            self.sock.sendall(self.codec.data_to_send())
            self.pending += [event.payload for event in events if isinstance(event, Packet)]
            if not data:
                raise ConnectionError("the server closed the connection")
        return self.pending.pop(0)

    def no_ack(self) -> None:
        assert self.ask(b"QStartNoAckMode") == b"OK"
        self.codec.start_no_ack()

    def at_end(self) -> bool:
        """True once the server has closed the connection (reads until it has)."""
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return True  # closed with our last '+' unread
            if not data:
                return True

    def close(self) -> None:
        self.sock.close()
