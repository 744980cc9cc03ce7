"""Which variables are in scope at a pc, and where DWARF says they live.

``DebugInfo`` wraps one DWARF file. An address is mapped to its compilation unit
through the line table's ``.debug_aranges`` index (``LineTable.units_at``), and only
that unit's DIEs are read (pyelftools parses a unit on first touch and keeps it):
nothing here walks a whole module for a local variable (PERF.md "Symbols"). Inside
the unit, only the subtrees whose address ranges hold the pc are descended into.

A ``Scope`` is the chain of DIEs holding a pc, innermost first: lexical blocks and
inlined calls up to the out-of-line function. ``Scope.variables(depth)`` lists a
frame's parameters then its locals (innermost block first, as gdb's ``info
locals``); ``depth`` picks an inlined call's own frame (0 = the innermost). A
variable's name and type come from its abstract origin when it has one (inlined
and out-of-line copies of an inline function), its location from the concrete DIE:
a parameter of the origin with no concrete copy is optimized out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from lindbg.errors import LindbgError
from lindbg.symbols.dwarf_expr import LocationLists, register_of
from lindbg.symbols.lines import LineTable
from lindbg.symbols.types import Type, TypeReader

__all__ = ["DebugInfo", "Scope", "ScopeError", "Variable"]


class ScopeError(LindbgError):
    """The DWARF of a file could not be read for scopes (names the file and what failed)."""


_FUNCTION_TAGS = frozenset({"DW_TAG_subprogram", "DW_TAG_inlined_subroutine"})
_BLOCK_TAGS = frozenset({"DW_TAG_lexical_block", "DW_TAG_inlined_subroutine"})
_VARIABLE_TAGS = frozenset({"DW_TAG_variable", "DW_TAG_formal_parameter"})
_CONSTANT_FORMS = frozenset(
    {"DW_FORM_data1", "DW_FORM_data2", "DW_FORM_data4", "DW_FORM_data8", "DW_FORM_udata", "DW_FORM_sdata",
     "DW_FORM_implicit_const", "DW_FORM_data16"}
)  # fmt: skip
_BLOCK_FORMS = frozenset(
    {"DW_FORM_exprloc", "DW_FORM_block1", "DW_FORM_block2", "DW_FORM_block4", "DW_FORM_block"}
)
_ADDRX_FORMS = frozenset(
    {
        "DW_FORM_addrx",
        "DW_FORM_addrx1",
        "DW_FORM_addrx2",
        "DW_FORM_addrx3",
        "DW_FORM_addrx4",
        "DW_FORM_GNU_addr_index",
    }
)
_MAX_ORIGIN_HOPS = 8
#: The sections pyelftools reads DIEs, strings, ranges and lists from.
_DWARF_SECTIONS = (
    ".debug_info", ".debug_aranges", ".debug_abbrev", ".debug_str", ".debug_loc", ".debug_ranges",
    ".debug_line", ".debug_pubtypes", ".debug_pubnames", ".debug_addr", ".debug_str_offsets",
    ".debug_line_str", ".debug_loclists", ".debug_rnglists",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Variable:
    """A variable or parameter DIE, with the DIE its name and type come from."""

    name: str
    kind: str  # "param", "local" or "global"
    die: Any  # the concrete DIE (holds the location); None for an origin-only parameter
    origin: Any  # the DIE holding name and type (the same DIE when it has no origin)
    decl_line: int


class Scope:
    """The DIEs holding one link-time pc, innermost first, ending at the subprogram."""

    def __init__(self, info: DebugInfo, cu: Any, chain: list[Any], pc: int) -> None:
        self.info = info
        self.cu = cu
        self.chain = chain
        self.pc = pc

    @property
    def function(self) -> Any:
        """The out-of-line subprogram DIE (the last of the chain)."""
        return self.chain[-1]

    def frames(self) -> list[Any]:
        """The function DIEs of the frames at this pc, innermost first: each inlined
        call, then the subprogram."""
        return [die for die in self.chain if die.tag in _FUNCTION_TAGS]

    def function_name(self, depth: int = 0) -> str | None:
        frames = self.frames()
        if depth >= len(frames):
            return None
        return self.info.name_of(frames[depth])

    def frame_base(self) -> Any | None:
        """The subprogram's DW_AT_frame_base attribute (inlined calls share it)."""
        return self.function.attributes.get("DW_AT_frame_base")

    def variables(self, depth: int = 0) -> list[Variable]:
        """Parameters, then locals visible at the pc, of frame ``depth``."""
        frames = self.frames()
        if depth >= len(frames):
            return []
        function = frames[depth]
        start = self.chain.index(function)
        lower = self.chain.index(frames[depth - 1]) + 1 if depth > 0 else 0
        params = self._parameters(function)
        local_list: list[Variable] = []
        seen = {v.name for v in params}
        # the lexical blocks of this frame's own function, innermost first
        inner = [die for die in self.chain[lower:start] if die.tag == "DW_TAG_lexical_block"]
        for block in [*inner, function]:
            for child in block.iter_children():
                if child.tag != "DW_TAG_variable":
                    continue
                variable = self.info.variable_of(child, "local")
                if variable is not None and variable.name not in seen:
                    seen.add(variable.name)
                    local_list.append(variable)
        return params + local_list

    def _parameters(self, function: Any) -> list[Variable]:
        concrete = [c for c in function.iter_children() if c.tag == "DW_TAG_formal_parameter"]
        found = [v for v in (self.info.variable_of(c, "param") for c in concrete) if v is not None]
        origin = self.info.origin_of(function)
        if origin is not function:
            # the abstract parameters with no concrete copy here: optimized out
            named = {v.origin.offset for v in found}
            for child in origin.iter_children():
                if child.tag == "DW_TAG_formal_parameter" and child.offset not in named:
                    name = self.info.name_of(child)
                    if name:
                        found.append(Variable(name, "param", None, child, _decl_line(child)))
        return found


