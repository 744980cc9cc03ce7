"""Event filters by signal name: sx, sxe, sxd, sxn, sxi (cdb's exception filters).

``sxe`` breaks at the first chance; ``sxd`` breaks only at the second chance (when
passing the signal would kill the program); ``sxn`` prints the event and goes on;
``sxi`` goes on silently. Filters not set keep the engine's defaults.
"""

from __future__ import annotations

import signal

from lindbg.commands.interpreter import CommandError, Interpreter, command
from lindbg.commands.parser import ParsedCommand
from lindbg.constants import EventFilter

_MODES = {
    "sxe": EventFilter.BREAK,
    "sxd": EventFilter.SECOND_CHANCE_BREAK,
    "sxn": EventFilter.OUTPUT,
    "sxi": EventFilter.IGNORE,
}
_WORDS = {
    EventFilter.BREAK: "Break",
    EventFilter.SECOND_CHANCE_BREAK: "Second-chance break",
    EventFilter.OUTPUT: "Output",
    EventFilter.IGNORE: "Ignore",
}


def signal_number(name: str) -> int:
    """``SIGSEGV``, ``segv``, ``11`` -> 11.

    Raises:
        CommandError: not a signal cdb's filters can name.
    """
    text = name.strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signal.Signals[text])
    except KeyError:
        raise CommandError("Syntax") from None


@command("sxe", "sxd", "sxn", "sxi")
def set_filter(interp: Interpreter, parsed: ParsedCommand) -> None:
    """Set the session's filter of each named signal (every client sees the change)."""
    names = parsed.args.split()
    if not names:
        raise CommandError("Syntax")
    mode = _MODES[parsed.name]
    for name in names:
        interp.client.set_event_filter(signal_number(name), mode)


@command("sx")
def list_filters(interp: Interpreter, parsed: ParsedCommand) -> None:
    for sig in sorted(signal.Signals, key=int):
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        mode = interp.client.get_event_filter(int(sig))
        interp.say(f"{sig.name.lower():>9} - {signal.strsignal(sig) or sig.name} - {_WORDS[mode]}")
