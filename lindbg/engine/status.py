"""Combining the statuses several callbacks return: least execution wins."""

from __future__ import annotations

from lindbg.constants import STATUS_PRECEDENCE, Status

#: Lower rank wins.
_RANK: dict[int, int] = {int(status): rank for rank, status in enumerate(STATUS_PRECEDENCE)}
for _status in Status:
    _RANK.setdefault(int(_status), len(STATUS_PRECEDENCE))
_UNRANKED = len(STATUS_PRECEDENCE)


def stronger(current: Status, candidate: object) -> Status:
    """Return whichever of ``current`` and ``candidate`` asks for less execution.

    A value that is not a ranked status (``None``, garbage, NO_DEBUGGEE ...)
    counts as NO_CHANGE, so a callback that forgets to return keeps its
    neutral vote.
    """
    if candidate.__class__ is Status:  # the usual case, kept cheap: it runs per event
        return candidate if _RANK[candidate] < _RANK[current] else current
    if not isinstance(candidate, int):
        return current
    rank = _RANK.get(int(candidate), _UNRANKED)
    if rank < _RANK[int(current)]:
        return Status(int(candidate))
    return current


def combine(statuses: list[object]) -> Status:
    """The status the engine acts on when callbacks returned ``statuses``."""
    result = Status.NO_CHANGE
    for status in statuses:
        result = stronger(result, status)
    return result
