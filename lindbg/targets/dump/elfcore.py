"""The ELF layers of a core file: the file itself, its headers and its note records.

Each layer is a function of the one before and reads only what it is asked for:
``open_core`` maps the file read-only; ``read_elf_header`` checks that it is an x86-64
core and returns what the next layer needs; ``read_program_headers`` reads the program
header table; ``read_notes`` walks the records of every PT_NOTE segment (one segment
at a time, ``read_note_records``). What the notes mean is ``notes.py``'s business.

Errors: a file that cannot be a core at all (missing, not ELF, not an x86-64 core, cut
before its program headers) raises ``DumpFileError``; a damaged note segment becomes a
warning and the records read before the damage.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from typing import NamedTuple

from lindbg.errors import DumpFileError
from lindbg.formats.elfdefs import (
    EHDR,
    ELF_MAGIC,
    ELFCLASS32,
    ELFCLASS64,
    ELFDATA2LSB,
    ELFDATA2MSB,
    EM_X86_64,
    ET_CORE,
    ET_NAMES,
    NHDR,
    PHDR,
    PN_XNUM,
    PT_NOTE,
    SHDR,
)

#: e_machine values named in "another architecture" errors.
_MACHINES = {
    3: "i386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm",
    62: "x86-64", 183: "aarch64", 243: "riscv", 258: "loongarch",
}  # fmt: skip


def quote(path: str) -> str:
    """``path`` quoted for a one-line message (repr when it holds control characters)."""
    return f"'{path}'" if path.isprintable() else repr(path)


def open_core(path: str, label: str) -> tuple[mmap.mmap, int]:
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


# ------------------------------------------------------------------ headers


class ElfHeader(NamedTuple):
    phoff: int
    phnum: int
    shoff: int


class ProgramHeader(NamedTuple):
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


def read_elf_header(data: mmap.mmap, size: int, label: str) -> ElfHeader:
    """The header fields the next layer needs, or DumpFileError saying why this file is
    not an x86-64 core (checked most telling first: not ELF, not a core, wrong machine)."""
    if size < 4 or data[:4] != ELF_MAGIC:
        raise DumpFileError(f"{label} is not an ELF file")
    if size < 20:
        raise DumpFileError(f"{label} is truncated: {size} bytes, less than an ELF header")
    elf_class, encoding = data[4], data[5]
    if encoding == ELFDATA2MSB:
        raise DumpFileError(f"{label} is a big-endian ELF file; lindbg reads x86-64 cores")
    if elf_class not in (ELFCLASS32, ELFCLASS64) or encoding != ELFDATA2LSB:
        raise DumpFileError(f"{label} is not an ELF file (invalid class {elf_class} or encoding {encoding})")
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    if e_type != ET_CORE:
        raise DumpFileError(f"{label} is not a core file (ELF type {ET_NAMES.get(e_type, e_type)})")
    if elf_class != ELFCLASS64 or e_machine != EM_X86_64:
        bits = "32-bit, " if elf_class == ELFCLASS32 else ""
        name = _MACHINES.get(e_machine)
        machine = f"machine {e_machine}, {name}" if name else f"machine {e_machine}"
        raise DumpFileError(
            f"{label} is a core of another architecture ({bits}{machine}); lindbg reads x86-64 cores"
        )
    if size < EHDR.size:
        raise DumpFileError(f"{label} is truncated: {size} bytes, less than an ELF header")
    fields = EHDR.unpack_from(data, 0)
    phoff, shoff, phentsize, phnum = fields[5], fields[6], fields[9], fields[10]
    if phnum and phentsize != PHDR.size:
        raise DumpFileError(f"{label} is not a valid core: program headers of {phentsize} bytes, not 56")
    if phnum == PN_XNUM:
        phnum = _extended_phnum(data, size, shoff, label)
    return ElfHeader(phoff, phnum, shoff)


def _extended_phnum(data: mmap.mmap, size: int, shoff: int, label: str) -> int:
    """The program header count of a core with 65535 or more (PN_XNUM): section header 0's
    sh_info, which the kernel writes for processes with that many mappings."""
    if shoff + SHDR.size > size:
        raise DumpFileError(
            f"{label} is truncated: section header 0 (PN_XNUM) at {shoff:#x} is beyond the end ({size:#x})"
        )
    return int(SHDR.unpack_from(data, shoff)[7])


def read_program_headers(data: mmap.mmap, size: int, header: ElfHeader, label: str) -> list[ProgramHeader]:
    """Every program header; DumpFileError if the table runs past the end of the file."""
    end = header.phoff + header.phnum * PHDR.size
    if end > size:
        raise DumpFileError(
            f"{label} is truncated: its {header.phnum} program headers end at file offset {end:#x}, "
            f"the file has {size:#x} bytes"
        )
    return [
        ProgramHeader(kind, flags, offset, vaddr, filesz, memsz)
        for kind, flags, offset, vaddr, _paddr, filesz, memsz, _align in PHDR.iter_unpack(
            data[header.phoff : end]
        )
    ]


# ------------------------------------------------------------------ note records


class Note(NamedTuple):
    name: str
    type: int
    #: File offset of the record (for messages).
    offset: int
    desc: bytes


def _align4(value: int) -> int:
    return (value + 3) & ~3


def read_note_records(data: mmap.mmap, start: int, end: int) -> tuple[list[Note], int | None]:
    """The records of one note segment [start, end) of the file, and the offset of the
    record that runs past the segment (None if the segment parsed to its end).

    A desc can never be larger than its segment, so hostile sizes cost nothing; an
    all-zero header (which no writer emits) ends the segment, so a zero-filled region
    is not walked twelve bytes at a time.
    """
    notes: list[Note] = []
    position = start
    while position + NHDR.size <= end:
        namesz, descsz, kind = NHDR.unpack_from(data, position)
        if namesz == descsz == kind == 0:
            break
        name_start = position + NHDR.size
        desc_start = name_start + _align4(namesz)
        desc_end = desc_start + descsz
        if desc_end > end:
            return notes, position
        name = data[name_start : name_start + namesz].split(b"\0", 1)[0].decode("ascii", "replace")
        notes.append(Note(name, kind, position, data[desc_start:desc_end]))
        position = _align4(desc_end)
    return notes, None


def read_notes(data: mmap.mmap, size: int, headers: list[ProgramHeader], warnings: list[str]) -> list[Note]:
    """The records of every PT_NOTE segment in file order, with a warning for each
    segment cut by the end of the file or corrupt inside."""
    notes: list[Note] = []
    for header in headers:
        if header.type != PT_NOTE:
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
        records, damaged_at = read_note_records(data, start, end)
        notes.extend(records)
        if damaged_at is not None and end == header.offset + header.filesz:
            warnings.append(f"note segment corrupt at file offset {damaged_at:#x}: {len(records)} notes read")
    return notes
