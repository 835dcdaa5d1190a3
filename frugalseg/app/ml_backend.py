"""Label Studio's ML backend over an annotation session (``frugalseg annotate ml-backend``).

Label Studio (its ``label_studio/ml/api_connector.py``) calls a backend with JSON: ``GET /health``,
``POST /setup`` (``project``: ``"<id>.<created timestamp>"``, ``schema``: the labeling config) →
``model_version``, ``POST /predict`` (``tasks``, ``label_config``, ``params.context``) →
``{"results": [prediction per task]}``, and ``POST /webhook`` with the project's events
(``action``, ``project``, ``task``, ``annotation``). Here the project's tasks are frames of the
session's videos, named as `frugalseg.interop.stores.FrameIndex` finds a tool's images (the path's
longest tail that names a frame: ``/data/local-files/?d=…/blackswan/00003.jpg``, an upload
``/data/upload/3/1a2b3c4d-00003.jpg`` when one video has a frame of that name, the tasks of
``label export --tool label-studio``). A path's file lies in a folder of its own: one whose folder is
not the frame's (``other/00003.jpg`` on blackswan's ``…/blackswan/00003.jpg``) is another file of the
same name, refused as ``label import`` refuses a frame of a clip the data set does not hold
(`_task_frame`); a bare file name (an upload) is matched by that name.

- ``/predict``: each frame's current mask as one ``brushlabels`` result per object (Label Studio's
  brush RLE, `frugalseg.interop.label_studio_regions.brush_result`; result id ``frugalseg-<object id>``),
  labelled with the object's name on the annotation page (else ``object``) when the labeling
  config's ``BrushLabels`` has it, else with that control's label when it has one alone (the data
  set's background class aside: never predicted), else with the name and a warning once per object
  and config (`MLBackendApp._label`), scored so that sorting by prediction score puts the loop's
  proposed frame first (1.0) and the others by unreliability ``u`` (``u / (1 + u)``, below 1). With
  ``context`` (interactive pre-annotation), the session's click model answers for the object its
  label names: a rectangle goes to its box tool
  (`ClickToMask.box`, the keypoints its corrective clicks), keypoints alone correct the object's
  current mask (`AnnotationSession.preview`); the one object comes back.
- ``/webhook`` ``ANNOTATION_CREATED`` / ``ANNOTATION_UPDATED`` of a project set up with this backend:
  the annotation becomes the session's annotation of its frame, a mask of every object drawn
  (`frugalseg.interop.label_studio_regions.regions_mask`), or clicks when it holds keypoints only, or, when it
  holds one rectangle and keypoints of its object, the box tool's mask booked as a box with its
  corrective clicks, as the page's (`AnnotationSession.box_given`); then the video's
  propagation is queued (`SessionService.add`), and later predictions carry it. A region keeps its
  object by its id (a prediction's ``frugalseg-<id>``), else by its label when one object of the
  video has that name (an object without one is shown, so named, ``object``), else when a prediction
  labels one object so in its name's stead (the config's one label; the object keeps its name), else
  it is the video's one object when it has no label, else it declares a new object (the config: the
  webhook project's ``label_config``, else the one its ``/setup`` sent); the task's image is the data
  field that config's image names. ``ANNOTATIONS_CREATED`` (*Create Annotations From Predictions*)
  books each of its annotations so. Other events are ignored, a deleted annotation with a warning (the
  session keeps it). A region labelled with the data set's background class (``label export`` writes one
  in each task's predictions, which a person may accept) is no object: left out.

The model version (``/setup``, every prediction) is the engine and a digest of the masks served, so
it changes when a propagation ends and Label Studio's *Retrieve predictions* asks again. The projects
set up are kept in ``label_studio_projects.json`` of the session's folder once it is a session, and a
webhook whose project's config has brushes sets its project up (`frugalseg.app.projects.Projects`). A
webhook arriving while its video propagates supersedes that propagation: one of both follows.

Label Studio's results become shapes, clicks and masks in `frugalseg.interop.label_studio`; this
module holds the routes only, on the small base it shares with the page (`frugalseg.app.http`).
Bad input (a task that names no frame of the session, an annotation of another size than its
frame, a webhook of a project not set up here, an unknown action) is a 4xx whose one-line error
names the task; nothing is written.

Label Studio keeps what a backend refused and shows none of its reason: its ``ml/api_connector.py``
turns any error answer into ``422 Client Error: … for url``, which ``ml/models.py`` only logs (an
interactive request shows that line). So each refusal of a task reaches the person three ways: the
backend logs it at warning level, ``/health`` lists each refused task with its latest one-line reason
(until an annotation of it is taken), and the task's prediction carries it. Within a ``/predict``
batch a task the session cannot predict is answered in place with no region and the model version
``frugalseg refused: <reason>``, and a task whose annotation a webhook refused gets that refusal
beside its prediction: Label Studio stores both and shows the reason in the Data Manager's
*Prediction model versions* column.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import threading
import time
import zlib
from collections import OrderedDict
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from frugalseg.active.objects.session.exports import UNNAMED  # an unnamed object's label, as exports give it
from frugalseg.active.objects.session.given import (
    MAX_BOX_CLICKS,
    MAX_OBJECTS,
    OBJECT_IDS,
    GivenAnnotation,
    accepted,
    is_object_id,
)
from frugalseg.active.objects.simulation.annotation_types import GivenClick
from frugalseg.app.http import JSON_ERRORS, Endpoint, JSONRoutes, RequestError
from frugalseg.app.jobs import SessionService, unreliability
from frugalseg.app.label_config import LabelConfig, controls
from frugalseg.app.last_boxes import LastBoxes
from frugalseg.app.projects import Projects
from frugalseg.data.clips import Clip
from frugalseg.errors import ConfigError, DataError
from frugalseg.interop.label_studio import annotation_shapes, image_name, result_object
from frugalseg.interop.label_studio_regions import (
    annotation_regions,
    brush_result,
    keypoint_clicks,
    negatives_object,
    rectangle_box,
    regions_mask,
)
from frugalseg.interop.shapes import Frame
from frugalseg.interop.stores import FrameIndex

log = logging.getLogger(__name__)

#: The webhook events read; Label Studio sends a backend every event of its project
#: (``WebhookAction`` in its ``webhooks/models.py``; ``START_TRAINING`` from ``ml/api_connector.py``).
ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")
#: Label Studio's "Create Annotations From Predictions": its annotations and their tasks, listed.
BULK_EVENT = "ANNOTATIONS_CREATED"
OTHER_EVENTS = (
    "PROJECT_CREATED", "PROJECT_UPDATED", "PROJECT_DELETED", "TASKS_CREATED", "TASKS_DELETED",
    "ANNOTATIONS_DELETED", "ANNOTATION_DELETED", "LABEL_LINK_CREATED", "LABEL_LINK_UPDATED",
    "LABEL_LINK_DELETED", "START_TRAINING",
)  # fmt: skip
DELETIONS = ("ANNOTATIONS_DELETED", "ANNOTATION_DELETED")
#: The refused tasks `/health` lists (the latest refusal of each, the oldest forgotten first).
MAX_REFUSED = 100
#: What a prediction's model version says of a task the backend refused (Label Studio shows it).
REFUSED = "frugalseg refused: "
#: The bytes of the frames' last predictions the backend keeps in memory (compressed: a few kB a frame at
#: 854×480), the oldest forgotten first: an object submitted as the prediction showed it was accepted.
MAX_SERVED_BYTES = 64 << 20


class MLBackendApp(JSONRoutes):
    """The ML backend's routes over a `SessionService` (see the module docstring).

    Args:
        service: the session and its propagation worker (the annotation page's).
        token: the secret Label Studio must send as the Basic-auth password (or ``X-Token``); None:
            none needed.
        max_upload: the largest request body in bytes.
    """

    def __init__(self, service: SessionService, *, token: str | None, max_upload: int = 64 << 20) -> None:
        super().__init__(token=token, max_upload=max_upload, data_status=422)
        self.service = service
        self.session = service.session
        self.projects = Projects(self.session.folder)
        self.refused: OrderedDict[str, dict[str, Any]] = OrderedDict()
        #: The (video, object, labels) whose name a labeling config lacks, warned of once.
        self.warned: set[tuple[str, int, tuple[str, ...]]] = set()
        self.last_boxes = LastBoxes()
        #: The data set's background class (train id 0): a region of that label is no object.
        self.background = self.session.format.class_names[0]
        clips = [
            Clip(name, self.session.settings.split, list(self.session.format.numbered_frame_paths(name)), 0)
            for name in self.session.videos()
        ]
        self.index = FrameIndex(clips)
        #: Each frame's last prediction (`_prediction`), its ids compressed, by (video, frame).
        self.served: OrderedDict[tuple[str, int], tuple[tuple[int, int], str, bytes]] = OrderedDict()
        self._served_lock = threading.Lock()

    def routes(self) -> list[Route]:
        """``/`` and ``/health``, ``/setup``, ``/predict``, ``/webhook``."""
        table: list[tuple[str, Endpoint, str]] = [
            ("/", self.health, "GET"),
            ("/health", self.health, "GET"),
            ("/setup", self.setup, "POST"),
            ("/predict", self.predict, "POST"),
            ("/webhook", self.webhook, "POST"),
        ]
        return [Route(path, self._guarded(endpoint), methods=[method]) for path, endpoint, method in table]

    token_help = "Label Studio's Basic authentication, the token as password, or X-Token"

    def given_token(self, request: Request) -> str:
        """The Basic-auth password Label Studio sends, else the page's ``token`` or ``X-Token``."""
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                return base64.b64decode(encoded, validate=True).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                return ""
        return super().given_token(request)

    async def health(self, request: Request) -> Response:
        """Label Studio's health check, with the tasks refused (each one's latest refusal, oldest first)."""
        return JSONResponse({
            "status": "UP", "model_class": "frugalseg", "model_version": self.version(),
            "refused": list(self.refused.values()),
        })  # fmt: skip

    def refuse(self, element: str, request: str, err: RequestError) -> RequestError:
        """Keep ``err`` as the refusal of task ``element`` (listed by `/health`) and log it; return it.

        Label Studio keeps a refused annotation and logs only ``422 Client Error``: the reason reaches
        the person here, in the backend's log and as a prediction of the task (`REFUSED`).
        """
        log.warning("refused %s of %s (%d): %s", request, element, err.status, err.message)
        self.refused.pop(element, None)
        self.refused[element] = {
            "task": element, "request": request, "status": err.status, "error": err.message,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }  # fmt: skip
        while len(self.refused) > MAX_REFUSED:
            self.refused.popitem(last=False)
        return err

    async def setup(self, request: Request) -> Response:
        """Remember the project Label Studio connects (its webhooks are taken), and say the model version.

        A refusal (a config without ``BrushLabels``) is logged: Label Studio shows only its status.
        """
        data = await self._json(request)
        try:
            await run_in_threadpool(self.projects.set_up, data.get("project"), data.get("schema"))
        except RequestError as err:  # Label Studio shows "422 … check the ML backend server console logs"
            log.warning(
                "refused setup of project %s (%d): %s", str(data.get("project"))[:32], err.status, err.message
            )
            raise
        return JSONResponse({"model_version": await run_in_threadpool(self.version)})

    def version(self) -> str:
        """The engine, the masks served and the refusals (8 hex digits of their SHA-1s).

        It is new after each propagation and each refusal: Label Studio asks again for the predictions of
        a task only when the model version changed, and a refused annotation's reason reaches its task's
        predictions so (`_answer`).
        """
        cached = [self.service.state(name) for name in self.session.videos()]
        shas = [c.shas for c in cached if c is not None and c.shas]  # no masks yet: zeros served, as before
        refused = [(task, refusal["at"], refusal["error"]) for task, refusal in self.refused.items()]
        digest = hashlib.sha1(json.dumps([shas, refused] if refused else shas).encode()).hexdigest()[:8]
        return f"frugalseg-{self.session.settings.engine.name}-{digest}"

    def _task_frame(self, task: Any, field: str | None = None) -> tuple[str, int]:
        """The (video, frame) a task names; `RequestError` naming the task when it names none.

        The image is the data ``field`` the labeling config's image shows (`image_field`), else the data's
        first text (a task of frugalseg's has one: ``image``).
        """
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise RequestError(400, "a task is an object with its data")
        element = task_name(task)
        urls = [v for v in task["data"].values() if isinstance(v, str)]
        if field is not None and field in task["data"]:
            urls = [task["data"][field]] if isinstance(task["data"][field], str) else []
        if not urls:
            needed = field or "image"
            raise RequestError(422, f"{element}: its data names no image (a task holds data.{needed})")
        name = image_name(urls[0])
        try:
            clip, offset = self.index.by_name(name, Path("label studio"), element)
        except DataError as err:
            raise RequestError(422, err.problem) from err
        folders = PurePosixPath(name.replace("\\", "/")).parts[:-1]
        found = clip.frame_path(offset)
        if folders and folders[-1] != found.parent.name:  # only its file name matched: another folder's file
            raise RequestError(
                422, f"{element}: {name!r} is a file of folder {folders[-1]!r}, not a frame of clip "
                f"{clip.clip_id} (only its file name matches {found}; their clip is not in this session)",
            )  # fmt: skip
        frames = self.session.frames(clip.clip_id)
        if offset not in frames:
            try:  # a frame removed from the folder since the video's annotations: said so
                self.session.saved_state(clip.clip_id, masks=False)
            except (DataError, ConfigError) as err:
                raise RequestError(422, f"{element}: {err}") from err
            raise RequestError(
                422, f"{element}: frame {offset} of {clip.clip_id} is not one of this session's "
                f"({frames[0]}…{frames[-1]} every {self.session.settings.stride})",
            )  # fmt: skip
        return clip.clip_id, offset

    async def predict(self, request: Request) -> Response:
        """Each task's current masks (or, with ``context``, the click model's mask of one object)."""
        data = await self._json(request)
        tasks = data.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            raise RequestError(400, "tasks: expected a list of Label Studio tasks")
        names = controls(data.get("label_config"))
        params = _object(data.get("params"))
        context = params.get("context") or {}
        if context:
            if len(tasks) != 1:
                raise RequestError(400, "an interactive pre-annotation is of one task")
            element = task_name(_object(tasks[0]))
            try:
                frame = self._task_frame(tasks[0], names.image)
                result = await run_in_threadpool(self._interactive, frame, context, names, tasks[0])
            except RequestError as err:
                raise self.refuse(element, "interactive predict", err) from err
            except (ConfigError, DataError) as err:
                refusal = RequestError(422, f"{element}: {err}")
                raise self.refuse(element, "interactive predict", refusal) from err
            return JSONResponse({"results": [result]})
        answers: list[dict[str, Any] | tuple[str, int]] = []
        for task in tasks:
            try:
                answers.append(self._task_frame(task, names.image))
            except RequestError as err:
                if not isinstance(task, dict):
                    raise
                answers.append(_refusal(self.refuse(task_name(task), "predict", err)))
        results = await run_in_threadpool(
            lambda: [self._answer_or_refusal(a, t, names) for a, t in zip(answers, tasks, strict=True)]
        )
        # one task is the one a person opened (a batch is Retrieve predictions): ready it for clicks, and
        # forget the rectangles drawn before on it (the editor shows none of them now)
        opened = answers[0] if len(answers) == 1 and isinstance(answers[0], tuple) else None
        if opened is not None:
            self.last_boxes.forget(str(_object(tasks[0]).get("id")))
        ready = None if opened is None else BackgroundTask(self.service.prepare_frame, *opened)
        return JSONResponse({"results": results}, background=ready)

    def _answer_or_refusal(
        self, answer: dict[str, Any] | tuple[str, int], task: Any, names: LabelConfig
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """`_answer`, or the task's refusal where its frame cannot be read now: the batch's others answer."""
        try:
            return self._answer(answer, task, names)
        except (ConfigError, DataError) as err:
            element = task_name(task)
            return _refusal(self.refuse(element, "predict", RequestError(422, f"{element}: {err}")))

    def _answer(
        self, answer: dict[str, Any] | tuple[str, int], task: Any, names: LabelConfig
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """A task's prediction; a refused task's refusal; with its annotation refused, both."""
        if isinstance(answer, dict):
            return answer
        prediction = self._prediction(answer, names)
        refused = self.refused.get(task_name(task))
        if refused is None or not refused["request"].startswith("webhook"):
            return prediction
        return [prediction, _refusal(RequestError(refused["status"], refused["error"]))]

    def _prediction(self, frame: tuple[str, int], config: LabelConfig) -> dict[str, Any]:
        """The frame's current mask as one brush result per object (`_label`), and its score."""
        video, index = frame
        ids = self.service.current_mask(video, index)
        shown = (
            (ids.shape[0], ids.shape[1]),
            ids.dtype.str,
            zlib.compress(np.ascontiguousarray(ids).tobytes(), 1),
        )
        with self._served_lock:
            self.served.pop(frame, None)
            self.served[frame] = shown
            while sum(len(kept[2]) for kept in self.served.values()) > MAX_SERVED_BYTES:
                self.served.popitem(last=False)
        names = self.service.names().get(video, {})
        result = [
            brush_result(
                ids == obj,
                self._label(video, obj, names.get(str(obj), UNNAMED), config.labels),
                obj,
                config.control,
            )
            for obj in (int(v) for v in np.unique(ids))
            if obj not in (0, 255)
        ]
        return {"result": result, "score": self._score(video, index), "model_version": self.version()}

    def _score(self, video: str, frame: int) -> float:
        """1 for the loop's proposed frame, else ``u / (1 + u)`` of the frame's unreliability ``u``."""
        proposal = self.service.proposal(video)  # before the first annotation too: its frame
        if proposal is not None and (proposal.video, proposal.frame) == (video, frame):
            return 1.0
        cached = self.service.state(video)
        if cached is None:
            return 0.0
        unreliable = unreliability(cached)
        u = unreliable[self.session.frames(video).index(frame)] if unreliable else None
        return 0.0 if u is None else round(u / (1 + u), 6)

    def _label(self, video: str, obj: int, name: str, labels: tuple[str, ...], *, warn: bool = True) -> str:
        """What a prediction labels object ``obj`` of ``video``, named ``name``, under a config's ``labels``.

        Its name when the config's ``BrushLabels`` has it; else that control's label when it has one
        alone besides the background class's; else its name, and (with ``warn``) a warning once per
        object and labels: Label Studio shows a label its config lacks, but a person cannot choose it.
        """
        if name in labels and name != self.background:
            return name
        objects = [label for label in labels if label != self.background]  # never a background region
        if len(objects) == 1:
            return objects[0]
        if warn and (video, obj, labels) not in self.warned:
            self.warned.add((video, obj, labels))
            log.warning(
                "predictions label object %d of %s %r, which the labeling config's BrushLabels (%s) lacks: "
                'add <Label value="%s"/> to it',
                obj, video, name, ", ".join(map(repr, labels)) or "no label", name,
            )  # fmt: skip
        return name

    def _interactive(
        self, frame: tuple[str, int], context: Any, config: LabelConfig, task: dict[str, Any]
    ) -> dict[str, Any]:
        """The click model's mask of the object the context's rectangle and keypoints draw."""
        video, index = frame
        element = task_name(task)
        results = context.get("result") if isinstance(context, dict) else None
        if not isinstance(results, list) or not results:
            raise RequestError(400, f"{element}: context holds no result (keypoints or a rectangle)")
        current = self.service.current_mask(video, index)
        drawn, read, negatives = self._objects_drawn(results, current.shape, element)
        if any(shape.type not in ("points", "box") for shape in drawn.shapes):
            raise RequestError(400, f"{element}: context holds keypoints and rectangles only")
        task_id = str(task.get("id"))
        if drawn.shapes:
            label = drawn.shapes[0].label
            obj = self._objects(video, [("", label)], {}, config.labels)[0]
        else:  # the background's keypoints alone correct the task's last rectangle they lie in
            held = self.last_boxes.holding(task_id, frame, negatives)
            shown = [int(value) for value in np.unique(current) if value not in (0, 255)]  # as `_prediction`
            if held is None and len(shown) == 1:  # the frame's one object, as a right-click on the page
                held = shown[0]
            if held is None:
                raise RequestError(
                    400, f"{element}: {self.background!r} keypoints alone, and the frame shows {len(shown)} "
                    "objects: click with the object's label first, or inside the rectangle just drawn",
                )  # fmt: skip
            label, obj = "", held
        clicks = tuple(
            GivenClick(obj, x, y, positive)
            for shape, result in zip(drawn.shapes, read, strict=True)
            for x, y, positive in keypoint_clicks(shape, result)
        ) + tuple(GivenClick(obj, x, y, False) for x, y in negatives)
        source = Path(f"the keypoints of {element}")
        checked = GivenAnnotation(source, current.shape, clicks=clicks).clicks if clicks else ()
        boxes = [rectangle_box(shape) for shape in drawn.shapes if shape.type == "box"]
        kind, drawn_box = ("object" if drawn.shapes else "background"), bool(boxes)
        made = tuple((kind, click) for click in checked)
        if not boxes:  # keypoints inside the task's last rectangle correct it (`frugalseg.app.last_boxes`)
            corrected = self.last_boxes.corrected(task_id, frame, obj, checked)
            boxes = [] if corrected is None else [corrected]
            made = self.last_boxes.with_clicks(task_id, obj, kind, checked) if boxes else made
        if boxes:
            found = self.session.box_preview(video, index, boxes[-1], [click for _, click in made], obj)
            if drawn_box:  # a new rectangle, its keypoints its own
                self.last_boxes.remember(task_id, frame, obj, boxes[-1], made)
        else:
            given = GivenAnnotation(source, current.shape, clicks=checked)
            found = self.session.preview(video, index, given, current) == obj
        name = self.service.names().get(video, {}).get(str(obj), label or UNNAMED)
        result = brush_result(found, self._label(video, obj, name, config.labels), obj, config.control)
        return {"result": [result], "score": 1.0, "model_version": self.version()}

    def _objects(
        self, video: str, regions: list[tuple[str, str]], given: dict[str, int], labels: tuple[str, ...]
    ) -> list[int]:
        """Each (result id, label) region's object (a new one's label kept in ``given``).

        By the result's id; else by a name one object has (an object without a name is shown, so named,
        ``object``); else, when no object has that name, the object whose predictions the config's
        ``labels`` label so (`_label`); a region without a label on a video of one object is that
        object; else a new one. A region of an object new to the video that the backend answered (its
        id, ``frugalseg-2``) gives its label, when it names no object yet, to that object: the rectangle
        and keypoints of the label beside it are the same object.
        """
        cached = self.service.state(video)
        known = set(cached.state.objects) if cached is not None else set()
        names = self.service.names().get(video, {})
        shown = {obj: names.get(str(obj), UNNAMED) for obj in known | {int(k) for k in names}}
        ids = (result_object({"id": result_id}) for result_id, _ in regions)
        named_ids = {obj for obj in ids if obj is not None and is_object_id(obj)}  # theirs, before new ones
        taken = known | set(given.values()) | named_ids
        shown_as = set(shown.values()) | {
            self._label(video, obj, name, labels, warn=False) for obj, name in shown.items()
        }
        for result_id, label in regions:  # an answer's id of an object new to the video: its label's regions
            by_id = result_object({"id": result_id})
            if (
                label
                and label not in shown_as
                and by_id is not None
                and is_object_id(by_id)
                and by_id not in shown
            ):
                given.setdefault(label, by_id)
        objects = []
        for result_id, label in regions:
            by_id = result_object({"id": result_id})
            named = [obj for obj, name in shown.items() if name == label]
            stood = [
                obj
                for obj, name in shown.items()
                if self._label(video, obj, name, labels, warn=False) == label
            ]
            if by_id is not None and is_object_id(by_id):
                obj = by_id
            elif label in given:
                obj = given[label]
            elif len(named) == 1:
                obj = named[0]
            elif not named and len(stood) == 1:
                obj = stood[0]
            elif not label and len(shown) == 1:
                [obj] = shown
            else:
                free = [i for i in OBJECT_IDS if i not in taken]
                if not free:
                    raise RequestError(422, f"{video}: a video holds at most {MAX_OBJECTS} objects")
                obj = free[0]
                given[label] = obj
                if shown:  # a typo or a renamed label would split an object's track in two
                    log.warning(
                        "a region labelled %r names no object of %s (%s): booked as its new object %d; a "
                        "region of one of those takes its name as label",
                        label, video, ", ".join(f"{o} {n!r}" for o, n in sorted(shown.items())), obj,
                    )  # fmt: skip
            taken.add(obj)
            objects.append(obj)
        return objects

    async def webhook(self, request: Request) -> Response:
        """Label Studio's event: an annotation becomes the session's annotation of its frame."""
        data = await self._json(request)
        action = data.get("action")
        project, task = _object(data.get("project")), _object(data.get("task"))
        element = task_name(task)
        if action in OTHER_EVENTS:  # a deleted annotation stays the session's: said; others are routine
            if action in DELETIONS:
                of = f" of {element}" if task else ""
                log.warning("webhook %s%s ignored: the session keeps the annotations it took", action, of)
            else:
                log.info("webhook %s ignored", action)
            return JSONResponse({"status": "ignored", "action": action})
        if action == BULK_EVENT:
            return await self._bulk(data, project)
        if action not in ANNOTATION_EVENTS:
            raise RequestError(400, f"webhook of {element}: unknown action {action!r}")
        job = await self._book(action, project, task, data.get("annotation"))
        if job is None:
            return JSONResponse({"status": "ignored", "action": action, "skipped": True})
        return JSONResponse({"status": "ok", "job": job}, 201)

    async def _bulk(self, data: dict[str, Any], project: dict[str, Any]) -> Response:
        """``ANNOTATIONS_CREATED``: each annotation booked as its own event; the refused ones named."""
        annotations, tasks = data.get("annotation"), data.get("task")
        if not isinstance(annotations, list) or not isinstance(tasks, list):
            raise RequestError(400, f"webhook {BULK_EVENT}: expected lists of annotations and tasks")
        by_id = {str(t.get("id")): t for t in tasks if isinstance(t, dict)}
        jobs: list[Any] = []
        refused: list[RequestError] = []
        for annotation in annotations:
            task = by_id.get(str(_object(annotation).get("task")), {})
            try:
                job = await self._book(BULK_EVENT, project, task, annotation)
            except RequestError as err:
                refused.append(err)
                continue
            if job is not None:
                jobs.append(job)
        status = 201 if jobs or not refused else refused[0].status
        reasons = [err.message for err in refused]
        return JSONResponse({"status": "ok" if jobs else "refused", "jobs": jobs, "refused": reasons}, status)

    async def _book(self, action: str, project: dict[str, Any], task: dict[str, Any], annotation: Any) -> Any:
        """Book one annotation event's annotation on its task's frame; its job, None for a skipped task.

        Raises:
            RequestError: the refusal, kept and logged (`refuse`).
        """
        element = task_name(task)
        try:
            config = await run_in_threadpool(self.projects.of_webhook, project, element)
            if not isinstance(annotation, dict) or not isinstance(annotation.get("result"), list):
                raise RequestError(400, f"webhook of {element}: holds no annotation with its result")
            if annotation.get("was_cancelled"):  # skipped: nothing said of the frame (`label import` too)
                self.last_boxes.forget(str(task.get("id")))
                log.info("webhook %s of %s ignored: the task was skipped", action, element)
                return None
            frame = self._task_frame(task, None if config is None else config.image)
            labels = () if config is None else config.labels
            task_id = str(task.get("id"))
            job = await run_in_threadpool(self._add, frame, annotation["result"], element, labels, task_id)
        except RequestError as err:
            raise self.refuse(element, f"webhook {action}", err) from err
        except (ConfigError, DataError) as err:
            raise self.refuse(element, f"webhook {action}", RequestError(422, str(err))) from err
        self.refused.pop(element, None)  # its annotation is the session's now
        self.last_boxes.forget(str(task.get("id")))
        return job

    def _add(
        self,
        frame: tuple[str, int],
        results: list[Any],
        element: str,
        labels: tuple[str, ...] = (),
        task_id: str = "",
    ) -> dict[str, Any]:
        """Book the annotation's regions on the frame and queue its propagation (`SessionService.add`).

        A region's label names its object unless it is the label the config's ``labels`` stood in
        for the object's name (`_label`). A rectangle alone, with keypoints of its object (its
        corrective clicks), goes to the box tool and is booked as a box, as the page's
        (`AnnotationSession.box_given`); among drawn regions, a rectangle is its pixels, unless its object
        has a drawn region too (then it records the box the object was drawn in); keypoints beside
        their object's drawn region made it (`annotation_regions`). An annotation
        without a region, or with `background` ones alone, says the frame holds no object (as
        `label import` reads it).
        """
        video, index = frame
        with self.service.lock:
            shown = self.service.current_mask(video, index)
            size = (shown.shape[0], shown.shape[1])
            drawn, read, negatives = self._objects_drawn(results, size, element)
            if not drawn.shapes:
                nothing = GivenAnnotation(
                    Path(f"the annotation of {element}"), size, np.zeros(size, np.uint8)
                )
                _, job = self.service.add(video, index, nothing)
                self.projects.save()
                return job.report()
            objects = self._objects(
                video,
                [(str(r.get("id", "")), s.label) for r, s in zip(read, drawn.shapes, strict=True)],
                {},
                labels,
            )
            owner = negatives_object(objects, negatives, element, self.background)
            regions = annotation_regions(drawn.shapes, read, objects)
            if regions.stray:
                raise RequestError(
                    422, f"{element}: keypoints of object {', '.join(map(str, regions.stray))} beside drawn "
                    "regions of other objects: draw its region, or submit the keypoints alone (clicks)",
                )  # fmt: skip
            drawn.shapes, read, objects, box = regions.shapes, regions.results, regions.objects, regions.box
            types = [shape.type for shape in drawn.shapes]
            names = self.service.names().get(video, {})
            known = self.service.state(video)
            new_objects = known is not None and any(obj not in known.state.objects for obj in objects)
            before = {int(k) for k in names} | (set(known.state.objects) if known is not None else set())
            clicks = tuple(
                GivenClick(obj, x, y, positive)
                for obj, shape, result in zip(objects, drawn.shapes, read, strict=True)
                for x, y, positive in keypoint_clicks(shape, result)
            )
            source = Path(f"the annotation of {element}")
            ids = None if box is not None or set(types) == {"points"} else regions_mask(drawn, size, objects)
            if ids is None:
                clicks += tuple(GivenClick(owner, x, y, False) for x, y in negatives)
            elif negatives:  # beside the region they made, as the object's other keypoints are
                regions.clicked.setdefault(owner, []).extend((x, y, False) for x, y in negatives)
            held = {c.object for c in clicks} if ids is None else set(np.unique(ids).tolist())
            held |= set() if box is None else {box}
            named = {
                obj: s.label
                for obj, s in zip(objects, drawn.shapes, strict=True)
                if s.label
                and obj in held
                and not (obj in before and self._stands_in(video, obj, s.label, names, labels))
            }
            if box is not None:
                corners = rectangle_box(drawn.shapes[types.index("box")])
                checked = GivenAnnotation(source, size, clicks=clicks).clicks if clicks else ()
                given = self.session.box_given(
                    video, index, corners, box, checked, names=named, new_objects=new_objects, current=shown
                )
                _, job = self.service.add(video, index, given, current=shown)
            else:
                masks = {} if ids is None else {obj: ids == obj for obj in held}
                boxes = self.last_boxes.drawn(task_id, frame, regions, masks)
                clicked = {
                    o: tuple(GivenClick(o, x, y, positive) for x, y, positive in made[:MAX_BOX_CLICKS])
                    for o, made in regions.clicked.items()
                    if o not in boxes
                }
                given = GivenAnnotation(
                    source,
                    size,
                    ids,
                    clicks,
                    names=named,
                    new_objects=new_objects,
                    clicked=clicked,
                    boxes=boxes,
                )
                current = shown if ids is None else self._booked_against(frame, ids, shown)
                _, job = self.service.add(video, index, given, current=current)
            self.projects.save()
        return job.report()

    def _booked_against(self, frame: tuple[str, int], ids: np.ndarray, shown: np.ndarray) -> np.ndarray:
        """The mask an annotation ``ids`` of ``frame`` is booked against (what the person corrected).

        The frame's last prediction sent, where the annotation keeps more of its objects than the current
        mask ``shown`` does: the masks may have moved on since the prediction (another frame's annotation
        propagated), and an object the person accepted as predicted is booked as looked at, not as drawn.
        Else ``shown``, the current mask as served (the saved masks are out of date while another frame's
        annotation waits for its propagation), which holds an update of the person's own annotation.
        """
        with self._served_lock:
            served = self.served.get(frame)
        if served is None or served[0] != ids.shape:
            return shown
        predicted = np.frombuffer(zlib.decompress(served[2]), served[1]).reshape(served[0])
        objects = [int(v) for v in np.unique(ids) if v != 0]
        kept = sum(accepted(ids, predicted, obj) for obj in objects)
        return predicted if kept > sum(accepted(ids, shown, obj) for obj in objects) else shown

    def _objects_drawn(
        self, results: list[Any], size: tuple[int, int], element: str
    ) -> tuple[Frame, list[dict[str, Any]], list[tuple[int, int]]]:
        """`_shapes` without the regions of the background class (`label export` writes one): no object.

        The keypoints of that class are negative clicks (``label export`` writes a session's so, and
        ``label import`` reads them so): their pixels come third. An annotation without results has no shapes.
        """
        if not results:
            return Frame(element, size, element=element), [], []
        drawn, read = _shapes(results, size, element)
        background = [k for k, shape in enumerate(drawn.shapes) if shape.label == self.background]
        negatives = [(x, y) for k in background for x, y, _ in keypoint_clicks(drawn.shapes[k], read[k])]
        kept = [k for k in range(len(drawn.shapes)) if k not in background]
        drawn.shapes = [drawn.shapes[k] for k in kept]
        return drawn, [read[k] for k in kept], negatives

    def _stands_in(
        self, video: str, obj: int, label: str, names: dict[str, str], labels: tuple[str, ...]
    ) -> bool:
        """Whether ``label`` is the config's stand-in for object ``obj``'s name (`_label`), not a new name."""
        name = names.get(str(obj), UNNAMED)
        return label != name and self._label(video, obj, name, labels, warn=False) == label


def task_name(task: dict[str, Any]) -> str:
    """What errors call a task: ``task <id>``, the id cut to 32 characters (a request may send any)."""
    task_id = str(task.get("id"))
    return f"task {task_id[:32]}…" if len(task_id) > 32 else f"task {task_id}"


def _shapes(results: list[Any], size: tuple[int, int], element: str) -> tuple[Frame, list[dict[str, Any]]]:
    """`annotation_shapes`, refused with a 422 that names the task and its result."""
    try:
        return annotation_shapes(results, size, element)
    except DataError as err:
        raise RequestError(422, err.problem) from err


def _refusal(err: RequestError) -> dict[str, Any]:
    """A refused task's prediction: no region, its model version the one-line reason (`REFUSED`).

    Label Studio stores it and shows its model version in the Data Manager's *Prediction model
    versions* column, where an error answer would only be logged as ``422 Client Error``.
    """
    return {"result": [], "score": 0.0, "model_version": REFUSED + err.message}


def _object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def create_ml_backend(
    service: SessionService, *, token: str | None = None, max_upload: int = 64 << 20
) -> Starlette:
    """The Starlette app of the ML backend over ``service`` (see `MLBackendApp`)."""
    app = MLBackendApp(service, token=token, max_upload=max_upload)
    return Starlette(routes=app.routes(), exception_handlers=JSON_ERRORS, lifespan=service.lifespan)
