"""Questions about code, answered per module and only when asked.

Strategy (PERF.md): a module costs nothing until a question needs it. Its ELF
image, separate debug file, symbol table, line table and CFI are each opened
on first use and kept. Addresses cross between the target's runtime view and
the files' link-time view through the module's load bias, in this module only.
The vDSO has no file: its image is copied out of the target once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from lindbg.engine.handles import Module

if TYPE_CHECKING:
    from lindbg.symbols.scopes import DebugInfo
from lindbg.errors import InvalidOperationError, LindbgError
from lindbg.symbols.cfi import CallFrameTable
from lindbg.symbols.debugfile import find_debug_file
from lindbg.symbols.elffile import ElfImage
from lindbg.symbols.inlines import InlinedCall, InlineTable
from lindbg.symbols.lines import LineTable, SourceLine
from lindbg.symbols.symtab import Symbol, SymbolTable

ReadMemory = Callable[[int, int], bytes]
_EMPTY = SymbolTable([])


class ModuleSymbols:
    """The files behind one module, opened lazily."""

    def __init__(self, module: Module, search_paths: Sequence[str], file_path: str) -> None:
        self.module = module
        self._search_paths = search_paths
        self._file_path = file_path

    @cached_property
    def image(self) -> ElfImage | None:
        try:
            return ElfImage(self._file_path)
        except LindbgError:
            return None

    @cached_property
    def debug_image(self) -> ElfImage | None:
        image = self.image
        if image is None:
            return None
        path = find_debug_file(image, self._search_paths)
        if path is None:
            return None
        try:
            return ElfImage(path)
        except LindbgError:
            return None

    @cached_property
    def symbols(self) -> SymbolTable:
        """The richest table: the debug file's .symtab (static functions included)
        when it has one, else the image's own .symtab/.dynsym."""
        debug, image = self.debug_image, self.image
        if debug is not None and debug.has_contents(".symtab"):
            return debug.symbols  # a full .symtab: a superset of the image's own tables
        tables = [i.symbols for i in (debug, image) if i is not None]
        if not tables:
            return _EMPTY
        return tables[0] if len(tables) == 1 else SymbolTable.merged(*tables)

    @cached_property
    def lines(self) -> LineTable | None:
        for image in (self.debug_image, self.image):
            if image is not None and image.has_dwarf:
                return LineTable(image.path)
        return None

    @cached_property
    def debug_info(self) -> DebugInfo | None:
        """Scopes, variables and types (pyelftools DIEs, one CU at a time)."""
        from lindbg.symbols.scopes import DebugInfo  # pyelftools DIEs: loaded on first use

        lines = self.lines
        return DebugInfo(lines.path, lines) if lines is not None else None

    @cached_property
    def inlines(self) -> InlineTable | None:
        lines = self.lines
        return InlineTable(lines.path, lines) if lines is not None else None

    @cached_property
    def frames(self) -> CallFrameTable | None:
        if self.image is None:
            return None
        debug = self.debug_image
        return CallFrameTable(self.image.path, debug.path if debug is not None else None)

    @property
    def state(self) -> str:
        """cdb's `lm` status word for what has been read so far."""
        if "symbols" not in self.__dict__:
            return "deferred"
        if self.lines is not None:
            return "dwarf symbols"
        image = self.debug_image or self.image
        if image is None or not len(self.symbols):
            return "no symbols"
        return "elf symbols" if image.has_section(".symtab") else "export symbols"


@dataclass(frozen=True, slots=True)
class Located:
    """Where a runtime address falls: module, symbol (if any) and offset."""

    module: Module
    symbol: Symbol | None
    offset: int

    def __str__(self) -> str:
        if self.symbol is None:
            return f"{self.module.name}+{self.offset:#x}"
        if self.offset:
            return f"{self.module.name}!{self.symbol.name}+{self.offset:#x}"
        return f"{self.module.name}!{self.symbol.name}"


