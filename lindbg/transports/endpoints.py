"""Real listeners (asyncio, on the server's I/O thread) and connections (blocking, for clients).

Strategy, server side: :func:`open_listener` turns parsed options into a source of
connections and calls one :data:`StreamHandler` per connection with asyncio streams and
a peer label; the handler owns the connection, and its failure ends that connection
only (nothing is logged: the session layer reports what matters and a traceback could
carry session data). Closing a listener stops new connections and leaves the ones in
hand open, so ``.endsrv`` does not detach clients; asyncio's ``Server.wait_closed()``
is never awaited for that reason (from Python 3.12 on it waits for every connection).

- tcp/ssl: ``asyncio.start_server`` on ``bind`` (default 127.0.0.1, ::1 with
  ``ipversion=6``); a range ``port=P1:P2`` is tried port by port. ``clicon=`` reverses
  the TCP roles: the server connects out, one connection at a time, retrying every half
  second, and connects out again when a connection ends. The TLS roles do not follow
  the TCP roles: the debugging server is always the TLS server (it holds the
  certificate) and the client always verifies it, so a reverse ssl server wraps its
  outgoing socket with ``loop.connect_accepted_socket(..., ssl=context)``, which
  makes the TLS server side of any connected socket.
- npipe/spipe: a unix socket in the private directory of ``lindbg.transports.npipe``
  (spipe is TLS over it). A socket file left by a dead server is replaced; one that
  answers belongs to a live server and is refused. The file is removed on close, and
  only if it is still ours.
- com: a serial line (or pty) opened with pyserial, which copes with ptys (it ignores
  the modem-line ioctls a pty refuses) and with any baud rate, so no raw ``termios``
  fallback is kept. Only its descriptor is used: ``loop.connect_read_pipe`` and
  ``connect_write_pipe`` accept character devices and make every read and write
  non-blocking. ``VMIN`` is set to 1 so that a read of no bytes means a hang-up, as
  those transports take it. A line has no accept: the handler is called once per
  peer, and again when it returns (the line is reused, or reopened after a hang-up);
  ``channel=`` is carried in the options for the session layer and unused here.
  Closing a com listener closes the device, which ends the line's connection.

Strategy, client side: :func:`connect` returns a blocking :class:`Stream` for ordinary
threads, meant for one reader thread plus any senders. TLS runs on ``ssl.MemoryBIO``
rather than ``SSLSocket``: one OpenSSL object must not be used by two threads at once,
and the BIO form lets ``recv`` wait on the raw socket without holding the lock that
``send`` needs. ``shutdown()`` wakes a blocked ``recv`` (``SHUT_RDWR`` on sockets, a
self-pipe on serial lines).

Every failure to listen or connect is a one-line ``TransportError`` naming the
transport and the host:port, pipe, device or file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import select
import socket
import ssl
import stat
import termios
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import serial

from lindbg.transports.npipe import pipe_path
from lindbg.transports.options import TransportError, TransportOptions, check_server_security

StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, str], Awaitable[None]]

#: Seconds between a reverse server's attempts, and the least time between two peers of a line.
_RETRY_SECONDS = 0.5
#: Seconds a closed connection may take to flush before it is left to the event loop.
_CLOSE_SECONDS = 5.0
#: Seconds to wait for a live server answering on an existing pipe socket.
_PROBE_SECONDS = 2.0
#: Longest unix socket path: ``sun_path`` is 108 bytes with its terminating NUL.
_SUN_PATH_MAX = 107
_CHUNK = 65536


# ------------------------------------------------------------------ server side


class Listener:
    """A source of connections made by :func:`open_listener`.

    ``description`` is the ``.servers`` form with the port actually bound; ``port`` is
    that port (for a reverse server the port it connects to), ``path`` the socket file
    (npipe/spipe) or the device (com).
    """

    def __init__(
        self,
        description: str,
        port: int | None,
        path: str | None,
        closer: Callable[[], Awaitable[None]],
    ) -> None:
        self.description = description
        self.port = port
        self.path = path
        self.closed = False
        self._closer = closer

    async def close(self) -> None:
        """Stop accepting; connections in hand stay open (except a com line). Idempotent."""
        if self.closed:
            return
        self.closed = True
        await self._closer()

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<Listener {self.description}{state}>"


async def open_listener(
    options: TransportOptions, handler: StreamHandler, *, handshake_timeout: float = 10.0
) -> Listener:
    """Listen (or, with ``clicon=``, connect out) as ``options`` say; see the module docstring.

    ``handshake_timeout`` bounds a TLS handshake and a reverse server's connect.
    """
    if options.role != "server":
        raise TransportError(f"{options.transport}: a listener needs server options (parse_server_options)")
    check_server_security(options)
    if options.transport in ("tcp", "ssl"):
        context = _server_context(options) if options.is_tls else None
        if options.clicon is not None:
            reverse = _ReverseServer(options, handler, context, handshake_timeout)
            return Listener(options.describe(), options.port, None, reverse.close)
        return await _open_tcp(options, handler, context, handshake_timeout)
    if options.transport in ("npipe", "spipe"):
        context = _server_context(options) if options.is_tls else None
        return await _open_pipe(options, handler, context, handshake_timeout)
    return _open_com(options, handler)


async def _serve(
    handler: StreamHandler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, label: str
) -> None:
    try:
        await handler(reader, writer, label)
    except Exception:
        # The failure belongs to this one connection: the listener keeps serving, and
        # nothing is logged (the session layer reports what matters; a traceback could
        # carry session data).
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), _CLOSE_SECONDS)


async def _accepted_connection(
    handler: StreamHandler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, label: str
) -> None:
    """The callback of an asyncio server: nobody awaits it, so cancellation ends here."""
    try:
        await _serve(handler, reader, writer, label)
    except asyncio.CancelledError:
        # Python 3.11's StreamReaderProtocol reports a cancelled callback task (the loop
        # shutting down) as an error; the connection is closed already, nothing is lost.
        pass


def _tls_arguments(context: ssl.SSLContext | None, handshake_timeout: float) -> dict[str, Any]:
    # asyncio refuses ssl_handshake_timeout without ssl.
    return {} if context is None else {"ssl": context, "ssl_handshake_timeout": handshake_timeout}


async def _open_tcp(
    options: TransportOptions,
    handler: StreamHandler,
    context: ssl.SSLContext | None,
    handshake_timeout: float,
) -> Listener:
    transport = options.transport
    host = _bare_host(options.bind_address or options.default_bind)
    family = _family(host, options.ipversion)
    first = options.port if options.port is not None else 0
    last = options.port_last if options.port_last is not None else first

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _set_nodelay(writer.get_extra_info("socket"))
        label = _peer_label(transport, writer.get_extra_info("peername"))
        await _accepted_connection(handler, reader, writer, label)

    server: asyncio.AbstractServer | None = None
    failure: OSError | None = None
    port = first
    for port in range(first, last + 1):
        try:
            server = await asyncio.start_server(
                accepted,
                host=host,
                port=port,
                family=family,
                reuse_address=True,
                **_tls_arguments(context, handshake_timeout),
            )
            break
        except UnicodeError:
            raise TransportError(f"{transport}: bind={host!r} is not a valid host name") from None
        except OSError as error:
            failure = error
            if error.errno != errno.EADDRINUSE:
                break
    if server is None:
        if first != last and failure is not None and failure.errno == errno.EADDRINUSE:
            raise TransportError(f"{transport}: no free port in {first}:{last}")
        reason = _reason(failure) if failure is not None else "no address"
        raise TransportError(f"{transport}: cannot listen on {_host_port(host, port)}: {reason}")
    sockets = getattr(server, "sockets", ())
    bound = int(sockets[0].getsockname()[1]) if sockets else port
    listening = server

    async def close() -> None:
        listening.close()

    return Listener(options.describe(port=bound), bound, None, close)


class _ReverseServer:
    """A tcp/ssl server with ``clicon=``: it connects out to a waiting client, one at a time."""

    def __init__(
        self,
        options: TransportOptions,
        handler: StreamHandler,
        context: ssl.SSLContext | None,
        timeout: float,
    ) -> None:
        self._options = options
        self._handler = handler
        self._context = context
        self._timeout = timeout
        self._handlers: set[asyncio.Task[None]] = set()
        self._runner = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        self._runner.cancel()
        await asyncio.wait({self._runner})

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            connection = await self._connect_once()
            if connection is None:
                await asyncio.sleep(_RETRY_SECONDS)
                continue
            reader, writer, label = connection
            task = loop.create_task(_serve(self._handler, reader, writer, label))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
            # Shielded: closing the listener stops the reconnecting, not this connection.
            await asyncio.shield(task)

    async def _connect_once(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str] | None:
        loop = asyncio.get_running_loop()
        options = self._options
        host = _bare_host(options.clicon or "")
        port = options.port if options.port is not None else 0
        try:
            addresses = await loop.getaddrinfo(
                host, port, family=_family(host, options.ipversion), type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError):
            return None
        for family, kind, protocol, _, address in addresses:
            sock = socket.socket(family, kind, protocol)
            try:
                sock.setblocking(False)
                await asyncio.wait_for(loop.sock_connect(sock, address), self._timeout)
                _set_nodelay(sock)
                reader, writer = await _wrap_socket(sock, self._context, self._timeout)
            except (OSError, asyncio.TimeoutError):
                sock.close()
                continue
            except BaseException:
                sock.close()
                raise
            return reader, writer, _peer_label(options.transport, address)
        return None


async def _wrap_socket(
    sock: socket.socket, context: ssl.SSLContext | None, timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    # connect_accepted_socket makes the TLS *server* side, whoever opened the TCP connection.
    transport, _ = await loop.connect_accepted_socket(
        lambda: protocol, sock, **_tls_arguments(context, timeout)
    )
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def _open_pipe(
    options: TransportOptions,
    handler: StreamHandler,
    context: ssl.SSLContext | None,
    handshake_timeout: float,
) -> Listener:
    transport = options.transport
    name = options.pipe or ""
    try:
        path = pipe_path(name)
    except TransportError as error:
        raise TransportError(f"{transport}: {error}") from None
    _check_socket_path(transport, name, path)
    await _claim_pipe(transport, name, path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    identity: tuple[int, int] | None = None
    try:
        sock.bind(path)
        identity = _identity(path)
        # The directory (0700) is what keeps others out; 0600 says the same on the file.
        os.chmod(path, 0o600)

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await _accepted_connection(handler, reader, writer, f"{transport} {name}")

        server = await asyncio.start_unix_server(
            accepted, sock=sock, **_tls_arguments(context, handshake_timeout)
        )
    except OSError as error:
        sock.close()
        _unlink_if_ours(path, identity)
        if error.errno == errno.EADDRINUSE:
            raise TransportError(f"{transport}: pipe {name!r} is in use by another server") from None
        raise TransportError(f"{transport}: cannot create pipe {name!r}: {_reason(error)}") from None
    except BaseException:
        sock.close()
        _unlink_if_ours(path, identity)
        raise

    async def close() -> None:
        server.close()
        _unlink_if_ours(path, identity)

    return Listener(options.describe(), None, path, close)


async def _claim_pipe(transport: str, name: str, path: str) -> None:
    """Make ``path`` free to bind: remove a dead server's socket, refuse a live one."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(status.st_mode):
        raise TransportError(f"{transport}: {path} exists and is not a socket; choose another pipe name")
    loop = asyncio.get_running_loop()
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(probe, path), _PROBE_SECONDS)
    except ConnectionRefusedError:
        # Nobody listens: a server ended without removing its socket.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except FileNotFoundError:
        return
    except (BlockingIOError, asyncio.TimeoutError):
        pass  # a full backlog or a slow answer: somebody is there
    except OSError as error:
        raise TransportError(f"{transport}: cannot probe pipe {name!r}: {_reason(error)}") from None
    finally:
        probe.close()
    raise TransportError(f"{transport}: pipe {name!r} is in use by another server")


