"""The annotation page (``frugalseg annotate serve``): an ASGI app and one static page over a session."""

from frugalseg.app.jobs import SessionService
from frugalseg.app.server import create_app

__all__ = ["SessionService", "create_app"]
