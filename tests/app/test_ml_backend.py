"""The Label Studio ML backend, driven with the requests Label Studio sends, on the real DAVIS sample."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from app.conftest import open_session
from frugalseg.active.objects.session.given import GivenAnnotation
from frugalseg.active.objects.session.proposals import ProposalOptions
from frugalseg.active.objects.session.session import AnnotationSession
from frugalseg.active.objects.simulation.annotation_types import GivenClick
from frugalseg.active.objects.tools.graph_cut import ObjectPrior
from frugalseg.app import SessionService
from frugalseg.app.http import JSONRoutes
from frugalseg.app.ml_backend import MLBackendApp, create_ml_backend, task_name
from frugalseg.app.server import AnnotationApp
from frugalseg.errors import DataError
from frugalseg.interop.rle import ls_decode, ls_encode, polygon_mask

VIDEO = "blackswan"
CONFIG = (
    '<View><Image name="image" value="$image"/>'
    '<BrushLabels name="tag" toName="image"><Label value="swan"/></BrushLabels>'
    '<KeyPointLabels name="kp" toName="image" smart="true"><Label value="swan"/></KeyPointLabels></View>'
)
PROJECT = {"id": 3, "label_config": CONFIG}


def labelled(*labels: str, brush: str = "tag", image: str = "image") -> str:
    """A labeling config whose BrushLabels ``brush`` (and keypoints ``kp``) on ``image`` hold ``labels``."""
    values = "".join(f'<Label value="{label}"/>' for label in labels)
    return (
        f'<View><Image name="{image}" value="$image"/><BrushLabels name="{brush}" toName="{image}">'
        f'{values}</BrushLabels><KeyPointLabels name="kp" toName="{image}" smart="true">{values}'
        "</KeyPointLabels></View>"
    )


def task(frame: int, video: str = VIDEO, task_id: int | None = None) -> dict[str, Any]:
    """A task of a project made from the data set's frames, served as Label Studio's local files."""
    path = f"JPEGImages/480p/{video}/{frame:05d}.jpg"
    return {"id": task_id or 100 + frame, "data": {"image": f"/data/local-files/?d={path}"}}


def brush(mask: np.ndarray, label: str = "swan", result_id: str = "a1") -> dict[str, Any]:
    height, width = mask.shape
    return {
        "id": result_id, "type": "brushlabels", "from_name": "tag", "to_name": "image",
        "original_width": width, "original_height": height, "image_rotation": 0,
        "value": {"format": "rle", "rle": ls_encode(mask), "brushlabels": [label]},
    }  # fmt: skip


def rectangle(label: str, result_id: str) -> dict[str, Any]:
    """A rectangle result of ``label`` at x 10–15 %, y 10–20 % of a 854×480 frame (pixels 85–128, 48–95)."""
    return {
        "id": result_id, "type": "rectanglelabels", "from_name": "box", "to_name": "image",
        "original_width": 854, "original_height": 480,
        "value": {"x": 10.0, "y": 10.0, "width": 5.0, "height": 10.0, "rotation": 0,
                  "rectanglelabels": [label]},
    }  # fmt: skip


def event(frame: int, result: list[dict[str, Any]], action: str = "ANNOTATION_CREATED") -> dict[str, Any]:
    annotation = {"id": 9, "task": 100 + frame, "result": result, "was_cancelled": False}
    return {"action": action, "project": PROJECT, "task": task(frame), "annotation": annotation}


@pytest.fixture
def backend(service: SessionService) -> Iterator[TestClient]:
    with TestClient(create_ml_backend(service), raise_server_exceptions=False) as client:
        setup = client.post("/setup", json={"project": "3.1700000000", "schema": CONFIG})
        assert setup.status_code == 200, setup.text
        yield client


def truth(service: SessionService, davis: Path, frame: int) -> np.ndarray:
    png = davis / "Annotations" / "480p" / VIDEO / f"{frame:05d}.png"
    return service.session.read_mask(VIDEO, frame, png)


def annotate_frame_0(backend: TestClient, service: SessionService, davis: Path) -> None:
    """Submit frame 0's true swan as a brush and wait for its propagation."""
    assert backend.post("/webhook", json=event(0, [brush(truth(service, davis, 0) == 1)])).status_code == 201
    service.wait()


def predict(
    client: TestClient, frames: list[int], context: Any = None, config: str = CONFIG
) -> list[dict[str, Any]]:
    body = {"tasks": [task(f) for f in frames], "label_config": config, "project": "3.1700000000"}
    body["params"] = {"login": None, "password": None, "context": context}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def decoded(result: dict[str, Any]) -> np.ndarray:
    return ls_decode(result["value"]["rle"], result["original_height"], result["original_width"])


def test_the_backend_shares_only_the_small_http_base_with_the_page() -> None:
    """The ML backend is its own server beside the page's (issue 47.4): both on JSONRoutes alone."""
    assert MLBackendApp.__bases__ == (JSONRoutes,)
    assert AnnotationApp.__bases__ == (JSONRoutes,)
    assert not issubclass(MLBackendApp, AnnotationApp)


def test_health_and_setup(backend: TestClient) -> None:
    health = backend.get("/health").json()
    assert health["status"] == "UP" and health["model_version"].startswith("frugalseg-flow-")
    refused = backend.post("/setup", json={"project": "three", "schema": CONFIG})
    assert refused.status_code == 400 and "project" in refused.json()["error"]
    no_brush = backend.post(
        "/setup", json={"project": "4.1", "schema": '<View><Image name="i" value="$i"/></View>'}
    )
    assert no_brush.status_code == 422 and "BrushLabels" in no_brush.json()["error"]


