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
from tagllm.files import check_regular, parse_json, read_json, read_text, write_text_atomically


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
            existing = self.manifest()
            different = {k: (existing.get(k), v) for k, v in manifest.items() if existing.get(k) != v}
            if different:
                details = ", ".join(f"{k}: {old!r} there, {new!r} now" for k, (old, new) in different.items())
                raise RunError(f"{self.path} holds another run ({details}); choose another --out")
        else:
            write_text_atomically(self.manifest_path, json.dumps(manifest, indent=2))
        self._cut_torn_line()

    def manifest(self) -> dict[str, Any]:
        if not self.manifest_path.exists():
            raise RunError(f"{self.path} is not an annotation run (no run.json)")
        manifest = read_json(self.manifest_path, 1024 * 1024)
        if not isinstance(manifest, dict):
            raise RunError(f"{self.manifest_path}: not a run manifest (a JSON object)")
        return manifest

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
        check_regular(self.results_path)
        seen: dict[str, AnnotationRecord] = {}
        with self.results_path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.endswith(b"\n"):
                    break  # torn by a crash; not a result yet
                where = f"{self.results_path}:{number}"
                try:
                    record = AnnotationRecord.from_data(parse_json(raw.decode("utf-8"), where))
                except UnicodeDecodeError:
                    raise RunError(f"{where}: not UTF-8 text") from None
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    raise RunError(f"{where}: not a result record ({str(exc)[:200]})") from None
                seen.setdefault(record.image, record)
        return list(seen.values())

    def failures(self) -> list[dict[str, Any]]:
        if not self.failures_path.exists():
            return []
        text = read_text(self.failures_path)
        return [
            parse_json(line, f"{self.failures_path}:{n}")
            for n, line in enumerate(text.splitlines(), 1)
            if line
        ]

    def append_result(self, handle: IO[str], record: AnnotationRecord) -> None:
        handle.write(record.to_json() + "\n")
        handle.flush()
        os.fsync(handle.fileno())

    def write_failures(self, failures: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(f, separators=(",", ":")) + "\n" for f in failures)
        write_text_atomically(self.failures_path, text)
