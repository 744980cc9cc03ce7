"""Source mode in the `lindbg` console (CDB-OUTPUT.md §22): option listings, `lsa`
windows checked against the file's real text, the engine's line and gdb's line for
the same stop, the window at a stop, `ls` continuing, `.srcpath` finding a moved
source tree, and the missing-file line."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import CFLAGS, FIXTURE_SOURCES, Harness, Programs
from test_console import after, console

from lindbg.constants import CodeLevel, SourceOptions

DATA_SOURCE = FIXTURE_SOURCES / "data.c"


def outputs(output: str, command: str) -> list[list[str]]:
    """The lines each run of ``command`` printed, in order (``after`` gives the first)."""
    runs: list[list[str]] = []
    current: list[str] | None = None
    for line in output.splitlines():
        if re.match(r"^\d+:\d{3}> ", line):
            if current is not None:
                runs.append(current)
            current = [] if re.match(r"^\d+:\d{3}> " + re.escape(command) + "$", line) else None
        elif current is not None:
            current.append(line)
    if current is not None:
        runs.append(current)
    return runs


def listing(path: Path, first: int, last: int, mark: int | None) -> list[str]:
    """What cdb's listing of lines ``first``..``last`` of ``path`` must be, from the file itself."""
    text = path.read_text().splitlines()
    return [
        f"{'>' if number == mark else ' '}{number:>5}: {text[number - 1]}"
        for number in range(max(1, first), min(len(text), last) + 1)
    ]


def marked_line(lines: list[str]) -> int:
    """The number of the one line a listing marks with '>'."""
    marked = [line for line in lines if line.startswith(">")]
    assert len(marked) == 1, lines
    return int(marked[0][1:6])


def gdb_stop(program: str, function: str) -> tuple[int, int]:
    """(pc, line) where gdb's `break FUNCTION` stops, from `p/x $pc` and `info line *$pc`."""
    args = ["gdb", "-batch", "-nx", "-ex", f"break {function}", "-ex", "run"]
    args += ["-ex", "p/x $pc", "-ex", "info line *$pc", program]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False).stdout
    pc = re.search(r"^\$1 = (0x[0-9a-f]+)$", out, re.MULTILINE)
    line = re.search(r'^Line (\d+) of "[^"]*data\.c" starts at address', out, re.MULTILINE)
    assert pc is not None and line is not None, out
    return int(pc[1], 16), int(line[1])


def test_option_listings_are_cdbs(programs: Programs) -> None:
    script = "l+s\nl+t\nl-s\nl+l\nl+*\nl-*\n.lines -d\nl+o\n.lines -e\n.lines\n.lines -t\nl-o\nl+x\nq\n"
    out = console([programs.path("data")], stdin=script).stdout
    assert after(out, "l+s") == ["Source options are 4:", "     4/s - List source code at prompt"]
    assert after(out, "l+t") == [
        "Source options are 5:",
        "     1/t - Step/trace by source line",
        "     4/s - List source code at prompt",
    ]
    assert after(out, "l-s") == ["Source options are 1:", "     1/t - Step/trace by source line"]
    assert after(out, "l+l") == [
        "Source options are 3:",
        "     1/t - Step/trace by source line",
        "     2/l - List source line at prompt",
    ]
    assert after(out, "l+*") == [
        "Source options are ffffffff:",
        "     1/t - Step/trace by source line",
        "     2/l - List source line at prompt",
        "     4/s - List source code at prompt",
        "     8/o - Only show source code at prompt",
    ]
    assert after(out, "l-*") == ["Source options are 0:"]
    assert after(out, ".lines -d") == ["Line number information will not be loaded"]
    assert after(out, "l+o") == [
        "  WARNING: Line information loading disabled",
        "Source options are 8:",
        "     8/o - Only show source code at prompt",
    ]
    assert after(out, ".lines -e") == ["Line number information will be loaded"]
    assert after(out, ".lines") == ["Line number information will not be loaded"]  # toggles
    assert after(out, ".lines -t") == ["Line number information will be loaded"]
    assert after(out, "l-o") == ["Source options are 0:"]
    assert after(out, "l+x") == ["         ^ Syntax error in 'l+x'"]  # under the x


