"""lindbg.symbols.types: DWARF type DIEs as Types, checked against gdb reading the same files.

tests/fixtures/types.c and types.cpp declare one global of every kind of type. Each is
built several ways (C: DWARF 5, DWARF 4, -O2; C++: the same three) and, without
running anything, gdb 13 is asked ``whatis`` and ``ptype`` of every global in one
batch per build; ``Type.c_name`` and ``TypeReader.ptype`` must print the same text.
Unit tests then pin what gdb does not show: member offsets and bitfield positions
(identical from DWARF 4 and 5), lookup through base classes and anonymous members,
``find_type``'s names and how many units it reads, synthesized types.

The helpers here (``StaticProgram``: an executable read statically, its globals, its
memory from the file, gdb's view of it) are shared with tests/test_symbols_values.py.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from conftest import CFLAGS, FIXTURE_SOURCES, Programs
from elftools.dwarf.die import DIE
from elftools.elf.elffile import ELFFile

from lindbg.errors import MemoryAccessError
from lindbg.symbols.elffile import ElfImage
from lindbg.symbols.types import Encoding, Type, TypeKind, TypeReader, TypeReadError
from lindbg.symbols.values import Value

# ------------------------------------------------------------------ static programs

#: Globals whose gdb text lindbg deliberately does not reproduce (docs/values.md):
#: gdb reads ``decltype(nullptr)`` as int.
TYPE_DIFFERENCES = {"g_nullptr"}

#: How each build is made: compiler, source, extra flags (added to conftest's CFLAGS).
BUILDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "c-dwarf5": ("gcc", "types.c", ()),
    "c-dwarf4": ("gcc", "types.c", ("-gdwarf-4",)),
    "c-O2": ("gcc", "types.c", ("-O2",)),
    "cpp-dwarf5": ("g++", "types.cpp", ()),
    "cpp-dwarf4": ("g++", "types.cpp", ("-gdwarf-4",)),
    "cpp-O2": ("g++", "types.cpp", ("-O2",)),
}

#: A second unit for types.c: defines the struct types.c only declares, and a type
#: only it has (for find_type's index tests).
OPAQUE_DEFINITION = """\
struct opaque {
    int hidden;
    const char *label;
};
struct opaque g_opaque_def = {77, "defined elsewhere"};
struct only_second {
    long wide;
};
struct only_second g_only_second = {5};
"""


@dataclass
class GdbView:
    """What gdb prints for one global: ``print``, ``whatis``, ``ptype`` and
    ``print/x`` (after "= ")."""

    print: str
    whatis: str
    ptype: str
    print_hex: str


@dataclass
class StaticProgram:
    """An executable read as a debugger reads it before it runs: DWARF through
    pyelftools, memory from the file's PT_LOAD segments (.bss as zeros), symbols
    from nm, and gdb's view of its globals."""

    path: str
    debug_names: bool = False

    @cached_property
    def dwarf(self) -> Any:
        # From memory: the files are small, and no descriptor outlives the test session.
        return ELFFile(io.BytesIO(Path(self.path).read_bytes())).get_dwarf_info()

    @cached_property
    def reader(self) -> TypeReader:
        return self.new_reader()

    def new_reader(self) -> TypeReader:
        """A reader with nothing read yet (to count what one lookup costs)."""
        names = ElfImage(self.path).section_data(".debug_names") if self.debug_names else None
        return TypeReader(self.dwarf, names)

    @cached_property
    def _image(self) -> tuple[bytes, list[tuple[int, int, int, int]]]:
        return Path(self.path).read_bytes(), ElfImage(self.path).load_segments

    def read(self, address: int, size: int) -> bytes:
        """Memory at link-time ``address`` as the file initializes it."""
        data, segments = self._image
        for vaddr, memsz, offset, filesz in segments:
            if vaddr <= address and address + size <= vaddr + memsz:
                start = address - vaddr
                stored = data[offset + start : offset + min(start + size, filesz)] if start < filesz else b""
                return stored.ljust(size, b"\0")
        raise MemoryAccessError(f"Cannot access memory at address {address:#x}", address)

    @cached_property
    def _symbols(self) -> list[tuple[int, int, str]]:
        listing = subprocess.run(
            ["nm", "-S", "-C", "--defined-only", self.path], capture_output=True, text=True, check=True
        ).stdout
        symbols = []
        for line in listing.splitlines():
            parts = line.split(maxsplit=3)
            if len(parts) == 4 and parts[2] in "tTdDbBrRvVwW":
                symbols.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
        return sorted(symbols)

    def symbolize(self, address: int) -> str | None:
        """gdb's ``<name+off>``: the nearest symbol at or below, unless its size ends before."""
        best = None
        for start, size, name in self._symbols:
            if start > address:
                break
            if best is None or start > best[0]:
                best = (start, size, name)
        if best is None or (best[1] and address >= best[0] + best[1]):
            return None
        start, _size, name = best
        return name if address == start else f"{name}+{address - start}"

    @cached_property
    def variables(self) -> dict[str, tuple[DIE, int]]:
        """Every global with a fixed address: gdb's name for it -> (DIE, address)."""
        found: dict[str, tuple[DIE, int]] = {}
        for cu in self.dwarf.iter_CUs():
            found.update(_globals_in(cu.get_top_DIE(), ""))
        return dict(sorted(found.items()))

    def value(self, name: str) -> Value:
        die, address = self.variables[name]
        return Value.from_memory(self.reader.type_of(die), address, self.read, name, symbolize=self.symbolize)

    def type(self, name: str) -> Type:
        return self.reader.type_of(self.variables[name][0])

    @cached_property
    def gdb(self) -> dict[str, GdbView]:
        """gdb's print/whatis/ptype of every global, from one ``gdb -batch`` run."""
        if shutil.which("gdb") is None:
            pytest.skip("gdb is needed to compare with")
        arguments = ["gdb", "-batch", "-nx"]
        for name in self.variables:
            for command in (
                f"echo @@{name}\\n",
                f"print {name}",
                f"whatis {name}",
                f"ptype {name}",
                f"print/x {name}",
            ):
                arguments += ["-ex", command]
        # LC_ALL=C: gdb then escapes every non-ASCII byte, as lindbg always does.
        run = subprocess.run(
            [*arguments, self.path],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ, LC_ALL="C"),
        )
        views: dict[str, GdbView] = {}
        for block in re.split(r"^@@", run.stdout, flags=re.M)[1:]:
            name, _, body = block.partition("\n")
            match = re.fullmatch(r"\$\d+ = (.*?)\ntype = (.*?)\ntype = (.*?)\n\$\d+ = (.*?)\n?", body, re.S)
            assert match, f"unexpected gdb output for {name}:\n{body}"
            views[name] = GdbView(*match.groups())
        return views


