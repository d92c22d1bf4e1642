#!/usr/bin/env bash
# Submits `neurons summarise` over N Slurm array tasks: two arrays of the same command and the
# merge, chained with --dependency=afterok, because pass 2 needs the mean of every image:
#   array 1             every task's pass 1 (the last to finish goes on with its pass 2)
#   array 2 (afterok)   every task's pass 2, with the mean of all shards' pass 1
#   merge   (afterok)   the command without a shard: joins the shards into OUT
# Prints the three job ids. Extra sbatch options (partition, GPUs, time) go in SBATCH_ARGS.
# Usage: packaging/slurm/submit-summarise.sh N OUT --model M (--image F... | --pixels P) --layer L [options]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 3 ] || { echo "usage: submit-summarise.sh N OUT [neurons summarise options]" >&2; exit 2; }
n=$1 out=$2
shift 2
mkdir -p "$out"
submit() {
    local id
    # shellcheck disable=SC2086
    id=$(sbatch --parsable ${SBATCH_ARGS:-} "$@" "$here/neurons-summarise.sbatch" --out "$out" "${args[@]}")
    echo "${id%%;*}"
}
args=("$@")
first=$(submit --array=0-$((n - 1)) --output="$out/slurm-%A_%a.out")
second=$(submit --dependency=afterok:"$first" --array=0-$((n - 1)) --output="$out/slurm-%A_%a.out")
merge=$(submit --dependency=afterok:"$second" --output="$out/slurm-merge-%j.out")
echo "pass-1 array $first ($n tasks), pass-2 array $second, merge job $merge"