def test_lsa_marks_the_line_the_engine_names_for_the_pc(programs: Programs, harness: Harness) -> None:
    harness.launch("data")
    harness.client.add_breakpoint("data!add")
    harness.go()
    line = harness.client.source_line(harness.rip())
    assert line is not None and Path(line.file).name == "data.c"

    out = console([programs.path("data")], stdin="bp data!add\ng\nlsa .\nq\n").stdout
    window = after(out, "lsa .")
    assert marked_line(window) == line.line
    # 4 lines before, 5 after, texts as the file has them
    assert window == listing(DATA_SOURCE, line.line - 4, line.line + 5, line.line)


def test_lsa_agrees_with_gdb_at_the_same_stop(programs: Programs) -> None:
    program = programs.path("data")
    pc, line = gdb_stop(program, "step_caller")
    script = f"bp 0x{pc:x}\ng\nr rip\nlsa .\nlsa data!step_caller, 0n1, 0n3\nq\n"
    out = console([program], stdin=script).stdout
    assert after(out, "r rip") == [f"rip={pc:016x}"]  # the very stop gdb made
    window = after(out, "lsa .")
    assert marked_line(window) == line
    assert window == listing(DATA_SOURCE, line - 4, line + 5, line)
    # an explicit first line and count; the mark stays on the address's line (not shown here)
    assert after(out, "lsa data!step_caller, 0n1, 0n3") == listing(DATA_SOURCE, 1, 3, None)


def test_a_stop_shows_the_source_window_with_l_plus_s(programs: Programs) -> None:
    program = programs.path("data")
    pc, line = gdb_stop(program, "add")
    script = f"lsp\nlsp 7\nl+s\nbp 0x{pc:x}\ng\nl+l\nl-s\nr\nl+o\np\nq\n"
    out = console([program], stdin=script).stdout
    assert after(out, "lsp") == ["At the prompt, display 3 source lines before and 3 after"]
    assert after(out, "lsp 7") == ["At the prompt, display 3 source lines before and 4 after"]
    stop = after(out, "g")
    location = stop.index("data!add+0xa:")
    window = listing(DATA_SOURCE, line - 3, line + 4, line)
    # between the register block (ending in the segment line) and the location line
    assert stop[location - len(window) : location] == window
    assert stop[location - len(window) - 1].startswith("cs=0033  ss=002b")
    assert stop[location + 1].startswith(f"00000000`{pc:08x} ")
    # `r` is not a stop: no source in it, whatever the options
    registers = after(out, "r")
    assert not any(row.startswith((">", "    ")) and ": " in row[:8] for row in registers)
    assert registers[-2] == "data!add+0xa:"
    # l+o: the step prints only the `>` line of the new pc (still in add's body)
    step = after(out, "p")
    assert len(step) == 1 and step[0].startswith(">") and marked_line(step) == line
    assert step == listing(DATA_SOURCE, line, line, line)


def test_l_plus_l_names_the_file_and_line_on_the_location_line(programs: Programs) -> None:
    out = console([programs.path("data")], stdin="l+l\nbp data!add\ng\nq\n").stdout
    stop = after(out, "g")
    located = [row for row in stop if row.startswith("data!add")]
    assert len(located) == 1
    match = re.match(r"^data!add \[(.+) @ (\d+)\]:$", located[0])
    assert match is not None, located
    assert Path(match[1]).resolve() == DATA_SOURCE.resolve()
    assert DATA_SOURCE.read_text().splitlines()[int(match[2]) - 1].startswith("NOINLINE int add(")
    assert not any(row.startswith(">") for row in stop)  # l+l alone: no window


def test_a_pc_without_line_information_keeps_the_plain_display(programs: Programs) -> None:
    out = console([programs.path("data")], stdin="lsa .\nl+*\n.restart\nq\n").stdout
    if not after(out, "lsa .")[0].startswith("No source line information for "):
        pytest.skip("the loader's entry has line information on this system")
    restarted = after(out, ".restart")
    block = restarted[next(i for i, row in enumerate(restarted) if row.startswith("rax=")) :]
    # exactly the r block, location and instruction: no window, no suffix, no message
    assert len(block) == 10, block
    assert block[7].startswith("cs=0033  ss=002b")
    assert block[8] == "ld_linux_x86_64!_start:"
    assert re.match(r"^[0-9a-f]{8}`[0-9a-f]{8} [0-9a-f]+ +\w+", block[9])


