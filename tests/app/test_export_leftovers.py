"""An export killed before its store's ``run.json`` leaves ``store-001/`` with only ``.lock``: the next export
clears that folder and uses it again instead of making ``store-002``."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from starlette.testclient import TestClient

from app.test_api import first_mask
from frugalseg.app import SessionService


def test_an_empty_store_a_killed_export_left_is_used_again(
    client: TestClient, service: SessionService, davis: Path, tmp_path: Path
) -> None:
    first_mask(client, davis)
    service.wait()
    exports = tmp_path / "exports"
    (exports / "store-001").mkdir(parents=True)
    (exports / "store-001" / ".lock").touch()
    (exports / "store-001" / ".manifest.jsonl.1234.tmp").write_text(
        "{", encoding="utf-8"
    )  # a temporary file cut short
    (exports / "store-001-tools").mkdir()
    (exports / "store-001-tools" / "coco.json").write_text("{", encoding="utf-8")
    exported = client.post("/api/export")
    assert exported.status_code == 200, exported.text
    assert exported.json()["store"] == str(exports / "store-001")
    assert exported.json()["written"] == 10
    assert sorted(p.name for p in exports.iterdir()) == ["store-001", "store-001-tools"]
    assert (exports / "store-001" / "run.json").is_file()
    assert not list((exports / "store-001").glob(".*.tmp"))
    assert (
        len(json.loads((exports / "store-001-tools" / "coco.json").read_text(encoding="utf-8"))["images"])
        == 10
    )


def test_a_store_in_use_or_holding_files_is_not_taken(
    client: TestClient, service: SessionService, davis: Path, tmp_path: Path
) -> None:
    first_mask(client, davis)
    service.wait()
    exports = tmp_path / "exports"
    (exports / "store-001").mkdir(parents=True)
    (exports / "store-001" / "mine.png").write_bytes(b"not a store's")  # someone's file, no run.json
    assert client.post("/api/export").json()["store"] == str(exports / "store-002")
    assert (exports / "store-001" / "mine.png").read_bytes() == b"not a store's"
    # an empty store whose lock another process holds: a run is starting in it
    (exports / "store-003").mkdir()
    fd = os.open(exports / "store-003" / ".lock", os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert client.post("/api/export").json()["store"] == str(exports / "store-004")
    finally:
        os.close(fd)
