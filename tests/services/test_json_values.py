"""server/json_values.py: the orjson first pass gives json.loads's value or defers to it, and the
result screen still finds every non-finite float and lone surrogate."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from server import json_text, json_values
from server.errors import DomainError
from server.json_text import has_long_number, load_json
from server.json_values import _surely_storable, loads_storable

SAME_AS_JSON_LOADS: list[bytes | str] = [
    b'{"result": [{"value": {"choices": ["Positive"]}}], "lead_time": 1.2}',
    b"[123456789012345678]",  # 18 digits: orjson keeps it an int
    b"[1234567890123456789]",  # 19 digits: fits 64 bits, but deferred to json.loads
    b"[18446744073709551616, -9223372036854775809]",  # orjson would make these floats
    b"[123456789012345678901234567890]",
    b'{"big": 99999999999999999999999, "s": "12345678901234567890"}',
    b"[0.1, -0.0, 1e-400, 1.5e308, -0, 1E5]",
    b'["\\ud83d\\ude00", "\xc3\xa9", "\\u00e9"]',  # a pair of surrogate escapes: one code point
    b'{"a": 1, "a": 2}',
    b"\xef\xbb\xbf[1]",  # a UTF-8 BOM: orjson refuses it, json.loads of bytes accepts it
    '{"text": "caf\u00e9", "n": [1, 2.5, null, true]}',
    "[12345678901234567890]",
]


@pytest.mark.parametrize("raw", SAME_AS_JSON_LOADS)
def test_values_are_those_of_json_loads(raw: bytes | str) -> None:
    value = loads_storable(raw)
    expected = json.loads(raw)
    assert value == expected
    assert json.dumps(value) == json.dumps(expected)  # ints stay ints, floats floats


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"a": 1e999}', "a"),
        (b'{"a": [1, -Infinity]}', "a[1]"),
        (b'{"b": NaN}', "b"),
        (b'{"c": "x\\ud800y"}', "c"),
        (b'{"d": ["\xed\xa0\x80"]}', "d[0]"),
        ('{"e": "\\udfff"}', "e"),
    ],
)
def test_unstorable_values_are_refused_naming_the_field(raw: bytes | str, field: str) -> None:
    with pytest.raises(DomainError) as refused:
        loads_storable(raw)
    assert refused.value.code == "invalid"
    assert refused.value.details == {"field": field}


@pytest.mark.parametrize("raw", [b"{", b"[1,]", b'"\x01"', b"[1] x", b""])
def test_malformed_json_fails_as_json_loads_does(raw: bytes) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        loads_storable(raw)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(raw)
    assert str(ours.value) == str(theirs.value)


def test_orjson_decodes_ordinary_bodies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path is taken: json.loads is not called for an ordinary body."""
    calls: list[Any] = []
    monkeypatch.setattr(json_values, "_loads_checked", lambda *a: calls.append(a))
    assert loads_storable(b'{"result": [], "n": 12}') == {"result": [], "n": 12}
    assert calls == []
    loads_storable(b"[NaN]")
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("value", "storable"),
    [
        ({"result": [{"value": 1.5}], "x": None}, True),  # a null: json.dumps asked, passes
        ({"text": "null and void"}, True),
        ({"a": [1, math.inf]}, False),
        ({"a": -math.inf}, False),
        ([math.nan], False),
        (["x\ud800"], False),
        ({"k\udc00": 1}, False),
        ({1: "non-string key"}, False),  # orjson refuses it: walked (nothing found there)
        (10**30, False),  # beyond 64 bits: orjson refuses, walked
    ],
)
def test_the_screen_passes_only_surely_storable_values(value: object, storable: bool) -> None:
    assert _surely_storable(value) is storable


@pytest.mark.parametrize("cut", [0, 1, 9, 17, 18, 19])
def test_long_numbers_are_found_across_screen_slices(
    monkeypatch: pytest.MonkeyPatch, cut: int
) -> None:
    """The bytes screen for 19-digit runs reads slices: a run cut at a slice's end is found,
    18 digits are not a run, and a big integer there still decodes as json.loads does."""
    monkeypatch.setattr(json_text, "_SCREEN_SLICE", 64)
    pad = b" " * (64 - cut)
    raw = b"[" + pad + b"1234567890123456789]"
    assert has_long_number(raw)
    assert has_long_number(raw.decode())
    assert not has_long_number(b"[" + pad + b"123456789012345678, 1.5e7]")
    big = b"[" + pad + b"18446744073709551616]"
    assert loads_storable(big) == json.loads(big) == [18446744073709551616]
    assert has_long_number("[1234567890123456789]")
    assert not has_long_number(b"")


@pytest.mark.parametrize(
    ("text", "long"),
    [
        ('["é1234567890123456789ü"]', True),  # digits between multi-byte characters
        ('["1234567890é123456789"]', False),  # cut by one
        ('["' + "\u0661" * 20 + '"]', False),  # other scripts' digits are no JSON number
        ('["\\ud800", 12345678901234567890]', True),  # a lone surrogate, escaped
        ('["\ud800", 1234567890123456789]', True),  # a raw lone surrogate in the text
        ('["\ud800", 123456789012345678]', False),
        ('{"t": 1796314493, "x": -922337203685477580.5}', False),  # 18 digits at most
        ('{"t": 17963144931796314493}', True),
    ],
)
def test_text_is_screened_for_long_numbers(text: str, long: bool) -> None:
    """Text is screened as its UTF-8 bytes (raw lone surrogates included), and load_json
    reads every screened text as json.loads does."""
    assert has_long_number(text) is long
    try:
        expected = json.loads(text)
    except ValueError:
        return
    assert load_json(text) == expected
