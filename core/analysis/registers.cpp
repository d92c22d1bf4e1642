#include "analysis/registers.h"

#include "error.h"
#include "image/preprocess.h"
#include "io/file_util.h"
#include "model/forward.h"

#include <algorithm>
#include <map>
#include <sstream>

namespace vitscope {

namespace {

void requirePlainVit(const Model& model, const std::string& what) {
    const VisionTower& v = model.vision;
    if (v.hierarchical() || v.pool.defined() || !v.hasClassToken())
        throw InputError(model.info.weightsPath, what + " needs a plain ViT with a class token (not Swin, MaxViT or SigLIP)");
}

int neuronsPerLayer(const Model& model) { return static_cast<int>(model.vision.encoder.blocks.front().fc1W.size(0)); }

}  // namespace

int RegisterFindParams::detectionLayer(int layers) const { return detectOutliersLayer < 0 ? layers + detectOutliersLayer : detectOutliersLayer; }

void RegisterFindParams::validate(const Model& model) const {
    requirePlainVit(model, "register neurons");
    const int L = model.vision.layers(), d = detectionLayer(L);
    if (d < 0 || d >= L)
        throw InputError("--detect-outliers-layer " + std::to_string(detectOutliersLayer),
                         "is not a block of this model (" + std::to_string(-L) + ".." + std::to_string(L - 1) + ")");
    if (processedImageCnt < 1) throw InputError("--processed-image-cnt", "must be at least 1");
    if (batch < 1) throw InputError("--batch", "must be at least 1");
    if (sparsityFracThreshold < 0 || sparsityFracThreshold > 1) throw InputError("--sparsity-frac-threshold", "must lie in [0, 1]");
}

std::string RegisterFindParams::toString() const {
    std::ostringstream s;
    s << "register_norm_threshold=" << registerNormThreshold << " detect_outliers_layer=" << detectOutliersLayer
      << " processed_image_cnt=" << processedImageCnt << " apply_sparsity_filter=" << (applySparsityFilter ? "true" : "false")
      << " sparsity_frac_threshold=" << sparsityFracThreshold << " sparsity_activation_threshold=" << sparsityActivationThreshold;
    return s.str();
}

RegisterFindParams registerFindDefaults(const Model& model) {
    RegisterFindParams p;
    if (model.info.family == "dinov2") {  // configs/dinov2_large.yaml
        p.registerNormThreshold = 150;
        p.detectOutliersLayer = -2;
    }
    return p;
}

RegisterNeuronScores::RegisterNeuronScores(int layers, int neurons, const RegisterFindParams& params)
    : m_params(params), m_sum(at::zeros({layers, neurons}, at::kDouble)) {}

bool RegisterNeuronScores::add(const at::Tensor& detectionOutput, const std::vector<at::Tensor>& hidden) {
    const at::Tensor norms = detectionOutput.to(at::kCPU, at::kFloat).norm(2, 1);  // [N]
    const at::Tensor where = at::nonzero(norms > m_params.registerNormThreshold).view({-1});
    if (where.numel() == 0) return false;
    for (std::size_t l = 0; l < hidden.size(); ++l) {
        const at::Tensor act = hidden[l].to(at::kCPU, at::kFloat);         // [N, M]
        at::Tensor score = act.index_select(0, where).abs().mean(0);        // [M]
        if (m_params.applySparsityFilter) {
            const at::Tensor below = (act < m_params.sparsityActivationThreshold).sum(0).to(at::kDouble);
            const at::Tensor sparse = below >= m_params.sparsityFracThreshold * static_cast<double>(act.size(0));
            if (!sparse.any().item<bool>()) continue;  // the layer adds zeros for this image
            score = score * sparse.to(at::kFloat);
        }
        m_sum[static_cast<int64_t>(l)].add_(score.to(at::kDouble));
    }
    ++m_images;
    return true;
}

std::vector<RegisterNeuron> RegisterNeuronScores::ranked() const {
    if (m_images == 0)
        throw InputError("--register-norm-threshold " + std::to_string(m_params.registerNormThreshold),
                         "no image has a token above it at the detection layer: lower it or read more images");
    const at::Tensor mean = (m_sum / static_cast<double>(m_images)).contiguous();
    const int64_t L = mean.size(0), M = mean.size(1);
    const double* s = mean.data_ptr<double>();
    std::vector<RegisterNeuron> out(static_cast<std::size_t>(L * M));
    for (int64_t i = 0; i < L * M; ++i) out[static_cast<std::size_t>(i)] = {static_cast<int>(i / M), static_cast<int>(i % M), s[i]};
    std::stable_sort(out.begin(), out.end(), [](const RegisterNeuron& a, const RegisterNeuron& b) { return a.score > b.score; });
    return out;
}

std::vector<RegisterNeuron> findRegisterNeurons(const Model& model, int64_t count, const PixelBatches& batch, const RegisterFindParams& params,
                                                const JobContext& job, int* imagesWithOutliers) {
    params.validate(model);
    const int L = model.vision.layers(), detect = params.detectionLayer(L);
    RegisterNeuronScores scores(L, neuronsPerLayer(model), params);
    const int64_t total = std::min<int64_t>(count, params.processedImageCnt);
    at::NoGradGuard noGrad;
    for (int64_t start = 0; start < total; start += params.batch) {
        if (job.cancelled()) throw JobCancelled();
        const int64_t n = std::min<int64_t>(params.batch, total - start);
        const ImageTrace t = traceImages(model, batch(start, n), true);
        for (int64_t i = 0; i < n; ++i) {
            std::vector<at::Tensor> hidden;
            for (const at::Tensor& h : t.hidden) hidden.push_back(h[i]);
            scores.add(t.residuals[static_cast<std::size_t>(detect) + 1][i], hidden);
        }
        job.report({start + n, total, 0, 0, "finding register neurons"});
    }
    if (imagesWithOutliers) *imagesWithOutliers = scores.images();
    return scores.ranked();
}

std::vector<RegisterNeuron> findRegisterNeurons(const Model& model, const std::vector<std::string>& paths, const RegisterFindParams& params,
                                                const JobContext& job, int* imagesWithOutliers) {
    const PixelBatches batch = [&](int64_t start, int64_t n) {
        return loadAndPreprocess(std::vector<std::string>(paths.begin() + start, paths.begin() + start + n), model.preprocess);
    };
    return findRegisterNeurons(model, static_cast<int64_t>(paths.size()), batch, params, job, imagesWithOutliers);
}

std::string formatRegisterNeurons(const std::vector<RegisterNeuron>& ranked, int limit) {
    std::string out;
    const std::size_t n = limit > 0 ? std::min(ranked.size(), static_cast<std::size_t>(limit)) : ranked.size();
    for (std::size_t i = 0; i < n; ++i) out += std::to_string(ranked[i].layer) + "." + std::to_string(ranked[i].neuron) + "\n";
    return out;
}

std::vector<RegisterNeuron> readRegisterNeurons(const std::string& path, const Model& model) {
    requirePlainVit(model, "test-time registers");
    const int L = model.vision.layers(), M = neuronsPerLayer(model);
    std::istringstream in(readFileText(path));
    std::vector<RegisterNeuron> out;
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        line.erase(std::remove_if(line.begin(), line.end(), [](char c) { return c == '\r' || c == ' ' || c == '\t'; }), line.end());
        if (line.empty()) continue;
        const std::string where = path + ":" + std::to_string(number);
        int layer = -1, neuron = -1;
        char dot = 0, rest = 0;
        std::istringstream item(line);
        if (!(item >> layer >> dot >> neuron) || dot != '.' || (item >> rest))
            throw InputError(where, "expected layer.neuron, got '" + line + "'");
        if (layer < 0 || layer >= L) throw InputError(where, "layer " + std::to_string(layer) + " is not a block of this model (0.." + std::to_string(L - 1) + ")");
        if (neuron < 0 || neuron >= M) throw InputError(where, "neuron " + std::to_string(neuron) + " is outside the MLP's " + std::to_string(M) + " neurons");
        out.push_back({layer, neuron, 0.0});
    }
    if (out.empty()) throw InputError(path, "lists no register neuron");
    return out;
}

