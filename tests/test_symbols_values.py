"""lindbg.symbols.values: typed values and gdb's ``print`` rendering of them.

Every global of tests/fixtures/types.c and types.cpp (each built with DWARF 5, DWARF 4
and -O2) is read from the executable file, never run, and ``str(value)`` must be what
gdb 13 prints for it reading the same file (the builds and gdb's view come from
tests/test_symbols_types.py). Then the operations gdb's text does not show: member
access through bases, bitfield extraction, casts, indexing, dereference, address_of,
int/float/bytes, values with optimized-out bytes, memory that cannot be read, and
gdb's float digits against printf's.
"""

from __future__ import annotations

import math
import random
import re
import struct

import pytest
from conftest import Programs
from test_symbols_types import Builds, StaticProgram, shared_builds

from lindbg.errors import MemoryAccessError
from lindbg.symbols.types import FLOAT32, FLOAT64, X87_EXTENDED, Encoding, Type
from lindbg.symbols.values import (
    Value,
    ValueTypeError,
    ValueUnavailableError,
    decode_float,
    encode_float,
    format_float,
)

BUILDS = ["c-dwarf5", "c-dwarf4", "c-O2", "cpp-dwarf5", "cpp-dwarf4", "cpp-O2"]
INT = Type.base("int", 4, Encoding.SIGNED)
CHAR = Type.base("char", 1, Encoding.SIGNED_CHAR)
DOUBLE = Type.base("double", 8, Encoding.FLOAT)


