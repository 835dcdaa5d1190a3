"""The weight-free tools' routes (box, scissors, superpixels): the package's masks, and bad input refused."""

from __future__ import annotations

import numpy as np
import pytest
from starlette.testclient import TestClient

from app.test_api import VIDEO, mask_of
from frugalseg.active.objects.simulation.annotation_types import GivenClick
from frugalseg.active.objects.tools.click_models import get_click_model
from frugalseg.active.objects.tools.graph_cut import ObjectPrior
from frugalseg.active.objects.tools.tools import IntelligentScissors, SuperpixelBrush
from frugalseg.app import SessionService
from frugalseg.app.server import MAX_ANCHORS
from frugalseg.data.io import read_frame

FRAME = f"/api/videos/{VIDEO}/0"
BOX = [300, 50, 560, 320]


@pytest.fixture
def image(davis) -> np.ndarray:
    return read_frame(davis / "JPEGImages" / "480p" / VIDEO / "00000.jpg")


def test_box_and_its_clicks_are_the_click_models(
    client: TestClient, service: SessionService, image: np.ndarray
) -> None:
    clicks = [{"object": 1, "x": 470, "y": 80, "positive": True}]
    answer = client.post(FRAME + "/box", json={"box": BOX, "clicks": clicks})
    assert answer.status_code == 200, answer.text
    moving = ObjectPrior(neighbour=service.session.frame_image(VIDEO, service.session.frames(VIDEO)[1]))
    expected = get_click_model().box(image, tuple(BOX), [GivenClick(**clicks[0])], known=moving)
    assert np.array_equal(mask_of(answer), expected) and expected.any()
    alone = client.post(FRAME + "/box", json={"box": BOX})
    assert np.array_equal(mask_of(alone), get_click_model().box(image, tuple(BOX)))
    named = client.post(FRAME + "/box", json={"box": BOX, "clicks": clicks, "object": 1})
    assert np.array_equal(mask_of(named), expected)  # nothing annotated yet: no prior to learn from
    # corners included: 1 px wide, a slip whose mask would replace the object (a drag this small is a click)
    column = client.post(FRAME + "/box", json={"box": [300, 50, 300, 320]})
    assert column.status_code == 400 and column.json()["error"].startswith("box: 300,50,300,320 is 1×271 px")
    outside = client.post(FRAME + "/box", json={"box": BOX, "clicks": [{**clicks[0], "x": 600}]})
    assert outside.status_code == 400 and "the click at x 600, y 80 lies outside" in outside.json()["error"]


def test_scissors_and_superpixels_are_the_tools(client: TestClient, image: np.ndarray) -> None:
    anchors = [(330, 120), (520, 150), (470, 300), (340, 280)]
    opened = client.post(FRAME + "/scissors", json={"points": anchors[:2]})
    assert opened.status_code == 200 and "rle" not in opened.json()
    assert opened.json()["contour"] == IntelligentScissors().contour(image, anchors[:2]).tolist()
    closed = client.post(FRAME + "/scissors", json={"points": anchors, "closed": True})
    assert closed.json()["contour"] == IntelligentScissors().contour(image, anchors, closed=True).tolist()
    assert np.array_equal(mask_of(closed), IntelligentScissors().mask(image, anchors))
    stroke = [(400, 200), (450, 220), (480, 260)]
    painted = client.post(FRAME + "/superpixels", json={"points": stroke})
    assert painted.status_code == 200, painted.text
    assert np.array_equal(mask_of(painted), SuperpixelBrush().paint(image, stroke))


@pytest.mark.parametrize(
    ("route", "body", "problem"),
    [
        ("box", {"box": [800, 10, 900, 50]}, "box: [800, 10, 900, 50] is off the 854×480 frame"),
        ("box", {"box": [50, 10, 40, 50]}, "box: [50, 10, 40, 50] is empty"),
        ("box", {"box": [1, 2, 3]}, "box: expected [x0, y0, x1, y1] in whole pixels"),
        (
            "box",
            {"box": BOX, "clicks": [{"object": 1, "x": 5, "y": 900, "positive": True}]},
            "click 0 at x 5, y 900 is off the 854×480 frame",
        ),
        (
            "box",
            {"box": BOX, "clicks": [{"object": 10**30, "x": 5, "y": 9, "positive": True}]},
            "click 0: object must be an id 1…254",
        ),
        ("box", {"box": BOX, "object": 10**30}, "object must be an id 1…254"),
        ("box", {"box": BOX, "object": True}, "object must be an id 1…254"),
        (
            "scissors",
            {"points": [[1, 1]] * (MAX_ANCHORS + 1)},
            f"scissors: expected a list of 1…{MAX_ANCHORS} points [x, y]",
        ),
        ("scissors", {"points": [[1, 1], [5, 5]], "closed": True}, "closing needs at least 3 anchor points"),
        ("scissors", {"points": [[1.5, 1]]}, "each point must be [x, y] in whole pixels"),
        (
            "superpixels",
            {"points": [[10, 10], [-1, 3]]},
            "superpixels: point 1 at x -1, y 3 is off the 854×480",
        ),
    ],
)
def test_bad_tool_input_is_a_400_naming_it(client: TestClient, route: str, body: dict, problem: str) -> None:
    answer = client.post(f"{FRAME}/{route}", json=body)
    assert answer.status_code == 400 and problem in answer.json()["error"], answer.text
    assert client.get(f"/api/videos/{VIDEO}").json()["annotated"] == []  # nothing written


def test_tools_answer_only_for_frames_of_the_session(client: TestClient) -> None:
    assert client.post(f"/api/videos/{VIDEO}/999/box", json={"box": BOX}).status_code == 404
