"""ptrace(2) and waitpid(2) through ctypes.

Each wrapper raises ``OSError`` (errno set) on failure; callers turn it into a
``TargetAccessError`` naming the pid. Arguments are converted once by the
declared argtypes; the hot-path calls (``cont``, ``getregs``, ``setregs``,
``waitpid``) reuse preallocated buffers.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal

from lindbg.arch.x86_64 import FpRegs, UserRegs
from lindbg.os.linux.libc import IoVec, libc, os_error

PTRACE_TRACEME = 0
PTRACE_PEEKDATA = 2
PTRACE_PEEKUSER = 3
PTRACE_POKEDATA = 5
PTRACE_POKEUSER = 6
PTRACE_CONT = 7
PTRACE_KILL = 8
PTRACE_SINGLESTEP = 9
PTRACE_GETREGS = 12
PTRACE_SETREGS = 13
PTRACE_GETFPREGS = 14
PTRACE_SETFPREGS = 15
PTRACE_ATTACH = 16
PTRACE_DETACH = 17
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETEVENTMSG = 0x4201
PTRACE_GETSIGINFO = 0x4202
PTRACE_GETREGSET = 0x4204
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207

PTRACE_O_TRACESYSGOOD = 0x01
PTRACE_O_TRACEFORK = 0x02
PTRACE_O_TRACEVFORK = 0x04
PTRACE_O_TRACECLONE = 0x08
PTRACE_O_TRACEEXEC = 0x10
PTRACE_O_TRACEVFORKDONE = 0x20
PTRACE_O_TRACEEXIT = 0x40
PTRACE_O_EXITKILL = 0x100000

PTRACE_EVENT_FORK = 1
PTRACE_EVENT_VFORK = 2
PTRACE_EVENT_CLONE = 3
PTRACE_EVENT_EXEC = 4
PTRACE_EVENT_VFORK_DONE = 5
PTRACE_EVENT_EXIT = 6
PTRACE_EVENT_STOP = 128

WNOHANG = 1
WUNTRACED = 2
WALL = 0x40000000
WNOTHREAD = 0x20000000

_ptrace = libc.ptrace
_ptrace.argtypes = (ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p)
_ptrace.restype = ctypes.c_long

_waitpid = libc.waitpid
_waitpid.argtypes = (ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.c_int)
_waitpid.restype = ctypes.c_int

# The hot-path calls skip argtypes conversion (about 1 us a call here): every
# argument they get is a small int or a prebuilt byref(), which libffi passes
# as is (ints sign-extended to 64 bits, as the variadic ptrace reads them).
_ptrace_fast = libc["ptrace"]
_ptrace_fast.restype = ctypes.c_long
_waitpid_fast = libc["waitpid"]
_waitpid_fast.restype = ctypes.c_int

_syscall = libc.syscall
_syscall.restype = ctypes.c_long
SYS_tgkill = 234
SYS_gettid = 186


class SigInfo(ctypes.Structure):
    """The head of ``siginfo_t``: number, errno, code, and the fault address."""

    _fields_ = [
        ("si_signo", ctypes.c_int),
        ("si_errno", ctypes.c_int),
        ("si_code", ctypes.c_int),
        ("_pad0", ctypes.c_int),
        ("si_addr", ctypes.c_uint64),
        ("_rest", ctypes.c_byte * 104),
    ]


def _check(result: int, what: str, pid: int) -> int:
    if result == -1:
        raise os_error(f"{what} (tid {pid})")
    return result


def traceme() -> None:
    """PTRACE_TRACEME, for a freshly forked child (raises on failure)."""
    _check(_ptrace(PTRACE_TRACEME, 0, None, None), "PTRACE_TRACEME", os.getpid())


def cont(tid: int, sig: int = 0) -> None:
    """Resume ``tid`` delivering ``sig`` (0: none)."""
    if _ptrace_fast(PTRACE_CONT, tid, 0, sig) == -1:
        raise os_error(f"PTRACE_CONT (tid {tid})")


def singlestep(tid: int, sig: int = 0) -> None:
    """Execute one instruction of ``tid``."""
    if _ptrace_fast(PTRACE_SINGLESTEP, tid, 0, sig) == -1:
        raise os_error(f"PTRACE_SINGLESTEP (tid {tid})")


def getregs(tid: int, regs: UserRegs) -> None:
    """Fill ``regs`` with the general registers of stopped ``tid``."""
    if _ptrace_fast(PTRACE_GETREGS, tid, 0, ctypes.byref(regs)) == -1:
        raise os_error(f"PTRACE_GETREGS (tid {tid})")


def setregs(tid: int, regs: UserRegs) -> None:
    """Write ``regs`` back to stopped ``tid``."""
    if _ptrace_fast(PTRACE_SETREGS, tid, 0, ctypes.byref(regs)) == -1:
        raise os_error(f"PTRACE_SETREGS (tid {tid})")


def getfpregs(tid: int) -> FpRegs:
    """Return the FXSAVE area (x87 and SSE) of stopped ``tid``."""
    fp = FpRegs()
    _check(_ptrace(PTRACE_GETFPREGS, tid, None, ctypes.addressof(fp)), "PTRACE_GETFPREGS", tid)
    return fp


def getregset(tid: int, note_type: int, size: int) -> bytes:
    """PTRACE_GETREGSET: the register set ``note_type`` (e.g. NT_X86_XSTATE)."""
    buf = ctypes.create_string_buffer(size)
    iov = IoVec(ctypes.addressof(buf), size)
    _check(_ptrace(PTRACE_GETREGSET, tid, note_type, ctypes.addressof(iov)), "PTRACE_GETREGSET", tid)
    return buf.raw[: iov.iov_len]


def peekuser(tid: int, offset: int) -> int:
    """Read the word at ``offset`` of ``struct user`` (debug registers)."""
    ctypes.set_errno(0)
    value = _ptrace(PTRACE_PEEKUSER, tid, offset, None)
    if value == -1 and ctypes.get_errno():
        raise os_error(f"PTRACE_PEEKUSER (tid {tid})")
    return int(value) & 0xFFFFFFFFFFFFFFFF


def pokeuser(tid: int, offset: int, value: int) -> None:
    """Write ``value`` at ``offset`` of ``struct user`` (debug registers)."""
    _check(_ptrace(PTRACE_POKEUSER, tid, offset, value), "PTRACE_POKEUSER", tid)


def peekdata(tid: int, address: int) -> int:
    """Read one word of memory with PTRACE_PEEKDATA (the slow fallback)."""
    ctypes.set_errno(0)
    value = _ptrace(PTRACE_PEEKDATA, tid, address, None)
    if value == -1 and ctypes.get_errno():
        raise os_error(f"PTRACE_PEEKDATA (tid {tid})")
    return int(value) & 0xFFFFFFFFFFFFFFFF


def pokedata(tid: int, address: int, word: int) -> None:
    """Write one word of memory with PTRACE_POKEDATA (the slow fallback)."""
    _check(_ptrace(PTRACE_POKEDATA, tid, address, word), "PTRACE_POKEDATA", tid)


def setoptions(tid: int, options: int) -> None:
    """PTRACE_SETOPTIONS."""
    _check(_ptrace(PTRACE_SETOPTIONS, tid, None, options), "PTRACE_SETOPTIONS", tid)


def geteventmsg(tid: int) -> int:
    """PTRACE_GETEVENTMSG: new pid/tid of a fork/clone, or the exit status."""
    msg = ctypes.c_ulong()
    _check(_ptrace(PTRACE_GETEVENTMSG, tid, None, ctypes.addressof(msg)), "PTRACE_GETEVENTMSG", tid)
    return msg.value


def getsiginfo(tid: int) -> SigInfo:
    """PTRACE_GETSIGINFO for the signal ``tid`` is stopped with."""
    info = SigInfo()
    _check(_ptrace(PTRACE_GETSIGINFO, tid, None, ctypes.addressof(info)), "PTRACE_GETSIGINFO", tid)
    return info


def seize(tid: int, options: int) -> None:
    """PTRACE_SEIZE ``tid`` with ``options`` (no signal is sent)."""
    _check(_ptrace(PTRACE_SEIZE, tid, None, options), "PTRACE_SEIZE", tid)


def interrupt(tid: int) -> None:
    """PTRACE_INTERRUPT a seized ``tid``."""
    _check(_ptrace(PTRACE_INTERRUPT, tid, None, None), "PTRACE_INTERRUPT", tid)


def detach(tid: int, sig: int = 0) -> None:
    """PTRACE_DETACH ``tid``, delivering ``sig``."""
    _check(_ptrace(PTRACE_DETACH, tid, None, sig), "PTRACE_DETACH", tid)


_status = ctypes.c_int()
_status_ref = ctypes.byref(_status)


def waitpid(pid: int, options: int) -> tuple[int, int]:
    """waitpid(2) returning ``(pid, status)``; ``(0, 0)`` with WNOHANG and nothing.

    Raises:
        InterruptedError: a signal interrupted the wait (the engine's wake-up).
        ChildProcessError: nothing to wait for.
    """
    result = _waitpid_fast(pid, _status_ref, options)
    if result == -1:
        err = ctypes.get_errno()
        if err == errno.EINTR:
            raise InterruptedError(err, "waitpid interrupted")
        raise os_error(f"waitpid({pid})")
    return result, _status.value


P_ALL = 0
P_PID = 1
WEXITED = 4
WSTOPPED = 2
WNOWAIT = 0x01000000
CLD_EXITED = 1
CLD_KILLED = 2
CLD_DUMPED = 3
CLD_TRAPPED = 4


class _ChildInfo(ctypes.Structure):
    """The SIGCHLD view of ``siginfo_t`` that waitid(2) fills."""

    _fields_ = [
        ("si_signo", ctypes.c_int),
        ("si_errno", ctypes.c_int),
        ("si_code", ctypes.c_int),
        ("_pad0", ctypes.c_int),
        ("si_pid", ctypes.c_int),
        ("si_uid", ctypes.c_int),
        ("si_status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 100),
    ]


_waitid = libc.waitid
_waitid.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.POINTER(_ChildInfo), ctypes.c_int)
_waitid.restype = ctypes.c_int
_child_info = _ChildInfo()
_child_info_ref = ctypes.byref(_child_info)
_waitid_fast = libc["waitid"]  # no argtypes: small ints and a prebuilt byref (hot path)
_waitid_fast.restype = ctypes.c_int


def peek_child(idtype: int, ident: int, options: int) -> tuple[int, int, int]:
    """waitid(2) with WNOWAIT: ``(pid, si_code, wait status)`` of a waitable child,
    left waitable.

    Returns ``(0, 0, 0)`` with WNOHANG and nothing to report.

    Raises:
        InterruptedError: a signal interrupted the wait.
        ChildProcessError: no such child.
    """
    _child_info.si_pid = 0
    if _waitid_fast(idtype, ident, _child_info_ref, options | WNOWAIT) == -1:
        err = ctypes.get_errno()
        if err == errno.EINTR:
            raise InterruptedError(err, "waitid interrupted")
        raise os_error(f"waitid({ident})")
    code = _child_info.si_code
    status = _child_info.si_status
    if code == CLD_EXITED:
        status = (status & 0xFF) << 8
    elif code in (CLD_KILLED, CLD_DUMPED):
        status = (status & 0x7F) | (0x80 if code == CLD_DUMPED else 0)
    else:
        status = ((status & 0xFFFF) << 8) | 0x7F
    return _child_info.si_pid, code, status


def tgkill(tgid: int, tid: int, sig: int) -> bool:
    """Send ``sig`` to thread ``tid`` of ``tgid``; False if it no longer exists."""
    return int(_syscall(SYS_tgkill, ctypes.c_int(tgid), ctypes.c_int(tid), ctypes.c_int(sig))) == 0


def gettid() -> int:
    """The kernel thread id of the calling thread."""
    return int(_syscall(SYS_gettid))


def stop_signal(status: int) -> int:
    """WSTOPSIG: the signal of a stopped status."""
    return (status >> 8) & 0xFF


def event_of(status: int) -> int:
    """The PTRACE_EVENT_* of a stopped status (0 for a plain signal stop)."""
    return status >> 16


def is_stopped(status: int) -> bool:
    """WIFSTOPPED."""
    return (status & 0xFF) == 0x7F


def is_exited(status: int) -> bool:
    """WIFEXITED."""
    return (status & 0x7F) == 0


def exit_status(status: int) -> int:
    """WEXITSTATUS."""
    return (status >> 8) & 0xFF


def term_signal(status: int) -> int:
    """WTERMSIG of a signalled status."""
    return status & 0x7F


def exit_code_of(status: int) -> int:
    """An exit code for a terminated status: the exit status, or 128 + signal."""
    if is_exited(status):
        return exit_status(status)
    return 128 + term_signal(status)


SIGTRAP = int(signal.SIGTRAP)
SIGSTOP = int(signal.SIGSTOP)
