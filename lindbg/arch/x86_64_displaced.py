"""Emulate the instruction displaced by a software breakpoint (x86-64).

Strategy
--------
Resuming a thread that stopped on one of our int3 breakpoints the naive way
costs two ptrace stops per hit: restore the original byte, single-step,
re-insert the int3, continue.  Like the kernel's uprobes, we instead *emulate*
the displaced instruction: the engine adjusts the registers (and performs at
most one memory write) and resumes with PTRACE_CONT from the following
instruction.  The int3 never leaves the code, so no other thread can run past
the breakpoint, and each hit costs one stop (see /work/shared/PERF.md).

Only the instructions compilers actually put first in a function (or at a
statement boundary) are worth covering, and each must be reproduced *exactly*,
flags included, or the debuggee's behaviour would change under the debugger.
So the decoder here is deliberately narrow: it recognises a whitelist of
encodings (nops/endbr64, push, pop, ret, register moves, add/sub with an
immediate, xor-zeroing, mov of an immediate, lea, loads and stores through any
ModRM/SIB addressing form, cmp and test) and answers ``None`` for anything
else, including prefixes it does not need to understand (67, lock, rep except
on ret, segment overrides other than fs/gs on loads).  ``None`` is always
safe: the engine falls back to the two-stop single step.

Memory
------
A store returns its one write; the engine performs it.  A load needs the
target's memory: ``apply(regs, read)`` calls ``read(address, size)`` (which
returns fewer bytes than asked when the range is not mapped) *before* it
touches ``regs``, so when a read comes back short, or no ``read`` is given, it
raises :class:`DisplacedFault` with ``regs`` unchanged and the engine
single-steps the real instruction instead, letting the CPU raise the real
fault.  Plans that read say so with the class attribute ``reads_memory``.  A
``ret`` to a non-canonical address raises :class:`DisplacedFault` the same way
(the CPU faults on the ``ret`` itself, not at the target).

The engine must access memory the way the CPU would: reads through
``process_vm_readv`` (not /proc/PID/mem, which the kernel lets a tracer read
even where the program may not), writes with the page protections honoured
(``process_vm_writev``), falling back to the single step when a write is
refused; otherwise a store into read-only memory would silently succeed under
the debugger.  ``ret`` does not update a CET shadow stack: for a process that
enabled user shadow stacks, plans with ``pops_return_address`` must not be used.

All decoding happens once, in :func:`plan_displaced`, when the breakpoint is
inserted.  The result is one small immutable object per breakpoint whose
``apply`` method is specialised to the instruction (one subclass per kind)
and holds every operand precomputed: register field names, the next ``rip``,
immediates already sign-extended and masked, the bytes a ``push imm`` writes.
``apply`` runs on every hit, so it does plain integer arithmetic on the
``UserRegs`` fields and allocates nothing but the memory-write tuple.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Final, NamedTuple

from lindbg.arch.x86_64 import UserRegs

__all__ = [
    "DisplacedFault",
    "DisplacedInstruction",
    "ReadMemory",
    "call_instruction_length",
    "plan_displaced",
]

#: ``read(address, size)``: the target's bytes at ``address``, fewer than ``size`` when unmapped.
ReadMemory = Callable[[int, int], bytes]

_MASK64: Final = (1 << 64) - 1
_MASK32: Final = (1 << 32) - 1
#: The architectural limit; longer encodings raise #GP, so we must not emulate them.
_MAX_LENGTH: Final = 15

#: ``UserRegs`` field of each general register, by its hardware number (ModRM/REX order).
_REG64: Final[tuple[str, ...]] = (
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
)  # fmt: skip
#: Their 32-bit names, only used for ``text``.
_REG32: Final[tuple[str, ...]] = (
    "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi",
    "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d",
)  # fmt: skip
#: 16- and 8-bit names (the 8-bit ones with a REX prefix), only used for ``text``.
_REG16: Final[tuple[str, ...]] = (
    "ax", "cx", "dx", "bx", "sp", "bp", "si", "di",
    "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w",
)  # fmt: skip
_REG8: Final[tuple[str, ...]] = (
    "al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil",
    "r8b", "r9b", "r10b", "r11b", "r12b", "r13b", "r14b", "r15b",
)  # fmt: skip
#: Without any REX prefix, byte registers 4-7 are bits 8-15 of rax, rcx, rdx, rbx.
_REG8_HIGH: Final[tuple[str, ...]] = ("ah", "ch", "dh", "bh")
_NAMES: Final[dict[int, tuple[str, ...]]] = {16: _REG16, 32: _REG32, 64: _REG64}
_PTR: Final[dict[int, str]] = {1: "byte ptr", 2: "word ptr", 4: "dword ptr", 8: "qword ptr"}
#: Segment prefixes accepted on loads, with the ``UserRegs`` field holding their base.
_SEGMENTS: Final[dict[int, str]] = {0x64: "fs_base", 0x65: "gs_base"}

_CF: Final = 1 << 0
_PF: Final = 1 << 2
_AF: Final = 1 << 4
_ZF: Final = 1 << 6
_SF: Final = 1 << 7
_OF: Final = 1 << 11
#: The six status flags arithmetic instructions define; every other eflags bit is kept.
_STATUS_FLAGS: Final = _CF | _PF | _AF | _ZF | _SF | _OF
_KEEP_FLAGS: Final = _MASK64 & ~_STATUS_FLAGS

#: PF value for each possible low result byte (set when its bit count is even),
#: so that ``apply`` does a tuple index instead of a popcount.
_PARITY: Final[tuple[int, ...]] = tuple(0 if bin(i).count("1") & 1 else _PF for i in range(256))

#: Legacy prefixes that do nothing to a NOP (operand/address size, segment overrides).
_NOP_PREFIXES: Final = frozenset((0x66, 0x67, 0x2E, 0x3E, 0x26, 0x36, 0x64, 0x65))
#: Legacy prefixes a CALL may carry without changing its length (bnd/notrack and friends).
_CALL_PREFIXES: Final = frozenset((0x66, 0x67, 0xF2, 0xF3, 0x2E, 0x3E, 0x26, 0x36, 0x64, 0x65))
#: Every legacy prefix byte, so a prefix we do not accept is recognised as one and refused.
_LEGACY_PREFIXES: Final = frozenset((0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x2E, 0x3E, 0x26, 0x36, 0x64, 0x65))


def _hex(value: int) -> str:
    """Signed hex the way disassemblers print small immediates (``-0x8``, ``0x18``)."""
    return f"-{-value:#x}" if value < 0 else f"{value:#x}"


def _sign_extend(value: int, bits: int) -> int:
    """Interpret the low ``bits`` of ``value`` as two's complement."""
    sign = 1 << (bits - 1)
    return (value & (sign - 1)) - (value & sign)


