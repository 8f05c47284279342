"""The committed announcements are what prompts/generate.sh produces, and play on Asterisk."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import pytest

from tests.e2e.lab import REPO_ROOT

pytestmark = pytest.mark.e2e

PROMPTS = REPO_ROOT / "prompts"


def test_generate_is_reproducible() -> None:
    proc = subprocess.run(
        [str(PROMPTS / "generate.sh"), "--check"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("path", "rate"),
    [
        ("asterisk/en/declined.wav", 8000),
        ("asterisk/zh/declined.wav", 8000),
        ("freeswitch/en/8000/declined.wav", 8000),
        ("freeswitch/en/16000/declined.wav", 16000),
        ("freeswitch/zh/8000/declined.wav", 8000),
        ("freeswitch/zh/16000/declined.wav", 16000),
    ],
)
def test_prompt_format(path: str, rate: int) -> None:
    with wave.open(str(Path(PROMPTS / path)), "rb") as w:
        assert w.getnchannels() == 1
        assert w.getsampwidth() == 2
        assert w.getframerate() == rate
        assert w.getcomptype() == "NONE"
        assert 1.0 < w.getnframes() / rate < 8.0
