"""The process server: ``lindbgsrv -t OPTIONS`` and ``start_process_server``.

Two threads. The **tracer thread** makes every ptrace call (Linux requires one
tracer): it owns the ``LiveTarget`` and the one ``GdbStub``, and waits either for
the next connection event (stopped target) or in ``wait_event`` (running target),
which the I/O thread's ``wake`` interrupts. The **I/O thread** runs the asyncio
listener of ``lindbg.transports`` (tcp, npipe, ssl, spipe): it hands each chunk
it reads to the tracer thread and writes what the tracer thread gives back.

Clients are served one after another, as ``gdbserver --multi`` does; a second
connection waits until the first has gone. The processes and the breakpoints
outlive a connection: a client that reconnects finds them stopped where they
were (a running target is stopped when its client goes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from lindbg.errors import InvalidOperationError, LindbgError
from lindbg.procserver.stub import PACKET_SIZE, RESUMED, GdbStub
from lindbg.protocols.rsp import (
    Closed,
    Interrupt,
    LocalProtocolError,
    Packet,
    RemoteProtocolError,
    Role,
    RspConnection,
)
from lindbg.targets.live.target import LiveTarget
from lindbg.transports.endpoints import Listener, open_listener
from lindbg.transports.options import TransportOptions, parse_server_options

#: Seconds the tracer thread waits for a running target to stop when its client goes.
STOP_ON_LEAVE = 2.0


@dataclass(eq=False)
class _Link:
    """One client connection, as the tracer thread sees it."""

    writer: asyncio.StreamWriter
    label: str
    codec: RspConnection
    #: Replies waiting for the ``+`` of the one before (ack mode is stop-and-wait).
    outbox: list[bytes]
    done: asyncio.Event
    ended: bool = False
    #: The plain socket the tracer thread may write to itself (None: TLS, serial).
    sock: socket.socket | None = None
    #: Writes handed to the I/O thread, and those it has made (each counted by one
    #: thread): equal when nothing waits there.
    handed: int = 0
    written: int = 0


class ProcessServer:
    """A process server on ``options``; ``start`` it, then ``wait`` or ``stop``.

    Args:
        options: server options (``tcp:port=...``, ``npipe:pipe=...``, ``ssl:...``).
        program: a command line to start under the server before any client comes
            (``lindbgsrv -c``).
    """

    def __init__(self, options: TransportOptions | str, program: list[str] | None = None) -> None:
        if isinstance(options, str):
            options = parse_server_options(options)
        if options.password:
            raise InvalidOperationError(
                f"{options.transport}: a process server takes no password yet (gdb cannot answer "
                "a challenge); keep it on loopback, or use ssl"
            )
        self.options = options
        self._program = program
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._loop = asyncio.new_event_loop()
        self._io_thread = threading.Thread(target=self._loop.run_forever, name="lindbgsrv-io", daemon=True)
        self._tracer = threading.Thread(target=self._trace, name="lindbgsrv-tracer", daemon=True)
        self._ready = threading.Event()
        self._ended = threading.Event()
        self._failure: BaseException | None = None
        self._listener: Listener | None = None
        self._target: LiveTarget | None = None
        self._turn = asyncio.Lock()
        self._stopping = False
        #: The pid started with ``program``, once it is.
        self.first_pid: int | None = None

    # ------------------------------------------------------------ life

    def start(self, timeout: float = 10.0) -> None:
        """Listen and start serving; returns once clients can connect.

        Raises:
            LindbgError: the listener or the program could not be started.
        """
        self._io_thread.start()
        self._tracer.start()
        if not self._ready.wait(timeout):
            raise LindbgError("the process server did not start in time")
        if self._failure is not None:
            self._io_stop()
            raise self._failure

    @property
    def description(self) -> str:
        return self._listener.description if self._listener is not None else self.options.describe()

    @property
    def port(self) -> int | None:
        return self._listener.port if self._listener is not None else None

    @property
    def path(self) -> str | None:
        return self._listener.path if self._listener is not None else None

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the server has ended (``monitor exit``, ``stop``)."""
        return self._ended.wait(timeout)

    def stop(self) -> None:
        """Any thread: end the server (its launched processes are killed, attached
        ones detached)."""
        self._events.put(("stop", None))
        target = self._target
        if target is not None:
            target.wake()

    def _io_stop(self) -> None:
        listener = self._listener
        if listener is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(listener.close(), self._loop).result(5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._io_thread.join(5.0)

    # ------------------------------------------------------------ I/O thread

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, label: str
    ) -> None:
        async with self._turn:  # one client at a time
            if self._stopping:
                return
            link = _Link(writer, label, RspConnection(Role.SERVER), [], asyncio.Event())
            if writer.get_extra_info("ssl_object") is None:
                raw = writer.get_extra_info("socket")
                if raw is not None:
                    link.sock = socket.socket(fileno=os.dup(raw.fileno()))
            self._post(("connect", link))
            try:
                while not link.ended:
                    data = await reader.read(PACKET_SIZE)
                    self._post(("data", (link, data)))
                    if not data:
                        break
            finally:
                if not link.ended:
                    self._post(("data", (link, b"")))
                await link.done.wait()

    def _post(self, item: tuple[str, Any]) -> None:
        self._events.put(item)
        # a stopped target's tracer waits on the queue; only a running one needs its
        # wait_event cut short (the tracer looks at the queue before it waits there)
        target = self._target
        if target is not None and target.running:
            target.wake()

    # ------------------------------------------------------------ tracer thread

    def _trace(self) -> None:
        try:
            target = LiveTarget()
            if self._program:
                self.first_pid = target.launch(self._program, None, None)
            self._target = target
            stub = GdbStub(target, on_exit_request=self.stop)
            self._listener = asyncio.run_coroutine_threadsafe(
                open_listener(self.options, self._connection), self._loop
            ).result(10.0)
        except BaseException as error:  # handed to start()
            self._failure = error if isinstance(error, LindbgError) else LindbgError(str(error))
            self._ready.set()
            self._ended.set()
            return
        self._ready.set()
        link: _Link | None = None
        try:
            while True:
                if link is not None and target.running and self._events.empty():
                    event = target.wait_event(None)
                    if event is not None:
                        reply = stub.on_event(event)
                        if reply is not None:
                            self._send(link, reply)
                    block = False
                else:
                    block = True
                try:
                    kind, item = self._events.get(block=block, timeout=None)
                except queue.Empty:
                    continue
                if kind == "stop":
                    break
                if kind == "connect":
                    link = item
                    stub.new_connection()
                elif kind == "data":
                    which, data = item
                    if which is link and link is not None:
                        if not self._receive(stub, link, data):
                            self._leave(stub, link)
                            link = None
                    else:
                        self._release(which)
                if stub.exit_requested:
                    break
        finally:
            self._stopping = True
            if link is not None:
                self._release(link)
            self._shutdown(target)
            self._io_stop()
            self._ended.set()

    def _receive(self, stub: GdbStub, link: _Link, data: bytes) -> bool:
        """Act on what the client sent; False when the connection is over."""
        codec = link.codec
        try:
            events = codec.receive_data(data)
        except RemoteProtocolError:
            return False
        self._write(link, codec.data_to_send())
        for event in events:
            if isinstance(event, Packet):
                reply = stub.handle(event.payload)
                if reply is not RESUMED:
                    assert isinstance(reply, bytes)
                    self._send(link, reply)
                    if stub.no_ack_requested and codec.ack_mode:
                        self._flush(link)
                        codec.start_no_ack()
            elif isinstance(event, Interrupt):
                if stub.running:
                    stub.target.request_interrupt()
            elif isinstance(event, Closed):
                return False
        self._flush(link)
        return True

    def _send(self, link: _Link, payload: bytes) -> None:
        link.outbox.append(payload)
        self._flush(link)

    def _flush(self, link: _Link) -> None:
        codec = link.codec
        while link.outbox and not codec.awaiting_ack:
            try:
                data = codec.send_packet(link.outbox.pop(0))
            except LocalProtocolError:
                link.outbox.clear()
                return
            self._write(link, data)

    def _write(self, link: _Link, data: bytes) -> None:
        """Tracer thread: ``data`` to the client, in order. On a plain socket with
        nothing waiting before it, written here at once (a hand-off to the I/O thread
        costs more than the write, and gdb waits for every reply)."""
        if not data:
            return
        sock = link.sock
        if (
            sock is not None
            and link.handed == link.written
            and not link.writer.transport.get_write_buffer_size()
        ):
            try:
                sent = sock.send(data, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                return  # the I/O thread sees the connection end
            data = data[sent:]
            if not data:
                return
        link.handed += 1

        def write() -> None:
            link.writer.write(data)
            link.written += 1

        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(write)

    def _leave(self, stub: GdbStub, link: _Link) -> None:
        """The client went: keep its processes, stopped, for the next one."""
        stub.end_connection()
        target = stub.target
        if target.running:
            target.request_interrupt()
            deadline = time.monotonic() + STOP_ON_LEAVE
            while target.running and time.monotonic() < deadline:
                event = target.wait_event(deadline)
                if event is not None:
                    stub.on_event(event)
        self._release(link)

    def _release(self, link: _Link) -> None:
        link.ended = True

        def finish() -> None:
            link.writer.close()
            if link.sock is not None:
                link.sock.close()
            link.done.set()

        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(finish)

    def _shutdown(self, target: LiveTarget) -> None:
        """Kill what the server started, let go of what it attached to."""
        for pid in list(target.process_ids()):
            process = target.processes.get(pid)
            with contextlib.suppress(LindbgError, OSError):
                if process is not None and not process.launched:
                    target.detach_process(pid)
                else:
                    target.kill_process(pid)
