"""Source lines from DWARF line tables (``.debug_line``), one compilation unit at a time.

Nothing here walks a whole module (PERF.md "Symbols"): an address is mapped to its
compilation unit (CU) through ``.debug_aranges`` (a sorted range list built once and
bisected), and only that CU's line program is decoded, when first asked, then kept as
sorted rows. CUs that ``.debug_aranges`` leaves out (or every CU, when the section is
missing) are placed by the ``DW_AT_low_pc``/``DW_AT_high_pc``/``DW_AT_ranges`` of their
top DIE only. ``addresses_of`` and ``files`` read the line program *headers* of every CU
(their file tables) and decode the rows of only those CUs whose tables name the file.

The DWARF reading is done here on the raw section bytes (DWARF 2 to 5), because
pyelftools' DIE and line-program objects cost ~2 ms per CU top DIE on libc's debug
file; pyelftools only opens the ELF file and decompresses its sections. Every
malformed input raises ``LineError`` naming the file and the unit that failed.
"""

from __future__ import annotations

import bisect
import posixpath
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from lindbg.errors import LindbgError

__all__ = ["LineError", "LineTable", "SourceLine"]


class LineError(LindbgError):
    """The DWARF of a file could not be read (the message names the file and the CU offset)."""


@dataclass(frozen=True, slots=True)
class SourceLine:
    """One row of a line table: ``file`` is absolute when the CU's comp_dir allows,
    ``address`` the link-time address where the row starts."""

    file: str
    line: int
    address: int
    is_stmt: bool


class _Corrupt(Exception):
    """Internal: the bytes do not make sense (turned into ``LineError`` with context)."""


# DWARF constants used here.
_DW_AT_name = 0x03
_DW_AT_stmt_list = 0x10
_DW_AT_low_pc = 0x11
_DW_AT_high_pc = 0x12
_DW_AT_comp_dir = 0x1B
_DW_AT_ranges = 0x55
_DW_AT_str_offsets_base = 0x72
_DW_AT_addr_base = 0x73
_DW_AT_rnglists_base = 0x74
_DW_AT_GNU_addr_base = 0x2133
_DW_AT_GNU_ranges_base = 0x2132

_DW_FORM_addr = 0x01
_DW_FORM_block2 = 0x03
_DW_FORM_block4 = 0x04
_DW_FORM_data2 = 0x05
_DW_FORM_data4 = 0x06
_DW_FORM_data8 = 0x07
_DW_FORM_string = 0x08
_DW_FORM_block = 0x09
_DW_FORM_block1 = 0x0A
_DW_FORM_data1 = 0x0B
_DW_FORM_flag = 0x0C
_DW_FORM_sdata = 0x0D
_DW_FORM_strp = 0x0E
_DW_FORM_udata = 0x0F
_DW_FORM_ref_addr = 0x10
_DW_FORM_ref1 = 0x11
_DW_FORM_ref2 = 0x12
_DW_FORM_ref4 = 0x13
_DW_FORM_ref8 = 0x14
_DW_FORM_ref_udata = 0x15
_DW_FORM_indirect = 0x16
_DW_FORM_sec_offset = 0x17
_DW_FORM_exprloc = 0x18
_DW_FORM_flag_present = 0x19
_DW_FORM_strx = 0x1A
_DW_FORM_addrx = 0x1B
_DW_FORM_ref_sup4 = 0x1C
_DW_FORM_strp_sup = 0x1D
_DW_FORM_data16 = 0x1E
_DW_FORM_line_strp = 0x1F
_DW_FORM_ref_sig8 = 0x20
_DW_FORM_implicit_const = 0x21
_DW_FORM_loclistx = 0x22
_DW_FORM_rnglistx = 0x23
_DW_FORM_ref_sup8 = 0x24
_DW_FORM_strx1 = 0x25
_DW_FORM_strx2 = 0x26
_DW_FORM_strx3 = 0x27
_DW_FORM_strx4 = 0x28
_DW_FORM_addrx1 = 0x29
_DW_FORM_addrx2 = 0x2A
_DW_FORM_addrx3 = 0x2B
_DW_FORM_addrx4 = 0x2C
_DW_FORM_GNU_addr_index = 0x1F01
_DW_FORM_GNU_str_index = 0x1F02
_DW_FORM_GNU_ref_alt = 0x1F20
_DW_FORM_GNU_strp_alt = 0x1F21

_STRX_FORMS = frozenset(
    {_DW_FORM_strx, _DW_FORM_strx1, _DW_FORM_strx2, _DW_FORM_strx3, _DW_FORM_strx4, _DW_FORM_GNU_str_index}
)
_ADDRX_FORMS = frozenset(
    {
        _DW_FORM_addrx,
        _DW_FORM_addrx1,
        _DW_FORM_addrx2,
        _DW_FORM_addrx3,
        _DW_FORM_addrx4,
        _DW_FORM_GNU_addr_index,
    }
)
_CONSTANT_FORMS = frozenset(
    {_DW_FORM_data1, _DW_FORM_data2, _DW_FORM_data4, _DW_FORM_data8, _DW_FORM_udata, _DW_FORM_sdata,
     _DW_FORM_implicit_const}
)  # fmt: skip
_FIXED_SIZE = {
    _DW_FORM_data1: 1, _DW_FORM_ref1: 1, _DW_FORM_flag: 1, _DW_FORM_strx1: 1, _DW_FORM_addrx1: 1,
    _DW_FORM_data2: 2, _DW_FORM_ref2: 2, _DW_FORM_strx2: 2, _DW_FORM_addrx2: 2,
    _DW_FORM_strx3: 3, _DW_FORM_addrx3: 3,
    _DW_FORM_data4: 4, _DW_FORM_ref4: 4, _DW_FORM_ref_sup4: 4, _DW_FORM_strx4: 4, _DW_FORM_addrx4: 4,
    _DW_FORM_data8: 8, _DW_FORM_ref8: 8, _DW_FORM_ref_sig8: 8, _DW_FORM_ref_sup8: 8,
}  # fmt: skip
_ULEB_FORMS = frozenset(
    {_DW_FORM_udata, _DW_FORM_ref_udata, _DW_FORM_strx, _DW_FORM_addrx, _DW_FORM_loclistx, _DW_FORM_rnglistx,
     _DW_FORM_GNU_addr_index, _DW_FORM_GNU_str_index}
)  # fmt: skip
_OFFSET_FORMS = frozenset(
    {_DW_FORM_sec_offset, _DW_FORM_strp_sup, _DW_FORM_GNU_ref_alt, _DW_FORM_GNU_strp_alt}
)

