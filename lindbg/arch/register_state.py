"""Register access by name in a thread's saved state, wherever it is kept (a
stopped live thread, a core file): general registers from a ``UserRegs``,
sub-registers and flags derived from them, and the x87/SSE/AVX state decoded
from the FXSAVE/XSAVE areas, fetched only when asked for (not the hot path)."""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable

from lindbg.arch import x86_64
from lindbg.arch.x86_64 import (
    FLAG_BITS,
    GENERAL_REGISTERS,
    REGISTER_ALIASES,
    SUB_REGISTERS,
    FpRegs,
    UserRegs,
)
from lindbg.errors import InvalidOperationError

_GENERAL = frozenset(GENERAL_REGISTERS)
_MASK64 = (1 << 64) - 1


def canonical(name: str) -> str:
    """Lower-case ``name``, strip a leading ``@``/``$`` and resolve aliases."""
    name = name.lower().lstrip("@")
    return REGISTER_ALIASES.get(name, name)


def read_state(
    name: str, regs: UserRegs, fxsave: Callable[[], bytes | None], xstate: Callable[[], bytes | None]
) -> int:
    """Value of register ``name`` from a thread's state, wherever it is kept (a
    live thread, a core file): general registers in ``regs``, the 512-byte
    FXSAVE area and the XSAVE area fetched only when an FP/vector register is
    asked for.

    Raises:
        InvalidOperationError: no register has that name, or the state lacks it.
    """
    key = canonical(name)
    if key in _GENERAL:
        return int(getattr(regs, key))
    sub = SUB_REGISTERS.get(key)
    if sub is not None:
        full, shift, width = sub
        return (int(getattr(regs, full)) >> shift) & ((1 << width) - 1)
    bit = FLAG_BITS.get(key)
    if bit is not None:
        return (int(regs.eflags) >> bit) & 1
    return _read_extended(key, fxsave, xstate)


def write(name: str, regs: UserRegs, value: int) -> None:
    """Set register ``name`` in ``regs`` (general registers, sub-registers, flags).

    Raises:
        InvalidOperationError: unknown register, or one that cannot be written here.
    """
    key = canonical(name)
    if key in _GENERAL:
        setattr(regs, key, value & _MASK64)
        return
    sub = SUB_REGISTERS.get(key)
    if sub is not None:
        full, shift, width = sub
        mask = ((1 << width) - 1) << shift
        old = int(getattr(regs, full))
        new = (old & ~mask) | ((value << shift) & mask)
        if width == 32 and shift == 0:
            new = value & 0xFFFFFFFF  # writing a 32-bit register zero-extends
        setattr(regs, full, new & _MASK64)
        return
    bit = FLAG_BITS.get(key)
    if bit is not None:
        flags = int(regs.eflags)
        regs.eflags = (flags | (1 << bit)) if value & 1 else (flags & ~(1 << bit))
        return
    raise InvalidOperationError(f"register '{name}' cannot be written")


def _read_extended(
    key: str, fetch_fx: Callable[[], bytes | None], fetch_xstate: Callable[[], bytes | None]
) -> int:
    if key.startswith(("xmm", "ymm", "st")) or key in ("mxcsr", "fpcw", "fpsw", "fptw"):
        raw = fetch_fx()
        if raw is None or len(raw) < ctypes.sizeof(FpRegs):
            raise InvalidOperationError(f"register '{key}' is not available (no floating-point state)")
        fp = FpRegs.from_buffer_copy(raw[: ctypes.sizeof(FpRegs)])
    if key.startswith("xmm") and key[3:].isdigit() and int(key[3:]) < 16:
        index = int(key[3:])
        words = fp.xmm_space[index * 4 : index * 4 + 4]
        return int.from_bytes(struct.pack("<4I", *words), "little")
    if key.startswith("ymm") and key[3:].isdigit() and int(key[3:]) < 16:
        index = int(key[3:])
        low = _read_extended(f"xmm{index}", lambda: raw, fetch_xstate)
        xstate = fetch_xstate() or b""
        start = x86_64.XSAVE_YMM_HI_OFFSET + 16 * index
        high = int.from_bytes(xstate[start : start + 16], "little") if len(xstate) >= start + 16 else 0
        return low | (high << 128)
    if key.startswith("st") and key[2:].isdigit() and int(key[2:]) < 8:
        index = int(key[2:])
        words = fp.st_space[index * 4 : index * 4 + 4]
        return int.from_bytes(struct.pack("<4I", *words)[:10], "little")
    if key in ("mxcsr", "fpcw", "fpsw", "fptw"):
        return int({"mxcsr": fp.mxcsr, "fpcw": fp.cwd, "fpsw": fp.swd, "fptw": fp.ftw}[key])
    raise InvalidOperationError(f"bad register '{key}'")
