"""Multi-session isolation through GraphQL: every Query and Mutation field, called by one
session with the ids of another session's project (its project, tasks, completions, staged
import, job, ML backend), answers NOT_FOUND exactly as for an unknown id, and changes nothing
of that project. The fields are read from the schema itself, so a field added later has to be
classified here (and checked in the context) before this test passes."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    Undefined,
    get_named_type,
)
from starlette.testclient import TestClient

from schema import schema
from server import db, models
from server.app import create_app
from server.settings import Settings
from tests.conftest import fixture_json, fixture_text
from tests.ml_backend import dead_url

# What the `id` argument of each field names (other id arguments are named for what they hold).
ID_ARGUMENT_KIND: dict[str, str | None] = {
    # None: a number within the project named by projectId (saved views), not a global id.
    "saveView": None,
    "deleteView": None,
    "updateViewSelection": None,
    "project": "project",
    "task": "task",
    "updateTask": "task",
    "deleteTask": "task",
    "updateCompletion": "completion",
    "deleteCompletion": "completion",
    "stagedImport": "staged_import",
    "updateStagedImport": "staged_import",
    "applyStagedImport": "staged_import",
    "job": "job",
    "webhook": "webhook",
    "updateWebhook": "webhook",
    "deleteWebhook": "webhook",
}
ARGUMENT_KIND = {
    "projectId": "project",
    "uuid": "project_uuid",
    "taskId": "task",
    "taskIds": "task_ids",
    "removeMlBackend.name": "ml_backend",
}
# A uuid is the secret that shares a project: selecting one is how a session reaches another
# user's project (tests/rest/test_multi_session.py covers it).
SHARES_BY_UUID = {"selectProject"}
# Users and tokens belong to users, not to projects; sharing a project is an admin's act on
# any project (tests/auth/ covers who reaches them).
USER_SCOPED = {
    "shareProject",
    "unshareProject",
    "setUserEnabled",
    "me",
    "myTokens",
    "users",
    "createToken",
    "revokeToken",
    "createUser",
    "login",
    "logout",
}
# Values of required arguments that hold no id ("field.argument" wins over "argument").
SAMPLE_VALUES: dict[str, Any] = {
    "labelConfig": fixture_text("configs/sentiment.xml"),
    "completion": {"result": []},
    "format": "JSON",
    "role": "SOURCE",
    "setStorage.values": {},
    "backends": [],
    "url": "http://127.0.0.1:9",
    "input": {"title": "changed"},
    # An inactive webhook to a public address: nothing is ever sent to it.
    "createWebhook.input": {"url": "http://93.184.216.34/hook", "isActive": False},
    "updateWebhook.input": {"isActive": False},
    "time": "time",
    "sampleTimeSeriesCsv.values": "value",
    # Views are numbered per project: the projectId argument is the foreign id there.
    "saveView.view": {"title": "changed"},
    "deleteView.id": 1,
    "updateViewSelection.id": 1,
    "updateViewSelection.selection": {"all": True, "excluded": []},
    "runTaskAction.action": "DELETE_TASKS_PREDICTIONS",
}
SELECT = "mutation($uuid: String!) { selectProject(uuid: $uuid) { id } }"
UNKNOWN_VALUES: dict[str, Any] = {
    "project": 999_999,
    "project_uuid": "0b6f0f8e-6a44-4a51-9a9a-8d1f0c1b2a3c",
    "task": 999_999,
    "task_ids": [999_999],
    "completion": 999_999,
    "staged_import": 999_999,
    "job": 999_999,
    "webhook": 999_999,
    "ml_backend": "no-such-backend",
}


@dataclass
class SessionData:
    """One session's project and the ids of what it holds."""

    project: int
    project_uuid: str
    project_dir: Path
    task: int
    task_ids: list[int]
    completion: int
    staged_import: int
    webhook: int
    job: int | None
    ml_backend: str

    def value(self, kind: str) -> Any:
        return getattr(self, kind)


def run(client: TestClient, query: str, variables: dict[str, Any] | None = None) -> Any:
    return client.post("/graphql", json={"query": query, "variables": variables or {}}).json()


def data_of(client: TestClient, query: str, variables: dict[str, Any] | None = None) -> Any:
    body = run(client, query, variables)
    assert "errors" not in body, body
    return body["data"]


