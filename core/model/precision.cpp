#include "model/precision.h"

#include "error.h"
#include "model/model.h"
#include "runtime.h"

#include <ATen/Context.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>

namespace vitscope {

namespace {

// The cpuinfo line `key : value` of the first processor.
std::string cpuinfoField(const std::string& key) {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.compare(0, key.size(), key) != 0) continue;
        const auto colon = line.find(':');
        if (colon != std::string::npos) return line.substr(colon + 1 + (colon + 1 < line.size() ? 1 : 0));
    }
    return {};
}

bool hasFlag(const std::string& flags, const std::string& flag) {
    return (" " + flags + " ").find(" " + flag + " ") != std::string::npos;
}

bool bf16Masked() {
    const char* env = std::getenv("VITSCOPE_MASK_CPU_BF16");
    return env && std::string(env) != "0" && std::string(env) != "";
}

at::ScalarType reducedType(Precision p) {
    return p == Precision::Fp16 ? at::kHalf : at::kBFloat16;
}

// Whether LibTorch runs a matmul of this type on the device at all (LibTorch 1.13's CPU has no
// fp16 matmul: "addmm_impl_cpu_" not implemented for 'Half').
bool runsMatmul(const at::Device& device, at::ScalarType type) {
    try {
        const at::Tensor a = at::ones({8, 8}, at::TensorOptions().device(device).dtype(type));
        (void)at::linear(a, a, a.select(0, 0));
        return true;
    } catch (const c10::Error&) {
        return false;
    }
}

bool supports(Precision p, const at::Device& device) {
    if (p == Precision::Fp32) return true;
    if (p == Precision::Tf32) return device.is_cuda();
    if (device.is_cpu() && p == Precision::Bf16 && !cpuHasBf16()) return false;
    return runsMatmul(device, reducedType(p));
}

std::string refusal(Precision p, const at::Device& device) {
    const std::string dev = deviceDescription(device.is_cuda() ? "cuda" : "cpu");
    if (p == Precision::Tf32) return "TF32 is a CUDA matmul setting; " + dev + " has no TF32 units";
    if (p == Precision::Bf16 && device.is_cpu() && !cpuHasBf16())
        return dev + " has no bf16 matrix instructions (cpuinfo flags amx_bf16 / avx512_bf16)";
    return "this LibTorch runs no " + std::string(precisionName(p)) + " matmul on " + dev;
}

// Seconds per ViT-B/16 qkv product at batch 4 ([788, 768] x [768, 2304]) in `p`, best of 3.
double productSeconds(Precision p, const at::Device& device) {
    const bool tf32 = at::globalContext().allowTF32CuBLAS();
    if (device.is_cuda()) at::globalContext().setAllowTF32CuBLAS(p == Precision::Tf32);
    const at::ScalarType type = p == Precision::Fp32 || p == Precision::Tf32 ? at::kFloat : reducedType(p);
    const auto options = at::TensorOptions().device(device).dtype(type);
    const at::Tensor x = at::randn({788, 768}, options), w = at::randn({2304, 768}, options);
    std::optional<ReducedPrecisionThreads> team;  // as the reduced forward runs its products (runtime.h)
    if (type != at::kFloat) team.emplace();
    double best = 1e30;
    for (int i = 0; i < 4; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        (void)at::linear(x, w);
        synchronizeDevice(device);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (i > 0 && s < best) best = s;  // the first call sets up the kernels
    }
    if (device.is_cuda()) at::globalContext().setAllowTF32CuBLAS(tf32);
    return best;
}

// The fastest supported precision of a device (measured once per device per process). A reduced
// precision must beat fp32 by 10% to be chosen.
Precision fastest(const at::Device& device) {
    static std::mutex mutex;
    static std::map<std::string, Precision> chosen;
    std::lock_guard<std::mutex> lock(mutex);
    const std::string key = device.str() + (cpuHasBf16() ? "" : " masked");
    const auto it = chosen.find(key);
    if (it != chosen.end()) return it->second;
    Precision best = Precision::Fp32;
    double bestSeconds = productSeconds(Precision::Fp32, device) / 1.1;
    for (Precision p : {Precision::Tf32, Precision::Bf16, Precision::Fp16}) {
        if (!supports(p, device)) continue;
        const double s = productSeconds(p, device);
        if (s < bestSeconds) {
            best = p;
            bestSeconds = s;
        }
    }
    chosen[key] = best;
    return best;
}

std::string& defaultName() {
    static std::string name = "fp32";
    return name;
}

}  // namespace

const char* precisionName(Precision p) {
    switch (p) {
        case Precision::Fp32:
            return "fp32";
        case Precision::Bf16:
            return "bf16";
        case Precision::Fp16:
            return "fp16";
        case Precision::Tf32:
            return "tf32";
    }
    return "fp32";
}

Precision parsePrecision(const std::string& name) {
    for (Precision p : {Precision::Fp32, Precision::Bf16, Precision::Fp16, Precision::Tf32})
        if (name == precisionName(p)) return p;
    throw InputError("--precision " + name, "unknown precision (fp32, bf16, fp16, tf32 or auto)");
}

