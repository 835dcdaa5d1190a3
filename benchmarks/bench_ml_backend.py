"""The Label Studio ML backend's speed (`frugalseg annotate ml-backend`, issue 35) on DAVIS blackswan.

Over real HTTP to the app served by uvicorn in this process (a thread), with the requests Label
Studio sends (its ``label_studio/ml/api_connector.py``):

* annotation → predictions of the whole clip: ``POST /webhook`` (``ANNOTATION_CREATED``, frame 0's
  drawn mask as a brush) until ``POST /predict`` answers with a mask for the clip's last frame (polled
  on that frame; the model version changes as soon as the annotation is saved), and then for all 50
  frames (854×480); the webhook's own reply time apart (Label Studio waits ``WEBHOOK_TIMEOUT``, 1 s by
  default, for it).
* predictions served per second: ``POST /predict`` of the 50 tasks at once (one request, as
  "Retrieve predictions" sends them) and of one task at a time (as opening a task does).
* interactive mode (issue 44's goal 4: an answer within 0.3 s): ``POST /predict`` of frame 25 with a
  context of 1, 2 and 3 smart keypoints (they correct its propagated mask), and of the swan's rectangle + 5 px
  (the box tool), as Label Studio sends them while a person clicks, a second after the task was opened;
  the request's wall time, the first answer apart.

    python benchmarks/bench_ml_backend.py [--data ../shared/data] [--repeats 5] [--flow-downscale 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from bench_annotate_serve import CLICKS, served  # the app on a free port, in a thread; the page's clicks

from frugalseg.active.objects.session.proposals import ProposalOptions
from frugalseg.active.objects.session.session import AnnotationSession
from frugalseg.active.objects.simulation.annotation_types import padded_box
from frugalseg.app import SessionService
from frugalseg.app.ml_backend import create_ml_backend
from frugalseg.data.formats.davis import DavisFormat
from frugalseg.interop.label_studio import percent
from frugalseg.interop.rle import ls_encode

VIDEO = "blackswan"
CONFIG = (
    '<View><Image name="image" value="$image"/>'
    '<BrushLabels name="tag" toName="image"><Label value="swan"/></BrushLabels>'
    '<KeyPointLabels name="kp" toName="image" smart="true"><Label value="swan"/></KeyPointLabels>'
    '<RectangleLabels name="box" toName="image" smart="true"><Label value="swan"/></RectangleLabels></View>'
)
#: The interactive part's frame; its keypoints are the page's clicks (`bench_annotate_serve.CLICKS`).
INTERACTIVE_FRAME = 25
#: The clip's frame size (DAVIS 480p).
WIDTH, HEIGHT = 854, 480


def task(frame: int) -> dict:
    return {"id": frame + 1, "data": {"image": f"/data/local-files/?d={VIDEO}/{frame:05d}.jpg"}}


def predict(http: httpx.Client, frames: list[int], context: dict | None = None) -> list[dict]:
    body = {
        "tasks": [task(f) for f in frames],
        "label_config": CONFIG,
        "project": "1.1",
        "params": {} if context is None else {"context": context},
    }
    response = http.post("/predict", json=body)
    response.raise_for_status()
    return response.json()["results"]


def keypoint(x: int, y: int, positive: bool) -> dict:
    """A smart keypoint at pixel (x, y) of an 854×480 frame, as Label Studio sends it (percent)."""
    value = {
        "x": percent(x + 0.5, WIDTH), "y": percent(y + 0.5, HEIGHT), "width": 0.5, "keypointlabels": ["swan"],
    }  # fmt: skip
    return {
        "id": f"k{x}-{y}", "type": "keypointlabels", "from_name": "kp", "to_name": "image",
        "is_positive": positive, "original_width": WIDTH, "original_height": HEIGHT, "value": value,
    }  # fmt: skip


def rectangle(box: tuple[int, int, int, int]) -> dict:
    """A smart rectangle over pixels x0…x1, y0…y1 of an 854×480 frame (percent of the frame)."""
    x0, y0, x1, y1 = box
    value = {
        "x": percent(x0, WIDTH), "y": percent(y0, HEIGHT),
        "width": percent(x1 + 1 - x0, WIDTH), "height": percent(y1 + 1 - y0, HEIGHT),
        "rotation": 0, "rectanglelabels": ["swan"],
    }  # fmt: skip
    return {
        "id": "r1", "type": "rectanglelabels", "from_name": "box", "to_name": "image",
        "original_width": WIDTH, "original_height": HEIGHT, "value": value,
    }  # fmt: skip


def first_click(http: httpx.Client) -> None:
    """A first keypoint on frames whose task was not opened, beside frames opened a second before.

    Alternate frames 11…20 (each frame once, so no answer is cached): odd ones opened first, even ones not.
    """
    click = [keypoint(CLICKS[0]["x"], CLICKS[0]["y"], CLICKS[0]["positive"])]
    times: dict[bool, list[float]] = {False: [], True: []}
    for frame in range(11, 21):
        opened = frame % 2 == 1
        if opened:
            predict(http, [frame])
            time.sleep(1.0)
        start = time.perf_counter()
        predict(http, [frame], {"result": click})
        times[opened].append(time.perf_counter() - start)
    for opened, seconds in times.items():
        print(
            f"interactive, a first keypoint on a frame {'opened' if opened else 'not opened'} before: median "
            f"{statistics.median(seconds):.3f} s, max {max(seconds):.3f} s over {len(seconds)} frames"
        )


def interactive(http: httpx.Client, box: tuple[int, int, int, int], repeats: int) -> None:
    """Time the interactive mode's answers on `INTERACTIVE_FRAME`: keypoints, then a rectangle.

    The task is opened first, as Label Studio's editor asks for its predictions (which readies the frame
    for clicks), and the first click comes a second later; the first answer is printed apart (`first_click`
    compares first clicks on frames opened and not).
    """
    first_click(http)
    predict(http, [INTERACTIVE_FRAME])
    time.sleep(1.0)
    contexts = [
        (f"{count} keypoint(s)", [keypoint(c["x"], c["y"], c["positive"]) for c in CLICKS[:count]])
        for count in (1, 2, 3)
    ]
    for what, results in [*contexts, ("a rectangle", [rectangle(box)])]:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            [answer] = predict(http, [INTERACTIVE_FRAME], {"result": results})
            times.append(time.perf_counter() - start)
            assert answer["result"], answer
        print(
            f"interactive, {what} on frame {INTERACTIVE_FRAME} (854×480): first {times[0]:.3f} s, "
            f"median {statistics.median(times):.3f} s, max {max(times):.3f} s over {repeats}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--flow-downscale", type=int, default=1)
    args = parser.parse_args()
    root = args.data / "davis_dev"
    drawn = DavisFormat.read_mask(root / "Annotations" / "480p" / VIDEO / "00000.png") == 1
    result = [{
        "id": "a1", "type": "brushlabels", "from_name": "tag", "to_name": "image",
        "original_width": WIDTH, "original_height": HEIGHT,
        "value": {"format": "rle", "rle": ls_encode(drawn), "brushlabels": ["swan"]},
    }]  # fmt: skip
    event = {
        "action": "ANNOTATION_CREATED",
        "project": {"id": 1},
        "task": task(0),
        "annotation": {"result": result},
    }
    print(f"load average {os.getloadavg()[0]:.1f}; flow downscale {args.flow_downscale}")
    with tempfile.TemporaryDirectory() as work:
        options = {"flow_downscale": args.flow_downscale}
        session = AnnotationSession.open(Path(work) / "state", root=root, options=options)
        service = SessionService(session, ProposalOptions(frames="uncertainty", types="mask"))
        frames = session.frames(VIDEO)
        with (
            served(create_ml_backend(service)) as address,
            httpx.Client(base_url=address, timeout=600) as http,
        ):
            http.post("/setup", json={"project": "1.1", "schema": CONFIG}).raise_for_status()
            start = time.perf_counter()
            http.post("/webhook", json=event).raise_for_status()
            replied = time.perf_counter() - start
            while not predict(http, [frames[-1]])[0]["result"]:  # the farthest frame: light polling
                time.sleep(0.1)
            results = predict(http, frames)
            while not all(r["result"] for r in results):
                time.sleep(0.1)
                results = predict(http, frames)
            whole = time.perf_counter() - start
            seconds = f"{whole:.2f} s (webhook reply {replied:.2f} s)"
            print(f"annotation → predictions of {len(frames)} frames: {seconds}")
            batch, single = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                predict(http, frames)
                batch.append(len(frames) / (time.perf_counter() - start))
                start = time.perf_counter()
                for frame in frames:
                    predict(http, [frame])
                single.append(len(frames) / (time.perf_counter() - start))
            print(
                f"predictions per second: {statistics.median(batch):.1f} in one request of {len(frames)}, "
                f"{statistics.median(single):.1f} one task per request (median of {args.repeats})"
            )
            masks = root / "Annotations" / "480p" / VIDEO
            swan = DavisFormat.read_mask(masks / f"{INTERACTIVE_FRAME:05d}.png") == 1
            interactive(http, padded_box(swan, 5), args.repeats)


if __name__ == "__main__":
    main()
