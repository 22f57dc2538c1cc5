"""Label Studio tasks: one scored choice per label as the task's prediction, and
`<out>.config.xml` beside them, the labeling config to import with them. Images are named by the
run's image ids under a URL prefix of the user's choice."""

from __future__ import annotations

import html
import json
from pathlib import Path

from tagllm.bulk.formats.base import ExportFormat, ExportInput, Predictions
from tagllm.files import read_json, write_text_atomically


def write(given: ExportInput, out: Path) -> None:
    tasks = []
    for record in given.records:
        version, labels = record.result.version, record.result.labels
        model_version = (
            f"{version.model}|{version.vocabulary}@{version.vocabulary_version}"
            f"|{version.prompt_template_hash}|{version.strategy}"
        )
        result = [
            {
                "from_name": "tags",
                "to_name": "image",
                "type": "choices",
                "value": {"choices": [label.name]},
                "score": label.score,
            }
            for label in labels
        ]
        tasks.append(
            {
                "data": {"image": given.image_url_prefix + record.image, "image_id": record.image},
                "predictions": [
                    {
                        "model_version": model_version,
                        "score": min((label.score for label in labels), default=0.0),
                        "result": result,
                    }
                ],
            }
        )
    write_text_atomically(out, json.dumps(tasks, indent=1))
    choices = "\n".join(f'    <Choice value="{html.escape(name, quote=True)}"/>' for name in given.categories)
    write_text_atomically(
        out.with_suffix(".config.xml"),
        '<View>\n  <Image name="image" value="$image"/>\n'
        f'  <Choices name="tags" toName="image" choice="multiple" showInline="true">\n{choices}\n'
        "  </Choices>\n</View>\n",
    )


def read(path: Path) -> Predictions:
    scores = {}
    for task in read_json(path):
        image = task["data"].get("image_id") or task["data"]["image"]
        results = task["predictions"][0]["result"] if task.get("predictions") else []
        scores[image] = {r["value"]["choices"][0]: float(r.get("score", 1.0)) for r in results}
    return Predictions(scores, {})


FORMAT = ExportFormat("labelstudio", ".json", write, read, top_level=list)
