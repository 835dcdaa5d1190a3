"""An uploaded mask on the page in headless Chromium, on a tiny clip of the fake moving squares (frames only).

A mask of one object (one id, or black and white) replaces the chosen object on the frame, the other
objects kept (``annotate add --object``); a mask of several objects is the frame's mask, and ids the video
does not know are refused unless the person ticks "new objects"; a submitted id the person never declared
is refused by the server. The status line says what each upload did.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from data.fake_davis import grey_png, palette_png, squares, write_davis

from app.conftest import serve
from app.test_browser import browser, wait_for  # noqa: F401 (the fixture)

pytestmark = pytest.mark.slow
FRAMES = 6
VIDEO = "clip"
#: object 1 and object 2 of the squares on the page's frame 3, and where the uploads draw
RECT_9 = (slice(36, 46), slice(4, 20))  # away from both squares
RECT_BW = (slice(2, 8), slice(30, 38))


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`annotate serve` on one clip of the two moving squares (6 frames, no masks); its address and state."""
    root = write_davis(tmp_path / "own", {VIDEO: [squares(t, 0) for t in range(FRAMES)]})
    shutil.rmtree(root / "Annotations")
    server, address = serve(tmp_path / "state", root, "--max-frames", str(FRAMES))
    yield address, tmp_path / "state"
    server.terminate()
    server.wait(30)


def work(driver) -> np.ndarray:
    return np.array(driver.execute_script("return Array.from(S.work)"), np.uint8).reshape(squares(0, 0).shape)


def status(driver) -> str:
    return driver.execute_script("return document.getElementById('status').textContent")


def options(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.getElementById('object').options).map((o) => o.text)"
    )


def upload(driver, path: Path) -> None:
    """Upload ``path`` on the open frame and wait for the page to take it (or refuse it)."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "upload").send_keys(str(path))
    wait_for(driver, "return document.getElementById('upload').value === ''")  # cleared once taken


def choose(driver, obj: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "object")).select_by_value(str(obj))


def submitted(driver, job: int, state: Path) -> dict:
    """Submit, wait for propagation ``job`` and the page's reopening of the frame; the video's state."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "submit").click()
    wait_for(driver, f"return document.getElementById('jobinfo').dataset.done === '{job}'")
    time.sleep(1)  # the page reopens the open frame after the job
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; openFrame(S.frame).then(() => done());"
    )
    return json.loads((state / VIDEO / "state.json").read_text(encoding="utf-8"))


def changed(before: np.ndarray, after: np.ndarray, obj: int) -> str:
    added = int(((after == obj) & (before != obj)).sum())
    removed = int(((before == obj) & (after != obj)).sum())
    return f"+{added} / −{removed} px"


