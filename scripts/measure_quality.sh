#!/usr/bin/env bash
# QUALITY.md's tables, measured through the local stack on the default model:
#   1. every ablation row on SCENES held-out world scenes (OF1 ... calls and model seconds per image);
#   2. stage-1 candidates of the TagLLM rows (precision and recall before any yes/no question);
#   3. the served TagLLM scores' calibration (ECE) and within-image AUC;
#   4. exhaustive yes/no with every class scored (raw P(yes), thresholds 0): mAP and within-image AUC;
#   5. each row's OF1 against the open-ended prompt's, with a paired-bootstrap 95% interval.
# Usage: scripts/measure_quality.sh OUT [SCENES] [MODEL_DIR]   (from the repository root, after
# make setup; MODEL_DIR defaults to the shipped demo model)
set -euo pipefail
OUT=${1:?usage: scripts/measure_quality.sh OUT [SCENES] [MODEL_DIR]}
SCENES=${2:-200}
T=.venv/bin/tagllm
PY=.venv/bin/python
mkdir -p "$OUT"
[ -f "$OUT/heldout/annotations.json" ] || $T dataset world --out "$OUT/heldout" --count "$SCENES" --split heldout
. scripts/stack_up.sh
stack_up "$OUT/stack" "${3:-}"
start=$(date +%s)
$T ablation "$OUT/heldout/annotations.json" --images "$OUT/heldout/images" --vocab world \
  --out "$OUT/ablation" --address "$ADDRESS" --window 4 | tee "$OUT/ablation.md"
echo "ablation: $(($(date +%s) - start)) s"
# The served TagLLM scores: calibration (ECE) and within-image AUC over every verified candidate.
$T eval --pred "$OUT/ablation/cad-tagllm" --gold "$OUT/heldout/annotations.json" --vocab world | tee "$OUT/tagllm-eval.md"
$PY scripts/stage1_candidates.py "$OUT/ablation" "$OUT/heldout/annotations.json" | tee "$OUT/stage1.md"
$PY scripts/paired_bootstrap.py "$OUT/ablation" "$OUT/heldout/annotations.json" | tee "$OUT/against-oep.md"
$PY scripts/world_scores_vocabulary.py >"$OUT/world-scores.yaml"
$T vocab register "$OUT/world-scores.yaml" --address "$ADDRESS" --replace
$T ablation "$OUT/heldout/annotations.json" --images "$OUT/heldout/images" --vocab world-scores \
  --rows bp --out "$OUT/bp-scores" --address "$ADDRESS" --window 4 | tee "$OUT/bp-scores.md"
$T eval --pred "$OUT"/bp-scores/*/ --gold "$OUT/heldout/annotations.json" --vocab "$OUT/world-scores.yaml" | tee "$OUT/bp-scores-eval.md"
