"""GraphQL over HTTP as the graphql-over-http spec and GraphQL clients expect it.

- ``Accept: application/graphql-response+json`` gets that media type; a request error (the
  document could not be parsed, validated or was refused by a query limit: no ``data``) is then
  a 400. With ``application/json`` (or no preference) every GraphQL answer stays a 200, as the
  spec allows for legacy clients.
- A request error's answer has no ``data`` entry (GraphQL spec: the error came before
  execution).
- Requests Strawberry refuses before GraphQL runs (malformed JSON, no query, unsupported content
  type) answer a JSON ``errors`` body with ``extensions.code`` ``BAD_REQUEST`` instead of text.
- An answer longer than ``graphql_max_response_size`` bytes is replaced by a
  ``RESPONSE_TOO_LARGE`` error.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import orjson
from cross_web import HTTPException  # Strawberry's own HTTP error (a dependency of it)
from starlette.requests import Request
from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from server.settings import Settings

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
BAD_REQUEST = "BAD_REQUEST"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
RESPONSE_TOO_LARGE = "RESPONSE_TOO_LARGE"

ContextT = TypeVar("ContextT")


def prefers_graphql_response_json(accept: str) -> bool:
    """Whether the Accept header asks for application/graphql-response+json at least as much
    as for application/json."""
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[media.lower()] = max(weight, weights.get(media.lower(), 0.0))
    wanted = weights.get(GRAPHQL_RESPONSE_JSON, 0.0)
    return wanted > 0 and wanted >= weights.get(JSON, 0.0)


class GraphQLSubResponse(Response):
    """Strawberry's per-request response (headers, status) plus what this request asked for."""

    def __init__(self, graphql_media: bool, max_size: int) -> None:
        super().__init__()
        self.status_code = None  # type: ignore[assignment]  # as Strawberry's: "not set"
        del self.headers["content-length"]
        self.graphql_media = graphql_media
        self.max_size = max_size


def error_body(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}


class GraphQLOverHTTP(GraphQL[ContextT, None]):
    async def run(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().run(request, *args, **kwargs)
        except HTTPException as error:
            if not isinstance(request, Request):
                raise
            code = METHOD_NOT_ALLOWED if error.status_code == 405 else BAD_REQUEST
            graphql_media = prefers_graphql_response_json(request.headers.get("accept", ""))
            return Response(
                json.dumps(error_body(error.reason, code)),
                error.status_code,
                media_type=_media_type(graphql_media),
            )

    def parse_json(self, data: str | bytes) -> Any:
        """Strawberry's, refusing a body that is not a JSON object or list (a 400, not a
        500 from reading ``query`` out of a string)."""
        parsed = super().parse_json(data)
        if not isinstance(parsed, dict | list):
            raise HTTPException(400, "The request body must be a JSON object")
        return parsed

    async def get_sub_response(self, request: Any) -> Response:
        if not isinstance(request, Request):
            return await super().get_sub_response(request)
        settings: Settings = request.app.state.settings
        accept = request.headers.get("accept", "")
        return GraphQLSubResponse(
            prefers_graphql_response_json(accept), settings.graphql_max_response_size
        )

    async def process_result(self, request: Request, result: ExecutionResult) -> Any:
        answer = await super().process_result(request, result)
        if _is_request_error(result) and isinstance(answer, dict):
            answer.pop("data", None)
        return answer

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        if not isinstance(sub_response, GraphQLSubResponse):
            return super().create_response(response_data, sub_response)
        body = encode_answer(response_data)
        has_data = isinstance(response_data, dict) and "data" in response_data
        if len(body) > sub_response.max_size:
            has_data = False
            refused = error_body(
                f"The answer has {len(body)} bytes, more than the {sub_response.max_size} "
                "allowed; ask for smaller pages, fewer fields or fewer aliases.",
                RESPONSE_TOO_LARGE,
                limit="responseSize",
                max=sub_response.max_size,
                found=len(body),
            )
            body = encode_answer(refused)
        status = 400 if sub_response.graphql_media and not has_data else 200
        response = Response(body, status, media_type=_media_type(sub_response.graphql_media))
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response


def encode_answer(data: object) -> bytes:
    """An HTTP answer's JSON: orjson (compact UTF-8, several times faster than the standard
    library on a page of tasks); the standard library for what orjson refuses (integers beyond
    64 bits)."""
    try:
        return orjson.dumps(data)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(data, separators=(",", ":")).encode()


def _media_type(graphql_media: bool) -> str:
    return f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8" if graphql_media else JSON


def _is_request_error(result: ExecutionResult) -> bool:
    """Errors before execution (parse, validation, limits, variables): no data, no paths."""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)
