"""Source-level data: ``dv``, ``dt``, ``??``, ``dx`` and ``.frame`` (CDB-OUTPUT §17-§21).

The values come from the engine (``client.frame_variables``, ``client.evaluate``,
``client.type``), the layouts from ``valueview``; this module only parses the
command lines and picks the frame.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from lindbg.commands import formatting
from lindbg.commands.interpreter import CommandError, command
from lindbg.commands.parser import ParsedCommand
from lindbg.errors import InvalidOperationError, LindbgError

if TYPE_CHECKING:
    from lindbg.commands.interpreter import Interpreter
    from lindbg.symbols.values import Value

#: What ``dv`` says when the frame has no DWARF (cdb's three lines, Linux wording).
_NO_LOCALS = (
    "Unable to enumerate locals, no DWARF information\n"
    "Private symbols (symbols.pri) are required for locals.\n"
    'Type ".hh dbgerr005" for details.'
)
_DV_FLAGS = frozenset("itvVaAnNzZ")


@command("dv")
def display_variables(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``dv [/i] [/t] [/v|/V] [pattern]``: parameters then locals of the scope frame."""
    from lindbg.commands.valueview import dv_lines

    flags: set[str] = set()
    pattern = "*"
    for word in parsed.args.split():
        if word.startswith("/") and len(word) > 1 and set(word[1:]) <= _DV_FLAGS:
            flags.update(word[1:])
        else:
            pattern = word
    try:
        variables = interp.client.frame_variables()
    except InvalidOperationError as error:
        if "no DWARF" in str(error):
            interp.say(_NO_LOCALS)
            return
        raise
    entries = [
        (kind, value, None) for kind, value in variables.entries if fnmatchcase(value.name or "", pattern)
    ]
    lines = dv_lines(
        entries, show_type="t" in flags, show_location=bool(flags & {"v", "V"}), show_kind="i" in flags
    )
    if lines:
        interp.say("\n".join(lines))


_DT_OPTION = re.compile(r"^-(r\d*|b|a\d*|v|o|c)$")


@command("dt")
def display_type(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``dt [-r[N]] [-b] [-a[N]] [mod!]Type [ADDR] [field...]`` or ``dt var [field...]``."""
    from lindbg.commands.valueview import dt_lines

    recurse = 0
    blocks = False
    array_count: int | None = None
    words: list[str] = []
    for word in parsed.args.split():
        option = _DT_OPTION.match(word)
        if option is None:
            words.append(word)
            continue
        text = option.group(1)
        if text.startswith("r"):
            recurse = int(text[1:]) if text[1:] else 1
        elif text == "b":
            blocks = True
        elif text.startswith("a"):
            array_count = int(text[1:]) if text[1:] else 1
    if not words:
        raise CommandError("Syntax")
    subject, rest = words[0], words[1:]
    client = interp.client
    variable = _variable(interp, subject)
    if variable is not None:
        lines = dt_lines(
            variable, recurse=recurse, fields=rest, blocks=blocks, array_count=array_count, variable=True
        )
        interp.say("\n".join(lines))
        return
    type_name = subject.split("!", 1)[1] if "!" in subject else subject
    try:
        found = client.type(type_name)
    except InvalidOperationError:
        interp.say(f"Symbol {subject} not found.")
        return
    address_text = rest[0] if rest and not _is_field_name(rest[0]) else None
    fields = rest[1:] if address_text is not None else rest
    if address_text is None:
        lines = dt_lines(found, recurse=recurse, fields=fields, blocks=blocks, array_count=array_count)
    else:
        from lindbg.commands.data import evaluate
        from lindbg.symbols.values import Value

        address = evaluate(interp, address_text)
        value = Value.from_memory(found, address, client.read_memory, name=type_name)
        lines = dt_lines(value, recurse=recurse, fields=fields, blocks=blocks, array_count=array_count)
    interp.say("\n".join(lines))


def _is_field_name(word: str) -> bool:
    """A dt argument after the type: an address expression or a field name? Field
    names are C identifiers (maybe with ``.`` or ``*``) that are not hex numbers."""
    if re.fullmatch(r"[0-9a-fA-F`]+", word) or word.startswith(("0x", "0n", "@", "$", "(", "poi")):
        return False
    return re.fullmatch(r"[A-Za-z_][\w.*]*", word) is not None and "!" not in word


def _variable(interp: Interpreter, name: str) -> Value | None:
    if not re.fullmatch(r"[A-Za-z_]\w*", name):
        return None
    try:
        return interp.client.evaluate(name)
    except LindbgError:
        return None


@command("??")
def cpp_expression(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``?? expr``: a C++ expression, its type and value (and a struct's fields)."""
    from lindbg.commands.valueview import cpp_lines

    text = parsed.args.strip()
    if not text:
        raise CommandError("Syntax")
    interp.say("\n".join(cpp_lines(interp.client.evaluate(text))))


@command("dx")
def data_model(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``dx [-rN] expr``: one expression with its fields, WinDbg's data-model layout."""
    from lindbg.commands.valueview import dx_error_line, dx_lines
    from lindbg.symbols.cexpr import CExprError

    text = parsed.args.strip()
    depth = 1
    option = re.match(r"^-r(\d+)\s+", text)
    if option:
        depth = int(option.group(1))
        text = text[option.end() :]
    if not text:
        raise CommandError("Syntax")
    try:
        value = interp.client.evaluate(text)
    except CExprError as error:
        interp.say(dx_error_line(error))
        return
    interp.say("\n".join(dx_lines(text, value, depth)))


@command(".frame")
def frame(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``.frame [/c] [N]``: show (and with N, select) the local context frame."""
    from lindbg.commands.data import evaluate
    from lindbg.commands.execution import register_block

    words = parsed.args.split()
    switch = "/c" in words
    words = [w for w in words if not w.startswith("/")]
    client = interp.client
    if words:
        client.set_scope_frame(evaluate(interp, words[0]))
    number = client.get_scope_frame()
    frames = client.stack(max_frames=number + 1)  # the walk stops at the frame shown
    if not 0 <= number < len(frames):
        raise InvalidOperationError(f"frame {number:x} does not exist")
    chosen = frames[number]
    row = formatting.StackRow(chosen.sp, chosen.return_address, str(chosen), chosen.inline)
    interp.say(formatting.format_stack_row(row, number))
    if switch:
        interp.say(register_block(interp, client.frame_registers(number)))