def _identity(path: str) -> tuple[int, int]:
    status = os.lstat(path)
    return status.st_dev, status.st_ino


def _unlink_if_ours(path: str, identity: tuple[int, int] | None) -> None:
    # Another server may have replaced a socket we no longer listen on: leave its file alone.
    if identity is None:
        return
    try:
        if _identity(path) == identity:
            os.unlink(path)
    except OSError:
        pass


def _check_socket_path(transport: str, name: str, path: str) -> None:
    size = len(os.fsencode(path))
    if size > _SUN_PATH_MAX:
        raise TransportError(
            f"{transport}: pipe {name[:40]!r} makes a socket path of {size} bytes "
            f"(at most {_SUN_PATH_MAX}); choose a shorter name"
        )


def _open_com(options: TransportOptions, handler: StreamHandler) -> Listener:
    device = options.device or ""
    line = _open_serial(device, options.baud or 0)
    serial_server = _SerialServer(device, options.baud or 0, handler, line)
    return Listener(options.describe(), None, device, serial_server.close)


class _SerialServer:
    """One serial line, one peer at a time: the handler is called again when it returns."""

    def __init__(self, device: str, baud: int, handler: StreamHandler, line: Any) -> None:
        self._device = device
        self._baud = baud
        self._handler = handler
        self._line: Any = line
        self._label = f"com {device}"
        self._current: tuple[asyncio.ReadTransport, asyncio.StreamWriter] | None = None
        self._handlers: set[asyncio.Task[bool]] = set()
        self._runner = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        self._runner.cancel()
        await asyncio.wait({self._runner})
        if self._current is not None:
            inbound, writer = self._current
            self._current = None
            inbound.close()
            # abort, not close: output nobody reads must not keep the device open.
            writer.transport.abort()
        self._drop_line()

    def _drop_line(self) -> None:
        line, self._line = self._line, None
        if line is not None:
            with contextlib.suppress(Exception):
                line.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._line is None:
                try:
                    self._line = _open_serial(self._device, self._baud)
                except TransportError:
                    await asyncio.sleep(_RETRY_SECONDS)
                    continue
            try:
                reader, writer, inbound = await _line_streams(int(self._line.fileno()))
            except (OSError, ValueError):
                self._drop_line()
                await asyncio.sleep(_RETRY_SECONDS)
                continue
            started = loop.time()
            task = loop.create_task(self._serve_line(reader, writer, inbound))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
            self._current = (inbound, writer)
            # Shielded: close() ends the line itself, after stopping this loop.
            hung_up = await asyncio.shield(task)
            self._current = None
            if hung_up:
                self._drop_line()
            if loop.time() - started < _RETRY_SECONDS:
                # A line that ends at once (a hung-up pty) must not spin the I/O thread.
                await asyncio.sleep(_RETRY_SECONDS)

    async def _serve_line(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, inbound: asyncio.ReadTransport
    ) -> bool:
        """Serve one peer; True when the line ended by itself (EOF or an error: a hang-up)."""
        try:
            await _serve(self._handler, reader, writer, self._label)
        except BaseException:
            inbound.close()
            raise
        hung_up = inbound.is_closing()
        inbound.close()
        return hung_up


