"""What the dynamic loader has mapped, read from the target's own memory.

Strategy (the SVR4 rendezvous, as gdb's solib-svr4 reads it): the loader keeps
``struct r_debug`` (``_r_debug`` in ld.so) whose ``r_map`` heads a list of
``struct link_map`` (load bias, path, next), and calls ``_dl_debug_state``
around every change, with ``r_state`` saying whether the list is consistent.
A debugger breaks on ``_dl_debug_state`` and re-reads the list when
``r_state == RT_CONSISTENT``. Everything here works on a ``read(address,
size)`` callable, so live processes and core files share it; module extents
and build-ids come from the ELF headers mapped in memory, not from the disk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lindbg.formats.elfdefs import AT_BASE as AT_BASE
from lindbg.formats.elfdefs import AT_ENTRY as AT_ENTRY
from lindbg.formats.elfdefs import AT_PHDR as AT_PHDR
from lindbg.formats.elfdefs import AT_PHNUM as AT_PHNUM
from lindbg.formats.elfdefs import AT_SYSINFO_EHDR as AT_SYSINFO_EHDR
from lindbg.formats.elfdefs import (
    DT_DEBUG,
    DT_NULL,
    EHDR,
    ELF_MAGIC,
    NHDR,
    NT_GNU_BUILD_ID,
    PHDR,
    PT_DYNAMIC,
    PT_LOAD,
    PT_NOTE,
    PT_PHDR,
)

ReadMemory = Callable[[int, int], bytes]

RT_CONSISTENT = 0
_MAX_MODULES = 4096


@dataclass(frozen=True, slots=True)
class MappedImage:
    """One ELF image as mapped in memory."""

    path: str
    #: The load bias (link_map's l_addr): runtime address = link-time address + bias.
    bias: int
    start: int
    end: int
    build_id: str


def read_u64(read: ReadMemory, address: int) -> int:
    data = read(address, 8)
    if len(data) < 8:
        raise OSError(f"cannot read 8 bytes at {address:#x}")
    return int.from_bytes(data, "little")


def read_c_string(read: ReadMemory, address: int, limit: int = 4096) -> str:
    """A NUL-terminated string at ``address`` (read in chunks, at most ``limit``)."""
    out = bytearray()
    while len(out) < limit:
        chunk = read(address + len(out), 256)
        if not chunk:
            break
        end = chunk.find(b"\0")
        if end >= 0:
            out += chunk[:end]
            break
        out += chunk
    return out.decode("utf-8", "replace")


def _program_headers(read: ReadMemory, phdr: int, count: int) -> list[tuple[int, ...]]:
    data = read(phdr, PHDR.size * count)
    return [PHDR.unpack_from(data, i * PHDR.size) for i in range(len(data) // PHDR.size)]


def _image_from_headers(
    read: ReadMemory, path: str, bias: int, headers: list[tuple[int, ...]]
) -> MappedImage:
    loads = [h for h in headers if h[0] == PT_LOAD]
    if not loads:
        return MappedImage(path, bias, bias, bias, "")
    start = min(h[3] for h in loads) & ~0xFFF
    end = max(h[3] + h[6] for h in loads)
    end = (end + 0xFFF) & ~0xFFF
    build_id = ""
    for h in headers:
        if h[0] == PT_NOTE:
            build_id = _build_id(read(bias + h[3], min(h[5], 4096))) or build_id
            if build_id:
                break
    return MappedImage(path, bias, bias + start, bias + end, build_id)


def _build_id(notes: bytes) -> str:
    offset = 0
    while offset + NHDR.size <= len(notes):
        namesz, descsz, kind = NHDR.unpack_from(notes, offset)
        name_start = offset + NHDR.size
        name_end = name_start + ((namesz + 3) & ~3)
        desc_end = name_end + ((descsz + 3) & ~3)
        if kind == NT_GNU_BUILD_ID and notes[name_start : name_start + namesz].rstrip(b"\0") == b"GNU":
            return notes[name_end : name_end + descsz].hex()
        offset = desc_end
    return ""


def image_at_header(read: ReadMemory, path: str, bias: int, header: int) -> MappedImage:
    """The image whose ELF header is mapped at ``header`` (a shared object, the vDSO)."""
    ehdr = read(header, EHDR.size)
    if len(ehdr) < EHDR.size or ehdr[:4] != ELF_MAGIC:
        return MappedImage(path, bias, header, header, "")
    phoff = int.from_bytes(ehdr[0x20:0x28], "little")
    phnum = int.from_bytes(ehdr[0x38:0x3A], "little")
    return _image_from_headers(read, path, bias, _program_headers(read, header + phoff, phnum))


def main_executable(read: ReadMemory, auxv: dict[int, int], path: str) -> tuple[MappedImage, int]:
    """The program's own image (from AT_PHDR) and the runtime address of its
    dynamic section (0 for a static program)."""
    headers = _program_headers(read, auxv[AT_PHDR], auxv.get(AT_PHNUM, 0))
    phdr_vaddr = next((h[3] for h in headers if h[0] == PT_PHDR), None)
    if phdr_vaddr is None:  # no PT_PHDR: the headers follow the ELF header of the first load
        first = min((h for h in headers if h[0] == PT_LOAD), key=lambda h: h[3], default=None)
        phdr_vaddr = (first[3] + EHDR.size) if first is not None else auxv[AT_PHDR]
    bias = auxv[AT_PHDR] - phdr_vaddr
    dynamic = next((bias + h[3] for h in headers if h[0] == PT_DYNAMIC), 0)
    return _image_from_headers(read, path, bias, headers), dynamic


def r_debug_from_dynamic(read: ReadMemory, dynamic: int) -> int:
    """The address in DT_DEBUG (0 until the loader has filled it in)."""
    if not dynamic:
        return 0
    for index in range(512):
        tag = read_u64(read, dynamic + 16 * index)
        if tag == DT_NULL:
            return 0
        if tag == DT_DEBUG:
            return read_u64(read, dynamic + 16 * index + 8)
    return 0


def rendezvous_state(read: ReadMemory, r_debug: int) -> int:
    """``r_state`` of the loader's ``struct r_debug``."""
    return int.from_bytes(read(r_debug + 24, 4), "little")


def link_map(read: ReadMemory, r_debug: int) -> list[tuple[int, str, int]]:
    """The loader's list: (l_addr, l_name, the runtime address of the link_map entry)."""
    entries: list[tuple[int, str, int]] = []
    entry = read_u64(read, r_debug + 8)
    seen = set()
    while entry and entry not in seen and len(entries) < _MAX_MODULES:
        seen.add(entry)
        l_addr = read_u64(read, entry)
        name_pointer = read_u64(read, entry + 8)
        name = read_c_string(read, name_pointer) if name_pointer else ""
        entries.append((l_addr, name, entry))
        entry = read_u64(read, entry + 24)
    return entries
