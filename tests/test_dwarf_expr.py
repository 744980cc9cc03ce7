"""lindbg.symbols.dwarf_expr: DWARF expressions, location descriptions, location lists.

The evaluator is a pure function of bytes and a context, so most tests hand it
assembled byte strings and a fake frame (a dict of registers, a bytes-backed
memory). The last part checks it against real GCC output: tests/fixtures/locations.c
compiled -O2 (DWARF 5 and 4) and -O0, read with pyelftools (here only): every list
must give the entries pyelftools and llvm-dwarfdump give, and every expression in
the file must evaluate to a Location without raising.
"""

from __future__ import annotations

import math
import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest

from lindbg.errors import MemoryAccessError
from lindbg.symbols.dwarf_expr import (
    DEFAULT_RANGE,
    MAX_STEPS,
    CompositeLocation,
    ExpressionError,
    ImplicitLocation,
    ImplicitPointerLocation,
    Location,
    LocationLists,
    MemoryLocation,
    Piece,
    RegisterLocation,
    Unavailable,
    UnavailableLocation,
    ValueLocation,
    evaluate_location,
    evaluate_value,
    frame_base_value,
)
from lindbg.symbols.stackwalk import evaluate_expression

M64 = (1 << 64) - 1

# ------------------------------------------------------------------ assembling


def uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def sleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        done = (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40)
        out.append(byte | (0 if done else 0x80))
        if done:
            return bytes(out)


def op(code: int, *operands: bytes) -> bytes:
    return bytes([code]) + b"".join(operands)


def lit(n: int) -> bytes:
    return bytes([0x30 + n])


def reg(n: int) -> bytes:
    return bytes([0x50 + n])


def breg(n: int, offset: int) -> bytes:
    return bytes([0x70 + n]) + sleb(offset)


def u8(n: int) -> bytes:
    return (n & 0xFF).to_bytes(1, "little")


def s16(n: int) -> bytes:
    return n.to_bytes(2, "little", signed=True)


def addr(n: int) -> bytes:
    return (n & M64).to_bytes(8, "little")


def fbits(number: float) -> int:
    return int.from_bytes(struct.pack("<d", number), "little")


def f32bits(number: float) -> int:
    return int.from_bytes(struct.pack("<f", number), "little")


DUP, DROP, OVER, SWAP, ROT = 0x12, 0x13, 0x14, 0x16, 0x17
PLUS, MINUS, MUL, DIV, MOD, AND, OR, XOR = 0x22, 0x1C, 0x1E, 0x1B, 0x1D, 0x1A, 0x21, 0x27
SHL, SHR, SHRA, ABS, NEG, NOT = 0x24, 0x25, 0x26, 0x19, 0x1F, 0x20
EQ, GE, GT, LE, LT, NE = 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E
STACK_VALUE = op(0x9F)


def piece(size: int) -> bytes:
    return op(0x93, uleb(size))


def entry_value(block: bytes, code: int = 0xA3) -> bytes:
    return op(code, uleb(len(block)), block)


def const_type(type_offset: int, value: bytes, code: int = 0xA4) -> bytes:
    return op(code, uleb(type_offset), u8(len(value)), value)


def regval_type(regno: int, type_offset: int, code: int = 0xA5) -> bytes:
    return op(code, uleb(regno), uleb(type_offset))


def convert(type_offset: int, code: int = 0xA8) -> bytes:
    return op(code, uleb(type_offset))


# ------------------------------------------------------------------ the fake frame

RAX, RDX, RSI, RDI, RBP, RSP, XMM0 = 0, 1, 4, 5, 6, 7, 17
BIAS = 0x5555_0000_0000
MEMORY_BASE = 0x2000
MEMORY = bytes(range(0x40, 0x80))
FRAME_BASE = 0x7FFD_0100
CFA = 0x7FFD_0200
TLS_BLOCK = 0x7F00_0000_0000
ADDRESS_TABLE = (0x10, 0x4020)
# base type DIEs (CU offsets) -> (byte size, DW_ATE_ encoding)
DOUBLE, FLOAT, INT, UCHAR, SHORT, ULONG, LDOUBLE, SIZELESS = 0x2A, 0x30, 0x35, 0x3C, 0x40, 0x45, 0x4A, 0x50
BASE_TYPES = {
    DOUBLE: (8, 0x04), FLOAT: (4, 0x04), INT: (4, 0x05), UCHAR: (1, 0x08), SHORT: (2, 0x05),
    ULONG: (8, 0x07), LDOUBLE: (16, 0x04), SIZELESS: (0, 0x05),
}  # fmt: skip
REGISTERS = {
    RAX: 0x1_2345_6789,
    RDX: 0x20,
    RSI: 0x30,
    RDI: 0x1000,
    RBP: 0x7FFE_0000,
    RSP: 0x7FFD_0000,
    XMM0: fbits(1.5),
}


class FakeFrame:
    """A frame from dicts: what it lacks raises Unavailable, as a real context does."""

    def __init__(self, registers: dict[int, int] | None = None) -> None:
        self.registers = REGISTERS if registers is None else registers
        self.entry_values = {reg(RDI): 42}

    def register(self, regno: int) -> int:
        if regno not in self.registers:
            raise Unavailable(f"register {regno} was not recovered")
        return self.registers[regno]

    def read_memory(self, address: int, size: int) -> bytes:
        start = address - MEMORY_BASE
        if start < 0 or start + size > len(MEMORY):
            raise MemoryAccessError(f"cannot read {size} bytes at {address:#x}", address)
        return MEMORY[start : start + size]

    def frame_base(self) -> int:
        return FRAME_BASE

    def call_frame_cfa(self) -> int:
        return CFA

    def entry_value(self, expression: bytes) -> int:
        if expression not in self.entry_values:
            raise Unavailable(f"no call-site value for {expression.hex()}")
        return self.entry_values[expression]

    def tls_address(self, offset: int) -> int:
        return TLS_BLOCK + offset

    def address_at_index(self, index: int) -> int:
        return ADDRESS_TABLE[index] + BIAS  # relocated, as the protocol says

    def relocate(self, address: int) -> int:
        return address + BIAS

    def base_type(self, die_offset: int) -> tuple[int, int]:
        return BASE_TYPES[die_offset]


FRAME = FakeFrame()


# ------------------------------------------------------------------ values

