"""ELF core files of x86-64 Linux processes, read in layers as pyelftools reads ELF.

The layers, each a function of the one before: the ELF header (``_read_elf_header``),
the program headers (``_read_program_headers``), the note records of every PT_NOTE
segment (``_read_note_records``), the decoded notes (``_NoteDecoder``: threads, process,
signal, auxv, mapped files), and memory (``_LoadIndex`` over the PT_LOAD segments,
``_MappedFiles`` for what the core left out). ``CoreFile.open`` runs them once; only
memory reads happen later.

The core is ``mmap``-ed read-only, so opening a core of many GiB touches only its
headers and notes, and a read is a slice. Memory is found the way gdb finds it: a byte
inside a PT_LOAD's file part comes from the core; a byte the core left out (the kernel
writes ``filesz = 0`` for read-only file mappings such as code, gdb's gcore writes no
PT_LOAD for them at all) comes from the file on disk that NT_FILE says was mapped there.
Those files are opened on first use and read with ``pread`` (never mapped: a file
replaced on disk then gives a read error instead of SIGBUS).

Errors: a file that cannot be shown at all (missing, not ELF, not an x86-64 core, cut
before its program headers, no thread) raises ``DumpFileError`` from ``open`` and nothing
else does. Damage that leaves something to show (a corrupt note, a core cut inside its
memory, a mapped file missing) becomes one line in ``CoreFile.warnings`` saying what is
lost. A byte nobody holds raises ``MemoryAccessError`` naming the first such address.
"""

from __future__ import annotations

import bisect
import mmap
import os
import stat
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import NamedTuple

from lindbg.arch.x86_64 import GENERAL_REGISTERS
from lindbg.errors import DumpFileError, InvalidOperationError, MemoryAccessError

# ------------------------------------------------------------------ record layouts

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_NHDR = struct.Struct("<III")
#: elf_prstatus (x86-64): si_signo, si_code, si_errno, pr_cursig (+2 pad), pr_sigpend,
#: pr_sighold, pr_pid, pr_ppid, pr_pgrp, pr_sid, four timevals, pr_reg, pr_fpvalid (+4 pad).
_PRSTATUS = struct.Struct("<iiiH2xQQiiii64s216si4x")
#: elf_prpsinfo (x86-64): pr_state, pr_sname, pr_zomb, pr_nice (+4 pad), pr_flag, pr_uid,
#: pr_gid, pr_pid, pr_ppid, pr_pgrp, pr_sid, pr_fname[16], pr_psargs[80].
_PRPSINFO = struct.Struct("<BBBb4xQIIiiii16s80s")
#: The head of siginfo_t: si_signo, si_errno, si_code (+4 pad), then the union.
_SIGINFO_HEAD = struct.Struct("<iii4x")
_SIGINFO_KILL = struct.Struct("<iI")  # _kill: si_pid, si_uid (at offset 16)
_REGISTERS = struct.Struct(f"<{len(GENERAL_REGISTERS)}Q")
_U64 = struct.Struct("<Q")
_FILE_ENTRY = struct.Struct("<QQQ")

_SIGINFO_SIZE = 128
_FXSAVE_SIZE = 512

_ELF_MAGIC = b"\x7fELF"
_ELFCLASS32 = 1
_ELFCLASS64 = 2
_ELFDATA2LSB = 1
_ELFDATA2MSB = 2
_ET_CORE = 4
_EM_X86_64 = 62
_PN_XNUM = 0xFFFF
_PT_LOAD = 1
_PT_NOTE = 4

_ELF_TYPES = {0: "NONE", 1: "REL", 2: "EXEC", 3: "DYN", 4: "CORE"}
#: e_machine values named in "another architecture" errors.
_MACHINES = {
    3: "i386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm",
    62: "x86-64", 183: "aarch64", 243: "riscv", 258: "loongarch",
}  # fmt: skip

NT_PRSTATUS = 1
NT_PRFPREG = 2
NT_PRPSINFO = 3
NT_AUXV = 6
NT_SIGINFO = 0x53494749
NT_FILE = 0x46494C45
NT_X86_XSTATE = 0x202

