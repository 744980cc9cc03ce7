"""The built-in Linux extension: what /proc says about the current process.

``!maps`` (its mappings, with the lindbg module each belongs to), ``!fds`` (open file
descriptors), ``!auxv`` (the auxiliary vector) and ``!signals`` (the current thread's
blocked, ignored, caught and pending signals). The files are read from the debugger's
side (no ptrace); strings the auxiliary vector points at are read through the client.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from lindbg.commands.formatting import addr17
from lindbg.constants import OutputMask
from lindbg.errors import LindbgError, TargetAccessError
from lindbg.os.linux import procfs
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


def _current(client: DebugClient) -> tuple[int, int]:
    """(pid, tid) of the current thread; NoDebuggeeError without a target."""
    thread = client.current_thread()
    return thread.pid, thread.tid


def _read_proc(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError as error:
        raise TargetAccessError(f"cannot read {path}: {error.strerror or error}") from error


# ------------------------------------------------------------------- !maps


def maps(client: DebugClient, args: str) -> None:
    """Mappings from /proc/PID/maps, one line per mapping, with its module's name."""
    pid, _ = _current(client)
    text = _read_proc(f"/proc/{pid}/maps")
    modules = client.modules(pid)
    rows: list[tuple[int, int, str, str, str, str]] = []
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 5:
            continue
        start_text, _, end_text = fields[0].partition("-")
        start, end = int(start_text, 16), int(end_text, 16)
        path = fields[5].strip() if len(fields) == 6 else ""
        module = next((m.name for m in modules if m.base <= start < m.end), "")
        rows.append((start, end, fields[1], fields[2], module, path))
    width = max([len("Module"), *(len(row[4]) for row in rows)])
    _say(client, f"{'Start':<17} {'End':<17} Perm {'Offset':<8} {'Module':<{width}}  Path")
    for start, end, perms, offset, module, path in rows:
        line = f"{addr17(start)} {addr17(end)} {perms} {int(offset, 16):08x} {module:<{width}}  {path}"
        _say(client, line.rstrip())


# -------------------------------------------------------------------- !fds


def fds(client: DebugClient, args: str) -> None:
    """Each open file descriptor and what /proc/PID/fd says it refers to."""
    pid, _ = _current(client)
    directory = f"/proc/{pid}/fd"
    try:
        numbers = sorted(int(name) for name in os.listdir(directory) if name.isdigit())
    except OSError as error:
        raise TargetAccessError(f"cannot read {directory}: {error.strerror or error}") from error
    _say(client, "  fd  target")
    for number in numbers:
        try:
            target = os.readlink(f"{directory}/{number}")
        except OSError as error:  # closed meanwhile, or unreadable
            target = f"<{error.strerror or error}>"
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
    pid, _ = _current(client)
    try:
        entries = procfs.auxv(pid)
    except OSError as error:
        raise TargetAccessError(f"cannot read /proc/{pid}/auxv: {error.strerror or error}") from error
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


def _status_of(pid: int, tid: int) -> dict[str, str]:
    fields: dict[str, str] = {}
    path = f"/proc/{pid}/task/{tid}/status"
    for line in _read_proc(path).splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def signals(client: DebugClient, args: str) -> None:
    """[-a] Blocked, ignored, caught and pending signals of the current thread.

    From /proc/PID/task/TID/status: blocked (SigBlk), ignored (SigIgn), caught (SigCgt),
    pending (SigPnd for the thread, ShdPnd for the whole process). Signals 1-31 always
    show; real-time ones when a column is set (``-a``: all 64).
    """
    pid, tid = _current(client)
    fields = _status_of(pid, tid)

    def mask(key: str) -> int:
        try:
            return int(fields.get(key, "0"), 16)
        except ValueError:
            return 0

    blocked, ignored, caught = mask("SigBlk"), mask("SigIgn"), mask("SigCgt")
    pending, shared = mask("SigPnd"), mask("ShdPnd")
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
