"""Symbol tables: names by address and addresses by name, for one image.

A ``SymbolTable`` is built from a list of ``Symbol`` (or, from the ELF reader, from
plain rows unpacked from the raw .symtab/.dynsym bytes) and sorted by address once.
Address questions (``at``, ``next_after``) bisect the sorted addresses; name questions
use an index built on first use. Only ``match`` (cdb's ``x mod!pattern``) looks at
every name, as cdb's own ``x`` does.

Addresses are link-time addresses; the caller adds the module's load bias.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter

_KIND_RANK = {"function": 0, "object": 1}
#: A symbol as the table keeps it: (name, address, size, kind), Symbol's field order.
Row = tuple[str, int, int, str]
_address = itemgetter(1)


@dataclass(frozen=True, slots=True)
class Symbol:
    """One named address: ``kind`` is "function", "object" or "other" (a label)."""

    name: str
    address: int
    size: int
    kind: str


def base_name(name: str) -> str:
    """``name`` without an ELF symbol-version suffix (``memcpy@@GLIBC_2.14`` -> ``memcpy``)."""
    at = name.find("@")
    return name if at <= 0 else name[:at]


_VERSION_ALIAS = re.compile(r"_alias(_\d+)?(@|$)")


def _preference(row: Row) -> tuple[int, int, int, int]:
    """Sort key among aliases of one address: which of them names it.

    A frame should read ``libc!memcpy`` rather than ``libc!memcpy@@GLIBC_2.14`` or
    ``libc!__memcpy``: functions before objects before labels, unversioned names before
    default (``@@``) versions before old (``@``) ones, fewer leading underscores first.
    Names glibc makes only to hang a symbol version on (``__libc_start_main_alias_2``)
    come after the name the function was written under (``__libc_start_main_impl``),
    which is also the one DWARF and gdb use. Ties keep the caller's order (the ELF
    reader lists globals before locals).
    """
    name = row[0]
    at = name.find("@")
    version = 0 if at <= 0 else (1 if name.startswith("@@", at) else 2)
    underscores = len(name) - len(name.lstrip("_"))
    alias = 1 if _VERSION_ALIAS.search(name) else 0
    return (_KIND_RANK.get(row[3], 2), alias, version, underscores)


def _best(rows: list[Row]) -> Row:
    """The preferred of several aliases of one address (``rows`` in table order)."""
    return rows[0] if len(rows) == 1 else min(rows, key=_preference)


def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """cdb's symbol wildcards as a regular expression (CDB-OUTPUT.md section 8).

    ``*`` is any run of characters, ``?`` one character, matching ignores case, and one
    leading ``_`` stands for any number of leading underscores, zero included (the
    debugger documentation's rule for text symbol expressions).
    """
    prefix = ""
    if pattern.startswith("_"):
        prefix, pattern = "_*", pattern[1:]
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(prefix + body, re.IGNORECASE | re.DOTALL)


class SymbolTable:
    """The symbols of one image, sorted by address.

    Rows are kept as plain tuples and a ``Symbol`` is made only for an answer: libc's
    debug file has 8,000 symbols and a question needs one or a few of them.
    """

    def __init__(self, symbols: list[Symbol]) -> None:
        self._init_rows([(s.name, s.address, s.size, s.kind) for s in symbols])

    @classmethod
    def from_rows(cls, rows: list[Row]) -> SymbolTable:
        """A table from (name, address, size, kind) tuples, in any order (the ELF reader's
        path: it skips making a Symbol for every entry of a table it reads)."""
        table = cls.__new__(cls)
        table._init_rows(rows)
        return table

    @classmethod
    def merged(cls, *tables: SymbolTable) -> SymbolTable:
        """One table from several (a debug file's and its image's): one entry per
        (name, address), the earlier table's first. Cheaper than rebuilding from
        iterated Symbols: rows are shared, not remade."""
        if len(tables) == 1:
            return tables[0]
        seen: set[tuple[str, int]] = set()
        rows: list[Row] = []
        for table in tables:
            for row in table._rows:
                key = (row[0], row[1])
                if key not in seen:
                    seen.add(key)
                    rows.append(row)
        return cls.from_rows(rows)

    def _init_rows(self, rows: list[Row]) -> None:
        # Sorted on a C-level key only: which alias of an address names it is decided
        # when a question lands on that address (``_best``). Over half of libc's symbols
        # share an address with another, and ranking them all up front doubled the cost.
        self._rows = sorted(rows, key=_address)
        self._addresses = [row[1] for row in self._rows]

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Symbol]:
        """Every symbol, by address."""
        return (Symbol(*row) for row in self._rows)

    @cached_property
    def _reach(self) -> list[int]:
        """``_reach[i]``: the highest end address of the symbols ``0..i``.

        It bounds the walk back in ``at``: once no earlier symbol reaches past the
        address, none can contain it, so the walk stops after a step or two even when
        symbols nest (a function inside a larger object, aliases of one address).
        """
        return list(itertools.accumulate((row[1] + row[2] for row in self._rows), max))

    @cached_property
    def _by_name(self) -> dict[str, list[Row]]:
        """Exact names, and unversioned names of versioned symbols, to their rows."""
        index: dict[str, list[Row]] = {}
        for row in self._rows:
            name = row[0]
            index.setdefault(name, []).append(row)
            if "@" in name:
                base = base_name(name)
                if base != name:
                    index.setdefault(base, []).append(row)
        return index

    def at(self, address: int) -> tuple[Symbol, int] | None:
        """The symbol containing ``address`` and the offset into it, or None.

        As gdb chooses a minimal symbol: a sized symbol that contains the address wins
        (a function over an object, the innermost when they nest); failing that, a
        zero-sized symbol at the nearest address at or below (asm labels often have no
        size). An address past the end of a sized symbol, in padding or in a function
        the table does not name, gets None rather than a misleading ``name+0x1234``.
        """
        index = bisect.bisect_right(self._addresses, address) - 1
        if index < 0:
            return None
        rows, reach = self._rows, self._reach
        functions: list[Row] = []
        others: list[Row] = []
        j = index
        while j >= 0 and reach[j] > address:
            row = rows[j]
            if functions and row[1] != functions[0][1]:
                break
            if row[2] and address < row[1] + row[2]:
                if row[3] == "function":
                    functions.append(row)
                elif not others or row[1] == others[0][1]:
                    others.append(row)
            j -= 1
        candidates = functions or others
        if not candidates:
            nearest = self._addresses[index]
            j = index
            while j >= 0 and self._addresses[j] == nearest:
                if rows[j][2] == 0:
                    candidates.append(rows[j])
                j -= 1
        if not candidates:
            return None
        found = _best(candidates[::-1])
        return Symbol(*found), address - found[1]

    def next_after(self, address: int) -> Symbol | None:
        """The first symbol that starts above ``address`` (the right-hand side of ``ln``)."""
        index = bisect.bisect_right(self._addresses, address)
        if index >= len(self._rows):
            return None
        end = bisect.bisect_right(self._addresses, self._addresses[index], index)
        return Symbol(*_best(self._rows[index:end]))

    def lookup(self, name: str) -> list[Symbol]:
        """Symbols named exactly ``name``, or ``name`` plus a version suffix; by address,
        the preferred alias first where several share one."""
        rows = self._by_name.get(name, [])
        if len(rows) > 1:
            rows = sorted(rows, key=lambda row: (row[1], *_preference(row)))
        return [Symbol(*row) for row in rows]

    def match(self, pattern: str) -> list[Symbol]:
        """Symbols whose name (or unversioned name) matches cdb wildcards; by address."""
        full = wildcard_regex(pattern).fullmatch
        return [
            Symbol(*row) for row in self._rows if full(row[0]) or ("@" in row[0] and full(base_name(row[0])))
        ]
