"""Combining callback answers (lindbg.engine.status): least execution wins, in the
order of DESIGN.md section 2; anything that is not a ranked status is NO_CHANGE."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lindbg.constants import STATUS_PRECEDENCE, Status
from lindbg.engine.status import combine, stronger

#: DESIGN.md section 2, highest first.
ORDER = [
    Status.BREAK,
    Status.STEP_INTO,
    Status.STEP_BRANCH,
    Status.STEP_OVER,
    Status.GO_NOT_HANDLED,
    Status.GO_HANDLED,
    Status.GO,
    Status.IGNORE_EVENT,
    Status.RESTART_REQUESTED,
    Status.NO_CHANGE,
]
UNRANKED_STATUSES = [Status.NO_DEBUGGEE, Status.OUT_OF_SYNC, Status.WAIT_INPUT, Status.TIMEOUT]
NOT_STATUSES: list[object] = [None, "x", 999, -1, 6.0, b"\x06", object(), [Status.BREAK]]


def test_precedence_is_the_documented_one() -> None:
    assert list(STATUS_PRECEDENCE) == ORDER
    assert set(ORDER) | set(UNRANKED_STATUSES) == set(Status)


def test_status_values_are_dbgeng_values() -> None:
    # DEBUG_STATUS_* of dbgeng.h
    assert {status.name: int(status) for status in Status} == {
        "NO_CHANGE": 0,
        "GO": 1,
        "GO_HANDLED": 2,
        "GO_NOT_HANDLED": 3,
        "STEP_OVER": 4,
        "STEP_INTO": 5,
        "BREAK": 6,
        "NO_DEBUGGEE": 7,
        "STEP_BRANCH": 8,
        "IGNORE_EVENT": 9,
        "RESTART_REQUESTED": 10,
        "OUT_OF_SYNC": 15,
        "WAIT_INPUT": 16,
        "TIMEOUT": 17,
    }


@pytest.mark.parametrize(
    ("high", "low"),
    list(itertools.combinations(ORDER, 2)),
    ids=[f"{high.name}>{low.name}" for high, low in itertools.combinations(ORDER, 2)],
)
def test_pairwise_order(high: Status, low: Status) -> None:
    assert stronger(high, low) is high
    assert stronger(low, high) is high
    assert combine([high, low]) is high
    assert combine([low, high]) is high


@pytest.mark.parametrize("status", ORDER, ids=[status.name for status in ORDER])
def test_a_status_against_itself(status: Status) -> None:
    assert stronger(status, status) is status
    assert combine([status]) is status
    assert combine([status, status, status]) is status


def test_nothing_returned_is_no_change() -> None:
    assert combine([]) is Status.NO_CHANGE


@pytest.mark.parametrize("junk", [*NOT_STATUSES, *UNRANKED_STATUSES, 7, 15], ids=repr)
def test_non_statuses_count_as_no_change(junk: object) -> None:
    assert combine([junk]) is Status.NO_CHANGE
    assert combine([junk, junk]) is Status.NO_CHANGE
    for status in ORDER:
        # a neutral vote: whatever else was returned stands
        assert stronger(status, junk) is status
        assert combine([junk, status]) is status
        assert combine([status, junk]) is status


@pytest.mark.parametrize("status", ORDER, ids=[status.name for status in ORDER])
def test_plain_ints_count_as_their_status(status: Status) -> None:
    plain = int(status)
    assert type(plain) is int
    result = combine([plain])
    assert result is status
    assert type(result) is Status
    for other in ORDER:
        expected = min(status, other, key=ORDER.index)
        assert stronger(other, plain) is expected
        assert combine([int(other), plain]) is expected


def test_a_story_of_callbacks() -> None:
    record: list[Status] = []
    current = Status.NO_CHANGE
    for answer in (None, Status.GO, 2, "garbage", Status.IGNORE_EVENT, 4, Status.NO_DEBUGGEE, 6, Status.GO):
        current = stronger(current, answer)
        record.append(current)
    assert record == [
        Status.NO_CHANGE,
        Status.GO,
        Status.GO_HANDLED,
        Status.GO_HANDLED,
        Status.GO_HANDLED,
        Status.STEP_OVER,
        Status.STEP_OVER,
        Status.BREAK,
        Status.BREAK,
    ]


votes = st.one_of(
    st.sampled_from(list(Status)),
    st.sampled_from([int(status) for status in Status]),
    st.sampled_from(NOT_STATUSES),
    st.integers(min_value=-5, max_value=40),
)


def _expected(statuses: list[object]) -> Status:
    ranked = [Status(value) for value in statuses if _is_ranked(value)]
    return min(ranked, key=ORDER.index, default=Status.NO_CHANGE)


def _is_ranked(value: object) -> bool:
    return isinstance(value, int) and any(value == status for status in ORDER)


@settings(max_examples=300, deadline=None)
@given(statuses=st.lists(votes, max_size=12), data=st.data())
def test_combine_is_order_independent(statuses: list[object], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(statuses))
    assert combine(shuffled) is combine(statuses)
    assert combine(statuses) is _expected(statuses)


@settings(max_examples=300, deadline=None)
@given(
    first=st.lists(votes, max_size=6), second=st.lists(votes, max_size=6), third=st.lists(votes, max_size=6)
)
def test_combine_is_associative(first: list[object], second: list[object], third: list[object]) -> None:
    whole = combine(first + second + third)
    assert combine([combine(first + second), combine(third)]) is whole
    assert combine([combine(first), combine(second + third)]) is whole
    assert combine([combine(first), combine(second), combine(third)]) is whole


@settings(max_examples=300, deadline=None)
@given(a=st.sampled_from(ORDER), b=votes, c=votes)
def test_stronger_folds_in_any_order(a: Status, b: object, c: object) -> None:
    assert stronger(stronger(a, b), c) is stronger(stronger(a, c), b)


@settings(max_examples=300, deadline=None)
@given(a=st.sampled_from(ORDER), b=st.sampled_from(ORDER), c=votes)
def test_stronger_is_associative(a: Status, b: Status, c: object) -> None:
    assert stronger(stronger(a, b), c) is stronger(a, stronger(b, c))
    assert stronger(a, b) is stronger(b, a)


@settings(max_examples=300, deadline=None)
@given(statuses=st.lists(votes, max_size=12))
def test_combine_gives_one_of_its_inputs_or_no_change(statuses: list[object]) -> None:
    result = combine(statuses)
    assert type(result) is Status
    assert result in ORDER
    assert result is Status.NO_CHANGE or any(isinstance(value, int) and value == result for value in statuses)
