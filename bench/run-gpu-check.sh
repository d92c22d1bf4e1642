#!/usr/bin/env bash
# The GPU check, in one run of a few minutes (issue 17). Two steps:
#
#   bench/run-gpu-check.sh prepare          here (Debian 12, network to Debian's archive): packs the
#       libraries the GPU machine lacks (.headless/prefix.tar.xz, packaging/headless-prefix.sh) and
#       the part of ../shared/oracle the parity rows below read (.headless/oracle, ~20 MB); both
#       travel with the working tree (carry: .headless).
#   bench/run-gpu-check.sh run [cuda|cpu] [--quick]     there (or here, to prove it on the CPU):
#       1. builds the headless tree (packaging/build-headless.sh) against python3's torch;
#       2. runs the parity rows on the device (VITSCOPE_TEST_DEVICE; the same references and
#          tolerances as on the CPU: 1e-4 absolute or relative, as each test states);
#       3. times a random CLIP ViT-B/16 and ViT-L/14 at batch 1 and 64: forward, per-head and
#          per-token decomposition, their ratios, the GEMM rate (bench_decompose);
#          3b. the same per precision (fp32, tf32, bf16, fp16, auto; bench_decompose --precision) and
#          what each changes (precision_agreement, the README's agreement table);
#       4. builds a 10,000-image cache (500 x 375 JPEGs) with ViT-B/16 and prints images/s (bench_cache),
#          in fp32, tf32 and bf16 on a GPU;
#       5. the whole core suite on the CPU against that LibTorch (rows needing oracle files that
#          did not travel fail for that reason alone).
#   Every log goes to $OUT (default ./gpu-check-out); summary.txt holds the figures. --quick: small
#   sizes (batch 1 / 4, 300 images), for a CPU proof run.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
mode=${1:-}
shift || true

