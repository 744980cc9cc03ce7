"""The RSP codec (lindbg.protocols.rsp) without a socket: framing, escapes,
run-length encoding, acks and retransmission, no-ack mode on both sides,
limits, every malformed frame, and fuzzing of everything a peer can send."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lindbg.errors import LindbgError
from lindbg.protocols.rsp import (
    MAX_BAD,
    MAX_PACKET,
    Ack,
    BadPacket,
    Closed,
    Event,
    Interrupt,
    LocalProtocolError,
    Nak,
    Notification,
    Packet,
    PayloadError,
    RemoteProtocolError,
    Role,
    RspConnection,
    RspError,
    State,
    checksum,
    decode_le,
    decode_payload,
    encode_le,
    encode_payload,
    frame,
    hex_decode,
    hex_encode,
)

# ---------------------------------------------------------------- helpers


def whole(data: bytes) -> list[bytes]:
    return [data]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def halves(data: bytes) -> list[bytes]:
    return [data[: len(data) // 2], data[len(data) // 2 :]]


CHUNKINGS: list[Callable[[bytes], list[bytes]]] = [whole, bytewise, halves]


@pytest.fixture(params=CHUNKINGS, ids=lambda f: f.__name__)
def chunk(request: pytest.FixtureRequest) -> Callable[[bytes], list[bytes]]:
    return request.param  # type: ignore[no-any-return]


def feed(conn: RspConnection, data: bytes, chunk: Callable[[bytes], list[bytes]] = whole) -> list[Event]:
    events: list[Event] = []
    for part in chunk(data):
        if part:  # b"" would mean EOF
            events += conn.receive_data(part)
    return events


def server(**kwargs: Any) -> RspConnection:
    return RspConnection(Role.SERVER, **kwargs)


def client(**kwargs: Any) -> RspConnection:
    return RspConnection(Role.CLIENT, **kwargs)


def no_ack(conn: RspConnection) -> RspConnection:
    conn.start_no_ack()
    return conn


def raw_frame(body: bytes, start: bytes = b"$") -> bytes:
    """A frame around already-transmitted ``body``, with its right checksum."""
    return start + body + b"#" + b"%02x" % checksum(body)


# ---------------------------------------------------------------- pure helpers


def test_checksum_and_framing_of_known_packets() -> None:
    assert checksum(b"") == 0
    assert frame(b"OK") == b"$OK#9a"
    assert frame(b"g") == b"$g#67"
    assert frame(b"?") == b"$?#3f"
    assert frame(b"QStartNoAckMode") == b"$QStartNoAckMode#b0"
    assert frame(b"") == b"$#00"
    assert frame(b"Stop:T05", notification=True) == b"%Stop:T05#" + b"%02x" % checksum(b"Stop:T05")
    # The checksum is over the transmitted bytes: after escaping.
    assert frame(b"#") == b"$}\x03#80"


def test_escape_exactly_the_four_special_bytes() -> None:
    assert encode_payload(b"#$}*") == b"}\x03}\x04}]}\n"
    plain = bytes(b for b in range(256) if b not in b"#$}*")
    assert encode_payload(plain) == plain


def test_escapes_round_trip_all_256_bytes() -> None:
    data = bytes(range(256)) * 2
    assert decode_payload(encode_payload(data)) == data
    assert decode_payload(encode_payload(data, rle=True)) == data
    # Any escaped byte is accepted, not only the four we escape.
    assert decode_payload(
        b"".join(b"}" + bytes((b ^ 0x20,)) for b in range(256) if b ^ 0x20 != 0x2A)
    ) == bytes(b for b in range(256) if b ^ 0x20 != 0x2A)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (b"}}]", b"]]"),  # '}}' is ']' escaped; the ']' after it is plain
        (b"}}\x03", b"]\x03"),
        (b"a}]}\x03b", b"a}#b"),
        (b"}\x03}}}\x04", b"#]$"),
    ],
)
def test_escapes_of_other_bytes_beside_the_four(raw: bytes, decoded: bytes) -> None:
    assert decode_payload(raw) == decoded


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        # The GDB manual's example and the gdb-patches table around it.
        (b"0* ", b"0000"),
        (b"0*!", b"00000"),
        (b'0*"', b"000000"),
        (b'0*"0', b"0" * 7),
        (b'0*"00', b"0" * 8),
        (b"0*%", b"0" * 9),
        (b"0*~", b"0" * 98),
        # gdb's reader is lenient: counts below 3 and above 97 decode too.
        (b"a*\x1eb", b"aab"),
        (b"a*\xff", b"a" * 227),
        # The count character is literal, even '}' or '*'.
        (b"x*}", b"x" * 97),
        (b"x**", b"x" * 14),
        # A run repeats the last expanded character, so runs may follow runs.
        (b'0*"*"', b"0" * 11),
        # The transmitted character repeats: after an escape, its second half.
        (b'}]*"', b"}" + b"]" * 5),
        (b"}\x03*!", b"#" + b"\x03" * 4),
        # gdbserver's own vFile:pread reply.
        (b"F24;gdbserver.localhost:1* ./b", b"F24;gdbserver.localhost:1111./b"),
    ],
)
def test_rle_decode(raw: bytes, decoded: bytes) -> None:
    assert decode_payload(raw) == decoded


@pytest.mark.parametrize(
    ("payload", "encoded"),
    [
        (b"000", b"000"),
        (b"0000", b"0* "),
        (b"0" * 6, b'0*"'),
        (b"0" * 7, b'0*"0'),
        (b"0" * 8, b'0*"00'),  # the manual's own example: never '#' or '$'
        (b"0" * 9, b"0*%"),
        (b"0" * 98, b"0*~"),
        (b"0" * 99, b"0*~0"),
        (b"}" * 5, b"}]" * 5),  # escaped runs alternate: nothing to compress
        (b"}]]]]]", b'}]*"'),  # the run takes in the second half of the escape
    ],
)
def test_rle_encode(payload: bytes, encoded: bytes) -> None:
    assert encode_payload(payload, rle=True) == encoded
    assert decode_payload(encoded) == payload


@given(st.lists(st.tuples(st.sampled_from(b"0f}*#$a\x03"), st.integers(1, 300))))
def test_rle_encode_round_trip(runs: list[tuple[int, int]]) -> None:
    payload = b"".join(bytes((char,)) * count for char, count in runs)
    encoded = encode_payload(payload, rle=True)
    assert decode_payload(encoded) == payload
    assert b"#" not in encoded and b"$" not in encoded
    assert all(byte < 0x7F for byte in encoded if byte not in payload)
    assert len(encoded) <= len(encode_payload(payload))
    for i in range(len(encoded) - 1):
        if encoded[i] == ord("*") and (i == 0 or encoded[i - 1] != ord("}")):
            assert 3 <= encoded[i + 1] - 29 <= 97


@given(st.binary(max_size=600))
def test_encode_decode_round_trip(payload: bytes) -> None:
    for rle in (False, True):
        encoded = encode_payload(payload, rle=rle)
        assert b"#" not in encoded and b"$" not in encoded
        assert decode_payload(encoded) == payload
        assert frame(payload, rle=rle).endswith(b"#%02x" % checksum(encoded))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'*"0', "run-length encoding at the start of a packet"),
        (b"ab}", "escape character '}' at the end of a packet"),
        (b"0*\x10", "run-length count 0x10 out of range"),
        (b"0*\x1d", "run-length count 0x1d out of range"),
        (b"0*", "run-length encoding without its count"),
        (b"a}* ", "run-length encoding of the escape character"),
        (b"a}}* ", "run-length encoding of the escape character"),
    ],
)
def test_decode_malformed(raw: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        decode_payload(raw)


def test_decode_limit_stops_a_bomb() -> None:
    assert decode_payload(b"0*~", limit=98) == b"0" * 98
    with pytest.raises(RemoteProtocolError, match="more than 97 bytes"):
        decode_payload(b"0*~", limit=97)
    with pytest.raises(RemoteProtocolError, match="more than 4 bytes"):
        decode_payload(b"hello", limit=4)
    with pytest.raises(RemoteProtocolError, match="more than 100 bytes"):
        decode_payload(b"0*~" * 10_000, limit=100)


def test_hex_helpers() -> None:
    assert hex_encode(b"\x00\xab\xff") == b"00abff"
    assert hex_decode(b"00ABff") == b"\x00\xab\xff"
    assert hex_decode(b"") == b""
    with pytest.raises(PayloadError, match=r"odd number of hex digits \(3\)"):
        hex_decode(b"abc")
    with pytest.raises(PayloadError, match="bad hex digit 'g' at offset 2"):
        hex_decode(b"01g2")
    with pytest.raises(PayloadError, match="bad hex digit ' '"):
        hex_decode(b"01 2")  # bytes.fromhex would skip the space
    with pytest.raises(ValueError):
        hex_decode(b"xx")
    assert encode_le(0x1234, 4) == b"34120000"
    assert decode_le(b"34120000") == 0x1234
    assert decode_le(encode_le(2**64 - 1, 8)) == 2**64 - 1
    with pytest.raises(LocalProtocolError):
        encode_le(0x10000, 2)
    with pytest.raises(LocalProtocolError):
        encode_le(-1, 8)
    with pytest.raises(PayloadError):
        decode_le(b"xxxxxxxx")


def test_error_hierarchy() -> None:
    for error in (RemoteProtocolError, LocalProtocolError, PayloadError):
        assert issubclass(error, RspError)
    assert issubclass(RspError, LindbgError)
    assert issubclass(PayloadError, ValueError)


# ---------------------------------------------------------------- receiving


def test_packet_is_acked(chunk: Callable[[bytes], list[bytes]]) -> None:
    conn = server()
    assert feed(conn, frame(b"qSupported:multiprocess+"), chunk) == [Packet(b"qSupported:multiprocess+")]
    assert conn.data_to_send() == b"+"
    assert conn.data_to_send() == b""


def test_several_packets_and_a_partial_one(chunk: Callable[[bytes], list[bytes]]) -> None:
    conn = client()
    events = feed(conn, b"+$OK#9a+$E01#a6$T05th", chunk)
    assert events == [Ack(), Packet(b"OK"), Ack(), Packet(b"E01")]
    assert conn.data_to_send() == b"++"
    assert conn.receive_data(b"read:01;#" + b"%02x" % checksum(b"T05thread:01;")) == [
        Packet(b"T05thread:01;")
    ]


def test_checksum_digits_in_upper_case() -> None:
    assert server().receive_data(b"$OK#9A") == [Packet(b"OK")]


def test_received_escapes_and_rle_are_undone(chunk: Callable[[bytes], list[bytes]]) -> None:
    conn = client()
    data = bytes(range(256))
    assert feed(conn, frame(b"x" + data, rle=True) + frame(b"0" * 16, rle=True), chunk) == [
        Packet(b"x" + data),
        Packet(b"0" * 16),
    ]
    assert feed(conn, raw_frame(b"0* "), chunk) == [Packet(b"0000")]


def test_notification_is_never_acked(chunk: Callable[[bytes], list[bytes]]) -> None:
    conn = client()
    events = feed(conn, b"%Stop:T05#" + b"%02x" % checksum(b"Stop:T05") + b"$OK#9a", chunk)
    assert events == [Notification(b"Stop:T05"), Packet(b"OK")]
    assert conn.data_to_send() == b"+"


def test_notification_from_a_client_is_an_error() -> None:
    conn = server()
    with pytest.raises(RemoteProtocolError, match="notification"):
        conn.receive_data(frame(b"Stop:T05", notification=True))
    assert conn.state is State.ERROR


def test_interrupt_byte(chunk: Callable[[bytes], list[bytes]]) -> None:
    conn = server()
    assert feed(conn, b"\x03$c#63\x03", chunk) == [Interrupt(), Packet(b"c"), Interrupt()]
    assert conn.data_to_send() == b"+"
    # Inside a packet, 0x03 is data (the escape of '#' ends in it).
    assert feed(conn, raw_frame(b"a\x03b"), chunk) == [Packet(b"a\x03b")]
    # The client has nothing to be interrupted: the byte is ignored.
    conn = client()
    assert feed(conn, b"\x03", chunk) == []
    assert conn.ignored_bytes == 1


def test_interrupt_in_no_ack_mode() -> None:
    assert no_ack(server()).receive_data(b"\x03") == [Interrupt()]


def test_garbage_between_packets_is_ignored(chunk: Callable[[bytes], list[bytes]]) -> None:
    conn = server()
    assert feed(conn, b"junk\r\n$g#67 more", chunk) == [Packet(b"g")]
    assert conn.ignored_bytes == 11


def test_garbage_without_end_fails(chunk: Callable[[bytes], list[bytes]]) -> None:
    conn = server(max_garbage=10)
    assert feed(conn, b"x" * 10 + b"$g#67" + b"y" * 10, chunk) == [Packet(b"g")]
    with pytest.raises(RemoteProtocolError, match="more than 10 bytes of garbage"):
        feed(conn, b"z", chunk)


def test_packet_of_exactly_max_packet() -> None:
    conn = server(max_packet=8)
    assert conn.receive_data(frame(b"12345678")) == [Packet(b"12345678")]


def test_oversize_fails_before_the_end(chunk: Callable[[bytes], list[bytes]]) -> None:
    conn = server(max_packet=8)
    with pytest.raises(RemoteProtocolError, match="larger than 8 bytes"):
        feed(conn, b"$123456789", chunk)  # no '#' yet: known already
    assert conn.state is State.ERROR


def test_oversize_after_rle() -> None:
    conn = client(max_packet=50)
    with pytest.raises(RemoteProtocolError, match="decodes to more than 50 bytes"):
        conn.receive_data(raw_frame(b"0*~"))


def test_default_max_packet_holds_a_128k_memory_read() -> None:
    payload = hex_encode(bytes(range(256)) * 512)
    assert len(payload) == MAX_PACKET
    assert client().receive_data(frame(payload)) == [Packet(payload)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'*"0', "run-length encoding at the start of a packet"),
        (b"ab}", "escape character '}' at the end of a packet"),
        (b"0*\x10", "run-length count 0x10 out of range"),
        (b"0*", "without its count"),
        (b"a}* ", "escape character"),
    ],
)
@pytest.mark.parametrize("ack", [True, False])
def test_malformed_body_with_good_checksum_fails(body: bytes, message: str, ack: bool) -> None:
    conn = client() if ack else no_ack(client())
    with pytest.raises(RemoteProtocolError, match=message):
        conn.receive_data(raw_frame(body))
    assert conn.state is State.ERROR
    with pytest.raises(RemoteProtocolError, match="already failed"):
        conn.receive_data(b"$OK#9a")
    with pytest.raises(LocalProtocolError, match="failed"):
        conn.send_packet(b"g")


def test_bad_checksum_in_ack_mode_is_naked(chunk: Callable[[bytes], list[bytes]]) -> None:
    conn = server()
    events = feed(conn, b"$OK#9b$OK#9a", chunk)
    assert events == [BadPacket("packet: bad checksum: expected 9a, got 9b"), Packet(b"OK")]
    assert conn.data_to_send() == b"-+"
    assert conn.bad_packets == 1


def test_bad_checksum_characters_in_ack_mode() -> None:
    conn = server()
    assert conn.receive_data(b"$OK#zz") == [BadPacket("packet: bad checksum characters 'zz' (expected 9a)")]
    assert conn.data_to_send() == b"-"


def test_damaged_notification_is_not_naked() -> None:
    conn = client()
    events = conn.receive_data(b"%Stop:T05#00")
    assert len(events) == 1 and isinstance(events[0], BadPacket)
    assert conn.data_to_send() == b""


def test_new_packet_inside_a_packet_in_ack_mode(chunk: Callable[[bytes], list[bytes]]) -> None:
    conn = server()
    events = feed(conn, b"$m1000,4$m1000,4#" + b"%02x" % checksum(b"m1000,4"), chunk)
    assert events == [BadPacket("packet: a new packet ('$') started inside a packet"), Packet(b"m1000,4")]
    assert conn.data_to_send() == b"-+"


def test_too_many_damaged_frames_in_a_row() -> None:
    conn = server(max_bad=3)
    conn.receive_data(b"$OK#00$OK#00")
    conn.receive_data(b"$OK#9a")  # a good one resets the run
    conn.receive_data(b"$OK#00$OK#00")
    with pytest.raises(RemoteProtocolError, match=r"expected 9a, got 00 \(3 damaged frames in a row\)"):
        conn.receive_data(b"$OK#00")
    assert conn.bad_packets == 5
    assert MAX_BAD >= 3


def test_bad_checksum_without_acks_fails(chunk: Callable[[bytes], list[bytes]]) -> None:
    conn = no_ack(server())
    with pytest.raises(RemoteProtocolError, match=r"^packet: bad checksum: expected 9a, got 9b$"):
        feed(conn, b"$OK#9b", chunk)
    assert conn.state is State.ERROR


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"$OK#z9", "bad checksum characters 'z9'"),
        (b"$OK$OK#9a", "a new packet"),
    ],
)
def test_damage_without_acks_fails(data: bytes, message: str) -> None:
    conn = no_ack(client())
    with pytest.raises(RemoteProtocolError, match=message):
        conn.receive_data(data)


def test_error_keeps_the_events_before_it() -> None:
    conn = client()
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(b"$OK#9a" + raw_frame(b"*x"))
    assert info.value.events == [Packet(b"OK")]
    assert conn.data_to_send() == b"+"


def test_eof(chunk: Callable[[bytes], list[bytes]]) -> None:
    conn = client()
    assert feed(conn, b"$OK#9a", chunk) + conn.receive_data(b"") == [Packet(b"OK"), Closed()]
    assert conn.state is State.CLOSED
    assert conn.receive_data(b"$OK#9a") == []
    assert conn.receive_data(b"") == []
    for send in (lambda: conn.send_packet(b"g"), conn.interrupt, conn.resend, conn.start_no_ack):
        with pytest.raises(LocalProtocolError, match="closed"):
            send()


def test_eof_inside_a_packet() -> None:
    for partial in (b"$OK", b"$OK#", b"$OK#9"):
        conn = client()
        conn.receive_data(partial)
        with pytest.raises(RemoteProtocolError, match="inside a packet"):
            conn.receive_data(b"")
        assert conn.state is State.ERROR


def test_local_close() -> None:
    conn = server()
    conn.close()
    assert conn.state is State.CLOSED
    with pytest.raises(LocalProtocolError, match="closed"):
        conn.send_notification(b"Stop:T05")


# ---------------------------------------------------------------- sending and acks


def test_ack_clears_the_packet(chunk: Callable[[bytes], list[bytes]]) -> None:
    conn = client()
    assert conn.send_packet(b"g") == b"$g#67"
    assert conn.awaiting_ack
    assert feed(conn, b"+", chunk) == [Ack()]
    assert not conn.awaiting_ack


def test_nak_retransmits(chunk: Callable[[bytes], list[bytes]]) -> None:
    conn = client()
    sent = conn.send_packet(b"m1000,4")
    assert feed(conn, b"-", chunk) == [Nak()]
    assert conn.data_to_send() == sent
    assert feed(conn, b"--", chunk) == [Nak(), Nak()]
    assert conn.data_to_send() == sent * 2
    assert feed(conn, b"+", chunk) == [Ack()]
    assert feed(conn, b"-", chunk) == [Nak()]  # nothing left to resend
    assert conn.data_to_send() == b""


def test_endless_naks_fail() -> None:
    conn = client(max_bad=3)
    conn.send_packet(b"g")
    conn.receive_data(b"--")
    with pytest.raises(RemoteProtocolError, match="rejected our packet 3 times"):
        conn.receive_data(b"-")


def test_greeting_ack_is_harmless() -> None:
    conn = server()
    assert conn.receive_data(b"+") == [Ack()]  # gdb starts with one
    assert conn.data_to_send() == b""


def test_stop_and_wait() -> None:
    conn = client()
    conn.send_packet(b"g")
    with pytest.raises(LocalProtocolError, match="not acknowledged"):
        conn.send_packet(b"?")
    assert conn.resend() == b"$g#67"
    conn.receive_data(b"+")
    assert conn.send_packet(b"?") == b"$?#3f"
    assert conn.resend() == b"$?#3f"


def test_outgoing_bytes_stay_in_order() -> None:
    conn = server()
    conn.receive_data(b"$g#67")
    # The '+' owed for the command comes before the reply.
    assert conn.send_packet(b"00112233") == b"+$00112233#" + b"%02x" % checksum(b"00112233")
    assert conn.data_to_send() == b""


def test_send_escapes_and_rle() -> None:
    conn = server()
    payload = b"0" * 32 + b"#$}*"
    assert conn.send_packet(payload, rle=True) == frame(payload, rle=True)
    assert frame(payload, rle=True).startswith(b"$0*<")


def test_role_rules() -> None:
    with pytest.raises(LocalProtocolError, match="only the server sends notifications"):
        client().send_notification(b"Stop:T05")
    with pytest.raises(LocalProtocolError, match="only the client interrupts"):
        server().interrupt()
    with pytest.raises(LocalProtocolError, match="run-length"):
        client().send_packet(b"0000", rle=True)
    assert client().interrupt() == b"\x03"


def test_interrupt_and_notification_need_no_ack() -> None:
    conn = client()
    conn.send_packet(b"vCont;c")
    assert conn.interrupt() == b"\x03"
    srv = server()
    srv.send_packet(b"OK")
    assert srv.send_notification(b"Stop:T05") == frame(b"Stop:T05", notification=True)
    assert srv.awaiting_ack


def test_peer_max_packet() -> None:
    conn = client(peer_max_packet=8)
    assert conn.send_packet(b"12345678") == frame(b"12345678")
    conn.receive_data(b"+")
    # Escapes count: the limit is on the transmitted payload.
    with pytest.raises(LocalProtocolError, match="payload of 9 bytes exceeds the peer's limit of 8"):
        conn.send_packet(b"1234567#")
    assert not conn.awaiting_ack
    conn.peer_max_packet = None
    conn.send_packet(b"x" * 1000)


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        RspConnection(Role.CLIENT, max_packet=0)


# ---------------------------------------------------------------- no-ack mode


def test_no_ack_switch_server_side() -> None:
    conn = server()
    assert conn.receive_data(b"+$QStartNoAckMode#b0") == [Ack(), Packet(b"QStartNoAckMode")]
    assert conn.send_packet(b"OK") == b"+$OK#9a"
    conn.start_no_ack()
    assert conn.state is State.NO_ACK_MODE and not conn.ack_mode
    assert not conn.awaiting_ack
    # The client's ack for the OK arrives after the switch: ignored.
    assert conn.receive_data(b"+$g#67") == [Packet(b"g")]
    assert conn.data_to_send() == b""
    assert conn.send_packet(b"0011") == b"$0011#c2"
    assert not conn.awaiting_ack
    assert conn.send_packet(b"0011") == b"$0011#c2"  # no stop-and-wait without acks
    with pytest.raises(LocalProtocolError, match="started already"):
        conn.start_no_ack()


def test_no_ack_switch_client_side() -> None:
    conn = client()
    assert conn.send_packet(b"QStartNoAckMode") == b"$QStartNoAckMode#b0"
    assert conn.receive_data(b"+$OK#9a") == [Ack(), Packet(b"OK")]
    conn.start_no_ack()
    assert conn.data_to_send() == b"+"  # gdb acknowledges the OK itself
    assert conn.send_packet(b"g") == b"$g#67"
    assert conn.receive_data(b"$00#60") == [Packet(b"00")]
    assert conn.data_to_send() == b""


# ---------------------------------------------------------------- two ends on a fake wire


class Wire:
    """A client and a server joined back to back; bytes are moved explicitly."""

    def __init__(self) -> None:
        self.client = client()
        self.server = server()
        self.to_server = bytearray()
        self.to_client = bytearray()
        self.log: list[tuple[str, bytes]] = []

    def client_sends(self, data: bytes) -> None:
        self.to_server += data
        self.log.append(("c", data))

    def server_sends(self, data: bytes) -> None:
        self.to_client += data
        self.log.append(("s", data))

    def deliver_to_server(self) -> list[Event]:
        data, self.to_server = bytes(self.to_server), bytearray()
        events = feed(self.server, data, bytewise)
        self.server_sends(self.server.data_to_send())
        return events

    def deliver_to_client(self) -> list[Event]:
        data, self.to_client = bytes(self.to_client), bytearray()
        events = feed(self.client, data)
        self.client_sends(self.client.data_to_send())
        return events

    def command(self, payload: bytes, reply: bytes) -> list[Event]:
        """One round trip; the client's events."""
        self.client_sends(self.client.send_packet(payload))
        assert [e for e in self.deliver_to_server() if not isinstance(e, Ack)] == [Packet(payload)]
        self.server_sends(self.server.send_packet(reply, rle=True))
        return self.deliver_to_client()


