"""The run's summary (`frugalseg.active.semantic.simulate`): curves over the videos and their plot."""

from __future__ import annotations

from frugalseg.active.semantic import simulate
from frugalseg.active.semantic.loop import LoopResult, Quality, SemanticIterationRecord, SemanticLoopConfig
from frugalseg.active.semantic.samples import Granularity


def _result(selector: str, video: str) -> LoopResult:
    quality = Quality(miou=0.5, pixel_accuracy=0.8, boundary_iou=0.3, tc=0.9)
    record = SemanticIterationRecord(0, 1, 10, 10, 25.0, 0.01, quality, baseline=quality)
    return LoopResult(SemanticLoopConfig(Granularity("frame"), selector, 25, iterations=1), video, [record])


def test_each_flow_baseline_line_names_its_strategy(monkeypatch):
    """The legend said "frame: flow propagation" once per selector."""
    figures = []
    monkeypatch.setattr(simulate, "figure_png", lambda figure: figures.append(figure) or b"")
    data = simulate.curves([_result("random", "a"), _result("diversity", "a")])
    simulate.plot(data)
    _, labels = figures[0].axes[0].get_legend_handles_labels()
    assert labels == [
        "frame-random",
        "frame-random: flow propagation",
        "frame-diversity",
        "frame-diversity: flow propagation",
    ]
