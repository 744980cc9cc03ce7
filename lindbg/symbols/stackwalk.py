"""Unwinding a stopped thread's stack: CFI first, the frame-pointer chain as a fallback.

``walk(regs, space)`` starts from a thread's registers and returns its frames,
innermost first. For each frame it asks ``space.table_for(pc)`` for the CFI of the
module holding the pc and looks up the row at the link-time pc (``pc - 1`` for a
caller frame, whose pc is a return address that may lie past the end of its
function, except right after a signal frame, whose caller was interrupted *at* its
pc; libgcc and gdb do the same). The row's rules give the caller's registers; a
signal frame (``__restore_rt``, CIE augmentation "S") restores all of them from the
ucontext on the stack through its expression rules. Without a row, the
frame-pointer chain is followed (``[rbp]`` is the caller's rbp, ``[rbp+8]`` the
return address) when it looks sane.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from lindbg.errors import MemoryAccessError
from lindbg.symbols.cfi import DWARF_REGS, CallFrameTable, CfiError, FrameRow

__all__ = ["DWARF_REGS", "AddressSpace", "RawFrame", "evaluate_expression", "walk"]

_MASK64 = (1 << 64) - 1
_RSP = 7
_RBP = 6
_RIP = 16
_NAME_TO_REGNO = {name: regno for regno, name in DWARF_REGS.items()}
#: DWARF numbers of the registers a callee preserves (System V x86-64 ABI), and rsp, rip.
_PRESERVED = frozenset({3, 6, 7, 12, 13, 14, 15, 16})


@dataclass(frozen=True)
class RawFrame:
    """One frame of a walk.

    ``pc`` is the current rip for frame 0 and the return address for a caller;
    ``sp`` is the frame's stack pointer at that pc (cdb's Child-SP);
    ``return_address`` is the next frame's pc (0 for the last frame). ``how`` says
    how the frame's registers were found: ``"context"`` (frame 0), ``"cfi"``,
    ``"frame-pointer"`` or ``"signal"`` (restored from a signal frame's ucontext:
    ``pc`` is the interrupted instruction, not a return address, so it is looked
    up as it is rather than as ``pc - 1``).
    """

    pc: int
    sp: int
    return_address: int
    how: str
    #: The frame's registers by DWARF number as the walk knows them (frame 0: all of
    #: them; callers: what CFI recovered plus values carried over unchanged, which for
    #: caller-saved registers may be stale: see ``trusted_registers``).
    registers: Mapping[int, int] = field(default_factory=dict, compare=False, repr=False)
    #: The canonical frame address of this frame (from its CFI row), None without CFI.
    cfa: int | None = None

    def trusted_registers(self, index: int) -> dict[int, int]:
        """The registers whose values are right in frame ``index`` of its walk:
        all in frame 0 and after a signal frame; in a caller frame only those the
        ABI has the callee preserve (rbx, rbp, r12-r15) and rsp and rip."""
        if index == 0 or self.how == "signal":
            return dict(self.registers)
        return {regno: value for regno, value in self.registers.items() if regno in _PRESERVED}


class AddressSpace(Protocol):
    """What the walker needs from a target: memory and the CFI of its modules."""

    def read_u64(self, address: int) -> int:
        """The 8 bytes at ``address``; raises MemoryAccessError when unreadable."""
        ...

    def table_for(self, pc: int) -> tuple[CallFrameTable, int] | None:
        """The CFI table of the module containing runtime ``pc`` and its load bias."""
        ...


class _Unwindable(Exception):
    """The caller's registers cannot be computed (missing register, bad expression)."""


def evaluate_expression(
    expression: bytes,
    registers: Mapping[int, int],
    read_u64: Any,
    initial: list[int] | None = None,
) -> int:
    """Evaluate a DWARF expression as CFI uses it; the value on top of the stack.

    ``registers`` maps DWARF register numbers to values, ``read_u64`` reads target
    memory, ``initial`` is pushed first (the CFA, for DW_CFA_expression rules).
    Raises ``ValueError`` for a malformed or unsupported expression and
    ``MemoryAccessError`` when a DW_OP_deref reads unreadable memory.
    """

    # the full evaluator, loaded when a CFI rule first needs it (most rows need none)
    from lindbg.symbols.dwarf_expr import ExpressionError, RegistersContext, Unavailable, evaluate_value

    def read_memory(address: int, size: int) -> bytes:
        return int(read_u64(address)).to_bytes(8, "little")[:size]

    try:
        return evaluate_value(expression, RegistersContext(registers, read_memory), initial=initial or ())
    except (ExpressionError, Unavailable) as error:
        raise ValueError(str(error)) from error


