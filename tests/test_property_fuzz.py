"""Property: no hostile request reaches a 500, and a refused one changes nothing.

Every REST route of the facade's route table and every mutation of the committed GraphQL
schema gets arbitrary JSON (tests/fuzz_strategies.py: deep nesting, lone surrogates, integers
beyond 32/64 bits, Infinity/NaN, wrong types, bytes that are no JSON). Each answer must be below
500, carry no ``INTERNAL_SERVER_ERROR`` and no traceback; after a refused request (REST 4xx,
GraphQL errors) the database's fingerprint (row counts, max ids, a hash of the project, task,
completion and prediction rows) must be what it was before.

``LABELGRAPH_TEST_FUZZ_PROFILE=long`` runs many more examples per route than the default
``ci`` profile (which keeps the whole module near 30 s on two cores).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest
from graphql import GraphQLField, build_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

import tests.rest.test_route_table as route_table
from rest_compat._http import ENDPOINTS, Endpoint
from server import db, models
from server.app import create_app
from server.settings import Settings
from tests.conftest import (
    IN_PROCESS_HOSTS,
    TEST_DATABASE_URL,
    _reset_postgres,
    fixture_json,
    fixture_text,
)
from tests.fuzz_strategies import RestRequest, graphql_mutations, rest_requests
from tests.peewee_typed import tuple_rows

SDL = Path(__file__).parents[1] / "schema" / "schema.graphql"
MUTATIONS: dict[str, GraphQLField] = dict(build_schema(SDL.read_text("utf-8")).mutation_type.fields)  # type: ignore[union-attr]
HASHED = (models.Project, models.Task, models.Completion, models.Prediction)

settings.register_profile(
    "ci",
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("long", settings.get_profile("ci"), max_examples=300)
PROFILE = settings.get_profile(os.environ.get("LABELGRAPH_TEST_FUZZ_PROFILE", "ci"))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the whole module (Hypothesis runs many examples per test)."""
    if TEST_DATABASE_URL:
        _reset_postgres(TEST_DATABASE_URL)
    app_settings = Settings.from_env(
        {},
        project_dir=str(tmp_path_factory.mktemp("fuzz") / "project"),
        database_url=TEST_DATABASE_URL or None,
        allowed_hosts=IN_PROCESS_HOSTS,
    )
    with TestClient(create_app(app_settings)) as test_client:
        config = {"label_config": fixture_text("configs/sentiment.xml")}
        assert test_client.post("/api/project/config", data=config).status_code == 201
        seed(test_client)
        yield test_client


def seed(client: TestClient) -> None:
    """Tasks with completions and predictions to aim at (again once a request removed them)."""
    tasks = fixture_json("tasks/sentiment_mixed.json")
    assert client.post("/api/project/import", json=tasks).status_code == 201, "seed"


def fingerprint(client: TestClient) -> tuple[Any, ...]:
    """Taken once the background storage writes of earlier requests are done."""
    assert client.app.state.storage.wait_idle()  # type: ignore[attr-defined]

    def read() -> tuple[Any, ...]:
        parts: list[Any] = []
        for model in models.BaseModel.__subclasses__():
            id_field = model._meta.primary_key
            count = model.select().count()
            top: Any = None
            if isinstance(id_field, peewee.CompositeKey):  # small tables (counter shards)
                rows = sorted(tuple_rows(model.select()))
                top = hashlib.sha256(repr(rows).encode()).hexdigest()
            elif id_field:
                top = model.select(peewee.fn.MAX(id_field)).scalar()
            parts.append((model.__name__, count, top))
        for model in HASHED:
            rows = list(tuple_rows(model.select().order_by(model.id)))
            parts.append(hashlib.sha256(repr(rows).encode()).hexdigest())
        return tuple(parts)

    return db.with_connection(read)


def task_count() -> int:
    return int(db.with_connection(models.Task.select().count))


def assert_no_server_error(status: int, content: bytes) -> None:
    assert status < 500, content[:500]
    assert b"INTERNAL_SERVER_ERROR" not in content
    assert b"Traceback" not in content and b'File "/' not in content


def send(client: TestClient, request: RestRequest) -> Any:
    arguments: dict[str, Any] = {"params": request.params, "headers": request.headers}
    if request.body is not None:
        arguments["content"] = request.body
    if request.form is not None:
        arguments["data"] = request.form
    return client.request(request.method, request.path, follow_redirects=False, **arguments)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
@settings(PROFILE)
@given(data=st.data())
def test_rest_route_never_fails_and_refusals_change_nothing(
    client: TestClient, endpoint: Endpoint, data: st.DataObject
) -> None:
    example = route_table.REQUESTS[(endpoint.method, endpoint.path)]
    request = data.draw(rest_requests(endpoint.method, endpoint.path, example), label="request")
    before = fingerprint(client)
    response = send(client, request)
    assert_no_server_error(response.status_code, response.content)
    # An id or page beyond GraphQL's Int is an unknown id / an empty page, not a coercion error.
    assert b"non 32-bit" not in response.content
    if 400 <= response.status_code < 500:
        assert fingerprint(client) == before, response.text[:300]
    if task_count() < 3:
        seed(client)


@pytest.mark.parametrize("name", sorted(MUTATIONS))
@settings(PROFILE)
@given(data=st.data())
def test_graphql_mutation_never_fails_and_refusals_change_nothing(
    client: TestClient, name: str, data: st.DataObject
) -> None:
    body = data.draw(graphql_mutations(name, MUTATIONS[name]), label="body")
    before = fingerprint(client)
    response = client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert_no_server_error(response.status_code, response.content)
    answer = response.json()
    if response.status_code >= 400 or answer.get("errors"):
        assert answer.get("data") is None, answer
        assert fingerprint(client) == before, answer
    if task_count() < 3:
        seed(client)
