"""lindbgsrv's qXfer objects (lindbg.procserver.xfer) and host I/O
(lindbg.procserver.vfile): a real program under LiveTarget before and after its
loader ran, /proc, real files, made-up link maps for the corners, and, where
gdbserver is installed, gdbserver's own answers to the same requests."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import select
import shutil
import socket
import stat
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import WAIT, Programs

from lindbg.formats.elfdefs import AT_NULL, AT_PHDR, AT_PHNUM, AT_SYSINFO_EHDR, AUXV_ENTRY, PHDR
from lindbg.os.linux import procfs
from lindbg.procserver import xfer
from lindbg.procserver.vfile import HostFiles
from lindbg.protocols import rsp
from lindbg.targets.base import EventKind, ResumeMode
from lindbg.targets.live import LiveTarget
from lindbg.testing.fake_target import FakeTarget

# gdb's open flags and errno values (GDB manual, "Open Flags", "Errno Values").
O_RDONLY, O_WRONLY, O_RDWR, O_APPEND, O_CREAT, O_TRUNC, O_EXCL = 0, 1, 2, 0x8, 0x200, 0x400, 0x800
ENOENT, EBADF, EEXIST, EISDIR, EINVAL, EMFILE, ESPIPE = 2, 9, 17, 21, 22, 24, 29
FIO_STAT = struct.Struct(">7I3Q3I")


def h(text: str | bytes) -> bytes:
    """A path as host I/O sends it: hex."""
    return (text.encode() if isinstance(text, str) else text).hex().encode()


def error(number: int) -> bytes:
    return b"F-1,%x" % number


def attachment(reply: bytes) -> tuple[int, bytes]:
    """(result, attachment) of an ``F<result>;<data>`` reply."""
    head, semicolon, data = reply.partition(b";")
    assert head.startswith(b"F") and semicolon, reply
    return int(head[1:], 16), data


def opened(files: HostFiles, path: str | bytes, flags: int = O_RDONLY, mode: int = 0) -> int:
    reply = files.handle(b"open:%s,%x,%x" % (h(path), flags, mode))
    assert re.fullmatch(rb"F[0-9a-f]+", reply), reply
    return int(reply[1:], 16)


def shape(element: ET.Element) -> tuple[Any, ...]:
    """An XML element as comparable data: tag, attributes, children."""
    return element.tag, dict(element.attrib), [shape(child) for child in element]


# ------------------------------------------------------------------ real gdbserver


class GdbServer:
    """A real gdbserver on loopback, driven through lindbg's RSP codec."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            ["gdbserver", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert self.process.stderr is not None
        deadline = time.monotonic() + WAIT
        text = b""
        port = None
        while port is None:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"gdbserver did not listen: {text!r}"
            ready, _, _ = select.select([self.process.stderr], [], [], remaining)
            if ready:
                chunk = os.read(self.process.stderr.fileno(), 4096)
                assert chunk, f"gdbserver ended: {text!r}"
                text += chunk
                found = re.search(rb"Listening on port (\d+)", text)
                port = int(found[1]) if found else None
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.connection = rsp.RspConnection(rsp.Role.CLIENT)
        # as gdb starts: without the "?" a later packet finds no current thread
        assert b"PacketSize" in self.ask(b"qSupported:multiprocess+;swbreak+;hwbreak+")
        self.ask(b"?")

    def ask(self, payload: bytes) -> bytes:
        self.socket.sendall(self.connection.send_packet(payload))
        while True:
            data = self.socket.recv(1 << 20)
            events = self.connection.receive_data(data)
            self.socket.sendall(self.connection.data_to_send())
            for event in events:
                assert not isinstance(event, rsp.Closed), "gdbserver closed the connection"
                if isinstance(event, rsp.Packet):
                    return event.payload

    def read_object(self, name: bytes, annex: bytes = b"") -> bytes:
        """A whole qXfer object, read as gdb does, piece by piece."""
        document = b""
        while True:
            reply = self.ask(b"qXfer:%s:read:%s:%x,%x" % (name, annex, len(document), 0x1000))
            assert reply[:1] in (b"m", b"l"), reply
            document += reply[1:]
            if reply[:1] == b"l":
                return document

    def close(self) -> None:
        with contextlib.suppress(OSError, rsp.RspError):
            self.socket.sendall(self.connection.send_packet(b"k"))  # kills a --once inferior
        with contextlib.suppress(OSError):
            self.socket.close()
        self.process.kill()
        self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def gdbserver() -> Iterator[list[GdbServer]]:
    """Start gdbservers with ``GdbServer(...)`` appended here; all are killed after."""
    if shutil.which("gdbserver") is None:
        pytest.skip("gdbserver is not installed")
    servers: list[GdbServer] = []
    yield servers
    for server in servers:
        server.close()


