"""``json.dumps(obj, ensure_ascii=False)``'s text for the flat objects every decision writes twice (its
audit record and its log line), made by msgspec's encoder at a fraction of the cost.

Only a dict whose values are all exactly ``str``, ``int``, ``bool`` or ``None`` takes msgspec: for those
msgspec writes what json does, character for character (msgspec escapes exactly json's set: ``"``,
``\\``, the control characters; non-ASCII as it is; ``format(indent=0)`` puts json's ", " and ": "
between items). Anything else (floats, containers, objects json hands to ``default``, a lone
surrogate msgspec refuses) is json's own work, as before. tests/core/test_jsontext.py holds both to
the same text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec

__all__ = ["compact", "spaced"]

_PLAIN = frozenset({str, int, bool, type(None)})
_ENCODE = msgspec.json.Encoder().encode
_FORMAT = msgspec.json.format
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _plain(obj: object) -> bool:
    return type(obj) is dict and _PLAIN.issuperset(map(type, obj.values()))


def compact(obj: Any) -> str:
    """``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)``."""
    if _plain(obj):
        try:
            return _ENCODE(obj).decode()
        except (ValueError, TypeError, msgspec.EncodeError):  # a lone surrogate, a huge int, a key not a str
            return _COMPACT(obj)  # json's own text, or its own error, as ever
    return _COMPACT(obj)


def spaced(obj: Any, fallback: Callable[[Any], str]) -> str:
    """``json.dumps(obj, ensure_ascii=False)`` (json's default separators); ``fallback(obj)`` makes it
    for anything msgspec does not take (the caller's json encoder, with its ``default``)."""
    if _plain(obj):
        try:
            return _FORMAT(_ENCODE(obj), indent=0).decode()
        except (ValueError, TypeError, msgspec.EncodeError):  # as in compact()
            return fallback(obj)
    return fallback(obj)
