"""The page's shape tools in a person's hands: answers land for the object and frame they were asked for,
in the order asked; a box that adds to an object is booked as drawn; a quick brush stroke has no gaps; a
new object can be undone; a rename's menu line goes once the submit saved it."""

from __future__ import annotations

import numpy as np
import pytest

from app.test_browser import browser, drag, served, wait_for  # noqa: F401 (the fixtures)
from app.test_page_jobs import DONE, VIDEO, box_on_frame_0
from app.test_page_usability import options

pytestmark = pytest.mark.slow
SETTLED = "return S.answers.size === 0"


def open_frame_0(driver, address: str, tool: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(address)
    wait_for(driver, "return document.body.dataset.ready === '1'")
    driver.execute_async_script(f"openVideo('{VIDEO}', 0).then(arguments[arguments.length - 1])")
    driver.find_element(By.CSS_SELECTOR, f"input[value='{tool}']").click()


def work(driver) -> np.ndarray:
    return np.array(driver.execute_script("return Array.from(S.work)"), np.uint8).reshape(480, 854)


def test_two_quick_superpixel_strokes_keep_both_and_go_to_the_object_they_were_made_for(
    browser,  # noqa: F811
    served,  # noqa: F811
) -> None:
    """The second stroke, made before the first one's answer came, had erased it; an object chosen while an
    answer was on its way took the stroke."""
    open_frame_0(browser, served[0], "superpixels")
    strokes = [[[150, 100], [170, 100]], [[650, 100], [670, 100]]]
    browser.execute_script(
        "for (const stroke of arguments[0]) { S.stroke = stroke; answering(paintSuperpixels('add')); }",
        strokes,
    )
    wait_for(browser, SETTLED)
    mask = work(browser)
    assert mask[100, 160] == 1 and mask[100, 660] == 1
    # a stroke for a new object 2, then object 1 chosen before its answer: the stroke is object 2's
    browser.execute_script(
        "$('newname').value = 'bush'; $('newobject').click(); S.stroke = [[400, 60], [420, 60]];"
        "answering(paintSuperpixels('add')); chooseObject(1);"
    )
    wait_for(browser, SETTLED)
    mask = work(browser)
    assert mask[60, 410] == 2 and browser.execute_script(
        "return [object(), 2 in S.freehand, 1 in S.freehand]"
    ) == [
        1,
        True,
        True,
    ]


def test_a_box_that_adds_is_booked_as_drawn_and_a_quick_second_box_keeps_the_first(
    browser,  # noqa: F811
    served,  # noqa: F811
) -> None:
    """A Shift-box had replaced the object's booked box (the exported box label held the last box alone),
    and a box drawn before the one before it was answered had dropped it."""
    boxed = np.array(box_on_frame_0(browser, served[0]), np.uint8).reshape(480, 854)
    assert browser.execute_script("return Object.keys(S.boxed)") == ["1"]
    browser.execute_script("S.drag = [600, 380, 700, 470]; S.dragMode = 'add'; boxUp()")
    wait_for(browser, f"return S.box !== null && S.box[0] === 600 && {SETTLED.removeprefix('return ')}")
    wait_for(browser, "return document.getElementById('frameinfo').dataset.box.startsWith('600,')")
    assert browser.execute_script("return [Object.keys(S.boxed), S.freehand[1]]") == [[], True]
    mask = work(browser)
    assert (mask[boxed == 1] == 1).mean() > 0.99  # the first box's mask kept beside the added one
    # two boxes in add mode, the second drawn at once: both answers are in the work
    browser.execute_script(
        "S.drag = [20, 20, 120, 120]; S.dragMode = 'add'; boxUp();"
        "S.drag = [720, 20, 840, 120]; S.dragMode = 'add';"
        "boxUp();"
    )
    wait_for(browser, "return S.box !== null && S.box[0] === 720 && S.answers.size === 0")
    wait_for(browser, "return document.getElementById('frameinfo').dataset.box.startsWith('720,')")
    both = work(browser)
    assert (both[20:121, 20:121] == 1).any() and (both[20:121, 720:841] == 1).any()


def test_a_quick_brush_stroke_leaves_no_gaps(browser, served) -> None:  # noqa: F811
    """Pointer events 20 px apart painted a disc at each (56 % of the line covered)."""
    open_frame_0(browser, served[0], "brush")
    browser.execute_script(
        "$('size').value = 5; const canvas = $('overlay'); const rect = canvas.getBoundingClientRect();"
        "const at = (x, y) => ({ clientX: rect.left + (x + 0.5) * rect.width / 854,"
        " clientY: rect.top + (y + 0.5) * rect.height / 480, bubbles: true });"
        "canvas.dispatchEvent(new MouseEvent('mousedown', { ...at(100, 100), button: 0 }));"
        "for (let x = 120; x <= 400; x += 20) {"
        " canvas.dispatchEvent(new MouseEvent('mousemove', at(x, 100))); }"
        "window.dispatchEvent(new MouseEvent('mouseup', at(400, 100)));"
    )
    mask = work(browser)
    assert (mask[96:105, 100:401] == 1).all()
    assert np.count_nonzero(mask) < 301 * 11 + 2 * 5 * 11  # the stroke, its round ends, nothing more


def test_a_new_object_is_undone(browser, served) -> None:  # noqa: F811
    box_on_frame_0(browser, served[0])
    browser.execute_script("$('newname').value = 'oops'; $('newobject').click()")
    assert options(browser) == ["1: object 1", "2: oops"]
    browser.execute_script("$('undo').click()")
    assert options(browser) == ["1: object 1"]
    assert browser.execute_script("return [object(), Object.keys(S.added), S.box !== null]") == [1, [], True]
    browser.execute_script("$('undo').click()")  # the box
    assert browser.execute_script("return unsubmitted()") is False  # a declared object was work to keep


def test_the_menu_says_a_rename_is_saved_as_soon_as_its_submit_is(browser, served) -> None:  # noqa: F811
    """It said "saved with your next submit" until the propagation the submit started had ended."""
    box_on_frame_0(browser, served[0])
    browser.execute_async_script("submit().then(arguments[arguments.length - 1])")
    wait_for(browser, DONE)
    wait_for(browser, "return S.known.includes(1)")
    browser.execute_script("$('newname').value = 'swan'; $('rename').click()")
    assert options(browser) == ["1: swan (was object 1; saved with your next submit of it)"]
    shown = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "submit().then(() => done(Array.from($('object').options).map((o) => o.text)))"
    )
    assert shown == ["1: swan"]
    assert browser.execute_script("return Object.keys(S.renamed)") == []
    wait_for(browser, "return $('object').options[0].text === '1: swan'")


def test_a_box_goes_to_the_object_chosen_when_it_was_let_go(browser, served) -> None:  # noqa: F811
    """Another object chosen while the box waited for an earlier answer had taken the box."""
    box_on_frame_0(browser, served[0])
    browser.execute_script(
        "$('newname').value = 'bush'; $('newobject').click();"
        "S.drag = [20, 20, 120, 120]; S.dragMode = 'add'; boxUp(); chooseObject(1);"
    )
    wait_for(browser, f"return S.box !== null && S.box[0] === 20 && {SETTLED.removeprefix('return ')}")
    mask = work(browser)
    assert (mask[20:121, 20:121] == 2).any() and not (mask[20:121, 20:121] == 1).any()