class DebugInfo:
    """Scopes, variables and types of one ELF file with DWARF, read lazily."""

    def __init__(self, path: str, lines: LineTable) -> None:
        self.path = path
        self.lines = lines

    @cached_property
    def dwarf(self) -> Any:
        """pyelftools' DWARFInfo over the line table's section bytes: a compressed
        debug file (libc's) is decompressed once for both readers."""
        import io

        from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DwarfConfig, DWARFInfo

        def section(name: str) -> Any:
            data = self.lines.section_data(name)
            if data is None:
                return None
            return DebugSectionDescriptor(io.BytesIO(data), name, None, len(data), 0)

        try:
            return DWARFInfo(
                config=DwarfConfig(little_endian=True, machine_arch="x64", default_address_size=8),
                **{f"{name[1:]}_sec": section(name) for name in _DWARF_SECTIONS},
                debug_frame_sec=None,
                eh_frame_sec=None,
                debug_sup_sec=None,
                gnu_debugaltlink_sec=None,
                debug_types_sec=None,
            )
        except Exception as exc:
            raise ScopeError(f"{self.path}: cannot read DWARF: {exc}") from exc

    @cached_property
    def types(self) -> TypeReader:
        return TypeReader(self.dwarf, debug_names=self.lines.section_data(".debug_names"))

    @cached_property
    def location_lists(self) -> LocationLists:
        data = self.lines.section_data
        return LocationLists(data(".debug_loc"), data(".debug_loclists"), data(".debug_addr"))

    # ------------------------------------------------------------- scopes

    def scope_at(self, pc: int) -> Scope | None:
        """The scope holding link-time ``pc``, or None when no function DIE covers it."""
        try:
            for cu_offset in self.lines.units_at(pc):
                cu = self.dwarf.get_CU_at(cu_offset)
                chain = self._chain(cu.get_top_DIE(), pc)
                if chain:
                    return Scope(self, cu, chain[::-1], pc)
        except LindbgError:
            raise
        except Exception as exc:
            raise ScopeError(f"{self.path}: bad DWARF near 0x{pc:x}: {exc}") from exc
        return None

    def _chain(self, parent: Any, pc: int) -> list[Any]:
        """The DIEs under ``parent`` holding ``pc``, outermost first, from a subprogram."""
        for child in parent.iter_children():
            tag = child.tag
            if tag == "DW_TAG_subprogram":
                if self._holds(child, pc):
                    return [child, *self._blocks(child, pc)]
            elif tag in ("DW_TAG_namespace", "DW_TAG_class_type", "DW_TAG_structure_type", "DW_TAG_module"):
                found = self._chain(child, pc)
                if found:
                    return found
        return []

    def _blocks(self, parent: Any, pc: int) -> list[Any]:
        for child in parent.iter_children():
            if child.tag in _BLOCK_TAGS and self._holds(child, pc):
                return [child, *self._blocks(child, pc)]
        return []

    def _holds(self, die: Any, pc: int) -> bool:
        return any(low <= pc < high for low, high in self.ranges_of(die))

    def ranges_of(self, die: Any) -> list[tuple[int, int]]:
        """The link-time ``[low, high)`` ranges of a DIE (low/high pc or DW_AT_ranges)."""
        attrs = die.attributes
        low_attr = attrs.get("DW_AT_low_pc")
        high_attr = attrs.get("DW_AT_high_pc")
        if low_attr is not None and high_attr is not None:
            low = self.address_of(die.cu, low_attr)
            high = high_attr.value
            if high_attr.form in _CONSTANT_FORMS:
                high += low
            elif high_attr.form in _ADDRX_FORMS:
                high = self.address_of(die.cu, high_attr)
            return [(low, high)]
        ranges_attr = attrs.get("DW_AT_ranges")
        if ranges_attr is None:
            return []
        lists = self.dwarf.range_lists()
        if lists is None:
            return []
        base = self.cu_base(die.cu)
        found: list[tuple[int, int]] = []
        for entry in lists.get_range_list_at_offset(ranges_attr.value, cu=die.cu):
            if hasattr(entry, "base_address"):
                base = entry.base_address
                continue
            if entry.is_absolute:
                found.append((entry.begin_offset, entry.end_offset))
            else:
                found.append((base + entry.begin_offset, base + entry.end_offset))
        return found

    def address_of(self, cu: Any, attribute: Any) -> int:
        """An address attribute's link-time value (resolving DW_FORM_addrx)."""
        if attribute.form in _ADDRX_FORMS:
            return int(self.dwarf.get_addr(cu, attribute.value))
        return int(attribute.value)

    def cu_base(self, cu: Any) -> int:
        low = cu.get_top_DIE().attributes.get("DW_AT_low_pc")
        return self.address_of(cu, low) if low is not None else 0

    # ------------------------------------------------------------- variables

    def origin_of(self, die: Any) -> Any:
        """The DIE at the end of the DW_AT_abstract_origin / DW_AT_specification chain."""
        for _ in range(_MAX_ORIGIN_HOPS):
            attrs = die.attributes
            if "DW_AT_abstract_origin" in attrs:
                die = die.get_DIE_from_attribute("DW_AT_abstract_origin")
            elif "DW_AT_specification" in attrs:
                die = die.get_DIE_from_attribute("DW_AT_specification")
            else:
                break
        return die

    def name_of(self, die: Any) -> str | None:
        for _ in range(_MAX_ORIGIN_HOPS):
            attr = die.attributes.get("DW_AT_name")
            if attr is not None:
                value = attr.value
                return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            if "DW_AT_abstract_origin" in die.attributes:
                die = die.get_DIE_from_attribute("DW_AT_abstract_origin")
            elif "DW_AT_specification" in die.attributes:
                die = die.get_DIE_from_attribute("DW_AT_specification")
            else:
                return None
        return None

    def variable_of(self, die: Any, kind: str) -> Variable | None:
        origin = self.origin_of(die)
        name = self.name_of(die)
        if not name or ("DW_AT_artificial" in origin.attributes and kind == "local"):
            return None
        return Variable(name, kind, die, origin, _decl_line(origin))

    def type_of(self, variable: Variable) -> Type:
        return self.types.type_of(variable.origin)

    def location_expression(self, variable: Variable, pc: int) -> bytes | None:
        """The DWARF expression locating ``variable`` at link-time ``pc``; None when
        it has no location there (optimized out)."""
        if variable.die is None:
            return None
        attr = variable.die.attributes.get("DW_AT_location")
        if attr is None:
            return None
        if attr.form in _BLOCK_FORMS:
            return bytes(attr.value)
        cu = variable.die.cu
        version = cu.header.version
        top = cu.get_top_DIE().attributes
        addr_base = top["DW_AT_addr_base"].value if "DW_AT_addr_base" in top else 0
        offset = attr.value
        if attr.form == "DW_FORM_loclistx":
            base = top["DW_AT_loclists_base"].value if "DW_AT_loclists_base" in top else 12
            offset = self.location_lists.offset_of_index(
                attr.value, loclists_base=base, offset_size=offset_size(cu)
            )
        return self.location_lists.expression_at(
            offset, pc, version=version, cu_base=self.cu_base(cu), addr_base=addr_base
        )

    def constant_value(self, variable: Variable) -> int | bytes | None:
        """DW_AT_const_value of a variable the compiler folded into a constant."""
        for die in (variable.die, variable.origin):
            if die is None:
                continue
            attr = die.attributes.get("DW_AT_const_value")
            if attr is not None:
                value = attr.value
                return bytes(value) if isinstance(value, list) else value
        return None

    def call_site_value(self, function: Any, return_pc: int, regno: int) -> bytes | None:
        """The DWARF expression (in the caller's frame) of the value register ``regno``
        had when the call returning to link-time ``return_pc`` was made: the
        ``DW_AT_call_value`` of its call-site parameter (DWARF 5 or GNU). None when
        the compiler did not record it."""
        for site in _descendants(function, _CALL_SITE_TAGS):
            attrs = site.attributes
            pc_attr = attrs.get("DW_AT_call_return_pc") or attrs.get("DW_AT_low_pc")
            if pc_attr is None or self.address_of(site.cu, pc_attr) != return_pc:
                continue
            for parameter in site.iter_children():
                if parameter.tag not in _CALL_PARAMETER_TAGS:
                    continue
                location = parameter.attributes.get("DW_AT_location")
                if location is None or register_of(bytes(location.value)) != regno:
                    continue
                value = parameter.attributes.get("DW_AT_call_value") or parameter.attributes.get(
                    "DW_AT_GNU_call_site_value"
                )
                return bytes(value.value) if value is not None else None
            return None
        return None

    @property
    def unit_count(self) -> int:
        """How many compilation units the file has (what a by-name search may read)."""
        return self.lines.unit_count

    def function_at(self, pc: int) -> Any | None:
        """The subprogram DIE whose code holds link-time ``pc`` (its abstract origin
        carries the name and the parameters of an inline function's copy)."""
        scope = self.scope_at(pc)
        return scope.function if scope is not None else None

    def parameters_of(self, function: Any) -> list[Variable]:
        """A subprogram's formal parameters, in order."""
        origin = self.origin_of(function)
        return [
            Variable(self.name_of(die) or "", "param", die, self.origin_of(die), _decl_line(die))
            for die in origin.iter_children()
            if die.tag == "DW_TAG_formal_parameter"
        ]

    def find_global(self, name: str, hint: Any | None = None) -> Variable | None:
        """A global (or namespace-scope, or function-static in the hint CU) variable
        by name: the hint CU first, then every other CU's top level."""
        for cu in self._units(hint):
            for die in _top_level(cu.get_top_DIE()):
                if die.tag != "DW_TAG_variable":
                    continue
                if self.name_of(die) == name or _qualified(self, die) == name:
                    if "DW_AT_location" in die.attributes or "DW_AT_const_value" in die.attributes:
                        return Variable(name, "global", die, self.origin_of(die), _decl_line(die))
                    definition = self._definition_of(cu, die)
                    if definition is not None:
                        return Variable(
                            name, "global", definition, self.origin_of(definition), _decl_line(die)
                        )
        return None

    def _definition_of(self, cu: Any, declaration: Any) -> Any | None:
        for die in _top_level(cu.get_top_DIE()):
            if (
                die.tag == "DW_TAG_variable"
                and "DW_AT_specification" in die.attributes
                and die.get_DIE_from_attribute("DW_AT_specification").offset == declaration.offset
            ):
                return die
        return None

    def _units(self, hint: Any | None) -> Iterator[Any]:
        if hint is not None:
            yield hint
        for cu in self.dwarf.iter_CUs():
            if hint is None or cu.cu_offset != hint.cu_offset:
                yield cu


