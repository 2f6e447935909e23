"""Labeling config validation steps 1-4 (§6.2): safe XML parsing, structure, names.

XML is parsed with entity resolution, DTD loading and network access off, with a size limit
and a depth limit, and a document type declaration is refused before lxml sees the text, so a
hostile config can neither read files, open connections nor exhaust memory. The structural
rules are those of the original's JSON schema (with a single ``<Choice>`` and numeric-looking
values accepted, see docs/compat.md); then names must be unique and ``toName`` targets known.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lxml import etree

from server.services.config.issues import (
    DUPLICATE_NAME,
    FORBIDDEN_XML,
    NOT_A_STRING,
    STRUCTURE,
    TOO_DEEP,
    TOO_LARGE,
    UNKNOWN_TO_NAME,
    XML_SYNTAX,
    ConfigIssue,
    LabelConfigError,
    fail,
)

MAX_DEPTH = 64

_NAME_RE = re.compile(r'name="([^"]*)"')
_TONAME_RE = re.compile(r'toName="([^"]*)"')
_PROLOG_ITEM = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->", re.S)
_NAMED_OBJECTS = ("Image", "Text", "HyperText")
LABEL_TAGS = frozenset({"Label", "Choice"})


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


def parse_xml(text: Any, max_bytes: int | None) -> etree._Element:
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
    doctype = root.getroottree().docinfo.doctype  # type: ignore[union-attr]  # not in lxml-stubs
    if doctype:  # pragma: no cover - refused above
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
            raise fail(TOO_DEEP, f"Label config is nested deeper than {MAX_DEPTH} levels", node)
        stack.extend((child, depth + 1) for child in node if isinstance(child.tag, str))


def elements(root: etree._Element) -> Iterator[etree._Element]:
    return root.iter(etree.Element)  # elements only: no comments or processing instructions


# --- step 2: structure (the original's JSON schema) ------------------------------------------


def _structure_error(path: str, reason: str, el: etree._Element, attribute: str | None) -> None:
    message = f"Validation failed on {path}: {reason}".replace("@", "")
    raise fail(STRUCTURE, message, el, attribute)


def _require(
    el: etree._Element, attrs: tuple[str, ...], siblings: int, index: int, path_tag: str
) -> None:
    """The ``anyOf [array of X, X]`` rule of an object/label tag: the first missing attribute,
    at the failing item's path when the tag repeats. (Label Studio with jsonschema 3.2 said
    "<element> is not of type 'array'" for a single tag; with today's jsonschema it names the
    missing attribute, as here: docs/compat.md.)"""
    for attr in attrs:
        if attr not in el.attrib:
            path = "" if siblings == 1 else f"{path_tag}/{index}"
            _structure_error(path, f"'{attr}' is a required property", el, attr)


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
        if item_tag == "Label" and len(items) == 1:  # Label: anyOf [array, one Label]
            _structure_error("", "'value' is a required property", item, "value")
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
        elif child.tag in LABEL_TAGS and nested:
            _require(child, ("value",), len(group), index, child.tag)
        elif child.tag == "View":
            _check_view(child, nested=True)


def check_structure(root: etree._Element) -> None:
    """§6.2 step 2: only a ``View`` root and the Views nested in it are constrained."""
    if root.tag == "View":
        _check_view(root, nested=False)


# --- steps 3-4: names ------------------------------------------------------------------------


def _element_named(root: etree._Element, attribute: str, value: str) -> etree._Element | None:
    for el in elements(root):
        if el.get(attribute) == value:
            return el
    return None


def check_names(text: str, root: etree._Element) -> None:
    names = _NAME_RE.findall(text)
    if len(set(names)) != len(names):
        duplicate = next(n for i, n in enumerate(names) if n in names[:i])
        raise fail(
            DUPLICATE_NAME,
            f"Label config contains non-unique names {names!r}",
            _element_named(root, "name", duplicate),
            "name",
        )
    known = set(names)
    for to_names in _TONAME_RE.findall(text):
        for part in to_names.split(","):
            if part not in known:
                raise fail(
                    UNKNOWN_TO_NAME,
                    f'toName="{part}" not found in names: {sorted(known)!r}',
                    _element_named(root, "toName", to_names),
                    "toName",
                )
