"""Write an ELF core file that gdb reads, from a description of a stopped process.

Pure: this module knows no ptrace. ``targets/live/snapshot.py`` describes a live
process as a ``ProcessImage``; ``write_core`` lays it out as the kernel does
(fs/binfmt_elf.c; gdb's gcore is the other reference) and copies its memory through
a ``read_into(address, view)`` callback.

Layout. The ELF header, one PT_NOTE, one PT_LOAD per mapping (``p_filesz`` 0 for a
mapping whose contents are left out), the notes in the kernel's order, then memory
from the first page boundary on, each dumped mapping right after the previous one. So
every mapping's data starts on a page boundary in the file, and the file can be
written (and mapped) in large aligned pieces.

Memory: the expensive part, made of large copies and nothing per page. The file is
sized first (sparse); then the calling thread reads each chunk (8 MiB) of a mapping
with ``read_into`` into one of two page-aligned buffers while a worker thread writes
the other, through the page cache or with direct I/O, whichever measures faster
(``_Output`` says why). All-zero 64 KiB blocks are not
written: they stay holes, as in the kernel's cores and gdb 13's (thread stacks are
mostly untouched).

A page ``read_into`` cannot read stays zero in the core; the write goes on and the
range is listed in ``CoreWriteResult.unreadable``.

The file appears under its name only when complete: it is written to a temporary
file in the same directory (``NAME.XXXXXXXX.partial``, mode 0600 as the kernel's
cores: they hold the program's secrets) and renamed at the end; any error removes it.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from lindbg.errors import InvalidOperationError, MemoryAccessError
from lindbg.formats.elfdefs import (
    EHDR,
    ELF64_LSB_IDENT,
    EM_X86_64,
    ET_CORE,
    EV_CURRENT,
    FILE_ENTRY,
    FILE_NOTE_HEADER,
    NHDR,
    NT_AUXV,
    NT_FILE,
    NT_PRFPREG,
    NT_PRPSINFO,
    NT_PRSTATUS,
    NT_SIGINFO,
    NT_X86_XSTATE,
    PF_R,
    PF_W,
    PF_X,
    PHDR,
    PN_XNUM,
    PRPSINFO,
    PRSTATUS,
    PT_LOAD,
    PT_NOTE,
    SHDR,
    SIGINFO_SIZE,
)

PAGE_SIZE = mmap.PAGESIZE

#: The kernel's pr_state numbering is the index of the state letter in this string.
_STATE_LETTERS = "RSDTZW"

#: Memory is copied in chunks of this size, through this many buffers (one being
#: filled while the other is written).
CHUNK_SIZE = 8 << 20
_BUFFERS = 2
#: Try direct I/O (O_DIRECT) where the file system allows it (see ``_Output``).
USE_DIRECT_IO = True
#: Writes smaller than this do not count as a measure of a write mode's rate.
_RATE_SAMPLE = 4 << 20
#: Writes before the slower mode is tried again (doubling while it keeps losing).
_PROBE_INTERVAL = 8
#: All-zero blocks of this size are left as holes.
_ZERO_BLOCK = 64 << 10
#: progress() is called each time this much more memory has been written.
_PROGRESS_STEP = 64 << 20
_ZEROS = bytearray(_ZERO_BLOCK)

ReadInto = Callable[[int, memoryview], None]


# ------------------------------------------------------------------ the description


@dataclass(slots=True)
class ThreadImage:
    """One thread: what its NT_PRSTATUS, NT_FPREGSET and NT_X86_XSTATE notes hold."""

    tid: int
    #: 216 bytes: struct user_regs_struct (``lindbg.arch.x86_64.UserRegs``).
    registers: bytes
    #: 512 bytes: the FXSAVE area (struct user_fpregs_struct).
    fpregs: bytes
    #: NT_X86_XSTATE as PTRACE_GETREGSET returned it; None: no such note.
    xstate: bytes | None
    #: pr_cursig (0 if none).
    signal: int


@dataclass(frozen=True, slots=True)
class MappingImage:
    """One line of /proc/PID/maps and whether (how much of) its contents go into the core."""

    start: int
    end: int
    readable: bool
    writable: bool
    executable: bool
    shared: bool
    file_offset: int
    #: '' for anonymous memory; '[heap]', '[stack]', '[vdso]' ... as in maps.
    path: str
    #: Whether its contents go into the core.
    dump: bool
    #: With ``dump``: only this many bytes from the start (the kernel's "ELF headers"
    #: rule writes the first page of a mapped ELF file); None: the whole mapping.
    dump_size: int | None = None

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def file_size(self) -> int:
        """The mapping's p_filesz: the bytes of it the core holds."""
        if not self.dump:
            return 0
        return self.size if self.dump_size is None else min(self.dump_size, self.size)

    @property
    def is_file(self) -> bool:
        """Mapped from a file (NT_FILE lists it): maps shows a path, not '[name]'."""
        return bool(self.path) and not self.path.startswith("[")


