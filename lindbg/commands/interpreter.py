"""The command interpreter: parse a line, run each command through the client API,
and render every error in cdb's shapes (CDB-OUTPUT.md §0).

Commands never call ptrace: they call ``DebugClient`` methods, and all text
leaves through the client's output (so a remote client sees what a local one
sees). Each command family lives in its own module and registers here.

``CommandLanguage`` is the engine's ``CommandProcessor`` (one per engine): it holds
what the session shares (how the target last ran, for ``gc``; whether a command is
waiting for the target; the command line ``.restart`` runs again), and one
``Interpreter`` per client for what is that client's own (its prompt's width, where
``d*`` and ``u`` continue, whether it asked to quit).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lindbg.commands.parser import ParsedCommand, parse_command, split_commands
from lindbg.constants import OutputMask, Status
from lindbg.errors import LindbgError, NoDebuggeeError

if TYPE_CHECKING:
    from lindbg.engine.client import DebugClient
    from lindbg.targets.remote.connection import ProcessServerConnection

Handler = Callable[["Interpreter", ParsedCommand], None]

#: name -> handler, filled by the command-family modules at import.
COMMANDS: dict[str, Handler] = {}


def command(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler under one or more command names."""

    def register(handler: Handler) -> Handler:
        for name in names:
            COMMANDS[name] = handler
        return handler

    return register


class CommandError(LindbgError):
    """A command failed in a way cdb reports with a caret under the command
    (``^ Syntax error in 'xyz'``); ``kind`` is the words before ``error``."""

    def __init__(self, kind: str, offset: int = 0) -> None:
        super().__init__(kind)
        self.kind = kind
        self.offset = offset


class CommandLanguage:
    """The cdb language as an engine's command processor (``DebugClient.execute``)."""

    def __init__(self) -> None:
        #: True while `g`/`p`/`t` waits; a breakpoint command's resume is then a request.
        self.running = False
        self.resume_request: tuple[Any, int] | None = None
        #: How the target last ran (status, count): what `gc` resumes with.
        self.last_resume: tuple[Any, int] = (Status.GO, 1)
        #: The command line `.restart` runs again (set by the console and `.create`).
        self.last_command_line = ""
        #: Set by any client's `q`: every console of the engine leaves.
        self.quit_requested = False
        #: The process server `.create`, `.attach`, `.tlist` and `.endpsrv` use
        #: (``lindbg -premote``); None: this machine.
        self.process_server: ProcessServerConnection | None = None
        self._interpreters: weakref.WeakKeyDictionary[DebugClient, Interpreter] = weakref.WeakKeyDictionary()

    def interpreter(self, client: DebugClient) -> Interpreter:
        """``client``'s own interpreter (made on first use)."""
        found = self._interpreters.get(client)
        if found is None:
            found = self._interpreters[client] = Interpreter(client, self)
        return found

    def execute(self, client: DebugClient, text: str) -> None:
        self.interpreter(client).execute(text)

    def prompt(self, client: DebugClient) -> str:
        """The prompt ``client`` shows now (``0:000> ``)."""
        return prompt_of(client)

    def quitting(self, client: DebugClient) -> bool:
        """True once ``client``'s commands asked to leave the debugger (`q`)."""
        return self.interpreter(client).wants_quit


class Interpreter:
    """Runs command lines for one client."""

    def __init__(self, client: DebugClient, shared: CommandLanguage) -> None:
        self.client = client
        #: What every client of the engine shares.
        self.shared = shared
        #: The prompt's width, so a caret lands under the failing character.
        self.prompt_width = 7
        #: Where `d*` and `u` continue when given no address.
        self.next_dump: dict[str, int] = {}
        self.wants_quit = False

    def say(self, text: str, mask: int = OutputMask.NORMAL) -> None:
        self.client.output(mask, text if text.endswith("\n") else text + "\n")

    def execute(self, line: str) -> None:
        """Run every command of ``line``; an error ends the line, as in cdb."""
        _load_families()
        for text, offset in split_commands(line):
            parsed = parse_command(text, offset, COMMANDS)
            handler = COMMANDS.get(parsed.name) or COMMANDS.get("!" if parsed.name[0] == "!" else "")
            try:
                if handler is None:
                    raise CommandError("Syntax")
                handler(self, parsed)
            except CommandError as error:
                caret = " " * (self.prompt_width + parsed.offset + error.offset)
                self.say(f"{caret}^ {error.kind} error in '{parsed.text}'", OutputMask.ERROR)
                return
            except NoDebuggeeError:
                caret = " " * (self.prompt_width + parsed.offset)
                self.say(f"{caret}^ No runnable debuggees error in '{parsed.text}'", OutputMask.ERROR)
                return
            except LindbgError as error:
                self.say(str(error), OutputMask.ERROR)
                return
            if self.wants_quit:
                return


_loaded = False


def _load_families() -> None:
    """Import the command-family modules once (they register themselves)."""
    global _loaded
    if _loaded:
        return
    from lindbg.commands import (  # noqa: F401
        breakpoints,
        control,
        data,
        dumps,
        events,
        execution,
        extension_commands,
        remoting,
        search,
        session,
        source,
        threads,
        variables,
    )

    _loaded = True


def prompt_of(client: DebugClient) -> str:
    """cdb's prompt: process index, thread index (decimal, 3 wide)."""
    try:
        current = client.current_thread()
        tids = [t.tid for t in client.threads(current.pid)]
        return f"0:{tids.index(current.tid):03d}> "
    except (LindbgError, ValueError):
        return "0:000> "
