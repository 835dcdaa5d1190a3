"""A scripted person on the annotation page (issue 34): human and wall seconds to mean J ≥ 0.85 per clip.

`frugalseg annotate serve` runs as a user starts it (one fresh session per run, on a folder that
holds one clip's first ``--max-frames`` frames through symlinks); Selenium drives the real page in
headless Chromium as a person who sees the ground truth:

* opens the frame — the page's proposal (its Open button), or, for the ``random`` and ``uniform``
  strategies, the benchmark's own choice clicked in the filmstrip;
* when the frame's propagated mask of the object has IoU ≥ ``--box-below`` (0.5) but below
  ``--frame-target`` (0.9), makes corrective clicks on it with the **clicks** tool (the click model's
  preview after each); when it is poorer (an object's first mask on the frame), drags the **box** tool
  around the truth's bounding box (3 px loose), then makes corrective clicks in the box mode (left
  positive, right negative); each click where the error is largest
  (`frugalseg.active.objects.simulation.simulated_annotator.corrective_click`, the simulated annotator's own
  rule), at most ``--clicks`` (5), undoing a click that made the mask worse and stopping;
* if the mask is still below ``--fallback-below`` IoU, uploads the truth PNG (the mask of last
  resort);
* submits, waits until the page has the propagation and the next proposal, and reads every frame's
  current mask over the page's ``/api/videos/{v}/{f}/mask`` route to compute mean J over the clip.

It stops at mean J ≥ ``--target`` or after ``--budget`` annotated frames. Human seconds use the loop's
cost model, `frugalseg.data.costs.DEFAULT_COSTS` (paper 002 / EVA-VOS figures): ``box_seconds`` (7 s) per
box, ``click_seconds`` (1.5 s) per click, ``clicked_frame_seconds`` (1 s) once per opened frame (finding
the object), ``vos_mask_seconds`` (80 s) per uploaded truth mask. The page's own ledger (``hours`` of
``/api/session``) is recorded beside it: since issue 34's second round it books a mask the box tool
alone made as a box and its clicks; before, anything drawn as an 80 s mask.

Wall seconds are what the person waits after Submit, measured in the page (``performance.now()``):
until the next proposal is shown, and until the page is ready again (propagation done, frame and
filmstrip reloaded). The script waits for the latter to read the clip's masks for its stopping rule;
a person need not (a submit while the clip propagates supersedes the propagation). Strategies:
``follow`` (the page's proposals), ``uniform`` (frame 0, then each time the frame farthest from the
annotated ones), ``random`` (a seeded permutation; ``--seeds``).

    PYTHONPATH=. python benchmarks/bench_page_person.py [--clips blackswan car-shadow] [--max-frames 30]
        [--flow-downscale 2] [--seeds 0 1 2] [--budget 8] [--strategies follow uniform random]
        [--screenshot docs/annotate_serve_person.png] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance_line  # noqa: E402

from frugalseg.active.objects.simulation.simulated_annotator import corrective_click  # noqa: E402
from frugalseg.app.server import decode_rle  # noqa: E402
from frugalseg.autolabel.objects import iou  # noqa: E402
from frugalseg.data.costs import DEFAULT_COSTS  # noqa: E402

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
DATA = Path("/work/shared/data")
ROOTS = {"blackswan": "davis_dev", "car-shadow": "davis_dev"}
ROOTS.update(
    {c: "davis_hard" for c in ("breakdance", "camel", "dog", "kite-surf", "parkour", "scooter-black")}
)
WIDTH, HEIGHT = 854, 480
# Timing hooks put on the page's own functions (no frugalseg change): Submit's time, the time the
# proposal box first shows the next proposal after it, and the time `follow` (the page's wait for the
# propagation, which then reloads the frame, the filmstrip and the proposal) has returned.
HOOKS = """
if (!window.__person) {
  window.__person = { submitted: null, proposal: null, ready: null, followed: 0 };
  document.getElementById('submit').addEventListener('click', () => {
    Object.assign(window.__person, { submitted: performance.now(), proposal: null, ready: null });
  }, true);
  new MutationObserver(() => {
    const p = window.__person; const text = document.getElementById('proposal').textContent;
    const shown = text.includes('Next:') || text.includes('every frame');
    if (p.submitted !== null && p.proposal === null && shown) {
      p.proposal = performance.now();
    }
  }).observe(document.getElementById('proposal'), { childList: true, characterData: true, subtree: true });
  const original = follow;
  window.follow = async (id) => {
    await original(id); window.__person.ready = performance.now(); window.__person.followed = id;
  };
}
"""


@dataclass
class Step:
    """One annotated frame: what the person did, what it cost, what the page made of it."""

    frame: int
    boxes: int = 0
    clicks: int = 0
    masks: int = 0
    iou_before: float = 0.0
    iou_submitted: float = 0.0
    human_s: float = 0.0
    to_proposal_s: float = 0.0
    to_ready_s: float = 0.0
    clip_j: float = 0.0
    ious: list[float] = field(default_factory=list)
    proposal: str = ""


@dataclass
class Run:
    clip: str
    strategy: str
    seed: int | None
    steps: list[Step] = field(default_factory=list)
    reached: bool = False
    page_hours: float = 0.0

    @property
    def human_s(self) -> float:
        return sum(s.human_s for s in self.steps)

    @property
    def wait_proposal_s(self) -> float:
        return sum(s.to_proposal_s for s in self.steps)

    @property
    def wait_ready_s(self) -> float:
        return sum(s.to_ready_s for s in self.steps)

    @property
    def j(self) -> float:
        return self.steps[-1].clip_j if self.steps else 0.0


def one_clip_root(folder: Path, clip: str, frames: int) -> Path:
    """A DAVIS root holding only ``clip``'s first ``frames`` frames and masks (symlinks)."""
    source = DATA / ROOTS[clip]
    for kind, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
        out = folder / kind / "480p" / clip
        out.mkdir(parents=True)
        for path in sorted((source / kind / "480p" / clip).glob(f"*.{ext}"))[:frames]:
            (out / path.name).symlink_to(path)
    return folder


