"""Small /proc readers: threads of a process, signal dispositions, state."""

from __future__ import annotations

import os
import struct


def thread_ids(pid: int) -> list[int]:
    """The thread ids of ``pid`` from /proc/PID/task (leader first)."""
    tids = sorted(int(name) for name in os.listdir(f"/proc/{pid}/task"))
    if pid in tids:
        tids.remove(pid)
        tids.insert(0, pid)
    return tids


def status_fields(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict of its ``Key:\tvalue`` lines."""
    fields: dict[str, str] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def signal_is_caught_or_ignored(pid: int, signo: int) -> bool:
    """True if ``pid`` has a handler for ``signo`` or ignores it."""
    try:
        fields = status_fields(pid)
    except OSError:
        return False
    bit = 1 << (signo - 1)
    return bool((int(fields.get("SigCgt", "0"), 16) | int(fields.get("SigIgn", "0"), 16)) & bit)


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


def auxv(pid: int) -> dict[int, int]:
    """The auxiliary vector of ``pid`` (AT_* -> value), from /proc/PID/auxv."""
    with open(f"/proc/{pid}/auxv", "rb") as f:
        data = f.read()
    entries: dict[int, int] = {}
    for key, value in struct.iter_unpack("<QQ", data[: len(data) // 16 * 16]):
        if key == 0:
            break
        entries[key] = value
    return entries


def mapping_path_at(pid: int, address: int) -> str:
    """The file mapped at ``address`` in ``pid`` (the path column of /proc/PID/maps), or ''."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                fields = line.split(maxsplit=5)
                start, _, end = fields[0].partition("-")
                if int(start, 16) <= address < int(end, 16):
                    return fields[5].strip() if len(fields) == 6 else ""
    except OSError:
        pass
    return ""


def task_details(pid: int, tid: int) -> tuple[str, int, int, int]:
    """(comm, nice, scheduling policy, CPU affinity mask) of thread ``tid``.

    Raises:
        OSError: the thread is gone.
    """
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        stat = f.read()
    # comm is in parentheses and may itself hold ')' or blanks: split after the last one
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    nice, policy = int(fields[16]), int(fields[38])  # stat fields 19 and 41
    affinity = sum(1 << cpu for cpu in os.sched_getaffinity(tid))
    return comm, nice, policy, affinity
