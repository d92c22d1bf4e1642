#!/usr/bin/env bash
# Sparse autoencoders on the bundled shapes-world CLIP and their latents' ground-truth purity
# (models/shapes-clip/card.md, "Sparse autoencoders"): caches of 4,000 training scenes (seed 4242)
# and 2,000 held-out scenes (seed 9101); TopK and Matryoshka SAEs trained on the training cache
# at the image embedding (output) and at the residual after block 2 (layer:2); purity measured on
# the held-out cache (sae purity): for each latent active on at least 10 held-out scenes, the
# precision of its best value of each attribute among the scenes where it fires; a latent counts
# as pure at >= 0.9. Dead: never active on the held-out scenes.
# Usage: docs/measure-sae.sh [WORK] (default /tmp/vitscope-sae). SAE files are left in WORK.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli="$here/build/bin/vitscope-cli"
model="$here/models/shapes-clip"
work=${1:-/tmp/vitscope-sae}
rm -rf "$work" && mkdir -p "$work"
cd "$work"
"$cli" shapes generate --out train --count 4000 --seed 4242 >/dev/null 2>&1
"$cli" shapes generate --out test --count 2000 --seed 9101 >/dev/null 2>&1
"$cli" cache build --model "$model" --images train/images --out train-cache >/dev/null 2>&1
"$cli" cache build --model "$model" --images test/images --out test-cache >/dev/null 2>&1
run() {  # name, then sae train flags
  local name=$1
  shift
  echo "== $name: sae train $*"
  start=$(date +%s.%N)
  "$cli" sae train --cache train-cache --out "$name.safetensors" --seed 0 "$@" --report "$name-train.json" 2>/dev/null | sed -n '2,$p'
  echo "   ($(echo "$(date +%s.%N) - $start" | bc) s in all, this machine)"
  echo "-- held-out scenes:"
  "$cli" sae purity --sae "$name.safetensors" --cache test-cache --min-active 10 --report "$name-test.json" 2>/dev/null
}
run topk-output --at output --kind topk --k 8 --width 128 --epochs 200 --batch 256 --lr 1e-3 --dead-tokens 100000
run matryoshka-output --at output --kind matryoshka --k 8 --width 128 --epochs 200 --batch 256 --lr 1e-3
run topk-layer2 --at layer:2 --kind topk --k 8 --width 128 --epochs 200 --batch 256 --lr 1e-3 --dead-tokens 100000
