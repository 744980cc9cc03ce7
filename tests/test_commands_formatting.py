"""The console's text formatters against the example blocks of
shared/CDB-OUTPUT.md (expected text copied from the document) and against
real capstone output for the disassembly rewrite."""

from __future__ import annotations

import capstone
import pytest

from lindbg.commands.formatting import (
    BreakpointRow,
    ModuleRow,
    StackRow,
    addr17,
    format_annotation,
    format_breakpoint_list,
    format_evaluate,
    format_expression_error,
    format_instruction,
    format_ln,
    format_memory,
    format_modload,
    format_modules,
    format_register,
    format_registers,
    format_stack,
    format_stack_row,
    format_unreadable_instruction,
    masm_hex,
    syntax_error,
)
from lindbg.symbols.disassembly import disassemble

PROMPT = "0:000> "

# The doc's data: app!blob = de ad be ef 01 02 .. 0c "hello, world!\n" 00 00
BLOB_ADDRESS = 0x555555558010
BLOB = bytes.fromhex("deadbeef0102030405060708090a0b0c") + b"hello, world!\n\0\0"

REGS = {
    "rax": 0x00005555555551A9,
    "rbx": 0x00007FFD2A9E0D78,
    "rcx": 0x0000555555557DD8,
    "rdx": 0x00007FFD2A9E0D88,
    "rsi": 0x00007FFD2A9E0D78,
    "rdi": 0x0000000000000001,
    "rip": 0x0000555555555168,
    "rsp": 0x00007FFD2A9E0C40,
    "rbp": 0x00007FFD2A9E0C50,
    "r8": 0x00007F3B8C41AF10,
    "r9": 0x00007F3B8C44B040,
    "r10": 0x00007FFD2A9E0990,
    "r11": 0x0000000000000203,
    "r12": 0x0000000000000000,
    "r13": 0x00007FFD2A9E0D88,
    "r14": 0x0000555555557DD8,
    "r15": 0x00007F3B8C47F000,
    "eflags": 0x246,
    "cs": 0x33,
    "ss": 0x2B,
    "ds": 0,
    "es": 0,
    "fs": 0,
    "gs": 0,
}


def _decode_one(address: int, code: bytes) -> tuple[str, str]:
    decoder = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    insn = next(decoder.disasm(code, address))
    assert insn.size == len(code)
    return insn.mnemonic, insn.op_str


def _u_line(address: int, hex_code: str, target_symbol: str | None = None) -> str:
    code = bytes.fromhex(hex_code)
    mnemonic, operands = _decode_one(address, code)
    return format_instruction(address, code, mnemonic, operands, target_symbol)


# ---------------------------------------------------------------- §0


def test_addr17() -> None:
    assert addr17(0x7F3B8C229D90) == "00007f3b`8c229d90"
    assert addr17(0) == "00000000`00000000"
    assert addr17(-1) == "ffffffff`ffffffff"


def test_caret_errors() -> None:
    expected = "0:000> p\n       ^ No runnable debuggees error in 'p'"
    assert f"{PROMPT}p\n" + syntax_error(len(PROMPT), 0, "No runnable debuggees error", "p") == expected
    expected = "0:000> (10-8)\n       ^ Syntax error in '(10-8)'"
    assert f"{PROMPT}(10-8)\n" + syntax_error(len(PROMPT), 0, "Syntax error", "(10-8)") == expected
    assert syntax_error(7, 3, "Syntax error", "r $s7") == "          ^ Syntax error in 'r $s7'"


def test_expression_errors() -> None:
    expected = """\
Couldn't resolve error at 'app!nosuchsym '
Memory access error at ')'
Numeric expression missing from '<EOL>'
Numeric expression missing from '& @rcx == 5'
Syntax error at '( "c:\\x\\", "*y*" )'"""
    got = [
        format_expression_error("Couldn't resolve error at", "app!nosuchsym "),
        format_expression_error("Memory access error at", ")"),
        format_expression_error("Numeric expression missing from", ""),
        format_expression_error("Numeric expression missing from", "& @rcx == 5"),
        format_expression_error("Syntax error at", '( "c:\\x\\", "*y*" )'),
    ]
    assert "\n".join(got) == expected


