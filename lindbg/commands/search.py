"""``s``: search memory for bytes, words, dwords, qwords or a string (cdb's
``s [-b|-w|-d|-q|-a|-u] Range Pattern``); each hit prints as the matching
``d*`` command would print one line there."""

from __future__ import annotations

from collections.abc import Callable

from lindbg.commands import formatting
from lindbg.commands.interpreter import CommandError, Interpreter, command
from lindbg.commands.parser import ParsedCommand
from lindbg.errors import MemoryAccessError

#: search type -> (unit size, the d* command whose line shows a hit)
_TYPES = {"b": (1, "db"), "w": (2, "dw"), "d": (4, "dd"), "q": (8, "dq"), "a": (1, "db"), "u": (2, "db")}
#: cdb refuses longer ranges unless the length is written ``L?``.
_RANGE_LIMIT = 256 << 20
_CHUNK = 1 << 20
_PAGE = 4096


def _split_range(interp: Interpreter, text: str) -> tuple[int, int, str]:
    """``addr L len rest`` / ``addr L? len rest`` / ``start end rest`` ->
    (start, byte length in units, the pattern text)."""
    from lindbg.commands.data import evaluate

    words = text.split(None, 1)
    if len(words) < 2:
        raise CommandError("Syntax")
    start = evaluate(interp, words[0])
    rest = words[1]
    unlimited = False
    if rest[:1] in "lL":
        rest = rest[1:].lstrip()
        if rest.startswith("?"):
            unlimited, rest = True, rest[1:].lstrip()
        length_text, _, pattern = rest.partition(" ")
        length = evaluate(interp, length_text)
    else:
        end_text, _, pattern = rest.partition(" ")
        length = evaluate(interp, end_text) - start + 1
    if length <= 0 or (length > _RANGE_LIMIT and not unlimited):
        raise CommandError("Range")
    return start, length, pattern.strip()


def _pattern(interp: Interpreter, kind: str, text: str) -> bytes:
    from lindbg.commands.data import evaluate

    if kind in "au":
        if len(text) < 2 or text[0] != '"' or text[-1] != '"':
            raise CommandError("Syntax")
        body = text[1:-1]
        return body.encode("utf-16-le") if kind == "u" else body.encode()
    unit = _TYPES[kind][0]
    values = [evaluate(interp, word) for word in text.split()]
    if not values:
        raise CommandError("Syntax")
    return b"".join((value & ((1 << 8 * unit) - 1)).to_bytes(unit, "little") for value in values)


def find_all(
    read: Callable[[int, int], bytes], start: int, length: int, pattern: bytes, alignment: int
) -> list[int]:
    """Addresses in [start, start+length) where ``pattern`` begins, reading in
    chunks and skipping unreadable pages (memory can have holes)."""
    hits: list[int] = []
    end = start + length
    address = start
    carry = b""
    carry_start = start
    while address < end:
        size = min(_CHUNK, end - address)
        try:
            data = read(address, size)
        except MemoryAccessError as error:
            readable = max(0, error.address - address)
            data = read(address, readable) if readable else b""
            if not data:  # skip to the next page, forgetting the partial match
                address = (address // _PAGE + 1) * _PAGE
                carry, carry_start = b"", address
                continue
        window = carry + data
        offset = window.find(pattern)
        while offset >= 0:
            hit = carry_start + offset
            if hit + len(pattern) <= end and (hit - start) % alignment == 0:
                hits.append(hit)
            offset = window.find(pattern, offset + 1)
        address += len(data)
        keep = min(len(window), len(pattern) - 1)
        carry = window[len(window) - keep :] if keep else b""
        carry_start = address - len(carry)
    return hits


@command("s")
def search(interp: Interpreter, parsed: ParsedCommand) -> None:
    args = parsed.args.strip()
    kind = "b"
    if args.startswith("-"):
        flag, _, args = args.partition(" ")
        kind = flag[1:].lower()
        if kind not in _TYPES:
            raise CommandError("Syntax")
    start, length, pattern_text = _split_range(interp, args.strip())
    unit, display = _TYPES[kind]
    if kind not in "au":
        length *= unit
    pattern = _pattern(interp, kind, pattern_text)
    alignment = unit if kind in "wdq" else 1
    for hit in find_all(interp.client.read_memory, start, length, pattern, alignment):
        try:
            data: bytes | None = interp.client.read_memory(hit, 16)
        except MemoryAccessError:
            # a hit at the end of a mapping: show what is readable, ?? for the rest
            from lindbg.commands.data import readable_prefix

            data = readable_prefix(interp, hit, 16)
        interp.say(formatting.format_memory(display, hit, data, 16))
