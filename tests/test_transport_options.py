"""The option strings of debugging servers and clients (DESIGN.md section 4): parsing,
the errors and their one-line messages, ``describe()``, ``masked()`` and the refusal of
servers that would expose a session."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lindbg.errors import InvalidOperationError
from lindbg.transports.options import (
    TRANSPORTS,
    TransportError,
    TransportOptions,
    check_server_security,
    masked,
    parse_client_options,
    parse_server_options,
)

SECRET = "Sesame-Open-42"

# ------------------------------------------------------------------ valid strings

SERVER_CASES = [
    ("tcp:port=7", TransportOptions("tcp", "server", port=7, port_last=7)),
    ("TCP:Port=5000:5010", TransportOptions("tcp", "server", port=5000, port_last=5010)),
    ("tcp:port=0", TransportOptions("tcp", "server", port=0, port_last=0)),
    (
        " tcp: port = 5005 , bind = 0.0.0.0 , password = w , insecure , persist = 2.5 ",
        TransportOptions(
            "tcp",
            "server",
            port=5005,
            port_last=5005,
            bind="0.0.0.0",
            password="w",
            insecure=True,
            persist=2.5,
        ),
    ),
    (
        "tcp:port=7,hidden,ipversion=6",
        TransportOptions("tcp", "server", port=7, port_last=7, hidden=True, ipversion=6),
    ),
    ("tcp:port=7,clicon=host", TransportOptions("tcp", "server", port=7, port_last=7, clicon="host")),
    ("npipe:pipe=rabbit", TransportOptions("npipe", "server", pipe="rabbit")),
    (
        "npipe:Pipe=Tiger,Password=w,Hidden,persist=0",
        TransportOptions("npipe", "server", pipe="Tiger", password="w", hidden=True, persist=0.0),
    ),
    (
        "ssl:port=5006,cert=/x/c.pem,key=/x/k.pem,proto=TLS1.3",
        TransportOptions(
            "ssl", "server", port=5006, port_last=5006, cert="/x/c.pem", key="/x/k.pem", proto="tls1.3"
        ),
    ),
    (
        "ssl:port=1:2,cert=c,key=k,bind=::,ipversion=6,password=p,hidden,insecure",
        TransportOptions(
            "ssl",
            "server",
            port=1,
            port_last=2,
            cert="c",
            key="k",
            bind="::",
            ipversion=6,
            password="p",
            hidden=True,
            insecure=True,
        ),
    ),
    (
        "spipe:pipe=tiger,cert=c,key=k,proto=tls1.2",
        TransportOptions("spipe", "server", pipe="tiger", cert="c", key="k", proto="tls1.2"),
    ),
    (
        "com:port=/dev/ttyS0,baud=115200,channel=3,hidden,persist=10",
        TransportOptions(
            "com", "server", device="/dev/ttyS0", baud=115200, channel=3, hidden=True, persist=10.0
        ),
    ),
]

CLIENT_CASES = [
    ("tcp:server=host,port=5", TransportOptions("tcp", "client", server="host", port=5)),
    (
        "tcp:Server=Host.Example,port=5,password=w,ipversion=6",
        TransportOptions("tcp", "client", server="Host.Example", port=5, password="w", ipversion=6),
    ),
    ("tcp:clicon=srv,port=5", TransportOptions("tcp", "client", clicon="srv", port=5)),
    (
        "tcp:clicon=srv,port=5,bind=0.0.0.0",
        TransportOptions("tcp", "client", clicon="srv", port=5, bind="0.0.0.0"),
    ),
    ("npipe:pipe=rabbit", TransportOptions("npipe", "client", pipe="rabbit")),
    (
        "npipe:server=LocalHost,pipe=rabbit,password=w",
        TransportOptions("npipe", "client", server="LocalHost", pipe="rabbit", password="w"),
    ),
    (
        "ssl:server=h,port=5,cafile=/ca.pem,proto=tls1.3",
        TransportOptions("ssl", "client", server="h", port=5, cafile="/ca.pem", proto="tls1.3"),
    ),
    ("ssl:clicon=h,port=5", TransportOptions("ssl", "client", clicon="h", port=5)),
    (
        "spipe:server=127.0.0.1,pipe=t,cafile=ca",
        TransportOptions("spipe", "client", server="127.0.0.1", pipe="t", cafile="ca"),
    ),
    (
        "com:port=/dev/pts/3,baud=9600,channel=254,password=w",
        TransportOptions("com", "client", device="/dev/pts/3", baud=9600, channel=254, password="w"),
    ),
]


@pytest.mark.parametrize(("text", "expected"), SERVER_CASES)
def test_server_options_parse_exactly(text: str, expected: TransportOptions) -> None:
    assert parse_server_options(text) == expected


@pytest.mark.parametrize(("text", "expected"), CLIENT_CASES)
def test_client_options_parse_exactly(text: str, expected: TransportOptions) -> None:
    assert parse_client_options(text) == expected


def test_transport_error_is_an_invalid_operation() -> None:
    assert issubclass(TransportError, InvalidOperationError)


def test_values_are_kept_as_written() -> None:
    options = parse_server_options("npipe:PIPE=MiXeD Name,password=  Pa Ss  ")
    assert options.pipe == "MiXeD Name"
    assert options.password == "Pa Ss"


def test_default_bind_and_tls() -> None:
    assert parse_server_options("tcp:port=1").bind_address == "127.0.0.1"
    assert parse_server_options("tcp:port=1,ipversion=6").bind_address == "::1"
    assert parse_server_options("tcp:port=1,bind=10.0.0.1").bind_address == "10.0.0.1"
    assert parse_client_options("tcp:clicon=h,port=1").bind_address == "127.0.0.1"
    assert parse_client_options("tcp:server=h,port=1").bind_address is None
    assert parse_server_options("ssl:port=1,cert=c,key=k").is_tls
    assert parse_server_options("spipe:pipe=p,cert=c,key=k").is_tls
    assert not parse_server_options("tcp:port=1").is_tls


# ------------------------------------------------------------------ errors

SERVER_ERRORS = [
    ("", "empty"),
    ("   ", "empty"),
    ("port=5", "TRANSPORT:"),
    (":port=5", "TRANSPORT:"),
    ("udp:port=5", "unknown transport 'udp'"),
    ("udp", "unknown transport 'udp'"),
    ("tcp", "port= is required"),
    ("tcp:", "port= is required"),
    ("npipe", "pipe= is required"),
    ("ssl:port=5", "cert= is required"),
    ("ssl:port=5,cert=c", "key= is required"),
    ("spipe:pipe=p,cert=c", "key= is required"),
    ("com:baud=5", "port="),
    ("com:port=/dev/x", "baud= is required"),
    ("tcp:port=1,foo", "unknown option 'foo'"),
    ("tcp:port=1,foo=bar", "unknown option 'foo'"),
    ("tcp:port=1,server=h", "'server' is a client option"),
    ("ssl:port=1,cert=c,key=k,cafile=x", "'cafile' is a client option"),
    ("tcp:port=1,cert=x", "'cert' is not an option of a tcp server"),
    ("npipe:pipe=p,port=1", "'port' is not an option of a npipe server"),
    ("tcp:port=1,Port=2", "port= given twice"),
    ("tcp:port=1,hidden,HIDDEN", "hidden given twice"),
    ("tcp:port=", "port= needs a value"),
    ("tcp:port=  ", "port= needs a value"),
    ("tcp:port", "port= needs a value"),
    ("tcp:port=1,password=", "password= needs a value"),
    ("tcp:port=1,hidden=1", "hidden takes no value"),
    ("tcp:port=1,insecure=yes", "insecure takes no value"),
    ("tcp:port=1,,hidden", "empty option"),
    ("tcp:port=1,", "empty option"),
    ("tcp:,port=1", "empty option"),
    ("tcp:port=1,=x", "no name"),
    ("tcp:port=65536", "port="),
    ("tcp:port=-1", "port="),
    ("tcp:port=abc", "port="),
    ("tcp:port=\uff15", "port="),  # a fullwidth digit
    ("tcp:port=9:5", "port='9:5'"),
    ("tcp:port=0:5", "port='0:5'"),
    ("tcp:port=5:70000", "port="),
    ("tcp:port=1,ipversion=5", "ipversion="),
    ("tcp:port=1,ipversion=v6", "ipversion="),
    ("tcp:port=1,persist=-1", "persist="),
    ("tcp:port=1,persist=nan", "persist="),
    ("tcp:port=1,persist=1e3", "persist="),
    ("ssl:port=1,cert=c,key=k,proto=tls1.1", "proto="),
    ("ssl:port=1,cert=c,key=k,proto=ssl3", "proto="),
    ("npipe:pipe=a/b", "pipe="),
    ("npipe:pipe=.", "pipe="),
    ("npipe:pipe=..", "pipe="),
    ("npipe:pipe=" + "x" * 101, "pipe="),
    ("com:port=/dev/x,baud=0", "baud="),
    ("com:port=/dev/x,baud=-5", "baud="),
    ("com:port=/dev/x,baud=fast", "baud="),
    ("com:port=/dev/x,baud=9600,channel=255", "channel="),
    ("com:port=/dev/x,baud=9600,channel=x", "channel="),
    ("tcp:port=1,clicon=h,bind=0.0.0.0", "bind="),
    ("tcp:port=1,bind=a\tb", "bind="),
]

CLIENT_ERRORS = [
    ("tcp:port=5", "server= is required"),
    ("tcp:server=h", "port= is required"),
    ("tcp:server=h,port=0", "port="),
    ("tcp:server=h,port=5:6", "port="),
    ("tcp:server=h,port=5,hidden", "'hidden' is a server option"),
    ("tcp:server=h,port=5,insecure", "'insecure' is a server option"),
    ("tcp:server=h,port=5,persist=3", "'persist' is a server option"),
    ("tcp:server=h,port=5,pipe=x", "'pipe' is not an option of a tcp client"),
    ("tcp:server=h,port=5,bind=0.0.0.0", "bind="),
    ("tcp:clicon=h,server=h,port=5", "server="),
    ("ssl:server=h,port=5,cert=c", "'cert' is a server option"),
    ("npipe:server=otherhost,pipe=p", "server='otherhost'"),
    ("spipe:server=10.0.0.1,pipe=p", "server='10.0.0.1'"),
    ("npipe:server=localhost", "pipe= is required"),
    ("com:port=/dev/x", "baud= is required"),
    ("com:port=/dev/x,baud=9600,hidden", "'hidden' is a server option"),
]


@pytest.mark.parametrize(("text", "fragment"), SERVER_ERRORS)
def test_server_option_errors_name_the_field(text: str, fragment: str) -> None:
    with pytest.raises(TransportError) as caught:
        parse_server_options(text)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize(("text", "fragment"), CLIENT_ERRORS)
def test_client_option_errors_name_the_field(text: str, fragment: str) -> None:
    with pytest.raises(TransportError) as caught:
        parse_client_options(text)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message


def test_unknown_transport_lists_the_known_ones() -> None:
    with pytest.raises(TransportError) as caught:
        parse_server_options("serial:port=x")
    for name in TRANSPORTS:
        assert name in str(caught.value)


def test_pipe_servers_other_than_localhost_are_refused_as_local() -> None:
    with pytest.raises(TransportError, match="unix socket"):
        parse_client_options("npipe:server=remote,pipe=p")
    for local in ("localhost", "LOCALHOST", "127.0.0.1"):
        assert parse_client_options(f"npipe:server={local},pipe=p").server == local


# ------------------------------------------------------------------ describe and masking


@pytest.mark.parametrize(
    ("text", "described"),
    [
        ("npipe:pipe=rabbit", "npipe:Pipe=rabbit"),
        ("tcp:port=7", "tcp:Port=7"),
        ("npipe:pipe=tiger,password=" + SECRET, "npipe:Pipe=tiger,Password=*"),
        ("tcp:insecure,password=x,bind=0.0.0.0,port=5005", "tcp:Port=5005,Bind=0.0.0.0,Password=*,Insecure"),
        (
            "ssl:proto=tls1.3,key=/x/k.pem,cert=/x/c.pem,port=5006",
            "ssl:Port=5006,Cert=/x/c.pem,Key=/x/k.pem,Proto=tls1.3",
        ),
        ("com:channel=3,baud=115200,port=/dev/ttyS0", "com:Port=/dev/ttyS0,Baud=115200,Channel=3"),
        ("tcp:port=7,clicon=host", "tcp:Port=7,CliCon=host"),
        ("tcp:port=7,hidden", "tcp:Port=7,Hidden"),
        ("tcp:port=7,ipversion=6", "tcp:Port=7,IpVersion=6"),
        ("tcp:port=7,ipversion=4,bind=127.0.0.1,persist=5", "tcp:Port=7"),
        ("tcp:port=7,ipversion=6,bind=::1", "tcp:Port=7,IpVersion=6"),
        ("tcp:port=5000:5010", "tcp:Port=5000:5010"),
        ("spipe:pipe=t,cert=c,key=k", "spipe:Pipe=t,Cert=c,Key=k"),
    ],
)
def test_describe_gives_the_servers_form(text: str, described: str) -> None:
    assert parse_server_options(text).describe() == described


def test_describe_shows_the_bound_port() -> None:
    assert parse_server_options("tcp:port=5000:5010").describe(port=5003) == "tcp:Port=5003"
    assert parse_server_options("tcp:port=0,hidden").describe(port=41000) == "tcp:Port=41000,Hidden"


def test_describe_a_client() -> None:
    options = parse_client_options("ssl:server=h,port=5,cafile=ca.pem,password=p")
    assert options.describe() == "ssl:Server=h,Port=5,CaFile=ca.pem,Password=*"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp:port=5,password=" + SECRET, "tcp:port=5,password=*"),
        ("tcp:Password = " + SECRET + " ,port=5", "tcp:Password = * ,port=5"),
        ("npipe:pipe=p", "npipe:pipe=p"),
        ("password=" + SECRET, "password=*"),
        ("tcp:port=5,password=", "tcp:port=5,password="),
        ("garbage:password=a=b,PASSWORD=c", "garbage:password=*,PASSWORD=*"),
    ],
)
def test_masked_hides_password_values(text: str, expected: str) -> None:
    assert masked(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "tcp:port=5,password=" + SECRET,
        "npipe:pipe=p,password=" + SECRET,
        "ssl:port=5,cert=c,key=k,password=" + SECRET,
        "com:port=/dev/x,baud=9600,password=" + SECRET,
    ],
)
def test_password_is_never_shown(text: str) -> None:
    options = parse_server_options(text)
    assert options.password == SECRET
    assert SECRET not in repr(options)
    assert SECRET not in str(options)
    assert SECRET not in options.describe()
    assert SECRET not in masked(text)


@pytest.mark.parametrize(
    "text",
    [
        "tcp:password=" + SECRET,  # port missing
        "tcp:port=1,password=" + SECRET + ",password=" + SECRET,
        "tcp:port=1,password=" + SECRET + ",foo",
        "tcp:port=1,password=" + SECRET + ",hidden=1",
        "tcp:port=1,password=Sesame,Open-42",  # a comma cuts the password
        "password=" + SECRET,
        "password=" + SECRET + ":port=1",
        "npipe:server=x,pipe=p,password=" + SECRET,
        "tcp:password=" + SECRET + ",port=70000",
    ],
)
def test_password_is_never_in_an_error(text: str) -> None:
    for parse in (parse_server_options, parse_client_options):
        with pytest.raises(TransportError) as caught:
            parse(text)
        assert SECRET not in str(caught.value)
        assert "Open-42" not in str(caught.value)


# ------------------------------------------------------------------ security


@pytest.mark.parametrize(
    "text",
    [
        "tcp:port=1",
        "tcp:port=1,bind=127.0.0.1",
        "tcp:port=1,bind=127.1.2.3",
        "tcp:port=1,bind=localhost",
        "tcp:port=1,ipversion=6",
        "tcp:port=1,bind=::1",
        "tcp:port=1,bind=::ffff:127.0.0.1",
        "tcp:port=1,bind=0.0.0.0,password=w",
        "tcp:port=1,bind=0.0.0.0,insecure",
        "tcp:port=1,bind=example.com,insecure",
        "tcp:port=1,clicon=localhost",
        "tcp:port=1,clicon=10.1.1.1,password=w",
        "ssl:port=1,cert=c,key=k,bind=0.0.0.0",
        "ssl:port=1,cert=c,key=k,clicon=example.com",
        "npipe:pipe=p",
        "spipe:pipe=p,cert=c,key=k",
        "com:port=/dev/ttyS0,baud=9600",
    ],
)
def test_safe_servers_pass_the_security_check(text: str) -> None:
    check_server_security(parse_server_options(text))


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("tcp:port=1,bind=0.0.0.0", "binding 0.0.0.0"),
        ("tcp:port=1,bind=::", "binding ::"),
        ("tcp:port=1,bind=192.168.1.2", "binding 192.168.1.2"),
        ("tcp:port=1,bind=myhost", "binding myhost"),
        ("tcp:port=1,clicon=10.1.1.1", "connecting out to 10.1.1.1"),
        ("tcp:port=1,clicon=example.com", "connecting out to example.com"),
    ],
)
def test_exposed_tcp_servers_are_refused(text: str, address: str) -> None:
    with pytest.raises(TransportError) as caught:
        check_server_security(parse_server_options(text))
    message = str(caught.value)
    assert address in message
    assert "password=" in message and "ssl" in message and "insecure" in message
    assert "\n" not in message


def test_client_options_are_not_checked() -> None:
    check_server_security(parse_client_options("tcp:clicon=h,port=5,bind=0.0.0.0"))


# ------------------------------------------------------------------ any text

_ALPHABET = st.sampled_from(
    [*"tcpnieslmo:=,.0123456789 /-_:", "port", "pipe", "password", "hidden", "baud", "\x00", "é", "\uff15"]
)
_FIELDS = st.sampled_from(
    [
        "port",
        "Port",
        "bind",
        "server",
        "clicon",
        "ipversion",
        "hidden",
        "pipe",
        "cert",
        "key",
        "cafile",
        "proto",
        "baud",
        "channel",
        "password",
        "insecure",
        "persist",
        "junk",
    ]
)
_VALUES = st.one_of(
    st.text(max_size=12),
    st.integers(-5, 70000).map(str),
    st.sampled_from(["0:5", "5:1", "1:65535", "tls1.3", "TLS1.2", "4", "6", "1.5", "/dev/x", "localhost"]),
)
_FIELD_TEXT = st.tuples(_FIELDS, st.sampled_from(["=", "", " = "]), _VALUES).map(
    lambda t: f"{t[0]}{t[1]}{t[2]}"
)
_STRUCTURED = st.tuples(
    st.sampled_from([*TRANSPORTS, "TCP", "Npipe", "bogus", ""]),
    st.sampled_from([":", "", " : "]),
    st.lists(_FIELD_TEXT, max_size=6).map(",".join),
).map(lambda t: f"{t[0]}{t[1]}{t[2]}")


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_ALPHABET, max_size=40).map("".join), _STRUCTURED))
def test_any_text_parses_or_raises_transport_error(text: str) -> None:
    for parse in (parse_server_options, parse_client_options):
        try:
            options = parse(text)
        except TransportError as error:
            assert "\n" not in str(error)
            continue
        assert isinstance(options, TransportOptions)
        assert options.transport in TRANSPORTS
        options.describe()
        check_server_security_quietly(options)
    masked(text)


def check_server_security_quietly(options: TransportOptions) -> None:
    try:
        check_server_security(options)
    except TransportError as error:
        assert "\n" not in str(error)
