"""The manifest a list source publishes: which snapshot and deltas exist, with SHA-256 and size.

``manifest.json``, optionally signed: ``manifest.json.sig`` holds the base64 Ed25519 signature
of the manifest's exact bytes. Nothing a manifest names is applied before its digest matched, and
when a public key is configured an unsigned or badly signed manifest is refused.

.. code-block:: json

    {"format_version": 1, "list": "national", "generated_at": "2026-11-27T02:00:00+00:00",
     "snapshot": {"sequence": 120, "file": "snapshot-120.txt.gz", "sha256": "...", "size": 1234,
                  "format": "lines"},
     "deltas": [{"sequence": 121, "file": "delta-121.csv.gz", "sha256": "...", "size": 56,
                 "format": "csv"}]}

A snapshot's sequence is that of the last delta it includes; deltas apply on top in order.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dncgate.errors import ListError
from dncgate.lists.formats import FORMATS

MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ManifestError(ListError):
    """A manifest that cannot be used: malformed, for another list, or badly signed."""


class IntegrityError(ListError):
    """A file whose size or SHA-256 differs from what the manifest says."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    sequence: int
    file: str
    sha256: str
    size: int
    format: str = "auto"

    def as_dict(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "file": self.file, "sha256": self.sha256, "size": self.size,
                "format": self.format}


@dataclass(frozen=True, slots=True)
class ListManifest:
    """What a list source publishes: the snapshot and deltas of one list, each with digest and size."""

    list_name: str
    generated_at: str
    snapshot: FileEntry | None
    deltas: tuple[FileEntry, ...]

    @property
    def latest_sequence(self) -> int:
        sequences = [d.sequence for d in self.deltas] + ([self.snapshot.sequence] if self.snapshot else [])
        return max(sequences, default=0)

    def to_bytes(self) -> bytes:
        data = {"format_version": 1, "list": self.list_name, "generated_at": self.generated_at,
                "snapshot": self.snapshot.as_dict() if self.snapshot else None,
                "deltas": [d.as_dict() for d in self.deltas]}
        return json.dumps(data, indent=1).encode() + b"\n"


def parse_manifest(raw: bytes, origin: str) -> ListManifest:
    """Parse and check a manifest. Raises ``ManifestError`` naming ``origin`` and the problem."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{origin}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{origin}: manifest is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format_version") != 1:
        raise ManifestError(f"{origin}: not a version 1 manifest (format_version)")
    list_name = data.get("list")
    if not isinstance(list_name, str):
        raise ManifestError(f"{origin}: manifest has no 'list'")
    raw_deltas = data.get("deltas", [])
    if not isinstance(raw_deltas, list):
        raise ManifestError(f"{origin}: 'deltas' is not a list")
    snapshot = None if data.get("snapshot") is None else _entry(data["snapshot"], origin, "snapshot")
    deltas = tuple(sorted((_entry(d, origin, f"deltas[{i}]") for i, d in enumerate(raw_deltas)),
                          key=lambda d: d.sequence))
    sequences = [d.sequence for d in deltas]
    if len(set(sequences)) != len(sequences):
        raise ManifestError(f"{origin}: two deltas share a sequence number")
    return ListManifest(list_name, str(data.get("generated_at", "")), snapshot, deltas)


def _entry(value: object, origin: str, where: str) -> FileEntry:
    if not isinstance(value, dict):
        raise ManifestError(f"{origin}: {where} is not an object")
    try:
        entry = FileEntry(int(value["sequence"]), str(value["file"]), str(value["sha256"]).lower(),
                          int(value["size"]), str(value.get("format", "auto")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"{origin}: {where}: missing or bad field {exc}") from None
    if not _FILE_NAME.fullmatch(entry.file) or ".." in entry.file:
        raise ManifestError(f"{origin}: {where}: file name {entry.file!r} is not a plain name")
    if not _SHA256.fullmatch(entry.sha256):
        raise ManifestError(f"{origin}: {where}: sha256 is not 64 hex digits")
    if entry.sequence < 0 or entry.size < 0:
        raise ManifestError(f"{origin}: {where}: negative sequence or size")
    if entry.format not in FORMATS:
        raise ManifestError(f"{origin}: {where}: format {entry.format!r} is not one of {', '.join(FORMATS)}")
    return entry


def digest(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file."""
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


def verify_file(path: Path, entry: FileEntry) -> None:
    """Raise ``IntegrityError`` unless ``path`` has the size and SHA-256 the manifest names."""
    sha, size = digest(path)
    if size != entry.size:
        raise IntegrityError(f"{entry.file}: {size} bytes, the manifest says {entry.size}")
    if sha != entry.sha256:
        raise IntegrityError(f"{entry.file}: SHA-256 {sha} differs from the manifest's {entry.sha256}")


def file_entry(path: Path, sequence: int, fmt: str = "auto") -> FileEntry:
    sha, size = digest(path)
    return FileEntry(sequence, path.name, sha, size, fmt)


# -- Ed25519 -----------------------------------------------------------------------------------


def load_public_key(text: str) -> bytes:
    """A public key as base64 of its 32 raw bytes. Raises ``ManifestError``."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ManifestError("public key is not base64") from None
    if len(key) != 32:
        raise ManifestError(f"public key has {len(key)} bytes: an Ed25519 key has 32")
    return key


def verify_signature(raw: bytes, signature: bytes | None, public_key: bytes, origin: str) -> None:
    """Raise ``ManifestError`` unless ``signature`` (base64) is the key's signature of ``raw``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if signature is None:
        raise ManifestError(f"{origin}: manifest is not signed and a public key is configured")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(base64.b64decode(signature.strip(), validate=True), raw)
    except (InvalidSignature, binascii.Error, ValueError):
        raise ManifestError(f"{origin}: manifest signature does not verify with the configured key") from None


def sign(raw: bytes, private_key: bytes) -> bytes:
    """The base64 Ed25519 signature of ``raw`` with a 32-byte private key (publishers, tests)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return base64.b64encode(Ed25519PrivateKey.from_private_bytes(private_key).sign(raw)) + b"\n"


def public_key_of(private_key: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = Ed25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()
