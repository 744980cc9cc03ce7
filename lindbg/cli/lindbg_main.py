"""``lindbg``: the cdb-style console (DESIGN.md section 6).

``lindbg [-c CMDS] [-cf FILE] [-g] [-G] [-y SYMPATH] [-i IMAGEDIRS]
[-server OPTIONS]... [-premote OPTIONS] [-p PID | -z CORE | PROGRAM ARGS...]``, or
``lindbg -remote OPTIONS`` to join a debugging server's session. ``-premote`` debugs
through a process server (``lindbgsrv``, ``gdbserver --multi``) as a smart client.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
from dataclasses import dataclass, field

from lindbg.cli.console import ConsoleEvents, StreamOutput, run_console
from lindbg.commands.dumps import open_dump
from lindbg.commands.execution import run, show_stop
from lindbg.commands.interpreter import CommandLanguage
from lindbg.commands.remoting import started_line
from lindbg.constants import EndFlags, OutputMask, Status
from lindbg.engine.client import DebugClient
from lindbg.errors import LindbgError
from lindbg.os.linux.procfs import hide_own_passwords

USAGE = (
    "usage: lindbg [-c CMDS] [-cf FILE] [-g] [-G] [-y SYMPATH] [-i IMAGEDIRS] [-server OPTIONS]"
    " [-premote OPTIONS] [-p PID | -z CORE | PROGRAM ARGS...]\n       lindbg -remote OPTIONS"
)
HELP = f"""{USAGE}