def _row_for(space: AddressSpace, pc: int) -> FrameRow | None:
    found = space.table_for(pc)
    if found is None:
        return None
    table, bias = found
    try:
        return table.row_at((pc - bias) & _MASK64)
    except CfiError:
        return None


def _unwind_cfi(row: FrameRow, registers: dict[int, int], space: AddressSpace) -> tuple[dict[int, int], int]:
    """The caller's registers and the CFA under ``row``."""
    read = space.read_u64
    try:
        if row.cfa[0] == "expr":
            cfa = evaluate_expression(row.cfa[1], registers, read)  # type: ignore[arg-type]
        else:
            regno = _NAME_TO_REGNO.get(row.cfa[0])
            if regno is None or regno not in registers:
                raise _Unwindable(f"CFA register {row.cfa[0]} is unknown")
            cfa = (registers[regno] + row.cfa[1]) & _MASK64  # type: ignore[operator]
        caller = dict(registers)
        caller[_RSP] = cfa
        caller.pop(_RIP, None)  # the return address must come from a rule
        for regno, rule in row.rules.items():
            kind = rule[0]
            if kind == "offset":
                caller[regno] = read((cfa + rule[1]) & _MASK64)
            elif kind == "val_offset":
                caller[regno] = (cfa + rule[1]) & _MASK64
            elif kind == "register":
                if rule[1] not in registers:
                    raise _Unwindable(f"register {rule[1]} is unknown")
                caller[regno] = registers[rule[1]]
            elif kind == "same":
                if regno in registers:
                    caller[regno] = registers[regno]
            elif kind == "undefined":
                caller.pop(regno, None)
            elif kind == "expr":
                caller[regno] = read(evaluate_expression(rule[1], registers, read, [cfa]))
            elif kind == "val_expr":
                caller[regno] = evaluate_expression(rule[1], registers, read, [cfa])
    except ValueError as error:
        raise _Unwindable(str(error)) from error
    if row.return_register != _RIP:
        if row.return_register in caller:
            caller[_RIP] = caller[row.return_register]
        else:
            caller.pop(_RIP, None)
    return caller, cfa


def _cfa_only(row: FrameRow, registers: dict[int, int], space: AddressSpace) -> int | None:
    """The CFA of the outermost frame (its return-address rule is undefined)."""
    try:
        return _unwind_cfi(row, registers, space)[1]
    except (_Unwindable, MemoryAccessError):
        return None


def _unwind_frame_pointer(registers: dict[int, int], space: AddressSpace) -> dict[int, int]:
    """The caller's registers from the rbp chain; raises _Unwindable when it looks wrong."""
    rbp = registers.get(_RBP)
    sp = registers.get(_RSP)
    if rbp is None or sp is None or rbp == 0 or rbp & 7 or rbp < sp:
        raise _Unwindable("no usable frame pointer")
    saved_rbp = space.read_u64(rbp)
    return_address = space.read_u64(rbp + 8)
    caller = dict(registers)
    caller[_RBP] = saved_rbp
    caller[_RSP] = rbp + 16
    caller[_RIP] = return_address
    return caller


