"""The benchmark harness: every workload, every tool, side by side, one run.

Workloads (targets in ``bench/targets``):

- ``hits``: breakpoint hits per second on ``bench_target`` of ``hits.c``,
  the debugger resuming after every hit (lindbg: Python callback returning
  GO; gdb: ``commands silent continue end``; libdebug: callback breakpoint;
  C: the naive restore/step/re-insert loop).
- ``steps``: single steps per second inside ``step_region`` of ``steps.c``
  (lindbg: STEP_INTO with count=N, cdb's ``t N``; gdb: ``stepi N``; libdebug: ``step``).
- ``memory``: MB/s (10^6 bytes) reading the 256 MiB buffer of ``memory.c``
  in 1 MiB chunks (C: process_vm_readv; lindbg: read_memory_into one buffer;
  gdb: ``dump binary memory``).

Every workload runs ``--rounds`` times (3), the tools in a different order
each round; the median rate is reported, with its ratio to the C loop (the
limit) and to gdb. Sizes are chosen so one run takes about a second or two
on the machine at hand: a short C-loop calibration first, then each tool's
rate from the previous round. Each tool runs in its own subprocess, timing
only the work (start-up excluded). ``--quick`` is a smoke run: one round,
tiny sizes.

Usage: ``python -m bench [--quick] [--rounds N] [--tools c,gdb,...]
[--workloads hits,...] [--libdebug-python PATH] [--pin CPU] [--check-goals]``.
``--pin`` puts everything on one CPU: steadier figures on a busy machine
(tracer and tracee then hand over on one CPU, which is also faster).
Writes ``bench/results.json``. Exits 1 if the build or the C loop fails (the
harness itself is broken); with ``--check-goals`` also if lindbg misses a goal.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import gdb_scripts
from bench.build import BUILD_DIR, Built, build
from bench.protocol import parse

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results.json"

WORKLOADS = ("hits", "steps", "memory")
TOOLS = ("c", "gdb", "lindbg", "libdebug")
TOOL_LABELS = {"c": "C ptrace loop", "gdb": "gdb", "lindbg": "lindbg", "libdebug": "libdebug"}
WORKLOAD_LABELS = {"hits": "breakpoint hits/s", "steps": "single steps/s", "memory": "memory read MB/s"}
GDB_HOW = {"hits": "commands/silent/continue", "steps": "stepi N", "memory": "dump binary memory"}

#: lindbg's goals: (workload, versus) -> the least ratio.
GOALS: dict[tuple[str, str], float] = {
    ("hits", "c"): 0.85,
    ("hits", "gdb"): 2.5,
    ("memory", "c"): 0.80,
    ("steps", "c"): 0.80,
    ("steps", "gdb"): 2.0,
}

#: First-round guesses of each tool's rate as a fraction of the C loop's.
GUESS = {
    "hits": {"c": 1.0, "gdb": 0.12, "lindbg": 1.0, "libdebug": 0.2},
    "steps": {"c": 1.0, "gdb": 0.12, "lindbg": 0.8, "libdebug": 0.08},
    "memory": {"c": 1.0, "gdb": 0.03, "lindbg": 0.6, "libdebug": 0.4},
}
GUESS_C_MEMORY_MBS = 5000.0
FULL_MIB = 256
QUICK = {"hits": 500, "steps": 500, "memory_mib": 16, "passes": 1}
#: Seconds of timed work wanted from one run (memory adds ~1 s of target set-up).
TARGET_SECONDS = {"hits": 1.5, "steps": 1.5, "memory": 0.8}
COUNT_LIMITS = (200, 500_000)
#: Breakpoint hits: the C loop, lindbg and libdebug share one N in a round
#: (libdebug gets slower per hit as N grows), worth this many seconds of the C loop.
SHARED_HITS_SECONDS = 1.0
SHARED_HITS_LIMITS = (2000, 20_000)
PASS_LIMITS = (1, 64)


@dataclass
class Run:
    """One run of one tool on one workload (raw figures for results.json)."""

    tool: str
    workload: str
    round: int
    size: int
    command: list[str]
    ok: bool = False
    count: float = 0.0
    seconds: float = 0.0
    rate: float = 0.0
    wall_seconds: float = 0.0
    error: str = ""
    not_installed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Config:
    """What the command line asked for."""

    quick: bool
    rounds: int
    tools: tuple[str, ...]
    workloads: tuple[str, ...]
    libdebug_python: str
    timeout: float
    output: Path
    check_goals: bool
    pin: int | None


# ---------------------------------------------------------------- commands


def _python_cmd(python: str, module: str, workload: str, args: list[Any]) -> list[str]:
    return [python, "-m", module, workload, *map(str, args)]


def _workload_args(built: Built, workload: str, size: int, mib: int) -> list[Any]:
    """Target path and the numbers a runner gets (the same for every tool)."""
    sym, prog = built.symbols, built.programs
    if workload == "hits":
        return [prog["hits"], hex(sym["bench_target"]), size]
    if workload == "steps":
        return [prog["steps"], hex(sym["step_region"]), size]
    return [prog["memory"], hex(sym["ready"]), hex(sym["bench_buffer"]), mib, size]


def _gdb_cmd(built: Built, workload: str, size: int, mib: int) -> list[str]:
    sym, prog = built.symbols, built.programs
    if workload == "hits":
        script = gdb_scripts.hits_script(str(prog["hits"]), sym["bench_target"], size)
    elif workload == "steps":
        script = gdb_scripts.steps_script(str(prog["steps"]), sym["step_region"], size)
    else:
        script = gdb_scripts.memory_script(str(prog["memory"]), sym["ready"], sym["bench_buffer"], mib, size)
    path = BUILD_DIR / f"gdb_{workload}.py"
    path.write_text(script)
    return ["gdb", "-batch", "-nx", "-x", str(path)]


def command(cfg: Config, built: Built, tool: str, workload: str, size: int, mib: int) -> list[str]:
    """The command line that runs ``tool`` on ``workload`` with ``size`` (N or passes)."""
    args = _workload_args(built, workload, size, mib)
    if tool == "c":
        loop = {"hits": "bp_loop", "steps": "step_loop", "memory": "vm_read"}[workload]
        return [str(built.programs[loop]), *map(str, args)]
    if tool == "gdb":
        return _gdb_cmd(built, workload, size, mib)
    if tool == "lindbg":
        return _python_cmd(sys.executable, "bench.lindbg_runner", workload, args)
    return _python_cmd(cfg.libdebug_python, "bench.libdebug_runner", workload, args)


# ---------------------------------------------------------------- running


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def execute(run: Run, timeout: float) -> Run:
    """Run ``run.command``, fill in the figures or the error."""
    if run.tool == "gdb" and shutil.which("gdb") is None:
        run.error, run.not_installed = "not installed", True
        return run
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            run.command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
            env=_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        run.error = f"timed out after {timeout:.0f} s"
        return run
    except OSError as exc:
        run.error = f"cannot run: {exc}"
        return run
    run.wall_seconds = time.perf_counter() - t0
    if run.tool == "libdebug" and proc.returncode == 3:
        run.error, run.not_installed = "not installed", True
        return run
    result = parse(proc.stdout)
    if proc.returncode != 0 or result is None:
        run.error = _last_line(proc.stderr) or _last_line(proc.stdout) or f"exit status {proc.returncode}"
        run.extra["stderr_tail"] = proc.stderr[-2000:]
        return run
    run.count, run.seconds = float(result["count"]), float(result["seconds"])
    run.rate = run.count / run.seconds if run.seconds > 0 else 0.0
    run.ok = run.rate > 0
    if not run.ok:
        run.error = "no work was timed"
    return run


# ---------------------------------------------------------------- sizing


def _clamp(value: float, limits: tuple[int, int]) -> int:
    return int(max(limits[0], min(limits[1], value)))


def _nice(value: int) -> int:
    """Round to two significant digits so the sizes read well."""
    digits = max(len(str(value)) - 2, 0)
    return int(round(value, -digits))


class Sizer:
    """Picks N (hits, steps) or passes (memory) so a run takes TARGET_SECONDS."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.mib = QUICK["memory_mib"] if cfg.quick else FULL_MIB
        self.rates: dict[tuple[str, str], float] = {}
        self.c_rates: dict[str, float] = {"hits": 10_000.0, "steps": 10_000.0, "memory": GUESS_C_MEMORY_MBS}
        self._shared_hits = QUICK["hits"]

    def calibrate(self, built: Built) -> list[Run]:
        """Short C-loop runs that set the first round's sizes for this machine."""
        if self.cfg.quick:
            return []
        runs = []
        for workload in ("hits", "steps"):
            cmd = command(self.cfg, built, "c", workload, 2000, self.mib)
            tries = [execute(Run("c", workload, 0, 2000, cmd), 60) for _ in range(2)]
            runs.extend(tries)
            best = max(r.rate for r in tries)  # a busy moment only makes a run slower
            self.c_rates[workload] = best if best > 0 else 10_000.0
        return runs

    def shared_hits(self) -> int:
        """The one N of the C loop, lindbg and libdebug for breakpoint hits."""
        return QUICK["hits"] if self.cfg.quick else self._shared_hits

    def learn(self, run: Run) -> None:
        """Remember a measured rate for the next round's size (the best seen: load only slows)."""
        if run.ok:
            key = (run.workload, run.tool)
            self.rates[key] = max(run.rate, self.rates.get(key, 0.0))

    def start_round(self) -> None:
        """Fix the shared breakpoint-hit N for this round from the best C rate seen."""
        best = max(self.c_rates["hits"], self.rates.get(("hits", "c"), 0.0))
        self._shared_hits = _nice(_clamp(best * SHARED_HITS_SECONDS, SHARED_HITS_LIMITS))

    def size(self, tool: str, workload: str) -> int:
        """N or passes for the next run of ``tool`` on ``workload``."""
        if self.cfg.quick:
            return QUICK["passes"] if workload == "memory" else QUICK[workload]
        if workload == "hits" and tool != "gdb":
            return self.shared_hits()
        rate = self.rates.get((workload, tool)) or self.c_rates[workload] * GUESS[workload][tool]
        work = rate * TARGET_SECONDS[workload]
        if workload == "memory":
            return _clamp(work / (self.mib * 1.048576), PASS_LIMITS)
        return _nice(_clamp(work, COUNT_LIMITS))