_CLASS_TAGS = ("DW_TAG_structure_type", "DW_TAG_class_type", "DW_TAG_union_type")


def _globals_in(parent: DIE, scope: str) -> Iterator[tuple[str, tuple[DIE, int]]]:
    for die in parent.iter_children():
        if die.tag == "DW_TAG_namespace":
            name = die.attributes.get("DW_AT_name")
            yield from _globals_in(die, scope if name is None else f"{scope}{name.value.decode()}::")
            continue
        location = die.attributes.get("DW_AT_location")
        if die.tag != "DW_TAG_variable" or location is None or not isinstance(location.value, list):
            continue
        if location.value[:1] != [0x03] or len(location.value) != 9:  # DW_OP_addr
            continue
        address = int.from_bytes(bytes(location.value[1:]), "little")
        if "DW_AT_specification" in die.attributes:  # defines a static member or a namespace's extern
            declaration = die.get_DIE_from_attribute("DW_AT_specification")
            yield _scope_of(declaration) + _name_of(declaration), (die, address)
        elif "DW_AT_name" in die.attributes:
            yield scope + _name_of(die), (die, address)


def _name_of(die: DIE) -> str:
    return str(die.attributes["DW_AT_name"].value.decode())


def _scope_of(die: DIE) -> str:
    """ "ns::Class::" for a DIE declared in namespace ns, class Class (anonymous: left out)."""
    parts: list[str] = []
    parent = die.get_parent()
    while parent is not None and parent.tag in (*_CLASS_TAGS, "DW_TAG_namespace"):
        if "DW_AT_name" in parent.attributes:
            parts.insert(0, _name_of(parent) + "::")
        parent = parent.get_parent()
    return "".join(parts)


