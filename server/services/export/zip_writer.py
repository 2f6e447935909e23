"""A zip writer whose memory does not grow with the number of entries.

Python's ``zipfile`` keeps one ``ZipInfo`` per entry (~500 bytes) for the central directory it
writes on close: an export of a million small files (YOLO labels, one per image) held ~800 MB.
Here each entry's central-directory record is written, as bytes, to a spool file beside the
zip as soon as the entry is complete, and the spool is copied after the last entry on
:meth:`ZipWriter.close`. Libraries that stream zips (stream-zip, zipfly) keep those records in
a list too, hence this small module.

Entries are deflated (raw deflate, as ``zipfile``; by ISA-L, ~5x faster than zlib, at levels
1-3) at the writer's level, or stored at level 0
and when smaller than ``STORED_BELOW`` bytes.
Small entries given whole (:meth:`ZipWriter.write_bytes`) get their header with the final CRC
and sizes, without seeking. Streamed entries (:meth:`ZipWriter.open`) get a ZIP64 extra field
in their local header (like ``zipfile``'s ``force_zip64``) that is filled in by seeking back
when the entry closes; their data is compressed on one background thread while the caller
builds the next chunk (the compressors release the GIL), so formatting and deflate overlap on two
cores. ZIP64 end records are written when there are more than 65,535 entries or offsets pass
4 GiB. An entry can also be assembled from parts deflated elsewhere (:class:`PartWriter`, e.g.
in worker processes; :meth:`ZipWriter.write_parts`): each part is a run of deflate blocks that
starts from an empty window and ends byte-aligned (a sync flush), so parts concatenate into one
stream, and the CRC-32s combine (``crc32_combine``) without reading the content again.
Only names given with ``remember=True`` are kept (folders, copied media files) so that
callers can skip duplicates (:meth:`ZipWriter.contains`).
"""

from __future__ import annotations

import shutil
import struct
import time
import zlib
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

try:  # ISA-L's deflate: ~5x zlib's speed at levels 1-3 for the same ratio (see deflater)
    from isal import isal_zlib
except ImportError:  # pragma: no cover - isal is a dependency; a platform without wheels
    isal_zlib = None  # type: ignore[assignment]

BUFFER_SIZE = 1024 * 1024
# Entries given whole and smaller than this are stored: deflate saves at most a few dozen bytes
# on them (a YOLO label file: 158 -> 94 bytes, beside ~120 bytes of headers) for ~10 us of
# zlib setup each, 10 s of a million-image export (bench/export_workload.py --stored-below).
STORED_BELOW = 512
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sBBHHHHHIIIHHHHHII")
_END = struct.Struct("<4sHHHHIIH")
_END64 = struct.Struct("<4sQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<4sIQI")
_MAX32 = 0xFFFFFFFF
_MAX16 = 0xFFFF
_UTF8_FLAG = 0x800
_FILE_MODE = (0o100644 << 16) & _MAX32  # -rw-r--r--, a regular file
_DIR_MODE = ((0o40755 << 16) | 0x10) & _MAX32  # drwxr-xr-x plus the MS-DOS directory bit


def deflater(level: int) -> Any:
    """A raw-deflate compressor at ``level``: ISA-L's for levels 1-3 (measured on a JSON
    export: 490 MB/s at level 1 for the ratio zlib's level 1 reaches at 87 MB/s; a 1M-task
    JSON export deflates 850 MB), zlib's otherwise."""
    if isal_zlib is not None and 1 <= level <= 3:
        return isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
    return zlib.compressobj(level, zlib.DEFLATED, -15)


def deflate(content: bytes, level: int) -> bytes:
    """``content`` raw-deflated at ``level`` in one call, by the library :func:`deflater` uses."""
    if isal_zlib is not None and 1 <= level <= 3:
        return bytes(isal_zlib.compress(content, level, -15))
    return zlib.compress(content, level, -15)


@dataclass(frozen=True)
class Part:
    """A piece of an entry's content as the entry stores it (see the module doc), in the file
    ``path`` or in ``data``, with the CRC-32 and size of the content it holds."""

    crc: int
    size: int
    packed: int
    path: Path | None = None
    data: bytes = b""


