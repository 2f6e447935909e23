"""Query limits (schema/limits.py): abusive documents are refused with a stable code before
they are validated or executed; the server's own documents and GraphiQL's still run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from graphql import DocumentNode, parse
from graphql.utilities import get_introspection_query
from starlette.testclient import TestClient

from rest_compat._http import ENDPOINTS
from schema import limits, schema
from schema.query_shape import measure
from server.settings import Settings
from tests.conftest import GraphQL

TASK_FIELDS = "nodes { id data }"


def strict(gql: GraphQL, **overrides: Any) -> GraphQL:
    """The same project, run with other limits."""
    settings = dataclasses.replace(gql.settings, **overrides)
    return GraphQL(settings, gql.project_id, gql.ml, gql.storage)


def import_tasks(gql: GraphQL, count: int) -> None:
    tasks = [{"text": f"t{i}"} for i in range(count)]
    gql("mutation($t: JSON!) { importTasks(tasks: $t) { taskCount } }", {"t": tasks})


def aliases(count: int, field: str = "health") -> str:
    return "{ " + " ".join(f"a{i}: {field}" for i in range(count)) + " }"


def refused(gql: GraphQL, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    result = gql.raw(query, variables)
    assert result.data is None, result.data
    assert result.errors and len(result.errors) == 1, result.errors
    return {"message": result.errors[0].message, **(result.errors[0].extensions or {})}


def test_syntax_error_has_a_code(gql: GraphQL) -> None:
    error = refused(gql, "{ health ")
    assert error["code"] == "GRAPHQL_PARSE_FAILED"
    assert error["message"].startswith("Syntax Error: Expected Name")
    assert refused(gql, "{ nope }")["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_many_aliases_are_refused_before_validation(gql: GraphQL) -> None:
    # 60 aliases of an unknown field: the alias limit answers, validation never ran.
    error = refused(gql, aliases(60, "nope"))
    assert error["code"] == "QUERY_TOO_COMPLEX"
    assert (error["limit"], error["max"], error["found"]) == ("aliases", 50, 60)
    assert gql(aliases(50))["a49"] == "up"
    assert refused(strict(gql, graphql_max_aliases=3), aliases(4))["found"] == 4


def test_the_three_thousand_alias_attack_is_refused(gql: GraphQL) -> None:
    error = refused(gql, aliases(3000))
    assert error["code"] == "DOCUMENT_TOO_LARGE"
    assert (error["limit"], error["max"]) == ("tokens", 5000)
    # With a token budget that admits it, the alias limit refuses it.
    error = refused(strict(gql, graphql_max_tokens=100_000), aliases(3000))
    assert (error["code"], error["limit"], error["found"]) == ("QUERY_TOO_COMPLEX", "aliases", 3000)


def test_long_documents_are_refused_unread(gql: GraphQL) -> None:
    query = "{ health }" + " " * 300_000
    error = refused(gql, query)
    assert error["code"] == "DOCUMENT_TOO_LARGE"
    assert (error["limit"], error["max"], error["found"]) == ("documentSize", 262144, len(query))
    small = strict(gql, graphql_max_document_size=20)
    assert refused(small, "{ health }" + " " * 11)["limit"] == "documentSize"
    assert small("{ health }" + " " * 10) == {"health": "up"}


def test_token_limit(gql: GraphQL) -> None:
    few = strict(gql, graphql_max_tokens=10)
    error = refused(few, "{ a: health b: health c: health }")  # 11 tokens
    assert error["code"] == "DOCUMENT_TOO_LARGE"
    assert (error["limit"], error["max"]) == ("tokens", 10)
    assert few("{ a: health b: health }") == {"a": "up", "b": "up"}


def test_deep_queries_are_refused(gql: GraphQL) -> None:
    def nested(depth: int) -> str:
        return "{ " + "project { " * (depth - 1) + "id" + " }" * depth

    error = refused(gql, nested(21))
    assert (error["code"], error["limit"], error["max"], error["found"]) == (
        "QUERY_TOO_COMPLEX",
        "depth",
        20,
        21,
    )
    # Far deeper than the parser recurses: refused with the same code.
    error = refused(strict(gql, graphql_max_tokens=100_000), nested(2000))
    assert (error["code"], error["limit"]) == ("QUERY_TOO_COMPLEX", "depth")


def test_page_arguments_above_the_limit_are_refused(gql: GraphQL) -> None:
    error = refused(gql, "{ project { tasks(first: 1001) { totalCount } } }")
    assert error["code"] == "QUERY_TOO_COMPLEX"
    assert (error["limit"], error["max"], error["found"]) == ("pageSize", 1000, 1001)
    assert "`tasks` asks for a page of 1001" in error["message"]
    query = "query($n: Int!) { project { taskPage(pageSize: $n) { total } } }"
    assert refused(gql, query, {"n": 5000})["found"] == 5000
    assert gql(query, {"n": 1000})["project"]["taskPage"]["total"] == 0
    small = strict(gql, graphql_max_page_size=5)
    # A default counts too: labelConfigImpact's first is 20.
    impact = '{ project { labelConfigImpact(labelConfig: "<View/>") { ok } } }'
    assert refused(small, impact)["found"] == 20


def test_aliased_large_pages_are_refused_before_execution(gql: GraphQL) -> None:
    """Security item 8, scaled: ten aliases of a large page of tasks would build a huge
    answer; the estimate (aliases x page x fields) refuses it, one alias runs."""
    import_tasks(gql, 30)
    small = strict(gql, graphql_max_nodes=500, graphql_max_page_size=100)
    page = f"tasks(first: 20) {{ {TASK_FIELDS} }}"
    attack = "{ project { " + " ".join(f"p{i}: {page}" for i in range(10)) + " } }"
    error = refused(small, attack)
    assert (error["code"], error["limit"], error["max"]) == ("QUERY_TOO_COMPLEX", "nodes", 500)
    assert error["found"] == 1 + 10 * (1 + 20 * (1 + 1 + 1))
    answer = small("{ project { " + page + " } }")["project"]["tasks"]["nodes"]
    assert [t["data"]["text"] for t in answer] == [f"t{i}" for i in range(20)]


def test_lists_without_page_arguments_count_ten_items(gql: GraphQL) -> None:
    """Introspection's nested lists: __schema{types{fields{type{fields…}}}} grows 10x a level."""
    bomb = "{ __schema { types { fields { type { fields { type { fields { type { fields { name "
    error = refused(gql, bomb + "} } } } } } } } } }")
    assert (error["code"], error["limit"]) == ("QUERY_TOO_COMPLEX", "nodes")
    assert error["found"] > 100_000


