"""How other threads reach a thread that owns engine work.

Every thread that owns clients (the engine thread included) has one
``Inbox``: a FIFO of callables that only that thread runs, inside its
``wait_for_event`` or ``dispatch_callbacks``. Other threads ``post`` work and,
when they need the answer, wait on the returned ``Reply``. Work runs in the
order it was posted.

A thread that also waits on something else (a server's connection on its
socket) waits on ``fileno()`` with select/poll beside it: the descriptor is
readable while work or an exit request is queued. The engine thread is woken
out of its target's wait by ``on_post`` (the engine calls ``Target.wake``).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any


class Reply:
    """The result of a posted call, set exactly once by the thread that ran it."""

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def set(self, value: Any = None, error: BaseException | None = None) -> None:
        self._value = value
        self._error = error
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def result(self) -> Any:
        """The value, or raise the exception the call raised."""
        if self._error is not None:
            raise self._error
        return self._value


class Inbox:
    """Work for one thread, run in FIFO order by that thread only."""

    def __init__(self, owner: int) -> None:
        self.owner = owner
        self._items: deque[tuple[Callable[[], Any], Reply | None]] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._exit_requested = False
        #: Called after each post (the engine thread's: wake its target).
        self.on_post: Callable[[], None] | None = None
        #: An eventfd, made when first asked for (``fileno``); readable while work waits.
        self._eventfd = -1

    def post(self, fn: Callable[[], Any], want_reply: bool = True) -> Reply | None:
        """Queue ``fn`` for the owner thread; return a Reply to wait on, if asked."""
        reply = Reply() if want_reply else None
        with self._cond:
            self._items.append((fn, reply))
            self._cond.notify_all()
        self._signal()
        return reply

    def wake(self) -> None:
        """Wake the owner from ``wait`` without giving it work."""
        with self._cond:
            self._cond.notify_all()
        self._signal()

    def request_exit(self) -> None:
        """Make the owner's current (or next) ``dispatch_callbacks`` return True."""
        with self._cond:
            self._exit_requested = True
            self._cond.notify_all()
        self._signal()

    def _signal(self) -> None:
        if self._eventfd >= 0:
            try:
                os.eventfd_write(self._eventfd, 1)
            except OSError:
                pass  # closed meanwhile
        if self.on_post is not None:
            self.on_post()

    def fileno(self) -> int:
        """A descriptor that polls readable while work or an exit request waits here
        (and spuriously after a ``wake``); ``run_pending`` drains it."""
        with self._cond:
            if self._eventfd < 0:
                self._eventfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
                if self._items or self._exit_requested:
                    os.eventfd_write(self._eventfd, 1)
            return self._eventfd

    def close(self) -> None:
        """Release the descriptor (the inbox still works without one)."""
        with self._cond:
            fd, self._eventfd = self._eventfd, -1
        if fd >= 0:
            os.close(fd)

    def take_exit_request(self) -> bool:
        with self._cond:
            requested, self._exit_requested = self._exit_requested, False
            return requested

    def __bool__(self) -> bool:
        return bool(self._items)

    def run_pending(self) -> int:
        """Run everything queued (owner thread only); return how many ran."""
        if self._eventfd >= 0:
            try:
                os.eventfd_read(self._eventfd)
            except OSError:
                pass  # nothing was signalled (EAGAIN)
        ran = 0
        while self._items:
            fn, reply = self._items.popleft()
            ran += 1
            try:
                value = fn()
            except BaseException as error:  # handed to the poster, not lost
                if reply is None:
                    raise
                reply.set(error=error)
            else:
                if reply is not None:
                    reply.set(value)
        return ran

    def wait(self, timeout: float | None, *, for_exit: bool = True) -> None:
        """Block until something is posted, an exit is requested (unless not
        ``for_exit``: a call waiting for its reply leaves the request to the
        ``dispatch_callbacks`` it returns to), or ``timeout``."""
        with self._cond:
            if self._items or (for_exit and self._exit_requested):
                return
            self._cond.wait(timeout)

    def dispatch(
        self,
        timeout: float | None,
        check: Callable[[], None],
        wait: Callable[[float | None], None] | None = None,
    ) -> bool:
        """Owner thread: run posted work until an exit is requested (True) or
        ``timeout`` passes (False); ``check`` raises when waiting is pointless
        (the engine or the link is gone). ``wait`` replaces ``self.wait`` for an
        owner that also watches something else meanwhile (a link it reads). What
        ``dispatch_callbacks`` does."""
        wait = wait or self.wait
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.run_pending()
            if self.take_exit_request():
                return True
            check()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            wait(remaining)
