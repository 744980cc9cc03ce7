"""Debugging-server commands: .server, .servers, .endsrv, .clients (DESIGN section 4)."""

from __future__ import annotations

from lindbg.commands.interpreter import CommandError, Interpreter, command
from lindbg.commands.parser import ParsedCommand
from lindbg.transports.options import masked


@command(".server")
def server(interp: Interpreter, parsed: ParsedCommand) -> None:
    options = parsed.args.strip()
    if not options:
        raise CommandError("Syntax")
    interp.client.start_server(options)
    interp.say(started_line(options))


def started_line(options: str) -> str:
    """What starting a server prints; the password never reaches the screen, a log
    or another client."""
    return f"Server started with '{masked(options)}'"


@command(".servers")
def servers(interp: Interpreter, parsed: ParsedCommand) -> None:
    entries = interp.client.servers()
    if not entries:
        interp.say("No debugging servers.")
    for entry in entries:
        interp.say(entry.line())


@command(".endsrv")
def end_server(interp: Interpreter, parsed: ParsedCommand) -> None:
    text = parsed.args.strip()
    try:
        server_id = int(text, 0)
    except ValueError:
        raise CommandError("Syntax") from None
    interp.client.end_server(server_id)
    interp.say("Server told to exit.  Actual exit may be delayed until")
    interp.say("the next connection attempt.")


@command(".clients")
def clients(interp: Interpreter, parsed: ParsedCommand) -> None:
    for line in interp.client.connected_clients():
        interp.say(line)
