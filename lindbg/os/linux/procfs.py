"""Small /proc readers: threads of a process, signal dispositions, state,
memory mappings, and what a core file's notes record about a process.

Text that holds file names (maps, cmdline) is decoded with ``surrogateescape``,
so a name that is not UTF-8 survives the round trip back to bytes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from lindbg.formats.elfdefs import AT_NULL, AUXV_ENTRY


def thread_ids(pid: int) -> list[int]:
    """The thread ids of ``pid`` from /proc/PID/task (leader first)."""
    tids = sorted(int(name) for name in os.listdir(f"/proc/{pid}/task"))
    if pid in tids:
        tids.remove(pid)
        tids.insert(0, pid)
    return tids


def status_fields(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict of its ``Key:\tvalue`` lines."""
    return _status_file(f"/proc/{pid}/status")


def _status_file(path: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def task_status_fields(pid: int, tid: int) -> dict[str, str]:
    """/proc/PID/task/TID/status as a dict (a thread's own signal masks are there).

    Raises:
        OSError: the thread is gone.
    """
    return _status_file(f"/proc/{pid}/task/{tid}/status")


def open_files(pid: int) -> list[tuple[int, str]]:
    """(descriptor, what /proc/PID/fd/N links to) by descriptor; a descriptor closed
    while it is read, or unreadable, shows ``<reason>``.

    Raises:
        OSError: the process is gone.
    """
    directory = f"/proc/{pid}/fd"
    found = []
    for number in sorted(int(name) for name in os.listdir(directory) if name.isdigit()):
        try:
            target = os.readlink(f"{directory}/{number}")
        except OSError as error:
            target = f"<{error.strerror or error}>"
        found.append((number, target))
    return found


def maps(pid: int) -> list[tuple[int, int, str, int, str]]:
    """(start, end, perms, offset, path) of each line of /proc/PID/maps.

    Raises:
        OSError: the process is gone.
    """
    with open(f"/proc/{pid}/maps", errors="surrogateescape") as f:
        return [
            (start, end, perms, offset, path) for start, end, perms, offset, _, path in map(_maps_line, f)
        ]


def signal_is_caught_or_ignored(pid: int, signo: int) -> bool:
    """True if ``pid`` has a handler for ``signo`` or ignores it."""
    try:
        fields = status_fields(pid)
    except OSError:
        return False
    bit = 1 << (signo - 1)
    return bool((int(fields.get("SigCgt", "0"), 16) | int(fields.get("SigIgn", "0"), 16)) & bit)


def pending_signals(tid: int) -> int:
    """The signals queued for thread ``tid`` alone (SigPnd: bit N-1 is signal N);
    0 when the thread is gone."""
    try:
        return int(status_fields(tid).get("SigPnd", "0"), 16)
    except (OSError, ValueError):
        return 0


def process_exists(pid: int) -> bool:
    """True while /proc/PID exists (a zombie counts as existing)."""
    return os.path.exists(f"/proc/{pid}")


def executable(pid: int) -> str:
    """The path of the program ``pid`` runs, or '' if it cannot be read."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def parent_pid(pid: int) -> int:
    """The parent pid of ``pid`` (0 if it cannot be read)."""
    try:
        return int(status_fields(pid).get("PPid", "0"))
    except (OSError, ValueError):
        return 0


def auxv_bytes(pid: int) -> bytes:
    """/proc/PID/auxv as the kernel gives it (what a core's NT_AUXV holds)."""
    with open(f"/proc/{pid}/auxv", "rb") as f:
        return f.read()


def auxv(pid: int) -> dict[int, int]:
    """The auxiliary vector of ``pid`` (AT_* -> value), from /proc/PID/auxv."""
    data = auxv_bytes(pid)
    entries: dict[int, int] = {}
    for key, value in AUXV_ENTRY.iter_unpack(data[: len(data) - len(data) % AUXV_ENTRY.size]):
        if key == AT_NULL:
            break
        entries[key] = value
    return entries


def mapping_path_at(pid: int, address: int) -> str:
    """The file mapped at ``address`` in ``pid`` (the path column of /proc/PID/maps), or ''."""
    try:
        regions = maps(pid)
    except OSError:
        return ""
    return next((path for start, end, _, _, path in regions if start <= address < end), "")


def task_details(pid: int, tid: int) -> tuple[str, int, int, int]:
    """(comm, nice, scheduling policy, CPU affinity mask) of thread ``tid``.

    Raises:
        OSError: the thread is gone.
    """
    comm, fields = _read_stat(f"/proc/{pid}/task/{tid}/stat")
    nice, policy = int(fields[16]), int(fields[38])  # stat fields 19 and 41
    affinity = sum(1 << cpu for cpu in os.sched_getaffinity(tid))
    return comm, nice, policy, affinity


def _read_stat(path: str) -> tuple[str, list[str]]:
    """(comm, the fields after it) of a /proc stat file; ``fields[0]`` is the state.

    comm is in parentheses and may itself hold ')' or blanks: the fields start
    after the last ')'.
    """
    with open(path, errors="surrogateescape") as f:
        stat = f.read()
    close = stat.rindex(")")
    return stat[stat.index("(") + 1 : close], stat[close + 2 :].split()


@dataclass(frozen=True, slots=True)
class ProcessStat:
    """The fields of /proc/PID/stat a core's NT_PRPSINFO records."""

    comm: str
    #: One letter: R, S, D, T, t (traced), Z ...
    state: str
    ppid: int
    pgrp: int
    session: int
    #: The kernel's task flags (PF_*).
    flags: int
    nice: int


def process_stat(pid: int) -> ProcessStat:
    """/proc/PID/stat, parsed.

    Raises:
        OSError: the process is gone.
    """
    comm, fields = _read_stat(f"/proc/{pid}/stat")
    # fields[i] is stat field i + 3 (man 5 proc): ppid 4, pgrp 5, session 6, flags 9, nice 19
    return ProcessStat(
        comm, fields[0], int(fields[1]), int(fields[2]), int(fields[3]), int(fields[6]), int(fields[16])
    )


def real_ids(pid: int) -> tuple[int, int]:
    """The real (uid, gid) of ``pid``, the first column of status's Uid/Gid lines.

    Raises:
        OSError: the process is gone.
    """
    fields = status_fields(pid)
    return int(fields["Uid"].split()[0]), int(fields["Gid"].split()[0])


def command_line(pid: int) -> list[str]:
    """The arguments of ``pid`` (/proc/PID/cmdline split at its NULs); [] for a kernel thread.

    Raises:
        OSError: the process is gone.
    """
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        data = f.read()
    return [arg.decode(errors="surrogateescape") for arg in data.split(b"\0")[:-1]] if data else []


@dataclass(frozen=True, slots=True)
class MemoryMapping:
    """One mapping of /proc/PID/smaps: its maps line and the counters that say
    whether the program wrote to it."""

    start: int
    end: int
    #: As in maps: 'r-xp', 'rw-s' ...
    perms: str
    offset: int
    inode: int
    #: '' for anonymous memory; '[heap]', '[stack]', '[vdso]', '[anon:NAME]' ... as in
    #: maps; a file's path may end in ' (deleted)'.
    path: str
    #: Bytes of anonymous pages (resident or swapped): a private file mapping has
    #: some once the program wrote to it. None when smaps does not say.
    anonymous: int | None
    #: The two-letter VmFlags codes ('dd' do not dump, 'io', 'pf', 'ht' hugetlb ...);
    #: empty when smaps does not list them.
    vm_flags: frozenset[str]


def memory_mappings(pid: int) -> list[MemoryMapping]:
    """Every mapping of ``pid``, in address order, from /proc/PID/smaps.

    Raises:
        OSError: the process is gone.
    """
    mappings: list[MemoryMapping] = []
    with open(f"/proc/{pid}/smaps", errors="surrogateescape") as f:
        header: tuple[int, int, str, int, int, str] | None = None
        counters: dict[str, str] = {}
        for line in f:
            key, colon, value = line.partition(":")
            if colon and key.isidentifier():
                counters[key] = value
                continue
            if header is not None:
                mappings.append(_smaps_entry(header, counters))
            header, counters = _maps_line(line), {}
        if header is not None:
            mappings.append(_smaps_entry(header, counters))
    return mappings


def _maps_line(line: str) -> tuple[int, int, str, int, int, str]:
    """(start, end, perms, offset, inode, path) of one /proc/PID/maps line."""
    fields = line.rstrip("\n").split(maxsplit=5)
    start, _, end = fields[0].partition("-")
    path = fields[5] if len(fields) == 6 else ""
    return int(start, 16), int(end, 16), fields[1], int(fields[2], 16), int(fields[4]), path


def _smaps_entry(header: tuple[int, int, str, int, int, str], counters: dict[str, str]) -> MemoryMapping:
    anonymous = None
    if "Anonymous" in counters:
        anonymous = sum(_kilobytes(counters.get(key, "0 kB")) for key in ("Anonymous", "Swap"))
    flags = frozenset(counters.get("VmFlags", "").split())
    return MemoryMapping(*header, anonymous=anonymous, vm_flags=flags)


def _kilobytes(value: str) -> int:
    """Bytes of an smaps counter such as ' 1024 kB'."""
    return int(value.split()[0]) * 1024


_SECRET_VALUE = re.compile(rb"(password=)[^,\x00]*", re.IGNORECASE)


def _stars(match: re.Match[bytes]) -> bytes:
    return match.group(1) + b"*" * (len(match.group(0)) - len(match.group(1)))


def hide_own_passwords() -> bool:
    """Overwrite every ``password=VALUE`` in this process's own command line (what
    ``ps`` and /proc/PID/cmdline show) with ``*`` of the same length; True if one was
    there. The kernel reads the command line from the process's memory, between
    arg_start and arg_end of /proc/self/stat, so writing there is what ps then shows."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rindex(b")") + 2 :].split()
        start, end = int(fields[45]), int(fields[46])  # fields 48 and 49 of stat(5)
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            area = mem.read(end - start)
            hidden = _SECRET_VALUE.sub(
                lambda m: m.group(1) + b"*" * (len(m.group(0)) - len(m.group(1))), area
            )
            if hidden == area:
                return False
            mem.seek(start)
            mem.write(hidden)
            return True
    except (OSError, ValueError, IndexError):
        return False  # a kernel without these files: nothing we can hide