# (id, expression, value of evaluate_value)
VALUES: list[tuple[str, bytes, int]] = [
    # literals and constants
    ("lit0", lit(0), 0),
    ("lit31", lit(31), 31),
    ("const1u", op(0x08, b"\xff"), 255),
    ("const1s", op(0x09, b"\xff"), M64),
    ("const2u", op(0x0A, b"\x34\x12"), 0x1234),
    ("const2s", op(0x0B, b"\x00\x80"), -0x8000 & M64),
    ("const4u", op(0x0C, b"\x78\x56\x34\x12"), 0x12345678),
    ("const4s", op(0x0D, b"\xfe\xff\xff\xff"), M64 - 1),
    ("const8u", op(0x0E, addr(0x1122334455667788)), 0x1122334455667788),
    ("const8s", op(0x0F, (-3).to_bytes(8, "little", signed=True)), M64 - 2),
    ("constu", op(0x10, b"\xe5\x8e\x26"), 624485),
    ("consts", op(0x11, sleb(-123456)), -123456 & M64),
    # stack operations
    ("dup", lit(3) + op(DUP) + op(PLUS), 6),
    ("drop", lit(3) + lit(4) + op(DROP), 3),
    ("over", lit(3) + lit(4) + op(OVER) + op(MINUS), 1),
    ("pick", lit(1) + lit(2) + lit(3) + op(0x15, b"\x02"), 1),
    ("pick 0", lit(1) + lit(2) + op(0x15, b"\x00"), 2),
    ("swap", lit(1) + lit(2) + op(SWAP) + op(MINUS), 1),
    ("rot top", lit(1) + lit(2) + lit(3) + op(ROT), 2),
    ("rot order", lit(1) + lit(2) + lit(3) + op(ROT) + op(MINUS) + op(MINUS), 4),
    # generic arithmetic: 64 bits, signed where DWARF says so
    ("abs", op(0x09, u8(-5)) + op(ABS), 5),
    ("and", op(0x08, b"\x0c") + lit(10) + op(AND), 8),
    ("div is signed", op(0x09, u8(-7)) + lit(2) + op(DIV), -3 & M64),
    ("div min by -1 wraps", op(0x0E, addr(1 << 63)) + op(0x09, u8(-1)) + op(DIV), 1 << 63),
    ("minus wraps", lit(3) + lit(5) + op(MINUS), M64 - 1),
    ("mod is unsigned", op(0x09, u8(-7)) + lit(3) + op(MOD), ((1 << 64) - 7) % 3),
    ("mul", lit(6) + lit(7) + op(MUL), 42),
    ("mul wraps", op(0x0E, addr(1 << 63)) + lit(2) + op(MUL), 0),
    ("neg", lit(5) + op(NEG), M64 - 4),
    ("not", lit(0) + op(NOT), M64),
    ("or", lit(5) + lit(10) + op(OR), 15),
    ("plus wraps", op(0x09, u8(-1)) + lit(2) + op(PLUS), 1),
    ("plus_uconst", lit(1) + op(0x23, uleb(300)), 301),
    ("shl", lit(1) + op(0x08, u8(63)) + op(SHL), 1 << 63),
    ("shl by 64", lit(1) + op(0x08, u8(64)) + op(SHL), 0),
    ("shr is logical", op(0x09, u8(-1)) + op(0x08, u8(60)) + op(SHR), 15),
    ("shra is arithmetic", op(0x09, u8(-16)) + lit(2) + op(SHRA), -4 & M64),
    ("shra by 200", op(0x09, u8(-16)) + op(0x08, u8(200)) + op(SHRA), M64),
    ("xor", lit(12) + lit(10) + op(XOR), 6),
    ("lt is signed", op(0x09, u8(-1)) + lit(1) + op(LT), 1),
    ("gt is signed", op(0x09, u8(-1)) + lit(1) + op(GT), 0),
    ("eq", lit(1) + lit(1) + op(EQ), 1),
    ("ne", lit(1) + lit(1) + op(NE), 0),
    ("ge equal", lit(2) + lit(2) + op(GE), 1),
    ("le", lit(3) + lit(2) + op(LE), 0),
    # control flow: C ? 7 : 5, a loop summing 5..1, a skip
    ("bra taken", lit(1) + op(0x28, s16(4)) + lit(5) + op(0x2F, s16(1)) + lit(7), 7),
    ("bra not taken", lit(0) + op(0x28, s16(4)) + lit(5) + op(0x2F, s16(1)) + lit(7), 5),
    (
        "loop",
        lit(0)
        + lit(5)
        + op(DUP)
        + op(ROT)
        + op(PLUS)
        + op(SWAP)
        + lit(1)
        + op(MINUS)
        + op(DUP)
        + op(0x28, s16(-10))
        + op(DROP),
        15,
    ),
    ("skip", op(0x2F, s16(1)) + lit(5) + lit(7), 7),
    ("nop and GNU_uninit", lit(4) + op(0x96) + op(0xF0), 4),
    # the frame
    ("breg", breg(RDI, 8), 0x1008),
    ("breg negative", breg(RSP, -16), 0x7FFD_0000 - 16),
    ("bregx", op(0x92, uleb(RDI), sleb(-8)), 0x1000 - 8),
    ("fbreg", op(0x91, sleb(-24)), FRAME_BASE - 24),
    ("call_frame_cfa", op(0x9C), CFA),
    ("addr is relocated", op(0x03, addr(0x4010)), BIAS + 0x4010),
    ("addrx is relocated", op(0xA1, uleb(1)), BIAS + 0x4020),
    ("GNU_addr_index", op(0xFB, uleb(1)), BIAS + 0x4020),
    ("constx is not", op(0xA2, uleb(1)), 0x4020),  # a constant: the bias comes back off
    ("GNU_const_index", op(0xFC, uleb(1)), 0x4020),
    ("deref", op(0x03, addr(MEMORY_BASE + 8 - BIAS)) + op(0x06), int.from_bytes(MEMORY[8:16], "little")),
    ("deref_size", breg(RDX, MEMORY_BASE) + op(0x94, b"\x02"), 0x6160),
    ("form_tls_address", op(0x08, u8(0x10)) + op(0x9B), TLS_BLOCK + 0x10),
    ("constx form_tls_address", op(0xA2, uleb(0)) + op(0x9B), TLS_BLOCK + 0x10),
    ("GNU_push_tls_address", op(0x08, u8(0x18)) + op(0xE0), TLS_BLOCK + 0x18),
    ("entry_value", entry_value(reg(RDI)), 42),
    ("GNU_entry_value", entry_value(reg(RDI), 0xF3) + op(0x23, uleb(1)), 43),
    ("stack_value at the end", lit(9) + STACK_VALUE, 9),
    # typed values: raw bits of the base type
    ("const_type", const_type(INT, b"\xff\xff\xff\xff"), 0xFFFFFFFF),
    ("GNU_const_type", const_type(INT, b"\x05\x00\x00\x00", 0xF4), 5),
    ("convert sign-extends", const_type(INT, b"\xff\xff\xff\xff") + convert(ULONG), M64),
    ("convert to generic", const_type(SHORT, b"\xfe\xff") + convert(0), M64 - 1),
    ("convert zero-extends", const_type(UCHAR, b"\xff") + convert(INT), 255),
    ("GNU_convert narrows", op(0x0A, b"\x34\x12") + convert(UCHAR, 0xF7), 0x34),
    (
        "typed plus wraps",
        const_type(INT, b"\xff\xff\xff\x7f") + const_type(INT, b"\x01\0\0\0") + op(PLUS),
        0x80000000,
    ),
    (
        "typed div",
        const_type(INT, b"\xf8\xff\xff\xff") + const_type(INT, b"\x02\0\0\0") + op(DIV),
        0xFFFFFFFC,
    ),
    (
        "typed mod signed",
        const_type(INT, b"\xf9\xff\xff\xff") + const_type(INT, b"\x03\0\0\0") + op(MOD),
        0xFFFFFFFF,
    ),
    ("unsigned compare", const_type(UCHAR, b"\xff") + const_type(UCHAR, b"\x01") + op(GT), 1),
    ("signed compare", const_type(INT, b"\xff\xff\xff\xff") + const_type(INT, b"\x01\0\0\0") + op(GT), 0),
    ("typed shra with a generic count", const_type(SHORT, b"\x00\x80") + lit(4) + op(SHRA), 0xF800),
    ("typed shr", const_type(SHORT, b"\x00\x80") + lit(4) + op(SHR), 0x0800),
    ("typed neg", const_type(UCHAR, b"\x01") + op(NEG), 0xFF),
    ("regval_type", regval_type(RAX, INT), 0x2345_6789),
    ("GNU_regval_type xmm0", regval_type(XMM0, DOUBLE, 0xF5), fbits(1.5)),
    ("deref_type", op(0x03, addr(MEMORY_BASE - BIAS)) + op(0xA6, b"\x04", uleb(INT)), 0x43424140),
    ("GNU_deref_type", op(0x03, addr(MEMORY_BASE - BIAS)) + op(0xF6, b"\x02", uleb(SHORT)), 0x4140),
    ("reinterpret", const_type(DOUBLE, addr(fbits(2.0))) + op(0xA9, uleb(ULONG)), fbits(2.0)),
    ("GNU_reinterpret", lit(1) + op(0xF9, uleb(UCHAR)), 1),
    # floating point
    ("double to int", regval_type(XMM0, DOUBLE) + convert(INT), 1),
    ("negative double to int truncates", const_type(DOUBLE, addr(fbits(-2.75))) + convert(INT), 0xFFFFFFFE),
    ("int to double", const_type(INT, b"\xfd\xff\xff\xff") + convert(DOUBLE), fbits(-3.0)),
    ("double to float", regval_type(XMM0, DOUBLE) + convert(FLOAT), f32bits(1.5)),
    (
        "float to double",
        const_type(FLOAT, f32bits(0.25).to_bytes(4, "little")) + convert(DOUBLE),
        fbits(0.25),
    ),
    ("double mul", regval_type(XMM0, DOUBLE) + op(DUP) + op(MUL), fbits(2.25)),
    (
        "double minus",
        regval_type(XMM0, DOUBLE) + const_type(DOUBLE, addr(fbits(4.0))) + op(MINUS),
        fbits(-2.5),
    ),
    (
        "double div by zero",
        regval_type(XMM0, DOUBLE) + const_type(DOUBLE, addr(0)) + op(DIV),
        fbits(math.inf),
    ),
    ("double neg", regval_type(XMM0, DOUBLE) + op(NEG), fbits(-1.5)),
    ("double abs", const_type(DOUBLE, addr(fbits(-0.5))) + op(ABS), fbits(0.5)),
    ("double gt", regval_type(XMM0, DOUBLE) + const_type(DOUBLE, addr(fbits(1.0))) + op(GT), 1),
    ("float plus", const_type(FLOAT, f32bits(0.5).to_bytes(4, "little")) + op(DUP) + op(PLUS), f32bits(1.0)),
    (
        "float overflow is infinity",
        const_type(FLOAT, f32bits(3e38).to_bytes(4, "little")) + op(DUP) + op(PLUS),
        f32bits(math.inf),
    ),
]


