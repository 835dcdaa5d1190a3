"""What annotation tools export and import (CVAT, COCO, Label Studio, LabelMe) ↔ label stores.

Readers turn each tool's file into shapes per frame (`ToolExport`); `import_export` draws them as
labels of frugalseg's kinds into a label store of a data set; `stored_frames` and `write_export`
send a store back to a tool. Usable without Lightning.
"""

from frugalseg.interop.formats import (
    READERS,
    WRITERS,
    read_export,
    with_frame_files,
    write_export,
    write_tool_files,
)
from frugalseg.interop.raster import ClassMapping, read_mapping
from frugalseg.interop.shapes import Frame, Shape, ToolExport
from frugalseg.interop.stored_frames import StoredFrame, stored_frames, with_object_names
from frugalseg.interop.stores import FrameIndex, ImportSummary, import_export

__all__ = [
    "READERS",
    "WRITERS",
    "ClassMapping",
    "Frame",
    "FrameIndex",
    "ImportSummary",
    "Shape",
    "StoredFrame",
    "ToolExport",
    "import_export",
    "read_export",
    "read_mapping",
    "stored_frames",
    "with_frame_files",
    "with_object_names",
    "write_export",
    "write_tool_files",
]
