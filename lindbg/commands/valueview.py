"""cdb's displays of typed values: ``dv``, ``dt``, ``??`` and ``dx`` (CDB-OUTPUT §17-§20).

Pure: each function maps :class:`~lindbg.symbols.values.Value` and
:class:`~lindbg.symbols.types.Type` objects to a list of lines (no trailing newlines)
and never prints. Values read memory lazily, so a display may meet unreadable memory
or optimised-out values; each display says so in its own cdb wording (``<Memory
access error>``, ``??`` then ``Memory read error ...``, ``Unable to read memory at
Address 0x...``, ``<value unavailable>``) instead of raising.

The four displays word values differently, as cdb does:

==========  ==============  ==============  ===============  =====================
value       dv / ??         dt              dx               example
==========  ==============  ==============  ===============  =====================
signed      ``0n-1``        ``0n-1``        ``-1``           int
unsigned    ``0x2a`` / 7    ``0x2a`` / 7    ``0x2a``         unsigned int
char        ``0n97 'a'``    ``97 'a'``      ``97 'a'``       char
enum        ``RED (0n2)``   ``0n2 (RED)``   ``RED (0x2)``    enum color
pointer     ``0x0000...``   ``0x... pair``  ``0x5555...``    struct pair *
==========  ==============  ==============  ===============  =====================
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, TypeVar

from lindbg.commands.formatting import addr17
from lindbg.errors import MemoryAccessError
from lindbg.symbols.types import Encoding, Member, Type, TypeKind
from lindbg.symbols.values import Value, ValueTypeError, ValueUnavailableError

if TYPE_CHECKING:
    from lindbg.symbols.cexpr import CExprError

__all__ = [
    "cpp_lines",
    "dt_lines",
    "dt_type_text",
    "dv_lines",
    "dv_value_text",
    "dx_error_line",
    "dx_lines",
]

_MASK64 = (1 << 64) - 1
_RECORDS = (TypeKind.STRUCT, TypeKind.CLASS, TypeKind.UNION)
_POINTERS = (TypeKind.POINTER, TypeKind.REFERENCE, TypeKind.RVALUE_REFERENCE)
_CHAR_ENCODINGS = (Encoding.SIGNED_CHAR, Encoding.UNSIGNED_CHAR)
_TAG_KEYWORD = re.compile(r"\b(?:struct|union|class|enum) ")
#: dv's name column: names are right-justified to this width (or the longest name).
_DV_NAME_WIDTH = 15
#: dv /v's location column.
_DV_LOCATION_WIDTH = 17
#: dt's field-name column.
_DT_NAME_WIDTH = 16
#: dx lists this many array elements, then ``[...]``.
_DX_ELEMENT_LIMIT = 100
#: The longest C string a display reads through a char pointer or array.
_STRING_LIMIT = 256
#: Bit fields wider than this also show their value in hex: ``0y00000101 (0x5)``.
_BITFIELD_HEX_WIDTH = 4
_UNAVAILABLE = "<value unavailable>"


# ---------------------------------------------------------------- shared pieces


def _strip(type_: Type) -> Type:
    return type_.strip_typedefs()


def _is_char(type_: Type) -> bool:
    """A one-byte character type (char, signed char, unsigned char, char8_t)."""
    stripped = _strip(type_)
    return (
        stripped.kind == TypeKind.BASE
        and stripped.size == 1
        and stripped.encoding in (*_CHAR_ENCODINGS, Encoding.UTF)
    )


def _target(type_: Type) -> Type | None:
    """A pointer's or array's element type, typedefs stripped; None for ``void *``."""
    target = _strip(type_).target
    return _strip(target) if target is not None else None


def _unsigned_text(value: int) -> str:
    """cdb's unsigned number: 0-9 bare, else ``0x`` hex, split by a backtick above
    32 bits (``0xffffffff`ffffffff``)."""
    if 0 <= value <= 9:
        return str(value)
    if value >> 32:
        return "0x" + addr17(value)
    return f"0x{value:x}"


def _double_text(value: float) -> str:
    """A double as cdb prints it: 20 significant digits, a 3-digit exponent,
    ``1.#QNAN`` and ``1.#INF`` for the special values."""
    if math.isnan(value):
        return "1.#QNAN"
    if math.isinf(value):
        return "-1.#INF" if value < 0 else "1.#INF"
    text = f"{value:.20g}"
    mantissa, marker, exponent = text.partition("e")
    if not marker:
        return text
    return f"{mantissa}e{exponent[0]}{exponent[1:].lstrip('0').rjust(3, '0')}"


def _quoted(data: bytes) -> str:
    """A C string in double quotes; control characters as C escapes, bytes that are
    not UTF-8 as ``\\xNN``, so one value stays one line."""
    text = data.decode("utf-8", errors="backslashreplace")
    escaped = []
    for char in text:
        code = ord(char)
        if code < 0x20 or code == 0x7F:
            escaped.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(char, f"\\x{code:02x}"))
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _char_text(code: int) -> str:
    """The quoted character after a char's number (``'a'``; ``''`` when unprintable)."""
    return f"'{chr(code)}'" if 0x20 <= code < 0x7F else "''"


def _enum_name(type_: Type, value: int) -> str | None:
    for enumerator in _strip(type_).enumerators:
        if enumerator.value == value:
            return enumerator.name
    return None


def _string_text(value: Value) -> str:
    """The quoted C string a char pointer points to (or a char array holds), or
    cdb's text for a string it cannot read."""
    array = _strip(value.type).kind == TypeKind.ARRAY
    try:
        if not array:
            value.deref().data()  # the first character: string() reads around faults
        data = value.string(_STRING_LIMIT)
    except (MemoryAccessError, ValueUnavailableError):
        data = None
    if data is None:
        address = value.address or 0 if array else _address_of_pointer(value)
        return f'"--- memory read error at address 0x{addr17(address)} ---"'
    return _quoted(data)


def _address_of_pointer(value: Value) -> int:
    try:
        return int(value)
    except (MemoryAccessError, ValueUnavailableError):
        return 0


def _cdb_type_name(type_: Type) -> str:
    """A C type name without tag keywords, as dx and ``dt var`` spell it (``pair *``)."""
    return _TAG_KEYWORD.sub("", type_.c_name())


class _ReadFailed(Exception):
    """Memory a display needed could not be read (unwinds to the display's top)."""

    def __init__(self, address: int) -> None:
        super().__init__(address)
        self.address = address


@dataclass(frozen=True, slots=True)
class _Field:
    """A member as the displays list it: anonymous members and base classes are
    flattened into their container, so ``offset`` is from the displayed object. A
    bit field's ``offset`` is its storage unit's (an ``unsigned int`` field: the
    aligned 4 bytes holding it) and ``position`` its first bit in that unit, as cdb
    (MSVC's layout) shows them."""

    offset: int
    member: Member
    name: str
    position: int = 0


def _fields_of(type_: Type, base: int = 0) -> list[_Field]:
    """The displayed members of a struct/class/union type, in order (statics left
    out: they have no storage in the object)."""
    fields: list[_Field] = []
    for member in _strip(type_).members:
        if member.is_static:
            continue
        if member.name is None or member.is_base:
            fields.extend(_fields_of(member.type, base + member.offset))
            continue
        offset = base + member.offset
        if member.bit_size is None:
            fields.append(_Field(offset, member, member.name))
            continue
        unit = member.type.size or 1
        first_bit = offset * 8 + (member.bit_offset or 0)
        unit_offset = first_bit // (unit * 8) * unit
        fields.append(_Field(unit_offset, member, member.name, first_bit - unit_offset * 8))
    return fields


def _field_value(value: Value, field: _Field) -> Value:
    return value[field.name]


@dataclass(frozen=True, slots=True)
class _Style:
    """How one display words the numbers of base types."""

    signed: Callable[[int], str]
    unsigned: Callable[[int], str]  # also pointers to members, nullptr_t
    char: Callable[[int, bool], str]  # (code, the char type is signed)
    real: Callable[[float], str]
    enum: Callable[[str | None, int], str]  # (enumerator name or None, value)


def _scalar_text(value: Value, stripped: Type, style: _Style) -> str:
    """An enum, BASE or other non-pointer scalar value in ``style``."""
    if stripped.kind == TypeKind.ENUM:
        number = int(value)
        return style.enum(_enum_name(stripped, number), number)
    if stripped.kind == TypeKind.BASE:
        return _base_text(value, stripped, style)
    return style.unsigned(int(value) & _MASK64)


def _base_text(value: Value, stripped: Type, style: _Style) -> str:
    """A BASE-type value (bool, char, integer, float, _Complex) in ``style``."""
    if stripped.encoding == Encoding.BOOLEAN:
        return "true" if int(value) else "false"
    if stripped.is_complex:
        number = complex(value)
        return f"{style.real(number.real)} + {style.real(number.imag)}i"
    if stripped.is_float:
        return style.real(float(value))
    code = int(value)
    if _is_char(stripped):
        return style.char(code, stripped.is_signed)
    return style.signed(code) if stripped.is_signed else style.unsigned(code)


def _dt_char(code: int, signed: bool) -> str:
    """dt: ``98 'b'`` for a printable char, else hex: ``0x1 ''``, ``0x41 'A'`` (UChar)."""
    if signed and 0x20 <= code < 0x7F:
        return f"{code} {_char_text(code)}"
    return f"0x{code & 0xFF:x} {_char_text(code & 0xFF)}"


def _dx_real(number: float) -> str:
    return f"{number:.6f}" if math.isfinite(number) else _double_text(number)


_NO_NAME = "No matching name"
_DV_STYLE = _Style(
    signed=lambda n: f"0n{n}",
    unsigned=_unsigned_text,
    char=lambda n, signed: f"{f'0n{n}' if signed else _unsigned_text(n)} {_char_text(n & 0xFF)}",
    real=_double_text,
    enum=lambda name, n: f"{name} (0n{n})" if name is not None else f"0n{n} ({_NO_NAME})",
)
_DT_STYLE = _Style(
    signed=lambda n: f"0n{n}",
    unsigned=_unsigned_text,
    char=_dt_char,
    real=_double_text,
    enum=lambda name, n: f"0n{n} ({name if name is not None else _NO_NAME})",
)
_DX_STYLE = _Style(
    signed=str,
    unsigned=lambda n: f"0x{n:x}",
    char=lambda n, signed: f"{n} {_char_text(n & 0xFF)}",
    real=_dx_real,
    enum=lambda name, n: f"{name} (0x{n & _MASK64:x})" if name is not None else f"0x{n & _MASK64:x}",
)


# ---------------------------------------------------------------- dv (§17)


def dv_value_text(value: Value) -> str:
    """What ``dv`` prints after ``name = `` (and ``??`` after the type name)."""
    if not value.available:
        return _UNAVAILABLE
    try:
        return _dv_text(value)
    except MemoryAccessError:
        return "<Memory access error>"
    except ValueUnavailableError:
        return _UNAVAILABLE
    except ValueTypeError:
        return value.type.c_name()  # nothing to show but what it is (a function, say)


def _dv_text(value: Value) -> str:
    stripped = _strip(value.type)
    kind = stripped.kind
    if kind == TypeKind.ARRAY:
        if stripped.target is not None and _is_char(stripped.target):
            return f"{value.type.c_name()} {_string_text(value)}"
        return value.type.c_name()
    if kind in _RECORDS:
        return value.type.c_name()
    if kind in _POINTERS:
        address = _pointer_address(value)
        text = "0x" + addr17(address)
        target = _target(stripped)
        if kind == TypeKind.POINTER and target is not None and _is_char(target):
            text += " " + _string_text(value)
        return text
    return _scalar_text(value, stripped, _DV_STYLE)


def _pointer_address(value: Value) -> int:
    """A pointer's value, or for a reference the address of what it refers to."""
    if _strip(value.type).kind == TypeKind.POINTER:
        return int(value) & _MASK64
    referent = value.deref()
    return referent.address if referent.address is not None else 0


def _dv_location(value: Value) -> str:
    if value.register is not None:
        return f"@{value.register}"
    if value.address is not None and value.available:
        return addr17(value.address)
    return "<unavailable>"


def dv_lines(
    entries: Iterable[tuple[str, Value, str | None]],
    *,
    show_type: bool = False,
    show_location: bool = False,
    show_kind: bool = False,
) -> list[str]:
    """``dv`` (``/t``, ``/v`` or ``/V``, ``/i``): one line per variable, in the order
    given (parameters first is the caller's business).

    Each entry is (kind ``"param"``/``"local"``/``"global"``, value named by the
    variable, location text). The location text is what ``/v`` shows (``/V`` passes
    ``"00007ffd`2a9e0c4c @rbp-0x14"``); None derives it from the value (addr17,
    ``@rbx``, ``<unavailable>``). Names are right-justified to 15 columns, or to the
    longest name; ``/t`` prints ``type name`` unpadded instead.
    """
    rows = list(entries)
    width = max([_DV_NAME_WIDTH, *(len(value.name or "") for _, value, _ in rows)])
    lines = []
    for kind, value, location in rows:
        name = value.name or ""
        parts = []
        if show_kind:
            parts.append(f"prv {kind:<6} ")
        if show_location:
            text = location if location is not None else _dv_location(value)
            parts.append(f"{text:<{_DV_LOCATION_WIDTH}} ")
        if show_type:
            parts.append(f"{value.type.c_name()} {name}")
        else:
            parts.append(f"{name:>{width}}")
        parts.append(f" = {dv_value_text(value)}")
        lines.append("".join(parts))
    return lines


# ---------------------------------------------------------------- dt (§18)


def dt_type_text(type_: Type) -> str:
    """cdb's name of a member type in ``dt``: ``Int4B``, ``Ptr64 Char``, ``[4] Int4B``,
    ``pair`` (a struct by tag), ``<unnamed-tag>``, ``Void``."""
    stripped = _strip(type_)
    kind = stripped.kind
    if kind == TypeKind.BASE:
        return _dt_base_name(stripped)
    if kind in _POINTERS or kind == TypeKind.POINTER_TO_MEMBER:
        target = _target(stripped)
        if target is not None and target.kind == TypeKind.FUNCTION:
            # cdb's own spelling of a function pointer: the return type after a gap.
            result = target.target
            return f"Ptr64     {result.c_name() if result is not None else 'void'} "
        return "Ptr64 " + (dt_type_text(target) if target is not None else "Void")
    if kind == TypeKind.ARRAY:
        element = stripped.target
        length = stripped.length if stripped.length is not None else 0
        return f"[{length}] " + (dt_type_text(element) if element is not None else "Void")
    if kind in (*_RECORDS, TypeKind.ENUM):
        return stripped.name or "<unnamed-tag>"
    if kind == TypeKind.FUNCTION:
        return stripped.c_name()
    if kind == TypeKind.VOID:
        return "Void"
    return stripped.name or "Void"


def _dt_base_name(stripped: Type) -> str:
    size = stripped.size or 0
    encoding = stripped.encoding
    if encoding == Encoding.BOOLEAN:
        return "Bool"
    if stripped.is_float:
        return "Float" if size == 4 else "Double"
    if size == 1 and encoding == Encoding.SIGNED_CHAR:
        return "Char"
    if size == 1 and encoding in (Encoding.UNSIGNED_CHAR, Encoding.UTF):
        return "UChar"
    if size == 2 and encoding == Encoding.UTF:
        return "Wchar"
    if encoding in (Encoding.SIGNED, Encoding.SIGNED_CHAR, Encoding.UTF):
        return f"Int{size}B"
    return f"Uint{size}B"


def _bit_text(field: _Field) -> str:
    bits = field.member.bit_size or 0
    return f"Pos {field.position}, {bits} Bit{'s' if bits != 1 else ''}"


def _is_vptr(name: str) -> bool:
    # gcc names the virtual-table pointer "_vptr.Class", clang "_vptr$Class".
    return name.startswith("_vptr")


@dataclass(frozen=True, slots=True)
class _Selection:
    """What the ``dt T f1 f2.sub`` field arguments ask of one level."""

    patterns: tuple[str, ...]

    def match(self, name: str) -> tuple[bool, _Selection | None]:
        """(shown, the selection one level down when the field is to be expanded
        for a dotted pattern: ``f.`` all subfields, ``f.g`` only g; else None)."""
        if not self.patterns:
            return True, None
        shown = False
        below: list[str] = []
        expand = False
        for pattern in self.patterns:
            head, dot, tail = pattern.partition(".")
            if fnmatchcase(name, head):
                shown = True
                if dot:
                    expand = True
                    if tail:
                        below.append(tail)
        if not expand:
            return shown, None
        return shown, _Selection(tuple(below))

    def width(self) -> int:
        if not self.patterns:
            return _DT_NAME_WIDTH
        return max(len(pattern.partition(".")[0]) for pattern in self.patterns)


class _DtWriter:
    """The field lines of ``dt``, ``??`` and the like, for a type or a value."""

    def __init__(self, recurse: int, blocks: bool, array_count: int | None) -> None:
        self.recurse = recurse
        self.blocks = blocks
        self.array_count = array_count
        self.lines: list[str] = []

    # ------------------------------------------------------------ type only

    def type_fields(self, type_: Type, level: int, depth: int, selection: _Selection) -> None:
        width = selection.width()
        for field in _fields_of(type_):
            shown, below = selection.match(field.name)
            if not shown:
                continue
            indent = "   " * (level + 1)
            member = field.member
            if _is_vptr(field.name):
                self.lines.append(f"{indent}+0x{field.offset:03x} __VFN_table : Ptr64 ")
                continue
            text = _bit_text(field) if member.bit_size is not None else dt_type_text(member.type)
            self.lines.append(f"{indent}+0x{field.offset:03x} {field.name:<{width}} : {text}")
            nested = self.expansion(member.type, depth, below)
            if nested is not None:
                self.type_fields(nested, level + 1, depth - 1, below or _Selection(()))

    def expansion(self, type_: Type, depth: int, below: _Selection | None) -> Type | None:
        """The record a field's type expands into at this depth, if any: embedded
        records with -r or -b, pointed-to records with -r only, and any record a
        dotted field argument names."""
        stripped = _strip(type_)
        if stripped.kind in _RECORDS:
            if below is not None or depth > 0 or self.blocks:
                return stripped
        elif stripped.kind == TypeKind.POINTER:
            target = _target(stripped)
            if target is not None and target.kind in _RECORDS and (below is not None or depth > 0):
                return target
        return None

    # ------------------------------------------------------------ values

    def value_fields(self, value: Value, level: int, depth: int, selection: _Selection) -> None:
        width = selection.width()
        for field in _fields_of(value.type):
            shown, below = selection.match(field.name)
            if not shown:
                continue
            self.value_field(value, field, level, depth, width, below)

    def value_field(
        self, value: Value, field: _Field, level: int, depth: int, width: int, below: _Selection | None
    ) -> None:
        indent = "   " * (level + 1)
        member = field.member
        name = "__VFN_table" if _is_vptr(field.name) else field.name
        head = f"{indent}+0x{field.offset:03x} {name if _is_vptr(field.name) else f'{name:<{width}}'} : "
        try:
            child = _field_value(value, field)
            text = self.value_text(child, member)
        except (MemoryAccessError, ValueUnavailableError) as error:
            address = getattr(error, "address", None)
            unreadable = "????" if _strip(member.type).kind in _POINTERS else "??"
            self.lines.append(head + unreadable)
            if address is None:
                address = (value.address or 0) + field.offset
            raise _ReadFailed(address) from error
        stripped = _strip(member.type)
        if stripped.kind == TypeKind.ARRAY and (self.blocks or self.array_count is not None):
            self.lines.append(head)
            self.elements(child, level)
            return
        self.lines.append(head + text)
        nested = self.expansion(member.type, depth, below)
        if nested is None:
            return
        if stripped.kind == TypeKind.POINTER:
            if int(child) == 0:
                return
            child = _read(child.deref, child.address)
        self.value_fields(child, level + 1, depth - 1, below or _Selection(()))

    def elements(self, array: Value, level: int) -> None:
        """-b / -a: the elements of an array, one a line: ``    [00] 0n1``."""
        stripped = _strip(array.type)
        count = stripped.length or 0
        if self.array_count is not None:
            count = min(count, self.array_count) if stripped.length is not None else self.array_count
        indent = "   " * (level + 1) + " "
        for index in range(count):
            element = array[index]
            try:
                text = self.value_text(element, None)
            except (MemoryAccessError, ValueUnavailableError) as error:
                self.lines.append(f"{indent}[{index:02d}] ??")
                address = getattr(error, "address", None)
                raise _ReadFailed(address if address is not None else 0) from error
            self.lines.append(f"{indent}[{index:02d}] {text}")
            if self.blocks and _strip(element.type).kind in _RECORDS:
                self.value_fields(element, level + 1, 0, _Selection(()))

    def value_text(self, value: Value, member: Member | None) -> str:
        """A value as dt shows it after ``name : ``."""
        if not value.available:
            return _UNAVAILABLE
        if member is not None and member.bit_size is not None:
            number = int(value)
            bits = f"0y{number & ((1 << member.bit_size) - 1):0{member.bit_size}b}"
            if member.bit_size > _BITFIELD_HEX_WIDTH:
                bits += f" ({_unsigned_text(number & ((1 << member.bit_size) - 1))})"
            return bits
        stripped = _strip(value.type)
        kind = stripped.kind
        if kind in _RECORDS:
            return dt_type_text(stripped)
        if kind == TypeKind.ARRAY:
            return self.array_text(value, stripped)
        if kind in _POINTERS:
            return self.pointer_text(value, stripped)
        return _scalar_text(value, stripped, _DT_STYLE)

    def array_text(self, value: Value, stripped: Type) -> str:
        length = stripped.length if stripped.length is not None else 0
        element = stripped.target
        if element is not None and _is_char(element):
            return f"[{length}]  {_string_text(value)}"
        if length == 0 or element is None:
            return f"[{length}] "
        return f"[{length}] {self.value_text(value[0], None)}"

    def pointer_text(self, value: Value, stripped: Type) -> str:
        address = _pointer_address(value)
        if address == 0:
            return "(null) "
        text = "0x" + addr17(address)
        target = _target(stripped)
        if target is None or target.kind == TypeKind.VOID:
            return text + " Void"
        if _is_char(target):
            return f"{text}  {_string_text(value)}"
        if target.kind in (*_RECORDS, TypeKind.ARRAY):
            return f"{text} {dt_type_text(target)}"
        if target.kind == TypeKind.FUNCTION:
            return text
        try:
            pointee = self.value_text(value.deref(), None)
        except (MemoryAccessError, ValueUnavailableError):
            pointee = "??"
        return f"{text}  -> {pointee}"


def _dt_header(value: Value) -> str:
    """``dt var``'s first line: ``Local var @ 0x7ffd2a9e0c30 Type pair*``."""
    type_name = _cdb_type_name(value.type).replace(" *", "*").replace(" [", "[")
    if value.register is not None:
        return f"Local var @ {value.register} Type {type_name}"
    if value.address is not None:
        return f"Local var @ 0x{value.address:x} Type {type_name}"
    return f"Local var Type {type_name}"


