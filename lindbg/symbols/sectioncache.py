"""A disk cache of decompressed debug sections.

Distribution debug files (libc6-dbg's, for one) compress their DWARF: libc's
``.debug_info`` is 2.3 MB that inflate to 5.8 MB in ~40 ms, paid again by every
lindbg that reads a line or a variable in libc. Like gdb's index cache, the
inflated bytes are kept under ``$LINDBG_CACHE_DIR`` (default
``$XDG_CACHE_HOME/lindbg/sections``, else ``~/.cache/lindbg/sections``) in a
directory only the user can read, one file per (file identity, section offset). The
identity is the file's device, inode, size and modification time, so a rebuilt or
replaced file never meets a stale entry. ``LINDBG_CACHE_DIR=off`` turns it off.
Every failure (no home, a full disk, a racing writer) just means no cache.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

__all__ = ["SectionCache"]

#: Sections smaller than this inflate faster than a file can be opened and read.
_MIN_CACHED = 256 << 10


class SectionCache:
    """Inflated sections of one file, on disk; ``load``/``store`` by section offset."""

    def __init__(self, identity: tuple[int, int, int, int]) -> None:
        self._directory = _directory()
        self._identity = identity

    def load(self, offset: int, size: int) -> bytes | None:
        """The inflated section stored for the section at file ``offset``, if its
        size is ``size`` (anything else is not ours to trust)."""
        path = self._path(offset, size)
        if path is None:
            return None
        try:
            with open(path, "rb") as handle:
                data = handle.read(size + 1)
        except OSError:
            return None
        return data if len(data) == size else None

    def store(self, offset: int, data: bytes) -> None:
        """Keep ``data`` (written aside, then renamed in: readers never see a part)."""
        path = self._path(offset, len(data))
        if path is None or self._directory is None:
            return
        try:
            os.makedirs(self._directory, mode=0o700, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self._directory, prefix=".partial-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(temporary, path)
            except OSError:
                os.unlink(temporary)
        except OSError:
            return

    def _path(self, offset: int, size: int) -> str | None:
        if self._directory is None or size < _MIN_CACHED or not _trusted(self._directory):
            return None
        key = hashlib.sha256(repr((self._identity, offset, size)).encode()).hexdigest()[:40]
        return os.path.join(self._directory, key)


def _trusted(directory: str) -> bool:
    """Ours and writable by us alone (a directory someone else controls could feed
    us any bytes); a directory that does not exist yet is made that way."""
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _directory() -> str | None:
    chosen = os.environ.get("LINDBG_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off", "0", "none") else chosen
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if base.startswith("~"):
        return None  # no home directory to expand
    return os.path.join(base, "lindbg", "sections")
