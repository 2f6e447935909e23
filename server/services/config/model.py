"""The immutable labeling-config model: object, control, visual tags and :class:`LabelConfig`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

EMPTY_CONFIG = "<View></View>"
UNDEFINED_KEY = "$undefined$"

# JSON types a data value may have, by the tag that shows it (§4.2); others: string only.
ACCEPTED_TYPES: Mapping[str, tuple[type, ...]] = MappingProxyType(
    {
        "Text": (str, int, float),
        "Header": (str, int, float),
        "HyperText": (str,),
        "Image": (str, list),
        "Paragraphs": (list,),
        "Table": (dict,),
        "TimeSeries": (dict, list, str),
        "TimeSeriesChannel": (dict, list, str),
    }
)
DEFAULT_ACCEPTED_TYPES: tuple[type, ...] = (str,)

BASIC_EXPORT_FORMATS = ("JSON", "JSON_MIN", "CSV", "TSV")
ALL_EXPORT_FORMATS = (
    *BASIC_EXPORT_FORMATS,
    "CONLL2003",
    "COCO",
    "VOC",
    "BRUSH_TO_NUMPY",
    "BRUSH_TO_PNG",
    "ASR_MANIFEST",
)


# --- the model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectTag:
    """An input: an element with ``name`` and ``value`` that is not a control (§5)."""

    name: str
    tag: str
    value: str  # the data key (leading ``$`` stripped) or a literal value
    is_variable: bool
    attrs: Mapping[str, str]


@dataclass(frozen=True)
class ControlTag:
    """An output: an element with ``name`` and ``toName`` that is not a ``Filter`` (§5)."""

    name: str
    tag: str
    to_name: tuple[str, ...]
    inputs: tuple[ObjectTag, ...]
    labels: tuple[str, ...]
    labels_attrs: Mapping[str, Mapping[str, str]]
    attrs: Mapping[str, str]

    @property
    def result_type(self) -> str:
        """The ``type`` of the results this control produces (§9)."""
        return self.tag.lower()

    @property
    def schema_tuple(self) -> tuple[str, str, str]:
        """(name, first toName, result type): what §7.2 compares stored results with."""
        return (self.name, self.to_name[0], self.result_type)


@dataclass(frozen=True)
class VisualTag:
    """Any other element: layout, decoration, labels, choices (§1)."""

    tag: str
    attrs: Mapping[str, str]


@dataclass(frozen=True)
class SampleSource:
    """An element whose ``value`` is a ``$variable``: what sample generation needs (§8.2)."""

    key: str
    tag: str
    value_type: str | None
    name_key: str
    text_key: str
    time_column: str | None = None
    channels: tuple[str | None, ...] = ()
    sep: str | None = None
    time_format: str | None = None


@dataclass(frozen=True, eq=False)
class LabelConfig:
    """What the server knows about a labeling config. Immutable; compare by identity."""

    text: str
    full: str
    line: str
    objects: Mapping[str, ObjectTag] = field(default_factory=lambda: MappingProxyType({}))
    controls: Mapping[str, ControlTag] = field(default_factory=lambda: MappingProxyType({}))
    visuals: tuple[VisualTag, ...] = ()
    data_types: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    sample_sources: tuple[SampleSource, ...] = ()
    export_formats: tuple[str, ...] = BASIC_EXPORT_FORMATS
    import_formats: tuple[str, ...] = ("json", "csv", "tsv")
    type_checks: tuple[tuple[str, tuple[type, ...]], ...] = ()
    schema_tuples: frozenset[tuple[str, str, str]] = frozenset()

    @property
    def has_control_tags(self) -> bool:
        return bool(self.controls)

    @property
    def first_data_key(self) -> str | None:
        return next(iter(self.data_types), None)

    @property
    def is_empty(self) -> bool:
        return not self.controls and not self.data_types

    @property
    def referenced_inputs(self) -> tuple[ObjectTag, ...]:
        """Inputs of every control, in control order then ``toName`` order (§7.1)."""
        return tuple(obj for control in self.controls.values() for obj in control.inputs)

    def parsed_config(self) -> dict[str, Any]:
        """Label Studio's ``parsed_label_config``: control name -> type, to_name, inputs,
        labels, labels_attrs (a fresh JSON-ready dict)."""
        return {
            name: {
                "type": c.tag,
                "to_name": list(c.to_name),
                "inputs": [{"type": o.tag, "value": o.value} for o in c.inputs],
                "labels": list(c.labels),
                "labels_attrs": {k: dict(v) for k, v in c.labels_attrs.items()},
            }
            for name, c in self.controls.items()
        }
