"""The annotation page as a person with frames only uses it, in headless Chromium on a laptop-sized window.

Two clips of blackswan's first 20 frames (linked), no ground truth: opening a frame from the filmstrip
scrolls the filmstrip alone, never the page; unsubmitted work is never dropped without a word (a
confirm before another frame or video, the browser's own question before a reload or a closed tab),
and an object declared with "New object" belongs to its video alone. On a tiny clip of the fake moving
squares: "Rename" names the chosen object with the next submit of a frame that holds it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from data.fake_davis import palette_png, squares

from app.conftest import serve
from app.test_browser import THUMBS_SHOWN, browser, click_on, wait_for  # noqa: F401 (the fixture)
from app.test_page_layout import serve_blackswan
from app.test_page_upload import VIDEO as CLIP
from app.test_page_upload import choose, submitted, tiny, upload  # noqa: F401 (the fixture)
from app.test_page_upload import options as page_options
from app.test_page_upload import status as page_status

pytestmark = pytest.mark.slow
VIDEOS = ["clip-a", "clip-b"]


@pytest.fixture
def two_clips(tmp_path: Path, shared_data: Path) -> Iterator[str]:
    """The page on two clips (`serve_blackswan`); its address."""
    yield from serve_blackswan(tmp_path, shared_data, VIDEOS)


def opened(driver, address: str) -> None:
    """The page at ``address`` on a laptop's window (1366×768), ready, scrolled to its top."""
    driver.set_window_size(1366, 768)
    driver.get(address)
    wait_for(driver, "return document.body.dataset.ready === '1'")
    wait_for(driver, THUMBS_SHOWN)  # the filmstrip's height is its thumbnails'
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


def frame(driver) -> str:
    return driver.execute_script("return document.body.dataset.frame")


def options(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.getElementById('object').options).map((o) => o.text)"
    )


