"""The rules of a source-line step (lindbg.engine.linestep), one literal line table
per rule: what ``LineStep.decide`` answers after each instruction."""

from __future__ import annotations

import pytest

from lindbg.engine.linestep import LineSpan, LineStep, StepAction
from lindbg.symbols.lines import SourceLine

STEP, STOP, RUN_TO_RETURN = StepAction.STEP, StepAction.STOP, StepAction.RUN_TO_RETURN
C = "/src/main.c"
H = "/src/util.h"


def span(
    line: int, low: int, high: int, *, row: int | None = None, stmt: bool = True, file: str = C
) -> LineSpan:
    """The span ``[low, high)`` of ``file:line`` whose row starts at ``row`` (default ``low``)."""
    return LineSpan(SourceLine(file, line, low if row is None else row, stmt), low, high)


# main.c, as a line table: line 10 at 0x1000-0x1010 (a call at 0x1008), 11 at 0x1010, a
# second row of 10 at 0x1020 (a loop's condition), 12 at 0x1030 (not a statement from
# 0x1038), 13 at 0x1040.
L10 = span(10, 0x1000, 0x1010)
L11 = span(11, 0x1010, 0x1020)
L10_AGAIN = span(10, 0x1020, 0x1030)
L12 = span(12, 0x1030, 0x1038)
L12_NOT_STMT = span(12, 0x1038, 0x1040, stmt=False)
L13 = span(13, 0x1040, 0x1050)
# a callee: f at 0x2000, its first row (line 20) 0x2000-0x2008, line 21 from 0x2008
F20 = span(20, 0x2000, 0x2008)
F21 = span(21, 0x2008, 0x2020)


def begin(first: LineSpan = L10, *, over: bool = True, depth: int = 0) -> LineStep:
    return LineStep(7, over, first, depth)


def where(step: LineStep) -> tuple[str, int, int, int, int]:
    return step.file, step.line, step.low, step.high, step.inline_depth


def test_a_new_step_holds_its_line() -> None:
    step = begin(L12, over=False, depth=2)
    assert (step.tid, step.over) == (7, False)
    assert where(step) == (C, 12, 0x1030, 0x1038, 2)
    assert step.start_depth == 2
    assert step.entered_call is False
    assert step.prologue_end is None


@pytest.mark.parametrize("over", [True, False], ids=["p", "t"])
@pytest.mark.parametrize("pc", [0x1000, 0x1002, 0x100F])
def test_inside_the_span_goes_on(over: bool, pc: int) -> None:
    step = begin(over=over)
    assert step.decide(pc, L10, 0) is STEP
    assert step.decide(pc, None, 0) is STEP  # the span decides, not what is known of pc
    assert where(step) == (C, 10, 0x1000, 0x1010, 0)


@pytest.mark.parametrize("over", [True, False], ids=["p", "t"])
def test_the_start_of_a_statement_of_another_line_stops(over: bool) -> None:
    step = begin(over=over)
    record = [step.decide(pc, found, 0) for pc, found in [(0x1004, L10), (0x1010, L11)]]
    assert record == [STEP, STOP]


def test_the_start_of_a_statement_of_the_same_line_in_another_file_stops() -> None:
    step = begin()
    assert step.decide(0x3000, span(10, 0x3000, 0x3010, file=H), 0) is STOP


def test_the_start_of_another_row_of_the_same_line_goes_on() -> None:
    # a jump back to the loop condition of line 10: still line 10
    step = begin()
    assert step.decide(0x1020, L10_AGAIN, 0) is STEP
    assert where(step) == (C, 10, 0x1020, 0x1030, 0)
    assert step.decide(0x1028, L10_AGAIN, 0) is STEP
    assert step.decide(0x1030, L12, 0) is STOP


def test_a_row_of_the_same_line_that_is_not_a_statement_is_taken() -> None:
    step = begin(L12)
    record = [step.decide(0x1038, L12_NOT_STMT, 0)]
    # the span moves to the row, the line stepped away from stays 12
    assert where(step) == (C, 12, 0x1038, 0x1040, 0)
    record += [step.decide(0x103C, L12_NOT_STMT, 0), step.decide(0x1040, L13, 0)]
    assert record == [STEP, STEP, STOP]


def test_the_start_of_a_row_that_is_not_a_statement_of_another_line_goes_on() -> None:
    step = begin(L11)
    assert step.decide(0x1038, L12_NOT_STMT, 0) is STEP
    assert where(step) == (C, 11, 0x1038, 0x1040, 0)
    # ... and the next statement of line 12 stops: the step is still away from 11
    assert step.decide(0x1030, L12, 0) is STOP


