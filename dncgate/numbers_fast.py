"""The fast path of ``numbers.normalise`` for the forms almost every call takes.

A switch sends plain digits: the tenant's national form (with or without its trunk prefix), its
international prefix, ``+E.164``, any of them behind a configured technical prefix. For those,
:func:`fast_subscriber` does what ``phonenumbers.parse`` + ``number_type`` + ``format_number`` do,
step for step (the same metadata, the same national-prefix and country-code rules), without the
general parser's work on text (letters, extensions, RFC 3966, Unicode digits) and with each region's
number types matched by one precompiled pattern per number length instead of up to eleven.

It answers only when the answer is a valid subscriber number; anything else (short numbers,
invalid numbers, URIs, separators, ``*``/``#``, a region whose national prefix is rewritten by a
transform rule) returns ``None`` and ``numbers.normalise`` asks phonenumbers, the reference. The
property test (tests/core/test_numbers_fast.py) checks both give the same answer over every region
and every form README's "Dialled digits" lists.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, NamedTuple, Protocol

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberType
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, is_number_type_geographical


class DialPlan(Hashable, Protocol):
    """What the fast path reads of ``numbers.DialPlan`` (not imported: numbers imports this module)."""

    @property
    def region(self) -> str: ...
    @property
    def trunk_prefix(self) -> str | None: ...
    @property
    def international_prefixes(self) -> tuple[str, ...]: ...


_MIN_NSN: Final = 2  # phonenumbers' _MIN_LENGTH_FOR_NSN
_MAX_NSN: Final = 17  # phonenumbers' _MAX_LENGTH_FOR_NSN
_MAX_SHORT_DIGITS: Final = 6  # numbers.normalise checks anything this short as a short number first
_TECHNICAL: Final = "0123456789*#"  # what a technical prefix strips off a number numbers.normalise accepts
# The order phonenumbers' _number_type_helper tries the types in; fixed line and mobile come last.
_TYPE_ORDER: Final = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
    ("fixed_line", PhoneNumberType.FIXED_LINE),
    ("mobile", PhoneNumberType.MOBILE),
)


@dataclass(frozen=True, slots=True)
class _Region:
    """One region's (or non-geographical entity's) metadata, compiled for the fast path."""

    country_code: int
    general: re.Pattern[str] | None
    possible: tuple[int, ...]
    local_only: frozenset[int]
    national_prefix_for_parsing: re.Pattern[str] | None
    leading_digits: re.Pattern[str] | None
    # Per national-number length: one alternation of the type patterns that allow that length,
    # in phonenumbers' order; the group that matched says the type.
    types: dict[int, tuple[re.Pattern[str], tuple[int, ...]]]
    mobile: re.Pattern[str] | None
    same_mobile_and_fixed: bool
    transform: str | None  # national_prefix_transform_rule, as re.sub reads it
    # A type pattern with a group of its own, or no possible lengths: phonenumbers says the type.
    untyped: bool

    def matches_general(self, nsn: str) -> bool:
        return self.general is not None and self.general.fullmatch(nsn) is not None

    def number_type(self, nsn: str) -> int:
        """phonenumbers' _number_type_helper(nsn, metadata)."""
        if (self.possible and len(nsn) not in self.possible) or not self.matches_general(nsn):
            return PhoneNumberType.UNKNOWN
        entry = self.types.get(len(nsn))
        match = entry[0].fullmatch(nsn) if entry is not None else None
        if entry is None or match is None or match.lastindex is None:
            return PhoneNumberType.UNKNOWN
        kind = entry[1][match.lastindex - 1]
        if kind != PhoneNumberType.FIXED_LINE:
            return kind
        if self.same_mobile_and_fixed:
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        mobile = PhoneNumberType.MOBILE in entry[1] and self.mobile is not None and self.mobile.fullmatch(nsn)
        return PhoneNumberType.FIXED_LINE_OR_MOBILE if mobile else PhoneNumberType.FIXED_LINE

    def length_result(self, nsn: str) -> str:
        """phonenumbers' _test_number_length(nsn, metadata) for the UNKNOWN type, as a word."""
        size = len(nsn)
        if size in self.local_only:
            return "local_only"
        if not self.possible:
            return "invalid_length"
        if self.possible[0] == size:
            return "possible"
        if self.possible[0] > size:
            return "too_short"
        if self.possible[-1] < size:
            return "too_long"
        return "possible" if size in self.possible[1:] else "invalid_length"

    def strip_national_prefix(self, number: str) -> str | None:
        """phonenumbers' _maybe_strip_national_prefix_carrier_code; None where phonenumbers would raise."""
        if not number or self.national_prefix_for_parsing is None:
            return number
        match = self.national_prefix_for_parsing.match(number)
        if match is None:
            return number
        groups = match.groups()
        if self.transform is not None and not groups:
            return None  # phonenumbers indexes the last group of a pattern that has none
        if self.transform is None or groups[-1] is None:
            rest = number[match.end() :]
        else:
            rest = self.national_prefix_for_parsing.sub(self.transform, number, count=1)
        if self.matches_general(number) and not self.matches_general(rest):
            return number
        return rest


