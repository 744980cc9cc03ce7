"""Module names as the command language spells them (DESIGN.md 6a).

cdb names a module after its file without the extension so that ``kernel32!CreateFileW``
can be typed; on Linux the "extension" is everything from the first dot
(``libc.so.6``), and characters an expression cannot hold become ``_``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection

_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")
_VDSO_NAMES = frozenset({"[vdso]", "linux-vdso.so.1", "linux-vdso.so", "linux-vdso"})


def module_name(path: str, taken: Collection[str] = ()) -> str:
    """DESIGN 6a: file name up to the first dot, every char not [A-Za-z0-9_] -> "_";
    "libc.so.6" -> "libc", "ld-linux-x86-64.so.2" -> "ld_linux_x86_64", "libstdc++.so.6"
    -> "libstdc__", "[vdso]"/"linux-vdso.so.1" -> "linux_vdso"; made unique against
    `taken` with a suffix "_2", "_3"...

    Uniqueness ignores case, because symbol expressions do (``LIBC!malloc`` is
    ``libc!malloc``). A pseudo-path such as ``[heap]`` loses its brackets; a name that
    would be empty (``.hidden``) uses the whole file name, and failing that ``module``.
    """
    base = os.path.basename(path.rstrip("/")) or path
    if base in _VDSO_NAMES:
        stem = "linux_vdso"
    else:
        if base.startswith("[") and base.endswith("]"):
            base = base[1:-1]
        stem = base.split(".", 1)[0] or base.strip(".")
        stem = _NOT_NAME.sub("_", stem) or "module"
    used = {name.lower() for name in taken}
    if stem.lower() not in used:
        return stem
    suffix = 2
    while f"{stem}_{suffix}".lower() in used:
        suffix += 1
    return f"{stem}_{suffix}"
