"""Variables of a stopped thread's frames as typed Values.

The engine finds a frame's registers (the stack walk: every register in frame 0,
only the callee-preserved ones further out, as the unwinder recovered them), the
DWARF scope at the frame's pc, and evaluates each variable's location there
(``lindbg.symbols.dwarf_expr``). Whatever cannot be recovered becomes an
unavailable Value, never a guessed number: a caller frame's rax is not what that
frame last saw, so a variable that lived there reads ``<value unavailable>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lindbg.engine.handles import Module
from lindbg.engine.symbol_index import SymbolIndex
from lindbg.errors import InvalidOperationError, LindbgError, MemoryAccessError
from lindbg.symbols.cfi import DWARF_REGS
from lindbg.symbols.dwarf_expr import (
    CompositeLocation,
    ImplicitLocation,
    ImplicitPointerLocation,
    Location,
    MemoryLocation,
    RegisterLocation,
    Unavailable,
    UnavailableLocation,
    ValueLocation,
    evaluate_location,
    evaluate_value,
    frame_base_value,
    register_of,
)
from lindbg.symbols.scopes import DebugInfo, Scope, Variable, offset_size
from lindbg.symbols.stackwalk import RawFrame
from lindbg.symbols.types import Type
from lindbg.symbols.values import ReadMemory, Symbolize, Value

__all__ = ["FrameContext", "FrameInspector", "FrameVariables", "FrameView", "value_of"]

_MASK64 = (1 << 64) - 1
#: DWARF numbers of xmm0-xmm15.
_XMM_FIRST, _XMM_LAST = 17, 32


@dataclass(frozen=True, slots=True)
class FrameVariables:
    """What ``dv`` shows for one frame: its scope, and each variable with its value."""

    function: str | None
    entries: list[tuple[str, Value]]  # (kind "param"/"local", value)


class FrameContext:
    """One frame, as DWARF expressions see it (``dwarf_expr.ExpressionContext``)."""

    def __init__(
        self,
        registers: Mapping[int, int],
        cfa: int | None,
        read: ReadMemory,
        bias: int,
        info: DebugInfo,
        scope: Scope,
        wide_register: Callable[[int], bytes | None] | None = None,
        entry_value: Callable[[bytes], int] | None = None,
        symbolize: Symbolize | None = None,
    ) -> None:
        self.registers = registers
        self.cfa = cfa
        self.read = read
        self.bias = bias
        self.info = info
        self.scope = scope
        self._wide_register = wide_register
        self._entry_value = entry_value
        #: names addresses in values' gdb text (``0x401136 <compare>``)
        self.symbolize = symbolize
        self._frame_base: int | None = None

    def register(self, regno: int) -> int:
        value = self.registers.get(regno)
        if value is None:
            if _XMM_FIRST <= regno <= _XMM_LAST and self._wide_register is not None:
                data = self._wide_register(regno)
                if data is not None:
                    return int.from_bytes(data[:8], "little")
            raise Unavailable(f"{DWARF_REGS.get(regno, f'register {regno}')} is not saved in this frame")
        return value

    def register_bytes(self, regno: int, size: int) -> bytes:
        """The bytes of a register holding a whole value (xmm registers: up to 16)."""
        if _XMM_FIRST <= regno <= _XMM_LAST:
            data = self._wide_register(regno) if self._wide_register is not None else None
            if data is None:
                raise Unavailable(f"xmm{regno - _XMM_FIRST} is not saved in this frame")
            return data[:size]
        return (self.register(regno) & _MASK64).to_bytes(8, "little")[:size].ljust(size, b"\0")

    def read_memory(self, address: int, size: int) -> bytes:
        return self.read(address, size)  # a ReadMemory raises on what it cannot read

    def frame_base(self) -> int:
        if self._frame_base is None:
            attr = self.scope.frame_base()
            if attr is None:
                raise Unavailable("the function has no frame base")
            expression = bytes(attr.value) if isinstance(attr.value, list) else None
            if expression is None:
                raise Unavailable("the frame base is a location list")
            self._frame_base = frame_base_value(expression, self)
        return self._frame_base

    def call_frame_cfa(self) -> int:
        if self.cfa is None:
            raise Unavailable("the frame's CFA is unknown (no CFI)")
        return self.cfa

    def entry_value(self, expression: bytes) -> int:
        if self._entry_value is None:
            raise Unavailable("the value on entry is not recoverable")
        return self._entry_value(expression)

    def tls_address(self, offset: int) -> int:
        raise Unavailable("thread-local storage is not supported yet")

    def address_at_index(self, index: int) -> int:
        return int(self.info.dwarf.get_addr(self.scope.cu, index)) + self.bias

    def relocate(self, address: int) -> int:
        return (address + self.bias) & _MASK64

    def base_type(self, die_offset: int) -> tuple[int, int]:
        die = self.scope.cu.get_DIE_from_refaddr(self.scope.cu.cu_offset + die_offset)
        size = die.attributes.get("DW_AT_byte_size")
        encoding = die.attributes.get("DW_AT_encoding")
        return (int(size.value) if size else 8, int(encoding.value) if encoding else 7)


def value_of(variable: Variable, context: FrameContext, link_pc: int) -> Value:
    """The Value of ``variable`` in the frame of ``context`` at link-time ``link_pc``."""
    info = context.info
    var_type = info.type_of(variable)
    constant = info.constant_value(variable)
    if constant is not None:
        if isinstance(constant, int):
            size = var_type.size or 8
            data = (constant & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        else:
            data = constant
        return Value.from_bytes(var_type, data, context.read, name=variable.name, symbolize=context.symbolize)
    expression = info.location_expression(variable, link_pc)
    if expression is None:
        return Value.unavailable(var_type, "optimized out", name=variable.name)
    version = variable.die.cu.header.version if variable.die is not None else 5
    size = offset_size(variable.die.cu) if variable.die is not None else 4
    location = evaluate_location(expression, context, offset_size=size, version=version)
    return location_value(location, var_type, context, variable.name)


def location_value(location: Location, var_type: Type, context: FrameContext, name: str) -> Value:
    """A Value of ``var_type`` stored where ``location`` says."""
    size = var_type.size or 0
    if isinstance(location, MemoryLocation):
        return Value.from_memory(
            var_type, location.address, context.read, name=name, symbolize=context.symbolize
        )
    if isinstance(location, UnavailableLocation):
        return Value.unavailable(var_type, location.reason, name=name)
    if isinstance(location, ImplicitPointerLocation):
        return Value.unavailable(var_type, "an implicit pointer", name=name)
    try:
        if isinstance(location, RegisterLocation):
            data = context.register_bytes(location.regno, size)
            register = DWARF_REGS.get(location.regno)
            if _XMM_FIRST <= location.regno <= _XMM_LAST:
                register = f"xmm{location.regno - _XMM_FIRST}"
            return Value.from_bytes(
                var_type, data, context.read, name=name, register=register, symbolize=context.symbolize
            )
        if isinstance(location, ValueLocation):
            data = (location.value & _MASK64).to_bytes(8, "little")[:size].ljust(size, b"\0")
            return Value.from_bytes(var_type, data, context.read, name=name, symbolize=context.symbolize)
        if isinstance(location, ImplicitLocation):
            return Value.from_bytes(
                var_type, location.data[:size].ljust(size, b"\0"), context.read, name=name
            )
        if isinstance(location, CompositeLocation):
            return _composite(location, var_type, context, name)
    except Unavailable as gone:
        return Value.unavailable(var_type, getattr(gone, "reason", str(gone)), name=name)
    return Value.unavailable(var_type, "an unsupported location", name=name)


def _composite(location: CompositeLocation, var_type: Type, context: FrameContext, name: str) -> Value:
    size = var_type.size or 0
    data = bytearray(size)
    valid = bytearray(size)
    bit = 0
    for piece in location.pieces:
        count = (piece.size_bits + 7) // 8
        start = bit // 8
        part: bytes | None
        where: Any = piece.location
        try:
            if isinstance(where, MemoryLocation):
                part = context.read_memory(where.address + piece.offset_bits // 8, count)
            elif isinstance(where, RegisterLocation):
                part = context.register_bytes(where.regno, 16 if where.regno >= _XMM_FIRST else 8)
                part = part[piece.offset_bits // 8 :][:count]
            elif isinstance(where, ValueLocation):
                part = (where.value & _MASK64).to_bytes(8, "little")[:count]
            elif isinstance(where, ImplicitLocation):
                part = where.data[:count]
            else:
                part = None
        except (Unavailable, MemoryAccessError):
            part = None
        end = min(size, start + count)
        if part is not None and end > start:
            data[start:end] = part[: end - start].ljust(end - start, b"\0")
            valid[start:end] = b"\1" * (end - start)
        bit += piece.size_bits
    if not any(valid):
        return Value.unavailable(var_type, "optimized out", name=name)
    return Value.from_bytes(
        var_type, bytes(data), context.read, name=name, valid=bytes(valid), symbolize=context.symbolize
    )


@dataclass(frozen=True, slots=True)
class FrameView:
    """One numbered frame (as ``k`` numbers them, inline frames counted) and its scope."""

    number: int
    raw: RawFrame
    raw_index: int
    depth: int  # 0: the innermost inlined call at the pc (or the function itself)
    module: Module | None
    info: DebugInfo | None
    scope: Scope | None
    link_pc: int


#: A module with more units than this is not searched by name for ``x``'s values.
_MAX_NAME_SEARCH = 256


@dataclass(frozen=True, slots=True)
class SymbolDescription:
    """``x /t``'s view of a symbol: ``kind`` "function", "data" or "unknown"."""

    kind: str
    type: Type | None  # a function's return type, a data symbol's type
    value: Value | None  # a data symbol's value
    parameters: list[Type] | None  # a function's parameter types


