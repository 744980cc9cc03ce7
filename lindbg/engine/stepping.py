"""Stepping: resume as the execution status says, single steps, ``t N``/``p N``,
step-over and return marks, source-line steps (rules in ``linestep``), PLT stubs
and virtual inline frames."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lindbg.arch.x86_64_displaced import call_instruction_length
from lindbg.constants import (
    Status,
)
from lindbg.engine.handles import (
    Breakpoint,
    LastEvent,
)
from lindbg.engine.linestep import LineSpan, LineStep, StepAction
from lindbg.errors import (
    LindbgError,
    MemoryAccessError,
)
from lindbg.targets.base import (
    EventKind,
    ResumeMode,
    TargetEvent,
)

if TYPE_CHECKING:
    from lindbg.engine.engine import Engine

GO_STATUSES = frozenset({Status.GO, Status.GO_HANDLED, Status.GO_NOT_HANDLED, Status.IGNORE_EVENT})
STEP_STATUSES = frozenset({Status.STEP_INTO, Status.STEP_OVER, Status.STEP_BRANCH})

#: The longest near call a range step may have entered (prefixes, REX, ff /2 with SIB
#: and a 32-bit displacement).
_LONGEST_CALL = 15


class StepOverMark:
    """The engine's own breakpoint at a call's return address (STEP_OVER)."""

    __slots__ = ("address", "enabled", "pid", "rsp", "tid")

    def __init__(self, pid: int, tid: int, address: int, rsp: int) -> None:
        self.pid = pid
        self.tid = tid
        self.address = address
        self.rsp = rsp
        self.enabled = True


class Stepping:
    """The engine's stepping state and how the target is resumed."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        #: The engine's own breakpoint of a step over a call (or to a return), if any.
        self.step_over: StepOverMark | None = None
        #: The thread a step in progress steps (events of others may intervene).
        self.tid = 0
        #: Steps still to take before a step (``t N``/``p N``) breaks in.
        self.steps_left = 0
        #: The source-line step in progress (SOURCE code level), if any.
        self.line_step: LineStep | None = None
        #: (tid, pc, count): a `t` stopped at the first instruction of ``count`` inlined
        #: calls and presents their call site (gdb's and WinDbg's virtual inline
        #: frames); the next `t` enters one without running. Any resume clears it.
        self.hidden_inline: tuple[int, int, int] | None = None
        self.virtual_step = False
        #: The [low, high) of the range step in progress (a source line), if any.
        self.range_step: tuple[int, int] | None = None

    def resume(self) -> None:
        """Let the target run as ``self._engine.status`` says (GO or a step)."""
        target = self._engine.session_target
        held = self._engine.held_signal
        if held is not None:
            self._engine.held_signal = None
            if self._engine.status is not Status.GO_HANDLED:
                target.set_pending_signal(held[0], held[1])
        self._engine.scope_frame = 0
        self._engine.generation += 1
        self.hidden_inline = None
        self.range_step = None
        status = self._engine.status
        tid = self.tid or self._engine.current_tid
        single = status is Status.STEP_INTO or status is Status.STEP_BRANCH
        plan = self.line_step
        if plan is not None and status in STEP_STATUSES and self.step_over is None:
            single = True
            pc = target.get_register(tid, "rip")
            code = target.read_memory(self._engine.threads[tid].pid, pc, 16)
            if call_instruction_length(code) is not None:
                if plan.over:
                    single = not self._plant_step_over(tid)
                else:
                    plan.entered_call = True
            elif plan.prologue_end is None and plan.low <= pc < plan.high:
                # the rest of the line in one request (RSP's vCont;r); a call on the
                # way is recognised where the step comes out (_entered_call)
                self.range_step = (plan.low, plan.high)
                target.step_range(tid, plan.low, plan.high)
                return
        elif status is Status.STEP_OVER and self.step_over is None:
            single = not self._plant_step_over(tid)  # not on a call: one instruction
        target.resume(ResumeMode.STEP if single else ResumeMode.CONTINUE, tid, 0)

    def finished(self, pid: int, tid: int) -> bool:
        """One step (or step over a call) completed: take the next or break in."""
        self.clear_step_over()
        plan = self.line_step
        stepped_range, self.range_step = self.range_step, None
        if plan is not None and tid == plan.tid and self._engine.status in STEP_STATUSES:
            pc = self._engine.session_target.get_register(tid, "rip")
            if stepped_range is not None and not stepped_range[0] <= pc < stepped_range[1]:
                plan.entered_call = self._entered_call(tid, stepped_range)
            setup = self._frame_setup(tid, pc) if plan.entered_call else 0
            action = plan.decide(pc, self._line_span(pc), self._inline_depth(pc), setup)
            if action is StepAction.STEP:
                self.resume()
                return False
            if action is StepAction.RUN_TO_RETURN and not plan.over and self._plant_stub_target_mark(tid, pc):
                plan.entered_call = True  # decided again at the function the stub jumps to
                self._engine.session_target.resume(ResumeMode.CONTINUE, tid, 0)
                return False
            if action is StepAction.RUN_TO_RETURN and self._plant_return_mark(tid):
                self._engine.session_target.resume(ResumeMode.CONTINUE, tid, 0)
                return False
            self.line_step = None
            if not plan.over:
                self._hide_entered_inlines(tid, pc, plan.start_depth)
            if self.steps_left > 1:
                # `p N` in source mode: N lines, each its own plan
                self.line_step = self.begin_line_step(tid, over=plan.over)
        self.steps_left -= 1
        target = self._engine.session_target
        if self.steps_left > 0:
            owners = target.breakpoint_under(tid)
            if owners and any(o.__class__ is Breakpoint and o.enabled for o in owners):
                # a step of `t N` landed on a breakpoint: it is hit, as in cdb and gdb
                self.steps_left = 0
                return self._engine.events.on_breakpoint(
                    TargetEvent(EventKind.BREAKPOINT, pid, tid, sites=owners)
                )
        if self.steps_left > 0 and self._engine.status in STEP_STATUSES:
            if self._engine.status is not Status.STEP_OVER and self.steps_left > 1 and self.line_step is None:
                # the hot part of `t N`: plain steps in the target, no event objects
                self.steps_left -= target.step_many(tid, self.steps_left - 1, self._has_interrupt)
            self.resume()
            return False
        self.steps_left = 0
        self._engine.recorded_event = LastEvent("step", pid, tid, "Single step exception - code 80000004")
        self._engine.announce_break()
        return True

    def _entered_call(self, tid: int, stepped: tuple[int, int]) -> bool:
        """Did a range step leave its range by a call (``[rsp]`` a return address
        just past a call instruction of the range)?"""
        target = self._engine.session_target
        pid = self._engine.threads[tid].pid
        try:
            rsp = target.get_register(tid, "rsp")
            ret = int.from_bytes(target.read_memory(pid, rsp, 8), "little")
            if not stepped[0] < ret <= stepped[1]:
                return False
            before = target.read_memory(pid, ret - _LONGEST_CALL, _LONGEST_CALL)
        except MemoryAccessError:
            return False
        return any(
            call_instruction_length(before[_LONGEST_CALL - length :]) == length
            for length in range(2, _LONGEST_CALL + 1)
        )

    def _has_interrupt(self) -> bool:
        target = self._engine.target
        requested = target is not None and target.interrupt_requested
        return self._engine.interrupt_pending or requested or self._engine.unusable_reason is not None

    def running_status(self) -> Status:
        """What an event nobody cared about resumes with: the step in progress, or GO."""
        return self._engine.status if self._engine.status in STEP_STATUSES else Status.GO

    def resume_from_break(self) -> bool:
        """Resume a stopped target; True if that instead produced a new break."""
        if self.virtual_step:
            self.virtual_step = False
            self.steps_left = 0
            tid = self._engine.current_tid
            self._engine.recorded_event = LastEvent(
                "step", self._engine.current_pid, tid, "Single step exception - code 80000004"
            )
            self._engine.announce_break()
            return True
        held = self._engine.held_signal
        if held is not None and held[2] and self._engine.status is not Status.GO_HANDLED:
            tid, signo, _, address = held
            thread = self._engine.threads.get(tid)
            pid = thread.pid if thread is not None else self._engine.current_pid
            if self._engine.events._would_kill(pid, signo):
                self._engine.held_signal = None
                return self._engine.events.on_signal(pid, tid, signo, address, first_chance=False)
        self.resume()
        return False

    def _plant_step_over(self, tid: int) -> bool:
        """If ``tid`` sits on a call, put a mark at its return address; True if so."""
        target = self._engine.session_target
        thread = self._engine.threads[tid]
        rip = target.get_register(tid, "rip")
        code = target.read_memory(thread.pid, rip, 16)
        length = call_instruction_length(code)
        if length is None:
            return False
        mark = StepOverMark(thread.pid, tid, rip + length, target.get_register(tid, "rsp"))
        target.claim_site(thread.pid, mark.address, mark)
        self.step_over = mark
        return True

    def begin(self, status: Status, count: int, *, by_line: bool) -> None:
        """Set up a step (``t``/``p``/``tb`` with a count) of the current thread;
        ``by_line``: at the SOURCE code level, a step is a source line."""
        engine = self._engine
        tid = engine.current_tid
        self.tid = tid
        self.steps_left = count
        self.line_step = None
        if status is Status.STEP_BRANCH or not by_line:
            return
        hidden = self.hidden_inline_frames(tid)
        if status is Status.STEP_INTO and hidden and count == 1:
            # enter one inlined call at this pc: nothing runs
            self.hidden_inline = (tid, engine.session_target.get_register(tid, "rip"), hidden - 1)
            self.virtual_step = True
            engine.generation += 1
            engine.scope_frame = 0
        else:
            self.line_step = self.begin_line_step(tid, over=status is Status.STEP_OVER)

    def end(self) -> None:
        """The target broke in: no step is in progress any more."""
        self.line_step = None
        self.tid = 0

    def hidden_inline_frames(self, tid: int) -> int:
        """How many innermost inlined calls thread ``tid`` is presented outside of."""
        hidden = self.hidden_inline
        if hidden is None or hidden[0] != tid or self._engine.target is None:
            return 0
        if self._engine.target.get_register(tid, "rip") != hidden[1]:
            return 0
        return hidden[2]

    def _hide_entered_inlines(self, tid: int, pc: int, start_depth: int) -> None:
        """A `t` that stops on the first instruction of inlined calls it entered stops
        on their call site first, as gdb and WinDbg do."""
        calls = self._engine.symbols.inlined_at(
            self._engine.loading.modules_of(), pc, self._engine.memory_reader()
        )
        entered = 0
        for call in calls[: max(0, len(calls) - start_depth)]:
            if call.low != pc:
                break
            entered += 1
        if entered:
            self.hidden_inline = (tid, pc, entered)

    def _frame_setup(self, tid: int, pc: int) -> int:
        """The length of ``[endbr64] push rbp; mov rsp, rbp`` at a function's entry ``pc``;
        0 when the function sets up no frame pointer there."""
        code = self._engine.session_target.read_memory(self._engine.threads[tid].pid, pc, 8)
        start = 4 if code[:4] == b"\xf3\x0f\x1e\xfa" else 0
        if code[start : start + 1] == b"\x55" and code[start + 1 : start + 4] in (
            b"\x48\x89\xe5",
            b"\x48\x8b\xec",
        ):
            return start + 4
        return 0

    def _plant_stub_target_mark(self, tid: int, pc: int) -> bool:
        """`t` into a PLT stub (``[endbr64;] [bnd] jmp *GOT(%rip)``): if the GOT slot
        holds a function with line information, a mark there, so the step goes on in
        the library's code as gdb's does (a slot the loader has not filled yet still
        points into the PLT: that call is stepped over)."""
        target = self._engine.session_target
        thread = self._engine.threads[tid]
        code = target.read_memory(thread.pid, pc, 16)
        start = 4 if code[:4] == b"\xf3\x0f\x1e\xfa" else 0
        if code[start : start + 1] == b"\xf2":
            start += 1
        if code[start : start + 2] != b"\xff\x25":
            return False
        next_ip = pc + start + 6
        slot = next_ip + int.from_bytes(code[start + 2 : start + 6], "little", signed=True)
        try:
            destination = int.from_bytes(target.read_memory(thread.pid, slot, 8), "little")
        except MemoryAccessError:
            return False
        if self._line_span(destination) is None:
            # not bound yet (lazy binding: the slot leads to the loader's resolver):
            # the function the slot's relocation names, wherever it is loaded
            destination = self._plt_destination(slot) or 0
            if not destination or self._line_span(destination) is None:
                return False
        mark = StepOverMark(thread.pid, tid, destination, target.get_register(tid, "rsp"))
        target.claim_site(thread.pid, destination, mark)
        self.step_over = mark
        return True

    def _plt_destination(self, slot: int) -> int | None:
        """The address of the function GOT ``slot`` is for, looked up by name in the
        other modules (the binding the loader is about to make)."""
        modules = self._engine.loading.modules_of()
        owner = next((m for m in modules if m.base <= slot < m.end), None)
        image = (
            self._engine.symbols.of(owner, self._engine.memory_reader()).image if owner is not None else None
        )
        if owner is None or image is None:
            return None
        name = image.plt_slots.get(slot - owner.bias)
        if name is None:
            return None
        others = [m for m in modules if m is not owner]
        try:
            found = self._engine.symbols.resolve_symbol(others, None, name)
        except LindbgError:
            return None
        return found[0] if found else None

    def _plant_return_mark(self, tid: int) -> bool:
        """At a function's first instruction: a mark at its return address (``[rsp]``)."""
        target = self._engine.session_target
        thread = self._engine.threads[tid]
        rsp = target.get_register(tid, "rsp")
        try:
            address = int.from_bytes(target.read_memory(thread.pid, rsp, 8), "little")
        except MemoryAccessError:
            return False
        mark = StepOverMark(thread.pid, tid, address, rsp + 8)
        target.claim_site(thread.pid, address, mark)
        self.step_over = mark
        return True

    def _line_span(self, pc: int) -> LineSpan | None:
        """The line holding runtime ``pc`` and its span (runtime addresses)."""
        found = self._engine.symbols.line_span(
            self._engine.loading.modules_of(), pc, self._engine.memory_reader()
        )
        return LineSpan(*found) if found is not None else None

    def _inline_depth(self, pc: int) -> int:
        return len(
            self._engine.symbols.inlined_at(
                self._engine.loading.modules_of(), pc, self._engine.memory_reader()
            )
        )

    def begin_line_step(self, tid: int, *, over: bool) -> LineStep | None:
        """A source-line step from where ``tid`` is, or None (no line information
        there: the step is one instruction, as cdb's source mode does)."""
        pc = self._engine.session_target.get_register(tid, "rip")
        span = self._line_span(pc)
        if span is None:
            return None
        return LineStep(tid, over, span, self._inline_depth(pc))

    def clear_step_over(self) -> None:
        mark = self.step_over
        if mark is None or self._engine.target is None:
            return
        self.step_over = None
        self._engine.target.release_site(mark.pid, mark.address, mark)

    def step_over_done(self, mark: StepOverMark, tid: int) -> bool:
        if tid != mark.tid or self._engine.target is None:
            return False
        return self._engine.target.get_register(tid, "rsp") >= mark.rsp
