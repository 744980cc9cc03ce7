"""Call frame information (DWARF CFI) of one ELF image: the unwind row at a pc.

``CallFrameTable(path).row_at(pc)`` answers "how do I find the caller's registers
at this link-time pc" without parsing the image's whole ``.eh_frame``: the FDE is
found by a binary search over ``.eh_frame_hdr``'s sorted table (read straight from
the section bytes), then only that FDE and its CIE are decoded. CIEs are cached by
offset and the rows of each decoded FDE are kept, so a second question about the
same function is a ``bisect``. ``.debug_frame`` (of the image, or of the separate
debug file the caller passes) is consulted only when ``.eh_frame_hdr`` has no entry
for the pc; it has no index, so the first such question scans its entry headers
(lengths and address ranges, not instructions) once.

Everything is decoded with ``struct`` from the raw file bytes (the file is mapped,
not read); a malformed or truncated image raises ``CfiError`` naming the file, the
section and the offset, never another exception.
"""

from __future__ import annotations

import mmap
import os
import struct
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from lindbg.errors import LindbgError
from lindbg.formats.elfdefs import PT_GNU_EH_FRAME as _PT_GNU_EH_FRAME
from lindbg.formats.elfdefs import PT_LOAD as _PT_LOAD
from lindbg.formats.elfdefs import SHT_NOBITS as _SHT_NOBITS

__all__ = ["DWARF_REGS", "CallFrameTable", "CfiError", "FrameRow", "register_name"]

#: DWARF register numbers of x86-64 (System V psABI, figure 3.36) -> register names.
DWARF_REGS: dict[int, str] = {
    0: "rax",
    1: "rdx",
    2: "rcx",
    3: "rbx",
    4: "rsi",
    5: "rdi",
    6: "rbp",
    7: "rsp",
    8: "r8",
    9: "r9",
    10: "r10",
    11: "r11",
    12: "r12",
    13: "r13",
    14: "r14",
    15: "r15",
    16: "rip",
}


def register_name(regno: int) -> str:
    """The name of DWARF register ``regno`` (``dwarfN`` for one outside rax..rip)."""
    return DWARF_REGS.get(regno, f"dwarf{regno}")


class CfiError(LindbgError):
    """An image's call frame information is malformed or truncated."""


@dataclass(frozen=True)
class FrameRow:
    """One row of the CFI table: how to compute the CFA and the caller's registers.

    ``cfa`` is ``(register_name, offset)`` (e.g. ``("rsp", 16)``) or
    ``("expr", dwarf_expression_bytes)``. ``rules`` maps a DWARF register number to
    ``("offset", n)`` (saved at CFA+n), ``("val_offset", n)`` (value is CFA+n),
    ``("register", r)``, ``("same",)``, ``("undefined",)``, ``("expr", bytes)``
    (saved at the address the expression computes, CFA pushed first) or
    ``("val_expr", bytes)``. Registers without a rule keep their value.
    """

    cfa: tuple[str, int] | tuple[str, bytes]
    rules: dict[int, tuple[Any, ...]]
    return_register: int
    signal_frame: bool


# DW_EH_PE pointer encodings (LSB Core, .eh_frame)
_PE_OMIT = 0xFF
_PE_FORMAT = 0x0F
_PE_APPLICATION = 0x70
_PE_INDIRECT = 0x80
_PE_ABSPTR, _PE_ULEB, _PE_UDATA2, _PE_UDATA4, _PE_UDATA8 = 0x00, 0x01, 0x02, 0x03, 0x04
_PE_SLEB, _PE_SDATA2, _PE_SDATA4, _PE_SDATA8 = 0x09, 0x0A, 0x0B, 0x0C
_PE_PCREL, _PE_TEXTREL, _PE_DATAREL, _PE_FUNCREL, _PE_ALIGNED = 0x10, 0x20, 0x30, 0x40, 0x50
_FIXED_SIZE = {_PE_UDATA2: 2, _PE_UDATA4: 4, _PE_UDATA8: 8, _PE_SDATA2: 2, _PE_SDATA4: 4, _PE_SDATA8: 8}
_FIXED_FORMAT = {_PE_UDATA2: "<H", _PE_UDATA4: "<I", _PE_UDATA8: "<Q", _PE_SDATA2: "<h", _PE_SDATA4: "<i"}
_FIXED_FORMAT[_PE_SDATA8] = "<q"
_FIXED_FORMAT[_PE_ABSPTR] = "<Q"

