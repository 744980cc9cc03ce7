"""``lindbg``: the cdb-style console (DESIGN.md section 6). Comes with a later issue."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lindbg`` console script; returns the exit status."""
    del argv  # the console's options (DESIGN.md section 6) come with its issue
    print(
        "lindbg: the console is not available yet (it comes with a later issue); "
        "use the Python API: import lindbg",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
