"""lindbg.symbols.cexpr: the C++ expression language of ``??`` and ``dx``.

The parser on text alone (trees pinned as S-expressions, a few with their exact
positions, errors with cdb's messages), then the evaluator on synthesized values over
a bytes-backed memory: C's conversions, pointer arithmetic, member access through
the types of tests/fixtures/cexpr.c, and the error for each way evaluation fails.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import pytest
from conftest import Programs
from elftools.elf.elffile import ELFFile
from hypothesis import given, settings
from hypothesis import strategies as st

from lindbg.commands.expr import ExpressionError
from lindbg.errors import MemoryAccessError
from lindbg.symbols.cexpr import (
    Binary,
    BoolLiteral,
    Cast,
    CExprError,
    CharLiteral,
    Conditional,
    FloatLiteral,
    Index,
    IntegerLiteral,
    Member,
    Name,
    Node,
    NullLiteral,
    Parenthesized,
    Register,
    SizeofExpression,
    SizeofType,
    StringLiteral,
    TypeName,
    Unary,
    builtin_type,
    evaluate,
    evaluate_text,
    parse,
)
from lindbg.symbols.types import Type, TypeReader
from lindbg.symbols.values import ReadMemory, Value

TYPE_NAMES = {"pair", "pair_t", "ns::Box<int>", "std::map<int, char>", "Outer<Inner<int> >"}


def sexp(node: Node) -> str:
    """A node as a compact S-expression (positions left out)."""
    if isinstance(node, IntegerLiteral):
        return f"{node.value}:{node.type_name}"
    if isinstance(node, FloatLiteral):
        return f"{node.value!r}:{node.type_name}"
    if isinstance(node, CharLiteral):
        return f"char:{node.value}"
    if isinstance(node, StringLiteral):
        return f"str:{node.value!r}"
    if isinstance(node, BoolLiteral):
        return "true" if node.value else "false"
    if isinstance(node, NullLiteral):
        return "nullptr"
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Register):
        return f"@{node.name}"
    if isinstance(node, Parenthesized):
        return f"({sexp(node.inner)})"
    if isinstance(node, Unary):
        return f"({node.op} {sexp(node.operand)})"
    if isinstance(node, SizeofExpression):
        return f"(sizeof {sexp(node.operand)})"
    if isinstance(node, SizeofType):
        return f"(sizeof-type {type_text(node.type)})"
    if isinstance(node, Cast):
        return f"(cast {type_text(node.type)} {sexp(node.operand)})"
    if isinstance(node, Binary):
        return f"({node.op} {sexp(node.left)} {sexp(node.right)})"
    if isinstance(node, Conditional):
        return f"(? {sexp(node.condition)} {sexp(node.then)} {sexp(node.otherwise)})"
    if isinstance(node, Member):
        return f"({'->' if node.arrow else '.'} {sexp(node.operand)} {node.name})"
    if isinstance(node, Index):
        return f"([] {sexp(node.operand)} {sexp(node.index)})"
    raise AssertionError(node)


def type_text(type_name: TypeName) -> str:
    return "<" + type_name.base + "*" * type_name.pointers + "".join(f"[{n}]" for n in type_name.arrays) + ">"


def parsed(text: str) -> str:
    return sexp(parse(text, TYPE_NAMES.__contains__).root)


# ---------------------------------------------------------------- parser: trees

TREES = [
    ("1+2*3", "(+ 1:int (* 2:int 3:int))"),
    ("(1+2)*3", "(* ((+ 1:int 2:int)) 3:int)"),
    ("1-2-3", "(- (- 1:int 2:int) 3:int)"),
    ("a || b && c | d ^ e & f", "(|| a (&& b (| c (^ d (& e f)))))"),
    ("a == b < c << d + e * f", "(== a (< b (<< c (+ d (* e f)))))"),
    ("a != b >= c >> 1", "(!= a (>= b (>> c 1:int)))"),
    ("a % b / c", "(/ (% a b) c)"),
    ("c ? x : y ? 1 : 2", "(? c x (? y 1:int 2:int))"),
    ("a->b.c[3]", "([] (. (-> a b) c) 3:int)"),
    ("a[1][i+1]", "([] ([] a 1:int) (+ i 1:int))"),
    ("*p++0", "(+ (* p) (+ 0:int))"),
    ("-~!x", "(- (~ (! x)))"),
    ("&s.f", "(& (. s f))"),
    ("*&x", "(* (& x))"),
    ("- -1", "(- (- 1:int))"),
    ("ns::count + ::global", "(+ ns::count ::global)"),
    ("app!g_counter", "app!g_counter"),
    ("x!=y", "(!= x y)"),
    ("@rax + @$ip", "(+ @rax @$ip)"),
    ("$ip - @RIP", "(- @$ip @rip)"),
    ("sizeof(int)", "(sizeof-type <int>)"),
    ("sizeof (pair) * 2", "(* (sizeof-type <pair>) 2:int)"),
    ("sizeof x + 1", "(+ (sizeof x) 1:int)"),
    ("sizeof(x)", "(sizeof (x))"),
    ("sizeof(int[4])", "(sizeof-type <int[4]>)"),
    ("sizeof(struct pair *)", "(sizeof-type <struct pair*>)"),
    ("(int)x", "(cast <int> x)"),
    ("(unsigned long)p", "(cast <unsigned long> p)"),
    ("(long unsigned int)p", "(cast <unsigned long> p)"),
    ("(unsigned)x", "(cast <unsigned int> x)"),
    ("(short int)x", "(cast <short> x)"),
    ("(signed char)x", "(cast <signed char> x)"),
    ("(long long)x", "(cast <long long> x)"),
    ("(long double)x", "(cast <long double> x)"),
    ("(_Bool)x", "(cast <bool> x)"),
    ("(struct pair *)p", "(cast <struct pair*> p)"),
    ("(union u)x", "(cast <union u> x)"),
    ("(enum color)2", "(cast <enum color> 2:int)"),
    ("(pair*)0x10", "(cast <pair*> 16:int)"),
    ("(pair_t **)p", "(cast <pair_t**> p)"),
    ("(const char * const)s", "(cast <char*> s)"),
    ("(volatile int *)p", "(cast <int*> p)"),
    ("(ns::Box<int> *)p", "(cast <ns::Box<int>*> p)"),
    ("(ns::Box< int > *)p", "(cast <ns::Box<int>*> p)"),
    ("(std::map<int,char>*)p", "(cast <std::map<int, char>*> p)"),
    ("(Outer<Inner<int>>*)p", "(cast <Outer<Inner<int> >*> p)"),
    ("(struct Box<int> *)p", "(cast <struct Box<int>*> p)"),
    ("(int)(char)x", "(cast <int> (cast <char> x))"),
    ("(int)-x", "(cast <int> (- x))"),
    ("(int)p->f", "(cast <int> (-> p f))"),
    ("(x)", "(x)"),
    ("(x)-1", "(- (x) 1:int)"),
    ("(a < b)", "((< a b))"),
    ("(a < b > c)", "((> (< a b) c))"),
    ("0", "0:int"),
    ("42", "42:int"),
    ("0x2a", "42:int"),
    ("052", "42:int"),
    ("0x00005555`555592a0", "93824992252576:long"),
    ("2147483648", "2147483648:long"),
    ("0x80000000", "2147483648:unsigned int"),
    ("0xffffffffffffffff", "18446744073709551615:unsigned long"),
    ("9223372036854775808", "9223372036854775808:unsigned long long"),
    ("1u", "1:unsigned int"),
    ("1U", "1:unsigned int"),
    ("1l", "1:long"),
    ("1ul", "1:unsigned long"),
    ("1LU", "1:unsigned long"),
    ("1ll", "1:long long"),
    ("1ull", "1:unsigned long long"),
    ("1.5", "1.5:double"),
    ("1.5f", "1.5:float"),
    ("2.5L", "2.5:long double"),
    (".5e3", "500.0:double"),
    ("1e-3", "0.001:double"),
    ("3.", "3.0:double"),
    ("'a'", "char:97"),
    ("'\\n'", "char:10"),
    ("'\\x41'", "char:65"),
    ("'\\0'", "char:0"),
    ("'\\101'", "char:65"),
    ("'\\''", "char:39"),
    ('"ab\\tc"', "str:b'ab\\tc'"),
    ('"\\"q\\""', "str:b'\"q\"'"),
    ("true && !false", "(&& true (! false))"),
    ("p == nullptr", "(== p nullptr)"),
    ("  x  ", "x"),
]


@pytest.mark.parametrize(("text", "tree"), TREES, ids=[text for text, _ in TREES])
def test_parse_tree(text: str, tree: str) -> None:
    assert parsed(text) == tree


def test_parse_positions() -> None:
    """Each node spans its own text; a member keeps where its name starts."""
    root = parse("(int)p->next + 1").root
    assert root == Binary(
        0,
        16,
        "+",
        Cast(
            0,
            12,
            TypeName(1, 4, "int"),
            Member(5, 12, Name(5, 6, "p"), "next", True, 8),
        ),
        IntegerLiteral(15, 16, 1, "int"),
    )
    assert parse(" ( a ) ").root == Parenthesized(1, 6, Name(3, 4, "a"))
    assert parse("sizeof(struct pair *)").root == SizeofType(0, 21, TypeName(7, 20, "struct pair", 1))


def test_parse_without_type_names() -> None:
    """Without the callback a plain name is never a type: ``(pair)`` is an expression."""
    assert sexp(parse("(pair)").root) == "(pair)"
    assert sexp(parse("(unsigned)pair").root) == "(cast <unsigned int> pair)"
    with pytest.raises(CExprError, match=r"^Syntax error at 'x'$"):
        parse("(pair)x")


def test_parse_depth_limit() -> None:
    assert sexp(parse("(" * 40 + "1" + ")" * 40).root).count("(") == 40
    with pytest.raises(CExprError, match=r"^Syntax error at '\(+1\)+'$"):
        parse("(" * 200 + "1" + ")" * 200)


# ---------------------------------------------------------------- parser: errors

SYNTAX_ERRORS = [
    ("", "Syntax error at '<EOL>'", 0),
    ("   ", "Syntax error at '<EOL>'", 3),
    ("1 +", "Syntax error at '<EOL>'", 3),
    ("1 + )", "Syntax error at ')'", 4),
    ("(1", "Syntax error at '<EOL>'", 2),
    ("(x y", "Syntax error at 'y'", 3),
    ("nosuch)", "Syntax error at ')'", 6),
    ("a b", "Syntax error at 'b'", 2),
    ("p->", "Syntax error at '<EOL>'", 3),
    ("p->1", "Syntax error at '1'", 3),
    ("p.int", "Syntax error at 'int'", 2),
    ("a[1", "Syntax error at '<EOL>'", 3),
    ("a ? b", "Syntax error at '<EOL>'", 5),
    ("a ? b c", "Syntax error at 'c'", 6),
    ("12ab", "Syntax error at '12ab'", 0),
    ("1.5x", "Syntax error at '1.5x'", 0),
    ("08", "Syntax error at '08'", 0),
    ("0x", "Syntax error at '0x'", 0),
    ("$", "Syntax error at '$'", 0),
    ("@", "Syntax error at '@'", 0),
    ("#", "Syntax error at '#'", 0),
    ("x = 1", "Syntax error at '= 1'", 2),
    ("'ab'", "Syntax error at ''ab''", 0),
    ("''", "Syntax error at ''''", 0),
    ("'a", "Syntax error at ''a'", 0),
    ('"abc', "Syntax error at '\"abc'", 0),
    ("'\\q'", "Syntax error at ''\\q''", 0),
    ("int", "Syntax error at 'int'", 0),
    ("(unsigned x)y", "Syntax error at 'x)y'", 10),
    ("(long char)x", "Syntax error at ')x'", 10),
    ("(unsigned double)x", "Syntax error at ')x'", 16),
    ("(int)", "Syntax error at '<EOL>'", 5),
    ("(struct 1)x", "Syntax error at '1)x'", 8),
    ("(int[n])x", "Syntax error at 'n])x'", 5),
    ("sizeof", "Syntax error at '<EOL>'", 6),
    ("99999999999999999999", "Overflow error at '99999999999999999999'", 0),
    ("0x1ffffffffffffffff + 1", "Overflow error at '0x1ffffffffffffffff + 1'", 0),
]


@pytest.mark.parametrize(("text", "message", "position"), SYNTAX_ERRORS, ids=[t for t, _, _ in SYNTAX_ERRORS])
def test_parse_errors(text: str, message: str, position: int) -> None:
    with pytest.raises(CExprError) as caught:
        parse(text, TYPE_NAMES.__contains__)
    assert str(caught.value) == message
    assert caught.value.position == position


TOKENS = [*"ab1x.0-+*/%&|^!~<>=?:()[]'\"\\ @$_u", "int", "unsigned", "long", "struct", "sizeof", "pair"]
TOKENS += ["::", "ns::Box", "->", "0x1f", "1.5e3", "'\\n'", "const", "true", "nullptr", "@rax"]


@settings(max_examples=600, deadline=None)
@given(
    st.lists(st.sampled_from(TOKENS), max_size=16).flatmap(
        lambda parts: st.sampled_from(["", " "]).map(lambda sep: sep.join(parts))
    )
)
def test_parse_never_fails_otherwise(text: str) -> None:
    """Any text parses or raises CExprError (nothing else), with the position inside it."""
    try:
        parse(text, TYPE_NAMES.__contains__)
    except CExprError as error:
        assert 0 <= error.position <= len(text)
        assert str(error).endswith(f"'{error.rest or '<EOL>'}'")


def test_error_is_an_expression_error() -> None:
    """A console that catches the MASM evaluator's errors catches these too."""
    with pytest.raises(ExpressionError, match=r"^Syntax error at '\)'$") as caught:
        parse(")")
    assert isinstance(caught.value, CExprError)
    assert (caught.value.kind, caught.value.rest, caught.value.token) == ("Syntax error", ")", "")


