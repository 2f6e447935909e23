"""The export's zip writer: read back by zipfile and ``unzip -t``, more than 65,535 entries
(ZIP64 end records), streamed and whole entries, stored and deflated, memory flat in the
number of entries."""

from __future__ import annotations

import shutil
import subprocess
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

from server.services.export import zip_writer
from server.services.export.zip_writer import ZipWriter


def unzip_test(path: Path) -> None:
    if shutil.which("unzip") is None:
        pytest.skip("unzip is not installed")
    done = subprocess.run(["unzip", "-tq", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No errors detected" in done.stdout


@pytest.mark.parametrize("level", [1, 0])
def test_many_entries_read_back(tmp_path: Path, level: int) -> None:
    path = tmp_path / "many.zip"
    count = 70_000  # more than a plain end record can count
    with ZipWriter(path, level) as out:
        out.mkdir("labels")
        out.mkdir("labels")  # once only
        for index in range(count):
            out.write_bytes(f"labels/{index}.txt", b"0 0.5 0.5 0.25 0.25\n" * (index % 40))
        with out.open("result.json") as stream:
            for index in range(20_000):
                stream.write(b'{"id": %d, "text": "caf\xc3\xa9"},\n' % index)
        out.write_bytes("notes/é.json", b"{}")
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        assert len(infos) == count + 3
        assert archive.testzip() is None
        assert infos[0].filename == "labels/" and infos[0].is_dir()
        assert archive.read("labels/39.txt") == b"0 0.5 0.5 0.25 0.25\n" * 39
        assert archive.read("labels/40.txt") == b""
        streamed = archive.read("result.json")
        assert streamed.count(b"\n") == 20_000 and streamed.startswith(b'{"id": 0, "text": "caf')
        assert archive.read("notes/é.json") == b"{}"
        big = archive.getinfo("labels/39.txt")  # 780 bytes: deflated unless level 0
        assert big.compress_type == (zipfile.ZIP_DEFLATED if level else zipfile.ZIP_STORED)
        small = archive.getinfo("labels/3.txt")  # 60 bytes: stored
        assert small.compress_type == zipfile.ZIP_STORED
        assert archive.getinfo("result.json").compress_type == big.compress_type
        assert archive.getinfo("labels/1.txt").external_attr >> 16 == 0o100644
    unzip_test(path)
    assert not (tmp_path / "many.zip.cd").exists()  # the spooled directory is gone


def test_streamed_entry_is_the_single_deflate_stream_of_its_content(tmp_path: Path) -> None:
    path = tmp_path / "one.zip"
    content = b"".join(b"row %d of the export\n" % i for i in range(300_000))  # several chunks
    with ZipWriter(path, 1, spool=tmp_path / "directory") as out, out.open("a.txt") as stream:
        for start in range(0, len(content), 70_000):
            stream.write(content[start : start + 70_000])
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("a.txt")
        assert archive.read("a.txt") == content
    assert zlib.crc32(content) == info.CRC
    assert info.compress_size == len(zip_writer.deflate(content, 1))
    assert zlib.decompress(zip_writer.deflate(content, 1), -15) == content
    unzip_test(path)


def test_remembered_names_and_one_open_entry(tmp_path: Path) -> None:
    source = tmp_path / "image.png"
    source.write_bytes(b"\x89PNG" + bytes(range(256)) * 10)
    with ZipWriter(tmp_path / "x.zip") as out:
        out.copy_file("images/image.png", source, remember=True)
        assert out.contains("images/image.png")
        out.write_bytes("plain.txt", b"x")
        assert not out.contains("plain.txt")  # only remembered names are kept
        stream = out.open("open.txt")
        with pytest.raises(ValueError, match="still open"):
            out.write_bytes("other.txt", b"y")
        stream.close()
    with zipfile.ZipFile(tmp_path / "x.zip") as archive:
        assert archive.namelist() == ["images/image.png", "plain.txt", "open.txt"]
        assert archive.read("images/image.png") == source.read_bytes()


def test_abort_closes_without_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "failed.zip"
    with pytest.raises(RuntimeError), ZipWriter(path) as out:
        stream = out.open("a.txt")
        stream.write(b"partial")
        raise RuntimeError("the export failed")
    assert out.closed and stream.closed
    assert not (tmp_path / "failed.zip.cd").exists()


def test_memory_does_not_grow_with_entries(tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        with ZipWriter(tmp_path / "flat.zip") as out:
            for index in range(20_000):
                out.write_bytes(f"labels/{index}.txt", b"1 0.5 0.5 0.1 0.1\n")
            held = tracemalloc.get_traced_memory()[0]
            for index in range(20_000, 100_000):
                out.write_bytes(f"labels/{index}.txt", b"1 0.5 0.5 0.1 0.1\n")
            grown = tracemalloc.get_traced_memory()[0] - held
    finally:
        tracemalloc.stop()
    assert grown < 200_000  # zipfile's ZipInfo per entry: ~40 MB for these 80,000
    assert len(b"1 0.5 0.5 0.1 0.1\n") < zip_writer.STORED_BELOW
