"""The Label Studio projects set up with the ML backend: their ids (kept in the session's folder), configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from frugalseg.active.objects.session.session_settings import SESSION_FILE
from frugalseg.app.http import RequestError
from frugalseg.app.label_config import LabelConfig, controls
from frugalseg.data.io import read_json, write_json_atomic

#: The projects set up with the backend, kept in the session's folder once it has one.
PROJECTS_FILE = "label_studio_projects.json"


class Projects:
    """The projects set up with the backend (their ids), and the labeling config each one's ``/setup`` gave.

    The ids are kept in ``label_studio_projects.json`` of the session's folder once it is a session. A
    webhook's project is its payload's (``id``, ``label_config``): one that no ``/setup`` named, whose
    payload's config has brushes, is set up by it. A backend restarted before the session's first
    annotation kept none of the ``/setup`` calls before (no folder to keep them in), and refused the
    annotations of a project Label Studio had connected.

    Args:
        folder: the session's folder.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        path = folder / PROJECTS_FILE
        self.ids: set[str] = {str(p) for p in read_json(path)} if path.is_file() else set()
        #: The ids the file holds (read once, then as this object last wrote them).
        self._saved = set(self.ids)
        #: Each project's config as its ``/setup`` gave it.
        self.configs: dict[str, LabelConfig] = {}

    def set_up(self, project: Any, schema: Any) -> None:
        """Set up ``project`` (``"<id>.<created timestamp>"``) with its labeling config ``schema``."""
        number = project_id(project)
        self.configs[number] = controls(schema)
        self.ids.add(number)
        self.save()

    def save(self) -> None:
        """Keep the ids in the session's folder, once it is a session's (after each annotation: no read)."""
        if self._saved != self.ids and (self.folder / SESSION_FILE).is_file():
            ids = set(self.ids)
            write_json_atomic(self.folder / PROJECTS_FILE, sorted(ids))
            self._saved = ids

    def of_webhook(self, project: dict[str, Any], element: str) -> LabelConfig | None:
        """A webhook's project's config: its payload's, else its ``/setup``'s (None: neither has brushes).

        Raises:
            RequestError: 404, a project none set up whose payload's config has no brushes.
        """
        number, config = str(project.get("id")), project.get("label_config")
        read = None
        if isinstance(config, str):
            try:
                read = controls(config)
            except RequestError:
                pass
        if number not in self.ids and (read is None or not number.isdigit()):
            raise RequestError(
                404, f"webhook of {element}: project {project.get('id')!r} is not set up with this "
                "backend (connect it in the project's Model settings)",
            )  # fmt: skip
        if number not in self.ids:
            self.ids.add(number)
            self.save()
        return read or self.configs.get(number)


def project_id(project: Any) -> str:
    """The project id of Label Studio's ``"<id>.<created timestamp>"``."""
    text = str(project or "")
    number = text.split(".", 1)[0]
    if not number.isdigit():
        raise RequestError(400, f"project: expected '<id>.<timestamp>', got {text!r}")
    return number
