#include "shapes/train_clip.h"

#include "error.h"
#include "io/file_util.h"
#include "model/export.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "shapes/zero_shot.h"
#include "text/text_tokenizer.h"

#include <torch/optim/adamw.h>
#include <torch/serialize.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>

namespace fs = std::filesystem;

namespace vitscope::shapes {

namespace {

// The words of every caption the world can produce.
WordTokenizer worldTokenizer() {
    std::vector<std::string> words;
    std::set<std::string> seen;
    for (const std::string& t : textPool())
        for (const std::string& w : splitWordsSimple(t))
            if (seen.insert(w).second) words.push_back(w);
    // Templates with three or more attributes add no new words, but make sure of it.
    for (uint64_t i = 0; i < 200; ++i) {
        const Scene s = generateScene(99, i);
        for (int v = 0; v < captionCount(); ++v)
            for (const std::string& w : splitWordsSimple(caption(s.labels, v)))
                if (seen.insert(w).second) words.push_back(w);
    }
    return WordTokenizer::fromWords(words);
}

// Which attributes each caption variant names.
std::vector<Attribute> namedAttributes(int variant) {
    SceneLabels a, b;
    a.values = {0, 0, 0, 0, 0, 0};
    std::vector<Attribute> out;
    for (Attribute attr : kAttributes) {
        b = a;
        b.values[static_cast<std::size_t>(attr)] = 1;
        if (caption(a, variant) != caption(b, variant)) out.push_back(attr);
    }
    return out;
}

Model initialModel(const ClipTrainParams& p, int64_t vocab) {
    RandomVitSpec spec;
    spec.layout = RandomLayout::OpenAiClip;
    spec.imageSize = p.imageSize;
    spec.patchSize = p.patchSize;
    spec.width = p.width;
    spec.layers = p.layers;
    spec.embedDim = p.embedDim;
    spec.textWidth = p.textWidth;
    spec.textLayers = p.textLayers;
    spec.contextLength = p.contextLength;
    spec.vocabSize = static_cast<int>(vocab);
    spec.trainingInit = true;
    spec.seed = p.seed;
    const nlohmann::json cfg = {{"model_cfg",
                                 {{"quick_gelu", false},
                                  {"vision_cfg", {{"head_width", p.width / p.heads}}},
                                  {"text_cfg", {{"heads", p.textHeads}}}}}};
    Model model = buildModel(randomVitStateDict(spec), cfg, "shapes-clip (initial)");
    model.preprocess.mean = {0.5f, 0.5f, 0.5f};
    model.preprocess.std = {0.25f, 0.25f, 0.25f};
    model.info.layout = "open_clip";
    return model;
}

double learningRateAt(const ClipTrainParams& p, int step) {
    if (step < p.warmupSteps) return p.learningRate * (step + 1) / p.warmupSteps;
    const double t = static_cast<double>(step - p.warmupSteps) / std::max(1, p.steps - p.warmupSteps);
    return p.learningRate * 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, t)));
}

struct Batch {
    at::Tensor pixels, tokens, targets;  // targets [B, B]: caption j true of image i
};