class Builds:
    """The fixtures compiled on demand, once per test session."""

    def __init__(self, programs: Programs, directory: Path) -> None:
        self.programs = programs
        self.directory = directory
        self._built: dict[str, StaticProgram] = {}

    def compile(self, name: str, compiler: str, sources: list[Path], flags: tuple[str, ...]) -> str:
        if shutil.which(compiler) is None:
            pytest.skip(f"{compiler} is needed to build this fixture")
        output = self.directory / name
        cflags = [flag for flag in CFLAGS if not (flag == "-O0" and "-O2" in flags)]
        subprocess.run(
            [compiler, *cflags, *flags, "-o", str(output), *map(str, sources)],
            check=True,
            capture_output=True,
        )
        return str(output)

    def get(self, build: str) -> StaticProgram:
        """One of BUILDS (``c-dwarf5`` is conftest's own build of types.c)."""
        if build not in self._built:
            if build == "c-dwarf5":
                path = self.programs.path("types")
            else:
                compiler, source, flags = BUILDS[build]
                path = self.compile(build, compiler, [FIXTURE_SOURCES / source], flags)
            self._built[build] = StaticProgram(path)
        return self._built[build]

    def two_units(self, variant: str = "") -> StaticProgram:
        """types.c plus a second unit defining ``struct opaque``. ``variant``: "" (no
        index), "pubtypes" (-gpubnames) or "debug_names" (gdb-add-index -dwarf-5)."""
        key = f"two-units-{variant}"
        if key not in self._built:
            second = self.directory / "opaque_def.c"
            second.write_text(OPAQUE_DEFINITION)
            flags = ("-gpubnames",) if variant == "pubtypes" else ()
            path = self.compile(key, "gcc", [FIXTURE_SOURCES / "types.c", second], flags)
            if variant == "debug_names":
                if shutil.which("gdb-add-index") is None:
                    pytest.skip("gdb-add-index is needed to write a .debug_names")
                subprocess.run(["gdb-add-index", "-dwarf-5", path], check=True, capture_output=True)
            self._built[key] = StaticProgram(path, debug_names=variant == "debug_names")
        return self._built[key]


_BUILDS: dict[Path, Builds] = {}


def shared_builds(programs: Programs, tmp_path_factory: pytest.TempPathFactory) -> Builds:
    """The type fixtures' builds, one set per session for this file and
    test_symbols_values.py (each defines a ``builds`` fixture returning it)."""
    key = programs.directory
    if key not in _BUILDS:
        _BUILDS[key] = Builds(programs, tmp_path_factory.mktemp("types"))
    return _BUILDS[key]


