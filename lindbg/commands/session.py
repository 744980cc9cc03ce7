"""Session commands: .help, .lastevent, .logopen/.logappend/.logclose, .create, .attach,
.restart, .childdbg."""

from __future__ import annotations

import time

from lindbg.commands.interpreter import COMMANDS, CommandError, Interpreter, command
from lindbg.commands.parser import ParsedCommand
from lindbg.constants import OutputMask
from lindbg.engine.callbacks import OutputCallbacks


@command(".help")
def help_(interp: Interpreter, parsed: ParsedCommand) -> None:
    interp.say("Commands (cdb syntax; ';' separates, '$$' starts a comment):")
    names = sorted(COMMANDS)
    for start in range(0, len(names), 8):
        interp.say("  " + "  ".join(f"{name:8}" for name in names[start : start + 8]).rstrip())
    interp.say("kb's four qwords after the return address are not arguments under the SysV ABI.")


@command(".lastevent")
def last_event(interp: Interpreter, parsed: ParsedCommand) -> None:
    event = interp.client.get_last_event()
    if event is None:
        interp.say("Last event: <none>")
        return
    interp.say(f"Last event: {event.pid:x}.{event.tid:x}: {event.description}")
    interp.say(f"  debugger time: {time.ctime()}")


class _LogFile(OutputCallbacks):
    """Everything the console prints, copied to a file (``.logopen``)."""

    def __init__(self, inner: OutputCallbacks | None, path: str, append: bool) -> None:
        self.inner = inner
        self.path = path
        self.file = open(path, "a" if append else "w")  # noqa: SIM115 - lives until .logclose

    def output(self, mask: int, text: str) -> None:
        if not mask & OutputMask.STATUS:
            self.file.write(text)
            self.file.flush()
        if self.inner is not None:
            self.inner.output(mask, text)


@command(".logopen", ".logappend")
def log_open(interp: Interpreter, parsed: ParsedCommand) -> None:
    path = parsed.args.strip().strip('"')
    if not path:
        raise CommandError("Syntax")
    _close(interp)
    current = interp.client.get_output_callbacks()
    try:
        log = _LogFile(current, path, append=parsed.name == ".logappend")
    except OSError as error:
        interp.say(f"Unable to open log file '{path}': {error.strerror}", OutputMask.ERROR)
        return
    interp.client.set_output_callbacks(log)
    interp.say(f"Opened log file '{path}'")


@command(".logclose")
def log_close(interp: Interpreter, parsed: ParsedCommand) -> None:
    if not _close(interp):
        interp.say("No log file open")


def _close(interp: Interpreter) -> bool:
    current = interp.client.get_output_callbacks()
    if not isinstance(current, _LogFile):
        return False
    interp.say(f"Closing open log file {current.path}")
    current.file.close()
    interp.client.set_output_callbacks(current.inner)
    return True


@command(".create")
def create(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``.create CMDLINE``: start a program under the debugger (stopped at its first
    instruction, shown as cdb shows the initial break)."""
    from lindbg.commands.execution import show_stop

    if not parsed.args.strip():
        raise CommandError("Syntax")
    interp.client.create_process(parsed.args.strip(), server=interp.shared.process_server)
    interp.shared.last_command_line = parsed.args.strip()
    show_stop(interp)


@command(".attach")
def attach(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``.attach PID`` (decimal with 0n, else the current radix, as cdb reads it)."""
    from lindbg.commands.data import evaluate
    from lindbg.commands.execution import show_stop

    if not parsed.args.strip():
        raise CommandError("Syntax")
    interp.client.attach_process(evaluate(interp, parsed.args), server=interp.shared.process_server)
    show_stop(interp)


@command(".restart")
def restart(interp: Interpreter, parsed: ParsedCommand) -> None:
    """End the session and start the last program again with the same command line."""
    from lindbg.commands.execution import show_stop
    from lindbg.constants import EndFlags, Status

    command_line = interp.shared.last_command_line
    if not command_line:
        raise CommandError("No runnable debuggees")
    if interp.client.get_execution_status() != Status.NO_DEBUGGEE:
        interp.client.end_session(EndFlags.ACTIVE_TERMINATE)
    interp.client.create_process(command_line, server=interp.shared.process_server)
    show_stop(interp)


@command(".childdbg")
def child_debugging(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``.childdbg [0|1]``: whether processes the debuggee creates are debugged too."""
    from lindbg.constants import ProcessOptions

    options = interp.client.get_process_options()
    arg = parsed.args.strip()
    if arg:
        if arg not in ("0", "1"):
            raise CommandError("Syntax")
        options = options & ~ProcessOptions.ONLY_THIS_PROCESS
        if arg == "0":
            options |= ProcessOptions.ONLY_THIS_PROCESS
        interp.client.set_process_options(options)
    debugged = "not " if options & ProcessOptions.ONLY_THIS_PROCESS else ""
    interp.say(f"Processes created by the current process will {debugged}be debugged")
