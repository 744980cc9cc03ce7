"""The type model: DWARF type DIEs (through pyelftools) turned into immutable ``Type`` objects.

Strategy. A ``TypeReader`` serves one DWARF file (a pyelftools ``DWARFInfo`` the caller
opened). ``type_of(die)`` builds the ``Type`` of one DIE and keeps it by DIE offset, so a
type is built once however many variables use it. Only what a type *is* is read at
once (its tag, name, size, target, array bounds): the members of a struct, the
enumerators of an enum, the parameters of a function, template parameters and methods
are read the first time something asks for them, then kept. A struct that is only
declared in this unit (``DW_AT_declaration``) is completed, when first asked for its
size or members, by looking its name up with ``find_type``.

``find_type`` is the one operation that may leave the unit at hand. Its cost, in order:
the hint unit's top-level DIEs (and namespace children) are indexed by name, once;
then ``.debug_names`` (when the caller passes it) or ``.debug_pubtypes`` name the units
that hold the name, and only those are indexed; only when neither index exists, or
neither knows the name, are the other units indexed one by one until a complete
definition turns up (each unit's top level once; nested DIEs are skipped through
``DW_AT_sibling``). It never reads the DIE trees below the top level of a unit, except
namespaces, so a type nested in a class is found only through its users.

Printing. ``Type.c_name`` (gdb's ``whatis``), ``Type.declare`` and ``TypeReader.ptype``
(gdb's ``ptype``) follow gdb 13's C type printer (c-typeprint.c): a base, then a prefix
and suffix around the declarator, names canonicalised as gdb does ("long unsigned int"
prints as "unsigned long"), C++ classes with their access labels and methods, and
template members with ``[with T = int]`` substitutions. Formatting lives apart from the
data, at the end of this module.

Malformed DWARF raises ``TypeReadError`` naming the DIE offset, never a pyelftools
exception.
"""

from __future__ import annotations

import enum
import math
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast, overload

from elftools.common.exceptions import DWARFError, ELFError
from elftools.dwarf.compileunit import CompileUnit
from elftools.dwarf.die import DIE
from elftools.dwarf.dwarfinfo import DWARFInfo
from elftools.dwarf.typeunit import TypeUnit

from lindbg.errors import LindbgError

__all__ = [
    "FLOAT16",
    "FLOAT32",
    "FLOAT64",
    "FLOAT128",
    "X87_EXTENDED",
    "Encoding",
    "Enumerator",
    "FloatFormat",
    "Member",
    "Method",
    "Type",
    "TypeKind",
    "TypeReadError",
    "TypeReader",
    "float_format",
    "read_leb128",
]


class TypeReadError(LindbgError):
    """A DIE could not be read as a type: the message names its .debug_info offset and
    what is wrong (a missing target, a reference outside the file, a malformed unit)."""


class TypeKind(enum.Enum):
    """What a ``Type`` is. CONST and VOLATILE wrap their target; TYPEDEF names it."""

    VOID = "void"
    BASE = "base"
    POINTER = "pointer"
    REFERENCE = "reference"
    RVALUE_REFERENCE = "rvalue reference"
    ARRAY = "array"
    STRUCT = "struct"
    CLASS = "class"
    UNION = "union"
    ENUM = "enum"
    TYPEDEF = "typedef"
    CONST = "const"
    VOLATILE = "volatile"
    FUNCTION = "function"
    POINTER_TO_MEMBER = "pointer to member"
    #: A type DWARF names without describing it (``decltype(nullptr)``).
    UNSPECIFIED = "unspecified"


class Encoding(enum.IntEnum):
    """A base type's DW_ATE_* encoding."""

    ADDRESS = 1
    BOOLEAN = 2
    COMPLEX_FLOAT = 3
    FLOAT = 4
    SIGNED = 5
    SIGNED_CHAR = 6
    UNSIGNED = 7
    UNSIGNED_CHAR = 8
    UTF = 0x10


@dataclass(frozen=True, slots=True)
class Member:
    """A data member (or base class subobject) of a struct, class or union.

    ``bit_offset`` counts little-endian bits from ``offset * 8`` and is always below 8:
    both DWARF 5's ``DW_AT_data_bit_offset`` and DWARF 2-4's big-endian-numbered
    ``DW_AT_bit_offset`` are brought to this form, so one bitfield reads the same from
    either. ``location`` holds the DW_AT_data_member_location expression of a member whose
    place is computed at run time (a virtual base); its ``offset`` is then 0.
    ``address``/``const_value`` give a static member's storage (its definition's
    ``DW_OP_addr``) or its constant, when DWARF has them.
    """

    name: str | None
    type: Type
    offset: int
    bit_size: int | None = None
    bit_offset: int | None = None
    is_base: bool = False
    is_static: bool = False
    #: "public", "protected" or "private" (DWARF's default when not given).
    access: str = "public"
    #: Compiler-made (a vtable pointer ``_vptr.X``): ptype leaves it out.
    artificial: bool = False
    is_virtual: bool = False
    location: bytes | None = None
    address: int | None = None
    const_value: int | bytes | None = None


@dataclass(frozen=True, slots=True)
class Enumerator:
    """One enumerator; ``full_name`` is gdb's spelling when it differs from ``name``
    (C++: ``Color::Red`` for an enum class, ``ns::ONE`` inside a namespace)."""

    name: str
    value: int
    full_name: str = ""

    @property
    def printed_name(self) -> str:
        """The name gdb prints for this value."""
        return self.full_name or self.name


@dataclass(frozen=True, slots=True)
class Method:
    """A member function declared in a class (for ``ptype``)."""

    name: str
    #: The FUNCTION type, its parameters without the artificial ``this``.
    type: Type
    access: str
    is_static: bool
    is_virtual: bool
    is_const: bool
    is_volatile: bool
    artificial: bool
    is_constructor: bool


#: How deep a chain of typedefs/qualifiers may go before it is taken for a DWARF cycle.
_MAX_CHAIN = 64
_POINTER_SIZE = 8
_CPLUS_LANGUAGES = frozenset({0x4, 0x19, 0x1A, 0x21})  # DW_LANG_C_plus_plus{,_03,_11,_14}
_ACCESS = {1: "public", 2: "protected", 3: "private"}
_INTEGER_ENCODINGS = frozenset(
    {
        Encoding.SIGNED,
        Encoding.UNSIGNED,
        Encoding.SIGNED_CHAR,
        Encoding.UNSIGNED_CHAR,
        Encoding.BOOLEAN,
        Encoding.UTF,
        Encoding.ADDRESS,
    }
)
_SIGNED_ENCODINGS = frozenset({Encoding.SIGNED, Encoding.SIGNED_CHAR, Encoding.FLOAT, Encoding.COMPLEX_FLOAT})
_QUALIFIERS = (TypeKind.CONST, TypeKind.VOLATILE)
_ENCODING_VALUES = frozenset(int(e) for e in Encoding)
_AGGREGATES = frozenset({TypeKind.STRUCT, TypeKind.CLASS, TypeKind.UNION})
#: Types C names with a keyword ("struct pair", "enum color").
_TAGGED = frozenset({*_AGGREGATES, TypeKind.ENUM})

# A loader fills the lazily read parts of a Type; None once it has run.
_Loader = Callable[["Type"], None]
_T = TypeVar("_T")


