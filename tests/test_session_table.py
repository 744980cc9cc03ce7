"""The session state machine (lindbg.engine.session_table): every (state, input)
pair either follows TRANSITIONS or raises, and a raise leaves the state as it was."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lindbg.constants import SessionStatus
from lindbg.engine.session_table import TRANSITIONS, Session, SessionInput, SessionState
from lindbg.errors import EngineUnusableError, InvalidOperationError, LindbgError

ACT, INA, UNU = SessionState.ACTIVE, SessionState.INACTIVE, SessionState.UNUSABLE

#: The table as DESIGN.md section 3 describes it, written out independently.
EXPECTED: dict[tuple[SessionState, SessionInput], tuple[SessionState, SessionStatus | None]] = {
    (INA, SessionInput.TARGET_GAINED): (ACT, SessionStatus.ACTIVE),
    (ACT, SessionInput.TARGET_GAINED): (ACT, None),
    (ACT, SessionInput.END_PASSIVE): (INA, SessionStatus.END_SESSION_PASSIVE),
    (ACT, SessionInput.END_ACTIVE_TERMINATE): (INA, SessionStatus.END_SESSION_ACTIVE_TERMINATE),
    (ACT, SessionInput.END_ACTIVE_DETACH): (INA, SessionStatus.END_SESSION_ACTIVE_DETACH),
    (ACT, SessionInput.TARGETS_EXITED): (INA, SessionStatus.END),
    (ACT, SessionInput.FAILED): (INA, SessionStatus.FAILURE),
    (INA, SessionInput.END_PASSIVE): (INA, None),
    (INA, SessionInput.END_ACTIVE_TERMINATE): (INA, None),
    (INA, SessionInput.END_ACTIVE_DETACH): (INA, None),
    (INA, SessionInput.FAILED): (INA, None),
    (ACT, SessionInput.END_REENTRANT): (UNU, None),
    (INA, SessionInput.END_REENTRANT): (UNU, None),
    (UNU, SessionInput.END_REENTRANT): (UNU, None),
}

UNUSABLE_MESSAGE = r"^the engine was ended with end_session\(REENTRANT\); create a new DebugClient$"


def session_in(state: SessionState) -> Session:
    session = Session()
    session.state = state
    return session


def invalid_message(what: SessionInput, state: SessionState) -> str:
    return rf"^session input {what.name} is not valid in state {state.name}$"


def test_a_new_session_is_inactive() -> None:
    session = Session()
    assert session.state is SessionState.INACTIVE
    assert session.active is False


def test_table_is_the_documented_one() -> None:
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize(
    ("state", "what", "next_state", "announced"),
    [(state, what, *step) for (state, what), step in EXPECTED.items()],
    ids=[f"{state.name}-{what.name}" for state, what in EXPECTED],
)
def test_each_transition(
    state: SessionState,
    what: SessionInput,
    next_state: SessionState,
    announced: SessionStatus | None,
) -> None:
    session = session_in(state)
    result = session.apply(what)
    assert (session.state, result) == (next_state, announced)
    assert session.active is (next_state is SessionState.ACTIVE)
    if announced is not None:
        assert type(result) is SessionStatus


def test_announced_statuses_are_dbgeng_values() -> None:
    # DEBUG_SESSION_* of dbgeng.h
    assert [(status.name, int(status)) for status in SessionStatus] == [
        ("ACTIVE", 0),
        ("END_SESSION_ACTIVE_TERMINATE", 1),
        ("END_SESSION_ACTIVE_DETACH", 2),
        ("END_SESSION_PASSIVE", 3),
        ("END", 4),
        ("REBOOT", 5),
        ("HIBERNATE", 6),
        ("FAILURE", 7),
    ]
    announced = {status for _, status in TRANSITIONS.values() if status is not None}
    assert {int(status) for status in announced} == {0, 1, 2, 3, 4, 7}
    # a user-mode session never announces REBOOT or HIBERNATE (kernel targets only)
    assert SessionStatus.REBOOT not in announced
    assert SessionStatus.HIBERNATE not in announced


def test_a_whole_session_story() -> None:
    record: list[tuple[SessionInput, SessionState, SessionStatus | None]] = []
    session = Session()
    for what in (
        SessionInput.TARGET_GAINED,
        SessionInput.TARGET_GAINED,  # a second process (fork, attach)
        SessionInput.TARGETS_EXITED,
        SessionInput.TARGET_GAINED,
        SessionInput.FAILED,
        SessionInput.FAILED,  # still usable: nothing to fail any more
        SessionInput.TARGET_GAINED,
        SessionInput.END_ACTIVE_DETACH,
        SessionInput.END_REENTRANT,
    ):
        record.append((what, *_step(session, what)))
    assert record == [
        (SessionInput.TARGET_GAINED, ACT, SessionStatus.ACTIVE),
        (SessionInput.TARGET_GAINED, ACT, None),
        (SessionInput.TARGETS_EXITED, INA, SessionStatus.END),
        (SessionInput.TARGET_GAINED, ACT, SessionStatus.ACTIVE),
        (SessionInput.FAILED, INA, SessionStatus.FAILURE),
        (SessionInput.FAILED, INA, None),
        (SessionInput.TARGET_GAINED, ACT, SessionStatus.ACTIVE),
        (SessionInput.END_ACTIVE_DETACH, INA, SessionStatus.END_SESSION_ACTIVE_DETACH),
        (SessionInput.END_REENTRANT, UNU, None),
    ]


def _step(session: Session, what: SessionInput) -> tuple[SessionState, SessionStatus | None]:
    result = session.apply(what)
    return session.state, result


def test_targets_exited_without_a_session_is_invalid() -> None:
    session = Session()
    with pytest.raises(
        InvalidOperationError, match=r"^session input TARGETS_EXITED is not valid in state INACTIVE$"
    ):
        session.apply(SessionInput.TARGETS_EXITED)
    assert session.state is SessionState.INACTIVE


@pytest.mark.parametrize("what", [what for what in SessionInput if what is not SessionInput.END_REENTRANT])
def test_unusable_refuses_everything_but_reentrant(what: SessionInput) -> None:
    session = session_in(SessionState.UNUSABLE)
    with pytest.raises(EngineUnusableError, match=UNUSABLE_MESSAGE):
        session.apply(what)
    assert session.state is SessionState.UNUSABLE
    assert session.active is False


def test_every_pair_is_in_the_table_or_raises() -> None:
    record: list[tuple[str, str, str]] = []
    for state in SessionState:
        for what in SessionInput:
            session = session_in(state)
            try:
                result = session.apply(what)
            except EngineUnusableError as error:
                assert state is SessionState.UNUSABLE
                assert re.match(UNUSABLE_MESSAGE, str(error))
                assert session.state is state
                record.append((state.name, what.name, "unusable"))
            except InvalidOperationError as error:
                assert state is not SessionState.UNUSABLE
                assert re.match(invalid_message(what, state), str(error))
                assert session.state is state
                record.append((state.name, what.name, "invalid"))
            else:
                assert (session.state, result) == TRANSITIONS[state, what]
                record.append((state.name, what.name, "ok"))
            assert ((state, what) in TRANSITIONS) is (record[-1][2] == "ok")
    assert len(record) == len(SessionState) * len(SessionInput)
    assert [entry for entry in record if entry[2] != "ok"] == [
        ("INACTIVE", "TARGETS_EXITED", "invalid"),
        ("UNUSABLE", "TARGET_GAINED", "unusable"),
        ("UNUSABLE", "END_PASSIVE", "unusable"),
        ("UNUSABLE", "END_ACTIVE_TERMINATE", "unusable"),
        ("UNUSABLE", "END_ACTIVE_DETACH", "unusable"),
        ("UNUSABLE", "TARGETS_EXITED", "unusable"),
        ("UNUSABLE", "FAILED", "unusable"),
    ]


def test_the_errors_are_distinct_lindbg_errors() -> None:
    # a caller catching InvalidOperationError must not swallow "engine unusable"
    assert issubclass(EngineUnusableError, LindbgError)
    assert issubclass(InvalidOperationError, LindbgError)
    assert not issubclass(EngineUnusableError, InvalidOperationError)
    assert not issubclass(InvalidOperationError, EngineUnusableError)


# h2's tests/test_state_machines.py, carried to sequences: from any reachable state,
# any input gives the table's answer or raises and changes nothing.
@settings(max_examples=500, deadline=None)
@given(
    start=st.sampled_from(SessionState),
    inputs=st.lists(st.sampled_from(SessionInput), max_size=30),
)
def test_state_machine(start: SessionState, inputs: list[SessionInput]) -> None:
    session = session_in(start)
    for what in inputs:
        before = session.state
        expected = TRANSITIONS.get((before, what))
        try:
            result = session.apply(what)
        except EngineUnusableError as error:
            assert expected is None
            assert before is SessionState.UNUSABLE
            assert re.match(UNUSABLE_MESSAGE, str(error))
            assert session.state is before
        except InvalidOperationError as error:
            assert expected is None
            assert before is not SessionState.UNUSABLE
            assert re.match(invalid_message(what, before), str(error))
            assert session.state is before
        else:
            assert expected is not None
            assert (session.state, result) == expected
            assert result is None or isinstance(result, SessionStatus)
        assert session.state in SessionState
        assert session.active is (session.state is SessionState.ACTIVE)
        if before is SessionState.UNUSABLE:
            assert session.state is SessionState.UNUSABLE  # there is no way back
