"""Symbols through the engine: names and addresses both ways (checked with nm and
addr2line), breakpoints by name and by line (deferred until their module
loads), and stacks compared with gdb's backtrace of the same stop."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import Harness, Recorder

from lindbg import EventMask, InvalidOperationError, Status

QSORT_CRASH = r"""
#include <stdio.h>
#include <stdlib.h>
int depth;
__attribute__((noinline)) int compare(const void *a, const void *b) {
    if (++depth > 5) { volatile int *p = 0; *p = 1; }
    return *(const int *)a - *(const int *)b;
}
int main(void) {
    int v[32];
    for (int i = 0; i < 32; i++) v[i] = 32 - i;
    qsort(v, 32, sizeof *v, compare);
    printf("%d\n", v[0]);
    return 0;
}
"""


@pytest.fixture(scope="module")
def qsort_crash(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PIE program that faults inside a qsort comparator, built -O2 without frame pointers."""
    directory = tmp_path_factory.mktemp("qsort")
    source = directory / "qsort_crash.c"
    source.write_text(QSORT_CRASH)
    program = directory / "qsort_crash"
    flags = ["-g", "-O2", "-fomit-frame-pointer", "-pie", "-fPIE"]
    subprocess.run(["gcc", *flags, "-o", str(program), str(source)], check=True)
    return str(program)


def gdb_backtrace(program: str, *commands: str) -> list[str]:
    """Function names of gdb's `bt` at the stop the commands lead to (inline and
    tail-call frames left out: they have no stack frame of their own)."""
    args = ["gdb", "-batch", "-nx", "-ex", "set backtrace past-main on", "-ex", "set pagination off"]
    for command in commands:
        args += ["-ex", command]
    args += ["-ex", "bt", program]
    output = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False).stdout
    names: list[str] = []
    for line in output.splitlines():
        match = re.match(r"^#\d+\s+(0x[0-9a-f]+ in )?(\S+) \(", line)
        if match is None:
            continue
        if match[1] is None and names:
            # "#11 __GI___qsort_r (...)" with no address shares the pc of the line
            # before: the one before was inlined into this real function
            names[-1] = match[2]
        else:
            names.append(match[2])
    return names


def bare(name: str) -> str:
    """gdb's and ELF's spellings of one function: no __GI_ prefix, no .part/.isra suffix."""
    name = re.sub(r"^__GI_+", "", name)
    return name.split(".")[0].lstrip("_")


def test_symbol_at_and_resolve_agree_with_nm(harness: Harness) -> None:
    process = harness.launch("data")
    assert process.pid > 0
    for name in ("main", "add", "step_caller", "report"):
        address = harness.symbol("data", name)
        assert harness.client.resolve(f"data!{name}") == address
        assert harness.client.resolve(name) == address
        assert harness.client.symbol_at(address) == f"data!{name}"
        assert harness.client.symbol_at(address + 2) == f"data!{name}+0x2"
    assert harness.client.resolve("data!add+0x10") == harness.symbol("data", "add") + 0x10
    assert harness.client.resolve("data") == 0x400000


def test_unknown_names_fail_with_couldnt_resolve(harness: Harness) -> None:
    harness.launch("data")
    with pytest.raises(InvalidOperationError, match="Couldn't resolve error at 'data!no_such_function'"):
        harness.client.resolve("data!no_such_function")
    with pytest.raises(InvalidOperationError, match="no module 'nosuchmod'"):
        harness.client.resolve("nosuchmod!main")


def test_source_lines_agree_with_addr2line(harness: Harness) -> None:
    harness.launch("data")
    program = harness.programs.path("data")
    for name in ("add", "step_caller", "main"):
        address = harness.symbol("data", name)
        line = harness.client.source_line(address)
        assert line is not None
        expected = subprocess.run(
            ["addr2line", "-e", program, hex(address)], capture_output=True, text=True, check=True
        ).stdout.strip()
        file, _, number = expected.rpartition(":")
        assert (Path(line.file).name, line.line) == (Path(file).name, int(number.split()[0]))


def test_breakpoint_by_source_line_stops_on_that_line(harness: Harness) -> None:
    harness.launch("data")
    source = Path(harness.programs.path("data")).name + ".c"
    line = harness.client.source_line(harness.symbol("data", "add")).line  # type: ignore[union-attr]
    bp = harness.client.add_breakpoint(f"{source}:{line + 1}")
    assert not bp.deferred
    harness.go()
    here = harness.client.source_line(harness.rip())
    assert here is not None and here.line == line + 1
    assert bp.hit_count == 1


