"""The GDB remote serial protocol (RSP) framing, as a pure state machine.

Used at both ends: by ``lindbgsrv`` (the server, answering gdb or a lindbg
client) and by lindbg's client (talking to lindbgsrv or a real gdbserver).
Nothing here touches a socket or a clock: ``RspConnection.receive_data`` takes
the bytes the caller read and returns events; every method that makes bytes
returns them (or queues them for ``data_to_send``) for the caller to write.

The wire: a packet is ``$data#cc``, a notification (server to client only) is
``%data#cc``, where ``cc`` is two hex digits of the sum of ``data`` mod 256,
summed over the bytes as transmitted. ``+`` and ``-`` acknowledge a packet,
until both sides have switched to no-ack mode; a lone 0x03 from the client
outside a packet is an interrupt (Ctrl-C).

The payload a caller sees is never the transmitted ``data``: this codec undoes
both of RSP's transformations for every packet, and applies them to every
packet it sends, so ``Packet.payload`` is exactly what the peer meant (the data
of an ``X`` packet is raw binary after its ``:``, needing no second unescape)
and ``send_packet`` takes raw binary. The layering follows gdb, whose reader
expands run-length encoding over the transmitted characters and unescapes
afterwards (gdbserver compresses already-escaped output):

* escaping: ``}`` then the byte XOR 0x20; we always escape ``#``, ``$``, ``}``
  and ``*``, and accept any escaped byte;
* run-length encoding, ``X*n``: the transmitted character before the ``*``
  repeats ``ord(n) - 29`` more times (``0* `` is ``0000``). The manual allows it
  in responses only, so only the server may send it (opt-in per packet); we
  accept it from either side, and, like gdb, any count from 1 up (``n`` >=
  0x1e). Repeating an escape character (``}*`` or ``}}*``) is refused: nobody
  produces it and its meaning depends on the decoder.

A ``*`` is therefore never literal data: a text payload holding ``*`` or ``}``
reaches gdb escaped, and gdb unescapes only binary replies (``qXfer``,
``vFile``, ``x``), so text replies should avoid those two characters.

Errors: a malformed stream raises ``RemoteProtocolError`` and the connection is
dead. In ack mode a frame whose checksum is wrong (or unreadable, or cut by a
new ``$``) is taken for line noise: we answer ``-`` and report ``BadPacket``,
failing only after ``max_bad`` damaged frames in a row. Without acks nothing
can be retransmitted, so the same damage is fatal at once. A frame with a good
checksum but a malformed body is the peer's bug, fatal in both modes.

Limits: neither the transmitted nor the decoded payload may exceed
``max_packet`` (advertise it as ``PacketSize``); the transmitted part is
checked while it arrives, the decoded one while it is expanded, so a frame
without ``#`` or a run-length bomb never grows past the limit. Bytes between
frames that mean nothing (gdb ignores them: a stub's banner, line noise, a
``+`` after no-ack mode began) are dropped and counted; more than
``max_garbage`` of them in a row means the peer does not speak RSP.
"""

from __future__ import annotations

import enum
import re
import zlib
from dataclasses import dataclass
from typing import NoReturn, TypeAlias

from lindbg.errors import LindbgError

#: The default ``max_packet``: room for a 128 KiB memory read, hex-encoded.
MAX_PACKET = 256 * 1024
#: The default ``max_bad``: a burst of line noise may spoil a frame or two.
MAX_BAD = 5
#: The default ``max_garbage``.
MAX_GARBAGE = 4096
INTERRUPT = b"\x03"