def test_the_middle_of_a_row_takes_the_row() -> None:
    # a return into line 11 after its call: the stop is at the next line's start
    step = begin(F21)
    record = [step.decide(0x1014, L11, 0)]
    assert where(step) == (C, 11, 0x1010, 0x1020, 0)
    record += [step.decide(0x1018, L11, 0), step.decide(0x1020, L10_AGAIN, 0)]
    assert record == [STEP, STEP, STOP]


def test_the_middle_of_a_row_of_the_same_line_takes_the_row() -> None:
    step = begin()
    assert step.decide(0x1024, L10_AGAIN, 0) is STEP
    assert where(step) == (C, 10, 0x1020, 0x1030, 0)


def test_the_middle_of_a_row_that_is_not_a_statement_takes_its_line() -> None:
    step = begin()
    assert step.decide(0x103C, L12_NOT_STMT, 0) is STEP
    assert where(step) == (C, 12, 0x1038, 0x1040, 0)
    assert step.decide(0x1040, L13, 0) is STOP


@pytest.mark.parametrize("over", [True, False], ids=["p", "t"])
def test_no_line_information_stops(over: bool) -> None:
    step = begin(over=over)
    assert step.decide(0x7F0000001000, None, 0) is STOP


def test_p_goes_on_deeper_in_inlined_calls() -> None:
    # line 10 (0x1000-0x1004) calls an inline function of util.h at depth 1 (0x1004-0x100c),
    # which calls another at depth 2 (0x100c-0x1010); then line 11
    step = begin(span(10, 0x1000, 0x1004), over=True)
    record = [
        step.decide(0x1004, span(3, 0x1004, 0x1008, file=H), 1),  # the start of a statement
        step.decide(0x1006, span(3, 0x1004, 0x1008, file=H), 1),  # the middle of a row
        step.decide(0x1008, span(4, 0x1008, 0x100C, file=H), 1),
        step.decide(0x100C, span(8, 0x100C, 0x1010, file=H), 2),
    ]
    assert where(step) == (C, 10, 0x1000, 0x1004, 0)  # nothing taken from the inlined lines
    record.append(step.decide(0x1010, L11, 0))
    assert record == [STEP, STEP, STEP, STEP, STOP]


def test_t_stops_in_inlined_calls() -> None:
    step = begin(span(10, 0x1000, 0x1004), over=False)
    assert step.decide(0x1004, span(3, 0x1004, 0x1008, file=H), 1) is STOP


def test_p_stops_at_the_same_or_a_shallower_inline_depth() -> None:
    step = begin(over=True, depth=1)
    assert step.decide(0x1010, L11, 1) is STOP
    step = begin(over=True, depth=1)
    assert step.decide(0x1010, L11, 0) is STOP


def test_p_compares_with_the_depth_of_the_line_it_took() -> None:
    # started inside an inlined call (depth 1), returned into the middle of its caller's
    # line (depth 0): an inlined call made there (depth 1) is stepped over
    step = begin(span(3, 0x1004, 0x1008, file=H), over=True, depth=1)
    assert step.decide(0x1014, L11, 0) is STEP
    assert where(step) == (C, 11, 0x1010, 0x1020, 0)
    assert step.start_depth == 1
    assert step.decide(0x3000, span(8, 0x3000, 0x3004, file=H), 1) is STEP
    assert where(step) == (C, 11, 0x1010, 0x1020, 0)
    assert step.decide(0x1020, L10_AGAIN, 0) is STOP


@pytest.mark.parametrize("found", [F20, None], ids=["lines", "no-lines"])
def test_p_runs_over_a_call(found: LineSpan | None) -> None:
    step = begin(over=True)
    step.entered_call = True
    assert step.decide(0x2000, found, 0, frame_setup=4) is RUN_TO_RETURN
    assert step.entered_call is False
    assert where(step) == (C, 10, 0x1000, 0x1010, 0)
    # back at the return address, in line 10: the usual rules
    record = [step.decide(0x100D, L10, 0), step.decide(0x1010, L11, 0)]
    assert record == [STEP, STOP]


def test_t_runs_over_a_callee_without_line_information() -> None:
    step = begin(over=False)
    step.entered_call = True
    assert step.decide(0x7F0000002000, None, 0, frame_setup=4) is RUN_TO_RETURN
    assert step.entered_call is False
    assert step.prologue_end is None


