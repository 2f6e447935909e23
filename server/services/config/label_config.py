"""Labeling config XML -> :class:`~server.services.config.model.LabelConfig`: the pipeline.

This is the only entry point that reads labeling-config XML (``labeling-config.md``): every
other part of the server asks the model that :func:`parse` returns. Validation follows §6.2 in
order, first failure wins, with Label Studio's messages: well-formed, safe XML and the
structural and name rules (:mod:`server.services.config.xml_checks`), then control -> object
resolution while building the model (:mod:`server.services.config.build`). The checks against a
project's tasks and completions (§7) live in :mod:`server.services.config.derived_schema`.
Pure functions, no database.
"""

from __future__ import annotations

import functools
from typing import Any

from server.services.config.build import build
from server.services.config.issues import ConfigIssue, LabelConfigError
from server.services.config.model import LabelConfig
from server.services.config.xml_checks import check_names, check_structure, parse_xml

DEFAULT_MAX_BYTES = 1024 * 1024


def strip_template_metadata(text: str) -> str:
    """Drop a template's leading metadata comment, as the template picker does (§8.5):
    everything up to and including the first ``-->`` followed by a newline."""
    if not text.lstrip().startswith("<!--"):
        return text
    end = text.find("-->\n")
    return text if end < 0 else text[end + 4 :]


def normalise(text: str) -> str:
    """The stored form of a submitted config: CRLF -> LF (§7.3)."""
    return text.replace("\r\n", "\n")


def parse_uncached(text: Any, max_bytes: int | None = DEFAULT_MAX_BYTES) -> LabelConfig:
    """Run the validation pipeline (§6.2 steps 1-5) and build the model.

    Raises :class:`LabelConfigError` with Label Studio's message for the first failure.
    ``max_bytes=None`` skips the size limit (configs already stored)."""
    root = parse_xml(text, max_bytes)
    check_structure(root)
    check_names(text, root)
    return build(text, root)


@functools.lru_cache(maxsize=32)
def parse(text: str, max_bytes: int | None = DEFAULT_MAX_BYTES) -> LabelConfig:
    """:func:`parse_uncached`, remembering the last few valid configs."""
    return parse_uncached(text, max_bytes)


def validation_issues(text: Any, max_bytes: int | None = DEFAULT_MAX_BYTES) -> list[ConfigIssue]:
    """[] when ``text`` is a valid config, else the (single) issue that refuses it."""
    try:
        parse(text, max_bytes) if isinstance(text, str) else parse_uncached(text, max_bytes)
    except LabelConfigError as exc:
        return [exc.issue]
    return []


def validation_errors(text: Any, max_bytes: int | None = DEFAULT_MAX_BYTES) -> list[str]:
    """[] when ``text`` is a valid config, else Label Studio's list of messages."""
    return [issue.message for issue in validation_issues(text, max_bytes)]
