"""DWARF expressions, location descriptions and location lists: bytes in, locations out.

``evaluate_location`` turns a ``DW_AT_location`` expression into a ``Location``
(memory, register, value, implicit bytes, implicit pointer, pieces, or unavailable);
``evaluate_value`` computes an expression's value (frame bases, member offsets,
bounds, CFI rules); ``LocationLists`` picks the expression of a location list
(``.debug_loc`` of DWARF 2-4, ``.debug_loclists`` of DWARF 5) that covers a pc.

The module is pure: it reads no process, file or section on its own. Everything a
frame knows (its registers, memory, CFA, frame base, TLS block, the caller's values
at the call site) comes through an ``ExpressionContext``, so the same evaluator
serves a live thread, a core file, a caller frame whose registers the unwinder
recovered, the unwinder's own CFI rules (``stackwalk.evaluate_expression`` is a
wrapper over it), and tests that hand it bytes.

A value the frame no longer holds is never guessed: any ``Unavailable`` (or
``MemoryAccessError``) raised while a location is computed turns into an
``UnavailableLocation`` saying why, for the whole location or, in a composite, for
the one piece it happened in. Malformed or unsupported bytes raise
``ExpressionError`` naming the operation and its byte offset.

Expressions are decoded once into operations (cached by their bytes) and then
executed, so truncated operands are found before anything runs and branches jump
to operation boundaries only.
"""

from __future__ import annotations

import functools
import math
import operator
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, TypeAlias

from lindbg.errors import LindbgError, MemoryAccessError
from lindbg.symbols.cfi import DWARF_REGS

__all__ = [
    "DEFAULT_RANGE",
    "MAX_STEPS",
    "CompositeLocation",
    "ExpressionContext",
    "ExpressionError",
    "ImplicitLocation",
    "ImplicitPointerLocation",
    "Location",
    "LocationLists",
    "MemoryLocation",
    "Piece",
    "RegisterLocation",
    "RegistersContext",
    "SimpleLocation",
    "Unavailable",
    "UnavailableLocation",
    "ValueLocation",
    "evaluate_location",
    "evaluate_value",
    "frame_base_value",
    "register_of",
]

_MASK64 = (1 << 64) - 1
#: Operations executed before an expression is taken to loop forever: a straight
#: expression runs at most one per byte, so only backward branches can get near it.
MAX_STEPS = 10_000


class ExpressionError(LindbgError):
    """An expression or location list is malformed or uses an unsupported operation.

    The message names the operation (``DW_OP_xderef``, or ``DW_OP_0xe5`` for an
    unknown one) and its byte offset in the expression, or the section and offset of
    a bad location-list entry. This is a fault of the debug information (or a gap in
    this module), not of the program's state: show it, do not retry.
    """


class Unavailable(Exception):
    """A value that evaluation needs cannot be recovered (``reason`` says which).

    Raised by an ``ExpressionContext`` (a register the unwinder did not recover, an
    entry value with no call-site information, no TLS block) and by operations that
    need what a frame cannot give (``DW_OP_push_object_address``). Location
    evaluation turns it into an ``UnavailableLocation``; value evaluation lets it
    through.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ----------------------------------------------------------------- locations


@dataclass(frozen=True, slots=True)
class MemoryLocation:
    """The object is in target memory at runtime ``address``."""

    address: int


@dataclass(frozen=True, slots=True)
class RegisterLocation:
    """The object is in DWARF register ``regno`` (x86-64 numbering: 0-16 as in
    ``cfi.DWARF_REGS``, 17-32 xmm0-15). The register is not read here: a caller frame
    whose register was not recovered becomes unavailable when it is read."""

    regno: int


@dataclass(frozen=True, slots=True)
class ValueLocation:
    """The object has no location; this is its value (``DW_OP_stack_value``).

    A generic value is 64 bits, unsigned; a typed one (``DW_OP_regval_type``,
    ``DW_OP_convert`` ...) is the raw bits of its base type, two's complement for a
    signed integer and the IEEE bits for a floating-point one. Either way the
    object's bytes are the little-endian bytes of ``value``, truncated to its size.
    """

    value: int


@dataclass(frozen=True, slots=True)
class ImplicitLocation:
    """The object has no location; these are its bytes (``DW_OP_implicit_value``)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ImplicitPointerLocation:
    """The object is a pointer to an object that has no address: the one described by
    the DIE at ``.debug_info`` offset ``die_offset``, ``byte_offset`` bytes into it."""

    die_offset: int
    byte_offset: int


@dataclass(frozen=True, slots=True)
class UnavailableLocation:
    """The program no longer holds the object (or this part of it): show
    ``<value unavailable>``. ``reason`` is "optimized out" or what was missing."""

    reason: str


