"""dbgeng-compatible constants: the one place where the engine's numbers live.

Every value is dbgeng's (DESIGN.md section 2), so code written against dbgeng
reads the same; each enum member is also exported under its dbgeng spelling
(``DEBUG_END_ACTIVE_DETACH`` ...) at the bottom of this module.
"""

from __future__ import annotations

import enum


class EndFlags(enum.IntEnum):
    """How ``end_session`` ends a session (DEBUG_END_*)."""

    PASSIVE = 0
    ACTIVE_TERMINATE = 1
    ACTIVE_DETACH = 2
    REENTRANT = 3
    DISCONNECT = 4


class SessionStatus(enum.IntEnum):
    """The argument of ``session_status`` (DEBUG_SESSION_*)."""

    ACTIVE = 0
    END_SESSION_ACTIVE_TERMINATE = 1
    END_SESSION_ACTIVE_DETACH = 2
    END_SESSION_PASSIVE = 3
    END = 4
    REBOOT = 5
    HIBERNATE = 6
    FAILURE = 7


class EventMask(enum.IntFlag):
    """Interest mask bits returned by ``get_interest_mask`` (DEBUG_EVENT_*)."""

    BREAKPOINT = 0x1
    EXCEPTION = 0x2
    CREATE_THREAD = 0x4
    EXIT_THREAD = 0x8
    CREATE_PROCESS = 0x10
    EXIT_PROCESS = 0x20
    LOAD_MODULE = 0x40
    UNLOAD_MODULE = 0x80
    SYSTEM_ERROR = 0x100
    SESSION_STATUS = 0x200
    CHANGE_DEBUGGEE_STATE = 0x400
    CHANGE_ENGINE_STATE = 0x800
    CHANGE_SYMBOL_STATE = 0x1000


class Status(enum.IntEnum):
    """Execution status (DEBUG_STATUS_*), also what event callbacks return."""

    NO_CHANGE = 0
    GO = 1
    GO_HANDLED = 2
    GO_NOT_HANDLED = 3
    STEP_OVER = 4
    STEP_INTO = 5
    BREAK = 6
    NO_DEBUGGEE = 7
    STEP_BRANCH = 8
    IGNORE_EVENT = 9
    RESTART_REQUESTED = 10
    OUT_OF_SYNC = 15
    WAIT_INPUT = 16
    TIMEOUT = 17


#: When callbacks disagree the engine acts on the earliest status in this
#: tuple that any of them returned ("least execution wins").
STATUS_PRECEDENCE: tuple[Status, ...] = (
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
)


class CES(enum.IntFlag):
    """``change_engine_state`` flags (DEBUG_CES_*)."""

    CURRENT_THREAD = 0x1
    EFFECTIVE_PROCESSOR = 0x2
    BREAKPOINTS = 0x4
    CODE_LEVEL = 0x8
    EXECUTION_STATUS = 0x10
    ENGINE_OPTIONS = 0x20
    LOG_FILE = 0x40
    RADIX = 0x80
    EVENT_FILTERS = 0x100
    PROCESS_OPTIONS = 0x200
    EXTENSIONS = 0x400
    SYSTEMS = 0x800
    ASSEMBLY_OPTIONS = 0x1000
    EXPRESSION_SYNTAX = 0x2000
    TEXT_REPLACEMENTS = 0x4000
    ALL = 0xFFFFFFFF


class CodeLevel(enum.IntEnum):
    """What ``p`` and ``t`` step by (``DEBUG_LEVEL_*``, cdb's ``l+t`` / ``l-t``)."""

    SOURCE = 0
    ASSEMBLY = 1


class SourceOptions(enum.IntFlag):
    """cdb's ``l+``/``l-`` option bits (``Source options are N:``)."""

    #: 1/t: step and trace by source line (the engine's code level is SOURCE).
    TRACE_LINES = 0x1
    #: 2/l: show the source line number at the prompt.
    LINE_NUMBERS = 0x2
    #: 4/s: list source code at the prompt.
    SOURCE = 0x4
    #: 8/o: only show source code at the prompt (no registers or disassembly).
    ONLY_SOURCE = 0x8


class CDS(enum.IntFlag):
    """``change_debuggee_state`` flags (DEBUG_CDS_*)."""

    REGISTERS = 0x1
    DATA = 0x2
    REFRESH = 0x4
    ALL = 0xFFFFFFFF


class CSS(enum.IntFlag):
    """``change_symbol_state`` flags (DEBUG_CSS_*)."""

    LOADS = 0x1
    UNLOADS = 0x2
    SCOPE = 0x4
    PATHS = 0x8
    SYMBOL_OPTIONS = 0x10
    TYPE_OPTIONS = 0x20
    ALL = 0xFFFFFFFF


class Notify(enum.IntEnum):
    """Extension notifications (DEBUG_NOTIFY_SESSION_*)."""

    SESSION_ACTIVE = 0
    SESSION_INACTIVE = 1
    SESSION_ACCESSIBLE = 2
    SESSION_INACCESSIBLE = 3


class ProcessOptions(enum.IntFlag):
    """Per-process options (DEBUG_PROCESS_*)."""

    NONE = 0
    DETACH_ON_EXIT = 0x1
    ONLY_THIS_PROCESS = 0x2


class OutputMask(enum.IntFlag):
    """Output callback masks (DEBUG_OUTPUT_*)."""

    NORMAL = 0x1
    ERROR = 0x2
    WARNING = 0x4
    VERBOSE = 0x8
    PROMPT = 0x10
    PROMPT_REGISTERS = 0x20
    EXTENSION_WARNING = 0x40
    DEBUGGEE = 0x80
    DEBUGGEE_PROMPT = 0x100
    SYMBOLS = 0x200
    #: A transient status line (progress): shown in place on a terminal, not logged.
    STATUS = 0x400


#: (prefix, enum, member-name transform) used to build the dbgeng spellings.
class EventFilter(enum.IntEnum):
    """What an exception (a signal) does when no callback asks for more: dbgeng's
    four execution options of an event filter (DEBUG_FILTER_*), cdb's sx* commands."""

    #: ``sxe``: break at the first chance.
    BREAK = 0
    #: ``sxd``: break only at the second chance (passing it would end the process).
    SECOND_CHANCE_BREAK = 1
    #: ``sxn``: print the event and go on.
    OUTPUT = 2
    #: ``sxi``: go on silently.
    IGNORE = 3


_DBGENG_PREFIXES: tuple[tuple[str, type[enum.Enum]], ...] = (
    ("DEBUG_END_", EndFlags),
    ("DEBUG_SESSION_", SessionStatus),
    ("DEBUG_EVENT_", EventMask),
    ("DEBUG_STATUS_", Status),
    ("DEBUG_CES_", CES),
    ("DEBUG_CDS_", CDS),
    ("DEBUG_CSS_", CSS),
    ("DEBUG_NOTIFY_", Notify),
    ("DEBUG_PROCESS_", ProcessOptions),
    ("DEBUG_OUTPUT_", OutputMask),
    ("DEBUG_FILTER_", EventFilter),
)


def dbgeng_names() -> dict[str, enum.Enum]:
    """Return every constant under its dbgeng name, e.g. ``DEBUG_END_PASSIVE``."""
    names: dict[str, enum.Enum] = {}
    for prefix, enum_type in _DBGENG_PREFIXES:
        for member in enum_type:
            assert member.name is not None
            names[prefix + member.name] = member
    return names


globals().update(dbgeng_names())
