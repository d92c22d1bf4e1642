#include "analysis/alignment.h"

#include "error.h"
#include "io/tensor_io.h"

#include <nlohmann/json.hpp>
#include <torch/optim/adam.h>

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

at::Tensor Aligner::weightFor(const std::string& component) const {
    if (!perComponent()) return weight;
    for (std::size_t i = 0; i < components.size(); ++i)
        if (components[i] == component) return componentWeights[static_cast<int64_t>(i)];
    throw InputError("aligner", "has no map for component '" + component + "'");
}

void ComponentAlignParams::validate() const {
    if (steps < 1 || steps > 1000000) throw InputError("--steps", "must be within 1..1000000");
    if (!(learningRate > 0)) throw InputError("--lr", "must be positive");
    if (orthoPenalty < 0) throw InputError("--ortho", "must not be negative");
}

at::Tensor applyToTerms(const Aligner& aligner, const at::Tensor& terms) {
    if (!aligner.perComponent()) return aligner.apply(terms.sum(1));
    return at::einsum("ncd,cde->ne", {terms, aligner.componentWeights}) + aligner.componentBias;
}

Aligner fitComponentAligner(const at::Tensor& terms, const std::vector<std::string>& names, const at::Tensor& clipEmbeddings,
                            const ComponentAlignParams& params) {
    params.validate();
    if (terms.dim() != 3 || terms.size(0) != clipEmbeddings.size(0) || static_cast<int64_t>(names.size()) != terms.size(1))
        throw InputError("align", "terms [N, C, D], names C and embeddings [N, E] do not agree");
    const Aligner shared = fitSharedAligner(terms.sum(1), clipEmbeddings);
    const int64_t c = terms.size(1), d = terms.size(2), e = clipEmbeddings.size(1);
    at::Tensor w = shared.weight.unsqueeze(0).expand({c, d, e}).clone().set_requires_grad(true);
    at::Tensor b = shared.bias.clone().set_requires_grad(true);
    const at::Tensor x = terms.to(at::kFloat);
    const at::Tensor y = clipEmbeddings.to(at::kFloat);
    const at::Tensor yn = y / y.norm(2, 1, true);
    const at::Tensor eye = at::eye(e).unsqueeze(0);
    torch::optim::Adam optimizer({w, b}, torch::optim::AdamOptions(params.learningRate));
    double lastLoss = 0;
    for (int step = 0; step < params.steps; ++step) {
        const at::Tensor pred = at::einsum("ncd,cde->ne", {x, w}) + b;
        const at::Tensor cosine = (pred / pred.norm(2, 1, true).clamp_min(1e-12) * yn).sum(1);
        const at::Tensor gram = at::matmul(w.transpose(1, 2), w);  // [C, E, E]
        // As the reference scales it: E * mean((W^T W - I)^2) over every component and entry.
        const at::Tensor loss = (1.0 - cosine).mean() + params.orthoPenalty * static_cast<double>(e) * (gram - eye).pow(2).mean();
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        lastLoss = loss.item<double>();
    }
    Aligner a;
    a.componentWeights = w.detach();
    a.components = names;
    a.componentBias = b.detach();
    a.weight = shared.weight;
    a.bias = shared.bias;
    a.settings = {{"mode", "per-component"},
                  {"method", "Adam on mean(1 - cosine) + lambda * E * mean((W_c^T W_c - I)^2) (the reference's loss), "
                             "from the shared ridge map"},
                  {"steps", std::to_string(params.steps)},
                  {"lr", std::to_string(params.learningRate)},
                  {"lambda", std::to_string(params.orthoPenalty)},
                  {"images", std::to_string(terms.size(0))},
                  {"final_loss", std::to_string(lastLoss)}};
    return a;
}

double meanCosine(const at::Tensor& a, const at::Tensor& b) {
    return at::cosine_similarity(a.to(at::kDouble), b.to(at::kDouble), 1).mean().item<double>();
}

void saveAligner(const Aligner& aligner, const std::string& path) {
    StateDict tensors{{"weight", aligner.weight}, {"bias", aligner.bias}};
    std::map<std::string, std::string> meta = aligner.settings;
    if (aligner.perComponent()) {
        tensors["component_weights"] = aligner.componentWeights;
        tensors["component_bias"] = aligner.componentBias;
        meta["components"] = nlohmann::json(aligner.components).dump();
    }
    writeSafetensorsTensors(path, tensors, meta);
}

Aligner loadAligner(const std::string& path) {
    std::map<std::string, std::string> meta;
    StateDict sd = readSafetensorsFloat(path, &meta);
    if (!sd.count("weight") || !sd.count("bias")) throw FormatError(path, "aligner needs 'weight' and 'bias' tensors");
    Aligner a;
    a.weight = sd["weight"];
    a.bias = sd["bias"];
    a.settings = meta;
    if (a.weight.dim() != 2 || a.bias.dim() != 1 || a.bias.size(0) != a.weight.size(1))
        throw FormatError(path, "aligner 'weight' must be [D, E] and 'bias' [E]");
    if (sd.count("component_weights")) {
        if (!sd.count("component_bias")) throw FormatError(path, "per-component aligner without 'component_bias'");
        a.componentWeights = sd["component_weights"];
        a.componentBias = sd["component_bias"];
        try {
            a.components = nlohmann::json::parse(meta.at("components")).get<std::vector<std::string>>();
        } catch (const std::exception&) {
            throw FormatError(path, "per-component aligner without a valid 'components' list in its metadata");
        }
        if (a.componentWeights.dim() != 3 || a.componentWeights.size(0) != static_cast<int64_t>(a.components.size()) ||
            a.componentWeights.size(1) != a.weight.size(0) || a.componentWeights.size(2) != a.weight.size(1) ||
            a.componentBias.dim() != 1 || a.componentBias.size(0) != a.weight.size(1))
            throw FormatError(path, "'component_weights' must be [C, D, E] with one name per component");
        a.settings.erase("components");
    }
    return a;
}

}  // namespace vitscope