# ---------------------------------------------------------------- evaluation: a small world

STACK = 0x7FFD2A9E0C00
PAIR = 0x5555555592A0
NEXT_PAIR = 0x5555555592E0
HELLO = 0x555555556004
HOLDER = STACK + 0x80
ARGC, P, RATIO, TOTAL, BUF, ARR, STATE = (STACK + o for o in (0x3C, 0x30, 0x40, 0x4C, 0x50, 0x60, 0x70))


class Memory:
    """A sparse fake address space: blocks of bytes at addresses."""

    def __init__(self) -> None:
        self.blocks: dict[int, bytearray] = {}
        self.reads: list[tuple[int, int]] = []

    def put(self, address: int, data: bytes) -> None:
        for start, block in self.blocks.items():
            if start <= address and address + len(data) <= start + len(block):
                block[address - start : address - start + len(data)] = data
                return
        self.blocks[address] = bytearray(data)

    def read(self, address: int, size: int) -> bytes:
        self.reads.append((address, size))
        for start, block in self.blocks.items():
            if start <= address and address + size <= start + len(block):
                return bytes(block[address - start : address - start + size])
        raise MemoryAccessError(f"Cannot access memory at address {address:#x}", address)


def pair_bytes(first: int, name: int, next_: int, vals: tuple[int, int, int, int], tag: int) -> bytes:
    """A ``struct pair`` (tests/fixtures/cexpr.c); its list_head links to itself."""
    return struct.pack("<i4xQQ4iB7x", first, name, next_, *vals, tag) + bytes(16)