def dt_lines(
    subject: Type | Value,
    *,
    recurse: int = 0,
    fields: Sequence[str] = (),
    blocks: bool = False,
    array_count: int | None = None,
    variable: bool = False,
) -> list[str]:
    """``dt`` of a type alone (member types) or of a value (member values).

    ``recurse`` is ``-r[N]`` (embedded and pointed-to records expanded N levels),
    ``blocks`` is ``-b`` (embedded records expanded at any depth, arrays one element
    a line), ``array_count`` is ``-a[N]`` (that many elements a line), ``fields`` the
    field arguments (``first``, ``link.``, ``link.next``, ``fi*``). ``variable`` adds
    the ``Local var @ ... Type T`` header of ``dt var``.

    A value that is a struct lists its fields; a pointer to a struct prints the
    pointer (``0x00005555`555592a0 ``) and then the pointee's fields; any other value
    prints on one line. Unreadable memory ends the display with ``??`` and
    ``Memory read error <address>``.
    """
    writer = _DtWriter(recurse, blocks, array_count)
    selection = _Selection(tuple(fields))
    if isinstance(subject, Type):
        stripped = _strip(subject)
        if stripped.kind in _RECORDS:
            writer.type_fields(stripped, 0, recurse, selection)
        else:
            writer.lines.append(dt_type_text(stripped))
        return writer.lines
    value = subject
    if variable:
        writer.lines.append(_dt_header(value))
    try:
        _dt_value(writer, value, selection)
    except _ReadFailed as failure:
        writer.lines.append(f"Memory read error {addr17(failure.address)}")
    return writer.lines


