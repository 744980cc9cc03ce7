"""``lindbgsrv``: the process server's command (DESIGN.md section 5).

This build has no process server: the command says so and exits with status 2.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lindbgsrv`` console script; returns the exit status."""
    del argv  # no options to read: there is no server to start
    print(
        "lindbgsrv: this lindbg has no process server; debug on the target machine with lindbg itself",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
