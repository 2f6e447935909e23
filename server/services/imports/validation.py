"""Task validation against a labeling config (rest-api.md §6.3), with Label Studio's messages.

The data keys and the JSON types each accepts come from the parsed config
(``LabelConfig.type_checks``: its ``data_types`` and labeling-config.md §4.2's rules).

Input items are wrapped (``{"data": {...}, "completions": [...], ...}``) or bare (the data
itself). The output is the normalised wrapped form. Every failing item adds one message;
any failure rejects the whole batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from server.errors import DomainError
from server.services.config.model import UNDEFINED_KEY, LabelConfig

MAX_MESSAGES = 100
WRAPPED_SUFFIX = ' [assume: item["data"] = task root with values]'
BARE_SUFFIX = " [assume: item = task root with values] "

ROOT_MESSAGE = 'Task root must be dict with "data", "meta", "completions", "predictions" fields'


@dataclass
class ValidTask:
    data: dict[str, Any]
    completions: list[dict[str, Any]]
    predictions: list[dict[str, Any]]
    meta: Any = None


class ItemError(Exception):
    pass


def _expected(types: tuple[type, ...]) -> str:
    return '"' + '"or "'.join(t.__name__ for t in types) + '"'


def rename_undefined(data: Any, config: LabelConfig) -> Any:
    """Move the ``$undefined$`` placeholder to the config's first data key (§4.4)."""
    if not isinstance(data, dict) or UNDEFINED_KEY not in data:
        return data
    first = config.first_data_key
    if first is not None:
        data = dict(data)
        data.setdefault(first, data.pop(UNDEFINED_KEY))
        data.pop(UNDEFINED_KEY, None)
    return data


def check_data(data: Any, config: LabelConfig, suffix: str) -> dict[str, Any]:
    if data is None:
        raise ItemError("Task is empty (None)" + suffix)
    if not isinstance(data, dict | list):
        raise ItemError("Task[data] must be (<class 'dict'>, <class 'list'>)")
    for key, types in config.type_checks:
        if not isinstance(data, dict) or key not in data:
            raise ItemError(f'"{key}" key is expected in task data' + suffix)
        value = data[key]
        if not isinstance(value, types):
            raise ItemError(
                f'data["{key}"]={value} is a "{type(value).__name__}" type, '
                f"but expect {_expected(types)}" + suffix
            )
    if not isinstance(data, dict):
        # A list is accepted as data only by configs without data keys; store it keyed.
        return {UNDEFINED_KEY: data}
    return data


def _check_results(items: Any, field: str, kind: str) -> list[dict[str, Any]]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise ItemError(f"Task[{field}] must be <class 'list'>")
    for entry in items:
        if not isinstance(entry, dict) or "result" not in entry:
            raise ItemError(f'{kind} must have "result" fields')
        if not isinstance(entry["result"], list):
            raise ItemError(f'"result" field in {kind.lower()} must be list')
    return items


def validate_item(item: Any, config: LabelConfig) -> ValidTask:
    if not isinstance(item, dict):
        raise ItemError(ROOT_MESSAGE)
    if "data" in item:
        data = rename_undefined(item["data"], config)
        data = check_data(data, config, WRAPPED_SUFFIX)
        completions = _check_results(item.get("completions"), "completions", "Completion")
        predictions = _check_results(item.get("predictions"), "predictions", "Prediction")
        meta = item.get("meta")
        if meta is not None and not isinstance(meta, dict | list):
            raise ItemError("Task[meta] must be (<class 'dict'>, <class 'list'>)")
        return ValidTask(data=data, completions=completions, predictions=predictions, meta=meta)
    data = check_data(rename_undefined(item, config), config, BARE_SUFFIX)
    return ValidTask(data=data, completions=[], predictions=[])


def validate_tasks(items: Iterable[Any], config: LabelConfig) -> list[ValidTask]:
    """Validate every item; raise ``invalid_tasks`` listing LS's messages if any fails."""
    valid: list[ValidTask] = []
    errors: list[str] = []
    for index, item in enumerate(items):
        try:
            valid.append(validate_item(item, config))
        except ItemError as exc:
            if len(errors) < MAX_MESSAGES:
                errors.append(f"Error   at item {index}: {exc} :: {item!r}")
    if errors:
        raise DomainError("invalid_tasks", errors[0], {"errors": errors})
    return valid
