"""The annotated transcripts and the raw byte streams agree (so replay peers are exact)."""

from __future__ import annotations

import pytest
from esl_helpers import TRANSCRIPTS, fixture_bytes, transcript_steps


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_annotated_blocks_concatenate_to_raw_streams(name: str) -> None:
    steps = transcript_steps(name)
    assert steps, name
    assert b"".join(s.data for s in steps if s.direction == "rx") == fixture_bytes(f"{name}.rx.raw")
    assert b"".join(s.data for s in steps if s.direction == "tx") == fixture_bytes(f"{name}.tx.raw")
