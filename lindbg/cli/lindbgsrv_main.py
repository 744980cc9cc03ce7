"""``lindbgsrv``: the process server (DESIGN.md section 5). Comes with a later issue."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lindbgsrv`` console script; returns the exit status."""
    del argv  # `lindbgsrv -t OPTIONS` comes with the process server's issue
    print(
        "lindbgsrv: the process server is not available yet (it comes with a later issue)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
