"""cdb's MASM expression evaluator (``?``, addresses and counts of every command).

Pure: it knows nothing of the engine and asks an :class:`EvalContext` for registers,
symbols and memory, so the console, conditional breakpoints and tests share it.

Grammar (Microsoft's "MASM Numbers and Operators"), lowest precedence first::

    or |   ·   xor ^   ·   and &   ·   = == != < > <= >=   ·   << >> >>>   ·   + -
    ·   * / % mod   ·   unary: + - ~ not hi low by wo dwo qwo poi   ·   ( )

Binary operators are left-associative; arithmetic is 64-bit unsigned (results are
masked to 64 bits); comparisons are unsigned and give 1 or 0; ``=`` is ``==``; ``>>`` is
a logical and ``>>>`` an arithmetic (sign-propagating) shift; shifting by 64 or more
gives 0 (or all ones for ``>>>`` of a negative value). ``not x`` is 1 when ``x`` is 0,
else 0; ``~x`` is the bitwise complement; ``hi(x)`` is bits 16-31 and ``low(x)`` bits
0-15. ``by wo dwo qwo`` read 1, 2, 4, 8 bytes of memory, ``poi`` a pointer (8 bytes).
The unary keywords take one operand (``poi @rsp+8`` is ``poi(@rsp) + 8``).

Operands:

* numbers in ``context.radix`` (16 by default), or with a prefix ``0x`` (hex), ``0n``
  (decimal), ``0t`` (octal), ``0y`` (binary) or a suffix ``h`` (hex); a bare prefix is 0;
  a backtick may split the digits (``00007ffd`2a9e0c40``); values above 64 bits are an
  ``Overflow error``. No sign extension of 32-bit values is done.
* ``@name``: a register or pseudo-register only (``@rax``, ``@$ip``), case-insensitive.
* ``!name``: a symbol only (``context.symbol("name")``).
* ``.`` alone: the current instruction pointer (``$ip``).
* a bare word (letters, digits, ``_ . $ @ : !`` after its first character, ``!`` not
  before ``=``): **a valid number in the radix is a number** (``add``, ``ah``, ``cafe``
  are hex in radix 16, as in cdb: write ``!add`` or ``@ah`` for the others); otherwise
  a word starting with ``$`` is tried as a pseudo-register and then as a symbol, any
  other word as a symbol (``app!compute``, ``compute``, ``app`` = the module base) and
  then as a register (``rax``, ``eflags``...).
* ``$spat("string", "pattern")`` (cdb's string wildcards, case-insensitive),
  ``$scmp(a, b)``, ``$sicmp(a, b)`` (-1/0/1), ``$vvalid(address, length)`` (1 when the
  first and last bytes are readable), ``@@masm(expr)``. String literals use C escapes
  (``\\\\``, ``\\"``, ``\\n``, ``\\t``, ``\\r``); any error inside the argument list is
  ``Syntax error at '(...'``.

Errors are :class:`ExpressionError`, whose text is cdb's: ``<Kind> error at '<the
input from the failing token on>'`` (``<EOL>`` at the end), ``Numeric expression
missing from '...'`` and ``Operand error`` (divide by zero). Exceptions the context
raises other than ``KeyError`` from ``register`` and ``TargetAccessError`` (memory
reads, turned into ``Memory access error``) propagate unchanged.
"""

from __future__ import annotations

import re
from typing import Protocol

from lindbg.errors import ExpressionError as ExpressionError
from lindbg.errors import TargetAccessError

__all__ = [
    "EvalContext",
    "ExpressionError",
    "evaluate",
    "evaluate_prefix",
    "format_evaluate",
    "to_signed",
]

MASK64 = (1 << 64) - 1
_SIGN64 = 1 << 63

# Deepest nesting of parentheses and unary operators (cdb has a limit too); keeps the
# recursive-descent parser far from Python's recursion limit.
_MAX_DEPTH = 100

