"""Sample tasks for a labeling config (labeling-config.md §8). Pure: they depend only on the
config (compat Q-23), read through its :class:`~server.services.config.label_config.LabelConfig`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlencode

from server.errors import DomainError
from server.services.config.model import LabelConfig, SampleSource

Mode = Literal["editor_preview", "upload"]
ROWS = 100
FIRST_DAY = dt.date(2020, 1, 1)
TIME_FORMAT_ALIASES = {"yyyy-MM-dd": "%Y-%m-%d"}
FILE_FORMATS = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
}

_TEXT_RAW = "To have faith is to trust yourself to the water"
_TEXT_URL = "https://htx-pub.s3.amazonaws.com/example.txt"
_PARAGRAPHS = (
    ("Alice", "Hi, Bob."),
    ("Bob", "Hello, Alice!"),
    ("Alice", "What's up?"),
    ("Bob", "Good. Ciao!"),
    ("Alice", "Bye, Bob."),
)
_CARD = '<div style="float: right; display: inline-block; border: 1px solid #F2F3F4; background-color: #F8F9F9; border-radius: 5px; padding: 7px; margin: 10px 0;">'  # noqa: E501
_WOLF = '<div style="display: inline-block; border: 1px solid #D5F5E3; background-color: #EAFAF1; border-radius: 5px; padding: 7px; margin: 10px 0;">'  # noqa: E501
_DIALOGUE_HTML = (
    '<div style="max-width: 750px">'
    f'<div style="clear: both">{_CARD}<p><b>Jules</b>: No no, Mr. Wolfe, it\'s not like that. '
    "Your help is definitely appreciated.</p></div></div>"
    f'<div style="clear: both">{_CARD}<p><b>Vincent</b>: Look, Mr. Wolfe, I respect you. '
    "I just don't like people barking orders at me, that's all.</p></div></div>"
    f"<div style=\"clear: both\">{_WOLF}<p><b>The Wolf</b>: If I'm curt with you, it's because "
    "time is a factor. I think fast, I talk fast, and I need you two guys to act fast if you "
    "want to get out of this. So pretty please, with sugar on top, clean the car.</p></div></div>"
    "</div>"
)
_LONG_TEXT = (
    "Opossums are frequently considered to be living fossils, and as a result are often used "
    "to approximate the ancestral therian condition in comparative studies. However, this is "
    "inaccurate, the oldest opossum fossils are early Miocene in age (roughly 20 million years "
    "old) and the last common ancestor of all living opossums approximately dates to the "
    "Oligocene-Miocene boundary (roughly 23 million years ago) and is at most no older than "
    "Oligocene in age. Many extinct metatherians once considered early opossums, such as "
    "Alphadon, Peradectes, Herpetotherium, and Pucadelphys, have since been recognized to have "
    "been previously grouped with opossums on the basis of plesiomorphies and are now "
    "considered to represent older branches of Metatheria only distantly related to modern "
    "opossums."
)
_COMMON: dict[str, Any] = {
    "TextRaw": _TEXT_RAW,
    "TextUrl": _TEXT_URL,
    "Image": "static/samples/sample.jpg",
    "Audio": "static/samples/game.wav",
    "AudioPlus": "static/samples/game.wav",
    "Header": "Task header",
    "Table": {"Card number": 18799210, "First name": "Max", "Last name": "Nobel"},
    "$video": "<video src='static/samples/opossum_snow.mp4' width=100% controls>",
    "$longText": _LONG_TEXT,
    "$pdf": "<embed src='static/samples/sample.pdf' width='100%' height='600px'/>",
    "$headlessCsv": "static/samples/sample-task-sin-headless.csv",
}
# §8.3: values by variable name ("$key") or by tag name.
SAMPLES: dict[Mode, MappingProxyType[str, Any]] = {
    "editor_preview": MappingProxyType(
        {
            **_COMMON,
            "HyperText": _DIALOGUE_HTML,
            "$website": "<iframe src='http://heartex.ai' width='100%' height='600px'/>",
        }
    ),
    "upload": MappingProxyType(
        {
            **_COMMON,
            "HyperText": "<a href='heartex.net'>Heartex</a>",
            "$website": "<iframe src='https://heartex.ai' width='100%' height='600px'/>",
        }
    ),
}
_PREDEFINED = re.compile(r"<!-- ?\{")


def _time_values(time_format: str | None) -> list[Any]:
    if time_format is not None and "%" not in time_format:
        time_format = TIME_FORMAT_ALIASES.get(time_format)
    if time_format is None:
        return list(range(ROWS))
    return [(FIRST_DAY + dt.timedelta(days=i)).strftime(time_format) for i in range(ROWS)]


def time_series_json(
    time_column: str | None,
    columns: tuple[str | None, ...],
    time_format: str | None,
    rng: random.Random,
) -> dict[str, list[Any]]:
    """100 rows: the time column (0..99 or days from 2020-01-01), then standard-normal values
    per channel. Without a time column there is none (the original wrote a null key)."""
    data: dict[str, list[Any]] = {}
    if time_column is not None:
        data[time_column] = _time_values(time_format)
    for column in columns:
        if column is not None:
            data[column] = [rng.gauss(0.0, 1.0) for _ in range(ROWS)]
    return data


def _time_series(source: SampleSource, rng: random.Random) -> Any:
    if source.value_type == "url":
        params = {
            "time": str(source.time_column),
            "values": ",".join(c for c in source.channels if c is not None),
        }
        if source.sep:
            params["sep"] = source.sep
        if source.time_format:
            params["tf"] = source.time_format
        return "/samples/time-series.csv?" + urlencode(params)
    return time_series_json(source.time_column, source.channels, source.time_format, rng)


def _value(source: SampleSource, samples: MappingProxyType[str, Any], rng: random.Random) -> Any:
    if source.tag == "Paragraphs":
        return [{source.name_key: a, source.text_key: t} for a, t in _PARAGRAPHS]
    if source.tag == "TimeSeries":
        return _time_series(source, rng)
    by_name = samples.get("$" + source.key)
    if by_name:
        return by_name
    if source.tag == "Text":
        return samples["TextUrl" if source.value_type == "url" else "TextRaw"]
    return samples.get(source.tag, "Something")


def generate(
    config: LabelConfig, mode: Mode = "editor_preview", rng: random.Random | None = None
) -> dict[str, Any]:
    """Sample data for every ``$variable`` of the config (§8.2), without the predefined task."""
    rng = rng or random.Random()
    samples = SAMPLES[mode]
    return {source.key: _value(source, samples, rng) for source in config.sample_sources}


def predefined_task(text: str) -> dict[str, Any] | None:
    """Data from the first ``<!-- {...} -->`` comment whose content is a JSON object (§8.2):
    its ``data`` if it has one; nothing if it only has predictions/completions; else all of
    it."""
    for match in _PREDEFINED.finditer(text):
        start = match.end() - 1
        end = text.find("-->", start)
        if end < 0:
            return None
        try:
            body = json.loads(text[start:end])
        except ValueError:
            continue
        if not isinstance(body, dict):
            continue
        if "data" in body:
            return body["data"] if isinstance(body["data"], dict) else None
        if "predictions" in body or "completions" in body:
            return None
        return body
    return None


def editor_sample(config: LabelConfig, rng: random.Random | None = None) -> dict[str, Any]:
    """``/api/import-example``: generated data with the predefined task's keys over it."""
    task = generate(config, "editor_preview", rng)
    predefined = predefined_task(config.text)
    if predefined:
        task.update(predefined)
    return task


