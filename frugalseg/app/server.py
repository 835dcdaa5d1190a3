"""The annotation page's ASGI app (Starlette): one static page and a JSON API over an annotation session.

Every path names videos and frames by id (the session's video names, sequence frame indices),
never by file name, so no request reads or writes outside the state folder and the videos. Masks
travel as run-length codes of object ids (``[value, count, value, count, …]`` over the rows),
exact and small; the image work (click previews, propagation, thumbnails) is the package's.

Every response carries `SECURITY_HEADERS`: the page runs only its own script, so a name from the data
that slipped into its HTML would still run nothing. Routes (all but ``/`` and ``/static`` under ``/api``;
with a token, every request but ``/static``'s must carry it as the ``token`` query parameter or the
``X-Token`` header, else 401)::

    GET  /                                         the page
    GET  /static/page.js, /static/page.css         its script and style (no token: package files, no data)
    GET  /api/session                              videos with their progress, palette, settings
    GET  /api/videos/{video}                       frames, annotated frames, objects, unreliability, errors
    GET  /api/videos/{video}/{frame}/image.jpg     the frame
    GET  /api/videos/{video}/{frame}/thumb.jpg     its thumbnail with the current mask (cached)
    GET  /api/videos/{video}/{frame}/mask          its current mask and the video's "edits" (annotations
                                                   so far); then the click model readies the frame
    POST /api/videos/{video}/{frame}/preview       {"clicks": […], "base": rle?} → the click model's mask
    POST /api/videos/{video}/{frame}/box           {"box": [x0, y0, x1, y1], "clicks": […]?} → the object's
                                                   mask (the click model's, `ClickToMask.box`)
    POST /api/videos/{video}/{frame}/scissors      {"points": [[x, y], …], "closed"?} → the edge-following
                                                   contour through them (and, closed, its mask)
    POST /api/videos/{video}/{frame}/superpixels   {"points": [[x, y], …]} → the superpixels a stroke crosses
    POST /api/videos/{video}/{frame}/upload        a mask PNG (body) → its object ids
    POST /api/videos/{video}/{frame}/submit        {"clicks": […], "base"?} or {"mask": rle, "boxes"?,
                                                   "clicked": […]? (the clicks that made objects of the
                                                   mask)}, "new_objects", "names", "declared"?,
                                                   "edits"? → 202 and the
                                                   propagation's job; 412 when the frame was annotated
                                                   since the mask's "edits" (another tab, the ML backend)
    GET  /api/jobs                                 the propagations and their progress
    GET  /api/proposal[?video=…]                   the next proposal (provisional while a video propagates)
                                                   and the class names of its objects
    POST /api/export                               a new label store of the masks, its tool files, and the
                                                   `label import` that brings an edited one back

A frame's click or box preview that a later one of the same frame replaced while it ran stops and answers
409, unless the later one only adds clicks to it: that one waits for it and goes on from its answer
(`LatestWins`). The page shows the latest answer only.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frugalseg.active.objects.session.exports import import_command
from frugalseg.active.objects.session.given import (
    MAX_CLICKS,
    MAX_OBJECTS,
    DrawnBox,
    GivenAnnotation,
    is_object_id,
    object_name,
)
from frugalseg.active.objects.session.proposals import LOOK_HERE
from frugalseg.active.objects.simulation.annotation_types import GivenClick
from frugalseg.active.objects.tools.tools import IntelligentScissors, SuperpixelBrush
from frugalseg.app.http import JSON_ERRORS, Endpoint, JSONRoutes, LatestWins, RequestError
from frugalseg.app.jobs import (
    PropagationPending,
    SessionService,
    StaleFrame,
    expected_errors,
    jpeg,
    unreliability,
)
from frugalseg.data.files import array_sha1
from frugalseg.data.overlays import object_palette
from frugalseg.errors import ConfigError, DataError

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The most anchor points of one scissors contour and points of one superpixel-brush stroke.
MAX_ANCHORS = 500
MAX_STROKE = 20_000
#: The page's own files beside ``index.html`` and their media types (inline script and style are not allowed).
STATIC = {"page.js": "text/javascript; charset=utf-8", "page.css": "text/css; charset=utf-8"}
#: Headers on every response: script, style and requests from the app alone (no inline script, handler or
#: style), images from it and the icon's data URL; no plugins, frames or forms; no token leaked in a Referer.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def encode_rle(ids: np.ndarray) -> list[int]:
    """``[value, count, …]`` runs of ``ids`` in row-major order."""
    flat = ids.ravel()
    if flat.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    counts = np.diff(np.r_[starts, flat.size])
    runs: list[int] = np.stack([flat[starts].astype(np.int64), counts], axis=1).ravel().tolist()
    return runs


def decode_rle(runs: Any, shape: tuple[int, int], what: str = "mask") -> np.ndarray:
    """The H×W uint8 ids of ``runs`` (`encode_rle`); 400 naming ``what`` unless they fill ``shape``.

    The values, counts and their sum are checked as Python ints, before numpy: a number past int64
    can neither overflow a conversion nor wrap a sum.
    """
    if not isinstance(runs, list) or len(runs) % 2 or len(runs) > 2 * shape[0] * shape[1]:
        raise RequestError(400, f"{what}: expected a list of [value, count, …] runs")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in runs):
        raise RequestError(400, f"{what}: runs must be whole numbers")
    values, counts = runs[0::2], runs[1::2]
    if values and (min(values) < 0 or max(values) > 255 or min(counts) < 1):
        raise RequestError(400, f"{what}: values must be 0…255 and counts ≥ 1")
    covered = sum(counts)
    if covered != shape[0] * shape[1]:
        shown = covered if covered < 10**12 else "more than 10^12"  # a huge int is not printed whole
        raise RequestError(400, f"{what}: runs cover {shown} pixels, the frame {shape[1]}×{shape[0]}")
    return np.repeat(np.array(values, np.uint8), np.array(counts, np.int64)).reshape(shape)


class AnnotationApp(JSONRoutes):
    """The page's routes over a `SessionService` (see the module docstring).

    Args:
        service: the session and its worker.
        token: the secret every request must carry (None: none needed, for 127.0.0.1).
        exports: the folder of the label stores ``Export`` writes (``store-001``, …).
        max_upload: the largest request body in bytes (uploads and JSON).
    """

    def __init__(
        self, service: SessionService, *, token: str | None, exports: Path, max_upload: int = 8 << 20
    ) -> None:
        super().__init__(token=token, max_upload=max_upload)
        self.service = service
        self.session = service.session
        self.exports = exports
        self.scissors_tool = IntelligentScissors()
        self.brush = SuperpixelBrush()
        self.previews = LatestWins()  # a frame's later click or box preview waits for or stops the one before

    def routes(self) -> list[Route]:
        """The app's routes, each wrapped in the token check and the error handling."""
        video = "/api/videos/{video}"
        frame = video + "/{frame:int}"
        table: list[tuple[str, Endpoint, str]] = [
            ("/", self.page, "GET"),
            ("/api/session", self.overview, "GET"),
            (video, self.video, "GET"),
            (frame + "/image.jpg", self.image, "GET"),
            (frame + "/thumb.jpg", self.thumb, "GET"),
            (frame + "/mask", self.mask, "GET"),
            (frame + "/preview", self.preview, "POST"),
            (frame + "/box", self.box, "POST"),
            (frame + "/scissors", self.scissors, "POST"),
            (frame + "/superpixels", self.superpixels, "POST"),
            (frame + "/upload", self.upload, "POST"),
            (frame + "/submit", self.submit, "POST"),
            ("/api/jobs", self.jobs, "GET"),
            ("/api/proposal", self.proposal, "GET"),
            ("/api/export", self.export, "POST"),
        ]
        guarded = [Route(path, self._guarded(endpoint), methods=[method]) for path, endpoint, method in table]
        return [Route("/static/{name}", self.static, methods=["GET"]), *guarded]

    def _video(self, request: Request) -> str:
        name = str(request.path_params["video"])
        if name not in self.session.videos():
            raise RequestError(404, f"no video {name!r} in this session")
        return name

    def _frame(self, request: Request) -> tuple[str, int]:
        name = self._video(request)
        self._check_frames(name)
        frame = int(request.path_params["frame"])
        if frame not in self.session.frames(name):
            raise RequestError(404, f"video {name!r} has no frame {frame} in this session")
        return name, frame

    def _check_frames(self, name: str) -> None:
        """Refuse a video whose frames changed under the state the page holds (`check_state_frames`)."""
        cached = self.service.state(name)
        if cached is not None:
            self.session.check_state_frames(name, cached.state)

    async def page(self, request: Request) -> Response:
        """The page."""
        return HTMLResponse(
            resources.files("frugalseg.app").joinpath("static/index.html").read_text(encoding="utf-8")
        )

    async def static(self, request: Request) -> Response:
        """The page's script or style (`STATIC`), served without the token: package files, no data."""
        name = str(request.path_params["name"])
        if name not in STATIC:
            return JSONResponse({"error": f"no static file {name[:64]!r}"}, 404)
        text = resources.files("frugalseg.app").joinpath(f"static/{name}").read_text(encoding="utf-8")
        return Response(text, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    async def overview(self, request: Request) -> Response:
        """The videos with their progress, the object palette and the session's settings."""
        return JSONResponse(await run_in_threadpool(self._overview))

    def _overview(self) -> dict[str, Any]:
        videos = []
        for name in self.session.videos():
            cached = self.service.state(name)
            frames = len(self.session.frames(name))
            state = cached.state if cached else None
            videos.append(
                {
                    "name": name,
                    "frames": frames,
                    "annotated": len(state.annotated) if state else 0,
                    "hours": round(state.seconds / 3600, 4) if state else 0.0,
                    "unreliable": _mean(unreliability(cached)),
                    "pending": self.service.pending(name),
                }
            )
        settings = self.session.settings
        return {
            "videos": videos,
            "palette": object_palette().tolist(),
            "engine": settings.engine.name,
            "click_model": settings.click_model.name,
            "state": str(self.session.folder),
        }

    async def video(self, request: Request) -> Response:
        """A video's frames, annotated frames, objects and their names, each frame's unreliability and error.

        ``files`` names each frame's file (its base name, as the person knows the frame; no folder).

        ``expected_error`` (the model's expected 1 − J&F, `filmstrip_scores`) colours the filmstrip, red
        from ``look_here``.
        """
        name = self._video(request)
        return JSONResponse(await run_in_threadpool(self._video_info, name))

    def _video_info(self, name: str) -> dict[str, Any]:
        self._check_frames(name)
        frames = self.session.frames(name)
        paths = self.session.format.numbered_frame_paths(name)
        height, width = self.session.frame_shape(name, frames[0])[1]
        cached = self.service.state(name)
        state = cached.state if cached else None
        names = self.service.names().get(name, {})
        objects = sorted(set(state.objects) if state else set()) + sorted(
            int(k) for k in names if not state or int(k) not in state.objects
        )
        return {
            "name": name,
            "frames": frames,
            "files": [paths[frame].name for frame in frames],
            "width": width,
            "height": height,
            "annotated": [frames[t] for t in sorted(state.annotated)] if state else [],
            "objects": [{"id": obj, "name": names.get(str(obj), f"object {obj}")} for obj in objects],
            "unreliable": unreliability(cached),
            "expected_error": expected_errors(cached),
            "look_here": LOOK_HERE,
            "versions": [sha[:12] for sha in cached.shas] if cached else [],
            "hours": round(state.seconds / 3600, 4) if state else 0.0,
            "pending": self.service.pending(name),
        }

    async def image(self, request: Request) -> Response:
        """The frame as JPEG."""
        name, frame = self._frame(request)
        data = await run_in_threadpool(lambda: jpeg(self.session.frame_image(name, frame)))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    async def thumb(self, request: Request) -> Response:
        """The frame's thumbnail with its current mask."""
        name, frame = self._frame(request)
        data = await run_in_threadpool(self.service.thumbnail, name, frame)
        return Response(data, media_type="image/jpeg")

    async def mask(self, request: Request) -> Response:
        """The frame's current mask (zeros before the video's first annotation).

        The page asks for it as it opens the frame: once it is sent, the click model readies the frame
        (`AnnotationSession.prepare_frame`), so a first click does not wait for the frame's features.
        """
        name, frame = self._frame(request)

        def read() -> tuple[int, np.ndarray]:  # the edits first: an annotation between the two shows as stale
            return self.service.edits(name), self.service.current_mask(name, frame)

        edits, ids = await run_in_threadpool(read)
        ready = BackgroundTask(self.service.prepare_frame, name, frame)
        answer = {"width": ids.shape[1], "height": ids.shape[0], "rle": encode_rle(ids), "edits": edits}
        return JSONResponse(answer, background=ready)

    async def preview(self, request: Request) -> Response:
        """The click model's mask of the clicks so far on ``base`` (default: the current mask)."""
        name, frame = self._frame(request)
        data = await self._json(request)
        clicks = _clicks(data.get("clicks"))

        def run() -> np.ndarray:
            current = self.service.current_mask(name, frame)
            sent = data.get("base")
            base = current if sent is None else decode_rle(sent, current.shape, "base")
            given = GivenAnnotation(Path("the clicks"), base.shape, clicks=tuple(clicks))
            with self.previews.latest((name, frame), "preview of this frame", array_sha1(base), given.clicks):
                return self.session.preview(name, frame, given, base)

        ids = await run_in_threadpool(run)
        return JSONResponse({"width": ids.shape[1], "height": ids.shape[0], "rle": encode_rle(ids)})

    # The weight-free tools: each answers one object's mask (0/1), which the page puts in its frame.

    async def box(self, request: Request) -> Response:
        """The click model's mask of a box and the corrective clicks since it, for ``object`` if named.

        `AnnotationSession.box_preview`: the box and its clicks see the object's mask on the nearest
        annotated frame, the clicks the frame's motion.
        """
        name, frame = self._frame(request)
        data = await self._json(request)
        _, shape = await run_in_threadpool(self.session.frame_shape, name, frame)
        box = _box(data.get("box"), shape)
        obj = data.get("object")
        if obj is not None and not is_object_id(obj):
            raise RequestError(400, f"object must be an id 1…{MAX_OBJECTS}")
        clicks: tuple[GivenClick, ...] = ()
        if data.get("clicks"):
            clicks = GivenAnnotation(Path("the clicks"), shape, clicks=tuple(_clicks(data["clicks"]))).clicks

        def run() -> np.ndarray:
            with self.previews.latest((name, frame), "preview of this frame", (box, obj), clicks):
                return self.session.box_preview(name, frame, box, clicks, obj)

        found = await run_in_threadpool(run)
        return JSONResponse(_object_mask(found))

    async def scissors(self, request: Request) -> Response:
        """The intelligent scissors' contour through the anchor points; closed, with its filled mask."""
        name, frame = self._frame(request)
        data = await self._json(request)
        image = await run_in_threadpool(self.session.frame_image, name, frame)
        anchors = _points(data.get("points"), image.shape[:2], MAX_ANCHORS, "scissors")
        closed = data.get("closed", False)
        if not isinstance(closed, bool):
            raise RequestError(400, "scissors: closed must be true or false")
        if closed and len(anchors) < 3:
            raise RequestError(400, "scissors: closing needs at least 3 anchor points")
        contour = await run_in_threadpool(lambda: self.scissors_tool.contour(image, anchors, closed=closed))
        if not closed:
            return JSONResponse({"contour": contour.tolist()})
        found = await run_in_threadpool(self.scissors_tool.mask, image, anchors)
        return JSONResponse({"contour": contour.tolist(), **_object_mask(found)})

    async def superpixels(self, request: Request) -> Response:
        """The superpixels a brush stroke (a polyline of points) crosses."""
        name, frame = self._frame(request)
        data = await self._json(request)
        image = await run_in_threadpool(self.session.frame_image, name, frame)
        stroke = _points(data.get("points"), image.shape[:2], MAX_STROKE, "superpixels")
        return JSONResponse(_object_mask(await run_in_threadpool(self.brush.paint, image, stroke)))

    async def upload(self, request: Request) -> Response:
        """A mask PNG for the frame (the body, checked as ``annotate add --mask`` checks its file)."""
        name, frame = self._frame(request)
        body = await self._body(request)
        if not body.startswith(PNG_SIGNATURE) or body[12:16] != b"IHDR":
            raise RequestError(415, "the upload is not a PNG file")
        size = (int.from_bytes(body[16:20], "big"), int.from_bytes(body[20:24], "big"))
        _, (height, width) = await run_in_threadpool(self.session.frame_shape, name, frame)
        if size != (width, height):  # refused before decoding: a small file may hold a huge image
            raise RequestError(
                400, f"the uploaded PNG is {size[0]}×{size[1]} px but the frame is {width}×{height}"
            )

        def read() -> np.ndarray:
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "upload.png"
                path.write_bytes(body)
                try:
                    return self.session.read_mask(name, frame, path)
                except DataError as err:
                    raise RequestError(400, str(err).replace(str(path), "the uploaded PNG")) from err

        ids = await run_in_threadpool(read)
        objects = [int(v) for v in np.unique(ids) if v]
        return JSONResponse(
            {"width": ids.shape[1], "height": ids.shape[0], "rle": encode_rle(ids), "objects": objects}
        )

    async def submit(self, request: Request) -> Response:
        """Add the annotation (saved at once), then queue its propagation (superseding a running one)."""
        name, frame = self._frame(request)
        data = await self._json(request)
        names = _object_names(data.get("names", {}))
        clicks = tuple(_clicks(data["clicks"])) if "clicks" in data else ()
        if not clicks and "mask" not in data:
            raise RequestError(400, 'give "clicks" or "mask"')
        new_objects = data.get("new_objects", False)
        if not isinstance(new_objects, bool):
            raise RequestError(400, "new_objects must be true or false")
        if ("boxes" in data or "clicked" in data) and "mask" not in data:
            raise RequestError(400, 'boxes and clicked say how a "mask" was made; clicks take none')
        clicked: dict[int, tuple[GivenClick, ...]] = {}
        for click in _clicks(data["clicked"], "clicked") if "clicked" in data else ():
            clicked[click.object] = (*clicked.get(click.object, ()), click)
        seen = data.get("edits")
        if seen is not None and (not isinstance(seen, int) or isinstance(seen, bool) or seen < 0):
            raise RequestError(400, "edits must be a whole number ≥ 0 (the mask's, as the page read it)")
        declared = data.get("declared", [])
        if not isinstance(declared, list) or not all(is_object_id(obj) for obj in declared):
            raise RequestError(400, f"declared must list the new objects' ids 1…{MAX_OBJECTS}")

        if "base" in data and "clicks" not in data:
            raise RequestError(400, 'a "base" is the mask "clicks" correct; a "mask" takes none')

        def add() -> dict[str, Any]:
            shown = self.service.current_mask(name, frame)  # what the person corrected, as the page shows it
            if "base" in data:  # as the page showed it before the clicks, however it propagated since
                shown = decode_rle(data["base"], shown.shape, "base")
            given = GivenAnnotation(
                Path("the submitted mask"),
                shown.shape,
                ids=decode_rle(data["mask"], shown.shape) if "mask" in data else None,
                clicks=clicks,
                boxes=_drawn_boxes(data["boxes"], shown.shape) if "boxes" in data else {},
                clicked=clicked,
                names=names,
                new_objects=new_objects,
            )
            try:
                added, job = self.service.add(name, frame, given, current=shown, seen=seen, declared=declared)
            except StaleFrame as err:
                raise RequestError(412, str(err)) from err
            answer = {"job": job.report(), "record": asdict(added.record), "objects": added.objects}
            return answer | {"edits": self.service.edits(name)}

        return JSONResponse(await run_in_threadpool(add), 202)

    async def jobs(self, request: Request) -> Response:
        """Every propagation of this server and its progress."""
        return JSONResponse({"jobs": [job.report() for job in self.service.jobs]})

    async def proposal(self, request: Request) -> Response:
        """The next proposal (``provisional`` while a video propagates; ``done``: all annotated)."""
        video = request.query_params.get("video")
        if video is not None and video not in self.session.videos():
            raise RequestError(404, f"no video {video!r} in this session")
        proposal = await run_in_threadpool(self.service.proposal, video)
        if proposal is None:
            return JSONResponse({"done": True})
        names = await run_in_threadpool(lambda: self.service.names().get(proposal.video, {}))
        return JSONResponse({"proposal": _public(proposal, names)})

    async def export(self, request: Request) -> Response:
        """Export the session's current masks to a new label store under the exports folder."""
        try:
            out, written, tools, unchanged = await run_in_threadpool(self.service.export, self.exports)
        except PropagationPending as err:
            raise RequestError(409, str(err)) from err
        answer = {
            "store": str(out),
            "written": written,
            "tools": [str(p) for p in tools],
            "unchanged": unchanged,
        }
        return JSONResponse(answer | {"import": import_command(self.session, out)})


def _mean(values: list[float | None]) -> float | None:
    """The mean of the known ``values`` to 4 places, None for none (JSON has no NaN)."""
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 4) if known else None


