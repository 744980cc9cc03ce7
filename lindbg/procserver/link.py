"""The client end of one GDB remote serial protocol connection, for lindbg's smart client.

The engine runs on the debugger's machine and reaches a process server
(``lindbgsrv``, or a real ``gdbserver --multi``) through an :class:`RspLink`:
blocking calls, made from one thread (the engine's), that send a packet and
return its reply. Framing, acks, escapes and run-length encoding belong to
``lindbg.protocols.rsp``; the byte stream to ``lindbg.transports.endpoints``.
Formats as the GDB manual ("Remote Protocol", "Stop Reply Packets",
"General Query Packets", "Host I/O Packets") gives them.

Threads: every method belongs to the engine thread, except :meth:`RspLink.interrupt`,
:meth:`RspLink.wake` and :meth:`RspLink.close`, which any thread may call. A send
lock covers the codec and every write, so the 0x03 of an interrupt never lands
inside a packet (nor between the codec queueing an ack and its write).

Connecting (:meth:`RspLink.connect`), in this order: ``qSupported`` (our
features: multiprocess, swbreak, hwbreak, vContSupported, no-resumed,
``xmlRegisters=i386``), ``QStartNoAckMode`` when offered, ``!``, ``Hgp0.0``,
``?``, then the target description. gdbserver 13 asserts and exits when
``qXfer:features`` comes before a packet that selects a thread, hence ``Hg``
and ``?`` first.

Decisions:

* All-stop only. :meth:`~RspLink.resume` sends a packet whose reply is a stop
  reply that comes later; until :meth:`~RspLink.wait_stop` returns it, the link
  is *running* and :meth:`~RspLink.request` refuses (``InvalidOperationError``):
  interrupt first.
* ``O<hex>`` packets (console output: gdbserver sends them during ``qRcmd``, a
  stub may while the target runs) are decoded into ``console_output`` and
  never taken for a reply; neither is ``OK``, which is no hex. ``%``
  notifications are kept in ``notifications``.
* Any failure of the connection (end of stream, a reply that does not come in
  time, a broken framing, a failed write) is a :class:`LinkLostError`, and the
  link is dead: the stream is closed and every later call raises the same at
  once. A request cut by an exception of the caller's (KeyboardInterrupt) kills
  the link too: its reply would be taken for the next one's.
* Ack mode (``connect(no_ack=False)``, or a server without no-ack mode): a
  damaged reply is naked by the codec and comes again; the server's ``-``
  makes the codec queue our packet again; when no ``+`` comes within
  ``ack_timeout`` seconds the packet is sent again, at most ``MAX_RESENDS``
  times. As gdb does, a packet that arrives while our own still waits for its
  ``+`` is taken for an old reply and dropped (the resend brings a new one).
* ``wake()`` and ``wait_stop``: a stream with a ``poll_fd`` (tcp, npipe) is
  waited on with ``poll`` together with an eventfd that ``wake`` writes. A TLS
  stream or a serial line may hold data the descriptor does not show, so one
  reader thread per link does the stream's ``recv`` and hands the chunks over
  a queue, which ``wake`` also writes. A ``wake()`` while no ``wait_stop`` runs
  is kept: the next ``wait_stop`` returns None at once (no wake is lost), after
  handing out a stop reply that is already there.
* The target description: when the server offers ``qXfer:features:read``,
  ``target.xml`` and its includes are read whole; otherwise the layout is
  ``RegisterLayout.default()``. ``gdbserver --multi`` has no description before
  it has a process (``E01``): then ``layout`` is read on first use (after
  ``vRun`` or ``vAttach``); :meth:`~RspLink.refresh_layout` reads it again.
* Memory: ``x``/``X`` (binary) when a zero-length probe answers ``OK``, else
  ``m``/``M`` (gdbserver 13 has no ``x``). Pieces are sized so that even a
  reply of escaped bytes fits the server's PacketSize. A read returns the bytes
  up to the first unreadable one: a server that answers ``E`` for a piece
  that is partly readable (gdbserver) is asked again page by page.
* Registers: ``p``/``P`` when the server has them, else ``g``/``G`` (gdbserver
  answers ``p`` and ``P`` with an empty reply): the fallback is remembered.
* Stop replies are parsed by the pure :func:`parse_stop`; register values and
  reason values stay as the server sent them (``exec``'s path in hex,
  ``fork``'s child as a thread id, a watchpoint's address in hex).
"""

from __future__ import annotations

import codecs
import enum
import errno
import math
import os
import queue
import re
import select
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

from lindbg.arch.x86_64_gdb import RegisterLayout
from lindbg.errors import InvalidOperationError, LindbgError, MemoryAccessError, TargetAccessError
from lindbg.procserver.auth import (
    AUTH_FEATURE,
    WRONG_PASSWORD,
    WRONG_PASSWORD_DELAY,
    login_request,
    welcome_is_genuine,
)
from lindbg.protocols.rsp import (
    MAX_PACKET,
    Ack,
    BadPacket,
    Closed,
    Event,
    LocalProtocolError,
    Nak,
    Notification,
    Packet,
    PayloadError,
    RemoteProtocolError,
    Role,
    RspConnection,
    hex_decode,
    hex_encode,
)
from lindbg.transports import endpoints
from lindbg.transports.endpoints import Stream
from lindbg.transports.options import TransportOptions, parse_client_options

__all__ = [
    "BadReplyError",
    "LinkLostError",
    "NegotiationError",
    "RemoteError",
    "RemoteFileError",
    "RemoteFileNotFoundError",
    "RspLink",
    "RspLinkError",
    "StopReply",
    "UnsupportedPacketError",
    "parse_stop",
]