def _sub_flags(a: int, b: int, mask: int, sign: int) -> int:
    """The six status flags of ``a - b`` (cmp, sub) at the width of ``mask``; ``a``, ``b`` in range."""
    r = (a - b) & mask
    flags = _PARITY[r & 0xFF] | ((a ^ b ^ r) & _AF)
    if a < b:
        flags |= _CF
    if not r:
        flags |= _ZF
    elif r & sign:
        flags |= _SF
    if (a ^ b) & (a ^ r) & sign:
        flags |= _OF
    return flags


def _logic_flags(r: int, sign: int) -> int:
    """Status flags after and/test/or: CF=OF=AF=0 (AF is cleared like current cores do)."""
    flags = _PARITY[r & 0xFF]
    if not r:
        flags |= _ZF
    elif r & sign:
        flags |= _SF
    return flags


class DisplacedFault(Exception):
    """``apply`` cannot complete this hit; the registers were left exactly as they were.

    Raised when a load's ``read`` returns fewer bytes than asked (unmapped
    memory), when a plan that reads memory gets no ``read``, and when a ``ret``
    would jump to a non-canonical address.  The engine must then single-step
    the original instruction so that the CPU raises the real fault.
    """

    def __init__(self, address: int, reason: str) -> None:
        super().__init__(f"{reason} at {address:#x}")
        self.address = address
        self.reason = reason


def _read(read: ReadMemory | None, address: int, size: int) -> bytes:
    """``size`` bytes at ``address`` through ``read``, or DisplacedFault."""
    if read is None:
        raise DisplacedFault(address, "no memory reader for a load")
    data = read(address, size)
    if len(data) != size:
        if len(data) < size:
            raise DisplacedFault(address, f"cannot read {size} bytes")
        data = data[:size]
    return data


class DisplacedInstruction:
    """A decoded instruction and how to execute it by hand.

    Built once per breakpoint, so that the hot path (``apply`` on every hit) does
    no decoding.  Immutable because the engine shares it between threads hitting
    the same breakpoint and caches it for the breakpoint's lifetime.  Subclasses
    hold precomputed operands and override ``apply``.
    """

    __slots__ = ("_next_rip", "length", "text")

    length: int
    text: str
    _next_rip: int
    #: True when ``apply`` loads memory through ``read`` (and may raise DisplacedFault).
    reads_memory: ClassVar[bool] = False
    #: True for ``ret``: unusable in a process with CET user shadow stacks enabled.
    pops_return_address: ClassVar[bool] = False

    def __init__(self, address: int, length: int, text: str) -> None:
        object.__setattr__(self, "length", length)
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "_next_rip", (address + length) & _MASK64)

    def _init(self, **fields: object) -> None:
        """Set the subclass's precomputed operands (only from constructors)."""
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.text!r} length={self.length}>"

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        """Emulate the instruction on ``regs`` in place.

        ``rip`` is advanced past the instruction and the other registers and
        flags are updated exactly as the CPU would.  Returns the one memory
        write the instruction makes as ``(address, little-endian bytes)``, which
        the engine must perform before resuming, or ``None`` when it writes no
        memory.  Plans with ``reads_memory`` load through ``read(address,
        size)``; if it returns fewer than ``size`` bytes (or ``read`` is None)
        they raise :class:`DisplacedFault` and leave ``regs`` untouched.  Other
        plans ignore ``read``.  The base class is a no-op instruction (nop, endbr64).
        """
        regs.rip = self._next_rip
        return None


class _Nop(DisplacedInstruction):
    """nop, multi-byte nop, endbr64: only ``rip`` moves."""

    __slots__ = ()


class _SetConst(DisplacedInstruction):
    """A register receives a value known at plan time (mov imm, lea [rip+disp])."""

    __slots__ = ("_dest", "_value")
    _dest: str
    _value: int

    def __init__(self, address: int, length: int, text: str, dest: str, value: int) -> None:
        super().__init__(address, length, text)
        self._init(_dest=dest, _value=value)

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        setattr(regs, self._dest, self._value)
        regs.rip = self._next_rip
        return None


class _PushReg(DisplacedInstruction):
    """push r64: the value is the register before the push (``push rsp`` pushes the old rsp)."""

    __slots__ = ("_src",)
    _src: str

    def __init__(self, address: int, length: int, text: str, src: str) -> None:
        super().__init__(address, length, text)
        self._init(_src=src)

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        value: int = getattr(regs, self._src)
        sp = (regs.rsp - 8) & _MASK64
        regs.rsp = sp
        regs.rip = self._next_rip
        return sp, value.to_bytes(8, "little")


class _PushImm(DisplacedInstruction):
    """push imm8/imm32: the 8 bytes written are fixed, so they are built at plan time."""

    __slots__ = ("_data",)
    _data: bytes

    def __init__(self, address: int, length: int, text: str, value: int) -> None:
        super().__init__(address, length, text)
        self._init(_data=(value & _MASK64).to_bytes(8, "little"))

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        sp = (regs.rsp - 8) & _MASK64
        regs.rsp = sp
        regs.rip = self._next_rip
        return sp, self._data


class _MovReg(DisplacedInstruction):
    """mov r64, r64 (mask all ones) or mov r32, r32 (mask 2**32-1: the write zero-extends)."""

    __slots__ = ("_dest", "_mask", "_src")
    _dest: str
    _src: str
    _mask: int

    def __init__(self, address: int, length: int, text: str, dest: str, src: str, mask: int) -> None:
        super().__init__(address, length, text)
        self._init(_dest=dest, _src=src, _mask=mask)

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        setattr(regs, self._dest, getattr(regs, self._src) & self._mask)
        regs.rip = self._next_rip
        return None


