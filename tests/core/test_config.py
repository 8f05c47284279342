"""Configuration: TOML + environment, errors that name the key and the file."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from dncgate.model import FailureAction, ListPolicy, Mode, Purpose
from dncgate.settings import ConfigError, EslSettings, load


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dncgate.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file() -> None:
    config = load(None, environ={})
    assert config.store.backend == "sqlite"
    assert config.agi.port == 4573
    assert config.esl.enabled is False
    tenant = config.tenant(None)
    assert tenant is not None
    assert tenant.name == "default"
    assert tenant.mode is Mode.ENFORCE
    assert tenant.marketing_on_failure is FailureAction.REJECT


def test_full_file(tmp_path: Path) -> None:
    path = write(tmp_path, """
[store]
backend = "redis"
url = "redis://127.0.0.1:6390/0"
timeout_ms = 100

[national]
region = "cn"

[agi]
port = 4600
max_sessions = 64

[tenants.acme]
region = "CN"
mode = "monitor"
policy = "opt-in"
default_purpose = "service"
reject_sip_code = 603
technical_prefixes = ["17951", "12593"]
short_numbers = ["12321"]
announcement = "dncgate/{tenant}/{language}/declined"

[tenants.globex]
region = "GB"
""")
    config = load(path, environ={})
    assert config.store.backend == "redis"
    assert config.store.timeout_ms == 100
    assert config.national_region == "CN"
    assert config.agi.port == 4600
    assert config.agi.max_sessions == 64
    acme = config.tenants["acme"]
    assert acme.mode is Mode.MONITOR
    assert acme.list_policy is ListPolicy.OPT_IN
    assert acme.default_purpose is Purpose.SERVICE
    assert acme.dial_plan.technical_prefixes == ("17951", "12593")
    assert acme.dial_plan.extra_short_numbers == frozenset({"12321"})
    assert acme.announcement_for() == "dncgate/acme/en/declined"
    assert config.tenants["globex"].dial_plan.region == "GB"
    assert "default" not in config.tenants


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[tenants.acme]\nregion = "CN"\n')
    config = load(path, environ={
        "DNCGATE_STORE__BACKEND": "redis",
        "DNCGATE_AGI__PORT": "4700",
        "DNCGATE_AGI__ENABLED": "false",
        "DNCGATE_TENANTS__ACME__MODE": "monitor",
        "DNCGATE_TENANTS__ACME__TECHNICAL_PREFIXES": "9, *67",
        "UNRELATED": "x",
    })
    assert config.store.backend == "redis"
    assert config.agi.port == 4700
    assert config.agi.enabled is False
    assert config.tenants["acme"].mode is Mode.MONITOR
    assert config.tenants["acme"].dial_plan.technical_prefixes == ("9", "*67")
    assert "DNCGATE_AGI__PORT" in config.source


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ('[store]\nbackend = "mysql"\n', {}, "store.backend: 'mysql' is not one of sqlite, redis"),
        ('[tenants.acme]\nreject_sip_code = 486\n', {}, "tenants.acme.reject_sip_code: 486 is not one of 603"),
        ('[tenants.acme]\nmode = "dry-run"\n', {}, "tenants.acme.mode: 'dry-run' is not one of enforce, monitor"),
        ('[tenants.acme]\nregion = "XX"\n', {}, "tenants.acme.region"),
        ('[tenants.acme]\nmoed = "monitor"\n', {}, "tenants.acme.moed: unknown key"),
        ('[agi]\nport = "many"\n', {}, "agi.port: 'many' is not a whole number"),
        ('[agi]\nport = 70000\n', {}, "agi.port: 70000 is not a TCP port"),
        ("[store\n", {}, "not valid TOML"),
        ('[tenants."bad name!"]\n', {}, "a tenant name is"),
        ("", {"DNCGATE_STORE__TIMEOUT_MS": "0"}, "store.timeout_ms: must be between 1 and 10000"),
        ('[tenants.acme]\nannouncement = "x/{lang}"\n', {}, "tenants.acme.announcement: may use only"),
        ('[esl]\nstrip_prefix = "9x"\n', {}, "esl.strip_prefix: '9x': only digits"),
        ('[esl]\ntransfer_to = "{number} XML {ctx}"\n', {}, "esl.transfer_to: placeholders are"),
        ('[esl]\nsound_ext = "../wav"\n', {}, "esl.sound_ext: '../wav' is not a file extension"),
        ('[esl]\nannounce = "loud"\n', {}, "esl.announce: 'loud' is not true or false"),
        ('[esl]\nstrip_prefx = "8"\n', {}, "esl.strip_prefx: unknown key"),
        ("[ivr]\ndigit_timeout_s = 0.5\n", {}, "ivr.digit_timeout_s: must be between 1 and 60"),
        ('[ivr]\ndigit_timeout_s = "soon"\n', {}, "ivr.digit_timeout_s: 'soon' is not a number"),
        ("[ivr]\ndigit_timeout_s = true\n", {}, "ivr.digit_timeout_s: expected float, got True"),
        ("[ivr]\nmax_failures = 5\nmax_asks = 4\n", {}, "ivr.max_asks: must be between max_failures (5)"),
        ("[ivr]\nledger_deadline_ms = 10\n", {}, "ivr.ledger_deadline_ms: must be between 50 and 30000"),
        ("[ivr]\ncall_deadline = 60\n", {}, "ivr.call_deadline: unknown key"),
    ],
)
def test_errors_name_the_key_and_the_file(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(path, environ=env)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "nope.toml", environ={})


def test_esl_handler_keys(tmp_path: Path) -> None:
    assert load(None, environ={}).esl == EslSettings()  # the handler's defaults
    path = write(tmp_path, """
