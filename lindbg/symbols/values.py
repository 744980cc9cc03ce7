"""Typed values: bytes (from memory, registers or DWARF pieces) seen through a ``Type``.

A ``Value`` is immutable. One read from memory (``from_memory``) fetches nothing until
its bytes are needed, then reads ``type.size`` bytes once and keeps them; a member,
element or base-class part of a value whose bytes are not fetched yet is itself a lazy
memory value, so ``p->next->name`` reads three pointers and a string, not three structs.
A value assembled from DWARF pieces (``from_bytes`` with ``valid``) knows which bytes
were optimized out: a part made only of valid bytes reads normally, a part touching an
invalid byte is ``<optimized out>``.

``str(value)`` is gdb 13's ``print`` rendering (what follows "$1 = "): value_print /
c_value_print, generic_printstr's repeat blocks and 200-element limit, the exact %g
digits gdb prints floats with, flag enums, C++ base classes and static members, and a
``(type) `` prefix on top-level pointers. gdb's ``<sym>`` after an address needs symbols,
which a Value does not have: give a ``symbolize(address) -> "name+off" | None`` hook at
construction or to ``format``.

Errors: ``ValueUnavailableError`` (optimized out, no memory to read, nothing to
dereference), ``MemoryAccessError`` from the ``read`` function (unreadable memory), and
``ValueTypeError`` for an operation the type does not allow (indexing an int).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from fractions import Fraction

from lindbg.errors import LindbgError, MemoryAccessError
from lindbg.symbols.types import (
    Encoding,
    FloatFormat,
    Member,
    Type,
    TypeKind,
    float_format,
    read_leb128,
)

__all__ = [
    "ReadMemory",
    "Symbolize",
    "Value",
    "ValueTypeError",
    "ValueUnavailableError",
]

#: read(address, size) -> exactly ``size`` bytes; raises ``MemoryAccessError``.
ReadMemory = Callable[[int, int], bytes]
#: symbolize(address) -> "name" or "name+off" for gdb's ``<...>`` after an address, or None.
Symbolize = Callable[[int], "str | None"]


class ValueUnavailableError(LindbgError):
    """A value (or the part of it asked for) cannot be known: optimized out, in no
    memory that could be read, or a dereference that makes no sense ("cannot
    dereference a void *"). The message starts with the value's name when it has one:
    ``"argc: <optimized out>"``."""


class ValueTypeError(LindbgError, TypeError):
    """The operation does not apply to the value's type (indexing an int, a member of a
    pointer, a cast between sizes that cannot be reinterpreted). Also a ``TypeError``."""


_POINTER_SIZE = 8
_ADDRESS_MASK = (1 << 64) - 1
#: gdb's defaults: ``set print elements 200``, ``set print repeats 10``, ``set print max-depth 20``.
PRINT_ELEMENTS = 200
REPEAT_THRESHOLD = 10
MAX_DEPTH = 20

_STRUCTS = frozenset({TypeKind.STRUCT, TypeKind.CLASS, TypeKind.UNION})
#: Kinds whose bytes read as one integer.
_INTEGRAL_KINDS = frozenset(
    {TypeKind.BASE, TypeKind.ENUM, TypeKind.POINTER, TypeKind.POINTER_TO_MEMBER, TypeKind.UNSPECIFIED}
)
_REFERENCES = frozenset({TypeKind.REFERENCE, TypeKind.RVALUE_REFERENCE})
_SIGNED_READ = frozenset({Encoding.SIGNED, Encoding.SIGNED_CHAR})
#: A top-level pointer to one of these prints no "(type) ": its string says enough.
_STRING_ELEMENT_NAMES = frozenset({"char", "wchar_t", "char16_t", "char32_t"})


class Value:
    """A typed value (see the module docstring).

    Attributes: ``name`` (the expression it came from: "p", "p->next", "argc"),
    ``type``, ``address`` (where it lives in memory; None for register, computed and
    implicit values), ``register`` ("rbx" when it lives wholly in one register),
    ``available`` (False: optimized out or not recoverable), ``reason`` (why not, ""
    when available).
    """

    __slots__ = (
        "_data",
        "_read",
        "_symbolize",
        "_valid",
        "address",
        "available",
        "name",
        "reason",
        "register",
        "type",
    )

    def __init__(
        self,
        type: Type,
        *,
        name: str | None = None,
        address: int | None = None,
        register: str | None = None,
        data: bytes | None = None,
        valid: bytes | None = None,
        read: ReadMemory | None = None,
        available: bool = True,
        reason: str = "",
        symbolize: Symbolize | None = None,
    ) -> None:
        """Prefer the classmethods; this is the one place every Value is made."""
        if valid is not None and all(valid):
            valid = None
        if valid is not None and not any(valid):
            available, reason, data, valid = False, reason or "optimized out", None, None
        self.type = type
        self.name = name
        self.address = address
        self.register = register
        self._data = data
        self._valid = valid
        self._read = read
        self.available = available
        self.reason = "" if available else reason or "optimized out"
        self._symbolize = symbolize

    # ------------------------------------------------------------ constructors

    @classmethod
    def from_memory(
        cls,
        type: Type,
        address: int,
        read: ReadMemory,
        name: str | None = None,
        *,
        symbolize: Symbolize | None = None,
    ) -> Value:
        """The value of ``type`` at ``address``; its bytes are read on first need."""
        return cls(type, name=name, address=address & _ADDRESS_MASK, read=read, symbolize=symbolize)

    @classmethod
    def from_bytes(
        cls,
        type: Type,
        data: bytes,
        read: ReadMemory | None,
        name: str | None = None,
        register: str | None = None,
        valid: bytes | None = None,
        *,
        symbolize: Symbolize | None = None,
    ) -> Value:
        """A value made of ``data`` (a register's, a constant's, DWARF pieces'): the
        first ``type.size`` bytes are used (a register may hold more). ``valid``: one
        byte per data byte, 0 where that byte is unavailable. ``read`` serves pointer
        dereferences. Raises ``ValueTypeError`` when ``data`` is shorter than the type."""
        size = type.size
        if size is not None:
            if len(data) < size:
                raise ValueTypeError(
                    f"{name or 'value'}: {len(data)} bytes given for {type.c_name()} of {size} bytes"
                )
            data = bytes(data[:size])
            if valid is not None:
                valid = bytes(valid[:size]).ljust(size, b"\0")
        return cls(
            type, name=name, register=register, data=bytes(data), valid=valid, read=read, symbolize=symbolize
        )

    @classmethod
    def unavailable(cls, type: Type, reason: str, name: str | None = None) -> Value:
        """A value whose bytes cannot be known (``reason``: "optimized out", ...)."""
        return cls(type, name=name, available=False, reason=reason or "optimized out")

    @classmethod
    def from_int(cls, type: Type, number: int, name: str | None = None) -> Value:
        """An integer, enum, bool, char or pointer value (``number`` wrapped to the size)."""
        size = _size_of(type, name)
        return cls(type, name=name, data=(number & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))

    @classmethod
    def from_float(cls, type: Type, number: float, name: str | None = None) -> Value:
        """A float, double or long double value."""
        layout = float_format(type)
        if layout is None or type.size is None:
            raise ValueTypeError(f"{name or 'value'}: {type.c_name()} is not a floating-point type")
        return cls(type, name=name, data=encode_float(number, layout).ljust(type.size, b"\0"))

    # ------------------------------------------------------------ bytes

    def _label(self) -> str:
        return self.name or "value"

    def _fetch(self) -> tuple[bytes, bytes | None]:
        """(bytes, validity mask or None when all valid), reading memory once."""
        if not self.available:
            raise ValueUnavailableError(f"{self._label()}: <{self.reason}>")
        if self._data is None:
            size = _size_of(self.type, self.name)
            if self.address is None or self._read is None:
                raise ValueUnavailableError(f"{self._label()}: no memory to read it from")
            data = self._read(self.address, size) if size else b""
            if len(data) != size:
                raise MemoryAccessError(
                    f"Cannot access memory at address {self.address + len(data):#x}", self.address + len(data)
                )
            self._data = bytes(data)
        return self._data, self._valid

    def data(self) -> bytes:
        """Exactly ``type.size`` bytes. Raises ``ValueUnavailableError`` when any of them
        is unavailable, ``MemoryAccessError`` when memory cannot be read."""
        data, valid = self._fetch()
        if valid is not None:
            raise ValueUnavailableError(f"{self._label()}: part of the value is <optimized out>")
        return data

    def validity(self) -> bytes | None:
        """One byte per data byte, 0 where unavailable; None when every byte is valid
        (reads memory for a memory value, as ``data`` does)."""
        return self._fetch()[1]

    def __bytes__(self) -> bytes:
        return self.data()

    # ------------------------------------------------------------ scalars

    def _coerce_ref(self) -> Value:
        """A reference stands for what it refers to (gdb's coerce_ref)."""
        if self.type.strip_typedefs().kind in _REFERENCES:
            return self.deref()
        return self

    def __int__(self) -> int:
        """Integers, enums, bools and chars (signed per type), pointers (the address),
        bitfields (extracted when the member was read), floats (truncated)."""
        value = self._coerce_ref()
        core = value.type.strip_typedefs()
        if core.kind is TypeKind.BASE and core.encoding is Encoding.FLOAT:
            return int(float(value))
        if core.kind not in _INTEGRAL_KINDS or core.encoding is Encoding.COMPLEX_FLOAT:
            raise ValueTypeError(f"{value._label()}: {value.type.c_name()} is not an integer")
        data = value.data()
        if core.kind is TypeKind.POINTER_TO_MEMBER:
            data = data[:_POINTER_SIZE]
        return int.from_bytes(
            data, "little", signed=value.type.is_signed and core.kind is not TypeKind.POINTER
        )

    def __index__(self) -> int:
        return int(self)

    def __float__(self) -> float:
        """float, double, long double (x87 80-bit) and _Float128, and integers."""
        value = self._coerce_ref()
        core = value.type.strip_typedefs()
        if core.kind is TypeKind.BASE and core.encoding is Encoding.FLOAT:
            layout = float_format(core)
            if layout is None:
                raise ValueTypeError(f"{value._label()}: unsupported float size {core.size}")
            return decode_float(value.data(), layout)
        return float(int(value))

    def __complex__(self) -> complex:
        """A _Complex value (or any number)."""
        value = self._coerce_ref()
        core = value.type.strip_typedefs()
        if core.kind is TypeKind.BASE and core.encoding is Encoding.COMPLEX_FLOAT:
            layout = float_format(core)
            data = value.data()
            half = len(data) // 2
            if layout is None:
                raise ValueTypeError(f"{value._label()}: unsupported complex size {core.size}")
            return complex(decode_float(data[:half], layout), decode_float(data[half:], layout))
        return complex(float(value))

    def __bool__(self) -> bool:
        """C truth of a scalar (nonzero); aggregates raise ``ValueTypeError``."""
        value = self._coerce_ref()
        core = value.type.strip_typedefs()
        if core.kind is TypeKind.BASE and core.encoding in (Encoding.FLOAT, Encoding.COMPLEX_FLOAT):
            return complex(value) != 0
        return int(value) != 0

    # ------------------------------------------------------------ navigation

    def _derived_name(self, suffix: str) -> str | None:
        if self.name is None:
            return None
        if suffix.startswith(".") and self.name.startswith("*") and _is_simple(self.name[1:]):
            return f"{self.name[1:]}->{suffix[1:]}"
        return f"{self.name}{suffix}" if _is_simple(self.name) else f"({self.name}){suffix}"

    def _derive(
        self,
        type: Type,
        name: str | None,
        *,
        address: int | None = None,
        data: bytes | None = None,
        valid: bytes | None = None,
    ) -> Value:
        """A value made from this one: it reads memory and names addresses as this one does."""
        return Value(
            type,
            name=name,
            address=address,
            data=data,
            valid=valid,
            read=self._read,
            symbolize=self._symbolize,
        )

    def _part(self, offset: int, type: Type, name: str | None) -> Value:
        """The part of this value of ``type`` at byte ``offset``: sliced from fetched
        bytes, else a lazy memory value, else unavailable."""
        size = type.size
        if not self.available:
            return Value.unavailable(type, self.reason, name)
        if self._data is not None and size is not None and offset + size <= len(self._data):
            valid = self._valid[offset : offset + size] if self._valid is not None else None
            address = self.address + offset if self.address is not None else None
            data = self._data[offset : offset + size]
            return self._derive(type, name=name, address=address, data=data, valid=valid)
        if self.address is not None:
            return self._derive(type, name=name, address=(self.address + offset) & _ADDRESS_MASK)
        if size == 0 or (size is None and self._data is not None):
            return self._derive(type, name=name, data=b"")
        return Value.unavailable(type, "outside the value", name)

    def _bytes_at(self, offset: int, size: int) -> tuple[bytes, bool]:
        """(bytes, all valid) of a range of this value (read from memory when not fetched)."""
        if self._data is None and self.address is not None and self._read is not None and self.available:
            return self._read(self.address + offset, size), True
        data, valid = self._fetch()
        chunk = data[offset : offset + size]
        return chunk, valid is None or all(valid[offset : offset + size])

    def _member_value(self, member: Member, offset: int, name: str | None) -> Value:
        """The value of ``member`` of this struct at ``offset`` (its own offset included)."""
        if member.is_static:
            return self._static_member(member, name)
        if member.location is not None:
            base_address = self._virtual_base_address(member)
            return self._derive(member.type, name=name, address=base_address)
        if member.bit_size is not None:
            return self._bitfield(member, offset, name)
        return self._part(offset, member.type, name)

    def _static_member(self, member: Member, name: str | None) -> Value:
        if member.address is not None and self._read is not None:
            return self._derive(member.type, name=name, address=member.address)
        if member.const_value is not None:
            size = member.type.size or 0
            if isinstance(member.const_value, int):
                data = (member.const_value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
            else:
                data = member.const_value[:size].ljust(size, b"\0")
            return self._derive(member.type, name=name, data=data)
        return Value.unavailable(member.type, "optimized out", name)

    def _virtual_base_address(self, member: Member) -> int:
        """Evaluate a DW_AT_data_member_location expression (a virtual base's: the
        object's address pushed first, as DWARF says)."""
        if self.address is None or self._read is None or member.location is None:
            raise ValueUnavailableError(f"{self._label()}: a virtual base needs the object in memory")
        return _evaluate_member_location(member.location, self.address, self._read)

    def _bitfield(self, member: Member, offset: int, name: str | None) -> Value:
        bit_offset = member.bit_offset or 0
        bit_size = member.bit_size or 0
        size = _size_of(member.type, name)
        count = (bit_offset + bit_size + 7) // 8
        try:
            raw, all_valid = self._bytes_at(offset, count)
        except ValueUnavailableError:
            return Value.unavailable(member.type, self.reason or "optimized out", name)
        if not all_valid:
            return Value.unavailable(member.type, "optimized out", name)
        bits = (int.from_bytes(raw, "little") >> bit_offset) & ((1 << bit_size) - 1)
        if _reads_signed(member.type) and bit_size and bits >> (bit_size - 1):
            bits -= 1 << bit_size
        data = (bits & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        return self._derive(member.type, name=name, data=data)

    @property
    def fields(self) -> list[Value]:
        """STRUCT/CLASS/UNION: its members in order (typedefs stripped; anonymous ones
        with name None, bases named by their type name, static members included);
        ARRAY: its elements (none when the length is unknown)."""
        value = self._coerce_ref()
        core = value.type.strip_typedefs()
        if core.kind is TypeKind.ARRAY:
            return [value[index] for index in range(core.length or 0)]
        if core.kind not in _STRUCTS:
            raise ValueTypeError(f"{value._label()}: {value.type.c_name()} has no fields")
        out: list[Value] = []
        for member in core.members:
            if member.is_base:
                base_name = member.type.strip_typedefs().name or member.type.c_name()
                out.append(value._member_value(member, member.offset, base_name))
            else:
                label = None if member.name is None else value._derived_name("." + member.name)
                out.append(value._member_value(member, member.offset, label))
        return out

    def __getitem__(self, key: int | str) -> Value:
        """``value[3]``: an array element or ``p[3]`` through a pointer; ``value["x"]``: a
        member, searching anonymous members and base classes. Raises ``KeyError`` for a
        missing member, ``IndexError`` outside an array known only by its bytes,
        ``ValueTypeError`` when the type has neither."""
        value = self._coerce_ref()
        core = value.type.strip_typedefs()
        if isinstance(key, str):
            if core.kind not in _STRUCTS:
                raise ValueTypeError(
                    f"{value._label()}: {value.type.c_name()} is not a struct, class or union"
                )
            path = core.member_path(key)
            if path is None:
                raise KeyError(key)
            current = value
            for step in path[:-1]:
                current = current._member_value(step, step.offset, current.name)
            return current._member_value(path[-1], path[-1].offset, value._derived_name("." + key))
        index = int(key)
        if core.kind is TypeKind.ARRAY:
            element = core.target
            element_size = element.size if element is not None else None
            if element is None or element_size is None:
                raise ValueTypeError(f"{value._label()}: array of elements of unknown size")
            name = value._derived_name(f"[{index}]")
            inside = core.length is None or 0 <= index < core.length
            if value.address is None and not inside:
                raise IndexError(f"{value._label()}[{index}]: outside an array of {core.length}")
            return value._part(index * element_size, element, name)
        if core.kind is TypeKind.POINTER:
            target = core.target
            if target is None or target.strip_typedefs().kind in (TypeKind.VOID, TypeKind.FUNCTION):
                raise ValueTypeError(f"{value._label()}: cannot index a {value.type.c_name()}")
            target_size = _size_of(target, value.name)
            address = (int(value) + index * target_size) & _ADDRESS_MASK
            return value._pointee(target, address, value._derived_name(f"[{index}]"))
        raise ValueTypeError(f"{value._label()}: cannot index a {value.type.c_name()}")

    def _pointee(self, target: Type, address: int, name: str | None) -> Value:
        if self._read is None:
            raise ValueUnavailableError(f"{self._label()}: no memory to read {address:#x} from")
        return self._derive(target, name=name, address=address)

    def deref(self) -> Value:
        """What a POINTER or REFERENCE designates, as a (lazy) memory value named
        ``*p`` (a reference keeps its name). Raises ``ValueUnavailableError`` for a
        ``void *`` ("cannot dereference a void *") or a function pointer, and
        ``ValueTypeError`` for a type that is neither."""
        core = self.type.strip_typedefs()
        if core.kind not in (TypeKind.POINTER, *_REFERENCES):
            raise ValueTypeError(f"{self._label()}: cannot dereference a {self.type.c_name()}")
        target = core.target
        if target is None or target.strip_typedefs().kind is TypeKind.VOID:
            raise ValueUnavailableError(f"{self._label()}: cannot dereference a {self.type.c_name()}")
        if target.strip_typedefs().kind is TypeKind.FUNCTION and core.kind is TypeKind.POINTER:
            raise ValueUnavailableError(f"{self._label()}: cannot dereference a function pointer")
        address = int.from_bytes(self.data()[:_POINTER_SIZE], "little")
        if core.kind in _REFERENCES:
            return self._pointee(target, address, self.name)
        name = None if self.name is None else f"*{self.name}" if _is_simple(self.name) else f"*({self.name})"
        return self._pointee(target, address, name)

    def address_of(self) -> Value:
        """A POINTER value holding this value's address (named ``&x``). Raises
        ``ValueUnavailableError`` when the value is not in memory."""
        if self.address is None:
            where = f"register {self.register}" if self.register else "no memory"
            raise ValueUnavailableError(f"{self._label()}: cannot take the address of a value in {where}")
        name = None if self.name is None else f"&{self.name}" if _is_simple(self.name) else f"&({self.name})"
        return self._derive(
            self.type.pointer_to(), name=name, data=self.address.to_bytes(_POINTER_SIZE, "little")
        )

    def with_name(self, name: str) -> Value:
        """The same value under another name."""
        copy = self._derive(self.type, name, address=self.address, data=self._data, valid=self._valid)
        copy.register = self.register
        copy.available, copy.reason = self.available, self.reason
        return copy

    def cast(self, type: Type) -> Value:
        """A C-style cast: scalars convert by value (int <-> float truncating toward
        zero, to bool by truth, integers wrapped to the new size), pointers and integers
        into each other, an array or function to a pointer (its address), and any value
        to a type of the same size by reinterpreting its bytes (aggregates included).
        Raises ``ValueTypeError`` otherwise."""
        source = self._coerce_ref() if not type.is_reference else self
        name = None if self.name is None else f"({type.c_name()}){self.name}"
        target = type.strip_typedefs()
        core = source.type.strip_typedefs()
        if target.kind is TypeKind.VOID:
            return Value(type, name=name, data=b"")
        if target.kind in _REFERENCES:
            return self._derive(type, name=name, data=source.address_of().data())
        if type.is_scalar and (source.type.is_scalar or core.kind in (TypeKind.ARRAY, TypeKind.FUNCTION)):
            size = _size_of(type, name)
            if core.kind in (TypeKind.ARRAY, TypeKind.FUNCTION):
                if source.address is None:
                    raise ValueUnavailableError(f"{source._label()}: not in memory, it has no address")
                number: int | float = source.address
            elif source.type.is_float:
                number = float(source)
            else:
                number = int(source)
            if type.is_float:
                layout = float_format(type)
                if layout is None:
                    raise ValueTypeError(f"{name}: unsupported float size {size}")
                data = encode_float(float(number), layout).ljust(size, b"\0")
            else:
                if target.kind is TypeKind.BASE and target.encoding is Encoding.BOOLEAN:
                    number = int(number != 0)  # by truth, before any truncation
                elif isinstance(number, float):
                    if math.isnan(number) or math.isinf(number):
                        raise ValueTypeError(f"{source._label()}: {number} has no integer value")
                    number = int(number)
                data = (number & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
            return self._derive(type, name=name, data=data)
        if type.size is not None and source.type.size == type.size:
            if source._data is None and source.address is not None:
                return self._derive(type, name=name, address=source.address)
            if not source.available:
                return Value.unavailable(type, source.reason, name)
            data, valid = source._fetch()
            return self._derive(type, name=name, address=source.address, data=data, valid=valid)
        raise ValueTypeError(f"{self._label()}: cannot cast {self.type.c_name()} to {type.c_name()}")

    def string(self, limit: int = PRINT_ELEMENTS) -> bytes | None:
        """The C string a char pointer or array holds: its bytes up to (not including)
        the first NUL element or ``limit`` elements (None when the element type is not a
        character type). Wide elements come as their raw bytes."""
        value = self._coerce_ref()
        core = value.type.strip_typedefs()
        element = core.target
        if element is None or core.kind not in (TypeKind.POINTER, TypeKind.ARRAY) or not _textual(element):
            return None
        width = element.size or 1
        if core.kind is TypeKind.ARRAY:
            data = value.data()
            count = min(len(data) // width, limit)
            out = bytearray()
            for index in range(count):
                chunk = data[index * width : (index + 1) * width]
                if not any(chunk):
                    break
                out += chunk
            return bytes(out)
        if value._read is None:
            raise ValueUnavailableError(f"{value._label()}: no memory to read the string from")
        chars, _error, found_nul = _read_string(value._read, int(value), width, limit)
        if found_nul:
            chars.pop()
        return b"".join(code.to_bytes(width, "little") for code in chars)

    # ------------------------------------------------------------ printing

    def format(self, symbolize: Symbolize | None = None, *, hexadecimal: bool = False) -> str:
        """gdb's ``print`` text, with ``symbolize`` (or the hook given at construction)
        naming addresses: ``0x4040a0 <g_int>``. ``hexadecimal`` is ``print/x``: every
        scalar as a hex number of its size (chars and bools too, floats truncated to
        bits), pointers bare, no strings and no ``(type)`` prefix."""
        return _ValuePrinter(symbolize or self._symbolize, hexadecimal).top(self)

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        where = f" at {self.address:#x}" if self.address is not None else ""
        return f"<Value {self.name or '?'}: {self.type.c_name()}{where}>"


def _is_simple(name: str) -> bool:
    """Whether ``name`` needs no parentheses before ``.x``/``[i]``/``->x``."""
    return all(c.isalnum() or c in "_.[]>:-" for c in name) and not name.startswith("-")


def _size_of(type: Type, name: str | None) -> int:
    size = type.size
    if size is None:
        raise ValueTypeError(f"{name or 'value'}: {type.c_name()} has no known size")
    return size


def _reads_signed(type: Type) -> bool:
    """How gdb unpacks a value of this type: enums by their enumerators' signs."""
    core = type.strip_typedefs()
    if core.kind is TypeKind.ENUM:
        return not core.enum_unsigned
    return core.kind is TypeKind.BASE and core.encoding in _SIGNED_READ


def _evaluate_member_location(expression: bytes, object_address: int, read: ReadMemory) -> int:
    """A DW_AT_data_member_location expression with the object's address pushed: the
    few operations producers use for virtual bases (dup, deref, constants, plus, minus)."""
    stack = [object_address]
    position = 0
    while position < len(expression):
        op = expression[position]
        position += 1
        if 0x30 <= op <= 0x4F:  # DW_OP_lit0..31
            stack.append(op - 0x30)
        elif op == 0x12:  # dup
            stack.append(stack[-1])
        elif op == 0x06:  # deref
            stack.append(int.from_bytes(read(stack.pop() & _ADDRESS_MASK, _POINTER_SIZE), "little"))
        elif op == 0x10:  # constu
            number, position = read_leb128(expression, position)
            stack.append(number)
        elif op == 0x11:  # consts
            number, position = read_leb128(expression, position, signed=True)
            stack.append(number)
        elif op == 0x23:  # plus_uconst
            number, position = read_leb128(expression, position)
            stack.append(stack.pop() + number)
        elif op == 0x22:  # plus
            right = stack.pop()
            stack.append(stack.pop() + right)
        elif op == 0x1C:  # minus
            right = stack.pop()
            stack.append(stack.pop() - right)
        else:
            raise ValueUnavailableError(f"unsupported DWARF operation {op:#x} in a member location")
    return stack[-1] & _ADDRESS_MASK


# ====================================================================== floats


def _float_fields(data: bytes, layout: FloatFormat) -> tuple[int, int, int]:
    """(sign, biased exponent, stored mantissa) of a float's bytes."""
    bits = int.from_bytes(data, "little")
    width = layout.mantissa_bits + layout.exponent_bits + 1
    bits &= (1 << width) - 1
    mantissa = bits & ((1 << layout.mantissa_bits) - 1)
    exponent = (bits >> layout.mantissa_bits) & ((1 << layout.exponent_bits) - 1)
    return bits >> (width - 1), exponent, mantissa


def _significand(layout: FloatFormat, exponent: int, mantissa: int) -> tuple[int, int]:
    """(integer significand, power of two) of a finite float: value = s * 2**p."""
    bias = (1 << (layout.exponent_bits - 1)) - 1
    fraction_bits = layout.mantissa_bits - (1 if layout.explicit_integer_bit else 0)
    if layout.explicit_integer_bit:
        return mantissa, max(exponent, 1) - bias - fraction_bits
    if exponent == 0:
        return mantissa, 1 - bias - fraction_bits
    return mantissa | (1 << layout.mantissa_bits), exponent - bias - fraction_bits


def decode_float(data: bytes, layout: FloatFormat) -> float:
    """The Python float nearest a float's bytes (x87 and binary128 round; huge ones are inf)."""
    sign, exponent, mantissa = _float_fields(data, layout)
    top = (1 << layout.exponent_bits) - 1
    fraction = mantissa & ((1 << 63) - 1) if layout.explicit_integer_bit else mantissa
    if exponent == top:
        if fraction:
            return math.nan
        return -math.inf if sign else math.inf
    significand, power = _significand(layout, exponent, mantissa)
    try:
        magnitude = float(Fraction(significand) * Fraction(2) ** power)
    except OverflowError:
        magnitude = math.inf
    return -magnitude if sign else magnitude


def encode_float(number: float, layout: FloatFormat) -> bytes:
    """The bytes of ``number`` in ``layout`` (exact: every double fits x87 and binary128)."""
    if layout.size == 4:
        return struct.pack("<f", number)
    if layout.size == 8 and layout.exponent_bits == 11:
        return struct.pack("<d", number)
    sign = 1 if math.copysign(1.0, number) < 0 else 0
    top = (1 << layout.exponent_bits) - 1
    bias = (1 << (layout.exponent_bits - 1)) - 1
    stored_bytes = (layout.mantissa_bits + layout.exponent_bits + 8) // 8
    if math.isnan(number) or math.isinf(number):
        exponent = top
        if layout.explicit_integer_bit:
            mantissa = (1 << 63) | ((1 << 62) if math.isnan(number) else 0)
        else:
            mantissa = (1 << (layout.mantissa_bits - 1)) if math.isnan(number) else 0
    elif number == 0:
        exponent = mantissa = 0
    else:
        fraction, power = math.frexp(abs(number))  # abs(number) = fraction * 2**power, 0.5 <= fraction < 1
        exponent = power - 1 + bias
        if layout.explicit_integer_bit:
            mantissa = int(fraction * (1 << 64))
        else:
            mantissa = int(fraction * (1 << (layout.mantissa_bits + 1))) & ((1 << layout.mantissa_bits) - 1)
    bits = (
        (sign << (layout.mantissa_bits + layout.exponent_bits))
        | (exponent << layout.mantissa_bits)
        | mantissa
    )
    return bits.to_bytes(stored_bytes, "little")


def format_float(data: bytes, layout: FloatFormat) -> str:
    """gdb's text for a float's bytes: ``%.{N}g`` of the exact binary value with gdb's
    digits (9 for float, 17 for double, 21 for x87 long double, 36 for binary128),
    ``inf``/``-inf``, ``nan(0x<mantissa>)`` and ``<invalid float value>`` (x87 forms
    whose integer bit contradicts the exponent)."""
    sign, exponent, mantissa = _float_fields(data, layout)
    top = (1 << layout.exponent_bits) - 1
    if layout.explicit_integer_bit and (exponent == 0) != (mantissa >> 63 == 0):
        return "<invalid float value>"
    fraction = mantissa & ((1 << 63) - 1) if layout.explicit_integer_bit else mantissa
    minus = "-" if sign else ""
    if exponent == top:
        if fraction == 0:
            return f"{minus}inf"
        return f"{minus}nan(0x{_nan_mantissa(mantissa, layout.mantissa_bits)})"
    significand, power = _significand(layout, exponent, mantissa)
    return minus + _format_g(significand, power, layout.decimal_digits)


def _nan_mantissa(mantissa: int, bits: int) -> str:
    """floatformat_mantissa: the top ``bits % 32`` bits in %lx, then 32-bit words in %08lx."""
    first = bits % 32 or 32
    rest = bits - first
    text = f"{mantissa >> rest:x}"
    while rest > 0:
        rest -= 32
        text += f"{(mantissa >> rest) & 0xFFFFFFFF:08x}"
    return text


def _format_g(significand: int, power: int, precision: int) -> str:
    """printf's ``%.{precision}g`` of ``significand * 2**power`` (non-negative), rounded
    half to even on the exact value, as glibc does."""
    if significand == 0:
        return "0"
    if power >= 0:
        number, exp10 = significand << power, 0
    else:
        number, exp10 = significand * 5**-power, power
    digits = str(number)
    if len(digits) > precision:
        cut = len(digits) - precision
        quotient, remainder = divmod(number, 10**cut)
        twice = 2 * remainder
        if twice > 10**cut or (twice == 10**cut and quotient % 2):
            quotient += 1
        if len(str(quotient)) > precision:
            quotient //= 10
            cut += 1
        digits = str(quotient)
        exp10 += cut
    scientific = exp10 + len(digits) - 1
    if -4 <= scientific < precision:
        if scientific >= 0:
            whole = digits[: scientific + 1].ljust(scientific + 1, "0")
            decimals = digits[scientific + 1 :]
        else:
            whole = "0"
            decimals = "0" * (-scientific - 1) + digits
        decimals = decimals.rstrip("0")
        return whole + ("." + decimals if decimals else "")
    tail = digits[1:].rstrip("0")
    mantissa = digits[0] + ("." + tail if tail else "")
    return f"{mantissa}e{'+' if scientific >= 0 else '-'}{abs(scientific):02d}"


# ====================================================================== characters


def _textual(type: Type) -> bool:
    """gdb's c_textual_element_type: a one-byte integer (char, signed/unsigned char,
    int8_t...), a UTF base type (char16_t in C++), or a type named wchar_t, char16_t or
    char32_t anywhere along its typedef chain."""
    t: Type | None = type
    for _ in range(64):
        if t is None:
            break
        if t.kind not in (TypeKind.CONST, TypeKind.VOLATILE) and t.name in (
            "wchar_t",
            "char16_t",
            "char32_t",
        ):
            return True
        if t.kind not in (TypeKind.TYPEDEF, TypeKind.CONST, TypeKind.VOLATILE):
            break
        t = t.target
    core = type.strip_typedefs()
    if core.kind is not TypeKind.BASE:
        return False
    if core.encoding is Encoding.UTF:
        return True
    return core.size == 1 and core.encoding in (
        Encoding.SIGNED_CHAR,
        Encoding.UNSIGNED_CHAR,
        Encoding.SIGNED,
        Encoding.UNSIGNED,
    )


def _char_prefix(type: Type) -> str:
    """gdb's classify_type: L, u or U by the first wide-character name on the typedef chain."""
    t: Type | None = type
    for _ in range(64):
        if t is None:
            break
        if t.kind in (TypeKind.CONST, TypeKind.VOLATILE):
            t = t.target
            continue
        if t.name is None:
            return ""
        prefix = {"wchar_t": "L", "char16_t": "u", "char32_t": "U"}.get(t.name)
        if prefix is not None:
            return prefix
        if t.kind is not TypeKind.TYPEDEF:
            break
        t = t.target
    return ""


_NAMED_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


class _CharWriter:
    """gdb's print_wchar under the C locale: printable ASCII as itself (the quote and
    backslash escaped), named escapes for \\a \\b \\f \\n \\r \\t \\v, other values as
    ``\\ooo`` when they fit three octal digits, else ``\\x...`` (after which a hex digit
    must be escaped too)."""

    def __init__(self, quote: str) -> None:
        self.quote = quote
        self.need_escape = False

    def char(self, code: int) -> str:
        need_escape, self.need_escape = self.need_escape, False
        if code in _NAMED_ESCAPES:
            return _NAMED_ESCAPES[code]
        if 0x20 <= code < 0x7F and not (need_escape and code in _HEX_DIGITS):
            text = chr(code)
            return "\\" + text if text in (self.quote, "\\") else text
        if code <= 0o777:
            return f"\\{code:03o}"
        self.need_escape = True
        return f"\\x{code:x}"


def _char_literal(code: int, width: int, type: Type) -> str:
    """``'a'``, ``L'w'``, ``'\\000'`` for one character value (``code`` unsigned)."""
    return _char_prefix(type) + "'" + _CharWriter("'").char(code & ((1 << (8 * width)) - 1)) + "'"


def _printstr(chars: list[int], type: Type, force_ellipses: bool, limit: int) -> str:
    """gdb's c_printstr/generic_printstr: the L/u/U prefix once, the trailing NUL
    dropped, runs of more than REPEAT_THRESHOLD equal characters as ``'c' <repeats N
    times>``, the rest in double quotes, ``...`` when the limit stopped it before the
    end or the caller forces it."""
    length = len(chars)
    if not force_ellipses and length and chars[-1] == 0:
        length -= 1
    prefix = _char_prefix(type)
    if length == 0:
        return f'{prefix}""'
    groups: list[tuple[int, int]] = []
    position = printed = 0
    while printed < limit and position < length:
        code = chars[position]
        run = 1
        while position + run < length and chars[position + run] == code:
            run += 1
        groups.append((code, run))
        position += run
        printed += run
    finished = position >= length
    pieces: list[str] = [prefix]
    # One writer: gdb escapes with the string's quote (a '"' in a repeat block is '\"').
    writer = _CharWriter('"')
    state = "start"
    for code, run in groups:
        if run > REPEAT_THRESHOLD:
            if state == "single":
                pieces.append('"')
            if state != "start":
                pieces.append(", ")
            pieces.append("'" + writer.char(code) + f"' <repeats {run} times>")
            state = "repeat"
        else:
            if state != "single":
                if state != "start":
                    pieces.append(", ")
                pieces.append('"')
            pieces.extend(writer.char(code) for _ in range(run))
            state = "single"
    if state == "single":
        pieces.append('"')
    if force_ellipses or not finished:
        pieces.append("...")
    return "".join(pieces)


def _read_string(
    read: ReadMemory, address: int, width: int, limit: int
) -> tuple[list[int], int | None, bool]:
    """gdb's read_string for a NUL-terminated string: (characters read, the NUL
    included when found; the address of the first unreadable byte or None; whether a
    NUL ended it). Reads 8 characters at a time, byte by byte around a fault."""
    chars: list[int] = []
    error: int | None = None
    while len(chars) < limit:
        count = min(8, limit - len(chars))
        try:
            chunk = read(address, count * width)
        except MemoryAccessError:
            chunk = b""
            for index in range(count):
                try:
                    chunk += read(address + index * width, width)
                except MemoryAccessError:
                    error = address + index * width
                    break
        for index in range(len(chunk) // width):
            code = int.from_bytes(chunk[index * width : (index + 1) * width], "little")
            chars.append(code)
            address += width
            if code == 0:
                return chars, None, True
        if error is not None:
            return chars, error, False
    return chars, None, False


# ====================================================================== printing values


#: What ``print/x`` shows as the bits of the value (an rvalue reference too: gdb 13).
_HEX_SCALARS = frozenset(
    {TypeKind.POINTER, TypeKind.ENUM, TypeKind.BASE, TypeKind.POINTER_TO_MEMBER, TypeKind.UNSPECIFIED,
     TypeKind.RVALUE_REFERENCE}
)  # fmt: skip


class _ValuePrinter:
    """gdb 13's value printer for C and C++ (valprint.c, c-valprint.c, cp-valprint.c)
    with its default options."""

    def __init__(self, symbolize: Symbolize | None, hexadecimal: bool = False) -> None:
        self.symbolize = None if hexadecimal else symbolize
        self.hexadecimal = hexadecimal

    def top(self, value: Value) -> str:
        """value_print: a ``(type) `` prefix for pointers and references, then the value."""
        if not value.available:
            return f"<{value.reason}>"
        if self.hexadecimal and value.type.strip_typedefs().kind is not TypeKind.REFERENCE:
            return self.value(value, 0, True)  # gdb keeps the prefix of an lvalue reference only
        t = value.type
        outer = t.unqualified()
        core = t.strip_typedefs()
        if core.kind is TypeKind.POINTER or core.kind in _REFERENCES:
            try:
                value._fetch()
            except MemoryAccessError as error:
                return _memory_error(error)
            except (ValueUnavailableError, ValueTypeError):
                return self.value(value, 0, True)
            target = outer.target.unqualified() if outer.target is not None else None
            is_char_pointer = (
                outer.kind is TypeKind.POINTER
                and target is not None
                and target.kind not in (TypeKind.POINTER, TypeKind.ARRAY, TypeKind.FUNCTION)
                and target.name in _STRING_ELEMENT_NAMES
            )
            if not is_char_pointer and value.validity() is None:
                return f"({t.c_name()}) " + self.value(value, 0, True)
        return self.value(value, 0, True)

    def address(self, address: int) -> str:
        """paddress and print_address_symbolic: ``0x4040a0 <g_int+4>``."""
        text = f"{address:#x}"
        if self.symbolize is not None and address:
            symbol = self.symbolize(address)
            if symbol:
                text += f" <{symbol}>"
        return text

    def value(self, value: Value, recurse: int, deref_ref: bool) -> str:
        if not value.available:
            return f"<{value.reason}>"
        core = value.type.strip_typedefs()
        kind = core.kind
        if kind is TypeKind.FUNCTION:
            return "{" + value.type.c_name() + "} " + self.address(value.address or 0)
        if kind is TypeKind.VOID:
            return "void"
        if kind is TypeKind.ARRAY and core.length is None:
            # gdb shows an array of unknown bound (a flexible member) by its address.
            return f"{value.address or 0:#x}"
        if (kind in _STRUCTS or kind is TypeKind.ARRAY) and recurse >= MAX_DEPTH:
            return "{...}"
        try:
            data, valid = value._fetch()
        except MemoryAccessError as error:
            return _memory_error(error)
        except ValueTypeError:
            return "<incomplete type>"
        except ValueUnavailableError as error:
            return f"<{value.reason or str(error)}>"
        if kind in _STRUCTS:
            return self.struct(value, core, recurse)
        if kind is TypeKind.ARRAY:
            return self.array(value, core, data, valid, recurse)
        if valid is not None:
            return "<optimized out>"
        if self.hexadecimal and kind in _HEX_SCALARS:
            return self.hex_scalar(core, data)
        if kind is TypeKind.POINTER:
            return self.pointer(value, core, data)
        if kind in _REFERENCES:
            return self.reference(value, core, data, recurse, deref_ref)
        if kind is TypeKind.ENUM:
            return self.enum(core, data)
        if kind is TypeKind.POINTER_TO_MEMBER:
            return self.member_pointer(core, data)
        if kind is TypeKind.BASE:
            return self.base(value.type, core, data)
        return str(int.from_bytes(data, "little"))

    # -------------------------------------------------------- scalars

    def hex_scalar(self, core: Type, data: bytes) -> str:
        """print_scalar_formatted with 'x': the value's bits as an unsigned hex number
        (a float's encoding, not its value, as gdb 13 prints it)."""
        return f"{int.from_bytes(data, 'little'):#x}"

    def base(self, declared: Type, core: Type, data: bytes) -> str:
        encoding = core.encoding
        if encoding is Encoding.BOOLEAN:
            number = int.from_bytes(data, "little")
            return {0: "false", 1: "true"}.get(number, str(number))
        if encoding in (Encoding.FLOAT, Encoding.COMPLEX_FLOAT):
            layout = float_format(core)
            if layout is None:
                return f"0x{data[::-1].hex()}"
            if encoding is Encoding.FLOAT:
                return format_float(data, layout)
            half = len(data) // 2
            return f"{format_float(data[:half], layout)} + {format_float(data[half:], layout)}i"
        number = int.from_bytes(data, "little", signed=encoding in _SIGNED_READ)
        if _textual(declared):
            return f"{number} {_char_literal(number, len(data), declared)}"
        return str(number)

    def enum(self, core: Type, data: bytes) -> str:
        """generic_val_print_enum_1: the enumerator, a flag enum's ``(A | B | unknown:
        0x..)``, or the number."""
        number = int.from_bytes(data, "little", signed=not core.enum_unsigned)
        enumerators = core.enumerators
        for enumerator in enumerators:
            if enumerator.value == number:
                return enumerator.printed_name
        if not core.is_flag_enum:
            return str(number)
        parts: list[str] = []
        for enumerator in enumerators:
            if number & enumerator.value:
                parts.append(enumerator.printed_name)
                number &= ~enumerator.value
        if number:
            parts.append(f"unknown: 0x{number:x}")
        if not parts:
            return "0"
        return "(" + " | ".join(parts) + ")"

    def pointer(self, value: Value, core: Type, data: bytes) -> str:
        """print_unpacked_pointer: a function's address, or an address then, for a
        pointer to characters, the string."""
        address = int.from_bytes(data[:_POINTER_SIZE], "little")
        target = core.target
        if target is not None and target.strip_typedefs().kind is TypeKind.FUNCTION:
            return self.address(address)
        text = self.address(address)
        if target is not None and address != 0 and _textual(target):
            text += " " + self.string_at(value, address, target)
        return text

    def string_at(self, value: Value, address: int, element: Type) -> str:
        """val_print_string: up to 200 characters, ``...`` when more follow, and the
        memory error after what could be read."""
        width = element.size or 1
        if value._read is None:
            return _memory_error(MemoryAccessError("no memory", address))
        chars, error, found_nul = _read_string(value._read, address, width, PRINT_ELEMENTS)
        force = False
        if not found_nul and error is None and chars:
            try:
                peek = value._read(address + len(chars) * width, width)
                force = int.from_bytes(peek, "little") != 0
            except MemoryAccessError:
                force = False
        text = ""
        if error is None or chars:
            text = _printstr(chars, element, force, PRINT_ELEMENTS)
        if error is not None:
            text += f"<error: Cannot access memory at address {error:#x}>"
        return text

    def reference(self, value: Value, core: Type, data: bytes, recurse: int, deref_ref: bool) -> str:
        address = int.from_bytes(data[:_POINTER_SIZE], "little")
        text = f"@{address:#x}"
        if deref_ref:
            target = core.target
            if target is None or value._read is None:
                return text + ": ???"
            referred = value._derive(target, None, address=address)
            text += ": " + self.value(referred, recurse, False)
        return text

    def member_pointer(self, core: Type, data: bytes) -> str:
        """cp_print_class_member: ``&Class::field`` (NULL for -1); a method pointer by
        its function's address."""
        target = core.target.strip_typedefs() if core.target is not None else None
        if target is not None and target.kind is TypeKind.FUNCTION:
            pointer = int.from_bytes(data[:_POINTER_SIZE], "little")
            if pointer & 1:
                return f"&virtual table offset {pointer - 1}"
            return self.address(pointer)
        offset = int.from_bytes(data[:_POINTER_SIZE], "little", signed=True)
        if offset == -1:
            return "NULL"
        found = _find_class_member(core.containing, offset * 8) if core.containing is not None else None
        if found is None:
            return str(offset)
        owner, member = found
        return f"&{owner.name or owner.c_name()}::{member.name}"

    # -------------------------------------------------------- aggregates

    def struct(self, value: Value, core: Type, recurse: int) -> str:
        """cp_print_value_fields: bases as ``<Base> = {...}``, then the fields."""
        parts: list[str] = []
        members = core.members
        for member in members:
            if not member.is_base:
                continue
            base_type = member.type.strip_typedefs()
            try:
                part = value._member_value(member, member.offset, None)
                body = self.struct(part, base_type, recurse + 1) if part.available else f"<{part.reason}>"
            except MemoryAccessError:
                body = "<invalid address>"  # a virtual base whose offset cannot be read
            except ValueUnavailableError:
                body = "<unavailable>"
            parts.append(f"<{base_type.name or ''}> = {body}, ")
        fields = [m for m in members if not m.is_base]
        if not fields:
            return "{" + "".join(parts) + "<No data fields>}"
        texts: list[str] = []
        for member in fields:
            label = ""
            if member.is_static:
                label = f"static {member.name} = "
            elif member.name is not None:
                label = f"{member.name} = "
            try:
                field = value._member_value(member, member.offset, member.name)
                text = self.value(field, recurse + 1, False)
            except MemoryAccessError as error:
                text = _memory_error(error)
            except ValueUnavailableError as error:
                text = f"<error reading variable: {error}>" if member.is_static else "<optimized out>"
            texts.append(label + text)
        return "{" + "".join(parts) + ", ".join(texts) + "}"

    def array(self, value: Value, core: Type, data: bytes, valid: bytes | None, recurse: int) -> str:
        element = core.target
        length = core.length or 0
        if element is None or not element.size:
            return "{}"
        width = element.size
        if _textual(element) and valid is None and not self.hexadecimal:
            chars = [int.from_bytes(data[i * width : (i + 1) * width], "little") for i in range(length)]
            return _printstr(chars, element, False, PRINT_ELEMENTS)
        pieces: list[str] = []
        printed = 0
        index = 0

        def chunk(i: int) -> tuple[bytes, bytes | None]:
            return data[i * width : (i + 1) * width], None if valid is None else valid[
                i * width : (i + 1) * width
            ]

        while index < length and printed < PRINT_ELEMENTS:
            first = chunk(index)
            run = 1
            while index + run < length and chunk(index + run) == first:
                run += 1
            text = self.value(value[index], recurse + 1, False)
            if run > REPEAT_THRESHOLD:
                pieces.append(f"{text} <repeats {run} times>")
                index += run
                printed += REPEAT_THRESHOLD
            else:
                pieces.append(text)
                index += 1
                printed += 1
        return "{" + ", ".join(pieces) + ("..." if index < length else "") + "}"


def _memory_error(error: MemoryAccessError) -> str:
    return f"<error: Cannot access memory at address {error.address:#x}>"


def _find_class_member(owner: Type, bit_offset: int) -> tuple[Type, Member] | None:
    """cp_find_class_member: the non-static member at ``bit_offset`` of ``owner``,
    looking into base classes when none of its own is there."""
    core = owner.strip_typedefs()
    for member in core.members:
        if member.is_base or member.is_static:
            continue
        if member.offset * 8 + (member.bit_offset or 0) == bit_offset:
            return core, member
    for member in core.members:
        if not member.is_base:
            continue
        start = member.offset * 8
        size = (member.type.size or 0) * 8
        if start <= bit_offset < start + size:
            return _find_class_member(member.type, bit_offset - start)
    return None
