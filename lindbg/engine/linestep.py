"""Stepping by source line (``p`` and ``t`` at the SOURCE code level).

A line step runs the thread one instruction at a time through the address span of
the current line, the way gdb's ``next``/``step`` do, and decides after every
instruction what comes next. The decisions are here, apart from the engine's
ptrace plumbing, so they can be read (and tested) as rules:

- Inside the span of the line the step started on: go on.
- On a call: ``p`` runs over it to the return address (one breakpoint, no single
  steps through the callee); ``t`` steps in, and if the callee has line
  information stops where its prologue ends, as gdb's amd64 prologue analysis
  has it: at the entry when the callee builds no frame pointer, else past ``push
  rbp; mov rsp, rbp`` and on to the end of that row; a PLT stub is followed to the
  function it binds to (the engine plants the mark); a callee without line
  information (a library without DWARF) is run over as ``p`` does.
- At the start of an ``is_stmt`` row of a different line: stop.
- In the middle of a row (a return into the caller, a jump into a line): take that
  row and go on, so the stop is at the start of the next row of another line, as gdb.
  Rows are gdb's: a repeated row of a line that has a DWARF discriminator (loops)
  belongs to the row before (``LineTable.line_span``), which is why a return into a
  loop's line goes on and a return onto a row of its own stops, both as in gdb 13.
- ``p`` does not stop inside an inlined call made on the stepped line: it goes on
  while the pc is deeper in inlined calls than where it started.
- In code without line information (returned out of the last frame with lines):
  stop there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from lindbg.symbols.lines import SourceLine

__all__ = ["LineSpan", "LineStep", "StepAction"]


class StepAction(enum.Enum):
    #: single-step one more instruction
    STEP = "step"
    #: run to the return address of the function just entered, then decide again
    RUN_TO_RETURN = "run-to-return"
    #: the line step is complete
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class LineSpan:
    """The row holding a pc (runtime addresses) and its same-line span ``[low, high)``."""

    row: SourceLine
    low: int
    high: int


class LineStep:
    """One source-line step of thread ``tid`` in progress."""

    file: str
    line: int
    low: int
    high: int
    inline_depth: int

    def __init__(self, tid: int, over: bool, span: LineSpan, inline_depth: int) -> None:
        self.tid = tid
        self.over = over
        self._take(span, inline_depth)
        #: the inline depth where the step began (``inline_depth`` follows the lines)
        self.start_depth = inline_depth
        #: set by the engine when the instruction just stepped was a call
        self.entered_call = False
        #: after `t` entered a function: where its prologue (first row) ends
        self.prologue_end: int | None = None

    def decide(self, pc: int, span: LineSpan | None, inline_depth: int, frame_setup: int = 0) -> StepAction:
        """What to do now that the thread is at ``pc`` (``span``: its line, if any).

        ``frame_setup``: after a call, the length of the callee's ``[endbr64] push
        rbp; mov rsp, rbp`` at ``pc`` (0 when it builds no frame pointer)."""
        entered = self.entered_call
        self.entered_call = False
        if entered:
            if span is None or self.over:
                return StepAction.RUN_TO_RETURN
            if not frame_setup:
                return StepAction.STOP  # no frame to set up: the entry ends the prologue (gdb, amd64)
            # past the frame setup; in the middle of the first row, to its end, whatever
            # its line (gdb's handle_step_into_function)
            self._take(span, inline_depth)
            self.prologue_end = max(pc + frame_setup, span.high)
            return StepAction.STEP
        if self.prologue_end is not None:
            if pc == self.prologue_end:
                return StepAction.STOP
            if not self.low <= pc < self.high:
                self.prologue_end = None  # left the first row another way: the usual rules
        if self.low <= pc < self.high:
            return StepAction.STEP
        if span is None:
            return StepAction.STOP
        if self.over and inline_depth > self.inline_depth:
            return StepAction.STEP  # inside an inlined call made on the stepped line
        row = span.row
        if pc == row.address and (row.file, row.line) != (self.file, self.line):
            if row.is_stmt:
                return StepAction.STOP
            # the start of a row that is not a statement: step through it, still
            # stepping away from the same line (gdb keeps its step info here)
            self.low, self.high, self.inline_depth = span.low, span.high, inline_depth
            return StepAction.STEP
        self._take(span, inline_depth)
        return StepAction.STEP

    def _take(self, span: LineSpan, inline_depth: int) -> None:
        self.file = span.row.file
        self.line = span.row.line
        self.low = span.low
        self.high = span.high
        self.inline_depth = inline_depth
