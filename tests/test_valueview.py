"""lindbg.commands.valueview: cdb's ``dv``, ``dt``, ``??`` and ``dx`` displays of values.

Layouts pinned line by line from CDB-OUTPUT.md §17-§20 (the examples' values are the
world of tests/test_cexpr.py: the same locals, ``struct pair``s and string), then the
value forms one at a time on synthesized values.
"""

from __future__ import annotations

import math
import struct

import pytest
from conftest import Programs
from test_cexpr import HELLO, PAIR, World, make_world

from lindbg.commands.valueview import (
    cpp_lines,
    dt_lines,
    dt_type_text,
    dv_lines,
    dv_value_text,
    dx_error_line,
    dx_lines,
)
from lindbg.symbols.cexpr import CExprError, builtin_type
from lindbg.symbols.types import Type
from lindbg.symbols.values import Value


@pytest.fixture
def world(programs: Programs) -> World:
    return make_world(programs)


def builtin(name: str) -> Type:
    found = builtin_type(name)
    assert found is not None
    return found


def number(type_name: str, value: int | float, name: str = "v") -> Value:
    """A computed value of a builtin type."""
    t = builtin(type_name)
    if t.is_float:
        return Value.from_float(t, float(value), name)
    return Value.from_int(t, int(value), name)


# ---------------------------------------------------------------- dv (§17)


def test_dv_layout(world: World) -> None:
    v = world.scope.variables
    entries = [("param", v["argc"], None)]
    entries += [("local", v[n], None) for n in ("total", "name", "buf", "ratio", "state", "count", "tmp")]
    assert dv_lines(entries) == [
        "           argc = 0n1",
        "          total = 0n42",
        '           name = 0x00005555`55556004 "hello"',
        '            buf = char [16] "abc"',
        "          ratio = 0.25",
        "          state = ST_READY (0n2)",
        "          count = 7",
        "            tmp = <value unavailable>",
    ]


def test_dv_locations(world: World) -> None:
    """/v: the location padded to 17 (addr17, @reg, <unavailable>); /V's frame offset
    comes in the location text."""
    v = world.scope.variables
    entries = [("param", v["argc"], None), ("local", v["count"], None), ("local", v["tmp"], None)]
    assert dv_lines(entries, show_location=True) == [
        "00007ffd`2a9e0c3c            argc = 0n1",
        "@rbx                        count = 7",
        "<unavailable>                 tmp = <value unavailable>",
    ]
    frame_relative = [("local", v["total"], "00007ffd`2a9e0c4c @rbp-0x14")]
    assert dv_lines(frame_relative, show_location=True) == [
        "00007ffd`2a9e0c4c @rbp-0x14           total = 0n42"
    ]


def test_dv_kind_and_type(world: World) -> None:
    v = world.scope.variables
    assert dv_lines([("param", v["argc"], None)], show_kind=True) == ["prv param             argc = 0n1"]
    assert dv_lines([("local", v["ratio"], None)], show_type=True, show_location=True) == [
        "00007ffd`2a9e0c40 double ratio = 0.25"
    ]
    assert dv_lines([("local", v["p"], None)], show_kind=True, show_type=True) == [
        "prv local  struct pair * p = 0x00005555`555592a0"
    ]
    assert dv_lines([("global", v["total"], None)], show_kind=True) == ["prv global           total = 0n42"]


def test_dv_long_name_widens_the_column(world: World) -> None:
    v = world.scope.variables
    long_name = v["total"].with_name("a_rather_long_name")
    assert dv_lines([("local", v["argc"], None), ("local", long_name, None)]) == [
        "              argc = 0n1",
        "a_rather_long_name = 0n42",
    ]


def test_dv_aggregates_show_their_type(world: World) -> None:
    v = world.scope.variables
    assert [dv_value_text(v[n]) for n in ("s", "arr", "p", "bad", "null")] == [
        "struct pair",
        "int [4]",
        "0x00005555`555592a0",
        "0x00000000`00000010",
        "0x00000000`00000000",
    ]
    ptrs = Value.from_memory(world.type("struct pair").pointer_to().array_of(8), PAIR, world.memory.read, "a")
    assert dv_value_text(ptrs) == "struct pair *[8]"


