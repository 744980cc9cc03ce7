"""Debugging servers: the listeners of one engine and the remote clients they admit.

Strategy. One I/O thread runs an asyncio loop for every listener and connection of
the engine (``ServerHub``); the engine thread never blocks on a socket and the I/O
thread never waits for the engine:

- a remote client's request is posted to the engine's inbox, which the engine
  thread serves inside ``wait_for_event`` and ``dispatch_callbacks``; the answer
  comes back through the same outgoing queue as output, so a client sees the
  output of its command before the command's result;
- each remote client is a ``Seat``: a ``DebugClient`` of the engine (owned by the
  engine thread, so the dispatcher calls it directly) whose output and event
  callbacks turn into frames. Frames leave through one queue that the I/O thread
  drains (one wake-up per burst, not per line) into each connection's transport;
  a connection whose unsent output passes ``output_limit`` is dropped, with a line
  to the others, so a client that does not read never slows the session;
- an event a remote client must answer (its ``breakpoint`` callback returning GO)
  is awaited on the engine thread at most ``callback_timeout``, serving the inbox
  meanwhile, exactly as for a local client on another thread;
- a dropped link keeps the seat for ``persist`` seconds: output meanwhile goes to
  a bounded replay buffer and the seat answers events NO_CHANGE; the same user
  logging in again (or presenting the seat's token) takes the seat back.

Nothing before a successful login reaches the engine: the hello, the challenge,
the proof and the verdict are handled here, on the I/O thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import secrets
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lindbg.constants import OutputMask, Status
from lindbg.engine.callbacks import EventCallbacks, OutputCallbacks
from lindbg.engine.inbox import Reply
from lindbg.errors import InvalidOperationError, LindbgError
from lindbg.protocols.session import (
    Role,
    SessionConnection,
    SessionProtocolError,
    encode,
)
from lindbg.remoting.direct import DirectLink
from lindbg.remoting.lines import cdb_time, local_client_lines
from lindbg.remoting.wire import to_wire
from lindbg.transports.endpoints import Listener, open_listener
from lindbg.transports.options import TransportOptions, parse_server_options

if TYPE_CHECKING:
    from lindbg.engine.client import DebugClient
    from lindbg.engine.engine import Engine

#: Bytes of unsent output a connection may hold before it is dropped.
DEFAULT_OUTPUT_LIMIT = 4 << 20
#: Bytes of output kept for a seat whose link dropped, replayed when it rejoins.
DEFAULT_REPLAY_LIMIT = 1 << 20
#: Seconds a peer has to log in.
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
#: Seconds before a wrong password is answered (doubling per failure of that peer, to 5 s).
DEFAULT_REFUSAL_DELAY = 0.25
#: Seconds an ended server's listener stays open, waiting for the connection
#: attempt that lets it exit (WinDbg: "Actual exit may be delayed until the next
#: connection attempt").
EXIT_GRACE = 5.0
#: Seconds the I/O thread leaves a direct link to the engine thread once it finds a
#: vote in progress on it (what the client sends meanwhile waits at most this long).
DIRECT_PAUSE = 0.002


class ServerState(enum.Enum):
    #: Accepting clients.
    ACTIVE = "active"
    #: Told to exit (``.endsrv``); its listener has not closed yet.
    EXIT_PENDING = "exit pending"
    #: Its listener has closed.
    DISABLED = "disabled"


@dataclass
class ServerEntry:
    """One server of ``.servers``."""

    id: int
    options: TransportOptions
    listener: Listener | None
    state: ServerState = ServerState.ACTIVE
    #: "Debugger Server", or "Process Server" for ``start_process_server``.
    kind: str = "Debugger Server"
    #: Closes a process server (set by whoever started one), for ``.endsrv``.
    closer: Callable[[], None] | None = None
    #: A server run elsewhere (a process server): its ``description``, ``port``,
    #: ``path`` and ``ended``.
    endpoint: Any = None

    @property
    def description(self) -> str:
        """The option string as ``.servers`` shows it (the password as ``*``)."""
        where = self.listener or self.endpoint
        return str(where.description) if where is not None else self.options.describe()

    @property
    def port(self) -> int | None:
        where = self.listener or self.endpoint
        return where.port if where is not None else None

    @property
    def path(self) -> str | None:
        where = self.listener or self.endpoint
        return where.path if where is not None else None

    def line(self) -> str:
        if self.endpoint is not None and self.endpoint.ended:
            self.state = ServerState.DISABLED
        if self.state is ServerState.ACTIVE:
            return f"{self.id} - {self.kind} - {self.description}"
        if self.state is ServerState.EXIT_PENDING:
            return f"{self.id} - <Disabled, exit pending>"
        return f"{self.id} - <Disabled>"


@dataclass(eq=False)
class Seat:
    """A remote client's place in the session."""

    id: int
    token: str
    proxy: DebugClient
    server: ServerEntry
    persist: float
    #: The connection's writer while linked (I/O thread only).
    writer: asyncio.StreamWriter | None = None
    #: Readable from the engine thread: False while the link is down.
    linked: bool = False
    #: When the link dropped (time.time()), while the seat waits for a rejoin.
    dropped_at: float | None = None
    replay: deque[bytes] = field(default_factory=deque)
    replay_bytes: int = 0
    #: Events waiting for this client's answer, by event id.
    answers: dict[int, Reply] = field(default_factory=dict)
    next_event: int = 1
    interest: int = 0
    #: It let an answer time out: its vote is GO until that answer arrives.
    unresponsive: bool = False
    #: Left for good (disconnected, expired, dropped): frames for it are discarded.
    gone: bool = False
    expiry: asyncio.TimerHandle | None = None
    #: The plain-socket link the engine thread may use itself (see remoting/direct.py).
    direct: DirectLink | None = None
    #: Set by the I/O thread when the direct link ends, with the reason (None: left).
    direct_done: asyncio.Future[str | None] | None = None