#: What we tell the server we understand (qSupported).
CLIENT_FEATURES = (
    b"multiprocess+;swbreak+;hwbreak+;vContSupported+;no-resumed+;xmlRegisters=i386;lindbg-stops+"
)
#: The PacketSize assumed when the server gives none (gdb's default is smaller; the
#: manual's minimum for a g packet of x86-64 fits).
DEFAULT_PACKET_SIZE = 4096
#: Sends of one packet after the first when its ``+`` does not come (ack mode).
MAX_RESENDS = 3
#: Seconds to wait for a ``+`` before sending a packet again (gdb's remotetimeout is 2).
ACK_TIMEOUT = 2.0
#: Room left in a packet for the command or reply letters, numbers and framing.
_MARGIN = 64
_PAGE = 4096
#: ``x`` requests a large read keeps in flight (no-ack mode).
_READ_AHEAD = 4
#: Seconds to wait for each reply of a large read.
_READ_TIMEOUT = 10.0
_OUTPUT = re.compile(rb"O(?:[0-9a-fA-F]{2})+")
_PACKET_NAME = re.compile(rb"[A-Za-z]+(?::[A-Za-z][A-Za-z0-9_.-]*)*")
_HEX_NUMBER = re.compile(rb"[0-9a-fA-F]+")
#: The T-reply field in which lindbgsrv sends a ``lindbg-stops+`` client the
#: stopped thread's ``struct user_regs_struct`` (216 bytes, hex): one field, not 27.
GENERAL_REGISTERS_FIELD = b"lindbg-regs"
_THREAD = re.compile(rb"(?:p(-1|[0-9a-fA-F]+)\.)?(-1|[0-9a-fA-F]+)")
#: gdb's File-I/O errno values that differ from Linux's ("Errno Values").
_GDB_ERRNO_TO_HOST = {91: errno.ENAMETOOLONG, 88: errno.ENOSYS}
_GDB_ENOENT = 2
#: The stop reasons a T reply may carry (the manual's list, and gdbserver's).
STOP_REASONS = frozenset(
    {
        "watch",
        "rwatch",
        "awatch",
        "syscall_entry",
        "syscall_return",
        "library",
        "replaylog",
        "swbreak",
        "hwbreak",
        "fork",
        "vfork",
        "vforkdone",
        "exec",
        "clone",
        "create",
        "no-resumed",
    }
)


# ---------------------------------------------------------------- errors


class RspLinkError(TargetAccessError):
    """Base of this module's errors: talking to the process server failed."""


class LinkLostError(RspLinkError):
    """The connection is gone (end of stream, no reply in time, broken framing):
    the link is dead and every later call raises this again."""


class NegotiationError(RspLinkError):
    """Connecting worked but the server is not one we can use (no extended mode,
    a malformed qSupported reply or target description)."""


class RemoteError(RspLinkError):
    """The server answered a request with ``E<code>``; ``code`` is its number
    (None for an ``E.text`` reply) and ``packet`` the request's name."""

    def __init__(self, message: str, packet: str, code: int | None = None) -> None:
        super().__init__(message)
        self.packet = packet
        self.code = code


class UnsupportedPacketError(RspLinkError):
    """The server does not support a request (an empty reply, or a qXfer object
    it did not offer); ``packet`` names it."""

    def __init__(self, message: str, packet: str) -> None:
        super().__init__(message)
        self.packet = packet


class BadReplyError(RspLinkError):
    """A reply does not parse as what the request (or a stop) expects."""


class RemoteFileError(RspLinkError):
    """A host I/O (``vFile``) operation failed on the server's machine.

    ``gdb_errno`` is the number in the reply (gdb's File-I/O numbering),
    ``errno`` the host's for it (None for gdb's EUNKNOWN), ``path`` the file.
    """

    def __init__(self, message: str, path: str, gdb_errno: int) -> None:
        super().__init__(message)
        self.path = path
        self.gdb_errno = gdb_errno
        self.errno: int | None = _host_errno(gdb_errno)


class RemoteFileNotFoundError(RemoteFileError):
    """The remote file does not exist (ENOENT)."""


def _host_errno(gdb_errno: int) -> int | None:
    if gdb_errno in _GDB_ERRNO_TO_HOST:
        return _GDB_ERRNO_TO_HOST[gdb_errno]
    return gdb_errno if 0 < gdb_errno <= 30 else None


def _errno_text(gdb_errno: int) -> str:
    host = _host_errno(gdb_errno)
    if host is None:
        return f"error {gdb_errno}"
    return os.strerror(host).lower()


# ---------------------------------------------------------------- stop replies


@dataclass(frozen=True)
class StopReply:
    """A stop reply, parsed (:func:`parse_stop`).

    ``kind``: ``"signal"`` (``S``/``T``), ``"exited"`` (``W``, ``exit_code``),
    ``"killed"`` (``X``, by ``signal``), ``"no-resumed"`` (``N``), ``"output"``
    (``O``: the decoded bytes in ``reason_value``) or ``"thread-exited"``
    (``w``, with ``QThreadEvents``). ``signal`` is gdb's number (5 is SIGTRAP).
    ``pid``/``tid`` come from ``thread:`` (or ``process:`` of W/X; the thread
    of ``w``); ``-1`` means all. ``registers`` holds the expedited registers
    (gdb regnum -> raw little-endian bytes; ``xx`` ones are left out).
    ``reason`` is the first stop reason given (``swbreak``, ``watch``, ``exec``
    ...) and ``reason_value`` its value as sent, None when empty.
    """

    kind: str
    signal: int = 0
    pid: int | None = None
    tid: int | None = None
    registers: dict[int, bytes] = field(default_factory=dict)
    reason: str | None = None
    reason_value: bytes | None = None
    exit_code: int | None = None
    #: ``lindbg-regs``: the thread's ``struct user_regs_struct``, raw (lindbgsrv only).
    general: bytes | None = None


def parse_thread_id(text: bytes) -> tuple[int | None, int]:
    """``(pid, tid)`` of a thread id, ``p<pid>.<tid>`` or ``<tid>`` (hex, ``-1`` for
    all, 0 for any); pid None for the plain form.

    Raises:
        BadReplyError: not a thread id.
    """
    match = _THREAD.fullmatch(text)
    if match is None:
        raise BadReplyError(f"bad thread id {text[:40]!r}")
    pid_text, tid_text = match.groups()
    pid = None if pid_text is None else -1 if pid_text == b"-1" else int(pid_text, 16)
    tid = -1 if tid_text == b"-1" else int(tid_text, 16)
    return pid, tid


