"""One list entry to the E.164 integer the stores keep: the same number ``normalise()`` gives for
the number dialled, by a fast path for the ``+`` forms national lists ship by the million."""

from __future__ import annotations

import re
from functools import cache

import phonenumbers
from phonenumbers import PhoneMetadata

from dncgate.lists.formats import Entry, LineError
from dncgate.lists.validity import valid_digits
from dncgate.numbers import DialPlan, InvalidNumber, Subscriber, country_code_length, normalise


@cache
def national_prefix(country_code: int) -> re.Pattern[str] | None:
    """The country's ``national_prefix_for_parsing`` (phonenumbers metadata): a trunk prefix,
    carrier code or old mobile prefix that ``phonenumbers.parse`` strips or rewrites at the start
    of the national number even after ``+CC`` (the UK's 0, China's 0 and 1790x, Argentina's mobile 15...)."""
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    pattern = metadata.national_prefix_for_parsing if metadata is not None else None
    return re.compile(pattern) if pattern else None


def keeps_national_digits(country_code: int, national: str) -> bool:
    """Whether ``phonenumbers.parse`` keeps ``national`` (after ``+country_code``) as it is: the
    condition under which ``_maybe_strip_national_prefix_carrier_code`` returns it unchanged, so
    ``normalise`` gives back exactly these digits (when the number is valid). False means it may
    strip or rewrite a prefix: only the full normalisation knows the stored form."""
    pattern = national_prefix(country_code)
    if pattern is None:
        return True
    match = pattern.match(national)
    return match is None or (match.end() == 0 and all(group is None for group in match.groups()))


def number_of(text: str, plan: DialPlan) -> int | str:
    """The E.164 integer for a list entry, or why it is not one.

    ``+`` forms take a fast path (a known country code and 8-15 digits): national lists ship
    millions of them and ``normalise`` costs ~20 us each. The fast path is taken only when
    phonenumbers would keep the digits as they are (``keeps_national_digits``) and finds them
    valid (``validity.valid_digits``, one regular expression), so it accepts and refuses exactly
    what ``normalise()`` of the same number dialled does: ``+4402079460000`` is stored as
    ``+442079460000``, an invalid one is refused with ``normalise``'s reason. Anything else is
    normalised like a dialled number under ``plan``.
    """
    if text.startswith("+") and text[1:].isascii() and text[1:].isdigit() and 8 <= len(text) - 1 <= 15:
        digits = text[1:]
        size = country_code_length(digits)
        if not size:
            return "unknown country code"
        code, national = int(digits[:size]), digits[size:]
        if keeps_national_digits(code, national) and valid_digits(code, national):
            return int(digits)
    result = normalise(text, plan)
    if isinstance(result, Subscriber):
        return result.digits
    if isinstance(result, InvalidNumber):
        return result.detail
    return "a short or emergency number, not a subscriber"


def entry_number(entry: Entry | LineError, plan: DialPlan) -> tuple[int, Entry] | LineError:
    """A parsed entry with its E.164 integer, or the line error to report for it."""
    if isinstance(entry, LineError):
        return entry
    number = number_of(entry.number, plan)
    return LineError(entry.line, entry.number, number) if isinstance(number, str) else (number, entry)
