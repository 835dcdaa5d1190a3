"""The labeling config of a Label Studio project as the ML backend reads it: its ``BrushLabels`` control.

The control names the image it labels and holds the labels the backend's brushes take; the image's
``value`` names the task data field of the frame (`frugalseg.interop.label_studio_regions`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from frugalseg.app.http import RequestError
from frugalseg.errors import DataError
from frugalseg.interop.label_studio_regions import brush_control, brush_labels, image_field


class LabelConfig(NamedTuple):
    """A project's labeling config as the backend reads it."""

    #: The ``BrushLabels`` control's name and the image it labels (`brush_control`).
    control: tuple[str, str]
    #: That control's ``<Label value=…>`` values (`brush_labels`).
    labels: tuple[str, ...]
    #: The task data field of the image it labels (`image_field`: ``$image`` → ``image``), or None.
    image: str | None = None


def controls(config: Any) -> LabelConfig:
    """The ``BrushLabels`` control of a labeling config (XML): its name, the image it labels, its labels."""
    if not isinstance(config, str):
        raise RequestError(400, "the labeling config is missing")
    try:
        control = brush_control(config)
    except DataError as err:
        raise RequestError(400, f"the labeling config is {err.problem}") from err
    if control is None:
        raise RequestError(
            422, "the labeling config has no <BrushLabels name=… toName=…> on the image: add one to get masks"
        )
    try:
        image = image_field(config)
    except DataError as err:
        raise RequestError(422, f"the labeling config: {err.problem}") from err
    return LabelConfig(control, brush_labels(config), image)
