"""The seam between the engine and a command language (dbgeng's IDebugControl::Execute).

The engine runs ``client.execute(text)`` on its engine thread through a
``CommandProcessor``; it does not know the language. The top-level package
(``lindbg/__init__.py``) installs the cdb language of ``lindbg.commands`` as the
default; an embedder may install its own with ``set_default_processor`` before
creating clients, or give one engine its own through ``DebugClient.set_command_processor``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from lindbg.engine.client import DebugClient


class CommandProcessor(Protocol):
    """Runs command lines for the clients of one engine (one per engine)."""

    def execute(self, client: DebugClient, text: str) -> None:
        """Run ``text`` as ``client`` typed it, on the engine thread. Text leaves
        through ``client.output``; errors are reported there, not raised, except
        ``EngineUnusableError``."""

    def prompt(self, client: DebugClient) -> str:
        """The prompt ``client`` shows now (a remote console gets it with each answer)."""

    def quitting(self, client: DebugClient) -> bool:
        """True once ``client``'s commands asked to leave the debugger (cdb's `q`):
        a debugging server then ends for everyone."""


#: Makes the processor of a new engine (None: ``execute`` is refused).
default_processor: Callable[[], CommandProcessor] | None = None


def set_default_processor(factory: Callable[[], CommandProcessor] | None) -> None:
    """The processor factory engines created from now on use."""
    global default_processor
    default_processor = factory