SimpleLocation: TypeAlias = (
    MemoryLocation | RegisterLocation | ValueLocation | ImplicitLocation | ImplicitPointerLocation
    | UnavailableLocation
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Piece:
    """``size_bits`` bits of an object, taken ``offset_bits`` into ``location``
    (``DW_OP_piece``: whole bytes at offset 0; ``DW_OP_bit_piece``: any bits)."""

    location: SimpleLocation
    size_bits: int
    offset_bits: int = 0


@dataclass(frozen=True, slots=True)
class CompositeLocation:
    """An object assembled from pieces, lowest-addressed piece first."""

    pieces: tuple[Piece, ...]


Location: TypeAlias = SimpleLocation | CompositeLocation


class ExpressionContext(Protocol):
    """What evaluation needs from a frame; every method may raise ``Unavailable``."""

    def register(self, regno: int) -> int:
        """The frame's value of DWARF register ``regno`` (for a caller frame, the
        unwinder's recovered value; xmm0-15, numbers 17-32, give their low 64 bits)."""
        ...

    def read_memory(self, address: int, size: int) -> bytes:
        """``size`` bytes of target memory; raises ``MemoryAccessError``."""
        ...

    def frame_base(self) -> int:
        """The current function's ``DW_AT_frame_base``, evaluated (with
        ``frame_base_value``) for ``DW_OP_fbreg``."""
        ...

    def call_frame_cfa(self) -> int:
        """This frame's canonical frame address, from CFI."""
        ...

    def entry_value(self, expression: bytes) -> int:
        """The value ``expression`` (usually a bare ``DW_OP_regN``) had on entry to
        the current function, found through the caller's call site; raise
        ``Unavailable`` when it cannot be recovered."""
        ...

    def tls_address(self, offset: int) -> int:
        """The address of ``offset`` in this thread's TLS block of this module."""
        ...

    def address_at_index(self, index: int) -> int:
        """Entry ``index`` of the unit's ``.debug_addr`` table, relocated by the load
        bias as ``relocate`` does (``DW_OP_addrx``, ``DW_OP_GNU_addr_index``). For
        ``DW_OP_constx`` and ``DW_OP_GNU_const_index``, whose entries are constants
        (TLS offsets), the evaluator takes the bias (``relocate(0)``) back off."""
        ...

    def relocate(self, address: int) -> int:
        """The runtime address of link-time ``address`` (adds the load bias)."""
        ...

    def base_type(self, die_offset: int) -> tuple[int, int]:
        """``(byte_size, DW_ATE_* encoding)`` of the base type DIE at ``die_offset``,
        which is relative to the start of the current compilation unit (as the
        typed operations' operands are)."""
        ...


class RegistersContext:
    """A context with registers and memory only, as CFI rules need: every other
    question raises ``Unavailable``. ``relocate`` is the identity (CFI expressions
    hold no link-time addresses worth relocating)."""

    def __init__(self, registers: Mapping[int, int], read_memory: Callable[[int, int], bytes]) -> None:
        self._registers = registers
        self._read_memory = read_memory

    def register(self, regno: int) -> int:
        try:
            return self._registers[regno]
        except KeyError:
            raise Unavailable(f"register {_register_name(regno)} is not known") from None

    def read_memory(self, address: int, size: int) -> bytes:
        return self._read_memory(address, size)

    def frame_base(self) -> int:
        raise Unavailable("no frame base here")

    def call_frame_cfa(self) -> int:
        raise Unavailable("no CFA here")

    def entry_value(self, expression: bytes) -> int:
        raise Unavailable("no entry values here")

    def tls_address(self, offset: int) -> int:
        raise Unavailable("no thread-local storage here")

    def address_at_index(self, index: int) -> int:
        raise Unavailable("no .debug_addr here")

    def relocate(self, address: int) -> int:
        return address

    def base_type(self, die_offset: int) -> tuple[int, int]:
        raise Unavailable("no base types here")


def _register_name(regno: int) -> str:
    if regno in DWARF_REGS:
        return DWARF_REGS[regno]
    return f"xmm{regno - 17}" if 17 <= regno <= 32 else f"dwarf{regno}"


# ----------------------------------------------------------------- operations

#: Operand layouts: A address, R DIE reference (offset size; address size in DWARF 2),
#: U/S ULEB/SLEB128, 1 2 4 8 unsigned and b h i q signed fixed sizes, J a 2-byte
#: signed branch distance, B a ULEB128-counted block, C a 1-byte-counted block.
_OPERATIONS: dict[int, tuple[str, str]] = {
    0x03: ("addr", "A"), 0x06: ("deref", ""),
    0x08: ("const1u", "1"), 0x09: ("const1s", "b"), 0x0A: ("const2u", "2"), 0x0B: ("const2s", "h"),
    0x0C: ("const4u", "4"), 0x0D: ("const4s", "i"), 0x0E: ("const8u", "8"), 0x0F: ("const8s", "q"),
    0x10: ("constu", "U"), 0x11: ("consts", "S"),
    0x12: ("dup", ""), 0x13: ("drop", ""), 0x14: ("over", ""), 0x15: ("pick", "1"), 0x16: ("swap", ""),
    0x17: ("rot", ""), 0x18: ("xderef", ""),
    0x19: ("abs", ""), 0x1A: ("and", ""), 0x1B: ("div", ""), 0x1C: ("minus", ""), 0x1D: ("mod", ""),
    0x1E: ("mul", ""), 0x1F: ("neg", ""), 0x20: ("not", ""), 0x21: ("or", ""), 0x22: ("plus", ""),
    0x23: ("plus_uconst", "U"), 0x24: ("shl", ""), 0x25: ("shr", ""), 0x26: ("shra", ""),
    0x27: ("xor", ""), 0x28: ("bra", "J"), 0x29: ("eq", ""), 0x2A: ("ge", ""), 0x2B: ("gt", ""),
    0x2C: ("le", ""), 0x2D: ("lt", ""), 0x2E: ("ne", ""), 0x2F: ("skip", "J"),
    **{0x30 + n: (f"lit{n}", "") for n in range(32)},
    **{0x50 + n: (f"reg{n}", "") for n in range(32)},
    **{0x70 + n: (f"breg{n}", "S") for n in range(32)},
    0x90: ("regx", "U"), 0x91: ("fbreg", "S"), 0x92: ("bregx", "US"), 0x93: ("piece", "U"),
    0x94: ("deref_size", "1"), 0x95: ("xderef_size", "1"), 0x96: ("nop", ""),
    0x97: ("push_object_address", ""), 0x98: ("call2", "2"), 0x99: ("call4", "4"), 0x9A: ("call_ref", "R"),
    0x9B: ("form_tls_address", ""), 0x9C: ("call_frame_cfa", ""), 0x9D: ("bit_piece", "UU"),
    0x9E: ("implicit_value", "B"), 0x9F: ("stack_value", ""),
    0xA0: ("implicit_pointer", "RS"), 0xA1: ("addrx", "U"), 0xA2: ("constx", "U"),
    0xA3: ("entry_value", "B"), 0xA4: ("const_type", "UC"), 0xA5: ("regval_type", "UU"),
    0xA6: ("deref_type", "1U"), 0xA7: ("xderef_type", "1U"), 0xA8: ("convert", "U"),
    0xA9: ("reinterpret", "U"),
    0xE0: ("GNU_push_tls_address", ""), 0xF0: ("GNU_uninit", ""), 0xF1: ("GNU_encoded_addr", ""),
    0xF2: ("GNU_implicit_pointer", "RS"), 0xF3: ("GNU_entry_value", "B"), 0xF4: ("GNU_const_type", "UC"),
    0xF5: ("GNU_regval_type", "UU"), 0xF6: ("GNU_deref_type", "1U"), 0xF7: ("GNU_convert", "U"),
    0xF9: ("GNU_reinterpret", "U"), 0xFA: ("GNU_parameter_ref", "4"), 0xFB: ("GNU_addr_index", "U"),
    0xFC: ("GNU_const_index", "U"), 0xFD: ("GNU_variable_value", "R"),
}  # fmt: skip

#: Segmented addressing does not exist on x86-64, and GNU_encoded_addr's operand
#: length depends on an encoding GCC never emits in location expressions.
_UNSUPPORTED = frozenset({0x18, 0x95, 0xA7, 0xF1})
_PIECE = 0x93
_BIT_PIECE = 0x9D
#: What may follow a register, value or implicit location before its piece.
_AFTER_LOCATION = frozenset({_PIECE, _BIT_PIECE, 0x96, 0xF0})

_FIXED = {"1": (1, False), "2": (2, False), "4": (4, False), "8": (8, False),
          "b": (1, True), "h": (2, True), "i": (4, True), "q": (8, True)}  # fmt: skip

# DW_ATE_* encodings the typed operations care about.
_ATE_FLOAT = 0x04
_ATE_SIGNED = frozenset({0x05, 0x06, 0x0D})  # signed, signed_char, signed_fixed


def _op_name(code: int) -> str:
    known = _OPERATIONS.get(code)
    return f"DW_OP_{known[0]}" if known else f"DW_OP_{code:#x}"


class _Op(NamedTuple):
    """One decoded operation: its byte ``offset``, ``code``, up to two integer
    operands and a block; a branch's ``a`` is the index of the operation it reaches."""

    offset: int
    code: int
    a: int = 0
    b: int = 0
    data: bytes = b""


class _Truncated(Exception):
    """Internal: a read ran past the end of the bytes (the caller names what)."""


class _Cursor:
    """Little-endian reads from ``data`` at ``pos``; ``_Truncated`` past the end."""

    __slots__ = ("data", "mark", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos
        self.mark = pos  # where the record being read starts, for error messages

    def fixed(self, size: int, signed: bool = False) -> int:
        end = self.pos + size
        if end > len(self.data) or self.pos < 0:
            raise _Truncated
        value = int.from_bytes(self.data[self.pos : end], "little", signed=signed)
        self.pos = end
        return value

    def block(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise _Truncated
        value = self.data[self.pos : end]
        self.pos = end
        return value

    def leb(self, signed: bool = False) -> int:
        data = self.data
        result = shift = 0
        while True:
            if self.pos >= len(data):
                raise _Truncated
            byte = data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if signed and byte & 0x40:
            result -= 1 << shift
        return result


@functools.lru_cache(maxsize=4096)
def _decode(expression: bytes, offset_size: int, version: int, address_size: int) -> tuple[_Op, ...]:
    """The operations of ``expression``; raises ExpressionError for bad bytes."""
    cursor = _Cursor(expression)
    reference_size = address_size if version == 2 else offset_size
    ops: list[_Op] = []
    starts: dict[int, int] = {}
    branches: list[tuple[int, int]] = []  # (index of the branch, target byte offset)
    while cursor.pos < len(expression):
        offset = cursor.pos
        code = expression[offset]
        cursor.pos += 1
        known = _OPERATIONS.get(code)
        if known is None or code in _UNSUPPORTED:
            raise ExpressionError(f"{_op_name(code)} unsupported at offset {offset}")
        operands: list[int] = []
        data = b""
        try:
            for kind in known[1]:
                if kind in _FIXED:
                    operands.append(cursor.fixed(*_FIXED[kind]))
                elif kind == "U" or kind == "S":
                    operands.append(cursor.leb(kind == "S"))
                elif kind == "A":
                    operands.append(cursor.fixed(address_size))
                elif kind == "R":
                    operands.append(cursor.fixed(reference_size))
                elif kind == "B":
                    data = cursor.block(cursor.leb())
                elif kind == "C":
                    data = cursor.block(cursor.fixed(1))
                else:  # "J"
                    distance = cursor.fixed(2, signed=True)
                    branches.append((len(ops), cursor.pos + distance))
                    operands.append(0)
        except _Truncated:
            raise ExpressionError(f"{_op_name(code)} at offset {offset}: truncated operand") from None
        starts[offset] = len(ops)
        operands += (0, 0)
        ops.append(_Op(offset, code, operands[0], operands[1], data))
    starts[len(expression)] = len(ops)
    for index, target in branches:
        op = ops[index]
        if target not in starts:
            raise ExpressionError(
                f"{_op_name(op.code)} at offset {op.offset}: target {target} is not an operation boundary"
            )
        ops[index] = op._replace(a=starts[target])
    return tuple(ops)


# ----------------------------------------------------------------- typed values

#: A stack entry: (value, base type), the type being (byte size, DW_ATE_ encoding),
#: or None for the generic type (64 bits, signed where DWARF asks for signed).
_Type: TypeAlias = "tuple[int, int] | None"
_Entry: TypeAlias = "tuple[int, tuple[int, int] | None]"


def _bits(kind: _Type) -> int:
    return 64 if kind is None else 8 * kind[0]


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


def _is_float(kind: _Type) -> bool:
    return kind is not None and kind[1] == _ATE_FLOAT


def _is_signed(kind: _Type) -> bool:
    """Whether comparisons and division treat the type as signed (generic: yes)."""
    return kind is None or kind[1] in _ATE_SIGNED


def _as_int(value: int, kind: _Type) -> int:
    """The mathematical integer a stack entry stands for."""
    return _signed(value, _bits(kind)) if _is_signed(kind) else value


_FLOAT_FORMATS = {4: "<f", 8: "<d"}


def _float_format(kind: tuple[int, int] | None) -> str:
    size = 8 if kind is None else kind[0]
    found = _FLOAT_FORMATS.get(size)
    if found is None:
        raise Unavailable(f"{size}-byte floating-point values are not supported")
    return found


def _unpack_float(value: int, kind: _Type) -> float:
    form = _float_format(kind)
    result: float = struct.unpack(form, value.to_bytes(struct.calcsize(form), "little"))[0]
    return result


def _pack_float(number: float, kind: _Type) -> int:
    form = _float_format(kind)
    try:
        packed = struct.pack(form, number)
    except OverflowError:  # beyond a float's range: IEEE rounds it to infinity
        packed = struct.pack(form, math.copysign(math.inf, number))
    return int.from_bytes(packed, "little")


def _float_divide(left: float, right: float) -> float:
    if right != 0:
        return left / right
    if left == 0 or math.isnan(left):
        return math.nan
    return math.copysign(math.inf, left) * math.copysign(1.0, right)


_FLOAT_ARITHMETIC: dict[int, Callable[[float, float], float]] = {
    0x1B: _float_divide,
    0x1C: operator.sub,
    0x1E: operator.mul,
    0x22: operator.add,
}
#: The relational operations, on integers (signed or not, by type) and floats alike.
_COMPARE: dict[int, Callable[[float, float], bool]] = {
    0x29: operator.eq,
    0x2A: operator.ge,
    0x2B: operator.gt,
    0x2C: operator.le,
    0x2D: operator.lt,
    0x2E: operator.ne,
}


def _truncated_divide(left: int, right: int) -> int:
    quotient = abs(left) // abs(right)
    return -quotient if (left < 0) != (right < 0) else quotient


def _shift_left(left: int, right: int, bits: int) -> int:
    return left << right if right < bits else 0


def _shift_right(left: int, right: int, bits: int) -> int:
    return left >> right


def _shift_right_arithmetic(left: int, right: int, bits: int) -> int:
    return _signed(left, bits) >> min(right, bits)


#: Integer operations on raw (unsigned) operands of ``bits`` bits; the result is masked.
_RAW_BINARY: dict[int, Callable[[int, int, int], int]] = {
    0x1A: lambda a, b, bits: a & b,
    0x1C: lambda a, b, bits: a - b,
    0x1E: lambda a, b, bits: a * b,
    0x21: lambda a, b, bits: a | b,
    0x22: lambda a, b, bits: a + b,
    0x24: _shift_left,
    0x25: _shift_right,
    0x26: _shift_right_arithmetic,
    0x27: lambda a, b, bits: a ^ b,
}


# ----------------------------------------------------------------- the machine


class _Machine:
    """One evaluation: the stack, the location being built and the pieces so far.

    With ``tolerant`` (location evaluation), an ``Unavailable`` or
    ``MemoryAccessError`` spoils only the piece being computed: the operations up to
    its ``DW_OP_piece`` are skipped and the piece is unavailable. Without it
    (value evaluation) they propagate.
    """

    __slots__ = ("address_size", "context", "ops", "pending", "pieces", "spoiled", "stack", "tolerant")

    def __init__(
        self,
        ops: tuple[_Op, ...],
        context: ExpressionContext,
        initial: Sequence[int],
        tolerant: bool,
        address_size: int,
    ) -> None:
        self.ops = ops
        self.address_size = address_size
        self.context = context
        self.stack: list[_Entry] = [(value & _MASK64, None) for value in initial]
        self.pending: SimpleLocation | None = None
        self.pieces: list[Piece] = []
        self.spoiled: str | None = None
        self.tolerant = tolerant

    def run(self) -> None:
        ops = self.ops
        count = len(ops)
        index = steps = 0
        while index < count:
            op = ops[index]
            index += 1
            steps += 1
            if steps > MAX_STEPS:
                raise ExpressionError(
                    f"{_op_name(op.code)} at offset {op.offset}: more than {MAX_STEPS} operations executed"
                )
            if self.spoiled is not None:
                if op.code == _PIECE or op.code == _BIT_PIECE:
                    self._add_piece(op, UnavailableLocation(self.spoiled))
                    self.spoiled = None
                continue
            if self.pending is not None and op.code not in _AFTER_LOCATION:
                raise ExpressionError(
                    f"{_op_name(op.code)} at offset {op.offset}: follows a complete location "
                    "without DW_OP_piece"
                )
            try:
                jump = _HANDLERS[op.code](self, op)
            except (Unavailable, MemoryAccessError) as error:
                if not self.tolerant:
                    raise
                self.spoiled = _reason(error)
                self.stack.clear()
                self.pending = None
                continue
            if jump is not None:
                index = jump

    # -- stack

    def pop(self, op: _Op) -> _Entry:
        if not self.stack:
            raise ExpressionError(f"{_op_name(op.code)} at offset {op.offset}: stack underflow")
        return self.stack.pop()

    def need(self, op: _Op, depth: int) -> None:
        if len(self.stack) < depth:
            raise ExpressionError(f"{_op_name(op.code)} at offset {op.offset}: stack underflow")

    def push(self, value: int) -> None:
        self.stack.append((value & _MASK64, None))

    def push_typed(self, value: int, kind: tuple[int, int] | None) -> None:
        self.stack.append((value & ((1 << _bits(kind)) - 1), kind))

    def type_of(self, op: _Op, die_offset: int) -> tuple[int, int] | None:
        """The base type at CU offset ``die_offset``; 0 is the generic type."""
        if die_offset == 0:
            return None
        size, encoding = self.context.base_type(die_offset)
        if size <= 0:
            raise Unavailable(f"{_op_name(op.code)} at offset {op.offset}: base type has no size")
        return size, encoding

    def read(self, op: _Op, address: int, size: int) -> int:
        data = self.context.read_memory(address, size)
        if len(data) != size:
            raise Unavailable(f"memory at {address:#x} is not readable")
        return int.from_bytes(data, "little")

    # -- location descriptions

    def _add_piece(self, op: _Op, location: SimpleLocation | None) -> None:
        if location is None:
            if self.stack:
                location = MemoryLocation(self.stack.pop()[0])
            else:
                location = UnavailableLocation("optimized out")
        size_bits = op.a * 8 if op.code == _PIECE else op.a
        offset_bits = op.b if op.code == _BIT_PIECE else 0
        self.pieces.append(Piece(location, size_bits, offset_bits))

    def piece(self, op: _Op) -> None:
        location, self.pending = self.pending, None
        self._add_piece(op, location)

    def result(self, where: str) -> Location:
        if self.spoiled is not None:
            return UnavailableLocation(self.spoiled)
        if self.pieces:
            if self.pending is not None:
                raise ExpressionError(f"{where}: a location after the last DW_OP_piece")
            return CompositeLocation(tuple(self.pieces))
        if self.pending is not None:
            return self.pending
        if not self.stack:
            raise ExpressionError(f"{where}: the expression leaves an empty stack")
        return MemoryLocation(self.stack[-1][0])


def _reason(error: Exception) -> str:
    if isinstance(error, MemoryAccessError):
        return f"memory at {error.address:#x} is not readable"
    if isinstance(error, Unavailable):
        return error.reason
    return str(error)


# ----------------------------------------------------------------- handlers
# Each takes the machine and the operation; a branch returns the next operation's
# index, the others None.

_Handler: TypeAlias = Callable[[_Machine, _Op], "int | None"]


def _h_literal(m: _Machine, op: _Op) -> None:
    m.push(op.code - 0x30)


def _h_constant(m: _Machine, op: _Op) -> None:
    m.push(op.a)


def _h_addr(m: _Machine, op: _Op) -> None:
    m.push(m.context.relocate(op.a))


def _h_addrx(m: _Machine, op: _Op) -> None:
    m.push(m.context.address_at_index(op.a))


def _h_constx(m: _Machine, op: _Op) -> None:
    # the context relocates every .debug_addr entry; this one is not an address
    m.push(m.context.address_at_index(op.a) - m.context.relocate(0))


def _h_breg(m: _Machine, op: _Op) -> None:
    m.push(m.context.register(op.code - 0x70) + op.a)


def _h_bregx(m: _Machine, op: _Op) -> None:
    m.push(m.context.register(op.a) + op.b)


def _h_fbreg(m: _Machine, op: _Op) -> None:
    m.push(m.context.frame_base() + op.a)


def _h_call_frame_cfa(m: _Machine, op: _Op) -> None:
    m.push(m.context.call_frame_cfa())


def _h_tls(m: _Machine, op: _Op) -> None:
    m.push(m.context.tls_address(m.pop(op)[0]))


def _h_entry_value(m: _Machine, op: _Op) -> None:
    m.push(m.context.entry_value(op.data))


def _h_deref(m: _Machine, op: _Op) -> None:
    address = m.pop(op)[0]
    size = m.address_size if op.code == 0x06 else op.a
    if not 1 <= size <= 8:
        raise ExpressionError(f"{_op_name(op.code)} at offset {op.offset}: size {size} is not 1 to 8")
    m.push(m.read(op, address, size))


def _h_deref_type(m: _Machine, op: _Op) -> None:
    if not 1 <= op.a <= 16:
        raise ExpressionError(f"{_op_name(op.code)} at offset {op.offset}: size {op.a} is not 1 to 16")
    address = m.pop(op)[0]
    kind = m.type_of(op, op.b)
    m.push_typed(m.read(op, address, op.a), kind)


def _h_const_type(m: _Machine, op: _Op) -> None:
    m.push_typed(int.from_bytes(op.data, "little"), m.type_of(op, op.a))


def _h_regval_type(m: _Machine, op: _Op) -> None:
    kind = m.type_of(op, op.b)
    if _bits(kind) > 64:
        # register() gives 64 bits: the rest of a wider register would be made up
        raise Unavailable(f"{_register_name(op.a)} as a {_bits(kind)}-bit value")
    m.push_typed(m.context.register(op.a), kind)


def _h_convert(m: _Machine, op: _Op) -> None:
    value, source = m.pop(op)
    target = m.type_of(op, op.a)
    if _is_float(source) and _is_float(target):
        m.push_typed(_pack_float(_unpack_float(value, source), target), target)
    elif _is_float(source):
        number = _unpack_float(value, source)
        if not math.isfinite(number):
            raise Unavailable(f"{_op_name(op.code)} at offset {op.offset}: {number} has no integer value")
        m.push_typed(int(number), target)
    elif _is_float(target):
        m.push_typed(_pack_float(float(_as_int(value, source)), target), target)
    else:
        m.push_typed(_as_int(value, source), target)


def _h_reinterpret(m: _Machine, op: _Op) -> None:
    value, _source = m.pop(op)
    m.push_typed(value, m.type_of(op, op.a))


def _h_dup(m: _Machine, op: _Op) -> None:
    m.need(op, 1)
    m.stack.append(m.stack[-1])


def _h_drop(m: _Machine, op: _Op) -> None:
    m.pop(op)


def _h_over(m: _Machine, op: _Op) -> None:
    m.need(op, 2)
    m.stack.append(m.stack[-2])


def _h_pick(m: _Machine, op: _Op) -> None:
    m.need(op, op.a + 1)
    m.stack.append(m.stack[-1 - op.a])


def _h_swap(m: _Machine, op: _Op) -> None:
    m.need(op, 2)
    m.stack[-1], m.stack[-2] = m.stack[-2], m.stack[-1]


def _h_rot(m: _Machine, op: _Op) -> None:
    m.need(op, 3)
    stack = m.stack
    stack[-1], stack[-2], stack[-3] = stack[-2], stack[-3], stack[-1]


def _not_for_floats(op: _Op) -> ExpressionError:
    return ExpressionError(
        f"{_op_name(op.code)} at offset {op.offset}: not defined for floating-point values"
    )


def _h_unary(m: _Machine, op: _Op) -> None:
    value, kind = m.pop(op)
    if _is_float(kind):
        if op.code == 0x20 or op.code == 0x23:  # not, plus_uconst
            raise _not_for_floats(op)
        number = _unpack_float(value, kind)
        m.push_typed(_pack_float(-number if op.code == 0x1F else abs(number), kind), kind)
        return
    if op.code == 0x19:  # abs
        result = abs(_as_int(value, kind))
    elif op.code == 0x1F:  # neg
        result = -value
    elif op.code == 0x20:  # not
        result = ~value
    else:  # plus_uconst
        result = value + op.a
    m.push_typed(result, kind)


def _h_binary(m: _Machine, op: _Op) -> None:
    right, right_kind = m.pop(op)
    left, left_kind = m.pop(op)
    if left_kind == right_kind or right_kind is None:
        kind = left_kind
    elif left_kind is None:
        kind = right_kind
    else:
        raise ExpressionError(f"{_op_name(op.code)} at offset {op.offset}: operands of different types")
    code = op.code
    bits = _bits(kind)
    if _is_float(kind):
        left_number, right_number = _unpack_float(left, kind), _unpack_float(right, kind)
        if code in _COMPARE:
            m.push(int(_COMPARE[code](left_number, right_number)))
        elif code in _FLOAT_ARITHMETIC:
            m.push_typed(_pack_float(_FLOAT_ARITHMETIC[code](left_number, right_number), kind), kind)
        else:
            raise _not_for_floats(op)
    elif code in _COMPARE:
        m.push(int(_COMPARE[code](_as_int(left, kind), _as_int(right, kind))))
    elif code in _RAW_BINARY:
        m.push_typed(_RAW_BINARY[code](left, right, bits), kind)
    else:  # div, mod
        if right == 0:
            raise Unavailable(f"{_op_name(code)} at offset {op.offset}: division by zero")
        if code == 0x1B:  # div: signed unless the type is unsigned
            m.push_typed(_truncated_divide(_as_int(left, kind), _as_int(right, kind)), kind)
        elif kind is not None and _is_signed(kind):  # mod of a signed type: C's remainder
            dividend, divisor = _signed(left, bits), _signed(right, bits)
            m.push_typed(dividend - divisor * _truncated_divide(dividend, divisor), kind)
        else:  # mod of the generic type is unsigned, as gdb has it
            m.push_typed(left % right, kind)


def _h_bra(m: _Machine, op: _Op) -> int | None:
    return op.a if m.pop(op)[0] != 0 else None


def _h_skip(m: _Machine, op: _Op) -> int:
    return op.a


def _h_nop(m: _Machine, op: _Op) -> None:
    pass


def _h_reg(m: _Machine, op: _Op) -> None:
    m.pending = RegisterLocation(op.code - 0x50)


def _h_regx(m: _Machine, op: _Op) -> None:
    m.pending = RegisterLocation(op.a)


def _h_stack_value(m: _Machine, op: _Op) -> None:
    m.pending = ValueLocation(m.pop(op)[0])


def _h_implicit_value(m: _Machine, op: _Op) -> None:
    m.pending = ImplicitLocation(op.data)


def _h_implicit_pointer(m: _Machine, op: _Op) -> None:
    m.pending = ImplicitPointerLocation(op.a, op.b)


def _h_piece(m: _Machine, op: _Op) -> None:
    m.piece(op)


def _h_unavailable(m: _Machine, op: _Op) -> None:
    what = {
        0x97: "no object address here",
        0xFA: "the caller's parameter value is not known",
        0xFD: f"the value of the variable at DIE {op.a:#x} is not evaluated",
    }.get(op.code, f"calls to DIE {op.a:#x} are not evaluated")
    raise Unavailable(f"{_op_name(op.code)}: {what}")


_HANDLERS: dict[int, _Handler] = {
    0x03: _h_addr, 0x06: _h_deref,
    **dict.fromkeys(range(0x08, 0x12), _h_constant),
    0x12: _h_dup, 0x13: _h_drop, 0x14: _h_over, 0x15: _h_pick, 0x16: _h_swap, 0x17: _h_rot,
    **dict.fromkeys((0x19, 0x1F, 0x20, 0x23), _h_unary),
    **dict.fromkeys((0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x21, 0x22, 0x24, 0x25, 0x26, 0x27), _h_binary),
    **dict.fromkeys(range(0x29, 0x2F), _h_binary),
    0x28: _h_bra, 0x2F: _h_skip,
    **dict.fromkeys(range(0x30, 0x50), _h_literal),
    **dict.fromkeys(range(0x50, 0x70), _h_reg),
    **dict.fromkeys(range(0x70, 0x90), _h_breg),
    0x90: _h_regx, 0x91: _h_fbreg, 0x92: _h_bregx, 0x93: _h_piece, 0x94: _h_deref, 0x96: _h_nop,
    0x97: _h_unavailable, 0x98: _h_unavailable, 0x99: _h_unavailable, 0x9A: _h_unavailable,
    0x9B: _h_tls, 0x9C: _h_call_frame_cfa, 0x9D: _h_piece, 0x9E: _h_implicit_value,
    0x9F: _h_stack_value, 0xA0: _h_implicit_pointer, 0xA1: _h_addrx, 0xA2: _h_constx,
    0xA3: _h_entry_value, 0xA4: _h_const_type, 0xA5: _h_regval_type, 0xA6: _h_deref_type,
    0xA8: _h_convert, 0xA9: _h_reinterpret,
    0xE0: _h_tls, 0xF0: _h_nop, 0xF2: _h_implicit_pointer, 0xF3: _h_entry_value,
    0xF4: _h_const_type, 0xF5: _h_regval_type, 0xF6: _h_deref_type, 0xF7: _h_convert,
    0xF9: _h_reinterpret, 0xFA: _h_unavailable, 0xFB: _h_addrx, 0xFC: _h_constx, 0xFD: _h_unavailable,
}  # fmt: skip


# ----------------------------------------------------------------- entry points


def evaluate_location(
    expression: bytes,
    context: ExpressionContext,
    *,
    offset_size: int = 4,
    version: int = 5,
    address_size: int = 8,
) -> Location:
    """Where the object that ``expression`` (a location description) describes is.

    Args:
        expression: the bytes of a ``DW_AT_location`` (or a location-list entry).
        context: the frame the object lives in.
        offset_size: 4 for DWARF32, 8 for DWARF64 (size of DIE references in
            ``DW_OP_call_ref`` and ``DW_OP_implicit_pointer``).
        version: the unit's DWARF version, 2 to 5 (in DWARF 2 those references are
            address-sized).
        address_size: size of ``DW_OP_addr``'s operand and of ``DW_OP_deref``.

    Returns:
        An empty expression is ``UnavailableLocation("optimized out")``; a bare
        register is a ``RegisterLocation`` (the register is not read); a computed
        address a ``MemoryLocation``; ``DW_OP_stack_value`` a ``ValueLocation``;
        ``DW_OP_implicit_value`` an ``ImplicitLocation``; an implicit pointer an
        ``ImplicitPointerLocation``; pieces a ``CompositeLocation`` whose empty
        pieces are unavailable ("optimized out"). Anything the context cannot
        recover (``Unavailable``, ``MemoryAccessError``) makes the location, or the
        piece it happened in, an ``UnavailableLocation`` saying why.

    Raises:
        ExpressionError: the bytes are malformed or use an unsupported operation.
    """
    if not expression:
        return UnavailableLocation("optimized out")
    machine = _Machine(
        _decode(expression, offset_size, version, address_size), context, (), True, address_size
    )
    machine.run()
    return machine.result(f"location expression {expression.hex()}")


def evaluate_value(
    expression: bytes,
    context: ExpressionContext,
    *,
    initial: Sequence[int] = (),
    offset_size: int = 4,
    version: int = 5,
    address_size: int = 8,
) -> int:
    """The value an expression computes: the top of its stack at the end.

    For DWARF expressions that are not location descriptions: a frame base given as
    an address (``DW_OP_call_frame_cfa``, ``DW_OP_breg7 8``), a
    ``DW_AT_data_member_location`` expression (``initial=[struct address]``),
    bounds, CFI rules (``initial=[cfa]``). ``initial`` values are pushed first. A
    typed result is its raw bits (see ``ValueLocation``); a ``DW_OP_stack_value``
    at the end is accepted and gives its value.

    Raises:
        ExpressionError: malformed bytes, an unsupported operation, an empty final
            stack, or a register or composite location where a value was expected.
        Unavailable: the context could not give something the expression needs.
        MemoryAccessError: a dereference read unreadable memory.
    """
    return _value(expression, context, initial, offset_size, version, address_size, registers=False)


def register_of(expression: bytes) -> int | None:
    """The register a bare ``DW_OP_regN`` / ``DW_OP_regx`` expression names (a
    call-site parameter's location, an entry value's operand), else None."""
    try:
        operations = _decode(expression, 4, 5, 8)
    except ExpressionError:
        return None
    if len(operations) != 1:
        return None
    operation = operations[0]
    if 0x50 <= operation.code <= 0x6F:
        return operation.code - 0x50
    return operation.a if operation.code == 0x90 else None


def frame_base_value(expression: bytes, context: ExpressionContext) -> int:
    """The frame base ``DW_AT_frame_base`` describes, for ``DW_OP_fbreg``.

    GCC says ``DW_OP_call_frame_cfa``; clang and older GCC say ``DW_OP_reg6``, which
    for a frame base means the *value* of rbp (DWARF 4, section 2.6.1.1.3), not the
    memory it names: a bare register is read here, anything else is evaluated for
    its value. A frame base holds no DIE references, so the unit's version and
    offset size do not matter here; addresses are 8 bytes, as on x86-64.

    Raises:
        ExpressionError: as ``evaluate_value``.
        Unavailable: an empty expression, or one whose inputs are not recoverable.
        MemoryAccessError: a dereference read unreadable memory.
    """
    if not expression:
        raise Unavailable("the function has no frame base here")
    return _value(expression, context, (), 4, 5, 8, registers=True)


def _value(
    expression: bytes,
    context: ExpressionContext,
    initial: Sequence[int],
    offset_size: int,
    version: int,
    address_size: int,
    *,
    registers: bool,
) -> int:
    ops = _decode(expression, offset_size, version, address_size)
    machine = _Machine(ops, context, initial, False, address_size)
    machine.run()
    where = f"value expression {expression.hex()}"
    pending = machine.pending
    if machine.pieces:
        raise ExpressionError(f"{where}: pieces where a value was expected")
    if isinstance(pending, ValueLocation):
        return pending.value
    if isinstance(pending, RegisterLocation) and registers:
        return context.register(pending.regno)
    if pending is not None:
        raise ExpressionError(f"{where}: a location where a value was expected")
    if not machine.stack:
        raise ExpressionError(f"{where}: the expression leaves an empty stack")
    return machine.stack[-1][0]


# ----------------------------------------------------------------- location lists

_DEBUG_LOC = ".debug_loc"
_DEBUG_LOCLISTS = ".debug_loclists"

# DW_LLE_* kinds of DWARF 5, and GCC's view pair (locview numbers, not addresses).
_LLE_END_OF_LIST = 0x00
_LLE_BASE_ADDRESSX = 0x01
_LLE_STARTX_ENDX = 0x02
_LLE_STARTX_LENGTH = 0x03
_LLE_OFFSET_PAIR = 0x04
_LLE_DEFAULT_LOCATION = 0x05
_LLE_BASE_ADDRESS = 0x06
_LLE_START_END = 0x07
_LLE_START_LENGTH = 0x08
_LLE_GNU_VIEW_PAIR = 0x09

#: One parsed list: its bounded entries (low, high, expression) and the default
#: location's expression, if it has one.
_ParsedList: TypeAlias = "tuple[tuple[tuple[int, int, bytes], ...], bytes | None]"

#: ``entries`` reports a default location as covering all of this range, last.
DEFAULT_RANGE = (0, 1 << 64)


class LocationLists:
    """The location lists of one file: ``.debug_loc`` (DWARF 2-4) and
    ``.debug_loclists`` (DWARF 5) bytes, plus ``.debug_addr`` for the indexed forms.

    Addresses in and out are link-time: subtract the load bias from a pc first.
    A list is parsed on first use and kept.
    """

    def __init__(
        self, debug_loc: bytes | None, debug_loclists: bytes | None, debug_addr: bytes | None
    ) -> None:
        self._sections = {_DEBUG_LOC: debug_loc, _DEBUG_LOCLISTS: debug_loclists}
        self._debug_addr = debug_addr
        self._parsed: dict[tuple[int, int, int, int, int], _ParsedList] = {}

    def expression_at(
        self,
        offset: int,
        pc: int,
        *,
        version: int,
        cu_base: int,
        addr_base: int = 0,
        address_size: int = 8,
    ) -> bytes | None:
        """The expression of the entry of list ``offset`` that covers link-time ``pc``
        (``low <= pc < high``), else the list's default location, else None (the
        object is optimized out at ``pc``).

        Args:
            offset: the list's offset in ``.debug_loc`` (``version`` < 5) or
                ``.debug_loclists`` (use ``offset_of_index`` for DW_FORM_loclistx).
            version: the unit's DWARF version; it picks the section.
            cu_base: the unit's base address (its ``DW_AT_low_pc``, 0 if none).
            addr_base: the unit's ``DW_AT_addr_base``, for the indexed entries.
            address_size: the unit's address size.

        Raises:
            ExpressionError: the list is truncated, has an unknown entry kind, or its
                section is missing.
        """
        bounded, default = self._list(offset, version, cu_base, addr_base, address_size)
        for low, high, expression in bounded:
            if low <= pc < high:
                return expression
        return default

    def entries(
        self,
        offset: int,
        *,
        version: int,
        cu_base: int,
        addr_base: int = 0,
        address_size: int = 8,
    ) -> list[tuple[int, int, bytes]]:
        """Every entry of list ``offset`` as (low, high, expression), in list order,
        with link-time addresses and base-address entries applied; a default
        location comes last as ``(*DEFAULT_RANGE, expression)``. Raises as
        ``expression_at``."""
        bounded, default = self._list(offset, version, cu_base, addr_base, address_size)
        found = list(bounded)
        if default is not None:
            found.append((*DEFAULT_RANGE, default))
        return found

    def offset_of_index(self, index: int, *, loclists_base: int, offset_size: int = 4) -> int:
        """The ``.debug_loclists`` offset of list ``index`` (DW_FORM_loclistx), from
        the offset table at the unit's ``DW_AT_loclists_base``.

        Raises:
            ExpressionError: no such section, or ``index`` is past the table.
        """
        data = self._section(_DEBUG_LOCLISTS, loclists_base)
        cursor = _Cursor(data, loclists_base - 4)  # offset_entry_count ends the header
        try:
            count = cursor.fixed(4)
            if index >= count:
                raise ExpressionError(
                    f"{_DEBUG_LOCLISTS} at offset {loclists_base:#x}: list index {index} "
                    f"past the offset table ({count} entries)"
                )
            cursor.pos = loclists_base + index * offset_size
            return loclists_base + cursor.fixed(offset_size)
        except _Truncated:
            raise ExpressionError(
                f"{_DEBUG_LOCLISTS} at offset {loclists_base:#x}: truncated offset table"
            ) from None

    # -- parsing

    def _section(self, name: str, offset: int) -> bytes:
        data = self._sections[name]
        if data is None:
            raise ExpressionError(f"{name} is missing (a location list at offset {offset:#x})")
        return data

    def _list(
        self, offset: int, version: int, cu_base: int, addr_base: int, address_size: int
    ) -> _ParsedList:
        key = (offset, version, cu_base, addr_base, address_size)
        parsed = self._parsed.get(key)
        if parsed is None:
            name = _DEBUG_LOCLISTS if version >= 5 else _DEBUG_LOC
            cursor = _Cursor(self._section(name, offset), offset)
            try:
                if version >= 5:
                    parsed = self._parse_v5(cursor, cu_base, addr_base, address_size)
                else:
                    parsed = self._parse_v4(cursor, cu_base, address_size)
            except _Truncated:
                raise ExpressionError(
                    f"{name} at offset {cursor.mark:#x}: truncated entry (list at {offset:#x})"
                ) from None
            self._parsed[key] = parsed
        return parsed

    @staticmethod
    def _parse_v4(cursor: _Cursor, base: int, address_size: int) -> _ParsedList:
        selection = (1 << (8 * address_size)) - 1
        entries: list[tuple[int, int, bytes]] = []
        while True:
            cursor.mark = cursor.pos
            begin = cursor.fixed(address_size)
            end = cursor.fixed(address_size)
            if begin == 0 and end == 0:
                return tuple(entries), None
            if begin == selection:
                base = end
                continue
            expression = cursor.block(cursor.fixed(2))
            entries.append(((base + begin) & _MASK64, (base + end) & _MASK64, expression))

    def _parse_v5(self, cursor: _Cursor, base: int, addr_base: int, address_size: int) -> _ParsedList:
        entries: list[tuple[int, int, bytes]] = []
        default: bytes | None = None

        def address(index: int) -> int:
            return self._address(index, addr_base, address_size)

        while True:
            cursor.mark = cursor.pos
            kind = cursor.fixed(1)
            if kind == _LLE_END_OF_LIST:
                return tuple(entries), default
            if kind == _LLE_BASE_ADDRESSX:
                base = address(cursor.leb())
                continue
            if kind == _LLE_BASE_ADDRESS:
                base = cursor.fixed(address_size)
                continue
            if kind == _LLE_GNU_VIEW_PAIR:
                cursor.leb()
                cursor.leb()
                continue
            if kind == _LLE_STARTX_ENDX:
                low = address(cursor.leb())
                high = address(cursor.leb())
            elif kind == _LLE_STARTX_LENGTH:
                low = address(cursor.leb())
                high = low + cursor.leb()
            elif kind == _LLE_OFFSET_PAIR:
                low = base + cursor.leb()
                high = base + cursor.leb()
            elif kind == _LLE_START_END:
                low = cursor.fixed(address_size)
                high = cursor.fixed(address_size)
            elif kind == _LLE_START_LENGTH:
                low = cursor.fixed(address_size)
                high = low + cursor.leb()
            elif kind == _LLE_DEFAULT_LOCATION:
                expression = cursor.block(cursor.leb())
                if default is None:
                    default = expression
                continue
            else:
                raise ExpressionError(
                    f"{_DEBUG_LOCLISTS} at offset {cursor.mark:#x}: unknown entry kind {kind:#x}"
                )
            entries.append((low & _MASK64, high & _MASK64, cursor.block(cursor.leb())))

    def _address(self, index: int, addr_base: int, address_size: int) -> int:
        position = addr_base + index * address_size
        data = self._debug_addr
        if data is None:
            raise ExpressionError(f".debug_addr is missing (entry {index} at base {addr_base:#x})")
        if position < 0 or position + address_size > len(data):
            raise ExpressionError(f".debug_addr at offset {position:#x}: entry {index} past the end")
        return int.from_bytes(data[position : position + address_size], "little")
