"""Compile the target programs and the C ptrace loops into ``bench/build/``.

Targets are built ``-O2 -fno-inline -no-pie -fcf-protection=none`` so that
functions have fixed addresses (read with ``nm``) and start with an ordinary
instruction rather than ``endbr64``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD_DIR = HERE / "build"
TARGET_FLAGS = ["-O2", "-fno-inline", "-no-pie", "-fcf-protection=none"]
LOOP_FLAGS = ["-O2", "-Wall"]
TARGETS = ("hits", "steps", "memory")
LOOPS = ("bp_loop", "step_loop", "vm_read")


@dataclass(frozen=True)
class Built:
    """Paths of the built programs and the addresses the workloads need."""

    programs: dict[str, Path]
    symbols: dict[str, int]


def _compile(source: Path, output: Path, flags: list[str], deps: list[Path]) -> None:
    newest = max(p.stat().st_mtime for p in [source, *deps])
    if output.exists() and output.stat().st_mtime >= newest:
        return
    cmd = ["gcc", *flags, "-o", str(output), str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")


def nm_symbols(binary: Path) -> dict[str, int]:
    """Defined symbols of ``binary`` (name -> address) from ``nm``."""
    cmd = ["nm", "--defined-only", str(binary)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    symbols: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            symbols[parts[2]] = int(parts[0], 16)
    return symbols


def _symbol(symbols: dict[str, int], name: str, binary: str) -> int:
    if name not in symbols:
        raise RuntimeError(f"symbol {name} not found in {binary}")
    return symbols[name]


def build() -> Built:
    """Build everything (skipping what is up to date) and look up the symbols."""
    BUILD_DIR.mkdir(exist_ok=True)
    programs: dict[str, Path] = {}
    for name in TARGETS:
        programs[name] = BUILD_DIR / name
        _compile(HERE / "targets" / f"{name}.c", programs[name], TARGET_FLAGS, [])
    common = HERE / "c" / "common.h"
    for name in LOOPS:
        programs[name] = BUILD_DIR / name
        _compile(HERE / "c" / f"{name}.c", programs[name], LOOP_FLAGS, [common])
    hits, steps, memory = (nm_symbols(programs[n]) for n in TARGETS)
    symbols = {
        "bench_target": _symbol(hits, "bench_target", "hits"),
        "step_region": _symbol(steps, "step_region", "steps"),
        "ready": _symbol(memory, "ready", "memory"),
        "bench_buffer": _symbol(memory, "bench_buffer", "memory"),
    }
    return Built(programs, symbols)


def python_environment() -> dict[str, str]:
    """The environment for timed Python runs: bytecode caching on, as users have
    it (a shell that sets PYTHONDONTWRITEBYTECODE would charge every run with
    compiling lindbg from source)."""
    return {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def timed_command(command: list[str], timeout: float = 300) -> float:
    """Wall seconds of one run of ``command`` (lindbg through ``python_environment``);
    a failing run raises, so a broken tool never shows as a fast one."""
    import time

    start = time.perf_counter()
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, env=python_environment()
    )
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {run.stderr.strip()[-300:]}")
    return elapsed


def rounds_argument(argv: list[str], description: str, default: int) -> int:
    """``--rounds N`` (default ``default``) and ``--quick`` (one round) of a bench."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=default)
    parser.add_argument("--quick", action="store_true", help="one round")
    args = parser.parse_args(argv)
    return 1 if args.quick else int(args.rounds)
