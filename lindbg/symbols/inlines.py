"""Inlined calls from DWARF (``DW_TAG_inlined_subroutine``), one function at a time.

As ``lindbg.symbols.lines`` (whose raw DWARF reader this module reuses: unit headers,
the ``.debug_aranges`` index, attribute forms, range lists, line-program file tables),
nothing here walks a whole module (PERF.md "Symbols"). An address is mapped to its
compilation unit (CU) through ``.debug_aranges``; the CU's *top-level* DIEs are read
once (subtrees skipped through ``DW_AT_sibling`` where the producer gave it) into a
sorted range index of its ``DW_TAG_subprogram`` DIEs; the subtree of the one
subprogram containing the address is then read once into a sorted range index of its
inlined calls. Both indexes are kept, and bisected for later questions.

Malformed DWARF raises ``LineError`` (the error of ``lindbg.symbols.lines``) naming the
file and the CU, never another exception.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from lindbg.symbols import lines as _l
from lindbg.symbols.lines import LineError, LineTable

__all__ = ["InlineTable", "InlinedCall", "LineError"]


@dataclass(frozen=True, slots=True)
class InlinedCall:
    """One inlined call containing an address: ``name`` is the inlined function,
    ``call_file``/``call_line`` where it was called from (in its caller, which is the
    next entry of the chain or the out-of-line function), ``low`` the link-time start
    of the inlined range that contains the address."""

    name: str
    call_file: str
    call_line: int
    low: int


# DWARF constants used here (those lines.py does not already name).
_DW_TAG_inlined_subroutine = 0x1D
_DW_TAG_subprogram = 0x2E
_DW_TAG_namespace = 0x39

_DW_AT_sibling = 0x01
_DW_AT_abstract_origin = 0x31
_DW_AT_specification = 0x47
_DW_AT_call_file = 0x58
_DW_AT_call_line = 0x59

_REF_CU_FORMS = frozenset({_l._DW_FORM_ref1, _l._DW_FORM_ref2, _l._DW_FORM_ref4, _l._DW_FORM_ref8,
                           _l._DW_FORM_ref_udata})  # fmt: skip

# How ``_skip`` passes over one attribute value: a byte count (>= 0), or one of these kinds.
_SKIP_ULEB = -1
_SKIP_CSTR = -2
_SKIP_BLOCK_ULEB = -5
_SKIP_BLOCK1 = -6
_SKIP_BLOCK2 = -7
_SKIP_BLOCK4 = -8
_SKIP_INDIRECT = -9

_MAX_ORIGIN_HOPS = 16


@dataclass(slots=True)
class _Abbrev:
    tag: int
    children: bool
    specs: list[tuple[int, int, int]]  # (attribute, form, implicit constant)
    skips: list[int]  # per attribute: a byte count (>= 0) or a _SKIP_* kind
    fixed: int | None  # the byte count of every attribute together, when all are fixed


@dataclass(slots=True)
class _Ranges:
    """Sorted ranges with the running maximum of their ends, each naming an item."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    reach: list[int] = field(default_factory=list)
    item: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, triples: list[tuple[int, int, int]]) -> _Ranges:
        out = cls()
        reach = 0
        for lo, hi, item in sorted(triples):
            reach = max(reach, hi)
            out.starts.append(lo)
            out.ends.append(hi)
            out.reach.append(reach)
            out.item.append(item)
        return out

    def containing(self, address: int) -> list[tuple[int, int]]:
        """(item, range start) of every range containing ``address``."""
        index = bisect.bisect_right(self.starts, address) - 1
        found: list[tuple[int, int]] = []
        while index >= 0 and self.reach[index] > address:
            if self.ends[index] > address:
                found.append((self.item[index], self.starts[index]))
            index -= 1
        return found


@dataclass(slots=True)
class _Inline:
    depth: int
    origin: int | None  # .debug_info offset of the abstract origin
    call_file: int | None
    call_line: int


@dataclass(slots=True)
class _Function:
    offset: int  # .debug_info offset of the subprogram DIE
    children: int | None  # where its children start (None: it has none)
    inlines: list[_Inline] | None = None
    index: _Ranges | None = None


