"""The CLI refuses a tenant, purpose or category that is not configured, with exit 2 (issue 11 item 4).

Before: ``lists load --list tenant:typo`` loaded a list no tenant reads, ``consent export --tenant
nosuch`` wrote an empty export whose manifest looked complete, ``check --purpose bogus`` and
``check --category nonsense`` answered as if they meant something, all with exit 0.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

LISTED = "+8613800138000"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Tenants acme and default (CN), a store holding the national list."""
    config = tmp_path / "dncgate.toml"
    config.write_text(f"""
[store]
path = "{tmp_path / 'cli.sqlite3'}"
[national]
region = "CN"
[consent]
categories = ["finance", "travel"]
[tenants.default]
region = "CN"
[tenants.acme]
region = "CN"
""")
    monkeypatch.setenv("DNCGATE_CONFIG", str(config))
    for name in ("DNCGATE_STORE__PATH", "DNCGATE_TENANTS__DEFAULT__REGION"):
        monkeypatch.delenv(name, raising=False)
    numbers = tmp_path / "national.txt"
    numbers.write_text(LISTED + "\n")
    return numbers


def _refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (out, err)
    assert "Traceback" not in err
    return err


def test_a_list_of_a_tenant_that_is_not_configured_is_refused(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "lists", "load", "--list", "national", str(env))[0] == 0
    err = _refused(capsys, "lists", "load", "--list", "tenant:typo", str(env))
    assert "--list tenant:typo: no tenant 'typo' is configured (tenants: acme, default)" in err
    err = _refused(capsys, "lists", "rule", "add", "--list", "tenant:foo", "+86170")
    assert "--list tenant:foo: no tenant 'foo' is configured" in err
    code, out, _ = run_cli(capsys, "lists", "stats")
    assert code == 0
    assert "tenant:" not in out  # nothing was written for them
    assert run_cli(capsys, "lists", "load", "--list", "tenant:acme", str(env))[0] == 0  # a configured one is fine
    assert run_cli(capsys, "lists", "rule", "add", "--list", "tenant:acme", "+86170")[0] == 0


def test_a_consent_export_or_purge_of_a_tenant_that_is_not_configured_is_refused(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_cli(capsys, "lists", "load", "--list", "national", str(env))[0] == 0
    out = tmp_path / "export.jsonl"
    err = _refused(capsys, "consent", "export", "--tenant", "nosuch", "--output", str(out))
    assert "--tenant nosuch: no tenant 'nosuch' is configured (tenants: acme, default)" in err
    assert not out.exists()  # no empty export with a manifest that looks complete
    _refused(capsys, "consent", "purge", "--tenant", "nosuch", "--before", "2020-01-01T00:00:00Z", "--by", "ops")
    assert run_cli(capsys, "consent", "export", "--tenant", "acme", "--output", str(out))[0] == 0


def test_check_refuses_a_purpose_category_or_tenant_that_is_not_configured(
    env: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_cli(capsys, "lists", "load", "--list", "national", str(env))[0] == 0
    with pytest.raises(SystemExit) as exited:  # argparse's own refusal
        run_cli(capsys, "check", LISTED, "--purpose", "bogus")
    assert exited.value.code == 2
    assert "argument --purpose: invalid choice: 'bogus' (choose from 'service', 'marketing')" in capsys.readouterr().err
    err = _refused(capsys, "check", LISTED, "--category", "nonsense")
    assert "--category nonsense: not a configured category ([consent] categories: finance, travel)" in err
    err = _refused(capsys, "check", LISTED, "--tenant", "nosuch")
    assert "--tenant nosuch: no tenant 'nosuch' is configured" in err
    code, out, _ = run_cli(capsys, "check", LISTED, "--purpose", "Service", "--category", "travel", "--tenant", "acme")
    assert code == 0
    assert out.startswith("ALLOW  reason=allowed_service")
