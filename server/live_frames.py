"""Subscription result messages encoded once per shared result, not once per subscriber.

Subscribers of the same document and variables share one execution of each event
(``schema/shared_events.py``): graphql-core hands each of them the very same ``data`` object.
Encoding it to JSON for every subscriber was the largest cost of the fan-out after the socket
writes themselves, so :class:`ResultFrames` keeps the encoded ``payload`` of the last few result
messages by the identity of their ``data`` and splices each subscriber's operation id into the
envelope. A ``data`` object is held while its entry lives, so its ``id()`` cannot be reused by
another object meanwhile; a result that was not shared (another document, another principal's
answer) is another object and is encoded on its own. Both protocols' result messages are
covered: ``next`` (graphql-transport-ws) and ``data`` (graphql-ws); their envelopes differ only
by the type.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import orjson

RESULT_TYPES = ("next", "data")


def encode_json(value: object) -> str:
    """orjson (C speed) where it can; the standard library for what it refuses (integers beyond
    64 bits, non-string keys)."""
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, separators=(",", ":"))


class ResultFrames:
    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._payloads: OrderedDict[int, tuple[object, str]] = OrderedDict()

    def encode(self, message: object) -> str | None:
        """The text of a subscription result message; None for any other message."""
        if not isinstance(message, dict) or message.get("type") not in RESULT_TYPES:
            return None
        ident, payload = message.get("id"), message.get("payload")
        if set(message) != {"id", "type", "payload"} or not isinstance(ident, str):
            return None
        if not isinstance(payload, dict):
            return None
        envelope = f'{{"type":"{message["type"]}","id":{encode_json(ident)},"payload":'
        return envelope + self._payload(payload) + "}"

    def _payload(self, payload: dict[str, Any]) -> str:
        data = payload.get("data")
        if set(payload) != {"data"} or not isinstance(data, dict):
            return encode_json(payload)  # errors or extensions: per subscriber
        key = id(data)
        entry = self._payloads.get(key)
        if entry is not None and entry[0] is data:
            return entry[1]
        encoded = encode_json(payload)
        self._payloads[key] = (data, encoded)
        if len(self._payloads) > self.size:
            self._payloads.popitem(last=False)
        return encoded
