"""``lindbgsrv`` against real gdb: extended-remote sessions driven by ``gdb -batch``
(run to a breakpoint, bt, registers, memory, a watchpoint, continue to the exit,
attach and detach, monitor exit), and the server's own rules checked on a raw socket
(clients one after another, processes kept stopped between them, bad packets)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import WAIT, Programs
from procserver_support import Lindbgsrv, Raw

pytestmark = pytest.mark.skipif(shutil.which("gdb") is None, reason="needs gdb")

#: Seconds a gdb session may take (2 loaded cores).
GDB_WAIT = 60.0


class Server(Lindbgsrv):
    """``lindbgsrv`` on a loopback port, with gdb to drive it."""

    def __init__(self, *extra: str) -> None:
        super().__init__("tcp:port=0", "tcp:server=127.0.0.1", *extra)

    def gdb(self, program: str, *commands: str) -> str:
        argv = ["gdb", "-nx", "-batch", "-ex", "set sysroot /", "-ex", "set confirm off"]
        argv += ["-ex", f"file {program}", "-ex", f"set remote exec-file {program}"]
        argv += ["-ex", f"target extended-remote 127.0.0.1:{self.port}"]
        for command in commands:
            argv += ["-ex", command]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=GDB_WAIT, stdin=subprocess.DEVNULL
        )
        return done.stdout + done.stderr


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


def test_gdb_runs_a_program_to_a_breakpoint_and_to_its_exit(server: Server, programs: Programs) -> None:
    program = programs.path("checksum")
    target_fn = programs.symbol("checksum", "target_fn")
    out = server.gdb(
        program,
        "break target_fn",
        "run 3 7",
        "bt",
        "info registers rip",
        "x/2xb target_fn",
        "watch sink",
        "continue",
        "continue",
        "delete",
        "continue",
        "monitor help",
        "monitor exit",
    )
    assert re.search(r"Breakpoint 1, target_fn \(x=0\)", out), out
    assert re.search(r"#1 .* in main \(", out), out
    rip = re.search(r"rip\s+0x([0-9a-f]+)", out)
    assert rip is not None and target_fn < int(rip.group(1), 16) < target_fn + 16, out
    # memory as the program has it: no breakpoint byte shows
    assert re.search(r"<target_fn>:\s+0xf3\s+0x0f|<target_fn>:\s+0x55\s+0x48", out), out
    assert "Hardware watchpoint 2: sink" in out
    assert re.search(r"Old value = 0\s+New value = 1", out), out
    assert "exited with code 07" in out, out
    assert "The following monitor commands are supported" in out
    assert server.exited() == 0


PIE_SOURCE = """
#include <stdio.h>
int counter;
int work(int x) { counter += x; return x * 3; }
int main(void) {
    int total = 0;
    for (int i = 0; i < 3; i++) total += work(i);
    printf("total=%d\\n", total);
    return 0;
}
"""


def test_gdb_debugs_a_pie_program_whose_libraries_it_reads_through_the_server(
    server: Server, tmp_path: Path
) -> None:
    source = tmp_path / "pie.c"
    source.write_text(PIE_SOURCE)
    program = tmp_path / "pie"
    subprocess.run(["gcc", "-g", "-O0", "-pie", "-fPIE", "-o", str(program), str(source)], check=True)
    # no `set sysroot /`: gdb takes the program's libraries from the server (vFile),
    # and finds where they are and where the program was loaded (libraries-svr4, auxv)
    argv = ["gdb", "-nx", "-batch", "-ex", "set confirm off", "-ex", f"file {program}"]
    argv += [
        "-ex",
        f"set remote exec-file {program}",
        "-ex",
        f"target extended-remote 127.0.0.1:{server.port}",
    ]
    for command in ("break work", "run", "bt", "info sharedlibrary", "continue", "p x", "delete", "continue"):
        argv += ["-ex", command]
    argv += ["-ex", "monitor exit"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=GDB_WAIT, stdin=subprocess.DEVNULL)
    out = done.stdout + done.stderr
    assert "Breakpoint 1, work (x=0)" in out, out
    assert re.search(r"#1 .* in main \(\) at .*pie.c:7", out), out
    assert re.search(r"Yes\s+target:\S*libc\.so\.6", out), out
    assert "$1 = 1" in out, out
    assert "exited normally" in out, out
    assert server.exited() == 0


def test_gdb_attaches_and_detaches_leaving_the_process_running(server: Server, programs: Programs) -> None:
    sleeper = subprocess.Popen(
        [programs.path("sleeper")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert sleeper.stdout is not None
        assert sleeper.stdout.readline().startswith("ready")
        out = server.gdb(programs.path("sleeper"), f"attach {sleeper.pid}", "bt", "detach", "monitor exit")
        assert re.search(r"#\d+ .* in main \(", out), out
        assert "Detaching from program" in out or "detached" in out.lower(), out
        assert server.exited() == 0
        # it runs on, unharmed, with no breakpoint byte left: end of stdin ends it cleanly
        assert sleeper.stdin is not None
        sleeper.stdin.close()
        rest = sleeper.stdout.read()
        assert "done ticks_ok=1" in rest
        assert sleeper.wait(WAIT) == 0
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait(WAIT)


def test_a_second_client_finds_the_process_stopped_where_the_first_left_it_without_its_breakpoints(
    programs: Programs,
) -> None:
    server = Server("-c", f"{programs.path('checksum')} 3")
    try:
        assert server.first_pid is not None
        first = Raw(server.port)
        assert first.ask(b"qSupported:multiprocess+;swbreak+").startswith(b"PacketSize=")
        address = programs.symbol("checksum", "target_fn")
        assert first.ask(b"Z0,%x,1" % address) == b"OK"
        stop = first.ask(b"vCont;c")
        assert stop.startswith(b"T05thread:p%x." % server.first_pid) and b"swbreak:" in stop
        first.close()  # gone without a word

        second = Raw(server.port)
        second.ask(b"qSupported:multiprocess+;swbreak+")
        assert second.ask(b"?") == stop
        # the breakpoint went with the client that set it: the program runs to its end
        exited = second.ask(b"vCont;c")
        assert exited == b"W00;process:%x" % server.first_pid
        assert second.ask(b"qRcmd,%s" % b"exit".hex().encode()) == b"OK"
        second.close()
        assert server.exited() == 0
    finally:
        server.close()
    with pytest.raises(ProcessLookupError):
        os.kill(server.first_pid, 0)


def test_bad_packets_get_errors_and_the_server_serves_on(server: Server, programs: Programs) -> None:
    client = Raw(server.port)
    client.ask(b"qSupported:multiprocess+")
    assert client.ask(b"?") == b"W00"  # no process yet
    assert client.ask(b"g").startswith(b"E")
    assert client.ask(b"mzz,4").startswith(b"E")
    assert client.ask(b"vRun;zz").startswith(b"E")
    # no such process: above any pid_max Linux allows
    assert client.ask(b"vAttach;%x" % (4_194_304 + 1)).startswith(b"E")
    assert client.ask(b"qNoSuchThing") == b""
    reply = client.ask(b"vRun;%s" % programs.path("checksum").encode().hex().encode())
    assert reply.startswith(b"T05thread:")
    assert client.ask(b"m0,8").startswith(b"E")  # unmapped
    assert len(client.ask(b"g")) == 560 * 2
    assert client.ask(b"vKill;%s" % reply.split(b"thread:p")[1].split(b".")[0]) == b"OK"
    assert client.ask(b"qRcmd,%s" % b"exit".hex().encode()) == b"OK"
    client.close()
    assert server.exited() == 0