def _public(proposal: Any, names: dict[str, str]) -> dict[str, Any]:
    """A proposal without its file path (the page names frames by index), its objects' names beside.

    ``names``: object id → class name of the proposal's video (`SessionService.names`); ``object N`` for
    an object not named, as the video route says.
    """
    data = asdict(proposal)
    data.pop("frame_path")
    data["names"] = {str(obj): names.get(str(obj), f"object {obj}") for obj in proposal.objects}
    return data


def _clicks(given: Any, what: str = "clicks") -> list[GivenClick]:
    """A request's ``what``, clicks ``[{"object", "x", "y", "positive"}, …]``; bounds: `GivenAnnotation`'s."""
    if not isinstance(given, list) or not given or len(given) > MAX_CLICKS:
        raise RequestError(400, f"{what}: expected a list of 1…{MAX_CLICKS} clicks")
    clicks = []
    for number, entry in enumerate(given):
        click = f"click {number}" if what == "clicks" else f"{what}: click {number}"
        keys = ("object", "x", "y", "positive")
        if not isinstance(entry, dict) or not all(k in entry for k in keys):
            raise RequestError(400, f"{click}: expected {{{', '.join(keys)}}}")
        obj, x, y, positive = (entry[k] for k in keys)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (obj, x, y)):
            raise RequestError(400, f"{click}: object, x and y must be whole numbers")
        if not isinstance(positive, bool):
            raise RequestError(400, f"{click}: positive must be true or false")
        clicks.append(GivenClick(obj, x, y, positive))
    return clicks


