"""``lindbgsrv``: the process server's command (DESIGN.md section 5).

``lindbgsrv -t OPTIONS [-c "PROGRAM ARGS"]`` serves the GDB remote serial protocol
in extended-remote mode on OPTIONS (``tcp:port=P``, ``npipe:pipe=NAME``, ``ssl:...``)
until a client says ``monitor exit`` or the server gets SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from types import FrameType

from lindbg.errors import LindbgError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lindbgsrv",
        description="lindbg's process server: low-level target access over the GDB remote protocol",
    )
    parser.add_argument(
        "-t", dest="options", required=True, metavar="OPTIONS", help="transport, e.g. tcp:port=1234"
    )
    parser.add_argument(
        "-c", dest="command", metavar="COMMAND", help="a program (and arguments) to start at once"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lindbgsrv`` console script; returns the exit status."""
    from lindbg.procserver.server import ProcessServer

    args = _parser().parse_args(argv)
    try:
        program = shlex.split(args.command) if args.command else None
        server = ProcessServer(args.options, program=program)
        server.start()
    except (LindbgError, ValueError) as error:
        print(f"lindbgsrv: {error}", file=sys.stderr)
        return 1

    def stop(signo: int, frame: FrameType | None) -> None:
        server.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    started = f" (process {server.first_pid} started)" if server.first_pid is not None else ""
    print(f"lindbgsrv: listening on {server.description}{started}", flush=True)
    while not server.wait(0.5):
        pass
    print("lindbgsrv: exited", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
