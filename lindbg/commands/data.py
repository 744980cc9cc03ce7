"""Data commands: r, k/kn, lm, u, d*, ?, ln, x, ~ (CDB-OUTPUT.md §2-§11)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lindbg.commands import expr, formatting
from lindbg.commands.interpreter import CommandError, Interpreter, command
from lindbg.commands.parser import ParsedCommand
from lindbg.errors import LindbgError, MemoryAccessError

if TYPE_CHECKING:
    from lindbg.engine.frame_inspector import SymbolDescription

_PSEUDO = {"$ip": "rip", "$csp": "rsp", "$retreg": "rax"}


class ClientContext:
    """The expression evaluator's view of the target, through the client API."""

    radix = 16

    def __init__(self, interp: Interpreter) -> None:
        self._client = interp.client

    def register(self, name: str) -> int:
        name = _PSEUDO.get(name.lower(), name)
        if name == "$proc":
            return self._client.current_thread().pid
        if name == "$thread":
            return self._client.current_thread().tid
        try:
            return self._client.get_register(name)
        except LindbgError:
            raise KeyError(name) from None

    def symbol(self, name: str) -> int | None:
        try:
            return self._client.resolve(name)
        except LindbgError:
            return None

    def read_pointer(self, address: int) -> int:
        return self.read_bytes(address, 8)

    def read_bytes(self, address: int, size: int) -> int:
        return int.from_bytes(self._client.read_memory(address, size), "little")


def evaluate(interp: Interpreter, text: str) -> int:
    """A MASM expression's value; its error is cdb's one line."""
    return expr.evaluate(text, ClientContext(interp))


def _range(interp: Interpreter, args: str, default_count: int, kind: str) -> tuple[int, int]:
    """``[addr] [L count]`` -> (address, count); no address continues the last dump."""
    text = args.strip()
    count = default_count
    lower = text.lower()
    if " l" in f" {lower}":
        index = lower.rfind("l")
        head, tail = text[:index].strip(), text[index + 1 :].strip()
        if tail and (head or lower.startswith("l")):
            count = evaluate(interp, tail)
            text = head
    if text:
        address = evaluate(interp, text)
    else:
        address = interp.next_dump.get(kind, interp.client.get_register("rip"))
    return address, count


@command("r")
def registers(interp: Interpreter, parsed: ParsedCommand) -> None:
    from lindbg.commands.execution import register_block

    args = parsed.args.strip()
    if not args:
        interp.say(register_block(interp))
        return
    for item in args.split(","):
        name, equals, value = item.partition("=")
        name = name.strip().lstrip("@")
        if equals:
            interp.client.set_register(name, evaluate(interp, value))
            continue
        try:
            current = interp.client.get_register(name)
        except LindbgError:
            raise CommandError("Bad register") from None
        interp.say(formatting.format_register(name, current, _width(name)))


def _width(name: str) -> int:
    """Bits ``r NAME`` shows: 64 for rax, 32 for eax and efl, 16 for ax and the
    segment registers, 8 for al, 1 for a flag (cdb's ``zf=1``)."""
    from lindbg.arch.x86_64 import FLAG_BITS, REGISTER_ALIASES, SUB_REGISTERS

    key = REGISTER_ALIASES.get(name.lower(), name.lower())
    if key in SUB_REGISTERS:
        return SUB_REGISTERS[key][2]
    if key in FLAG_BITS:
        return 1
    if key == "eflags":
        return 32
    if key in ("cs", "ss", "ds", "es", "fs", "gs", "fpcw", "fpsw", "fptw"):
        return 16
    if key == "mxcsr":
        return 32
    if key.startswith("st") and key[2:].isdigit():
        return 80
    if key.startswith(("xmm", "ymm")):
        return 128 if key[0] == "x" else 256
    return 64


