"""The annotation loop for a real person, on videos without ground truth (``annotate propose`` / ``add``).

The person asks what to annotate next (`AnnotationSession.propose`: a video, a frame, the objects on
it and the annotation type, chosen by a weight-free frame selector and a type policy that need no
ground truth), annotates it in any tool, and hands the result back (`AnnotationSession.add`): a
mask PNG of object ids (or, with ``object_id``, the mask of one object) or a JSON file of clicks,
with which GrabCut corrects the current masks near the clicks (`annotate_given_clicks`). Each
addition joins the video's annotated set, every frame's mask is propagated again, and the loop
state is saved as `annotate simulate` saves it (`state.VideoState`: atomic files, ``state.json``
written last), so the current masks of every frame are always in ``<video>/masks/``.

Folder of a session::

    session.json    the data set and engine settings; a later call naming other ones is refused
    <video>/        the loop state of each video annotated so far (state.json, annotated/, masks/)

`AnnotationSession.export` (``annotate export``) writes the current masks of every annotated video
to a label store that ``VideoSegDataModule`` trains from (``pseudo_labels=`` the store).

The first annotation of a video declares its objects (the ids it holds); later ones may only name
those, unless ``new_objects`` declares the ids that first appear on their frame (MOSE). An object
is never propagated before the first frame it was annotated on. Frames are named by their index
in the sequence, as the person sees them (DAVIS's ``00012.jpg`` is frame 12), whatever the stride.

Everything is checked before anything is written: the video, the frame index, the file (a mask of
the frame's size and of known objects; clicks as described in `given.read_clicks`); a refused addition
leaves every file as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frugalseg.active.objects.annotation_types import (
    VOID,
    AnnotationResult,
    GivenClick,
    annotate_given_clicks,
)
from frugalseg.active.objects.diversity_features import make_diversity_features
from frugalseg.active.objects.frame_selectors import (
    PROPOSAL_SELECTOR,
    FrameSelector,
    SelectionView,
    expected_jf_gain,
    make_selector,
)
from frugalseg.active.objects.given import (
    DrawnBox,
    Made,
    check_objects,
    given_made,
    read_made,
    read_mask,
)
from frugalseg.active.objects.labels import write_video_labels
from frugalseg.active.objects.session_settings import (
    FAMILIES,
    SESSION_FILE,
    SessionSettings,
    new_settings,
    saved_settings,
)
from frugalseg.active.objects.state import STATE_FILE, Annotation, IterationRecord, VideoState
from frugalseg.active.objects.type_policies import (
    LearnedTypePolicy,
    TypePolicy,
    TypeView,
    make_policy,
    type_context,
    type_seconds,
)
from frugalseg.active.propagation import FrameReady, unreliability
from frugalseg.data.clips import Clip
from frugalseg.data.costs import AnnotationCosts
from frugalseg.data.formats import get_format
from frugalseg.data.formats.davis import DavisFormat
from frugalseg.data.io import image_size, read_frame, write_json_atomic
from frugalseg.errors import ConfigError, DataError


@dataclass(frozen=True)
class Proposal:
    """The next annotation to make: a frame of a video, the objects on it, and the type.

    Attributes:
        video: the video's name.
        frame: the frame's index in the sequence.
        frame_path: the frame's file.
        objects: the known objects that have appeared by this frame (empty on a video's first
            annotation: draw every object, which declares them).
        kind: the annotation type, ``mask``, ``clicks`` or ``box``.
        reason: why this video and frame, in words.
        provisional: made while a video still propagated, from what was known of it then (the
            choice the whole clip gives may differ).
    """

    video: str
    frame: int
    frame_path: str
    objects: list[int]
    kind: str
    reason: str
    provisional: bool = False


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
    """

    video: str
    frame: int
    objects: list[int]
    record: IterationRecord
    annotated_frames: int
    num_frames: int
    masks: Path


@dataclass(frozen=True)
class _Next:
    """A started video's next annotation, its expected J&F gain per second, and its seconds per frame."""

    proposal: Proposal
    gain_per_second: float
    per_frame: float


