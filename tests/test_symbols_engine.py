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


def gdb_frames(program: str, *commands: str) -> list[tuple[str, str, str, int | None]]:
    """gdb's `bt` at the stop the commands lead to: (function, pc, sp, line) per
    frame, inline frames included (they repeat the pc and sp of the frame after
    them); gdb's "<signal handler called>" is the trampoline, __restore_rt."""
    args = ["gdb", "-batch", "-nx", "-ex", "set backtrace past-main on", "-ex", "set pagination off"]
    args += ["-ex", "set print frame-info location-and-address"]
    for command in commands:
        args += ["-ex", command]
    args += ["-ex", "bt", "-ex", "frame apply all -q p/x $sp", program]
    output = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False).stdout
    found: list[tuple[str, str, int | None]] = []
    for line in output.splitlines():
        if re.match(r"^#\d+\s+<signal handler called>", line):
            found.append(("__restore_rt", "signal", None))
            continue
        match = re.match(r"^#\d+\s+(0x[0-9a-f]+) in (\S+) \(.*?(?: at \S+:(\d+))?$", line)
        if match is not None:
            found.append((match[2], match[1], int(match[3]) if match[3] else None))
    sps = re.findall(r"^\$\d+ = (0x[0-9a-f]+)$", output, flags=re.MULTILINE)
    assert len(sps) == len(found), output
    return [(name, pc, sp, line) for (name, pc, line), sp in zip(found, sps, strict=True)]


def gdb_backtrace(program: str, *commands: str) -> list[str]:
    """Function names of gdb's `bt`, one per stack frame: an inline frame (same pc
    and sp as the frame after it) folds into the real function that holds it."""
    frames: list[tuple[str, str, str]] = []
    for name, pc, sp, _ in gdb_frames(program, *commands):
        if frames and frames[-1][1:] == (pc, sp):
            frames[-1] = (name, pc, sp)
        else:
            frames.append((name, pc, sp))
    return [name for name, _, _ in frames]


def assert_same_stack(names: list[str], expected: list[str]) -> None:
    """lindbg's frames are gdb's, in order, except the frames gdb makes up for tail
    calls from DWARF call-site data (they have no stack frame of their own)."""
    remaining = iter(expected)
    assert all(name in remaining for name in names), (names, expected)
    assert len(expected) - len(names) <= 2, (names, expected)


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


def test_deferred_breakpoint_in_a_library_loaded_later_is_hit(harness: Harness, plugin: str) -> None:
    harness.client.set_event_callbacks(Recorder(mask=EventMask.BREAKPOINT))
    harness.launch("dlopener", plugin)
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
    names = [bare(f.function or "?") for f in harness.client.stack() if not f.inline]
    expected = [bare(n) for n in gdb_backtrace(qsort_crash, "run")]
    assert_same_stack(names, expected)  # gdb adds sorter/qsort: tail calls
    assert names[0] == "compare"
    assert names.count("msort_with_tmp") >= 3
    assert "main" in names


def test_disassembly_and_symbols_of_the_vdso(harness: Harness) -> None:
    harness.launch("data")
    vdso = next(m for m in harness.client.modules() if m.name == "linux_vdso")
    address = harness.client.resolve("linux_vdso!__vdso_clock_gettime")
    assert vdso.base <= address < vdso.end
    name = harness.client.symbol_at(address)
    assert name is not None and name.startswith("linux_vdso!") and "+" not in name  # an alias of it
    assert harness.client.resolve(name) == address
    assert harness.client.disassemble(address, 2)


def test_breakpoint_in_an_unloaded_library_waits_for_it_again(harness: Harness, plugin: str) -> None:
    harness.client.set_event_callbacks(Recorder(mask=EventMask.BREAKPOINT))
    harness.launch("dlopener", plugin)
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


SIGNAL_HANDLER = r"""
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
volatile int hits;
__attribute__((noinline)) void in_handler(void) { hits++; }
void handler(int signo) { (void)signo; in_handler(); }
__attribute__((noinline)) void interrupted(void) { raise(SIGUSR1); }
int main(void) { signal(SIGUSR1, handler); interrupted(); printf("%d\n", hits); return 0; }
"""


def build(tmp_path: Path, name: str, text: str, *flags: str) -> str:
    source = tmp_path / f"{name}.c"
    source.write_text(text)
    program = tmp_path / name
    subprocess.run(["gcc", "-g", "-O0", *flags, "-o", str(program), str(source)], check=True)
    return str(program)


