"""The TagLLM paper's ablation, run on the user's data: each row is one set of strategy options,
annotated (resumably) and scored against human labels in one table.

Rows, as the paper builds the method up: open-ended prompting (OEP), whole-vocabulary
multi-option prompting (MOP), exhaustive binary prompting on the bare name (BP), the two-stage
pipeline (MOP candidates, then BP on them), + grouped candidates (DCP, with co-occurrence
groups: CooP), + concept-aligned disambiguation (CAD: the full method), and the full method
with the paper's simple prompts and with the DiscP and RandP partitions in place of CooP.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from tagllm.bulk.annotate import AnnotateSettings, Tagger, annotate
from tagllm.bulk.progress import Progress
from tagllm.bulk.run import RunDirectory
from tagllm.bulk.sources import Item, read_source
from tagllm.datasets.readers import read_labels
from tagllm.eval.report import RunEvaluation
from tagllm.eval.runs import evaluate_run, map_gold
from tagllm.metrics.cost import DEFAULT_GPU_PRICE_PER_HOUR
from tagllm.strategies import StrategyOptions
from tagllm.vocab import Vocabulary, VocabularyError, named_vocabulary

if TYPE_CHECKING:
    from tagllm.client import TaggingClient


@dataclasses.dataclass(frozen=True)
class AblationRow:
    name: str
    description: str
    options: StrategyOptions

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


ROWS = (
    AblationRow("OEP", "open-ended prompt, answer mapped to the vocabulary", StrategyOptions("open_ended")),
    AblationRow(
        "MOP", "one multi-option prompt listing the whole vocabulary", StrategyOptions("multi_option")
    ),
    AblationRow("BP", "one yes/no prompt per category, bare name", StrategyOptions("binary")),
    AblationRow(
        "two-stage",
        "MOP candidates, then bare-name yes/no on each",
        StrategyOptions("tagllm", grouping=False, concept_knowledge=False),
    ),
    AblationRow(
        "+ DCP",
        "grouped candidates (CooP), then bare-name yes/no",
        StrategyOptions("tagllm", concept_knowledge=False),
    ),
    AblationRow("+ CAD (TagLLM)", "grouped candidates, concept-aligned yes/no", StrategyOptions("tagllm")),
    AblationRow(
        "TagLLM, simple prompts",
        "the paper's simple prompt style",
        StrategyOptions("tagllm", prompt_style="simple"),
    ),
    AblationRow(
        "TagLLM, DiscP",
        "groups of categories that do not co-occur",
        StrategyOptions("tagllm", partition="discp"),
    ),
    AblationRow(
        "TagLLM, RandP", "random groups of the same sizes", StrategyOptions("tagllm", partition="randp")
    ),
)

# What the paper reports for Qwen3-VL-8B on COCO 2014 (80 classes) and its 251-class Objects365
# subset: validation mAP of a ResNet-101 trained on each label source. Its per-row annotation
# scores depend on the model and are not restated here.
PAPER_DOWNSTREAM_MAP = {
    "COCO 2014": {"human labels": 83.3, "TagLLM labels": 82.7, "multi-option labels": 78.8},
    "Objects365 (251 classes)": {"human labels": 48.6, "TagLLM labels": 46.5},
}


def rows_named(names: Iterable[str] | None) -> tuple[AblationRow, ...]:
    """The rows whose names or slugs are given (all rows for None); ValueError for unknown ones."""
    if names is None:
        return ROWS
    by_key = {key: row for row in ROWS for key in (row.name, row.slug)}
    unknown = [n for n in names if n not in by_key]
    if unknown:
        raise ValueError(f"unknown ablation rows {unknown}; known: {', '.join(r.slug for r in ROWS)}")
    return tuple(dict.fromkeys(by_key[n] for n in names))


@dataclasses.dataclass(frozen=True)
class AblationData:
    """The images of a labelled dataset an ablation annotates, and what scores them."""

    items: list[Item]
    gold: dict[str, set[str]]
    categories: list[str]
    # None where the vocabulary is registered at the gateway only: its names are the gold file's.
    vocabulary: Vocabulary | None


def read_ablation_data(
    labels: str,
    images: str | None,
    vocabulary: str,
    limit: int = 0,
    allow_outside_root: bool = False,
    in_process: bool = False,
) -> AblationData:
    """The first `limit` images (0: all) of a label file, with their gold labels in `vocabulary`'s
    names. Raises ValueError (a VocabularyError, an EvalError), SourceError or DatasetError."""
    labelled = read_labels(labels)
    items = read_source(labels, images, allow_outside_root)[: limit or None]
    try:
        named: Vocabulary | None = named_vocabulary(vocabulary)
    except VocabularyError:
        if in_process:  # the model here needs the vocabulary itself
            raise
        named = None
    mapped, categories = map_gold(labelled, named) if named else (labelled.labels, list(labelled.categories))
    gold = {item.image_id: set(mapped.get(item.image_id, ())) for item in items}
    return AblationData(items, gold, categories, named)


def taggers_in_process(model_dir: str, vocabulary: Vocabulary) -> Callable[[StrategyOptions], Tagger]:
    """A tagger per row's options, all running one checkpoint in this process."""
    from tagllm.bulk.local_tagger import LocalTagger
    from tagllm.mllm.transformers_backend import TransformersMLLM

    mllm = TransformersMLLM(model_dir)
    return lambda options: LocalTagger(mllm, vocabulary, options)