DV_NUMBERS = [
    ("int", 0, "0n0"),
    ("int", -1, "0n-1"),
    ("long", -9000000000, "0n-9000000000"),
    ("unsigned int", 7, "7"),
    ("unsigned int", 9, "9"),
    ("unsigned int", 10, "0xa"),
    ("unsigned int", 42, "0x2a"),
    ("unsigned long", 0xFFFFFFFF, "0xffffffff"),
    ("unsigned long", 0x100000000, "0x00000001`00000000"),
    ("unsigned long", 0xFFFFFFFFFFFFFFFF, "0xffffffff`ffffffff"),
    ("bool", 1, "true"),
    ("bool", 0, "false"),
    ("char", ord("a"), "0n97 'a'"),
    ("char", 10, "0n10 ''"),
    ("unsigned char", 0x41, "0x41 'A'"),
    ("double", 0.25, "0.25"),
    ("double", 0.1 + 0.2, "0.30000000000000004441"),
    ("double", 1e-9, "1.0000000000000000623e-009"),
    ("double", 1e22, "1e+022"),
    ("double", 1000000001.0, "1000000001"),
    ("double", -2.5, "-2.5"),
    ("double", math.nan, "1.#QNAN"),
    ("double", math.inf, "1.#INF"),
    ("double", -math.inf, "-1.#INF"),
    ("float", 0.1, "0.10000000149011611938"),
    ("long double", 1.5, "1.5"),
]


@pytest.mark.parametrize(("type_name", "value", "text"), DV_NUMBERS, ids=[t for _, _, t in DV_NUMBERS])
def test_dv_numbers(type_name: str, value: int | float, text: str) -> None:
    assert dv_value_text(number(type_name, value)) == text


def test_dv_unreadable(world: World) -> None:
    """A char pointer into nothing names the address; a value that cannot be read at
    all says so; an enum value without a name says that."""
    read = world.memory.read
    char_p = world.type("char *")
    assert dv_value_text(Value.from_int(char_p, 0x10)) == (
        '0x00000000`00000010 "--- memory read error at address 0x00000000`00000010 ---"'
    )
    assert dv_value_text(Value.from_memory(builtin("int"), 0x10, read, "x")) == "<Memory access error>"
    color = Value.from_int(world.type("enum color"), 7)
    assert dv_value_text(color) == "0n7 (No matching name)"
    text = Value.from_bytes(char_p, struct.pack("<Q", HELLO), read)
    world.memory.put(HELLO, b"a\tb\n\xc3\xa9\x01\0")
    assert dv_value_text(text) == '0x00005555`55556004 "a\\tb\\né\\x01"'


# ---------------------------------------------------------------- dt (§18)

DT_PAIR_TYPE = [
    "   +0x000 first            : Int4B",
    "   +0x008 name             : Ptr64 Char",
    "   +0x010 next             : Ptr64 pair",
    "   +0x018 vals             : [4] Int4B",
    "   +0x028 tag              : UChar",
    "   +0x030 link             : list_head",
]
DT_PAIR_VALUE = [
    "   +0x000 first            : 0n7",
    '   +0x008 name             : 0x00005555`55556004  "hello"',
    "   +0x010 next             : 0x00005555`555592e0 pair",
    "   +0x018 vals             : [4] 0n1",
    "   +0x028 tag              : 0x41 'A'",
    "   +0x030 link             : list_head",
]


def test_dt_type(world: World) -> None:
    assert dt_lines(world.type("struct pair")) == DT_PAIR_TYPE
    assert dt_lines(world.type("pair_t")) == DT_PAIR_TYPE  # typedefs resolved


def test_dt_value(world: World) -> None:
    assert dt_lines(world.scope.variables["s"]) == DT_PAIR_VALUE


def test_dt_variable(world: World) -> None:
    v = world.scope.variables
    assert dt_lines(v["p"], variable=True) == [
        "Local var @ 0x7ffd2a9e0c30 Type pair*",
        "0x00005555`555592a0 ",
        *DT_PAIR_VALUE,
    ]
    assert dt_lines(v["total"], variable=True) == ["Local var @ 0x7ffd2a9e0c4c Type int", "0n42"]
    assert dt_lines(v["count"], variable=True) == ["Local var @ rbx Type unsigned int", "7"]
    assert dt_lines(v["tmp"], variable=True) == ["Local var Type int", "<value unavailable>"]
    assert dt_lines(v["ip"], variable=True) == ["Local var @ rsi Type int*", "0x00007ffd`2a9e0c60  -> 0n10"]
    assert dt_lines(v["null"], variable=True) == ["Local var Type pair*", "(null) "]