def format_thread_id(pid: int | None, tid: int) -> bytes:
    """A thread id for ``H``/``vCont``: ``p<pid>.<tid>`` with a pid, ``<tid>`` without."""
    tid_text = b"-1" if tid == -1 else b"%x" % tid
    if pid is None:
        return tid_text
    return (b"p-1" if pid == -1 else b"p%x" % pid) + b"." + tid_text


def _hex_byte(text: bytes, payload: bytes) -> int:
    if len(text) != 2 or _HEX_NUMBER.fullmatch(text) is None:
        raise BadReplyError(f"bad stop reply {payload[:40]!r}: {text!r} is not a hex byte")
    return int(text, 16)


def _process_tail(rest: bytes, payload: bytes) -> int | None:
    """The pid of a ``W``/``X`` reply's ``;process:<pid>``, if any."""
    pid = None
    for part in rest.split(b";"):
        if not part:
            continue
        name, sep, value = part.partition(b":")
        if name == b"process" and sep and _HEX_NUMBER.fullmatch(value):
            pid = int(value, 16)
        elif name == b"process":
            raise BadReplyError(f"bad stop reply {payload[:40]!r}: bad process id")
    return pid


def parse_stop(payload: bytes) -> StopReply:
    """A stop reply (``T``, ``S``, ``W``, ``X``, ``N``, ``O``, ``w``), parsed.

    Run-length encoding is the codec's business: ``payload`` is decoded.

    Raises:
        BadReplyError: ``payload`` is no stop reply (an ``E`` reply, ``OK``,
            garbage).
    """
    head, body = payload[:1], payload[1:]
    if head == b"S":
        return StopReply("signal", signal=_hex_byte(body, payload))
    if head == b"T":
        return _parse_t(body, payload)
    if head in (b"W", b"X"):
        number, _, rest = body.partition(b";")
        value = _wide_hex(number, payload)
        pid = _process_tail(rest, payload)
        if head == b"W":
            return StopReply("exited", pid=pid, exit_code=value)
        return StopReply("killed", signal=value, pid=pid)
    if head == b"N" and not body:
        return StopReply("no-resumed")
    if head == b"O" and _OUTPUT.fullmatch(payload):
        return StopReply("output", reason_value=hex_decode(body))
    if head == b"w":
        number, sep, thread = body.partition(b";")
        if not sep:
            raise BadReplyError(f"bad stop reply {payload[:40]!r}: no thread")
        pid, tid = parse_thread_id(thread)
        return StopReply("thread-exited", pid=pid, tid=tid, exit_code=_wide_hex(number, payload))
    raise BadReplyError(f"not a stop reply: {payload[:40]!r}")


def _wide_hex(text: bytes, payload: bytes) -> int:
    if _HEX_NUMBER.fullmatch(text) is None:
        raise BadReplyError(f"bad stop reply {payload[:40]!r}: {text[:20]!r} is not hex")
    return int(text, 16)


def _parse_t(body: bytes, payload: bytes) -> StopReply:
    signo = _hex_byte(body[:2], payload)
    pid: int | None = None
    tid: int | None = None
    registers: dict[int, bytes] = {}
    reason: str | None = None
    reason_value: bytes | None = None
    general: bytes | None = None
    for part in body[2:].split(b";"):
        if not part:
            continue
        name, sep, value = part.partition(b":")
        if not sep:
            raise BadReplyError(f"bad stop reply {payload[:40]!r}: {part[:20]!r} has no ':'")
        if _HEX_NUMBER.fullmatch(name):
            if b"x" in value or b"X" in value:
                continue  # unavailable
            try:
                registers[int(name, 16)] = hex_decode(value)
            except PayloadError as error:
                raise BadReplyError(f"bad stop reply {payload[:40]!r}: register {name!r}: {error}") from None
        elif name == b"thread":
            pid, tid = parse_thread_id(value)
        elif name == GENERAL_REGISTERS_FIELD:
            try:
                general = hex_decode(value)
            except PayloadError as error:
                raise BadReplyError(f"bad stop reply {payload[:40]!r}: {name!r}: {error}") from None
        elif reason is None:
            text = name.decode("ascii", "replace")
            if text in STOP_REASONS:
                reason, reason_value = text, value or None
        # anything else ("core", a reason after the first) is ignored, as the manual says
    return StopReply(
        "signal",
        signal=signo,
        pid=pid,
        tid=tid,
        registers=registers,
        reason=reason,
        reason_value=reason_value,
        general=general,
    )


# ---------------------------------------------------------------- the link


class _Wake(enum.Enum):
    WAKE = enum.auto()


_WAKE = _Wake.WAKE
_QueueItem = bytes | BaseException | _Wake


def _packet_name(payload: bytes) -> str:
    """A short name of a request for messages (never its data, a path's hex)."""
    if payload[:1] in (b"q", b"Q", b"v"):
        match = _PACKET_NAME.match(payload)
        if match is not None:
            return match[0].decode("ascii")
    return payload[:1].decode("ascii", "replace") or "(empty)"


def _parse_features(reply: bytes) -> dict[str, str | bool]:
    features: dict[str, str | bool] = {}
    for item in reply.decode("ascii", "replace").split(";"):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if sep:
            features[name] = value
        elif item.endswith("+"):
            features[item[:-1]] = True
        elif item.endswith("-"):
            features[item[:-1]] = False
        # "name?" (support to be probed) is left out: .get() gives None, unknown
    return features


