"""``Derived``: a read-only attribute computed from its object, so that a class with many attributes
of one form (a header by name, a key by suffix) states them as a table of one-line rows instead of
a property each. ``Named``: the same, for attributes whose own name is the key they read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar, overload

Obj = TypeVar("Obj")
V = TypeVar("V")


class Derived(Generic[Obj, V]):
    """``name = Derived(read)`` in a class body: ``obj.name`` is ``read(obj)``, on the class the descriptor."""

    __slots__ = ("read",)

    def __init__(self, read: Callable[[Obj], V]) -> None:
        self.read = read

    @overload
    def __get__(self, obj: None, owner: type[Obj]) -> Self: ...

    @overload
    def __get__(self, obj: Obj, owner: type[Obj]) -> V: ...

    def __get__(self, obj: Obj | None, owner: type[Obj]) -> Self | V:
        return self if obj is None else self.read(obj)


class Named(Derived[Obj, V]):
    """``name = Named(read)`` in a class body: ``obj.name`` is ``read(obj, "name")``, the attribute's own name."""

    __slots__ = ("name",)

    def __init__(self, read: Callable[[Obj, str], V]) -> None:
        super().__init__(lambda obj: read(obj, self.name))
        self.name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name