def _dt_value(writer: _DtWriter, value: Value, selection: _Selection) -> None:
    if not value.available:
        writer.lines.append(_UNAVAILABLE)
        return
    stripped = _strip(value.type)
    if stripped.kind in _RECORDS:
        writer.value_fields(value, 0, writer.recurse, selection)
        return
    target = _target(stripped) if stripped.kind in _POINTERS else None
    if target is not None and target.kind in _RECORDS:
        address = _read(lambda: _pointer_address(value), value.address)
        writer.lines.append(f"0x{addr17(address)} " if address else "(null) ")
        if address:
            writer.value_fields(_read(value.deref, address), 0, writer.recurse, selection)
        return
    if stripped.kind == TypeKind.ARRAY and (writer.blocks or writer.array_count is not None):
        writer.elements(value, -1)
        return
    writer.lines.append(_read(lambda: writer.value_text(value, None), value.address))


_T = TypeVar("_T")


def _read(action: Callable[[], _T], address: int | None) -> _T:
    """Run a read for a display line; a failure becomes :class:`_ReadFailed`."""
    try:
        return action()
    except (MemoryAccessError, ValueUnavailableError) as error:
        failed = getattr(error, "address", None)
        raise _ReadFailed(failed if failed is not None else address or 0) from error


# ---------------------------------------------------------------- ?? (§19)