class _Loaded(Generic[_T]):
    """A part of a Type read on first access: reading it runs the Type's loader, which
    fills the slot of the same name with a leading underscore."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = "_" + name

    @overload
    def __get__(self, instance: None, owner: type) -> _Loaded[_T]: ...
    @overload
    def __get__(self, instance: Type, owner: type) -> _T: ...
    def __get__(self, instance: Type | None, owner: type) -> _Loaded[_T] | _T:
        if instance is None:
            return self
        instance._load()
        return cast(_T, getattr(instance, self._slot))


class Type:
    """One C/C++ type. Immutable once built; members, enumerators, parameters, template
    parameters and methods are read on first use.

    Two Types read from DWARF are equal when they come from the same DIE of the same
    reader; synthesized types (``Type.base``, ``pointer_to``, ``array_of``...) compare by
    structure.
    """

    __slots__ = (
        "_array_cache",
        "_declaration",
        "_enumerators",
        "_loader",
        "_members",
        "_methods",
        "_nested_typedefs",
        "_parameters",
        "_pointer",
        "_size",
        "_template_params",
        "containing",
        "cplus",
        "die_offset",
        "encoding",
        "enum_class",
        "kind",
        "length",
        "name",
        "origin",
        "prototyped",
        "target",
        "variadic",
    )

    kind: TypeKind
    name: str | None
    target: Type | None
    encoding: Encoding | None
    length: int | None
    variadic: bool
    die_offset: int | None
    #: The type belongs to a C++ unit (gdb prints names without "struct "/"enum ").
    cplus: bool
    #: FUNCTION: has a prototype (C's ``int f()`` has none; gdb prints "()" for it).
    prototyped: bool
    #: ENUM: declared ``enum class``.
    enum_class: bool
    #: POINTER_TO_MEMBER: the class whose member it points to.
    containing: Type | None
    #: Which reader built it (None for synthesized types): part of its identity.
    origin: int | None

    def __init__(
        self,
        kind: TypeKind,
        name: str | None = None,
        size: int | None = None,
        target: Type | None = None,
        *,
        encoding: Encoding | None = None,
        length: int | None = None,
        members: tuple[Member, ...] = (),
        enumerators: tuple[Enumerator, ...] = (),
        parameters: tuple[Type, ...] = (),
        variadic: bool = False,
        declaration: bool = False,
        die_offset: int | None = None,
        cplus: bool = False,
        prototyped: bool = True,
        enum_class: bool = False,
        containing: Type | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self._size = size
        self.target = target
        self.encoding = encoding
        self.length = length
        self._members = members
        self._enumerators = enumerators
        self._parameters = parameters
        self._template_params: tuple[tuple[str, Type], ...] = ()
        self._methods: tuple[Method, ...] = ()
        self._nested_typedefs: tuple[tuple[str, Type, str], ...] = ()
        self.variadic = variadic
        self._declaration = declaration
        self.die_offset = die_offset
        self.cplus = cplus
        self.prototyped = prototyped
        self.enum_class = enum_class
        self.containing = containing
        self.origin: int | None = None
        self._loader: _Loader | None = None
        self._pointer: Type | None = None
        self._array_cache: dict[int | None, Type] = {}

    # ------------------------------------------------------------ lazy parts

    def _load(self) -> None:
        loader = self._loader
        if loader is not None:
            self._loader = None  # first, so a type reached again while loading is not reloaded
            try:
                loader(self)
            except BaseException:
                self._loader = loader  # the next access fails the same way, not silently empty
                raise

    @property
    def size(self) -> int | None:
        """Bytes; None for void, functions, incomplete types and arrays of unknown length.
        Typedefs and qualifiers have their target's size."""
        if self.kind in (TypeKind.TYPEDEF, TypeKind.CONST, TypeKind.VOLATILE):
            return self.target.size if self.target is not None else None
        if self._declaration:
            self._load()
        return self._size

    #: STRUCT/CLASS/UNION members in declaration order, base classes first.
    members: _Loaded[tuple[Member, ...]] = _Loaded()
    #: ENUM enumerators in declaration order.
    enumerators: _Loaded[tuple[Enumerator, ...]] = _Loaded()
    #: FUNCTION parameter types in order.
    parameters: _Loaded[tuple[Type, ...]] = _Loaded()
    #: A template instance's type parameters, (name, type) in order.
    template_params: _Loaded[tuple[tuple[str, Type], ...]] = _Loaded()
    #: The member functions a class declares (constructors included), in order.
    methods: _Loaded[tuple[Method, ...]] = _Loaded()
    #: Typedefs declared inside a class: (name, TYPEDEF type, access).
    nested_typedefs: _Loaded[tuple[tuple[str, Type, str], ...]] = _Loaded()

    @property
    def declaration(self) -> bool:
        """Incomplete: declared (DW_AT_declaration) and no definition was found by name."""
        if self._declaration:
            self._load()
        return self._declaration

    @property
    def is_flag_enum(self) -> bool:
        """gdb's "flag enum": no enumerator is negative or has two bits set, so a value
        prints as ``(A | B)``."""
        return self.kind is TypeKind.ENUM and all(
            e.value >= 0 and e.value.bit_count() < 2 for e in self.enumerators
        )

    @property
    def enum_unsigned(self) -> bool:
        """gdb reads an enum unsigned unless an enumerator is negative."""
        return all(e.value >= 0 for e in self.enumerators)

    # ------------------------------------------------------------ identity

    def _key(self) -> tuple[Any, ...]:
        if self.die_offset is not None:
            return ("die", self.origin, self.die_offset, self.kind)
        return (
            self.kind,
            self.name,
            self._size,
            self.encoding,
            self.length,
            self.target._key() if self.target is not None else None,
        )

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Type):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        where = f" at {self.die_offset:#x}" if self.die_offset is not None else ""
        return f"<Type {self.kind.name} {self.c_name()!r}{where}>"

    # ------------------------------------------------------------ constructors

    @staticmethod
    def base(name: str, size: int, encoding: Encoding) -> Type:
        """A synthesized base type (for literals and casts): ``Type.base("int", 4, Encoding.SIGNED)``."""
        return Type(TypeKind.BASE, name, size, encoding=encoding)

    @staticmethod
    def void(cplus: bool = False) -> Type:
        """The void type."""
        return Type(TypeKind.VOID, "void", None, cplus=cplus)

    def pointer_to(self) -> Type:
        """A POINTER (8 bytes) to this type (the same object each time)."""
        if self._pointer is None:
            self._pointer = Type(TypeKind.POINTER, None, _POINTER_SIZE, self, cplus=self.cplus)
        return self._pointer

    def reference_to(self, rvalue: bool = False) -> Type:
        """A REFERENCE (or RVALUE_REFERENCE) to this type."""
        kind = TypeKind.RVALUE_REFERENCE if rvalue else TypeKind.REFERENCE
        return Type(kind, None, _POINTER_SIZE, self, cplus=self.cplus)

    def array_of(self, length: int | None) -> Type:
        """An ARRAY of ``length`` elements of this type (None: unknown length)."""
        cached = self._array_cache.get(length)
        if cached is None:
            element = self.size
            size = element * length if element is not None and length is not None else None
            cached = Type(TypeKind.ARRAY, None, size, self, length=length, cplus=self.cplus)
            self._array_cache[length] = cached
        return cached

    def qualified(self, const: bool = False, volatile: bool = False) -> Type:
        """This type wrapped in CONST and/or VOLATILE."""
        result = self
        if volatile:
            result = Type(TypeKind.VOLATILE, None, None, result, cplus=self.cplus)
        if const:
            result = Type(TypeKind.CONST, None, None, result, cplus=self.cplus)
        return result

    # ------------------------------------------------------------ navigation

    def strip_typedefs(self) -> Type:
        """The type under every TYPEDEF, CONST and VOLATILE (void for ``const void``)."""
        t = self
        for _ in range(_MAX_CHAIN):
            if t.kind not in (TypeKind.TYPEDEF, TypeKind.CONST, TypeKind.VOLATILE):
                return t
            t = t.target if t.target is not None else _VOID
        raise TypeReadError(f"type chain deeper than {_MAX_CHAIN} at {self!r} (a DWARF cycle?)")

    def unqualified(self) -> Type:
        """The type under CONST and VOLATILE (typedefs kept)."""
        t = self
        for _ in range(_MAX_CHAIN):
            if t.kind not in _QUALIFIERS:
                return t
            t = t.target if t.target is not None else _VOID
        raise TypeReadError(f"qualifier chain deeper than {_MAX_CHAIN} at {self!r} (a DWARF cycle?)")

    def member(self, name: str) -> tuple[int, Member]:
        """(offset from the start of this type, member) of the data member ``name``,
        searching this type's own members first (anonymous struct/union members
        included), then its base classes, as C++ lookup does.

        Offsets through a virtual base are not known statically (the Value does that);
        here such a base counts as offset 0. Raises ``KeyError(name)``.
        """
        path = self.member_path(name)
        if path is None:
            raise KeyError(name)
        return sum(m.offset for m in path), path[-1]

    def member_path(self, name: str) -> tuple[Member, ...] | None:
        """The chain of members leading to ``name`` (anonymous members and bases first,
        the member itself last), or None."""
        core = self.strip_typedefs()
        if core.kind not in _AGGREGATES:
            return None
        for m in core.members:
            if m.is_base:
                continue
            if m.name == name:
                return (m,)
            if m.name is None:
                inner = m.type.member_path(name)
                if inner is not None:
                    return (m, *inner)
        for m in core.members:
            if m.is_base:
                inner = m.type.member_path(name)
                if inner is not None:
                    return (m, *inner)
        return None

    # ------------------------------------------------------------ classification

    @property
    def is_integer(self) -> bool:
        """Integers of every size, bool, chars (incl. char16_t/char32_t/wchar_t), enums."""
        core = self.strip_typedefs()
        return core.kind is TypeKind.ENUM or (
            core.kind is TypeKind.BASE and core.encoding in _INTEGER_ENCODINGS
        )

    @property
    def is_float(self) -> bool:
        """float, double, long double (not _Complex)."""
        core = self.strip_typedefs()
        return core.kind is TypeKind.BASE and core.encoding is Encoding.FLOAT

    @property
    def is_complex(self) -> bool:
        """_Complex float/double/long double."""
        core = self.strip_typedefs()
        return core.kind is TypeKind.BASE and core.encoding is Encoding.COMPLEX_FLOAT

    @property
    def is_signed(self) -> bool:
        """Signed integers and chars, floats; an enum by its underlying type (signed
        when it has none and an enumerator is negative)."""
        core = self.strip_typedefs()
        if core.kind is TypeKind.ENUM:
            if core.target is not None:
                return core.target.is_signed
            return not core.enum_unsigned
        return core.kind is TypeKind.BASE and core.encoding in _SIGNED_ENCODINGS

    @property
    def is_pointer(self) -> bool:
        """A POINTER (not a reference, not a pointer to member)."""
        return self.strip_typedefs().kind is TypeKind.POINTER

    @property
    def is_reference(self) -> bool:
        """A REFERENCE or RVALUE_REFERENCE."""
        return self.strip_typedefs().kind in (TypeKind.REFERENCE, TypeKind.RVALUE_REFERENCE)

    @property
    def is_array(self) -> bool:
        """An ARRAY."""
        return self.strip_typedefs().kind is TypeKind.ARRAY

    @property
    def is_aggregate(self) -> bool:
        """A STRUCT, CLASS, UNION or ARRAY."""
        core = self.strip_typedefs()
        return core.kind in _AGGREGATES or core.kind is TypeKind.ARRAY

    @property
    def is_scalar(self) -> bool:
        """An integer, enum, float, pointer or pointer to member."""
        core = self.strip_typedefs()
        return (
            self.is_integer
            or self.is_float
            or core.kind in (TypeKind.POINTER, TypeKind.POINTER_TO_MEMBER, TypeKind.UNSPECIFIED)
        )

    # ------------------------------------------------------------ printing

    def c_name(self) -> str:
        """gdb's ``whatis`` spelling: "int", "char *", "struct pair *", "int [4]",
        "int (*)(int, char *)", "const char *", "ns::Box<int> &", "enum color"."""
        return _Printer(self.cplus).type_text(self, "", -1, 0)

    def declare(self, name: str) -> str:
        """A declaration of ``name`` of this type: "int (*fp)(int)", "char buf[16]"."""
        return _Printer(self.cplus).type_text(self, name, -1, 0)


