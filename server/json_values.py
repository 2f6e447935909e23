"""JSON values the database cannot store faithfully, refused with the field they are in.

Python's ``json`` decodes a lone UTF-16 surrogate escape (``"a\\ud800b"``) into a ``str`` that
cannot be encoded as UTF-8 (an insert then fails with UnicodeEncodeError), and accepts
``Infinity``, ``-Infinity``, ``NaN`` and numbers like ``1e999`` as non-finite floats, which the
stores would keep as ``null`` or refuse. :func:`loads_storable` decodes a JSON request body
and refuses both, naming the offending field (``DomainError`` ``invalid`` with
``details["field"]``); :func:`refuse_unstorable` checks a value decoded elsewhere.

The decoder only walks the decoded value when a cheap signal says there may be something to
find (a non-finite number met by the parser, a surrogate escape or byte in the text), so
ordinary bodies cost one regex scan more than ``json.loads``. Most bodies are decoded by
``orjson`` first (~4x faster), which refuses both by itself; its value is taken when it is the
one ``json.loads`` gives: always, but for integers of more than 18 digits, which orjson turns
into floats. Whatever orjson refuses (also ``NaN``, ``1e999``, a lone surrogate, a BOM) is
decoded as before, so answers and errors stay ``json.loads``'s.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from server.errors import DomainError
from server.json_text import has_long_number

# A surrogate escape (``\uD800``-``\uDFFF``) or the UTF-8-style bytes of one, which
# ``json.loads`` of bytes decodes with "surrogatepass": only then can a string hold one.
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_SURROGATE_HINT_TEXT = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
MAX_KEY_IN_PATH = 40


def _key_part(key: str) -> str:
    if _SIMPLE_KEY.fullmatch(key):
        return f".{key}"
    quoted = json.dumps(key[:MAX_KEY_IN_PATH])  # ASCII, so safe in any answer
    return f"[{quoted}]"


def _join(path: str, part: str) -> str:
    if path or part.startswith("["):
        return path + part
    return part.lstrip(".")


def _refusal(path: str, what: str) -> DomainError:
    field = path or "value"
    return DomainError("invalid", f"{field}: {what}", {"field": field})


LONE_SURROGATE = "a lone UTF-16 surrogate (\\ud800-\\udfff) is not valid Unicode text"
NOT_FINITE = "Infinity and NaN are not numbers that can be stored; send a finite number"


def _has_lone_surrogate(text: str) -> bool:
    # Paired surrogates never survive json decoding (they become one code point), so any
    # surrogate left in a decoded string is a lone one.
    return _SURROGATE.search(text) is not None


def _surely_storable(value: object) -> bool:
    """A C-speed screen: True when ``value`` holds no lone surrogate (orjson refuses text that
    is not valid UTF-8) and no non-finite float (orjson writes one as ``null``: only when its
    output holds a ``null`` is ``json.dumps(allow_nan=False)`` asked); False means "walk it"."""
    try:
        if b"null" not in orjson.dumps(value):
            return True
        json.dumps(value, allow_nan=False, check_circular=False)
    except (TypeError, ValueError):
        return False
    return True


def refuse_unstorable(value: object, path: str = "") -> None:
    """Raise ``invalid`` naming the first string (or key) holding a lone surrogate or the first
    non-finite float in ``value``, a decoded JSON value; ``path`` names ``value`` itself."""
    if _surely_storable(value):
        return
    stack: list[tuple[object, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if _has_lone_surrogate(item):
                raise _refusal(where, LONE_SURROGATE)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise _refusal(where, NOT_FINITE)
        elif isinstance(item, dict):
            children: list[tuple[object, str]] = []
            for key, child in item.items():
                if isinstance(key, str) and _has_lone_surrogate(key):
                    raise _refusal(where, f"a key holds {LONE_SURROGATE}")
                children.append((child, _join(where, _key_part(str(key)))))
            stack.extend(reversed(children))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{where}[{i}]") for i, child in reversed(list(enumerate(item))))


def loads_storable(raw: bytes | str, path: str = "") -> Any:
    """``json.loads`` that refuses lone surrogates and non-finite numbers (see the module)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass  # maybe NaN, 1e999, a lone surrogate: json.loads decides, as it always did
    else:
        if not has_long_number(raw):
            return value
    return _loads_checked(raw, path)


def _loads_checked(raw: bytes | str, path: str) -> Any:
    suspicious = False

    def constant(name: str) -> float:
        nonlocal suspicious
        suspicious = True
        return float(name)

    def number(text: str) -> float:
        nonlocal suspicious
        value = float(text)
        if not math.isfinite(value):
            suspicious = True
        return value

    value = json.loads(raw, parse_constant=constant, parse_float=number)
    if isinstance(raw, bytes):
        # ``in`` is a C-speed scan; the regex (no literal prefix) is run only when it hits.
        hint = b"\\u" in raw or b"\xed" in raw
        suspicious = suspicious or (hint and _SURROGATE_HINT.search(raw) is not None)
    else:
        suspicious = suspicious or _SURROGATE_HINT_TEXT.search(raw) is not None
    if suspicious:
        refuse_unstorable(value, path)
    return value