def cpp_lines(value: Value) -> list[str]:
    """``?? expr``: ``<type> <value>`` for scalars (``int 0n42``); a struct's type then
    its fields; a struct pointer's type and value then the pointee's fields; an array's
    type and address, then its first element on the next line."""
    type_name = value.type.c_name()
    stripped = _strip(value.type)
    writer = _DtWriter(0, False, None)
    lines = writer.lines
    try:
        if not value.available:
            lines.append(f"{type_name} {_UNAVAILABLE}")
        elif stripped.kind in _RECORDS:
            lines.append(type_name)
            writer.value_fields(value, 0, 0, _Selection(()))
        elif stripped.kind == TypeKind.ARRAY:
            lines.append(f"{type_name} 0x{addr17(value.address)}" if value.address is not None else type_name)
            if stripped.length:
                lines.append(_read(lambda: writer.value_text(value[0], None), value.address))
        else:
            lines.append(f"{type_name} {dv_value_text(value)}")
            target = _target(stripped) if stripped.kind in _POINTERS else None
            if target is not None and target.kind in _RECORDS:
                address = _read(lambda: _pointer_address(value), value.address)
                if address:
                    writer.value_fields(_read(value.deref, address), 0, 0, _Selection(()))
    except _ReadFailed as failure:
        lines.append(f"Memory read error {addr17(failure.address)}")
    return lines


