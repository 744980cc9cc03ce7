"""Server commands: debugging servers (.server, .servers, .endsrv, .clients; DESIGN
section 4) and process servers (.tlist, .endpsrv; section 5)."""

from __future__ import annotations

from lindbg.commands.interpreter import CommandError, Interpreter, command
from lindbg.commands.parser import ParsedCommand
from lindbg.errors import InvalidOperationError
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


@command(".tlist")
def task_list(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``.tlist [-v]``: the processes of the machine the session's programs run on
    (the process server's under ``-premote``), ``0n<pid> <program>`` by pid; ``-v``
    shows each whole command line."""
    verbose = parsed.args.strip() == "-v"
    if parsed.args.strip() not in ("", "-v"):
        raise CommandError("Syntax")
    for pid, command_line in interp.client.running_processes(interp.shared.process_server):
        if verbose:
            interp.say(f"0n{pid} {command_line}")
        else:
            interp.say(f"0n{pid} {_program_name(command_line)}")


@command(".endpsrv")
def end_process_server(interp: Interpreter, parsed: ParsedCommand) -> None:
    """Make the current process server (``-premote``) exit."""
    server = interp.shared.process_server
    if server is None:
        raise InvalidOperationError("no process server: this session runs on this machine (lindbg -premote)")
    interp.client.end_process_server(server)
    interp.shared.process_server = None
    interp.say(f"Process server {server.label} told to exit.")


def _program_name(command_line: str) -> str:
    """The file name of a command line's program (a kernel thread's ``[name]`` whole)."""
    if command_line.startswith("["):
        return command_line
    return command_line.split(" ", 1)[0].rsplit("/", 1)[-1]
