"""What a stopped remote process's memory looked like, kept until it runs again.

Strategy. Symbols, unwinding and disassembly ask for a few bytes at a time,
often the same ones; over a network link every question is a round trip. So
small reads are served from aligned blocks, each fetched whole with one
request the first time a byte of it is asked for, and kept until the target
runs or is written to (``clear``/``written``). A block the server could read
only in part is kept short: asking past its end raises, as the process would
have. Large reads (``db`` of a megabyte, a core dump) go to the link in
packet-sized pieces and are not kept.
"""

from __future__ import annotations

from collections.abc import Callable

from lindbg.errors import MemoryAccessError

#: Reads are answered from blocks of this many bytes (a page: the unit of what is mapped).
BLOCK = 4096
#: Reads longer than this bypass the cache.
LARGEST_CACHED = 4 * BLOCK

#: ``fetch(address, size)``: up to ``size`` bytes (fewer where memory ends);
#: raises MemoryAccessError when not even the first byte can be read.
Fetch = Callable[[int, int], bytes]


class StopMemory:
    """The memory of one process while it stays stopped."""

    __slots__ = ("_blocks", "_fetch")

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        #: block address -> its bytes (shorter than BLOCK where memory ends).
        self._blocks: dict[int, bytes] = {}

    def clear(self) -> None:
        """The process ran: nothing kept is true any more."""
        self._blocks.clear()

    def written(self, address: int, size: int) -> None:
        """``size`` bytes at ``address`` were written: forget the blocks they touch."""
        if not self._blocks:
            return
        first = address - address % BLOCK
        for block in range(first, address + size, BLOCK):
            self._blocks.pop(block, None)

    def read(self, address: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``address``: fewer where memory ends.

        Raises:
            MemoryAccessError: not even the byte at ``address`` is readable.
        """
        if size <= 0:
            return b""
        if size > LARGEST_CACHED:
            return self._fetch(address, size)
        out = bytearray()
        where, end = address, address + size
        while where < end:
            block = where - where % BLOCK
            data = self._blocks.get(block)
            if data is None:
                try:
                    data = self._fetch(block, BLOCK)
                except MemoryAccessError:
                    data = b""  # pages are mapped whole: the block is unreadable
                self._blocks[block] = data
            offset = where - block
            piece = data[offset : offset + (end - where)]
            if not piece:
                break
            out += piece
            where += len(piece)
            if len(data) < BLOCK:
                break  # memory ends inside this block
        if not out:
            raise MemoryAccessError(f"cannot read memory at {address:#x}", address)
        return bytes(out)