_WHITESPACE = " \t\r\n"
_DIGITS = "0123456789abcdef"
_PREFIX_BASES = {"x": 16, "n": 10, "t": 8, "y": 2}

# Binary operators and their precedence (higher binds tighter); words are normalised.
_BINARY_PRECEDENCE = {
    "or": 1,
    "xor": 2,
    "and": 3,
    "==": 4,
    "!=": 4,
    "<": 4,
    ">": 4,
    "<=": 4,
    ">=": 4,
    "<<": 5,
    ">>": 5,
    ">>>": 5,
    "+": 6,
    "-": 6,
    "*": 7,
    "/": 7,
    "mod": 7,
}
# Symbol spellings, longest first, mapped to their normalised names.
_SYMBOL_OPERATORS = (
    (">>>", ">>>"),
    ("<<", "<<"),
    (">>", ">>"),
    ("<=", "<="),
    (">=", ">="),
    ("==", "=="),
    ("!=", "!="),
    ("=", "=="),
    ("<", "<"),
    (">", ">"),
    ("&", "and"),
    ("|", "or"),
    ("^", "xor"),
    ("*", "*"),
    ("/", "/"),
    ("%", "mod"),
    ("+", "+"),
    ("-", "-"),
)
_WORD_OPERATORS = ("or", "xor", "and", "mod")
# Characters that can only continue an expression: met where an operand is expected,
# they mean the operand is missing.
_OPERATOR_CHARS = "*/%&|^=<>!)"

_UNARY_KEYWORDS = ("not", "hi", "low", "by", "wo", "dwo", "qwo", "poi")
_MEMORY_SIZES = {"by": 1, "wo": 2, "dwo": 4, "qwo": 8, "poi": 8}
_STRING_FUNCTIONS = ("$spat", "$scmp", "$sicmp")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r", "0": "\0"}


class EvalContext(Protocol):
    """What the evaluator asks of the debugger."""

    radix: int
    """Default radix of unprefixed numbers: 16, 10 or 8 (cdb's ``n``)."""

    def register(self, name: str) -> int:
        """Value of a register or pseudo-register, by lowercase name (``rax``, ``eax``,
        ``al``, ``rip``, ``efl``, ``$ip``, ``$retreg``, ``$csp``, ``$proc``, ``$thread``,
        ``$t0``..``$t19``); raises ``KeyError`` when there is no such register."""
        ...

    def symbol(self, name: str) -> int | None:
        """Address of ``mod!name``, ``name``, or the base of module ``mod``; None if unknown."""
        ...

    def read_pointer(self, address: int) -> int:
        """The 8-byte little-endian value at ``address``; raises MemoryAccessError."""
        ...

    def read_bytes(self, address: int, size: int) -> int:
        """The ``size``-byte (1, 2, 4 or 8) little-endian unsigned value at ``address``;
        raises MemoryAccessError."""
        ...


def to_signed(value: int) -> int:
    """``value`` as a two's-complement signed 64-bit integer."""
    value &= MASK64
    return value - (1 << 64) if value & _SIGN64 else value


def format_evaluate(value: int) -> str:
    """The line ``?`` prints: ``Evaluate expression: 26 = 00000000`0000001a``."""
    value &= MASK64
    return f"Evaluate expression: {to_signed(value)} = {value >> 32:08x}`{value & 0xFFFFFFFF:08x}"


def evaluate(text: str, context: EvalContext) -> int:
    """Evaluate the whole of ``text`` as a MASM expression; returns an unsigned 64-bit value.

    Text left over after a complete expression is a ``Syntax error``.
    """
    parser = _Parser(text, context, 0)
    value = parser.expression()
    parser.skip_whitespace()
    if parser.pos < len(text):
        raise parser.error("Syntax error at", parser.pos)
    return value