@pytest.fixture(scope="session")
def builds(programs: Programs, tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return shared_builds(programs, tmp_path_factory)


@pytest.fixture
def c(builds: Builds) -> StaticProgram:
    return builds.get("c-dwarf5")


@pytest.fixture
def cpp(builds: Builds) -> StaticProgram:
    return builds.get("cpp-dwarf5")


def no_memory(address: int, size: int) -> bytes:
    raise MemoryAccessError(f"Cannot access memory at address {address:#x}", address)


# ------------------------------------------------------------------ against gdb


@pytest.mark.parametrize("build", BUILDS)
def test_print_matches_gdb(builds: Builds, build: str) -> None:
    program = builds.get(build)
    mismatches = []
    for name, view in program.gdb.items():
        mine = str(program.value(name))
        if mine != view.print:
            mismatches.append(f"print {name}:\n  gdb:    {view.print!r}\n  lindbg: {mine!r}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("build", BUILDS)
def test_print_x_matches_gdb(builds: Builds, build: str) -> None:
    program = builds.get(build)
    mismatches = []
    for name, view in program.gdb.items():
        mine = program.value(name).format(hexadecimal=True)
        if mine != view.print_hex:
            mismatches.append(f"print/x {name}:\n  gdb:    {view.print_hex!r}\n  lindbg: {mine!r}")
    assert not mismatches, "\n".join(mismatches)


def test_print_of_a_struct_completed_from_another_unit(builds: Builds) -> None:
    program = builds.two_units()
    text = str(program.value("g_opaque_def"))
    assert text == program.gdb["g_opaque_def"].print
    assert re.fullmatch(r'\{hidden = 77, label = 0x[0-9a-f]+ "defined elsewhere"\}', text)


# ------------------------------------------------------------------ scalars


def test_integers_chars_bools_and_floats_convert(c: StaticProgram) -> None:
    assert int(c.value("g_int")) == 42
    assert int(c.value("g_neg")) == -1
    assert int(c.value("g_uint")) == 4000000000
    assert int(c.value("g_ulong")) == 2**64 - 1
    assert int(c.value("g_schar")) == -1
    assert int(c.value("g_uchar")) == 200
    assert int(c.value("g_int128")) == -(2**100)
    assert int(c.value("g_color")) == 2
    assert int(c.value("g_sparse")) == -2
    assert bool(c.value("g_true")) and not c.value("g_false")
    assert float(c.value("g_double")) == 0.1
    assert float(c.value("g_float")) == struct.unpack("<f", struct.pack("<f", 0.1))[0]
    assert float(c.value("g_ldouble")) == 1.5
    assert float(c.value("g_lthird")) == pytest.approx(1 / 3, rel=1e-15)
    assert float(c.value("g_f128")) == 2.5
    assert float(c.value("g_int")) == 42.0
    assert int(c.value("g_double")) == 0
    assert math.isinf(float(c.value("g_linf"))) and math.isnan(float(c.value("g_lnan")))
    assert complex(c.value("g_cfloat")) == 1 + 2j
    assert complex(c.value("g_cldouble")) == 1 - 0.5j
    assert bytes(c.value("g_int")) == (42).to_bytes(4, "little")
    assert c.value("g_pair").data()[:4] == (7).to_bytes(4, "little")
    assert int(c.value("g_int_ptr")) == c.variables["g_int"][1]


def test_scalar_conversions_refuse_aggregates(c: StaticProgram) -> None:
    with pytest.raises(ValueTypeError, match=r"^g_pair: struct pair is not an integer$"):
        int(c.value("g_pair"))
    with pytest.raises(TypeError):  # ValueTypeError is a TypeError too
        float(c.value("g_array"))


# ------------------------------------------------------------------ navigation


def test_members_bitfields_and_names(c: StaticProgram) -> None:
    bits = c.value("g_bits")
    assert [int(bits[name]) for name in ("a", "b", "c", "d", "wide", "flag")] == [
        5,
        17,
        -3,
        1,
        0x123456789,
        1,
    ]
    assert bits["c"].name == "g_bits.c" and bits["c"].address is None
    assert str(bits["c"]) == "-3"
    holder = c.value("g_holder")
    assert int(holder["bits"]["b"]) == 2 and int(holder["values"][2]) == 30
    anon = c.value("g_anon")
    assert int(anon["as_int"]) == 2 and int(anon["hi"]) == 4
    assert anon["hi"].address == c.variables["g_anon"][1] + 10
    fields = c.value("g_pair").fields
    assert [f.name for f in fields] == ["g_pair.first", "g_pair.name", "g_pair.next"]
    assert [f.name for f in anon.fields] == ["g_anon.tag", None, None, "g_anon.tail"]
    with pytest.raises(KeyError, match=r"^'nope'$"):
        c.value("g_pair")["nope"]
    with pytest.raises(ValueTypeError, match=r"^g_int: int is not a struct, class or union$"):
        c.value("g_int")["x"]


def test_members_through_base_classes_and_statics(cpp: StaticProgram) -> None:
    multi = cpp.value("g_multi")
    assert int(multi["left"]) == 4 and int(multi["right"]) == 5 and int(multi["own"]) == ord("m")
    assert multi["right"].address == cpp.variables["g_multi"][1] + 4
    assert [f.name for f in multi.fields] == ["Left", "Right", "g_multi.own"]
    assert str(multi.fields[1]) == "{right = 5}"
    account = cpp.value("g_account")
    assert int(account["count"]) == 3 and int(account["limit"]) == 10
    assert int(cpp.value("g_derived")["b"]) == 2
    assert int(cpp.value("g_ref")) == 5  # a reference stands for its target
    assert int(cpp.value("g_with_ref")["ref"]) == 5


def test_a_virtual_base_is_found_through_the_vtable(cpp: StaticProgram) -> None:
    """The object is built at run time, so its vtable pointer is 0 in the file (gdb
    prints <invalid address>); with a vtable put in memory the base is found."""
    value = cpp.value("g_virtual")
    assert str(value).startswith("{<Base> = <invalid address>, _vptr.Virtual = 0x0")
    start = cpp.variables["g_virtual"][1]
    vtable = 0x7000_0000
    memory = {
        start: (vtable + 24).to_bytes(8, "little") + (4).to_bytes(4, "little") + (99).to_bytes(4, "little"),
        vtable: (12).to_bytes(8, "little"),  # the virtual base offset, at vptr - 24
    }

    def read(address: int, size: int) -> bytes:
        for base, data in memory.items():
            if base <= address and address + size <= base + len(data):
                return data[address - base : address - base + size]
        return cpp.read(address, size)

    built = Value.from_memory(value.type, start, read, "v")
    assert int(built["b"]) == 99 and built["b"].address == start + 12
    assert str(built) == f"{{<Base> = {{b = 99}}, _vptr.Virtual = {vtable + 24:#x}, v = 4}}"


def test_indexing_arrays_and_pointers(c: StaticProgram) -> None:
    assert [int(element) for element in c.value("g_array").fields] == [1, 2, 3, 4]
    matrix = c.value("g_matrix")
    assert int(matrix[1][2]) == 6 and matrix[1][2].name == "g_matrix[1][2]"
    assert matrix[1].address == c.variables["g_matrix"][1] + 12
    pointer = c.value("g_array_elem_ptr")
    assert int(pointer[0]) == 3 and int(pointer[-2]) == 1 and int(pointer[1]) == 4
    assert chr(int(c.value("g_str")[1])) == "e"
    assert int(c.value("g_points")[2]["y"]) == 6
    past = c.value("g_array")[5]  # past the end: C reads on, so does a memory value
    assert past.address == c.variables["g_array"][1] + 20 and int(past) == int.from_bytes(
        c.read(past.address, 4), "little"
    )
    assert c.value("g_unknown_len")[1].name == "g_unknown_len[1]"
    with pytest.raises(IndexError):
        Value.from_bytes(INT.array_of(2), b"\0" * 8, None, "pair")[2]
    with pytest.raises(ValueTypeError, match=r"^g_void_ptr: cannot index a void \*$"):
        c.value("g_void_ptr")[0]
    with pytest.raises(ValueTypeError, match=r"^g_int: cannot index a int$"):
        c.value("g_int")[0]


def test_dereference_and_address_of(c: StaticProgram) -> None:
    pair = c.value("g_pair_ptr").deref()
    assert pair.name == "*g_pair_ptr" and pair.address == c.variables["g_pair2"][1]
    assert pair["first"].name == "g_pair_ptr->first" and int(pair["first"]) == 8
    name = pair["next"].deref()["name"]
    assert name.name == "g_pair_ptr->next->name" and name.string() == b"hello"
    assert int(c.value("g_ptr_ptr").deref().deref()) == 42
    address = c.value("g_int").address_of()
    assert address.name == "&g_int" and int(address) == c.variables["g_int"][1]
    assert str(address) == f"(int *) {c.variables['g_int'][1]:#x} <g_int>"
    assert int(address.deref()) == 42
    assert str(c.value("g_null_ptr").deref()) == "<error: Cannot access memory at address 0x0>"
    with pytest.raises(ValueUnavailableError, match=r"^g_void_ptr: cannot dereference a void \*$"):
        c.value("g_void_ptr").deref()
    with pytest.raises(ValueUnavailableError, match=r"^g_fn_ptr: cannot dereference a function pointer$"):
        c.value("g_fn_ptr").deref()
    with pytest.raises(ValueTypeError, match=r"^g_int: cannot dereference a int$"):
        c.value("g_int").deref()
    in_register = Value.from_bytes(INT, (7).to_bytes(8, "little"), None, "x", register="rbx")
    assert (int(in_register), in_register.register, in_register.address) == (7, "rbx", None)
    with pytest.raises(
        ValueUnavailableError, match=r"^x: cannot take the address of a value in register rbx$"
    ):
        in_register.address_of()


def test_casts(c: StaticProgram) -> None:
    int_type = c.type("g_int")
    char_type = c.type("g_char")
    double_type = c.type("g_double")
    assert int(c.value("g_int").cast(char_type)) == 42
    assert int(Value.from_int(int_type, 300).cast(char_type)) == 44  # wrapped to one byte
    assert int(c.value("g_neg").cast(c.type("g_uint"))) == 2**32 - 1
    assert float(c.value("g_int").cast(double_type)) == 42.0
    assert int(Value.from_float(double_type, -2.75).cast(int_type)) == -2  # toward zero
    assert int(c.value("g_double").cast(c.type("g_true"))) == 1
    cast = c.value("g_int_ptr").cast(c.type("g_ulong"))
    assert int(cast) == c.variables["g_int"][1] and cast.name == "(unsigned long)g_int_ptr"
    assert int(c.value("g_array").cast(int_type.pointer_to()).deref()) == 1  # the array decays
    number = c.value("g_number").cast(int_type)  # same size: the bytes reinterpreted
    assert int(number) == 0x3F800000
    assert (
        str(c.value("g_int").cast(c.type("g_number")))
        == '{i = 42, f = 5.88545355e-44, bytes = "*\\000\\000"}'
    )
    assert str(c.value("g_int").cast(c.type("g_color"))) == "(BLUE | unknown: 0x28)"
    with pytest.raises(ValueTypeError, match=r"^g_pair: cannot cast struct pair to int$"):
        c.value("g_pair").cast(int_type)


def test_with_name_and_strings(c: StaticProgram) -> None:
    renamed = c.value("g_int").with_name("answer")
    assert renamed.name == "answer" and int(renamed) == 42 and renamed.address == c.variables["g_int"][1]
    assert c.value("g_str").string() == b"hello"
    assert c.value("g_buf").string() == b"abc"
    assert c.value("g_full").string() == b"abcd"
    assert c.value("g_over200_ptr").string(limit=12) == b"0123456789ab"
    assert c.value("g_wstr").string() == "hi".encode("utf-32-le")
    assert c.value("g_int").string() is None
    assert c.value("g_int_ptr").string() is None


# ------------------------------------------------------------------ what cannot be read


def test_unavailable_values_say_so() -> None:
    gone = Value.unavailable(INT, "optimized out", "argc")
    assert (gone.available, gone.reason, str(gone)) == (False, "optimized out", "<optimized out>")
    with pytest.raises(ValueUnavailableError, match=r"^argc: <optimized out>$"):
        int(gone)
    with pytest.raises(ValueUnavailableError, match=r"^argc: <optimized out>$"):
        gone.data()
    assert str(Value.unavailable(INT, "not saved")) == "<not saved>"
    pointer = Value.unavailable(INT.pointer_to(), "optimized out", "p")
    assert str(pointer) == "<optimized out>"  # no "(int *) " before it
    all_gone = Value.from_bytes(INT, b"\0" * 4, None, "x", valid=b"\0" * 4)
    assert not all_gone.available and all_gone.reason == "optimized out"


def test_partially_available_values(c: StaticProgram) -> None:
    point = c.type("g_points").target
    assert point is not None
    data = (1).to_bytes(4, "little") + (2).to_bytes(4, "little")
    value = Value.from_bytes(point, data, None, "pt", valid=b"\1" * 4 + b"\0" * 4)
    assert value.available
    assert str(value) == "{x = 1, y = <optimized out>}"
    assert int(value["x"]) == 1
    assert not value["y"].available and str(value["y"]) == "<optimized out>"
    with pytest.raises(ValueUnavailableError, match=r"^pt.y: <optimized out>$"):
        int(value["y"])
    with pytest.raises(ValueUnavailableError, match=r"^pt: part of the value is <optimized out>$"):
        value.data()
    assert value.validity() == b"\1" * 4 + b"\0" * 4
    chars = Value.from_bytes(CHAR.array_of(4), b"ab\0\0", None, "s", valid=b"\1\1\0\1")
    assert str(chars) == "{97 'a', 98 'b', <optimized out>, 0 '\\000'}"
    bits = c.type("g_bits")
    half = Value.from_bytes(bits, bytes(bits.size or 0), None, "b", valid=b"\1" + b"\0" * 7)
    gone = ", ".join(f"{name} = <optimized out>" for name in ("c", "d", "wide", "flag"))
    assert str(half) == "{a = 0, b = 0, " + gone + "}"


def test_unreadable_memory(c: StaticProgram) -> None:
    bad = Value.from_memory(INT, 0x10, c.read, "bad")
    assert str(bad) == "<error: Cannot access memory at address 0x10>"
    with pytest.raises(MemoryAccessError) as caught:
        int(bad)
    assert caught.value.address == 0x10
    assert str(c.value("g_bad_str")) == "0x10 <error: Cannot access memory at address 0x10>"
    pair = Value.from_memory(c.type("g_pair"), 0x10, no_memory, "p")
    assert str(pair) == "<error: Cannot access memory at address 0x10>"
    assert str(Value.from_memory(INT.pointer_to(), 0x10, no_memory)) == (
        "<error: Cannot access memory at address 0x10>"
    )
    unread = Value.from_bytes(INT.pointer_to(), (0x1000).to_bytes(8, "little"), None, "q")
    with pytest.raises(ValueUnavailableError, match=r"^q: no memory to read 0x1000 from$"):
        unread.deref()


def test_a_string_running_into_unreadable_memory(c: StaticProgram) -> None:
    text = b"abcdefghij"  # no NUL before the memory ends

    def read(address: int, size: int) -> bytes:
        if address >= 0x5000 and address + size <= 0x5000 + len(text):
            return text[address - 0x5000 : address - 0x5000 + size]
        raise MemoryAccessError(f"Cannot access memory at address {address:#x}", address)

    pointer = Value.from_bytes(c.type("g_str"), (0x5003).to_bytes(8, "little"), read, "s")
    assert str(pointer) == '0x5003 "defghij"<error: Cannot access memory at address 0x500a>'
    assert pointer.string() == b"defghij"


# ------------------------------------------------------------------ gdb's text pieces


def test_symbols_come_from_the_hook(c: StaticProgram) -> None:
    plain = Value.from_memory(c.type("g_pair2"), c.variables["g_pair2"][1], c.read)
    assert str(plain).endswith(f"next = {c.variables['g_pair'][1]:#x}}}")
    assert plain.format(symbolize=c.symbolize).endswith(f"next = {c.variables['g_pair'][1]:#x} <g_pair>}}")
    function = c.value("g_fn_ptr")
    assert function.format(symbolize=lambda address: None) == f"(int (*)(int, int)) {int(function):#x}"


def test_float_digits_are_printf_g_of_gdb_precision() -> None:
    generator = random.Random(1234)
    for _ in range(3000):
        bits = generator.getrandbits(64)
        number = struct.unpack("<d", bits.to_bytes(8, "little"))[0]
        if math.isfinite(number):
            assert format_float(bits.to_bytes(8, "little"), FLOAT64) == f"{number:.17g}"
        single = generator.getrandbits(32).to_bytes(4, "little")
        value = struct.unpack("<f", single)[0]
        if math.isfinite(value):
            assert format_float(single, FLOAT32) == f"{value:.9g}"
    assert format_float(struct.pack("<d", 0.1), FLOAT64) == "0.10000000000000001"
    assert format_float(struct.pack("<d", -0.0), FLOAT64) == "-0"
    assert format_float(struct.pack("<d", 1e100), FLOAT64) == "1e+100"
    assert format_float(struct.pack("<d", math.inf), FLOAT64) == "inf"
    assert format_float(struct.pack("<d", -math.inf), FLOAT64) == "-inf"
    assert format_float(struct.pack("<Q", 0x7FF8000000000001), FLOAT64) == "nan(0x8000000000001)"
    assert format_float(struct.pack("<Q", 0x7FF0000000000001), FLOAT64) == "nan(0x000000001)"
    assert format_float(struct.pack("<f", math.nan), FLOAT32) == "nan(0x400000)"
    x87_one_third = encode_float(1 / 3, X87_EXTENDED)
    assert decode_float(x87_one_third, X87_EXTENDED) == 1 / 3
    assert (
        format_float(x87_one_third, X87_EXTENDED) == "0.33333333333333331483"
    )  # 21 digits, trailing 0 dropped
    unnormal = (0x3FFF << 64 | 0x4000000000000000).to_bytes(16, "little")  # integer bit clear
    assert format_float(unnormal, X87_EXTENDED) == "<invalid float value>"
    for number in (1.5, -2.25, 1e-310, 3.0e300, 0.0):
        assert decode_float(encode_float(number, X87_EXTENDED), X87_EXTENDED) == number


def test_char_arrays_strings_and_repeats() -> None:
    def chars(text: bytes) -> str:
        return str(Value.from_bytes(CHAR.array_of(len(text)), text, None))

    assert chars(b"abc\0\0\0\0\0\0\0\0\0\0\0\0\0") == "\"abc\", '\\000' <repeats 12 times>"
    assert chars(b"x" * 11 + b"y") == "'x' <repeats 11 times>, \"y\""
    assert chars(b"x" * 10 + b"y") == '"xxxxxxxxxxy"'
    assert chars(b'"' * 11 + b"\0") == "'\\\"' <repeats 11 times>"
    assert chars(b"it's\0") == '"it\'s"'
    assert chars(b"\x01" + b"2") == '"\\0012"'
    assert (
        chars(bytes(range(65, 65 + 26)) * 10)
        == '"' + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" * 7 + 'ABCDEFGHIJKLMNOPQR"...'
    )
    assert str(Value.from_bytes(CHAR, b"'", None)) == "39 '\\''"
    assert str(Value.from_bytes(INT.array_of(3), bytes(12), None)) == "{0, 0, 0}"
    longest = Value.from_bytes(INT.array_of(201), b"".join(i.to_bytes(4, "little") for i in range(201)), None)
    assert str(longest).endswith("198, 199...}")
