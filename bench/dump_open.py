"""Crash-dump benchmark: open a kernel core and print every thread's stack,
lindbg (`lindbg -z CORE -c "~* k"`) against `gdb -batch -ex "thread apply all
bt"` on the same core, whole-command wall time, median of ``--rounds``.

The core is the test fixture ``crasher`` (four threads, main faulting), written
by the kernel after it touched ``--mib`` MiB of heap. Figures, not goals
checked here.

Usage: ``python -m bench.dump_open [--rounds N] [--mib N] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.build import BUILD_DIR, timed_command

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "fixtures"
RESULTS = HERE / "dump_open_results.json"


def build_crasher() -> Path:
    """The crash fixture, built as the tests build it."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    program = BUILD_DIR / "crasher"
    flags = ["-g", "-O0", "-no-pie", "-pthread", "-fcf-protection=none"]
    subprocess.run(["gcc", *flags, "-o", str(program), str(FIXTURES / "crasher.c")], check=True)
    return program


def _allow_cores() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def kernel_core(program: Path, mib: int, directory: Path) -> Path:
    """Run the crasher in ``directory`` until it dumps core; the core's path."""
    run = subprocess.run(
        [str(program), str(mib)], cwd=directory, preexec_fn=_allow_cores, capture_output=True, check=False
    )
    cores = sorted(directory.glob("core*"))
    if run.returncode != -11 or not cores:
        raise RuntimeError(f"no kernel core (exit {run.returncode}; core_pattern must be a plain file name)")
    return cores[0]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mib", type=int, default=256, help="heap the crasher touches before faulting")
    parser.add_argument("--quick", action="store_true", help="one round, 16 MiB")
    args = parser.parse_args(argv)
    rounds, mib = (1, 16) if args.quick else (args.rounds, args.mib)
    program = build_crasher()
    with tempfile.TemporaryDirectory(prefix="lindbg-bench-core-") as scratch:
        core = kernel_core(program, mib, Path(scratch))
        size = core.stat().st_size
        gdb = ["gdb", "-batch", "-nx", "-ex", "thread apply all bt", str(program), str(core)]
        lindbg = [sys.executable, "-m", "lindbg.cli.lindbg_main", "-z", str(core), "-c", "~* k", "-c", "q"]
        gdb_times, lindbg_times = [], []
        timed_command(lindbg)  # once untimed: Python caches lindbg's bytecode, as it will for users
        for _ in range(rounds):
            gdb_times.append(timed_command(gdb))
            lindbg_times.append(timed_command(lindbg))
    gdb_s, lindbg_s = statistics.median(gdb_times), statistics.median(lindbg_times)
    print(f"{'workload':44} {'gdb -batch':>11} {'lindbg':>11} {'x gdb':>7}")
    label = f"open a {size >> 20} MiB core, every thread's stack"
    print(f"{label:44} {gdb_s:10.2f}s {lindbg_s:10.2f}s {gdb_s / lindbg_s:6.2f}x")
    print(f"(wall time of the whole command, median of {rounds}; x gdb > 1 means lindbg is faster)")
    RESULTS.write_text(
        json.dumps({"workload": label, "gdb_s": gdb_s, "lindbg_s": lindbg_s, "rounds": rounds}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