# ---------------------------------------------------------------- summary


def _median(runs: list[Run], workload: str, tool: str) -> float | None:
    rates = [r.rate for r in runs if r.ok and r.workload == workload and r.tool == tool]
    return statistics.median(rates) if rates else None


def _error(runs: list[Run], workload: str, tool: str) -> str:
    errors = [r.error for r in runs if r.workload == workload and r.tool == tool and r.error]
    return errors[-1] if errors else "not run"


def summarize(cfg: Config, runs: list[Run]) -> dict[str, dict[str, dict[str, Any]]]:
    """workload -> tool -> median, raw rates, ratios to the C loop and gdb, or error."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for workload in cfg.workloads:
        c_med, gdb_med = _median(runs, workload, "c"), _median(runs, workload, "gdb")
        rows: dict[str, dict[str, Any]] = {}
        for tool in cfg.tools:
            med = _median(runs, workload, tool)
            rates = [r.rate for r in runs if r.ok and r.workload == workload and r.tool == tool]
            sizes = [r.size for r in runs if r.ok and r.workload == workload and r.tool == tool]
            row: dict[str, Any] = {"median": med, "best": max(rates, default=None)}
            row.update(rates=rates, sizes=sizes)
            row["ratio_c"] = med / c_med if med and c_med else None
            row["ratio_gdb"] = med / gdb_med if med and gdb_med else None
            if med is None:
                row["error"] = _error(runs, workload, tool)
            rows[tool] = row
        summary[workload] = rows
    return summary


def goals(summary: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """lindbg's goals with the measured ratio and whether each is met."""
    out = []
    for (workload, versus), need in GOALS.items():
        if workload not in summary or "lindbg" not in summary[workload]:
            continue
        ratio = summary[workload]["lindbg"][f"ratio_{versus}"]
        met = bool(ratio and ratio >= need)
        out.append({"workload": workload, "versus": versus, "required": need, "ratio": ratio, "met": met})
    return out


