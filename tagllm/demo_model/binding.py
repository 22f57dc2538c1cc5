"""Whether the demo model's yes/no answers depend on the name asked: within-image AUC of P(yes).

For every scene, every class of the vocabulary is asked about; each scene's AUC is the share of
its (drawn class, class not drawn) pairs in which the drawn one gets the higher P(yes) (ties
count half), averaged over scenes: the same measure `tagllm eval` reports
(`tagllm.calibration.measures`). A model that answers from the image alone or from the name
alone scores 0.5; one that binds the name to what it sees scores near 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from tagllm.calibration.measures import Sample
from tagllm.calibration.measures import within_image_auc as image_auc
from tagllm.prompts import Prompts
from tagllm.vocab import Vocabulary

BATCH_ROWS = 64


def yes_probabilities(processor, model, prompts: Sequence[str], images: Sequence) -> list[float]:
    """P(yes) normalised over yes and no, at the answer's first token, one per (prompt, image)."""
    import torch

    from tagllm.demo_model.training import chat_parts

    head, tail = chat_parts(processor)
    yes, no = (processor.tokenizer(word, add_special_tokens=False)["input_ids"][0] for word in ("yes", "no"))
    model.eval()
    out: list[float] = []
    with torch.no_grad():
        for start in range(0, len(prompts), BATCH_ROWS):
            rows = slice(start, start + BATCH_ROWS)
            texts = [head + prompt + tail for prompt in prompts[rows]]
            inputs = processor(images=list(images[rows]), text=texts, return_tensors="pt", padding=True)
            logits = model(**inputs).logits
            last = inputs["attention_mask"].sum(dim=1) - 1  # right padding
            answer = logits[torch.arange(len(texts)), last].float().softmax(dim=-1)
            out.extend((answer[:, yes] / (answer[:, yes] + answer[:, no]).clamp_min(1e-30)).tolist())
    return out


def within_image_auc(processor, model, vocabulary: Vocabulary, scenes: Sequence, concepts: bool) -> float:
    """Within-image AUC of P(yes) over `scenes` (objects with `.image` and `.labels`)."""
    prompts = Prompts.for_vocabulary(vocabulary)
    categories = list(vocabulary.categories)
    questions = [prompts.yes_no(c, vocabulary, concept_knowledge=concepts) for c in categories]
    rows = [(question, drawn.image) for drawn in scenes for question in questions]
    scores = yes_probabilities(processor, model, [q for q, _ in rows], [i for _, i in rows])
    samples = [
        Sample(str(s), c.name, score, score, c.name in drawn.labels)
        for s, drawn in enumerate(scenes)
        for c, score in zip(categories, scores[s * len(categories) : (s + 1) * len(categories)], strict=True)
    ]
    auc, _ = image_auc(samples)
    return 0.5 if auc is None else auc
