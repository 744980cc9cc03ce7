"""Extensions in the `lindbg` console: .load, .unload, .chain and `!name`, driven
through the real process; the built-in Linux extension's answers checked against
/proc's own layout and readelf."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conftest import Programs
from test_console import after, console

HELLO = """
def hello(client, args):
    client.execute(".echo Hello, " + args + "!")


def boom(client, args):
    raise ValueError("kaboom")


def debug_extension_notify(notify, argument):
    print(f"hello notify {notify} {argument}", flush=True)


def debug_extension_uninitialize():
    print("hello uninitialize", flush=True)


commands = {"hello": hello, "boom": boom}
"""


def _extension(tmp_path: Path, name: str = "hello", text: str = HELLO) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return str(path)


def test_load_run_chain_unload(programs: Programs, tmp_path: Path) -> None:
    path = _extension(tmp_path)
    script = (
        f".load {path}\n!hello world\n!hello.hello there\n.chain\n.unload hello\n!hello\n.chain\n? 1\nq\n"
    )
    run = console([programs.path("data")], stdin=script)
    out = run.stdout
    assert run.returncode == 0
    # loaded while the target is stopped: told the session is active, then accessible
    assert after(out, f".load {path}") == ["hello notify 0 0", "hello notify 2 0"]
    assert after(out, "!hello world") == ["Hello, world!"]
    assert after(out, "!hello.hello there") == ["Hello, there!"]
    lines = out.splitlines()
    first_chain = lines.index("0:000> .chain")
    assert lines[first_chain + 1 : first_chain + 3] == ["Extension DLL chain:", f"    hello: [path: {path}]"]
    assert after(out, ".unload hello") == ["hello uninitialize"]
    assert after(out, "!hello") == ["No export hello found"]
    second_chain = lines.index("0:000> .chain", first_chain + 1)
    assert lines[second_chain + 1 : second_chain + 3] == ["Extension DLL chain:", "0:000> ? 1"]
    assert after(out, "? 1") == ["Evaluate expression: 1 = 00000000`00000001"]


def test_the_chain_is_searched_most_recent_first(programs: Programs, tmp_path: Path) -> None:
    older = _extension(tmp_path, "older", 'commands = {"who": lambda c, a: c.execute(".echo older")}\n')
    newer = _extension(tmp_path, "newer", 'commands = {"who": lambda c, a: c.execute(".echo newer")}\n')
    script = f".load {older}\n.load {newer}\n!who\n!older.who\n.chain\n.unload\n!newer.who\n!who\nq\n"
    out = console([programs.path("data")], stdin=script).stdout
    whos = [i for i, line in enumerate(out.splitlines()) if line == "0:000> !who"]
    assert [out.splitlines()[i + 1] for i in whos] == ["newer", "older"]
    assert after(out, "!older.who") == ["older"]
    assert after(out, ".chain") == [
        "Extension DLL chain:",
        f"    newer: [path: {newer}]",
        f"    older: [path: {older}]",
    ]
    assert after(out, ".unload") == []  # no name: the most recent one goes
    assert after(out, "!newer.who") == ["No extension named 'newer' is loaded"]


def test_bad_loads_and_failing_commands_are_one_line(programs: Programs, tmp_path: Path) -> None:
    missing = str(tmp_path / "nosuch.py")
    broken = _extension(tmp_path, "broken", "def oops(:\n")
    path = _extension(tmp_path)
    script = (
        f".load {missing}\n.load {broken}\n.load no_such_module_here\n.load {path}\n!boom\n!nothing\n? 2\nq\n"
    )
    run = console([programs.path("data")], stdin=script)
    out = run.stdout
    assert run.returncode == 0
    (line,) = after(out, f".load {missing}")
    assert missing in line and "no such file" in line
    (line,) = after(out, f".load {broken}")
    assert broken in line and ("SyntaxError" in line or "invalid syntax" in line)
    (line,) = after(out, ".load no_such_module_here")
    assert "no_such_module_here" in line
    assert after(out, "!boom") == ["!boom failed: ValueError: kaboom"]
    assert after(out, "!nothing") == ["No export nothing found"]
    assert after(out, "? 2") == ["Evaluate expression: 2 = 00000000`00000002"]


def test_maps_names_the_program_module_and_the_stack(programs: Programs) -> None:
    program = programs.path("data")
    run = console([program], stdin="!maps\n.load lindbg.extensions.linux\n.chain\n!linux.maps\nq\n")
    listing = after(run.stdout, "!maps")
    assert listing[0].split() == ["Start", "End", "Perm", "Offset", "Module", "Path"]
    row = r"^[0-9a-f]{8}`[0-9a-f]{8} [0-9a-f]{8}`[0-9a-f]{8} [r-][w-][x-][ps] [0-9a-f]{8}"
    assert all(re.match(row, line) for line in listing[1:])
    own = [line for line in listing if line.endswith(" " + program)]
    assert own and all(line.split()[4] == "data" for line in own)
    assert any(line.endswith(" [stack]") for line in listing)
    assert any(re.search(r" r-xp .* ld_linux_x86_64 +/\S+ld-linux", line) for line in listing)
    chain = after(run.stdout, ".chain")
    assert chain[1].startswith("    lindbg.extensions.linux: [path: ") and chain[1].endswith("linux.py]")
    assert after(run.stdout, "!linux.maps") == listing


def test_auxv_entry_is_the_elf_entry_point(programs: Programs) -> None:
    program = programs.path("data")
    header = subprocess.run(["readelf", "-h", program], capture_output=True, text=True, check=True).stdout
    entry = int(re.search(r"Entry point address:\s+(0x[0-9a-f]+)", header)[1], 16)  # type: ignore[index]
    out = console([program], stdin="!auxv\nq\n").stdout
    table = {line.split()[0]: line.split()[2:] for line in after(out, "!auxv")}
    assert int(table["AT_ENTRY"][0], 16) == entry
    assert table["AT_PAGESZ"] == ["4096"]
    assert table["AT_EXECFN"][1] == f'"{program}"'


def test_fds_and_signals(programs: Programs) -> None:
    out = console([programs.path("data")], stdin="!fds\n!signals\nq\n").stdout
    fds = after(out, "!fds")
    assert fds[0].split() == ["fd", "target"]
    numbers = [int(line.split()[0]) for line in fds[1:]]
    assert numbers[:3] == [0, 1, 2]
    assert all(" -> " not in line and len(line.split()) == 2 for line in fds[1:])
    table = after(out, "!signals")
    assert table[0].split() == ["Sig", "Name", "Blocked", "Ignored", "Caught", "Pending"]
    rows = {line.split()[1]: line.split()[2:] for line in table[1:]}
    assert len(rows) >= 31 and rows["SIGKILL"] == ["-", "-", "-", "-"]


def test_builtin_commands_without_a_target_say_so() -> None:
    run = console([], stdin="!maps\n? 3\nq\n")
    assert after(run.stdout, "!maps") == ["       ^ No runnable debuggees error in '!maps'"]
    assert after(run.stdout, "? 3") == ["Evaluate expression: 3 = 00000000`00000003"]
