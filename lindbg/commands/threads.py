"""Thread and process commands: ``~`` in all its forms (CDB-OUTPUT.md §11) and ``|``.

``~`` lists; ``~*``, ``~.``, ``~#``, ``~N``, ``~~[tid]`` select threads and then
either show them (with their start routine and scheduling), switch to one
(``~Ns``), or run a command as each of them (``~* k``, ``~2 r rip``) with the
current thread restored afterwards.
"""

from __future__ import annotations

import itertools

from lindbg.commands import formatting
from lindbg.commands.interpreter import CommandError, Interpreter, command
from lindbg.commands.parser import ParsedCommand
from lindbg.engine.handles import Thread
from lindbg.errors import LindbgError

#: Frames that belong to the thread library, below a thread's own start routine.
_THREAD_ENTRIES = ("start_thread", "clone3", "clone", "__clone")


def _selector(interp: Interpreter, args: str) -> tuple[list[tuple[int, Thread]] | None, str]:
    """Parse the selector at the start of ``args``: the chosen (index, thread)
    pairs (None: plain ``~``, every thread without details) and the rest."""
    listed = list(enumerate(interp.client.threads(interp.client.current_thread().pid)))
    if not args or args[0] not in "*.#~0123456789":
        return None, args
    if args[0] == "*":
        return listed, args[1:]
    if args[0] == ".":
        current = interp.client.current_thread().tid
        return [pair for pair in listed if pair[1].tid == current], args[1:]
    if args[0] == "#":
        event = interp.client.get_last_event()
        tid = event.tid if event is not None else interp.client.current_thread().tid
        return [pair for pair in listed if pair[1].tid == tid], args[1:]
    if args[0] == "~":  # ~~[tid]: by the OS thread id (hex unless 0n)
        close = args.find("]")
        if not args.startswith("~[") or close < 0:
            raise CommandError("Syntax")
        from lindbg.commands.data import evaluate

        tid = evaluate(interp, args[2:close])
        chosen = [pair for pair in listed if pair[1].tid == tid]
        if not chosen:
            raise CommandError("Illegal thread")
        return chosen, args[close + 1 :]
    digits = len(args) - len(args.lstrip("0123456789"))
    index = int(args[:digits])
    if index >= len(listed):
        raise CommandError("Illegal thread")
    return [listed[index]], args[digits:]


def _header(interp: Interpreter, index: int, thread: Thread, current: int) -> str:
    event = interp.client.get_last_event()
    marker = "." if thread.tid == current else "#" if event is not None and event.tid == thread.tid else " "
    teb = _register(interp, "fs_base", thread.tid)
    details = interp.client.thread_details(thread.tid)
    name = f' "{details.name}"' if details is not None and details.name else ""
    ident = f"{thread.pid:x}.{thread.tid:x}"
    return f"{marker}{index:3d}  Id: {ident} Suspend: 1 Teb: {formatting.addr17(teb)} Unfrozen{name}"


def _register(interp: Interpreter, name: str, tid: int) -> int:
    try:
        return interp.client.get_register(name, tid)
    except LindbgError:
        return 0


def _start_routine(interp: Interpreter, thread: Thread) -> str:
    """The function the thread was started in: the frame above the thread
    library's entry, or the outermost frame (the program's entry for main)."""
    try:
        frames = [frame for frame in interp.client.stack(thread.tid) if not frame.inline]
    except LindbgError:
        return "?"
    if not frames:
        return "?"
    chosen = frames[-1]
    for above, frame in itertools.pairwise(frames):
        if frame.function in _THREAD_ENTRIES:
            chosen = above
            break
    if chosen.function is None or chosen.module is None:
        return f"{chosen.location} ({formatting.addr17(chosen.pc)})"
    start = chosen.pc - chosen.offset
    return f"{chosen.module}!{chosen.function} ({formatting.addr17(start)})"


def _show(interp: Interpreter, index: int, thread: Thread, *, details: bool, current: int = 0) -> None:
    interp.say(_header(interp, index, thread, current or interp.client.current_thread().tid))
    if not details:
        return
    interp.say(f"      Start: {_start_routine(interp, thread)}")
    info = interp.client.thread_details(thread.tid)
    if info is not None:
        interp.say(
            f"      Priority: {info.priority}  Priority class: {info.priority_class}  "
            f"Affinity: {info.affinity:x}"
        )


@command("~")
def threads(interp: Interpreter, parsed: ParsedCommand) -> None:
    chosen, rest = _selector(interp, parsed.args.strip())
    rest = rest.strip()
    if chosen is None:
        if rest:
            raise CommandError("Syntax")
        for index, thread in enumerate(interp.client.threads(interp.client.current_thread().pid)):
            _show(interp, index, thread, details=False)
        return
    if not rest:
        for index, thread in chosen:
            _show(interp, index, thread, details=True)
        return
    if rest == "s":
        if len(chosen) != 1:
            raise CommandError("Syntax")
        from lindbg.commands.execution import register_block

        interp.client.set_current_thread(chosen[0][1].tid)
        interp.say(register_block(interp))
        return
    if rest in ("f", "u", "n", "m"):
        raise LindbgError("freezing and suspending single threads is not supported (all-stop target)")
    _as_each(interp, chosen, rest)


def _as_each(interp: Interpreter, chosen: list[tuple[int, Thread]], line: str) -> None:
    """Run ``line`` as each chosen thread (``~* k``), then restore the current one."""
    original = interp.client.current_thread().tid
    try:
        for index, thread in chosen:
            if len(chosen) > 1:
                interp.say("")
                _show(interp, index, thread, details=False, current=original)
            interp.client.set_current_thread(thread.tid)
            interp.execute(line)
    finally:
        if any(t.tid == original for t in interp.client.threads()):
            interp.client.set_current_thread(original)


@command("|")
def processes(interp: Interpreter, parsed: ParsedCommand) -> None:
    current = interp.client.current_thread().pid
    for index, process in enumerate(interp.client.processes()):
        marker = "." if process.pid == current else " "
        interp.say(f"{marker}  {index}\tid: {process.pid:x}\t{process.origin}\tname: {process.executable}")
