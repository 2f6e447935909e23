"""Labeling config types and queries: validation, the parsed model, sample tasks."""

from __future__ import annotations

from enum import Enum

import strawberry

from schema.context import Info
from schema.permissions import IsAdmin, IsAnnotator, inherits_access
from schema.scalars import JSON
from server.principal import Role
from server.services import projects as project_service
from server.services.config import issues as config_issues
from server.services.config import sample_tasks
from server.services.config.derived_schema import BrokenCompletion as BrokenCompletionRow
from server.services.config.issues import ConfigIssue
from server.services.config.label_config import parse
from server.services.config.model import LabelConfig


@strawberry.enum(description="Why a labeling config is refused, in validation order.")
class ConfigErrorCode(Enum):
    NOT_A_STRING = config_issues.NOT_A_STRING
    TOO_LARGE = config_issues.TOO_LARGE
    FORBIDDEN_XML = strawberry.enum_value(
        config_issues.FORBIDDEN_XML, description="A DOCTYPE or entity declaration."
    )
    XML_SYNTAX = config_issues.XML_SYNTAX
    TOO_DEEP = config_issues.TOO_DEEP
    STRUCTURE = strawberry.enum_value(
        config_issues.STRUCTURE, description="A required attribute or child is missing."
    )
    DUPLICATE_NAME = config_issues.DUPLICATE_NAME
    UNKNOWN_TO_NAME = config_issues.UNKNOWN_TO_NAME
    TO_NAME_NOT_OBJECT = config_issues.TO_NAME_NOT_OBJECT
    MISSING_DATA_KEY = strawberry.enum_value(
        config_issues.MISSING_DATA_KEY,
        description="A control reads a data key that not every task has.",
    )
    ORPHANED_RESULTS = strawberry.enum_value(
        config_issues.ORPHANED_RESULTS,
        description="Stored results name a control/object/type the config lacks.",
    )
    ORPHANED_CONTROL = config_issues.ORPHANED_CONTROL
    ORPHANED_LABELS = strawberry.enum_value(
        config_issues.ORPHANED_LABELS,
        description="Stored results use labels the control no longer has.",
    )


@inherits_access(Role.ADMIN)
@strawberry.type(description="One reason a labeling config is refused.")
class ConfigError:
    message: str = strawberry.field(description="Label Studio's message.")
    code: ConfigErrorCode
    tag: str | None = strawberry.field(description="The offending tag, when one is to blame.")
    attribute: str | None = strawberry.field(description="The offending attribute.")
    line: int | None = strawberry.field(description="Line of the offending tag in the config.")

    @classmethod
    def of(cls, issue: ConfigIssue) -> ConfigError:
        return cls(
            message=issue.message,
            code=ConfigErrorCode(issue.code),
            tag=issue.tag,
            attribute=issue.attribute,
            line=issue.line,
        )


@inherits_access(Role.ADMIN)
@strawberry.type(description="Outcome of validating a labeling config.")
class ConfigValidation:
    ok: bool
    errors: list[ConfigError]


@inherits_access(Role.ADMIN)
@strawberry.type(description="An existing completion that a new config could not load.")
class BrokenCompletion:
    completion_id: int
    task_id: int
    reasons: list[str]

    @classmethod
    def of(cls, row: BrokenCompletionRow) -> BrokenCompletion:
        return cls(completion_id=row.completion_id, task_id=row.task_id, reasons=list(row.reasons))


@inherits_access(Role.ADMIN)
@strawberry.type(description="What saving a labeling config would do to a project's data.")
class ConfigChangeImpact:
    ok: bool = strawberry.field(description="True when `setLabelConfig` would accept it.")
    errors: list[ConfigError] = strawberry.field(
        description="Every reason it would be refused (the first is Label Studio's answer)."
    )
    broken_completion_count: int = strawberry.field(
        description="How many stored completions would no longer load."
    )
    broken_completions: list[BrokenCompletion] = strawberry.field(
        description="The first of them, by ascending id."
    )


@inherits_access(Role.ANNOTATOR)
@strawberry.type(description="An object tag: shows task data.")
class ObjectTag:
    name: str
    tag: str
    value: str = strawberry.field(description="The data key (without `$`) or a literal value.")
    is_variable: bool = strawberry.field(description="True when `value` was a `$variable`.")