bool cpuHasBf16() {
    if (bf16Masked()) return false;
    static const bool has = [] {
        const std::string flags = cpuinfoField("flags");
        return hasFlag(flags, "amx_bf16") || hasFlag(flags, "avx512_bf16");
    }();
    return has;
}

std::string deviceDescription(const std::string& device) {
    const at::Device d = pickDevice(device);
    if (d.is_cuda()) return "CUDA device " + std::to_string(d.has_index() ? d.index() : 0);
    std::string model = cpuinfoField("model name");
    const std::string flags = cpuinfoField("flags");
    std::string units;
    for (const char* f : {"amx_bf16", "avx512_bf16"})
        if (hasFlag(flags, f) && !bf16Masked()) units += std::string(units.empty() ? "" : " ") + f;
    return "CPU (" + (model.empty() ? std::string("unknown model") : model) + ", " +
           (units.empty() ? std::string(bf16Masked() ? "bf16 units masked by VITSCOPE_MASK_CPU_BF16" : "no bf16 units")
                          : units) +
           ")";
}

std::vector<std::string> supportedPrecisions(const std::string& device) {
    const at::Device d = pickDevice(device);
    std::vector<std::string> out;
    for (Precision p : {Precision::Fp32, Precision::Bf16, Precision::Fp16, Precision::Tf32})
        if (supports(p, d)) out.push_back(precisionName(p));
    return out;
}

Precision resolvePrecision(const std::string& name, const std::string& device) {
    const at::Device d = pickDevice(device);
    if (name == "auto") return fastest(d);
    const Precision p = parsePrecision(name);
    if (!supports(p, d)) throw InputError("--precision " + name, refusal(p, d));
    return p;
}

void setDefaultPrecision(const std::string& name) {
    if (name != "auto") (void)parsePrecision(name);
    defaultName() = name;
}

const std::string& defaultPrecision() {
    return defaultName();
}

namespace {

// The weight rounded to the reduced type: the fp32 slot keeps the rounded values, the returned
// copy feeds the reduced products. Undefined stays undefined.
at::Tensor roundInPlace(at::Tensor& w, at::ScalarType type) {
    if (!w.defined()) return w;
    at::Tensor r = w.to(type).contiguous();
    w = r.to(at::kFloat);
    return r;
}

void reduceEncoder(Encoder& e, at::ScalarType type, ExactRows rows) {
    for (Block& b : e.blocks) {
        b.qkvWr = roundInPlace(b.qkvW, type);
        b.qkvBr = roundInPlace(b.qkvB, type);
        b.outWr = roundInPlace(b.outW, type);
        b.outBr = roundInPlace(b.outB, type);
        b.fc1Wr = roundInPlace(b.fc1W, type);
        b.fc1Br = roundInPlace(b.fc1B, type);
        b.fc2Wr = roundInPlace(b.fc2W, type);
        b.fc2Br = roundInPlace(b.fc2B, type);
    }
    e.exactRows = rows;
    // Measured (bench_decompose --precision, README): q k^T and A v in bf16 beside fp32 attention.
    const char* env = std::getenv("VITSCOPE_REDUCED_ATTENTION");
    e.reducedAttention = rows == ExactRows::ClassToken && !(env && std::string(env) == "0");
}

// The other matmul weights (patch embedding, projections, pool, patch merging) rounded in place;
// their products stay fp32.
void roundOtherWeights(Model& model, at::ScalarType type) {
    VisionTower& v = model.vision;
    AttentionPool& p = v.pool;
    for (at::Tensor* t : {&v.patchW, &v.proj, &v.headW, &p.qkvW, &p.outW, &p.fc1W, &p.fc2W})
        (void)roundInPlace(*t, type);
    for (SwinStage& st : v.swin.stages) (void)roundInPlace(st.mergeW, type);
    if (model.text) (void)roundInPlace(model.text->proj, type);
}

}  // namespace

void applyPrecision(Model& model, Precision p) {
    const at::Device device = model.vision.device();
    const std::string name = device.is_cuda() ? "cuda" : "cpu";
    if (model.precision == p) return;
    if (model.precision != Precision::Fp32 && model.precision != Precision::Tf32)
        throw InputError(
            "--precision " + std::string(precisionName(p)),
            std::string("the model is already rounded to ") + precisionName(model.precision) + "; open it again");
    (void)resolvePrecision(precisionName(p), name);  // refuses what the device lacks
    if (device.is_cuda()) at::globalContext().setAllowTF32CuBLAS(p == Precision::Tf32);
    if (p == Precision::Bf16 || p == Precision::Fp16) {
        const at::ScalarType type = reducedType(p);
        VisionTower& v = model.vision;
        const ExactRows rows = v.pool.defined() || v.hierarchical() ? ExactRows::Every
                               : v.hasClassToken()                  ? ExactRows::ClassToken
                                                                    : ExactRows::Every;
        reduceEncoder(v.encoder, type, rows);
        if (model.text) reduceEncoder(model.text->encoder, type, ExactRows::None);
        roundOtherWeights(model, type);
    }
    model.mapsCache[0].reset();
    model.mapsCache[1].reset();
    model.precision = p;
}

}  // namespace vitscope
