"""Dispatch: the clients of an engine, who hears which event (interest masks),
callbacks invoked on their clients' threads, output, extension notifications."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lindbg.constants import (
    EventMask,
    Notify,
    OutputMask,
    Status,
)
from lindbg.engine import status as status_rules
from lindbg.engine.extensions import Extension

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


def _bind_output(out: Any, mask: int, text: str) -> Callable[[], None]:
    """A call of ``out.output(mask, text)`` to run later on the client's thread."""

    def deliver() -> None:
        with contextlib.suppress(Exception):
            out.output(mask, text)

    return deliver


class Dispatcher:
    """The clients, their listener table and the loaded extensions."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.clients: list[DebugClient] = []
        #: (client, callbacks object) for each event bit, in client creation order.
        self.listeners: dict[int, list[tuple[DebugClient, Any]]] = {int(bit): [] for bit in _EVENT_BITS}
        self.extensions: list[Extension] = []

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
        """Call a callback on its client's thread and return what it returned."""
        if client.owner == self._engine.thread_ident:
            try:
                return fn(*args)
            except Exception as error:  # a broken callback must not break the session
                self._callback_failed(fn, error)
                return None
        inbox = self._engine.inbox_for(client.owner)

        def run() -> Any:
            try:
                return fn(*args)
            except Exception as error:
                self._callback_failed(fn, error)
                return None
            finally:
                self._engine.inbox.wake()

        reply = inbox.post(run)
        assert reply is not None
        while not reply.done:
            self._engine.inbox.run_pending()
            self._engine.inbox.wait(0.05)
            if self._engine.unusable_reason is not None:
                return None
        return reply.result()

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

    def output(self, mask: int, text: str) -> None:
        """Send ``text`` to every client's output callbacks (the engine never prints)."""
        for client in self.clients:
            out = client.output_callbacks
            if out is not None and client.enabled:
                if client.owner == self._engine.thread_ident:
                    with contextlib.suppress(Exception):
                        out.output(mask, text)
                else:
                    self._engine.inbox_for(client.owner).post(_bind_output(out, mask, text), want_reply=False)
