"""Dialled digits -> E.164, per tenant.

A switch hands us whatever the caller typed: national forms with a trunk prefix, international
prefixes (00, 011, ...), ``+`` forms, ``sip:``/``tel:`` URIs, and operator technical prefixes (an
outside-line ``9``, carrier-select codes, hidden-CLI codes). ``normalise()`` turns that into one
of three typed results and never raises: a :class:`Subscriber` with its E.164 form, a
:class:`ShortNumber` (emergency and short service numbers, never commercial callees), or an
:class:`InvalidNumber` with reason ``invalid_number``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Final
from urllib.parse import unquote

import phonenumbers
from phonenumbers import shortnumberinfo
from phonenumbers.phonenumberutil import is_number_type_geographical

from dncgate.numbers_fast import fast_subscriber, warm

INVALID_NUMBER: Final = "invalid_number"
_COUNTRY_CODES: Final = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
MAX_DIALLED_CHARS: Final = 256
# Separators people and switches put inside numbers; tel: URIs use the same "visual separators".
_VISUAL_SEPARATORS = re.compile(r"[\s\-.()/\[\]]")
_DIALLABLE = re.compile(r"\+?[0-9*#]+")
_MAX_SHORT_DIGITS: Final = 6
_NOT_VALID: Final = "not a valid number for its country"


class ShortKind(StrEnum):
    EMERGENCY = "emergency"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class DialPlan:
    """How one tenant's subscribers dial. Hashable, so normalisation can be cached per plan."""

    region: str = "US"
    # None: use the region's own national (trunk) prefix from phonenumbers' metadata.
    trunk_prefix: str | None = None
    # Extra prefixes read as "+" (e.g. "00" for NANPA dialers that send it). The region's own
    # international prefix (00 in most of the world, 011 in NANPA, 010 in Japan, 0011 in
    # Australia...) is always understood, from phonenumbers' metadata. Never list a prefix that
    # begins national numbers in the region: "011" would turn Leicester's 0116 numbers into New
    # Zealand ones, "00" Japan's 0066 freephone numbers into Thai ones.
    international_prefixes: tuple[str, ...] = ()
    # Stripped before anything else; each at most once. "X" matches any digit ("1010XXX").
    technical_prefixes: tuple[str, ...] = ()
    # Extra numbers the operator wants treated as short service numbers (never commercial).
    extra_short_numbers: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Subscriber:
    raw: str
    e164: str
    # Tied to a place (phonenumbers' is_number_type_geographical): a fixed line, or a mobile where
    # mobile ranges are regional. Otherwise only the country, not a prefix, says its time zones.
    geographical: bool = field(default=True, compare=False)

    @property
    def digits(self) -> int:
        """The E.164 number without '+', as an integer: how the list stores encode it."""
        return int(self.e164[1:])


@dataclass(frozen=True, slots=True)
class ShortNumber:
    raw: str
    digits: str
    kind: ShortKind


@dataclass(frozen=True, slots=True)
class InvalidNumber:
    raw: str
    detail: str
    reason: str = INVALID_NUMBER


Callee = Subscriber | ShortNumber | InvalidNumber


def normalise(raw: str, plan: DialPlan) -> Callee:
    """Normalise what was dialled under ``plan``. Never raises."""
    if not isinstance(raw, str):
        return InvalidNumber(repr(raw), "not a string")
    if len(raw) > MAX_DIALLED_CHARS:
        return InvalidNumber(raw[:MAX_DIALLED_CHARS], f"longer than {MAX_DIALLED_CHARS} characters")
    return _normalise_cached(raw, plan)


@lru_cache(maxsize=65536)
def _normalise_cached(raw: str, plan: DialPlan) -> Callee:
    return normalise_uncached(raw, plan)


def normalise_uncached(raw: str, plan: DialPlan) -> Callee:
    """``normalise`` without its cache: the fast path for plain digits, else phonenumbers."""
    fast = fast_subscriber(raw, plan, strip_technical_prefixes(raw, plan.technical_prefixes))
    if fast is not None:  # plain digits (numbers_fast): phonenumbers' answer without phonenumbers' parser
        if fast.e164 is None:
            return InvalidNumber(raw, _NOT_VALID)
        return Subscriber(raw, fast.e164, fast.geographical)
    return reference(raw, plan)


