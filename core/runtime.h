#pragma once
// Process-wide compute settings: device choice and thread counts.
#include <ATen/ATen.h>

#include <string>

namespace vitscope {

// ATen intra-op threads. Chosen by measurement on a 2-core machine (bench/bench_decompose,
// ../shared/design.md): ATen at 1 thread while OpenBLAS uses every core avoids the
// oversubscription that made a ViT-B/16 forward 7x slower. VITSCOPE_THREADS overrides.
void configureThreads();
int atenThreads();

// "cpu", "cuda" or "auto" (CUDA when LibTorch has it). Throws InputError for other names or
// for CUDA without a CUDA-enabled LibTorch.
at::Device pickDevice(const std::string& name = "auto");

}  // namespace vitscope
