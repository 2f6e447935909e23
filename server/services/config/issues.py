"""Why a labeling config is refused: the issue codes, ConfigIssue and LabelConfigError."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.errors import DomainError

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


def fail(code: str, message: str, el: Any = None, attribute: str | None = None) -> LabelConfigError:
    tag = el.tag if el is not None and isinstance(el.tag, str) else None
    line = el.sourceline if el is not None else None
    return LabelConfigError(ConfigIssue(code, message, tag, attribute, line))
