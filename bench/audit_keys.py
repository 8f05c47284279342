"""What the console's search keys cost the durable audit's writes on SQLite: the same records
written in batches of 1,000 the way the audit was written before (the record alone, unique by its
decision id) and the way the store writes them now (``audit_search.append``: the record, its keys
in ``audit_keys`` with five one-column indexes, the per-minute counts), alternating, each on a
fresh file. Random callees, accounts and caller IDs, as a switch sends them. Not a test.

    .venv/bin/python bench/audit_keys.py [--records 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from dncgate.audit_record import AuditRecord
from dncgate.store.sqlite import audit_search
from dncgate.store.sqlite.schema import LISTS_SCHEMA
from dncgate.store.sqlite.tx import write_transaction

BATCH = 1_000


def _records(count: int) -> list[tuple[str, AuditRecord]]:
    rng = random.Random(3)
    rows = []
    for i in range(count):
        record = AuditRecord(
            decision_id=f"{rng.getrandbits(128):032x}",
            at=f"2026-12-02T10:{i // 60 % 60:02d}:{i % 60:02d}.000000+00:00", tenant="acme", door="agi",
            account=f"acct-{rng.randrange(1000)}", trunk="",
            caller_id=f"+86105{rng.randrange(10_000):05d}", dialled="13900012345",
            callee=f"+86139{rng.randrange(200_000):08d}", purpose="marketing", category=None, verdict="allow",
            outcome="allow", reason=rng.choice(("allowed_clear", "national_dnc")), list_name=None, list_version=None,
            mode="enforce", sip_code=None, latency_us=100)
        rows.append((record.to_json(), record))
    return rows


def _connect(folder: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(folder / "audit.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(LISTS_SCHEMA)
    return conn


def _before(conn: sqlite3.Connection, rows: list[tuple[str, AuditRecord]]) -> None:
    with write_transaction(conn):
        conn.executemany("INSERT OR IGNORE INTO audit (record) VALUES (?)", [(text,) for text, _ in rows])


def _now(conn: sqlite3.Connection, rows: list[tuple[str, AuditRecord]]) -> None:
    with write_transaction(conn):
        audit_search.append(conn, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = _records(args.records)
    rates: dict[str, list[float]] = {"before (record only)": [], "now (record + search keys)": []}
    for _ in range(args.rounds):
        for name, write in zip(rates, (_before, _now), strict=True):
            with tempfile.TemporaryDirectory() as folder:
                conn = _connect(Path(folder))
                started = time.perf_counter()
                for first in range(0, len(rows), BATCH):
                    write(conn, rows[first:first + BATCH])
                rates[name].append(len(rows) / (time.perf_counter() - started))
                conn.close()
    print(f"{args.records:,} audit records in batches of {BATCH:,}, {args.rounds} rounds alternating (records/s)")
    for name, found in rates.items():
        print(f"  {name:<28} median {statistics.median(found):>9,.0f}   best {max(found):>9,.0f}")


if __name__ == "__main__":
    main()