def _object_mask(found: np.ndarray) -> dict[str, Any]:
    """An object's bool mask as the page reads masks (run-length codes of 0 and 1)."""
    height, width = found.shape
    return {"width": width, "height": height, "rle": encode_rle(found.astype(np.uint8))}


def _inside(points: list[tuple[int, int]], shape: tuple[int, ...], what: str) -> None:
    """`RequestError` 400 naming the first point off a frame of ``shape``."""
    for number, (x, y) in enumerate(points):
        if not (0 <= x < shape[1] and 0 <= y < shape[0]):
            raise RequestError(400, f"{what} {number} at x {x}, y {y} is off the {shape[1]}×{shape[0]} frame")


def _whole(values: Any, count: int | None = None) -> bool:
    """True for a list of whole numbers (of ``count`` of them when given)."""
    return (
        isinstance(values, list)
        and (count is None or len(values) == count)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    )


def _box(given: Any, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """A request's box ``[x0, y0, x1, y1]`` (corners included, x0 ≤ x1, y0 ≤ y1) inside the frame."""
    if not _whole(given, 4):
        raise RequestError(400, "box: expected [x0, y0, x1, y1] in whole pixels")
    x0, y0, x1, y1 = given
    if x0 > x1 or y0 > y1:
        raise RequestError(400, f"box: {given} is empty (x0 ≤ x1 and y0 ≤ y1 needed)")
    if x0 < 0 or y0 < 0 or x1 >= shape[1] or y1 >= shape[0]:
        raise RequestError(400, f"box: {given} is off the {shape[1]}×{shape[0]} frame")
    return x0, y0, x1, y1


def _points(given: Any, shape: tuple[int, ...], limit: int, what: str) -> list[tuple[int, int]]:
    """A request's ``[[x, y], …]`` (1…``limit`` points inside the frame)."""
    if not isinstance(given, list) or not 1 <= len(given) <= limit:
        raise RequestError(400, f"{what}: expected a list of 1…{limit} points [x, y]")
    if not all(_whole(point, 2) for point in given):
        raise RequestError(400, f"{what}: each point must be [x, y] in whole pixels")
    points = [(int(x), int(y)) for x, y in given]
    _inside(points, shape, f"{what}: point")
    return points


def _by_object(given: Any, what: str, form: str, fits: Callable[[Any], bool], kind: str) -> dict[int, Any]:
    """Object id → value of a request's ``{id: value}`` object (`OBJECT_IDS`, values that ``fits``); else 400.

    ``form`` says what the object maps an id to, ``kind`` what each value must be (for the errors).
    """
    if not isinstance(given, dict):
        raise RequestError(400, f"{what}: expected an object of id → {form}")
    values = {}
    for key, value in given.items():
        text = str(key)  # ASCII digits only: "²" is a digit to str.isdigit, not to int()
        obj = int(text) if text.isascii() and text.isdigit() and len(text) <= 3 else 0
        if not is_object_id(obj) or not fits(value):
            raise RequestError(
                400, f"{what}: {text[:32]!r} → {value!r:.64} is not an object id 1…{MAX_OBJECTS} and {kind}"
            )
        values[obj] = value
    return values


def _drawn_boxes(given: Any, shape: tuple[int, ...]) -> dict[int, DrawnBox]:
    """Object id → the box a request's box tool drew it from.

    Each is ``{"box": [x0, y0, x1, y1], "clicks": n or […]}``, corners included as the box route takes
    them: the corrective clicks since the box, as their count or as the clicks themselves (the page's).
    """
    form = '{"box": [x0, y0, x1, y1], "clicks": n or […]}'
    boxes = {}
    for obj, value in _by_object(given, "boxes", form, lambda v: isinstance(v, dict), "its box").items():
        clicks = value.get("clicks", 0)
        made: tuple[GivenClick, ...] = ()
        if isinstance(clicks, list):  # the page's: the clicks themselves, none after a box alone
            made = tuple(_clicks(clicks, f"boxes: object {obj}: clicks")) if clicks else ()
            clicks = len(made)
        if not _whole([clicks]) or clicks < 0:
            raise RequestError(400, f"boxes: object {obj}: clicks {clicks!r} is not a click count")
        x0, y0, x1, y1 = _box(value.get("box"), shape)
        points = tuple((click.x, click.y, click.positive) for click in made)
        boxes[obj] = DrawnBox(x0, y0, x1 + 1, y1 + 1, clicks, points)
    return boxes


def _object_names(given: Any) -> dict[int, str]:
    """Object id → class name of a request (checked by `given.object_name`)."""
    names = {}
    for obj, value in _by_object(given, "names", "name", lambda v: isinstance(v, str), "a name").items():
        try:
            names[obj] = object_name(obj, value)
        except ConfigError as err:
            raise RequestError(400, f"names: {err.problem}") from err
    return names


def create_app(
    service: SessionService, *, token: str | None = None, exports: Path, max_upload: int = 8 << 20
) -> Starlette:
    """The Starlette app of the annotation page over ``service`` (see `AnnotationApp`)."""
    app = AnnotationApp(service, token=token, exports=exports, max_upload=max_upload)
    middleware = [Middleware(SecurityHeaders)]
    return Starlette(
        routes=app.routes(), middleware=middleware, exception_handlers=JSON_ERRORS, lifespan=service.lifespan
    )


class SecurityHeaders:
    """ASGI middleware that puts `SECURITY_HEADERS` on every HTTP response of ``app``.

    Args:
        app: the ASGI app it wraps.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run ``app``, adding the headers to each response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers[key] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
