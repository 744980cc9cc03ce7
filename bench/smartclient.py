"""Smart-client benchmark: lindbg's engine debugging through a process server
(``lindbgsrv``, ``gdbserver --multi``) on loopback, the workloads of
``bench.procserver``:

- breakpoint hits per second: a breakpoint whose callback answers GO, on a function
  the target calls N times; the rate is taken between a short and a long run, so
  start-up costs cancel;
- memory read MB/s: ``read_memory`` of a buffer the target filled, between a small
  and a large read.

Usage: ``python -m bench.smartclient [--quick]``. Figures, not goals checked here.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import time

from bench.build import build
from bench.procserver import _server
from lindbg.constants import EndFlags, Status
from lindbg.engine.callbacks import EventCallbacks
from lindbg.engine.client import DebugClient


class _Counter(EventCallbacks):
    def __init__(self) -> None:
        self.hits = 0

    def get_interest_mask(self) -> int:
        from lindbg.constants import EventMask

        return int(EventMask.BREAKPOINT)

    def breakpoint(self, bp: object) -> Status:
        self.hits += 1
        return Status.GO


def hits_rate(kind: str, program: str, few: int, many: int) -> float:
    """Breakpoint hits/s of the smart client through ``kind`` (``local``: no server)."""

    def run(count: int) -> float:
        client = DebugClient()
        counter = _Counter()
        client.set_event_callbacks(counter)
        with _server(kind) if kind != "local" else contextlib.nullcontext(0) as port:
            handle = client.connect_process_server(f"tcp:server=127.0.0.1,port={port}") if port else None
            started = time.perf_counter()
            client.create_process([program, str(count)], server=handle)
            client.add_breakpoint("hits!bench_target")
            client.set_execution_status(Status.GO)
            while client.get_execution_status() != Status.NO_DEBUGGEE:
                if not client.wait_for_event(120):
                    raise RuntimeError(f"smart client + {kind}: no end within 120 s")
                if client.get_execution_status() == Status.BREAK:
                    client.set_execution_status(Status.GO)
            seconds = time.perf_counter() - started
            if handle is not None:
                client.end_process_server(handle)
        if counter.hits != count:
            raise RuntimeError(f"smart client + {kind}: {counter.hits} hits of {count}")
        return seconds

    return (many - few) / (run(many) - run(few))


def read_rate(kind: str, program: str, small: int, large: int) -> float:
    """MB/s of ``read_memory`` through ``kind`` (one session, both sizes)."""
    client = DebugClient()
    with _server(kind) if kind != "local" else contextlib.nullcontext(0) as port:
        handle = client.connect_process_server(f"tcp:server=127.0.0.1,port={port}") if port else None
        client.create_process([program, str((large >> 20) + 1)], server=handle)
        client.add_breakpoint("memory!ready")
        client.set_execution_status(Status.GO)
        if not client.wait_for_event(120):
            raise RuntimeError(f"smart client + {kind}: no stop at ready")
        buffer = int.from_bytes(client.read_memory(client.resolve("memory!bench_buffer"), 8), "little")

        def timed(size: int) -> float:
            started = time.perf_counter()
            data = client.read_memory(buffer, size)
            seconds = time.perf_counter() - started
            if len(data) != size or data[1] != (131 + 7) & 0xFF:
                raise RuntimeError(f"smart client + {kind}: a bad read of {size} bytes")
            return seconds

        timed(small)  # the first read finds the packet forms
        rate = (large - small) / (timed(large) - timed(small)) / 1e6
        client.end_session(EndFlags.ACTIVE_TERMINATE)
        if handle is not None:
            client.end_process_server(handle)
    return rate


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (the smoke test)")
    args = parser.parse_args(argv)
    few, many = (50, 300) if args.quick else (200, 3200)
    small, large = (1 << 20, 4 << 20) if args.quick else (1 << 20, 33 << 20)
    built = build()
    hits, memory = str(built.programs["hits"]), str(built.programs["memory"])
    kinds = ["local", "lindbgsrv"] + (["gdbserver"] if shutil.which("gdbserver") else [])
    for kind in kinds:
        rate = hits_rate(kind, hits, few, many)
        mbs = read_rate(kind, memory, small, large)
        print(f"lindbg + {kind:9}: breakpoint hits/s {rate:8,.0f}   memory read {mbs:7.1f} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
