"""Hostile archives: zip bombs spread over one request, central directories too large to
build, members that would overwrite uploads or write through symlinks (Security fixes)."""

from __future__ import annotations

import dataclasses
import io
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.settings import Settings
from tests.rest.test_import_files import set_config, stored_name, tasks, upload, zip_bytes

ROUTES = ("/api/project/import", "/api/project/import/prepare")


def leftovers(settings: Settings) -> list[str]:
    """Every file and folder under upload/ and the import staging directory."""
    found = []
    for root in (settings.upload_dir, settings.import_tmp_dir):
        if root.exists():
            found += [str(p.relative_to(root.parent)) for p in root.rglob("*")]
    return sorted(found)


@pytest.fixture
def small(settings: Settings) -> Iterator[tuple[TestClient, Settings]]:
    limited = dataclasses.replace(
        settings, max_archive_members=3, max_archive_size=10_000, max_import_unpacked_size=15_000
    )
    with TestClient(create_app(limited)) as client:
        set_config(client, "configs/text_classification.xml")
        yield client, limited


def end_record(archive: bytes) -> tuple[int, tuple[int, ...]]:
    """Where the End of Central Directory record is, and its fields."""
    at = archive.rindex(b"PK\005\006")
    return at, struct.unpack("<4s4H2LH", archive[at : at + 22])


def with_end_record(archive: bytes, entries: int, size: int | None = None) -> bytes:
    """``archive`` with its End of Central Directory record claiming ``entries`` entries
    (and a central directory of ``size`` bytes)."""
    at, fields = end_record(archive)
    size = fields[5] if size is None else size
    record = struct.pack("<4s4H2LH", b"PK\005\006", 0, 0, entries, entries, size, fields[6], 0)
    return archive[:at] + record


# --------------------------------------------------------------------------- unpacked size


@pytest.mark.parametrize("route", ROUTES)
def test_archives_of_one_request_share_one_unpacked_budget(
    small: tuple[TestClient, Settings], route: str
) -> None:
    client, settings = small
    # Each archive is within the per-archive limit (10,000 bytes); together they are not.
    first = zip_bytes({"one.txt": b"a\n" * 4000})
    second = zip_bytes({"two.txt": b"b\n" * 4000})
    files = [upload("first.zip", "f1", first), upload("second.zip", "f2", second)]
    response = client.post(route, files=files)
    assert (response.status_code, response.json()) == (
        413,
        [
            f"Failed to parse input file {stored_name('second.zip', second)}: the archives of "
            "this import unpack to more than 15000 bytes (LABELGRAPH_MAX_IMPORT_UNPACKED_SIZE)"
        ],
    )
    assert tasks(client) == []
    assert leftovers(settings) == []


def test_one_archive_within_both_limits_imports(small: tuple[TestClient, Settings]) -> None:
    client, _ = small
    archive = zip_bytes({"one.txt": b"a\n" * 4000})
    response = client.post("/api/project/import", files=[upload("one.zip", content=archive)])
    assert response.status_code == 201, response.text
    assert response.json()["total_tasks"] == 4000


# --------------------------------------------------------------------------- central directory


def test_declared_entry_count_is_refused_before_zipfile_reads_the_directory(
    small: tuple[TestClient, Settings],
) -> None:
    client, settings = small
    # An end record claiming a million entries and nothing behind it: zipfile would answer
    # "truncated" (422) after reading what there is; the count is refused first (413).
    archive = with_end_record(zip_bytes({"a.txt": b"a\n"}), 0xFFFF)
    response = client.post("/api/project/import", files=[upload("many.zip", content=archive)])
    assert (response.status_code, response.json()) == (
        413,
        [
            f"Failed to parse input file {stored_name('many.zip', archive)}: the archive has "
            "65535 entries, more than the limit of 3"
        ],
    )
    assert tasks(client) == []
    assert leftovers(settings) == []