# ---------------------------------------------------------------- dx (§20)


def dx_error_line(error: CExprError) -> str:
    """An evaluation error as dx words it: ``Error: Unable to bind name 'nosuch'``."""
    from lindbg.symbols.cexpr import UNRESOLVED  # the C++ evaluator: loaded by `??`/`dx` only

    if error.kind == UNRESOLVED and error.token:
        return f"Error: Unable to bind name '{error.token}'"
    if error.address is not None:
        return f"Error: Unable to read memory at Address 0x{error.address:x}"
    return f"Error: {error}"


def dx_lines(expression_text: str, value: Value, depth: int = 1) -> list[str]:
    """``dx [-rN] expr``: the top line (expression padded to 16, ``: value``, ``[Type:
    T]``), then the children ``depth`` levels deep, 4 spaces a level: a struct's or a
    struct pointer's members (``[+0x000] name : value [Type: T]``), an array's
    elements (``[0x0]``), a scalar pointer's pointee."""
    lines = [f"{expression_text:<16} {_dx_value_part(value)}[Type: {_cdb_type_name(value.type)}]"]
    if depth > 0:
        _dx_children(lines, value, 1, depth)
    return lines


def _dx_value_part(value: Value) -> str:
    """``: value `` for scalars (with the trailing space), ``""`` for aggregates."""
    text = _dx_text(value)
    return f": {text} " if text is not None else ""


