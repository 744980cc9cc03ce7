"""``lindbg -remote OPTIONS``: a console on a debugging server's session.

The commands run on the server (``RemoteClient.execute``); this side prints the
shared output and its own prompt, which the server sends with each answer. End of
input disconnects (the session runs on for the others); `q` ends the session for
everyone, as in WinDbg. A dropped link is rejoined for as long as the server keeps
this client's place (its ``persist`` seconds).
"""

from __future__ import annotations

import contextlib
import signal
import time
from typing import TYPE_CHECKING, TextIO

from lindbg.cli.console import LineReader, StreamOutput
from lindbg.constants import EndFlags, OutputMask
from lindbg.errors import EngineUnusableError, LindbgError

if TYPE_CHECKING:
    from lindbg.cli.terminal import TerminalLines
    from lindbg.remoting.client import RemoteClient

#: Seconds between two attempts to rejoin after a dropped link.
REJOIN_INTERVAL = 0.5


def run_remote_console(remote: RemoteClient, stream: TextIO, screen: StreamOutput, interactive: bool) -> int:
    """Read lines from ``stream`` and run them on the server until end of input, `q`,
    or the server's end. Returns the exit status."""
    remote.set_output_callbacks(screen)
    signal.signal(signal.SIGINT, lambda signo, frame: _interrupt(remote))
    terminal: TerminalLines | None = None
    if interactive:
        from lindbg.cli.terminal import TerminalLines

        terminal = TerminalLines()
    reader = LineReader(remote, stream, terminal)
    while True:
        prompt = remote.prompt
        try:
            if terminal is None:
                screen.output(OutputMask.PROMPT, prompt)
            line = reader.read(prompt)
            if line is None:
                screen.output(OutputMask.NORMAL, "\n")
                remote.end_session(EndFlags.DISCONNECT)
                return 0
            if terminal is None and not stream.isatty():
                screen.output(OutputMask.NORMAL, line if line.endswith("\n") else line + "\n")
            command = line.rstrip("\n")
            remote.execute(command)
            if command.strip() in ("q", "qq", "qd"):
                return 0
        except EngineUnusableError as error:
            if remote.farewell is not None:
                screen.output(OutputMask.NORMAL, f"lindbg: {remote.farewell}\n")
                return 0
            if not _rejoin(remote, screen, str(error)):
                return 1


def _interrupt(remote: RemoteClient) -> None:
    with contextlib.suppress(LindbgError):
        remote.set_interrupt()


def _rejoin(remote: RemoteClient, screen: StreamOutput, reason: str) -> bool:
    """Try to take this client's place back while the server keeps it."""
    deadline = time.monotonic() + max(remote.persist, REJOIN_INTERVAL)
    screen.output(OutputMask.ERROR, f"lindbg: {reason}; rejoining for up to {remote.persist:g} s\n")
    last = ""
    while time.monotonic() < deadline:
        try:
            remote.reconnect(timeout=max(1.0, deadline - time.monotonic()))
        except LindbgError as error:
            last = str(error)
            # the wait between attempts: nothing to wake it early, the server is away
            time.sleep(REJOIN_INTERVAL)
            continue
        screen.output(OutputMask.NORMAL, f"lindbg: rejoined the session as {remote.identity}\n")
        return True
    screen.output(OutputMask.ERROR, f"lindbg: could not rejoin: {last or 'no answer'}\n")
    return False
