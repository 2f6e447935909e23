"""Lean completion (schema/lean_execution.py): the same answers and errors (messages, paths,
locations) as graphql-core's own completion, and a page's fields resolved without
graphql-core's per-field steps."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from starlette.testclient import TestClient

from schema import schema
from schema.context import Context
from schema.lean_execution import LeanExecution
from schema.lean_fields import install as install_lean_fields
from schema.scalars import JSON
from schema.shared_events import SharedEventExecution
from server import db
from tests.conftest import GraphQL


@strawberry.type
class Leaf:
    n: strawberry.Private[int]
    plain: int = 7

    @strawberry.field
    def value(self) -> int:
        return self.n

    @strawberry.field
    def maybe(self) -> int | None:
        if self.n == 2:
            raise ValueError("two is refused")
        return self.n

    @strawberry.field
    def strict(self) -> int:
        if self.n == 3:
            raise ValueError("three is refused")
        return self.n

    @strawberry.field
    def null_strict(self) -> int:
        return None if self.n == 4 else self.n  # type: ignore[return-value]

    @strawberry.field
    def where(self, info: strawberry.Info) -> str:
        return f"{info.path.as_list()} {info._raw_info.parent_type.name}.{info.field_name}"

    @strawberry.field
    def blob(self) -> JSON:
        return {"n": self.n, "list": [self.n, None]}

    @strawberry.field
    def bad_int(self) -> int | None:
        return "x" if self.n == 5 else self.n  # type: ignore[return-value]

    @strawberry.field
    def child(self) -> Leaf | None:
        return Leaf(n=self.n + 10) if self.n % 2 else None

    @strawberry.field
    def with_argument(self, k: int = 1) -> int:
        return self.n * k


@strawberry.type
class Holder:
    items: list[Leaf]

    @strawberry.field
    def leaves(self) -> list[Leaf]:
        return [Leaf(n=i) for i in range(6)]

    @strawberry.field
    def maybe_leaves(self) -> list[Leaf | None] | None:
        return [Leaf(n=1), None, Leaf(n=2)]

    @strawberry.field
    def not_a_list(self) -> list[Leaf] | None:
        return "abc"  # type: ignore[return-value]

    @strawberry.field
    def a_tuple(self) -> list[Leaf]:
        return (Leaf(n=1), Leaf(n=2))  # type: ignore[return-value]

    @strawberry.field
    def stranger(self) -> Leaf | None:
        return Holder(items=[])  # type: ignore[return-value]


@strawberry.type
class Query:
    @strawberry.field
    def holder(self) -> Holder | None:
        return Holder(items=[Leaf(n=1, plain=3), Leaf(n=4)])


def _schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    lean = strawberry.Schema(query=Query, execution_context_class=LeanExecution)
    plain = strawberry.Schema(query=Query, execution_context_class=SharedEventExecution)
    install_lean_fields(lean)
    install_lean_fields(plain)
    return lean, plain


QUERIES = [
    "{ holder { leaves { value maybe plain blob where __typename child { value where } } } }",
    "{ holder { leaves { value strict } } }",
    "{ holder { leaves { value nullStrict } } }",
    "{ holder { items { plain value nullStrict } } }",
    "{ holder { maybeLeaves { value strict where } } }",
    "{ holder { leaves { badInt } } }",
    "{ holder { notAList { value } aTuple { value where } stranger { value } } }",
    "{ holder { leaves { withArgument(k: 3) value } } }",
    "{ holder { leaves { a: value b: value ...F ... on Leaf { where } } } }"
    " fragment F on Leaf { value maybe }",
    "query($s: Boolean!) { holder { leaves { value @skip(if: $s) maybe @include(if: $s) } } }",
]


@pytest.mark.parametrize("query", QUERIES)
def test_lean_completion_answers_as_graphql_core(query: str) -> None:
    lean, plain = _schemas()
    answers = []
    for target in (lean, plain):
        result = target.execute_sync(query, {"s": True})
        errors = [e.formatted for e in result.errors or []]
        answers.append((result.data, sorted(errors, key=repr)))
    assert answers[0] == answers[1]


def test_errors_propagate_as_graphql_core_propagates_them() -> None:
    lean, _plain = _schemas()
    result = lean.execute_sync("{ holder { leaves { value strict } } }")
    assert result.data == {"holder": None}
    assert result.errors is not None
    assert [(e.message, e.path) for e in result.errors] == [
        ("three is refused", ["holder", "leaves", 3, "strict"])
    ]
    result = lean.execute_sync("{ holder { leaves { where maybe } } }")
    assert result.data is not None
    leaves = result.data["holder"]["leaves"]
    assert leaves[2] == {"where": "['holder', 'leaves', 2, 'where'] Leaf.where", "maybe": None}
    assert [(e.message, e.path) for e in result.errors or []] == [
        ("two is refused", ["holder", "leaves", 2, "maybe"])
    ]


PAGE = (
    "query($n: Int!) { project { tasks(first: $n) { nodes { id data "
    "completions { id result } predictions { score result } } } } }"
)


def test_a_page_resolves_its_nodes_without_graphql_cores_field_steps(
    client: TestClient, gql: GraphQL, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = [
        {
            "data": {"text": f"t{i}"},
            "completions": [{"result": [{"i": i}]}],
            "predictions": [{"result": [], "score": i / 10}] * (i % 2),
        }
        for i in range(20)
    ]
    assert client.post("/api/project/import", json=tasks).status_code == 201
    calls = []
    execute_field = SharedEventExecution.execute_field

    def counted(self: SharedEventExecution, *args: Any) -> Any:
        calls.append(args[2])
        return execute_field(self, *args)

    monkeypatch.setattr(SharedEventExecution, "execute_field", counted)

    def page(n: int) -> tuple[Any, int]:
        calls.clear()
        context = Context(settings=gql.settings, project_id=gql.project_id)
        result = db.with_connection(schema.execute_sync, PAGE, {"n": n}, context_value=context)
        assert result.errors is None
        return result.data, len(calls)

    data, fields = page(20)
    nodes = data["project"]["tasks"]["nodes"]
    assert [n["data"] for n in nodes] == [{"text": f"t{i}"} for i in range(20)]
    assert [n["completions"][0]["result"] for n in nodes] == [[{"i": i}] for i in range(20)]
    assert [[p["score"] for p in n["predictions"]] for n in nodes] == [
        [i / 10] * (i % 2) for i in range(20)
    ]
    # project and tasks (it takes arguments): the rest is completed leanly, at any page size.
    assert fields == page(1)[1] == 2
    monkeypatch.setattr(schema, "execution_context_class", SharedEventExecution)
    # graphql-core's own completion: the same answer, each field through its steps.
    assert page(20) == (data, 3 + 20 * 4 + 20 * 2 + 10 * 2)


def test_a_copy_of_an_executor_completes_with_its_own_errors() -> None:
    """A subscription's executor is copied per event (attributes and all): each copy records
    the errors of its own execution, not those of the executor it was copied from."""
    from graphql import parse

    lean, _plain = _schemas()
    document = parse("{ holder { leaves { value maybe } } }")
    executor = LeanExecution.build(lean._schema, document)
    assert isinstance(executor, LeanExecution)
    first = executor.execute_operation()
    assert [e.path for e in executor.collected_errors.errors] == [["holder", "leaves", 2, "maybe"]]
    copied = executor.build_per_event_executor(None)
    assert copied.collected_errors.errors == []
    again = copied.execute_operation()
    assert again == first
    assert [e.path for e in copied.collected_errors.errors] == [["holder", "leaves", 2, "maybe"]]
    assert len(executor.collected_errors.errors) == 1


def _run(target: strawberry.Schema, document: Any, variables: dict[str, Any] | None = None) -> Any:
    from graphql import execute

    return execute(
        target._schema,
        document,
        variable_values=variables,
        executor_class=target.execution_context_class,
    )


def test_a_documents_completers_are_compiled_once_and_serve_every_execution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same document (as the parse cache hands it out) runs three times: its completers
    are compiled by the first run only, and each run gets its own errors and paths."""
    from graphql import parse

    lean, plain = _schemas()
    compiled: list[str] = []
    compile_ = LeanExecution._compile

    def counted(self: LeanExecution, *args: Any) -> Any:
        compiled.append(args[1][0].node.name.value)
        return compile_(self, *args)

    monkeypatch.setattr(LeanExecution, "_compile", counted)
    document = parse("{ holder { leaves { value maybe where child { where } } } }")
    expected = _run(plain, document)
    results = [_run(lean, document)]
    after_first = list(compiled)
    assert "leaves" in after_first and "child" in after_first
    results += [_run(lean, document) for _ in range(2)]
    assert compiled == after_first  # nothing compiled again
    for result in results:
        assert result.data == expected.data
        assert [(e.message, e.path) for e in result.errors] == [
            ("two is refused", ["holder", "leaves", 2, "maybe"])
        ]
    assert len({id(result.errors) for result in results}) == 3


