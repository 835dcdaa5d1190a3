"""FlowCache: a flow computed equals the flow read back (the engine's, to float16), its key follows the
pixels and the settings, and a damaged file is computed again."""

from __future__ import annotations

import numpy as np

from frugalseg.flow import DISFlow, FlowCache


def _pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    first = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    return first, np.roll(first, 3, axis=1)


def test_a_flow_is_the_same_computed_or_read_the_engines_to_float16(tmp_path):
    """The first call returns what later calls read (a cold run is the same as a warm one)."""
    first, second = _pair()
    cache = FlowCache(DISFlow("medium"), tmp_path / "flows")
    fresh = DISFlow("medium")(first, second)
    computed = cache(first, second)
    assert computed.dtype == np.float32
    np.testing.assert_array_equal(computed, fresh.astype(np.float16).astype(np.float32))
    again = cache(first, second)
    assert cache.computed == 1 and again.dtype == np.float32
    np.testing.assert_array_equal(again, computed)
    assert cache.path(first, second).is_file()


def test_the_cache_key_follows_pixels_and_settings(tmp_path):
    first, second = _pair()
    medium = FlowCache(DISFlow("medium"), tmp_path)
    assert medium.key(first, second) == FlowCache(DISFlow("medium"), tmp_path).key(first.copy(), second)
    assert medium.key(first, second) != medium.key(second, first)
    assert medium.key(first, second) != FlowCache(DISFlow("fast"), tmp_path).key(first, second)
    changed = first.copy()
    changed[0, 0, 0] ^= 1  # one bit of one pixel
    assert medium.key(first, second) != medium.key(changed, second)


def test_a_damaged_cached_flow_is_computed_again(tmp_path):
    first, second = _pair()
    cache = FlowCache(DISFlow("medium"), tmp_path)
    cache(first, second)
    cache.path(first, second).write_bytes(b"not a flow")
    fresh = DISFlow("medium")(first, second).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(cache(first, second), fresh)
    assert cache.computed == 2