Batch makeBatch(const ClipTrainParams& p, const Model& model, const WordTokenizer& tok, int step,
                const std::vector<std::vector<Attribute>>& named) {
    const int64_t b = p.batch;
    std::vector<Scene> scenes;
    std::vector<int> variants;
    WorldParams world = p.world;
    if (step < static_cast<int>(p.curriculumShare * p.steps)) {
        world.backgroundKinds = 2;
        world.distractorProbability = 0.0;
    }
    double totalWeight = 0;
    for (double w : p.singleAttributeWeights) totalWeight += w;
    for (int64_t i = 0; i < b; ++i) {
        const uint64_t index = static_cast<uint64_t>(step) * static_cast<uint64_t>(b) + static_cast<uint64_t>(i);
        scenes.push_back(generateScene(p.seed, index, world));
        // Caption choice, deterministic per scene.
        uint64_t h = (index + 1) * 0x9E3779B97F4A7C15ull ^ p.seed * 0xD1B54A32D192ED03ull;
        h ^= h >> 31;
        h *= 0xBF58476D1CE4E5B9ull;
        h ^= h >> 29;
        const double u = static_cast<double>(h >> 11) / 9007199254740992.0;
        double pick = static_cast<double>((h * 0x94D049BB133111EBull) >> 11) / 9007199254740992.0 * totalWeight;
        int single = 0;
        while (single < 5 && pick >= p.singleAttributeWeights[static_cast<std::size_t>(single)])
            pick -= p.singleAttributeWeights[static_cast<std::size_t>(single++)];
        const int multi = 6 + static_cast<int>((h >> 17) % static_cast<uint64_t>(captionCount() - 6));
        variants.push_back(u < p.singleAttributeShare ? single : multi);
    }
    Batch batch;
    batch.pixels = scenesToPixels(scenes, model.preprocess);
    batch.tokens = at::zeros({b, p.contextLength}, at::kLong);
    for (int64_t i = 0; i < b; ++i) {
        const auto ids = tok.tokenize(caption(scenes[static_cast<std::size_t>(i)].labels, variants[static_cast<std::size_t>(i)]), p.contextLength);
        std::copy(ids.begin(), ids.end(), batch.tokens[i].data_ptr<int64_t>());
    }
    batch.targets = at::eye(b, at::kFloat);
    if (p.duplicateAwareTargets) {
        auto acc = batch.targets.accessor<float, 2>();
        for (int64_t j = 0; j < b; ++j) {
            const SceneLabels& lj = scenes[static_cast<std::size_t>(j)].labels;
            for (int64_t i = 0; i < b; ++i) {
                bool match = true;
                for (Attribute a : named[static_cast<std::size_t>(variants[static_cast<std::size_t>(j)])])
                    match = match && scenes[static_cast<std::size_t>(i)].labels.value(a) == lj.value(a);
                acc[i][j] = match ? 1.f : 0.f;
            }
        }
    }
    return batch;
}

at::Tensor softCrossEntropy(const at::Tensor& logits, const at::Tensor& targets) {
    const at::Tensor t = targets / targets.sum(1, true);
    return -(t * at::log_softmax(logits, 1)).sum(1).mean();
}

std::string fmt(double v, int digits = 3) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
    return buf;
}

}  // namespace

void ClipTrainParams::validate() const {
    if (outDir.empty()) throw InputError("--out", "output directory is required");
    if (imageSize % patchSize != 0) throw InputError("--patch", "image size must be a multiple of the patch size");
    if (width % heads != 0 || textWidth % textHeads != 0) throw InputError("--heads", "width must be divisible by heads");
    if (batch < 2 || steps < 1 || warmupSteps < 1) throw InputError("--batch", "batch >= 2, steps >= 1, warm-up >= 1");
    if (learningRate <= 0) throw InputError("--lr", "must be positive");
}