@pytest.mark.parametrize(
    ("expression", "expected"), [case[1:] for case in VALUES], ids=[c[0] for c in VALUES]
)
def test_value(expression: bytes, expected: int) -> None:
    assert evaluate_value(expression, FRAME) == expected


def test_value_initial_stack_and_cfi_use() -> None:
    # DW_AT_data_member_location style: the struct address is pushed first
    assert evaluate_value(op(0x23, uleb(12)), FRAME, initial=[0x5000]) == 0x500C
    # DW_CFA_expression style: the CFA first, then [cfa - 8]
    assert evaluate_value(breg(RSP, 0) + op(MINUS), FRAME, initial=[0x7FFD_0010]) == 0x10
    assert evaluate_value(b"", FRAME, initial=[7, 8]) == 8


# ------------------------------------------------------------------ locations

IMPLICIT_POINTER_V5 = op(0xA0, (0x3E9).to_bytes(4, "little"), sleb(0))

# (id, expression, location)
LOCATIONS: list[tuple[str, bytes, Location]] = [
    ("empty is optimized out", b"", UnavailableLocation("optimized out")),
    ("reg", reg(RDI), RegisterLocation(RDI)),
    ("reg31", reg(31), RegisterLocation(31)),
    ("regx xmm0", op(0x90, uleb(XMM0)), RegisterLocation(XMM0)),
    ("reg then GNU_uninit", reg(10) + op(0xF0), RegisterLocation(10)),
    ("breg is memory", breg(RSP, 8), MemoryLocation(0x7FFD_0008)),
    ("fbreg is memory", op(0x91, sleb(-20)), MemoryLocation(FRAME_BASE - 20)),
    ("addr is memory", op(0x03, addr(0x4010)), MemoryLocation(BIAS + 0x4010)),
    ("tls is memory", op(0x0E, addr(0x10)) + op(0x9B), MemoryLocation(TLS_BLOCK + 0x10)),
    ("stack_value", lit(5) + STACK_VALUE, ValueLocation(5)),
    ("x = a + 1", entry_value(reg(RDI)) + op(0x23, uleb(1)) + STACK_VALUE, ValueLocation(43)),
    ("typed stack_value", const_type(INT, b"\xff\xff\xff\xff") + STACK_VALUE, ValueLocation(0xFFFFFFFF)),
    (
        "entry value of a typed register",
        entry_value(regval_type(XMM0, DOUBLE)) + STACK_VALUE,
        UnavailableLocation(f"no call-site value for {regval_type(XMM0, DOUBLE).hex()}"),
    ),
    ("implicit_value", op(0x9E, uleb(4), b"\x01\x02\x03\x04"), ImplicitLocation(b"\x01\x02\x03\x04")),
    ("implicit_pointer", IMPLICIT_POINTER_V5, ImplicitPointerLocation(0x3E9, 0)),
    (
        "GNU_implicit_pointer",
        op(0xF2, (0x77).to_bytes(4, "little"), sleb(-4)),
        ImplicitPointerLocation(0x77, -4),
    ),
    # pieces, as GCC writes them
    (
        "register and value pieces",
        reg(RDI) + piece(4) + breg(RDI, 0) + lit(1) + op(SHL) + STACK_VALUE + piece(4),
        CompositeLocation((Piece(RegisterLocation(RDI), 32), Piece(ValueLocation(0x2000), 32))),
    ),
    (
        "a missing first piece",
        piece(4) + entry_value(reg(RDI)) + STACK_VALUE + piece(4),
        CompositeLocation((Piece(UnavailableLocation("optimized out"), 32), Piece(ValueLocation(42), 32))),
    ),
    (
        "a missing middle piece",
        lit(1) + STACK_VALUE + piece(4) + piece(4) + reg(RSI) + piece(8),
        CompositeLocation(
            (
                Piece(ValueLocation(1), 32),
                Piece(UnavailableLocation("optimized out"), 32),
                Piece(RegisterLocation(RSI), 64),
            )
        ),
    ),
    (
        "memory pieces",
        breg(RSP, 0) + piece(8) + reg(RAX) + piece(8),
        CompositeLocation((Piece(MemoryLocation(0x7FFD_0000), 64), Piece(RegisterLocation(RAX), 64))),
    ),
    (
        "implicit pieces",
        op(0x9E, uleb(2), b"\xaa\xbb") + piece(2) + IMPLICIT_POINTER_V5 + piece(8),
        CompositeLocation(
            (Piece(ImplicitLocation(b"\xaa\xbb"), 16), Piece(ImplicitPointerLocation(0x3E9, 0), 64))
        ),
    ),
    (
        "bit_piece",
        reg(RAX) + op(0x9D, uleb(3), uleb(5)) + reg(RDX) + op(0x9D, uleb(29), uleb(0)),
        CompositeLocation((Piece(RegisterLocation(RAX), 3, 5), Piece(RegisterLocation(RDX), 29))),
    ),
    # what the frame cannot give: never a wrong number
    (
        "entry value unknown",
        entry_value(reg(RSI)) + STACK_VALUE,
        UnavailableLocation("no call-site value for 54"),
    ),
    ("register not recovered", breg(12, 8), UnavailableLocation("register 12 was not recovered")),
    ("unreadable deref", lit(16) + op(0x06), UnavailableLocation("memory at 0x10 is not readable")),
    (
        "unreadable deref_size",
        lit(16) + op(0x94, b"\x04") + STACK_VALUE,
        UnavailableLocation("memory at 0x10 is not readable"),
    ),
    (
        "one piece unavailable",
        reg(RAX) + piece(4) + entry_value(reg(RSI)) + STACK_VALUE + piece(4),
        CompositeLocation(
            (Piece(RegisterLocation(RAX), 32), Piece(UnavailableLocation("no call-site value for 54"), 32))
        ),
    ),
    (
        "a spoiled piece leaves nothing behind for the next",
        breg(RAX, 0) + entry_value(reg(RSI)) + op(PLUS) + STACK_VALUE + piece(4) + piece(4),
        CompositeLocation(
            (
                Piece(UnavailableLocation("no call-site value for 54"), 32),
                Piece(UnavailableLocation("optimized out"), 32),
            )
        ),
    ),
    (
        "division by zero",
        lit(1) + lit(0) + op(DIV) + STACK_VALUE,
        UnavailableLocation("DW_OP_div at offset 2: division by zero"),
    ),
    (
        "push_object_address",
        op(0x97),
        UnavailableLocation("DW_OP_push_object_address: no object address here"),
    ),
    ("call2", op(0x98, b"\x10\x00"), UnavailableLocation("DW_OP_call2: calls to DIE 0x10 are not evaluated")),
    (
        "call4",
        op(0x99, b"\x10\x00\x00\x00"),
        UnavailableLocation("DW_OP_call4: calls to DIE 0x10 are not evaluated"),
    ),
    (
        "call_ref",
        op(0x9A, b"\x10\x00\x00\x00"),
        UnavailableLocation("DW_OP_call_ref: calls to DIE 0x10 are not evaluated"),
    ),
    (
        "GNU_parameter_ref",
        op(0xFA, b"\x10\x00\x00\x00") + STACK_VALUE,
        UnavailableLocation("DW_OP_GNU_parameter_ref: the caller's parameter value is not known"),
    ),
    (
        "GNU_variable_value",
        op(0xFD, b"\x20\x00\x00\x00") + STACK_VALUE,
        UnavailableLocation(
            "DW_OP_GNU_variable_value: the value of the variable at DIE 0x20 is not evaluated"
        ),
    ),
    (
        "wide register",
        regval_type(XMM0, LDOUBLE) + STACK_VALUE,
        UnavailableLocation("xmm0 as a 128-bit value"),
    ),
    (
        "long double arithmetic",
        const_type(LDOUBLE, bytes(16)) + op(DUP) + op(PLUS) + STACK_VALUE,
        UnavailableLocation("16-byte floating-point values are not supported"),
    ),
    (
        "infinity to int",
        const_type(DOUBLE, addr(fbits(math.inf))) + convert(INT) + STACK_VALUE,
        UnavailableLocation("DW_OP_convert at offset 11: inf has no integer value"),
    ),
    (
        "sizeless base type",
        const_type(SIZELESS, b"") + STACK_VALUE,
        UnavailableLocation("DW_OP_const_type at offset 0: base type has no size"),
    ),
]


