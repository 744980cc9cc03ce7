"""ELF images, symbol tables, debug-file search and module names, checked against the
binutils that built them (as pyelftools checks itself against readelf): every function
``nm`` lists is found by name at ``nm``'s address and by address with its offset; the
build-id is ``readelf -n``'s; libc's separate debug file (libc6-dbg) is found and names
libc's static functions; broken files raise ``SymbolError`` and nothing else.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lindbg.symbols.debugfile import find_debug_file
from lindbg.symbols.elffile import ElfImage, SymbolError
from lindbg.symbols.naming import module_name
from lindbg.symbols.symtab import Symbol, SymbolTable

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"

SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>

int counter = 3;
static int hidden_total;
const char banner[] = "fixture";

static int __attribute__((noinline)) helper_static(int x) { hidden_total += x; return x * 3 + 1; }
int __attribute__((noinline)) public_fn(int x) { return helper_static(x) + counter; }
__attribute__((weak)) int weak_fn(int x) { return x - 1; }
int __attribute__((noinline)) Mixed_Case_Fn(int a, int b) { return a * b + public_fn(a); }
void *__attribute__((noinline)) my_alloc(size_t n) { return malloc(n); }
void *__attribute__((noinline)) my_calloc(size_t n) { return calloc(n, 1); }

int main(int argc, char **argv) {
    (void)argv;
    void *p = my_alloc(16);
    void *q = my_calloc(16);
    printf("%s %d\n", banner, Mixed_Case_Fn(argc, weak_fn(argc)));
    free(p);
    free(q);
    return hidden_total & 1;
}
"""

LIBRARY_SOURCE = r"""
static int lib_static(int x) { return x * 7; }
int lib_exported(int x) { return lib_static(x) + 1; }
int lib_data[4] = {1, 2, 3, 4};
"""

