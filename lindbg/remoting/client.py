"""The remote client: ``lindbg.debug_connect(options)`` joins a debugging server's
session and returns a ``RemoteClient``, which a script uses as it would a local
``DebugClient``.

Strategy. A reader thread takes frames off the link. Results settle the call that
waits for them; output and events are posted to the inbox of the thread that
connected (the client's owner), and run there inside its ``wait_for_event``,
``dispatch_callbacks``, ``execute`` or any other call, as a local client's
callbacks do (DESIGN section 3). An event that asks for a vote is answered from
the owner thread when its callback returns. Frames are written under a lock, so
any thread may call.

When the link drops, every waiting call raises ``EngineUnusableError`` and the
callbacks hear ``change_engine_state(EXECUTION_STATUS, NO_DEBUGGEE)`` then
``session_status(FAILURE)``; ``reconnect()`` within the server's ``persist``
seconds takes the client's place back (its identity and the output it missed).
"""

from __future__ import annotations

import contextlib
import select
import threading
from collections.abc import Callable, Iterator
from typing import Any

from lindbg import errors
from lindbg.constants import CES, EndFlags, EventMask, SessionStatus, Status
from lindbg.engine.callbacks import EventCallbacks, OutputCallbacks
from lindbg.engine.inbox import Inbox, Reply
from lindbg.errors import EngineUnusableError, InvalidOperationError, LindbgError
from lindbg.os.linux.identity import host_and_user
from lindbg.protocols.session import Role, SessionConnection, SessionProtocolError, encode
from lindbg.remoting.wire import RemoteHandle, from_wire
from lindbg.transports.endpoints import Stream, connect
from lindbg.transports.options import TransportOptions, parse_client_options

#: Seconds a login may take.
LOGIN_TIMEOUT = 10.0
#: Seconds a disconnecting client waits for the server to close the link.
DISCONNECT_WAIT = 2.0


def _error_from(kind: str, message: str) -> LindbgError:
    """The exception a server reported, as the class of that name where lindbg has
    one (``MemoryAccessError``), else ``LindbgError``."""
    cls = getattr(errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, LindbgError)):
        cls = LindbgError
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    for name, default in (("pid", None), ("tid", None), ("address", 0), ("position", 0)):
        if not hasattr(error, name):
            with contextlib.suppress(AttributeError):
                setattr(error, name, default)
    return error


class _Link:
    """One login's connection, read by whichever of two threads gets to it first:
    the reader thread, and the owner while it waits in ``dispatch_callbacks`` or a
    call (so an event that asks for a vote costs no hand-off between threads)."""

    def __init__(self, stream: Stream, connection: SessionConnection) -> None:
        self.stream = stream
        self.connection = connection
        #: None: only the reader thread reads (TLS, serial: data waits inside them).
        self.fd = stream.poll_fd()
        self.read_lock = threading.Lock()
        self.turn = threading.Condition()
        self._owner_depth = 0
        #: Why the link ended, once it has; the reader thread then closes it.
        self.ended: str | None = None

    def end(self, reason: str) -> None:
        """The link is over: wake the reader thread wherever it waits."""
        with self.turn:
            if self.ended is None:
                self.ended = reason
            self.turn.notify_all()
        self.stream.shutdown()

    @property
    def owner_reading(self) -> bool:
        return self._owner_depth > 0

    @contextlib.contextmanager
    def owner_reads(self) -> Iterator[None]:
        """The owner reads the link while inside (nested: a call from a callback)."""
        with self.turn:
            self._owner_depth += 1
        try:
            yield
        finally:
            with self.turn:
                self._owner_depth -= 1
                self.turn.notify_all()


