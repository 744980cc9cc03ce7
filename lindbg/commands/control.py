"""Control flow in command lines: j, .if/.elsif/.else, gc and .printf — what
breakpoint conditions are written in (``bp f "j (@rdi==2) ''; 'gc'"``)."""

from __future__ import annotations

from lindbg.commands.interpreter import CommandError, Interpreter, command
from lindbg.commands.parser import ParsedCommand
from lindbg.errors import MemoryAccessError


def _balanced(text: str, start: int, opening: str, closing: str) -> int:
    """Index just past the bracket that closes the one at ``start``."""
    depth = 0
    quoted = False
    for index in range(start, len(text)):
        char = text[index]
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return index + 1
    raise CommandError("Syntax", start)


def _condition(interp: Interpreter, text: str) -> tuple[bool, str]:
    """A leading ``(expr)`` or blank-free expression: its truth and the rest."""
    from lindbg.commands.data import evaluate

    text = text.lstrip()
    if not text:
        raise CommandError("Syntax")
    end = _balanced(text, 0, "(", ")") if text[0] == "(" else len(text.split(None, 1)[0])
    return evaluate(interp, text[:end]) != 0, text[end:].strip()


def _unquote(branch: str) -> str:
    branch = branch.strip()
    if len(branch) >= 2 and branch[0] == branch[-1] == "'":
        return branch[1:-1]
    return branch


def _split_branches(text: str) -> tuple[str, str]:
    """``'a; b' ; 'c'`` -> ("a; b", "c"): the ';' outside single quotes separates."""
    quoted = False
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif char == ";" and not quoted:
            return _unquote(text[:index]), _unquote(text[index + 1 :])
    return _unquote(text), ""


@command("j")
def jump_if(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``j Expression ['Command1'] ; ['Command2']``: run the first command string
    when the expression is nonzero, else the second."""
    true, rest = _condition(interp, parsed.args)
    first, second = _split_branches(rest)
    chosen = first if true else second
    if chosen.strip():
        interp.execute(chosen)


@command(".if")
def if_(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``.if (c) { ... } .elsif (c) { ... } .else { ... }``."""
    text = parsed.args
    keyword = ".if"
    while True:
        if keyword == ".else":
            true, rest = True, text.strip()
        else:
            true, rest = _condition(interp, text)
        if not rest.startswith("{"):
            raise CommandError("Syntax")
        end = _balanced(rest, 0, "{", "}")
        if true:
            body = rest[1 : end - 1].strip()
            if body:
                interp.execute(body)
            return
        rest = rest[end:].strip()
        if not rest:
            return
        lowered = rest.lower()
        if lowered.startswith(".elsif"):
            keyword, text = ".elsif", rest[6:]
        elif lowered.startswith(".else"):
            keyword, text = ".else", rest[5:]
        else:
            raise CommandError("Syntax")


@command(".else", ".elsif")
def orphan_else(interp: Interpreter, parsed: ParsedCommand) -> None:
    raise CommandError("Syntax")


@command("gc")
def go_conditional(interp: Interpreter, parsed: ParsedCommand) -> None:
    """Resume the way the target ran before a breakpoint stopped it (cdb's ``gc``:
    a conditional breakpoint's "carry on" that does not turn a step into a go)."""
    from lindbg.commands.execution import run

    status, count = interp.shared.last_resume
    run(interp, status, count)


def _format_string(text: str) -> tuple[str, str]:
    """The quoted format of ``.printf`` with C escapes applied, and what follows."""
    text = text.lstrip()
    if not text.startswith('"'):
        raise CommandError("Syntax")
    out = []
    index = 1
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r", "0": "\0"}
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            out.append(escapes.get(text[index + 1], text[index + 1]))
            index += 2
            continue
        if char == '"':
            return "".join(out), text[index + 1 :]
        out.append(char)
        index += 1
    raise CommandError("Syntax")


def _string_at(interp: Interpreter, address: int, wide: bool) -> str:
    unit = 2 if wide else 1
    data = bytearray()
    while len(data) < 4096:
        try:
            chunk = interp.client.read_memory(address + len(data), 64)
        except MemoryAccessError:
            break
        data += chunk
        for offset in range(0, len(data) - unit + 1, unit):
            if data[offset : offset + unit] == b"\0" * unit:
                return data[:offset].decode("utf-16-le" if wide else "utf-8", "replace")
    return data.decode("utf-16-le" if wide else "utf-8", "replace")


@command(".printf")
def printf(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``.printf "fmt", args``: %x %X %d %u %p %N %I64x %ma %mu %s %y %% as cdb has them."""
    from lindbg.commands import formatting
    from lindbg.commands.data import evaluate

    template, rest = _format_string(parsed.args)
    args = [part for part in rest.split(",")[1:]] if rest.strip() else []
    values = iter(args)
    out = []
    index = 0
    while index < len(template):
        char = template[index]
        if char != "%":
            out.append(char)
            index += 1
            continue
        spec = template[index + 1 : index + 5]
        for conversion in ("I64x", "I64d", "ma", "mu", "%", "x", "X", "d", "u", "p", "N", "s", "y"):
            if spec.startswith(conversion):
                break
        else:
            raise CommandError("Syntax")
        index += 1 + len(conversion)
        if conversion == "%":
            out.append("%")
            continue
        try:
            value = evaluate(interp, next(values))
        except StopIteration:
            raise CommandError("Syntax") from None
        if conversion in ("x", "I64x"):
            out.append(f"{value:x}")
        elif conversion == "X":
            out.append(f"{value:X}")
        elif conversion in ("d", "I64d"):
            out.append(str(value - (1 << 64) if value >> 63 else value))
        elif conversion == "u":
            out.append(str(value))
        elif conversion in ("p", "N"):
            out.append(formatting.addr17(value))
        elif conversion in ("ma", "s"):
            out.append(_string_at(interp, value, wide=False))
        elif conversion == "mu":
            out.append(_string_at(interp, value, wide=True))
        else:  # %y: the symbol at the address
            out.append(interp.client.symbol_at(value) or formatting.addr17(value))
    interp.client.output(0x1, "".join(out))
