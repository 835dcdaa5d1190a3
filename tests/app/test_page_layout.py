"""The annotation page's layout and messages in headless Chromium, on a frames-only root of 12 videos.

One page load covers: column headers on one line each, the page's header and the video list's header
staying in view when their content scrolls, a 415 message gone at the next action that succeeds, a 409
message gone when the propagation ends, the info line after Undo, what a click changed and a click that
changed nothing, and the filmstrip's red.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.conftest import serve
from app.test_browser import browser, click_on, wait_for  # noqa: F401 (the fixture)
from frugalseg.active.objects.choosing.frame_selectors import FITTED_ERROR

pytestmark = pytest.mark.slow
FRAMES = 20
VIDEOS = [f"clip-{i:02d}" for i in range(1, 13)]


def serve_blackswan(tmp_path: Path, shared_data: Path, videos: list[str]) -> Iterator[str]:
    """`annotate serve` on ``videos``, each blackswan's first 20 frames (linked), no truth; its address."""
    frames = shared_data / "davis_dev" / "JPEGImages" / "480p" / "blackswan"
    for video in videos:
        folder = tmp_path / "root" / "JPEGImages" / "480p" / video
        folder.mkdir(parents=True)
        for t in range(FRAMES):
            (folder / f"{t:05d}.jpg").symlink_to(frames / f"{t:05d}.jpg")
    server, address = serve(tmp_path / "state", tmp_path / "root", "--max-frames", str(FRAMES))
    yield address
    server.terminate()
    server.wait(90)  # it stops a propagation at its next frame, waiting up to 60 s (`SessionService.close`)


@pytest.fixture
def twelve(tmp_path: Path, shared_data: Path) -> Iterator[str]:
    """The page on 12 videos (`serve_blackswan`); its address."""
    yield from serve_blackswan(tmp_path, shared_data, VIDEOS)


def status(driver) -> str:
    return driver.execute_script("return document.getElementById('status').textContent")


