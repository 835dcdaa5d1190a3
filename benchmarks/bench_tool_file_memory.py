"""Peak memory of reading a large COCO file (issue 37): the tool-file size limit is what bounds it.

Writes a COCO instances file of one 640×480 image and small polygon annotations (about ``--mb`` MB)
in a temporary folder, then reads it with `frugalseg.interop.coco.read_coco` in a fresh process and
reports the file's size, the read's wall time and its peak resident memory (``ru_maxrss``), and the
ratio peak / file size that `frugalseg.interop.tool_files.MAX_TOOL_FILE_MB` is chosen against.

    python benchmarks/bench_tool_file_memory.py [--mb 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

_READ = """
import resource, sys, time
from frugalseg.interop.coco import read_coco
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
export = read_coco(sys.argv[1])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(time.perf_counter() - start, base, peak, export.shape_count())
"""


def _write(path: Path, megabytes: float) -> int:
    """A COCO file of about ``megabytes`` MB of 4-point rings; how many annotations it holds."""
    ring = [10.5, 10.5, 40.25, 10.5, 40.25, 30.75, 10.5, 30.75]
    count = int(megabytes * 1e6 / (len(json.dumps(ring)) + 60))
    annotations = [{"id": i, "image_id": 1, "category_id": 1, "segmentation": [ring]} for i in range(count)]
    image = {"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}
    path.write_text(
        json.dumps({"images": [image], "annotations": annotations, "categories": [{"id": 1, "name": "a"}]}),
        encoding="utf-8",
    )
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=30.0, help="size of the generated file in MB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "coco.json"
        count = _write(path, args.mb)
        size = path.stat().st_size / 1e6
        out = subprocess.run(
            [sys.executable, "-c", _READ, str(path)], capture_output=True, text=True, check=True
        )
    seconds, base, peak, shapes = out.stdout.split()
    grown = (int(peak) - int(base)) / 1e3
    print(f"file {size:.1f} MB, {count} annotations ({shapes} shapes): read in {float(seconds):.1f} s, "
          f"peak RSS {int(peak) / 1e3:.0f} MB ({grown:.0f} MB above the interpreter with frugalseg imported, "
          f"{grown / size:.1f}× the file)")  # fmt: skip


if __name__ == "__main__":
    main()
