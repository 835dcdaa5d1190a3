"""The annotation page follows every propagation of the open video, whoever started it, and a server that
stops and comes back; the box tool: a box belongs to the object it was drawn for and is clipped to the frame;
the Object menu keeps object 1 of a new video beside the objects declared after it."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import numpy as np
import pytest

from app.conftest import open_session, serve
from app.test_browser import browser, click_on, drag, served, wait_for  # noqa: F401 (the fixtures)
from app.test_page_usability import options
from frugalseg.active.objects.session.given import GivenAnnotation
from frugalseg.active.objects.simulation.annotation_types import GivenClick

pytestmark = pytest.mark.slow
VIDEO = "blackswan"
DONE = "return document.getElementById('jobinfo').dataset.done === '1'"
ANNOTATED = "return document.querySelectorAll('.thumb.annotated').length === {}"


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        return listener.getsockname()[1]


def test_the_page_follows_a_propagation_it_did_not_start_and_a_restarted_server(
    browser,  # noqa: F811
    tmp_path: Path,
    shared_data: Path,
) -> None:
    davis, state, port = shared_data / "davis_dev", tmp_path / "state", free_port()
    server, address = serve(state, davis, "--port", str(port))
    try:
        browser.get(address)
        wait_for(browser, "return document.body.dataset.ready === '1'")
        browser.execute_async_script(f"openVideo('{VIDEO}', 0).then(arguments[arguments.length - 1])")
        # another tab submits the open frame's mask: this one shows the propagation, then the frame's new mask
        truth = davis / "Annotations" / "480p" / VIDEO / "00000.png"
        with httpx.Client(base_url=address, timeout=60) as http:
            ids = http.post(f"/api/videos/{VIDEO}/0/upload", content=truth.read_bytes()).json()["rle"]
            assert http.post(f"/api/videos/{VIDEO}/0/submit", json={"mask": ids}).status_code == 202
        wait_for(browser, DONE)
        wait_for(browser, ANNOTATED.format(1))
        wait_for(browser, "return S.work.some((v) => v === 1)")
    finally:
        server.kill()
        server.wait(30)
    wait_for(browser, "return document.getElementById('status').textContent.includes('does not answer')")
    # meanwhile an addition is saved, its masks owed: the restarted server propagates it, the page follows
    clicks = GivenAnnotation(Path("clicks"), (480, 854), clicks=(GivenClick(1, 420, 230, True),))
    open_session(state, davis).add(VIDEO, 5, clicks, propagate=False)
    server, _ = serve(state, davis, "--port", str(port))
    try:
        # back, the page reads the restarted server's jobs: the owed one may have ended before it came back
        wait_for(browser, "return !W.lost && W.jobs !== null && Object.values(W.jobs).length === 1"
                 " && Object.values(W.jobs)[0].status === 'done'")  # fmt: skip
        wait_for(browser, ANNOTATED.format(2))
        wait_for(browser, "return document.getElementById('status').textContent === ''")
        assert browser.execute_script("return document.getElementById('jobinfo').textContent").startswith(
            f"{VIDEO}: done 10/10 frames"
        )
        assert "Next:" in browser.execute_script("return document.getElementById('proposal').textContent")
    finally:
        server.terminate()
        server.wait(30)


def box_on_frame_0(driver, address: str) -> list[int]:
    """The page on frame 0 of a new video, a box dragged round the swan (object 1); the frame's mask."""
    from selenium.webdriver.common.by import By

    driver.get(address)
    wait_for(driver, "return document.body.dataset.ready === '1'")
    driver.execute_async_script(f"openVideo('{VIDEO}', 0).then(arguments[arguments.length - 1])")
    driver.find_element(By.CSS_SELECTOR, "input[value='box']").click()
    drag(driver, (140, 60), (532, 382))
    wait_for(driver, "return document.getElementById('frameinfo').dataset.box !== undefined")
    return driver.execute_script("return Array.from(S.work)")


def test_a_new_object_keeps_object_1_of_a_new_video_in_the_menu(browser, served) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    box_on_frame_0(browser, served[0])
    assert options(browser) == ["1: object 1"]
    browser.find_element(By.ID, "newname").send_keys("pedestrian")
    browser.find_element(By.ID, "newobject").click()
    assert options(browser) == ["1: object 1", "2: pedestrian"]
    assert browser.execute_script("return object()") == 2


def test_a_box_and_its_clicks_belong_to_the_object_it_was_drawn_for(browser, served) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    boxed = box_on_frame_0(browser, served[0])
    assert np.count_nonzero(np.array(boxed) == 1) > 10000
    browser.find_element(By.ID, "newname").send_keys("wheel")
    browser.find_element(By.ID, "newobject").click()
    # the box ended with the change of object: a right click inside it takes nothing from the swan
    click_on(browser, 330, 220, right=True)
    assert browser.execute_script("return [S.box, S.boxClicks.length]") == [None, 0]
    assert browser.execute_script("return Array.from(S.work)") == boxed
    assert list(browser.execute_script("return S.boxed")) == ["1"]


def test_a_box_dragged_off_the_frame_is_clipped_to_it(browser, served) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.get(served[0])
    wait_for(browser, "return document.body.dataset.ready === '1'")
    browser.find_element(By.CSS_SELECTOR, "input[value='box']").click()
    drag(browser, (700, 300), (900, 520))  # past the right and bottom edges of the 854×480 frame
    wait_for(browser, "return S.box !== null")
    assert browser.execute_script("return S.box") == [700, 300, 853, 479]


def test_each_object_is_booked_by_the_tools_it_took(browser, served) -> None:  # noqa: F811
    """The swan boxed, a new object drawn as a polygon beside it: the swan is still booked as its box (the
    whole frame counted as drawn freehand once any object was, and the box was booked as an 80 s mask)."""
    import json
    import time

    from selenium.webdriver.common.by import By

    address, state = served
    box_on_frame_0(browser, address)
    browser.find_element(By.ID, "newname").send_keys("bush")
    browser.find_element(By.ID, "newobject").click()
    browser.find_element(By.CSS_SELECTOR, "input[value='polygon']").click()
    for x, y in ((50, 400), (150, 400), (150, 460)):
        click_on(browser, x, y)
    browser.execute_script("closePolygon('replace')")
    browser.find_element(By.ID, "submit").click()
    saved = state / VIDEO / "state.json"
    deadline = time.monotonic() + 120
    while not (saved.is_file() and json.loads(saved.read_text(encoding="utf-8"))["annotations"]):
        assert time.monotonic() < deadline, "the submit was not saved"
        time.sleep(0.2)
    annotations = json.loads(saved.read_text(encoding="utf-8"))["annotations"]
    assert [(a["object"], a["kind"]) for a in annotations] == [(1, "box"), (2, "mask")]
