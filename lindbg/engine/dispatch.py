"""Dispatch: the clients of an engine, who hears which event (interest masks),
callbacks invoked on their clients' threads, output, extension notifications.

Output carries its origin (``OutputOrigin``): the client whose command produced it,
the target, or the engine itself. Output callbacks that define
``output_from(mask, text, origin)`` receive it (a debugging server prefixes the
client's name); the others get ``output(mask, text)``. A prompt (OutputMask.PROMPT)
goes only to the client it is the prompt of.

A callback of a client owned by another thread runs on that thread; the engine
thread waits for its answer at most ``callback_timeout`` seconds. A client that
does not answer in time is marked unresponsive: its vote is GO, and until its
stalled callback returns it is not waited for again, so one stalled client never
hangs the session.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lindbg.constants import (
    EventMask,
    Notify,
    OutputMask,
    Status,
)
from lindbg.engine import status as status_rules
from lindbg.engine.extensions import Extension
from lindbg.engine.inbox import Reply

if TYPE_CHECKING:
    from lindbg.engine.client import DebugClient
    from lindbg.engine.engine import Engine

_EVENT_BITS = (
    EventMask.BREAKPOINT,
    EventMask.EXCEPTION,
    EventMask.CREATE_THREAD,
    EventMask.EXIT_THREAD,
    EventMask.CREATE_PROCESS,
    EventMask.EXIT_PROCESS,
    EventMask.LOAD_MODULE,
    EventMask.UNLOAD_MODULE,
    EventMask.SYSTEM_ERROR,
    EventMask.SESSION_STATUS,
    EventMask.CHANGE_DEBUGGEE_STATE,
    EventMask.CHANGE_ENGINE_STATE,
    EventMask.CHANGE_SYMBOL_STATE,
)


#: How long the engine thread waits for another thread's callback (seconds).
DEFAULT_CALLBACK_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class OutputOrigin:
    """Where a piece of output comes from."""

    #: "client" (a command a client ran), "target" or "engine".
    kind: str
    #: The client, for "client".
    client: DebugClient | None = None


ENGINE_ORIGIN = OutputOrigin("engine")


def _deliver(out: Any, mask: int, text: str, origin: OutputOrigin) -> None:
    with contextlib.suppress(Exception):  # a broken output callback must not break the engine
        output_from = getattr(out, "output_from", None)
        if output_from is not None:
            output_from(mask, text, origin)
        else:
            out.output(mask, text)


def _bound(out: Any, mask: int, text: str, origin: OutputOrigin) -> Callable[[], None]:
    """The delivery of one piece of output, to run later on its client's thread."""
    return lambda: _deliver(out, mask, text, origin)


