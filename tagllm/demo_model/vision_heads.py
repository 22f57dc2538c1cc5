"""What the vision phase of the demo model's training learns through.

- `max_pooled_linear`: presence logits from a linear layer over the element-wise maximum of an
  image's tokens (the shipped recipe's head);
- `name_scores`: a class is present where some image token lies close to its name's own token
  embeddings in the language model, which puts seeing in the space where names are read.
"""

from __future__ import annotations

from tagllm.datasets.world import CLASSES


def max_pooled_linear(hidden: int, classes: int):
    """Presence logits: a linear layer over the element-wise maximum of an image's tokens."""
    import torch

    class MaxPooledLinear(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(hidden, classes)

        def forward(self, images) -> torch.Tensor:
            return self.linear(torch.stack([tokens.max(dim=0).values for tokens in images]))

    return MaxPooledLinear()


def name_scores(embeddings, names: list[list[list[int]]]):
    """A module giving presence logits of the world's classes for each image: the best cosine
    similarity between one of its image tokens and the class name's token embeddings (the name
    as a list starts with it, and after a space, as everywhere else), scaled, plus a bias per
    class. `names`: per class, the token ids of each spelling."""
    import torch

    class NameScores(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = embeddings
            self.scale = torch.nn.Parameter(torch.tensor(10.0))
            self.bias = torch.nn.Parameter(torch.full((len(names),), -2.0))

        def forward(self, images) -> torch.Tensor:
            table = self.embeddings.weight
            spellings = [torch.stack([table[ids].mean(dim=0) for ids in forms]) for forms in names]
            rows = []
            for tokens in images:
                tokens = torch.nn.functional.normalize(tokens, dim=-1)
                best = [
                    (tokens @ torch.nn.functional.normalize(forms, dim=-1).T).max(dim=0).values.mean()
                    for forms in spellings
                ]
                rows.append(torch.stack(best))
            return self.scale * torch.stack(rows) + self.bias

    return NameScores()


def name_token_ids(tokenizer) -> list[list[list[int]]]:
    return [
        [tokenizer(spelling, add_special_tokens=False)["input_ids"] for spelling in (c.name, " " + c.name)]
        for c in CLASSES
    ]