# ------------------------------------------------------------------ a real program


@pytest.fixture
def checksum(programs: Programs) -> Iterator[tuple[LiveTarget, int]]:
    """``checksum`` under LiveTarget, stopped at its first instruction (ld.so's)."""
    target = LiveTarget()
    environment = {key: value for key, value in os.environ.items() if key != "LINDBG_TEST_OUT"}
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        pid = target.launch([programs.path("checksum")], environment, None, (devnull, devnull, devnull))
    finally:
        os.close(devnull)
    try:
        yield target, pid
    finally:
        target.terminate_all()


def run_to_main(target: LiveTarget, pid: int, programs: Programs) -> None:
    main = programs.symbol("checksum", "main")
    target.claim_site(pid, main, "test")
    target.resume(ResumeMode.CONTINUE, pid, 0)
    event = target.wait_event(time.monotonic() + WAIT)
    assert event is not None and (event.kind, event.address) == (EventKind.BREAKPOINT, main), event


def u64(target: LiveTarget, pid: int, address: int) -> int:
    return int.from_bytes(target.read_memory(pid, address, 8), "little")


def test_the_library_list_is_empty_at_the_first_instruction(checksum: tuple[LiveTarget, int]) -> None:
    target, pid = checksum
    assert xfer.libraries_svr4(target, pid) == xfer.EMPTY_LIBRARY_LIST
    assert ET.fromstring(xfer.EMPTY_LIBRARY_LIST).attrib == {"version": "1.0"}


def test_the_library_list_at_main_names_what_is_mapped(
    checksum: tuple[LiveTarget, int], programs: Programs
) -> None:
    target, pid = checksum
    run_to_main(target, pid, programs)
    document = xfer.libraries_svr4(target, pid)
    root = ET.fromstring(document)
    assert root.tag == "library-list-svr4" and root.get("version") == "1.0"
    libraries = root.findall("library")
    assert len(libraries) == len(root)
    names = [library.attrib["name"] for library in libraries]
    assert "linux-vdso.so.1" in names
    assert any(name.endswith("/libc.so.6") for name in names)
    assert any("ld-linux" in name for name in names)
    regions = procfs.maps(pid)
    mapped = {os.path.realpath(path) for _, _, _, _, path in regions if ".so" in path}
    assert {os.path.realpath(name) for name in names if name.startswith("/")} == mapped
    auxv = target.auxv(pid)
    lmids = {library.attrib["lmid"] for library in libraries}
    assert len(lmids) == 1 and int(lmids.pop(), 16) != 0
    for library in libraries:
        assert set(library.attrib) == {"name", "lm", "l_addr", "l_ld", "lmid"}
        name = library.attrib["name"]
        lm, l_addr, l_ld = (int(library.attrib[key], 16) for key in ("lm", "l_addr", "l_ld"))
        assert u64(target, pid, lm) == l_addr and u64(target, pid, lm + 16) == l_ld
        if name == "linux-vdso.so.1":
            assert l_addr == auxv[AT_SYSINFO_EHDR]
            path = "[vdso]"
        else:
            path = name
        own = [(start, end) for start, end, _, _, mapped_path in regions if _same_file(mapped_path, path)]
        assert l_addr == min(start for start, _ in own), name  # its first PT_LOAD is at 0
        assert any(start <= l_ld < end for start, end in own), name
    # main-lm is the program's own entry: no name, and the first library follows it.
    main_lm = int(root.attrib["main-lm"], 16)
    assert target.read_memory(pid, u64(target, pid, main_lm + 8), 1) == b"\0"
    assert u64(target, pid, main_lm + 24) == int(libraries[0].attrib["lm"], 16)


def _same_file(mapped: str, path: str) -> bool:
    if path.startswith("["):
        return mapped == path
    return mapped.startswith("/") and os.path.realpath(mapped) == os.path.realpath(path)


