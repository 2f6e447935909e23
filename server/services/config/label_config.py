"""Labeling config XML -> an immutable model; the config validation pipeline.

This is the only module that reads labeling-config XML (``labeling-config.md``). Every other
part of the server asks the :class:`LabelConfig` that :func:`parse` returns: object tags,
control tags (targets, labels, result type), visual tags, data keys and their tag types
(``data_types``), the output schema (``parsed_config``), the export formats and import file
types the config allows, the full and one-line forms and what sample tasks need.

Pure functions, no database. XML is parsed with entity resolution, DTD loading and network
access off, with a size limit and a depth limit, and a document type declaration is refused
before lxml sees the text, so a hostile config can neither read files, open connections nor
exhaust memory.

Validation follows ``labeling-config.md`` §6.2 in order, first failure wins, with Label
Studio's messages: well-formed XML, the structural rules of the original's JSON schema (with
a single ``<Choice>`` and numeric-looking values accepted, see docs/compat.md), unique names,
``toName`` targets, control -> object resolution. The checks against a project's tasks and
completions (§7) live in :mod:`server.services.config.derived_schema`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from lxml import etree

from server.errors import DomainError

DEFAULT_MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
EMPTY_CONFIG = "<View></View>"
UNDEFINED_KEY = "$undefined$"

# Issue codes (GraphQL ``ConfigErrorCode``), in pipeline order.
NOT_A_STRING = "not_a_string"
TOO_LARGE = "too_large"
FORBIDDEN_XML = "forbidden_xml"
XML_SYNTAX = "xml_syntax"
TOO_DEEP = "too_deep"
STRUCTURE = "structure"
DUPLICATE_NAME = "duplicate_name"
UNKNOWN_TO_NAME = "unknown_to_name"
TO_NAME_NOT_OBJECT = "to_name_not_object"
MISSING_DATA_KEY = "missing_data_key"
ORPHANED_RESULTS = "orphaned_results"
ORPHANED_CONTROL = "orphaned_control"
ORPHANED_LABELS = "orphaned_labels"

_NAME_RE = re.compile(r'name="([^"]*)"')
_TONAME_RE = re.compile(r'toName="([^"]*)"')
_PROLOG_ITEM = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->", re.S)
_NAMED_OBJECTS = ("Image", "Text", "HyperText")
_NOT_CONTROLS = frozenset({"Filter"})
_LABEL_TAGS = frozenset({"Label", "Choice"})

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


# --- issues ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigIssue:
    """One reason a config is refused: Label Studio's message plus where it is."""

    code: str
    message: str
    tag: str | None = None
    attribute: str | None = None
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form (GraphQL ``extensions.configErrors``): ``code`` as the enum name."""
        return {
            "message": self.message,
            "code": self.code.upper(),
            "tag": self.tag,
            "attribute": self.attribute,
            "line": self.line,
        }


class LabelConfigError(DomainError):
    """An invalid config; ``details`` has LS's ``errors`` list and the structured issues."""

    def __init__(self, issue: ConfigIssue | str):
        if isinstance(issue, str):
            issue = ConfigIssue(XML_SYNTAX, issue)
        self.issue = issue
        super().__init__(
            "invalid_label_config",
            issue.message,
            {"errors": [issue.message], "configErrors": [issue.as_dict()]},
        )


def _fail(
    code: str, message: str, el: Any = None, attribute: str | None = None
) -> LabelConfigError:
    tag = el.tag if el is not None and isinstance(el.tag, str) else None
    line = el.sourceline if el is not None else None
    return LabelConfigError(ConfigIssue(code, message, tag, attribute, line))


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


# --- XML -------------------------------------------------------------------------------------


def _declares_dtd(text: str) -> bool:
    """True when the prolog holds a document type declaration (the only place one can be)."""
    pos = 1 if text.startswith("\ufeff") else 0
    while match := _PROLOG_ITEM.match(text, pos):
        if match.end() == pos:
            break
        pos = match.end()
    return text.startswith("<!DOCTYPE", pos)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
        recover=False,
        collect_ids=False,
        encoding="utf-8",
    )


def _parse_xml(text: Any, max_bytes: int | None) -> etree._Element:
    if not isinstance(text, str):
        raise LabelConfigError(ConfigIssue(NOT_A_STRING, "can only parse strings"))
    data = text.encode("utf-8", "surrogatepass")
    if max_bytes is not None and len(data) > max_bytes:
        raise LabelConfigError(
            ConfigIssue(
                TOO_LARGE,
                f"Label config is too large: {len(data)} bytes, the limit is {max_bytes} bytes",
            )
        )
    if _declares_dtd(text):
        raise LabelConfigError(
            ConfigIssue(
                FORBIDDEN_XML,
                "Label config must not contain a DOCTYPE: document type definitions and "
                "entity declarations are not allowed (they could read files, open network "
                "connections or expand without limit)",
            )
        )
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if isinstance(exc.lineno, int) else None
        raise LabelConfigError(ConfigIssue(XML_SYNTAX, _syntax_message(exc), line=line)) from None
    if root is None:  # pragma: no cover - lxml raises for empty documents
        raise LabelConfigError(
            ConfigIssue(XML_SYNTAX, "Document is empty, line 1, column 1 (<string>, line 1)")
        )
    if root.getroottree().docinfo.doctype:  # pragma: no cover - refused above
        raise LabelConfigError(
            ConfigIssue(FORBIDDEN_XML, "Label config must not contain a DOCTYPE")
        )
    _check_depth(root)
    return root


