#!/usr/bin/env bash
# Sharded cache builds and neuron summaries through real launchers, each checked byte for byte
# against one run:
#   parallel  the shards run by GNU parallel (the launcher-free way), then cache merge; the
#             summary's tasks twice (pass 1, then pass 2 with the mean), then its merge;
#   slurm     a one-node Slurm cluster on localhost (tests/slurm/cluster.sh), packaging/slurm/submit.sh
#             submits a 3-task array and the merge chained with afterok, submit-summarise.sh two
#             3-task arrays and the merge; bounded waits; every daemon stopped at exit. Exit 77
#             (skipped) without root or Debian's slurm-wlm / munge.
# Usage: test_sharded_cache.sh parallel|slurm CLI SOURCE_DIR WORK
set -euo pipefail
mode=$1 cli=$2 src=$3 work=$4
rm -rf "$work"
mkdir -p "$work"
model=$src/models/shapes-clip
# Byte identity holds between runs with the same BLAS threads (OpenBLAS's sums differ in the last
# bit with its thread count): the reference, the parallel shards and the Slurm tasks
# (--cpus-per-task=1) all use one.
export OPENBLAS_NUM_THREADS=1
"$cli" shapes generate --out "$work/world" --count 60 --seed 11 > /dev/null 2>&1
"$cli" cache build --model "$model" --images "$work/world" --out "$work/single" --batch 8 > /dev/null 2>&1
same_as_single() {
    for f in heads.npy mlps.npy other.npy output.npy paths.txt skipped.txt inputs.txt; do
        cmp "$work/single/$f" "$1/$f" || { echo "FAIL: $1/$f differs from a single build"; exit 1; }
    done
}
# neurons summarise of layer 1 over 150 scenes (3 chunks of 64 images: one a shard): one run, against
# which the shards' merge is compared.
"$cli" shapes generate --out "$work/world150" --count 150 --seed 12 > /dev/null 2>&1
summarise=(neurons summarise --model "$model" --layer 1 --top-k 10 --batch 8 --image "$work"/world150/images/*.png)
"$cli" "${summarise[@]}" --out "$work/summary-single" > /dev/null 2>&1
same_summary() {
    for f in directions.npy top_norms.npy top_images.npy mean.npy summary.json paths.txt; do
        cmp "$work/summary-single/$f" "$1/$f" || { echo "FAIL: $1/$f differs from a single summary"; exit 1; }
    done
}

if [ "$mode" = parallel ]; then
    command -v parallel > /dev/null || { echo "GNU parallel is missing (packaging/setup.sh installs it)"; exit 77; }
    parallel --halt now,fail=1 "$cli" cache build --model "$model" --images "$work/world" --out "$work/out" --batch 8 --shard {}/3 \
        ::: 0 1 2 > "$work/parallel.log" 2>&1 || { cat "$work/parallel.log"; exit 1; }
    "$cli" cache merge "$work/out"
    same_as_single "$work/out"
    echo "GNU parallel, 3 shards: the merged cache equals a single build byte for byte"
    for pass in 1 2; do
        parallel --halt now,fail=1 "$cli" "${summarise[@]}" --out "$work/summary" --shard {}/3 ::: 0 1 2 > "$work/summary-$pass.log" 2>&1 ||
            { cat "$work/summary-$pass.log"; exit 1; }
    done
    "$cli" "${summarise[@]}" --out "$work/summary" | grep 'merged 3 shards'
    same_summary "$work/summary"
    echo "GNU parallel, 3 shards run twice: the merged neuron summary equals a single run byte for byte"
    exit 0
fi

cluster=$work/cluster
set +e
env_line=$("$src/tests/slurm/cluster.sh" start "$cluster")
status=$?
set -e
[ $status -eq 0 ] || exit $status
trap '"$src/tests/slurm/cluster.sh" stop "$cluster"' EXIT
eval "$env_line"
# Waits (at most $1 seconds) until the queue is empty.
wait_for_jobs() {
    for _ in $(seq $(($1 * 5))); do
        [ -z "$(squeue -h -o %i)" ] && return
        sleep 0.2
    done
    echo "FAIL: jobs still queued after $1 s"; squeue; tail -20 "$cluster/slurmctld.log"; exit 1
}
VITSCOPE_CLI=$cli SBATCH_ARGS="--cpus-per-task=1" "$src/packaging/slurm/submit.sh" 3 "$model" "$work/world" "$work/out" --batch 8 | tee "$work/submit.txt"
wait_for_jobs 120
for job in $(grep -o '[0-9]\+' "$work/submit.txt" | head -1) $(grep -o 'merge job [0-9]\+' "$work/submit.txt" | grep -o '[0-9]\+'); do
    scontrol show job "$job" | grep -o 'JobState=[A-Z]*' | sort | uniq -c
    scontrol show job "$job" | grep -q 'JobState=COMPLETED' || { echo "FAIL: job $job did not complete"; cat "$work"/out/slurm-*.out; exit 1; }
done
grep -h 'task .* of 3' "$work"/out/slurm-*_*.out
same_as_single "$work/out"
"$cli" cache status "$work/out"
echo "Slurm array of 3 + afterok merge: the merged cache equals a single build byte for byte"

VITSCOPE_CLI=$cli SBATCH_ARGS="--cpus-per-task=1" "$src/packaging/slurm/submit-summarise.sh" 3 "$work/summary" "${summarise[@]:2}" |
    tee "$work/submit-summarise.txt"
wait_for_jobs 180
for job in $(grep -o 'array [0-9]\+\|job [0-9]\+' "$work/submit-summarise.txt" | grep -o '[0-9]\+'); do
    states=$(scontrol show job "$job" | grep -o 'JobState=[A-Z]*' | sort -u)
    [ "$states" = "JobState=COMPLETED" ] || { echo "FAIL: job $job: $states"; cat "$work"/summary/slurm-*.out; exit 1; }
done
grep -h 'shard .*-of-3' "$work"/summary/slurm-*_*.out
grep -h 'merged 3 shards' "$work"/summary/slurm-merge-*.out
same_summary "$work/summary"
echo "Slurm: 2 chained arrays of 3 + afterok merge: the merged neuron summary equals a single run byte for byte"
