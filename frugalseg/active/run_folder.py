"""The folder of a simulated annotation run, shared by both wings of the annotation room.

``run.json`` records the run's settings (`open_run`: a rerun with other settings is refused, a
rerun with the same ones resumes), ``curves.png`` is drawn by matplotlib (`figure_png`), and
``labels/<strategy>/`` holds each loop's final labels as a label store (`write_loop_labels`), the
training labels that ``frugalseg fit`` reads.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frugalseg.autolabel.store import LabelStore, instances_path, side_json_path
from frugalseg.data.clips import Clip, LabelKind
from frugalseg.data.io import read_json_object, remove_temporaries, write_json_atomic, write_png_atomic
from frugalseg.errors import ConfigError

RUN_FILE = "run.json"


def open_run(out: Path, settings: Mapping[str, Any]) -> None:
    """Write ``run.json`` in ``out``, or check that the run already there has the same settings.

    A rerun with the same settings resumes the run: first the temporary files its killed writes left go.

    Raises:
        ConfigError: ``out`` holds a run with other settings (the keys that differ named), or is a
            folder with other content.
    """
    wanted = json.loads(json.dumps(settings))
    path = out / RUN_FILE
    if path.is_file():
        held = read_json_object(path, "the settings of a simulated annotation run")
        if held != wanted:
            keys = sorted(k for k in set(held) | set(wanted) if held.get(k) != wanted.get(k))
            raise ConfigError(
                "out", f"{out} holds a run with other settings ({', '.join(keys)}); use another folder"
            )
        remove_temporaries(out)  # what a killed write left
        return
    if out.exists() and any(out.iterdir()):
        raise ConfigError(
            "out", f"{out} exists and is not a simulation run's folder; use an empty or new folder"
        )
    write_json_atomic(path, wanted, indent=2)


def figure_png(figure: Any) -> bytes:
    """PNG bytes of a matplotlib figure, laid out tight and without the Software tag (reproducible bytes)."""
    from matplotlib import pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


@dataclass(frozen=True)
class LoopLabel:
    """One frame's final label of a loop: where it goes, its kind, the frame it came from, human seconds.

    ``side``: the JSON a ``clicks`` or ``boxes`` label has beside it (`side_json_path`), else None.
    ``instances``: the object ids of the label's pixels (0: none), written beside it as its
    ``_instanceIds.png`` (`instances_path`), else None.
    """

    offset: int
    kind: LabelKind
    label: np.ndarray
    source_offset: int
    seconds: float
    side: dict[str, Any] | None = None
    instances: np.ndarray | None = None


def source_frame(annotated: Sequence[int], t: int) -> int:
    """The frame loop frame ``t``'s label came from: ``t`` when annotated, else the nearest annotated frame.

    ``annotated`` is sorted; of two annotated frames equally near, the earlier; ``t`` itself when none is.
    """
    if not annotated or t in annotated:
        return t
    return min(annotated, key=lambda f: (abs(f - t), f))


def write_loop_labels(
    folder: Path,
    clip: Clip,
    run_config: dict[str, Any],
    labels: Iterable[LoopLabel],
    *,
    engine: str,
    settings: dict[str, Any],
) -> int:
    """Write a loop's labels of ``clip`` to the label store ``folder``; labels already there are kept.

    A label's side JSON and object ids are written before the label, so a recorded label always has them.

    Returns:
        How many labels were written.
    """
    store = LabelStore(folder)
    written = 0
    with store.run(run_config):
        for item in labels:
            if store.has(clip.clip_id, item.offset, item.kind, split=clip.split):
                continue
            if item.side is not None:
                path = store.label_path(clip, item.offset, item.kind)
                write_json_atomic(side_json_path(path, item.kind.value), item.side)
            if item.instances is not None:
                path = store.label_path(clip, item.offset, item.kind)
                write_png_atomic(instances_path(path), item.instances)
            store.write(
                clip,
                item.offset,
                item.kind,
                item.label,
                engine=engine,
                settings=settings,
                source_offset=item.source_offset,
                seconds=item.seconds,
            )
            written += 1
    return written
