"""A sequence that passes indexing and iteration to the sequence it holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar, overload

_T = TypeVar("_T")
_S = TypeVar("_S")
_T_co = TypeVar("_T_co", covariant=True)
_S_co = TypeVar("_S_co", covariant=True)


class Sliceable(Protocol[_T_co, _S_co]):
    """A sequence of ``_T_co`` whose slice is an ``_S_co`` (a list's is a list, an array's an array)."""

    @overload
    def __getitem__(self, index: int, /) -> _T_co: ...

    @overload
    def __getitem__(self, index: slice, /) -> _S_co: ...

    def __iter__(self) -> Iterator[_T_co]: ...


class Held(Generic[_T, _S]):
    """``self[i]``, ``self[a:b]`` and ``iter(self)`` are those of ``_held()``: no copy, no per-item code."""

    __slots__ = ()

    def _held(self) -> Sliceable[_T, _S]:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> _T: ...

    @overload
    def __getitem__(self, index: slice) -> _S: ...

    def __getitem__(self, index: int | slice) -> _T | _S:
        return self._held()[index]

    def __iter__(self) -> Iterator[_T]:
        return iter(self._held())
