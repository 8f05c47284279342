"""The ``+`` fast paths accept and refuse exactly what ``normalise()`` does (issue 11.6: 2,000,000
invalid 14-digit ``+86`` numbers loaded with "invalid 0" while the same numbers in national form were
refused). Held to phonenumbers over every region: a deterministic sweep of its example numbers per
region and type with invalid variants, and a property test (a fixed, small budget) around them."""

from __future__ import annotations

import random
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dncgate.lists import fastlines
from dncgate.lists.entries import number_of
from dncgate.lists.sync import parse_file
from dncgate.lists.validity import nsn_pattern, valid_digits
from dncgate.numbers import DialPlan, Subscriber, normalise

PLAN = DialPlan(region="US")
REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


def expected(text: str) -> int | None:
    """What the full path stores for ``text`` (None: refused)."""
    result = normalise(text, PLAN)
    return result.digits if isinstance(result, Subscriber) else None


def accepted(text: str) -> int | None:
    got = number_of(text, PLAN)
    return got if isinstance(got, int) else None


def _examples() -> list[str]:
    found: set[str] = set()
    for region in REGIONS:
        for kind in phonenumbers.PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                found.add(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        entity = phonenumbers.example_number_for_non_geo_entity(code)
        if entity is not None:
            found.add(phonenumbers.format_number(entity, phonenumbers.PhoneNumberFormat.E164))
    return sorted(found)


EXAMPLES = _examples()


def _variants(text: str, rng: random.Random) -> list[str]:
    """Invalid (mostly) neighbours: a digit changed, one dropped, one added, the number doubled up."""
    digits = text[1:]
    out = [text, "+" + digits[:-1], "+" + digits + "7", "+" + digits[:3] + digits]
    for _ in range(6):
        at = rng.randrange(len(digits))
        out.append("+" + digits[:at] + str(rng.randrange(10)) + digits[at + 1 :])
    return out


def test_every_example_number_and_its_variants_agree_with_normalise() -> None:
    rng = random.Random(11)
    texts = [v for text in EXAMPLES for v in _variants(text, rng)]
    mismatches = [t for t in texts if accepted(t) != expected(t)]
    assert mismatches == []
    assert sum(expected(t) is None for t in texts) > 2000  # the sweep does refuse plenty
    assert sum(expected(t) is not None for t in texts) > 2000


def test_invalid_14_digit_plus86_numbers_are_refused() -> None:
    """The issue's reproduction: +86 and 12 digits is never a valid Chinese number, nor is a 138 number of 14."""
    for text in ("+8613800138000", "+86138001380001", "+86999999999999", "+86100000000000"):
        assert expected(text) is None or len(text) == 14
        assert accepted(text) == expected(text), text
    assert accepted("+86138001380001") is None
    assert accepted("+8613800138000") == 8613800138000


_EXAMPLE = st.sampled_from(EXAMPLES)
_MUTATED = st.tuples(_EXAMPLE, st.integers(0, 14), st.sampled_from("0123456789"), st.sampled_from("sid")).map(
    lambda t: "+" + _mutate(t[0][1:], t[1], t[2], t[3]))


def _mutate(digits: str, at: int, digit: str, how: str) -> str:
    at %= len(digits)
    if how == "s":
        return digits[:at] + digit + digits[at + 1 :]
    if how == "i":
        return digits[:at] + digit + digits[at:]
    return digits[:at] + digits[at + 1 :]


_ANY = st.text("0123456789", min_size=8, max_size=15).map(lambda d: "+" + d)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_EXAMPLE, _MUTATED, _ANY))
def test_the_fast_path_accepts_exactly_what_normalise_does(text: str) -> None:
    assert accepted(text) == expected(text)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(_EXAMPLE, _MUTATED, _ANY), min_size=1, max_size=60), st.sampled_from([1, 97, 4 << 20]))
def test_the_chunk_path_keeps_and_refuses_what_normalise_does(
    tmp_path_factory: pytest.TempPathFactory, texts: list[str], chunk: int,
) -> None:
    path = tmp_path_factory.mktemp("chunk") / "list.txt"
    path.write_text("\n".join(texts) + "\n")
    saved = fastlines.CHUNK_BYTES
    fastlines.CHUNK_BYTES = chunk
    try:
        parsed = parse_file(path, "lines", PLAN, delta=False)
    finally:
        fastlines.CHUNK_BYTES = saved
    wanted = [expected(t) for t in texts]
    assert list(parsed.adds) == [n for n in wanted if n is not None]
    assert [e.line for e in parsed.invalid] == [i for i, n in enumerate(wanted, start=1) if n is None]


def test_every_country_code_has_a_pattern_or_none_valid() -> None:
    for code in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
        pattern = nsn_pattern(code)
        if pattern is None:  # no region of it has any valid number
            assert not any(t.startswith(f"+{code}") and expected(t) is not None for t in EXAMPLES)
    assert valid_digits(86, "13800138000")
    assert not valid_digits(86, "1380013800")


def test_a_chunk_of_many_lines_with_a_few_invalid_keeps_the_rest(tmp_path: Path) -> None:
    texts = [f"+86138{i:08d}" for i in range(5000)]
    texts[10] = "+86" + "9" * 12  # not a Chinese number
    texts[4000] = "+8613800000000123"[:16]
    path = tmp_path / "cn.txt"
    path.write_text("\n".join(texts) + "\n")
    parsed = parse_file(path, "lines", DialPlan(region="CN"), delta=False)
    assert [e.line for e in parsed.invalid] == [11, 4001]
    assert len(parsed.adds) == 4998
    assert parsed.read == 5000


def test_a_leading_zero_is_no_country_code() -> None:
    """+0201... was read as Egypt's +20 and stored without its 0 (country_code_length took int("020"))."""
    assert number_of("+02015550123", PLAN) == "unknown country code"
    assert expected("+02015550123") is None