def dialog(driver) -> str:
    """The text of the dialog the page opened (waited for)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 10).until(expected_conditions.alert_is_present()).text


#: Whether the page asks the browser to ask before it leaves (a reload, a closed tab): the page's own
#: ``beforeunload`` handlers answer a ``beforeunload`` event (headless Chromium shows no such question).
ASKS_TO_LEAVE = (
    "const e = new Event('beforeunload', { cancelable: true }); window.dispatchEvent(e);"
    "return e.defaultPrevented"
)


def test_unsubmitted_work_is_not_dropped_silently(browser, two_clips: str) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    opened(browser, two_clips)
    first = frame(browser)
    video, at = first.split("/")
    other = "3" if at != "3" else "4"
    thumb = f".thumb[data-frame='{other}']"
    # nothing drawn: another frame opens at once, and a reload is not held back
    assert browser.execute_script(ASKS_TO_LEAVE) is False
    browser.find_element(By.CSS_SELECTOR, thumb).click()
    wait_for(browser, f"return document.body.dataset.frame === '{video}/{other}'")
    browser.find_element(By.CSS_SELECTOR, f".thumb[data-frame='{at}']").click()
    wait_for(browser, f"return document.body.dataset.frame === '{first}'")
    # a brush stroke, then another frame: the page asks; "Cancel" keeps the frame and its stroke
    browser.find_element(By.CSS_SELECTOR, "input[value='brush']").click()
    click_on(browser, 100, 400)
    drawn = "return Array.from(S.work).filter((v) => v === 1).length"
    stroke = browser.execute_script(drawn)
    assert stroke > 0
    browser.find_element(By.CSS_SELECTOR, thumb).click()
    assert dialog(browser) == f"Discard the unsubmitted edit of {video} frame {at}?"
    browser.switch_to.alert.dismiss()
    assert frame(browser) == first and browser.execute_script(drawn) == stroke
    # the same for another video and for the proposal's Open
    browser.find_element(By.CSS_SELECTOR, f"tr.video[data-video='{VIDEOS[1]}']").click()
    dialog(browser)
    browser.switch_to.alert.dismiss()
    browser.find_element(By.ID, "openproposal").click()
    dialog(browser)
    browser.switch_to.alert.dismiss()
    assert frame(browser) == first and browser.execute_script(drawn) == stroke
    # a reload: the browser asks before it leaves
    assert browser.execute_script(ASKS_TO_LEAVE) is True
    # "OK" discards the stroke and opens the frame
    browser.find_element(By.CSS_SELECTOR, thumb).click()
    dialog(browser)
    browser.switch_to.alert.accept()
    wait_for(browser, f"return document.body.dataset.frame === '{video}/{other}'")
    assert browser.execute_script("return S.edited") is False
    assert browser.execute_script(ASKS_TO_LEAVE) is False

    # an object declared on one video is that video's alone, and kept when another video opens
    assert options(browser) == ["1: object 1"]
    browser.find_element(By.ID, "newname").send_keys("bicycle")
    browser.find_element(By.ID, "newobject").click()
    assert options(browser) == ["1: bicycle"]
    there = VIDEOS[1] if video == VIDEOS[0] else VIDEOS[0]
    # nothing drawn: another video opens without a question
    browser.find_element(By.CSS_SELECTOR, f"tr.video[data-video='{there}']").click()
    wait_for(browser, f"return document.body.dataset.frame.startsWith('{there}/')")
    assert options(browser) == ["1: object 1"]
    browser.find_element(By.CSS_SELECTOR, f"tr.video[data-video='{video}']").click()
    wait_for(browser, f"return document.body.dataset.frame.startsWith('{video}/')")
    assert options(browser) == ["1: bicycle"]
    # a declared object is unsubmitted work too (a reload would lose it), on whichever video is open
    assert browser.execute_script(ASKS_TO_LEAVE) is True
    browser.find_element(By.CSS_SELECTOR, f"tr.video[data-video='{there}']").click()
    wait_for(browser, f"return document.body.dataset.frame.startsWith('{there}/')")
    assert browser.execute_script(ASKS_TO_LEAVE) is True


#: The page's submits, as sent: ``window.sent`` lists their bodies.
RECORD_SUBMITS = """
const fetched = window.fetch; window.sent = [];
window.fetch = (...args) => {
  if (String(args[0]).includes('/submit')) { window.sent.push(JSON.parse(args[1].body)); }
  return fetched(...args);
};"""


def test_an_object_is_renamed_with_the_next_submit_that_holds_it(
    browser,  # noqa: F811
    tiny: tuple[str, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    address, state = tiny
    palette_png(tmp_path / "first.png", squares(0, 0))
    browser.get(address)
    wait_for(browser, "return document.body.dataset.ready === '1'")
    wait_for(browser, f"return document.body.dataset.frame === '{CLIP}/0'")
    upload(browser, tmp_path / "first.png")
    submitted(browser, 1, state)
    browser.execute_script(RECORD_SUBMITS)
    # object 2 renamed "dog": the menu and the status line say when the name is saved
    choose(browser, 2)
    browser.find_element(By.ID, "newname").send_keys("dog")
    browser.find_element(By.ID, "rename").click()
    pending = "2: dog (was object 2; saved with your next submit of it)"
    assert page_options(browser) == ["1: object 1", pending]
    assert page_status(browser) == (
        'object 2 renamed "dog": the name is saved with your next submit of a frame that holds object 2'
    )
    # a submit of frame 3 without object 2 does not send the name (the server names only objects it holds)
    browser.find_element(By.CSS_SELECTOR, ".thumb[data-frame='3']").click()
    wait_for(browser, f"return document.body.dataset.frame === '{CLIP}/3'")
    browser.execute_script("S.work = S.work.map((v) => (v === 2 ? 0 : v)); S.edited = S.freehand = true;")
    saved = submitted(browser, 2, state)
    assert browser.execute_script("return window.sent.map((b) => b.names)") == [{}]
    assert "2" not in saved.get("names", {}) and page_options(browser) == ["1: object 1", pending]
    # the next submit that holds object 2 (frame 0's) sends it; the menu shows it saved
    browser.find_element(By.CSS_SELECTOR, ".thumb[data-frame='0']").click()
    wait_for(browser, f"return document.body.dataset.frame === '{CLIP}/0'")
    assert browser.execute_script("return S.work.includes(2)")
    saved = submitted(browser, 3, state)
    assert browser.execute_script("return window.sent.map((b) => b.names)") == [{}, {"2": "dog"}]
    assert saved["names"]["2"] == "dog"
    wait_for(browser, "return document.getElementById('object').options[1].text === '2: dog'")
    assert page_options(browser) == ["1: object 1", "2: dog"]


def _brushing(browser, address: str, said: str) -> str:  # noqa: F811
    """The page with the brush chosen, ``said`` in its help; the script that counts object 1's pixels."""
    from selenium.webdriver.common.by import By

    opened(browser, address)
    assert said in browser.find_element(By.TAG_NAME, "aside").text
    browser.find_element(By.CSS_SELECTOR, "input[value='brush']").click()
    return "return Array.from(S.work).filter((v) => v === 1).length"


