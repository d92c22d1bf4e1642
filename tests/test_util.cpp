#include "test_util.h"

#include "model/loader.h"
#include "runtime.h"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace vitscope::test {

std::string oracle(const std::string& relative) {
    const char* dir = std::getenv("VITSCOPE_ORACLE_DIR");  // overrides the configured folder
    const std::string path = std::string(dir && *dir ? dir : VITSCOPE_ORACLE_DIR) + "/" + relative;
    if (!std::getenv("VITSCOPE_ORACLE_PARTIAL") && !std::filesystem::exists(path)) throw std::runtime_error("oracle file missing: " + path);
    return path;
}

std::string source(const std::string& relative) { return std::string(VITSCOPE_SOURCE_DIR) + "/" + relative; }

at::Device testDevice() {
    const char* name = std::getenv("VITSCOPE_TEST_DEVICE");
    return pickDevice(name && *name ? name : "cpu");
}

Model testModel(const std::string& spec) {
    Model model = loadModel(spec);
    moveModel(model, testDevice());
    return model;
}

double maxAbsDiff(const at::Tensor& a, const at::Tensor& b) {
    if (!sameShape(a, b)) return 1e30;
    return (a.to(at::kCPU, at::kDouble) - b.to(at::kCPU, at::kDouble)).abs().max().item<double>();
}

double minRowCosine(const at::Tensor& a, const at::Tensor& b) {
    return at::cosine_similarity(a.to(at::kCPU, at::kDouble), b.to(at::kCPU, at::kDouble), 1).min().item<double>();
}

bool sameShape(const at::Tensor& a, const at::Tensor& b) { return a.sizes() == b.sizes(); }

}  // namespace vitscope::test
