"""lindbg.symbols.lines against the reference tools: addr2line, objdump and gdb.

C fixtures are compiled here (two translation units; -O0 and -O2; PIE and -no-pie;
DWARF 4 and 5). For every is_stmt row objdump decodes and every function start nm
lists, ``line_at`` must name the same file and line as ``addr2line``;
``addresses_of`` must start where gdb's ``info line`` says the line starts. libc's
separate debug file checks that one lookup in a big module is cheap. Truncated and
scrambled DWARF must raise ``LineError`` and nothing else.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from lindbg.errors import LindbgError
from lindbg.symbols.lines import LineError, LineTable, SourceLine

FIXTURE_C = r"""#include <stdio.h>
#include <stdlib.h>
#include "helper.h"

static int table[16];

static int square(int x)
{
    return x * x;
}

/* a comment line: no code here */

int accumulate(int n)
{
    int total = 0;
    for (int i = 0; i < n; i++) {
        total += square(i);
        if (total > 1000)
            break;
    }
    return total;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 5;

    table[n & 15] = accumulate(n);
    printf("%d %d\n", table[n & 15], helper_mix(n, argc));
    return 0;
}
"""

HELPER_H = r"""#ifndef HELPER_H
#define HELPER_H
int helper_mix(int a, int b);
static inline int helper_twice(int v)
{
    return v + v;
}
#endif
"""

HELPER_C = r"""#include "helper.h"

int helper_mix(int a, int b)
{
    int r = helper_twice(a);

    while (b-- > 0)
        r ^= b * 31;
    return r;
}
"""

VARIANTS = [
    (opt, pie, dwarf)
    for opt in ("-O0", "-O2")
    for pie in ("-pie", "-no-pie")
    for dwarf in ("-gdwarf-4", "-gdwarf-5")
]
VARIANT_IDS = ["".join(v).replace("-", "_").strip("_") for v in VARIANTS]

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("addr2line") is None or shutil.which("objdump") is None,
    reason="needs gcc, addr2line and objdump",
)


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("lines_src")
    (directory / "fixture.c").write_text(FIXTURE_C)
    (directory / "helper.h").write_text(HELPER_H)
    (directory / "helper.c").write_text(HELPER_C)
    return directory


def _build(sources: Path, opt: str, pie: str, dwarf: str) -> Path:
    out = sources / ("prog" + opt + pie + dwarf).replace("-", "_")
    if not out.exists():
        pie_flags = ["-fPIE", "-pie"] if pie == "-pie" else ["-fno-pie", "-no-pie"]
        subprocess.run(
            ["gcc", "-g", dwarf, opt, *pie_flags, "-o", str(out), "fixture.c", "helper.c"],
            cwd=sources,
            check=True,
        )
    return out


@pytest.fixture(scope="module", params=VARIANTS, ids=VARIANT_IDS)
def program(request: pytest.FixtureRequest, sources: Path) -> Path:
    opt, pie, dwarf = request.param
    return _build(sources, opt, pie, dwarf)


def _addr2line(path: Path | str, addresses: list[int]) -> list[tuple[str, int | None]]:
    """addr2line's (file basename, line) for each address; line None for '?'."""
    out = _run("addr2line", "-e", str(path), *(hex(a) for a in addresses)).splitlines()
    assert len(out) == len(addresses)
    result: list[tuple[str, int | None]] = []
    for text in out:
        text = re.sub(r" \(discriminator \d+\)$", "", text)
        file, _, line = text.rpartition(":")
        result.append((os.path.basename(file), int(line) if line.isdigit() else None))
    return result


_DECODED_ROW = re.compile(r"^(\S+)\s+(\d+)\s+(0x[0-9a-f]+)(?:\s+\d+)?\s*(x?)\s*$")


def _objdump_rows(path: Path) -> list[tuple[str, int, int, bool]]:
    """objdump --dwarf=decodedline's rows: (file basename, line, address, is_stmt)."""
    rows = []
    for text in _run("objdump", "--dwarf=decodedline", str(path)).splitlines():
        match = _DECODED_ROW.match(text)
        if match:
            file, line, address, stmt = match.groups()
            rows.append((os.path.basename(file), int(line), int(address, 16), stmt == "x"))
    return rows


def _functions(path: Path | str) -> dict[str, int]:
    found = {}
    for text in _run("nm", "--defined-only", str(path)).splitlines():
        parts = text.split()
        if len(parts) == 3 and parts[1] in "Tt":
            found[parts[2]] = int(parts[0], 16)
    return found


