"""The text a debugging server shows about its clients, in WinDbg's forms."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lindbg.engine.client import DebugClient


def cdb_time(when: float | None = None) -> str:
    """WinDbg's timestamp: ``Mon Mar 04 16:05:21 2002`` (the day zero-padded,
    where ``time.ctime`` pads with a space)."""
    return time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(when))


def local_client_lines(clients: Iterable[DebugClient]) -> list[str]:
    """``.clients``'s lines for the clients of this process: one per user (a script's
    several clients are one person), with the latest activity."""
    latest: dict[str, float] = {}
    for client in clients:
        latest[client.identity] = max(latest.get(client.identity, 0.0), client.last_active)
    return [f"{name}, last active {cdb_time(when)}" for name, when in latest.items()]
