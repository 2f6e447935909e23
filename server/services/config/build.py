"""Labeling config validation step 5 (§6.2): a checked XML tree -> the immutable model.

Collects object, control and visual tags, data keys and their tag types, labels, sample
sources, the export formats and import file types the config allows, and the full and
one-line forms; refuses a control whose ``toName`` is not an object tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, cast

from lxml import etree

from server.services.config.issues import TO_NAME_NOT_OBJECT, fail
from server.services.config.model import (
    ACCEPTED_TYPES,
    ALL_EXPORT_FORMATS,
    BASIC_EXPORT_FORMATS,
    DEFAULT_ACCEPTED_TYPES,
    ControlTag,
    LabelConfig,
    ObjectTag,
    SampleSource,
    VisualTag,
)
from server.services.config.xml_checks import LABEL_TAGS, elements

_NOT_CONTROLS = frozenset({"Filter"})


def _frozen(attrs: Any) -> Mapping[str, str]:
    return MappingProxyType(dict(attrs))


def _sample_source(el: etree._Element, key: str) -> SampleSource:
    get = el.get
    source = SampleSource(
        key=key,
        tag=el.tag,
        value_type=get("valueType") or get("valuetype"),
        name_key=get("nameKey") or get("namekey") or "author",
        text_key=get("textKey") or get("textkey") or "text",
    )
    if el.tag != "TimeSeries":
        return source
    return SampleSource(
        key=source.key,
        tag=source.tag,
        value_type=source.value_type,
        name_key=source.name_key,
        text_key=source.text_key,
        time_column=get("timeColumn"),
        channels=tuple(c.get("column") for c in el if c.tag == "Channel"),
        sep=get("sep"),
        time_format=get("timeFormat"),
    )


def _export_formats(controls: Mapping[str, ControlTag]) -> tuple[str, ...]:
    """Formats the converter offers for this config (export-formats.md §2)."""
    data_keys = {obj.value for c in controls.values() for obj in c.inputs}
    if len(data_keys) > 1:
        return BASIC_EXPORT_FORMATS
    outputs = {c.tag for c in controls.values()}
    inputs = {obj.tag for c in controls.values() for obj in c.inputs}
    image = "Image" in inputs
    offered = {
        "CONLL2003": "Text" in inputs and "Labels" in outputs,
        "COCO": image and bool({"RectangleLabels", "PolygonLabels"} & outputs),
        "VOC": image and "RectangleLabels" in outputs,
        "BRUSH_TO_NUMPY": image and "BrushLabels" in outputs,
        "BRUSH_TO_PNG": image and "BrushLabels" in outputs,
        "ASR_MANIFEST": bool({"Audio", "AudioPlus"} & inputs) and "TextArea" in outputs,
    }
    return tuple(f for f in ALL_EXPORT_FORMATS if f in BASIC_EXPORT_FORMATS or offered[f])


def _import_formats(data_types: Mapping[str, str], has_list: bool) -> tuple[str, ...]:
    """Import file types (§4.3)."""
    if has_list:
        return ("json",)
    if len(data_types) == 1:
        return ("json", "csv", "tsv", "txt")
    return ("json", "csv", "tsv")


def build(text: str, root: etree._Element) -> LabelConfig:
    data_types: dict[str, str] = {}
    samples: dict[str, SampleSource] = {}
    sample_order: list[str] = []
    control_els: dict[str, etree._Element] = {}
    objects: dict[str, ObjectTag] = {}
    labels: dict[str, dict[str, Mapping[str, str]]] = {}
    visuals: list[VisualTag] = []
    has_list = False
    for el in elements(root):
        attrib = el.attrib
        value = attrib.get("value")
        if value is not None and value.startswith("$"):
            key = value[1:]
            if len(value) > 1:
                data_types[key] = el.tag
            if key not in samples:
                sample_order.append(key)
            samples[key] = _sample_source(el, key)
        has_list = has_list or el.tag == "List"
        name, to_name = attrib.get("name"), attrib.get("toName")
        if name and to_name and el.tag not in _NOT_CONTROLS:
            control_els[name] = el
            labels.setdefault(name, {})
        elif name and value:
            objects[name] = ObjectTag(
                name=name,
                tag=el.tag,
                value=value.lstrip("$"),
                is_variable=value.startswith("$"),
                attrs=_frozen(attrib),
            )
        else:
            visuals.append(VisualTag(tag=el.tag, attrs=_frozen(attrib)))
        if el.tag in LABEL_TAGS:
            label = attrib.get("alias") or attrib.get("value")
            owner = next(
                (a.get("name") for a in el.iterancestors() if a.get("name") in control_els),
                None,
            )
            if label and owner is not None:
                labels[owner][label] = _frozen(attrib)
    controls: dict[str, ControlTag] = {}
    for name, el in control_els.items():
        targets = tuple((el.get("toName") or "").split(","))
        for target in targets:
            if target not in objects:
                raise fail(
                    TO_NAME_NOT_OBJECT,
                    f'"to_name={target} is specified for output tag name={name}, '
                    "but we can't find it among input tags\"",
                    el,
                    "toName",
                )
        controls[name] = ControlTag(
            name=name,
            tag=el.tag,
            to_name=targets,
            inputs=tuple(objects[t] for t in targets),
            labels=tuple(labels[name]),
            labels_attrs=MappingProxyType(labels[name]),
            attrs=_frozen(el.attrib),
        )
    full = _full_form(text, root)
    return LabelConfig(
        text=text,
        full=full,
        line=full.replace("\n", "").replace("\r", ""),
        objects=MappingProxyType(objects),
        controls=MappingProxyType(controls),
        visuals=tuple(visuals),
        data_types=MappingProxyType(data_types),
        sample_sources=tuple(samples[k] for k in sample_order),
        export_formats=_export_formats(controls),
        import_formats=_import_formats(data_types, has_list),
        type_checks=tuple(
            (key, ACCEPTED_TYPES.get(tag, DEFAULT_ACCEPTED_TYPES))
            for key, tag in data_types.items()
        ),
        schema_tuples=frozenset(c.schema_tuple for c in controls.values()),
    )


def _full_form(text: str, root: etree._Element) -> str:
    """``label_config_full`` (§7.4): without comments. As in the original, a config that has
    comments is re-serialised as HTML (explicit closing tags; a removed comment takes the
    text after it along). Mutates ``root``: call last."""
    comments = cast(list[etree._Element], root.xpath("//comment()"))
    if not comments:
        return text
    for comment in comments:
        parent = comment.getparent()
        if parent is not None:
            parent.remove(comment)
    return etree.tostring(root, method="html", encoding="unicode")