class _ArithImm(DisplacedInstruction):
    """Shared operands of add/sub reg, imm at 32 or 64 bits.

    The immediate is a constant, so every flag except PF, ZF and SF reduces to
    a comparison of the old register value with thresholds computed here
    (ctypes field access already dominates ``apply``; a chain of big-int
    shifts and masks would double it):

    * ``_imm``: the immediate, sign-extended to the operand size and masked to it;
    * ``_cf_at``: add: CF iff ``a >= _cf_at`` (unsigned carry out);
    * ``_af_low``: AF from the low nibbles alone (add: ``a & 15 >= _af_low``,
      sub: ``a & 15 < _af_low``);
    * ``[_of_lo, _of_hi)``: the unsigned range of ``a`` that overflows as signed;
    * ``_sign``: the operand's sign bit, for SF.
    """

    __slots__ = ("_af_low", "_cf_at", "_dest", "_imm", "_mask", "_of_hi", "_of_lo", "_sign")
    _dest: str
    _imm: int
    _mask: int
    _cf_at: int
    _af_low: int
    _of_lo: int
    _of_hi: int
    _sign: int

    def __init__(
        self, address: int, length: int, text: str, dest: str, imm: int, bits: int, add: bool
    ) -> None:
        super().__init__(address, length, text)
        mask = (1 << bits) - 1
        sign = 1 << (bits - 1)
        b = imm & mask
        sb = _sign_extend(b, bits)
        if add:
            # signed(a) + sb leaves [-sign, sign): a too close to the top (sb > 0) or bottom (sb < 0).
            of_lo, of_hi = (sign - sb, sign) if sb >= 0 else (sign, sign - sb)
            af_low = 16 - (b & 15)
        else:
            of_lo, of_hi = (sign, sign + sb) if sb >= 0 else (sign + sb, sign)
            af_low = b & 15
        self._init(
            _dest=dest, _imm=b, _mask=mask, _cf_at=(1 << bits) - b if b else mask + 2,
            _af_low=af_low, _of_lo=of_lo, _of_hi=of_hi, _sign=sign,
        )  # fmt: skip


class _AddImm(_ArithImm):
    """add reg, imm with all six status flags."""

    __slots__ = ()

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        mask = self._mask
        a: int = getattr(regs, self._dest) & mask
        r = (a + self._imm) & mask
        setattr(regs, self._dest, r)
        flags = (regs.eflags & _KEEP_FLAGS) | _PARITY[r & 0xFF]
        if a >= self._cf_at:
            flags |= _CF
        if a & 15 >= self._af_low:
            flags |= _AF
        if not r:
            flags |= _ZF
        elif r >= self._sign:
            flags |= _SF
        if self._of_lo <= a < self._of_hi:
            flags |= _OF
        regs.eflags = flags
        regs.rip = self._next_rip
        return None


class _SubImm(_ArithImm):
    """sub reg, imm with all six status flags."""

    __slots__ = ()

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        mask = self._mask
        a: int = getattr(regs, self._dest) & mask
        b = self._imm
        r = (a - b) & mask
        setattr(regs, self._dest, r)
        flags = (regs.eflags & _KEEP_FLAGS) | _PARITY[r & 0xFF]
        if a < b:
            flags |= _CF
        if a & 15 < self._af_low:
            flags |= _AF
        if not r:
            flags |= _ZF
        elif r >= self._sign:
            flags |= _SF
        if self._of_lo <= a < self._of_hi:
            flags |= _OF
        regs.eflags = flags
        regs.rip = self._next_rip
        return None


class _XorReg(DisplacedInstruction):
    """xor r, r' (two distinct registers): CF=OF=AF=0, SF/ZF/PF from the result.

    AF is architecturally undefined after a logical operation; current Intel and
    AMD cores clear it, so we do too.
    """

    __slots__ = ("_dest", "_mask", "_sf_shift", "_src")
    _dest: str
    _src: str
    _mask: int
    _sf_shift: int

    def __init__(self, address: int, length: int, text: str, dest: str, src: str, bits: int) -> None:
        super().__init__(address, length, text)
        self._init(_dest=dest, _src=src, _mask=(1 << bits) - 1, _sf_shift=bits - 8)

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        r = (getattr(regs, self._dest) ^ getattr(regs, self._src)) & self._mask
        setattr(regs, self._dest, r)
        regs.eflags = (
            (regs.eflags & _KEEP_FLAGS)
            | _PARITY[r & 0xFF]
            | (0 if r else _ZF)
            | ((r >> self._sf_shift) & _SF)
        )
        regs.rip = self._next_rip
        return None


class _ZeroIdiom(DisplacedInstruction):
    """xor r, r (same register): the result is always 0, ZF=PF=1, all else clear."""

    __slots__ = ("_dest",)
    _dest: str

    def __init__(self, address: int, length: int, text: str, dest: str) -> None:
        super().__init__(address, length, text)
        self._init(_dest=dest)

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        setattr(regs, self._dest, 0)
        regs.eflags = (regs.eflags & _KEEP_FLAGS) | _ZF | _PF
        regs.rip = self._next_rip
        return None


class _Address:
    """An effective address ``base + index * scale + disp`` (mod 2**64), precomputed at plan time.

    ``base``/``index`` are ``UserRegs`` field names or "" for none; a rip-relative
    or absolute address has neither and ``disp`` holds the final address; an
    fs/gs override takes the free base (or index) slot with ``fs_base``/``gs_base``.
    """

    __slots__ = ("_base", "_disp", "_index", "_scale")
    _base: str
    _index: str
    _scale: int
    _disp: int

    def __init__(self, base: str, index: str, scale: int, disp: int) -> None:
        object.__setattr__(self, "_base", base)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_scale", scale)
        object.__setattr__(self, "_disp", disp & _MASK64)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("_Address is immutable")

    def at(self, regs: UserRegs) -> int:
        ea: int = self._disp
        if self._base:
            ea += getattr(regs, self._base)
        if self._index:
            ea += getattr(regs, self._index) * self._scale
        return ea & _MASK64


class _FixedAddress(_Address):
    """rip-relative or absolute: the address is a constant."""

    __slots__ = ()

    def at(self, regs: UserRegs) -> int:
        return self._disp


class _BaseAddress(_Address):
    """[reg + disp], by far the most common form: one register, no index."""

    __slots__ = ()

    def at(self, regs: UserRegs) -> int:
        ea: int = getattr(regs, self._base) + self._disp
        return ea & _MASK64


class _Lea(DisplacedInstruction):
    """lea r64/r32, [mem]: the address itself, truncated to the operand size; no memory access."""

    __slots__ = ("_addr", "_dest", "_mask")
    _addr: _Address
    _dest: str
    _mask: int

    def __init__(self, address: int, length: int, text: str, addr: _Address, dest: str, mask: int) -> None:
        super().__init__(address, length, text)
        self._init(_addr=addr, _dest=dest, _mask=mask)

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        setattr(regs, self._dest, self._addr.at(regs) & self._mask)
        regs.rip = self._next_rip
        return None


