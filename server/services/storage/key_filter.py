"""The ``regex`` of an S3 source (rest-api.md §9.3): which object keys become tasks.

Label Studio matched it with Python's ``re.match`` (from the key's start). Patterns come from
clients, and a backtracking engine lets one like ``(a+)+$`` stall a sync on a long key, so
they run on RE2 (``google-re2``, linear time in the key's length) with the same ``match``
semantics. What RE2 cannot compile (backreferences, lookaround) is refused when the storage
is saved.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

MISSING_RE2 = "S3 storages need google-re2: pip install 'labelgraph[storage]'"


class KeyFilter(Protocol):
    def match(self, text: str) -> Any: ...


def compile_key_regex(pattern: str) -> KeyFilter:
    """The compiled pattern; ValueError with a message for the form when RE2 refuses it."""
    try:
        import re2
    except ImportError:  # pragma: no cover - the [storage] extra is installed in tests
        raise ValueError(MISSING_RE2) from None
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        message = f"{pattern} is not a valid regular expression"  # Label Studio's words
        try:
            re.compile(pattern)
        except re.error:
            raise ValueError(message) from None
        reason = exc.args[0] if exc.args else b""
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(
            f"{message} here: {reason} (backreferences and lookaround are not supported)"
        ) from None
