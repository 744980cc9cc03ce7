"""What ``lindbgsrv`` answers to each remote-protocol packet, given a target.

A ``GdbStub`` serves one client connection on the tracer thread: ``handle`` takes a
packet's payload and returns the reply's payload, or ``RESUMED`` when the target
now runs (the reply is the stop reply that ``on_event`` makes when it stops).
Framing, acks and escapes belong to ``lindbg.protocols.rsp``; sockets and threads
to ``lindbg.procserver.server``. The processes outlive the connection: a client that
reconnects finds them where it left them.

Strategy, for few round trips (DESIGN section 5): every stop reply carries the
registers a frame walk starts from (rbp, rsp, rip) and says ``swbreak``; the target
steps over its own breakpoints on resume (the live target's one-stop step-over), so
a breakpoint hit costs a client one ``vCont`` and one stop reply; ``x``/``X`` move
memory in binary; PacketSize is large enough for a 128 KiB read.

Thread ids are multiprocess (``p<pid>.<tid>``, hex) once the client said
``multiprocess+``, plain ``<tid>`` otherwise. Signals cross in gdb's numbering.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lindbg.arch import x86_64, x86_64_gdb
from lindbg.errors import LindbgError
from lindbg.procserver import xfer
from lindbg.procserver.auth import AUTH_PACKET, LOGIN_FIRST, ServerLogin
from lindbg.procserver.vfile import HostFiles
from lindbg.protocols import gdb_signals
from lindbg.protocols.rsp import hex_decode, hex_encode
from lindbg.targets.base import EventKind, ResumeMode, TargetEvent

if TYPE_CHECKING:
    from lindbg.targets.live.target import LiveTarget


class Resumed(enum.Enum):
    """``handle``'s answer when the reply is the next stop reply."""

    RESUMED = enum.auto()


RESUMED = Resumed.RESUMED
Reply = bytes | Resumed

#: The largest packet we take and send (payload bytes), advertised as PacketSize.
PACKET_SIZE = 256 * 1024
#: The largest memory transfer per packet: a 128 KiB binary read fits with room.
MAX_TRANSFER = 128 * 1024
#: The registers every stop reply carries: rbp, rsp, rip (gdb regnums 6, 7, 16).
EXPEDITED = (6, 7, 16)
#: The qSupported feature by which a lindbg client asks for every general register
#: in each stop reply, as one ``lindbg-regs:`` field (``struct user_regs_struct`` in
#: hex), so that its engine needs no ``g`` after a stop.
FULL_STOPS_FEATURE = b"lindbg-stops+"

_OK = b"OK"
_EMPTY = b""
_FEATURES = (
    f"PacketSize={PACKET_SIZE:x};QStartNoAckMode+;multiprocess+;swbreak+;hwbreak+;"
    "qXfer:features:read+;qXfer:auxv:read+;qXfer:libraries-svr4:read+;qXfer:exec-file:read+;"
    "qXfer:osdata:read+;qXfer:threads:read+;vContSupported+;QEnvironmentHexEncoded+;"
    "QEnvironmentReset+;QEnvironmentUnset+;QSetWorkingDir+;QDisableRandomization+;QThreadEvents+;no-resumed+;"
    "lindbg-stops+"
).encode()
_WATCH_KINDS = {
    1: x86_64.WatchKind.EXECUTE,
    2: x86_64.WatchKind.WRITE,
    3: x86_64.WatchKind.READ_WRITE,  # x86 has no read-only watchpoint
    4: x86_64.WatchKind.READ_WRITE,
}
_WATCH_NAMES = {2: b"watch", 3: b"rwatch", 4: b"awatch"}
_THREAD_ID = re.compile(rb"(?:p(-1|[0-9a-fA-F]+)\.)?(-1|[0-9a-fA-F]+)")


