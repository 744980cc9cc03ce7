"""The ``qXfer`` objects lindbgsrv offers, each built whole as bytes.

Every builder returns the complete object; the dispatcher cuts the piece a
``qXfer:OBJECT:read:ANNEX:OFFSET,LENGTH`` asks for with ``xfer_read`` (the
``m``/``l`` reply; re-exported here from lindbg.arch.x86_64_gdb) and the
codec escapes whatever binary bytes it holds. Documents are rebuilt on every
request: they are small, and a list that changed between two chunks of one
read is the price gdbserver pays too.

Formats, as gdbserver writes them (gdbserver/linux-low.cc, gdb/nat/linux-osdata.c;
checked against gdbserver 13.1's answers):

* ``libraries-svr4``: ``<library-list-svr4 version="1.0" main-lm="0xLM">`` then
  ``<library name="..." lm="0x..." l_addr="0x..." l_ld="0x..." lmid="0x..."/>``
  for each named entry of the loader's ``link_map`` list after the program's
  own (``main-lm``); ``lmid`` is the address of the namespace's ``r_debug``,
  as gdbserver 13 writes it (older gdb ignores the attribute). Entries of
  further namespaces (dlmopen, ``r_version`` 2: ``r_debug_extended.r_next``)
  follow, all of each listed. Before the loader has published ``r_debug``
  (the first instruction) and for a static program the list is empty:
  ``<library-list-svr4 version="1.0"/>``. (gdbserver answers a static program
  with an error, E01, and writes the empty list as an open and a close tag;
  both mean the same to gdb.)
* ``osdata`` ``processes``: ``<osdata type="processes">`` and one ``<item>`` of
  ``pid``, ``user``, ``command`` and ``cores`` columns per process; the empty
  annex lists the types offered (``processes`` alone).
* ``auxv``: the raw vector, pairs of 8-byte little-endian words up to and
  including AT_NULL.
* ``exec-file``: the path of the program, the bytes the kernel gives.
* ``threads``: ``<threads>`` and one ``<thread id="pP.T" core="N" name="COMM"/>``
  per thread (gdb reads it at every stop instead of ``qfThreadInfo`` and
  ``qsThreadInfo``: one round trip instead of two).

The library list is read from the inferior's memory, through the same
rendezvous helpers the engine uses (lindbg.symbols.loader): the program's
PT_DYNAMIC (found from AT_PHDR/AT_PHNUM, which also give a PIE's load bias),
its DT_DEBUG entry, then ``r_debug.r_map``. Only 64-bit inferiors, as the
rest of lindbg. The incremental ``start=``/``prev=`` annex of gdb's
``augmented-libraries-svr4-read`` is not supported: do not advertise it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import xml.etree.ElementTree as ElementTree

from lindbg.arch.x86_64_gdb import xfer_read
from lindbg.errors import TargetAccessError
from lindbg.formats.elfdefs import AT_NULL, AT_PHDR, AUXV_ENTRY
from lindbg.os.linux import procfs
from lindbg.symbols import loader
from lindbg.targets.base import Target

__all__ = [
    "EMPTY_LIBRARY_LIST",
    "auxv_bytes",
    "exec_file",
    "libraries_svr4",
    "osdata",
    "osdata_processes",
    "osdata_types",
    "xfer_read",
]

#: The library list before the loader has run, or of a static program.
EMPTY_LIBRARY_LIST = b'<library-list-svr4 version="1.0"/>'

# struct r_debug / r_debug_extended and struct link_map, 64-bit (glibc's link.h).
_R_VERSION = 0
_R_NEXT = 40
_L_LD = 16
#: glibc has 16 namespaces (DL_NNS); more means a corrupt chain.
_MAX_NAMESPACES = 64

# What XML 1.0 cannot hold at all: control characters other than tab, newline
# and carriage return, lone surrogates (a file name decoded with
# surrogateescape), U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}
_XML_SPECIAL = re.compile("[&<>\"']")


def _xml_text(text: str) -> str:
    """``text`` for an XML attribute or element: the five special characters as
    entities (as gdb's xml_escape_text writes them), characters XML cannot hold
    as ``?``."""
    text = _NOT_XML.sub("?", text)
    return _XML_SPECIAL.sub(lambda match: _XML_ENTITIES[match[0]], text)


# ------------------------------------------------------------ libraries-svr4


def libraries_svr4(target: Target, pid: int) -> bytes:
    """The ``qXfer:libraries-svr4:read`` document of process ``pid``.

    Memory that cannot be read ends the list where it fails: an unreadable
    program header table, dynamic section or ``r_debug`` gives the empty list,
    an unreadable entry the entries of the namespaces read before it.

    Raises:
        TargetAccessError: the auxiliary vector cannot be read (the process is gone).
        InvalidOperationError: ``pid`` is not one of ``target``'s processes.
    """
    read = target.memory_reader(pid)
    try:
        auxv = target.auxv(pid)
    except OSError as error:
        raise TargetAccessError(
            f"cannot read the auxiliary vector of process {pid}: {error.strerror or error}", pid
        ) from error
    if AT_PHDR not in auxv:
        return EMPTY_LIBRARY_LIST
    try:
        _, dynamic = loader.main_executable(read, auxv, "")
        r_debug = loader.r_debug_from_dynamic(read, dynamic)
    except OSError:
        return EMPTY_LIBRARY_LIST
    if not dynamic or not r_debug:  # a static program; the loader has not run yet
        return EMPTY_LIBRARY_LIST
    main_lm, libraries = _namespaces(read, r_debug)
    head = '<library-list-svr4 version="1.0"'
    if main_lm:
        head += f' main-lm="{main_lm:#x}"'
    if not libraries:
        return (head + "/>").encode()
    return (head + ">" + "".join(libraries) + "</library-list-svr4>").encode()


def _namespaces(read: loader.ReadMemory, base: int) -> tuple[int, list[str]]:
    """(the program's own link_map entry or 0, the ``<library>`` elements) of
    every namespace, from the base one's ``r_debug`` at ``base`` on."""
    main_lm = 0
    elements: list[str] = []
    r_debug = base
    seen: set[int] = set()
    while r_debug and r_debug not in seen and len(seen) < _MAX_NAMESPACES:
        seen.add(r_debug)
        try:
            version = int.from_bytes(read(r_debug + _R_VERSION, 4), "little")
            if version < 1:
                break
            entries = loader.link_map(read, r_debug)
            if r_debug == base and entries:
                main_lm = entries[0][2]
                entries = entries[1:]
            elements += [
                _library_element(name, lm, l_addr, loader.read_u64(read, lm + _L_LD), r_debug)
                for l_addr, name, lm in entries
                if name
            ]
            if version < 2:
                break
            r_debug = loader.read_u64(read, r_debug + _R_NEXT)
        except OSError:  # an entry that cannot be read: keep the namespaces read whole
            break
    return main_lm, elements


def _library_element(name: str, lm: int, l_addr: int, l_ld: int, lmid: int) -> str:
    return (
        f'<library name="{_xml_text(name)}" lm="{lm:#x}" l_addr="{l_addr:#x}" '
        f'l_ld="{l_ld:#x}" lmid="{lmid:#x}"/>'
    )


# --------------------------------------------------------------------- osdata

_TYPES = (("processes", "Listing of all processes", "Processes"),)


def osdata(annex: str) -> bytes:
    """The ``qXfer:osdata:read:ANNEX`` object: the types for the empty annex,
    the processes for ``processes``, and, as gdbserver answers any other
    annex, an empty object."""
    if not annex:
        return osdata_types()
    if annex == "processes":
        return osdata_processes()
    return b""


def osdata_types() -> bytes:
    """The ``<osdata type="types">`` document: what ``info os`` can list here."""
    items = "".join(
        f'<item><column name="Type">{kind}</column><column name="Description">{description}</column>'
        f'<column name="Title">{title}</column></item>'
        for kind, description, title in _TYPES
    )
    return f'<osdata type="types">\n{items}</osdata>\n'.encode()


def osdata_processes() -> bytes:
    """The ``<osdata type="processes">`` document of every process in /proc, by
    pid (what ``info os processes`` shows). A process that is gone before its
    command line is read is left out; one whose owner or threads cannot be read
    shows ``?`` as its user, no cores.

    ``command`` is the argument vector joined by blanks (gdbserver leaves the
    trailing NUL as a trailing blank), or ``[comm]`` for a kernel thread;
    ``cores`` the CPUs its threads last ran on, ascending, comma-separated.
    """
    users: dict[int, str] = {}
    items: list[str] = []
    for pid in sorted(int(name) for name in os.listdir("/proc") if name.isdigit()):
        item = _process_item(pid, users)
        if item is not None:
            items.append(item)
    return ('<osdata type="processes">\n' + "".join(items) + "</osdata>\n").encode()


def parse_osdata_processes(document: bytes) -> list[tuple[int, str]]:
    """(pid, command) of each item of a ``<osdata type="processes">`` document
    (ours or gdbserver's), by pid; items without a numeric pid are left out.

    Raises:
        ValueError: the document is not XML.
    """
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as error:
        raise ValueError(f"the process list is not readable: {error}") from None
    found: list[tuple[int, str]] = []
    for item in root.iter("item"):
        columns = {column.get("name"): (column.text or "") for column in item.iter("column")}
        with contextlib.suppress(ValueError):
            found.append((int(columns.get("pid", "")), columns.get("command", "").rstrip()))
    return sorted(found)


def _process_item(pid: int, users: dict[int, str]) -> str | None:
    try:
        arguments = procfs.command_line(pid)
        command = " ".join(arguments) if arguments else f"[{procfs.process_stat(pid).comm}]"
    except (OSError, ValueError, IndexError):  # gone (or its stat cut short) while read
        return None
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        user = "?"
    else:
        if uid not in users:
            try:
                users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                users[uid] = ""  # as gdbserver: an owner without a name shows nothing
        user = users[uid]
    cores = ",".join(str(core) for core in sorted(_cores(pid)))
    return (
        f'<item><column name="pid">{pid}</column><column name="user">{_xml_text(user)}</column>'
        f'<column name="command">{_xml_text(command)}</column><column name="cores">{cores}</column></item>'
    )


def _cores(pid: int) -> set[int]:
    """The processors the threads of ``pid`` last ran on (stat field 39)."""
    found: set[int] = set()
    try:
        tids = procfs.thread_ids(pid)
    except OSError:
        return found
    for tid in tids:
        try:
            # procfs's stat reader (comm may hold ')' and blanks); fields[0] is field 3
            _, fields = procfs._read_stat(f"/proc/{pid}/task/{tid}/stat")
            found.add(int(fields[36]))
        except (OSError, ValueError, IndexError):  # the thread ended meanwhile
            continue
    return found


# ------------------------------------------------------------ threads


def threads(entries: list[tuple[str, int, int]]) -> bytes:
    """``threads``: ``<thread id="ID" core="N" name="COMM"/>`` for each (thread-id
    as the stub writes it, pid, tid), as gdbserver lists them; a thread that ended
    meanwhile is listed by its id alone."""
    lines = ['<?xml version="1.0"?>', "<threads>"]
    for text, pid, tid in entries:
        try:
            name, fields = procfs._read_stat(f"/proc/{pid}/task/{tid}/stat")
            extra = f' core="{int(fields[36])}" name="{_xml_text(name)}"'
        except (OSError, ValueError, IndexError):
            extra = ""
        lines.append(f'<thread id="{text}"{extra}/>')
    lines.append("</threads>")
    return "\n".join(lines).encode("utf-8", "surrogateescape")


# ------------------------------------------------------------ auxv, exec-file


def auxv_bytes(target: Target, pid: int) -> bytes:
    """The ``qXfer:auxv:read`` object: the auxiliary vector as the kernel holds it
    (/proc/PID/auxv for a live process, in its order, duplicates kept), else
    rebuilt from ``target.auxv`` and ended by AT_NULL.

    Raises:
        TargetAccessError: the vector cannot be read (the process is gone).
    """
    try:
        if target.kind == "live":
            return procfs.auxv_bytes(pid)
        entries = target.auxv(pid)
    except OSError as error:
        raise TargetAccessError(
            f"cannot read the auxiliary vector of process {pid}: {error.strerror or error}", pid
        ) from error
    pairs = [AUXV_ENTRY.pack(key, value) for key, value in entries.items() if key != AT_NULL]
    return b"".join(pairs) + AUXV_ENTRY.pack(AT_NULL, 0)


def exec_file(target: Target, pid: int) -> bytes:
    """The ``qXfer:exec-file:read`` object: the path of the program ``pid`` runs,
    as the bytes the kernel names it with.

    Raises:
        TargetAccessError: the path is not known (the process is gone).
    """
    path = target.executable(pid)
    if not path:
        raise TargetAccessError(f"the program of process {pid} is not known", pid)
    return os.fsencode(path)