class FrameInspector:
    """Source-level views of one stopped thread's frames, made for one question and
    dropped (they hold the registers of this stop)."""

    def __init__(
        self,
        raw: list[RawFrame],
        modules: Sequence[Module],
        symbols: SymbolIndex,
        read: ReadMemory,
        register: Callable[[str], int],
        symbolize: Symbolize | None = None,
        hidden: int = 0,
    ) -> None:
        self._raw = raw
        self._symbolize = symbolize
        #: innermost inline frames presented as their call site (a `t` stopped there)
        self._hidden = hidden
        self._modules = modules
        self._symbols = symbols
        self._read = read
        self._register = register
        self._views: list[FrameView] = []
        self._next_raw = 0

    def frames(self) -> list[FrameView]:
        """Every frame (reads the DWARF of every module on the stack)."""
        self._extend(len(self._raw))
        return self._views[self._hidden :]

    def frame(self, number: int) -> FrameView:
        """Frame ``number``; only the frames up to it are looked at (a ``dv`` in frame
        0 does not open libc's DWARF for the frames below)."""
        index = number + self._hidden
        while len(self._views) <= index and self._next_raw < len(self._raw):
            self._extend(self._next_raw + 1)
        if not number >= 0 or index >= len(self._views):
            total = len(self.frames())
            raise InvalidOperationError(f"frame {number:x} does not exist (the stack has {total:x} frames)")
        return self._views[index]

    def _extend(self, raw_count: int) -> None:
        """Turn raw frames up to ``raw_count`` into views (inlined calls counted)."""
        while self._next_raw < min(raw_count, len(self._raw)):
            index = self._next_raw
            item = self._raw[index]
            self._next_raw += 1
            lookup = item.pc if index == 0 or item.how == "signal" else item.pc - 1
            module = next((m for m in self._modules if m.base <= lookup < m.end), None)
            symbols = self._symbols.of(module, self._read) if module is not None else None
            info = symbols.debug_info if symbols is not None else None
            link_pc = lookup - module.bias if module is not None else lookup
            scope = info.scope_at(link_pc) if info is not None else None
            inlined = len(scope.frames()) - 1 if scope is not None else 0
            for depth in range(inlined + 1):
                self._views.append(
                    FrameView(len(self._views), item, index, depth, module, info, scope, link_pc)
                )

    def context(self, view: FrameView) -> FrameContext:
        if view.info is None or view.scope is None or view.module is None:
            raise InvalidOperationError(f"frame {view.number:x} has no DWARF information")
        registers = view.raw.trusted_registers(view.raw_index)
        wide = self._wide_register if view.raw_index == 0 else None
        return FrameContext(
            registers,
            view.raw.cfa,
            self._read,
            view.module.bias,
            view.info,
            view.scope,
            wide,
            lambda expression: self._entry_value(view, expression),
            self._symbolize,
        )

    def _entry_value(self, view: FrameView, expression: bytes) -> int:
        """DW_OP_entry_value of a register: what the caller passed, from the call
        site's ``DW_AT_call_value`` evaluated in the caller's frame."""
        regno = register_of(expression)
        if regno is None:
            raise Unavailable("an entry value that is not a register")
        self._extend(view.raw_index + 2)
        caller = next((v for v in self._views if v.raw_index == view.raw_index + 1 and v.depth == 0), None)
        if caller is None or caller.scope is None or caller.info is None or caller.module is None:
            raise Unavailable("the caller has no DWARF to recover the value on entry")
        return_pc = caller.raw.pc - caller.module.bias
        value = caller.info.call_site_value(caller.scope.function, return_pc, regno)
        if value is None:
            raise Unavailable("the call site did not record the value")
        return evaluate_value(value, self.context(caller))

    def _wide_register(self, regno: int) -> bytes | None:
        try:
            value = self._register(f"xmm{regno - _XMM_FIRST}")
        except LindbgError:
            return None
        return (value & ((1 << 128) - 1)).to_bytes(16, "little")

    def variables(self, number: int) -> FrameVariables:
        """Parameters then locals of frame ``number`` (``dv``)."""
        view = self.frame(number)
        if view.scope is None or view.info is None:
            raise InvalidOperationError(f"frame {number:x} has no DWARF information (no symbols for locals)")
        context = self.context(view)
        entries = [
            (variable.kind, value_of(variable, context, view.link_pc))
            for variable in view.scope.variables(view.depth)
        ]
        return FrameVariables(view.scope.function_name(view.depth), entries)

    def lookup(self, name: str, number: int) -> Value | None:
        """``name`` as C code at frame ``number`` sees it: a local or parameter, then a
        global of the frame's module, then of the other modules."""
        view = self.frame(number)
        if view.scope is not None and view.info is not None:
            context = self.context(view)
            for variable in view.scope.variables(view.depth):
                if variable.name == name:
                    return value_of(variable, context, view.link_pc)
        for module in self._ordered_modules(view.module):
            info = self._symbols.of(module, self._read).debug_info
            if info is None:
                continue
            hint = view.scope.cu if view.scope is not None and module is view.module else None
            found = info.find_global(name, hint)
            if found is not None:
                return self._global_value(found, module, info)
        return None

    def _global_value(self, variable: Variable, module: Module, info: DebugInfo) -> Value:
        # a global's location is an expression (DW_OP_addr): no pc, no frame
        return value_of(variable, _GlobalContext(self._read, module.bias, info, self._symbolize), 0)

    def describe(self, name: str, address: int) -> SymbolDescription:
        """What DWARF says of symbol ``name`` at runtime ``address`` (``x /t``): a
        function's return and parameter types, or a data symbol's typed value. Data
        symbols are looked up by name only in modules of at most ``_MAX_NAME_SEARCH``
        units (a by-name search reads every unit's top level)."""
        module = next((m for m in self._modules if m.base <= address < m.end), None)
        info = self._symbols.of(module, self._read).debug_info if module is not None else None
        if module is None or info is None:
            return SymbolDescription("unknown", None, None, None)
        function = info.function_at(address - module.bias)
        if function is not None and info.ranges_of(function)[0][0] == address - module.bias:
            parameters = [info.type_of(p) for p in info.parameters_of(function)]
            returns = info.types.type_of(info.origin_of(function))
            return SymbolDescription("function", returns, None, parameters)
        if info.unit_count <= _MAX_NAME_SEARCH:
            variable = info.find_global(name)
            if variable is not None:
                return SymbolDescription(
                    "data", info.type_of(variable), self._global_value(variable, module, info), None
                )
        return SymbolDescription("unknown", None, None, None)

    def find_type(self, name: str, number: int = 0) -> Type | None:
        """A type by name: the frame's CU first, then its module, then the others."""
        try:
            view: FrameView | None = self.frame(number)
        except InvalidOperationError:
            view = None
        current = view.module if view is not None else None
        for module in self._ordered_modules(current):
            info = self._symbols.of(module, self._read).debug_info
            if info is None:
                continue
            hint = (
                view.scope.cu if view is not None and view.scope is not None and module is current else None
            )
            found = info.types.find_type(name, hint)
            if found is not None:
                return found
        return None

    def registers(self, number: int) -> dict[str, int]:
        """The registers frame ``number`` has, by name (only those the walk trusts)."""
        view = self.frame(number)
        trusted = view.raw.trusted_registers(view.raw_index)
        return {DWARF_REGS[regno]: value for regno, value in trusted.items() if regno in DWARF_REGS}

    @property
    def read(self) -> ReadMemory:
        return self._read

    def register_of(self, name: str, number: int) -> int | None:
        """Register ``name`` as frame ``number`` has it (None: not recovered there)."""
        from lindbg.symbols.cfi import DWARF_REGS

        view = self.frame(number)
        regno = next((r for r, n in DWARF_REGS.items() if n == name.lower()), None)
        if view.raw_index == 0 or regno is None:
            try:
                return self._register(name)
            except LindbgError:
                return None
        return view.raw.trusted_registers(view.raw_index).get(regno)

    def evaluate(self, text: str, number: int) -> Value:
        """A C/C++ expression at frame ``number`` (``??``, ``dx``, ``client.evaluate``)."""
        from lindbg.symbols.cexpr import evaluate_text

        self.frame(number)  # a frame that does not exist is an error, even for `1+1`
        return evaluate_text(text, _FrameScope(self, number))

    def _ordered_modules(self, first: Module | None) -> list[Module]:
        rest = [m for m in self._modules if m is not first]
        return [first, *rest] if first is not None else rest


class _GlobalContext(FrameContext):
    """Globals need no frame: only DW_OP_addr (relocated) and constants."""

    def __init__(self, read: ReadMemory, bias: int, info: DebugInfo, symbolize: Symbolize | None) -> None:
        self.registers = {}
        self.symbolize = symbolize
        self.cfa = None
        self.read = read
        self.bias = bias
        self.info = info
        self._wide_register = None
        self._entry_value = None
        self._frame_base = None

    def frame_base(self) -> int:
        raise Unavailable("a global has no frame")

    def address_at_index(self, index: int) -> int:
        raise Unavailable("indexed addresses need the variable's unit")


class _FrameScope:
    """A frame as the C expression evaluator sees it (``cexpr.CScope``)."""

    def __init__(self, inspector: FrameInspector, number: int) -> None:
        self._inspector = inspector
        self._number = number

    def variable(self, name: str) -> Value | None:
        return self._inspector.lookup(name, self._number)

    def type_named(self, name: str) -> Type | None:
        return self._inspector.find_type(name, self._number)

    def register(self, name: str) -> int | None:
        return self._inspector.register_of(name, self._number)

    def read(self) -> ReadMemory:
        return self._inspector.read
