"""The CFI unwinder (lindbg.symbols.cfi, lindbg.symbols.stackwalk) against the real tools.

Rows are checked against ``readelf --debug-dump=frames-interp``; walks against gdb:
each C program below is run under gdb until it faults or traps, gdb writes a core
file and prints its backtrace of that core (``set backtrace past-main on``, through
a small gdb Python script that gives every frame's pc and type), and ``walk()`` runs
on the same core (registers from NT_PRSTATUS, memory from its PT_LOAD segments, the
modules from NT_FILE). The pcs of gdb's real (not inlined) frames must equal the
walk's, and the function names (from ``nm`` on the module or its debug file) must
match gdb's.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import shutil
import struct
import subprocess
import time
from bisect import bisect_right
from pathlib import Path

import pytest

from lindbg.errors import MemoryAccessError
from lindbg.symbols.cfi import CallFrameTable, CfiError, FrameRow
from lindbg.symbols.stackwalk import DWARF_REGS, RawFrame, evaluate_expression, walk

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
CFLAGS_BASE = ["-g", "-pthread", "-fcf-protection=none"]

pytestmark = pytest.mark.skipif(
    shutil.which("gdb") is None or shutil.which("gcc") is None or not os.path.exists(LIBC),
    reason="needs gcc, gdb and glibc",
)

CHAIN_C = r"""
#include <stdlib.h>
#include <string.h>
volatile int sink;
__attribute__((noinline)) int d(int n) {
    volatile char pad[40];
    pad[n & 31] = (char)n;
    sink = pad[3];
    __builtin_trap();
    return n;
}
__attribute__((noinline)) int c(int n) {
    volatile char buf[64];
    buf[n & 63] = (char)n;
    int r = d(n + 1);
    sink = r + buf[1];
    return r + 1;
}
__attribute__((noinline)) int b(int n) { int r = c(n * 2); sink = r; return r + 2; }
__attribute__((noinline)) int a(int n) { int r = b(n + 3); sink = r; return r + 3; }
__attribute__((noinline)) int recurse(int n) { int r = n ? recurse(n - 1) : a(n); sink = r; return r + 1; }
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "null") == 0) { void (*volatile fp)(void) = 0; fp(); return 1; }
    if (argc > 1) return recurse(atoi(argv[1]));
    return a(1);
}
"""

QSORT_C = r"""
#include <stdlib.h>
static int calls;
static int compare(const void *x, const void *y) {
    if (++calls == 300) { volatile int *p = 0; *p = 1; }
    return *(const int *)x - *(const int *)y;
}
__attribute__((noinline)) void sort_them(int *v, int n) { qsort(v, n, sizeof *v, compare); }
int main(void) {
    int v[500];
    for (int i = 0; i < 500; i++) v[i] = (i * 7919) % 500;
    sort_them(v, 500);
    return v[0];
}
"""

SIGNAL_C = r"""
#include <signal.h>
#include <unistd.h>
#include <sys/syscall.h>
volatile int sink;
__attribute__((noinline)) void in_handler(int sig) { sink = sig; __builtin_trap(); }
static void handler(int sig) { in_handler(sig + 1); sink++; }
__attribute__((noinline)) void interrupted(void) {
    long ret;
    /* the signal arrives as this very syscall returns: the interrupted pc is mid-function */
    __asm__ volatile("syscall" : "=a"(ret)
                     : "a"((long)SYS_kill), "D"((long)getpid()), "S"((long)SIGUSR1)
                     : "rcx", "r11", "memory");
    sink = (int)ret;
}
int main(void) { signal(SIGUSR1, handler); interrupted(); return sink; }
"""

PRSTATUS_REGISTERS = [
    *("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi"),
    *("rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs"),
]
FDE_LINE = re.compile(r"^[0-9a-f]{8} [0-9a-f]+ [0-9a-f]+ FDE cie=[0-9a-f]+ pc=([0-9a-f]+)\.\.([0-9a-f]+)")

GDB_FRAMES_PY = """
import gdb
f = gdb.newest_frame()
while f is not None:
    print("FRAME %#x %d %s" % (f.pc(), f.type(), f.name()))
    f = f.older()
