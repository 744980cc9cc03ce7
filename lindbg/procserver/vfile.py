"""gdb's host I/O (``vFile:`` packets): files of the server's machine, for one connection.

gdb reads the program and its libraries this way when they are not on its
own machine (``set sysroot target:``, ``remote get``). ``HostFiles.handle``
takes the payload after ``vFile:`` and returns the reply payload,
``F<result>[,<errno>][;<attachment>]``, numbers in hex, the attachment raw
binary (the codec escapes it). Formats as the GDB manual ("Host I/O Packets",
"struct stat", "Errno Values", "Open Flags", "mode_t Values") and
gdbserver/hostio.cc give them:

* ``open:PATH,FLAGS,MODE`` -> ``F<fd>``; ``close:FD`` -> ``F0``;
* ``pread:FD,COUNT,OFFSET`` -> ``F<n>;<n bytes>`` (``F0;`` at the end of the file);
* ``pwrite:FD,OFFSET,DATA`` -> ``F<bytes written>``;
* ``fstat:FD`` -> ``F40;<64-byte struct stat>``;
* ``unlink:PATH`` -> ``F0``; ``readlink:PATH`` -> ``F<n>;<target>``;
* ``setfs:PID`` -> ``F0``: later PATHs are the ones process PID sees (0: ours);
* any other operation -> empty (not supported), as gdbserver answers.

A malformed request (bad hex, a missing field, flags or mode bits gdb does not
define, a NUL in a path) is answered ``F-1,16`` (EINVAL), never raised.

Decisions:

* An fd this connection did not open is ``EBADF`` (gdbserver says EINVAL).
* Files are opened close-on-exec (the server starts programs), ``O_NOCTTY``, and
  non-blocking for the open itself only, so a FIFO cannot hang the server.
* ``setfs`` with a process in our mount namespace uses our own filesystem, as
  gdbserver does (it ignores a chroot too). A process in another mount
  namespace has its paths resolved under /proc/PID/root with openat2's
  RESOLVE_IN_ROOT (absolute symlinks and ``..`` stay inside its root) and
  RESOLVE_NO_MAGICLINKS; gdbserver enters the namespace with a helper process.
* A reply never exceeds ``max_reply`` transmitted bytes: a ``pread`` returns
  fewer bytes than asked when escaping would make it longer; a ``readlink``
  that does not fit is ENAMETOOLONG (gdbserver's answer).
* Paths never reach a log or an exception message.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import stat
import struct
from collections.abc import Callable

from lindbg.os.linux.libc import libc
from lindbg.protocols.rsp import MAX_PACKET, hex_decode

__all__ = ["GDB_ERRNO", "HostFiles", "fileio_stat"]

#: Host errno -> gdb's File-I/O errno ("Errno Values"; EIO and ENOSYS as gdbserver
#: maps them too). Anything else is EUNKNOWN.
GDB_ERRNO = {
    errno.EPERM: 1,
    errno.ENOENT: 2,
    errno.EINTR: 4,
    errno.EIO: 5,
    errno.EBADF: 9,
    errno.EACCES: 13,
    errno.EFAULT: 14,
    errno.EBUSY: 16,
    errno.EEXIST: 17,
    errno.ENODEV: 19,
    errno.ENOTDIR: 20,
    errno.EISDIR: 21,
    errno.EINVAL: 22,
    errno.ENFILE: 23,
    errno.EMFILE: 24,
    errno.EFBIG: 27,
    errno.ENOSPC: 28,
    errno.ESPIPE: 29,
    errno.EROFS: 30,
    errno.ENOSYS: 88,
    errno.ENAMETOOLONG: 91,
}
_EUNKNOWN = 9999
_EINVAL = 22

# gdb's open flags ("Open Flags"); the access mode is the low two bits.
_GDB_O_ACCMODE = 0x3
_GDB_OPEN_FLAGS = {0x8: os.O_APPEND, 0x200: os.O_CREAT, 0x400: os.O_TRUNC, 0x800: os.O_EXCL}
_GDB_ACCESS = {0: os.O_RDONLY, 1: os.O_WRONLY, 2: os.O_RDWR}
_GDB_O_SUPPORTED = _GDB_O_ACCMODE | sum(_GDB_OPEN_FLAGS)
# gdb's mode_t bits ("mode_t Values") are Linux's own: S_IFREG, S_IFDIR, S_IFCHR, rwxrwxrwx.
_GDB_MODE_SUPPORTED = stat.S_IFREG | stat.S_IFDIR | stat.S_IFCHR | 0o777

#: gdb's ``struct stat``: big-endian st_dev, st_ino, st_mode, st_nlink, st_uid,
#: st_gid, st_rdev (u32), st_size, st_blksize, st_blocks (u64), st_atime,
#: st_mtime, st_ctime (u32): 64 bytes.
_FIO_STAT = struct.Struct(">7I3Q3I")
_U32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1

#: The smallest ``max_reply`` that can carry an fstat reply whatever its bytes.
_MIN_REPLY = 256
_HEX_NUMBER = re.compile(rb"[0-9a-fA-F]{1,16}")
_ESCAPED = (b"#", b"$", b"}", b"*")

# openat2(2): struct open_how and the resolve flags used under another root.
_SYS_OPENAT2 = 437
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class _Malformed(ValueError):
    """The request is not of its operation's form: answered EINVAL."""