_VOID = Type(TypeKind.VOID, "void")
#: The slots ``_Loaded`` attributes keep their contents in.
_LOADED_SLOTS = tuple(f"_{name}" for name, item in vars(Type).items() if isinstance(item, _Loaded))


# ====================================================================== the reader


_TYPE_TAGS = {
    "DW_TAG_base_type": TypeKind.BASE,
    "DW_TAG_unspecified_type": TypeKind.UNSPECIFIED,
    "DW_TAG_pointer_type": TypeKind.POINTER,
    "DW_TAG_reference_type": TypeKind.REFERENCE,
    "DW_TAG_rvalue_reference_type": TypeKind.RVALUE_REFERENCE,
    "DW_TAG_array_type": TypeKind.ARRAY,
    "DW_TAG_structure_type": TypeKind.STRUCT,
    "DW_TAG_class_type": TypeKind.CLASS,
    "DW_TAG_union_type": TypeKind.UNION,
    "DW_TAG_enumeration_type": TypeKind.ENUM,
    "DW_TAG_typedef": TypeKind.TYPEDEF,
    "DW_TAG_const_type": TypeKind.CONST,
    "DW_TAG_volatile_type": TypeKind.VOLATILE,
    "DW_TAG_subroutine_type": TypeKind.FUNCTION,
    "DW_TAG_ptr_to_member_type": TypeKind.POINTER_TO_MEMBER,
}
#: Qualifiers lindbg's model has no kind for: read as their target (gdb would print them).
_TRANSPARENT_TAGS = frozenset({"DW_TAG_restrict_type", "DW_TAG_atomic_type", "DW_TAG_immutable_type"})
#: Tags find_type indexes by name.
_NAMED_TAGS = frozenset(
    {
        "DW_TAG_base_type",
        "DW_TAG_structure_type",
        "DW_TAG_class_type",
        "DW_TAG_union_type",
        "DW_TAG_enumeration_type",
        "DW_TAG_typedef",
        "DW_TAG_unspecified_type",
    }
)
_SCOPE_TAGS = frozenset(
    {"DW_TAG_namespace", "DW_TAG_structure_type", "DW_TAG_class_type", "DW_TAG_union_type"}
)
_ANONYMOUS_SCOPE = "(anonymous namespace)::"
#: Spellings of one type that canonicalisation does not bring together.
_NAME_ALIASES = {"unsigned __int128": "__int128 unsigned", "signed __int128": "__int128"}
_TAG_KEYWORDS = {
    "struct": (TypeKind.STRUCT, TypeKind.CLASS),
    "class": (TypeKind.CLASS, TypeKind.STRUCT),
    "union": (TypeKind.UNION,),
    "enum": (TypeKind.ENUM,),
}

#: What pyelftools raises on malformed DWARF (its parsers also assert and index).
_DWARF_FAULTS = (ELFError, DWARFError, KeyError, ValueError, AssertionError, IndexError)
_DW_OP_addr = 0x03
_DW_OP_plus_uconst = 0x23


def _attr(die: DIE, name: str) -> Any:
    """The decoded value of attribute ``name``, or None."""
    attribute = die.attributes.get(name)
    return None if attribute is None else attribute.value


def _form(die: DIE, name: str) -> str | None:
    attribute = die.attributes.get(name)
    return None if attribute is None else str(attribute.form)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _die_name(die: DIE) -> str | None:
    return _text(_attr(die, "DW_AT_name"))


def _flag(die: DIE, name: str) -> bool:
    return bool(_attr(die, name))


_CONSTANT_FORMS = frozenset({"DW_FORM_sdata", "DW_FORM_udata", "DW_FORM_implicit_const"})


def _constant(die: DIE, name: str) -> int | None:
    """An attribute of the constant class as an int (None when absent or not a constant:
    an expression or a reference, as a variable-length array's bound is)."""
    form = _form(die, name)
    if form is None or not (form.startswith("DW_FORM_data") or form in _CONSTANT_FORMS):
        return None
    value = _attr(die, name)
    return value if isinstance(value, int) else None


