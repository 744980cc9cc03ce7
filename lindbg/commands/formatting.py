"""Pure text formatters for the cdb-style console (shared/CDB-OUTPUT.md).

Every function maps plain Python values (ints, bytes, strings, the small
NamedTuples below) to cdb's exact text layout; none of them touches the engine.
Multi-line results are joined with ``"\\n"`` and carry no trailing newline; the
console adds line ends when it writes them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

__all__ = [
    "BreakpointRow",
    "ModuleRow",
    "StackRow",
    "addr17",
    "format_annotation",
    "format_breakpoint_list",
    "format_evaluate",
    "format_expression_error",
    "format_instruction",
    "format_ln",
    "format_memory",
    "format_modload",
    "format_modules",
    "format_register",
    "format_registers",
    "format_stack",
    "format_stack_row",
    "format_unreadable_instruction",
    "masm_hex",
    "syntax_error",
]

_MASK64 = (1 << 64) - 1


# ---------------------------------------------------------------- §0 conventions


def addr17(value: int) -> str:
    """A 64-bit address as 16 lowercase hex digits split by a backtick: ``00007f3b`8c229d90``."""
    text = f"{value & _MASK64:016x}"
    return f"{text[:8]}`{text[8:]}"


def masm_hex(value: int) -> str:
    """A non-negative number in MASM style: 0-9 bare, else uppercase hex + ``h``,
    with a leading ``0`` when the first digit is a letter (``0Ch``, ``10h``)."""
    if 0 <= value <= 9:
        return str(value)
    text = f"{value:X}"
    if not text[0].isdigit():
        text = "0" + text
    return text + "h"


def syntax_error(prompt_width: int, offset: int, message: str, command: str) -> str:
    """The caret line of a parse-level error: the caret sits under the failing
    character of the echoed command (prompt length + offset), e.g.
    ``       ^ Syntax error in '(10-8)'``. ``message`` is the error name
    (``"Syntax error"``, ``"No runnable debuggees error"``, ...)."""
    return f"{' ' * (prompt_width + offset)}^ {message} in '{command}'"


def format_expression_error(message: str, rest: str) -> str:
    """An evaluator error without caret. ``message`` is the text before the quote
    (``"Couldn't resolve error at"``, ``"Numeric expression missing from"``);
    ``rest`` what was left unparsed, ``""`` (end of input) printing ``<EOL>``."""
    return f"{message} '{rest if rest else '<EOL>'}'"


# ---------------------------------------------------------------- §1 events


def format_modload(start: int, end: int, path: str) -> str:
    """``ModLoad: <start> <end>   <path>`` (end exclusive)."""
    return f"ModLoad: {addr17(start)} {addr17(end)}   {path}"


# ---------------------------------------------------------------- §2 registers

_REGISTER_LINES: tuple[tuple[str, ...], ...] = (
    ("rax", "rbx", "rcx"),
    ("rdx", "rsi", "rdi"),
    ("rip", "rsp", "rbp"),
    ("r8", "r9", "r10"),
    ("r11", "r12", "r13"),
    ("r14", "r15"),
)

# (bit, clear token, set token), in cdb's order of df if sf zf af pf cf.
# PF prints ``po`` when the bit is SET: x64 cdb's quirk, imitated on purpose.
_FLAG_TOKENS: tuple[tuple[int, str, str], ...] = (
    (11, "nv", "ov"),
    (10, "up", "dn"),
    (9, "di", "ei"),
    (7, "pl", "ng"),
    (6, "nz", "zr"),
    (4, "na", "ac"),
    (2, "pe", "po"),
    (0, "nc", "cy"),
)

_SEGMENTS = ("cs", "ss", "ds", "es", "fs", "gs")