AT_NULL = 0
#: Signals whose kernel-generated siginfo carries a fault address (si_addr).
_FAULT_SIGNALS = frozenset({4, 5, 7, 8, 11})  # SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV

PF_X = 1
PF_W = 2
PF_R = 4


# ------------------------------------------------------------------ public records


@dataclass(frozen=True, slots=True)
class LoadSegment:
    """One PT_LOAD: ``memsz`` bytes of memory at ``vaddr``, of which the first ``filesz``
    are in the core at ``offset`` (``flags``: PF_R=4, PF_W=2, PF_X=1)."""

    vaddr: int
    memsz: int
    offset: int
    filesz: int
    flags: int


@dataclass(frozen=True, slots=True)
class FileMapping:
    """One NT_FILE entry: ``path`` was mapped at [start, end) from byte ``file_offset``."""

    start: int
    end: int
    file_offset: int
    path: str


@dataclass(slots=True)
class CoreThread:
    """One thread of the core (an NT_PRSTATUS and the register notes after it)."""

    tid: int
    #: pr_cursig: the signal being delivered (the kernel writes the fatal one in every
    #: thread's note; gcore writes what each thread had pending).
    signal: int
    #: GENERAL_REGISTERS names (struct user_regs_struct) -> value.
    registers: dict[str, int]
    #: The 216 bytes of pr_reg, as the kernel wrote them.
    raw_registers: bytes
    #: NT_FPREGSET: the 512-byte FXSAVE area, None if the core has none for this thread.
    fpregs: bytes | None = None
    #: NT_X86_XSTATE: the XSAVE area, None if the core has none for this thread.
    xstate: bytes | None = None


@dataclass(frozen=True, slots=True)
class SignalInfo:
    """NT_SIGINFO: the siginfo_t of the signal that killed (or stopped) the process."""

    signo: int
    errno: int
    code: int
    #: si_addr for a kernel-raised SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGTRAP, else 0.
    address: int
    #: si_pid / si_uid of the sender for a signal sent by a process (code <= 0), else 0.
    sender_pid: int
    sender_uid: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """NT_PRPSINFO: what ``ps`` would have shown of the process."""

    state: int
    zombie: int
    nice: int
    flags: int
    uid: int
    gid: int
    pid: int
    ppid: int
    pgrp: int
    sid: int
    #: The executable's name (comm), at most 15 characters.
    fname: str
    #: The start of the command line, arguments separated by spaces (at most 79 characters).
    psargs: str


# ------------------------------------------------------------------ header layers


def _quote(path: str) -> str:
    """``path`` quoted for a one-line message (repr when it holds control characters)."""
    return f"'{path}'" if path.isprintable() else repr(path)


class _ElfHeader(NamedTuple):
    phoff: int
    phnum: int
    shoff: int


class _ProgramHeader(NamedTuple):
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


def _read_elf_header(data: mmap.mmap, size: int, label: str) -> _ElfHeader:
    """The header fields the next layer needs, or DumpFileError saying why this file is
    not an x86-64 core (checked most telling first: not ELF, not a core, wrong machine)."""
    if size < 4 or data[:4] != _ELF_MAGIC:
        raise DumpFileError(f"{label} is not an ELF file")
    if size < 20:
        raise DumpFileError(f"{label} is truncated: {size} bytes, less than an ELF header")
    elf_class, encoding = data[4], data[5]
    if encoding == _ELFDATA2MSB:
        raise DumpFileError(f"{label} is a big-endian ELF file; lindbg reads x86-64 cores")
    if elf_class not in (_ELFCLASS32, _ELFCLASS64) or encoding != _ELFDATA2LSB:
        raise DumpFileError(f"{label} is not an ELF file (invalid class {elf_class} or encoding {encoding})")
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    if e_type != _ET_CORE:
        raise DumpFileError(f"{label} is not a core file (ELF type {_ELF_TYPES.get(e_type, e_type)})")
    if elf_class != _ELFCLASS64 or e_machine != _EM_X86_64:
        bits = "32-bit, " if elf_class == _ELFCLASS32 else ""
        name = _MACHINES.get(e_machine)
        machine = f"machine {e_machine}, {name}" if name else f"machine {e_machine}"
        raise DumpFileError(
            f"{label} is a core of another architecture ({bits}{machine}); lindbg reads x86-64 cores"
        )
    if size < _EHDR.size:
        raise DumpFileError(f"{label} is truncated: {size} bytes, less than an ELF header")
    fields = _EHDR.unpack_from(data, 0)
    phoff, shoff, phentsize, phnum = fields[5], fields[6], fields[9], fields[10]
    if phnum and phentsize != _PHDR.size:
        raise DumpFileError(f"{label} is not a valid core: program headers of {phentsize} bytes, not 56")
    if phnum == _PN_XNUM:
        phnum = _extended_phnum(data, size, shoff, label)
    return _ElfHeader(phoff, phnum, shoff)


