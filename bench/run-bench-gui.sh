#!/usr/bin/env bash
# GUI latency benchmark under Xvfb (a real X server). Usage: bench/run-bench-gui.sh [--images N] [--skip-vitb]
# (or --projector N: the projector's frame times at N points only)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
cmake --build build --target bench_gui
xvfb-run -a -s "-screen 0 1600x1000x24" build/bin/bench_gui "$@" 2>/dev/null