class FakeScope:
    """A CScope over a Memory, the fixture's types and a table of variables."""

    def __init__(self, memory: Memory, reader: TypeReader, variables: dict[str, Value]) -> None:
        self.memory = memory
        self.reader = reader
        self.variables = variables
        self.registers = {"rax": 0x1A, "rip": 0x401126, "$ip": 0x401126}

    def variable(self, name: str) -> Value | None:
        return self.variables.get(name)

    def type_named(self, name: str) -> Type | None:
        return self.reader.find_type(name)

    def register(self, name: str) -> int | None:
        return self.registers.get(name)

    def read(self) -> ReadMemory:
        return self.memory.read


@dataclass
class World:
    memory: Memory
    reader: TypeReader
    scope: FakeScope

    def type(self, name: str) -> Type:
        found = self.reader.find_type(name)
        assert found is not None, name
        return found

    def eval(self, text: str) -> Value:
        return evaluate_text(text, self.scope)


def make_world(programs: Programs) -> World:
    """The values of CDB-OUTPUT.md's examples: a frame's locals over a stack block,
    two linked ``struct pair``s and a string on the heap."""
    with open(programs.path("cexpr"), "rb") as stream:
        elf = ELFFile(stream)
        reader = TypeReader(elf.get_dwarf_info())
        world = World(Memory(), reader, FakeScope(Memory(), reader, {}))
        # Read every type now: the DWARF is read lazily and the file closes here.
        for name in ("int", "unsigned int", "double", "char", "struct pair", "struct holder", "enum color"):
            t = world.type(name)
            _ = (t.members, t.enumerators, [m.type.members for m in t.members])
        world.type("pair_t").strip_typedefs()
    memory = world.memory
    world.scope.memory = memory
    read = memory.read
    memory.put(STACK, bytes(0x100))
    memory.put(PAIR, pair_bytes(7, HELLO, NEXT_PAIR, (1, 2, 3, 4), 0x41))
    memory.put(NEXT_PAIR, pair_bytes(8, 0, 0, (5, 6, 7, 8), 0x42))
    memory.put(HELLO, b"hello\0")
    memory.put(ARGC, struct.pack("<i", 1))
    memory.put(P, struct.pack("<Q", PAIR))
    memory.put(RATIO, struct.pack("<d", 0.25))
    memory.put(TOTAL, struct.pack("<i", 42))
    memory.put(BUF, b"abc".ljust(16, b"\0"))
    memory.put(ARR, struct.pack("<4i", 10, 20, 30, 40))
    memory.put(STATE, struct.pack("<i", 2))
    # struct holder: kind, {i|f}, ratio, state, buf[16], count, opaque, ok, bits
    memory.put(
        HOLDER, struct.pack("<iidi16s4xQQ?3xI", 3, 0x3FC00000, 1.5, 1, b"xy", TOTAL, PAIR, True, 0xDF5ADD)
    )
    int_t, pair_t = world.type("int"), world.type("struct pair")
    variables = {
        "argc": Value.from_memory(int_t, ARGC, read, "argc"),
        "p": Value.from_memory(pair_t.pointer_to(), P, read, "p"),
        "s": Value.from_memory(pair_t, PAIR, read, "s"),
        "ratio": Value.from_memory(world.type("double"), RATIO, read, "ratio"),
        "total": Value.from_memory(int_t, TOTAL, read, "total"),
        "buf": Value.from_memory(world.type("char").array_of(16), BUF, read, "buf"),
        "arr": Value.from_memory(int_t.array_of(4), ARR, read, "arr"),
        "ip": Value.from_bytes(int_t.pointer_to(), struct.pack("<Q", ARR), read, "ip", register="rsi"),
        "name": Value.from_bytes(world.type("char *"), struct.pack("<Q", HELLO), read, "name"),
        "state": Value.from_memory(world.type("enum color"), STATE, read, "state"),
        "count": Value.from_bytes(world.type("unsigned int"), struct.pack("<I", 7), read, "count", "rbx"),
        "tmp": Value.unavailable(int_t, "optimized out", "tmp"),
        "h": Value.from_memory(world.type("struct holder"), HOLDER, read, "h"),
        "bad": Value.from_bytes(pair_t.pointer_to(), struct.pack("<Q", 0x10), read, "bad"),
        "null": Value.from_bytes(pair_t.pointer_to(), bytes(8), read, "null"),
        "vp": Value.from_bytes(world.type("void *"), struct.pack("<Q", ARR), read, "vp"),
    }
    world.scope.variables.update(variables)
    return world