class _StoreReg(DisplacedInstruction):
    """mov [mem], r (64/32/16/8 bits; ``_shift`` 8 for ah, ch, dh, bh): one write."""

    __slots__ = ("_addr", "_mask", "_shift", "_size", "_src")
    _addr: _Address
    _src: str
    _shift: int
    _mask: int
    _size: int

    def __init__(
        self, address: int, length: int, text: str, addr: _Address, src: str, shift: int, size: int
    ) -> None:
        super().__init__(address, length, text)
        self._init(_addr=addr, _src=src, _shift=shift, _mask=(1 << 8 * size) - 1, _size=size)

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        where = self._addr.at(regs)
        value: int = (getattr(regs, self._src) >> self._shift) & self._mask
        regs.rip = self._next_rip
        return where, value.to_bytes(self._size, "little")


class _StoreConst(DisplacedInstruction):
    """mov [mem], imm: the bytes written are fixed at plan time."""

    __slots__ = ("_addr", "_data")
    _addr: _Address
    _data: bytes

    def __init__(self, address: int, length: int, text: str, addr: _Address, data: bytes) -> None:
        super().__init__(address, length, text)
        self._init(_addr=addr, _data=data)

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        where = self._addr.at(regs)
        regs.rip = self._next_rip
        return where, self._data


class _Load(DisplacedInstruction):
    """mov r64, [mem]; mov r32, [mem] and movzx r, byte/word [mem] (the value zero-extends)."""

    __slots__ = ("_addr", "_dest", "_size")
    reads_memory: ClassVar[bool] = True
    _addr: _Address
    _dest: str
    _size: int

    def __init__(self, address: int, length: int, text: str, addr: _Address, dest: str, size: int) -> None:
        super().__init__(address, length, text)
        self._init(_addr=addr, _dest=dest, _size=size)

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        data = _read(read, self._addr.at(regs), self._size)
        setattr(regs, self._dest, int.from_bytes(data, "little"))
        regs.rip = self._next_rip
        return None


class _LoadSigned(DisplacedInstruction):
    """movsx r, byte/word [mem]; movsxd r64, dword [mem]: sign-extended to the operand (``_mask``)."""

    __slots__ = ("_addr", "_dest", "_mask", "_size")
    reads_memory: ClassVar[bool] = True
    _addr: _Address
    _dest: str
    _size: int
    _mask: int

    def __init__(
        self, address: int, length: int, text: str, addr: _Address, dest: str, size: int, mask: int
    ) -> None:
        super().__init__(address, length, text)
        self._init(_addr=addr, _dest=dest, _size=size, _mask=mask)

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        data = _read(read, self._addr.at(regs), self._size)
        setattr(regs, self._dest, int.from_bytes(data, "little", signed=True) & self._mask)
        regs.rip = self._next_rip
        return None


class _LoadMerge(DisplacedInstruction):
    """mov r16, [mem] and mov r8, [mem]: only the low word/byte (or ah..bh) changes."""

    __slots__ = ("_addr", "_dest", "_keep", "_shift", "_size")
    reads_memory: ClassVar[bool] = True
    _addr: _Address
    _dest: str
    _size: int
    _shift: int
    _keep: int

    def __init__(
        self, address: int, length: int, text: str, addr: _Address, dest: str, size: int, shift: int
    ) -> None:
        super().__init__(address, length, text)
        keep = _MASK64 ^ (((1 << 8 * size) - 1) << shift)
        self._init(_addr=addr, _dest=dest, _size=size, _shift=shift, _keep=keep)

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        data = _read(read, self._addr.at(regs), self._size)
        old: int = getattr(regs, self._dest)
        setattr(regs, self._dest, (old & self._keep) | (int.from_bytes(data, "little") << self._shift))
        regs.rip = self._next_rip
        return None


class _Pop(DisplacedInstruction):
    """pop r64: load [rsp], rsp += 8, then the register (so ``pop rsp`` keeps the loaded value)."""

    __slots__ = ("_dest",)
    reads_memory: ClassVar[bool] = True
    _dest: str

    def __init__(self, address: int, length: int, text: str, dest: str) -> None:
        super().__init__(address, length, text)
        self._init(_dest=dest)

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        sp: int = regs.rsp
        data = _read(read, sp, 8)
        regs.rsp = (sp + 8) & _MASK64
        setattr(regs, self._dest, int.from_bytes(data, "little"))
        regs.rip = self._next_rip
        return None


class _Ret(DisplacedInstruction):
    """ret / ret imm16: rip = [rsp], rsp += 8 + imm16.

    A non-canonical return address makes the CPU fault on the ``ret`` itself,
    so that case raises DisplacedFault (regs untouched) and is single-stepped.
    """

    __slots__ = ("_release",)
    reads_memory: ClassVar[bool] = True
    pops_return_address: ClassVar[bool] = True
    _release: int

    def __init__(self, address: int, length: int, text: str, release: int) -> None:
        super().__init__(address, length, text)
        self._init(_release=8 + release)

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        sp: int = regs.rsp
        target = int.from_bytes(_read(read, sp, 8), "little")
        if ((target + (1 << 47)) & _MASK64) >> 48:  # not canonical with 48-bit addresses: let the CPU decide
            raise DisplacedFault(target, "ret to a non-canonical address")
        regs.rsp = (sp + self._release) & _MASK64
        regs.rip = target
        return None


class _CmpImm(DisplacedInstruction):
    """cmp r, imm (also cmp al/eax/rax, imm): flags only; ``_shift`` 8 for ah..bh."""

    __slots__ = ("_imm", "_mask", "_shift", "_sign", "_src")
    _src: str
    _shift: int
    _imm: int
    _mask: int
    _sign: int

    def __init__(
        self, address: int, length: int, text: str, src: str, shift: int, imm: int, bits: int
    ) -> None:
        super().__init__(address, length, text)
        mask = (1 << bits) - 1
        self._init(_src=src, _shift=shift, _imm=imm & mask, _mask=mask, _sign=1 << (bits - 1))

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        a = (getattr(regs, self._src) >> self._shift) & self._mask
        regs.eflags = (regs.eflags & _KEEP_FLAGS) | _sub_flags(a, self._imm, self._mask, self._sign)
        regs.rip = self._next_rip
        return None


