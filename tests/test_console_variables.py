"""`dv`, `dt`, `??`, `dx` and `.frame` in the `lindbg` console (CDB-OUTPUT.md §17-§21),
driven through piped standard input, their values checked against gdb's `print` for
the same stop."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conftest import FIXTURE_SOURCES, Programs, gdb_at
from test_console import after, console

SOURCE = FIXTURE_SOURCES / "stepping.c"


def _line_of(text: str) -> int:
    for number, line in enumerate(SOURCE.read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(text)


STOP = f"stepping.c:{_line_of('total += twice(total);')}"


def _run(programs: Programs, *commands: str) -> str:
    script = "\n".join([f"bp `{STOP}`", "g", *commands, "q"]) + "\n"
    run = console([programs.path("stepping")], stdin=script)
    assert run.returncode == 0, run.stderr
    return run.stdout


def _gdb(programs: Programs, *commands: str) -> list[str]:
    output = gdb_at(programs.path("stepping"), STOP, *commands)
    return [m.group(1) for m in re.finditer(r"^\$\d+ = (.*)$", output, re.MULTILINE)]


def test_dv_lists_parameters_then_locals_in_cdb_layout(programs: Programs) -> None:
    out = _run(programs, "dv", "dv /t", "dv /i", "dv /v", "dv c*")
    count, total = _gdb(programs, "print count", "print total")
    assert after(out, "dv")[1:] == [f"          count = 0n{count}", f"          total = 0n{total}"]
    assert re.fullmatch(r"              p = 0x00007ff[0-9a-f]`[0-9a-f]{8}", after(out, "dv")[0])
    assert after(out, "dv /t")[1:] == [f"int count = 0n{count}", f"int total = 0n{total}"]
    assert after(out, "dv /i")[0].startswith("prv param                p = ")
    assert after(out, "dv /i")[2] == f"prv local            total = 0n{total}"
    assert re.fullmatch(r"00007ff[0-9a-f]`[0-9a-f]{8}           count = 0n3", after(out, "dv /v")[1])
    assert after(out, "dv c*") == [f"          count = 0n{count}"]


def test_cpp_expressions_print_type_and_value(programs: Programs) -> None:
    out = _run(programs, "?? count * 2 + 1", "?? p[2].name", "?? *p", "?? sizeof(struct pair)", "?? nosuch")
    assert after(out, "?? count * 2 + 1") == ["int 0n7"]
    assert re.fullmatch(r'const char \* 0x00000000`004[0-9a-f]{5} "three"', after(out, "?? p[2].name")[0])
    assert after(out, "?? *p")[0] == "struct pair"
    assert after(out, "?? *p")[1] == "   +0x000 first            : 0n1"
    assert after(out, "?? sizeof(struct pair)") == ["unsigned long 0x10"]
    assert after(out, "?? nosuch") == ["Couldn't resolve error at 'nosuch'"]


def test_dt_shows_a_type_a_variable_and_memory_as_a_type(programs: Programs) -> None:
    out = _run(programs, "dt pair", "dt p", "dt stepping!nosuch", "dt pair poi(@rbp-0x18) name")
    assert after(out, "dt pair") == [
        "   +0x000 first            : Int4B",
        "   +0x008 name             : Ptr64 Char",
    ]
    lines = after(out, "dt p")
    assert re.fullmatch(r"Local var @ 0x7ff[0-9a-f]+ Type pair\*", lines[0])
    assert lines[2] == "   +0x000 first            : 0n1"
    assert re.fullmatch(r'   \+0x008 name             : 0x00000000`004[0-9a-f]{5}  "one"', lines[3])
    assert after(out, "dt stepping!nosuch") == ["Symbol stepping!nosuch not found."]
    # memory seen as a type, one field: p's target through poi
    # a field list pads names to the longest one asked for, as cdb does
    assert after(out, "dt pair poi(@rbp-0x18) name") == [lines[3].replace("name             :", "name :")]


def test_dx_shows_fields_with_types(programs: Programs) -> None:
    out = _run(programs, "dx p", "dx count", "dx nosuch")
    lines = after(out, "dx p")
    assert re.fullmatch(r"p                : 0x7ff[0-9a-f]+ \[Type: pair \*\]", lines[0])
    assert lines[1] == "    [+0x000] first            : 1 [Type: int]"
    assert after(out, "dx count") == ["count            : 3 [Type: int]"]
    assert after(out, "dx nosuch") == ["Error: Unable to bind name 'nosuch'"]


def test_frame_selects_the_caller_for_dv_and_resets_on_execution(programs: Programs) -> None:
    out = _run(programs, ".frame 1", "dv", ".frame", ".frame /c 1", "p", "dv")
    expected = _gdb(programs, "frame 1", "print x", "print f")
    row = after(out, ".frame 1")
    assert re.fullmatch(
        r"01 [0-9a-f]{8}`[0-9a-f]{8} [0-9a-f]{8}`[0-9a-f]{8}     stepping!main\+0x\w+ \[.*\]", row[0]
    )
    caller = after(out, "dv")
    assert f"              x = 0n{expected[0]}" in caller
    assert f"              f = 0n{expected[1]}" in caller
    assert after(out, ".frame") == row
    block = after(out, ".frame /c 1")
    assert block[0] == row[0]
    assert any(line.startswith("stepping!main+0x") for line in block)
    # `p` ran the target (total += twice(total): 9 + 18): the context is frame 0 again
    last = out.split("0:000> dv")[-1].splitlines()
    assert "          total = 0n27" in last


def test_x_shows_dwarf_types_of_functions_and_the_locals(programs: Programs) -> None:
    out = _run(programs, "x stepping!walk", "x /t stepping!add", "x *", "x /t libc!qsort")
    address = programs.symbol("stepping", "walk")
    assert after(out, "x stepping!walk") == [f"00000000`{address:08x} stepping!walk (struct pair *, int)"]
    assert after(out, "x /t stepping!add")[0].endswith(" int stepping!add (int, int)")
    local_rows = after(out, "x *")
    assert [row.split()[-3] for row in local_rows] == ["p", "count", "total"]
    assert local_rows[1].endswith("count = 0n3")
    # libc's own DWARF (its debug file): found through the symbol's address, one unit read
    assert after(out, "x /t libc!qsort")[0].endswith(
        " void libc!qsort (void *, size_t, size_t, __compar_fn_t)"
    )


def test_dv_without_dwarf_says_so_in_cdbs_three_lines(tmp_path: Path) -> None:
    source = tmp_path / "bare.c"
    source.write_text("int main(void) { return 0; }\n")
    program = tmp_path / "bare"
    subprocess.run(["gcc", "-O0", "-no-pie", "-o", str(program), str(source)], check=True)
    script = "bp bare!main\ng\ndv\n?? 1 + 2\nq\n"
    run = console([str(program)], stdin=script)
    assert after(run.stdout, "dv") == [
        "Unable to enumerate locals, no DWARF information",
        "Private symbols (symbols.pri) are required for locals.",
        'Type ".hh dbgerr005" for details.',
    ]
    assert after(run.stdout, "?? 1 + 2") == ["int 0n3"]  # expressions need no DWARF
