#!/usr/bin/env bash
# Sparse autoencoders on the bundled shapes-world CLIP and their latents' ground-truth purity
# (models/shapes-clip/card.md, "Sparse autoencoders"): caches of 4,000 training scenes (seed 4242)
# and 2,000 held-out scenes (seed 9101); TopK and Matryoshka SAEs trained on the training cache
# at the image embedding (output) and at the residual after block 2 (layer:2); purity measured on
# the held-out cache (sae purity): for each latent active on at least 10 held-out scenes, the
# precision of its best value of each attribute among the scenes where it fires; a latent counts
# as pure at >= 0.9. Dead: never active on the held-out scenes.
# Pure latents are listed as: latent value precision (held-out scenes where it fires).
# Usage: docs/measure-sae.sh [WORK] (default /tmp/vitscope-sae). SAE files are left in WORK; the
# ones in models/shapes-clip/sae/ are its topk-output, matryoshka-output and topk-layer2.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli="$here/build/bin/vitscope-cli"
model=models/shapes-clip  # relative to the repository; sae train --model records it so in the SAE files
work=${1:-/tmp/vitscope-sae}
rm -rf "$work" && mkdir -p "$work"
work=$(cd "$work" && pwd)
cd "$here"
"$cli" shapes generate --out "$work/train" --count 4000 --seed 4242 >/dev/null 2>&1
"$cli" shapes generate --out "$work/test" --count 2000 --seed 9101 >/dev/null 2>&1
"$cli" cache build --model "$model" --images "$work/train/images" --out "$work/train-cache" >/dev/null 2>&1
"$cli" cache build --model "$model" --images "$work/test/images" --out "$work/test-cache" >/dev/null 2>&1
run() {  # name, then sae train flags
  local name=$1
  shift
  echo "== $name: sae train $*"
  start=$(date +%s.%N)
  "$cli" sae train --cache "$work/train-cache" --model "$model" --out "$work/$name.safetensors" --seed 0 "$@" --report "$work/$name-train.json" 2>/dev/null |
    sed -n '2,$p'
  echo "   ($(echo "$(date +%s.%N) - $start" | bc) s in all, this machine)"
  echo "-- held-out scenes:"
  "$cli" sae purity --sae "$work/$name.safetensors" --cache "$work/test-cache" --min-active 10 --report "$work/$name-test.json" 2>/dev/null
  # The held-out pure latents of colour, shape and texture: latent, value, precision, scenes where it fires.
  python3 - "$work/$name-test.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["purity"]
for attr in ("color", "shape", "texture"):
    pure = [(l["latent"], l[attr]["value"], l[attr]["precision"], l["active"]) for l in p["per_latent"]
            if l["active"] >= p["min_active"] and l[attr]["precision"] >= p["threshold"]]
    alive = [(l[attr]["precision"], l["latent"], l[attr]["value"], l["active"]) for l in p["per_latent"] if l["active"] >= p["min_active"]]
    q, w, v, n = max(alive)
    print(f"   {attr}: " + (", ".join(f"{w} {v} {q:.2f} ({n})" for w, v, q, n in pure) or f"none (best: {w} {v} {q:.2f} ({n}))"))
PY
}
run topk-output --at output --kind topk --k 8 --width 128 --epochs 200 --batch 256 --lr 1e-3 --dead-tokens 100000
run matryoshka-output --at output --kind matryoshka --k 8 --width 128 --epochs 200 --batch 256 --lr 1e-3
run matryoshka-prefix-output --at output --kind matryoshka --nesting prefix --groups 16,32,64,128 --k 8 --width 128 --epochs 200 --batch 256 --lr 1e-3
run topk-layer2 --at layer:2 --kind topk --k 8 --width 128 --epochs 200 --batch 256 --lr 1e-3 --dead-tokens 100000
# The references' learning rate (1e-4) for the same 3,000 / 3,200 steps, for comparison (not kept).
for kind in topk matryoshka; do
  echo "== $kind at lr 1e-4 (the references' default):"
  "$cli" sae train --cache "$work/train-cache" --out "$work/$kind-lr1e-4.safetensors" --seed 0 --at output --kind "$kind" --k 8 \
    --width 128 --epochs 200 --batch 256 --lr 1e-4 --dead-tokens 100000 2>/dev/null | sed -n '3p'
done
