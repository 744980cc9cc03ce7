"""ELF core files read by ``lindbg.targets.dump.corefile``, checked against gdb reading
the same core (as pyelftools checks itself against readelf).

Two real writers make the cores: the kernel (``crasher`` dies of SIGSEGV at 0x10 with
three threads parked) and gdb's ``gcore`` (of ``crasher 0 wait``, alive and parked).
For each, the threads, their registers, NT_SIGINFO and bytes at a global, a stack and
libc's code must be what ``gdb -batch EXE CORE`` prints. Damaged copies (truncated,
patched, rewritten notes, a fuzz loop) must open with warnings or raise
``DumpFileError``, nothing else.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Programs
from cores import MEMORY_PROBES, UNMAPPED_HIGH, Core, gdb_view, make_gcore, make_kernel_core

from lindbg.arch.x86_64 import GENERAL_REGISTERS
from lindbg.errors import DumpFileError, InvalidOperationError, MemoryAccessError
from lindbg.targets.dump.corefile import (
    NT_FILE,
    NT_PRSTATUS,
    NT_SIGINFO,
    CoreFile,
    LoadSegment,
)

AT_ENTRY = 9


@pytest.fixture(scope="module")
def kernel_core(programs: Programs, tmp_path_factory: pytest.TempPathFactory) -> Core:
    path = make_kernel_core(programs.path("crasher"), tmp_path_factory.mktemp("kernel-core"))
    if shutil.which("gdb") is None:
        pytest.skip("gdb is needed to check cores")
    return Core("kernel", path, programs.path("crasher"), gdb_view(programs.path("crasher"), path))


@pytest.fixture(scope="module")
def gdb_core(programs: Programs, tmp_path_factory: pytest.TempPathFactory) -> Core:
    path = make_gcore(programs.path("crasher"), tmp_path_factory.mktemp("gcore"))
    return Core("gcore", path, programs.path("crasher"), gdb_view(programs.path("crasher"), path))


@pytest.fixture(params=["kernel", "gcore"])
def core(request: pytest.FixtureRequest) -> Core:
    """Each real core in turn."""
    name = "kernel_core" if request.param == "kernel" else "gdb_core"
    result: Core = request.getfixturevalue(name)
    return result


@pytest.fixture
def opened(core: Core) -> Iterator[CoreFile]:
    with CoreFile.open(str(core.path)) as core_file:
        yield core_file


# ------------------------------------------------------------------ against gdb


def test_threads_are_gdbs(core: Core, opened: CoreFile) -> None:
    tids = [thread.tid for thread in opened.threads]
    assert len(tids) == 4
    assert sorted(tids) == sorted(core.gdb.threads)
    assert tids[0] == core.gdb.threads[0], "gdb's thread 1 is the first NT_PRSTATUS"
    assert opened.pid == tids[0]
    assert opened.warnings == []
    for thread in opened.threads:
        assert len(thread.raw_registers) == 216
        assert thread.fpregs is not None and len(thread.fpregs) == 512
        assert thread.xstate is not None and len(thread.xstate) >= 512
        assert list(thread.registers) == list(GENERAL_REGISTERS)


def test_kernel_core_first_thread_took_the_signal(kernel_core: Core) -> None:
    with CoreFile.open(str(kernel_core.path)) as core_file:
        first, *others = core_file.threads
        assert first.signal == 11
        assert all(isinstance(value, int) for value in first.registers.values())
        assert len(others) == 3


def test_registers_are_gdbs(core: Core, opened: CoreFile) -> None:
    assert set(core.gdb.registers) == {thread.tid for thread in opened.threads}
    for thread in opened.threads:
        expected = core.gdb.registers[thread.tid]
        assert {"rip", "rsp", "rbp", "rax", "r15", "eflags"} <= set(expected)
        shown = {name: thread.registers[name] for name in expected}
        assert shown == expected, f"thread {thread.tid}"


def test_siginfo_is_gdbs(kernel_core: Core) -> None:
    assert "si_signo = 11" in kernel_core.gdb.siginfo
    assert "si_addr = 0x10" in kernel_core.gdb.siginfo
    code = int(re.search(r"si_code = (-?\d+)", kernel_core.gdb.siginfo).group(1))  # type: ignore[union-attr]
    with CoreFile.open(str(kernel_core.path)) as core_file:
        info = core_file.siginfo
        assert info is not None
        assert (info.signo, info.code, info.errno, info.address) == (11, code, 0, 0x10)
        assert (info.sender_pid, info.sender_uid) == (0, 0)
        assert len(info.raw) == 128


def test_memory_is_gdbs(core: Core, opened: CoreFile) -> None:
    assert set(core.gdb.memory) == set(MEMORY_PROBES)
    for label, (address, expected) in core.gdb.memory.items():
        assert len(expected) == 16, label
        assert opened.read(address, 16) == expected, label
    marker = core.gdb.memory["marker"][1]
    assert marker[:8] == (0x1122334455667788).to_bytes(8, "little")
    assert core.gdb.memory["stack"][0] == opened.threads[0].registers["rsp"]


def test_libc_code_comes_from_the_mapped_file(core: Core, opened: CoreFile) -> None:
    """``read`` in libc: a kernel core leaves read-only file pages out (filesz 0), gcore
    writes no PT_LOAD for them; only the NT_FILE fallback can read them."""
    address, expected = core.gdb.memory["read"]
    covering = [s for s in opened.segments if s.vaddr <= address < s.vaddr + s.memsz]
    assert all(segment.filesz == 0 for segment in covering)
    mapping = opened.mapping_at(address)
    assert mapping is not None and os.path.basename(mapping.path).startswith("libc.so")
    with open(mapping.path, "rb") as libc:
        libc.seek(mapping.file_offset + address - mapping.start)
        assert libc.read(16) == expected == opened.read(address, 16)


def test_process_facts(core: Core, opened: CoreFile) -> None:
    process = opened.process
    assert process is not None
    assert process.fname == "crasher"
    assert process.psargs.startswith(core.executable[:79])
    assert process.pid == opened.threads[0].tid
    with open(core.executable, "rb") as executable:
        entry = struct.unpack_from("<Q", executable.read(64), 0x18)[0]
    assert opened.auxv[AT_ENTRY] == entry
    assert len(opened.auxv_raw) % 16 == 0 and len(opened.auxv_raw) >= 16 * len(opened.auxv)
    paths = {mapping.path for mapping in opened.mappings}
    assert core.executable in paths
    assert any(os.path.basename(path).startswith("libc.so") for path in paths)
    assert [m.start for m in opened.mappings] == sorted(m.start for m in opened.mappings)
    assert [s.vaddr for s in opened.segments] == sorted(s.vaddr for s in opened.segments)
    assert all(isinstance(segment, LoadSegment) for segment in opened.segments)
    executable_mappings = [m for m in opened.mappings if m.path == core.executable]
    assert executable_mappings[0].file_offset == 0
    assert any(m.file_offset > 0 and m.file_offset % 4096 == 0 for m in executable_mappings)


def test_unreadable_addresses(opened: CoreFile) -> None:
    for address in (0x10, UNMAPPED_HIGH):
        with pytest.raises(MemoryAccessError) as caught:
            opened.read(address, 8)
        assert caught.value.address == address
        assert caught.value.pid == opened.pid
        assert str(caught.value) == f"memory access error at {address:#x} (dump of process {opened.pid})"
    gap = _end_before_gap(opened)
    with pytest.raises(MemoryAccessError) as caught:
        opened.read(gap - 8, 16)
    assert caught.value.address == gap, "the first unreadable byte"
    assert len(opened.read(gap - 8, 8)) == 8
    assert opened.read(0x1234, 0) == b""


def _end_before_gap(core_file: CoreFile) -> int:
    """The end of a core-held segment followed by memory nobody holds."""
    for segment in core_file.segments:
        end = segment.vaddr + segment.memsz
        held = segment.filesz == segment.memsz and core_file.mapping_at(end) is None
        if held and not any(other.vaddr <= end < other.vaddr + other.memsz for other in core_file.segments):
            return end
    raise AssertionError("no segment is followed by a gap")


def test_read_spanning_adjacent_segments(core: Core, opened: CoreFile) -> None:
    pairs = [
        (first, second)
        for first, second in zip(opened.segments, opened.segments[1:], strict=False)
        if first.vaddr + first.memsz == second.vaddr and first.filesz and second.filesz
    ]
    assert pairs, "two adjacent segments the core holds"
    first, second = pairs[0]
    boundary = second.vaddr
    raw = core.path.read_bytes()
    expected = (
        raw[first.offset + first.filesz - 64 : first.offset + first.filesz]
        + raw[second.offset : second.offset + 64]
    )
    assert opened.read(boundary - 64, 128) == expected
    buffer = bytearray(128)
    opened.read_into(boundary - 64, memoryview(buffer))
    assert buffer == expected


def test_read_spanning_the_core_and_a_mapped_file(core: Core, opened: CoreFile) -> None:
    """0x400000 (the executable's headers) is in both cores; 0x401000 (its code) in
    neither: one read crosses from the core to the file on disk."""
    with open(core.executable, "rb") as executable:
        image = executable.read(0x2000)
    assert opened.read(0x400FF0, 0x20) == image[0xFF0:0x1010]


def test_large_read_is_a_few_slices(core: Core, opened: CoreFile) -> None:
    """An 8 MiB thread stack in one read: the bytes of the core, quickly."""
    segment = max(opened.segments, key=lambda s: s.filesz)
    assert segment.filesz >= 8 << 20
    started = time.perf_counter()
    data = opened.read(segment.vaddr, segment.filesz)
    elapsed = time.perf_counter() - started
    with open(core.path, "rb") as raw:
        raw.seek(segment.offset)
        assert data == raw.read(segment.filesz)
    assert elapsed < 2.0, f"{elapsed:.3f} s for {segment.filesz} bytes"


def test_closed_core_refuses_reads(kernel_core: Core) -> None:
    core_file = CoreFile.open(str(kernel_core.path))
    core_file.close()
    core_file.close()
    with pytest.raises(InvalidOperationError, match="closed"):
        core_file.read(0x404000, 8)


# ------------------------------------------------------------------ damaged files


def _open_fails(path: Path, pattern: str) -> str:
    with pytest.raises(DumpFileError) as caught:
        CoreFile.open(str(path))
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert re.search(pattern, message), message
    return message


@pytest.fixture(scope="module")
def kernel_bytes(kernel_core: Core) -> bytes:
    return kernel_core.path.read_bytes()


@dataclass
class Layout:
    """Where things are in a (valid) core, read the simple way."""

    phoff: int
    phnum: int
    note_index: int
    note_offset: int
    note_size: int


def layout(data: bytes) -> Layout:
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phnum = struct.unpack_from("<H", data, 0x38)[0]
    for index in range(phnum):
        kind, _, offset, _, _, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", data, phoff + index * 56)
        if kind == 4:
            return Layout(phoff, phnum, index, offset, filesz)
    raise AssertionError("no PT_NOTE")


Note = tuple[bytes, int, bytes]


def parse_notes(data: bytes) -> list[Note]:
    where = layout(data)
    notes: list[Note] = []
    position, end = where.note_offset, where.note_offset + where.note_size
    while position < end:
        namesz, descsz, kind = struct.unpack_from("<III", data, position)
        name_start = position + 12
        desc_start = name_start + (namesz + 3) // 4 * 4
        notes.append((data[name_start : name_start + namesz], kind, data[desc_start : desc_start + descsz]))
        position = desc_start + (descsz + 3) // 4 * 4
    return notes


def rewrite_notes(data: bytes, edit: Callable[[list[Note]], list[Note]]) -> bytes:
    """The core with its note segment replaced by ``edit``'s notes, placed at the end."""
    blob = bytearray()
    for name, kind, desc in edit(parse_notes(data)):
        blob += struct.pack("<III", len(name), len(desc), kind)
        blob += name + b"\0" * (-len(name) % 4) + desc + b"\0" * (-len(desc) % 4)
    where = layout(data)
    out = bytearray(data)
    header = where.phoff + where.note_index * 56
    struct.pack_into("<Q", out, header + 8, len(data))
    struct.pack_into("<Q", out, header + 32, len(blob))
    return bytes(out + blob)


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def test_not_a_file_at_all(tmp_path: Path) -> None:
    _open_fails(tmp_path / "missing", r"^cannot open core '.*/missing': No such file or directory$")
    _open_fails(tmp_path, r"^cannot open core '.*': Is a directory$")
    _open_fails(_write(tmp_path, "empty", b""), r"is empty")
    _open_fails(_write(tmp_path, "text", b"hello\nworld\n" * 20), r"is not an ELF file$")
    _open_fails(_write(tmp_path, "tiny", b"\x7fEL"), r"is not an ELF file$")


def test_other_elf_files(programs: Programs, kernel_bytes: bytes, tmp_path: Path) -> None:
    _open_fails(Path(programs.path("crasher")), r"is not a core file \(ELF type EXEC\)$")
    patched = bytearray(kernel_bytes[:4096])
    struct.pack_into("<H", patched, 18, 183)
    _open_fails(
        _write(tmp_path, "arm", patched),
        r"another architecture \(machine 183, aarch64\); lindbg reads x86-64",
    )
    patched = bytearray(kernel_bytes[:4096])
    patched[4] = 1
    _open_fails(_write(tmp_path, "i386", patched), r"another architecture \(32-bit, machine 62")
    patched = bytearray(kernel_bytes[:4096])
    patched[5] = 2
    _open_fails(_write(tmp_path, "big", patched), r"big-endian")
    patched = bytearray(kernel_bytes[:4096])
    struct.pack_into("<H", patched, 16, 2)
    _open_fails(_write(tmp_path, "exec", patched), r"is not a core file \(ELF type EXEC\)$")


def test_truncated_headers(kernel_bytes: bytes, tmp_path: Path) -> None:
    where = layout(kernel_bytes)
    _open_fails(
        _write(tmp_path, "ehdr", kernel_bytes[:40]), r"is truncated: 40 bytes, less than an ELF header$"
    )
    _open_fails(
        _write(tmp_path, "phdrs", kernel_bytes[: where.phoff + 3 * 56 + 10]), r"is truncated: its \d+ program"
    )
    _open_fails(_write(tmp_path, "no-notes", kernel_bytes[: where.note_offset + 8]), r"has no threads")


def test_truncated_inside_the_notes(kernel_bytes: bytes, tmp_path: Path) -> None:
    where = layout(kernel_bytes)
    cut = where.note_offset + where.note_size // 2
    with CoreFile.open(str(_write(tmp_path, "notes", kernel_bytes[:cut]))) as core_file:
        assert 1 <= len(core_file.threads) < 4
        assert core_file.threads[0].signal == 11
        assert any(w.startswith("core is truncated: note segment at file offset") for w in core_file.warnings)
        assert any(w.startswith("core is truncated: memory of ") for w in core_file.warnings)
        with pytest.raises(MemoryAccessError):
            core_file.read(core_file.threads[0].registers["rsp"], 8)


def test_truncated_inside_memory(kernel_core: Core, kernel_bytes: bytes, tmp_path: Path) -> None:
    """Bytes cut off are unreadable, even where a mapped file covers them: the core's
    copy (written data) is not the file's."""
    marker = kernel_core.gdb.memory["marker"][0]
    with CoreFile.open(str(kernel_core.path)) as whole:
        segment = next(s for s in whole.segments if s.vaddr <= marker < s.vaddr + s.filesz)
        later = sum(1 for s in whole.segments if s.filesz and s.offset + s.filesz > segment.offset + 0x800)
        code, code_bytes = kernel_core.gdb.memory["read"]
    cut = segment.offset + 0x800
    with CoreFile.open(str(_write(tmp_path, "memory", kernel_bytes[:cut]))) as core_file:
        assert core_file.warnings == [
            f"core is truncated: memory of {later} segments is cut off at file offset {cut:#x}"
        ]
        assert core_file.read(marker, 8) == (0x1122334455667788).to_bytes(8, "little")
        assert core_file.mapping_at(segment.vaddr + 0x800) is not None
        with pytest.raises(MemoryAccessError) as caught:
            core_file.read(segment.vaddr + 0x700, 0x200)
        assert caught.value.address == segment.vaddr + 0x800
        assert core_file.read(code, 16) == code_bytes
        assert len(core_file.threads) == 4


def test_corrupt_note_sizes(kernel_core: Core, kernel_bytes: bytes, tmp_path: Path) -> None:
    where = layout(kernel_bytes)
    first = where.note_offset
    second = first + 12 + 8 + 336  # "CORE\0" padded to 8, then the first PRSTATUS
    patched = bytearray(kernel_bytes)
    struct.pack_into("<I", patched, second, 0xFFFFFFFF)  # namesz
    with CoreFile.open(str(_write(tmp_path, "namesz", patched))) as core_file:
        assert core_file.warnings[0] == f"note segment corrupt at file offset {second:#x}: 1 notes read"
        assert [t.signal for t in core_file.threads] == [11]
        assert core_file.process is None and core_file.mappings == []
    patched = bytearray(kernel_bytes)
    struct.pack_into("<I", patched, first + 4, 0xFFFFFFFF)  # descsz of the first note
    _open_fails(_write(tmp_path, "descsz", patched), r"has no threads \(no NT_PRSTATUS note\)$")
    patched = bytearray(kernel_bytes)
    struct.pack_into("<I", patched, first + 8, 0x99)  # the first PRSTATUS becomes unknown
    with CoreFile.open(str(kernel_core.path)) as whole:
        others = [thread.tid for thread in whole.threads[1:]]
    with CoreFile.open(str(_write(tmp_path, "type", patched))) as core_file:
        assert [thread.tid for thread in core_file.threads] == others
        assert core_file.warnings == []


def test_notes_of_the_wrong_size(kernel_core: Core, kernel_bytes: bytes, tmp_path: Path) -> None:
    def shrink(notes: list[Note]) -> list[Note]:
        seen_prstatus = 0
        result = []
        for name, kind, desc in notes:
            if kind == NT_PRSTATUS:
                seen_prstatus += 1
                if seen_prstatus == 2:
                    desc = desc[:300]
            if kind in (NT_SIGINFO,):
                desc = desc[:100]
            if kind == NT_FILE:
                desc = struct.pack("<Q", 1 << 60) + desc[8:]
            result.append((name, kind, desc))
        return result

    with CoreFile.open(str(_write(tmp_path, "sizes", rewrite_notes(kernel_bytes, shrink)))) as core_file:
        assert len(core_file.threads) == 3
        assert core_file.siginfo is None and core_file.mappings == []
        messages = "\n".join(core_file.warnings)
        assert "NT_PRSTATUS note at file offset" in messages and "that thread is left out" in messages
        assert "NT_SIGINFO note at file offset" in messages
        assert "NT_FILE note at file offset" in messages
        assert all(thread.fpregs is not None for thread in core_file.threads)
        with pytest.raises(MemoryAccessError):
            core_file.read(kernel_core.gdb.memory["read"][0], 16)


def test_fuzzed_headers_and_notes(kernel_core: Core, kernel_bytes: bytes, tmp_path: Path) -> None:
    """Any damage to headers and notes opens (and reads) or raises DumpFileError, fast."""
    where = layout(kernel_bytes)
    end = where.note_offset + where.note_size
    path = _write(tmp_path, "fuzz", kernel_bytes)
    addresses = [address for address, _ in kernel_core.gdb.memory.values()]
    generator = random.Random(1234)
    opened = 0
    started = time.perf_counter()
    with open(path, "r+b") as target:
        for _ in range(300):
            offsets = [generator.randrange(end) for _ in range(generator.randint(1, 8))]
            for offset in offsets:
                target.seek(offset)
                target.write(bytes([generator.randrange(256)]))
            target.flush()
            opened += _open_and_read(path, addresses)
            for offset in offsets:
                target.seek(offset)
                target.write(kernel_bytes[offset : offset + 1])
    elapsed = time.perf_counter() - started
    assert opened > 30, "most damage still opens"
    assert elapsed < 10, f"300 opens took {elapsed:.1f} s"


def _open_and_read(path: Path, addresses: list[int]) -> int:
    try:
        core_file = CoreFile.open(str(path))
    except DumpFileError as error:
        assert "\n" not in str(error)
        return 0
    with core_file:
        assert core_file.threads
        assert all("\n" not in warning for warning in core_file.warnings)
        for address in [*addresses, core_file.threads[0].registers["rsp"]]:
            try:
                core_file.read(address, 64)
            except MemoryAccessError as error:
                assert address <= error.address < address + 64
    return 1


# ------------------------------------------------------------------ missing mapped files


def test_missing_executable(programs: Programs, tmp_path: Path) -> None:
    lost = tmp_path / "lost"
    lost.mkdir()
    copy = lost / "crasher"
    shutil.copy2(programs.path("crasher"), copy)
    core_path = make_kernel_core(str(copy), tmp_path)
    copy.unlink()
    code = programs.symbol("crasher", "crash_here")
    expected = programs.code_bytes("crasher", code, 32)
    with CoreFile.open(str(core_path)) as core_file:
        assert core_file.warnings == [
            f"mapped file {copy} not found: its read-only pages are not in the core"
        ]
        with pytest.raises(MemoryAccessError) as caught:
            core_file.read(code, 32)
        assert caught.value.address == code
        assert core_file.read(programs.symbol("crasher", "marker_value"), 8) == (0x1122334455667788).to_bytes(
            8, "little"
        )
    found = tmp_path / "found"
    found.mkdir()
    shutil.copy2(programs.path("crasher"), found / "crasher")
    with CoreFile.open(str(core_path), image_dirs=[str(tmp_path / "nowhere"), str(found)]) as core_file:
        assert core_file.warnings == []
        assert core_file.read(code, 32) == expected
        assert core_file.locate_file(str(copy)) == str(found / "crasher")
