"""An annotation run on disk: resumable, one result per image, failures listed.

RUN/run.json        what the run is (source, vocabulary, strategy, options, shard)
RUN/results.jsonl   one line per annotated image, appended and fsynced as it comes
RUN/failures.jsonl  images that still failed after their retries, with the error
RUN/reviews.jsonl   people's answers for some images (`tagllm review pull`), appended; the last
                    line of an image wins, and reading the run merges it over the model's labels
RUN/review.json     where those images were sent for review (`tagllm review push`)

A crash can leave at most a torn last line in results.jsonl; opening the run cuts it off, so a
restart re-does exactly the images without a complete line. Nothing else is ever rewritten.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from tagllm.bulk.records import AnnotationRecord, Review


class RunError(ValueError):
    pass


class RunDirectory:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.manifest_path = self.path / "run.json"
        self.results_path = self.path / "results.jsonl"
        self.failures_path = self.path / "failures.jsonl"
        self.reviews_path = self.path / "reviews.jsonl"
        self.review_manifest_path = self.path / "review.json"

    def open(self, manifest: dict[str, Any]) -> None:
        """Create the run, or check that an existing one is the same run."""
        self.path.mkdir(parents=True, exist_ok=True)
        if self.manifest_path.exists():
            existing = json.loads(self.manifest_path.read_text())
            different = {k: (existing.get(k), v) for k, v in manifest.items() if existing.get(k) != v}
            if different:
                details = ", ".join(f"{k}: {old!r} there, {new!r} now" for k, (old, new) in different.items())
                raise RunError(f"{self.path} holds another run ({details}); choose another --out")
        else:
            _write_atomically(self.manifest_path, json.dumps(manifest, indent=2))
        self._cut_torn_line()

    def manifest(self) -> dict[str, Any]:
        if not self.manifest_path.exists():
            raise RunError(f"{self.path} is not an annotation run (no run.json)")
        return json.loads(self.manifest_path.read_text())

    def _cut_torn_line(self, path: Path | None = None) -> None:
        path = path or self.results_path
        if not path.exists():
            return
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            with path.open("r+b") as handle:
                handle.truncate(end)
                os.fsync(handle.fileno())

    def results(self, merged: bool = True) -> list[AnnotationRecord]:
        """Every complete result line, the first per image (later duplicates cannot arise), with
        people's reviews merged over the model's labels unless `merged` is False."""
        reviews = self.reviews() if merged else {}
        return [r.reviewed(reviews[r.image]) if r.image in reviews else r for r in self._model_results()]

    def reviews(self) -> dict[str, Review]:
        """image -> its latest review."""
        if not self.reviews_path.exists():
            return {}
        latest = {}
        with self.reviews_path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.endswith("\n"):
                    break  # torn by a crash
                try:
                    review = Review.from_json(line)
                except (ValueError, KeyError, TypeError) as exc:
                    raise RunError(f"{self.reviews_path}:{number}: not a review record ({exc})") from None
                latest[review.image] = review
        return latest

    def append_reviews(self, reviews: list[Review]) -> None:
        self._cut_torn_line(self.reviews_path)
        with self.reviews_path.open("a", encoding="utf-8") as handle:
            handle.write("".join(review.to_json() + "\n" for review in reviews))
            handle.flush()
            os.fsync(handle.fileno())

    def _model_results(self) -> list[AnnotationRecord]:
        if not self.results_path.exists():
            return []
        seen: dict[str, AnnotationRecord] = {}
        with self.results_path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.endswith("\n"):
                    break  # torn by a crash; not a result yet
                try:
                    record = AnnotationRecord.from_json(line)
                except (ValueError, KeyError, TypeError) as exc:
                    raise RunError(f"{self.results_path}:{number}: not a result record ({exc})") from None
                seen.setdefault(record.image, record)
        return list(seen.values())

    def failures(self) -> list[dict[str, Any]]:
        if not self.failures_path.exists():
            return []
        return [
            json.loads(line) for line in self.failures_path.read_text(encoding="utf-8").splitlines() if line
        ]

    def append_result(self, handle: IO[str], record: AnnotationRecord) -> None:
        handle.write(record.to_json() + "\n")
        handle.flush()
        os.fsync(handle.fileno())

    def write_failures(self, failures: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(f, separators=(",", ":")) + "\n" for f in failures)
        _write_atomically(self.failures_path, text)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
