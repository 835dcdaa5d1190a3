"""The annotation page in headless Chromium, on the real DAVIS sample, against what `annotate add` does.

`frugalseg annotate serve` runs as a user runs it; Selenium opens its printed address, uploads the
first mask, clicks on the swan, waits for the preview, submits, waits for the propagation, checks
the stored masks against the same `annotate add` on another folder, exports and trains one step on
the export. Its screenshots go to the folder ``FRUGALSEG_SCREENSHOTS`` names (the README's are made with
``FRUGALSEG_SCREENSHOTS=docs``), else to the test's temporary folder: tests write nothing into the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.conftest import SESSION_FLAGS, serve
from app.training import train_one_step
from frugalseg.cli import main

pytestmark = pytest.mark.slow
CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
VIDEO = "blackswan"
THUMBS_SHOWN = (
    "return Array.from(document.querySelectorAll('.thumb img')).every((i) => i.complete && i.naturalWidth)"
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    for path in (CHROMIUM, DRIVER):
        if not path.is_file():
            pytest.skip(f"{path} is missing (apt-get install chromium chromium-driver)")
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1500,1000",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    try:  # a renderer that never came up (a loaded machine) ends the session at the first page: start again
        driver.get("data:text/html,<p>ready</p>")
    except WebDriverException:
        driver.quit()
        driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_script_timeout(120)
    yield driver
    driver.quit()


@pytest.fixture
def served(tmp_path: Path, shared_data: Path) -> Iterator[tuple[str, Path]]:
    """`frugalseg annotate serve` on a new session of davis_dev; its printed address and the state folder."""
    server, address = serve(tmp_path / "state", shared_data / "davis_dev")
    assert address.startswith("http://127.0.0.1:")
    yield address, tmp_path / "state"
    server.terminate()
    server.wait(30)


def wait_for(driver, script: str, timeout: float = 120):
    """Wait until ``script`` returns true; on a timeout, say what the page showed."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, 0.1).until(lambda d: d.execute_script(script))
    except TimeoutException as err:
        shown = driver.execute_script(
            "return ['status', 'jobinfo', 'proposal']"
            ".map((id) => id + ': ' + document.getElementById(id).textContent)"
        )
        raise AssertionError(f"{script!r} still false after {timeout} s; the page shows {shown}") from err


def click_on(driver, x: int, y: int, *, right: bool = False) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    canvas = driver.find_element(By.ID, "overlay")
    scale = canvas.size["width"] / 854
    chain = ActionChains(driver).move_to_element_with_offset(
        canvas, round((x - 427) * scale), round((y - 240) * scale)
    )
    (chain.context_click() if right else chain.click()).perform()