@dataclass
class _Video:
    """A video of the session: its name, the frame files the loop uses and their sequence indices."""

    name: str
    frame_paths: list[Path]
    indices: list[int]

    def loop_index(self, frame: int) -> int:
        """The loop's index of sequence frame ``frame``; `ConfigError` when the loop does not use it."""
        if frame in self.indices:
            return self.indices.index(frame)
        stride = self.indices[1] - self.indices[0] if len(self.indices) > 1 else 1
        used = f"{self.indices[0]}…{self.indices[-1]}" + (f" every {stride}" if stride > 1 else "")
        raise ConfigError(
            "frame",
            f"{frame} is out of range: video {self.name!r} ({self.frame_paths[0].parent}) has frames {used} "
            "in this session",
        )

    def first_proposal(self) -> Proposal:
        """The first annotation of the video: its first frame, drawn as a mask."""
        return Proposal(
            self.name, self.indices[0], str(self.frame_paths[0]), [], "mask", "first annotation of the video"
        )

    def load(self) -> list[np.ndarray]:
        """The frames the loop uses, H×W×3 uint8 RGB."""
        return [read_frame(path) for path in self.frame_paths]


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
            click_model: the click-to-mask model's name (None: the saved one, or ``grabcut``).
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

    def _video(self, name: str) -> _Video:
        names = self.videos()
        if name not in names:
            raise ConfigError(
                "video", f"no video {name!r} in split {self.settings.split!r}; videos: {', '.join(names)}"
            )
        paths = self.format.numbered_frame_paths(name)
        limit = self.settings.max_frames
        horizon = len(paths) if limit is None else min(len(paths), limit)
        indices = list(range(0, horizon, self.settings.stride))
        return _Video(name, [paths[i] for i in indices], indices)

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

    def saved_state(self, name: str) -> tuple[VideoState, bool] | None:
        """The saved state of video ``name`` and whether its current masks match its annotations.

        They do not when a run was killed while it wrote them, or when an addition was saved before
        propagating (`add_given` with ``propagate=False``): `finish` recomputes and saves them.
        None before the video's first annotation.
        """
        folder = self.folder / self._video(name).name
        if not (folder / STATE_FILE).is_file():
            return None
        state, whole = VideoState.load(folder)
        if state.config != self._config:
            raise ConfigError(
                "state", f"{folder}: holds a loop of other settings ({state.config}); use another folder"
            )
        return state, whole and len(state.masks) == state.num_frames

    def finish(self, name: str, on_frame: FrameReady | None = None) -> VideoState | None:
        """Propagate and save video ``name`` if its saved masks are out of date; its state (or None).

        ``on_frame`` is called with each loop frame's index, mask, disagreement and unsure share as
        soon as the engine has it (`LoopEngine.propagate`), nearest the newest annotations first.
        """
        with self._writing(name):
            saved = self.saved_state(name)
            if saved is None:
                return None
            state, current = saved
            if not current:
                self._propagate(state, self._video(name).load(), on_frame)
                state.save(self.folder / name)
            return state

    @contextlib.contextmanager
    def _writing(self, video: str) -> Iterator[None]:
        """Hold video ``video``'s lock while its state is read, changed and saved.

        One writer at a time across processes, so ``annotate add`` and the annotation page take turns
        on a video (the other waits) while other videos stay free. The lock is the video's folder
        itself (``flock`` on the directory: no file is added); its first annotation takes the session
        folder's lock to make that folder, which a refused addition removes again. A session not saved
        yet has nobody to race with.
        """
        if not (self.folder / SESSION_FILE).is_file():
            yield
            return
        folder = self.folder / video
        first = contextlib.nullcontext() if folder.is_dir() else _folder_lock(self.folder)
        with first:
            made = not folder.is_dir()
            folder.mkdir(exist_ok=True)
            try:
                with _folder_lock(folder):
                    yield
            finally:
                if made and not any(folder.iterdir()):
                    folder.rmdir()

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
        result = self.engine.propagate(
            frames, state.annotated, first_frames=state.objects, cache=cache, on_frame=on_frame
        )
        state.masks, state.disagreement, state.unsure = result.masks, result.disagreement, result.unsure

    def propose(
        self,
        *,
        video: str | None = None,
        frames: str = PROPOSAL_SELECTOR,
        types: str = "mask",
        seed: int = 0,
        policy: str | Path | None = None,
        diversity_features: str = "descriptor",
        diversity_weights: str | Path | None = None,
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
        page five more frames, `benchmarks/results/page_person.md`). ``video`` restricts the choice to
        one video.

        Args:
            video: propose on this video only (None: any).
            frames: the frame selector; one that needs ground truth (``oracle``) is refused.
            types: the annotation type policy; one that needs ground truth (``oracle``) is refused.
            seed: seed of the random selector and policy.
            policy: the weights file of the ``learned`` type policy.
            diversity_features: what the ``diversity`` selector compares (`make_diversity_features`).
            diversity_weights: the QNet or encoder weights file of those features.
            states: video → the state to use instead of the saved one (a video being propagated:
                what is known of it so far).

        Raises:
            ConfigError: an unknown video, selector or policy, or one that needs ground truth.
            WeightsError: a ``policy`` file that is missing or not a type policy.
        """
        features = (
            make_diversity_features(diversity_features, diversity_weights) if frames == "diversity" else None
        )
        selector, chooser = _without_truth(
            make_selector(frames, seed, features=features), make_policy(types, seed, weights=policy)
        )
        names = [self._video(video).name] if video is not None else self.videos()
        started: list[tuple[str, VideoState]] = []
        for name in names:
            state = (states or {}).get(name) or self.state(name)
            if state is None:
                return self._video(name).first_proposal()
            if not state.done:
                started.append((name, state))
        if not started:
            return None
        options = [self._next(name, state, selector, chooser) for name, state in started]
        best = max(range(len(options)), key=lambda i: (options[i].gain_per_second, -options[i].per_frame, -i))
        return options[best].proposal

    def _next(self, name: str, state: VideoState, selector: FrameSelector, chooser: TypePolicy) -> _Next:
        """The next annotation of one started video and its expected J&F gain per second."""
        source = self._video(name)
        doubt = unreliability(state.disagreement, state.unsure, state.annotated)
        view = SelectionView(
            key=name,
            iteration=state.iteration,
            num_frames=state.num_frames,
            annotated=set(state.annotated),
            frames=source.load() if selector.name == "diversity" else None,
            masks=state.masks,
            unreliability=doubt,
        )
        t = selector.select(view)
        context = type_context(state, t, read_frame(source.frame_paths[t]))

        def refuse(kind: str) -> AnnotationResult:
            raise ConfigError(
                "types", f"{chooser.name!r} tries a {kind} annotation, which needs ground truth"
            )

        kind = chooser.choose(TypeView(name, state.iteration, t, refuse, context=context))
        per_frame = state.seconds / state.num_frames
        seconds = type_seconds(len(context.objects), self.costs)[kind]
        if isinstance(chooser, LearnedTypePolicy):
            gain = chooser.gain_per_second(context, t)[kind]
        else:
            gain = len(state.objects) * expected_jf_gain(doubt, view.annotated, t) / seconds
        if isinstance(chooser, LearnedTypePolicy):
            expected = f"expected J&F gain {gain * seconds:.3f} for about {seconds:.0f} s of work"
        else:
            share = context.disagreement + context.unsure
            expected = (
                f"{min(share, 1.0):.0%} of the object area left to fix "
                f"({context.disagreement:.0%} where the two directions disagree, {context.unsure:.0%} "
                f"where the flow lost track{'; counted as 100 %' if share > 1 else ''}) "
                f"for about {seconds:.0f} s of work"
            )
        reason = (
            f"{selector.name} among {len(view.candidates)} frames not annotated; {expected}; "
            f"{per_frame:.1f} s per frame so far"
        )
        proposal = Proposal(
            name, source.indices[t], str(source.frame_paths[t]), list(context.objects), kind, reason
        )
        return _Next(proposal, gain, per_frame)

    def export_config(self) -> dict[str, Any]:
        """The ``run.json`` of an export of the session as it stands (equal configs: equal stores).

        Raises:
            ConfigError: no video has been annotated yet.
        """
        states = self._annotated_states()
        return {
            "engine": "annotation-session",
            "settings": {
                "session": json.loads(json.dumps(asdict(self.settings))),
                "annotations": {name: len(state.annotations) for name, state in states.items()},
            },
            "split": self.settings.split,
            **self.format.describe(),
        }

    def _annotated_states(self) -> dict[str, VideoState]:
        states = {name: state for name in self.videos() if (state := self.state(name)) is not None}
        if not states:
            raise ConfigError("state", f"{self.folder}: no video annotated yet, nothing to export")
        return states

    def export(self, out: str | Path) -> int:
        """Write the current masks of every annotated video to the label store ``out``; how many were written.

        Drawn frames are ``fine`` labels, the others ``pseudo``, and a person's clicks and boxes
        ``clicks`` and ``boxes`` labels beside them (`labels.video_labels`: the format's two classes).
        The store's run records how many annotations each video had
        (`export_config`), so a later export after more additions is refused there (labels in a store
        are never rewritten): export to a new folder. An export into the same folder with nothing
        added writes nothing. Only the videos' frames are read, never the data set's own masks.

        Raises:
            ConfigError: no video has been annotated yet.
            LabelStoreError: ``out`` holds a store of another export or run.
        """
        config = self.export_config()
        written = 0
        for name, state in self._annotated_states().items():
            clip = Clip(
                clip_id=name,
                split=self.settings.split,
                frames=list(self.format.numbered_frame_paths(name)),
                anchor_index=0,
            )
            written += write_video_labels(Path(out), clip, self._video(name).indices, state, config)
        return written

    def add(
        self,
        video: str,
        frame: int,
        *,
        mask: str | Path | None = None,
        clicks: str | Path | None = None,
        object_id: int | None = None,
        new_objects: bool = False,
        names: Mapping[int, str] | None = None,
    ) -> Addition:
        """Add what a person made on ``frame`` of ``video``, propagate again, and save the state.

        Args:
            video: the video's name.
            frame: the frame's index in the sequence.
            mask: a PNG of object ids (palette or grey; 0 background, 255 void; a 0/255 grey PNG is
                object 1), or of one object when ``object_id`` is given (every non-zero pixel).
            clicks: a JSON file of clicks (`given.read_clicks`); give either ``mask`` or ``clicks``.
            object_id: the object a one-object ``mask`` shows.
            new_objects: accept ids not annotated before: objects that first appear on this frame.
            names: object id → its class name ("horse and rider"), for objects of this annotation.

        Raises:
            ConfigError: an unknown video, a frame the session does not use, not exactly one of
                ``mask`` and ``clicks``, or a name for an object the annotation does not hold, or of
                more than 64 characters.
            DataError: naming the file, when it cannot be read, is of another size than the frame,
                names an unknown object or is not of the form described.
        """
        if (mask is None) == (clicks is None):
            raise ConfigError("mask", "give either a mask PNG or a clicks JSON file")
        if object_id is not None and mask is None:
            raise ConfigError("object", "names the object of a one-object mask; clicks name their objects")
        source = self._video(video)
        t = source.loop_index(frame)
        width, height = image_size(source.frame_paths[t])
        made = read_made(mask, clicks, object_id, (height, width), source.frame_paths[t])
        return self._add(source, t, made, new_objects=new_objects, propagate=True, names=names)

    def add_given(
        self,
        video: str,
        frame: int,
        *,
        ids: np.ndarray | None = None,
        clicks: Sequence[GivenClick] | None = None,
        object_id: int | None = None,
        new_objects: bool = False,
        propagate: bool = True,
        name: str = "annotation",
        names: Mapping[int, str] | None = None,
        current: np.ndarray | None = None,
        boxes: Mapping[int, DrawnBox] | None = None,
    ) -> Addition:
        """`add` of a mask or clicks held in memory (the annotation page's), with the same checks and result.

        Args:
            video: the video's name.
            frame: the frame's index in the sequence.
            ids: an H×W uint8 map of object ids (0 background, 255 void), or of one object with
                ``object_id`` (every non-zero pixel).
            clicks: the clicks (give either ``ids`` or ``clicks``).
            object_id: the object a one-object ``ids`` map shows.
            new_objects: accept ids not annotated before.
            propagate: propagate and save the masks now; False saves the annotation with masks marked
                out of date (so nothing is lost if the process dies), and `finish` propagates.
            name: what errors call the annotation (they name it as the file of `add`'s errors).
            names: object id → its class name, as `add`'s.
            current: the mask the clicks correct (None: the frame's saved mask; the page passes the
                one it shows, which may be newer while the video propagates).
            boxes: object → its box, for the objects of ``ids`` the page's box tool made: each is
                booked as a box (``box_seconds`` and ``click_seconds`` a corrective click) instead of
                a drawn mask (`_given_mask`), and exported with its box.

        Raises:
            ConfigError: as `add`.
            DataError: naming ``name``, a map of another size than the frame, an unknown object or a
                click off the frame.
        """
        if (ids is None) == (clicks is None):
            raise ConfigError("mask", "give either a mask or clicks")
        if object_id is not None and ids is None:
            raise ConfigError("object", "names the object of a one-object mask; clicks name their objects")
        source = self._video(video)
        t = source.loop_index(frame)
        width, height = image_size(source.frame_paths[t])
        made = given_made(Path(name), ids, clicks, object_id, (height, width), source.frame_paths[t], boxes)
        if current is not None and current.shape != (height, width):
            raise DataError(Path(name), f"the mask corrected is {current.shape}, the frame {(height, width)}")
        return self._add(
            source, t, made, new_objects=new_objects, propagate=propagate, names=names, current=current
        )

    def preview(
        self, video: str, frame: int, clicks: Sequence[GivenClick], current: np.ndarray | None = None
    ) -> np.ndarray:
        """The mask ``clicks`` make of the frame's mask (what adding them would annotate); nothing saved.

        Args:
            video: the video's name.
            frame: the frame's index in the sequence.
            clicks: the clicks so far (at least one).
            current: the mask they correct (None: the frame's current mask, or none before the
                video's first annotation).

        Raises:
            ConfigError: an unknown video or frame.
            DataError: a click off the frame or a ``current`` mask of another size.
        """
        source = self._video(video)
        t = source.loop_index(frame)
        image = read_frame(source.frame_paths[t])
        name = Path("clicks")
        made = given_made(name, None, clicks, None, image.shape[:2], source.frame_paths[t])
        if current is None:
            state = self.state(video)
            current = state.masks[t] if state is not None else np.zeros(image.shape[:2], np.uint8)
        elif current.shape != image.shape[:2]:
            raise DataError(name, f"the mask corrected is {current.shape}, the frame {image.shape[:2]}")
        return self._result(made, image, current)[0].mask

    def frames(self, video: str) -> list[int]:
        """The sequence indices of the frames of ``video`` the session uses (its loop frames, in order)."""
        return list(self._video(video).indices)

    def frame_image(self, video: str, frame: int) -> np.ndarray:
        """Frame ``frame`` (sequence index) of ``video``, H×W×3 uint8 RGB."""
        source = self._video(video)
        return read_frame(source.frame_paths[source.loop_index(frame)])

    def read_mask(self, video: str, frame: int, path: str | Path) -> np.ndarray:
        """The object ids of a mask PNG for a frame (void → 0), checked as `add` checks its ``mask``."""
        source = self._video(video)
        t = source.loop_index(frame)
        width, height = image_size(source.frame_paths[t])
        return read_mask(Path(path), (height, width), source.frame_paths[t])

    def _add(
        self,
        source: _Video,
        t: int,
        made: Made,
        *,
        new_objects: bool,
        propagate: bool,
        names: Mapping[int, str] | None = None,
        current: np.ndarray | None = None,
    ) -> Addition:
        """Book ``made`` on loop frame ``t`` of ``source``, propagate (or mark masks out of date), save."""
        checked = _checked_names(names or {}, made.objects)
        with self._writing(source.name):
            video = source.name
            if propagate:
                state = self.state(video)
            else:  # saved with its masks out of date: `finish` propagates, not this call
                saved = self.saved_state(video)
                state = saved[0] if saved is not None else None
            if state is not None and not new_objects:
                check_objects(made.path, made.objects, state.objects, video)
            image = read_frame(source.frame_paths[t])
            height, width = image.shape[:2]
            if state is None:
                frames = len(source.frame_paths)
                state = VideoState(video=video, num_frames=frames, objects={}, config=self._config)
            if current is None:
                current = state.masks[t] if state.masks else np.zeros((height, width), np.uint8)
            result, kinds = self._result(made, image, current)
            record = _book(state, t, result, kinds, made)
            state.names.update(checked)
            if propagate:
                self._propagate(state, source.load())
            else:
                state.masks = []
            state.history.append(record)
            if not (self.folder / SESSION_FILE).is_file():
                write_json_atomic(self.folder / SESSION_FILE, asdict(self.settings), indent=2)
            state.save(self.folder / video)
            objects = [obj for obj in sorted(result.seconds) if obj]
            masks = self.folder / video / "masks"
            frame = source.indices[t]
            return Addition(video, frame, objects, record, len(state.annotated), state.num_frames, masks)

    def _result(
        self, made: Made, frame: np.ndarray, current: np.ndarray
    ) -> tuple[AnnotationResult, dict[int, str]]:
        """What a person's file makes of the frame's ``current`` mask, with its human seconds.

        Also the annotation type of each object (`_given_mask`).
        """
        if made.ids is None:
            result = annotate_given_clicks(frame, current, made.clicks, self.costs, model=self.click_model)
            return result, dict.fromkeys(made.objects, "clicks")
        if made.object_id is not None:
            drawn = np.where(current == VOID, 0, current).astype(np.uint8)
            drawn[drawn == made.object_id] = 0
            drawn[made.ids != 0] = made.object_id
            seconds = {made.object_id: self.costs.vos_mask_seconds}
            return AnnotationResult("mask", drawn, seconds, {}), {made.object_id: "mask"}
        return _given_mask(made, current, self.costs)


def _given_mask(
    made: Made, current: np.ndarray, costs: AnnotationCosts
) -> tuple[AnnotationResult, dict[int, str]]:
    """A mask of every object of a frame, each object booked by how the person made it.

    An object the page's box tool made is a ``box`` (``box_seconds`` and ``click_seconds`` a
    corrective click, as the loop's box type books it); an object whose mask is the ``current`` one
    unchanged was looked at and accepted: a ``clicks`` annotation with no click, free but for the
    frame's look; any other object was drawn: a ``mask``, ``vos_mask_seconds``. A frame with an
    object not drawn costs its ``clicked_frame_seconds`` once. The frame's type is ``mask`` when an
    object was drawn, else ``box`` when one was boxed, else ``clicks``.
    """
    assert made.ids is not None
    if not made.objects:
        return AnnotationResult("mask", made.ids, {0: costs.clicked_frame_seconds}, {}), {}
    kinds: dict[int, str] = {}
    seconds: dict[int, float] = {}
    clicks: dict[int, int] = {}
    for obj in made.objects:
        if obj in made.boxes:
            kinds[obj], clicks[obj] = "box", made.boxes[obj].clicks
            seconds[obj] = costs.box_seconds + costs.click_seconds * clicks[obj]
        elif np.array_equal(made.ids == obj, current == obj):
            kinds[obj], seconds[obj] = "clicks", 0.0
        else:
            kinds[obj], seconds[obj] = "mask", costs.vos_mask_seconds
    if set(kinds.values()) != {"mask"}:
        seconds[min(made.objects)] += costs.clicked_frame_seconds
    kind = next(k for k in ("mask", "box", "clicks") if k in kinds.values())
    return AnnotationResult(kind, made.ids, seconds, clicks), kinds


def _checked_names(names: Mapping[int, str], objects: Sequence[int]) -> dict[int, str]:
    """The class names given for an annotation's ``objects`` (1…64 characters, spaces trimmed)."""
    checked = {}
    for obj, name in names.items():
        if obj not in objects:
            raise ConfigError("name", f"object {obj} is not in this annotation (it holds {list(objects)})")
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 64:
            raise ConfigError("name", f"the name of object {obj} must have 1…64 characters, got {name!r}")
        checked[int(obj)] = name.strip()
    return checked


def _book(
    state: VideoState, t: int, result: AnnotationResult, kinds: Mapping[int, str], made: Made
) -> IterationRecord:
    """Enter an annotation of loop frame ``t`` in ``state`` (its objects, annotations, annotated mask).

    Each object is booked with its own type (``kinds``; the frame's type where it has none) and what
    the person gave for it: its clicks and its box.

    Returns:
        The iteration's record (no quality: a person's session has no ground truth).
    """
    for obj in (int(v) for v in np.unique(result.mask) if v != 0):
        state.objects[obj] = min(t, state.objects.get(obj, t))
    iteration = state.iteration
    state.annotations.extend(
        Annotation(
            t,
            obj,
            kinds.get(obj, result.kind),
            round(s, 6),
            result.clicks.get(obj, 0),
            iteration,
            points=tuple((c.x, c.y, c.positive) for c in made.clicks if c.object == obj),
            box=made.boxes[obj].corners if obj in made.boxes else None,
        )
        for obj, s in sorted(result.seconds.items())
    )
    state.annotated[t] = result.mask
    return IterationRecord(
        iteration=iteration,
        frame=t,
        kind=result.kind,
        seconds=round(result.total_seconds, 6),
        total_seconds=round(state.seconds, 6),
        jf=None,
        j=None,
        f=None,
    )


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``folder`` itself, for the block (waits for the holder to finish)."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _without_truth(selector: FrameSelector, chooser: TypePolicy) -> tuple[FrameSelector, TypePolicy]:
    """The frame selector and type policy, refused when one needs ground truth (a person's data lack it)."""
    for option, chosen in (("frames", selector), ("types", chooser)):
        if chosen.needs_ground_truth:
            raise ConfigError(
                option, f"{chosen.name!r} needs ground truth, which a real annotator's data lack"
            )
    return selector, chooser