@pytest.fixture
def world(programs: Programs) -> World:
    return make_world(programs)


def number(value: Value) -> int | float:
    return float(value) if value.type.is_float else int(value)


EVALUATIONS = [
    # integer arithmetic: C's types and wrap-around
    ("1 + 2", "int", 3),
    ("7 / 2", "int", 3),
    ("-7 / 2", "int", -3),
    ("-7 % 2", "int", -1),
    ("7 % -2", "int", 1),
    ("2147483647 + 1", "int", -2147483648),
    ("1 << 31", "int", -2147483648),
    ("-16 >> 2", "int", -4),
    ("1u - 2", "unsigned int", 0xFFFFFFFF),
    ("-1 < 1u", "bool", 0),
    ("-1 < 1", "bool", 1),
    ("-1l < 1u", "bool", 1),
    ("~0u", "unsigned int", 0xFFFFFFFF),
    ("~0ul", "unsigned long", 0xFFFFFFFFFFFFFFFF),
    ("0x7fffffffffffffff + 1", "long", -(1 << 63)),
    ("1 + 1l", "long", 2),
    ("1u + 1l", "long", 2),
    ("1ul + -1", "unsigned long", 0),
    ("6 & 3 | 8 ^ 1", "int", 11),
    ("'a' + 1", "int", 98),
    ("'a'", "char", 97),
    ("true + true", "int", 2),
    ("!0", "bool", 1),
    ("!total", "bool", 0),
    ("-total", "int", -42),
    ("+'a'", "int", 97),
    ("3 > 2 && 0 || 1", "bool", 1),
    ("0 && 1 / 0", "bool", 0),
    ("1 || *(int *)0", "bool", 1),
    ("3 ? 4 : 5", "int", 4),
    ("0 ? 1.5 : 2", "double", 2.0),
    ("total ? argc : 9", "int", 1),
    # floating point
    ("1.5 * 2", "double", 3.0),
    ("1 / 2.0", "double", 0.5),
    ("1.0f + 1", "float", 2.0),
    ("1.0f + 1.0", "double", 2.0),
    ("ratio * 4", "double", 1.0),
    ("1.0 / 0", "double", math.inf),
    ("2.5L * 2", "long double", 5.0),
    ("(int)2.9", "int", 2),
    ("(int)-2.9", "int", -2),
    ("(bool)0.5", "bool", 1),
    ("(float)1e39", "float", math.inf),
    ("ratio == 0.25", "bool", 1),
    # casts and sizeof
    ("(char)300", "char", 44),
    ("(unsigned char)-1", "unsigned char", 255),
    ("(short)0x12345", "short", 0x2345),
    ("(long)-1", "long", -1),
    ("(unsigned long)-1", "unsigned long", 0xFFFFFFFFFFFFFFFF),
    ("(enum color)1", "enum color", 1),
    ("state + 1", "unsigned int", 3),  # gcc gives enum color unsigned int underneath
    ("sizeof(int)", "unsigned long", 4),
    ("sizeof total", "unsigned long", 4),
    ("sizeof(struct pair)", "unsigned long", 0x40),
    ("sizeof(pair_t)", "unsigned long", 0x40),
    ("sizeof(int[4])", "unsigned long", 16),
    ("sizeof buf", "unsigned long", 16),
    ("sizeof(char *)", "unsigned long", 8),
    ('sizeof "abc"', "unsigned long", 4),
    ("sizeof *p", "unsigned long", 0x40),
    ("sizeof(bad->vals)", "unsigned long", 16),
    ("sizeof(1 / 0)", "unsigned long", 4),
    ("sizeof(bad->next->vals)", "unsigned long", 16),
    ("sizeof(*bad->next)", "unsigned long", 0x40),
    ("sizeof(long double)", "unsigned long", 16),
    # pointers and arrays
    ("*ip", "int", 10),
    ("ip[2]", "int", 30),
    ("2[ip]", "int", 30),
    ("*(ip + 3)", "int", 40),
    ("ip + 1", "int *", ARR + 4),
    ("1 + ip", "int *", ARR + 4),
    ("&ip[3] - &ip[1]", "long", 2),
    ("ip - (ip + 3)", "long", -3),
    ("&arr[1]", "int *", ARR + 4),
    ("arr[1]", "int", 20),
    ("*arr", "int", 10),
    ("arr + 2", "int *", ARR + 8),
    ("*(arr + 2)", "int", 30),
    ("ip == arr", "bool", 1),
    ("ip != 0", "bool", 1),
    ("ip > arr", "bool", 0),
    ("null == 0", "bool", 1),
    ("!null", "bool", 1),
    ("p != nullptr", "bool", 1),
    ("(long)(ip + 1)", "long", ARR + 4),
    ("(char *)ip + 1", "char *", ARR + 1),
    ("((char *)ip)[4]", "char", 20),
    ("*(int *)(ip + 1)", "int", 20),
    (f"*(int *){ARR + 8:#x}", "int", 30),
    ("vp + 1", "void *", ARR + 1),
    ("(int *)vp", "int *", ARR),
    ("&total", "int *", TOTAL),
    ("*&total", "int", 42),
    ("buf[1]", "char", ord("b")),
    ("*buf", "char", ord("a")),
    ("name[4]", "char", ord("o")),
    ("*name", "char", ord("h")),
    ("(unsigned long)name", "unsigned long", HELLO),
    ("(long)arr", "long", ARR),
    # structs
    ("p->first", "int", 7),
    ("(*p).first", "int", 7),
    ("s.first", "int", 7),
    ("p.first", "int", 7),
    ("p->next->first", "int", 8),
    ("p->next->next", "struct pair *", 0),
    ("s.vals[2]", "int", 3),
    ("p->vals[3] + p->next->vals[0]", "int", 9),
    ("p->name[1]", "char", ord("e")),
    ("*p->name", "char", ord("h")),
    ("&p->vals[1]", "int *", PAIR + 0x1C),
    ("&s", "struct pair *", PAIR),
    ("&s.link", "struct list_head *", PAIR + 0x30),
    ("p->tag", "unsigned char", 0x41),
    ("p->link.next", "struct list_head *", 0),
    (f"((struct pair *){NEXT_PAIR:#x})->first", "int", 8),
    (f"((pair_t *){NEXT_PAIR:#x})->vals[1]", "int", 6),
    ("((pair_t *)p)[1].first", "int", 8),
    ("h.kind", "int", 3),
    ("h.f", "float", 1.5),
    ("h.i", "int", 0x3FC00000),
    ("h.ratio", "double", 1.5),
    ("h.state", "enum color", 1),
    ("*h.count", "int", 42),
    ("h.ok", "_Bool", 1),
    ("h.bits.low", "unsigned int", 5),
    ("h.bits.high", "unsigned int", 0x1B),
    ("h.bits.wide", "unsigned int", 0xF5A),
    ("h.bits.sign", "int", -3),
    ("h.bits.low + 1", "unsigned int", 6),  # as gdb: the declared type promotes, not the width
    ("((struct pair *)h.opaque)->first", "int", 7),
    # registers
    ("@rax + 1", "unsigned long", 0x1B),
    ("@$ip", "unsigned long", 0x401126),
    ("$ip - @rip", "unsigned long", 0),
]