@pytest.mark.parametrize(
    ("expression", "expected"), [c[1:] for c in LOCATIONS], ids=[c[0] for c in LOCATIONS]
)
def test_location(expression: bytes, expected: Location) -> None:
    assert evaluate_location(expression, FRAME) == expected


def test_a_register_location_does_not_read_the_register() -> None:
    # a caller frame where rdi was not recovered: the location is still "rdi", and
    # reading it later is what finds it unavailable
    frame = FakeFrame(registers={})
    assert evaluate_location(reg(RDI), frame) == RegisterLocation(RDI)
    assert evaluate_location(breg(RDI, 0), frame) == UnavailableLocation("register 5 was not recovered")


def test_reference_operand_sizes() -> None:
    dwarf64 = op(0xA0, (0x1_0000_0000).to_bytes(8, "little"), sleb(3))
    assert evaluate_location(dwarf64, FRAME, offset_size=8) == ImplicitPointerLocation(0x1_0000_0000, 3)
    # in DWARF 2 a DIE reference is address-sized
    dwarf2 = op(0xF2, (0x99).to_bytes(8, "little"), sleb(1))
    assert evaluate_location(dwarf2, FRAME, version=2, offset_size=4) == ImplicitPointerLocation(0x99, 1)
    assert evaluate_location(
        op(0x03, (0x400).to_bytes(4, "little")), FRAME, address_size=4
    ) == MemoryLocation(BIAS + 0x400)