@dataclass(frozen=True)
class SampleFile:
    content: str
    media_type: str
    filename: str


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def render(tasks: list[dict[str, Any]], file_format: str) -> str:
    """Tasks as an import file of ``file_format`` (json, csv, tsv or txt)."""
    if file_format == "json":
        return json.dumps(tasks, ensure_ascii=False)
    keys = list(dict.fromkeys(k for task in tasks for k in task))
    if file_format in ("csv", "tsv"):
        out = io.StringIO()
        writer = csv.writer(
            out, delimiter="," if file_format == "csv" else "\t", lineterminator="\n"
        )
        writer.writerow(keys)
        for task in tasks:
            writer.writerow([_cell(task.get(k, "")) for k in keys])
        return out.getvalue()
    if file_format == "txt":
        if len(keys) != 1:
            raise DomainError(
                "invalid",
                "TXT is unsupported for projects with multiple sources in config"
                if keys
                else "TXT needs a config with one data key",
                {"field": "q"},
            )
        return "".join(_cell(task[keys[0]]) + "\n" for task in tasks)
    raise DomainError(
        "invalid",
        f'Incorrect "q" or "raw" parameters: q must be one of {", ".join(FILE_FORMATS)}',
        {"field": "q"},
    )


def sample_file(
    config: LabelConfig, file_format: str, now: dt.datetime | None = None
) -> SampleFile:
    """``/api/import-example-file``: two copies of an upload-set sample as a file (§8.1)."""
    if file_format not in FILE_FORMATS:
        render([], file_format)  # raises with the message
    task = generate(config, "upload")
    content = render([task, task], file_format)
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d-%H-%M")
    return SampleFile(content, FILE_FORMATS[file_format], f"sample-{stamp}.{file_format}")


def time_series_csv(
    time_column: str,
    values: str,
    sep: str | None = None,
    time_format: str | None = None,
    rng: random.Random | None = None,
) -> str:
    """``/samples/time-series.csv`` (§8.4): the JSON sample's 100 rows as CSV. Digit-only
    column names make a headless file whose value columns are 1..max(values)."""
    rng = rng or random.Random()
    separator = (sep or ",").replace("\\t", "\t")
    separator = {"dot": ".", "comma": ",", "tab": "\t", "space": " "}.get(separator, separator)
    if len(separator) != 1:
        raise DomainError("invalid", "sep must be one character or dot, comma, tab, space")
    columns = [c for c in values.split(",") if c]
    headless = bool(columns) and all(c.isdigit() for c in [time_column, *columns])
    if headless:
        count = max((int(c) for c in columns), default=0)
        columns = [str(i) for i in range(1, count + 1)]
    data = time_series_json(time_column, tuple(columns), time_format, rng)
    names = list(data)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=separator, lineterminator="\n")
    if not headless:
        writer.writerow(names)
    for i in range(ROWS):
        writer.writerow([data[name][i] for name in names])
    return out.getvalue()
