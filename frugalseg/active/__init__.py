"""Human-in-the-loop annotation (paper 002, EVA-VOS).

The simulated corrective annotator, propagation from many annotated frames (`propagation`), frame
selectors (`selection`), annotation types and type policies (`annotation`), the loop state
(`state`), the loop and its curves (`loop`), the simulation over a data set (`simulate`, behind
``frugalseg annotate simulate``), and the loop for a real person on data without ground truth
(`session`, behind ``frugalseg annotate propose`` and ``annotate add``).
"""

from frugalseg.active.annotator import CorrectiveClick, corrective_click, simulate_corrective_clicks

__all__ = ["CorrectiveClick", "corrective_click", "simulate_corrective_clicks"]