class PartWriter:
    """Writes one :class:`Part` to ``path``: content deflated at ``level`` (a fresh window,
    ended by a sync flush; stored as it is at level 0). The first ``skip`` bytes written are
    left out."""

    def __init__(self, path: Path, level: int, skip: int = 0) -> None:
        self.path = path
        self.file: BinaryIO = path.open("wb", buffering=BUFFER_SIZE)
        self.deflate = deflater(level) if level else None
        self.skip = skip
        self.crc = 0
        self.size = 0
        self.packed = 0
        self.parts: list[bytes] = []
        self.buffered = 0

    def write(self, data: bytes) -> None:
        if self.skip:
            dropped = data[: self.skip]
            data = data[self.skip :]
            self.skip -= len(dropped)
        self.parts.append(data)
        self.buffered += len(data)
        if self.buffered >= BUFFER_SIZE:
            self._put(b"".join(self.parts), last=False)
            self.parts, self.buffered = [], 0

    def _put(self, chunk: bytes, last: bool) -> None:
        self.crc = zlib.crc32(chunk, self.crc)
        self.size += len(chunk)
        if self.deflate is not None:
            data = self.deflate.compress(chunk)
            if last:
                data += self.deflate.flush(zlib.Z_SYNC_FLUSH)
        else:
            data = chunk
        self.packed += len(data)
        self.file.write(data)

    def close(self) -> Part:
        self._put(b"".join(self.parts), last=True)
        self.parts, self.buffered = [], 0
        self.file.close()
        return Part(self.crc, self.size, self.packed, path=self.path)

    def abort(self) -> None:
        self.file.close()


def make_part(content: bytes, level: int) -> Part:
    """``content`` as a :class:`Part` held in memory (small pieces made by the caller)."""
    if not level:
        return Part(zlib.crc32(content), len(content), len(content), data=content)
    compressor = deflater(level)
    data = compressor.compress(content) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return Part(zlib.crc32(content), len(content), len(data), data=data)


