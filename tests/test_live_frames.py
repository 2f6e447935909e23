"""Subscription result messages encoded once per shared result (server/live_frames.py)."""

from __future__ import annotations

import json

from server.live_frames import ResultFrames


def _message(kind: str, op_id: str, payload: dict[str, object]) -> dict[str, object]:
    return {"type": kind, "id": op_id, "payload": payload}


def test_subscribers_of_one_shared_result_get_their_own_id_and_the_same_data() -> None:
    frames = ResultFrames()
    data = {"completionChanged": {"completionIds": [7], "completion": {"text": "é \u2028"}}}
    first = frames.encode(_message("next", "1", {"data": data}))
    second = frames.encode(_message("next", 'sub-"2"', {"data": data}))
    legacy = frames.encode(_message("data", "3", {"data": data}))
    assert first is not None and second is not None and legacy is not None
    assert json.loads(first) == {"type": "next", "id": "1", "payload": {"data": data}}
    assert json.loads(second) == {"type": "next", "id": 'sub-"2"', "payload": {"data": data}}
    assert json.loads(legacy) == {"type": "data", "id": "3", "payload": {"data": data}}


def test_a_result_computed_for_someone_else_is_never_served() -> None:
    """Sharing follows the identity of the result: another execution's answer (another
    principal, other variables) is another object, encoded on its own, even while the first
    is still kept."""
    frames = ResultFrames()
    mine = {"taskChanged": {"task": {"id": 1, "data": {"text": "mine"}}}}
    theirs = {"taskChanged": {"task": None}}
    assert json.loads(frames.encode(_message("next", "a", {"data": mine})) or "")["payload"] == {
        "data": mine
    }
    other = frames.encode(_message("next", "a", {"data": theirs}))
    assert json.loads(other or "")["payload"] == {"data": theirs}
    again = frames.encode(_message("next", "b", {"data": mine}))
    assert json.loads(again or "")["payload"] == {"data": mine}


def test_results_with_errors_are_encoded_per_subscriber() -> None:
    frames = ResultFrames()
    data = {"completionChanged": None}
    errors = [{"message": "fell behind", "extensions": {"code": "SUBSCRIBER_OVERFLOW"}}]
    text = frames.encode(_message("next", "1", {"data": data, "errors": errors}))
    assert json.loads(text or "") == {
        "type": "next",
        "id": "1",
        "payload": {"data": data, "errors": errors},
    }


def test_other_messages_and_values_orjson_refuses_are_left_to_strawberry() -> None:
    frames = ResultFrames()
    assert frames.encode({"type": "connection_ack"}) is None
    assert frames.encode({"type": "complete", "id": "1"}) is None
    assert frames.encode({"data": {"a": 1}}) is None  # an HTTP answer
    huge = {"n": 2**70}
    text = frames.encode(_message("next", "1", {"data": huge}))
    assert json.loads(text or "")["payload"] == {"data": huge}
