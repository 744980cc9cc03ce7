"""Tests of lindbg.arch.x86_64_displaced against the real CPU.

Ground truth comes from a tiny C harness compiled once per session: it maps a
scratch stack at STACK_BASE, a data page at DATA_BASE and a code page at
CODE_BASE, fills the stack and data with bytes derived from a per-case seed
(splitmix64, so Python can recompute any byte without a copy), applies an
optional patch (e.g. a value a cmp must meet exactly), sets the fs and gs
bases, copies the instruction bytes to CODE_BASE followed by an absolute jump
back, loads all 16 general registers and the status flags from its input,
runs the instruction, and prints every register, the flags and every byte of
the stack and data that changed.  Every emulation is compared with that,
register for register, flag for flag, byte for byte; loads read through a
``read`` built from the same seeded memory.  One harness process serves a
whole batch of cases, so thousands of cases run in well under a second.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lindbg.arch.x86_64 import GENERAL_REGISTERS, UserRegs
from lindbg.arch.x86_64_displaced import (
    DisplacedFault,
    DisplacedInstruction,
    call_instruction_length,
    plan_displaced,
)

try:
    import capstone
except ImportError:  # pragma: no cover - the capstone cross-check is optional
    capstone = None

STACK_BASE = 0x10000000
STACK_SIZE = 0x10000
STACK_TOP = STACK_BASE + 0x8000
CODE_BASE = 0x20000000
DATA_BASE = 0x30000000
DATA_SIZE = 0x2000
DATA_MID = DATA_BASE + 0x1000
FS_BASE = DATA_BASE + 0x100  # what the harness sets as fs base unless a case says otherwise
GS_BASE = DATA_BASE + 0x1800
M64 = (1 << 64) - 1
STATUS = 0x8D5  # CF PF AF ZF SF OF
GAMMA = 0x9E3779B97F4A7C15
DATA_SALT = 0x5DEECE66D
HW_ORDER = (
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
)  # fmt: skip

HARNESS_C = r"""
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define STACK_BASE 0x10000000UL
#define STACK_SIZE 0x10000UL
#define CODE_BASE 0x20000000UL
#define DATA_BASE 0x30000000UL
#define DATA_SIZE 0x2000UL
#define GAMMA 0x9E3779B97F4A7C15UL
#define DATA_SALT 0x5DEECE66DUL

uint64_t g_in[17], g_out[17], g_saved_rsp, g_code;
extern void run_insn(void);
extern char run_insn_back[];
static unsigned char pre_stack[STACK_SIZE], pre_data[DATA_SIZE];

#define LD(i, r) "mov g_in+" #i "(%rip), %" #r "\n"
#define ST(i, r) "mov %" #r ", g_out+" #i "(%rip)\n"
__asm__(
    ".text\n.globl run_insn\nrun_insn:\n"
    "push %rbx\npush %rbp\npush %r12\npush %r13\npush %r14\npush %r15\n"
    "mov %rsp, g_saved_rsp(%rip)\n"
    "pushq g_in+128(%rip)\npopfq\n"
    LD(0, rax) LD(8, rcx) LD(16, rdx) LD(24, rbx) LD(40, rbp) LD(48, rsi) LD(56, rdi)
    LD(64, r8) LD(72, r9) LD(80, r10) LD(88, r11) LD(96, r12) LD(104, r13) LD(112, r14) LD(120, r15)
    LD(32, rsp)
    "jmp *g_code(%rip)\n"
    ".globl run_insn_back\nrun_insn_back:\n"
    ST(0, rax) ST(8, rcx) ST(16, rdx) ST(24, rbx) ST(32, rsp) ST(40, rbp) ST(48, rsi) ST(56, rdi)
    ST(64, r8) ST(72, r9) ST(80, r10) ST(88, r11) ST(96, r12) ST(104, r13) ST(112, r14) ST(120, r15)
    "mov g_saved_rsp(%rip), %rsp\n"
    "pushfq\npopq g_out+128(%rip)\ncld\n"
    "pop %r15\npop %r14\npop %r13\npop %r12\npop %rbp\npop %rbx\nret\n");

/* arch_prctl without libc: nothing between setting fs and restoring it may touch TLS. */
static long raw_arch_prctl(long code, unsigned long addr) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "0"(158L), "D"(code), "S"(addr) : "rcx", "r11", "memory");
    return ret;
}

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    return z ^ (z >> 31);
}

static void fill(unsigned char *p, size_t size, uint64_t seed) {
    for (size_t i = 0; i < size / 8; i++) {
        uint64_t w = mix(seed + (i + 1) * GAMMA);
        memcpy(p + 8 * i, &w, 8);
    }
}

static unsigned char *at(uint64_t a, unsigned char *stack, unsigned char *data) {
    if (a >= STACK_BASE && a < STACK_BASE + STACK_SIZE) return stack + (a - STACK_BASE);
    if (a >= DATA_BASE && a < DATA_BASE + DATA_SIZE) return data + (a - DATA_BASE);
    return NULL;
}

