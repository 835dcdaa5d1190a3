"""Human-in-the-loop annotation, in two wings that share the propagation from many annotated frames.

`objects` is the object-mask loop of paper 002 (EVA-VOS: frame and annotation-type selection,
click models, propagation engines, QNet and the type policy, the session a person works in);
`semantic` is the semantic loop of paper 000 (HVSA: samples, click cost, fine-tuning). Both build
on `propagation` (labels of every frame from several annotated frames, fused) and write their runs
through `run_folder` (``run.json``, the curves' plot, the label stores).
"""

from frugalseg.active.objects.simulation.simulated_annotator import (
    CorrectiveClick,
    corrective_click,
    simulate_corrective_clicks,
)

__all__ = ["CorrectiveClick", "corrective_click", "simulate_corrective_clicks"]
