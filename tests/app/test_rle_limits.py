"""Run-length codes with numbers past int64 get a 400 that names the field, never a 500."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from frugalseg.app.server import RequestError, decode_rle

PIXELS = 480 * 854
CLICK = {"object": 1, "x": 10, "y": 10, "positive": True}
HUGE = {
    "a count of 10^20": [0, 10**20],
    "a count of 2^63": [0, 2**63],
    "a value of 2^63": [2**63, PIXELS],
    "a value of -10^20": [-(10**20), PIXELS],
    "counts whose sum wraps int64": [0, 2**63 - 1, 0, 2**63 - 1],  # today: "runs cover -2 pixels"
    "a count of 400 digits": [0, int("9" * 400)],
}


@pytest.mark.parametrize("runs", HUGE.values(), ids=HUGE.keys())
def test_decode_rle_checks_the_range_before_numpy(runs: list[int]) -> None:
    with pytest.raises(RequestError) as caught:
        decode_rle(runs, (480, 854), "base")
    assert caught.value.status == 400
    assert caught.value.message.startswith("base: ")
    assert len(caught.value.message) < 120  # a 400-digit number is not quoted back whole


@pytest.mark.parametrize("runs", HUGE.values(), ids=HUGE.keys())
def test_submit_and_preview_refuse_huge_runs(client: TestClient, runs: list[int]) -> None:
    submitted = client.post("/api/videos/blackswan/0/submit", json={"mask": runs})
    previewed = client.post("/api/videos/blackswan/0/preview", json={"clicks": [CLICK], "base": runs})
    assert (submitted.status_code, previewed.status_code) == (400, 400), (submitted.text, previewed.text)
    assert submitted.json()["error"].startswith("mask: ")
    assert previewed.json()["error"].startswith("base: ")


def test_a_number_too_long_for_python_is_bad_json(client: TestClient) -> None:
    body = '{"mask": [0, ' + "9" * 5000 + "]}"
    headers = {"Content-Type": "application/json"}
    sent = client.post("/api/videos/blackswan/0/submit", content=body, headers=headers)
    assert sent.status_code == 400 and sent.json()["error"].startswith("not valid JSON"), sent.text