def test_selections_that_follow_the_variables_are_compiled_per_execution() -> None:
    """``@skip``/``@include`` make a document's selections depend on its variables: its
    completers are never shared, so each run answers for its own variables."""
    from graphql import parse

    lean, plain = _schemas()
    document = parse(
        "query($s: Boolean!) { holder { leaves { value @skip(if: $s) maybe @include(if: $s) } } }"
    )
    for skip in (True, False, True):
        got, expected = _run(lean, document, {"s": skip}), _run(plain, document, {"s": skip})
        assert (got.data, got.errors) == (expected.data, expected.errors)
        first = got.data["holder"]["leaves"][0]
        assert set(first) == ({"maybe"} if skip else {"value"})


def test_shared_completers_keep_no_executor_alive() -> None:
    """A completer kept for later executions holds no executor (nor its context and request):
    the executor is freed as soon as its execution ends."""
    import gc
    import weakref

    from graphql import parse

    lean, _plain = _schemas()
    document = parse("{ holder { leaves { value maybe where child { where } } } }")
    executor = LeanExecution.build(lean._schema, document)
    assert isinstance(executor, LeanExecution)
    assert executor.execute_operation() is not None
    assert executor._shares_completers()
    gone = weakref.ref(executor)
    del executor
    gc.collect()
    assert gone() is None