"""


# ------------------------------------------------------------------ helpers


def build(directory: Path, name: str, source: str, flags: list[str]) -> Path:
    """Compile ``source`` with ``flags`` into ``directory/name``."""
    c_file = directory / f"{name}.c"
    c_file.write_text(source)
    binary = directory / name
    subprocess.run(["gcc", *flags, "-o", str(binary), str(c_file)], check=True, capture_output=True)
    return binary


def gdb_core(program: Path, *args: str) -> tuple[Path, list[tuple[int, int, str]]]:
    """Run ``program`` under gdb to its fault, dump a core; gdb's frames of that core
    as (pc, frame type, name) for every frame, inlined ones included."""
    core = program.parent / f"{program.name}-{'-'.join(args) or 'run'}.core"
    subprocess.run(
        [
            "gdb", "-batch", "-nx",
            "-ex", "set debuginfod enabled off",
            "-ex", "handle SIGUSR1 nostop noprint pass",
            "-ex", "run",
            "-ex", f"generate-core-file {core}",
            "--args", str(program), *args,
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert core.exists(), f"gdb wrote no core for {program}"
    script = program.parent / "frames.py"
    script.write_text(GDB_FRAMES_PY)
    output = subprocess.run(
        [
            "gdb", "-batch", "-nx",
            "-ex", "set debuginfod enabled off",
            "-ex", "set backtrace past-main on",
            "-x", str(script), str(program), str(core),
        ],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    frames = []
    for line in output.splitlines():
        if line.startswith("FRAME "):
            _, pc, kind, name = line.split(" ", 3)
            frames.append((int(pc, 16), int(kind), name))
    assert frames, output
    return core, frames


@functools.cache
def debug_file_for(path: str) -> str | None:
    """The separate debug file of ``path`` under /usr/lib/debug/.build-id, if any."""
    notes = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    match = re.search(r"Build ID: ([0-9a-f]+)", notes)
    if not match:
        return None
    build_id = match.group(1)
    candidate = f"/usr/lib/debug/.build-id/{build_id[:2]}/{build_id[2:]}.debug"
    return candidate if os.path.exists(candidate) else None


class Symbols:
    """Function names of one module from ``nm`` (its debug file when there is one)."""

    def __init__(self, path: str) -> None:
        source = debug_file_for(path) or path
        listing = subprocess.run(
            ["nm", "-S", "--defined-only", source], capture_output=True, text=True, check=True
        ).stdout
        by_start: dict[int, tuple[int, set[str]]] = {}
        for line in listing.splitlines():
            parts = line.split()
            if len(parts) == 3:  # no size (hand-written assembly such as __restore_rt)
                parts.insert(1, "0")
            if len(parts) == 4 and parts[2] in "tTwWi":
                start, size = int(parts[0], 16), int(parts[1], 16)
                old_size, names = by_start.setdefault(start, (size, set()))
                names.add(parts[3].split("@")[0].split(".")[0])  # main.cold is main to gdb
                by_start[start] = (max(size, old_size), names)
        self.starts = sorted(by_start)
        self.entries = [by_start[start] for start in self.starts]

    def address_of(self, name: str) -> int | None:
        for start, (_, names) in zip(self.starts, self.entries, strict=True):
            if name in names:
                return start
        return None

    def names_at(self, address: int) -> set[str]:
        index = bisect_right(self.starts, address) - 1
        if index < 0:
            return set()
        size, names = self.entries[index]
        return names if address < self.starts[index] + max(size, 1) else set()


class CoreSpace:
    """An AddressSpace over an ELF core: PT_LOAD memory, NT_FILE modules, NT_PRSTATUS."""

    def __init__(self, core: Path) -> None:
        self.data = core.read_bytes()
        data = self.data
        phoff = struct.unpack_from("<Q", data, 0x20)[0]
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
        self.segments: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
        self.files: list[tuple[int, int, int, str]] = []  # (start, end, file offset, path)
        self.registers: dict[str, int] = {}
        for index in range(phnum):
            kind, _, offset, vaddr, _, filesz = struct.unpack_from("<IIQQQQ", data, phoff + index * phentsize)
            if kind == 1 and filesz:
                self.segments.append((vaddr, offset, filesz))
            elif kind == 4:
                self._notes(offset, filesz)
        self.segments.sort()
        self.tables: dict[str, CallFrameTable] = {}
        self.biases: dict[tuple[str, int, int], int] = {}
        self.lookups = 0

    def _notes(self, offset: int, size: int) -> None:
        data = self.data
        position = offset
        while position + 12 <= offset + size:
            namesz, descsz, kind = struct.unpack_from("<III", data, position)
            desc = position + 12 + ((namesz + 3) & ~3)
            if kind == 1 and not self.registers:  # NT_PRSTATUS of the first thread
                values = struct.unpack_from("<27Q", data, desc + 112)
                self.registers = dict(zip(PRSTATUS_REGISTERS, values, strict=True))
            elif kind == 0x46494C45:  # NT_FILE
                count, page = struct.unpack_from("<QQ", data, desc)
                entries = [struct.unpack_from("<QQQ", data, desc + 16 + 24 * i) for i in range(count)]
                names = data[desc + 16 + 24 * count : desc + descsz].split(b"\0")
                for (start, end, pages), name in zip(entries, names[:count], strict=True):
                    self.files.append((start, end, pages * page, name.decode()))
            position = desc + ((descsz + 3) & ~3)

    def read_u64(self, address: int) -> int:
        for vaddr, offset, filesz in self.segments:
            if vaddr <= address and address + 8 <= vaddr + filesz:
                value: int = struct.unpack_from("<Q", self.data, offset + address - vaddr)[0]
                return value
        raise MemoryAccessError(f"core has no memory at {address:#x}", address)

    def module_at(self, pc: int) -> tuple[str, int] | None:
        """(path, load bias) of the mapped file holding ``pc``."""
        for start, end, file_offset, path in self.files:
            if start <= pc < end:
                return path, self._bias(path, start, file_offset)
        return None

    def _bias(self, path: str, start: int, file_offset: int) -> int:
        key = (path, start, file_offset)
        if key not in self.biases:
            with open(path, "rb") as handle:
                header = handle.read(0x40)
                phoff = struct.unpack_from("<Q", header, 0x20)[0]
                phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
                handle.seek(phoff)
                table = handle.read(phentsize * phnum)
            bias = None
            for index in range(phnum):
                kind, _, offset, vaddr, _, filesz = struct.unpack_from("<IIQQQQ", table, index * phentsize)
                if kind == 1 and offset & ~0xFFF <= file_offset < offset + max(filesz, 1):
                    bias = start - file_offset - ((vaddr - offset) & ~0xFFF)
                    break
            assert bias is not None, f"{path}: no PT_LOAD for file offset {file_offset:#x}"
            self.biases[key] = bias
        return self.biases[key]

    def table_for(self, pc: int) -> tuple[CallFrameTable, int] | None:
        self.lookups += 1
        found = self.module_at(pc)
        if found is None:
            return None
        path, bias = found
        if path not in self.tables:
            self.tables[path] = CallFrameTable(path, debug_file_for(path))
        return self.tables[path], bias


def walk_core(core: Path) -> tuple[CoreSpace, list[RawFrame]]:
    space = CoreSpace(core)
    return space, walk(space.registers, space)


def frame_names(space: CoreSpace, frames: list[RawFrame]) -> list[set[str]]:
    """The function names at each frame's pc (pc - 1 for a return address)."""
    symbols: dict[str, Symbols] = {}
    result = []
    for frame in frames:
        found = space.module_at(frame.pc)
        if found is None:
            result.append({"??"})
            continue
        path, bias = found
        if path not in symbols:
            symbols[path] = Symbols(path)
        lookup = frame.pc if frame.how in ("context", "signal") else frame.pc - 1
        # a trampoline's pc (__restore_rt) is its first byte: gdb names it by the pc itself
        names = symbols[path].names_at(lookup - bias) or symbols[path].names_at(frame.pc - bias)
        result.append(names or {"??"})
    return result


