"""The C++ expression language of ``??`` and ``dx``: parsed (pure) then evaluated.

Two steps, kept apart so that the parser can be tested on text alone:

* :func:`parse` turns the text into a :class:`Parsed` tree of frozen nodes. It knows
  no engine; the one thing C's grammar cannot decide alone -- whether ``(x)`` is a
  cast or a parenthesised expression -- it asks an ``is_type_name(name)`` callback
  (the classic C parser's typedef table), for plain and qualified names (``pair``,
  ``ns::Box<int>``). Keywords (``struct X``, ``unsigned long``) need no callback.
* :func:`evaluate` walks the tree against a :class:`CScope` (variables, types,
  registers, memory) and returns a :class:`~lindbg.symbols.values.Value` of the right
  type, following C's rules: integer promotions and the usual arithmetic conversions
  (``long`` is 64-bit), pointer arithmetic scaled by the pointee size, pointer
  difference as ``long``, arrays decaying to pointers, comparisons and ``!``/``&&``/``||``
  giving ``bool``, ``sizeof`` giving ``unsigned long``.

Grammar, lowest precedence first (all binary operators left-associative, ``?:``
right-associative)::

    ?:  ·  ||  ·  &&  ·  |  ·  ^  ·  &  ·  == !=  ·  < <= > >=  ·  << >>  ·  + -  ·  * / %
    ·  unary + - ! ~ * & sizeof, casts (type)expr  ·  postfix . -> []  ·  primary

Primaries: names (``x``, ``ns::name``, ``::name``, ``mod!name``), integer literals
(decimal, ``0x`` hex -- a backtick may split the digits as cdb prints them --, octal,
suffixes ``u l ul ll ull``), character literals (``'a'``, ``'\\n'``, ``'\\x41'``), float
literals (``1.5``, ``1e-3``, ``2.5f``), string literals, ``true``/``false``/``nullptr``,
registers ``@rax``, ``@$ip`` and pseudo-registers ``$ip``, and ``( expression )``.
Type names: ``int``, ``unsigned long``, ``struct pair``, ``ns::Box<int>``, ``const char
*``, ``int [4]``; qualifiers are accepted and dropped. Two liberties, as dx takes them:
``.`` on a pointer to a struct reads through it, and ``::name`` is looked up as ``name``
(the scope has one lookup, locals first). Not supported: assignment, ``++``/``--``,
function calls, the comma operator, C++ casts and templates in expressions.

Errors are :class:`CExprError` (an :class:`~lindbg.errors.ExpressionError`, so a
console catching the MASM evaluator's errors catches these too), worded as cdb words
its evaluator errors: ``<Kind> error at '<the input from the failing token on>'``,
``<EOL>`` at the end of the input (CDB-OUTPUT §0, §19).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from lindbg.errors import ExpressionError, MemoryAccessError
from lindbg.symbols.types import Encoding, Type, TypeKind, _synthesized_base
from lindbg.symbols.values import ReadMemory, Value, ValueUnavailableError

__all__ = [
    "BAD_REGISTER",
    "DIVIDE",
    "MEMORY",
    "OVERFLOW",
    "SYNTAX",
    "TYPE_CONFLICT",
    "UNRESOLVED",
    "Binary",
    "BoolLiteral",
    "CExprError",
    "CScope",
    "Cast",
    "CharLiteral",
    "Conditional",
    "FloatLiteral",
    "Index",
    "IntegerLiteral",
    "Member",
    "Name",
    "Node",
    "NullLiteral",
    "Parenthesized",
    "Parsed",
    "Register",
    "SizeofExpression",
    "SizeofType",
    "StringLiteral",
    "TypeName",
    "Unary",
    "builtin_type",
    "evaluate",
    "evaluate_text",
    "parse",
]

# The error kinds, as cdb spells them before " at '...'" (cdb's wording for a bad
# register and a division by zero under ``??`` is not confirmed by a transcript).
SYNTAX = "Syntax error"
UNRESOLVED = "Couldn't resolve error"
TYPE_CONFLICT = "Type conflict error"
MEMORY = "Memory access error"
BAD_REGISTER = "Bad register error"
OVERFLOW = "Overflow error"
DIVIDE = "Divide by zero error"


class CExprError(ExpressionError):
    """A C++ expression could not be parsed or evaluated; ``str()`` is cdb's message.

    ``kind`` is the error name (``"Couldn't resolve error"``), ``position`` the offset
    in the text where the quoted rest starts (``len(text)`` at the end), ``rest`` the
    quoted text (``""`` for ``<EOL>``), ``token`` the name that failed to resolve (an
    identifier, member or type name; ``""`` for other errors) and ``address`` the
    address a failed memory read was at, when known. ``dx`` words the same errors its
    own way from these fields.
    """

    def __init__(
        self, kind: str, text: str, position: int, token: str = "", address: int | None = None
    ) -> None:
        rest = text[position:] if text[position:].strip() else ""
        super().__init__(f"{kind} at '{rest or '<EOL>'}'", position)
        self.kind = kind
        self.rest = rest
        self.token = token
        self.address = address


class CScope(Protocol):
    """What the evaluator asks of the debugger (the current frame's view)."""

    def variable(self, name: str) -> Value | None:
        """The variable ``name``: locals and parameters of the current frame first, then
        globals (``mod!name`` names a module's global); None when there is none."""
        ...

    def type_named(self, name: str) -> Type | None:
        """The type spelled ``name`` (``pair``, ``struct pair``, ``unsigned int``,
        ``ns::Box<int>``); None when the debug information has none."""
        ...

    def register(self, name: str) -> int | None:
        """A register or pseudo-register by lowercase name without ``@`` (``rax``,
        ``rip``, ``$ip``); None when there is no such register."""
        ...

    def read(self) -> ReadMemory:
        """The memory reader values read through (raises MemoryAccessError)."""
        ...


# ---------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class Node:
    """A node of the tree; ``start``/``end`` delimit its text (``end`` exclusive)."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class IntegerLiteral(Node):
    value: int
    type_name: str  # "int", "unsigned int", "long", "unsigned long", "long long", ...


@dataclass(frozen=True, slots=True)
class FloatLiteral(Node):
    value: float
    type_name: str  # "double", "float", "long double"


@dataclass(frozen=True, slots=True)
class CharLiteral(Node):
    value: int  # the character's code (a char, signed on x86-64)


@dataclass(frozen=True, slots=True)
class StringLiteral(Node):
    value: bytes  # without the terminating NUL


@dataclass(frozen=True, slots=True)
class BoolLiteral(Node):
    value: bool


@dataclass(frozen=True, slots=True)
class NullLiteral(Node):
    """``nullptr``."""


@dataclass(frozen=True, slots=True)
class Name(Node):
    name: str  # "x", "ns::x", "::x", "app!x"


@dataclass(frozen=True, slots=True)
class Register(Node):
    name: str  # lowercase, without "@": "rax", "$ip"


@dataclass(frozen=True, slots=True)
class TypeName(Node):
    """A type as written in a cast or ``sizeof``: ``base`` is the specifier with its
    spelling normalised (``unsigned long``, ``struct pair``, ``ns::Box<int>``),
    ``pointers`` the count of ``*``, ``arrays`` the ``[N]`` suffixes outermost first."""

    base: str
    pointers: int = 0
    arrays: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str  # "+", "-", "!", "~", "*", "&"
    operand: Node


@dataclass(frozen=True, slots=True)
class SizeofExpression(Node):
    operand: Node


@dataclass(frozen=True, slots=True)
class SizeofType(Node):
    type: TypeName


@dataclass(frozen=True, slots=True)
class Cast(Node):
    type: TypeName
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Conditional(Node):
    condition: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True, slots=True)
class Member(Node):
    operand: Node
    name: str
    arrow: bool  # "->" rather than "."
    name_start: int  # where the member name is in the text (for "Couldn't resolve")


@dataclass(frozen=True, slots=True)
class Index(Node):
    operand: Node
    index: Node


@dataclass(frozen=True, slots=True)
class Parenthesized(Node):
    """``( inner )``: kept so that a value's name is the text as written."""

    inner: Node


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed expression: the text it came from (errors quote it) and its tree."""

    text: str
    root: Node


# ---------------------------------------------------------------------------- lexer

# Deepest nesting of parentheses and unary operators; keeps the recursive descent far
# from Python's recursion limit (cdb has such a limit too).
_MAX_DEPTH = 100

_PUNCTUATORS = (
    "->",
    "<<",
    ">>",
    "<=",
    ">=",
    "==",
    "!=",
    "&&",
    "||",
    "(",
    ")",
    "[",
    "]",
    ".",
    "+",
    "-",
    "*",
    "/",
    "%",
    "<",
    ">",
    "!",
    "~",
    "&",
    "^",
    "|",
    "?",
    ":",
    ",",
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A name: identifiers joined by "::", optionally "::"-rooted, optionally "module!" first.
# "!" only joins when no space surrounds it and it is not "!=".
_NAME = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*!(?!=)(?=[A-Za-z_:]))?(?:::)?[A-Za-z_]\w*(?:::[A-Za-z_~]\w*)*")
_FLOAT = re.compile(r"(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+")
_INTEGER = re.compile(r"0[xX][0-9a-fA-F`]+|\d+")
_INTEGER_SUFFIX = re.compile(r"(?:[uU](?:ll|LL|[lL])?|(?:ll|LL|[lL])[uU]?)?")
_REGISTER = re.compile(r"@\$?\w+|\$\w+")
_ESCAPES = {
    "n": 10,
    "t": 9,
    "r": 13,
    "0": 0,
    "a": 7,
    "b": 8,
    "f": 12,
    "v": 11,
    "\\": 92,
    "'": 39,
    '"': 34,
    "?": 63,
}

# Keywords that make up builtin type names, and the canonical spelling of each
# combination (sorted keyword tuple -> name); "signed" alone and "int" are optional.
_TYPE_KEYWORDS = frozenset(
    {"void", "char", "short", "int", "long", "float", "double", "signed", "unsigned", "bool", "_Bool"}
    | {"wchar_t", "char16_t", "char32_t", "char8_t", "__int128"}
)
_QUALIFIERS = frozenset({"const", "volatile", "restrict", "__restrict"})
_TAGS = frozenset({"struct", "union", "enum", "class"})
_KEYWORDS = _TYPE_KEYWORDS | _QUALIFIERS | _TAGS | {"sizeof", "true", "false", "nullptr"}

_UNSIGNED_LONG = "unsigned long"


def _builtin_spelling(words: list[str]) -> str | None:
    """The canonical name of a list of builtin type keywords, or None if invalid."""
    counts = {word: words.count(word) for word in set(words)}
    signed = counts.pop("signed", 0)
    unsigned = counts.pop("unsigned", 0)
    longs = counts.pop("long", 0)
    if signed + unsigned > 1 or longs > 2 or any(n > 1 for n in counts.values()):
        return None
    has_int = counts.pop("int", 0)
    base = next(iter(counts), None)
    if len(counts) > 1:
        return None
    if base == "_Bool":
        base = "bool"
    sign = "unsigned " if unsigned else ""
    if base is None:  # "unsigned", "long", "short int", "signed long long" ...
        core = {0: "int", 1: "long", 2: "long long"}[longs]
        return sign + core
    if base == "short" and not longs:
        return sign + "short"
    if base == "char" and not longs and not has_int:
        return "signed char" if signed else sign + "char"
    if base == "__int128" and not longs and not has_int:
        return "__int128 unsigned" if unsigned else base  # gdb's spelling
    if signed + unsigned + has_int:
        return None
    if base == "double" and longs == 1:
        return "long double"
    if longs:
        return None
    return base  # void float double bool wchar_t char8_t char16_t char32_t


def builtin_type(name: str) -> Type | None:
    """The synthesized Type of a builtin arithmetic type by canonical name (``int``,
    ``unsigned long``, ``double``, ``bool``...), or None for another name. The same
    object each time, so that results of one type compare and print alike."""
    cached = _BUILTIN_CACHE.get(name)
    if cached is None:
        # types.py owns the table of C base types (sizes and encodings on x86-64).
        cached = _synthesized_base(name, False)
        if cached is None:
            return None
        _BUILTIN_CACHE[name] = cached
    return cached


_BUILTIN_CACHE: dict[str, Type] = {}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "int", "float", "char", "string", "name", "register", "punct", "end"
    text: str
    start: int
    end: int
    value: int | float | bytes | str | None = None
    suffix: str = ""


def _normalise_template(text: str) -> str:
    """A template-id's spelling as DWARF writes it: no blanks but between two word
    characters, one blank after each comma (``Box< int >`` -> ``Box<int>``)."""
    compact = re.sub(r"\s+", " ", text.strip())
    compact = re.sub(r"(?<=\W) | (?=\W)", "", compact)
    return compact.replace(",", ", ")


# ---------------------------------------------------------------------------- parser


def parse(text: str, is_type_name: Callable[[str], bool] | None = None) -> Parsed:
    """Parse the whole of ``text`` as a C++ expression.

    ``is_type_name(name)`` says whether a name (``pair``, ``ns::Box<int>``) names a
    type, which decides casts and ``sizeof(type)``; without it no plain name is one.
    Raises :class:`CExprError` (``Syntax error at '...'``, ``Overflow error at '...'``).
    """
    parser = _Parser(text, is_type_name or (lambda name: False))
    root = parser.expression()
    token = parser.peek()
    if token.kind != "end":
        raise parser.error(SYNTAX, token.start)
    return Parsed(text, root)


class _Parser:
    """Recursive descent over ``text``; tokens are lexed on demand at a position, so
    that trying a type name and backing off is just resetting ``pos``."""

    def __init__(self, text: str, is_type_name: Callable[[str], bool]) -> None:
        self.text = text
        self.is_type_name = is_type_name
        self.pos = 0
        self.depth = 0
        self._tokens: dict[int, _Token] = {}

    def error(self, kind: str, position: int, token: str = "") -> CExprError:
        return CExprError(kind, self.text, position, token)

    # ------------------------------------------------------------ lexing

    def peek(self) -> _Token:
        token = self._tokens.get(self.pos)
        if token is None:
            token = self._tokens[self.pos] = self._lex(self.pos)
        return token

    def advance(self) -> _Token:
        token = self.peek()
        self.pos = token.end
        return token

    def at(self, *texts: str) -> bool:
        token = self.peek()
        return token.kind in ("punct", "name") and token.text in texts

    def expect(self, text: str) -> _Token:
        token = self.peek()
        if token.kind != "punct" or token.text != text:
            raise self.error(SYNTAX, token.start)
        return self.advance()

    def _lex(self, pos: int) -> _Token:
        text = self.text
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return _Token("end", "", pos, pos)
        char = text[pos]
        if char.isdigit() or (char == "." and text[pos + 1 : pos + 2].isdigit()):
            return self._lex_number(pos)
        if char in "'\"":
            return self._lex_quoted(pos)
        if char in "@$":
            match = _REGISTER.match(text, pos)
            if match is None:
                raise self.error(SYNTAX, pos)
            name = match.group().lstrip("@").lower()
            return _Token("register", match.group(), pos, match.end(), name)
        match = _NAME.match(text, pos)
        if match is not None:
            return _Token("name", match.group(), pos, match.end(), match.group())
        for punctuator in _PUNCTUATORS:
            if text.startswith(punctuator, pos):
                return _Token("punct", punctuator, pos, pos + len(punctuator))
        raise self.error(SYNTAX, pos)

    def _lex_number(self, pos: int) -> _Token:
        text = self.text
        match = _FLOAT.match(text, pos)
        if match is not None:
            end = match.end()
            suffix = text[end : end + 1].lower() if text[end : end + 1] in ("f", "F", "l", "L") else ""
            end += len(suffix)
            self._check_number_end(pos, end)
            return _Token("float", text[pos:end], pos, end, float(match.group()), suffix)
        match = _INTEGER.match(text, pos)
        assert match is not None  # the caller saw a digit
        digits = match.group().replace("`", "")
        if digits[:2].lower() == "0x":
            if len(digits) == 2:
                raise self.error(SYNTAX, pos)
            value = int(digits, 16)
        elif len(digits) > 1 and digits[0] == "0":
            if any(digit in "89" for digit in digits):
                raise self.error(SYNTAX, pos)
            value = int(digits, 8)
        else:
            value = int(digits)
        suffix_match = _INTEGER_SUFFIX.match(text, match.end())
        end = suffix_match.end() if suffix_match is not None else match.end()
        self._check_number_end(pos, end)
        if value >> 64:
            raise self.error(OVERFLOW, pos)
        suffix = text[match.end() : end].lower()
        return _Token("int", text[pos:end], pos, end, value, suffix)

    def _check_number_end(self, start: int, end: int) -> None:
        """A number glued to letters (``12ab``, ``1.5x``) is a syntax error."""
        following = self.text[end : end + 1]
        if following and (following.isalnum() or following in "_."):
            raise self.error(SYNTAX, start)

    def _lex_quoted(self, pos: int) -> _Token:
        text = self.text
        quote = text[pos]
        codes: list[int] = []
        index = pos + 1
        while True:
            if index >= len(text):
                raise self.error(SYNTAX, pos)
            char = text[index]
            if char == quote:
                break
            if char == "\\":
                code, index = self._escape(pos, index + 1)
                codes.append(code)
                continue
            codes.extend(char.encode("utf-8"))
            index += 1
        end = index + 1
        if quote == '"':
            return _Token("string", text[pos:end], pos, end, bytes(codes))
        if len(codes) != 1:
            raise self.error(SYNTAX, pos)
        return _Token("char", text[pos:end], pos, end, codes[0])

    def _escape(self, literal_start: int, index: int) -> tuple[int, int]:
        """The code of the escape sequence after a backslash at ``index``; returns
        (code, offset after it)."""
        text = self.text
        char = text[index : index + 1]
        if char == "x":
            match = re.compile(r"[0-9a-fA-F]{1,2}").match(text, index + 1)
            if match is None:
                raise self.error(SYNTAX, literal_start)
            return int(match.group(), 16), match.end()
        if char in "01234567" and char:
            match = re.compile(r"[0-7]{1,3}").match(text, index)
            assert match is not None
            return int(match.group(), 8) & 0xFF, match.end()
        if char in _ESCAPES and char:
            return _ESCAPES[char], index + 1
        raise self.error(SYNTAX, literal_start)

    # ------------------------------------------------------------ expressions

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(SYNTAX, self.peek().start)

    def expression(self) -> Node:
        self.enter()
        try:
            return self.conditional()
        finally:
            self.depth -= 1

    def conditional(self) -> Node:
        condition = self.binary(0)
        if not self.at("?"):
            return condition
        self.advance()
        then = self.expression()
        self.expect(":")
        otherwise = self.expression()
        return Conditional(condition.start, otherwise.end, condition, then, otherwise)

    def binary(self, level: int) -> Node:
        if level == len(_BINARY_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while True:
            token = self.peek()
            if token.kind != "punct" or token.text not in _BINARY_LEVELS[level]:
                return left
            self.advance()
            right = self.binary(level + 1)
            left = Binary(left.start, right.end, token.text, left, right)

    def unary(self) -> Node:
        self.enter()
        try:
            return self._unary()
        finally:
            self.depth -= 1

    def _unary(self) -> Node:
        token = self.peek()
        if token.kind == "punct" and token.text in ("+", "-", "!", "~", "*", "&"):
            self.advance()
            operand = self.unary()
            return Unary(token.start, operand.end, token.text, operand)
        if token.kind == "name" and token.text == "sizeof":
            self.advance()
            if self.at("("):
                saved = self.pos
                self.advance()
                type_name = self.type_name()
                if type_name is not None:
                    close = self.expect(")")
                    return SizeofType(token.start, close.end, type_name)
                self.pos = saved
            operand = self.unary()
            return SizeofExpression(token.start, operand.end, operand)
        if token.kind == "punct" and token.text == "(":
            saved = self.pos
            self.advance()
            type_name = self.type_name()
            if type_name is not None:
                self.expect(")")
                operand = self.unary()
                return Cast(token.start, operand.end, type_name, operand)
            self.pos = saved
        return self.postfix()

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            token = self.peek()
            if token.kind != "punct":
                return node
            if token.text in (".", "->"):
                self.advance()
                member = self.peek()
                if (
                    member.kind != "name"
                    or member.text in _KEYWORDS
                    or not _IDENTIFIER.fullmatch(member.text)
                ):
                    raise self.error(SYNTAX, member.start)
                self.advance()
                node = Member(node.start, member.end, node, member.text, token.text == "->", member.start)
            elif token.text == "[":
                self.advance()
                index = self.expression()
                close = self.expect("]")
                node = Index(node.start, close.end, node, index)
            else:
                return node

    def primary(self) -> Node:
        token = self.peek()
        start, end = token.start, token.end
        if token.kind == "int":
            self.advance()
            assert isinstance(token.value, int)
            return IntegerLiteral(start, end, token.value, _integer_literal_type(token.value, token))
        if token.kind == "float":
            self.advance()
            assert isinstance(token.value, float)
            type_name = {"": "double", "f": "float", "l": "long double"}[token.suffix]
            return FloatLiteral(start, end, token.value, type_name)
        if token.kind == "char":
            self.advance()
            assert isinstance(token.value, int)
            return CharLiteral(start, end, token.value)
        if token.kind == "string":
            self.advance()
            assert isinstance(token.value, bytes)
            return StringLiteral(start, end, token.value)
        if token.kind == "register":
            self.advance()
            assert isinstance(token.value, str)
            return Register(start, end, token.value)
        if token.kind == "name" and token.text not in _KEYWORDS - {"true", "false", "nullptr"}:
            self.advance()
            if token.text in ("true", "false"):
                return BoolLiteral(start, end, token.text == "true")
            if token.text == "nullptr":
                return NullLiteral(start, end)
            return Name(start, end, token.text)
        if token.kind == "punct" and token.text == "(":
            self.advance()
            inner = self.expression()
            close = self.expect(")")
            return Parenthesized(start, close.end, inner)
        raise self.error(SYNTAX, token.start)

    # ------------------------------------------------------------ type names

    def type_name(self) -> TypeName | None:
        """A type name at ``pos`` (followed by what a cast or sizeof needs), or None
        (``pos`` unchanged) when the text there is not one."""
        start = self.pos
        first = self.peek()
        base = self.type_specifier()
        if base is None:
            self.pos = start
            return None
        pointers = 0
        while True:
            token = self.peek()
            if token.kind == "punct" and token.text == "*":
                pointers += 1
                self.advance()
            elif token.kind == "name" and token.text in _QUALIFIERS:
                self.advance()
            elif token.kind == "punct" and token.text == "&":
                # A reference cast reads the object as the referenced type would.
                self.advance()
            else:
                break
        arrays: list[int] = []
        while self.at("["):
            self.advance()
            size = self.peek()
            if size.kind != "int":
                raise self.error(SYNTAX, size.start)
            self.advance()
            self.expect("]")
            assert isinstance(size.value, int)
            arrays.append(size.value)
        return TypeName(first.start, self.pos, base, pointers, tuple(arrays))

    def type_specifier(self) -> str | None:
        keywords: list[str] = []
        while True:
            token = self.peek()
            if token.kind != "name":
                break
            word = token.text
            if word in _QUALIFIERS:
                self.advance()
            elif word in _TYPE_KEYWORDS:
                keywords.append(word)
                self.advance()
            elif word in _TAGS and not keywords:
                self.advance()
                tag = self.peek()
                if tag.kind != "name" or tag.text in _KEYWORDS:
                    raise self.error(SYNTAX, tag.start)
                self.advance()
                tag_name = self.template_suffix(tag.text, tag.end, lambda candidate: True) or tag.text
                return f"{word} {tag_name}"
            elif not keywords and word not in _KEYWORDS:
                template = self.template_suffix(word, token.end, self.is_type_name)
                if template is not None:
                    return template
                if self.is_type_name(word):
                    self.advance()
                    return word
                return None
            else:
                break
        if not keywords:
            return None
        spelling = _builtin_spelling(keywords)
        if spelling is None:
            raise self.error(SYNTAX, self.peek().start)
        return spelling

    def template_suffix(self, name: str, name_end: int, accept: Callable[[str], bool]) -> str | None:
        """``name<args>`` (and ``::more`` after it) when a ``<`` follows ``name_end``
        and ``accept`` takes the whole spelling; then ``pos`` moves past it."""
        text = self.text
        index = name_end
        while index < len(text) and text[index].isspace():
            index += 1
        if not text.startswith("<", index) or text.startswith("<<", index):
            return None
        depth = 0
        close = index
        while close < len(text):
            if text[close] == "<":
                depth += 1
            elif text[close] == ">":
                depth -= 1
                if depth == 0:
                    break
            elif text[close] in "();":
                return None
            close += 1
        else:
            return None
        suffix = _SCOPED_SUFFIX.match(text, close + 1)
        end = suffix.end() if suffix is not None else close + 1
        spelling = _normalise_template(name + text[index:end])
        # Older gcc spells nested template closers "> >".
        for candidate in (spelling, spelling.replace(">>", "> >")):
            if accept(candidate):
                self.pos = end
                return candidate
        return None


_SCOPED_SUFFIX = re.compile(r"(?:::[A-Za-z_]\w*)*")


# Binary operators by precedence level, lowest first.
_BINARY_LEVELS: tuple[tuple[str, ...], ...] = (
    ("||",),
    ("&&",),
    ("|",),
    ("^",),
    ("&",),
    ("==", "!="),
    ("<", "<=", ">", ">="),
    ("<<", ">>"),
    ("+", "-"),
    ("*", "/", "%"),
)


def _integer_literal_type(value: int, token: _Token) -> str:
    """C's type of an integer literal: the first of the candidate types for its
    suffix and base that holds the value (decimal literals never become unsigned
    without ``u``)."""
    suffix = token.suffix
    unsigned = "u" in suffix
    longs = suffix.count("l")
    digits = token.text[: len(token.text) - len(suffix)]
    decimal = digits == "0" or not digits.startswith("0")
    candidates: list[str] = []
    if longs == 0:
        candidates += ["unsigned int"] if unsigned else ["int"] if decimal else ["int", "unsigned int"]
    if longs <= 1:
        candidates += [_UNSIGNED_LONG] if unsigned else ["long"] if decimal else ["long", _UNSIGNED_LONG]
    candidates += ["unsigned long long"] if unsigned else ["long long", "unsigned long long"]
    for name in candidates:
        candidate = _builtin(name)
        bits = 8 * (candidate.size or 8) - candidate.is_signed
        if value < 1 << bits:
            return name
    return "unsigned long long"


# ---------------------------------------------------------------------------- evaluator


def evaluate_text(text: str, scope: CScope) -> Value:
    """Parse ``text`` (a name is a type name when the scope knows a type by it and no
    variable) and evaluate it; raises :class:`CExprError`."""

    def is_type_name(name: str) -> bool:
        return scope.type_named(name) is not None and scope.variable(name) is None

    return evaluate(parse(text, is_type_name), scope)


def evaluate(parsed: Parsed, scope: CScope) -> Value:
    """The value of a parsed expression, named by its text (``p->next``).

    Values read from memory are lazy; a scalar that an operator or a dereference
    produces is read at once, so an unreadable one is a ``Memory access error`` here
    and not later. Raises :class:`CExprError`; errors the scope raises other than
    memory and unavailable-value errors propagate unchanged.
    """
    return _Evaluator(parsed.text, scope).value(parsed.root)


@dataclass(frozen=True, slots=True)
class _Arith:
    """An arithmetic operand: its Python value and the (promoted) type it has."""

    value: int | float
    type: Type


class _Evaluator:
    def __init__(self, text: str, scope: CScope) -> None:
        self.text = text
        self.scope = scope
        self.reader = scope.read()
        # Under sizeof nothing is read: C does not evaluate sizeof's operand.
        self.unevaluated = 0

    def error(self, kind: str, position: int, token: str = "", address: int | None = None) -> CExprError:
        return CExprError(kind, self.text, position, token, address)

    def source(self, node: Node) -> str:
        return self.text[node.start : node.end].strip()

    # ------------------------------------------------------------ dispatch

    def value(self, node: Node) -> Value:
        return self._value(node).with_name(self.source(node))

    def _value(self, node: Node) -> Value:
        if isinstance(node, IntegerLiteral):
            return self.make(_builtin(node.type_name), node.value)
        if isinstance(node, FloatLiteral):
            return self.make(_builtin(node.type_name), node.value)
        if isinstance(node, CharLiteral):
            return self.make(_builtin("char"), node.value)
        if isinstance(node, BoolLiteral):
            return self.make(_builtin("bool"), int(node.value))
        if isinstance(node, NullLiteral):
            return self.make(_void().pointer_to(), 0)
        if isinstance(node, StringLiteral):
            data = node.value + b"\0"
            return Value.from_bytes(_builtin("char").array_of(len(data)), data, self.reader)
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, Register):
            value = self.scope.register(node.name)
            if value is None:
                raise self.error(BAD_REGISTER, node.start, node.name)
            return self.make(_builtin(_UNSIGNED_LONG), value)
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, SizeofExpression):
            self.unevaluated += 1
            try:
                operand_type = self.value(node.operand).type
            finally:
                self.unevaluated -= 1
            return self.sizeof(operand_type, node)
        if isinstance(node, SizeofType):
            return self.sizeof(self.resolve_type(node.type), node)
        if isinstance(node, Cast):
            return self.cast(self.value(node.operand), self.resolve_type(node.type), node)
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Conditional):
            return self.conditional(node)
        if isinstance(node, Member):
            return self.member(node)
        if isinstance(node, Index):
            return self.index(node)
        if isinstance(node, Parenthesized):
            return self._value(node.inner)
        raise AssertionError(f"unknown node {node!r}")

    def name(self, node: Name) -> Value:
        # "::x" asks for the global x; the scope has one lookup, locals first.
        name = node.name[2:] if node.name.startswith("::") else node.name
        value = self.scope.variable(name)
        if value is None:
            raise self.error(UNRESOLVED, node.start, node.name)
        return value

    # ------------------------------------------------------------ helpers

    def make(self, type_: Type, number: int | float) -> Value:
        """A computed Value of ``type_`` holding ``number``, converted as C converts:
        integers wrap, floats truncate toward zero, to bool is ``!= 0``, a float too
        large for ``float`` is infinite."""
        stripped = type_.strip_typedefs()
        if stripped.kind == TypeKind.BASE and stripped.is_float:
            try:
                return Value.from_float(type_, float(number))
            except OverflowError:
                return Value.from_float(type_, math.copysign(math.inf, number))
        if stripped.kind == TypeKind.BASE and stripped.encoding == Encoding.BOOLEAN:
            number = int(number != 0)
        elif isinstance(number, float):
            number = int(number) if math.isfinite(number) else 0
        size = stripped.size or 0
        data = (number & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        # Pointers keep the reader, so that a computed pointer can be dereferenced.
        return Value.from_bytes(type_, data, self.reader)

    def resolve_type(self, type_name: TypeName) -> Type:
        base = self.named_type(type_name)
        result = base
        for _ in range(type_name.pointers):
            result = result.pointer_to()
        for length in reversed(type_name.arrays):
            result = result.array_of(length)
        return result

    def named_type(self, type_name: TypeName) -> Type:
        name = type_name.base
        found = self.scope.type_named(name)
        if found is not None:
            return found
        if name == "void":
            return _void()
        builtin = builtin_type(name)
        if builtin is not None:
            return builtin
        raise self.error(UNRESOLVED, type_name.start, name)

    def rvalue(self, value: Value, node: Node) -> Value:
        """``value`` with references followed (C++ references are transparent)."""
        if value.type.strip_typedefs().kind in (TypeKind.REFERENCE, TypeKind.RVALUE_REFERENCE):
            return self.guard(value.deref, node)
        return value

    def guard(self, action: Callable[[], Value], node: Node) -> Value:
        """Run a value operation, turning unreadable/unavailable into cdb's error."""
        try:
            return action()
        except MemoryAccessError as error:
            raise self.error(MEMORY, node.end, address=error.address) from error
        except ValueUnavailableError as error:
            raise self.error(MEMORY, node.end) from error

    def loaded(self, value: Value, node: Node) -> Value:
        """``value`` read now when it is a scalar, so that a bad address fails here."""
        if self.unevaluated or value.type.strip_typedefs().is_aggregate:
            return value
        try:
            value.data()
        except MemoryAccessError as error:
            raise self.error(MEMORY, node.end, address=error.address) from error
        except ValueUnavailableError:
            pass  # an optimised-out value is shown as such, not an error
        return value

    def arith(self, value: Value, node: Node) -> _Arith | None:
        """An arithmetic operand (promoted), or None when ``value`` is not arithmetic."""
        stripped = value.type.strip_typedefs()
        if stripped.kind == TypeKind.ENUM or (stripped.kind == TypeKind.BASE and stripped.is_integer):
            promoted = _promoted(stripped)
            return _Arith(self.number(value, node, int), promoted)
        if stripped.kind == TypeKind.BASE and stripped.is_float:
            return _Arith(self.number(value, node, float), stripped)
        return None

    def number(self, value: Value, node: Node, kind: Callable[[Value], int | float]) -> int | float:
        if self.unevaluated:
            return 0
        try:
            return kind(value)
        except MemoryAccessError as error:
            raise self.error(MEMORY, node.end, address=error.address) from error
        except ValueUnavailableError as error:
            raise self.error(MEMORY, node.end) from error

    def pointer(self, value: Value, node: Node) -> tuple[int, Type] | None:
        """A pointer operand as (address, pointee type), arrays and functions decayed;
        None when ``value`` is not one."""
        stripped = value.type.strip_typedefs()
        if stripped.kind == TypeKind.POINTER:
            target = stripped.target if stripped.target is not None else _void()
            return int(self.number(value, node, int)), target
        if stripped.kind == TypeKind.ARRAY and stripped.target is not None:
            if value.address is None:
                raise self.error(TYPE_CONFLICT, node.end)
            return value.address, stripped.target
        if stripped.kind == TypeKind.FUNCTION and value.address is not None:
            return value.address, stripped
        return None

    def scalar_truth(self, value: Value, node: Node) -> bool:
        arith = self.arith(value, node)
        if arith is not None:
            return bool(arith.value)
        pointer = self.pointer(value, node)
        if pointer is not None:
            return pointer[0] != 0
        raise self.error(TYPE_CONFLICT, node.end)

    def sizeof(self, type_: Type, node: Node) -> Value:
        size = type_.size
        if size is None:
            raise self.error(TYPE_CONFLICT, node.end)
        return self.make(_builtin(_UNSIGNED_LONG), size)

    def element_size(self, target: Type, node: Node) -> int:
        """The pointee size pointer arithmetic scales by (1 for void, as GNU C does)."""
        stripped = target.strip_typedefs()
        if stripped.kind in (TypeKind.VOID, TypeKind.FUNCTION):
            return 1
        if stripped.size is None:
            raise self.error(TYPE_CONFLICT, node.end)
        return stripped.size

    # ------------------------------------------------------------ operators

    def unary(self, node: Unary) -> Value:
        operand = self.rvalue(self.value(node.operand), node.operand)
        op = node.op
        if op == "&":
            if operand.address is None:
                raise self.error(TYPE_CONFLICT, node.end)
            return self.guard(operand.address_of, node)
        if op == "*":
            return self.dereference(operand, node)
        if op == "!":
            return self.make(_builtin("bool"), int(not self.scalar_truth(operand, node.operand)))
        arith = self.arith(operand, node.operand)
        if arith is None or (op == "~" and isinstance(arith.value, float)):
            raise self.error(TYPE_CONFLICT, node.end)
        if op == "-":
            return self.make(arith.type, -arith.value)
        if op == "~":
            return self.make(arith.type, ~int(arith.value))
        return self.make(arith.type, arith.value)

    def dereference(self, operand: Value, node: Node) -> Value:
        stripped = operand.type.strip_typedefs()
        if stripped.kind == TypeKind.ARRAY:
            return self.element(operand, 0, node)
        if stripped.kind != TypeKind.POINTER:
            raise self.error(TYPE_CONFLICT, node.end)
        target = stripped.target.strip_typedefs() if stripped.target is not None else None
        if target is None or target.kind in (TypeKind.VOID, TypeKind.FUNCTION):
            raise self.error(TYPE_CONFLICT, node.end)
        return self.loaded(self.pointee(operand, node), node)

    def pointee(self, pointer: Value, node: Node) -> Value:
        """What a pointer points to. Under sizeof the pointer itself is not read (C
        does not evaluate sizeof's operand): only the pointee's type matters."""
        if self.unevaluated:
            target = pointer.type.strip_typedefs().target
            assert target is not None  # the callers checked it is a typed pointer
            return Value.from_memory(target, 0, self.reader)
        return self.guard(pointer.deref, node)

    def element(self, base: Value, index: int, node: Node) -> Value:
        """``base[index]`` for an array or pointer ``base``."""
        stripped = base.type.strip_typedefs()
        if stripped.kind == TypeKind.ARRAY and base.address is None:
            # A computed array (a register or composite location): index its bytes.
            length = stripped.length
            if length is not None and not 0 <= index < length:
                raise self.error(MEMORY, node.end)
            return self.loaded(self.guard(lambda: base[index], node), node)
        pointer = self.pointer(base, node)
        if pointer is None:
            raise self.error(TYPE_CONFLICT, node.end)
        address, target = pointer
        if target.strip_typedefs().kind in (TypeKind.VOID, TypeKind.FUNCTION):
            raise self.error(TYPE_CONFLICT, node.end)
        size = self.element_size(target, node)
        element = Value.from_memory(target, (address + index * size) & _MASK64, self.reader)
        return self.loaded(element, node)

    def index(self, node: Index) -> Value:
        base = self.rvalue(self.value(node.operand), node.operand)
        index = self.rvalue(self.value(node.index), node.index)
        if self.pointer(base, node.operand) is None and self.pointer(index, node.index) is not None:
            base, index = index, base  # i[a] is a[i]
        arith = self.arith(index, node.index)
        if arith is None or isinstance(arith.value, float):
            raise self.error(TYPE_CONFLICT, node.end)
        return self.element(base, int(arith.value), node)

    def member(self, node: Member) -> Value:
        base = self.rvalue(self.value(node.operand), node.operand)
        stripped = base.type.strip_typedefs()
        # "." on a pointer to a struct reads through it, as dx does; "->" needs one.
        if stripped.kind == TypeKind.POINTER:
            target = stripped.target.strip_typedefs() if stripped.target is not None else None
            if target is None or target.kind not in _RECORD_KINDS:
                raise self.error(TYPE_CONFLICT, node.name_start)
            base = self.pointee(base, node.operand)
        elif node.arrow or stripped.kind not in _RECORD_KINDS:
            raise self.error(TYPE_CONFLICT, node.name_start)
        try:
            field = base[node.name]
        except KeyError:
            raise self.error(UNRESOLVED, node.name_start, node.name) from None
        return self.loaded(field, node)

    def cast(self, operand: Value, target: Type, node: Cast) -> Value:
        operand = self.rvalue(operand, node.operand)
        stripped = target.strip_typedefs()
        if stripped.kind == TypeKind.VOID:
            return operand
        if stripped.kind in (TypeKind.BASE, TypeKind.ENUM, TypeKind.POINTER):
            arith = self.arith(operand, node.operand)
            if arith is not None:
                if stripped.kind == TypeKind.POINTER and isinstance(arith.value, float):
                    raise self.error(TYPE_CONFLICT, node.end)
                return self.make(target, arith.value)
            pointer = self.pointer(operand, node.operand)
            if pointer is not None:
                if stripped.kind == TypeKind.BASE and stripped.is_float:
                    raise self.error(TYPE_CONFLICT, node.end)
                return self.make(target, pointer[0])
        try:
            return self.guard(lambda: operand.cast(target), node)
        except (TypeError, ValueError) as error:
            raise self.error(TYPE_CONFLICT, node.end) from error

    def conditional(self, node: Conditional) -> Value:
        condition = self.rvalue(self.value(node.condition), node.condition)
        chosen = node.then if self.scalar_truth(condition, node.condition) else node.otherwise
        result = self.rvalue(self.value(chosen), chosen)
        other = node.otherwise if chosen is node.then else node.then
        # Both arms arithmetic: the result has their common type, as in C. The other arm
        # is only looked at for its type (nothing of it is read).
        self.unevaluated += 1
        try:
            other_arith = self.arith(self.rvalue(self.value(other), other), other)
        except CExprError:
            other_arith = None
        finally:
            self.unevaluated -= 1
        arith = self.arith(result, chosen)
        if arith is not None and other_arith is not None:
            common = _common_type(arith.type, other_arith.type)
            return self.make(common, arith.value)
        return result

    def binary(self, node: Binary) -> Value:
        op = node.op
        left = self.rvalue(self.value(node.left), node.left)
        if op in ("&&", "||"):
            truth = self.scalar_truth(left, node.left)
            if truth == (op == "||"):
                return self.make(_builtin("bool"), int(truth))
            right = self.rvalue(self.value(node.right), node.right)
            return self.make(_builtin("bool"), int(self.scalar_truth(right, node.right)))
        right = self.rvalue(self.value(node.right), node.right)
        left_arith = self.arith(left, node.left)
        right_arith = self.arith(right, node.right)
        if left_arith is not None and right_arith is not None:
            return self.arithmetic(op, left_arith, right_arith, node)
        return self.pointer_binary(op, left, right, left_arith, right_arith, node)

    def pointer_binary(
        self,
        op: str,
        left: Value,
        right: Value,
        left_arith: _Arith | None,
        right_arith: _Arith | None,
        node: Binary,
    ) -> Value:
        left_pointer = self.pointer(left, node.left)
        right_pointer = self.pointer(right, node.right)
        integer_right = right_arith is not None and not isinstance(right_arith.value, float)
        integer_left = left_arith is not None and not isinstance(left_arith.value, float)
        if op in ("+", "-") and left_pointer is not None and integer_right:
            assert right_arith is not None
            address, target = left_pointer
            step = int(right_arith.value) * self.element_size(target, node)
            return self.make(target.pointer_to(), address + step if op == "+" else address - step)
        if op == "+" and right_pointer is not None and integer_left:
            assert left_arith is not None
            address, target = right_pointer
            return self.make(
                target.pointer_to(), address + int(left_arith.value) * self.element_size(target, node)
            )
        if op == "-" and left_pointer is not None and right_pointer is not None:
            size = self.element_size(left_pointer[1], node)
            if self.element_size(right_pointer[1], node) != size:
                raise self.error(TYPE_CONFLICT, node.end)
            difference = _to_signed(left_pointer[0] - right_pointer[0], 8)
            return self.make(_builtin("long"), _c_divide(difference, size))
        if op in _COMPARISONS:
            # Pointers compare by address, with each other or with an integer (0 mostly).
            left_address = left_pointer[0] if left_pointer else _integer(left_arith)
            right_address = right_pointer[0] if right_pointer else _integer(right_arith)
            if left_address is not None and right_address is not None:
                outcome = _COMPARISONS[op](left_address & _MASK64, right_address & _MASK64)
                return self.make(_builtin("bool"), int(outcome))
        raise self.error(TYPE_CONFLICT, node.end)

    def arithmetic(self, op: str, left: _Arith, right: _Arith, node: Binary) -> Value:
        if op in ("<<", ">>"):
            if isinstance(left.value, float) or isinstance(right.value, float):
                raise self.error(TYPE_CONFLICT, node.end)
            return self.make(left.type, _shift(op, int(left.value), int(right.value), left.type))
        common = _common_type(left.type, right.type)
        floating = bool(common.is_float)
        a: int | float = float(left.value) if floating else _wrap(int(left.value), common)
        b: int | float = float(right.value) if floating else _wrap(int(right.value), common)
        if op in _COMPARISONS:
            return self.make(_builtin("bool"), int(_COMPARISONS[op](a, b)))
        if op in ("&", "^", "|", "%") and floating:
            raise self.error(TYPE_CONFLICT, node.end)
        if op in ("/", "%") and b == 0 and not floating:
            if self.unevaluated:
                return self.make(common, 0)
            raise self.error(DIVIDE, node.end)
        result: int | float
        if op == "+":
            result = a + b
        elif op == "-":
            result = a - b
        elif op == "*":
            result = a * b
        elif op == "/":
            result = _float_divide(float(a), float(b)) if floating else _c_divide(int(a), int(b))
        elif op == "%":
            result = int(a) - _c_divide(int(a), int(b)) * int(b)
        elif op == "&":
            result = int(a) & int(b)
        elif op == "^":
            result = int(a) ^ int(b)
        else:  # "|"
            result = int(a) | int(b)
        return self.make(common, result)


_MASK64 = (1 << 64) - 1
_RECORD_KINDS = (TypeKind.STRUCT, TypeKind.CLASS, TypeKind.UNION)
_COMPARISONS: dict[str, Callable[[int | float, int | float], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _builtin(name: str) -> Type:
    found = builtin_type(name)
    assert found is not None, name
    return found


_VOID: list[Type] = []


def _void() -> Type:
    """The void type (for ``void *`` casts and ``nullptr``), made once."""
    if not _VOID:
        _VOID.append(Type.void())
    return _VOID[0]


def _integer(arith: _Arith | None) -> int | None:
    if arith is None or isinstance(arith.value, float):
        return None
    return int(arith.value)


def _promoted(stripped: Type) -> Type:
    """C's integer promotion: anything narrower than int becomes int; enums their
    underlying type (int when DWARF gives none)."""
    if stripped.kind == TypeKind.ENUM:
        underlying = stripped.target.strip_typedefs() if stripped.target is not None else None
        return _promoted(underlying) if underlying is not None else _builtin("int")
    size = stripped.size or 4
    if size < 4:
        return _builtin("int")
    return _arith_type(size, bool(stripped.is_signed))


def _arith_type(size: int, signed: bool) -> Type:
    names = {4: ("int", "unsigned int"), 8: ("long", _UNSIGNED_LONG), 16: ("__int128", "__int128 unsigned")}
    signed_name, unsigned_name = names.get(size, names[8])
    return _builtin(signed_name if signed else unsigned_name)


def _common_type(left: Type, right: Type) -> Type:
    """The usual arithmetic conversions of two promoted types."""
    if left.is_float or right.is_float:
        sizes = [t.size or 8 for t in (left, right) if t.is_float]
        return {4: _builtin("float"), 8: _builtin("double")}.get(max(sizes), _builtin("long double"))
    left_size, right_size = left.size or 4, right.size or 4
    left_signed, right_signed = bool(left.is_signed), bool(right.is_signed)
    if left_signed == right_signed:
        return _arith_type(max(left_size, right_size), left_signed)
    unsigned_size = right_size if left_signed else left_size
    signed_size = left_size if left_signed else right_size
    if unsigned_size >= signed_size:
        return _arith_type(unsigned_size, False)
    return _arith_type(signed_size, True)


def _to_signed(value: int, size: int) -> int:
    bits = 8 * size
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _wrap(value: int, type_: Type) -> int:
    """``value`` converted to the integer ``type_`` (modulo 2**bits, then signed)."""
    size = type_.size or 8
    if type_.is_signed:
        return _to_signed(value, size)
    return value & ((1 << (8 * size)) - 1)


def _c_divide(a: int, b: int) -> int:
    """C's integer division: truncates toward zero (Python's // floors)."""
    quotient = abs(a) // abs(b)
    return quotient if (a < 0) == (b < 0) else -quotient


def _float_divide(a: float, b: float) -> float:
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _shift(op: str, value: int, count: int, type_: Type) -> int:
    bits = 8 * (type_.size or 4)
    value = _wrap(value, type_)
    if count < 0 or count >= bits:
        # Undefined in C; x86 masks the count, but a debugger showing 0 (or the sign
        # fill) is the least surprising answer.
        return -1 if op == ">>" and value < 0 else 0
    return value << count if op == "<<" else value >> count
