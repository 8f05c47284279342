"""The wheel carries everything an operator installs: dialplans, prompts, the unit, rules, dashboard.

Builds the wheel once (a few seconds) from a copy of the source tree, so the checkout gets no
build/ directory, and runs ``dncgate dialplan install`` from the unpacked wheel, not the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "dncgate", "dialplan", "prompts")

pytestmark = pytest.mark.wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.sqlite3")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, symlinks=True, ignore=skip)  # share/'s links stay links
        else:
            shutil.copy2(path, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "-w", str(out), "--no-deps", "-q"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (built,) = out.glob("dncgate-*.whl")
    return built


def _repo_files(top: str) -> set[str]:
    return {str(p.relative_to(ROOT)) for p in (ROOT / top).rglob("*") if p.is_file()}


def test_the_wheel_ships_the_dialplans_prompts_and_operations_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {name.removeprefix("dncgate/share/") for name in names if name.startswith("dncgate/share/")}
    assert _repo_files("dialplan") <= shipped
    assert _repo_files("prompts") <= shipped
    assert {"systemd/dncgate.service", "systemd/dncgate.sysusers", "prometheus/dncgate-alerts.yml",
            "grafana/dncgate.json", "man/man1/dncgate.1", "man/man1/dncgate-agi.1"} <= shipped
    assert {"dncgate/demo/national.txt", "dncgate/demo/dncgate.toml", "dncgate/api/openapi.json",
            "dncgate/py.typed"} <= names


def test_dialplan_install_runs_from_the_installed_package(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site), "DNCGATE_STORE__PATH": str(tmp_path / "unused.sqlite3")}
    env.pop("DNCGATE_CONFIG", None)
    where = subprocess.run([sys.executable, "-c", "import dncgate; print(dncgate.__file__)"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=60, check=True)
    assert where.stdout.strip() == str(site / "dncgate/__init__.py")  # the wheel's copy, not the checkout
    for switch in ("asterisk", "freeswitch"):
        proc = subprocess.run(
            [sys.executable, "-m", "dncgate.cli", "dialplan", "install", f"--{switch}", str(tmp_path / switch),
             "--sounds", str(tmp_path / f"{switch}-sounds")],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        prompts = ROOT / "prompts" / switch
        installed = tmp_path / f"{switch}-sounds" / "dncgate"
        assert sorted(p.relative_to(installed) for p in installed.rglob("*.wav")) == sorted(
            p.relative_to(prompts) for p in prompts.rglob("*.wav"))
    assert (tmp_path / "asterisk/extensions_dncgate.conf").read_bytes() == (
        ROOT / "dialplan/asterisk/extensions_dncgate.conf").read_bytes()
    assert (tmp_path / "freeswitch/dialplan/dncgate.xml").is_file()
