"""The annotation page's API, driven as the page drives it, against what `annotate add` does."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from starlette.testclient import TestClient
from tool_frames import slow_cut

from app.conftest import FRAMES, SESSION_FLAGS, open_session
from frugalseg.active.objects.session.given import GivenAnnotation
from frugalseg.active.objects.session.proposals import ProposalOptions
from frugalseg.active.objects.simulation.annotation_types import GivenClick, annotate_given_clicks
from frugalseg.active.objects.tools.click_models import get_click_model
from frugalseg.active.objects.tools.graph_cut import ObjectPrior
from frugalseg.app import SessionService, create_app, jobs
from frugalseg.app.server import decode_rle, encode_rle
from frugalseg.cli import main
from frugalseg.data.costs import DEFAULT_COSTS
from frugalseg.data.io import read_frame

VIDEO = "blackswan"
CLICKS = [
    {"object": 1, "x": 420, "y": 230, "positive": True},
    {"object": 1, "x": 700, "y": 100, "positive": False},
]


def truth_png(davis: Path, frame: int, video: str = VIDEO) -> Path:
    return davis / "Annotations" / "480p" / video / f"{frame:05d}.png"


def mask_of(response) -> np.ndarray:
    data = response.json()
    return decode_rle(data["rle"], (data["height"], data["width"]))


def first_mask(client: TestClient, davis: Path, video: str = VIDEO) -> None:
    """Upload the drawn mask of frame 0 and submit it, as the page does; wait for the propagation."""
    uploaded = client.post(f"/api/videos/{video}/0/upload", content=truth_png(davis, 0, video).read_bytes())
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["objects"] == [1]
    sent = client.post(f"/api/videos/{video}/0/submit", json={"mask": uploaded.json()["rle"]})
    assert sent.status_code == 202, sent.text


def test_rle_round_trip() -> None:
    ids = np.array([[0, 0, 1], [1, 1, 255]], np.uint8)
    assert encode_rle(ids) == [0, 2, 1, 3, 255, 1]
    assert np.array_equal(decode_rle(encode_rle(ids), (2, 3)), ids)


def test_preview_is_the_click_models_mask(client: TestClient, service: SessionService, davis: Path) -> None:
    first_mask(client, davis)
    service.wait()
    current = mask_of(client.get(f"/api/videos/{VIDEO}/6/mask"))
    assert np.array_equal(current, cv2.imread(str(service.session.folder / VIDEO / "masks/00006.png"), 0))
    preview = client.post(f"/api/videos/{VIDEO}/6/preview", json={"clicks": CLICKS})
    assert preview.status_code == 200, preview.text
    image = read_frame(davis / "JPEGImages" / "480p" / VIDEO / "00006.jpg")
    clicks = [GivenClick(**c) for c in CLICKS]
    frames = service.session.frames(VIDEO)
    moving = ObjectPrior(neighbour=service.session.frame_image(VIDEO, frames[frames.index(6) - 1]))
    known = {click.object: moving for click in clicks}  # how the frame moves; object 1 shown: no colours
    model = get_click_model()
    expected = annotate_given_clicks(image, current, clicks, DEFAULT_COSTS, model=model, known=known).mask
    assert np.array_equal(mask_of(preview), expected)
    assert (mask_of(preview) != current).any()  # the clicks changed the mask
    # nothing was saved
    assert (
        len(
            json.loads((service.session.folder / VIDEO / "state.json").read_text(encoding="utf-8"))[
                "annotations"
            ]
        )
        == 1
    )


def test_the_worker_gives_freed_memory_back_once_idle(
    client: TestClient, service: SessionService, davis: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """glibc kept the pages of a propagation's arenas: the server held about 0.5 GB more after each."""
    returned: list[int] = []
    monkeypatch.setattr(jobs, "return_free_memory", lambda: returned.append(len(service.jobs)))
    first_mask(client, davis)
    service.wait()
    deadline = time.monotonic() + 10
    while not returned and time.monotonic() < deadline:  # the worker returns them after its job
        time.sleep(0.01)
    assert returned == [1]