const char* registerNormalValuesName(RegisterNormalValues v) {
    switch (v) {
    case RegisterNormalValues::Zero: return "zero";
    case RegisterNormalValues::Mean: return "mean";
    case RegisterNormalValues::OnlyOutliers: return "only_outliers";
    case RegisterNormalValues::Same: return "same";
    }
    return "?";
}

RegisterNormalValues parseRegisterNormalValues(const std::string& name) {
    for (RegisterNormalValues v : {RegisterNormalValues::Zero, RegisterNormalValues::Mean, RegisterNormalValues::OnlyOutliers, RegisterNormalValues::Same})
        if (name == registerNormalValuesName(v)) return v;
    throw InputError("--register-normal-values " + name, "must be zero, mean, only_outliers or same");
}

void TestTimeRegisterParams::validate(const Model& model) const {
    requirePlainVit(model, "test-time registers");
    if (count < 1) throw InputError("--test-time-registers " + std::to_string(count), "must be at least 1");
    if (topK < 1) throw InputError("--register-top-k " + std::to_string(topK), "must be at least 1");
    if (highestLayer < -1 || highestLayer >= model.vision.layers())
        throw InputError("--register-highest-layer " + std::to_string(highestLayer), "must be -1 (no limit) or a block of this model");
}

std::string TestTimeRegisterParams::toString() const {
    std::ostringstream s;
    s << "num_registers=" << count << " top_k=" << topK << " highest_layer=" << highestLayer << " scale=" << scale
      << " normal_values=" << registerNormalValuesName(normalValues);
    return s.str();
}

