#!/usr/bin/env bash
# Measures the gradient heatmaps' defaults of issue 27 before and after, on the bundled models and
# the held-out scenes docs/run-shapes-analyses.sh uses (seed 9101, the first 500 scenes): Chefer on
# CLIP from the last layer only (its CLIP notebook) instead of every layer, Grad-CAM's target the
# prompt's probability over the class prompts (pytorch-grad-cam's CLIP recipe) instead of its logit.
# The "before" rows pass the old defaults as options. Usage: docs/measure-gradient-defaults.sh [WORK]
# (WORK defaults to /tmp/vitscope-gradient-defaults; about 2 minutes on 2 cores).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli="$here/build/bin/vitscope-cli"
clip="$here/models/shapes-clip"
vit="$here/models/shapes-vit"
work=${1:-/tmp/vitscope-gradient-defaults}
rm -rf "$work" && mkdir -p "$work"
cd "$work"
"$cli" shapes generate --out test --count 2000 --seed 9101 >/dev/null 2>&1

run() {  # label, then evaluate-heatmaps options
  local label=$1
  shift
  "$cli" evaluate-heatmaps --dataset test --prompt "a {color} object" "$@" 2>/dev/null | tail -n +2 | grep -E '^(gradcam|chefer) ' |
    sed "s/^/$label  /"
}
echo "== localisation of the main object (500 scenes; method, images, pixel accuracy, mIoU, mAP, pointing game)"
run "shapes-clip before" --model "$clip" --count 500 --methods gradcam,chefer --gradcam-target logit --chefer-start-layer 0
run "shapes-clip after " --model "$clip" --count 500 --methods gradcam,chefer
run "shapes-vit  before" --model "$vit" --aligner "$vit/aligner.safetensors" --count 500 --methods gradcam --gradcam-target logit
run "shapes-vit  after " --model "$vit" --aligner "$vit/aligner.safetensors" --count 500 --methods gradcam
echo "== text grounding: the distractor (every scene of the 2,000 that has one)"
run "shapes-clip before" --model "$clip" --target distractor --methods gradcam,chefer --gradcam-target logit --chefer-start-layer 0
run "shapes-clip after " --model "$clip" --target distractor --methods gradcam,chefer