def reference(raw: str, plan: DialPlan) -> Callee:
    """phonenumbers' answer for ``raw`` under ``plan``, uncached: the fast path's reference and fallback."""
    try:
        return _normalise(raw, plan)
    except (phonenumbers.NumberParseException, ValueError, IndexError) as exc:
        return InvalidNumber(raw, f"unparseable: {exc}")


def _normalise(raw: str, plan: DialPlan) -> Callee:
    user = uri_user(raw.strip())
    dialled = _VISUAL_SEPARATORS.sub("", user)
    if not dialled:
        return InvalidNumber(raw, "empty")
    if not _DIALLABLE.fullmatch(dialled):
        return InvalidNumber(raw, "contains characters that cannot be dialled")
    # Short numbers are checked as dialled and again without technical prefixes: with "9" as
    # the outside-line prefix, both "911" and "9911" must reach emergency services.
    stripped = strip_technical_prefixes(dialled, plan.technical_prefixes)
    shorts = [(kind, d) for d in (dialled, stripped) if d and (kind := _short_number(d, plan)) is not None]
    if shorts:
        kind, digits = min(shorts, key=lambda s: s[0] is not ShortKind.EMERGENCY)
        return ShortNumber(raw, digits, kind)
    dialled = stripped
    if not dialled:
        return InvalidNumber(raw, "nothing left after technical prefixes")
    if "*" in dialled or "#" in dialled:
        return InvalidNumber(raw, "service code, not a subscriber number")
    international = _international_form(dialled, plan)
    if international is not None:
        number = phonenumbers.parse(international, None)
    else:
        number = phonenumbers.parse(_national_form(dialled, plan), plan.region)
    # number_type() is UNKNOWN exactly when is_valid_number() is false (both look the number up
    # in its region's patterns); one call gives both answers.
    number_kind: int = phonenumbers.number_type(number)
    if number_kind == phonenumbers.PhoneNumberType.UNKNOWN:
        return InvalidNumber(raw, _NOT_VALID)
    return Subscriber(
        raw, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        is_number_type_geographical(number_kind, number.country_code or 0),
    )


def country_code_length(digits: str) -> int:
    """How many leading digits of an E.164 number (no ``+``) are its country code; 0 for none.
    phonenumbers takes the first of 1, 2, 3 digits that is a country code (the codes are prefix-free)."""
    if digits[:1] == "0":  # no country code starts with 0 ("020" is not Egypt's 20)
        return 0
    return next((n for n in (1, 2, 3) if digits[:n].isdigit() and int(digits[:n]) in _COUNTRY_CODES), 0)


def warm_up(plans: Iterable[DialPlan]) -> None:
    """Load phonenumbers' metadata for each plan's region now, not on its first call.

    phonenumbers reads a region's metadata (and compiles its patterns) lazily, which costs the
    first call for each region several milliseconds. A server calls this once at start-up.
    Nothing is cached: the example number goes through the uncached path.
    """
    for plan in plans:
        warm(plan)
        example = phonenumbers.example_number(plan.region)
        if example is not None:
            with contextlib.suppress(phonenumbers.NumberParseException, ValueError, IndexError):
                _normalise(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164), plan)


def uri_user(text: str) -> str:
    """The user part of a sip:/sips:/tel: URI (percent-decoded, parameters dropped); else ``text``."""
    lowered = text[:5].lower()
    if lowered.startswith("<"):
        text = text.strip("<>")
        lowered = text[:5].lower()
    if lowered.startswith("tel:"):
        return unquote(text[4:].split(";", 1)[0])
    if lowered.startswith(("sip:", "sips:")):
        rest = text.split(":", 1)[1]
        user = rest.split("@", 1)[0] if "@" in rest else rest
        return unquote(user.split(";", 1)[0])
    return text


def strip_technical_prefixes(dialled: str, prefixes: tuple[str, ...]) -> str:
    """Strip configured prefixes from the front, longest match first, each at most once."""
    remaining = list(prefixes)
    while remaining:
        match = max((p for p in remaining if _prefix_matches(dialled, p)), key=len, default=None)
        if match is None:
            break
        dialled = dialled[len(match) :]
        remaining.remove(match)
    return dialled


def _prefix_matches(dialled: str, prefix: str) -> bool:
    if len(dialled) <= len(prefix):
        return False
    return all(p == d or (p in "Xx" and d.isdigit()) for p, d in zip(prefix, dialled, strict=False))


