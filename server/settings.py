"""Server settings: declared once as (name, default, help), read from flags and env vars.

Every setting has an environment variable ``LABELGRAPH_<NAME>``; command-line flags override
the environment. ``tests/test_docs.py`` fails when the README does not list a setting.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "LABELGRAPH_"
SAMPLING_MODES = ("sequential", "uniform", "prediction-score-min", "prediction-score-max")
MiB = 1024 * 1024
ML_TIMEOUTS = (
    "ml_connect_timeout",
    "ml_health_timeout",
    "ml_setup_timeout",
    "ml_predict_timeout",
    "ml_train_timeout",
)
GRAPHQL_LIMITS = (
    "graphql_max_document_size",
    "graphql_max_tokens",
    "graphql_max_aliases",
    "graphql_max_depth",
    "graphql_max_page_size",
    "graphql_max_nodes",
    "graphql_max_response_size",
)
IMPORT_LIMITS = (
    "max_upload_files",
    "max_import_tasks",
    "max_archive_members",
    "max_archive_size",
    "max_import_unpacked_size",
    "max_json_depth",
    "url_import_timeout",
    "url_import_max_size",
    "import_staging_ttl",
)


def _setting(
    default: Any, help: str, *, cast: Callable[[str], Any] = str, secret: bool = False
) -> Any:
    return field(default=default, repr=not secret, metadata={"help": help, "cast": cast})


def boolean(raw: str) -> bool:
    """A boolean setting: 1/true/yes/on or 0/false/no/off (any case)."""
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {raw!r}")


@dataclass(frozen=True)
class Settings:
    project_dir: str = _setting(
        "my_project", "Project directory: holds the SQLite database and upload/"
    )
    project: str = _setting(
        "",
        "Name of the project a single-project server opens in its database (created if "
        "missing); empty = the database's own project (a new database's project takes the "
        "project directory's name)",
    )
    host: str = _setting("127.0.0.1", "Address the HTTP server binds to")
    port: int = _setting(8080, "Port the HTTP server listens on (1-65535)", cast=int)
    database_url: str = _setting(
        "",
        "Database URL (sqlite:///path.db or postgresql://user:pass@host/db); "
        "empty = <project_dir>/labelgraph.db",
    )
    sampling: str = _setting(
        "sequential",
        "Next-task sampling for new projects: " + ", ".join(SAMPLING_MODES),
    )
    log_level: str = _setting(
        "INFO",
        "Log level (DEBUG, INFO, WARNING, ERROR); at INFO and below an access line per request"
        " on stdout, written in batches (server/access_log.py)",
    )
    max_body_size: int = _setting(
        200 * MiB, "Largest accepted request body in bytes (413 above it)", cast=int
    )
    max_header_size: int = _setting(
        64 * 1024,
        "Largest request line plus headers in bytes (431 and the connection closed above it)",
        cast=int,
    )
    max_header_count: int = _setting(
        100, "Most request headers accepted (431 and the connection closed above it)", cast=int
    )
    body_timeout: float = _setting(
        30.0,
        "Seconds a request body may stall (no data arriving) before the answer is 408 and the "
        "connection is closed",
        cast=float,
    )
    cors_origins: str = _setting(
        "",
        "Comma-separated origins (scheme://host[:port]) of other web sites allowed to send "
        "POST/PUT/PATCH/DELETE requests (with credentials); empty = none",
    )
    allowed_hosts: str = _setting(
        "",
        "Comma-separated extra host names (name or name:port; * = any) accepted in the Host "
        "header; on a loopback address localhost, 127.0.0.1 and [::1] are always accepted; "
        "empty on another address = no check",
    )
    max_page_size: int = _setting(
        100000, "Largest page_size (REST) or first (GraphQL) of a task listing", cast=int
    )
    graphql_max_document_size: int = _setting(
        256 * 1024,
        "Longest GraphQL document in characters (DOCUMENT_TOO_LARGE above it; pass large "
        "values as variables)",
        cast=int,
    )
    graphql_max_tokens: int = _setting(
        5000, "Most tokens in a GraphQL document (DOCUMENT_TOO_LARGE above it)", cast=int
    )
    graphql_max_aliases: int = _setting(
        50, "Most aliased fields in a GraphQL document (QUERY_TOO_COMPLEX above it)", cast=int
    )
    graphql_max_depth: int = _setting(
        20, "Deepest nesting of fields in a GraphQL query (QUERY_TOO_COMPLEX above it)", cast=int
    )
    graphql_max_page_size: int = _setting(
        1000,
        "Largest first/last/pageSize a GraphQL query may ask (QUERY_TOO_COMPLEX above it; "
        "the REST routes keep LABELGRAPH_MAX_PAGE_SIZE)",
        cast=int,
    )
    graphql_max_nodes: int = _setting(
        100_000,
        "Most values a GraphQL answer may hold, estimated before execution from page sizes, "
        "lists and aliases (QUERY_TOO_COMPLEX above it)",
        cast=int,
    )
    graphql_max_response_size: int = _setting(
        64 * MiB,
        "Largest /graphql answer in bytes (RESPONSE_TOO_LARGE error instead of the answer)",
        cast=int,
    )
    db_pool_size: int = _setting(
        16,
        "Database connections kept open per server process (PostgreSQL keeps an eighth for reads)",
        cast=int,
    )
    write_wait: float = _setting(
        60.0,
        "Seconds a write waits for its turn (SQLite writes one transaction at a time, e.g. "
        "behind a large import; on PostgreSQL, each lock it waits for) before it is refused: "
        "REST 503 with Retry-After, GraphQL DATABASE_BUSY",
        cast=float,
    )
    db_pool_wait: float = _setting(
        30.0,
        "Seconds a request waits for one of the pooled database connections (all held by "
        "other requests, long exports say) before it is refused: REST 503 with Retry-After, "
        "GraphQL DATABASE_BUSY",
        cast=float,
    )
    db_prepared_statements: int = _setting(
        256,
        "PostgreSQL: statements each connection prepares (PREPARE/EXECUTE) once run twice, "
        "least recently used dropped beyond it; 0: none",
        cast=int,
    )
    thread_switch_interval: float = _setting(
        0.0,
        "Seconds a thread may hold the interpreter lock while others wait for it "
        "(sys.setswitchinterval; 0 = Python's own, 0.005)",
        cast=float,
    )
    max_label_config_size: int = _setting(
        MiB, "Largest accepted labeling config in bytes (400 above it)", cast=int
    )
    export_ttl: int = _setting(
        3600, "Seconds an export file stays downloadable from /data/export/", cast=int
    )
    export_fetch_remote: bool = _setting(
        False,
        "Fetch remote (http/https) images and audio into COCO/VOC/YOLO/ASR_MANIFEST exports",
        cast=boolean,
    )
    export_escape_formulas: bool = _setting(
        True,
        "Prefix CSV/TSV export cells that start with =, +, -, @, tab or CR with ' so "
        "spreadsheets do not run them as formulas (false = Label Studio's exact output)",
        cast=boolean,
    )
    export_fetch_timeout: float = _setting(
        10.0, "Timeout in seconds for each remote fetch during an export", cast=float
    )
    export_processes: int = _setting(
        2,
        "Worker processes that read and format a large JSON/JSON_MIN/CSV/TSV/COCO/YOLO export in "
        "parallel (0 or 1 = in the server process)",
        cast=int,
    )
    export_parallel_min: int = _setting(
        50_000,
        "Fewest tasks for which a JSON/JSON_MIN/CSV/TSV/COCO/YOLO export uses the worker processes",
        cast=int,
    )
    max_upload_files: int = _setting(
        100, "Largest number of files in one upload request (400 above it)", cast=int
    )
    max_import_tasks: int = _setting(
        1_000_000, "Largest number of tasks one import may create (413 above it)", cast=int
    )
    max_archive_members: int = _setting(
        10_000,
        "Largest number of entries (files and directories) in an uploaded .zip archive "
        "(413 above it)",
        cast=int,
    )
    max_archive_size: int = _setting(
        1024 * MiB, "Largest unpacked size in bytes of an uploaded .zip archive (413)", cast=int
    )
    max_import_unpacked_size: int = _setting(
        1024 * MiB,
        "Largest unpacked size in bytes of all .zip archives of one import (one request) "
        "together (413)",
        cast=int,
    )
    max_json_depth: int = _setting(
        100,
        "Deepest nesting of arrays and objects accepted in any JSON input: request bodies, "
        "GraphQL variables, uploaded and downloaded files (400 above it)",
        cast=int,
    )
    url_import_timeout: float = _setting(
        30.0, "Seconds a URL import may take to connect and download", cast=float
    )
    url_import_max_size: int = _setting(
        200 * MiB, "Largest file in bytes a URL import downloads (413 above it)", cast=int
    )
    url_import_allow_private: bool = _setting(
        False,
        "Let URL imports (and export image fetches) reach loopback, private, link-local and "
        "other non-public addresses",
        cast=boolean,
    )
    import_staging_ttl: int = _setting(
        3600, "Seconds a staged import (POST /api/project/import/prepare) is kept", cast=int
    )

    ml_allow_private: bool = _setting(
        False,
        "Let ML backends added through the API reach loopback, private, link-local and other "
        "non-public addresses (backends given with --ml-backends always may)",
        cast=boolean,
    )
    ml_connect_timeout: float = _setting(
        1.0, "Seconds to wait for a connection to an ML backend", cast=float
    )
    ml_health_timeout: float = _setting(
        2.0,
        "Seconds to wait for an ML backend's /health, /is_training, /job_status, /delete answer",
        cast=float,
    )
    ml_setup_timeout: float = _setting(
        10.0, "Seconds to wait for an ML backend's /setup answer", cast=float
    )
    ml_predict_timeout: float = _setting(
        10.0, "Seconds to wait for an ML backend's /predict answer", cast=float
    )
    ml_train_timeout: float = _setting(
        120.0, "Seconds to wait for an ML backend's /train answer", cast=float
    )
    ml_retry_after: float = _setting(
        5.0,
        "Seconds live predictions skip an ML backend that did not answer (down or timed out)",
        cast=float,
    )
    ml_live_concurrency: int = _setting(
        8,
        "Live prediction rounds waiting on ML backends at once per process; "
        "more are answered with the stored predictions",
        cast=int,
    )
    ml_batch_size: int = _setting(
        8, "Tasks per /predict call in prediction jobs (backends that accept several)", cast=int
    )
    ml_job_concurrency: int = _setting(
        4, "/predict calls in flight at once in one prediction job", cast=int
    )

    root_dir: str = _setting(
        "",
        "Root directory of start-multi-session mode: the database, the session key and one "
        "directory per project; empty = single-project mode (start)",
    )
    session_max_age: int = _setting(
        30 * 24 * 3600,
        "Seconds a multi-session browser session (cookie) lasts; 0 = until the browser closes",
        cast=int,
    )
    storage_timeout: float = _setting(
        10.0,
        "Seconds to wait for each call to an S3, GCS, Azure or Redis storage (connect and answer)",
        cast=float,
    )
    storage_sync_interval: float = _setting(
        30.0,
        "Seconds between background syncs of S3/GCS/Azure/Redis source storages (and retries of "
        "failed target writes)",
        cast=float,
    )
    file_store: str = _setting(
        "",
        "Where uploads and export files are kept for every server process: empty = the project "
        "directory only; s3://bucket/prefix = also in that S3-compatible bucket (other "
        "processes redirect /data/upload/ and /data/export/ to presigned URLs)",
    )
    file_store_endpoint: str = _setting(
        "",
        "Endpoint URL of the file store's S3 service (MinIO and other S3-compatible services); "
        "empty = AWS",
    )
    job_lease: int = _setting(
        30,
        "Seconds a process holds a background job (prediction, export) without a heartbeat; "
        "after that another process takes the job over",
        cast=int,
    )
    job_attempts: int = _setting(
        3,
        "Times a background job is started before a job whose process keeps dying is failed",
        cast=int,
    )
    job_concurrency: int = _setting(
        2, "Background jobs (predictions, exports) one server process runs at once", cast=int
    )
    job_poll_interval: float = _setting(
        1.0, "Seconds between looks for queued background jobs of other processes", cast=float
    )
    job_sweep_interval: float = _setting(
        60.0,
        "Seconds between sweeps of expired staged imports and export files",
        cast=float,
    )
    storage_sync_concurrency: int = _setting(
        4, "Projects whose storages sync at once per server process", cast=int
    )
    s3_endpoint: str = _setting(
        "",
        "Default endpoint URL of S3 storages (MinIO and other S3-compatible services); "
        "a storage's endpoint_url wins; empty = AWS",
    )
    storage_allow_private: bool = _setting(
        False,
        "Let the endpoint_url (S3, GCS, Azure) and Redis host of storages reach loopback, "
        "private, link-local and other non-public addresses (LABELGRAPH_S3_ENDPOINT always may)",
        cast=boolean,
    )
    s3_presign_ttl: int = _setting(
        3600,
        "Seconds a presigned URL served for s3:// (also gs:// and azure-blob://) task data "
        "stays valid",
        cast=int,
    )
    azure_blob_account_name: str = _setting(
        "",
        "Azure storage account of azure-blob storages that name no account_key (Label Studio's "
        "AZURE_BLOB_ACCOUNT_NAME)",
    )
    azure_blob_account_key: str = _setting(
        "",
        "Key of that account (Label Studio's AZURE_BLOB_ACCOUNT_KEY); used only at the account's "
        "own endpoint",
        secret=True,
    )
    live_broker: str = _setting(
        "auto",
        "How subscriptions hear of other processes' writes: auto (PostgreSQL LISTEN/NOTIFY "
        "on PostgreSQL; on SQLite, local sockets between the processes of one host sharing "
        "the file) or local (this process only)",
    )
    live_queue_size: int = _setting(
        256,
        "Events a subscription may fall behind before it gets a SUBSCRIBER_OVERFLOW error "
        "and is closed",
        cast=int,
    )
    live_max_connections: int = _setting(
        1000, "Open WebSocket connections (subscriptions) per server process", cast=int
    )
    live_max_subscriptions: int = _setting(
        10000, "Active subscriptions per server process (TOO_MANY_SUBSCRIPTIONS above it)", cast=int
    )
    live_max_subscriptions_per_connection: int = _setting(
        100, "Active subscriptions per WebSocket connection", cast=int
    )
    live_idle_timeout: float = _setting(
        300.0,
        "Seconds a WebSocket connection without subscriptions may stay silent before it is "
        "closed (code 4408)",
        cast=float,
    )
    live_keep_alive_interval: float = _setting(
        15.0,
        "Seconds between keep-alive messages to legacy graphql-ws clients (WebSocket pings keep "
        "graphql-transport-ws connections alive)",
        cast=float,
    )
    webhook_allow_private: bool = _setting(
        False,
        "Let webhooks reach loopback, private, link-local and other non-public addresses",
        cast=boolean,
    )
    webhook_timeout: float = _setting(
        10.0, "Seconds a webhook receiver has to connect and answer", cast=float
    )
    webhook_max_attempts: int = _setting(
        6, "Attempts to deliver one webhook event before it is given up", cast=int
    )
    webhook_retry_delay: float = _setting(
        2.0,
        "Seconds before the first retry of a failed webhook delivery; doubled after each "
        "further failure",
        cast=float,
    )
    webhook_max_retry_delay: float = _setting(
        600.0, "Longest pause in seconds between two attempts of a webhook delivery", cast=float
    )

    username: str = _setting(
        "ls",
        "User name of Label Studio's HTTP Basic auth (with a non-empty password; `start` only)",
    )
    password: str = _setting(
        "",
        "Password of Label Studio's HTTP Basic auth: non-empty = every route but /api/health and "
        "/static/ needs it (`start` only; never in multi-session mode, as Label Studio)",
        secret=True,
    )
    secret_key: str = _setting(
        "",
        "Key signing login cookies; empty = generated into session.key in the project (or root) "
        "directory; give all processes of one server the same",
        secret=True,
    )
    login_max_age: int = _setting(
        14 * 24 * 3600, "Seconds a login (its signed cookie) lasts", cast=int
    )
    proxy_headers: bool = _setting(
        False,
        "Trust X-Forwarded-Proto and X-Forwarded-For (set only behind a proxy that sets them): "
        "Secure cookies behind HTTPS and rate limits per real client",
        cast=boolean,
    )
    auth_rate_limit: int = _setting(
        10,
        "Failed logins or bad tokens per client address per minute before 429 answers",
        cast=int,
    )

    @property
    def multi_session(self) -> bool:
        """``start-multi-session``: one project per browser session, all under ``root_dir``."""
        return bool(self.root_dir)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        home = Path(self.root_dir) if self.multi_session else Path(self.project_dir)
        return f"sqlite:///{home / 'labelgraph.db'}"

    def for_project(self, project_name: str) -> Settings:
        """The settings whose directories (upload/, export/, import-tmp/) are a project's:
        in multi-session mode ``<root_dir>/<project name>``; otherwise these settings."""
        if not self.multi_session:
            return self
        return dataclasses.replace(
            self,
            project_dir=str(Path(self.root_dir) / project_name),
            database_url=self.resolved_database_url,
        )

    @property
    def upload_dir(self) -> Path:
        return Path(self.project_dir) / "upload"

    @property
    def export_dir(self) -> Path:
        return Path(self.project_dir) / "export"

    @property
    def import_tmp_dir(self) -> Path:
        """Where imports stage uploaded files until they are stored (or dropped)."""
        return Path(self.project_dir) / "import-tmp"

    @property
    def project_name(self) -> str:
        return Path(self.project_dir).resolve().name

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``LABELGRAPH_*`` variables, then explicit overrides (CLI flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _cast(f, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ValueError naming the first setting out of its range."""
        from server.settings_checks import check_settings

        check_settings(self)

    @classmethod
    def documented(cls) -> list[tuple[str, str, Any, str]]:
        """(env var, field name, default, help) for each setting, for docs and --help."""
        return [
            (ENV_PREFIX + f.name.upper(), f.name, f.default, f.metadata["help"])
            for f in dataclasses.fields(cls)
        ]


def _cast(f: dataclasses.Field[Any], raw: str) -> Any:
    cast = f.metadata["cast"]
    try:
        return cast(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{f.name.upper()}: expected {cast.__name__}") from exc
