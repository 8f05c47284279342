"""Regulator export: JSON lines and CSV, each with a manifest that proves the file complete."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from dncgate.consent.export import ExportError, ExportManifest, export, manifest_path, verify
from dncgate.consent.model import Action
from tests.consent.conftest import Backend, event


async def _fill(backend: Backend) -> None:
    await backend.ledger.append(event(Action.GRANT, categories=("finance", "travel")))
    await backend.ledger.append(event(Action.DECLINE, "+8613900139000", categories=("food",)))
    await backend.ledger.append(event(Action.REVOKE, categories=("travel",)))
    await backend.ledger.append(event(Action.GRANT, tenant="globex"))  # another tenant: not exported


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_export_verifies_and_holds_only_the_tenant(backend: Backend, tmp_path: Path, fmt: str) -> None:
    await _fill(backend)
    path = tmp_path / f"acme.{fmt}"
    manifest = await export(backend.ledger, "acme", fmt, path)
    assert manifest.records == 3
    assert (manifest.anchor_seq, manifest.head_seq) == (0, 3)
    assert ExportManifest.from_json(manifest_path(path).read_text()) == manifest
    assert verify(path, manifest) == 3
    text = path.read_text()
    assert "globex" not in text
    assert "template:web-optin-v3" in text


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_a_dropped_or_altered_record_is_detected(backend: Backend, tmp_path: Path, fmt: str) -> None:
    await _fill(backend)
    path = tmp_path / f"acme.{fmt}"
    manifest = await export(backend.ledger, "acme", fmt, path)
    lines = path.read_text().splitlines(keepends=True)
    dropped = tmp_path / f"dropped.{fmt}"
    dropped.write_text("".join(lines[:-1]))
    with pytest.raises(ExportError, match="SHA-256"):
        verify(dropped, manifest)
    # Even with a manifest rewritten to match the shorter file, the chain shows the gap.
    import hashlib

    forged = ExportManifest(**{**json.loads(manifest.to_json()),
                         "file_sha256": hashlib.sha256(dropped.read_bytes()).hexdigest()})
    with pytest.raises(ExportError, match="records missing"):
        verify(dropped, forged)
    altered = tmp_path / f"altered.{fmt}"
    altered.write_text(path.read_text().replace("finance", "health", 1))
    forged = ExportManifest(**{**json.loads(manifest.to_json()),
                         "file_sha256": hashlib.sha256(altered.read_bytes()).hexdigest()})
    with pytest.raises(ExportError, match="does not match its content"):
        verify(altered, forged)


async def test_export_after_a_purge_starts_at_the_anchor(backend: Backend, tmp_path: Path) -> None:
    first = await backend.ledger.append(event(Action.GRANT))
    backend.clock.advance(timedelta(days=200))
    await backend.ledger.append(event(Action.REVOKE))
    await backend.ledger.purge("acme", first.recorded_at + timedelta(seconds=1), by="ops")  # type: ignore[operator]
    path = tmp_path / "acme.jsonl"
    manifest = await export(backend.ledger, "acme", "jsonl", path)
    assert (manifest.anchor_seq, manifest.anchor_hash) == (1, first.hash)
    assert verify(path, manifest) == 2  # the revoke and the purge record
