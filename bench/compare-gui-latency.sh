#!/usr/bin/env bash
# GUI latency of two builds, back to back on the same machine, ROUNDS times each (alternating), so
# that a change to the window can be judged against the machine's own run-to-run spread.
# Usage: bench/compare-gui-latency.sh BASE_BUILD_DIR NEW_BUILD_DIR [ROUNDS] [bench_gui args...]
# (default args: --images 2000 --skip-vitb). Prints each run's medians; logs in $TMPDIR.
set -euo pipefail
base="$1"; new="$2"; rounds="${3:-3}"; shift 2; [ $# -gt 0 ] && shift
args=("$@"); [ ${#args[@]} -eq 0 ] && args=(--images 2000 --skip-vitb)
out=$(mktemp -d)
for round in $(seq 1 "$rounds"); do
  for which in base new; do
    dir="$base"; [ "$which" = new ] && dir="$new"
    log="$out/${which}_${round}.log"
    xvfb-run -a -s "-screen 0 1600x1000x24" "$dir/bin/bench_gui" "${args[@]}" > "$log" 2>/dev/null
    echo "$which $round: $(grep -h 'head click' "$log" | sed 's/.*: median/click median/') | $(grep -h 'dropped' "$log" | sed 's/.*: median/drop median/;s/; plain.*//')"
  done
done
echo "logs: $out"
