"""libdebug (PyPI ``libdebug``) side of the benchmark, run in a subprocess.

Usage::

    python -m bench.libdebug_runner hits TARGET ADDR N
    python -m bench.libdebug_runner steps TARGET ADDR STEPS
    python -m bench.libdebug_runner memory TARGET READY_ADDR PTR_ADDR MIB PASSES

Prints one ``BENCH_RESULT`` line (see ``bench.protocol``). Exits 3 with a
message on stderr if libdebug cannot be imported.
"""

from __future__ import annotations

import struct
import sys
import time
from typing import Any

from bench.protocol import emit, run_workload

CHUNK = 1 << 20


def _load() -> Any:
    try:
        from libdebug import debugger
    except Exception as exc:  # any import failure means "not installed"
        print(f"libdebug not importable: {exc!r}", file=sys.stderr)
        sys.exit(3)
    return debugger


def bench_hits(target: str, addr: int, n: int) -> None:
    """Callback breakpoint on ``addr``; time from the first hit to the exit (N-1 hits)."""
    d = _load()([target, str(n)])
    d.run()
    hits = 0
    first = 0.0
    now = time.perf_counter

    def on_hit(_thread: Any, _bp: Any) -> None:
        nonlocal hits, first
        hits += 1
        if hits == 1:
            first = now()

    d.breakpoint(addr, callback=on_hit, file="absolute")
    d.cont()
    d.wait()
    seconds = now() - first
    d.terminate()
    if hits != n:
        raise RuntimeError(f"expected {n} breakpoint hits, counted {hits}")
    emit(n - 1, seconds, unit="hits/s")


def bench_steps(target: str, addr: int, steps: int) -> None:
    """Stop at ``addr`` with a breakpoint, then time ``steps`` calls of ``step``."""
    d = _load()([target, str(steps)])
    d.run()
    bp = d.breakpoint(addr, file="absolute")
    d.cont()
    d.wait()
    bp.disable()
    step = d.step
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - t0
    d.kill()
    d.terminate()
    emit(steps, seconds, unit="steps/s")


def bench_memory(target: str, ready: int, ptr_addr: int, mib: int, passes: int) -> None:
    """Stop at ``ready``; time ``passes`` reads of the ``mib`` MiB buffer, 1 MiB at a time."""
    size = mib << 20
    d = _load()([target, str(mib)])
    d.run()
    d.breakpoint(ready, file="absolute")
    d.cont()
    d.wait()
    mem = d.memory
    (buf,) = struct.unpack("<Q", mem[ptr_addr, 8, "absolute"])
    t0 = time.perf_counter()
    for _ in range(passes):
        for off in range(0, size, CHUNK):
            mem[buf + off, CHUNK, "absolute"]
    seconds = time.perf_counter() - t0
    d.kill()
    d.terminate()
    emit(passes * size / 1e6, seconds, unit="MB/s")


def main(argv: list[str]) -> int:
    """Dispatch on the workload name."""
    return run_workload(argv, {"hits": bench_hits, "steps": bench_steps, "memory": bench_memory})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
