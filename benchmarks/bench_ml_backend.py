"""The Label Studio ML backend's speed (`frugalseg annotate ml-backend`, issue 35) on DAVIS blackswan.

Over real HTTP to the app served by uvicorn in this process (a thread), with the requests Label
Studio sends (its ``label_studio/ml/api_connector.py``):

* annotation → predictions of the whole clip: ``POST /webhook`` (``ANNOTATION_CREATED``, frame 0's
  drawn mask as a brush) until ``POST /predict`` answers with the new model version (polled on one
  frame), i.e. with the propagated masks, and then for all 50 frames (854×480); the webhook's own
  reply time apart (Label Studio waits ``WEBHOOK_TIMEOUT``, 1 s by default, for it).
* predictions served per second: ``POST /predict`` of the 50 tasks at once (one request, as
  "Retrieve predictions" sends them) and of one task at a time (as opening a task does).

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
from bench_annotate_serve import served  # the app on a free port, in a thread

from frugalseg.active.objects.session.proposals import ProposalOptions
from frugalseg.active.objects.session.session import AnnotationSession
from frugalseg.app import SessionService
from frugalseg.app.ml_backend import create_ml_backend
from frugalseg.data.formats.davis import DavisFormat
from frugalseg.interop.rle import ls_encode

VIDEO = "blackswan"
CONFIG = '<View><Image name="image" value="$image"/><BrushLabels name="tag" toName="image"/></View>'


def task(frame: int) -> dict:
    return {"id": frame + 1, "data": {"image": f"/data/local-files/?d={VIDEO}/{frame:05d}.jpg"}}


def predict(http: httpx.Client, frames: list[int]) -> list[dict]:
    body = {"tasks": [task(f) for f in frames], "label_config": CONFIG, "project": "1.1", "params": {}}
    response = http.post("/predict", json=body)
    response.raise_for_status()
    return response.json()["results"]


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
        "original_width": 854, "original_height": 480,
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
            before = predict(http, [0])[0]["model_version"]
            start = time.perf_counter()
            http.post("/webhook", json=event).raise_for_status()
            replied = time.perf_counter() - start
            while predict(http, [0])[0]["model_version"] == before:  # one frame: light polling
                time.sleep(0.1)
            results = predict(http, frames)
            whole = time.perf_counter() - start
            seconds = f"{whole:.2f} s (webhook reply {replied:.2f} s)"
            print(f"annotation → predictions of {len(frames)} frames: {seconds}")
            assert all(r["result"] for r in results)
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


if __name__ == "__main__":
    main()
