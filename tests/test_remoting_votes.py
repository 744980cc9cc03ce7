"""Remote votes at speed: every breakpoint hit voted by a remote client's callback,
on each transport, with the callback on the client's own thread and calls made from
inside it while the engine waits for the vote (remoting/direct.py, client._Link)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Programs, tls_files
from remoting_support import Served

import lindbg
from lindbg import EndFlags, EventMask, OutputCallbacks, Status
from lindbg.remoting.wire import to_wire

HITS = 300


@pytest.fixture
def served() -> Iterator[Served]:
    session = Served()
    yield session
    session.close()


class _Screen(OutputCallbacks):
    def __init__(self) -> None:
        self.text = ""

    def output(self, mask: int, text: str) -> None:
        self.text += text


def _options(transport: str, tmp_path: Path) -> tuple[str, str]:
    """Server options and the extra client options for ``transport``."""
    if transport == "tcp":
        return "tcp:port=0", ""
    if transport == "npipe":
        return f"npipe:pipe=votes-{threading.get_ident()}", ""
    cert, key, ca = tls_files(tmp_path)
    return f"ssl:port=0,cert={cert},key={key}", f"cafile={ca}"


@pytest.mark.parametrize("transport", ["tcp", "npipe", "ssl"])
def test_every_hit_is_voted_on_the_clients_own_thread(
    served: Served, programs: Programs, tmp_path: Path, transport: str
) -> None:
    served.client.create_process([programs.path("checksum"), str(HITS)])
    server_options, extra = _options(transport, tmp_path)
    entry = served.start(server_options)
    seen: dict[str, Any] = {"threads": set(), "hits": [], "nested": []}

    def remote_work() -> tuple[Status, str]:
        remote = lindbg.debug_connect(Served.connect_string(entry, extra))
        screen = _Screen()
        remote.set_output_callbacks(screen)

        class Voter(lindbg.EventCallbacks):
            def get_interest_mask(self) -> int:
                return int(EventMask.BREAKPOINT)

            def breakpoint(self, bp: Any) -> Status:
                seen["threads"].add(threading.get_ident())
                seen["hits"].append(bp.hit_count)
                if bp.hit_count in (1, HITS // 2, HITS):
                    # calls from inside the callback, while the engine awaits the vote
                    seen["nested"].append(remote.get_execution_status())
                    remote.execute(f".echo inside hit {bp.hit_count}")
                return Status.GO

        remote.set_event_callbacks(Voter())
        remote.add_breakpoint("checksum!target_fn")
        remote.set_execution_status(Status.GO)
        remote.wait_for_event(timeout=60)
        status = remote.get_execution_status()
        remote.end_session(EndFlags.DISCONNECT)
        return status, screen.text

    hub = served.client._engine.servers
    status, text = served.serve_while(remote_work, timeout=90)
    assert status == Status.NO_DEBUGGEE
    assert seen["hits"] == list(range(1, HITS + 1))
    assert len(seen["threads"]) == 1, "callbacks ran on more than one thread"
    # what a local client's callback sees at that moment
    assert seen["nested"] == [_status_inside_a_local_callback(programs)] * 3
    for hit in (1, HITS // 2, HITS):
        assert f"inside hit {hit}\n" in text
    assert hub is not None and not hub.seats  # the client left


def _status_inside_a_local_callback(programs: Programs) -> Status:
    client = lindbg.DebugClient()
    seen: list[Status] = []

    class Asker(lindbg.EventCallbacks):
        def get_interest_mask(self) -> int:
            return int(EventMask.BREAKPOINT)

        def breakpoint(self, bp: Any) -> Status:
            seen.append(client.get_execution_status())
            return Status.GO

    client.set_event_callbacks(Asker())
    client.create_process([programs.path("checksum"), "1"])
    client.add_breakpoint("checksum!target_fn")
    client.set_execution_status(Status.GO)
    client.wait_for_event(timeout=30)
    client.end_session(EndFlags.ACTIVE_TERMINATE)
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize(("transport", "direct"), [("tcp", True), ("npipe", True), ("ssl", False)])
def test_plain_links_are_shared_with_the_engine_thread_and_tls_links_are_not(
    served: Served, tmp_path: Path, transport: str, direct: bool
) -> None:
    server_options, extra = _options(transport, tmp_path)
    entry = served.start(server_options)
    hub = served.client._engine.servers
    assert hub is not None

    def remote_work() -> bool:
        remote = lindbg.debug_connect(Served.connect_string(entry, extra))
        remote.execute(".echo linked")
        linked = [seat.direct is not None for seat in hub.seats]
        remote.end_session(EndFlags.DISCONNECT)
        return linked == [True]

    assert served.serve_while(remote_work) is direct


def test_a_breakpoint_crosses_the_wire_as_its_public_fields(served: Served, programs: Programs) -> None:
    served.client.create_process([programs.path("checksum")])
    bp = served.client.add_breakpoint("checksum!target_fn")
    wire = to_wire(bp)
    assert wire["$"] == "Breakpoint"
    assert wire["address"] == bp.address and wire["enabled"] is True
    # the target's record of the inserted int3 is the engine's business, not the wire's
    assert all(not isinstance(value, dict | list) for value in wire.values()), wire
