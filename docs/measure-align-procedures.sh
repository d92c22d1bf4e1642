#!/usr/bin/env bash
# Fits the bundled non-CLIP models' per-component aligners into shapes-clip both ways (issue 27,
# item 6) on the scenes their cards use (seed 9201, 3,000 scenes, the last 600 held out), and prints
# each one's held-out mean cosine and orthonormality term E * mean((W^T W - I)^2): vitscope's
# procedure (the default; from the ridge map, full-batch Adam) and vit-decompose's align_with_clip
# (--procedure reference, three seeds). The bundled aligners are not touched.
# Usage: docs/measure-align-procedures.sh [WORK] (WORK defaults to /tmp/vitscope-align-procedures).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli="$here/build/bin/vitscope-cli"
work=${1:-/tmp/vitscope-align-procedures}
rm -rf "$work" && mkdir -p "$work"
cd "$work"
"$cli" shapes generate --out align --count 3000 --seed 9201 >/dev/null 2>&1
for model in shapes-vit shapes-swin; do
  echo "== $model"
  "$cli" align --model "$here/models/$model" --clip "$here/models/shapes-clip" --images align/images --out "$model-vitscope.safetensors" \
    --mode per-component 2>/dev/null | head -1
  for seed in 0 1 2; do
    "$cli" align --model "$here/models/$model" --clip "$here/models/shapes-clip" --images align/images --out "$model-reference-$seed.safetensors" \
      --mode per-component --procedure reference --seed "$seed" 2>/dev/null | head -1
  done
done
