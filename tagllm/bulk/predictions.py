"""Predictions read back from a run directory or from any file `tagllm export` writes.

Every format keeps each label's score, so `eval` scores an export exactly as the run it came
from: the run directory and JSONL also carry usage (MLLM calls, tokens, model seconds); COCO,
CSV and Label Studio files carry labels and scores only. The run directory and JSONL keep every
verified candidate's P(yes) and served score too, which calibration is measured on.
"""

from __future__ import annotations

from pathlib import Path

from tagllm.bulk.formats import Predictions, read_export
from tagllm.bulk.formats.jsonl import predictions_of
from tagllm.bulk.run import RunDirectory, RunError
from tagllm.files import InputFileError

__all__ = ["Predictions", "read_predictions"]


def read_predictions(path: str | Path) -> Predictions:
    """A run directory, or a file of a registered export format; RunError if it is none."""
    path = Path(path)
    if path.is_dir():
        return predictions_of(RunDirectory(path).results())
    try:
        return read_export(path)
    except (InputFileError, RunError):
        raise
    except ValueError as exc:  # the format's reader says what is wrong
        raise RunError(f"{path}: {str(exc)[:300]}") from None
    except (KeyError, TypeError, IndexError, AttributeError, OverflowError) as exc:
        raise RunError(f"{path}: not a readable export ({type(exc).__name__}: {str(exc)[:200]})") from None
