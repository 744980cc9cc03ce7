"""One parser for the option strings of every transport (DESIGN.md section 4), pure: no I/O.

Strategy: ``TRANSPORT:field=value,field,...`` is split once at the first ``:`` and then at
every ``,``; each field is looked up in one table of the fields a transport allows in a
role, so the server and client parsers, the error messages and ``describe()`` all read
the same facts. Names are case-insensitive (WinDbg accepts ``Port=`` and ``port=``);
values are kept as written, stripped of surrounding blanks, except ``proto`` which is
folded to lower case because it names one of two constants.

Every failure is a :class:`TransportError` with a one-line message that names the
offending field. A password is never echoed: not in a message, not in ``repr()``, not
in ``describe()``; :func:`masked` gives the typed string with its value replaced by
``*`` for anyone who wants to show what was typed.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from dataclasses import dataclass, field

from lindbg.errors import InvalidOperationError

TRANSPORTS = ("tcp", "npipe", "ssl", "spipe", "com")

#: The fields each transport allows in each role.
_FIELDS: dict[tuple[str, str], frozenset[str]] = {
    ("tcp", "server"): frozenset(
        {"port", "bind", "password", "hidden", "ipversion", "clicon", "insecure", "persist"}
    ),
    ("tcp", "client"): frozenset({"server", "port", "password", "ipversion", "clicon", "bind"}),
    ("npipe", "server"): frozenset({"pipe", "password", "hidden", "persist"}),
    ("npipe", "client"): frozenset({"pipe", "server", "password"}),
    ("ssl", "server"): frozenset(
        {
            "port",
            "cert",
            "key",
            "proto",
            "bind",
            "password",
            "hidden",
            "ipversion",
            "clicon",
            "persist",
            "insecure",
        }
    ),
    ("ssl", "client"): frozenset(
        {"server", "port", "cafile", "proto", "password", "ipversion", "clicon", "bind"}
    ),
    ("spipe", "server"): frozenset({"pipe", "cert", "key", "proto", "password", "hidden", "persist"}),
    ("spipe", "client"): frozenset({"pipe", "server", "cafile", "proto", "password"}),
    ("com", "server"): frozenset({"port", "baud", "channel", "password", "persist", "hidden"}),
    ("com", "client"): frozenset({"port", "baud", "channel", "password"}),
}
_ALL_FIELDS = frozenset().union(*_FIELDS.values())
#: Fields that take no value: present means true.
_FLAGS = frozenset({"hidden", "insecure"})

DEFAULT_BIND_V4 = "127.0.0.1"
DEFAULT_BIND_V6 = "::1"
DEFAULT_PERSIST = 30.0
#: Longest pipe name: the socket path must fit ``sun_path`` (108 bytes) with its directory.
MAX_PIPE_NAME = 100

_DIGITS = re.compile(r"[0-9]{1,10}")
_SECONDS = re.compile(r"[0-9]{1,12}(?:\.[0-9]*)?|\.[0-9]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LOCAL_PIPE_SERVERS = ("localhost", "127.0.0.1")
_KNOWN = ", ".join(TRANSPORTS)


class TransportError(InvalidOperationError):
    """An option string is wrong, or a listener or connection could not be made.

    ``str()`` is one line that names the transport and the offending field (or the
    host, port, pipe or file) and never contains a password.
    """


@dataclass(frozen=True)
class TransportOptions:
    """A parsed option string: one transport, one role (``server`` or ``client``).

    Fields a transport does not use stay ``None``; see the module docstring of
    ``lindbg.transports.endpoints`` for what each one does on a real socket.
    """

    transport: str
    role: str
    port: int | None = None
    port_last: int | None = None
    bind: str | None = None
    server: str | None = None
    clicon: str | None = None
    ipversion: int = 4
    hidden: bool = False
    pipe: str | None = None
    cert: str | None = None
    key: str | None = None
    cafile: str | None = None
    proto: str | None = None
    device: str | None = None
    baud: int | None = None
    channel: int | None = None
    password: str | None = field(default=None, repr=False)
    insecure: bool = False
    persist: float = DEFAULT_PERSIST

    @property
    def is_tls(self) -> bool:
        """The transport runs TLS (``ssl`` over TCP, ``spipe`` over a unix socket)."""
        return self.transport in ("ssl", "spipe")

    @property
    def default_bind(self) -> str:
        """The address a tcp/ssl listener binds when ``bind=`` is not given."""
        return DEFAULT_BIND_V6 if self.ipversion == 6 else DEFAULT_BIND_V4

    @property
    def bind_address(self) -> str | None:
        """The address actually listened on (tcp/ssl servers, clicon clients), else None."""
        if self.transport not in ("tcp", "ssl"):
            return None
        if self.role == "server" and self.clicon is not None:
            return None
        if self.role == "client" and self.clicon is None:
            return None
        return self.bind if self.bind is not None else self.default_bind

    def describe(self, port: int | None = None) -> str:
        """The ``.servers`` form: WinDbg's capitalised names in a fixed order, ``Password=*``.

        ``port`` is the port actually bound; it replaces a range or ``0``.
        """
        parts: list[str] = []
        if self.server is not None:
            parts.append(f"Server={self.server}")
        if self.transport == "com":
            if self.device is not None:
                parts.append(f"Port={self.device}")
        elif port is not None:
            parts.append(f"Port={port}")
        elif self.port is not None:
            last = self.port_last
            parts.append(
                f"Port={self.port}" if last is None or last == self.port else f"Port={self.port}:{last}"
            )
        if self.pipe is not None:
            parts.append(f"Pipe={self.pipe}")
        if self.bind is not None and self.bind != self.default_bind:
            parts.append(f"Bind={self.bind}")
        named = (
            ("CliCon", self.clicon),
            ("Cert", self.cert),
            ("Key", self.key),
            ("CaFile", self.cafile),
            ("Proto", self.proto),
            ("Baud", self.baud),
            ("Channel", self.channel),
        )
        parts.extend(f"{name}={value}" for name, value in named if value is not None)
        if self.password is not None:
            parts.append("Password=*")
        if self.hidden:
            parts.append("Hidden")
        if self.ipversion == 6:
            parts.append("IpVersion=6")
        if self.insecure:
            parts.append("Insecure")
        return f"{self.transport}:{','.join(parts)}"


def parse_server_options(text: str) -> TransportOptions:
    """Parse the options of ``.server`` / ``lindbg -server``; raises :class:`TransportError`."""
    return _parse(text, "server")


def parse_client_options(text: str) -> TransportOptions:
    """Parse the options of ``lindbg -remote`` / ``debug_connect``; raises :class:`TransportError`."""
    return _parse(text, "client")


def check_server_security(options: TransportOptions) -> None:
    """Refuse a tcp server that would reach beyond this machine without a password or TLS.

    ``insecure`` says the user wants it anyway. TLS alone is accepted (the peer at least
    knows whom it talks to and nobody reads along), and npipe/spipe/com are local.
    """
    if options.role != "server" or options.transport not in ("tcp", "ssl"):
        return
    if options.insecure or options.password is not None or options.is_tls:
        return
    if options.clicon is not None:
        verb, address = "connecting out to", options.clicon
    else:
        verb, address = "binding", options.bind_address or options.default_bind
    if not is_loopback(address):
        raise TransportError(
            f"{options.transport}: {verb} {address} without a password or TLS exposes the session; "
            "add password=... or use ssl, or say insecure"
        )


def is_loopback(host: str) -> bool:
    """``host`` certainly stays on this machine: 127.0.0.0/8, ::1 or ``localhost``.

    A host name other than ``localhost`` counts as remote: what it resolves to can change.
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text.lower() in ("localhost", "localhost."):
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def masked(text: str) -> str:
    """``text`` as typed with every password value replaced by ``*``.

    Works on any text, parsable or not: each comma-separated piece whose name (after
    any ``TRANSPORT:``) is ``password`` has its value masked; blanks are kept.
    """
    pieces = text.split(",")
    for index, piece in enumerate(pieces):
        name, equals, value = piece.partition("=")
        if not equals or name.rsplit(":", 1)[-1].strip().lower() != "password" or not value.strip():
            continue
        leading = value[: len(value) - len(value.lstrip())]
        trailing = value[len(value.rstrip()) :]
        pieces[index] = f"{name}={leading}*{trailing}"
    return ",".join(pieces)


