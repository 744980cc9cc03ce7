"""A core file as a target: every thread stopped for good, memory and
registers read from the file, nothing that runs or writes.

The engine drives it through the same ``Target`` interface as live processes
(DESIGN.md §6b), so symbols, stacks, disassembly and the console's read-only
commands work unchanged; anything that would run or change the target is
refused with one line saying the target is a dump.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lindbg.arch import register_state
from lindbg.arch.x86_64 import UserRegs
from lindbg.errors import InvalidOperationError
from lindbg.targets.base import Capability, MemoryRegion, Target
from lindbg.targets.dump.corefile import CoreFile, CoreThread

_PF_R, _PF_W, _PF_X = 4, 2, 1


class DumpTarget(Target):
    """One process as an ELF core recorded it."""

    kind = "dump"
    #: Read only: nothing runs, nothing is written, no breakpoint is placed.
    capabilities = Capability.NONE

    def __init__(self, path: str, image_dirs: Sequence[str] = ()) -> None:
        """Open ``path``.

        Raises:
            DumpFileError: not a readable x86-64 core (one line naming the file).
        """
        self.core = CoreFile.open(path, image_dirs)
        self.path = path
        self.pid = self.core.pid
        self._threads: dict[int, CoreThread] = {thread.tid: thread for thread in self.core.threads}
        self._registers: dict[int, UserRegs] = {}

    @property
    def warnings(self) -> list[str]:
        """What the core lacks or has damaged, one line each (shown on open)."""
        return self.core.warnings

    def has_full_memory(self) -> bool:
        """True when the core holds the program's code too (``.dump /ma``, gcore),
        not only its writable and anonymous memory (the kernel's default)."""
        return any(
            segment.flags & _PF_X and segment.filesz > 0 and self.core.mapping_at(segment.vaddr) is not None
            for segment in self.core.segments
        )

    # -------------------------------------------------------------- structure

    def process_ids(self) -> list[int]:
        return [self.pid]

    def thread_ids(self, pid: int) -> list[int]:
        """The core's threads in note order: the one that took the signal first."""
        if pid != self.pid:
            raise InvalidOperationError(f"process {pid} is not in the dump")
        return list(self._threads)

    def _thread(self, tid: int) -> CoreThread:
        thread = self._threads.get(tid)
        if thread is None:
            raise InvalidOperationError(f"thread {tid} is not in the dump")
        return thread

    # ----------------------------------------------------------------- memory

    def read_memory(self, pid: int, address: int, size: int) -> bytes:
        return self.core.read(address, size)

    def read_memory_into(self, pid: int, address: int, buffer: bytearray | memoryview) -> None:
        self.core.read_into(address, buffer)

    def memory_reader(self, pid: int) -> Callable[[int, int], bytes]:
        return self.core.read

    # -------------------------------------------------------------- registers

    def general_registers(self, tid: int) -> UserRegs:
        regs = self._registers.get(tid)
        if regs is None:
            raw = self._thread(tid).raw_registers
            regs = self._registers[tid] = UserRegs.from_buffer_copy(raw.ljust(216, b"\0")[:216])
        return regs

    def get_register(self, tid: int, name: str) -> int:
        thread = self._thread(tid)
        return register_state.read_state(
            name, self.general_registers(tid), lambda: thread.fpregs, lambda: thread.xstate
        )

    # ------------------------------------------------------------ the process

    def auxv(self, pid: int) -> dict[int, int]:
        return dict(self.core.auxv)

    def executable(self, pid: int) -> str:
        """The program's path: the file mapped where AT_PHDR points, else the
        first file mapped at all (the kernel maps the program first)."""
        phdr = self.core.auxv.get(3, 0)  # AT_PHDR
        mapping = self.core.mapping_at(phdr) if phdr else None
        if mapping is None and self.core.mappings:
            mapping = self.core.mappings[0]
        return mapping.path if mapping is not None else ""

    def mapping_path_at(self, pid: int, address: int) -> str:
        mapping = self.core.mapping_at(address)
        return mapping.path if mapping is not None else ""

    def memory_map(self, pid: int) -> list[MemoryRegion]:
        """The core's PT_LOAD segments, each named by the NT_FILE mapping it lies in."""
        regions = []
        for segment in self.core.segments:
            mapping = self.core.mapping_at(segment.vaddr)
            flags = segment.flags
            rights = "".join(
                letter if flags & bit else "-" for letter, bit in (("r", _PF_R), ("w", _PF_W), ("x", _PF_X))
            )
            offset = segment.vaddr - mapping.start + mapping.file_offset if mapping is not None else 0
            path = mapping.path if mapping is not None else ""
            regions.append(
                MemoryRegion(segment.vaddr, segment.vaddr + segment.memsz, rights + "p", offset, path)
            )
        return regions

    # ----------------------------------------------------------------- ending

    def detach_process(self, pid: int) -> None:
        """Closing the session closes the file; the file itself is left untouched."""
        self.core.close()

    def kill_process(self, pid: int) -> int:
        self.core.close()
        return 0

    def detach_all(self) -> None:
        self.core.close()

    def terminate_all(self) -> dict[int, int]:
        self.core.close()
        return {}
