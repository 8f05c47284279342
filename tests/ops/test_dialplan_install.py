"""``dncgate dialplan install``: the shipped dialplans and prompts, copied where the switch looks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dncgate.install import SAMPLES_DIR, shared
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_asterisk_install_puts_the_includes_beside_extensions_conf_and_the_prompts_under_sounds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    etc, sounds = tmp_path / "etc/asterisk", tmp_path / "sounds"
    code, out, _ = run_cli(capsys, "dialplan", "install", "--asterisk", str(etc), "--sounds", str(sounds))
    assert code == 0
    assert (etc / "extensions_dncgate.conf").read_bytes() == (ROOT / "dialplan/asterisk/extensions_dncgate.conf"
                                                              ).read_bytes()
    assert (etc / "extensions_dncgate_ivr.conf").is_file()
    assert sorted(p.name for p in (etc / SAMPLES_DIR).iterdir()) == [
        "README.md", "extensions.conf.sample", "pjsip.conf.sample"]
    assert not (etc / "extensions.conf").exists()  # the operator's own file is never written
    assert _tree(sounds / "dncgate") == _tree(ROOT / "prompts/asterisk")
    assert f"install           {sounds}/dncgate/en/declined.wav" in out.splitlines()
    assert (sounds / "dncgate/en/declined.wav").stat().st_mode & 0o777 == 0o644


def test_freeswitch_install_puts_the_contexts_into_dialplan_and_keeps_the_samples_apart(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf, sounds = tmp_path / "freeswitch", tmp_path / "sounds"
    code, _, _ = run_cli(capsys, "dialplan", "install", "--freeswitch", str(conf), "--sounds", str(sounds))
    assert code == 0
    assert sorted(p.name for p in (conf / "dialplan").iterdir()) == [
        "dncgate.xml", "dncgate_allowed.xml", "dncgate_ivr.xml"]
    # the profile, the gateway (placeholder credentials), the ACL and the chatplan (its tenant is a
    # placeholder; it goes to conf/chatplan/) are never made live by a copy
    assert sorted(p.name for p in (conf / SAMPLES_DIR).iterdir()) == [
        "README.md", "acl_dialers.xml", "dncgate_chatplan.xml", "gateway_carrier.xml", "sip_profile_dialer.xml"]
    assert not (conf / "sip_profiles").exists()
    assert _tree(sounds / "dncgate") == _tree(ROOT / "prompts/freeswitch")
    assert (sounds / "dncgate/en/8000/declined.wav").is_file()


def test_a_changed_file_is_refused_and_nothing_is_written_until_forced(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    etc, sounds = tmp_path / "etc", tmp_path / "sounds"
    assert run_cli(capsys, "dialplan", "install", "--asterisk", str(etc))[0] == 0
    edited = etc / "extensions_dncgate.conf"
    edited.write_text(edited.read_text() + "; the operator's change\n")

    code, out, err = run_cli(capsys, "dialplan", "install", "--asterisk", str(etc), "--sounds", str(sounds))
    assert code == 1
    assert f"refused           {edited} (it differs from the shipped file; --force replaces it)" in out
    assert f"unchanged         {etc}/extensions_dncgate_ivr.conf" in out
    assert "nothing written" in err
    assert edited.read_text().endswith("; the operator's change\n")
    assert not sounds.exists()  # refused as a whole: not even the new files

    code, out, _ = run_cli(capsys, "dialplan", "install", "--asterisk", str(etc), "--force")
    assert code == 0
    assert f"overwrite         {edited}" in out
    assert edited.read_bytes() == (ROOT / "dialplan/asterisk/extensions_dncgate.conf").read_bytes()
    assert [p.name for p in etc.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "dialplan", "install", "--freeswitch", str(tmp_path / "fs"),
                           "--sounds", str(tmp_path / "sounds"), "--dry-run")
    assert code == 0
    assert f"would install     {tmp_path}/fs/dialplan/dncgate.xml" in out.splitlines()
    assert len(out.splitlines()) == 3 + 5 + len(_tree(ROOT / "prompts/freeswitch"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [
    ["dialplan", "install", "--asterisk", "/x", "--freeswitch", "/y"],  # one switch at a time
    ["dialplan", "install", "--sounds", "/x"],  # which switch?
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run_cli(capsys, *argv)
    assert exc.value.code == 2


def test_prompts_only_needs_sounds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "dialplan", "install", "--asterisk", str(tmp_path), "--no-dialplan")
    assert code == 2
    assert "give --sounds" in err
    code, _, _ = run_cli(capsys, "dialplan", "install", "--asterisk", str(tmp_path / "etc"), "--no-dialplan",
                         "--sounds", str(tmp_path / "s"))
    assert code == 0
    assert not (tmp_path / "etc").exists()
    assert (tmp_path / "s/dncgate/zh/declined.wav").is_file()


SWITCH_OWN_FILES = {"extensions.conf"}  # the operator's files the READMEs name: never shipped


def _referenced(readme: Path) -> set[str]:
    """The file names (no directory) a dialplan README names in backquotes."""
    names = set(re.findall(r"`([\w.-]+\.(?:conf|xml|sample))`", readme.read_text(encoding="utf-8")))
    return names - SWITCH_OWN_FILES


@pytest.mark.parametrize("switch", ["asterisk", "freeswitch"])
def test_every_file_the_dialplan_readme_names_is_shipped(switch: str) -> None:
    names = _referenced(ROOT / "dialplan" / switch / "README.md")
    assert len(names) >= 3
    missing = sorted(name for name in names if not shared("dialplan", switch, name).is_file())
    assert missing == []


def test_every_prompt_the_dialplans_play_is_shipped() -> None:
    played: set[str] = set()
    for conf in (ROOT / "dialplan/asterisk").glob("extensions_dncgate*.conf"):
        played |= set(re.findall(r"/(declined|ivr-[a-z0-9_-]+)\b", conf.read_text(encoding="utf-8")))
    assert {"declined", "ivr-unavailable"} <= played
    for language in ("en", "zh"):
        for name in played:
            assert shared("prompts", "asterisk", language, f"{name}.wav").is_file(), (language, name)
