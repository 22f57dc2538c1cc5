"""What one tagged image contributes to the exported metrics.

Naming follows Prometheus conventions: a `tagllm_` prefix, base units, `_total` counters, and
label sets bounded by configuration (strategies x vocabularies; per-class series only for
vocabularies up to `max_class_labels` categories). Precision, recall and F1 over any window
are ratios of the agreement counters (deploy/prometheus/rules). Live calibration: per score band
(BINS equal-width bands of the served score), the verified candidates of referenced images and
how many the reference has; their ratio per band is the reliability diagram, live.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tagllm.calibration.measures import BINS
from tagllm.metrics.cost import gpu_dollars
from tagllm.strategies import STRATEGIES, TagResult

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


SCORE_BANDS = tuple(f"{b / BINS:.1f}-{(b + 1) / BINS:.1f}" for b in range(BINS))


def score_band(score: float) -> str:
    """The band label of a served score; 1.0 falls into the last band."""
    return SCORE_BANDS[min(max(int(score * BINS), 0), BINS - 1)]


@dataclasses.dataclass(frozen=True)
class TaggedImage:
    """One tagged image as the metrics see it: the result and what surrounded it."""

    result: TagResult
    # Categories of the vocabulary (bounds the per-class series).
    vocabulary_size: int
    # Wall time of the whole strategy.
    seconds: float
    # Human labels sent with the request; None when there were none.
    reference: tuple[str, ...] | None


class TaggingMetrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        gpu_price_per_hour: float,
        human_cost_per_image: float,
        max_class_labels: int = 100,
        max_vocabularies: int = 64,
    ) -> None:
        self.gpu_price_per_hour = gpu_price_per_hour
        self.max_class_labels = max_class_labels
        self.max_vocabularies = max_vocabularies
        # Series are bounded: vocabularies seen, and per vocabulary the class labels seen.
        self._vocabularies: set[str] = set()
        self._classes: dict[str, set[str]] = {}
        self._lock = threading.Lock()

        def counter(name: str, doc: str, labels=("strategy",)) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def histogram(name: str, doc: str, labels) -> Histogram:
            return Histogram(name, doc, labels, buckets=LATENCY_BUCKETS, registry=registry)

        def setting(name: str, doc: str, value: float) -> None:
            Gauge(name, doc, registry=registry).set(value)

        per_vocabulary = ("strategy", "vocabulary")
        per_class = ("strategy", "vocabulary", "label")
        self.images = counter("tagllm_images", "Images tagged.", per_vocabulary)
        self.latency = histogram("tagllm_image_latency_seconds", "Strategy time per image.", ["strategy"])
        self.stage_latency = histogram(
            "tagllm_stage_latency_seconds", "Time per stage.", ["strategy", "stage"]
        )
        self.calls = counter("tagllm_mllm_calls", "Prompts answered by the MLLM.")
        self.requests = counter("tagllm_mllm_requests", "Requests to the model server.")
        self.prompt_tokens = counter("tagllm_prompt_tokens", "Prompt tokens.")
        self.generated_tokens = counter("tagllm_generated_tokens", "Generated tokens.")
        self.compute = counter("tagllm_model_compute_seconds", "Model compute time (GPU-seconds on a GPU).")
        self.cost = counter("tagllm_gpu_cost_dollars", "Model compute time at the configured GPU-hour price.")
        setting("tagllm_gpu_price_dollars_per_hour", "Configured price of one GPU-hour.", gpu_price_per_hour)
        setting(
            "tagllm_human_cost_dollars_per_image", "Configured human cost per image.", human_cost_per_image
        )
        self.referenced = counter("tagllm_reference_images", "Images with reference labels.", per_vocabulary)
        self.tp = counter("tagllm_agreement_true_positives", "Labels also in the reference.", per_vocabulary)
        self.fp = counter("tagllm_agreement_false_positives", "Labels not in the reference.", per_vocabulary)
        self.fn = counter("tagllm_agreement_false_negatives", "Reference labels missed.", per_vocabulary)
        self.class_tp = counter(
            "tagllm_class_true_positives", "Per class: labels in the reference.", per_class
        )
        self.class_fp = counter(
            "tagllm_class_false_positives", "Per class: labels not in the reference.", per_class
        )
        self.class_fn = counter(
            "tagllm_class_false_negatives", "Per class: reference labels missed.", per_class
        )
        per_band = ("strategy", "vocabulary", "band")
        self.band_verified = counter(
            "tagllm_band_verified", "Verified candidates of referenced images, by score band.", per_band
        )
        self.band_agreed = counter(
            "tagllm_band_agreed", "Of those, the candidates the reference has, by score band.", per_band
        )
        self.verified = counter("tagllm_candidates_verified", "Candidates asked a yes/no question.")
        self.confirmed = counter("tagllm_candidates_confirmed", "Candidates the yes/no question kept.")
        self.dropped = counter("tagllm_dropped_answers", "Answer pieces that named no allowed category.")
        self.records_invalid = counter("tagllm_metrics_records_invalid", "Records skipped as malformed.", ())

    def _admit(self, vocabulary: str, size: int, names: Iterable[str]) -> bool:
        """Whether `vocabulary` may have series (ValueError past the vocabulary bound), and
        whether its per-class series may grow by `names` (no more classes than it has)."""
        with self._lock:
            if vocabulary not in self._vocabularies:
                if len(self._vocabularies) >= self.max_vocabularies:
                    raise ValueError(f"more than {self.max_vocabularies} vocabularies; series are bounded")
                self._vocabularies.add(vocabulary)
            seen = self._classes.setdefault(vocabulary, set())
            grown = seen | set(names)
            if size > self.max_class_labels or len(grown) > size:
                return False
            self._classes[vocabulary] = grown
            return True

    def prepare(self, vocabulary: str, names: Iterable[str]) -> None:
        """Create a vocabulary's series at zero, so rates count its first records too."""
        names = list(names)
        self._admit(vocabulary, len(names), names)
        for strategy, implementation in STRATEGIES.items():
            for stage in implementation.stages:
                self.stage_latency.labels(strategy, stage)
            for counter in (self.images, self.referenced, self.tp, self.fp, self.fn):
                counter.labels(strategy, vocabulary)
            for band in SCORE_BANDS:
                self.band_verified.labels(strategy, vocabulary, band)
                self.band_agreed.labels(strategy, vocabulary, band)
            per_strategy = (
                self.calls,
                self.requests,
                self.prompt_tokens,
                self.generated_tokens,
                self.compute,
            )
            for counter in (*per_strategy, self.cost, self.verified, self.confirmed, self.dropped):
                counter.labels(strategy)
            self.latency.labels(strategy)
            if len(names) <= self.max_class_labels:
                for name in names:
                    for counter in (self.class_tp, self.class_fp, self.class_fn):
                        counter.labels(strategy, vocabulary, name)

    def observe(self, record: TaggedImage) -> None:
        """Counts one record; ValueError (nothing counted) when it would pass the series bounds."""
        result, usage = record.result, record.result.usage
        s, v = result.version.strategy, result.version.vocabulary
        labels = {label.name for label in result.labels}
        reference = set(record.reference or ())
        per_class = self._admit(v, record.vocabulary_size, labels | reference)
        self.images.labels(s, v).inc()
        self.latency.labels(s).observe(record.seconds)
        for stage in result.stages:
            self.stage_latency.labels(s, stage.stage).observe(stage.seconds)
        self.calls.labels(s).inc(usage.mllm_calls)
        self.requests.labels(s).inc(usage.mllm_requests)
        self.prompt_tokens.labels(s).inc(usage.prompt_tokens)
        self.generated_tokens.labels(s).inc(usage.generated_tokens)
        self.compute.labels(s).inc(usage.model_compute_seconds)
        self.cost.labels(s).inc(gpu_dollars(usage.model_compute_seconds, self.gpu_price_per_hour))
        self.verified.labels(s).inc(result.verified)
        self.confirmed.labels(s).inc(result.confirmed)
        self.dropped.labels(s).inc(result.dropped_answers)
        if record.reference is None:
            return
        self.referenced.labels(s, v).inc()
        self.tp.labels(s, v).inc(len(labels & reference))
        self.fp.labels(s, v).inc(len(labels - reference))
        self.fn.labels(s, v).inc(len(reference - labels))
        for verification in result.verifications:
            band = score_band(verification.score)
            self.band_verified.labels(s, v, band).inc()
            if verification.name in reference:
                self.band_agreed.labels(s, v, band).inc()
        if per_class:
            for name in labels & reference:
                self.class_tp.labels(s, v, name).inc()
            for name in labels - reference:
                self.class_fp.labels(s, v, name).inc()
            for name in reference - labels:
                self.class_fn.labels(s, v, name).inc()