if [ "$mode" = prepare ]; then
    set -e
    mkdir -p .headless
    packaging/headless-prefix.sh .headless/prefix.tar.xz
    src=${VITSCOPE_ORACLE_DIR:-$here/../shared/oracle}
    rm -rf .headless/oracle
    mkdir -p .headless/oracle/clip-tiny .headless/oracle/vit-tiny
    cp -r "$src/clip-tiny/open_clip" "$src"/clip-tiny/*.npy "$src"/clip-tiny/*.png "$src"/clip-tiny/*.json .headless/oracle/clip-tiny/
    cp "$src"/vit-tiny/timm_vit.safetensors "$src"/vit-tiny/timm_config.json "$src"/vit-tiny/*.npy "$src"/vit-tiny/oracle.json .headless/oracle/vit-tiny/
    cp -r "$src/siglip-tiny" "$src/swin-timm" "$src/maxvit-timm" .headless/oracle/
    tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
    carried=$(du -sb .headless | cut -f1)
    echo "run-gpu-check.sh: the working tree travels with $(( (tracked + carried) / 1048576 )) MiB (limit 64 MiB)"
    exit 0
fi
if [ "$mode" != run ]; then
    echo "usage: bench/run-gpu-check.sh prepare | run [cuda|cpu] [--quick]" >&2
    exit 2
fi
device=cuda quick=0
for a in "$@"; do
    case "$a" in cuda|cpu) device=$a ;; --quick) quick=1 ;; *) echo "run-gpu-check.sh: unknown argument $a" >&2; exit 2 ;; esac
done
OUT=${OUT:-$here/gpu-check-out}
mkdir -p "$OUT"
summary="$OUT/summary.txt"
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }
say "vitscope GPU check, $(date -u +%Y-%m-%dT%H:%MZ), device $device, quick $quick, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/gpu: /' | tee -a "$summary"
python3 -c 'import torch; print("python torch", torch.__version__, "cuda", torch.version.cuda, "cxx11 abi", torch.compiled_with_cxx11_abi())' 2>/dev/null | tee -a "$summary"

# 1. Build.
prefix_args=()
if [ -f .headless/prefix.tar.xz ]; then
    tmp=${TMPDIR:-/tmp}/vitscope-prefix
    rm -rf "$tmp" && mkdir -p "$tmp" && tar -C "$tmp" -xf .headless/prefix.tar.xz
    prefix_args=(--prefix "$tmp/vitscope-headless-prefix")
fi
oracle=${VITSCOPE_ORACLE_DIR:-}
[ -z "$oracle" ] && [ -d .headless/oracle ] && oracle=$here/.headless/oracle
[ -z "$oracle" ] && oracle=$here/../shared/oracle
start=$(date +%s)
if ! packaging/build-headless.sh "${prefix_args[@]}" -- -DVITSCOPE_ORACLE_DIR="$oracle" > "$OUT/build.log" 2>&1; then
    say "build: FAILED (build.log)"
    tail -40 "$OUT/build.log"
    exit 1
fi
say "build: $(( $(date +%s) - start )) s"
bin=$here/build-headless/bin

# 2. Parity on the device: the rows whose oracle files travel.
rows=(clipLayouts:open_clip-f16-safetensors decompositionTerms:open_clip-f16-safetensors preprocessingMatchesReference
      vitTiny:timm-safetensors siglipTiny:timm siglipTiny:hf swinTiny:timm maxvitTiny:timm)
VITSCOPE_TEST_DEVICE=$device VITSCOPE_ORACLE_PARTIAL=1 "$bin/test_parity" "${rows[@]}" > "$OUT/parity.log" 2>&1
parity=$?
grep -E 'max abs diff|rel |relative|sum identity|min cosine|features|Totals' "$OUT/parity.log" | sed 's/^QDEBUG : //; s/^QINFO  : //' >> "$summary"
say "parity on $device: $([ $parity -eq 0 ] && echo passed || echo FAILED) (parity.log)"

# 3. Decomposition timings.
if [ $quick = 1 ]; then batches=1,4; reps=1; else batches=1,64; reps=5; fi
for family in clip clip-l14; do
    "$bin/bench_decompose" --device "$device" --family "$family" --batches "$batches" --repeats "$reps" > "$OUT/decompose-$family.log" 2>&1 \
        || say "bench_decompose $family: FAILED"
    grep -E 'random|sgemm|batch|RSS' "$OUT/decompose-$family.log" >> "$summary"
done

# 3b. Reduced precision (model/precision.h): each precision's forward and decomposition against its
#     own GEMM bound, images/s ratios to fp32 (bench_decompose --precision), the cache build per
#     precision (bench_cache --precision), and what each changes (precision_agreement: sum identity,
#     feature cosine, TextSpan, ranking, retrieval, heatmaps, zero-shot) on the bundled and random
#     released-size models. On the CPU only the precisions it has.
if [ "$device" = cuda ]; then precisions=fp32,tf32,bf16,fp16,auto; reduced="tf32 bf16 fp16"; else precisions=fp32,auto; reduced=bf16; fi
for family in clip clip-l14; do
    "$bin/bench_decompose" --device "$device" --family "$family" --batches "$batches" --repeats "$reps" --precision "$precisions" \
        > "$OUT/precision-$family.log" 2>&1 || say "bench_decompose --precision $family: FAILED"
    grep -E 'random|batch|fp32 qkv' "$OUT/precision-$family.log" >> "$summary"
done
if [ $quick = 1 ]; then agree_models=shapes-clip,shapes-vit; agree_images=32; else agree_models=shapes-clip,shapes-vit,shapes-swin,vit-b16,vit-l14,siglip,swin-b; agree_images=128; fi
for p in $reduced; do
    "$bin/precision_agreement" --device "$device" --precision "$p" --models "$agree_models" --images "$agree_images" \
        > "$OUT/agreement-$p.log" 2>&1 || say "precision_agreement $p: FAILED"
    cat "$OUT/agreement-$p.log" >> "$summary"
done

# 4. A 10,000-image cache.
if [ $quick = 1 ]; then images=300; batch=16; else images=10000; batch=64; fi
if [ "$device" = cuda ]; then cache_precisions=fp32,tf32,bf16; else cache_precisions=fp32; fi
"$bin/bench_cache" --device "$device" --images "$images" --batch "$batch" --precision "$cache_precisions" --work "${TMPDIR:-/tmp}/vitscope-bench-cache" > "$OUT/cache.log" 2>&1 \
    || say "bench_cache: FAILED"
grep -E 'images|forward|cache build|decode' "$OUT/cache.log" >> "$summary"

# 5. The core suite on the CPU, against this LibTorch.
(cd build-headless && VITSCOPE_ORACLE_PARTIAL=1 ctest -L core -j "$(nproc)" --output-on-failure > "$OUT/ctest-core.log" 2>&1)
say "core suite on the CPU: $(grep -E 'tests passed' "$OUT/ctest-core.log" || echo 'see ctest-core.log')"
grep -E '^FAIL!' "$OUT/ctest-core.log" | cut -c1-200 >> "$summary"
echo
cat "$summary"
[ $parity -eq 0 ]
