"""The page on a person's own frames: a DAVIS layout with no ``Annotations/``, two clips, no ground truth."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from starlette.testclient import TestClient

from app.conftest import open_session
from frugalseg.active.objects.session.exports import import_command
from frugalseg.active.objects.session.given import GivenAnnotation
from frugalseg.active.objects.session.proposals import ProposalOptions
from frugalseg.active.objects.session.session import AnnotationSession
from frugalseg.app import SessionService, create_app
from frugalseg.app.server import decode_rle, encode_rle
from frugalseg.autolabel.store import LabelStore
from frugalseg.cli import configure_logging, main
from frugalseg.interop import stored_frames

VIDEOS = ("blackswan", "car-shadow")


@pytest.fixture
def own_frames(shared_data: Path, tmp_path: Path) -> Path:
    """The first 10 frames of two DAVIS clips, frames only (what a person has)."""
    root = tmp_path / "own"
    for video in VIDEOS:
        folder = root / "JPEGImages" / "480p" / video
        folder.mkdir(parents=True)
        for frame in range(10):
            name = f"{frame:05d}.jpg"
            shutil.copy(shared_data / "davis_dev" / "JPEGImages" / "480p" / video / name, folder / name)
    return root


@pytest.fixture
def own_service(tmp_path: Path, own_frames: Path, one_cv_thread) -> SessionService:
    return SessionService(
        open_session(tmp_path / "state", own_frames), ProposalOptions(frames="uncertainty", types="mask")
    )


@pytest.fixture
def own_client(own_service: SessionService, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(own_service, exports=tmp_path / "exports")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def box_mask(top: int, left: int) -> list[int]:
    """The run-length code of one object drawn as a 200×300 box on an 854×480 frame."""
    ids = np.zeros((480, 854), np.uint8)
    ids[top : top + 200, left : left + 300] = 1
    return encode_rle(ids)


def test_read_routes_answer_while_the_first_propagation_runs(
    own_client: TestClient, own_service: SessionService
) -> None:
    """Every read route answers 200 at every moment of a video's first propagation (500s before)."""
    release = threading.Event()
    finish = own_service.session.finish

    def slow_finish(name: str, on_frame=None):  # the job holds until the routes were read while pending
        release.wait(60)
        return finish(name, on_frame)

    own_service.session.finish = slow_finish  # type: ignore[method-assign]
    sent = own_client.post("/api/videos/blackswan/0/submit", json={"mask": box_mask(100, 200)})
    assert sent.status_code == 202, sent.text
    assert own_service.pending("blackswan")
    try:
        overview = own_client.get("/api/session")
        assert overview.status_code == 200, overview.text
        row = {v["name"]: v for v in overview.json()["videos"]}["blackswan"]
        assert (row["annotated"], row["unreliable"], row["pending"]) == (1, None, True)
        video = own_client.get("/api/videos/blackswan")
        assert video.status_code == 200 and video.json()["unreliable"] == [None] * 10
        for path in ("/api/jobs", "/api/videos/blackswan/3/mask", "/api/videos/blackswan/3/thumb.jpg"):
            assert own_client.get(path).status_code == 200, path
        # the other clip's first frame needs nothing from this propagation: proposed at once
        proposal = own_client.get("/api/proposal").json()["proposal"]
        assert (proposal["video"], proposal["frame"], proposal["kind"]) == ("car-shadow", 0, "mask")
    finally:
        release.set()
    own_service.wait()
    after = {v["name"]: v for v in own_client.get("/api/session").json()["videos"]}["blackswan"]
    assert after["pending"] is False and 0 <= after["unreliable"] <= 1


