"""Execution commands: g, p, t (with counts), gu, pt/tt/pc/tc, q, qd, .kill, .detach; and the stop
display cdb prints after every break (event line, `r` block, location)."""

from __future__ import annotations

from lindbg.commands import formatting
from lindbg.commands.interpreter import CommandError, Interpreter, command
from lindbg.commands.parser import ParsedCommand
from lindbg.commands.source import stop_source
from lindbg.constants import EndFlags, Status
from lindbg.errors import NoDebuggeeError

_GENERAL = (
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rip", "rsp", "rbp", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15", "eflags", "cs", "ss", "ds", "es", "fs", "gs",
)  # fmt: skip


def _count(interp: Interpreter, text: str) -> int:
    if not text:
        return 1
    from lindbg.commands.data import evaluate

    value = evaluate(interp, text)
    if value < 1:
        raise CommandError("Syntax")
    return value


def run(interp: Interpreter, status: Status, count: int = 1) -> None:
    """Resume as ``status`` says and wait for the target; show the stop, if any.

    A breakpoint's command string (``bp app!f "k; g"``) runs at its hit; a resume
    inside it does not nest a new wait but asks this loop to go on, so a
    breakpoint that says ``g`` can be hit any number of times.
    """
    client = interp.client
    if client.get_execution_status() == Status.NO_DEBUGGEE:
        raise NoDebuggeeError("no debuggee")
    if interp.shared.running:
        interp.shared.resume_request = (status, count)
        return
    interp.shared.running = True
    try:
        request: tuple[Status, int] | None = (status, count)
        while request is not None:
            status, count = request
            interp.shared.last_resume = request
            if status in (Status.STEP_INTO, Status.STEP_OVER):
                client.set_execution_status(status, count)
            else:
                client.set_execution_status(status)
            client.wait_for_event()
            request = None
            if client.get_execution_status() != Status.BREAK:
                break
            show_event(interp)
            commands = _breakpoint_commands(interp)
            if commands:
                # cdb shows the register block only when it comes back to the
                # prompt: a command string that resumes (`gc`) stays quiet
                interp.shared.resume_request = None
                interp.execute(commands)
                request = interp.shared.resume_request
            if request is None:
                show_location(interp)
    finally:
        interp.shared.running = False
        interp.shared.resume_request = None


def _breakpoint_commands(interp: Interpreter) -> str:
    event = interp.client.get_last_event()
    if event is None or event.kind != "breakpoint" or event.breakpoint_id is None:
        return ""
    for bp in interp.client.breakpoints():
        if bp.id == event.breakpoint_id:
            return bp.command
    return ""


def show_stop(interp: Interpreter) -> None:
    """cdb's stop display: the event line, then the register block and location."""
    show_event(interp)
    show_location(interp)


def show_location(interp: Interpreter) -> None:
    """What follows the event line: the register block and location, with what the
    source options add (§22): the ``lsp`` window before the location line (``l+s``),
    `` [file @ line]`` on it (``l+l``), or only the ``>`` source line (``l+o``)."""
    source = stop_source(interp)
    if source is None:
        interp.say(register_block(interp))
        return
    if source.only:
        interp.say("\n".join(source.window))
        return
    # the block always ends with the location line and the instruction line
    *registers, location, instruction = register_block(interp).split("\n")
    if source.suffix:
        location = location.removesuffix(":") + source.suffix + ":"
    interp.say("\n".join([*registers, *source.window, location, instruction]))


def show_event(interp: Interpreter) -> None:
    """The line(s) naming the event that stopped the target."""
    client = interp.client
    event = client.get_last_event()
    if event is not None:
        if event.kind == "breakpoint" and event.breakpoint_id is not None:
            interp.say(f"Breakpoint {event.breakpoint_id} hit")
        elif event.kind == "exception":
            interp.say(f"({event.pid:x}.{event.tid:x}): {event.description}")
            if "first chance" in event.description:
                interp.say("First chance exceptions are reported before any exception handling.")
                interp.say("This exception may be expected and handled.")
        elif event.kind in ("break", "initial", "attach"):
            interp.say(f"({event.pid:x}.{event.tid:x}): {event.description} (first chance)")


