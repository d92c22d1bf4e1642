#include "runtime.h"

#include "error.h"
#include "parallel.h"

#include <ATen/Parallel.h>
#include <ATen/Context.h>
#include <torch/cuda.h>

#include <cstdlib>
#include <dlfcn.h>
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

namespace {

using OmpSet = void (*)(int);
using OmpGet = int (*)();

// The OpenMP runtime LibTorch itself loaded (Debian's libgomp, or the renamed copy an official
// LibTorch bundles): looked up, never linked, so there is only ever one.
struct Omp {
    OmpSet set = nullptr;
    OmpGet get = nullptr;
    int team = 0;  // the reduced blocks' team size; 0: leave it
};

const Omp& omp() {
    static const Omp o = [] {
        Omp r;
        r.set = reinterpret_cast<OmpSet>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
        r.get = reinterpret_cast<OmpGet>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
        // Default: one thread, as ATen's (README, "Reduced precision": on the shared 2-core machine a
        // team of 2 spinning beside other processes made the bf16 forward 2.4x slower than one).
        if (const char* env = std::getenv("VITSCOPE_REDUCED_THREADS")) r.team = std::atoi(env) > 1 ? std::atoi(env) : 0;
        if (!r.set || !r.get) r.team = 0;
        return r;
    }();
    return o;
}

}  // namespace

ReducedPrecisionThreads::ReducedPrecisionThreads() {
    const Omp& o = omp();
    if (o.team == 0) return;
    m_previous = o.get();
    if (m_previous != o.team) o.set(o.team);
}

ReducedPrecisionThreads::~ReducedPrecisionThreads() {
    if (m_previous > 0 && m_previous != omp().team) omp().set(m_previous);
}

std::string deviceSummary() {
    if (!at::hasCUDA()) return "CPU only (no CUDA in this LibTorch, or its CUDA library is not linked)";
    return "CUDA, " + std::to_string(torch::cuda::device_count()) + " device(s)";
}

}  // namespace vitscope
