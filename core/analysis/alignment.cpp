#include "analysis/alignment.h"

#include "error.h"
#include "io/tensor_io.h"

namespace vitscope {

Aligner fitSharedAligner(const at::Tensor& features, const at::Tensor& clipEmbeddings, double lambda) {
    if (features.dim() != 2 || clipEmbeddings.dim() != 2 || features.size(0) != clipEmbeddings.size(0))
        throw InputError("align", "features [N, D] and embeddings [N, E] must have the same N");
    if (features.size(0) < 2) throw InputError("align", "need at least two images");
    const at::Tensor x = features.to(at::kDouble);
    const at::Tensor y = clipEmbeddings.to(at::kDouble);
    const at::Tensor yn = y / y.norm(2, 1, true);
    const at::Tensor xm = x.mean(0, true), ym = yn.mean(0, true);
    const at::Tensor xc = x - xm, yc = yn - ym;
    const int64_t d = x.size(1);
    const at::Tensor gram = at::matmul(xc.t(), xc) + lambda * x.size(0) * at::eye(d, x.options());
    const at::Tensor w = at::linalg_solve(gram, at::matmul(xc.t(), yc));
    Aligner a;
    a.weight = w.to(at::kFloat);
    a.bias = (ym - at::matmul(xm, w)).squeeze(0).to(at::kFloat);
    a.settings = {{"mode", "shared"}, {"method", "ridge least squares"}, {"lambda", std::to_string(lambda)},
                  {"images", std::to_string(x.size(0))}};
    return a;
}

double meanCosine(const at::Tensor& a, const at::Tensor& b) {
    return at::cosine_similarity(a.to(at::kDouble), b.to(at::kDouble), 1).mean().item<double>();
}

void saveAligner(const Aligner& aligner, const std::string& path) {
    writeSafetensorsTensors(path, {{"weight", aligner.weight}, {"bias", aligner.bias}}, aligner.settings);
}

Aligner loadAligner(const std::string& path) {
    std::map<std::string, std::string> meta;
    StateDict sd = readSafetensorsFloat(path, &meta);
    if (!sd.count("weight") || !sd.count("bias")) throw FormatError(path, "aligner needs 'weight' and 'bias' tensors");
    Aligner a{sd["weight"], sd["bias"], meta};
    if (a.weight.dim() != 2 || a.bias.dim() != 1 || a.bias.size(0) != a.weight.size(1))
        throw FormatError(path, "aligner 'weight' must be [D, E] and 'bias' [E]");
    return a;
}

}  // namespace vitscope
