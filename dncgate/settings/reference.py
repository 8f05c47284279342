"""The ``dncgate.toml`` sample and the settings reference, both generated from the schema.

Every key of every table (``dncgate.settings.schema``, ``dncgate.settings.enforcement``) is listed
with its TOML type, its default and its meaning. The meaning is the schema's own comment on the
field (the comment lines above it and the comment on its line), read from the schema's source, so
a key is documented where it is defined; a table's meaning is its class docstring. ``sample()`` is
shipped as ``dncgate/share/dncgate.toml`` (``dncgate config sample``), ``reference()`` as
``docs/settings.md`` (``dncgate config reference``); tests check both are the generators' output.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import textwrap
import tokenize
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

import msgspec

from dncgate.settings.load import DEFAULT_TENANT, ENV_PREFIX, TABLES
from dncgate.settings.schema import Table, TenantSettings

NOT_SET = "(not set)"
# a table of tables: the placeholder of its entry's name
_TEMPLATES = {"tenants": "NAME", "keys": "ID", "ports": "NUMBER", "rules": "RULE"}


@dataclass(frozen=True, slots=True)
class Key:
    """One key of one table: its TOML name, type, default (TOML text, None when it has none) and meaning."""

    name: str
    type: str
    default: str | None
    meaning: str


@dataclass(frozen=True, slots=True)
class Section:
    """One TOML table: its path (``tenants.NAME.hours``), what it is, its keys; ``loads`` is False
    for a table whose defaults are no working entry (``[api.keys.ID]`` needs a real key)."""

    path: str
    doc: str
    keys: tuple[Key, ...]
    loads: bool = True


def sections() -> list[Section]:
    """Every table of ``dncgate.toml``, in the order the sample and the reference list them."""
    found: list[Section] = []
    for name, cls in TABLES.items():
        found += _sections(name, cls, loads=True)
    found += _sections(f"tenants.{_TEMPLATES['tenants']}", TenantSettings, loads=True)
    return found


def _sections(path: str, cls: type[Table], *, loads: bool) -> Iterator[Section]:
    defaults = cls()
    keys: list[Key] = []
    nested: list[tuple[str, type[Table], bool]] = []
    for field in msgspec.structs.fields(cls):
        base = _unwrap(field.type)[0]
        if _is_table(base):
            nested.append((f"{path}.{field.encode_name}", base, loads))
            continue
        entry = _entry_table(base)
        if entry is not None:
            nested.append((f"{path}.{field.encode_name}.{_TEMPLATES[field.encode_name]}", entry, False))
            continue
        value = getattr(defaults, field.name)
        keys.append(Key(field.encode_name, _type(field.type), _toml(value), _meaning(cls, field.name)))
    yield Section(path, _doc(cls), tuple(keys), loads)
    for sub_path, sub_cls, sub_loads in nested:
        yield from _sections(sub_path, sub_cls, loads=sub_loads)


def sample() -> str:
    """``dncgate.toml`` with every key at its default, commented out: a ``#key = value`` line is the
    default (remove the ``#`` to change it); ``# key = (not set)`` has no value by default."""
    lines = [
        "# dncgate.toml: every key of dncgate's configuration with its default, commented out.",
        "# Generated from the settings schema (`dncgate config sample`); docs/settings.md is the reference.",
        "# A line '#key = value' is the default: remove its '#' to change it. A line '# key = (not set)'",
        "# has no value until you give one. Every key can also be set from the environment:",
        f"# {ENV_PREFIX}TABLE__KEY=value (e.g. {ENV_PREFIX}STORE__BACKEND=redis). dncgate reads --config FILE,",
        "# else $DNCGATE_CONFIG, else /etc/dncgate/dncgate.toml; dncgate serve re-reads it on SIGHUP.",
    ]
    for section in sections():
        live = section.loads
        header = section.path.replace(f".{_TEMPLATES['tenants']}", f".{DEFAULT_TENANT}", 1)
        lines += ["", *(f"# {line}" for line in _wrap(section.doc))]
        lines.append(f"#[{header}]" if live else f"# [{header}]  (one table per entry)")
        for key in section.keys:
            lines += [f"# {line}" for line in _wrap(key.meaning)]
            if key.default is None:
                lines.append(f"# {key.name} = {NOT_SET}")
            else:
                lines.append(f"#{key.name} = {key.default}" if live else f"# {key.name} = {key.default}")
    return "\n".join(lines) + "\n"


def reference() -> str:
    """The settings reference (Markdown): every table, and every key's type, default and meaning."""
    lines = [
        "# Settings reference",
        "",
        "Every key of `dncgate.toml`, generated from the settings schema (`dncgate/settings/`) by",
        "`dncgate config reference`; `tests/core/test_settings_reference.py` checks this page is its output.",
        "`dncgate config sample` prints the same keys as a commented `dncgate.toml` (shipped as",
        "`dncgate/share/dncgate.toml`). Any key can be set from the environment as",
        f"`{ENV_PREFIX}TABLE__KEY=value` (`{ENV_PREFIX}TENANTS__ACME__MODE=monitor`; a list is its",
        "comma-separated items). `NAME` and `ID` stand for a tenant's and an API key's name.",
    ]
    for section in sections():
        lines += ["", f"## [{section.path}]", "", section.doc, "",
                  "| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for key in section.keys:
            default = NOT_SET if key.default is None else f"`{key.default}`"
            lines.append(f"| `{key.name}` | {_cell(key.type)} | {_cell(default)} | {_cell(key.meaning)} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, 98, break_on_hyphens=False) or [""]


def _doc(cls: type) -> str:
    return _plain(" ".join(inspect.cleandoc(cls.__doc__ or "").split()))


def _plain(text: str) -> str:
    """reStructuredText's literals (double backquotes) as Markdown's and plain text's (one)."""
    return text.replace("``", "`")


def _meaning(cls: type, name: str) -> str:
    """The field's comment in the nearest class of ``cls``'s MRO that comments it ("" when none does)."""
    for owner in cls.__mro__:
        if isinstance(owner, type) and issubclass(owner, Table) and owner is not Table:
            comment = _field_comments(owner).get(name)
            if comment:
                return comment
    return ""


@cache
def _field_comments(cls: type) -> dict[str, str]:
    """Field name -> its comment lines (above it, then on its line) joined, in ``cls``'s own body."""
    text = textwrap.dedent(inspect.getsource(cls))
    comments = {token.start[0]: token.string.lstrip("#").strip()
                for token in tokenize.generate_tokens(io.StringIO(text).readline) if token.type == tokenize.COMMENT}
    lines = text.splitlines()
    body = typing.cast(ast.ClassDef, ast.parse(text).body[0]).body
    found: dict[str, str] = {}
    for node in body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above: list[str] = []
        line = node.lineno - 1
        while line >= 1 and lines[line - 1].lstrip().startswith("#"):
            above.insert(0, comments[line])
            line -= 1
        own = [comments[n] for n in range(node.lineno, (node.end_lineno or node.lineno) + 1) if n in comments]
        found[node.target.id] = _plain(" ".join(part for part in (*above, *own) if part))
    return found


def _unwrap(kind: Any) -> tuple[Any, list[msgspec.Meta], bool]:
    """The type without ``Annotated`` and ``| None``; its bounds; whether it may be None."""
    metas: list[msgspec.Meta] = []
    optional = False
    while True:
        args = typing.get_args(kind)
        if typing.get_origin(kind) is typing.Annotated:
            kind = args[0]
            metas += [m for m in args[1:] if isinstance(m, msgspec.Meta)]
        elif typing.get_origin(kind) in {typing.Union, types.UnionType} and type(None) in args and len(args) == 2:
            kind, optional = next(a for a in args if a is not type(None)), True
        else:
            return kind, metas, optional


def _is_table(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, Table)


def _entry_table(kind: Any) -> type[Table] | None:
    """The entry's table of a table of tables (``dict[str, ApiKeySettings]``), else None."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) is dict and _is_table(args[1]):
        return typing.cast(type[Table], args[1])
    return None


def _type(kind: Any) -> str:
    base, metas, optional = _unwrap(kind)
    text = _type_name(base)
    bounds = [_bounds(meta) for meta in metas if _bounds(meta)]
    if bounds:
        text += f", {bounds[0]}"
    return f"{text}, optional" if optional else text


def _type_name(base: Any) -> str:
    if typing.get_origin(base) is typing.Literal:
        return " or ".join(json.dumps(v) for v in typing.get_args(base))
    if isinstance(base, type) and issubclass(base, Enum):
        return " or ".join(json.dumps(e.value) for e in base)
    if typing.get_origin(base) in {tuple, list}:
        return "list of strings"
    if typing.get_origin(base) is dict:
        return "table of strings or lists of strings"
    names = {bool: "boolean", int: "integer", float: "number (decimal)", str: "string", Path: "path (string)"}
    return names.get(base, str(base))


def _bounds(meta: msgspec.Meta) -> str:
    low = meta.ge if meta.ge is not None else meta.gt
    if low is not None and meta.le is not None:
        return f"{low:g} to {meta.le:g}"
    if low is not None:
        return f"at least {low:g}"
    return f"at most {meta.le:g}" if meta.le is not None else ""


def _toml(value: object) -> str | None:
    """A default as TOML text (None: no value, TOML has no null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return json.dumps(value.value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(item) or '""' for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for the default {value!r}")
