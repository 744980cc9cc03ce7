"""One ELF file on disk, read lazily: headers at open, everything else on first use.

Why not pyelftools' ``ELFFile`` here: its headers are cheap, but its symbols are
construct objects (0.7 s for libc's 10,015 symbols against 0.005 s for
``struct.iter_unpack`` over the raw section, PERF.md), and it keeps a stream open for the
life of the object. This reader parses the ELF header, the program headers and the
section headers with ``struct`` when opened, then reopens the file for each later read
(``os.pread``), so no descriptor stays open and a file replaced on disk (a rebuilt
program) gives a ``SymbolError`` rather than the SIGBUS a stale mmap would.

Only little-endian ELF64 for x86-64 is accepted (DESIGN.md: the target is x86-64). Every
failure to understand a file, whatever its cause, is a ``SymbolError`` naming the file.
"""

from __future__ import annotations

import os
import struct
import zlib
from functools import cached_property
from typing import NamedTuple

from lindbg.errors import LindbgError
from lindbg.formats.elfdefs import (
    CHDR,
    EHDR,
    ELF_MAGIC,
    ELFCLASS64,
    ELFCOMPRESS_ZLIB,
    ELFCOMPRESS_ZSTD,
    ELFDATA2LSB,
    EM_X86_64,
    ET_NAMES,
    ET_NONE,
    NHDR,
    NT_GNU_BUILD_ID,
    PHDR,
    PN_XNUM,
    PT_LOAD,
    PT_NOTE,
    SHDR,
    SHF_COMPRESSED,
    SHN_LORESERVE,
    SHN_XINDEX,
    SHT_DYNSYM,
    SHT_NOBITS,
    SHT_NOTE,
    SHT_SYMTAB,
    SYM,
)
from lindbg.symbols.symtab import Row, SymbolTable


class SymbolError(LindbgError):
    """A file could not be read as an x86-64 ELF image (or a part of it as expected)."""


#: The kernel maps segments at page granularity (ELF_PAGESTART), so the first mapping
#: of an image starts at its first PT_LOAD's vaddr rounded down to a page.
_PAGE_MASK = ~0xFFF
#: No plausible section decompresses to more than this; a larger ch_size is corruption.
_MAX_DECOMPRESSED = 1 << 32

#: st_info's type nibble -> Symbol.kind (FUNC, GNU_IFUNC, OBJECT, NOTYPE). SECTION,
#: FILE and TLS (whose value is an offset in the TLS block, not an address) are left out.
_SYMBOL_KINDS = {2: "function", 10: "function", 1: "object", 0: "other"}
#: st_info's binding nibble -> order among aliases of one address (global first).
_BINDING_ORDER = {1: 0, 10: 0, 2: 1, 0: 2}


#: Elf64_Rela: r_offset, r_info (symbol << 32 | type), r_addend.
_RELA = struct.Struct("<QQq")


class _Section(NamedTuple):
    number: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int


