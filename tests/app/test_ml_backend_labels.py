"""The ML backend's labels against the project's labeling config (its BrushLabels' values)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from app.test_ml_backend import VIDEO, backend, brush, decoded, event, labelled, predict, rectangle, truth
from frugalseg.active.objects.session.given import GivenAnnotation
from frugalseg.active.objects.simulation.annotation_types import GivenClick
from frugalseg.app import SessionService
from frugalseg.data.clips import LabelKind
from frugalseg.interop.label_studio import write_label_studio

__all__ = ["backend"]  # the fixture, shared with the backend's other tests

#: A person's own config (the tester's): one brush label, ``car``, on an image named ``img``.
CAR = labelled("car", brush="seg", image="img")


def annotated_unnamed(service: SessionService, davis: Path) -> None:
    """The swan of frame 0 given as object 1 without a name (shown ``object``), propagated."""
    swan = truth(service, davis, 0)
    service.add(VIDEO, 0, GivenAnnotation(Path("a person's mask"), swan.shape, swan))
    service.wait()


def of_project(sent: dict[str, Any], config: str, project: int = 5) -> dict[str, Any]:
    """A webhook's event of project ``project`` with its labeling config (Label Studio sends it)."""
    return {**sent, "project": {"id": project, "label_config": config}}


def keypoint(x: int, y: int, labels: list[str]) -> dict[str, Any]:
    """A positive smart keypoint at pixel (x, y) as Label Studio 1.23.2 serializes it."""
    value = {"x": (x + 0.5) * 100 / 854, "y": (y + 0.5) * 100 / 480, "width": 0.6}
    return {"id": "K1", "type": "keypointlabels", "from_name": "kp", "to_name": "img", "is_positive": True,
            "original_width": 854, "original_height": 480, "image_rotation": 0, "origin": "manual",
            "value": {**value, "keypointlabels": labels, "labels": labels}}  # fmt: skip


