"""A debugging server in a test: the test's thread owns the engine and serves it
(``dispatch_callbacks``) while remote clients run on other threads or processes.

Nothing sleeps: the serving loop ends when the remote work has finished (it calls
``exit_dispatch``) or its timeout passes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from lindbg import DebugClient, EndFlags, LindbgError, Status
from lindbg.remoting.server import ServerEntry

T = TypeVar("T")

#: Seconds any remote exchange in a test may take (2 loaded cores).
REMOTE_WAIT = 30.0


class Served:
    """An engine (``client``) with debugging servers, served on the calling thread."""

    def __init__(self, client: DebugClient | None = None) -> None:
        self.client = client if client is not None else DebugClient()
        self.entries: list[ServerEntry] = []

    def start(self, options: str = "tcp:port=0") -> ServerEntry:
        entry = self.client.start_server(options)
        self.entries.append(entry)
        return entry

    @staticmethod
    def connect_string(entry: ServerEntry, extra: str = "") -> str:
        """The client option string that reaches ``entry``."""
        transport = entry.options.transport
        if transport in ("tcp", "ssl"):
            text = f"{transport}:server=127.0.0.1,port={entry.port}"
        elif transport in ("npipe", "spipe"):
            text = f"{transport}:pipe={entry.options.pipe}"
        else:
            raise ValueError(transport)
        return text + ("," + extra if extra else "")

    def serve_while(self, work: Callable[[], T], timeout: float = REMOTE_WAIT) -> T:
        """Run ``work`` on a thread of its own while this thread serves the engine;
        return what it returned (or raise what it raised)."""
        done = threading.Event()
        result: list[Any] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                result.append(work())
            except BaseException as error:
                failure.append(error)
            finally:
                done.set()
                try:
                    self.client.exit_dispatch(self.client)
                except LindbgError:
                    pass

        thread = threading.Thread(target=run, name="remote-work", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not done.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the remote work did not finish within {timeout:g} s")
            self.client.dispatch_callbacks(timeout=remaining)
        thread.join(timeout)
        self.client.dispatch_callbacks(timeout=0)  # the work's exit request, if still pending
        if failure:
            raise failure[0]
        return result[0]

    def serve_until(self, condition: Callable[[], bool], timeout: float = REMOTE_WAIT) -> bool:
        """Serve the engine until ``condition()`` holds (True) or ``timeout`` (False):
        for what the I/O thread hands the engine after the remote work returned."""
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.client.dispatch_callbacks(timeout=min(remaining, 0.05))
        return True

    def close(self) -> None:
        try:
            self.client.shutdown_servers()
            if self.client.get_execution_status() != Status.NO_DEBUGGEE:
                self.client.end_session(EndFlags.ACTIVE_TERMINATE)
        except LindbgError:
            pass
