"""Logging set-up for the ``labelgraph`` command, with secrets kept out of every log line.

Storage credentials (``aws_*``, Redis ``password``, GCS ``google_application_credentials``,
Azure ``account_key``) live in ``storage.params``: at DEBUG the SQL log (peewee's
``(sql, params)`` records) would print them, and botocore's DEBUG output shows request headers
with session tokens. :class:`SecretFilter`, on every handler :func:`configure_logging`
installs, masks secret values in SQL parameters (JSON objects), ``key: value`` / ``key=value``
pairs, AWS, Google and Azure signature headers and query parameters, Azure connection-string
keys and URL passwords; botocore, urllib3, google-auth and azure-core never log below INFO
(Azure's HTTP logging policy below WARNING), so their request dumps are not written at all.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import IO, Any

MASK = "********"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SECRET_KEYS = frozenset(
    {
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "password",
        "google_application_credentials",
        "account_key",
        "private_key",
    }
)
_KEYS = "|".join(sorted(SECRET_KEYS))
_PATTERNS = (
    # "password": "…" (JSON), 'password': '…' (Python reprs), password=… (forms, kwargs)
    re.compile(rf"""(["']?(?:{_KEYS})["']?\s*:\s*)(["'])(?:\\.|(?!\2).)*\2""", re.IGNORECASE),
    re.compile(rf"""(\b(?:{_KEYS})=)[^\s&'",)]+""", re.IGNORECASE),
    # AWS request headers and presigned-URL parameters
    re.compile(
        r"""((?:X-Amz-Security-Token|Authorization)["']?\s*:\s*b?)(["'])(?:\\.|(?!\2).)*\2""",
        re.IGNORECASE,
    ),
    re.compile(
        r"""(\b(?:X-Amz-Security-Token|X-Amz-Credential|X-Amz-Signature|X-Goog-Credential|"""
        r"""X-Goog-Signature|sig|AccountKey)=)[^\s&;'"]+"""
    ),
    # scheme://user:password@host
    re.compile(r"""(\w+://[^\s:/@'"]*:)[^\s@/'"]+(?=@)"""),
    # users' password hashes, API tokens (lg_…) and their SHA-256 hashes (SQL parameters)
    re.compile(r"""(\$argon2(?:id|i|d)\$)[^\s'"]+"""),
    re.compile(r"""(\blg_)[A-Za-z0-9_-]{16,}"""),
    re.compile(r"""(['"])[0-9a-f]{64}(?=\1)"""),
)
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
QUIET_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3", "google", "azure")
# Logs each request's URL and headers at INFO.
AZURE_HTTP_LOGGER = "azure.core.pipeline.policies.http_logging_policy"


def _mask(match: re.Match[str]) -> str:
    if match.re.groups == 1 and match.group(1) in ("'", '"'):  # a quoted SHA-256 hex digest
        return f"{match.group(1)}{MASK}"
    quote = match.group(2) if match.re.groups >= 2 else ""
    return f"{match.group(1)}{quote}{MASK}{quote}"


def redact_text(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(_mask, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str) and (
        _HEX_DIGEST.fullmatch(value) or value.startswith(("$argon2", "lg_"))
    ):
        return MASK  # a token hash, password hash or token as an SQL parameter
    if isinstance(value, dict):
        return {k: (MASK if k in SECRET_KEYS and v else _redact_value(v)) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("{") and any(k in value for k in SECRET_KEYS):
        try:
            parsed = json.loads(value)
        except ValueError:
            return redact_text(value)
        return json.dumps(_redact_value(parsed)) if isinstance(parsed, dict) else value
    return value


class SecretFilter(logging.Filter):
    """Masks secret values in a record's message (it never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        if _is_sql(msg):
            # peewee's (sql, params): masked in place, kept a tuple (query counters that
            # collect these records read ``msg[0]`` after other handlers saw them).
            record.msg = (msg[0], [_redact_param(p) for p in msg[1]])
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        cleaned = redact_text(message)
        if cleaned != message or record.msg is not msg:
            record.msg, record.args = cleaned, None
        return True


class SQLParamsFilter(logging.Filter):
    """Masks secret SQL parameters of peewee's ``(sql, params)`` records in place, keeping the
    record's form (query counters read ``record.msg[0]``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        if _is_sql(msg):
            record.msg = (msg[0], [_redact_param(p) for p in msg[1]])
        return True


def _is_sql(msg: Any) -> bool:
    return isinstance(msg, tuple) and len(msg) == 2 and isinstance(msg[1], list | tuple)


def _redact_param(value: Any) -> Any:
    redacted = _redact_value(value)
    return redact_text(redacted) if isinstance(redacted, str) else redacted


_SQL_FILTER = SQLParamsFilter()


def configure_logging(level: str, stream: IO[str] | None = None) -> logging.Handler:
    """Log to ``stream`` (stderr) at ``level`` through a :class:`SecretFilter`; returns the
    handler (tests remove it). Without a stream, a second call reuses the first handler."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    existing = [h for h in root.handlers if getattr(h, "labelgraph_stderr", False)]
    if stream is None and existing:
        handler: logging.Handler = existing[0]
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(SecretFilter())
        handler.labelgraph_stderr = stream is None  # type: ignore[attr-defined]
        root.addHandler(handler)
    # On the SQL logger itself, so every handler (also ones added later) gets masked records.
    if _SQL_FILTER not in logging.getLogger("peewee").filters:
        logging.getLogger("peewee").addFilter(_SQL_FILTER)
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)
    azure_http = logging.getLogger(AZURE_HTTP_LOGGER)
    if azure_http.getEffectiveLevel() < logging.WARNING:
        azure_http.setLevel(logging.WARNING)
    return handler
