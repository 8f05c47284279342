"""A listed ``+E.164`` number is stored as ``normalise()`` gives it for the same number dialled:
the ``+digits`` fast paths (``loader.number_of``, ``lists.fastlines``) agree with the full
normalisation over every country's example numbers with every kind of prefix phonenumbers strips
(a trunk ``0`` after ``+44``, Argentina's mobile ``15``, China's carrier codes...), and stay fast otherwise."""

from __future__ import annotations

import random
from pathlib import Path

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from dncgate.lists import fastlines
from dncgate.lists.entries import keeps_national_digits, number_of
from dncgate.lists.loader import load_file
from dncgate.lists.sync import parse_entries, parse_file
from dncgate.numbers import DialPlan, Subscriber, normalise
from dncgate.store.sqlite import SqliteListStore

US = DialPlan(region="US")
GB = DialPlan(region="GB")
TYPES = (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE,
         PhoneNumberType.PREMIUM_RATE, PhoneNumberType.VOIP, PhoneNumberType.UAN)
# Trunk prefixes, carrier codes and old mobile prefixes of national_prefix_for_parsing, and digits.
PREFIXES = ("", "0", "00", "1", "15", "9", "90", "179", "17951", "8", "11", "180020", "1001", "20", "3")


def _inputs() -> list[str]:
    found: set[str] = set()
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in TYPES:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            nsn = phonenumbers.national_significant_number(example)
            for prefix in PREFIXES:
                found.add(f"+{example.country_code}{prefix}{nsn}")
                found.add(f"+{example.country_code}{prefix}{nsn[:-1]}")
    for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        entity = phonenumbers.example_number_for_non_geo_entity(code)
        if entity is not None:
            found.add(f"+{code}{phonenumbers.national_significant_number(entity)}")
    rng = random.Random(7)
    found.update("+" + "".join(rng.choice("0123456789") for _ in range(rng.randint(8, 15))) for _ in range(3000))
    return sorted(found)


@pytest.fixture(scope="module")
def inputs() -> list[str]:
    return _inputs()


def test_the_fast_path_stores_what_normalise_gives(inputs: list[str]) -> None:
    stripped = 0
    for text in inputs:
        full = normalise(text, US)
        fast = number_of(text, US)
        if isinstance(full, Subscriber):
            assert fast == full.digits, text
            assert number_of(f"+{full.digits}", US) == full.digits  # the stored form is stable
            stripped += full.digits != int(text[1:])
        else:
            # Refused like normalise refuses it (tests/lists/test_fast_validity.py holds the fast
            # path to exactly that); at the least never stored other than as written.
            assert isinstance(fast, str) or fast == int(text[1:]), text
    assert stripped > 100  # the inputs do exercise the prefixes phonenumbers strips


@pytest.mark.parametrize(("text", "e164"), [
    ("+4402079460000", 442079460000),  # the UK trunk 0 after the country code
    ("+54111512345678", 5491112345678),  # Argentina's mobile 15, rewritten as 9 after the country code
    ("+112015550123", 12015550123),  # the NANP trunk 1
])
def test_prefixes_phonenumbers_strips_are_stripped(text: str, e164: int) -> None:
    assert number_of(text, US) == e164
    assert number_of(text, GB) == e164


def test_ordinary_numbers_keep_the_fast_path() -> None:
    assert keeps_national_digits(1, "2015550123")
    assert keeps_national_digits(44, "2079460000")
    assert keeps_national_digits(86, "13800138000")
    assert keeps_national_digits(39, "0612345678")  # Italy's leading 0 is part of the number
    assert not keeps_national_digits(44, "02079460000")
    assert not keeps_national_digits(54, "111512345678")


@pytest.mark.parametrize("chunk", [1, 64, 4 << 20])
def test_the_chunked_fast_path_agrees_on_every_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inputs: list[str], chunk: int
) -> None:
    monkeypatch.setattr(fastlines, "CHUNK_BYTES", chunk)
    texts = inputs if chunk > 64 else inputs[::7]
    path = tmp_path / "full.txt"
    path.write_text("\n".join(texts) + "\n")
    # Mostly invalid lines (a sweep, not a list): the give-up share is not what this compares.
    fast = parse_file(path, "lines", US, delta=False, give_up=None)
    slow = parse_entries(path, "lines", US, delta=False, give_up=None)
    assert list(fast.adds) == list(slow.adds)
    assert fast.invalid == slow.invalid
    assert fast.read == slow.read


def test_a_chunk_of_plain_lines_with_a_trunk_prefix_among_them(tmp_path: Path) -> None:
    """The whole-chunk path: one search finds the prefixed lines, the rest stay vectorised."""
    numbers = [f"+4420794{i:05d}" for i in range(2000)]
    numbers[5] = "+4402079460005"
    numbers[1500] = "+4402079461500"
    path = tmp_path / "uk.txt"
    path.write_text("\n".join(numbers) + "\n")
    parsed = parse_file(path, "lines", GB, delta=False)
    assert list(parsed.adds) == list(parse_entries(path, "lines", GB, delta=False).adds)
    assert parsed.adds[5] == 442079460005
    assert all(str(n).startswith("442") for n in parsed.adds)
    assert parsed.read == 2000


async def test_a_listed_number_with_a_trunk_prefix_matches_the_dialled_number(tmp_path: Path) -> None:
    path = tmp_path / "uk.txt"
    path.write_text("+4402079460000\n")
    store = SqliteListStore(tmp_path / "lists.sqlite3")
    try:
        await load_file(store, "national", path, GB)
        dialled = normalise("02079460000", GB)
        assert isinstance(dialled, Subscriber)
        assert (await store.facts("t", dialled.digits)).national is not None
    finally:
        await store.close()