def _reply(result: int, attachment: bytes | None = None) -> bytes:
    head = b"F%x" % result
    return head if attachment is None else head + b";" + attachment


def _error_reply(number: int) -> bytes:
    return b"F-1,%x" % number


def _gdb_errno(error: OSError) -> int:
    return GDB_ERRNO.get(error.errno or 0, _EUNKNOWN)


def _number(field: bytes) -> int:
    """A non-negative hex number of at most 64 bits."""
    if not _HEX_NUMBER.fullmatch(field):
        raise _Malformed("not a hex number")
    return int(field, 16)


def _fields(arguments: bytes, count: int) -> list[bytes]:
    parts = arguments.split(b",", count - 1)
    if len(parts) != count:
        raise _Malformed("wrong number of fields")
    return parts


def _path(field: bytes) -> bytes:
    path = hex_decode(field)  # PayloadError (a ValueError) on bad hex
    if b"\0" in path:
        raise _Malformed("NUL in a path")
    return path


def _escaped_size(data: bytes) -> int:
    return len(data) + sum(data.count(special) for special in _ESCAPED)


def fileio_stat(result: os.stat_result) -> bytes:
    """``result`` as gdb's 64-byte ``struct stat``: only the file types gdb knows
    (regular, directory, character device) and the rwx bits of the mode; every
    field cut to its width, as gdbserver does."""
    mode = result.st_mode & 0o777
    if stat.S_ISREG(result.st_mode):
        mode |= stat.S_IFREG
    elif stat.S_ISDIR(result.st_mode):
        mode |= stat.S_IFDIR
    elif stat.S_ISCHR(result.st_mode):
        mode |= stat.S_IFCHR
    return _FIO_STAT.pack(
        result.st_dev & _U32,
        result.st_ino & _U32,
        mode,
        result.st_nlink & _U32,
        result.st_uid & _U32,
        result.st_gid & _U32,
        result.st_rdev & _U32,
        result.st_size & _U64,
        result.st_blksize & _U64,
        result.st_blocks & _U64,
        int(result.st_atime) & _U32,
        int(result.st_mtime) & _U32,
        int(result.st_ctime) & _U32,
    )


