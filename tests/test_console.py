"""The `lindbg` console, driven as a user drives it: the real process, commands by
-c and by piped standard input, outputs checked against the engine's own
answers, nm, objdump and cdb's layouts."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from conftest import Programs
from procserver_support import Lindbgsrv

LINDBG = [sys.executable, "-m", "lindbg.cli.lindbg_main"]


def console(args: list[str], stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run lindbg with ``args``, feeding ``stdin``; its whole output."""
    env = {k: v for k, v in os.environ.items() if k != "LINDBG_TEST_OUT"}
    return subprocess.run(
        [*LINDBG, *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def after(output: str, command: str) -> list[str]:
    """The lines a command printed: those after its echoed prompt line, up to the next prompt."""
    lines = output.splitlines()
    start = next(
        i for i, line in enumerate(lines) if re.match(r"^\d+:\d{3}> " + re.escape(command) + "$", line)
    )
    result = []
    for line in lines[start + 1 :]:
        if re.match(r"^\d+:\d{3}> ", line):
            break
        result.append(line)
    return result


def test_initial_break_shows_the_event_and_the_register_block(programs: Programs) -> None:
    run = console([programs.path("data")], stdin="q\n")
    assert run.returncode == 0
    out = run.stdout
    assert re.search(r"^ModLoad: 00000000`00400000 00000000`004\w{5}   .*/data$", out, re.MULTILINE)
    initial = r"^\([0-9a-f]+\.[0-9a-f]+\): Break instruction exception - code 80000003 \(first chance\)$"
    assert re.search(initial, out, re.MULTILINE)
    assert re.search(r"^rax=[0-9a-f]{16} rbx=[0-9a-f]{16} rcx=[0-9a-f]{16}$", out, re.MULTILINE)
    assert re.search(
        r"^iopl=0         (nv|ov) (up|dn) (ei|di) (pl|ng) (nz|zr) (na|ac) (pe|po) (nc|cy)$", out, re.M
    )
    assert "ld_linux_x86_64!_start:" in out
    assert out.rstrip().endswith("quit:")


def test_breakpoint_by_name_then_registers_stack_and_memory(programs: Programs) -> None:
    add = programs.symbol("data", "add")
    message = programs.symbol("data", "message")
    script = "bl\ng\nr rdi\nk\ndb data!message L10\nq\n"
    run = console(["-c", "bp data!add", programs.path("data")], stdin=script)
    out = run.stdout
    assert after(out, "bl")[0].startswith(f" 0 e 00000000`{add:08x} [")
    assert "Breakpoint 0 hit" in after(out, "g")
    assert after(out, "r rdi") == ["rdi=0000000000000002"]  # add(2, 3)
    stack = after(out, "k")
    assert stack[0] == "Child-SP          RetAddr               Call Site"
    assert re.match(
        r"^[0-9a-f]{8}`[0-9a-f]{8} [0-9a-f]{8}`[0-9a-f]{8}     data!add \[.*data\.c @ \d+\]$", stack[1]
    )
    assert "data!step_caller" in stack[2] and "data!main" in stack[3]
    dump = after(out, "db data!message L10")
    assert dump == [
        f"00000000`{message:08x}  68 65 6c 6c 6f 20 66 72-6f 6d 20 64 61 74 61 00  hello from data."
    ]


def test_disassembly_matches_objdump_bytes(programs: Programs) -> None:
    add = programs.symbol("data", "add")
    run = console([programs.path("data")], stdin="u data!add L3\nq\n")
    listing = after(run.stdout, "u data!add L3")
    assert listing[0] == "data!add:"
    dump = subprocess.run(
        [
            "objdump",
            "-d",
            f"--start-address={add:#x}",
            f"--stop-address={add + 16:#x}",
            programs.path("data"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = [
        (int(m[1], 16), m[2].replace(" ", ""))
        for m in re.finditer(r"^\s+([0-9a-f]+):\t((?:[0-9a-f]{2} )+)", dump, flags=re.MULTILINE)
    ]
    for line, (address, code) in zip(listing[1:], expected, strict=False):
        assert line.startswith(f"00000000`{address:08x} {code} ")


def test_evaluate_and_errors_keep_the_session(programs: Programs) -> None:
    script = "? 0x10 + 0n10\nzzz\n? data!nosuchsym\n? 1\nq\n"
    run = console([programs.path("data")], stdin=script)
    out = run.stdout
    assert after(out, "? 0x10 + 0n10") == ["Evaluate expression: 26 = 00000000`0000001a"]
    assert after(out, "zzz") == ["       ^ Syntax error in 'zzz'"]
    assert after(out, "? data!nosuchsym") == ["Couldn't resolve error at 'data!nosuchsym'"]
    assert after(out, "? 1") == ["Evaluate expression: 1 = 00000000`00000001"]


def test_running_to_the_end_then_go_has_no_debuggee(programs: Programs) -> None:
    run = console(["-G", programs.path("data")], stdin="g\ng\nq\n")
    assert after(run.stdout, "g")[-1:] != []
    assert "       ^ No runnable debuggees error in 'g'" in run.stdout


def test_semicolons_comments_and_end_of_input_as_quit(programs: Programs) -> None:
    run = console(["-c", ".echo one; $$ a comment; .echo two", programs.path("data")], stdin="")
    out = run.stdout
    assert "one\ntwo\n" in out
    assert "a comment" not in out.replace("$$ a comment", "")
    assert out.rstrip().endswith("quit:")
    assert run.returncode == 0


def test_premote_with_nobody_listening_is_one_line_and_status_1() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = console(["-premote", f"tcp:server=127.0.0.1,port={port}", "/bin/true"])
    assert run.returncode == 1
    assert run.stderr.strip().count("\n") == 0
    assert str(port) in run.stderr


def test_premote_and_a_core_file_is_refused() -> None:
    run = console(["-premote", "tcp:server=127.0.0.1,port=1", "-z", "core"])
    assert run.returncode == 2
    assert "-premote" in run.stderr and run.stderr.strip().count("\n") == 0


def test_the_console_through_lindbgsrv_answers_as_it_does_here(programs: Programs) -> None:
    script = "bp data!report\ng\nk\nr rdi\n? poi(data!message)\n~\nlm\n.tlist\n.endpsrv\nq\n"
    here = console([programs.path("data")], stdin=script.replace(".endpsrv\n", ""))
    server = Lindbgsrv()
    try:
        there = console(["-premote", server.address, programs.path("data")], stdin=script)
        assert server.exited() == 0  # .endpsrv
    finally:
        server.close()
    assert there.returncode == 0, there.stderr
    for command in ("r rdi", "? poi(data!message)"):
        assert after(there.stdout, command) == after(here.stdout, command), command
    # the stack and libc addresses differ (each run is laid out anew); the frames do not
    assert [line.split()[2:] for line in after(there.stdout, "k")] == [
        line.split()[2:] for line in after(here.stdout, "k")
    ]
    assert after(there.stdout, "~")[0].startswith(".  0  Id: ")
    modules = [line.split()[2] for line in after(there.stdout, "lm")[1:]]
    assert modules == [line.split()[2] for line in after(here.stdout, "lm")[1:]]
    pids = [line for line in after(there.stdout, ".tlist") if line.endswith(" data")]
    assert len(pids) == 1
    assert after(there.stdout, ".endpsrv") == [f"Process server tcp 127.0.0.1:{server.port} told to exit."]


def test_a_bad_server_option_is_one_line_and_status_2() -> None:
    run = console(["-server", "tcp:port=5005,colour=blue"])
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0
    assert "colour" in run.stderr


_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\r")


class Terminal:
    """lindbg on a pseudo-terminal: type, and wait for text to appear on the screen.

    ``text`` is what was written with the terminal's control sequences (cursor
    moves, colours) taken out, so the prompt reads ``0:000>``; offsets
    (``since``) count in it."""

    def __init__(self, args: list[str], home: Path) -> None:
        import pty

        env = {k: v for k, v in os.environ.items() if k != "LINDBG_TEST_OUT"}
        # no cursor-position request: the test answers no terminal queries
        env.update(PROMPT_TOOLKIT_NO_CPR="1", HOME=str(home), LINDBG_HISTORY=str(home / "history"))
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            os.execve(sys.executable, [*LINDBG, *args], env)
        self.screen = b""

    @property
    def text(self) -> bytes:
        return _ESCAPES.sub(b"", self.screen)

    def wait_for(self, text: bytes, timeout: float = 20, since: int = 0) -> bool:
        """Wait until ``text`` is on the screen (after offset ``since`` of ``self.text``)."""
        import select
        import time

        deadline = time.monotonic() + timeout
        while text not in self.text[since:]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    self.screen += os.read(self.fd, 4096)
                except OSError:
                    return text in self.text[since:]
        return True

    def type(self, text: bytes) -> None:
        os.write(self.fd, text)

    def close(self) -> int:
        """Wait for lindbg to exit (the screen reaches end-of-file), then its exit code."""
        self.wait_for(b"\0never\0", timeout=20)  # reads until EOF: the child closed the terminal
        done, status = os.waitpid(self.pid, os.WNOHANG)
        if done == 0:  # a failed test left it waiting for input: do not hang the suite
            os.kill(self.pid, 9)
            _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def test_ctrl_c_breaks_into_a_looping_target_and_never_kills_the_debugger(
    programs: Programs, tmp_path: Path
) -> None:
    terminal = Terminal([programs.path("loop"), "60"], tmp_path)
    try:
        assert terminal.wait_for(b"0:000>")
        terminal.type(b"g\n")
        assert terminal.wait_for(b"ready")  # the program is in its loop
        running = len(terminal.text)
        terminal.type(b"\x03")  # Ctrl-C, as a user presses it
        assert terminal.wait_for(b"Break instruction exception - code 80000003", since=running)
        shown = terminal.text.index(b"Break instruction exception", running)
        # the register block and the place it stopped (in the loop, or in libc on its
        # way back from printing "ready"), then the prompt: lindbg reads again
        assert terminal.wait_for(b"0:000>", since=shown), terminal.text[-500:]
        assert re.search(rb"\n(loop|libc)!\w+", terminal.text[shown:])
        terminal.type(b"? 1+1\n")
        assert terminal.wait_for(b"Evaluate expression: 2 = ")
        terminal.type(b"q\n")
        assert terminal.wait_for(b"quit:")
    finally:
        code = terminal.close()
    assert code == 0
    assert b"finished" not in terminal.text  # the loop was stopped, not run out


def test_terminal_line_editing_and_history_across_sessions(programs: Programs, tmp_path: Path) -> None:
    terminal = Terminal([programs.path("data")], tmp_path)
    try:
        assert terminal.wait_for(b"0:000>")
        terminal.type(b"? 0n19\x1b[D\x7f2\n")  # left, delete the '1', type '2': ? 0n29
        assert terminal.wait_for(b"Evaluate expression: 29 = ")
        terminal.type(b"? 0n7\n")
        assert terminal.wait_for(b"Evaluate expression: 7 = ")
        mark = len(terminal.text)
        terminal.type(b"\x1b[A\n")  # up arrow: the last line again
        assert terminal.wait_for(b"Evaluate expression: 7 = ", since=mark)
        mark = len(terminal.text)
        terminal.type(b"\x03")  # Ctrl-C at the prompt: a fresh prompt, nothing else
        assert terminal.wait_for(b"0:000>", since=mark)
        # the fresh prompt reads lines: a command typed now runs
        mark = len(terminal.text)
        terminal.type(b"? 0n5\n")
        assert terminal.wait_for(b"Evaluate expression: 5 = ", since=mark)
        # Ctrl-D only once the next prompt is drawn (the line editor draws it in raw
        # mode; a Ctrl-D typed while the command still runs meets the terminal's
        # cooked mode, which swallows it as an empty read)
        # (the prompt may already have arrived with the result: look after the result)
        mark = terminal.text.index(b"Evaluate expression: 5 = ", mark)
        assert terminal.wait_for(b"0:000>", since=mark)
        terminal.type(b"\x04")  # Ctrl-D: end of input, as q
        assert terminal.wait_for(b"quit:")
    finally:
        code = terminal.close()
    assert code == 0
    history = (tmp_path / "history").read_text()
    assert "? 0n7" in history and "? 0n5" in history
    # a new session finds the old lines: up arrow recalls the last one
    again = Terminal([programs.path("data")], tmp_path)
    try:
        assert again.wait_for(b"0:000>")
        again.type(b"\x1b[A\n")
        assert again.wait_for(b"Evaluate expression: 5 = ")
        again.type(b"q\n")
        assert again.wait_for(b"quit:")
    finally:
        assert again.close() == 0


def test_event_filters_by_signal_name(programs: Programs) -> None:
    signals = programs.path("signals")
    # sxe: a handled SIGUSR1 breaks at its first chance
    out = console([signals, "usr1-handler"], stdin="sxe usr1\ng\nq\n").stdout
    assert re.search(
        r"^\([0-9a-f.]+\): User defined signal 1 - code 0000000a \(first chance\)$",
        "\n".join(after(out, "g")),
        re.M,
    )
    # sxn: printed as it passes, no break; the program finishes
    out = console(["-G", signals, "usr1-handler"], stdin="sxn usr1\ng\ng\nq\n").stdout
    lines = after(out, "g")
    assert any("User defined signal 1 - code 0000000a (first chance)" in line for line in lines)
    assert "No runnable debuggees" in out  # the second g: it ran to its end
    # sxd: no first chance, but the second chance (it would kill) breaks
    out = console([signals, "segv"], stdin="sxd segv\ng\nq\n").stdout
    assert any(
        "Segmentation fault - code 0000000b (!!! second chance !!!)" in line for line in after(out, "g")
    )
    assert (
        "sigsegv - Segmentation fault - Second-chance break"
        in console([signals], stdin="sxd segv\nsx\nq\n").stdout
    )


def test_threads_processes_last_event_and_log_file(programs: Programs, tmp_path: Path) -> None:
    log = tmp_path / "session.log"
    script = f"bp threads!thread_work\ng\n~\n~0s\n|\n.lastevent\n.logopen {log}\n? 5\n.logclose\nq\n"
    out = console([programs.path("threads"), "4"], stdin=script).stdout
    listing = after(out, "~")
    assert sum(1 for line in listing if "  Id: " in line) >= 2
    assert sum(1 for line in listing if line.startswith(".")) == 1
    assert re.search(r"^0:00[1-9]> ~0s$", out, re.M)  # a worker thread hit the breakpoint
    assert re.search(r"^0:000> \|$", out, re.M)  # ~0s made thread 0 the current one
    assert re.match(r"^\.  0\tid: [0-9a-f]+\tcreate\tname: .*/threads$", after(out, "|")[0])
    assert re.match(r"^Last event: [0-9a-f]+\.[0-9a-f]+: Hit breakpoint 0$", after(out, ".lastevent")[0])
    text = log.read_text()
    assert "Evaluate expression: 5 = 00000000`00000005" in text
    assert "q\n" not in text.split(".logclose")[-1]  # nothing after the log was closed


def test_enter_commands_write_what_the_dumps_then_show(programs: Programs) -> None:
    message = programs.symbol("data", "message")
    commands = ['eza data!message "patched"', "da data!message", "eb data!message 41 42"]
    commands.append("db data!message L4")
    script = "\n".join([*commands, "dq 10 L2", "q"]) + "\n"
    out = console([programs.path("data")], stdin=script).stdout
    assert after(out, "da data!message") == [f'00000000`{message:08x}  "patched"']
    assert after(out, "db data!message L4")[0].startswith(f"00000000`{message:08x}  41 42 74 63")
    assert after(out, "dq 10 L2") == ["00000000`00000010  ????????`???????? ????????`????????"]


def test_dps_names_the_return_address_on_the_stack(programs: Programs) -> None:
    out = console(["-c", "bp data!add", "-c", "g", programs.path("data")], stdin="dps @rsp L1\nq\n").stdout
    row = after(out, "dps @rsp L1")[0]
    assert re.match(r"^[0-9a-f]{8}`[0-9a-f]{8}  00000000`[0-9a-f]{8} data!step_caller\+0x[0-9a-f]+$", row)


def test_breakpoint_command_strings_run_at_every_hit(programs: Programs) -> None:
    script = 'bp data!write_watched ".echo hit; r rdi; g"\nbl\ng\nq\n'
    out = console(["-G", programs.path("data")], stdin=script).stdout
    assert after(out, "bl")[0].endswith('data!write_watched ".echo hit; r rdi; g"')
    lines = after(out, "g")
    assert [line for line in lines if line.startswith("rdi=")] == [
        "rdi=0000000000000001",
        "rdi=0000000000000002",
        "rdi=0000000000000003",
    ]
    assert lines.count("hit") == 3 and lines.count("Breakpoint 0 hit") == 3


def test_kb_shows_the_words_after_each_return_address(programs: Programs) -> None:
    out = console(["-c", "bp data!add", "-c", "g", programs.path("data")], stdin="kbn\nq\n").stdout
    rows = after(out, "kbn")
    assert rows[0].startswith(" # RetAddr               : Args to Child")
    word = r"[0-9a-f?]{8}`[0-9a-f?]{8}"
    first = re.match(rf"^00 ({word})     : ((?:{word} ){{4}}): (.*)$", rows[1])
    assert first is not None, rows[1]
    assert first[3].startswith("data!add")
    assert "data!step_caller" in rows[2]


def test_restart_create_and_attach_start_new_sessions(programs: Programs) -> None:
    data = programs.path("data")
    out = console(["-G", data], stdin=f"g\n.restart\n|\n.kill\n.create {data}\n|\nq\n").stdout
    first, second = after(out, "|")[0], out.split("0:000> |")[2].splitlines()[1]
    pids = [re.search(r"id: ([0-9a-f]+)", line)[1] for line in (first, second)]  # type: ignore[index]
    assert pids[0] != pids[1]
    assert all(line.endswith("/data") for line in (first, second))
    assert out.count("Break instruction exception - code 80000003") == 3  # start, restart, create
    sleeper = subprocess.Popen([programs.path("sleeper"), "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert sleeper.stdout is not None and sleeper.stdout.readline().startswith(b"ready")
        out = console([], stdin=f".attach 0n{sleeper.pid}\n|\nqd\n").stdout
        assert re.search(rf"id: {sleeper.pid:x}\t", "\n".join(after(out, "|")))
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)