@dataclass(slots=True)
class _CuIndex:
    functions: list[_Function]
    index: _Ranges


class InlineTable:
    """The inlined calls of one ELF file with DWARF (its own or a separate debug file).

    Construction only records the path; the file is opened on the first question.
    Addresses are link-time addresses (subtract the load bias before asking).
    """

    def __init__(self, path: str, lines: LineTable | None = None) -> None:
        """``lines``: the LineTable of the same file, to share its decoded sections
        and indexes (each is read and decompressed once) instead of a second reader."""
        self.path = path
        self._lines = lines if lines is not None and lines.path == path else LineTable(path)
        self._abbrevs: dict[tuple[int, int, int, bool], dict[int, _Abbrev]] = {}
        self._cus: dict[int, _CuIndex] = {}
        self._names: dict[int, str | None] = {}
        self._unit_starts: list[int] | None = None

    # ------------------------------------------------------------- public

    def inlined_at(self, address: int) -> list[InlinedCall]:
        """The inlined calls whose ranges contain link-time ``address``, innermost first."""
        for unit, function in self._functions_at(address):
            found = self._lines._guard(unit.offset, self._chain, unit, function, address)
            if found:
                return found
        return []

    def function_at(self, address: int) -> str | None:
        """The name DWARF gives the out-of-line function containing ``address`` (None: none)."""
        for unit, function in self._functions_at(address):
            name = self._lines._guard(unit.offset, self._name_of, function.offset)
            if name is not None:
                return name
        return None

    # ------------------------------------------------------------- CUs and functions

    def _functions_at(self, address: int) -> list[tuple[_l._Unit, _Function]]:
        lines = self._lines
        lines._index()
        out: list[tuple[_l._Unit, _Function]] = []
        for cu_offset in lines._cus_covering(address):
            unit = lines._unit_at.get(cu_offset)
            if unit is None:
                continue
            cu = self._cus.get(unit.offset)
            if cu is None:
                cu = lines._guard(unit.offset, self._read_cu, unit)
                self._cus[unit.offset] = cu
            # Innermost (latest starting) first, should subprograms nest.
            for item, _start in sorted(cu.index.containing(address), key=lambda found: -found[1]):
                out.append((unit, cu.functions[item]))
        return out

    def _read_cu(self, unit: _l._Unit) -> _CuIndex:
        """The subprograms among the CU's top-level DIEs (and inside namespaces)."""
        functions: list[_Function] = []
        triples: list[tuple[int, int, int]] = []
        info = self._lines._sec.get(".debug_info", b"")
        abbrevs = self._abbrev_table(unit)
        pos = unit.die_offset
        code, pos = _l._uleb(info, pos)
        if code == 0:
            return _CuIndex(functions, _Ranges())
        top = abbrevs[code]
        pos = self._skip(info, pos, top, unit)
        if not top.children:
            return _CuIndex(functions, _Ranges())
        depth = 1  # the depth of the DIEs read next; only namespaces are entered
        while depth > 0:
            if pos >= unit.end:
                raise _l._Corrupt("DIE tree runs past the unit")
            die = pos
            code, pos = _l._uleb(info, pos)
            if code == 0:
                depth -= 1
                continue
            abbrev = abbrevs.get(code)
            if abbrev is None:
                raise _l._Corrupt(f"DIE at 0x{die:x} uses undefined abbreviation {code}")
            if abbrev.tag == _DW_TAG_namespace and abbrev.children:
                pos = self._skip(info, pos, abbrev, unit)
                depth += 1
                continue
            if abbrev.tag != _DW_TAG_subprogram:
                pos = self._skip(info, pos, abbrev, unit)
                if abbrev.children:
                    pos = self._skip_children(info, pos, unit, abbrevs)
                continue
            attrs, pos = self._attrs(info, pos, abbrev, unit)
            ranges = self._ranges(unit, attrs)
            if ranges:
                item = len(functions)
                functions.append(_Function(die, pos if abbrev.children else None))
                triples.extend((lo, hi, item) for lo, hi in ranges)
            if abbrev.children:
                sibling = attrs.get(_DW_AT_sibling)
                target = self._ref(unit, *sibling) if sibling is not None else None
                if target is not None and pos <= target <= unit.end:
                    pos = target
                else:
                    pos = self._skip_children(info, pos, unit, abbrevs)
        return _CuIndex(functions, _Ranges.of(triples))

    def _chain(self, unit: _l._Unit, function: _Function, address: int) -> list[InlinedCall]:
        if function.index is None:
            self._read_function(unit, function)
        inlines = function.inlines
        assert function.index is not None and inlines is not None
        found = function.index.containing(address)
        found.sort(key=lambda item: -inlines[item[0]].depth)
        program = self._lines._program(unit)
        files = program.files if program is not None else []
        chain: list[InlinedCall] = []
        for item, low in found:
            inline = inlines[item]
            name = self._name_of(inline.origin) if inline.origin is not None else None
            path = None
            if inline.call_file is not None and 0 <= inline.call_file < len(files):
                path = files[inline.call_file]
            chain.append(InlinedCall(name or "??", path or "??", inline.call_line, low))
        return chain

    def _read_function(self, unit: _l._Unit, function: _Function) -> None:
        """Index every inlined call in the subprogram's subtree (once)."""
        inlines: list[_Inline] = []
        triples: list[tuple[int, int, int]] = []
        if function.children is not None:
            info = self._lines._sec.get(".debug_info", b"")
            abbrevs = self._abbrev_table(unit)
            pos = function.children
            depth = 1
            while depth > 0:
                if pos >= unit.end:
                    raise _l._Corrupt("DIE tree runs past the unit")
                die = pos
                code, pos = _l._uleb(info, pos)
                if code == 0:
                    depth -= 1
                    continue
                abbrev = abbrevs.get(code)
                if abbrev is None:
                    raise _l._Corrupt(f"DIE at 0x{die:x} uses undefined abbreviation {code}")
                if abbrev.tag == _DW_TAG_inlined_subroutine:
                    attrs, pos = self._attrs(info, pos, abbrev, unit)
                    origin = attrs.get(_DW_AT_abstract_origin)
                    call_file = attrs.get(_DW_AT_call_file)
                    call_line = attrs.get(_DW_AT_call_line)
                    item = len(inlines)
                    inlines.append(
                        _Inline(
                            depth,
                            self._ref(unit, *origin) if origin is not None else None,
                            int(call_file[1]) if call_file is not None else None,
                            int(call_line[1]) if call_line is not None else 0,
                        )
                    )
                    triples.extend((lo, hi, item) for lo, hi in self._ranges(unit, attrs))
                else:
                    pos = self._skip(info, pos, abbrev, unit)
                if abbrev.children:
                    depth += 1
        function.inlines = inlines
        function.index = _Ranges.of(triples)

    # ------------------------------------------------------------- names

    def _name_of(self, offset: int) -> str | None:
        """DW_AT_name of the DIE at .debug_info ``offset``, through its abstract origin
        or specification when it has none itself."""
        hops: list[int] = []
        name: str | None = None
        while offset not in self._names and len(hops) < _MAX_ORIGIN_HOPS:
            hops.append(offset)
            unit = self._unit_of(offset)
            info = self._lines._sec.get(".debug_info", b"")
            code, pos = _l._uleb(info, offset)
            abbrev = self._abbrev_table(unit).get(code)
            if abbrev is None:
                raise _l._Corrupt(f"DIE at 0x{offset:x} uses undefined abbreviation {code}")
            attrs, _pos = self._attrs(info, pos, abbrev, unit)
            entry = attrs.get(_l._DW_AT_name)
            if entry is not None:
                name = self._string(unit, *entry)
                break
            origin = attrs.get(_DW_AT_abstract_origin) or attrs.get(_DW_AT_specification)
            target = self._ref(unit, *origin) if origin is not None else None
            if target is None or target in hops:
                break
            offset = target
        else:
            name = self._names.get(offset)
        for hop in hops:
            self._names[hop] = name
        return name

    def _unit_of(self, offset: int) -> _l._Unit:
        units = self._lines._units
        if self._unit_starts is None:
            self._unit_starts = [unit.offset for unit in units]
        index = bisect.bisect_right(self._unit_starts, offset) - 1
        if index < 0 or offset >= units[index].end:
            raise _l._Corrupt(f"reference to .debug_info+0x{offset:x} is outside every unit")
        return units[index]

    def _string(self, unit: _l._Unit, form: int, value: _l.Value) -> str | None:
        if form in _l._STRX_FORMS:
            base_entry = self._lines._top(unit).get(_l._DW_AT_str_offsets_base)
            base = base_entry[1] if base_entry is not None else 8
            size = unit.offset_size
            offset = self._lines._raw.uint(self._lines._sec.get(".debug_str_offsets", b""),
                                           base + value * size, size)  # fmt: skip
            return _l._text(self._lines._string(".debug_str", offset))
        if isinstance(value, bytes):
            return _l._text(value)
        return None

    # ------------------------------------------------------------- attributes

    def _ref(self, unit: _l._Unit, form: int, value: _l.Value) -> int | None:
        """The .debug_info offset a reference attribute names (None: another file or a type unit)."""
        if form in _REF_CU_FORMS:
            return unit.offset + int(value)
        if form == _l._DW_FORM_ref_addr:
            return int(value)
        return None

    def _ranges(self, unit: _l._Unit, attrs: dict[int, tuple[int, _l.Value]]) -> list[tuple[int, int]]:
        lines = self._lines
        ranges_entry = attrs.get(_l._DW_AT_ranges)
        if ranges_entry is not None:
            base_entry = lines._top(unit).get(_l._DW_AT_low_pc)
            base = lines._attr_addr(unit, *base_entry) if base_entry is not None else 0
            found = lines._debug_ranges(unit, ranges_entry[0], int(ranges_entry[1]), base)
        else:
            low_entry = attrs.get(_l._DW_AT_low_pc)
            high_entry = attrs.get(_l._DW_AT_high_pc)
            if low_entry is None or high_entry is None:
                return []
            low = lines._attr_addr(unit, *low_entry)
            form, value = high_entry
            high = low + int(value) if form in _l._CONSTANT_FORMS else lines._attr_addr(unit, form, value)
            found = [(low, high)]
        return [(lo, hi) for lo, hi in found if hi > lo and (lines._relocatable or lo != 0)]

    def _attrs(
        self, info: bytes, pos: int, abbrev: _Abbrev, unit: _l._Unit
    ) -> tuple[dict[int, tuple[int, _l.Value]], int]:
        attrs: dict[int, tuple[int, _l.Value]] = {}
        form_of = self._lines._form
        for attr, form, implicit in abbrev.specs:
            if form == _l._DW_FORM_implicit_const:
                attrs[attr] = (form, implicit)
                continue
            value, pos = form_of(info, pos, form, unit.version, unit.addr_size, unit.offset_size)
            attrs[attr] = (form, value)
        if pos > unit.end:
            raise _l._Corrupt("DIE runs past the unit")
        return attrs, pos

    def _skip(self, info: bytes, pos: int, abbrev: _Abbrev, unit: _l._Unit) -> int:
        """The position after the DIE's attributes, without decoding their values."""
        if abbrev.fixed is not None:
            return pos + abbrev.fixed
        for size in abbrev.skips:
            if size >= 0:
                pos += size
            elif size == _SKIP_ULEB:
                while info[pos] & 0x80:
                    pos += 1
                pos += 1
            elif size == _SKIP_CSTR:
                end = info.find(b"\0", pos)
                if end < 0:
                    raise _l._Corrupt(f"unterminated string at 0x{pos:x}")
                pos = end + 1
            elif size == _SKIP_BLOCK_ULEB:
                length, pos = _l._uleb(info, pos)
                pos += length
            elif size == _SKIP_BLOCK1:
                pos += 1 + info[pos]
            elif size == _SKIP_BLOCK2:
                pos += 2 + self._lines._raw.uint(info, pos, 2)
            elif size == _SKIP_BLOCK4:
                pos += 4 + self._lines._raw.uint(info, pos, 4)
            else:  # _SKIP_INDIRECT
                form, pos = _l._uleb(info, pos)
                _value, pos = self._lines._form(info, pos, form, unit.version, unit.addr_size,
                                                unit.offset_size)  # fmt: skip
        if pos > unit.end:
            raise _l._Corrupt("DIE runs past the unit")
        return pos

    def _skip_children(self, info: bytes, pos: int, unit: _l._Unit, abbrevs: dict[int, _Abbrev]) -> int:
        """The position after a DIE's children (``pos`` is where they start)."""
        depth = 1
        while depth > 0:
            if pos >= unit.end:
                raise _l._Corrupt("DIE tree runs past the unit")
            code, pos = _l._uleb(info, pos)
            if code == 0:
                depth -= 1
                continue
            abbrev = abbrevs.get(code)
            if abbrev is None:
                raise _l._Corrupt(f"DIE at 0x{pos:x} uses undefined abbreviation {code}")
            pos = self._skip(info, pos, abbrev, unit)
            if abbrev.children:
                depth += 1
        return pos

    # ------------------------------------------------------------- abbreviations

    def _abbrev_table(self, unit: _l._Unit) -> dict[int, _Abbrev]:
        key = (unit.abbrev_offset, unit.addr_size, unit.offset_size, unit.version <= 2)
        table = self._abbrevs.get(key)
        if table is None:
            table = self._read_abbrevs(unit)
            self._abbrevs[key] = table
        return table

    def _read_abbrevs(self, unit: _l._Unit) -> dict[int, _Abbrev]:
        data = self._lines._sec.get(".debug_abbrev", b"")
        pos = unit.abbrev_offset
        table: dict[int, _Abbrev] = {}
        while True:
            code, pos = _l._uleb(data, pos)
            if code == 0:
                return table
            tag, pos = _l._uleb(data, pos)
            children = data[pos] != 0
            pos += 1
            specs: list[tuple[int, int, int]] = []
            skips: list[int] = []
            while True:
                attr, pos = _l._uleb(data, pos)
                form, pos = _l._uleb(data, pos)
                if attr == 0 and form == 0:
                    break
                implicit = 0
                if form == _l._DW_FORM_implicit_const:
                    implicit, pos = _l._sleb(data, pos)
                specs.append((attr, form, implicit))
                skips.append(_skip_kind(form, unit))
            fixed = sum(skips) if all(size >= 0 for size in skips) else None
            table[code] = _Abbrev(tag, children, specs, skips, fixed)


