"""gdb scripts for the three workloads (run as ``gdb -batch -nx -x FILE.py``).

Each is a Python file for gdb's embedded interpreter, so gdb reads no command
lines while the inferior runs (a CLI command file lost characters here now
and then). Each starts the target with ``starti``, so start-up is outside the
timed region, and prints the ``BENCH_RESULT`` line of ``bench.protocol``.
"""

from __future__ import annotations

PROLOGUE = """import json, time
for setting in ("pagination off", "confirm off", "startup-with-shell off", "width 0"):
    gdb.execute("set " + setting)
try:
    gdb.execute("set debuginfod enabled off")
except gdb.error:
    pass
gdb.execute("file {target}")
gdb.execute("set args {args}")
gdb.execute("starti")
"""

RESULT = 'print("BENCH_RESULT " + json.dumps({{"count": {count}, "seconds": t1 - t0}}))\n'


def hits_script(target: str, addr: int, n: int) -> str:
    """A breakpoint with ``commands silent continue end``, timed from the first hit to the exit.

    The first hit stops (plain breakpoint); the commands are attached there,
    so the N-1 hits after it are timed, as in the other tools.
    """
    return (
        PROLOGUE.format(target=target, args=n)
        + f'bp = gdb.Breakpoint("*{addr:#x}")\n'
        + 'gdb.execute("continue")\n'
        + 'bp.commands = "silent\\ncontinue"\n'
        + "t0 = time.perf_counter()\n"
        + 'gdb.execute("continue")\n'
        + "t1 = time.perf_counter()\n"
        + RESULT.format(count="bp.hit_count - 1")
    )


def steps_script(target: str, addr: int, steps: int) -> str:
    """Run to ``addr`` (step_region), delete the breakpoint, time ``stepi STEPS``."""
    return (
        PROLOGUE.format(target=target, args=steps)
        + f'bp = gdb.Breakpoint("*{addr:#x}")\n'
        + 'gdb.execute("continue")\n'
        + "bp.delete()\n"
        + "t0 = time.perf_counter()\n"
        + f'gdb.execute("stepi {steps}")\n'
        + "t1 = time.perf_counter()\n"
        + RESULT.format(count=steps)
        + 'gdb.execute("kill")\n'
    )


def memory_script(target: str, ready: int, ptr_addr: int, mib: int, passes: int) -> str:
    """Run to ``ready``; time ``passes`` x ``dump binary memory /dev/null`` of the buffer."""
    size = mib << 20
    return (
        PROLOGUE.format(target=target, args=mib)
        + f'bp = gdb.Breakpoint("*{ready:#x}")\n'
        + 'gdb.execute("continue")\n'
        + "bp.delete()\n"
        + f'buf = int.from_bytes(bytes(gdb.selected_inferior().read_memory({ptr_addr:#x}, 8)), "little")\n'
        + f'dump = "dump binary memory /dev/null %d %d" % (buf, buf + {size})\n'
        + "t0 = time.perf_counter()\n"
        + f"for _ in range({passes}):\n    gdb.execute(dump)\n"
        + "t1 = time.perf_counter()\n"
        + RESULT.format(count=passes * size / 1e6)
        + 'gdb.execute("kill")\n'
    )
