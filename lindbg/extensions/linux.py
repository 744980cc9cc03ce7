"""The built-in Linux extension: what the system knows of the current process.

``!maps`` (its mappings, with the lindbg module each belongs to), ``!fds`` (open file
descriptors), ``!auxv`` (the auxiliary vector) and ``!signals`` (the current thread's
blocked, ignored, caught and pending signals). Everything comes through the client
(``memory_map``, ``open_files``, ``auxv``, ``signal_state``), so the commands work on
whatever the target is: a live process, a core (its segments and notes), a process
server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lindbg.commands.formatting import addr17
from lindbg.constants import OutputMask
from lindbg.errors import LindbgError
from lindbg.os.linux.signals import signal_name

if TYPE_CHECKING:
    from lindbg.engine.client import DebugClient

#: AT_* numbers of linux/auxvec.h and asm/auxvec.h (x86_64).
AT_NAMES: dict[int, str] = {
    0: "AT_NULL", 1: "AT_IGNORE", 2: "AT_EXECFD", 3: "AT_PHDR", 4: "AT_PHENT", 5: "AT_PHNUM",
    6: "AT_PAGESZ", 7: "AT_BASE", 8: "AT_FLAGS", 9: "AT_ENTRY", 10: "AT_NOTELF", 11: "AT_UID",
    12: "AT_EUID", 13: "AT_GID", 14: "AT_EGID", 15: "AT_PLATFORM", 16: "AT_HWCAP", 17: "AT_CLKTCK",
    18: "AT_FPUCW", 19: "AT_DCACHEBSIZE", 20: "AT_ICACHEBSIZE", 21: "AT_UCACHEBSIZE",
    22: "AT_IGNOREPPC", 23: "AT_SECURE", 24: "AT_BASE_PLATFORM", 25: "AT_RANDOM", 26: "AT_HWCAP2",
    27: "AT_RSEQ_FEATURE_SIZE", 28: "AT_RSEQ_ALIGN", 29: "AT_HWCAP3", 30: "AT_HWCAP4",
    31: "AT_EXECFN", 32: "AT_SYSINFO", 33: "AT_SYSINFO_EHDR", 51: "AT_MINSIGSTKSZ",
}  # fmt: skip
#: Entries whose value is a count or an id: shown in decimal.
_DECIMAL = frozenset({4, 5, 6, 11, 12, 13, 14, 17, 23, 27, 28, 51})
#: Entries whose value points at a NUL-terminated string: the string is shown too.
_STRINGS = frozenset({15, 24, 31})
#: Signals the kernel knows (1..64); glibc reserves 32 and 33.
_SIGNAL_COUNT = 64
_SIGRTMIN = 34


def _say(client: DebugClient, text: str) -> None:
    client.output(OutputMask.NORMAL, text if text.endswith("\n") else text + "\n")


# ------------------------------------------------------------------- !maps


def maps(client: DebugClient, args: str) -> None:
    """Mappings of the current process, one line per mapping, with its module's name."""
    pid = client.current_thread().pid
    regions = client.memory_map(pid)
    modules = client.modules(pid)
    named = [
        (region, next((m.name for m in modules if m.base <= region.start < m.end), "")) for region in regions
    ]
    width = max([len("Module"), *(len(module) for _, module in named)])
    _say(client, f"{'Start':<17} {'End':<17} Perm {'Offset':<8} {'Module':<{width}}  Path")
    for region, module in named:
        line = (
            f"{addr17(region.start)} {addr17(region.end)} {region.permissions} {region.offset:08x}"
            f" {module:<{width}}  {region.path}"
        )
        _say(client, line.rstrip())


# -------------------------------------------------------------------- !fds


def fds(client: DebugClient, args: str) -> None:
    """Each open file descriptor and what it refers to."""
    found = client.open_files()
    _say(client, "  fd  target")
    for number, target in found:
        _say(client, f"{number:4d}  {target}")


# ------------------------------------------------------------------- !auxv


def _string_at(client: DebugClient, address: int, limit: int = 4096) -> str | None:
    """The NUL-terminated string at ``address`` (read up to a page end first), or None."""
    data = b""
    while len(data) < limit:
        here = address + len(data)
        chunk = min(256, 4096 - here % 4096)
        try:
            piece = client.read_memory(here, chunk)
        except LindbgError:
            return None
        nul = piece.find(b"\0")
        if nul >= 0:
            return (data + piece[:nul]).decode("utf-8", "replace")
        data += piece
    return data.decode("utf-8", "replace")


def auxv(client: DebugClient, args: str) -> None:
    """The auxiliary vector the kernel gave the program (AT_ name, value)."""
    entries = client.auxv()
    for key, value in entries.items():
        name = AT_NAMES.get(key, f"AT_{key}")
        if key in _DECIMAL:
            shown = str(value)
        else:
            shown = f"{value:#x}"
            if key in _STRINGS:
                string = _string_at(client, value)
                if string is not None:
                    shown += f' "{string}"'
        _say(client, f"{name:<22} {key:3d}  {shown}")


# ---------------------------------------------------------------- !signals


def _signal_label(signo: int) -> str:
    if signo < 32 or signo in (_SIGRTMIN, _SIGNAL_COUNT):
        return signal_name(signo) if signo < 32 else ("SIGRTMIN" if signo == _SIGRTMIN else "SIGRTMAX")
    if signo > _SIGRTMIN:
        return f"SIGRTMIN+{signo - _SIGRTMIN}"
    return f"SIG{signo}"


def signals(client: DebugClient, args: str) -> None:
    """[-a] Blocked, ignored, caught and pending signals of the current thread.

    Pending is per thread or for the whole process. Signals 1-31 always show; real-time
    ones when a column is set (``-a``: all 64).
    """
    state = client.signal_state()
    blocked, ignored, caught = state.blocked, state.ignored, state.caught
    pending, shared = state.pending, state.shared_pending
    show_all = "-a" in args.split()
    _say(client, " Sig Name            Blocked Ignored Caught  Pending")
    for signo in range(1, _SIGNAL_COUNT + 1):
        bit = 1 << (signo - 1)
        flags = (blocked & bit, ignored & bit, caught & bit, (pending | shared) & bit)
        if signo >= 32 and not show_all and not any(flags):
            continue
        marks = ["yes" if flag else "-" for flag in flags[:3]]
        waiting = "thread" if pending & bit else ("process" if shared & bit else "-")
        label = _signal_label(signo)
        _say(client, f"{signo:4d} {label:<15} {marks[0]:<7} {marks[1]:<7} {marks[2]:<7} {waiting}".rstrip())


# ------------------------------------------------------------------- !help


def help_(client: DebugClient, args: str) -> None:
    """This extension's commands."""
    for name, function in commands.items():
        doc = (function.__doc__ or "").strip().splitlines()
        _say(client, f"!{name:<8} {doc[0] if doc else ''}".rstrip())


commands: dict[str, Callable[[DebugClient, str], None]] = {
    "maps": maps,
    "fds": fds,
    "auxv": auxv,
    "signals": signals,
    "help": help_,
}
