"""Process-server benchmark: gdb through ``gdbserver --multi`` and through ``lindbgsrv``,
side by side on loopback.

- breakpoint hits per second: gdb's ``commands``/``silent``/``continue`` on a
  breakpoint the target hits N times; the rate is taken between a short and a long
  run, so start-up costs cancel;
- memory read MB/s: gdb's ``dump binary memory`` of a buffer the target filled,
  between a small and a large dump.

Each figure is the median of ``--rounds`` rounds (3 by default), the servers taking
turns within a round, so that a machine whose speed drifts (a 2-vCPU VM shared with
other work) moves both alike.

Usage: ``python -m bench.procserver [--quick] [--rounds N]``. Figures, not goals
checked here.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.build import build

RESULTS = Path(__file__).resolve().parent / "procserver_results.json"
#: The target's buffer (its symbol has no debug type: cast it).
_BUFFER = "*(char**)&bench_buffer"
LINDBGSRV = [sys.executable, "-m", "lindbg.cli.lindbgsrv_main", "-t", "tcp:port=0"]


@contextmanager
def _server(kind: str) -> Iterator[int]:
    """A server on a loopback port: ``gdbserver --multi`` or ``lindbgsrv``."""
    if kind == "gdbserver":
        command = ["gdbserver", "--multi", "127.0.0.1:0"]
        pattern, stream = r"Listening on port (\d+)", "stderr"
    else:
        command, pattern, stream = LINDBGSRV, r"tcp:Port=(\d+)", "stdout"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pipe = process.stderr if stream == "stderr" else process.stdout
        assert pipe is not None
        port = None
        for _ in range(20):
            match = re.search(pattern, pipe.readline())
            if match:
                port = int(match.group(1))
                break
        if port is None:
            raise RuntimeError(f"{kind} did not say its port")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _gdb(port: int, program: str, commands: list[str], script: str = "") -> str:
    """Run gdb through the server on ``port``; its output."""
    with tempfile.NamedTemporaryFile("w", suffix=".gdb") as file:
        # gdb takes a multi-line `commands` from a script, not from -ex
        file.write(script)
        file.flush()
        argv = ["gdb", "-nx", "-batch", "-ex", "set confirm off", "-ex", "set pagination off"]
        argv += ["-ex", "set sysroot /", "-ex", f"file {program}", "-ex", f"set remote exec-file {program}"]
        argv += ["-ex", f"target extended-remote 127.0.0.1:{port}", "-x", file.name]
        for command in commands:
            argv += ["-ex", command]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    return done.stdout + done.stderr


def hits_rate(kind: str, program: str, few: int, many: int) -> float:
    """Breakpoint hits/s of gdb through ``kind``."""
    script = "break bench_target\ncommands\nsilent\ncontinue\nend\n"

    def run(count: int) -> float:
        with _server(kind) as port:
            started = time.perf_counter()
            out = _gdb(port, program, [f"run {count}", "monitor exit"], script)
            seconds = time.perf_counter() - started
        if "exited normally" not in out:
            raise RuntimeError(f"gdb + {kind}: the run did not end normally: {out[-300:]}")
        return seconds

    return (many - few) / (run(many) - run(few))


def read_rate(kind: str, program: str, small: int, large: int) -> float:
    """MB/s of gdb's ``dump binary memory`` through ``kind``."""

    def run(size: int) -> float:
        with _server(kind) as port, tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "dump.bin"
            commands = [
                "break ready",
                f"run {(large >> 20) + 1}",
                # no blanks inside an expression: gdb splits the arguments at them
                f"dump binary memory {out} {_BUFFER} {_BUFFER}+{size}",
                "kill",
                "monitor exit",
            ]
            started = time.perf_counter()
            text = _gdb(port, program, commands)
            seconds = time.perf_counter() - started
            if not out.exists() or out.stat().st_size != size:
                raise RuntimeError(f"gdb + {kind}: the dump failed: {text[-300:]}")
            return seconds

    return (large - small) / (run(large) - run(small)) / 1e6


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (the smoke test)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds to take the median of (3; 1 quick)")
    args = parser.parse_args(argv)
    if shutil.which("gdb") is None:
        print("process servers: gdb is missing, skipped")
        return 0
    few, many = (50, 300) if args.quick else (200, 3200)
    small, large = (1 << 20, 4 << 20) if args.quick else (1 << 20, 33 << 20)
    rounds = max(1, args.rounds if args.rounds is not None else 1 if args.quick else 3)
    built = build()
    hits, memory = str(built.programs["hits"]), str(built.programs["memory"])
    kinds = ["gdbserver", "lindbgsrv"] if shutil.which("gdbserver") else ["lindbgsrv"]
    samples: dict[str, list[float]] = {}
    for number in range(rounds):
        for kind in kinds:
            rate = hits_rate(kind, hits, few, many)
            mbs = read_rate(kind, memory, small, large)
            samples.setdefault(f"hits_per_s_gdb_{kind}", []).append(rate)
            samples.setdefault(f"read_mb_per_s_gdb_{kind}", []).append(mbs)
            if rounds > 1:
                print(f"  round {number + 1}: gdb + {kind:9}: hits/s {rate:8,.0f}   memory {mbs:7.1f} MB/s")
    results: dict[str, float] = {key: statistics.median(values) for key, values in samples.items()}
    for kind in kinds:
        rate, mbs = results[f"hits_per_s_gdb_{kind}"], results[f"read_mb_per_s_gdb_{kind}"]
        print(f"gdb + {kind:9}: breakpoint hits/s {rate:8,.0f}   memory read {mbs:7.1f} MB/s")
    if len(kinds) == 2:
        print(
            "gdb + lindbgsrv vs gdb + gdbserver: hits "
            f"{results['hits_per_s_gdb_lindbgsrv'] / results['hits_per_s_gdb_gdbserver']:.2f}x, memory "
            f"{results['read_mb_per_s_gdb_lindbgsrv'] / results['read_mb_per_s_gdb_gdbserver']:.2f}x"
            + (f" (medians of {rounds} rounds)" if rounds > 1 else "")
        )
    RESULTS.write_text(json.dumps({**results, "rounds": rounds}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