def _extended_phnum(data: mmap.mmap, size: int, shoff: int, label: str) -> int:
    """The program header count of a core with 65535 or more (PN_XNUM): section header 0's
    sh_info, which the kernel writes for processes with that many mappings."""
    if shoff + _SHDR.size > size:
        raise DumpFileError(
            f"{label} is truncated: section header 0 (PN_XNUM) at {shoff:#x} is beyond the end ({size:#x})"
        )
    return int(_SHDR.unpack_from(data, shoff)[7])


def _read_program_headers(data: mmap.mmap, size: int, header: _ElfHeader, label: str) -> list[_ProgramHeader]:
    """Every program header; DumpFileError if the table runs past the end of the file."""
    end = header.phoff + header.phnum * _PHDR.size
    if end > size:
        raise DumpFileError(
            f"{label} is truncated: its {header.phnum} program headers end at file offset {end:#x}, "
            f"the file has {size:#x} bytes"
        )
    return [
        _ProgramHeader(kind, flags, offset, vaddr, filesz, memsz)
        for kind, flags, offset, vaddr, _paddr, filesz, memsz, _align in _PHDR.iter_unpack(
            data[header.phoff : end]
        )
    ]


# ------------------------------------------------------------------ note records


class _Note(NamedTuple):
    name: str
    type: int
    #: File offset of the record (for messages).
    offset: int
    desc: bytes


def _align4(value: int) -> int:
    return (value + 3) & ~3


def _read_note_records(data: mmap.mmap, start: int, end: int) -> tuple[list[_Note], int | None]:
    """The records of one note segment [start, end) of the file, and the offset of the
    record that runs past the segment (None if the segment parsed to its end).

    A desc can never be larger than its segment, so hostile sizes cost nothing; an
    all-zero header (which no writer emits) ends the segment, so a zero-filled region
    is not walked twelve bytes at a time.
    """
    notes: list[_Note] = []
    position = start
    while position + _NHDR.size <= end:
        namesz, descsz, kind = _NHDR.unpack_from(data, position)
        if namesz == descsz == kind == 0:
            break
        name_start = position + _NHDR.size
        desc_start = name_start + _align4(namesz)
        desc_end = desc_start + descsz
        if desc_end > end:
            return notes, position
        name = data[name_start : name_start + namesz].split(b"\0", 1)[0].decode("ascii", "replace")
        notes.append(_Note(name, kind, position, data[desc_start:desc_end]))
        position = _align4(desc_end)
    return notes, None


def _read_notes(
    data: mmap.mmap, size: int, headers: list[_ProgramHeader], warnings: list[str]
) -> list[_Note]:
    """The records of every PT_NOTE segment in file order, with a warning for each
    segment cut by the end of the file or corrupt inside."""
    notes: list[_Note] = []
    for header in headers:
        if header.type != _PT_NOTE:
            continue
        start, end = header.offset, header.offset + header.filesz
        if start >= size:
            warnings.append(
                f"core is truncated: note segment at file offset {start:#x} is beyond the end ({size:#x})"
            )
            continue
        if end > size:
            warnings.append(
                f"core is truncated: note segment at file offset {start:#x} is cut off at {size:#x}: "
                "notes after that are lost"
            )
            end = size
        records, damaged_at = _read_note_records(data, start, end)
        notes.extend(records)
        if damaged_at is not None and end == header.offset + header.filesz:
            warnings.append(f"note segment corrupt at file offset {damaged_at:#x}: {len(records)} notes read")
    return notes