def pipe_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a pipe (a socket file in the pipe directory), or None."""
    if not name:
        return "is empty"
    if name in (".", ".."):
        return f"cannot be {name!r}"
    if "/" in name:
        return "cannot contain '/'"
    if len(name) > MAX_PIPE_NAME:
        return f"is longer than {MAX_PIPE_NAME} characters"
    try:
        os.fsencode(name)
    except UnicodeError:
        return "cannot be encoded as a file name"
    return None


# ------------------------------------------------------------------ parsing


def _parse(text: str, role: str) -> TransportOptions:
    stripped = text.strip()
    if not stripped:
        raise TransportError(f"empty transport options; expected TRANSPORT:field=value,... ({_KNOWN})")
    head, colon, rest = stripped.partition(":")
    name = head.strip()
    # A head holding '=' or ',' is a field list without its transport; echoing it could
    # show a password, so the message only says what is missing.
    if not name or "=" in name or "," in name:
        raise TransportError(f"transport options must start with TRANSPORT: (one of {_KNOWN})")
    transport = name.lower()
    if transport not in TRANSPORTS:
        raise TransportError(f"unknown transport {name[:40]!r} (known: {_KNOWN})")
    values = _split_fields(transport, role, rest) if colon else {}
    return _build(transport, role, values)


def _split_fields(transport: str, role: str, rest: str) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    if not rest.strip():
        return values
    after_password = False
    for piece in rest.split(","):
        item = piece.strip()
        if not item:
            raise TransportError(f"{transport}: empty option between commas")
        raw_name, equals, raw_value = item.partition("=")
        name = raw_name.strip()
        key = name.lower()
        if not name:
            raise TransportError(f"{transport}: an option has a value but no name")
        if key not in _FIELDS[(transport, role)]:
            if after_password and not equals:
                # Most likely the rest of a password that held a comma: do not show it.
                raise TransportError(
                    f"{transport}: unknown option after password= (a password cannot hold ',')"
                )
            raise TransportError(_unknown_field(transport, role, key, name))
        if key in values:
            written = key if key in _FLAGS else f"{key}="
            raise TransportError(f"{transport}: {written} given twice")
        value = raw_value.strip()
        if key in _FLAGS:
            if equals:
                raise TransportError(f"{transport}: {key} takes no value (write just '{key}')")
            values[key] = None
        else:
            if not equals or not value:
                raise TransportError(f"{transport}: {key}= needs a value")
            if _CONTROL.search(value):
                raise TransportError(f"{transport}: {key}= holds a control character")
            values[key] = value
        after_password = key == "password"
    return values


def _unknown_field(transport: str, role: str, key: str, name: str) -> str:
    other = "client" if role == "server" else "server"
    if key in _FIELDS[(transport, other)]:
        return f"{transport}: {key!r} is a {other} option"
    if key in _ALL_FIELDS:
        return f"{transport}: {key!r} is not an option of a {transport} {role}"
    return f"{transport}: unknown option {name[:40]!r}"


def _build(transport: str, role: str, values: dict[str, str | None]) -> TransportOptions:
    def text(key: str) -> str | None:
        return values.get(key)

    port: int | None = None
    port_last: int | None = None
    device: str | None = None
    raw_port = text("port")
    if raw_port is not None:
        if transport == "com":
            device = raw_port
        elif role == "server":
            port, port_last = _server_ports(transport, raw_port)
        else:
            port = _client_port(transport, raw_port)

    ipversion = 4
    raw_ipversion = text("ipversion")
    if raw_ipversion is not None:
        if raw_ipversion not in ("4", "6"):
            raise TransportError(f"{transport}: ipversion={raw_ipversion!r} must be 4 or 6")
        ipversion = int(raw_ipversion)

    proto = text("proto")
    if proto is not None:
        if proto.lower() not in ("tls1.2", "tls1.3"):
            raise TransportError(f"{transport}: proto={proto!r} must be tls1.2 or tls1.3")
        proto = proto.lower()

    pipe = text("pipe")
    if pipe is not None:
        problem = pipe_name_problem(pipe)
        if problem is not None:
            raise TransportError(f"{transport}: pipe={pipe[:40]!r} {problem}")

    baud: int | None = None
    raw_baud = text("baud")
    if raw_baud is not None:
        baud = _integer(transport, "baud", raw_baud, 1, 2**31 - 1, "a positive integer")

    channel: int | None = None
    raw_channel = text("channel")
    if raw_channel is not None:
        channel = _integer(transport, "channel", raw_channel, 0, 254, "an integer 0-254")

    persist = DEFAULT_PERSIST
    raw_persist = text("persist")
    if raw_persist is not None:
        seconds = float(raw_persist) if _SECONDS.fullmatch(raw_persist) else math.nan
        if not math.isfinite(seconds):
            raise TransportError(f"{transport}: persist={raw_persist!r} must be a number of seconds >= 0")
        persist = seconds

    server = text("server")
    clicon = text("clicon")
    bind = text("bind")
    if transport in ("npipe", "spipe") and server is not None and server.lower() not in _LOCAL_PIPE_SERVERS:
        raise TransportError(
            f"{transport}: server={server!r}: a named pipe is a unix socket on this machine; "
            "use server=localhost (or tcp/ssl to reach another host)"
        )
    if transport in ("tcp", "ssl"):
        if role == "server" and clicon is not None and bind is not None:
            raise TransportError(
                f"{transport}: bind= cannot go with clicon= (a reverse server does not listen)"
            )
        if role == "client" and clicon is not None and server is not None:
            raise TransportError(
                f"{transport}: server= cannot go with clicon= (the server connects to the client)"
            )
        if role == "client" and clicon is None and bind is not None:
            raise TransportError(
                f"{transport}: bind= on a client needs clicon= (it is where the client listens)"
            )

    for key in _required(transport, role, clicon is not None):
        if key not in values:
            what = " (the device path)" if transport == "com" and key == "port" else ""
            raise TransportError(f"{transport}: {key}={what} is required")

    return TransportOptions(
        transport=transport,
        role=role,
        port=port,
        port_last=port_last,
        bind=bind,
        server=server,
        clicon=clicon,
        ipversion=ipversion,
        hidden="hidden" in values,
        pipe=pipe,
        cert=text("cert"),
        key=text("key"),
        cafile=text("cafile"),
        proto=proto,
        device=device,
        baud=baud,
        channel=channel,
        password=text("password"),
        insecure="insecure" in values,
        persist=persist,
    )


def _required(transport: str, role: str, clicon: bool) -> tuple[str, ...]:
    if transport in ("tcp", "ssl"):
        tls = ("cert", "key") if transport == "ssl" and role == "server" else ()
        # A client names the host to reach, unless the server is the one connecting.
        host = ("server",) if role == "client" and not clicon else ()
        return ("port", *host, *tls)
    if transport in ("npipe", "spipe"):
        return ("pipe", "cert", "key") if transport == "spipe" and role == "server" else ("pipe",)
    return ("port", "baud")


def _integer(transport: str, key: str, text: str, low: int, high: int, what: str) -> int:
    number = int(text) if _DIGITS.fullmatch(text) else None
    if number is None or not low <= number <= high:
        raise TransportError(f"{transport}: {key}={text[:40]!r} must be {what}")
    return number


def _server_ports(transport: str, text: str) -> tuple[int, int]:
    first_text, colon, last_text = text.partition(":")
    first = _integer(
        transport, "port", first_text.strip(), 0, 65535, "a port number 0-65535 or a range P1:P2"
    )
    if not colon:
        return first, first
    last = _integer(transport, "port", last_text.strip(), 0, 65535, "a port number 0-65535 or a range P1:P2")
    if first == 0 or last == 0:
        raise TransportError(f"{transport}: port={text!r}: port 0 (any free port) cannot be part of a range")
    if first > last:
        raise TransportError(f"{transport}: port={text!r}: the range is reversed (write P1:P2 with P1 <= P2)")
    return first, last


def _client_port(transport: str, text: str) -> int:
    if ":" in text:
        raise TransportError(f"{transport}: port={text!r}: a client uses one port, not a range")
    return _integer(transport, "port", text, 1, 65535, "a port number 1-65535")
