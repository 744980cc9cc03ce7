"""Extension commands: .load, .unload, .chain and ``!name`` (DESIGN.md §6).

``!name args`` searches the chain as cdb does, the most recently loaded extension
first, and calls ``commands[name](client, args)``; ``!ext.name`` asks one extension.
When no loaded extension has the command, the built-in ``lindbg.extensions.linux``
answers (so ``!maps`` works without a ``.load``); nothing found prints cdb's
``No export NAME found``. An extension's failure is one line and the session goes on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

from lindbg.commands.interpreter import Interpreter, command
from lindbg.commands.parser import ParsedCommand
from lindbg.constants import OutputMask
from lindbg.engine.extensions import Extension
from lindbg.errors import LindbgError

#: The module ``!name`` falls back to when no loaded extension has ``name``.
BUILTIN = "lindbg.extensions.linux"

ExtensionCommand = Callable[..., Any]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _path_of(extension: Extension) -> str:
    path = getattr(extension.obj, "__file__", None)
    return os.path.abspath(path) if isinstance(path, str) else repr(extension.obj)


def _chain(interp: Interpreter) -> list[Extension]:
    """Loaded extensions in search order: the most recently loaded first."""
    return list(reversed(interp.client.extensions()))


def _names_of(extension: Extension) -> set[str]:
    """What a user may call ``extension`` by: its name, the name's last dotted part,
    its file's name and stem, its path (all compared case-insensitively)."""
    names = {extension.name, extension.name.rsplit(".", 1)[-1]}
    path = getattr(extension.obj, "__file__", None)
    if isinstance(path, str):
        base = os.path.basename(path)
        names |= {path, os.path.abspath(path), base, os.path.splitext(base)[0]}
    return {name.lower() for name in names}


def _find(interp: Interpreter, name: str) -> Extension | None:
    wanted = name.strip().strip('"').lower()
    if not wanted:
        return None
    path = os.path.abspath(wanted) if wanted.endswith(".py") or os.sep in wanted else None
    for extension in _chain(interp):
        names = _names_of(extension)
        if wanted in names or (path is not None and path in names):
            return extension
    return None


def _builtin() -> ModuleType:
    import importlib

    return importlib.import_module(BUILTIN)


def _lookup(table: dict[str, ExtensionCommand], name: str) -> ExtensionCommand | None:
    """``table[name]``, else a case-insensitive match (the parser lowers nothing here)."""
    found = table.get(name)
    if found is None:
        lowered = name.lower()
        found = next((fn for key, fn in table.items() if key.lower() == lowered), None)
    return found


# -------------------------------------------------------------------- .load


@command(".load")
def load(interp: Interpreter, parsed: ParsedCommand) -> None:
    spec = parsed.args.strip().strip('"')
    if not spec:
        interp.say("Usage: .load PATH_OR_MODULE (a .py file or an importable module name)", OutputMask.ERROR)
        return
    if _find(interp, spec) is not None:
        return  # already in the chain: cdb loads a DLL once
    try:
        interp.client.load_extension(spec)
    except Exception as error:  # an extension's own code may raise anything
        message = _first_line(error)
        if not isinstance(error, LindbgError):
            message = f"cannot load extension '{spec}': {type(error).__name__}: {message}"
        interp.say(message, OutputMask.ERROR)


@command(".unload")
def unload(interp: Interpreter, parsed: ParsedCommand) -> None:
    name = parsed.args.strip().strip('"')
    if name:
        extension = _find(interp, name)
    else:  # cdb: no name unloads the current (most recent) extension
        chain = _chain(interp)
        extension = chain[0] if chain else None
    if extension is None:
        interp.say(f"Can't find extension '{name}'" if name else "No extensions loaded", OutputMask.ERROR)
        return
    try:
        interp.client.unload_extension(extension)
    except Exception as error:
        interp.say(f"unloading extension {extension.name}: {_first_line(error)}", OutputMask.ERROR)


@command(".chain")
def chain(interp: Interpreter, parsed: ParsedCommand) -> None:
    interp.say("Extension DLL chain:")
    for extension in _chain(interp):
        interp.say(f"    {extension.name}: [path: {_path_of(extension)}]")


# ---------------------------------------------------------------------- !name


def _resolve(interp: Interpreter, raw: str) -> tuple[ExtensionCommand | None, str]:
    """The function ``!raw`` names, and the text to report when there is none."""
    builtin: dict[str, ExtensionCommand] = dict(getattr(_builtin(), "commands", {}))
    for extension in _chain(interp):
        found = _lookup(extension.commands, raw)
        if found is not None:
            return found, ""
    if "." in raw:  # !ext.name
        owner, _, name = raw.rpartition(".")
        named = _find(interp, owner)
        if named is not None:
            return _lookup(named.commands, name), f"No export {name} found"
        if owner.lower() in (BUILTIN, BUILTIN.rsplit(".", 1)[-1]):
            return _lookup(builtin, name), f"No export {name} found"
        return None, f"No extension named '{owner}' is loaded"
    return _lookup(builtin, raw), f"No export {raw} found"


@command("!")
def bang(interp: Interpreter, parsed: ParsedCommand) -> None:
    """Every ``!name`` the interpreter has no handler for lands here."""
    raw = parsed.text.split(maxsplit=1)[0][1:]  # the name as typed (the parser lowers it)
    if not raw:
        interp.say("No export name given: type !name (!help lists the built-in ones)", OutputMask.ERROR)
        return
    function, missing = _resolve(interp, raw)
    if function is None:
        interp.say(missing, OutputMask.ERROR)
        return
    try:
        function(interp.client, parsed.args)
    except LindbgError:
        raise  # the interpreter renders lindbg's errors in cdb's shapes
    except Exception as error:
        interp.say(f"!{raw} failed: {type(error).__name__}: {_first_line(error)}", OutputMask.ERROR)
