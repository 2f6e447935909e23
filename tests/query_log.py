"""Counting the queries a request makes, leaving out the storage runtime's background threads.

``playhouse.test_utils.count_queries`` listens to peewee's logger in every thread, so the
storage ticker's periodic scan (``labelgraph-storage-*`` threads) would be counted as if the
request under test had made it.
"""

from __future__ import annotations

import logging

from playhouse.test_utils import count_queries as _count_all_queries

# The storage runtime's threads, the job worker's (labelgraph-jobs, labelgraph-job-N), the
# users-exist watcher (server/auth_state.py) and the webhook sender.
BACKGROUND_THREAD_PREFIXES = (
    "labelgraph-storage",
    "labelgraph-job",
    "labelgraph-auth",
    "labelgraph-webhooks",
)


class _NotBackground(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.threadName or "").startswith(BACKGROUND_THREAD_PREFIXES)


class count_queries(_count_all_queries):  # type: ignore[misc]  # playhouse is untyped
    """Like playhouse's ``count_queries``, for the queries of requests only."""

    count: int  # the queries counted (playhouse's attribute, set by ``__exit__``)

    def __enter__(self) -> count_queries:
        super().__enter__()
        self._handler.addFilter(_NotBackground())
        return self
