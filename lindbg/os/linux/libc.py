"""The C library handle and errno-raising helpers shared by the bindings."""

from __future__ import annotations

import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)


class IoVec(ctypes.Structure):
    """``struct iovec``: one buffer for readv-style calls."""

    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


def os_error(what: str) -> OSError:
    """Build an ``OSError`` for the errno the last libc call left behind."""
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")