class PacketError(LindbgError):
    """A packet the stub cannot act on: the reply is ``E<code>``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class _Point:
    """A breakpoint or watchpoint a client asked for (``Z``)."""

    pid: int
    kind: int
    address: int
    size: int
    slot: object = None


@dataclass
class LaunchSettings:
    """What ``vRun`` starts programs with (``QEnvironment*``, ``QSetWorkingDir``)."""

    environment: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: str | None = None


class GdbStub:
    """One client's view of the process server's target (tracer thread only).

    Args:
        target: the live target every process is in (shared by successive clients).
        on_exit_request: called for ``monitor exit`` (``qRcmd``): the server
            should end.
        password: each connection must log in with it (``lindbg.procserver.auth``)
            before anything but ``qSupported`` is answered.
    """

    def __init__(
        self,
        target: LiveTarget,
        *,
        on_exit_request: Callable[[], None] | None = None,
        password: str | None = None,
    ) -> None:
        self.target = target
        self._password = password
        #: This connection's login (None: the server has no password).
        self.login = ServerLogin(password) if password is not None else None
        self._host_files = HostFiles(PACKET_SIZE)
        self._on_exit_request = on_exit_request
        self.multiprocess = False
        self.extended = False
        #: The client asked for no-ack mode: the server switches after the OK.
        self.no_ack_requested = False
        self.thread_events = False
        #: The client asked for every general register in stop replies.
        self.full_stops = False
        self.launch = LaunchSettings()
        self._g_thread = 0
        self._c_thread = 0
        self._points: dict[tuple[int, int, int], _Point] = {}
        self._last_stop: bytes | None = None
        self._exit_requested = False
        self._layout = x86_64_gdb.RegisterLayout.default()

    def new_connection(self) -> None:
        """A client connected: what it negotiates starts afresh; the processes and
        the last stop stay."""
        self.multiprocess = False
        self.extended = False
        self.no_ack_requested = False
        self.thread_events = False
        self.full_stops = False
        self.login = ServerLogin(self._password) if self._password is not None else None
        self._host_files.close_all()  # files are the connection's, not the server's

    def end_connection(self) -> None:
        """The client went: close the files it opened and remove its breakpoints and
        watchpoints (they were its own; the next client sets its own, as gdb does)."""
        self._host_files.close_all()
        for pid in {key[0] for key in self._points}:
            with contextlib.suppress(LindbgError, OSError):
                self._drop_points(pid)
        self._points.clear()

    # ------------------------------------------------------------ dispatch

    @property
    def running(self) -> bool:
        return self.target.running

    @property
    def exit_requested(self) -> bool:
        return self._exit_requested

    def handle(self, payload: bytes) -> Reply:
        """The reply to one packet (``RESUMED``: the next stop reply answers it)."""
        login = self.login
        if login is not None and not login.done:
            return self._before_login(login, payload)
        try:
            return self._dispatch(payload)
        except PacketError as error:
            return b"E%02x" % (error.code & 0xFF)
        except (LindbgError, OSError, ValueError, KeyError, IndexError):
            # a malformed argument (PayloadError among them) or a target that refused
            return b"E01"

    def _before_login(self, login: ServerLogin, payload: bytes) -> Reply:
        """The hello (``qSupported``) and the login; nothing else yet."""
        name, _, args = payload.partition(b":")
        if name == AUTH_PACKET:
            return login.answer(args)
        if name == b"qSupported":
            reply = self._dispatch(payload)
            assert isinstance(reply, bytes)
            return reply + login.feature()
        return LOGIN_FIRST

    def _dispatch(self, payload: bytes) -> Reply:
        if not payload:
            return _EMPTY
        head = payload[:1]
        body = payload[1:]
        simple = self._SIMPLE.get(head)
        if simple is not None:
            return simple(self, body)
        if payload.startswith(b"q") or payload.startswith(b"Q"):
            return self._query(payload)
        if payload.startswith(b"v"):
            return self._verbose(payload)
        return _EMPTY

    # ------------------------------------------------------------ state

    def _pid(self) -> int:
        """The process the client works on: the selected thread's, else the first."""
        tid = self._g_thread
        for pid in self.target.process_ids():
            if tid <= 0 or tid in self.target.thread_ids(pid):
                return pid
        raise PacketError("no process", 1)

    def _thread(self, selected: int) -> int:
        """A stopped thread to read or run: ``selected``, else the process's first."""
        if selected > 0:
            for pid in self.target.process_ids():
                if selected in self.target.thread_ids(pid):
                    return selected
        pid = self._pid()
        threads = self.target.thread_ids(pid)
        if not threads:
            raise PacketError("no thread", 1)
        return pid if pid in threads else threads[0]

    def _thread_text(self, pid: int, tid: int) -> bytes:
        if self.multiprocess:
            return b"p%x.%x" % (pid, tid)
        return b"%x" % tid

    def _parse_thread(self, text: bytes) -> tuple[int, int]:
        """(pid, tid) of a thread-id; -1 means all, 0 any."""
        match = _THREAD_ID.fullmatch(text)
        if match is None:
            raise PacketError(f"bad thread id {text!r}", 1)
        pid_text, tid_text = match.groups()
        pid = -1 if pid_text == b"-1" else int(pid_text, 16) if pid_text else 0
        tid = -1 if tid_text == b"-1" else int(tid_text, 16)
        if pid_text is None:
            pid = 0
        return pid, tid

    # ------------------------------------------------------------ one-letter packets

    def _status(self, body: bytes) -> Reply:
        if self._last_stop is not None and self.target.process_ids():
            return self._last_stop
        pids = self.target.process_ids()
        if not pids:
            return b"W00"
        pid = pids[0]
        tid = self._thread(0)
        return self._stop_reply(TargetEvent(EventKind.SIGNAL, pid, tid, signal=0))

    def _extended(self, body: bytes) -> Reply:
        self.extended = True
        return _OK

    def _read_registers(self, body: bytes) -> Reply:
        tid = self._thread(self._g_thread)
        regs = self.target.general_registers(tid)
        values = x86_64_gdb.encode_g(regs, self.target.float_state(tid), self._layout)
        return self._layout.to_hex(values).encode()

    def _write_registers(self, body: bytes) -> Reply:
        tid = self._thread(self._g_thread)
        values = self._layout.from_hex(body.decode("ascii"))
        regs = x86_64.UserRegs.from_buffer_copy(self.target.general_registers(tid))
        x86_64_gdb.decode_g(values, regs, None, self._layout)
        self._store_general(tid, regs)
        return _OK

    def _store_general(self, tid: int, regs: x86_64.UserRegs) -> None:
        current = self.target.general_registers(tid)
        for name in x86_64.GENERAL_REGISTERS:
            value = int(getattr(regs, name))
            if value != int(getattr(current, name)):
                self.target.set_register(tid, name, value)

    def _read_register(self, body: bytes) -> Reply:
        regnum = int(body, 16)
        register = self._layout.by_regnum(regnum)
        if register is None:
            raise PacketError(f"no register {regnum}", 0x45)
        tid = self._thread(self._g_thread)
        in_fxsave = x86_64_gdb.state_mapping(self._layout).get(register.name) == "fxsave"
        fxsave = self.target.float_state(tid) if in_fxsave else None
        value = x86_64_gdb.read_register(regnum, self.target.general_registers(tid), fxsave, self._layout)
        return b"xx" * register.size if value is None else value.hex().encode()

    def _write_register(self, body: bytes) -> Reply:
        number, _, value = body.partition(b"=")
        regnum = int(number, 16)
        tid = self._thread(self._g_thread)
        register = self._layout.by_regnum(regnum)
        if register is None:
            raise PacketError(f"no register {regnum}", 0x45)
        if x86_64_gdb.state_mapping(self._layout).get(register.name) != "regs":
            raise PacketError("only the general registers can be written", 1)
        regs = x86_64.UserRegs.from_buffer_copy(self.target.general_registers(tid))
        x86_64_gdb.write_register(regnum, hex_decode(value), regs, None, self._layout)
        self._store_general(tid, regs)
        return _OK

    def _read_memory_hex(self, body: bytes) -> Reply:
        address, length = self._address_length(body)
        data = self._read(address, length)
        return hex_encode(data)

    def _read_memory_binary(self, body: bytes) -> Reply:
        address, length = self._address_length(body)
        if length == 0:
            return _OK  # the probe gdb uses to see that ``x`` is supported
        return b"b" + self._read(address, length)

    def _read(self, address: int, length: int) -> bytes:
        length = min(length, MAX_TRANSFER)
        pid = self._pid()
        try:
            return self.target.read_memory(pid, address, length)
        except LindbgError:
            # what can be read up to the first bad byte, as gdbserver answers
            got = bytearray()
            step = 4096 - (address % 4096)
            while len(got) < length:
                size = min(step, length - len(got))
                try:
                    got += self.target.read_memory(pid, address + len(got), size)
                except LindbgError:
                    break
                step = 4096
            if not got:
                raise PacketError("memory not readable", 1) from None
            return bytes(got)

    def _write_memory_hex(self, body: bytes) -> Reply:
        where, _, data = body.partition(b":")
        address, length = self._address_length(where)
        payload = hex_decode(data)
        if len(payload) != length:
            raise PacketError("length mismatch", 1)
        self.target.write_memory(self._pid(), address, payload)
        return _OK

    def _write_memory_binary(self, body: bytes) -> Reply:
        where, _, data = body.partition(b":")
        address, length = self._address_length(where)
        if length == 0:
            return _OK
        if len(data) != length:
            raise PacketError("length mismatch", 1)
        self.target.write_memory(self._pid(), address, data)
        return _OK

    @staticmethod
    def _address_length(text: bytes) -> tuple[int, int]:
        address, _, length = text.partition(b",")
        return int(address, 16), int(length, 16)

    def _set_thread(self, body: bytes) -> Reply:
        op, thread = body[:1], body[1:]
        _, tid = self._parse_thread(thread)
        if op == b"g":
            self._g_thread = tid
        elif op == b"c":
            self._c_thread = tid
        else:
            raise PacketError("bad H", 1)
        return _OK

    def _thread_alive(self, body: bytes) -> Reply:
        _, tid = self._parse_thread(body)
        for known in self.target.process_ids():
            if tid in self.target.thread_ids(known):
                return _OK
        return b"E01"

    def _continue(self, body: bytes) -> Reply:
        return self._resume(ResumeMode.CONTINUE, self._c_thread, 0, body)

    def _continue_signal(self, body: bytes) -> Reply:
        sig, _, rest = body.partition(b";")
        return self._resume(ResumeMode.CONTINUE, self._c_thread, gdb_signals.from_gdb(int(sig, 16)), rest)

    def _step(self, body: bytes) -> Reply:
        return self._resume(ResumeMode.STEP, self._c_thread, 0, body)

    def _step_signal(self, body: bytes) -> Reply:
        sig, _, rest = body.partition(b";")
        return self._resume(ResumeMode.STEP, self._c_thread, gdb_signals.from_gdb(int(sig, 16)), rest)

    def _resume(self, mode: ResumeMode, selected: int, signo: int, address: bytes) -> Reply:
        tid = self._thread(selected)
        if address:
            self.target.set_register(tid, "rip", int(address, 16))
        self.target.resume(mode, tid, signo)
        return RESUMED

    def _kill(self, body: bytes) -> Reply:
        self.target.terminate_all()
        self._last_stop = None
        return _OK if self.extended else RESUMED

    def _detach(self, body: bytes) -> Reply:
        pid_text = body.lstrip(b";")
        pids = [int(pid_text, 16)] if pid_text else list(self.target.process_ids())
        for pid in pids:
            self._drop_points(pid)
            self.target.detach_process(pid)
        self._last_stop = None
        return _OK

    def _insert_point(self, body: bytes) -> Reply:
        kind, address, size = self._point_args(body)
        pid = self._pid()
        key = (pid, kind, address)
        if key in self._points:
            return _OK
        point = _Point(pid, kind, address, size)
        if kind == 0:
            self.target.claim_site(pid, address, point)
        elif kind in _WATCH_KINDS:
            slot = self.target.set_hardware(pid, address, _WATCH_KINDS[kind], size if kind != 1 else 1)
            slot.owners.append(point)
            point.slot = slot
        else:
            return _EMPTY
        self._points[key] = point
        return _OK

    def _remove_point(self, body: bytes) -> Reply:
        kind, address, _ = self._point_args(body)
        pid = self._pid()
        point = self._points.pop((pid, kind, address), None)
        if point is not None:
            self._release(point)
        return _OK

    def _release(self, point: _Point) -> None:
        if point.kind == 0:
            self.target.release_site(point.pid, point.address, point)
        elif point.slot is not None:
            owners = point.slot.owners  # type: ignore[attr-defined]
            if point in owners:
                owners.remove(point)
            if not owners:
                self.target.clear_hardware(point.pid, point.slot)  # type: ignore[arg-type]

    def _drop_points(self, pid: int) -> None:
        for key in [key for key in self._points if key[0] == pid]:
            point = self._points.pop(key)
            if pid in self.target.process_ids():
                self._release(point)

    @staticmethod
    def _point_args(body: bytes) -> tuple[int, int, int]:
        kind, address, size = body.split(b";")[0].split(b",")[:3]
        return int(kind, 16), int(address, 16), int(size, 16)

    _SIMPLE: dict[bytes, Callable[[GdbStub, bytes], Reply]] = {
        b"?": _status,
        b"!": _extended,
        b"g": _read_registers,
        b"G": _write_registers,
        b"p": _read_register,
        b"P": _write_register,
        b"m": _read_memory_hex,
        b"M": _write_memory_hex,
        b"x": _read_memory_binary,
        b"X": _write_memory_binary,
        b"H": _set_thread,
        b"T": _thread_alive,
        b"c": _continue,
        b"C": _continue_signal,
        b"s": _step,
        b"S": _step_signal,
        b"k": _kill,
        b"D": _detach,
        b"Z": _insert_point,
        b"z": _remove_point,
    }

    # ------------------------------------------------------------ q and Q

    def _query(self, payload: bytes) -> Reply:
        if payload.startswith(b"qRcmd,"):
            return self._monitor(hex_decode(payload[6:]).decode("utf-8", "replace").strip())
        name, _, args = payload.partition(b":")
        if name == b"qSupported":
            features = args.split(b";")
            self.multiprocess = b"multiprocess+" in features
            self.full_stops = FULL_STOPS_FEATURE in features
            return _FEATURES
        if name == b"QStartNoAckMode":
            self.no_ack_requested = True
            return _OK
        if name == b"qC":
            tid = self._thread(self._g_thread)
            return b"QC" + self._thread_text(self._pid(), tid)
        if name == b"qfThreadInfo":
            ids = [
                self._thread_text(pid, tid)
                for pid in self.target.process_ids()
                for tid in self.target.thread_ids(pid)
            ]
            return b"m" + b",".join(ids) if ids else b"l"
        if name == b"qsThreadInfo":
            return b"l"
        if name == b"qAttached":
            return b"1" if self._attached(args) else b"0"
        if name == b"qXfer":
            return self._xfer_packet(args)
        if name == b"qSymbol":
            return _OK
        if name == b"QThreadEvents":
            self.thread_events = args == b"1"
            return _OK
        if name == b"QDisableRandomization":
            return _OK  # accepted; programs start with the system's randomization
        if name == b"QNonStop":
            return _OK if args == b"0" else b"E01"  # all-stop only
        if name == b"QEnvironmentReset":
            self.launch.environment = dict(os.environ)
            return _OK
        if name == b"QEnvironmentHexEncoded":
            key, _, value = hex_decode(args).decode("utf-8", "surrogateescape").partition("=")
            self.launch.environment[key] = value
            return _OK
        if name == b"QEnvironmentUnset":
            self.launch.environment.pop(hex_decode(args).decode("utf-8", "surrogateescape"), None)
            return _OK
        if name == b"QSetWorkingDir":
            self.launch.cwd = hex_decode(args).decode("utf-8", "surrogateescape") if args else None
            return _OK
        return _EMPTY

    def _attached(self, args: bytes) -> bool:
        pids = [int(args, 16)] if args else self.target.process_ids()[:1]
        processes = getattr(self.target, "processes", {})
        return any(pid in processes and not processes[pid].launched for pid in pids)

    def _xfer_packet(self, args: bytes) -> Reply:
        obj, operation, rest = args.split(b":", 2)
        if operation != b"read":
            return _EMPTY
        annex, _, window = rest.rpartition(b":")
        offset, length = self._address_length(window)
        if obj == b"features":
            reply = x86_64_gdb.features_read(f"{annex.decode()}:{offset:x},{length:x}")
            return b"E00" if reply is None else reply
        document = self._xfer_object(obj.decode(), annex.decode())
        if document is None:
            return _EMPTY
        return xfer.xfer_read(document, offset, min(length, MAX_TRANSFER))

    def _xfer_object(self, obj: str, annex: str) -> bytes | None:
        """A whole qXfer object (None: not one we serve)."""
        if obj == "osdata":
            return xfer.osdata(annex)
        if obj == "exec-file":
            # asked before an attach too: any process, not only ours
            pid = int(annex, 16) if annex else self._pid()
            return xfer.exec_file(self.target, pid)
        if obj == "auxv":
            return xfer.auxv_bytes(self.target, self._pid())
        if obj == "libraries-svr4":
            return xfer.libraries_svr4(self.target, self._pid())
        if obj == "threads":
            return xfer.threads(
                [
                    (self._thread_text(pid, tid).decode(), pid, tid)
                    for pid in self.target.process_ids()
                    for tid in self.target.thread_ids(pid)
                ]
            )
        return None

    def _monitor(self, command: str) -> Reply:
        if command == "exit":
            self._exit_requested = True
            if self._on_exit_request is not None:
                self._on_exit_request()
            return _OK
        if command == "help":
            return hex_encode(b"The following monitor commands are supported:\n  exit\n  help\n")
        return hex_encode(f"lindbgsrv: unknown monitor command {command!r}; try 'help'\n".encode())

    # ------------------------------------------------------------ v packets

    def _verbose(self, payload: bytes) -> Reply:
        if payload == b"vCont?":
            return b"vCont;c;C;s;S;t"
        if payload.startswith(b"vCont;"):
            return self._vcont(payload[6:])
        if payload.startswith(b"vRun;"):
            return self._run(payload[5:])
        if payload.startswith(b"vAttach;"):
            return self._attach(int(payload[8:], 16))
        if payload.startswith(b"vKill;"):
            pid = int(payload[6:], 16)
            self._drop_points(pid)
            self.target.kill_process(pid)
            self._last_stop = None
            return _OK
        if payload.startswith(b"vFile:"):
            return self._host_files.handle(payload[6:])
        if payload == b"vMustReplyEmpty":
            return _EMPTY
        if payload == b"vCtrlC":
            self.target.request_interrupt()
            return _OK
        return _EMPTY

    def _vcont(self, actions: bytes) -> Reply:
        """One resume for the whole target (all-stop): the first action that names a
        thread, or the default action, decides how ``tid`` runs; the others run on."""
        mode, tid, signo = None, 0, 0
        for action in actions.split(b";"):
            verb, _, thread = action.partition(b":")
            letter = verb[:1]
            if letter == b"t":
                continue  # all-stop: everything is stopped already
            sig = gdb_signals.from_gdb(int(verb[1:], 16)) if letter in (b"C", b"S") and len(verb) > 1 else 0
            run = ResumeMode.STEP if letter in (b"s", b"S") else ResumeMode.CONTINUE
            if letter not in (b"c", b"C", b"s", b"S"):
                raise PacketError(f"vCont action {verb!r} is not supported", 1)
            target_tid = self._parse_thread(thread)[1] if thread else -1
            if mode is None or (run is ResumeMode.STEP and mode is not ResumeMode.STEP):
                mode, tid, signo = run, target_tid, sig
            elif target_tid > 0 and sig:
                self.target.set_pending_signal(target_tid, sig)
        if mode is None:
            return _OK
        return self._resume(mode, tid if tid > 0 else self._c_thread, signo, b"")

    def _run(self, args: bytes) -> Reply:
        parts = [hex_decode(part).decode("utf-8", "surrogateescape") for part in args.split(b";")]
        if not parts or not parts[0]:
            raise PacketError("vRun needs a program (set remote exec-file)", 1)
        pid = self.target.launch(parts, self.launch.environment, self.launch.cwd)
        self._g_thread = self._c_thread = pid
        reply = self._stop_reply(TargetEvent(EventKind.SIGNAL, pid, pid, signal=5))
        self._last_stop = reply
        return reply

    def _attach(self, pid: int) -> Reply:
        self.target.attach(pid)
        self._g_thread = self._c_thread = pid
        # reported as SIGTRAP, as gdbserver does: gdb expects that of a fresh attach
        reply = self._stop_reply(TargetEvent(EventKind.SIGNAL, pid, pid, signal=5))
        self._last_stop = reply
        return reply

    # ------------------------------------------------------------ stops

    def on_event(self, event: TargetEvent) -> bytes | None:
        """The stop reply for ``event``, or None when the target ran on without
        telling the client (a thread's birth, a fork, an exec it did not ask about)."""
        kind = event.kind
        if self.thread_events and kind is EventKind.CREATE_THREAD:
            self._g_thread = self._c_thread = event.new_id
            return b"T05thread:" + self._thread_text(event.pid, event.new_id) + b";create:;"
        if self.thread_events and kind is EventKind.EXIT_THREAD:
            return b"w%02x;" % (event.code & 0xFF) + self._thread_text(event.pid, event.tid)
        if kind in (EventKind.CREATE_THREAD, EventKind.EXIT_THREAD, EventKind.EXEC):
            self.target.resume(ResumeMode.CONTINUE, event.tid, 0)
            return None
        if kind is EventKind.CREATE_PROCESS:
            # no fork-events: the child is not ours to debug
            self.target.detach_process(event.pid)
            self.target.resume(ResumeMode.CONTINUE, event.tid, 0)
            return None
        if kind is EventKind.EXIT_PROCESS:
            self.target.resume(ResumeMode.CONTINUE, event.tid, 0)
            return None
        if kind is EventKind.PROCESS_GONE:
            self._forget_points(event.pid)
            tail = b";process:%x" % event.pid if self.multiprocess else b""
            self._last_stop = None
            if event.signal:
                return b"X%02x" % gdb_signals.to_gdb(event.signal) + tail
            return b"W%02x" % (event.code & 0xFF) + tail
        reply = self._stop_reply(event)
        self._last_stop = reply
        return reply

    def _forget_points(self, pid: int) -> None:
        for key in [key for key in self._points if key[0] == pid]:
            del self._points[key]

    def _stop_reply(self, event: TargetEvent) -> bytes:
        kind = event.kind
        if kind is EventKind.INTERRUPT:
            signo = 2
        elif kind in (EventKind.BREAKPOINT, EventKind.STEP):
            signo = 5
        else:
            signo = gdb_signals.to_gdb(event.signal)
        self._g_thread = self._c_thread = event.tid
        parts = [b"T%02xthread:" % signo + self._thread_text(event.pid, event.tid)]
        regs = self.target.general_registers(event.tid)
        if self.full_stops:
            parts.append(b"lindbg-regs:" + bytes(regs).hex().encode())
        for regnum in EXPEDITED:
            value = x86_64_gdb.read_register(regnum, regs, None, self._layout)
            if value is not None:
                parts.append(b"%02x:%s" % (regnum, value.hex().encode()))
        if kind is EventKind.BREAKPOINT:
            watch = next(
                (owner for owner in event.sites if isinstance(owner, _Point) and owner.kind in _WATCH_NAMES),
                None,
            )
            if watch is not None:
                parts.append(_WATCH_NAMES[watch.kind] + b":%x" % watch.address)
            elif any(isinstance(owner, _Point) and owner.kind == 1 for owner in event.sites):
                parts.append(b"hwbreak:")
            else:
                parts.append(b"swbreak:")
        return b";".join(parts) + b";"