def _syntax_message(exc: etree.XMLSyntaxError) -> str:
    message = str(exc)
    if "(<string>, line" not in message:
        message = f"{message} (<string>, line {exc.lineno or 1})"
    return message


def _check_depth(root: etree._Element) -> None:
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _fail(TOO_DEEP, f"Label config is nested deeper than {MAX_DEPTH} levels", node)
        stack.extend((child, depth + 1) for child in node if isinstance(child.tag, str))


def _elements(root: etree._Element) -> Iterator[etree._Element]:
    return root.iter(etree.Element)  # elements only: no comments or processing instructions


# --- step 2: structure (the original's JSON schema) ------------------------------------------


def _coerce(value: str) -> Any:
    """xmljson's value coercion, for messages that show an element as the original did."""
    if value.lower() == "true":
        return True
    if value.lower() == "false":
        return False
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
        if float("-inf") < number < float("inf"):
            return number
    except ValueError:
        pass
    return value


def _badgerfish(el: etree._Element) -> str:
    """``repr`` of the element as the original's OrderedDict (Python 3.8 form)."""
    items: list[tuple[str, str]] = [(f"@{k}", repr(_coerce(v))) for k, v in el.attrib.items()]
    text = (el.text or "").strip()
    if text:
        items.append(("$", repr(_coerce(text))))
    children = [c for c in el if isinstance(c.tag, str)]
    counts: dict[str, int] = {}
    for child in children:
        counts[child.tag] = counts.get(child.tag, 0) + 1
    grouped: dict[str, list[str]] = {}
    for child in children:
        grouped.setdefault(child.tag, []).append(_badgerfish(child))
    for tag, reprs in grouped.items():
        items.append((tag, reprs[0] if counts[tag] == 1 else "[" + ", ".join(reprs) + "]"))
    if not items:
        return "OrderedDict()"
    return "OrderedDict([" + ", ".join(f"({k!r}, {v})" for k, v in items) + "])"


def _structure_error(path: str, reason: str, el: etree._Element, attribute: str | None) -> None:
    message = f"Validation failed on {path}: {reason}".replace("@", "")
    raise _fail(STRUCTURE, message, el, attribute)


def _require(
    el: etree._Element, attrs: tuple[str, ...], siblings: int, index: int, path_tag: str
) -> None:
    """The ``anyOf [array of X, X]`` rule of an object/label tag: as a single element a
    failure reads "… is not of type 'array'"; in an array, the failing item's path."""
    for attr in attrs:
        if attr not in el.attrib:
            if siblings == 1:
                _structure_error("", f"{_badgerfish(el)} is not of type 'array'", el, attr)
            _structure_error(f"{path_tag}/{index}", f"'{attr}' is a required property", el, attr)


def _check_control(el: etree._Element, item_tag: str, siblings: int, index: int) -> None:
    """``Choices``/``Labels``: name, toName and item (or View) children; items need a value.
    A single ``Choice`` is accepted (compat Q-22)."""
    path = "" if siblings == 1 else f"{el.tag}/{index}"
    for attr in ("name", "toName"):
        if attr not in el.attrib:
            _structure_error(path, f"'{attr}' is a required property", el, attr)
    kids = [k for k in el if isinstance(k.tag, str)]
    if not any(k.tag in (item_tag, "View") for k in kids):
        _structure_error(path, f"'{item_tag}' is a required property", el, None)
    items = [k for k in kids if k.tag == item_tag]
    for i, item in enumerate(items):
        if "value" in item.attrib:
            continue
        if item_tag == "Label" and len(items) == 1:
            _structure_error("", f"{_badgerfish(item)} is not of type 'array'", item, "value")
        where = item_tag if len(items) == 1 else f"{item_tag}/{i}"
        _structure_error(where, "'value' is a required property", item, "value")
    for kid in kids:
        if kid.tag == "View":
            _check_view(kid, nested=True)


