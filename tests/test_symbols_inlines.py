"""lindbg.symbols.inlines against the reference tools: gdb and addr2line.

A C fixture with ``always_inline`` functions nested two deep (in a header) called from a
``noinline`` function, plus glibc's inlined ``atoi``, is compiled at -O2 with DWARF 4
and 5. For every line-table row address inside the fixture's code that the program
runs, ``inlined_at`` must name the inlined frames gdb's ``bt`` prints at a breakpoint
there (and their call sites), and ``function_at`` the real function; for every row
address (PIE too), the chain must equal ``addr2line -f -i``'s. libc's separate debug
file checks ``msort_with_tmp`` inlined into ``msort_with_tmp.part.0`` and a sample of
addresses across the module. Truncated and scrambled DWARF must raise ``LineError``.
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
from lindbg.symbols.inlines import InlinedCall, InlineTable
from lindbg.symbols.lines import LineError

INL_H = r"""extern volatile int sink;

static inline __attribute__((always_inline)) int leaf(int x)
{
    int r = x * 3;
    sink = r;
    return r + 1;
}

static inline __attribute__((always_inline)) int middle(int x)
{
    int a = leaf(x);
    sink += a;
    int b = leaf(a + sink);
    return a + b;
}
"""

PROG_C = r"""#include <stdio.h>
#include <stdlib.h>
#include "inl.h"

volatile int sink;

__attribute__((noinline)) int outer(int n)
{
    int t = 0;
    for (int i = 0; i < n; i++) {
        t += middle(i);
        sink ^= t;
    }
    return t;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 3;
    printf("%d\n", outer(n));
    return 0;
}
"""

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("addr2line") is None or shutil.which("objdump") is None,
    reason="needs gcc, addr2line and objdump",
)


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("inlines_src")
    (directory / "inl.h").write_text(INL_H)
    (directory / "prog.c").write_text(PROG_C)
    return directory


def _build(sources: Path, dwarf: str, pie: bool) -> Path:
    out = sources / f"prog_{dwarf.strip('-').replace('-', '_')}_{'pie' if pie else 'nopie'}"
    if not out.exists():
        pie_flags = ["-fPIE", "-pie"] if pie else ["-fno-pie", "-no-pie"]
        subprocess.run(["gcc", "-O2", "-g", dwarf, *pie_flags, "-o", str(out), "prog.c"], cwd=sources,
                       check=True)  # fmt: skip
    return out


def _functions(path: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in _run("nm", "--defined-only", str(path)).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            found.setdefault(parts[2], int(parts[0], 16))
    return found


def _row_addresses(path: Path, lo: int, hi: int) -> list[int]:
    """Every address objdump's decoded line table has a row at, within [lo, hi)."""
    found: set[int] = set()
    for line in _run("objdump", "--dwarf=decodedline", str(path)).splitlines():
        for word in line.split():
            if word.startswith("0x"):
                address = int(word, 16)
                if lo <= address < hi:
                    found.add(address)
                break
    return sorted(found)


def _code_range(path: Path) -> tuple[int, int]:
    """[start, end) of main and outer (nm -S sizes)."""
    spans = []
    for line in _run("nm", "-S", "--defined-only", str(path)).splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] in ("main", "outer"):
            start = int(parts[0], 16)
            spans.append((start, start + int(parts[1], 16)))
    assert len(spans) == 2, spans
    return min(s for s, _ in spans), max(e for _, e in spans)


def _addr2line_chains(path: Path, addresses: list[int]) -> dict[int, tuple[list[str], list[tuple[str, int]]]]:
    """addr2line -f -i: for each address, (function names innermost first, call sites)."""
    out = _run("addr2line", "-f", "-i", "-a", "-e", str(path), *map(hex, addresses)).splitlines()
    chains: dict[int, tuple[list[str], list[tuple[str, int]]]] = {}
    current: list[str] = []
    for line in out:
        if re.fullmatch(r"0x[0-9a-f]+", line):
            current = []
            chains[int(line, 16)] = ([], [])
            key = int(line, 16)
            continue
        current.append(line)
        names, sites = chains[key]
        if len(current) % 2 == 1:
            names.append(line.removeprefix("__GI_"))
        elif len(current) > 2:  # every location after the first is a call site
            file, _, number = line.split(" ")[0].rpartition(":")
            sites.append((os.path.basename(file), int(number) if number.isdigit() else 0))
    return chains