class TypeReader:
    """Types of one DWARF file (a pyelftools ``DWARFInfo``), each DIE turned into a
    ``Type`` once (kept by DIE offset)."""

    def __init__(self, dwarf: DWARFInfo, debug_names: bytes | None = None) -> None:
        """``debug_names``: the bytes of the file's ``.debug_names`` section, if it has
        one (pyelftools does not read it); ``find_type`` then asks it which units hold a
        name instead of walking units."""
        self.dwarf = dwarf
        self._types: dict[int, Type] = {}
        self._languages: dict[int, bool] = {}
        self._unit_index: dict[int, dict[str, list[int]]] = {}
        self._static_definitions: dict[int, dict[int, int]] = {}
        self._names = _NameIndex(debug_names, dwarf) if debug_names else None
        self._pubtypes_checked = False
        self._pubtypes: dict[str, int] | None = None

    # ------------------------------------------------------------ public

    def type_of(self, die: DIE) -> Type:
        """The type of ``die``: ``die`` itself when it is a type DIE, else the type its
        ``DW_AT_type`` names (following ``DW_AT_specification``/``DW_AT_abstract_origin``
        when the DIE has none); void when there is none. A subprogram gives its return
        type (see ``function_type`` for the function's own type)."""
        try:
            if die.tag in _TYPE_TAGS or die.tag in _TRANSPARENT_TAGS:
                return self._type_at(die)
            return self._referenced(die, "DW_AT_type", follow=True)
        except _DWARF_FAULTS as error:
            raise TypeReadError(f"DIE at {die.offset:#x}: cannot read its type: {error}") from error

    def function_type(self, die: DIE) -> Type:
        """The FUNCTION type of a subprogram (or subroutine type) DIE: its return type
        and its formal parameters (the artificial ``this`` included)."""
        if die.tag == "DW_TAG_subroutine_type":
            return self.type_of(die)
        cplus = self._cplus(die.cu)
        fn = Type(
            TypeKind.FUNCTION,
            None,
            None,
            None,
            cplus=cplus,
            prototyped=_flag(die, "DW_AT_prototyped") or cplus,
        )
        fn.origin = id(self)
        fn.target = self._return_type(die)
        fn._parameters, fn.variadic = self._parameter_list(die)
        return fn

    def find_type(self, name: str, hint: CompileUnit | None = None) -> Type | None:
        """The type a C/C++ type name denotes: "pair", "struct pair", "union u",
        "enum color", "ns::Box<int>", "unsigned int", "char *", "int [4]",
        "const char *" (pointer, reference, qualifier and array parts are built on the
        named type). Searches ``hint`` first, then the units an index names, then the
        other units (see the module docstring for the cost); a complete definition is
        preferred over a declaration. A C base type name no unit spells ("unsigned
        long" in a unit that never uses it) is synthesized. None if nothing matches."""
        parsed = _parse_type_name(name)
        if parsed is None:
            return None
        keyword, base_name, operations, dims = parsed
        try:
            core = self._find_named(base_name, keyword, hint)
        except _DWARF_FAULTS as error:
            raise TypeReadError(f"cannot look up type {name!r}: {error}") from error
        if core is None:
            return None
        result = core
        for operation in operations:
            if operation == "*":
                result = result.pointer_to()
            elif operation in ("&", "&&"):
                result = result.reference_to(operation == "&&")
            elif operation == "const":
                result = result.qualified(const=True)
            elif operation == "volatile":
                result = result.qualified(volatile=True)
        for dim in reversed(dims):
            result = result.array_of(dim)
        return result

    def ptype(self, t: Type) -> str:
        """gdb's ``ptype`` text for ``t`` (what follows "type = "): typedefs resolved,
        structs, unions, classes and enums spelled out, multi-line."""
        return _Printer(t.cplus).type_text(t, "", 1, 0)

    # ------------------------------------------------------------ building

    def _cplus(self, cu: CompileUnit | TypeUnit) -> bool:
        cached = self._languages.get(cu.cu_offset)
        if cached is None:
            language = _attr(cu.get_top_DIE(), "DW_AT_language")
            cached = language in _CPLUS_LANGUAGES
            self._languages[cu.cu_offset] = cached
        return cached

    def _referenced(self, die: DIE, attribute: str, follow: bool = False) -> Type:
        """The type ``die``'s ``attribute`` refers to (void when absent)."""
        for _ in range(_MAX_CHAIN):
            if attribute in die.attributes:
                return self._type_at(die.get_DIE_from_attribute(attribute))
            if not follow:
                break
            for link in ("DW_AT_specification", "DW_AT_abstract_origin"):
                if link in die.attributes:
                    die = die.get_DIE_from_attribute(link)
                    break
            else:
                break
        return Type.void(self._cplus(die.cu))

    def _type_at(self, die: DIE) -> Type:
        cached = self._types.get(die.offset)
        if cached is not None:
            return cached
        if die.tag in _TRANSPARENT_TAGS:
            # restrict/_Atomic: the model has no kind for them; read through.
            inner = self._referenced(die, "DW_AT_type")
            self._types[die.offset] = inner
            return inner
        kind = _TYPE_TAGS.get(str(die.tag))
        if kind is None:
            raise TypeReadError(f"DIE at {die.offset:#x} ({die.tag}) is not a type")
        cplus = self._cplus(die.cu)
        t = Type(kind, None, _constant(die, "DW_AT_byte_size"), die_offset=die.offset, cplus=cplus)
        t.origin = id(self)
        # Cached before anything it refers to is read: a type reached again through
        # its own target (struct node { struct node *next; }) finds this object.
        self._types[die.offset] = t
        t.name = self._qualified_name(die, kind, cplus)
        if kind is TypeKind.BASE:
            encoding = _constant(die, "DW_AT_encoding")
            t.encoding = Encoding(encoding) if encoding is not None and encoding in _ENCODING_VALUES else None
        elif kind in (TypeKind.POINTER, TypeKind.REFERENCE, TypeKind.RVALUE_REFERENCE):
            t.target = self._referenced(die, "DW_AT_type")
            if t._size is None:
                t._size = _POINTER_SIZE
        elif kind is TypeKind.POINTER_TO_MEMBER:
            t.target = self._referenced(die, "DW_AT_type")
            if "DW_AT_containing_type" in die.attributes:
                t.containing = self._type_at(die.get_DIE_from_attribute("DW_AT_containing_type"))
            if t._size is None:
                function = t.target.strip_typedefs().kind is TypeKind.FUNCTION
                t._size = 2 * _POINTER_SIZE if function else _POINTER_SIZE
        elif kind in (TypeKind.TYPEDEF, TypeKind.CONST, TypeKind.VOLATILE):
            t.target = self._referenced(die, "DW_AT_type") if "DW_AT_type" in die.attributes else None
            if kind is TypeKind.TYPEDEF and t.target is None:
                t.target = Type.void(cplus)
        elif kind is TypeKind.ARRAY:
            self._build_array(t, die)
        elif kind is TypeKind.ENUM:
            t.target = self._referenced(die, "DW_AT_type") if "DW_AT_type" in die.attributes else None
            t.enum_class = _flag(die, "DW_AT_enum_class")
            t._declaration = _flag(die, "DW_AT_declaration")
            t._loader = self._guarded(die, self._enum_loader(die))
        elif kind in _AGGREGATES:
            t._declaration = _flag(die, "DW_AT_declaration")
            t._loader = self._guarded(die, self._aggregate_loader(die))
        elif kind is TypeKind.FUNCTION:
            t.target = self._return_type(die)
            t.prototyped = _flag(die, "DW_AT_prototyped") or cplus
            t._loader = self._guarded(die, self._function_loader(die))
        elif kind is TypeKind.UNSPECIFIED and t._size is None and t.name == "decltype(nullptr)":
            t._size = _POINTER_SIZE  # the Itanium C++ ABI's std::nullptr_t
        return t

    def _return_type(self, die: DIE) -> Type | None:
        """A function's return type; None for void, as the model wants."""
        if "DW_AT_type" not in die.attributes:
            return None
        return self._type_at(die.get_DIE_from_attribute("DW_AT_type"))

    def _qualified_name(self, die: DIE, kind: TypeKind, cplus: bool) -> str | None:
        name = _die_name(die)
        if name is None or not cplus or kind not in (*_AGGREGATES, TypeKind.ENUM, TypeKind.TYPEDEF):
            return name
        scope = self._scope_of(die)
        return f"{scope}::{name}" if scope else name

    def _scope_of(self, die: DIE) -> str:
        """The C++ scope a DIE is declared in ("ns::Outer"), from its parents."""
        parts: list[str] = []
        parent = die.get_parent()
        for _ in range(_MAX_CHAIN):
            if parent is None or parent.tag not in _SCOPE_TAGS:
                break
            name = _die_name(parent)
            if name is None:
                if parent.tag == "DW_TAG_namespace":
                    parts.append("(anonymous namespace)")
                else:
                    break
            else:
                parts.append(name)
            parent = parent.get_parent()
        return "::".join(reversed(parts))

    def _build_array(self, t: Type, die: DIE) -> None:
        """An array DIE's subranges become nested ARRAY types: ``int a[2][3]`` is
        ARRAY(2) of ARRAY(3) of int, the outer one being ``t`` itself."""
        element = self._referenced(die, "DW_AT_type")
        lengths: list[int | None] = []
        for child in die.iter_children():
            if child.tag not in ("DW_TAG_subrange_type", "DW_TAG_enumeration_type"):
                continue
            lengths.append(self._subrange_length(child))
        if not lengths:
            lengths = [None]
        inner = element
        for length in reversed(lengths[1:]):
            inner = inner.array_of(length)
        t.target = inner
        t.length = lengths[0]
        if t._size is None and t.length is not None and inner.size is not None:
            t._size = t.length * inner.size

    @staticmethod
    def _subrange_length(die: DIE) -> int | None:
        count = _constant(die, "DW_AT_count")
        if count is not None:
            return count
        upper = _constant(die, "DW_AT_upper_bound")
        if upper is None:
            return None
        lower = _constant(die, "DW_AT_lower_bound") or 0
        form = _form(die, "DW_AT_upper_bound") or ""
        # GCC spells the bound of a zero-length array as -1, in an unsigned form too.
        size = {"DW_FORM_data1": 8, "DW_FORM_data2": 16, "DW_FORM_data4": 32, "DW_FORM_data8": 64}.get(form)
        if size is not None and upper == (1 << size) - 1:
            upper = -1
        return max(upper - lower + 1, 0)

    # ------------------------------------------------------------ lazy loaders

    @staticmethod
    def _guarded(die: DIE, load: _Loader) -> _Loader:
        """``load`` reporting malformed DWARF as TypeReadError: it runs long after
        ``type_of`` returned, when someone first asks for members."""

        def guarded(t: Type) -> None:
            try:
                load(t)
            except _DWARF_FAULTS as error:
                raise TypeReadError(
                    f"DIE at {die.offset:#x}: cannot read the parts of {t.c_name()}: {error}"
                ) from error

        return guarded

    def _function_loader(self, die: DIE) -> _Loader:
        def load(t: Type) -> None:
            t._parameters, t.variadic = self._parameter_list(die)

        return load

    def _parameter_list(self, die: DIE) -> tuple[tuple[Type, ...], bool]:
        parameters: list[Type] = []
        variadic = False
        for child in die.iter_children():
            if child.tag == "DW_TAG_formal_parameter":
                parameters.append(self._referenced(child, "DW_AT_type", follow=True))
            elif child.tag == "DW_TAG_unspecified_parameters":
                variadic = True
        return tuple(parameters), variadic

    def _enum_loader(self, die: DIE) -> _Loader:
        def load(t: Type) -> None:
            if t._declaration:
                self._complete(t)
                if t._declaration:
                    return
            prefix = ""
            if t.cplus:
                # gdb qualifies C++ enumerators: an enum class's with the enum's own
                # name, a plain enum's with the scope the enum lives in.
                prefix = t.name or "" if t.enum_class else self._scope_of(die)
            found: list[Enumerator] = []
            for child in die.iter_children():
                if child.tag != "DW_TAG_enumerator":
                    continue
                name = _die_name(child) or "<anonymous enumerator>"
                value = _attr(child, "DW_AT_const_value")
                if not isinstance(value, int):
                    continue
                full = f"{prefix}::{name}" if prefix else ""
                found.append(Enumerator(name, value, full))
            t._enumerators = tuple(found)

        return load

    def _aggregate_loader(self, die: DIE) -> _Loader:
        def load(t: Type) -> None:
            if t._declaration:
                self._complete(t)
                return
            members: list[Member] = []
            methods: list[Method] = []
            typedefs: list[tuple[str, Type, str]] = []
            templates: list[tuple[str, Type]] = []
            default_access = "private" if t.kind is TypeKind.CLASS else "public"
            for child in die.iter_children():
                tag = child.tag
                # DWARF 5 declares a static data member as a DW_TAG_variable child.
                if tag in ("DW_TAG_member", "DW_TAG_inheritance", "DW_TAG_variable"):
                    members.append(self._member(child, t, default_access))
                elif tag == "DW_TAG_subprogram":
                    methods.append(self._method(child, t, default_access))
                elif tag == "DW_TAG_typedef":
                    name = _die_name(child)
                    if name is not None:
                        access = _ACCESS.get(_constant(child, "DW_AT_accessibility") or 0, default_access)
                        typedefs.append((name, self._type_at(child), access))
                elif tag == "DW_TAG_template_type_param":
                    name = _die_name(child)
                    if name is not None:
                        templates.append((name, self._referenced(child, "DW_AT_type")))
            t._members = tuple(members)
            t._methods = tuple(methods)
            t._nested_typedefs = tuple(typedefs)
            t._template_params = tuple(templates)

        return load

    def _member(self, die: DIE, owner: Type, default_access: str) -> Member:
        is_base = die.tag == "DW_TAG_inheritance"
        member_type = self._referenced(die, "DW_AT_type")
        name = None if is_base else _die_name(die)
        access_code = _constant(die, "DW_AT_accessibility")
        if is_base and access_code is None:
            # DWARF: a base of a class defaults to private, of a struct to public.
            access = "private" if owner.kind is TypeKind.CLASS else "public"
        else:
            access = _ACCESS.get(access_code or 0, default_access)
        artificial = _flag(die, "DW_AT_artificial")
        if artificial:
            access = "private"  # as gdb reads a vtable pointer, so it counts for access labels
        is_static = die.tag == "DW_TAG_variable" or (
            "DW_AT_data_member_location" not in die.attributes
            and "DW_AT_data_bit_offset" not in die.attributes
            and _flag(die, "DW_AT_declaration")
        )
        if is_static:
            const = _attr(die, "DW_AT_const_value")
            const_value: int | bytes | None = None
            if isinstance(const, int):
                const_value = const
            elif isinstance(const, list):
                const_value = bytes(const)
            elif isinstance(const, bytes):
                const_value = const
            return Member(
                name,
                member_type,
                0,
                is_static=True,
                access=access,
                artificial=artificial,
                address=self._static_address(die),
                const_value=const_value,
            )
        offset = 0
        location: bytes | None = None
        raw = _attr(die, "DW_AT_data_member_location")
        if isinstance(raw, int):
            offset = raw
        elif isinstance(raw, list):
            block = bytes(raw)
            simple = _simple_member_offset(block)
            if simple is None:
                location = block
            else:
                offset = simple
        bit_size = _constant(die, "DW_AT_bit_size")
        bit_offset: int | None = None
        if bit_size is not None:
            data_bit_offset = _constant(die, "DW_AT_data_bit_offset")
            if data_bit_offset is not None:
                total = offset * 8 + data_bit_offset
            else:
                # DWARF 2-4: DW_AT_bit_offset counts from the most significant bit of a
                # storage unit of DW_AT_byte_size bytes at the member location.
                storage = _constant(die, "DW_AT_byte_size") or member_type.size or 0
                big_endian_offset = _constant(die, "DW_AT_bit_offset") or 0
                total = offset * 8 + storage * 8 - big_endian_offset - bit_size
            offset, bit_offset = divmod(total, 8)
        return Member(
            name,
            member_type,
            offset,
            bit_size,
            bit_offset,
            is_base=is_base,
            access=access,
            artificial=artificial,
            is_virtual=is_base and (_constant(die, "DW_AT_virtuality") or 0) != 0,
            location=location,
        )

    def _method(self, die: DIE, owner: Type, default_access: str) -> Method:
        name = _die_name(die) or ""
        fn = self.function_type(die)
        parameters = list(fn.parameters)
        this_type: Type | None = None
        first = next((c for c in die.iter_children() if c.tag == "DW_TAG_formal_parameter"), None)
        if first is not None and _flag(first, "DW_AT_artificial") and parameters:
            this_type = parameters.pop(0)
        visible = Type(TypeKind.FUNCTION, None, None, fn.target, cplus=True, prototyped=True)
        visible._parameters = tuple(parameters)
        visible.variadic = fn.variadic
        is_const = is_volatile = False
        if this_type is not None:
            pointee = this_type.strip_typedefs().target
            kinds = set()
            for _ in range(_MAX_CHAIN):
                if pointee is None or pointee.kind not in _QUALIFIERS:
                    break
                kinds.add(pointee.kind)
                pointee = pointee.target
            is_const = TypeKind.CONST in kinds
            is_volatile = TypeKind.VOLATILE in kinds
        base_name = (owner.name or "").rsplit("::", 1)[-1].split("<", 1)[0]
        return Method(
            name=name,
            type=visible,
            access=_ACCESS.get(_constant(die, "DW_AT_accessibility") or 0, default_access),
            is_static=this_type is None,
            is_virtual=(_constant(die, "DW_AT_virtuality") or 0) != 0,
            is_const=is_const,
            is_volatile=is_volatile,
            artificial=_flag(die, "DW_AT_artificial"),
            is_constructor=name == base_name or name.startswith("~"),
        )

    def _static_address(self, die: DIE) -> int | None:
        """Where a static member lives: the DW_OP_addr of the unit's top-level variable
        DIE whose DW_AT_specification names this declaration (one walk of the unit's
        top level, kept)."""
        cu = die.cu
        definitions = self._static_definitions.get(cu.cu_offset)
        if definitions is None:
            definitions = {}
            for child in _top_level(cu):
                if child.tag != "DW_TAG_variable" or "DW_AT_specification" not in child.attributes:
                    continue
                address = _address_of_location(_attr(child, "DW_AT_location"))
                if address is not None:
                    target = child.get_DIE_from_attribute("DW_AT_specification")
                    definitions[target.offset] = address
            self._static_definitions[cu.cu_offset] = definitions
        return definitions.get(die.offset)

    def _complete(self, t: Type) -> None:
        """Give a declared-only struct/union/enum the definition ``find_type`` finds by
        its name (in any unit); it stays a declaration when there is none."""
        if t.name is None:
            return
        keyword = {TypeKind.UNION: "union", TypeKind.ENUM: "enum"}.get(t.kind, "struct")
        found = self._find_named(t.name, keyword, None, complete_only=True)
        if found is None or found is t or found._declaration:
            return
        found._load()
        t._size = found._size
        for slot in _LOADED_SLOTS:
            setattr(t, slot, getattr(found, slot))
        if t.kind is TypeKind.ENUM:
            t.target = found.target
            t.enum_class = found.enum_class
        t._declaration = False

    # ------------------------------------------------------------ lookup by name

    def _find_named(
        self, name: str, keyword: str | None, hint: CompileUnit | None, complete_only: bool = False
    ) -> Type | None:
        """The type named ``name`` (no declarator): the hint unit, then the units an
        index names, then every other unit, stopping at the first complete definition.
        A bare C name prefers a typedef or base type of that name in a unit and takes a
        struct/union/enum tag only when the unit has no such typedef."""
        kinds = _TAG_KEYWORDS.get(keyword or "")
        key = _canonical(name)
        key = _NAME_ALIASES.get(key, key)
        cplus = self._cplus(hint) if hint is not None else False
        if key == "void":
            return Type.void(cplus)
        declared: Type | None = None
        seen: set[int] = set()

        def search(cu: CompileUnit) -> Type | None:
            nonlocal declared
            if cu.cu_offset in seen:
                return None
            seen.add(cu.cu_offset)
            tag: Type | None = None
            for offset in self._index(cu).get(key, ()):
                candidate = self._type_at(cu.get_DIE_from_refaddr(offset))
                if kinds is not None and candidate.kind not in kinds:
                    continue
                if candidate._declaration:
                    declared = declared or candidate
                    continue
                if kinds is None and candidate.kind in _TAGGED and not candidate.cplus:
                    tag = tag or candidate  # C: a tag answers a bare name only failing a typedef
                    continue
                return candidate
            return tag

        for cu in self._search_order(name, key, hint):
            found = search(cu)
            if found is not None:
                return found
        if "::" in key:
            nested = self._find_nested(key, hint, kinds)
            if nested is not None:
                return nested
        if complete_only:
            return None
        if declared is not None:
            return declared
        return _synthesized_base(key, cplus) if kinds is None else None

    def _search_order(self, name: str, key: str, hint: CompileUnit | None) -> Iterator[CompileUnit]:
        """The hint, then the units an index names, then every unit (lazily: a lookup
        that succeeds early never opens the index or walks the rest)."""
        if hint is not None:
            yield hint
        for offset in self._indexed_units(name, key):
            yield self.dwarf.get_CU_at(offset)
        yield from self.dwarf.iter_CUs()

    def _find_nested(
        self, key: str, hint: CompileUnit | None, kinds: tuple[TypeKind, ...] | None
    ) -> Type | None:
        """A type declared inside a class ("Outer::Inner"): the class found by name, then
        its children read (indexes hold only top-level and namespace types)."""
        scope, _, last = key.rpartition("::")
        outer = self._find_named(scope, None, hint, complete_only=True)
        if outer is None or outer.die_offset is None or outer.kind not in _AGGREGATES:
            return None
        for child in self.dwarf.get_DIE_from_refaddr(outer.die_offset).iter_children():
            if child.tag in _NAMED_TAGS and _die_name(child) == last:
                found = self._type_at(child)
                if kinds is None or found.kind in kinds:
                    return found
        return None

    @property
    def units_indexed(self) -> int:
        """How many units ``find_type`` has indexed so far (each costs a walk of that
        unit's top level): for tests and benchmarks of the lookup cost."""
        return len(self._unit_index)

    def _index(self, cu: CompileUnit) -> dict[str, list[int]]:
        """Qualified, canonical type name -> DIE offsets, for the unit's top level and
        namespaces (built once per unit)."""
        index = self._unit_index.get(cu.cu_offset)
        if index is not None:
            return index
        index = {}
        cplus = self._cplus(cu)
        stack: list[tuple[Iterator[DIE], str]] = [(iter(_top_level(cu)), "")]
        while stack:
            children, scope = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                continue
            if child.tag == "DW_TAG_namespace" and cplus:
                inner = _die_name(child) or "(anonymous namespace)"
                stack.append((child.iter_children(), f"{scope}::{inner}" if scope else inner))
                continue
            if child.tag not in _NAMED_TAGS:
                continue
            name = _die_name(child)
            if name is None:
                continue
            qualified = _canonical(f"{scope}::{name}" if scope else name)
            index.setdefault(qualified, []).append(child.offset)
            visible = qualified.replace(_ANONYMOUS_SCOPE, "")
            if visible != qualified:
                # A name in an anonymous namespace is also visible without it.
                index.setdefault(visible, []).append(child.offset)
        self._unit_index[cu.cu_offset] = index
        return index

    def _indexed_units(self, name: str, key: str) -> list[int]:
        """Units an accelerator table says hold ``name`` (.debug_names, else .debug_pubtypes)."""
        variants = list(dict.fromkeys([key, name, key.rsplit("::", 1)[-1]]))
        units: list[int] = []
        if self._names is not None:
            for variant in variants:
                units.extend(self._names.units_of(variant))
            if units:
                return list(dict.fromkeys(units))
        pubtypes = self._pubtype_table()
        if pubtypes:
            for variant in variants:
                unit = pubtypes.get(variant)
                if unit is not None:
                    units.append(unit)
        return list(dict.fromkeys(units))

    def _pubtype_table(self) -> dict[str, int] | None:
        if not self._pubtypes_checked:
            self._pubtypes_checked = True
            table = self.dwarf.get_pubtypes()
            if table is not None:
                self._pubtypes = {name: entry.cu_ofs for name, entry in table.items()}
        return self._pubtypes