def assert_matches_gdb(
    space: CoreSpace, frames: list[RawFrame], gdb_frames: list[tuple[int, int, str]]
) -> None:
    """The walk's pcs are gdb's real frames' pcs, in order, and the names agree."""
    # gdb.INLINE_FRAME (2) and gdb.TAILCALL_FRAME (3) are frames gdb makes up from DWARF
    # inlining and call-site information; they share their pc with a real frame.
    real = [(pc, kind, name) for pc, kind, name in gdb_frames if kind not in (2, 3)]
    ours = [frame.pc for frame in frames]
    listing = "\n".join(
        f"  {frame.how:13} {frame.pc:#x} sp={frame.sp:#x} {sorted(names)}"
        for frame, names in zip(frames, frame_names(space, frames), strict=True)
    )
    assert ours == [pc for pc, _, _ in real], f"walk:\n{listing}\ngdb:\n" + "\n".join(
        f"  {pc:#x} {kind} {name}" for pc, kind, name in gdb_frames
    )
    for names, (_, _, gdb_name) in zip(frame_names(space, frames), real, strict=True):
        if gdb_name != "None":
            assert gdb_name in names, f"gdb names {gdb_name}, nm says {names}\n{listing}"
    for frame, following in itertools.pairwise(frames):
        assert frame.return_address == following.pc
        assert following.sp > frame.sp or frame.how == "signal" or following.how == "signal"
    assert frames[-1].return_address == 0
    assert frames[0].how == "context"


