"""Finding an image's separate debug file, the way gdb does.

Distributions strip binaries and ship the debug information apart (libc6-dbg puts
libc's under /usr/lib/debug/.build-id/). gdb looks by build-id first (exact: the linker
hashed the image's contents), then by the ``.gnu_debuglink`` name next to the file and
under the debug roots, checking the CRC-32 the link records. A candidate that does not
match, or holds neither DWARF nor a symbol table, is passed over: a wrong debug file
would give wrong names, which is worse than none.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterator, Sequence

from lindbg.symbols.elffile import ElfImage, SymbolError

DEFAULT_DEBUG_ROOTS = ["/usr/lib/debug"]

_CRC_CHUNK = 1 << 20


def find_debug_file(image: ElfImage, extra_paths: Sequence[str] = ()) -> str | None:
    """Separate debug info: by build-id (<root>/.build-id/xx/rest.debug for each root in
    extra_paths + DEFAULT_DEBUG_ROOTS), then by .gnu_debuglink (next to the file, in its
    .debug/ subdir, <root>/<dir of the file>/name, and in each extra path); the candidate
    must have the same build-id (or matching crc32 for debuglink) and contain .debug_info
    or .symtab. Returns None if none."""
    roots = [*extra_paths, *DEFAULT_DEBUG_ROOTS]
    build_id = _build_id(image)
    if build_id:
        hex_id = build_id.hex()
        for root in roots:
            candidate = os.path.join(root, ".build-id", hex_id[:2], hex_id[2:] + ".debug")
            if _usable(candidate, image, lambda other: _build_id(other) == build_id):
                return candidate
    link = _debuglink(image)
    if link is not None:
        name, crc = link
        for candidate in _debuglink_candidates(image.path, name, roots, extra_paths):
            if _usable(candidate, image, lambda other: _file_crc32(other.path) == crc):
                return candidate
    return None


def _build_id(image: ElfImage) -> bytes | None:
    try:
        return image.build_id
    except SymbolError:
        return None


def _debuglink(image: ElfImage) -> tuple[str, int] | None:
    try:
        return image.debuglink
    except SymbolError:
        return None


def _debuglink_candidates(
    path: str, name: str, roots: Sequence[str], extra_paths: Sequence[str]
) -> Iterator[str]:
    """gdb's debuglink search order, for the file's directory as named and as resolved
    (/lib is a symlink to /usr/lib on merged-/usr systems; debug trees use either)."""
    if os.path.basename(name) != name or name in ("", ".", ".."):
        return  # a link naming another directory is not followed
    directories = [os.path.dirname(os.path.abspath(path))]
    real = os.path.dirname(os.path.realpath(path))
    if real not in directories:
        directories.append(real)
    seen: set[str] = set()
    for directory in directories:
        options = [os.path.join(directory, name), os.path.join(directory, ".debug", name)]
        options += [os.path.join(root, directory.lstrip("/"), name) for root in roots]
        for option in options:
            if option not in seen:
                seen.add(option)
                yield option
    for extra in extra_paths:
        option = os.path.join(extra, name)
        if option not in seen:
            seen.add(option)
            yield option


def _usable(candidate: str, image: ElfImage, matches: Callable[[ElfImage], bool]) -> bool:
    """Whether ``candidate`` exists, is not the image itself, matches it, and has symbols."""
    try:
        if not os.path.isfile(candidate) or os.path.samefile(candidate, image.path):
            return False
    except OSError:
        return False
    try:
        other = ElfImage(candidate)
        if not matches(other):
            return False
        return other.has_contents(".debug_info") or other.has_contents(".symtab")
    except SymbolError:
        return False


def _file_crc32(path: str) -> int | None:
    """The CRC-32 of a whole file, as objcopy --add-gnu-debuglink records it."""
    crc = 0
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(_CRC_CHUNK):
                crc = zlib.crc32(chunk, crc)
    except OSError:
        return None
    return crc