@dataclass(slots=True)
class ProcessImage:
    """A stopped process as a core file records it."""

    pid: int
    ppid: int
    pgrp: int
    sid: int
    uid: int
    gid: int
    #: One letter as in /proc/PID/stat ('t': stopped by a tracer).
    state: str
    #: comm, at most 15 characters.
    fname: str
    #: The command line, arguments joined by spaces, at most 79 characters.
    psargs: str
    #: The thread that took the signal (or the current thread) first.
    threads: list[ThreadImage]
    #: The 128-byte siginfo_t of the first thread, if it is stopped on a signal.
    siginfo: bytes | None
    #: /proc/PID/auxv as is.
    auxv: bytes
    mappings: list[MappingImage]
    #: pr_nice and pr_flag of NT_PRPSINFO (stat fields 19 and 9).
    nice: int = 0
    flags: int = 0


@dataclass(frozen=True, slots=True)
class CoreWriteResult:
    """What ``write_core`` wrote."""

    #: Bytes of memory contents in the core (the sum of the PT_LOADs' p_filesz).
    memory_bytes: int
    #: The core's size (holes included).
    file_size: int
    #: [start, end) ranges that could not be read: zeros in the core. A caller should
    #: warn about them; the rest of the core is good.
    unreadable: tuple[tuple[int, int], ...] = field(default=())

    @property
    def unreadable_pages(self) -> int:
        return sum(end - start for start, end in self.unreadable) // PAGE_SIZE


# ------------------------------------------------------------------ entry point


