#include "analysis/alignment.h"

#include <algorithm>

#include "error.h"
#include "io/tensor_io.h"

#include <nlohmann/json.hpp>
#include <ATen/CPUGeneratorImpl.h>
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
    if (!(learningRate > 0) || !(referenceLearningRate > 0)) throw InputError("--lr", "must be positive");
    if (orthoPenalty < 0) throw InputError("--ortho", "must not be negative");
    if (batch < 1 || epochs < 1 || patience < 1 || weightDecay < 0 || !(initScale > 0))
        throw InputError("align", "the reference procedure's batch, epochs, patience, weight decay and initial scale must be positive");
}

const char* alignProcedureName(AlignProcedure p) { return p == AlignProcedure::Reference ? "reference" : "vitscope"; }

AlignProcedure parseAlignProcedure(const std::string& name) {
    if (name == "reference") return AlignProcedure::Reference;
    if (name == "vitscope") return AlignProcedure::Vitscope;
    throw InputError("--procedure " + name, "unknown alignment procedure (reference, vitscope)");
}

double orthonormalityPenalty(const at::Tensor& w) {
    const at::Tensor gram = at::matmul(w.transpose(1, 2).to(at::kDouble), w.to(at::kDouble));
    return static_cast<double>(w.size(2)) * (gram - at::eye(w.size(2), gram.options()).unsqueeze(0)).pow(2).mean().item<double>();
}

at::Tensor Aligner::biasShare(const std::string& component) const {
    const at::Tensor b = (perComponent() ? componentBias : bias).to(at::kCPU, at::kFloat);
    if (std::find(biasSharedBy.begin(), biasSharedBy.end(), component) == biasSharedBy.end()) return at::zeros_like(b);
    return b / static_cast<double>(biasSharedBy.size());
}

at::Tensor Aligner::biasLeft(const std::vector<std::string>& names) const {
    at::Tensor left = (perComponent() ? componentBias : bias).to(at::kCPU, at::kFloat).clone();
    for (const std::string& n : names) left -= biasShare(n);
    return left;
}

at::Tensor alignedTerm(const at::Tensor& term, const std::string& component, const Aligner* aligner) {
    const at::Tensor t = term.to(at::kCPU, at::kFloat);
    if (!aligner) return t;
    const at::Tensor y = at::matmul(t, aligner->weightFor(component).to(at::kCPU, at::kFloat));
    return aligner->biasSharedBy.empty() ? y : y + aligner->biasShare(component);
}