def _top_level(cu: CompileUnit | TypeUnit) -> Iterator[DIE]:
    """The children of a unit's top DIE (pyelftools skips their subtrees by DW_AT_sibling)."""
    return cu.get_top_DIE().iter_children()


def _simple_member_offset(block: bytes) -> int | None:
    """The offset a DW_AT_data_member_location expression gives when it is a constant
    (``DW_OP_plus_uconst N``, as DWARF 2 producers write it); None otherwise."""
    if block and block[0] == _DW_OP_plus_uconst:
        value, position = read_leb128(block, 1)
        if position == len(block):
            return value
    if not block:
        return 0
    return None


def _address_of_location(location: Any) -> int | None:
    """The address of a ``DW_OP_addr A`` location expression (None for anything else)."""
    if isinstance(location, list) and len(location) == 9 and location[0] == _DW_OP_addr:
        return int.from_bytes(bytes(location[1:]), "little")
    return None


def read_leb128(data: bytes, position: int, signed: bool = False) -> tuple[int, int]:
    """A LEB128 number at ``position``: (value, position after it)."""
    result = shift = byte = 0
    while position < len(data):
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    if signed and byte & 0x40:
        result -= 1 << shift
    return result, position


# ============================================================ .debug_names


class _NameIndex:
    """A DWARF 5 ``.debug_names`` name table: which units hold a name (and, when the
    producer gave DW_IDX_die_offset, which DIE). Only the hash buckets of the asked
    name are read; the header and abbreviations of each name table are parsed once."""

    _IDX_COMPILE_UNIT = 1
    _IDX_DIE_OFFSET = 3

    def __init__(self, data: bytes, dwarf: DWARFInfo) -> None:
        self._data = data
        self._dwarf = dwarf
        self._tables: list[dict[str, Any]] | None = None

    def units_of(self, name: str) -> list[int]:
        """Offsets of the units whose entries carry ``name`` (empty when none do or the
        section cannot be read: the caller then walks units)."""
        try:
            return self._lookup(name)
        except (IndexError, KeyError, struct.error, ValueError):
            return []

    def _parse(self) -> list[dict[str, Any]]:
        tables: list[dict[str, Any]] = []
        data = self._data
        position = 0
        while position + 4 <= len(data):
            (length,) = struct.unpack_from("<I", data, position)
            offset_size = 4
            header = position + 4
            if length == 0xFFFFFFFF:
                (length,) = struct.unpack_from("<Q", data, header)
                offset_size = 8
                header += 8
            end = header + length
            fields = struct.unpack_from("<HHIIIIIII", data, header)
            cu_count, local_tu, foreign_tu, buckets, names, abbrev_size, augmentation = fields[2:]
            cursor = header + 32 + ((augmentation + 3) & ~3)
            fmt = "<I" if offset_size == 4 else "<Q"
            units = [struct.unpack_from(fmt, data, cursor + i * offset_size)[0] for i in range(cu_count)]
            cursor += (cu_count + local_tu) * offset_size + foreign_tu * 8
            table = {
                "units": units,
                "buckets": cursor,
                "bucket_count": buckets,
                "hashes": cursor + 4 * buckets,
                "name_count": names,
                "strings": cursor + 4 * buckets + 4 * names,
                "entries": cursor + 4 * buckets + 4 * names + offset_size * names,
                "offset_size": offset_size,
                "fmt": fmt,
            }
            abbrevs_at = table["entries"] + offset_size * names
            table["pool"] = abbrevs_at + abbrev_size
            table["abbrevs"] = self._abbrevs(abbrevs_at, abbrevs_at + abbrev_size)
            tables.append(table)
            position = end
        return tables

    def _abbrevs(self, start: int, end: int) -> dict[int, list[tuple[int, int]]]:
        data = self._data
        abbrevs: dict[int, list[tuple[int, int]]] = {}
        position = start
        while position < end:
            code, position = read_leb128(data, position)
            if code == 0:
                break
            _tag, position = read_leb128(data, position)
            specs: list[tuple[int, int]] = []
            while True:
                index, position = read_leb128(data, position)
                form, position = read_leb128(data, position)
                if index == 0 and form == 0:
                    break
                specs.append((index, form))
            abbrevs[code] = specs
        return abbrevs

    def _lookup(self, name: str) -> list[int]:
        if self._tables is None:
            self._tables = self._parse()
        wanted = _djb_hash(name.lower())
        found: list[int] = []
        for table in self._tables:
            for entry_offset in self._matching_entries(table, name, wanted):
                found.extend(self._entry_units(table, entry_offset))
        return found

    def _matching_entries(self, table: dict[str, Any], name: str, wanted: int) -> Iterator[int]:
        data = self._data
        fmt, offset_size = table["fmt"], table["offset_size"]
        count, buckets = table["name_count"], table["bucket_count"]
        if buckets:
            (first,) = struct.unpack_from("<I", data, table["buckets"] + 4 * (wanted % buckets))
            candidates: Iterator[int] = iter(range(first - 1, count)) if first else iter(())
        else:
            candidates = iter(range(count))
        for index in candidates:
            (hashed,) = struct.unpack_from("<I", data, table["hashes"] + 4 * index)
            if buckets and hashed % buckets != wanted % buckets:
                break
            if hashed != wanted:
                continue
            (string_offset,) = struct.unpack_from(fmt, data, table["strings"] + offset_size * index)
            text = self._dwarf.get_string_from_table(string_offset)
            if text is not None and text.decode("utf-8", "replace") == name:
                (entry,) = struct.unpack_from(fmt, data, table["entries"] + offset_size * index)
                yield table["pool"] + entry

    def _entry_units(self, table: dict[str, Any], position: int) -> list[int]:
        data = self._data
        units: list[int] = []
        while True:
            code, position = read_leb128(data, position)
            if code == 0:
                return units
            unit_index = 0
            for index, form in table["abbrevs"][code]:
                value, position = _read_form(data, position, form, table["offset_size"])
                if index == self._IDX_COMPILE_UNIT:
                    unit_index = value
            if unit_index < len(table["units"]):
                units.append(table["units"][unit_index])


