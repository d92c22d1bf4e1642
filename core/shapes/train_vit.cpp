#include "shapes/train_vit.h"

#include "analysis/alignment.h"
#include "error.h"
#include "model/export.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "shapes/zero_shot.h"

#include <torch/optim/adamw.h>

#include <chrono>
#include <cmath>

namespace vitscope::shapes {

namespace {

constexpr uint64_t kAlignSeed = 0xA11C0000ull;

Model initialVit(const VitTrainParams& p) {
    if (p.arch != "vit" && p.arch != "swin") throw InputError("--arch " + p.arch, "unknown architecture (vit or swin)");
    const bool swin = p.arch == "swin";
    if (swin && (p.swinDepths.empty() || p.swinDepths.size() != p.swinHeads.size()))
        throw InputError("--depths / --stage-heads", "need one depth and one head count per stage");
    RandomVitSpec spec;
    spec.layout = swin ? RandomLayout::TimmSwin : RandomLayout::Timm;
    spec.swinDepths = p.swinDepths;
    spec.swinHeads = p.swinHeads;
    spec.window = p.window;
    spec.imageSize = p.imageSize;
    spec.patchSize = p.patchSize;
    spec.width = p.width;
    spec.layers = p.layers;
    spec.numClasses = 16;
    spec.trainingInit = true;
    spec.seed = p.seed;
    const nlohmann::json config = swin ? nlohmann::json{{"img_size", p.imageSize}} : nlohmann::json{{"num_heads", p.heads}};
    Model model = buildModel(randomVitStateDict(spec), config, "shapes-" + p.arch + " (initial)");
    model.preprocess.imageSize = p.imageSize;
    model.preprocess.resizeShortest = p.imageSize;
    model.preprocess.mean = {0.5f, 0.5f, 0.5f};
    model.preprocess.std = {0.25f, 0.25f, 0.25f};
    return model;
}

std::vector<Scene> scenes(uint64_t seed, int64_t start, int64_t count, const WorldParams& world) {
    std::vector<Scene> out;
    for (int64_t i = start; i < start + count; ++i) out.push_back(generateScene(seed, static_cast<uint64_t>(i), world));
    return out;
}

at::Tensor labelsOf(const std::vector<Scene>& s, Attribute a) {
    at::Tensor out = at::empty({static_cast<int64_t>(s.size())}, at::kLong);
    for (std::size_t i = 0; i < s.size(); ++i) out[static_cast<int64_t>(i)] = s[i].labels.value(a);
    return out;
}

std::pair<double, double> accuracy(const Model& model, uint64_t seed, int64_t count, const WorldParams& world) {
    at::NoGradGuard guard;
    int64_t shapeOk = 0, colorOk = 0;
    for (int64_t start = 0; start < count; start += 250) {
        const auto batch = scenes(seed, start, std::min<int64_t>(250, count - start), world);
        const at::Tensor logits = encodeImages(model, scenesToPixels(batch, model.preprocess)).logits;
        shapeOk += logits.narrow(1, 0, 8).argmax(1).eq(labelsOf(batch, Attribute::Shape)).sum().item<int64_t>();
        colorOk += logits.narrow(1, 8, 8).argmax(1).eq(labelsOf(batch, Attribute::Color)).sum().item<int64_t>();
    }
    return {static_cast<double>(shapeOk) / count, static_cast<double>(colorOk) / count};
}

at::Tensor embedAll(const Model& model, uint64_t seed, int64_t count, const WorldParams& world) {
    at::NoGradGuard guard;
    std::vector<at::Tensor> out;
    for (int64_t start = 0; start < count; start += 250)
        out.push_back(encodeImages(model, scenesToPixels(scenes(seed, start, std::min<int64_t>(250, count - start), world), model.preprocess)).output);
    return at::cat(out);
}

}  // namespace

std::pair<double, double> evaluateShapesVit(const std::string& modelDir, int64_t count) {
    const Model model = loadModel(modelDir);
    if (model.numClasses != 16) throw InputError(modelDir, "not a shapes ViT (expected 16 logits: 8 shapes, 8 colors)");
    WorldParams world;
    world.imageSize = model.preprocess.imageSize;
    return accuracy(model, kEvalSeed + 3, count, world);
}

VitTrainResult trainShapesVit(const VitTrainParams& p, const std::atomic<bool>& cancel,
                              const std::function<void(int, double, double)>& progress) {
    if (p.outDir.empty()) throw InputError("--out", "output directory is required");
    Model model = initialVit(p);
    WorldParams world = p.world;
    world.imageSize = p.imageSize;
    std::vector<at::Tensor> decayed, plain;
    for (at::Tensor* t : modelTensorSlots(model)) {
        if (!t->defined()) continue;
        *t = t->detach().clone().set_requires_grad(true);
        (t->dim() >= 2 ? decayed : plain).push_back(*t);
    }
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decayed, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(p.learningRate).weight_decay(p.weightDecay)));
    groups.emplace_back(plain, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(p.learningRate).weight_decay(0.0)));
    torch::optim::AdamW optimizer(groups);
    VitTrainResult result;
    const auto t0 = std::chrono::steady_clock::now();
    for (int step = 0; step < p.steps; ++step) {
        if (cancel.load()) {
            result.cancelled = true;
            return result;
        }
        const double lr = step < p.warmupSteps ? p.learningRate * (step + 1) / p.warmupSteps
                                               : p.learningRate * 0.5 * (1 + std::cos(M_PI * (step - p.warmupSteps) / std::max(1, p.steps - p.warmupSteps)));
        for (auto& g : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
        const auto batch = scenes(p.seed, static_cast<int64_t>(step) * p.batch, p.batch, world);
        const at::Tensor logits = encodeImages(model, scenesToPixels(batch, model.preprocess)).logits;
        const at::Tensor loss = at::cross_entropy_loss(logits.narrow(1, 0, 8), labelsOf(batch, Attribute::Shape)) +
                                at::cross_entropy_loss(logits.narrow(1, 8, 8), labelsOf(batch, Attribute::Color));
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (progress) progress(step + 1, loss.item<double>(), (step + 1) * p.batch / secs);
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (at::Tensor* t : modelTensorSlots(model))
        if (t->defined()) *t = t->detach();
    std::tie(result.shapeAccuracy, result.colorAccuracy) = accuracy(model, kEvalSeed + 3, p.heldOutImages, world);
    saveTimmModel(model, p.outDir,
                  {{"label_names", {{"logits 0-7", attributeValues(Attribute::Shape)}, {"logits 8-15", attributeValues(Attribute::Color)}}}});
    if (!p.clipModel.empty()) {
        const Model clip = loadModel(p.clipModel);
        const at::Tensor xTrain = embedAll(model, kAlignSeed, p.alignImages, world);
        const at::Tensor yTrain = embedAll(clip, kAlignSeed, p.alignImages, world);
        Aligner aligner = fitSharedAligner(xTrain, yTrain);
        const at::Tensor xTest = embedAll(model, kEvalSeed + 4, p.heldOutImages, world);
        const at::Tensor yTest = embedAll(clip, kEvalSeed + 4, p.heldOutImages, world);
        result.alignCosine = meanCosine(aligner.apply(xTest), yTest);
        aligner.settings["clip_model"] = p.clipModel;
        aligner.settings["held_out_cosine"] = std::to_string(result.alignCosine);
        saveAligner(aligner, p.outDir + "/aligner.safetensors");
    }
    return result;
}

}  // namespace vitscope::shapes