class _SeatOutput(OutputCallbacks):
    """A seat's output callbacks: every line becomes an ``output`` frame."""

    __slots__ = ("_hub", "_seat")

    def __init__(self, hub: ServerHub, seat: Seat) -> None:
        self._hub = hub
        self._seat = seat

    def output(self, mask: int, text: str) -> None:
        self._hub.send(self._seat, self._hub.output_frame(mask, text))


class _SeatEvents(EventCallbacks):
    """A seat's event callbacks: events become ``event`` frames; those that return a
    status wait for the remote callback's answer."""

    def __init__(self, hub: ServerHub, seat: Seat) -> None:
        self._hub = hub
        self._seat = seat

    def get_interest_mask(self) -> int:
        return self._seat.interest

    def _ask(self, method: str, *args: Any) -> Status:
        return self._hub.ask(self._seat, method, [to_wire(a) for a in args])

    def _tell(self, method: str, *args: Any) -> None:
        self._hub.send(
            self._seat, encode({"t": "event", "method": method, "args": [to_wire(a) for a in args]})
        )

    def breakpoint(self, bp: Any) -> Status:
        return self._ask("breakpoint", bp)

    def exception(self, exc: Any) -> Status:
        return self._ask("exception", exc)

    def create_thread(self, thread: Any) -> Status:
        return self._ask("create_thread", thread)

    def exit_thread(self, exit_code: int) -> Status:
        return self._ask("exit_thread", exit_code)

    def create_process(self, process: Any) -> Status:
        return self._ask("create_process", process)

    def exit_process(self, exit_code: int) -> Status:
        return self._ask("exit_process", exit_code)

    def load_module(self, module: Any) -> Status:
        return self._ask("load_module", module)

    def unload_module(self, module: Any) -> Status:
        return self._ask("unload_module", module)

    def system_error(self, error: int, level: int) -> Status:
        return self._ask("system_error", error, level)

    def session_status(self, status: Any) -> None:
        self._tell("session_status", status)

    def change_debuggee_state(self, flags: int, argument: int) -> None:
        self._tell("change_debuggee_state", flags, argument)

    def change_engine_state(self, flags: int, argument: int) -> None:
        self._tell("change_engine_state", flags, argument)

    def change_symbol_state(self, flags: int, argument: int) -> None:
        self._tell("change_symbol_state", flags, argument)