def _objdump_file_at(rows: list[tuple[str, int, int, bool]], address: int) -> str | None:
    """The file of objdump's last decoded row starting at or below ``address``."""
    best: tuple[int, str] | None = None
    for file, _line, start, _stmt in rows:
        if start <= address and (best is None or start >= best[0]):
            best = (start, file)
    return best[1] if best else None


def _compare(table: LineTable, path: Path | str, addresses: list[int]) -> None:
    """line_at agrees with addr2line on file basename and line.

    binutils 2.40's addr2line names the CU's primary file instead of the row's file
    for the first rows of a DWARF 5 CU whose line program starts in another file (an
    inline header function emitted first); objdump's decoded rows and gdb (`info line
    *ADDR`) name the row's file, so where only the file differs, objdump decides.
    """
    expected = _addr2line(path, addresses)
    rows: list[tuple[str, int, int, bool]] | None = None
    mismatches = []
    for address, (file, line) in zip(addresses, expected, strict=True):
        got = table.line_at(address)
        if line is None:
            if got is not None:
                mismatches.append((hex(address), None, got))
            continue
        if got is not None and got.line == line and os.path.basename(got.file) != file:
            rows = rows if rows is not None else _objdump_rows(Path(path))
            file = _objdump_file_at(rows, address) or file
        if got is None or os.path.basename(got.file) != file or got.line != line:
            mismatches.append((hex(address), (file, line), got))
    assert not mismatches, mismatches[:10]


# ----------------------------------------------------------------- line_at


def test_line_at_matches_addr2line_on_every_stmt_row(program: Path) -> None:
    rows = _objdump_rows(program)
    stmt_addresses = sorted({address for _file, _line, address, stmt in rows if stmt})
    assert len(stmt_addresses) > 10
    _compare(LineTable(str(program)), program, stmt_addresses)


def test_line_at_matches_addr2line_on_every_row_and_between_rows(program: Path) -> None:
    rows = _objdump_rows(program)
    addresses = sorted({address for _f, _l, address, _s in rows})
    # one byte past each row start too: inside the row (or the next), never a row start
    _compare(LineTable(str(program)), program, sorted(set(addresses) | {a + 1 for a in addresses}))


def test_line_at_matches_addr2line_on_function_starts(program: Path) -> None:
    functions = _functions(program)
    ours = [functions[name] for name in ("main", "accumulate", "helper_mix")]
    _compare(LineTable(str(program)), program, sorted(set(functions.values())))
    table = LineTable(str(program))
    for address in ours:
        found = table.line_at(address)
        assert isinstance(found, SourceLine)
        assert found.address <= address
        assert os.path.isabs(found.file), found
        assert os.path.basename(found.file) in ("fixture.c", "helper.c", "helper.h")


@pytest.mark.skipif(shutil.which("objcopy") is None, reason="needs objcopy")
def test_line_at_without_aranges_uses_top_die_ranges(program: Path, tmp_path: Path) -> None:
    """No .debug_aranges: CUs are placed by their top DIE's low_pc/high_pc or DW_AT_ranges
    (-O2 puts main in .text.startup, so the CU has a range list: .debug_ranges or .debug_rnglists)."""
    bare = tmp_path / "no-aranges"
    subprocess.run(["objcopy", "--remove-section=.debug_aranges", str(program), str(bare)], check=True)
    assert ".debug_aranges" not in _run("readelf", "-S", str(bare))
    rows = _objdump_rows(bare)
    addresses = sorted({address for _f, _l, address, stmt in rows if stmt} | set(_functions(bare).values()))
    _compare(LineTable(str(bare)), bare, addresses)


def test_line_at_outside_code_is_none(program: Path) -> None:
    table = LineTable(str(program))
    assert table.line_at(0) is None
    assert table.line_at(0x7FFF_FFFF_FFFF) is None
    rows = _objdump_rows(program)
    assert table.line_at(max(address for _f, _l, address, _s in rows) + 0x10000) is None


def test_row_fields(sources: Path) -> None:
    program = _build(sources, "-O0", "-no-pie", "-gdwarf-5")
    table = LineTable(str(program))
    main = _functions(program)["main"]
    row = table.line_at(main)
    assert row == SourceLine(str(sources / "fixture.c"), 26, main, True)
    inside = table.line_at(main + 1)
    assert inside is not None and inside.address == main and inside.line == 26


# ----------------------------------------------------------------- addresses_of


_INFO_LINE = re.compile(r'^Line (\d+) of "[^"]*"\s+(?:starts at|is at) address (0x[0-9a-f]+)')