def test_submits_store_what_annotate_add_stores(
    client: TestClient, service: SessionService, davis: Path, tmp_path: Path
) -> None:
    first_mask(client, davis)
    service.wait()
    sent = client.post(f"/api/videos/{VIDEO}/6/submit", json={"clicks": CLICKS})
    assert sent.status_code == 202, sent.text
    assert sent.json()["record"]["kind"] == "clicks"
    assert sent.json()["record"]["seconds"] == 2 * 1.5 + 1  # two clicks and the frame, as the loop counts
    service.wait()
    assert [j["status"] for j in client.get("/api/jobs").json()["jobs"]] == ["done", "done"]

    cli = tmp_path / "cli"
    (tmp_path / "clicks.json").write_text(json.dumps({"clicks": CLICKS}), encoding="utf-8")
    add = ["annotate", "add", "--state", str(cli), "--root", str(davis), *SESSION_FLAGS, "--video", VIDEO]
    assert main([*add, "--frame", "0", "--mask", str(truth_png(davis, 0))]) == 0
    assert main([*add, "--frame", "6", "--clicks", str(tmp_path / "clicks.json")]) == 0
    page = service.session.folder / VIDEO
    assert (page / "state.json").read_text(encoding="utf-8") == (cli / VIDEO / "state.json").read_text(
        encoding="utf-8"
    )
    files = sorted(p.relative_to(page) for p in page.rglob("*.png"))
    assert files == sorted(p.relative_to(cli / VIDEO) for p in (cli / VIDEO).rglob("*.png"))
    assert all((page / f).read_bytes() == (cli / VIDEO / f).read_bytes() for f in files)

    proposal = client.get("/api/proposal").json()
    assert proposal["proposal"]["video"] == "car-shadow"  # a video not started comes first
    info = client.get(f"/api/videos/{VIDEO}").json()
    assert info["annotated"] == [0, 6] and info["objects"] == [{"id": 1, "name": "object 1"}]
    # the file of each frame, as the person knows it: the page shows it beside the frame's index
    assert info["files"] == [f"{frame:05d}.jpg" for frame in info["frames"]]


def test_a_token_is_required_when_set(service: SessionService, tmp_path: Path) -> None:
    app = create_app(service, token="s3cret", exports=tmp_path / "exports")
    with TestClient(app) as client:
        for path in ("/", "/api/session", f"/api/videos/{VIDEO}/0/image.jpg"):
            assert client.get(path).status_code == 401
            assert client.get(path, params={"token": "wrong"}).status_code == 401
            assert client.get(path, params={"token": "s3cret"}).status_code == 200
        assert client.get("/api/session", headers={"X-Token": "s3cret"}).status_code == 200
        refused = client.post(f"/api/videos/{VIDEO}/0/submit", json={"clicks": CLICKS})
        assert refused.status_code == 401 and "token" in refused.json()["error"]
    assert not (service.session.folder / VIDEO).exists()


