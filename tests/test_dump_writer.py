"""Cores written by lindbg (``targets/live/snapshot.py`` + ``formats/corewriter.py``),
checked by gdb reading them, as the reader's tests check the kernel's and gcore's cores.

A real ``LiveTarget`` drives ``crasher 0 wait`` on the test thread until main stops at
park_main (an engine breakpoint: the int3 is in its code) with three threads parked in
read. The core must show gdb the same threads, registers and memory as the live target,
the program's own bytes under the breakpoint, and leave the process as it was. The
file handling (no overwrite, no half core left behind), unreadable pages and holes are
checked on synthetic images, without a process.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import WAIT, OutputPipe, Programs
from cores import GDB_REGISTERS, gdb_view

from lindbg.errors import InvalidOperationError, MemoryAccessError
from lindbg.formats import corewriter
from lindbg.formats.corewriter import (
    PAGE_SIZE,
    CoreWriteResult,
    MappingImage,
    ProcessImage,
    ThreadImage,
    write_core,
)
from lindbg.os.linux import procfs
from lindbg.targets.base import EventKind, ResumeMode, TargetEvent
from lindbg.targets.dump.corefile import CoreFile
from lindbg.targets.live.snapshot import memory_reader, snapshot
from lindbg.targets.live.target import LiveTarget

INT3 = 0xCC
SIGSEGV = 11
PT_LOAD = 1
#: The owner of the park_main breakpoint.
PARK_OWNER = object()

needs_gdb = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb reads the cores")


# ------------------------------------------------------------------ a stopped crasher


@dataclass
class Stopped:
    """``crasher`` under a LiveTarget, every thread stopped."""

    target: LiveTarget
    pid: int
    #: The thread that reported the stop (main at park_main, or the faulting thread).
    tid: int
    executable: str
    event: TargetEvent


def run_until(target: LiveTarget, kind: EventKind) -> TargetEvent:
    """Resume after every event (thread creations ...) until one of ``kind``."""
    while True:
        event = target.wait_event()
        assert event is not None and event.kind is not EventKind.PROCESS_GONE, f"no {kind}: {event}"
        if event.kind is kind:
            return event
        target.resume(ResumeMode.CONTINUE, event.tid, 0)


def launch(programs: Programs, pipe: OutputPipe, *args: str) -> tuple[LiveTarget, int]:
    target = LiveTarget()
    pid = target.launch([programs.path("crasher"), *args], pipe.env, None)
    return target, pid


@pytest.fixture
def parked(programs: Programs, pipe: OutputPipe) -> Iterator[Stopped]:
    """``crasher 0 wait`` stopped by a breakpoint at park_main, the others in read."""
    target, pid = launch(programs, pipe, "0", "wait")
    try:
        target.claim_site(pid, programs.symbol("crasher", "park_main"), owner=PARK_OWNER)
        target.resume(ResumeMode.CONTINUE, pid, 0)
        event = run_until(target, EventKind.BREAKPOINT)
        pipe.wait_for("ready pid=")
        yield Stopped(target, pid, event.tid, programs.path("crasher"), event)
    finally:
        target.terminate_all()


@pytest.fixture
def faulted(programs: Programs, pipe: OutputPipe) -> Iterator[Stopped]:
    """``crasher 0`` stopped on its SIGSEGV in crash_here (before delivery)."""
    target, pid = launch(programs, pipe, "0")
    try:
        target.resume(ResumeMode.CONTINUE, pid, 0)
        event = run_until(target, EventKind.SIGNAL)
        assert event.signal == SIGSEGV
        yield Stopped(target, pid, event.tid, programs.path("crasher"), event)
    finally:
        target.terminate_all()


def dump(stopped: Stopped, path: Path, *, full: bool = False) -> CoreWriteResult:
    image = snapshot(stopped.target, stopped.pid, full=full, current_tid=stopped.tid)
    return write_core(image, str(path), memory_reader(stopped.target, stopped.pid))


def gdb_text(executable: str, core: Path, *commands: str) -> str:
    arguments = ["gdb", "-batch", "-nx", executable, str(core)]
    for command in commands:
        arguments += ["-ex", command]
    run = subprocess.run(arguments, capture_output=True, text=True, timeout=WAIT * 6, check=False)
    return run.stdout + run.stderr


def examined_bytes(text: str) -> bytes:
    """The bytes of an ``x/Nxb`` listing."""
    return bytes(int(token, 16) for token in re.findall(r"\t0x([0-9a-f]{2})\b", text))


def raw_byte(stopped: Stopped, address: int) -> int:
    """The byte in the process's memory, int3 included (no breakpoint hiding)."""
    return stopped.target.processes[stopped.pid].memory.read(address, 1)[0]