def serve(state: Path, root: Path, args: argparse.Namespace, log: Path) -> tuple[subprocess.Popen, str]:
    command = [
        sys.executable,
        "-m",
        "frugalseg",
        "annotate",
        "serve",
        "--state",
        str(state),
        "--root",
        str(root),
    ]
    command += [
        "--max-frames",
        str(args.max_frames),
        "--flow-downscale",
        str(args.flow_downscale),
        "--port",
        "0",
    ]
    server = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=log.open("w", encoding="utf-8"), text=True, env={**os.environ}
    )
    line = server.stdout.readline()  # type: ignore[union-attr]
    if not line.startswith("annotation page: http://"):
        server.kill()
        raise RuntimeError(f"annotate serve printed {line!r}; see {log}")
    threading.Thread(target=server.stdout.read, daemon=True).start()  # type: ignore[union-attr]
    return server, line.split(": ", 1)[1].strip()


def browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1500,1000",
        f"--user-data-dir={profile}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_script_timeout(120)
    return driver


def wait_for(driver, script: str, timeout: float = 300) -> object:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, 0.05).until(lambda d: d.execute_script(script))


def at(driver, x: int, y: int):
    """An action chain on the overlay canvas at frame pixel (x, y)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    canvas = driver.find_element(By.ID, "overlay")
    scale = canvas.size["width"] / WIDTH
    return ActionChains(driver).move_to_element_with_offset(
        canvas, round((x - WIDTH / 2 + 0.5) * scale), round((y - HEIGHT / 2 + 0.5) * scale)
    )


def page_mask(driver) -> np.ndarray:
    return decode_rle(driver.execute_script("return encode(S.work)"), (HEIGHT, WIDTH))


class Person:
    """The person at the page for one run: sees the truth, uses the box and clicks, submits."""

    def __init__(self, driver, address: str, clip: str, truths: list[np.ndarray], args: argparse.Namespace):
        self.driver, self.address, self.clip, self.truths, self.args = driver, address, clip, truths, args
        self.costs = DEFAULT_COSTS

    def tool(self, name: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.CSS_SELECTOR, f"input[value='{name}']").click()

    def open(self, frame: int, follow: bool) -> str:
        """Open ``frame`` as the strategy does; the proposal's text when following it."""
        from selenium.webdriver.common.by import By

        d = self.driver
        proposal = d.find_element(By.ID, "proposal").text
        if d.execute_script("return document.body.dataset.frame") == f"{self.clip}/{frame}":
            return proposal
        d.execute_script("delete document.body.dataset.frame")
        if follow:
            d.find_element(By.ID, "openproposal").click()
        else:
            thumb = d.find_element(By.CSS_SELECTOR, f".thumb[data-frame='{frame}']")
            d.execute_script("arguments[0].scrollIntoView({block: 'nearest', inline: 'center'})", thumb)
            thumb.click()
        wait_for(d, f"return document.body.dataset.frame === '{self.clip}/{frame}'", 60)
        return proposal

    def box_preview(self, action, count: int) -> bool:
        d = self.driver
        d.execute_script("delete document.getElementById('frameinfo').dataset.box")
        action.perform()
        try:
            wait_for(
                d, f"return (document.getElementById('frameinfo').dataset.box || '').endsWith(':{count}')", 60
            )
            return True
        except Exception:  # the preview failed: the page says why in its status line
            return False

    def annotate(self, frame: int, step: Step) -> None:
        from selenium.webdriver.common.by import By

        d, truth, args = self.driver, self.truths[frame], self.args
        step.human_s += self.costs.clicked_frame_seconds  # finding the object on the frame
        current = page_mask(d) == 1
        step.iou_before = best = iou(current, truth)
        if best < args.frame_target and truth.any() and best >= args.box_below:
            best = self.click_on_mask(truth, best, step)
        elif best < args.frame_target and truth.any():
            best = self.box_and_clicks(truth, best, step)
        elif not truth.any() and current.any():
            best = 0.0
        if best < args.fallback_below:
            png = DATA / ROOTS[self.clip] / "Annotations" / "480p" / self.clip / f"{frame:05d}.png"
            d.execute_script("window.__before = S.work")
            d.find_element(By.ID, "upload").send_keys(str(png))
            wait_for(d, "return S.work !== window.__before && S.edited", 60)
            step.masks += 1
            step.human_s += self.costs.vos_mask_seconds
            best = iou(page_mask(d) == 1, truth)
        step.iou_submitted = best

    def box_and_clicks(self, truth: np.ndarray, best: float, step: Step) -> float:
        """An object's first mask on the frame: a box around the truth, then corrective clicks."""
        from selenium.webdriver.common.by import By

        d = self.driver
        ys, xs = np.nonzero(truth)
        x0, y0 = max(1, int(xs.min()) - 3), max(1, int(ys.min()) - 3)
        x1, y1 = min(WIDTH - 2, int(xs.max()) + 3), min(HEIGHT - 2, int(ys.max()) + 3)
        self.tool("box")
        step.boxes += 1
        step.human_s += self.costs.box_seconds
        if self.box_preview(
            at(d, x0, y0)
            .click_and_hold()
            .move_to_element_with_offset(d.find_element(By.ID, "overlay"), *self._offset(x1, y1))
            .release(),
            0,
        ):
            best = iou(page_mask(d) == 1, truth)
            step.ious.append(round(best, 3))
            best = self.corrections(truth, best, step, self.box_preview)
        else:
            best = iou(page_mask(d) == 1, truth)
        return best

    def click_on_mask(self, truth: np.ndarray, best: float, step: Step) -> float:
        """The clicks tool's corrective clicks on the frame's propagated mask (the click model's preview)."""
        self.tool("clicks")
        return self.corrections(truth, best, step, self.click_preview)

    def click_preview(self, action, count: int) -> bool:
        """Perform a click of the clicks tool; whether the page showed its ``count``-th preview."""
        d = self.driver
        d.execute_script("delete document.getElementById('frameinfo').dataset.preview")
        action.perform()
        try:
            wait_for(d, f"return document.getElementById('frameinfo').dataset.preview === '{count}'", 60)
            return True
        except Exception:  # the preview failed: the page says why in its status line
            return False

    def corrections(self, truth: np.ndarray, best: float, step: Step, preview) -> float:
        """Corrective clicks where the error is largest, each shown by ``preview(action, n)``, until the
        frame is good enough; a click that makes it worse is taken back and ends the corrections."""
        from selenium.webdriver.common.by import By

        d = self.driver
        for n in range(1, self.args.clicks + 1):
            if best >= self.args.frame_target:
                break
            click = corrective_click(page_mask(d) == 1, truth)
            if click is None:
                break
            step.clicks += 1
            step.human_s += self.costs.click_seconds
            chain = at(d, click.x, click.y)
            if not preview(chain.click() if click.positive else chain.context_click(), n):
                break
            now = iou(page_mask(d) == 1, truth)
            step.ious.append(round(now, 3))
            if now < best:  # the click made it worse: the person takes it back and stops
                d.find_element(By.ID, "undo").click()
                break
            best = now
        return best

    def _offset(self, x: int, y: int) -> tuple[int, int]:
        from selenium.webdriver.common.by import By

        scale = self.driver.find_element(By.ID, "overlay").size["width"] / WIDTH
        return round((x - WIDTH / 2 + 0.5) * scale), round((y - HEIGHT / 2 + 0.5) * scale)

    def submit(self, count: int, step: Step) -> None:
        from selenium.webdriver.common.by import By

        d = self.driver
        d.find_element(By.ID, "submit").click()
        wait_for(d, f"return window.__person.followed === {count} && window.__person.proposal !== null", 600)
        t = d.execute_script("return window.__person")
        step.to_proposal_s = (t["proposal"] - t["submitted"]) / 1000
        step.to_ready_s = (t["ready"] - t["submitted"]) / 1000
        status = d.find_element(By.ID, "status").text
        if status:
            raise RuntimeError(f"the page says: {status}")

    def clip_j(self) -> float:
        scores = []
        for frame, truth in enumerate(self.truths):
            with urllib.request.urlopen(
                f"{self.address.rstrip('/')}/api/videos/{self.clip}/{frame}/mask"
            ) as r:
                scores.append(iou(decode_rle(json.load(r)["rle"], (HEIGHT, WIDTH)) == 1, truth))
        return float(np.mean(scores))

    def proposed(self) -> int | None:
        with urllib.request.urlopen(f"{self.address.rstrip('/')}/api/proposal?video={self.clip}") as r:
            answer = json.load(r)
        return answer["proposal"]["frame"] if "proposal" in answer else None


