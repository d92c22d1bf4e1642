#!/usr/bin/env bash
# The second-order lens on the bundled shapes-world CLIP (4 blocks: layers 0-2 have second-order
# effects): every neuron's effect over 2,000 training scenes (seed 4242), the principal directions
# and text decompositions (neurons describe, the shapes text pool), neurons ranked for colour and
# shape, compute_ablations.py's table on 1,000 held-out scenes (seed 9101) in class folders (the
# eight shapes, "a <shape>"), the same table from exact-convention effects (second-order
# --convention exact), one scene's neuron map for "a red circle", and the neuron segmentation
# (compute_segmentation.py) as a method of evaluate imagenet-seg beside the heatmap methods on 500
# held-out scenes (seed 9101, as docs/measure-imagenet-seg.sh) under its own protocol and textspan's.
# Usage: docs/measure-neurons.sh [WORK] (default /tmp/vitscope-neurons).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli="$here/build/bin/vitscope-cli"
model="$here/models/shapes-clip"
work=${1:-/tmp/vitscope-neurons}
rm -rf "$work" && mkdir -p "$work"
cd "$work"
"$cli" shapes generate --out train --count 2000 --seed 4242 >/dev/null 2>&1
"$cli" shapes generate --out test --count 1000 --seed 9101 >/dev/null 2>&1
"$cli" shapes class-folders --world test --out val >/dev/null
"$cli" shapes text-resources --out texts >/dev/null
ls val | sed 's/^/a /' > classes.txt
for layer in 0 1 2; do
  start=$(date +%s.%N)
  "$cli" second-order --model "$model" --image train/images/*.png --layer "$layer" --batch 64 --out "so-$layer" >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "== layer $layer: second-order effects of 2,000 scenes in $(echo "$end - $start" | bc) s (command total)"
  "$cli" neurons describe --model "$model" --effects "so-$layer" --texts texts/text_pool.txt --components 8 --show 3 --out "desc-$layer" >/dev/null 2>&1
  echo "-- the 5 neurons with the largest centred effects (neurons.md)"
  sed -n '5,9p' "desc-$layer/neurons.md"
  for property in color shape; do
    "$cli" neurons rank --model "$model" --effects "so-$layer" --property "$property" --out "rank-$layer-$property.csv" >/dev/null 2>&1
    echo "-- $property: best neurons $(sed -n '2,4p' "rank-$layer-$property.csv" | cut -d, -f2,4 | tr '\n' ' ')"
  done
  "$cli" neurons ablate --model "$model" --describe "desc-$layer" --data val --classes classes.txt --out "ablate-$layer" >/dev/null 2>&1
  tail -n +3 "ablate-$layer/results.md"
  "$cli" second-order --model "$model" --image train/images/*.png --layer "$layer" --batch 64 --convention exact --out "sox-$layer" >/dev/null 2>&1
  "$cli" neurons describe --model "$model" --effects "sox-$layer" --texts texts/text_pool.txt --components 8 --show 3 --out "descx-$layer" >/dev/null 2>&1
  "$cli" neurons ablate --model "$model" --describe "descx-$layer" --data val --classes classes.txt --out "ablatex-$layer" >/dev/null 2>&1
  tail -n +3 "ablatex-$layer/results.md"
done
"$cli" neurons map --model "$model" --describe desc-0 --describe desc-1 --describe desc-2 --image test/images/000000.png \
  --text "a red circle" --top-neurons 50 --out map.png --npy map.npy >/dev/null
echo "map of test/images/000000.png for \"a red circle\": $work/map.png ($(sed -n 2p test/labels.csv | cut -d, -f3-5))"
"$cli" shapes generate --out seg --count 500 --seed 9101 >/dev/null 2>&1
"$cli" shapes imagenet-seg --world seg --out shapes-seg.mat >/dev/null
sed 's/^/a /' "$here/resources/shapes/shape.txt" > seg-classes.txt
for protocol in second-order-lens textspan; do
  start=$(date +%s.%N)
  "$cli" evaluate imagenet-seg --model "$model" --data shapes-seg.mat --classes seg-classes.txt --protocol "$protocol" \
    --methods all --describe desc-0,desc-1,desc-2 --out "seg-$protocol" >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "== imagenet-seg, protocol $protocol, neurons of layers 0-2 (200 per class) beside the heatmap methods ($(echo "$end - $start" | bc) s)"
  tail -n +3 "seg-$protocol/results.md"
done
for count in 34 1536; do  # the reference's share (200 of 9,216 neurons ~ 34 of 1,536), and every neuron
  "$cli" evaluate imagenet-seg --model "$model" --data shapes-seg.mat --classes seg-classes.txt --protocol second-order-lens \
    --methods neurons --describe desc-0,desc-1,desc-2 --neuron-count "$count" --out "seg-neurons-$count" >/dev/null 2>&1
  echo "-- second-order-lens protocol, $count neurons per class: $(tail -1 "seg-neurons-$count/results.md")"
done