class _RegPair(DisplacedInstruction):
    """Shared operands of cmp r, r and test r, r (``_shift`` 8 for ah..bh)."""

    __slots__ = ("_a", "_a_shift", "_b", "_b_shift", "_mask", "_sign")
    _a: str
    _a_shift: int
    _b: str
    _b_shift: int
    _mask: int
    _sign: int

    def __init__(
        self, address: int, length: int, text: str, a: tuple[str, int], b: tuple[str, int], bits: int
    ) -> None:
        super().__init__(address, length, text)
        self._init(
            _a=a[0], _a_shift=a[1], _b=b[0], _b_shift=b[1], _mask=(1 << bits) - 1, _sign=1 << (bits - 1)
        )


class _CmpReg(_RegPair):
    """cmp r, r: flags of a - b."""

    __slots__ = ()

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        mask = self._mask
        a = (getattr(regs, self._a) >> self._a_shift) & mask
        b = (getattr(regs, self._b) >> self._b_shift) & mask
        regs.eflags = (regs.eflags & _KEEP_FLAGS) | _sub_flags(a, b, mask, self._sign)
        regs.rip = self._next_rip
        return None


class _TestReg(_RegPair):
    """test r, r: flags of a & b, CF=OF=AF=0."""

    __slots__ = ()

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        r = (getattr(regs, self._a) >> self._a_shift) & (getattr(regs, self._b) >> self._b_shift) & self._mask
        regs.eflags = (regs.eflags & _KEEP_FLAGS) | _logic_flags(r, self._sign)
        regs.rip = self._next_rip
        return None


class _CmpMemImm(DisplacedInstruction):
    """cmp [mem], imm: flags of [mem] - imm."""

    __slots__ = ("_addr", "_imm", "_mask", "_sign", "_size")
    reads_memory: ClassVar[bool] = True
    _addr: _Address
    _size: int
    _imm: int
    _mask: int
    _sign: int

    def __init__(self, address: int, length: int, text: str, addr: _Address, size: int, imm: int) -> None:
        super().__init__(address, length, text)
        mask = (1 << 8 * size) - 1
        self._init(_addr=addr, _size=size, _imm=imm & mask, _mask=mask, _sign=1 << (8 * size - 1))

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        a = int.from_bytes(_read(read, self._addr.at(regs), self._size), "little")
        regs.eflags = (regs.eflags & _KEEP_FLAGS) | _sub_flags(a, self._imm, self._mask, self._sign)
        regs.rip = self._next_rip
        return None


class _CmpMemReg(DisplacedInstruction):
    """cmp [mem], r (``_mem_first``) and cmp r, [mem]."""

    __slots__ = ("_addr", "_mask", "_mem_first", "_reg", "_shift", "_sign", "_size")
    reads_memory: ClassVar[bool] = True
    _addr: _Address
    _size: int
    _reg: str
    _shift: int
    _mem_first: bool
    _mask: int
    _sign: int

    def __init__(
        self,
        address: int,
        length: int,
        text: str,
        addr: _Address,
        size: int,
        reg: tuple[str, int],
        mem_first: bool,
    ) -> None:
        super().__init__(address, length, text)
        mask = (1 << 8 * size) - 1
        self._init(
            _addr=addr, _size=size, _reg=reg[0], _shift=reg[1], _mem_first=mem_first,
            _mask=mask, _sign=1 << (8 * size - 1),
        )  # fmt: skip

    def apply(self, regs: UserRegs, read: ReadMemory | None = None) -> tuple[int, bytes] | None:
        mem = int.from_bytes(_read(read, self._addr.at(regs), self._size), "little")
        mask = self._mask
        r = (getattr(regs, self._reg) >> self._shift) & mask
        a, b = (mem, r) if self._mem_first else (r, mem)
        regs.eflags = (regs.eflags & _KEEP_FLAGS) | _sub_flags(a, b, mask, self._sign)
        regs.rip = self._next_rip
        return None


def _modrm_length(code: bytes, pos: int) -> int | None:
    """Bytes taken by the ModRM at ``code[pos]`` with its SIB and displacement, or None if truncated.

    64-bit mode has no 16-bit addressing, so the 67 prefix does not change this.
    """
    if pos >= len(code):
        return None
    modrm = code[pos]
    mod = modrm >> 6
    rm = modrm & 7
    size = 1
    if mod != 3:
        if rm == 4:  # a SIB byte follows
            if pos + 1 >= len(code):
                return None
            size = 2
            if mod == 0 and code[pos + 1] & 7 == 5:  # no base: disp32
                size += 4
        elif mod == 0 and rm == 5:  # [rip + disp32]
            size += 4
        if mod == 1:
            size += 1
        elif mod == 2:
            size += 4
    return size if pos + size <= len(code) else None


def _split_prefixes(code: bytes) -> tuple[bytes, int, int] | None:
    """Split legacy prefixes and REX from the opcode.

    Returns ``(legacy prefixes, rex or 0, opcode position)``, or None when a REX
    is followed by a legacy prefix (the CPU then ignores the REX: too subtle to
    be worth emulating) or the bytes run out.
    """
    pos = 0
    n = len(code)
    while pos < n and code[pos] in _LEGACY_PREFIXES:
        pos += 1
    legacy = code[:pos]
    rex = 0
    if pos < n and code[pos] & 0xF0 == 0x40:
        rex = code[pos]
        pos += 1
    if pos >= n or code[pos] in _LEGACY_PREFIXES or code[pos] & 0xF0 == 0x40:
        return None
    return legacy, rex, pos


class _Mem(NamedTuple):
    """A decoded ModRM memory operand (mod != 3), before the instruction's length is known."""

    base_reg: str  # UserRegs field or ""
    index_reg: str  # UserRegs field or ""
    scale: int
    disp: int  # sign-extended displacement
    rip: bool  # [rip + disp]: relative to the end of the instruction
    size: int  # bytes taken by ModRM, SIB and displacement
    text: str  # e.g. "[rbp-0x14]", "[rax+rbx*8+0x10]", "[rip+0x2ea6]"