def walk(regs: Mapping[str, int], space: AddressSpace, max_frames: int = 256) -> list[RawFrame]:
    """Unwind from the registers of a stopped thread (rip, rsp, rbp, rbx, r12-r15 and
    the rest); the frames, innermost first.

    Uses CFI rows (the row at ``pc - 1`` for caller frames, except after a signal
    frame), restores every register from the ucontext at a signal frame, and falls
    back to the frame-pointer chain where a module has no CFI for the pc. Stops at a
    zero return address, an undefined return-address rule (the outermost frame,
    e.g. ``_start``), an unreadable stack, a caller whose stack pointer is not above
    its callee's (except across a signal frame), a repeated frame, or
    ``max_frames``.
    """
    registers = {_NAME_TO_REGNO[name]: value for name, value in regs.items() if name in _NAME_TO_REGNO}
    if _RIP not in registers or _RSP not in registers:
        raise ValueError("walk needs at least rip and rsp")
    frames: list[RawFrame] = []
    how = "context"
    exact_pc = True  # frame 0 and the frame a signal interrupted: pc is not a return address
    seen: set[tuple[int, int]] = set()
    while len(frames) < max_frames:
        pc, sp = registers[_RIP], registers[_RSP]
        seen.add((pc, sp))
        caller: dict[int, int] | None = None
        cfa: int | None = None
        next_how = "cfi"
        after_signal = False
        row = _row_for(space, pc if exact_pc else pc - 1)
        try:
            if row is not None:
                ra_rule = row.rules.get(row.return_register)
                if ra_rule is not None and ra_rule[0] == "undefined":
                    caller = None  # the outermost frame
                else:
                    caller, cfa = _unwind_cfi(row, registers, space)
                    after_signal = row.signal_frame
                    if after_signal:
                        next_how = "signal"
            elif _is_sigreturn_trampoline(space, pc):
                caller = _unwind_sigreturn_trampoline(registers, space)
                after_signal = True
                next_how = "signal"
            elif how == "context" and space.table_for(pc) is None:
                caller = _unwind_wild_call(registers, space)
                if caller is None:
                    caller = _unwind_frame_pointer(registers, space)
                    next_how = "frame-pointer"
            else:
                caller = _unwind_frame_pointer(registers, space)
                next_how = "frame-pointer"
        except (_Unwindable, MemoryAccessError):
            caller = None
        if caller is not None:
            return_address = caller.get(_RIP, 0)
            caller_sp = caller.get(_RSP, 0)
            if (
                return_address == 0
                or (not after_signal and caller_sp <= sp)
                or (return_address, caller_sp) in seen
            ):
                caller = None
        if cfa is None and row is not None and caller is None:
            cfa = _cfa_only(row, registers, space)
        frames.append(RawFrame(pc, sp, caller[_RIP] if caller is not None else 0, how, registers, cfa))
        if caller is None:
            break
        registers = caller
        how = next_how
        exact_pc = after_signal
    return frames


# mov $15, %rax; syscall (rt_sigreturn): the x86-64 sa_restorer of glibc, musl and the kernel's vDSO
_SIGRETURN_FIRST8 = int.from_bytes(bytes([0x48, 0xC7, 0xC0, 0x0F, 0x00, 0x00, 0x00, 0x0F]), "little")
_SIGRETURN_LAST = 0x05
#: DWARF numbers of ucontext_t.uc_mcontext.gregs[0..16]:
#: r8 ... r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip
_GREGS_DWARF = (8, 9, 10, 11, 12, 13, 14, 15, 5, 4, 6, 3, 1, 0, 2, 7, 16)
_MCONTEXT_OFFSET = 40  # uc_flags, uc_link, uc_stack


def _is_sigreturn_trampoline(space: AddressSpace, pc: int) -> bool:
    """Whether ``pc`` is the first byte of a signal-return trampoline (for one with no
    CFI: gdb recognises it by its code the same way)."""
    try:
        return space.read_u64(pc) == _SIGRETURN_FIRST8 and space.read_u64(pc + 1) >> 56 == _SIGRETURN_LAST
    except MemoryAccessError:
        return False


def _unwind_sigreturn_trampoline(registers: dict[int, int], space: AddressSpace) -> dict[int, int]:
    """Every register of the interrupted code, from the ucontext at rsp."""
    base = registers[_RSP] + _MCONTEXT_OFFSET
    caller = dict(registers)
    for index, regno in enumerate(_GREGS_DWARF):
        caller[regno] = space.read_u64(base + 8 * index)
    return caller


def _unwind_wild_call(registers: dict[int, int], space: AddressSpace) -> dict[int, int] | None:
    """Frame 0's pc is in no module (a call through a bad pointer): if ``[rsp]`` is a
    return address into a module with CFI, the call has just happened."""
    sp = registers[_RSP]
    try:
        return_address = space.read_u64(sp)
    except MemoryAccessError:
        return None
    if return_address == 0 or _row_for(space, return_address - 1) is None:
        return None
    caller = dict(registers)
    caller[_RIP] = return_address
    caller[_RSP] = sp + 8
    return caller
