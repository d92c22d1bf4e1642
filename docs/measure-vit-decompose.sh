#!/bin/sh
# The figures of README "vit-decompose's convention": the oracle Swin and MaxViT (../shared/oracle,
# the oracle's own pixels) decomposed under both conventions, compared by docs/compare-conventions.py.
# Usage: docs/measure-vit-decompose.sh [CLI] (default build/bin/vitscope-cli), from the repository root.
set -e
cli=${1:-build/bin/vitscope-cli}
out=${TMPDIR:-/tmp}/vit-decompose-figures
oracle=../shared/oracle
for m in swin-timm:2,0 maxvit-timm:1,0; do
    block=${m#*:}
    m=${m%:*}
    for c in exact vit-decompose; do
        "$cli" decompose --model "$oracle/$m" --pixels "$oracle/$m/pixels.npy" --convention "$c" --out "$out/$m-$c" >/dev/null
    done
    "$cli" decompose --model "$oracle/$m" --pixels "$oracle/$m/pixels.npy" --convention vit-decompose --from-block "$block" \
        --out "$out/$m-vit-decompose-later" >/dev/null
    echo "== $m (detach block 0,0; then $block, the last stage's first block)"
    python3 docs/compare-conventions.py "$out/$m-exact" "$out/$m-vit-decompose" "$out/$m-vit-decompose-later"
done
