"""A cheap bound on JSON nesting, checked on the raw bytes before (and while) a parser sees them.

Deeply nested JSON is a denial of service: ``json.loads`` ends in a RecursionError (a 500),
and the incremental ``ijson`` parser's memory grows with the square of the depth (a 2 KB zip
of ``[[[…]]]`` took 23.5 GB). :class:`DepthScanner` counts bracket depth over the bytes, chunk
by chunk, skipping strings (and their escapes), and refuses a document nested deeper than the
limit (``LABELGRAPH_MAX_JSON_DEPTH``) before any of it is parsed.

It runs at C speed on ordinary data: escaped backslashes and quotes are removed with
``bytes.replace``, every byte but quotes and brackets dropped with ``bytes.translate``, strings
cut out with ``bytes.split``, then nested ``[]`` pairs removed a level at a time until a bound
on the depth decides; only a chunk whose depth comes near the limit is counted bracket by
bracket (still C iterators). Work is linear in the input, memory one chunk.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from itertools import accumulate, count
from typing import IO

from server.errors import DomainError

DEFAULT_MAX_JSON_DEPTH = 100
SCAN_CHUNK = 1024 * 1024
_BRACKETS = bytes(range(256)).replace(b"{", b"[").replace(b"}", b"]")
_NOT_MARKS = bytes(b for b in range(256) if b not in b'"[]{}')
_ROUND_WORK = 4  # pair-removal rounds may touch each bracket this many times, then count


def json_too_deep(limit: int) -> DomainError:
    message = f"JSON nesting is deeper than the limit of {limit} levels (LABELGRAPH_MAX_JSON_DEPTH)"
    return DomainError("invalid", message, {"errors": [message]})


class DepthScanner:
    """Feed a JSON document's bytes in order; :meth:`feed` raises ``invalid`` (see
    :func:`json_too_deep`) as soon as the nesting exceeds ``limit``. Exact on valid JSON;
    on malformed JSON it may count wrongly, which the parser then refuses anyway."""

    def __init__(self, limit: int = DEFAULT_MAX_JSON_DEPTH) -> None:
        self.limit = limit
        self.depth = 0
        self.in_string = False
        self._backslash = b""  # an odd backslash run cut at a chunk's end

    def feed(self, chunk: bytes) -> None:
        data = self._backslash + chunk if self._backslash else chunk
        kept = data.rstrip(b"\\")
        self._backslash = b"\\" if (len(data) - len(kept)) % 2 else b""
        if b"\\" in kept:
            # Escapes only occur in strings: drop escaped backslashes, then escaped quotes.
            kept = kept.replace(b"\\\\", b"").replace(b'\\"', b"")
        # Keep quotes and brackets only; an adjacent pair of quotes is an empty string or the
        # bracket-free gap between two strings, so dropping it changes nothing.
        marks = kept.translate(_BRACKETS, _NOT_MARKS).replace(b'""', b"")
        pieces = marks.split(b'"')
        outside = b"".join(pieces[1 if self.in_string else 0 :: 2])
        if len(pieces) % 2 == 0:
            self.in_string = not self.in_string
        self._count(outside)

    def _count(self, brackets: bytes) -> None:
        if not brackets:
            return
        start = self.depth
        net = brackets.count(b"[") * 2 - len(brackets)
        reduced, rounds, work = brackets, 0, 0
        while True:
            # Removing the innermost pairs ``rounds`` times bounds the depth reached by
            # start + rounds + the openers left; ordinary data is decided here.
            if start + rounds + reduced.count(b"[") <= self.limit:
                self.depth = max(start + net, 0)
                return
            work += len(reduced)
            shorter = reduced.replace(b"[]", b"")
            if len(shorter) == len(reduced) or work > _ROUND_WORK * len(brackets):
                break
            reduced, rounds = shorter, rounds + 1
        deepest = start + max(_prefix_depths(brackets + b"]"))
        if deepest > self.limit:
            raise json_too_deep(self.limit)
        self.depth = max(start + net, 0)


def _prefix_depths(brackets: bytes) -> Iterable[int]:
    """The depth (relative to the start) just before each closing bracket, which is where
    every maximum is; C-level iterators throughout."""
    return map(operator.sub, accumulate(map(len, brackets.split(b"]"))), count())


class DepthCheckedReader:
    """A binary file whose bytes pass through a :class:`DepthScanner` as they are read, so an
    incremental parser reading from it never sees a chunk nested deeper than the limit."""

    def __init__(self, handle: IO[bytes], limit: int) -> None:
        self.handle = handle
        self.scanner = DepthScanner(limit)

    def read(self, size: int = -1) -> bytes:
        chunk = self.handle.read(size)
        self.scanner.feed(chunk)
        return chunk


def check_json_depth(data: bytes | str, limit: int = DEFAULT_MAX_JSON_DEPTH) -> None:
    """Refuse a JSON document (whole, in memory) nested deeper than ``limit``. One of at most
    a chunk with no more ``[`` and ``{`` than the limit is accepted on their count alone."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) <= SCAN_CHUNK and raw.count(b"[") + raw.count(b"{") <= limit:
        return  # no deeper than its openers: a request body's usual case, two C counts
    scanner = DepthScanner(limit)
    for start in range(0, len(raw), SCAN_CHUNK):
        scanner.feed(raw[start : start + SCAN_CHUNK])


def check_json_file(handle: IO[bytes], limit: int = DEFAULT_MAX_JSON_DEPTH) -> None:
    """Refuse a JSON file nested deeper than ``limit``, reading it once in chunks; the handle
    is put back where it was."""
    position = handle.tell()
    scanner = DepthScanner(limit)
    while chunk := handle.read(SCAN_CHUNK):
        scanner.feed(chunk)
    handle.seek(position)


def check_value_depth(value: object, limit: int = DEFAULT_MAX_JSON_DEPTH) -> None:
    """Refuse a decoded JSON value (lists and dicts) nested deeper than ``limit``, as
    :func:`check_json_depth` refuses its text: for values that never were bytes here, such as
    GraphQL literals written inline in a document. Iterative: no recursion, whatever the
    depth."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[object]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise json_too_deep(limit)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
