#!/usr/bin/env bash
# The ImageNet segmentation benchmark (vitscope-cli evaluate imagenet-seg) on the bundled models,
# with the shapes world in the benchmark's own file layout: 500 held-out scenes (seed 9101, as
# docs/run-shapes-analyses.sh) written as an ImageNet-S-style .mat, the classes the eight shapes.
# Both protocols. Usage: docs/measure-imagenet-seg.sh [WORK] (default /tmp/vitscope-imagenet-seg).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli="$here/build/bin/vitscope-cli"
work=${1:-/tmp/vitscope-imagenet-seg}
rm -rf "$work" && mkdir -p "$work"
cd "$work"
"$cli" shapes generate --out test --count 500 --seed 9101 >/dev/null 2>&1
"$cli" shapes imagenet-seg --world test --out shapes-seg.mat >/dev/null
sed 's/^/a /' "$here/resources/shapes/shape.txt" > classes.txt
for model in shapes-clip shapes-vit shapes-swin; do
  aligner=()
  [ "$model" != shapes-clip ] && aligner=(--aligner "$here/models/$model/aligner.safetensors")
  for protocol in textspan chefer; do
    "$cli" evaluate imagenet-seg --model "$here/models/$model" "${aligner[@]}" --data shapes-seg.mat --classes classes.txt \
      --protocol "$protocol" --out "$model-$protocol" >/dev/null 2>&1
    echo "== $model, protocol $protocol (record: $work/$model-$protocol/record.json)"
    tail -n +3 "$model-$protocol/results.md"
  done
done