def own_order(strategy: str, frames: int, seed: int | None) -> list[int]:
    if strategy == "random":
        return [int(f) for f in np.random.default_rng(seed).permutation(frames)]
    order = [0]  # uniform: frame 0, then the frame farthest from every annotated one
    while len(order) < frames:
        gaps = [min(abs(f - a) for a in order) for f in range(frames)]
        order.append(int(np.argmax(gaps)))
    return order


def run_one(clip: str, strategy: str, seed: int | None, args: argparse.Namespace, shot: Path | None) -> Run:
    truths = [
        np.asarray(Image.open(p)) > 0
        for p in sorted((DATA / ROOTS[clip] / "Annotations" / "480p" / clip).glob("*.png"))[: args.max_frames]
    ]
    run = Run(clip, strategy, seed)
    with tempfile.TemporaryDirectory(prefix="page-person-") as folder:
        tmp = Path(folder)
        root = one_clip_root(tmp / "root", clip, args.max_frames)
        server, address = serve(tmp / "state", root, args, tmp / "server.log")
        driver = browser(tmp / "chromium")
        try:
            driver.get(address)
            wait_for(driver, "return document.body.dataset.ready === '1'", 120)
            driver.execute_script(HOOKS)
            person = Person(driver, address, clip, truths, args)
            order = own_order(strategy, len(truths), seed) if strategy != "follow" else []
            for count in range(1, args.budget + 1):
                frame = person.proposed() if strategy == "follow" else order[count - 1]
                if frame is None:
                    break
                step = Step(frame)
                step.proposal = person.open(frame, strategy == "follow").replace("\n", " ")
                person.annotate(frame, step)
                if shot is not None and count == 2:
                    wait_for(
                        driver,
                        "return Array.from(document.querySelectorAll('.thumb img'))"
                        ".every((i) => i.complete && i.naturalWidth)",
                        60,
                    )
                    small(driver, shot)
                    shot = None
                person.submit(count, step)
                step.clip_j = person.clip_j()
                run.steps.append(step)
                print(
                    f"  {clip} {strategy}{'' if seed is None else f' seed {seed}'} #{count} frame {frame}: "
                    f"IoU {step.iou_before:.3f} → {step.iou_submitted:.3f} (box {step.boxes}, "
                    f"clicks {step.clicks} {step.ious}, mask {step.masks}; {step.human_s:.1f} human s), "
                    f"submit → proposal {step.to_proposal_s:.1f} s, → ready {step.to_ready_s:.1f} s; "
                    f"clip J {step.clip_j:.3f}",
                    flush=True,
                )
                if step.clip_j >= args.target:
                    run.reached = True
                    break
            with urllib.request.urlopen(f"{address.rstrip('/')}/api/session") as r:
                run.page_hours = float(json.load(r)["videos"][0]["hours"])
        finally:
            driver.quit()
            server.terminate()
            server.wait(30)
            shutil.rmtree(tmp / "chromium", ignore_errors=True)
    return run


