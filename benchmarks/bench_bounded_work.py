"""Work bounded before it starts (issue 46, items 7-9): how fast the servers refuse what would be costly.

Over real HTTP to the apps served by uvicorn in this process (a thread), on DAVIS blackswan (854×480):

* the ML backend's ``POST /webhook`` with a brush declaring 8192×8192 — a large one of short runs
  (a random mask of 1×`RUN` blocks: about the issue's 48 MB body) and a small one (an empty mask) —
  until its 422;
* the page's ``POST /scissors`` with 25 anchors a person might place (on a circle of radius 150 px) and
  with 500 anchors spread over the frame (the allowed count: 132 s of search before the bound), until
  its answer;
* the ML backend's ``POST /predict`` of a task whose id is 1 MB long: the length of the answer.

Each figure is the first of ``--repeats`` requests and their median, with the bytes sent.

    python benchmarks/bench_bounded_work.py [--data ../shared/data] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from bench_annotate_serve import served  # the app on a free port, in a thread
from provenance import provenance_line

from frugalseg.active.objects.session.proposals import ProposalOptions
from frugalseg.active.objects.session.session import AnnotationSession
from frugalseg.app import SessionService, create_app
from frugalseg.app.ml_backend import create_ml_backend
from frugalseg.interop.rle import ls_encode

VIDEO = "blackswan"
CONFIG = '<View><Image name="image" value="$image"/><BrushLabels name="tag" toName="image"/></View>'
PROJECT = {"id": 1, "label_config": CONFIG}
DECLARED = 8192
#: The random mask's blocks are 1×RUN pixels: a body of about 48 MB.
RUN = 6


def task(frame: int, task_id: object = None) -> dict:
    return {"id": task_id or frame + 1, "data": {"image": f"/data/local-files/?d={VIDEO}/{frame:05d}.jpg"}}


def webhook_body(mask: np.ndarray) -> bytes:
    """An ``ANNOTATION_CREATED`` event whose brush declares ``mask``'s size (8192×8192)."""
    result = {
        "id": "a1", "type": "brushlabels", "from_name": "tag", "to_name": "image",
        "original_width": mask.shape[1], "original_height": mask.shape[0], "image_rotation": 0,
        "value": {"format": "rle", "rle": ls_encode(mask), "brushlabels": ["object"]},
    }  # fmt: skip
    annotation = {"id": 9, "task": 1, "result": [result], "was_cancelled": False}
    event = {"action": "ANNOTATION_CREATED", "project": PROJECT, "task": task(0), "annotation": annotation}
    return json.dumps(event).encode()


def timed(send, repeats: int) -> tuple[str, httpx.Response]:
    """The seconds of the first of ``repeats`` calls of ``send`` and their median, and the last response."""
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        response = send()
        seconds.append(time.perf_counter() - began)
    return f"{seconds[0]:.3f} s (median {statistics.median(seconds):.3f} s)", response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = args.data / "davis_dev"
    blocks = np.random.default_rng(0).random((DECLARED, -(-DECLARED // RUN))) < 0.5
    runs = np.repeat(blocks, RUN, axis=1)[:, :DECLARED]
    bodies = {"short runs": webhook_body(runs), "empty": webhook_body(np.zeros((DECLARED,) * 2, bool))}
    del blocks, runs
    print(provenance_line())
    with tempfile.TemporaryDirectory() as folder:
        session = AnnotationSession.open(Path(folder) / "state", root=root, options={"flow_downscale": 2})
        service = SessionService(session, ProposalOptions(frames="uncertainty", types="mask"))
        headers = {"Content-Type": "application/json"}
        with (
            served(create_ml_backend(service, max_upload=64 << 20)) as address,
            httpx.Client(base_url=address, timeout=600) as http,
        ):
            http.post("/setup", json={"project": "1.1", "schema": CONFIG}).raise_for_status()
            for name, body in bodies.items():
                seconds, answer = timed(
                    lambda b=body: http.post("/webhook", content=b, headers=headers), args.repeats
                )
                print(
                    f"webhook, brush of {name} declaring {DECLARED}×{DECLARED} ({len(body) / 1e6:.2f} MB): "
                    f"{answer.status_code} in {seconds} — {answer.json()['error'][:110]}"
                )
            lost = {"tasks": [task(0, "7" * 1_000_000)], "label_config": CONFIG, "params": {}}
            answer = http.post("/predict", json=lost)
            print(
                f"predict, a task id of 1 MB: {answer.status_code}, an answer of {len(answer.content)} bytes"
            )
        with (
            served(create_app(service, exports=Path(folder) / "exports")) as address,
            httpx.Client(base_url=address, timeout=600) as http,
        ):
            angles = np.linspace(0, 2 * np.pi, 25, endpoint=False)
            ring = [[int(427 + 150 * np.cos(a)), int(240 + 150 * np.sin(a))] for a in angles]
            spread = np.random.default_rng(1).integers([0, 0], [854, 480], size=(500, 2)).tolist()
            for name, points in (("25 anchors on a circle", ring), ("500 anchors spread", spread)):
                body = {"points": points, "closed": True}
                url = f"/api/videos/{VIDEO}/0/scissors"
                seconds, answer = timed(lambda b=body, u=url: http.post(u, json=b), args.repeats)
                said = answer.json().get("error", "a contour and its mask")[:110]
                print(f"scissors, {name}: {answer.status_code} in {seconds} — {said}")
        service.close()


if __name__ == "__main__":
    main()
