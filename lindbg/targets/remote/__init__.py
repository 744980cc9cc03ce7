"""Processes on another machine, behind a process server (the GDB remote protocol)."""

from lindbg.targets.remote.target import RemoteTarget

__all__ = ["RemoteTarget"]