@pytest.mark.parametrize(("text", "type_name", "expected"), EVALUATIONS, ids=[t for t, _, _ in EVALUATIONS])
def test_evaluate(world: World, text: str, type_name: str, expected: int | float) -> None:
    value = world.eval(text)
    assert value.type.c_name() == type_name
    assert number(value) == expected
    assert value.name == text.strip()


EVALUATION_ERRORS = [
    ("nosuch", "Couldn't resolve error at 'nosuch'", "nosuch"),
    ("nosuch + 1", "Couldn't resolve error at 'nosuch + 1'", "nosuch"),
    ("1 + ::nosuch", "Couldn't resolve error at '::nosuch'", "::nosuch"),
    ("p->nofield", "Couldn't resolve error at 'nofield'", "nofield"),
    ("s.nofield + 1", "Couldn't resolve error at 'nofield + 1'", "nofield"),
    ("(struct nosuch *)p", "Couldn't resolve error at 'struct nosuch *)p'", "struct nosuch"),
    ("sizeof(struct nosuch)", "Couldn't resolve error at 'struct nosuch)'", "struct nosuch"),
    ("@nosuch", "Bad register error at '@nosuch'", "nosuch"),
    ("1 / 0", "Divide by zero error at '<EOL>'", ""),
    ("(total % (argc - 1)) + 2", "Divide by zero error at ') + 2'", ""),
    ("*(int *)0x10", "Memory access error at '<EOL>'", ""),
    ("*(int *)0x10 + 1", "Memory access error at ' + 1'", ""),
    ("bad->first", "Memory access error at '<EOL>'", ""),
    ("bad->next->first", "Memory access error at '->first'", ""),
    ("null->vals[1]", "Memory access error at '<EOL>'", ""),
    ("null->first + 1", "Memory access error at ' + 1'", ""),
    ("p->next->next->first", "Memory access error at '<EOL>'", ""),
    ("tmp + 1", "Memory access error at ' + 1'", ""),
    ("s + 1", "Type conflict error at '<EOL>'", ""),
    ("-s", "Type conflict error at '<EOL>'", ""),
    ("!s", "Type conflict error at '<EOL>'", ""),
    ("*total", "Type conflict error at '<EOL>'", ""),
    ("*vp", "Type conflict error at '<EOL>'", ""),
    ("vp[1]", "Type conflict error at '<EOL>'", ""),
    ("total[1]", "Type conflict error at '<EOL>'", ""),
    ("ip[1.5]", "Type conflict error at '<EOL>'", ""),
    ("s->first", "Type conflict error at 'first'", ""),
    ("total.x", "Type conflict error at 'x'", ""),
    ("ip->x", "Type conflict error at 'x'", ""),
    ("&(1 + 2)", "Type conflict error at '<EOL>'", ""),
    ("&count", "Type conflict error at '<EOL>'", ""),
    ("1.5 % 2", "Type conflict error at '<EOL>'", ""),
    ("1.5 << 2", "Type conflict error at '<EOL>'", ""),
    ("~1.5", "Type conflict error at '<EOL>'", ""),
    ("ip + ip", "Type conflict error at '<EOL>'", ""),
    ("ip * 2", "Type conflict error at '<EOL>'", ""),
    ("(int *)1.5", "Type conflict error at '<EOL>'", ""),
    ("(double)ip", "Type conflict error at '<EOL>'", ""),
    ("sizeof(void)", "Type conflict error at '<EOL>'", ""),
]