[esl]
enabled = true
strip_prefix = "8"
transfer_to = "dnc_ok_{number} XML {context}"
sounds_dir = "/srv/fs/sounds"
announce = false
sip_reason = ""
fallback_sip_code = 607
playback_deadline_s = 12.5
""")
    config = load(path, environ={"DNCGATE_ESL__SOUND_EXT": "sln16", "DNCGATE_ESL__SETTLE_DEADLINE_S": "1"})
    assert config.esl.enabled is True
    assert msgspec.structs.asdict(config.esl) == {
        "enabled": True, "host": "127.0.0.1", "port": 8084, "max_sessions": 512, "max_sessions_per_peer": 256,
        "allow": ("127.0.0.0/8", "::1/128"), "strip_prefix": "8", "transfer_to": "dnc_ok_{number} XML {context}",
        "sounds_dir": "/srv/fs/sounds",
        "sound_ext": "sln16", "announce": False, "sip_reason": "", "fallback_sip_code": 607,
        "playback_deadline": 12.5, "settle_deadline": 1.0,
    }
    settings = config.esl  # what serve hands the handler
    assert (settings.fallback_sip_code, settings.playback_deadline, settings.settle_deadline) == (607, 12.5, 1.0)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("fallback_sip_code = 486", "esl.fallback_sip_code: 486: one of 603, 607, 608"),
        ("playback_deadline_s = 0", "esl.playback_deadline_s: 0.0: must be above 0 and at most 300 seconds"),
        ("settle_deadline_s = 31", "esl.settle_deadline_s: 31.0: must be above 0 and at most 30 seconds"),
        ("settle_deadline_s = \"soon\"", "esl.settle_deadline_s: 'soon' is not a number"),
    ],
)
def test_esl_handler_keys_are_checked(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(write(tmp_path, f"[esl]\n{line}\n"), environ={})


def test_ivr_keys(tmp_path: Path) -> None:
    defaults = load(None, environ={}).ivr
    assert (defaults.digit_timeout, defaults.call_deadline, defaults.ledger_deadline) == (6.0, 600.0, 2.0)
    path = write(tmp_path, "[ivr]\ndigit_timeout_s = 4.5\nmax_failures = 2\nmax_asks = 12\nledger_deadline_ms = 500\n")
    ivr = load(path, environ={"DNCGATE_IVR__CALL_DEADLINE_S": "120"}).ivr
    assert (ivr.digit_timeout, ivr.max_failures, ivr.max_asks) == (4.5, 2, 12)
    assert (ivr.call_deadline, ivr.ledger_deadline) == (120.0, 0.5)


@pytest.mark.parametrize(("key", "message"), [
    ("not base64!", "public key is not base64"),
    ("AAAA", "public key has 3 bytes: an Ed25519 key has 32"),
])
def test_a_bad_sync_public_key_is_a_config_error(tmp_path: Path, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"sync.public_key: {message}")):
        load(write(tmp_path, f'[sync]\npublic_key = "{key}"\n'), environ={})


@pytest.mark.parametrize(("tables", "message"), [
    ('[sync]\nstandings_tenant = "nobody"\n', "sync.standings_tenant: 'nobody' is not a configured tenant"),
    ('[sync]\nsource = "dir"\nstandings_tenant = "acme"\n[tenants.acme]\n',
     'sync.standings_tenant: the standings come from a carrier\'s feed: needs source = "http"'),
])
def test_standings_tenant_names_a_tenant_on_an_http_source(tmp_path: Path, tables: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(write(tmp_path, tables), environ={})
    assert load(write(tmp_path, '[sync]\nstandings_tenant = "acme"\n[tenants.acme]\n'),
                environ={}).sync.standings_tenant == "acme"
    on_redis = load(write(tmp_path, '[store]\nbackend = "redis"\n[sync]\nstandings_tenant = "acme"\n'
                                    '[tenants.acme]\n'), environ={})  # the Redis case store takes them too
    assert (on_redis.store.backend, on_redis.sync.standings_tenant) == ("redis", "acme")


def test_a_good_sync_public_key_is_accepted(tmp_path: Path) -> None:
    key = "A" * 43 + "="  # 32 zero bytes in base64
    assert load(write(tmp_path, f'[sync]\npublic_key = "{key}"\n'), environ={}).sync.public_key == key