_DW_UT_compile = 0x01
_DW_UT_type = 0x02
_DW_UT_partial = 0x03
_DW_UT_skeleton = 0x04
_DW_UT_split_compile = 0x05
_DW_UT_split_type = 0x06

_DW_LNCT_path = 0x1
_DW_LNCT_directory_index = 0x2


#: The sections read (uncompressed by pyelftools when they are SHF_COMPRESSED).
class _Sections:
    """The DWARF sections of one file, each read from its ElfImage on first use."""

    def __init__(self) -> None:
        self._image: Any = None
        self._data: dict[str, bytes | None] = {}

    def attach(self, image: Any) -> None:
        self._image = image

    def _load(self, name: str) -> bytes | None:
        if name not in self._data:
            data = self._image.section_data(name) if self._image is not None else None
            self._data[name] = data if data else None
        return self._data[name]

    @overload
    def get(self, name: str) -> bytes | None: ...

    @overload
    def get(self, name: str, default: bytes) -> bytes: ...

    def get(self, name: str, default: bytes | None = None) -> bytes | None:
        data = self._load(name)
        return default if data is None else data

    def __getitem__(self, name: str) -> bytes:
        data = self._load(name)
        if data is None:
            raise KeyError(name)
        return data

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._load(name) is not None


_SECTIONS = (
    ".debug_info", ".debug_abbrev", ".debug_line", ".debug_str", ".debug_line_str", ".debug_aranges",
    ".debug_ranges", ".debug_rnglists", ".debug_addr", ".debug_str_offsets",
)  # fmt: skip

#: Unit headers, little-endian DWARF32: (length, version), then v5's (type, address
#: size, abbrev offset) or v2-4's (abbrev offset, address size).
_UNIT_HEAD = struct.Struct("<IH")
#: An address-range set's header, little-endian DWARF32: length, version, unit
#: offset, address size, segment size.
_ARANGES_HEAD = struct.Struct("<IHIBB")
_UNIT_V5 = struct.Struct("<BBI")
_UNIT_V4 = struct.Struct("<IB")

#: The ELF type of relocatable objects: their code legitimately starts at address 0.
_ET_REL = "ET_REL"

Value = Any  # int | bytes, by form
_T = TypeVar("_T")


