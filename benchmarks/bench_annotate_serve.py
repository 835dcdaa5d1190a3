"""The annotation page's speed (`frugalseg annotate serve`, issue 26) on the real DAVIS samples at 854×480.

Three figures, each over real HTTP to the app served by uvicorn in this process (a thread):

* click → preview: ``POST …/preview`` with 1, 2 and 3 clicks on blackswan frame 25 (the session's click
  model, the default `starcut`), after the first mask was added; the request's wall time (JSON, the click
  model, the run-length code).
* submit → next proposal: ``POST …/submit`` on ``--clip`` (blackswan: 50 frames; parkour: 100; the
  flow engine with its default options: DIS ``medium`` at full size) until ``GET
  /api/proposal?video=…`` answers with the next proposal, for the first mask on frame 0 and then the
  clicks on each of the next ``--submits`` proposed frames (each the proposal once the whole clip is
  propagated, so that runs of different code annotate the same frames); beside it, submit → the
  whole clip propagated (the job's end, which the page waited for before issue 34), and the frame
  proposed then.
* rush (issue 34): a person who does not wait for the clip: the first mask, then clicks on each
  proposed frame as soon as it is proposed, while the clip still propagates (each submit supersedes
  the running propagation): the submit's answer, the next proposal, and the whole clip after the last.
* quick clicks: a person who clicks again `QUICK_GAP` s after a first click from an empty mask, before its
  preview came back (a new session's frames 0, 5, …, 35 of blackswan and car-shadow; the field's first two
  clicks, `corrective_click` against the truth): the second preview's wall time with the app as built (the
  frame's later preview, which only adds a click, waits for the first and goes on from its answer;
  `LatestWins`) and with every preview run to its end on its own, two apps on sessions of their own served
  at once, the frames taken in turn.
* page load with a 100-frame filmstrip (parkour of davis_hard, its frame 0 annotated): what the page
  fetches when opened (the page, the session, the proposal, the video, the frame, its mask and the 100
  thumbnails), one request after another, cold (thumbnails made) then warm (cached); and, where
  Chromium and chromedriver are installed, the same page opened in headless Chromium until every
  thumbnail has loaded.

    python benchmarks/bench_annotate_serve.py [--data ../shared/data] [--repeats 5] [--flow-downscale 1]
        [--parts clicks,rush,quick,page] [--clip blackswan] [--submits 2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest.mock import patch

import cv2
import httpx
import numpy as np
import starlette
import uvicorn

import frugalseg
from frugalseg.active.objects.session.proposals import ProposalOptions
from frugalseg.active.objects.session.session import AnnotationSession
from frugalseg.active.objects.simulation.simulated_annotator import corrective_click
from frugalseg.active.objects.tools.click_models import StarCutClicks
from frugalseg.app import SessionService, create_app, server
from frugalseg.app.http import LatestWins
from frugalseg.data.io import read_frame

CLICKS = [
    {"object": 1, "x": 430, "y": 240, "positive": True},
    {"object": 1, "x": 640, "y": 120, "positive": False},
    {"object": 1, "x": 520, "y": 300, "positive": True},
]

#: The quick clicks' second click comes this many seconds after the first (before its preview came back).
QUICK_GAP = 0.1
QUICK_CLIPS, QUICK_FRAMES = ("blackswan", "car-shadow"), range(0, 40, 5)


class EveryPreviewRuns:
    """The app's `LatestWins` that neither stops nor waits: each preview runs on its own (before stop 75)."""

    @contextmanager
    def latest(self, key: Any, what: str, start: Any, steps: tuple) -> Iterator[None]:
        """Run the block."""
        yield


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The ASGI ``app`` on a free port of 127.0.0.1, in a thread; its address."""
    server = uvicorn.Server(uvicorn.Config(app, port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = next(s.getsockname()[1] for listener in server.servers for s in listener.sockets)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def clip_service(data: Path, state: Path, clip: str, downscale: int) -> tuple[Path, SessionService]:
    """The DAVIS root (davis_dev or davis_hard) holding ``clip``, and a new session's service on it in
    ``state`` (flow engine at ``downscale``, proposals by uncertainty, clicks)."""
    root = next(
        d for d in (data / "davis_dev", data / "davis_hard") if (d / "JPEGImages" / "480p" / clip).is_dir()
    )
    session = AnnotationSession.open(state, root=root, options={"flow_downscale": downscale})
    return root, SessionService(session, ProposalOptions(frames="uncertainty", types="clicks"))


def first_mask(http: httpx.Client, root: Path, video: str) -> tuple[float, dict]:
    """Upload and submit frame 0's drawn mask; seconds until the next proposal of ``video``, and it."""
    png = (root / "Annotations" / "480p" / video / "00000.png").read_bytes()
    ids = http.post(f"/api/videos/{video}/0/upload", content=png).json()["rle"]
    start = time.perf_counter()
    assert http.post(f"/api/videos/{video}/0/submit", json={"mask": ids}).status_code == 202
    return next_proposal(http, video, start)