def test_export_needs_no_ground_truth_and_an_unchanged_session_exports_to_the_same_store(
    own_client: TestClient, own_service: SessionService, tmp_path: Path, capsys
) -> None:
    for video, top in zip(VIDEOS, (100, 150), strict=True):
        assert (
            own_client.post(f"/api/videos/{video}/0/submit", json={"mask": box_mask(top, 200)}).status_code
            == 202
        )
        own_service.wait()
    exported = own_client.post("/api/export")
    assert exported.status_code == 200, exported.text
    store = tmp_path / "exports" / "store-001"
    tools = [f"{store}-tools/{name}" for name in ("coco.json", "label-studio.json")]
    tools += [f"{store}-tools/cvat-video-{video}.xml" for video in VIDEOS]
    answer = {"store": str(store), "written": 20, "tools": tools, "unchanged": False}
    assert exported.json() == answer | {"import": import_command(own_service.session, store)}
    assert exported.json()["import"].startswith(
        f"frugalseg label import {store}-tools/coco.json --tool coco "
    )
    again = own_client.post("/api/export")
    assert again.json() == exported.json() | {"unchanged": True}
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == ["store-001", "store-001-tools"]
    frames = stored_frames(LabelStore(store), own_service.session.format)
    assert len(frames) == 20
    # the CLI's export of the same store needs no ground truth either
    out = tmp_path / "coco-again.json"
    assert main(["label", "export", "--store", str(store), "--tool", "coco", "--out", str(out)]) == 0
    assert len(json.loads(out.read_text(encoding="utf-8"))["images"]) == 20
    # a later addition makes a new store
    assert (
        own_client.post("/api/videos/blackswan/5/submit", json={"mask": box_mask(120, 220)}).status_code
        == 202
    )
    own_service.wait()
    assert own_client.post("/api/export").json()["store"] == str(tmp_path / "exports" / "store-002")


def test_a_failed_export_leaves_no_store(
    own_client: TestClient, own_service: SessionService, tmp_path: Path, monkeypatch
) -> None:
    assert (
        own_client.post("/api/videos/blackswan/0/submit", json={"mask": box_mask(100, 200)}).status_code
        == 202
    )
    own_service.wait()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("frugalseg.interop.write_tool_files", broken)
    assert own_client.post("/api/export").status_code == 500
    assert not (tmp_path / "exports").exists() or not any((tmp_path / "exports").iterdir())


@pytest.mark.parametrize("route", ["submit", "preview"])
def test_json_nested_too_deeply_is_a_400(own_client: TestClient, route: str) -> None:
    depth = 10**6
    body = "[" * depth + "]" * depth
    answer = own_client.post(f"/api/videos/blackswan/0/{route}", content=body)
    assert (answer.status_code, answer.json()) == (400, {"error": "JSON nested too deeply"})


