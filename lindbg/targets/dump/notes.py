"""The notes of a core file, decoded: threads, process, signal, auxv and mapped files.

``NoteDecoder`` takes the records ``elfcore.read_notes`` found and decodes each note
type it knows (one method per type) into a ``NoteContents``; a note of the wrong size
or damaged inside becomes one warning saying what is lost, and a note of another
writer (GDB's tdesc, LINUX 0x205 ...) is passed over. The layouts are those of
``lindbg.formats.elfdefs`` (x86-64 Linux: <linux/elfcore.h>).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from lindbg.arch.x86_64 import GENERAL_REGISTERS
from lindbg.formats.elfdefs import (
    AT_NULL,
    AUXV_ENTRY,
    FILE_ENTRY,
    FILE_NOTE_HEADER,
    NT_AUXV,
    NT_FILE,
    NT_PRFPREG,
    NT_PRPSINFO,
    NT_PRSTATUS,
    NT_SIGINFO,
    NT_X86_XSTATE,
    PRPSINFO,
    PRSTATUS,
    SIGINFO_SIZE,
)
from lindbg.targets.dump.elfcore import Note

#: The head of siginfo_t: si_signo, si_errno, si_code (+4 pad), then the union.
_SIGINFO_HEAD = struct.Struct("<iii4x")
_SIGINFO_KILL = struct.Struct("<iI")  # _kill: si_pid, si_uid (at offset 16)
_REGISTERS = struct.Struct(f"<{len(GENERAL_REGISTERS)}Q")
_U64 = struct.Struct("<Q")

_FXSAVE_SIZE = 512

#: Signals whose kernel-generated siginfo carries a fault address (si_addr).
_FAULT_SIGNALS = frozenset({4, 5, 7, 8, 11})  # SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV


# ------------------------------------------------------------------ public records


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


# ------------------------------------------------------------------ one note each


def _c_string(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _decode_prstatus(desc: bytes) -> CoreThread:
    fields = PRSTATUS.unpack(desc)
    cursig, pid, raw_registers = fields[3], fields[6], fields[11]
    registers = dict(zip(GENERAL_REGISTERS, _REGISTERS.unpack(raw_registers), strict=True))
    return CoreThread(tid=pid, signal=cursig, registers=registers, raw_registers=raw_registers)


def _decode_prpsinfo(desc: bytes) -> ProcessInfo:
    state, _sname, zombie, nice, flags, uid, gid, pid, ppid, pgrp, sid, fname, psargs = PRPSINFO.unpack(desc)
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
    for key, value in AUXV_ENTRY.iter_unpack(desc[: len(desc) - len(desc) % AUXV_ENTRY.size]):
        if key == AT_NULL:
            break
        auxv.setdefault(key, value)
    return auxv


def _decode_file_note(desc: bytes) -> list[FileMapping]:
    """NT_FILE: count, page_size, count (start, end, page offset) triples, count paths.
    ValueError (with what is wrong) when the count does not fit the desc."""
    if len(desc) < FILE_NOTE_HEADER.size:
        raise ValueError(f"{len(desc)} bytes, less than its header")
    count, page_size = FILE_NOTE_HEADER.unpack_from(desc)
    table_end = FILE_NOTE_HEADER.size + count * FILE_ENTRY.size
    if table_end > len(desc):
        raise ValueError(f"{count} entries do not fit in {len(desc)} bytes")
    names = desc[table_end:].split(b"\0")
    if len(names) <= count:
        raise ValueError(f"{count} entries but {len(names) - 1} paths")
    mappings = [
        FileMapping(start, end, page_offset * page_size, os.fsdecode(name))
        for (start, end, page_offset), name in zip(
            FILE_ENTRY.iter_unpack(desc[FILE_NOTE_HEADER.size : table_end]), names[:count], strict=True
        )
        if start < end
    ]
    mappings.sort(key=lambda mapping: mapping.start)
    return mappings


# ------------------------------------------------------------------ the decoder


@dataclass
class NoteContents:
    """What the notes of one core say."""

    threads: list[CoreThread] = field(default_factory=list)
    process: ProcessInfo | None = None
    siginfo: SignalInfo | None = None
    auxv: dict[int, int] = field(default_factory=dict)
    auxv_raw: bytes = b""
    mappings: list[FileMapping] = field(default_factory=list)
    #: How many NT_PRSTATUS notes were seen, readable or not.
    prstatus_seen: int = 0


class NoteDecoder:
    """Turns note records into ``NoteContents``, one method per note type.

    FPREGSET and XSTATE notes belong to the most recent PRSTATUS; after a PRSTATUS that
    was skipped they belong to nobody (and are dropped) rather than to the thread before.
    """

    #: (name, type) -> (decoder method name, exact desc size or None for "checked inside").
    _HANDLERS: dict[tuple[str, int], tuple[str, int | None]] = {
        ("CORE", NT_PRSTATUS): ("_prstatus", PRSTATUS.size),
        ("CORE", NT_PRFPREG): ("_fpregset", _FXSAVE_SIZE),
        ("CORE", NT_PRPSINFO): ("_prpsinfo", PRPSINFO.size),
        ("CORE", NT_AUXV): ("_auxv", None),
        ("CORE", NT_SIGINFO): ("_siginfo", SIGINFO_SIZE),
        ("CORE", NT_FILE): ("_file", None),
        ("LINUX", NT_X86_XSTATE): ("_xstate", None),
    }
    _NAMES = {
        NT_PRSTATUS: "NT_PRSTATUS", NT_PRFPREG: "NT_FPREGSET", NT_PRPSINFO: "NT_PRPSINFO",
        NT_AUXV: "NT_AUXV", NT_SIGINFO: "NT_SIGINFO", NT_FILE: "NT_FILE", NT_X86_XSTATE: "NT_X86_XSTATE",
    }  # fmt: skip

    def __init__(self, warnings: list[str]) -> None:
        self.contents = NoteContents()
        self._warnings = warnings
        self._current: CoreThread | None = None

    def decode(self, notes: list[Note]) -> NoteContents:
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

    def _skip(self, note: Note, why: str) -> None:
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

    def _prstatus(self, note: Note) -> None:
        self.contents.prstatus_seen += 1
        self._current = _decode_prstatus(note.desc)
        self.contents.threads.append(self._current)

    def _fpregset(self, note: Note) -> None:
        if self._current is not None:
            self._current.fpregs = note.desc

    def _xstate(self, note: Note) -> None:
        if len(note.desc) < _FXSAVE_SIZE:
            self._skip(note, f"{len(note.desc)} bytes, less than an XSAVE area ({_FXSAVE_SIZE})")
        elif self._current is not None:
            self._current.xstate = note.desc

    def _prpsinfo(self, note: Note) -> None:
        if self.contents.process is None:
            self.contents.process = _decode_prpsinfo(note.desc)

    def _siginfo(self, note: Note) -> None:
        if self.contents.siginfo is None:
            self.contents.siginfo = _decode_siginfo(note.desc)

    def _auxv(self, note: Note) -> None:
        if len(note.desc) % AUXV_ENTRY.size:
            self._skip(note, f"{len(note.desc)} bytes, not a whole number of (type, value) pairs")
        elif not self.contents.auxv_raw:
            self.contents.auxv_raw = note.desc
            self.contents.auxv = _decode_auxv(note.desc)

    def _file(self, note: Note) -> None:
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
