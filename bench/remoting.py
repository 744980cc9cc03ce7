"""Debugging-server benchmark: what sharing a session costs, on loopback.

- command round trip of ``debug_connect(...).execute(".echo x")`` over tcp and npipe
  (median and 90th percentile of ``--calls``);
- output fan-out: lines per second that reach every one of 1, 10 and 50 remote
  clients (each client counts its lines; the clock stops when the last has all);
- breakpoint hits per second with a remote Python client's event callback returning
  GO, beside the same callback on a local client.

The engine runs on this process's main thread (serving in ``dispatch_callbacks`` and
``wait_for_event``); the fan-out and breakpoint clients are processes of their own (as
users' are: in one process they would share one interpreter lock with the engine),
the round-trip client a thread. Figures, not goals
checked here.

Usage: ``python -m bench.remoting [--calls N] [--lines N] [--hits N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lindbg
from bench.build import build
from lindbg import DebugClient, EndFlags, EventMask, OutputCallbacks, Status

RESULTS = Path(__file__).resolve().parent / "remoting_results.json"


def _connect_string(entry: Any) -> str:
    if entry.options.transport == "tcp":
        return f"tcp:server=127.0.0.1,port={entry.port}"
    return f"npipe:pipe={entry.options.pipe}"


def _serve_while(client: DebugClient, work: Callable[[], Any]) -> Any:
    """Run ``work`` on a thread while this (the engine's) thread serves requests."""
    done = threading.Event()
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(work())
        except BaseException as error:
            box.append(error)
        finally:
            done.set()
            client.exit_dispatch(client)

    threading.Thread(target=run, daemon=True).start()
    while not done.is_set():
        client.dispatch_callbacks(timeout=60)
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def round_trips(client: DebugClient, options: str, calls: int) -> tuple[float, float]:
    """Median and p90 of one ``execute`` round trip, in milliseconds."""
    entry = client.start_server(options)

    def work() -> list[float]:
        remote = lindbg.debug_connect(_connect_string(entry))
        for _ in range(20):
            remote.execute(".echo warm")
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            remote.execute(".echo x")
            times.append(time.perf_counter() - start)
        remote.end_session(EndFlags.DISCONNECT)
        return times

    times = sorted(_serve_while(client, work))
    client.end_server(entry.id)
    return statistics.median(times) * 1e3, times[int(len(times) * 0.9)] * 1e3


class _Counter(OutputCallbacks):
    def __init__(self, wanted: int) -> None:
        self.count = 0
        self.wanted = wanted

    def output(self, mask: int, text: str) -> None:
        if text.startswith("line "):
            self.count += 1
            if self.count == self.wanted:
                print("done", flush=True)


class _Go(lindbg.EventCallbacks):
    """Counts breakpoint hits, notes the time of the first, votes ``vote``."""

    def __init__(self, vote: Status = Status.GO) -> None:
        self.hits = 0
        self.first = 0.0
        self.vote = vote

    def get_interest_mask(self) -> int:
        return int(EventMask.BREAKPOINT)

    def breakpoint(self, bp: Any) -> Status:
        self.hits += 1
        if self.hits == 1:
            self.first = time.perf_counter()
        return self.vote


def worker(kind: str, options: str, count: int) -> int:
    """A remote client in a process of its own (as users' are): ``fanout`` counts
    output lines, ``hits`` answers GO to every breakpoint; both print "ready" once
    registered and leave at end of input."""
    remote = lindbg.debug_connect(options)
    if kind == "fanout":
        remote.set_output_callbacks(_Counter(count))
    else:
        remote.set_event_callbacks(_Go())
    remote.execute(".echo registered")  # the registration has reached the server
    print("ready", flush=True)
    stop = threading.Event()
    threading.Thread(
        target=lambda: (sys.stdin.read(), stop.set(), remote.exit_dispatch()), daemon=True
    ).start()
    while not stop.is_set():
        remote.dispatch_callbacks(timeout=0.5)
    remote.end_session(EndFlags.DISCONNECT)
    return 0


def _workers(
    client: DebugClient, kind: str, options: str, count: int, number: int
) -> list[subprocess.Popen[str]]:
    """Start ``number`` worker processes and serve the engine until each is ready."""
    command = [sys.executable, "-m", "bench.remoting", "--worker", kind, options, str(count)]
    procs = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(number)
    ]
    for proc in procs:
        assert proc.stdout is not None
        _serve_while(client, proc.stdout.readline)
    return procs


def _finish(client: DebugClient, procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
    _serve_while(client, lambda: [proc.wait(60) for proc in procs])


def fan_out(client: DebugClient, clients: int, lines: int) -> float:
    """Lines per second delivered to each of ``clients`` remote clients (processes)."""
    entry = client.start_server("tcp:port=0")
    procs = _workers(client, "fanout", _connect_string(entry), lines, clients)
    start = time.perf_counter()
    for number in range(lines):
        client.output(1, f"line {number}\n")
    for proc in procs:
        assert proc.stdout is not None
        _serve_while(client, proc.stdout.readline)
    seconds = time.perf_counter() - start
    _finish(client, procs)
    client.end_server(entry.id)
    return lines / seconds


def hits_rate(program: str, address: int, hits: int, remote: bool) -> float:
    """Breakpoint hits/s with a callback returning GO: local, or in a remote process."""
    client = DebugClient()
    procs: list[subprocess.Popen[str]] = []
    if remote:
        timer = _Go(Status.NO_CHANGE)  # the server's clock: the remote client votes GO
        client.set_event_callbacks(timer)
        entry = client.start_server("tcp:port=0")
        procs = _workers(client, "hits", _connect_string(entry), 0, 1)
        counter: Any = timer
    else:
        counter = _Go()
        client.set_event_callbacks(counter)
    client.create_process([program, str(hits)])
    client.add_breakpoint(address)
    client.set_execution_status(Status.GO)
    client.wait_for_event()
    seconds = time.perf_counter() - counter.first
    if counter.hits != hits:
        raise RuntimeError(f"expected {hits} hits, counted {counter.hits}")
    if procs:
        _finish(client, procs)
        client.shutdown_servers()
    return (hits - 1) / seconds


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        return worker(argv[1], argv[2], int(argv[3]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--hits", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="small counts (the smoke test)")
    args = parser.parse_args(argv)
    calls, lines, hits = (50, 200, 200) if args.quick else (args.calls, args.lines, args.hits)
    results: dict[str, Any] = {}
    client = DebugClient()
    for transport, options in (("tcp", "tcp:port=0"), ("npipe", f"npipe:pipe=bench-{os.getpid()}")):
        median, p90 = round_trips(client, options, calls)
        results[f"round_trip_ms_{transport}"] = {"median": median, "p90": p90}
        print(f"execute('.echo x') round trip over {transport:5}: median {median:.3f} ms, p90 {p90:.3f} ms")
    for count in (1, 10, 50):
        rate = fan_out(client, count, lines)
        results[f"fan_out_lines_per_s_{count}"] = rate
        print(f"output fan-out to {count:2} remote clients: {rate:,.0f} lines/s to each")
    client.shutdown_servers()
    built = build()
    program, address = str(built.programs["hits"]), built.symbols["bench_target"]
    local = hits_rate(program, address, hits, remote=False)
    remote = hits_rate(program, address, hits, remote=True)
    results["hits_per_s_local_callback"] = local
    results["hits_per_s_remote_callback"] = remote
    print(
        f"breakpoint hits/s, callback returning GO: local {local:,.0f}, remote (tcp) {remote:,.0f}"
        f" ({remote / local:.2f}x local)"
    )
    RESULTS.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
