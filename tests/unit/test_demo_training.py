"""The demo model's training: interrupted and resumed, it ends exactly where one run ends."""

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from tagllm.demo_model.training import DemoRecipe, DemoTrainer, TrainingStateError

MICRO = DemoRecipe(
    image_size=56, scene_size=224, hidden_size=32, layers=1, heads=2, vision_hidden_size=32, vision_layers=1,
    vision_steps=3, vision_batch=2, steps=3, batch=2, warmup_steps=1, threads=1, checkpoint_every=100,
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
    recipe = dataclasses.replace(MICRO, freeze_vision=freeze_vision)
    trainer = DemoTrainer(tmp_path / "m", recipe, log=lambda line: None)
    trainer.run(stop_after=recipe.vision_steps)  # the vision phase, saved
    seen = {
        k: v for k, v in _weights(trainer.export_saved()).items() if ".visual." in k or k.startswith("visual")
    }
    final = _weights(trainer.run())
    assert seen and all(name in final for name in seen)
    unchanged = all(torch.equal(seen[name], final[name]) for name in seen)
    assert unchanged == freeze_vision
