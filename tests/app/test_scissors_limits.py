"""`/scissors` bounds its work before it starts: 500 anchor points far apart get a 400, not 132 s."""

from __future__ import annotations

import numpy as np
from starlette.testclient import TestClient

from frugalseg.app.server import MAX_ANCHORS


def test_500_anchors_far_apart_are_refused(client: TestClient) -> None:
    rng = np.random.default_rng(0)
    points = np.stack([rng.integers(0, 854, MAX_ANCHORS), rng.integers(0, 480, MAX_ANCHORS)], 1).tolist()
    for closed in (False, True):
        answer = client.post("/api/videos/blackswan/0/scissors", json={"points": points, "closed": closed})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"].startswith(f"scissors: the paths through these {MAX_ANCHORS} anchor")