# ---------------------------------------------------------------- §1


def test_stop_display_tail_and_modload() -> None:
    regs = dict(REGS, rip=0x555555555141)
    text = format_registers(regs, "app!target_fn:", _u_line(0x555555555141, "55"))
    lines = text.splitlines()
    assert lines[0] == "rax=00005555555551a9 rbx=00007ffd2a9e0d78 rcx=0000555555557dd8"
    assert lines[-2:] == ["app!target_fn:", "00005555`55555141 55              push    rbp"]
    assert (
        format_modload(0x7F3B8C200000, 0x7F3B8C3E5000, "/usr/lib/x86_64-linux-gnu/libc.so.6")
        == "ModLoad: 00007f3b`8c200000 00007f3b`8c3e5000   /usr/lib/x86_64-linux-gnu/libc.so.6"
    )


# ---------------------------------------------------------------- §2

R_BLOCK = """\
rax=00005555555551a9 rbx=00007ffd2a9e0d78 rcx=0000555555557dd8
rdx=00007ffd2a9e0d88 rsi=00007ffd2a9e0d78 rdi=0000000000000001
rip=0000555555555168 rsp=00007ffd2a9e0c40 rbp=00007ffd2a9e0c50
 r8=00007f3b8c41af10  r9=00007f3b8c44b040 r10=00007ffd2a9e0990
r11=0000000000000203 r12=0000000000000000 r13=00007ffd2a9e0d88
r14=0000555555557dd8 r15=00007f3b8c47f000
iopl=0         nv up ei pl zr na po nc
cs=0033  ss=002b  ds=0000  es=0000  fs=0000  gs=0000             efl=00000246
app!main+0x8:
00005555`55555168 8b45fc          mov     eax,dword ptr [rbp-4] ss:00007ffd`2a9e0c4c=00000005"""


def test_r_block() -> None:
    line = _u_line(0x555555555168, "8b45fc") + format_annotation(
        "ss", 0x7FFD2A9E0C4C, (5).to_bytes(4, "little")
    )
    assert format_registers(REGS, "app!main+0x8:", line) == R_BLOCK


def test_flags_parity_quirk_and_iopl() -> None:
    flags_line = format_registers(dict(REGS, eflags=0x202), "", "").splitlines()[6]
    assert flags_line == "iopl=0         nv up ei pl nz na pe nc"
    flags_line = format_registers(dict(REGS, eflags=0x3ED7), "", "").splitlines()[6]
    assert flags_line == "iopl=3         ov dn ei ng zr ac po cy"
    assert format_registers(dict(REGS, eflags=0x3ED7), "", "").splitlines()[-1].endswith("efl=00003ed7")


def test_single_register() -> None:
    assert format_register("rsp", 0x00007FFD2A9E0C40) == "rsp=00007ffd2a9e0c40"
    assert format_register("eax", 0x555551A9, 32) == "eax=555551a9"
    assert format_register("al", 0x1A9, 8) == "al=a9"
    assert format_register("zf", 1, 1) == "zf=1"


def test_annotations() -> None:
    assert format_annotation("ds", 0x10, None, 8) == " ds:00000000`00000010=????????????????"
    assert (
        format_annotation("ds", 0x555555557FE8, (0x7F3B8C2A5460).to_bytes(8, "little"), symbol="libc!free")
        == " ds:00005555`55557fe8={libc!free (00007f3b`8c2a5460)}"
    )


# ---------------------------------------------------------------- §3

FRAMES = [
    StackRow(0x7FFD2A9E0C38, 0x55555555518B, "app!target_fn+0x8 [/src/c.c @ 3]"),
    StackRow(0x7FFD2A9E0C40, 0x7F3B8C229D90, "app!main+0x2b [/src/c.c @ 4]"),
    StackRow(0x7FFD2A9E0C70, 0x7F3B8C229E40, "libc!__libc_start_call_main+0x80"),
    StackRow(0x7FFD2A9E0D10, 0x555555555085, "libc!__libc_start_main+0x80"),
    StackRow(0x7FFD2A9E0D60, 0, "app!_start+0x25"),
]