# ------------------------------------------------------------------ gdb reads the core


@needs_gdb
def test_gdb_sees_the_threads_registers_and_memory_of_the_live_process(
    parked: Stopped, programs: Programs, tmp_path: Path
) -> None:
    core = tmp_path / "parked.core"
    dump(parked, core)
    view = gdb_view(parked.executable, core)
    target, pid = parked.target, parked.pid
    tids = target.thread_ids(pid)
    assert sorted(view.threads) == sorted(tids)
    assert view.threads[0] == parked.tid  # the current thread first: gdb selects it
    for tid in tids:
        live = target.general_registers(tid)
        assert view.registers[tid] == {name: getattr(live, name) for name in GDB_REGISTERS}, tid
    for label in ("marker", "stack", "read"):
        address, data = view.memory[label]
        assert data == target.read_memory(pid, address, len(data)), label
    assert view.memory["marker"][1][:8] == struct.pack("<q", 0x1122334455667788)


@needs_gdb
def test_the_core_has_the_programs_own_code_under_a_breakpoint(
    parked: Stopped, programs: Programs, tmp_path: Path
) -> None:
    park_main = programs.symbol("crasher", "park_main")
    assert raw_byte(parked, park_main) == INT3
    core = tmp_path / "parked.core"
    dump(parked, core)
    text = gdb_text(parked.executable, core, "thread apply all bt", "x/16xb park_main")
    assert examined_bytes(text.split("<park_main>:", 1)[1]) == programs.code_bytes("crasher", park_main, 16)
    thread_frames = r"^Thread \d+ .*?\n#0\s+(?:0x[0-9a-f]+ in )?(\w+)(.*?)(?=^Thread |\Z)"
    frames = re.findall(thread_frames, text, re.M | re.S)
    assert len(frames) == 4, text
    parked_in = set()
    for frame0, rest in frames:
        callers = re.findall(r"in (park_\w+) \(", rest)
        parked_in.add(frame0 if frame0 == "park_main" else (callers[0] if callers else frame0))
    assert parked_in == {"park_main", "park_alpha", "park_beta", "park_gamma"}, text


def test_writing_the_core_leaves_the_process_as_it_was(
    parked: Stopped, programs: Programs, tmp_path: Path
) -> None:
    target, pid = parked.target, parked.pid
    park_main = programs.symbol("crasher", "park_main")
    before = {tid: bytes(target.general_registers(tid)) for tid in target.thread_ids(pid)}
    dump(parked, tmp_path / "parked.core")
    assert {tid: bytes(target.general_registers(tid)) for tid in target.thread_ids(pid)} == before
    assert raw_byte(parked, park_main) == INT3  # still claimed: still there
    target.release_site(pid, park_main, PARK_OWNER)
    assert raw_byte(parked, park_main) == programs.code_bytes("crasher", park_main, 1)[0]
    target.resume(ResumeMode.CONTINUE, parked.tid, 0)
    target.request_interrupt()
    event = target.wait_event()
    assert event is not None and event.kind is EventKind.INTERRUPT, event
    assert sorted(target.thread_ids(pid)) == sorted(before)


@needs_gdb
def test_a_signal_stop_gives_siginfo_and_the_faulting_thread_first(faulted: Stopped, tmp_path: Path) -> None:
    core = tmp_path / "faulted.core"
    other = next(tid for tid in faulted.target.thread_ids(faulted.pid) if tid != faulted.tid)
    image = snapshot(faulted.target, faulted.pid, full=False, current_tid=other, siginfo_tid=faulted.tid)
    assert image.threads[0].tid == faulted.tid
    assert {thread.signal for thread in image.threads} == {SIGSEGV} and image.siginfo is not None
    write_core(image, str(core), memory_reader(faulted.target, faulted.pid))
    notes = note_names(core)
    assert notes[:7] == ["PRSTATUS", "PRPSINFO", "SIGINFO", "AUXV", "FILE", "FPREGSET", "X86_XSTATE"]
    assert notes[7:] == ["PRSTATUS", "FPREGSET", "X86_XSTATE"] * 3
    siginfo = ("p $_siginfo.si_signo", "p $_siginfo._sifields._sigfault.si_addr")
    text = gdb_text(faulted.executable, core, *siginfo)
    assert "Program terminated with signal SIGSEGV" in text
    assert "crash_here" in text
    assert "$1 = 11" in text and "$2 = (void *) 0x10" in text