def test_ctrl_z_undoes_as_the_undo_button_does(browser, two_clips: str) -> None:  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    drawn = _brushing(browser, two_clips, "Ctrl+Z (⌘Z): Undo.")
    click_on(browser, 100, 400)
    click_on(browser, 300, 400)
    strokes = [browser.execute_script(drawn)]
    # in the name field Ctrl+Z undoes the typing, never the frame's edit
    browser.find_element(By.ID, "newname").send_keys("dog")
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
    assert browser.execute_script(drawn) == strokes[0]
    browser.find_element(By.CSS_SELECTOR, "input[value='brush']").click()  # the focus off the field
    for modifier in (Keys.CONTROL, Keys.COMMAND):  # Ctrl+Z, then ⌘Z, each one step back
        ActionChains(browser).key_down(modifier).send_keys("z").key_up(modifier).perform()
        strokes.append(browser.execute_script(drawn))
    assert strokes[0] > strokes[1] > strokes[2] == 0
    assert browser.execute_script("return S.edited") is False


def test_redo_puts_back_what_undo_took(browser, two_clips: str) -> None:  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    drawn = _brushing(browser, two_clips, "Ctrl+Shift+Z (⇧⌘Z) or Ctrl+Y: Redo.")
    click_on(browser, 100, 400)
    one = browser.execute_script(drawn)
    click_on(browser, 300, 400)
    two = browser.execute_script(drawn)
    assert 0 < one < two
    browser.find_element(By.ID, "undo").click()
    browser.find_element(By.ID, "undo").click()
    assert browser.execute_script(drawn) == 0
    browser.find_element(By.ID, "redo").click()
    assert browser.execute_script(drawn) == one
    ActionChains(browser).key_down(Keys.CONTROL).key_down(Keys.SHIFT).send_keys("z").key_up(
        Keys.SHIFT
    ).key_up(Keys.CONTROL).perform()
    assert browser.execute_script(drawn) == two
    assert browser.execute_script("return S.edited") is True
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("y").key_up(Keys.CONTROL).perform()  # nothing left
    assert browser.execute_script(drawn) == two
    # Undo, then a new stroke: what was undone is gone for good
    browser.find_element(By.ID, "undo").click()
    click_on(browser, 500, 400)
    third = browser.execute_script(drawn)
    browser.find_element(By.ID, "redo").click()
    assert browser.execute_script(drawn) == third
    browser.find_element(By.ID, "undo").click()
    assert browser.execute_script(drawn) == one


def test_a_stopped_server_is_named(browser, tmp_path: Path, shared_data: Path) -> None:  # noqa: F811
    from urllib.parse import urlsplit

    from selenium.webdriver.common.by import By

    frames = shared_data / "davis_dev" / "JPEGImages" / "480p" / "blackswan"
    folder = tmp_path / "root" / "JPEGImages" / "480p" / "clip"
    folder.mkdir(parents=True)
    for t in range(3):
        (folder / f"{t:05d}.jpg").symlink_to(frames / f"{t:05d}.jpg")
    server, address = serve(tmp_path / "state", tmp_path / "root", "--max-frames", "3")
    try:
        browser.get(address)
        wait_for(browser, "return document.body.dataset.ready === '1'")
    finally:
        server.terminate()
        server.wait(30)
    browser.find_element(By.ID, "export").click()
    wait_for(browser, "return document.getElementById('status').textContent !== ''")
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(address))
    assert browser.find_element(By.ID, "status").text == (
        f"the server at {origin} does not answer (is `frugalseg annotate serve` still running?)"
    )


def frame_0_of_clip_a(driver, address: str, shared_data: Path) -> Path:
    """The page opened on frame 0 of clip-a (blackswan's); the true mask of that frame, to upload."""
    opened(driver, address)
    driver.execute_async_script("openVideo('clip-a', 0).then(arguments[arguments.length - 1])")
    return shared_data / "davis_dev" / "Annotations" / "480p" / "blackswan" / "00000.png"