K_TEXT = """\
Child-SP          RetAddr               Call Site
00007ffd`2a9e0c38 00005555`5555518b     app!target_fn+0x8 [/src/c.c @ 3]
00007ffd`2a9e0c40 00007f3b`8c229d90     app!main+0x2b [/src/c.c @ 4]
00007ffd`2a9e0c70 00007f3b`8c229e40     libc!__libc_start_call_main+0x80
00007ffd`2a9e0d10 00005555`55555085     libc!__libc_start_main+0x80
00007ffd`2a9e0d60 00000000`00000000     app!_start+0x25"""

KN_TEXT = """\
 # Child-SP          RetAddr               Call Site
00 00007ffd`2a9e0c38 00005555`5555518b     app!target_fn+0x8 [/src/c.c @ 3]
01 00007ffd`2a9e0c40 00007f3b`8c229d90     app!main+0x2b [/src/c.c @ 4]"""


def test_k() -> None:
    assert format_stack(FRAMES) == K_TEXT


def test_kn() -> None:
    assert format_stack(FRAMES[:2], numbered=True) == KN_TEXT


def test_inline_rows_and_frame_numbers() -> None:
    frames = [StackRow(0, 0, "app!inlined_helper", inline=True), *FRAMES[:1]] + [FRAMES[1]] * 16
    text = format_stack(frames, numbered=True).splitlines()
    assert text[1] == "00 (Inline Function) --------`--------     app!inlined_helper"
    assert text[2].startswith("01 00007ffd`2a9e0c38 ")
    assert text[12].startswith("0b ")
    assert text[17].startswith("10 ")
    assert (
        format_stack(frames).splitlines()[1] == "(Inline Function) --------`--------     app!inlined_helper"
    )


def test_frame_row() -> None:
    # §21: `.frame /c 1` prints the frame's kn row.
    assert (
        format_stack_row(FRAMES[1], 1)
        == "01 00007ffd`2a9e0c40 00007f3b`8c229d90     app!main+0x2b [/src/c.c @ 4]"
    )


# ---------------------------------------------------------------- §4

BL_TEXT = """\
 0 e 00005555`55555141     0001 (0001)  0:**** app!target_fn
 1 d 00005555`55555160 [/src/c.c @ 4]    0001 (0001)  0:**** app!main
 2 e 00007f3b`8c2a5e10     0005 (0005)  0:**** libc!write "k; g"
 3 e 00005555`55558010 w 4 0001 (0001)  0:**** app!blob
 4 eu                      0001 (0001) (libfoo!init)"""


def test_bl() -> None:
    rows = [
        BreakpointRow(0, True, False, 0x555555555141, None, "sw", 1, 1, 1, "app!target_fn", ""),
        BreakpointRow(1, False, False, 0x555555555160, "/src/c.c @ 4", "sw", 1, 1, 1, "app!main", ""),
        BreakpointRow(2, True, False, 0x7F3B8C2A5E10, None, "sw", 1, 5, 5, "libc!write", "k; g"),
        BreakpointRow(3, True, False, 0x555555558010, None, "w", 4, 1, 1, "app!blob", ""),
        BreakpointRow(4, True, True, None, None, "sw", 1, 1, 1, "libfoo!init", ""),
    ]
    assert format_breakpoint_list(rows) == BL_TEXT
    assert format_breakpoint_list([]) == ""


# ---------------------------------------------------------------- §5

LM_TEXT = (
    """\
start             end                 module name
00005555`55554000 00005555`55559000   app        (dwarf symbols)        /home/u/app
00007f3b`8c200000 00007f3b`8c3e5000   libc       (deferred)
"""
    + (  # the doc's third row, split to fit the line length
        "00007f3b`8c44d000 00007f3b`8c47b000   ld_linux_x86_64   (export symbols)       "
        "/usr/lib64/ld-linux-x86-64.so.2"
    )
)