def test_layout_and_messages_of_the_page(browser, twelve: str, shared_data: Path, tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.set_window_size(1500, 600)
    browser.get(twelve)
    wait_for(browser, "return document.body.dataset.ready === '1'")
    # every column header on one line, none cut
    lines = browser.execute_script(
        "return Array.from(document.querySelectorAll('th')).map((th) => {"
        " const r = document.createRange(); r.selectNodeContents(th);"
        " return [th.textContent, r.getClientRects().length, th.scrollWidth <= th.clientWidth]; })"
    )
    assert lines == [[name, 1, True] for name in ("video", "annotated", "hours", "unreliable")]
    # the video list scrolls under its header; the page scrolls under its header
    held = browser.execute_script(
        "const list = document.getElementById('videolist'); list.scrollTop = 1e6; window.scrollTo(0, 1e6);"
        "return [list.scrollTop > 0, window.scrollY > 0,"
        " Math.abs(document.querySelector('th').getBoundingClientRect().top"
        " - list.getBoundingClientRect().top),"
        " document.querySelector('header').getBoundingClientRect().top]"
    )
    assert held == [True, True, 0, 0]
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.video")) == 12
    browser.set_window_size(1500, 1000)  # the frame whole in view for the clicks
    browser.execute_script("window.scrollTo(0, 0)")

    # a 415 stays through a failed action and goes at the next one that succeeds (a brush stroke)
    (tmp_path / "not.png").write_text("a text file", encoding="utf-8")
    browser.find_element(By.ID, "upload").send_keys(str(tmp_path / "not.png"))
    wait_for(browser, "return document.getElementById('status').textContent !== ''")
    assert status(browser) == "the upload is not a PNG file"
    browser.find_element(By.CSS_SELECTOR, "input[value='brush']").click()
    click_on(browser, 100, 400)
    assert status(browser) == ""
    browser.find_element(By.ID, "undo").click()

    # the first mask, submitted; an export while it propagates is a 409, gone when the clip is done
    truth = shared_data / "davis_dev" / "Annotations" / "480p" / "blackswan" / "00000.png"
    browser.find_element(By.ID, "upload").send_keys(str(truth))
    wait_for(browser, "return S.edited && S.work.some((v) => v === 1)")
    browser.find_element(By.ID, "submit").click()
    # export once the submit's 202 is back (its propagation queued), not racing the submit itself
    wait_for(browser, "if (S.edited) { return false; } $('export').click(); return true;")
    wait_for(browser, "return document.getElementById('status').textContent !== ''", 30)
    assert status(browser) == "a propagation is running; export when it has finished"
    wait_for(browser, "return document.getElementById('status').textContent === ''")
    jobs = browser.execute_async_script(
        "api('/api/jobs').then((d) => arguments[0](d.jobs.map((j) => j.status)))"
    )
    assert jobs == ["done"]

    # the filmstrip: red from look_here, the frames the error model expects that wrong (one side, frame 0)
    wait_for(browser, "return document.querySelectorAll('.thumb.annotated').length === 1")
    look = browser.execute_script("return S.info.look_here")
    expected = [t for t in range(FRAMES) if FITTED_ERROR.one_scale * t / (t + FITTED_ERROR.one_half) >= look]
    # the filmstrip repaints its frames one by one after the propagation: wait for the last of them
    shown = "[...document.querySelectorAll('.thumb.look')].map((e) => +e.dataset.frame).join()"
    wait_for(browser, f"return {shown} === '{','.join(map(str, expected))}'", 30)
    red = [int(e.get_attribute("data-frame")) for e in browser.find_elements(By.CSS_SELECTOR, ".thumb.look")]
    assert red == expected
    assert 0 < len(red) < FRAMES - 1
    assert f"look here ({len(red)} of {FRAMES} frames)" in browser.find_element(By.ID, "legend").text

    # two clicks on frame 6, then Undo: the info line tells of one click, then of none
    browser.find_element(By.CSS_SELECTOR, ".thumb[data-frame='6']").click()
    wait_for(browser, f"return document.body.dataset.frame === '{VIDEOS[0]}/6'")
    browser.find_element(By.CSS_SELECTOR, "input[value='clicks']").click()
    click_on(browser, 473, 77)
    wait_for(browser, "return document.getElementById('frameinfo').dataset.preview === '1'")
    click_on(browser, 215, 374, right=True)
    wait_for(browser, "return document.getElementById('frameinfo').dataset.preview === '2'")
    info = "return document.getElementById('frameinfo').textContent"
    assert "preview of 2 click(s)" in browser.execute_script(info)
    browser.find_element(By.ID, "undo").click()
    assert browser.execute_script(info) == f"{VIDEOS[0]} frame 6 (00006.jpg): preview of 1 click(s)"
    browser.find_element(By.ID, "undo").click()
    assert browser.execute_script(info) == f"{VIDEOS[0]} frame 6 (00006.jpg)"
    # the first click's preview counted what it changed; a positive click 64 px deep inside the swan's
    # propagated mask changes nothing (a correction changes only the parts holding a click), and the page
    # says the pixel was the object already
    browser.execute_script("window.shown = S.work.slice()")
    click_on(browser, 473, 77)
    wait_for(browser, "return document.getElementById('frameinfo').dataset.preview === '1'")
    counted = browser.execute_script("return document.getElementById('frameinfo').dataset.changed")
    added, removed = browser.execute_script(
        "let a = 0, r = 0;"
        " S.work.forEach((v, i) => { a += v === 1 && shown[i] !== 1; r += v !== 1 && shown[i] === 1; });"
        " return [a, r]"
    )
    # the cut's answer varied under .ci/run's load (+33 / −126 px once, else +100 px or more): the page's
    # count of it is the point here
    assert counted == f"{added}:{removed}" and added + removed > 0
    assert browser.execute_script(info).endswith(f": +{added} / −{removed} px")
    assert status(browser) == ""
    browser.find_element(By.ID, "undo").click()
    click_on(browser, 291, 312)
    wait_for(browser, "return document.getElementById('frameinfo').dataset.preview === '1'")
    assert browser.execute_script("return document.getElementById('frameinfo').dataset.changed") == "0:0"
    assert browser.execute_script("return S.work.every((v, i) => v === shown[i])")
    assert browser.execute_script(info).endswith(": +0 / −0 px")
    assert status(browser) == (
        "the clicked pixel was already object 1: a left click adds to the chosen object, a right click takes "
        "from it"
    )
    browser.find_element(By.ID, "undo").click()
