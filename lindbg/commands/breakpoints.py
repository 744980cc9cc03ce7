"""Breakpoint commands: bp, bu, bm, ba, bl, bc, bd, be (CDB-OUTPUT.md §4)."""

from __future__ import annotations

from lindbg.commands import formatting
from lindbg.commands.interpreter import CommandError, Interpreter, command
from lindbg.commands.parser import ParsedCommand
from lindbg.engine.handles import Breakpoint


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


@command("bp", "bu")
def set_breakpoint(interp: Interpreter, parsed: ParsedCommand) -> None:
    args = parsed.args.strip()
    if not args:
        raise CommandError("Syntax")
    command_text = ""
    if '"' in args:
        args, _, rest = args.partition('"')
        command_text = rest.rsplit('"', 1)[0]
    location = args.split()[0].strip("`")
    bp = interp.client.add_breakpoint(location)
    bp.command = command_text
    if bp.deferred:
        interp.say(f"Bp expression '{location}' could not be resolved, adding deferred bp")


@command("bm")
def set_breakpoints_matching(interp: Interpreter, parsed: ParsedCommand) -> None:
    pattern = parsed.args.strip()
    for name, address in interp.client.find_symbols(pattern):
        bp = interp.client.add_breakpoint(address)
        interp.say(f'{bp.id:3d}: {formatting.addr17(address)} @!"{name}"')


@command("ba")
def set_hardware(interp: Interpreter, parsed: ParsedCommand) -> None:
    parts = parsed.args.split()
    if len(parts) < 3 or parts[0] not in ("e", "w", "r", "rw"):
        raise CommandError("Syntax")
    from lindbg.commands.data import evaluate

    interp.client.add_breakpoint(evaluate(interp, parts[2]), access=parts[0], size=int(parts[1]))


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
                1,
                1,
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
