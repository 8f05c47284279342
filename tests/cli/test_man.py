"""The man pages shipped in the package are the ones generated from the parsers, and say what they must."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dncgate.cli import codes, man

SHIPPED = Path(str(man.SHIPPED))


@pytest.mark.parametrize("name", ["dncgate.1", "dncgate-agi.1"])
def test_the_shipped_page_is_the_generated_one(name: str) -> None:
    shipped = (SHIPPED / name).read_text(encoding="utf-8")
    assert shipped == man.pages()[name], f"regenerate: python -m dncgate.cli.man {SHIPPED}"


def test_every_command_and_exit_code_is_in_the_page() -> None:
    text = man.pages()["dncgate.1"]
    for command in ("serve", "check", "lists load", "lists stats", "audit tail", "audit export", "consent grant",
                    "consent revoke", "dialplan install", "service install"):
        roff_name = command.replace("-", "\\-")
        assert f".SH COMMAND \\fI\\,'dncgate {roff_name}'\\/\\fR" in text
    status = text.split(".SH EXIT STATUS")[1].split(".SH ")[0]
    assert [int(code) for code in re.findall(r"\\fB(\d+)\\fR", status)] == [code for code, _ in codes.TABLE]


def test_the_page_does_not_depend_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    wide = man.pages()
    monkeypatch.setenv("COLUMNS", "40")
    assert man.pages() == wide


@pytest.mark.skipif(shutil.which("groff") is None and shutil.which("nroff") is None, reason="no roff formatter")
def test_roff_renders_the_pages_without_warnings(tmp_path: Path) -> None:
    roff = shutil.which("nroff") or shutil.which("groff")
    assert roff is not None
    for path in man.write(tmp_path):
        done = subprocess.run([roff, "-man", "-ww", str(path)], capture_output=True, text=True, timeout=60,
                              check=False)
        assert (done.returncode, done.stderr) == (0, ""), path.name
        assert "EXIT STATUS" in re.sub(".\b", "", done.stdout)  # without the overstrike of bold
