"""``[ami]`` and ``[esl_feed]``: the call feeds' settings, their defaults from the feeds' own types."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dncgate.ami.settings import AmiFeedSettings, AmiSettings, TrackerSettings
from dncgate.esl.inbound import InboundConfig
from dncgate.feeds import asterisk_feed_of, freeswitch_feed_of
from dncgate.settings import ConfigError, Settings, load


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dncgate.toml"
    path.write_text(text, encoding="utf-8")
    return path


def ami(config: Settings) -> AmiFeedSettings | None:
    """What serve hands the Asterisk feed."""
    return asterisk_feed_of(config.ami)


def esl_feed(config: Settings) -> InboundConfig | None:
    """What serve hands the FreeSWITCH feed."""
    return freeswitch_feed_of(config.esl_feed)


def test_no_feed_unless_enabled(tmp_path: Path) -> None:
    assert (ami(load(None, environ={})), esl_feed(load(None, environ={}))) == (None, None)
    config = load(write(tmp_path, '[ami]\nusername = "gate"\n\n[esl_feed]\nport = 8021\n'), environ={})
    assert (ami(config), esl_feed(config)) == (None, None)


def test_ami_keys_and_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, '[ami]\nenabled = true\nusername = "gate"\nsecret = "s3cret"\n'
                           'cdr_timezone = "Asia/Shanghai"\n')
    config = load(path, environ={})
    assert ami(config) is not None
    assert ami(config).manager == AmiSettings(username="gate", secret="s3cret")  # every other value the default
    assert ami(config).calls == TrackerSettings(cdr_timezone=ZoneInfo("Asia/Shanghai"))
    assert "s3cret" not in repr(ami(config))


def test_ami_every_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[ami]\nenabled = true\nhost = "127.0.0.2"\nport = 15038\nusername = "gate"\n'
                           'connect_timeout_s = 3\nkeepalive_s = 5.5\n')
    config = load(path, environ={"DNCGATE_AMI__SECRET": "from-env"})  # the secret need not be in the file
    assert ami(config) is not None
    manager = ami(config).manager
    assert (manager.host, manager.port, manager.username, manager.secret) == ("127.0.0.2", 15038, "gate", "from-env")
    assert (manager.connect_timeout, manager.keepalive_interval) == (3.0, 5.5)
    assert ami(config).calls.cdr_timezone is UTC


def test_esl_feed_keys_and_defaults(tmp_path: Path) -> None:
    config = load(write(tmp_path, "[esl_feed]\nenabled = true\n"), environ={})
    assert esl_feed(config) == InboundConfig()  # 127.0.0.1:8021, FreeSWITCH's default password
    path = write(tmp_path, '[esl_feed]\nenabled = true\nhost = "127.0.0.3"\nport = 18021\npassword = "pw"\n'
                           "connect_deadline_s = 2\nsilence_deadline_s = 45\n")
    config = load(path, environ={})
    assert esl_feed(config) == InboundConfig(host="127.0.0.3", port=18021, password="pw", connect_deadline=2.0,
                                            event_deadline=45.0)
    assert "pw" not in repr(esl_feed(config))


@pytest.mark.parametrize(("table", "body", "key", "problem"), [
    ("ami", 'enabled = true\nusername = "gate"', "ami.secret", "required"),
    ("ami", 'enabled = true\nsecret = "x"', "ami.username", "required"),
    ("ami", 'enabled = true\nusername = "g"\nsecret = "x"\nport = 0', "ami.port", "between"),
    ("ami", 'username = "g"\nport = "many"', "ami.port", "whole number"),
    ("ami", 'enabled = true\nusername = "g"\nsecret = "x"\nconnect_timeout_s = 1', "ami.connect_timeout_s",
     "between"),
    ("ami", 'enabled = true\nusername = "g"\nsecret = "x"\ncdr_timezone = "Mars/Olympus"', "ami.cdr_timezone",
     "time zone"),
    ("ami", 'enabled = true\nusername = "g"\nsecret = "x"\nuser = "g"', "ami.user", "unknown key"),
    ("esl_feed", "enabled = true\nport = 70000", "esl_feed.port", "between"),
    ("esl_feed", "enabled = true\nsilence_deadline_s = 0", "esl_feed.silence_deadline_s", "between"),
    ("esl_feed", 'enabled = "maybe"', "esl_feed.enabled", "true or false"),
    ("esl_feed", 'enabled = true\npasword = "typo"', "esl_feed.pasword", "unknown key"),
])
def test_errors_name_the_key(tmp_path: Path, table: str, body: str, key: str, problem: str) -> None:
    path = write(tmp_path, f"[{table}]\n{body}\n")
    with pytest.raises(ConfigError, match=problem) as caught:
        load(path, environ={})
    assert f"{path}: {key}:" in str(caught.value)


@pytest.mark.parametrize(("tables", "prefixes"), [
    ("", ("dncgate.ami", "dncgate.esl", "panoramisk")),  # no feed: nothing of either
    ('[ami]\nenabled = true\nusername = "g"\nsecret = "x"\n', ("dncgate.ami.c", "dncgate.esl", "panoramisk")),
])
def test_reading_the_settings_imports_no_switch_client(tmp_path: Path, tables: str, prefixes: tuple[str, ...]) -> None:
    """Classic AGI reads the same configuration on every call: [ami] must not pull panoramisk in."""
    path = write(tmp_path, tables)
    code = ("import sys; from pathlib import Path; from dncgate.settings import load; "
            f"c = load(Path({str(path)!r}), environ={{}}); assert c.ami.enabled == {bool(tables)}; "
            f"print(sorted(m for m in sys.modules if m.startswith({prefixes!r})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"
