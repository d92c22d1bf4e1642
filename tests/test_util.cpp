#include "test_util.h"

#include <filesystem>
#include <stdexcept>

namespace vitscope::test {

std::string oracle(const std::string& relative) {
    const std::string path = std::string(VITSCOPE_ORACLE_DIR) + "/" + relative;
    if (!std::filesystem::exists(path)) throw std::runtime_error("oracle file missing: " + path);
    return path;
}

std::string source(const std::string& relative) { return std::string(VITSCOPE_SOURCE_DIR) + "/" + relative; }

double maxAbsDiff(const at::Tensor& a, const at::Tensor& b) {
    if (!sameShape(a, b)) return 1e30;
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

double minRowCosine(const at::Tensor& a, const at::Tensor& b) {
    return at::cosine_similarity(a.to(at::kDouble), b.to(at::kDouble), 1).min().item<double>();
}

bool sameShape(const at::Tensor& a, const at::Tensor& b) { return a.sizes() == b.sizes(); }

}  // namespace vitscope::test