def test_the_configs_one_label_stands_for_the_object_and_comes_back_to_it(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    """Config ``car`` alone, one unnamed object: predicted ``car``; a ``car`` region corrects it."""
    annotated_unnamed(service, davis)
    assert backend.post("/setup", json={"project": "5.1700000001", "schema": CAR}).status_code == 200
    [shown] = predict(backend, [0], config=CAR)[0]["result"]
    assert (shown["id"], shown["from_name"], shown["to_name"]) == ("frugalseg-1", "seg", "img")
    assert shown["value"]["brushlabels"] == ["car"]
    # interactive keypoints labelled car, or with no label, correct object 1
    clicks = (GivenClick(1, 420, 230, True),)
    expected = (
        service.session.preview(VIDEO, 6, GivenAnnotation(Path("clicks"), (480, 854), clicks=clicks)) == 1
    )
    for labels in (["car"], []):
        [prediction] = predict(backend, [6], {"result": [keypoint(420, 230, labels)]}, config=CAR)
        [result] = prediction["result"]
        assert (result["id"], result["value"]["brushlabels"]) == ("frugalseg-1", ["car"])
        assert np.array_equal(decoded(result), expected)
    # a submitted brush labelled car (Label Studio's own result id) is object 1's mask of frame 6
    drawn = truth(service, davis, 6)
    sent = backend.post("/webhook", json=of_project(event(6, [brush(drawn == 1, "car", "abc123")]), CAR))
    assert sent.status_code == 201, sent.text
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None and np.array_equal(state.annotated[6], drawn)
    assert sorted(state.objects) == [1]
    assert service.names()[VIDEO] == {}  # car stood in for its name: it stays unnamed


def test_a_config_of_other_labels_keeps_the_name_warns_once_and_its_labels_are_new_objects(
    backend: TestClient, service: SessionService, davis: Path, caplog: pytest.LogCaptureFixture
) -> None:
    annotated_unnamed(service, davis)
    config = labelled("car", "truck")
    with caplog.at_level("WARNING", logger="frugalseg.app.ml_backend"):
        first = predict(backend, [0, 3], config=config)
        second = predict(backend, [0], config=config)
    assert [r["value"]["brushlabels"] for p in first + second for r in p["result"]] == [["object"]] * 3
    assert [r.getMessage() for r in caplog.records] == [
        "predictions label object 1 of blackswan 'object', which the labeling config's BrushLabels "
        "('car', 'truck') lacks: add <Label value=\"object\"/> to it"
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="frugalseg.app.ml_backend"):
        sent = backend.post(
            "/webhook", json=of_project(event(6, [rectangle("car", "r1")]), config, project=3)
        )
    assert sent.status_code == 201, sent.text
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None and sorted(state.objects) == [1, 2]
    assert service.names()[VIDEO] == {"2": "car"}
    assert [r.getMessage() for r in caplog.records] == [
        "a region labelled 'car' names no object of blackswan (1 'object'): booked as its new object 2; a "
        "region of one of those takes its name as label"
    ]  # it had been booked without a word


def test_a_background_region_is_no_object_and_never_predicted(
    backend: TestClient, service: SessionService, davis: Path, tmp_path: Path
) -> None:
    """A person accepts a ``label export --tool label-studio`` prediction: its background is left out."""
    annotated_unnamed(service, davis)
    [shown] = predict(backend, [0], config=labelled("background", "car"))[0]["result"]
    assert shown["value"]["brushlabels"] == ["car"]  # the one label besides the background
    swan = truth(service, davis, 6) == 1
    objects = [(LabelKind.PSEUDO, "background", None, ~swan), (LabelKind.PSEUDO, "object", 1, swan)]
    write_label_studio(
        tmp_path / "tasks.json", [("JPEGImages/480p/blackswan/00006.jpg", (480, 854), objects)]
    )
    [exported] = json.loads((tmp_path / "tasks.json").read_text())
    accepted = exported["predictions"][0]["result"]
    assert [r["value"]["brushlabels"] for r in accepted] == [["background"], ["object"]]
    config = labelled("background", "object")
    sent = backend.post("/webhook", json=of_project(event(6, accepted), config, project=3))
    assert sent.status_code == 201, sent.text
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None and np.array_equal(state.annotated[6], swan.astype(np.uint8))
    assert sorted(state.objects) == [1]
    # the object left the frame: background alone, or no region at all, as `label import` reads them
    for frame, results in ((7, accepted[:1]), (8, [])):
        sent = backend.post("/webhook", json=of_project(event(frame, results), config, project=3))
        assert sent.status_code == 201, sent.text  # both had been refused ("nothing to take")
        service.wait()
        state = service.session.state(VIDEO)
        assert state is not None and not state.annotated[frame].any() and sorted(state.objects) == [1]
        assert not service.session.current_mask(VIDEO, frame).any()
        assert [(a.frame, a.object, a.kind, a.seconds) for a in state.annotations[-1:]] == [
            (frame, 0, "mask", 1.0)
        ]


def test_smart_keypoints_kept_beside_the_brush_they_made_book_it_as_their_clicks(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    """Accepting one interactive answer leaves its keypoints in the annotation beside the brush: the brush
    is the object, booked as 2 clicks. It had been refused (422) and the person's annotation lost."""
    annotated_unnamed(service, davis)
    config = labelled("car", "truck")
    for project, schema in (("5.1700000001", CAR), ("3.1700000001", config)):
        assert backend.post("/setup", json={"project": project, "schema": schema}).status_code == 200
    drawn = truth(service, davis, 6)
    results = [
        keypoint(420, 230, ["car"]),
        {**keypoint(425, 240, ["car"]), "id": "K2"},
        brush(drawn == 1, "car", "b1"),
    ]
    sent = backend.post("/webhook", json=of_project(event(6, results), CAR))
    assert sent.status_code == 201, sent.text
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None and np.array_equal(state.annotated[6], drawn)
    costs = service.session.costs
    assert [(a.frame, a.object, a.kind, a.clicks, a.seconds) for a in state.annotations[-1:]] == [
        (6, 1, "clicks", 2, 2 * costs.click_seconds + costs.clicked_frame_seconds)
    ]
    # a keypoint without a label beside the one object painted is that object's
    unlabelled = truth(service, davis, 8)
    sent = backend.post(
        "/webhook", json=of_project(event(8, [keypoint(420, 230, []), brush(unlabelled == 1, "car")]), CAR)
    )
    assert sent.status_code == 201, sent.text
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None and [(a.frame, a.kind, a.clicks) for a in state.annotations[-1:]] == [
        (8, "clicks", 1)
    ]
    # a keypoint of an object without a region of its own is refused, naming the object
    stray = [keypoint(420, 230, ["truck"]), brush(drawn == 1, "car", "b1")]
    refused = backend.post("/webhook", json=of_project(event(7, stray), config, project=3))
    assert refused.status_code == 422
    assert "keypoints of object 2 beside drawn regions of other objects" in refused.text
