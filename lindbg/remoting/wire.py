"""Values as they cross a debugging server's link.

The session protocol carries msgpack values (``lindbg.protocols.session``). What the
API returns and what event callbacks receive are richer: handles (``Breakpoint``,
``Thread``, ``Module``, ``Frame`` ...), dataclasses, enums, maps keyed by numbers.
``to_wire`` flattens them on the server: an object becomes a map of its public
plain fields tagged ``"$": ClassName`` (plus ``"text"``, its ``str()``, when the
class defines one); a map with keys that are not strings becomes a tagged list of
pairs. ``from_wire`` rebuilds them on the client as ``RemoteHandle`` snapshots:
the same attribute names, read-only, taken when the server answered.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

#: Deeper than any handle nests (a process's threads); a cycle stops here.
_MAX_DEPTH = 8
_PLAIN = (bool, int, float, str, bytes, type(None))
#: The exact types (not subclasses such as IntEnum) that cross as they are.
_PLAIN_TYPES = frozenset(_PLAIN)


def to_wire(value: Any, depth: int = 0) -> Any:
    """``value`` as msgpack can carry it (see the module's comment)."""
    if type(value) in _PLAIN_TYPES:
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if depth >= _MAX_DEPTH:
        return repr(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [to_wire(item, depth + 1) for item in value]
    if isinstance(value, dict):
        if all(isinstance(key, str) for key in value):
            return {key: to_wire(item, depth + 1) for key, item in value.items()}
        return {
            "$": "dict",
            "items": [[to_wire(k, depth + 1), to_wire(v, depth + 1)] for k, v in value.items()],
        }
    return _object_to_wire(value, depth)


def _object_to_wire(value: Any, depth: int) -> dict[str, Any]:
    cls = type(value)
    shape = _SHAPES.get(cls)
    if shape is None:
        shape = _SHAPES[cls] = _Shape(cls)
    fields: dict[str, Any] = {"$": shape.name}
    for name in shape.names(value):
        try:
            item = getattr(value, name)
        except Exception:  # a property that cannot answer now (a gone target)
            continue
        if type(item) in _PLAIN_TYPES:
            fields[name] = item
        elif not callable(item):
            fields[name] = to_wire(item, depth + 1)
    if shape.has_text:
        fields["text"] = str(value)
    return fields


class _Shape:
    """What ``to_wire`` takes from objects of one class, worked out once per class
    (an event's handle crosses the wire on every breakpoint hit)."""

    __slots__ = ("fixed", "has_text", "name", "properties", "uses_dict")

    def __init__(self, cls: type) -> None:
        self.name = cls.__name__
        fixed: list[str] = []
        if dataclasses.is_dataclass(cls):
            fixed = [f.name for f in dataclasses.fields(cls)]
            self.uses_dict = False
        else:
            for klass in cls.__mro__:
                fixed += [n for n in getattr(klass, "__slots__", ()) if n not in fixed]
            self.uses_dict = True
        self.fixed = tuple(n for n in fixed if not n.startswith("_"))
        # properties are part of a handle's face (Breakpoint.enabled, Frame.location)
        self.properties = tuple(
            n for n, attr in vars(cls).items() if isinstance(attr, property) and not n.startswith("_")
        )
        self.has_text = getattr(cls, "__str__", None) is not object.__str__ and not dataclasses.is_dataclass(
            cls
        )

    def names(self, value: Any) -> list[str]:
        names = list(self.fixed)
        if self.uses_dict:
            names += [n for n in getattr(value, "__dict__", ()) if not n.startswith("_") and n not in names]
        names += [n for n in self.properties if n not in names]
        return names


_SHAPES: dict[type, _Shape] = {}


def from_wire(value: Any) -> Any:
    """The client's view of a ``to_wire`` value."""
    if isinstance(value, list):
        return [from_wire(item) for item in value]
    if isinstance(value, dict):
        kind = value.get("$")
        if kind == "dict":
            return {from_wire(k): from_wire(v) for k, v in value.get("items", [])}
        fields = {key: from_wire(item) for key, item in value.items() if key != "$"}
        if isinstance(kind, str):
            return RemoteHandle(kind, fields)
        return fields
    return value


class RemoteHandle:
    """A snapshot of a server-side object (a breakpoint, a thread, a frame ...): its
    fields as attributes, ``kind`` its class name, ``str()`` the server's ``str()``."""

    __slots__ = ("_fields", "kind")

    def __init__(self, kind: str, fields: dict[str, Any]) -> None:
        self.kind = kind
        self._fields = fields

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(f"a remote {self.kind} has no attribute {name!r}") from None

    def fields(self) -> dict[str, Any]:
        """Every field, by name."""
        return dict(self._fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteHandle) and (self.kind, self._fields) == (other.kind, other._fields)

    def __hash__(self) -> int:
        return hash((self.kind, self._fields.get("id"), self._fields.get("pid"), self._fields.get("tid")))

    def __str__(self) -> str:
        text = self._fields.get("text")
        return text if isinstance(text, str) else repr(self)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self._fields.items() if k != "text" and _short(v))
        return f"<remote {self.kind} {shown}>"


def _short(value: Any) -> bool:
    return isinstance(value, bool | int | str) and len(str(value)) < 40
