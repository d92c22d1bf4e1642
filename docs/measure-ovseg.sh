#!/usr/bin/env bash
# Open-vocabulary segmentation by argmax (vitscope-cli evaluate ovseg) on the bundled CLIP, with the
# shapes world in PASCAL VOC's layout (shapes voc): 500 held-out scenes (seed 9101), classes
# "a background" and "a <color> object" (the main object and the distractor labelled by colour),
# every heatmap method. Usage: docs/measure-ovseg.sh [WORK] (default /tmp/vitscope-ovseg).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli="$here/build/bin/vitscope-cli"
work=${1:-/tmp/vitscope-ovseg}
rm -rf "$work" && mkdir -p "$work"
cd "$work"
"$cli" shapes generate --out test --count 500 --seed 9101 >/dev/null 2>&1
"$cli" shapes voc --world test --out VOC --column color >/dev/null
echo "| method | images | mIoU | pixel accuracy (%) |"
echo "|---|---|---|---|"
for method in decomposition surgery raw gradcam chefer legrad; do  # attention / rollout take no text: refused
  "$cli" evaluate ovseg --model "$here/models/shapes-clip" --data VOC --classes VOC/classes.txt --method "$method" \
    --out "run-$method" >/dev/null 2>&1
  tail -n 1 "run-$method/results.md"
done