def _gdb_info_lines(path: Path, file: str, lines: range) -> dict[int, int | None]:
    """gdb's `info line FILE:N` start address for each N (None: no code there)."""
    args = ["gdb", "-nx", "-batch", "-q"]
    for line in lines:
        args += ["-ex", f"echo @@{line}\\n", "-ex", f"info line {file}:{line}"]
    out = subprocess.run([*args, str(path)], capture_output=True, text=True, check=True).stdout
    result: dict[int, int | None] = {}
    current = None
    for text in out.splitlines():
        if text.startswith("@@"):
            current = int(text[2:])
            result[current] = None
            continue
        match = _INFO_LINE.match(text)
        if match and current is not None:
            result[current] = int(match.group(2), 16)
    return result


@pytest.mark.skipif(shutil.which("gdb") is None, reason="needs gdb")
@pytest.mark.parametrize("file,source", [("fixture.c", FIXTURE_C), ("helper.c", HELPER_C)])
def test_addresses_of_matches_gdb_info_line(program: Path, file: str, source: str) -> None:
    table = LineTable(str(program))
    count = source.count("\n")
    reference = _gdb_info_lines(program, file, range(1, count + 2))
    mismatches = []
    for line, gdb_address in reference.items():
        ours = table.addresses_of(file, line)
        first = ours[0] if ours else None
        if first != gdb_address:
            mismatches.append((line, gdb_address and hex(gdb_address), [hex(a) for a in ours]))
    assert not mismatches, mismatches


def test_addresses_of_are_stmt_rows_of_that_line(program: Path) -> None:
    rows = _objdump_rows(program)
    table = LineTable(str(program))
    for line in (17, 18, 19, 28, 29):
        expected = sorted({a for f, n, a, s in rows if f == "fixture.c" and n == line and s})
        if expected:
            assert table.addresses_of("fixture.c", line) == expected, line


def test_addresses_of_matching_rules(sources: Path) -> None:
    program = _build(sources, "-O0", "-pie", "-gdwarf-4")
    table = LineTable(str(program))
    by_basename = table.addresses_of("fixture.c", 16)
    assert by_basename
    assert table.addresses_of(str(sources / "fixture.c"), 16) == by_basename
    assert table.addresses_of(sources.name + "/fixture.c", 16) == by_basename
    assert table.addresses_of("./fixture.c", 16) == by_basename
    assert table.addresses_of("ixture.c", 16) == []
    assert table.addresses_of("/elsewhere/fixture.c", 16) == []
    assert table.addresses_of("nosuch.c", 1) == []
    # no code on the comment line 12: the next line with code (15, accumulate's opening)
    assert table.addresses_of("fixture.c", 12) == table.addresses_of("fixture.c", 15)
    assert table.addresses_of("fixture.c", 999) == []
    # an inline function in a header
    assert table.addresses_of("helper.h", 6)


def test_files(sources: Path) -> None:
    for dwarf in ("-gdwarf-4", "-gdwarf-5"):
        files = LineTable(str(_build(sources, "-O2", "-pie", dwarf))).files()
        for name in ("fixture.c", "helper.c", "helper.h"):
            assert str(sources / name) in files, (dwarf, files)
        assert all(os.path.isabs(f) for f in files)
        assert files == sorted(set(files))


# ----------------------------------------------------------------- libc


def _libc_debug_file() -> tuple[str, str] | None:
    libc = "/lib/x86_64-linux-gnu/libc.so.6"
    if not os.path.exists(libc) or shutil.which("readelf") is None:
        return None
    match = re.search(r"Build ID: ([0-9a-f]+)", _run("readelf", "-n", libc))
    if not match:
        return None
    build_id = match.group(1)
    debug = f"/usr/lib/debug/.build-id/{build_id[:2]}/{build_id[2:]}.debug"
    return (libc, debug) if os.path.exists(debug) else None


def test_libc_debug_file_one_lookup_is_cheap() -> None:
    found = _libc_debug_file()
    if found is None:
        pytest.skip("libc's separate debug file is not installed")
    _libc, debug = found
    functions = _functions(debug)
    name = next(n for n in sorted(functions) if n == "msort_with_tmp" or n.startswith("msort_with_tmp."))
    address = functions[name]
    started = time.perf_counter()
    table = LineTable(debug)
    row = table.line_at(address)
    elapsed = time.perf_counter() - started
    print(f"\nlibc debug file: open + first line_at({name}) took {elapsed * 1000:.0f} ms -> {row}")
    assert row is not None
    [(file, line)] = _addr2line(debug, [address])
    assert (os.path.basename(row.file), row.line) == (file, line)
    started = time.perf_counter()
    others = sorted(functions.values())[::97]
    _compare(table, debug, others)
    print(f"libc debug file: {len(others)} more lookups compared with addr2line in "
          f"{(time.perf_counter() - started) * 1000:.0f} ms")  # fmt: skip
    started = time.perf_counter()
    addresses = table.addresses_of("msort.c", row.line)
    print(f"libc debug file: addresses_of('msort.c', {row.line}) took "
          f"{(time.perf_counter() - started) * 1000:.0f} ms -> {[hex(a) for a in addresses]}")  # fmt: skip
    assert addresses


