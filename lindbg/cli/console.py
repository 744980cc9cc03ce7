"""The console loop: prompt, read a line, run it; embeddable (tests drive it
with piped input), text leaves only through the client's output callbacks."""

from __future__ import annotations

from typing import TextIO

from lindbg.constants import OutputMask, Status
from lindbg.engine.callbacks import EventCallbacks, OutputCallbacks
from lindbg.engine.client import DebugClient
from lindbg.errors import LindbgError


class StreamOutput(OutputCallbacks):
    """Writes engine output to a text stream (errors included, as cdb does)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._hide_prompt = False
        self._status_width = 0

    def hide_next_prompt(self) -> None:
        """The next prompt text is already on the screen (line editing drew it):
        keep it out of the stream; logs and other clients still get it."""
        self._hide_prompt = True

    def output(self, mask: int, text: str) -> None:
        if self._hide_prompt and mask & OutputMask.PROMPT:
            self._hide_prompt = False
            return
        if mask & OutputMask.STATUS:
            # progress redraws one line in place; a pipe or a log gets none of it
            if self._stream.isatty():
                self._stream.write("\r" + text.rstrip("\n").ljust(self._status_width) + "\r")
                self._status_width = len(text.rstrip("\n"))
                self._stream.flush()
            return
        self._stream.write(text)
        self._stream.flush()


class ConsoleEvents(EventCallbacks):
    """The event lines cdb prints as they happen (ModLoad)."""

    def __init__(self, client: DebugClient) -> None:
        self._client = client

    def get_interest_mask(self) -> int:
        from lindbg.constants import EventMask

        return int(EventMask.LOAD_MODULE | EventMask.EXCEPTION)

    def exception(self, exc: object) -> Status:
        """`sxn` signals: print the event as it passes (cdb's "output" filter)."""
        signo = exc.signal  # type: ignore[attr-defined]
        if signo in self._client.command_interpreter.notify_signals:
            import signal as signals

            chance = "first chance" if exc.first_chance else "!!! second chance !!!"  # type: ignore[attr-defined]
            where = f"({exc.pid:x}.{exc.tid:x})"  # type: ignore[attr-defined]
            text = f"{where}: {signals.strsignal(signo)} - code {signo:08x} ({chance})\n"
            self._client.output(OutputMask.NORMAL, text)
        return Status.NO_CHANGE

    def load_module(self, module: object) -> Status:
        from lindbg.commands.formatting import addr17

        base, end, path = module.base, module.end, module.path  # type: ignore[attr-defined]
        self._client.output(OutputMask.NORMAL, f"ModLoad: {addr17(base)} {addr17(end)}   {path}\n")
        return Status.NO_CHANGE


def prompt_of(client: DebugClient) -> str:
    """cdb's prompt: process index, thread index (decimal, 3 wide)."""
    try:
        current = client.current_thread()
        tids = [t.tid for t in client.threads(current.pid)]
        return f"0:{tids.index(current.tid):03d}> "
    except (LindbgError, ValueError):
        return "0:000> "


def run_console(
    client: DebugClient, commands: list[str], stream: TextIO, screen: StreamOutput | None = None
) -> int:
    """Run ``commands`` then every line of ``stream`` until `q` or end of input
    (which acts as `q`). With ``screen`` (the terminal's output, when standard
    input and output are both terminals) lines are read with editing and
    history instead. Returns the exit status."""
    interp = client.command_interpreter
    for given in commands:
        client.output(OutputMask.PROMPT, prompt_of(client) + given + "\n")
        interp.execute(given)
        if interp.wants_quit:
            return 0
    terminal = None
    if screen is not None:
        from lindbg.cli.terminal import TerminalLines

        terminal = TerminalLines()
    line: str | None
    while True:
        prompt = prompt_of(client)
        interp.prompt_width = len(prompt)
        if terminal is not None and screen is not None:
            line = terminal.read_line(prompt)
            if line is not None:
                screen.hide_next_prompt()
                client.output(OutputMask.PROMPT, prompt + line + "\n")
        else:
            client.output(OutputMask.PROMPT, prompt)
            line = stream.readline() or None
            if line is not None and not stream.isatty():
                client.output(OutputMask.NORMAL, line if line.endswith("\n") else line + "\n")
        if line is None:
            client.output(OutputMask.NORMAL, "\n")
            interp.execute("q")
            return 0
        interp.execute(line.rstrip("\n"))
        if interp.wants_quit:
            return 0
