#pragma once
// Process-wide compute settings: device choice and thread counts.
#include <ATen/ATen.h>

#include <string>

namespace vitscope {

// Process-wide settings chosen by measurement (bench/run-bench.sh; figures in the README):
// - ATen intra-op threads at 1 while OpenBLAS uses every core (OpenBLAS's threads spinning
//   beside ATen's made a ViT-B/16 forward several times slower on 2 cores). VITSCOPE_THREADS
//   overrides.
// - glibc malloc keeps large freed blocks for reuse instead of unmapping them: each fresh
//   mmap of an activation tensor page-faults its pages again, which made batch-16 forwards
//   2.5x slower per image than batch 1 (GELU over a fresh 39 MB buffer took 11x longer).
// - OpenBLAS's idle threads wait 2^16 cycles instead of 2^28 before sleeping (parallel.h):
//   the attention products and elementwise passes split over the cores would otherwise share
//   them with spinning BLAS threads.
void configureRuntime();
int atenThreads();

// "cpu", "cuda" or "auto" (CUDA when LibTorch has it). Throws InputError for other names or
// for CUDA without a CUDA-enabled LibTorch.
at::Device pickDevice(const std::string& name = "auto");

// Waits until the device has finished the work queued on it (a no-op on the CPU): for timings.
void synchronizeDevice(const at::Device& device);

// While alive, on the calling thread, with VITSCOPE_REDUCED_THREADS=N (N >= 2): its OpenMP team -
// oneDNN's bf16 / fp16 products and ATen's elementwise passes - at N threads instead of ATen's one
// intra-op thread (above), for the reduced-precision blocks (model/precision.h), whose products
// are oneDNN's, not OpenBLAS's. Unset: one thread (measured on the shared 2-core machine, README,
// "Reduced precision": a team of 2 lost to other processes' load). Found through the OpenMP
// runtime LibTorch loaded (no-op without one).
class ReducedPrecisionThreads {
public:
    ReducedPrecisionThreads();
    ~ReducedPrecisionThreads();
    ReducedPrecisionThreads(const ReducedPrecisionThreads&) = delete;
    ReducedPrecisionThreads& operator=(const ReducedPrecisionThreads&) = delete;

private:
    int m_previous = 0;
};

// What this LibTorch can run on, in words: "CPU only (...)" or "CUDA, N device(s)".
std::string deviceSummary();

}  // namespace vitscope