def taggers_through_gateway(
    client: TaggingClient, vocabulary: str, timeout: float
) -> Callable[[StrategyOptions], Tagger]:
    """A tagger per row's options, all through one gateway."""
    from tagllm.bulk.gateway_tagger import GatewayTagger
    from tagllm.convert import options_to_proto

    return lambda options: GatewayTagger(client, vocabulary, options_to_proto(options), timeout=timeout)


def run_ablation(
    items: list[Item],
    gold: dict[str, set[str]],
    categories: list[str],
    out: Path,
    tagger_for: Callable[[StrategyOptions], Tagger],
    rows: tuple[AblationRow, ...] = ROWS,
    settings: AnnotateSettings | None = None,
    gpu_price_per_hour: float = DEFAULT_GPU_PRICE_PER_HOUR,
    manifest: dict | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> list[tuple[AblationRow, RunEvaluation]]:
    """Annotates `items` once per row into `out/<row>` (resuming what is there) and scores each."""
    results = []
    for row in rows:
        run = RunDirectory(out / row.slug)
        run.open({**(manifest or {}), "ablation_row": row.name, "options": dataclasses.asdict(row.options)})
        log(f"{row.name}: {row.description}")
        progress = Progress(len(items), len(run.results()), gpu_price_per_hour)
        try:
            annotate(items, run, tagger_for(row.options), None, settings or AnnotateSettings(), progress)
        finally:
            progress.close()
        results.append((row, evaluate_run(run.path, gold, categories, gpu_price_per_hour)))
    return results


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def ablation_table(results: list[tuple[AblationRow, RunEvaluation]], title: str) -> str:
    lines = [
        f"## Ablation: {title}",
        "",
        "| row | what it does | OF1 | OP | OR | CF1 | CP | CR | mAP | MLLM calls/img | model s/img "
        "| missing |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row, run in results:
        s = run.scores
        cells = [row.name, row.description, *map(_pct, (s.of1, s.op, s.orec, s.cf1, s.cp, s.cr, s.map))]
        cells += [f"{run.calls_per_image:.1f}", f"{run.compute_seconds_per_image:.3f}", str(run.missing)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "For reference, the paper's downstream results (Qwen3-VL-8B, ResNet-101 validation mAP):",
        "",
    ]
    for dataset, numbers in PAPER_DOWNSTREAM_MAP.items():
        lines.append(f"- {dataset}: " + ", ".join(f"{k} {v}" for k, v in numbers.items()))
    return "\n".join(lines) + "\n"
