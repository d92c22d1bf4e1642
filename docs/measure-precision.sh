#!/usr/bin/env bash
# Reduced precision (model/precision.h), the README's "Reduced precision" figures in one run:
#   1. what bf16 changes: bench/precision_agreement on the bundled models and random released-size
#      ViT-B/16, ViT-L/14, SigLIP B/16, Swin-B (the agreement table);
#   2. speed: bench_decompose --precision fp32,bf16 for ViT-B/16 and ViT-L/14 (each precision's
#      forward and per-head decomposition against its own GEMM bound, images/s ratios, attention
#      both ways, oneDNN's fp32 matmul beside ATen's), and bench_cache --precision fp32,bf16.
# Each figure's block starts with `uptime`: timings are only comparable on a quiet machine.
# Usage: docs/measure-precision.sh [agreement|speed|all] [PRECISION] (default: all bf16)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$here/build/bin"
what=${1:-all}
precision=${2:-bf16}
cd "$here"
if [ "$what" = agreement ] || [ "$what" = all ]; then
  echo "== agreement ($(uptime))"
  "$bin/precision_agreement" --precision "$precision"
fi
if [ "$what" = speed ] || [ "$what" = all ]; then
  for family in clip clip-l14; do
    echo "== bench_decompose --family $family --precision fp32,$precision ($(uptime))"
    "$bin/bench_decompose" --family "$family" --batches 1,16 --repeats 3 --precision "fp32,$precision"
  done
  echo "== bench_cache --precision fp32,$precision ($(uptime))"
  "$bin/bench_cache" --images 256 --batch 32 --precision "fp32,$precision" --work /tmp/vitscope-precision-cache
  echo "== done ($(uptime))"
fi