def test_a_refused_setup_is_logged_on_the_backends_console(
    backend: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Label Studio says only "422 … check the ML backend server console logs": the reason is there."""
    schema = '<View><Image name="image" value="$image"/><RectangleLabels name="box" toName="image"/></View>'
    with caplog.at_level("WARNING", logger="frugalseg.app.ml_backend"):
        assert backend.post("/setup", json={"project": "99.123", "schema": schema}).status_code == 422
        assert backend.post("/setup", json={"project": "99.123", "schema": "<View><Image"}).status_code == 400
    assert [r.getMessage() for r in caplog.records] == [
        "refused setup of project 99.123 (422): the labeling config has no <BrushLabels name=… toName=…> "
        "on the image: add one to get masks",
        "refused setup of project 99.123 (400): the labeling config is not XML (unclosed token: line 1, "
        "column 6)",
    ]


def test_brush_annotation_becomes_the_sessions_and_predictions_carry_it(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    before = backend.get("/health").json()["model_version"]
    frames = service.session.frames(VIDEO)
    fresh = [prediction["score"] for prediction in predict(backend, frames)]  # before any annotation
    first = service.proposal(VIDEO)
    assert first is not None and fresh == [float(frame == first.frame) for frame in frames]  # had been all 0
    drawn = truth(service, davis, 0)
    sent = backend.post("/webhook", json=event(0, [brush(drawn == 1)]))
    assert sent.status_code == 201, sent.text
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None and np.array_equal(state.annotated[0], drawn)
    frames = service.session.frames(VIDEO)
    results = predict(backend, frames)
    proposal = service.proposal(VIDEO)
    assert proposal is not None and proposal.video == VIDEO
    for frame, prediction in zip(frames, results, strict=True):
        current = service.session.current_mask(VIDEO, frame)
        assert current is not None and set(np.unique(current)) <= {0, 1}
        [result] = prediction["result"]
        assert result["id"] == "frugalseg-1" and result["value"]["brushlabels"] == ["swan"]
        assert (result["from_name"], result["to_name"]) == ("tag", "image")
        assert np.array_equal(decoded(result), current == 1)
        assert prediction["model_version"] != before
        assert (prediction["score"] == 1.0) == (frame == proposal.frame)
    assert max(range(len(frames)), key=lambda t: results[t]["score"]) == frames.index(proposal.frame)


def test_predictions_accepted_as_shown_are_booked_as_looked_at_though_the_masks_moved_on(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    """A person retrieves every task's prediction, then accepts them one by one: each acceptance propagates
    again, so a later task's prediction is no longer its frame's mask: it was booked as drawn (80 s)."""
    annotate_frame_0(backend, service, davis)
    first, second = service.session.frames(VIDEO)[1:3]
    shown = {
        frame: decoded(r["result"][0])
        for frame, r in zip((first, second), predict(backend, [first, second]), strict=True)
    }
    for frame in (first, second):
        sent = backend.post("/webhook", json=event(frame, [brush(shown[frame], result_id="frugalseg-1")]))
        assert sent.status_code == 201, sent.text
        service.wait()
        if frame == first:  # the second frame's mask moved on
            assert not np.array_equal(service.session.current_mask(VIDEO, second) == 1, shown[second])
    state = service.session.state(VIDEO)
    assert state is not None
    assert [(a.frame, a.kind, a.seconds) for a in state.annotations[-2:]] == [
        (first, "clicks", 1.0),
        (second, "clicks", 1.0),
    ]


def test_an_unchanged_update_of_an_edited_annotation_is_booked_as_looked_at(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    """The update is compared with the frame's mask (the person's annotation), not the prediction before."""
    annotate_frame_0(backend, service, davis)
    frame = service.session.frames(VIDEO)[2]
    [shown] = predict(backend, [frame])
    edited = decoded(shown["result"][0]) | (truth(service, davis, frame) == 1)
    for action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
        sent = backend.post("/webhook", json=event(frame, [brush(edited, result_id="frugalseg-1")], action))
        assert sent.status_code == 201, sent.text
        service.wait()
    state = service.session.state(VIDEO)
    assert state is not None
    assert [(a.frame, a.kind, a.seconds) for a in state.annotations[-2:]] == [
        (frame, "mask", 80.0),
        (frame, "clicks", 1.0),
    ]


def test_the_image_is_the_data_field_the_config_names(backend: TestClient, service: SessionService) -> None:
    """A task whose data holds another text first (a file name) had been booked on that text's frame."""
    two = CONFIG.replace('value="$image"', 'value="$photo"')
    setup = backend.post("/setup", json={"project": "4.1700000000", "schema": two})
    assert setup.status_code == 200, setup.text
    frames = service.session.frames(VIDEO)
    wrong, right = task(frames[5])["data"]["image"], task(frames[2])["data"]["image"]
    data = {"source": wrong, "photo": right}
    body = {"tasks": [{"id": 7, "data": data}], "label_config": two, "project": "4.1700000000"}
    assert backend.post("/predict", json=body).status_code == 200
    mask = np.zeros((480, 854), bool)
    mask[100:200, 300:400] = True
    result = brush(mask)
    annotation = {"id": 9, "task": 7, "result": [{**result, "to_name": "photo"}], "was_cancelled": False}
    project = {"id": 4, "label_config": two}
    hook = {"action": "ANNOTATION_CREATED", "project": project, "task": {"id": 7, "data": data}}
    sent = backend.post("/webhook", json={**hook, "annotation": annotation})
    assert sent.status_code == 201, sent.text
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None and [a.frame for a in state.annotations] == [2]


def test_a_brush_control_whose_to_name_names_no_element_is_refused_naming_the_image(
    backend: TestClient,
) -> None:
    """Its predictions had been written to ``to_name: picture``, which Label Studio shows nowhere."""
    wrong = labelled("swan").replace(
        '<BrushLabels name="tag" toName="image">', '<BrushLabels name="tag" toName="picture">'
    )
    setup = backend.post("/setup", json={"project": "4.1700000000", "schema": wrong})
    assert setup.status_code == 422
    assert setup.json()["error"] == (
        "the labeling config: <BrushLabels toName='picture'> names no element of it "
        "(its image is <Image name='image'>)"
    )