def test_wire_with_acks() -> None:
    wire = Wire()
    wire.client_sends(b"+")  # gdb's greeting
    assert wire.command(b"qSupported:swbreak+", b"PacketSize=40000") == [
        Ack(),
        Packet(b"PacketSize=40000"),
    ]
    data = bytes(range(256)) + b"\0" * 100
    assert wire.command(b"X1000,4:" + data, b"OK") == [Ack(), Packet(b"OK")]
    assert wire.command(b"m1000,100", hex_encode(data)) == [Ack(), Packet(hex_encode(data))]
    wire.deliver_to_server()
    assert not wire.client.awaiting_ack and not wire.server.awaiting_ack


def test_wire_with_a_damaged_reply() -> None:
    wire = Wire()
    wire.client_sends(wire.client.send_packet(b"g"))
    wire.deliver_to_server()
    good = wire.server.send_packet(b"0011")
    wire.to_client += good.replace(b"0011", b"0012")  # noise on the line
    assert [type(e) for e in wire.deliver_to_client()] == [Ack, BadPacket]
    assert wire.deliver_to_server() == [Nak()]
    assert wire.deliver_to_client() == [Packet(b"0011")]
    assert wire.deliver_to_server() == [Ack()]


def test_wire_switches_to_no_ack() -> None:
    wire = Wire()
    assert wire.command(b"QStartNoAckMode", b"OK")[-1] == Packet(b"OK")
    # The server switched right after sending OK (in command()), the client
    # switches now that it got the OK; its '+' for the OK is already on the wire.
    wire.server.start_no_ack()
    wire.client.start_no_ack()
    assert wire.to_server == b"+"
    mark = len(wire.log)
    for i in range(5):
        reply = hex_encode(bytes([i]) * 64)
        assert wire.command(b"m%x,40" % i, reply) == [Packet(reply)]
    wire.deliver_to_server()
    sent = b"".join(data for _, data in wire.log[mark:])
    assert b"+" not in sent and b"-" not in sent
    assert wire.server.ignored_bytes == 1