def test_the_library_list_matches_gdbservers(
    checksum: tuple[LiveTarget, int], programs: Programs, gdbserver: list[GdbServer]
) -> None:
    target, pid = checksum
    server = GdbServer("--once", "127.0.0.1:0", programs.path("checksum"))
    gdbserver.append(server)
    theirs_at_start = server.read_object(b"libraries-svr4")
    assert shape(ET.fromstring(xfer.libraries_svr4(target, pid))) == shape(ET.fromstring(theirs_at_start))
    main = programs.symbol("checksum", "main")
    assert server.ask(b"Z0,%x,1" % main) == b"OK"
    assert server.ask(b"vCont;c").startswith(b"T05")
    run_to_main(target, pid, programs)
    ours = ET.fromstring(xfer.libraries_svr4(target, pid))
    theirs = ET.fromstring(server.read_object(b"libraries-svr4"))
    assert set(ours.attrib) == set(theirs.attrib) == {"version", "main-lm"}
    assert [(e.tag, e.get("name"), sorted(e.attrib)) for e in ours] == [
        (e.tag, e.get("name"), sorted(e.attrib)) for e in theirs
    ]


def test_auxv_is_the_kernels_vector(checksum: tuple[LiveTarget, int]) -> None:
    target, pid = checksum
    data = xfer.auxv_bytes(target, pid)
    with open(f"/proc/{pid}/auxv", "rb") as raw:
        assert data == raw.read()
    pairs = list(AUXV_ENTRY.iter_unpack(data))
    assert pairs[-1] == (AT_NULL, 0)
    assert dict(pairs[:-1]) == target.auxv(pid)


def test_auxv_of_a_target_without_proc_is_rebuilt_from_its_vector() -> None:
    target = FakeTarget(auxv={AT_PHDR: 0x400040, AT_PHNUM: 9, AT_SYSINFO_EHDR: 0x7FFF0000})
    pid = target.launch(["prog"], None, None)
    data = xfer.auxv_bytes(target, pid)
    expected = [(AT_PHDR, 0x400040), (AT_PHNUM, 9), (AT_SYSINFO_EHDR, 0x7FFF0000), (AT_NULL, 0)]
    assert list(AUXV_ENTRY.iter_unpack(data)) == expected


def test_exec_file_is_the_programs_path(checksum: tuple[LiveTarget, int], programs: Programs) -> None:
    target, pid = checksum
    assert xfer.exec_file(target, pid) == os.fsencode(os.path.realpath(programs.path("checksum")))


def test_threads_lists_each_thread_with_its_core_and_name(checksum: tuple[LiveTarget, int]) -> None:
    _, pid = checksum
    gone = 1 << 22  # above pid_max: a thread that has ended
    document = xfer.threads([(f"p{pid:x}.{pid:x}", pid, pid), (f"p{pid:x}.{gone:x}", pid, gone)])
    root = ET.fromstring(document)
    assert root.tag == "threads"
    live, ended = root.findall("thread")
    assert live.get("id") == f"p{pid:x}.{pid:x}"
    with open(f"/proc/{pid}/comm") as comm:
        assert live.get("name") == comm.read().strip()
    assert int(live.get("core", "-1")) in range(os.cpu_count() or 1)
    assert ended.attrib == {"id": f"p{pid:x}.{gone:x}"}


def test_objects_are_read_in_pieces_with_xfer_read(
    checksum: tuple[LiveTarget, int], programs: Programs
) -> None:
    target, pid = checksum
    run_to_main(target, pid, programs)
    document = xfer.libraries_svr4(target, pid)
    pieces, offset = [], 0
    while True:
        reply = xfer.xfer_read(document, offset, 100)
        pieces.append(reply[1:])
        offset += len(reply) - 1
        if reply[:1] == b"l":
            break
        assert reply[:1] == b"m"
    assert b"".join(pieces) == document and len(pieces) > 1


# ------------------------------------------------------------ made-up link maps

BIAS = 0x555555554000
PHDRS = BIAS + 0x40
DYNAMIC = BIAS + 0x2000
R_DEBUG = 0x7F0000001000
SECOND_R_DEBUG = 0x7F0000002000
LINK_MAPS = 0x7F0000010000
NAMES = 0x7F0000020000
UNMAPPED = 0x7E0000000000


