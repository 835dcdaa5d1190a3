"""`annotate ml-backend` connected to a real Label Studio, as a person connects and uses it.

Label Studio comes from the package registry in its own virtual environment (it pins its own
Django stack), at ``.cache/label-studio-venv`` where ``.ci/run`` installs it; without it the test
skips with the reason. Label Studio starts on the loopback with SQLite in a temporary folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest

from app.conftest import SESSION_FLAGS, open_session
from frugalseg.interop.rle import ls_decode, ls_encode

pytestmark = pytest.mark.slow

LABEL_STUDIO = Path(__file__).resolve().parents[2] / ".cache" / "label-studio-venv" / "bin" / "label-studio"
VIDEO = "blackswan"
TOKEN = "0123456789abcdef0123456789abcdef01234567"
CONFIG = (
    '<View><Image name="image" value="$image"/>'
    '<BrushLabels name="tag" toName="image"><Label value="swan"/></BrushLabels></View>'
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(check: Any, what: str, seconds: float) -> Any:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if (found := check()) is not None:
            return found
        time.sleep(1)
    raise AssertionError(f"{what}: not within {seconds:g} s")


@pytest.fixture
def label_studio(tmp_path: Path, shared_data: Path) -> Iterator[httpx.Client]:
    """Label Studio on a free loopback port, a user with a known API token, local files from DAVIS."""
    with _started(tmp_path, shared_data / "davis_dev") as client:
        yield client


@contextlib.contextmanager
def _started(tmp_path: Path, documents: Path) -> Iterator[httpx.Client]:
    """Label Studio on a free loopback port, a user with a known API token, local files from ``documents``."""
    if not LABEL_STUDIO.is_file():
        pytest.skip(f"label-studio is not installed at {LABEL_STUDIO} (.ci/run installs it there)")
    port, data = _free_port(), tmp_path / "label-studio"
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data),
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(documents),
        "DJANGO_DB": "sqlite",
        "WEBHOOK_TIMEOUT": "30",
        "SSRF_PROTECTION_ENABLED": "false",  # the backend is on the loopback, which Label Studio blocks
        "USE_DEFAULT_BANNED_SUBNETS": "false",
    }
    command = [str(LABEL_STUDIO), "start", "--no-browser", "--host", "127.0.0.1", "--port", str(port)]
    command += [
        "--data-dir",
        str(data),
        "--username",
        "person@frugalseg.local",
        "--password",
        "frugalseg-test",
    ]
    command += ["--user-token", TOKEN]
    log = (tmp_path / "label-studio.log").open("w", encoding="utf-8")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Token {TOKEN}"}, timeout=120
        ) as client:

            def up() -> bool | None:
                assert server.poll() is None, (tmp_path / "label-studio.log").read_text(encoding="utf-8")[
                    -3000:
                ]
                try:
                    return client.get("/api/projects").status_code == 200 or None
                except httpx.TransportError:
                    return None

            _wait(up, "Label Studio answering its API", 300)
            yield client
    finally:
        server.terminate()
        server.wait(60)
        log.close()


@pytest.fixture
def backend(tmp_path: Path, shared_data: Path) -> Iterator[str]:
    """`frugalseg annotate ml-backend` as a user starts it; its address."""
    command = [
        sys.executable,
        "-m",
        "frugalseg",
        "annotate",
        "ml-backend",
        "--state",
        str(tmp_path / "state"),
    ]
    command += ["--root", str(shared_data / "davis_dev"), *SESSION_FLAGS, "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline() if server.stdout else ""
        assert line.startswith("Label Studio ML backend: http://"), line
        yield line.split(": ", 1)[1].strip()
    finally:
        server.terminate()
        server.wait(30)


def test_label_studio_project_gets_the_propagated_masks(
    label_studio: httpx.Client, backend: str, tmp_path: Path, shared_data: Path
) -> None:
    """The README's recipe: a Local Files storage of the clip's folder, synced, the backend connected.

    The person sees each frame (its image URL answers through Label Studio) and its prediction; a
    frame beyond the session's and an annotation of the wrong size are refused, and the reasons are
    where Label Studio shows them (each task's prediction's model version) and in the backend's
    ``/health``.
    """
    davis = shared_data / "davis_dev"
    project = label_studio.post("/api/projects", json={"title": "blackswan", "label_config": CONFIG}).json()
    storage = label_studio.post(
        "/api/storages/localfiles",
        json={
            "project": project["id"], "title": "frames", "path": str(davis / "JPEGImages" / "480p" / VIDEO),
            "regex_filter": r"0000[0-9]\.jpg|00010\.jpg", "use_blob_urls": True,
        },
    )  # fmt: skip
    assert storage.status_code == 201, storage.text
    synced = label_studio.post(f"/api/storages/localfiles/{storage.json()['id']}/sync")
    assert synced.status_code == 200, synced.text
    tasks = sorted(
        label_studio.get("/api/tasks", params={"project": project["id"]}).json()["tasks"],
        key=lambda t: t["id"],
    )
    assert len(tasks) == 11  # frames 0…9 of the session, and frame 10 beyond it
    ids = [t["id"] for t in tasks]
    for frame, one in enumerate(tasks):
        [url] = [v for v in one["data"].values() if isinstance(v, str)]
        assert url.endswith(f"/data/local-files/?d=JPEGImages/480p/{VIDEO}/{frame:05d}.jpg"), url
        image = label_studio.get(urlparse(url)._replace(scheme="", netloc="").geturl())
        assert image.status_code == 200, f"frame {frame}: {image.status_code}"
        assert image.content == (davis / "JPEGImages" / "480p" / VIDEO / f"{frame:05d}.jpg").read_bytes()
    connected = label_studio.post(
        "/api/ml",
        json={"url": backend, "project": project["id"], "title": "frugalseg", "is_interactive": True},
    )
    assert connected.status_code == 201, connected.text

    drawn = cv2_truth(davis, 0) == 1
    posted = label_studio.post(f"/api/tasks/{ids[0]}/annotations", json={"result": [_brush(drawn)]})
    assert posted.status_code == 201, posted.text
    half = label_studio.post(f"/api/tasks/{ids[1]}/annotations", json={"result": [_brush(drawn[::2, ::2])]})
    assert half.status_code == 201, half.text  # Label Studio keeps it; the backend refuses it

    session = open_session(tmp_path / "state", davis)

    def propagated() -> bool | None:
        saved = session.saved_state(VIDEO) if (tmp_path / "state" / VIDEO).is_dir() else None
        return True if saved is not None and saved[1] else None

    _wait(propagated, "the annotation's propagation", 300)
    state = session.state(VIDEO)
    assert state is not None and np.array_equal(state.annotated[0], drawn.astype(np.uint8))
    assert 1 not in state.annotated
    small = f"task {ids[1]} result swan1: drawn on an image of 427×240, the task's image is 854×480"
    refused = httpx.get(f"{backend}/health").json()["refused"]
    assert [(r["task"], r["error"]) for r in refused] == [(f"task {ids[1]}", small)]

    selected = {"selectedItems": {"all": True, "excluded": []}}
    action = {"id": "retrieve_tasks_predictions", "project": project["id"]}
    retrieved = label_studio.post("/api/dm/actions", params=action, json=selected)
    assert retrieved.status_code == 200, retrieved.text
    beyond = (
        f"frugalseg refused: task {ids[10]}: frame 10 of {VIDEO} is not one of this session's (0…9 every 1)"
    )
    for frame, task_id in enumerate(ids):
        predictions = [
            p
            for p in label_studio.get("/api/predictions", params={"task": task_id}).json()
            if p["task"] == task_id
        ]
        versions = sorted(p["model_version"] for p in predictions)
        if frame == 10:
            assert versions == [beyond] and predictions[0]["result"] == []
            continue
        if frame == 1:
            assert f"frugalseg refused: {small}" in versions, versions
        prediction = max((p for p in predictions if p["result"]), key=lambda p: p["id"])
        [region] = prediction["result"]
        assert region["value"]["brushlabels"] == ["swan"]
        mask = ls_decode(region["value"]["rle"], region["original_height"], region["original_width"])
        current = session.current_mask(VIDEO, frame)
        assert current is not None and np.array_equal(mask, current == 1), f"frame {frame}"


def _brush(mask: np.ndarray) -> dict[str, Any]:
    """A person's brush region of ``mask`` as Label Studio stores it."""
    height, width = mask.shape
    return {
        "id": "swan1", "type": "brushlabels", "from_name": "tag", "to_name": "image", "origin": "manual",
        "original_width": width, "original_height": height, "image_rotation": 0,
        "value": {"format": "rle", "rle": ls_encode(mask), "brushlabels": ["swan"]},
    }  # fmt: skip


