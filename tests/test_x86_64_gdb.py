"""The GDB remote protocol view of x86-64 registers (lindbg.arch.x86_64_gdb):
lindbgsrv's target description and layout, parsing other descriptions (a real
gdbserver's, captured on an AVX-512 machine, is at the end of this file),
the UserRegs/FXSAVE <-> g packet mapping and the x87 tag word."""

from __future__ import annotations

import ctypes
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lindbg.arch import x86_64_gdb as gdb
from lindbg.arch.x86_64 import GENERAL_REGISTERS, FpRegs, UserRegs
from lindbg.arch.x86_64_gdb import RegisterLayout, X87Tag

DEFAULT_ORDER = [
    *("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp"),
    *(f"r{i}" for i in range(8, 16)),
    *("rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs"),
    *(f"st{i}" for i in range(8)),
    *("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"),
    *(f"xmm{i}" for i in range(16)),
    "mxcsr",
    "orig_rax",
    "fs_base",
    "gs_base",
]

ONE = bytes.fromhex("0000000000000080ff3f")  # 1.0 as an 80-bit value
ZERO = bytes(10)
INFINITY = bytes.fromhex("0000000000000080ff7f")
NAN = bytes.fromhex("00000000000000c0ff7f")
DENORMAL = bytes.fromhex("01000000000000000000")
UNNORMAL = bytes.fromhex("0000000000000040ff3f")  # integer bit clear, exponent not 0


def make_regs() -> UserRegs:
    regs = UserRegs()
    for index, name in enumerate(GENERAL_REGISTERS):
        setattr(regs, name, 0x0101010101010101 * (index + 1))
    regs.eflags = 0x246
    regs.cs, regs.ss, regs.ds, regs.es, regs.fs, regs.gs = 0x33, 0x2B, 0, 0, 0, 0
    return regs


def make_fxsave() -> bytearray:
    """An FXSAVE area with ST(0)=1.0 at top 7 (physical register 7) and recognisable fields."""
    fx = bytearray(512)
    struct.pack_into("<HHBxH", fx, 0, 0x037F, 7 << 11, 0x80, 0x01D9)
    struct.pack_into("<QQII", fx, 8, 0x0000_1234_5678_9ABC, 0x0000_7FFD_0000_1000, 0x1F80, 0xFFFF)
    fx[32:42] = ONE
    for i in range(16):
        fx[160 + 16 * i : 176 + 16 * i] = bytes((i * 16 + j) & 0xFF for j in range(16))
    return fx


def regs_bytes(regs: UserRegs) -> bytes:
    return bytes(regs)


# ----------------------------------------------------------------- the default layout


def test_default_layout_numbers_registers_as_gdb_amd64_linux() -> None:
    layout = RegisterLayout.default()
    assert [reg.name for reg in layout] == DEFAULT_ORDER
    assert [reg.regnum for reg in layout] == list(range(60))
    assert layout.architecture == "i386:x86-64"
    assert layout.osabi == "GNU/Linux"


def test_default_layout_offsets() -> None:
    layout = RegisterLayout.default()
    expected = {
        "rax": (0, 8), "r15": (120, 8), "rip": (128, 8), "eflags": (136, 4), "cs": (140, 4),
        "gs": (160, 4), "st0": (164, 10), "st7": (234, 10), "fctrl": (244, 4), "ftag": (252, 4),
        "fop": (272, 4), "xmm0": (276, 16), "xmm15": (516, 16), "mxcsr": (532, 4),
        "orig_rax": (536, 8), "fs_base": (544, 8), "gs_base": (552, 8),
    }  # fmt: skip
    for name, (offset, size) in expected.items():
        assert (layout[name].offset, layout[name].size) == (offset, size), name
    assert layout.g_size == 560
    assert layout.by_regnum(16) is layout["rip"]
    assert layout.by_regnum(60) is None
    assert layout["orig_rax"].feature == gdb.FEATURE_LINUX
    assert layout["fs_base"].feature == gdb.FEATURE_SEGMENTS
    assert layout["st3"].type == "i387_ext"
    assert layout["fctrl"].group == "float"


def test_target_xml_parses_to_the_default_layout() -> None:
    assert RegisterLayout.from_xml(gdb.TARGET_XML) == RegisterLayout.default()
    assert RegisterLayout.from_xml(gdb.TARGET_XML.encode()) == RegisterLayout.default()


def test_target_xml_needs_no_binary_escaping_and_defines_its_types() -> None:
    assert not set("$#}*") & set(gdb.TARGET_XML)
    assert gdb.TARGET_XML.isascii()
    for type_id in ("i386_eflags", "i386_mxcsr", "vec128"):
        assert f'id="{type_id}"' in gdb.TARGET_XML
    assert "<architecture>i386:x86-64</architecture>" in gdb.TARGET_XML
    assert "<osabi>GNU/Linux</osabi>" in gdb.TARGET_XML
    assert "include" not in gdb.TARGET_XML


# ----------------------------------------------------------------- a real gdbserver's description


