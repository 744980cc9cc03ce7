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
    """The commands of ``line`` with their offsets: split on ';' outside double
    quotes; a command starting with ``$$`` is a comment that ends at the next ';'."""
    parts: list[tuple[str, int]] = []
    start = 0
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            parts.append((line[start:index], start))
            start = index + 1
    parts.append((line[start:], start))
    commands = []
    for text, offset in parts:
        stripped = text.strip()
        if stripped and not stripped.startswith("$$"):
            commands.append((stripped, offset + len(text) - len(text.lstrip())))
    return commands


def parse_command(text: str, offset: int, names: Iterable[str]) -> ParsedCommand:
    """Split ``text`` into a command name and its arguments.

    Dot commands (``.echo``) and extension commands (``!maps``) end at the first
    blank; the others take the longest known name that starts the text, so
    ``kn``, ``dps`` and ``bp0x401000`` read as cdb reads them.
    """
    if text[0] in ".!":
        name, _, rest = text.partition(" ")
        return ParsedCommand(name.lower(), rest.strip(), text, offset)
    lowered = text.lower()
    best = ""
    for name in names:
        if lowered.startswith(name) and len(name) > len(best):
            best = name
    if not best:
        name = text.split()[0]
        return ParsedCommand(name.lower(), text[len(name) :].strip(), text, offset)
    return ParsedCommand(best, text[len(best) :].strip(), text, offset)