def made_up_process(
    namespaces: list[list[str]],
    *,
    version: int = 1,
    dynamic: bool = True,
    published: bool = True,
    bad_second_map: bool = False,
) -> tuple[FakeTarget, int]:
    """A PIE whose loader lists ``namespaces`` (each a list of names, the
    program's own entry first in the first); the link_map entry i is at
    LINK_MAPS + 0x100 * i, with l_addr 0x1000 * (i + 1) and l_ld l_addr + 0x10."""
    target = FakeTarget(auxv={AT_PHDR: PHDRS, AT_PHNUM: 3 if dynamic else 2})
    pid = target.launch(["prog"], None, None)
    headers = [PHDR.pack(6, 4, 0x40, 0x40, 0x40, 3 * PHDR.size, 3 * PHDR.size, 8)]
    headers.append(PHDR.pack(1, 5, 0, 0, 0, 0x3000, 0x3000, 0x1000))
    if dynamic:
        headers.append(PHDR.pack(2, 6, 0x2000, 0x2000, 0x2000, 48, 48, 8))
    target.map_memory(pid, BIAS, bytes(0x40) + b"".join(headers))
    debug = R_DEBUG if published else 0
    target.map_memory(pid, DYNAMIC, struct.pack("<qQqQqQ", 1, 0x10, 21, debug, 0, 0))
    index = 0
    for number, names in enumerate(namespaces):
        r_debug = (R_DEBUG, SECOND_R_DEBUG)[number]
        last = number == len(namespaces) - 1
        r_next = 0 if last else SECOND_R_DEBUG
        first = LINK_MAPS + 0x100 * index
        if number == 1 and bad_second_map:
            first = UNMAPPED
        target.map_memory(pid, r_debug, struct.pack("<iIQQiIQQ", version, 0, first, 0, 0, 0, 0, r_next))
        for position, name in enumerate(names):
            entry = LINK_MAPS + 0x100 * index
            following = entry + 0x100 if position + 1 < len(names) else 0
            previous = entry - 0x100 if position else 0
            l_addr = 0x1000 * (index + 1)
            name_address = NAMES + 0x100 * index
            target.map_memory(pid, name_address, name.encode() + b"\0")
            target.map_memory(
                pid, entry, struct.pack("<5Q", l_addr, name_address, l_addr + 0x10, following, previous)
            )
            index += 1
    return target, pid


def libraries(document: bytes) -> list[dict[str, str]]:
    return [dict(element.attrib) for element in ET.fromstring(document)]


def test_a_pie_list_skips_the_program_and_nameless_entries_and_escapes_names() -> None:
    weird = "/lib/we<i>rd & \"odd\" 'so'.so"
    target, pid = made_up_process([["", "/lib/libc.so.6", "", weird]])
    document = xfer.libraries_svr4(target, pid)
    assert ET.fromstring(document).attrib == {"version": "1.0", "main-lm": f"{LINK_MAPS:#x}"}
    assert b"&lt;i&gt;rd &amp; &quot;odd&quot; &apos;so&apos;" in document
    assert libraries(document) == [
        {
            "name": "/lib/libc.so.6",
            "lm": "0x7f0000010100",
            "l_addr": "0x2000",
            "l_ld": "0x2010",
            "lmid": "0x7f0000001000",
        },
        {
            "name": weird,
            "lm": "0x7f0000010300",
            "l_addr": "0x4000",
            "l_ld": "0x4010",
            "lmid": "0x7f0000001000",
        },
    ]


def test_every_namespace_is_listed_with_its_lmid() -> None:
    target, pid = made_up_process([["", "/lib/libc.so.6"], ["/lib/other.so", "/lib/libc.so.6"]], version=2)
    listed = [(entry["name"], entry["lmid"]) for entry in libraries(xfer.libraries_svr4(target, pid))]
    assert listed == [
        ("/lib/libc.so.6", f"{R_DEBUG:#x}"),
        ("/lib/other.so", f"{SECOND_R_DEBUG:#x}"),
        ("/lib/libc.so.6", f"{SECOND_R_DEBUG:#x}"),
    ]


def test_an_unreadable_namespace_leaves_the_ones_read_before_it() -> None:
    target, pid = made_up_process([["", "/lib/libc.so.6"], ["/lib/other.so"]], version=2, bad_second_map=True)
    assert [entry["name"] for entry in libraries(xfer.libraries_svr4(target, pid))] == ["/lib/libc.so.6"]


