"""Export of a tenant's ledger for a regulator: JSON lines or CSV, plus a manifest proving completeness.

The manifest names the chain's anchor (the last record purged, or the genesis), the head at the
time of export, the number of records and the SHA-256 of the file. :func:`verify` recomputes
every record's hash from the file alone: the chain must run unbroken from the anchor to the head,
so a dropped, reordered or altered record — or a truncated file — fails the check.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from dncgate.consent.ledger import Ledger, utc_now
from dncgate.consent.model import Action, Evidence, LedgerEvent, iso, parse_time
from dncgate.errors import ConsentError

FORMATS = ("jsonl", "csv")
CSV_COLUMNS = (
    "seq", "id", "tenant", "action", "callee", "entity", "categories", "valid_from", "expires_at",
    "evidence_channel", "evidence_captured_at", "evidence_source", "evidence_shown", "evidence_captured_by",
    "evidence_document_sha256", "detail", "recorded_at", "prev_hash", "hash",
)


class ExportError(ConsentError):
    """The export does not prove itself complete (the message says where it breaks)."""


@dataclass(frozen=True, slots=True)
class ExportManifest:
    """Written beside a ledger export: the chain's anchor and head, the record count, the file's SHA-256."""

    tenant: str
    format: str
    records: int
    anchor_seq: int
    anchor_hash: str
    head_seq: int
    head_hash: str
    file_sha256: str
    exported_at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> ExportManifest:
        return cls(**json.loads(raw))


async def export(ledger: Ledger, tenant: str, fmt: str, path: Path) -> ExportManifest:
    """Write ``path`` and ``path.manifest.json``; returns the manifest."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: one of {', '.join(FORMATS)}")
    anchor = await ledger.anchor(tenant)
    head = await ledger.head(tenant)
    digest = hashlib.sha256()
    count = 0
    with path.open("wb") as out:
        if fmt == "csv":
            _write(out, digest, _csv_line(CSV_COLUMNS))
        async for event in ledger.history(tenant):
            if event.seq > head.seq:
                break  # appended after the export started: the next export has it
            line = event.to_json() + "\n" if fmt == "jsonl" else _csv_line(_csv_row(event))
            _write(out, digest, line)
            count += 1
    manifest = ExportManifest(tenant, fmt, count, anchor.seq, anchor.hash, head.seq, head.hash, digest.hexdigest(),
                        iso(utc_now()) or "")
    manifest_path(path).write_text(manifest.to_json() + "\n", encoding="utf-8")
    return manifest


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def verify(path: Path, manifest: ExportManifest) -> int:
    """Check the file against its manifest; returns the number of records. Raises ``ExportError``."""
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.file_sha256:
        raise ExportError(f"{path}: SHA-256 differs from the manifest (file changed or truncated)")
    previous, seq, count = manifest.anchor_hash, manifest.anchor_seq, 0
    for event in _records(data.decode("utf-8"), manifest.format):
        if event.seq != seq + 1 or event.prev_hash != previous:
            raise ExportError(f"record seq {event.seq}: expected seq {seq + 1} after hash {previous[:12]}...")
        if event.recorded_at is None or event.sealed(event.seq, event.prev_hash, event.recorded_at).hash != event.hash:
            raise ExportError(f"record seq {event.seq}: its hash does not match its content")
        previous, seq, count = event.hash, event.seq, count + 1
    if (seq, previous) != (manifest.head_seq, manifest.head_hash) or count != manifest.records:
        raise ExportError(f"chain ends at seq {seq}, the manifest's head is seq {manifest.head_seq}: records missing")
    return count


def _write(out: io.BufferedWriter, digest: hashlib._Hash, line: str) -> None:
    raw = line.encode("utf-8")
    digest.update(raw)
    out.write(raw)


def _csv_line(values: tuple[str, ...] | list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _csv_row(event: LedgerEvent) -> list[str]:
    evidence = event.evidence.as_dict() if event.evidence else {}
    body = event.as_dict()
    row = [str(event.seq), event.id, event.tenant, event.action.value, event.callee, event.entity,
           ";".join(event.categories), body["valid_from"] or "", body["expires_at"] or ""]
    row += [str(evidence.get(k) or "") for k in ("channel", "captured_at", "source", "shown", "captured_by",
                                                  "document_sha256")]
    row += [event.detail, body["recorded_at"] or "", event.prev_hash, event.hash]
    return row


def _records(text: str, fmt: str) -> Iterator[LedgerEvent]:
    if fmt == "jsonl":
        for line in text.splitlines():
            yield LedgerEvent.from_json(line)
        return
    rows = csv.DictReader(io.StringIO(text))
    for row in rows:
        evidence = None
        if row["evidence_channel"]:
            evidence = Evidence.from_dict({k.removeprefix("evidence_"): v for k, v in row.items()
                                           if k.startswith("evidence_")})
        yield LedgerEvent(
            tenant=row["tenant"], action=Action(row["action"]), callee=row["callee"], entity=row["entity"],
            categories=tuple(c for c in row["categories"].split(";") if c),
            valid_from=parse_time(row["valid_from"], "valid_from"), expires_at=parse_time(row["expires_at"], "x"),
            evidence=evidence, detail=row["detail"], id=row["id"], seq=int(row["seq"]),
            recorded_at=parse_time(row["recorded_at"], "recorded_at"), prev_hash=row["prev_hash"], hash=row["hash"],
        )