def evaluate_prefix(text: str, context: EvalContext, start: int = 0) -> tuple[int, int]:
    """Evaluate the longest expression starting at ``start`` (for commands whose
    arguments follow an expression: ``dq @rsp L4``, ``db 1000 2000``).

    Returns ``(value, end)``: ``end`` is the offset just after the expression (before
    the whitespace that follows it).
    """
    parser = _Parser(text, context, start)
    value = parser.expression()
    return value, parser.end_of_last_operand


def _is_word_start(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char in "_$.")


def _is_word_char(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char in "_$.@:`")


def _is_register_char(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char in "_$")


class _Parser:
    """Recursive descent over ``text`` (precedence climbing for binary operators)."""

    def __init__(self, text: str, context: EvalContext, start: int) -> None:
        self.text = text
        self.context = context
        self.pos = start
        self.depth = 0
        self.end_of_last_operand = start
        radix = getattr(context, "radix", 16)
        self.radix = radix if isinstance(radix, int) and 2 <= radix <= 16 else 16

    # ------------------------------------------------------------------ lexing

    def skip_whitespace(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _WHITESPACE:
            self.pos += 1

    def quote(self, position: int) -> str:
        rest = self.text[position:]
        return rest if rest.strip() else "<EOL>"

    def error(self, what: str, position: int) -> ExpressionError:
        return ExpressionError(f"{what} '{self.quote(position)}'", position)

    def read_word(self, position: int) -> str:
        """The word starting at ``position`` (which holds a word-start character)."""
        text = self.text
        end = position + 1
        while end < len(text):
            char = text[end]
            if _is_word_char(char) or (char == "!" and not text.startswith("!=", end)):
                end += 1
            else:
                break
        return text[position:end]

    def peek_binary(self) -> tuple[str, int] | None:
        """The binary operator at ``pos`` (after whitespace) as (name, length), or None."""
        text, pos = self.text, self.pos
        for spelling, name in _SYMBOL_OPERATORS:
            if text.startswith(spelling, pos):
                return name, len(spelling)
        if pos < len(text) and _is_word_start(text[pos]):
            word = self.read_word(pos)
            if word.lower() in _WORD_OPERATORS:
                return word.lower(), len(word)
        return None

    # ------------------------------------------------------------------ grammar

    def expression(self) -> int:
        return self.binary(1)

    def binary(self, min_precedence: int) -> int:
        left = self.unary()
        while True:
            self.skip_whitespace()
            operator = self.peek_binary()
            if operator is None:
                return left
            name, length = operator
            precedence = _BINARY_PRECEDENCE[name]
            if precedence < min_precedence:
                return left
            self.pos += length
            self.skip_whitespace()
            right_position = self.pos
            right = self.binary(precedence + 1)
            left = self.apply(name, left, right, right_position)

    def apply(self, name: str, left: int, right: int, right_position: int) -> int:
        if name == "+":
            return (left + right) & MASK64
        if name == "-":
            return (left - right) & MASK64
        if name == "*":
            return (left * right) & MASK64
        if name in ("/", "mod"):
            if right == 0:
                raise ExpressionError("Operand error", right_position)
            return left // right if name == "/" else left % right
        if name == "<<":
            return (left << right) & MASK64 if right < 64 else 0
        if name == ">>":
            return left >> right if right < 64 else 0
        if name == ">>>":
            return (to_signed(left) >> min(right, 63)) & MASK64
        if name == "and":
            return left & right
        if name == "xor":
            return left ^ right
        if name == "or":
            return left | right
        comparisons = {
            "==": left == right,
            "!=": left != right,
            "<": left < right,
            ">": left > right,
            "<=": left <= right,
            ">=": left >= right,
        }
        return int(comparisons[name])

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error("Syntax error at", self.pos)

    def unary(self) -> int:
        self.enter()
        try:
            value = self.unary_inner()
        finally:
            self.depth -= 1
        self.end_of_last_operand = self.pos
        return value

    def unary_inner(self) -> int:
        self.skip_whitespace()
        text, start = self.text, self.pos
        if start >= len(text):
            raise ExpressionError("Numeric expression missing from '<EOL>'", start)
        char = text[start]
        if char in "-+~":
            self.pos += 1
            operand = self.unary()
            if char == "-":
                return -operand & MASK64
            if char == "~":
                return ~operand & MASK64
            return operand
        if char == "(":
            value, _ = self.parenthesised()
            return value
        if char == "@":
            return self.at_operand(start)
        if char == "!" and start + 1 < len(text) and _is_word_start(text[start + 1]):
            word = self.read_word(start + 1)
            self.pos = start + 1 + len(word)
            address = self.context.symbol(word)
            if address is None:
                raise self.error("Couldn't resolve error at", start)
            return address & MASK64
        if _is_word_start(char):
            return self.word_operand(start)
        if char in _OPERATOR_CHARS:
            raise ExpressionError(f"Numeric expression missing from '{self.quote(start)}'", start)
        raise self.error("Syntax error at", start)

    def parenthesised(self) -> tuple[int, int]:
        """``( expression )`` at ``pos``; returns the value and the offset of ``)``."""
        self.pos += 1
        value = self.expression()
        self.skip_whitespace()
        close = self.pos
        if not self.text.startswith(")", close):
            raise self.error("Syntax error at", close)
        self.pos += 1
        return value, close

    def at_operand(self, start: int) -> int:
        text = self.text
        if text.startswith("@@", start):
            return self.evaluator_switch(start)
        end = start + 1
        while end < len(text) and _is_register_char(text[end]):
            end += 1
        name = text[start + 1 : end].lower()
        self.pos = end
        if not name:
            raise self.error("Bad register error at", start)
        try:
            return self.context.register(name) & MASK64
        except KeyError:
            raise self.error("Bad register error at", start) from None

    def evaluator_switch(self, start: int) -> int:
        """``@@masm(expr)``; other evaluators (``@@c++``, ``@@``) are not supported."""
        match = re.compile(r"@@masm\s*\(", re.IGNORECASE).match(self.text, start)
        if match is None:
            raise self.error("Syntax error at", start)
        self.pos = match.end() - 1
        value, _ = self.parenthesised()
        return value

    def word_operand(self, start: int) -> int:
        word = self.read_word(start)
        lower = word.lower()
        self.pos = start + len(word)
        if lower in _UNARY_KEYWORDS:
            return self.unary_keyword(lower)
        if lower in _STRING_FUNCTIONS or lower == "$vvalid":
            self.skip_whitespace()
            if self.text.startswith("(", self.pos):
                return self.function(lower)
            self.pos = start + len(word)
        return self.resolve_word(word, start)

    def unary_keyword(self, keyword: str) -> int:
        size = _MEMORY_SIZES.get(keyword)
        if size is None:
            operand = self.unary()
            if keyword == "not":
                return int(operand == 0)
            if keyword == "hi":
                return (operand >> 16) & 0xFFFF
            return operand & 0xFFFF  # low
        self.skip_whitespace()
        if self.text.startswith("(", self.pos):
            self.enter()
            try:
                address, after = self.parenthesised()
            finally:
                self.depth -= 1
        else:
            address = self.unary()
            self.skip_whitespace()
            after = self.pos
        try:
            if keyword == "poi":
                value = self.context.read_pointer(address)
            else:
                value = self.context.read_bytes(address, size)
        except TargetAccessError:
            raise self.error("Memory access error at", after) from None
        return value & ((1 << (8 * size)) - 1)

    def resolve_word(self, word: str, start: int) -> int:
        context = self.context
        if word == ".":
            return self.register_or_raise("$ip", start)
        number = self.number(word, start)
        if number is not None:
            return number
        if word.startswith("$"):
            try:
                return context.register(word.lower()) & MASK64
            except KeyError:
                pass
        address = context.symbol(word)
        if address is not None:
            return address & MASK64
        if not word.startswith("$"):
            try:
                return context.register(word.lower()) & MASK64
            except KeyError:
                pass
        if word[0].isdigit() and "!" not in word:
            raise self.error("Syntax error at", start)
        raise self.error("Couldn't resolve error at", start)

    def register_or_raise(self, name: str, start: int) -> int:
        try:
            return self.context.register(name) & MASK64
        except KeyError:
            raise self.error("Bad register error at", start) from None

    def number(self, word: str, start: int) -> int | None:
        """``word`` as a number, or None when it is not one; too large: Overflow error."""
        text = word.lower().replace("`", "")
        if not text:
            return None
        if len(text) >= 2 and text[0] == "0" and text[1] in _PREFIX_BASES:
            base, digits = _PREFIX_BASES[text[1]], text[2:]
            if not digits:
                return 0
        elif len(text) >= 2 and text.endswith("h"):
            base, digits = 16, text[:-1]
        else:
            base, digits = self.radix, text
        valid = _DIGITS[:base]
        if any(char not in valid for char in digits):
            return None
        significant = digits.lstrip("0")
        if len(significant) > 64 or int(significant or "0", base) > MASK64:
            raise self.error("Overflow error at", start)
        return int(significant or "0", base)

    # ------------------------------------------------------------------ functions

    def function(self, name: str) -> int:
        """``$spat $scmp $sicmp $vvalid`` with their argument list at ``pos``."""
        open_position = self.pos
        self.pos += 1
        try:
            if name == "$vvalid":
                address = self.expression()
                self.expect(",")
                length = self.expression()
                self.expect(")")
                return self.memory_valid(address, length)
            first = self.string()
            self.expect(",")
            second = self.string()
            self.expect(")")
        except ExpressionError as error:
            raise self.error("Syntax error at", open_position) from error
        if name == "$spat":
            return int(_wildcard_regex(second).fullmatch(first) is not None)
        if name == "$sicmp":
            first, second = first.lower(), second.lower()
        return ((first > second) - (first < second)) & MASK64

    def expect(self, token: str) -> None:
        self.skip_whitespace()
        if not self.text.startswith(token, self.pos):
            raise self.error("Syntax error at", self.pos)
        self.pos += len(token)

    def string(self) -> str:
        """A double-quoted string literal with C escapes."""
        self.skip_whitespace()
        text = self.text
        if not text.startswith('"', self.pos):
            raise self.error("Syntax error at", self.pos)
        pos = self.pos + 1
        chars: list[str] = []
        while pos < len(text):
            char = text[pos]
            if char == '"':
                self.pos = pos + 1
                return "".join(chars)
            if char == "\\" and pos + 1 < len(text):
                escaped = text[pos + 1]
                chars.append(_ESCAPES.get(escaped, "\\" + escaped))
                pos += 2
                continue
            chars.append(char)
            pos += 1
        raise self.error("Syntax error at", self.pos)

    def memory_valid(self, address: int, length: int) -> int:
        if length == 0:
            return 1
        try:
            self.context.read_bytes(address, 1)
            self.context.read_bytes((address + length - 1) & MASK64, 1)
        except TargetAccessError:
            return 0
        return 1


def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    """cdb's string wildcards: ``*`` any run, ``?`` one character, ``[set]``, ``#`` zero
    or more and ``+`` one or more of the previous item; case-insensitive."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char in "#+" and parts and not parts[-1].endswith(("*", "+")):
            parts.append("*" if char == "#" else "+")
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end > index + 1:
                body = pattern[index + 1 : end].replace("\\", "\\\\")
                if body.startswith("^"):
                    body = "\\" + body
                parts.append(f"[{body}]")
                index = end
            else:
                parts.append(re.escape(char))
        else:
            parts.append(re.escape(char))
        index += 1
    try:
        return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)
    except re.error:
        return re.compile(re.escape(pattern), re.IGNORECASE)