def proposed(proposal: dict) -> str:
    """A proposal in a few words: its frame, and whether it was made while the clip propagated."""
    return f"frame {proposal['frame']}" + (" provisional" if proposal.get("provisional") else "")


def next_proposal(http: httpx.Client, video: str, start: float) -> tuple[float, dict]:
    """Seconds from ``start`` until ``GET /api/proposal`` names a frame (code before issue 34 answered
    ``pending`` meanwhile), and the proposal."""
    while True:
        answer = http.get("/api/proposal", params={"video": video}).json()
        if "proposal" in answer:
            return time.perf_counter() - start, answer["proposal"]
        time.sleep(0.02)


def propagation_seconds(http: httpx.Client) -> float:
    """The wall time of the last propagation, as ``GET /api/jobs`` reports it."""
    return float(http.get("/api/jobs").json()["jobs"][-1]["elapsed"])


def whole_clip(http: httpx.Client, start: float) -> float:
    """Seconds from ``start`` until no propagation is queued or running."""
    while any(job["status"] in ("queued", "propagating") for job in http.get("/api/jobs").json()["jobs"]):
        time.sleep(0.02)
    return time.perf_counter() - start


def bench_preview_and_submit(
    data: Path, work: Path, repeats: int, downscale: int, clip: str = "blackswan", submits: int = 2
) -> None:
    root, service = clip_service(data, work / clip, clip, downscale)
    frames = len(service.session.frames(clip))
    engine = f"flow, DIS medium, downscale {downscale}"
    with (
        served(create_app(service, exports=work / "exports")) as address,
        httpx.Client(base_url=address, timeout=600) as http,
    ):
        start = time.perf_counter()
        first, early = first_mask(http, root, clip)
        whole = whole_clip(http, start)
        print(
            f"submit → next proposal, first mask on frame 0 ({frames} frames, {engine}): {first:.2f} s "
            f"({proposed(early)}); whole clip propagated {whole:.2f} s (propagation "
            f"{propagation_seconds(http):.2f} s; {proposed(next_proposal(http, clip, start)[1])})"
        )
        for count in (1, 2, 3):
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                answer = http.post(f"/api/videos/{clip}/25/preview", json={"clicks": CLICKS[:count]})
                times.append(time.perf_counter() - start)
                assert answer.status_code == 200, answer.text
            print(
                f"click → preview, {count} click(s) at 854×480 ({service.session.click_model.name}): "
                f"median {statistics.median(times):.3f} s, max {max(times):.3f} s over {repeats}"
            )
        _, proposal = next_proposal(http, clip, time.perf_counter())
        for _ in range(submits):
            frame = proposal["frame"]
            start = time.perf_counter()
            sent = http.post(f"/api/videos/{clip}/{frame}/submit", json={"clicks": CLICKS[:1]})
            assert sent.status_code == 202, sent.text
            seconds, early = next_proposal(http, clip, start)
            whole = whole_clip(http, start)
            _, proposal = next_proposal(http, clip, start)  # the whole clip's: the next submit's frame
            print(
                f"submit → next proposal, clicks on frame {frame} ({frames} frames, {engine}): "
                f"{seconds:.2f} s ({proposed(early)}); whole clip propagated {whole:.2f} s "
                f"(propagation {propagation_seconds(http):.2f} s; {proposed(proposal)})"
            )