_UNSURE: Final = _Region(0, None, (), frozenset(), None, None, {}, None, False, None, True)


def _compile(metadata: PhoneMetadata) -> _Region:
    general = metadata.general_desc
    possible = tuple(general.possible_length or ()) if general is not None else ()
    types: dict[int, tuple[re.Pattern[str], tuple[int, ...]]] = {}
    descs = [(getattr(metadata, name), kind) for name, kind in _TYPE_ORDER]
    grouped = False
    for size in set(possible):
        chosen = [(desc.national_number_pattern, kind) for desc, kind in descs
                  if desc is not None and desc.national_number_pattern
                  and (not desc.possible_length or size in desc.possible_length)]
        if chosen:
            pattern = re.compile("|".join(f"({p})" for p, _ in chosen))
            grouped = grouped or pattern.groups != len(chosen)
            types[size] = (pattern, tuple(kind for _, kind in chosen))
    mobile = metadata.mobile
    prefix = metadata.national_prefix_for_parsing
    return _Region(
        country_code=metadata.country_code or 0,
        general=re.compile(general.national_number_pattern)
        if general is not None and general.national_number_pattern else None,
        possible=possible,
        local_only=frozenset(general.possible_length_local_only or ()) if general is not None else frozenset(),
        national_prefix_for_parsing=re.compile(prefix) if prefix else None,
        leading_digits=re.compile(metadata.leading_digits) if metadata.leading_digits else None,
        types=types,
        mobile=re.compile(mobile.national_number_pattern)
        if mobile is not None and mobile.national_number_pattern else None,
        same_mobile_and_fixed=bool(metadata.same_mobile_and_fixed_line_pattern),
        transform=metadata.national_prefix_transform_rule or None,
        # Without possible lengths phonenumbers tries the types at any length: not compiled here.
        untyped=grouped or not possible,
    )


@lru_cache(maxsize=512)
def _region(code: str, country_code: int) -> _Region | None:
    """The compiled metadata of a region code, or of a non-geographical calling code ("001")."""
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, code)
    return _compile(metadata) if metadata is not None else None


def _main_region(country_code: int) -> str:
    return str(COUNTRY_CODE_TO_REGION_CODE[country_code][0])


def _country_code(digits: str) -> int:
    """phonenumbers' _extract_country_code: 0 when no 1-3 leading digits are a calling code."""
    if not digits or digits[0] == "0":
        return 0
    for size in (1, 2, 3):
        if size <= len(digits) and int(digits[:size]) in COUNTRY_CODE_TO_REGION_CODE:
            return int(digits[:size])
    return 0


@dataclass(frozen=True, slots=True)
class _Plan:
    region_code: str
    home: _Region
    idd: re.Pattern[str] | None  # the region's own international prefix
    international_prefixes: tuple[str, ...]  # the tenant's, longest first
    trunk_prefix: str | None
    own_national_prefix: str


@lru_cache(maxsize=256)
def _plan(plan: DialPlan) -> _Plan | None:
    metadata = PhoneMetadata.metadata_for_region(plan.region)
    if metadata is None:
        return None
    home = _region(plan.region, metadata.country_code or 0)
    if home is None:
        return None
    idd = metadata.international_prefix
    return _Plan(plan.region, home, re.compile(idd) if idd else None,
                 tuple(sorted(plan.international_prefixes, key=len, reverse=True)), plan.trunk_prefix,
                 metadata.national_prefix or "")


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


class Fast(NamedTuple):
    """What the fast path found: ``e164`` None for a number phonenumbers parses but finds not valid."""

    e164: str | None
    geographical: bool = False


NOT_VALID: Final = Fast(None)


def fast_subscriber(dialled: str, plan: DialPlan, technical: str | None = None) -> Fast | None:
    """:class:`Fast` for plain ASCII digits (or ``+`` digits) dialled under ``plan``; ``None`` whenever
    phonenumbers might answer otherwise than a valid number or "not a valid number for its country"
    (a short number, a parse error, a form not plain): phonenumbers then decides.

    ``technical``: ``dialled`` with the plan's technical prefixes stripped (numbers.strip_technical_prefixes)."""
    compiled = _plan(plan)
    stripped = dialled if technical is None else technical
    if compiled is None or len(dialled) <= _MAX_SHORT_DIGITS or len(stripped) <= _MAX_SHORT_DIGITS:
        return None  # short-number territory: phonenumbers' short-number metadata decides
    # numbers.normalise wants [+]digits/*/# dialled and digits left after the technical prefixes.
    head = dialled[: len(dialled) - len(stripped)]
    if not _is_digits(stripped[1:] if stripped[0] == "+" and not head else stripped) or head.strip(_TECHNICAL):
        return None
    international = _international_digits(compiled, stripped)
    parsed = _national(compiled, _national_form(compiled, stripped)) if international is None \
        else _after_idd(international)
    if parsed is None:
        return None
    country_code, nsn = parsed
    region = _number_region(country_code, nsn)
    if region is _UNSURE:
        return None
    kind = region.number_type(nsn) if region is not None else PhoneNumberType.UNKNOWN
    if kind == PhoneNumberType.UNKNOWN:
        return NOT_VALID
    return Fast(f"+{country_code}{nsn}", is_number_type_geographical(kind, country_code))