_ESC = 0x7D  # '}'
_RLE = 0x2A  # '*'
_RLE_BIAS = 29
# The encoder's longest run: a count of 97 is '~', the last printable character.
_RLE_MAX = 97
# Counts whose character RLE never sends: '#' and '$' end or restart a frame; '*'
# and '}' would read as a run or an escape to anyone scanning the data.
_RLE_AVOID = {6: 5, 7: 5, 13: 12, 96: 95}
# The checksum of long data: zlib.adler32's first half is 1 + the byte sum mod
# 65521, exact for up to 256 bytes (256 * 255 < 65521); its second half counts in
# multiples of 65536, nothing mod 256. A run of C calls, ~5x faster than sum().
_SUM_CHUNK = 256
_SUM_DIRECT = 512
_SUM_SLICES = [slice(i, i + _SUM_CHUNK) for i in range(0, 2 * MAX_PACKET, _SUM_CHUNK)]
_DECODE_SPECIAL = re.compile(rb"[}*]")
# The four escapes senders make, each undone by one substitution: a compiled
# pattern's sub is ~4x faster than bytes.replace for a two-byte needle.
_UNESCAPES = [(re.compile(re.escape(b"}" + bytes((byte ^ 0x20,)))), bytes((byte,))) for byte in b"#$*}"]
_IDLE_SPECIAL = re.compile(rb"[$%+\-\x03]")
# Runs of 4 or more: the shortest that RLE (3 characters) makes shorter.
_RUN = re.compile(rb"(.)\1{3,}", re.DOTALL)
_HEX = re.compile(rb"[0-9a-fA-F]*")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
# One whole packet that needs no decoding (the receiver's short way), and the value
# of each pair of checksum digits.
_WHOLE_PACKET = re.compile(rb"\$([^$#}*]*)#([0-9a-fA-F]{2})")
_SUM_VALUES = {bytes((high, low)): int(bytes((high, low)), 16) for high in _HEX_DIGITS for low in _HEX_DIGITS}


class RspError(LindbgError):
    """Base of the RSP codec's errors."""


class RemoteProtocolError(RspError):
    """The peer broke the framing: bad checksum without acks, a malformed escape
    or run-length encoding, an oversized frame, too many damaged frames, a
    notification sent by a client, garbage without end.

    The connection is dead: the state is ERROR and every later ``receive_data``
    raises again. ``events`` holds the events completed before the fault in
    the same call; ``data_to_send`` still has the acks owed for them.
    """

    def __init__(self, message: str, events: list[Event] | None = None) -> None:
        super().__init__(message)
        self.events: list[Event] = events if events is not None else []


class LocalProtocolError(RspError):
    """We tried to send what the protocol does not allow now: a packet larger
    than the peer accepts, a second packet before the first was acknowledged,
    a notification as the client, anything after the close. Nothing was sent
    and the state is unchanged: a bug in the caller, not in the peer."""


class PayloadError(RspError, ValueError):
    """A payload field is malformed (odd-length hex, a bad digit). The framing
    is fine: a server answers with an ``E`` reply. It is a ValueError too, so a
    packet parser catches it together with ``int(field, 16)``'s errors."""


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Packet:
    """A ``$`` packet, decoded (unescaped, run-length expanded)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Notification:
    """A ``%`` notification from the server, decoded; never acknowledged."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Ack:
    """A ``+``: the peer got our packet (or greets us: gdb starts with one)."""


@dataclass(frozen=True, slots=True)
class Nak:
    """A ``-``: the peer wants our last packet again; if it was still
    unacknowledged, it is queued already (``data_to_send``)."""


@dataclass(frozen=True, slots=True)
class Interrupt:
    """The client's 0x03 (Ctrl-C) between packets; only a server reports it."""