ClipTrainResult trainShapesClip(const ClipTrainParams& p, const std::atomic<bool>& cancel,
                                const std::function<void(const TrainProgress&)>& progress,
                                const std::function<void(const std::string&)>& log) {
    p.validate();
    const WordTokenizer tok = worldTokenizer();
    std::vector<std::vector<Attribute>> named;
    for (int v = 0; v < captionCount(); ++v) named.push_back(namedAttributes(v));

    Model model = initialModel(p, static_cast<int64_t>(tok.vocabSize()));
    at::Tensor logScale = at::full({}, std::log(1.0 / 0.07));
    const fs::path ckptDir = fs::path(p.outDir) / "checkpoint";
    int startStep = 0;
    std::error_code ec;
    if (fs::exists(ckptDir / "state.json", ec)) {
        const auto state = nlohmann::json::parse(readFileText((ckptDir / "state.json").string()));
        Model saved = loadModel(ckptDir.string());
        model = saved;
        model.preprocess.mean = {0.5f, 0.5f, 0.5f};
        model.preprocess.std = {0.25f, 0.25f, 0.25f};
        logScale = at::full({}, std::log(saved.logitScale));
        startStep = state.at("step").get<int>();
        log("resuming from " + ckptDir.string() + " at step " + std::to_string(startStep));
    }
    std::vector<at::Tensor> decayed, plain;
    for (auto& [name, t] : namedModelTensors(model)) {
        *t = t->detach().clone().set_requires_grad(true);
        (t->dim() >= 2 && name.find("embedding") == std::string::npos ? decayed : plain).push_back(*t);
    }
    logScale = logScale.detach().clone().set_requires_grad(true);
    plain.push_back(logScale);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decayed, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(p.learningRate).betas({0.9, 0.98}).eps(1e-6).weight_decay(p.weightDecay)));
    groups.emplace_back(plain, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(p.learningRate).betas({0.9, 0.98}).eps(1e-6).weight_decay(0.0)));
    torch::optim::AdamW optimizer(groups);
    if (startStep > 0 && fs::exists(ckptDir / "optimizer.pt", ec)) torch::load(optimizer, (ckptDir / "optimizer.pt").string());

    auto saveTo = [&](const fs::path& dir, int step) {
        Model copy = model;
        copy.logitScale = std::exp(logScale.item<double>());
        {
            at::NoGradGuard guard;
            saveOpenClipModel(copy, dir.string());
        }
        tok.save((dir / "vocab.txt").string());
        torch::save(optimizer, (dir / "optimizer.pt").string());
        writeFileAtomic((dir / "state.json").string(), nlohmann::json{{"step", step}}.dump() + "\n");
    };

    ClipTrainResult result;
    const auto t0 = std::chrono::steady_clock::now();
    double emaLoss = 0;
    int step = startStep;
    for (; step < p.steps; ++step) {
        if (cancel.load()) {
            result.cancelled = true;
            break;
        }
        const double lr = learningRateAt(p, step);
        for (auto& g : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
        const Batch batch = makeBatch(p, model, tok, step, named);
        at::Tensor img = encodeImages(model, batch.pixels).output;
        at::Tensor txt = encodeTexts(model, batch.tokens);
        img = img / img.norm(2, 1, true);
        txt = txt / txt.norm(2, 1, true);
        const at::Tensor logits = logScale.clamp_max(std::log(100.0)).exp() * at::matmul(img, txt.t());
        const at::Tensor loss = 0.5 * (softCrossEntropy(logits, batch.targets) + softCrossEntropy(logits.t(), batch.targets.t()));
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        const double l = loss.item<double>();
        emaLoss = step == startStep ? l : 0.95 * emaLoss + 0.05 * l;
        result.finalLoss = emaLoss;
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (progress) {
            TrainProgress pr;
            pr.step = step + 1;
            pr.steps = p.steps;
            pr.loss = emaLoss;
            pr.stepLoss = l;
            pr.imagesPerSecond = (step + 1 - startStep) * p.batch / secs;
            pr.etaSeconds = (p.steps - step - 1) * secs / (step + 1 - startStep);
            pr.temperature = 1.0 / std::exp(logScale.item<double>());
            progress(pr);
        }
        if ((step + 1) % p.checkpointEvery == 0) saveTo(ckptDir, step + 1);
        if (p.evalEvery > 0 && ((step + 1) % p.evalEvery == 0 || step + 1 == p.steps)) {
            Model copy = model;
            const ZeroShotResult zs = evaluateZeroShot(copy, tok, p.evalImages, kEvalSeed + 1, p.world);
            std::string line = "step " + std::to_string(step + 1) + " zero-shot on " + std::to_string(zs.images) + " held-out images:";
            for (std::size_t a = 0; a < 6; ++a) line += std::string(" ") + attributeName(kAttributes[a]) + " " + fmt(zs.accuracy[a]);
            log(line);
        }
    }
    result.stepsRun = step - startStep;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    saveTo(ckptDir, step);
    if (!result.cancelled) {
        Model copy = model;
        copy.logitScale = std::exp(logScale.item<double>());
        at::NoGradGuard guard;
        saveOpenClipModel(copy, p.outDir);
        tok.save((fs::path(p.outDir) / "vocab.txt").string());
    }
    return result;
}

}  // namespace vitscope::shapes