def _decode_mem(code: bytes, pos: int, rex: int) -> _Mem | None:
    """The memory operand whose ModRM is ``code[pos]`` (mod != 3), or None if truncated."""
    size = _modrm_length(code, pos)
    if size is None:
        return None
    modrm = code[pos]
    mod = modrm >> 6
    rm = modrm & 7
    disp_pos = pos + 1
    base = index = ""
    scale = 1
    rip = False
    if rm == 4:  # SIB: index 4 (without REX.X) is none; base 5 with mod 00 is none (disp32)
        sib = code[pos + 1]
        disp_pos += 1
        number = ((sib >> 3) & 7) | (8 if rex & 2 else 0)
        if number != 4:
            index = _REG64[number]
            scale = 1 << (sib >> 6)
        if mod != 0 or sib & 7 != 5:
            base = _REG64[(sib & 7) | (8 if rex & 1 else 0)]
    elif mod == 0 and rm == 5:
        rip = True
    else:
        base = _REG64[rm | (8 if rex & 1 else 0)]
    width = pos + size - disp_pos
    disp = _sign_extend(int.from_bytes(code[disp_pos : pos + size], "little"), 8 * width) if width else 0
    terms = ["rip"] if rip else []
    if base:
        terms.append(base)
    if index:
        terms.append(f"{index}*{scale}" if scale > 1 else index)
    text = "+".join(terms)
    if disp or not terms:
        text += f"{'+' if disp >= 0 and terms else ''}{_hex(disp)}"
    return _Mem(base, index, scale, disp, rip, size, f"[{text}]")


def _address(mem: _Mem, end: int, segment: str) -> _Address | None:
    """The effective address of ``mem`` in an instruction ending at ``end``, plus a segment base."""
    base, index, scale, disp = mem.base_reg, mem.index_reg, mem.scale, mem.disp
    if mem.rip:
        disp += end
    if segment:
        if not base:
            base = segment
        elif not index:
            index, scale = segment, 1
        else:
            return None  # base + index + segment: too rare to be worth a third term
    if not base and not index:
        return _FixedAddress("", "", 1, disp)
    if not index:
        return _BaseAddress(base, "", 1, disp)
    return _Address(base, index, scale, disp)


def _byte_reg(number: int, rex: int) -> tuple[str, int, str]:
    """(UserRegs field, shift, name) of byte register ``number``: ah..bh without a REX prefix."""
    if not rex and 4 <= number < 8:
        return _REG64[number - 4], 8, _REG8_HIGH[number - 4]
    return _REG64[number], 0, _REG8[number]


def _immediate(code: bytes, pos: int, size: int) -> int | None:
    """The sign-extended ``size``-byte immediate at ``pos``, or None if truncated."""
    if pos + size > len(code):
        return None
    return _sign_extend(int.from_bytes(code[pos : pos + size], "little"), 8 * size)


def plan_displaced(code: bytes, address: int) -> DisplacedInstruction | None:
    """Decode the instruction at ``address`` and plan its emulation.

    ``code`` holds the original bytes at ``address`` (up to 16; fewer is fine
    when the instruction fits).  Returns None for anything outside the exact
    whitelist in the module docstring, so the engine falls back to the
    single step; never raises for any byte string.
    """
    if not code:
        return None
    code = bytes(code[:16])
    if code[:4] == b"\xf3\x0f\x1e\xfa":
        return _Nop(address, 4, "endbr64")
    split = _split_prefixes(code)
    if split is None:
        return None
    legacy, rex, pos = split
    op = code[pos]
    plan: DisplacedInstruction | None
    if op == 0x90 or (op == 0x0F and pos + 1 < len(code) and code[pos + 1] == 0x1F):
        plan = _plan_nop(code, address, legacy, rex, pos)
    elif len(legacy) > 1:
        return None  # no other instruction we emulate carries more than one legacy prefix
    else:
        plan = _plan_plain(code, address, legacy[0] if legacy else 0, rex, pos)
    if plan is None or plan.length > _MAX_LENGTH:
        return None
    return plan


def _plan_nop(code: bytes, address: int, legacy: bytes, rex: int, pos: int) -> DisplacedInstruction | None:
    """90, 66 90 and the 0f 1f /0 multi-byte nops (with harmless prefixes)."""
    if not all(p in _NOP_PREFIXES for p in legacy):
        return None
    if code[pos] == 0x90:
        # With REX.B, 90 is xchg r8, rax, not a nop; other prefixes make pause etc.
        if rex or any(p != 0x66 for p in legacy):
            return None
        return _Nop(address, pos + 1, "nop")
    if pos + 2 >= len(code) or (code[pos + 2] >> 3) & 7 != 0:
        return None
    size = _modrm_length(code, pos + 2)
    if size is None:
        return None
    length = pos + 2 + size
    return _Nop(address, length, f"nop ({length} bytes)")


