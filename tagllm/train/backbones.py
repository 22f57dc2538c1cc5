"""ResNet shapes the downstream recipe can build from a config (no download), by name.

Data only, so the CLI can list them without importing torch.
"""

from __future__ import annotations

BACKBONES: dict[str, dict] = {
    "resnet101": {
        "depths": [3, 4, 23, 3],
        "hidden_sizes": [256, 512, 1024, 2048],
        "layer_type": "bottleneck",
    },
    "resnet50": {"depths": [3, 4, 6, 3], "hidden_sizes": [256, 512, 1024, 2048], "layer_type": "bottleneck"},
    "resnet18": {"depths": [2, 2, 2, 2], "hidden_sizes": [64, 128, 256, 512], "layer_type": "basic"},
    # A few hundred thousand parameters: trains on a CPU in seconds.
    "tiny": {
        "depths": [1, 1, 1, 1],
        "hidden_sizes": [16, 32, 64, 96],
        "layer_type": "basic",
        "embedding_size": 16,
    },
}
