#!/usr/bin/env bash
# Calibrates the built-in `world` vocabulary for a demo model: annotates SCENES scenes of the
# world's `calib` split (never trained on, never measured on) with TagLLM through the local
# stack, fits per-class calibration and best-F1 thresholds (`tagllm calibrate`) and writes the
# result over tagllm/vocab/builtin/world.yaml. Calibration is fitted on the raw P(yes), so
# running it again on a calibrated file refits from scratch. After a change to the world itself,
# first regenerate the uncalibrated file: python -m tagllm.datasets.world > tagllm/vocab/builtin/world.yaml
# Usage: scripts/calibrate_world.sh OUT [SCENES] [MODEL_DIR]   (from the repository root, after
# make setup; MODEL_DIR defaults to the shipped demo model)
set -euo pipefail
OUT=${1:?usage: scripts/calibrate_world.sh OUT [SCENES] [MODEL_DIR]}
SCENES=${2:-1000}
T=.venv/bin/tagllm
. scripts/stack_up.sh
[ -f "$OUT/calib/annotations.json" ] || $T dataset world --out "$OUT/calib" --count "$SCENES" --split calib
stack_up "$OUT/stack" "${3:-}"
$T annotate "$OUT/calib/annotations.json" --images "$OUT/calib/images" --vocab world --out "$OUT/run" \
  --address "$ADDRESS"
$T calibrate "$OUT/run" --gold "$OUT/calib/annotations.json" --vocab world --name world \
  --out tagllm/vocab/builtin/world.yaml --report "$OUT/calibration.md" \
  --source "TagLLM on $SCENES scenes of the world's calib split, ${3:-the shipped demo model}"
