// SAE training: the parameters, the data a site gives, the objectives and the training loop
// (sae_train.h says what each reference defines). The optimiser, checkpoint and file writing
// live in sae_train_state.cpp.
#include "analysis/sae_train.h"

#include "analysis/cache.h"
#include "analysis/sae.h"
#include "analysis/sae_train_state.h"
#include "error.h"
#include "image/preprocess.h"
#include "model/forward.h"

#include <torch/nn/init.h>

#include <chrono>
#include <cmath>
#include <sstream>

namespace vitscope {

namespace {

std::string joinInts(const std::vector<int>& v) {
    std::string s;
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
    return s;
}

void validateLevels(const SaeTrainParams& p) {
    const std::vector<int> levels = p.levels();
    for (std::size_t i = 0; i < levels.size(); ++i) {
        if (levels[i] < 1 || levels[i] > p.width)
            throw InputError("groups",
                             "level " + std::to_string(levels[i]) + " is outside 1.." + std::to_string(p.width));
        if (i > 0 && levels[i] <= levels[i - 1]) throw InputError("groups", "levels must ascend: " + joinInts(levels));
    }
    if (p.nesting == SaeNesting::K && levels.front() != p.k)
        throw InputError("groups", "the first nested k (" + std::to_string(levels.front()) + ") must be --k (" +
                                       std::to_string(p.k) + ")");
    if (p.weighting != "UW" && p.weighting != "RW")
        throw InputError("weighting", "'" + p.weighting + "' is neither UW nor RW");
}

}  // namespace

void SaeTrainParams::validate() const {
    parseSaeSite(site, "site");
    if (width < 1) throw InputError("width", "must be at least 1");
    if (k < 1 || k > width)
        throw InputError("k", std::to_string(k) + " must be between 1 and the width (" + std::to_string(width) + ")");
    if (epochs < 1) throw InputError("epochs", "must be at least 1");
    if (batch < 1) throw InputError("batch", "must be at least 1");
    if (!(lr > 0)) throw InputError("lr", "must be positive");
    if (normalize != "none" && normalize != "layer_norm")
        throw InputError("normalize", "'" + normalize + "' is neither none nor layer_norm");
    if (auxK < 0 || auxCoef < 0 || deadTokens < 0)
        throw InputError("aux-k", "aux-k, aux-coef and dead-tokens must be non-negative");
    if (checkpointEvery < 0) throw InputError("checkpoint-every", "must be non-negative");
    if (kind == SaeKind::Matryoshka) validateLevels(*this);
    if (out.empty()) throw InputError("out", "is required");
}

std::vector<int> SaeTrainParams::levels() const {
    if (!groups.empty()) return groups;
    // MSAE's nesting list from one value: doubling up to the width, the width last.
    std::vector<int> l{nesting == SaeNesting::K ? k : std::max(1, width / 8)};
    while (l.back() * 2 <= width) l.push_back(l.back() * 2);
    if (l.back() != width) l.push_back(width);
    return l;
}

std::string SaeTrainParams::toString() const {
    std::ostringstream s;
    s << "site=" << site << " kind=" << (kind == SaeKind::TopK ? "topk" : "matryoshka") << " k=" << k
      << " width=" << width << " epochs=" << epochs << " batch=" << batch << " lr=" << lr << " seed=" << seed
      << " normalize=" << normalize;
    if (kind == SaeKind::TopK)
        s << " aux_k=" << auxK << " aux_coef=" << auxCoef << " dead_tokens=" << deadTokens;
    else
        s << " nesting=" << (nesting == SaeNesting::K ? "k" : "prefix") << " levels=" << joinInts(levels())
          << " weighting=" << weighting << " clip_grad=" << clipGrad << " decay_time=" << decayTime;
    return s.str();
}

at::Tensor saeActivations(const DatasetCache& cache, const std::string& site, const Model* model,
                          const JobContext& job) {
    const int layer = parseSaeSite(site, "site");
    if (layer < 0) {
        if (cache.convention() == Convention::TextSpan)
            throw InputError(cache.dir(),
                             "was built under the textspan convention, whose output.npy is L2-normalised; "
                             "rebuild it with --convention exact for --at output");
        return cache.output().to(at::kFloat).clone();
    }
    if (!model) throw InputError("model", "--at layer:L needs the model (the cache holds no residual stream)");
    if (layer >= model->vision.layers())
        throw InputError("site", site + ": the model has " + std::to_string(model->vision.layers()) + " blocks");
    cache.checkModel(*model);
    const std::vector<std::string>& paths = cache.paths();
    std::vector<at::Tensor> rows;
    const int64_t batch = 32;
    at::NoGradGuard guard;
    for (int64_t start = 0; start < static_cast<int64_t>(paths.size()); start += batch) {
        if (job.cancelled()) throw JobCancelled();
        const int64_t n = std::min<int64_t>(batch, static_cast<int64_t>(paths.size()) - start);
        const std::vector<std::string> chunk(paths.begin() + start, paths.begin() + start + n);
        const ImageTrace t =
            traceImages(*model, loadAndPreprocess(chunk, model->preprocess).to(model->vision.device()));
        if (t.prefix < 1) throw InputError("site", site + ": the model has no class token");
        rows.push_back(t.residuals[static_cast<std::size_t>(layer) + 1].select(1, 0).to(at::kCPU, at::kFloat));
        job.report({start + n, static_cast<int64_t>(paths.size()), 0, 0, "computing the residual stream"});
    }
    return at::cat(rows, 0);
}

at::Tensor matryoshkaLoss(const at::Tensor& x, const at::Tensor& pre, const at::Tensor& wDec, const at::Tensor& bPre,
                          const SaeTrainParams& params) {
    const std::vector<int> levels = params.levels();
    const at::Tensor denom = x.pow(2).mean(1);  // MSAE's mean_vector is zero after mean-centring
    at::Tensor total = at::zeros({}, x.options());
    double weightSum = 0;
    at::Tensor prefixLatents;
    if (params.nesting == SaeNesting::Prefix) prefixLatents = topkRelu(pre, params.k);
    for (std::size_t i = 0; i < levels.size(); ++i) {
        at::Tensor recon;
        if (params.nesting == SaeNesting::K)
            recon = at::matmul(topkRelu(pre, levels[i]), wDec) + bPre;
        else
            recon = at::matmul(prefixLatents.narrow(1, 0, levels[i]), wDec.narrow(0, 0, levels[i])) + bPre;
        const double w = params.weighting == "UW" ? 1.0 : static_cast<double>(levels.size() - i);
        total = total + ((recon - x).pow(2).mean(1) / denom).mean() * w;
        weightSum += w;
    }
    return total / weightSum;
}

SaeTrainResult trainSae(const at::Tensor& rows, const SaeTrainParams& params, const JobContext& job) {
    params.validate();
    if (rows.dim() != 2 || rows.size(0) < 1) throw InputError("rows", "need a non-empty [N, D] array");
    const auto started = std::chrono::steady_clock::now();
    SaeTrainer trainer(rows, params);
    SaeTrainResult result;
    result.resumedAt = trainer.resume();
    const int64_t perEpoch = trainer.stepsPerEpoch(), total = perEpoch * params.epochs;
    for (int epoch = 0; epoch < params.epochs; ++epoch) {
        if (int64_t(epoch + 1) * perEpoch <= trainer.step()) continue;
        const at::Tensor order = epochPermutation(rows.size(0), params.seed, epoch);
        for (int64_t b = trainer.step() - int64_t(epoch) * perEpoch; b < perEpoch; ++b) {
            if (job.cancelled()) {
                trainer.saveCheckpoint();
                throw JobCancelled();
            }
            result.finalLoss = trainer.trainStep(
                order.narrow(0, b * params.batch, std::min<int64_t>(params.batch, rows.size(0) - b * params.batch)),
                epoch);
            if (params.checkpointEvery > 0 && trainer.step() % params.checkpointEvery == 0 && trainer.step() < total)
                trainer.saveCheckpoint();
            job.report({trainer.step(), total, 0, 0, "training the SAE"});
        }
    }
    trainer.writeFile();
    trainer.removeCheckpoint();
    result.steps = trainer.step();
    trainer.evaluate(&result.fvu, &result.dead);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return result;
}

}  // namespace vitscope