def _fmt_rate(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _fmt_size(workload: str, sizes: list[int]) -> str:
    """N of hits or steps, or passes x MiB for memory (the median run's, if they differ)."""
    if not sizes:
        return ""
    size = int(statistics.median_low(sizes))
    return f"{size}x" if workload == "memory" else f"{size:,}"


def _goal_cell(workload: str, tool: str, row: dict[str, Any]) -> str:
    if tool != "lindbg":
        return ""
    cells = []
    for versus in ("c", "gdb"):
        need = GOALS.get((workload, versus))
        if need is None:
            continue
        ratio = row[f"ratio_{versus}"]
        mark = "ok" if ratio and ratio >= need else "MISS"
        cells.append(f">={need}x {'C' if versus == 'c' else 'gdb'} {mark}")
    return ", ".join(cells)


def table(cfg: Config, summary: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The printed table: one row per (workload, tool); a failed tool shows its error."""
    head = ["workload", "tool", "n", "median rate", "x C loop", "x gdb", "goal (lindbg)"]
    rows: list[list[str]] = []
    errors: dict[int, str] = {}
    for workload in cfg.workloads:
        for i, tool in enumerate(cfg.tools):
            row = summary[workload][tool]
            label = WORKLOAD_LABELS[workload] if i == 0 else ""
            name = TOOL_LABELS[tool] + (f" ({GDB_HOW[workload]})" if tool == "gdb" else "")
            if row["median"] is None:
                errors[len(rows)] = row["error"][:100]
                rows.append([label, name, "", "", "", "", ""])
                continue
            size = _fmt_size(workload, row["sizes"])
            figures = _fmt_rate(row["median"]), _fmt_ratio(row["ratio_c"]), _fmt_ratio(row["ratio_gdb"])
            rows.append([label, name, size, *figures, _goal_cell(workload, tool, row)])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(7)]

    def render(r: list[str]) -> str:
        cells = [r[i].ljust(widths[i]) if i in (0, 1, 6) else r[i].rjust(widths[i]) for i in range(7)]
        return "  ".join(cells).rstrip()

    out = [render(head), "-" * len(render(head))]
    for n, r in enumerate(rows):
        if n in errors:
            out.append(f"{r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {errors[n]}")
        else:
            out.append(render(r))
    return "\n".join(out)


# ---------------------------------------------------------------- main


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not available"
    return _last_line(out.stdout.splitlines()[0] if out.stdout else out.stderr) or "unknown"


def machine_info(cfg: Config) -> dict[str, Any]:
    """What the figures were measured on."""
    probe = "import importlib.metadata as m; print(m.version('libdebug'))"
    libdebug = _version([cfg.libdebug_python, "-c", probe])
    return {
        "uname": " ".join(platform.uname()),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "gdb": _version(["gdb", "--version"]),
        "libdebug": libdebug if "Error" not in libdebug else "not installed",
    }


def run_rounds(cfg: Config, built: Built, sizer: Sizer) -> list[Run]:
    """All rounds; a tool that failed on a workload is not run on it again."""
    runs: list[Run] = []
    failed: set[tuple[str, str]] = set()
    for rnd in range(1, cfg.rounds + 1):
        sizer.start_round()
        order = cfg.tools[rnd - 1 :] + cfg.tools[: rnd - 1] if cfg.tools else ()
        for workload in cfg.workloads:
            for tool in order:
                if (workload, tool) in failed:
                    continue
                size = sizer.size(tool, workload)
                run = Run(tool, workload, rnd, size, command(cfg, built, tool, workload, size, sizer.mib))
                execute(run, cfg.timeout)
                sizer.learn(run)
                runs.append(run)
                if not run.ok:
                    failed.add((workload, tool))
                status = f"{_fmt_rate(run.rate)} ({run.seconds:.2f} s timed)" if run.ok else run.error[:80]
                line = f"  round {rnd}  {workload:<6}  {tool:<8}  n={size:<7} {status}"
                print(line, file=sys.stderr, flush=True)
    return runs


def parse_args(argv: list[str] | None) -> Config:
    """Command line -> Config."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: one round, tiny sizes")
    p.add_argument("--rounds", type=int, default=None, help="rounds per workload (default 3; 1 with --quick)")
    p.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset of " + ",".join(TOOLS))
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="subset of " + ",".join(WORKLOADS))
    p.add_argument("--libdebug-python", default=sys.executable, help="interpreter with libdebug installed")
    p.add_argument("--timeout", type=float, default=None, help="seconds before one run is abandoned")
    p.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    p.add_argument("--check-goals", action="store_true", help="exit 1 if lindbg misses a goal")
    p.add_argument("--pin", type=int, default=None, metavar="CPU", help="run every tool and target on CPU")
    a = p.parse_args(argv)
    tools = tuple(t for t in TOOLS if t in a.tools.split(","))
    workloads = tuple(w for w in WORKLOADS if w in a.workloads.split(","))
    rounds = a.rounds if a.rounds is not None else (1 if a.quick else 3)
    timeout = a.timeout if a.timeout is not None else 60.0
    ldb, out = a.libdebug_python, a.output
    return Config(a.quick, rounds, tools, workloads, ldb, timeout, out, a.check_goals, a.pin)


