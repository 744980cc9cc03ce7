"""Breakpoint commands: bp, bu, bm, ba, bl, bc, bd, be (CDB-OUTPUT.md §4)."""

from __future__ import annotations

import re

from lindbg.commands import formatting
from lindbg.commands.interpreter import CommandError, Interpreter, command
from lindbg.commands.parser import ParsedCommand
from lindbg.engine.handles import Breakpoint

_SOURCE_LINE = re.compile(r"^.+\.[A-Za-z0-9+]+:\d+$")


def _ids(interp: Interpreter, text: str) -> list[Breakpoint]:
    """`*`, `3`, `1-4`, `1,3` -> the breakpoints they name (ids are decimal)."""
    existing = {bp.id: bp for bp in interp.client.breakpoints()}
    if text.strip() == "*":
        return list(existing.values())
    chosen: list[Breakpoint] = []
    for part in text.replace(",", " ").split():
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high) if dash else int(low)
        except ValueError:
            raise CommandError("Syntax") from None
        chosen += [existing[i] for i in range(first, last + 1) if i in existing]
    return chosen


def _location(interp: Interpreter, text: str) -> int | str:
    """What a bp names: ``mod!sym``/``file.c:12`` go to the engine as text (so
    they can be deferred until the module loads); anything else is a MASM
    expression evaluated now (``@rip+5``, ``poi(@rsp)``, ``401136``)."""
    from lindbg.commands.data import evaluate

    text = text.strip("`")
    if "!" in text or _SOURCE_LINE.match(text):
        return text
    return evaluate(interp, text)


@command("bp", "bu")
def set_breakpoint(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``bp [/1] Address [Passes] ["CommandString"]``."""
    from lindbg.commands.data import evaluate

    args = parsed.args.strip()
    command_text = ""
    if '"' in args:
        args, _, rest = args.partition('"')
        command_text = rest.rsplit('"', 1)[0]
    words = args.split()
    one_shot = False
    while words and words[0].startswith("/"):
        if words.pop(0) != "/1":
            raise CommandError("Syntax")
        one_shot = True
    if not words or len(words) > 2:
        raise CommandError("Syntax")
    location = _location(interp, words[0])
    passes = evaluate(interp, words[1]) if len(words) == 2 else 1
    if passes < 1:
        raise CommandError("Syntax")
    bp = interp.client.add_breakpoint(location, one_shot=one_shot)
    bp.command = command_text
    bp.set_pass_count(passes)
    if bp.deferred:
        interp.say(f"Bp expression '{location}' could not be resolved, adding deferred bp")


@command("bm")
def set_breakpoints_matching(interp: Interpreter, parsed: ParsedCommand) -> None:
    pattern = parsed.args.strip()
    for name, address in interp.client.find_symbols(pattern):
        bp = interp.client.add_breakpoint(address)
        interp.say(f'{bp.id:3d}: {formatting.addr17(address)} @!"{name}"')


_BA_ARGUMENTS = re.compile(r"(rw|e|w|r)\s*([1248])\s+(\S.*)")


@command("ba")
def set_hardware(interp: Interpreter, parsed: ParsedCommand) -> None:
    # cdb takes the size joined to the access (``ba w4 addr``) or apart (``ba w 4 addr``)
    match = _BA_ARGUMENTS.fullmatch(parsed.args.strip())
    if match is None:
        raise CommandError("Syntax")
    access, size, where = match.groups()
    from lindbg.commands.data import evaluate

    interp.client.add_breakpoint(evaluate(interp, where), access=access, size=int(size))


@command("bl")
def list_breakpoints(interp: Interpreter, parsed: ParsedCommand) -> None:
    chosen = _ids(interp, parsed.args) if parsed.args.strip() else interp.client.breakpoints()
    rows = []
    for bp in chosen:
        symbol = bp.expression or (interp.client.symbol_at(bp.address) or "") if not bp.deferred else ""
        line = None
        if not bp.deferred:
            source = interp.client.source_line(bp.address)
            line = f"{source.file} @ {source.line}" if source is not None else None
            symbol = interp.client.symbol_at(bp.address) or formatting.addr17(bp.address)
        rows.append(
            formatting.BreakpointRow(
                bp.id,
                bp.enabled,
                bp.deferred,
                None if bp.deferred else bp.address,
                line,
                "sw" if bp.access is None else bp.access,
                bp.size,
                bp.passes_left,
                bp.pass_count,
                bp.expression if bp.deferred else symbol,
                bp.command,
            )
        )
    if rows:
        interp.say(formatting.format_breakpoint_list(rows))


def _each(interp: Interpreter, parsed: ParsedCommand, action: str) -> None:
    if not parsed.args.strip():
        raise CommandError("Syntax")
    for bp in _ids(interp, parsed.args):
        if action == "clear":
            interp.client.remove_breakpoint(bp)
        else:
            bp.enabled = action == "enable"


@command("bc")
def clear(interp: Interpreter, parsed: ParsedCommand) -> None:
    _each(interp, parsed, "clear")


@command("bd")
def disable(interp: Interpreter, parsed: ParsedCommand) -> None:
    _each(interp, parsed, "disable")


@command("be")
def enable(interp: Interpreter, parsed: ParsedCommand) -> None:
    _each(interp, parsed, "enable")
