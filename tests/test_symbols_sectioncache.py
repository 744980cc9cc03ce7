"""The disk cache of inflated debug sections: same bytes as inflating, never a stale
entry, a damaged entry ignored, and off when asked (libc's compressed debug file)."""

from __future__ import annotations

import os
import shutil
import zlib
from pathlib import Path

import pytest

from lindbg.formats.elfdefs import CHDR
from lindbg.symbols.debugfile import find_debug_file
from lindbg.symbols.elffile import ElfImage

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


@pytest.fixture(scope="module")
def compressed_debug_file() -> str:
    path = find_debug_file(ElfImage(os.path.realpath(LIBC)))
    if path is None:
        pytest.skip("libc's debug file (libc6-dbg) is needed")
    return path


def _inflated(path: str, name: str) -> bytes:
    """The section inflated here, by the test, from the file's own bytes."""
    image = ElfImage(path)
    section = image._section(name)
    assert section is not None
    with open(path, "rb") as handle:
        handle.seek(section.offset)
        raw = handle.read(section.size)
    return zlib.decompress(raw[CHDR.size :])


def test_a_second_reader_gets_the_same_bytes_from_the_cache(
    compressed_debug_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINDBG_CACHE_DIR", str(tmp_path))
    expected = _inflated(compressed_debug_file, ".debug_info")
    assert ElfImage(compressed_debug_file).section_data(".debug_info") == expected
    entries = list(tmp_path.iterdir())
    assert entries and all(e.stat().st_mode & 0o077 == 0 for e in entries)  # the user's alone
    assert tmp_path.stat().st_mode & 0o077 == 0
    sizes = {e.stat().st_size for e in entries}
    assert len(expected) in sizes
    assert ElfImage(compressed_debug_file).section_data(".debug_info") == expected


def test_a_changed_file_never_meets_its_old_entry(
    compressed_debug_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LINDBG_CACHE_DIR", str(cache))
    copy = tmp_path / "libc.debug"
    shutil.copyfile(compressed_debug_file, copy)
    first = ElfImage(str(copy)).section_data(".debug_line")
    before = set(cache.iterdir())
    # the same bytes under a new identity (mtime): a new entry, the old one untouched
    os.utime(copy, ns=(copy.stat().st_atime_ns, copy.stat().st_mtime_ns + 10**9))
    assert ElfImage(str(copy)).section_data(".debug_line") == first
    assert set(cache.iterdir()) > before


def test_a_damaged_entry_is_ignored(
    compressed_debug_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINDBG_CACHE_DIR", str(tmp_path))
    expected = _inflated(compressed_debug_file, ".debug_abbrev")
    ElfImage(compressed_debug_file).section_data(".debug_abbrev")
    for entry in tmp_path.iterdir():
        entry.write_bytes(entry.read_bytes()[:-100])  # truncated
    assert ElfImage(compressed_debug_file).section_data(".debug_abbrev") == expected


def test_the_cache_can_be_turned_off(
    compressed_debug_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINDBG_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert ElfImage(compressed_debug_file).section_data(".debug_info") == _inflated(
        compressed_debug_file, ".debug_info"
    )
    assert not any(tmp_path.rglob("*"))


def test_a_directory_others_can_write_is_not_used(
    compressed_debug_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("LINDBG_CACHE_DIR", str(shared))
    assert ElfImage(compressed_debug_file).section_data(".debug_info") == _inflated(
        compressed_debug_file, ".debug_info"
    )
    assert not any(shared.iterdir())
