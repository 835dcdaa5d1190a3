"""The state of the annotation loop on one video, saved after every iteration and resumable.

A state holds the annotated set K — for every annotated frame, each object annotated on it with its
annotation type and the human seconds it took, and the object-id mask the annotation produced —
the current mask of every frame (propagated from K), how unreliable each frame's mask is, and one
record per finished iteration (the human time so far and, with ground truth, the quality).

Folder of a saved state::

    state.json                 the commit point: everything above but the masks, written last
    annotated/00012_<sha>.png  the mask each annotation produced (content-addressed, never rewritten)
    masks/00012.png            the current mask of frame 12 (object ids, 0 background); a person's own
                               frames name their masks (masks/frame_0013.png beside frame_0013.jpg)

Every file is written atomically (temporary file + rename). ``state.json`` names the SHA-1 of each
current mask; a loop killed while it wrote the masks leaves ``state.json`` of the previous
iteration, and `VideoState.load` reports the masks that no longer match it so the loop recomputes
them from K (which is deterministic). Nothing in the state depends on the wall clock, so a resumed
loop ends with the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from frugalseg.data.io import array_sha1, imread, remove_temporaries, write_bytes_atomic, write_json_atomic
from frugalseg.errors import DataError

STATE_FILE = "state.json"
VERSION = 1
#: How old a temporary file in a video's folder is when its writer was killed (writes take milliseconds).
STALE_TEMPORARY_SECONDS = 600


@dataclass(frozen=True)
class Annotation:
    """One object annotated on one frame: ``kind`` is the annotation type (``mask``, ``clicks``, ``box``).

    A person's annotation keeps what they gave, so that an export can hand it on as the kind it is:
    ``points`` their clicks on the object as (x, y, positive), ``box`` the box they dragged around it
    as (x0, y0, x1, y1) in pixel edges (x1, y1 exclusive). A simulated loop keeps neither.
    """

    frame: int
    object: int
    kind: str
    seconds: float
    clicks: int = 0
    iteration: int = 0
    points: tuple[tuple[int, int, bool], ...] = ()
    box: tuple[int, int, int, int] | None = None

    @property
    def kept(self) -> bool:
        """Whether the object was looked at and kept as propagated (clicks, none made, no box)."""
        return self.kind == "clicks" and self.clicks == 0 and self.box is None

    def saved(self) -> dict[str, Any]:
        """The annotation as ``state.json`` holds it (``points`` and ``box`` only where given)."""
        data = asdict(self)
        if not self.points:
            del data["points"]
        if self.box is None:
            del data["box"]
        return data

    @classmethod
    def from_saved(cls, data: dict[str, Any]) -> Annotation:
        """An annotation of ``state.json`` (its lists back to tuples)."""
        points = tuple((int(x), int(y), bool(p)) for x, y, p in data.get("points", ()))
        box = data.get("box")
        corners = None if box is None else (int(box[0]), int(box[1]), int(box[2]), int(box[3]))
        return cls(**{**data, "points": points, "box": corners})


@dataclass(frozen=True)
class IterationRecord:
    """What one finished iteration did and where it left the video (quality is None without ground truth)."""

    iteration: int
    frame: int
    kind: str
    seconds: float
    total_seconds: float
    jf: float | None
    j: float | None
    f: float | None


def _png(array: np.ndarray, path: Path) -> bytes:
    ok, data = cv2.imencode(".png", array)
    if not ok:
        raise DataError(path, f"cannot encode a mask of shape {array.shape} as PNG")
    return data.tobytes()


def _read_png(path: Path) -> np.ndarray:
    mask = imread(path, cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise DataError(path, "cannot read the mask (missing or damaged)")
    return mask


def _annotated_files(folder: Path) -> set[str]:
    """The annotated masks ``folder``'s ``state.json`` names (none where it is missing or unreadable)."""
    try:
        return set(json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))["annotated"].values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def check_missing_state(folder: Path) -> None:
    """Refuse a video folder whose ``state.json`` is gone while its ``annotated/`` masks are not.

    A new state saved there would delete them (`VideoState.save` removes the masks it does not name).
    """
    if drawn := sorted((folder / "annotated").glob("*.png")):
        raise DataError(
            folder / STATE_FILE,
            f"missing, and {folder / 'annotated'} holds {len(drawn)} annotated frame(s) (it was deleted, or "
            "a first save was killed): restore it, or move the folder away to start the video again",
        )


def _read_state_json(folder: Path) -> dict[str, Any]:
    """The saved ``state.json`` of ``folder``, checked to be a loop state of this version."""
    path = folder / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise DataError(path, "no saved loop state") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(path, f"not valid JSON ({err})") from err
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise DataError(path, f"not a loop state of version {VERSION}")
    return data


def load_history(folder: str | Path) -> tuple[list[IterationRecord], int]:
    """The iteration records and the number of objects of the loop state saved in ``folder`` (no masks read).

    Raises:
        DataError: ``state.json`` is missing, damaged or of another version.
    """
    data = _read_state_json(Path(folder))
    return [IterationRecord(**r) for r in data["history"]], len(data["objects"])


