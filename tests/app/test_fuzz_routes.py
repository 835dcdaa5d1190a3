"""Every JSON route of the page and of the Label Studio ML backend, given hostile JSON, answers a 2xx or a 4xx
with a JSON ``{"error": message}``: never a 500 (issue 46, *Fuzz the servers*).

The bodies are raw JSON text (the test client refuses NaN): numbers at and beyond the limits (NaN, ±Infinity,
1e400, 2^63, 400-digit ints), strings with control characters and markup, nested and oversized shapes, each
either as the whole body or in place of one field of a request the route takes. Examples are few and
derandomized, so a failure reproduces in CI; valid masks (which queue propagations) are rare by construction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from frugalseg.app import SessionService
from frugalseg.app.ml_backend import create_ml_backend

VIDEO = "blackswan"
CONFIG = (
    '<View><Image name="image" value="$image"/>'
    '<BrushLabels name="tag" toName="image"><Label value="swan"/></BrushLabels>'
    '<KeyPointLabels name="kp" toName="image" smart="true"><Label value="swan"/></KeyPointLabels></View>'
)
_FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.large_base_example,
        HealthCheck.data_too_large,
    ],
)


class Raw(str):
    """JSON text written as it is (NaN, Infinity, 1e400: numbers `json.dumps` will not write)."""


def dump(value: Any) -> str:
    """``value`` as JSON text, `Raw` parts verbatim."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


#: Numbers at and beyond what int64, float and the routes' limits hold.
NUMBERS = st.one_of(
    st.sampled_from(
        [Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e400"), Raw("-1e400"), Raw("1e-400"), Raw("-0")]
    ),
    st.sampled_from([2**63, 2**63 - 1, -(2**63), 2**64, 10**20, 10**30, 255, 256, 254, -1, 0, 1, 4300]),
    st.integers(min_value=10**399, max_value=10**400 - 1).map(lambda v: Raw(str(v))),  # 400 digits
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-1000, 1000),
)
#: Strings with control characters, markup, lone surrogates and digits.
STRINGS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "\x00",
            "car\x00x\x0bname",
            "<script>alert(1)</script>",
            "</View><Image name='x'/>",
            "\u202e\ufeff",
            "1",
            "²",  # a digit to str.isdigit, not to int()
            "١",  # an Arabic-Indic one, which int() reads
            "1" * 5000,  # beyond int()'s 4300 digits
            "3.1700000000",
            "frugalseg-1",
            "frugalseg-99999999999999999999",
            "../../etc/passwd",
            "x" * 5000,
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cs", "Co"]), max_size=8).map(
        lambda s: Raw(json.dumps(s))  # lone surrogates go as \ud800 escapes
    ),
)
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, STRINGS)
#: Any JSON value, nested a few levels, lists up to a few hundred items.
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(STRINGS, inner, max_size=6),
        st.lists(st.integers(-(2**64), 2**64), min_size=100, max_size=400),
    ),
    max_leaves=30,
)
DEEP = st.integers(10, 100_000).map(lambda depth: Raw("[" * depth + "]" * depth))


def bodies(template: dict[str, Any]) -> st.SearchStrategy[str]:
    """JSON texts for a route taking ``template``: any value, a deep nest, or it with a field replaced."""

    def replaced(field: str, value: Any) -> str:
        return dump({**template, field: value})

    fields = st.sampled_from(sorted(template))
    return st.one_of(
        VALUES.map(dump),
        DEEP.map(dump),
        st.tuples(fields, VALUES).map(lambda pair: replaced(*pair)),
        st.tuples(fields, st.lists(VALUES, min_size=1, max_size=4)).map(lambda pair: replaced(*pair)),
    )


def assert_answered(response: Any) -> None:
    """A 2xx, or a 4xx whose JSON body is ``{"error": message}``."""
    assert response.status_code < 500, response.text[:300]
    if response.status_code >= 400:
        assert isinstance(response.json().get("error"), str), response.text[:300]