def test_an_exported_prediction_accepted_as_it_is_leaves_the_mask_as_it_was(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    """`annotate export`'s Label Studio file holds an object's mask, its box's mask and the box's rectangle:
    submitted unchanged, the rectangle had been read as the object's pixels (the whole box: IoU 0.81 → 0.39)
    and booked as drawn."""
    annotate_frame_0(backend, service, davis)
    frame = service.session.frames(VIDEO)[2]
    shown = service.current_mask(VIDEO, frame) == 1
    rows, cols = np.nonzero(shown)
    height, width = shown.shape
    x0, y0, x1, y1 = cols.min(), rows.min(), cols.max() + 1, rows.max() + 1
    box = {
        "id": "r1", "type": "rectanglelabels", "from_name": "box", "to_name": "image",
        "original_width": width, "original_height": height,
        "value": {"x": 100 * x0 / width, "y": 100 * y0 / height, "width": 100 * (x1 - x0) / width,
                  "height": 100 * (y1 - y0) / height, "rotation": 0, "rectanglelabels": ["swan"]},
    }  # fmt: skip
    results = [brush(shown, result_id="frugalseg-1"), box]
    assert backend.post("/webhook", json=event(frame, results)).status_code == 201
    service.wait()
    np.testing.assert_array_equal(service.current_mask(VIDEO, frame) == 1, shown)
    state = service.session.state(VIDEO)
    assert state is not None and (state.annotations[-1].frame, state.annotations[-1].seconds) == (frame, 1.0)


def test_annotations_created_from_predictions_in_bulk_are_each_booked(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    """Label Studio's *Create Annotations From Predictions* sends one event of them all: it had been
    ignored with a warning, while Label Studio said the annotations were made."""
    annotate_frame_0(backend, service, davis)
    frames = service.session.frames(VIDEO)[2:4]
    shown = [
        decoded(prediction["result"][0]) for prediction in predict(backend, frames)
    ]  # accepted as served
    annotations = [
        {"id": 20 + k, "task": 100 + f, "result": [brush(m, result_id="frugalseg-1")], "was_cancelled": False}
        for k, (f, m) in enumerate(zip(frames, shown, strict=True))
    ]
    unknown = {"id": 30, "task": 999, "result": [], "was_cancelled": False}  # a task the event does not hold
    tasks = [task(f) for f in frames]
    body = {
        "action": "ANNOTATIONS_CREATED",
        "project": PROJECT,
        "annotation": [*annotations, unknown],
        "task": tasks,
    }
    sent = backend.post("/webhook", json=body)
    assert sent.status_code == 201, sent.text
    assert len(sent.json()["jobs"]) == 2 and len(sent.json()["refused"]) == 1
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None and [(a.frame, a.seconds) for a in state.annotations[1:]] == [
        (frames[0], 1.0),
        (frames[1], 1.0),
    ]


def test_a_skipped_task_is_ignored_and_leaves_the_frame_as_it_was(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    """Label Studio's Skip sends an annotation ``was_cancelled`` with no result: not "the object left"."""
    annotate_frame_0(backend, service, davis)
    before = service.session.current_mask(VIDEO, 1).copy()
    assert before.any()
    skipped = event(1, [])
    skipped["annotation"]["was_cancelled"] = True
    sent = backend.post("/webhook", json=skipped)
    assert sent.status_code == 200 and sent.json()["status"] == "ignored", sent.text
    service.wait()
    assert np.array_equal(service.session.current_mask(VIDEO, 1), before)
    state = service.session.state(VIDEO)
    assert state is not None and len(state.annotations) == 1


def test_edited_prediction_keeps_its_object_and_polygons_fill_as_pycocotools(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    annotate_frame_0(backend, service, davis)
    points = [[40.0, 30.0], [60.0, 35.0], [55.0, 70.0], [38.5, 60.25]]  # percent of 854×480
    polygon = {
        "id": "frugalseg-1", "type": "polygonlabels", "from_name": "poly", "to_name": "image",
        "original_width": 854, "original_height": 480,
        "value": {"points": points, "polygonlabels": ["bird"]},
    }  # fmt: skip
    box = rectangle("rock", "b7")
    sent = backend.post("/webhook", json=event(6, [polygon, box], "ANNOTATION_UPDATED"))
    assert sent.status_code == 201, sent.text
    service.wait()
    expected = np.zeros((480, 854), np.uint8)
    expected[polygon_mask(np.array(points) * [854, 480] / 100, 480, 854)] = 1  # as the export reader scales
    expected[48:96, 85:129] = 2  # x 85.4…128.1, y 48…96: the box's pixels, corners floored and ceiled
    state = service.session.state(VIDEO)
    assert state is not None and np.array_equal(state.annotated[6], expected)
    assert sorted(state.objects) == [1, 2]
    names = {
        r["id"]: r["value"]["brushlabels"]
        for r in predict(backend, [6], config=labelled("bird", "rock"))[0]["result"]
    }
    assert names == {"frugalseg-1": ["bird"], "frugalseg-2": ["rock"]}


def test_a_region_labelled_object_is_the_unnamed_object_the_backend_shows_so(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    """/predict shows an object without a name as ``object``; a region with that label is that object."""
    swan = truth(service, davis, 0)
    service.add(VIDEO, 0, GivenAnnotation(Path("a person's mask"), swan.shape, swan))  # no name given
    service.wait()
    [shown] = predict(backend, [0], config=labelled("swan", "object"))[0]["result"]
    assert (shown["id"], shown["value"]["brushlabels"]) == ("frugalseg-1", ["object"])
    box = rectangle("object", "r9")
    # the box tool's mask of object 1 in the box's pixels (x 85…128, y 48…95), as the page's box
    expected = service.session.box_preview(VIDEO, 6, (85, 48, 128, 95), (), 1).astype(np.uint8)
    sent = backend.post("/webhook", json=event(6, [box]))
    assert sent.status_code == 201, sent.text
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None and np.array_equal(state.annotated[6], expected)
    assert sorted(state.objects) == [1]
    assert service.names()[VIDEO] == {"1": "object"}
    for frame in (7, 9):  # object 1 carries on past the new annotation
        assert np.unique(service.session.current_mask(VIDEO, frame)).tolist() == [0, 1]


def test_interactive_keypoints_are_the_click_models_mask(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    annotate_frame_0(backend, service, davis)
    keypoints = [
        {"id": "k1", "type": "keypointlabels", "from_name": "kp", "to_name": "image", "is_positive": True,
         "original_width": 854, "original_height": 480,
         "value": {"x": 420 / 8.54 + 0.01, "y": 230 / 4.8 + 0.01, "width": 0.5, "keypointlabels": ["swan"]}},
        {"id": "k2", "type": "keypointlabels", "from_name": "kp", "to_name": "image", "is_positive": False,
         "original_width": 854, "original_height": 480,
         "value": {"x": 700 / 8.54 + 0.01, "y": 100 / 4.8 + 0.01, "width": 0.5, "keypointlabels": ["swan"]}},
    ]  # fmt: skip
    [prediction] = predict(backend, [6], {"result": keypoints})
    clicks = (GivenClick(1, 420, 230, True), GivenClick(1, 700, 100, False))
    expected = (
        service.session.preview(VIDEO, 6, GivenAnnotation(Path("clicks"), (480, 854), clicks=clicks)) == 1
    )
    [result] = prediction["result"]
    assert np.array_equal(decoded(result), expected)
    assert not np.array_equal(expected, service.session.current_mask(VIDEO, 6) == 1)


def _swan_rectangle(service: SessionService, davis: Path) -> tuple[dict[str, Any], tuple[int, int, int, int]]:
    """A smart rectangle around the swan of frame 6 + 5 px, and its corners (included)."""
    ys, xs = np.nonzero(truth(service, davis, 6) == 1)
    x0, y0, x1, y1 = int(xs.min()) - 5, int(ys.min()) - 5, int(xs.max()) + 5, int(ys.max()) + 5
    rectangle = {
        "id": "r1", "type": "rectanglelabels", "from_name": "kp", "to_name": "image",
        "original_width": 854, "original_height": 480,
        "value": {"x": x0 / 8.54, "y": y0 / 4.8, "width": (x1 + 1 - x0) / 8.54, "height": (y1 + 1 - y0) / 4.8,
                  "rotation": 0, "rectanglelabels": ["swan"]},
    }  # fmt: skip
    return rectangle, (x0, y0, x1, y1)


def test_an_interactive_rectangle_is_the_box_tools_mask_with_its_keypoints(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    """A rectangle goes to the click model's box tool (once the box's own pixels), inside the box.

    The swan annotated on frame 0 lends the box its colours there (`AnnotationSession.box_preview`).
    """
    annotate_frame_0(backend, service, davis)
    rectangle, (x0, y0, x1, y1) = _swan_rectangle(service, davis)
    [prediction] = predict(backend, [6], {"result": [rectangle]})
    [result] = prediction["result"]
    image = service.session.frame_image(VIDEO, 6)
    box = (x0, y0, x1, y1)
    swan = ObjectPrior(examples=[(service.session.frame_image(VIDEO, 0), truth(service, davis, 0) == 1)])
    expected = service.session.click_model.box(image, box, (), known=swan)  # its colours on frame 0
    assert not np.array_equal(expected, service.session.click_model.box(image, box, ()))
    found = decoded(result)
    assert np.array_equal(found, expected)
    inside = np.zeros_like(found)
    inside[y0 : y1 + 1, x0 : x1 + 1] = True
    assert found.any() and not (found & ~inside).any() and not found[inside].all()  # not the box's pixels


def _smart_point(x: int, y: int) -> dict[str, Any]:
    """A positive smart keypoint of the swan at pixel (x, y)."""
    value = {"x": x / 8.54 + 0.01, "y": y / 4.8 + 0.01, "width": 0.5, "keypointlabels": ["swan"]}
    return {"id": f"k{x}", "type": "keypointlabels", "from_name": "kp", "to_name": "image",
            "is_positive": True, "original_width": 854, "original_height": 480, "value": value}  # fmt: skip


def test_a_background_keypoint_is_a_negative_click_of_the_object_its_annotation_clicks(
    backend: TestClient, service: SessionService, davis: Path, monkeypatch
) -> None:
    """`label export` writes a session's negative clicks as keypoints of the background class; the backend
    had dropped them when such a task came back, booking the positive click alone."""
    annotate_frame_0(backend, service, davis)
    negative = {**_smart_point(100, 420), "id": "n1"}
    negative["value"] = {**negative["value"], "keypointlabels": ["background"]}
    config = labelled("swan", "background")
    project = {"id": 3, "label_config": config}
    sent = backend.post("/webhook", json={**event(9, [_smart_point(420, 200), negative]), "project": project})
    assert sent.status_code == 201, sent.text
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None
    assert [(a.frame, a.object, a.points) for a in state.annotations[-1:]] == [
        (9, 1, ((420, 200, True), (100, 420, False)))
    ]
    # beside regions of two objects, which one it corrects is not known: refused, saying so
    two = [brush(truth(service, davis, 9) == 1), {**brush(np.eye(480, 854, dtype=bool)), "id": "frugalseg-2"}]
    refused = backend.post("/webhook", json={**event(9, [*two, negative]), "project": project})
    assert (
        refused.status_code == 422 and "'background' keypoints beside regions of objects 1, 2" in refused.text
    )
    # in an interactive request, alone on a frame of one object: a negative click of it (had been refused)
    body = {"tasks": [task(9)], "label_config": config, "project": "3.1700000000"}
    body["params"] = {"login": None, "password": None, "context": {"result": [negative]}}
    alone = backend.post("/predict", json=body)
    assert alone.status_code == 200, alone.text
    # beside two objects, which one it corrects is not known
    two = service.current_mask(VIDEO, 9).copy()
    two[:20, :20] = 2
    monkeypatch.setattr(service, "current_mask", lambda video, frame: two)
    alone = backend.post("/predict", json=body)
    assert alone.status_code == 400 and (
        "'background' keypoints alone, and the frame shows 2 objects: click with the object's label"
        in alone.text
    )


def test_keypoints_sent_alone_after_a_rectangle_correct_the_box_tools_mask(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    """Label Studio's editor sends a smart keypoint without the rectangle drawn before it: the click had
    corrected the propagated mask, throwing the box's work away."""
    annotate_frame_0(backend, service, davis)
    rectangle, (x0, y0, x1, y1) = _swan_rectangle(service, davis)
    inside, outside = (x0 + 10, y0 + 10), (x1 + 20, y1 + 5)
    together = predict(backend, [6], {"result": [rectangle, _smart_point(*inside)]})[0]["result"][0]
    predict(backend, [6], {"result": [rectangle]})
    alone = predict(backend, [6], {"result": [_smart_point(*inside)]})[0]["result"][0]
    assert np.array_equal(decoded(alone), decoded(together))
    # a click outside the box corrects the frame's mask, as ever (the box's mask stays inside it)
    far = (GivenClick(1, *outside, True),)
    expected = service.session.preview(VIDEO, 6, GivenAnnotation(Path("c"), (480, 854), clicks=far)) == 1
    found = predict(backend, [6], {"result": [_smart_point(*outside)]})[0]["result"][0]
    assert np.array_equal(decoded(found), expected)
    # the answer accepted with its keypoint is the box tool's object, booked as a box and its click
    sent = backend.post("/webhook", json=event(6, [alone, _smart_point(*inside)]))
    assert sent.status_code == 201, sent.text
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None and np.array_equal(state.annotated[6] == 1, decoded(alone))
    costs = service.session.costs
    booked = costs.box_seconds + costs.click_seconds + costs.clicked_frame_seconds
    assert [(a.frame, a.object, a.kind, a.clicks, a.seconds) for a in state.annotations[-1:]] == [
        (6, 1, "box", 1, booked)
    ]
    # once the task is annotated, its rectangle is forgotten
    near = (GivenClick(1, *inside, True),)
    expected = service.session.preview(VIDEO, 6, GivenAnnotation(Path("c"), (480, 854), clicks=near)) == 1
    found = predict(backend, [6], {"result": [_smart_point(*inside)]})[0]["result"][0]
    assert np.array_equal(decoded(found), expected)


def test_background_keypoints_sent_alone_after_a_rectangle_correct_it_with_the_objects_keypoints(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    """The editor sends a keypoint of the config's background label without the rectangle and the object's
    keypoints before it: it was refused ("keypoints alone") though the person had drawn the box first."""
    annotate_frame_0(backend, service, davis)
    rectangle, (x0, y0, x1, y1) = _swan_rectangle(service, davis)
    inside, spill = (x0 + 10, y0 + 10), (x1 - 3, y0 + 3)
    negative = {**_smart_point(*spill), "id": "n1"}
    negative["value"] = {**negative["value"], "keypointlabels": ["background"]}
    config = labelled("swan", "background")

    def answer(*results: dict[str, Any]) -> np.ndarray:
        body = {"tasks": [task(6)], "label_config": config, "project": "3.1700000000"}
        body["params"] = {"context": {"result": list(results)}}
        response = backend.post("/predict", json=body)
        assert response.status_code == 200, response.text
        return decoded(response.json()["results"][0]["result"][0])

    answer(rectangle)
    answer(_smart_point(*inside))
    found = answer(negative)
    box, clicks = (x0, y0, x1, y1), (GivenClick(1, *inside, True), GivenClick(1, *spill, False))
    assert np.array_equal(found, service.session.box_preview(VIDEO, 6, box, clicks, 1))
    assert not np.array_equal(found, service.session.box_preview(VIDEO, 6, box, clicks[:1], 1))
    # the object's keypoint again: the background's keypoint before it is kept
    assert np.array_equal(answer(_smart_point(*inside)), found)


def test_a_submitted_rectangle_and_its_keypoints_are_the_box_tools_booked_as_a_box(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    """As the page's box tool: the click model's mask in the box, the keypoints its corrective clicks."""
    annotate_frame_0(backend, service, davis)
    ys, xs = np.nonzero(truth(service, davis, 6) == 1)
    x0, y0, x1, y1 = int(xs.min()) - 5, int(ys.min()) - 5, int(xs.max()) + 5, int(ys.max()) + 5
    drawn = {
        "id": "Rk1", "type": "rectanglelabels", "from_name": "box", "to_name": "image", "origin": "manual",
        "original_width": 854, "original_height": 480, "image_rotation": 0,
        "value": {"x": x0 * 100 / 854, "y": y0 * 100 / 480, "width": (x1 + 1 - x0) * 100 / 854,
                  "height": (y1 + 1 - y0) * 100 / 480, "rotation": 0, "rectanglelabels": ["swan"]},
    }  # fmt: skip
    click = _keypoint(value={"x": 420.5 * 100 / 854, "y": 230.5 * 100 / 480}, is_positive=True)
    clicks = (GivenClick(1, 420, 230, True),)
    expected = service.session.box_given(VIDEO, 6, (x0, y0, x1, y1), 1, clicks).ids
    assert expected is not None
    sent = backend.post("/webhook", json=event(6, [drawn, click]))
    assert sent.status_code == 201, sent.text
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None and np.array_equal(state.annotated[6], expected)
    last = state.annotations[-1]
    assert (last.frame, last.object, last.kind, last.clicks) == (6, 1, "box", 1)
    assert last.box == (x0, y0, x1 + 1, y1 + 1)  # pixel edges
    filled = np.zeros((480, 854), bool)
    filled[y0 : y1 + 1, x0 : x1 + 1] = True
    assert not np.array_equal(expected == 1, filled)  # not the box's pixels


def test_a_rectangle_keeps_the_frames_other_objects_while_the_saved_masks_wait_for_propagation(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    """Object 2, as the backend shows it, is booked as kept (0 s), not as a drawn mask (80 s).

    Another frame's annotation saved and not yet propagated (a busy worker) leaves the saved masks out
    of date; the box had been booked against an empty mask then.
    """
    two = truth(service, davis, 0).astype(np.uint8)
    two[400:460, 20:120] = 2  # a second object in the bottom-left corner, still on every frame
    service.add(VIDEO, 0, GivenAnnotation(Path("m"), two.shape, two, names={1: "swan", 2: "buoy"}))
    service.wait()
    kept = service.current_mask(VIDEO, 6) == 2
    assert kept.sum() > 3000  # carried to frame 6
    service.session.add(VIDEO, 9, GivenAnnotation(Path("m"), two.shape, two), propagate=False)
    ys, xs = np.nonzero(truth(service, davis, 6) == 1)
    drawn = {
        "id": "Rk1", "type": "rectanglelabels", "from_name": "box", "to_name": "image", "origin": "manual",
        "original_width": 854, "original_height": 480, "image_rotation": 0,
        "value": {"x": (xs.min() - 5) * 100 / 854, "y": (ys.min() - 5) * 100 / 480,
                  "width": (xs.max() - xs.min() + 11) * 100 / 854,
                  "height": (ys.max() - ys.min() + 11) * 100 / 480, "rotation": 0,
                  "rectanglelabels": ["swan"]},
    }  # fmt: skip
    sent = backend.post("/webhook", json=event(6, [drawn]))
    assert sent.status_code == 201, sent.text
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None and np.array_equal(state.annotated[6] == 2, kept)
    made = {a.object: a for a in state.annotations if a.frame == 6}
    assert made[1].kind == "box" and made[2].kept and made[2].seconds == 0


def test_a_new_objects_accepted_answer_its_rectangle_and_keypoint_are_one_object_booked_as_a_box(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    """The README's first flow on a new video: the answer (``frugalseg-1``) kept beside the rectangle and a
    keypoint of its label. The label's other regions had become object 2: refused ("keypoints of object 2
    beside drawn regions of other objects"), or the rectangle's pixels booked as a drawn mask."""
    rectangle, (x0, y0, x1, y1) = _swan_rectangle(service, davis)
    [prediction] = predict(backend, [6], {"result": [rectangle]})
    [answer] = prediction["result"]
    assert answer["id"] == "frugalseg-1"
    click = _keypoint(id="k2", value={"x": 420.5 * 100 / 854, "y": 230.5 * 100 / 480}, is_positive=True)
    sent = backend.post("/webhook", json=event(6, [rectangle, answer, click]))  # the rectangle first
    assert sent.status_code == 201, sent.text
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None and state.objects == {1: 6}
    last = state.annotations[-1]
    assert (last.frame, last.object, last.kind, last.box) == (6, 1, "box", (x0, y0, x1 + 1, y1 + 1))
    assert np.array_equal(state.annotated[6] == 1, decoded(answer))  # the answer kept, not the box's pixels
    assert service.names()[VIDEO] == {"1": "swan"}


def test_a_frame_that_cannot_be_read_now_refuses_its_task_and_the_batch_answers(
    backend: TestClient, service: SessionService, monkeypatch
) -> None:
    """A frame damaged while the backend ran failed the whole Retrieve predictions (422 for every task),
    and /health listed no refusal."""
    current_mask = service.current_mask

    def damaged(video: str, index: int) -> np.ndarray:
        if index == 5:
            raise DataError(Path("00005.jpg"), "the image file ends early")
        return current_mask(video, index)

    monkeypatch.setattr(service, "current_mask", damaged)
    first, refused, last = predict(backend, [4, 5, 6])
    assert not any(p["model_version"].startswith("frugalseg refused") for p in (first, last))
    problem = f"{task_name(task(5))}: 00005.jpg: the image file ends early"
    assert refused == {"result": [], "score": 0.0, "model_version": f"frugalseg refused: {problem}"}
    assert [r["task"] for r in backend.get("/health").json()["refused"]] == [task_name(task(5))]


def test_an_interactive_box_too_small_names_its_task(
    backend: TestClient, service: SessionService, davis
) -> None:
    rectangle, _ = _swan_rectangle(service, davis)
    rectangle["value"] = {**rectangle["value"], "width": 0.1, "height": 0.1}
    body = {"tasks": [task(6)], "label_config": CONFIG, "project": "3.1700000000"}
    body["params"] = {"login": None, "password": None, "context": {"result": [rectangle]}}
    refused = backend.post("/predict", json=body)
    assert refused.status_code == 422 and f"{task_name(task(6))}: box: " in refused.text


def test_a_webhook_with_more_objects_than_a_video_holds_is_a_422(backend: TestClient) -> None:
    regions = []
    for obj in range(255):
        mask = np.zeros((480, 854), bool)
        mask[obj // 16 * 20 : obj // 16 * 20 + 10, obj % 16 * 50 : obj % 16 * 50 + 10] = True
        regions.append(brush(mask, label=f"thing {obj}", result_id=f"r{obj}"))
    refused = backend.post("/webhook", json=event(0, regions))
    assert refused.status_code == 422
    assert refused.json()["error"] == "blackswan: a video holds at most 254 objects"


def test_bad_input_is_refused_naming_the_task_and_writes_nothing(
    backend: TestClient, service: SessionService
) -> None:
    folder = service.session.folder
    cat = {"id": 5, "data": {"image": "/data/upload/3/1a2b3c4d-cat.jpg"}}
    lost = {**event(0, [brush(np.ones((480, 854), bool))]), "task": cat}
    response = backend.post("/webhook", json=lost)
    assert response.status_code == 422 and response.json()["error"].startswith("task 5: no frame")
    small = backend.post("/webhook", json=event(0, [brush(np.ones((240, 427), bool))]))
    assert small.status_code == 422, small.text
    assert small.json()["error"].startswith(
        "task 100 result a1: drawn on an image of 427×240, the task's image is 854×480"
    )
    upload = {"id": 8, "data": {"image": "/data/upload/3/1a2b3c4d-00003.jpg"}}
    ambiguous = backend.post("/predict", json={"tasks": [upload], "label_config": CONFIG})
    [refusal] = ambiguous.json()[
        "results"
    ]  # the reason as the prediction's model version (Label Studio shows it)
    assert refusal["result"] == [] and refusal["model_version"].startswith(
        "frugalseg refused: task 8: '00003.jpg' names several frames"
    )
    other = backend.post(
        "/webhook", json={**event(0, [brush(np.ones((480, 854), bool))]), "project": {"id": 4}}
    )
    assert other.status_code == 404 and "project 4 is not set up" in other.json()["error"]
    unknown = backend.post("/webhook", json={**event(0, []), "action": "ANNOTATION_EXPLODED"})
    assert unknown.status_code == 400 and "unknown action 'ANNOTATION_EXPLODED'" in unknown.json()["error"]
    ignored = backend.post("/webhook", json={**event(0, []), "action": "TASKS_CREATED"})
    assert ignored.status_code == 200 and ignored.json()["status"] == "ignored"
    assert not folder.exists()
    assert service.jobs == []


def test_a_project_set_up_before_a_restart_ahead_of_the_first_annotation_keeps_its_annotations(
    service: SessionService, davis: Path
) -> None:
    """The session's folder did not exist yet to keep the ``/setup``, so after a restart the project's
    annotations were refused (404) until someone opened its Model settings; a payload whose config has
    brushes sets its project up now, and the folder keeps it."""
    folder = service.session.folder
    with TestClient(create_ml_backend(service), raise_server_exceptions=False) as client:
        assert client.post("/setup", json={"project": "3.1700000000", "schema": CONFIG}).status_code == 200
    assert not folder.exists()
    options = ProposalOptions(frames="uncertainty", types="mask")
    restarted = SessionService(open_session(folder, davis), options)
    with TestClient(create_ml_backend(restarted), raise_server_exceptions=False) as client:
        taken = client.post("/webhook", json=event(0, [brush(truth(restarted, davis, 0) == 1)]))
        assert taken.status_code == 201, taken.text
        restarted.wait()
        no_brushes = {"id": 5, "label_config": '<View><Image name="i" value="$i"/></View>'}
        other = client.post(
            "/webhook", json={**event(1, [brush(np.ones((480, 854), bool))]), "project": no_brushes}
        )
        assert other.status_code == 404 and "project 5 is not set up" in other.json()["error"]
    assert json.loads((folder / "label_studio_projects.json").read_text()) == ["3"]


def test_routine_events_are_no_warnings_and_a_deletion_names_no_task_it_lacks(
    backend: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Label Studio sends a connected backend every event: importing tasks had warned "webhook TASKS_CREATED
    of task None ignored: the session keeps every annotation"."""
    with caplog.at_level(logging.INFO, logger="frugalseg.app.ml_backend"):
        for action in ("TASKS_CREATED", "PROJECT_UPDATED", "ANNOTATIONS_DELETED"):
            body = {"action": action, "project": PROJECT}
            assert backend.post("/webhook", json=body).json() == {"status": "ignored", "action": action}
        deleted = {"action": "ANNOTATION_DELETED", "project": PROJECT, "task": task(4)}
        assert backend.post("/webhook", json=deleted).status_code == 200
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "webhook TASKS_CREATED ignored"),
        ("INFO", "webhook PROJECT_UPDATED ignored"),
        ("WARNING", "webhook ANNOTATIONS_DELETED ignored: the session keeps the annotations it took"),
        (
            "WARNING",
            "webhook ANNOTATION_DELETED of task 104 ignored: the session keeps the annotations it took",
        ),
    ]


def test_a_task_of_a_frame_removed_since_the_annotations_says_the_frames_changed(
    tmp_path: Path, davis: Path, one_cv_thread: None
) -> None:
    """The last frame's file removed: its task was refused as "not one of this session's (0…4)", as if
    the person had sent a task of another video, where an earlier frame's says what happened."""
    root = tmp_path / "davis"
    for top, suffix in (("JPEGImages", ".jpg"), ("Annotations", ".png")):
        (root / top / "480p" / VIDEO).mkdir(parents=True)
        for frame in range(6):
            name = f"{frame:05d}{suffix}"
            (root / top / "480p" / VIDEO / name).write_bytes(
                (davis / top / "480p" / VIDEO / name).read_bytes()
            )
    session = AnnotationSession.open(tmp_path / "state", root=root, options={"flow_downscale": 2})
    service = SessionService(session, ProposalOptions(frames="uncertainty", types="mask"))
    with TestClient(create_ml_backend(service), raise_server_exceptions=False) as client:
        assert client.post("/setup", json={"project": "3.1700000000", "schema": CONFIG}).status_code == 200
        assert (
            client.post("/webhook", json=event(0, [brush(truth(service, davis, 0) == 1)])).status_code == 201
        )
        service.wait()
        (root / "JPEGImages" / "480p" / VIDEO / "00005.jpg").unlink()
        [refusal] = client.post("/predict", json={"tasks": [task(5)], "label_config": CONFIG}).json()[
            "results"
        ]
    assert refusal["model_version"].startswith("frugalseg refused: task 105: ")
    assert "its frames changed since the session annotated them" in refusal["model_version"]


def _blackswan_alone(tmp_path: Path, davis: Path) -> tuple[Path, SessionService]:
    """A data set root of blackswan alone (linked) and a service of its session."""
    root = tmp_path / "davis"
    for top in ("JPEGImages", "Annotations"):
        (root / top / "480p").mkdir(parents=True)
        (root / top / "480p" / VIDEO).symlink_to(davis / top / "480p" / VIDEO)
    session = open_session(tmp_path / "state", root)
    return root, SessionService(session, ProposalOptions(frames="uncertainty", types="mask"))


def test_a_task_of_another_clips_frame_is_refused_not_taken_for_ours(
    tmp_path: Path, davis: Path, one_cv_thread: None
) -> None:
    """On a session of blackswan alone, car-shadow's frame 3 is not blackswan's (a file name in common)."""
    root, service = _blackswan_alone(tmp_path, davis)
    session = service.session
    with TestClient(create_ml_backend(service), raise_server_exceptions=False) as client:
        assert client.post("/setup", json={"project": "3.1700000000", "schema": CONFIG}).status_code == 200
        problem = (
            "task 103: 'JPEGImages/480p/car-shadow/00003.jpg' is a frame of car-shadow, not of clip "
            f"blackswan (only its file name matches {root}/JPEGImages/480p/blackswan/00003.jpg)"
        )
        body = {"tasks": [task(3, "car-shadow"), task(4)], "label_config": CONFIG}
        refusal, served = client.post("/predict", json=body).json()["results"]
        assert refusal == {"result": [], "score": 0.0, "model_version": f"frugalseg refused: {problem}"}
        assert served["model_version"].startswith("frugalseg-")
        annotation = {**event(3, [brush(np.ones((480, 854), bool))]), "task": task(3, "car-shadow")}
        response = client.post("/webhook", json=annotation)
        assert response.status_code == 422 and response.json()["error"] == problem
    assert not session.folder.exists()
    assert service.jobs == []


def test_a_task_of_a_file_in_another_folder_is_refused_not_taken_for_ours(
    tmp_path: Path, davis: Path, one_cv_thread: None
) -> None:
    """``other/00003.jpg`` is not blackswan's ``…/blackswan/00003.jpg``; an upload of that name is."""
    root, service = _blackswan_alone(tmp_path, davis)
    session = service.session
    elsewhere = {"id": 7, "data": {"image": "/data/local-files/?d=other/00003.jpg"}}
    upload = {"id": 8, "data": {"image": "/data/upload/3/1a2b3c4d-00003.jpg"}}
    with TestClient(create_ml_backend(service), raise_server_exceptions=False) as client:
        assert client.post("/setup", json={"project": "3.1700000000", "schema": CONFIG}).status_code == 200
        problem = (
            "task 7: 'other/00003.jpg' is a file of folder 'other', not a frame of clip blackswan (only "
            f"its file name matches {root}/JPEGImages/480p/blackswan/00003.jpg; their clip is not in this "
            "session)"
        )
        body = {"tasks": [elsewhere, upload], "label_config": CONFIG}
        refusal, served = client.post("/predict", json=body).json()["results"]
        assert refusal == {"result": [], "score": 0.0, "model_version": f"frugalseg refused: {problem}"}
        assert served["model_version"].startswith("frugalseg-")
        annotation = {**event(3, [brush(np.ones((480, 854), bool))]), "task": elsewhere}
        response = client.post("/webhook", json=annotation)
        assert response.status_code == 422 and response.json()["error"] == problem
        assert client.get("/health").json()["refused"][-1]["error"] == problem
    assert not session.folder.exists()
    assert service.jobs == []


def _keypoint(**changes: Any) -> dict[str, Any]:
    value = {"x": 50.0, "y": 50.0, "width": 0.5, "keypointlabels": ["swan"], **changes.pop("value", {})}
    return {"id": "k1", "type": "keypointlabels", "from_name": "kp", "to_name": "image",
            "original_width": 854, "original_height": 480, "value": value, **changes}  # fmt: skip


@pytest.mark.parametrize(
    ("result", "words"),
    [
        (_keypoint(original_width=float("inf")), "lacks original_width/original_height"),
        (_keypoint(original_width=10**400), "no image frugalseg reads"),
        (_keypoint(meta={"instance_id": float("inf")}), "not a Label Studio result of its type"),
        ({**brush(np.ones((480, 854), bool)), "value": {"format": "rle", "rle": [1e300] * 4,
                                                         "brushlabels": ["swan"]}}, "brush rle does not fit"),
        (_keypoint(type="polygonlabels", value={"points": [[10**400, 1]], "polygonlabels": ["swan"]}),
         "not a Label Studio result of its type"),
    ],
)  # fmt: skip
def test_numbers_beyond_a_float_are_a_422_naming_the_result(
    backend: TestClient, result: dict[str, Any], words: str
) -> None:
    for sent in (
        event(0, [result]),
        {"tasks": [task(0)], "label_config": CONFIG, "params": {"context": {"result": [result]}}},
    ):
        body = json.dumps(sent)  # Infinity as Python writes it, as a JavaScript client may
        answer = backend.post("/webhook" if "action" in sent else "/predict", content=body)
        assert answer.status_code == 422 and words in answer.json()["error"], answer.text


def test_a_brush_declared_larger_than_the_frame_is_refused_before_it_is_decoded(backend: TestClient) -> None:
    """An 8192×8192 brush of literal runs would take minutes to decode; its size is compared first."""
    huge = brush(np.zeros((8, 8), bool))
    huge.update(original_width=8192, original_height=8192)
    answer = backend.post("/webhook", json=event(0, [huge]))
    assert answer.status_code == 422
    assert "drawn on an image of 8192×8192, the task's image is 854×480" in answer.json()["error"]


def test_a_long_task_id_is_cut_in_the_error(backend: TestClient) -> None:
    lost = {"id": "7" * 1_000_000, "data": {"image": "/data/upload/3/1a2b3c4d-cat.jpg"}}
    answer = backend.post("/predict", json={"tasks": [lost], "label_config": CONFIG})
    assert answer.status_code == 200 and len(answer.text) < 300
    [refusal] = answer.json()["results"]
    assert refusal["model_version"].startswith(f"frugalseg refused: task {'7' * 32}…: no frame")
    [listed] = backend.get("/health").json()["refused"]
    assert listed["task"] == f"task {'7' * 32}…" and len(json.dumps(listed)) < 400


def test_refusals_reach_the_person_in_health_the_log_and_the_tasks_predictions(
    backend: TestClient, service: SessionService, davis: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Label Studio stores a 427×240 brush on an 854×480 task and only logs ``422 Client Error``; it asks
    for a task's predictions again only under a new model version, which a refusal makes."""
    assert backend.get("/health").json()["refused"] == []
    version = backend.get("/health").json()["model_version"]
    small = brush(np.ones((240, 427), bool))
    with caplog.at_level("WARNING", logger="frugalseg.app.ml_backend"):
        assert backend.post("/webhook", json=event(2, [small])).status_code == 422
        assert backend.get("/health").json()["model_version"] != version
        # a batch with a frame beyond the session's 10 and one it has: each task its own answer
        answer = backend.post("/predict", json={"tasks": [task(15), task(3)], "label_config": CONFIG})
    reason = "task 102 result a1: drawn on an image of 427×240, the task's image is 854×480"
    beyond = "task 115: frame 15 of blackswan is not one of this session's (0…9 every 1)"
    assert [r.getMessage() for r in caplog.records] == [
        f"refused webhook ANNOTATION_CREATED of task 102 (422): {reason}",
        f"refused predict of task 115 (422): {beyond}",
    ]
    refused = backend.get("/health").json()["refused"]
    assert [(r["task"], r["request"], r["status"], r["error"]) for r in refused] == [
        ("task 102", "webhook ANNOTATION_CREATED", 422, reason),
        ("task 115", "predict", 422, beyond),
    ]
    [outside, inside] = answer.json()["results"]
    assert outside == {"result": [], "score": 0.0, "model_version": f"frugalseg refused: {beyond}"}
    assert inside["result"] == [] and inside["model_version"].startswith("frugalseg-")  # no mask yet
    # the task whose annotation was refused: its prediction, and the refusal beside it
    [prediction, refusal] = backend.post(
        "/predict", json={"tasks": [task(2)], "label_config": CONFIG}
    ).json()["results"][0]
    assert prediction["model_version"].startswith("frugalseg-")
    assert refusal["model_version"] == f"frugalseg refused: {reason}"
    # corrected (the right size): taken, and no longer listed
    assert backend.post("/webhook", json=event(2, [brush(truth(service, davis, 0) == 1)])).status_code == 201
    assert [r["task"] for r in backend.get("/health").json()["refused"]] == ["task 115"]
    assert (
        len(backend.post("/predict", json={"tasks": [task(2)], "label_config": CONFIG}).json()["results"])
        == 1
    )


def test_token_is_labels_studios_basic_auth_password(service: SessionService, caplog) -> None:
    """A refused webhook is logged (Label Studio drops the 401), and the 401 says how the backend takes it."""
    with TestClient(create_ml_backend(service, token="s3cret")) as client:
        assert client.get("/health").status_code == 401
        refused = client.post("/webhook", json=event(2, []))
        assert refused.status_code == 401 and refused.json()["error"] == (
            "a valid token is needed (Label Studio's Basic authentication, the token as password, or X-Token)"
        )
        assert "refused POST /webhook: no valid token" in caplog.text
        wrong = base64.b64encode(b"ls:nope").decode()
        assert client.get("/health", headers={"Authorization": f"Basic {wrong}"}).status_code == 401
        right = base64.b64encode(b"ls:s3cret").decode()
        assert client.get("/health", headers={"Authorization": f"Basic {right}"}).status_code == 200
        assert client.get("/health", headers={"X-Token": "s3cret"}).status_code == 200


def test_a_task_opened_alone_is_readied_for_clicks_and_a_batch_is_not(
    backend: TestClient, service: SessionService, davis: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Label Studio asks for one task's predictions as a person opens it: its first click had waited for
    the frame's features (0.4–0.9 s), as the page's does not."""
    readied: list[tuple[str, int]] = []
    monkeypatch.setattr(service.session, "prepare_frame", lambda video, frame: readied.append((video, frame)))
    predict(backend, [0, 3, 6])
    assert readied == []
    predict(backend, [6])
    assert readied == [(VIDEO, 6)]


def test_a_new_label_never_takes_the_id_another_region_of_the_annotation_names(
    backend: TestClient, service: SessionService, davis: Path
) -> None:
    """Cat (a new label) had taken id 2 before the dog's ``frugalseg-2`` reserved it: both one object."""
    annotate_frame_0(backend, service, davis)
    objects = MLBackendApp(service, token=None)._objects(
        VIDEO, [("abc", "cat"), ("frugalseg-2", "dog")], {}, ()
    )
    assert objects == [3, 2]  # the swan is 1