def test_deferred_breakpoint_in_a_library_loaded_later_is_hit(harness: Harness, tmp_path: Path) -> None:
    source = Path(__file__).parent / "fixtures" / "lib" / "plugin.c"
    plugin = tmp_path / "libplugin.so"
    subprocess.run(["gcc", "-g", "-O0", "-shared", "-fPIC", "-o", str(plugin), str(source)], check=True)
    harness.client.set_event_callbacks(Recorder(mask=EventMask.BREAKPOINT))
    harness.launch("dlopener", str(plugin))
    bp = harness.client.add_breakpoint("libplugin!plugin_value")
    assert bp.deferred
    harness.go()
    assert not bp.deferred
    assert bp.hit_count == 1
    assert harness.client.symbol_at(harness.rip()) == "libplugin!plugin_value"
    assert harness.client.get_register("rdi") == 5
    assert harness.run_to_end() == 0


def test_stack_at_a_breakpoint_matches_gdb(harness: Harness) -> None:
    harness.launch("data")
    harness.client.add_breakpoint("data!add")
    harness.go()
    frames = harness.client.stack()
    names = [f.function for f in frames]
    expected = gdb_backtrace(harness.programs.path("data"), "break add", "run")
    assert [bare(n or "?") for n in names] == [bare(n) for n in expected]
    assert str(frames[0]).startswith("data!add [")
    assert frames[0].sp == harness.client.get_register("rsp")
    assert frames[1].pc == frames[0].return_address


def test_stack_through_libc_from_a_qsort_comparator_matches_gdb(harness: Harness, qsort_crash: str) -> None:
    harness.client.create_process([qsort_crash], stdout=subprocess.DEVNULL)
    harness.client.set_execution_status(Status.GO)
    assert harness.client.wait_for_event(timeout=10)
    event = harness.client.get_last_event()
    assert event is not None and event.signal == 11
    names = [bare(f.function or "?") for f in harness.client.stack()]
    expected = [bare(n) for n in gdb_backtrace(qsort_crash, "run")]
    # gdb adds frames for tail calls (here qsort -> qsort_r) from DWARF call-site
    # data; they have no stack frame, so lindbg's list is gdb's without them
    remaining = iter(expected)
    assert all(name in remaining for name in names), (names, expected)
    assert names[0] == "compare"
    assert names.count("msort_with_tmp") >= 3
    assert "main" in names
    assert len(names) >= len(expected) - 2, (names, expected)


def test_disassembly_and_symbols_of_the_vdso(harness: Harness) -> None:
    harness.launch("data")
    vdso = next(m for m in harness.client.modules() if m.name == "linux_vdso")
    address = harness.client.resolve("linux_vdso!__vdso_clock_gettime")
    assert vdso.base <= address < vdso.end
    name = harness.client.symbol_at(address)
    assert name is not None and name.startswith("linux_vdso!") and "+" not in name  # an alias of it
    assert harness.client.resolve(name) == address
    assert harness.client.disassemble(address, 2)


def test_breakpoint_in_an_unloaded_library_waits_for_it_again(harness: Harness, tmp_path: Path) -> None:
    source = Path(__file__).parent / "fixtures" / "lib" / "plugin.c"
    plugin = tmp_path / "libplugin.so"
    subprocess.run(["gcc", "-g", "-O0", "-shared", "-fPIC", "-o", str(plugin), str(source)], check=True)
    harness.client.set_event_callbacks(Recorder(mask=EventMask.BREAKPOINT))
    harness.launch("dlopener", str(plugin))
    bp = harness.client.add_breakpoint("libplugin!plugin_value")
    closed = harness.client.add_breakpoint("dlopener!after_dlclose")
    harness.go()
    assert bp.hit_count == 1 and not bp.deferred
    harness.go()
    assert closed.hit_count == 1
    assert bp.deferred  # dlclose took its module away; it is still listed, unresolved
    assert bp in harness.client.breakpoints()
    assert harness.run_to_end() == 0


def test_breakpoint_by_name_is_resolved_again_after_exec(harness: Harness) -> None:
    harness.client.set_event_callbacks(Recorder(mask=EventMask.BREAKPOINT))
    harness.launch("execer", harness.programs.path("data"))
    bp = harness.client.add_breakpoint("data!add")
    assert bp.deferred  # no module named data yet: execer is running
    harness.go()
    assert bp.hit_count == 1
    assert harness.rip() == harness.symbol("data", "add")
    assert harness.run_to_end() == 0