TestTimeRegisterParams testTimeRegisterDefaults(const Model& model) {
    TestTimeRegisterParams p;
    if (model.info.family == "dinov2") {  // configs/dinov2_large.yaml
        p.topK = 50;
        p.highestLayer = 17;
    }
    p.highestLayer = std::min(p.highestLayer, model.vision.layers() - 1);
    return p;
}

std::vector<RegisterNeuron> selectRegisterNeurons(const std::vector<RegisterNeuron>& ranked, const TestTimeRegisterParams& params) {
    std::vector<RegisterNeuron> out;
    for (const RegisterNeuron& r : ranked) {
        if (static_cast<int>(out.size()) >= params.topK) break;
        if (params.highestLayer == -1 || r.layer <= params.highestLayer) out.push_back(r);
    }
    return out;
}

std::vector<RegisterNeuron> applyTestTimeRegisters(Model& model, const TestTimeRegisterParams& params, const std::vector<RegisterNeuron>& ranked) {
    params.validate(model);
    const std::vector<RegisterNeuron> chosen = selectRegisterNeurons(ranked, params);
    if (chosen.empty())
        throw InputError("--register-highest-layer " + std::to_string(params.highestLayer), "leaves no register neuron of the list");
    std::map<int, std::vector<int64_t>> byLayer;
    for (const RegisterNeuron& r : chosen) {
        std::vector<int64_t>& list = byLayer[r.layer];
        if (std::find(list.begin(), list.end(), r.neuron) == list.end()) list.push_back(r.neuron);
    }
    VisionTower& v = model.vision;
    for (Block& b : v.encoder.blocks) b.registerNeurons = at::Tensor();
    for (const auto& [layer, neurons] : byLayer)
        v.encoder.blocks[static_cast<std::size_t>(layer)].registerNeurons = at::tensor(neurons, at::kLong).to(v.device());
    v.encoder.testTimeRegisters = {params.count, params.scale, params.normalValues};
    return chosen;
}

double outlierMassShare(const at::Tensor& patchMap, const at::Tensor& outlierPatches) {
    if (patchMap.numel() != outlierPatches.numel()) throw InputError("outlier mask", "does not match the map's patches");
    const at::Tensor positive = patchMap.flatten().to(at::kCPU, at::kDouble).clamp_min(0);
    const double total = positive.sum().item<double>();
    if (!(total > 0)) return 0;
    return positive.masked_select(outlierPatches.flatten().to(at::kCPU, at::kBool)).sum().item<double>() / total;
}

TokenNormReport tokenNorms(const Model& model, const at::Tensor& pixels, const RegisterFindParams& params) {
    params.validate(model);
    if (pixels.dim() != 4 || pixels.size(0) != 1) throw InputError("pixels", "token norms take one image [1, 3, S, S]");
    at::NoGradGuard noGrad;
    const ImageTrace t = traceImages(model, pixels);
    const int L = model.vision.layers();
    TokenNormReport r;
    r.gridH = t.gridH, r.gridW = t.gridW, r.prefix = t.prefix, r.suffix = t.suffix;
    std::vector<at::Tensor> norms;
    for (int l = 0; l < L; ++l) norms.push_back(t.residuals[static_cast<std::size_t>(l) + 1][0].to(at::kCPU, at::kFloat).norm(2, 1));
    r.norms = at::stack(norms);  // [L, N]
    r.outliers = r.norms[params.detectionLayer(L)] > params.registerNormThreshold;
    const at::Tensor mask = r.outliers.to(at::kFloat);
    std::vector<at::Tensor> share;
    for (int l = 0; l < L; ++l) share.push_back((t.attention[static_cast<std::size_t>(l)][0].select(1, 0).mean(0).to(at::kCPU, at::kFloat) * mask).sum());
    r.clsShare = at::stack(share);
    const at::Tensor patches = r.norms.narrow(1, r.prefix, static_cast<int64_t>(r.gridH) * r.gridW);
    r.maxOverMedian = std::get<0>(patches.max(1)) / std::get<0>(patches.median(1));
    return r;
}

}  // namespace vitscope