def small(driver, path: Path) -> None:
    """The page's screenshot, halved and quantised: a small PNG for the README."""
    raw = path.with_suffix(".raw.png")
    driver.save_screenshot(str(raw))
    image = Image.open(raw).convert("RGB")
    image = image.resize((image.width * 2 // 3, image.height * 2 // 3), Image.LANCZOS)
    image.quantize(128).save(path, optimize=True)
    raw.unlink()


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", nargs="+", default=["blackswan", "car-shadow"], choices=sorted(ROOTS))
    parser.add_argument("--strategies", nargs="+", default=["follow", "uniform", "random"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--max-frames", type=int, default=30)
    parser.add_argument("--flow-downscale", type=int, default=2)
    parser.add_argument("--budget", type=int, default=8, help="most frames annotated per run")
    parser.add_argument("--target", type=float, default=0.85, help="mean J over the clip to reach")
    parser.add_argument(
        "--frame-target", type=float, default=0.9, help="IoU at which the person stops on a frame"
    )
    parser.add_argument(
        "--fallback-below", type=float, default=0.8, help="IoU under which the truth is uploaded"
    )
    parser.add_argument(
        "--box-below", type=float, default=0.5, help="propagated IoU under which the person draws a box"
    )
    parser.add_argument("--clicks", type=int, default=5, help="most corrective clicks per frame")
    parser.add_argument("--screenshot", type=Path, default=None, help="PNG of the page on a run's 2nd frame")
    parser.add_argument("--json", type=Path, default=None, help="write every run's steps here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed run quits Chromium and the server
    print(provenance_line(), flush=True)
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; costs {DEFAULT_COSTS.to_dict()}",
        flush=True,
    )
    runs: list[Run] = []
    shot = args.screenshot
    if shot is not None:
        shot.unlink(missing_ok=True)
    for clip in args.clips:
        for strategy in args.strategies:
            for seed in args.seeds if strategy == "random" else [None]:
                runs.append(run_one(clip, strategy, seed, args, shot))
                shot = None if shot is None or shot.exists() else shot  # the first run with a 2nd frame
                r = runs[-1]
                print(
                    f"{clip} {strategy}{'' if seed is None else f' seed {seed}'}: {len(r.steps)} frames, "
                    f"J {r.j:.3f} ({'reached' if r.reached else 'NOT reached'}), human {r.human_s:.1f} s "
                    f"(page ledger {r.page_hours * 3600:.0f} s), waited {r.wait_proposal_s:.1f} s "
                    f"to proposals, {r.wait_ready_s:.1f} s to ready",
                    flush=True,
                )
    print(
        "\n| clip | strategy | runs | reached | frames | J | human s | wait → proposal s | wait → ready s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for clip in args.clips:
        for strategy in args.strategies:
            group = [r for r in runs if r.clip == clip and r.strategy == strategy]
            print(
                f"| {clip} | {strategy} | {len(group)} | {sum(r.reached for r in group)}/{len(group)} | "
                f"{spread([len(r.steps) for r in group])} | {statistics.mean(r.j for r in group):.3f} | "
                f"{spread([r.human_s for r in group])} | {spread([r.wait_proposal_s for r in group])} | "
                f"{spread([r.wait_ready_s for r in group])} |"
            )
    if args.json:
        args.json.write_text(
            json.dumps([{**asdict(r), "human_s": r.human_s} for r in runs], indent=1), encoding="utf-8"
        )


if __name__ == "__main__":
    main()