_MASK64 = (1 << 64) - 1
_SDATA4 = struct.Struct("<i")
_MAX_REMEMBER_DEPTH = 64

_WANTED_SECTIONS = (".eh_frame_hdr", ".eh_frame", ".debug_frame")


class _Cursor:
    """Reads little-endian values from a section's bytes; any overrun is a CfiError."""

    __slots__ = ("data", "end", "label", "pos", "vaddr")

    def __init__(self, data: bytes, pos: int, end: int, vaddr: int, label: str) -> None:
        self.data = data
        self.pos = pos
        self.end = end
        self.vaddr = vaddr  # link-time address of data[0]
        self.label = label

    def fail(self, what: str, offset: int | None = None) -> CfiError:
        where = self.pos if offset is None else offset
        return CfiError(f"{self.label}: {what} at offset {where:#x}")

    def need(self, size: int) -> int:
        pos = self.pos
        if size < 0 or pos + size > self.end:
            raise self.fail("truncated entry")
        self.pos = pos + size
        return pos

    def u8(self) -> int:
        return self.data[self.need(1)]

    def unpack(self, fmt: str, size: int) -> int:
        value: int = struct.unpack_from(fmt, self.data, self.need(size))[0]
        return value

    def uleb(self) -> int:
        result = shift = 0
        data, end = self.data, self.end
        pos = self.pos
        while True:
            if pos >= end:
                raise self.fail("truncated LEB128")
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        self.pos = pos
        return result

    def sleb(self) -> int:
        start = self.pos
        result = self.uleb()
        bits = 7 * (self.pos - start)
        if result >> (bits - 1) & 1:
            result -= 1 << bits
        return result

    def cstring(self) -> bytes:
        try:
            stop = self.data.index(b"\0", self.pos, self.end)
        except ValueError:
            raise self.fail("unterminated string") from None
        text = self.data[self.pos : stop]
        self.pos = stop + 1
        return bytes(text)

    def block(self, size: int) -> bytes:
        start = self.need(size)
        return bytes(self.data[start : start + size])

    def encoded(self, encoding: int, func_base: int = 0, data_base: int = 0) -> int:
        """A pointer in DW_EH_PE ``encoding`` (never DW_EH_PE_omit here)."""
        field_vaddr = self.vaddr + self.pos
        fmt = encoding & _PE_FORMAT
        if fmt == _PE_ULEB:
            value = self.uleb()
        elif fmt == _PE_SLEB:
            value = self.sleb()
        elif fmt in _FIXED_FORMAT:
            value = self.unpack(_FIXED_FORMAT[fmt], 8 if fmt == _PE_ABSPTR else _FIXED_SIZE[fmt])
        else:
            raise self.fail(f"unsupported pointer encoding {encoding:#x}")
        application = encoding & _PE_APPLICATION
        if application == _PE_PCREL:
            value += field_vaddr
        elif application == _PE_DATAREL:
            value += data_base
        elif application == _PE_FUNCREL:
            value += func_base
        elif application not in (0, _PE_ALIGNED, _PE_TEXTREL):
            raise self.fail(f"unsupported pointer encoding {encoding:#x}")
        # DW_EH_PE_indirect points at the real value in memory: only personality
        # routines use it, and they are skipped, so the address itself is returned.
        return value & _MASK64


@dataclass
class _Cie:
    code_align: int
    data_align: int
    return_register: int
    fde_encoding: int
    lsda_encoding: int
    has_augmentation_data: bool
    signal_frame: bool
    address_size: int
    instructions: bytes
    initial: _Row | None = None  # the row after the initial instructions (filled lazily)