def test_deref_reads_an_address_of_the_unit_size() -> None:
    at_memory = breg(RDX, MEMORY_BASE - 0x20)
    assert evaluate_value(at_memory + op(0x06), FRAME, address_size=4) == 0x43424140
    assert evaluate_value(at_memory + op(0x06), FRAME) == 0x4746454443424140


def test_frame_base_value() -> None:
    # a bare register as a frame base is the register's value (DWARF 4, 2.6.1.1.3)
    assert frame_base_value(reg(RBP), FRAME) == 0x7FFE_0000
    assert frame_base_value(op(0x90, uleb(RBP)), FRAME) == 0x7FFE_0000
    assert frame_base_value(op(0x9C), FRAME) == CFA
    assert frame_base_value(breg(RSP, 8), FRAME) == 0x7FFD_0008
    with pytest.raises(Unavailable, match=r"^register 6 was not recovered$"):
        frame_base_value(reg(RBP), FakeFrame(registers={}))
    with pytest.raises(Unavailable, match=r"^the function has no frame base here$"):
        frame_base_value(b"", FRAME)


def test_value_evaluation_lets_unavailable_and_memory_errors_through() -> None:
    with pytest.raises(Unavailable, match=r"^no call-site value for 54$"):
        evaluate_value(entry_value(reg(RSI)), FRAME)
    with pytest.raises(MemoryAccessError) as error:
        evaluate_value(lit(16) + op(0x06), FRAME)
    assert error.value.address == 0x10


# ------------------------------------------------------------------ errors

# (id, expression, exact message)
ERRORS: list[tuple[str, bytes, str]] = [
    ("unknown op", lit(1) + b"\xe5", "DW_OP_0xe5 unsupported at offset 1"),
    ("xderef", lit(1) + op(0x18), "DW_OP_xderef unsupported at offset 1"),
    ("xderef_size", op(0x95, b"\x04"), "DW_OP_xderef_size unsupported at offset 0"),
    ("xderef_type", op(0xA7, b"\x04\x01"), "DW_OP_xderef_type unsupported at offset 0"),
    ("GNU_encoded_addr", op(0xF1, b"\x00"), "DW_OP_GNU_encoded_addr unsupported at offset 0"),
    ("truncated fixed", op(0x0C, b"\x01\x02"), "DW_OP_const4u at offset 0: truncated operand"),
    ("truncated leb", lit(0) + op(0x23, b"\x80\x80"), "DW_OP_plus_uconst at offset 1: truncated operand"),
    ("truncated addr", op(0x03, b"\x00" * 7), "DW_OP_addr at offset 0: truncated operand"),
    ("truncated block", op(0x9E, uleb(4), b"\x01"), "DW_OP_implicit_value at offset 0: truncated operand"),
    ("truncated branch", op(0x2F, b"\x01"), "DW_OP_skip at offset 0: truncated operand"),
    ("underflow", lit(1) + op(PLUS), "DW_OP_plus at offset 1: stack underflow"),
    ("underflow deref", op(0x06), "DW_OP_deref at offset 0: stack underflow"),
    ("underflow pick", lit(1) + op(0x15, b"\x01"), "DW_OP_pick at offset 1: stack underflow"),
    ("underflow rot", lit(1) + lit(2) + op(ROT), "DW_OP_rot at offset 2: stack underflow"),
    ("underflow stack_value", STACK_VALUE, "DW_OP_stack_value at offset 0: stack underflow"),
    ("runaway loop", op(0x2F, s16(-3)), f"DW_OP_skip at offset 0: more than {MAX_STEPS} operations executed"),
    (
        "branch mid-operation",
        op(0x2F, s16(1)) + op(0x08, b"\x01"),
        "DW_OP_skip at offset 0: target 4 is not an operation boundary",
    ),
    (
        "branch outside",
        lit(1) + op(0x28, s16(-5)),
        "DW_OP_bra at offset 1: target -1 is not an operation boundary",
    ),
    (
        "op after a register",
        reg(RAX) + lit(1),
        "DW_OP_lit1 at offset 1: follows a complete location without DW_OP_piece",
    ),
    (
        "op after stack_value",
        lit(1) + STACK_VALUE + op(PLUS),
        "DW_OP_plus at offset 2: follows a complete location without DW_OP_piece",
    ),
    (
        "location after the last piece",
        reg(RAX) + piece(4) + reg(RDX),
        "location expression 50930451: a location after the last DW_OP_piece",
    ),
    ("empty stack", op(0x96), "location expression 96: the expression leaves an empty stack"),
    ("deref_size 0", lit(1) + op(0x94, b"\x00"), "DW_OP_deref_size at offset 1: size 0 is not 1 to 8"),
    (
        "deref_type 17",
        lit(1) + op(0xA6, b"\x11", uleb(INT)),
        "DW_OP_deref_type at offset 1: size 17 is not 1 to 16",
    ),
    (
        "float and",
        regval_type(XMM0, DOUBLE) + op(DUP) + op(AND),
        "DW_OP_and at offset 4: not defined for floating-point values",
    ),
    (
        "float not",
        regval_type(XMM0, DOUBLE) + op(NOT),
        "DW_OP_not at offset 3: not defined for floating-point values",
    ),
    (
        "mixed types",
        const_type(INT, bytes(4)) + const_type(UCHAR, b"\x00") + op(PLUS),
        "DW_OP_plus at offset 11: operands of different types",
    ),
]


