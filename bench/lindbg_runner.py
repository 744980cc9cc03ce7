"""lindbg side of the benchmark, run in a subprocess.

Usage::

    python -m bench.lindbg_runner hits TARGET ADDR N
    python -m bench.lindbg_runner steps TARGET ADDR STEPS
    python -m bench.lindbg_runner memory TARGET READY_ADDR PTR_ADDR MIB PASSES

Prints one ``BENCH_RESULT`` line (see ``bench.protocol``); on any failure it
prints the traceback and exits non-zero, and the harness shows the error.
The timed region is the same as the C loop's: hits from the first hit to the
exit (N-1 hits), steps from the first STEP_INTO, memory the reads only.
"""

from __future__ import annotations

import struct
import sys
import time
from typing import Any

import lindbg
from bench.protocol import emit, run_workload

CHUNK = 1 << 20


class CountHits(lindbg.EventCallbacks):
    """Counts breakpoint hits, notes the time of the first, returns ``result``."""

    def __init__(self, result: lindbg.Status) -> None:
        super().__init__()
        self.result = result
        self.hits = 0
        self.first = 0.0

    def get_interest_mask(self) -> Any:
        return lindbg.EventMask.BREAKPOINT

    def breakpoint(self, bp: Any) -> Any:
        self.hits += 1
        if self.hits == 1:
            self.first = time.perf_counter()
        return self.result


def _start(argv: list[str], addr: int, result: lindbg.Status) -> tuple[lindbg.DebugClient, CountHits, Any]:
    """Client with a counting callback, ``argv`` created, a breakpoint at ``addr``."""
    client = lindbg.DebugClient()
    callbacks = CountHits(result)
    client.set_event_callbacks(callbacks)
    client.create_process(argv)
    bp = client.add_breakpoint(addr)
    return client, callbacks, bp


def _run_to_break(client: lindbg.DebugClient) -> None:
    """GO, and wait for the callback's BREAK (or the end of the session)."""
    client.set_execution_status(lindbg.Status.GO)
    client.wait_for_event(timeout=None)


def _end(client: lindbg.DebugClient) -> None:
    try:
        client.end_session(lindbg.EndFlags.ACTIVE_TERMINATE)
    except Exception as exc:  # the figures are already taken
        print(f"end_session failed: {exc!r}", file=sys.stderr)


def bench_hits(target: str, addr: int, n: int) -> None:
    """Python callback returning GO on every hit; time from the first hit to the exit."""
    client, callbacks, _bp = _start([target, str(n)], addr, lindbg.Status.GO)
    for _ in range(3):  # wait_for_event should return once, at the exit
        client.set_execution_status(lindbg.Status.GO)
        client.wait_for_event(timeout=None)
        if callbacks.hits >= n:
            break
    seconds = time.perf_counter() - callbacks.first
    _end(client)
    if callbacks.hits != n:
        raise RuntimeError(f"expected {n} breakpoint hits, counted {callbacks.hits}")
    emit(n - 1, seconds, unit="hits/s")


def bench_steps(target: str, addr: int, steps: int) -> None:
    """Break at ``addr`` (step_region), then time ``steps`` single steps (STEP_INTO, count=steps)."""
    client, callbacks, bp = _start([target, str(steps)], addr, lindbg.Status.BREAK)
    _run_to_break(client)
    if callbacks.hits != 1:
        raise RuntimeError("the target did not stop at step_region")
    remove = getattr(client, "remove_breakpoint", None)
    if remove is not None:
        remove(bp)
    # `t N` in cdb terms, as gdb runs `stepi N`: one request, N single steps
    t0 = time.perf_counter()
    client.set_execution_status(lindbg.Status.STEP_INTO, count=steps)
    client.wait_for_event(timeout=None)
    seconds = time.perf_counter() - t0
    _end(client)
    emit(steps, seconds, unit="steps/s")


def bench_memory(target: str, ready: int, ptr_addr: int, mib: int, passes: int) -> None:
    """Break at ``ready``, then time ``passes`` reads of the buffer in 1 MiB chunks."""
    size = mib << 20
    client, callbacks, _bp = _start([target, str(mib)], ready, lindbg.Status.BREAK)
    _run_to_break(client)
    if callbacks.hits != 1:
        raise RuntimeError("the target did not stop at ready")
    (buf,) = struct.unpack("<Q", client.read_memory(ptr_addr, 8))
    expected = bytes(((size - CHUNK + i) * 131 + 7) & 0xFF for i in range(16))
    # one preallocated buffer, as the C loop has: dbgeng's ReadVirtual into the caller's buffer
    data = bytearray(CHUNK)
    read_into = client.read_memory_into
    t0 = time.perf_counter()
    for _ in range(passes):
        for off in range(0, size, CHUNK):
            read_into(buf + off, data)
    seconds = time.perf_counter() - t0
    _end(client)
    if len(data) != CHUNK or bytes(data[:16]) != expected:
        raise RuntimeError("read_memory returned unexpected data")
    emit(passes * size / 1e6, seconds, unit="MB/s")


def main(argv: list[str]) -> int:
    """Dispatch on the workload name."""
    return run_workload(argv, {"hits": bench_hits, "steps": bench_steps, "memory": bench_memory})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