def _read_form(data: bytes, position: int, form: int, offset_size: int) -> tuple[int, int]:
    """One .debug_names attribute value (the forms the DWARF 5 spec allows there)."""
    fixed = {0x0B: 1, 0x05: 2, 0x06: 4, 0x07: 8, 0x11: 1, 0x12: 2, 0x13: 4, 0x14: 8, 0x20: 8, 0x0C: 1}
    if form in fixed:
        size = fixed[form]
        return int.from_bytes(data[position : position + size], "little"), position + size
    if form in (0x0F, 0x15):  # udata, ref_udata
        return read_leb128(data, position)
    if form == 0x19:  # flag_present
        return 1, position
    if form in (0x10, 0x17):  # ref_addr, sec_offset
        return int.from_bytes(data[position : position + offset_size], "little"), position + offset_size
    raise ValueError(f"unexpected form {form:#x} in .debug_names")


def _djb_hash(text: str) -> int:
    """The DJB hash DWARF 5 name tables use (over the case-folded name)."""
    value = 5381
    for byte in text.encode("utf-8"):
        value = (value * 33 + byte) & 0xFFFFFFFF
    return value


# ============================================================ names


_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
# gdb leaves "__int128 unsigned" as DWARF spells it: only these words are respelled.
_INT_RUN = re.compile(r"\b(?:(?:signed|unsigned|short|long|int|char)\b\s*)+")

#: C base types a name may denote even when no unit spells it (size, encoding).
_C_BASE_TYPES: dict[str, tuple[int, Encoding]] = {
    "char": (1, Encoding.SIGNED_CHAR),
    "signed char": (1, Encoding.SIGNED_CHAR),
    "unsigned char": (1, Encoding.UNSIGNED_CHAR),
    "short": (2, Encoding.SIGNED),
    "unsigned short": (2, Encoding.UNSIGNED),
    "int": (4, Encoding.SIGNED),
    "unsigned int": (4, Encoding.UNSIGNED),
    "long": (8, Encoding.SIGNED),
    "unsigned long": (8, Encoding.UNSIGNED),
    "long long": (8, Encoding.SIGNED),
    "unsigned long long": (8, Encoding.UNSIGNED),
    "__int128": (16, Encoding.SIGNED),
    "__int128 unsigned": (16, Encoding.UNSIGNED),
    "_Bool": (1, Encoding.BOOLEAN),
    "bool": (1, Encoding.BOOLEAN),
    "float": (4, Encoding.FLOAT),
    "double": (8, Encoding.FLOAT),
    "long double": (16, Encoding.FLOAT),
    "char16_t": (2, Encoding.UTF),
    "char32_t": (4, Encoding.UTF),
    "wchar_t": (4, Encoding.SIGNED),
}


def _synthesized_base(name: str, cplus: bool) -> Type | None:
    known = _C_BASE_TYPES.get(name)
    if known is None:
        return None
    t = Type.base(name, *known)
    t.cplus = cplus
    return t


def _canonical_int(words: list[str]) -> str:
    """gdb's canonical spelling of an integer type name: "long unsigned int" ->
    "unsigned long", "short int" -> "short", "signed char" stays."""
    unsigned = "unsigned" in words
    signed = "signed" in words
    longs = words.count("long")
    if "char" in words:
        return "unsigned char" if unsigned else "signed char" if signed else "char"
    if longs == 0 and "short" not in words:
        return "unsigned int" if unsigned else "int"
    size = "short" if "short" in words else "long long" if longs >= 2 else "long"
    return f"unsigned {size}" if unsigned else size


def _canonical(name: str) -> str:
    """A type name as gdb's C++ canonicaliser spells it, for the integer words (the
    rest of the name is kept as DWARF wrote it, "__int128 unsigned" included)."""

    def rewrite(match: re.Match[str]) -> str:
        text = match.group(0)
        before = name[: match.start()].rstrip()
        after = name[match.end() :]
        if before.endswith("__int128") or after.startswith("__int128"):
            return text
        trailing = text[len(text.rstrip()) :]
        return _canonical_int(text.split()) + trailing

    return _INT_RUN.sub(rewrite, name).strip()