def test_stack_from_inside_a_signal_handler_matches_gdb(harness: Harness, tmp_path: Path) -> None:
    program = build(tmp_path, "sighandler", SIGNAL_HANDLER)

    class PassSignals(Recorder):
        def exception(self, exc: object) -> Status:
            return Status.GO_NOT_HANDLED  # deliver SIGUSR1 to the program's handler

    harness.client.set_event_callbacks(PassSignals(mask=EventMask.BREAKPOINT | EventMask.EXCEPTION))
    harness.client.create_process([program], stdout=subprocess.DEVNULL)
    harness.client.add_breakpoint("sighandler!in_handler")
    harness.go()
    frames = harness.client.stack()
    names = [bare(f.function or "?") for f in frames if not f.inline]
    stop = ("handle SIGUSR1 nostop noprint pass", "break in_handler", "run")
    assert_same_stack(names, [bare(n) for n in gdb_backtrace(program, *stop)])
    assert "restore_rt" in names and names.index("restore_rt") < names.index("interrupted")
    assert any(f.how == "signal" for f in frames)


def test_a_static_program_has_one_module_with_symbols(harness: Harness, tmp_path: Path) -> None:
    program = build(tmp_path, "static_prog", SIGNAL_HANDLER, "-static")
    harness.client.create_process([program], stdout=subprocess.DEVNULL)
    names = [m.name for m in harness.client.modules()]
    assert names == ["static_prog", "linux_vdso"]
    bp = harness.client.add_breakpoint("static_prog!interrupted")
    assert not bp.deferred
    harness.go()
    assert harness.client.symbol_at(harness.rip()) == "static_prog!interrupted"
    assert [bare(f.function or "?") for f in harness.client.stack()][:2] == ["interrupted", "main"]


def test_find_symbols_with_wildcards_agrees_with_nm(harness: Harness) -> None:
    harness.launch("data")
    found = dict(harness.client.find_symbols("data!*_watched"))
    assert found == {
        "data!read_watched": harness.symbol("data", "read_watched"),
        "data!write_watched": harness.symbol("data", "write_watched"),
    }
    assert ("data!add", harness.symbol("data", "add")) in harness.client.find_symbols("*!AD?")


def test_disassembly_names_call_targets(harness: Harness) -> None:
    harness.launch("data")
    listing = harness.client.disassemble(harness.symbol("data", "step_caller"), 12)
    calls = [i for i in listing if i.mnemonic == "call"]
    assert calls and calls[0].target == harness.symbol("data", "add")
    assert calls[0].target_symbol == "data!add"


def test_symbol_path_finds_a_debug_file_by_build_id(harness: Harness, tmp_path: Path) -> None:
    program = build(tmp_path, "split", SIGNAL_HANDLER, "-Wl,--build-id")
    build_id = subprocess.run(["readelf", "-n", program], capture_output=True, text=True, check=True).stdout
    hex_id = re.search(r"Build ID: ([0-9a-f]+)", build_id)[1]  # type: ignore[index]
    root = tmp_path / "symbols"
    debug = root / ".build-id" / hex_id[:2] / f"{hex_id[2:]}.debug"
    debug.parent.mkdir(parents=True)
    subprocess.run(["objcopy", "--only-keep-debug", program, str(debug)], check=True)
    subprocess.run(["objcopy", "--strip-all", program], check=True)
    harness.client.create_process([program], stdout=subprocess.DEVNULL)
    with pytest.raises(InvalidOperationError):
        harness.client.resolve("split!interrupted")  # stripped, and no path knows it yet
    harness.client.set_symbol_path(str(root))
    assert harness.client.get_symbol_path() == str(root)
    address = harness.client.resolve("split!interrupted")
    line = harness.client.source_line(address)
    assert line is not None and line.file.endswith("split.c")


def test_inlined_calls_are_frames_with_their_call_lines_as_gdb_lists_them(
    harness: Harness, qsort_crash: str
) -> None:
    """msort_with_tmp is inlined into itself and into qsort_r: each inlined call is a
    frame of its own at the line that made the call, as in gdb's backtrace."""
    harness.client.create_process([qsort_crash], stdout=subprocess.DEVNULL)
    harness.client.set_execution_status(Status.GO)
    assert harness.client.wait_for_event(timeout=10)
    ours = [(bare(f.function or "?"), f.line, f.inline) for f in harness.client.stack()]
    theirs = [(bare(name), line) for name, _, _, line in gdb_frames(qsort_crash, "run")]
    libc_part = [(name, line) for name, line, _ in ours if name in ("msort_with_tmp", "qsort_r")]
    expected = [(name, line) for name, line in theirs if name in ("msort_with_tmp", "qsort_r")]
    assert libc_part == expected
    assert any(inline for _, _, inline in ours)
    frames = harness.client.stack()
    inline = next(f for f in frames if f.inline)
    after = frames[frames.index(inline) + 1]
    assert (inline.pc, inline.sp) == (after.pc, after.sp)
    assert "+" not in str(inline).split(" [")[0]