def _compare_with_addr2line(table: InlineTable, path: Path, addresses: list[int]) -> int:
    """Returns how many addresses had inlined calls."""
    reference = _addr2line_chains(path, addresses)
    mismatches = []
    inlined = 0
    for address in addresses:
        names, sites = reference[address]
        chain = table.inlined_at(address)
        inlined += bool(chain)
        ours = [call.name for call in chain]
        our_sites = [(os.path.basename(call.call_file), call.call_line) for call in chain]
        # addr2line may name the out-of-line function by an ELF alias (__GI_x, __qsort_r): not compared.
        if ours != names[:-1] or our_sites != sites:
            mismatches.append((hex(address), names, sites, ours, our_sites))
    assert not mismatches, mismatches[:10]
    return inlined


DWARFS = ["-gdwarf-4", "-gdwarf-5"]


@pytest.mark.parametrize("pie", [False, True], ids=["nopie", "pie"])
@pytest.mark.parametrize("dwarf", DWARFS)
def test_matches_addr2line_on_every_row(sources: Path, dwarf: str, pie: bool) -> None:
    program = _build(sources, dwarf, pie)
    lo, hi = _code_range(program)
    addresses = _row_addresses(program, lo, hi)
    addresses += [a + 1 for a in addresses]  # inside instructions too
    table = InlineTable(str(program))
    assert _compare_with_addr2line(table, program, sorted(set(addresses))) >= 5
    functions = _functions(program)
    assert table.function_at(functions["outer"]) == "outer"
    assert table.function_at(functions["main"]) == "main"


# ----------------------------------------------------------------- gdb

_FRAME = re.compile(r"^#(\d+)\s+(?:(0x[0-9a-f]+) in )?(\S+) \(.*\) at (\S+):(\d+)$")


def _gdb_backtraces(program: Path, addresses: list[int]) -> dict[int, list[tuple[bool, str, str, int]]]:
    """gdb's bt at a temporary breakpoint on each address the program reaches:
    (has an address, function, file, line) per frame."""
    script = ["set pagination off", "set confirm off"]
    for address in addresses:
        script += [f"tbreak *0x{address:x}", "commands", "silent", 'printf "@@ 0x%lx\\n", $pc', "bt",
                   "continue", "end"]  # fmt: skip
    script.append("run")
    path = program.with_suffix(".gdb")
    path.write_text("\n".join(script) + "\n")
    out = subprocess.run(["gdb", "-nx", "-batch", "-q", "-x", str(path), "--args", str(program), "3"],
                         capture_output=True, text=True, timeout=120).stdout  # fmt: skip
    traces: dict[int, list[tuple[bool, str, str, int]]] = {}
    frames: list[tuple[bool, str, str, int]] = []
    for line in out.splitlines():
        if line.startswith("@@ "):
            frames = []
            traces[int(line[3:], 16)] = frames
            continue
        match = _FRAME.match(line)
        if match:
            frames.append((match.group(2) is not None, match.group(3), match.group(4), int(match.group(5))))
    return traces


def _gdb_inline_part(frames: list[tuple[bool, str, str, int]]) -> list[tuple[bool, str, str, int]]:
    """Frame 0, then every frame printed without an address: the inlined frames and the
    real function they are inlined into (gdb prints the caller frame with a pc)."""
    part = frames[:1]
    for frame in frames[1:]:
        if frame[0]:
            break
        part.append(frame)
    return part


