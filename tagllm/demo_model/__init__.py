"""The demo model: a small Qwen2.5-VL trained from scratch on the synthetic world, so that the
local stack tags what is drawn without downloading weights."""
