"""The cdb command line, parsed: commands split on ';', names apart from arguments.

Pure text in, ``ParsedCommand`` records out; running them is the interpreter's job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """One command of a line: its name, its argument text, and where it starts."""

    name: str
    args: str
    text: str
    offset: int


def split_commands(line: str) -> list[tuple[str, int]]:
    """The commands of ``line`` with their offsets.

    Commands split on ';' outside double quotes and outside braces,
    so ``.if (c) { r; k } .else { g }`` and ``bp f "r; g"`` stay whole; a ``j``
    command takes the rest of the line (its two branches are separated by a
    ';' of their own); a command starting with ``$$`` is a comment that ends at
    the next ';'.
    """
    commands: list[tuple[str, int]] = []
    if _takes_rest_of_line(line):
        _append(commands, line, 0)
        return commands
    start = 0
    quote = ""
    depth = 0
    index = 0
    while index <= len(line):
        if index == start and line[start:].lstrip().startswith("$$"):
            # a comment: nothing in it is read, it ends at the next ';'
            end = line.find(";", start)
            index = len(line) if end < 0 else end
        char = line[index] if index < len(line) else ";"
        if index == len(line) or (char == ";" and not quote and depth == 0):
            # the end of the line ends the last command, an open quote or brace included
            _append(commands, line[start:index], start)
            start = index + 1
            if _takes_rest_of_line(line[start:]):
                _append(commands, line[start:], start)
                return commands
        elif quote:
            if char == quote:
                quote = ""
        elif char == '"':
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth = max(0, depth - 1)
        index += 1
    return commands


def _takes_rest_of_line(text: str) -> bool:
    stripped = text.lstrip()
    return len(stripped) > 1 and stripped[0] in "jJ" and stripped[1] in " \t("


def _append(commands: list[tuple[str, int]], text: str, offset: int) -> None:
    stripped = text.strip()
    if stripped and not stripped.startswith("$$"):
        commands.append((stripped, offset + len(text) - len(text.lstrip())))


def parse_command(text: str, offset: int, names: Iterable[str]) -> ParsedCommand:
    """Split ``text`` into a command name and its arguments.

    Dot commands (``.echo``) and extension commands (``!maps``) end at the first
    blank; the others take the longest known name that starts the text, so
    ``kn``, ``dps`` and ``bp0x401000`` read as cdb reads them.
    """
    if text[0] in ".!":
        name, *rest = text.split(None, 1)
        return ParsedCommand(name.lower(), rest[0].strip() if rest else "", text, offset)
    lowered = text.lower()
    best = ""
    for name in names:
        if lowered.startswith(name) and len(name) > len(best):
            best = name
    if not best:
        name = text.split()[0]
        return ParsedCommand(name.lower(), text[len(name) :].strip(), text, offset)
    return ParsedCommand(best, text[len(best) :].strip(), text, offset)
