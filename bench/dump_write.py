"""Core-writing benchmark: lindbg's ``snapshot`` + ``write_core`` (default filter)
against gdb's ``gcore``, on two instances of the test fixture ``crasher`` that
touched ``--mib`` MiB of heap and parked (``crasher MIB wait``).

lindbg runs in this process on a target stopped at ``park_main`` (as ``.dump`` runs
in a debugger that is already attached); gdb attaches to the other instance, which
nobody traces. gdb's time is its ``gcore`` command alone, timed inside gdb, and the
whole ``gdb -batch -p PID -ex gcore`` command beside it. Each round alternates the
two, deletes the cores and ``sync``s between runs (outside the timed regions), so
one run's writeback does not slow the next. Median of ``--rounds``; MB/s is the
core's size over the time. Figures, not goals checked here.

Usage: ``python -m bench.dump_write [--rounds N] [--mib N] [--dir DIR] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.dump_open import build_crasher
from lindbg.formats.corewriter import write_core
from lindbg.targets.base import EventKind, ResumeMode
from lindbg.targets.live.snapshot import memory_reader, snapshot
from lindbg.targets.live.target import LiveTarget

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "dump_write_results.json"
#: The gdb session: its own clock around gcore, printed as "GCORE seconds".
GDB_COMMANDS = [
    "python import time; start = time.perf_counter()",
    "gcore {core}",
    'python print("GCORE", time.perf_counter() - start)',
]


def _symbol(program: Path, name: str) -> int:
    listing = subprocess.run(["nm", str(program)], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise RuntimeError(f"no symbol {name} in {program}")


def stopped_crasher(target: LiveTarget, program: Path, mib: int) -> int:
    """Launch the crasher under ``target`` and run it to park_main; its pid."""
    with open(os.devnull, "wb") as null:
        pid = target.launch([str(program), str(mib), "wait"], None, None, (None, null.fileno(), None))
    target.claim_site(pid, _symbol(program, "park_main"), owner=object())
    target.resume(ResumeMode.CONTINUE, pid, 0)
    while True:
        event = target.wait_event()
        if event is None or event.kind is EventKind.PROCESS_GONE:
            raise RuntimeError("the crasher ended before park_main")
        if event.kind is EventKind.BREAKPOINT:
            return pid
        target.resume(ResumeMode.CONTINUE, event.tid, 0)


def free_crasher(program: Path, mib: int) -> subprocess.Popen[str]:
    """Start the crasher with no tracer and wait until every thread is parked."""
    process = subprocess.Popen([str(program), str(mib), "wait"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("ready"):
        process.kill()
        raise RuntimeError(f"the crasher did not start: {line!r}")
    return process


def time_lindbg(target: LiveTarget, pid: int, core: Path) -> tuple[float, int]:
    """(seconds, core size) of one snapshot + write_core."""
    start = time.perf_counter()
    image = snapshot(target, pid, full=False, current_tid=pid)
    write_core(image, str(core), memory_reader(target, pid))
    return time.perf_counter() - start, core.stat().st_size


def time_gdb(pid: int, core: Path) -> tuple[float, float, int]:
    """(gcore seconds, whole command seconds, core size) of one gdb run."""
    command = ["gdb", "-batch", "-nx", "-p", str(pid)]
    for line in GDB_COMMANDS:
        command += ["-ex", line.format(core=core)]
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    whole = time.perf_counter() - start
    timed = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("GCORE ")]
    if run.returncode != 0 or not timed or not core.exists():
        raise RuntimeError(f"gdb gcore failed: {(run.stdout + run.stderr).strip()[-300:]}")
    return float(timed[0]), whole, core.stat().st_size


def _settled(run: Callable[[], tuple[float, ...]], core: Path) -> tuple[float, ...]:
    """Run one timed write, then delete its core and flush (outside the timing)."""
    os.sync()
    try:
        return run()
    finally:
        core.unlink(missing_ok=True)
        os.sync()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mib", type=int, default=1024, help="heap the crasher touches")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the cores are written")
    parser.add_argument("--quick", action="store_true", help="one round, 64 MiB")
    args = parser.parse_args(argv)
    rounds, mib = (1, 64) if args.quick else (args.rounds, args.mib)
    program = build_crasher()
    target = LiveTarget()
    free = free_crasher(program, mib)
    lindbg_runs: list[tuple[float, ...]] = []
    gdb_runs: list[tuple[float, ...]] = []
    try:
        pid = stopped_crasher(target, program, mib)
        with tempfile.TemporaryDirectory(prefix="lindbg-bench-dump-", dir=args.dir) as scratch:
            core = Path(scratch) / "core"
            for _ in range(rounds):
                lindbg_runs.append(_settled(lambda: time_lindbg(target, pid, core), core))
                gdb_runs.append(_settled(lambda: time_gdb(free.pid, core), core))
    finally:
        target.terminate_all()
        free.kill()
        free.wait()
    return _report(mib, rounds, lindbg_runs, gdb_runs)


Runs = list[tuple[float, ...]]


def _report(mib: int, rounds: int, lindbg_runs: Runs, gdb_runs: Runs) -> int:
    lindbg_s = statistics.median(run[0] for run in lindbg_runs)
    gcore_s = statistics.median(run[0] for run in gdb_runs)
    command_s = statistics.median(run[1] for run in gdb_runs)
    lindbg_mb, gdb_mb = lindbg_runs[0][-1] / 1e6, gdb_runs[0][-1] / 1e6
    label = f"core of a process with {mib} MiB of heap"
    print(f"{'workload':40} {'gdb gcore':>16} {'(whole gdb -p)':>15} {'lindbg':>16} {'x gcore':>8}")
    print(
        f"{label:40} {gcore_s:6.2f}s {gdb_mb / gcore_s:5.0f}MB/s {command_s:14.2f}s "
        f"{lindbg_s:6.2f}s {lindbg_mb / lindbg_s:5.0f}MB/s {gcore_s / lindbg_s:7.2f}x"
    )
    print(
        f"(median of {rounds}; cores {lindbg_mb:.0f} MB (lindbg) and {gdb_mb:.0f} MB (gdb); "
        "x gcore > 1 means lindbg is faster)"
    )
    results = {
        "workload": label,
        "rounds": rounds,
        "lindbg_s": lindbg_s,
        "lindbg_core_bytes": lindbg_runs[0][-1],
        "gcore_s": gcore_s,
        "gdb_command_s": command_s,
        "gdb_core_bytes": gdb_runs[0][-1],
        "lindbg_runs": lindbg_runs,
        "gdb_runs": gdb_runs,
    }
    RESULTS.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