def test_dt_type_names(world: World) -> None:
    assert dt_lines(world.type("struct holder")) == [
        "   +0x000 kind             : Int4B",
        "   +0x004 i                : Int4B",
        "   +0x004 f                : Float",
        "   +0x008 ratio            : Double",
        "   +0x010 state            : color",
        "   +0x014 buf              : [16] Char",
        "   +0x028 count            : Ptr64 Int4B",
        "   +0x030 opaque           : Ptr64 Void",
        "   +0x038 ok               : Bool",
        "   +0x03c bits             : flags",
    ]
    names = {
        "char": "Char",
        "unsigned char": "UChar",
        "short": "Int2B",
        "unsigned short": "Uint2B",
        "int": "Int4B",
        "unsigned int": "Uint4B",
        "long": "Int8B",
        "unsigned long": "Uint8B",
        "char16_t": "Wchar",
        "wchar_t": "Int4B",
        "bool": "Bool",
        "float": "Float",
        "double": "Double",
    }
    assert {name: dt_type_text(builtin(name)) for name in names} == names
    char_pp = builtin("char").pointer_to().pointer_to()
    assert dt_type_text(char_pp) == "Ptr64 Ptr64 Char"
    assert dt_type_text(builtin("int").array_of(3).array_of(2)) == "[2] [3] Int4B"
    assert dt_lines(builtin("int")) == ["Int4B"]


def test_dt_bitfields(world: World) -> None:
    """Positions count from the storage unit (cdb's layout); wide fields add hex."""
    assert dt_lines(world.type("struct flags")) == [
        "   +0x000 low              : Pos 0, 3 Bits",
        "   +0x000 high             : Pos 3, 5 Bits",
        "   +0x000 wide             : Pos 8, 12 Bits",
        "   +0x000 sign             : Pos 20, 4 Bits",
    ]
    assert dt_lines(world.eval("h.bits")) == [
        "   +0x000 low              : 0y101",
        "   +0x000 high             : 0y11011 (0x1b)",
        "   +0x000 wide             : 0y111101011010 (0xf5a)",
        "   +0x000 sign             : 0y1101",
    ]


def test_dt_value_forms(world: World) -> None:
    assert dt_lines(world.scope.variables["h"]) == [
        "   +0x000 kind             : 0n3",
        "   +0x004 i                : 0n1069547520",
        "   +0x004 f                : 1.5",
        "   +0x008 ratio            : 1.5",
        "   +0x010 state            : 0n1 (GREEN)",
        '   +0x014 buf              : [16]  "xy"',
        "   +0x028 count            : 0x00007ffd`2a9e0c4c  -> 0n42",
        "   +0x030 opaque           : 0x00005555`555592a0 Void",
        "   +0x038 ok               : true",
        "   +0x03c bits             : flags",
    ]
    assert dt_lines(world.eval("*p->next"))[1:3] == [
        "   +0x008 name             : (null) ",
        "   +0x010 next             : (null) ",
    ]


def test_dt_recursion(world: World) -> None:
    """-r1 expands embedded and pointed-to structs one level, for types and values."""
    nested = ["   " + line for line in DT_PAIR_TYPE]
    assert dt_lines(world.type("struct pair"), recurse=1) == [
        *DT_PAIR_TYPE[:3],
        *nested,
        *DT_PAIR_TYPE[3:],
        "      +0x000 next             : Ptr64 list_head",
        "      +0x008 prev             : Ptr64 list_head",
    ]
    assert dt_lines(world.scope.variables["p"], recurse=1) == [
        "0x00005555`555592a0 ",
        "   +0x000 first            : 0n7",
        '   +0x008 name             : 0x00005555`55556004  "hello"',
        "   +0x010 next             : 0x00005555`555592e0 pair",
        "      +0x000 first            : 0n8",
        "      +0x008 name             : (null) ",
        "      +0x010 next             : (null) ",
        "      +0x018 vals             : [4] 0n5",
        "      +0x028 tag              : 0x42 'B'",
        "      +0x030 link             : list_head",
        "   +0x018 vals             : [4] 0n1",
        "   +0x028 tag              : 0x41 'A'",
        "   +0x030 link             : list_head",
        "      +0x000 next             : (null) ",
        "      +0x008 prev             : (null) ",
    ]


