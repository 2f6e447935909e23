"""Labeling config XML -> an immutable model; the config validation pipeline.

Pure functions, no database. Every other module asks :func:`parse` and never touches XML.
XML is parsed with entity resolution, DTD loading and network access off, and with size and
depth limits, so a hostile config can neither read files nor exhaust memory.

Validation follows ``labeling-config.md`` §6.2: well-formed XML, structural checks of the
common tags, unique names, ``toName`` targets, control -> object resolution. The first failure
wins; its message is Label Studio's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from lxml import etree

from server.errors import DomainError

MAX_CONFIG_BYTES = 1024 * 1024
MAX_CONFIG_DEPTH = 64
EMPTY_CONFIG = "<View></View>"

_NAME_RE = re.compile(r'name="([^"]*)"')
_TONAME_RE = re.compile(r'toName="([^"]*)"')
_OBJECTS_NEEDING_NAME_VALUE = ("Image", "Text", "HyperText")


@dataclass(frozen=True)
class ControlTag:
    name: str
    tag: str
    to_name: tuple[str, ...]
    labels: tuple[str, ...]

    @property
    def result_type(self) -> str:
        return self.tag.lower()


@dataclass(frozen=True)
class ObjectTag:
    name: str
    tag: str
    value: str


@dataclass(frozen=True, eq=False)
class LabelConfig:
    """What the server knows about a labeling config."""

    text: str
    line: str
    data_types: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    controls: Mapping[str, ControlTag] = field(default_factory=lambda: MappingProxyType({}))
    objects: Mapping[str, ObjectTag] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def has_control_tags(self) -> bool:
        return bool(self.controls)

    @property
    def first_data_key(self) -> str | None:
        return next(iter(self.data_types), None)

    @property
    def is_empty(self) -> bool:
        return not self.controls and not self.data_types


class LabelConfigError(DomainError):
    def __init__(self, message: str):
        super().__init__("invalid_label_config", message, {"errors": [message]})


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        recover=False,
    )


def _parse_xml(text: str) -> etree._Element:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise LabelConfigError(f"Label config is larger than {MAX_CONFIG_BYTES} bytes")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise LabelConfigError("DTDs and entity declarations are not allowed in label configs")
    try:
        root = etree.fromstring(text.encode("utf-8", "surrogatepass"), _parser())
    except etree.XMLSyntaxError as exc:
        raise LabelConfigError(_libxml_message(exc)) from None
    except ValueError as exc:
        raise LabelConfigError(str(exc)) from None
    if root is None:
        raise LabelConfigError("Document is empty, line 1, column 1 (<string>, line 1)")
    _check_depth(root)
    return root


def _libxml_message(exc: etree.XMLSyntaxError) -> str:
    msg = str(exc.msg if hasattr(exc, "msg") and exc.msg else exc)
    if "(<string>, line" not in msg:
        msg = f"{msg} (<string>, line {exc.lineno or 1})"
    return msg


def _check_depth(root: etree._Element) -> None:
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise LabelConfigError(f"Label config is nested deeper than {MAX_CONFIG_DEPTH} levels")
        stack.extend((child, depth + 1) for child in node if isinstance(child.tag, str))


def _elements(root: etree._Element) -> list[etree._Element]:
    return [el for el in root.iter() if isinstance(el.tag, str)]


def _check_structure(root: etree._Element) -> None:
    """Presence rules of the original's JSON schema (§6.2 step 2), with single
    ``Choice`` children accepted (compat Q-22)."""
    views = [el for el in _elements(root) if el.tag == "View"]
    for view in views:
        for child in view:
            if not isinstance(child.tag, str):
                continue
            attrs = dict(child.attrib)
            if child.tag in _OBJECTS_NEEDING_NAME_VALUE:
                for required in ("name", "value"):
                    if required not in attrs:
                        raise LabelConfigError(
                            f"Validation failed on : '{required}' is a required property"
                        )
            elif child.tag in ("Choices", "Labels"):
                item = "Choice" if child.tag == "Choices" else "Label"
                for required in ("name", "toName"):
                    if required not in attrs:
                        raise LabelConfigError(
                            f"Validation failed on : '{required}' is a required property"
                        )
                kids = [k.tag for k in child if isinstance(k.tag, str)]
                if item not in kids and "View" not in kids:
                    raise LabelConfigError(
                        f"Validation failed on : '{item}' is a required property"
                    )
                for kid in child:
                    if kid.tag == item and "value" not in kid.attrib:
                        raise LabelConfigError(
                            f"Validation failed on {item}: 'value' is a required property"
                        )
            elif child.tag in ("Choice", "Label") and view is not root and "value" not in attrs:
                raise LabelConfigError(
                    f"Validation failed on {child.tag}: 'value' is a required property"
                )


def _check_names(text: str) -> list[str]:
    names = _NAME_RE.findall(text)
    if len(set(names)) != len(names):
        raise LabelConfigError(f"Label config contains non-unique names {names!r}")
    known = set(names)
    for to_names in _TONAME_RE.findall(text):
        for part in to_names.split(","):
            if part not in known:
                raise LabelConfigError(f'toName="{part}" not found in names: {sorted(known)!r}')
    return names


def _build(text: str, root: etree._Element) -> LabelConfig:
    data_types: dict[str, str] = {}
    controls: dict[str, dict[str, Any]] = {}
    objects: dict[str, ObjectTag] = {}
    for el in _elements(root):
        value = el.get("value")
        if value is not None and len(value) > 1 and value.startswith("$"):
            data_types[value[1:]] = el.tag
        name, to_name = el.get("name"), el.get("toName")
        if name and to_name and el.tag != "Filter":
            controls[name] = {"tag": el.tag, "to_name": tuple(to_name.split(",")), "labels": []}
        elif name and value:
            objects[name] = ObjectTag(name=name, tag=el.tag, value=value.lstrip("$"))
        if el.tag in ("Label", "Choice"):
            label = el.get("alias") or el.get("value")
            owner = next(
                (a.get("name") for a in el.iterancestors() if a.get("name") in controls), None
            )
            if label is not None and owner is not None and label not in controls[owner]["labels"]:
                controls[owner]["labels"].append(label)
    for name, control in controls.items():
        for target in control["to_name"]:
            if target not in objects:
                raise LabelConfigError(
                    f'"to_name={target} is specified for output tag name={name}, '
                    "but we can't find it among input tags\""
                )
    frozen_controls = {
        name: ControlTag(name=name, tag=c["tag"], to_name=c["to_name"], labels=tuple(c["labels"]))
        for name, c in controls.items()
    }
    return LabelConfig(
        text=text,
        line=config_line(text),
        data_types=MappingProxyType(data_types),
        controls=MappingProxyType(frozen_controls),
        objects=MappingProxyType(objects),
    )


def config_line(text: str) -> str:
    """The one-line form: comments removed, newlines deleted (§7.4)."""
    without_comments = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return without_comments.replace("\r", "").replace("\n", "")


def normalise(text: str) -> str:
    return text.replace("\r\n", "\n")


@functools.lru_cache(maxsize=256)
def parse(text: str) -> LabelConfig:
    """Parse and validate ``text``; raise :class:`LabelConfigError` with LS's message."""
    if not isinstance(text, str):
        raise LabelConfigError("can only parse strings")
    root = _parse_xml(text)
    _check_structure(root)
    _check_names(text)
    return _build(text, root)


def validation_errors(text: str | None) -> list[str]:
    """[] when ``text`` is a valid config, else the list of LS messages."""
    if text is None:
        return ["can only parse strings"]
    try:
        parse(text)
    except LabelConfigError as exc:
        return list(exc.details["errors"])
    return []
