"""Where named pipes live: one private directory of unix sockets per user.

Strategy: the directory, not the socket's own mode, is what keeps other users out. A
socket file gets its mode from the umask when it is bound, so there is a moment before
any ``chmod`` when it may be reachable; a directory of mode 0700 that we own closes
that gap. So the directory is created 0700 and, when it already exists, is trusted only
if ``lstat`` shows a real directory (not a symlink someone planted), owned by us, with
no group or other permission bits. ``$XDG_RUNTIME_DIR/lindbg`` is preferred (a per-user
tmpfs removed at logout); ``/tmp/lindbg-<uid>`` is the fallback.
"""

from __future__ import annotations

import os
import stat

from lindbg.transports.options import TransportError, pipe_name_problem

_DIRECTORY_NAME = "lindbg"


def pipe_directory(create: bool = True) -> str:
    """The directory of this user's pipe sockets, created (mode 0700) when ``create``.

    Raises :class:`TransportError` when it exists but others could reach into it, or
    cannot be created. With ``create`` false a missing directory is returned unchecked
    (a client then finds no server there).
    """
    path = _directory_path()
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as error:
            raise TransportError(f"cannot create the pipe directory {path}: {error.strerror}") from None
        else:
            # mkdir's mode passed through the umask, which may have removed our own bits.
            os.chmod(path, 0o700)
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        if create:
            raise TransportError(f"the pipe directory {path} vanished while it was being created") from None
        return path
    except OSError as error:
        raise TransportError(f"cannot examine the pipe directory {path}: {error.strerror}") from None
    problem = _directory_problem(status)
    if problem is not None:
        raise TransportError(f"the pipe directory {path} {problem}; someone else could reach the sockets")
    return path


def pipe_path(name: str, create: bool = True) -> str:
    """The socket path of pipe ``name`` (the directory is created when ``create``)."""
    problem = pipe_name_problem(name)
    if problem is not None:
        raise TransportError(f"pipe name {name[:40]!r} {problem}")
    return os.path.join(pipe_directory(create), name)


def _directory_path() -> str:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        try:
            status = os.stat(runtime)
        except OSError:
            pass
        else:
            if stat.S_ISDIR(status.st_mode) and status.st_uid == os.getuid():
                return os.path.join(runtime, _DIRECTORY_NAME)
    return f"/tmp/lindbg-{os.getuid()}"


def _directory_problem(status: os.stat_result) -> str | None:
    if stat.S_ISLNK(status.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(status.st_mode):
        return "is not a directory"
    if status.st_uid != os.getuid():
        return f"belongs to uid {status.st_uid}, not {os.getuid()}"
    if status.st_mode & 0o077:
        return f"has mode {stat.S_IMODE(status.st_mode):04o}, not 0700"
    return None
