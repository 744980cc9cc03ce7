"""The console loop: prompt, read a line, run it; embeddable (tests drive it
with piped input), text leaves only through the client's output callbacks.

The engine thread (the one that made the client) runs the commands; lines are
read on a reader thread, so while the prompt waits the engine thread sits in
``dispatch_callbacks`` and serves requests from other threads (DESIGN section 1).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from lindbg.commands.interpreter import CommandLanguage, prompt_of
from lindbg.constants import EventMask, OutputMask, Status
from lindbg.engine.callbacks import EventCallbacks, OutputCallbacks
from lindbg.engine.client import DebugClient
from lindbg.engine.handles import Module
from lindbg.errors import LindbgError

if TYPE_CHECKING:
    from lindbg.cli.terminal import TerminalLines


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
        return int(EventMask.LOAD_MODULE)

    def load_module(self, module: Module) -> Status:
        from lindbg.commands.formatting import addr17

        text = f"ModLoad: {addr17(module.base)} {addr17(module.end)}   {module.path}\n"
        self._client.output(OutputMask.NORMAL, text)
        return Status.NO_CHANGE


class Dispatching(Protocol):
    """What a console waits in while the user types: a local client (its engine
    serves other threads' requests meanwhile) or a remote one (its callbacks run)."""

    def dispatch_callbacks(self, timeout: float | None = None) -> bool: ...

    def exit_dispatch(self, client: Any) -> None: ...


class LineReader:
    """Reads command lines on a thread of its own, one line per request, while the
    engine thread waits in ``dispatch_callbacks`` and so serves what other threads
    ask of the engine (a debugging server's clients) as the user types.

    ``stop`` is asked whenever the wait is interrupted: True ends the read with
    None (a remote client's `q` ended the debugger)."""

    def __init__(
        self,
        client: Dispatching,
        stream: TextIO,
        terminal: TerminalLines | None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self._stop = stop
        self._client = client
        self._stream = stream
        self._terminal = terminal
        self._prompts: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._answer: tuple[str | None] | None = None
        self._thread = threading.Thread(target=self._run, name="lindbg-console-reader", daemon=True)
        self._thread.start()

    def read(self, prompt: str) -> str | None:
        """The next line (None at the end of input), read with ``prompt``; the engine
        thread serves the engine until it comes."""
        self._prompts.put(prompt)
        while True:
            with self._lock:
                answer, self._answer = self._answer, None
            if answer is not None:
                return answer[0]
            if self._stop is not None and self._stop():
                return None
            self._client.dispatch_callbacks()

    def _run(self) -> None:
        line: str | None = ""
        while line is not None:
            prompt = self._prompts.get()
            try:
                if self._terminal is not None:
                    line = self._terminal.read_line(prompt)
                else:
                    line = self._stream.readline() or None
            except (OSError, ValueError):  # the stream was closed under us
                line = None
            with self._lock:
                self._answer = (line,)
            try:
                self._client.exit_dispatch(self._client)
            except LindbgError:
                return  # the engine is gone (REENTRANT): nobody is waiting


def run_console(
    client: DebugClient,
    commands: list[str],
    stream: TextIO,
    screen: StreamOutput | None = None,
    language: CommandLanguage | None = None,
) -> int:
    """Run ``commands`` then every line of ``stream`` until `q` or end of input
    (which acts as `q`). With ``screen`` (the terminal's output, when standard
    input and output are both terminals) lines are read with editing and
    history instead. ``language`` is the engine's command processor (installed
    here when not given). Returns the exit status."""
    if language is None:
        language = CommandLanguage()
        client.set_command_processor(language)
    interp = language.interpreter(client)
    for given in commands:
        client.output(OutputMask.PROMPT, prompt_of(client) + given + "\n")
        client.execute(given)
        if interp.wants_quit:
            return 0
    terminal = None
    if screen is not None:
        from lindbg.cli.terminal import TerminalLines

        terminal = TerminalLines()
    reader = LineReader(client, stream, terminal, stop=lambda: language.quit_requested)
    while True:
        prompt = prompt_of(client)
        interp.prompt_width = len(prompt)
        if terminal is not None and screen is not None:
            line = reader.read(prompt)
            if line is not None:
                screen.hide_next_prompt()
                client.output(OutputMask.PROMPT, prompt + line + "\n")
        else:
            client.output(OutputMask.PROMPT, prompt)
            line = reader.read(prompt)
            if line is not None and not stream.isatty():
                client.output(OutputMask.NORMAL, line if line.endswith("\n") else line + "\n")
        if line is None:
            if language.quit_requested:
                return 0  # another client's `q` ended the debugger
            client.output(OutputMask.NORMAL, "\n")
            client.execute("q")
            return 0
        client.execute(line.rstrip("\n"))
        if interp.wants_quit or language.quit_requested:
            return 0
