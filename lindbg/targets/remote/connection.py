"""A smart client's connection to a process server: what
``connect_process_server`` returns (dbgeng's server handle).

The connection owns the ``RspLink`` and the one ``RemoteTarget`` over it; the
engine's ``create_process``/``attach_process`` take the connection as their
``server=`` argument and debug through its target. Every member is called on
the engine thread (``DebugClient`` sends them there).
"""

from __future__ import annotations

from lindbg.errors import InvalidOperationError, LindbgError
from lindbg.procserver.link import RspLink, RspLinkError
from lindbg.procserver.xfer import parse_osdata_processes
from lindbg.targets.remote.target import RemoteTarget
from lindbg.transports.options import TransportOptions, parse_client_options


class ProcessServerConnection:
    """One link to a process server (``lindbgsrv``, ``gdbserver --multi``).

    Attributes:
        options: the options it was connected with (``tcp:server=...,port=...``).
        label: the link in the user's words (``tcp 127.0.0.1:1234``).
    """

    def __init__(self, link: RspLink, options: TransportOptions) -> None:
        self.link = link
        self.options = options
        self.label = link.label
        self._target: RemoteTarget | None = None

    @classmethod
    def connect(cls, options: str | TransportOptions, timeout: float = 10.0) -> ProcessServerConnection:
        """Connect and negotiate.

        Raises:
            TransportError: bad options, or nobody answers there.
            NegotiationError: the peer is not an extended-remote RSP server.
        """
        if isinstance(options, str):
            options = parse_client_options(options)
        return cls(RspLink.connect(options, timeout=timeout), options)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<ProcessServerConnection {self.label} {state}>"

    @property
    def closed(self) -> bool:
        return self.link.closed

    def check_open(self) -> None:
        if self.link.closed:
            raise InvalidOperationError(f"the process server connection {self.label} is closed")

    @property
    def made_target(self) -> RemoteTarget | None:
        """The target, if one has been made (nothing is sent)."""
        return self._target

    @property
    def target(self) -> RemoteTarget:
        """The target through which processes of this server are debugged."""
        self.check_open()
        if self._target is None:
            self._target = RemoteTarget(self.link)
        return self._target

    def running_process_ids(self) -> list[tuple[int, str]]:
        """(pid, command) of every process on the server's machine, by pid
        (``qXfer:osdata:read:processes``).

        Raises:
            UnsupportedPacketError: the server cannot list processes.
        """
        self.check_open()
        document = self.link.read_object("osdata", "processes")
        try:
            return parse_osdata_processes(document)
        except ValueError as error:
            raise RspLinkError(f"{self.label}: {error}") from None

    def end_server(self) -> None:
        """Ask the server to exit (``monitor exit``), then close the link."""
        self.check_open()
        try:
            self.link.monitor("exit")
        except LindbgError:
            pass  # gdbserver closes the connection as it goes: no reply may come
        finally:
            self.close()

    def close(self) -> None:
        """End this link; the server runs on (``disconnect_process_server``)."""
        if self._target is not None:
            self._target.close()
        self.link.close()