def main(argv: list[str] | None = None) -> int:
    """Build, calibrate, run every round, print the table, write results.json."""
    cfg = parse_args(argv)
    started = time.perf_counter()
    if cfg.pin is not None:
        os.sched_setaffinity(0, {cfg.pin})  # inherited by every tool and target
    try:
        built = build()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"bench: build failed: {exc}", file=sys.stderr)
        return 1
    sizer = Sizer(cfg)
    calibration = sizer.calibrate(built) if "c" in cfg.tools else []
    runs = run_rounds(cfg, built, sizer)
    summary = summarize(cfg, runs)
    goal_list = goals(summary)
    print()
    print(table(cfg, summary))
    elapsed = time.perf_counter() - started
    print(f"\n{cfg.rounds} round(s), median shown; the C loop is the limit; {elapsed:.0f} s in all")
    results = {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": cfg.quick,
        "rounds": cfg.rounds,
        "memory_mib": sizer.mib,
        "pinned_cpu": cfg.pin,
        "machine": machine_info(cfg),
        "symbols": {k: hex(v) for k, v in built.symbols.items()},
        "summary": summary,
        "goals": goal_list,
        "calibration": [asdict(r) for r in calibration],
        "runs": [asdict(r) for r in runs],
    }
    cfg.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results written to {cfg.output}")
    return _exit_status(cfg, summary, goal_list)


Summary = dict[str, dict[str, dict[str, Any]]]


def _exit_status(cfg: Config, summary: Summary, goal_list: list[dict[str, Any]]) -> int:
    if "c" in cfg.tools and any(summary[w]["c"]["median"] is None for w in cfg.workloads):
        print("bench: the C loop failed: the harness is broken", file=sys.stderr)
        return 1
    if cfg.check_goals and (not goal_list or not all(g["met"] for g in goal_list)):
        print("bench: lindbg misses a goal", file=sys.stderr)
        return 1
    return 0