def populate(client: TestClient, root: Path, backend: str, *, with_job: bool) -> SessionData:
    config = {"label_config": fixture_text("configs/sentiment.xml")}
    assert client.post("/api/project/config", data=config).status_code == 201
    tasks = fixture_json("tasks/sentiment_mixed.json")
    assert client.post("/api/project/import", json=tasks).status_code == 201
    data_of(
        client,
        "mutation($b: [MlBackendInput!]!) { setMlBackends(backends: $b) { name } }",
        {"b": [{"name": backend, "url": dead_url()}]},
    )
    project = data_of(
        client,
        "{ project { id uuid name tasks(first: 50) { nodes { id completions { id } } } } }",
    )["project"]
    nodes = project["tasks"]["nodes"]
    completion = next(c["id"] for n in nodes for c in n["completions"])
    prepare = "mutation($t: JSON!) { prepareImport(tasks: $t) { id } }"
    staged = data_of(client, prepare, {"t": [{"text": "staged"}]})["prepareImport"]["id"]
    create = "mutation($i: WebhookInput!) { createWebhook(input: $i) { id } }"
    webhook = data_of(client, create, {"i": SAMPLE_VALUES["createWebhook.input"]})
    job = None
    if with_job:
        start = "mutation { startPredictionJob(allTasks: true) { id } }"
        job = data_of(client, start)["startPredictionJob"]["id"]
        wait_for_job(client, job)
    return SessionData(
        project=project["id"],
        project_uuid=project["uuid"],
        project_dir=root / project["name"],
        task=nodes[0]["id"],
        task_ids=[nodes[0]["id"]],
        completion=completion,
        staged_import=staged,
        webhook=webhook["createWebhook"]["id"],
        job=job,
        ml_backend=backend,
    )


def wait_for_job(client: TestClient, job_id: int) -> None:
    deadline = time.monotonic() + 30
    query = "query($id: Int!) { job(id: $id) { state } }"
    while data_of(client, query, {"id": job_id})["job"]["state"] not in ("DONE", "FAILED"):
        assert time.monotonic() < deadline, f"job {job_id} did not finish"
        time.sleep(0.02)