@dataclass
class VideoState:
    """Loop state of one video (see the module docstring).

    Attributes:
        video: the video's name.
        num_frames: frames in the loop (after any frame stride).
        objects: object id → the first frame it appears in.
        annotations: K, in the order they were made.
        annotated: frame → the object-id mask its annotations produced.
        masks: the current mask of every frame (empty until the first propagation).
        disagreement, unsure: per frame, from the propagation (see `Propagated`).
        quality: per frame J&F of the current masks (mean over objects) where ground truth exists.
        history: one record per finished iteration.
        config: what made this state (strategy, seed, costs …); a resumed loop must match it.
        names: object id → the class name a person gave it (an object without one is ``object``).
        numbers: each loop frame's number in the video (a person's session with a stride: ``masks/`` names
            frame 6 ``00006.png`` as the person sees it, not by its loop index 3); empty: the loop index.
        frame_names: each loop frame's file name less its suffix, which names its mask when the frames
            are not numbered as DAVIS's (``frame_0013.jpg`` → ``masks/frame_0013.png``); empty: the number.
    """

    video: str
    num_frames: int
    objects: dict[int, int]
    config: dict[str, Any] = field(default_factory=dict)
    annotations: list[Annotation] = field(default_factory=list)
    annotated: dict[int, np.ndarray] = field(default_factory=dict)
    masks: list[np.ndarray] = field(default_factory=list)
    disagreement: list[float] = field(default_factory=list)
    unsure: list[float] = field(default_factory=list)
    quality: list[float] | None = None
    history: list[IterationRecord] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)
    numbers: list[int] = field(default_factory=list)
    frame_names: list[str] = field(default_factory=list)

    def mask_path(self, folder: Path, t: int) -> Path:
        """Where loop frame ``t``'s current mask is saved: under its frame's name, else its number."""
        if self.frame_names:
            return folder / "masks" / f"{self.frame_names[t]}.png"
        return folder / "masks" / f"{self.numbers[t] if self.numbers else t:05d}.png"

    @property
    def iteration(self) -> int:
        """Finished iterations (0 before the first annotation)."""
        return len(self.history)

    @property
    def seconds(self) -> float:
        """Human seconds spent on this video so far (the ledger)."""
        return float(sum(a.seconds for a in self.annotations))

    @property
    def done(self) -> bool:
        """Whether every frame is annotated."""
        return len(self.annotated) == self.num_frames

    def _latest(self) -> dict[int, list[list[Annotation]]]:
        """Annotated frame → its annotations, one list per addition, in order."""
        made: dict[int, list[list[Annotation]]] = {}
        for a in self.annotations:
            if a.frame in self.annotated:
                additions = made.setdefault(a.frame, [])
                if not additions or additions[-1][-1].iteration != a.iteration:
                    additions.append([])
                additions[-1].append(a)
        return made

    @property
    def kinds(self) -> dict[int, str]:
        """Annotated frame → ``mask`` where its latest annotation is exact, else its inexact type.

        Exact: every object drawn as a mask, or looked at and kept as propagated (`Annotation.kept`:
        the person judged it right). Otherwise the frame's type is that of its first object with
        clicks made or a box, which a mask may replace.
        """
        return {
            t: next((a.kind for a in additions[-1] if a.kind != "mask" and not a.kept), "mask")
            for t, additions in self._latest().items()
        }

    def made_by(self, frame: int) -> list[Annotation]:
        """The annotations that made ``frame``'s current mask: its latest addition that changed it.

        A look that kept every object as propagated changes nothing, so a mask drawn before it still
        made the frame; a frame only ever looked at is made by that look.
        """
        additions = self._latest().get(frame, [])
        changed = [made for made in additions if not all(a.kept for a in made)]
        return (changed or additions or [[]])[-1]

    def standing(self, frame: int) -> list[Annotation]:
        """The annotations of ``frame`` whose clicks and box still stand, in order.

        A mask drawn later of an object replaces what its earlier clicks and box said: a person who
        clicked the wrong object, then drew the frame again, has taken those clicks back.
        """
        own = [a for a in self.annotations if a.frame == frame]
        redrawn = {a.object: a.iteration for a in own if a.kind == "mask"}  # each object's latest drawn mask
        return [a for a in own if a.kind == "mask" or a.iteration >= redrawn.get(a.object, -1)]

    @property
    def late_objects(self) -> dict[int, frozenset[int]]:
        """Annotated frame → the objects first annotated after its mask was made (where there are any).

        A person annotates one object at a time, so such a frame does not say those objects are absent
        (`frugalseg.active.objects.session.late_objects`).
        """
        declared: dict[int, int] = {}  # object → the iteration it was first annotated in
        made: dict[int, int] = {}  # annotated frame → the iteration of its latest annotation
        for a in self.annotations:
            if a.object:
                declared.setdefault(a.object, a.iteration)
            if a.frame in self.annotated:
                made[a.frame] = max(made.get(a.frame, a.iteration), a.iteration)
        late = {t: frozenset(obj for obj, i in declared.items() if i > made[t]) for t in made}
        return {t: objects for t, objects in late.items() if objects}

    @property
    def replaceable(self) -> list[int]:
        """Annotated frames whose latest annotation is inexact (`kinds`: clicks made or a box), in order."""
        return sorted(t for t, kind in self.kinds.items() if kind != "mask")

    def record(self, annotations: list[Annotation], mask: np.ndarray, record: IterationRecord) -> None:
        """Add the annotations of one frame and the mask they produced, and the iteration's record."""
        frames = {a.frame for a in annotations}
        if len(frames) != 1:
            raise ValueError(f"one iteration annotates one frame, got {sorted(frames)}")
        self.annotations.extend(annotations)
        self.annotated[frames.pop()] = np.asarray(mask, np.uint8).copy()
        self.history.append(record)

    def save(self, folder: str | Path) -> None:
        """Write the state atomically: masks first, ``state.json`` (the commit point) last.

        A first save cut short (Ctrl-C, an error) removes the masks it wrote: its folder would otherwise
        read as a state whose ``state.json`` was lost (`check_missing_state`).
        """
        folder = Path(folder)
        first = not (folder / STATE_FILE).is_file()
        try:
            self._write(folder)
        except BaseException:
            if first and not (folder / STATE_FILE).is_file():  # cut short before its commit point
                for written in ("annotated", "masks"):
                    shutil.rmtree(folder / written, ignore_errors=True)
            raise

    def _write(self, folder: Path) -> None:
        annotated_files: dict[str, str] = {}
        for frame, mask in sorted(self.annotated.items()):
            name = f"annotated/{frame:05d}_{array_sha1(mask)[:12]}.png"
            if not (folder / name).is_file():
                write_bytes_atomic(folder / name, _png(mask, folder / name))
            annotated_files[str(frame)] = name
        mask_shas = []
        for t, mask in enumerate(self.masks):
            sha = array_sha1(mask)
            path = self.mask_path(folder, t)
            write_bytes_atomic(path, _png(mask, path))
            mask_shas.append(sha)
        data = {
            "version": VERSION,
            "video": self.video,
            "num_frames": self.num_frames,
            "objects": {str(k): v for k, v in sorted(self.objects.items())},
            "config": self.config,
            "annotations": [a.saved() for a in self.annotations],
            "annotated": annotated_files,
            "mask_sha1": mask_shas,
            "disagreement": self.disagreement,
            "unsure": self.unsure,
            "quality": self.quality,
            "history": [asdict(r) for r in self.history],
        }
        if self.names:  # only a person's session names objects: a simulated loop's state is unchanged
            data["names"] = {str(k): v for k, v in sorted(self.names.items())}
        if self.numbers:
            data["numbers"] = self.numbers
        if self.frame_names:
            data["frame_names"] = self.frame_names
        held = _annotated_files(folder)  # the state replaced: a reader without the lock may hold it still
        write_json_atomic(folder / STATE_FILE, data, indent=1)
        kept = held | set(annotated_files.values())  # a frame annotated again twice, a killed save's: gone
        for stale in (folder / "annotated").glob("*.png"):
            if f"annotated/{stale.name}" not in kept:
                stale.unlink(missing_ok=True)
        # what a write killed before its rename left (a session's folder may have a live writer beside)
        remove_temporaries(folder, older_than=STALE_TEMPORARY_SECONDS)

    @classmethod
    def load(cls, folder: str | Path, *, masks: bool = True) -> tuple[VideoState, bool]:
        """The state saved in ``folder`` and whether its current masks are whole (else recompute them).

        ``masks=False`` reads the annotations alone: ``masks`` stays empty, and not whole.

        Raises:
            DataError: ``state.json`` or an annotated mask is missing, damaged or of another version.
        """
        folder = Path(folder)
        data = _read_state_json(folder)
        state = cls(
            video=data["video"],
            num_frames=int(data["num_frames"]),
            objects={int(k): int(v) for k, v in data["objects"].items()},
            config=data["config"],
            annotations=[Annotation.from_saved(a) for a in data["annotations"]],
            annotated={int(k): _read_png(folder / v) for k, v in data["annotated"].items()},
            disagreement=list(data["disagreement"]),
            unsure=list(data["unsure"]),
            quality=data["quality"],
            history=[IterationRecord(**r) for r in data["history"]],
            names={int(k): str(v) for k, v in data.get("names", {}).items()},
            numbers=[int(n) for n in data.get("numbers", [])],
            frame_names=[str(n) for n in data.get("frame_names", [])],
        )
        for key in ("numbers", "frame_names"):
            held = getattr(state, key)
            if held and len(held) != state.num_frames:
                raise DataError(folder / STATE_FILE, f"{key} {len(held)} frames of {state.num_frames}")
        if not masks:
            return state, False
        current = []
        whole = True
        for t, sha in enumerate(data["mask_sha1"]):
            mask_path = state.mask_path(folder, t)
            mask = imread(mask_path, cv2.IMREAD_UNCHANGED) if mask_path.is_file() else None
            if mask is None or array_sha1(mask) != sha:
                whole = False
                break
            current.append(mask)
        state.masks = current if whole else []
        return state, whole