def _openat2(directory: int, path: bytes, flags: int, mode: int) -> int:
    """openat2 with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: ``path`` resolved as
    if ``directory`` were the root."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    fd = int(
        libc.syscall(
            ctypes.c_long(_SYS_OPENAT2),
            ctypes.c_int(directory),
            ctypes.c_char_p(path),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
    )
    if fd < 0:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number))
    return fd


class HostFiles:
    """The host I/O state of one connection: its open files and its ``setfs``.

    Args:
        max_reply: the largest reply payload this connection may send, counted as
            transmitted (escaped; without ``$``, ``#`` and the checksum), e.g. the
            codec's ``peer_max_packet``. At least 256.
        max_files: how many files may be open at once (then EMFILE).
    """

    def __init__(self, max_reply: int = MAX_PACKET, *, max_files: int = 256) -> None:
        if max_reply < _MIN_REPLY:
            raise ValueError(f"max_reply must be at least {_MIN_REPLY}")
        if max_files < 1:
            raise ValueError("max_files must be positive")
        self.max_reply = max_reply
        self.max_files = max_files
        #: The process whose filesystem paths name (0: the server's own).
        self.fs_pid = 0
        self._fds: set[int] = set()
        self._operations: dict[bytes, Callable[[bytes], bytes]] = {
            b"open": self._open,
            b"close": self._close,
            b"pread": self._pread,
            b"pwrite": self._pwrite,
            b"fstat": self._fstat,
            b"unlink": self._unlink,
            b"readlink": self._readlink,
            b"setfs": self._setfs,
        }

    @property
    def open_count(self) -> int:
        """How many files this connection has open."""
        return len(self._fds)

    def handle(self, packet: bytes) -> bytes:
        """The reply payload to ``vFile:`` + ``packet``; empty for an operation
        not supported. Never raises for anything the peer sends."""
        name, colon, arguments = packet.partition(b":")
        operation = self._operations.get(name) if colon else None
        if operation is None:
            return b""
        try:
            return operation(arguments)
        except OSError as error:
            return _error_reply(_gdb_errno(error))
        except (ValueError, OverflowError):  # _Malformed, PayloadError, an offset past off_t
            return _error_reply(_EINVAL)

    def close_all(self) -> None:
        """Close every file this connection opened (it has ended)."""
        fds, self._fds = self._fds, set()
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    # ------------------------------------------------------------ operations

    def _open(self, arguments: bytes) -> bytes:
        path_field, flags_field, mode_field = _fields(arguments, 3)
        path, gdb_flags, gdb_mode = _path(path_field), _number(flags_field), _number(mode_field)
        access = gdb_flags & _GDB_O_ACCMODE
        if gdb_flags & ~_GDB_O_SUPPORTED or access not in _GDB_ACCESS:
            raise _Malformed("open flags gdb does not define")
        if gdb_mode & ~_GDB_MODE_SUPPORTED:
            raise _Malformed("mode bits gdb does not define")
        flags = _GDB_ACCESS[access] | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
        for bit, host in _GDB_OPEN_FLAGS.items():
            if gdb_flags & bit:
                flags |= host
        if len(self._fds) >= self.max_files:
            return _error_reply(GDB_ERRNO[errno.EMFILE])
        root = self._root()
        try:
            fd = (
                os.open(path, flags, gdb_mode & 0o777)
                if root is None
                else _openat2(root, path, flags, gdb_mode & 0o777)
            )
        finally:
            if root is not None:
                os.close(root)
        try:
            os.set_blocking(fd, True)
        except OSError:
            os.close(fd)
            raise
        self._fds.add(fd)
        return _reply(fd)

    def _close(self, arguments: bytes) -> bytes:
        fd = self._known(_number(arguments))
        self._fds.discard(fd)
        os.close(fd)  # on Linux the descriptor is gone even when close fails
        return _reply(0)

    def _pread(self, arguments: bytes) -> bytes:
        fd_field, count_field, offset_field = _fields(arguments, 3)
        fd, count, offset = _number(fd_field), _number(count_field), _number(offset_field)
        self._known(fd)
        # The longest header ("F<count>;") the budget can need, then the bytes.
        budget = self.max_reply - len(b"F%x;" % self.max_reply)
        data = os.pread(fd, min(count, budget), offset)
        if _escaped_size(data) > budget:
            data = data[: self._fitting(data, budget)]
        return _reply(len(data), data)

    @staticmethod
    def _fitting(data: bytes, budget: int) -> int:
        """The longest prefix of ``data`` whose escaped form fits ``budget``."""
        low, high = 0, min(len(data), budget)
        while low < high:
            middle = (low + high + 1) // 2
            if _escaped_size(data[:middle]) <= budget:
                low = middle
            else:
                high = middle - 1
        return low

    def _pwrite(self, arguments: bytes) -> bytes:
        fd_field, offset_field, data = _fields(arguments, 3)
        fd, offset = _number(fd_field), _number(offset_field)
        return _reply(os.pwrite(self._known(fd), data, offset))

    def _fstat(self, arguments: bytes) -> bytes:
        return _reply(_FIO_STAT.size, fileio_stat(os.fstat(self._known(_number(arguments)))))

    def _unlink(self, arguments: bytes) -> bytes:
        path = _path(arguments)
        located = self._located(path)
        if located is None:
            os.unlink(path)
        else:
            directory, name = located
            try:
                os.unlink(name, dir_fd=directory)
            finally:
                os.close(directory)
        return _reply(0)

    def _readlink(self, arguments: bytes) -> bytes:
        path = _path(arguments)
        located = self._located(path)
        if located is None:
            target = os.readlink(path)
        else:
            directory, name = located
            try:
                target = os.readlink(name, dir_fd=directory)
            finally:
                os.close(directory)
        if len(b"F%x;" % len(target)) + _escaped_size(target) > self.max_reply:
            return _error_reply(GDB_ERRNO[errno.ENAMETOOLONG])
        return _reply(len(target), target)

    def _setfs(self, arguments: bytes) -> bytes:
        self.fs_pid = _number(arguments)
        return _reply(0)

    # --------------------------------------------------------------- helpers

    def _known(self, fd: int) -> int:
        """``fd`` if this connection opened it (a request is parsed whole first:
        a malformed one is EINVAL whatever its fd)."""
        if fd not in self._fds:
            raise OSError(errno.EBADF, "not a file of this connection")
        return fd

    def _root(self) -> int | None:
        """None when paths mean what they mean to the server; else an O_PATH
        descriptor of the root of ``fs_pid``, in another mount namespace (the
        caller closes it).

        Raises:
            OSError: the process is gone, or is not ours to look into.
        """
        if not self.fs_pid:
            return None
        ours = os.stat("/proc/self/ns/mnt")
        theirs = os.stat(f"/proc/{self.fs_pid}/ns/mnt")
        if (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino):
            return None
        return os.open(f"/proc/{self.fs_pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def _located(self, path: bytes) -> tuple[int, bytes] | None:
        """For an operation on ``path`` itself (unlink, readlink): None under our
        own filesystem, else (an O_PATH descriptor of its directory, resolved
        inside the other root, which the caller closes; its last component)."""
        root = self._root()
        if root is None:
            return None
        parent, _, name = path.rstrip(b"/").rpartition(b"/")
        try:
            if not name:  # the root itself, or "": nothing to unlink or read
                raise OSError(errno.EINVAL if path else errno.ENOENT, "no name")
            if not parent:
                parent = b"/" if path.startswith(b"/") else b"."
            directory = _openat2(root, parent, os.O_PATH | os.O_DIRECTORY, 0)
        finally:
            os.close(root)
        return directory, name