class SymbolIndex:
    """Every module's symbols for one engine, keyed by module identity."""

    def __init__(
        self,
        reader: Callable[[int], ReadMemory | None] = lambda pid: None,
        image_file: Callable[[Module], str] = lambda module: module.path,
    ) -> None:
        #: The memory of a process by pid (the vDSO's image is read from it).
        self._reader = reader
        #: The local file holding a module's image (another machine's target fetches it).
        self._image_file = image_file
        self.search_paths: list[str] = []
        self._by_module: dict[tuple[int, int, str], ModuleSymbols] = {}
        self._vdso_files: dict[str, str] = {}

    def of(self, module: Module, read: ReadMemory | None = None) -> ModuleSymbols:
        key = (module.pid, module.base, module.path)
        found = self._by_module.get(key)
        if found is None:
            path = module.path
            read = read or self._reader(module.pid)
            if path == "[vdso]" and read is not None:
                path = self._vdso_copy(module, read)
            else:
                path = self._image_file(module)
            found = self._by_module[key] = ModuleSymbols(module, self.search_paths, path)
        return found

    def _vdso_copy(self, module: Module, read: ReadMemory) -> str:
        """The vDSO image written out once, so the ELF readers can open it."""
        key = module.build_id or f"{module.base:x}"
        path = self._vdso_files.get(key)
        if path is None:
            data = read(module.base, module.size)
            handle, path = tempfile.mkstemp(prefix="lindbg-vdso-", suffix=".so")
            with os.fdopen(handle, "wb") as f:
                f.write(data)
            self._vdso_files[key] = path
        return path

    def state_of(self, module: Module) -> str:
        """cdb's `lm` word for ``module`` without opening anything."""
        found = self._by_module.get((module.pid, module.base, module.path))
        return found.state if found is not None else "deferred"

    def set_search_paths(self, paths: list[str]) -> None:
        """New debug-file directories: every module looks again on its next question."""
        self.search_paths[:] = paths
        self._by_module.clear()

    def forget_module(self, module: Module) -> None:
        self._by_module.pop((module.pid, module.base, module.path), None)

    def close(self) -> None:
        for path in self._vdso_files.values():
            with contextlib.suppress(OSError):
                os.unlink(path)
        self._vdso_files.clear()
        self._by_module.clear()

    # ----------------------------------------------------------------- lookups

    def locate(
        self, modules: Sequence[Module], address: int, read: ReadMemory | None = None
    ) -> Located | None:
        module = next((m for m in modules if m.base <= address < m.end), None)
        if module is None:
            return None
        found = self.of(module, read).symbols.at(address - module.bias)
        if found is None:
            return Located(module, None, address - module.base)
        symbol, offset = found
        return Located(module, symbol, offset)

    def _lines_at(
        self, modules: Sequence[Module], address: int, read: ReadMemory | None
    ) -> tuple[Module, LineTable] | None:
        module = next((m for m in modules if m.base <= address < m.end), None)
        if module is None:
            return None
        lines = self.of(module, read).lines
        return (module, lines) if lines is not None else None

    def source_line(
        self, modules: Sequence[Module], address: int, read: ReadMemory | None = None
    ) -> SourceLine | None:
        found = self._lines_at(modules, address, read)
        if found is None:
            return None
        module, lines = found
        row = lines.line_at(address - module.bias)
        if row is None:
            return None
        return SourceLine(row.file, row.line, row.address + module.bias, row.is_stmt)

    def line_span(
        self, modules: Sequence[Module], address: int, read: ReadMemory | None = None
    ) -> tuple[SourceLine, int, int] | None:
        """``LineTable.line_span`` at runtime ``address``, in runtime addresses (None
        without line information there, or when the module's DWARF is unreadable)."""
        found = self._lines_at(modules, address, read)
        if found is None:
            return None
        module, lines = found
        try:
            span = lines.line_span(address - module.bias)
        except LindbgError:
            return None
        if span is None:
            return None
        row, low, high = span
        bias = module.bias
        return SourceLine(row.file, row.line, row.address + bias, row.is_stmt), low + bias, high + bias

    def inlined_at(
        self, modules: Sequence[Module], address: int, read: ReadMemory | None = None
    ) -> list[InlinedCall]:
        """The inlined calls at runtime ``address``, innermost first (runtime ``low``)."""
        module = next((m for m in modules if m.base <= address < m.end), None)
        if module is None:
            return []
        inlines = self.of(module, read).inlines
        if inlines is None:
            return []
        try:
            chain = inlines.inlined_at(address - module.bias)
        except LindbgError:
            return []
        return [dataclasses.replace(call, low=call.low + module.bias) for call in chain]

    def resolve_symbol(self, modules: Sequence[Module], module_name: str | None, name: str) -> list[int]:
        """Runtime addresses of ``name`` (cdb wildcards allowed) in one module or all."""
        targets = [m for m in modules if module_name is None or m.name.lower() == module_name.lower()]
        if module_name is not None and not targets:
            raise InvalidOperationError(
                f"Couldn't resolve error at '{module_name}!{name}': no module '{module_name}'"
            )
        addresses: list[int] = []
        wildcard = any(c in name for c in "*?")
        for module in targets:
            table = self.of(module).symbols
            found = table.match(name) if wildcard else table.lookup(name)
            addresses.extend(s.address + module.bias for s in found)
            if addresses and module_name is None and not wildcard:
                break  # the first module that has it, in load order (the program first)
        return addresses

    def resolve_line(self, modules: Sequence[Module], file: str, line: int) -> list[int]:
        """Runtime addresses of a source line, in every module whose DWARF knows the file."""
        addresses: list[int] = []
        for module in modules:
            symbols = self.of(module)
            lines = symbols.lines
            if lines is None:
                continue
            for address in lines.addresses_of(file, line):
                addresses.append(_past_prologue(symbols, lines, address) + module.bias)
        return addresses


def _past_prologue(symbols: ModuleSymbols, lines: LineTable, address: int) -> int:
    """A line's address that is a function's first instruction becomes the start of
    the function's next line, the end of its prologue (gdb's choice for ``break
    file:line`` on the line that opens a function): the arguments are in place there."""
    found = symbols.symbols.at(address)
    if found is None or found[1] != 0 or found[0].kind != "function":
        return address
    try:
        span = lines.line_span(address)
    except LindbgError:
        return address
    if span is None:
        return address
    _row, _low, high = span
    return high if lines.line_at(high) is not None else address