def _short_number(dialled: str, plan: DialPlan) -> ShortKind | None:
    if dialled.startswith("+") or len(dialled) > _MAX_SHORT_DIGITS:
        return None
    if dialled in plan.extra_short_numbers:
        return ShortKind.SERVICE
    if not dialled.isdigit():
        return None
    if phonenumbers.is_emergency_number(dialled, plan.region):
        return ShortKind.EMERGENCY
    parsed = phonenumbers.parse(dialled, plan.region)
    if shortnumberinfo.is_valid_short_number_for_region(parsed, plan.region):
        return ShortKind.SERVICE
    return None


def _international_form(dialled: str, plan: DialPlan) -> str | None:
    if dialled.startswith("+"):
        return dialled
    for prefix in sorted(plan.international_prefixes, key=len, reverse=True):
        # As phonenumbers reads the region's own: not before a 0, which begins no country code
        # (India's 000800 numbers stay national with "00" configured).
        if prefix and dialled.startswith(prefix) and dialled[len(prefix) : len(prefix) + 1] not in ("", "0"):
            return "+" + dialled[len(prefix) :]
    return None


def _national_form(dialled: str, plan: DialPlan) -> str:
    # An operator-configured trunk prefix replaces the region's own; phonenumbers strips the latter.
    if plan.trunk_prefix is None or starts_with_own_international_prefix(dialled, plan.region):
        # phonenumbers reads the region's own international prefix first (0033... in FR, whatever
        # the trunk prefix): it is always understood, as with the region's own trunk prefix.
        return dialled
    if plan.trunk_prefix and dialled.startswith(plan.trunk_prefix):
        dialled = dialled[len(plan.trunk_prefix) :]
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(plan.region)
    own = metadata.national_prefix if metadata is not None else None
    # Re-add the region's own prefix so phonenumbers reads the rest as a national number.
    return (own or "") + dialled


@lru_cache(maxsize=256)
def _own_international_prefix(region: str) -> re.Pattern[str] | None:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    pattern = metadata.international_prefix if metadata is not None else None
    return re.compile(pattern) if pattern else None


def starts_with_own_international_prefix(dialled: str, region: str) -> bool:
    """Whether ``dialled`` (digits) starts with ``region``'s international prefix as phonenumbers reads
    it (``00`` in FR, ``011`` in the US, ``0011`` in AU...): a match followed by a digit other than 0,
    since no country code starts with 0."""
    pattern = _own_international_prefix(region)
    match = pattern.match(dialled) if pattern is not None else None
    return match is not None and dialled[match.end() : match.end() + 1] not in ("", "0")


_PREFIX_DIGITS = re.compile(r"[0-9]{1,8}")
_TECHNICAL_PREFIX = re.compile(r"[0-9Xx*#]{1,16}")


