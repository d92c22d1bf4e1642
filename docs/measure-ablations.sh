#!/usr/bin/env bash
# Zero-shot accuracy and TextSpan's mean-ablation table (vitscope-cli evaluate ablations) on the
# bundled models, with the shapes world in ImageNet's class-folder layout: 2,000 held-out scenes
# (seed 9101, as docs/run-shapes-analyses.sh), one folder per shape, the classes "a <shape>"; and
# the same scenes as ImageNet's flat folder with the devkit's ground truth (shapes imagenet-val),
# whose table must equal the class folders' one.
# Usage: docs/measure-ablations.sh [WORK] (default /tmp/vitscope-ablations).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli="$here/build/bin/vitscope-cli"
work=${1:-/tmp/vitscope-ablations}
rm -rf "$work" && mkdir -p "$work"
cd "$work"
"$cli" shapes generate --out test --count 2000 --seed 9101 >/dev/null 2>&1
"$cli" shapes class-folders --world test --out val >/dev/null
"$cli" shapes imagenet-val --world test --out flat >/dev/null
ls val | sed 's/^/a /' > classes.txt  # the folders' sorted order is the label order
run() {  # label, then options
  local label=$1
  shift
  "$cli" evaluate ablations --classes classes.txt "$@" >/dev/null 2>&1
  echo "== $label"
  tail -n +3 "$work/$label/results.md"
}
run shapes-clip-exact --data val --model "$here/models/shapes-clip" --out shapes-clip-exact
run shapes-clip-textspan --data val --model "$here/models/shapes-clip" --convention textspan --out shapes-clip-textspan
run shapes-vit-exact --data val --model "$here/models/shapes-vit" --aligner "$here/models/shapes-vit/aligner.safetensors" --out shapes-vit-exact
run shapes-clip-exact-devkit --data flat/val --ground-truth flat/ILSVRC2012_devkit_t12 --model "$here/models/shapes-clip" \
  --out shapes-clip-exact-devkit
if diff <(tail -n +3 shapes-clip-exact/results.md) <(tail -n +3 shapes-clip-exact-devkit/results.md) >/dev/null; then
  echo "flat folder + devkit: the class folders' table"
else
  echo "flat folder + devkit: a table other than the class folders' one" >&2
  exit 1
fi