class RspLink:
    """One blocking client connection to a process server; see the module docstring.

    Use :meth:`connect`; the constructor takes a connected stream and does not
    negotiate (``features`` empty, ack mode, the default layout).

    Attributes:
        label: the stream's description (``tcp 127.0.0.1:1234``), the prefix of messages.
        features: the server's qSupported answer: ``name+`` True, ``name-`` False,
            ``name=value`` the text.
        packet_size: the server's PacketSize (the largest packet it takes).
        initial_stop: the ``?`` reply at connect time (``W00``: no process yet).
        console_output: text of the ``O`` packets received, in order.
        notifications: payloads of the ``%`` notifications received.
        ack_timeout: seconds to wait for a ``+`` before resending (ack mode).
    """

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self.label = stream.label
        self.features: dict[str, str | bool] = {}
        self.packet_size = DEFAULT_PACKET_SIZE
        self.initial_stop = b""
        self.console_output: list[str] = []
        self.notifications: list[bytes] = []
        self.ack_timeout = ACK_TIMEOUT
        self._codec = RspConnection(Role.CLIENT)
        self._events: deque[Event] = deque()
        self._lock = threading.Lock()  # the codec and every write
        self._state = threading.Lock()  # _dead, _busy, closing
        self._dead: str | None = None
        self._busy = 0
        self._released = False
        self._running = False
        self._sent_at = 0.0
        self._resends = 0
        self._output = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._layout: RegisterLayout | None = RegisterLayout.default()
        self._binary_read: bool | None = None
        self._binary_write: bool | None = None
        self._p_supported: bool | None = None
        self._big_p_supported: bool | None = None
        self._fs_pid: int | None = None
        self._wake_pending = False
        self._poll_fd = stream.poll_fd()
        self._wake_fd: int | None = None
        self._queue: queue.Queue[_QueueItem] | None = None
        self._reader: threading.Thread | None = None
        if self._poll_fd is not None:
            self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._poller = select.poll()
            self._poller.register(self._poll_fd, select.POLLIN)
            self._wake_poller = select.poll()
            self._wake_poller.register(self._poll_fd, select.POLLIN)
            self._wake_poller.register(self._wake_fd, select.POLLIN)
        else:
            self._queue = queue.Queue()
            self._reader = threading.Thread(target=self._read_forever, name="rsp-link-reader", daemon=True)
            self._reader.start()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "running" if self._running else "stopped"
        return f"<RspLink {self.label} {state}>"

    # ------------------------------------------------------------ connecting

    @classmethod
    def connect(
        cls, options: str | TransportOptions, *, timeout: float = 10.0, no_ack: bool = True
    ) -> RspLink:
        """Connect to a process server and negotiate (see the module docstring).

        ``timeout`` bounds the connect and each packet of the negotiation;
        ``no_ack=False`` stays in ack mode even when the server offers no-ack.

        Raises:
            TransportError: the connection could not be made (or bad options).
            NegotiationError: the server is not an extended-remote RSP server we can use.
            LinkLostError: the connection failed during the negotiation.
        """
        if isinstance(options, str):
            options = parse_client_options(options)
        stream = endpoints.connect(options, timeout)
        link = cls(stream)
        try:
            link._negotiate(timeout, no_ack, options.password)
        except LindbgError:
            link.close()
            raise
        except BaseException as error:
            link.close()
            if isinstance(error, Exception):
                raise NegotiationError(f"{link.label}: negotiation failed: {error}") from error
            raise
        return link

    def _negotiate(self, timeout: float, no_ack: bool, password: str | None) -> None:
        reply = self.request(b"qSupported:" + CLIENT_FEATURES, timeout=timeout)
        if reply.startswith(b"E"):
            raise NegotiationError(f"{self.label}: the server refused qSupported ({reply[:20]!r})")
        self.features = _parse_features(reply)
        self._log_in(password, timeout)
        size = self.features.get("PacketSize")
        if isinstance(size, str):
            try:
                self.packet_size = int(size, 16)
            except ValueError:
                raise NegotiationError(f"{self.label}: bad PacketSize {size[:20]!r}") from None
            if self.packet_size < 2 * _MARGIN:
                raise NegotiationError(f"{self.label}: PacketSize {self.packet_size} is too small")
        self._codec.peer_max_packet = self.packet_size
        self._codec.max_packet = max(MAX_PACKET, 2 * self.packet_size + _MARGIN)
        offered = self.features.get("QStartNoAckMode") is True
        if no_ack and offered and self.request(b"QStartNoAckMode", timeout=timeout) == b"OK":
            # The OK has been read and its '+' written (gdb's rule for the client).
            with self._lock:
                self._codec.start_no_ack()
        reply = self.request(b"!", timeout=timeout)
        if reply != b"OK":
            raise NegotiationError(
                f"{self.label}: the server is not an extended-remote server ('!' answered {reply[:20]!r})"
            )
        thread = b"p0.0" if self.features.get("multiprocess") is True else b"0"
        # gdbserver answers E01 while it has no process: harmless, '?' tells.
        self.request(b"Hg" + thread, timeout=timeout)
        self.initial_stop = self.request(b"?", timeout=timeout)
        if self.features.get("qXfer:features:read") is not True:
            self._layout = RegisterLayout.default()
            return
        try:
            self._layout = self._read_layout()
        except RemoteError:
            if self.initial_stop[:1] in (b"T", b"S"):
                raise
            self._layout = None  # no process yet (gdbserver --multi): read on first use

    def _log_in(self, password: str | None, timeout: float) -> None:
        """The password login (``lindbg.procserver.auth``) when either side has one."""
        snonce = self.features.get(AUTH_FEATURE)
        if password is None:
            if snonce is not None:
                raise NegotiationError(f"{self.label}: the process server has a password: add password=...")
            return
        if not isinstance(snonce, str):
            raise NegotiationError(
                f"{self.label}: the process server asks no password, so it cannot prove it is the "
                "server meant: connect without password=, or give the server one"
            )
        try:
            packet, cnonce = login_request(password, snonce)
        except PayloadError:
            raise NegotiationError(f"{self.label}: the server's login nonce is not hex") from None
        reply = self.request(packet, timeout=timeout + WRONG_PASSWORD_DELAY)
        if reply == WRONG_PASSWORD:
            raise NegotiationError(f"{self.label}: wrong password")
        if not welcome_is_genuine(password, snonce, cnonce, reply):
            raise NegotiationError(f"{self.label}: the server did not prove that it knows the password")

    # ------------------------------------------------------------ state

    @property
    def failure(self) -> str | None:
        """Why the link is dead (closed, or lost and how); None while it works."""
        return self._dead

    @property
    def closed(self) -> bool:
        """Whether the link is closed or lost (nothing can be sent any more)."""
        return self._dead is not None

    @property
    def running(self) -> bool:
        """Whether a ``resume`` waits for its stop reply."""
        return self._running

    @property
    def no_ack(self) -> bool:
        """Whether no-ack mode is on."""
        return not self._codec.ack_mode

    @property
    def layout(self) -> RegisterLayout:
        """The register layout of the server's target description (read on first
        use when the server had no process at connect time).

        Raises:
            RemoteError: the server still has no description to give.
        """
        if self._layout is None:
            self._layout = self._read_layout()
        return self._layout

    def refresh_layout(self) -> RegisterLayout:
        """Read the target description again (after a ``vRun`` or ``vAttach``)."""
        if self.features.get("qXfer:features:read") is True:
            self._layout = self._read_layout()
        return self.layout

    def _read_layout(self) -> RegisterLayout:
        xml = self.read_object("features", "target.xml")

        def fetch(href: str) -> bytes | None:
            try:
                return self.read_object("features", href)
            except RemoteError:
                return None

        try:
            return RegisterLayout.from_xml(xml, fetch=fetch)
        except ValueError as error:
            raise NegotiationError(f"{self.label}: the server's target description: {error}") from None

    def close(self) -> None:
        """Close the stream; idempotent, any thread (a wait in progress then ends
        with ``LinkLostError``)."""
        with self._state:
            if self._dead is None:
                self._dead = f"{self.label}: the link is closed"
            busy = self._busy > 0
        if busy:
            self._stream.shutdown()  # wakes the engine thread, which finishes the close
        else:
            self._release()

    def _release(self) -> None:
        with self._state:
            if self._released:
                return
            self._released = True
        self._stream.close()
        with self._lock:
            self._codec.close()
        if self._wake_fd is not None:
            os.close(self._wake_fd)
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(5.0)

    def __enter__(self) -> RspLink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _check(self) -> None:
        if self._dead is not None:
            raise LinkLostError(self._dead)

    def _lose(self, reason: str) -> LinkLostError:
        """Mark the link dead for ``reason`` and shut the stream; the error to raise."""
        with self._state:
            if self._dead is None:
                self._dead = f"{self.label}: the connection is lost: {reason}"
            message = self._dead
        self._stream.shutdown()
        return LinkLostError(message)

    def _enter(self) -> None:
        with self._state:
            if self._dead is not None:
                raise LinkLostError(self._dead)
            self._busy += 1

    def _leave(self) -> None:
        with self._state:
            self._busy -= 1
            finish = self._busy == 0 and self._dead is not None
        if finish:
            self._release()

    # ------------------------------------------------------------ I/O

    def _write(self, data: bytes) -> None:
        """Write ``data`` (the caller holds ``_lock``)."""
        if not data:
            return
        try:
            self._stream.send(data)
        except OSError as error:
            raise self._lose(f"cannot send: {error.strerror or error}") from None

    def _send_packet(self, payload: bytes) -> None:
        with self._lock:
            data = self._codec.send_packet(payload)
            self._write(data)
        self._sent_at = time.monotonic()
        self._resends = 0

    def _read_forever(self) -> None:
        """The reader thread of a stream without a poll_fd."""
        assert self._queue is not None
        while True:
            try:
                data = self._stream.recv()
            except BaseException as error:  # handed to the engine thread
                self._queue.put(error)
                return
            self._queue.put(data)
            if not data:
                return

    def _wait_input(self, deadline: float | None, wakeable: bool) -> tuple[bytes | None, bool]:
        """Bytes from the stream (``b""`` at its end) or None, and whether a wake came.

        Returns at ``deadline`` with nothing (None, False).
        """
        if wakeable and self._wake_pending:
            self._wake_pending = False
            return None, True
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if self._queue is not None:
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                return None, False
            if isinstance(item, _Wake):
                if wakeable:
                    return None, True
                self._wake_pending = True
                return None, False
            if isinstance(item, BaseException):
                self._queue.put(item)  # every later read fails alike
                reason = item.strerror if isinstance(item, OSError) and item.strerror else item
                raise self._lose(f"cannot receive: {reason}")
            if not item:
                self._queue.put(item)
            return item, False
        poller = self._wake_poller if wakeable else self._poller
        milliseconds = -1 if timeout is None else math.ceil(timeout * 1000)
        ready = poller.poll(milliseconds)
        data: bytes | None = None
        woken = False
        for fd, _ in ready:
            if fd == self._wake_fd:
                try:
                    os.eventfd_read(fd)
                except BlockingIOError:
                    continue
                woken = True
            else:
                try:
                    data = self._stream.recv_nowait()
                except OSError as error:
                    raise self._lose(f"cannot receive: {error.strerror or error}") from None
        return data, woken

    def _feed(self, data: bytes) -> None:
        """Hand received bytes to the codec; queue the events, write what it owes."""
        with self._lock:
            awaiting = self._codec.awaiting_ack  # as it was before these bytes
            try:
                events = self._codec.receive_data(data)
            except RemoteProtocolError as error:
                raise self._lose(f"protocol error: {error}") from None
            self._write(self._codec.data_to_send())
        for event in events:
            if isinstance(event, Ack):
                awaiting = False
            elif isinstance(event, Nak):
                self._sent_at = time.monotonic()  # the codec sent our packet again
            elif isinstance(event, BadPacket):
                pass  # naked by the codec; the server sends it again
            elif isinstance(event, Notification):
                self.notifications.append(event.payload)
            elif isinstance(event, Packet) and awaiting:
                pass  # an old reply whose '+' we missed: ours comes again (gdb's rule)
            elif isinstance(event, (Packet, Closed)):
                self._events.append(event)

    def _next_packet(self, deadline: float | None, *, wakeable: bool) -> bytes | None:
        """The next packet that is not console output; None at ``deadline`` or on a wake."""
        while True:
            while self._events:
                event = self._events.popleft()
                if isinstance(event, Closed):
                    raise self._lose("the server closed the connection")
                assert isinstance(event, Packet)
                payload = event.payload
                if _OUTPUT.fullmatch(payload):
                    self.console_output.append(self._output.decode(hex_decode(payload[1:])))
                    continue
                return payload
            until = deadline
            if self._codec.awaiting_ack:
                resend_at = self._sent_at + self.ack_timeout
                until = resend_at if until is None else min(until, resend_at)
            data, woken = self._wait_input(until, wakeable)
            if data is not None:
                if not data:
                    with self._lock:
                        try:
                            self._codec.receive_data(b"")
                        except RemoteProtocolError:
                            pass
                    raise self._lose("the server closed the connection")
                self._feed(data)
                if woken:
                    self._wake_pending = True  # answered after the packets it came with
                continue
            if woken:
                return None
            now = time.monotonic()
            if self._codec.awaiting_ack and now >= self._sent_at + self.ack_timeout:
                if self._resends >= MAX_RESENDS:
                    raise self._lose(f"no acknowledgment after {MAX_RESENDS + 1} sends")
                with self._lock:
                    self._write(self._codec.resend())
                self._sent_at = now
                self._resends += 1
                continue
            if deadline is not None and now >= deadline:
                return None

    # ------------------------------------------------------------ packets

    def request(self, payload: bytes, *, timeout: float | None = 10.0) -> bytes:
        """Send one packet and return its reply's payload (``O`` packets before it go
        to ``console_output``); ``timeout`` None waits forever.

        Raises:
            LinkLostError: no reply within ``timeout`` seconds, or the connection failed.
            InvalidOperationError: the target runs (``resume`` without ``wait_stop``).
        """
        if self._running:
            self._check()
            raise InvalidOperationError(
                f"{self.label}: cannot send {_packet_name(payload)} while the target runs"
            )
        self._enter()
        try:
            done = False
            try:
                deadline = None if timeout is None else time.monotonic() + timeout
                self._send_packet(payload)
                reply = self._next_packet(deadline, wakeable=False)
                done = True
            except LocalProtocolError:
                done = True  # refused by the codec (too large): nothing was sent
                raise
            finally:
                if not done and self._dead is None:
                    # cut short by the caller (KeyboardInterrupt ...): the reply is unaccounted for
                    self._lose(f"{_packet_name(payload)} was interrupted")
            if reply is None:
                raise self._lose(f"no reply to {_packet_name(payload)} within {timeout:g} s")
            return reply
        finally:
            self._leave()

    def _ask(self, payload: bytes) -> bytes:
        """``request``, with ``E`` replies raised as RemoteError."""
        reply = self.request(payload)
        if reply.startswith(b"E") and _is_error(reply):
            raise self._remote_error(payload, reply)
        return reply

    def _remote_error(self, payload: bytes, reply: bytes) -> RemoteError:
        name = _packet_name(payload)
        code = int(reply[1:3], 16) if _HEX_NUMBER.fullmatch(reply[1:3]) and len(reply) == 3 else None
        text = reply[:40].decode("ascii", "replace")
        return RemoteError(f"{self.label}: the server answered {name} with {text}", name, code)

    def _unsupported(self, what: str) -> UnsupportedPacketError:
        return UnsupportedPacketError(f"{self.label}: the server does not support {what}", what)

    def resume(self, payload: bytes) -> None:
        """Send a packet answered by a stop reply that comes later (``vCont;c``,
        ``c``, ``s``, ``vCont;s:...``); does not wait. Then call ``wait_stop``.

        Raises:
            InvalidOperationError: a resume already waits for its stop.
            LinkLostError: the connection failed.
        """
        self._check()
        if self._running:
            raise InvalidOperationError(f"{self.label}: the target runs already")
        self._enter()
        try:
            self._send_packet(payload)
            self._running = True
        finally:
            self._leave()

    def wait_stop(self, deadline: float | None) -> bytes | None:
        """The stop reply of the last ``resume``, or None when ``deadline``
        (``time.monotonic()``) passes or ``wake()`` is called first.

        Raises:
            InvalidOperationError: no resume waits for its stop.
            LinkLostError: the connection failed.
        """
        self._check()
        if not self._running:
            raise InvalidOperationError(f"{self.label}: no resume waits for a stop")
        self._enter()
        try:
            reply = self._next_packet(deadline, wakeable=True)
            if reply is not None:
                self._running = False
            return reply
        finally:
            self._leave()

    def wake(self) -> None:
        """Any thread: make a ``wait_stop`` in progress (or the next one) return None."""
        with self._state:
            if self._released:
                return
            if self._wake_fd is not None:
                os.eventfd_write(self._wake_fd, 1)
            elif self._queue is not None:
                self._queue.put(_WAKE)

    def interrupt(self) -> None:
        """Any thread: send the 0x03 byte that stops a running target (its stop
        reply, usually ``T02``, ends ``wait_stop``).

        Raises:
            LinkLostError: the connection failed.
        """
        self._check()
        with self._lock:
            try:
                data = self._codec.interrupt()
            except LindbgError:
                raise LinkLostError(self._dead or f"{self.label}: the link is closed") from None
            self._write(data)

    # ------------------------------------------------------------ objects and monitor

    def read_object(self, obj: str, annex: str = "") -> bytes:
        """The whole ``qXfer`` object ``obj`` (``features``, ``auxv``,
        ``libraries-svr4``, ``exec-file`` ...) for ``annex``.

        Raises:
            UnsupportedPacketError: the server does not offer the object.
            RemoteError: the server answered with an error.
            BadReplyError: a reply is neither ``m`` nor ``l``.
        """
        name = f"qXfer:{obj}:read"
        if self.features.get(name) is not True:
            raise self._unsupported(name)
        # Half the packet: the reply's binary bytes may all need escaping.
        length = max(1, (self.packet_size - _MARGIN) // 2)
        data = bytearray()
        while True:
            payload = b"%s:%s:%x,%x" % (name.encode(), annex.encode(), len(data), length)
            reply = self.request(payload)
            kind, piece = reply[:1], reply[1:]
            if kind == b"l":
                data += piece
                return bytes(data)
            if kind == b"m":
                if not piece:
                    raise BadReplyError(f"{self.label}: {name} of {annex!r}: an empty 'm' reply")
                data += piece
                continue
            if not reply:
                raise self._unsupported(name)
            if _is_error(reply):
                text = reply[:40].decode("ascii", "replace")
                raise RemoteError(
                    f"{self.label}: cannot read {obj} {annex!r}: the server answered {text}", name
                )
            raise BadReplyError(f"{self.label}: {name} of {annex!r}: unexpected reply {reply[:20]!r}")

    def monitor(self, command: str) -> str:
        """Run a server command (``qRcmd``, gdb's ``monitor``); its output, whether
        sent as ``O`` packets (gdbserver) or as the hex reply (lindbgsrv).

        Raises:
            UnsupportedPacketError: the server has no monitor commands.
            RemoteError: the server answered with an error.
        """
        before = len(self.console_output)
        reply = self.request(b"qRcmd," + hex_encode(command.encode()))
        output = "".join(self.console_output[before:])
        if reply == b"OK":
            return output
        if not reply:
            raise self._unsupported("qRcmd")
        if _is_error(reply):
            raise self._remote_error(b"qRcmd", reply)
        try:
            return output + hex_decode(reply).decode("utf-8", "replace")
        except PayloadError:
            raise BadReplyError(f"{self.label}: qRcmd: unexpected reply {reply[:20]!r}") from None

    # ------------------------------------------------------------ memory

    def _memory_piece(self) -> int:
        # Escaped binary may double; hex always does.
        return max(1, (self.packet_size - _MARGIN) // 2)

    def read_memory(self, address: int, size: int) -> bytes:
        """``size`` bytes at ``address``, or fewer when memory becomes unreadable.

        Raises:
            MemoryAccessError: not even the first byte is readable.
            BadReplyError: a reply is malformed.
        """
        if size <= 0:
            return b""
        if self._binary_read is None:
            self._binary_read = self.request(b"x%x,0" % address) == b"OK"
        end = address + size
        piece = self._memory_piece()
        where = address
        out = bytearray()
        if size > piece and self._binary_read and self.no_ack:
            ahead = self._read_ahead(address, end, piece)
            if len(ahead) == size:
                return ahead
            out += ahead
            where += len(ahead)
        careful_until = where  # below it, read page by page (a piece failed there)
        while where < end:
            limit = piece
            if where < careful_until:
                limit = min(limit, _PAGE - where % _PAGE)
            count = min(limit, end - where)
            data = self._read_piece(where, count)
            if data is None:
                if where >= careful_until and count > _PAGE - where % _PAGE:
                    careful_until = where + count  # part of it may be readable
                    continue
                break
            if not data:
                break
            out += data
            where += len(data)
        if not out:
            raise MemoryAccessError(f"{self.label}: cannot read memory at {address:#x}", address)
        return bytes(out)

    def _read_ahead(self, address: int, end: int, piece: int) -> bytes:
        """The bytes from ``address`` towards ``end`` in ``x`` pieces with up to
        ``_READ_AHEAD`` requests in flight (no-ack mode), so that the server reads
        and sends the next piece while this side decodes one; stops at the first
        piece that fails or comes back short (``read_memory`` goes on from there
        one piece at a time)."""
        pieces: list[bytes] = []
        pending: deque[int] = deque()  # the sizes asked for, in order
        sent = address
        failed = False
        self._enter()
        try:
            while True:
                while not failed and sent < end and len(pending) < _READ_AHEAD:
                    count = min(piece, end - sent)
                    self._send_packet(b"x%x,%x" % (sent, count))
                    pending.append(count)
                    sent += count
                if not pending:
                    break
                reply = self._next_packet(time.monotonic() + _READ_TIMEOUT, wakeable=False)
                if reply is None:
                    raise self._lose(f"no reply to x within {_READ_TIMEOUT:g} s")
                count = pending.popleft()
                if failed:
                    continue  # a reply to a piece asked for before one failed
                if reply[:1] == b"b" and len(reply) == count + 1:
                    pieces.append(reply)
                else:
                    failed = True
        except BaseException:
            if pending and self._dead is None:
                # cut short (KeyboardInterrupt ...): the replies in flight are unaccounted for
                self._lose("a memory read was interrupted")
            raise
        finally:
            self._leave()
        return b"".join(memoryview(reply)[1:] for reply in pieces)

    def _read_piece(self, address: int, count: int) -> bytes | None:
        """At most ``count`` bytes at ``address``; None for an error reply."""
        if self._binary_read:
            reply = self.request(b"x%x,%x" % (address, count))
            if reply.startswith(b"b"):
                return reply[1 : 1 + count]
        else:
            reply = self.request(b"m%x,%x" % (address, count))
            if reply and not reply.startswith(b"E"):
                try:
                    return hex_decode(reply)[:count]
                except PayloadError:
                    pass
        if _is_error(reply):
            return None
        if not reply:
            raise self._unsupported("x" if self._binary_read else "m")
        raise BadReplyError(f"{self.label}: memory read at {address:#x}: unexpected reply {reply[:20]!r}")

    def write_memory(self, address: int, data: bytes) -> None:
        """Write ``data`` at ``address``.

        Raises:
            MemoryAccessError: the server refused a piece (the pieces before it are written).
        """
        if not data:
            return
        if self._binary_write is None:
            self._binary_write = self.request(b"X%x,0:" % address) == b"OK"
        piece = self._memory_piece()
        for offset in range(0, len(data), piece):
            chunk = data[offset : offset + piece]
            where = address + offset
            if self._binary_write:
                payload = b"X%x,%x:" % (where, len(chunk)) + chunk
            else:
                payload = b"M%x,%x:" % (where, len(chunk)) + hex_encode(chunk)
            reply = self.request(payload)
            if reply == b"OK":
                continue
            if not reply:
                raise self._unsupported("X" if self._binary_write else "M")
            raise MemoryAccessError(
                f"{self.label}: cannot write {len(chunk)} bytes at {where:#x} "
                f"(the server answered {reply[:20].decode('ascii', 'replace')})",
                where,
            )

    # ------------------------------------------------------------ registers

    def read_registers(self) -> list[bytes | None]:
        """Every register of the selected thread (``g``), in layout order; None
        for the unavailable ones."""
        reply = self._ask(b"g")
        if not reply:
            raise self._unsupported("g")
        try:
            return self.layout.from_hex(reply.decode("ascii"))
        except (ValueError, UnicodeDecodeError) as error:
            raise BadReplyError(f"{self.label}: bad g reply: {error}") from None

    def write_registers(self, values: Sequence[bytes | None]) -> None:
        """Write every register of the selected thread (``G``); ``values`` in
        layout order, none of them None (ValueError)."""
        reply = self._ask(b"G" + hex_encode(self.layout.join(values)))
        if reply != b"OK":
            raise self._unsupported("G") if not reply else self._remote_error(b"G", reply)

    def _register(self, regnum: int) -> int:
        """The index of ``regnum`` in the layout (ValueError when it has none)."""
        layout = self.layout
        register = layout.by_regnum(regnum)
        if register is None:
            raise ValueError(f"the server's layout has no register {regnum}")
        return layout.registers.index(register)

    def read_register(self, regnum: int) -> bytes | None:
        """One register of the selected thread (``p``, else from ``g``); None when unavailable."""
        index = self._register(regnum)
        register = self.layout.registers[index]
        if self._p_supported is not False:
            reply = self._ask(b"p%x" % regnum)
            if reply:
                self._p_supported = True
                if b"x" in reply or b"X" in reply:
                    return None
                try:
                    value = hex_decode(reply)
                except PayloadError as error:
                    raise BadReplyError(f"{self.label}: bad p reply: {error}") from None
                if len(value) != register.size:
                    raise BadReplyError(
                        f"{self.label}: p reply of {len(value)} bytes for {register.name} ({register.size})"
                    )
                return value
            self._p_supported = False
        return self.read_registers()[index]

    def write_register(self, regnum: int, value: bytes) -> None:
        """Write one register of the selected thread (``P``, else ``g`` then ``G``)."""
        index = self._register(regnum)
        register = self.layout.registers[index]
        if len(value) != register.size:
            raise ValueError(f"register {register.name} is {register.size} bytes, not {len(value)}")
        if self._big_p_supported is not False:
            reply = self._ask(b"P%x=" % regnum + hex_encode(value))
            if reply == b"OK":
                self._big_p_supported = True
                return
            if reply:
                raise self._remote_error(b"P", reply)
            self._big_p_supported = False
        values = self.read_registers()
        values[index] = value
        missing = [reg.name for reg, old in zip(self.layout, values, strict=True) if old is None]
        if missing:
            raise RemoteError(
                f"{self.label}: cannot write {register.name}: the server has no P packet and "
                f"{missing[0]} is unavailable for a G packet",
                "G",
            )
        self.write_registers(values)

    # ------------------------------------------------------------ host I/O

    def _vfile(self, payload: bytes) -> tuple[int, bytes | None]:
        """A ``vFile`` request's result and attachment; errors as (-errno, None)."""
        reply = self.request(b"vFile:" + payload)
        if not reply:
            raise self._unsupported("vFile")
        if not reply.startswith(b"F"):
            raise BadReplyError(f"{self.label}: vFile: unexpected reply {reply[:20]!r}")
        head, sep, attachment = reply[1:].partition(b";")
        result_text, _, errno_text = head.partition(b",")
        try:
            result = int(result_text, 16)
            if result < 0:
                return -(int(errno_text, 16) if errno_text else 9999), None
        except ValueError:
            raise BadReplyError(f"{self.label}: vFile: bad reply {reply[:20]!r}") from None
        return result, attachment if sep else None

    def file_read(self, path: str, *, pid: int = 0) -> bytes:
        """The whole file ``path`` of the server's machine (host I/O, ``vFile``), as
        process ``pid`` sees it (0: the server's own view).

        Raises:
            RemoteFileNotFoundError: there is no such file.
            RemoteFileError: it cannot be opened or read.
            UnsupportedPacketError: the server has no host I/O.
        """
        if self._fs_pid != pid:
            try:
                result, _ = self._vfile(b"setfs:%x" % pid)
            except UnsupportedPacketError:
                if pid:
                    raise
                result = 0  # an old server: its own filesystem is the only one
            if result < 0:
                raise RemoteFileError(
                    f"{self.label}: cannot use the filesystem of process {pid}: {_errno_text(-result)}",
                    path,
                    -result,
                )
            self._fs_pid = pid
        fd, _ = self._vfile(b"open:%s,0,0" % hex_encode(os.fsencode(path)))
        if fd < 0:
            kind = RemoteFileNotFoundError if -fd == _GDB_ENOENT else RemoteFileError
            raise kind(f"{self.label}: cannot open remote file {path!r}: {_errno_text(-fd)}", path, -fd)
        data = bytearray()
        count = max(1, self.packet_size - _MARGIN)  # the server shortens a reply that would not fit
        try:
            while True:
                got, attachment = self._vfile(b"pread:%x,%x,%x" % (fd, count, len(data)))
                if got < 0:
                    raise RemoteFileError(
                        f"{self.label}: cannot read remote file {path!r}: {_errno_text(-got)}", path, -got
                    )
                if got == 0:
                    return bytes(data)
                if attachment is None or len(attachment) != got:
                    raise BadReplyError(f"{self.label}: vFile:pread: {got} bytes announced, other sent")
                data += attachment
        finally:
            if not self.closed:
                self._vfile(b"close:%x" % fd)


def _is_error(reply: bytes) -> bool:
    """Whether ``reply`` is an error reply: ``E`` and two hex digits, or ``E.text``."""
    return (len(reply) == 3 and reply[:1] == b"E" and _HEX_NUMBER.fullmatch(reply[1:]) is not None) or (
        reply.startswith(b"E.")
    )
