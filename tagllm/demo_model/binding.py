"""Whether the demo model's yes/no answers depend on the name asked: within-image AUC of P(yes).

For every scene, every class of the vocabulary is asked about; the AUC is the share of
(drawn class, class not drawn) pairs of the same scene in which the drawn one gets the higher
P(yes) (ties count half). A model that answers from the image alone or from the name alone
scores 0.5; one that binds the name to what it sees scores near 1. Training logs it as it goes
(`DemoRecipe.track_every`).
"""

from __future__ import annotations

from collections.abc import Sequence

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
    return pairwise_auc(
        [
            [(scores[s * len(categories) + k], c.name in drawn.labels) for k, c in enumerate(categories)]
            for s, drawn in enumerate(scenes)
        ]
    )


def pairwise_auc(images: Sequence[Sequence[tuple[float, bool]]]) -> float:
    """Share of (positive, negative) pairs within one image ranked right, ties half; 0.5 when no
    image has both."""
    right = pairs = 0.0
    for scored in images:
        positives = [s for s, present in scored if present]
        negatives = [s for s, present in scored if not present]
        for p in positives:
            for n in negatives:
                right += 1.0 if p > n else 0.5 if p == n else 0.0
                pairs += 1
    return right / pairs if pairs else 0.5
