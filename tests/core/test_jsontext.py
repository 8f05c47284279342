"""dncgate.jsontext writes json.dumps's text (ensure_ascii=False), compact and spaced, for every object:
msgspec for flat dicts of plain values, json for the rest."""

from __future__ import annotations

import datetime
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dncgate import jsontext

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # Cs: lone surrogates
_PLAIN = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30), _TEXT)
_ANY = st.one_of(_PLAIN, st.floats(allow_nan=True), st.lists(_PLAIN, max_size=3),
                 st.dictionaries(_TEXT, _PLAIN, max_size=2))


def _json_spaced(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=repr)


@settings(max_examples=500, deadline=None)
@given(obj=st.dictionaries(_TEXT, _PLAIN, max_size=8))
def test_flat_plain_dicts_are_json_s_text(obj: dict[str, Any]) -> None:
    assert jsontext.compact(obj) == json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    assert jsontext.spaced(obj, _json_spaced) == _json_spaced(obj)


@settings(max_examples=300, deadline=None)
@given(obj=st.dictionaries(_TEXT, _ANY, max_size=5))
def test_anything_else_is_json_s_own_text(obj: dict[str, Any]) -> None:
    assert jsontext.spaced(obj, _json_spaced) == _json_spaced(obj)
    assert jsontext.spaced([obj], _json_spaced) == _json_spaced([obj])


def test_what_msgspec_refuses_or_writes_otherwise_goes_to_json() -> None:
    when = datetime.datetime(2026, 12, 4, tzinfo=datetime.UTC)  # msgspec: an ISO string; json: default
    assert jsontext.spaced({"at": when}, _json_spaced) == _json_spaced({"at": when})
    assert jsontext.spaced({"b": b"x"}, _json_spaced) == '{"b": "b\'x\'"}'  # msgspec: base64
    lone = {"k": "\ud800"}  # a lone surrogate: msgspec refuses it, json writes it
    assert jsontext.compact(lone) == json.dumps(lone, separators=(",", ":"), ensure_ascii=False)
    assert jsontext.spaced(lone, _json_spaced) == _json_spaced(lone)
    odd_keys: dict[Any, Any] = {None: 1, True: "x", 2: "y", "k": "v"}  # msgspec raises TypeError on these keys
    assert jsontext.compact(odd_keys) == json.dumps(odd_keys, separators=(",", ":"), ensure_ascii=False)
    assert jsontext.spaced(odd_keys, _json_spaced) == _json_spaced(odd_keys)
