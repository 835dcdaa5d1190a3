"""The CLI's rich output: a console on stdout that stops quietly when its reader goes away."""

from __future__ import annotations

from rich.console import Console


class PipedConsole(Console):
    """A rich Console (rich's arguments) that stops as `frugalseg.cli.main`'s other output does.

    When the reader goes away (``frugalseg zoo list | head -1``) rich's own Console exits 1; this one
    raises the BrokenPipeError that `main` turns into a quiet exit 141.
    """

    def on_broken_pipe(self) -> None:
        """Raise, for `main` to end the command quietly."""
        raise BrokenPipeError