def test_ls_continues_and_lsc_names_the_current_line(programs: Programs) -> None:
    path = str(DATA_SOURCE)
    script = f"lsf {path}\nls 0n1, 0n5\nls\nlsc\nls 0n40, 0n2\nlsf- {path}\nlsc\nq\n"
    out = console([programs.path("data")], stdin=script).stdout
    assert after(out, f"lsf {path}") == [f"Loaded source file '{path}'"]
    assert after(out, "ls 0n1, 0n5") == listing(DATA_SOURCE, 1, 5, None)
    assert after(out, "ls") == listing(DATA_SOURCE, 6, 25, None)  # 20 lines on from line 6
    current = after(out, "lsc")
    assert current == [f"Current: {path}(26)", *listing(DATA_SOURCE, 26, 26, None)]
    assert after(out, "ls 0n40, 0n2") == listing(DATA_SOURCE, 40, 41, None)
    assert after(out, f"lsf- {path}") == [f"Unloaded source file '{path}'"]
    assert outputs(out, "lsc")[1] == ["No current source file"]


def test_srcpath_finds_a_source_tree_that_moved(tmp_path: Path) -> None:
    build = tmp_path / "build"
    build.mkdir()
    for name in ("data.c", "common.h"):
        shutil.copy(FIXTURE_SOURCES / name, build / name)
    subprocess.run(
        ["gcc", *CFLAGS, "-o", str(build / "data"), str(build / "data.c")], check=True, capture_output=True
    )
    moved = tmp_path / "moved"
    build.rename(moved)  # the path DWARF names is gone now
    missing = tmp_path / "nowhere"
    script = (
        "bp data!add\ng\nlsa .\n"
        f'.srcpath+ {moved}\nlsa .\n.srcpath\n.srcpath+ {missing}\n.srcpath ""\nlsa .\nq\n'
    )
    out = console([str(moved / "data")], stdin=script).stdout
    lsa = outputs(out, "lsa .")
    expected = f"Source file '{build / 'data.c'}' not found: .srcpath+ DIR adds a directory to search"
    assert lsa[0] == [expected]
    assert after(out, f".srcpath+ {moved}") == [
        f"Source search path is: {moved}",
        "",
        "************* Path validation summary **************",
        "Response                         Time (ms)     Location",
        f"OK                                             {moved}",
    ]
    line = marked_line(lsa[1])
    assert lsa[1] == listing(moved / "data.c", line - 4, line + 5, line)
    assert after(out, ".srcpath") == [f"Source search path is: {moved}"]
    assert after(out, f".srcpath+ {missing}")[-2:] == [
        f"OK                                             {moved}",
        f"Error                                          {missing}",
    ]
    assert after(out, '.srcpath ""') == ["Source search path is: <empty>"]
    assert lsa[2] == [expected]  # the cleared path no longer finds it


def test_a_missing_file_is_one_line_naming_it(programs: Programs) -> None:
    out = console([programs.path("data")], stdin="lsf /no/such/dir/app.c\nls\nq\n").stdout
    assert after(out, "lsf /no/such/dir/app.c") == [
        "Source file '/no/such/dir/app.c' not found: .srcpath+ DIR adds a directory to search"
    ]


def test_the_engine_gets_the_known_bits_and_no_line_steps_while_lines_are_off(harness: Harness) -> None:
    client = harness.client
    harness.launch("data")
    client.execute("l+*")
    assert client.get_source_options() == 0xF  # the engine keeps the four bits it knows
    client.execute("l-s; l-o; l-l")
    assert client.get_source_options() == SourceOptions.TRACE_LINES
    assert client.get_code_level() == CodeLevel.SOURCE
    client.execute(".lines -d")
    assert client.get_source_options() == 0 and client.get_code_level() == CodeLevel.ASSEMBLY
    client.execute(".lines -e")
    assert client.get_source_options() == SourceOptions.TRACE_LINES
    # a change made through the API is what the next l+ builds on
    client.set_source_options(SourceOptions.SOURCE)
    client.execute("l+l")
    assert client.get_source_options() == SourceOptions.SOURCE | SourceOptions.LINE_NUMBERS
