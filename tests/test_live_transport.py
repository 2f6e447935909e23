"""Subscription frames written straight to the connection (server/live_transport.py) and the
shared rendering of an event's result (schema/shared_events.py: render_event)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import orjson
import pytest
import uvicorn
from graphql import parse
from starlette.types import Receive, Scope, Send
from websockets.sync.client import connect

from schema import schema
from schema.errors import INTERNAL
from schema.live import TaskChange
from schema.shared_events import SharedEventExecution, render_event, sharing_key
from server.http_protocol import HeaderLimits, uvicorn_options
from server.live_transport import LiveWebSocketProtocol, frame_writer, text_frame_header
from server.principal import Role
from server.services import events
from server.services.events import Event
from tests.live_server import free_port

FRAMES = [b'{"type":"next","id":"1","payload":{}}', b"x" * 300, "é".encode() * 40_000]


async def frames_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts, writes FRAMES in one call through the connection's FrameWriter, then reports
    whether it had one; waits for the client to leave."""
    assert scope["type"] == "websocket"
    await receive()
    await send({"type": "websocket.accept"})
    writer = frame_writer(scope)
    if writer is not None:
        assert writer.write(FRAMES) is not None
    await send({"type": "websocket.send", "text": f"writer: {writer is not None}"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


@pytest.fixture
def frames_server() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(frames_app, port=port, ws=LiveWebSocketProtocol, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(10)


def test_frames_written_to_the_transport_reach_the_client_in_order(frames_server: int) -> None:
    with connect(f"ws://127.0.0.1:{frames_server}/", max_size=None) as ws:
        received = [ws.recv(timeout=10) for _ in range(len(FRAMES) + 1)]
    assert received == [frame.decode() for frame in FRAMES] + ["writer: True"]


def test_frame_headers_use_the_three_length_forms() -> None:
    assert text_frame_header(125) == b"\x81\x7d"
    assert text_frame_header(126) == b"\x81\x7e\x00\x7e"
    assert text_frame_header(65_536) == b"\x81\x7f" + (65_536).to_bytes(8, "big")


def test_the_server_runs_the_frame_writing_protocol() -> None:
    assert uvicorn_options(HeaderLimits(1000, 10))["ws"] is LiveWebSocketProtocol


def _executor(document: str) -> SharedEventExecution:
    executor = SharedEventExecution.build(schema._schema, parse(document))
    assert isinstance(executor, SharedEventExecution)
    return executor


def test_an_event_is_rendered_as_strawberry_sends_it() -> None:
    executor = _executor("subscription { taskChanged { kind projectId taskIds count } }")
    event = events.bulk(events.TASK_CREATED, 3, [5, 6])
    payload = asyncio.run(render_event(executor, TaskChange(event=event)))
    expected = {"kind": "CREATED", "projectId": 3, "taskIds": [5, 6], "count": 2}
    assert orjson.loads(payload) == {"data": {"taskChanged": expected}}


def test_a_failing_field_is_rendered_with_its_masked_error_and_code() -> None:
    executor = _executor("subscription { taskChanged { kind } }")
    payload = asyncio.run(render_event(executor, TaskChange(event=Event("bogus", 1))))
    answer = orjson.loads(payload)
    assert answer["data"] is None
    assert answer["errors"][0]["message"] == "Unexpected error."
    assert answer["errors"][0]["extensions"]["code"] == INTERNAL
    assert answer["errors"][0]["path"] == ["taskChanged", "kind"]


def test_subscribers_share_results_by_operation_variables_and_role() -> None:
    document = parse("subscription ($p: Int) { taskChanged(projectId: $p) { kind } }")
    one = SharedEventExecution.build(schema._schema, document, raw_variable_values={"p": 1})
    same = SharedEventExecution.build(schema._schema, document, raw_variable_values={"p": 1})
    other = SharedEventExecution.build(schema._schema, document, raw_variable_values={"p": 2})
    assert isinstance(one, SharedEventExecution) and isinstance(same, SharedEventExecution)
    assert isinstance(other, SharedEventExecution)
    assert sharing_key(one) == sharing_key(same) != sharing_key(other)
    as_admin, as_annotator = (
        SharedEventExecution.build(
            schema._schema,
            document,
            context_value=SimpleNamespace(principal=SimpleNamespace(role=role)),
            raw_variable_values={"p": 1},
        )
        for role in (Role.ADMIN, Role.ANNOTATOR)
    )
    assert isinstance(as_admin, SharedEventExecution)
    assert isinstance(as_annotator, SharedEventExecution)
    assert sharing_key(as_admin) != sharing_key(as_annotator)
