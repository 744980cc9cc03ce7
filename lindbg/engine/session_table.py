"""The session state machine: every transition lives in this table.

It knows nothing of ptrace or callbacks; the engine feeds it what happened
(``SessionInput``) and gets back the new state and the ``SessionStatus``
reason to announce, if any. Invalid inputs raise ``InvalidOperationError``
naming the input and the state, and leave the state unchanged.
"""

from __future__ import annotations

import enum

from lindbg.constants import SessionStatus
from lindbg.errors import EngineUnusableError, InvalidOperationError


class SessionState(enum.Enum):
    #: No target: the engine waits for a launch, an attach or a dump.
    INACTIVE = enum.auto()
    #: At least one target.
    ACTIVE = enum.auto()
    #: ``end_session(REENTRANT)`` was called: nothing works any more.
    UNUSABLE = enum.auto()


class SessionInput(enum.Enum):
    TARGET_GAINED = enum.auto()
    END_PASSIVE = enum.auto()
    END_ACTIVE_TERMINATE = enum.auto()
    END_ACTIVE_DETACH = enum.auto()
    #: The last process exited.
    TARGETS_EXITED = enum.auto()
    #: The engine cannot go on with this session.
    FAILED = enum.auto()
    END_REENTRANT = enum.auto()


_A, _I, _U = SessionState.ACTIVE, SessionState.INACTIVE, SessionState.UNUSABLE

#: (state, input) -> (next state, status to announce or None).
TRANSITIONS: dict[tuple[SessionState, SessionInput], tuple[SessionState, SessionStatus | None]] = {
    (_I, SessionInput.TARGET_GAINED): (_A, SessionStatus.ACTIVE),
    (_A, SessionInput.TARGET_GAINED): (_A, None),
    (_A, SessionInput.END_PASSIVE): (_I, SessionStatus.END_SESSION_PASSIVE),
    (_A, SessionInput.END_ACTIVE_TERMINATE): (_I, SessionStatus.END_SESSION_ACTIVE_TERMINATE),
    (_A, SessionInput.END_ACTIVE_DETACH): (_I, SessionStatus.END_SESSION_ACTIVE_DETACH),
    (_A, SessionInput.TARGETS_EXITED): (_I, SessionStatus.END),
    (_A, SessionInput.FAILED): (_I, SessionStatus.FAILURE),
    # ending a session that is not there is harmless and announces nothing
    (_I, SessionInput.END_PASSIVE): (_I, None),
    (_I, SessionInput.END_ACTIVE_TERMINATE): (_I, None),
    (_I, SessionInput.END_ACTIVE_DETACH): (_I, None),
    (_I, SessionInput.FAILED): (_I, None),
    (_A, SessionInput.END_REENTRANT): (_U, None),
    (_I, SessionInput.END_REENTRANT): (_U, None),
    (_U, SessionInput.END_REENTRANT): (_U, None),
}


class Session:
    """Current session state plus ``apply``; one per engine."""

    def __init__(self) -> None:
        self.state = SessionState.INACTIVE

    @property
    def active(self) -> bool:
        return self.state is SessionState.ACTIVE

    def apply(self, what: SessionInput) -> SessionStatus | None:
        """Move on ``what``; return the status to announce (None: announce nothing).

        Raises:
            EngineUnusableError: the engine was ended with REENTRANT.
            InvalidOperationError: ``what`` cannot happen in this state.
        """
        step = TRANSITIONS.get((self.state, what))
        if step is None:
            if self.state is SessionState.UNUSABLE:
                raise EngineUnusableError(
                    "the engine was ended with end_session(REENTRANT); create a new DebugClient"
                )
            raise InvalidOperationError(f"session input {what.name} is not valid in state {self.state.name}")
        self.state, announce = step
        return announce
