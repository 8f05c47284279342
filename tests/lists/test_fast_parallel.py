"""The snapshot fast path's shortcuts keep its results exact: heads valid with any tail (a sorted
snapshot checks a few heads a chunk instead of every line), worker processes (the same numbers,
bad lines and order as one process), and the strictly-ascending flag that lets a sync skip sorting."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import phonenumbers
import pytest

from dncgate.lists import fastlines
from dncgate.lists.fastpool import PARALLEL_MIN_BYTES, WORKER_NICENESS, parse_workers, pieces
from dncgate.lists.validity import ANY_DIGIT, _tail_free, nsn_pattern, tail_free_search, valid_digits
from tests.lists.test_fast_validity import EXAMPLES, _variants


def _heads(tail: int) -> list[str]:
    """Heads (all but the last ``tail`` digits) of every region's example numbers and their variants."""
    rng = random.Random(5)
    texts = {v for text in EXAMPLES for v in _variants(text, rng)}
    return sorted({t[:-tail] for t in texts if len(t) >= 9 + tail - 4})


def _code_of(text: str) -> int | None:
    for size in (1, 2, 3):
        if text[1] != "0" and int(text[1 : 1 + size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return int(text[1 : 1 + size])
    return None  # no country code: the fast path never takes such a line


def _sound(heads: list[str], tail: int) -> tuple[int, int]:
    """(heads the rewritten pattern takes, heads checked); fails on a head it takes wrongly."""
    taken = 0
    for head in heads:
        code = _code_of(head)
        if code is None:
            continue
        search = tail_free_search(frozenset([str(code).encode()]))
        assert search is not None
        if search.match((head + ANY_DIGIT * tail).encode()) is None:
            continue
        taken += 1
        national = head[1 + len(str(code)) :]
        bad = [d for d in range(10**tail) if not valid_digits(code, national + f"{d:0{tail}d}")]
        assert bad == [], f"{head}: taken as valid with any {tail} digits, but not with {bad[:3]}"
    return taken, len(heads)


def test_every_country_codes_pattern_can_be_rewritten() -> None:
    codes = [c for c in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE) if nsn_pattern(c) is not None]
    assert [c for c in codes if _tail_free(nsn_pattern(c) or "") is None] == []


def test_a_head_taken_as_valid_is_valid_with_every_two_digit_tail_in_every_region() -> None:
    taken, checked = _sound(_heads(2), 2)
    assert taken > 1000
    assert taken < checked


def test_a_head_taken_as_valid_is_valid_with_every_four_digit_tail() -> None:
    heads = [*random.Random(3).sample(_heads(4), 60), "+86138001", "+1201555", "+44207946"]
    taken, _ = _sound(heads, 4)
    assert taken > 20


def test_inside_a_negative_lookahead_an_any_digit_may_be_any_digit() -> None:
    # "not 1 then 5": with X for the first digit, "15" is refused, so X5 is not all valid.
    rewritten = _tail_free("(?!1)[0-9]5$")
    assert rewritten is not None
    assert re.match(rewritten, "X5") is None
    assert re.match(rewritten, "25") is not None
    assert re.match(_tail_free("[2-9]5$") or "", "X5") is None  # not every digit
    assert re.match(_tail_free("[0-9]{2}$") or "", "XX") is not None


@pytest.mark.parametrize("pattern", ["(?<=1)2", "[^1]2", "\\w", "a", "(?P<n>1)", "(1", "1)", "1{x}"])
def test_what_it_cannot_rewrite_is_left_to_the_full_check(pattern: str) -> None:
    assert _tail_free(pattern) is None


def _mixed_file(path: Path) -> list[str]:
    rng = random.Random(9)
    texts = [f"+86138{rng.randrange(10**8):08d}" for _ in range(6000)]
    texts[100] = "+86" + "9" * 12  # not valid
    texts[2500] = "+4402079460000"  # a trunk 0 phonenumbers strips: number_of
    texts[4000:4000] = ["not a number", "# a comment", "+12015550123\r"]  # a CR line: the per-line path
    path.write_bytes(("\n".join(texts) + "\n").encode())
    return texts


def _parse(path: Path, workers: int) -> fastlines.FastParsed:
    from dncgate.lists.entries import number_of
    from dncgate.numbers import DialPlan

    return fastlines.parse_lines_fast(path, lambda t: number_of(t, DialPlan(region="CN")), workers=workers)


def test_worker_processes_give_what_one_process_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mixed.txt"
    _mixed_file(path)
    monkeypatch.setattr(fastlines, "CHUNK_BYTES", 4096)  # many chunks, some fast, some not
    one, two = _parse(path, 1), _parse(path, 2)
    assert list(two.numbers) == list(one.numbers)
    assert len(one.numbers) > 5000
    assert two.read == one.read
    assert [(e.line, e.problem) for e in two.invalid] == [(e.line, e.problem) for e in one.invalid]
    assert [e.line for e in one.invalid] == [101, 4001]
    assert not one.ascending
    assert not two.ascending


def test_a_strictly_ascending_file_is_said_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastlines, "CHUNK_BYTES", 4096)
    sorted_path, dup_path = tmp_path / "sorted.txt", tmp_path / "dup.txt"
    numbers = [f"+86138{i * 7:08d}" for i in range(3000)]
    sorted_path.write_text("\n".join(numbers) + "\n")
    dup_path.write_text("\n".join([*numbers[:2000], numbers[1999], *numbers[2000:]]) + "\n")
    for workers in (1, 2):
        assert _parse(sorted_path, workers).ascending
        assert not _parse(dup_path, workers).ascending  # a duplicate is not strictly ascending


def test_only_a_big_file_takes_worker_processes() -> None:
    assert parse_workers(PARALLEL_MIN_BYTES - 1) == 1
    assert parse_workers(PARALLEL_MIN_BYTES) >= 1


def niceness(_: bytes) -> int:
    return os.nice(0)


def test_the_workers_yield_the_cores_to_the_gate() -> None:
    with pieces(niceness, iter([b"a", b"b", b"c"]), 2) as made:
        seen = [nice for _, nice in made]
    assert seen == [min(19, os.nice(0) + WORKER_NICENESS)] * 3  # the kernel caps it at 19