# ------------------------------------------------------------ walks vs gdb

CHAIN_BUILDS = {
    "O0-nopie": ["-O0", "-no-pie"],
    "O0-pie": ["-O0", "-pie", "-fPIE"],
    "O2-omitfp-pie": ["-O2", "-fomit-frame-pointer", "-pie", "-fPIE"],
    "O2-omitfp-nopie": ["-O2", "-fomit-frame-pointer", "-no-pie"],
}

GDB_NORMAL_FRAME, GDB_SIGTRAMP_FRAME = 0, 4


@pytest.mark.parametrize("variant", sorted(CHAIN_BUILDS))
def test_chain_matches_gdb(tmp_path: Path, variant: str) -> None:
    program = build(tmp_path, f"chain-{variant}", CHAIN_C, CFLAGS_BASE + CHAIN_BUILDS[variant])
    core, gdb_frames = gdb_core(program)
    space, frames = walk_core(core)
    assert_matches_gdb(space, frames, gdb_frames)
    names = frame_names(space, frames)
    assert [sorted(n)[0] for n in names[:5]] == ["d", "c", "b", "a", "main"]
    assert "_start" in names[-1]
    assert all(frame.how in ("context", "cfi") for frame in frames)


def test_qsort_comparator_crash_through_libc(tmp_path: Path) -> None:
    program = build(tmp_path, "qsort", QSORT_C, [*CFLAGS_BASE, "-O0", "-no-pie"])
    core, gdb_frames = gdb_core(program)
    space, frames = walk_core(core)
    assert_matches_gdb(space, frames, gdb_frames)
    flat = [name for names in frame_names(space, frames) for name in names]
    assert "compare" in frame_names(space, frames)[0]
    if debug_file_for(LIBC):
        assert "msort_with_tmp" in flat
    assert "sort_them" in flat and "main" in flat