@dataclass(frozen=True, slots=True)
class BadPacket:
    """A frame spoilt on the line (ack mode only): it was dropped and, unless it
    was a notification, a ``-`` is queued so the peer sends it again."""

    reason: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The peer closed the connection (``receive_data(b"")``)."""


Event: TypeAlias = Packet | Notification | Ack | Nak | Interrupt | BadPacket | Closed


# ---------------------------------------------------------------- pure helpers


def checksum(data: bytes) -> int:
    """The RSP checksum of transmitted ``data``: the byte sum mod 256."""
    size = len(data)
    if size <= _SUM_DIRECT:
        return sum(data) & 0xFF
    chunks = -(-size // _SUM_CHUNK)
    slices = _SUM_SLICES[:chunks] if chunks <= len(_SUM_SLICES) else _slices(chunks)
    view = memoryview(data)
    return (sum(map(zlib.adler32, map(view.__getitem__, slices))) - chunks) & 0xFF


def _slices(count: int) -> list[slice]:
    return [slice(i * _SUM_CHUNK, (i + 1) * _SUM_CHUNK) for i in range(count)]


def _encode_run(match: re.Match[bytes]) -> bytes:
    char = match[0][0]
    left = len(match[0])
    out = bytearray()
    while left:
        out.append(char)
        left -= 1
        count = min(left, _RLE_MAX)
        if count >= 3:
            count = _RLE_AVOID.get(count, count)
            out += bytes((_RLE, count + _RLE_BIAS))
            left -= count
    return bytes(out)


def encode_payload(payload: bytes, *, rle: bool = False) -> bytes:
    """``payload`` as transmitted: ``#$}*`` escaped, then, with ``rle``, runs of
    4 to 98 equal characters compressed (runs of the transmitted characters,
    as gdbserver does, so a run may follow an escape). A count is never ``#``,
    ``$``, ``*`` or ``}``."""
    # '}' first, so that the escapes the others get are not escaped again
    data = (
        bytes(payload)
        .replace(b"}", b"}]")
        .replace(b"#", b"}\x03")
        .replace(b"$", b"}\x04")
        .replace(b"*", b"}\n")
    )
    return _RUN.sub(_encode_run, data) if rle else data


def decode_payload(data: bytes, *, limit: int | None = None) -> bytes:
    """The payload meant by transmitted ``data``: runs expanded, escapes undone.

    Raises:
        RemoteProtocolError: a malformed escape or run, or a payload that would
            exceed ``limit`` bytes (found before it is built).
    """
    if b"}" not in data and b"*" not in data:
        if limit is not None and len(data) > limit:
            raise RemoteProtocolError(f"packet decodes to more than {limit} bytes")
        return bytes(data)
    if b"*" not in data and data[-1] != _ESC:
        # Escapes only (binary memory): every '}' starts a pair, and a sender escapes
        # just '#', '$', '*' and '}'; four C-speed substitutions undo those (the last
        # one's '}' is not looked at again). A '}' escaping any other byte (']' as
        # '}}' included) is matched by none of them and left in: the count shows it,
        # and the general way decodes the packet.
        escapes = data.count(b"}")
        unescaped = bytes(data)
        for pair, byte in _UNESCAPES:
            unescaped = pair.sub(byte, unescaped)
        if len(data) - len(unescaped) == escapes:
            if limit is not None and len(unescaped) > limit:
                raise RemoteProtocolError(f"packet decodes to more than {limit} bytes")
            return unescaped
    out = bytearray()
    prev = -1  # the last transmitted character, for a run to repeat
    i, end = 0, len(data)
    while i < end:
        match = _DECODE_SPECIAL.search(data, i)
        j = end if match is None else match.start()
        if j > i:
            out += data[i:j]
            prev = data[j - 1]
        if j == end:
            break
        if data[j] == _ESC:
            if j + 1 == end:
                raise RemoteProtocolError("escape character '}' at the end of a packet")
            prev = data[j + 1]
            if prev == _RLE:
                raise RemoteProtocolError("run-length encoding of the escape character '}'")
            out.append(prev ^ 0x20)
        else:
            if prev < 0:
                raise RemoteProtocolError("run-length encoding at the start of a packet (nothing to repeat)")
            if prev == _ESC:
                raise RemoteProtocolError("run-length encoding of the escape character '}'")
            if j + 1 == end:
                raise RemoteProtocolError("run-length encoding without its count at the end of a packet")
            count = data[j + 1] - _RLE_BIAS
            if count < 1:
                raise RemoteProtocolError(f"run-length count 0x{data[j + 1]:02x} out of range (0x1e-0xff)")
            # The repeated character is transmitted, not decoded: '}]*"' is '}' then five ']'.
            out += bytes((prev,)) * count
        i = j + 2
        if limit is not None and len(out) > limit:
            raise RemoteProtocolError(f"packet decodes to more than {limit} bytes")
    return bytes(out)


def frame(payload: bytes, *, rle: bool = False, notification: bool = False) -> bytes:
    """``payload`` framed as a packet (``$...#cc``) or a notification (``%``)."""
    data = encode_payload(payload, rle=rle)
    return b"".join((b"%" if notification else b"$", data, b"#%02x" % checksum(data)))


def hex_encode(data: bytes) -> bytes:
    """``data`` as lowercase hex digits, as RSP writes memory and registers."""
    return data.hex().encode("ascii")


def hex_decode(data: bytes) -> bytes:
    """The bytes hex ``data`` holds; upper or lower case.

    Raises:
        PayloadError: a character is no hex digit, or their number is odd.
    """
    if not _HEX.fullmatch(data):
        bad = next(i for i, byte in enumerate(data) if byte not in _HEX_DIGITS)
        raise PayloadError(f"bad hex digit {chr(data[bad])!r} at offset {bad}")
    if len(data) % 2:
        raise PayloadError(f"odd number of hex digits ({len(data)})")
    return bytes.fromhex(data.decode("ascii"))


def encode_le(value: int, size: int) -> bytes:
    """Unsigned ``value`` as ``size`` little-endian bytes in hex (a register).

    Raises:
        LocalProtocolError: ``value`` is negative or needs more than ``size`` bytes.
    """
    if not 0 <= value < 1 << (8 * size):
        raise LocalProtocolError(f"value {value:#x} does not fit in {size} unsigned bytes")
    return hex_encode(value.to_bytes(size, "little"))


def decode_le(data: bytes) -> int:
    """The unsigned integer little-endian hex ``data`` holds (a register).

    Raises:
        PayloadError: ``data`` is not hex (gdb's ``xx``, unavailable, included).
    """
    return int.from_bytes(hex_decode(data), "little")


# ---------------------------------------------------------------- the connection


class Role(enum.Enum):
    #: Sends commands and interrupts (gdb, lindbg's client).
    CLIENT = "client"
    #: Sends replies and notifications (lindbgsrv, gdbserver).
    SERVER = "server"


class State(enum.Enum):
    #: Every packet is acknowledged with ``+`` or ``-``: how a connection starts.
    ACK_MODE = enum.auto()
    #: After ``start_no_ack``: no acks, no retransmission; damage is fatal.
    NO_ACK_MODE = enum.auto()
    #: The peer closed (``receive_data(b"")``) or we did (``close()``).
    CLOSED = enum.auto()
    #: The peer broke the protocol: close the connection.
    ERROR = enum.auto()


class _Phase(enum.Enum):
    IDLE = enum.auto()  # between frames
    BODY = enum.auto()  # after '$' or '%', before '#'
    CHECKSUM = enum.auto()  # after '#'


class RspConnection:
    """One end of an RSP connection, client or server, without I/O.

    Feed what the socket reads to ``receive_data``, then write
    ``data_to_send()`` (acks, naks, retransmissions). Every method that makes
    bytes returns whatever was queued *followed by* its own bytes, so writing
    each result, in order, keeps the wire in order: the ``+`` for a command
    always precedes the reply that ``send_packet`` returns.

    In ack mode a sent packet is kept until the peer's ``+``; a ``-`` queues it
    again. RSP is stop-and-wait: sending a second packet before the first was
    acknowledged is refused (see ``awaiting_ack``; ``resend()`` serves a
    caller's timeout, as gdb retransmits after one).

    Args:
        role: which end this is.
        max_packet: the largest frame accepted, transmitted or decoded.
        peer_max_packet: the largest transmitted payload the peer accepts (its
            ``PacketSize``), None for no limit; an attribute, set it once known.
        max_bad: damaged frames in a row (and ``-`` for one packet) that fail
            the connection.
        max_garbage: ignored bytes in a row that fail it.
    """

    def __init__(
        self,
        role: Role,
        *,
        max_packet: int = MAX_PACKET,
        peer_max_packet: int | None = None,
        max_bad: int = MAX_BAD,
        max_garbage: int = MAX_GARBAGE,
    ) -> None:
        if max_packet < 1 or max_bad < 1 or max_garbage < 0:
            raise ValueError("max_packet and max_bad must be positive, max_garbage not negative")
        self._role = role
        self.max_packet = max_packet
        self.peer_max_packet = peer_max_packet
        self._max_bad = max_bad
        self._max_garbage = max_garbage
        self._state = State.ACK_MODE
        self._failure = ""
        self._phase = _Phase.IDLE
        self._notification = False  # whether the frame being read is a '%' one
        self._body = bytearray()
        self._sum_chars = bytearray()
        self._outbox = bytearray()
        self._unacked: bytes | None = None
        self._naks = 0
        self._bad_run = 0
        self._garbage_run = 0
        self._bad_total = 0
        self._ignored_total = 0

    def __repr__(self) -> str:
        return f"<RspConnection {self._role.value} {self._state.name}>"

    @property
    def role(self) -> Role:
        return self._role

    @property
    def state(self) -> State:
        return self._state

    @property
    def ack_mode(self) -> bool:
        return self._state is State.ACK_MODE

    @property
    def awaiting_ack(self) -> bool:
        """Whether our last packet waits for the peer's ``+`` (ack mode only)."""
        return self._unacked is not None

    @property
    def bad_packets(self) -> int:
        """Damaged frames received (and naked) since the start."""
        return self._bad_total

    @property
    def ignored_bytes(self) -> int:
        """Bytes between frames that meant nothing, since the start."""
        return self._ignored_total

    # ------------------------------------------------------------ receiving

    def receive_data(self, data: bytes) -> list[Event]:
        """Apply the bytes the peer sent; the events they complete, in order.

        A partial frame is kept for the next call. ``b""`` means the peer
        closed: the result is ``[Closed()]`` and the state CLOSED, where later
        data is dropped. Write ``data_to_send()`` afterwards.

        Raises:
            RemoteProtocolError: the peer broke the protocol; the state is ERROR
                and every later call raises again.
        """
        if self._state is State.ERROR:
            raise RemoteProtocolError(f"the connection already failed: {self._failure}")
        if self._state is State.CLOSED:
            return []
        if not data:
            if self._phase is not _Phase.IDLE:
                self._fail(f"the peer closed the connection inside a packet ({len(self._body)} bytes)")
            self._state = State.CLOSED
            return [Closed()]
        if self._phase is _Phase.IDLE:
            packet = self._whole_packet(data)
            if packet is not None:
                return [packet]
        events: list[Event] = []
        try:
            self._feed(data, events)
        except RemoteProtocolError as exc:
            self._fail(str(exc), events)
        return events

    def _whole_packet(self, data: bytes) -> Packet | None:
        """The short way for what a request usually is: ``data`` is exactly one
        good ``$`` packet with neither escapes nor runs, read between frames; None:
        take the general way (which also finds what is wrong with it)."""
        match = _WHOLE_PACKET.fullmatch(data)
        if match is None:
            return None
        body = bytes(match[1])
        if len(body) > self.max_packet or _SUM_VALUES[match[2]] != checksum(body):
            return None
        self._garbage_run = 0
        self._bad_run = 0
        if self._state is State.ACK_MODE:
            self._outbox += b"+"
        return Packet(body)

    def data_to_send(self) -> bytes:
        """The queued bytes (acks, naks, retransmissions) to write now; drained."""
        return self._take(b"")

    def _feed(self, data: bytes, events: list[Event]) -> None:
        i, end = 0, len(data)
        while i < end:
            if self._phase is _Phase.IDLE:
                match = _IDLE_SPECIAL.search(data, i)
                j = end if match is None else match.start()
                self._ignore(j - i)
                if j == end:
                    return
                i = j + 1
                self._on_control(data[j], events)
            elif self._phase is _Phase.BODY:
                # two memchr scans beat one regex search over a 64 KiB chunk
                j = data.find(b"#", i)
                if j < 0:
                    j = end
                restart = data.find(b"$", i, j)
                if restart >= 0:
                    j = restart
                if len(self._body) + j - i > self.max_packet:
                    raise RemoteProtocolError(f"packet larger than {self.max_packet} bytes")
                self._body += data[i:j]
                if j == end:
                    return
                i = j + 1
                if data[j] == ord("#"):
                    self._phase = _Phase.CHECKSUM
                    self._sum_chars.clear()
                else:
                    # The '#' was lost: keep the new frame, it may be the good copy.
                    self._damaged("a new packet ('$') started inside a packet", events)
                    self._start_frame(notification=False)
            else:
                take = min(2 - len(self._sum_chars), end - i)
                self._sum_chars += data[i : i + take]
                i += take
                if len(self._sum_chars) == 2:
                    self._phase = _Phase.IDLE
                    self._finish_frame(events)

    def _on_control(self, byte: int, events: list[Event]) -> None:
        """A meaningful byte between frames."""
        if byte in b"$%":
            if byte == ord("%") and self._role is Role.SERVER:
                raise RemoteProtocolError("a notification ('%') from the client: only servers send them")
            self._start_frame(notification=byte == ord("%"))
        elif byte == 0x03:
            if self._role is Role.CLIENT:
                self._ignore(1)  # a server has nothing to interrupt
            else:
                self._garbage_run = 0
                events.append(Interrupt())
        elif self._state is not State.ACK_MODE:
            # The client's '+' for the server's 'OK' to QStartNoAckMode lands here.
            self._ignore(1)
        elif byte == ord("+"):
            self._garbage_run = 0
            self._unacked = None
            self._naks = 0
            events.append(Ack())
        else:
            self._garbage_run = 0
            if self._unacked is not None:
                self._naks += 1
                if self._naks >= self._max_bad:
                    raise RemoteProtocolError(f"the peer rejected our packet {self._naks} times in a row")
                self._outbox += self._unacked
            events.append(Nak())

    def _start_frame(self, *, notification: bool) -> None:
        self._phase = _Phase.BODY
        self._notification = notification
        self._body.clear()
        self._garbage_run = 0

    def _finish_frame(self, events: list[Event]) -> None:
        raw = bytes(self._body)
        self._body.clear()
        expected = checksum(raw)
        chars = self._sum_chars.decode("latin-1")
        if not _HEX.fullmatch(self._sum_chars):
            self._damaged(f"bad checksum characters {chars!r} (expected {expected:02x})", events)
            return
        if int(chars, 16) != expected:
            self._damaged(f"bad checksum: expected {expected:02x}, got {chars}", events)
            return
        payload = decode_payload(raw, limit=self.max_packet)
        self._bad_run = 0
        if self._notification:
            events.append(Notification(payload))
            return
        if self._state is State.ACK_MODE:
            self._outbox += b"+"
        events.append(Packet(payload))

    def _damaged(self, reason: str, events: list[Event]) -> None:
        """A frame spoilt on the line: nak it, or fail without acks or after too many."""
        kind = "notification" if self._notification else "packet"
        if self._state is not State.ACK_MODE:
            raise RemoteProtocolError(f"{kind}: {reason}")
        self._bad_total += 1
        self._bad_run += 1
        if self._bad_run >= self._max_bad:
            raise RemoteProtocolError(f"{kind}: {reason} ({self._bad_run} damaged frames in a row)")
        if not self._notification:
            self._outbox += b"-"
        events.append(BadPacket(f"{kind}: {reason}"))

    def _ignore(self, count: int) -> None:
        # Stop counting at the byte that fails, so every chunking fails alike.
        count = min(count, self._max_garbage + 1 - self._garbage_run)
        self._ignored_total += count
        self._garbage_run += count
        if self._garbage_run > self._max_garbage:
            raise RemoteProtocolError(
                f"more than {self._max_garbage} bytes of garbage between packets: not an RSP peer?"
            )

    def _fail(self, reason: str, events: list[Event] | None = None) -> NoReturn:
        self._state = State.ERROR
        self._failure = reason
        self._body.clear()
        raise RemoteProtocolError(reason, events)

    # ------------------------------------------------------------ sending

    def send_packet(self, payload: bytes, *, rle: bool = False) -> bytes:
        """The bytes to write: what was queued, then ``payload`` as a packet.

        ``payload`` is raw: it is escaped here. ``rle`` (server only) compresses
        runs, worth it for long hex replies. In ack mode the packet is kept
        until the peer's ``+``.

        Raises:
            LocalProtocolError: closed or failed, ``rle`` as the client, the
                previous packet not yet acknowledged, or a transmitted payload
                larger than ``peer_max_packet``.
        """
        self._check_open("send a packet")
        if rle and self._role is Role.CLIENT:
            raise LocalProtocolError(
                "only the server may send run-length encoding (gdbserver cannot read it)"
            )
        if self._unacked is not None:
            raise LocalProtocolError("cannot send a packet: the previous one is not acknowledged yet")
        data = self._framed(b"$", payload, rle)
        if self._state is State.ACK_MODE:
            self._unacked = data
            self._naks = 0
        return self._take(data)

    def send_notification(self, payload: bytes) -> bytes:
        """The bytes to write: what was queued, then a ``%`` notification
        (server only; never acknowledged, so never retransmitted).

        Raises:
            LocalProtocolError: as the client, closed or failed, or too large.
        """
        self._check_open("send a notification")
        if self._role is not Role.SERVER:
            raise LocalProtocolError("only the server sends notifications")
        return self._take(self._framed(b"%", payload, False))

    def interrupt(self) -> bytes:
        """The bytes to write: what was queued, then 0x03 (client only)."""
        self._check_open("interrupt")
        if self._role is not Role.CLIENT:
            raise LocalProtocolError("only the client interrupts")
        return self._take(INTERRUPT)

    def resend(self) -> bytes:
        """What was queued, then our unacknowledged packet again, if any: for a
        caller whose wait for the ``+`` timed out."""
        self._check_open("resend")
        return self._take(self._unacked or b"")

    def start_no_ack(self) -> None:
        """Stop acknowledging, as the ``QStartNoAckMode`` exchange decides.

        Call it at the moment gdb's rule says:

        * server: right after ``send_packet(b"OK")`` answering
          ``QStartNoAckMode`` (the OK is not kept for retransmission; the
          client's ``+`` for it arrives later and is ignored);
        * client: when ``receive_data`` returns the ``Packet(b"OK")`` answering
          it; the ``+`` owed for that OK is already queued, write it.

        Raises:
            LocalProtocolError: closed, failed, or switched already.
        """
        self._check_open("start no-ack mode")
        if self._state is not State.ACK_MODE:
            raise LocalProtocolError("cannot start no-ack mode: it has started already")
        self._state = State.NO_ACK_MODE
        self._unacked = None
        self._naks = 0

    def close(self) -> None:
        """We are done (the socket is closed or about to be); ERROR stays ERROR."""
        if self._state is not State.ERROR:
            self._state = State.CLOSED

    def _check_open(self, what: str) -> None:
        if self._state is State.CLOSED:
            raise LocalProtocolError(f"cannot {what}: the connection is closed")
        if self._state is State.ERROR:
            raise LocalProtocolError(f"cannot {what}: the connection failed ({self._failure})")

    def _framed(self, start: bytes, payload: bytes, rle: bool) -> bytes:
        data = encode_payload(payload, rle=rle)
        if self.peer_max_packet is not None and len(data) > self.peer_max_packet:
            raise LocalProtocolError(
                f"payload of {len(data)} bytes exceeds the peer's limit of {self.peer_max_packet}"
            )
        return b"".join((start, data, b"#%02x" % checksum(data)))

    def _take(self, data: bytes) -> bytes:
        if not self._outbox:
            return data
        out = bytes(self._outbox) + data
        self._outbox.clear()
        return out