def register_block(interp: Interpreter, overrides: dict[str, int] | None = None) -> str:
    """The `r` block with the location and current instruction (§2); ``overrides``
    replace registers (``.frame /c``: the frame's recovered ones)."""
    client = interp.client
    regs = {name: client.get_register(name) for name in _GENERAL}
    regs.update(overrides or {})
    rip = regs["rip"]
    location = (client.symbol_at(rip) or formatting.addr17(rip)) + ":"
    listing = client.disassemble(rip, 1)
    if listing:
        insn = listing[0]
        line = formatting.format_instruction(
            insn.address, insn.code, insn.mnemonic, insn.operands, insn.target_symbol
        )
    else:
        line = f"{formatting.addr17(rip)} ??              ???"
    return formatting.format_registers(regs, location, line).rstrip("\n")


@command("g")
def go(interp: Interpreter, parsed: ParsedCommand) -> None:
    run(interp, Status.GO)


@command("gh")
def go_handled(interp: Interpreter, parsed: ParsedCommand) -> None:
    run(interp, Status.GO_HANDLED)


@command("gn")
def go_not_handled(interp: Interpreter, parsed: ParsedCommand) -> None:
    run(interp, Status.GO_NOT_HANDLED)


@command("p")
def step_over(interp: Interpreter, parsed: ParsedCommand) -> None:
    run(interp, Status.STEP_OVER, _count(interp, parsed.args))


@command("t")
def step_into(interp: Interpreter, parsed: ParsedCommand) -> None:
    run(interp, Status.STEP_INTO, _count(interp, parsed.args))


def _end(interp: Interpreter, flags: EndFlags, *, quitting: bool) -> None:
    """End the session (`q`, `qd`, `.kill`, `.detach`); quitting ends lindbg too."""
    active = interp.client.get_execution_status() != Status.NO_DEBUGGEE
    if quitting:
        interp.say("quit:")
        interp.wants_quit = True
        interp.shared.quit_requested = True
    elif not active:
        raise NoDebuggeeError("no debuggee")
    if active:
        interp.client.end_session(flags)


@command("q", "qq")
def quit_(interp: Interpreter, parsed: ParsedCommand) -> None:
    _end(interp, EndFlags.ACTIVE_TERMINATE, quitting=True)


@command("qd")
def quit_detach(interp: Interpreter, parsed: ParsedCommand) -> None:
    _end(interp, EndFlags.ACTIVE_DETACH, quitting=True)


@command(".kill")
def kill(interp: Interpreter, parsed: ParsedCommand) -> None:
    _end(interp, EndFlags.ACTIVE_TERMINATE, quitting=False)


@command(".detach")
def detach(interp: Interpreter, parsed: ParsedCommand) -> None:
    _end(interp, EndFlags.ACTIVE_DETACH, quitting=False)


@command(".echo")
def echo(interp: Interpreter, parsed: ParsedCommand) -> None:
    interp.say(parsed.args)


#: pt/tt run to the next return, pc/tc to the next call; p* over calls, t* into them.
_UNTIL = {
    "pt": (Status.STEP_OVER, "ret"),
    "tt": (Status.STEP_INTO, "ret"),
    "pc": (Status.STEP_OVER, "call"),
    "tc": (Status.STEP_INTO, "call"),
}


@command("pt", "tt", "pc", "tc")
def step_until(interp: Interpreter, parsed: ParsedCommand) -> None:
    """Step (at least once) until the next instruction is a return (``pt``/``tt``)
    or a call (``pc``/``tc``); a breakpoint or Ctrl-C on the way stops there."""
    status, wanted = _UNTIL[parsed.name]
    client = interp.client
    if client.get_execution_status() == Status.NO_DEBUGGEE:
        raise NoDebuggeeError("no debuggee")
    while True:
        client.set_execution_status(status)
        client.wait_for_event()
        if client.get_execution_status() != Status.BREAK:
            return
        event = client.get_last_event()
        if event is None or event.kind != "step":
            break
        listing = client.disassemble(client.get_register("rip"), 1)
        if listing and listing[0].mnemonic.split()[-1].startswith(wanted):
            break
    show_stop(interp)


@command("gu")
def go_up(interp: Interpreter, parsed: ParsedCommand) -> None:
    """Run until the current function returns to its caller."""
    frames = interp.client.stack(max_frames=2)
    physical = [f for f in frames if not f.inline]
    if len(physical) < 2:
        raise CommandError("Syntax")
    bp = interp.client.add_breakpoint(physical[0].return_address, one_shot=True)
    try:
        run(interp, Status.GO)
    finally:
        if bp.is_valid:
            interp.client.remove_breakpoint(bp)
