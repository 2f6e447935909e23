"""/api/import-example, /api/import-example-file and /samples/time-series.csv
(labeling-config.md §8): sample tasks that depend only on a labeling config."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from rest_compat._http import (
    OPERATION_HEADER,
    Operation,
    OperationFailed,
    RestError,
    answer,
    endpoint,
    error_body,
    execute,
)
from rest_compat.project import read_label_config
from server.principal import Role

SAMPLE_TASK = Operation(
    "query RestImportExample($config: String!) { sampleTask(labelConfig: $config) }"
)
SAMPLE_FILE = Operation(
    "query RestImportExampleFile($format: String!) "
    "{ project { sampleTaskFile(format: $format) { filename mediaType content } } }"
)
TIME_SERIES = Operation(
    "query RestSampleTimeSeries($time: String!, $values: String!, $sep: String, $tf: String) "
    "{ sampleTimeSeriesCsv(time: $time, values: $values, sep: $sep, timeFormat: $tf) }"
)
EXAMPLE_ERROR = "error while example generating"


async def _example_config(request: Request) -> str | None:
    """The config from the query string, else (POST) a form field, JSON key or XML body."""
    value = request.query_params.get("label_config")
    if value is not None or request.method != "POST":
        return value
    return await read_label_config(request)


async def import_example(request: Request) -> Response:
    text = await _example_config(request)
    if text is None:
        body = error_body(400, EXAMPLE_ERROR, label_config=["No label_config in request"])
        raise RestError(400, body, SAMPLE_TASK)
    try:
        data = await execute(request, SAMPLE_TASK, {"config": text})
    except OperationFailed as exc:
        if exc.code != "INVALID_LABEL_CONFIG":
            raise
        body = error_body(400, EXAMPLE_ERROR, label_config=exc.messages)
        raise RestError(400, body, SAMPLE_TASK) from None
    return answer(data["sampleTask"], 200, SAMPLE_TASK)


endpoint("/import-example", "GET", SAMPLE_TASK, permission=Role.ADMIN)(import_example)
endpoint("/import-example", "POST", SAMPLE_TASK, permission=Role.ADMIN)(import_example)


@endpoint("/import-example-file", "GET", SAMPLE_FILE, permission=Role.ADMIN)
async def import_example_file_get(request: Request) -> Response:
    """Two sample tasks for the project's config as a file; an attachment unless ``raw`` is
    given and not ``0`` (as Label Studio)."""
    file_format = request.query_params.get("q", "json")
    data = await execute(request, SAMPLE_FILE, {"format": file_format})
    sample = data["project"]["sampleTaskFile"]
    headers = {OPERATION_HEADER: SAMPLE_FILE.name}
    if request.query_params.get("raw", "0") == "0":
        headers["Content-Disposition"] = f"attachment; filename={sample['filename']}"
        headers["filename"] = sample["filename"]
    return Response(sample["content"], 200, headers=headers, media_type=sample["mediaType"])


@endpoint("/samples/time-series.csv", "GET", TIME_SERIES, under_api=False, permission=Role.ADMIN)
async def time_series_csv_get(request: Request) -> Response:
    """The CSV a time-series sample task points to (labeling-config.md §8.4)."""
    params = request.query_params
    variables = {
        "time": params.get("time", "time"),
        "values": params.get("values", ""),
        "sep": params.get("sep"),
        "tf": params.get("tf"),
    }
    data = await execute(request, TIME_SERIES, variables)
    headers = {
        OPERATION_HEADER: TIME_SERIES.name,
        "Content-Disposition": "inline; filename=time-series.csv",
    }
    return Response(data["sampleTimeSeriesCsv"], 200, headers=headers, media_type="text/csv")
