"""Images and audio that exports copy and measure (export-formats.md §4.10).

References are resolved without ever reading arbitrary server paths:

* ``/data/upload/<name>``: the file ``<name>`` of the project's upload folder, if it exists
  (a name with a path separator or ``..`` never resolves); with a shared file store, an upload
  another process received is fetched from the store into this process's upload folder first;
* ``http(s)://…``: downloaded into the export's work folder, only when remote fetching is on
  (``LABELGRAPH_EXPORT_FETCH_REMOTE``), with a timeout and a size cap;
* anything else (``/data/<file>?d=…``, local paths, other schemes): unresolved, the caller keeps
  the reference as it is.

Pillow is imported only when an image must be measured, so exports that do not need image sizes
work without it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from server.db import released
from server.errors import DomainError
from server.services.url_fetch import FetchPolicy, fetch

log = logging.getLogger(__name__)

UPLOAD_PREFIX = "/data/upload/"
MAX_FETCH_BYTES = 512 * 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Media:
    """A resolved reference: ``stored_name`` is its name in the export's sub-folder."""

    stored_name: str
    path: Path


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    channels: int


@dataclass
class MediaResolver:
    upload_dir: Path
    work_dir: Path
    fetch_remote: bool = False
    timeout: float = 10.0
    allow_private: bool = False
    # With a shared file store: copy the upload ``name`` to ``target``; False when it has none.
    fetch_shared_upload: Callable[[str, Path], bool] | None = None
    _failed_urls: set[str] = field(default_factory=set)

    def resolve(self, reference: object) -> Media | None:
        if not isinstance(reference, str) or not reference:
            return None
        if reference.startswith(UPLOAD_PREFIX):
            return self._upload(reference[len(UPLOAD_PREFIX) :])
        if reference.startswith(("http://", "https://")):  # skips urlparse on most images
            scheme = "http"
        else:
            scheme = urlparse(reference).scheme.lower()
        if scheme in ("http", "https"):
            return self._fetch(reference) if self.fetch_remote else None
        return None

    def _upload(self, name: str) -> Media | None:
        upload_dir = self.upload_dir.resolve()
        for candidate in dict.fromkeys((name, unquote(name))):
            if not _is_plain_name(candidate):
                continue
            path = upload_dir / candidate
            if path.resolve().parent != upload_dir:
                continue
            if path.is_file() or self._fetch_shared(candidate, path):
                return Media(candidate, path)
        return None

    def _fetch_shared(self, name: str, path: Path) -> bool:
        if self.fetch_shared_upload is None:
            return False
        try:
            with released():
                return self.fetch_shared_upload(name, path)
        except Exception as exc:  # the store's client errors are many; the export goes on
            log.warning("export: cannot fetch upload %s from the file store: %s", name, exc)
            return False

    def _fetch(self, url: str) -> Media | None:
        stored = remote_name(url)
        target = self.work_dir / "fetched" / stored
        if target.is_file():
            return Media(stored, target)
        if url in self._failed_urls:
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        policy = FetchPolicy(
            timeout=self.timeout, max_size=MAX_FETCH_BYTES, allow_private=self.allow_private
        )
        try:
            # The same guard as URL imports: no loopback/private addresses unless allowed.
            with partial.open("wb") as out, released():
                fetch(url, out, policy)
            partial.replace(target)
        except (OSError, DomainError) as exc:
            log.warning("export: cannot fetch %s: %s", url, exc)
            partial.unlink(missing_ok=True)
            self._failed_urls.add(url)
            return None
        return Media(stored, target)


def _is_plain_name(name: str) -> bool:
    return (
        bool(name)
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
    )


def remote_name(url: str) -> str:
    """``<basename>_<first 4 hex of MD5(url)><ext>``, as Label Studio names fetched files."""
    base = os.path.basename(urlparse(url).path)
    stem, ext = os.path.splitext(base)
    stem = _UNSAFE.sub("_", stem).strip(".") or "file"
    ext = _UNSAFE.sub("_", ext)
    digest = hashlib.md5(url.encode("utf-8"), usedforsecurity=False).hexdigest()[:4]
    return f"{stem}_{digest}{ext}"


def image_info(path: Path) -> ImageInfo | None:
    """Width, height and number of bands of an image file; None when unreadable (or without
    Pillow). Reads the header only."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        log.warning("export: Pillow is not installed; image sizes are not read from files")
        return None
    try:
        with Image.open(path) as image:
            width, height = image.size
            return ImageInfo(int(width), int(height), len(image.getbands()))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        log.warning("export: cannot read image %s: %s", path.name, exc)
        return None


def wav_duration(path: Path) -> float | None:
    """Seconds of a WAV file (frames / frame rate); None for anything else."""
    try:
        with wave.open(str(path), "rb") as audio:
            rate = audio.getframerate()
            return audio.getnframes() / rate if rate else None
    except (OSError, EOFError, wave.Error):
        return None
