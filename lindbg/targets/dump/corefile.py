"""ELF core files of x86-64 Linux processes, read in layers as pyelftools reads ELF.

The layers, each a function of the one before and each in its own module: the file, its
ELF header, program headers and note records (``elfcore``: ``read_elf_header``,
``read_program_headers``, ``read_notes``), the decoded notes (``notes``: threads,
process, signal, auxv, mapped files), and memory (``memory``: ``LoadIndex`` over the
PT_LOAD segments, ``MappedFiles`` for what the core left out). The record layouts and
constants are ``lindbg.formats.elfdefs``'s. ``CoreFile.open`` runs the layers once;
only memory reads happen later.

The core is ``mmap``-ed read-only, so opening a core of many GiB touches only its
headers and notes, and a read is a slice. Memory is found the way gdb finds it: a byte
inside a PT_LOAD's file part comes from the core; a byte the core left out (the kernel
writes ``filesz = 0`` for read-only file mappings such as code, gdb's gcore writes no
PT_LOAD for them at all) comes from the file on disk that NT_FILE says was mapped there.
Those files are opened on first use and read with ``pread`` (never mapped: a file
replaced on disk then gives a read error instead of SIGBUS).

Errors: a file that cannot be shown at all (missing, not ELF, not an x86-64 core, cut
before its program headers, no thread) raises ``DumpFileError`` from ``open`` and nothing
else does. Damage that leaves something to show (a corrupt note, a core cut inside its
memory, a mapped file missing) becomes one line in ``CoreFile.warnings`` saying what is
lost. A byte nobody holds raises ``MemoryAccessError`` naming the first such address.

The names other modules import from here (``CoreThread``, ``LoadSegment``,
``NT_PRSTATUS`` ...) are re-exported from the layers and ``lindbg.formats.elfdefs``,
where they are defined.
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence
from types import TracebackType

from lindbg.errors import DumpFileError, InvalidOperationError, MemoryAccessError
from lindbg.formats.elfdefs import NT_FILE, NT_PRSTATUS, NT_SIGINFO, PT_NOTE
from lindbg.targets.dump.elfcore import (
    ProgramHeader,
    open_core,
    quote,
    read_elf_header,
    read_notes,
    read_program_headers,
)
from lindbg.targets.dump.memory import LoadIndex, LoadSegment, MappedFiles, load_segments, truncation_warning
from lindbg.targets.dump.notes import (
    CoreThread,
    FileMapping,
    NoteContents,
    NoteDecoder,
    ProcessInfo,
    SignalInfo,
)

__all__ = [
    "NT_FILE",
    "NT_PRSTATUS",
    "NT_SIGINFO",
    "CoreFile",
    "CoreThread",
    "FileMapping",
    "LoadSegment",
    "ProcessInfo",
    "SignalInfo",
]


class CoreFile:
    """An opened ELF core: its threads, process facts, mapped files and memory.

    Open with ``CoreFile.open(path)``; close (or use as a context manager) to unmap it.
    Everything but memory is decoded at open; memory is read on demand.
    """

    path: str
    threads: list[CoreThread]
    process: ProcessInfo | None
    siginfo: SignalInfo | None
    auxv: dict[int, int]
    auxv_raw: bytes
    mappings: list[FileMapping]
    segments: list[LoadSegment]
    warnings: list[str]

    def __init__(
        self,
        path: str,
        data: mmap.mmap,
        segments: list[LoadSegment],
        contents: NoteContents,
        image_dirs: Sequence[str],
        warnings: list[str],
    ) -> None:
        """Use ``CoreFile.open``: this only assembles what it parsed."""
        self.path = path
        self.threads = contents.threads
        self.process = contents.process
        self.siginfo = contents.siginfo
        self.auxv = contents.auxv
        self.auxv_raw = contents.auxv_raw
        self.mappings = contents.mappings
        self.segments = segments
        self.warnings = warnings
        self._data: mmap.mmap | None = data
        self._memory = LoadIndex(segments, len(data))
        self._files = MappedFiles(contents.mappings, image_dirs, warnings)
        self._files.warn_missing(self._memory)

    @classmethod
    def open(cls, path: str, image_dirs: Sequence[str] = ()) -> CoreFile:
        """Open the core at ``path``.

        Args:
            path: the core file (from the kernel, gdb's gcore or lindbg's ``.dump``).
            image_dirs: directories to look in, by basename, for mapped files that are
                not at the path the core recorded (a core from another machine).

        Returns:
            The opened core; ``warnings`` lists what is damaged or missing and what
            that costs.

        Raises:
            DumpFileError: the file is missing or unreadable, or is not an x86-64 Linux
                core with at least one thread. Nothing else (anything else is a bug).
        """
        label = quote(path)
        data, size = open_core(path, label)
        try:
            header = read_elf_header(data, size, label)
            headers = read_program_headers(data, size, header, label)
            warnings: list[str] = []
            contents = NoteDecoder(warnings).decode(read_notes(data, size, headers, warnings))
            if not contents.threads:
                raise DumpFileError(_no_thread_message(label, contents, headers))
            segments = load_segments(headers)
            truncation = truncation_warning(segments, size)
            if truncation:
                warnings.append(truncation)
            return cls(path, data, segments, contents, image_dirs, warnings)
        except BaseException:
            data.close()
            raise

    # ---------------------------------------------------------- facts

    @property
    def pid(self) -> int:
        """The process id: NT_PRPSINFO's, else the first thread's id."""
        return self.process.pid if self.process is not None else self.threads[0].tid

    def mapping_at(self, address: int) -> FileMapping | None:
        """The NT_FILE mapping that covers ``address``, None if no file was mapped there."""
        return self._files.mapping_at(address)

    def locate_file(self, path: str) -> str | None:
        """Where a mapped file recorded as ``path`` is found on this machine (at its
        path, else by basename in the image directories), None if nowhere."""
        return self._files.locate(path)

    # ---------------------------------------------------------- memory

    def read(self, address: int, size: int) -> bytes:
        """``size`` bytes of the process's memory at ``address``.

        Raises:
            MemoryAccessError: some byte is neither in the core nor in a mapped file on
                disk; ``address`` is the first such byte.
            InvalidOperationError: the core was closed.
            ValueError: ``size`` is negative (a caller's bug).
        """
        if size < 0:
            raise ValueError(f"read of a negative size ({size})")
        data = self._require_open()
        entry = self._memory.containing(address)
        if entry is not None and address + size <= entry.held_end:  # the usual case: one slice
            offset = entry.offset + (address - entry.start)
            return data[offset : offset + size]
        buffer = bytearray(size)
        self.read_into(address, buffer)
        return bytes(buffer)

    def read_into(self, address: int, buffer: bytearray | memoryview) -> None:
        """Fill ``buffer`` with the memory at ``address`` (as ``read``, into the caller's
        buffer: bytes are copied once, straight from the core's pages).

        Raises:
            MemoryAccessError: as ``read``; the buffer's contents are then undefined.
        """
        data = self._require_open()
        with memoryview(buffer) as view, view.cast("B") as target:
            position = 0
            while position < len(target):
                count = self._read_piece(data, address + position, target[position:])
                if count == 0:
                    raise self._fault(address + position)
                position += count

    def _read_piece(self, data: mmap.mmap, address: int, target: memoryview) -> int:
        """Fill the start of ``target`` from the one source that holds ``address`` (the
        core, else a mapped file); how many bytes, 0 if nothing holds that byte."""
        entry = self._memory.containing(address)
        if entry is not None and address < entry.held_end:
            count = min(len(target), entry.held_end - address)
            offset = entry.offset + (address - entry.start)
            target[:count] = data[offset : offset + count]
            return count
        if entry is not None and address < entry.file_end:
            return 0  # the core should hold it but was cut off before it
        limit = entry.end if entry is not None else self._memory.next_start(address)
        if limit is not None:
            target = target[: limit - address]
        return self._files.read(address, target)

    def _fault(self, address: int) -> MemoryAccessError:
        pid = self.pid
        return MemoryAccessError(f"memory access error at {address:#x} (dump of process {pid})", address, pid)

    def _require_open(self) -> mmap.mmap:
        if self._data is None:
            raise InvalidOperationError(f"the core file {quote(self.path)} is closed")
        return self._data

    # ---------------------------------------------------------- lifetime

    def close(self) -> None:
        """Unmap the core and close the mapped files; reads then raise. Idempotent."""
        if self._data is not None:
            self._data.close()
            self._data = None
        self._files.close()

    def __enter__(self) -> CoreFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<CoreFile {self.path!r} pid={self.pid} threads={len(self.threads)}>"


def _no_thread_message(label: str, contents: NoteContents, headers: list[ProgramHeader]) -> str:
    if not any(header.type == PT_NOTE for header in headers):
        return f"{label} has no threads (no PT_NOTE segment)"
    if contents.prstatus_seen:
        return f"{label} has no threads ({contents.prstatus_seen} NT_PRSTATUS notes, all damaged)"
    return f"{label} has no threads (no NT_PRSTATUS note)"