def test_gdbserver_layout_extends_the_default_layout() -> None:
    layout = RegisterLayout.from_xml(GDBSERVER_TARGET_XML)
    assert len(layout) == 148
    assert layout.g_size == 2416 == len(GDBSERVER_G_REPLY) // 2
    default = RegisterLayout.default()
    # The first 60 registers are lindbgsrv's, at the same numbers and offsets.
    assert layout.registers[:60] == default.registers
    names = [reg.name for reg in layout]
    assert names[60:76] == [f"ymm{i}h" for i in range(16)]
    assert names[76:92] == [f"xmm{i}" for i in range(16, 32)]
    assert names[92:108] == [f"ymm{i}h" for i in range(16, 32)]
    assert names[108:116] == [f"k{i}" for i in range(8)]
    assert names[116:148] == [f"zmm{i}h" for i in range(32)]
    assert (layout["ymm0h"].offset, layout["ymm0h"].size, layout["ymm0h"].regnum) == (560, 16, 60)
    assert (layout["k0"].offset, layout["k0"].size) == (1328, 8)
    assert (layout["zmm31h"].offset, layout["zmm31h"].size, layout["zmm31h"].regnum) == (2384, 32, 147)
    assert layout["zmm0h"].feature == "org.gnu.gdb.i386.avx512"


def test_decode_a_real_gdbserver_g_reply() -> None:
    layout = RegisterLayout.from_xml(GDBSERVER_TARGET_XML)
    regs = UserRegs()
    fxsave = bytearray(512)
    extras = gdb.decode_g(layout.from_hex(GDBSERVER_G_REPLY), regs, fxsave, layout)
    assert regs.rip == 0x7FFFF7FE4B70
    assert regs.rsp == 0x7FFFFFFFE650
    assert regs.eflags == 0x202
    assert (regs.cs, regs.ss) == (0x33, 0x2B)
    assert regs.orig_rax == 0x3B  # stopped after execve
    fp = FpRegs.from_buffer_copy(fxsave)
    assert (fp.cwd, fp.swd, fp.ftw, fp.mxcsr) == (0x37F, 0, 0, 0x1F80)  # ftag 0xffff: all empty
    assert set(extras) == {reg.name for reg in layout.registers[60:]}
    assert extras["zmm5h"] == bytes(32)
    # Encoding the state back for that layout gives the same reply, with the
    # registers lindbg does not hold unavailable.
    values = gdb.encode_g(regs, fxsave, layout)
    assert values[60:] == [None] * 88
    assert layout.from_hex(GDBSERVER_G_REPLY)[:60] == values[:60]
    assert layout.to_hex(values)[: 2 * 560] == GDBSERVER_G_REPLY[: 2 * 560]
    assert layout.to_hex(values)[2 * 560 :] == "xx" * (2416 - 560)


def test_decode_without_fxsave_returns_the_fp_registers() -> None:
    layout = RegisterLayout.from_xml(GDBSERVER_TARGET_XML)
    regs = UserRegs()
    extras = gdb.decode_g(bytes.fromhex(GDBSERVER_G_REPLY), regs, None, layout)
    assert regs.rip == 0x7FFFF7FE4B70
    assert extras["fctrl"] == (0x37F).to_bytes(4, "little")
    assert "xmm15" in extras and "ymm15h" in extras and "rip" not in extras


# ----------------------------------------------------------------- gdb itself as the oracle

_GDB = shutil.which("gdb")