class ElfImage:
    """An x86-64 ELF file: its identity (type, build-id, debuglink), segments and sections.

    ``symbols`` and section contents are read on first use and kept (a section's bytes
    are cached, decompressed, so the DWARF and CFI readers can each ask for them).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._data_cache: dict[str, bytes | None] = {}
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            raise SymbolError(f"cannot open {path}: {error.strerror}") from error
        try:
            st = os.fstat(fd)
            self._identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            self._file_size = st.st_size
            self._parse_headers(fd)
        except OSError as error:
            raise SymbolError(f"cannot read {path}: {error.strerror}") from error
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ headers

    def _fail(self, what: str) -> SymbolError:
        return SymbolError(f"{self.path}: {what}")

    def _pread(self, fd: int, offset: int, size: int, what: str) -> bytes:
        """Exactly ``size`` bytes at ``offset`` or a SymbolError saying the file is short."""
        if offset < 0 or size < 0 or offset + size > self._file_size:
            raise self._fail(
                f"is truncated: {what} at {offset:#x}+{size:#x} lies beyond the end of the file "
                f"({self._file_size:#x} bytes)"
            )
        data = os.pread(fd, size, offset) if size else b""
        if len(data) != size:
            raise self._fail(f"is truncated: short read of {what} at {offset:#x}")
        return data

    def _parse_headers(self, fd: int) -> None:
        head = os.pread(fd, EHDR.size, 0)
        if not head:
            raise SymbolError(f"{self.path} is not an ELF file (it is empty)")
        if not head.startswith(ELF_MAGIC):
            raise SymbolError(f"{self.path} is not an ELF file")
        if len(head) < EHDR.size:
            raise SymbolError(f"{self.path} is truncated: {len(head)} bytes, the ELF header needs 64")
        (ident, e_type, machine, _version, _entry, phoff, shoff, _flags, _ehsize, phentsize, phnum,
         shentsize, shnum, shstrndx) = EHDR.unpack(head)  # fmt: skip
        if ident[4] != ELFCLASS64:
            raise SymbolError(f"{self.path} is not a 64-bit ELF file (EI_CLASS {ident[4]}); x86-64 only")
        if ident[5] != ELFDATA2LSB:
            raise SymbolError(f"{self.path} is not a little-endian ELF file (EI_DATA {ident[5]})")
        if machine != EM_X86_64:
            raise SymbolError(f"{self.path} is not an x86-64 ELF file (e_machine {machine})")
        if e_type == ET_NONE or e_type not in ET_NAMES:
            raise SymbolError(f"{self.path} has an unknown ELF type {e_type:#x}")
        self.elf_type: str = ET_NAMES[e_type]

        section0: tuple[int, ...] | None = None
        if shoff:
            if shentsize != SHDR.size:
                raise self._fail(f"has section headers of {shentsize} bytes, not {SHDR.size}")
            section0 = SHDR.unpack(self._pread(fd, shoff, SHDR.size, "section header 0"))
            if shnum == 0:
                shnum = section0[5]  # extended numbering: sh_size of section 0
            if shstrndx == SHN_XINDEX:
                shstrndx = section0[6]  # sh_link of section 0
        else:
            shnum = 0

        if phnum == PN_XNUM and section0 is not None:
            phnum = section0[7]  # sh_info of section 0
        segments: list[tuple[int, ...]] = []
        if phoff and phnum:
            if phentsize != PHDR.size:
                raise self._fail(f"has program headers of {phentsize} bytes, not {PHDR.size}")
            table = self._pread(fd, phoff, phnum * PHDR.size, "the program header table")
            segments = list(PHDR.iter_unpack(table))
        self._segments = segments
        loads = [(s[3], s[6], s[2], s[5], s[7]) for s in segments if s[0] == PT_LOAD]
        self.load_segments: list[tuple[int, int, int, int]] = [
            (vaddr, memsz, offset, filesz) for vaddr, memsz, offset, filesz, _align in loads
        ]
        self.first_load_vaddr: int = min((s[0] for s in loads), default=0) & _PAGE_MASK

        raw: list[tuple[int, ...]] = []
        if shnum:
            table = self._pread(fd, shoff, shnum * SHDR.size, "the section header table")
            raw = list(SHDR.iter_unpack(table))
        names = b""
        if raw and shstrndx:
            if shstrndx >= len(raw):
                raise self._fail(f"e_shstrndx {shstrndx} is beyond the {len(raw)} section headers")
            strtab = raw[shstrndx]
            if strtab[1] != SHT_NOBITS:
                names = self._pread(fd, strtab[4], strtab[5], "the section name table")
        sections: list[_Section] = []
        for index, (name_offset, *fields) in enumerate(raw):
            name = ""
            if name_offset and names:
                end = names.find(b"\0", name_offset)
                if name_offset >= len(names) or end < 0:
                    raise self._fail(f"section {index} has a name offset {name_offset:#x} beyond .shstrtab")
                name = names[name_offset:end].decode("utf-8", "replace")
            sections.append(_Section(index, name, *fields))
        self._sections = sections
        self._by_name: dict[str, _Section] = {}
        for section in sections:
            if section.name:
                self._by_name.setdefault(section.name, section)

    # ------------------------------------------------------------------ sections

    def _read(self, offset: int, size: int, what: str) -> bytes:
        """Reopen the file and read a range, refusing a file that changed since opening."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            raise SymbolError(f"cannot reopen {self.path}: {error.strerror}") from error
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != self._identity:
                raise self._fail("changed on disk since it was opened")
            return self._pread(fd, offset, size, what)
        except OSError as error:
            raise SymbolError(f"cannot read {self.path}: {error.strerror}") from error
        finally:
            os.close(fd)

    def _contents(self, section: _Section) -> bytes | None:
        """A section's bytes as the program sees them (decompressed); None for NOBITS."""
        if section.type == SHT_NOBITS:
            return None
        what = f"section {section.name or section.number}"
        if section.flags & SHF_COMPRESSED:
            return self._compressed_contents(section, what)
        data = self._read(section.offset, section.size, what)
        if section.name.startswith(".zdebug"):
            return self._decompress_gnu(data, what)
        return data

    def _compressed_contents(self, section: _Section, what: str) -> bytes:
        """A gABI-compressed section, inflated, from the disk cache when it has it."""
        from lindbg.symbols.sectioncache import SectionCache

        cache = SectionCache(self._identity)
        if section.size >= CHDR.size:
            header = self._read(section.offset, CHDR.size, what)
            cached = cache.load(section.offset, CHDR.unpack_from(header)[2])
            if cached is not None:
                return cached
        data = self._decompress_gabi(self._read(section.offset, section.size, what), what)
        cache.store(section.offset, data)
        return data

    def _decompress_gabi(self, data: bytes, what: str) -> bytes:
        if len(data) < CHDR.size:
            raise self._fail(f"{what} is compressed but shorter than its header")
        kind, _reserved, size, _align = CHDR.unpack_from(data)
        if kind == ELFCOMPRESS_ZSTD:
            raise self._fail(f"{what} is compressed with zstd, which lindbg cannot decompress")
        if kind != ELFCOMPRESS_ZLIB:
            raise self._fail(f"{what} has an unknown compression type {kind}")
        return self._inflate(data[CHDR.size :], size, what)

    def _decompress_gnu(self, data: bytes, what: str) -> bytes:
        """The older ``.zdebug_*`` form: ``ZLIB``, a big-endian 64-bit size, zlib data."""
        if len(data) < 12 or not data.startswith(b"ZLIB"):
            raise self._fail(f"{what} lacks the ZLIB header of a .zdebug section")
        return self._inflate(data[12:], int.from_bytes(data[4:12], "big"), what)

    def _inflate(self, payload: bytes, size: int, what: str) -> bytes:
        if size > _MAX_DECOMPRESSED:
            raise self._fail(f"{what} claims an implausible decompressed size {size:#x}")
        try:
            out = zlib.decompress(payload)
        except zlib.error as error:
            raise self._fail(f"{what} does not decompress: {error}") from error
        if len(out) != size:
            raise self._fail(f"{what} decompressed to {len(out):#x} bytes, its header says {size:#x}")
        return out

    def _section(self, name: str) -> _Section | None:
        section = self._by_name.get(name)
        if section is None and name.startswith(".debug_"):
            section = self._by_name.get(".z" + name[1:])
        return section

    def section_data(self, name: str) -> bytes | None:
        """The contents of section ``name``, decompressed, or None if absent or NOBITS.

        NOBITS counts as absent on purpose: a separate debug file keeps every allocated
        section's header but none of its bytes (its .eh_frame, .text, .dynsym are NOBITS).
        ``.debug_x`` falls back to a legacy ``.zdebug_x``. Cached after the first read.
        """
        if name in self._data_cache:
            return self._data_cache[name]
        section = self._section(name)
        data = None if section is None else self._contents(section)
        self._data_cache[name] = data
        return data

    def section_address(self, name: str) -> int | None:
        """The link-time address (sh_addr) of section ``name``, or None if absent."""
        section = self._by_name.get(name)
        return None if section is None else section.addr

    def has_section(self, name: str) -> bool:
        """Whether a section header named ``name`` exists (even NOBITS)."""
        return name in self._by_name

    def has_contents(self, name: str) -> bool:
        """Whether section ``name`` exists with bytes in this file (not NOBITS, not empty)."""
        section = self._section(name)
        return section is not None and section.type != SHT_NOBITS and section.size > 0

    @property
    def section_names(self) -> list[str]:
        """The section names in header order (for listings and tests)."""
        return [s.name for s in self._sections if s.name]

    @cached_property
    def has_dwarf(self) -> bool:
        """Whether the file carries DWARF debug information (.debug_info with bytes)."""
        return self.has_contents(".debug_info")

    # ------------------------------------------------------------------ notes

    def _notes(self) -> list[tuple[bytes, int, bytes]]:
        """Every (name, type, desc) note of the SHT_NOTE sections (the PT_NOTE segments
        when the file has no section headers, as a stripped-to-the-bone file may)."""
        ranges: list[tuple[int, int, int, str]] = [
            (s.offset, s.size, 8 if s.addralign == 8 else 4, s.name)
            for s in self._sections
            if s.type == SHT_NOTE
        ]
        if not self._sections:
            ranges = [
                (p[2], p[5], 8 if p[7] == 8 else 4, "PT_NOTE") for p in self._segments if p[0] == PT_NOTE
            ]
        notes = []
        for offset, size, align, what in ranges:
            data = self._read(offset, size, f"note {what}")
            notes.extend(self._parse_notes(data, align, what))
        return notes

    def _parse_notes(self, data: bytes, align: int, what: str) -> list[tuple[bytes, int, bytes]]:
        notes = []
        position = 0
        while position + NHDR.size <= len(data):
            namesz, descsz, kind = NHDR.unpack_from(data, position)
            name_at = position + NHDR.size
            desc_at = name_at + ((namesz + 3) & ~3)
            end = desc_at + ((descsz + align - 1) & ~(align - 1))
            if desc_at + descsz > len(data):
                raise self._fail(f"note {what} has a note running past the end of its section")
            notes.append((data[name_at : name_at + namesz], kind, data[desc_at : desc_at + descsz]))
            position = end
        return notes

    @cached_property
    def build_id(self) -> bytes | None:
        """The NT_GNU_BUILD_ID note's bytes: the key to the matching debug file."""
        for name, kind, desc in self._notes():
            if kind == NT_GNU_BUILD_ID and name.rstrip(b"\0") == b"GNU" and desc:
                return desc
        return None

    @cached_property
    def debuglink(self) -> tuple[str, int] | None:
        """``.gnu_debuglink``: the debug file's name and the CRC-32 of its contents."""
        data = self.section_data(".gnu_debuglink")
        if data is None:
            return None
        end = data.find(b"\0")
        crc_at = (end + 4) & ~3
        if end <= 0 or crc_at + 4 > len(data):
            raise self._fail(".gnu_debuglink is malformed (no file name or no CRC)")
        name = data[:end].decode("utf-8", "surrogateescape")
        return name, int.from_bytes(data[crc_at : crc_at + 4], "little")

    # ------------------------------------------------------------------ symbols

    @cached_property
    def plt_slots(self) -> dict[int, str]:
        """GOT slot (link-time address) -> the function the loader binds it to, from
        ``.rela.plt`` and ``.dynsym``: what a PLT stub jumps to once resolved."""
        relocations = self.section_data(".rela.plt")
        dynsym = self._section(".dynsym")
        if not relocations or dynsym is None or not 0 < dynsym.link < len(self._sections):
            return {}
        symbols = self._contents(dynsym) or b""
        strings = self._contents(self._sections[dynsym.link]) or b""
        slots: dict[int, str] = {}
        usable = len(relocations) - len(relocations) % _RELA.size
        for offset, info, _addend in _RELA.iter_unpack(relocations[:usable]):
            index = info >> 32
            entry = index * SYM.size
            if not index or entry + SYM.size > len(symbols):
                continue
            name_offset = SYM.unpack_from(symbols, entry)[0]
            end = strings.find(b"\0", name_offset)
            if end > name_offset:
                slots[offset] = strings[name_offset:end].decode("utf-8", "replace")
        return slots

    @cached_property
    def symbols(self) -> SymbolTable:
        """.symtab and .dynsym merged (one entry per (name, address)), link-time addresses.

        Read as raw bytes with ``struct.iter_unpack`` (PERF.md): undefined, absolute,
        common, section, file and TLS symbols are left out.
        """
        ordered: list[list[Row]] = [[], [], []]  # global/unique, weak, local
        seen: set[tuple[str, int]] = set()
        for table_type in (SHT_SYMTAB, SHT_DYNSYM):
            for section in self._sections:
                if section.type == table_type:
                    self._read_symbols(section, ordered, seen)
        return SymbolTable.from_rows([row for group in ordered for row in group])

    def _read_symbols(self, section: _Section, ordered: list[list[Row]], seen: set[tuple[str, int]]) -> None:
        what = section.name or f"section {section.number}"
        if section.entsize not in (0, SYM.size):
            raise self._fail(f"{what} has {section.entsize}-byte entries, not {SYM.size}")
        data = self._contents(section)
        if data is None:
            return  # NOBITS: a debug file's .dynsym
        if not 0 < section.link < len(self._sections):
            raise self._fail(f"{what} links to string table {section.link}, which does not exist")
        strings = self._contents(self._sections[section.link]) or b""
        usable = len(data) - len(data) % SYM.size
        # Names are ASCII in practice: decode the table once, 1:1 (latin-1), so byte
        # offsets index the text directly; only a non-ASCII table decodes name by name.
        text = strings.decode("latin-1")
        ascii_only = strings.isascii()
        find = text.find
        kinds, order = _SYMBOL_KINDS, _BINDING_ORDER
        for name_offset, info, _other, shndx, value, size in SYM.iter_unpack(data[:usable]):
            kind = kinds.get(info & 0xF)
            if kind is None or not name_offset or (not 0 < shndx < SHN_LORESERVE and shndx != SHN_XINDEX):
                continue  # undefined, ABS, COMMON: no address in this image
            end = find("\0", name_offset)
            if end < 0:
                raise self._fail(f"{what} has a name offset {name_offset:#x} beyond its string table")
            name = text[name_offset:end]
            if not ascii_only:
                name = strings[name_offset:end].decode("utf-8", "replace")
            key = (name, value)
            if key in seen:
                continue
            seen.add(key)
            ordered[order.get(info >> 4, 2)].append((name, value, size, kind))