def test_signal_handler_through_restore_rt(tmp_path: Path) -> None:
    program = build(tmp_path, "signal", SIGNAL_C, [*CFLAGS_BASE, "-O0", "-no-pie"])
    core, gdb_frames = gdb_core(program)
    space, frames = walk_core(core)
    assert_matches_gdb(space, frames, gdb_frames)
    names = frame_names(space, frames)
    trampoline = next(i for i, n in enumerate(names) if "__restore_rt" in n)
    assert names[:trampoline] == [{"in_handler"}, {"handler"}]
    assert "interrupted" in names[trampoline + 1] and frames[trampoline + 1].how == "signal"
    assert [kind for _, kind, _ in gdb_frames].count(GDB_SIGTRAMP_FRAME) == 1


def test_signal_handler_optimized(tmp_path: Path) -> None:
    program = build(tmp_path, "signal-o2", SIGNAL_C, [*CFLAGS_BASE, "-O2", "-fomit-frame-pointer", "-pie"])
    core, gdb_frames = gdb_core(program)
    space, frames = walk_core(core)
    assert_matches_gdb(space, frames, gdb_frames)


def test_frame_pointer_fallback_without_cfi(tmp_path: Path) -> None:
    # no .eh_frame and no -g: the program's own functions have no CFI at all
    flags = ["-O0", "-no-pie", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables"]
    flags.append("-fcf-protection=none")
    program = build(tmp_path, "chain-nocfi", CHAIN_C, flags)
    core, gdb_frames = gdb_core(program)
    space, frames = walk_core(core)
    table = space.table_for(frames[0].pc)
    assert table is not None and table[0].row_at(frames[0].pc - table[1]) is None
    assert_matches_gdb(space, frames, gdb_frames)
    assert [frame.how for frame in frames[1:5]] == ["frame-pointer"] * 4


def test_debug_frame_fallback(tmp_path: Path) -> None:
    # -g without unwind tables: CFI only in .debug_frame; then moved to a separate debug file
    flags = ["-g", "-O2", "-no-pie", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables"]
    program = build(tmp_path, "chain-debugframe", CHAIN_C, [*flags, "-fcf-protection=none"])
    core, gdb_frames = gdb_core(program)
    space, frames = walk_core(core)
    assert_matches_gdb(space, frames, gdb_frames)
    assert [frame.how for frame in frames[1:5]] == ["cfi"] * 4
    d_address = int(
        subprocess.run(["nm", str(program)], capture_output=True, text=True, check=True)
        .stdout.split(" T d\n")[0]
        .rsplit("\n", 1)[-1],
        16,
    )
    assert CallFrameTable(str(program)).row_at(d_address) is not None
    debug = tmp_path / "chain.debug"
    stripped = tmp_path / "chain-stripped"
    subprocess.run(["objcopy", "--only-keep-debug", str(program), str(debug)], check=True)
    subprocess.run(["objcopy", "--strip-debug", str(program), str(stripped)], check=True)
    assert CallFrameTable(str(stripped)).row_at(d_address) is None
    assert CallFrameTable(str(stripped), str(debug)).row_at(d_address) == CallFrameTable(str(program)).row_at(
        d_address
    )


def test_call_through_null_pointer(tmp_path: Path) -> None:
    program = build(tmp_path, "chain-null", CHAIN_C, [*CFLAGS_BASE, "-O0", "-no-pie"])
    core, gdb_frames = gdb_core(program, "null")
    space, frames = walk_core(core)
    assert frames[0].pc == 0
    assert_matches_gdb(space, frames, gdb_frames)


def test_deep_walk_timing(tmp_path: Path) -> None:
    program = build(tmp_path, "chain-deep", CHAIN_C, [*CFLAGS_BASE, "-O2", "-pie"])
    core, gdb_frames = gdb_core(program, "22")
    space = CoreSpace(core)
    for _, _, _, path in space.files:
        debug_file_for(path)  # the test's own readelf runs are not the walk's time
    started = time.perf_counter()
    frames = walk(space.registers, space)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    again = walk(space.registers, space)
    warm = time.perf_counter() - started
    assert again == frames
    assert_matches_gdb(space, frames, gdb_frames)
    assert len(frames) >= 30
    print(f"\n{len(frames)}-frame walk: {cold * 1000:.2f} ms cold (tables opened), {warm * 1000:.2f} ms warm")
    limited = walk(space.registers, space, max_frames=5)
    # truncated, not ended: the last frame still names its caller (as cdb's k N does)
    assert limited == frames[:5] and limited[4].return_address == frames[5].pc


# ----------------------------------------------------- rows vs readelf


def readelf_rows(path: str) -> list[tuple[int, int, list[str], list[tuple[int, list[str]]]]]:
    """FDEs of ``readelf --debug-dump=frames-interp``: (begin, end, columns, rows)."""
    output = subprocess.run(
        ["readelf", "--debug-dump=frames-interp", path], capture_output=True, text=True, check=False
    ).stdout
    fdes: list[tuple[int, int, list[str], list[tuple[int, list[str]]]]] = []
    lines = output.splitlines()
    index = 0
    while index < len(lines):
        match = FDE_LINE.match(lines[index])
        index += 1
        if not match or index >= len(lines) or not lines[index].strip().startswith("LOC"):
            continue
        columns = lines[index].split()[2:]
        index += 1
        rows = []
        while index < len(lines) and lines[index].strip():
            cells = re.sub(r" \(", "(", lines[index]).split()  # "r10 (r10)": a register rule
            rows.append((int(cells[0], 16), cells[1:]))
            index += 1
        fdes.append((int(match.group(1), 16), int(match.group(2), 16), columns, rows))
    return fdes


_READELF_REGS = {name: number for number, name in DWARF_REGS.items()} | {"ra": 16}


def readelf_cells(row: FrameRow, columns: list[str]) -> list[str]:
    """``row`` rendered as readelf prints it."""
    cfa = "exp" if row.cfa[0] == "expr" else f"{row.cfa[0]}{row.cfa[1]:+d}"
    cells = [cfa]
    for column in columns:
        rule = row.rules.get(_READELF_REGS[column])
        if rule is None or rule[0] == "undefined":
            cells.append("u")
        elif rule[0] == "offset":
            cells.append(f"c{rule[1]:+d}")
        elif rule[0] == "val_offset":
            cells.append(f"v{rule[1]:+d}")
        elif rule[0] == "register":
            cells.append(f"r{rule[1]}({DWARF_REGS.get(rule[1], rule[1])})")
        elif rule[0] == "same":
            cells.append("s")
        else:
            cells.append({"expr": "exp", "val_expr": "vexp"}[rule[0]])
    return cells


@pytest.mark.parametrize("which", ["libc", "program"])
def test_rows_match_readelf(tmp_path: Path, which: str) -> None:
    path = LIBC if which == "libc" else str(build(tmp_path, "chain", CHAIN_C, [*CFLAGS_BASE, "-O2", "-pie"]))
    fdes = readelf_rows(path)
    assert fdes
    # a handful: the first ones, those with the most columns, and expression CFAs (PLT)
    chosen = fdes[:6] + sorted(fdes, key=lambda fde: -len(fde[2]))[:6]
    chosen += [fde for fde in fdes if any(cells[0] == "exp" for _, cells in fde[3])][:4]
    table = CallFrameTable(path)
    checked = 0
    for begin, end, columns, rows in chosen:
        if any(column not in _READELF_REGS for column in columns):
            continue
        for position, (location, cells) in enumerate(rows):
            last = rows[position + 1][0] - 1 if position + 1 < len(rows) else end - 1
            for pc in {location, last, (location + last) // 2}:
                row = table.row_at(pc)
                assert row is not None, f"{path}: no row at {pc:#x} (FDE {begin:#x}..{end:#x})"
                assert readelf_cells(row, columns) == cells, f"{path} at {pc:#x}: {row}"
                assert set(row.rules) <= {_READELF_REGS[column] for column in columns}
                checked += 1
        assert row.return_register == 16
    assert checked > 20
    assert table.row_at(0) is None


def test_restore_rt_is_a_signal_frame() -> None:
    restore = Symbols(LIBC).address_of("__restore_rt")
    if restore is None:
        pytest.skip("libc has no __restore_rt symbol (no debug file)")
    row = CallFrameTable(LIBC).row_at(restore)
    assert row is not None and row.signal_frame
    assert row.cfa[0] == "expr"
    assert {3, 6, 7, 12, 13, 14, 15, 16} <= set(row.rules)  # every register from the ucontext


def test_first_libc_lookup_timing() -> None:
    qsort_address = Symbols(LIBC).address_of("qsort")
    assert qsort_address is not None
    started = time.perf_counter()
    table = CallFrameTable(LIBC)
    row = table.row_at(qsort_address + 4)
    first = time.perf_counter() - started
    started = time.perf_counter()
    table.row_at(qsort_address + 5)
    second = time.perf_counter() - started
    assert row is not None
    print(f"\nfirst row_at in libc (opening included): {first * 1000:.2f} ms; next: {second * 1000:.3f} ms")
    assert len(table._eh.fdes) == 1 if table._eh else True  # only the one FDE was decoded


# ---------------------------------------------------- expressions, errors


def test_plt_style_expression() -> None:
    # glibc/binutils PLT: CFA = rsp + 8 + ((rip & 15) >= 11 ? 8 : 0)
    expression = bytes([0x77, 0x08, 0x80, 0x00, 0x3F, 0x1A, 0x3B, 0x2A, 0x33, 0x24, 0x22])
    read = lambda address: 0  # noqa: E731
    assert evaluate_expression(expression, {7: 0x1000, 16: 0x401020}, read) == 0x1008
    assert evaluate_expression(expression, {7: 0x1000, 16: 0x40102B}, read) == 0x1010
    memory = {0x2000: 0x1234}
    deref = bytes([0x77, 0x10, 0x06, 0x23, 0x04])  # [rsp+16] + 4
    assert evaluate_expression(deref, {7: 0x1FF0}, memory.__getitem__) == 0x1238
    assert evaluate_expression(bytes([0x08, 0xFF, 0x09, 0xFF, 0x1C]), {}, read) == 0x100  # 255 - (-1)
    assert evaluate_expression(bytes([0x31, 0x32, 0x2D]), {}, read) == 1  # 1 < 2
    with pytest.raises(ValueError):
        evaluate_expression(bytes([0x22]), {}, read)
    with pytest.raises(ValueError):
        evaluate_expression(bytes([0x75, 0x00]), {}, read)  # rdi is unknown


class FakeSpace:
    """Memory from a dict of 8-byte words (byte-addressed reads), no CFI anywhere."""

    def __init__(self, memory: dict[int, int]) -> None:
        self.image = bytearray(0x1000)
        for address, value in memory.items():
            self.image[address : address + 8] = struct.pack("<Q", value)

    def read_u64(self, address: int) -> int:
        if not 0 <= address <= len(self.image) - 8:
            raise MemoryAccessError(f"no memory at {address:#x}", address)
        value: int = struct.unpack_from("<Q", self.image, address)[0]
        return value

    def table_for(self, pc: int) -> tuple[CallFrameTable, int] | None:
        return None


def test_signal_trampoline_without_cfi_and_frame_pointer_checks() -> None:
    trampoline, stack = 0x100, 0x400
    space = FakeSpace({})
    space.image[trampoline : trampoline + 9] = bytes.fromhex("48c7c00f0000000f05")
    order = ["r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi", "rbp", "rbx", "rdx"]
    order += ["rax", "rcx", "rsp", "rip"]
    gregs = {name: 0x1000 + index for index, name in enumerate(order)}
    gregs.update(rsp=0x600, rbp=0x700, rip=0x180)
    for index, name in enumerate(order):
        space.image[stack + 40 + 8 * index : stack + 48 + 8 * index] = struct.pack("<Q", gregs[name])
    # the interrupted function: rbp chain 0x700 -> (0x780, return 0x1c0); 0x780 -> (0, 0)
    space.image[0x700:0x710] = struct.pack("<QQ", 0x780, 0x1C0)
    frames = walk({"rip": trampoline, "rsp": stack, "rbp": 0x50}, space)
    assert [(f.pc, f.sp, f.how) for f in frames] == [
        (trampoline, stack, "context"),
        (0x180, 0x600, "signal"),
        (0x1C0, 0x710, "frame-pointer"),
    ]
    assert frames[-1].return_address == 0  # [0x788] is 0
    # a frame pointer below the stack pointer is not followed
    assert walk({"rip": 0x180, "rsp": 0x800, "rbp": 0x700}, space)[-1].return_address == 0
    assert len(walk({"rip": 0x180, "rsp": 0x800, "rbp": 0x700}, space)) == 1


def _section(path: Path, name: str) -> tuple[int, int]:
    """(file offset, size) of section ``name``."""
    output = subprocess.run(["readelf", "-SW", str(path)], capture_output=True, text=True, check=True).stdout
    for line in output.splitlines():
        fields = line.replace("[ ", "[").split()
        if len(fields) > 6 and fields[1] == name:
            return int(fields[4], 16), int(fields[5], 16)
    raise AssertionError(f"no {name} in {path}")


def test_corrupt_header_raises_cfi_error(tmp_path: Path) -> None:
    copy = tmp_path / "libc-copy.so"
    shutil.copy(LIBC, copy)
    offset, _ = _section(copy, ".eh_frame_hdr")
    data = bytearray(copy.read_bytes())
    data[offset] = 7  # version
    copy.write_bytes(data)
    with pytest.raises(CfiError, match=r"libc-copy.so.*offset 0x0"):
        CallFrameTable(str(copy)).row_at(0x27296)
    data[offset] = 1
    data[offset + 8 : offset + 12] = struct.pack("<I", 0x7FFFFFFF)  # fde_count
    copy.write_bytes(data)
    with pytest.raises(CfiError, match="runs past"):
        CallFrameTable(str(copy)).row_at(0x27296)


def test_truncated_file_raises_cfi_error(tmp_path: Path) -> None:
    copy = tmp_path / "libc-short.so"
    offset, size = _section(Path(LIBC), ".eh_frame")
    with open(LIBC, "rb") as source:
        copy.write_bytes(source.read(offset + size // 2))
    with pytest.raises(CfiError, match=r"libc-short\.so"):
        CallFrameTable(str(copy)).row_at(0x27296)
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(CfiError, match="not an ELF"):
        CallFrameTable(str(tmp_path / "empty")).row_at(0)
    with pytest.raises(CfiError, match="cannot read"):
        CallFrameTable(str(tmp_path / "missing")).row_at(0)


def test_random_corruption_only_raises_cfi_error(tmp_path: Path) -> None:
    program = build(tmp_path, "chain", CHAIN_C, [*CFLAGS_BASE, "-O2", "-pie"])
    pristine = program.read_bytes()
    hdr_offset, hdr_size = _section(program, ".eh_frame_hdr")
    eh_offset, eh_size = _section(program, ".eh_frame")
    text_offset, text_size = _section(program, ".text")
    pcs = list(range(text_offset, text_offset + text_size, max(1, text_size // 16)))  # PIE: offset == vaddr
    generator = __import__("random").Random(1234)
    corrupt = tmp_path / "corrupt"
    outcomes = {"row": 0, "none": 0, "error": 0}
    for _ in range(400):
        data = bytearray(pristine)
        for _ in range(generator.choice([1, 2, 4, 16])):
            if generator.random() < 0.3:
                position = hdr_offset + generator.randrange(hdr_size)
            else:
                position = eh_offset + generator.randrange(eh_size)
            data[position] = generator.randrange(256)
        corrupt.write_bytes(data)
        table = CallFrameTable(str(corrupt))
        for pc in pcs:
            try:
                row = table.row_at(pc)
            except CfiError as error:
                assert "corrupt" in str(error) and "offset" in str(error)
                outcomes["error"] += 1
            else:
                outcomes["row" if row is not None else "none"] += 1
    assert outcomes["error"] and outcomes["row"]