def dial_plan_problems(plan: DialPlan) -> list[str]:
    """What is wrong with ``plan`` as configured, one sentence each; empty when nothing is.

    Checks the region, the trunk prefix (digits, not the region's international prefix), each
    international prefix (digits, and no valid national number of the region starts with it:
    ``011`` in GB or IN would turn Leicester's 0116 or Delhi's 011 numbers into foreign ones) and each
    technical prefix (digits, ``*``, ``#`` or ``X``; not only ``X``; not the start of an international prefix)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(plan.region)
    if metadata is None:
        return [f"region {plan.region!r} is not a region phonenumbers knows (an ISO 3166 code such as US, GB, CN)"]
    problems: list[str] = []
    trunk = plan.trunk_prefix
    if trunk is not None and trunk and not _PREFIX_DIGITS.fullmatch(trunk):
        problems.append(f"trunk_prefix {trunk!r} is not 1-8 digits (or empty)")
    elif trunk and starts_with_own_international_prefix(trunk + "1", plan.region):
        problems.append(f"trunk_prefix {trunk!r} starts like {plan.region}'s own international prefix")
    for prefix in plan.international_prefixes:
        if not _PREFIX_DIGITS.fullmatch(prefix):
            problems.append(f"international prefix {prefix!r} is not 1-8 digits")
        elif (example := _national_number_starting(prefix, plan.region)) is not None:
            problems.append(f"international prefix {prefix!r} begins {plan.region} national numbers "
                            f"({example}): they would be read as international")
    for prefix in plan.technical_prefixes:
        if not _TECHNICAL_PREFIX.fullmatch(prefix):
            problems.append(f"technical prefix {prefix!r} is not 1-16 of the digits, *, # and X (any digit)")
        elif not prefix.strip("Xx"):
            problems.append(f"technical prefix {prefix!r} is only X: it would strip the start of every number")
        elif any(_prefix_matches(idd + "1", prefix) for idd in _international_prefixes_of(plan)):
            problems.append(f"technical prefix {prefix!r} would strip the start of the international prefix")
    return problems


def _international_prefixes_of(plan: DialPlan) -> list[str]:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(plan.region)
    own = metadata.preferred_international_prefix or metadata.international_prefix if metadata else None
    return [p for p in (own, *plan.international_prefixes) if p and p.isdigit()]


@lru_cache(maxsize=64)
def _national_number_starting(prefix: str, region: str) -> str | None:
    """A valid national number of ``region``, dialled as such, that starts with ``prefix``; None when
    none of the candidates tried is one (the prefix, up to two more digits, then one digit repeated,
    at each length a national number has, with and without the trunk prefix). Up to ~0.5 s, cached."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        return None
    general = metadata.general_desc
    lengths = (general.possible_length if general is not None else None) or (10,)
    trunk = metadata.national_prefix or ""
    totals = sorted({n + extra for n in lengths for extra in {0, len(trunk)}})
    for more in ("", *map(str, range(10)), *(f"{a}{b}" for a in range(10) for b in range(10))):
        for total in totals:
            for fill in "0123456789":
                dialled = (prefix + more).ljust(total, fill)
                if (len(prefix) + len(more) > total or total <= len(prefix) or dialled[len(prefix)] == "0"
                        or starts_with_own_international_prefix(dialled, region)):
                    continue  # not read as international after the prefix; or it is anyway
                with contextlib.suppress(phonenumbers.NumberParseException):
                    number = phonenumbers.parse(dialled, region)
                    if number.country_code == metadata.country_code and phonenumbers.is_valid_number(number):
                        return dialled
    return None


_RULE_DIGITS = re.compile(r"\+?[0-9]{1,15}")


def rule_prefix(text: str, region: str, *, force: bool = False) -> str:
    """A prefix rule as E.164 digits without ``+``; raises ``ValueError`` saying why not.

    ``+86170`` is E.164; ``0086170`` starts with ``region``'s own international prefix; anything
    else is national, read in ``region`` (``170`` or ``0170`` in CN is ``86170``). A prefix no
    longer than its country code (``+86``: a whole country) or shorter than any (``+8``: Japan,
    Korea, China...) is refused unless ``force``."""
    dialled = _VISUAL_SEPARATORS.sub("", text.strip())
    if not _RULE_DIGITS.fullmatch(dialled):
        raise ValueError(f"prefix {text!r}: expected digits, like +86170 or, in the list's region, 170")
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    idd = _own_international_prefix(region)
    international = idd.match(dialled) if idd and starts_with_own_international_prefix(dialled, region) else None
    if dialled.startswith("+"):
        digits = dialled[1:]
    elif international is not None:
        digits = dialled[international.end() :]
    elif metadata is None or metadata.country_code is None:
        raise ValueError(f"prefix {text!r}: national, but region {region!r} is unknown: give it as +CC...")
    else:
        trunk = metadata.national_prefix or ""
        digits = str(metadata.country_code) + (dialled.removeprefix(trunk) if trunk else dialled)
    if not 1 <= len(digits) <= 15:
        raise ValueError(f"prefix {text!r}: +{digits} is not 1-15 digits of an E.164 number")
    size = country_code_length(digits)
    codes = sorted(c for c in _COUNTRY_CODES if str(c).startswith(digits)) if size == 0 else []
    if size == 0 and not codes:
        raise ValueError(f"prefix +{digits} starts no country code: it would block nothing")
    if not force and size == 0:
        shown = ", ".join(f"+{c}" for c in codes[:6]) + (", ..." if len(codes) > 6 else "")
        raise ValueError(f"prefix +{digits} is shorter than any country code: it would block every number "
                         f"of {shown} (--force if you mean it)")
    if not force and len(digits) <= size:
        raise ValueError(f"prefix +{digits} is the whole of country code +{digits[:size]}: it would block every "
                         "number there (--force if you mean it)")
    return digits
