"""Ranges of the settings: checked once, when :class:`~server.settings.Settings` are built."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.settings import GRAPHQL_LIMITS, IMPORT_LIMITS, ML_TIMEOUTS, SAMPLING_MODES

if TYPE_CHECKING:
    from server.settings import Settings

POSITIVE_INTEGERS = (
    "max_body_size",
    "max_page_size",
    "db_pool_size",
    "port",
    "export_ttl",
    "max_label_config_size",
    *GRAPHQL_LIMITS,
    "ml_live_concurrency",
    "ml_batch_size",
    "ml_job_concurrency",
    "storage_sync_concurrency",
    "job_lease",
    "job_attempts",
    "job_concurrency",
    "s3_presign_ttl",
    "max_header_size",
    "max_header_count",
    "login_max_age",
    "auth_rate_limit",
    "live_queue_size",
    "live_max_connections",
    "live_max_subscriptions",
    "live_max_subscriptions_per_connection",
    "webhook_max_attempts",
)
POSITIVE_SECONDS = (
    "export_fetch_timeout",
    *ML_TIMEOUTS,
    "storage_timeout",
    "storage_sync_interval",
    "job_poll_interval",
    "job_sweep_interval",
    "body_timeout",
    "write_wait",
    "db_pool_wait",
    "live_idle_timeout",
    "live_keep_alive_interval",
    "webhook_timeout",
    "webhook_retry_delay",
    "webhook_max_retry_delay",
)
NOT_NEGATIVE = ("ml_retry_after", "session_max_age")


def check_settings(settings: Settings) -> None:
    """Raise ValueError naming the first setting out of its range."""
    from server.cors import parse_origins
    from server.host_check import parse_allowed_hosts

    if settings.sampling not in SAMPLING_MODES:
        raise ValueError(
            f"sampling must be one of {', '.join(SAMPLING_MODES)}, not {settings.sampling!r}"
        )
    for name in POSITIVE_INTEGERS:
        if getattr(settings, name) < 1:
            raise ValueError(f"{name} must be a positive integer")
    for name in POSITIVE_SECONDS:
        if getattr(settings, name) <= 0:
            raise ValueError(f"{name} must be a positive number of seconds")
    for name in IMPORT_LIMITS:
        if getattr(settings, name) <= 0:
            raise ValueError(f"{name} must be positive")
    for name in NOT_NEGATIVE:
        if getattr(settings, name) < 0:
            raise ValueError(f"{name} must not be negative")
    if settings.live_broker not in ("auto", "local"):
        raise ValueError(f"live_broker must be auto or local, not {settings.live_broker!r}")
    if settings.port > 65535:
        raise ValueError(f"port must be 1-65535, not {settings.port}")
    if settings.secret_key and len(settings.secret_key) < 32:
        raise ValueError("secret_key must have at least 32 characters (or be empty)")
    parse_origins(settings.cors_origins)
    parse_allowed_hosts(settings.allowed_hosts)
    if settings.file_store and not settings.file_store.startswith("s3://"):
        raise ValueError(
            f"file_store must be empty or s3://bucket[/prefix], not {settings.file_store!r}"
        )
