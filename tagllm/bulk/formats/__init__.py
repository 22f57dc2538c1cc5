"""The export formats of an annotation run, each a writer and its reader in one entry.

`FORMATS` is the one list: `tagllm export --format` offers its names, `export_run` writes with
an entry's writer and `read_predictions` reads a file back with the entry its suffix names. COCO
and Label Studio files are both `.json`: for those two alone the file's top level (an object, a
list) says which it is.
"""

from __future__ import annotations

from pathlib import Path

from tagllm.bulk.formats import coco, jsonl, labelstudio, table
from tagllm.bulk.formats.base import ExportFormat, ExportInput, Predictions, Records
from tagllm.files import read_json

__all__ = ["FORMATS", "ExportFormat", "ExportInput", "Predictions", "Records", "read_export"]

FORMATS: dict[str, ExportFormat] = {
    entry.name: entry for entry in (coco.FORMAT, table.FORMAT, jsonl.FORMAT, labelstudio.FORMAT)
}


def read_export(path: Path) -> Predictions:
    """The predictions of a file `tagllm export` wrote; ValueError (and its kin) if it is none."""
    named = [entry for entry in FORMATS.values() if path.name.endswith(entry.suffix)]
    if len(named) == 1:
        return named[0].read(path)
    if named:  # COCO or Label Studio
        data = read_json(path)
        shape = dict if isinstance(data, dict) else list
        return next(entry for entry in named if entry.top_level is shape).read(path)
    suffixes = ", ".join(sorted({entry.suffix for entry in FORMATS.values()}))
    raise ValueError(f"neither a run directory nor an export (whose name ends in {suffixes})")
