"""Waking the engine thread out of waitpid(2), where a condition variable cannot
reach it.

``Doorbell.ring`` is what ``LiveTarget.wake`` does: while the engine thread is
blocked in waitpid and the target has been asked to wake, a watcher thread sends
it a signal (lindbg.os.linux.wakeup) and repeats every few milliseconds until it
has come out, which closes the window between the target's last look at its wake
flag and its entering waitpid. A deadline (``wait_event(deadline)``) rings the
same way when it passes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from lindbg.os.linux import wakeup

#: How often the doorbell repeats its signal while it is not answered.
_RING_INTERVAL = 0.005
#: How long the doorbell's thread waits with nothing to watch before it ends.
_IDLE_EXIT = 1.0


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
