"""Event filters by signal name: sx, sxe, sxd, sxn, sxi (cdb's exception filters).

``sxe`` breaks at the first chance; ``sxd`` breaks only at the second chance (when
passing the signal would kill the program); ``sxn`` prints the event and goes on;
``sxi`` goes on silently. Filters not set keep the engine's defaults.
"""

from __future__ import annotations

import signal

from lindbg.commands.interpreter import CommandError, Interpreter, command
from lindbg.commands.parser import ParsedCommand

_MODES = {"sxe": "break", "sxd": "second-chance", "sxn": "output", "sxi": "ignore"}
_WORDS = {"break": "Break", "second-chance": "Second-chance break", "output": "Output", "ignore": "Ignore"}


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
    names = parsed.args.split()
    if not names:
        raise CommandError("Syntax")
    mode = _MODES[parsed.name]
    for name in names:
        signo = signal_number(name)
        interp.client.set_signal_break(signo, mode == "break", mode in ("break", "second-chance"))
        interp.notify_signals.discard(signo)
        if mode == "output":
            interp.notify_signals.add(signo)
        interp.filter_modes[signo] = mode


@command("sx")
def list_filters(interp: Interpreter, parsed: ParsedCommand) -> None:
    for sig in sorted(signal.Signals, key=int):
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        mode = interp.filter_modes.get(int(sig))
        if mode is None:
            mode = "break" if interp.client.signal_breaks(int(sig)) else "ignore"
        interp.say(f"{sig.name.lower():>9} - {signal.strsignal(sig) or sig.name} - {_WORDS[mode]}")