bool alignerMaps(const Aligner* aligner, const std::string& component) {
    return !aligner || !aligner->perComponent() ||
           std::find(aligner->components.begin(), aligner->components.end(), component) != aligner->components.end();
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
    const int64_t n = terms.size(0), c = terms.size(1), d = terms.size(2), e = clipEmbeddings.size(1);
    const bool reference = params.procedure == AlignProcedure::Reference;
    at::Generator gen = at::detail::createCPUGenerator(params.seed);
    at::Tensor w = reference ? (at::randn({c, d, e}, gen) * params.initScale).set_requires_grad(true)
                             : shared.weight.unsqueeze(0).expand({c, d, e}).clone().set_requires_grad(true);
    at::Tensor b = reference ? (at::randn({e}, gen) * params.initScale).set_requires_grad(true) : shared.bias.clone().set_requires_grad(true);
    const at::Tensor x = terms.to(at::kFloat);
    const at::Tensor y = clipEmbeddings.to(at::kFloat);
    const at::Tensor yn = y / y.norm(2, 1, true);
    const at::Tensor eye = at::eye(e).unsqueeze(0);
    // The loss on rows `rows` (all when undefined); the bias, split as b / C over the components
    // by the reference, sums to b.
    auto lossOn = [&](const at::Tensor& rows) {
        const at::Tensor xs = rows.defined() ? x.index_select(0, rows) : x;
        const at::Tensor ys = rows.defined() ? yn.index_select(0, rows) : yn;
        const at::Tensor pred = at::einsum("ncd,cde->ne", {xs, w}) + b;
        const at::Tensor cosine = (pred / pred.norm(2, 1, true).clamp_min(1e-12) * ys).sum(1);
        const at::Tensor gram = at::matmul(w.transpose(1, 2), w);  // [C, E, E]
        // As the reference scales it: E * mean((W^T W - I)^2) over every component and entry.
        return (1.0 - cosine).mean() + params.orthoPenalty * static_cast<double>(e) * (gram - eye).pow(2).mean();
    };
    double lastLoss = 0;
    int64_t stepsRun = 0;
    if (!reference) {
        torch::optim::Adam optimizer({w, b}, torch::optim::AdamOptions(params.learningRate));
        for (int step = 0; step < params.steps; ++step, ++stepsRun) {
            const at::Tensor loss = lossOn({});
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            lastLoss = loss.item<double>();
        }
    } else {
        torch::optim::Adam optimizer({w, b}, torch::optim::AdamOptions(params.referenceLearningRate).weight_decay(params.weightDecay));
        double minLoss = 10000.0;
        int withoutProgress = 0;
        bool stop = false;
        for (int epoch = 0; epoch < params.epochs && !stop; ++epoch) {
            const at::Tensor order = at::randperm(n, gen);
            for (int64_t start = 0; start < n && !stop; start += params.batch, ++stepsRun) {
                const at::Tensor loss = lossOn(order.narrow(0, start, std::min<int64_t>(params.batch, n - start)));
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                lastLoss = loss.item<double>();
                if (lastLoss < minLoss) {
                    minLoss = lastLoss;
                    withoutProgress = 0;
                } else {
                    ++withoutProgress;
                }
                stop = withoutProgress == params.patience;
            }
        }
    }
    Aligner a;
    a.componentWeights = w.detach();
    a.components = names;
    a.componentBias = b.detach();
    a.weight = shared.weight;
    a.bias = shared.bias;
    a.settings = {{"mode", "per-component"},
                  {"procedure", alignProcedureName(params.procedure)},
                  {"method", reference ? "vit-decompose's align_with_clip: N(0, 0.02^2) start, Adam with weight decay on shuffled "
                                         "minibatches, early stop; the loss mean(1 - cosine) + lambda * E * mean((W_c^T W_c - I)^2)"
                                       : "Adam on mean(1 - cosine) + lambda * E * mean((W_c^T W_c - I)^2) (the reference's loss), "
                                         "from the shared ridge map"},
                  {"steps", std::to_string(stepsRun)},
                  {"lr", std::to_string(reference ? params.referenceLearningRate : params.learningRate)},
                  {"lambda", std::to_string(params.orthoPenalty)},
                  {"images", std::to_string(terms.size(0))},
                  {"final_loss", std::to_string(lastLoss)}};
    if (reference) {
        // Its Aligner adds b / C to every component's term: over the components that write
        // something (always-zero bias slots of the vit-decompose convention are not its components).
        for (int64_t i = 0; i < c; ++i)
            if (terms.select(1, i).abs().max().item<double>() > 0) a.biasSharedBy.push_back(names[static_cast<std::size_t>(i)]);
        a.settings["batch"] = std::to_string(params.batch);
        a.settings["epochs"] = std::to_string(params.epochs);
        a.settings["patience"] = std::to_string(params.patience);
        a.settings["weight_decay"] = std::to_string(params.weightDecay);
        a.settings["seed"] = std::to_string(params.seed);
    }
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
        if (!aligner.biasSharedBy.empty()) meta["bias_shared_by"] = nlohmann::json(aligner.biasSharedBy).dump();
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
        if (meta.count("bias_shared_by")) {
            try {
                a.biasSharedBy = nlohmann::json::parse(meta.at("bias_shared_by")).get<std::vector<std::string>>();
            } catch (const std::exception&) {
                throw FormatError(path, "'bias_shared_by' in its metadata is not a list of component names");
            }
            for (const std::string& n : a.biasSharedBy)
                if (std::find(a.components.begin(), a.components.end(), n) == a.components.end())
                    throw FormatError(path, "'bias_shared_by' names '" + n + "', which is not one of its components");
            a.settings.erase("bias_shared_by");
        }
    }
    return a;
}

}  // namespace vitscope