def test_a_server_error_logs_its_traceback(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    configure_logging()
    try:
        raise ValueError("out of range")
    except ValueError:
        logging.getLogger("frugalseg.app.server").exception("GET /api/session failed")
    err = capsys.readouterr().err
    assert err.startswith("error: GET /api/session failed\nTraceback (most recent call last):\n")
    assert err.rstrip().endswith("ValueError: out of range")


def test_frames_show_as_they_arrive_and_the_proposal_comes_before_the_clip_is_done(
    own_client: TestClient, own_service: SessionService
) -> None:
    """A second annotation: its job counts real frames, the filmstrip shows each new mask as it comes,
    and the proposal is made while the clip still propagates, on frames that are final."""
    for video in VIDEOS:
        assert (
            own_client.post(f"/api/videos/{video}/0/submit", json={"mask": box_mask(100, 200)}).status_code
            == 202
        )
        own_service.wait()
    release, held = threading.Event(), threading.Event()
    finish = own_service.session.finish

    def held_finish(name: str, on_frame=None):  # the engine stops after the frames nearest the annotation
        seen: list[int] = []

        def report(t, mask, disagreement, unsure):
            on_frame(t, mask, disagreement, unsure)
            seen.append(t)
            if len(seen) == 5:
                held.set()
                release.wait(60)

        return finish(name, report)

    own_service.session.finish = held_finish  # type: ignore[method-assign]
    sent = own_client.post("/api/videos/blackswan/9/submit", json={"mask": box_mask(130, 260)})
    assert sent.status_code == 202, sent.text
    assert held.wait(60)
    try:
        job = own_client.get("/api/jobs").json()["jobs"][-1]
        assert (job["status"], job["frames"], job["done"], job["progress"]) == ("propagating", 10, 5, 0.5)
        shown = own_client.get("/api/videos/blackswan/9/mask").json()
        assert shown["rle"] == box_mask(130, 260)  # the new annotation shows at once
        made = []
        propose = own_service.session.propose
        own_service.session.propose = lambda *a, **kw: made.append(1) or propose(*a, **kw)  # type: ignore[method-assign]
        answer = own_client.get("/api/proposal").json()
        assert own_client.get("/api/proposal").json() == answer and len(made) == 1  # not made again at once
        partial = own_service._partial["blackswan"]
        assert answer["proposal"]["provisional"] is True  # made at once, from what is known
        if answer["proposal"]["video"] == "blackswan" and answer["proposal"]["frame"] not in partial.fresh:
            assert "is not propagated yet" in answer["proposal"]["reason"]
        fresh_masks = {
            t: own_client.get(f"/api/videos/blackswan/{t}/mask").json()["rle"] for t in partial.fresh
        }
    finally:
        release.set()
    own_service.wait()
    final = own_service.session.state("blackswan")
    assert final is not None
    for t, rle in fresh_masks.items():  # a frame shown early is the final frame
        assert rle == encode_rle(final.masks[t]), t
    assert own_client.get("/api/proposal").json()["proposal"]["provisional"] is False


def test_a_submit_while_the_clip_propagates_supersedes_it(
    own_client: TestClient, own_service: SessionService, own_frames: Path, tmp_path: Path
) -> None:
    """A person who submits the next frame before the clip is done does not wait: the running
    propagation stops at its next frame and one propagation of both annotations follows, whose masks
    are those of adding the annotations one after the other."""
    masks = {0: box_mask(100, 200), 9: box_mask(130, 260), 5: box_mask(120, 230)}
    assert own_client.post("/api/videos/blackswan/0/submit", json={"mask": masks[0]}).status_code == 202
    own_service.wait()
    release, held = threading.Event(), threading.Event()
    finish = own_service.session.finish

    def held_finish(name: str, on_frame=None):  # the propagation after frame 9 holds at its second frame
        seen: list[int] = []

        def report(t, mask, disagreement, unsure):
            on_frame(t, mask, disagreement, unsure)
            seen.append(t)
            if len(seen) == 2 and not held.is_set():
                held.set()
                release.wait(60)

        return finish(name, report)

    own_service.session.finish = held_finish  # type: ignore[method-assign]
    assert own_client.post("/api/videos/blackswan/9/submit", json={"mask": masks[9]}).status_code == 202
    assert held.wait(60)
    answer: list = []
    body = {"mask": masks[5]}
    later = threading.Thread(
        target=lambda: answer.append(own_client.post("/api/videos/blackswan/5/submit", json=body))
    )
    later.start()
    while not any(job.stop for job in own_service.jobs):  # the submit asked the running job to stop
        time.sleep(0.01)
    release.set()
    later.join(60)
    assert answer[0].status_code == 202, answer[0].text
    own_service.wait()
    assert [job.status for job in own_service.jobs] == ["done", "superseded", "done"]
    jobs = own_client.get("/api/jobs").json()["jobs"]
    # stopped at its third frame: the two frames it propagated, not the whole clip
    assert [jobs[1][key] for key in ("status", "done", "frames", "progress")] == ["superseded", 2, 10, 0.2]
    state, current = own_service.session.saved_state("blackswan")
    assert current and sorted(state.annotated) == [0, 5, 9]

    alone = open_session(tmp_path / "alone", own_frames)  # the same annotations, each propagated in turn
    for frame, rle in masks.items():
        alone.add("blackswan", frame, GivenAnnotation(Path("mask"), (480, 854), decode_rle(rle, (480, 854))))
    expected = alone.state("blackswan")
    assert expected is not None
    for t in range(10):
        assert np.array_equal(state.masks[t], expected.masks[t]), t


def test_clicks_submitted_while_the_clip_propagates_correct_the_mask_the_page_shows(
    own_client: TestClient, own_service: SessionService
) -> None:
    """The clicks correct the frame's mask as the page shows it (its preview), not a mask the submit
    would first have to propagate the whole clip for."""
    assert (
        own_client.post("/api/videos/blackswan/0/submit", json={"mask": box_mask(100, 200)}).status_code
        == 202
    )
    own_service.wait()
    release, held = threading.Event(), threading.Event()
    finish = own_service.session.finish

    def held_finish(name: str, on_frame=None):
        def report(t, mask, disagreement, unsure):
            on_frame(t, mask, disagreement, unsure)
            if t == 8 and not held.is_set():  # frame 9's first neighbour came; frame 5 is stale
                held.set()
                release.wait(60)

        return finish(name, report)

    own_service.session.finish = held_finish  # type: ignore[method-assign]
    assert (
        own_client.post("/api/videos/blackswan/9/submit", json={"mask": box_mask(130, 260)}).status_code
        == 202
    )
    assert held.wait(60)
    clicks = {"clicks": [{"object": 1, "x": 420, "y": 160, "positive": True}]}
    preview = own_client.post("/api/videos/blackswan/5/preview", json=clicks).json()["rle"]
    answer: list = []
    later = threading.Thread(
        target=lambda: answer.append(own_client.post("/api/videos/blackswan/5/submit", json=clicks))
    )
    later.start()
    while not any(job.stop for job in own_service.jobs):
        time.sleep(0.01)
    release.set()
    later.join(60)
    assert answer[0].status_code == 202, answer[0].text
    own_service.wait()
    state = own_service.session.state("blackswan")
    assert state is not None and [a.kind for a in state.annotations] == ["mask", "mask", "clicks"]
    assert encode_rle(state.masks[5]) == preview


def test_the_first_propagation_proposes_at_once_by_distance(
    own_client: TestClient, own_service: SessionService
) -> None:
    """While a clip's first annotation propagates, its next frame is proposed at once: nothing is known
    of the frames to come but their distance, so the farthest from the annotated frame is chosen."""
    release = threading.Event()
    finish = own_service.session.finish

    def held_finish(name: str, on_frame=None):
        def report(t, mask, disagreement, unsure):
            on_frame(t, mask, disagreement, unsure)
            if t == 1:  # frame 1 came; the rest of the clip waits
                release.wait(60)

        return finish(name, report)

    own_service.session.finish = held_finish  # type: ignore[method-assign]
    sent = own_client.post("/api/videos/blackswan/0/submit", json={"mask": box_mask(100, 200)})
    assert sent.status_code == 202, sent.text
    try:
        proposal = own_client.get("/api/proposal?video=blackswan").json()["proposal"]
        assert (proposal["frame"], proposal["kind"], proposal["provisional"]) == (9, "mask", True)
        assert "chosen by its distance to the annotated frames" in proposal["reason"]
        assert own_service.pending("blackswan")
    finally:
        release.set()
    own_service.wait()
    settled = own_client.get("/api/proposal?video=blackswan").json()["proposal"]
    assert settled["provisional"] is False and settled["frame"] != 0


def test_exports_carry_the_names_a_person_gave_and_no_background(
    own_client: TestClient, own_service: SessionService, tmp_path: Path
) -> None:
    ids = np.zeros((480, 854), np.uint8)
    ids[100:300, 200:500] = 1
    ids[350:420, 600:700] = 2
    body = {"mask": encode_rle(ids), "names": {"1": "horse and rider"}}
    assert own_client.post("/api/videos/blackswan/0/submit", json=body).status_code == 202
    own_service.wait()
    tools = own_client.post("/api/export").json()["tools"]
    coco = json.loads(Path(tools[0]).read_text(encoding="utf-8"))
    assert [c["name"] for c in coco["categories"]] == ["horse and rider", "object"]
    first = next(i["id"] for i in coco["images"] if i["file_name"].endswith("blackswan/00000.jpg"))
    on_first = [a for a in coco["annotations"] if a["image_id"] == first]
    named = {coco["categories"][a["category_id"] - 1]["name"]: a for a in on_first}
    assert sorted(named) == ["horse and rider", "object"]  # one annotation per object, no background
    assert named["horse and rider"]["area"] == 200 * 300 and named["object"]["area"] == 70 * 100
    cvat = Path(tools[2]).read_text(encoding="utf-8")
    assert "<name>horse and rider</name>" in cvat and "<name>background</name>" not in cvat
    label_studio = json.loads(Path(tools[1]).read_text(encoding="utf-8"))
    labels = {r["value"]["brushlabels"][0] for task in label_studio for r in task["predictions"][0]["result"]}
    assert labels == {"horse and rider", "object"}


def test_each_label_is_exported_as_the_kind_it_is(
    own_client: TestClient, own_service: SessionService, tmp_path: Path
) -> None:
    """Clicks are exported as a ``clicks`` label with its points, a box as a ``boxes`` label with its box,
    each beside the frame's mask (``pseudo``: a click model made it); a drawn mask is ``fine``; a
    propagated mask submitted unchanged is booked as accepted (1 s, not a drawn mask's 80 s)."""
    clicks = [
        {"object": 1, "x": 400, "y": 200, "positive": True},
        {"object": 1, "x": 420, "y": 230, "positive": True},
        {"object": 1, "x": 20, "y": 20, "positive": False},
    ]
    assert own_client.post("/api/videos/blackswan/0/submit", json={"clicks": clicks}).status_code == 202
    boxed = np.zeros((480, 854), np.uint8)
    boxed[100:300, 200:500] = 1
    box = {"1": {"box": [190, 90, 509, 309], "clicks": 2}}
    body = {"mask": encode_rle(boxed), "boxes": box}
    assert own_client.post("/api/videos/car-shadow/0/submit", json=body).status_code == 202
    own_service.wait()
    shown = own_client.get("/api/videos/blackswan/6/mask").json()["rle"]
    accepted = own_client.post("/api/videos/blackswan/6/submit", json={"mask": shown})
    assert (accepted.json()["record"]["kind"], accepted.json()["record"]["seconds"]) == ("clicks", 1.0)
    assert (
        own_client.post("/api/videos/car-shadow/8/submit", json={"mask": box_mask(50, 60)}).status_code == 202
    )
    own_service.wait()
    store = Path(own_client.post("/api/export").json()["store"])
    records = {(r["clip_id"], r["offset"], r["kind"]): r for r in LabelStore(store).records()}
    annotated = {key: r["seconds"] for key, r in records.items() if key[2] != "pseudo" or r["seconds"]}
    assert annotated == {
        ("blackswan", 0, "clicks"): 2 * 1.5 + 1.5 + 1,  # three clicks and the frame's look
        ("blackswan", 6, "pseudo"): 1.0,  # accepted as it was
        ("car-shadow", 0, "boxes"): 7 + 2 * 1.5 + 1,
        ("car-shadow", 8, "fine"): 80.0,
    }
    annotated_frames = {("blackswan", 0), ("blackswan", 6), ("car-shadow", 0), ("car-shadow", 8)}
    assert {k for k in records if k[:2] in annotated_frames} == {
        ("blackswan", 0, "clicks"), ("blackswan", 0, "pseudo"), ("blackswan", 6, "pseudo"),
        ("car-shadow", 0, "boxes"), ("car-shadow", 0, "pseudo"), ("car-shadow", 8, "fine"),
    }  # fmt: skip
    clicks_png = store / records[("blackswan", 0, "clicks")]["path"]
    points = json.loads(clicks_png.with_name("00000_clicks.json").read_text(encoding="utf-8"))["clicks"]
    assert [(c["x"], c["y"], c["train_id"], c["instance_id"]) for c in points] == [
        (400, 200, 1, 1), (420, 230, 1, 1), (20, 20, 0, None),
    ]  # fmt: skip
    label = cv2.imread(str(clicks_png), cv2.IMREAD_UNCHANGED)
    assert (label != 255).sum() == 3 and label[200, 400] == 1 and label[20, 20] == 0
    boxes_png = store / records[("car-shadow", 0, "boxes")]["path"]
    boxes = json.loads(boxes_png.with_name("00000_boxes.json").read_text(encoding="utf-8"))["boxes"]
    assert [(b["x0"], b["y0"], b["x1"], b["y1"], b["instance_id"]) for b in boxes] == [(190, 90, 510, 310, 1)]
    label = cv2.imread(str(boxes_png), cv2.IMREAD_UNCHANGED)
    assert (label == 1).sum() == 200 * 300 and (label == 255).sum() == label.size - 200 * 300
    # the tool files hold each kind: each click a keypoint, the box's mask and the box, every object's mask
    coco = json.loads((Path(f"{store}-tools") / "coco.json").read_text(encoding="utf-8"))
    images = {i["id"]: i["file_name"] for i in coco["images"]}
    kinds = {
        (images[a["image_id"]], a["attributes"]["frugalseg_kind"], a["area"])
        for a in coco["annotations"]
        if images[a["image_id"]].endswith(("blackswan/00000.jpg", "car-shadow/00000.jpg"))
    }
    assert {(name.split("/")[-2], kind) for name, kind, _ in kinds} == {
        ("blackswan", "clicks"), ("blackswan", "pseudo"), ("car-shadow", "boxes"), ("car-shadow", "pseudo"),
    }  # fmt: skip
    assert {area for name, kind, area in kinds if kind in ("clicks", "boxes")} == {0, 200 * 300, 320 * 220}


def test_annotate_add_names_objects(
    own_service: SessionService, own_frames: Path, tmp_path: Path, capsys
) -> None:
    import cv2

    mask = tmp_path / "mask.png"
    ids = np.zeros((480, 854), np.uint8)
    ids[100:300, 200:500] = 1
    cv2.imwrite(str(mask), ids)
    state = tmp_path / "cli-state"
    add = ["annotate", "add", "--state", str(state), "--root", str(own_frames), "--max-frames", "10"]
    add += ["--flow-downscale", "2", "--video", "blackswan", "--frame", "0", "--mask", str(mask)]
    assert main([*add, "--name", "2=duck"]) == 2
    assert "object 2 is not in this annotation" in capsys.readouterr().err
    assert not (state / "blackswan").exists()
    assert main([*add, "--name", "1=horse and rider"]) == 0
    assert json.loads((state / "blackswan" / "state.json").read_text(encoding="utf-8"))["names"] == {
        "1": "horse and rider"
    }


def test_a_folder_of_videos_is_labelled_and_exported_without_ground_truth(
    tmp_path: Path, one_cv_thread
) -> None:
    """A person's own clips as two video files: each is proposed, annotated, propagated and exported
    to the tools' files, with nothing but the frames."""
    from data.fake_video import numbered_frame, write_video

    root = tmp_path / "clips"
    for name in ("squares-a", "squares-b"):
        write_video(root / f"{name}.mp4", [numbered_frame(i) for i in range(6)])
    session = AnnotationSession.open(
        tmp_path / "state", root=root, format="video", options={"flow_downscale": 2}
    )
    service = SessionService(session, ProposalOptions(frames="uncertainty", types="mask"))
    app = create_app(service, exports=tmp_path / "exports")
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(2):
            proposal = client.get("/api/proposal").json()["proposal"]
            assert (proposal["frame"], proposal["kind"]) == (0, "mask")
            shape = client.get(f"/api/videos/{proposal['video']}/0/mask").json()
            ids = np.zeros((shape["height"], shape["width"]), np.uint8)
            ids[8:24, 10:40] = 1
            sent = client.post(f"/api/videos/{proposal['video']}/0/submit", json={"mask": encode_rle(ids)})
            assert sent.status_code == 202, sent.text
            service.wait()
        videos = client.get("/api/session").json()["videos"]
        assert sorted((v["name"], v["annotated"], v["frames"]) for v in videos) == [
            ("squares-a", 1, 6),
            ("squares-b", 1, 6),
        ]
        exported = client.post("/api/export").json()
    assert exported["written"] == 12
    assert sorted(Path(p).name for p in exported["tools"]) == [
        "coco.json",
        "cvat-video-squares-a.xml",
        "cvat-video-squares-b.xml",
        "label-studio.json",
    ]
    coco = json.loads((Path(exported["store"] + "-tools") / "coco.json").read_text(encoding="utf-8"))
    assert len({image["file_name"] for image in coco["images"]}) == 12  # each clip's frames named apart
