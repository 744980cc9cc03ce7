"""Target memory: process_vm_readv for reads, /proc/PID/mem for writes.

``process_vm_readv`` cannot write to read-only mappings (code), while
/proc/PID/mem can (the kernel forces the access for a tracer), so writes go
there; reads fall back to it when process_vm_readv is refused.
"""

from __future__ import annotations

import ctypes
import os

from lindbg.os.linux.libc import IoVec, libc

_readv = libc.process_vm_readv
IoVecPointer = ctypes.POINTER(IoVec)
_readv.argtypes = (ctypes.c_int, IoVecPointer, ctypes.c_ulong, IoVecPointer, ctypes.c_ulong, ctypes.c_ulong)
_readv.restype = ctypes.c_ssize_t
_writev = libc.process_vm_writev
_writev.argtypes = _readv.argtypes
_writev.restype = ctypes.c_ssize_t


class ProcessMemory:
    """Reads and writes the memory of one process.

    A short read (the range crosses into unmapped memory) returns the bytes
    that could be read; the caller decides whether that is an error.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._fd: int | None = None
        self._buf = ctypes.create_string_buffer(1 << 16)
        self._local = IoVec(ctypes.addressof(self._buf), 0)
        self._remote = IoVec(0, 0)
        self._local_ref = ctypes.byref(self._local)
        self._remote_ref = ctypes.byref(self._remote)
        # emulated stores write 1-8 bytes on every breakpoint hit: no allocation there
        self._small = ctypes.create_string_buffer(16)
        self._small_iov = IoVec(ctypes.addressof(self._small), 0)
        self._small_ref = ctypes.byref(self._small_iov)

    def _mem_fd(self) -> int:
        if self._fd is None:
            self._fd = os.open(f"/proc/{self.pid}/mem", os.O_RDWR | os.O_CLOEXEC)
        return self._fd

    def read(self, address: int, size: int) -> bytes:
        """Read up to ``size`` bytes at ``address``; fewer if memory ends."""
        if size <= 0:
            return b""
        if size > len(self._buf):
            self._buf = ctypes.create_string_buffer(size)
            self._local.iov_base = ctypes.addressof(self._buf)
        self._local.iov_len = size
        self._remote.iov_base = address
        self._remote.iov_len = size
        got = _readv(self.pid, self._local_ref, 1, self._remote_ref, 1, 0)
        if got == size:
            return ctypes.string_at(self._buf, size)
        if got > 0:
            return ctypes.string_at(self._buf, got) + self._read_proc(address + got, size - got)
        return self._read_proc(address, size)

    def read_into(self, address: int, buffer: bytearray | memoryview) -> int:
        """Read into ``buffer`` (writable, contiguous) without an extra copy.

        Returns how many bytes were read: ``len(buffer)`` unless memory ends first.
        """
        size = len(buffer)
        if size == 0:
            return 0
        target = (ctypes.c_char * size).from_buffer(buffer)
        local = IoVec(ctypes.addressof(target), size)
        self._remote.iov_base = address
        self._remote.iov_len = size
        got = int(_readv(self.pid, ctypes.byref(local), 1, self._remote_ref, 1, 0))
        if got == size:
            return got
        got = max(got, 0)
        rest = self._read_proc(address + got, size - got)
        buffer[got : got + len(rest)] = rest
        return got + len(rest)

    def read_as_program(self, address: int, size: int) -> bytes:
        """Read with the program's own page protections (process_vm_readv only).

        /proc/PID/mem lets a tracer read pages the program cannot (PROT_NONE
        guards); an emulated load must fault where the CPU would, so this
        returns fewer bytes than asked instead of falling back.
        """
        self._local.iov_len = size
        self._remote.iov_base = address
        self._remote.iov_len = size
        got = int(_readv(self.pid, self._local_ref, 1, self._remote_ref, 1, 0))
        return ctypes.string_at(self._buf, got) if got > 0 else b""

    def write_as_program(self, address: int, data: bytes) -> int:
        """Write with the program's own page protections (process_vm_writev);
        return how many bytes were written (fewer on a read-only page)."""
        size = len(data)
        if size > len(self._small):
            self._small = ctypes.create_string_buffer(size)
            self._small_iov.iov_base = ctypes.addressof(self._small)
        ctypes.memmove(self._small, data, size)
        self._small_iov.iov_len = size
        self._remote.iov_base = address
        self._remote.iov_len = size
        return max(int(_writev(self.pid, self._small_ref, 1, self._remote_ref, 1, 0)), 0)

    def _read_proc(self, address: int, size: int) -> bytes:
        try:
            return os.pread(self._mem_fd(), size, address)
        except (OSError, OverflowError):  # OverflowError: an address beyond off_t (>= 2**63)
            return b""

    def write(self, address: int, data: bytes) -> int:
        """Write ``data`` at ``address``; return how many bytes were written."""
        try:
            return os.pwrite(self._mem_fd(), data, address)
        except (OSError, OverflowError):
            return 0

    def close(self) -> None:
        """Release the /proc/PID/mem descriptor."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
