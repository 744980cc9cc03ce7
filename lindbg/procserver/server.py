"""The process server: ``lindbgsrv -t OPTIONS`` and ``start_process_server``.

Two threads. The **tracer thread** makes every ptrace call (Linux requires one
tracer): it owns the ``LiveTarget`` and the one ``GdbStub``. The **I/O thread** runs
the asyncio listener of ``lindbg.transports`` (tcp, npipe, ssl, spipe) and accepts
the connections.

On a plain socket (tcp, npipe) the tracer thread does the connection's I/O itself, so
that a request and its reply cost one read and one write on one thread, without a
hand-off: while the target is stopped it waits in ``poll`` on the socket; while the
target runs it waits in ``wait_event``, and a one-shot watch of the socket (an epoll
of its own, armed by the tracer thread before each wait and disarmed after, polled by
the I/O thread) wakes it when the client sends something (a ^C, usually) or goes. The
asyncio transport keeps the socket but never reads it, and writes nothing.

Over TLS and serial lines (where data can wait inside the TLS layer or the line's
driver, out of a selector's sight) the I/O thread reads: it hands each chunk to the
tracer thread through a queue, waking a running target, and writes the replies the
tracer thread gives back.

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
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from lindbg.errors import LindbgError
from lindbg.procserver.auth import WRONG_PASSWORD_DELAY
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

_WATCH_ON = select.EPOLLIN | select.EPOLLONESHOT
# epoll adds EPOLLERR and EPOLLHUP itself: a reset may still fire a disarmed watch
# once, which only costs the tracer thread a wait_event that returns at once.
_WATCH_OFF = select.EPOLLONESHOT
_SOCKET_READY = select.POLLIN | select.POLLERR | select.POLLHUP


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
    #: A plain socket's own descriptor, which the tracer thread reads and writes
    #: (None: TLS or a serial line, read and written by the I/O thread).
    sock: socket.socket | None = None
    #: The one-shot watch on ``sock`` that the I/O thread polls (with ``sock``).
    watch: select.epoll | None = None
    #: The tracer thread's waits on ``sock`` (and the server's bell): to read, to write.
    readable: select.poll | None = None
    writable: select.poll | None = None
    #: A write failed or was given up: the connection is over.
    broken: bool = False


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
        #: A pipe that rings the tracer thread out of its wait on a plain socket when
        #: something is queued for it (made and closed by the tracer thread).
        self._bell_lock = threading.Lock()
        self._bell_read = -1
        self._bell_write = -1
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
        self._post(("stop", None), ring=True)
        target = self._target
        if target is not None:
            target.wake()

    def _io_stop(self) -> None:
        listener = self._listener
        if listener is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(listener.close(), self._loop).result(5.0)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._wind_down(), self._loop).result(5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._io_thread.join(5.0)

    @staticmethod
    async def _wind_down() -> None:
        """I/O thread: end the connections' tasks (a released one waits to be resumed,
        a later client for its turn), so that none is left pending when the loop stops."""
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------ I/O thread

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, label: str
    ) -> None:
        async with self._turn:  # one client at a time
            if self._stopping:
                return
            link = _Link(writer, label, RspConnection(Role.SERVER), [], asyncio.Event())
            if writer.get_extra_info("ssl_object") is None and writer.get_extra_info("socket") is not None:
                await self._hand_over(reader, writer, link)
                return
            self._post(("connect", link))
            try:
                while not link.ended:
                    data = await reader.read(PACKET_SIZE)
                    self._post(("data", (link, data)))
                    if not data:
                        break
            finally:
                if not link.ended and not self._stopping:
                    self._post(("data", (link, b"")))
                if not self._stopping:  # cancelled as the server ends: nobody to wait for
                    await link.done.wait()

    async def _hand_over(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        """A plain socket: the tracer thread reads it from now on; the transport, paused
        for reading, only keeps it open, and the I/O thread polls its watch."""
        transport = writer.transport
        assert isinstance(transport, asyncio.ReadTransport)
        transport.pause_reading()
        # what the transport read before this client's turn: a read to the end of the
        # stream reader's buffer (it may resume the transport: paused again at once)
        reader.feed_eof()
        try:
            early = await reader.read(-1)
        except Exception:  # the connection failed: the tracer thread's read says so
            early = b""
        transport.pause_reading()
        raw = writer.get_extra_info("socket")
        try:
            # a descriptor of our own: the transport keeps its own (and closes it)
            sock = socket.socket(fileno=os.dup(raw.fileno()))
        except OSError:
            return  # gone before its turn came
        sock.setblocking(False)
        watch = select.epoll()
        watch.register(sock.fileno(), _WATCH_OFF)
        link.sock, link.watch = sock, watch

        def fired() -> None:
            # the one-shot event is taken, so the watch stays quiet until re-armed
            with contextlib.suppress(OSError, ValueError):
                watch.poll(0)
            target = self._target
            if target is not None:
                target.wake()

        self._loop.add_reader(watch.fileno(), fired)
        self._post(("connect", link), ring=True)
        if early:
            self._post(("data", (link, early)), ring=True)
        try:
            await link.done.wait()
        finally:
            if not link.ended and not self._stopping:
                self._post(("data", (link, b"")), ring=True)
                await link.done.wait()

    def _post(self, item: tuple[str, Any], *, ring: bool = False) -> None:
        self._events.put(item)
        # a stopped target's tracer waits on the queue, or with ``ring`` on a plain
        # socket and the bell; a running one needs its wait_event cut short (the
        # tracer looks at the queue before it waits anywhere)
        target = self._target
        if target is not None and target.running:
            target.wake()
        if ring:
            with self._bell_lock:
                if self._bell_write >= 0:
                    try:
                        os.write(self._bell_write, b"\0")
                    except BlockingIOError:
                        pass  # full: it rings already

    # ------------------------------------------------------------ tracer thread

    def _trace(self) -> None:
        try:
            target = LiveTarget()
            if self._program:
                self.first_pid = target.launch(self._program, None, None)
            self._target = target
            stub = GdbStub(target, on_exit_request=self.stop, password=self.options.password)
            bell_read, bell_write = os.pipe()
            os.set_blocking(bell_read, False)
            os.set_blocking(bell_write, False)
            with self._bell_lock:
                self._bell_read, self._bell_write = bell_read, bell_write
            self._listener = asyncio.run_coroutine_threadsafe(
                open_listener(self.options, self._connection), self._loop
            ).result(10.0)
        except BaseException as error:  # handed to start()
            self._failure = error if isinstance(error, LindbgError) else LindbgError(str(error))
            self._close_bell()
            self._ready.set()
            self._ended.set()
            return
        self._ready.set()
        link: _Link | None = None
        try:
            while not stub.exit_requested:
                if link is not None and self._events.empty():
                    if link.sock is not None:
                        if not self._serve_directly(stub, link):
                            self._leave(stub, link)
                            link = None
                        continue
                    if target.running:
                        event = target.wait_event(None)
                        if event is not None:
                            reply = stub.on_event(event)
                            if reply is not None:
                                self._send(link, reply)
                        continue
                kind, item = self._events.get()
                if kind == "stop":
                    break
                if kind == "connect":
                    link = item
                    self._attach(link)
                    stub.new_connection()
                elif kind == "data":
                    which, data = item
                    if which is link and link is not None:
                        if not self._receive(stub, link, data):
                            self._leave(stub, link)
                            link = None
                    else:
                        self._release(which)
        finally:
            self._stopping = True
            if link is not None:
                self._release(link)
            self._shutdown(target)
            self._io_stop()
            self._close_bell()
            self._ended.set()

    def _close_bell(self) -> None:
        with self._bell_lock:
            for fd in (self._bell_read, self._bell_write):
                if fd >= 0:
                    os.close(fd)
            self._bell_read = self._bell_write = -1

    def _attach(self, link: _Link) -> None:
        """A plain socket's waits: the socket (read, or write) and the bell."""
        if link.sock is None:
            return
        fd = link.sock.fileno()
        link.readable = select.poll()
        link.readable.register(fd, select.POLLIN)
        link.readable.register(self._bell_read, select.POLLIN)
        link.writable = select.poll()
        link.writable.register(fd, select.POLLOUT)
        link.writable.register(self._bell_read, select.POLLIN)

    def _serve_directly(self, stub: GdbStub, link: _Link) -> bool:
        """A plain socket, nothing queued: wait for the target with the client
        watched (running target), or serve the client's packets until the target
        runs, the bell rings or the client asks the server to end (stopped target);
        False when the connection is over."""
        target = stub.target
        sock, watch, readable = link.sock, link.watch, link.readable
        assert sock is not None and watch is not None and readable is not None
        fd = sock.fileno()
        if target.running:
            watch.modify(fd, _WATCH_ON)
            try:
                event = target.wait_event(None)
            finally:
                watch.modify(fd, _WATCH_OFF)
            if event is not None:
                reply = stub.on_event(event)
                if reply is not None:
                    self._send(link, reply)
                return not link.broken
            # woken: by the watch (the client sent something, or went) or by a post
            return self._read_directly(stub, link)
        while True:
            ready = readable.poll()
            if len(ready) != 1 or ready[0][0] != fd:  # the bell rang
                with contextlib.suppress(BlockingIOError):
                    os.read(self._bell_read, 4096)
                if not self._events.empty():
                    return True  # the loop takes what was queued
                if all(ready_fd != fd for ready_fd, _ in ready):
                    continue
            if not self._read_directly(stub, link):
                return False
            if target.running or stub.exit_requested:
                return True

    def _read_directly(self, stub: GdbStub, link: _Link) -> bool:
        """What the socket has (nothing, after a wake for nothing), acted on; False
        when the connection is over."""
        assert link.sock is not None
        try:
            data = link.sock.recv(PACKET_SIZE)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            data = b""  # reset: over
        return self._receive(stub, link, data) and not link.broken

    def _wait(self, poller: select.poll | None) -> bool:
        """Tracer thread: wait on a plain socket (``poller``) or the bell; False when
        the bell rang for something queued."""
        assert poller is not None
        bell = self._bell_read
        while True:
            ready = [fd for fd, _ in poller.poll()]
            if bell in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(bell, 4096)
                if not self._events.empty():
                    return False
                ready.remove(bell)
            if ready:
                return True

    def _receive(self, stub: GdbStub, link: _Link, data: bytes) -> bool:
        """Act on what the client sent; False when the connection is over."""
        codec = link.codec
        try:
            events = codec.receive_data(data)
        except RemoteProtocolError:
            return False
        acks = codec.data_to_send()
        if acks:
            self._write(link, acks)
        for event in events:
            if isinstance(event, Packet):
                reply = stub.handle(event.payload)
                if stub.login is not None and stub.login.refused:
                    time.sleep(WRONG_PASSWORD_DELAY)  # one guess per delay
                    assert isinstance(reply, bytes)
                    self._send(link, reply)
                    self._flush(link)
                    return False
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
        if link.outbox:
            self._flush(link)
        return True

    def _send(self, link: _Link, payload: bytes) -> None:
        codec = link.codec
        if link.outbox or codec.awaiting_ack:
            link.outbox.append(payload)  # stop-and-wait: after the '+' of the one before
            return
        try:
            data = codec.send_packet(payload)
        except LocalProtocolError:
            return
        self._write(link, data)

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
        """Tracer thread: ``data`` to the client, in order: on a plain socket written
        here (waiting while the socket is full, as gdbserver does), else handed to the
        I/O thread."""
        if not data:
            return
        sock = link.sock
        if sock is None:

            def write() -> None:
                link.writer.write(data)

            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(write)
            return
        if link.broken:
            return
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            link.broken = True  # the read that follows finds the end
            return
        if sent == len(data):
            return
        view = memoryview(data)[sent:]
        while True:
            if not self._wait(link.writable):
                link.broken = True  # a stop is queued: the reply is dropped
                return
            try:
                view = view[sock.send(view) :]
            except BlockingIOError:
                pass
            except OSError:
                link.broken = True
                return
            if not view:
                return

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
            watch = link.watch
            if watch is not None and not watch.closed:
                self._loop.remove_reader(watch.fileno())
                watch.close()
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