CLICK = {"object": 1, "x": 420, "y": 230, "positive": True}
PAGE_ROUTES = {
    "preview": {"clicks": [CLICK], "base": [0, 480 * 854]},
    "box": {"box": [300, 150, 500, 350], "clicks": [CLICK]},
    "scissors": {"points": [[10, 10], [100, 10], [100, 100]], "closed": True},
    "superpixels": {"points": [[10, 10], [100, 100]]},
    "submit": {"clicks": [{**CLICK, "object": Raw("1e400")}], "names": {"1": "swan"}, "new_objects": False},
}


@pytest.mark.parametrize("route", sorted(PAGE_ROUTES))
def test_the_pages_post_routes_answer_hostile_json_with_a_4xx(
    client: TestClient, service: SessionService, route: str
) -> None:
    @_FUZZ
    @given(body=bodies(PAGE_ROUTES[route]), frame=st.sampled_from([0, 3]))
    def fuzz(body: str, frame: int) -> None:
        response = client.post(
            f"/api/videos/{VIDEO}/{frame}/{route}", content=body, headers={"content-type": "application/json"}
        )
        assert_answered(response)

    fuzz()
    service.wait()


def test_the_pages_get_routes_answer_any_names_and_numbers(client: TestClient) -> None:
    @_FUZZ
    @given(
        video=st.one_of(st.just(VIDEO), STRINGS.map(str).filter(bool)),
        frame=st.one_of(st.sampled_from([0, 9, 10, 2**63, 10**400]), st.integers(0, 10**20)),
        tail=st.sampled_from(["", "/mask", "/thumb.jpg", "/image.jpg"]),
        query=STRINGS.map(str),
    )
    def fuzz(video: str, frame: int, tail: str, query: str) -> None:
        path = f"/api/videos/{quote(video, safe='')}"
        if tail:
            path += f"/{frame}{tail}"
        assert_answered(client.get(path))
        assert_answered(client.get(f"/api/proposal?video={quote(query, safe='')}"))

    fuzz()
    for path in ("/api/session", "/api/jobs", "/"):
        assert_answered(client.get(path))


def test_the_pages_upload_and_export_answer_any_body(client: TestClient) -> None:
    @settings(_FUZZ, max_examples=25)
    @given(body=st.one_of(st.binary(max_size=64), st.just(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + b"\xff" * 16)))
    def fuzz(body: bytes) -> None:
        assert_answered(client.post(f"/api/videos/{VIDEO}/0/upload", content=body))

    fuzz()
    for body in (b"", b"NaN", b"[" * 10_000):
        assert_answered(client.post("/api/export", content=body))


@pytest.fixture
def backend(service: SessionService) -> Iterator[TestClient]:
    with TestClient(create_ml_backend(service), raise_server_exceptions=False) as client:
        assert client.post("/setup", json={"project": "3.1700000000", "schema": CONFIG}).status_code == 200
        yield client
        service.wait()  # a webhook's keypoints may be valid: its propagation ends before the session closes


def ls_task(frame: int = 3) -> dict[str, Any]:
    return {"id": 103, "data": {"image": f"/data/local-files/?d=JPEGImages/480p/{VIDEO}/{frame:05d}.jpg"}}


BRUSH = {
    "id": "frugalseg-1", "type": "brushlabels", "from_name": "tag", "to_name": "image",
    "original_width": 854, "original_height": 480, "image_rotation": 0,
    "value": {"format": "rle", "rle": [0, 1, 2], "brushlabels": ["swan"]},
}  # fmt: skip
POLYGON = {
    "id": "p1", "type": "polygonlabels", "from_name": "tag", "to_name": "image",
    "original_width": 854, "original_height": 480,
    "value": {"points": [[10, 10], [50, 10], [50, 50]], "polygonlabels": ["swan"]},
}  # fmt: skip
KEYPOINT = {
    "id": "k1", "type": "keypointlabels", "from_name": "kp", "to_name": "image",
    "original_width": 854, "original_height": 480, "meta": {"instance_id": 1},
    "value": {"x": 50, "y": 50, "width": 1, "keypointlabels": ["swan"]},
}  # fmt: skip
RECTANGLE = {
    "id": "r1", "type": "rectanglelabels", "from_name": "kp", "to_name": "image",
    "original_width": 854, "original_height": 480,
    "value": {"x": 10, "y": 10, "width": 30, "height": 30, "rectanglelabels": ["swan"]},
}  # fmt: skip


