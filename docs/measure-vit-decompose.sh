#!/bin/sh
# The figures of README "vit-decompose's convention": the oracle Swin and MaxViT (../shared/oracle,
# the oracle's own pixels) decomposed under both conventions, compared by docs/compare-conventions.py.
# Usage: docs/measure-vit-decompose.sh [CLI] (default build/bin/vitscope-cli), from the repository root.
set -e
cli=${1:-build/bin/vitscope-cli}
out=${TMPDIR:-/tmp}/vit-decompose-figures
oracle=../shared/oracle
for m in swin-timm maxvit-timm; do
    for c in exact vit-decompose; do
        "$cli" decompose --model "$oracle/$m" --pixels "$oracle/$m/pixels.npy" --convention "$c" --out "$out/$m-$c" >/dev/null
    done
    echo "== $m (detach block 0,0)"
    python3 docs/compare-conventions.py "$out/$m-exact" "$out/$m-vit-decompose"
done
