"""The x86-64 Linux registers as the GDB remote serial protocol sees them.

Pure data and functions, no ptrace and no I/O, shared by the process server
(lindbgsrv answering gdb's ``g``/``G``/``p``/``P`` and
``qXfer:features:read`` packets) and by the client side (lindbg talking to
lindbgsrv or to a real ``gdbserver``).

Register layouts
----------------
A target description (``target.xml``) lists registers; each has a remote
number (its ``regnum`` attribute, or one more than the register before it in
the document) and a size. The ``g`` packet holds every register in
remote-number order, back to back, little-endian. :class:`RegisterLayout`
reads a description (fetching ``<xi:include>`` parts through a callback) and
works out each register's offset the way gdb does.
``RegisterLayout.default()`` is lindbgsrv's own layout, the one
:data:`TARGET_XML` describes (gdb's amd64 GNU/Linux numbering; no AVX):

====== ================================================ ====== ===========
regnum registers                                        bytes  g offset
====== ================================================ ====== ===========
0-15   rax rbx rcx rdx rsi rdi rbp rsp r8 ... r15       8      0 ... 120
16     rip                                              8      128
17     eflags                                           4      136
18-23  cs ss ds es fs gs                                4      140 ... 160
24-31  st0 ... st7 (80-bit ``i387_ext``)                10     164 ... 234
32-39  fctrl fstat ftag fiseg fioff foseg fooff fop     4      244 ... 272
40-55  xmm0 ... xmm15                                   16     276 ... 516
56     mxcsr                                            4      532
57     orig_rax (feature ``org.gnu.gdb.i386.linux``)    8      536
58-59  fs_base gs_base (``org.gnu.gdb.i386.segments``)  8      544, 552
====== ================================================ ====== ===========

560 bytes in all. A real gdbserver sends more (AVX ``ymm*h`` after
``gs_base``, AVX-512, ``pkru`` ... whatever the CPU has), which is why a client
must parse the description the server sent rather than assume this layout.

Values
------
Register values are raw little-endian ``bytes`` of the register's size; hex is
the caller's business, with helpers on the layout (:meth:`RegisterLayout.to_hex`
writes ``xx`` for an unavailable register, as gdb accepts in ``g``/``p``
replies; :meth:`RegisterLayout.from_hex` reads them back as ``None``).
Lindbg's state is a ``UserRegs`` plus the 512-byte FXSAVE area (or a longer
XSAVE area, whose first 512 bytes are the FXSAVE area):
:func:`read_register`/:func:`encode_g` go from it to gdb's registers,
:func:`write_register`/:func:`decode_g` back. The mapping follows gdb's
``amd64_supply_fxsave``/``amd64_collect_fxsave`` (``i387-tdep.c``,
``amd64-tdep.c``):

* ``eflags`` and the segment selectors are 4 bytes in gdb and 8 in
  ``UserRegs``: reads take the low half, writes replace it and keep the high
  half (always zero in practice).
* ``st0``-``st7`` are the 10 significant bytes of the 16-byte ``st_space``
  slots (stack order, ST(i)); writes keep the 6 reserved bytes.
* ``fctrl``/``fstat`` are the 16-bit ``cwd``/``swd`` zero-extended.
* ``ftag`` is the full x87 tag word (two bits a physical register) that gdb
  expects, rebuilt from the abridged 8-bit tag FXSAVE keeps and from the
  register contents (:func:`expand_tag_word`); writes abridge it back
  (:func:`abridge_tag_word`), keeping the reserved byte after it.
* ``fioff``/``fooff`` are the low 32 bits of the 64-bit FPU instruction and
  data pointers (FXSAVE bytes 8 and 16) and ``fiseg``/``foseg`` their high 32
  bits (bytes 12 and 20), as gdb's native amd64 code has them, so a 64-bit
  pointer survives a round trip. (gdbserver masks ``fiseg``/``foseg`` to 16
  bits, so from a real gdbserver bits 48-63 of those pointers read as zero.)
* ``fop`` is the 11-bit last opcode; writes keep the 5 bits above it.
* ``xmm0``-``xmm15`` and ``mxcsr`` are copied as they are.

Registers lindbg's state does not hold (``ymm0h``, ``k0``, ``pkru`` ... of a
foreign layout) read as unavailable, and :func:`decode_g` hands their values
back to the caller untouched.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal
from xml.parsers import expat

from lindbg.arch.x86_64 import UserRegs

#: Size of the FXSAVE area (``struct user_fpregs_struct``).
FXSAVE_SIZE = 512

FEATURE_CORE = "org.gnu.gdb.i386.core"
FEATURE_SSE = "org.gnu.gdb.i386.sse"
FEATURE_LINUX = "org.gnu.gdb.i386.linux"
FEATURE_SEGMENTS = "org.gnu.gdb.i386.segments"

#: Which part of lindbg's state a register write changed: the ``UserRegs`` or the FXSAVE area.
StatePart = Literal["regs", "fxsave"]

#: Fetches an ``<xi:include href=...>`` document by its href; ``None`` when there is none.
FetchDocument = Callable[[str], str | bytes | None]

_MAX_INCLUDE_DEPTH = 8


# ----------------------------------------------------------------- the layout


@dataclass(frozen=True)
class GdbRegister:
    """One register of a target description.

    ``offset`` is the register's byte offset in the ``g`` packet; a
    :class:`RegisterLayout` assigns it (a value given to the constructor is
    replaced).
    """

    name: str
    regnum: int
    bitsize: int
    type: str = "int"
    feature: str = ""
    group: str | None = None
    offset: int = -1

    @property
    def size(self) -> int:
        """Size in bytes."""
        return self.bitsize // 8


class RegisterLayout:
    """The registers of a target description, in ``g`` packet order.

    Registers are ordered by remote number and laid out back to back (gaps in
    the numbering leave no gaps in the packet), as gdb's remote target does.
    Immutable; iterating yields the registers in packet order.

    Raises:
        ValueError: two registers share a name or a number, or a size is not
            a whole number of bytes.
    """

    def __init__(
        self,
        registers: Iterable[GdbRegister],
        *,
        architecture: str | None = None,
        osabi: str | None = None,
    ) -> None:
        ordered = sorted(registers, key=lambda reg: reg.regnum)
        placed: list[GdbRegister] = []
        by_name: dict[str, GdbRegister] = {}
        by_regnum: dict[int, GdbRegister] = {}
        offset = 0
        for reg in ordered:
            if reg.bitsize < 0 or reg.bitsize % 8:
                raise ValueError(
                    f"register {reg.name!r}: bitsize {reg.bitsize} is not a whole number of bytes"
                )
            if reg.regnum < 0:
                raise ValueError(f"register {reg.name!r}: negative regnum {reg.regnum}")
            if reg.name in by_name:
                raise ValueError(f"two registers are named {reg.name!r}")
            if reg.regnum in by_regnum:
                raise ValueError(
                    f"registers {by_regnum[reg.regnum].name!r} and {reg.name!r} share regnum {reg.regnum}"
                )
            reg = replace(reg, offset=offset)
            offset += reg.size
            placed.append(reg)
            by_name[reg.name] = reg
            by_regnum[reg.regnum] = reg
        self._registers = tuple(placed)
        self._by_name = by_name
        self._by_regnum = by_regnum
        self._g_size = offset
        self.architecture = architecture
        self.osabi = osabi

    # -- construction

    @classmethod
    def default(cls) -> RegisterLayout:
        """Lindbgsrv's own layout, the one :data:`TARGET_XML` describes."""
        return _DEFAULT_LAYOUT

    @classmethod
    def from_xml(cls, document: str | bytes, fetch: FetchDocument | None = None) -> RegisterLayout:
        """Parse a ``target.xml`` document.

        ``fetch(href)`` supplies the documents of ``<xi:include href=...>``
        elements (as gdb reads them with ``qXfer:features:read:HREF``);
        includes may nest. Documents with entity declarations are refused.

        Raises:
            ValueError: the document is not well-formed, is not a ``<target>``,
                an include cannot be fetched, or a register is malformed.
        """
        root = _parse_document(document, "target.xml")
        if root.tag != "target":
            raise ValueError(f"target.xml: the root element is <{root.tag}>, not <target>")
        registers: list[GdbRegister] = []
        state = _ParseState(fetch)
        for child in state.expand(root.children, 0):
            if child.tag == "architecture":
                state.architecture = child.text.strip()
            elif child.tag == "osabi":
                state.osabi = child.text.strip()
            elif child.tag == "feature":
                registers.extend(state.feature(child, 0))
        return cls(registers, architecture=state.architecture, osabi=state.osabi)

    # -- lookups

    @property
    def registers(self) -> tuple[GdbRegister, ...]:
        """The registers in ``g`` packet (remote number) order."""
        return self._registers

    @property
    def g_size(self) -> int:
        """Length in bytes of a complete ``g`` packet."""
        return self._g_size

    def __iter__(self) -> Iterator[GdbRegister]:
        return iter(self._registers)

    def __len__(self) -> int:
        return len(self._registers)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> GdbRegister:
        """The register called ``name``; KeyError if there is none."""
        return self._by_name[name]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RegisterLayout):
            return NotImplemented
        return (self._registers, self.architecture, self.osabi) == (
            other._registers,
            other.architecture,
            other.osabi,
        )

    def __hash__(self) -> int:
        return hash(self._registers)

    def __repr__(self) -> str:
        return f"<RegisterLayout {self.architecture or '?'} {len(self)} registers, g={self._g_size} bytes>"

    def get(self, name: str) -> GdbRegister | None:
        """The register called ``name``, or ``None``."""
        return self._by_name.get(name)

    def by_regnum(self, regnum: int) -> GdbRegister | None:
        """The register with remote number ``regnum`` (``p``/``P`` packets), or ``None``."""
        return self._by_regnum.get(regnum)

    # -- g packet bytes

    def split(self, data: bytes) -> list[bytes | None]:
        """Cut raw ``g`` packet bytes into one value per register (packet order).

        A reply may be shorter than :attr:`g_size`: registers it does not hold
        entirely are ``None`` (unavailable), as gdb treats them.

        Raises:
            ValueError: ``data`` is longer than :attr:`g_size`.
        """
        if len(data) > self._g_size:
            raise ValueError(f"g packet of {len(data)} bytes is longer than the layout's {self._g_size}")
        return [
            data[reg.offset : reg.offset + reg.size] if reg.offset + reg.size <= len(data) else None
            for reg in self._registers
        ]

    def join(self, values: Sequence[bytes | None]) -> bytes:
        """Raw ``G`` packet bytes from one value per register (packet order).

        Raises:
            ValueError: wrong number of values, a value of the wrong size, or
                ``None`` (a ``G`` packet has no way to say unavailable).
        """
        self._check_count(values)
        parts = []
        for reg, value in zip(self._registers, values, strict=True):
            if value is None:
                raise ValueError(f"register {reg.name!r} has no value for a G packet")
            parts.append(self._checked(reg, value))
        return b"".join(parts)

    def to_hex(self, values: Sequence[bytes | None]) -> str:
        """Hex text of a ``g`` reply: ``xx`` for each byte of an unavailable (``None``) register.

        Raises:
            ValueError: wrong number of values or a value of the wrong size.
        """
        self._check_count(values)
        return "".join(
            "xx" * reg.size if value is None else self._checked(reg, value).hex()
            for reg, value in zip(self._registers, values, strict=True)
        )

    def from_hex(self, text: str) -> list[bytes | None]:
        """Values of a hex ``g`` reply (or ``G`` packet), one per register in packet order.

        A register written with ``x`` digits, or beyond the end of a short
        reply, is ``None``.

        Raises:
            ValueError: odd length, not hex, or longer than :attr:`g_size`.
        """
        if len(text) % 2:
            raise ValueError("g packet hex has an odd length")
        if len(text) > 2 * self._g_size:
            raise ValueError(f"g packet of {len(text) // 2} bytes is longer than the layout's {self._g_size}")
        values: list[bytes | None] = []
        for reg in self._registers:
            chunk = text[2 * reg.offset : 2 * (reg.offset + reg.size)]
            if len(chunk) < 2 * reg.size or "x" in chunk or "X" in chunk:
                values.append(None)
            else:
                values.append(bytes.fromhex(chunk))
        return values

    def _check_count(self, values: Sequence[bytes | None]) -> None:
        if len(values) != len(self._registers):
            raise ValueError(f"{len(values)} values for a layout of {len(self._registers)} registers")

    @staticmethod
    def _checked(reg: GdbRegister, value: bytes) -> bytes:
        if len(value) != reg.size:
            raise ValueError(f"register {reg.name!r} is {reg.size} bytes, not {len(value)}")
        return bytes(value)


