"""Constrained types of the data and model options, checked by the command line where they are parsed.

LightningCLI (jsonargparse) reads these annotations on ``__init__`` arguments and refuses a value
outside them with one line naming the option (``data.batch_size``), before any class is built or
any file written. For type checkers they are plain ``int`` and ``float``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    PositiveInt = int
    NonNegativeInt = int
    PositiveFloat = float
    NonNegativeFloat = float
    Probability = float
else:
    from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt, PositiveInt, restricted_number_type

    PositiveFloat = restricted_number_type(
        "FinitePositiveFloat", float, [(">", 0.0), ("<", math.inf)], docstring="finite float > 0"
    )
    NonNegativeFloat = restricted_number_type(
        "FiniteNonNegativeFloat", float, [(">=", 0.0), ("<", math.inf)], docstring="finite float ≥ 0"
    )
    Probability = ClosedUnitInterval  # float in 0…1

__all__ = ["NonNegativeFloat", "NonNegativeInt", "PositiveFloat", "PositiveInt", "Probability"]