def test_t_stops_at_the_entry_of_a_frameless_callee() -> None:
    step = begin(over=False)
    step.entered_call = True
    assert step.decide(0x2000, F20, 0, frame_setup=0) is STOP
    assert step.entered_call is False
    assert step.prologue_end is None


def test_t_steps_past_the_frame_setup_to_the_end_of_the_first_row() -> None:
    # f: push rbp (1 byte); mov rbp, rsp (3); sub rsp, 16 (4): the first row ends at 0x2008
    step = begin(over=False)
    step.entered_call = True
    record = [step.decide(0x2000, F20, 0, frame_setup=4)]
    assert step.entered_call is False
    assert step.prologue_end == 0x2008
    assert where(step) == (C, 20, 0x2000, 0x2008, 0)
    record += [step.decide(0x2001, F20, 0), step.decide(0x2004, F20, 0)]
    assert step.prologue_end == 0x2008
    record.append(step.decide(0x2008, F21, 0))
    assert record == [STEP, STEP, STEP, STOP]


def test_t_stops_at_the_prologue_end_whatever_the_row_there() -> None:
    # the row after the frame setup starts mid-line (not a row start): still the stop
    step = begin(over=False)
    step.entered_call = True
    assert step.decide(0x2000, F20, 0, frame_setup=4) is STEP
    assert step.decide(0x2008, span(21, 0x2006, 0x2020), 0) is STOP


def test_t_frame_setup_past_the_end_of_the_first_row_sets_the_prologue_end_past_it() -> None:
    step = begin(over=False)
    step.entered_call = True
    assert step.decide(0x2000, span(20, 0x2000, 0x2004), 0, frame_setup=8) is STEP
    assert step.prologue_end == 0x2008


@pytest.mark.xfail(
    strict=True,
    reason="when the frame setup runs past the callee's first row, the prologue end "
    "(pc + frame_setup) is abandoned as soon as pc leaves that row, so `t` stops between "
    "`push rbp` and `mov rbp, rsp` instead of past the frame setup",
)
def test_t_does_not_stop_inside_a_frame_setup_that_crosses_a_row() -> None:
    # f's first row holds only `push rbp` (0x2000); line 21 starts at `mov rbp, rsp`
    step = begin(over=False)
    step.entered_call = True
    assert step.decide(0x2000, span(20, 0x2000, 0x2001), 0, frame_setup=4) is STEP
    assert step.decide(0x2001, span(21, 0x2001, 0x2010), 0) is STEP


def test_the_prologue_end_is_abandoned_when_leaving_the_row_another_way() -> None:
    step = begin(over=False)
    step.entered_call = True
    record = [step.decide(0x2000, F20, 0, frame_setup=4), step.decide(0x2002, F20, 0)]
    # a jump from the first row into the middle of line 21
    record.append(step.decide(0x2010, F21, 0))
    assert step.prologue_end is None
    assert where(step) == (C, 21, 0x2008, 0x2020, 0)
    # a jump back to the old prologue end, now inside line 21's span: no stop there
    record.append(step.decide(0x2008, F21, 0))
    record.append(step.decide(0x2020, span(22, 0x2020, 0x2030), 0))
    assert record == [STEP, STEP, STEP, STEP, STOP]


def test_the_prologue_end_is_abandoned_for_a_statement_of_another_line() -> None:
    step = begin(over=False)
    step.entered_call = True
    assert step.decide(0x2000, F20, 0, frame_setup=4) is STEP
    assert step.decide(0x2040, span(25, 0x2040, 0x2050), 0) is STOP
    assert step.prologue_end is None


def test_a_call_in_the_callee_is_decided_again() -> None:
    # t into f, then f's prologue calls g (say __stack_chk or a PLT stub): the entry of
    # g is decided as a call of its own
    step = begin(over=False)
    step.entered_call = True
    assert step.decide(0x2000, F20, 0, frame_setup=4) is STEP
    step.entered_call = True
    assert step.decide(0x4000, span(40, 0x4000, 0x4010), 0, frame_setup=0) is STOP


def test_frame_setup_is_ignored_without_a_call() -> None:
    step = begin(over=False)
    assert step.decide(0x1004, L10, 0, frame_setup=4) is STEP
    assert step.prologue_end is None
    assert step.decide(0x1010, L11, 0, frame_setup=4) is STOP
