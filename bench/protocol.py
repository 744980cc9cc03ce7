"""The one-line result every runner prints, and its parser.

A runner (C loop, gdb script, lindbg or libdebug subprocess) prints one line
``BENCH_RESULT {json}`` with at least ``count`` (hits, steps or MB) and
``seconds`` (the timed region only, start-up excluded). Other output is
ignored, so targets and tools may print what they like.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

PREFIX = "BENCH_RESULT "


def emit(count: float, seconds: float, **extra: Any) -> None:
    """Print the result line of a Python runner and flush it."""
    record = {"count": count, "seconds": seconds, "rate": count / seconds if seconds > 0 else 0.0}
    record.update(extra)
    sys.stdout.write(PREFIX + json.dumps(record) + "\n")
    sys.stdout.flush()


def parse(output: str) -> dict[str, Any] | None:
    """The last result line in ``output`` as a dict, or None if there is none."""
    for line in reversed(output.splitlines()):
        start = line.find(PREFIX)
        if start >= 0:
            record: dict[str, Any] = json.loads(line[start + len(PREFIX) :])
            return record
    return None


def run_workload(argv: list[str], workloads: dict[str, Callable[..., None]]) -> int:
    """A runner's ``main``: ``WORKLOAD TARGET NUMBERS...`` -> ``workloads[WORKLOAD](TARGET, *NUMBERS)``."""
    workload, target, *numbers = argv
    workloads[workload](target, *(int(x, 0) for x in numbers))
    return 0
