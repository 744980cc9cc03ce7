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
So the decoder here is deliberately narrow: it recognises a short whitelist of
encodings (nops/endbr64, push, register moves, add/sub with an immediate,
xor-zeroing, rip-relative lea, mov of an immediate) and answers ``None`` for
anything else, including prefixes it does not need to understand.  ``None``
is always safe: the engine falls back to the two-stop single step.

All decoding happens once, in :func:`plan_displaced`, when the breakpoint is
inserted.  The result is one small immutable object per breakpoint whose
``apply`` method is specialised to the instruction (one subclass per kind)
and holds every operand precomputed: register field names, the next ``rip``,
immediates already sign-extended and masked, the bytes a ``push imm`` writes.
``apply`` runs on every hit, so it does plain integer arithmetic on the
``UserRegs`` fields and allocates nothing but the memory-write tuple.
"""

from __future__ import annotations

from typing import Final

from lindbg.arch.x86_64 import UserRegs

__all__ = ["DisplacedInstruction", "call_instruction_length", "plan_displaced"]

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

    def apply(self, regs: UserRegs) -> tuple[int, bytes] | None:
        """Emulate the instruction on ``regs`` in place.

        ``rip`` is advanced past the instruction and the other registers and
        flags are updated exactly as the CPU would.  Returns the one memory
        write the instruction makes as ``(address, little-endian bytes)``, which
        the engine must perform before resuming, or ``None`` when it writes no
        memory.  The base class is a no-op instruction (nop, endbr64).
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

    def apply(self, regs: UserRegs) -> tuple[int, bytes] | None:
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

    def apply(self, regs: UserRegs) -> tuple[int, bytes] | None:
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

    def apply(self, regs: UserRegs) -> tuple[int, bytes] | None:
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

    def apply(self, regs: UserRegs) -> tuple[int, bytes] | None:
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

    def apply(self, regs: UserRegs) -> tuple[int, bytes] | None:
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

    def apply(self, regs: UserRegs) -> tuple[int, bytes] | None:
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

    def apply(self, regs: UserRegs) -> tuple[int, bytes] | None:
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

    def apply(self, regs: UserRegs) -> tuple[int, bytes] | None:
        setattr(regs, self._dest, 0)
        regs.eflags = (regs.eflags & _KEEP_FLAGS) | _ZF | _PF
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
    elif legacy:
        return None  # no other instruction we emulate carries a legacy prefix
    else:
        plan = _plan_plain(code, address, rex, pos)
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


def _plan_plain(code: bytes, address: int, rex: int, pos: int) -> DisplacedInstruction | None:
    """Every whitelisted instruction other than the nops (no legacy prefix allowed)."""
    n = len(code)
    op = code[pos]
    wide = bool(rex & 8)
    r_ext = 8 if rex & 4 else 0
    b_ext = 8 if rex & 1 else 0
    after = pos + 1  # position just after the opcode

    if 0x50 <= op <= 0x57:  # push r64 (REX.W is ignored)
        field = _REG64[(op & 7) | b_ext]
        return _PushReg(address, after, f"push {field}", field)
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

    if after >= n:
        return None
    modrm = code[after]
    mod = modrm >> 6
    reg = ((modrm >> 3) & 7) | r_ext
    rm = (modrm & 7) | b_ext
    names = _REG64 if wide else _REG32
    mask = _MASK64 if wide else _MASK32

    if op == 0x8D and mod == 0 and modrm & 7 == 5:  # lea r, [rip + disp32] (REX.B/X ignored)
        if after + 5 > n:
            return None
        disp = _sign_extend(int.from_bytes(code[after + 1 : after + 5], "little"), 32)
        length = after + 5
        value = (address + length + disp) & mask
        text = f"lea {names[reg]}, [rip{'+' if disp >= 0 else ''}{_hex(disp)}]"
        return _SetConst(address, length, text, _REG64[reg], value)
    if mod != 3:
        return None  # everything below is register-only; memory operands are not emulated
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
