"""x86-64 (Linux) register layout, the breakpoint instruction and debug registers.

``UserRegs`` mirrors the kernel's ``struct user_regs_struct`` (what
PTRACE_GETREGS fills), field for field, so one ctypes buffer is read and
written by ptrace and read by name by the engine without copying.
"""

from __future__ import annotations

import ctypes
import enum

# NT_X86_XSTATE, the regset holding AVX state (PTRACE_GETREGSET); callers name it x86_64.NT_X86_XSTATE.
from lindbg.formats.elfdefs import NT_X86_XSTATE as NT_X86_XSTATE

#: The software breakpoint instruction (int3) and its length.
BREAKPOINT_INSTRUCTION = b"\xcc"
BREAKPOINT_LENGTH = 1

#: General registers in ``struct user_regs_struct`` order.
GENERAL_REGISTERS: tuple[str, ...] = (
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
    "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags",
    "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
)  # fmt: skip


class UserRegs(ctypes.Structure):
    """``struct user_regs_struct`` of <sys/user.h> (27 unsigned 64-bit fields)."""

    _fields_ = [(name, ctypes.c_uint64) for name in GENERAL_REGISTERS]


#: Aliases accepted wherever a register is named.
REGISTER_ALIASES: dict[str, str] = {"efl": "eflags", "rflags": "eflags", "pc": "rip", "sp": "rsp"}

#: Sub-registers: name -> (full register, bit shift, bit width).
SUB_REGISTERS: dict[str, tuple[str, int, int]] = {}
for _full, _e, _x, _l, _h in (
    ("rax", "eax", "ax", "al", "ah"), ("rbx", "ebx", "bx", "bl", "bh"),
    ("rcx", "ecx", "cx", "cl", "ch"), ("rdx", "edx", "dx", "dl", "dh"),
):  # fmt: skip
    SUB_REGISTERS.update({_e: (_full, 0, 32), _x: (_full, 0, 16), _l: (_full, 0, 8), _h: (_full, 8, 8)})
for _full, _e, _x, _l in (
    ("rsi", "esi", "si", "sil"), ("rdi", "edi", "di", "dil"),
    ("rbp", "ebp", "bp", "bpl"), ("rsp", "esp", "sp16", "spl"),
):  # fmt: skip
    SUB_REGISTERS.update({_e: (_full, 0, 32), _x: (_full, 0, 16), _l: (_full, 0, 8)})
for _n in range(8, 16):
    SUB_REGISTERS.update(
        {f"r{_n}d": (f"r{_n}", 0, 32), f"r{_n}w": (f"r{_n}", 0, 16), f"r{_n}b": (f"r{_n}", 0, 8)}
    )

#: eflags bits by their cdb flag names.
FLAG_BITS: dict[str, int] = {
    "cf": 0, "pf": 2, "af": 4, "zf": 6, "sf": 7, "tf": 8, "if": 9, "df": 10, "of": 11,
}  # fmt: skip
EFLAGS_RF = 1 << 16
EFLAGS_TF = 1 << 8


class FpRegs(ctypes.Structure):
    """``struct user_fpregs_struct`` (the FXSAVE area, 512 bytes)."""

    _fields_ = [
        ("cwd", ctypes.c_uint16),
        ("swd", ctypes.c_uint16),
        ("ftw", ctypes.c_uint16),
        ("fop", ctypes.c_uint16),
        ("rip", ctypes.c_uint64),
        ("rdp", ctypes.c_uint64),
        ("mxcsr", ctypes.c_uint32),
        ("mxcr_mask", ctypes.c_uint32),
        ("st_space", ctypes.c_uint32 * 32),
        ("xmm_space", ctypes.c_uint32 * 64),
        ("padding", ctypes.c_uint32 * 24),
    ]


#: offsetof(struct user, u_debugreg): PTRACE_PEEKUSER/POKEUSER offset of DR0.
DEBUGREG_OFFSET = 848
#: Offset of the YMM upper halves inside the XSAVE area (standard format).
XSAVE_YMM_HI_OFFSET = 576


class WatchKind(enum.IntEnum):
    """Debug register R/W field values (DR7 bits 16+4n)."""

    EXECUTE = 0b00
    WRITE = 0b01
    READ_WRITE = 0b11


_LEN_BITS = {1: 0b00, 2: 0b01, 8: 0b10, 4: 0b11}
DEBUG_REGISTER_SLOTS = 4


def debugreg_offset(index: int) -> int:
    """PTRACE_POKEUSER offset of debug register DR<index>."""
    return DEBUGREG_OFFSET + 8 * index


def dr7_enable(dr7: int, slot: int, kind: WatchKind, size: int) -> int:
    """Return ``dr7`` with slot ``slot`` enabled locally for ``kind``/``size``.

    Raises:
        ValueError: size is not 1, 2, 4 or 8, or an execute slot has size != 1.
    """
    if size not in _LEN_BITS:
        raise ValueError(f"debug register size must be 1, 2, 4 or 8, not {size}")
    if kind is WatchKind.EXECUTE and size != 1:
        raise ValueError("an execute breakpoint has size 1")
    shift = 16 + 4 * slot
    dr7 &= ~((0b1111 << shift) | (0b11 << (2 * slot)))
    dr7 |= (kind | (_LEN_BITS[size] << 2)) << shift
    return dr7 | (1 << (2 * slot))


def dr7_disable(dr7: int, slot: int) -> int:
    """Return ``dr7`` with slot ``slot`` disabled and its fields cleared."""
    shift = 16 + 4 * slot
    return dr7 & ~((0b1111 << shift) | (0b11 << (2 * slot)))
