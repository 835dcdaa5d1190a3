"""autolabel's registry of propagation engines: each built by name from its options class."""

from __future__ import annotations

import pytest

from frugalseg.autolabel.engines import PROPAGATORS, get_propagator
from frugalseg.autolabel.flow_options import FlowOptions
from frugalseg.autolabel.flow_propagate import FlowPropagator
from frugalseg.autolabel.sam2_loading import SAM2Options
from frugalseg.autolabel.sam2_propagate import SAM2PropagationOptions, SAM2Propagator
from frugalseg.errors import ConfigError


def test_every_engine_has_its_options_class_and_says_whether_it_loads_weights() -> None:
    assert {name: engine.Options for name, engine in PROPAGATORS.items()} == {
        "flow": FlowOptions,
        "sam2": SAM2PropagationOptions,
    }
    assert [engine.loads_weights for engine in PROPAGATORS.values()] == [False, True]
    assert all(engine.name == name for name, engine in PROPAGATORS.items())


def test_an_engine_is_built_from_its_options_by_flat_name() -> None:
    flow = get_propagator("flow", preset="fast", occlusion="ignore", snap_band=5)
    assert isinstance(flow, FlowPropagator)
    assert flow.options == FlowOptions.from_flat(preset="fast", occlusion="ignore", snap_band=5)
    assert isinstance(get_propagator(), FlowPropagator) and get_propagator().options == FlowOptions()
    sam2 = get_propagator("sam2", device="cpu", image_size=64, random_weights=True, stuff="class")
    assert isinstance(sam2, SAM2Propagator)
    assert sam2.options == SAM2Options(device="cpu", image_size=64, random_weights=True)
    assert (sam2.stuff, sam2.offload_state_to_cpu) == ("class", False)


def test_an_unknown_engine_or_option_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="engine: unknown propagation engine 'stm'; choose from flow, sam2"):
        get_propagator("stm")
    with pytest.raises(
        ConfigError, match="engine: the sam2 propagation engine takes config, checkpoint, .*got preset"
    ):
        get_propagator("sam2", preset="fast")
    with pytest.raises(ConfigError, match="sam2_checkpoint: the sam2 engine needs a SAM 2 checkpoint file"):
        get_propagator("sam2")
