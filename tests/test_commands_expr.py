"""lindbg.commands.expr: cdb's MASM expression evaluator against a fake context
(operators, precedence, radix, numbers, registers, symbols, memory, error texts)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lindbg.commands.expr import (
    MASK64,
    ExpressionError,
    evaluate,
    evaluate_prefix,
    format_evaluate,
    to_signed,
)
from lindbg.errors import LindbgError, MemoryAccessError

REGISTERS = {
    "rax": 0x1A,
    "rbx": 0x00007FFD2A9E0D78,
    "rcx": 5,
    "rsp": 0x00007FFD2A9E0C40,
    "rip": 0x0000555555555168,
    "eax": 0x1A,
    "al": 0x1A,
    "efl": 0x246,
    "$ip": 0x0000555555555168,
    "$retreg": 0x1A,
    "$csp": 0x00007FFD2A9E0C40,
    "$proc": 0x3039,
    "$thread": 0x303A,
    "$t0": 0x10,
    "$t19": 0xFFFFFFFFFFFFFFFF,
}
SYMBOLS = {
    "app!compute": 0x555555555141,
    "compute": 0x555555555141,
    "app": 0x555555554000,
    "app!global_counter": 0x555555558010,
    "libc!printf@@GLIBC_2.2.5": 0x7F3B8C260100,
    "app!ns::f": 0x555555555200,
    "app!add": 0x555555555300,
    "add": 0x555555555300,
    "app!rbx": 0x1234,
}
MEMORY = {
    0x1000: bytes(range(1, 17)),  # 01 02 .. 10
    0x7FFD2A9E0C40: (0x555555555168).to_bytes(8, "little"),
    0x555555558010: (0x2000).to_bytes(8, "little"),
    0x2000: (0x1000).to_bytes(8, "little"),
}


class FakeContext:
    """An EvalContext over the tables above."""

    def __init__(self, radix: int = 16) -> None:
        self.radix = radix

    def register(self, name: str) -> int:
        return REGISTERS[name]

    def symbol(self, name: str) -> int | None:
        return SYMBOLS.get(name)

    def read_bytes(self, address: int, size: int) -> int:
        for base, data in MEMORY.items():
            if base <= address and address + size <= base + len(data):
                return int.from_bytes(data[address - base : address - base + size], "little")
        raise MemoryAccessError(f"cannot read {size} bytes at {address:#x}", address)

    def read_pointer(self, address: int) -> int:
        return self.read_bytes(address, 8)


def ev(text: str, radix: int = 16) -> int:
    return evaluate(text, FakeContext(radix))


NEG = MASK64  # -1

CASES = [
    # numbers and radixes
    ("10", 16, 0x10),
    ("10", 10, 10),
    ("10", 8, 8),
    ("0x10", 10, 0x10),
    ("0X1f", 10, 0x1F),
    ("0n10", 16, 10),
    ("0t17", 16, 0o17),
    ("0y101", 16, 5),
    ("10h", 10, 0x10),
    ("ffh", 10, 0xFF),
    ("0x", 16, 0),
    ("0n", 16, 0),
    ("deadbeef", 16, 0xDEADBEEF),
    ("DeadBeef", 16, 0xDEADBEEF),
    ("00007ffd`2a9e0c40", 16, 0x00007FFD2A9E0C40),
    ("0x00007ffd`2a9e0c40", 10, 0x00007FFD2A9E0C40),
    ("ffffffff`ffffffff", 16, MASK64),
    ("80000000", 16, 0x80000000),  # no sign extension
    ("add", 16, 0xADD),  # a valid number wins over the symbol ...
    ("!add", 16, 0x555555555300),  # ... `!` forces the symbol
    ("add", 10, 0x555555555300),  # not a number in radix 10: the symbol
    ("ah", 16, 0xA),  # number (trailing h), not the register
    # unary
    ("-1", 16, NEG),
    ("+5", 16, 5),
    ("--5", 16, 5),
    ("~0", 16, NEG),
    ("~0n5", 16, MASK64 - 5),
    ("not 0", 16, 1),
    ("not 5", 16, 0),
    ("NOT 0", 16, 1),
    ("hi(12345678)", 16, 0x1234),
    ("low(12345678)", 16, 0x5678),
    ("hi 0xabcd12345678", 16, 0x1234),
    ("low 0xabcd12345678", 16, 0x5678),
    ("-hi(0x10000)", 16, NEG),
    # arithmetic
    ("0x10 + 0n10", 16, 26),
    ("0 - 1", 16, NEG),
    ("3*4", 16, 12),
    ("0n7 / 2", 16, 3),
    ("0n7 % 2", 16, 1),
    ("0n7 mod 2", 16, 1),
    ("0n7 MOD 0n4", 16, 3),
    ("ffffffffffffffff + 2", 16, 1),
    ("100000000 * 100000000", 16, 0),
    ("-1 / 2", 16, MASK64 // 2),  # unsigned division
    # shifts
    ("1 << 4", 16, 0x10),
    ("1 << 0n64", 16, 0),
    ("1 << 0n63", 16, 1 << 63),
    ("0x80 >> 4", 16, 8),
    ("-1 >> 0n60", 16, 0xF),
    ("-1 >>> 0n60", 16, NEG),
    ("-0n16 >>> 2", 16, (-4) & MASK64),
    ("0x80 >>> 4", 16, 8),
    ("-1 >> 0n100", 16, 0),
    ("-1 >>> 0n100", 16, NEG),
    # comparisons
    ("1 = 1", 16, 1),
    ("1 == 2", 16, 0),
    ("1 != 2", 16, 1),
    ("1!=1", 16, 0),
    ("1 < 2", 16, 1),
    ("2 < 1", 16, 0),
    ("1 > 2", 16, 0),
    ("2 <= 2", 16, 1),
    ("3 >= 4", 16, 0),
    ("-1 > 1", 16, 1),  # unsigned
    # bitwise
    ("0xf0 and 0x3c", 16, 0x30),
    ("0xf0 & 0x3c", 16, 0x30),
    ("0xf0 xor 0x3c", 16, 0xCC),
    ("0xf0 ^ 0x3c", 16, 0xCC),
    ("0xf0 or 0x0f", 16, 0xFF),
    ("0xf0 | 0x0f", 16, 0xFF),
    ("0xf0 OR 0x0f", 16, 0xFF),
    # precedence (high to low: * / mod, + -, shifts, comparisons, and, xor, or)
    ("2 + 3 * 4", 16, 14),
    ("(2 + 3) * 4", 16, 20),
    ("0n10 - 0n4 - 0n3", 16, 3),  # left-associative
    ("0n100 / 0n10 / 0n5", 16, 2),
    ("1 + 1 << 2", 16, 8),  # + binds tighter than <<
    ("1 << 2 == 4", 16, 1),  # << binds tighter than ==
    ("1 == 1 & 2", 16, 0),  # == binds tighter than and: (1==1) & 2
    ("3 & 6 ^ 5", 16, 7),  # and before xor: (3&6)^5 = 2^5
    ("1 ^ 3 | 4", 16, 6),  # xor before or
    ("1 | 2 ^ 3", 16, 1),  # 1 | (2^3)
    ("2 * 3 mod 4", 16, 2),
    ("-2 * 3", 16, (-6) & MASK64),
    ("not 1 + 1", 16, 1),  # unary binds tighter: (not 1) + 1
    ("((((1))))", 16, 1),
    ("  7  ", 16, 7),
    # registers and pseudo-registers
    ("@rax", 16, 0x1A),
    ("@RAX", 16, 0x1A),
    ("rax", 16, 0x1A),
    ("@eax + 1", 16, 0x1B),
    ("al", 16, 0x1A),
    ("@efl", 16, 0x246),
    ("efl & 0x40", 16, 0x40),
    ("@$ip", 16, 0x555555555168),
    ("$ip", 16, 0x555555555168),
    (".", 16, 0x555555555168),
    ("@$retreg", 16, 0x1A),
    ("$csp", 16, 0x7FFD2A9E0C40),
    ("@$proc", 16, 0x3039),
    ("$thread", 16, 0x303A),
    ("$t0 + 1", 16, 0x11),
    ("@$t19", 16, MASK64),
    ("@rcx==5", 16, 1),
    ("@rcx!=5", 16, 0),
    ("@rax == 0x1a and @rcx == 5", 16, 1),
    ("app!rbx", 16, 0x1234),  # a module-qualified name is a symbol
    # symbols
    ("app!compute", 16, 0x555555555141),
    ("compute", 16, 0x555555555141),
    ("app", 16, 0x555555554000),
    ("app!compute+0x10", 16, 0x555555555151),
    ("app!compute + 10", 16, 0x555555555151),
    ("app!compute - app", 16, 0x1141),
    ("libc!printf@@GLIBC_2.2.5", 16, 0x7F3B8C260100),
    ("app!ns::f+1", 16, 0x555555555201),
    ("!compute", 16, 0x555555555141),
    # memory
    ("poi(1000)", 16, 0x0807060504030201),
    ("poi 1000", 16, 0x0807060504030201),
    ("poi(@rsp)", 16, 0x555555555168),
    ("poi(@$csp)+8", 16, 0x555555555170),
    ("poi @rsp + 8", 16, 0x555555555170),
    ("poi(poi(app!global_counter))", 16, 0x1000),
    ("poi(poi(poi(app!global_counter)))", 16, 0x0807060504030201),
    ("by(1000)", 16, 0x01),
    ("by(1001)", 16, 0x02),
    ("wo(1000)", 16, 0x0201),
    ("dwo(1000)", 16, 0x04030201),
    ("qwo(1000)", 16, 0x0807060504030201),
    ("qwo(1008)", 16, 0x100F0E0D0C0B0A09),
    ("dwo(1000+4) + 1", 16, 0x08070606),
    ("-by(1000)", 16, NEG),
    ("by 1000 + 1", 16, 2),
    # functions
    ('$spat("libfoo.so", "*foo*")', 16, 1),
    ('$spat("libfoo.so", "*bar*")', 16, 0),
    ('$spat("ABC", "a?c")', 16, 1),
    ('$spat("c:\\\\x\\\\y", "*x*")', 16, 1),
    ('$scmp("a", "b")', 16, NEG),
    ('$scmp("b", "b")', 16, 0),
    ('$sicmp("B", "b")', 16, 0),
    ("$vvalid(1000, 10)", 16, 1),
    ("$vvalid(1000, 11)", 16, 0),
    ("$vvalid(0, 1)", 16, 0),
    ("@@masm(1 + 2)", 16, 3),
]


@pytest.mark.parametrize(("text", "radix", "expected"), CASES)
def test_evaluate(text: str, radix: int, expected: int) -> None:
    assert ev(text, radix) == expected


ERRORS = [
    # CDB-OUTPUT.md §0 shapes
    ("app!nosuchsym ", "Couldn't resolve error at 'app!nosuchsym '", 0),
    ("poi(10)", "Memory access error at ')'", 6),
    ("", "Numeric expression missing from '<EOL>'", 0),
    ("   ", "Numeric expression missing from '<EOL>'", 3),
    ("1 +", "Numeric expression missing from '<EOL>'", 3),
    ("@rax == 1 && @rcx == 5", "Numeric expression missing from '& @rcx == 5'", 11),
    (
        '$spat( "c:\\x\\", "*y*" )',
        'Syntax error at \'( "c:\\x\\", "*y*" )\'',
        5,
    ),
    # more
    ("1 + app!nosuchsym + 2", "Couldn't resolve error at 'app!nosuchsym + 2'", 4),
    ("nosuchsym", "Couldn't resolve error at 'nosuchsym'", 0),
    ("!nosuchsym", "Couldn't resolve error at '!nosuchsym'", 0),
    ("$nosuch", "Couldn't resolve error at '$nosuch'", 0),
    ("@nosuch + 1", "Bad register error at '@nosuch + 1'", 0),
    ("@", "Bad register error at '@'", 0),
    ("poi(10) + 1", "Memory access error at ') + 1'", 6),
    ("poi 10", "Memory access error at '<EOL>'", 6),
    ("poi(poi(10))", "Memory access error at '))'", 10),
    ("by(0x2000+8)", "Memory access error at ')'", 11),
    ("dwo(100e)", "Memory access error at ')'", 8),
    ("poi", "Numeric expression missing from '<EOL>'", 3),
    ("* 2", "Numeric expression missing from '* 2'", 0),
    ("()", "Numeric expression missing from ')'", 1),
    ("(1 + 2", "Syntax error at '<EOL>'", 6),
    ("1 2", "Syntax error at '2'", 2),
    ("1)", "Syntax error at ')'", 1),
    ('"abc"', "Syntax error at '\"abc\"'", 0),
    ("1 + #", "Syntax error at '#'", 4),
    ("12xyz", "Syntax error at '12xyz'", 0),
    ("1f", "Syntax error at '1f'", 0),  # radix 16 is fine; see radix 10 below
    ("1 / 0", "Operand error", 4),
    ("1 mod (1 - 1)", "Operand error", 6),
    ("1 % 0", "Operand error", 4),
    ("1`0000`0000`0000`0000", "Overflow error at '1`0000`0000`0000`0000'", 0),
    ("0n18446744073709551616", "Overflow error at '0n18446744073709551616'", 0),
    ("@@c++(1)", "Syntax error at '@@c++(1)'", 0),
    ("$spat(1, 2)", "Syntax error at '(1, 2)'", 5),
]


@pytest.mark.parametrize(("text", "message", "position"), ERRORS)
def test_errors(text: str, message: str, position: int) -> None:
    radix = 10 if text == "1f" else 16
    with pytest.raises(ExpressionError) as caught:
        ev(text, radix)
    assert str(caught.value) == message
    assert caught.value.position == position
    assert isinstance(caught.value, LindbgError)


def test_deep_nesting_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="Syntax error"):
        ev("(" * 5000 + "1" + ")" * 5000)
    with pytest.raises(ExpressionError, match="Syntax error"):
        ev("-" * 5000 + "1")
    assert ev("(" * 50 + "1" + ")" * 50) == 1


def test_format_evaluate() -> None:
    assert format_evaluate(26) == "Evaluate expression: 26 = 00000000`0000001a"
    assert format_evaluate(ev("0 - 1")) == "Evaluate expression: -1 = ffffffff`ffffffff"
    assert format_evaluate(-1) == "Evaluate expression: -1 = ffffffff`ffffffff"
    assert format_evaluate(0x7FFD2A9E0C40) == "Evaluate expression: 140725318454336 = 00007ffd`2a9e0c40"


def test_to_signed() -> None:
    assert to_signed(0) == 0
    assert to_signed(MASK64) == -1
    assert to_signed(1 << 63) == -(1 << 63)
    assert to_signed((1 << 63) - 1) == (1 << 63) - 1


def test_evaluate_prefix_stops_before_the_next_argument() -> None:
    context = FakeContext()
    assert evaluate_prefix("@rsp L4", context) == (0x7FFD2A9E0C40, 4)
    assert evaluate_prefix("dq poi(@rsp)+8 L2", context, start=3) == (0x555555555170, 14)
    assert evaluate_prefix("1000 2000", context) == (0x1000, 4)
    assert evaluate_prefix("app!compute", context) == (0x555555555141, 11)


def test_context_errors_other_than_lookups_propagate() -> None:
    class Dead(FakeContext):
        def register(self, name: str) -> int:
            raise RuntimeError("no target")

    with pytest.raises(RuntimeError):
        evaluate("@rax", Dead())


FUZZ_CHARS = list("0123456789abcdefxnty@$!()+-*/%<>=&|^~ `.:_\"',#hl")
FUZZ_WORDS = ["rax", "rcx", "poi", "by", "wo", "dwo", "qwo", "hi", "low", "not", "and", "or", "xor", "mod"]
FUZZ_PIECES = ["app!compute", "$t0", "$ip", "$spat(", "$vvalid(", "@@masm(", "1000", " >>> ", " << "]
FUZZ_ALPHABET = st.sampled_from([*FUZZ_CHARS, *FUZZ_WORDS, *FUZZ_PIECES])


@settings(max_examples=1500, deadline=None)
@given(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40), st.sampled_from([8, 10, 16]))
def test_random_printable_input_raises_only_expression_error(text: str, radix: int) -> None:
    try:
        value = ev(text, radix)
    except ExpressionError as error:
        assert 0 <= error.position <= len(text)
        return
    assert 0 <= value <= MASK64


@settings(max_examples=1500, deadline=None)
@given(st.lists(FUZZ_ALPHABET, max_size=25).map("".join), st.sampled_from([8, 10, 16]))
def test_random_token_soup_raises_only_expression_error(text: str, radix: int) -> None:
    try:
        value = ev(text, radix)
    except ExpressionError as error:
        assert 0 <= error.position <= len(text)
        return
    assert 0 <= value <= MASK64
