"""Every GraphQL field and every route declares the role it needs, and the declarations hold:
anonymous callers get 401 / UNAUTHENTICATED everywhere but the public entries, annotators get
403 / FORBIDDEN on admin actions and are let through on theirs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
    get_named_type,
)
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient

from rest_compat._http import ENDPOINTS
from rest_compat.route_table import RouteTable
from schema import schema
from schema.permissions import ACCESS_ATTRIBUTE, declared_role
from server.principal import Role
from server.route_guard import Guarded
from tests.auth.support import add_user, as_token, gql

ROOTS = ("Query", "Mutation", "Subscription")


def object_types() -> Iterator[tuple[str, Any]]:
    for name, gql_type in schema._schema.type_map.items():
        if isinstance(gql_type, GraphQLObjectType) and not name.startswith("__"):
            yield name, gql_type.extensions["strawberry-definition"]


def field_role(definition: Any, graphql_name: str) -> Role | None:
    for field in definition.fields:
        if schema.config.name_converter.get_graphql_name(field) == graphql_name:
            return declared_role(field.permission_classes)
    raise AssertionError(graphql_name)


def test_every_root_field_declares_exactly_one_role() -> None:
    missing = []
    for name, definition in object_types():
        if name not in ROOTS:
            continue
        for field in definition.fields:
            if (
                len(field.permission_classes) != 1
                or declared_role(field.permission_classes) is None
            ):
                missing.append(f"{name}.{field.python_name}")
    assert missing == []


def test_every_other_field_declares_a_role_or_inherits_its_objects() -> None:
    missing = []
    for name, definition in object_types():
        if name in ROOTS or hasattr(definition.origin, ACCESS_ATTRIBUTE):
            continue
        missing += [
            f"{name}.{f.python_name}" for f in definition.fields if not f.permission_classes
        ]
    assert missing == []


def test_no_field_leads_a_smaller_role_to_a_type_meant_for_a_bigger_one() -> None:
    """The least role reaching each type (through the roles declared along the way) is at
    least the ``min_role`` its ``inherits_access`` states."""
    definitions = dict(object_types())
    reach: dict[str, Role] = {}
    pending: list[tuple[str, Role]] = [(root, Role.PUBLIC) for root in ROOTS]
    while pending:
        type_name, role = pending.pop()
        gql_type = schema._schema.type_map[type_name]
        assert isinstance(gql_type, GraphQLObjectType)
        for field_name, field in gql_type.fields.items():
            declared = field_role(definitions[type_name], field_name)
            effective = max(role, declared or Role.PUBLIC)
            target = get_named_type(field.type)
            if isinstance(target, GraphQLObjectType) and (
                target.name not in reach or effective < reach[target.name]
            ):
                reach[target.name] = effective
                pending.append((target.name, effective))
    too_open = {
        name: (reach[name].name, getattr(definitions[name].origin, ACCESS_ATTRIBUTE).name)
        for name in reach
        if name not in ROOTS
        and reach[name] < getattr(definitions[name].origin, ACCESS_ATTRIBUTE, Role.PUBLIC)
    }
    assert too_open == {}


def test_every_rest_endpoint_declares_a_role() -> None:
    assert [f"{e.method} {e.path}" for e in ENDPOINTS if e.permission is None] == []


def test_every_route_of_the_app_declares_a_role(client: TestClient) -> None:
    undeclared = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, RouteTable):
            continue  # the REST endpoints: test_every_rest_endpoint_declares_a_role
        if isinstance(route, WebSocketRoute):
            continue  # subscriptions: their fields' permission classes (the walks above)
        assert isinstance(route, Route | Mount)
        if not isinstance(route.app, Guarded):
            undeclared.append(route.path)
    assert undeclared == []


# --- behaviour -------------------------------------------------------------------------------


def concrete_path(path: str) -> str:
    for name in ("{task_id}", "{completion_id}", "{import_id}"):
        path = path.replace(name, "1")
    return path


@pytest.fixture
def tokens(client: TestClient) -> dict[str, str]:
    return {"admin": add_user(client, "root", "admin"), "annotator": add_user(client, "ann")}


def test_anonymous_callers_get_401_on_every_rest_route(
    client: TestClient, tokens: dict[str, str]
) -> None:
    for endpoint in ENDPOINTS:
        answer = client.request(endpoint.method, concrete_path(endpoint.path))
        where = f"{endpoint.method} {endpoint.path}"
        if endpoint.permission is Role.PUBLIC:
            assert answer.status_code == 200, where
            continue
        assert answer.status_code == 401, where
        if endpoint.method == "HEAD":  # headers only
            continue
        assert answer.json()["status"] == 401, where
        assert "Authentication required" in answer.json()["detail"], where
    for path in ("/data/upload/x.png", "/data/export/x.zip"):
        answer = client.get(path)
        assert answer.status_code == 401 and answer.json()["status"] == 401, path


def test_annotators_get_403_on_admin_routes_and_pass_on_theirs(
    client: TestClient, tokens: dict[str, str]
) -> None:
    headers = as_token(tokens["annotator"])
    for endpoint in ENDPOINTS:
        answer = client.request(endpoint.method, concrete_path(endpoint.path), headers=headers)
        where = f"{endpoint.method} {endpoint.path}: {answer.text[:200]}"
        if endpoint.required_role is Role.ADMIN:
            assert answer.status_code == 403, where
            if endpoint.method != "HEAD":  # headers only
                assert answer.json() == {"status": 403, "detail": "Your role may not do this"}
        else:
            assert answer.status_code not in (401, 403), where
    assert client.get("/data/export/x.zip", headers=headers).status_code == 403
    assert client.get("/data/upload/x.png", headers=headers).status_code == 404


def sample(gql_type: Any) -> Any:
    """A value of an input type (enough to pass argument coercion)."""
    if isinstance(gql_type, GraphQLNonNull):
        return sample(gql_type.of_type)
    if isinstance(gql_type, GraphQLList):
        return []
    if isinstance(gql_type, GraphQLEnumType):
        return next(iter(gql_type.values))
    if isinstance(gql_type, GraphQLInputObjectType):
        return {
            name: sample(field.type)
            for name, field in gql_type.fields.items()
            if isinstance(field.type, GraphQLNonNull)
        }
    assert isinstance(gql_type, GraphQLScalarType)
    return {"Int": 1, "Float": 1.0, "String": "x", "Boolean": True, "JSON": {}}.get(
        gql_type.name, "x"
    )


def root_calls() -> Iterator[tuple[str, str, GraphQLField, str, dict[str, Any]]]:
    for operation, root in (
        ("query", schema._schema.query_type),
        ("mutation", schema._schema.mutation_type),
    ):
        assert root is not None
        for name, field in root.fields.items():
            required = {
                arg: spec
                for arg, spec in field.args.items()
                if isinstance(spec.type, GraphQLNonNull) and spec.default_value is Undefined
            }
            declared = ", ".join(f"${arg}: {spec.type}" for arg, spec in required.items())
            passed = ", ".join(f"{arg}: ${arg}" for arg in required)
            head = f"{operation}({declared})" if declared else operation
            call = f"{name}({passed})" if passed else name
            target = get_named_type(field.type)
            selection = " { __typename }" if isinstance(target, GraphQLObjectType) else ""
            variables = {arg: sample(spec.type) for arg, spec in required.items()}
            yield operation, name, field, f"{head} {{ {call}{selection} }}", variables


def root_role(operation: str, name: str) -> Role | None:
    definitions = dict(object_types())
    return field_role(definitions["Query" if operation == "query" else "Mutation"], name)


def test_anonymous_callers_get_unauthenticated_on_every_graphql_field(
    client: TestClient, tokens: dict[str, str]
) -> None:
    walked = 0
    for operation, name, _, document, variables in root_calls():
        body = gql(client, document, variables)
        codes = [e["extensions"]["code"] for e in body.get("errors", [])]
        if root_role(operation, name) is Role.PUBLIC:
            assert "UNAUTHENTICATED" not in codes, (name, body)
        else:
            assert codes == ["UNAUTHENTICATED"], (name, body)
            walked += 1
    assert walked > 30


def test_annotators_get_forbidden_on_every_admin_field(
    client: TestClient, tokens: dict[str, str]
) -> None:
    headers = as_token(tokens["annotator"])
    for operation, name, _, document, variables in root_calls():
        body = gql(client, document, variables, headers=headers)
        codes = [e["extensions"]["code"] for e in body.get("errors", [])]
        if root_role(operation, name) is Role.ADMIN:
            assert codes == ["FORBIDDEN"], (name, body)
        else:
            assert "FORBIDDEN" not in codes and "UNAUTHENTICATED" not in codes, (name, body)


def test_annotators_read_the_project_without_its_admin_parts(
    client: TestClient, tokens: dict[str, str]
) -> None:
    project = client.get("/api/project", headers=as_token(tokens["annotator"])).json()
    assert project["config"]["ml_backends"] == []
    assert project["config"]["source"]["type"] is None
    full = client.get("/api/project", headers=as_token(tokens["admin"])).json()
    assert full["config"]["source"]["type"] == "tasks-json"
    body = gql(
        client, "{ project { title mlBackends { name } } }", headers=as_token(tokens["annotator"])
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["path"] == ["project", "mlBackends"]
