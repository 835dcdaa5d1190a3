"""The annotation page as a person with frames only uses it, in headless Chromium on a laptop-sized window.

Two clips of blackswan's first 20 frames (linked), no ground truth: opening a frame from the filmstrip
scrolls the filmstrip alone, never the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.conftest import serve
from app.test_browser import browser, wait_for  # noqa: F401 (the fixture)

pytestmark = pytest.mark.slow
FRAMES = 20
VIDEOS = ["clip-a", "clip-b"]


@pytest.fixture
def two_clips(tmp_path: Path, shared_data: Path) -> Iterator[str]:
    """`annotate serve` on two clips of blackswan's first 20 frames (linked), no ground truth; its address."""
    frames = shared_data / "davis_dev" / "JPEGImages" / "480p" / "blackswan"
    for video in VIDEOS:
        folder = tmp_path / "root" / "JPEGImages" / "480p" / video
        folder.mkdir(parents=True)
        for t in range(FRAMES):
            (folder / f"{t:05d}.jpg").symlink_to(frames / f"{t:05d}.jpg")
    server, address = serve(tmp_path / "state", tmp_path / "root", "--max-frames", str(FRAMES))
    yield address
    server.terminate()
    server.wait(30)


def opened(driver, address: str) -> None:
    """The page at ``address`` on a laptop's window (1366×768), ready, scrolled to its top."""
    driver.set_window_size(1366, 768)
    driver.get(address)
    wait_for(driver, "return document.body.dataset.ready === '1'")
    driver.execute_script("window.scrollTo(0, 0)")


def test_a_thumbnail_scrolls_the_filmstrip_alone(browser, two_clips: str) -> None:  # noqa: F811
    # the filmstrip's lower edge is below the window: the person clicks the part of thumbnail 8 in view
    opened(browser, two_clips)
    below = browser.execute_script(
        "return document.getElementById('filmstrip').getBoundingClientRect().bottom > innerHeight"
    )
    assert below
    browser.execute_script("document.querySelector(\".thumb[data-frame='8']\").click()")
    wait_for(browser, "return document.body.dataset.frame === 'clip-a/8'")
    # the page stays where it was (the frame's top not under the header); thumbnail 8 is centred in the strip
    centre = browser.execute_script(
        "const t = document.querySelector(\".thumb[data-frame='8']\").getBoundingClientRect();"
        "const s = document.getElementById('filmstrip').getBoundingClientRect();"
        "return [window.scrollY, Math.round(t.left + t.width / 2 - s.left - s.width / 2),"
        " document.getElementById('filmstrip').scrollLeft > 0]"
    )
    assert centre[0] == 0 and abs(centre[1]) <= 1 and centre[2]
