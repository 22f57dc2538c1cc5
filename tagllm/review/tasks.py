"""Label Studio tasks of the images under review, and reviewers' answers read back.

A task shows the image, the model's labels as a pre-annotation (one prediction whose choices
are the labels it kept) and, as text beside it, every verified candidate's served score with
whether the model kept it, uncertain ones first. The labeling config lists every category of
the vocabulary, so a reviewer answers with the image's whole label set.
"""

from __future__ import annotations

import html
from typing import Any

from tagllm.bulk.records import AnnotationRecord, Review
from tagllm.review.band import Band
from tagllm.vocab.model import Vocabulary

FROM_NAME = "tags"
TO_NAME = "image"


def labeling_config(vocabulary: Vocabulary) -> str:
    choices = "\n".join(
        f'    <Choice value="{html.escape(c.name, quote=True)}"/>' for c in vocabulary.categories
    )
    return (
        "<View>\n"
        f'  <Image name="{TO_NAME}" value="$image"/>\n'
        '  <Header value="Model scores (calibrated where the vocabulary is)"/>\n'
        '  <Text name="scores" value="$scores"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="multiple" showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def _scores_text(record: AnnotationRecord, band: Band) -> str:
    verifications = sorted(record.result.verifications, key=lambda v: (v.score not in band, -v.score))
    parts = [
        f"{v.name} {v.score:.2f} {'kept' if v.confirmed else 'dropped'}"
        + (" (uncertain)" if v.score in band else "")
        for v in verifications
    ]
    proposed = [label.name for label in record.result.labels if label.provenance.verdict is None]
    parts += [f"{name} proposed, not verified" for name in proposed]
    return "; ".join(parts) or "no candidates"


def task(record: AnnotationRecord, band: Band, image_url: str) -> dict[str, Any]:
    version = record.result.version
    labels = [label.name for label in record.result.labels]
    scores = [label.score for label in record.result.labels]
    return {
        "data": {"image": image_url, "image_id": record.image, "scores": _scores_text(record, band)},
        "predictions": [
            {
                "model_version": f"{version.model}|{version.vocabulary}@{version.vocabulary_version}"
                f"|{version.prompt_template_hash}|{version.strategy}",
                "score": min(scores, default=0.0),
                "result": [
                    {
                        "from_name": FROM_NAME,
                        "to_name": TO_NAME,
                        "type": "choices",
                        "value": {"choices": labels},
                    }
                ]
                if labels
                else [],
            }
        ],
    }


def reviews_from_export(tasks: list[dict[str, Any]], project: int, vocabulary: Vocabulary) -> list[Review]:
    """The latest submitted (not skipped) annotation of each task, as a review; ValueError for an
    answer naming a label that is not a category of the vocabulary."""
    known = set(vocabulary.names)
    reviews = []
    for item in tasks:
        answers = [a for a in item.get("annotations") or [] if not a.get("was_cancelled")]
        if not answers:
            continue
        answer = max(answers, key=lambda a: (str(a.get("updated_at") or ""), int(a.get("id") or 0)))
        labels: set[str] = set()
        for result in answer.get("result") or []:
            if result.get("from_name") == FROM_NAME and result.get("type") == "choices":
                labels.update(result.get("value", {}).get("choices", []))
        unknown = sorted(labels - known)
        if unknown:
            raise ValueError(
                f"task {item.get('id')}: answer names {unknown[:5]}, not in vocabulary {vocabulary.name!r}"
            )
        who = answer.get("completed_by")
        if isinstance(who, dict):
            who = who.get("email") or who.get("id")
        reviews.append(
            Review(
                image=str(item["data"]["image_id"]),
                labels=tuple(sorted(labels)),
                reviewer=f"label-studio:{who}",
                project=project,
                task=int(item["id"]),
                annotation=int(answer.get("id") or 0),
                updated_at=str(answer.get("updated_at") or ""),
            )
        )
    return reviews