def test_a_click_that_takes_pixels_from_another_object_says_so(
    browser,  # noqa: F811
    two_clips: str,
    shared_data: Path,
) -> None:
    from selenium.webdriver.common.by import By

    truth = frame_0_of_clip_a(browser, two_clips, shared_data)
    # the swan drawn as object 1 (the upload), then a click for a new object 2 on the swan's middle
    for name in ("swan", "head"):
        browser.find_element(By.ID, "newname").send_keys(name)
        browser.find_element(By.ID, "newobject").click()
        if name == "swan":
            browser.find_element(By.ID, "upload").send_keys(str(truth))
            wait_for(browser, "return document.getElementById('upload').value === ''")
    assert browser.execute_script("return [object(), S.work.includes(1)]") == [2, True]
    # the upload is an edit not submitted, whichever object is chosen now (it had said nothing of it)
    assert (
        browser.find_element(By.ID, "frameinfo").text == "clip-a frame 0 (00000.jpg): edited, not submitted"
    )
    before = browser.execute_script("return Array.from(S.work)")
    click_on(browser, 272, 319)
    wait_for(browser, "return document.getElementById('frameinfo').dataset.preview === '1'")
    after = browser.execute_script("return Array.from(S.work)")
    taken = sum(1 for b, a in zip(before, after, strict=True) if b == 1 and a == 2)
    added = sum(1 for b, a in zip(before, after, strict=True) if b != 2 and a == 2)
    assert taken > 0
    info = browser.find_element(By.ID, "frameinfo").text
    assert info.startswith("clip-a frame 0 (00000.jpg): preview of 1 click(s) in ")
    assert info.endswith(f" ms: +{added} / −0 px, {taken} px taken from object 1")
    assert browser.find_element(By.ID, "status").text == (
        'the click was on object 1 "swan" and went to object 2 "head", the chosen object: '
        'if it was meant for object 1 "swan", Undo and choose that object in the menu'
    )
    browser.execute_script("S.edited = false; S.clicks = []")  # the edit let go, as a confirm would
    browser.execute_async_script("openFrame(1).then(arguments[arguments.length - 1])")
    assert browser.find_element(By.ID, "status").text == ""  # it spoke of the frame left


def test_a_new_object_after_an_upload_on_a_video_of_no_object_gets_the_next_id(
    browser,  # noqa: F811
    two_clips: str,
    shared_data: Path,
) -> None:
    """The upload is object 1 (the chosen one); "New object" then is object 2, not a second object 1."""
    from selenium.webdriver.common.by import By

    truth = frame_0_of_clip_a(browser, two_clips, shared_data)
    browser.find_element(By.ID, "upload").send_keys(str(truth))
    wait_for(browser, "return document.getElementById('upload').value === ''")
    assert browser.execute_script("return S.work.includes(1)")
    browser.find_element(By.ID, "newname").send_keys("dog")
    browser.find_element(By.ID, "newobject").click()
    assert browser.execute_script("return [object(), S.added[2]]") == [2, "dog"]


def test_choosing_a_tool_before_a_frame_is_open_raises_no_error(browser, two_clips: str) -> None:  # noqa: F811
    """A tool picked, or a key pressed, while the first frame loads drew the overlay of no frame:
    ``Cannot read properties of null (reading 'length')`` in `draw`."""
    from selenium.webdriver.common.by import By

    opened(browser, two_clips)
    browser.get_log("browser")  # what the opening logged
    browser.execute_script("S.work = null")  # as before the first frame's mask has come
    for tool in ("box", "brush", "clicks"):
        browser.find_element(By.CSS_SELECTOR, f"input[value='{tool}']").click()
    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []


def test_a_submit_of_a_frame_annotate_add_changed_meanwhile_is_refused_and_the_page_reads_it(
    browser,  # noqa: F811
    two_clips: str,
    shared_data: Path,
    tmp_path: Path,
) -> None:
    """`annotate add` on the open frame while the person clicks: their submit is refused (412), it names
    where such an edit comes from, and the page's tables show the new annotation without a reload."""
    import subprocess
    import sys

    from selenium.webdriver.common.by import By

    truth = frame_0_of_clip_a(browser, two_clips, shared_data)
    row = "return document.querySelector(\"tr.video[data-video='clip-a']\").children[1].textContent"
    upload(browser, truth)
    browser.find_element(By.ID, "submit").click()
    wait_for(browser, "return document.getElementById('jobinfo').dataset.done === '1'")
    assert browser.execute_script(row) == "1/20"
    browser.execute_async_script("openFrame(5).then(arguments[arguments.length - 1])")
    click_on(browser, 272, 319)
    wait_for(browser, "return document.getElementById('frameinfo').dataset.preview === '1'")
    command = [sys.executable, "-m", "frugalseg", "annotate", "add", "--state", str(tmp_path / "state")]
    command += [
        "--video",
        "clip-a",
        "--frame",
        "5",
        "--mask",
        str(truth.with_name("00005.png")),
        "--object",
        "1",
    ]
    added = subprocess.run(command, capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    browser.find_element(By.ID, "submit").click()
    wait_for(browser, f"{row} === '2/20'")
    assert browser.find_element(By.ID, "status").text == (
        "frame 5 of clip-a was annotated elsewhere (another page, `annotate add`, Label Studio) since this "
        "page opened it: open it again to see that edit, then make yours"
    )
    assert browser.execute_script("return S.clicks.length") == 1  # the person's edit is still there
    running = "(j) => ['queued', 'propagating'].includes(j.status)"
    idle = f"return api('/api/jobs').then((r) => !r.jobs.some({running}))"
    wait_for(browser, idle)  # the server stops at once then