def note_names(core: Path) -> list[str]:
    """The note types readelf lists, in order (NT_ prefix dropped)."""
    listing = subprocess.run(["readelf", "-nW", str(core)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"^\s+(?:CORE|LINUX)\s+0x[0-9a-f]+\s+NT_(\w+)", listing, re.M)


def test_lindbgs_reader_reads_back_what_was_written(faulted: Stopped, tmp_path: Path) -> None:
    target, pid = faulted.target, faulted.pid
    image = snapshot(target, pid, full=False, current_tid=faulted.tid, siginfo_tid=faulted.tid)
    core = tmp_path / "faulted.core"
    write_core(image, str(core), memory_reader(target, pid))
    with CoreFile.open(str(core)) as opened:
        assert opened.warnings == []
        assert [t.tid for t in opened.threads] == [t.tid for t in image.threads]
        for written, read in zip(image.threads, opened.threads, strict=True):
            assert read.raw_registers == written.registers == bytes(target.general_registers(read.tid))
            assert (read.signal, read.fpregs, read.xstate) == (SIGSEGV, written.fpregs, written.xstate)
        signal = opened.siginfo
        assert signal is not None and (signal.signo, signal.address) == (SIGSEGV, 0x10)
        process = opened.process
        assert process is not None
        assert (process.pid, process.ppid, process.fname) == (pid, os.getpid(), "crasher")
        assert process.psargs == image.psargs == f"{faulted.executable} 0"
        assert opened.auxv_raw == image.auxv
        files = [(m.start, m.end, m.file_offset, m.path) for m in image.mappings if m.is_file]
        assert [(m.start, m.end, m.file_offset, m.path) for m in opened.mappings] == files
        rsp = target.general_registers(faulted.tid).rsp
        assert opened.read(rsp, 256) == target.read_memory(pid, rsp, 256)


# ------------------------------------------------------------------ which memory goes in


def load_segments(core: Path) -> dict[int, tuple[int, int, int]]:
    """vaddr -> (offset, filesz, memsz) of every PT_LOAD of ``core``."""
    data = core.read_bytes()
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    (phnum,) = struct.unpack_from("<H", data, 0x38)
    segments = {}
    for index in range(phnum):
        header = struct.unpack_from("<IIQQQQQQ", data, phoff + 56 * index)
        kind, _, offset, vaddr, _, filesz, memsz, _ = header
        if kind == PT_LOAD:
            segments[vaddr] = (offset, filesz, memsz)
    return segments


def test_full_adds_code_and_never_vvar_or_vsyscall(parked: Stopped, tmp_path: Path) -> None:
    default, full = tmp_path / "default.core", tmp_path / "full.core"
    dump(parked, default)
    dump(parked, full, full=True)
    image = snapshot(parked.target, parked.pid, full=True, current_tid=parked.tid)
    libc_code = next(m for m in image.mappings if "libc.so" in m.path and m.executable)
    assert load_segments(default)[libc_code.start][1] == 0
    assert load_segments(full)[libc_code.start][1:] == (libc_code.size, libc_code.size)
    assert full.stat().st_size > default.stat().st_size
    for mapping in image.mappings:
        if mapping.path.startswith("[vvar") or mapping.path == "[vsyscall]":
            assert load_segments(full)[mapping.start][1] == 0, mapping.path
        elif mapping.path in ("[heap]", "[stack]", "[vdso]"):
            assert load_segments(default)[mapping.start][1] == mapping.size, mapping.path
        if not mapping.readable:
            assert load_segments(full)[mapping.start][1] == 0, mapping


def test_default_keeps_written_memory_and_elf_headers(parked: Stopped, programs: Programs) -> None:
    image = snapshot(parked.target, parked.pid, full=False, current_tid=parked.tid)
    by_start = {m.start: m for m in image.mappings}
    header = by_start[min(by_start)]  # the executable's first mapping: its ELF header
    assert header.path == parked.executable and header.file_size == PAGE_SIZE
    data = next(m for m in image.mappings if m.path == parked.executable and m.writable)
    assert data.file_size == data.size  # .data/.bss: written by the program
    libc_first = next(m for m in image.mappings if "libc.so" in m.path and m.file_offset == 0)
    assert libc_first.file_size == PAGE_SIZE


def test_proc_readers_take_odd_names_as_they_are(tmp_path: Path, programs: Programs) -> None:
    odd = tmp_path / "a map (x) .bin"
    odd.write_bytes(b"\0" * PAGE_SIZE)
    with open(odd, "r+b") as backing, mmap.mmap(backing.fileno(), PAGE_SIZE) as mapped:
        odd.unlink()
        start = ctypes.addressof(ctypes.c_char.from_buffer(mapped))
        found = [m for m in procfs.memory_mappings(os.getpid()) if m.start == start]
    assert [(m.path, m.perms, m.offset) for m in found] == [(f"{odd} (deleted)", "rw-s", 0)]
    program = tmp_path / "x) y (z"
    shutil.copy(programs.path("sleeper"), program)
    env = {k: v for k, v in os.environ.items() if k != "LINDBG_TEST_OUT"}
    sleeper = subprocess.Popen(
        [str(program), "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        # its "ready" line: it runs the copied program now (not the parent's exec yet)
        assert sleeper.stdout is not None and sleeper.stdout.readline().startswith("ready")
        stat = procfs.process_stat(sleeper.pid)
        assert (stat.comm, stat.ppid) == ("x) y (z", os.getpid())
        assert procfs.command_line(sleeper.pid) == [str(program), "0"]
    finally:
        sleeper.kill()
        sleeper.wait(WAIT)


# ------------------------------------------------------------------ files


def tiny_image(pages: int = 3, start: int = 0x10000000) -> ProcessImage:
    """A process with one thread and one anonymous read-write mapping of ``pages``."""
    thread = ThreadImage(tid=4242, registers=bytes(216), fpregs=bytes(512), xstate=None, signal=0)
    mapping = MappingImage(start, start + pages * PAGE_SIZE, True, True, False, False, 0, "", dump=True)
    return ProcessImage(
        pid=4242, ppid=1, pgrp=4242, sid=4242, uid=0, gid=0, state="t", fname="tiny", psargs="tiny",
        threads=[thread], siginfo=None, auxv=bytes(16), mappings=[mapping],
    )  # fmt: skip


def pattern_reader(fill: Callable[[int], int] = lambda page: 1 + page % 255) -> corewriter.ReadInto:
    """read_into giving each page the byte fill(page number)."""

    def read_into(address: int, view: memoryview) -> None:
        for page_offset in range(0, len(view), PAGE_SIZE):
            value = fill((address + page_offset) // PAGE_SIZE)
            end = min(page_offset + PAGE_SIZE, len(view))
            view[page_offset:end] = bytes([value]) * (end - page_offset)

    return read_into


def leftovers(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".partial"))


def test_an_existing_file_is_kept_unless_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "x.core"
    path.write_bytes(b"keep me")
    refused = r"^dump file '.*x\.core' exists \(use /o to overwrite\)$"
    with pytest.raises(InvalidOperationError, match=refused):
        write_core(tiny_image(), str(path), pattern_reader())
    assert path.read_bytes() == b"keep me"
    assert leftovers(tmp_path) == []
    write_core(tiny_image(), str(path), pattern_reader(), overwrite=True)
    assert path.read_bytes()[:4] == b"\x7fELF"
    assert leftovers(tmp_path) == []


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "x.core"
    calls = []

    def failing(address: int, view: memoryview) -> None:
        calls.append(address)
        raise OSError(5, "disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        write_core(tiny_image(), str(path), failing)
    assert calls and not path.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("direct", [True, False], ids=["direct-io-allowed", "page-cache-only"])
def test_unreadable_pages_are_zeros_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct: bool
) -> None:
    monkeypatch.setattr(corewriter, "USE_DIRECT_IO", direct)
    image = tiny_image(pages=5)
    start = image.mappings[0].start
    bad = range(start + PAGE_SIZE, start + 3 * PAGE_SIZE)  # pages 1 and 2
    good = pattern_reader()

    def read_into(address: int, view: memoryview) -> None:
        end = address + len(view)
        first_bad = next((a for a in range(address, end, PAGE_SIZE) if a in bad), None)
        if first_bad is None:
            good(address, view)
            return
        good(address, view[: first_bad - address])
        raise MemoryAccessError("unreadable", first_bad)

    progress: list[tuple[int, int]] = []
    path = tmp_path / "x.core"
    result = write_core(image, str(path), read_into, progress=lambda *report: progress.append(report))
    assert result.unreadable == ((start + PAGE_SIZE, start + 3 * PAGE_SIZE),)
    assert result.unreadable_pages == 2
    assert result.memory_bytes == 5 * PAGE_SIZE and progress[-1] == (5 * PAGE_SIZE, 5 * PAGE_SIZE)
    offset, filesz, _ = load_segments(path)[start]
    data = path.read_bytes()[offset : offset + filesz]
    pages = [data[i : i + PAGE_SIZE] for i in range(0, filesz, PAGE_SIZE)]
    expected = [bytes([1 + (start // PAGE_SIZE + n) % 255]) * PAGE_SIZE for n in range(5)]
    assert pages == [expected[0], bytes(PAGE_SIZE), bytes(PAGE_SIZE), expected[3], expected[4]]


@pytest.mark.parametrize("direct", [True, False], ids=["direct-io-allowed", "page-cache-only"])
def test_zero_memory_becomes_holes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct: bool) -> None:
    monkeypatch.setattr(corewriter, "USE_DIRECT_IO", direct)
    pages = (40 << 20) // PAGE_SIZE  # more than two chunks: both buffers are used
    image = tiny_image(pages=pages)
    first = image.mappings[0].start // PAGE_SIZE
    data_pages = {first + 3, first + pages - 1}
    path = tmp_path / "sparse.core"
    write_core(image, str(path), pattern_reader(lambda page: 7 if page in data_pages else 0))
    assert path.stat().st_blocks * 512 < 4 << 20  # 40 MiB of memory, two 64 KiB blocks of data
    offset, filesz, _ = load_segments(path)[image.mappings[0].start]
    with open(path, "rb") as core:
        core.seek(offset + 3 * PAGE_SIZE)
        assert core.read(PAGE_SIZE) == b"\7" * PAGE_SIZE
        core.seek(offset + filesz - PAGE_SIZE)
        assert core.read(PAGE_SIZE) == b"\7" * PAGE_SIZE
        core.seek(offset + 4 * PAGE_SIZE)
        assert core.read(PAGE_SIZE) == bytes(PAGE_SIZE)


def test_more_than_65534_mappings_use_extended_numbering(tmp_path: Path) -> None:
    image = tiny_image()
    base = 0x100000000
    image.mappings = [
        MappingImage(address, address + PAGE_SIZE, True, False, False, False, 0, "", dump=False)
        for address in range(base, base + 70000 * PAGE_SIZE, PAGE_SIZE)
    ]
    path = tmp_path / "many.core"
    write_core(image, str(path), pattern_reader())
    header = subprocess.run(["readelf", "-hW", str(path)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Number of program headers:\s+65535 \(70001\)", header), header


# ------------------------------------------------------------------ choosing how to write


def test_the_faster_write_mode_wins_and_the_other_is_tried_again() -> None:
    chooser = corewriter._ModeChooser(direct_available=True)
    chunk = 16 << 20
    record = []
    for rate_cached, rate_direct in [(3e9, 1e9)] * 12 + [(2e8, 1e9)] * 4:
        direct = chooser.pick(chunk)
        record.append("D" if direct else "C")
        chooser.learn(direct, chunk, chunk / (rate_direct if direct else rate_cached))
    # cached first, one direct probe (it loses), cached while faster, then direct as
    # soon as the page cache measures slower
    assert "".join(record) == "CD" + "C" * 10 + "CC" + "DD", record
    assert chooser.pick(1 << 20) is True  # small writes follow the choice, never probe
