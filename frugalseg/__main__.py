"""``python -m frugalseg``: the ``frugalseg`` command."""

import sys

from frugalseg.cli import main

sys.exit(main())
