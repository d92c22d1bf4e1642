#!/usr/bin/env bash
# Long fuzz run of the safetensors, npy, torch.save (zip, legacy, pickle), MAT-file and tokenizer parsers
# under AddressSanitizer + UBSan.
# Usage: fuzz/run-fuzz.sh [ITERATIONS] (default 100000 per parser)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
packaging/setup.sh --no-build
cmake --preset asan
cmake --build --preset asan --target fuzz_parsers
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  build-asan/bin/fuzz_parsers --iterations "${1:-100000}" --seed "${2:-1}" --oracle "$here/../shared/oracle"