class ServerHub:
    """The debugging servers of one engine (``engine.servers``), made by the first
    ``start_server``. Methods without "I/O thread" in their docstring run on the
    engine thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.servers: list[ServerEntry] = []
        #: Process servers started here (``start_process_server``), in start order.
        self.process_servers: list[Any] = []
        self.seats: list[Seat] = []
        self.output_limit = DEFAULT_OUTPUT_LIMIT
        self.replay_limit = DEFAULT_REPLAY_LIMIT
        self.handshake_timeout = DEFAULT_HANDSHAKE_TIMEOUT
        self.refusal_delay = DEFAULT_REFUSAL_DELAY
        self._failures: dict[str, int] = {}
        self._next_seat = 1
        self._outgoing: deque[tuple[Seat, bytes]] = deque()
        self._flush_scheduled = False
        self._last_output: tuple[int, str, bytes] = (0, "", b"")
        self._closed = False
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="lindbg-server-io", daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._closed

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    # ------------------------------------------------------------ servers

    def start(self, options_text: str) -> ServerEntry:
        """Start a debugging server on ``options_text`` (``.server``)."""
        options = parse_server_options(options_text)
        entry = ServerEntry(len(self.servers), options, None)

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> None:
            await self._serve(entry, reader, writer, peer)

        future = asyncio.run_coroutine_threadsafe(
            open_listener(options, handler, handshake_timeout=self.handshake_timeout), self.loop
        )
        entry.listener = future.result()
        self.servers.append(entry)
        self._engine.shared = True
        return entry

    def add_entry(
        self, options: TransportOptions, kind: str, closer: Callable[[], None], endpoint: Any = None
    ) -> ServerEntry:
        """List a server another part of lindbg runs (a process server) in ``.servers``."""
        entry = ServerEntry(len(self.servers), options, None, kind=kind, closer=closer, endpoint=endpoint)
        self.servers.append(entry)
        return entry

    def end(self, server_id: int) -> None:
        """``.endsrv``: stop accepting; clients already connected stay."""
        entry = next((s for s in self.servers if s.id == server_id), None)
        if entry is None or entry.state is not ServerState.ACTIVE:
            raise InvalidOperationError(f"no active server with id {server_id}")
        if entry.closer is not None:
            entry.state = ServerState.DISABLED
            entry.closer()
            return
        entry.state = ServerState.EXIT_PENDING
        self.loop.call_soon_threadsafe(self._schedule_exit, entry)

    def _schedule_exit(self, entry: ServerEntry) -> None:
        """I/O thread: close an ended server at its next connection attempt, or soon."""
        self.loop.call_later(EXIT_GRACE, self._close_listener, entry)

    def _close_listener(self, entry: ServerEntry) -> None:
        """I/O thread."""
        listener = entry.listener
        if entry.state is ServerState.DISABLED or listener is None:
            return

        async def close() -> None:
            await listener.close()
            entry.state = ServerState.DISABLED

        self.loop.create_task(close())

    # ------------------------------------------------------------ listing

    def client_lines(self, local: list[DebugClient]) -> list[str]:
        """``.clients``: the local clients, then each remote one."""
        lines = local_client_lines(local)
        for seat in self.seats:
            if seat.gone:
                continue
            if seat.linked:
                lines.append(f"{seat.proxy.identity}, last active {cdb_time(seat.proxy.last_active)}")
            else:
                lines.append(f"{seat.proxy.name} (disconnected, rejoin pending)")
        return lines

    def is_seat_proxy(self, client: DebugClient) -> bool:
        return any(seat.proxy is client for seat in self.seats)

    # ------------------------------------------------------------ frames out

    def output_frame(self, mask: int, text: str) -> bytes:
        """One encoding of a piece of output, shared by every seat it goes to."""
        last_mask, last_text, data = self._last_output
        if text is last_text and mask == last_mask:
            return data
        data = encode({"t": "output", "mask": int(mask), "text": text})
        self._last_output = (mask, text, data)
        return data

    def send(self, seat: Seat, data: bytes) -> None:
        """Any thread: queue ``data`` for ``seat``'s connection, in order."""
        if seat.gone:
            return
        link = seat.direct
        if link is not None:
            with link.lock:
                link.queued += 1
                self._outgoing.append((seat, data))
        else:
            self._outgoing.append((seat, data))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
                self.loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        """I/O thread: write every queued frame to its connection."""
        self._flush_scheduled = False
        outgoing = self._outgoing
        # one write per connection per burst: a line to 50 clients is 50 writes, not
        # 50 per line
        batches: dict[Seat, list[bytes]] = {}
        while outgoing:
            seat, data = outgoing.popleft()
            batch = batches.get(seat)
            if batch is None:
                batches[seat] = [data]
            else:
                batch.append(data)
        for seat, batch in batches.items():
            link = seat.direct
            if link is None:
                stalled = self._write_batch(seat, batch)
            else:
                # the engine thread writes a vote's event itself only when nothing is
                # queued before it: the count drops once these frames are in the transport
                with link.lock:
                    stalled = self._write_batch(seat, batch)
                    link.queued -= len(batch)
            if stalled:
                self._drop_stalled(seat)

    def _write_batch(self, seat: Seat, batch: list[bytes]) -> bool:
        """I/O thread: frames to a seat's connection, or to its replay buffer; True
        when the connection holds more than ``output_limit`` unsent."""
        if seat.gone:
            return False
        writer = seat.writer
        if writer is None:
            for data in batch:
                self._keep_for_replay(seat, data)
            return False
        writer.write(batch[0] if len(batch) == 1 else b"".join(batch))
        return writer.transport.get_write_buffer_size() > self.output_limit

    def _keep_for_replay(self, seat: Seat, data: bytes) -> None:
        seat.replay.append(data)
        seat.replay_bytes += len(data)
        while seat.replay_bytes > self.replay_limit and seat.replay:
            seat.replay_bytes -= len(seat.replay.popleft())

    def _drop_stalled(self, seat: Seat) -> None:
        """I/O thread: a client that does not read its output leaves the session."""
        writer = seat.writer
        seat.writer = None
        seat.linked = False
        seat.gone = True
        if seat.direct is not None:
            self._end_direct(seat, seat.direct, None)
        if writer is not None:
            writer.transport.abort()
        self._fail_answers(seat)
        limit = self.output_limit >> 10
        self._on_engine(
            lambda: self._leave(
                seat, f"was dropped at {cdb_time()}: it did not read its output ({limit} KiB waiting)"
            )
        )

    # ------------------------------------------------------------ events out

    def ask(self, seat: Seat, method: str, args: list[Any]) -> Status:
        """Engine thread: send an event to ``seat`` and wait for its callback's vote."""
        if not seat.linked or seat.gone or not seat.interest:
            return Status.NO_CHANGE
        if seat.unresponsive:
            return Status.GO
        event_id = seat.next_event
        seat.next_event += 1
        reply = Reply()
        seat.answers[event_id] = reply
        frame = encode({"t": "event", "id": event_id, "method": method, "args": args})
        link = seat.direct
        if link is None:
            self.send(seat, frame)
            wait = None
        else:
            with link.lock:
                link.voting = True
                rest = link.write_now(frame)
            if rest:
                self.send(seat, rest)
            wait = self._vote_waiter(seat, link)
        dispatch = self._engine.dispatch
        answered = dispatch.await_reply(reply, wait)
        if link is not None:
            with link.lock:
                link.voting = False
        if not answered:
            seat.answers.pop(event_id, None)
            if self._engine.unusable_reason is not None:
                return Status.NO_CHANGE
            seat.unresponsive = True
            dispatch.warn_unanswered(f"{method} ({seat.proxy.identity})")
            return Status.GO
        value = reply.result()
        try:
            return Status(int(value))
        except ValueError:
            return Status.NO_CHANGE

    def _vote_waiter(self, seat: Seat, link: DirectLink) -> Callable[[float], None]:
        """How the engine thread waits for a vote on a direct link: on the socket and
        its inbox at once, reading the answer itself."""
        inbox = self._engine.inbox
        watched = [link.fd, inbox.fileno()]

        def take() -> None:
            with link.lock:
                if seat.direct is not link:
                    return
                self._take_direct(seat, link)
            if link.inbound or link.ended is not None:
                with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
                    self.loop.call_soon_threadsafe(self._drain_direct, seat, link)

        def wait(timeout: float) -> None:
            if link.ended is not None:
                inbox.wait(timeout, for_exit=False)
                return
            try:
                ready, _, _ = select.select(watched, [], [], timeout)
            except (OSError, ValueError):  # the I/O thread closed it meanwhile
                return
            if link.fd in ready:
                take()

        return wait

    def _answer(self, seat: Seat, event_id: int, status: int) -> None:
        """I/O thread (or the engine thread reading a direct link): a vote arrived."""
        reply = seat.answers.pop(event_id, None)
        seat.unresponsive = False
        if reply is not None:
            reply.set(status)
            inbox = self._engine.inbox
            if threading.get_ident() != inbox.owner:
                inbox.wake()

    def _fail_answers(self, seat: Seat) -> None:
        """Any thread: the link is gone; events waiting for it count as NO_CHANGE."""
        answers, seat.answers = seat.answers, {}
        for reply in answers.values():
            reply.set(int(Status.NO_CHANGE))
        if answers:
            self._engine.inbox.wake()

    # ------------------------------------------------------------ engine hand-off

    def _on_engine(self, fn: Callable[[], Any]) -> None:
        """Any thread: run ``fn`` on the engine thread, never waiting for it here."""

        def run() -> None:
            try:
                fn()
            except LindbgError:
                pass  # the engine was ended meanwhile (REENTRANT), or the seat left

        self._engine.inbox.post(run, want_reply=False)

    async def _ask_engine(self, fn: Callable[[], Any]) -> Any:
        """I/O thread: ``fn``'s result from the engine thread, awaited without blocking."""
        future: asyncio.Future[Any] = self.loop.create_future()

        def settle(value: Any, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

        def run() -> None:
            try:
                value = fn()
            except BaseException as error:  # handed to the awaiting coroutine
                self.loop.call_soon_threadsafe(settle, None, error)
            else:
                self.loop.call_soon_threadsafe(settle, value, None)

        self._engine.inbox.post(run, want_reply=False)
        return await future

    # ------------------------------------------------------------ a connection

    async def _serve(
        self, entry: ServerEntry, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        """I/O thread: one connection, from hello to close."""
        if entry.state is not ServerState.ACTIVE:
            # the connection attempt an ended server was waiting for
            self._close_listener(entry)
            return
        connection = SessionConnection(Role.SERVER, password=entry.options.password)
        try:
            hello = await asyncio.wait_for(
                self._login(entry, connection, reader, writer, peer), self.handshake_timeout
            )
        except (TimeoutError, asyncio.TimeoutError):
            self._note(f"a peer at {peer} did not log in within {self.handshake_timeout:g} s: disconnected")
            return
        except SessionProtocolError as error:
            self._note(f"a peer at {peer} broke the session protocol: {error}")
            return
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            return
        if hello is None:
            return
        direct = DirectLink.usable(writer)
        if direct:
            # from now on the link is read through a DirectLink, not the StreamReader
            # (a client sends nothing between its proof and the welcome)
            writer.transport.pause_reading()  # type: ignore[attr-defined]
        try:
            seat, welcome = await self._ask_engine(lambda: self._take_seat(entry, hello, peer))
        except LindbgError as error:
            writer.write(connection.refuse(str(error)))
            return
        writer.write(connection.welcome(**welcome))
        if direct:
            await self._serve_direct(seat, writer, connection)
            return
        self._attach(seat, writer)
        await self._read_requests(seat, connection, reader)

    async def _serve_direct(
        self, seat: Seat, writer: asyncio.StreamWriter, connection: SessionConnection
    ) -> None:
        """I/O thread: a logged-in client's messages through a DirectLink."""
        link = DirectLink(writer, connection)
        done: asyncio.Future[str | None] = self.loop.create_future()
        seat.direct, seat.direct_done = link, done
        self._attach(seat, writer)
        self.loop.add_reader(link.fd, self._readable, seat, link)
        try:
            reason = await done
        finally:
            self._end_direct(seat, link, None)
        if reason is not None and seat.writer is not None and not seat.gone:
            self._link_dropped(seat, reason)

    def _readable(self, seat: Seat, link: DirectLink) -> None:
        """I/O thread: the direct link has data (unless the engine thread takes it)."""
        if not link.lock.acquire(blocking=False):
            return  # the engine thread is reading it; what is not an answer comes back
        try:
            if link.voting:
                # the engine thread reads the answer itself: stop competing for it for
                # a moment, by our own clock (waking us after each vote would cost the
                # engine thread a write per hit)
                self.loop.remove_reader(link.fd)
                link.paused = True
                self.loop.call_later(DIRECT_PAUSE, self._watch_direct, seat, link)
                return
            self._take_direct(seat, link)
        finally:
            link.lock.release()
        self._drain_direct(seat, link)

    def _watch_direct(self, seat: Seat, link: DirectLink) -> None:
        """I/O thread: watch a paused link again."""
        if link.paused and seat.direct is link and link.ended is None:
            link.paused = False
            self.loop.add_reader(link.fd, self._readable, seat, link)

    def _take_direct(self, seat: Seat, link: DirectLink) -> None:
        """Either thread, under the link's lock: answers settle their events at once;
        the rest waits in order for the I/O thread."""
        for message in link.read():
            if message["t"] == "answer":
                self._answer(seat, message["id"], message["status"])
            else:
                link.inbound.append(message)

    def _drain_direct(self, seat: Seat, link: DirectLink) -> None:
        """I/O thread: act on what the link brought, in order; end it if it ended."""
        inbound = link.inbound
        while inbound:
            if not self._handle(seat, inbound.popleft()):
                self._end_direct(seat, link, None)
                return
        if link.ended is not None:
            self._end_direct(seat, link, link.ended)

    def _end_direct(self, seat: Seat, link: DirectLink, reason: str | None) -> None:
        """I/O thread: stop reading the direct link and release its descriptor."""
        if seat.direct is link:
            seat.direct = None
        with contextlib.suppress(Exception):
            self.loop.remove_reader(link.fd)
        link.close()
        done = seat.direct_done
        if done is not None and not done.done():
            done.set_result(reason)

    async def _login(
        self,
        entry: ServerEntry,
        connection: SessionConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
    ) -> dict[str, Any] | None:
        """I/O thread: hello, challenge, proof; the hello when the proof is right."""
        hello = await self._next_message(connection, reader, "hello")
        writer.write(connection.challenge())
        auth = await self._next_message(connection, reader, "auth")
        host = peer.rsplit(":", 1)[0]
        if connection.check_auth(auth):
            self._failures.pop(host, None)
            return hello
        failures = self._failures[host] = self._failures.get(host, 0) + 1
        await asyncio.sleep(min(self.refusal_delay * 2 ** (failures - 1), 5.0))
        writer.write(connection.refuse("wrong password"))
        self._note(f"a client at {peer} gave a wrong password: disconnected")
        return None

    async def _next_message(
        self, connection: SessionConnection, reader: asyncio.StreamReader, wanted: str
    ) -> dict[str, Any]:
        while True:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("the peer closed the connection")
            messages = connection.receive_data(data)
            if messages:
                # the state machine admits nothing but ``wanted`` here; a peer that
                # sends more before our answer breaks the login
                if len(messages) > 1:
                    raise SessionProtocolError(f"'{messages[1]['t']}' sent before the server answered")
                return messages[0]

    def _take_seat(self, entry: ServerEntry, hello: dict[str, Any], peer: str) -> tuple[Seat, dict[str, Any]]:
        """Engine thread: a new seat for a logged-in client, or its old one back."""
        from lindbg.engine.client import DebugClient

        name = f"{hello['host']}\\{hello['user']}"
        seat = self._pending_seat(hello.get("rejoin"), name)
        rejoined = seat is not None
        if seat is None:
            proxy = DebugClient(self._engine)
            proxy.name = name
            seat = Seat(self._next_seat, secrets.token_hex(16), proxy, entry, entry.options.persist)
            self._next_seat += 1
            proxy.set_output_callbacks(_SeatOutput(self, seat))
            self.seats.append(seat)
        else:
            if seat.expiry is not None:
                seat.expiry.cancel()
                seat.expiry = None
            seat.dropped_at = None
        seat.proxy.transport = peer
        seat.proxy.last_active = time.time()
        self._engine.shared = True
        verb = "rejoined" if rejoined else "connected"
        self._engine.dispatch.output(OutputMask.NORMAL, f"{seat.proxy.identity} {verb} at {cdb_time()}\n")
        welcome = {
            "id": seat.id,
            "identity": seat.proxy.identity,
            "token": seat.token,
            "persist": float(seat.persist),
            "status": int(self._engine.status),
            "prompt": self.prompt(seat.proxy),
            "rejoined": rejoined,
        }
        return seat, welcome

    def _pending_seat(self, token: Any, name: str) -> Seat | None:
        for seat in self.seats:
            if seat.gone or seat.linked or seat.dropped_at is None:
                continue
            if (isinstance(token, str) and secrets.compare_digest(token, seat.token)) or (
                token is None and seat.proxy.name == name
            ):
                return seat
        return None

    def _attach(self, seat: Seat, writer: asyncio.StreamWriter) -> None:
        """I/O thread: link ``seat`` to a connection and replay what it missed."""
        self._flush()  # frames queued before the welcome (the "connected" line) go first
        for data in seat.replay:
            writer.write(data)
        seat.replay.clear()
        seat.replay_bytes = 0
        seat.writer = writer
        seat.linked = True
        self._flush()

    async def _read_requests(
        self, seat: Seat, connection: SessionConnection, reader: asyncio.StreamReader
    ) -> None:
        """I/O thread: a logged-in client's messages until it leaves or its link drops."""
        reason = "lost its connection"
        try:
            while True:
                data = await reader.read(65536)
                messages = connection.receive_data(data)
                if not data:
                    break
                for message in messages:
                    if not self._handle(seat, message):
                        return
        except SessionProtocolError as error:
            reason = f"broke the session protocol ({error})"
        except (ConnectionError, OSError):
            pass
        finally:
            if seat.writer is not None and not seat.gone:
                self._link_dropped(seat, reason)

    def _handle(self, seat: Seat, message: dict[str, Any]) -> bool:
        """I/O thread: act on one message; False when the client has left."""
        kind = message["t"]
        if kind == "call":
            self._on_engine(lambda: self._run_call(seat, message["id"], message["method"], message["args"]))
        elif kind == "answer":
            self._answer(seat, message["id"], message["status"])
        elif kind == "interest":
            mask = message["mask"]
            self._on_engine(lambda: self._set_interest(seat, mask))
        elif kind == "interrupt":
            with contextlib.suppress(LindbgError):
                self._engine.set_interrupt()
        elif kind == "ping":
            self.send(seat, encode({"t": "pong", "id": message["id"]}))
        elif kind == "disconnect":
            self._unlink(seat)
            seat.gone = True
            self._on_engine(lambda: self._leave(seat, f"disconnected at {cdb_time()}"))
            return False
        return True

    def _unlink(self, seat: Seat) -> None:
        """I/O thread: close the seat's connection."""
        writer, seat.writer = seat.writer, None
        seat.linked = False
        self._fail_answers(seat)
        if seat.direct is not None:
            self._end_direct(seat, seat.direct, None)
        if writer is not None:
            writer.close()

    def _link_dropped(self, seat: Seat, reason: str) -> None:
        """I/O thread: keep the seat for ``persist`` seconds, or let it go."""
        self._unlink(seat)
        if seat.persist <= 0:
            seat.gone = True
            self._on_engine(lambda: self._leave(seat, f"{reason} at {cdb_time()}"))
            return
        seat.dropped_at = time.time()
        seat.expiry = self.loop.call_later(seat.persist, self._expire, seat)
        persist = seat.persist
        self._on_engine(
            lambda: self._engine.dispatch.output(
                OutputMask.NORMAL,
                f"{seat.proxy.identity} {reason} at {cdb_time()}; its place is kept for {persist:g} s\n",
                exclude=seat.proxy,
            )
        )

    def _expire(self, seat: Seat) -> None:
        """I/O thread: a dropped seat's time is up."""
        if seat.linked or seat.gone:
            return
        seat.gone = True
        self._on_engine(lambda: self._leave(seat, f"disconnected at {cdb_time()}"))

    def _leave(self, seat: Seat, how: str) -> None:
        """Engine thread: remove a seat's client from the engine and tell the others."""
        seat.gone = True
        if seat in self.seats:
            self.seats.remove(seat)
        proxy = seat.proxy
        dispatch = self._engine.dispatch
        proxy.enabled = False
        dispatch.remove_client(proxy)
        dispatch.output(OutputMask.NORMAL, f"{proxy.identity} {how}\n")

    def _set_interest(self, seat: Seat, mask: int) -> None:
        """Engine thread: the remote client (re)registered its event callbacks."""
        seat.interest = int(mask)
        seat.proxy.set_event_callbacks(_SeatEvents(self, seat) if mask else None)

    # ------------------------------------------------------------ calls

    def _run_call(self, seat: Seat, call_id: int, method: str, args: list[Any]) -> None:
        """Engine thread: run a remote client's API call; its result follows its output."""
        from lindbg.remoting.calls import run_call

        try:
            value = run_call(self, seat.proxy, method, args)
            frame = {"t": "result", "id": call_id, "value": to_wire(value)}
            data = encode(frame)
        except LindbgError as error:
            data = encode({"t": "error", "id": call_id, "kind": type(error).__name__, "message": str(error)})
        except (TypeError, ValueError, KeyError, OverflowError) as error:
            message = f"{method}: bad arguments ({error})"
            data = encode({"t": "error", "id": call_id, "kind": "InvalidOperationError", "message": message})
        except Exception as error:  # the server outlives a fault in one call
            message = f"{method} failed on the server: {type(error).__name__}: {error}"
            data = encode({"t": "error", "id": call_id, "kind": "LindbgError", "message": message})
        self.send(seat, data)
        if method == "execute" and self.quitting(seat.proxy):
            self.quit(f"the session was ended by {seat.proxy.identity}")

    def prompt(self, client: DebugClient) -> str:
        """Engine thread: the prompt ``client`` would show now."""
        processor = self._engine.processor
        prompt = getattr(processor, "prompt", None)
        return str(prompt(client)) if callable(prompt) else "> "

    def quitting(self, client: DebugClient) -> bool:
        processor = self._engine.processor
        quitting = getattr(processor, "quitting", None)
        return bool(quitting(client)) if callable(quitting) else False

    def quit(self, message: str) -> None:
        """Engine thread: a remote `q` ended the debugger: every client leaves."""
        for client in list(self._engine.dispatch.clients):
            if not self.is_seat_proxy(client):
                self._engine.inbox_for(client.owner).request_exit()
        self.close(message)

    # ------------------------------------------------------------ shutdown

    def close(self, message: str = "the debugging server exited") -> None:
        """Any thread: say ``bye`` to every client, close every listener, stop the loop."""
        if self._closed:
            return
        self._closed = True

        async def shut() -> None:
            self._flush()
            for seat in list(self.seats):
                writer = seat.writer
                seat.gone = True
                if writer is not None:
                    with contextlib.suppress(Exception):
                        writer.write(encode({"t": "bye", "message": message}))
                        writer.close()
            for entry in self.servers:
                if entry.listener is not None and entry.state is not ServerState.DISABLED:
                    with contextlib.suppress(Exception):
                        await entry.listener.close()
                entry.state = ServerState.DISABLED
            for seat in self.seats:
                if seat.writer is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(seat.writer.wait_closed(), 1.0)
            # the connections' tasks end here, not half-run when the loop stops
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        try:
            future = asyncio.run_coroutine_threadsafe(shut(), self.loop)
            future.result(timeout=5.0)
        except Exception:
            pass  # best effort: the process is leaving
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=2.0)

    def _note(self, text: str) -> None:
        """Any thread: a line for the server's own users (never with a secret in it)."""
        self._on_engine(lambda: self._engine.dispatch.output(OutputMask.WARNING, f"lindbg: {text}\n"))


def hub_of(engine: Engine) -> ServerHub:
    """The engine's server hub, made on first use (engine thread)."""
    hub = engine.servers
    if hub is None or hub.closed:
        hub = engine.servers = ServerHub(engine)
    return hub