def project_snapshot(project_id: int, project_dir: Path) -> dict[str, Any]:
    """Every row that belongs to the project, and every file of its directory."""

    def rows() -> dict[str, Any]:
        found: dict[str, Any] = {
            "Project": models.Project.get_by_id(project_id).__data__,
        }
        for model in models.BaseModel.__subclasses__():
            if "project" in model._meta.fields:
                query = model.select().where(model._meta.fields["project"] == project_id)
                found[model.__name__] = sorted((r.__data__ for r in query), key=repr)
        return found

    files = {
        str(path.relative_to(project_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(project_dir.rglob("*"))
        if path.is_file()
    }
    return {"rows": db.with_connection(rows), "files": files}


def selection(field_type: GraphQLOutputType) -> str:
    named = get_named_type(field_type)
    if not isinstance(named, GraphQLObjectType):
        return ""
    wanted = [name for name in ("id", "uuid", "name") if name in named.fields]
    return "{ __typename " + " ".join(wanted) + " }"


def argument_kind(field_name: str, argument: str) -> str | None:
    if argument == "id":
        if field_name not in ID_ARGUMENT_KIND:
            pytest.fail(f"{field_name}(id): add what its id names to ID_ARGUMENT_KIND")
        return ID_ARGUMENT_KIND[field_name]
    return ARGUMENT_KIND.get(f"{field_name}.{argument}", ARGUMENT_KIND.get(argument))


def sample_value(field_name: str, argument: str) -> Any:
    key = f"{field_name}.{argument}"
    if key in SAMPLE_VALUES:
        return SAMPLE_VALUES[key]
    if argument in SAMPLE_VALUES:
        return SAMPLE_VALUES[argument]
    pytest.fail(f"{field_name}({argument}:) is required: add a value to SAMPLE_VALUES")


@dataclass
class Call:
    """One call of a field; ``foreign`` names the argument that holds another session's id."""

    operation: str
    field: str
    variables: dict[str, Any]
    foreign: str | None
    kind: str | None

    def document(self, gql_field: GraphQLField) -> str:
        declared = ", ".join(f"${name}: {gql_field.args[name].type}" for name in self.variables)
        passed = ", ".join(f"{name}: ${name}" for name in self.variables)
        head = f"{self.operation} Walk({declared})" if declared else self.operation
        call = f"{self.field}({passed})" if passed else self.field
        return f"{head} {{ {call} {selection(gql_field.type)} }}"


def calls(operation: str, name: str, field: GraphQLField, own: SessionData) -> Iterator[Call]:
    """The field with each of its id arguments in turn set to the foreign value (the others:
    the caller's own ids where required), or once, when it takes no id."""
    required: dict[str, Any] = {}
    id_arguments: dict[str, str] = {}
    for argument, spec in field.args.items():
        kind = argument_kind(name, argument)
        if kind is not None:
            id_arguments[argument] = kind
            if isinstance(spec.type, GraphQLNonNull):
                required[argument] = own.value(kind)
        elif isinstance(spec.type, GraphQLNonNull) and spec.default_value is Undefined:
            required[argument] = sample_value(name, argument)
    if not id_arguments:
        yield Call(operation, name, required, None, None)
    for argument, kind in id_arguments.items():
        yield Call(operation, name, {**required, argument: kind}, argument, kind)


def with_values(call: Call, source: SessionData | None) -> dict[str, Any]:
    """The call's variables with its foreign argument taken from ``source`` (None: a value
    that names nothing)."""
    if call.foreign is None or call.kind is None:
        return call.variables
    value = UNKNOWN_VALUES[call.kind] if source is None else source.value(call.kind)
    return {**call.variables, call.foreign: value}


def masked(error: dict[str, Any], value: Any) -> dict[str, Any]:
    """An error with the id it names masked, to compare a foreign id's with an unknown one's."""
    scalar = value[0] if isinstance(value, list) else value
    text = str(scalar)
    extensions = {
        key: "<id>" if found in (value, scalar, text) else found
        for key, found in error.get("extensions", {}).items()
    }
    return {"message": error["message"].replace(text, "<id>"), "extensions": extensions}


def schema_fields() -> Iterator[tuple[str, str, GraphQLField]]:
    graphql_schema = schema._schema
    for operation, root in (
        ("query", graphql_schema.query_type),
        ("mutation", graphql_schema.mutation_type),
    ):
        assert root is not None
        for name, field in root.fields.items():
            yield operation, name, field


@pytest.fixture
def app(multi_settings: Settings) -> Iterator[Any]:
    application = create_app(multi_settings)
    with TestClient(application):
        yield application


def test_every_field_keeps_other_sessions_projects_apart(
    app: Any, multi_settings: Settings
) -> None:
    root = Path(multi_settings.root_dir)
    owner, intruder = TestClient(app), TestClient(app)
    foreign = populate(owner, root, "owner-model", with_job=True)
    own = populate(intruder, root, "intruder-model", with_job=False)
    before = project_snapshot(foreign.project, foreign.project_dir)
    assert before["rows"]["Completion"] and before["rows"]["Job"] and before["files"]

    walked: set[str] = set()
    for operation, name, field in schema_fields():
        if name in SHARES_BY_UUID or name in USER_SCOPED:
            walked.add(name)
            continue
        for call in calls(operation, name, field, own):
            walked.add(name)
            document = call.document(field)
            answer = run(intruder, document, with_values(call, foreign))
            data_of(intruder, SELECT, {"uuid": own.project_uuid})  # back, after createProject
            where = f"{name} with {call.foreign or 'no id'}: {answer}"
            after = project_snapshot(foreign.project, foreign.project_dir)
            assert after == before, f"{where} changed the other session's project"
            if call.foreign is None:  # takes no id: answers only about the caller's data
                assert foreign.project_uuid not in str(answer), where
                continue
            assert answer.get("data") is None, where
            (error,) = answer["errors"]
            assert error["extensions"]["code"] == "NOT_FOUND", where
            unknown = run(intruder, document, with_values(call, None))
            (unknown_error,) = unknown["errors"]
            assert masked(error, with_values(call, foreign)[call.foreign]) == masked(
                unknown_error, UNKNOWN_VALUES[call.kind or ""]
            ), f"{where} differs from an unknown id's answer {unknown_error}"
    assert walked == {name for _, name, _ in schema_fields()}

    # The owner still reaches everything.
    still = data_of(owner, "query($id: Int!) { task(id: $id) { id } }", {"id": foreign.task})
    assert still["task"]["id"] == foreign.task


def test_projects_lists_only_the_sessions_projects(app: Any, multi_settings: Settings) -> None:
    root = Path(multi_settings.root_dir)
    owner, other = TestClient(app), TestClient(app)
    foreign = populate(owner, root, "owner-model", with_job=False)
    listed = data_of(other, "{ projects { uuid } }")["projects"]
    current = data_of(other, "{ project { uuid } }")["project"]["uuid"]
    assert listed == [{"uuid": current}] and current != foreign.project_uuid
