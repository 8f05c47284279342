"""The shipped ``dncgate.toml`` sample and ``docs/settings.md`` are the generators' output, and the
sample names every key of the schema at its default."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path

import msgspec
import pytest

from dncgate.cli import main
from dncgate.install import shared
from dncgate.settings import Settings, TenantSettings, load
from dncgate.settings.load import TABLES
from dncgate.settings.reference import NOT_SET, reference, sample, sections

REPO = Path(__file__).resolve().parents[2]
_KEY_LINE = re.compile(r"^#(\[|[a-z_0-9]+ = )")  # a default: uncommented by removing its '#'


def uncommented(text: str) -> str:
    return "\n".join(line[1:] if _KEY_LINE.match(line) else line for line in text.splitlines()) + "\n"


def test_the_shipped_sample_is_the_generators_output() -> None:
    assert shared("dncgate.toml").read_text(encoding="utf-8") == sample(), (
        "regenerate: dncgate config sample > dncgate/share/dncgate.toml")


def test_the_reference_page_is_the_generators_output() -> None:
    assert (REPO / "docs/settings.md").read_text(encoding="utf-8") == reference(), (
        "regenerate: dncgate config reference > docs/settings.md")
    assert "docs/settings.md" in (REPO / "README.md").read_text(encoding="utf-8")


def test_the_sample_uncommented_loads_as_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "dncgate.toml"
    path.write_text(uncommented(sample()), encoding="utf-8")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert set(data) == {*TABLES, "tenants"}
    loaded, defaults = load(path, environ={}), load(None, environ={})
    for field in fields(Settings):
        if field.name not in {"source", "path"}:
            assert getattr(loaded, field.name) == getattr(defaults, field.name), field.name


def test_the_sample_names_every_key_of_every_table() -> None:
    text = sample()
    by_table: dict[str, set[str]] = {}
    table = ""
    for line in text.splitlines():
        header = re.match(r"^# ?\[([A-Za-z0-9_.]+)\]", line)  # not a comment line that starts with ["tenant:NAME"]
        if header:
            table = header.group(1)
            continue
        key = re.match(r"^# ?([a-z_0-9]+) = (.+)$", line)
        if key:
            by_table.setdefault(table, set()).add(key.group(1))
    assert by_table["tenants.default"] == {f.encode_name for f in msgspec.structs.fields(TenantSettings)} - {
        "hours", "enforcement"}
    for name, cls in TABLES.items():
        keys = {f.encode_name for f in msgspec.structs.fields(cls)}
        nested = {k for k in keys if any(t.startswith(f"{name}.{k}") for t in by_table)}
        assert by_table[name] == keys - nested, name
    assert f"# host = {NOT_SET}" in text  # [ami] host has no default of its own here (the feed's)


def test_every_key_and_table_says_what_it_is() -> None:
    for section in sections():
        assert section.doc, section.path
        for key in section.keys:
            assert key.meaning, f"{section.path}.{key.name}: no comment in the schema"
            assert key.type, f"{section.path}.{key.name}"


def test_config_sample_and_reference_print_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "sample"], system_config="/nonexistent") == 0
    assert capsys.readouterr().out == sample()
    assert main(["config", "reference"], system_config="/nonexistent") == 0
    assert capsys.readouterr().out == reference()