@dataclass
class _Row:
    cfa: tuple[str, int] | tuple[str, bytes]
    cfa_reg: int
    cfa_offset: int
    rules: dict[int, tuple[Any, ...]]

    def copy(self) -> _Row:
        return _Row(self.cfa, self.cfa_reg, self.cfa_offset, dict(self.rules))


class _Section:
    """A section's bytes, its link-time address and a label for messages."""

    __slots__ = ("data", "label", "size", "vaddr")

    def __init__(self, data: bytes, vaddr: int, label: str) -> None:
        self.data = data
        self.size = len(data)
        self.vaddr = vaddr
        self.label = label

    def cursor(self, pos: int, end: int | None = None) -> _Cursor:
        return _Cursor(
            self.data, pos, self.size if end is None else min(end, self.size), self.vaddr, self.label
        )


class _Image:
    """The section headers of one ELF file (mapped, read on demand)."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                self.data: bytes | mmap.mmap = (
                    mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
                )
        except OSError as error:
            raise CfiError(f"{path}: cannot read: {error.strerror or error}") from error
        self.sections: dict[str, tuple[int, int, int, int]] = {}  # name -> (type, addr, offset, size)
        self.loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
        self.eh_frame_hdr_vaddr: int | None = None
        self._parse_headers()

    def fail(self, what: str, offset: int) -> CfiError:
        return CfiError(f"{self.path}: {what} at offset {offset:#x}")

    def _unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        if offset < 0 or offset + struct.calcsize(fmt) > len(self.data):
            raise self.fail("truncated ELF headers", offset)
        return struct.unpack_from(fmt, self.data, offset)

    def _parse_headers(self) -> None:
        data = self.data
        if len(data) < 64 or data[:4] != b"\x7fELF":
            raise self.fail("not an ELF file", 0)
        if data[4] != 2 or data[5] != 1:
            raise self.fail("not a 64-bit little-endian ELF file", 4)
        (phoff, shoff) = self._unpack("<QQ", 0x20)
        (phentsize, phnum, shentsize, shnum, shstrndx) = self._unpack("<HHHHH", 0x36)
        if phnum and phentsize < 56:
            raise self.fail("bad program header size", 0x36)
        for index in range(phnum):
            where = phoff + index * phentsize
            kind, _flags, offset, vaddr, _paddr, filesz = self._unpack("<IIQQQQ", where)
            if kind == _PT_LOAD:
                self.loads.append((vaddr, offset, filesz))
            elif kind == _PT_GNU_EH_FRAME:
                self.eh_frame_hdr_vaddr = vaddr
        if not shnum or shoff == 0:
            return
        if shentsize < 64:
            raise self.fail("bad section header size", 0x3A)
        if shstrndx >= shnum:
            raise self.fail("bad section name table index", 0x3E)
        headers = []
        for index in range(shnum):
            where = shoff + index * shentsize
            name, kind, _flags, addr, offset, size = self._unpack("<IIQQQQ", where)
            headers.append((name, kind, addr, offset, size))
        _, names_kind, _, names_offset, names_size = headers[shstrndx]
        if names_kind == _SHT_NOBITS or names_offset + names_size > len(data):
            raise self.fail("truncated section name table", names_offset)
        for name_offset, kind, addr, offset, size in headers:
            if name_offset >= names_size:
                continue
            stop = data.find(b"\0", names_offset + name_offset, names_offset + names_size)
            if stop < 0:
                continue
            section_name = bytes(data[names_offset + name_offset : stop]).decode("latin-1")
            if section_name in _WANTED_SECTIONS and section_name not in self.sections:
                self.sections[section_name] = (kind, addr, offset, size)

    def section(self, name: str) -> _Section | None:
        """The bytes of section ``name``; None when absent or NOBITS (a debug file)."""
        header = self.sections.get(name)
        if header is None:
            return None
        kind, addr, offset, size = header
        if kind == _SHT_NOBITS:
            return None
        if offset + size > len(self.data):
            raise self.fail(f"section {name} runs past the end of the file", offset)
        return _Section(self.data[offset : offset + size], addr, f"{self.path} {name}")

    def at_vaddr(self, vaddr: int, name: str) -> _Section | None:
        """The file bytes from link-time ``vaddr`` to the end of its PT_LOAD segment."""
        for start, offset, filesz in self.loads:
            if start <= vaddr < start + filesz:
                begin = offset + vaddr - start
                end = min(offset + filesz, len(self.data))
                if begin >= end:
                    raise self.fail(f"{name} lies past the end of the file", begin)
                return _Section(self.data[begin:end], vaddr, f"{self.path} {name}")
        return None


class _FrameSection:
    """The CIEs and FDEs of one .eh_frame or .debug_frame, decoded on demand."""

    def __init__(self, section: _Section, is_eh: bool) -> None:
        self.section = section
        self.is_eh = is_eh
        self.cies: dict[int, _Cie] = {}
        # FDE offset -> (pc_begin, pc_end, locations, rows)
        self.fdes: dict[int, tuple[int, int, list[int], list[FrameRow]]] = {}

    # ------------------------------------------------------------ entries

    def _entry_header(self, offset: int) -> tuple[_Cursor, int | None]:
        """(cursor just after the CIE id / CIE pointer, the CIE's offset or None for a CIE)."""
        cursor = self.section.cursor(offset)
        length = cursor.unpack("<I", 4)
        is64 = length == 0xFFFFFFFF
        if is64:
            length = cursor.unpack("<Q", 8)
        if length == 0:
            raise cursor.fail("zero-length entry (terminator) where an entry was expected", offset)
        end = cursor.pos + length
        if end > self.section.size:
            raise cursor.fail("entry runs past the end of the section", offset)
        cursor.end = end
        id_pos = cursor.pos
        ident = cursor.unpack("<Q", 8) if is64 else cursor.unpack("<I", 4)
        if self.is_eh:
            # In .eh_frame a CIE's id is 0 and an FDE's field counts back from itself.
            return cursor, None if ident == 0 else id_pos - ident
        return cursor, None if ident == (0xFFFFFFFFFFFFFFFF if is64 else 0xFFFFFFFF) else ident

    def cie(self, offset: int) -> _Cie:
        cached = self.cies.get(offset)
        if cached is not None:
            return cached
        cursor, cie_offset = self._entry_header(offset)
        if cie_offset is not None:
            raise cursor.fail("expected a CIE", offset)
        version = cursor.u8()
        if version not in (1, 3, 4):
            raise cursor.fail(f"unsupported CIE version {version}", offset)
        augmentation = cursor.cstring()
        address_size = 8
        if version == 4:
            address_size = cursor.u8()
            cursor.u8()  # segment selector size
            if address_size not in (4, 8):
                raise cursor.fail(f"unsupported address size {address_size}", offset)
        if augmentation.startswith(b"eh"):
            cursor.need(address_size)  # GCC 2.x's eh_ptr
        code_align = cursor.uleb()
        data_align = cursor.sleb()
        return_register = cursor.u8() if version == 1 else cursor.uleb()
        fde_encoding = _PE_ABSPTR if address_size == 8 else _PE_UDATA4
        lsda_encoding = _PE_OMIT
        signal_frame = False
        has_data = augmentation.startswith(b"z")
        if has_data:
            data_size = cursor.uleb()
            data_end = cursor.pos + data_size
            if data_end > cursor.end:
                raise cursor.fail("augmentation data runs past the CIE", offset)
            for char in augmentation[1:]:
                if char == ord("R"):
                    fde_encoding = cursor.u8()
                elif char == ord("L"):
                    lsda_encoding = cursor.u8()
                elif char == ord("P"):
                    personality_encoding = cursor.u8()
                    if personality_encoding & _PE_APPLICATION == _PE_ALIGNED:
                        cursor.pos = (cursor.pos + 7) & ~7
                    cursor.encoded(personality_encoding & ~_PE_INDIRECT)
                elif char == ord("S"):
                    signal_frame = True
                elif char in b"BG":  # AArch64 B-key, MTE tagged frames: no data
                    continue
                else:
                    break  # unknown: the rest of the data is skipped by its size
            cursor.pos = data_end
        elif augmentation not in (b"", b"eh"):
            raise cursor.fail(f"unsupported CIE augmentation {augmentation!r}", offset)
        if fde_encoding != _PE_OMIT and fde_encoding & _PE_FORMAT not in (_PE_ULEB, _PE_SLEB, *_FIXED_FORMAT):
            raise cursor.fail(f"unsupported FDE pointer encoding {fde_encoding:#x}", offset)
        cie = _Cie(
            code_align=code_align,
            data_align=data_align,
            return_register=return_register,
            fde_encoding=fde_encoding,
            lsda_encoding=lsda_encoding,
            has_augmentation_data=has_data,
            signal_frame=signal_frame,
            address_size=address_size,
            instructions=cursor.block(cursor.end - cursor.pos),
        )
        self.cies[offset] = cie
        return cie

    def fde_range(self, offset: int) -> tuple[int, int, _Cie, _Cursor] | None:
        """(pc_begin, pc_end, its CIE, cursor at the augmentation data) of the FDE at
        ``offset``; None when the entry there is a CIE."""
        cursor, cie_offset = self._entry_header(offset)
        if cie_offset is None:
            return None
        if cie_offset < 0 or cie_offset >= self.section.size:
            raise cursor.fail(f"FDE points to a CIE outside the section ({cie_offset:#x})", offset)
        cie = self.cie(cie_offset)
        if self.is_eh:
            pc_begin = cursor.encoded(cie.fde_encoding)
            pc_range = cursor.encoded(cie.fde_encoding & _PE_FORMAT)
        else:
            fmt = "<Q" if cie.address_size == 8 else "<I"
            pc_begin = cursor.unpack(fmt, cie.address_size)
            pc_range = cursor.unpack(fmt, cie.address_size)
        return pc_begin, pc_begin + pc_range, cie, cursor

    def rows(self, offset: int) -> tuple[int, int, list[int], list[FrameRow]] | None:
        """The decoded rows of the FDE at ``offset`` (cached)."""
        cached = self.fdes.get(offset)
        if cached is not None:
            return cached
        header = self.fde_range(offset)
        if header is None:
            return None
        pc_begin, pc_end, cie, cursor = header
        if cie.has_augmentation_data:
            size = cursor.uleb()
            cursor.need(size)
        if cie.initial is None:
            initial_cursor = _Cursor(cie.instructions, 0, len(cie.instructions), 0, cursor.label)
            _, initial_rows = self._execute(initial_cursor, cie, None, 0)
            cie.initial = initial_rows[-1]
        locations, rows = self._execute(cursor, cie, cie.initial, pc_begin)
        frozen = [
            FrameRow(
                cfa=row.cfa,
                rules=row.rules,
                return_register=cie.return_register,
                signal_frame=cie.signal_frame,
            )
            for row in rows
        ]
        result = (pc_begin, pc_end, locations, frozen)
        self.fdes[offset] = result
        return result

    # ------------------------------------------------------- instructions

    def _execute(
        self, cursor: _Cursor, cie: _Cie, initial: _Row | None, pc: int
    ) -> tuple[list[int], list[_Row]]:
        """Run CFA instructions; the locations where rows start and the rows."""
        row = initial.copy() if initial is not None else _Row(("rsp", 0), 7, 0, {})
        locations: list[int] = [pc]
        rows: list[_Row] = [row]
        stack: list[_Row] = []
        code_align, data_align = cie.code_align, cie.data_align

        def advance(delta: int) -> None:
            nonlocal row, pc
            pc += delta
            if pc == locations[-1]:
                return
            row = row.copy()
            locations.append(pc)
            rows.append(row)

        def set_cfa(reg: int, off: int) -> None:
            row.cfa_reg = reg
            row.cfa_offset = off
            row.cfa = (register_name(reg), off)

        def restore(reg: int) -> None:
            if initial is not None and reg in initial.rules:
                row.rules[reg] = initial.rules[reg]
            else:
                row.rules.pop(reg, None)

        while cursor.pos < cursor.end:
            op_pos = cursor.pos
            op = cursor.u8()
            high = op & 0xC0
            low = op & 0x3F
            if high == 0x40:  # DW_CFA_advance_loc
                advance(low * code_align)
            elif high == 0x80:  # DW_CFA_offset
                row.rules[low] = ("offset", cursor.uleb() * data_align)
            elif high == 0xC0:  # DW_CFA_restore
                restore(low)
            elif op == 0x00:  # DW_CFA_nop
                pass
            elif op == 0x01:  # DW_CFA_set_loc
                if self.is_eh:
                    target = cursor.encoded(cie.fde_encoding)
                else:
                    target = cursor.unpack("<Q" if cie.address_size == 8 else "<I", cie.address_size)
                if target < pc:
                    raise cursor.fail("DW_CFA_set_loc moves backwards", op_pos)
                advance(target - pc)
            elif op == 0x02:
                advance(cursor.u8() * code_align)
            elif op == 0x03:
                advance(cursor.unpack("<H", 2) * code_align)
            elif op == 0x04:
                advance(cursor.unpack("<I", 4) * code_align)
            elif op == 0x05:  # DW_CFA_offset_extended
                reg = cursor.uleb()
                row.rules[reg] = ("offset", cursor.uleb() * data_align)
            elif op == 0x06:  # DW_CFA_restore_extended
                restore(cursor.uleb())
            elif op == 0x07:  # DW_CFA_undefined
                row.rules[cursor.uleb()] = ("undefined",)
            elif op == 0x08:  # DW_CFA_same_value
                row.rules[cursor.uleb()] = ("same",)
            elif op == 0x09:  # DW_CFA_register
                reg = cursor.uleb()
                row.rules[reg] = ("register", cursor.uleb())
            elif op == 0x0A:  # DW_CFA_remember_state
                if len(stack) >= _MAX_REMEMBER_DEPTH:
                    raise cursor.fail("DW_CFA_remember_state nested too deep", op_pos)
                stack.append(row.copy())
            elif op == 0x0B:  # DW_CFA_restore_state (the location stays)
                if not stack:
                    raise cursor.fail("DW_CFA_restore_state without remember_state", op_pos)
                saved = stack.pop()
                row.cfa, row.cfa_reg, row.cfa_offset = saved.cfa, saved.cfa_reg, saved.cfa_offset
                row.rules = saved.rules
            elif op == 0x0C:  # DW_CFA_def_cfa
                reg = cursor.uleb()
                set_cfa(reg, cursor.uleb())
            elif op == 0x0D:  # DW_CFA_def_cfa_register
                set_cfa(cursor.uleb(), row.cfa_offset)
            elif op == 0x0E:  # DW_CFA_def_cfa_offset
                set_cfa(row.cfa_reg, cursor.uleb())
            elif op == 0x0F:  # DW_CFA_def_cfa_expression
                row.cfa = ("expr", cursor.block(cursor.uleb()))
            elif op == 0x10:  # DW_CFA_expression
                reg = cursor.uleb()
                row.rules[reg] = ("expr", cursor.block(cursor.uleb()))
            elif op == 0x11:  # DW_CFA_offset_extended_sf
                reg = cursor.uleb()
                row.rules[reg] = ("offset", cursor.sleb() * data_align)
            elif op == 0x12:  # DW_CFA_def_cfa_sf
                reg = cursor.uleb()
                set_cfa(reg, cursor.sleb() * data_align)
            elif op == 0x13:  # DW_CFA_def_cfa_offset_sf
                set_cfa(row.cfa_reg, cursor.sleb() * data_align)
            elif op == 0x14:  # DW_CFA_val_offset
                reg = cursor.uleb()
                row.rules[reg] = ("val_offset", cursor.uleb() * data_align)
            elif op == 0x15:  # DW_CFA_val_offset_sf
                reg = cursor.uleb()
                row.rules[reg] = ("val_offset", cursor.sleb() * data_align)
            elif op == 0x16:  # DW_CFA_val_expression
                reg = cursor.uleb()
                row.rules[reg] = ("val_expr", cursor.block(cursor.uleb()))
            elif op == 0x2E:  # DW_CFA_GNU_args_size
                cursor.uleb()
            elif op == 0x2F:  # DW_CFA_GNU_negative_offset_extended
                reg = cursor.uleb()
                row.rules[reg] = ("offset", -cursor.uleb() * data_align)
            else:
                raise cursor.fail(f"unknown CFA instruction {op:#x}", op_pos)
        return locations, rows


class CallFrameTable:
    """The CFI of one ELF image (and of its separate debug file), opened lazily."""

    def __init__(self, path: str, debug_path: str | None = None) -> None:
        self.path = path
        self.debug_path = debug_path
        self._opened = False
        self._open_error: CfiError | None = None
        self._hdr: _Section | None = None
        self._hdr_table = 0  # offset of the binary-search table in the header
        self._hdr_count = 0
        self._hdr_encoding = _PE_OMIT
        self._hdr_entry_size = 0
        self._eh: _FrameSection | None = None
        self._debug_frames: list[_FrameSection] | None = None
        # per .debug_frame: sorted (pc_begin, pc_end, fde offset) and the begins alone
        self._debug_index: list[tuple[list[int], list[tuple[int, int, int]]]] = []

    # ------------------------------------------------------------ opening

    def _open(self) -> None:
        if self._open_error is not None:
            raise self._open_error
        try:
            self._image = _Image(self.path)
            self._read_hdr_of(self._image)
        except CfiError as error:
            self._open_error = error
            self._hdr = self._eh = None
            raise
        self._opened = True

    def _read_hdr_of(self, image: _Image) -> None:
        hdr = image.section(".eh_frame_hdr")
        if hdr is None and image.eh_frame_hdr_vaddr is not None and ".eh_frame_hdr" not in image.sections:
            hdr = image.at_vaddr(image.eh_frame_hdr_vaddr, ".eh_frame_hdr")
        if hdr is not None:
            self._read_hdr(image, hdr)

    def _read_hdr(self, image: _Image, hdr: _Section) -> None:
        cursor = hdr.cursor(0)
        version = cursor.u8()
        if version != 1:
            raise cursor.fail(f"unsupported .eh_frame_hdr version {version}", 0)
        eh_frame_ptr_enc = cursor.u8()
        count_enc = cursor.u8()
        table_enc = cursor.u8()
        if eh_frame_ptr_enc == _PE_OMIT:
            return
        eh_frame_vaddr = cursor.encoded(eh_frame_ptr_enc, data_base=hdr.vaddr)
        eh = image.section(".eh_frame")
        if eh is None or eh.vaddr != eh_frame_vaddr:
            eh = image.at_vaddr(eh_frame_vaddr, ".eh_frame")
        if eh is None:
            raise cursor.fail(f".eh_frame_hdr points to {eh_frame_vaddr:#x}, which is not in the file", 4)
        self._eh = _FrameSection(eh, is_eh=True)
        if count_enc == _PE_OMIT or table_enc == _PE_OMIT:
            return
        count = cursor.encoded(count_enc, data_base=hdr.vaddr)
        size = _FIXED_SIZE.get(table_enc & _PE_FORMAT) or (8 if table_enc & _PE_FORMAT == _PE_ABSPTR else 0)
        if size == 0 or table_enc & _PE_APPLICATION not in (0, _PE_DATAREL, _PE_PCREL):
            raise cursor.fail(f"unsupported .eh_frame_hdr table encoding {table_enc:#x}", 3)
        if cursor.pos + count * 2 * size > hdr.size:
            raise cursor.fail(f".eh_frame_hdr table of {count} entries runs past the section", cursor.pos)
        self._hdr = hdr
        self._hdr_table = cursor.pos
        self._hdr_count = count
        self._hdr_encoding = table_enc
        self._hdr_entry_size = size

    def _hdr_value(self, pos: int) -> int:
        hdr = self._hdr
        assert hdr is not None
        if self._hdr_encoding == _PE_DATAREL | _PE_SDATA4:  # what every linker writes
            value: int = _SDATA4.unpack_from(hdr.data, pos)[0]
            return (value + hdr.vaddr) & _MASK64
        return hdr.cursor(pos).encoded(self._hdr_encoding, data_base=hdr.vaddr)

    def _hdr_lookup(self, pc: int) -> int | None:
        """The .eh_frame offset of the FDE whose table entry is the last one <= pc."""
        if self._hdr is None or self._eh is None or self._hdr_count == 0:
            return None
        size = self._hdr_entry_size
        base = self._hdr_table
        low, high = 0, self._hdr_count
        while low < high:  # first entry whose initial location is > pc
            middle = (low + high) // 2
            if self._hdr_value(base + middle * 2 * size) <= pc:
                low = middle + 1
            else:
                high = middle
        if low == 0:
            return None
        fde_vaddr = self._hdr_value(base + (low - 1) * 2 * size + size)
        offset = fde_vaddr - self._eh.section.vaddr
        if not 0 <= offset < self._eh.section.size:
            raise self._hdr.cursor(base + (low - 1) * 2 * size + size).fail(
                f".eh_frame_hdr entry points outside .eh_frame ({fde_vaddr:#x})"
            )
        return offset

    # ------------------------------------------------------------ lookups

    def row_at(self, pc: int) -> FrameRow | None:
        """The CFI row in force at link-time ``pc``; None when no FDE covers it."""
        if not self._opened:
            self._open()
        offset = self._hdr_lookup(pc)
        if offset is not None and self._eh is not None:
            row = self._row_in(self._eh, offset, pc)
            if row is not None:
                return row
        return self._debug_frame_row(pc)

    @staticmethod
    def _row_in(frames: _FrameSection, offset: int, pc: int) -> FrameRow | None:
        decoded = frames.rows(offset)
        if decoded is None:
            return None
        begin, end, locations, rows = decoded
        if not begin <= pc < end:
            return None
        return rows[bisect_right(locations, pc) - 1]

    def _debug_frame_row(self, pc: int) -> FrameRow | None:
        if self._debug_frames is None:
            self._load_debug_frames()
        assert self._debug_frames is not None
        for frames, (begins, entries) in zip(self._debug_frames, self._debug_index, strict=True):
            index = bisect_right(begins, pc) - 1
            # ranges may overlap (rarely): look back over the few that start before pc
            while index >= 0:
                begin, end, offset = entries[index]
                if begin <= pc < end:
                    return self._row_in(frames, offset, pc)
                if index == 0 or pc - begins[index] > 1 << 20:
                    break
                index -= 1
        return None

    def _load_debug_frames(self) -> None:
        self._debug_frames = []
        sources: list[tuple[_Image, str]] = []
        if self._hdr is None:
            # no .eh_frame_hdr (a static program linked without --eh-frame-hdr): index
            # .eh_frame's entry headers once, as for .debug_frame
            sources.append((self._image, ".eh_frame"))
        sources.append((self._image, ".debug_frame"))
        if self.debug_path is not None:
            sources.append((_Image(self.debug_path), ".debug_frame"))
        for image, name in sources:
            section = image.section(name)
            if section is None:
                continue
            frames = _FrameSection(section, is_eh=name == ".eh_frame")
            entries: list[tuple[int, int, int]] = []
            offset = 0
            while offset + 4 <= section.size:
                cursor = section.cursor(offset)
                length = cursor.unpack("<I", 4)
                if length == 0xFFFFFFFF:
                    length = cursor.unpack("<Q", 8)
                if length == 0:
                    offset = cursor.pos
                    continue
                header = frames.fde_range(offset)
                if header is not None and header[1] > header[0]:
                    entries.append((header[0], header[1], offset))
                offset = cursor.pos + length
            entries.sort()
            self._debug_frames.append(frames)
            self._debug_index.append(([entry[0] for entry in entries], entries))