A cdb-style console for Linux user-mode processes, on lindbg's engine.

  -c CMDS        run CMDS (';'-separated) first; may be given more than once
  -cf FILE       run the commands of FILE first, one per line
  -g             do not stop at the initial break (go at once)
  -G             do not stop when the last process exits (no final break)
  -y SYMPATH     extra directories for separate debug files, ';'-separated
  -i IMAGEDIRS   directories to look in for a core's mapped files, ':'-separated
  -p PID         attach to a running process
  -z CORE        open an ELF core file (read-only)
  PROGRAM ARGS   start PROGRAM with ARGS under the debugger
  -server OPTS   share the session through a debugging server (may be repeated):
                 tcp:port=P[,bind=ADDR][,password=W]   npipe:pipe=NAME[,password=W]
                 ssl:port=P,cert=FILE,key=FILE   spipe:pipe=NAME,cert=FILE,key=FILE
                 com:port=DEVICE,baud=N   (persist=SECONDS keeps a dropped client's place)
  -remote OPTS   join a debugging server's session instead:
                 tcp:server=HOST,port=P[,password=W]   npipe:pipe=NAME   ssl:server=HOST,port=P[,cafile=FILE]
  -premote OPTS  debug through a process server (lindbgsrv, gdbserver --multi): the
                 program (or -p PID) runs there, symbols and commands stay here:
                 tcp:server=HOST,port=P   npipe:pipe=NAME   ssl:server=HOST,port=P[,cafile=FILE]

At the prompt, .help lists the commands; .server, .servers, .endsrv and .clients
manage debugging servers; .tlist lists the processes of the machine the programs run
on and .endpsrv makes the process server exit."""


class HelpRequested(Exception):
    """``-h``: print the help and exit with status 0."""


@dataclass
class Options:
    commands: list[str] = field(default_factory=list)
    skip_initial_break: bool = False
    skip_final_break: bool = False
    pid: int | None = None
    dump: str | None = None
    symbol_path: str | None = None
    #: Debugging servers to start (-server), in order.
    servers: list[str] = field(default_factory=list)
    #: The server to join (-remote); the rest of the command line must be empty.
    remote: str | None = None
    #: The process server to debug through (-premote).
    premote: str | None = None
    #: Directories searched for a core's mapped files that moved (cdb's -i), ':'-separated.
    image_path: str = ""
    program: list[str] = field(default_factory=list)


def parse_arguments(argv: list[str]) -> Options:
    """cdb's command line. Raises ValueError with a one-line message."""
    options = Options()
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg in ("-h", "--help", "-?") and not options.program:
            raise HelpRequested
        if arg == "-c":
            index += 1
            options.commands.append(_need(argv, index, arg))
        elif arg == "-cf":
            index += 1
            with open(_need(argv, index, arg)) as f:
                options.commands += [line.rstrip("\n") for line in f if line.strip()]
        elif arg == "-server":
            index += 1
            options.servers.append(_need(argv, index, arg))
        elif arg == "-remote":
            index += 1
            options.remote = _need(argv, index, arg)
        elif arg == "-premote":
            index += 1
            options.premote = _need(argv, index, arg)
        elif arg == "-g":
            options.skip_initial_break = True
        elif arg == "-G":
            options.skip_final_break = True
        elif arg == "-z":
            index += 1
            options.dump = _need(argv, index, arg)
        elif arg == "-y":
            index += 1
            options.symbol_path = _need(argv, index, arg)
        elif arg == "-i":
            index += 1
            options.image_path = _need(argv, index, arg)
        elif arg == "-p":
            index += 1
            try:
                options.pid = int(_need(argv, index, arg), 0)
            except ValueError:
                raise ValueError(f"lindbg: -p needs a process id, not '{argv[index]}'") from None
        elif arg.startswith("-") and not options.program:
            raise ValueError(f"lindbg: unknown option {arg}\n{USAGE}")
        else:
            options.program = argv[index:]
            break
        index += 1
    if options.premote is not None and options.dump:
        raise ValueError("lindbg: -premote debugs live processes: a core file (-z) is opened here")
    if options.remote is not None and (
        options.program or options.pid is not None or options.dump or options.servers or options.premote
    ):
        raise ValueError(
            "lindbg: -remote joins a server's session: give no program, -p, -z or -server with it"
        )
    return options


def _need(argv: list[str], index: int, option: str) -> str:
    if index >= len(argv):
        raise ValueError(f"lindbg: {option} needs a value")
    return argv[index]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lindbg`` console script; returns the exit status."""
    # a password on the command line (-server/-remote ...,password=W) must not show in ps
    hide_own_passwords()
    try:
        options = parse_arguments(sys.argv[1:] if argv is None else argv)
    except HelpRequested:
        print(HELP)
        return 0
    except (ValueError, OSError) as error:
        print(str(error), file=sys.stderr)
        return 2
    if options.remote is not None:
        return _join(options)
    client = DebugClient()
    screen = StreamOutput(sys.stdout)
    client.set_output_callbacks(screen)
    client.set_event_callbacks(ConsoleEvents(client))
    client.set_break_on_process_exit(not options.skip_final_break)
    # Ctrl-C at the terminal reaches the debuggee too (same process group): the
    # debugger swallows it there and breaks in instead; it never kills lindbg
    client.set_signal_swallowed(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda signo, frame: client.set_interrupt())
    language = CommandLanguage()
    client.set_command_processor(language)
    interp = language.interpreter(client)
    if options.symbol_path is not None:
        client.set_symbol_path(options.symbol_path)
    try:
        if options.premote is not None:
            language.process_server = client.connect_process_server(options.premote)
        where = language.process_server
        if options.pid is not None:
            client.attach_process(options.pid, server=where)
        elif options.dump is not None:
            open_dump(interp, options.dump, [d for d in options.image_path.split(":") if d])
        elif options.program:
            client.create_process(options.program, server=where)
    except LindbgError as error:
        print(f"lindbg: {error}", file=sys.stderr)
        return 1
    for server in options.servers:
        try:
            client.start_server(server)
        except LindbgError as error:
            print(f"lindbg: -server: {error}", file=sys.stderr)
            with contextlib.suppress(LindbgError):
                client.end_session(EndFlags.ACTIVE_TERMINATE)
            return 2
        interp.say(started_line(server))
    interp.shared.last_command_line = shlex.join(options.program)
    if options.dump is None and client.get_execution_status() == Status.BREAK:
        if options.skip_initial_break:
            run(interp, Status.GO)
        else:
            show_stop(interp)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        return run_console(client, options.commands, sys.stdin, screen if interactive else None, language)
    finally:
        with contextlib.suppress(LindbgError):
            client.shutdown_servers()


def _join(options: Options) -> int:
    """``-remote``: a console on a debugging server's session."""
    from lindbg.cli.remote_console import run_remote_console
    from lindbg.remoting.client import debug_connect

    assert options.remote is not None
    screen = StreamOutput(sys.stdout)
    try:
        remote = debug_connect(options.remote)
    except LindbgError as error:
        print(f"lindbg: {error}", file=sys.stderr)
        return 1
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    remote.set_output_callbacks(screen)
    try:
        for command in options.commands:
            screen.output(OutputMask.PROMPT, remote.prompt + command + "\n")
            remote.execute(command)
    except LindbgError as error:
        print(f"lindbg: {error}", file=sys.stderr)
        return 1
    return run_remote_console(remote, sys.stdin, screen, interactive)


def console_main() -> None:
    """The ``lindbg`` command: ``main``, then a quick exit.

    The session has ended by the time ``main`` returns (``q`` terminated or
    detached the target, every log line is flushed as it is written), so the
    interpreter's teardown, which frees every object of a big debug file one by
    one (tens of milliseconds after reading libc's DWARF), is skipped."""
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    console_main()
