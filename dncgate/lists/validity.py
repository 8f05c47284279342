"""phonenumbers' validity of an E.164 number as one regular expression per country code.

``normalise()`` takes a number as valid when ``phonenumbers.number_type`` is not UNKNOWN: the
national significant number (NSN) matches its region's general pattern (and possible lengths) and
one of the type patterns (fixed line, mobile, toll free, ...); with several regions for a country
code, the region is the first whose ``leading_digits`` match or, for one without, where the
number is valid. :func:`nsn_pattern` writes exactly that as one pattern over the NSN, so the list
fast path can check a whole chunk of ``+`` lines with one C-level scan (``lists.fastlines``) and
still accept and refuse what the full path does (tests/lists/test_validity.py holds it to
phonenumbers over every region).
"""

from __future__ import annotations

import re
from functools import cache

import phonenumbers
from phonenumbers import PhoneMetadata

# Any one type makes a number valid: the common ones first, so that most lines match at once.
_TYPES = ("mobile", "fixed_line", "toll_free", "premium_rate", "shared_cost", "voip", "personal_number", "pager",
          "uan", "voicemail")
# A pattern with its own anchors or back-references would not mean the same inside ours.
_UNSAFE = re.compile(r"[\^$]|\\[AZbB0-9]|\(\?P?[=<]")


def _metadata(country_code: int, region: str) -> PhoneMetadata | None:
    if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        return PhoneMetadata.metadata_for_nongeo_region(country_code)
    return PhoneMetadata.metadata_for_region(region)


def _desc(desc: object) -> str | None:
    """``_is_number_matching_desc`` as a pattern matching the whole NSN (to the end of the line), or None
    when the description matches nothing."""
    pattern = getattr(desc, "national_number_pattern", None)
    if desc is None or not pattern:
        return None
    if _UNSAFE.search(pattern):
        raise ValueError(f"phonenumbers pattern {pattern!r} uses anchors or references")
    lengths: tuple[int, ...] = tuple(getattr(desc, "possible_length", ()) or ())
    if lengths and all(n < 1 for n in lengths):
        return None  # (-1,): no number has this type
    guard = f"(?=(?:{'|'.join(f'[0-9]{{{n}}}' for n in lengths if n > 0)})$)" if lengths else ""
    return f"{guard}(?:{pattern})$"


def _region_valid(metadata: PhoneMetadata) -> str | None:
    """``_number_type_helper(nsn, metadata) != UNKNOWN`` as a pattern."""
    general = _desc(metadata.general_desc)
    types = [p for name in _TYPES if (p := _desc(getattr(metadata, name, None))) is not None]
    if general is None or not types:
        return None
    return f"(?={general})(?:{'|'.join(types)})"


@cache
def nsn_pattern(country_code: int) -> str | None:
    """A pattern that matches, from its start to the end of the line, exactly the national significant
    numbers of ``country_code`` that ``phonenumbers.number_type`` finds valid; None: none is."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if len(regions) == 1:  # region_code_for_number takes it without looking at the digits
        metadata = _metadata(country_code, regions[0])
        return _region_valid(metadata) if metadata is not None else None
    branches, earlier = [], ""
    for region in regions:
        metadata = _metadata(country_code, region)
        if metadata is None:
            continue
        valid = _region_valid(metadata)
        leading = metadata.leading_digits
        if valid is not None:
            branches.append(earlier + (f"(?={leading})" if leading else "") + valid)
        if leading:  # a later region is chosen only when these leading digits do not match
            earlier += f"(?!{leading})"
    return f"(?:{'|'.join(branches)})" if branches else None


@cache
def nsn_valid(country_code: int) -> re.Pattern[str] | None:
    """:func:`nsn_pattern` compiled, for one NSN at a time (``pattern.match(nsn)``)."""
    pattern = nsn_pattern(country_code)
    return re.compile(pattern) if pattern is not None else None


def valid_digits(country_code: int, national: str) -> bool:
    """Whether ``+`` country code and ``national`` (ASCII digits, as phonenumbers keeps them) is valid."""
    pattern = nsn_valid(country_code)
    return pattern is not None and pattern.match(national) is not None


def invalid_lines_search(codes: frozenset[bytes]) -> re.Pattern[bytes]:
    """Multiline: a line start where the line is not ``+CC`` and a valid NSN, for a chunk of plain
    ``+`` lines whose country codes are all in ``codes``."""
    branches = [code + b"(?:" + pattern.encode("ascii") + b")" for code in sorted(codes)
                if (pattern := nsn_pattern(int(code))) is not None]
    valid = b"|".join(branches) or b"(?!)"
    return re.compile(rb"^(?!\+(?:" + valid + rb"))", re.MULTILINE)
