"""Label Studio's brush masks: RLE decoding, and masks as NumPy ``.npy`` or greyscale PNG bytes
(export-formats.md §4.8).

The RLE is a bit stream (most significant bit first): 32 bits value count, 5 bits word size - 1,
four 4-bit run-length widths - 1, then runs of ``flag(1) k(2) len-1(r_k)`` followed by one
repeated word (flag 1) or ``len`` literal words (flag 0). Decoding is pure Python; NumPy and
Pillow are imported only to write ``.npy`` and PNG files (``pip install 'labelgraph[images]'``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from server.errors import DomainError

MAX_PIXELS = 100_000_000  # a mask larger than this is refused rather than decoded


class RLEError(ValueError):
    pass


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.total = len(data) * 8
        self.pos = 0

    def read(self, width: int) -> int:
        end = self.pos + width
        if end > self.total:
            raise RLEError("the RLE data ends early")
        first, last = self.pos >> 3, (end + 7) >> 3
        chunk = int.from_bytes(self.data[first:last], "big")
        self.pos = end
        return (chunk >> (last * 8 - end)) & ((1 << width) - 1)


def decode_rle(rle: Sequence[Any], expected: int | None = None) -> bytearray:
    """The decoded values (one byte each) of Label Studio's RLE ``rle`` (a list of bytes)."""
    try:
        data = bytes(rle)
    except (TypeError, ValueError):
        raise RLEError("rle must be a list of integers 0-255") from None
    bits = _Bits(data)
    count = bits.read(32)
    if expected is not None and count != expected:
        raise RLEError(f"the RLE holds {count} values, the mask needs {expected}")
    if count > MAX_PIXELS * 4:
        raise RLEError(f"the RLE holds {count} values, more than this server decodes")
    word = bits.read(5) + 1
    widths = [bits.read(4) + 1 for _ in range(4)]
    out = bytearray(count)
    i = 0
    while i < count:
        repeated = bits.read(1)
        end = min(count, i + 1 + bits.read(widths[bits.read(2)]))
        if repeated:
            value = bits.read(word) & 0xFF
            if value:
                out[i:end] = bytes((value,)) * (end - i)
        else:
            for index in range(i, end):
                out[index] = bits.read(word) & 0xFF
        i = end
    return out


def mask_from_result(result: dict[str, Any]) -> tuple[bytes, int, int]:
    """The alpha channel of a ``brushlabels`` result: (H*W bytes row-major, width, height)."""
    width, height = result.get("original_width"), result.get("original_height")
    if not _positive_int(width) or not _positive_int(height):
        raise RLEError("the result has no original_width/original_height")
    assert isinstance(width, int) and isinstance(height, int)
    if width * height > MAX_PIXELS:
        raise RLEError(f"the mask is {width}x{height}, larger than this server decodes")
    value = result.get("value")
    rle = value.get("rle") if isinstance(value, dict) else None
    if not isinstance(rle, list):
        raise RLEError("the result has no value.rle list")
    rgba = decode_rle(rle, width * height * 4)
    return bytes(rgba[3::4]), width, height


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _require(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise DomainError(
            "invalid",
            f"Brush exports need {module}, which this server lacks: "
            "pip install 'labelgraph[images]'",
        ) from None


def npy_bytes(mask: bytes, width: int, height: int) -> bytes:
    """The mask as a NumPy ``.npy`` file: dtype uint8, shape (height, width)."""
    numpy = _require("numpy")
    array = numpy.frombuffer(mask, dtype=numpy.uint8).reshape(height, width)
    buffer = io.BytesIO()
    numpy.save(buffer, array)
    return buffer.getvalue()


def png_bytes(mask: bytes, width: int, height: int) -> bytes:
    """The mask as an 8-bit greyscale PNG (width x height)."""
    _require("PIL")
    from PIL import Image

    buffer = io.BytesIO()
    Image.frombytes("L", (width, height), mask).save(buffer, format="PNG")
    return buffer.getvalue()