def _skip_kind(form: int, unit: _l._Unit) -> int:
    size = _l._FIXED_SIZE.get(form)
    if size is not None:
        return size
    if form in _l._ULEB_FORMS or form == _l._DW_FORM_sdata:
        return _SKIP_ULEB
    if form in (_l._DW_FORM_flag_present, _l._DW_FORM_implicit_const):
        return 0
    if form == _l._DW_FORM_data16:
        return 16
    if form == _l._DW_FORM_addr:
        return unit.addr_size
    if form in _l._OFFSET_FORMS or form in (_l._DW_FORM_strp, _l._DW_FORM_line_strp):
        return unit.offset_size
    if form == _l._DW_FORM_ref_addr:
        return unit.addr_size if unit.version <= 2 else unit.offset_size
    if form == _l._DW_FORM_string:
        return _SKIP_CSTR
    if form in (_l._DW_FORM_block, _l._DW_FORM_exprloc):
        return _SKIP_BLOCK_ULEB
    if form == _l._DW_FORM_block1:
        return _SKIP_BLOCK1
    if form == _l._DW_FORM_block2:
        return _SKIP_BLOCK2
    if form == _l._DW_FORM_block4:
        return _SKIP_BLOCK4
    if form == _l._DW_FORM_indirect:
        return _SKIP_INDIRECT
    raise _l._Corrupt(f"unknown attribute form 0x{form:x} in .debug_abbrev")
