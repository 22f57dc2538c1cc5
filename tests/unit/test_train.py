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


def test_micro_batches_add_up_to_the_whole_batchs_gradient():
    from tagllm.train.recipe import accumulate_gradients

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    pixels, targets = torch.randn(8, 3, 2, 2), (torch.rand(8, 5) > 0.5).float()
    gradients = []
    for micro in (8, 3):
        model.zero_grad()
        loss = accumulate_gradients(model, AsymmetricLoss(), pixels, targets, micro)
        gradients.append((loss, [p.grad.clone() for p in model.parameters()]))
    (whole_loss, whole), (micro_loss, micro) = gradients
    assert abs(whole_loss - micro_loss) < 1e-4
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(whole, micro, strict=True))


def test_a_pretrained_backbone_is_loaded_from_a_local_directory(tmp_path):
    import pytest
    from transformers import ResNetConfig, ResNetModel

    from tagllm.train.recipe import BACKBONES, Classifier

    saved = ResNetModel(ResNetConfig(**BACKBONES["tiny"]))
    saved.save_pretrained(tmp_path / "resnet")
    model = Classifier("resnet101", 7, pretrained=str(tmp_path / "resnet"))
    for name, tensor in saved.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[name], tensor), name
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 7)
    with pytest.raises(ValueError, match="not a checkpoint directory"):
        Classifier("tiny", 7, pretrained=str(tmp_path / "nothing"))


def test_compare_measures_the_gap_from_the_best_baseline():
    from tagllm.train.compare import compare_table

    table = compare_table(0.8, {"multi": 0.6, "binary": 0.7}, 0.75)
    assert "best baseline (binary)" in table and "closed by TagLLM: 50.0%" in table


def test_ctrl_c_keeps_the_best_weights_of_the_finished_epochs(tmp_path):
    import pytest

    annotations = generate(tmp_path, 24, seed=3, size=48)
    labelled = read_coco(annotations)
    examples = [Example(tmp_path / "images" / name, labels) for name, labels in labelled.labels.items()]
    settings = TrainSettings(backbone="tiny", image_size=48, epochs=5, batch_size=8, learning_rate=3e-3)

    def interrupt_in_epoch_2(line):
        if line.startswith("epoch 2/"):
            raise KeyboardInterrupt

    result, model = train(
        examples[:16], examples[16:], list(labelled.categories), settings, interrupt_in_epoch_2
    )
    assert result["interrupted"] and result["best_epoch"] == 1
    assert model(torch.zeros(1, 3, 48, 48)).shape == (1, len(labelled.categories))

    def interrupt_at_once(line):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(examples[:16], examples[16:], list(labelled.categories), settings, interrupt_at_once)