def test_lm() -> None:
    rows = [
        ModuleRow(0x555555554000, 0x555555559000, "app", "(dwarf symbols)", "/home/u/app"),
        ModuleRow(0x7F3B8C200000, 0x7F3B8C3E5000, "libc", "(deferred)"),
        ModuleRow(
            0x7F3B8C44D000,
            0x7F3B8C47B000,
            "ld_linux_x86_64",
            "(export symbols)",
            "/usr/lib64/ld-linux-x86-64.so.2",
        ),
    ]
    text = format_modules(rows)
    # The document drops them, but cdb keeps the trailing blanks of `(deferred)` rows.
    assert [line.rstrip() for line in text.splitlines()] == LM_TEXT.splitlines()
    assert text.splitlines()[2] == LM_TEXT.splitlines()[2] + " " * 13
    assert text.splitlines()[1] == LM_TEXT.splitlines()[1]


# ---------------------------------------------------------------- §6


def test_db() -> None:
    expected = """\
00005555`55558010  de ad be ef 01 02 03 04-05 06 07 08 09 0a 0b 0c  ................
00005555`55558020  68 65 6c 6c 6f 2c 20 77-6f 72 6c 64 21 0a 00 00  hello, world!..."""
    assert format_memory("db", BLOB_ADDRESS, BLOB[:0x20]) == expected


def test_dw_dd_dq() -> None:
    assert format_memory("dw", BLOB_ADDRESS, BLOB[:16]) == (
        "00005555`55558010  adde efbe 0201 0403 0605 0807 0a09 0c0b"
    )
    assert format_memory("dd", BLOB_ADDRESS, BLOB[:16]) == (
        "00005555`55558010  efbeadde 04030201 08070605 0c0b0a09"
    )
    assert format_memory("dq", BLOB_ADDRESS, BLOB[:16]) == (
        "00005555`55558010  04030201`efbeadde 0c0b0a09`08070605"
    )
    assert format_memory("dp", BLOB_ADDRESS, BLOB[:16]) == format_memory("dq", BLOB_ADDRESS, BLOB[:16])


def test_dps() -> None:
    expected = """\
00007ffd`2a9e0c48  00007f3b`8c229d90 libc!__libc_start_call_main+0x80
00007ffd`2a9e0c50  00000000`00000001"""
    data = (0x7F3B8C229D90).to_bytes(8, "little") + (1).to_bytes(8, "little")
    symbols = {0x7F3B8C229D90: "libc!__libc_start_call_main+0x80"}
    assert format_memory("dps", 0x7FFD2A9E0C48, data, symbolize=symbols.get) == expected


def test_da() -> None:
    expected = '00005555`55556004  "hello, world!."'
    assert format_memory("da", 0x555555556004, b"hello, world!\n\0junk") == expected
    assert format_memory("da", 0x555555556004, b"hello, world!\n") == expected


def test_da_du_wrap_at_32_characters() -> None:
    text = format_memory("da", 0x1000, b"a" * 40 + b"\0")
    assert text.splitlines() == [
        '00000000`00001000  "' + "a" * 32 + '"',
        '00000000`00001020  "' + "a" * 8 + '"',
    ]
    text = format_memory("du", 0x1000, ("b" * 33 + "\0").encode("utf-16-le"))
    assert text.splitlines() == [
        '00000000`00001000  "' + "b" * 32 + '"',
        '00000000`00001040  "b"',
    ]


def test_unreadable_memory() -> None:
    # §6 `dq 10 L2` on unmapped memory: rows of ?? (the caller passes data=None and the size).
    assert format_memory("dq", 0x10, None, 16) == "00000000`00000010  ????????`???????? ????????`????????"
    assert format_memory("db", 0x10, b"\x41\x42", 4) == "00000000`00000010  41 42 ?? ??" + " " * 38 + "AB??"
    assert format_memory("da", 0x10, None, 128) == "00000000`00000010  ????"
    assert format_memory("dq", 0x10, [None] * 16) == "00000000`00000010  ????????`???????? ????????`????????"
    assert format_memory("db", 0x10, [None] * 16) == (
        "00000000`00000010  ?? ?? ?? ?? ?? ?? ?? ??-?? ?? ?? ?? ?? ?? ?? ??  ????????????????"
    )
    assert format_memory("dd", 0x10, [1, 0, 0, 0, None, None, None, None]) == (
        "00000000`00000010  00000001 ????????"
    )