def _check_view(view: etree._Element, nested: bool) -> None:
    children = [c for c in view if isinstance(c.tag, str)]
    by_tag: dict[str, list[etree._Element]] = {}
    for child in children:
        by_tag.setdefault(child.tag, []).append(child)
    for child in children:
        group = by_tag[child.tag]
        index = group.index(child)
        if child.tag in _NAMED_OBJECTS:
            _require(child, ("name", "value"), len(group), index, child.tag)
        elif child.tag == "Choices":
            _check_control(child, "Choice", len(group), index)
        elif child.tag == "Labels":
            _check_control(child, "Label", len(group), index)
        elif child.tag in _LABEL_TAGS and nested:
            _require(child, ("value",), len(group), index, child.tag)
        elif child.tag == "View":
            _check_view(child, nested=True)


def _check_structure(root: etree._Element) -> None:
    """§6.2 step 2: only a ``View`` root and the Views nested in it are constrained."""
    if root.tag == "View":
        _check_view(root, nested=False)


# --- steps 3-4: names ------------------------------------------------------------------------


def _element_named(root: etree._Element, attribute: str, value: str) -> etree._Element | None:
    for el in _elements(root):
        if el.get(attribute) == value:
            return el
    return None


def _check_names(text: str, root: etree._Element) -> None:
    names = _NAME_RE.findall(text)
    if len(set(names)) != len(names):
        duplicate = next(n for i, n in enumerate(names) if n in names[:i])
        raise _fail(
            DUPLICATE_NAME,
            f"Label config contains non-unique names {names!r}",
            _element_named(root, "name", duplicate),
            "name",
        )
    known = set(names)
    for to_names in _TONAME_RE.findall(text):
        for part in to_names.split(","):
            if part not in known:
                raise _fail(
                    UNKNOWN_TO_NAME,
                    f'toName="{part}" not found in names: {sorted(known)!r}',
                    _element_named(root, "toName", to_names),
                    "toName",
                )


# --- step 5: the model -----------------------------------------------------------------------


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


def _build(text: str, root: etree._Element) -> LabelConfig:
    data_types: dict[str, str] = {}
    samples: dict[str, SampleSource] = {}
    sample_order: list[str] = []
    control_els: dict[str, etree._Element] = {}
    objects: dict[str, ObjectTag] = {}
    labels: dict[str, dict[str, Mapping[str, str]]] = {}
    visuals: list[VisualTag] = []
    has_list = False
    for el in _elements(root):
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
        if el.tag in _LABEL_TAGS:
            label = attrib.get("alias") or attrib.get("value")
            owner = next(
                (a.get("name") for a in el.iterancestors() if a.get("name") in control_els),
                None,
            )
            if label and owner is not None:
                labels[owner][label] = _frozen(attrib)
    controls: dict[str, ControlTag] = {}
    for name, el in control_els.items():
        targets = tuple(el.get("toName").split(","))
        for target in targets:
            if target not in objects:
                raise _fail(
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
    comments = root.xpath("//comment()")
    if not comments:
        return text
    for comment in comments:
        parent = comment.getparent()
        if parent is not None:
            parent.remove(comment)
    return etree.tostring(root, method="html", encoding="unicode")


def strip_template_metadata(text: str) -> str:
    """Drop a template's leading metadata comment, as the template picker does (§8.5):
    everything up to and including the first ``-->`` followed by a newline."""
    if not text.lstrip().startswith("<!--"):
        return text
    end = text.find("-->\n")
    return text if end < 0 else text[end + 4 :]


def normalise(text: str) -> str:
    """The stored form of a submitted config: CRLF -> LF (§7.3)."""
    return text.replace("\r\n", "\n")


def parse_uncached(text: Any, max_bytes: int | None = DEFAULT_MAX_BYTES) -> LabelConfig:
    """Run the validation pipeline (§6.2 steps 1-5) and build the model.

    Raises :class:`LabelConfigError` with Label Studio's message for the first failure.
    ``max_bytes=None`` skips the size limit (configs already stored)."""
    root = _parse_xml(text, max_bytes)
    _check_structure(root)
    _check_names(text, root)
    return _build(text, root)


@functools.lru_cache(maxsize=32)
def parse(text: str, max_bytes: int | None = DEFAULT_MAX_BYTES) -> LabelConfig:
    """:func:`parse_uncached`, remembering the last few valid configs."""
    return parse_uncached(text, max_bytes)


def validation_issues(text: Any, max_bytes: int | None = DEFAULT_MAX_BYTES) -> list[ConfigIssue]:
    """[] when ``text`` is a valid config, else the (single) issue that refuses it."""
    try:
        parse(text, max_bytes) if isinstance(text, str) else parse_uncached(text, max_bytes)
    except LabelConfigError as exc:
        return [exc.issue]
    return []


def validation_errors(text: Any, max_bytes: int | None = DEFAULT_MAX_BYTES) -> list[str]:
    """[] when ``text`` is a valid config, else Label Studio's list of messages."""
    return [issue.message for issue in validation_issues(text, max_bytes)]
