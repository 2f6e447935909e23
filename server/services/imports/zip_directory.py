"""A zip archive's central directory, sized up before :mod:`zipfile` is let near it.

``zipfile.ZipFile`` reads the whole central directory into memory and builds a ``ZipInfo`` for
each of its entries before anything can be checked: an upload of a million directory entries
peaked at 593 MB before the member limit refused it. :func:`central_directory` finds the End of
Central Directory record (and the ZIP64 one) exactly as ``zipfile`` (Python 3.11) does, so both
agree on where the directory is and how big it is, then walks the directory's fixed-size entry
headers one by one (memory: one header) to count the entries really there: the declared count
may lie. :func:`check_central_directory` refuses an archive whose declared or real entry count,
or whose directory size, is over the limits, before ``zipfile`` opens it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO

END_RECORD = struct.Struct("<4s4H2LH")
END_SIGNATURE = b"PK\005\006"
ZIP64_LOCATOR = struct.Struct("<4sLQL")
ZIP64_LOCATOR_SIGNATURE = b"PK\006\007"
ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")
ZIP64_END_SIGNATURE = b"PK\006\006"
ENTRY_HEADER = struct.Struct("<4s4B4HL2L5H2L")
ENTRY_SIGNATURE = b"PK\001\002"
MAX_COMMENT = 1 << 16  # zipfile searches this far back (the largest comment, plus one)
# Central directory bytes allowed per permitted entry (46 bytes of header plus name, extra
# field and comment), with a floor for archives of few entries with long names.
DIRECTORY_BYTES_PER_ENTRY = 1024
MIN_DIRECTORY_LIMIT = 64 * 1024


class DirectoryRefused(Exception):
    """The archive is refused; ``too_large`` tells a limit from damage."""

    def __init__(self, reason: str, too_large: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large


@dataclass(frozen=True)
class CentralDirectory:
    declared_entries: int
    size: int
    start: int  # file offset of the first entry header


def directory_limit(max_entries: int) -> int:
    """The largest central directory (bytes) accepted for ``max_entries`` entries."""
    return max(max_entries * DIRECTORY_BYTES_PER_ENTRY, MIN_DIRECTORY_LIMIT)


def central_directory(handle: IO[bytes]) -> CentralDirectory:
    """Where the central directory is, read as ``zipfile._EndRecData`` reads it."""
    handle.seek(0, 2)
    file_size = handle.tell()
    if file_size < END_RECORD.size:
        raise DirectoryRefused("File is not a zip file", too_large=False)
    tail_start = max(file_size - MAX_COMMENT - END_RECORD.size, 0)
    handle.seek(file_size - END_RECORD.size)
    last = handle.read(END_RECORD.size)
    if last[:4] == END_SIGNATURE and last[-2:] == b"\0\0":
        record, location = last, file_size - END_RECORD.size
    else:
        handle.seek(tail_start)
        tail = handle.read()
        found = tail.rfind(END_SIGNATURE)
        record = tail[found : found + END_RECORD.size]
        if found < 0 or len(record) != END_RECORD.size:
            raise DirectoryRefused("File is not a zip file", too_large=False)
        location = tail_start + found
    fields = END_RECORD.unpack(record)
    entries, size, offset = fields[4], fields[5], fields[6]
    zip64 = _zip64_end(handle, location)
    overhead = 0
    if zip64 is not None:
        entries, size, offset = zip64
        overhead = ZIP64_END_RECORD.size + ZIP64_LOCATOR.size
    start = offset + (location - size - offset - overhead)  # zipfile's "concat" correction
    if start < 0:
        raise DirectoryRefused("Bad offset for central directory", too_large=False)
    return CentralDirectory(entries, size, start)


def _zip64_end(handle: IO[bytes], location: int) -> tuple[int, int, int] | None:
    """(entries, directory size, offset) of a ZIP64 end record right before the locator."""
    locator_at = location - ZIP64_LOCATOR.size
    if locator_at < 0:
        return None
    handle.seek(locator_at)
    locator = handle.read(ZIP64_LOCATOR.size)
    if len(locator) != ZIP64_LOCATOR.size:
        return None
    signature, disk, _, disks = ZIP64_LOCATOR.unpack(locator)
    if signature != ZIP64_LOCATOR_SIGNATURE:
        return None
    if disk != 0 or disks > 1:
        raise DirectoryRefused("zip files that span several disks are not supported", False)
    record_at = locator_at - ZIP64_END_RECORD.size
    if record_at < 0:
        return None
    handle.seek(record_at)
    record = handle.read(ZIP64_END_RECORD.size)
    if len(record) != ZIP64_END_RECORD.size:
        return None
    fields = ZIP64_END_RECORD.unpack(record)
    if fields[0] != ZIP64_END_SIGNATURE:
        return None
    return fields[7], fields[8], fields[9]


def count_entries(handle: IO[bytes], directory: CentralDirectory, stop_after: int) -> int:
    """The entries really in the directory (as ``zipfile`` will parse them), counting no
    further than ``stop_after + 1``."""
    handle.seek(directory.start)
    position, count = 0, 0
    while position < directory.size and count <= stop_after:
        header = handle.read(ENTRY_HEADER.size)
        if len(header) != ENTRY_HEADER.size or header[:4] != ENTRY_SIGNATURE:
            raise DirectoryRefused("Bad magic number for central directory", too_large=False)
        fields = ENTRY_HEADER.unpack(header)
        variable = fields[12] + fields[13] + fields[14]  # name, extra field, comment
        handle.seek(variable, 1)
        position += ENTRY_HEADER.size + variable
        count += 1
    return count


def check_central_directory(handle: IO[bytes], max_entries: int) -> None:
    """Refuse (:class:`DirectoryRefused`) an archive with more than ``max_entries`` entries,
    declared or real, or a central directory over :func:`directory_limit`."""
    directory = central_directory(handle)
    if directory.declared_entries > max_entries:
        raise DirectoryRefused(_too_many(directory.declared_entries, max_entries), True)
    limit = directory_limit(max_entries)
    if directory.size > limit:
        raise DirectoryRefused(
            f"the archive's central directory has {directory.size} bytes, more than the "
            f"limit of {limit} for {max_entries} entries",
            too_large=True,
        )
    if count_entries(handle, directory, max_entries) > max_entries:
        raise DirectoryRefused(
            f"the archive has more entries than the limit of {max_entries} (it declares "
            f"{directory.declared_entries})",
            too_large=True,
        )


def _too_many(count: int, limit: int) -> str:
    return f"the archive has {count} entries, more than the limit of {limit}"
