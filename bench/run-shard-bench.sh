#!/usr/bin/env bash
# Sharded cache build on this machine: one process on every core against P shard processes
# (GNU parallel, one BLAS thread each), then the merge's rate. Random CLIP ViT-B/16, 500 x 375
# JPEGs (bench_cache writes both). Prints the figures; the README's extrapolations use them.
# Usage: bench/run-shard-bench.sh [IMAGES (default 256)] [SHARDS (default: cores)]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${1:-256}
p=${2:-$(nproc)}
cd "$here"
cmake --build build --target bench_cache vitscope-cli > /dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build/bin/bench_cache --images "$n" --work "$work" --save-model "$work/model" | grep -E 'ready|saved'
cli=build/bin/vitscope-cli
rate() { python3 -c "print(f'{$1 / $2:.2f}')"; }

start=$(date +%s.%N)
OPENBLAS_NUM_THREADS=$(nproc) $cli cache build --model "$work/model" --images "$work/images" --out "$work/one" --batch 16 > /dev/null 2>&1
one=$(python3 -c "print($(date +%s.%N) - $start)")
echo "one process, $(nproc) BLAS threads: $n images in ${one} s = $(rate "$n" "$one") images/s"

start=$(date +%s.%N)
OPENBLAS_NUM_THREADS=1 parallel -j "$p" "$cli" cache build --model "$work/model" --images "$work/images" --out "$work/sharded" \
    --batch 16 --shard {}/"$p" ::: $(seq 0 $((p - 1))) > /dev/null 2>&1
sharded=$(python3 -c "print($(date +%s.%N) - $start)")
echo "$p shard processes in parallel, 1 BLAS thread each: $n images in ${sharded} s = $(rate "$n" "$sharded") images/s ($(python3 -c "print(f'{$one / $sharded:.2f}')")x one process)"
$cli cache merge "$work/sharded"
du -sh "$work/one" | sed 's/^/cache size: /'
