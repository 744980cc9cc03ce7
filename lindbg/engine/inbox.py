"""How other threads reach a thread that owns engine work.

Every thread that owns clients (the engine thread included) has one
``Inbox``: a FIFO of callables that only that thread runs, inside its
``wait_for_event`` or ``dispatch_callbacks``. Other threads ``post`` work and,
when they need the answer, wait on the returned ``Reply``.

The engine thread spends its running time blocked in waitpid(2), where a
condition variable cannot reach it; the ``Doorbell`` wakes it with a signal
(lindbg.os.linux.wakeup) and repeats every few milliseconds until the engine
thread has come out, which closes the window between the engine's last look
at its inbox and its entering waitpid.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from lindbg.os.linux import wakeup

#: How often the doorbell repeats its signal while it is not answered.
_RING_INTERVAL = 0.005
#: How long the doorbell's thread waits with nothing to watch before it ends.
_IDLE_EXIT = 1.0


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
        #: Called after each post (the engine thread's doorbell).
        self.on_post: Callable[[], None] | None = None

    def post(self, fn: Callable[[], Any], want_reply: bool = True) -> Reply | None:
        """Queue ``fn`` for the owner thread; return a Reply to wait on, if asked."""
        reply = Reply() if want_reply else None
        with self._cond:
            self._items.append((fn, reply))
            self._cond.notify_all()
        if self.on_post is not None:
            self.on_post()
        return reply

    def wake(self) -> None:
        """Wake the owner from ``wait`` without giving it work."""
        with self._cond:
            self._cond.notify_all()
        if self.on_post is not None:
            self.on_post()

    def request_exit(self) -> None:
        """Make the owner's current (or next) ``dispatch_callbacks`` return True."""
        with self._cond:
            self._exit_requested = True
            self._cond.notify_all()
        if self.on_post is not None:
            self.on_post()

    def take_exit_request(self) -> bool:
        with self._cond:
            requested, self._exit_requested = self._exit_requested, False
            return requested

    def __bool__(self) -> bool:
        return bool(self._items)

    def run_pending(self) -> int:
        """Run everything queued (owner thread only); return how many ran."""
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

    def wait(self, timeout: float | None) -> None:
        """Block until something is posted, an exit is requested, or ``timeout``."""
        with self._cond:
            if self._items or self._exit_requested:
                return
            self._cond.wait(timeout)


class Doorbell:
    """Wakes the engine thread out of waitpid when it has work or a deadline.

    Its thread runs only while needed: it ends after a second with nothing to
    watch, so an engine left alone costs no thread.
    """

    def __init__(self, engine_thread: int, has_work: Callable[[], bool]) -> None:
        self._engine_thread = engine_thread
        self._has_work = has_work
        self._cond = threading.Condition(threading.Lock())
        self._deadline: float | None = None
        #: True while the engine thread is blocked (or about to block) in waitpid.
        self.blocked = False
        self._closed = False
        self._running = False
        wakeup.install_wake_handler()

    def _ensure_thread(self) -> None:
        """Start the watcher if it is not running (caller holds ``_cond``)."""
        if not self._running and not self._closed:
            self._running = True
            threading.Thread(target=self._run, name="lindbg-doorbell", daemon=True).start()

    def set_deadline(self, deadline: float | None) -> None:
        """The engine thread must come out of waitpid at ``deadline`` (monotonic)."""
        if deadline == self._deadline:
            return
        with self._cond:
            self._deadline = deadline
            if deadline is not None:
                self._ensure_thread()
            self._cond.notify_all()

    def ring(self) -> None:
        """Someone posted work or changed state the engine thread must see."""
        with self._cond:
            self._ensure_thread()
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _due(self) -> bool:
        if not self.blocked:
            return False
        if self._has_work():
            return True
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _run(self) -> None:
        with self._cond:
            idle = 0
            while not self._closed:
                if self._due():
                    idle = 0
                    wakeup.wake(self._engine_thread)
                    self._cond.wait(_RING_INTERVAL)
                    continue
                if self._has_work() or (self._deadline is not None and not self.blocked):
                    idle = 0
                    self._cond.wait(_RING_INTERVAL)
                elif self._deadline is not None:
                    idle = 0
                    self._cond.wait(max(self._deadline - time.monotonic(), 0.0))
                else:
                    idle += 1
                    if idle > 1:
                        break  # a second with nothing to watch: leave until rung again
                    self._cond.wait(_IDLE_EXIT)
            self._running = False
