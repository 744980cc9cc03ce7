"""The API a remote client may call (``RemoteClient`` on the other end): each entry
runs on the engine thread with the seat's ``DebugClient`` and the call's arguments.

Only what is listed here can be reached over the wire; arguments arrive as msgpack
values and are checked by the methods themselves (a wrong type is a ``TypeError``,
reported to the caller as a bad argument).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lindbg.constants import EndFlags
from lindbg.errors import InvalidOperationError

if TYPE_CHECKING:
    from lindbg.engine.client import DebugClient
    from lindbg.remoting.server import ServerHub

#: DebugClient methods a remote client calls by the same name with the same arguments.
PLAIN_METHODS = frozenset(
    {
        "get_execution_status",
        "set_execution_status",
        "wait_for_event",
        "read_memory",
        "write_memory",
        "get_register",
        "set_register",
        "resolve",
        "symbol_at",
        "source_line",
        "processes",
        "threads",
        "current_thread",
        "set_current_thread",
        "modules",
        "stack",
        "get_last_event",
        "breakpoints",
        "find_symbols",
        "disassemble",
        "attach_process",
        "open_dump_file",
        "get_event_filter",
        "set_event_filter",
        "get_process_options",
        "set_process_options",
        "memory_map",
        "auxv",
        "output",
    }
)


def _execute(hub: ServerHub, client: DebugClient, text: str) -> str:
    """Run a command line; the result is the prompt to show next."""
    client.execute(str(text))
    return hub.prompt(client)


def _prompt(hub: ServerHub, client: DebugClient) -> str:
    return hub.prompt(client)


def _end_session(hub: ServerHub, client: DebugClient, flags: int) -> None:
    if int(flags) not in (EndFlags.PASSIVE, EndFlags.ACTIVE_TERMINATE, EndFlags.ACTIVE_DETACH):
        raise InvalidOperationError(f"end_session({flags}) cannot be asked of a debugging server")
    client.end_session(int(flags))


def _add_breakpoint(
    hub: ServerHub,
    client: DebugClient,
    location: int | str,
    access: str | None = None,
    size: int = 1,
    one_shot: bool = False,
) -> Any:
    return client.add_breakpoint(location, access=access, size=size, one_shot=one_shot)


def _remove_breakpoint(hub: ServerHub, client: DebugClient, bp_id: int) -> None:
    for bp in client.breakpoints():
        if bp.id == bp_id:
            client.remove_breakpoint(bp)
            return
    raise InvalidOperationError(f"breakpoint {bp_id} does not exist")


def _create_process(
    hub: ServerHub,
    client: DebugClient,
    argv_or_cmdline: list[str] | str,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    options: int = 0,
) -> Any:
    return client.create_process(argv_or_cmdline, env, cwd, options)


def _clients(hub: ServerHub, client: DebugClient) -> list[str]:
    return client.connected_clients()


def _servers(hub: ServerHub, client: DebugClient) -> list[str]:
    return [entry.line() for entry in hub.servers]


SPECIAL: dict[str, Callable[..., Any]] = {
    "execute": _execute,
    "prompt": _prompt,
    "end_session": _end_session,
    "add_breakpoint": _add_breakpoint,
    "remove_breakpoint": _remove_breakpoint,
    "create_process": _create_process,
    "clients": _clients,
    "servers": _servers,
}


def run_call(hub: ServerHub, client: DebugClient, method: str, args: list[Any]) -> Any:
    """Engine thread: the value of ``method(*args)`` for ``client``."""
    special = SPECIAL.get(method)
    if special is not None:
        return special(hub, client, *args)
    if method in PLAIN_METHODS:
        return getattr(client, method)(*args)
    raise InvalidOperationError(f"a remote client cannot call '{method}'")
