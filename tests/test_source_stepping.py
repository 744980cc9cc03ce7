"""Stepping by source line (SOURCE code level): the sequence of lines lindbg stops
at, compared with gdb's ``step`` and ``next`` over the same program from the same
line."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURE_SOURCES, WAIT, Harness, Recorder, gdb_at

from lindbg import Status
from lindbg.constants import CES, CodeLevel, EventMask, SourceOptions

SOURCE = "stepping.c"


def _line_of(path: str, text: str) -> int:
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            if text in line:
                return number
    raise AssertionError(f"{text!r} not in {path}")


def gdb_stops(program: str, start_line: int, command: str, count: int) -> list[tuple[str, int]]:
    """(function, line) where gdb stands after a breakpoint at ``start_line`` and
    then after each of ``count`` ``command``s (stops outside the fixture's file end it)."""
    output = gdb_at(program, f"{SOURCE}:{start_line}", *[command] * count)
    stops: list[tuple[str, int]] = []
    function = "?"
    for text in output.splitlines():
        header = re.match(r"^(?:Breakpoint \d+, )?(\w+) \(.*\) at (\S+):(\d+)$", text)
        if header:
            function = header.group(1)
            if not header.group(2).endswith(SOURCE):
                break
            continue
        row = re.match(r"^(\d+)\t", text)
        if row:
            stops.append((function, int(row.group(1))))
    return stops


def stop_at_line(harness: Harness, line: int, level: CodeLevel = CodeLevel.SOURCE) -> None:
    """Launch the fixture, run to ``line`` (breakpoint removed), set the code level."""
    harness.launch("stepping")
    bp = harness.client.add_breakpoint(f"{SOURCE}:{line}")
    harness.go()
    harness.client.remove_breakpoint(bp)
    harness.client.set_code_level(level)


def lindbg_stops(harness: Harness, start_line: int, status: Status, count: int) -> list[tuple[str, int]]:
    stop_at_line(harness, start_line)
    stops = [_where(harness)]
    for _ in range(count):
        harness.go(status)
        if harness.client.get_execution_status() != Status.BREAK:
            break
        stop = _where(harness)
        if stop[1] == 0:
            break
        stops.append(stop)
    return stops


def _where(harness: Harness) -> tuple[str, int]:
    """Frame 0's function and line (a virtual inline stop shows the call site)."""
    frame = harness.client.stack(max_frames=1)[0]
    if frame.file is None or frame.line is None or not frame.file.endswith(SOURCE):
        return ("?", 0)
    return (frame.function or "?", frame.line)


def _until(stops: list[tuple[str, int]], last: tuple[str, int]) -> list[tuple[str, int]]:
    return stops[: stops.index(last) + 1] if last in stops else stops


def test_next_matches_gdb(harness: Harness) -> None:
    program = harness.programs.path("stepping")
    start = _line_of(_source(harness), "struct pair pairs[3]")
    expected = gdb_stops(program, start, "next", 6)
    assert len(expected) == 7, expected
    assert lindbg_stops(harness, start, Status.STEP_OVER, 6) == expected


def test_step_matches_gdb_through_calls_returns_and_recursion(harness: Harness) -> None:
    program = harness.programs.path("stepping")
    source = _source(harness)
    start = _line_of(source, "struct pair pairs[3]")
    # up to the last iteration of walk's loop: before the inlined call to twice
    # (gdb first stops on the call line there, lindbg at the inlined body: see
    # test_step_into_an_inlined_call)
    last = ("walk", _line_of(source, "for (int i = 0; i < count; i++)"))
    expected = _until(gdb_stops(program, start, "step", 40), last)
    got = lindbg_stops(harness, start, Status.STEP_INTO, len(expected) - 1)
    assert got == expected
    assert ("factorial", _line_of(source, "return 1;")) in got  # the recursion went deep


def test_step_into_an_inlined_call_stops_at_its_call_site_first_like_gdb(harness: Harness) -> None:
    program = harness.programs.path("stepping")
    source = _source(harness)
    start = _line_of(source, "struct pair pairs[3]")
    call_line = _line_of(source, "total += twice(total);")
    body = _line_of(source, "int doubled = v * 2;")
    expected = _until(gdb_stops(program, start, "step", 60), ("walk", _line_of(source, "return total;")))
    entry = expected.index(("twice", body))
    # gdb's virtual frame: the call line at the inlined call's first instruction, then
    # the next `step` enters the inlined body without running
    assert expected[entry - 1] == ("walk", call_line)
    assert lindbg_stops(harness, start, Status.STEP_INTO, len(expected) - 1) == expected


def test_a_virtual_inline_stop_shows_the_callers_frame_and_locals(harness: Harness) -> None:
    source = _source(harness)
    stop_at_line(harness, _line_of(source, "total += add(p[i].first, i);"))
    while _where(harness) != ("walk", _line_of(source, "total += twice(total);")):
        harness.go(Status.STEP_INTO)
    pc = harness.rip()
    assert [v.name for v in harness.client.locals()] == ["total"]  # walk's, not twice's
    harness.go(Status.STEP_INTO)  # enters the inlined call: nothing runs
    assert harness.rip() == pc
    assert _where(harness) == ("twice", _line_of(source, "int doubled = v * 2;"))
    assert [v.name for v in harness.client.arguments()] == ["v"]
    event = harness.client.get_last_event()
    assert event is not None and event.kind == "step"


def test_next_steps_over_an_inlined_call(harness: Harness) -> None:
    source = _source(harness)
    start = _line_of(source, "total += twice(total);")
    stops = lindbg_stops(harness, start, Status.STEP_OVER, 1)
    assert stops == [("walk", start), ("walk", _line_of(source, "return total;"))]


def test_a_breakpoint_inside_a_stepped_over_call_stops_the_step(harness: Harness) -> None:
    source = _source(harness)
    harness.launch("stepping")
    start = harness.client.add_breakpoint(f"{SOURCE}:{_line_of(source, 'int x = add(1, 2);')}")
    harness.go()
    harness.client.remove_breakpoint(start)
    inner = harness.client.add_breakpoint("stepping!add")
    harness.client.set_code_level(CodeLevel.SOURCE)
    harness.go(Status.STEP_OVER)
    event = harness.client.get_last_event()
    assert event is not None and event.kind == "breakpoint" and event.breakpoint_id == inner.id
    assert harness.rip() == harness.symbol("stepping", "add")


def test_p_with_a_count_steps_that_many_lines(harness: Harness) -> None:
    source = _source(harness)
    stop_at_line(harness, _line_of(source, "struct pair pairs[3]"))
    harness.client.set_execution_status(Status.STEP_OVER, 3)
    assert harness.client.wait_for_event(timeout=10)
    assert _where(harness) == ("main", _line_of(source, "int w = walk(pairs, 3);"))


def test_assembly_level_steps_one_instruction(harness: Harness) -> None:
    source = _source(harness)
    start = _line_of(source, "struct pair pairs[3]")
    stop_at_line(harness, start, CodeLevel.ASSEMBLY)
    assert harness.client.get_code_level() is CodeLevel.ASSEMBLY
    before = harness.rip()
    harness.go(Status.STEP_OVER)
    assert _where(harness) == ("main", start)
    assert harness.rip() != before


def test_the_code_level_is_an_engine_state_change(harness: Harness) -> None:
    recorder = Recorder(EventMask.CHANGE_ENGINE_STATE)
    harness.client.set_event_callbacks(recorder)
    harness.client.set_code_level(CodeLevel.SOURCE)
    assert harness.client.get_source_options() & SourceOptions.TRACE_LINES
    harness.client.set_code_level(CodeLevel.ASSEMBLY)
    changes = [
        entry for entry in recorder.log if entry[0] == "change_engine_state" and entry[1] == CES.CODE_LEVEL
    ]
    assert changes == [
        ("change_engine_state", CES.CODE_LEVEL, CodeLevel.SOURCE),
        ("change_engine_state", CES.CODE_LEVEL, CodeLevel.ASSEMBLY),
    ]


def _source(harness: Harness) -> str:
    return str(FIXTURE_SOURCES / SOURCE)


def test_a_line_breakpoint_on_a_function_line_lands_past_the_prologue_like_gdb(harness: Harness) -> None:
    program = harness.programs.path("stepping")
    source = _source(harness)
    lines = [
        _line_of(source, "NOINLINE int add(int a, int b) {"),
        _line_of(source, "for (int i = 0; i < count; i++)"),
    ]
    output = gdb_at(program, None, *[f"break {SOURCE}:{line}" for line in lines])
    expected = [
        int(address, 16) for address in re.findall(r"^Breakpoint \d+ at (0x[0-9a-f]+):", output, re.M)
    ]
    harness.launch("stepping")
    got = [harness.client.add_breakpoint(f"{SOURCE}:{line}").address for line in lines]
    assert got == expected
    assert got[0] != harness.symbol("stepping", "add")  # not the function's first byte


SPIN = """
#include <stdio.h>
volatile int spin = 1;
int main(void) {
    int n = 0;
    while (spin) { n++; }   /* SPIN */
    printf("%d\\n", n);
    return 0;
}
"""


def test_a_break_in_stops_a_line_step_that_never_ends_and_a_long_t_n(
    harness: Harness, tmp_path: Path
) -> None:
    source = tmp_path / "spin.c"
    source.write_text(SPIN)
    program = tmp_path / "spin"
    subprocess.run(["gcc", "-g", "-O0", "-no-pie", "-o", str(program), str(source)], check=True)
    harness.client.create_process([str(program)], env=harness.pipe.env)
    bp = harness.client.add_breakpoint(f"spin.c:{_line_of(str(source), 'SPIN')}")
    harness.go()
    harness.client.remove_breakpoint(bp)
    harness.client.set_code_level(CodeLevel.SOURCE)
    for status, count in ((Status.STEP_OVER, 1), (Status.STEP_INTO, 10**8)):
        harness.client.set_execution_status(status, count)
        assert harness.client.wait_for_event(timeout=0.3) is False  # still stepping the loop's line
        harness.client.set_interrupt()
        assert harness.client.wait_for_event(timeout=WAIT)
        assert harness.client.get_execution_status() == Status.BREAK
        event = harness.client.get_last_event()
        assert event is not None and event.kind == "break"
        assert _where_in(harness, "spin.c") == _line_of(str(source), "SPIN")


def _where_in(harness: Harness, file: str) -> int:
    line = harness.client.source_line(harness.rip())
    assert line is not None and line.file.endswith(file)
    return line.line


def test_next_out_of_main_stops_in_libcs_caller_like_gdb(harness: Harness) -> None:
    """Out of main, into libc's own lines (libc6-dbg): gdb stops on the caller's row
    that follows the call (`exit (result);`), then `next` runs the program out."""
    program = harness.programs.path("stepping")
    start = _line_of(_source(harness), "return 0;")
    output = gdb_at(program, f"{SOURCE}:{start}", "next", "next", "next")
    caller = re.search(r"^(\w+) \(.*\) at \S+/(\S+):(\d+)$", output, re.MULTILINE)
    if caller is None:
        pytest.skip("gdb did not stop in libc (its debug file is needed)")
    stop_at_line(harness, start)
    harness.go(Status.STEP_OVER)
    harness.go(Status.STEP_OVER)
    frame = harness.client.stack(max_frames=1)[0]
    assert frame.function == caller.group(1)
    assert frame.file is not None and frame.file.endswith(caller.group(2))
    assert frame.line == int(caller.group(3))
    harness.go(Status.STEP_OVER)  # over exit(): the program ends
    assert harness.client.get_execution_status() == Status.NO_DEBUGGEE


def test_t_into_a_library_call_goes_through_the_plt_like_gdb(harness: Harness) -> None:
    """`t` on a printf line: through the PLT stub (unbound yet: lazy binding) into
    libc's printf, stopping where its prologue row ends, then line by line, as gdb."""
    program = harness.programs.path("stepping")
    start = _line_of(_source(harness), 'printf("x=%d f=%d w=%d\\n", x, f, w);')
    output = gdb_at(program, f"{SOURCE}:{start}", "step", "step", "step")
    entered = re.search(r"^\w+ \(.*\) at \S*?([\w-]+\.c):(\d+)$", output, re.MULTILINE)
    if entered is None:
        pytest.skip("gdb did not step into libc (its debug file is needed)")
    expected = [(entered.group(1), int(entered.group(2)))]
    expected += [(entered.group(1), int(n)) for n in re.findall(r"^(\d+)\t", output[entered.end() :], re.M)]
    stop_at_line(harness, start)
    got = []
    for _ in range(len(expected)):
        harness.go(Status.STEP_INTO)
        frame = harness.client.stack(max_frames=1)[0]
        assert frame.file is not None and frame.line is not None
        got.append((frame.file.rsplit("/", 1)[-1], frame.line))
    assert got == expected