def results() -> st.SearchStrategy[Any]:
    """A Label Studio result of each kind with one field (or one field of its value) replaced."""

    def field(result: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        top = st.tuples(st.sampled_from(sorted(result)), VALUES).map(lambda p: {**result, p[0]: p[1]})
        inner = st.tuples(st.sampled_from(sorted(result["value"])), VALUES).map(
            lambda p: {**result, "value": {**result["value"], p[0]: p[1]}}
        )
        return st.one_of(top, inner)

    return st.one_of(*(field(r) for r in (BRUSH, POLYGON, KEYPOINT, RECTANGLE)), VALUES)


def test_the_ml_backends_setup_and_predict_answer_hostile_json(backend: TestClient) -> None:
    predict = {"tasks": [ls_task()], "label_config": CONFIG, "project": "3.1700000000", "params": {}}

    @_FUZZ
    @given(
        setup=bodies({"project": "3.1700000000", "schema": CONFIG}),
        body=st.one_of(
            bodies(predict),
            st.tuples(st.lists(results(), min_size=1, max_size=3), st.sampled_from([KEYPOINT, RECTANGLE]))
            .map(lambda p: [*p[0], p[1]])
            .map(lambda found: dump({**predict, "params": {"context": {"result": found}}})),
        ),
    )
    def fuzz(setup: str, body: str) -> None:
        assert_answered(backend.post("/setup", content=setup))
        assert_answered(backend.post("/predict", content=body))

    fuzz()


def test_the_ml_backends_webhook_answers_hostile_json(backend: TestClient) -> None:
    event = {"action": "ANNOTATION_CREATED", "project": {"id": 3}, "task": ls_task()}
    event["annotation"] = {"result": []}

    @settings(_FUZZ, max_examples=50)
    @given(
        body=st.one_of(
            bodies(event),
            st.lists(results(), min_size=1, max_size=3).map(
                lambda found: dump({**event, "annotation": {"id": 9, "result": found}})
            ),
        )
    )
    def fuzz(body: str) -> None:
        assert_answered(backend.post("/webhook", content=body))

    fuzz()


@pytest.mark.parametrize(
    "body",
    [
        {"clicks": [CLICK], "names": {"²": "swan"}},
        {"mask": [0, 480 * 854], "boxes": {"²": {"box": [1, 1, 5, 5]}}},
        {"clicks": [CLICK], "names": {"1" * 5000: "swan"}},
    ],
)
def test_an_object_id_in_other_digits_is_a_400_naming_it_cut(client: TestClient, body: dict[str, Any]):
    """A digit to `str.isdigit` ("²") but not to `int`, or 5000 digits, past what `int` reads (were 500s)."""
    response = client.post(f"/api/videos/{VIDEO}/0/submit", json=body)
    assert response.status_code == 400, response.text
    assert "is not an object id 1…254" in response.json()["error"] and len(response.json()["error"]) < 300


@pytest.mark.parametrize("path", ["/api/videos/a/b/c/d/e", "/nowhere", "/api/videos/%3Cscript%3E%2F"])
def test_no_such_route_is_a_json_404_on_both_servers(client: TestClient, backend: TestClient, path: str):
    """Starlette's own 404 and 405 were plain text; both apps answer every error as ``{"error": …}``."""
    for server in (client, backend):
        response = server.get(path)
        assert response.status_code == 404 and isinstance(response.json()["error"], str)
    wrong_method = client.get(f"/api/videos/{VIDEO}/0/submit")
    assert wrong_method.status_code == 405 and "Method Not Allowed" in wrong_method.json()["error"]
    assert backend.get("/webhook").status_code == 405 and "error" in backend.get("/webhook").json()