def test_fragments_are_measured_once_each(gql: GraphQL) -> None:
    """A fragment bomb (each fragment spreads the next twice) is measured in linear time."""
    spreads = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(60))
    query = "query { ...F0 } " + spreads + " fragment F60 on Query { a: health }"
    error = refused(gql, query)
    assert (error["code"], error["limit"], error["found"]) == (
        "QUERY_TOO_COMPLEX",
        "aliases",
        2**60,
    )
    cycle = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }"
    assert refused(gql, cycle)["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_graphiql_introspection_runs(gql: GraphQL) -> None:
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
        one_of=True,
    )
    schema_ = gql(query)["__schema"]
    assert schema_["queryType"] == {"name": "Query", "kind": "OBJECT"}
    assert any(t["name"] == "Project" for t in schema_["types"])


def test_stored_rest_operations_are_within_the_default_limits() -> None:
    assert ENDPOINTS
    for endpoint in ENDPOINTS:
        document = endpoint.operation.document
        parsed = limits.parse_document(document, limits.DEFAULT_LIMITS)
        limits.check_shape(measure(parsed, schema._schema, None), limits.DEFAULT_LIMITS)


def test_rest_routes_are_not_subject_to_the_limits(
    app_with_settings: Callable[..., TestClient],
) -> None:
    client = app_with_settings(
        graphql_max_page_size=1,
        graphql_max_nodes=5,
        graphql_max_aliases=1,
        graphql_max_depth=2,
        graphql_max_tokens=20,
    )
    tasks = [{"text": f"t{i}"} for i in range(3)]
    assert client.post("/api/project/import", json=tasks).status_code == 201
    page = client.get("/api/tasks", params={"page_size": 3}).json()["tasks"]
    assert [t["data"]["text"] for t in page] == ["t0", "t1", "t2"]
    assert client.get("/api/project").json()["task_count"] == 3
    body = client.post("/graphql", json={"query": "{ project { tasks(first: 2) { totalCount } } }"})
    assert body.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


def test_only_small_documents_are_cached(gql: GraphQL) -> None:
    def calls() -> tuple[int, int]:
        parsed, validated = (
            limits._cached_parse.cache_info(),
            limits._cached_validation.cache_info(),
        )
        return parsed.hits + parsed.misses, validated.hits + validated.misses

    small = "{ version { labelgraph } }"
    before = calls()
    gql(small)
    assert calls() == (before[0] + 1, before[1] + 1)
    assert limits._cached_parse(small, 5000) is limits._cached_parse(small, 5000)
    # A large document (a long comment keeps it cheap to run) never reaches the caches.
    large = "# " + "x" * limits.CACHEABLE_DOCUMENT_SIZE + "\n{ health }"
    before = calls()
    assert gql(large) == {"health": "up"}
    assert calls() == before


@pytest.mark.parametrize("setting", limits.QueryLimits.__dataclass_fields__)
def test_limits_come_from_settings(setting: str) -> None:
    name = "graphql_" + setting
    changed: dict[str, Any] = {name: 7}
    assert getattr(limits.QueryLimits.of(Settings(**changed)), setting) == 7
    with pytest.raises(ValueError, match=name):
        Settings.from_env({}, **{name: 0})


def test_token_limit_message_is_graphql_cores() -> None:
    with pytest.raises(Exception, match=limits.TOKEN_LIMIT_MESSAGE):
        parse("{ a b c }", max_tokens=2)


def test_the_validation_cache_never_hashes_a_syntax_tree(
    gql: GraphQL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache of validations is keyed by the document's text: hashing the parsed tree cost
    every request a walk of the whole document."""

    def no_hashing(self: object) -> int:
        raise AssertionError("a syntax tree was hashed")

    query = "{ version { labelgraph } }"
    gql(query)  # parsed, validated and cached
    before = limits._cached_validation.cache_info().hits
    monkeypatch.setattr(DocumentNode, "__hash__", no_hashing)
    assert gql(query)["version"]["labelgraph"]
    assert gql(query + " ")["version"]["labelgraph"]  # another text: validated anew
    assert limits._cached_validation.cache_info().hits == before + 1
