"""Describe a stopped live process as a ``ProcessImage``, for ``corewriter.write_core``.

Registers come from the live target's cache (``general_registers``), never from a
fresh PTRACE_GETREGS: the cache holds what the engine shows and may have changed
(a breakpoint hit's rewound rip, a register the user set) and not yet written back.
Memory is read through ``read_memory_into``, which hides the engine's int3 bytes,
so the core holds the program's own code. The rest is /proc (``procfs``).

Which mappings go in follows the kernel's default ``coredump_filter`` (0x33) and
its ``vma_dump_size`` (fs/binfmt_elf.c), with smaps standing in for what only the
kernel sees (``Anonymous``/``Swap`` for "has anonymous pages", ``VmFlags`` for
VM_DONTDUMP, VM_IO, hugetlb): the memory the program wrote (anonymous memory, the
copied-on-write pages of private file mappings such as .data, .bss and RELRO),
anonymous shared memory, the first page of each mapped ELF file (gdb finds build-ids
there), the vDSO. ``full`` adds every other readable mapping (code and read-only
data of every file). [vvar] and [vsyscall] never: their pages cannot be read
reliably. Mappings the core leaves out still get a PT_LOAD (p_filesz 0).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from lindbg.errors import MemoryAccessError, TargetAccessError
from lindbg.formats.corewriter import PAGE_SIZE, MappingImage, ProcessImage, ThreadImage
from lindbg.formats.elfdefs import ELF_MAGIC, NT_X86_XSTATE, SIGINFO_SIZE
from lindbg.os.linux import procfs
from lindbg.os.linux import ptrace as pt
from lindbg.targets.live.target import LiveTarget

#: Bytes asked for with PTRACE_GETREGSET(NT_X86_XSTATE): more than any XSAVE area
#: (AMX tiles included); the kernel trims the reply to the real size.
_XSTATE_REQUEST = 16384
_PSARGS_LENGTH = 79
_COMM_LENGTH = 15
#: VmFlags of mappings never read: VM_IO and VM_PFNMAP (device memory; reading may
#: have side effects or fault).
_NEVER_FLAGS = frozenset({"io", "pf"})


def snapshot(
    target: LiveTarget, pid: int, *, full: bool, current_tid: int, siginfo_tid: int | None = None
) -> ProcessImage:
    """Describe stopped process ``pid`` of ``target`` for a core file.

    Args:
        full: include every readable mapping (``.dump /ma``), not only what the
            kernel's default filter keeps.
        current_tid: the engine's current thread: first in the core (gdb selects the
            first thread) unless ``siginfo_tid`` is given.
        siginfo_tid: the thread stopped on a signal, if the stop is one: it comes
            first, its siginfo goes into NT_SIGINFO and the signal into every
            thread's pr_cursig, as the kernel writes it (gdb reads the last one).

    Raises:
        InvalidOperationError: ``pid`` is not debugged by ``target`` or a thread runs.
        TargetAccessError: ptrace or /proc refused (the process is gone ...).
    """
    first = siginfo_tid if siginfo_tid is not None else current_tid
    tids = [first, *(tid for tid in target.thread_ids(pid) if tid != first)]
    siginfo = _siginfo(siginfo_tid) if siginfo_tid is not None else None
    signal = int.from_bytes(siginfo[:4], "little", signed=True) if siginfo else 0
    threads = [_thread_image(target, pid, tid, signal) for tid in tids]
    try:
        return _process_image(target, pid, full, threads, siginfo)
    except OSError as error:
        raise TargetAccessError(f"cannot read /proc/{pid}: {error.strerror}", pid) from error


def _process_image(
    target: LiveTarget, pid: int, full: bool, threads: list[ThreadImage], siginfo: bytes | None
) -> ProcessImage:
    stat = procfs.process_stat(pid)
    uid, gid = procfs.real_ids(pid)
    return ProcessImage(
        pid=pid,
        ppid=stat.ppid,
        pgrp=stat.pgrp,
        sid=stat.session,
        uid=uid,
        gid=gid,
        state=stat.state,
        fname=stat.comm[:_COMM_LENGTH],
        psargs=" ".join(procfs.command_line(pid))[:_PSARGS_LENGTH],
        threads=threads,
        siginfo=siginfo,
        auxv=procfs.auxv_bytes(pid),
        mappings=[_mapping_image(target, pid, m, full) for m in procfs.memory_mappings(pid)],
        nice=stat.nice,
        flags=stat.flags,
    )


def memory_reader(target: LiveTarget, pid: int) -> Callable[[int, memoryview], None]:
    """``read_into(address, view)`` for ``write_core``: ``pid``'s memory with the
    engine's breakpoints hidden; raises ``MemoryAccessError`` at the first bad byte."""

    def read_into(address: int, view: memoryview) -> None:
        target.read_memory_into(pid, address, view)

    return read_into