@pytest.mark.parametrize(
    ("text", "message", "token"), EVALUATION_ERRORS, ids=[t for t, _, _ in EVALUATION_ERRORS]
)
def test_evaluate_errors(world: World, text: str, message: str, token: str) -> None:
    with pytest.raises(CExprError) as caught:
        world.eval(text)
    assert str(caught.value) == message
    assert caught.value.token == token


def test_memory_error_carries_the_address(world: World) -> None:
    with pytest.raises(CExprError) as caught:
        world.eval("p->next->next->first")
    assert caught.value.address == 0


def test_evaluate_is_lazy_for_aggregates(world: World) -> None:
    """A struct through a bad pointer is not read until shown; its scalars are."""
    world.memory.reads.clear()
    value = world.eval("*bad")
    assert (value.type.c_name(), value.address, world.memory.reads) == ("struct pair", 0x10, [])
    assert world.eval("sizeof(*bad)").name == "sizeof(*bad)"
    assert world.memory.reads == []


def test_evaluate_keeps_values_in_place(world: World) -> None:
    """Values read from memory keep their address (``&`` and dt/dx need it)."""
    assert world.eval("p->next").address == PAIR + 0x10
    assert world.eval("s.vals").address == PAIR + 0x18
    assert world.eval("(p)").address == P
    assert world.eval("count").register == "rbx"


def test_evaluate_string_literal(world: World) -> None:
    value = world.eval('"ab"')
    assert (value.type.c_name(), value.string()) == ("char [3]", b"ab")


def test_variable_shadows_type_name(world: World) -> None:
    """A name that is both a variable and a type is the variable (C's scoping)."""
    world.scope.variables["pair_t"] = world.eval("total")
    assert number(world.eval("(pair_t)")) == 42
    assert number(world.eval("(pair_t) + 1")) == 43


def test_evaluate_parsed_tree(world: World) -> None:
    """parse + evaluate, the two halves evaluate_text joins."""
    tree = parse("(unsigned char)argc + 1")
    value = evaluate(tree, world.scope)
    assert (value.type.c_name(), int(value), value.name) == ("int", 2, "(unsigned char)argc + 1")


def test_builtin_types() -> None:
    int_t = builtin_type("int")
    assert int_t is not None and (int_t.c_name(), int_t.size) == ("int", 4)
    assert builtin_type("unsigned long") is builtin_type("unsigned long")
    assert builtin_type("struct pair") is None
