"""The memory of a core file: where each byte of the process's memory is to be found.

Found the way gdb finds it: a byte inside a PT_LOAD's file part comes from the core
(``LoadIndex``, bisect over the segments' start addresses); a byte the core left out
(the kernel writes ``filesz = 0`` for read-only file mappings such as code, gdb's gcore
writes no PT_LOAD for them at all) comes from the file on disk that NT_FILE says was
mapped there (``MappedFiles``). Those files are opened on first use and read with
``pread`` (never mapped: a file replaced on disk then gives a read error instead of
SIGBUS). Reading the core's own bytes is ``CoreFile``'s business: this layer only says
where they are.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from lindbg.formats.elfdefs import PT_LOAD
from lindbg.targets.dump.elfcore import ProgramHeader
from lindbg.targets.dump.notes import FileMapping


@dataclass(frozen=True, slots=True)
class LoadSegment:
    """One PT_LOAD: ``memsz`` bytes of memory at ``vaddr``, of which the first ``filesz``
    are in the core at ``offset`` (``flags``: PF_R=4, PF_W=2, PF_X=1)."""

    vaddr: int
    memsz: int
    offset: int
    filesz: int
    flags: int


def load_segments(headers: list[ProgramHeader]) -> list[LoadSegment]:
    """The PT_LOAD segments of ``headers``, by address."""
    segments = [
        LoadSegment(header.vaddr, header.memsz, header.offset, header.filesz, header.flags)
        for header in headers
        if header.type == PT_LOAD
    ]
    segments.sort(key=lambda segment: segment.vaddr)
    return segments


def truncation_warning(segments: list[LoadSegment], size: int) -> str | None:
    """The warning for a core whose end cuts some segment's file part, None if none is cut."""
    cut = sum(
        1
        for segment in segments
        if min(segment.filesz, segment.memsz) > 0
        and segment.offset + min(segment.filesz, segment.memsz) > size
    )
    if not cut:
        return None
    return f"core is truncated: memory of {cut} segments is cut off at file offset {size:#x}"


class _Range(NamedTuple):
    """One PT_LOAD as the reader indexes it: [start, end) of memory, of which
    [start, file_end) is in the core and [start, held_end) is actually in the file."""

    start: int
    end: int
    file_end: int
    held_end: int
    offset: int


class LoadIndex:
    """The PT_LOAD segments, looked up by bisect over their start addresses."""

    def __init__(self, segments: Sequence[LoadSegment], file_size: int) -> None:
        self.ranges: list[_Range] = []
        for segment in segments:
            if segment.memsz <= 0:
                continue
            file_part = min(segment.filesz, segment.memsz)
            in_file = max(0, min(file_part, file_size - segment.offset))
            self.ranges.append(
                _Range(
                    segment.vaddr,
                    segment.vaddr + segment.memsz,
                    segment.vaddr + file_part,
                    segment.vaddr + in_file,
                    segment.offset,
                )
            )
        self._starts = [entry.start for entry in self.ranges]

    def containing(self, address: int) -> _Range | None:
        index = bisect.bisect_right(self._starts, address) - 1
        if index >= 0 and address < self.ranges[index].end:
            return self.ranges[index]
        return None

    def next_start(self, address: int) -> int | None:
        """The start of the first segment above ``address`` (None if there is none)."""
        index = bisect.bisect_right(self._starts, address)
        return self._starts[index] if index < len(self._starts) else None

    def holds(self, start: int, end: int) -> bool:
        """Whether every byte of [start, end) is in the core's file."""
        address = start
        while address < end:
            entry = self.containing(address)
            if entry is None or entry.held_end <= address:
                return False
            address = entry.held_end
        return True


class MappedFiles:
    """The files NT_FILE names, found on disk once at open and opened on first read.

    A path is looked for where it was recorded, then by its basename in each image
    directory (the core may come from another machine). Only regular files count:
    a device the process had mapped is never opened.
    """

    def __init__(self, mappings: list[FileMapping], image_dirs: Sequence[str], warnings: list[str]) -> None:
        self.mappings = mappings
        self._starts = [mapping.start for mapping in mappings]
        self._image_dirs = tuple(image_dirs)
        self._warnings = warnings
        self._located: dict[str, str | None] = {}
        self._fds: dict[str, int | None] = {}

    def mapping_at(self, address: int) -> FileMapping | None:
        index = bisect.bisect_right(self._starts, address) - 1
        if index >= 0 and address < self.mappings[index].end:
            return self.mappings[index]
        return None

    def locate(self, path: str) -> str | None:
        """Where ``path`` is on this machine (cached), None if nowhere."""
        if path not in self._located:
            self._located[path] = self._search(path)
        return self._located[path]

    def _search(self, path: str) -> str | None:
        if os.path.isfile(path):
            return path
        base = os.path.basename(path.removesuffix(" (deleted)"))
        for directory in self._image_dirs:
            candidate = os.path.join(directory, base)
            if base and os.path.isfile(candidate):
                return candidate
        return None

    def warn_missing(self, memory: LoadIndex) -> None:
        """One warning per mapped file that is not on disk while some of its pages are
        not in the core either (a file whose pages the core holds costs nothing)."""
        warned: set[str] = set()
        for mapping in self.mappings:
            if mapping.path in warned or memory.holds(mapping.start, mapping.end):
                continue
            if self.locate(mapping.path) is None:
                warned.add(mapping.path)
                self._warnings.append(
                    f"mapped file {mapping.path} not found: its read-only pages are not in the core"
                )

    def read(self, address: int, target: memoryview) -> int:
        """Fill the start of ``target`` from the file mapped at ``address``; how many
        bytes were read (0 when no file holds the byte at ``address``)."""
        mapping = self.mapping_at(address)
        if mapping is None:
            return 0
        fd = self._fd(mapping.path)
        if fd is None:
            return 0
        count = min(len(target), mapping.end - address)
        try:
            chunk = os.pread(fd, count, mapping.file_offset + (address - mapping.start))
        except (OSError, OverflowError, ValueError):
            return 0
        target[: len(chunk)] = chunk
        return len(chunk)

    def _fd(self, path: str) -> int | None:
        if path in self._fds:
            return self._fds[path]
        fd: int | None = None
        located = self.locate(path)
        if located is not None:
            try:
                fd = os.open(located, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            except OSError as error:
                self._warnings.append(f"mapped file {located} cannot be opened: {error.strerror or error}")
        self._fds[path] = fd
        return fd

    def close(self) -> None:
        for fd in self._fds.values():
            if fd is not None:
                os.close(fd)
        self._fds.clear()