@inherits_access(Role.ANNOTATOR)
@strawberry.type(description="A control tag: produces results for objects.")
class ControlTag:
    name: str
    tag: str
    to_name: list[str]
    result_type: str = strawberry.field(description="The `type` of the results it produces.")
    labels: list[str] = strawberry.field(description="Label texts (alias or value).")


@inherits_access(Role.ANNOTATOR)
@strawberry.type(description="A parsed labeling config: what the server derives from the XML.")
class ParsedLabelConfig:
    model: strawberry.Private[LabelConfig]

    @strawberry.field
    def objects(self) -> list[ObjectTag]:
        return [
            ObjectTag(name=o.name, tag=o.tag, value=o.value, is_variable=o.is_variable)
            for o in self.model.objects.values()
        ]

    @strawberry.field
    def controls(self) -> list[ControlTag]:
        return [
            ControlTag(
                name=c.name,
                tag=c.tag,
                to_name=list(c.to_name),
                result_type=c.result_type,
                labels=list(c.labels),
            )
            for c in self.model.controls.values()
        ]

    @strawberry.field(description="Tags of the other elements (layout, labels, choices), in order.")
    def visual_tags(self) -> list[str]:
        return [v.tag for v in self.model.visuals]

    @strawberry.field(description="Data keys the config reads, with the tag that shows each.")
    def data_types(self) -> JSON:
        return dict(self.model.data_types)

    @strawberry.field(
        description="Label Studio's parsed config (output schema): control name -> type, "
        "to_name, inputs, labels, labels_attrs."
    )
    def output_schema(self) -> JSON:
        return self.model.parsed_config()

    @strawberry.field(description="Export formats this config allows, in Label Studio's order.")
    def export_formats(self) -> list[str]:
        return list(self.model.export_formats)

    @strawberry.field(description="File types tasks can be imported from (json, csv, tsv, txt).")
    def import_formats(self) -> list[str]:
        return list(self.model.import_formats)

    @strawberry.field(description="The config without comments and newlines.")
    def line(self) -> str:
        return self.model.line


@inherits_access(Role.ADMIN)
@strawberry.type(description="Sample tasks as an import file.")
class SampleTaskFile:
    filename: str
    media_type: str
    content: str

    @classmethod
    def of(cls, sample: sample_tasks.SampleFile) -> SampleTaskFile:
        return cls(filename=sample.filename, media_type=sample.media_type, content=sample.content)


@strawberry.type
class LabelConfigQuery:
    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Check a labeling config without saving it: the config itself and, unless "
        "`checkProjectData` is false, whether the project's tasks and completions fit it.",
    )
    def validate_label_config(
        self,
        info: Info,
        label_config: str,
        project_id: int | None = None,
        check_project_data: bool = True,
    ) -> ConfigValidation:
        pid = info.context.resolve_project_id(project_id) if check_project_data else None
        if pid is not None and not info.context.is_stored(pid):
            pid = None  # a session's project not stored yet has no data to check
        issues = project_service.label_config_issues(
            label_config, info.context.settings.max_label_config_size, pid
        )
        return ConfigValidation(ok=not issues, errors=[ConfigError.of(i) for i in issues])

    @strawberry.field(
        permission_classes=[IsAnnotator],
        description="Parse a labeling config. Invalid configs fail with extensions.code "
        "INVALID_LABEL_CONFIG.",
    )
    def parse_label_config(self, info: Info, label_config: str) -> ParsedLabelConfig:
        max_bytes = info.context.settings.max_label_config_size
        return ParsedLabelConfig(model=parse(label_config, max_bytes))

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Sample task data for a labeling config (the editor preview set), with the "
        "config's `<!-- {...} -->` task over it. Depends only on the config.",
    )
    def sample_task(self, info: Info, label_config: str) -> JSON:
        return project_service.sample_task(
            label_config, info.context.settings.max_label_config_size
        )

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="`/samples/time-series.csv`: 100 random rows for a time series sample.",
    )
    def sample_time_series_csv(
        self,
        time: str,
        values: str,
        sep: str | None = None,
        time_format: str | None = None,
    ) -> str:
        return sample_tasks.time_series_csv(time, values, sep, time_format)