@pytest.fixture(scope="session")
def builds(programs: Programs, tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return shared_builds(programs, tmp_path_factory)


# ------------------------------------------------------------------ against gdb


@pytest.mark.parametrize("build", list(BUILDS))
def test_whatis_and_ptype_match_gdb(builds: Builds, build: str) -> None:
    program = builds.get(build)
    assert len(program.variables) > 25
    mismatches = []
    for name, view in program.gdb.items():
        if name in TYPE_DIFFERENCES:
            continue
        t = program.type(name)
        for command, mine, gdb in (
            ("whatis", t.c_name(), view.whatis),
            ("ptype", program.reader.ptype(t), view.ptype),
        ):
            if mine != gdb:
                mismatches.append(f"{command} {name}:\n  gdb:    {gdb!r}\n  lindbg: {mine!r}")
    assert not mismatches, "\n".join(mismatches)


def test_declared_struct_is_completed_from_another_unit_like_gdb(builds: Builds) -> None:
    program = builds.two_units()
    t = program.type("g_opaque_ptr")
    assert t.c_name() == program.gdb["g_opaque_ptr"].whatis == "struct opaque *"
    assert program.reader.ptype(t) == program.gdb["g_opaque_ptr"].ptype
    assert t.target is not None
    assert t.target.declaration is False
    assert t.target.size == 16
    assert [m.name for m in t.target.members] == ["hidden", "label"]


# ------------------------------------------------------------------ the model


def test_base_types_and_their_classification(builds: Builds) -> None:
    program = builds.get("c-dwarf5")
    expect = {
        "g_char": ("char", 1, Encoding.SIGNED_CHAR),
        "g_uchar": ("unsigned char", 1, Encoding.UNSIGNED_CHAR),
        "g_ulong": ("long unsigned int", 8, Encoding.UNSIGNED),
        "g_true": ("_Bool", 1, Encoding.BOOLEAN),
        "g_ldouble": ("long double", 16, Encoding.FLOAT),
        "g_cdouble": ("complex double", 16, Encoding.COMPLEX_FLOAT),
        "g_int128": ("__int128", 16, Encoding.SIGNED),
    }
    for name, (dwarf_name, size, encoding) in expect.items():
        t = program.type(name)
        assert (t.kind, t.name, t.size, t.encoding) == (TypeKind.BASE, dwarf_name, size, encoding), name
    assert program.type("g_char").is_signed and program.type("g_char").is_integer
    assert not program.type("g_uint").is_signed
    assert program.type("g_true").is_integer and program.type("g_true").is_scalar
    assert program.type("g_double").is_float and not program.type("g_double").is_integer
    assert program.type("g_cfloat").is_complex and not program.type("g_cfloat").is_scalar
    assert program.type("g_color").is_integer and program.type("g_color").is_scalar
    assert program.type("g_const").is_integer  # through const
    assert program.type("g_counter").is_integer  # through a typedef
    assert program.type("g_int_ptr").is_pointer and program.type("g_int_ptr").is_scalar
    assert program.type("g_matrix").is_array and program.type("g_matrix").is_aggregate
    assert program.type("g_pair").is_aggregate and not program.type("g_pair").is_scalar


def test_derived_types_have_their_targets_and_sizes(builds: Builds) -> None:
    program = builds.get("c-dwarf5")
    matrix = program.type("g_matrix")
    assert (matrix.kind, matrix.length, matrix.size) == (TypeKind.ARRAY, 2, 24)
    assert matrix.target is not None and (matrix.target.kind, matrix.target.length) == (TypeKind.ARRAY, 3)
    unknown = program.type("g_flex").member("items")[1].type
    assert (unknown.length, unknown.size, unknown.c_name()) == (None, None, "int []")
    chain = program.type("g_typedef_chain")
    assert (chain.kind, chain.name, chain.size) == (TypeKind.TYPEDEF, "my_int2", 4)
    assert chain.strip_typedefs().name == "int"
    cv = program.type("g_const_volatile")
    assert {cv.kind, cv.target.kind if cv.target else None} == {TypeKind.CONST, TypeKind.VOLATILE}
    assert cv.unqualified().name == "int" and cv.size == 4
    fn = program.type("g_variadic_ptr").target
    assert fn is not None and fn.kind is TypeKind.FUNCTION
    assert fn.variadic and [p.c_name() for p in fn.parameters] == ["const char *"]
    assert fn.target is not None and fn.target.name == "int"
    null_fn = program.type("g_null_fn").target
    assert null_fn is not None and null_fn.target is None  # returns void
    void = program.type("g_void_ptr").target
    assert void is not None and void.kind is TypeKind.VOID


def test_members_and_bitfields_read_the_same_from_dwarf_4_and_5(builds: Builds) -> None:
    def layout(build: str, variable: str) -> list[tuple[Any, ...]]:
        t = builds.get(build).type(variable)
        return [(m.name, m.offset, m.bit_size, m.bit_offset, m.type.c_name()) for m in t.members]

    bits = layout("c-dwarf5", "g_bits")
    assert bits == [
        ("a", 0, 3, 0, "unsigned int"),
        ("b", 0, 5, 3, "unsigned int"),
        ("c", 1, 4, 0, "int"),
        ("d", 1, 1, 4, "unsigned int"),
        ("wide", 1, 40, 5, "unsigned long long"),
        ("flag", 6, 1, 5, "_Bool"),
    ]
    for variable in ("g_bits", "g_pair", "g_anon", "g_holder", "g_tagged", "g_flex"):
        assert layout("c-dwarf4", variable) == layout("c-dwarf5", variable), variable
    for variable in ("g_multi", "g_account", "g_virtual", "g_outer"):
        assert layout("cpp-dwarf4", variable) == layout("cpp-dwarf5", variable), variable


def test_member_lookup_searches_anonymous_members_then_bases(builds: Builds) -> None:
    c = builds.get("c-dwarf5")
    anon = c.type("g_anon")
    assert anon.member("tag")[0] == 0
    assert anon.member("as_float")[0] == 4
    offset, member = anon.member("hi")
    assert (offset, member.name, member.type.c_name()) == (10, "hi", "short")
    assert [m.name for m in anon.member_path("lo") or ()] == [None, "lo"]
    cpp = builds.get("cpp-dwarf5")
    multi = cpp.type("g_multi")
    assert multi.member("left")[0] == 0
    assert multi.member("right")[0] == 4
    assert multi.member("own")[0] == 6
    path = multi.member_path("right") or ()
    assert [(m.is_base, m.type.c_name()) for m in path] == [(True, "Right"), (False, "short")]
    assert cpp.type("g_derived").member("b") == (0, cpp.type("g_base").members[0])
    account = cpp.type("g_account")
    static = account.member("count")[1]
    assert static.is_static and static.address == cpp.variables["Account::count"][1]
    limit = account.member("limit")[1]
    assert limit.is_static and limit.const_value == 10 and limit.address is None
    assert [m.access for m in account.members] == ["public", "public", "public", "private"]
    with pytest.raises(KeyError, match=r"^'missing'$"):
        multi.member("missing")
    with pytest.raises(KeyError):
        c.type("g_int").member("x")


def test_enums_know_their_enumerators_and_flag_nature(builds: Builds) -> None:
    c = builds.get("c-dwarf5")
    color = c.type("g_color")
    assert [(e.name, e.value) for e in color.enumerators] == [("RED", 0), ("GREEN", 1), ("BLUE", 2)]
    assert color.is_flag_enum and color.enum_unsigned
    assert c.type("g_flags").is_flag_enum
    sparse = c.type("g_sparse")
    assert not sparse.is_flag_enum and not sparse.enum_unsigned
    assert sparse.is_signed
    cpp = builds.get("cpp-dwarf5")
    axis = cpp.type("g_axis")
    assert axis.enum_class and axis.name == "geo::deep::Axis"
    assert axis.target is not None and axis.target.c_name() == "unsigned char" and axis.size == 1
    assert [e.printed_name for e in axis.enumerators] == ["geo::deep::Axis::X", "geo::deep::Axis::Y"]
    assert [e.printed_name for e in cpp.type("geo::plain2").enumerators] == ["geo::PA", "geo::PB"]


def test_classes_know_their_methods_and_templates(builds: Builds) -> None:
    cpp = builds.get("cpp-dwarf5")
    account = cpp.type("g_account")
    assert account.kind is TypeKind.CLASS
    methods = {m.name: m for m in account.methods}
    assert methods["get"].is_const and not methods["get"].is_static
    assert methods["total"].is_static
    assert [p.c_name() for p in methods["deposit"].type.parameters] == ["long", "const char *"]
    box = cpp.type("g_box_int")
    assert [(name, t.c_name()) for name, t in box.template_params] == [("T", "int")]
    square = cpp.type("g_square")
    assert any(m.is_virtual for m in square.methods)
    virtual = cpp.type("g_virtual")
    base = next(m for m in virtual.members if m.is_base)
    assert base.is_virtual and base.location is not None
    assert next(m for m in virtual.members if m.artificial).name == "_vptr.Virtual"


def test_reference_and_member_pointer_types(builds: Builds) -> None:
    cpp = builds.get("cpp-dwarf5")
    assert cpp.type("g_ref").kind is TypeKind.REFERENCE and cpp.type("g_ref").size == 8
    assert cpp.type("g_rref").kind is TypeKind.RVALUE_REFERENCE and cpp.type("g_rref").is_reference
    member_pointer = cpp.type("g_member_ptr")
    assert member_pointer.kind is TypeKind.POINTER_TO_MEMBER and member_pointer.size == 8
    assert member_pointer.containing == cpp.type("g_base")
    assert member_pointer.declare("pm") == "int Base::*pm"
    assert cpp.type("g_nullptr").kind is TypeKind.UNSPECIFIED
    assert cpp.type("g_nullptr").c_name() == "decltype(nullptr)"


def test_declare_names_a_variable_of_the_type(builds: Builds) -> None:
    c = builds.get("c-dwarf5")
    assert c.type("g_fn_ptr").declare("fp") == "int (*fp)(int, int)"
    assert c.type("g_buf").declare("buf") == "char buf[16]"
    assert c.type("g_pair_ptr").declare("p") == "struct pair *p"
    assert c.type("g_fp_ret").declare("f") == "int (*(*f)(int))(double)"
    assert c.type("g_matrix").declare("m") == "int m[2][3]"
    assert c.type("g_array_ptr").declare("rows") == "int (*rows)[4]"
    assert c.type("g_const_ptr_volatile").declare("reg") == "volatile unsigned long * const reg"


def test_type_of_follows_specifications_and_gives_return_types(builds: Builds) -> None:
    program = builds.get("c-dwarf5")
    main = next(
        die
        for cu in program.dwarf.iter_CUs()
        for die in cu.get_top_DIE().iter_children()
        if die.tag == "DW_TAG_subprogram" and die.attributes["DW_AT_name"].value == b"main"
    )
    assert program.reader.type_of(main).c_name() == "int"
    assert program.reader.function_type(main).c_name() == "int (void)"
    assert program.type("g_unknown_len").c_name() == "int [3]"  # the definition's type, not the extern's
    assert program.reader.type_of(program.variables["g_int"][0]) is program.type("g_int")  # kept by offset


def test_members_are_read_when_first_asked_and_bad_dwarf_says_where(builds: Builds, tmp_path: Path) -> None:
    """A member's DW_AT_type pointing outside its unit: building the struct type does
    not notice (members are not read yet); asking for them raises TypeReadError."""
    original = builds.get("c-dwarf5")
    pair = original.type("g_pair")
    first = next(original.dwarf.get_DIE_from_refaddr(pair.die_offset or 0).iter_children())
    attribute = first.attributes["DW_AT_type"]
    assert attribute.form == "DW_FORM_ref4"
    data = bytearray(Path(original.path).read_bytes())
    section = ELFFile(io.BytesIO(bytes(data))).get_section_by_name(".debug_info")
    assert section is not None
    start = section["sh_offset"] + attribute.offset
    data[start : start + 4] = b"\xf0\xff\xff\x7f"
    broken_path = tmp_path / "broken"
    broken_path.write_bytes(bytes(data))
    broken = StaticProgram(str(broken_path))
    t = broken.type("g_pair")
    assert t.c_name() == "struct pair" and t.size == 24
    message = rf"^DIE at {pair.die_offset:#x}: cannot read the parts of struct pair: .*$"
    with pytest.raises(TypeReadError, match=message):
        _ = t.members
    with pytest.raises(TypeReadError, match=message):  # again, not an empty tuple
        _ = t.members


# ------------------------------------------------------------------ find_type


@pytest.mark.parametrize(
    ("name", "spelled"),
    [
        ("pair", "struct pair"),
        ("struct pair", "struct pair"),
        ("pair_t", "pair_t"),
        ("union number", "union number"),
        ("enum color", "enum color"),
        ("unsigned int", "unsigned int"),
        ("unsigned long", "unsigned long"),
        ("long unsigned int", "unsigned long"),
        ("char *", "char *"),
        ("const char *", "const char *"),
        ("char * const", "char * const"),
        ("int [4]", "int [4]"),
        ("int [2][3]", "int [2][3]"),
        ("struct pair **", "struct pair **"),
        ("void *", "void *"),
        ("my_int2", "my_int2"),
        ("unsigned __int128", "__int128 unsigned"),
    ],
)
def test_find_type_in_c(builds: Builds, name: str, spelled: str) -> None:
    found = builds.get("c-dwarf5").reader.find_type(name)
    assert found is not None and found.c_name() == spelled


@pytest.mark.parametrize(
    ("name", "spelled"),
    [
        ("Base", "Base"),
        ("struct Base", "Base"),
        ("geo::Point", "geo::Point"),
        ("Box<int>", "Box<int>"),
        ("Box<double> *", "Box<double> *"),
        ("Pair<int, char>", "Pair<int, char>"),
        ("Outer::Inner", "Outer::Inner"),
        ("Outer::value_type", "Outer::value_type"),
        ("geo::deep::Axis", "geo::deep::Axis"),
        ("Hidden", "(anonymous namespace)::Hidden"),
        ("Account &", "Account &"),
        ("const Base &&", "const Base &&"),
    ],
)
def test_find_type_in_cpp(builds: Builds, name: str, spelled: str) -> None:
    found = builds.get("cpp-dwarf5").reader.find_type(name)
    assert found is not None and found.c_name() == spelled


def test_find_type_misses_and_synthesizes(builds: Builds) -> None:
    reader = builds.get("c-dwarf5").reader
    assert reader.find_type("struct nope") is None
    assert reader.find_type("nope *") is None
    assert reader.find_type("") is None
    # No unit spells "short unsigned int" plus "long long unsigned int"? Then it is made.
    made = reader.find_type("unsigned long long")
    assert made is not None and (made.size, made.encoding) == (8, Encoding.UNSIGNED)
    assert reader.find_type("struct opaque") is not None  # a declaration, when nothing defines it
    assert reader.find_type("struct opaque").declaration  # type: ignore[union-attr]


def test_find_type_reads_the_hint_unit_first(builds: Builds) -> None:
    program = builds.two_units()
    units = list(program.dwarf.iter_CUs())
    assert len(units) == 2
    reader = program.new_reader()
    found = reader.find_type("struct pair", hint=units[0])
    assert found is not None and reader.units_indexed == 1
    second = reader.find_type("struct only_second", hint=units[1])
    assert second is not None and second.size == 8 and reader.units_indexed == 2


@pytest.mark.parametrize("variant", ["", "pubtypes", "debug_names"])
def test_find_type_asks_the_name_index_before_walking_units(builds: Builds, variant: str) -> None:
    reader = builds.two_units(variant).new_reader()
    found = reader.find_type("struct only_second")
    assert found is not None and [m.name for m in found.members] == ["wide"]
    # Without an index both units are walked; with one, only the unit that has it.
    assert reader.units_indexed == (2 if variant == "" else 1)


# ------------------------------------------------------------------ synthesized types


def test_synthesized_types_print_and_compare_by_structure() -> None:
    integer = Type.base("int", 4, Encoding.SIGNED)
    assert integer.c_name() == "int" and integer.size == 4 and integer.die_offset is None
    pointer = integer.pointer_to()
    assert pointer is integer.pointer_to()  # kept
    assert pointer.c_name() == "int *" and pointer.size == 8 and pointer.target is integer
    array = integer.array_of(4)
    assert (array.c_name(), array.size, array.length) == ("int [4]", 16, 4)
    assert integer.array_of(None).c_name() == "int []" and integer.array_of(None).size is None
    assert Type.base("int", 4, Encoding.SIGNED).pointer_to() == pointer
    assert hash(Type.base("int", 4, Encoding.SIGNED).array_of(4)) == hash(array)
    assert Type.base("unsigned int", 4, Encoding.UNSIGNED) != integer
    assert integer.qualified(const=True).pointer_to().c_name() == "const int *"
    assert integer.pointer_to().qualified(const=True, volatile=True).c_name() == "int * const volatile"
    assert integer.array_of(3).pointer_to().c_name() == "int (*)[3]"
    assert integer.reference_to().c_name() == "int &"
    assert Type.void().pointer_to().c_name() == "void *"
    assert Type.base("char", 1, Encoding.SIGNED_CHAR).array_of(16).declare("buf") == "char buf[16]"


def test_types_from_dwarf_compare_by_die(builds: Builds) -> None:
    program = builds.get("c-dwarf5")
    assert program.type("g_pair") == program.type("g_pair2")
    assert program.type("g_pair") != program.type("g_rect")
    assert len({program.type("g_pair"), program.type("g_pair2"), program.type("g_int")}) == 2