def cv2_truth(davis: Path, frame: int) -> np.ndarray:
    from frugalseg.data.formats.davis import DavisFormat

    return DavisFormat.read_mask(davis / "Annotations" / "480p" / VIDEO / f"{frame:05d}.png")


def test_a_video_users_exported_tasks_show_their_frames_and_come_back(
    tmp_path: Path, shared_data: Path
) -> None:
    """A person with only a video: `label export --frames-out` writes the frames Label Studio serves (a task
    of ``car-shadow.mp4/00005`` answered 404); Label Studio's own export of the tasks imports back as the
    store."""
    from frugalseg.autolabel.store import LabelStore
    from frugalseg.cli import main
    from frugalseg.data.io import imread, read_frame

    video, masks = (
        shared_data / "video_dev" / "car-shadow.mp4",
        shared_data / "davis_dev" / "Annotations" / "480p",
    )
    on_video = ["--format", "video", "--root", str(video), "--split", "all"]
    store, tasks, frames = tmp_path / "store", tmp_path / "tasks.json", tmp_path / "frames"
    made = ["label", "propagate", *on_video, "--masks", str(masks / "car-shadow"), "--offsets", "5,10"]
    assert main([*made, "--out", str(store), "--no-progress"]) == 0
    exported = ["label", "export", "--store", str(store), "--tool", "label-studio", "--out", str(tasks)]
    assert main([*exported, "--frames-out", str(frames)]) == 0
    config = (tmp_path / "tasks-config.xml").read_text(encoding="utf-8")  # the project's, written beside
    labels = '\n    <Label value="background"/>\n    <Label value="object"/>\n  '
    ordered = (
        '\n    <Label value="background" model_index="0"/>\n    <Label value="object" model_index="1"/>\n  '
    )
    assert config == (
        '<View>\n  <Image name="image" value="$image" zoom="true"/>\n'
        f'  <BrushLabels name="label" toName="image">{labels}</BrushLabels>\n'
        f'  <RectangleLabels name="box" toName="image" smart="true">{labels}</RectangleLabels>\n'
        f'  <KeyPointLabels name="click" toName="image" smart="true">{ordered}</KeyPointLabels>\n</View>\n'
    )
    with _started(tmp_path, frames) as client:
        project = client.post("/api/projects", json={"title": "car-shadow", "label_config": config}).json()
        storage = client.post(
            "/api/storages/localfiles",
            json={"project": project["id"], "title": "frames", "path": str(frames / "car-shadow.mp4")},
        )
        assert storage.status_code == 201, storage.text
        imported = client.post(
            f"/api/projects/{project['id']}/import", json=json.loads(tasks.read_text(encoding="utf-8"))
        )
        assert imported.status_code == 201, imported.text
        shown = client.get("/api/tasks", params={"project": project["id"]}).json()["tasks"]
        for task in sorted(shown, key=lambda t: t["id"]):
            image = client.get(task["data"]["image"])
            assert image.status_code == 200, task["data"]["image"]
            name = task["data"]["image"].split("?d=")[1]
            assert (frames / name).read_bytes() == image.content
            np.testing.assert_array_equal(read_frame(frames / name), read_frame(video / Path(name).stem))
            [prediction] = client.get("/api/predictions", params={"task": task["id"]}).json()
            accepted = client.post(
                f"/api/tasks/{task['id']}/annotations", json={"result": prediction["result"]}
            )
            assert accepted.status_code == 201, accepted.text  # the person submits the frame as predicted
        back_file = tmp_path / "from-label-studio.json"
        back_file.write_bytes(
            client.get(f"/api/projects/{project['id']}/export", params={"exportType": "JSON"}).content
        )
        # a click: Label Studio's COCO export of keypoints fails (500) unless their labels have a model_index
        click = {"id": "c1", "type": "keypointlabels", "from_name": "click", "to_name": "image",
                 "original_width": 854, "original_height": 480,
                 "value": {"x": 50.0, "y": 50.0, "width": 0.5, "keypointlabels": ["object"]}}  # fmt: skip
        clicked = client.post(f"/api/tasks/{shown[0]['id']}/annotations", json={"result": [click]})
        assert clicked.status_code == 201, clicked.text
        coco = client.get(f"/api/projects/{project['id']}/export", params={"exportType": "COCO"})
        assert coco.status_code == 200, coco.text[:300]
    back = tmp_path / "back"
    assert (
        main(["label", "import", str(back_file), "--tool", "label-studio", *on_video, "--out", str(back)])
        == 0
    )
    key = lambda r: (r["clip_id"], r["offset"], r["kind"])  # noqa: E731
    original = {key(r): r for r in LabelStore(store).records()}
    records = LabelStore(back).records()
    assert sorted(key(r) for r in records) == sorted(original) and len(records) == 2
    for record in records:
        got, want = back / record["path"], store / original[key(record)]["path"]
        np.testing.assert_array_equal(imread(got, -1), imread(want, -1))