def test_dc_and_partial_db_keep_ascii_column() -> None:
    assert format_memory("dc", BLOB_ADDRESS + 0x10, BLOB[0x10:0x20]) == (
        "00005555`55558020  6c6c6568 77202c6f 646c726f 00000a21  hello, world!..."
    )
    assert format_memory("dc", BLOB_ADDRESS + 0x10, BLOB[0x10:0x18]) == (
        "00005555`55558020  6c6c6568 77202c6f                    hello, w"
    )
    full = format_memory("db", BLOB_ADDRESS, BLOB[:16])
    partial = format_memory("db", BLOB_ADDRESS, BLOB[:5])
    assert partial == "00005555`55558010  de ad be ef 01" + " " * 35 + "....."
    assert partial.index("....") == full.index("....")


# ---------------------------------------------------------------- §7

U_TEXT = """\
app!target_fn:
00005555`55555141 55              push    rbp
00005555`55555142 4889e5          mov     rbp,rsp
00005555`55555145 897dfc          mov     dword ptr [rbp-4],edi
00005555`55555148 488d05c12e0000  lea     rax,[app!blob (00005555`55558010)]
00005555`5555514f 0fb60402        movzx   eax,byte ptr [rdx+rax]
00005555`55555153 83c00c          add     eax,0Ch
00005555`55555156 e8d5ffffff      call    app!helper (00005555`55555130)
00005555`5555515b c3              ret"""


def test_u_listing_through_the_engine_decoder() -> None:
    code = bytes.fromhex("554889e5897dfc488d05c12e00000fb6040283c00ce8d5ffffffc3")
    symbols = {0x555555558010: "app!blob", 0x555555555130: "app!helper"}
    lines = ["app!target_fn:"]
    for insn in disassemble(code, 0x555555555141, 8):
        symbol = symbols.get(insn.target) if insn.target is not None else None
        lines.append(format_instruction(insn.address, insn.code, insn.mnemonic, insn.operands, symbol))
    assert "\n".join(lines) == U_TEXT