def _dx_text(value: Value) -> str | None:
    if not value.available:
        return _UNAVAILABLE
    try:
        return _dx_scalar(value)
    except MemoryAccessError as error:
        return f"Unable to read memory at Address 0x{error.address:x}"
    except ValueUnavailableError:
        return _UNAVAILABLE


def _dx_scalar(value: Value) -> str | None:
    stripped = _strip(value.type)
    kind = stripped.kind
    if kind == TypeKind.ARRAY:
        if stripped.target is not None and _is_char(stripped.target):
            return _string_text(value)
        return None
    if kind in _RECORDS:
        return None
    if kind in _POINTERS:
        address = _pointer_address(value)
        text = f"0x{address:x}"
        target = _target(stripped)
        if address == 0 or target is None or target.kind in (*_RECORDS, TypeKind.ARRAY, TypeKind.FUNCTION):
            return text
        if target.kind == TypeKind.VOID:
            return text
        if _is_char(target):
            return f"{text} : {_string_text(value)}"
        pointee = _dx_text(value.deref())
        return f"{text} : {pointee}" if pointee is not None else text
    return _scalar_text(value, stripped, _DX_STYLE)


def _dx_children(lines: list[str], value: Value, level: int, depth: int) -> None:
    indent = "    " * level
    stripped = _strip(value.type)
    if stripped.kind in _POINTERS:
        try:
            address = _pointer_address(value)
        except (MemoryAccessError, ValueUnavailableError):
            return
        target = _target(stripped)
        if address == 0 or target is None or target.kind in (TypeKind.VOID, TypeKind.FUNCTION):
            return
        try:
            pointee = value.deref()
        except ValueUnavailableError:
            return  # a pointer with no memory behind it (a constant): nothing to list
        if target.kind in _RECORDS or target.kind == TypeKind.ARRAY:
            _dx_children(lines, pointee, level, depth)
            return
        if _is_char(target):
            return  # the string is already on the pointer's line
        lines.append(f"{indent}{_dx_value_part(pointee)[2:]}[Type: {_cdb_type_name(pointee.type)}]")
        return
    if stripped.kind in _RECORDS:
        for field in _fields_of(stripped):
            member = field.member
            if member.bit_size is not None:
                low = field.position
                head = f"[+0x{field.offset:03x} ({low + member.bit_size - 1:2d}:{low:2d})]"
            else:
                head = f"[+0x{field.offset:03x}]"
            child = _field_value(value, field)
            _dx_child(lines, f"{indent}{head} {field.name:<16}", child, level, depth)
        return
    if stripped.kind == TypeKind.ARRAY:
        count = stripped.length or 0
        for index in range(min(count, _DX_ELEMENT_LIMIT)):
            _dx_child(lines, f"{indent}{f'[0x{index:x}]':<16}", value[index], level, depth)
        if count > _DX_ELEMENT_LIMIT:
            lines.append(f"{indent}[...]")


def _dx_child(lines: list[str], head: str, child: Value, level: int, depth: int) -> None:
    lines.append(f"{head} {_dx_value_part(child)}[Type: {_cdb_type_name(child.type)}]")
    if level < depth and _strip(child.type).kind in (*_RECORDS, TypeKind.ARRAY, *_POINTERS):
        _dx_children(lines, child, level + 1, depth)
