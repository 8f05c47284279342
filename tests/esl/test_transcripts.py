"""The annotated transcripts and the raw byte streams agree (so replay peers are exact)."""

from __future__ import annotations

from pathlib import Path

import pytest
from esl_helpers import CHAT_FIXTURES, CHAT_TRANSCRIPTS, FIXTURES, TRANSCRIPTS, transcript_steps


@pytest.mark.parametrize(("fixtures", "name"), [(FIXTURES, n) for n in TRANSCRIPTS]
                         + [(CHAT_FIXTURES, n) for n in CHAT_TRANSCRIPTS])
def test_annotated_blocks_concatenate_to_raw_streams(fixtures: Path, name: str) -> None:
    steps = transcript_steps(name, fixtures)
    assert steps, name
    assert b"".join(s.data for s in steps if s.direction == "rx") == (fixtures / f"{name}.rx.raw").read_bytes()
    assert b"".join(s.data for s in steps if s.direction == "tx") == (fixtures / f"{name}.tx.raw").read_bytes()