@command("kb", "kbn", "kv", "kvn")
def stack_with_words(interp: Interpreter, parsed: ParsedCommand) -> None:
    """cdb's ``kb``: the four qwords after each frame's return-address slot (the
    Windows home area; under the SysV ABI they are not the arguments)."""
    count = evaluate(interp, parsed.args) if parsed.args.strip() else None
    numbered = parsed.name.endswith("n")
    lines = [(" # " if numbered else "") + f"{'RetAddr':22}: {'Args to Child':72}: Call Site"]
    for number, frame in enumerate(interp.client.stack(max_frames=count)):
        try:
            raw = interp.client.read_memory(frame.sp + 8, 32)
            values = [int.from_bytes(raw[i : i + 8], "little") for i in range(0, 32, 8)]
            words = " ".join(formatting.addr17(value) for value in values)
        except MemoryAccessError:
            words = " ".join(["????????`????????"] * 4)
        prefix = f"{number:02x} " if numbered else ""
        lines.append(f"{prefix}{formatting.addr17(frame.return_address):22}: {words:72}: {frame}")
    interp.say("\n".join(lines))


@command("kc")
def call_sites(interp: Interpreter, parsed: ParsedCommand) -> None:
    """cdb's ``kc``: the call sites alone, one per line."""
    count = evaluate(interp, parsed.args) if parsed.args.strip() else None
    interp.say("\n".join(["Call Site", *(str(f) for f in interp.client.stack(max_frames=count))]))


@command("k", "kn")
def stack(interp: Interpreter, parsed: ParsedCommand) -> None:
    count = evaluate(interp, parsed.args) if parsed.args.strip() else None
    frames = interp.client.stack(max_frames=count)
    rows = [formatting.StackRow(f.sp, f.return_address, str(f), f.inline) for f in frames]
    interp.say(formatting.format_stack(rows, numbered=parsed.name == "kn"))


@command("lm")
def modules(interp: Interpreter, parsed: ParsedCommand) -> None:
    rows = [
        formatting.ModuleRow(
            m.base, m.end, m.name, f"({m.symbol_state})", m.path if m.path != "[vdso]" else ""
        )
        for m in interp.client.modules()
    ]
    interp.say(formatting.format_modules(rows))


@command("u")
def unassemble(interp: Interpreter, parsed: ParsedCommand) -> None:
    address, count = _range(interp, parsed.args, 8, "u")
    listing = interp.client.disassemble(address, count)
    lines = []
    previous = None
    for insn in listing:
        symbol = interp.client.symbol_at(insn.address)
        name = symbol.split("+")[0] if symbol else None
        if name != previous or insn is listing[0]:
            if symbol:
                lines.append(f"{symbol}:")
            previous = name
        lines.append(
            formatting.format_instruction(
                insn.address, insn.code, insn.mnemonic, insn.operands, insn.target_symbol
            )
        )
    if listing:
        interp.next_dump["u"] = listing[-1].address + listing[-1].size
    interp.say("\n".join(lines))


_UNIT = {"db": 1, "dw": 2, "dd": 4, "dq": 8, "dp": 8, "dc": 4, "da": 1, "du": 2}
_DEFAULT = {"db": 128, "dw": 64, "dd": 32, "dq": 16, "dp": 16, "dc": 32, "da": 128, "du": 128}


_UNIT.update({"dps": 8, "dqs": 8, "dds": 4})
_DEFAULT.update({"dps": 16, "dqs": 16, "dds": 32})


@command("db", "dw", "dd", "dq", "dp", "dc", "da", "du", "dps", "dqs", "dds")
def dump(interp: Interpreter, parsed: ParsedCommand) -> None:
    kind = "dq" if parsed.name == "dp" else parsed.name
    address, count = _range(interp, parsed.args, _DEFAULT[kind], kind)
    size = count * _UNIT[kind]
    try:
        data: bytes | None = interp.client.read_memory(address, size)
    except MemoryAccessError:
        data = readable_prefix(interp, address, size)
    symbolize = interp.client.symbol_at if kind in ("dps", "dqs", "dds") else None
    interp.say(formatting.format_memory(kind, address, data, size, symbolize))
    interp.next_dump[kind] = address + size


