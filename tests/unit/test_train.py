import torch

from tagllm.datasets.readers import read_coco
from tagllm.datasets.synthetic import generate
from tagllm.train.recipe import AsymmetricLoss, Example, TrainSettings, WeightEMA, train


def test_asymmetric_loss_is_focal_on_negatives():
    loss = AsymmetricLoss(gamma_negative=4, gamma_positive=0, clip=0.0)
    targets = torch.tensor([[0.0]])
    easy, hard = loss(torch.tensor([[-4.0]]), targets), loss(torch.tensor([[2.0]]), targets)
    plain = torch.nn.functional.binary_cross_entropy_with_logits
    assert easy / plain(torch.tensor([[-4.0]]), targets, reduction="sum") < 0.01
    assert hard > easy
    clipped = AsymmetricLoss(clip=0.05)(torch.tensor([[-4.0]]), targets)
    assert clipped == 0  # an easy negative below the clip margin costs nothing


def test_ema_follows_the_model_with_warmup():
    model = torch.nn.Linear(2, 1)
    ema = WeightEMA(model, decay=0.9997)
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    moved = ema.model.weight - (model.weight - 1.0)
    assert torch.all(moved > 0.5)  # early updates weigh the live model heavily


def test_training_on_synthetic_images_beats_chance(tmp_path):
    annotations = generate(tmp_path, 96, seed=5, size=64)
    labelled = read_coco(annotations)
    examples = [Example(tmp_path / "images" / name, labels) for name, labels in labelled.labels.items()]
    classes = list(labelled.categories)
    settings = TrainSettings(backbone="tiny", image_size=64, epochs=6, batch_size=16, learning_rate=3e-3)
    result, model = train(examples[:64], examples[64:], classes, settings, log=lambda line: None)
    positives = sum(len(e.labels) for e in examples[64:]) / (len(examples[64:]) * len(classes))
    assert positives < 0.35  # chance mAP is about the positive rate
    assert result["val_map"] > 0.7
    assert len(result["history"]) == 6 and result["classes"] == classes
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, len(classes))