def drag(driver, start: tuple[int, int], end: tuple[int, int]) -> None:
    """A left-button drag on the frame from ``start`` to ``end`` (frame pixels)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    canvas = driver.find_element(By.ID, "overlay")
    scale = canvas.size["width"] / 854
    offset = [(round((x - 427) * scale), round((y - 240) * scale)) for x, y in (start, end)]
    chain = ActionChains(driver).move_to_element_with_offset(canvas, *offset[0]).click_and_hold()
    chain.move_to_element_with_offset(canvas, *offset[1]).release().perform()


def test_annotate_in_the_browser(
    browser, served: tuple[str, Path], shared_data: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    address, state = served
    davis = shared_data / "davis_dev"
    browser.get(address)
    wait_for(browser, "return document.body.dataset.ready === '1'")
    assert "first annotation of the video" in browser.find_element(By.ID, "proposal").text
    # the first annotation: the mask PNG drawn of frame 0
    truth = davis / "Annotations" / "480p" / VIDEO / "00000.png"
    browser.find_element(By.ID, "upload").send_keys(str(truth))
    wait_for(browser, "return S.edited && S.work.some((v) => v === 1)")
    browser.find_element(By.ID, "submit").click()
    wait_for(browser, "return document.getElementById('jobinfo').dataset.done === '1'")
    wait_for(browser, "return document.querySelectorAll('.thumb.annotated').length === 1")
    assert "expected error (1 − J&F) of each frame" in browser.find_element(By.ID, "legend").text
    # a frame clicked while another still opens (the page reopens the frame after each job) stays open;
    # the job's own reopen may still be in flight when these two settle, so the frame is awaited, then
    # watched for a second
    browser.set_script_timeout(60)
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all([openVideo(S.video, 0), openFrame(3)]).then(() => done());"
    )
    wait_for(browser, f"return document.body.dataset.frame === '{VIDEO}/3'")
    for _ in range(10):
        time.sleep(0.1)
        assert browser.execute_script("return document.body.dataset.frame") == f"{VIDEO}/3"
    # clicks on frame 6, the click model's preview after each
    browser.find_element(By.CSS_SELECTOR, ".thumb[data-frame='6']").click()
    wait_for(browser, "return document.body.dataset.frame === 'blackswan/6'")
    before = browser.execute_script("return Array.from(S.work).filter((v) => v === 1).length")
    # the brush paints the object, the polygon fills it, Undo takes each back
    count = "return Array.from(S.work).filter((v) => v === 1).length"
    browser.find_element(By.CSS_SELECTOR, "input[value='brush']").click()
    click_on(browser, 100, 400)
    assert browser.execute_script(count) > before
    browser.find_element(By.ID, "undo").click()
    assert browser.execute_script(count) == before
    # a polygon replaces the object's mask in the frame, Shift adds to it
    browser.find_element(By.CSS_SELECTOR, "input[value='polygon']").click()
    for mode in ("replace", "add"):
        for x, y in ((50, 50), (150, 50), (150, 150)):
            click_on(browser, x, y)
        browser.execute_script(f"closePolygon('{mode}')")
        drawn = browser.execute_script(count)
        assert 4900 < drawn < 5200 if mode == "replace" else drawn > before + 4000  # the triangle's 5000 px
        browser.find_element(By.ID, "undo").click()
        assert browser.execute_script(count) == before
    assert browser.execute_script("return S.edited") is False
    # a box dragged around the swan: its GrabCut mask replaces the swan's, inside the box
    browser.find_element(By.CSS_SELECTOR, "input[value='box']").click()
    drag(browser, (140, 60), (532, 382))  # the swan's box, 5 px loose
    wait_for(browser, "return document.getElementById('frameinfo').dataset.box !== undefined")
    inside = (
        "return Array.from(S.work).filter((v, i) => v === 1 && i % 854 >= 140 && i % 854 <= 532"
        " && i / 854 >= 60 && i / 854 < 383).length"
    )
    boxed = browser.execute_script(count)
    assert boxed > 10000 and browser.execute_script(inside) == boxed
    click_on(browser, 362, 175, right=True)  # a negative click where the box's mask is most wrong
    wait_for(browser, "return document.getElementById('frameinfo').dataset.box.endsWith(':1')")
    # the info line counts what the click changed of the swan, as the clicks tool's does
    removed = boxed - browser.execute_script(count)
    changed = browser.execute_script("return document.getElementById('frameinfo').dataset.changed")
    assert changed == f"0:{removed}" and removed > 1
    assert browser.execute_script("return document.getElementById('status').textContent") == ""
    assert browser.execute_script("return S.boxClicks.map((c) => c.positive)") == [False]
    # the ledger's account of the edit: a box and its click for object 1, nothing freehand (undone)
    assert browser.execute_script("return [S.boxed, S.freehand]") == [
        {"1": {"box": [140, 60, 532, 382], "clicks": [{"object": 1, "x": 362, "y": 175, "positive": False}]}},
        {},
    ]
    for _ in range(2):
        browser.find_element(By.ID, "undo").click()
    assert browser.execute_script(count) == before and browser.execute_script("return S.box") is None
    assert browser.execute_script("return S.boxed") == {}
    browser.find_element(By.CSS_SELECTOR, "input[value='clicks']").click()
    # where the simulated annotator clicks (`corrective_click` against the truth): the swan's missed
    # head, then the largest region the first preview got wrong
    click_on(browser, 473, 77)
    wait_for(browser, "return document.getElementById('frameinfo').dataset.preview === '1'")
    click_on(browser, 215, 374, right=True)
    wait_for(browser, "return document.getElementById('frameinfo').dataset.preview === '2'")
    after = browser.execute_script("return Array.from(S.work).filter((v) => v === 1).length")
    assert after != before
    shots = Path(os.environ.get("FRUGALSEG_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(exist_ok=True)
    wait_for(browser, THUMBS_SHOWN)
    browser.save_screenshot(str(shots / "annotate_serve.png"))
    clicks = browser.execute_script("return S.clicks")
    assert [c["positive"] for c in clicks] == [True, False]
    browser.find_element(By.ID, "submit").click()
    wait_for(browser, "return S.clicks.length === 0")
    assert "click(s)" not in browser.find_element(By.ID, "frameinfo").text  # submitted: no preview any more
    wait_for(browser, "return document.getElementById('jobinfo').dataset.done === '2'")
    wait_for(browser, "return document.querySelectorAll('.thumb.annotated').length === 2")
    wait_for(browser, "return document.getElementById('proposal').textContent.includes('Next:')")
    wait_for(browser, THUMBS_SHOWN)
    browser.save_screenshot(str(shots / "annotate_serve_submitted.png"))
    # after a submit the frame is no edit; drawing while a clip propagates survives the job's end
    assert browser.execute_script("return S.edited || S.clicks.length > 0") is False
    browser.find_element(By.CSS_SELECTOR, "input[value='brush']").click()
    click_on(browser, 100, 400)
    drawn = browser.execute_script(count)
    browser.execute_async_script("refresh().then(arguments[0])")  # the end of a propagation, again
    assert browser.execute_script("return S.edited") is True and browser.execute_script(count) == drawn
    browser.find_element(By.ID, "undo").click()

    # the same two additions with `annotate add` give the same state, byte for byte
    cli = tmp_path / "cli"
    (tmp_path / "clicks.json").write_text(json.dumps({"clicks": clicks}), encoding="utf-8")
    add = ["annotate", "add", "--state", str(cli), "--root", str(davis), *SESSION_FLAGS, "--video", VIDEO]
    assert main([*add, "--frame", "0", "--mask", str(truth)]) == 0
    assert main([*add, "--frame", "6", "--clicks", str(tmp_path / "clicks.json")]) == 0
    assert (state / VIDEO / "state.json").read_text(encoding="utf-8") == (
        cli / VIDEO / "state.json"
    ).read_text(encoding="utf-8")
    for mask in sorted((cli / VIDEO / "masks").glob("*.png")):
        assert (state / VIDEO / "masks" / mask.name).read_bytes() == mask.read_bytes(), mask.name

    browser.find_element(By.ID, "export").click()
    wait_for(browser, "return document.getElementById('exported').textContent.includes('labels written')")
    store = state / "exports" / "store-001"
    names = ("coco.json", "label-studio.json", f"cvat-video-{VIDEO}.xml")
    tools = [f"{store}-tools/{name}" for name in names]
    # every label of the store: the 10 frames' masks and the clicks of frame 6 (the tool files hold 10 frames)
    from frugalseg.autolabel.store import LabelStore

    assert sorted(r["kind"] for r in LabelStore(store).records()) == ["clicks", "fine"] + ["pseudo"] * 9
    back = (
        f"frugalseg label import {tools[0]} --tool coco --format davis --root {davis.resolve()} --split all"
    )
    shown = f"11 labels written to {store}; for your tool: {', '.join(tools)}; once edited there, back to a "
    shown += f"label store with: {back} --out NEW_STORE"
    assert browser.find_element(By.ID, "exported").text == shown
    train_one_step(davis, store, state)
    assert not [e for e in browser.get_log("browser") if "favicon" in e["message"]]  # the page's own icon
    shutil.rmtree(tmp_path / "chromium", ignore_errors=True)


#: The page's own fetch, wrapped: a preview asked for while ``window.holdBack`` is its number (counted from 1
#: as asked) comes back 2 s late; ``window.answered`` counts the previews come back.
HOLD_BACK_A_PREVIEW = """
const fetched = window.fetch; window.asked = 0; window.answered = 0; window.holdBack = 1;
window.fetch = async (...args) => {
  const preview = String(args[0]).includes('/preview'); const number = preview ? ++window.asked : 0;
  const response = await fetched(...args);
  if (number === window.holdBack) { await new Promise((resolve) => setTimeout(resolve, 2000)); }
  if (preview) { window.answered++; }
  return response;
};"""


def test_a_click_s_preview_that_comes_back_late_is_not_shown(browser, served: tuple[str, Path]) -> None:
    # A new session's frame 0 of blackswan, the field's first two clicks (the swan's middle, then the spill
    # under it). The first click's answer comes back after the second's: the page shows the second's (both
    # clicks), not the first's. A third click's answer comes back after the person opened frame 3: frame 3
    # stays as it was.
    from selenium.webdriver.common.by import By

    address, _ = served
    browser.get(address)
    wait_for(browser, "return document.body.dataset.ready === '1'")
    wait_for(browser, f"return document.body.dataset.frame === '{VIDEO}/0'")
    browser.find_element(By.CSS_SELECTOR, "input[value='clicks']").click()
    browser.execute_script(HOLD_BACK_A_PREVIEW)
    click_on(browser, 272, 319)
    click_on(browser, 260, 425, right=True)
    wait_for(browser, "return window.answered === 2")
    answer_to = (
        "const done = arguments[arguments.length - 1];"
        "api(frameUrl(S.frame, 'preview'), { method: 'POST', headers: { 'Content-Type': 'application/json' },"
        " body: JSON.stringify({ clicks: S.clicks.slice(0, arguments[0]) }) })"
        ".then((p) => done(Array.from(decode(p.rle, S.work.length)).filter((v) => v === 1).length))"
    )
    shown = browser.execute_script("return Array.from(S.work).filter((v) => v === 1).length")
    one, both = browser.execute_async_script(answer_to, 1), browser.execute_async_script(answer_to, 2)
    assert one != both and shown == both
    assert browser.execute_script("return document.getElementById('frameinfo').dataset.preview") == "2"
    browser.execute_script("window.holdBack = window.asked + 1")
    click_on(browser, 272, 300)
    browser.execute_async_script("openFrame(3).then(arguments[arguments.length - 1])")
    wait_for(browser, "return window.answered === window.holdBack")
    assert browser.execute_script("return document.body.dataset.frame") == f"{VIDEO}/3"
    assert browser.execute_script("return S.work.every((v) => v === 0) && S.clicks.length === 0")


def test_a_damaged_frame_says_why_and_a_submitted_frame_is_annotated_at_once(
    browser, tmp_path: Path, shared_data: Path
) -> None:
    """A frame damaged while the page served opened as a broken image without a word (its 400 reached the
    console only); after Submit the info line said "(annotated)" only once the propagation had ended."""
    from selenium.webdriver.common.by import By

    frames = tmp_path / "davis" / "JPEGImages" / "480p" / VIDEO
    frames.mkdir(parents=True)
    for t in range(10):
        shutil.copy(shared_data / "davis_dev" / "JPEGImages" / "480p" / VIDEO / f"{t:05d}.jpg", frames)
    server, address = serve(tmp_path / "state", tmp_path / "davis")
    try:
        browser.get(address)
        wait_for(browser, "return document.body.dataset.ready === '1'")
        truth = shared_data / "davis_dev" / "Annotations" / "480p" / VIDEO / "00000.png"
        browser.find_element(By.ID, "upload").send_keys(str(truth))
        wait_for(browser, "return S.edited && S.work.some((v) => v === 1)")
        browser.find_element(By.ID, "submit").click()
        wait_for(browser, "return !document.getElementById('submit').disabled && !S.edited")
        assert browser.find_element(By.ID, "frameinfo").text == f"{VIDEO} frame 0 (00000.jpg) (annotated)"
        wait_for(browser, "return document.getElementById('jobinfo').dataset.done === '1'")
        damaged = frames / "00003.jpg"
        damaged.write_bytes(damaged.read_bytes()[:15000])
        browser.find_element(By.CSS_SELECTOR, ".thumb[data-frame='3']").click()
        wait_for(browser, "return document.getElementById('status').textContent.includes('00003.jpg')")
        said = browser.find_element(By.ID, "status").text
        assert said.startswith(f"{damaged}: ") and "truncated" in said, said
    finally:
        server.terminate()
        server.wait(30)