def test_dt_blocks_and_arrays(world: World) -> None:
    """-b: arrays one element a line under the field; -a2: the first two."""
    lines = dt_lines(world.scope.variables["s"], blocks=True)
    assert lines[3:8] == [
        "   +0x018 vals             : ",
        "    [00] 0n1",
        "    [01] 0n2",
        "    [02] 0n3",
        "    [03] 0n4",
    ]
    assert lines[-2:] == [
        "      +0x000 next             : (null) ",
        "      +0x008 prev             : (null) ",
    ]
    assert dt_lines(world.scope.variables["arr"], array_count=2) == [" [00] 0n10", " [01] 0n20"]


def test_dt_fields(world: World) -> None:
    """Named fields: only those, padded to the longest; ``f.`` / ``f.g`` go one level in."""
    s = world.scope.variables["s"]
    assert dt_lines(s, fields=["first", "tag"]) == ["   +0x000 first : 0n7", "   +0x028 tag   : 0x41 'A'"]
    assert dt_lines(s, fields=["v*"]) == ["   +0x018 vals : [4] 0n1"]
    assert dt_lines(world.type("struct pair"), fields=["link.prev"]) == [
        "   +0x030 link : list_head",
        "      +0x008 prev : Ptr64 list_head",
    ]
    assert dt_lines(s, fields=["link."]) == [
        "   +0x030 link : list_head",
        "      +0x000 next             : (null) ",
        "      +0x008 prev             : (null) ",
    ]
    assert dt_lines(s, fields=["nosuch"]) == []


def test_dt_unreadable(world: World) -> None:
    """The first field that cannot be read ends the display."""
    assert dt_lines(world.scope.variables["bad"], variable=True) == [
        "Local var Type pair*",
        "0x00000000`00000010 ",
        "   +0x000 first            : ??",
        "Memory read error 00000000`00000010",
    ]
    past_the_string = Value.from_memory(world.type("struct pair"), HELLO - 8, world.memory.read)
    assert dt_lines(past_the_string) == [
        "   +0x000 first            : ??",
        "Memory read error 00005555`55555ffc",
    ]


# ---------------------------------------------------------------- ?? (§19)


def test_cpp_examples(world: World) -> None:
    assert cpp_lines(world.eval("total")) == ["int 0n42"]
    assert cpp_lines(world.eval("p")) == ["struct pair * 0x00005555`555592a0", *DT_PAIR_VALUE]
    assert cpp_lines(world.eval("buf")) == ["char [16] 0x00007ffd`2a9e0c50", "97 'a'"]


def test_cpp_forms(world: World) -> None:
    assert cpp_lines(world.eval("sizeof(struct pair)")) == ["unsigned long 0x40"]
    assert cpp_lines(world.eval("ratio")) == ["double 0.25"]
    assert cpp_lines(world.eval("1 == 1")) == ["bool true"]
    assert cpp_lines(world.eval("state")) == ["enum color ST_READY (0n2)"]
    assert cpp_lines(world.eval("name")) == ['char * 0x00005555`55556004 "hello"']
    assert cpp_lines(world.eval("s")) == ["struct pair", *DT_PAIR_VALUE]
    assert cpp_lines(world.eval("arr")) == ["int [4] 0x00007ffd`2a9e0c60", "0n10"]
    assert cpp_lines(world.eval('"hey"')) == ["char [4]", "104 'h'"]
    assert cpp_lines(world.eval("tmp")) == ["int <value unavailable>"]
    assert cpp_lines(world.eval("null")) == ["struct pair * 0x00000000`00000000"]
    assert cpp_lines(world.eval("bad")) == [
        "struct pair * 0x00000000`00000010",
        "   +0x000 first            : ??",
        "Memory read error 00000000`00000010",
    ]


# ---------------------------------------------------------------- dx (§20)

DX_P_CHILDREN = [
    "    [+0x000] first            : 7 [Type: int]",
    '    [+0x008] name             : 0x555555556004 : "hello" [Type: char *]',
    "    [+0x010] next             : 0x5555555592e0 [Type: pair *]",
    "    [+0x018] vals             [Type: int [4]]",
    "    [+0x028] tag              : 65 'A' [Type: unsigned char]",
    "    [+0x030] link             [Type: list_head]",
]