def test_an_upload_replaces_the_chosen_object_and_new_ids_need_a_declaration(
    browser,  # noqa: F811
    tiny: tuple[str, Path],
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    address, state = tiny
    shape = squares(0, 0).shape
    first = squares(0, 0)
    palette_png(tmp_path / "first.png", first)
    only_9 = np.zeros(shape, np.uint8)
    only_9[RECT_9] = 9
    palette_png(tmp_path / "only9.png", only_9)
    black_white = np.zeros(shape, np.uint8)
    black_white[RECT_BW] = 255
    grey_png(tmp_path / "bw.png", black_white)
    mixed = np.where(squares(3, 0) == 1, 1, only_9).astype(np.uint8)
    palette_png(tmp_path / "mixed.png", mixed)

    browser.get(address)
    wait_for(browser, "return document.body.dataset.ready === '1'")
    wait_for(browser, f"return document.body.dataset.frame === '{VIDEO}/0'")
    # the video's first annotation: every object of the upload is one of its objects
    upload(browser, tmp_path / "first.png")
    assert status(browser) == "upload: the mask of frame 0 replaced by objects 1, 2; new: objects 1, 2"
    assert np.array_equal(work(browser), first)
    assert options(browser) == ["1: object 1", "2: object 2"]
    assert submitted(browser, 1, state)["objects"] == {"1": 0, "2": 0}

    # frame 3: a mask whose only id is 9 replaces object 1 (the chosen one), object 2 kept, no object 9
    browser.find_element(By.CSS_SELECTOR, ".thumb[data-frame='3']").click()
    wait_for(browser, f"return document.body.dataset.frame === '{VIDEO}/3'")
    shown = work(browser)
    assert sorted(np.unique(shown).tolist()) == [0, 1, 2]
    choose(browser, 1)
    upload(browser, tmp_path / "only9.png")
    expected = np.where(shown == 1, 0, shown).astype(np.uint8)
    expected[RECT_9] = 1
    assert status(browser) == (
        f"upload: object 1 replaced on frame 3 ({changed(shown, expected, 1)}), the other objects kept; "
        "the file's id 9 read as object 1, the chosen object"
    )
    assert np.array_equal(work(browser), expected)
    assert options(browser) == ["1: object 1", "2: object 2"]
    saved = submitted(browser, 2, state)
    assert saved["objects"] == {"1": 0, "2": 0}
    assert np.array_equal(
        cv2.imread(str(state / VIDEO / "masks" / "00003.png"), cv2.IMREAD_UNCHANGED), expected
    )

    # a black and white mask (read as object 1), object 2 chosen, replaces object 2 alone; Undo undoes it
    shown = work(browser)
    assert np.array_equal(shown, expected)
    choose(browser, 2)
    upload(browser, tmp_path / "bw.png")
    expected = np.where(shown == 2, 0, shown).astype(np.uint8)
    expected[RECT_BW] = 2
    assert status(browser) == (
        f"upload: object 2 replaced on frame 3 ({changed(shown, expected, 2)}), the other objects kept; "
        "the file's id 1 read as object 2, the chosen object"
    )
    assert np.array_equal(work(browser), expected)
    browser.find_element(By.ID, "undo").click()
    assert np.array_equal(work(browser), shown)

    # a mask of several objects with an id the video does not know: refused, the frame as it was
    upload(browser, tmp_path / "mixed.png")
    assert status(browser) == (
        'upload refused: object 9 unknown in clip (known: 1, 2); tick "new objects" if it first appears on '
        "this frame, or upload one object's mask (it replaces the chosen object)"
    )
    assert np.array_equal(work(browser), shown)
    assert options(browser) == ["1: object 1", "2: object 2"]

    # an id the person never declared is not sent as a new object: the server refuses it
    records = (state / VIDEO / "state.json").read_text(encoding="utf-8")
    browser.execute_script("S.work[0] = 7; S.edited = true; S.freehand = true;")
    browser.find_element(By.ID, "submit").click()
    wait_for(
        browser, "return document.getElementById('status').textContent.includes('object 7') || !S.edited"
    )
    assert status(browser).startswith("the submitted mask: object 7 unknown in video 'clip' (known: 1, 2); ")
    assert (state / VIDEO / "state.json").read_text(encoding="utf-8") == records  # nothing added
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1]; openFrame(S.frame).then(() => done());"
    )

    # with "new objects" ticked the same mask is the frame's mask: object 9 is new, object 2 leaves the frame
    browser.find_element(By.ID, "newobjects").click()
    upload(browser, tmp_path / "mixed.png")
    assert status(browser) == (
        "upload: the mask of frame 3 replaced by objects 1, 9; new: object 9; "
        "not in it, so removed from this frame: object 2"
    )
    assert np.array_equal(work(browser), mixed)
    assert options(browser) == ["1: object 1", "2: object 2", "9: object 9"]
    assert browser.execute_script("return document.getElementById('newobjects').checked") is False
    saved = submitted(browser, 3, state)
    assert saved["objects"] == {"1": 0, "2": 0, "9": 3}
    assert np.array_equal(cv2.imread(str(state / VIDEO / "masks" / "00003.png"), cv2.IMREAD_UNCHANGED), mixed)


def test_a_submit_before_the_box_s_answer_submits_the_box_s_mask(
    browser,  # noqa: F811
    tiny: tuple[str, Path],
) -> None:
    """A quick person submits as the box is let go: the page waits for its answer. It had submitted the
    frame's mask unchanged, booked as a look (1 s), and the box was lost without a word."""
    address, state = tiny
    browser.get(address)
    wait_for(browser, "return document.body.dataset.ready === '1'")
    wait_for(browser, f"return document.body.dataset.frame === '{VIDEO}/0'")
    browser.find_element("css selector", "input[value='box']").click()
    # object 1's square is rows 8…19, columns 4…15: the box around it, let go and submitted in one go
    browser.execute_script("S.drag = [2, 6, 17, 21]; S.dragMode = shapeMode(); boxUp(); submit();")
    wait_for(browser, "return document.getElementById('jobinfo').dataset.done === '1'")
    saved = json.loads((state / VIDEO / "state.json").read_text(encoding="utf-8"))
    assert [(a["frame"], a["kind"], a["box"]) for a in saved["annotations"]] == [(0, "box", [2, 6, 18, 22])]
    annotated = cv2.imread(str(state / VIDEO / saved["annotated"]["0"]), cv2.IMREAD_UNCHANGED)
    assert (annotated == 1).sum() > 0.8 * (squares(0, 0) == 1).sum()
    assert not (annotated == 1)[:, :2].any() and not (annotated == 1)[:, 18:].any()  # inside the box
    assert not (annotated == 1)[:6].any() and not (annotated == 1)[22:].any()