async def _line_streams(
    fd: int,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.ReadTransport]:
    # Each pipe transport closes the file it is given: each gets a duplicate of the line.
    loop = asyncio.get_running_loop()
    inbound_file = os.fdopen(os.dup(fd), "rb", buffering=0)
    outbound_file = os.fdopen(os.dup(fd), "wb", buffering=0)
    inbound: asyncio.ReadTransport | None = None
    try:
        reader = asyncio.StreamReader()
        reading = asyncio.StreamReaderProtocol(reader)
        inbound, _ = await loop.connect_read_pipe(lambda: reading, inbound_file)
        writing = asyncio.StreamReaderProtocol(asyncio.StreamReader())
        outbound, _ = await loop.connect_write_pipe(lambda: writing, outbound_file)
    except BaseException:
        if inbound is not None:
            inbound.close()
        inbound_file.close()
        outbound_file.close()
        raise
    return reader, asyncio.StreamWriter(outbound, writing, reader, loop), inbound


# ------------------------------------------------------------------ TLS contexts


def _minimum_version(proto: str | None) -> ssl.TLSVersion:
    return ssl.TLSVersion.TLSv1_3 if proto == "tls1.3" else ssl.TLSVersion.TLSv1_2


def _no_key_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key.
    return b""


def _server_context(options: TransportOptions) -> ssl.SSLContext:
    transport = options.transport
    cert, key = options.cert or "", options.key or ""
    for name, path in (("cert", cert), ("key", key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as error:
            raise TransportError(f"{transport}: cannot read {name}={path}: {_reason(error)}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _minimum_version(options.proto)
    try:
        context.load_cert_chain(cert, key, password=_no_key_password)
    except ssl.SSLError as error:
        raise TransportError(_certificate_problem(transport, cert, key, error)) from None
    return context


def _certificate_problem(transport: str, cert: str, key: str, error: ssl.SSLError) -> str:
    # OpenSSL's reason is mostly "PEM lib": find out which file is wrong.
    if error.reason == "KEY_VALUES_MISMATCH":
        return f"{transport}: key={key} does not match cert={cert}"
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cafile=cert)
    except (ssl.SSLError, OSError):
        return f"{transport}: cert={cert} holds no PEM certificate"
    return f"{transport}: key={key} holds no usable PEM private key (encrypted keys are not supported)"


def _client_context(options: TransportOptions) -> ssl.SSLContext:
    transport = options.transport
    try:
        context = ssl.create_default_context(cafile=options.cafile)
    except ssl.SSLError:
        raise TransportError(f"{transport}: cafile={options.cafile} holds no PEM certificate") from None
    except OSError as error:
        raise TransportError(f"{transport}: cannot read cafile={options.cafile}: {_reason(error)}") from None
    context.minimum_version = _minimum_version(options.proto)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


# ------------------------------------------------------------------ client side


class Stream:
    """A client's connection: blocking, for one reader thread and any number of senders.

    ``send`` raises ``ConnectionError`` when the link is gone; ``recv`` returns ``b""``
    at the end of the stream and after ``shutdown()``, which also wakes a ``recv``
    blocked in another thread. For a TLS stream ``fileno()`` is the socket's: data may
    wait inside the TLS layer while it is not readable, so wait in ``recv``, not in a
    selector.
    """

    def __init__(self, label: str) -> None:
        self.label = label

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def recv(self, size: int = _CHUNK) -> bytes:
        raise NotImplementedError

    def fileno(self) -> int:
        raise NotImplementedError

    def poll_fd(self) -> int | None:
        """A descriptor that polls readable exactly when ``recv_nowait`` has something
        (data or the end), so two threads may take turns reading; None when data can
        wait inside the stream (TLS, a serial line): then one thread reads, in ``recv``."""
        return None

    def recv_nowait(self, size: int = _CHUNK) -> bytes | None:
        """What ``recv`` would return, without waiting: None when nothing is there.
        Only for a stream with a ``poll_fd``."""
        raise NotImplementedError

    def shutdown(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"


class _SocketStream(Stream):
    def __init__(self, label: str, sock: socket.socket) -> None:
        super().__init__(label)
        self._sock = sock
        self._state = threading.Lock()
        # One sendall at a time: two threads' partial sends would interleave their bytes.
        self._send_lock = threading.Lock()
        self._shut = False
        self._closed = False

    def send(self, data: bytes) -> None:
        try:
            with self._send_lock:
                self._sock.sendall(data)
        except OSError as error:
            _raise_lost(error)

    def recv(self, size: int = _CHUNK) -> bytes:
        try:
            return self._sock.recv(size)
        except OSError as error:
            if self._shut:
                return b""
            _raise_lost(error)

    def fileno(self) -> int:
        return self._sock.fileno()

    def poll_fd(self) -> int | None:
        return self._sock.fileno()

    def recv_nowait(self, size: int = _CHUNK) -> bytes | None:
        try:
            return self._sock.recv(size, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return None
        except OSError as error:
            if self._shut:
                return b""
            _raise_lost(error)

    def shutdown(self) -> None:
        with self._state:
            if self._shut:
                return
            self._shut = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._state:
            if self._closed:
                return
            self._closed = True
        # close() alone does not wake a thread blocked in recv on Linux; shutdown does.
        self.shutdown()
        self._sock.close()


class _TlsStream(_SocketStream):
    """TLS over a connected socket through memory BIOs (see the module docstring)."""

    def __init__(
        self,
        label: str,
        sock: socket.socket,
        context: ssl.SSLContext,
        hostname: str,
        transport: str,
        where: str,
        timeout: float,
    ) -> None:
        super().__init__(label, sock)
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        # _send_lock (from _SocketStream) also covers taking records out of _outgoing, so
        # they go out in the order they were made.
        self._tls_lock = threading.Lock()  # the SSLObject and its BIOs
        self._recv_lock = threading.Lock()
        try:
            try:
                self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=hostname)
            except (ValueError, UnicodeError):
                raise TransportError(
                    f"{transport}: {hostname!r} cannot be checked against a certificate"
                ) from None
            self._handshake(transport, where, timeout)
        except BaseException:
            sock.close()
            raise

    def _handshake(self, transport: str, where: str, timeout: float) -> None:
        self._sock.settimeout(timeout)
        try:
            while True:
                try:
                    self._tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    pass
                self._flush()
                data = self._sock.recv(_CHUNK)
                if not data:
                    raise TransportError(
                        f"{transport}: {where} closed the connection during the TLS handshake"
                    )
                self._incoming.write(data)
            self._flush()
        except ssl.SSLCertVerificationError as error:
            self._flush_quietly()
            reason = _one_line(error.verify_message or error.reason or str(error))
            raise TransportError(
                f"{transport}: the server's certificate was not accepted: {reason}"
            ) from None
        except ssl.SSLError as error:
            self._flush_quietly()
            raise TransportError(
                f"{transport}: the TLS handshake with {where} failed: {_tls_reason(error)}"
            ) from None
        except OSError as error:
            raise TransportError(
                f"{transport}: the TLS handshake with {where} failed: {_reason(error, timeout)}"
            ) from None
        self._sock.settimeout(None)

    def poll_fd(self) -> int | None:
        return None  # decrypted data can wait in the TLS layer while the socket is quiet

    def _flush(self) -> None:
        with self._send_lock:
            with self._tls_lock:
                data = self._outgoing.read()
            if data:
                self._sock.sendall(data)

    def _flush_quietly(self) -> None:
        # Lets the peer see our alert; the connection is failing anyway.
        with contextlib.suppress(OSError):
            self._flush()

    def send(self, data: bytes) -> None:
        if self._shut:
            raise BrokenPipeError(errno.EPIPE, "the stream was shut down")
        if not data:
            return
        try:
            with self._send_lock:
                with self._tls_lock:
                    self._tls.write(data)
                    records = self._outgoing.read()
                self._sock.sendall(records)
        except OSError as error:
            _raise_lost(error)

    def recv(self, size: int = _CHUNK) -> bytes:
        with self._recv_lock:
            while True:
                if self._shut:
                    return b""
                data: bytes | None
                with self._tls_lock:
                    try:
                        data = self._tls.read(size)
                    except ssl.SSLWantReadError:
                        data = None
                    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                        data = b""
                    except ssl.SSLError as error:
                        raise ConnectionError(errno.ECONNABORTED, f"TLS: {_tls_reason(error)}") from None
                    answer = self._outgoing.pending > 0
                if answer:
                    # Reading may produce records of its own (a key update's reply).
                    with contextlib.suppress(OSError):
                        self._flush()
                if data is not None:
                    return data
                try:
                    raw = self._sock.recv(_CHUNK)
                except OSError as error:
                    if self._shut:
                        return b""
                    _raise_lost(error)
                with self._tls_lock:
                    if raw:
                        self._incoming.write(raw)
                    else:
                        self._incoming.write_eof()

    def close(self) -> None:
        if not self._closed and not self._shut and self._send_lock.acquire(blocking=False):
            # A close_notify, best effort and never blocking: a peer that does not read
            # must not hang close().
            try:
                with self._tls_lock:
                    with contextlib.suppress(ssl.SSLError):
                        self._tls.unwrap()
                    records = self._outgoing.read()
                if records:
                    with contextlib.suppress(OSError):
                        self._sock.send(records, socket.MSG_DONTWAIT)
            finally:
                self._send_lock.release()
        super().close()


class _SerialStream(Stream):
    """A serial line or pty, non-blocking underneath; a self-pipe wakes blocked calls."""

    def __init__(self, label: str, line: Any) -> None:
        super().__init__(label)
        self._line: Any = line
        self._fd = int(line.fileno())
        os.set_blocking(self._fd, False)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._state = threading.Lock()
        self._recv_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._shut = False
        self._closed = False

    def _wait(self, events: int) -> bool:
        """Wait until the line is ready for ``events``; False once shut down."""
        poller = select.poll()
        poller.register(self._fd, events)
        poller.register(self._wake_read, select.POLLIN)
        ready = poller.poll()
        return not any(fd == self._wake_read for fd, _ in ready)

    def send(self, data: bytes) -> None:
        with self._send_lock:
            view = memoryview(data)
            while view:
                if self._shut:
                    raise BrokenPipeError(errno.EPIPE, "the stream was shut down")
                try:
                    view = view[os.write(self._fd, view) :]
                    continue
                except BlockingIOError:
                    pass
                except OSError as error:
                    _raise_lost(error)
                if not self._wait(select.POLLOUT):
                    raise BrokenPipeError(errno.EPIPE, "the stream was shut down")

    def recv(self, size: int = _CHUNK) -> bytes:
        with self._recv_lock:
            while True:
                if self._shut:
                    return b""
                try:
                    # With VMIN=1 an empty read is a hang-up, not "no data yet".
                    return os.read(self._fd, size)
                except BlockingIOError:
                    pass
                except OSError as error:
                    if error.errno == errno.EIO:
                        return b""  # a pty whose other side went away
                    _raise_lost(error)
                if not self._wait(select.POLLIN):
                    return b""

    def fileno(self) -> int:
        return self._fd

    def shutdown(self) -> None:
        with self._state:
            if self._shut:
                return
            self._shut = True
        # One byte never read: every later wait returns at once.
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")

    def close(self) -> None:
        with self._state:
            if self._closed:
                return
            self._closed = True
        self.shutdown()
        # The woken calls leave their locks; only then are the descriptors closed.
        with self._recv_lock, self._send_lock:
            with contextlib.suppress(Exception):
                self._line.close()
            os.close(self._wake_read)
            os.close(self._wake_write)


def connect(options: TransportOptions, timeout: float = 10.0) -> Stream:
    """Connect as a client (with ``clicon=``: wait for the server to connect); see the module docstring.

    ``timeout`` bounds the connect (or the wait) and the TLS handshake.
    """
    transport = options.transport
    if options.role != "client":
        raise TransportError(f"{transport}: connect() needs client options (parse_client_options)")
    if transport in ("tcp", "ssl"):
        context = _client_context(options) if options.is_tls else None
        if options.clicon is not None:
            sock, peer = _accept_one(options, timeout)
            hostname = options.clicon
        else:
            sock, peer = _dial(options, timeout)
            hostname = options.server or ""
        label = _peer_label(transport, peer)
        if context is None:
            return _SocketStream(label, sock)
        where = label.split(" ", 1)[1]
        return _TlsStream(label, sock, context, _bare_host(hostname), transport, where, timeout)
    if transport in ("npipe", "spipe"):
        context = _client_context(options) if options.is_tls else None
        name = options.pipe or ""
        sock = _dial_pipe(transport, name, timeout)
        label = f"{transport} {name}"
        if context is None:
            return _SocketStream(label, sock)
        # A pipe's server is on this machine: its certificate must name localhost.
        return _TlsStream(label, sock, context, "localhost", transport, f"pipe {name!r}", timeout)
    device = options.device or ""
    return _SerialStream(f"com {device}", _open_serial(device, options.baud or 0))


def _dial(options: TransportOptions, timeout: float) -> tuple[socket.socket, Any]:
    transport = options.transport
    host = _bare_host(options.server or "")
    port = options.port or 0
    where = _host_port(host, port)
    try:
        addresses = socket.getaddrinfo(host, port, _family(host, options.ipversion), socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise TransportError(f"{transport}: cannot connect to {where}: {_reason(error)}") from None
    deadline = time.monotonic() + timeout
    failure: BaseException = TimeoutError()
    for family, kind, protocol, _, address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            failure = TimeoutError()
            break
        sock = socket.socket(family, kind, protocol)
        try:
            sock.settimeout(remaining)
            sock.connect(address)
        except OSError as error:
            sock.close()
            failure = error
            continue
        sock.settimeout(None)
        _set_nodelay(sock)
        return sock, address
    raise TransportError(f"{transport}: cannot connect to {where}: {_reason(failure, timeout)}")


def _accept_one(options: TransportOptions, timeout: float) -> tuple[socket.socket, Any]:
    """clicon= on a client: listen, and take the one connection of the server."""
    transport = options.transport
    host = _bare_host(options.bind_address or options.default_bind)
    port = options.port or 0
    where = _host_port(host, port)
    try:
        addresses = socket.getaddrinfo(
            host, port, _family(host, options.ipversion), socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
    except (OSError, UnicodeError) as error:
        raise TransportError(f"{transport}: cannot listen on {where}: {_reason(error)}") from None
    family, kind, protocol, _, address = addresses[0]
    listener = socket.socket(family, kind, protocol)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(1)
        listener.settimeout(timeout)
    except OSError as error:
        listener.close()
        raise TransportError(f"{transport}: cannot listen on {where}: {_reason(error)}") from None
    try:
        sock, peer = listener.accept()
    except TimeoutError:
        raise TransportError(
            f"{transport}: no server connected to port {port} within {timeout:g} s"
        ) from None
    except OSError as error:
        raise TransportError(f"{transport}: waiting on {where} failed: {_reason(error)}") from None
    finally:
        listener.close()
    sock.settimeout(None)
    _set_nodelay(sock)
    return sock, peer


def _dial_pipe(transport: str, name: str, timeout: float) -> socket.socket:
    try:
        path = pipe_path(name, create=False)
    except TransportError as error:
        raise TransportError(f"{transport}: {error}") from None
    _check_socket_path(transport, name, path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise TransportError(f"{transport}: no server on pipe {name!r}") from None
    except OSError as error:
        sock.close()
        raise TransportError(
            f"{transport}: cannot connect to pipe {name!r}: {_reason(error, timeout)}"
        ) from None
    sock.settimeout(None)
    return sock


# ------------------------------------------------------------------ serial lines


def _open_serial(device: str, baud: int) -> Any:
    """Open ``device`` raw at ``baud`` (pyserial), non-blocking, with VMIN=1."""
    try:
        line = serial.Serial(device, baudrate=baud, timeout=0)
    except (OSError, ValueError) as error:
        number = getattr(error, "errno", None)
        reason = os.strerror(number) if isinstance(number, int) else _one_line(str(error))
        raise TransportError(f"com: cannot open port={device}: {reason}") from None
    try:
        attributes = termios.tcgetattr(line.fileno())
        attributes[6][termios.VMIN] = 1
        attributes[6][termios.VTIME] = 0
        termios.tcsetattr(line.fileno(), termios.TCSANOW, attributes)
    except (termios.error, OSError):
        pass  # not every device lets us; a zero-byte read then still ends that peer
    return line


# ------------------------------------------------------------------ small helpers


def _bare_host(host: str) -> str:
    text = host.strip()
    return text[1:-1] if text.startswith("[") and text.endswith("]") else text


def _family(host: str, ipversion: int) -> int:
    """An IP literal picks its own family; a name resolves in the family ipversion= asks for."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return socket.AF_INET6 if ipversion == 6 else socket.AF_INET
    return socket.AF_UNSPEC


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _peer_label(transport: str, peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{transport} {_host_port(str(peer[0]), int(peer[1]))}"
    return transport


def _set_nodelay(sock: Any) -> None:
    # Commands and prompts are small writes that wait for an answer: no Nagle delay.
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _tls_reason(error: ssl.SSLError) -> str:
    return _one_line(str(error.reason or error.strerror or error))


def _reason(error: BaseException, timeout: float | None = None) -> str:
    if isinstance(error, TimeoutError):
        return f"timed out after {timeout:g} s" if timeout is not None else "timed out"
    if isinstance(error, ssl.SSLError):
        return _tls_reason(error)
    if isinstance(error, OSError) and error.strerror:
        return _one_line(error.strerror)
    return _one_line(str(error)) or type(error).__name__


def _raise_lost(error: OSError) -> NoReturn:
    """Raise ``error`` as the ConnectionError that Stream promises."""
    if isinstance(error, ConnectionError):
        raise error
    raise ConnectionError(error.errno or errno.EPIPE, _reason(error)) from error
