"""Who the user of this process is, as a debugging server names its clients."""

from __future__ import annotations

import functools
import getpass
import socket


@functools.cache
def host_and_user() -> tuple[str, str]:
    """This machine's short host name and the login name of this process's user."""
    host = socket.gethostname().split(".", 1)[0] or "localhost"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no $USER: a bare container
        import os

        user = str(os.getuid())
    return host, user


def local_name() -> str:
    """``HOST\\user``, WinDbg's name for a client."""
    host, user = host_and_user()
    return f"{host}\\{user}"