def _gdb_offsets(xml: str, tmp_path: Path) -> dict[str, tuple[int, int, int]]:
    assert _GDB is not None
    path = tmp_path / "target.xml"
    path.write_text(xml)
    result = subprocess.run(
        [_GDB, "-nx", "-batch", "-ex", f"set tdesc filename {path}", "-ex", "maint print remote-registers"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    offsets = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        # Name Nr Rel Offset Size Type Rmt-Nr g/G-Offset: only registers in the g packet have all 8.
        if len(fields) == 8 and fields[-1].isdigit() and fields[4].isdigit():
            offsets[fields[0]] = (int(fields[6]), int(fields[7]), int(fields[4]))
    return offsets


@pytest.mark.skipif(_GDB is None, reason="gdb is not installed")
@pytest.mark.parametrize("which", ["lindbgsrv", "gdbserver"])
def test_layout_matches_gdbs_own_reading(which: str, tmp_path: Path) -> None:
    xml = gdb.TARGET_XML if which == "lindbgsrv" else GDBSERVER_TARGET_XML
    seen = _gdb_offsets(xml, tmp_path)
    layout = RegisterLayout.from_xml(xml)
    assert seen == {reg.name: (reg.regnum, reg.offset, reg.size) for reg in layout}


# ----------------------------------------------------------------- parsing descriptions

_CORE_PART = """<?xml version="1.0"?>
<!DOCTYPE feature SYSTEM "gdb-target.dtd">
<feature name="org.gnu.gdb.i386.core">
  <reg name="rax" bitsize="64" type="int64"/>
  <reg name="rbx" bitsize="64"/>
  <reg name="rip" bitsize="64" type="code_ptr" regnum="16"/>
  <reg name="eflags" bitsize="32"/>
</feature>
"""
_LINUX_PART = """<?xml version="1.0"?>
<feature name="org.gnu.gdb.i386.linux">
  <reg name="orig_rax" bitsize="64" type="int" regnum="57"/>
  <xi:include href="segments.xml"/>
</feature>
"""
_SEGMENTS_PART = """<feature name="org.gnu.gdb.i386.segments">
  <reg name="fs_base" bitsize="64" type="int"/>
</feature>
"""
_MAIN_WITH_INCLUDES = """<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target>
  <architecture>i386:x86-64</architecture>
  <xi:include href="core.xml"/>
  <xi:include href="linux.xml"/>
</target>
"""
_PARTS = {"core.xml": _CORE_PART, "linux.xml": _LINUX_PART, "segments.xml": _SEGMENTS_PART}


def test_includes_are_fetched_and_numbering_continues() -> None:
    fetched: list[str] = []

    def fetch(href: str) -> str | None:
        fetched.append(href)
        return _PARTS.get(href)

    layout = RegisterLayout.from_xml(_MAIN_WITH_INCLUDES, fetch)
    assert fetched == ["core.xml", "linux.xml", "segments.xml"]
    assert [(reg.name, reg.regnum, reg.offset) for reg in layout] == [
        ("rax", 0, 0), ("rbx", 1, 8), ("rip", 16, 16), ("eflags", 17, 24),
        ("orig_rax", 57, 28), ("fs_base", 58, 36),
    ]  # fmt: skip
    assert layout["rbx"].type == "int"  # the default type
    assert layout["fs_base"].feature == gdb.FEATURE_SEGMENTS
    assert layout.osabi is None and layout.architecture == "i386:x86-64"
    assert layout.g_size == 44


def test_registers_are_laid_out_in_regnum_order_not_document_order() -> None:
    xml = """<target><feature name="f">
      <reg name="b" bitsize="32" regnum="5"/>
      <reg name="a" bitsize="64" regnum="1"/>
      <reg name="c" bitsize="16"/>
    </feature></target>"""
    layout = RegisterLayout.from_xml(xml)
    assert [(reg.name, reg.regnum, reg.offset) for reg in layout] == [("a", 1, 0), ("c", 2, 8), ("b", 5, 10)]


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<target><xi:include href='gone.xml'/></target>", "could not load"),
        ("<feature name='f'/>", "not <target>"),
        ("<target><feature name='f'><reg name='a'/></feature></target>", "no bitsize"),
        ("<target><feature name='f'><reg name='a' bitsize='x'/></feature></target>", "malformed"),
        ("<target><feature name='f'><reg name='a' bitsize='12'/></feature></target>", "whole number"),
        (
            "<target><feature name='f'><reg name='a' bitsize='8'/>"
            "<reg name='a' bitsize='8'/></feature></target>",
            "two registers",
        ),
        (
            "<target><feature name='f'><reg name='a' bitsize='8' regnum='3'/>"
            "<reg name='b' bitsize='8' regnum='3'/></feature></target>",
            "share regnum",
        ),
        ("<target><feature>", "target.xml"),
        (
            '<!DOCTYPE target [<!ENTITY a "aaaa">]><target><architecture>&a;</architecture></target>',
            "entity",
        ),
    ],
)
def test_bad_descriptions_raise_value_error(xml: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RegisterLayout.from_xml(xml, lambda href: None)


def test_self_including_documents_stop() -> None:
    loop = "<feature name='f'><xi:include href='loop.xml'/></feature>"
    with pytest.raises(ValueError, match="nest deeper"):
        RegisterLayout.from_xml("<target><xi:include href='loop.xml'/></target>", lambda href: loop)


# ----------------------------------------------------------------- g packet bytes and hex


def test_split_join_and_hex_of_a_short_reply() -> None:
    layout = RegisterLayout.default()
    data = bytes(range(256)) * 2 + bytes(48)
    assert len(data) == layout.g_size
    values = layout.split(data)
    assert layout.join(values) == data
    assert layout.to_hex(values) == data.hex()
    assert layout.from_hex(data.hex().upper()) == values
    short = layout.split(data[:140])  # through eflags
    assert short[17] == data[136:140] and short[18] is None and short[-1] is None
    assert layout.from_hex(data[:142].hex()) == short  # half of cs: unavailable
    with pytest.raises(ValueError, match="longer"):
        layout.split(data + b"\0")
    with pytest.raises(ValueError, match="longer"):
        layout.from_hex(data.hex() + "00")
    with pytest.raises(ValueError, match="odd"):
        layout.from_hex("123")
    with pytest.raises(ValueError, match="G packet"):
        layout.join(short)
    with pytest.raises(ValueError, match="values for a layout"):
        layout.to_hex(values[:-1])
    with pytest.raises(ValueError, match="bytes, not"):
        layout.to_hex([b"\0", *values[1:]])


def test_xx_marks_unavailable_registers() -> None:
    layout = RegisterLayout.default()
    values = gdb.encode_g(make_regs(), None)
    text = layout.to_hex(values)
    assert text[2 * 164 :] == "xx" * (536 - 164) + text[2 * 536 :]
    assert "x" not in text[: 2 * 164] and "x" not in text[2 * 536 :]
    parsed = layout.from_hex(text)
    assert parsed == values
    assert all(parsed[i] is None for i in range(24, 57))


# ----------------------------------------------------------------- the state mapping


def test_round_trip_through_the_g_packet() -> None:
    regs, fxsave = make_regs(), make_fxsave()
    layout = RegisterLayout.default()
    data = layout.join(gdb.encode_g(regs, fxsave))
    assert len(data) == 560
    assert data[128:136] == regs.rip.to_bytes(8, "little")
    assert data[136:140] == (0x246).to_bytes(4, "little")
    assert data[536:544] == regs.orig_rax.to_bytes(8, "little")
    assert data[544:552] == regs.fs_base.to_bytes(8, "little")

    back_regs, back_fx = UserRegs(), bytearray(fxsave)
    assert gdb.decode_g(data, back_regs, back_fx) == {}
    assert regs_bytes(back_regs) == regs_bytes(regs)
    assert back_fx == fxsave
    # Into an empty FXSAVE area: every field gdb covers comes back.
    fresh = bytearray(512)
    gdb.decode_g(data, UserRegs(), fresh)
    assert fresh[:28] == fxsave[:28]  # control words, tag, fop, FPU pointers, mxcsr
    assert fresh[32:416] == fxsave[32:416]  # st and xmm registers
    assert fresh[28:32] == bytes(4)  # mxcsr_mask is no gdb register


_FX_FIELDS = st.binary(min_size=512, max_size=512)


@settings(max_examples=60, deadline=None)
@given(
    general=st.lists(st.integers(0, 2**64 - 1), min_size=27, max_size=27),
    fxsave=_FX_FIELDS,
)
def test_round_trip_of_arbitrary_state(general: list[int], fxsave: bytes) -> None:
    regs = UserRegs(*general)
    for name in ("eflags", "cs", "ss", "ds", "es", "fs", "gs"):
        setattr(regs, name, getattr(regs, name) & 0xFFFFFFFF)  # gdb shows 32 bits of these
    values = gdb.encode_g(regs, fxsave)
    back_regs, back_fx = UserRegs(), bytearray(fxsave)
    gdb.decode_g(values, back_regs, back_fx)
    assert regs_bytes(back_regs) == regs_bytes(regs)
    # Only the abridged tag byte can change: bits are kept exactly, so it cannot.
    assert bytes(back_fx) == fxsave
    # And the values read back are the values written.
    assert gdb.encode_g(back_regs, back_fx) == values


def test_32_bit_registers_keep_the_upper_half_of_the_64_bit_field() -> None:
    regs = make_regs()
    regs.eflags = 0xABCD_0000_0000_0246
    assert gdb.read_register("eflags", regs, None) == (0x246).to_bytes(4, "little")
    assert gdb.write_register("eflags", (0x202).to_bytes(4, "little"), regs, None) == "regs"
    assert regs.eflags == 0xABCD_0000_0000_0202
    assert gdb.read_register(18, regs, None) == (0x33).to_bytes(4, "little")  # cs by number


def test_fpu_control_registers() -> None:
    regs, fx = make_regs(), make_fxsave()

    def value(name: str) -> int:
        raw = gdb.read_register(name, regs, fx)
        assert raw is not None and len(raw) == 4
        return int.from_bytes(raw, "little")

    assert value("fctrl") == 0x037F
    assert value("fstat") == 0x3800
    assert value("ftag") == 0x3FFF  # physical register 7 (ST(0) at top 7) valid, the rest empty
    # The 64-bit FPU instruction/data pointers: offset = low half, segment = high half.
    assert (value("fiseg"), value("fioff")) == (0x1234, 0x56789ABC)
    assert (value("foseg"), value("fooff")) == (0x7FFD, 0x00001000)
    assert value("fop") == 0x1D9
    assert value("mxcsr") == 0x1F80
    assert gdb.read_register("st0", regs, fx) == ONE
    assert gdb.read_register("xmm1", regs, fx) == bytes(range(16, 32))

    fx[6:8] = struct.pack("<H", 0xF800 | 0x1D9)  # bits above the 11-bit opcode
    assert value("fop") == 0x1D9
    gdb.write_register("fop", (0xFFFF_F123).to_bytes(4, "little"), regs, fx)
    assert struct.unpack_from("<H", fx, 6)[0] == 0xF800 | 0x123
    gdb.write_register("fctrl", (0x1234_037F).to_bytes(4, "little"), regs, fx)
    assert struct.unpack_from("<H", fx, 0)[0] == 0x037F and fx[2:4] == b"\x00\x38"
    gdb.write_register("fiseg", (0xBEEF).to_bytes(4, "little"), regs, fx)
    assert struct.unpack_from("<Q", fx, 8)[0] == 0x0000_BEEF_5678_9ABC
    fx[5] = 0x5A  # the reserved byte after the abridged tag
    assert gdb.write_register("ftag", (0xFFFC).to_bytes(4, "little"), regs, fx) == "fxsave"
    assert fx[4:6] == b"\x01\x5a"
    fx[42:48] = b"RSRVED"  # reserved bytes of ST(0)'s slot
    gdb.write_register(24, INFINITY, regs, fx)
    assert fx[32:48] == INFINITY + b"RSRVED"


def test_unavailable_and_unknown_registers() -> None:
    regs = make_regs()
    assert gdb.read_register("xmm0", regs, None) is None
    assert gdb.read_register("ymm0h", regs, make_fxsave()) is None
    assert gdb.read_register("rip", regs, None) == regs.rip.to_bytes(8, "little")
    with pytest.raises(KeyError):
        gdb.read_register(60, regs, None)
    with pytest.raises(KeyError):
        gdb.write_register("ymm0h", bytes(16), regs, bytearray(512))
    with pytest.raises(ValueError, match="needs the FXSAVE"):
        gdb.write_register("xmm0", bytes(16), regs, None)
    with pytest.raises(ValueError, match="bytes, not"):
        gdb.write_register("rax", bytes(4), regs, None)
    with pytest.raises(ValueError, match="FXSAVE area is 512"):
        gdb.read_register("fctrl", regs, bytes(100))
    # A longer area (XSAVE) is read through its first 512 bytes.
    assert gdb.read_register("mxcsr", regs, bytes(make_fxsave()) + bytes(320)) == (0x1F80).to_bytes(
        4, "little"
    )
    layout = RegisterLayout.from_xml(GDBSERVER_TARGET_XML)
    assert gdb.read_register(60, regs, None, layout) is None  # ymm0h there
    assert gdb.state_mapping(layout) == {
        name: ("fxsave" if 24 <= i < 57 else "regs") for i, name in enumerate(DEFAULT_ORDER)
    }


def test_p_and_P_by_regnum() -> None:
    regs, fx = make_regs(), make_fxsave()
    for reg in RegisterLayout.default():
        value = gdb.read_register(reg.regnum, regs, fx)
        assert value is not None and len(value) == reg.size, reg.name
        part = gdb.write_register(reg.regnum, value, regs, fx)
        assert part == ("fxsave" if 24 <= reg.regnum < 57 else "regs"), reg.name
    assert regs_bytes(regs) == regs_bytes(make_regs())
    assert fx == make_fxsave()
    gdb.write_register(0, (5).to_bytes(8, "little"), regs, fx)
    assert regs.rax == 5


def test_fxsave_structure_agrees_with_the_offsets() -> None:
    fx = make_fxsave()
    fp = FpRegs.from_buffer_copy(fx)
    assert ctypes.sizeof(FpRegs) == gdb.FXSAVE_SIZE
    assert (fp.cwd, fp.swd, fp.ftw, fp.fop, fp.rip, fp.rdp, fp.mxcsr) == (
        0x037F, 0x3800, 0x80, 0x1D9, 0x1234_5678_9ABC, 0x7FFD_0000_1000, 0x1F80,
    )  # fmt: skip


# ----------------------------------------------------------------- the x87 tag word


@pytest.mark.parametrize(
    ("raw", "tag"),
    [
        (ONE, X87Tag.VALID),
        (ZERO, X87Tag.ZERO),
        (bytes.fromhex("00000000000000000080"), X87Tag.ZERO),  # -0.0
        (INFINITY, X87Tag.SPECIAL),
        (NAN, X87Tag.SPECIAL),
        (DENORMAL, X87Tag.SPECIAL),
        (UNNORMAL, X87Tag.SPECIAL),
    ],
)
def test_x87_tag_of_a_value(raw: bytes, tag: X87Tag) -> None:
    assert gdb.x87_tag(raw) is tag


def test_tag_word_conversions_on_known_values() -> None:
    stack = [ONE, ZERO, NAN, ONE, ONE, ONE, ONE, ONE]
    assert gdb.expand_tag_word(0x00, 0, stack) == 0xFFFF  # empty stack
    assert gdb.expand_tag_word(0x80, 7 << 11, stack) == 0x3FFF  # one value pushed onto an empty FPU
    assert gdb.expand_tag_word(0xFF, 0, stack) == 0b00_00_00_00_00_10_01_00  # physical = ST(i) at top 0
    # top 5: physical 5 is ST(0), 6 is ST(1), 7 is ST(2).
    assert gdb.expand_tag_word(0xE0, 5 << 11, stack) == 0b10_01_00_11_11_11_11_11
    assert gdb.abridge_tag_word(0xFFFF) == 0x00
    assert gdb.abridge_tag_word(0x3FFF) == 0x80
    assert gdb.abridge_tag_word(0x0000) == 0xFF
    assert gdb.abridge_tag_word(0b10_01_00_11_11_11_11_11) == 0xE0


def test_tag_word_round_trip_over_every_abridged_byte() -> None:
    stack = [ONE, ZERO, NAN, DENORMAL, INFINITY, UNNORMAL, ONE, ZERO]
    for top in range(8):
        for abridged in range(256):
            full = gdb.expand_tag_word(abridged, (top << 11) | 0x41, stack)
            assert gdb.abridge_tag_word(full) == abridged


# ----------------------------------------------------------------- qXfer:features:read


def test_features_annex_and_slices() -> None:
    document = gdb.features_annex("target.xml")
    assert document == gdb.TARGET_XML.encode()
    assert gdb.features_annex("64bit-core.xml") is None
    assert gdb.features_read("64bit-core.xml:0,fff") is None
    chunks = []
    offset = 0
    while True:
        reply = gdb.features_read(f"target.xml:{offset:x},100")
        assert reply is not None
        chunks.append(reply[1:])
        offset += len(reply) - 1
        if reply[:1] == b"l":
            break
        assert reply[:1] == b"m" and len(reply) == 0x101
    assert b"".join(chunks) == document
    assert gdb.xfer_read(document, len(document), 16) == b"l"
    assert gdb.xfer_read(document, len(document) + 100, 16) == b"l"
    assert gdb.xfer_read(document, 0, len(document)) == b"l" + document
    assert gdb.xfer_read(document, 0, len(document) - 1) == b"m" + document[:-1]
    assert gdb.xfer_read(b"abcdef", 2, 2) == b"mcd"
    for bad in ("target.xml", "target.xml:10", "target.xml:zz,10", ":"):
        with pytest.raises(ValueError):
            gdb.features_read(bad)


def test_captured_gdbserver_data_is_consistent() -> None:
    assert re.fullmatch("[0-9a-f]+", GDBSERVER_G_REPLY)
    assert GDBSERVER_TARGET_XML.count("<reg ") == 148


# ----------------------------------------------------------------- captured from gdbserver
#
# gdbserver (GNU gdb 13.1, Debian) on this x86-64 machine (AVX-512, no PKU),
# run as `gdbserver - /bin/true`: the target.xml it sent (one document, no
# includes) after qSupported:...;xmlRegisters=i386 and `?`, and its `g` reply
# (run-length encoding undone) at the first stop, at the dynamic loader's entry.

GDBSERVER_TARGET_XML = """\
<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target>
  <architecture>i386:x86-64</architecture>
  <osabi>GNU/Linux</osabi>
  <feature name="org.gnu.gdb.i386.core">
    <flags id="i386_eflags" size="4">
      <field name="CF" start="0" end="0" type="bool"/>
      <field name="" start="1" end="1" type="bool"/>
      <field name="PF" start="2" end="2" type="bool"/>
      <field name="AF" start="4" end="4" type="bool"/>
      <field name="ZF" start="6" end="6" type="bool"/>
      <field name="SF" start="7" end="7" type="bool"/>
      <field name="TF" start="8" end="8" type="bool"/>
      <field name="IF" start="9" end="9" type="bool"/>
      <field name="DF" start="10" end="10" type="bool"/>
      <field name="OF" start="11" end="11" type="bool"/>
      <field name="NT" start="14" end="14" type="bool"/>
      <field name="RF" start="16" end="16" type="bool"/>
      <field name="VM" start="17" end="17" type="bool"/>
      <field name="AC" start="18" end="18" type="bool"/>
      <field name="VIF" start="19" end="19" type="bool"/>
      <field name="VIP" start="20" end="20" type="bool"/>
      <field name="ID" start="21" end="21" type="bool"/>
    </flags>
    <reg name="rax" bitsize="64" type="int64" regnum="0"/>
    <reg name="rbx" bitsize="64" type="int64" regnum="1"/>
    <reg name="rcx" bitsize="64" type="int64" regnum="2"/>
    <reg name="rdx" bitsize="64" type="int64" regnum="3"/>
    <reg name="rsi" bitsize="64" type="int64" regnum="4"/>
    <reg name="rdi" bitsize="64" type="int64" regnum="5"/>
    <reg name="rbp" bitsize="64" type="data_ptr" regnum="6"/>
    <reg name="rsp" bitsize="64" type="data_ptr" regnum="7"/>
    <reg name="r8" bitsize="64" type="int64" regnum="8"/>
    <reg name="r9" bitsize="64" type="int64" regnum="9"/>
    <reg name="r10" bitsize="64" type="int64" regnum="10"/>
    <reg name="r11" bitsize="64" type="int64" regnum="11"/>
    <reg name="r12" bitsize="64" type="int64" regnum="12"/>
    <reg name="r13" bitsize="64" type="int64" regnum="13"/>
    <reg name="r14" bitsize="64" type="int64" regnum="14"/>
    <reg name="r15" bitsize="64" type="int64" regnum="15"/>
    <reg name="rip" bitsize="64" type="code_ptr" regnum="16"/>
    <reg name="eflags" bitsize="32" type="i386_eflags" regnum="17"/>
    <reg name="cs" bitsize="32" type="int32" regnum="18"/>
    <reg name="ss" bitsize="32" type="int32" regnum="19"/>
    <reg name="ds" bitsize="32" type="int32" regnum="20"/>
    <reg name="es" bitsize="32" type="int32" regnum="21"/>
    <reg name="fs" bitsize="32" type="int32" regnum="22"/>
    <reg name="gs" bitsize="32" type="int32" regnum="23"/>
    <reg name="st0" bitsize="80" type="i387_ext" regnum="24"/>
    <reg name="st1" bitsize="80" type="i387_ext" regnum="25"/>
    <reg name="st2" bitsize="80" type="i387_ext" regnum="26"/>
    <reg name="st3" bitsize="80" type="i387_ext" regnum="27"/>
    <reg name="st4" bitsize="80" type="i387_ext" regnum="28"/>
    <reg name="st5" bitsize="80" type="i387_ext" regnum="29"/>
    <reg name="st6" bitsize="80" type="i387_ext" regnum="30"/>
    <reg name="st7" bitsize="80" type="i387_ext" regnum="31"/>
    <reg name="fctrl" bitsize="32" type="int" regnum="32" group="float"/>
    <reg name="fstat" bitsize="32" type="int" regnum="33" group="float"/>
    <reg name="ftag" bitsize="32" type="int" regnum="34" group="float"/>
    <reg name="fiseg" bitsize="32" type="int" regnum="35" group="float"/>
    <reg name="fioff" bitsize="32" type="int" regnum="36" group="float"/>
    <reg name="foseg" bitsize="32" type="int" regnum="37" group="float"/>
    <reg name="fooff" bitsize="32" type="int" regnum="38" group="float"/>
    <reg name="fop" bitsize="32" type="int" regnum="39" group="float"/>
  </feature>
  <feature name="org.gnu.gdb.i386.sse">
    <vector id="v8bf16" type="bfloat16" count="8"/>
    <vector id="v8h" type="ieee_half" count="8"/>
    <vector id="v4f" type="ieee_single" count="4"/>
    <vector id="v2d" type="ieee_double" count="2"/>
    <vector id="v16i8" type="int8" count="16"/>
    <vector id="v8i16" type="int16" count="8"/>
    <vector id="v4i32" type="int32" count="4"/>
    <vector id="v2i64" type="int64" count="2"/>
    <union id="vec128">
      <field name="v8_bfloat16" type="v8bf16"/>
      <field name="v8_half" type="v8h"/>
      <field name="v4_float" type="v4f"/>
      <field name="v2_double" type="v2d"/>
      <field name="v16_int8" type="v16i8"/>
      <field name="v8_int16" type="v8i16"/>
      <field name="v4_int32" type="v4i32"/>
      <field name="v2_int64" type="v2i64"/>
      <field name="uint128" type="uint128"/>
    </union>
    <flags id="i386_mxcsr" size="4">
      <field name="IE" start="0" end="0" type="bool"/>
      <field name="DE" start="1" end="1" type="bool"/>
      <field name="ZE" start="2" end="2" type="bool"/>
      <field name="OE" start="3" end="3" type="bool"/>
      <field name="UE" start="4" end="4" type="bool"/>
      <field name="PE" start="5" end="5" type="bool"/>
      <field name="DAZ" start="6" end="6" type="bool"/>
      <field name="IM" start="7" end="7" type="bool"/>
      <field name="DM" start="8" end="8" type="bool"/>
      <field name="ZM" start="9" end="9" type="bool"/>
      <field name="OM" start="10" end="10" type="bool"/>
      <field name="UM" start="11" end="11" type="bool"/>
      <field name="PM" start="12" end="12" type="bool"/>
      <field name="FZ" start="15" end="15" type="bool"/>
    </flags>
    <reg name="xmm0" bitsize="128" type="vec128" regnum="40"/>
    <reg name="xmm1" bitsize="128" type="vec128" regnum="41"/>
    <reg name="xmm2" bitsize="128" type="vec128" regnum="42"/>
    <reg name="xmm3" bitsize="128" type="vec128" regnum="43"/>
    <reg name="xmm4" bitsize="128" type="vec128" regnum="44"/>
    <reg name="xmm5" bitsize="128" type="vec128" regnum="45"/>
    <reg name="xmm6" bitsize="128" type="vec128" regnum="46"/>
    <reg name="xmm7" bitsize="128" type="vec128" regnum="47"/>
    <reg name="xmm8" bitsize="128" type="vec128" regnum="48"/>
    <reg name="xmm9" bitsize="128" type="vec128" regnum="49"/>
    <reg name="xmm10" bitsize="128" type="vec128" regnum="50"/>
    <reg name="xmm11" bitsize="128" type="vec128" regnum="51"/>
    <reg name="xmm12" bitsize="128" type="vec128" regnum="52"/>
    <reg name="xmm13" bitsize="128" type="vec128" regnum="53"/>
    <reg name="xmm14" bitsize="128" type="vec128" regnum="54"/>
    <reg name="xmm15" bitsize="128" type="vec128" regnum="55"/>
    <reg name="mxcsr" bitsize="32" type="i386_mxcsr" regnum="56" group="vector"/>
  </feature>
  <feature name="org.gnu.gdb.i386.linux">
    <reg name="orig_rax" bitsize="64" type="int" regnum="57"/>
  </feature>
  <feature name="org.gnu.gdb.i386.segments">
    <reg name="fs_base" bitsize="64" type="int" regnum="58"/>
    <reg name="gs_base" bitsize="64" type="int" regnum="59"/>
  </feature>
  <feature name="org.gnu.gdb.i386.avx">
    <reg name="ymm0h" bitsize="128" type="uint128" regnum="60"/>
    <reg name="ymm1h" bitsize="128" type="uint128" regnum="61"/>
    <reg name="ymm2h" bitsize="128" type="uint128" regnum="62"/>
    <reg name="ymm3h" bitsize="128" type="uint128" regnum="63"/>
    <reg name="ymm4h" bitsize="128" type="uint128" regnum="64"/>
    <reg name="ymm5h" bitsize="128" type="uint128" regnum="65"/>
    <reg name="ymm6h" bitsize="128" type="uint128" regnum="66"/>
    <reg name="ymm7h" bitsize="128" type="uint128" regnum="67"/>
    <reg name="ymm8h" bitsize="128" type="uint128" regnum="68"/>
    <reg name="ymm9h" bitsize="128" type="uint128" regnum="69"/>
    <reg name="ymm10h" bitsize="128" type="uint128" regnum="70"/>
    <reg name="ymm11h" bitsize="128" type="uint128" regnum="71"/>
    <reg name="ymm12h" bitsize="128" type="uint128" regnum="72"/>
    <reg name="ymm13h" bitsize="128" type="uint128" regnum="73"/>
    <reg name="ymm14h" bitsize="128" type="uint128" regnum="74"/>
    <reg name="ymm15h" bitsize="128" type="uint128" regnum="75"/>
  </feature>
  <feature name="org.gnu.gdb.i386.avx512">
    <vector id="v8bf16" type="bfloat16" count="8"/>
    <vector id="v8h" type="ieee_half" count="8"/>
    <vector id="v4f" type="ieee_single" count="4"/>
    <vector id="v2d" type="ieee_double" count="2"/>
    <vector id="v16i8" type="int8" count="16"/>
    <vector id="v8i16" type="int16" count="8"/>
    <vector id="v4i32" type="int32" count="4"/>
    <vector id="v2i64" type="int64" count="2"/>
    <union id="vec128">
      <field name="v8_bfloat16" type="v8bf16"/>
      <field name="v8_half" type="v8h"/>
      <field name="v4_float" type="v4f"/>
      <field name="v2_double" type="v2d"/>
      <field name="v16_int8" type="v16i8"/>
      <field name="v8_int16" type="v8i16"/>
      <field name="v4_int32" type="v4i32"/>
      <field name="v2_int64" type="v2i64"/>
      <field name="uint128" type="uint128"/>
    </union>
    <vector id="v2ui128" type="uint128" count="2"/>
    <reg name="xmm16" bitsize="128" type="vec128" regnum="76"/>
    <reg name="xmm17" bitsize="128" type="vec128" regnum="77"/>
    <reg name="xmm18" bitsize="128" type="vec128" regnum="78"/>
    <reg name="xmm19" bitsize="128" type="vec128" regnum="79"/>
    <reg name="xmm20" bitsize="128" type="vec128" regnum="80"/>
    <reg name="xmm21" bitsize="128" type="vec128" regnum="81"/>
    <reg name="xmm22" bitsize="128" type="vec128" regnum="82"/>
    <reg name="xmm23" bitsize="128" type="vec128" regnum="83"/>
    <reg name="xmm24" bitsize="128" type="vec128" regnum="84"/>
    <reg name="xmm25" bitsize="128" type="vec128" regnum="85"/>
    <reg name="xmm26" bitsize="128" type="vec128" regnum="86"/>
    <reg name="xmm27" bitsize="128" type="vec128" regnum="87"/>
    <reg name="xmm28" bitsize="128" type="vec128" regnum="88"/>
    <reg name="xmm29" bitsize="128" type="vec128" regnum="89"/>
    <reg name="xmm30" bitsize="128" type="vec128" regnum="90"/>
    <reg name="xmm31" bitsize="128" type="vec128" regnum="91"/>
    <reg name="ymm16h" bitsize="128" type="uint128" regnum="92"/>
    <reg name="ymm17h" bitsize="128" type="uint128" regnum="93"/>
    <reg name="ymm18h" bitsize="128" type="uint128" regnum="94"/>
    <reg name="ymm19h" bitsize="128" type="uint128" regnum="95"/>
    <reg name="ymm20h" bitsize="128" type="uint128" regnum="96"/>
    <reg name="ymm21h" bitsize="128" type="uint128" regnum="97"/>
    <reg name="ymm22h" bitsize="128" type="uint128" regnum="98"/>
    <reg name="ymm23h" bitsize="128" type="uint128" regnum="99"/>
    <reg name="ymm24h" bitsize="128" type="uint128" regnum="100"/>
    <reg name="ymm25h" bitsize="128" type="uint128" regnum="101"/>
    <reg name="ymm26h" bitsize="128" type="uint128" regnum="102"/>
    <reg name="ymm27h" bitsize="128" type="uint128" regnum="103"/>
    <reg name="ymm28h" bitsize="128" type="uint128" regnum="104"/>
    <reg name="ymm29h" bitsize="128" type="uint128" regnum="105"/>
    <reg name="ymm30h" bitsize="128" type="uint128" regnum="106"/>
    <reg name="ymm31h" bitsize="128" type="uint128" regnum="107"/>
    <reg name="k0" bitsize="64" type="uint64" regnum="108"/>
    <reg name="k1" bitsize="64" type="uint64" regnum="109"/>
    <reg name="k2" bitsize="64" type="uint64" regnum="110"/>
    <reg name="k3" bitsize="64" type="uint64" regnum="111"/>
    <reg name="k4" bitsize="64" type="uint64" regnum="112"/>
    <reg name="k5" bitsize="64" type="uint64" regnum="113"/>
    <reg name="k6" bitsize="64" type="uint64" regnum="114"/>
    <reg name="k7" bitsize="64" type="uint64" regnum="115"/>
    <reg name="zmm0h" bitsize="256" type="v2ui128" regnum="116"/>
    <reg name="zmm1h" bitsize="256" type="v2ui128" regnum="117"/>
    <reg name="zmm2h" bitsize="256" type="v2ui128" regnum="118"/>
    <reg name="zmm3h" bitsize="256" type="v2ui128" regnum="119"/>
    <reg name="zmm4h" bitsize="256" type="v2ui128" regnum="120"/>
    <reg name="zmm5h" bitsize="256" type="v2ui128" regnum="121"/>
    <reg name="zmm6h" bitsize="256" type="v2ui128" regnum="122"/>
    <reg name="zmm7h" bitsize="256" type="v2ui128" regnum="123"/>
    <reg name="zmm8h" bitsize="256" type="v2ui128" regnum="124"/>
    <reg name="zmm9h" bitsize="256" type="v2ui128" regnum="125"/>
    <reg name="zmm10h" bitsize="256" type="v2ui128" regnum="126"/>
    <reg name="zmm11h" bitsize="256" type="v2ui128" regnum="127"/>
    <reg name="zmm12h" bitsize="256" type="v2ui128" regnum="128"/>
    <reg name="zmm13h" bitsize="256" type="v2ui128" regnum="129"/>
    <reg name="zmm14h" bitsize="256" type="v2ui128" regnum="130"/>
    <reg name="zmm15h" bitsize="256" type="v2ui128" regnum="131"/>
    <reg name="zmm16h" bitsize="256" type="v2ui128" regnum="132"/>
    <reg name="zmm17h" bitsize="256" type="v2ui128" regnum="133"/>
    <reg name="zmm18h" bitsize="256" type="v2ui128" regnum="134"/>
    <reg name="zmm19h" bitsize="256" type="v2ui128" regnum="135"/>
    <reg name="zmm20h" bitsize="256" type="v2ui128" regnum="136"/>
    <reg name="zmm21h" bitsize="256" type="v2ui128" regnum="137"/>
    <reg name="zmm22h" bitsize="256" type="v2ui128" regnum="138"/>
    <reg name="zmm23h" bitsize="256" type="v2ui128" regnum="139"/>
    <reg name="zmm24h" bitsize="256" type="v2ui128" regnum="140"/>
    <reg name="zmm25h" bitsize="256" type="v2ui128" regnum="141"/>
    <reg name="zmm26h" bitsize="256" type="v2ui128" regnum="142"/>
    <reg name="zmm27h" bitsize="256" type="v2ui128" regnum="143"/>
    <reg name="zmm28h" bitsize="256" type="v2ui128" regnum="144"/>
    <reg name="zmm29h" bitsize="256" type="v2ui128" regnum="145"/>
    <reg name="zmm30h" bitsize="256" type="v2ui128" regnum="146"/>
    <reg name="zmm31h" bitsize="256" type="v2ui128" regnum="147"/>
  </feature>
</target>
"""

GDBSERVER_G_REPLY = (
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000050e6ffffff7f00000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000704bfef7ff7f00000202000033000000"
    "2b0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000007f03000000000000ffff00000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000801f00003b000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000"
)
