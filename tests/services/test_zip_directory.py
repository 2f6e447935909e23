"""The central directory of a zip, read without zipfile: plain and ZIP64 end records, archives
with a comment or data in front, damage."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from server.services.imports.zip_directory import (
    DirectoryRefused,
    central_directory,
    check_central_directory,
)


def plain_zip(count: int, comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for index in range(count):
            out.writestr(f"{index}.txt", b"x")
        out.comment = comment
    return buffer.getvalue()


def as_zip64(archive: bytes) -> bytes:
    """``archive`` with a ZIP64 end record and locator holding the real values and a plain end
    record saying "see ZIP64" (0xFFFF entries, 0xFFFFFFFF size and offset)."""
    at = archive.rindex(b"PK\005\006")
    fields = struct.unpack("<4s4H2LH", archive[at : at + 22])
    entries, size, offset = fields[4], fields[5], fields[6]
    record64 = struct.pack(
        "<4sQ2H2L4Q", b"PK\006\006", 44, 45, 45, 0, 0, entries, entries, size, offset
    )
    locator = struct.pack("<4sLQL", b"PK\006\007", 0, at, 1)
    end = struct.pack("<4s4H2LH", b"PK\005\006", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return archive[:at] + record64 + locator + end


@pytest.mark.parametrize(
    "archive",
    [
        plain_zip(3),
        plain_zip(3, comment=b"a comment " * 100),
        b"#!/bin/sh\nexit 0\n" + plain_zip(3),  # zipfile's "concat" correction
        as_zip64(plain_zip(3)),
    ],
    ids=["plain", "comment", "prefixed", "zip64"],
)
def test_entries_and_size_agree_with_zipfile(archive: bytes) -> None:
    directory = central_directory(io.BytesIO(archive))
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        assert len(opened.infolist()) == 3
        assert directory.start == opened.start_dir
    assert directory.declared_entries == 3
    check_central_directory(io.BytesIO(archive), 3)
    with pytest.raises(DirectoryRefused, match="has 3 entries, more than the limit of 2"):
        check_central_directory(io.BytesIO(archive), 2)


@pytest.mark.parametrize(
    ("archive", "reason"),
    [
        (b"", "File is not a zip file"),
        (b"x" * 100, "File is not a zip file"),
        (plain_zip(2)[:-30] + plain_zip(2)[-22:], "Bad magic number for central directory"),
    ],
)
def test_damage_is_refused_as_damage(archive: bytes, reason: str) -> None:
    with pytest.raises(DirectoryRefused, match=reason) as refused:
        check_central_directory(io.BytesIO(archive), 10)
    assert not refused.value.too_large
