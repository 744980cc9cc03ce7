"""Dump-file commands: .opendump, .ecxr and .dump (CDB-OUTPUT.md §23)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lindbg.commands.interpreter import CommandError, Interpreter, command
from lindbg.commands.parser import ParsedCommand
from lindbg.constants import OutputMask, Status


def open_dump(interp: Interpreter, path: str, image_dirs: Sequence[str] = ()) -> None:
    """Open ``path`` and show what cdb shows: the banner (printed by the engine
    as it loads), the stored exception and the register block at it."""
    from lindbg.commands.execution import show_stop

    interp.client.open_dump_file(path, image_dirs)
    event = interp.client.get_last_event()
    if event is not None and event.kind == "exception":
        interp.say("This dump file has an exception of interest stored in it.")
        interp.say("The stored exception information can be accessed via .ecxr.")
    if interp.client.get_execution_status() == Status.BREAK:
        show_stop(interp)


@command(".opendump")
def open_dump_command(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``.opendump FILE``: end nothing, open a core as the session's target."""
    path = parsed.args.strip().strip('"')
    if not path:
        raise CommandError("Syntax")
    open_dump(interp, path)
    interp.say(f"Opened '{path}'")


@command(".ecxr")
def exception_context(interp: Interpreter, parsed: ParsedCommand) -> None:
    """Make the thread of the stored exception current and show its registers."""
    from lindbg.commands.execution import register_block

    event = interp.client.get_last_event()
    if event is None or event.kind != "exception":
        interp.say("Unable to get exception context, HRESULT 0x8000FFFF")
        return
    interp.client.set_current_thread(event.tid)
    interp.say(register_block(interp))


def _progress(interp: Interpreter) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        text = f"Writing memory: {percent}% ({done >> 20} of {total >> 20} MiB)" if done < total else ""
        interp.client.output(OutputMask.STATUS, text)

    return show


@command(".dump")
def write_dump(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``.dump [/o] [/ma|/m] FILE``: write an ELF core of the stopped process.

    ``/ma`` takes every readable mapping (the program's code too); the default
    (``/m``) takes what the kernel's default coredump_filter takes: anonymous and
    writable memory and the first page of each ELF file. ``/o`` overwrites."""
    words = parsed.args.split()
    overwrite = full = False
    while len(words) > 1 and words[0].startswith("/"):  # a path may start with '/' too
        option = words.pop(0).lower()
        if option == "/o":
            overwrite = True
        elif option == "/ma":
            full = True
        elif option != "/m":
            raise CommandError("Syntax")
    if len(words) != 1:
        raise CommandError("Syntax")
    path = words[0].strip('"')
    kind = "mini user dump with full memory" if full else "mini user dump"
    interp.say(f"Creating {path} - {kind}")
    interp.client.write_dump_file(path, full=full, overwrite=overwrite, progress=_progress(interp))
    interp.say("Dump successfully written")
