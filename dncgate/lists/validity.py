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


ANY_DIGIT = "X"  # in a tail pattern's subject: a digit that may be any of 0-9


def _digit_class(body: str, covers_all: bool) -> bool:
    """Whether the class ``[body]`` matches every digit (``covers_all``) or any digit."""
    matched = [re.fullmatch(f"[{body}]", d) is not None for d in "0123456789"]
    return all(matched) if covers_all else any(matched)


def _tail_free(pattern: str) -> str | None:
    """``pattern`` rewritten so that an ``X`` in the subject stands for any digit, soundly: it matches
    a subject with Xs only if ``pattern`` matches it with every digit string in place of the Xs.

    Outside negative lookaheads an X is taken only where any digit would be (``\\d``, a class of
    all ten); inside one (where a match means refusal) wherever some digit would be. None when
    ``pattern`` uses anything beyond the digits, classes, groups, lookaheads, alternation,
    quantifiers and ``$`` of phonenumbers' patterns (the caller then checks every line)."""
    out: list[str] = []
    negated = [False]  # per open group: inside an odd number of negative lookaheads
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if pattern[i + 1 : i + 2] != "d":
                return None
            out.append(f"[0-9{ANY_DIGIT}]")
            i += 2
        elif char == "[":
            end = pattern.find("]", i + 1)
            body = pattern[i + 1 : end]
            if end < 0 or body.startswith("^") or "[" in body or ANY_DIGIT in body:
                return None
            widen = _digit_class(body, covers_all=not negated[-1])
            out.append(f"[{body}{ANY_DIGIT}]" if widen else f"[{body}]")
            i = end + 1
        elif char.isdigit():
            out.append(f"[{char}{ANY_DIGIT}]" if negated[-1] else char)
            i += 1
        elif char == "{":
            end = pattern.find("}", i)
            if end < 0 or not re.fullmatch(r"\d+(?:,\d*)?", pattern[i + 1 : end]):
                return None
            out.append(pattern[i : end + 1])
            i = end + 1
        elif char == "(":
            opener = pattern[i : i + 3]
            if opener in ("(?:", "(?="):
                negated.append(negated[-1])
            elif opener == "(?!":
                negated.append(not negated[-1])
            elif pattern[i + 1 : i + 2] == "?":
                return None  # a lookbehind, a named group, flags
            else:
                negated.append(negated[-1])
                opener = "("
            out.append(opener)
            i += len(opener)
        elif char == ")":
            if len(negated) == 1:
                return None
            negated.pop()
            out.append(char)
            i += 1
        elif char in "|?*+$":
            out.append(char)
            i += 1
        else:
            return None
    return "".join(out) if len(negated) == 1 else None


def tail_free_search(codes: frozenset[bytes]) -> re.Pattern[bytes] | None:
    """For a line ``+CC...`` whose last digits are replaced by ``X``: a match means every line with
    any digits there is valid (``invalid_lines_search`` finds none of them). None when a country
    code's pattern cannot be rewritten so (``_tail_free``)."""
    branches = []
    for code in sorted(codes):
        pattern = nsn_pattern(int(code))
        if pattern is None:
            continue  # no valid number: never matches, every line is checked
        rewritten = _tail_free(pattern)
        if rewritten is None:
            return None
        branches.append(code + b"(?:" + rewritten.encode("ascii") + b")")
    return re.compile(rb"\+(?:" + (b"|".join(branches) or b"(?!)") + rb")")