def write_core(
    image: ProcessImage,
    path: str,
    read_into: ReadInto,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> CoreWriteResult:
    """Write ``image`` as an ELF core file at ``path``.

    Args:
        read_into: ``read_into(address, view)`` fills ``view`` with the memory at
            ``address``, or raises ``MemoryAccessError`` whose ``address`` is the first
            byte it could not read (bytes before it may have been filled).
        overwrite: replace an existing file; without it an existing ``path`` is an error.
        progress: ``progress(done_bytes, total_bytes)`` of memory, called after each
            further 64 MiB and once at the end.

    Returns:
        How much memory went in, and which ranges could not be read (zeros instead).

    Raises:
        InvalidOperationError: ``path`` exists and ``overwrite`` is False (nothing written).
        OSError: the file could not be written (disk full ...); nothing is left behind.
        Anything ``read_into`` raises other than MemoryAccessError, the same way.
    """
    if not overwrite and os.path.lexists(path):
        raise _exists_error(path)
    headers, offsets, file_size = layout(image)
    copier = _MemoryCopier(read_into, image.mappings, progress)
    directory, name = os.path.split(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=f"{name}.", suffix=".partial", dir=directory)
    try:
        try:
            _fill_file(fd, temporary, headers, file_size, copier, offsets)
        finally:
            os.close(fd)
        _publish(temporary, path, overwrite)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return CoreWriteResult(copier.total, file_size, tuple(copier.unreadable))


def _fill_file(
    fd: int, path: str, headers: bytes, file_size: int, copier: _MemoryCopier, offsets: list[int]
) -> None:
    """Size the (sparse) file, write the headers, then the memory."""
    os.ftruncate(fd, file_size)
    output = _Output(path, fd)
    try:
        output.write_cached(headers, 0)
        copier.copy_all(output, offsets)
    finally:
        output.close()


def _exists_error(path: str) -> InvalidOperationError:
    """The refusal to replace ``path``, caused by a FileExistsError (as open(O_EXCL) says)."""
    error = InvalidOperationError(f"dump file '{path}' exists (use /o to overwrite)")
    error.__cause__ = FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
    return error


def _publish(temporary: str, path: str, overwrite: bool) -> None:
    """Give the finished core its name; without ``overwrite`` never replace a file
    that appeared meanwhile (a hard link fails if the name exists)."""
    if overwrite:
        os.replace(temporary, path)
        return
    try:
        os.link(temporary, path)
    except FileExistsError as error:
        raise _exists_error(path) from error
    except OSError:  # no hard links on this file system: check, then rename
        if os.path.lexists(path):
            raise _exists_error(path)  # noqa: B904 - its cause is the FileExistsError
        os.rename(temporary, path)
        return
    os.unlink(temporary)


# ------------------------------------------------------------------ headers and notes


def layout(image: ProcessImage) -> tuple[bytes, list[int], int]:
    """(ELF header + program headers + notes, each mapping's file offset, file size).

    The memory of the first mapping starts at the first page boundary after the notes.
    """
    notes = build_notes(image)
    count = 1 + len(image.mappings)
    extended = count >= PN_XNUM
    phoff = EHDR.size + (SHDR.size if extended else 0)
    notes_offset = phoff + count * PHDR.size
    offset = _page_up(notes_offset + len(notes))
    offsets = []
    program_headers = [PHDR.pack(PT_NOTE, 0, notes_offset, 0, 0, len(notes), 0, 4)]
    for mapping in image.mappings:
        offsets.append(offset)
        flags = (PF_R if mapping.readable else 0) | (PF_W if mapping.writable else 0)
        flags |= PF_X if mapping.executable else 0
        program_headers.append(
            PHDR.pack(PT_LOAD, flags, offset, mapping.start, 0, mapping.file_size, mapping.size, PAGE_SIZE)
        )
        offset += mapping.file_size
    header = _elf_header(count, phoff, extended)
    return b"".join([header, *program_headers, notes]), offsets, offset


def _elf_header(count: int, phoff: int, extended: bool) -> bytes:
    """The ELF header; with 65535 segments or more, followed by the section header that
    holds the real count (the kernel's extended numbering)."""
    phnum, shoff, shentsize, shnum = count, 0, 0, 0
    if extended:
        phnum, shoff, shentsize, shnum = PN_XNUM, EHDR.size, SHDR.size, 1
    header = EHDR.pack(
        ELF64_LSB_IDENT, ET_CORE, EM_X86_64, EV_CURRENT, 0, phoff, shoff, 0, EHDR.size, PHDR.size, phnum,
        shentsize, shnum, 0,
    )  # fmt: skip
    if extended:
        header += SHDR.pack(0, 0, 0, 0, 0, 1, 0, count, 0, 0)  # sh_size: 1 section, sh_info: count
    return header


def build_notes(image: ProcessImage) -> bytes:
    """The PT_NOTE contents in the kernel's order: the first thread's NT_PRSTATUS, the
    process notes, the first thread's other registers, then each other thread."""
    if not image.threads:
        raise InvalidOperationError(f"process {image.pid} has no thread to write")
    first, *others = image.threads
    parts = [_note("CORE", NT_PRSTATUS, _prstatus(image, first))]
    parts.append(_note("CORE", NT_PRPSINFO, _prpsinfo(image)))
    if image.siginfo is not None:
        parts.append(_note("CORE", NT_SIGINFO, image.siginfo[:SIGINFO_SIZE].ljust(SIGINFO_SIZE, b"\0")))
    parts.append(_note("CORE", NT_AUXV, image.auxv))
    parts.append(_note("CORE", NT_FILE, _file_note(image.mappings)))
    parts.extend(_register_notes(first))
    for thread in others:
        parts.append(_note("CORE", NT_PRSTATUS, _prstatus(image, thread)))
        parts.extend(_register_notes(thread))
    return b"".join(parts)


def _note(name: str, kind: int, desc: bytes) -> bytes:
    """One note record: header, NUL-terminated name and desc, each padded to 4 bytes."""
    encoded = name.encode() + b"\0"
    header = NHDR.pack(len(encoded), len(desc), kind)
    return b"".join([header, encoded, _padding(len(encoded)), desc, _padding(len(desc))])


def _padding(size: int) -> bytes:
    return bytes(-size % 4)


def _register_notes(thread: ThreadImage) -> list[bytes]:
    notes = [_note("CORE", NT_PRFPREG, thread.fpregs)]
    if thread.xstate is not None:
        notes.append(_note("LINUX", NT_X86_XSTATE, thread.xstate))
    return notes


def _prstatus(image: ProcessImage, thread: ThreadImage) -> bytes:
    """elf_prstatus as fill_prstatus() leaves it: si_signo = pr_cursig = the signal,
    signal masks and times 0 (as gcore writes them), the registers, FP state valid."""
    signal = thread.signal
    times = bytes(64)  # pr_utime, pr_stime, pr_cutime, pr_cstime: four timevals
    return PRSTATUS.pack(
        signal, 0, 0, signal, 0, 0, thread.tid, image.ppid, image.pgrp, image.sid, times, thread.registers, 1
    )


def _prpsinfo(image: ProcessImage) -> bytes:
    """elf_prpsinfo as fill_psinfo() fills it (pr_state numbered by "RSDTZW")."""
    letter = image.state[:1] or "R"
    state = _STATE_LETTERS.find(letter.upper())
    return PRPSINFO.pack(
        max(state, 0), letter.encode(), letter == "Z", image.nice, image.flags, image.uid, image.gid,
        image.pid, image.ppid, image.pgrp, image.sid,
        _c_string(image.fname, 16), _c_string(image.psargs, 80),
    )  # fmt: skip


def _c_string(text: str, size: int) -> bytes:
    """``text`` as a NUL-terminated char[size] (cut to size - 1 bytes)."""
    return text.encode(errors="surrogateescape")[: size - 1]


def _file_note(mappings: list[MappingImage]) -> bytes:
    """NT_FILE: count, page size, (start, end, file offset in pages) of every mapping
    of a file, then their NUL-terminated paths."""
    files = [m for m in mappings if m.is_file]
    entries = b"".join(FILE_ENTRY.pack(m.start, m.end, m.file_offset // PAGE_SIZE) for m in files)
    names = b"".join(m.path.encode(errors="surrogateescape") + b"\0" for m in files)
    return FILE_NOTE_HEADER.pack(len(files), PAGE_SIZE) + entries + names


def _page_up(offset: int) -> int:
    return -(-offset // PAGE_SIZE) * PAGE_SIZE


# ------------------------------------------------------------------ memory


class _Output:
    """The core file, written through the page cache or directly (O_DIRECT), whichever
    is faster here and now (``_ModeChooser`` decides, from the rates it measures).

    Neither wins everywhere, measured on the VMs this project runs on: a write through
    the page cache costs the first touch of each new cache page, which the host may
    have to supply (then 3-5x slower than the disk), or not (then 2x faster than it);
    a direct write goes from a warm buffer to the disk at its speed. Direct I/O needs
    aligned buffers, offsets and sizes: every write here is a multiple of the page
    size, from a page-aligned buffer, at a page-aligned offset. A file system without
    direct I/O (or refusing one write with EINVAL) gets the page cache only.
    """

    def __init__(self, path: str, fd: int) -> None:
        self.fd = fd
        self.direct_fd: int | None = None
        if USE_DIRECT_IO:
            with contextlib.suppress(OSError):  # tmpfs before Linux 6.6, FUSE ...
                self.direct_fd = os.open(path, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)
        self.chooser = _ModeChooser(direct_available=self.direct_fd is not None)

    def close(self) -> None:
        if self.direct_fd is not None:
            os.close(self.direct_fd)
            self.direct_fd = None

    def write_runs(self, view: memoryview, runs: list[tuple[int, int]], offset: int) -> None:
        """Write the ``runs`` of ``view`` (at ``offset`` in the file); the gaps stay
        holes of the sparse file."""
        size = sum(end - start for start, end in runs)
        direct = self.chooser.pick(size)
        started = time.perf_counter()
        for start, end in runs:
            self._write(direct, view[start:end], offset + start)
        self.chooser.learn(direct, size, time.perf_counter() - started)

    def write_cached(self, data: bytes, offset: int) -> None:
        """Write through the page cache (the headers: small, and no measure)."""
        _write_all(self.fd, data, offset)

    def _write(self, direct: bool, data: memoryview, offset: int) -> None:
        if not direct or self.direct_fd is None:
            _write_all(self.fd, data, offset)
            return
        try:
            _write_all(self.direct_fd, data, offset)
        except OSError as error:
            if error.errno != errno.EINVAL:
                raise
            self.close()
            self.chooser.direct_available = False
            _write_all(self.fd, data, offset)


class _ModeChooser:
    """Picks page-cache or direct writes by their measured rates: the first write
    goes through the page cache, the second direct, then the faster one; the slower
    one is tried again now and then (after 8 writes, then 16, 32 ... while it keeps
    losing), and the current one is left as soon as it measures slower than the
    other did."""

    def __init__(self, *, direct_available: bool) -> None:
        self.direct_available = direct_available
        #: Bytes per second of each mode (True: direct), smoothed.
        self.rates: dict[bool, float] = {}
        self.best = False
        self._countdown = 1
        self._interval = _PROBE_INTERVAL

    def pick(self, size: int) -> bool:
        """True: write the next ``size`` bytes directly (small writes take the
        current choice and count for nothing)."""
        if not self.direct_available:
            return False
        if size < _RATE_SAMPLE:
            return self.best
        if self._countdown <= 0:
            return not self.best
        self._countdown -= 1
        return self.best

    def learn(self, direct: bool, size: int, seconds: float) -> None:
        """One write of ``size`` bytes in ``direct`` mode took ``seconds``."""
        if size < _RATE_SAMPLE or not self.direct_available:
            return
        rate = size / max(seconds, 1e-9)
        known = self.rates.get(direct)
        self.rates[direct] = rate if known is None else (known + rate) / 2
        other = self.rates.get(not direct)
        if direct != self.best:  # a probe of the other mode
            self._interval = _PROBE_INTERVAL if other is None or rate > other else self._interval * 2
            self._countdown = self._interval
        if other is not None and self.rates[direct] < other:
            self.best = not direct
        elif direct != self.best:
            self.best = direct


def _write_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """pwrite all of ``data`` (a regular file may take less than asked)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]
        offset += written


def _aligned_buffer(size: int) -> mmap.mmap:
    """``size`` bytes of page-aligned anonymous memory (what direct I/O needs)."""
    return mmap.mmap(-1, max(_page_up(size), PAGE_SIZE))


class _Slot:
    """One copy buffer and the write in flight from it."""

    def __init__(self, size: int) -> None:
        self.buffer = _aligned_buffer(size)
        self.view = memoryview(self.buffer)
        self.pending: Future[None] | None = None
        self.size = 0

    def close(self) -> None:
        """Unmap the buffer; if an exception's traceback still holds a slice of it,
        the garbage collector unmaps it later instead."""
        with contextlib.suppress(BufferError):
            self.view.release()
            self.buffer.close()


class _MemoryCopier:
    """Copies the dumped mappings into the core: the calling thread reads a chunk
    (``read_into`` must run on the engine thread) while one worker thread writes the
    previous one, so reading and writing overlap."""

    def __init__(
        self, read_into: ReadInto, mappings: list[MappingImage], progress: Callable[[int, int], None] | None
    ) -> None:
        self.read_into = read_into
        self.mappings = mappings
        self.progress = progress
        self.total = sum(m.file_size for m in mappings)
        self.done = 0
        self._next_report = _PROGRESS_STEP
        self.unreadable: list[tuple[int, int]] = []

    def copy_all(self, output: _Output, offsets: list[int]) -> None:
        slots = [_Slot(min(CHUNK_SIZE, self.total)) for _ in range(_BUFFERS)]
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lindbg-core-writer") as writer:
                chunks = self._chunks(offsets)
                for index, (address, offset, size) in enumerate(chunks):
                    slot = slots[index % _BUFFERS]
                    self._finish(slot)
                    view = slot.view[:size]
                    self._fill(address, view)
                    slot.pending = writer.submit(output.write_runs, view, _nonzero_runs(view), offset)
                    slot.size = size
                for slot in slots:
                    self._finish(slot)
        finally:
            for slot in slots:
                slot.close()
        if self.progress is not None:
            self.progress(self.done, self.total)

    def _chunks(self, offsets: list[int]) -> Iterator[tuple[int, int, int]]:
        """(address, file offset, size) of each chunk to copy, in file order."""
        for mapping, offset in zip(self.mappings, offsets, strict=True):
            size = mapping.file_size
            for start in range(0, size, CHUNK_SIZE):
                yield mapping.start + start, offset + start, min(CHUNK_SIZE, size - start)

    def _finish(self, slot: _Slot) -> None:
        """Wait for the write from ``slot`` (raising its error) and count it."""
        if slot.pending is None:
            return
        slot.pending.result()
        slot.pending = None
        self.done += slot.size
        if self.progress is not None and self.done >= self._next_report:
            self._next_report = self.done + _PROGRESS_STEP
            self.progress(self.done, self.total)

    def _fill(self, address: int, view: memoryview) -> None:
        """Fill ``view`` from ``address``; zero each page that cannot be read, record
        it, and go on after it."""
        done = 0
        size = len(view)
        while done < size:
            try:
                self.read_into(address + done, view[done:])
                return
            except MemoryAccessError as error:
                bad = min(max(error.address, address + done), address + size - 1)
            page = (bad - address) & ~(PAGE_SIZE - 1)
            end = min(page + PAGE_SIZE, size)
            view[page:end] = _ZEROS[: end - page]
            self._record_unreadable(address + page, address + end)
            done = end

    def _record_unreadable(self, start: int, end: int) -> None:
        if self.unreadable and self.unreadable[-1][1] == start:
            start = self.unreadable.pop()[0]
        self.unreadable.append((start, end))


def _nonzero_runs(view: memoryview) -> list[tuple[int, int]]:
    """[start, end) runs of ``view`` not made of whole all-zero blocks.

    One memcmp per 64 KiB block (bytearray == memoryview compares with memcmp): a
    few milliseconds per GiB, and a nonzero block usually stops at its first bytes.
    """
    runs: list[tuple[int, int]] = []
    size = len(view)
    run_start = -1
    for start in range(0, size, _ZERO_BLOCK):
        end = min(start + _ZERO_BLOCK, size)
        zeros = _ZEROS if end - start == _ZERO_BLOCK else _ZEROS[: end - start]
        zero = zeros == view[start:end]
        if zero and run_start >= 0:
            runs.append((run_start, start))
            run_start = -1
        elif not zero and run_start < 0:
            run_start = start
    if run_start >= 0:
        runs.append((run_start, size))
    return runs
