"""Hypothesis strategies for hostile requests: arbitrary JSON with the values that used to reach a
500 (deep nesting, lone surrogates, integers beyond 32/64 bits, Infinity/NaN, wrong types), and
REST/GraphQL requests built from it (used by tests/test_property_fuzz.py)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from graphql import GraphQLArgument, GraphQLField, GraphQLNamedType, get_named_type
from hypothesis import strategies as st

SPECIAL_INTS = [
    0,
    -1,
    2**31 - 1,
    2**31,
    -(2**31) - 1,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64,
    10**30,
    -(10**30),
]
SPECIAL_FLOATS = [math.inf, -math.inf, math.nan, 1e308, -0.0, 5e-324, 0.5]
LONE_SURROGATES = ["\ud800", "a\udfffb", "\udbff", "x\udc00"]
SPECIAL_TEXT = ["", "null", "0", "1,2", "😀", "<View></View>", "s3://b/k", "id", "-id", "JSON"]
# Keys the routes read, so that generated objects reach past the first type check.
KEYS = [
    "data",
    "text",
    "result",
    "completions",
    "predictions",
    "meta",
    "id",
    "lead_time",
    "created_at",
    "was_cancelled",
    "score",
    "title",
    "description",
    "instruction",
    "sampling",
    "show_skip_button",
    "label_config",
    "task_ids",
    "selected_formats",
    "files_as_tasks_list",
    "selected",
    "type",
    "name",
    "path",
    "prefix",
    "regex",
    "ml_backends",
    "result_id",
]
# Query and form field names the routes read (never ``url``: imports would fetch it).
PARAMS = [
    "page",
    "page_size",
    "order",
    "mode",
    "task_ids",
    "format",
    "uuid",
    "was_cancelled",
    "storage_for",
    "type",
    "pretty",
    "new",
    "desc",
    "q",
    "time",
    "values",
    "sep",
    "label_config",
    "only_completed",
    "selected",
]


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 12),
    st.sampled_from(SPECIAL_INTS),
    st.integers(),
    st.floats(),
    st.sampled_from(SPECIAL_FLOATS),
    st.text(max_size=12),
    st.sampled_from(LONE_SURROGATES + SPECIAL_TEXT),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.sampled_from(LONE_SURROGATES))
json_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=16,
)
objects = st.dictionaries(keys, json_values, max_size=6)

# Raw bodies: what ``json.dumps`` writes (``Infinity``, ``NaN``, ``\ud800`` escapes), documents
# nested deeper than the limit, JSON number forms that overflow, and bytes that are not JSON.
json_texts = st.one_of(
    st.one_of(objects, json_values).map(json.dumps),
    st.integers(90, 2500).map(lambda n: '{"result": ' + nested(n) + ', "data": ' + nested(2) + "}"),
    st.integers(90, 2500).map(nested),
    st.sampled_from(
        [
            '{"result": [], "lead_time": 1e999}',
            '{"data": {"text": "a\\ud800b"}}',
            '[{"text": "\\udc00"}]',
            '{"title": -1e400}',
            "1e999",
            "NaN",
            "{",
            '{"a": 1, "a": 2}',
            '"\\ud800"',
            "9" * 5000,
        ]
    ),
)
raw_bodies = st.one_of(json_texts.map(str.encode), st.binary(max_size=24))
param_values = st.one_of(
    st.text(max_size=12),
    st.sampled_from(SPECIAL_TEXT),
    st.sampled_from(SPECIAL_INTS).map(str),
    st.sampled_from(["1e999", "inf", "nan", "-0", "١٢"]),
)
params = st.dictionaries(st.sampled_from(PARAMS), param_values, max_size=4)
path_values = st.one_of(
    st.integers(1, 8).map(str),
    st.sampled_from(SPECIAL_INTS).map(str),
    st.sampled_from(["null", "0x10", "1e3", "-5", "٣", "9" * 40, "%00", "a b"]),
    st.text(min_size=1, max_size=8),
)


hostile_leaves = st.one_of(
    st.sampled_from(LONE_SURROGATES), st.sampled_from(SPECIAL_INTS), st.sampled_from(SPECIAL_FLOATS)
)
hostile_values = st.one_of(hostile_leaves, hostile_leaves, json_values)


def _positions(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _positions(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _positions(child, (*path, index))
    return found


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` (a valid body) with one value replaced by a hostile one, or a key added."""
    path = draw(st.sampled_from(_positions(base)))
    if draw(st.booleans()) and isinstance(base, dict):
        return {**base, draw(keys): draw(hostile_values)}
    return _replaced(base, path, draw(hostile_values))


