"""Reading commands from a terminal: line editing and history (prompt_toolkit).

Only used when both standard input and output are terminals; scripts and pipes
read line by line through ``run_console`` instead. History lives in
``$LINDBG_HISTORY``, else ``~/.lindbg_history``, and is kept in memory only when
that file cannot be written.
"""

from __future__ import annotations

import os
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory, History, InMemoryHistory


def history_path() -> Path:
    """Where command history is kept between sessions."""
    configured = os.environ.get("LINDBG_HISTORY")
    return Path(configured) if configured else Path.home() / ".lindbg_history"


def _history() -> History:
    path = history_path()
    try:
        path.touch(exist_ok=True)
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(path))


class TerminalLines:
    """Command lines typed at a terminal, with editing keys and history."""

    def __init__(self) -> None:
        self._session: PromptSession[str] = PromptSession(history=_history())

    def read_line(self, prompt: str) -> str | None:
        """The next line (Ctrl-C at the prompt gives an empty one); None at Ctrl-D."""
        try:
            return self._session.prompt(prompt)
        except KeyboardInterrupt:
            return ""
        except EOFError:
            return None
