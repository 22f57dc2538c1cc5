"""The demo model's training: interrupted and resumed, it ends exactly where one run ends."""

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from tagllm.demo_model.training import DemoRecipe, DemoTrainer, TrainingStateError

MICRO = DemoRecipe(
    image_size=56, scene_size=224, hidden_size=32, layers=1, heads=2, vision_hidden_size=32, vision_layers=1,
    kv_heads=2, list_steps=1, vision_steps=3, vision_batch=2, steps=3, batch=2, warmup_steps=1, threads=1,
    checkpoint_every=100, track_every=0,
)  # fmt: skip


def _weights(directory):
    return load_file(str(directory / "model.safetensors"))


@pytest.mark.parametrize("vision_head", ["linear", "names"])
def test_a_run_split_in_three_ends_with_the_weights_of_one_run(tmp_path, vision_head):
    recipe = dataclasses.replace(MICRO, vision_head=vision_head)
    whole = DemoTrainer(tmp_path / "whole", recipe, log=lambda line: None).run()
    split = DemoTrainer(tmp_path / "split", recipe, log=lambda line: None)
    assert split.run(stop_after=2) is None  # two vision steps
    assert split.run(stop_after=2) is None  # the last vision step and the first instruction step
    resumed = split.run()
    one, other = _weights(whole), _weights(resumed)
    assert one.keys() == other.keys()
    assert all(torch.equal(one[name], other[name]) for name in one)
    assert (resumed / "recipe.json").exists() and (resumed / "tokenizer.json").exists()


def test_a_saved_run_refuses_another_recipe(tmp_path):
    DemoTrainer(tmp_path / "m", MICRO, log=lambda line: None).run(stop_after=1)
    other = dataclasses.replace(MICRO, steps=4)
    with pytest.raises(TrainingStateError, match="another recipe"):
        DemoTrainer(tmp_path / "m", other, log=lambda line: None).run()


@pytest.mark.parametrize("freeze_vision", [True, False])
def test_the_instruction_phase_leaves_the_vision_tower_as_the_vision_phase_left_it(tmp_path, freeze_vision):
    recipe = dataclasses.replace(MICRO, freeze_vision=freeze_vision, match_text_scale=False)
    trainer = DemoTrainer(tmp_path / "m", recipe, log=lambda line: None)
    trainer.run(stop_after=recipe.vision_steps)  # the vision phase, saved
    seen = {
        k: v for k, v in _weights(trainer.export_saved()).items() if ".visual." in k or k.startswith("visual")
    }
    final = _weights(trainer.run())
    assert seen and all(name in final for name in seen)
    unchanged = all(torch.equal(seen[name], final[name]) for name in seen)
    assert unchanged == freeze_vision


def test_image_tokens_enter_the_language_model_at_the_scale_of_its_text_embeddings(tmp_path):
    """After the vision phase only the merger's last layer is rescaled, by one factor."""
    trainer = DemoTrainer(tmp_path / "m", dataclasses.replace(MICRO, steps=1), log=lambda line: None)
    trainer.run(stop_after=MICRO.vision_steps)
    seen = _weights(trainer.export_saved())
    final = _weights(trainer.run())
    last = [name for name in seen if "merger.mlp.2" in name]
    ratios = {name: (final[name] / seen[name]).flatten() for name in last}
    factor = next(iter(ratios.values()))[0]
    assert last and all(torch.allclose(r, factor.expand_as(r), rtol=1e-4) for r in ratios.values())
    assert all(
        torch.equal(seen[n], final[n])
        for n in seen
        if ".visual." in n or n.startswith("visual")
        if n not in last
    )

    from transformers import AutoModelForImageTextToText, AutoProcessor

    from tagllm.mllm.processors import register_processors

    register_processors()
    processor = AutoProcessor.from_pretrained(tmp_path / "m")
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "m")
    pixels, grid, _ = trainer._vision_batch(processor, 0)
    with torch.no_grad():
        tokens = model.model.get_image_features(pixels, grid).pooler_output
    tokens = torch.cat(list(tokens)) if isinstance(tokens, (list, tuple)) else tokens
    text = model.get_input_embeddings().weight.norm(dim=-1).mean()
    assert abs(float(tokens.norm(dim=-1).mean() / text) - 1) < 0.05


def test_the_training_curve_records_binding_and_list_quality_on_validation_scenes(tmp_path, monkeypatch):
    monkeypatch.setattr("tagllm.demo_model.training.TRACKED_SCENES", 2)
    recipe = dataclasses.replace(MICRO, track_every=2, steps=4)
    trainer = DemoTrainer(tmp_path / "m", recipe, log=lambda line: None)
    trainer.run()
    points = [json.loads(line) for line in (trainer.work / "curve.jsonl").read_text().splitlines()]
    assert [p["step"] for p in points] == [2, 4]
    for point in points:
        assert 0.0 <= point["auc_bare"] <= 1.0 and 0.0 <= point["auc_concepts"] <= 1.0
        assert 0.0 <= point["multi_option_of1"] <= 1.0 and 0.0 <= point["tagllm_of1"] <= 1.0
