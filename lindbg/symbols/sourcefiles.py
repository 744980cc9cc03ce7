"""Source files named by DWARF, found on disk and read once.

DWARF names a file by the path the compiler saw (absolute, or joined with the
CU's ``DW_AT_comp_dir``). When that path does not exist here (the program was
built elsewhere, or moved), each directory of the source path is tried with
ever shorter tails of the DWARF path: ``/build/app/src/main.c`` is looked for as
``DIR/build/app/src/main.c``, ``DIR/app/src/main.c``, ``DIR/src/main.c`` and
``DIR/main.c``, the way gdb's ``directory`` search and WinDbg's source path do.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

__all__ = ["SourceFiles"]

#: Files larger than this are not source code worth listing (and would cost memory).
_MAX_SOURCE_BYTES = 16 << 20


class SourceFiles:
    """Finds and caches source files; keyed by the DWARF path and the search path."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, tuple[str, ...]], str | None] = {}
        self._lines: dict[str, list[str] | None] = {}

    def find(self, dwarf_path: str, search_path: Sequence[str] = ()) -> str | None:
        """The file on disk for ``dwarf_path``, or None when neither the path itself
        nor any tail of it under a ``search_path`` directory exists."""
        key = (dwarf_path, tuple(search_path))
        if key not in self._found:
            self._found[key] = self._search(dwarf_path, search_path)
        return self._found[key]

    def lines(self, path: str) -> list[str] | None:
        """The lines of the file at ``path`` (no line ends, tabs kept), or None when
        it cannot be read. Undecodable bytes are replaced, never fatal."""
        if path not in self._lines:
            self._lines[path] = _read_lines(path)
        return self._lines[path]

    def forget(self) -> None:
        """Drop every cached answer (the search path or the files changed)."""
        self._found.clear()
        self._lines.clear()

    @staticmethod
    def _search(dwarf_path: str, search_path: Sequence[str]) -> str | None:
        if os.path.isfile(dwarf_path):
            return dwarf_path
        parts = [part for part in dwarf_path.split("/") if part]
        for directory in search_path:
            for start in range(len(parts)):
                candidate = os.path.join(directory, *parts[start:])
                if os.path.isfile(candidate):
                    return candidate
        return None


def _read_lines(path: str) -> list[str] | None:
    try:
        if os.path.getsize(path) > _MAX_SOURCE_BYTES:
            return None
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data.decode("utf-8", errors="replace").splitlines()
