"""Human-in-the-loop annotation (paper 002, EVA-VOS).

The simulated corrective annotator, the loop's propagation engines (`engines`: flow with the
two-anchor fusion of `propagation`, SAM 2, STM), frame selectors (`selection`, with QNet's samples
and features in `quality`), annotation types and type policies (`annotation`, `policy`), the
click-to-mask models of the clicks type (`click_models`), the loop state (`state`), the loop and
its curves (`loop`), the simulation over a data set (`simulate`, behind ``frugalseg annotate
simulate``), and the loop for a real person on data without ground truth (`session`, behind
``frugalseg annotate propose`` and ``annotate add``).
"""

from frugalseg.active.annotator import CorrectiveClick, corrective_click, simulate_corrective_clicks

__all__ = ["CorrectiveClick", "corrective_click", "simulate_corrective_clicks"]