@dataclass
class RestRequest:
    method: str
    path: str
    params: dict[str, str]
    body: bytes | None = None
    form: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@st.composite
def rest_requests(
    draw: st.DrawFn, method: str, template: str, example: dict[str, Any]
) -> RestRequest:
    """A hostile request to a route; ``example`` is a valid request's client arguments (the
    route table's), whose JSON body and query are mutated half of the time."""
    path = template
    for name in re.findall(r"{(\w+)}", template):
        path = path.replace("{" + name + "}", quote(draw(path_values), safe=""))
    base_params = {k: str(v) for k, v in dict(example.get("params", {})).items()}
    request = RestRequest(method, path, {**base_params, **draw(params)})
    kind = draw(st.sampled_from(["example", "example", "json", "form", "none"]))
    if kind == "example":
        body = draw(mutated(example.get("json", {})))
        request.body = json.dumps(body).encode()
        request.headers["content-type"] = "application/json"
    elif kind == "json":
        request.body = draw(raw_bodies)
        request.headers["content-type"] = "application/json"
    elif kind == "form":
        request.form = draw(st.dictionaries(st.sampled_from(PARAMS + KEYS), param_values))
    return request


# GraphQL ------------------------------------------------------------------------------------


def graphql_literal(value: Any) -> str:
    """``value`` as a GraphQL literal: infinities as ``1e999``, keys that are no GraphQL name
    dropped; NaN and lone surrogates as what a client would write (the parser refuses them)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "1e999" if value > 0 else "-1e999"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(graphql_literal(v) for v in value) + "]"
    fields = (
        f"{k}: {graphql_literal(v)}"
        for k, v in value.items()
        if re.fullmatch(r"[_A-Za-z][_0-9A-Za-z]*", k)
    )
    return "{" + ", ".join(fields) + "}"


def _selection(field_def: GraphQLField) -> str:
    named: GraphQLNamedType = get_named_type(field_def.type)
    return " { __typename }" if hasattr(named, "fields") else ""


@st.composite
def graphql_mutations(draw: st.DrawFn, name: str, field_def: GraphQLField) -> str:
    """A request body (JSON text) calling mutation ``name`` with hostile arguments, as
    variables or as literals."""
    declared, passed, variables = [], [], {}
    for arg_name, arg in field_def.args.items():
        if _is_upload(arg):
            continue
        how = draw(st.sampled_from(["variable", "variable", "literal", "omit"]))
        if how == "omit":
            continue
        value = draw(st.one_of(json_values, objects))
        if how == "literal":
            passed.append(f"{arg_name}: {graphql_literal(value)}")
            continue
        declared.append(f"${arg_name}: {arg.type}")
        passed.append(f"{arg_name}: ${arg_name}")
        variables[arg_name] = value
    head = f"({', '.join(declared)})" if declared else ""
    call = f"({', '.join(passed)})" if passed else ""
    query = f"mutation Fuzz{head} {{ {name}{call}{_selection(field_def)} }}"
    deep = draw(st.integers(0, 9)) == 0  # a variable nested deeper than the limit
    if deep:
        variables["deep"] = DEEP_MARK
    text = json.dumps({"query": query, "variables": variables})
    if deep:
        text = text.replace(json.dumps(DEEP_MARK), nested(draw(st.integers(101, 1500))))
    return text


DEEP_MARK = "@@deep@@"


def _is_upload(arg: GraphQLArgument) -> bool:
    return get_named_type(arg.type).name == "Upload"