class Dispatcher:
    """The clients, their listener table and the loaded extensions."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.clients: list[DebugClient] = []
        #: (client, callbacks object) for each event bit, in client creation order.
        self.listeners: dict[int, list[tuple[DebugClient, Any]]] = {int(bit): [] for bit in _EVENT_BITS}
        self.extensions: list[Extension] = []
        #: The origin of output produced now (a command's client while it runs).
        self.origin = ENGINE_ORIGIN
        #: How long a callback on another thread may take before its client is
        #: marked unresponsive.
        self.callback_timeout = DEFAULT_CALLBACK_TIMEOUT

    def add_client(self, client: DebugClient) -> None:
        self.clients.append(client)

    def remove_client(self, client: DebugClient) -> None:
        if client in self.clients:
            self.clients.remove(client)
        self.refresh_listeners()

    def refresh_listeners(self) -> None:
        """Recompute who hears what (on registration, never per event)."""
        table: dict[int, list[tuple[DebugClient, Any]]] = {int(bit): [] for bit in _EVENT_BITS}
        for client in self.clients:
            callbacks = client.event_callbacks
            if callbacks is None or not client.enabled:
                continue
            mask = int(client.interest_mask)
            for bit in _EVENT_BITS:
                if mask & bit:
                    table[int(bit)].append((client, callbacks))
        self.listeners = table

    def invoke(self, client: DebugClient, fn: Callable[..., Any], *args: Any) -> Any:
        """Call a callback on its client's thread and return what it returned (GO for
        an unresponsive client)."""
        engine = self._engine
        if client.owner == engine.thread_ident:
            try:
                return fn(*args)
            except Exception as error:  # a broken callback must not break the session
                self._callback_failed(fn, error)
                return None
        if client.unresponsive:
            return Status.GO
        inbox = engine.inbox_for(client.owner)

        def run() -> Any:
            try:
                return fn(*args)
            except Exception as error:
                self._callback_failed(fn, error)
                return None
            finally:
                client.unresponsive = False
                engine.inbox.wake()

        reply = inbox.post(run)
        assert reply is not None
        if not self.await_reply(reply):
            if engine.unusable_reason is not None:
                return None
            client.unresponsive = True
            self.warn_unanswered(getattr(fn, "__qualname__", repr(fn)))
            return Status.GO
        return reply.result()

    def await_reply(self, reply: Reply, wait: Callable[[float], None] | None = None) -> bool:
        """Engine thread: wait at most ``callback_timeout`` for ``reply`` while serving
        the engine's inbox (the answering thread may need the engine meanwhile).
        ``wait(seconds)`` replaces the inbox's own wait (a server reading the answer
        off its link itself). False: it did not come in time, or the engine was
        ended meanwhile."""
        engine = self._engine
        if wait is None:
            wait = lambda seconds: engine.inbox.wait(seconds, for_exit=False)  # noqa: E731
        deadline = time.monotonic() + self.callback_timeout
        while not reply.done:
            engine.inbox.run_pending()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or engine.unusable_reason is not None:
                return False
            wait(min(remaining, 0.05))
        return True

    def warn_unanswered(self, what: str) -> None:
        self.output(
            OutputMask.WARNING,
            f"a client did not answer {what} within {self.callback_timeout:g} s: its vote is GO\n",
        )

    def _callback_failed(self, fn: Callable[..., Any], error: Exception) -> None:
        name = getattr(fn, "__qualname__", repr(fn))
        self.output(OutputMask.ERROR, f"callback {name} raised {type(error).__name__}: {error}\n")

    def event(self, bit: int, method: str, *args: Any) -> Status:
        """Ask every interested client; return the combined status."""
        result = Status.NO_CHANGE
        for client, callbacks in self.listeners[bit]:
            result = status_rules.stronger(result, self.invoke(client, getattr(callbacks, method), *args))
        return result

    def notify(self, bit: int, method: str, *args: Any) -> None:
        for client, callbacks in self.listeners[bit]:
            self.invoke(client, getattr(callbacks, method), *args)

    def notify_extensions(self, what: Notify) -> None:
        for extension in list(self.extensions):
            try:
                extension.notify(int(what), 0)
            except Exception as error:
                self.output(OutputMask.ERROR, f"extension {extension.name} notify raised {error}\n")

    @contextlib.contextmanager
    def output_from(self, client: DebugClient) -> Iterator[None]:
        """Output produced inside the block is ``client``'s (its command runs)."""
        before = self.origin
        self.origin = OutputOrigin("client", client)
        try:
            yield
        finally:
            self.origin = before

    def output(
        self, mask: int, text: str, origin: OutputOrigin | None = None, exclude: DebugClient | None = None
    ) -> None:
        """Send ``text`` to every client's output callbacks (the engine never prints);
        a prompt only to its own client; never to ``exclude``."""
        origin = self.origin if origin is None else origin
        only = origin.client if mask & OutputMask.PROMPT else None
        engine_thread = self._engine.thread_ident
        for client in self.clients:
            out = client.output_callbacks
            if (
                out is None
                or not client.enabled
                or client is exclude
                or (only is not None and client is not only)
            ):
                continue
            if client.owner == engine_thread:
                _deliver(out, mask, text, origin)
            else:
                self._engine.inbox_for(client.owner).post(_bound(out, mask, text, origin), want_reply=False)