@pytest.mark.parametrize(("expression", "message"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_error(expression: bytes, message: str) -> None:
    with pytest.raises(ExpressionError, match=f"^{re.escape(message)}$"):
        evaluate_location(expression, FRAME)


def test_value_errors() -> None:
    with pytest.raises(
        ExpressionError, match=r"^value expression 55: a location where a value was expected$"
    ):
        evaluate_value(reg(RDI), FRAME)
    with pytest.raises(
        ExpressionError, match=r"^value expression 5593049304: pieces where a value was expected$"
    ):
        evaluate_value(reg(RDI) + piece(4) + piece(4), FRAME)
    with pytest.raises(ExpressionError, match=r"^value expression 96: the expression leaves an empty stack$"):
        evaluate_value(op(0x96), FRAME)


def test_stackwalk_wrapper_keeps_its_contract() -> None:
    read = {0x2000: 0x1122334455667788}.__getitem__
    assert evaluate_expression(
        lit(0x10) + op(0x94, b"\x02") + lit(1) + op(PLUS), {}, lambda a: read(a + 0x1FF0)
    ) == (0x7789)
    with pytest.raises(ValueError, match=r"^DW_OP_0xe5 unsupported at offset 0$"):
        evaluate_expression(b"\xe5", {}, read)
    with pytest.raises(ValueError, match=r"^register rdi is not known$"):
        evaluate_expression(breg(RDI, 0), {}, read)
    with pytest.raises(ValueError, match=r"^no CFA here$"):
        evaluate_expression(op(0x9C), {}, read)  # a CFI rule has no CFA of its own

    def unreadable(address: int) -> int:
        raise MemoryAccessError(f"cannot read {address:#x}", address)

    with pytest.raises(MemoryAccessError, match=r"^cannot read 0x8$"):
        evaluate_expression(lit(8) + op(0x06), {}, unreadable)


# ------------------------------------------------------------------ location lists


def loc_entry(begin: int, end: int, expression: bytes, size: int = 8) -> bytes:
    return (
        begin.to_bytes(size, "little")
        + end.to_bytes(size, "little")
        + len(expression).to_bytes(2, "little")
        + expression
    )


def counted(expression: bytes) -> bytes:
    return uleb(len(expression)) + expression


def test_debug_loc() -> None:
    section = (
        b"\xee" * 4  # something else before the list
        + loc_entry(0x10, 0x20, reg(RDI))
        + (M64).to_bytes(8, "little")
        + (0x1000).to_bytes(8, "little")  # base address selection
        + loc_entry(0x0, 0x8, reg(RAX))
        + loc_entry(0x8, 0x8, reg(RDX))  # empty: covers nothing
        + bytes(16)  # end of list
    )
    lists = LocationLists(section, None, None)
    assert lists.entries(4, version=4, cu_base=0x400000) == [
        (0x400010, 0x400020, reg(RDI)),
        (0x1000, 0x1008, reg(RAX)),
        (0x1008, 0x1008, reg(RDX)),
    ]
    expected = {
        0x40000F: None,
        0x400010: reg(RDI),
        0x40001F: reg(RDI),
        0x400020: None,
        0xFFF: None,
        0x1000: reg(RAX),
        0x1007: reg(RAX),
        0x1008: None,
    }
    for pc, expression in expected.items():
        assert lists.expression_at(4, pc, version=4, cu_base=0x400000) == expression, hex(pc)
    # 4-byte addresses: the selection entry is 0xffffffff
    small = (
        loc_entry(0, 4, lit(1), 4)
        + b"\xff\xff\xff\xff"
        + (0x50).to_bytes(4, "little")
        + loc_entry(0, 2, lit(2), 4)
    )
    small += bytes(8)
    assert LocationLists(small, None, None).entries(0, version=3, cu_base=0x100, address_size=4) == [
        (0x100, 0x104, lit(1)),
        (0x50, 0x52, lit(2)),
    ]


def test_debug_loc_errors() -> None:
    section = loc_entry(0x10, 0x20, reg(RDI)) + loc_entry(0x20, 0x30, reg(RAX))
    with pytest.raises(
        ExpressionError, match=r"^\.debug_loc at offset 0x13: truncated entry \(list at 0x0\)$"
    ):
        LocationLists(section[:-1], None, None).expression_at(0, 0x0, version=4, cu_base=0)
    with pytest.raises(
        ExpressionError, match=r"^\.debug_loc at offset 0x26: truncated entry \(list at 0x0\)$"
    ):
        LocationLists(section, None, None).expression_at(0, 0x0, version=4, cu_base=0)
    with pytest.raises(ExpressionError, match=r"^\.debug_loc is missing \(a location list at offset 0x10\)$"):
        LocationLists(None, section, None).expression_at(0x10, 0x0, version=4, cu_base=0)


def build_loclists() -> tuple[bytes, bytes, dict[str, int]]:
    """A .debug_loclists unit with an offset table and lists of every kind, and its
    .debug_addr; the offsets of the lists by name."""
    addresses = [0x5000, 0x6000, 0x6010, 0x7000]
    debug_addr = (4 + 8 * len(addresses)).to_bytes(4, "little") + b"\x05\x00\x08\x00"
    debug_addr += b"".join(address.to_bytes(8, "little") for address in addresses)
    lists = {
        "direct": (
            b"\x06"
            + addr(0x2000)  # base_address
            + b"\x04"
            + uleb(0x10)
            + uleb(0x20)
            + counted(reg(1))  # offset_pair
            + b"\x07"
            + addr(0x3000)
            + addr(0x3010)
            + counted(reg(2))  # start_end
            + b"\x08"
            + addr(0x4000)
            + uleb(8)
            + counted(reg(3))  # start_length
            + b"\x00"
        ),
        "indexed": (
            b"\x01"
            + uleb(0)  # base_addressx: 0x5000
            + b"\x04"
            + uleb(0)
            + uleb(4)
            + counted(reg(4))
            + b"\x02"
            + uleb(1)
            + uleb(2)
            + counted(reg(5))  # startx_endx: 0x6000..0x6010
            + b"\x03"
            + uleb(3)
            + uleb(0x10)
            + counted(reg(6))  # startx_length: 0x7000..0x7010
            + b"\x00"
        ),
        "default": (
            b"\x04"
            + uleb(0x100)
            + uleb(0x110)
            + counted(reg(7))  # from the CU base
            + b"\x05"
            + counted(lit(0) + STACK_VALUE)  # default_location
            + b"\x00"
        ),
        "views": b"\x09" + uleb(1) + uleb(2) + b"\x04" + uleb(0) + uleb(1) + counted(reg(8)) + b"\x00",
        "bad kind": b"\x04" + uleb(0) + uleb(1) + counted(reg(9)) + b"\x2a",
        "truncated": b"\x07" + addr(0x3000) + addr(0x3010) + uleb(5) + reg(2),
    }
    names = list(lists)
    header_size = 12
    table = bytearray()
    body = bytearray()
    offsets = {}
    table_size = 4 * len(names)
    for name in names:
        offsets[name] = header_size + table_size + len(body)
        table += (table_size + len(body)).to_bytes(4, "little")
        body += lists[name]
    unit = b"\x05\x00\x08\x00" + len(names).to_bytes(4, "little") + bytes(table) + bytes(body)
    return len(unit).to_bytes(4, "little") + unit, debug_addr, offsets


def test_debug_loclists() -> None:
    section, debug_addr, offsets = build_loclists()
    lists = LocationLists(None, section, debug_addr)
    kwargs: dict[str, Any] = {"version": 5, "cu_base": 0x1000, "addr_base": 8}
    assert lists.entries(offsets["direct"], **kwargs) == [
        (0x2010, 0x2020, reg(1)),
        (0x3000, 0x3010, reg(2)),
        (0x4000, 0x4008, reg(3)),
    ]
    assert lists.entries(offsets["indexed"], **kwargs) == [
        (0x5000, 0x5004, reg(4)),
        (0x6000, 0x6010, reg(5)),
        (0x7000, 0x7010, reg(6)),
    ]
    assert lists.entries(offsets["default"], **kwargs) == [
        (0x1100, 0x1110, reg(7)),
        (*DEFAULT_RANGE, lit(0) + STACK_VALUE),
    ]
    assert lists.entries(offsets["views"], **kwargs) == [(0x1000, 0x1001, reg(8))]
    at = {
        ("direct", 0x200F): None,
        ("direct", 0x2010): reg(1),
        ("direct", 0x201F): reg(1),
        ("direct", 0x2020): None,
        ("direct", 0x3000): reg(2),
        ("direct", 0x3010): None,
        ("direct", 0x4007): reg(3),
        ("direct", 0x4008): None,
        ("indexed", 0x5003): reg(4),
        ("indexed", 0x5004): None,
        ("indexed", 0x600F): reg(5),
        ("indexed", 0x7000): reg(6),
        ("indexed", 0x7010): None,
        ("default", 0x1100): reg(7),
        ("default", 0x110F): reg(7),
        ("default", 0x1110): lit(0) + STACK_VALUE,
        ("default", 0x0): lit(0) + STACK_VALUE,
    }
    for (name, pc), expression in at.items():
        assert lists.expression_at(offsets[name], pc, **kwargs) == expression, (name, hex(pc))


def test_loclistx_offsets() -> None:
    section, _debug_addr, offsets = build_loclists()
    lists = LocationLists(None, section, None)
    assert [lists.offset_of_index(i, loclists_base=12) for i in range(len(offsets))] == list(offsets.values())
    with pytest.raises(
        ExpressionError,
        match=r"^\.debug_loclists at offset 0xc: list index 6 past the offset table \(6 entries\)$",
    ):
        lists.offset_of_index(6, loclists_base=12)
    with pytest.raises(ExpressionError, match=r"^\.debug_loclists at offset 0x2: truncated offset table$"):
        lists.offset_of_index(0, loclists_base=2)


def test_debug_loclists_errors() -> None:
    section, debug_addr, offsets = build_loclists()
    lists = LocationLists(None, section, debug_addr)
    bad = offsets["bad kind"]
    with pytest.raises(
        ExpressionError, match=f"^\\.debug_loclists at offset {bad + 5:#x}: unknown entry kind 0x2a$"
    ):
        lists.expression_at(bad, 0, version=5, cu_base=0, addr_base=8)
    truncated = offsets["truncated"]
    with pytest.raises(
        ExpressionError,
        match=f"^\\.debug_loclists at offset {truncated:#x}: truncated entry \\(list at {truncated:#x}\\)$",
    ):
        lists.expression_at(truncated, 0, version=5, cu_base=0)
    with pytest.raises(ExpressionError, match=r"^\.debug_addr is missing \(entry 0 at base 0x8\)$"):
        LocationLists(None, section, None).expression_at(
            offsets["indexed"], 0, version=5, cu_base=0, addr_base=8
        )
    with pytest.raises(ExpressionError, match=r"^\.debug_addr at offset 0x30: entry 5 past the end$"):
        LocationLists(None, b"\x01" + uleb(5) + b"\x00", debug_addr).expression_at(
            0, 0, version=5, cu_base=0, addr_base=8
        )
    with pytest.raises(
        ExpressionError, match=r"^\.debug_loclists is missing \(a location list at offset 0x0\)$"
    ):
        LocationLists(section, None, None).expression_at(0, 0, version=5, cu_base=0)


# ------------------------------------------------------------------ real GCC output

BUILD = Path(__file__).parent / "build" / "dwarf_expr"
SOURCE = Path(__file__).parent / "fixtures" / "locations.c"
VARIANTS = {
    "dwarf5-O2": ["-O2"],
    "dwarf4-O2": ["-O2", "-gdwarf-4"],
    "dwarf5-O0": ["-O0"],
}


@pytest.fixture(scope="module")
def binaries() -> dict[str, Path]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build tests/fixtures/locations.c")
    BUILD.mkdir(parents=True, exist_ok=True)
    built = {}
    for variant, flags in VARIANTS.items():
        output = BUILD / f"locations-{variant}"
        subprocess.run(["gcc", "-g", *flags, "-o", str(output), str(SOURCE)], check=True, capture_output=True)
        built[variant] = output
    return built


class Unit:
    """What the tests need from one CU, read with pyelftools."""

    def __init__(self, cu: Any) -> None:
        self.cu = cu
        top = cu.get_top_DIE()
        self.version: int = cu["version"]
        self.offset_size: int = 8 if cu.structs.dwarf_format == 64 else 4
        self.address_size: int = cu["address_size"]
        low_pc = top.attributes.get("DW_AT_low_pc")
        self.base: int = low_pc.value if low_pc is not None else 0
        addr_base = top.attributes.get("DW_AT_addr_base")
        self.addr_base: int = addr_base.value if addr_base is not None else 0


def iter_units(path: Path) -> Iterator[tuple[Any, Unit]]:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as stream:
        dwarf = ELFFile(stream).get_dwarf_info()
        for cu in dwarf.iter_CUs():
            yield dwarf, Unit(cu)


def section_bytes(path: Path, name: str) -> bytes | None:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as stream:
        section = ELFFile(stream).get_section_by_name(name)
        return section.data() if section is not None else None


def our_lists(path: Path) -> LocationLists:
    return LocationLists(
        section_bytes(path, ".debug_loc"),
        section_bytes(path, ".debug_loclists"),
        section_bytes(path, ".debug_addr"),
    )


def pyelftools_entries(entries: list[Any], base: int) -> list[tuple[int, int, bytes]]:
    """pyelftools' parsed list with the base applied, as ``LocationLists.entries`` gives it."""
    from elftools.dwarf.locationlists import BaseAddressEntry

    resolved = []
    default = None
    for entry in entries:
        if isinstance(entry, BaseAddressEntry):
            base = entry.base_address
        elif entry.begin_offset == -1:
            default = bytes(entry.loc_expr)
        elif entry.is_absolute:
            resolved.append((entry.begin_offset, entry.end_offset, bytes(entry.loc_expr)))
        else:
            resolved.append((base + entry.begin_offset, base + entry.end_offset, bytes(entry.loc_expr)))
    if default is not None:
        resolved.append((*DEFAULT_RANGE, default))
    return resolved


def list_attributes(path: Path) -> Iterator[tuple[Any, Unit, Any, Any]]:
    """(dwarf, unit, die, attribute) of every attribute that is a location list."""
    from elftools.dwarf.locationlists import LocationParser

    for dwarf, unit in iter_units(path):
        for die in unit.cu.iter_DIEs():
            for attribute in die.attributes.values():
                if LocationParser.attribute_has_location(attribute, unit.version) and attribute.form in (
                    "DW_FORM_sec_offset",
                    "DW_FORM_loclistx",
                    "DW_FORM_data4",
                ):
                    yield dwarf, unit, die, attribute


@pytest.mark.parametrize("variant", ["dwarf5-O2", "dwarf4-O2"])
def test_lists_match_pyelftools(binaries: dict[str, Path], variant: str) -> None:
    path = binaries[variant]
    lists = our_lists(path)
    checked = 0
    for dwarf, unit, die, attribute in list_attributes(path):
        parsed = dwarf.location_lists().get_location_list_at_offset(attribute.value, die)
        expected = pyelftools_entries(parsed, unit.base)
        assert expected, f"an empty list at {attribute.value:#x}"
        options: dict[str, Any] = {"version": unit.version, "cu_base": unit.base, "addr_base": unit.addr_base}
        assert lists.entries(attribute.value, **options) == expected
        default = expected[-1][2] if expected[-1][:2] == DEFAULT_RANGE else None
        for low, high, _expression in expected:
            for pc in (low - 1, low, high - 1, high):
                covering = [e for lo, hi, e in expected if lo <= pc < hi and (lo, hi) != DEFAULT_RANGE]
                assert lists.expression_at(attribute.value, pc, **options) == (
                    covering[0] if covering else default
                )
        checked += 1
    assert checked >= 20, (
        f"only {checked} location lists in {path.name}: the fixture no longer makes GCC emit them"
    )


LLVM_LIST_HEAD = re.compile(r"DW_AT_location\s+\(0x([0-9a-f]+):\s*$")
LLVM_LIST_ENTRY = re.compile(r"^\s+\[0x([0-9a-f]+), 0x([0-9a-f]+)\): ")


@pytest.mark.skipif(shutil.which("llvm-dwarfdump") is None, reason="llvm-dwarfdump is not installed")
@pytest.mark.parametrize("variant", ["dwarf5-O2", "dwarf4-O2"])
def test_lists_match_llvm_dwarfdump(binaries: dict[str, Path], variant: str) -> None:
    path = binaries[variant]
    dump = subprocess.run(
        ["llvm-dwarfdump", "--debug-info", str(path)], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    theirs: dict[int, list[tuple[int, int]]] = {}
    current: list[tuple[int, int]] | None = None
    for line in dump:
        head = LLVM_LIST_HEAD.search(line)
        entry = LLVM_LIST_ENTRY.match(line)
        if head:
            current = theirs.setdefault(int(head.group(1), 16), [])
        elif current is not None and entry:
            current.append((int(entry.group(1), 16), int(entry.group(2), 16)))
        else:
            current = None
    assert len(theirs) >= 20
    lists = our_lists(path)
    units = {unit.cu.cu_offset: unit for _dwarf, unit in iter_units(path)}
    version = next(iter(units.values())).version
    base = next(iter(units.values())).base
    assert len(units) == 1, "one CU: every list has the same base"
    for offset, ranges in theirs.items():
        ours = [(low, high) for low, high, _ in lists.entries(offset, version=version, cu_base=base)]
        assert ours == ranges, f"list at {offset:#x}"


class WholeFrame:
    """A frame where everything is known: registers, memory (zeros), CFA, TLS; base
    types come from the real DIEs of the unit. Entry values must be registers."""

    def __init__(self, unit: Unit) -> None:
        self.unit = unit
        self.entry_expressions: list[bytes] = []

    def register(self, regno: int) -> int:
        assert 0 <= regno <= 32, f"DWARF register {regno} on x86-64"
        return 0x1000 * (regno + 1)

    def read_memory(self, address: int, size: int) -> bytes:
        return bytes(size)

    def frame_base(self) -> int:
        return 0x7FFD_0000

    def call_frame_cfa(self) -> int:
        return 0x7FFD_0010

    def entry_value(self, expression: bytes) -> int:
        self.entry_expressions.append(expression)
        return 7

    def tls_address(self, offset: int) -> int:
        return 0x7F00_0000_0000 + offset

    def address_at_index(self, index: int) -> int:
        raise AssertionError("GCC uses no .debug_addr without split DWARF")

    def relocate(self, address: int) -> int:
        return address + BIAS

    def base_type(self, die_offset: int) -> tuple[int, int]:
        die = self.unit.cu.get_DIE_from_refaddr(self.unit.cu.cu_offset + die_offset)
        assert die.tag == "DW_TAG_base_type"
        return die.attributes["DW_AT_byte_size"].value, die.attributes["DW_AT_encoding"].value


def every_expression(path: Path) -> Iterator[tuple[Unit, str, bytes]]:
    """(unit, attribute name, expression) of every DWARF expression in the file:
    exprloc attributes and every location-list entry."""
    for _dwarf, unit in iter_units(path):
        for die in unit.cu.iter_DIEs():
            for attribute in die.attributes.values():
                if attribute.form == "DW_FORM_exprloc":
                    yield unit, attribute.name, bytes(attribute.value)
    lists = our_lists(path)
    for dwarf, unit, _die, attribute in list_attributes(path):
        del dwarf
        for _low, _high, expression in lists.entries(
            attribute.value, version=unit.version, cu_base=unit.base
        ):
            yield unit, attribute.name, expression


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_expression_evaluates(binaries: dict[str, Path], variant: str) -> None:
    from elftools.elf.elffile import ELFFile

    path = binaries[variant]
    kinds: set[str] = set()
    count = 0
    entry_expressions: list[bytes] = []
    with open(path, "rb") as stream:
        dwarf = ELFFile(stream).get_dwarf_info()
        for unit, name, expression in every_expression(path):
            frame = WholeFrame(unit)
            location = evaluate_location(
                expression, frame, offset_size=unit.offset_size, version=unit.version
            )
            assert isinstance(location, get_args(Location)), (name, expression.hex(), location)
            assert not isinstance(location, UnavailableLocation), (name, expression.hex(), location)
            if name == "DW_AT_frame_base":
                assert frame_base_value(expression, frame) > 0
            kinds.add(type(location).__name__)
            pieces = location.pieces if isinstance(location, CompositeLocation) else ()
            kinds.update(type(p.location).__name__ for p in pieces)
            for found in (location, *(p.location for p in pieces)):
                if isinstance(found, ImplicitPointerLocation):
                    assert dwarf.get_DIE_from_refaddr(found.die_offset).tag in (
                        "DW_TAG_variable",
                        "DW_TAG_formal_parameter",
                    )
            entry_expressions += frame.entry_expressions
            count += 1
    assert count > 40
    expected = {"MemoryLocation"}  # -O0: everything in the frame (DW_OP_fbreg)
    if variant.endswith("O2"):
        expected |= {
            "RegisterLocation",
            "ValueLocation",
            "CompositeLocation",
            "ImplicitLocation",
            "ImplicitPointerLocation",
            "UnavailableLocation",
        }
        # what GCC asks the caller for: a register, or a typed (floating-point) one
        assert entry_expressions
        for sub in entry_expressions:
            assert sub[0] in (0xA5, 0xF5) or isinstance(evaluate_location(sub, FRAME), RegisterLocation), (
                sub.hex()
            )
    assert expected <= kinds, f"GCC no longer emits {expected - kinds} for the fixture"