def _thread_image(target: LiveTarget, pid: int, tid: int, signal: int) -> ThreadImage:
    registers = bytes(target.general_registers(tid))
    try:
        fpregs = bytes(pt.getfpregs(tid))
    except OSError as error:
        raise TargetAccessError(
            f"cannot read the FP registers of thread {tid}: {error.strerror}", pid, tid
        ) from error
    return ThreadImage(tid=tid, registers=registers, fpregs=fpregs, xstate=_xstate(tid), signal=signal)


def _xstate(tid: int) -> bytes | None:
    """The XSAVE area of ``tid``, or None on a CPU (or kernel) without one."""
    try:
        return pt.getregset(tid, NT_X86_XSTATE, _XSTATE_REQUEST)
    except OSError:
        return None


def _siginfo(tid: int) -> bytes | None:
    """The 128-byte siginfo_t ``tid`` is stopped with, or None if it has none."""
    try:
        return bytes(pt.getsiginfo(tid))[:SIGINFO_SIZE].ljust(SIGINFO_SIZE, b"\0")
    except OSError:
        return None


def _mapping_image(target: LiveTarget, pid: int, mapping: procfs.MemoryMapping, full: bool) -> MappingImage:
    size = _dump_extent(mapping, full, lambda: _starts_with_elf(target, pid, mapping.start))
    whole = mapping.end - mapping.start
    perms = mapping.perms
    return MappingImage(
        start=mapping.start,
        end=mapping.end,
        readable=perms[0] == "r",
        writable=perms[1] == "w",
        executable=perms[2] == "x",
        shared=perms[3] == "s",
        file_offset=mapping.offset,
        path=mapping.path,
        dump=size > 0,
        dump_size=None if size == whole else size,
    )


def _dump_extent(mapping: procfs.MemoryMapping, full: bool, starts_with_elf: Callable[[], bool]) -> int:
    """How many bytes of ``mapping`` the core holds (kernel's vma_dump_size, filter 0x33)."""
    whole = mapping.end - mapping.start
    path = mapping.path
    if mapping.perms[0] != "r" or path.startswith("[vvar") or path == "[vsyscall]":
        return 0
    if mapping.vm_flags & _NEVER_FLAGS:
        return 0
    if path == "[vdso]" or full:
        return whole
    if "dd" in mapping.vm_flags:  # madvise(MADV_DONTDUMP)
        return 0
    shared = mapping.perms[3] == "s"
    if "ht" in mapping.vm_flags:  # hugetlb: filter bit 5 (private) is set, bit 6 (shared) not
        return 0 if shared else whole
    is_file = bool(path) and not path.startswith("[")
    if shared:  # anonymous shared memory (a file no name reaches) yes, mapped files no
        return whole if not is_file or path.endswith(" (deleted)") else 0
    if _written(mapping, is_file):
        return whole
    if is_file and mapping.offset == 0 and starts_with_elf():
        return min(PAGE_SIZE, whole)
    return 0


def _written(mapping: procfs.MemoryMapping, is_file: bool) -> bool:
    """Whether a private mapping holds pages of its own (the kernel's anon_vma test).

    Without smaps' counters: anonymous memory, and writable file mappings, are taken
    as written."""
    if mapping.anonymous is not None:
        return mapping.anonymous > 0
    return not is_file or mapping.perms[1] == "w"


def _starts_with_elf(target: LiveTarget, pid: int, address: int) -> bool:
    with contextlib.suppress(MemoryAccessError):
        return target.read_memory(pid, address, len(ELF_MAGIC)) == ELF_MAGIC
    return False