@pytest.mark.skipif(shutil.which("gdb") is None, reason="needs gdb")
@pytest.mark.parametrize("dwarf", DWARFS)
def test_matches_gdb_backtrace(sources: Path, dwarf: str) -> None:
    program = _build(sources, dwarf, pie=False)
    lo, hi = _code_range(program)
    addresses = _row_addresses(program, lo, hi)
    traces = _gdb_backtraces(program, addresses)
    if not traces:
        pytest.skip("gdb could not run the program here")
    table = InlineTable(str(program))
    compared = deep = 0
    mismatches = []
    for address, frames in sorted(traces.items()):
        part = _gdb_inline_part(frames)
        gdb_names = [frame[1] for frame in part[:-1]]
        gdb_sites = [(os.path.basename(frame[2]), frame[3]) for frame in part[1:]]
        chain = table.inlined_at(address)
        # At the first instruction of an inlined range gdb presents the stop as not yet
        # inside that call (it drops those innermost frames): allow exactly that.
        skip = 0
        while skip < len(chain) and len(chain) - skip > len(gdb_names) and chain[skip].low == address:
            skip += 1
        shown = chain[skip:]
        ours = [call.name for call in shown]
        our_sites = [(os.path.basename(call.call_file), call.call_line) for call in shown]
        if ours != gdb_names or our_sites != gdb_sites or table.function_at(address) != part[-1][1]:
            mismatches.append((hex(address), frames, chain, table.function_at(address)))
        compared += 1
        deep += len(chain) >= 2
    assert not mismatches, mismatches
    assert compared >= 8 and deep >= 2, (compared, deep)


def test_fields_and_absolute_call_files(sources: Path) -> None:
    program = _build(sources, "-gdwarf-5", pie=False)
    lo, hi = _code_range(program)
    table = InlineTable(str(program))
    chains = [table.inlined_at(a) for a in _row_addresses(program, lo, hi)]
    two = next(chain for chain in chains if len(chain) == 2)
    leaf, middle = two
    assert isinstance(leaf, InlinedCall)
    assert (leaf.name, middle.name) == ("leaf", "middle")
    assert leaf.call_file == str(sources / "inl.h")
    assert middle.call_file == str(sources / "prog.c")
    assert middle.call_line == PROG_C.splitlines().index("        t += middle(i);") + 1
    assert leaf.call_line in (12, 14)
    assert middle.low <= leaf.low
    atoi = next(chain for chain in chains if chain and chain[0].name == "atoi")
    assert atoi[0].call_file == str(sources / "prog.c") and len(atoi) == 1
    assert table.inlined_at(0) == [] and table.function_at(0) is None
    assert table.inlined_at(hi + 0x100000) == []


# ----------------------------------------------------------------- libc


def _libc_debug_file() -> str | None:
    libc = "/lib/x86_64-linux-gnu/libc.so.6"
    if not os.path.exists(libc) or shutil.which("readelf") is None:
        return None
    match = re.search(r"Build ID: ([0-9a-f]+)", _run("readelf", "-n", libc))
    if not match:
        return None
    build_id = match.group(1)
    debug = f"/usr/lib/debug/.build-id/{build_id[:2]}/{build_id[2:]}.debug"
    return debug if os.path.exists(debug) else None