def readable_prefix(interp: Interpreter, address: int, size: int) -> bytes | None:
    """What can be read from the start of a range that ends in unmapped memory."""
    try:
        interp.client.read_memory(address, size)
    except MemoryAccessError as error:
        readable = error.address - address
        if readable > 0:
            return interp.client.read_memory(address, readable)
    return None


_ENTER = {"eb": 1, "ew": 2, "ed": 4, "eq": 8}


@command("eb", "ew", "ed", "eq")
def enter_values(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``eb ADDR V1 V2 ...``: write values of the command's unit size."""
    parts = parsed.args.split()
    if len(parts) < 2:
        raise CommandError("Syntax")
    address = evaluate(interp, parts[0])
    unit = _ENTER[parsed.name]
    data = b"".join(
        (evaluate(interp, part) & ((1 << 8 * unit) - 1)).to_bytes(unit, "little") for part in parts[1:]
    )
    interp.client.write_memory(address, data)


@command("ea", "eza")
def enter_ascii(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``ea ADDR "text"`` (``eza`` adds the terminating NUL)."""
    target, _, rest = parsed.args.strip().partition(" ")
    text = rest.strip()
    if not target or len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        raise CommandError("Syntax")
    data = text[1:-1].encode()
    if parsed.name == "eza":
        data += b"\0"
    interp.client.write_memory(evaluate(interp, target), data)


@command("?")
def evaluate_command(interp: Interpreter, parsed: ParsedCommand) -> None:
    if not parsed.args.strip():
        raise CommandError("Syntax")
    interp.say(expr.format_evaluate(evaluate(interp, parsed.args)))


@command("ln")
def nearest(interp: Interpreter, parsed: ParsedCommand) -> None:
    address = evaluate(interp, parsed.args) if parsed.args.strip() else interp.client.get_register("rip")
    name = interp.client.symbol_at(address)
    if name is None:
        return
    base = name.split("+")[0]
    start = interp.client.resolve(base)
    interp.say(formatting.format_ln((start, base), name, None, start == address))


@command("x")
def examine(interp: Interpreter, parsed: ParsedCommand) -> None:
    """``x [/t] [/v] mod!pattern``: symbols with DWARF's types and values; ``x *``:
    the scope frame's locals, as ``dv /v`` shows them."""
    words = parsed.args.split()
    flags = {w[1:] for w in words if w.startswith("/")}
    pattern = " ".join(w for w in words if not w.startswith("/"))
    if not pattern:
        raise CommandError("Syntax")
    if pattern == "*":
        from lindbg.commands.valueview import dv_lines

        entries = [(kind, value, None) for kind, value in interp.client.frame_variables().entries]
        lines = dv_lines(entries, show_type="t" in flags, show_location=True, show_kind="v" in flags)
        interp.say("\n".join(lines) if lines else "")
        return
    for name, address, about in interp.client.describe_symbols(pattern):
        interp.say(_symbol_row(name, address, about, typed="t" in flags, verbose="v" in flags))


def _symbol_row(name: str, address: int, about: SymbolDescription, *, typed: bool, verbose: bool) -> str:
    """One ``x`` row: addr17, [kind and size], [type], name, then parameters or value."""
    from lindbg.commands.valueview import dv_value_text

    prefix = formatting.addr17(address)
    if verbose:
        size = about.type.size if about.kind == "data" and about.type is not None else None
        kind = {"function": "func", "data": "global"}.get(about.kind, "sym")
        prefix += f" prv {kind:<6} {size or 0:>4x}" if size is not None else f" prv {kind:<6}     "
    if about.kind == "function" and about.parameters is not None:
        returns = about.type.c_name() + " " if typed and about.type is not None else ""
        arguments = ", ".join(t.c_name() for t in about.parameters) or "void"
        return f"{prefix} {returns}{name} ({arguments})"
    if about.kind == "data" and about.type is not None and about.value is not None:
        kind_text = about.type.c_name() + " " if typed else ""
        return f"{prefix} {kind_text}{name} = {dv_value_text(about.value)}"
    return f"{prefix} {name} (<no parameter info>)"
