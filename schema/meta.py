"""Server health and version."""

from __future__ import annotations

import strawberry

from server.version import LS_BACKEND_VERSION, __version__


@strawberry.type
class BuildInfo:
    branch: str
    commit: str
    date: str
    message: str


@strawberry.type
class VersionInfo:
    labelgraph: str
    label_studio_backend: str
    label_studio_frontend: BuildInfo
    label_studio_datamanager: BuildInfo


_NO_BUNDLED_UI = BuildInfo(branch="", commit="", date="", message="not bundled")


@strawberry.type
class MetaQuery:
    @strawberry.field(description='"up" while the server can answer.')
    def health(self) -> str:
        return "up"

    @strawberry.field
    def version(self) -> VersionInfo:
        return VersionInfo(
            labelgraph=__version__,
            label_studio_backend=LS_BACKEND_VERSION,
            label_studio_frontend=_NO_BUNDLED_UI,
            label_studio_datamanager=_NO_BUNDLED_UI,
        )