def test_the_list_is_empty_for_a_static_program_an_unpublished_one_or_a_bad_version() -> None:
    for target, pid in (
        made_up_process([["", "/lib/libc.so.6"]], dynamic=False),
        made_up_process([["", "/lib/libc.so.6"]], published=False),
        made_up_process([["", "/lib/libc.so.6"]], version=0),
    ):
        assert xfer.libraries_svr4(target, pid) == xfer.EMPTY_LIBRARY_LIST
    no_vector = FakeTarget()
    assert xfer.libraries_svr4(no_vector, no_vector.launch(["prog"], None, None)) == xfer.EMPTY_LIBRARY_LIST


def test_only_the_program_listed_gives_main_lm_and_no_library() -> None:
    target, pid = made_up_process([[""]])
    assert xfer.libraries_svr4(target, pid) == b'<library-list-svr4 version="1.0" main-lm="0x7f0000010000"/>'


# --------------------------------------------------------------------- osdata


def processes() -> dict[int, dict[str, str]]:
    document = xfer.osdata_processes()
    root = ET.fromstring(document)
    assert root.tag == "osdata" and root.attrib == {"type": "processes"}
    table = {}
    for item in root:
        columns = {column.attrib["name"]: column.text or "" for column in item}
        assert list(columns) == ["pid", "user", "command", "cores"]
        table[int(columns["pid"])] = columns
    return table


def test_osdata_lists_this_process_and_a_childs_command_escaped() -> None:
    script = "import sys, time; print('ready', flush=True); time.sleep(60)"
    argv = [sys.executable, "-c", script, "<a & \"b\" 'c'>"]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"  # it runs: its exec is done
        table = processes()
    finally:
        child.kill()
        child.wait()
    assert table[child.pid]["command"] == " ".join(argv)
    mine = table[os.getpid()]
    assert mine["command"] == " ".join(procfs.command_line(os.getpid()))
    assert mine["user"] == pwd.getpwuid(os.getuid()).pw_name
    assert re.fullmatch(r"\d+(,\d+)*", mine["cores"])
    cores = [int(core) for core in mine["cores"].split(",")]
    assert cores == sorted(set(cores))
    kernel_threads = [pid for pid, row in table.items() if row["command"].startswith("[")]
    for pid in kernel_threads[:3]:
        with contextlib.suppress(OSError):
            assert table[pid]["command"] == f"[{procfs.process_stat(pid).comm}]"


def test_osdata_types_and_annexes() -> None:
    root = ET.fromstring(xfer.osdata_types())
    assert root.attrib == {"type": "types"}
    assert [[column.attrib["name"] for column in item] for item in root] == [["Type", "Description", "Title"]]
    assert root[0][0].text == "processes"
    assert xfer.osdata("") == xfer.osdata_types()
    assert ET.fromstring(xfer.osdata("processes")).attrib == {"type": "processes"}
    assert xfer.osdata("sockets") == b""


def test_osdata_has_gdbservers_columns(gdbserver: list[GdbServer]) -> None:
    server = GdbServer("--multi", "127.0.0.1:0")
    gdbserver.append(server)
    theirs = ET.fromstring(server.read_object(b"osdata", b"processes"))
    row = next(item for item in theirs if item[0].text == str(server.process.pid))
    mine = processes()[server.process.pid]
    assert [column.attrib["name"] for column in row] == list(mine)
    assert (row[1].text, (row[2].text or "").rstrip()) == (mine["user"], mine["command"])
    assert theirs.attrib == ET.fromstring(xfer.osdata_processes()).attrib


# ------------------------------------------------------------------ host I/O


@pytest.fixture
def files() -> Iterator[HostFiles]:
    host_files = HostFiles()
    yield host_files
    host_files.close_all()


ALL_BYTES = bytes(range(256)) * 4 + b"$#}*" * 64


