"""Source-level benchmark: the first ``dv`` in a libc frame (libc's debug file
present) and line steps, lindbg against ``gdb -batch`` doing the same, whole-command
wall time (start, break, answer, quit), median of ``--rounds``.

The program sorts with ``qsort`` and a comparator of its own; both tools break in
the comparator, select the caller frame (``msort_with_tmp`` in libc) and list its
locals (``.frame 1; dv`` / ``frame 1; info locals``). The step workload breaks in
``main`` and steps five source lines (``l+t; p`` x5 / ``next`` x5). Figures, not
goals checked here.

Usage: ``python -m bench.source_level [--rounds N] [--quick]``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench.build import BUILD_DIR, rounds_argument, timed_command

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "source_level_results.json"

PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
static int calls;
int compare(const void *a, const void *b) {
    calls++;
    return *(const int *)a - *(const int *)b;
}
int main(void) {
    int values[64];
    for (int i = 0; i < 64; i++)
        values[i] = (i * 37) % 64;
    int first = values[0];
    int last = values[63];
    qsort(values, 64, sizeof *values, compare);
    printf("%d %d %d %d\n", first, last, values[0], calls);
    return 0;
}
"""


def build_program() -> Path:
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    source = BUILD_DIR / "srcbench.c"
    source.write_text(PROGRAM)
    program = BUILD_DIR / "srcbench"
    subprocess.run(["gcc", "-g", "-O0", "-no-pie", "-o", str(program), str(source)], check=True)
    return program


def workloads(program: Path) -> dict[str, tuple[list[str], list[str]]]:
    """label -> (gdb command, lindbg command)."""
    gdb = ["gdb", "-batch", "-nx", "-ex", "set pagination off"]
    lindbg = [sys.executable, "-m", "lindbg.cli.lindbg_main"]
    steps = 5
    return {
        "first dv in a libc frame (msort_with_tmp)": (
            [
                *gdb,
                "-ex",
                "break compare",
                "-ex",
                "run",
                "-ex",
                "frame 1",
                "-ex",
                "info locals",
                str(program),
            ],
            [*lindbg, "-c", "bp srcbench!compare; g; .frame 1; dv; q", str(program)],
        ),
        f"{steps} line steps from main (next / p in l+t)": (
            [*gdb, "-ex", "break main", "-ex", "run", *["-ex", "next"] * steps, str(program)],
            [*lindbg, "-c", "bp srcbench!main; g; l+t; " + "p; " * steps + "q", str(program)],
        ),
    }


def main(argv: list[str]) -> int:
    rounds = rounds_argument(argv, __doc__.splitlines()[0], 5)
    program = build_program()
    results = []
    print(f"{'workload':48} {'gdb -batch':>11} {'lindbg':>11} {'x gdb':>7}")
    for label, (gdb, lindbg) in workloads(program).items():
        timed_command(lindbg)  # once untimed: Python caches lindbg's bytecode, as it will for users
        gdb_times, lindbg_times = [], []
        for _ in range(rounds):
            gdb_times.append(timed_command(gdb))
            lindbg_times.append(timed_command(lindbg))
        gdb_s, lindbg_s = statistics.median(gdb_times), statistics.median(lindbg_times)
        print(f"{label:48} {gdb_s:10.2f}s {lindbg_s:10.2f}s {gdb_s / lindbg_s:6.2f}x")
        results.append({"workload": label, "gdb_s": gdb_s, "lindbg_s": lindbg_s, "rounds": rounds})
    print(f"(wall time of the whole command, median of {rounds}; x gdb > 1 means lindbg is faster)")
    RESULTS.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
