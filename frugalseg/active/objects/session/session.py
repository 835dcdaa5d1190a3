"""The annotation loop for a real person, on videos without ground truth (``annotate propose`` / ``add``).

The person asks what to annotate next (`AnnotationSession.propose`: a video, a frame, the objects on
it and the annotation type, chosen by a weight-free frame selector and a type policy that need no
ground truth, `proposals`), annotates it in any tool, and hands the result back
(`AnnotationSession.add` of a `given.GivenAnnotation`): a mask of object ids (or of one object) or
clicks, with which the click model corrects the current masks (`annotate_given_clicks`). Each
addition joins the video's annotated set, every frame's mask is propagated again, and the loop
state is saved as `annotate simulate` saves it (`state.VideoState`: atomic files, ``state.json``
written last), so the current masks of every frame are always in ``<video>/masks/``.

Folder of a session::

    session.json    the data set and engine settings; a later call naming other ones is refused
    <video>/        the loop state of each video annotated so far (state.json, annotated/, masks/)

`AnnotationSession.export` (``annotate export``) writes the current masks of every annotated video
to a label store that ``VideoSegDataModule`` trains from (``labels.pseudo:`` the store).

The first annotation of a video that holds objects declares them (the ids it holds; an empty one
before it declares none); later ones may only name those, unless ``new_objects`` declares the ids
that first appear on their frame (MOSE). An object
is never propagated before the first frame it was annotated on. Frames are named by their index
in the sequence, as the person sees them (DAVIS's ``00012.jpg`` is frame 12), whatever the stride.

Everything is checked before anything is written: the video and its frames (each whole and of the
first frame's size, `AnnotationSession.check_frames`), the frame index, the annotation
(`GivenAnnotation`, checked when made: a mask of the frame's size, clicks as described in
`given.read_clicks`) and its objects (known ones); a refused addition leaves every file as it was.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from frugalseg.active.objects.labels import video_labels
from frugalseg.active.objects.session.given import (
    DrawnBox,
    GivenAnnotation,
    annotation_result,
    book,
    check_drawn_box,
    check_objects,
    read_mask,
)
from frugalseg.active.objects.session.late_objects import propagate_with_late_objects
from frugalseg.active.objects.session.locks import video_lock
from frugalseg.active.objects.session.proposals import Candidate, Proposal, ProposalOptions, next_annotation
from frugalseg.active.objects.session.session_settings import (
    FAMILIES,
    SESSION_FILE,
    SessionSettings,
    new_settings,
    saved_settings,
)
from frugalseg.active.objects.session.videos import SessionVideo
from frugalseg.active.objects.simulation.annotation_types import GivenClick
from frugalseg.active.objects.state import STATE_FILE, IterationRecord, VideoState, check_missing_state
from frugalseg.active.objects.tools.grabcut import Box, Click
from frugalseg.active.objects.tools.graph_cut import ObjectPrior
from frugalseg.active.propagation import FrameReady
from frugalseg.active.run_folder import write_loop_labels
from frugalseg.autolabel.store import differences
from frugalseg.data.clips import IGNORE_INDEX, Clip
from frugalseg.data.costs import AnnotationCosts
from frugalseg.data.formats import get_format
from frugalseg.data.formats.davis import DavisFormat
from frugalseg.data.io import image_size, read_frame, read_json_object, write_json_atomic
from frugalseg.errors import ConfigError, DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Addition:
    """What `AnnotationSession.add` recorded.

    Attributes:
        video: the video's name.
        frame: the frame's index in the sequence.
        objects: the objects annotated (none when the mask showed none).
        record: the iteration's record (the human seconds it cost and the ledger's total).
        annotated_frames: frames of the video annotated so far.
        num_frames: frames of the video in the loop.
        masks: the folder of the current mask of every frame.
        changed: for clicks, each clicked object's pixels gained and lost against the mask they corrected
            (a click the model could not act on changes none but its own); empty for a mask.
    """

    video: str
    frame: int
    objects: list[int]
    record: IterationRecord
    annotated_frames: int
    num_frames: int
    masks: Path
    changed: dict[int, tuple[int, int]] = field(default_factory=dict)


class AnnotationSession:
    """The annotation loop of a real person over the videos of one split (see the module docstring).

    Args:
        folder: the session's folder.
        settings: what it annotates and how.
    """

    def __init__(self, folder: str | Path, settings: SessionSettings) -> None:
        self.folder = Path(folder)
        self.settings = settings
        self.costs = AnnotationCosts(**settings.costs)
        fmt = get_format(settings.format, settings.root)
        if not isinstance(fmt, DavisFormat):
            raise ConfigError("format", f"the annotation loop reads DAVIS-style videos, not {fmt.name!r}")
        self.format = fmt
        self.engine = settings.build_engine()
        self.click_model = settings.build_click_model()
        self._caches: dict[str, Any] = {}
        self._checked: set[str] = set()
        self._unsaved = not (self.folder / SESSION_FILE).is_file()  # its settings not checked against a file
        #: Video → why its masks could not be propagated for the last export (`export_states`).
        self.unpropagated: dict[str, str] = {}

    @classmethod
    def open(
        cls,
        folder: str | Path,
        *,
        engine: str | None = None,
        click_model: str | None = None,
        options: Mapping[str, Any] | None = None,
        **given: Any,
    ) -> AnnotationSession:
        """The session in ``folder``, or a new one (not written until its first addition).

        Args:
            folder: the session's folder.
            engine: the propagation engine's name (None: the saved one, or ``flow``).
            click_model: the click-to-mask model's name (None: the saved one, or `DEFAULT_CLICK_MODEL`).
            options: option values by ``<member>_<field>`` (``sam2_checkpoint``, ``flow_preset``: the
                command line's flags); those of the chosen engine and click model are read.
            **given: the other `SessionSettings` fields named by the caller (None: not named). A
                saved session takes the saved values and refuses others; a new one needs ``root``.

        Raises:
            ConfigError: settings that differ from the saved ones, a new session without ``root``,
                a folder that holds something else, or a bad stride or frame count.
            DataError: a damaged ``session.json`` or a data set that cannot be read.
        """
        folder = Path(folder)
        flags = {k: v for k, v in (options or {}).items() if v is not None}
        given = {k: v for k, v in given.items() if v is not None}
        unknown = set(given) - (set(SessionSettings.__dataclass_fields__) - set(FAMILIES))
        if unknown:
            raise TypeError(f"unknown session settings {sorted(unknown)}")
        if "root" in given:
            given["root"] = str(Path(given["root"]).resolve())
        names = {"engine": engine, "click_model": click_model}
        if (folder / SESSION_FILE).is_file():
            return cls(folder, saved_settings(folder, given, names, flags))
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise ConfigError(
                "state", f"{folder} exists and is not an annotation session; use a new or empty folder"
            )
        return cls(folder, new_settings(folder, given, names, flags))

    def videos(self) -> list[str]:
        """The names of the split's videos, in order."""
        return self.format.sequences(self.settings.split)

    def check_frames(self, video: str | None = None) -> None:
        """Refuse, once, a video whose frames are damaged, of two sizes or not those its state was made on.

        What is checked: `SessionVideo.check`, and `SessionVideo.check_state` for a saved state.

        Args:
            video: the video to check (None: every video of the split, as ``annotate serve`` does first).

        Raises:
            ConfigError: an unknown video.
            DataError: naming the first frame that is truncated, unreadable or of another size, or the
                video's folder when frames were added or removed since its state was saved.
        """
        for name in [video] if video is not None else self.videos():
            if name not in self._checked:
                self._video(name).check()
                self.saved_state(name, masks=False)
                self._checked.add(name)

    def _video(self, name: str) -> SessionVideo:
        names = self.videos()
        if name not in names:
            raise ConfigError(
                "video", f"no video {name!r} in split {self.settings.split!r}; videos: {', '.join(names)}"
            )
        paths = self.format.numbered_frame_paths(name)
        limit = self.settings.max_frames
        horizon = len(paths) if limit is None else min(len(paths), limit)
        indices = list(range(0, horizon, self.settings.stride))
        return SessionVideo(name, [paths[i] for i in indices], indices, paths)

    @property
    def _config(self) -> dict[str, Any]:
        """What a video's state records (a state made by another session or loop is refused)."""
        return {"session": json.loads(json.dumps(asdict(self.settings)))}

    def state(self, name: str) -> VideoState | None:
        """The saved state of video ``name`` with whole current masks, or None before its first annotation."""
        saved = self.saved_state(name)
        if saved is None:
            return None
        state, current = saved
        if not current:  # killed while it wrote the masks, or saved before propagating: recompute (not saved)
            self._propagate(state, self._video(name).load())
        return state

    def annotated_state(self, name: str, *, masks: bool = True) -> VideoState | None:
        """The saved state of video ``name`` for its annotations (its masks may be out of date), or None.

        ``masks=False`` leaves its current masks unread (``masks`` empty): a preview needs the annotations
        alone, and reading a 50-frame video's masks had cost it 0.09 s of its 0.2 s.
        """
        saved = self.saved_state(name, masks=masks)
        return saved[0] if saved is not None else None

    def saved_state(self, name: str, *, masks: bool = True) -> tuple[VideoState, bool] | None:
        """The saved state of video ``name`` and whether its current masks match its annotations.

        They do not when a run was killed while it wrote them, or when an addition was saved before
        propagating (`add_given` with ``propagate=False``), or when ``masks`` is False (not read):
        `finish` recomputes and saves them. None before the video's first annotation.
        """
        video = self._video(name)
        folder = self.folder / video.name
        if not (folder / STATE_FILE).is_file():
            check_missing_state(folder)
            return None
        state, whole = VideoState.load(folder, masks=masks)
        if state.config != self._config:
            raise ConfigError(
                "state", f"{folder}: holds a loop of other settings ({state.config}); use another folder"
            )
        video.check_state(state, folder / STATE_FILE)
        return state, whole and len(state.masks) == state.num_frames

    def finish(self, name: str, on_frame: FrameReady | None = None) -> VideoState | None:
        """Propagate and save video ``name`` if its saved masks are out of date; its state (or None).

        ``on_frame`` is called with each loop frame's index, mask, disagreement and unsure share as
        soon as the engine has it (`LoopEngine.propagate`), nearest the newest annotations first.
        """
        if not (self.folder / SESSION_FILE).is_file():  # a new session: nothing to finish, lock or make
            return None
        with self._writing(name):
            saved = self.saved_state(name)
            if saved is None:
                return None
            state, current = saved
            if not current:
                self._propagate(state, self._video(name).load(), on_frame)
                state.save(self.folder / name)
            return state

    def _writing(self, video: str) -> contextlib.AbstractContextManager[None]:
        """Hold video ``video``'s lock while its state is read, changed and saved (`video_lock`).

        One writer at a time across processes, so ``annotate add`` and the annotation page take turns
        on a video (the other waits) while other videos stay free.
        """
        return video_lock(self.folder, video, self.folder / SESSION_FILE)

    def current_mask(self, name: str, frame: int) -> np.ndarray | None:
        """The current object-id mask of sequence frame ``frame`` of video ``name``, or None before any."""
        state = self.state(name)
        if state is None or not state.masks:
            return None
        return state.masks[self._video(name).loop_index(frame)]

    def _propagate(
        self, state: VideoState, frames: list[np.ndarray], on_frame: FrameReady | None = None
    ) -> None:
        """Propagate ``state``'s annotated set, reusing what this session computed before on the video.

        The engine's cache (`LoopEngine.new_cache`) changes no mask, only the work: a long-lived
        session (the annotation page) propagates from the new annotation alone.
        """
        cache = self._caches.setdefault(state.video, self.engine.new_cache())
        late, known = state.late_objects, state.annotated
        result = propagate_with_late_objects(
            self.engine, frames, known, late=late, first_frames=state.objects, cache=cache, on_frame=on_frame
        )
        state.masks, state.disagreement, state.unsure = result.masks, result.disagreement, result.unsure

    def propose(
        self,
        options: ProposalOptions | None = None,
        *,
        video: str | None = None,
        states: Mapping[str, VideoState] | None = None,
    ) -> Proposal | None:
        """The next annotation to make, or None when every frame of every video is annotated.

        A video not annotated yet comes first (its first frame, drawn as a mask). Among the others,
        each video's next frame is the selector's choice and its type the policy's, and the video
        whose next annotation is expected to gain the most J&F per human second is proposed, so the
        next hour goes where it helps most: the expected gain is the learned policy's prediction
        (``types="learned"``) or else the fitted error model's expected rise of the video's mean J&F
        (`expected_jf_gain`) times the video's objects, its weight in the mean over a data set's
        objects (ties: the video with the fewest human seconds per frame so far, then the first).
        Ranking by the chosen frame's doubted share instead made a replay of the development clips'
        loops no faster than random frames (`benchmarks/results/annotation_loop.md`). A person's
        annotation is final, clicks and boxes too: a person clicks until the mask looks right, so the
        session never proposes an annotated frame again, even to a selector that ``replaces`` (a loop
        of the simulated annotator does; proposing clicked frames again cost a scripted person on the
        page five more frames, `benchmarks/results/page_person.md`).

        Args:
            options: the frame selector, type policy and what they read (None: the defaults).
            video: propose on this video only (None: any).
            states: video → the state to use instead of the saved one (a video being propagated:
                what is known of it so far).

        Raises:
            ConfigError: an unknown video, selector or policy, or one that needs ground truth.
            WeightsError: a ``policy`` file that is missing or not a type policy.
            DataError: a split without videos, or a video's frame that is truncated, unreadable or of
                another size than its first (`check_frames`, or decoded to propagate).
        """
        selector, chooser = (options or ProposalOptions()).build()
        names = [self._video(video).name] if video is not None else self.videos()
        if not names:
            raise DataError(
                self.format.image_dir, f"holds no videos (split {self.settings.split!r}): nothing to annotate"
            )
        candidates: list[Candidate] = []
        for name in names:
            state = (states or {}).get(name) or self.state(name)
            source = self._video(name)
            if state is None:
                self.check_frames(name)
                return source.first_proposal()
            if not state.done:
                candidates.append(
                    next_annotation(
                        state,
                        source.frame_paths,
                        source.indices,
                        selector,
                        chooser,
                        self.costs,
                        source.load,
                        read_frame,
                    )  # fmt: skip
                )
        if not candidates:
            return None
        best = max(
            range(len(candidates)),
            key=lambda i: (candidates[i].gain_per_second, -candidates[i].per_frame, -i),
        )
        return candidates[best].proposal

    def export_config(self, states: Mapping[str, VideoState] | None = None) -> dict[str, Any]:
        """The ``run.json`` of an export of the session as it stands (equal configs: equal stores).

        ``states``: those of `export_states` (None: read them). The videos exported unpropagated are
        named (``settings.unpropagated``), so a later export of their propagated masks is another store.

        Raises:
            ConfigError: no video has been annotated yet.
        """
        states = self.export_states() if states is None else states
        unpropagated = sorted(name for name in states if name in self.unpropagated)
        return {
            "engine": "annotation-session",
            "settings": {
                "session": json.loads(json.dumps(asdict(self.settings))),
                "annotations": {name: len(state.annotations) for name, state in states.items()},
                **({"unpropagated": unpropagated} if unpropagated else {}),
            },
            "split": self.settings.split,
            # what `label export --store` names each object by (`interop.stored_frames.with_object_names`)
            "object_names": {
                name: {str(obj): text for obj, text in sorted(state.names.items())}
                for name, state in states.items()
                if state.names
            },
            **self.format.describe(),
        }

    def export_states(self) -> dict[str, VideoState]:
        """The state of every annotated video as an export takes it.

        A video whose out-of-date masks cannot be propagated (a frame that cannot be read, an engine that
        fails) keeps what was annotated: its annotated frames' masks (zeros elsewhere, never exported,
        `export`), and `unpropagated` says why.

        Raises:
            ConfigError: no video has been annotated yet.
        """
        states: dict[str, VideoState] = {}
        for name in self.videos():
            self.unpropagated.pop(name, None)
            try:
                state = self.state(name)
            except Exception as err:  # what was annotated is saved and stays exportable
                saved = self.saved_state(name, masks=False)
                if saved is None:
                    raise
                state = saved[0]
                shape = next(iter(state.annotated.values())).shape
                state.masks = [
                    state.annotated.get(t, np.zeros(shape, np.uint8)) for t in range(state.num_frames)
                ]
                self.unpropagated[name] = (
                    str(err) if isinstance(err, DataError) else f"{type(err).__name__}: {err}"
                )
            if state is not None:
                states[name] = state
        if not states:
            raise ConfigError("state", f"{self.folder}: no video annotated yet, nothing to export")
        return states

    def export(self, out: str | Path) -> int:
        """Write the current masks of every annotated video to the label store ``out``; how many were written.

        Drawn frames are ``fine`` labels, the others ``pseudo``, and a person's clicks and boxes
        ``clicks`` and ``boxes`` labels beside them (`labels.video_labels`: the format's two classes,
        each label's object ids beside it as its ``_instanceIds.png``). A video whose masks cannot be
        propagated (`unpropagated`) is exported as far as it was annotated: its annotated frames alone.
        The store's run records how many annotations each video had
        (`export_config`), so a later export after more additions is refused there (labels in a store
        are never rewritten): export to a new folder. An export into the same folder with nothing
        added writes nothing. Only the videos' frames are read, never the data set's own masks.
        `exports.export_with_tools` (the page's Export, ``annotate export``) adds the tool files.

        Raises:
            ConfigError: no video has been annotated yet, or ``out`` holds an export of another
                session or of this one before other additions (the settings that differ named).
            LabelStoreError: ``out`` holds a store of another run.
        """
        states = self.export_states()
        config = self.export_config(states)
        self._check_store(Path(out), config)
        written = 0
        for name, state in states.items():
            clip = Clip(
                clip_id=name,
                split=self.settings.split,
                frames=list(self.format.numbered_frame_paths(name)),
                anchor_index=0,
            )
            indices = self._video(name).indices
            labels = video_labels(clip, indices, state, object_ids=True)
            if name in self.unpropagated:
                annotated = {indices[t] for t in state.annotated}
                labels = (label for label in labels if label.offset in annotated)
            written += write_loop_labels(
                Path(out), clip, config, labels, engine=config["engine"], settings=config["settings"]
            )
        return written

    @staticmethod
    def _check_store(out: Path, config: dict[str, Any]) -> None:
        """`ConfigError` when ``out`` holds another export of a session (the settings that differ named)."""
        from frugalseg.autolabel.store import RUN_FILE

        path = out / RUN_FILE
        if not path.is_file():
            return
        held = read_json_object(path, "a label store's run record")
        if held.get("engine") != config["engine"]:
            return  # another engine's store: `LabelStore.run` names it
        differing = [
            key or "the whole record" for key, _, _ in differences(held, json.loads(json.dumps(config)))
        ]
        if differing:
            listed = ", ".join(differing[:4]) + (
                f" and {len(differing) - 4} more" if len(differing) > 4 else ""
            )
            raise ConfigError(
                "out",
                f"{out} holds an export of another session or of this one before other additions "
                f"({listed} {'differs' if len(differing) == 1 else 'differ'}); export to a new folder",
            )

    def frame_shape(self, video: str, frame: int) -> tuple[Path, tuple[int, int]]:
        """Frame ``frame``'s file and (height, width): what a `GivenAnnotation` of it is checked against.

        Raises:
            ConfigError: an unknown video or a frame the session does not use.
        """
        source = self._video(video)
        path = source.frame_paths[source.loop_index(frame)]
        width, height = image_size(path)
        return path, (height, width)

    def read_given(
        self,
        video: str,
        frame: int,
        *,
        mask: str | Path | None = None,
        clicks: str | Path | None = None,
        object_id: int | None = None,
        names: Mapping[int, str] | None = None,
        new_objects: bool = False,
    ) -> GivenAnnotation:
        """A person's mask PNG or clicks JSON for ``frame`` of ``video``, read and checked when made.

        Args:
            video: the video's name.
            frame: the frame's index in the sequence.
            mask: a PNG of object ids (palette or grey; 0 background, 255 void; a 0/255 grey PNG is
                object 1), or of one object when ``object_id`` is given (every non-zero pixel).
            clicks: a JSON file of clicks (`given.read_clicks`); give either ``mask`` or ``clicks``.
            object_id: the object a one-object ``mask`` shows.
            names: object id → its class name ("horse and rider"), for objects of this annotation.
            new_objects: accept ids not annotated before: objects that first appear on this frame.

        Raises:
            ConfigError: an unknown video, a frame the session does not use, not exactly one of
                ``mask`` and ``clicks``, or a bad name.
            DataError: naming the file, when it cannot be read, is of another size than the frame
                or is not of the form described.
        """
        path, shape = self.frame_shape(video, frame)
        return GivenAnnotation.read(
            path, shape, mask=mask, clicks=clicks, object_id=object_id, names=names, new_objects=new_objects
        )

    def add(
        self,
        video: str,
        frame: int,
        given: GivenAnnotation,
        *,
        propagate: bool = True,
        current: np.ndarray | None = None,
        on_frame: FrameReady | None = None,
    ) -> Addition:
        """Add what a person gave on ``frame`` of ``video``, propagate again, and save the state.

        Args:
            video: the video's name.
            frame: the frame's index in the sequence.
            given: the annotation, checked when made (`given`, or built by the page or the ML backend).
            propagate: propagate and save the masks now; False saves the annotation with masks marked
                out of date (so nothing is lost if the process dies), and `finish` propagates.
            current: the mask the clicks correct (None: the frame's saved mask; the page passes the
                one it shows, which may be newer while the video propagates).
            on_frame: told of each frame propagated (`finish`'s), as the command line's bar is.

        Raises:
            ConfigError: an unknown video or a frame the session does not use.
            DataError: naming the annotation's source, one of another size than the frame, an
                unknown object or a ``current`` mask of another size; or naming a frame of the video
                that is truncated, unreadable or of another size than its first (`check_frames`).
        """
        source = self._video(video)
        t = source.loop_index(frame)
        self.check_frames(source.name)
        _, shape = self.frame_shape(video, frame)
        if given.shape != shape:
            raise DataError(given.source, f"made for a frame of {given.shape}, the frame is {shape}")
        if current is not None and current.shape != shape:
            raise DataError(given.source, f"the mask corrected is {current.shape}, the frame {shape}")
        with self._writing(source.name):
            if self._unsaved and (self.folder / SESSION_FILE).is_file():  # another started it meanwhile
                saved = json.loads((self.folder / SESSION_FILE).read_text(encoding="utf-8"))
                if saved != json.loads(json.dumps(asdict(self.settings))):
                    raise ConfigError(
                        "state", f"{self.folder} was started meanwhile with other settings: open it again"
                    )
                self._unsaved = False
            if propagate:
                state = self.state(video)
            else:  # saved with its masks out of date: `finish` propagates, not this call
                state = self.annotated_state(video, masks=current is None)
            if state is not None and given.white_on_black and len(state.objects) > 1:
                listed = ", ".join(map(str, sorted(state.objects)))
                raise DataError(
                    given.source,
                    f"a black-and-white mask of one object, and video {video!r} has objects {listed}: "
                    "name the object it shows with --object ID",
                )
            if state is not None and state.objects and not given.new_objects:
                one_mask = given.ids is not None and given.object_id is None
                check_objects(given.source, given.objects, state.objects, video, mask=one_mask)
            image = source.frame(t)
            if state is None:
                frames = len(source.frame_paths)
                numbers = source.indices if self.settings.stride > 1 else []
                state = VideoState(
                    video, frames, {}, config=self._config, numbers=numbers, frame_names=source.frame_names()
                )
            if current is None:
                current = state.masks[t] if state.masks else np.zeros(shape, np.uint8)
            known = self._video_priors(source, state, t, current, given)
            result, kinds = annotation_result(given, image, current, self.costs, self.click_model, known)
            record = book(state, t, result, kinds, given)
            if propagate:
                self._propagate(state, source.load(), on_frame)
            else:
                state.masks = []
            state.history.append(record)
            if not (self.folder / SESSION_FILE).is_file():
                write_json_atomic(self.folder / SESSION_FILE, asdict(self.settings), indent=2)
                self._unsaved = False
            state.save(self.folder / video)
            changed = {
                obj: (
                    int(np.count_nonzero((result.mask == obj) & (current != obj))),
                    int(np.count_nonzero((current == obj) & (result.mask != obj))),
                )
                for obj in sorted({click.object for click in given.clicks})
            }
            objects = [obj for obj in sorted(result.seconds) if obj]
            annotated, masks = len(state.annotated), self.folder / video / "masks"
            return Addition(video, frame, objects, record, annotated, state.num_frames, masks, changed)

    def preview(
        self, video: str, frame: int, given: GivenAnnotation, current: np.ndarray | None = None
    ) -> np.ndarray:
        """The mask ``given``'s clicks make of the frame's mask (what adding them would do); nothing saved.

        Args:
            video: the video's name.
            frame: the frame's index in the sequence.
            given: the clicks so far.
            current: the mask they correct (None: the frame's current mask, or none before the
                video's first annotation).

        Raises:
            ConfigError: an unknown video or frame.
            DataError: an annotation or a ``current`` mask of another size than the frame.
        """
        source = self._video(video)
        t = source.loop_index(frame)
        image = source.frame(t)
        shape = image.shape[:2]
        if given.shape != shape:
            raise DataError(given.source, f"made for a frame of {given.shape}, the frame is {shape}")
        if current is None:
            state = self.state(video)
            current = state.masks[t] if state is not None else np.zeros(shape, np.uint8)
        else:
            if current.shape != shape:
                raise DataError(given.source, f"the mask corrected is {current.shape}, the frame {shape}")
            state = self.annotated_state(video, masks=False)  # no propagation while one runs elsewhere
        known = self._video_priors(source, state, t, current, given)
        return annotation_result(given, image, current, self.costs, self.click_model, known)[0].mask

    def box_preview(
        self, video: str, frame: int, box: Box, clicks: Sequence[Click] = (), obj: int | None = None
    ) -> np.ndarray:
        """The click model's mask (bool) of one object from a box and the clicks since it; nothing saved.

        The box and its corrective clicks draw the object from nothing, so object ``obj`` brings its
        colours from its mask on the nearest annotated frame (`video_priors`), as clicks that start an
        object do: the box's first guess starts from the pixels that look like it. Every click sees how
        the frame moves.

        Args:
            video: the video's name.
            frame: the frame's index in the sequence.
            box: (x0, y0, x1, y1), corners included.
            clicks: the corrective clicks since the box, in pixels.
            obj: the object's id (None: no colours from other frames).

        Raises:
            ConfigError: an unknown video or frame, a box too small or clicks outside it (`check_drawn_box`).
        """
        check_drawn_box(box, clicks)
        source = self._video(video)
        t = source.loop_index(frame)
        image = source.frame(t)
        known = None
        if obj is not None:  # no need to wait for current masks
            nothing = np.zeros(image.shape[:2], np.uint8)
            known = source.priors(self.annotated_state(video, masks=False), t, nothing, [obj]).get(obj)
        elif clicks:  # an object not named: no colours of it yet, the frame's motion
            neighbour = source.neighbour(t, image.shape[:2])
            known = None if neighbour is None else ObjectPrior(neighbour=neighbour)
        return self.click_model.box(image, box, clicks, known=known)

    def box_given(
        self,
        video: str,
        frame: int,
        box: Box,
        obj: int,
        clicks: Sequence[GivenClick] = (),
        *,
        names: Mapping[int, str] | None = None,
        new_objects: bool = False,
        current: np.ndarray | None = None,
    ) -> GivenAnnotation:
        """The frame's annotation with object ``obj`` drawn from a box and the clicks since it.

        What the page's box tool submits: the click model's mask of the object (`box_preview`) in place
        of the object on the frame's current mask, every other object kept, and the box (in pixel edges)
        and its click count booked with it.

        Args:
            video: the video's name.
            frame: the frame's index in the sequence.
            box: (x0, y0, x1, y1) inside the frame, corners included.
            obj: the object's id.
            clicks: the corrective clicks since the box, all of object ``obj``.
            names: object id → its class name, for objects of this annotation.
            new_objects: accept ids not annotated before: objects that first appear on this frame.
            current: the frame's mask as the person saw it (a server's, whose saved masks may be out of
                date); None reads the session's current mask.

        Raises:
            ConfigError: an unknown video or frame, a box too small or clicks outside it (`check_drawn_box`),
                or clicks of another object.
        """
        path, (height, width) = self.frame_shape(video, frame)
        others = sorted({click.object for click in clicks} - {obj})
        if others:
            raise ConfigError(
                "clicks", f"clicks of object {others[0]}: a box's clicks are its object's ({obj})"
            )
        drawn = self.box_preview(video, frame, box, clicks, obj)
        current = self.current_mask(video, frame) if current is None else current
        ids = np.zeros((height, width), np.uint8)
        if current is not None:
            ids = np.where((current == IGNORE_INDEX) | (current == obj), 0, current).astype(np.uint8)
        ids[drawn] = obj
        points = tuple((click.x, click.y, click.positive) for click in clicks)
        edges = DrawnBox(box[0], box[1], box[2] + 1, box[3] + 1, len(clicks), points)
        source = Path(f"the box {','.join(map(str, box))} on {path.name}")
        return GivenAnnotation(
            source,
            (height, width),
            ids=ids,
            boxes={obj: edges},
            names=dict(names or {}),
            new_objects=new_objects,
        )

    @staticmethod
    def _video_priors(
        source: SessionVideo, state: VideoState | None, t: int, current: np.ndarray, given: GivenAnnotation
    ) -> dict[int, ObjectPrior]:
        """`video_priors` of the objects ``given`` clicks on (loop frame ``t`` of ``source``)."""
        if given.ids is not None:
            return {}
        return source.priors(state, t, current, sorted({click.object for click in given.clicks}))

    def check_state_frames(self, video: str, state: VideoState) -> None:
        """Refuse ``state`` of ``video`` once the folder's frames are not those it was made on.

        The page serves a state it holds: a frame removed under it had shown the next frame's image under
        the removed frame's mask (`SessionVideo.check_state` names the change).
        """
        self._video(video).check_state(state, self.folder / video / STATE_FILE)

    def frames(self, video: str) -> list[int]:
        """The sequence indices of the frames of ``video`` the session uses (its loop frames, in order)."""
        return list(self._video(video).indices)

    def frame_image(self, video: str, frame: int) -> np.ndarray:
        """Frame ``frame`` (sequence index) of ``video``, H×W×3 uint8 RGB."""
        source = self._video(video)
        return source.frame(source.loop_index(frame))

    def prepare_frame(self, video: str, frame: int) -> None:
        """Ready the click model for frame ``frame`` of ``video`` (`ClickToMask.prepare`): it was opened."""
        self.click_model.prepare(self.frame_image(video, frame))

    def read_mask(self, video: str, frame: int, path: str | Path) -> np.ndarray:
        """The object ids of a mask PNG for a frame (void → 0), checked as `add` checks its ``mask``."""
        source = self._video(video)
        t = source.loop_index(frame)
        width, height = image_size(source.frame_paths[t])
        return read_mask(Path(path), (height, width), source.frame_paths[t])