def _split_template(name: str) -> tuple[str, list[str], str] | None:
    """("Box", ["int"], "") for "Box<int>", splitting top-level template arguments; the
    third part is what follows the closing '>' ("::inner")."""
    start = name.find("<")
    if start < 0:
        return None
    depth = 0
    args: list[str] = []
    current = start + 1
    for position in range(start, len(name)):
        char = name[position]
        if char in "<(":
            depth += 1
        elif char in ">)":
            depth -= 1
            if depth == 0:
                args.append(name[current:position].strip())
                return name[:start], args, name[position + 1 :]
        elif char == "," and depth == 1:
            args.append(name[current:position].strip())
            current = position + 1
    return None


def _parse_type_name(text: str) -> tuple[str | None, str, list[str], list[int | None]] | None:
    """Split a type name into (tag keyword, base name, declarator operations applied in
    order, array dimensions outermost first): "const char * const" -> (None, "char",
    ["const", "*", "const"], [])."""
    text = text.strip()
    dims: list[int | None] = []
    while text.endswith("]"):
        start = text.rfind("[")
        if start < 0:
            return None
        inside = text[start + 1 : -1].strip()
        try:
            dims.insert(0, int(inside, 0) if inside else None)
        except ValueError:
            return None
        text = text[:start].rstrip()
    tokens: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace():
            position += 1
        elif char == "*":
            tokens.append("*")
            position += 1
        elif char == "&":
            double = text.startswith("&&", position)
            tokens.append("&&" if double else "&")
            position += 2 if double else 1
        else:
            end = position
            depth = 0
            while end < len(text):
                c = text[end]
                if c == "<":
                    depth += 1
                elif c == ">":
                    depth -= 1
                elif depth == 0 and (c.isspace() or c in "*&"):
                    break
                end += 1
            tokens.append(text[position:end])
            position = end
    first_operator = next((i for i, token in enumerate(tokens) if token in ("*", "&", "&&")), len(tokens))
    base_tokens = tokens[:first_operator]
    keyword: str | None = None
    base_qualifiers: list[str] = []
    words: list[str] = []
    for token in base_tokens:
        if token in ("const", "volatile"):
            base_qualifiers.append(token)
        elif token in _TAG_KEYWORDS and not words:
            keyword = token
        else:
            words.append(token)
    if not words:
        return None
    operations = base_qualifiers + tokens[first_operator:]
    return keyword, " ".join(words), operations, dims


# ====================================================================== printing


def _split_cv(t: Type) -> tuple[Type, bool, bool]:
    """(t without CONST/VOLATILE wrappers, const, volatile): gdb keeps qualifiers as
    flags on a type, so its printer is written against this view."""
    const = volatile = False
    for _ in range(_MAX_CHAIN):
        if t.kind is TypeKind.CONST:
            const = True
        elif t.kind is TypeKind.VOLATILE:
            volatile = True
        else:
            return t, const, volatile
        t = t.target if t.target is not None else _VOID
    raise TypeReadError(f"qualifier chain deeper than {_MAX_CHAIN} (a DWARF cycle?)")


def _check_typedef(t: Type) -> tuple[Type, bool, bool]:
    """gdb's check_typedef: through typedefs and qualifiers, the qualifiers kept as flags."""
    const = volatile = False
    for _ in range(_MAX_CHAIN):
        t, c, v = _split_cv(t)
        const, volatile = const or c, volatile or v
        if t.kind is not TypeKind.TYPEDEF:
            return t, const, volatile
        t = t.target if t.target is not None else _VOID
    raise TypeReadError(f"typedef chain deeper than {_MAX_CHAIN} (a DWARF cycle?)")


def _modifier(const: bool, volatile: bool, pre_space: bool, post_space: bool) -> str:
    words = [word for word, present in (("const", const), ("volatile", volatile)) if present]
    if not words:
        return ""
    return (" " if pre_space else "") + " ".join(words) + (" " if post_space else "")


def _gdb_name(t: Type) -> str | None:
    """The name gdb's type object carries (derived types have none)."""
    if t.kind is TypeKind.VOID:
        return t.name or "void"
    if t.kind in (TypeKind.BASE, TypeKind.TYPEDEF, TypeKind.ENUM, TypeKind.UNSPECIFIED, *_AGGREGATES):
        return t.name
    return None


#: Kinds gdb prints with a declarator around the name ("*", "[]", "()", "&", "::*").
_DERIVED = frozenset(
    {
        TypeKind.POINTER,
        TypeKind.FUNCTION,
        TypeKind.ARRAY,
        TypeKind.POINTER_TO_MEMBER,
        TypeKind.REFERENCE,
        TypeKind.RVALUE_REFERENCE,
    }
)