def test_libc_msort_with_tmp_is_inlined() -> None:
    debug = _libc_debug_file()
    if debug is None:
        pytest.skip("libc's separate debug file is not installed")
    sizes = {}
    for line in _run("nm", "-S", "--defined-only", debug).splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT":
            sizes.setdefault(parts[3], (int(parts[0], 16), int(parts[1], 16)))
    start, size = sizes["msort_with_tmp.part.0"]
    started = time.perf_counter()
    table = InlineTable(debug)
    first = table.inlined_at(start + size // 2)
    elapsed = time.perf_counter() - started
    print(f"\nlibc debug file: open + first inlined_at took {elapsed * 1000:.0f} ms -> {first}")
    assert table.function_at(start) == "msort_with_tmp"
    inside = [
        a for a in range(start, start + size) if any(c.name == "msort_with_tmp" for c in table.inlined_at(a))
    ]
    assert inside, "msort_with_tmp.part.0 must contain an inlined msort_with_tmp"
    call = next(c for c in table.inlined_at(inside[0]) if c.name == "msort_with_tmp")
    assert call.call_file.endswith("msort.c") and call.call_line > 0
    qsort_start, qsort_size = sizes["__qsort_r"]
    in_qsort = {c.name for a in range(qsort_start, qsort_start + qsort_size) for c in table.inlined_at(a)}
    assert "msort_with_tmp" in in_qsort, in_qsort
    assert table.function_at(qsort_start) == "__qsort_r"


def test_libc_sample_matches_addr2line() -> None:
    debug = _libc_debug_file()
    if debug is None:
        pytest.skip("libc's separate debug file is not installed")
    starts = sorted(_functions(Path(debug)).values())
    addresses = [a + 0x47 for a in starts[::17]]
    table = InlineTable(debug)
    started = time.perf_counter()
    inlined = _compare_with_addr2line(table, Path(debug), addresses)
    elapsed = time.perf_counter() - started
    print(f"\nlibc debug file: {len(addresses)} addresses ({inlined} inside inlined calls) compared "
          f"with addr2line -i in {elapsed * 1000:.0f} ms (addr2line's time included)")  # fmt: skip
    assert inlined > 10


# ----------------------------------------------------------------- corrupt input


def _with_section(program: Path, section: str, data: bytes, out: Path) -> Path:
    blob = out.with_suffix(".bin")
    blob.write_bytes(data)
    subprocess.run(["objcopy", f"--update-section={section}={blob}", str(program), str(out)], check=True,
                   capture_output=True)  # fmt: skip
    return out


def _section_bytes(program: Path, section: str, tmp_path: Path) -> bytes:
    dump = tmp_path / (section.strip(".") + ".dump")
    subprocess.run(["objcopy", f"--dump-section={section}={dump}", str(program)], check=True,
                   capture_output=True)  # fmt: skip
    return dump.read_bytes()


def _exercise(path: Path, probes: list[int]) -> list[BaseException]:
    """Ask everything; return the errors (which must all be LineError)."""
    table = InlineTable(str(path))
    errors: list[BaseException] = []
    for probe in probes:
        for call in (table.inlined_at, table.function_at):
            try:
                call(probe)
            except LineError as exc:
                assert isinstance(exc, LindbgError)
                assert str(path) in str(exc)
                errors.append(exc)
    return errors


def _probes(program: Path) -> list[int]:
    lo, hi = _code_range(program)
    return _row_addresses(program, lo, hi)[::3]


@pytest.mark.skipif(shutil.which("objcopy") is None, reason="needs objcopy")
@pytest.mark.parametrize(
    ("dwarf", "section"),
    [("-gdwarf-5", ".debug_info"), ("-gdwarf-5", ".debug_abbrev"), ("-gdwarf-5", ".debug_rnglists"),
     ("-gdwarf-4", ".debug_info"), ("-gdwarf-4", ".debug_ranges")],
)  # fmt: skip
def test_truncated_section_raises_line_error(sources: Path, tmp_path: Path, dwarf: str, section: str) -> None:
    program = _build(sources, dwarf, pie=False)
    data = _section_bytes(program, section, tmp_path)
    probes = _probes(program)
    half = _with_section(program, section, data[: len(data) // 2], tmp_path / "half")
    assert _exercise(half, probes), "a section cut in half must be noticed"
    for cut in range(1, len(data), max(1, len(data) // 40)):
        _exercise(_with_section(program, section, data[:cut], tmp_path / f"cut{cut}"), probes)


@pytest.mark.skipif(shutil.which("objcopy") is None, reason="needs objcopy")
@pytest.mark.parametrize("section", [".debug_info", ".debug_abbrev", ".debug_rnglists", ".debug_str"])
def test_scrambled_section_raises_only_line_error(sources: Path, tmp_path: Path, section: str) -> None:
    program = _build(sources, "-gdwarf-5", pie=True)
    data = _section_bytes(program, section, tmp_path)
    probes = _probes(program)
    rng = random.Random(4321)
    for attempt in range(25):
        scrambled = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            scrambled[rng.randrange(len(scrambled))] = rng.randrange(256)
        _exercise(_with_section(program, section, bytes(scrambled), tmp_path / f"s{attempt}"), probes)


def test_missing_or_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(LineError, match="nosuch"):
        InlineTable(str(tmp_path / "nosuch")).inlined_at(0x1000)
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x7fELF" + b"\x00" * 40)
    with pytest.raises(LineError, match="junk"):
        InlineTable(str(junk)).function_at(0x1000)


def test_no_debug_info_is_empty(sources: Path, tmp_path: Path) -> None:
    stripped = tmp_path / "stripped"
    subprocess.run(["gcc", "-O2", "-o", str(stripped), str(sources / "prog.c"), f"-I{sources}"], check=True)
    table = InlineTable(str(stripped))
    main = _functions(stripped)["main"]
    assert table.inlined_at(main) == []
    assert table.function_at(main) is None


def test_construction_is_lazy(tmp_path: Path) -> None:
    InlineTable(str(tmp_path / "does-not-exist-yet"))  # no error until asked


QSORT_C = r"""#include <stdlib.h>
static int cmp(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}
int main(void)
{
    int v[64];
    for (int i = 0; i < 64; i++)
        v[i] = (i * 37) % 64;
    qsort(v, 64, sizeof v[0], cmp);
    return v[0];
}
"""


@pytest.mark.skipif(shutil.which("gdb") is None, reason="needs gdb")
def test_libc_qsort_backtrace_matches_gdb(tmp_path: Path) -> None:
    """gdb's bt in a qsort comparator: each libc frame with a pc, and the frames gdb
    prints after it without one, are that pc's inlined chain and its function."""
    debug = _libc_debug_file()
    if debug is None:
        pytest.skip("libc's separate debug file is not installed")
    (tmp_path / "q.c").write_text(QSORT_C)
    subprocess.run(["gcc", "-O0", "-g", "-o", "q", "q.c"], cwd=tmp_path, check=True)
    out = subprocess.run(["gdb", "-nx", "-batch", "-q", "-ex", "break cmp", "-ex", "run", "-ex", "bt",
                          "-ex", "info proc mappings", str(tmp_path / "q")],
                         capture_output=True, text=True, timeout=120).stdout  # fmt: skip
    frames = [m for m in map(_FRAME.match, out.splitlines()) if m]
    bases = re.findall(r"^\s*(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+0x0\s.*/libc\.so\.6$", out, re.M)
    if not frames or not bases:
        pytest.skip("gdb could not run the program here")
    bias = int(bases[0], 16)  # libc.so.6 is linked at 0
    table = InlineTable(debug)
    compared = 0
    inlined_names: set[str] = set()
    for index, match in enumerate(frames):
        if match.group(2) is None or not match.group(4).endswith("msort.c"):
            continue
        group = [match]
        for following in frames[index + 1 :]:
            if following.group(2) is not None:
                break
            group.append(following)
        address = int(match.group(2), 16) - 1 - bias  # a return address: look up the call
        chain = table.inlined_at(address)
        assert [c.name for c in chain] == [m.group(3) for m in group[:-1]], (hex(address), chain, out)
        assert [(os.path.basename(c.call_file), c.call_line) for c in chain] == [
            (os.path.basename(m.group(4)), int(m.group(5))) for m in group[1:]
        ]
        assert table.function_at(address) == group[-1].group(3).removeprefix("__GI_")
        inlined_names.update(c.name for c in chain)
        compared += 1
    assert compared >= 3 and "msort_with_tmp" in inlined_names, out
