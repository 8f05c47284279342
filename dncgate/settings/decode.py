"""Turn one TOML table (plus environment overrides) into its ``Table`` struct, key by key.

Each key is converted on its own, so one table with three wrong keys gives three problems. A
value from the environment is text: it is converted by the same field type, leniently
(``msgspec.convert(strict=False)``: ``"4700"`` is a port, ``"true"`` a bool); a list is its
comma-separated items. Values from the TOML file are converted strictly, except text, which is
read as the environment's is (as the file has always been read).
"""

from __future__ import annotations

import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from dncgate.settings.problems import Key, Problems

T = TypeVar("T", bound=msgspec.Struct)
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}
_NAMES = {int: "int", float: "float", bool: "bool", str: "str"}


def decode(cls: type[T], value: object, key: Key, problems: Problems) -> T | None:
    """``value`` as ``cls``, or None after adding every problem found to ``problems``."""
    if not isinstance(value, dict):
        problems.add(key, "expected a table")
        return None
    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    values: dict[str, Any] = {}
    failed = False
    for name, raw in value.items():
        known = fields.get(name)
        if known is None:
            problems.add((*key, name), "unknown key")
            failed = True
            continue
        ok, converted = _field(known.type, raw, (*key, name), problems)
        failed = failed or not ok
        values[known.name] = converted
    return None if failed else cls(**values)


def _field(kind: Any, raw: object, key: Key, problems: Problems) -> tuple[bool, Any]:
    base, meta = _unwrap(kind)
    if isinstance(base, type) and issubclass(base, msgspec.Struct):
        table = decode(base, raw, key, problems)
        return table is not None, table
    args = typing.get_args(base)
    if typing.get_origin(base) is dict and isinstance(args[1], type) and issubclass(args[1], msgspec.Struct):
        if not isinstance(raw, dict):
            problems.add(key, "expected a table")
            return False, None
        entries = {name: decode(args[1], entry, (*key, name), problems) for name, entry in raw.items()}
        return all(e is not None for e in entries.values()), entries
    try:
        if isinstance(raw, str) and not raw and _optional(kind) and base is not str:
            return True, None  # an empty path: none (TOML has no null)
        if isinstance(raw, str) and base is not str:
            return True, msgspec.convert(_from_text(raw, base), kind, strict=False, dec_hook=_path)
        return True, msgspec.convert(raw, kind, dec_hook=_path)
    except msgspec.ValidationError as exc:
        problems.add(key, _problem(str(exc), raw, base, meta))
        return False, None


def _unwrap(kind: Any) -> tuple[Any, msgspec.Meta | None]:
    """The field's type without its bounds (and ``X | None`` read as ``X``), and its bounds."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in {typing.Union, types.UnionType} and len(args) == 2 and type(None) in args:
        return _unwrap(next(a for a in args if a is not type(None)))
    if typing.get_origin(kind) is typing.Annotated:
        base, *extras = typing.get_args(kind)
        return base, next((m for m in extras if isinstance(m, msgspec.Meta)), None)
    return kind, None


def _optional(kind: Any) -> bool:
    return typing.get_origin(kind) in {typing.Union, types.UnionType} and type(None) in typing.get_args(kind)


def _from_text(text: str, base: Any) -> object:
    """Text as the field's type would read it: a list from its comma-separated items, yes/no as bools."""
    if typing.get_origin(base) in {tuple, list}:
        return [item.strip() for item in text.split(",") if item.strip()]
    if base is bool and text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    return text


def _path(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError


def _problem(message: str, raw: object, base: Any, meta: msgspec.Meta | None) -> str:
    """What is wrong, said as an operator would like to read it (msgspec's message as the fallback)."""
    if message.startswith("Invalid enum value"):
        is_enum = isinstance(base, type) and issubclass(base, Enum)
        choices = [e.value for e in base] if is_enum else typing.get_args(base)
        return f"{raw!r} is not one of {', '.join(str(c) for c in choices)}"
    if meta is not None and ", got `" not in message:
        if meta.description:
            return f"{raw!r} is not {meta.description}"
        return _bounds(meta)
    if isinstance(raw, str) and base in {int, float, bool}:
        what = {int: "a whole number", float: "a number", bool: "true or false"}[base]
        return f"{raw!r} is not {what}"
    if typing.get_origin(base) in {tuple, list}:
        return "expected a list of strings"
    if base in _NAMES:
        return f"expected {_NAMES[base]}, got {raw!r}"
    return message


def _bounds(meta: msgspec.Meta) -> str:
    low = meta.ge if meta.ge is not None else meta.gt
    if low is not None and meta.le is not None:
        if meta.ge is not None:
            return f"must be between {low:g} and {meta.le:g}"
        return f"must be above {low:g} and at most {meta.le:g}"
    if low is not None:
        return f"must be at least {low:g}" if meta.ge is not None else f"must be above {low:g}"
    return f"must be at most {meta.le:g}"