def parts_supported() -> bool:
    """Whether :meth:`ZipWriter.write_parts` can combine CRCs here (it needs ISA-L)."""
    return isal_zlib is not None


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32 of A + B from A's, B's and B's length (ISA-L's; zlib has none in Python)."""
    if isal_zlib is None:  # pragma: no cover - isal is a dependency
        raise RuntimeError("crc32_combine needs isal")
    return int(isal_zlib.crc32_combine(crc1, crc2, length2))


# A final, empty deflate block (fixed Huffman codes): ends a stream of sync-flushed parts.
_FINAL_BLOCK = b"\x03\x00"


def dos_time(moment: float | None = None) -> tuple[int, int]:
    """(time, date) in MS-DOS form, as zip headers hold them (local time)."""
    year, month, day, hour, minute, second = time.localtime(moment)[:6]
    year = max(year, 1980)
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


class ZipWriter:
    """Writes ``path``; the central directory is spooled meanwhile to ``spool`` (default
    ``<path>.cd``)."""

    def __init__(self, path: Path, level: int = 1, spool: Path | None = None) -> None:
        self.level = level
        self.path = path
        self.file: BinaryIO = path.open("wb", buffering=BUFFER_SIZE)
        self.directory_path = spool or path.with_name(path.name + ".cd")
        self.directory: BinaryIO = self.directory_path.open("wb", buffering=BUFFER_SIZE)
        self.directory_size = 0
        self.count = 0
        self.offset = 0  # where the next local header goes
        self.time, self.date = dos_time()
        self.names: set[str] = set()
        self.open_entry: EntryStream | None = None
        self.closed = False

    # --- entries ---------------------------------------------------------------------------

    def contains(self, name: str) -> bool:
        """Whether an entry named ``name`` was written with ``remember=True``."""
        return name in self.names

    def write_bytes(self, name: str, content: bytes, *, remember: bool = False) -> None:
        """One entry with the whole of its content."""
        self._check_idle()
        local, entry = entry_bytes(name, content, self.level, self.time, self.date)
        self.file.write(local)
        self._record(*entry, self.offset, _FILE_MODE)
        self.offset += len(local)
        if remember:
            self.names.add(name)

    def append_entries(self, local: Path, directory: Path, count: int) -> None:
        """Entries made elsewhere (:func:`entry_bytes`, e.g. by worker processes): their local
        headers and data, copied from ``local``, and their central-directory records, from
        ``directory``, made (:func:`central_record`) with the offsets they now have."""
        self._check_idle()
        with local.open("rb") as handle:
            shutil.copyfileobj(handle, self.file, BUFFER_SIZE)
            self.offset += handle.tell()
        with directory.open("rb") as handle:
            shutil.copyfileobj(handle, self.directory, BUFFER_SIZE)
            self.directory_size += handle.tell()
        self.count += count

    def mkdir(self, name: str) -> None:
        """A folder entry ``name/`` (once)."""
        folder = name.rstrip("/") + "/"
        if folder in self.names:
            return
        self._check_idle()
        encoded, flags = _name(folder)
        header = _LOCAL.pack(
            b"PK\x03\x04", 20, flags, 0, self.time, self.date, 0, 0, 0, len(encoded), 0
        )
        self.file.write(header + encoded)
        self._record(encoded, flags, 0, 0, 0, 0, self.offset, _DIR_MODE)
        self.offset += len(header) + len(encoded)
        self.names.add(folder)

    def open(self, name: str, *, remember: bool = False) -> EntryStream:
        """A streamed entry: write its content, then close it (one open entry at a time)."""
        self._check_idle()
        encoded, flags = _name(name)
        method = 8 if self.level else 0
        extra = struct.pack("<HHQQ", 1, 16, 0, 0)
        header = _LOCAL.pack(
            b"PK\x03\x04",
            45,
            flags,
            method,
            self.time,
            self.date,
            0,
            _MAX32,
            _MAX32,
            len(encoded),
            len(extra),
        )
        self.file.write(header + encoded + extra)
        entry = EntryStream(self, encoded, flags, method, self.offset)
        self.offset += len(header) + len(encoded) + len(extra)
        self.open_entry = entry
        if remember:
            self.names.add(name)
        return entry

    def write_parts(self, name: str, parts: Iterable[Part]) -> None:
        """An entry whose content is ``parts`` in order (see the module doc); parts held in
        files are copied from them. Deflated unless the writer's level is 0 (then the parts
        must be stored ones)."""
        entry = self.open(name)
        entry.closed = True  # its own buffering is not used
        entry.worker.shutdown()
        crc = size = packed = 0
        file = self.file
        for part in parts:
            if part.path is not None:
                with part.path.open("rb") as handle:
                    shutil.copyfileobj(handle, file, BUFFER_SIZE)
            else:
                file.write(part.data)
            crc = crc32_combine(crc, part.crc, part.size) if size else part.crc
            size += part.size
            packed += part.packed
        if entry.method:
            file.write(_FINAL_BLOCK)
            packed += len(_FINAL_BLOCK)
        entry.crc, entry.size, entry.packed = crc, size, packed
        entry.finish()

    def copy_file(self, name: str, source: Path, *, remember: bool = False) -> None:
        """An entry with the content of the file ``source``."""
        with source.open("rb") as handle, self.open(name, remember=remember) as target:
            while chunk := handle.read(BUFFER_SIZE):
                target.write(chunk)

    # --- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Finish the zip: copy the central directory after the entries, then the end records."""
        if self.closed:
            return
        if self.open_entry is not None:
            self.open_entry.close()
        self.directory.close()
        start = self.offset
        with self.directory_path.open("rb") as spooled:
            shutil.copyfileobj(spooled, self.file, BUFFER_SIZE)
        self.directory_path.unlink(missing_ok=True)
        size = self.directory_size
        end = start + size
        if self.count > _MAX16 or start >= _MAX32 or size >= _MAX32:
            self.file.write(
                _END64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, self.count, self.count, size, start)
            )
            self.file.write(_LOCATOR64.pack(b"PK\x06\x07", 0, end, 1))
        self.file.write(
            _END.pack(
                b"PK\x05\x06",
                0,
                0,
                min(self.count, _MAX16),
                min(self.count, _MAX16),
                min(size, _MAX32),
                min(start, _MAX32),
                0,
            )
        )
        self.file.close()
        self.closed = True

    def abort(self) -> None:
        """After a failure: close the files without finishing the zip (the caller deletes it)."""
        if self.open_entry is not None:
            self.open_entry.abort()
            self.open_entry = None
        self.directory.close()
        self.directory_path.unlink(missing_ok=True)
        self.file.close()
        self.closed = True

    def __enter__(self) -> ZipWriter:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if error is None:
            self.close()
        else:
            self.abort()

    # --- internals -------------------------------------------------------------------------

    def _check_idle(self) -> None:
        if self.open_entry is not None:
            raise ValueError("zip: an entry is still open")
        if self.closed:
            raise ValueError("zip: the writer is closed")

    def _record(
        self,
        encoded: bytes,
        flags: int,
        method: int,
        crc: int,
        packed: int,
        size: int,
        offset: int,
        mode: int,
    ) -> None:
        """The entry's central-directory record, into the spool."""
        record = central_record(
            encoded, flags, method, crc, packed, size, offset, mode, self.time, self.date
        )
        self.directory.write(record)
        self.directory_size += len(record)
        self.count += 1