@pytest.mark.parametrize(
    ("address", "hex_code", "symbol", "expected"),
    [
        (0x555555555141, "55", None, "00005555`55555141 55              push    rbp"),
        (0x555555555142, "4889e5", None, "00005555`55555142 4889e5          mov     rbp,rsp"),
        (
            0x555555555148,
            "488d05c12e0000",
            "app!blob",
            "00005555`55555148 488d05c12e0000  lea     rax,[app!blob (00005555`55558010)]",
        ),
        (
            0x555555555148,
            "488d05c12e0000",
            None,
            "00005555`55555148 488d05c12e0000  lea     rax,[00005555`55558010]",
        ),
        (
            0x55555555514F,
            "0fb60402",
            None,
            "00005555`5555514f 0fb60402        movzx   eax,byte ptr [rdx+rax]",
        ),
        (0x555555555153, "83c00c", None, "00005555`55555153 83c00c          add     eax,0Ch"),
        (
            0x555555555156,
            "e8d5ffffff",
            "app!helper",
            "00005555`55555156 e8d5ffffff      call    app!helper (00005555`55555130)",
        ),
        (
            0x555555555156,
            "e8d5ffffff",
            None,
            "00005555`55555156 e8d5ffffff      call    00005555`55555130",
        ),
        (
            0x555555555160,
            "48b8efcdab8967452301",
            None,
            "00005555`55555160 48b8efcdab8967452301 mov     rax,123456789ABCDEFh",
        ),
        (
            0x555555555145,
            "897dfc",
            None,
            "00005555`55555145 897dfc          mov     dword ptr [rbp-4],edi",
        ),
        (
            0x555555555145,
            "c745fcffffffff",
            None,
            "00005555`55555145 c745fcffffffff  mov     dword ptr [rbp-4],0FFFFFFFFh",
        ),
        (0x555555555145, "4883ec10", None, "00005555`55555145 4883ec10        sub     rsp,10h"),
        (
            0x555555555145,
            "4883c4f0",
            None,
            "00005555`55555145 4883c4f0        add     rsp,0FFFFFFFFFFFFFFF0h",
        ),
        (0x555555555145, "83c0ff", None, "00005555`55555145 83c0ff          add     eax,0FFFFFFFFh"),
        (
            0x555555555145,
            "488b45f0",
            None,
            "00005555`55555145 488b45f0        mov     rax,qword ptr [rbp-10h]",
        ),
        (
            0x555555555145,
            "488b04c510000000",
            None,
            "00005555`55555145 488b04c510000000 mov     rax,qword ptr [rax*8+10h]",
        ),
        (
            0x555555555145,
            "65488b042528000000",
            None,
            "00005555`55555145 65488b042528000000 mov     rax,qword ptr gs:[28h]",
        ),
        (
            0x555555555145,
            "f20f100500000000",
            "app!half",
            "00005555`55555145 f20f100500000000 movsd   xmm0,mmword ptr [app!half (00005555`5555514d)]",
        ),
        (
            0x555555555145,
            "f3a6",
            None,
            "00005555`55555145 f3a6            repe cmps byte ptr [rsi],byte ptr [rdi]",
        ),
        (0x555555555145, "f348ab", None, "00005555`55555145 f348ab          rep stos qword ptr [rdi]"),
        (
            0x555555555145,
            "7405",
            "app!main+0x46",
            "00005555`55555145 7405            je      app!main+0x46 (00005555`5555514c)",
        ),
        (
            0x555555555145,
            "ff15c52e0000",
            "app!_GLOBAL_OFFSET_TABLE_+0x18",
            "00005555`55555145 ff15c52e0000    call    qword ptr [app!_GLOBAL_OFFSET_TABLE_+0x18 "
            "(00005555`55558010)]",
        ),
        (
            0x555555555145,
            "0f1f440000",
            None,
            "00005555`55555145 0f1f440000      nop     dword ptr [rax+rax]",
        ),
        (0x555555555145, "c20800", None, "00005555`55555145 c20800          ret     8"),
    ],
)
def test_instruction_from_capstone(address: int, hex_code: str, symbol: str | None, expected: str) -> None:
    assert _u_line(address, hex_code, symbol) == expected


def test_unreadable_instruction() -> None:
    assert format_unreadable_instruction(0x10) == "00000000`00000010 ??              ???"


def test_masm_hex() -> None:
    assert [masm_hex(v) for v in (0, 9, 10, 12, 16, 0xFF, 2**64 - 1)] == [
        "0",
        "9",
        "0Ah",
        "0Ch",
        "10h",
        "0FFh",
        "0FFFFFFFFFFFFFFFFh",
    ]


# ---------------------------------------------------------------- §9


def test_ln_inside_a_symbol() -> None:
    expected = "(00005555`55555141)   app!target_fn+0x8   |  (00005555`55555160)   app!main"
    got = format_ln(
        (0x555555555141, "app!target_fn"), "app!target_fn+0x8", (0x555555555160, "app!main"), False
    )
    assert got == expected


def test_ln_exact() -> None:
    expected = """\
(00005555`55555160)   app!main   |  (00005555`555552a0)   app!worker_main
Exact matches:
    app!main (int, char **)"""
    got = format_ln(
        (0x555555555160, "app!main"),
        "app!main",
        (0x5555555552A0, "app!worker_main"),
        True,
        exact_matches=["app!main (int, char **)"],
    )
    assert got == expected


def test_ln_with_line_and_nothing_near() -> None:
    got = format_ln((0x555555555160, "app!main"), "app!main+0x4", None, False, line="/src/c.c @ 4")
    assert got == " [/src/c.c @ 4] (00005555`55555160)   app!main+0x4"
    assert format_ln(None, "0x10", None, False) == ""


# ---------------------------------------------------------------- §10


def test_evaluate() -> None:
    assert format_evaluate(26) == "Evaluate expression: 26 = 00000000`0000001a"
    assert format_evaluate(-1) == "Evaluate expression: -1 = ffffffff`ffffffff"
    assert format_evaluate(2**64 - 1) == "Evaluate expression: -1 = ffffffff`ffffffff"