# ----------------------------------------------------------------- raw reading


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _sleb(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if byte & 0x40:
                result -= 1 << shift
            return result, pos


def _cstr(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.find(b"\0", pos)
    if end < 0:
        raise _Corrupt(f"unterminated string at 0x{pos:x}")
    return data[pos:end], end + 1


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class _Raw:
    """Fixed-size integer reads in the file's byte order, with bounds checks."""

    def __init__(self, little: bool) -> None:
        order = "little" if little else "big"
        self.order: Any = order

    def uint(self, data: bytes, pos: int, size: int) -> int:
        end = pos + size
        if end > len(data) or pos < 0:
            raise _Corrupt(f"read of {size} bytes at 0x{pos:x} past the end (0x{len(data):x})")
        return int.from_bytes(data[pos:end], self.order)

    def unit_length(self, data: bytes, pos: int) -> tuple[int, int, int]:
        """(length, offset_size, position after the length field)."""
        length = self.uint(data, pos, 4)
        if length == 0xFFFFFFFF:
            return self.uint(data, pos + 4, 8), 8, pos + 12
        if length >= 0xFFFFFFF0:
            raise _Corrupt(f"reserved unit length 0x{length:x} at 0x{pos:x}")
        return length, 4, pos + 4


# ----------------------------------------------------------------- units


@dataclass(slots=True)
class _Unit:
    """A .debug_info unit header, and what its top DIE says (read when first needed)."""

    offset: int
    end: int
    version: int
    unit_type: int
    offset_size: int
    addr_size: int
    abbrev_offset: int
    die_offset: int
    attrs: dict[int, tuple[int, Value]] | None = None


@dataclass(slots=True)
class _Program:
    """A line program header: its file table (resolved paths) and decoding parameters."""

    offset: int
    version: int
    address_size: int
    min_inst: int
    max_ops: int
    default_is_stmt: bool
    line_base: int
    line_range: int
    opcode_base: int
    std_lengths: list[int]
    files: list[str | None]
    program_start: int
    program_end: int
    comp_dir: str | None
    include_dirs: list[str]


@dataclass(slots=True)
class _Rows:
    """A decoded line program: intervals for ``line_at`` and is_stmt rows for ``addresses_of``."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    reach: list[int] = field(default_factory=list)  # running max of ends (intervals may overlap)
    info: list[tuple[int, int, bool]] = field(default_factory=list)  # (file index, line, is_stmt)
    #: rows gdb folds into the row before (the same line again, in a line that had a
    #: non-zero discriminator: gdb's dwarf_record_line_p); only ``line_span`` uses them
    folded: list[bool] = field(default_factory=list)
    #: (file index, line) of a statement row at the same start address as a row that
    #: is not one (what a step stops on there); None otherwise
    statement_at: list[tuple[int, int] | None] = field(default_factory=list)
    stmts: list[tuple[int, int, int]] = field(default_factory=list)  # (address, file index, line)


class LineTable:
    """The line tables of one ELF file with DWARF (its own or a separate debug file).

    Construction only records the path; the file is opened on the first question.
    Addresses are link-time addresses (subtract the load bias before asking).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._opened = False
        self._sec: _Sections = _Sections()
        self._raw = _Raw(True)
        self._relocatable = False
        self._units: list[_Unit] = []
        self._unit_at: dict[int, _Unit] = {}
        # The address index: sorted starts, their ends, the running max of ends, CU offsets.
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._reach: list[int] = []
        self._range_cu: list[int] = []
        self._indexed = False
        self._programs: dict[int, _Program] = {}
        self._rows: dict[int, _Rows] = {}
        self._all_programs: list[tuple[_Unit, _Program]] | None = None

    # ------------------------------------------------------------- public

    def line_at(self, address: int) -> SourceLine | None:
        """The row covering link-time ``address``, or None when no line table covers it."""
        self._index()
        for cu_offset in self._cus_covering(address):
            unit = self._unit_at.get(cu_offset)
            if unit is None:
                continue
            found = self._guard(unit.offset, self._lookup, unit, address)
            if found is not None:
                return found
        return None

    def section_data(self, name: str) -> bytes | None:
        """A section of the file, decompressed once and shared (``DebugInfo`` reads
        its DIEs from the same bytes the line tables come from)."""
        self._open()
        return self._sec.get(name)

    @property
    def unit_count(self) -> int:
        """The number of units in .debug_info (read with the address index)."""
        self._index()
        return len(self._units)

    def units_at(self, address: int) -> list[int]:
        """The .debug_info offsets of the CUs whose ranges hold link-time ``address``."""
        self._index()
        return self._cus_covering(address)

    def line_span(self, address: int) -> tuple[SourceLine, int, int] | None:
        """The row holding link-time ``address`` as gdb keeps it (gdb folds a repeated
        row of a line that has a discriminator into the row before) and its span
        ``[low, high)``: what one source-line step runs through. None without line
        information there."""
        self._index()
        for cu_offset in self._cus_covering(address):
            unit = self._unit_at.get(cu_offset)
            program = self._program(unit) if unit is not None else None
            if unit is None or program is None:
                continue
            rows = self._guard(unit.offset, self._decoded, unit, program)
            found = _span(rows, address)
            if found is not None:
                index, low, high = found
                file_index, line, is_stmt = rows.info[index]
                statement = rows.statement_at[index]
                if statement is not None:
                    file_index, line, is_stmt = statement[0], statement[1], True
                files = program.files
                path = files[file_index] if 0 <= file_index < len(files) else None
                return SourceLine(path or "??", line, rows.starts[index], is_stmt), low, high
        return None

    def addresses_of(self, file: str, line: int) -> list[int]:
        """Every is_stmt row address of ``file:line`` (sorted), or of the next line with code.

        ``file`` matches a file-table path exactly (absolute query) or as a path suffix
        on a ``/`` boundary (so a basename matches any directory), as gdb's ``break``.
        """
        match = _file_matcher(file)
        exact: list[int] = []
        best_line: int | None = None
        best: list[int] = []
        for unit, program in self._every_program():
            indexes = {i for i, path in enumerate(program.files) if path is not None and match(path)}
            if not indexes:
                continue
            rows = self._guard(unit.offset, self._decoded, unit, program)
            for address, file_index, row_line in rows.stmts:
                if file_index not in indexes or row_line < line:
                    continue
                if row_line == line:
                    exact.append(address)
                elif not exact:
                    if best_line is None or row_line < best_line:
                        best_line = row_line
                        best = [address]
                    elif row_line == best_line:
                        best.append(address)
        return sorted(set(exact if exact else best))

    def files(self) -> list[str]:
        """Every source file named by a CU's line-program file table (sorted, no duplicates)."""
        seen: set[str] = set()
        for _unit, program in self._every_program():
            seen.update(path for path in program.files if path is not None)
        return sorted(seen)

    # ------------------------------------------------------------- errors

    def _guard(self, cu_offset: int | None, work: Callable[..., _T], *args: Any) -> _T:
        try:
            return work(*args)
        except LineError:
            raise
        except Exception as exc:
            where = "" if cu_offset is None else f" (CU at .debug_info+0x{cu_offset:x})"
            raise LineError(f"{self.path}: bad DWARF{where}: {exc}") from exc

    # ------------------------------------------------------------- opening

    def _open(self) -> None:
        if self._opened:
            return
        # sections are read (and decompressed) when first used: a line lookup in
        # libc's debug file needs 4 of the 10, so the others cost nothing
        from lindbg.symbols.elffile import ElfImage

        try:
            image = ElfImage(self.path)
        except LindbgError as exc:
            raise LineError(f"{self.path}: not a readable ELF file: {exc}") from exc
        self._raw = _Raw(True)
        self._relocatable = image.elf_type == "REL"
        self._sec.attach(image)
        self._opened = True

    def _index(self) -> None:
        """Read the unit headers and build the address -> CU range list (once)."""
        if self._indexed:
            return
        self._open()
        self._guard(None, self._read_units)
        ranges: list[tuple[int, int, int]] = []
        covered: set[int] = set()
        if ".debug_aranges" in self._sec:
            self._guard(None, self._read_aranges, ranges, covered)
        for unit in self._units:
            if unit.offset in covered or unit.unit_type not in (_DW_UT_compile, _DW_UT_partial):
                continue
            for lo, hi in self._guard(unit.offset, self._unit_ranges, unit):
                ranges.append((lo, hi, unit.offset))
        ranges = [r for r in ranges if r[1] > r[0] and (self._relocatable or r[0] != 0)]
        ranges.sort()
        reach = 0
        for lo, hi, cu in ranges:
            reach = max(reach, hi)
            self._starts.append(lo)
            self._ends.append(hi)
            self._reach.append(reach)
            self._range_cu.append(cu)
        self._indexed = True

    def _read_units(self) -> None:
        data = self._sec.get(".debug_info", b"")
        raw = self._raw
        pos = 0
        size = len(data)
        while pos < size:
            fast = self._fast_unit(data, pos, size)
            if fast is not None:
                self._units.append(fast)
                self._unit_at[pos] = fast
                pos = fast.end
                continue
            try:
                length, offset_size, after = raw.unit_length(data, pos)
                end = after + length
                if end > len(data):
                    raise _Corrupt(f"unit length 0x{length:x} runs past the section end 0x{len(data):x}")
                version = raw.uint(data, after, 2)
                p = after + 2
                unit_type = _DW_UT_compile
                if version >= 5:
                    unit_type = raw.uint(data, p, 1)
                    addr_size = raw.uint(data, p + 1, 1)
                    abbrev_offset = raw.uint(data, p + 2, offset_size)
                    p += 2 + offset_size
                    if unit_type in (_DW_UT_skeleton, _DW_UT_split_compile):
                        p += 8
                    elif unit_type in (_DW_UT_type, _DW_UT_split_type):
                        p += 8 + offset_size
                elif version >= 2:
                    abbrev_offset = raw.uint(data, p, offset_size)
                    addr_size = raw.uint(data, p + offset_size, 1)
                    p += offset_size + 1
                else:
                    raise _Corrupt(f"unsupported DWARF version {version}")
                if p > end:
                    raise _Corrupt("unit header runs past the unit")
            except Exception as exc:
                raise LineError(f"{self.path}: bad DWARF (CU at .debug_info+0x{pos:x}): {exc}") from exc
            unit = _Unit(pos, end, version, unit_type, offset_size, addr_size, abbrev_offset, p)
            self._units.append(unit)
            self._unit_at[pos] = unit
            pos = end

    def _fast_unit(self, data: bytes, pos: int, size: int) -> _Unit | None:
        """The common unit header (little-endian DWARF32, a compile or partial unit of
        version 2-5) in one unpack; None for anything else (the general reader then
        reads it, and says what is wrong with it). libc's debug file has 2k units."""
        if self._raw.order != "little" or pos + 12 > size:
            return None
        length, version = _UNIT_HEAD.unpack_from(data, pos)
        end = pos + 4 + length
        if length >= 0xFFFFFFF0 or end > size:
            return None
        if version == 5:
            unit_type, addr_size, abbrev_offset = _UNIT_V5.unpack_from(data, pos + 6)
            if unit_type not in (_DW_UT_compile, _DW_UT_partial):
                return None
            return _Unit(pos, end, 5, unit_type, 4, addr_size, abbrev_offset, pos + 12)
        if 2 <= version <= 4:
            abbrev_offset, addr_size = _UNIT_V4.unpack_from(data, pos + 6)
            return _Unit(pos, end, version, _DW_UT_compile, 4, addr_size, abbrev_offset, pos + 11)
        return None

    def _read_aranges(self, ranges: list[tuple[int, int, int]], covered: set[int]) -> None:
        data = self._sec[".debug_aranges"]
        raw = self._raw
        pos = 0
        little = raw.order == "little"
        total = len(data)
        while pos < total:
            if little and pos + 12 <= total and data[pos : pos + 4] != b"\xff\xff\xff\xff":
                # the usual set header (DWARF32, little-endian) in one unpack
                length, _version, info_offset, addr_size, seg_size = _ARANGES_HEAD.unpack_from(data, pos)
                offset_size, after = 4, pos + 4
            else:
                length, offset_size, after = raw.unit_length(data, pos)
                info_offset = raw.uint(data, after + 2, offset_size)
                addr_size = raw.uint(data, after + 2 + offset_size, 1)
                seg_size = raw.uint(data, after + 3 + offset_size, 1)
            end = after + length
            if end > total:
                raise _Corrupt(f".debug_aranges+0x{pos:x}: set runs past the section end")
            if addr_size not in (1, 2, 4, 8):
                raise _Corrupt(f".debug_aranges+0x{pos:x}: address size {addr_size}")
            p = after + 4 + offset_size
            tuple_size = 2 * addr_size + seg_size
            p = pos + -(-(p - pos) // tuple_size) * tuple_size  # aligned from the set's start
            covered.add(info_offset)
            if addr_size == 8 and seg_size == 0:  # the usual layout: one struct pass (libc: 2k sets)
                usable = (end - p) // 16 * 16
                for start, size in struct.iter_unpack("<QQ", data[p : p + usable]):
                    if start == 0 and size == 0:
                        break
                    ranges.append((start, start + size, info_offset))
                pos = end
                continue
            while p + tuple_size <= end:
                start = raw.uint(data, p + seg_size, addr_size)
                size = raw.uint(data, p + seg_size + addr_size, addr_size)
                p += tuple_size
                if start == 0 and size == 0:
                    break
                ranges.append((start, start + size, info_offset))
            pos = end

    def _cus_covering(self, address: int) -> list[int]:
        index = bisect.bisect_right(self._starts, address) - 1
        found: list[int] = []
        while index >= 0 and self._reach[index] > address:
            if self._ends[index] > address and self._range_cu[index] not in found:
                found.append(self._range_cu[index])
            index -= 1
        return found

    # ------------------------------------------------------------- top DIEs

    def _top(self, unit: _Unit) -> dict[int, tuple[int, Value]]:
        if unit.attrs is None:
            unit.attrs = self._read_top_die(unit)
        return unit.attrs

    def _read_top_die(self, unit: _Unit) -> dict[int, tuple[int, Value]]:
        info = self._sec.get(".debug_info", b"")
        code, pos = _uleb(info, unit.die_offset)
        if code == 0:
            return {}
        attrs: dict[int, tuple[int, Value]] = {}
        for attr, form, implicit in self._abbrev(unit.abbrev_offset, code):
            if form == _DW_FORM_implicit_const:
                attrs[attr] = (form, implicit)
                continue
            value, pos = self._form(info, pos, form, unit.version, unit.addr_size, unit.offset_size)
            if pos > unit.end:
                raise _Corrupt("top DIE runs past the unit")
            attrs[attr] = (form, value)
        return attrs

    def _abbrev(self, offset: int, code: int) -> list[tuple[int, int, int]]:
        data = self._sec.get(".debug_abbrev", b"")
        pos = offset
        while True:
            entry, pos = _uleb(data, pos)
            if entry == 0:
                raise _Corrupt(f"abbreviation {code} not found at .debug_abbrev+0x{offset:x}")
            _tag, pos = _uleb(data, pos)
            pos += 1  # has-children flag
            specs: list[tuple[int, int, int]] = []
            while True:
                attr, pos = _uleb(data, pos)
                form, pos = _uleb(data, pos)
                if attr == 0 and form == 0:
                    break
                implicit = 0
                if form == _DW_FORM_implicit_const:
                    implicit, pos = _sleb(data, pos)
                specs.append((attr, form, implicit))
            if entry == code:
                return specs

    def _form(
        self, data: bytes, pos: int, form: int, version: int, addr_size: int, offset_size: int
    ) -> tuple[Value, int]:
        """One attribute value: ints for numbers, offsets and indexes; bytes for strings and blocks."""
        raw = self._raw
        size = _FIXED_SIZE.get(form)
        if size is not None:
            return raw.uint(data, pos, size), pos + size
        if form in _ULEB_FORMS:
            return _uleb(data, pos)
        if form == _DW_FORM_addr:
            return raw.uint(data, pos, addr_size), pos + addr_size
        if form == _DW_FORM_string:
            return _cstr(data, pos)
        if form == _DW_FORM_strp:
            return self._string(".debug_str", raw.uint(data, pos, offset_size)), pos + offset_size
        if form == _DW_FORM_line_strp:
            return self._string(".debug_line_str", raw.uint(data, pos, offset_size)), pos + offset_size
        if form in _OFFSET_FORMS:
            return raw.uint(data, pos, offset_size), pos + offset_size
        if form == _DW_FORM_ref_addr:
            size = addr_size if version <= 2 else offset_size
            return raw.uint(data, pos, size), pos + size
        if form == _DW_FORM_sdata:
            return _sleb(data, pos)
        if form == _DW_FORM_flag_present:
            return 1, pos
        if form in (_DW_FORM_block, _DW_FORM_exprloc):
            size, pos = _uleb(data, pos)
        elif form == _DW_FORM_block1:
            size, pos = raw.uint(data, pos, 1), pos + 1
        elif form == _DW_FORM_block2:
            size, pos = raw.uint(data, pos, 2), pos + 2
        elif form == _DW_FORM_block4:
            size, pos = raw.uint(data, pos, 4), pos + 4
        elif form == _DW_FORM_data16:
            size = 16
        elif form == _DW_FORM_indirect:
            actual, pos = _uleb(data, pos)
            if actual == _DW_FORM_indirect:
                raise _Corrupt("DW_FORM_indirect names itself")
            return self._form(data, pos, actual, version, addr_size, offset_size)
        else:
            raise _Corrupt(f"unknown attribute form 0x{form:x} at 0x{pos:x}")
        if pos + size > len(data):
            raise _Corrupt(f"block of {size} bytes at 0x{pos:x} runs past the end")
        return data[pos : pos + size], pos + size

    def _string(self, section: str, offset: int) -> bytes:
        data = self._sec.get(section)
        if data is None or offset >= len(data):
            raise _Corrupt(f"string offset 0x{offset:x} outside {section}")
        return _cstr(data, offset)[0]

    def _attr_str(self, unit: _Unit, attr: int) -> str | None:
        entry = self._top(unit).get(attr)
        if entry is None:
            return None
        form, value = entry
        if form in _STRX_FORMS:
            base_entry = self._top(unit).get(_DW_AT_str_offsets_base)
            base = base_entry[1] if base_entry is not None else 8
            offset = self._raw.uint(self._sec.get(".debug_str_offsets", b""), base + value * unit.offset_size,
                                    unit.offset_size)  # fmt: skip
            return _text(self._string(".debug_str", offset))
        if isinstance(value, bytes):
            return _text(value)
        return None

    def _attr_addr(self, unit: _Unit, form: int, value: Value) -> int:
        if form in _ADDRX_FORMS:
            top = self._top(unit)
            base_entry = top.get(_DW_AT_addr_base) or top.get(_DW_AT_GNU_addr_base)
            base = base_entry[1] if base_entry is not None else 8
            return self._raw.uint(
                self._sec.get(".debug_addr", b""), base + value * unit.addr_size, unit.addr_size
            )
        return int(value)

    def _unit_ranges(self, unit: _Unit) -> list[tuple[int, int]]:
        """The top DIE's address ranges (DW_AT_low_pc/high_pc or DW_AT_ranges)."""
        top = self._top(unit)
        low_entry = top.get(_DW_AT_low_pc)
        low = self._attr_addr(unit, *low_entry) if low_entry is not None else None
        ranges_entry = top.get(_DW_AT_ranges)
        if ranges_entry is not None:
            return self._debug_ranges(unit, ranges_entry[0], ranges_entry[1], low or 0)
        high_entry = top.get(_DW_AT_high_pc)
        if low is None or high_entry is None:
            return []
        form, value = high_entry
        high = low + int(value) if form in _CONSTANT_FORMS else self._attr_addr(unit, form, value)
        return [(low, high)]

    def _debug_ranges(self, unit: _Unit, form: int, value: int, base: int) -> list[tuple[int, int]]:
        raw = self._raw
        size = unit.addr_size
        out: list[tuple[int, int]] = []
        if unit.version < 5:
            data = self._sec.get(".debug_ranges", b"")
            top_base = self._top(unit).get(_DW_AT_GNU_ranges_base)
            pos = value + (top_base[1] if top_base is not None else 0)
            all_ones = (1 << (8 * size)) - 1
            while True:
                start = raw.uint(data, pos, size)
                end = raw.uint(data, pos + size, size)
                pos += 2 * size
                if start == 0 and end == 0:
                    return out
                if start == all_ones:
                    base = end
                else:
                    out.append((base + start, base + end))
        data = self._sec.get(".debug_rnglists", b"")
        if form == _DW_FORM_rnglistx:
            base_entry = self._top(unit).get(_DW_AT_rnglists_base)
            table = base_entry[1] if base_entry is not None else 12
            pos = table + raw.uint(data, table + value * unit.offset_size, unit.offset_size)
        else:
            pos = value

        def addrx(index: int) -> int:
            return self._attr_addr(unit, _DW_FORM_addrx, index)

        while True:
            kind = raw.uint(data, pos, 1)
            pos += 1
            if kind == 0:  # DW_RLE_end_of_list
                return out
            if kind == 1:  # base_addressx
                index, pos = _uleb(data, pos)
                base = addrx(index)
            elif kind in (2, 3):  # startx_endx, startx_length
                index, pos = _uleb(data, pos)
                other, pos = _uleb(data, pos)
                start = addrx(index)
                out.append((start, addrx(other) if kind == 2 else start + other))
            elif kind == 4:  # offset_pair
                start, pos = _uleb(data, pos)
                end, pos = _uleb(data, pos)
                out.append((base + start, base + end))
            elif kind == 5:  # base_address
                base, pos = raw.uint(data, pos, size), pos + size
            elif kind == 6:  # start_end
                out.append((raw.uint(data, pos, size), raw.uint(data, pos + size, size)))
                pos += 2 * size
            elif kind == 7:  # start_length
                start = raw.uint(data, pos, size)
                length, pos = _uleb(data, pos + size)
                out.append((start, start + length))
            else:
                raise _Corrupt(f"unknown range list entry kind {kind} at .debug_rnglists+0x{pos - 1:x}")

    # ------------------------------------------------------------- line programs

    def _every_program(self) -> list[tuple[_Unit, _Program]]:
        """Every CU with a line program, its header read (not its rows)."""
        if self._all_programs is None:
            self._index()
            found: list[tuple[_Unit, _Program]] = []
            seen: set[int] = set()
            for unit in self._units:
                program = self._guard(unit.offset, self._program, unit)
                if program is not None and program.offset not in seen:
                    seen.add(program.offset)
                    found.append((unit, program))
            self._all_programs = found
        return self._all_programs

    def _program(self, unit: _Unit) -> _Program | None:
        if unit.unit_type not in (_DW_UT_compile, _DW_UT_partial, _DW_UT_skeleton):
            return None
        entry = self._top(unit).get(_DW_AT_stmt_list)
        if entry is None or ".debug_line" not in self._sec:
            return None
        offset = int(entry[1])
        program = self._programs.get(offset)
        if program is None:
            program = self._read_program(unit, offset)
            self._programs[offset] = program
        return program

    def _read_program(self, unit: _Unit, offset: int) -> _Program:
        data = self._sec[".debug_line"]
        raw = self._raw
        length, offset_size, pos = raw.unit_length(data, offset)
        end = pos + length
        if end > len(data):
            raise _Corrupt(f"line program at .debug_line+0x{offset:x} runs past the section end")
        version = raw.uint(data, pos, 2)
        pos += 2
        if not 2 <= version <= 5:
            raise _Corrupt(f"unsupported line table version {version} at .debug_line+0x{offset:x}")
        address_size = unit.addr_size
        if version >= 5:
            address_size = raw.uint(data, pos, 1)
            pos += 2  # address_size, segment_selector_size
        header_length = raw.uint(data, pos, offset_size)
        pos += offset_size
        program_start = pos + header_length
        min_inst = raw.uint(data, pos, 1)
        pos += 1
        max_ops = 1
        if version >= 4:
            max_ops = raw.uint(data, pos, 1) or 1
            pos += 1
        default_is_stmt = bool(raw.uint(data, pos, 1))
        line_base = raw.uint(data, pos + 1, 1)
        line_base -= 256 if line_base >= 128 else 0
        line_range = raw.uint(data, pos + 2, 1)
        opcode_base = raw.uint(data, pos + 3, 1)
        pos += 4
        if line_range == 0:
            raise _Corrupt(f"line_range 0 in the line program at .debug_line+0x{offset:x}")
        std_lengths = list(data[pos : pos + max(opcode_base - 1, 0)])
        pos += max(opcode_base - 1, 0)
        if program_start > end or pos > end:
            raise _Corrupt(f"line program header at .debug_line+0x{offset:x} runs past its unit")
        comp_dir = self._attr_str(unit, _DW_AT_comp_dir)
        files: list[str | None]
        if version >= 5:
            dir_entries, pos = self._entries(data, pos, end, unit, offset_size)
            dirs = [path for path, _index in dir_entries]
            # DWARF 5: directory 0 *is* the compilation directory; the others are
            # relative to it (joining comp_dir again would double a relative one)
            base = dirs[0] if dirs else (comp_dir or "")
            dirs = [base] + [_join(None, base, d) if base else d for d in dirs[1:]]
            file_entries, pos = self._entries(data, pos, end, unit, offset_size)
            files = []
            for path, index in file_entries:
                directory = dirs[index] if 0 <= index < len(dirs) else base
                files.append(_join(None, directory, path))
            include_dirs = dirs
        else:
            include_dirs = [comp_dir or ""]
            while True:
                name, pos = _cstr(data, pos)
                if not name:
                    break
                include_dirs.append(_text(name))
            files = [None]
            while True:
                name, pos = _cstr(data, pos)
                if not name:
                    break
                index, pos = _uleb(data, pos)
                _mtime, pos = _uleb(data, pos)
                _size, pos = _uleb(data, pos)
                directory = include_dirs[index] if index < len(include_dirs) else ""
                files.append(_join(comp_dir, directory, _text(name)))
            if pos > program_start:
                raise _Corrupt(f"file table at .debug_line+0x{offset:x} runs past the header")
        return _Program(
            offset, version, address_size, min_inst, max_ops, default_is_stmt, line_base, line_range,
            opcode_base, std_lengths, files, program_start, end, comp_dir, include_dirs,
        )  # fmt: skip

    def _entries(
        self, data: bytes, pos: int, end: int, unit: _Unit, offset_size: int
    ) -> tuple[list[tuple[str, int]], int]:
        """DWARF 5 directory or file entries: (path, directory index)."""
        raw = self._raw
        count = raw.uint(data, pos, 1)
        pos += 1
        formats: list[tuple[int, int]] = []
        for _ in range(count):
            kind, pos = _uleb(data, pos)
            form, pos = _uleb(data, pos)
            formats.append((kind, form))
        entries, pos = _uleb(data, pos)
        if entries and (not formats or entries > end - pos):
            raise _Corrupt(f"{entries} line table entries cannot fit in their unit")
        out: list[tuple[str, int]] = []
        for _ in range(entries):
            path = ""
            index = 0
            for kind, form in formats:
                value, pos = self._form(data, pos, form, 5, unit.addr_size, offset_size)
                if pos > end:
                    raise _Corrupt("line table entry runs past its unit")
                if kind == _DW_LNCT_path:
                    if form in _STRX_FORMS:
                        base_entry = self._top(unit).get(_DW_AT_str_offsets_base)
                        base = base_entry[1] if base_entry is not None else 8
                        string_offset = raw.uint(self._sec.get(".debug_str_offsets", b""),
                                                 base + value * offset_size, offset_size)  # fmt: skip
                        value = self._string(".debug_str", string_offset)
                    path = _text(value) if isinstance(value, bytes) else ""
                elif kind == _DW_LNCT_directory_index and isinstance(value, int):
                    index = value
            out.append((path, index))
        return out, pos

    def _decoded(self, unit: _Unit, program: _Program) -> _Rows:
        rows = self._rows.get(program.offset)
        if rows is None:
            rows = self._decode(program)
            self._rows[program.offset] = rows
        return rows

    def _decode(self, program: _Program) -> _Rows:
        data = self._sec[".debug_line"]
        raw = self._raw
        pos = program.program_start
        end = program.program_end
        opcode_base = program.opcode_base
        line_base = program.line_base
        line_range = program.line_range
        min_inst = program.min_inst
        max_ops = program.max_ops
        std_lengths = program.std_lengths
        const_add = (255 - opcode_base) // line_range
        skip_zero = not self._relocatable

        intervals: list[tuple[int, int, int, int, bool, bool, tuple[int, int] | None]] = []
        stmts: list[tuple[int, int, int]] = []
        sequence: list[tuple[int, int, int, bool, bool]] = []  # (address, file, line, is_stmt, folded)
        # gdb's folding of repeated lines (see _Rows.folded)
        discriminator = 0
        line_had_discriminator = False
        last_file_line: tuple[int, int] | None = None

        def emit() -> None:
            nonlocal discriminator, last_file_line
            folded = last_file_line == (file, line) and line_had_discriminator
            sequence.append((address, file, line, is_stmt, folded))
            last_file_line = (file, line)
            discriminator = 0

        def moved_line(delta: int) -> None:
            nonlocal line_had_discriminator
            if delta:
                line_had_discriminator = discriminator != 0

        address = 0
        op_index = 0
        file = 1
        line = 1
        is_stmt = program.default_is_stmt

        def finish(end_address: int) -> None:
            if not sequence:
                return
            first = sequence[0][0]
            top = (1 << (8 * program.address_size)) - 2
            if (skip_zero and first == 0) or first >= top:
                return  # a discarded function (linker tombstone)
            count = len(sequence)
            # As gdb: rows of a file that the next file takes over at the same address hold
            # no code (so `file:line` does not land on them), nor do rows at the very end.
            empty = [False] * count
            for i in range(1, count + 1):
                at = sequence[i][0] if i < count else end_address
                if i < count and sequence[i][1] == sequence[i - 1][1]:
                    continue
                j = i - 1
                while j >= 0 and sequence[j][0] == at and sequence[j][1] == sequence[i - 1][1]:
                    empty[j] = True
                    j -= 1
            stmt_here: tuple[int, int] | None = None  # (file, line) of a statement row at this address
            for i, (row_address, row_file, row_line, row_stmt, row_folded) in enumerate(sequence):
                nxt = sequence[i + 1][0] if i + 1 < count else end_address
                if row_stmt:
                    stmt_here = (row_file, row_line)
                if nxt > row_address:
                    # several rows at one address, the last not a statement: a step
                    # takes the statement row among them, as gdb's find_pc_sect_line
                    alternative = stmt_here if not row_stmt else None
                    intervals.append(
                        (row_address, nxt, row_file, row_line, row_stmt, row_folded, alternative)
                    )
                if nxt != row_address:
                    stmt_here = None
                if row_stmt and row_line and not empty[i]:
                    stmts.append((row_address, row_file, row_line))

        def advance(operation: int) -> None:
            nonlocal address, op_index
            if max_ops == 1:
                address += min_inst * operation
            else:
                total = op_index + operation
                address += min_inst * (total // max_ops)
                op_index = total % max_ops

        while pos < end:
            opcode = data[pos]
            pos += 1
            if opcode >= opcode_base:
                adjusted = opcode - opcode_base
                advance(adjusted // line_range)
                delta = line_base + adjusted % line_range
                moved_line(delta)
                line += delta
                emit()
            elif opcode == 0:
                length, pos = _uleb(data, pos)
                if length == 0:
                    continue
                sub = data[pos]
                next_pos = pos + length
                if next_pos > end:
                    raise _Corrupt(f"extended opcode at .debug_line+0x{pos:x} runs past the program")
                if sub == 1:  # DW_LNE_end_sequence
                    finish(address)
                    sequence = []
                    address = 0
                    op_index = 0
                    file = 1
                    line = 1
                    is_stmt = program.default_is_stmt
                    discriminator = 0
                    line_had_discriminator = False
                    last_file_line = None
                elif sub == 2:  # DW_LNE_set_address
                    address = raw.uint(data, pos + 1, length - 1)
                    op_index = 0
                elif sub == 3:  # DW_LNE_define_file (DWARF <= 4)
                    name, p = _cstr(data, pos + 1)
                    index, p = _uleb(data, p)
                    dirs = program.include_dirs
                    directory = dirs[index] if index < len(dirs) else ""
                    program.files.append(_join(program.comp_dir, directory, _text(name)))
                elif sub == 4:  # DW_LNE_set_discriminator
                    discriminator, _p = _uleb(data, pos + 1)
                    line_had_discriminator = line_had_discriminator or discriminator != 0
                pos = next_pos
            elif opcode == 1:  # DW_LNS_copy
                emit()
            elif opcode == 2:  # DW_LNS_advance_pc
                operand, pos = _uleb(data, pos)
                advance(operand)
            elif opcode == 3:  # DW_LNS_advance_line
                delta, pos = _sleb(data, pos)
                moved_line(delta)
                line += delta
            elif opcode == 4:  # DW_LNS_set_file
                file, pos = _uleb(data, pos)
            elif opcode == 5:  # DW_LNS_set_column
                _column, pos = _uleb(data, pos)
            elif opcode == 6:  # DW_LNS_negate_stmt
                is_stmt = not is_stmt
            elif opcode == 8:  # DW_LNS_const_add_pc
                advance(const_add)
            elif opcode == 9:  # DW_LNS_fixed_advance_pc
                address += raw.uint(data, pos, 2)
                op_index = 0
                pos += 2
            elif opcode in (7, 10, 11):  # basic_block, prologue_end, epilogue_begin
                pass
            else:  # DW_LNS_set_isa (12) and opcodes this reader does not know: skip operands
                for _ in range(std_lengths[opcode - 1]):
                    _operand, pos = _uleb(data, pos)
        if pos > end:
            raise _Corrupt(f"line program at .debug_line+0x{program.offset:x} runs past its unit")
        if sequence:
            raise _Corrupt(f"line program at .debug_line+0x{program.offset:x} ends inside a sequence")

        intervals.sort(key=lambda item: item[0])
        rows = _Rows()
        reach = 0
        for start, stop, row_file, row_line, row_stmt, row_folded, alternative in intervals:
            reach = max(reach, stop)
            rows.starts.append(start)
            rows.ends.append(stop)
            rows.reach.append(reach)
            rows.info.append((row_file, row_line, row_stmt))
            rows.folded.append(row_folded)
            rows.statement_at.append(alternative)
        rows.stmts = stmts
        return rows

    def _lookup(self, unit: _Unit, address: int) -> SourceLine | None:
        program = self._program(unit)
        if program is None:
            return None
        rows = self._decoded(unit, program)
        index = bisect.bisect_right(rows.starts, address) - 1
        while index >= 0 and rows.reach[index] > address:
            if rows.ends[index] > address:
                file_index, line, is_stmt = rows.info[index]
                files = program.files
                path = files[file_index] if 0 <= file_index < len(files) else None
                return SourceLine(path if path is not None else "??", line, rows.starts[index], is_stmt)
            index -= 1
        return None


def _span(rows: _Rows, address: int) -> tuple[int, int, int] | None:
    """(row index, low, high): the row holding ``address`` as gdb keeps it, with the
    rows gdb folds into it (see ``_Rows.folded``): what one line step runs through."""
    index = bisect.bisect_right(rows.starts, address) - 1
    if index < 0 or rows.ends[index] <= address:
        return None
    first = index
    while first > 0 and rows.folded[first] and rows.ends[first - 1] == rows.starts[first]:
        first -= 1
    last = index
    while last + 1 < len(rows.starts) and rows.folded[last + 1] and rows.starts[last + 1] == rows.ends[last]:
        last += 1
    return first, rows.starts[first], rows.ends[last]


def _join(comp_dir: str | None, directory: str, name: str) -> str:
    path = posixpath.join(directory, name) if directory else name
    if not path.startswith("/") and comp_dir:
        path = posixpath.join(comp_dir, path)
    return posixpath.normpath(path) if path else path


def _file_matcher(query: str) -> Callable[[str], bool]:
    wanted = posixpath.normpath(query)
    if wanted.startswith("/"):
        return lambda path: path == wanted
    suffix = "/" + wanted
    return lambda path: path == wanted or path.endswith(suffix)
