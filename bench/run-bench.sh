#!/usr/bin/env bash
# Decomposition benchmark on a random CLIP ViT-B/16, under the thread settings worth comparing
# on this machine (ATen intra-op threads x OpenBLAS threads). Prints every figure it measures.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
[ -x build/bin/bench_decompose ] || packaging/setup.sh
cmake --build build --target bench_decompose
cores=$(nproc)
for aten in 1 "$cores"; do
  for blas in 1 "$cores"; do
    echo "== VITSCOPE_THREADS=$aten OPENBLAS_NUM_THREADS=$blas"
    VITSCOPE_THREADS=$aten OPENBLAS_NUM_THREADS=$blas build/bin/bench_decompose "$@"
    VITSCOPE_THREADS=$aten OPENBLAS_NUM_THREADS=$blas build/bin/bench_decompose --family siglip "$@"
    VITSCOPE_THREADS=$aten OPENBLAS_NUM_THREADS=$blas build/bin/bench_decompose --family swin-t "$@"
    VITSCOPE_THREADS=$aten OPENBLAS_NUM_THREADS=$blas build/bin/bench_decompose --family swin-b "$@"
    VITSCOPE_THREADS=$aten OPENBLAS_NUM_THREADS=$blas build/bin/bench_decompose --family maxvit-t "$@"
  done
done