_CALL_SITE_TAGS = frozenset({"DW_TAG_call_site", "DW_TAG_GNU_call_site"})
_CALL_PARAMETER_TAGS = frozenset({"DW_TAG_call_site_parameter", "DW_TAG_GNU_call_site_parameter"})


def _descendants(die: Any, tags: frozenset[str]) -> Iterator[Any]:
    """DIEs with one of ``tags`` in ``die``'s subtree (blocks and inlined calls too)."""
    for child in die.iter_children():
        if child.tag in tags:
            yield child
        elif child.has_children:
            yield from _descendants(child, tags)


def _top_level(die: Any) -> Iterator[Any]:
    """A unit's top-level DIEs, with namespaces opened."""
    for child in die.iter_children():
        if child.tag == "DW_TAG_namespace":
            yield from _top_level(child)
        else:
            yield child


def _qualified(info: DebugInfo, die: Any) -> str | None:
    name = info.name_of(die)
    parts = [name] if name else []
    parent = die.get_parent()
    while parent is not None and parent.tag == "DW_TAG_namespace":
        parts.insert(0, info.name_of(parent) or "(anonymous namespace)")
        parent = parent.get_parent()
    return "::".join(parts) if parts else None


def offset_size(cu: Any) -> int:
    """4 for a DWARF32 unit, 8 for DWARF64 (the size of section offsets in it)."""
    return 8 if cu.dwarf_format() == 64 else 4


def _decl_line(die: Any) -> int:
    attr = die.attributes.get("DW_AT_decl_line")
    return int(attr.value) if attr is not None else 0