def _international_digits(plan: _Plan, dialled: str) -> str | None:
    """What follows ``+`` or one of the tenant's international prefixes (numbers._international_form)."""
    if dialled[0] == "+":
        return dialled[1:]
    for prefix in plan.international_prefixes:
        if prefix and dialled.startswith(prefix) and dialled[len(prefix) : len(prefix) + 1] not in ("", "0"):
            return dialled[len(prefix) :]
    return None


def _after_idd(digits: str) -> tuple[int, str] | None:
    """phonenumbers.parse of a number after its ``+`` or IDD: calling code, then the national number."""
    if len(digits) <= _MIN_NSN:
        return None
    country_code = _country_code(digits)
    if country_code == 0:
        return None
    metadata = _region(_main_region(country_code), country_code)
    if metadata is None:
        return None
    return _finish(metadata, digits[len(str(country_code)) :])


def _national_form(plan: _Plan, dialled: str) -> str:
    """numbers._national_form: an operator trunk prefix replaced by the region's own."""
    if plan.trunk_prefix is None or _starts_with_idd(plan, dialled):
        return dialled
    if plan.trunk_prefix and dialled.startswith(plan.trunk_prefix):
        dialled = dialled[len(plan.trunk_prefix) :]
    return plan.own_national_prefix + dialled


def _starts_with_idd(plan: _Plan, dialled: str) -> bool:
    match = plan.idd.match(dialled) if plan.idd is not None else None
    return match is not None and dialled[match.end() : match.end() + 1] not in ("", "0")


def _national(plan: _Plan, number: str) -> tuple[int, str] | None:
    """phonenumbers.parse(number, region) of digits with no ``+``."""
    home = plan.home
    idd = plan.idd.match(number) if plan.idd is not None else None
    if idd is not None and number[idd.end() : idd.end() + 1] != "0":
        return _after_idd(number[idd.end() :])
    metadata = home
    country = str(home.country_code)
    national = number
    if number.startswith(country):
        potential = home.strip_national_prefix(number[len(country) :])
        if potential is None:
            return None
        if ((not home.matches_general(number) and home.matches_general(potential))
                or home.length_result(number) == "too_long"):
            national = potential
            if _main_region(home.country_code) != plan.region_code:
                main = _region(_main_region(home.country_code), home.country_code)
                if main is None:
                    return None
                metadata = main
    return _finish(metadata, national)


def _finish(metadata: _Region, national: str) -> tuple[int, str] | None:
    """The end of phonenumbers.parse: the national prefix stripped when what is left has a possible length."""
    if len(national) < _MIN_NSN:
        return None
    potential = metadata.strip_national_prefix(national)
    if potential is None:
        return None
    if metadata.length_result(potential) not in ("too_short", "local_only", "invalid_length"):
        national = potential
    if not _MIN_NSN <= len(national) <= _MAX_NSN:
        return None
    return metadata.country_code, national


def _number_region(country_code: int, nsn: str) -> _Region | None:
    """phonenumbers' region_code_for_number, then the metadata number_type() uses (None: no region;
    ``_UNSURE``: a region whose types are not compiled here)."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions:
        return None
    if len(regions) == 1:
        region = _region(str(regions[0]), country_code)
        return _UNSURE if region is not None and region.untyped else region
    for code in regions:
        region = _region(str(code), country_code)
        if region is None:
            continue
        if region.untyped:
            return _UNSURE
        if region.leading_digits is not None:
            if region.leading_digits.match(nsn):
                return region
        elif region.number_type(nsn) != PhoneNumberType.UNKNOWN:
            return region
    return None


def warm(plan: DialPlan) -> None:
    """Compile the plan's region now (phonenumbers loads metadata lazily)."""
    compiled = _plan(plan)
    if compiled is not None:
        for code in COUNTRY_CODE_TO_REGION_CODE.get(compiled.home.country_code, ()):
            _region(str(code), compiled.home.country_code)


__all__ = ["NOT_VALID", "Fast", "fast_subscriber", "phonenumbers", "warm"]