def entry_bytes(
    name: str, content: bytes, level: int, time: int, date: int
) -> tuple[bytes, tuple[bytes, int, int, int, int, int]]:
    """A whole entry's local header and data, as :meth:`ZipWriter.write_bytes` writes it, and
    what its central-directory record needs but the offset: (encoded name, flags, method,
    CRC, packed size, size)."""
    crc = zlib.crc32(content)
    if level and len(content) >= STORED_BELOW:
        # one call: a compressobj per entry costs ~8x more (its setup dominates)
        data, method = deflate(content, level), 8
    else:
        data, method = content, 0
    encoded, flags = _name(name)
    size, packed = len(content), len(data)
    extra = b""
    if size >= _MAX32 or packed >= _MAX32:
        extra = struct.pack("<HHQQ", 1, 16, size, packed)
        header = _LOCAL.pack(
            b"PK\x03\x04",
            45,
            flags,
            method,
            time,
            date,
            crc,
            _MAX32,
            _MAX32,
            len(encoded),
            len(extra),
        )
    else:
        header = _LOCAL.pack(
            b"PK\x03\x04", 20, flags, method, time, date, crc, packed, size, len(encoded), 0
        )
    return header + encoded + extra + data, (encoded, flags, method, crc, packed, size)


def central_record(
    encoded: bytes,
    flags: int,
    method: int,
    crc: int,
    packed: int,
    size: int,
    offset: int,
    mode: int,
    time: int,
    date: int,
) -> bytes:
    """An entry's central-directory record (ZIP64 fields where the numbers need them)."""
    zip64 = []
    if size >= _MAX32:
        zip64.append(size)
    if packed >= _MAX32:
        zip64.append(packed)
    if offset >= _MAX32:
        zip64.append(offset)
    extra = struct.pack(f"<HH{len(zip64)}Q", 1, 8 * len(zip64), *zip64) if zip64 else b""
    version = 45 if zip64 else 20
    record = _CENTRAL.pack(
        b"PK\x01\x02",
        version,
        3,
        version,
        flags,
        method,
        time,
        date,
        crc,
        min(packed, _MAX32),
        min(size, _MAX32),
        len(encoded),
        len(extra),
        0,
        0,
        0,
        mode,
        min(offset, _MAX32),
    )
    return record + encoded + extra


FILE_MODE = _FILE_MODE


class EntryStream:
    """A streamed entry's content: buffered, deflated and written on a background thread."""

    def __init__(self, zip: ZipWriter, encoded: bytes, flags: int, method: int, offset: int):
        self.zip = zip
        self.encoded = encoded
        self.flags = flags
        self.method = method
        self.offset = offset  # of the local header
        self.deflate = deflater(zip.level) if method else None
        self.crc = 0
        self.size = 0
        self.packed = 0
        self.parts: list[bytes] = []
        self.buffered = 0
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="zip-deflate")
        self.pending: Future[None] | None = None
        self.closed = False

    def write(self, data: bytes) -> None:
        self.parts.append(data)
        self.buffered += len(data)
        if self.buffered >= BUFFER_SIZE:
            self.flush()

    def flush(self) -> None:
        """Hand the buffered bytes to the worker (after the previous chunk is written)."""
        if not self.parts:
            return
        chunk = b"".join(self.parts)
        self.parts, self.buffered = [], 0
        self._wait()
        self.pending = self.worker.submit(self._compress, chunk, False)

    def _compress(self, chunk: bytes, last: bool) -> None:
        self.crc = zlib.crc32(chunk, self.crc)
        self.size += len(chunk)
        if self.deflate is not None:
            data = self.deflate.compress(chunk)
            if last:
                data += self.deflate.flush()
        else:
            data = chunk
        self.packed += len(data)
        self.zip.file.write(data)

    def _wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def close(self) -> None:
        if self.closed:
            return
        chunk = b"".join(self.parts)
        self.parts, self.buffered = [], 0
        self._wait()
        self._compress(chunk, True)
        self.worker.shutdown()
        self.closed = True
        self.finish()

    def finish(self) -> None:
        """The entry's CRC and sizes into its local header, and its directory record."""
        zip = self.zip
        file = zip.file
        end = file.tell()
        # the CRC, then the sizes in the ZIP64 extra field, in the local header
        file.seek(self.offset + 14)
        file.write(struct.pack("<I", self.crc))
        file.seek(self.offset + _LOCAL.size + len(self.encoded) + 4)
        file.write(struct.pack("<QQ", self.size, self.packed))
        file.seek(end)
        zip.offset = end
        zip.open_entry = None
        zip._record(
            self.encoded,
            self.flags,
            self.method,
            self.crc,
            self.packed,
            self.size,
            self.offset,
            _FILE_MODE,
        )

    def abort(self) -> None:
        self.parts = []
        try:
            self._wait()
        finally:
            self.worker.shutdown()
            self.closed = True

    def __enter__(self) -> EntryStream:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if error is None:
            self.close()
        else:
            self.abort()


def _name(name: str) -> tuple[bytes, int]:
    """The entry name's bytes and the flag that marks them UTF-8 (as ``zipfile`` decides)."""
    try:
        return name.encode("ascii"), 0
    except UnicodeEncodeError:
        return name.encode("utf-8"), _UTF8_FLAG
