"""The media export writers: ASR_MANIFEST, BRUSH_TO_NUMPY, BRUSH_TO_PNG (export-formats.md
§4.8, §4.9). COCO, VOC and YOLO are in :mod:`server.services.export.images`."""

from __future__ import annotations

import json
import logging
import re

from server.services.export import brush
from server.services.export.writer_base import (
    BUFFER_SIZE,
    ExportTask,
    Writer,
    WriterContext,
    extract_item,
    unavailable_reason,
    values_of,
)

log = logging.getLogger(__name__)


# --- ASR_MANIFEST (§4.9) ---------------------------------------------------------------------


class AsrManifestWriter(Writer):
    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        ctx.mkdir("audio")
        self.key = ctx.data_key
        self.spool_path = ctx.work_dir / "manifest.jsonl"
        self.spool = ctx.spool("manifest.jsonl")

    def add(self, task: ExportTask) -> bool:
        from server.services.export.media import wav_duration

        item = extract_item(task, self.ctx.config)
        if item is None:
            return False
        values = values_of(item, ("TextArea",))
        if not values:
            log.warning("export: task %s has no transcription; left out", task.id)
            return False
        reference = item.data.get(self.key) if self.key is not None else None
        media = self.ctx.media.resolve(reference)
        if media is None:
            raise self.ctx.fail(task.id, f"its audio {reference!r} {unavailable_reason(self.ctx)}")
        duration = wav_duration(media.path)
        if duration is None:
            raise self.ctx.fail(task.id, f"its audio {reference!r} is not a readable WAV file")
        self.ctx.add_file(f"audio/{media.stored_name}", media.path)
        text = values[0].get("text")
        line = {
            "audio_filepath": f"audio/{media.stored_name}",
            "duration": duration,
            "text": text[0] if isinstance(text, list | str) and text else "",
        }
        self.spool.write(json.dumps(line).encode("ascii") + b"\n")
        return True

    def finish(self) -> None:
        self.spool.close()
        stream = self.ctx.open("manifest.json")
        with self.spool_path.open("rb") as spool:
            while chunk := spool.read(BUFFER_SIZE):
                stream.write(chunk)
        stream.close()


# --- BRUSH_TO_NUMPY, BRUSH_TO_PNG (§4.8) ------------------------------------------------------


_PATH_UNSAFE = re.compile(r"[/\\\x00]")


class BrushWriter(Writer):
    """Every completion (cancelled ones too), every ``brushlabels`` result, one file each."""

    extension = ".npy"

    def encode(self, mask: bytes, width: int, height: int) -> bytes:
        return brush.npy_bytes(mask, width, height)

    def add(self, task: ExportTask) -> bool:
        written = False
        for completion in task.completions:
            counters: dict[str, int] = {}
            result = completion.get("result")
            for entry in result if isinstance(result, list) else []:
                if not isinstance(entry, dict) or entry.get("type") != "brushlabels":
                    continue
                value = entry.get("value")
                if not isinstance(value, dict) or "rle" not in value:
                    continue
                labels = value.get("brushlabels")
                labels = labels if isinstance(labels, list) else []
                prefix = f"{entry.get('from_name', '')}-" + "-".join(str(x) for x in labels)
                number = counters.get(prefix, 0)
                counters[prefix] = number + 1
                try:
                    mask, width, height = brush.mask_from_result(entry)
                except brush.RLEError as exc:
                    message = f"completion {completion.get('id')}: {exc}"
                    raise self.ctx.fail(task.id, message) from None
                name = f"task-{task.id}-completion-{completion.get('id')}-{prefix}-{number}"
                name = _PATH_UNSAFE.sub("_", name)
                self.ctx.add_bytes(name + self.extension, self.encode(mask, width, height))
                written = True
        return written

    def finish(self) -> None:
        return None


class BrushPngWriter(BrushWriter):
    extension = ".png"

    def encode(self, mask: bytes, width: int, height: int) -> bytes:
        return brush.png_bytes(mask, width, height)
