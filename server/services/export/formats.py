"""Export formats: names, titles, and which ones a labeling config offers (export-formats.md §2).

The config model decides Label Studio's formats; ``YOLO`` is an extension beyond Label Studio
0.9 (§5), listed last.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.services.config.model import LabelConfig


@dataclass(frozen=True)
class ExportFormat:
    name: str
    title: str
    description: str


FORMATS: tuple[ExportFormat, ...] = (
    ExportFormat(
        "JSON",
        "JSON",
        "Every labeled task with all its completions, as Label Studio stores them.",
    ),
    ExportFormat(
        "JSON_MIN",
        "JSON-MIN",
        "One object per task: its data, its id and the latest completion's values by control.",
    ),
    ExportFormat("CSV", "CSV", "The JSON-MIN rows as comma-separated values (result.csv)."),
    ExportFormat("TSV", "TSV", "The JSON-MIN rows as tab-separated values (still result.csv)."),
    ExportFormat(
        "CONLL2003", "CONLL2003", "Tokens with BIO tags of the text spans (named entities)."
    ),
    ExportFormat(
        "COCO", "COCO", "Rectangles and polygons as COCO object detection JSON, with images."
    ),
    ExportFormat("VOC", "Pascal VOC XML", "One Pascal VOC XML file per image, with images."),
    ExportFormat(
        "BRUSH_TO_NUMPY", "Brush labels to NumPy", "Each brush mask as a 2-D uint8 .npy array."
    ),
    ExportFormat("BRUSH_TO_PNG", "Brush labels to PNG", "Each brush mask as a greyscale PNG."),
    ExportFormat(
        "ASR_MANIFEST",
        "ASR Manifest",
        "Audio transcriptions as a JSON-lines manifest (NVIDIA NeMo), with the audio files.",
    ),
    ExportFormat(
        "YOLO",
        "YOLO",
        "Rectangles as YOLO label files (class x_center y_center width height, 0-1), "
        "classes.txt and images (not in Label Studio 0.9).",
    ),
)
FORMAT_NAMES: tuple[str, ...] = tuple(f.name for f in FORMATS)
BASIC_FORMATS: tuple[str, ...] = ("JSON", "JSON_MIN", "CSV", "TSV")


def data_keys(config: LabelConfig) -> list[str]:
    """The distinct data keys of the objects referenced by controls, in config order (§1.3)."""
    keys: list[str] = []
    for control in config.controls.values():
        for target in control.to_name:
            obj = config.objects.get(target)
            if obj is not None and obj.value not in keys:
                keys.append(obj.value)
    return keys


def available_formats(config: LabelConfig) -> list[str]:
    """Names of the formats the config offers, in the canonical order: Label Studio's list,
    computed by the config model (§2), plus YOLO wherever VOC is offered (rectangles on one
    image data key)."""
    offered = list(config.export_formats)
    if "VOC" in offered:
        offered.append("YOLO")
    return offered


def get_format(name: str) -> ExportFormat | None:
    return next((f for f in FORMATS if f.name == name), None)