def test_dx_examples(world: World) -> None:
    assert dx_lines("p", world.eval("p")) == [
        "p                : 0x5555555592a0 [Type: pair *]",
        *DX_P_CHILDREN,
    ]
    assert dx_lines("&total", world.eval("&total")) == [
        "&total           : 0x7ffd2a9e0c4c : 42 [Type: int *]",
        "    42 [Type: int]",
    ]


def test_dx_forms(world: World) -> None:
    assert dx_lines("s", world.eval("s")) == ["s                [Type: pair]", *DX_P_CHILDREN]
    assert dx_lines("total", world.eval("total")) == ["total            : 42 [Type: int]"]
    assert dx_lines("p", world.eval("p"), 0) == ["p                : 0x5555555592a0 [Type: pair *]"]
    assert dx_lines("arr", world.eval("arr")) == [
        "arr              [Type: int [4]]",
        "    [0x0]            : 10 [Type: int]",
        "    [0x1]            : 20 [Type: int]",
        "    [0x2]            : 30 [Type: int]",
        "    [0x3]            : 40 [Type: int]",
    ]
    assert dx_lines("h.bits", world.eval("h.bits")) == [
        "h.bits           [Type: flags]",
        "    [+0x000 ( 2: 0)] low              : 0x5 [Type: unsigned int]",
        "    [+0x000 ( 7: 3)] high             : 0x1b [Type: unsigned int]",
        "    [+0x000 (19: 8)] wide             : 0xf5a [Type: unsigned int]",
        "    [+0x000 (23:20)] sign             : -3 [Type: int]",
    ]
    assert dx_lines("h", world.eval("h"))[5:8] == [
        "    [+0x010] state            : GREEN (0x1) [Type: color]",
        '    [+0x014] buf              : "xy" [Type: char [16]]',
        "    [+0x028] count            : 0x7ffd2a9e0c4c : 42 [Type: int *]",
    ]
    assert dx_lines("ratio", world.eval("ratio")) == ["ratio            : 0.250000 [Type: double]"]
    assert dx_lines("null", world.eval("null")) == ["null             : 0x0 [Type: pair *]"]
    assert dx_lines("tmp", world.eval("tmp")) == ["tmp              : <value unavailable> [Type: int]"]


def test_dx_depth(world: World) -> None:
    lines = dx_lines("p", world.eval("p"), 2)
    assert lines[3:6] == [
        "    [+0x010] next             : 0x5555555592e0 [Type: pair *]",
        "        [+0x000] first            : 8 [Type: int]",
        "        [+0x008] name             : 0x0 [Type: char *]",
    ]
    assert lines[-3:] == [
        "    [+0x030] link             [Type: list_head]",
        "        [+0x000] next             : 0x0 [Type: list_head *]",
        "        [+0x008] prev             : 0x0 [Type: list_head *]",
    ]


def test_dx_unreadable(world: World) -> None:
    assert dx_lines("bad", world.eval("bad"))[:2] == [
        "bad              : 0x10 [Type: pair *]",
        "    [+0x000] first            : Unable to read memory at Address 0x10 [Type: int]",
    ]


def test_pointers_without_memory(world: World) -> None:
    """A pointer value with no memory reader behind it (a constant) shows itself only."""
    constant = Value.from_int(world.type("struct pair").pointer_to(), PAIR, "c")
    assert cpp_lines(constant) == ["struct pair * 0x00005555`555592a0", "Memory read error 00005555`555592a0"]
    assert dx_lines("c", constant) == ["c                : 0x5555555592a0 [Type: pair *]"]
    assert dv_value_text(constant) == "0x00005555`555592a0"


def test_dx_errors(world: World) -> None:
    def error(text: str) -> CExprError:
        with pytest.raises(CExprError) as caught:
            world.eval(text)
        return caught.value

    assert dx_error_line(error("nosuch")) == "Error: Unable to bind name 'nosuch'"
    assert dx_error_line(error("*(int *)0x38")) == "Error: Unable to read memory at Address 0x38"
    assert dx_error_line(error("1 +")) == "Error: Syntax error at '<EOL>'"
