"""Human-in-the-loop annotation: simulated annotators (and, later, selection strategies and costs)."""

from frugalseg.active.annotator import CorrectiveClick, corrective_click, simulate_corrective_clicks

__all__ = ["CorrectiveClick", "corrective_click", "simulate_corrective_clicks"]