# ------------------------------------------------------------------ decoded notes


def _c_string(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _decode_prstatus(desc: bytes) -> CoreThread:
    fields = _PRSTATUS.unpack(desc)
    cursig, pid, raw_registers = fields[3], fields[6], fields[11]
    registers = dict(zip(GENERAL_REGISTERS, _REGISTERS.unpack(raw_registers), strict=True))
    return CoreThread(tid=pid, signal=cursig, registers=registers, raw_registers=raw_registers)


def _decode_prpsinfo(desc: bytes) -> ProcessInfo:
    state, _sname, zombie, nice, flags, uid, gid, pid, ppid, pgrp, sid, fname, psargs = _PRPSINFO.unpack(desc)
    return ProcessInfo(
        state=state, zombie=zombie, nice=nice, flags=flags, uid=uid, gid=gid,
        pid=pid, ppid=ppid, pgrp=pgrp, sid=sid,
        fname=_c_string(fname), psargs=_c_string(psargs).rstrip(" "),
    )  # fmt: skip


def _decode_siginfo(desc: bytes) -> SignalInfo:
    signo, errno, code = _SIGINFO_HEAD.unpack_from(desc)
    address = sender_pid = sender_uid = 0
    if code <= 0:  # SI_USER, SI_QUEUE, SI_TKILL ...: sent by a process
        sender_pid, sender_uid = _SIGINFO_KILL.unpack_from(desc, _SIGINFO_HEAD.size)
    elif signo in _FAULT_SIGNALS:
        address = _U64.unpack_from(desc, _SIGINFO_HEAD.size)[0]
    return SignalInfo(signo, errno, code, address, sender_pid, sender_uid, desc)


def _decode_auxv(desc: bytes) -> dict[int, int]:
    auxv: dict[int, int] = {}
    for key, value in struct.iter_unpack("<QQ", desc[: len(desc) - len(desc) % 16]):
        if key == AT_NULL:
            break
        auxv.setdefault(key, value)
    return auxv


def _decode_file_note(desc: bytes) -> list[FileMapping]:
    """NT_FILE: count, page_size, count (start, end, page offset) triples, count paths.
    ValueError (with what is wrong) when the count does not fit the desc."""
    if len(desc) < 16:
        raise ValueError(f"{len(desc)} bytes, less than its header")
    count, page_size = struct.unpack_from("<QQ", desc)
    table_end = 16 + count * _FILE_ENTRY.size
    if table_end > len(desc):
        raise ValueError(f"{count} entries do not fit in {len(desc)} bytes")
    names = desc[table_end:].split(b"\0")
    if len(names) <= count:
        raise ValueError(f"{count} entries but {len(names) - 1} paths")
    mappings = [
        FileMapping(start, end, page_offset * page_size, os.fsdecode(name))
        for (start, end, page_offset), name in zip(
            _FILE_ENTRY.iter_unpack(desc[16:table_end]), names[:count], strict=True
        )
        if start < end
    ]
    mappings.sort(key=lambda mapping: mapping.start)
    return mappings


@dataclass
class _NoteContents:
    threads: list[CoreThread] = field(default_factory=list)
    process: ProcessInfo | None = None
    siginfo: SignalInfo | None = None
    auxv: dict[int, int] = field(default_factory=dict)
    auxv_raw: bytes = b""
    mappings: list[FileMapping] = field(default_factory=list)
    #: How many NT_PRSTATUS notes were seen, readable or not.
    prstatus_seen: int = 0


class _NoteDecoder:
    """Turns note records into ``_NoteContents``, one method per note type.

    FPREGSET and XSTATE notes belong to the most recent PRSTATUS; after a PRSTATUS that
    was skipped they belong to nobody (and are dropped) rather than to the thread before.
    """

    #: (name, type) -> (decoder method name, exact desc size or None for "checked inside").
    _HANDLERS: dict[tuple[str, int], tuple[str, int | None]] = {
        ("CORE", NT_PRSTATUS): ("_prstatus", _PRSTATUS.size),
        ("CORE", NT_PRFPREG): ("_fpregset", _FXSAVE_SIZE),
        ("CORE", NT_PRPSINFO): ("_prpsinfo", _PRPSINFO.size),
        ("CORE", NT_AUXV): ("_auxv", None),
        ("CORE", NT_SIGINFO): ("_siginfo", _SIGINFO_SIZE),
        ("CORE", NT_FILE): ("_file", None),
        ("LINUX", NT_X86_XSTATE): ("_xstate", None),
    }
    _NAMES = {
        NT_PRSTATUS: "NT_PRSTATUS", NT_PRFPREG: "NT_FPREGSET", NT_PRPSINFO: "NT_PRPSINFO",
        NT_AUXV: "NT_AUXV", NT_SIGINFO: "NT_SIGINFO", NT_FILE: "NT_FILE", NT_X86_XSTATE: "NT_X86_XSTATE",
    }  # fmt: skip

    def __init__(self, warnings: list[str]) -> None:
        self.contents = _NoteContents()
        self._warnings = warnings
        self._current: CoreThread | None = None

    def decode(self, notes: list[_Note]) -> _NoteContents:
        for note in notes:
            handler = self._HANDLERS.get((note.name, note.type))
            if handler is None:
                continue  # another writer's note (GDB's tdesc, LINUX 0x205 ...): not ours
            method, size = handler
            if size is not None and len(note.desc) != size:
                self._skip(note, f"{len(note.desc)} bytes instead of {size}")
                continue
            getattr(self, method)(note)
        return self.contents

    def _skip(self, note: _Note, why: str) -> None:
        if note.type == NT_PRSTATUS:
            self.contents.prstatus_seen += 1
            self._current = None
            cost = "that thread is left out"
        elif note.type in (NT_PRFPREG, NT_X86_XSTATE):
            cost = "that thread's floating-point registers are unknown"
        else:
            cost = "it is ignored"
        self._warnings.append(
            f"{self._NAMES[note.type]} note at file offset {note.offset:#x} has {why}: {cost}"
        )

    def _prstatus(self, note: _Note) -> None:
        self.contents.prstatus_seen += 1
        self._current = _decode_prstatus(note.desc)
        self.contents.threads.append(self._current)

    def _fpregset(self, note: _Note) -> None:
        if self._current is not None:
            self._current.fpregs = note.desc

    def _xstate(self, note: _Note) -> None:
        if len(note.desc) < _FXSAVE_SIZE:
            self._skip(note, f"{len(note.desc)} bytes, less than an XSAVE area ({_FXSAVE_SIZE})")
        elif self._current is not None:
            self._current.xstate = note.desc

    def _prpsinfo(self, note: _Note) -> None:
        if self.contents.process is None:
            self.contents.process = _decode_prpsinfo(note.desc)

    def _siginfo(self, note: _Note) -> None:
        if self.contents.siginfo is None:
            self.contents.siginfo = _decode_siginfo(note.desc)

    def _auxv(self, note: _Note) -> None:
        if len(note.desc) % 16:
            self._skip(note, f"{len(note.desc)} bytes, not a whole number of (type, value) pairs")
        elif not self.contents.auxv_raw:
            self.contents.auxv_raw = note.desc
            self.contents.auxv = _decode_auxv(note.desc)

    def _file(self, note: _Note) -> None:
        try:
            mappings = _decode_file_note(note.desc)
        except ValueError as error:
            self._warnings.append(
                f"NT_FILE note at file offset {note.offset:#x} is damaged ({error}): "
                "mapped files are unknown, so memory the core left out cannot be read"
            )
            return
        if not self.contents.mappings:
            self.contents.mappings = mappings


# ------------------------------------------------------------------ memory


class _Range(NamedTuple):
    """One PT_LOAD as the reader indexes it: [start, end) of memory, of which
    [start, file_end) is in the core and [start, held_end) is actually in the file."""

    start: int
    end: int
    file_end: int
    held_end: int
    offset: int


class _LoadIndex:
    """The PT_LOAD segments, looked up by bisect over their start addresses."""

    def __init__(self, segments: Sequence[LoadSegment], file_size: int) -> None:
        self.ranges: list[_Range] = []
        for segment in segments:
            if segment.memsz <= 0:
                continue
            file_part = min(segment.filesz, segment.memsz)
            in_file = max(0, min(file_part, file_size - segment.offset))
            self.ranges.append(
                _Range(
                    segment.vaddr,
                    segment.vaddr + segment.memsz,
                    segment.vaddr + file_part,
                    segment.vaddr + in_file,
                    segment.offset,
                )
            )
        self._starts = [entry.start for entry in self.ranges]

    def containing(self, address: int) -> _Range | None:
        index = bisect.bisect_right(self._starts, address) - 1
        if index >= 0 and address < self.ranges[index].end:
            return self.ranges[index]
        return None

    def next_start(self, address: int) -> int | None:
        """The start of the first segment above ``address`` (None if there is none)."""
        index = bisect.bisect_right(self._starts, address)
        return self._starts[index] if index < len(self._starts) else None

    def holds(self, start: int, end: int) -> bool:
        """Whether every byte of [start, end) is in the core's file."""
        address = start
        while address < end:
            entry = self.containing(address)
            if entry is None or entry.held_end <= address:
                return False
            address = entry.held_end
        return True


class _MappedFiles:
    """The files NT_FILE names, found on disk once at open and opened on first read.

    A path is looked for where it was recorded, then by its basename in each image
    directory (the core may come from another machine). Only regular files count:
    a device the process had mapped is never opened.
    """

    def __init__(self, mappings: list[FileMapping], image_dirs: Sequence[str], warnings: list[str]) -> None:
        self.mappings = mappings
        self._starts = [mapping.start for mapping in mappings]
        self._image_dirs = tuple(image_dirs)
        self._warnings = warnings
        self._located: dict[str, str | None] = {}
        self._fds: dict[str, int | None] = {}

    def mapping_at(self, address: int) -> FileMapping | None:
        index = bisect.bisect_right(self._starts, address) - 1
        if index >= 0 and address < self.mappings[index].end:
            return self.mappings[index]
        return None

    def locate(self, path: str) -> str | None:
        """Where ``path`` is on this machine (cached), None if nowhere."""
        if path not in self._located:
            self._located[path] = self._search(path)
        return self._located[path]

    def _search(self, path: str) -> str | None:
        if os.path.isfile(path):
            return path
        base = os.path.basename(path.removesuffix(" (deleted)"))
        for directory in self._image_dirs:
            candidate = os.path.join(directory, base)
            if base and os.path.isfile(candidate):
                return candidate
        return None

    def warn_missing(self, memory: _LoadIndex) -> None:
        """One warning per mapped file that is not on disk while some of its pages are
        not in the core either (a file whose pages the core holds costs nothing)."""
        warned: set[str] = set()
        for mapping in self.mappings:
            if mapping.path in warned or memory.holds(mapping.start, mapping.end):
                continue
            if self.locate(mapping.path) is None:
                warned.add(mapping.path)
                self._warnings.append(
                    f"mapped file {mapping.path} not found: its read-only pages are not in the core"
                )

    def read(self, address: int, target: memoryview) -> int:
        """Fill the start of ``target`` from the file mapped at ``address``; how many
        bytes were read (0 when no file holds the byte at ``address``)."""
        mapping = self.mapping_at(address)
        if mapping is None:
            return 0
        fd = self._fd(mapping.path)
        if fd is None:
            return 0
        count = min(len(target), mapping.end - address)
        try:
            chunk = os.pread(fd, count, mapping.file_offset + (address - mapping.start))
        except (OSError, OverflowError, ValueError):
            return 0
        target[: len(chunk)] = chunk
        return len(chunk)

    def _fd(self, path: str) -> int | None:
        if path in self._fds:
            return self._fds[path]
        fd: int | None = None
        located = self.locate(path)
        if located is not None:
            try:
                fd = os.open(located, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            except OSError as error:
                self._warnings.append(f"mapped file {located} cannot be opened: {error.strerror or error}")
        self._fds[path] = fd
        return fd

    def close(self) -> None:
        for fd in self._fds.values():
            if fd is not None:
                os.close(fd)
        self._fds.clear()


# ------------------------------------------------------------------ the core


def _open_core(path: str, label: str) -> tuple[mmap.mmap, int]:
    """The core mapped read-only, and its size; DumpFileError if it cannot be."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as error:
        raise DumpFileError(f"cannot open core {label}: {error.strerror or error}") from error
    try:
        mode = os.fstat(fd)
        if stat.S_ISDIR(mode.st_mode):
            raise DumpFileError(f"cannot open core {label}: Is a directory")
        if not stat.S_ISREG(mode.st_mode):
            raise DumpFileError(f"cannot open core {label}: not a regular file")
        if mode.st_size == 0:
            raise DumpFileError(f"{label} is empty: not a core file")
        return mmap.mmap(fd, mode.st_size, access=mmap.ACCESS_READ), mode.st_size
    except OSError as error:
        raise DumpFileError(f"cannot open core {label}: {error.strerror or error}") from error
    finally:
        os.close(fd)


def _load_segments(headers: list[_ProgramHeader]) -> list[LoadSegment]:
    segments = [
        LoadSegment(header.vaddr, header.memsz, header.offset, header.filesz, header.flags)
        for header in headers
        if header.type == _PT_LOAD
    ]
    segments.sort(key=lambda segment: segment.vaddr)
    return segments


def _truncation_warning(segments: list[LoadSegment], size: int) -> str | None:
    cut = sum(
        1
        for segment in segments
        if min(segment.filesz, segment.memsz) > 0
        and segment.offset + min(segment.filesz, segment.memsz) > size
    )
    if not cut:
        return None
    return f"core is truncated: memory of {cut} segments is cut off at file offset {size:#x}"


class CoreFile:
    """An opened ELF core: its threads, process facts, mapped files and memory.

    Open with ``CoreFile.open(path)``; close (or use as a context manager) to unmap it.
    Everything but memory is decoded at open; memory is read on demand.
    """

    path: str
    threads: list[CoreThread]
    process: ProcessInfo | None
    siginfo: SignalInfo | None
    auxv: dict[int, int]
    auxv_raw: bytes
    mappings: list[FileMapping]
    segments: list[LoadSegment]
    warnings: list[str]

    def __init__(
        self,
        path: str,
        data: mmap.mmap,
        segments: list[LoadSegment],
        contents: _NoteContents,
        image_dirs: Sequence[str],
        warnings: list[str],
    ) -> None:
        """Use ``CoreFile.open``: this only assembles what it parsed."""
        self.path = path
        self.threads = contents.threads
        self.process = contents.process
        self.siginfo = contents.siginfo
        self.auxv = contents.auxv
        self.auxv_raw = contents.auxv_raw
        self.mappings = contents.mappings
        self.segments = segments
        self.warnings = warnings
        self._data: mmap.mmap | None = data
        self._memory = _LoadIndex(segments, len(data))
        self._files = _MappedFiles(contents.mappings, image_dirs, warnings)
        self._files.warn_missing(self._memory)

    @classmethod
    def open(cls, path: str, image_dirs: Sequence[str] = ()) -> CoreFile:
        """Open the core at ``path``.

        Args:
            path: the core file (from the kernel, gdb's gcore or lindbg's ``.dump``).
            image_dirs: directories to look in, by basename, for mapped files that are
                not at the path the core recorded (a core from another machine).

        Returns:
            The opened core; ``warnings`` lists what is damaged or missing and what
            that costs.

        Raises:
            DumpFileError: the file is missing or unreadable, or is not an x86-64 Linux
                core with at least one thread. Nothing else (anything else is a bug).
        """
        label = _quote(path)
        data, size = _open_core(path, label)
        try:
            header = _read_elf_header(data, size, label)
            headers = _read_program_headers(data, size, header, label)
            warnings: list[str] = []
            contents = _NoteDecoder(warnings).decode(_read_notes(data, size, headers, warnings))
            if not contents.threads:
                raise DumpFileError(_no_thread_message(label, contents, headers))
            segments = _load_segments(headers)
            truncation = _truncation_warning(segments, size)
            if truncation:
                warnings.append(truncation)
            return cls(path, data, segments, contents, image_dirs, warnings)
        except BaseException:
            data.close()
            raise

    # ---------------------------------------------------------- facts

    @property
    def pid(self) -> int:
        """The process id: NT_PRPSINFO's, else the first thread's id."""
        return self.process.pid if self.process is not None else self.threads[0].tid

    def mapping_at(self, address: int) -> FileMapping | None:
        """The NT_FILE mapping that covers ``address``, None if no file was mapped there."""
        return self._files.mapping_at(address)

    def locate_file(self, path: str) -> str | None:
        """Where a mapped file recorded as ``path`` is found on this machine (at its
        path, else by basename in the image directories), None if nowhere."""
        return self._files.locate(path)

    # ---------------------------------------------------------- memory

    def read(self, address: int, size: int) -> bytes:
        """``size`` bytes of the process's memory at ``address``.

        Raises:
            MemoryAccessError: some byte is neither in the core nor in a mapped file on
                disk; ``address`` is the first such byte.
            InvalidOperationError: the core was closed.
            ValueError: ``size`` is negative (a caller's bug).
        """
        if size < 0:
            raise ValueError(f"read of a negative size ({size})")
        data = self._require_open()
        entry = self._memory.containing(address)
        if entry is not None and address + size <= entry.held_end:  # the usual case: one slice
            offset = entry.offset + (address - entry.start)
            return data[offset : offset + size]
        buffer = bytearray(size)
        self.read_into(address, buffer)
        return bytes(buffer)

    def read_into(self, address: int, buffer: bytearray | memoryview) -> None:
        """Fill ``buffer`` with the memory at ``address`` (as ``read``, into the caller's
        buffer: bytes are copied once, straight from the core's pages).

        Raises:
            MemoryAccessError: as ``read``; the buffer's contents are then undefined.
        """
        data = self._require_open()
        with memoryview(buffer) as view, view.cast("B") as target:
            position = 0
            while position < len(target):
                count = self._read_piece(data, address + position, target[position:])
                if count == 0:
                    raise self._fault(address + position)
                position += count

    def _read_piece(self, data: mmap.mmap, address: int, target: memoryview) -> int:
        """Fill the start of ``target`` from the one source that holds ``address`` (the
        core, else a mapped file); how many bytes, 0 if nothing holds that byte."""
        entry = self._memory.containing(address)
        if entry is not None and address < entry.held_end:
            count = min(len(target), entry.held_end - address)
            offset = entry.offset + (address - entry.start)
            target[:count] = data[offset : offset + count]
            return count
        if entry is not None and address < entry.file_end:
            return 0  # the core should hold it but was cut off before it
        limit = entry.end if entry is not None else self._memory.next_start(address)
        if limit is not None:
            target = target[: limit - address]
        return self._files.read(address, target)

    def _fault(self, address: int) -> MemoryAccessError:
        pid = self.pid
        return MemoryAccessError(f"memory access error at {address:#x} (dump of process {pid})", address, pid)

    def _require_open(self) -> mmap.mmap:
        if self._data is None:
            raise InvalidOperationError(f"the core file {_quote(self.path)} is closed")
        return self._data

    # ---------------------------------------------------------- lifetime

    def close(self) -> None:
        """Unmap the core and close the mapped files; reads then raise. Idempotent."""
        if self._data is not None:
            self._data.close()
            self._data = None
        self._files.close()

    def __enter__(self) -> CoreFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<CoreFile {self.path!r} pid={self.pid} threads={len(self.threads)}>"


def _no_thread_message(label: str, contents: _NoteContents, headers: list[_ProgramHeader]) -> str:
    if not any(header.type == _PT_NOTE for header in headers):
        return f"{label} has no threads (no PT_NOTE segment)"
    if contents.prstatus_seen:
        return f"{label} has no threads ({contents.prstatus_seen} NT_PRSTATUS notes, all damaged)"
    return f"{label} has no threads (no NT_PRSTATUS note)"