# ----------------------------------------------------------------- corrupt input


def _with_section(program: Path, section: str, data: bytes, out: Path) -> Path:
    blob = out.with_suffix(".bin")
    blob.write_bytes(data)
    subprocess.run(
        ["objcopy", f"--update-section={section}={blob}", str(program), str(out)],
        check=True,
        capture_output=True,
    )
    return out


def _section_bytes(program: Path, section: str, tmp_path: Path) -> bytes:
    dump = tmp_path / (section.strip(".") + ".dump")
    subprocess.run(
        ["objcopy", f"--dump-section={section}={dump}", str(program)], check=True, capture_output=True
    )
    return dump.read_bytes()


def _exercise(path: Path, probes: list[int]) -> list[BaseException]:
    """Ask everything; return the errors (which must all be LineError)."""
    table = LineTable(str(path))
    errors: list[BaseException] = []
    calls = [lambda: table.files(), lambda: table.addresses_of("fixture.c", 17)]
    calls += [lambda a=a: table.line_at(a) for a in probes]  # type: ignore[misc]
    for call in calls:
        try:
            call()
        except LineError as exc:
            assert isinstance(exc, LindbgError)
            assert str(path) in str(exc)
            errors.append(exc)
    return errors


@pytest.mark.skipif(shutil.which("objcopy") is None, reason="needs objcopy")
@pytest.mark.parametrize("section", [".debug_line", ".debug_info"])
def test_truncated_section_raises_line_error(sources: Path, tmp_path: Path, section: str) -> None:
    program = _build(sources, "-O0", "-no-pie", "-gdwarf-5")
    data = _section_bytes(program, section, tmp_path)
    functions = _functions(program)
    probes = [functions["main"], functions["helper_mix"], functions["accumulate"]]
    half = _with_section(program, section, data[: len(data) // 2], tmp_path / "half")
    errors = _exercise(half, probes)
    assert errors, "a section cut in half must be noticed"
    assert any("CU at .debug_info+0x" in str(e) for e in errors), [str(e) for e in errors]
    for cut in range(1, len(data), max(1, len(data) // 60)):
        _exercise(_with_section(program, section, data[:cut], tmp_path / f"cut{cut}"), probes)


@pytest.mark.skipif(shutil.which("objcopy") is None, reason="needs objcopy")
@pytest.mark.parametrize("section", [".debug_line", ".debug_info", ".debug_abbrev"])
def test_scrambled_section_raises_only_line_error(sources: Path, tmp_path: Path, section: str) -> None:
    program = _build(sources, "-O0", "-pie", "-gdwarf-4")
    data = _section_bytes(program, section, tmp_path)
    functions = _functions(program)
    probes = [functions["main"], functions["helper_mix"]]
    rng = random.Random(1234)
    for attempt in range(25):
        scrambled = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            scrambled[rng.randrange(len(scrambled))] = rng.randrange(256)
        _exercise(_with_section(program, section, bytes(scrambled), tmp_path / f"s{attempt}"), probes)


def test_missing_or_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(LineError, match="nosuch"):
        LineTable(str(tmp_path / "nosuch")).line_at(0x1000)
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x7fELF" + b"\x00" * 40)
    with pytest.raises(LineError, match="junk"):
        LineTable(str(junk)).files()


def test_no_debug_info_is_empty(sources: Path, tmp_path: Path) -> None:
    stripped = tmp_path / "stripped"
    subprocess.run(["gcc", "-O0", "-o", str(stripped), str(sources / "fixture.c"), str(sources / "helper.c"),
                    f"-I{sources}"], check=True)  # fmt: skip
    table = LineTable(str(stripped))
    assert table.line_at(_functions(stripped)["main"]) is None
    assert table.files() == []
    assert table.addresses_of("fixture.c", 17) == []


def test_construction_is_lazy(tmp_path: Path) -> None:
    LineTable(str(tmp_path / "does-not-exist-yet"))  # no error until asked
