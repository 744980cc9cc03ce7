"""Helpers for testing code built on lindbg, shipped with it (as ``trio.testing`` is).

``FakeTarget`` is a scripted ``Target``: drive the engine's session logic
(callbacks, notification order, event filters, endings) with no process and no
ptrace, through ``DebugClient().create_process(argv, server=FakeTarget(...))``.
"""

from lindbg.testing.fake_target import FakeTarget

__all__ = ["FakeTarget"]
