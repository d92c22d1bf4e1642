#include "runtime.h"

#include "error.h"
#include "parallel.h"

#include <ATen/Parallel.h>
#include <ATen/Context.h>
#include <torch/cuda.h>

#include <cstdlib>
#include <malloc.h>
#include <string>

namespace vitscope {

void configureRuntime() {
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, -1);  // never trim: freed blocks are reused
    int threads = 1;
    if (const char* env = std::getenv("VITSCOPE_THREADS")) {
        const int v = std::atoi(env);
        if (v > 0) threads = v;
    }
    at::set_num_threads(threads);
    if (threads > 1) setSplitEnabled(false);  // ATen's own threads share out its elementwise work then
    configureBlasWaiting();
}

int atenThreads() { return at::get_num_threads(); }

at::Device pickDevice(const std::string& name) {
    const bool cuda = at::hasCUDA();
    if (name == "cpu") return at::Device(at::kCPU);
    if (name == "cuda") {
        if (!cuda) throw InputError("--device", "CUDA requested but this LibTorch build has no CUDA support");
        return at::Device(at::kCUDA);
    }
    if (name == "auto") return cuda ? at::Device(at::kCUDA) : at::Device(at::kCPU);
    throw InputError("--device", "unknown device '" + name + "' (cpu, cuda or auto)");
}

void synchronizeDevice(const at::Device& device) {
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

std::string deviceSummary() {
    if (!at::hasCUDA()) return "CPU only (no CUDA in this LibTorch, or its CUDA library is not linked)";
    return "CUDA, " + std::to_string(torch::cuda::device_count()) + " device(s)";
}

}  // namespace vitscope
