"""What the page's app and the ML backend share: a token on every request, a bounded body, JSON errors.

`LatestWins` runs work of which only the latest is wanted (a frame's previews).

`JSONRoutes` is that small base (as Label Studio's SDK keeps its server apart from the model): its
subclasses hold routes only, over a `frugalseg.app.jobs.SessionService`.
"""

from __future__ import annotations

import errno
import hmac
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from frugalseg.active.objects.tools.max_flow import CutStopped, StopFlag, stopped_by
from frugalseg.data.files import file_problem
from frugalseg.errors import ConfigError, DataError

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]


class RequestError(Exception):
    """A request the app refuses: its HTTP status and the message the person sees."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Running:
    """One work under way in `LatestWins`: what stops it, what it does, what it waits for, and its end."""

    flag: StopFlag
    start: Hashable
    steps: tuple[Hashable, ...]
    awaited: _Running | None = None
    ended: threading.Event = field(default_factory=threading.Event)

    def leads_to(self, start: Hashable, steps: tuple[Hashable, ...]) -> bool:
        """Whether work of ``start`` and ``steps`` goes on from this one (its start, its steps first)."""
        return self.start == start and steps[: len(self.steps)] == self.steps


class LatestWins:
    """Work of which only the latest of each key is wanted: a newer one stops the one before, or waits for it.

    A person who clicks again before a preview comes back wants the answer to all the clicks; the page
    drops the older answer. A newer work whose steps go on from the older's (the same start, the older's
    clicks and more) waits for it: the click model keeps each click's answer, so the older's are the
    newer's first steps. Any other stops (`max_flow.stopped_by`) instead of taking the cores from the newer,
    and so does what it was waiting for, unless the newer goes on from that.
    """

    def __init__(self) -> None:
        self._running: dict[Hashable, _Running] = {}
        self._lock = threading.Lock()

    @contextmanager
    def latest(
        self, key: Hashable, what: str, start: Hashable, steps: tuple[Hashable, ...]
    ) -> Iterator[None]:
        """Run the block (in the thread doing the work) as ``key``'s latest; stopped by a newer one.

        Args:
            key: what the works are latest of (a frame).
            what: what the work is called in the error.
            start: what the work starts from (the mask the clicks correct, a box).
            steps: its steps in order (the clicks).

        Raises:
            RequestError: 409, when a newer work of ``key`` stopped this one.
        """
        mine = _Running(StopFlag(), start, steps)
        with self._lock:
            before, self._running[key] = self._running.get(key), mine
            while before is not None and not before.leads_to(start, steps):
                before.flag.set()
                before = before.awaited
            mine.awaited = before
        if before is not None:
            before.ended.wait()  # its answers are this one's first steps
        try:
            with stopped_by(mine.flag):
                yield
        except CutStopped as err:
            raise RequestError(409, f"a later {what} replaced this one") from err
        finally:
            mine.ended.set()
            with self._lock:
                mine.awaited = None
                if self._running.get(key) is mine:
                    del self._running[key]


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route: 404, another method: 405) as ``{"error": message}``."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return JSONResponse({"error": f"{detail}: {request.method} {request.url.path[:200]}"}, status)


#: The exception handlers of both apps (`Starlette`'s ``exception_handlers``): every error is JSON.
JSON_ERRORS = {HTTPException: http_error}


class JSONRoutes:
    """Routes that check a token, read bounded bodies and answer errors as ``{"error": message}``.

    Args:
        token: the secret every request must carry (None: none needed, for 127.0.0.1).
        max_upload: the largest request body in bytes.
        data_status: the status of a `DataError` or `ConfigError` a route raises.
    """

    #: How a request carries the token, said with a 401.
    token_help = "?token=… or X-Token"

    def __init__(self, *, token: str | None, max_upload: int, data_status: int = 400) -> None:
        self.token = token
        self.max_upload = max_upload
        self.data_status = data_status

    def _guarded(self, endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            given = self.given_token(request)
            if self.token is not None and not hmac.compare_digest(given.encode(), self.token.encode()):
                # logged: a caller that drops the answer (a tool's webhook) leaves no other trace
                log.warning("refused %s %s: no valid token", request.method, request.url.path[:200])
                return JSONResponse({"error": f"a valid token is needed ({self.token_help})"}, 401)
            try:
                return await endpoint(request)
            except RequestError as err:
                return JSONResponse({"error": err.message}, err.status)
            except (ConfigError, DataError) as err:
                return JSONResponse({"error": str(err)}, self.data_status)
            except OSError as err:  # a full disk, a folder it may not write: said, naming the file
                log.exception("%s %s failed", request.method, request.url.path)
                full = err.errno in (errno.ENOSPC, errno.EDQUOT)
                return JSONResponse({"error": file_problem(err)}, 507 if full else 500)
            except Exception:  # never a traceback to the client; the log has it
                log.exception("%s %s failed", request.method, request.url.path)
                return JSONResponse({"error": "internal error (see the server's log)"}, 500)

        return guarded

    def given_token(self, request: Request) -> str:
        """The token a request carries (its ``token`` query parameter or ``X-Token`` header)."""
        return request.query_params.get("token") or request.headers.get("x-token") or ""

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_upload):
            raise RequestError(413, f"request body larger than {self.max_upload} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_upload:
                raise RequestError(413, f"request body larger than {self.max_upload} bytes")
        return bytes(body)

    async def _json(self, request: Request) -> dict[str, Any]:
        try:
            data = json.loads(await self._body(request))
        except (UnicodeDecodeError, ValueError) as err:  # ValueError: bad JSON, or an int of over 4300 digits
            raise RequestError(400, f"not valid JSON ({err})") from err
        except RecursionError as err:
            raise RequestError(400, "JSON nested too deeply") from err
        if not isinstance(data, dict):
            raise RequestError(400, "expected a JSON object")
        return data