def test_open_pread_fstat_close(files: HostFiles, tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(ALL_BYTES)
    fd = opened(files, str(path))
    assert attachment(files.handle(b"pread:%x,%x,0" % (fd, len(ALL_BYTES) + 10))) == (
        len(ALL_BYTES),
        ALL_BYTES,
    )
    assert attachment(files.handle(b"pread:%x,4,%x" % (fd, 256))) == (4, bytes(range(4)))
    assert files.handle(b"pread:%x,10,%x" % (fd, 1 << 40)) == b"F0;"
    assert files.handle(b"pread:%x,0,0" % fd) == b"F0;"
    size, raw = attachment(files.handle(b"fstat:%x" % fd))
    assert size == FIO_STAT.size == len(raw) == 64
    fields = FIO_STAT.unpack(raw)
    real = os.stat(path)
    assert fields[0] == real.st_dev & 0xFFFFFFFF and fields[1] == real.st_ino & 0xFFFFFFFF
    assert fields[2] == stat.S_IFREG | (real.st_mode & 0o777)
    assert fields[3:7] == (real.st_nlink, real.st_uid, real.st_gid, 0)
    assert fields[7:10] == (len(ALL_BYTES), real.st_blksize, real.st_blocks)
    assert fields[10:] == (int(real.st_atime), int(real.st_mtime), int(real.st_ctime))
    assert files.open_count == 1
    assert files.handle(b"close:%x" % fd) == b"F0"
    assert files.open_count == 0
    assert files.handle(b"pread:%x,10,0" % fd) == error(EBADF)
    assert files.handle(b"close:%x" % fd) == error(EBADF)
    assert files.handle(b"fstat:%x" % fd) == error(EBADF)


def test_fstat_of_a_directory_and_pread_of_it(files: HostFiles, tmp_path: Path) -> None:
    fd = opened(files, str(tmp_path))
    mode = FIO_STAT.unpack(attachment(files.handle(b"fstat:%x" % fd))[1])[2]
    assert mode == stat.S_IFDIR | (os.stat(tmp_path).st_mode & 0o777)
    assert files.handle(b"pread:%x,10,0" % fd) == error(EISDIR)


def test_pread_replies_fit_max_reply_after_escaping(tmp_path: Path) -> None:
    path = tmp_path / "specials"
    path.write_bytes(ALL_BYTES)
    files = HostFiles(max_reply=300)
    try:
        fd = opened(files, str(path))
        got = b""
        while True:
            reply = files.handle(b"pread:%x,%x,%x" % (fd, 0x1000, len(got)))
            assert len(rsp.encode_payload(reply)) <= 300
            count, data = attachment(reply)
            assert count == len(data)
            if not count:
                break
            got += data
        assert got == ALL_BYTES
        # all special: every byte costs two
        path.write_bytes(b"}" * 1000)
        count, data = attachment(files.handle(b"pread:%x,1000,0" % fd))
        assert (
            data == b"}" * count and count >= 140 and len(rsp.encode_payload(b"F%x;" % count + data)) <= 300
        )
    finally:
        files.close_all()


def test_create_pwrite_append_exclusive_and_mode(files: HostFiles, tmp_path: Path) -> None:
    path = tmp_path / "new"
    fd = opened(files, str(path), O_CREAT | O_WRONLY | O_TRUNC, 0o640)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640 & ~umask
    payload = b"a,b,c\0$#}*\xff"
    assert files.handle(b"pwrite:%x,0,%s" % (fd, payload)) == b"F%x" % len(payload)
    assert files.handle(b"pwrite:%x,%x,XY" % (fd, 20)) == b"F2"
    assert files.handle(b"pwrite:%x,0," % fd) == b"F0"
    assert path.read_bytes() == payload + bytes(20 - len(payload)) + b"XY"
    assert files.handle(b"close:%x" % fd) == b"F0"
    assert files.handle(b"open:%s,%x,1a4" % (h(str(path)), O_CREAT | O_EXCL | O_WRONLY)) == error(EEXIST)
    fd = opened(files, str(path), O_APPEND | O_WRONLY)
    assert files.handle(b"pwrite:%x,0,Z" % fd) == b"F1"
    assert path.read_bytes().endswith(b"XYZ")  # O_APPEND: the offset does not matter
    read_only = opened(files, str(path))
    assert files.handle(b"pwrite:%x,0,Z" % read_only) == error(EBADF)  # the OS's EBADF
    both = opened(files, str(path), O_RDWR)
    assert files.handle(b"pwrite:%x,1,Q" % both) == b"F1"
    assert attachment(files.handle(b"pread:%x,2,0" % both)) == (2, b"aQ")


def test_unlink_and_readlink(files: HostFiles, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"x")
    link = tmp_path / "link"
    link.symlink_to("target")
    dangling = tmp_path / "dangling"
    dangling.symlink_to("/nonexistent/\xe9/path")
    assert files.handle(b"readlink:" + h(str(link))) == b"F6;target"
    expected = os.fsencode("/nonexistent/\xe9/path")
    assert files.handle(b"readlink:" + h(str(dangling))) == b"F%x;%s" % (len(expected), expected)
    assert files.handle(b"readlink:" + h(str(target))) == error(EINVAL)
    assert files.handle(b"readlink:" + h(str(tmp_path / "missing"))) == error(ENOENT)
    assert files.handle(b"unlink:" + h(str(link))) == b"F0"
    assert not link.exists() and target.exists()  # the link, not what it names
    assert files.handle(b"unlink:" + h(str(link))) == error(ENOENT)
    assert files.handle(b"unlink:" + h(str(target))) == b"F0"
    assert not target.exists()


def test_a_long_link_that_cannot_fit_is_enametoolong(tmp_path: Path) -> None:
    link = tmp_path / "long"
    link.symlink_to("x" * 400)
    files = HostFiles(max_reply=300)
    assert files.handle(b"readlink:" + h(str(link))) == error(91)


def test_malformed_requests_are_einval_and_unknown_ones_empty(files: HostFiles, tmp_path: Path) -> None:
    path = h(str(tmp_path))
    for request in (
        b"open:zz,0,0",
        b"open:2f6,0,0",  # odd hex
        b"open:" + h("/etc/\0passwd") + b",0,0",
        b"open:" + path,
        b"open:" + path + b",0",
        b"open:" + path + b",0,0,0",
        b"open:" + path + b",-1,0",
        b"open:" + path + b",,0",
        b"open:" + path + b",1000,0",  # a flag gdb does not define
        b"open:" + path + b",3,0",  # access mode 3
        b"open:" + path + b",0,800",  # S_ISUID
        b"pread:0,10",
        b"pread:x,10,0",
        b"pread:0,10,-1",
        b"pread:0,10,11111111111111111",
        b"pwrite:0",
        b"close:",
        b"close:0,1",
        b"fstat:",
        b"unlink:zz",
        b"readlink:2",
        b"setfs:",
        b"setfs:-1",
    ):
        assert files.handle(request) == error(EINVAL), request
    for request in (b"frobnicate:1", b"open", b"stat:2f", b"", b"pread"):
        assert files.handle(request) == b"", request
    assert files.handle(b"open:" + h(str(tmp_path / "missing")) + b",0,0") == error(ENOENT)
    assert files.handle(b"pread:7fffffff,10,0") == error(EBADF)
    assert files.open_count == 0


def test_an_offset_past_off_t_is_einval(files: HostFiles, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    fd = opened(files, str(path))
    assert files.handle(b"pread:%x,1,ffffffffffffffff" % fd) == error(EINVAL)


def test_a_fifo_opens_without_blocking(files: HostFiles, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    fd = opened(files, str(fifo))
    assert os.get_blocking(fd) and os.get_inheritable(fd) is False
    assert files.handle(b"pread:%x,10,0" % fd) == error(ESPIPE)


def test_too_many_open_files_is_emfile_and_close_all_closes_them(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    files = HostFiles(max_files=2)
    first, second = opened(files, str(path)), opened(files, str(path))
    assert files.handle(b"open:%s,0,0" % h(str(path))) == error(EMFILE)
    files.close_all()
    assert files.open_count == 0
    for fd in (first, second):
        with pytest.raises(OSError):
            os.fstat(fd)
    assert files.handle(b"fstat:%x" % first) == error(EBADF)
    with pytest.raises(ValueError):
        HostFiles(max_reply=10)


def test_setfs_to_a_process_of_our_namespace_uses_our_files(files: HostFiles, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert files.handle(b"setfs:0") == b"F0"
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert files.handle(b"setfs:%x" % child.pid) == b"F0"
        fd = opened(files, str(path))
        assert attachment(files.handle(b"pread:%x,3,0" % fd)) == (3, b"abc")
    finally:
        child.kill()
        child.wait()
    assert files.handle(b"setfs:7ffffff0") == b"F0"  # as gdbserver: checked when used
    assert files.handle(b"open:%s,0,0" % h(str(path))) == error(ENOENT)
    assert files.handle(b"readlink:%s" % h(str(path))) == error(ENOENT)


def test_setfs_to_another_mount_namespace_sees_its_files(files: HostFiles, tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) to make a mount namespace")
    inside = tmp_path / "mnt"
    inside.mkdir()
    script = (
        f"mount -t tmpfs none {inside} && printf hidden > {inside}/f && ln -s /etc/hostname {inside}/link"
        " && echo ready && exec sleep 60"
    )
    child = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script], stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], WAIT)
        if not ready or child.stdout.readline() != b"ready\n":
            pytest.skip("could not make a mount namespace here")
        assert not (inside / "f").exists()  # not in ours
        assert files.handle(b"setfs:%x" % child.pid) == b"F0"
        fd = opened(files, str(inside / "f"))
        assert attachment(files.handle(b"pread:%x,10,0" % fd)) == (6, b"hidden")
        assert files.handle(b"readlink:" + h(str(inside / "link"))) == b"F%x;/etc/hostname" % len(
            "/etc/hostname"
        )
        assert files.handle(b"unlink:" + h(str(inside / "link"))) == b"F0"
        assert files.handle(b"readlink:" + h(str(inside / "link"))) == error(ENOENT)
        assert files.handle(b"unlink:" + h("/")) == error(EINVAL)
        assert files.handle(b"setfs:0") == b"F0"
        assert files.handle(b"open:%s,0,0" % h(str(inside / "f"))) == error(ENOENT)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def _file_kind_and_size(reply: bytes) -> bytes:
    """An fstat reply without what names the file or the moment (device, inode, times)."""
    return reply[:4] + reply[12:20] + reply[32:56]


def test_host_io_answers_as_gdbserver_does(
    files: HostFiles, tmp_path: Path, gdbserver: list[GdbServer]
) -> None:
    server = GdbServer("--multi", "127.0.0.1:0")
    gdbserver.append(server)
    data = tmp_path / "data"
    data.write_bytes(ALL_BYTES)
    (tmp_path / "link").symlink_to("data")
    same = [
        b"open:" + h(str(tmp_path / "missing")) + b",0,0",
        b"open:zz,0,0",
        b"open:" + h(str(data)) + b",1000,0",
        b"open:" + h(str(data)) + b",0,800",
        b"readlink:" + h(str(tmp_path / "link")),
        b"readlink:" + h(str(data)),
        b"unlink:" + h(str(tmp_path / "missing")),
        b"open:" + h(str(data)) + b",%x,1a4" % (O_CREAT | O_EXCL | O_WRONLY),
        b"frobnicate:0",
    ]
    for request in same:
        assert files.handle(request) == server.ask(b"vFile:" + request), request
    ours = opened(files, str(data))
    theirs = int(server.ask(b"vFile:open:" + h(str(data)) + b",0,0")[1:], 16)
    for request in (b"fstat:%x", b"pread:%x,400,0", b"pread:%x,1000,300", b"pread:%x,10,100000", b"close:%x"):
        assert files.handle(request % ours) == server.ask(b"vFile:" + request % theirs), request
    for flags in (O_CREAT | O_WRONLY | O_TRUNC, O_RDWR):
        ours = opened(files, str(tmp_path / "ours"), flags, 0o600)
        theirs = int(server.ask(b"vFile:open:%s,%x,180" % (h(str(tmp_path / "theirs")), flags))[1:], 16)
        for request in (b"pwrite:%x,5,a,b$#}*", b"pread:%x,100,0", b"fstat:%x"):
            mine, gdbservers = files.handle(request % ours), server.ask(b"vFile:" + request % theirs)
            if request.startswith(b"fstat"):  # another file: compare what does not name it
                mine, gdbservers = _file_kind_and_size(mine), _file_kind_and_size(gdbservers)
            assert mine == gdbservers, request
        assert files.handle(b"close:%x" % ours) == server.ask(b"vFile:close:%x" % theirs) == b"F0"
    assert (tmp_path / "ours").read_bytes() == (tmp_path / "theirs").read_bytes()
    assert files.handle(b"setfs:0") == server.ask(b"vFile:setfs:0") == b"F0"