#: Build variants: name -> gcc flags (the output file is named after the variant).
VARIANTS = {
    "pie": ["-O0", "-g", "-fPIE", "-pie"],
    "nopie": ["-O0", "-no-pie"],
    "o2": ["-O2", "-fomit-frame-pointer", "-pie"],
    "static": ["-O1", "-static"],
}


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fixture program in every variant, a shared library, and a debuglinked pair."""
    if shutil.which("gcc") is None or shutil.which("nm") is None:
        pytest.skip("gcc and binutils are needed to build the fixtures")
    directory = tmp_path_factory.mktemp("symbols")
    source = directory / "fixture.c"
    source.write_text(SOURCE)
    out: dict[str, Path] = {}
    for name, flags in VARIANTS.items():
        target = directory / name
        _run("gcc", *flags, "-o", str(target), str(source))
        out[name] = target
    library_source = directory / "lib.c"
    library_source.write_text(LIBRARY_SOURCE)
    out["shared"] = directory / "libfixture.so.1"
    _run("gcc", "-O1", "-shared", "-fPIC", "-o", str(out["shared"]), str(library_source))
    # A program whose debug information lives apart, found through .gnu_debuglink only.
    linked = directory / "linked" / "app"
    linked.parent.mkdir()
    _run("gcc", "-O0", "-g", "-Wl,--build-id=none", "-o", str(linked), str(source))
    debug = linked.parent / "app.debug"
    _run("objcopy", "--only-keep-debug", str(linked), str(debug))
    _run("objcopy", "--strip-debug", str(linked))
    _run("objcopy", f"--add-gnu-debuglink={debug}", str(linked))
    out["linked"], out["linked_debug"] = linked, debug
    # zlib-compressed DWARF (SHF_COMPRESSED), and the same file decompressed by objcopy.
    compressed = directory / "compressed"
    _run("gcc", "-O0", "-g", "-gz=zlib", "-o", str(compressed), str(source))
    plain = directory / "decompressed"
    _run("objcopy", "--decompress-debug-sections", str(compressed), str(plain))
    out["compressed"], out["decompressed"] = compressed, plain
    return out


def nm_symbols(path: Path | str, *options: str) -> list[tuple[int, int | None, str, str]]:
    """(address, size or None, type letter, name) for each defined symbol ``nm`` lists."""
    rows: list[tuple[int, int | None, str, str]] = []
    for line in _run("nm", "-S", "--defined-only", *options, str(path)).splitlines():
        parts = line.split()
        if len(parts) == 4:
            rows.append((int(parts[0], 16), int(parts[1], 16), parts[2], parts[3]))
        elif len(parts) == 3:
            rows.append((int(parts[0], 16), None, parts[1], parts[2]))
    return rows


def readelf_build_id(path: Path | str) -> str:
    match = re.search(r"Build ID: ([0-9a-f]+)", _run("readelf", "-n", str(path)))
    assert match is not None
    return match.group(1)


# ------------------------------------------------------------------ against nm


@pytest.mark.parametrize("variant", [*VARIANTS, "shared"])
def test_every_nm_function_is_found_by_name_and_address(built: dict[str, Path], variant: str) -> None:
    path = built[variant]
    table = ElfImage(str(path)).symbols
    functions = [row for row in nm_symbols(path) if row[2] in "TtWi"]
    assert functions
    for address, _size, _letter, name in functions:
        assert address in {s.address for s in table.lookup(name)}, name
    sized = [(a, s or 0) for a, s, letter, _ in functions]
    for address, size, _letter, name in functions:
        if not size or size <= 3:
            continue
        # The innermost nm function containing address+3 (static glibc nests entry points).
        expected = max(a for a, s in sized if a <= address + 3 < a + s)
        found = table.at(address + 3)
        assert found is not None, name
        symbol, offset = found
        assert (symbol.address, offset) == (expected, address + 3 - expected), name
        assert symbol.kind == "function"


def test_fixture_symbols_and_kinds(built: dict[str, Path]) -> None:
    table = ElfImage(str(built["pie"])).symbols
    nm = {name: address for address, _, _, name in nm_symbols(built["pie"])}
    for name, kind in [("helper_static", "function"), ("weak_fn", "function"), ("counter", "object")]:
        (symbol,) = table.lookup(name)
        assert (symbol.address, symbol.kind) == (nm[name], kind)
    found = table.at(nm["counter"] + 2)
    assert found is not None and found[0].name == "counter" and found[1] == 2
    assert table.lookup("no_such_symbol") == []


def test_shared_library_dynsym_and_statics(built: dict[str, Path]) -> None:
    image = ElfImage(str(built["shared"]))
    assert image.elf_type == "DYN"
    names = {s.name for s in image.symbols}
    assert {"lib_exported", "lib_data"} <= names
    dynamic = {name: address for address, _, letter, name in nm_symbols(built["shared"], "-D")}
    assert image.symbols.lookup("lib_exported")[0].address == dynamic["lib_exported"]


def test_headers_match_readelf(built: dict[str, Path]) -> None:
    for variant, elf_type, first in [("pie", "DYN", 0), ("nopie", "EXEC", 0x400000), ("shared", "DYN", 0)]:
        path = built[variant]
        image = ElfImage(str(path))
        assert image.elf_type == elf_type
        assert image.first_load_vaddr == first
        program = _run("readelf", "-lW", str(path))
        loads = [line.split() for line in program.splitlines() if line.strip().startswith("LOAD")]
        assert image.load_segments == [
            (int(f[2], 16), int(f[5], 16), int(f[1], 16), int(f[4], 16)) for f in loads
        ]
        sections = _run("readelf", "-SW", str(path))
        text = re.search(r"\] \.text\s+PROGBITS\s+([0-9a-f]+) ([0-9a-f]+) ([0-9a-f]+)", sections)
        assert text is not None
        assert image.section_address(".text") == int(text.group(1), 16)
        data = image.section_data(".text")
        raw = path.read_bytes()
        offset, size = int(text.group(2), 16), int(text.group(3), 16)
        assert data == raw[offset : offset + size]
        assert image.build_id is not None and image.build_id.hex() == readelf_build_id(path)
        assert image.has_section(".text") and not image.has_section(".no_such_section")
        assert image.section_data(".no_such_section") is None and image.section_address(".nope") is None
    assert ElfImage(str(built["pie"])).has_dwarf and not ElfImage(str(built["nopie"])).has_dwarf


def test_compressed_debug_sections_decompress_as_objcopy_does(built: dict[str, Path]) -> None:
    compressed = ElfImage(str(built["compressed"]))
    plain = ElfImage(str(built["decompressed"]))
    assert "C" in _run("readelf", "-SW", str(built["compressed"])).split(".debug_info")[1].split("\n")[0]
    for name in (".debug_info", ".debug_abbrev", ".debug_line"):
        data = compressed.section_data(name)
        assert data is not None and data == plain.section_data(name)
    assert compressed.has_dwarf


# ------------------------------------------------------------------ libc and its debug file


def test_libc_build_id_and_dynsym() -> None:
    image = ElfImage(LIBC)
    assert image.build_id is not None and image.build_id.hex() == readelf_build_id(LIBC)
    assert image.elf_type == "DYN" and image.first_load_vaddr == 0
    dynamic = nm_symbols(LIBC, "-D")
    for address, _, letter, name in dynamic:
        if letter in "TWi":
            assert address in {s.address for s in image.symbols.lookup(name.split("@")[0])}, name
    # nm -D shows versions; lookup takes the versioned and the bare name alike.
    malloc = [s for s in image.symbols.lookup("malloc") if s.kind == "function"]
    assert malloc and malloc[0].address == next(a for a, _, _, n in dynamic if n.split("@")[0] == "malloc")


def test_libc_debug_file_by_build_id() -> None:
    image = ElfImage(LIBC)
    assert image.build_id is not None
    hex_id = image.build_id.hex()
    expected = f"/usr/lib/debug/.build-id/{hex_id[:2]}/{hex_id[2:]}.debug"
    if not os.path.exists(expected):
        pytest.skip("libc6-dbg is not installed")
    path = find_debug_file(image)
    assert path == expected
    debug = ElfImage(path)
    assert debug.build_id == image.build_id and debug.has_dwarf
    assert debug.section_data(".eh_frame") is None  # NOBITS in a debug file
    # msort_with_tmp is static in libc: only the debug file's .symtab names it (GCC
    # split it, so nm calls it msort_with_tmp.part.0).
    nm = [(a, n) for a, _, letter, n in nm_symbols(path) if n.startswith("msort_with_tmp") and letter in "tT"]
    assert nm
    found = debug.symbols.match("msort_with_tmp*")
    assert sorted((s.address, s.name) for s in found) == sorted(nm)
    for address, name in nm:
        assert [s.address for s in debug.symbols.lookup(name)] == [address]
        hit = debug.symbols.at(address + 5)
        assert hit is not None and hit[0].name == name and hit[1] == 5
    # Aliases at one address: the unversioned, fewest-underscores name names it.
    (memcpy,) = [s for s in debug.symbols.lookup("memcpy") if s.name == "memcpy"]
    hit = debug.symbols.at(memcpy.address)
    assert hit is not None and hit[0].name == "memcpy"


def test_debug_file_by_debuglink(built: dict[str, Path], tmp_path: Path) -> None:
    linked = ElfImage(str(built["linked"]))
    assert linked.build_id is None and not linked.has_dwarf
    assert linked.debuglink is not None and linked.debuglink[0] == "app.debug"
    assert find_debug_file(linked) == str(built["linked_debug"])
    debug = ElfImage(str(built["linked_debug"]))
    assert debug.has_dwarf and debug.symbols.lookup("helper_static")
    # In .debug/ beside the file, and in an extra path; a changed file (bad CRC) is refused.
    elsewhere = tmp_path / "bin"
    (elsewhere / ".debug").mkdir(parents=True)
    shutil.copy(built["linked"], elsewhere / "app")
    shutil.copy(built["linked_debug"], elsewhere / ".debug" / "app.debug")
    assert find_debug_file(ElfImage(str(elsewhere / "app"))) == str(elsewhere / ".debug" / "app.debug")
    (elsewhere / ".debug" / "app.debug").unlink()
    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(built["linked_debug"], extra / "app.debug")
    image = ElfImage(str(elsewhere / "app"))
    assert find_debug_file(image) is None
    assert find_debug_file(image, [str(extra)]) == str(extra / "app.debug")
    with open(extra / "app.debug", "ab") as stream:
        stream.write(b"\0")
    assert find_debug_file(image, [str(extra)]) is None


def test_debug_file_by_build_id_in_extra_root(built: dict[str, Path], tmp_path: Path) -> None:
    image = ElfImage(str(built["pie"]))
    assert image.build_id is not None and find_debug_file(image) is None
    hex_id = image.build_id.hex()
    target = tmp_path / ".build-id" / hex_id[:2] / f"{hex_id[2:]}.debug"
    target.parent.mkdir(parents=True)
    _run("objcopy", "--only-keep-debug", str(built["pie"]), str(target))
    assert find_debug_file(image, [str(tmp_path)]) == str(target)
    # Another program's debug file under this build-id is refused.
    _run("objcopy", "--only-keep-debug", str(built["o2"]), str(target))
    assert find_debug_file(image, [str(tmp_path)]) is None


# ------------------------------------------------------------------ the table itself


def _table() -> SymbolTable:
    return SymbolTable(
        [
            Symbol("__memcpy", 0x1000, 0x40, "function"),
            Symbol("memcpy@@GLIBC_2.14", 0x1000, 0x40, "function"),
            Symbol("memcpy", 0x1000, 0x40, "function"),
            Symbol("memcpy@GLIBC_2.2.5", 0x2000, 0x10, "function"),
            Symbol("inner_entry", 0x1020, 0x10, "function"),
            Symbol("label_after", 0x1080, 0, "other"),
            Symbol("table", 0x3000, 0x100, "object"),
            Symbol("table_entry_fn", 0x3010, 0x8, "function"),
            Symbol("malloc", 0x4000, 0x20, "function"),
            Symbol("_int_malloc", 0x4100, 0x20, "function"),
            Symbol("calloc", 0x4200, 0x20, "function"),
            Symbol("_start", 0x5000, 0x10, "function"),
            Symbol("__libc_start_main", 0x5100, 0x10, "function"),
            Symbol("restart", 0x5200, 0x10, "function"),
            Symbol("MALLOC_STATS", 0x5300, 0x10, "object"),
        ]
    )


def test_at_prefers_containing_function_innermost_and_preferred_alias() -> None:
    table = _table()
    assert len(table) == 15
    assert table.at(0x1003) == (Symbol("memcpy", 0x1000, 0x40, "function"), 3)
    assert table.at(0x1025) == (Symbol("inner_entry", 0x1020, 0x10, "function"), 5)
    assert table.at(0x1030) is not None and table.at(0x1030)[0].name == "memcpy"  # type: ignore[index]
    assert table.at(0x1050) is None  # padding after memcpy, before a label
    assert table.at(0x1090) == (Symbol("label_after", 0x1080, 0, "other"), 0x10)  # zero-sized label
    assert table.at(0x3012) == (Symbol("table_entry_fn", 0x3010, 8, "function"), 2)
    assert table.at(0x3020) == (Symbol("table", 0x3000, 0x100, "object"), 0x20)
    assert table.at(0xFFF) is None and table.at(0x9000) is None
    assert table.next_after(0x1000) == Symbol("inner_entry", 0x1020, 0x10, "function")
    assert table.next_after(0x5300) is None
    assert table.next_after(0) is not None and table.next_after(0).name == "memcpy"  # type: ignore[union-attr]


def test_merged_tables_keep_one_entry_per_name_and_address() -> None:
    first = SymbolTable([Symbol("a", 0x10, 4, "function"), Symbol("b", 0x20, 4, "function")])
    second = SymbolTable([Symbol("b", 0x20, 8, "object"), Symbol("c", 0x30, 4, "function")])
    merged = SymbolTable.merged(first, second)
    assert list(merged) == [*first, Symbol("c", 0x30, 4, "function")]
    assert SymbolTable.merged(first) is first


def test_lookup_exact_and_unversioned() -> None:
    table = _table()
    assert [s.name for s in table.lookup("memcpy")] == ["memcpy", "memcpy@@GLIBC_2.14", "memcpy@GLIBC_2.2.5"]
    assert [s.address for s in table.lookup("memcpy@GLIBC_2.2.5")] == [0x2000]
    assert table.lookup("MEMCPY") == [] and table.lookup("memcp") == []


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("mal*", ["malloc", "MALLOC_STATS"]),
        ("*alloc", ["malloc", "_int_malloc", "calloc"]),
        ("MALLOC", ["malloc"]),
        ("?alloc", ["malloc", "calloc"]),
        ("_start", ["_start"]),
        ("_*start*", ["_start", "__libc_start_main", "restart"]),
        ("_libc_start_main", ["__libc_start_main"]),
        ("_memcpy", ["memcpy", "memcpy@@GLIBC_2.14", "__memcpy", "memcpy@GLIBC_2.2.5"]),
        ("memcpy@GLIBC*", ["memcpy@GLIBC_2.2.5"]),
        ("table?entry*", ["table_entry_fn"]),
        ("nothing*", []),
    ],
)
def test_match_cdb_wildcards(pattern: str, expected: list[str]) -> None:
    table = _table()
    found = table.match(pattern)
    assert sorted(s.name for s in found) == sorted(expected)
    assert [s.address for s in found] == sorted(s.address for s in found)


def test_match_on_a_real_table(built: dict[str, Path]) -> None:
    table = ElfImage(str(built["pie"])).symbols
    assert [s.name for s in table.match("mixed_case*")] == ["Mixed_Case_Fn"]
    assert {"my_alloc", "my_calloc"} <= {s.name for s in table.match("*alloc")}
    assert {s.name for s in table.match("_start")} >= {"_start"}


# ------------------------------------------------------------------ module names


@pytest.mark.parametrize(
    ("path", "taken", "expected"),
    [
        ("/lib/x86_64-linux-gnu/libc.so.6", (), "libc"),
        ("/lib64/ld-linux-x86-64.so.2", (), "ld_linux_x86_64"),
        ("/usr/lib/x86_64-linux-gnu/libstdc++.so.6", (), "libstdc__"),
        ("[vdso]", (), "linux_vdso"),
        ("linux-vdso.so.1", (), "linux_vdso"),
        ("/home/u/app", (), "app"),
        ("/opt/x/libc.so.6", ("libc",), "libc_2"),
        ("/opt/y/libc.so.6", ("libc", "libc_2"), "libc_3"),
        ("/opt/Libc.so", ("libc",), "Libc_2"),
        ("/tmp/.hidden", (), "hidden"),
        ("/tmp/my app-1.0", (), "my_app_1"),
    ],
)
def test_module_name(path: str, taken: tuple[str, ...], expected: str) -> None:
    assert module_name(path, taken) == expected


# ------------------------------------------------------------------ broken files


def _exercise(path: str) -> None:
    """Everything a debugger asks of an image; only SymbolError may come out."""
    image = ElfImage(path)
    _ = (image.elf_type, image.first_load_vaddr, image.load_segments, image.build_id, image.debuglink)
    for name in image.section_names:
        image.section_data(name)
        image.section_address(name)
    _ = image.has_dwarf
    table = image.symbols
    for symbol in list(table)[:50]:
        table.at(symbol.address + 1)
        table.lookup(symbol.name)
        table.next_after(symbol.address)
    table.match("*main*")


def test_truncated_files_raise_symbol_error(built: dict[str, Path], tmp_path: Path) -> None:
    data = built["pie"].read_bytes()
    for cut in (1, 3, 4, 16, 63, 64, 65, 200, len(data) // 2, len(data) - 100, len(data) - 1):
        broken = tmp_path / f"cut_{cut}"
        broken.write_bytes(data[:cut])
        with pytest.raises(SymbolError, match=re.escape(str(broken))):
            _exercise(str(broken))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not an ELF file"),
        (b"#!/bin/sh\necho hello\n", "not an ELF file"),
        (b"\x7fEL", "not an ELF file"),
    ],
)
def test_non_elf_files_raise_symbol_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "file.txt"
    path.write_bytes(content)
    with pytest.raises(SymbolError, match=message) as error:
        ElfImage(str(path))
    assert str(path) in str(error.value)


def test_wrong_class_machine_and_missing_file(built: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(built["pie"].read_bytes())
    for offset, value, message in [(4, 1, "64-bit"), (5, 2, "little-endian"), (18, 3, "not an x86-64")]:
        patched = bytearray(data)
        patched[offset] = value
        path = tmp_path / f"patched_{offset}"
        path.write_bytes(bytes(patched))
        with pytest.raises(SymbolError, match=message):
            ElfImage(str(path))
    with pytest.raises(SymbolError, match="no_such_file"):
        ElfImage(str(tmp_path / "no_such_file"))


def test_file_changed_after_open_is_refused(built: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "changing"
    shutil.copy(built["nopie"], path)
    image = ElfImage(str(path))
    with open(path, "ab") as stream:
        stream.write(b"\0" * 16)
    with pytest.raises(SymbolError, match="changed on disk"):
        _ = image.symbols


@pytest.fixture(scope="module")
def small_elf(built: dict[str, Path]) -> bytes:
    return built["shared"].read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.one_of(st.just(0), st.integers(min_value=0, max_value=1 << 14)),
    flips=st.lists(
        st.tuples(
            # The headers at the front, the section header table at the back, anywhere.
            st.one_of(st.integers(0, 255), st.integers(-2500, -1), st.integers(min_value=0)),
            st.integers(min_value=0, max_value=7),
        ),
        max_size=8,
    ),
)
def test_random_damage_gives_symbol_error_or_success(
    small_elf: bytes, cut: int, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(small_elf[: max(0, len(small_elf) - cut)])
    for position, bit in flips:
        if data:
            data[position % len(data)] ^= 1 << bit
    with tempfile.NamedTemporaryFile(suffix=".so") as stream:
        stream.write(bytes(data))
        stream.flush()
        try:
            _exercise(stream.name)
        except SymbolError as error:
            assert stream.name in str(error)