# ----------------------------------------------------------------- XML parsing


@dataclass
class _Element:
    tag: str
    attrs: dict[str, str]
    children: list[_Element] = field(default_factory=list)
    text: str = ""


def _parse_document(document: str | bytes, what: str) -> _Element:
    # expat without namespace processing: gdb's documents use the xi: prefix
    # without declaring it (its DTD does), which a namespace-aware parser refuses.
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[_Element] = []
    roots: list[_Element] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        element = _Element(tag, dict(attrs))
        if stack:
            stack[-1].children.append(element)
        else:
            roots.append(element)
        stack.append(element)

    def end(tag: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            stack[-1].text += data

    def entity(*args: object) -> None:
        raise ValueError(f"{what}: entity declarations are not accepted")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.EntityDeclHandler = entity
    try:
        parser.Parse(document.encode() if isinstance(document, str) else document, True)
    except expat.ExpatError as error:
        raise ValueError(f"{what}: {error}") from None
    if not roots:
        raise ValueError(f"{what}: no root element")
    return roots[0]


class _ParseState:
    def __init__(self, fetch: FetchDocument | None) -> None:
        self.fetch = fetch
        self.next_regnum = 0
        self.architecture: str | None = None
        self.osabi: str | None = None

    def expand(self, children: list[_Element], depth: int) -> Iterator[_Element]:
        """``children`` with each ``<xi:include>`` replaced by the fetched document's root."""
        for child in children:
            if child.tag not in ("xi:include", "include"):
                yield child
                continue
            href = child.attrs.get("href")
            if not href:
                raise ValueError("target.xml: <xi:include> without href")
            if depth >= _MAX_INCLUDE_DEPTH:
                raise ValueError(f"target.xml: includes nest deeper than {_MAX_INCLUDE_DEPTH} ({href})")
            included = self.fetch(href) if self.fetch is not None else None
            if included is None:
                raise ValueError(f"target.xml: could not load included document {href!r}")
            root = _parse_document(included, href)
            if root.tag == "target":  # a whole target included: take its contents
                yield from self.expand(root.children, depth + 1)
            else:
                yield from self.expand([root], depth + 1)

    def feature(self, element: _Element, depth: int) -> list[GdbRegister]:
        name = element.attrs.get("name", "")
        registers = []
        for child in self.expand(element.children, depth + 1):
            if child.tag == "reg":
                registers.append(self.register(child, name))
            elif child.tag == "feature":  # a feature document included inside another
                registers.extend(self.feature(child, depth + 1))
        return registers

    def register(self, element: _Element, feature: str) -> GdbRegister:
        attrs = element.attrs
        name = attrs.get("name")
        if not name:
            raise ValueError(f"target.xml: a <reg> of feature {feature!r} has no name")
        try:
            bitsize = int(attrs["bitsize"])
            regnum = int(attrs["regnum"]) if "regnum" in attrs else self.next_regnum
        except KeyError:
            raise ValueError(f"target.xml: register {name!r} has no bitsize") from None
        except ValueError:
            raise ValueError(f"target.xml: register {name!r} has a malformed bitsize or regnum") from None
        self.next_regnum = regnum + 1
        return GdbRegister(
            name=name,
            regnum=regnum,
            bitsize=bitsize,
            type=attrs.get("type", "int"),
            feature=feature,
            group=attrs.get("group"),
        )


# ----------------------------------------------------------------- lindbgsrv's description

_GPR64_TYPES = {"rbp": "data_ptr", "rsp": "data_ptr"}
_CORE_GPRS = (
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
)  # fmt: skip
_SEGMENT_SELECTORS = ("cs", "ss", "ds", "es", "fs", "gs")
_FP_CONTROL = ("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")

_RegSpec = tuple[str, int, str, str | None]  # name, bitsize, type, group
_CORE_SPECS: list[_RegSpec] = [(name, 64, _GPR64_TYPES.get(name, "int64"), None) for name in _CORE_GPRS]
_CORE_SPECS += [("rip", 64, "code_ptr", None), ("eflags", 32, "i386_eflags", None)]
_CORE_SPECS += [(name, 32, "int32", None) for name in _SEGMENT_SELECTORS]
_CORE_SPECS += [(f"st{i}", 80, "i387_ext", None) for i in range(8)]
_CORE_SPECS += [(name, 32, "int", "float") for name in _FP_CONTROL]
_SSE_SPECS: list[_RegSpec] = [(f"xmm{i}", 128, "vec128", None) for i in range(16)]
_SSE_SPECS.append(("mxcsr", 32, "i386_mxcsr", "vector"))

# The features of lindbgsrv's description, their registers numbered from 0 in this order.
_DEFAULT_FEATURES: tuple[tuple[str, list[_RegSpec]], ...] = (
    (FEATURE_CORE, _CORE_SPECS),
    (FEATURE_SSE, _SSE_SPECS),
    (FEATURE_LINUX, [("orig_rax", 64, "int", None)]),
    (FEATURE_SEGMENTS, [("fs_base", 64, "int", None), ("gs_base", 64, "int", None)]),
)

_EFLAGS_FIELDS = (
    ("CF", 0), ("PF", 2), ("AF", 4), ("ZF", 6), ("SF", 7), ("TF", 8), ("IF", 9), ("DF", 10),
    ("OF", 11), ("NT", 14), ("RF", 16), ("VM", 17), ("AC", 18), ("VIF", 19), ("VIP", 20), ("ID", 21),
)  # fmt: skip
_MXCSR_FIELDS = (
    ("IE", 0), ("DE", 1), ("ZE", 2), ("OE", 3), ("UE", 4), ("PE", 5), ("DAZ", 6),
    ("IM", 7), ("DM", 8), ("ZM", 9), ("OM", 10), ("UM", 11), ("PM", 12), ("FZ", 15),
)  # fmt: skip
# The vec128 union; bfloat16/ieee_half vectors are left out so that older gdbs accept it.
_VEC128_VECTORS = (
    ("v4f", "ieee_single", 4, "v4_float"),
    ("v2d", "ieee_double", 2, "v2_double"),
    ("v16i8", "int8", 16, "v16_int8"),
    ("v8i16", "int16", 8, "v8_int16"),
    ("v4i32", "int32", 4, "v4_int32"),
    ("v2i64", "int64", 2, "v2_int64"),
)


def _flags_xml(type_id: str, fields: tuple[tuple[str, int], ...]) -> list[str]:
    lines = [f'    <flags id="{type_id}" size="4">']
    lines += [f'      <field name="{name}" start="{bit}" end="{bit}" type="bool"/>' for name, bit in fields]
    return [*lines, "    </flags>"]


def _feature_types(feature: str) -> list[str]:
    if feature == FEATURE_CORE:
        return _flags_xml("i386_eflags", _EFLAGS_FIELDS)
    if feature == FEATURE_SSE:
        lines = [
            f'    <vector id="{type_id}" type="{element}" count="{count}"/>'
            for type_id, element, count, _ in _VEC128_VECTORS
        ]
        lines.append('    <union id="vec128">')
        lines += [
            f'      <field name="{member}" type="{type_id}"/>' for type_id, _, _, member in _VEC128_VECTORS
        ]
        lines += ['      <field name="uint128" type="uint128"/>', "    </union>"]
        return lines + _flags_xml("i386_mxcsr", _MXCSR_FIELDS)
    return []


def _build_default() -> tuple[str, RegisterLayout]:
    lines = [
        '<?xml version="1.0"?>',
        '<!DOCTYPE target SYSTEM "gdb-target.dtd">',
        "<target>",
        "  <architecture>i386:x86-64</architecture>",
        "  <osabi>GNU/Linux</osabi>",
    ]
    registers = []
    regnum = 0
    for feature, regs in _DEFAULT_FEATURES:
        lines.append(f'  <feature name="{feature}">')
        lines += _feature_types(feature)
        for name, bitsize, reg_type, group in regs:
            group_attr = f' group="{group}"' if group else ""
            attrs = f'name="{name}" bitsize="{bitsize}" type="{reg_type}" regnum="{regnum}"{group_attr}'
            lines.append(f"    <reg {attrs}/>")
            registers.append(GdbRegister(name, regnum, bitsize, reg_type, feature, group))
            regnum += 1
        lines.append("  </feature>")
    lines.append("</target>")
    layout = RegisterLayout(registers, architecture="i386:x86-64", osabi="GNU/Linux")
    return "\n".join(lines) + "\n", layout


#: Lindbgsrv's target description, one self-contained document (no includes).
TARGET_XML: str
TARGET_XML, _DEFAULT_LAYOUT = _build_default()
_ANNEXES = {"target.xml": TARGET_XML.encode()}


def features_annex(annex: str) -> bytes | None:
    """The document ``qXfer:features:read:ANNEX`` reads, or ``None`` for an unknown annex."""
    return _ANNEXES.get(annex)


def xfer_read(document: bytes, offset: int, length: int) -> bytes:
    """The reply to a ``qXfer:...:read`` of ``length`` bytes at ``offset``:
    ``m`` and the bytes when more follow, ``l`` and the last (perhaps no)
    bytes otherwise. Binary escaping is left to the packet layer (lindbg's own
    documents contain none of ``$ # } *``).
    """
    if offset < 0 or length < 0:
        raise ValueError("negative qXfer offset or length")
    chunk = document[offset : offset + length]
    return (b"m" if offset + length < len(document) else b"l") + chunk


def features_read(args: str) -> bytes | None:
    """The reply to ``qXfer:features:read:ARGS`` (``ARGS`` = ``ANNEX:OFFSET,LENGTH``,
    hex numbers), or ``None`` when the annex is unknown (answer ``E00``).

    Raises:
        ValueError: ``ARGS`` is malformed.
    """
    annex, sep, span = args.rpartition(":")
    offset_text, comma, length_text = span.partition(",")
    if not sep or not comma:
        raise ValueError(f"malformed qXfer:features:read arguments {args!r}")
    try:
        offset, length = int(offset_text, 16), int(length_text, 16)
    except ValueError:
        raise ValueError(f"malformed qXfer:features:read arguments {args!r}") from None
    document = features_annex(annex)
    return None if document is None else xfer_read(document, offset, length)


# ----------------------------------------------------------------- the x87 tag word


class X87Tag(enum.IntEnum):
    """Values of a two-bit field of the full x87 tag word."""

    VALID = 0
    ZERO = 1
    SPECIAL = 2
    EMPTY = 3


def x87_tag(raw: bytes) -> X87Tag:
    """The tag of a non-empty register from its 80-bit value (10 bytes, little-endian)."""
    mantissa = int.from_bytes(raw[:8], "little")
    exponent = int.from_bytes(raw[8:10], "little") & 0x7FFF
    integer_bit = mantissa >> 63
    if exponent == 0x7FFF:
        return X87Tag.SPECIAL  # infinity, NaN
    if exponent == 0:
        return X87Tag.ZERO if mantissa == 0 else X87Tag.SPECIAL  # zero / denormal
    return X87Tag.VALID if integer_bit else X87Tag.SPECIAL  # normal / unnormal


def expand_tag_word(abridged: int, fstat: int, stack: Sequence[bytes]) -> int:
    """The full x87 tag word from FXSAVE's abridged tag byte.

    Bit ``p`` of ``abridged`` says physical register ``p`` is not empty;
    its field in the full word is then computed from its contents.
    ``stack[i]`` is the raw value of ST(i) (FXSAVE's ``st_space`` order); the
    top of stack is bits 11-13 of ``fstat``, and physical register ``p`` is
    ST((p - top) mod 8).
    """
    top = (fstat >> 11) & 7
    ftag = 0
    for physical in range(8):
        tag = x87_tag(stack[(physical - top) & 7]) if abridged & (1 << physical) else X87Tag.EMPTY
        ftag |= tag << (2 * physical)
    return ftag


def abridge_tag_word(ftag: int) -> int:
    """FXSAVE's abridged tag byte from a full tag word: a bit set for each non-empty register."""
    return sum(1 << physical for physical in range(8) if (ftag >> (2 * physical)) & 3 != X87Tag.EMPTY)


# ----------------------------------------------------------------- lindbg state <-> gdb registers

_GPR64 = frozenset((*_CORE_GPRS, "rip", "orig_rax", "fs_base", "gs_base"))
_GPR32 = frozenset(("eflags", *_SEGMENT_SELECTORS))
# Registers copied as they are from the FXSAVE area: name -> (offset, size).
_FX_PLAIN: dict[str, tuple[int, int]] = {
    **{f"st{i}": (32 + 16 * i, 10) for i in range(8)},
    **{f"xmm{i}": (160 + 16 * i, 16) for i in range(16)},
    "mxcsr": (24, 4),
    "fioff": (8, 4),
    "fiseg": (12, 4),
    "fooff": (16, 4),
    "foseg": (20, 4),
}
# 16-bit FXSAVE fields that gdb shows zero-extended to 32 bits.
_FX_HALF = {"fctrl": 0, "fstat": 2}
_FTAG_OFFSET = 4
_FOP_OFFSET = 6
_FOP_MASK = 0x7FF
_MASK32 = 0xFFFFFFFF

#: Size in bytes of every register lindbg's state holds, by gdb name.
REGISTER_SIZES: dict[str, int] = {
    **dict.fromkeys(_GPR64, 8),
    **dict.fromkeys(_GPR32, 4),
    **{name: size for name, (_, size) in _FX_PLAIN.items()},
    **dict.fromkeys((*_FX_HALF, "ftag", "fop"), 4),
}


def _register_name(reg: int | str, layout: RegisterLayout | None) -> str:
    if isinstance(reg, str):
        return reg
    found = (layout or _DEFAULT_LAYOUT).by_regnum(reg)
    if found is None:
        raise KeyError(f"no register number {reg}")
    return found.name


def _fx_view(fxsave: bytes | bytearray) -> bytes | bytearray:
    if len(fxsave) < FXSAVE_SIZE:
        raise ValueError(f"an FXSAVE area is {FXSAVE_SIZE} bytes, not {len(fxsave)}")
    return fxsave


def read_register(
    reg: int | str, regs: UserRegs, fxsave: bytes | bytearray | None, layout: RegisterLayout | None = None
) -> bytes | None:
    """Value of gdb register ``reg`` (a name, or a remote number in ``layout``,
    the default layout when omitted) from lindbg's state: ``regs`` and the
    FXSAVE area ``fxsave`` (512 bytes or more).

    ``None`` means unavailable: a register lindbg's state does not hold, or an
    FP/SSE register when ``fxsave`` is ``None``.

    Raises:
        KeyError: ``reg`` is a number the layout lacks.
        ValueError: ``fxsave`` is shorter than 512 bytes.
    """
    name = _register_name(reg, layout)
    if name in _GPR64:
        return int(getattr(regs, name)).to_bytes(8, "little")
    if name in _GPR32:
        return (int(getattr(regs, name)) & _MASK32).to_bytes(4, "little")
    if name not in REGISTER_SIZES or fxsave is None:
        return None
    fx = _fx_view(fxsave)
    plain = _FX_PLAIN.get(name)
    if plain is not None:
        offset, size = plain
        return bytes(fx[offset : offset + size])
    if name in _FX_HALF:
        value = struct.unpack_from("<H", fx, _FX_HALF[name])[0]
    elif name == "fop":
        value = struct.unpack_from("<H", fx, _FOP_OFFSET)[0] & _FOP_MASK
    else:  # ftag
        fstat = struct.unpack_from("<H", fx, _FX_HALF["fstat"])[0]
        stack = [bytes(fx[32 + 16 * i : 42 + 16 * i]) for i in range(8)]
        value = expand_tag_word(fx[_FTAG_OFFSET], fstat, stack)
    return int(value).to_bytes(4, "little")


def write_register(
    reg: int | str,
    value: bytes,
    regs: UserRegs,
    fxsave: bytearray | None,
    layout: RegisterLayout | None = None,
) -> StatePart:
    """Store ``value`` (raw, of gdb's size for the register) for gdb register
    ``reg`` (a name, or a remote number in ``layout``, the default layout when
    omitted) into ``regs`` or the FXSAVE area ``fxsave``, and say which of the
    two changed (the caller writes that part back to the thread).

    Raises:
        KeyError: lindbg's state has no such register (or the layout no such number).
        ValueError: ``value`` has the wrong size, or an FP/SSE register is
            written with no (or too short an) FXSAVE area.
    """
    name = _register_name(reg, layout)
    size = REGISTER_SIZES.get(name)
    if size is None:
        raise KeyError(f"register {name!r} is not held by lindbg's state")
    if len(value) != size:
        raise ValueError(f"register {name!r} is {size} bytes, not {len(value)}")
    number = int.from_bytes(value, "little")
    if name in _GPR64:
        setattr(regs, name, number)
        return "regs"
    if name in _GPR32:
        setattr(regs, name, (int(getattr(regs, name)) & ~_MASK32) | number)
        return "regs"
    if fxsave is None:
        raise ValueError(f"register {name!r} needs the FXSAVE area")
    _fx_view(fxsave)
    plain = _FX_PLAIN.get(name)
    if plain is not None:
        offset, _ = plain
        fxsave[offset : offset + len(value)] = value
    elif name in _FX_HALF:
        struct.pack_into("<H", fxsave, _FX_HALF[name], number & 0xFFFF)
    elif name == "fop":
        old = struct.unpack_from("<H", fxsave, _FOP_OFFSET)[0]
        struct.pack_into("<H", fxsave, _FOP_OFFSET, (old & ~_FOP_MASK) | (number & _FOP_MASK))
    else:  # ftag
        fxsave[_FTAG_OFFSET] = abridge_tag_word(number)
    return "fxsave"


def encode_g(
    regs: UserRegs, fxsave: bytes | bytearray | None, layout: RegisterLayout | None = None
) -> list[bytes | None]:
    """One value per register of ``layout`` (the default layout when omitted),
    in ``g`` packet order, from lindbg's state; ``None`` for a register that
    is unavailable (see :func:`read_register`). ``layout.to_hex(...)`` makes
    the ``g`` reply, ``layout.join(...)`` the raw bytes when nothing is ``None``.

    Raises:
        ValueError: ``fxsave`` is shorter than 512 bytes.
    """
    layout = layout or _DEFAULT_LAYOUT
    values: list[bytes | None] = []
    for reg in layout:
        value = read_register(reg.name, regs, fxsave) if REGISTER_SIZES.get(reg.name) == reg.size else None
        values.append(value)
    return values


def decode_g(
    data: bytes | Sequence[bytes | None],
    regs: UserRegs,
    fxsave: bytearray | None,
    layout: RegisterLayout | None = None,
) -> dict[str, bytes]:
    """Store a ``g`` reply's (or ``G`` packet's) values into lindbg's state.

    ``data`` is the raw packet bytes or the per-register values of
    ``layout.split``/``layout.from_hex`` (``layout`` is the default layout
    when omitted). Unavailable (``None``) registers leave the state as it was;
    FP/SSE registers go into ``fxsave`` when it is given (a copy of the
    thread's FXSAVE area, or ``bytearray(512)`` to start from nothing).

    Returns the values the state has no place for, by register name: those of
    registers lindbg does not hold (``ymm0h``, ``k0``, ``pkru`` ...), and the
    FP/SSE registers when ``fxsave`` is ``None``.

    Raises:
        ValueError: the data does not fit the layout, or ``fxsave`` is shorter
            than 512 bytes.
    """
    layout = layout or _DEFAULT_LAYOUT
    values = layout.split(data) if isinstance(data, (bytes, bytearray)) else list(data)
    if len(values) != len(layout):
        raise ValueError(f"{len(values)} values for a layout of {len(layout)} registers")
    extras: dict[str, bytes] = {}
    for reg, value in zip(layout, values, strict=True):
        if value is None:
            continue
        if len(value) != reg.size:
            raise ValueError(f"register {reg.name!r} is {reg.size} bytes, not {len(value)}")
        held = REGISTER_SIZES.get(reg.name) == reg.size
        if held and (fxsave is not None or reg.name in _GPR64 or reg.name in _GPR32):
            write_register(reg.name, bytes(value), regs, fxsave)
        else:
            extras[reg.name] = bytes(value)
    return extras


def state_mapping(layout: RegisterLayout) -> Mapping[str, StatePart]:
    """For each register of ``layout`` lindbg's state holds, the part that holds it."""
    return {
        reg.name: ("regs" if reg.name in _GPR64 or reg.name in _GPR32 else "fxsave")
        for reg in layout
        if REGISTER_SIZES.get(reg.name) == reg.size
    }
