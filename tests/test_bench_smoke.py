"""The benchmark harness itself keeps working: a quick run of the C loop and
lindbg on every workload yields figures for both (figures, not a timed test)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("gcc") is None, reason="the benchmarks build C targets with gcc")
def test_quick_bench_run_measures_lindbg_beside_the_c_loop(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--tools", "c,lindbg", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(output.read_text())
    runs = {(run["tool"], run["workload"]): run for run in results["runs"]}
    for workload in ("hits", "steps", "memory"):
        for tool in ("c", "lindbg"):
            measured = runs[(tool, workload)]
            assert measured["ok"], f"{tool} {workload}: {measured['error']}"
            assert measured["rate"] > 0
        assert results["summary"][workload]["lindbg"]["ratio_c"] > 0
