"""The extension registry: Python modules (or objects) that hear session changes.

An extension exposes, by name as dbgeng's DLL exports are found:
``debug_extension_initialize(client)``, ``debug_extension_uninitialize()``,
``debug_extension_notify(notify, argument)`` and a dict ``commands``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

from lindbg.errors import InvalidOperationError


class Extension:
    """One loaded extension."""

    def __init__(self, name: str, obj: Any) -> None:
        self.name = name
        self.obj = obj
        notify = getattr(obj, "debug_extension_notify", None)
        self._notify: Callable[[int, int], Any] | None = notify if callable(notify) else None
        commands = getattr(obj, "commands", None)
        self.commands: dict[str, Callable[..., Any]] = dict(commands) if isinstance(commands, dict) else {}

    def notify(self, what: int, argument: int) -> None:
        if self._notify is not None:
            self._notify(what, argument)


def load_object(spec: Any) -> tuple[str, Any]:
    """Resolve ``spec`` (a path to a .py file, a module name, or an object).

    Raises:
        InvalidOperationError: the file or module cannot be loaded (says which and why).
    """
    if not isinstance(spec, str):
        return getattr(spec, "__name__", type(spec).__name__), spec
    if spec.endswith(".py") or os.sep in spec:
        path = os.path.abspath(spec)
        name = os.path.splitext(os.path.basename(path))[0]
        module_spec = importlib.util.spec_from_file_location(f"lindbg_ext_{name}", path)
        if module_spec is None or module_spec.loader is None or not os.path.exists(path):
            raise InvalidOperationError(f"cannot load extension '{spec}': no such file")
        module: ModuleType = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except Exception as error:
            raise InvalidOperationError(f"cannot load extension '{spec}': {error}") from error
        return name, module
    try:
        return spec, importlib.import_module(spec)
    except ImportError as error:
        raise InvalidOperationError(f"cannot load extension '{spec}': {error}") from error