def bench_rush(data: Path, work: Path, downscale: int, clip: str, submits: int) -> None:
    """A person who does not wait: each proposal's frame is submitted as soon as it is proposed, while
    the clip still propagates (each submit supersedes the running propagation)."""
    root, service = clip_service(data, work / f"rush-{clip}", clip, downscale)
    frames = len(service.session.frames(clip))
    with (
        served(create_app(service, exports=work / "exports-rush")) as address,
        httpx.Client(base_url=address, timeout=600) as http,
    ):
        start = time.perf_counter()
        seconds, proposal = first_mask(http, root, clip)
        print(
            f"rush, {clip} ({frames} frames, downscale {downscale}): first mask → next proposal "
            f"{seconds:.2f} s ({proposed(proposal)})"
        )
        for _ in range(submits):
            frame, start = proposal["frame"], time.perf_counter()
            sent = http.post(f"/api/videos/{clip}/{frame}/submit", json={"clicks": CLICKS[:1]})
            answered = time.perf_counter() - start
            assert sent.status_code == 202, sent.text
            seconds, proposal = next_proposal(http, clip, start)
            jobs = http.get("/api/jobs").json()["jobs"]
            superseded = sum(job["status"] == "superseded" for job in jobs)
            print(
                f"rush: clicks on frame {frame} while the clip propagates: submit answered {answered:.2f} s, "
                f"next proposal {seconds:.2f} s ({proposed(proposal)}); {superseded} superseded so far"
            )
        whole = whole_clip(http, start)
        print(f"rush: the whole clip propagated {whole:.2f} s after the last submit")


def field_clicks(root: Path, clip: str, frame: int) -> list[dict]:
    """The field's first two clicks on a frame: against its truth, the second on the model's first answer."""
    image = read_frame(root / "JPEGImages" / "480p" / clip / f"{frame:05d}.jpg")
    truth = (
        cv2.imread(str(root / "Annotations" / "480p" / clip / f"{frame:05d}.png"), cv2.IMREAD_GRAYSCALE) > 0
    )
    empty = np.zeros_like(truth)
    first = corrective_click(empty, truth)
    assert first is not None
    second = corrective_click(StarCutClicks().correct(image, empty, [first]), truth)
    assert second is not None
    return [{"object": 1, "x": c.x, "y": c.y, "positive": c.positive} for c in (first, second)]


def quick_pair(http: httpx.Client, path: str, clicks: list[dict]) -> tuple[float, int]:
    """Two clicks' previews `QUICK_GAP` s apart: the second's seconds, and the first's status."""
    statuses: list[int] = []

    def ask_first() -> None:
        statuses.append(http.post(path, json={"clicks": clicks[:1]}).status_code)

    first = threading.Thread(target=ask_first)
    first.start()
    time.sleep(QUICK_GAP)
    start = time.perf_counter()
    answer = http.post(path, json={"clicks": clicks})
    spent = time.perf_counter() - start
    first.join()
    assert answer.status_code == 200, answer.text
    return spent, statuses[0]


def bench_quick_clicks(data: Path, work: Path, downscale: int) -> None:
    """The second of two quick clicks' preview: as built (it waits for the first), and each run on its own."""
    built, unstopped = "built", "every preview on its own"
    seconds: dict[str, list[float]] = {built: [], unstopped: []}
    stopped = 0
    for clip in QUICK_CLIPS:
        apps = {}
        for way in seconds:
            root, service = clip_service(data, work / f"quick-{clip}-{len(apps)}", clip, downscale)
            with patch.object(server, "LatestWins", EveryPreviewRuns if way == unstopped else LatestWins):
                apps[way] = create_app(service, exports=work / "exports-quick")
        with (
            served(apps[built]) as built_address,
            served(apps[unstopped]) as unstopped_address,
            httpx.Client(base_url=built_address, timeout=600) as built_http,
            httpx.Client(base_url=unstopped_address, timeout=600) as unstopped_http,
        ):
            https = {built: built_http, unstopped: unstopped_http}
            for number, frame in enumerate(QUICK_FRAMES):
                clicks = field_clicks(root, clip, frame)
                for way in list(seconds)[:: 1 if number % 2 else -1]:
                    https[way].get(f"/api/videos/{clip}/{frame}/mask")  # the frame opened
                    spent, status = quick_pair(https[way], f"/api/videos/{clip}/{frame}/preview", clicks)
                    seconds[way].append(spent)
                    stopped += way == built and status == 409
    for way, spent in seconds.items():
        over = sum(s > 0.3 for s in spent) / len(spent)
        clips = " and ".join(QUICK_CLIPS)
        median, mean = statistics.median(spent), statistics.mean(spent)
        print(
            f"quick clicks ({QUICK_GAP} s apart, {len(spent)} frames of {clips}), {way}: the second's "
            f"preview median {median:.3f} s, mean {mean:.3f} s, max {max(spent):.3f} s, "
            f"{100 * over:.0f}% over 0.3 s"
        )
    print(f"quick clicks: {stopped} first previews stopped (409) by the second (it only adds a click)")


