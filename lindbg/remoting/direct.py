"""A seat's plain-socket link that two threads share: the server's I/O thread and,
while it waits for that client's vote on an event, the engine thread.

Why: an event that asks for a vote used to cross threads four times on the server
(engine -> I/O thread to send it, I/O thread -> engine with the answer); on this
kind of machine each crossing costs 30-80 us, more than the loopback round trip
itself. With a ``DirectLink`` the engine thread writes the event and reads the
answer on the socket itself. Everything else still goes through the I/O thread:
the engine only writes when nothing is queued before its frame, and the messages
it reads that are not answers are handed to the I/O thread in the order they came.

TLS and serial links have no ``DirectLink`` (their data can wait inside the TLS
layer or the line's driver, so a selector cannot tell when to read).

One lock covers the socket and the decoder: whoever holds it reads, decodes and
writes; the I/O thread never waits for it (``try_lock``), the engine thread does.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections import deque
from typing import Any

from lindbg.protocols.session import SessionConnection, SessionProtocolError

_CHUNK = 65536


class DirectLink:
    """The shared half of one connection; made on the I/O thread after the login."""

    def __init__(self, writer: asyncio.StreamWriter, connection: SessionConnection) -> None:
        sock = writer.get_extra_info("socket")
        # a descriptor of our own: asyncio refuses a reader on the transport's, and
        # the transport (paused for reading) still does the I/O thread's writes
        self.sock = socket.socket(fileno=os.dup(sock.fileno()))
        self.sock.setblocking(False)
        self.fd = self.sock.fileno()
        self.transport = writer.transport
        self.connection = connection
        self.lock = threading.Lock()
        #: Decoded messages other than answers, for the I/O thread, in order.
        self.inbound: deque[dict[str, Any]] = deque()
        #: Why the link ended (set once, under the lock); the I/O thread closes it.
        self.ended: str | None = None
        #: Frames queued for the I/O thread and not yet handed to the transport.
        self.queued = 0
        #: The engine thread waits for a vote on this link (it reads the answer).
        self.voting = False
        #: The I/O thread stopped watching the link during a vote (the engine
        #: thread has it watched again when the vote is in).
        self.paused = False

    @staticmethod
    def usable(writer: asyncio.StreamWriter) -> bool:
        """A plain tcp or unix socket (not TLS, not a serial line)."""
        return writer.get_extra_info("ssl_object") is None and writer.get_extra_info("socket") is not None

    def read(self) -> list[dict[str, Any]]:
        """Under ``lock``: the messages one read brings (none when nothing waits);
        sets ``ended`` when the peer closed, the link failed or broke the protocol."""
        if self.ended is not None:
            return []
        try:
            data = self.sock.recv(_CHUNK)
        except BlockingIOError:
            return []
        except OSError:
            self.ended = "lost its connection"
            return []
        try:
            messages = self.connection.receive_data(data)
        except SessionProtocolError as error:
            self.ended = f"broke the session protocol ({error})"
            return list(getattr(error, "messages", []))
        if not data:
            self.ended = "lost its connection"
        return messages

    def write_now(self, data: bytes) -> bytes:
        """Under ``lock``: write what the socket takes at once, when nothing is queued
        before it; returns the rest, for the I/O thread to send in order."""
        if self.ended is not None or self.queued or self.transport.get_write_buffer_size():
            return data
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return data
        except OSError:
            return data  # the I/O thread meets the failure and drops the link
        return data[sent:]

    def close(self) -> None:
        """I/O thread, after ``loop.remove_reader(fd)``."""
        with self.lock:
            if self.ended is None:
                self.ended = "closed"
            self.sock.close()