def format_register(name: str, value: int, width_bits: int = 64) -> str:
    """One register as ``r`` prints it alone: ``rsp=00007ffd2a9e0c40``, ``eax=555551a9``,
    ``zf=1`` (``width_bits=1``); the value is zero-padded to the register's width."""
    digits = max(1, (width_bits + 3) // 4)
    value &= (1 << width_bits) - 1 if width_bits > 0 else 0
    return f"{name}={value:0{digits}x}"


def format_flags(eflags: int) -> str:
    """``iopl=N`` padded to 15, then the 8 flag tokens (``nv up ei pl zr na po nc``)."""
    iopl = (eflags >> 12) & 3
    tokens = " ".join(set_ if eflags >> bit & 1 else clear for bit, clear, set_ in _FLAG_TOKENS)
    return f"{f'iopl={iopl}':<15}{tokens}"


def format_registers(regs: Mapping[str, int], location: str, instruction_line: str) -> str:
    """cdb's x64 ``r`` block (also the stop display after the event line).

    ``regs`` holds rax..r15, rip, ``eflags`` and cs/ss/ds/es/fs/gs (missing
    segments print 0). ``location`` (``app!main+0x8:``) and ``instruction_line``
    (format_instruction, plus any format_annotation) follow on their own lines;
    an empty one is left out."""
    lines = [
        " ".join(f"{name:>3}={regs.get(name, 0) & _MASK64:016x}" for name in names)
        for names in _REGISTER_LINES
    ]
    eflags = regs.get("eflags", regs.get("efl", 0))
    lines.append(format_flags(eflags))
    segments = "  ".join(f"{seg}={regs.get(seg, 0) & 0xFFFF:04x}" for seg in _SEGMENTS)
    lines.append(f"{segments:<65}efl={eflags & 0xFFFFFFFF:08x}")
    if location:
        lines.append(location)
    if instruction_line:
        lines.append(instruction_line)
    return "\n".join(lines)


def format_annotation(
    segment: str,
    address: int,
    data: bytes | Sequence[int | None] | None,
    size: int | None = None,
    symbol: str | None = None,
) -> str:
    """The memory annotation appended to the current instruction (stop display and
    ``r`` only): `` ss:00007ffd`2a9e0c4c=00000005`` (leading space included).

    ``data`` holds the operand's bytes (little-endian; ``None`` entries or
    ``data=None`` with ``size`` print ``??`` per byte). When ``symbol`` is given
    the value is a code/data address printed ``={libc!free (00007f3b`8c2a5460)}``."""
    cells = _cells(data, size)
    if any(cell is None for cell in cells):
        value_text = "??" * len(cells)
    else:
        value = int.from_bytes(bytes(c for c in cells if c is not None), "little")
        value_text = f"{{{symbol} ({addr17(value)})}}" if symbol else f"{value:0{2 * len(cells)}x}"
    return f" {segment}:{addr17(address)}={value_text}"


def _cells(data: bytes | Sequence[int | None] | None, size: int | None) -> list[int | None]:
    if data is None:
        return [None] * (size or 0)
    cells: list[int | None] = list(data)
    if size is not None:
        cells = (cells + [None] * size)[:size]
    return cells


# ---------------------------------------------------------------- §3 stack


class StackRow(NamedTuple):
    """One ``k`` frame. ``return_address`` is the frame's RetAddr column (0 for the
    outermost frame); inline rows print ``(Inline Function) --------`--------``."""

    sp: int
    return_address: int
    call_site: str
    inline: bool = False


_STACK_HEADER = f"{'Child-SP':<18}{'RetAddr':<22}Call Site"


def format_stack_row(frame: StackRow, number: int | None = None) -> str:
    """One ``k`` row (``kn`` row when ``number`` is given: 2-digit hex prefix)."""
    if frame.inline:
        columns = "(Inline Function) --------`--------"
    else:
        columns = f"{addr17(frame.sp)} {addr17(frame.return_address)}"
    row = f"{columns}     {frame.call_site}"
    return row if number is None else f"{number:02x} {row}"


def format_stack(frames: Sequence[StackRow], numbered: bool = False) -> str:
    """``k`` (``numbered=False``) or ``kn``: header line then one row per frame."""
    if numbered:
        lines = [f" # {_STACK_HEADER}"]
        lines.extend(format_stack_row(frame, index) for index, frame in enumerate(frames))
    else:
        lines = [_STACK_HEADER]
        lines.extend(format_stack_row(frame) for frame in frames)
    return "\n".join(lines)


# ---------------------------------------------------------------- §4 breakpoints


class BreakpointRow(NamedTuple):
    """One ``bl`` row. ``kind``: ``"sw"`` (bp/bu/bm) or ``"e"``/``"r"``/``"w"``/``"rw"``
    (``ba``, with ``size``). ``file_line``: ``"/src/c.c @ 4"`` (brackets optional).
    ``symbol`` is the resolved ``mod!sym+0xoff``, or the pending expression of a
    deferred breakpoint. ``thread`` None = any thread (``****``)."""

    id: int
    enabled: bool
    deferred: bool
    address: int | None
    file_line: str | None
    kind: str
    size: int
    passes: int
    initial_passes: int
    symbol: str
    command: str
    process: int = 0
    thread: int | None = None


def format_breakpoint_row(row: BreakpointRow) -> str:
    state = ("e" if row.enabled else "d") + ("u" if row.deferred else " ")
    where = " " * 17 if row.address is None else addr17(row.address)
    if row.kind != "sw":
        middle = f" {row.kind} {row.size} "
    elif row.file_line:
        file_line = row.file_line if row.file_line.startswith("[") else f"[{row.file_line}]"
        middle = f" {file_line}    "
    else:
        middle = "     "
    passes = f"{row.passes & 0xFFFF:04x} ({row.initial_passes & 0xFFFF:04x})"
    text = f" {row.id} {state}{where}{middle}{passes}"
    if row.deferred:
        text += f" ({row.symbol})"
    else:
        thread = "****" if row.thread is None else f"~{row.thread:03d}"
        text += f"  {row.process}:{thread} {row.symbol}"
    if row.command:
        text += f' "{row.command}"'
    return text


def format_breakpoint_list(rows: Sequence[BreakpointRow]) -> str:
    """``bl`` in plain cdb layout (no DML columns); empty list -> empty text."""
    return "\n".join(format_breakpoint_row(row) for row in rows)


# ---------------------------------------------------------------- §5 modules


class ModuleRow(NamedTuple):
    """One ``lm`` row: ``end`` is exclusive; ``status`` like ``(deferred)``,
    ``(dwarf symbols)``; ``path`` is the symbol file (may be empty); ``flag`` is
    cdb's one-letter column (``C``, ``T``, ``#``, ``M`` or space)."""

    start: int
    end: int
    name: str
    status: str
    path: str = ""
    flag: str = " "


_MODULE_HEADER = f"{'start':<18}{'end':<20}module name"


def format_module_row(row: ModuleRow) -> str:
    # cdb keeps the trailing blanks of rows without a path ("(deferred)").
    flag = (row.flag or " ")[:1]
    return f"{addr17(row.start)} {addr17(row.end)}   {row.name:<8} {flag} {row.status:<22} {row.path}"


def format_modules(rows: Sequence[ModuleRow]) -> str:
    """``lm``: header then one row per module."""
    return "\n".join([_MODULE_HEADER, *(format_module_row(row) for row in rows)])


# ---------------------------------------------------------------- §6 memory

_UNIT_SIZE = {"db": 1, "dw": 2, "dd": 4, "dc": 4, "dq": 8, "dp": 8, "dps": 8, "dqs": 8, "dds": 4}
_PER_LINE = {"db": 16, "dw": 8, "dd": 4, "dc": 4, "dq": 2, "dp": 2, "dps": 1, "dqs": 1, "dds": 1}
_STRING_CHARS_PER_LINE = 32


def _ascii(cell: int | None) -> str:
    if cell is None:
        return "?"
    return chr(cell) if 0x20 <= cell <= 0x7E else "."


def _unit_text(cells: Sequence[int | None], size: int) -> str:
    if any(cell is None for cell in cells):
        text = "?" * (2 * size)
    else:
        text = f"{int.from_bytes(bytes(c for c in cells if c is not None), 'little'):0{2 * size}x}"
    if size == 8:
        text = f"{text[:8]}`{text[8:]}"
    return text


def format_memory(
    kind: str,
    address: int,
    data: bytes | Sequence[int | None] | None,
    size: int | None = None,
    symbolize: Callable[[int], str | None] | None = None,
) -> str:
    """A ``d*`` dump starting exactly at ``address`` (no alignment).

    ``kind``: ``db dw dd dq dp dc da du`` or ``dps dqs dds``. ``data`` is the bytes
    read, a sequence of byte values with ``None`` for each unreadable byte, or
    None (nothing readable). ``size`` (bytes requested), when given, cuts ``data``
    or pads it with unreadable bytes (a short read). Unreadable bytes print
    ``??``/``????????``/``????????`????????``, ASCII ``?``. A trailing partial unit
    is dropped. ``da``/``du`` stop at the first NUL (``data`` may include or
    exclude it); unreadable from the start prints ``????``. ``symbolize(value)``
    gives the ``dps`` symbol text (None: no symbol)."""
    cells = _cells(data, size)
    if kind in ("da", "du"):
        return _format_string(kind, address, cells)
    if kind not in _UNIT_SIZE:
        raise ValueError(f"unknown memory display kind {kind!r}")
    size = _UNIT_SIZE[kind]
    per_line = _PER_LINE[kind]
    line_bytes = size * per_line
    lines = []
    for offset in range(0, len(cells) - len(cells) % size, line_bytes):
        chunk = cells[offset : offset + line_bytes]
        chunk = chunk[: len(chunk) - len(chunk) % size]
        prefix = f"{addr17(address + offset)}  "
        if kind == "db":
            hex_area = ""
            for index in range(16):
                if index:
                    hex_area += "-" if index == 8 and index < len(chunk) else " "
                if index < len(chunk):
                    cell = chunk[index]
                    hex_area += "??" if cell is None else f"{cell:02x}"
                else:
                    hex_area += "  "
            lines.append(f"{prefix}{hex_area}  {''.join(_ascii(c) for c in chunk)}")
            continue
        units = [chunk[i : i + size] for i in range(0, len(chunk), size)]
        text = " ".join(_unit_text(unit, size) for unit in units)
        if kind == "dc":
            text = f"{text:<{9 * per_line - 1}}  {''.join(_ascii(c) for c in chunk)}"
        elif kind in ("dps", "dqs", "dds") and symbolize is not None and None not in units[0]:
            value = int.from_bytes(bytes(c for c in units[0] if c is not None), "little")
            symbol = symbolize(value)
            if symbol:
                text = f"{text} {symbol}"
        lines.append(prefix + text)
    return "\n".join(lines)


def _format_string(kind: str, address: int, cells: list[int | None]) -> str:
    char_size = 1 if kind == "da" else 2
    chars: list[str] = []
    unreadable = False
    for offset in range(0, len(cells) - len(cells) % char_size, char_size):
        unit = cells[offset : offset + char_size]
        if any(cell is None for cell in unit):
            unreadable = True
            break
        code = int.from_bytes(bytes(c for c in unit if c is not None), "little")
        if code == 0:
            break
        if char_size == 1:
            chars.append(_ascii(code))
        else:
            char = chr(code)
            chars.append(char if code >= 0x20 and char.isprintable() else ".")
    lines = []
    for index in range(0, len(chars), _STRING_CHARS_PER_LINE):
        piece = "".join(chars[index : index + _STRING_CHARS_PER_LINE])
        lines.append(f'{addr17(address + index * char_size)}  "{piece}"')
    if not chars and unreadable:
        lines.append(f"{addr17(address)}  ????")
    elif not chars:
        lines.append(f'{addr17(address)}  ""')
    return "\n".join(lines)


# ---------------------------------------------------------------- §7 disassembly

_HEX_RE = re.compile(r"0x[0-9a-fA-F]+")
_IMMEDIATE_RE = re.compile(r"-?(?:0x[0-9a-fA-F]+|\d+)")
_MEMORY_RE = re.compile(r"\[([^\]]*)\]")
_SIZE_RE = re.compile(r"(byte|word|dword|qword) ptr\b")
_VECTOR_REG_RE = re.compile(r"\b(?:xmm|mm)\d+\b")
_PTR_BITS = {"byte": 8, "word": 16, "dword": 32, "qword": 64}
_REG8 = re.compile(r"(?:[abcd][lh]|spl|bpl|sil|dil|r\d+b)")
_REG16 = re.compile(r"(?:[abcd]x|sp|bp|si|di|r\d+w)")
_REG32 = re.compile(r"(?:e[abcd]x|esp|ebp|esi|edi|r\d+d)")
_STRING_OPS = {"movs", "cmps", "stos", "lods", "scas", "ins", "outs"}
_BRANCHES = {"call", "jmp", "loop", "loope", "loopne", "jrcxz", "jecxz", "xbegin"}


def _is_direct_branch(mnemonic: str) -> bool:
    base = mnemonic.split()[-1] if mnemonic.split() else mnemonic
    return base in _BRANCHES or base.startswith("j")


def _operand_bits(operand: str) -> int:
    match = _SIZE_RE.match(operand)
    if match:
        return _PTR_BITS[match.group(1)]
    if _REG8.fullmatch(operand):
        return 8
    if _REG16.fullmatch(operand):
        return 16
    if _REG32.fullmatch(operand):
        return 32
    return 64


def _masm_numbers(text: str) -> str:
    return _HEX_RE.sub(lambda m: masm_hex(int(m.group(0), 16)), text)


def _memory_inner(inner: str, next_address: int, target_symbol: str | None) -> str:
    parts = inner.replace(" ", "")
    if parts.startswith("rip"):
        displacement = int(parts[3:], 0) if parts[3:] else 0
        target = (next_address + displacement) & _MASK64
        return f"{target_symbol} ({addr17(target)})" if target_symbol else addr17(target)
    return _masm_numbers(parts)


def _split_operands(operands: str) -> list[str]:
    out: list[str] = []
    depth = 0
    current = ""
    for char in operands:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "," and depth == 0:
            out.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        out.append(current.strip())
    return out


def masm_operands(
    address: int, size: int, mnemonic: str, operands: str, target_symbol: str | None = None
) -> str:
    """Rewrite capstone's Intel operand text in cdb's MASM style (see format_instruction)."""
    parts = _split_operands(operands)
    words = _masm_mnemonic(mnemonic, operands).split()
    if words and words[-1] in ("stos", "lods", "scas"):
        parts = [part for part in parts if "[" in part] or parts
    vector = any(_VECTOR_REG_RE.search(part) for part in parts)
    first_bits = _operand_bits(parts[0]) if parts else 64
    out = []
    for part in parts:
        if _IMMEDIATE_RE.fullmatch(part):
            value = int(part, 0)
            if _is_direct_branch(mnemonic) and len(parts) == 1:
                target = value & _MASK64
                out.append(f"{target_symbol} ({addr17(target)})" if target_symbol else addr17(target))
                continue
            if value < 0:
                value &= (1 << first_bits) - 1
            out.append(masm_hex(value))
            continue
        text = _MEMORY_RE.sub(lambda m: f"[{_memory_inner(m.group(1), address + size, target_symbol)}]", part)
        if vector and text.startswith("qword ptr"):
            text = "mm" + text[1:]
        out.append(text)
    return ",".join(out)


def _masm_mnemonic(mnemonic: str, operands: str) -> str:
    words = mnemonic.split()
    if not words:
        return mnemonic
    last = words[-1]
    if last == "movabs":
        last = "mov"
    elif last[:-1] in _STRING_OPS and last[-1] in "bwdq" and operands and "xmm" not in operands:
        last = last[:-1]
    return " ".join([*words[:-1], last])


def format_instruction(
    address: int, code: bytes, mnemonic: str, operands: str, target_symbol: str | None = None
) -> str:
    """One ``u`` line from a decoded instruction (capstone Intel text).

    addr17, space, opcode bytes padded to 15 (longer strings push on by one
    space), space, mnemonic padded to 7, space, MASM operands: ``10h``/``0Ch``,
    no space after commas or around ``+``/``-`` in addresses, RIP-relative
    operands and direct branch targets as ``sym (addr17)`` (just addr17 when
    ``target_symbol`` is None). The RIP-relative target is computed from
    ``address + len(code)``; a direct branch's from its immediate operand."""
    name = _masm_mnemonic(mnemonic, operands)
    text = masm_operands(address, len(code), mnemonic, operands, target_symbol)
    return f"{addr17(address)} {code.hex():<15} {name:<7} {text}".rstrip()


def format_unreadable_instruction(address: int) -> str:
    """``u`` on memory that cannot be read: ``00000000`00000010 ??              ???``."""
    return f"{addr17(address)} {'??':<15} ???"


# ---------------------------------------------------------------- §9 ln


def format_ln(
    before: tuple[int, str] | None,
    queried: str,
    after: tuple[int, str] | None,
    exact: bool,
    line: str | None = None,
    exact_matches: Sequence[str] = (),
) -> str:
    """``ln addr``: ``(start)   sym+0xoff   |  (next)   next_sym``.

    ``before`` is the containing symbol's (start, name), ``queried`` the queried
    address as ``sym+0xoff``, ``after`` the next symbol. ``line`` (``/src/c.c @ 4``)
    prefixes `` [/src/c.c @ 4] ``. ``exact`` adds ``Exact matches:`` and 4-space
    indented entries (``exact_matches``, default ``queried``). Nothing known: ``""``."""
    if before is None and after is None:
        return ""
    pieces = []
    if before is not None:
        pieces.append(f"({addr17(before[0])})   {queried}")
    if after is not None:
        pieces.append(f"({addr17(after[0])})   {after[1]}")
    text = "   |  ".join(pieces)
    if line:
        text = f" {line if line.startswith('[') else f'[{line}]'} {text}"
    lines = [text]
    if exact:
        lines.append("Exact matches:")
        lines.extend(f"    {entry}" for entry in (exact_matches or [queried]))
    return "\n".join(lines)


# ---------------------------------------------------------------- §10 evaluate


def format_evaluate(value: int) -> str:
    """``? expr``: ``Evaluate expression: 26 = 00000000`0000001a`` (signed decimal)."""
    value &= _MASK64
    signed = value - (1 << 64) if value >> 63 else value
    return f"Evaluate expression: {signed} = {addr17(value)}"
