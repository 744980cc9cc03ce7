"""The cdb command line (lindbg.commands.parser): where one command ends and the
next starts, and which part of a command is its name."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lindbg.commands.parser import ParsedCommand, parse_command, split_commands

SPLITS: list[tuple[str, list[tuple[str, int]]]] = [
    ("", []),
    ("r", [("r", 0)]),
    ("r; k", [("r", 0), ("k", 3)]),
    ("r;k;g", [("r", 0), ("k", 2), ("g", 4)]),
    # leading and trailing blanks: the offset is where the command's text starts
    ("   r", [("r", 3)]),
    ("  r  ;   k  ", [("r", 2), ("k", 9)]),
    ("\tr;\t k", [("r", 1), ("k", 5)]),
    # empty commands vanish
    (";", []),
    (" ; ;; ", []),
    ("r;;k;", [("r", 0), ("k", 3)]),
    (";r", [("r", 1)]),
    # ';' inside double quotes does not split
    ('bp f "r; g"', [('bp f "r; g"', 0)]),
    ('bp f "r; g"; g', [('bp f "r; g"', 0), ("g", 13)]),
    ('.echo "a;b" ; .echo c', [('.echo "a;b"', 0), (".echo c", 14)]),
    # ';' inside braces does not split, at any depth
    (".if (c) { r; k } .else { g }", [(".if (c) { r; k } .else { g }", 0)]),
    (".if (c) { r; k } .else { g }; k", [(".if (c) { r; k } .else { g }", 0), ("k", 30)]),
    (".if (a) { .if (b) { r; k }; g }; u", [(".if (a) { .if (b) { r; k }; g }", 0), ("u", 33)]),
    ('.if (c) { .echo "}"; r }; k', [('.if (c) { .echo "}"; r }', 0), ("k", 26)]),
    # a stray '}' does not make the depth negative
    ("} r; k", [("} r", 0), ("k", 5)]),
    # j takes the rest of the line: its branches have a ';' of their own
    ("j (eax > 0) 'r'; 'k'", [("j (eax > 0) 'r'; 'k'", 0)]),
    ("j(eax > 0) r; k", [("j(eax > 0) r; k", 0)]),
    ("J 1 r; k", [("J 1 r; k", 0)]),
    ("j\t1 r; k", [("j\t1 r; k", 0)]),
    ("  j 1 r; k  ", [("j 1 r; k", 2)]),
    ("r; j (1) a; b", [("r", 0), ("j (1) a; b", 3)]),
    ("r;   j 1 a; b", [("r", 0), ("j 1 a; b", 5)]),
    ("r; k; j 0 g; r", [("r", 0), ("k", 3), ("j 0 g; r", 6)]),
    # ... but only a j command: a name starting with j, or j alone, is not one
    ("jx; r", [("jx", 0), ("r", 4)]),
    ("j; r", [("j", 0), ("r", 3)]),
    ("r; jmp; k", [("r", 0), ("jmp", 3), ("k", 8)]),
    # a j inside braces belongs to the block
    (".if (1) { j 1 a; b }; k", [(".if (1) { j 1 a; b }", 0), ("k", 22)]),
    # $$ comments end at the next ';'
    ("$$ a comment", []),
    ("$$ a comment; r", [("r", 14)]),
    ("  $$ a comment;r", [("r", 15)]),
    ("r eax; $$ some text; r ebx", [("r eax", 0), ("r ebx", 21)]),
    ("$$; r", [("r", 4)]),
    ("r $$ not a comment", [("r $$ not a comment", 0)]),
]


@pytest.mark.parametrize(("line", "expected"), SPLITS, ids=[repr(line) for line, _ in SPLITS])
def test_split_commands(line: str, expected: list[tuple[str, int]]) -> None:
    commands = split_commands(line)
    assert commands == expected
    for text, offset in commands:
        assert line[offset:].startswith(text)


@pytest.mark.parametrize("comment", ['$$ it"s', "$$ {"])
def test_a_comment_ends_at_the_next_semicolon_whatever_it_holds(comment: str) -> None:
    assert split_commands(f"{comment}; r") == [("r", len(comment) + 2)]


def test_an_unbalanced_brace_runs_to_the_end_of_the_line() -> None:
    assert split_commands(".if (1) { r; k") == [(".if (1) { r; k", 0)]
    assert split_commands("g; .if (1) { r; k") == [("g", 0), (".if (1) { r; k", 3)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('bp main "r; g', [('bp main "r; g', 0)]),
        ('k; .echo "abc', [("k", 0), ('.echo "abc', 3)]),
    ],
)
def test_an_unterminated_quote_runs_to_the_end_of_the_line(
    line: str, expected: list[tuple[str, int]]
) -> None:
    assert split_commands(line) == expected


NAMES = {"k", "kn", "d", "dps", "dp", "bp"}

PARSES: list[tuple[str, tuple[str, str]]] = [
    # dot and extension commands end at the first blank, whatever names are known
    (".echo hello there", (".echo", "hello there")),
    (".echo", (".echo", "")),
    (".ECHO Mixed Case", (".echo", "Mixed Case")),
    (".echo    spaced  ", (".echo", "spaced")),
    (".kn 5", (".kn", "5")),
    ("!maps", ("!maps", "")),
    ("!maps -a", ("!maps", "-a")),
    ("!MyExt.Cmd Arg", ("!myext.cmd", "Arg")),
    # the longest known name that starts the text
    ("k", ("k", "")),
    ("kn", ("kn", "")),
    ("kn 5", ("kn", "5")),
    ("k 5", ("k", "5")),
    ("kb", ("k", "b")),
    ("dps esp", ("dps", "esp")),
    ("dp esp", ("dp", "esp")),
    ("dpa esp", ("dp", "a esp")),
    ("d esp", ("d", "esp")),
    ("dd esp", ("d", "d esp")),
    ("bp0x401000", ("bp", "0x401000")),
    ("bp 0x401000", ("bp", "0x401000")),
    ("BP main", ("bp", "main")),
    ("KN", ("kn", "")),
    ("DPS Esp", ("dps", "Esp")),
    # an unknown name: the first word, lower case; the interpreter reports it
    ("zz top", ("zz", "top")),
    ("ZZ Top", ("zz", "Top")),
    ("zz\ttop", ("zz", "top")),
    ("xyz", ("xyz", "")),
]


@pytest.mark.parametrize(("text", "expected"), PARSES, ids=[repr(text) for text, _ in PARSES])
def test_parse_command(text: str, expected: tuple[str, str]) -> None:
    parsed = parse_command(text, 17, NAMES)
    assert parsed == ParsedCommand(expected[0], expected[1], text, 17)


def test_parse_command_takes_any_iterable_of_names() -> None:
    record = [parse_command("dps 1", 0, names) for names in (NAMES, sorted(NAMES), iter(NAMES), ())]
    assert [(parsed.name, parsed.args) for parsed in record] == [
        ("dps", "1"),
        ("dps", "1"),
        ("dps", "1"),
        ("dps", "1"),
    ]


def test_parsed_commands_are_frozen() -> None:
    parsed = parse_command("k 5", 0, NAMES)
    with pytest.raises(AttributeError):
        parsed.name = "g"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"), [(".echo\thi", (".echo", "hi")), ("!maps\t-a", ("!maps", "-a"))]
)
def test_dot_commands_end_at_a_tab(text: str, expected: tuple[str, str]) -> None:
    parsed = parse_command(text, 0, NAMES)
    assert (parsed.name, parsed.args) == expected


def test_a_line_parsed_as_the_interpreter_does() -> None:
    line = '  kn 5;dps esp ; .echo a b;$$ note; bp0x401000 "r; g"'
    record = [parse_command(text, offset, NAMES) for text, offset in split_commands(line)]
    assert record == [
        ParsedCommand("kn", "5", "kn 5", 2),
        ParsedCommand("dps", "esp", "dps esp", 7),
        ParsedCommand(".echo", "a b", ".echo a b", 17),
        ParsedCommand("bp", '0x401000 "r; g"', 'bp0x401000 "r; g"', 36),
    ]
    for parsed in record:
        assert line[parsed.offset :].startswith(parsed.text)


plain = st.text(
    alphabet=st.one_of(
        st.sampled_from(" \t;;;"),
        st.characters(blacklist_characters="\"'{}jJ$;", blacklist_categories=("Cs",)),
    ),
    max_size=40,
)


@settings(max_examples=500, deadline=None)
@given(line=plain)
def test_plain_lines_split_as_str_split(line: str) -> None:
    expected: list[tuple[str, int]] = []
    start = 0
    for piece in line.split(";"):
        if piece.strip():
            expected.append((piece.strip(), start + len(piece) - len(piece.lstrip())))
        start += len(piece) + 1
    commands = split_commands(line)
    assert [text for text, _ in commands] == [piece.strip() for piece in line.split(";") if piece.strip()]
    assert commands == expected
    for text, offset in commands:
        assert line[offset:].startswith(text)