@pytest.mark.parametrize(
    "path",
    [
        "/api/videos/..%2F..%2Fetc/0/image.jpg",
        "/api/videos/../0/image.jpg",
        "/api/videos/%2Fetc%2Fpasswd",
        "/api/videos/blackswan/10/image.jpg",  # the session uses frames 0…9
        "/api/videos/blackswan/-1/mask",
        "/api/videos/blackswan/..%2F00000/thumb.jpg",
        "/api/videos/nosuchvideo",
    ],
)
def test_paths_are_ids_never_files(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_bad_requests_get_a_4xx_with_a_message(
    client: TestClient, service: SessionService, davis: Path
) -> None:
    frame = f"/api/videos/{VIDEO}/0"
    not_png = client.post(frame + "/upload", content=b"GIF89a" + bytes(100))
    assert (not_png.status_code, not_png.json()) == (415, {"error": "the upload is not a PNG file"})
    big = client.post(frame + "/upload", content=b"\x89PNG\r\n\x1a\n" + bytes(2 << 20))
    assert big.status_code == 413 and "larger than 1048576 bytes" in big.json()["error"]
    small = cv2.imencode(".png", np.zeros((10, 10), np.uint8))[1].tobytes()
    wrong_size = client.post(frame + "/upload", content=small)
    assert wrong_size.status_code == 400
    assert wrong_size.json()["error"] == "the uploaded PNG is 10×10 px but the frame is 854×480"
    bomb = bytearray(cv2.imencode(".png", np.zeros((480, 854), np.uint8))[1].tobytes())
    bomb[16:24] = (60000).to_bytes(4, "big") * 2  # claims 60000×60000 px in 3 kB
    assert client.post(frame + "/upload", content=bytes(bomb)).status_code == 400
    coloured = np.zeros((480, 854, 3), np.uint8)
    coloured[5, 7] = (0, 0, 200)
    rgb = cv2.imencode(".png", coloured)[1].tobytes()
    not_ids = client.post(frame + "/upload", content=rgb)
    assert not_ids.status_code == 400
    assert not_ids.json()["error"] == (
        "the uploaded PNG: mask must be a palette or grey-level PNG of object ids, got PIL mode 'RGB' "
        "with colours: save it as a palette PNG, or black background and white object"
    )
    assert client.post(frame + "/submit", content=b"{oops").status_code == 400
    off = client.post(
        frame + "/preview", json={"clicks": [{"object": 1, "x": 900, "y": 5, "positive": True}]}
    )
    assert off.status_code == 400 and "click 0 at x 900, y 5 is off the 854×480 frame" in off.json()["error"]
    odd = client.post(frame + "/submit", json={"clicks": [{"object": "1", "x": 1, "y": 1, "positive": True}]})
    assert odd.status_code == 400 and "whole numbers" in odd.json()["error"]
    short = client.post(frame + "/submit", json={"mask": [0, 5]})
    assert short.status_code == 400 and "runs cover 5 pixels" in short.json()["error"]
    assert client.post("/api/export").status_code == 400  # nothing annotated yet
    assert not (service.session.folder / VIDEO).exists()


def test_a_mask_the_box_tool_made_is_booked_as_a_box_and_its_clicks(
    client: TestClient, service: SessionService, davis: Path
) -> None:
    """The page says which objects its box tool made: each costs a box (7 s) and 1.5 s a click, plus
    the frame's 1 s, as the loop's box type; a drawn mask costs 80 s an object."""
    ids = (cv2.imread(str(truth_png(davis, 0)), 0) > 0).astype(np.uint8)
    frame = f"/api/videos/{VIDEO}/0/submit"
    box = [100, 50, 400, 300]
    for boxes, problem in (
        ({"2": {"box": box}}, "a box names object 2; the mask holds [1]"),
        ({"1": {"box": box, "clicks": -1}}, "object 1: clicks -1 is not a click count"),
        ({"1": {"box": [100, 50, 900, 300]}}, "box: [100, 50, 900, 300] is off the 854×480 frame"),
        ({"1": 2}, "'1' → 2 is not an object id 1…254 and its box"),
        ([1], 'boxes: expected an object of id → {"box": [x0, y0, x1, y1], "clicks": n or […]}'),
        (
            {"1": {"box": box, "clicks": [{"object": 1, "x": 3}]}},
            "boxes: object 1: clicks: click 0: expected",
        ),
        ({"1": {"box": box, "clicks": [{**CLICKS[0], "x": 900}]}}, "click 0 at x 900, y "),
    ):
        refused = client.post(frame, json={"mask": encode_rle(ids), "boxes": boxes})
        assert refused.status_code == 400 and problem in refused.json()["error"], refused.text
    clicks = client.post(frame, json={"clicks": CLICKS, "boxes": {"1": {"box": box}}})
    assert clicks.status_code == 400 and "clicks take none" in clicks.json()["error"]
    sent = client.post(frame, json={"mask": encode_rle(ids), "boxes": {"1": {"box": box, "clicks": 2}}})
    assert sent.status_code == 202, sent.text
    record = sent.json()["record"]
    assert (record["kind"], record["seconds"]) == ("box", 7 + 2 * 1.5 + 1)
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None and [(a.kind, a.seconds, a.clicks, a.box) for a in state.annotations] == [
        ("box", 11.0, 2, (100, 50, 401, 301))  # pixel edges: the box route's corners are included
    ]
    # the page sends its box's clicks themselves: they are booked (and exported) with the object
    made = [
        {"object": 1, "x": 250, "y": 200, "positive": True},
        {"object": 1, "x": 120, "y": 60, "positive": False},
    ]
    again = {"mask": encode_rle(ids), "boxes": {"1": {"box": box, "clicks": made}}, "edits": 1}
    assert client.post(frame, json=again).status_code == 202
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None and [(a.clicks, a.points) for a in state.annotations[1:]] == [
        (2, ((250, 200, True), (120, 60, False)))
    ]


def test_an_object_made_with_clicks_beside_one_drawn_is_booked_as_its_clicks(
    client: TestClient, service: SessionService, davis: Path
) -> None:
    """A frame whose new object was drawn (a polygon) and whose other object the person clicked: the
    clicked one costs 1.5 s a click (and the frame's 1 s), not a drawn mask's 80 s."""
    ids = (cv2.imread(str(truth_png(davis, 0)), 0) > 0).astype(np.uint8)
    ids[400:440, 20:60] = 2  # a second object, drawn
    frame = f"/api/videos/{VIDEO}/0/submit"
    made = [{"object": 1, "x": 300 + k, "y": 200, "positive": k != 1} for k in range(3)]
    for clicked, problem in (
        ([{**made[0], "object": 3}], "object 3 made with clicks is not in the mask, which holds [1, 2]"),
        ([], "clicked: expected a list of 1…1000 clicks"),
        ({"1": 3}, "clicked: expected a list of 1…1000 clicks"),
        ([{**made[0], "x": 900}], "click 0 at x 900, y 200 is off the 854×480 frame"),
        ([{"object": 1, "x": 3}], "clicked: click 0: expected {object, x, y, positive}"),
    ):
        refused = client.post(frame, json={"mask": encode_rle(ids), "clicked": clicked})
        assert refused.status_code == 400 and problem in refused.json()["error"], refused.text
    clicks = client.post(frame, json={"clicks": CLICKS, "clicked": made})
    assert clicks.status_code == 400 and "clicks take none" in clicks.json()["error"]
    sent = client.post(frame, json={"mask": encode_rle(ids), "clicked": made})
    assert sent.status_code == 202, sent.text
    assert (sent.json()["record"]["kind"], sent.json()["record"]["seconds"]) == ("mask", 3 * 1.5 + 1 + 80)
    service.wait()
    state = service.session.state(VIDEO)
    assert state is not None and [(a.object, a.kind, a.seconds, a.clicks) for a in state.annotations] == [
        (1, "clicks", 5.5, 3),
        (2, "mask", 80.0, 0),
    ]
    # its clicks are booked with it, so that the export holds them as its clicks label
    assert [a.points for a in state.annotations] == [
        ((300, 200, True), (301, 200, False), (302, 200, True)),
        (),
    ]


def test_two_tabs_submitting_at_once_leave_a_consistent_session(
    client: TestClient, service: SessionService, davis: Path
) -> None:
    first_mask(client, davis)
    service.wait()
    gate = threading.Barrier(2)
    answers: list[int] = []

    def tab(frame: int) -> None:
        gate.wait()
        clicks = [{**CLICKS[0], "x": 400 + frame}]
        answers.append(
            client.post(f"/api/videos/{VIDEO}/{frame}/submit", json={"clicks": clicks}).status_code
        )

    tabs = [threading.Thread(target=tab, args=(frame,)) for frame in (4, 8)]
    for thread in tabs:
        thread.start()
    for thread in tabs:
        thread.join()
    assert answers == [202, 202]  # the second supersedes the first's propagation
    service.wait()
    state, current = service.session.saved_state(VIDEO)
    assert current and len(state.history) == 3 and len(state.annotated) == 3
    assert [a.iteration for a in state.annotations] == [0, 1, 2]


def test_a_frame_annotated_in_another_tab_since_it_was_read_is_not_overwritten(
    client: TestClient, service: SessionService, davis: Path
) -> None:
    """Two tabs on frame 4: the last submit had won silently, the first's edit lost and both booked."""
    first_mask(client, davis)
    service.wait()
    reads = [client.get(f"/api/videos/{VIDEO}/4/mask").json()["edits"] for _ in range(2)]  # two tabs open it
    assert reads == [1, 1]
    sent = client.post(f"/api/videos/{VIDEO}/4/submit", json={"clicks": CLICKS[:1], "edits": reads[0]})
    assert sent.status_code == 202 and sent.json()["edits"] == 2
    clicks = [{**CLICKS[0], "x": 380}]
    stale = client.post(f"/api/videos/{VIDEO}/4/submit", json={"clicks": clicks, "edits": reads[1]})
    assert stale.status_code == 412
    assert stale.json()["error"] == (
        f"frame 4 of {VIDEO} was annotated elsewhere (another page, `annotate add`, Label Studio) since this "
        "page opened it: open it again to see that edit, then make yours"
    )
    again = client.post(f"/api/videos/{VIDEO}/4/submit", json={"clicks": clicks, "edits": 2})  # reopened
    other = client.post(f"/api/videos/{VIDEO}/8/submit", json={"clicks": clicks, "edits": reads[1]})
    assert (again.status_code, other.status_code) == (202, 202)  # another frame's edits do not matter
    service.wait()
    state, _ = service.session.saved_state(VIDEO)
    assert [a.frame for a in state.annotations] == [0, 4, 4, 8]


def test_a_restart_finishes_what_a_killed_server_left(
    service: SessionService, davis: Path, tmp_path: Path
) -> None:
    session = service.session
    ids = (cv2.imread(str(truth_png(davis, 0)), 0) > 0).astype(np.uint8)
    session.add(VIDEO, 0, GivenAnnotation(Path("truth"), ids.shape, ids), propagate=False)
    saved, current = session.saved_state(VIDEO)
    assert not current and len(saved.annotations) == 1  # the annotation is saved before propagating
    restarted = SessionService(open_session(session.folder, davis))
    assert restarted.pending(VIDEO)
    restarted.wait()
    cli = tmp_path / "cli"
    add = ["annotate", "add", "--state", str(cli), "--root", str(davis), *SESSION_FLAGS, "--video", VIDEO]
    assert main([*add, "--frame", "0", "--mask", str(truth_png(davis, 0))]) == 0
    assert (session.folder / VIDEO / "state.json").read_text(encoding="utf-8") == (
        cli / VIDEO / "state.json"
    ).read_text(encoding="utf-8")


def test_a_restarted_server_shows_the_masks_of_before_until_its_propagation_replaces_them(
    service: SessionService, davis: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server killed while it propagated an addition: the next one serves the masks ``masks/`` holds and
    their unreliability until its own propagation reaches each frame (it served empty masks)."""
    session = service.session
    ids = (cv2.imread(str(truth_png(davis, 0)), 0) > 0).astype(np.uint8)
    session.add(VIDEO, 0, GivenAnnotation(Path("truth"), ids.shape, ids))
    clicks = (GivenClick(**CLICKS[0]),)
    session.add(VIDEO, 8, GivenAnnotation(Path("clicks"), ids.shape, clicks=clicks), propagate=False)
    restarted_session = open_session(session.folder, davis)
    gate, finish = threading.Event(), restarted_session.finish

    def held(name: str, on_frame=None):
        gate.wait(60)
        return finish(name, on_frame=on_frame)

    monkeypatch.setattr(restarted_session, "finish", held)
    restarted = SessionService(restarted_session, ProposalOptions(frames="uncertainty", types="mask"))
    with TestClient(create_app(restarted, exports=tmp_path / "exports")) as client:
        try:
            assert restarted.pending(VIDEO)
            saved = cv2.imread(str(session.folder / VIDEO / "masks" / "00006.png"), cv2.IMREAD_UNCHANGED)
            assert saved.any()
            assert np.array_equal(mask_of(client.get(f"/api/videos/{VIDEO}/6/mask")), saved)
            info = client.get(f"/api/videos/{VIDEO}").json()
            assert len(info["unreliable"]) == FRAMES and None not in info["unreliable"]
            assert None not in info["expected_error"]
            reason = client.get(f"/api/proposal?video={VIDEO}").json()["proposal"]["reason"]
            assert "its unreliability before this annotation" in reason
        finally:
            gate.set()  # the propagation goes on, and the server stops it as it closes
        restarted.wait()
    assert restarted.session.saved_state(VIDEO)[1]


def test_an_export_asked_for_while_a_submit_waits_to_propagate_is_refused(
    service: SessionService, client: TestClient, davis: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """409 from the service itself: the route's own check ran before a submit under way had queued its job,
    and the export then wrote tool files of the old masks beside a store of the new annotation."""
    first_mask(client, davis)
    service.wait()
    gate, finish = threading.Event(), service.session.finish

    def held(name: str, on_frame=None):
        gate.wait(60)
        return finish(name, on_frame=on_frame)

    monkeypatch.setattr(service.session, "finish", held)
    ids = (cv2.imread(str(truth_png(davis, 5)), 0) > 0).astype(np.uint8)
    try:
        service.add(VIDEO, 5, GivenAnnotation(Path("truth"), ids.shape, ids))
        with pytest.raises(jobs.PropagationPending):
            service.export(service.session.folder.parent / "exports")
        refused = client.post("/api/export")
        assert refused.status_code == 409 and "a propagation is running" in refused.json()["error"]
    finally:
        gate.set()
    service.wait()
    assert client.post("/api/export").status_code == 200


def test_export_then_train_on_it(
    client: TestClient, service: SessionService, davis: Path, tmp_path: Path
) -> None:
    first_mask(client, davis)
    service.wait()
    exported = client.post("/api/export")
    assert exported.status_code == 200, exported.text
    store, tools = tmp_path / "exports" / "store-001", tmp_path / "exports" / "store-001-tools"
    files = [tools / "coco.json", tools / "label-studio.json", tools / f"cvat-video-{VIDEO}.xml"]
    tools = [str(f) for f in files]
    back = (
        f"frugalseg label import {files[0]} --tool coco --format davis --root {davis.resolve()} --split all"
    )
    back += " --out NEW_STORE"
    assert exported.json() == {
        "store": str(store),
        "written": 10,
        "tools": tools,
        "unchanged": False,
        "import": back,
    }
    again = client.post("/api/export").json()
    assert again == exported.json() | {"unchanged": True}  # the same store
    # The tool files hold the session's objects (a person opens them, corrects, and imports again):
    # the swan on each of the 10 frames, under its own id, no background.
    from frugalseg.autolabel.store import LabelStore
    from frugalseg.interop import read_export, stored_frames

    frames = stored_frames(LabelStore(store), service.session.format)
    coco = read_export("coco", files[0])
    assert len(coco.frames) == len(frames) == 10
    assert [(s.label, s.instance_id) for f in coco.frames for s in f.shapes] == [("object", 1)] * 10
    from app.training import train_one_step

    train_one_step(davis, tmp_path / "exports" / "store-001", service.session.folder)


def test_the_clicks_recipe_trains_on_a_person_s_clicks_from_an_export(
    client: TestClient, service: SessionService, davis: Path, tmp_path: Path
) -> None:
    """The clicks of the page, exported as a ``clicks`` label, are what the ``clicks`` recipe trains on:
    the two clicked pixels, the positive one the object (1), the negative one background (0)."""
    from app.training import first_batch
    from frugalseg.datamodules.options import LabelOptions, RecipeOptions

    assert client.post(f"/api/videos/{VIDEO}/0/submit", json={"clicks": CLICKS}).status_code == 202
    service.wait()
    store = Path(client.post("/api/export").json()["store"])
    recipe, labels = RecipeOptions("clicks", budget=1), LabelOptions(clicks=str(store))
    batch = first_batch(davis, service.session.folder, tmp_path / "view", recipe, labels, batch_size=1)
    label = batch["label"][0].numpy()
    assert batch["meta"]["kind"] == ["clicks"]
    assert np.argwhere(label != 255).tolist() == [[100, 700], [230, 420]] and label[
        label != 255
    ].tolist() == [0, 1]


def test_a_busy_port_is_a_clear_error(tmp_path: Path, davis: Path, capsys) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        serve = ["annotate", "serve", "--state", str(tmp_path / "s"), "--root", str(davis)]
        assert main([*serve, "--port", str(port)]) == 2
    error = capsys.readouterr().err
    assert f"error: port: cannot listen on 127.0.0.1 port {port}: Address already in use" in error
    assert not (tmp_path / "s").exists()


def test_new_objects_with_a_class_name(client: TestClient, service: SessionService, davis: Path) -> None:
    first_mask(client, davis)
    service.wait()
    ids = mask_of(client.get(f"/api/videos/{VIDEO}/3/mask"))
    ids[:40, :60] = 2  # a second object in the top-left corner
    refused = client.post(f"/api/videos/{VIDEO}/3/submit", json={"mask": encode_rle(ids)})
    assert refused.status_code == 400
    assert "object 2 unknown in video 'blackswan' (known: 1)" in refused.json()["error"]
    body = {"mask": encode_rle(ids), "new_objects": True, "names": {"2": "duck"}}
    sent = client.post(f"/api/videos/{VIDEO}/3/submit", json=body)
    assert sent.status_code == 202 and sent.json()["objects"] == [1, 2]
    # the new object was drawn (80 s); the swan, as the page showed it, was looked at and accepted (1 s)
    assert sent.json()["record"]["kind"] == "mask" and sent.json()["record"]["seconds"] == 80 + 1
    service.wait()
    objects = client.get(f"/api/videos/{VIDEO}").json()["objects"]
    assert objects == [{"id": 1, "name": "object 1"}, {"id": 2, "name": "duck"}]
    # the proposal names its objects as the video does (the page showed their ids alone)
    proposed = client.get(f"/api/proposal?video={VIDEO}").json()["proposal"]
    assert proposed["objects"] == [1, 2] and proposed["names"] == {"1": "object 1", "2": "duck"}
    state, _ = service.session.saved_state(VIDEO)
    assert state.names == {2: "duck"}  # the session's state holds the name, no side file
    assert sorted(p.name for p in service.session.folder.iterdir()) == [VIDEO, "session.json"]
    assert state.objects == {1: 0, 2: 3}  # object 2 is never propagated before frame 3
    assert not (state.masks[2] == 2).any() and (state.masks[3] == 2).sum() == 40 * 60


def test_a_new_object_another_tab_declared_under_the_same_id_is_not_merged_with_it(
    client: TestClient, service: SessionService, davis: Path
) -> None:
    """Two tabs each declared object 2: the second's "stick" had been booked as the first's "duck"."""
    first_mask(client, davis)
    service.wait()
    ids = mask_of(client.get(f"/api/videos/{VIDEO}/3/mask"))
    ids[:40, :60] = 2
    body = {"mask": encode_rle(ids), "new_objects": True, "names": {"2": "duck"}, "declared": [2]}
    assert client.post(f"/api/videos/{VIDEO}/3/submit", json=body).status_code == 202
    service.wait()
    other = mask_of(client.get(f"/api/videos/{VIDEO}/8/mask"))
    other[-30:, -50:] = 2
    body = {"mask": encode_rle(other), "new_objects": True, "names": {"2": "stick"}, "declared": [2]}
    refused = client.post(f"/api/videos/{VIDEO}/8/submit", json=body)
    assert refused.status_code == 412
    assert refused.json()["error"] == (
        f"object 2 of {VIDEO} was declared ('duck') on another page since this one opened: open the frame "
        "again to see it, then declare yours anew (it gets its own id)"
    )
    state, _ = service.session.saved_state(VIDEO)
    assert state.names == {2: "duck"} and [a.frame for a in state.annotations] == [0, 3, 3]


def test_a_starting_server_compiles_the_click_models_solver_in_the_background(
    service: SessionService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared = threading.Event()
    monkeypatch.setattr(jobs, "prepare_cuts", prepared.set)
    with TestClient(create_app(service, exports=tmp_path / "exports")):
        assert prepared.wait(5), "the server started without preparing the solver"


def test_a_server_that_stops_stops_its_propagation_and_the_next_one_makes_its_masks(
    service: SessionService, davis: Path, tmp_path: Path
) -> None:
    with TestClient(create_app(service, exports=tmp_path / "exports")) as client:
        first_mask(client, davis)
        assert service.pending(VIDEO)
    assert not service.pending()  # the lifespan's end stopped it: no thread left running at exit
    assert [job.status for job in service.jobs] in (["superseded"], ["done"])
    again = SessionService(service.session)
    again.wait()
    assert not again.pending() and again.session.saved_state(VIDEO)[1]  # the masks owed are made


def test_a_propagation_that_will_not_stop_in_time_is_logged_at_shutdown_not_raised(
    service: SessionService, tmp_path: Path, monkeypatch, caplog
) -> None:
    def stuck(timeout: float = 60.0) -> None:
        raise TimeoutError("the propagation of 'blackswan' did not stop in 60 s")

    monkeypatch.setattr(service, "close", stuck)
    with TestClient(create_app(service, exports=tmp_path / "exports")) as client:
        assert client.get("/api/session").status_code == 200
    assert "did not stop in 60 s" in caplog.text


def test_a_preview_a_later_one_of_its_frame_replaced_while_it_ran_is_stopped(
    client: TestClient, service: SessionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first preview of frame 3 runs a cut of about 2 s (`slow_cut`); a second one of frame 3, of another
    # click, comes while it runs: it answers, and the first stops (409) well before its cut would have ended.
    # A box preview of frame 3 replaces a click preview the same way; a preview of frame 5 meanwhile stops
    # nothing of frame 3's.
    graphs = iter([slow_cut(500), slow_cut(500)])
    running = threading.Event()
    slow_frames = {3}

    def previewed(video: str, frame: int, *given: object) -> np.ndarray:
        if frame in slow_frames:
            slow_frames.discard(frame)
            cuts, to_object, to_background = next(graphs)
            running.set()
            cuts.source_side(to_object, to_background)
        return np.zeros((480, 854), np.uint8)

    monkeypatch.setattr(service.session, "preview", previewed)
    monkeypatch.setattr(service.session, "box_preview", lambda *given: np.zeros((480, 854), bool))
    answers: dict[str, tuple[int, str, float]] = {}
    first_click = {"clicks": CLICKS[:1]}

    def ask(name: str, path: str, body: dict) -> None:
        began = time.perf_counter()
        answer = client.post(path, json=body)
        answers[name] = (answer.status_code, answer.json().get("error", ""), time.perf_counter() - began)

    first = threading.Thread(target=ask, args=("first", f"/api/videos/{VIDEO}/3/preview", first_click))
    first.start()
    assert running.wait(30)
    ask("other frame", f"/api/videos/{VIDEO}/5/preview", first_click)
    assert first.is_alive()  # frame 5's preview did not stop frame 3's
    ask("second", f"/api/videos/{VIDEO}/3/preview", {"clicks": CLICKS[1:]})
    first.join()
    assert answers["other frame"][0] == answers["second"][0] == 200
    assert answers["first"][:2] == (409, "a later preview of this frame replaced this one")
    assert answers["first"][2] < 1.5
    running.clear()
    slow_frames.add(3)
    first = threading.Thread(target=ask, args=("first", f"/api/videos/{VIDEO}/3/preview", first_click))
    first.start()
    assert running.wait(30)
    ask("box", f"/api/videos/{VIDEO}/3/box", {"box": [100, 50, 400, 300]})
    first.join()
    assert answers["box"][0] == 200 and answers["first"][0] == 409


def test_a_preview_that_only_adds_clicks_to_one_under_way_waits_for_it_and_goes_on_from_it(
    client: TestClient, service: SessionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first preview (one click) runs a cut of about 0.3 s; the second (that click and one more) comes
    # while it runs. Neither is stopped: the second's preview begins once the first's has ended (the click
    # model keeps the first click's answer for it).
    cuts, to_object, to_background = slow_cut(300)
    running = threading.Event()
    events: list[str] = []

    def previewed(video: str, frame: int, given: GivenAnnotation, *rest: object) -> np.ndarray:
        events.append(f"begin {len(given.clicks)}")
        if len(given.clicks) == 1:
            running.set()
            cuts.source_side(to_object, to_background)
        events.append(f"end {len(given.clicks)}")
        return np.zeros((480, 854), np.uint8)

    monkeypatch.setattr(service.session, "preview", previewed)
    statuses: list[int] = []
    path = f"/api/videos/{VIDEO}/3/preview"
    first = threading.Thread(
        target=lambda: statuses.append(client.post(path, json={"clicks": CLICKS[:1]}).status_code)
    )
    first.start()
    assert running.wait(30)
    statuses.append(client.post(path, json={"clicks": CLICKS}).status_code)
    first.join()
    assert statuses == [200, 200]
    assert events == ["begin 1", "end 1", "begin 2", "end 2"]


def test_opening_a_frame_readies_the_click_model_for_it(
    client: TestClient, service: SessionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page asks for a frame's mask as it opens it; the click model is then given that frame to prepare.
    prepared: list[np.ndarray] = []
    monkeypatch.setattr(service.session.click_model, "prepare", prepared.append)
    answer = client.get(f"/api/videos/{VIDEO}/4/mask")
    assert answer.status_code == 200 and not mask_of(answer).any()
    assert len(prepared) == 1 and np.array_equal(prepared[0], service.session.frame_image(VIDEO, 4))


def test_clicks_are_submitted_on_the_mask_the_page_showed_however_the_frame_propagated_since(
    client: TestClient, service: SessionService, davis: Path
) -> None:
    """A propagation that changed frame 6 between a click's preview and its submit had stored the clicks
    on the new mask: not the one the person saw (1,667 px apart on a helper's run)."""
    first_mask(client, davis)
    service.wait()
    shown = mask_of(client.get(f"/api/videos/{VIDEO}/6/mask"))
    base = encode_rle(shown)
    preview = mask_of(client.post(f"/api/videos/{VIDEO}/6/preview", json={"clicks": CLICKS, "base": base}))
    moved = np.zeros_like(shown)
    moved[: shown.shape[0] // 2] = 1  # frame 6's mask now: another annotation propagated over it
    service.current_mask = lambda video, frame: moved  # type: ignore[method-assign]
    sent = client.post(f"/api/videos/{VIDEO}/6/submit", json={"clicks": CLICKS, "base": base})
    assert sent.status_code == 202, sent.text
    state, _ = service.session.saved_state(VIDEO, masks=False)
    t = service.session.frames(VIDEO).index(6)
    assert np.array_equal(state.annotated[t], preview) and not np.array_equal(preview, moved)
    refused = client.post(f"/api/videos/{VIDEO}/6/submit", json={"mask": base, "base": base})
    assert refused.status_code == 400 and 'a "mask" takes none' in refused.json()["error"]
