"""Source mode (CDB-OUTPUT.md §22): ``l+``/``l-``, ``.lines``, ``lsa``, ``ls``, ``lsc``,
``lsp``, ``lsf``/``lsf-``, ``.srcpath``/``.srcpath+``; and the source part of the stop
display (``stop_source``, used by ``execution.show_location``).

A listed line is ``>`` on the current line else a space, the number right-justified
in 5, ``: ``, then the text with its tabs kept (``>   12:     total += 1;``).

Choices made where cdb's text is unconfirmed or lindbg has to differ:

* ``l+*`` prints ``Source options are ffffffff:`` as cdb does, then the four bits
  lindbg knows. The engine keeps only those four (0xf); the other bits the user asked
  for are remembered per interpreter so that later ``l+X``/``l-X`` print cdb's value
  (``l-*`` clears them all). When another client changed the engine's bits, the
  engine's value wins. An option other than ``t l s o *`` is a ``Syntax`` error.
* ``.lines`` is on at start (lindbg's ``k`` and ``bl`` always show lines, so source
  mode starting on is consistent). Bare ``.lines`` and ``.lines -t`` toggle. While it
  is off: stops show no source, ``l+t`` is kept but not given to the engine (``p``/
  ``t`` step instructions), every ``l+X`` is preceded by
  ``  WARNING: Line information loading disabled`` (cdb: seen for ``l+*``), and
  commands that need the pc's line (``lsa``, ``ls .``) print
  ``Line number information is not loaded (.lines -e loads it)``. An address with
  no line information: ``No source line information for 00000000`00401000``.
* Windows: at a stop ``lsp``'s default is 3 lines before and 3 after; ``lsa`` shows 4
  before and 5 after (seen); ``ls`` lists 20 lines. ``lsp [-a] N`` splits N (the odd
  one after, as Microsoft documents); ``lsp [-a] B A`` sets both. ``lsp -a`` also sets
  the ``ls`` count to B + A. ``lsp`` prints ``At the prompt, display B source lines
  before and A after``; ``lsp -a`` that line and ``For ls and lsa, display B source
  lines before and A after`` (unconfirmed wording).
* ``ls [.] [first] [, count]``: without ``.`` it lists the current file (set by
  ``lsf``, ``lsa`` or ``ls .``) from the current line, which then moves past the last
  line shown. ``ls .``, and ``ls`` with no current file yet, take the file of the
  current instruction and start ``lsa``'s lines-before above its line. ``first`` and
  ``count`` are MASM expressions in the current radix (``0n10`` is ten), as in cdb.
  ``lsa [.] ADDR [, first [, count]]``: ADDR is a MASM expression (``.`` is the pc)
  or `` `file.c:LINE` ``. In every listing the ``>`` marks the line of the address the
  last ``lsa``/``ls .`` was about, in that file.
* ``lsc`` prints ``Current: FILE(LINE)`` (the found file, the current line) and then
  that line as listed; with no current file, ``No current source file``.
* ``lsf FILE`` makes FILE (found as given, else through ``.srcpath``) the current
  file from line 1 and prints ``Loaded source file 'PATH'``; ``lsf- FILE`` forgets
  it: ``Unloaded source file 'PATH'``, or ``Source file 'FILE' is not loaded``.
* A file that cannot be found prints one line naming the path DWARF (or the user)
  gave: ``Source file '/build/app/main.c' not found: .srcpath+ DIR adds a directory
  to search``. At a stop with ``l+o`` a missing file falls back to the ``l+s`` layout
  with that line in the window's place, so the location is never lost.
* ``.srcpath DIRS`` replaces, ``.srcpath+ DIRS`` appends (entries already present are
  not repeated); ``;`` separates commands, so several directories need double quotes
  (``.srcpath "/a;/b"``). Both print ``Source search path is: PATH`` (``<empty>`` when
  empty), a blank line, then cdb's validation summary with a row per directory:
  ``OK`` or ``Error`` in a 47-wide Response column (no time: local directories) and
  the directory as Location. Bare ``.srcpath`` prints only the first line.
* Stops (``l+s``): the window sits between the register block and the location line.
  ``l+l`` appends `` [FILE @ LINE]`` to the location line (``data!add [/src/data.c @
  35]:``), the stack's source form (§0). ``l+o`` prints only the event line and the
  ``>`` line. A pc without line information keeps today's display.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass

from lindbg.commands.interpreter import CommandError, Interpreter, command
from lindbg.commands.parser import ParsedCommand
from lindbg.constants import SourceOptions

__all__ = ["StopSource", "describe_options", "format_source_line", "missing_source", "stop_source"]

#: The bits the engine keeps; l+* asks for all 32 (cdb prints ffffffff).
_KNOWN = 0xF
_ALL = 0xFFFFFFFF
_OPTIONS = {
    "t": int(SourceOptions.TRACE_LINES),
    "l": int(SourceOptions.LINE_NUMBERS),
    "s": int(SourceOptions.SOURCE),
    "o": int(SourceOptions.ONLY_SOURCE),
    "*": _ALL,
}
_DESCRIPTIONS = (
    (SourceOptions.TRACE_LINES, "1/t - Step/trace by source line"),
    (SourceOptions.LINE_NUMBERS, "2/l - List source line at prompt"),
    (SourceOptions.SOURCE, "4/s - List source code at prompt"),
    (SourceOptions.ONLY_SOURCE, "8/o - Only show source code at prompt"),
)
_LINES_OFF = "Line number information is not loaded (.lines -e loads it)"
#: Response column width of cdb's path validation summary (Location starts after it).
_RESPONSE_WIDTH = 47


@dataclass
class _SourceState:
    """What one interpreter remembers of source mode (cdb keeps it per session)."""

    lines_enabled: bool = True
    #: The l+/l- bits as the user set them (up to 32: l+* prints ffffffff).
    requested: int = 0
    prompt_before: int = 3
    prompt_after: int = 3
    list_before: int = 4
    list_after: int = 5
    list_count: int = 20
    #: The current file for ls/lsc, as DWARF or lsf named it (None: none yet).
    file: str | None = None
    next_line: int = 1
    #: The line that gets '>' in ``file``.
    mark: int | None = None


# Interpreter belongs to interpreter.py, which this family must not grow; a weak map
# gives each interpreter its own state and lets it go with the interpreter.
_STATES: weakref.WeakKeyDictionary[Interpreter, _SourceState] = weakref.WeakKeyDictionary()


def _state(interp: Interpreter) -> _SourceState:
    state = _STATES.get(interp)
    if state is None:
        state = _STATES[interp] = _SourceState()
    return state


def _effective(state: _SourceState, requested: int) -> int:
    """The bits the engine gets: the known ones, no line stepping while .lines is off."""
    bits = requested & _KNOWN
    if not state.lines_enabled:
        bits &= ~int(SourceOptions.TRACE_LINES)
    return bits


def _requested(interp: Interpreter, state: _SourceState) -> int:
    engine = int(interp.client.get_source_options())
    if engine != _effective(state, state.requested):
        # another client (or the API) changed the bits since: the engine is the truth
        state.requested = engine
    return state.requested


def _apply(interp: Interpreter, state: _SourceState, requested: int) -> None:
    state.requested = requested & _ALL
    interp.client.set_source_options(_effective(state, state.requested))


def describe_options(value: int) -> str:
    """``Source options are N:`` and one line per known bit that is set."""
    lines = [f"Source options are {value & _ALL:x}:"]
    lines += [f"     {text}" for bit, text in _DESCRIPTIONS if value & bit]
    return "\n".join(lines)


def format_source_line(number: int, text: str, current: bool) -> str:
    """One listed line: ``>`` or space, the number right-justified in 5, ``: ``, text."""
    return f"{'>' if current else ' '}{number:>5}: {text}"


def missing_source(path: str) -> str:
    """The one line printed when a source file cannot be found."""
    return f"Source file '{path}' not found: .srcpath+ DIR adds a directory to search"


def _window(text: list[str], first: int, last: int, mark: int | None) -> list[str]:
    first = max(1, first)
    last = min(len(text), last)
    return [format_source_line(n, text[n - 1], n == mark) for n in range(first, last + 1)]


# ------------------------------------------------------------------ the stop


@dataclass(frozen=True, slots=True)
class StopSource:
    """The source parts of a stop display.

    ``window``: the lines between the register block and the location line (empty
    without ``l+s``); ``suffix``: `` [FILE @ LINE]`` for the location line (``l+l``);
    ``only``: print ``window`` alone, after the event line (``l+o``)."""

    window: list[str]
    suffix: str
    only: bool


def stop_source(interp: Interpreter) -> StopSource | None:
    """What source mode adds to the display of the current stop; None when nothing
    (no source option set, ``.lines`` off, or no line information at the pc)."""
    state = _state(interp)
    options = _requested(interp, state)
    shown = SourceOptions.LINE_NUMBERS | SourceOptions.SOURCE | SourceOptions.ONLY_SOURCE
    if not state.lines_enabled or not options & shown:
        return None
    client = interp.client
    line = client.current_source_line()
    if line is None:
        return None
    suffix = f" [{line.file} @ {line.line}]" if options & SourceOptions.LINE_NUMBERS else ""
    if not options & (SourceOptions.SOURCE | SourceOptions.ONLY_SOURCE):
        return StopSource([], suffix, only=False)
    text = client.source_text(line.file)
    if text is None:
        return StopSource([missing_source(line.file)], suffix, only=False)
    if options & SourceOptions.ONLY_SOURCE:
        return StopSource(_window(text, line.line, line.line, line.line), suffix, only=True)
    first, last = line.line - state.prompt_before, line.line + state.prompt_after
    return StopSource(_window(text, first, last, line.line), suffix, only=False)


# ------------------------------------------------------------ options, .lines


@command("l+", "l-")
def source_options(interp: Interpreter, parsed: ParsedCommand) -> None:
    letter = parsed.args.strip().lower()
    if letter not in _OPTIONS:
        # the caret goes under the option that is wrong (or the end, when none is given)
        raise CommandError("Syntax", parsed.text.lower().rfind(letter) if letter else len(parsed.text))
    state = _state(interp)
    current = _requested(interp, state)
    bit = _OPTIONS[letter]
    if parsed.name == "l+":
        _apply(interp, state, current | bit)
        if not state.lines_enabled:
            interp.say("  WARNING: Line information loading disabled")
    else:
        _apply(interp, state, current & ~bit)
    interp.say(describe_options(state.requested))


@command(".lines")
def lines_option(interp: Interpreter, parsed: ParsedCommand) -> None:
    state = _state(interp)
    requested = _requested(interp, state)
    arg = parsed.args.strip().lower()
    if arg == "-e":
        state.lines_enabled = True
    elif arg == "-d":
        state.lines_enabled = False
    elif arg in ("", "-t"):
        state.lines_enabled = not state.lines_enabled
    else:
        raise CommandError("Syntax")
    # l+t reaches the engine only while lines are loaded: re-apply the same request
    _apply(interp, state, requested)
    negation = "" if state.lines_enabled else "not "
    interp.say(f"Line number information will {negation}be loaded")


# ------------------------------------------------------------------ listings


def _split_args(text: str) -> list[str]:
    """Comma-separated arguments; commas inside parentheses belong to the expression."""
    parts: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip())
    return parts


def _number(interp: Interpreter, text: str) -> int:
    from lindbg.commands.data import evaluate

    return evaluate(interp, text)


def _address(interp: Interpreter, text: str) -> int:
    """``.`` (the pc), a MASM expression, or `` `file.c:LINE` ``."""
    if len(text) > 1 and text[0] == "`" and text[-1] == "`":
        return interp.client.resolve(text[1:-1])
    return _number(interp, text)


def _list(interp: Interpreter, name: str, first: int, count: int, mark: int | None) -> None:
    """Print ``count`` lines of ``name`` from ``first``; the current line moves on."""
    state = _state(interp)
    text = interp.client.source_text(name)
    if text is None:
        interp.say(missing_source(name))
        return
    first = max(1, first)
    listing = _window(text, first, first + count - 1, mark)
    if listing:
        interp.say("\n".join(listing))
    state.file, state.mark = name, mark
    state.next_line = first + len(listing)


def _pc_line(interp: Interpreter, address: int) -> tuple[str, int] | None:
    """(file, line) of ``address``, or None after printing why there is none."""
    if not _state(interp).lines_enabled:
        interp.say(_LINES_OFF)
        return None
    client = interp.client
    # the stop's own pc: the line the stop presents (a virtual inline frame's call site)
    line = (
        client.current_source_line() if address == client.get_register("rip") else client.source_line(address)
    )
    if line is None:
        from lindbg.commands.formatting import addr17

        interp.say(f"No source line information for {addr17(address)}")
        return None
    return line.file, line.line


@command("lsa")
def list_at_address(interp: Interpreter, parsed: ParsedCommand) -> None:
    args = _split_args(parsed.args)
    where = args[0]
    if where.startswith(". ") and where[2:].strip():
        where = where[2:].strip()  # `lsa . ADDR`: the dot only says "the engine's file"
    if not where or len(args) > 3:
        raise CommandError("Syntax")
    located = _pc_line(interp, _address(interp, where))
    if located is None:
        return
    state = _state(interp)
    name, line = located
    first = _number(interp, args[1]) if len(args) > 1 and args[1] else line - state.list_before
    default_count = line + state.list_after - max(1, first) + 1
    count = _number(interp, args[2]) if len(args) > 2 and args[2] else default_count
    _list(interp, name, first, count, line)


@command("ls")
def list_lines(interp: Interpreter, parsed: ParsedCommand) -> None:
    state = _state(interp)
    text = parsed.args.strip()
    from_pc = text == "." or text.startswith((". ", ".,"))
    if from_pc:
        text = text[1:].strip()
    args = _split_args(text) if text else [""]
    if len(args) > 2:
        raise CommandError("Syntax")
    first = _number(interp, args[0]) if args[0] else None
    count = _number(interp, args[1]) if len(args) > 1 and args[1] else state.list_count
    if from_pc or state.file is None:
        located = _pc_line(interp, interp.client.get_register("rip"))
        if located is None:
            return
        name, line = located
        _list(interp, name, line - state.list_before if first is None else first, count, line)
        return
    _list(interp, state.file, state.next_line if first is None else first, count, state.mark)


@command("lsc")
def list_current(interp: Interpreter, parsed: ParsedCommand) -> None:
    state = _state(interp)
    if state.file is None:
        interp.say("No current source file")
        return
    found = _found(interp, state.file)
    text = interp.client.source_text(state.file)
    if found is None or text is None:
        interp.say(missing_source(state.file))
        return
    interp.say(f"Current: {found}({state.next_line})")
    listing = _window(text, state.next_line, state.next_line, state.mark)
    if listing:
        interp.say(listing[0])


@command("lsp")
def list_window(interp: Interpreter, parsed: ParsedCommand) -> None:
    state = _state(interp)
    words = parsed.args.split()
    for_lists = bool(words) and words[0].lower() == "-a"
    if for_lists:
        words = words[1:]
    if len(words) > 2:
        raise CommandError("Syntax")
    if words:
        values = [_number(interp, word) for word in words]
        # one number is a total, the odd line going after (Microsoft's lsp page)
        before, after = (values[0] // 2, values[0] - values[0] // 2) if len(values) == 1 else values
        if for_lists:
            state.list_before, state.list_after, state.list_count = before, after, before + after
        else:
            state.prompt_before, state.prompt_after = before, after
    if not words or not for_lists:
        interp.say(_lines_around("At the prompt", state.prompt_before, state.prompt_after))
    if for_lists:
        interp.say(_lines_around("For ls and lsa", state.list_before, state.list_after))


def _lines_around(where: str, before: int, after: int) -> str:
    return f"{where}, display {before} source lines before and {after} after"


def _unquote(text: str) -> str:
    return text.strip().replace('"', "")


@command("lsf", "lsf-")
def load_source_file(interp: Interpreter, parsed: ParsedCommand) -> None:
    name = _unquote(parsed.args)
    if not name:
        raise CommandError("Syntax")
    client = interp.client
    state = _state(interp)
    found = _found(interp, name)
    if parsed.name == "lsf":
        if found is None or client.source_text(name) is None:
            interp.say(missing_source(name))
            return
        state.file, state.next_line, state.mark = name, 1, None
        interp.say(f"Loaded source file '{found}'")
        return
    current = _found(interp, state.file) if state.file is not None else None
    if state.file is None or (name != state.file and (found is None or found != current)):
        interp.say(f"Source file '{name}' is not loaded")
        return
    state.file, state.next_line, state.mark = None, 1, None
    interp.say(f"Unloaded source file '{current or name}'")


def _found(interp: Interpreter, name: str) -> str | None:
    """The absolute path of the file ``name`` finds (a relative name is relative to
    lindbg's directory), so messages and comparisons do not depend on the spelling."""
    found = interp.client.find_source_file(name)
    return os.path.abspath(found) if found is not None else None


# ------------------------------------------------------------------ .srcpath


def _validation_summary(directories: list[str]) -> list[str]:
    rows = [
        "",
        "************* Path validation summary **************",
        "Response                         Time (ms)     Location",
    ]
    for directory in directories:
        response = "OK" if os.path.isdir(directory) else "Error"
        rows.append(f"{response:<{_RESPONSE_WIDTH}}{directory}")
    return rows


@command(".srcpath", ".srcpath+")
def source_path(interp: Interpreter, parsed: ParsedCommand) -> None:
    client = interp.client
    text = parsed.args.strip()
    if text:
        given = [entry.strip() for entry in _unquote(text).split(";") if entry.strip()]
        entries = given
        if parsed.name == ".srcpath+":
            current = [entry for entry in client.get_source_path().split(";") if entry]
            entries = current + [entry for entry in given if entry not in current]
        client.set_source_path(";".join(entries))
    path = client.get_source_path()
    interp.say(f"Source search path is: {path or '<empty>'}")
    if text and path:
        interp.say("\n".join(_validation_summary(path.split(";"))))
