#!/usr/bin/env bash
# Submits a sharded cache build as a Slurm job array of N tasks and its merge, chained with
# --dependency=afterok. Prints the two job ids. Extra sbatch options (partition, GPUs, time) go in
# SBATCH_ARGS, e.g. SBATCH_ARGS="--partition=gpu --gres=gpu:1".
# Usage: packaging/slurm/submit.sh N MODEL IMAGES OUT [cache build options]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 4 ] || { echo "usage: submit.sh N MODEL IMAGES OUT [cache build options]" >&2; exit 2; }
n=$1; shift
out=$3
mkdir -p "$out"
# shellcheck disable=SC2086
array=$(sbatch --parsable ${SBATCH_ARGS:-} --array=0-$((n - 1)) --output="$out/slurm-%A_%a.out" "$here/cache-build.sbatch" "$@")
array=${array%%;*}
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${SBATCH_ARGS:-} --dependency=afterok:"$array" --output="$out/slurm-merge-%j.out" "$here/cache-merge.sbatch" "$out")
echo "array job $array ($n tasks), merge job $merge"