def page_load(http: httpx.Client, video: str, frames: int) -> float:
    start = time.perf_counter()
    for path in ("/", "/api/session", "/api/proposal", f"/api/videos/{video}"):
        assert http.get(path).status_code == 200
    for path in (f"/api/videos/{video}/0/image.jpg", f"/api/videos/{video}/0/mask"):
        assert http.get(path).status_code == 200
    for frame in range(frames):
        assert http.get(f"/api/videos/{video}/{frame}/thumb.jpg").status_code == 200
    return time.perf_counter() - start


def browser_load(address: str, work: Path) -> float | None:
    """Seconds from opening the page in headless Chromium until every thumbnail shows (None: no browser)."""
    try:
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        return None
    if not (Path("/usr/bin/chromium").is_file() and Path("/usr/bin/chromedriver").is_file()):
        return None
    from bench_page_person import browser  # Debian's Chromium, headless, as the scripted person drives it

    driver = browser(work / "chromium")
    loaded = (
        "const t = document.querySelectorAll('.thumb img'); return document.body.dataset.ready === '1' "
        "&& t.length === 100 && Array.from(t).every((i) => i.complete && i.naturalWidth > 0)"
    )
    try:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            driver.get(address)
            WebDriverWait(driver, 60, 0.01).until(lambda d: d.execute_script(loaded))
            times.append(time.perf_counter() - start)
        return statistics.median(times)
    finally:
        driver.quit()


def bench_page_load(data: Path, work: Path) -> None:
    root = work / "parkour-only"  # the data set with parkour alone, so that the page opens it
    for part in ("JPEGImages", "Annotations"):
        (root / part / "480p").mkdir(parents=True)
        (root / part / "480p" / "parkour").symlink_to(data / "davis_hard" / part / "480p" / "parkour")
    session = AnnotationSession.open(work / "parkour", root=root, options={"flow_downscale": 2})
    service = SessionService(session, ProposalOptions(frames="uncertainty", types="mask"))
    with (
        served(create_app(service, exports=work / "exports")) as address,
        httpx.Client(base_url=address, timeout=600) as http,
    ):
        first_mask(http, root, "parkour")
        cold = page_load(http, "parkour", 100)
        warm = [page_load(http, "parkour", 100) for _ in range(3)]
        print(f"page load, 100-frame filmstrip, 106 requests one after another: cold {cold:.2f} s, "
              f"warm median {statistics.median(warm):.3f} s")  # fmt: skip
        seconds = browser_load(address, work)
        if seconds is not None:
            what = "page load in headless Chromium until all 100 thumbnails shown (warm, median of 3)"
            print(f"{what}: {seconds:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--flow-downscale", type=int, default=1, help="the flow engine's downscale (1: full size)"
    )
    parser.add_argument(
        "--parts",
        default="clicks,page",
        help="clicks (preview, submit), rush (submit while propagating), quick (a click before the last's "
        "preview came back), page",
    )
    parser.add_argument("--clip", default="blackswan", help="a DAVIS clip of davis_dev or davis_hard")
    parser.add_argument("--submits", type=int, default=2, help="click submits after the first mask")
    args = parser.parse_args()
    tree = Path(frugalseg.__file__).resolve().parents[1]  # the code measured (PYTHONPATH may name another)
    commit = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"commit {commit}; Python {platform.python_version()}, OpenCV {cv2.__version__} "
        f"({cv2.getNumThreads()} threads), Starlette {starlette.__version__}, uvicorn {uvicorn.__version__}, "
        f"httpx {httpx.__version__}"
    )
    with tempfile.TemporaryDirectory() as folder:
        if "clicks" in args.parts:
            bench_preview_and_submit(
                args.data, Path(folder), args.repeats, args.flow_downscale, args.clip, args.submits
            )
        if "rush" in args.parts:
            bench_rush(args.data, Path(folder), args.flow_downscale, args.clip, args.submits)
        if "quick" in args.parts:
            bench_quick_clicks(args.data, Path(folder), args.flow_downscale)
        if "page" in args.parts:
            bench_page_load(args.data, Path(folder))


if __name__ == "__main__":
    main()
