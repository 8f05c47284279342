"""Operator accounts: scrypt hashes, the lockout's backoff, both stores, and the CLI."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dncgate.operators import (
    FREE_FAILURES,
    Operator,
    OperatorError,
    OperatorStore,
    Role,
    Roster,
    attempt,
    hash_password,
    new_operator,
    password_matches,
)
from dncgate.store.redis.operators import RedisOperatorStore
from dncgate.store.sqlite.operators import SqliteOperatorStore
from tests.conftest import RedisServer, run_cli

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


def test_the_hash_is_scrypt_salted_and_checked() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("scrypt$16384$8$1$")
    assert first != second  # a salt of its own each time
    assert password_matches(PASSWORD, first)
    assert not password_matches(PASSWORD + "x", first)
    assert not password_matches(PASSWORD, "md5$abc")


def test_short_passwords_names_and_unscoped_operators_are_refused() -> None:
    with pytest.raises(OperatorError, match="10 to"):
        new_operator("ann", Role.OPERATOR, ["acme"], "short", T0)
    with pytest.raises(OperatorError, match="operator name"):
        new_operator("Ann Smith", Role.OPERATOR, ["acme"], PASSWORD, T0)
    with pytest.raises(OperatorError, match="at least one tenant"):
        new_operator("ann", Role.VIEWER, [], PASSWORD, T0)
    with pytest.raises(OperatorError, match="role"):
        new_operator("ann", "root", ["acme"], PASSWORD, T0)


def test_wrong_passwords_lock_the_account_with_a_growing_backoff() -> None:
    account: Operator | None = new_operator("ann", Role.OPERATOR, ["acme"], PASSWORD, T0)
    locks = []
    for n in range(FREE_FAILURES):
        result = attempt(account, "wrong password", T0)
        assert result.operator is None
        account = result.updated
        assert account is not None
        assert account.failures == n + 1
        locks.append(result.locked_until)
    assert locks == [None] * (FREE_FAILURES - 1) + [T0 + timedelta(seconds=2)]
    # a locked account is refused even with the right password, without a check
    refused = attempt(account, PASSWORD, T0 + timedelta(seconds=1))
    assert (refused.operator, refused.reason) == (None, "locked")
    # once the lock has run out the right password signs in and clears the count
    later = attempt(account, PASSWORD, T0 + timedelta(hours=1))
    assert later.operator is not None
    assert later.updated is not None
    assert (later.updated.failures, later.updated.locked_until) == (0, "")


def test_lock_lengths_double() -> None:
    account: Operator | None = new_operator("ann", Role.OPERATOR, ["acme"], PASSWORD, T0)
    lengths = []
    for _ in range(FREE_FAILURES + 3):
        assert account is not None
        result = attempt(account, "wrong password", T0 + timedelta(days=1) * account.failures)
        if result.locked_until is not None:
            lengths.append((result.locked_until - (T0 + timedelta(days=1) * account.failures)).total_seconds())
        account = result.updated
    assert lengths == [2.0, 4.0, 8.0, 16.0]


def test_an_unknown_name_is_refused() -> None:
    assert attempt(None, PASSWORD, T0).reason == "unknown"


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path,
                redis_server: RedisServer) -> AsyncIterator[OperatorStore]:
    opened: OperatorStore
    if request.param == "sqlite":
        opened = SqliteOperatorStore(tmp_path / "dncgate.sqlite3")
    else:
        redis_server.flush()
        opened = RedisOperatorStore.connect(redis_server.url)
    yield opened
    await opened.close()


async def test_stores_keep_replace_and_remove_accounts(store: OperatorStore) -> None:
    ann = new_operator("ann", Role.OPERATOR, ["acme", "beta"], PASSWORD, T0)
    bob = new_operator("bob", Role.ADMIN, [], PASSWORD, T0)
    await store.put_operator(ann)
    await store.put_operator(bob)
    assert await store.operator("ann") == ann
    assert [o.name for o in await store.operators()] == ["ann", "bob"]
    roster = Roster(store)
    for _ in range(FREE_FAILURES):
        assert (await roster.sign_in("ann", "wrong password", T0)).operator is None
    stored = await store.operator("ann")
    assert stored is not None
    assert stored.failures == FREE_FAILURES
    assert stored.locked_until
    assert await store.remove_operator("ann")
    assert not await store.remove_operator("ann")
    assert await store.operator("ann") is None


def test_the_cli_adds_changes_and_removes_an_operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DNCGATE_STORE__PATH", str(tmp_path / "cli.sqlite3"))
    monkeypatch.delenv("DNCGATE_CONFIG", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, out, err = run_cli(capsys, "operator", "add", "ann", "--role", "operator", "--tenant", "default",
                             "--password-stdin")
    assert (code, err) == (0, "")
    assert "operator ann added: operator, tenants default" in out
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, _, err = run_cli(capsys, "operator", "add", "ann", "--role", "viewer", "--tenant", "default",
                           "--password-stdin")
    assert code == 1
    assert "exists" in err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, _, err = run_cli(capsys, "operator", "add", "eve", "--role", "viewer", "--tenant", "nope",
                           "--password-stdin")
    assert code == 2
    assert "tenant nope is not configured" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("another long password\n"))
    assert run_cli(capsys, "operator", "passwd", "ann", "--password-stdin")[0] == 0
    code, out, _ = run_cli(capsys, "operator", "list")
    assert out.split()[:3] == ["ann", "operator", "default"]
    assert run_cli(capsys, "operator", "remove", "ann")[:2] == (0, "operator ann removed\n")
    assert run_cli(capsys, "operator", "remove", "ann")[0] == 1
