"""The JSON depth pre-scan: exact on valid JSON whatever the chunking, linear, refusing early."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pytest

from server.errors import DomainError
from server.json_depth import DepthScanner, check_json_depth, check_json_file, check_value_depth


def reference_depth(text: bytes) -> int:
    """Byte-by-byte bracket depth outside strings: the slow, obvious version."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in text:
        char = chr(byte)
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(6 if depth < 30 else 3)
    if kind == 0:
        return rng.choice(["", "a", '"', "\\", '\\"', "[", "]{", '"[x]"', "\\\\[", "é[", "}"]) * (
            rng.randrange(4)
        )
    if kind == 1:
        return rng.choice([0, -1.5, True, None, 1e300])
    if kind == 2:
        return "".join(rng.choice('ab"\\[]{} ') for _ in range(rng.randrange(12)))
    if kind in (3, 4):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ("k", 'k"[', "k\\", "{k}")
    return {f"{rng.choice(keys)}{i}": random_value(rng, depth + 1) for i in range(rng.randrange(4))}


def scan_in_chunks(text: bytes, sizes: list[int], limit: int) -> int:
    scanner = DepthScanner(limit)
    position = 0
    for size in sizes:
        scanner.feed(text[position : position + size])
        position += size
    scanner.feed(text[position:])
    return scanner.depth


@pytest.mark.parametrize("seed", range(40))
def test_scan_matches_the_reference_whatever_the_chunking(seed: int) -> None:
    rng = random.Random(seed)
    text = json.dumps(random_value(rng, 0), ensure_ascii=rng.random() < 0.5).encode()
    text = b"[" * rng.randrange(60) + text  # an unclosed prefix: the depth still counts
    expected = reference_depth(text)
    sizes = [rng.randrange(1, 9) for _ in range(len(text) // 3)]
    for limit in (expected, expected + 1, max(expected - 1, 0)):
        if expected > limit:
            with pytest.raises(DomainError) as caught:
                scan_in_chunks(text, sizes, limit)
            assert caught.value.code == "invalid"
            assert f"limit of {limit} levels" in caught.value.message
            assert "LABELGRAPH_MAX_JSON_DEPTH" in caught.value.message
        else:
            scan_in_chunks(text, sizes, limit)
            check_json_depth(text, limit)


def test_brackets_in_strings_and_escapes_do_not_count() -> None:
    check_json_depth(json.dumps(["[" * 500, "\\" * 7 + '"' + "{" * 300]).encode(), 1)
    check_json_depth(b'{"a\\\\": "' + b"[" * 200 + b'"}', 1)
    with pytest.raises(DomainError):
        check_json_depth(b'{"a\\\\": ' + b"[" * 200 + b"]" * 200 + b"}", 100)


def test_deep_nesting_is_refused_at_the_chunk_that_crosses_the_limit() -> None:
    """A million levels are refused after the first chunk: nothing later is read."""

    class Reads(io.BytesIO):
        reads = 0

        def read(self, size: int | None = -1) -> bytes:
            self.reads += 1
            return super().read(size)

    handle = Reads(b"[" * 4_000_000 + b"]" * 4_000_000)
    with pytest.raises(DomainError):
        check_json_file(handle, 100)
    assert handle.reads == 1


def test_depth_at_the_limit_passes_and_the_file_position_is_kept() -> None:
    handle = io.BytesIO(b"  " + b"[" * 100 + b"]" * 100)
    handle.seek(2)
    check_json_file(handle, 100)
    assert handle.tell() == 2
    with pytest.raises(DomainError):
        check_json_depth("[" * 101 + "]" * 101, 100)


@pytest.mark.parametrize(
    "text",
    ["[]", "{}", '{"a": [1, {"b": []}]}', "[" * 100 + "]" * 100, "[" * 101 + "]" * 101],
)
def test_value_depth_agrees_with_the_byte_scanner(text: str) -> None:
    def refused(check: Any) -> bool:
        try:
            check()
        except DomainError:
            return True
        return False

    value = json.loads(text)
    assert refused(lambda: check_value_depth(value, 100)) == refused(
        lambda: check_json_depth(text, 100)
    )


def test_value_depth_has_no_recursion_limit() -> None:
    value: Any = []
    for _ in range(50_000):
        value = [value]
    with pytest.raises(DomainError):
        check_value_depth(value, 100)


def test_a_small_document_with_few_openers_passes_without_the_scanner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nesting cannot exceed the number of ``[``/``{``: a body with no more openers than the
    limit is not scanned; one with more (brackets in strings count) is scanned exactly."""
    scanned: list[bytes] = []
    feed = DepthScanner.feed

    def counting(self: DepthScanner, chunk: bytes) -> None:
        scanned.append(chunk)
        feed(self, chunk)

    monkeypatch.setattr(DepthScanner, "feed", counting)
    check_json_depth(b'{"a": [[1]]}', 3)
    check_json_depth('[{"x": "\u00e9"}]', 2)
    assert scanned == []
    check_json_depth(b'["[[[[", {"b": "{{"}]', 3)  # six openers in strings: scanned, depth 2
    assert len(scanned) == 1
    with pytest.raises(DomainError, match="deeper than the limit of 3"):
        check_json_depth(b"[[[[1]]]]", 3)