# ---------------------------------------------------------------- fuzzing


def _run(role: Role, ack: bool, chunks: list[bytes]) -> tuple[list[Event], bytes, str | None, int, int]:
    conn = RspConnection(role, max_packet=64, max_garbage=40)
    if not ack:
        conn.start_no_ack()
    events: list[Event] = []
    error: str | None = None
    try:
        for part in chunks:
            if part:  # b"" would mean EOF
                events += conn.receive_data(part)
    except RemoteProtocolError as exc:
        events += exc.events
        error = str(exc)
        assert conn.state is State.ERROR
    return events, conn.data_to_send(), error, conn.bad_packets, conn.ignored_bytes


_PIECES = st.one_of(
    st.binary(max_size=20),
    st.sampled_from([b"$", b"%", b"#", b"+", b"-", b"\x03", b"}", b"*", b"$OK#9a", b"%OK#9a", b"0*~"]),
    st.binary(max_size=30).map(frame),
    st.binary(max_size=30).map(lambda p: frame(p, rle=True)),
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(_PIECES, max_size=12).map(b"".join),
    st.lists(st.integers(1, 50), max_size=20),
    st.sampled_from(list(Role)),
    st.booleans(),
)
def test_any_bytes_any_chunking(data: bytes, cuts: list[int], role: Role, ack: bool) -> None:
    chunks = []
    rest = data
    for cut in cuts:
        chunks.append(rest[:cut])
        rest = rest[cut:]
    chunks.append(rest)
    chunks = [part for part in chunks if part]
    reference = _run(role, ack, [data])
    assert _run(role, ack, chunks) == reference
    assert _run(role, ack, bytewise(data)) == reference


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=6), st.booleans(), st.booleans())
def test_any_payloads_cross_the_wire(payloads: list[bytes], ack: bool, rle: bool) -> None:
    wire = Wire()
    if not ack:
        wire.client.start_no_ack()
        wire.server.start_no_ack()
    for payload in payloads:
        wire.client_sends(wire.client.send_packet(payload))
        assert Packet(payload) in wire.deliver_to_server()
        wire.server_sends(wire.server.send_packet(payload[::-1], rle=rle))
        assert Packet(payload[::-1]) in wire.deliver_to_client()


