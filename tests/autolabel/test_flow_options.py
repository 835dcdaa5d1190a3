"""`FlowOptions`: the flow engine's options by part, and the settings they record.

The settings below were written by the engine of flat arguments before `FlowOptions` (commit
e4c4439, ``FlowPropagator(**flat).settings``), with ``drop_dragged`` after ``motion_prior`` since issue
44 (stop 77): stores and loop states record them in ``run.json`` and compare them to resume, so they stay
key for key and in the same order.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from frugalseg.active.objects.engines import AnchorFusionEngine, get_loop_engine
from frugalseg.autolabel import FlowOptions, FlowPropagator
from frugalseg.autolabel.flow_options import (
    FlowChecks,
    FlowEstimator,
    FlowObjectCut,
    FlowOcclusion,
    FlowSnap,
    FlowSpeed,
)
from frugalseg.autolabel.sources import FlowLabels
from frugalseg.errors import ConfigError
from frugalseg.options import option_fields

DEFAULT = {
    "preset": "medium", "downscale": 1, "fb_alpha": 0.01, "fb_beta": 0.5, "photo_tol": 16.0,
    "occlusion": "label", "vote_size": 9, "vote_margin": 0.5, "direct": True, "chain_direct": True,
    "snap": True, "snap_band": 3, "snap_reach": 20, "snap_iterations": 2, "snap_max_classes": 4,
    "snap_downscale": 1, "object_cut": True, "object_cut_grow": 15, "object_cut_erode": 1,
    "object_cut_from": 2, "motion_prior": True, "drop_dragged": True,
}  # fmt: skip

#: (the flat arguments of the engine before (its ``workers``: ``flow_threads`` now), the same options by
#: part, the settings recorded before)
RECORDED = [
    ({}, FlowOptions(), DEFAULT),
    (
        {"occlusion": "ignore", "preset": "fast"},
        FlowOptions(estimator=FlowEstimator(preset="fast"), occlusion=FlowOcclusion(mode="ignore")),
        {"preset": "fast", "downscale": 1, "fb_alpha": 0.01, "fb_beta": 0.5, "photo_tol": 16.0,
         "occlusion": "ignore"},
    ),
    (
        {"chain_direct": False, "snap": False, "object_cut": False},
        FlowOptions(
            occlusion=FlowOcclusion(chain_direct=False),
            snap=FlowSnap(enabled=False),
            object_cut=FlowObjectCut(enabled=False),
        ),
        {"preset": "medium", "downscale": 1, "fb_alpha": 0.01, "fb_beta": 0.5, "photo_tol": 16.0,
         "occlusion": "label", "vote_size": 9, "vote_margin": 0.5, "direct": True, "chain_direct": False,
         "snap": False, "object_cut": False},
    ),
    (
        {"direct": False, "motion_prior": False, "photo_tol": None},
        FlowOptions(
            checks=FlowChecks(photo_tol=None),
            occlusion=FlowOcclusion(direct=False),
            object_cut=FlowObjectCut(motion_prior=False),
        ),
        {**{k: v for k, v in DEFAULT.items() if k != "chain_direct"}, "photo_tol": None, "direct": False,
         "motion_prior": False},
    ),
    (
        {"drop_dragged": False},
        FlowOptions(object_cut=FlowObjectCut(drop_dragged=False)),
        {**DEFAULT, "drop_dragged": False},
    ),
    (
        {"preset": "fast", "downscale": 2, "direct_downscale": 2, "check_downscale": 3,
         "direct_preset": "ultrafast"},
        FlowOptions(
            estimator=FlowEstimator(preset="fast"),
            speed=FlowSpeed(downscale=2, direct_downscale=2, check_downscale=3, direct_preset="ultrafast"),
        ),
        {"preset": "fast", "downscale": 2, "fb_alpha": 0.01, "fb_beta": 0.5, "photo_tol": 16.0,
         "occlusion": "label", "check_downscale": 3, "vote_size": 9, "vote_margin": 0.5, "direct": True,
         "chain_direct": True, "direct_downscale": 2, "direct_preset": "ultrafast", "snap": True,
         "snap_band": 3, "snap_reach": 20, "snap_iterations": 2, "snap_max_classes": 4, "snap_downscale": 1,
         "object_cut": True, "object_cut_grow": 15, "object_cut_erode": 1, "object_cut_from": 2,
         "motion_prior": True, "drop_dragged": True},
    ),
    (
        {"fb_alpha": 0.02, "fb_beta": 0.25, "vote_size": 5, "vote_margin": 0.25, "snap_band": 4,
         "snap_reach": 10, "snap_iterations": 1, "snap_max_classes": 3, "snap_downscale": 2,
         "object_cut_grow": 9, "object_cut_erode": 0, "object_cut_from": 3, "flow_threads": 2},
        FlowOptions(
            checks=FlowChecks(fb_alpha=0.02, fb_beta=0.25),
            occlusion=FlowOcclusion(vote_size=5, vote_margin=0.25),
            snap=FlowSnap(band=4, reach=10, iterations=1, max_classes=3, downscale=2),
            object_cut=FlowObjectCut(grow=9, erode=0, min_distance=3),
            speed=FlowSpeed(workers=2),
        ),
        {"preset": "medium", "downscale": 1, "fb_alpha": 0.02, "fb_beta": 0.25, "photo_tol": 16.0,
         "occlusion": "label", "vote_size": 5, "vote_margin": 0.25, "direct": True, "chain_direct": True,
         "snap": True, "snap_band": 4, "snap_reach": 10, "snap_iterations": 1, "snap_max_classes": 3,
         "snap_downscale": 2, "object_cut": True, "object_cut_grow": 9, "object_cut_erode": 0,
         "object_cut_from": 3, "motion_prior": True, "drop_dragged": True},
    ),
    (
        {"snap": False, "direct_downscale": 2, "direct_preset": "fast", "object_cut_from": 1},
        FlowOptions(
            snap=FlowSnap(enabled=False),
            object_cut=FlowObjectCut(min_distance=1),
            speed=FlowSpeed(direct_downscale=2, direct_preset="fast"),
        ),
        {"preset": "medium", "downscale": 1, "fb_alpha": 0.01, "fb_beta": 0.5, "photo_tol": 16.0,
         "occlusion": "label", "vote_size": 9, "vote_margin": 0.5, "direct": True, "chain_direct": True,
         "direct_downscale": 2, "direct_preset": "fast", "snap": False, "object_cut": True,
         "object_cut_grow": 15, "object_cut_erode": 1, "object_cut_from": 1, "motion_prior": True,
         "drop_dragged": True},
    ),
    (  # the object cut reads the snap's class count though the snap is off: recorded where not the default
        {"snap": False, "snap_max_classes": 30},
        FlowOptions(snap=FlowSnap(enabled=False, max_classes=30)),
        {"preset": "medium", "downscale": 1, "fb_alpha": 0.01, "fb_beta": 0.5, "photo_tol": 16.0,
         "occlusion": "label", "vote_size": 9, "vote_margin": 0.5, "direct": True, "chain_direct": True,
         "snap": False, "snap_max_classes": 30, "object_cut": True, "object_cut_grow": 15,
         "object_cut_erode": 1, "object_cut_from": 2, "motion_prior": True, "drop_dragged": True},
    ),
    (
        {"occlusion": "ignore", "snap": False, "direct": False, "check_downscale": 2, "direct_downscale": 2},
        FlowOptions(
            occlusion=FlowOcclusion(mode="ignore", direct=False),
            snap=FlowSnap(enabled=False),
            speed=FlowSpeed(check_downscale=2, direct_downscale=2),
        ),
        {"preset": "medium", "downscale": 1, "fb_alpha": 0.01, "fb_beta": 0.5, "photo_tol": 16.0,
         "occlusion": "ignore", "check_downscale": 2},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("flat", "options", "recorded"), RECORDED)
def test_the_settings_are_those_the_engine_of_flat_arguments_recorded(
    flat: dict, options: FlowOptions, recorded: dict
) -> None:
    """Key for key, value for value and in the same order (``run.json`` is compared to resume)."""
    assert FlowOptions.from_flat(**flat) == options
    assert json.dumps(FlowPropagator(options).settings) == json.dumps(recorded)


def test_every_argument_of_before_has_one_flat_name_and_goes_back_and_forth() -> None:
    """30 options, each in one part; `flat` and `from_flat` are inverse; `settings` read back as
    options give the same settings (what a store's ``run.json`` records rebuilds its engine)."""
    names = option_fields(FlowOptions)
    assert len(names) == 30 and len({(option.part, option.spec.name) for option in names.values()}) == 30
    assert list(FlowOptions().flat()) == list(names)
    for _, options, recorded in RECORDED:
        assert FlowOptions.from_flat(**options.flat()) == options
        rebuilt = FlowOptions.from_flat(**recorded)
        assert FlowPropagator(rebuilt).settings == recorded
    assert FlowPropagator().options == FlowOptions()


def test_a_name_that_is_no_option_is_refused_naming_them() -> None:
    with pytest.raises(ConfigError, match=r"snap_bandwidth: no option of FlowOptions; it takes flow, preset"):
        FlowOptions.from_flat(snap_bandwidth=5)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: FlowSnap(band=0), "snap_band: must be >= 1, got 0"),
        (lambda: FlowSnap(max_classes=1), "snap_max_classes: must be >= 2"),
        (lambda: FlowObjectCut(min_distance=0), "object_cut_from: must be >= 1"),
        (lambda: FlowObjectCut(erode=-1), "object_cut_erode: must be >= 0"),
        (lambda: FlowOcclusion(vote_size=4), "vote_size: must be an odd number"),
        (lambda: FlowChecks(fb_alpha=math.nan), "fb_alpha: must be a finite number >= 0, got nan"),
        (lambda: FlowChecks(fb_beta=-1.0), "fb_beta: must be a finite number >= 0, got -1.0"),
        (
            lambda: FlowChecks(photo_tol=math.inf),
            r"photo_tol: must lie in 0…255 grey levels \(255: none\), got inf",
        ),
        (lambda: FlowChecks(photo_tol=-1.0), "photo_tol: must lie in 0…255"),
        (lambda: FlowSpeed(workers=0), "flow_threads: must be >= 1"),
        (lambda: FlowEstimator(method="raft"), "raft_weights: the RAFT flow needs a weights file"),
        (
            lambda: FlowOptions(
                estimator=FlowEstimator("raft", raft_weights="w.pth"), speed=FlowSpeed(check_downscale=2)
            ),
            "check_downscale: applies to the DIS flow only",
        ),
    ],
)
def test_a_part_checks_its_values_by_their_flat_names(make, match: str) -> None:
    """A part that cannot work is never made; the error names the option as the CLI and settings do."""
    with pytest.raises(ConfigError, match=match):
        make()


def test_the_loop_engine_and_the_label_source_build_the_engine_from_flow_options() -> None:
    """The loop's ``flow`` engine takes every option by flat name (its ``Options`` is `FlowOptions` one
    level deep) and `FlowLabels` two; the rest of their engine's options are `FlowOptions`'s defaults."""
    assert dataclasses.asdict(AnchorFusionEngine.Options()) == FlowOptions().flat()
    engine = get_loop_engine("flow", preset="fast", downscale=2)
    assert isinstance(engine, AnchorFusionEngine) and isinstance(engine.anchor_engine, FlowPropagator)
    assert engine.anchor_engine.options == FlowOptions(
        estimator=FlowEstimator(preset="fast"), speed=FlowSpeed(downscale=2)
    )
    assert FlowLabels().engine.options == FlowOptions()
    labels = FlowLabels(preset="ultrafast", occlusion="ignore")
    assert labels.engine.options == FlowOptions.from_flat(preset="ultrafast", occlusion="ignore")