class _Printer:
    """gdb 13's C type printer (c-typeprint.c) over lindbg's model.

    ``show`` is gdb's: > 0 expands structs and resolves typedefs (ptype), 0 prints names
    (members), < 0 prints names and ``{...}`` for anonymous aggregates (whatis).
    ``subs`` maps a type's canonical spelling to a template parameter or class typedef
    name, as gdb's local typedef table does inside a class body.
    """

    def __init__(self, cplus: bool, subs: dict[str, str] | None = None) -> None:
        self.cplus = cplus
        self.subs = subs or {}

    def with_subs(self, extra: dict[str, str]) -> _Printer:
        merged = dict(extra)
        for key, value in self.subs.items():
            merged.setdefault(key, value)
        return _Printer(self.cplus, merged)

    # -------------------------------------------------------- c_print_type_1

    def type_text(self, t: Type, varstring: str, show: int, level: int) -> str:
        core, const, volatile = _split_cv(t)
        if show > 0:
            core, c, v = _check_typedef(core)
            const, volatile = const or c, volatile or v
        local = self._local_name(core)
        out: list[str] = []
        if local is not None:
            out.append(_modifier(const, volatile, False, True))
            out.append(local)
            if varstring:
                out.append(" ")
        else:
            out.append(self._base(core, const, volatile, show, level))
            if varstring or ((show > 0 or _gdb_name(core) is None) and core.kind in _DERIVED):
                out.append(" ")
            out.append(self._prefix(core, const, volatile, show, False, bool(varstring)))
        out.append(varstring)
        if local is None:
            out.append(self._suffix(core, show, False, "(" in varstring))
        return "".join(out)

    def _local_name(self, core: Type) -> str | None:
        if not self.subs:
            return None
        return self.subs.get(_substitution_key(core, self.cplus))

    def _name(self, name: str) -> str:
        """print_name_maybe_canonical: canonical integer words, substitutions applied to
        the whole name and to template arguments."""
        canonical = _canonical(name)
        if self.subs:
            if canonical in self.subs:
                return self.subs[canonical]
            parts = _split_template(canonical)
            if parts is not None:
                head, args, tail = parts
                replaced = [self._name(arg) for arg in args]
                return f"{head}<{', '.join(replaced)}>{tail}"
        return canonical

    # -------------------------------------------------------- c_type_print_modifier etc.

    def _prefix(
        self, t: Type, const: bool, volatile: bool, show: int, passed_ptr: bool, post_space: bool
    ) -> str:
        if _gdb_name(t) is not None and show <= 0:
            return ""
        kind = t.kind
        if kind is TypeKind.POINTER:
            target, c, v = _split_cv(t.target or _VOID)
            return (
                self._prefix(target, c, v, show, True, True)
                + "*"
                + _modifier(const, volatile, True, post_space)
            )
        if kind is TypeKind.POINTER_TO_MEMBER:
            target, c, v = _split_cv(t.target or _VOID)
            owner = t.containing
            owner_name = self._name(owner.name) if owner is not None and owner.name else "?"
            if target.strip_typedefs().kind is TypeKind.FUNCTION:
                return self._prefix(target, c, v, show, False, False) + "(" + owner_name + "::*"
            return self._prefix(target, c, v, show, False, False) + owner_name + "::*"
        if kind in (TypeKind.REFERENCE, TypeKind.RVALUE_REFERENCE):
            target, c, v = _split_cv(t.target or _VOID)
            mark = "&" if kind is TypeKind.REFERENCE else "&&"
            return self._prefix(target, c, v, show, True, False) + mark
        if kind is TypeKind.FUNCTION:
            target, c, v = _split_cv(t.target or _VOID)
            return self._prefix(target, c, v, show, False, False) + ("(" if passed_ptr else "")
        if kind is TypeKind.ARRAY:
            target, c, v = _split_cv(t.target or _VOID)
            return self._prefix(target, c, v, show, False, post_space) + ("(" if passed_ptr else "")
        if kind is TypeKind.TYPEDEF:
            target, c, v = _split_cv(t.target or _VOID)
            return self._prefix(target, c, v, show, passed_ptr, False)
        return ""

    def _suffix(self, t: Type, show: int, passed_ptr: bool, demangled_args: bool) -> str:
        core, _c, _v = _split_cv(t)
        if _gdb_name(core) is not None and show <= 0:
            return ""
        kind = core.kind
        if kind is TypeKind.ARRAY:
            length = "" if core.length is None else str(core.length)
            text = (")" if passed_ptr else "") + f"[{length}]"
            return text + self._suffix(core.target or _VOID, show, False, False)
        if kind is TypeKind.POINTER_TO_MEMBER:
            target = core.target or _VOID
            if target.strip_typedefs().kind is TypeKind.FUNCTION:
                return ")" + self._suffix(target, show, False, False)
            return self._suffix(target, show, False, False)
        if kind in (TypeKind.POINTER, TypeKind.REFERENCE, TypeKind.RVALUE_REFERENCE):
            return self._suffix(core.target or _VOID, show, True, False)
        if kind is TypeKind.FUNCTION:
            text = ")" if passed_ptr else ""
            if not demangled_args:
                text += self._args(core)
            return text + self._suffix(core.target or _VOID, show, passed_ptr, False)
        if kind is TypeKind.TYPEDEF:
            return self._suffix(core.target or _VOID, show, passed_ptr, False)
        return ""

    def _args(self, fn: Type) -> str:
        parts = [self.type_text(p, "", 0, 0) for p in fn.parameters]
        if parts and fn.variadic:
            parts.append("...")
        elif not parts and (fn.prototyped or self.cplus):
            parts.append("void")
        return "(" + ", ".join(parts) + ")"

    # -------------------------------------------------------- c_type_print_base_1

    def _base(self, t: Type, const: bool, volatile: bool, show: int, level: int) -> str:
        name = _gdb_name(t)
        if show <= 0 and name is not None:
            keyword = ""
            if not self.cplus:
                keyword = {
                    TypeKind.UNION: "union ",
                    TypeKind.STRUCT: "struct ",
                    TypeKind.CLASS: "class ",
                    TypeKind.ENUM: "enum ",
                }.get(t.kind, "")
            return _modifier(const, volatile, False, True) + keyword + self._name(name)
        core, c, v = _check_typedef(t)
        const, volatile = const or c, volatile or v
        kind = core.kind
        if kind in _DERIVED:
            # The declarator is printed around the name; the base is the innermost type.
            return self._base_of(core.target or _VOID, show, level)
        if kind in _AGGREGATES:
            return self._struct(core, const, volatile, show, level)
        if kind is TypeKind.ENUM:
            return self._enum(core, const, volatile, show)
        if kind is TypeKind.VOID:
            return _modifier(const, volatile, False, True) + (core.name or "void")
        if core.name is not None:
            return _modifier(const, volatile, False, True) + self._name(core.name)
        return f"<invalid type code {kind.value}>"

    def _base_of(self, t: Type, show: int, level: int) -> str:
        core, c, v = _split_cv(t)
        return self._base(core, c, v, show, level)

    def _tag(self, t: Type, keyword: str, const: bool, volatile: bool, show: int) -> tuple[str, bool]:
        """The opening gdb prints for a struct, union or enum (qualifiers, keyword,
        name, ``{...}`` for an anonymous one in whatis), and whether its body follows
        (ptype, or an anonymous type inside one)."""
        out = _modifier(const, volatile, False, True) + keyword
        if t.name is not None:
            out += self._name(t.name)
            if show > 0:
                out += " "
        if show < 0:
            return out + ("{...}" if t.name is None else ""), False
        return out, show > 0 or t.name is None

    def _enum(self, t: Type, const: bool, volatile: bool, show: int) -> str:
        out, body = self._tag(t, "enum class " if t.enum_class else "enum ", const, volatile, show)
        if body:
            if self.cplus and t.target is not None:
                underlying, _c, _v = _check_typedef(t.target)
                if underlying.name is not None:
                    out += f": {_canonical(underlying.name)} "
            items: list[str] = []
            last = 0
            for enumerator in t.enumerators:
                text = enumerator.printed_name
                if enumerator.value != last:
                    text += f" = {enumerator.value}"
                    last = enumerator.value
                last += 1
                items.append(text)
            out += "{" + ", ".join(items) + "}"
        return out

    def _struct(self, t: Type, const: bool, volatile: bool, show: int, level: int) -> str:
        keyword = {TypeKind.UNION: "union ", TypeKind.CLASS: "class "}.get(t.kind, "struct ")
        out, body = self._tag(t, keyword, const, volatile, show)
        if not body:
            return out
        # gdb's local typedef table: a member whose type resolves to the same type as a
        # class typedef or template parameter prints under that name.
        local_subs: dict[str, str] = {}
        for name, target, _access in t.nested_typedefs:
            local_subs.setdefault(_substitution_key(target, self.cplus), name)
        template_subs = {
            _substitution_key(target, self.cplus): name for name, target in reversed(t.template_params)
        }
        for key, name in template_subs.items():
            local_subs.setdefault(key, name)
        inner = self.with_subs(local_subs) if local_subs else self
        if t.template_params:
            args = [f"{name} = {self.type_text(target, '', -1, 0)}" for name, target in t.template_params]
            out += "[with " + ", ".join(args) + "] "
        bases = [m for m in t.members if m.is_base]
        if bases:
            parts = []
            for base in bases:
                via = base.access + (" virtual" if base.is_virtual else "")
                base_name = base.type.strip_typedefs().name
                parts.append(f"{via} {inner._name(base_name) if base_name else '(null)'}")
            out += ": " + ", ".join(parts) + " "
        out += "{\n"
        fields = [m for m in t.members if not m.is_base]
        methods = [m for m in t.methods if not m.artificial]
        indent = " " * (level + 4)
        if not fields and not bases and not t.methods and not t.nested_typedefs:
            out += indent + ("<incomplete type>" if t.declaration else "<no data fields>") + "\n"
        section = ""
        need_labels = self._need_access_labels(t)
        for m in fields:
            if m.artificial:
                continue
            if need_labels:
                section, label = _access_label(section, m.access, level)
                out += label
            out += indent + ("static " if m.is_static else "")
            out += inner.type_text(m.type, m.name or "", show - 1, level + 4)
            if not m.is_static and m.bit_size is not None:
                out += f" : {m.bit_size}"
            out += ";\n"
        if methods and section:
            out += "\n"
        for method in self._grouped(methods):
            section, label = _access_label(section, method.access, level)
            out += label + indent
            if method.is_virtual:
                out += "virtual "
            elif method.is_static:
                out += "static "
            if not method.is_constructor and not method.name.startswith("operator "):
                out += inner.type_text(method.type.target or _VOID, "", -1, 0) + " "
            out += method.name + inner._method_args(method) + ";\n"
        if t.nested_typedefs:
            if fields or bases or t.methods:
                out += "\n"
            semi_local = self.with_subs(template_subs)
            for name, target, access in t.nested_typedefs:
                if need_labels:
                    section, label = _access_label(section, access, level)
                    out += label
                out += indent + "typedef "
                out += semi_local.type_text(target.target or _VOID, name, show - 1, level + 4) + ";\n"
        return out + " " * level + "}"

    @staticmethod
    def _grouped(methods: list[Method]) -> list[Method]:
        """gdb lists methods by name, overloads together, names in first-seen order."""
        order: dict[str, list[Method]] = {}
        for method in methods:
            order.setdefault(method.name, []).append(method)
        return [method for group in order.values() for method in group]

    def _method_args(self, method: Method) -> str:
        parts = [self.type_text(p, "", 0, 0) for p in method.type.parameters]
        if method.type.variadic:
            parts.append("...")
        elif not parts:
            parts.append("void")
        text = "(" + ", ".join(parts) + ")"
        if method.is_const:
            text += " const"
        if method.is_volatile:
            text += " volatile"
        return text

    @staticmethod
    def _need_access_labels(t: Type) -> bool:
        fields = [m for m in t.members if not m.is_base]
        accesses = (
            [m.access for m in fields]
            + [m.access for m in t.methods]
            + [a for _n, _t, a in t.nested_typedefs]
        )
        if t.kind is TypeKind.CLASS:
            return any(access != "private" for access in accesses)
        return any(access != "public" for access in accesses)


def _substitution_key(t: Type, cplus: bool) -> str:
    """How gdb's typedef table compares types (types_equal after check_typedef): by the
    resolved type's spelling."""
    core, _const, _volatile = _check_typedef(t)
    return _Printer(cplus).type_text(core, "", -1, 0)


def _access_label(section: str, access: str, level: int) -> tuple[str, str]:
    """gdb's output_access_specifier: a label line when the section changes."""
    if access == section:
        return section, ""
    return access, " " * (level + 2) + f"{access}:\n"


# ====================================================================== floats


@dataclass(frozen=True, slots=True)
class FloatFormat:
    """An IEEE-like binary floating-point layout (little-endian in memory)."""

    exponent_bits: int
    mantissa_bits: int  # stored mantissa bits (x87: 64, the integer bit included)
    explicit_integer_bit: bool
    size: int  # bytes of storage (x87: 16 for long double, 10 significant)

    @property
    def precision(self) -> int:
        """Bits of precision (the implicit bit counted)."""
        return self.mantissa_bits + (0 if self.explicit_integer_bit else 1)

    @property
    def decimal_digits(self) -> int:
        """gdb's %g precision: ceil(1 + precision * log10(2)) (9, 17, 21, 36)."""
        return math.ceil(1 + self.precision * 0.30102999566398119521)


FLOAT16 = FloatFormat(5, 10, False, 2)
FLOAT32 = FloatFormat(8, 23, False, 4)
FLOAT64 = FloatFormat(11, 52, False, 8)
X87_EXTENDED = FloatFormat(15, 64, True, 16)
FLOAT128 = FloatFormat(15, 112, False, 16)


def float_format(t: Type) -> FloatFormat | None:
    """The layout of a FLOAT base type (a COMPLEX_FLOAT's parts: half its size), by size
    and, for 16 bytes, by name: "long double" is x87's 80-bit format on x86-64,
    ``_Float128``/``__float128`` IEEE binary128."""
    core = t.strip_typedefs()
    size = core.size
    if size is None:
        return None
    if core.encoding is Encoding.COMPLEX_FLOAT:
        size //= 2
    name = core.name or ""
    if size == 16 or size in (10, 12):
        return FLOAT128 if "128" in name else X87_EXTENDED
    return {2: FLOAT16, 4: FLOAT32, 8: FLOAT64}.get(size)