# ---------------------------------------------------------------- the fast ways


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=300), st.integers(0, 2 * MAX_PACKET + 700))
def test_checksum_of_long_data_is_the_byte_sum(seed: bytes, size: int) -> None:
    data = (seed * (size // len(seed) + 1))[:size]
    assert checksum(data) == sum(data) % 256


@pytest.mark.parametrize("size", [511, 512, 513, 65536, 2 * MAX_PACKET, 2 * MAX_PACKET + 1, 3 * MAX_PACKET])
def test_checksum_of_chunks_of_0xff(size: int) -> None:
    # 256 bytes of 0xff sum to 65280, the most a piece adds up to (adler32's modulus is 65521)
    data = b"\xff" * size
    assert checksum(data) == sum(data) % 256
    assert checksum(memoryview(data)) == sum(data) % 256


def _reference_escape(payload: bytes) -> bytes:
    return re.sub(rb"[#$}*]", lambda m: bytes((0x7D, m[0][0] ^ 0x20)), payload)


@given(st.binary(max_size=600) | st.lists(st.sampled_from(b"#$}*]\x03\x04\n0")).map(bytes))
def test_escaping_is_the_byte_by_byte_rule(payload: bytes) -> None:
    assert encode_payload(payload) == _reference_escape(payload)
    assert encode_payload(bytearray(payload)) == _reference_escape(payload)


@pytest.mark.parametrize(("length", "count"), [(14, 13), (97, 96)])
def test_rle_counts_are_never_star_or_escape(length: int, count: int) -> None:
    # 13 and 96 would be sent as '*' and '}': one less, and the rest as it is
    encoded = encode_payload(b"0" * length, rle=True)
    assert encoded == b"0*" + bytes((count - 1 + 29,)) + b"0"
    assert decode_payload(encoded) == b"0" * length


@settings(max_examples=400, deadline=None)
@given(
    st.binary(max_size=40) | st.lists(st.sampled_from(b"$#}*%0aO+K")).map(bytes),
    st.lists(st.sampled_from(b"0123456789abcdefABCDEF +-_xXg#$"), min_size=2, max_size=2).map(bytes),
    st.sampled_from(list(Role)),
    st.booleans(),
)
def test_one_whole_frame_reads_as_it_does_byte_by_byte(
    body: bytes, sum_chars: bytes, role: Role, ack: bool
) -> None:
    # a frame read whole takes the short way when it can; it must agree with the long one
    for data in (b"$" + body + b"#" + sum_chars, raw_frame(body), raw_frame(body, b"%")):
        assert _run(role, ack, [data]) == _run(role, ack, bytewise(data))


def test_a_whole_frame_over_the_limit_fails_as_it_does_in_pieces() -> None:
    data = raw_frame(b"m" * 11)
    for chunks in ([data], bytewise(data)):
        conn = server(max_packet=10)
        with pytest.raises(RemoteProtocolError, match="larger than 10 bytes"):
            for part in chunks:
                conn.receive_data(part)
        assert conn.state is State.ERROR