def _plan_plain(code: bytes, address: int, prefix: int, rex: int, pos: int) -> DisplacedInstruction | None:
    """Every whitelisted instruction other than the nops; ``prefix`` is the one legacy prefix or 0."""
    n = len(code)
    op = code[pos]
    wide = bool(rex & 8)
    r_ext = 8 if rex & 4 else 0
    b_ext = 8 if rex & 1 else 0
    after = pos + 1  # position just after the opcode

    if prefix not in (0, 0x66, 0x64, 0x65, 0xF2, 0xF3):
        return None  # 67 (32-bit addresses), lock, null segment overrides
    if prefix in (0xF2, 0xF3):  # repz ret (old AMD-tuned code), bnd ret
        if op == 0xC3 and not rex:
            return _Ret(address, after, f"{'repz' if prefix == 0xF3 else 'bnd'} ret", 0)
        return None
    if prefix == 0x66 and wide:
        return None  # REX.W overrides 66: legal, but rare enough to refuse
    bits = 64 if wide else 16 if prefix == 0x66 else 32
    names = _NAMES[bits]

    if prefix == 0:
        if 0x50 <= op <= 0x57:  # push r64 (REX.W is ignored)
            field = _REG64[(op & 7) | b_ext]
            return _PushReg(address, after, f"push {field}", field)
        if 0x58 <= op <= 0x5F:  # pop r64 (REX.W is ignored)
            field = _REG64[(op & 7) | b_ext]
            return _Pop(address, after, f"pop {field}", field)
        if op == 0xC3:
            return _Ret(address, after, "ret", 0)
        if op == 0xC2:  # ret imm16: release imm16 more bytes of stack
            if after + 2 > n:
                return None
            release = int.from_bytes(code[after : after + 2], "little")
            return _Ret(address, after + 2, f"ret {release:#x}", release)
        if op == 0x6A and after < n:  # push imm8, sign-extended to 64 bits
            imm = _sign_extend(code[after], 8)
            return _PushImm(address, after + 1, f"push {_hex(imm)}", imm)
        if op == 0x68 and after + 4 <= n:  # push imm32, sign-extended to 64 bits
            imm = _sign_extend(int.from_bytes(code[after : after + 4], "little"), 32)
            return _PushImm(address, after + 4, f"push {_hex(imm)}", imm)
        if 0xB8 <= op <= 0xBF:  # mov r32, imm32 (zero-extends) / mov r64, imm64
            num = (op & 7) | b_ext
            width = 8 if wide else 4
            if after + width > n:
                return None
            imm = int.from_bytes(code[after : after + width], "little")
            text = f"mov {(_REG64 if wide else _REG32)[num]}, {imm:#x}"
            return _SetConst(address, after + width, text, _REG64[num], imm)
        if op == 0x3C:  # cmp al, imm8
            al_imm = _immediate(code, after, 1)
            if al_imm is None:
                return None
            return _CmpImm(address, after + 1, f"cmp al, {_hex(al_imm)}", "rax", 0, al_imm, 8)
    if op == 0x3D and prefix in (0, 0x66):  # cmp ax/eax/rax, imm16/imm32 (sign-extended to 64)
        isize = 2 if bits == 16 else 4
        ax_imm = _immediate(code, after, isize)
        if ax_imm is None:
            return None
        return _CmpImm(address, after + isize, f"cmp {names[0]}, {_hex(ax_imm)}", "rax", 0, ax_imm, bits)
    if op == 0x0F:
        return _plan_two_byte(code, address, prefix, rex, pos, bits)

    if after >= n:
        return None
    modrm = code[after]
    mod = modrm >> 6
    ext = (modrm >> 3) & 7
    reg = ext | r_ext
    rm = (modrm & 7) | b_ext

    if mod != 3:
        return _plan_memory(code, address, prefix, rex, pos, bits)
    length = after + 1
    if prefix == 0:
        plan = _plan_register(code, address, rex, pos)
        if plan is not None:
            return plan
    elif prefix != 0x66:
        return None  # a segment override on a register operand

    if op in (0x84, 0x85, 0x38, 0x39, 0x3A, 0x3B):  # test r/m, r; cmp r/m, r; cmp r, r/m
        if op & 1:
            first, second = (reg, rm) if op == 0x3B else (rm, reg)
            a, a_name, b, b_name = (_REG64[first], 0), names[first], (_REG64[second], 0), names[second]
            width = bits
        elif prefix:
            return None  # 66 on a byte operation
        else:
            first, second = (reg, rm) if op == 0x3A else (rm, reg)
            fa, sa, a_name = _byte_reg(first, rex)
            fb, sb, b_name = _byte_reg(second, rex)
            a, b, width = (fa, sa), (fb, sb), 8
        test = op in (0x84, 0x85)
        text = f"{'test' if test else 'cmp'} {a_name}, {b_name}"
        cls = _TestReg if test else _CmpReg
        return cls(address, length, text, a, b, width)
    if op in (0x80, 0x81, 0x83) and ext == 7:  # cmp r, imm
        if op == 0x80:
            if prefix:
                return None
            field, shift, name = _byte_reg(rm, rex)
            width, isize = 8, 1
        else:
            field, shift, name = _REG64[rm], 0, names[rm]
            width = bits
            isize = 1 if op == 0x83 else 2 if bits == 16 else 4
        cmp_imm = _immediate(code, length, isize)
        if cmp_imm is None:
            return None
        return _CmpImm(address, length + isize, f"cmp {name}, {_hex(cmp_imm)}", field, shift, cmp_imm, width)
    return None


def _plan_register(code: bytes, address: int, rex: int, pos: int) -> DisplacedInstruction | None:
    """mov, xor, add/sub imm and mov imm with a register operand (mod = 11, no legacy prefix)."""
    n = len(code)
    op = code[pos]
    wide = bool(rex & 8)
    after = pos + 1
    modrm = code[after]
    reg = ((modrm >> 3) & 7) | (8 if rex & 4 else 0)
    rm = (modrm & 7) | (8 if rex & 1 else 0)
    names = _REG64 if wide else _REG32
    mask = _MASK64 if wide else _MASK32
    length = after + 1

    if op in (0x89, 0x8B):  # mov r/m, r  and  mov r, r/m
        dest, src = (rm, reg) if op == 0x89 else (reg, rm)
        return _MovReg(address, length, f"mov {names[dest]}, {names[src]}", _REG64[dest], _REG64[src], mask)
    if op in (0x31, 0x33):  # xor r/m, r  and  xor r, r/m
        dest, src = (rm, reg) if op == 0x31 else (reg, rm)
        text = f"xor {names[dest]}, {names[src]}"
        if dest == src:
            return _ZeroIdiom(address, length, text, _REG64[dest])
        return _XorReg(address, length, text, _REG64[dest], _REG64[src], 64 if wide else 32)
    if op in (0x83, 0x81) and (modrm >> 3) & 7 in (0, 5):  # add/sub r, imm8/imm32
        isize = 1 if op == 0x83 else 4
        if length + isize > n:
            return None
        imm = _sign_extend(int.from_bytes(code[length : length + isize], "little"), 8 * isize)
        add = (modrm >> 3) & 7 == 0
        cls = _AddImm if add else _SubImm
        text = f"{'add' if add else 'sub'} {names[rm]}, {_hex(imm)}"
        return cls(address, length + isize, text, _REG64[rm], imm, 64 if wide else 32, add)
    if op == 0xC7 and (modrm >> 3) & 7 == 0:  # mov r, imm32 (sign-extended with REX.W)
        if length + 4 > n:
            return None
        imm = int.from_bytes(code[length : length + 4], "little")
        value = _sign_extend(imm, 32) & _MASK64 if wide else imm
        return _SetConst(address, length + 4, f"mov {names[rm]}, {value:#x}", _REG64[rm], value)
    return None