def test_a_lying_entry_count_is_caught_by_walking_the_directory(
    small: tuple[TestClient, Settings],
) -> None:
    client, settings = small
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for index in range(4):
            out.writestr(f"{index}.txt", b"x\n")
        # A fifth entry zipfile refuses to parse at all (extract version 9.9): had zipfile
        # built the directory, the answer would be its NotImplementedError (422).
        info = zipfile.ZipInfo("5.txt")
        out.writestr(info, b"x\n")
        info.extract_version = 99
    archive = with_end_record(buffer.getvalue(), 1)
    response = client.post("/api/project/import", files=[upload("liar.zip", content=archive)])
    assert (response.status_code, response.json()) == (
        413,
        [
            f"Failed to parse input file {stored_name('liar.zip', archive)}: the archive has "
            "more entries than the limit of 3 (it declares 1)"
        ],
    )
    assert tasks(client) == []
    assert leftovers(settings) == []


def test_an_oversized_central_directory_is_refused(small: tuple[TestClient, Settings]) -> None:
    client, settings = small
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        info = zipfile.ZipInfo("a.txt")
        info.comment = b"c" * 65_000  # the directory's memory follows its size, not its count
        out.writestr(info, b"a\n")
        info = zipfile.ZipInfo("b.txt")
        info.comment = b"c" * 65_000
        out.writestr(info, b"b\n")
    archive = buffer.getvalue()
    response = client.post("/api/project/import", files=[upload("wide.zip", content=archive)])
    assert response.status_code == 413
    assert response.json() == [
        f"Failed to parse input file {stored_name('wide.zip', archive)}: the archive's central "
        f"directory has {end_record(archive)[1][5]} bytes, more than the limit of 65536 for 3 "
        "entries"
    ]
    assert tasks(client) == []
    assert leftovers(settings) == []


# --------------------------------------------------------------------------- overwrites


def test_a_member_never_overwrites_an_earlier_upload(
    client: TestClient, settings: Settings
) -> None:
    set_config(client, "configs/text_classification.xml")
    original = b"the original\n"
    response = client.post("/api/project/import", files=[upload("note.txt", content=original)])
    assert response.status_code == 201
    taken = stored_name("note.txt", original)
    # A member named like the earlier upload, with other bytes: it gets its own hash prefix.
    archive = zip_bytes({taken: b"replaced\n"})
    response = client.post("/api/project/import", files=[upload("a.zip", content=archive)])
    assert response.status_code == 201, response.text
    assert (settings.upload_dir / taken).read_bytes() == original
    assert (settings.upload_dir / stored_name(taken, b"replaced\n")).read_bytes() == b"replaced\n"
    assert tasks(client) == [{"text": "the original"}, {"text": "replaced"}]


def test_a_name_taken_by_other_bytes_refuses_the_import(
    client: TestClient, settings: Settings
) -> None:
    set_config(client, "configs/text_classification.xml")
    member = b"member\n"
    name = "docs/" + stored_name("m.txt", member)
    # Another file already holds that name (as a crafted MD5-prefix collision would).
    (settings.upload_dir / "docs").mkdir()
    (settings.upload_dir / name).write_bytes(b"someone else's\n")
    archive = zip_bytes({"docs/m.txt": member})
    response = client.post("/api/project/import", files=[upload("a.zip", content=archive)])
    assert (response.status_code, response.json()) == (
        422,
        [f"Failed to parse input file {name}: another file of this name is already uploaded"],
    )
    assert (settings.upload_dir / name).read_bytes() == b"someone else's\n"
    assert tasks(client) == []
    assert leftovers(settings) == ["upload/docs", f"upload/{name}"]
    # The same bytes under the same name are simply kept: importing twice works.
    (settings.upload_dir / name).write_bytes(member)
    response = client.post("/api/project/import", files=[upload("a.zip", content=archive)])
    assert response.status_code == 201, response.text
    assert tasks(client) == [{"text": "member"}]


def test_member_folders_are_never_created_through_a_symlink(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    set_config(client, "configs/text_classification.xml")
    outside = tmp_path / "outside"
    outside.mkdir()
    (settings.upload_dir / "images").symlink_to(outside, target_is_directory=True)
    archive = zip_bytes({"images/deeper/a.txt": b"a\n"})
    response = client.post("/api/project/import", files=[upload("a.zip", content=archive)])
    name = "images/deeper/" + stored_name("a.txt", b"a\n")
    assert (response.status_code, response.json()) == (
        422,
        [f"Failed to parse input file {name}: unsafe file name"],
    )
    assert list(outside.iterdir()) == []
    assert tasks(client) == []
    assert leftovers(settings) == ["upload/images"]