class RemoteClient:
    """A client of a debugging server's engine (see the module's comment).

    Use ``lindbg.debug_connect``. Methods mirror ``DebugClient``'s; handles that
    come back (breakpoints, threads, frames) are ``RemoteHandle`` snapshots.
    """

    def __init__(self, options: TransportOptions, *, timeout: float = LOGIN_TIMEOUT) -> None:
        self._options = options
        self.owner = threading.get_ident()
        self._inbox = Inbox(self.owner)
        self._send_lock = threading.Lock()
        self._replies: dict[int, Reply] = {}
        self._next_id = 1
        self.event_callbacks: EventCallbacks | None = None
        self.output_callbacks: OutputCallbacks | None = None
        self.interest_mask = 0
        #: Why calls cannot succeed (None while linked).
        self.unusable_reason: str | None = "not connected yet"
        #: The server's last word (its ``bye``), when it ended the link itself.
        self.farewell: str | None = None
        self.identity = ""
        self.token: str | None = None
        self.persist = 0.0
        #: The prompt the server says this client shows now (updated by ``execute``).
        self.prompt = "> "
        #: The server's execution status when this client logged in.
        self.status = Status.NO_DEBUGGEE
        #: True when the last login took back a place kept since a dropped link.
        self.rejoined = False
        self._stream: Stream | None = None
        self._current: _Link | None = None
        self._reader_done = threading.Event()
        self._link(timeout, rejoin=None)

    # ------------------------------------------------------------ the link

    def _link(self, timeout: float, rejoin: str | None) -> None:
        options = self._options
        stream = connect(options, timeout=timeout)
        connection = SessionConnection(Role.CLIENT, password=options.password)
        host, user = host_and_user()
        try:
            stream.send(connection.hello(host, user, rejoin=rejoin, channel=options.channel))
            challenge = self._read_one(stream, connection, timeout)[0]
            stream.send(connection.answer_challenge(challenge))
            verdict, *early = self._read_one(stream, connection, timeout)
            if verdict["t"] == "refused":
                raise InvalidOperationError(f"the debugging server refused the login: {verdict['message']}")
            connection.check_welcome(verdict)
        except (SessionProtocolError, OSError) as error:
            stream.close()
            raise InvalidOperationError(
                f"cannot log in to the debugging server ({stream.label}): {error}"
            ) from None
        except BaseException:
            stream.close()
            raise
        self._stream = stream
        self.identity = verdict["identity"]
        self.token = verdict["token"]
        self.persist = float(verdict["persist"])
        self.prompt = verdict["prompt"]
        self.status = Status(verdict["status"])
        self.rejoined = bool(verdict["rejoined"])
        self.unusable_reason = None
        self.farewell = None
        self._reader_done = threading.Event()
        link = _Link(stream, connection)
        self._current = link
        # frames that came in the welcome's read (the replay of a rejoin) go first
        for message in early:
            self._take_frame(link, message)
        reader = threading.Thread(target=self._read_frames, args=(link,), daemon=True)
        reader.name = "lindbg-remote-reader"
        reader.start()
        if self.interest_mask:
            self._send({"t": "interest", "mask": self.interest_mask})

    @staticmethod
    def _read_one(stream: Stream, connection: SessionConnection, timeout: float) -> list[dict[str, Any]]:
        """The next handshake message, with whatever followed it in the same read;
        a server that says nothing for ``timeout`` seconds has its link shut."""
        watchdog = threading.Timer(timeout, stream.shutdown)
        watchdog.daemon = True
        watchdog.start()
        try:
            while True:
                data = stream.recv(65536)
                if not data:
                    if not watchdog.is_alive():
                        raise OSError(f"the server did not answer the login within {timeout:g} s")
                    raise OSError("the server closed the connection during the login")
                messages = connection.receive_data(data)
                if messages:
                    return messages
        finally:
            watchdog.cancel()

    def _read_frames(self, link: _Link) -> None:
        """Reader thread: frames from the server while the owner is not reading them
        itself, until the link ends."""
        try:
            if link.fd is None:
                while link.ended is None:
                    self._receive(link, lambda: link.stream.recv(65536))
                return
            while True:
                with link.turn:
                    while link.owner_reading and link.ended is None:
                        link.turn.wait()
                if link.ended is not None:
                    return
                select.select([link.fd], [], [])
                self._pump(link)
        finally:
            self._lost(link.stream, link.ended or "the connection to the debugging server was lost")
            self._reader_done.set()

    def _pump(self, link: _Link) -> None:
        """Either thread: take what the link has now, if the other did not first."""
        self._receive(link, lambda: link.stream.recv_nowait(65536))

    def _receive(self, link: _Link, read: Callable[[], bytes | None]) -> None:
        """Read once with ``read`` and act on the frames, in order, under the link's
        read lock (the reader thread and the owner take turns); note why it ended."""
        with link.read_lock:
            if link.ended is not None:
                return
            try:
                data = read()
                if data is None:
                    return
                messages = link.connection.receive_data(data)
            except SessionProtocolError as error:
                link.end(f"the debugging server broke the session protocol: {error}")
                return
            except OSError as error:
                link.end(f"the connection to the debugging server was lost: {error}")
                return
            for message in messages:
                self._take_frame(link, message)
            if not data:
                link.end("the connection to the debugging server was lost")

    def _take_frame(self, link: _Link, message: dict[str, Any]) -> None:
        if link.ended is not None:
            return
        if message["t"] == "bye":
            self.farewell = message["message"]
            link.end(f"the debugging server ended the connection: {message['message']}")
        else:
            self._take(message)

    def _take(self, message: dict[str, Any]) -> None:
        """Reader thread: act on one frame."""
        kind = message["t"]
        if kind == "result" or kind == "error":
            reply = self._replies.pop(message["id"], None)
            if reply is None:
                return
            if kind == "result":
                reply.set(message["value"])
            else:
                reply.set(error=_error_from(message["kind"], message["message"]))
            self._inbox.wake()
        elif kind == "output":
            mask, text = message["mask"], message["text"]
            self._inbox.post(lambda: self._deliver_output(mask, text), want_reply=False)
        elif kind == "event":
            self._inbox.post(lambda: self._deliver_event(message), want_reply=False)

    def _lost(self, stream: Stream, reason: str) -> None:
        """Reader thread: the link is gone; calls waiting on it fail."""
        stream.close()
        if self._stream is not stream:
            return  # an old link after a reconnect
        planned = self.unusable_reason is not None
        if not planned:
            self.unusable_reason = reason
        replies, self._replies = self._replies, {}
        for reply in replies.values():
            reply.set(error=EngineUnusableError(self.unusable_reason or reason))
        if not planned and self.farewell is None:
            self._inbox.post(self._announce_failure, want_reply=False)
        self._inbox.wake()

    def _announce_failure(self) -> None:
        """Owner thread: the session, as this client saw it, ended with FAILURE."""
        callbacks = self.event_callbacks
        if callbacks is None:
            return
        mask = self.interest_mask
        with contextlib.suppress(Exception):
            if mask & EventMask.CHANGE_ENGINE_STATE:
                callbacks.change_engine_state(int(CES.EXECUTION_STATUS), int(Status.NO_DEBUGGEE))
            if mask & EventMask.SESSION_STATUS:
                callbacks.session_status(SessionStatus.FAILURE)

    def reconnect(self, timeout: float = LOGIN_TIMEOUT) -> None:
        """Log in again after a dropped link, taking this client's place back (within
        the server's ``persist`` seconds; later, a new place)."""
        if self._stream is not None and self.unusable_reason is None:
            raise InvalidOperationError("this client is still connected")
        self._link(timeout, rejoin=self.token)

    # ------------------------------------------------------------ frames out

    def _send(self, message: dict[str, Any]) -> None:
        stream = self._stream
        if stream is None:
            raise EngineUnusableError(self.unusable_reason or "not connected")
        data = encode(message)
        try:
            with self._send_lock:
                stream.send(data)
        except OSError as error:
            raise EngineUnusableError(f"the connection to the debugging server was lost: {error}") from None

    def _check(self) -> None:
        if self.unusable_reason is not None:
            raise EngineUnusableError(self.unusable_reason)

    def call(self, method: str, *args: Any) -> Any:
        """Run ``method`` of the server's API for this client and return its value."""
        self._check()
        reply = Reply()
        with self._send_lock:
            call_id = self._next_id
            self._next_id += 1
        self._replies[call_id] = reply
        try:
            self._send({"t": "call", "id": call_id, "method": method, "args": list(args)})
        except EngineUnusableError:
            self._replies.pop(call_id, None)
            raise
        if threading.get_ident() != self.owner:
            reply.wait()  # the link's end settles it too
            return from_wire(reply.result())
        inbox = self._inbox
        with self._owner_reading():
            while not reply.done:
                inbox.run_pending()
                self._wait_as_owner(0.05, for_exit=False)
        inbox.run_pending()  # the call's output arrived before its result
        return from_wire(reply.result())

    def _owner_reading(self) -> contextlib.AbstractContextManager[None]:
        link = self._current
        return link.owner_reads() if link is not None else contextlib.nullcontext()

    def _wait_as_owner(self, timeout: float | None, *, for_exit: bool = True) -> None:
        """Owner thread: wait for posted work (or ``timeout``), reading the link meanwhile."""
        link = self._current
        if link is None or link.fd is None or link.ended is not None:
            self._inbox.wait(timeout, for_exit=for_exit)
            return
        inbox_fd = self._inbox.fileno()
        fd = link.fd
        try:
            ready, _, _ = select.select([fd, inbox_fd], [], [], timeout)
        except (OSError, ValueError):
            if link.ended is None:
                raise
            return  # ended and closed by the reader thread meanwhile: the caller sees why
        if fd in ready:
            self._pump(link)

    # ------------------------------------------------------------ callbacks

    def _deliver_output(self, mask: int, text: str) -> None:
        out = self.output_callbacks
        if out is not None:
            with contextlib.suppress(Exception):  # a broken callback must not break the link
                out.output(mask, text)

    def _deliver_event(self, message: dict[str, Any]) -> None:
        """Owner thread: run one event callback; send its vote when one is asked."""
        callbacks = self.event_callbacks
        method = message["method"]
        status: Any = None
        if callbacks is not None:
            args = [from_wire(a) for a in message["args"]]
            if method == "session_status" and args:
                args[0] = SessionStatus(args[0])
            try:
                status = getattr(callbacks, method)(*args)
            except Exception:
                status = None
        event_id = message.get("id")
        if event_id is not None:
            try:
                vote = int(status) if status is not None else int(Status.NO_CHANGE)
            except (TypeError, ValueError):
                vote = int(Status.NO_CHANGE)
            with contextlib.suppress(EngineUnusableError):
                self._send({"t": "answer", "id": event_id, "status": vote})

    def set_event_callbacks(self, callbacks: EventCallbacks | None) -> None:
        """Register (or with None remove) this client's event callbacks; the server
        sends the events the interest mask asks for."""
        self._check()
        self.event_callbacks = callbacks
        self.interest_mask = int(callbacks.get_interest_mask()) if callbacks is not None else 0
        self._send({"t": "interest", "mask": self.interest_mask})

    def get_event_callbacks(self) -> EventCallbacks | None:
        return self.event_callbacks

    def set_output_callbacks(self, callbacks: OutputCallbacks | None) -> None:
        """Register (or with None remove) this client's output callbacks: they get the
        session's shared output."""
        self.output_callbacks = callbacks

    def get_output_callbacks(self) -> OutputCallbacks | None:
        return self.output_callbacks

    def dispatch_callbacks(self, timeout: float | None = None) -> bool:
        """Run this client's callbacks until ``exit_dispatch`` (True) or ``timeout`` (False).

        Raises:
            EngineUnusableError: the link is gone (after its callbacks heard so).
        """
        with self._owner_reading():
            return self._inbox.dispatch(timeout, self._check, self._wait_as_owner)

    def exit_dispatch(self, client: Any = None) -> None:
        """Make the owner thread leave ``dispatch_callbacks``."""
        self._inbox.request_exit()

    # ------------------------------------------------------------ the API

    def execute(self, command_text: str) -> None:
        """Run console commands on the server, as this client typed them; returns when
        they have finished there (their output has reached the output callbacks)."""
        self.prompt = str(self.call("execute", command_text))

    def output(self, mask: int, text: str) -> None:
        """Send ``text`` to every client's output callbacks."""
        self.call("output", int(mask), text)

    def get_execution_status(self) -> Status:
        return Status(self.call("get_execution_status"))

    def set_execution_status(self, status: int, count: int = 1) -> None:
        self.call("set_execution_status", int(status), int(count))

    def set_interrupt(self) -> None:
        """Break into the running target; any thread."""
        self._check()
        self._send({"t": "interrupt"})

    def wait_for_event(self, timeout: float | None = None) -> bool:
        """Let the server's engine run the target until it breaks in or the session
        ends (True) or ``timeout`` (False); this client's callbacks run meanwhile."""
        return bool(self.call("wait_for_event", timeout))

    def end_session(self, flags: int) -> None:
        """PASSIVE, ACTIVE_TERMINATE, ACTIVE_DETACH act on the shared session.
        DISCONNECT leaves it running for the others and disables this client.
        REENTRANT drops the link at once (no lock, no answer awaited)."""
        flags = int(flags)
        if flags == EndFlags.DISCONNECT:
            self._check()
            self.unusable_reason = "this client disconnected from the debugging server (DISCONNECT)"
            with contextlib.suppress(EngineUnusableError):
                self._send({"t": "disconnect"})
                # the server closes first: closing now, with its output unread, would
                # reset the connection and could lose the disconnect on its way in
                self._reader_done.wait(DISCONNECT_WAIT)
            self._close(self.unusable_reason)
            return
        if flags == EndFlags.REENTRANT:
            self._close("this client was ended with end_session(REENTRANT)")
            return
        self.call("end_session", flags)

    def _close(self, reason: str) -> None:
        self.unusable_reason = reason
        stream = self._stream
        if stream is not None:
            stream.shutdown()

    def close(self) -> None:
        """Disconnect (as ``end_session(DISCONNECT)``) if still connected."""
        if self.unusable_reason is None:
            self.end_session(EndFlags.DISCONNECT)

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_memory(self, address: int, size: int) -> bytes:
        return bytes(self.call("read_memory", int(address), int(size)))

    def write_memory(self, address: int, data: bytes) -> None:
        self.call("write_memory", int(address), bytes(data))

    def get_register(self, name: str, thread: int | None = None) -> int:
        return int(self.call("get_register", name, thread))

    def set_register(self, name: str, value: int, thread: int | None = None) -> None:
        self.call("set_register", name, int(value), thread)

    def resolve(self, expression: str) -> int:
        return int(self.call("resolve", expression))

    def symbol_at(self, address: int) -> str | None:
        value = self.call("symbol_at", int(address))
        return None if value is None else str(value)

    def add_breakpoint(
        self, location: int | str, *, access: str | None = None, size: int = 1, one_shot: bool = False
    ) -> RemoteHandle:
        return self.call("add_breakpoint", location, access, size, one_shot)  # type: ignore[no-any-return]

    def remove_breakpoint(self, bp: Any) -> None:
        """Remove a breakpoint (a handle from ``add_breakpoint``/``breakpoints``, or its id)."""
        self.call("remove_breakpoint", int(bp if isinstance(bp, int) else bp.id))

    def breakpoints(self) -> list[RemoteHandle]:
        return list(self.call("breakpoints"))

    def processes(self) -> list[RemoteHandle]:
        return list(self.call("processes"))

    def threads(self, pid: int | None = None) -> list[RemoteHandle]:
        return list(self.call("threads", pid))

    def current_thread(self) -> RemoteHandle:
        return self.call("current_thread")  # type: ignore[no-any-return]

    def set_current_thread(self, tid: int) -> None:
        self.call("set_current_thread", int(tid))

    def modules(self, pid: int | None = None) -> list[RemoteHandle]:
        return list(self.call("modules", pid))

    def stack(self, thread: int | None = None, max_frames: int | None = None) -> list[RemoteHandle]:
        return list(self.call("stack", thread, max_frames))

    def get_last_event(self) -> RemoteHandle | None:
        return self.call("get_last_event")  # type: ignore[no-any-return]

    def create_process(
        self,
        argv_or_cmdline: list[str] | str,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        options: int = 0,
    ) -> RemoteHandle:
        """Start a program on the server's machine, under the shared session."""
        return self.call("create_process", argv_or_cmdline, env, cwd, int(options))  # type: ignore[no-any-return]

    def attach_process(self, pid: int) -> RemoteHandle:
        return self.call("attach_process", int(pid))  # type: ignore[no-any-return]

    def clients(self) -> list[str]:
        """``.clients``'s lines."""
        return [str(line) for line in self.call("clients")]

    def servers(self) -> list[str]:
        """``.servers``'s lines."""
        return [str(line) for line in self.call("servers")]


def debug_connect(options: str, *, timeout: float = LOGIN_TIMEOUT) -> RemoteClient:
    """Join the session of the debugging server ``options`` names
    (``tcp:server=HOST,port=P[,password=W]``, ``npipe:pipe=NAME``, ...).

    Raises:
        TransportError: the option string is wrong, or nothing answers there.
        InvalidOperationError: the server refused the login (a wrong password).
    """
    return RemoteClient(parse_client_options(options), timeout=timeout)
