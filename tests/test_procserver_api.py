"""``start_process_server`` and ``wait_for_process_server_end`` in a script's own
process: the server is listed by ``.servers`` as a Process Server, ``.endsrv`` ends
it, and a client's ``monitor exit`` ends the wait."""

from __future__ import annotations

import re

import pytest
from conftest import WAIT, Programs

from lindbg import DebugClient, InvalidOperationError, OutputCallbacks
from lindbg.procserver.link import RspLink


class Screen(OutputCallbacks):
    def __init__(self) -> None:
        self.text = ""

    def output(self, mask: int, text: str) -> None:
        self.text += text


def test_waiting_without_a_process_server_is_an_error() -> None:
    with pytest.raises(InvalidOperationError, match="no process server"):
        DebugClient().wait_for_process_server_end(0)


def test_a_process_server_in_this_process_serves_and_ends_at_monitor_exit(programs: Programs) -> None:
    client = DebugClient()
    screen = Screen()
    client.set_output_callbacks(screen)
    entry = client.start_process_server("tcp:port=0")
    assert entry.port
    client.execute(".servers")
    assert re.search(rf"^{entry.id} - Process Server - tcp:Port={entry.port}$", screen.text, re.MULTILINE)
    assert client.wait_for_process_server_end(0.05) is False

    with RspLink.connect(f"tcp:server=127.0.0.1,port={entry.port}") as link:
        stop = link.request(b"vRun;" + programs.path("checksum").encode().hex().encode())
        assert stop.startswith(b"T05")
        link.resume(b"vCont;c")
        exited = link.wait_stop(None)
        assert exited is not None and exited.startswith(b"W00")
        link.monitor("exit")
    assert client.wait_for_process_server_end(WAIT) is True
    assert client.wait_for_process_server_end(0) is True  # once ended, at once
    screen.text = ""
    client.execute(".servers")
    assert f"{entry.id} - <Disabled>" in screen.text


def test_endsrv_ends_a_process_server() -> None:
    client = DebugClient()
    entry = client.start_process_server("tcp:port=0")
    client.end_server(entry.id)
    assert client.wait_for_process_server_end(WAIT) is True
    assert entry.line() == f"{entry.id} - <Disabled>"
