"""The modules of each debugged process, kept current through the loader.

The process's facts (auxiliary vector, executable path, which file is mapped
where) come from its target: /proc for a live process, the notes of a core.

Strategy: at the initial break the engine knows the program, the dynamic
loader (AT_BASE) and the vDSO (AT_SYSINFO_EHDR) from the auxiliary vector.
An internal breakpoint at the program's entry point (AT_ENTRY) catches the
moment ld.so has mapped every DT_NEEDED library and published ``r_debug``
through DT_DEBUG; from then on an internal breakpoint on ``r_brk`` (the
loader's ``_dl_debug_state``) reports every dlopen/dlclose. Attaching reads
``r_debug`` at once. No symbol table is read for any of this.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from lindbg.engine.handles import Module
from lindbg.symbols import loader
from lindbg.symbols.naming import module_name

ReadMemory = Callable[[int, int], bytes]


class ProcessModules:
    """The module list of one process and where the loader can be watched."""

    def __init__(
        self,
        pid: int,
        read: ReadMemory,
        auxv: dict[int, int],
        executable: str,
        mapping_path_at: Callable[[int], str],
    ) -> None:
        self.pid = pid
        self._read = read
        self._executable = executable
        self._mapping_path_at = mapping_path_at
        self.modules: list[Module] = []
        self.auxv = auxv
        self.dynamic = 0
        self.r_debug = 0
        #: How many of ``modules`` (the program, ld.so, the vDSO) never unload.
        self._permanent = 0

    # ------------------------------------------------------------ discovery

    def initial(self) -> list[Module]:
        """The images present before the loader runs: program, ld.so, vDSO."""
        found: list[Module] = []
        image, self.dynamic = loader.main_executable(self._read, self.auxv, self._executable)
        found.append(self._make(image))
        interpreter = self.auxv.get(loader.AT_BASE, 0)
        if interpreter:
            path = self._mapping_path_at(interpreter)
            found.append(self._make(loader.image_at_header(self._read, path, interpreter, interpreter)))
        vdso = self.auxv.get(loader.AT_SYSINFO_EHDR, 0)
        if vdso:
            found.append(self._make(loader.image_at_header(self._read, "[vdso]", vdso, vdso)))
        self.modules.extend(found)
        self._permanent = len(found)
        return found

    @property
    def entry_point(self) -> int:
        return self.auxv.get(loader.AT_ENTRY, 0)

    def rendezvous_break_address(self) -> int:
        """``r_brk`` once the loader has published ``r_debug`` (else 0)."""
        if not self.r_debug:
            self.r_debug = loader.r_debug_from_dynamic(self._read, self.dynamic)
        if not self.r_debug:
            return 0
        return loader.read_u64(self._read, self.r_debug + 16)

    def refresh(self) -> tuple[list[Module], list[Module]]:
        """Re-read the loader's list if it is consistent; return (loaded, unloaded)."""
        if not self.r_debug:
            self.r_debug = loader.r_debug_from_dynamic(self._read, self.dynamic)
        if not self.r_debug or loader.rendezvous_state(self._read, self.r_debug) != loader.RT_CONSISTENT:
            return [], []
        vdso = self.auxv.get(loader.AT_SYSINFO_EHDR, -1)
        listed: set[tuple[int, str]] = set()
        for l_addr, name, _ in loader.link_map(self._read, self.r_debug):
            if name and l_addr != vdso:  # the program has no name; the vDSO is known
                listed.add((l_addr, _real(name)))
        known = {(m.bias, _real(m.path)): m for m in self.modules}
        loaded = []
        for l_addr, path in sorted(listed - known.keys()):
            module = self._make(loader.image_at_header(self._read, path, l_addr, l_addr))
            self.modules.append(module)
            loaded.append(module)
        permanent = self.modules[: self._permanent]
        unloaded = [m for key, m in known.items() if key not in listed and m not in permanent]
        for module in unloaded:
            self.modules.remove(module)
            module.is_valid = False
        return loaded, unloaded

    def _make(self, image: loader.MappedImage) -> Module:
        taken = {m.name for m in self.modules}
        name = "linux_vdso" if image.path == "[vdso]" else module_name(image.path, taken)
        return Module(self.pid, name, image.path, image.start, image.end, image.bias, image.build_id)

    def copy_for(self, pid: int, read: ReadMemory) -> ProcessModules:
        """The same mappings for a fork child ``pid``."""
        child = ProcessModules.__new__(ProcessModules)
        child.pid = pid
        child._read = read
        child._executable = self._executable
        child._mapping_path_at = self._mapping_path_at
        child.auxv = dict(self.auxv)
        child.dynamic = self.dynamic
        child.r_debug = self.r_debug
        child._permanent = self._permanent
        child.modules = [Module(pid, m.name, m.path, m.base, m.end, m.bias, m.build_id) for m in self.modules]
        return child

    def at(self, address: int) -> Module | None:
        for module in self.modules:
            if module.base <= address < module.end:
                return module
        return None

    def forget(self) -> list[Module]:
        """Every module, for UNLOAD events when the image is replaced (exec)."""
        gone, self.modules = self.modules, []
        for module in gone:
            module.is_valid = False
        return gone


def _real(path: str) -> str:
    return os.path.realpath(path) if path.startswith("/") else path
