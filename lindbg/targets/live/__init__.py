"""Live Linux processes debugged through ptrace."""

from lindbg.targets.live.target import LiveTarget

__all__ = ["LiveTarget"]
