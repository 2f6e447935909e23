"""Export formats: names, titles, and which ones a labeling config offers (export-formats.md §2).

A pure function of the parsed config (:class:`LabelConfig`): its controls (tag, ``to_name``) and
the objects they point at. ``YOLO`` is an extension beyond Label Studio 0.9 (§5), listed last.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.services.label_config import LabelConfig


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
    """Names of the formats the config offers, in the canonical order (§2, plus YOLO)."""
    if len(data_keys(config)) > 1:
        return list(BASIC_FORMATS)
    outputs = {control.tag for control in config.controls.values()}
    inputs = {
        config.objects[target].tag
        for control in config.controls.values()
        for target in control.to_name
        if target in config.objects
    }
    image = "Image" in inputs
    offered = {
        "CONLL2003": "Text" in inputs and "Labels" in outputs,
        "COCO": image and bool({"RectangleLabels", "PolygonLabels"} & outputs),
        "VOC": image and "RectangleLabels" in outputs,
        "BRUSH_TO_NUMPY": image and "BrushLabels" in outputs,
        "BRUSH_TO_PNG": image and "BrushLabels" in outputs,
        "ASR_MANIFEST": bool({"Audio", "AudioPlus"} & inputs) and "TextArea" in outputs,
        "YOLO": image and "RectangleLabels" in outputs,
    }
    return [name for name in FORMAT_NAMES if offered.get(name, True)]


def get_format(name: str) -> ExportFormat | None:
    return next((f for f in FORMATS if f.name == name), None)