int main(void) {
    unsigned char *stack = mmap((void *)STACK_BASE, STACK_SIZE, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    unsigned char *code = mmap((void *)CODE_BASE, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    unsigned char *data = mmap((void *)DATA_BASE, DATA_SIZE, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (stack != (void *)STACK_BASE || code != (void *)CODE_BASE || data != (void *)DATA_BASE) {
        perror("mmap");
        return 2;
    }
    unsigned long saved_fs = 0, saved_gs = 0;
    raw_arch_prctl(0x1003, (unsigned long)&saved_fs); /* ARCH_GET_FS */
    raw_arch_prctl(0x1004, (unsigned long)&saved_gs); /* ARCH_GET_GS */
    g_code = CODE_BASE;
    char hex[64], patch[64];
    while (scanf("%63s", hex) == 1) {
        size_t n = strlen(hex) / 2;
        for (size_t i = 0; i < n; i++) {
            unsigned v;
            sscanf(hex + 2 * i, "%2x", &v);
            code[i] = (unsigned char)v;
        }
        uint64_t back = (uint64_t)run_insn_back;
        code[n] = 0xff; code[n + 1] = 0x25; memset(code + n + 2, 0, 4); memcpy(code + n + 6, &back, 8);
        for (int i = 0; i < 17; i++) if (scanf("%lx", &g_in[i]) != 1) return 3;
        uint64_t seed, fs, gs, patch_at;
        if (scanf("%lx %lx %lx %lx %63s", &seed, &fs, &gs, &patch_at, patch) != 5) return 3;
        fill(stack, STACK_SIZE, seed);
        fill(data, DATA_SIZE, seed ^ DATA_SALT);
        if (patch[0] != '-') {
            for (size_t i = 0; i < strlen(patch) / 2; i++) {
                unsigned v;
                unsigned char *p = at(patch_at + i, stack, data);
                if (p == NULL) return 4;
                sscanf(patch + 2 * i, "%2x", &v);
                *p = (unsigned char)v;
            }
        }
        memcpy(pre_stack, stack, STACK_SIZE);
        memcpy(pre_data, data, DATA_SIZE);
        raw_arch_prctl(0x1002, fs); /* ARCH_SET_FS */
        raw_arch_prctl(0x1001, gs); /* ARCH_SET_GS */
        run_insn();
        raw_arch_prctl(0x1001, saved_gs);
        raw_arch_prctl(0x1002, saved_fs);
        for (int i = 0; i < 17; i++) printf("%lx ", g_out[i]);
        int changed = 0;
        for (size_t i = 0; i < STACK_SIZE; i++)
            if (stack[i] != pre_stack[i]) { printf("%lx=%02x ", STACK_BASE + i, stack[i]); changed = 1; }
        for (size_t i = 0; i < DATA_SIZE; i++)
            if (data[i] != pre_data[i]) { printf("%lx=%02x ", DATA_BASE + i, data[i]); changed = 1; }
        printf(changed ? "\n" : "-\n");
    }
    return 0;
}
"""

# Values that sit on the carry/overflow/zero/nibble boundaries at 32 and 64 bits.
EDGE_VALUES = (
    0, 1, 2, 7, 8, 0xF, 0x10, 0x17, 0x18, 0x7F, 0x80, 0xFF, 0x100,
    0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFF, 0x100000000, 0x1FFFFFFFF,
    0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0x8000000000000001,
    0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFF0, 0xFFFFFFFFFFFFFF80, 0xFFFFFFFF80000000,
    0x00007FFFFFFFE000, 0x12345678ABCDEF01,
)  # fmt: skip


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Compile the native ground-truth harness once per session."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    directory = tmp_path_factory.mktemp("displaced")
    source = directory / "harness.c"
    source.write_text(HARNESS_C)
    binary = directory / "harness"
    subprocess.run(
        ["gcc", "-O1", "-no-pie", "-fno-stack-protector", "-o", str(binary), str(source)],
        check=True,
        capture_output=True,
    )
    return binary


class Case(NamedTuple):
    """One instruction run: bytes, 16 registers in hardware order, eflags, memory set-up."""

    code: bytes
    regs: list[int]
    flags: int
    patch: tuple[int, bytes] | None = None  # bytes stored at an address before the run
    fs_base: int = FS_BASE
    gs_base: int = GS_BASE


def _mix(z: int) -> int:
    """splitmix64's finaliser, as in the harness."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class Memory:
    """The harness's stack and data before the instruction, computed lazily from the seed."""

    REGIONS = ((STACK_BASE, STACK_SIZE, 0), (DATA_BASE, DATA_SIZE, DATA_SALT))

    def __init__(self, seed: int, patch: tuple[int, bytes] | None = None) -> None:
        self.seed = seed
        self.patch: dict[int, int] = {}
        if patch is not None:
            for i, byte in enumerate(patch[1]):
                self.patch[patch[0] + i] = byte
        self.reads: list[tuple[int, int]] = []

    def byte(self, address: int) -> int | None:
        """The byte at ``address``, or None if the harness does not map it."""
        if address in self.patch:
            return self.patch[address]
        for base, size, salt in self.REGIONS:
            if base <= address < base + size:
                offset = address - base
                word = _mix((self.seed ^ salt) + (offset // 8 + 1) * GAMMA & M64)
                return (word >> (8 * (offset % 8))) & 0xFF
        return None

    def read(self, address: int, size: int) -> bytes:
        """What the engine's reader does: the mapped prefix of the range."""
        self.reads.append((address, size))
        out = bytearray()
        for i in range(size):
            value = self.byte((address + i) & M64)
            if value is None:
                break
            out.append(value)
        return bytes(out)


def case_seed(index: int) -> int:
    return _mix(index * 0x1234567 + 99)


def run_native(harness: Path, cases: Sequence[Case]) -> list[tuple[list[int], int, dict[int, int]]]:
    """Run each case on the CPU: (registers in hardware order, eflags, changed bytes by address)."""
    lines = []
    for i, case in enumerate(cases):
        patch_at, patch = case.patch if case.patch else (0, b"")
        lines.append(
            " ".join(
                [
                    case.code.hex(),
                    *(f"{v:x}" for v in case.regs),
                    f"{case.flags:x}",
                    f"{case_seed(i):x}",
                    f"{case.fs_base:x}",
                    f"{case.gs_base:x}",
                    f"{patch_at:x}",
                    patch.hex() or "-",
                ]
            )
        )
    done = subprocess.run(
        [str(harness)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True
    )
    results: list[tuple[list[int], int, dict[int, int]]] = []
    for line in done.stdout.splitlines():
        fields = line.split()
        values = [int(f, 16) for f in fields[:17]]
        changed: dict[int, int] = {}
        if fields[17:] != ["-"]:
            for item in fields[17:]:
                where, byte = item.split("=")
                changed[int(where, 16)] = int(byte, 16)
        results.append((values[:16], values[16], changed))
    assert len(results) == len(cases)
    return results


def make_regs(values: Iterable[int], flags: int, rip: int) -> UserRegs:
    """A UserRegs as the engine would hold it at the breakpoint stop."""
    regs = UserRegs()
    for name, value in zip(HW_ORDER, values, strict=True):
        setattr(regs, name, value)
    regs.eflags = flags
    regs.rip = rip
    regs.cs = 0x33
    regs.ss = 0x2B
    regs.orig_rax = M64
    return regs


def check_against_cpu(harness: Path, cases: Sequence[Case | tuple[bytes, list[int], int]]) -> None:
    """Emulate every case and compare with the CPU: registers, flags and memory."""
    full = [c if isinstance(c, Case) else Case(*c) for c in cases]
    native = run_native(harness, full)
    for i, (case, (hw_regs, hw_flags, hw_changed)) in enumerate(zip(full, native, strict=True)):
        code, values, flags = case.code, case.regs, case.flags
        plan = plan_displaced(code + b"\xcc" * 16, CODE_BASE)
        assert plan is not None, code.hex()
        assert plan.length == len(code), code.hex()
        # Non-status bits the CPU would not let us set from user mode (e.g. bit 21) must survive too.
        in_flags = flags | (1 << 21)
        regs = make_regs(values, in_flags, CODE_BASE + 1)
        regs.fs_base, regs.gs_base = case.fs_base, case.gs_base
        memory = Memory(case_seed(i), case.patch)
        write = plan.apply(regs, memory.read)
        where = f"{plan.text} ({code.hex()}) regs={[hex(v) for v in values]} flags={flags:#x}"
        assert [getattr(regs, n) for n in HW_ORDER] == hw_regs, where
        assert regs.rip == CODE_BASE + len(code), where
        assert regs.eflags & STATUS == hw_flags & STATUS, f"{where}: {regs.eflags:#x} vs CPU {hw_flags:#x}"
        assert regs.eflags & ~STATUS == in_flags & ~STATUS, where
        assert (regs.cs, regs.ss, regs.orig_rax) == (0x33, 0x2B, M64), where
        assert (regs.fs_base, regs.gs_base) == (case.fs_base, case.gs_base), where
        assert bool(memory.reads) == plan.reads_memory, where
        changed: dict[int, int] = {}
        if write is not None:
            address, data = write
            for j, byte in enumerate(data):
                before = memory.byte(address + j)
                assert before is not None, f"{where}: writes outside the harness's memory at {address:#x}"
                if byte != before:
                    changed[address + j] = byte
        assert changed == hw_changed, where


def random_regs(rng: random.Random, rsp: int | None = None) -> list[int]:
    """16 register values mixing edge values and random ones."""
    values = [rng.choice(EDGE_VALUES) if rng.random() < 0.5 else rng.getrandbits(64) for _ in range(16)]
    if rsp is not None:
        values[4] = rsp
    return values


def random_flags(rng: random.Random) -> int:
    """Random status flags on top of the always-one bit 1 and IF."""
    return 0x202 | (rng.getrandbits(12) & STATUS)


def check_length_with_capstone(codes: Iterable[bytes]) -> None:
    """Cross-check decoded lengths with capstone when it is importable."""
    if capstone is None:
        return
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    for code in codes:
        plan = plan_displaced(code, CODE_BASE)
        assert plan is not None, code.hex()
        insn = next(md.disasm(code, CODE_BASE), None)
        assert insn is not None, code.hex()
        assert insn.size == plan.length, (
            f"{code.hex()}: capstone {insn.mnemonic} {insn.op_str} is {insn.size}"
        )


# --------------------------------------------------------------------------- nops

NOPS = [
    bytes.fromhex(h)
    for h in (
        "90", "6690", "f30f1efa", "0f1f00", "0f1f4000", "0f1f440000", "660f1f440000",
        "0f1f8000000000", "0f1f840000000000", "660f1f840000000000", "662e0f1f840000000000",
        "66662e0f1f840000000000", "6666662e0f1f840000000000", "666666662e0f1f840000000000",
        "6666666666662e0f1f840000000000", "0f1f0578563412", "0f1f042500000000", "480f1f00",
        "0f1fc0", "670f1f00", "3e0f1f4000", "660f1f00",
    )
]  # fmt: skip


def test_nops_match_cpu(harness: Path) -> None:
    rng = random.Random(1)
    check_against_cpu(
        harness, [(code, random_regs(rng), random_flags(rng)) for code in NOPS for _ in range(3)]
    )


def test_nop_lengths_and_text() -> None:
    check_length_with_capstone(NOPS)
    endbr = plan_displaced(bytes.fromhex("f30f1efa554889e5"), 0x401000)
    assert endbr is not None and endbr.text == "endbr64" and endbr.length == 4
    nop = plan_displaced(b"\x90", 0x401000)
    assert nop is not None and nop.text == "nop"


@pytest.mark.parametrize(
    "hexcode",
    [
        "66666666666666662e0f1f840000000000",  # 17 bytes: over the 15-byte limit (#GP)
        "666666666666662e0f1f840000000000",  # 16 bytes
        "4190",  # xchg r8d, eax, not a nop
        "f390",  # pause
        "0f1f48",  # 0f 1f /1
        "0f1f",  # truncated
        "0f1f44",  # truncated
        "f00f1f00",  # lock nop: #UD
    ],
)
def test_not_nops(hexcode: str) -> None:
    assert plan_displaced(bytes.fromhex(hexcode), 0x1000) is None


# --------------------------------------------------------------------------- push


def test_push_register_matches_cpu(harness: Path) -> None:
    rng = random.Random(2)
    cases: list[Case] = []
    for rex in (b"", b"\x41", b"\x40", b"\x48", b"\x49"):
        for r in range(8):
            for rsp in (STACK_TOP, STACK_TOP + 3, STACK_TOP - 8):
                cases.append((rex + bytes([0x50 + r]), random_regs(rng, rsp), random_flags(rng)))
    check_against_cpu(harness, cases)


def test_push_immediate_matches_cpu(harness: Path) -> None:
    rng = random.Random(3)
    codes = [bytes([0x6A, b]) for b in (0, 1, 0x7F, 0x80, 0xFF)]
    codes += [b"\x68" + v.to_bytes(4, "little") for v in (0, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x12345678)]
    check_against_cpu(harness, [(code, random_regs(rng, STACK_TOP), random_flags(rng)) for code in codes])
    check_length_with_capstone(codes)


def test_push_details() -> None:
    regs = make_regs([0] * 16, 0x246, 0x1001)
    regs.rsp = 0x7FFC0010
    regs.rbp = 0x1122334455667788
    plan = plan_displaced(b"\x55\x48\x89\xe5", 0x1000)
    assert plan is not None and plan.text == "push rbp"
    assert plan.apply(regs) == (0x7FFC0008, bytes.fromhex("8877665544332211"))
    assert (regs.rsp, regs.rip, regs.eflags) == (0x7FFC0008, 0x1001, 0x246)
    # push rsp pushes the value rsp had before the push
    plan = plan_displaced(b"\x54", 0x1000)
    assert plan is not None
    assert plan.apply(regs) == (0x7FFC0000, (0x7FFC0008).to_bytes(8, "little"))
    # rsp wraps around modulo 2**64
    regs.rsp = 0
    plan = plan_displaced(b"\x6a\xff", 0x1000)
    assert plan is not None and plan.text == "push -0x1"
    assert plan.apply(regs) == (M64 - 7, b"\xff" * 8)
    plan = plan_displaced(b"\x41\x57", 0x1000)
    assert plan is not None and plan.text == "push r15" and plan.length == 2
    assert plan_displaced(b"\x66\x55", 0x1000) is None  # push r16
    assert plan_displaced(b"\x68\x00\x00", 0x1000) is None  # truncated


# --------------------------------------------------------------------------- mov r, r


def mov_codes() -> list[bytes]:
    """Every mov r64,r64 / r32,r32 register pair in both directions (89 and 8b)."""
    codes = []
    for wide in (True, False):
        for opcode in (0x89, 0x8B):
            for reg in range(16):
                for rm in range(16):
                    rex = 0x40 | (8 if wide else 0) | (4 if reg >= 8 else 0) | (1 if rm >= 8 else 0)
                    prefix = bytes([rex]) if rex != 0x40 else b""
                    codes.append(prefix + bytes([opcode, 0xC0 | (reg & 7) << 3 | (rm & 7)]))
    return codes


def test_mov_register_matches_cpu(harness: Path) -> None:
    rng = random.Random(4)
    codes = mov_codes() + [
        bytes.fromhex(h) for h in ("4089c0", "4289c0", "4a89e5")
    ]  # REX without W/R/B; REX.X
    check_against_cpu(harness, [(code, random_regs(rng), random_flags(rng)) for code in codes])
    check_length_with_capstone(codes)


def test_mov_register_text() -> None:
    plan = plan_displaced(bytes.fromhex("4889e5"), 0)
    assert plan is not None and plan.text == "mov rbp, rsp"
    plan = plan_displaced(bytes.fromhex("4189f8"), 0)
    assert plan is not None and plan.text == "mov r8d, edi"
    plan = plan_displaced(bytes.fromhex("488945f8"), 0)
    assert plan is not None and plan.text == "mov qword ptr [rbp-0x8], rax"
    assert plan_displaced(bytes.fromhex("6689c0"), 0) is None  # 16-bit mov


# --------------------------------------------------------------------------- add / sub


def arith_codes() -> list[tuple[bytes, int, int]]:
    """add/sub r32/r64 with imm8 (83) and imm32 (81) on every register, boundary immediates.

    Returns (code, register number, sign-extended immediate) triples.
    """
    imm8 = (0, 1, 8, 0x10, 0x18, 0x7F, -0x80, -8, -1)
    imm32 = (0x7FFFFFFF, -0x80000000, -1, 0x1000, 0x12345678, -0x1000)
    codes = []
    for wide in (True, False):
        for ext in (0, 5):
            for r in range(16):
                rex = 0x40 | (8 if wide else 0) | (1 if r >= 8 else 0)
                prefix = bytes([rex]) if rex != 0x40 else b""
                modrm = 0xC0 | ext << 3 | (r & 7)
                codes += [
                    (prefix + bytes([0x83, modrm]) + i.to_bytes(1, "little", signed=True), r, i)
                    for i in imm8[r % 3 :: 3]
                ]
                codes += [
                    (prefix + bytes([0x81, modrm]) + i.to_bytes(4, "little", signed=True), r, i)
                    for i in imm32[r % 2 :: 2]
                ]
    return codes


def arith_inputs(imm: int, rng: random.Random) -> set[int]:
    """Values for the destination register that hit every flag edge for this immediate, at 32 and 64 bits."""
    targets = set()
    for base in (0, 1, -1, 0x80000000, 0x8000000000000000, 0x10, 0x100000000):
        targets |= {(base + imm) & M64, (base - imm) & M64, (base + imm - 1) & M64, (base - imm + 1) & M64}
    return targets | set(rng.sample(EDGE_VALUES, 6)) | {rng.getrandbits(64), rng.getrandbits(32)}


def test_add_sub_matches_cpu(harness: Path) -> None:
    rng = random.Random(5)
    cases: list[Case] = []
    codes = arith_codes()
    for code, r, imm in codes:
        for value in sorted(arith_inputs(imm, rng)):
            regs = random_regs(rng)
            regs[r] = value
            cases.append((code, regs, random_flags(rng)))
    check_against_cpu(harness, cases)
    check_length_with_capstone(code for code, _, _ in codes)


def test_add_sub_text_and_refusals() -> None:
    plan = plan_displaced(bytes.fromhex("4883ec18"), 0)
    assert plan is not None and plan.text == "sub rsp, 0x18" and plan.length == 4
    plan = plan_displaced(bytes.fromhex("4881ec08010000"), 0)
    assert plan is not None and plan.text == "sub rsp, 0x108" and plan.length == 7
    plan = plan_displaced(bytes.fromhex("4883c480"), 0)
    assert plan is not None and plan.text == "add rsp, -0x80"
    assert plan_displaced(bytes.fromhex("48836df801"), 0) is None  # sub qword [rbp-8], 1
    plan = plan_displaced(bytes.fromhex("4883f801"), 0)
    assert plan is not None and plan.text == "cmp rax, 0x1"
    assert plan_displaced(bytes.fromhex("4883e0f0"), 0) is None  # and rax, -16 (/4)
    assert plan_displaced(bytes.fromhex("4883ec"), 0) is None  # truncated


def test_sub_rsp_flags_by_hand() -> None:
    """A few flag results worked out by hand, independent of the harness."""
    plan = plan_displaced(bytes.fromhex("4883ec08"), 0x1000)
    assert plan is not None
    cases = {
        0x8: (0, 0x44),  # zero: ZF PF
        0x7: (M64, 0x95),  # borrow: CF AF SF PF (0xff has even parity)
        0x8000000000000007: (0x7FFFFFFFFFFFFFFF, 0x814),  # signed overflow: OF AF PF
        0x7FFF0010: (0x7FFF0008, 0x10),  # AF only (0x08 has odd parity)
    }
    for rsp, (result, flags) in cases.items():
        regs = make_regs([0] * 16, 0x202 | STATUS, 0x1001)
        regs.rsp = rsp
        assert plan.apply(regs) is None
        assert regs.rsp == result
        assert regs.eflags == 0x202 | flags, hex(regs.eflags)
        assert regs.rip == 0x1004


# --------------------------------------------------------------------------- xor


def xor_codes() -> list[bytes]:
    codes = []
    for wide in (False, True):
        for opcode in (0x31, 0x33):
            for reg in range(16):
                for rm in range(16):
                    rex = 0x40 | (8 if wide else 0) | (4 if reg >= 8 else 0) | (1 if rm >= 8 else 0)
                    prefix = bytes([rex]) if rex != 0x40 else b""
                    codes.append(prefix + bytes([opcode, 0xC0 | (reg & 7) << 3 | (rm & 7)]))
    return codes


def test_xor_matches_cpu(harness: Path) -> None:
    rng = random.Random(6)
    cases: list[Case] = []
    for code in xor_codes():
        cases.append((code, random_regs(rng), random_flags(rng)))
        same = random_regs(rng)
        same[:] = [same[0]] * 16  # distinct registers holding equal values: zero result
        cases.append((code, same, random_flags(rng) | 0x10))
        signed = [rng.getrandbits(64) for _ in range(16)]
        signed[::2] = [v | 0x8000000080000000 for v in signed[::2]]
        cases.append((code, signed, 0x202 | STATUS))
    check_against_cpu(harness, cases)
    check_length_with_capstone(xor_codes())


def test_xor_text() -> None:
    plan = plan_displaced(b"\x31\xc0", 0)
    assert plan is not None and plan.text == "xor eax, eax"
    plan = plan_displaced(b"\x45\x31\xc9", 0)
    assert plan is not None and plan.text == "xor r9d, r9d" and plan.length == 3
    assert plan_displaced(b"\x31\x00", 0) is None  # xor [rax], eax


# --------------------------------------------------------------------------- lea [rip + disp]


def lea_codes() -> list[bytes]:
    codes = []
    for disp in (0, 1, -1, 0x1234, 0x7FFFFFFF, -0x80000000, -0x20000000 - 7):
        d = disp.to_bytes(4, "little", signed=True)
        for prefix, reg in (
            (b"\x48", 0),
            (b"\x48", 7),
            (b"\x4c", 7),
            (b"\x4c", 0),
            (b"\x49", 5),
            (b"", 6),
            (b"\x44", 3),
        ):
            codes.append(prefix + bytes([0x8D, 0x05 | reg << 3]) + d)
    return codes


def test_lea_rip_matches_cpu(harness: Path) -> None:
    rng = random.Random(7)
    check_against_cpu(harness, [(code, random_regs(rng), random_flags(rng)) for code in lea_codes()])
    check_length_with_capstone(lea_codes())


def test_lea_rip_value() -> None:
    plan = plan_displaced(bytes.fromhex("488d3d10200000"), 0x401136)
    assert plan is not None and plan.text == "lea rdi, [rip+0x2010]"
    regs = make_regs([0] * 16, 0x246, 0x401137)
    assert plan.apply(regs) is None
    assert regs.rdi == 0x401136 + 7 + 0x2010 and regs.rip == 0x40113D
    plan = plan_displaced(bytes.fromhex("4c8d05f0ffffff"), 0x10)  # wraps below zero
    assert plan is not None
    plan.apply(regs)
    assert regs.r8 == (0x10 + 7 - 0x10) & M64
    plan = plan_displaced(bytes.fromhex("488d4508"), 0)
    assert plan is not None and plan.text == "lea rax, [rbp+0x8]"
    assert plan_displaced(bytes.fromhex("67488d0500000000"), 0) is None  # eip-relative


# --------------------------------------------------------------------------- mov r, imm


def mov_imm_codes() -> list[bytes]:
    codes = []
    for r in range(16):
        prefix = b"\x41" if r >= 8 else b""
        codes.append(prefix + bytes([0xB8 + (r & 7)]) + (0x80000000 + r).to_bytes(4, "little"))
        codes.append(
            bytes([0x48 | (r >= 8)])
            + bytes([0xB8 + (r & 7)])
            + (0xFEDCBA9876543210 + r).to_bytes(8, "little")
        )
        for imm in (0, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF):
            codes.append(bytes([0x48 | (r >= 8)]) + bytes([0xC7, 0xC0 | (r & 7)]) + imm.to_bytes(4, "little"))
            codes.append(prefix + bytes([0xC7, 0xC0 | (r & 7)]) + imm.to_bytes(4, "little"))
    return codes


def test_mov_immediate_matches_cpu(harness: Path) -> None:
    rng = random.Random(8)
    check_against_cpu(harness, [(code, random_regs(rng), random_flags(rng)) for code in mov_imm_codes()])
    check_length_with_capstone(mov_imm_codes())


def test_mov_immediate_refusals() -> None:
    plan = plan_displaced(bytes.fromhex("48c70001000000"), 0)
    assert plan is not None and plan.text == "mov qword ptr [rax], 0x1"
    assert plan_displaced(bytes.fromhex("c7f800000000"), 0) is None  # xbegin
    assert plan_displaced(bytes.fromhex("66b80100"), 0) is None  # mov ax, 1
    assert plan_displaced(bytes.fromhex("48b80100"), 0) is None  # truncated imm64


# --------------------------------------------------------------------------- memory operands

Form = tuple[int, int, int | None, int]  # mod, rm (3 bits), SIB byte or None, REX.X|REX.B bits


def address_forms(rng: random.Random, sib_samples: int = 24) -> list[Form]:
    """Every non-SIB addressing form (with and without REX.B), the special SIB forms, and random SIBs."""
    forms: list[Form] = []
    for mod in (0, 1, 2):
        for rm in range(8):
            if rm == 4:
                continue
            for b in (0, 1):
                forms.append((mod, rm, None, b))  # mod 0 rm 5 is [rip+disp32], with REX.B too
    specials = [
        (0, 0x25, 0), (0, 0x25, 1), (0, 0x25, 2),  # [disp32]: no base, no index (REX.B/X irrelevant)
        (0, 0x24, 0), (1, 0x24, 0), (2, 0x24, 0),  # [rsp], [rsp+disp]
        (0, 0x24, 1), (1, 0x24, 1),  # [r12], [r12+disp8]
        (0, 0x20, 2), (1, 0xE4, 3),  # index 4 with REX.X is r12, scaled
        (0, 0xC5, 0), (0, 0x8D, 1), (0, 0x45, 2),  # no base, scaled index, disp32
        (1, 0x45, 0), (2, 0x6D, 1),  # base rbp/r13 with a displacement
        (0, 0x00, 0), (1, 0x1B, 3), (2, 0xFF, 3),  # base == index
    ]  # fmt: skip
    forms += [(mod, 4, sib, xb) for mod, sib, xb in specials]
    for _ in range(sib_samples):
        forms.append((rng.randrange(3), 4, rng.randrange(256), rng.randrange(4)))
    return forms


def build_mem(
    rng: random.Random,
    head: bytes,
    rex: int,
    opcode: bytes,
    reg: int,
    form: Form,
    tail: bytes,
    target: int,
    segment_base: int = 0,
    force_rex: bool = False,
) -> tuple[bytes, list[int], int] | None:
    """Encode ``head [REX] opcode ModRM [SIB] [disp] tail``, with registers putting the operand at ``target``.

    Returns (code, 16 register values, exact effective address), or None when the
    form cannot reach the target (only when base and index are one register).
    """
    mod, rm, sib, xb = form
    rex_byte = 0x40 | rex | (4 if reg & 8 else 0) | xb
    prefix = head + (bytes([rex_byte]) if rex_byte != 0x40 or force_rex else b"")
    modrm = bytes([mod << 6 | (reg & 7) << 3 | rm])
    base = index = None
    scale = 1
    rip = False
    disp_size = {0: 0, 1: 1, 2: 4}[mod]
    if rm == 4:
        assert sib is not None
        number = ((sib >> 3) & 7) | (8 if xb & 2 else 0)
        if number != 4:
            index, scale = number, 1 << (sib >> 6)
        if mod == 0 and sib & 7 == 5:
            disp_size = 4
        else:
            base = (sib & 7) | (8 if xb & 1 else 0)
        modrm += bytes([sib])
    elif mod == 0 and rm == 5:
        rip, disp_size = True, 4
    else:
        base = rm | (8 if xb & 1 else 0)
    regs = random_regs(rng)
    wanted = (target - segment_base) & M64
    index_value = rng.choice((0, 1, 3, 0x10, -1, -8, -0x40)) & M64 if index is not None else 0
    if base is None and not rip:
        disp = wanted - (index_value * scale if index is not None else 0)
        disp = (disp + (1 << 63)) % (1 << 64) - (1 << 63)
        if not -(1 << 31) <= disp < (1 << 31):
            return None
    elif disp_size == 1:
        disp = rng.randrange(-128, 128)
    elif disp_size == 4:
        disp = rng.choice((rng.randrange(-(1 << 31), 1 << 31), 0x100, -0x100))
    else:
        disp = 0
    if rip:
        length = len(prefix) + len(opcode) + len(modrm) + 4 + len(tail)
        disp = target - segment_base - (CODE_BASE + length)
        if not -(1 << 31) <= disp < (1 << 31):
            return None
    code = prefix + opcode + modrm + disp.to_bytes(disp_size, "little", signed=True) + tail
    if index is not None:
        regs[index] = index_value
    if base is not None:
        rest = (wanted - disp - (index_value * scale if index is not None else 0)) & M64
        if base == index:  # one register: value * (1 + scale) + disp
            value = ((wanted - disp) & M64) // (1 + scale)
            regs[base] = value
        else:
            regs[base] = rest
    ea = segment_base + disp
    if rip:
        ea += CODE_BASE + len(code)
    if base is not None:
        ea += regs[base]
    if index is not None:
        ea += regs[index] * scale
    return code, regs, ea & M64


def in_data(address: int, size: int) -> bool:
    return address >= DATA_BASE and address + size <= DATA_BASE + DATA_SIZE


def data_target(rng: random.Random) -> int:
    return rng.randrange(DATA_BASE + 0x40, DATA_BASE + DATA_SIZE - 0x40)


STORE_VARIANTS = [
    # head, rex, opcode, reg fields, immediate sizes, force REX
    (b"", 0x48, b"\x89", range(16), 0, False),
    (b"", 0x00, b"\x89", range(16), 0, False),
    (b"\x66", 0x00, b"\x89", range(16), 0, False),
    (b"", 0x00, b"\x88", range(8), 0, False),  # al..bl, ah..bh
    (b"", 0x00, b"\x88", range(16), 0, True),  # al..dil, r8b..r15b
    (b"", 0x48, b"\xc7", (0,), 4, False),
    (b"", 0x00, b"\xc7", (0,), 4, False),
    (b"\x66", 0x00, b"\xc7", (0,), 2, False),
    (b"", 0x00, b"\xc6", (0,), 1, False),
]


def test_stores_match_cpu(harness: Path) -> None:
    rng = random.Random(11)
    cases: list[Case] = []
    codes = []
    for head, rex, opcode, regs_range, isize, force in STORE_VARIANTS:
        for form in address_forms(rng):
            for _ in range(2):
                tail = rng.choice((0, 1, -1, 0x7F, -0x80, rng.getrandbits(32))) if isize else 0
                tail_bytes = (tail & ((1 << 8 * isize) - 1)).to_bytes(isize, "little") if isize else b""
                target = data_target(rng) if rng.random() < 0.8 else STACK_TOP + rng.randrange(-64, 64)
                built = build_mem(
                    rng, head, rex, opcode, rng.choice(regs_range), form, tail_bytes, target, 0, force
                )
                if built is None:
                    continue
                code, regs, ea = built
                assert in_data(ea, 8) or STACK_BASE <= ea < STACK_BASE + STACK_SIZE - 8, code.hex()
                cases.append(Case(code, regs, random_flags(rng)))
                codes.append(code)
    assert len(cases) > 800
    check_against_cpu(harness, cases)
    check_length_with_capstone(codes)


def test_lea_matches_cpu(harness: Path) -> None:
    rng = random.Random(12)
    cases: list[Case] = []
    for rex in (0x48, 0x00):
        for form in address_forms(rng, 64):
            for _ in range(3):
                reg = rng.randrange(16)
                target = rng.getrandbits(64) if rng.random() < 0.5 else data_target(rng)
                built = build_mem(rng, b"", rex, b"\x8d", reg, form, b"", target)
                if built is None:
                    continue
                code, regs, _ = built
                cases.append(Case(code, regs, random_flags(rng)))
                # and with unrelated register values: lea never touches memory
                cases.append(Case(code, random_regs(rng), random_flags(rng)))
    check_against_cpu(harness, cases)
    check_length_with_capstone(c.code for c in cases)


LOAD_VARIANTS = [
    # head, rex, opcode, reg fields, force REX, segment base
    (b"", 0x48, b"\x8b", range(16), False, 0),
    (b"", 0x00, b"\x8b", range(16), False, 0),
    (b"\x66", 0x00, b"\x8b", range(16), False, 0),
    (b"", 0x00, b"\x8a", range(8), False, 0),
    (b"", 0x00, b"\x8a", range(16), True, 0),
    (b"", 0x00, b"\x0f\xb6", range(16), False, 0),
    (b"", 0x48, b"\x0f\xb6", range(16), False, 0),
    (b"", 0x00, b"\x0f\xb7", range(16), False, 0),
    (b"", 0x48, b"\x0f\xb7", range(16), False, 0),
    (b"", 0x00, b"\x0f\xbe", range(16), False, 0),
    (b"", 0x48, b"\x0f\xbe", range(16), False, 0),
    (b"", 0x00, b"\x0f\xbf", range(16), False, 0),
    (b"", 0x48, b"\x0f\xbf", range(16), False, 0),
    (b"", 0x48, b"\x63", range(16), False, 0),
    (b"\x64", 0x48, b"\x8b", range(16), False, FS_BASE),
    (b"\x64", 0x00, b"\x8b", range(16), False, FS_BASE),
    (b"\x65", 0x48, b"\x8b", range(16), False, GS_BASE),
    (b"\x64", 0x00, b"\x0f\xb6", range(16), False, FS_BASE),
    (b"\x64", 0x48, b"\x63", range(16), False, FS_BASE),
    (b"\x65", 0x00, b"\x8a", range(8), False, GS_BASE),
]


def seg_allowed(code: bytes) -> bool:
    """Whether the planner takes this fs/gs form (it refuses base + index + segment)."""
    return plan_displaced(code, CODE_BASE) is not None


def test_loads_match_cpu(harness: Path) -> None:
    rng = random.Random(13)
    cases: list[Case] = []
    refused = 0
    for head, rex, opcode, regs_range, force, segment_base in LOAD_VARIANTS:
        for form in address_forms(rng):
            for _ in range(2):
                target = data_target(rng) if rng.random() < 0.8 else STACK_TOP + rng.randrange(-64, 64)
                built = build_mem(
                    rng, head, rex, opcode, rng.choice(regs_range), form, b"", target, segment_base, force
                )
                if built is None:
                    continue
                code, regs, _ = built
                mod, rm, sib, xb = form
                has_base_and_index = (
                    rm == 4 and sib is not None
                    and (((sib >> 3) & 7) != 4 or xb & 2) and not (mod == 0 and sib & 7 == 5)
                )  # fmt: skip
                if segment_base and has_base_and_index:
                    assert plan_displaced(code, CODE_BASE) is None, code.hex()
                    refused += 1
                    continue
                cases.append(Case(code, regs, random_flags(rng)))
    # the stack protector's load, exactly as compilers emit it, and gs's twin
    stack_guard = bytes.fromhex("64488b042528000000")
    for _ in range(16):
        cases.append(Case(stack_guard, random_regs(rng), random_flags(rng)))
        cases.append(Case(bytes.fromhex("65488b0c2510000000"), random_regs(rng), random_flags(rng)))
        fs = DATA_BASE + rng.randrange(0, DATA_SIZE - 0x40)
        cases.append(Case(stack_guard, random_regs(rng), random_flags(rng), fs_base=fs))
    assert refused > 0 and len(cases) > 2000
    check_against_cpu(harness, cases)
    check_length_with_capstone(c.code for c in cases)


def test_pop_matches_cpu(harness: Path) -> None:
    rng = random.Random(14)
    cases: list[Case] = []
    for rex in (b"", b"\x41", b"\x40", b"\x48", b"\x49"):
        for r in range(8):
            for rsp in (STACK_TOP, STACK_TOP + 3, STACK_TOP - 8, STACK_BASE + STACK_SIZE - 8):
                cases.append(Case(rex + bytes([0x58 + r]), random_regs(rng, rsp), random_flags(rng)))
    check_against_cpu(harness, cases)
    check_length_with_capstone(c.code for c in cases)


def test_ret_matches_cpu(harness: Path) -> None:
    """ret pops the harness's way back: the emulated rip must equal it, rsp must match the CPU's."""
    rng = random.Random(15)
    cases: list[Case] = []
    codes = [b"\xc3", b"\xf3\xc3", b"\xf2\xc3", b"\x48\xc3"]
    codes += [b"\xc2" + v.to_bytes(2, "little") for v in (0, 8, 0x10, 0x7FFF, 0xFFFF)]
    for code in codes:
        for rsp in (STACK_TOP, STACK_TOP + 5, STACK_BASE + STACK_SIZE - 8):
            back = (CODE_BASE + len(code)).to_bytes(8, "little")
            cases.append(Case(code, random_regs(rng, rsp), random_flags(rng), patch=(rsp, back)))
    check_against_cpu(harness, cases)
    check_length_with_capstone(codes)


def value_near(rng: random.Random, other: int, mask: int) -> int:
    """A value equal to, next to, or on a sign/carry edge relative to ``other``."""
    choice = rng.randrange(6)
    if choice == 0:
        return other & mask
    if choice == 1:
        return (other + rng.choice((1, -1, 0x10, -0x10, 8))) & mask
    if choice == 2:
        return (other ^ (mask >> 1) ^ mask) & mask  # flip the sign bit
    if choice == 3:
        return rng.choice(EDGE_VALUES) & mask
    return rng.getrandbits(64) & mask


CMP_MEM_VARIANTS = [
    # head, rex, opcode, reg fields (or the /7 extension), operand size, immediate size, force REX
    (b"", 0x48, b"\x39", range(16), 8, 0, False),
    (b"", 0x00, b"\x39", range(16), 4, 0, False),
    (b"\x66", 0x00, b"\x39", range(16), 2, 0, False),
    (b"", 0x48, b"\x3b", range(16), 8, 0, False),
    (b"", 0x00, b"\x3b", range(16), 4, 0, False),
    (b"\x66", 0x00, b"\x3b", range(16), 2, 0, False),
    (b"", 0x00, b"\x38", range(8), 1, 0, False),
    (b"", 0x00, b"\x3a", range(16), 1, 0, True),
    (b"", 0x00, b"\x80", (7,), 1, 1, False),
    (b"", 0x48, b"\x83", (7,), 8, 1, False),
    (b"", 0x00, b"\x83", (7,), 4, 1, False),
    (b"\x66", 0x00, b"\x83", (7,), 2, 1, False),
    (b"", 0x48, b"\x81", (7,), 8, 4, False),
    (b"", 0x00, b"\x81", (7,), 4, 4, False),
    (b"\x66", 0x00, b"\x81", (7,), 2, 2, False),
    (b"\x64", 0x00, b"\x83", (7,), 4, 1, False),
    (b"\x64", 0x48, b"\x39", range(16), 8, 0, False),
]


def register_operand(regs: list[int], number: int, size: int, rex_present: bool) -> int:
    """The value of a reg-field operand of ``size`` bytes (ah..bh without REX)."""
    if size == 1 and not rex_present and 4 <= number < 8:
        return (regs[number - 4] >> 8) & 0xFF
    return regs[number] & ((1 << 8 * size) - 1)


def test_cmp_memory_matches_cpu(harness: Path) -> None:
    rng = random.Random(16)
    cases: list[Case] = []
    imm_choices = {
        1: (0, 1, 0x7F, -0x80, -1, 5),
        2: (0x7FFF, -0x8000, 0x100),
        4: (0x7FFFFFFF, -0x80000000, 0x1000),
    }
    for head, rex, opcode, fields, size, isize, force in CMP_MEM_VARIANTS:
        segment_base = FS_BASE if head == b"\x64" else 0
        mask = (1 << 8 * size) - 1
        for form in address_forms(rng, 8):
            for _ in range(4):
                reg = rng.choice(fields)
                imm = rng.choice(imm_choices[isize] + imm_choices[1]) if isize else 0
                if isize:
                    imm = max(min(imm, (1 << (8 * isize - 1)) - 1), -(1 << (8 * isize - 1)))
                tail = imm.to_bytes(isize, "little", signed=True) if isize else b""
                target = data_target(rng)
                built = build_mem(rng, head, rex, opcode, reg, form, tail, target, segment_base, force)
                if built is None:
                    continue
                code, regs, ea = built
                if plan_displaced(code, CODE_BASE) is None:
                    assert segment_base, code.hex()  # fs with base + index
                    continue
                if isize:
                    other = imm & mask
                else:
                    rex_present = len(code) > len(head) and code[len(head)] & 0xF0 == 0x40
                    other = register_operand(regs, reg, size, rex_present)
                value = value_near(rng, other, mask)
                cases.append(Case(code, regs, random_flags(rng), patch=(ea, value.to_bytes(size, "little"))))
    assert len(cases) > 2000
    check_against_cpu(harness, cases)
    check_length_with_capstone(c.code for c in cases)


# --------------------------------------------------------------------------- test / cmp on registers


def pair_codes(opcode: int, head: bytes = b"", w: bool = False, force_rex: bool = False) -> list[bytes]:
    codes = []
    for reg in range(16 if (w or force_rex or opcode & 1) else 8):
        for rm in range(16 if (w or force_rex or opcode & 1) else 8):
            rex = 0x40 | (8 if w else 0) | (4 if reg >= 8 else 0) | (1 if rm >= 8 else 0)
            prefix = head + (bytes([rex]) if rex != 0x40 or force_rex else b"")
            codes.append(prefix + bytes([opcode, 0xC0 | (reg & 7) << 3 | (rm & 7)]))
    return codes


def test_test_and_cmp_registers_match_cpu(harness: Path) -> None:
    rng = random.Random(17)
    codes = []
    for opcode in (0x85, 0x39, 0x3B):
        codes += pair_codes(opcode) + pair_codes(opcode, w=True) + pair_codes(opcode, head=b"\x66")
    for opcode in (0x84, 0x38, 0x3A):
        codes += pair_codes(opcode) + pair_codes(opcode, force_rex=True)
    cases: list[Case] = []
    for code in codes:
        for _ in range(3):
            regs = random_regs(rng)
            a, b = rng.sample(range(16), 2)
            regs[a] = value_near(rng, regs[b], M64) if rng.random() < 0.7 else regs[a]
            if rng.random() < 0.3:  # same low bytes, so the byte and high-byte forms meet edges too
                regs[:4] = [v & ~0xFFFF | (regs[0] & 0xFF) * 0x101 for v in regs[:4]]
            cases.append(Case(code, regs, random_flags(rng)))
        cases.append(Case(code, [0] * 4 + random_regs(rng)[4:], random_flags(rng) | 0x10))
    check_against_cpu(harness, cases)
    check_length_with_capstone(codes)


def test_cmp_register_immediate_matches_cpu(harness: Path) -> None:
    rng = random.Random(18)
    entries: list[tuple[bytes, int, int, int]] = []  # code, register, immediate, width
    for r in range(16):
        for w, width, head in ((True, 64, b""), (False, 32, b""), (False, 16, b"\x66")):
            rex = 0x40 | (8 if w else 0) | (1 if r >= 8 else 0)
            prefix = head + (bytes([rex]) if rex != 0x40 else b"")
            modrm = bytes([0xF8 | (r & 7)])
            for imm in (0, 1, -1, 0x7F, -0x80, 0x10)[r % 2 :: 2]:
                entries.append(
                    (prefix + b"\x83" + modrm + imm.to_bytes(1, "little", signed=True), r, imm, width)
                )
            isize = 2 if width == 16 else 4
            for imm in (0x7FFF, -0x8000, 0x1234) if width == 16 else (0x7FFFFFFF, -0x80000000, 0x1000):
                entries.append(
                    (prefix + b"\x81" + modrm + imm.to_bytes(isize, "little", signed=True), r, imm, width)
                )
        for force in (False, True):
            if r >= 8 and not force:
                continue
            rex = 0x40 | (1 if r >= 8 else 0)
            prefix = bytes([rex]) if force else b""
            for imm in (0, 1, 0x7F, -0x80, -1):
                entries.append((prefix + bytes([0x80, 0xF8 | (r & 7), imm & 0xFF]), r, imm, 8))
    for imm in (0, 1, -1, 0x7F, -0x80):
        entries.append((bytes([0x3C, imm & 0xFF]), 0, imm, 8))
    for head, width in ((b"", 32), (b"\x48", 64), (b"\x66", 16)):
        isize = 2 if width == 16 else 4
        for imm in (0, 1, -1, 0x7FFF, -0x8000):
            entries.append((head + b"\x3d" + imm.to_bytes(isize, "little", signed=True), 0, imm, width))
    cases: list[Case] = []
    for code, r, imm, width in entries:
        high = width == 8 and 4 <= r < 8 and code[0] & 0xF0 != 0x40
        for value in sorted(arith_inputs(imm, rng)):
            regs = random_regs(rng)
            if high:
                regs[r - 4] = (regs[r - 4] & ~0xFF00) | ((value & 0xFF) << 8)
            else:
                regs[r] = value
            cases.append(Case(code, regs, random_flags(rng)))
    check_against_cpu(harness, cases)
    check_length_with_capstone(code for code, _, _, _ in entries)


# --------------------------------------------------------------------------- memory contract


FAULTING = [
    "8b3da62e0000", "488b4508", "488b442408", "64488b042528000000", "0fb605a62e0000", "480fbf03",
    "48630424", "8a45ff", "668b00", "5d", "415f", "c3", "c21000", "f3c3", "803d0000000000",
    "48837c240800", "817df800010000", "3b45fc", "483903", "383c24", "66813b3412", "8b04c5f0000000",
]  # fmt: skip


@pytest.mark.parametrize("hexcode", FAULTING)
def test_load_fault_leaves_registers_unchanged(hexcode: str) -> None:
    plan = plan_displaced(bytes.fromhex(hexcode), 0x401000)
    assert plan is not None and plan.reads_memory
    for read in (lambda a, n: b"", lambda a, n: b"\x00" * (n - 1), None):
        regs = make_regs(range(0x7FFF0000, 0x7FFF0010), 0x246, 0x401001)
        regs.fs_base = 0x7F0000000000
        before = bytes(regs)
        with pytest.raises(DisplacedFault):
            plan.apply(regs, read)
        assert bytes(regs) == before
    # and a successful read of exactly the size asked for
    regs = make_regs(range(0x7FFF0000, 0x7FFF0010), 0x246, 0x401001)
    asked: list[tuple[int, int]] = []

    def reader(address: int, size: int) -> bytes:
        asked.append((address, size))
        return b"\x00" * size

    assert plan.apply(regs, reader) is None
    assert len(asked) == 1 and asked[0][1] in (1, 2, 4, 8)


def test_load_values_and_addresses() -> None:
    memory = {
        0x404010: bytes.fromhex("efbeadde785634128090"),
        0x7F0000000028: bytes.fromhex("00a1b2c3d4e5f601"),
    }

    def read(address: int, size: int) -> bytes:
        for base, data in memory.items():
            if base <= address < base + len(data):
                return data[address - base : address - base + size]
        return b""

    regs = make_regs([0] * 16, 0x202, 0x401001)
    regs.fs_base = 0x7F0000000000
    plan = plan_displaced(bytes.fromhex("64488b042528000000"), 0x401000)
    assert plan is not None and plan.text == "mov rax, qword ptr fs:[0x28]" and plan.length == 9
    assert plan.apply(regs, read) is None
    assert regs.rax == 0x01F6E5D4C3B2A100 and regs.rip == 0x401009
    # mov eax, [rip+0x300a] at 0x401000 (6 bytes) reads 0x40400a + 6 = 0x404010 and zero-extends
    regs.rax = M64
    plan = plan_displaced(bytes.fromhex("8b050a300000"), 0x401000)
    assert plan is not None and plan.text == "mov eax, dword ptr [rip+0x300a]"
    plan.apply(regs, read)
    assert regs.rax == 0xDEADBEEF
    # movsx rcx, word [rip+...]; mov al, [rbx+rsi*2+1]
    plan = plan_displaced(bytes.fromhex("480fbf0d08300000"), 0x401000)  # [0x404010]
    assert plan is not None
    plan.apply(regs, read)
    assert regs.rcx == 0xFFFFFFFFFFFFBEEF
    regs.rbx, regs.rsi, regs.rax = 0x404000, 8, 0x1111111111111111
    plan = plan_displaced(bytes.fromhex("8a447301"), 0x401000)
    assert plan is not None and plan.text == "mov al, byte ptr [rbx+rsi*2+0x1]"
    plan.apply(regs, read)
    assert regs.rax == 0x11111111111111BE
    # a read that runs off the end of the mapping faults even if it starts inside
    plan = plan_displaced(bytes.fromhex("488b050f300000"), 0x401000)  # [0x404016]: 4 of 8 bytes mapped
    assert plan is not None
    before = bytes(regs)
    with pytest.raises(DisplacedFault) as info:
        plan.apply(regs, read)
    assert info.value.address == 0x404016 and bytes(regs) == before


def test_ret_to_non_canonical_address_faults() -> None:
    plan = plan_displaced(b"\xc3", 0x401000)
    assert plan is not None and plan.pops_return_address and plan.reads_memory
    for target in (0x0000800000000000, 0x00FF000000000000, 0x8000000000000000, 0xFFFF7FFFFFFFFFFF):
        regs = make_regs([0x7FFC0000] * 16, 0x246, 0x401001)
        before = bytes(regs)
        with pytest.raises(DisplacedFault):
            plan.apply(regs, lambda a, n, t=target: t.to_bytes(8, "little"))
        assert bytes(regs) == before
    for target in (0x00007FFFFFFFFFFF, 0xFFFF800000000000, 0x401234):
        regs = make_regs([0x7FFC0000] * 16, 0x246, 0x401001)
        plan.apply(regs, lambda a, n, t=target: t.to_bytes(8, "little"))
        assert regs.rip == target and regs.rsp == 0x7FFC0008


def test_memory_texts_and_kinds() -> None:
    expected = {
        "893da62e0000": ("mov dword ptr [rip+0x2ea6], edi", False, 6),
        "897dec": ("mov dword ptr [rbp-0x14], edi", False, 3),
        "48895c2408": ("mov qword ptr [rsp+0x8], rbx", False, 5),
        "488b05f82f0000": ("mov rax, qword ptr [rip+0x2ff8]", True, 7),
        "803d0000000000": ("cmp byte ptr [rip], 0x0", True, 7),
        "488d7c2410": ("lea rdi, [rsp+0x10]", False, 5),
        "5d": ("pop rbp", True, 1),
        "c3": ("ret", True, 1),
        "85ff": ("test edi, edi", False, 2),
        "83ff05": ("cmp edi, 0x5", False, 3),
        "4c8b24c3": ("mov r12, qword ptr [rbx+rax*8]", True, 4),
        "c645ff01": ("mov byte ptr [rbp-0x1], 0x1", False, 4),
        "48c74424f8ffffffff": ("mov qword ptr [rsp-0x8], -0x1", False, 9),
        "88642401": ("mov byte ptr [rsp+0x1], ah", False, 4),
        "40887c2401": ("mov byte ptr [rsp+0x1], dil", False, 5),
        "8b0425f0000000": ("mov eax, dword ptr [0xf0]", True, 7),
        "3d00010000": ("cmp eax, 0x100", False, 5),
        "84e4": ("test ah, ah", False, 2),
    }
    for hexcode, (text, reads, length) in expected.items():
        plan = plan_displaced(bytes.fromhex(hexcode), 0x401000)
        assert plan is not None, hexcode
        assert (plan.text, plan.reads_memory, plan.length) == (text, reads, length), hexcode
    # stores report their one write; the store itself does not read
    regs = make_regs([0] * 16, 0x246, 0x401001)
    regs.rdi = 0xAABBCCDD11223344
    plan = plan_displaced(bytes.fromhex("893da62e0000"), 0x401126)
    assert plan is not None
    assert plan.apply(regs) == (0x401126 + 6 + 0x2EA6, bytes.fromhex("44332211"))
    assert regs.rip == 0x40112C and regs.rdi == 0xAABBCCDD11223344
    regs.rbp = 0x7FFC0100
    plan = plan_displaced(bytes.fromhex("48c745f8ffffffff"), 0x401000)
    assert plan is not None
    assert plan.apply(regs) == (0x7FFC00F8, b"\xff" * 8)


# --------------------------------------------------------------------------- refusals and shape


@pytest.mark.parametrize(
    "hexcode",
    [
        "cc", "0f05", "e800000000", "ffd0", "eb00", "7400", "0f0b", "cd80", "f4", "9c", "9d",
        "c9", "", "48", "66", "4848", "483100", "4801c0", "4829c0", "f04883ec08", "2e4883ec08",
        "48664883ec08", "6689e5",
        # memory forms outside the whitelist
        "67488b00",  # 32-bit address size
        "f0488900",  # lock mov: #UD
        "2e488b00", "3e488b00",  # null segment overrides
        "64488900", "64c70000000000", "64488d00",  # fs on a store / lea
        "64488b0418",  # fs:[rax+rbx]: base + index + segment
        "66488b00", "66488900",  # 66 with REX.W
        "66c3", "6658", "66c20800",  # 16-bit ret/pop
        "f3488b00", "f2c20800", "f348c3",  # rep/bnd only on a plain ret
        "8dc0",  # lea with a register operand: #UD
        "6300",  # movsxd r32, r/m32
        "0fb6c0", "660fb600", "0fb6",  # movzx from a register, 16-bit, truncated
        "c60800", "c70800000000",  # c6/c7 /1
        "48837df8",  # cmp qword [rbp-8], imm8: truncated
        "48813d00000000", "3d0000", "c2",  # truncated immediates
        "883c", "8b04",  # truncated SIB
        "668800", "668a00", "663800", "66800000",  # 66 on byte operations
        "f6c001", "a801", "480fafc0",  # test imm, imul: not emulated
    ],
)  # fmt: skip
def test_refused(hexcode: str) -> None:
    assert plan_displaced(bytes.fromhex(hexcode), 0x1000) is None


def test_plan_is_immutable() -> None:
    plan = plan_displaced(b"\x55", 0x1000)
    assert isinstance(plan, DisplacedInstruction)
    with pytest.raises(AttributeError):
        plan.length = 3
    with pytest.raises(AttributeError):
        plan.text = "x"
    with pytest.raises(AttributeError):
        del plan.text
    assert "push rbp" in repr(plan)


def test_apply_does_not_touch_other_registers() -> None:
    plan = plan_displaced(bytes.fromhex("4883ec18"), 0x1000)
    assert plan is not None
    regs = make_regs(range(1000, 1016), 0x202, 0x1001)
    regs.fs_base, regs.gs_base, regs.fs, regs.gs = 1, 2, 3, 4
    before = {name: getattr(regs, name) for name in GENERAL_REGISTERS}
    plan.apply(regs)
    after = {name: getattr(regs, name) for name in GENERAL_REGISTERS}
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"rsp", "rip", "eflags"}


# --------------------------------------------------------------------------- call_instruction_length

CALLS = {
    "e800000000": 5,
    "e8fbffffff": 5,
    "f2e800000000": 6,  # bnd call
    "ffd0": 2,  # call rax
    "41ffd3": 3,  # call r11
    "ff10": 2,  # call [rax]
    "ff5008": 3,  # call [rax+8]
    "ff9000010000": 6,  # call [rax+0x100]
    "ff1500000000": 6,  # call [rip+0]
    "ff14c5f0000000": 7,  # call [rax*8+0xf0] (SIB, no base)
    "ff14c3": 3,  # call [rbx+rax*8]
    "ff5424f8": 4,  # call [rsp-8]
    "ff942400010000": 7,  # call [rsp+0x100]
    "41ff5508": 4,  # call [r13+8]
    "41ff542408": 5,  # call [r12+8]
    "42ff14e5f0000000": 8,  # call [r12*8+0xf0] (REX.X)
    "3effd0": 3,  # notrack call rax
    "3eff1500000000": 7,  # notrack call [rip]
    "f2ffd0": 3,  # bnd call rax
    "66ffd0": 3,
    "67ff10": 3,  # call [eax]
    "48ffd0": 3,
}


@pytest.mark.parametrize(("hexcode", "length"), CALLS.items())
def test_call_instruction_length(hexcode: str, length: int) -> None:
    code = bytes.fromhex(hexcode)
    assert call_instruction_length(code + b"\x90" * 8) == length
    assert call_instruction_length(code) == length
    assert call_instruction_length(code[:-1]) is None  # truncated
    if capstone is not None:
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        insn = next(md.disasm(code, 0x1000))
        assert insn.size == length and "call" in insn.mnemonic


@pytest.mark.parametrize(
    "hexcode", ["90", "c3", "ffe0", "ff20", "ff18", "e9000000", "", "f2", "66e800000000", "48", "cc"]
)
def test_not_a_call(hexcode: str) -> None:
    assert call_instruction_length(bytes.fromhex(hexcode)) is None


# --------------------------------------------------------------------------- properties

INTERESTING_OPCODES = st.sampled_from(
    [
        0x90, 0x0F, 0x50, 0x57, 0x58, 0x5F, 0x6A, 0x68, 0x88, 0x89, 0x8A, 0x8B, 0x31, 0x33,
        0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x63, 0x80, 0x81, 0x83, 0x84, 0x85, 0x8D, 0xB8,
        0xC2, 0xC3, 0xC6, 0xC7, 0xE8, 0xFF,
    ]
)  # fmt: skip
PREFIXES = st.lists(
    st.sampled_from([0x66, 0x67, 0xF2, 0xF3, 0x2E, 0x3E, 0x64, 0x65, 0xF0, 0x40, 0x41, 0x48, 0x4C, 0x4D]),
    max_size=4,
)
SECOND_BYTES = st.sampled_from([b"", b"\xb6", b"\xb7", b"\xbe", b"\xbf", b"\x1f"])


@st.composite
def instruction_like(draw: st.DrawFn) -> bytes:
    """Bytes that often look like the instructions we decode, so every branch is exercised."""
    prefix = bytes(draw(PREFIXES))
    opcode = draw(INTERESTING_OPCODES)
    second = draw(SECOND_BYTES) if opcode == 0x0F else b""
    rest = draw(st.binary(min_size=0, max_size=15))
    return (prefix + bytes([opcode]) + second + rest)[:16]


def short_read(address: int, size: int) -> bytes:
    return b"\x5a" * (size - 1) if size > 1 and address & 1 else b""


def full_read(address: int, size: int) -> bytes:
    return (address & M64).to_bytes(8, "little")[:size].ljust(size, b"\x11")


@settings(max_examples=3000, deadline=None)
@given(st.binary(min_size=0, max_size=16) | instruction_like(), st.integers(0, M64), st.integers(0, M64))
def test_never_raises_and_lengths_agree(code: bytes, address: int, register_value: int) -> None:
    """plan_displaced never raises; apply raises only DisplacedFault, only on a short read (or bad ret)."""
    plan = plan_displaced(code, address)
    length = call_instruction_length(code)
    if plan is not None:
        assert isinstance(plan, DisplacedInstruction)
        assert 1 <= plan.length <= min(15, len(code))
        for read in (full_read, short_read):
            regs = make_regs([register_value] * 16, 0x246, address + 1)
            regs.fs_base = register_value ^ 0x5555
            before = bytes(regs)
            try:
                write = plan.apply(regs, read)
            except DisplacedFault:
                assert plan.reads_memory and (read is short_read or plan.pops_return_address)
                assert bytes(regs) == before
                continue
            assert regs.rip == (address + plan.length) & M64 or plan.pops_return_address
            assert write is None or (0 <= write[0] <= M64 and len(write[1]) in (1, 2, 4, 8))
            assert all(0 <= getattr(regs, name) <= M64 for name in HW_ORDER)
    if length is not None:
        assert 1 <= length <= min(15, len(code))
    if capstone is not None:
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        insn = next(md.disasm(code, address & 0xFFFFFFFFFFFF), None)
        if plan is not None:
            assert insn is not None and insn.size == plan.length, code.hex()
        if length is not None:
            assert insn is not None and insn.size == length and "call" in insn.mnemonic, code.hex()
