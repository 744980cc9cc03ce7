"""Symbols benchmark: launch to the first stop at a named function, and a deep
stack walk, lindbg against `gdb -batch` doing the same, in one run.

Each measurement is a whole command's wall time (interpreter or gdb start-up,
symbol loading, launch, breakpoint, stop), median of ``--rounds``; lindbg's
own stack-walk time is reported beside it. Figures, not goals checked here.

Usage: ``python -m bench.symbols [--rounds N] [--quick]``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.build import BUILD_DIR, python_environment, rounds_argument

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "symbols_results.json"
PYTHON3 = "/usr/bin/python3"

RECURSION = r"""
#include <stdio.h>
__attribute__((noinline)) int leaf(int x) { return x + 1; }
__attribute__((noinline)) int recurse(int depth) {
    if (depth == 0) return leaf(0);
    return recurse(depth - 1) + 1;
}
int main(int argc, char **argv) { printf("%d\n", recurse(argc > 1 ? 200 : 200)); return 0; }
"""

#: What one lindbg run does; prints the time stack() took after the stop.
LINDBG_SCRIPT = r"""
import subprocess, sys, time
from lindbg import DebugClient, EndFlags, Status
program, symbol, want_stack = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
client = DebugClient()
client.create_process([program], stdout=subprocess.DEVNULL)
client.add_breakpoint(symbol)
client.set_execution_status(Status.GO)
client.wait_for_event(timeout=60)
if want_stack:
    t0 = time.perf_counter()
    frames = client.stack(max_frames=1000)  # cold: libc's symbols, debug file and CFI load here
    t1 = time.perf_counter()
    client.stack(max_frames=1000)  # warm: what every later `k` costs
    print("STACK", len(frames), t1 - t0, time.perf_counter() - t1)
client.end_session(EndFlags.ACTIVE_TERMINATE)
"""


def _timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, env=python_environment()
    )
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {run.stderr.strip()[-300:]}")
    return elapsed, run.stdout


def _gdb(program: str, symbol: str, backtrace: bool) -> list[str]:
    command = ["gdb", "-batch", "-nx", "-ex", f"break {symbol}", "-ex", "run"]
    if backtrace:
        command += ["-ex", "set backtrace limit 1000", "-ex", "bt"]
    return [*command, "-ex", "kill", program]


def _lindbg(program: str, symbol: str, backtrace: bool) -> list[str]:
    return [sys.executable, "-c", LINDBG_SCRIPT, program, symbol, "1" if backtrace else "0"]


def _build_recursion() -> str:
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    source = BUILD_DIR / "recursion.c"
    source.write_text(RECURSION)
    program = BUILD_DIR / "recursion"
    subprocess.run(["gcc", "-g", "-O0", "-o", str(program), str(source)], check=True)
    return str(program)


def main(argv: list[str]) -> int:
    rounds = rounds_argument(argv, __doc__.splitlines()[0], 3)
    recursion = _build_recursion()
    cases = [
        ("first stop at Py_BytesMain, python3", PYTHON3, "Py_BytesMain", False),
        ("first stop at main, -g fixture", recursion, "main", False),
        ("stop + 200-deep stack walk", recursion, "leaf", True),
    ]
    results = []
    print(f"{'workload':40} {'gdb -batch':>11} {'lindbg':>11} {'x gdb':>7}  lindbg stack()")
    for label, program, symbol, backtrace in cases:
        gdb_times: list[float] = []
        lindbg_times: list[float] = []
        stack_times: list[tuple[float, float]] = []
        depth = 0
        for _ in range(rounds):
            gdb_times.append(_timed(_gdb(program, symbol, backtrace))[0])
            elapsed, output = _timed(_lindbg(program, symbol, backtrace))
            lindbg_times.append(elapsed)
            for line in output.splitlines():
                if line.startswith("STACK"):
                    _, frames, cold, warm = line.split()
                    depth = int(frames)
                    stack_times.append((float(cold), float(warm)))
        gdb_s, lindbg_s = statistics.median(gdb_times), statistics.median(lindbg_times)
        stack = ""
        if stack_times:
            cold = statistics.median(t[0] for t in stack_times) * 1000
            warm = statistics.median(t[1] for t in stack_times) * 1000
            stack = f"{depth} frames: {cold:.0f} ms cold, {warm:.1f} ms warm"
        print(f"{label:40} {gdb_s:10.2f}s {lindbg_s:10.2f}s {gdb_s / lindbg_s:6.2f}x  {stack}")
        results.append(
            {"workload": label, "gdb_s": gdb_s, "lindbg_s": lindbg_s, "stack_ms": stack, "rounds": rounds}
        )
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"(wall time of the whole command, median of {rounds}; x gdb > 1 means lindbg is faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
