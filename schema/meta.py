"""Server health and version."""

from __future__ import annotations

import strawberry

from schema.permissions import IsAnnotator, Public, inherits_access
from server.principal import Role
from server.version import LS_BACKEND_VERSION, __version__
from server.web_ui import editor_build_info


@inherits_access(Role.ANNOTATOR)
@strawberry.type
class BuildInfo:
    branch: str
    commit: str
    date: str
    message: str


@inherits_access(Role.ANNOTATOR)
@strawberry.type
class VersionInfo:
    labelgraph: str
    label_studio_backend: str
    label_studio_frontend: BuildInfo
    label_studio_datamanager: BuildInfo


_NO_BUNDLED_UI = BuildInfo(branch="", commit="", date="", message="not bundled")


def _editor() -> BuildInfo:
    """Label Studio's editor as the web app bundles it (its data manager is not bundled)."""
    info = editor_build_info()
    return _NO_BUNDLED_UI if info is None else BuildInfo(**info)


@strawberry.type
class MetaQuery:
    @strawberry.field(permission_classes=[Public], description='"up" while the server can answer.')
    def health(self) -> str:
        return "up"

    @strawberry.field(permission_classes=[IsAnnotator])
    def version(self) -> VersionInfo:
        return VersionInfo(
            labelgraph=__version__,
            label_studio_backend=LS_BACKEND_VERSION,
            label_studio_frontend=_editor(),
            label_studio_datamanager=_NO_BUNDLED_UI,
        )
