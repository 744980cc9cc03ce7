"""Disassembly with capstone: decoded instructions, no formatting.

The console turns these into cdb's MASM layout; the engine only decodes.
Memory that cannot be read ends the listing (an instruction is never
decoded from a partial read)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import capstone

ReadMemory = Callable[[int, int], bytes]
_MAX_INSTRUCTION = 15


@dataclass(frozen=True, slots=True)
class Instruction:
    """One decoded instruction. ``target`` is the address a direct branch or
    call goes to (or a rip-relative operand points at), else None."""

    address: int
    size: int
    code: bytes
    mnemonic: str
    operands: str
    target: int | None
    #: ``module!symbol+0xoff`` of ``target``, when the engine knows it.
    target_symbol: str | None = None

    def __str__(self) -> str:
        return f"{self.address:#x}: {self.mnemonic} {self.operands}".rstrip()


@cache
def _decoder() -> Any:
    decoder = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    decoder.detail = True
    return decoder


def _target_of(insn: Any) -> int | None:
    for operand in insn.operands:
        if operand.type == capstone.x86.X86_OP_IMM and insn.group(capstone.CS_GRP_JUMP) | insn.group(
            capstone.CS_GRP_CALL
        ):
            return int(operand.imm) & 0xFFFFFFFFFFFFFFFF
        if operand.type == capstone.x86.X86_OP_MEM and operand.mem.base == capstone.x86.X86_REG_RIP:
            return int(insn.address + insn.size + operand.mem.disp) & 0xFFFFFFFFFFFFFFFF
    return None


def disassemble(code: bytes, address: int, count: int) -> list[Instruction]:
    """Decode up to ``count`` instructions of ``code`` placed at ``address``."""
    out = []
    for insn in _decoder().disasm(code, address):
        out.append(
            Instruction(
                insn.address, insn.size, bytes(insn.bytes), insn.mnemonic, insn.op_str, _target_of(insn)
            )
        )
        if len(out) >= count:
            break
    return out


def disassemble_memory(read: ReadMemory, address: int, count: int) -> list[Instruction]:
    """Decode ``count`` instructions from target memory, reading as it goes."""
    out: list[Instruction] = []
    cursor = address
    while len(out) < count:
        code = read(cursor, min(4096, (count - len(out)) * _MAX_INSTRUCTION))
        if not code:
            break
        chunk = disassemble(code, cursor, count - len(out))
        if not chunk:
            break  # undecodable bytes: stop rather than guess
        # drop an instruction that may have been cut by the end of the read
        if len(code) < (count - len(out)) * _MAX_INSTRUCTION:
            out.extend(chunk)
            break
        last = chunk[-1]
        if last.address + last.size > cursor + len(code) - _MAX_INSTRUCTION and len(chunk) > 1:
            chunk = chunk[:-1]
        out.extend(chunk)
        cursor = chunk[-1].address + chunk[-1].size
    return out[:count]
