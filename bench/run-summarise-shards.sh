#!/usr/bin/env bash
# neurons summarise on the bundled shapes-clip over generated scenes: one process against P shard
# processes (one BLAS thread each; the tasks run twice, as two chained job arrays
# would: pass 1, then pass 2 with the mean), then the merge. Prints each phase's time and checks
# that the merged files equal a one-process run's with one BLAS thread, byte for byte.
# Usage: bench/run-summarise-shards.sh [SCENES (default 2000)] [SHARDS (default: cores)] [LAYER (default 1)]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${1:-2000}
p=${2:-$(nproc)}
layer=${3:-1}
cd "$here"
cmake --build build --target vitscope-cli > /dev/null
cli=build/bin/vitscope-cli
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$cli" shapes generate --out "$work/world" --count "$n" --seed 7 > /dev/null 2>&1
args=(neurons summarise --model models/shapes-clip --layer "$layer" --batch 32 --image "$work"/world/images/*.png)
now() { date +%s.%N; }
since() { python3 -c "print(f'{$(now) - $1:.2f}')"; }

start=$(now)
OPENBLAS_NUM_THREADS=$(nproc) "$cli" "${args[@]}" --out "$work/one" > /dev/null 2>&1
echo "one process, $(nproc) BLAS threads: $n scenes, layer $layer, in $(since "$start") s"
start=$(now)
OPENBLAS_NUM_THREADS=1 "$cli" "${args[@]}" --out "$work/one1" > /dev/null 2>&1
echo "one process, 1 BLAS thread: $(since "$start") s"

export OPENBLAS_NUM_THREADS=1
# The P shard processes at once (background jobs: the image list is too long for GNU parallel's line).
run_shards() {
    local pids=() i
    for i in $(seq 0 $((p - 1))); do
        "$cli" "${args[@]}" --out "$work/sharded" --shard "$i/$p" >> "$1" 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || { cat "$1"; exit 1; }; done
}
start=$(now)
run_shards "$work/pass1.log"
echo "$p shard processes, first run (pass 1; the last may go on with pass 2): $(since "$start") s;" \
    "tasks that also finished pass 2: $(grep -c 'both passes done' "$work/pass1.log" || true)"
start=$(now)
run_shards "$work/pass2.log"
echo "$p shard processes, second run (pass 2): $(since "$start") s"
start=$(now)
"$cli" "${args[@]}" --out "$work/sharded" | grep -q 'merged'
echo "merge: $(since "$start") s"
for f in directions.npy top_norms.npy top_images.npy mean.npy summary.json; do
    cmp "$work/one1/$f" "$work/sharded/$f" || { echo "FAIL: $f differs from one run's"; exit 1; }
done
echo "the merged files equal the one-process run's (1 BLAS thread) byte for byte"