def _plan_two_byte(
    code: bytes, address: int, prefix: int, rex: int, pos: int, bits: int
) -> DisplacedInstruction | None:
    """movzx/movsx r32/r64, byte/word [mem] (0f b6, b7, be, bf), fs/gs allowed."""
    if prefix == 0x66 or pos + 2 >= len(code):
        return None
    op = code[pos + 1]
    modrm_pos = pos + 2
    if op not in (0xB6, 0xB7, 0xBE, 0xBF) or code[modrm_pos] >> 6 == 3:
        return None
    mem = _decode_mem(code, modrm_pos, rex)
    if mem is None:
        return None
    length = modrm_pos + mem.size
    segment = _SEGMENTS.get(prefix, "")
    addr = _address(mem, address + length, segment)
    if addr is None:
        return None
    reg = ((code[modrm_pos] >> 3) & 7) | (8 if rex & 4 else 0)
    size = 2 if op & 1 else 1
    where = f"{_PTR[size]} {segment[:2] + ':' if segment else ''}{mem.text}"
    if op < 0xBE:
        return _Load(address, length, f"movzx {_NAMES[bits][reg]}, {where}", addr, _REG64[reg], size)
    mask = (1 << bits) - 1
    return _LoadSigned(address, length, f"movsx {_NAMES[bits][reg]}, {where}", addr, _REG64[reg], size, mask)


def _plan_memory(
    code: bytes, address: int, prefix: int, rex: int, pos: int, bits: int
) -> DisplacedInstruction | None:
    """Instructions with a ModRM memory operand: stores, lea, loads, cmp.

    ``prefix`` is 0, 66 (16-bit operand) or a segment override (loads only).
    """
    op = code[pos]
    modrm_pos = pos + 1
    mem = _decode_mem(code, modrm_pos, rex)
    if mem is None:
        return None
    end = modrm_pos + mem.size
    ext = (code[modrm_pos] >> 3) & 7
    reg = ext | (8 if rex & 4 else 0)
    names = _NAMES[bits]
    size = bits // 8
    segment = _SEGMENTS.get(prefix, "")
    byte_op = op in (0x88, 0x8A, 0x38, 0x3A, 0x80, 0xC6)
    if byte_op and prefix == 0x66:
        return None
    where = f"{segment[:2] + ':' if segment else ''}{mem.text}"

    if op in (0x89, 0x88, 0xC7, 0xC6, 0x8D):  # stores and lea: no segment override
        if segment or (op == 0x8D and prefix):
            return None
        if op == 0x8D:  # lea r, [mem]
            mask = (1 << bits) - 1
            text = f"lea {names[reg]}, {mem.text}"
            if mem.rip:
                return _SetConst(address, end, text, _REG64[reg], (address + end + mem.disp) & mask)
            lea_addr = _address(mem, address + end, "")
            assert lea_addr is not None
            return _Lea(address, end, text, lea_addr, _REG64[reg], mask)
        if op in (0x89, 0x88):  # mov [mem], r
            if op == 0x88:
                field, shift, name = _byte_reg(reg, rex)
                size = 1
            else:
                field, shift, name = _REG64[reg], 0, names[reg]
            addr = _address(mem, address + end, "")
            assert addr is not None
            return _StoreReg(address, end, f"mov {_PTR[size]} {where}, {name}", addr, field, shift, size)
        if ext != 0:
            return None
        if op == 0xC6:
            size = 1
        isize = 4 if size == 8 else size  # mov [mem], imm (imm32 sign-extended with REX.W)
        imm = _immediate(code, end, isize)
        if imm is None:
            return None
        length = end + isize
        addr = _address(mem, address + length, "")
        assert addr is not None
        data = (imm & ((1 << 8 * size) - 1)).to_bytes(size, "little")
        return _StoreConst(address, length, f"mov {_PTR[size]} {where}, {_hex(imm)}", addr, data)

    if op in (0x8B, 0x8A, 0x63):  # loads
        if op == 0x63 and not rex & 8:
            return None  # movsxd r32, r/m32 (a plain mov): not emitted by compilers
        addr = _address(mem, address + end, segment)
        if addr is None:
            return None
        if op == 0x8A:
            field, shift, name = _byte_reg(reg, rex)
            return _LoadMerge(address, end, f"mov {name}, byte ptr {where}", addr, field, 1, shift)
        if op == 0x63:
            text = f"movsxd {names[reg]}, dword ptr {where}"
            return _LoadSigned(address, end, text, addr, _REG64[reg], 4, _MASK64)
        text = f"mov {names[reg]}, {_PTR[size]} {where}"
        if bits == 16:
            return _LoadMerge(address, end, text, addr, _REG64[reg], 2, 0)
        return _Load(address, end, text, addr, _REG64[reg], size)

    if op in (0x38, 0x39, 0x3A, 0x3B):  # cmp [mem], r  and  cmp r, [mem]
        if byte_op:
            field, shift, name = _byte_reg(reg, rex)
            size = 1
        else:
            field, shift, name = _REG64[reg], 0, names[reg]
        addr = _address(mem, address + end, segment)
        if addr is None:
            return None
        ptr = f"{_PTR[size]} {where}"
        mem_first = op in (0x38, 0x39)
        text = f"cmp {ptr}, {name}" if mem_first else f"cmp {name}, {ptr}"
        return _CmpMemReg(address, end, text, addr, size, (field, shift), mem_first)

    if op in (0x80, 0x81, 0x83) and ext == 7:  # cmp [mem], imm
        if op == 0x80:
            size = 1
        isize = 1 if op in (0x80, 0x83) else min(size, 4)
        imm = _immediate(code, end, isize)
        if imm is None:
            return None
        length = end + isize
        addr = _address(mem, address + length, segment)
        if addr is None:
            return None
        return _CmpMemImm(address, length, f"cmp {_PTR[size]} {where}, {_hex(imm)}", addr, size, imm)
    return None


def call_instruction_length(code: bytes) -> int | None:
    """Length of the CALL at the start of ``code``, or None if it is not a near CALL.

    STEP_OVER puts a temporary breakpoint right after a call, so it only needs the
    length: e8 rel32, or ff /2 with any ModRM/SIB/displacement form, behind any
    legacy prefixes (bnd = f2, notrack = 3e, 66, 67, segments) and a REX.  ``66 e8``
    is refused: Intel ignores the 66 (rel32), AMD honours it (rel16), so its
    length depends on the CPU.
    """
    n = min(len(code), _MAX_LENGTH)
    pos = 0
    while pos < n and code[pos] in _CALL_PREFIXES:
        pos += 1
    has_66 = 0x66 in code[:pos]
    if pos < n and code[pos] & 0xF0 == 0x40:
        pos += 1
    if pos >= n:
        return None
    op = code[pos]
    length: int | None = None
    if op == 0xE8 and not has_66:
        length = pos + 5
    elif op == 0xFF and pos + 1 < n and (code[pos + 1] >> 3) & 7 == 2:
        size = _modrm_length(code[:n], pos + 1)
        if size is not None:
            length = pos + 1 + size
    if length is None or length > n:
        return None
    return length
