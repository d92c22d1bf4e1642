// vitscope-cli splice / splice-mean: SpLiCE (AI4LIFE-GROUP/SpLiCE) over a text vocabulary file,
// for the model's output or one component's term (analysis/splice.h says what is computed).
#include "splice_command.h"

#include "analysis/components.h"
#include "analysis/session.h"
#include "analysis/splice.h"
#include "analysis/text_embed.h"
#include "cli_common.h"
#include "error.h"
#include "io/file_util.h"
#include "io/tensor_io.h"
#include "model/forward.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

namespace fs = std::filesystem;

namespace vitscope::cli {

namespace {

const char* kCentring =
    "A component (--component) is decomposed like the output, with its own mean in place of the image mean: "
    "y = normalize(normalize(term) - mean of the component's normalised term over a dataset) (splice-mean "
    "--component NAME makes it). A head's term has a large image-independent part that would otherwise "
    "dominate every decomposition; its dataset mean removes it, as the reference's image mean does for the output.";

struct SpliceOptions {
    ModelOptions model;
    InputOptions inputs;
    std::string aligner, clip, vocab, imageMean, component, solver = "skl", out;
    SpliceParams params;
    int show = 8;
    int vocabSize = 0;  // > 0: the last K lines only (the reference's vocabulary_size)
};

// The model with its text side (the aligner's CLIP for non-CLIP models, as retrieve / heatmap).
HeatmapSession openSpliceModel(const ModelOptions& m, const std::string& aligner, const std::string& clip) {
    HeatmapSessionOptions s;
    s.model = m.model;
    s.tokenizer = m.tokenizer;
    s.device = m.device;
    s.checkpointKey = m.checkpointKey;
    s.precision = m.precision;
    s.aligner = aligner;
    s.clip = clip;
    if (aligner.empty()) s.alignerIfNotClip = alignerBesideModel(m.model);
    s.surgeryEnsemble = "off";
    return openHeatmapSession(s);
}

// The vocabulary's plain text embeddings [V, E] (no template, as the reference embeds each line).
at::Tensor embedVocabulary(const TextEncoder& text, const std::vector<std::string>& concepts, const std::string& path) {
    try {
        return text.encode(concepts);
    } catch (const InputError& e) {
        throw InputError(path, std::string("cannot embed the vocabulary: ") + e.what());
    }
}

at::Tensor readMean(const std::string& path, int64_t e) {
    at::Tensor m;
    try {
        m = readNpyTensor(path);
    } catch (const Error& err) {
        throw InputError(path, std::string("not a readable .npy image mean (") + err.what() + ")");
    }
    if (m.numel() != e || (m.dim() != 1 && !(m.dim() == 2 && m.size(0) == 1)) || !at::isFloatingType(m.scalar_type()))
        throw InputError(path, "image mean must be a float array of " + std::to_string(e) +
                                   " values (the embedding size); it has shape " + c10::str(m.sizes()));
    return m.reshape({e}).to(at::kFloat);
}

at::Tensor collectTargets(const HeatmapSession& s, const InputOptions& in, const std::string& component) {
    const Inputs inputs(*s.model, in);
    std::vector<at::Tensor> parts;
    for (int64_t start = 0; start < inputs.count(); start += in.batch) {
        const int64_t n = std::min<int64_t>(in.batch, inputs.count() - start);
        parts.push_back(
            spliceTargetsFor(*s.model, s.aligner ? &*s.aligner : nullptr, inputs.batch(start, n), component));
    }
    if (parts.empty()) throw InputError("inputs", "no images");
    return at::cat(parts);
}

void printConcepts(const SpliceResult& r, const std::vector<std::string>& concepts, int show) {
    for (int64_t b = 0; b < r.weights.size(0); ++b) {
        const std::vector<SpliceConcept> top = spliceConcepts(r.weights[b], concepts, -1);
        std::printf("image %lld: cosine %.4f, %zu concepts", static_cast<long long>(b), r.cosine[b].item<double>(),
                    top.size());
        for (std::size_t i = 0; i < top.size() && static_cast<int>(i) < show; ++i)
            std::printf("%s %s %.4f", i == 0 ? ":" : ",", top[i].text.c_str(), top[i].weight);
        std::printf("\n");
    }
}

void runSpliceCommand(SpliceOptions o) {
    o.params.solver = parseSpliceSolver(o.solver);
    o.params.validate();
    std::vector<std::string> concepts = readTextList(o.vocab);
    if (o.vocabSize < 0) throw InputError("--vocab-size", "must be >= 0 (0: every line)");
    if (o.vocabSize > 0 && o.vocabSize < static_cast<int>(concepts.size()))
        concepts.erase(concepts.begin(), concepts.end() - o.vocabSize);
    const HeatmapSession s = openSpliceModel(o.model, o.aligner, o.clip);
    const at::Tensor vocab = embedVocabulary(*s.text, concepts, o.vocab);
    const at::Tensor mean = readMean(o.imageMean, vocab.size(1));
    const at::Tensor targets = collectTargets(s, o.inputs, o.component);
    spdlog::info("splice: {} images, {} concepts, {}", targets.size(0), concepts.size(), o.params.toString());
    const auto t0 = std::chrono::steady_clock::now();
    const SpliceResult r = runSplice(vocab, mean, targets, o.params, interruptibleJob("splice"));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ensureDir(o.out);
    writeNpyTensor((fs::path(o.out) / "weights.npy").string(), r.weights);
    writeNpyTensor((fs::path(o.out) / "cosine.npy").string(), r.cosine);
    nlohmann::ordered_json j;
    j["model"] = o.model.model;
    j["component"] = o.component.empty() ? "output" : o.component;
    j["vocab"] = o.vocab;
    j["concepts"] = concepts;
    j["image_mean"] = o.imageMean;
    j["params"] = o.params.toString();
    j["iterations"] = r.iterations;
    j["seconds_per_image"] = seconds / static_cast<double>(targets.size(0));
    writeFileAtomic((fs::path(o.out) / "splice.json").string(), j.dump(1) + "\n");
    printConcepts(r, concepts, o.show);
    std::cout << o.out << "\n";
}

struct SpliceMeanOptions {
    ModelOptions model;
    InputOptions inputs;
    std::string cache, aligner, clip, component, out;
};

// The component's terms (or the output) of every cached image, in CLIP space.
at::Tensor cachedTargets(const SpliceMeanOptions& o) {
    CacheSessionOptions c;
    c.cache = o.cache;
    c.aligner = o.aligner;
    if (c.aligner.empty()) {  // a non-CLIP cache: the aligner beside its model (as project does)
        const DatasetCache cache(o.cache);
        if (!cache.modelSpec().empty()) c.aligner = alignerBesideModel(cache.modelSpec());
    }
    c.device = o.model.device;
    const CacheSession s = openCacheSession(c, false);
    // Copies: the session's memory maps close when it goes.
    if (o.component.empty()) return s.view->output().to(at::kFloat).clone();
    if (o.component.find('@') != std::string::npos || o.component.rfind("neuron.", 0) == 0)
        throw InputError(o.cache, "holds per-head sums, not '" + o.component +
                                      "': make its mean from images (--model M --image ...)");
    if (s.cache->convention() != Convention::Exact)
        throw InputError(o.cache, "holds terms of the " + std::string(conventionName(s.cache->convention())) +
                                      " convention; splice decomposes components under the exact one (rebuild the "
                                      "cache, or use --model with images)");
    return s.view->terms(s.view->parse(o.component)).clone();
}

void runSpliceMean(const SpliceMeanOptions& o) {
    if (o.cache.empty() == o.model.model.empty())
        throw InputError("splice-mean", "give exactly one of --cache or --model (with images)");
    at::Tensor targets;
    if (!o.cache.empty()) {
        targets = cachedTargets(o);
    } else {
        const HeatmapSession s = openSpliceModel(o.model, o.aligner, o.clip);
        targets = collectTargets(s, o.inputs, o.component);
    }
    const at::Tensor mean = spliceMean(targets);
    writeNpyTensor(o.out, mean);
    std::printf("mean of %lld normalised %s over %s: |mean| %.4f\n%s\n", static_cast<long long>(targets.size(0)),
                o.component.empty() ? "outputs" : ("'" + o.component + "' terms").c_str(),
                o.cache.empty() ? "the images" : o.cache.c_str(), mean.norm().item<double>(), o.out.c_str());
}

const char* kComponentHelp =
    "Decompose a component's term instead of the output: embed, L.H (head), L.H@T (head at token T, 0 = class token), "
    "mlp.L, "
    "attn_bias.L, post_bias, neuron.L.N (second-order effect, CLIP models); zero-based";

void addSpliceCommand(CLI::App& app, std::vector<std::function<void()>>& actions) {
    auto o = std::make_shared<SpliceOptions>();
    auto* sub = app.add_subcommand(
        "splice", "SpLiCE: sparse non-negative decomposition of images (or a component) over a text vocabulary");
    sub->footer(std::string("Writes DIR/weights.npy [B, vocabulary] float32, DIR/cosine.npy [B] (cosine of the "
                            "reconstruction with the "
                            "normalised embedding) and DIR/splice.json. ") +
                kCentring);
    addModelOptions(sub, o->model);
    addInputOptions(sub, o->inputs);
    sub->add_option("--aligner", o->aligner,
                    "Aligner into CLIP space (non-CLIP models; default: the one beside the model)");
    sub->add_option("--clip", o->clip, "CLIP model for the vocabulary of a non-CLIP model (default: the aligner's)");
    sub->add_option("--vocab", o->vocab,
                    "Concept vocabulary: a text file, one concept per line (embedded as it is; empty lines and # "
                    "comments skipped)")
        ->required();
    sub->add_option("--vocab-size", o->vocabSize,
                    "Only the last K concepts (the reference's vocabulary_size: its files run from least to most "
                    "frequent; 0: all)")
        ->capture_default_str();
    sub->add_option("--image-mean", o->imageMean,
                    "Mean of normalised embeddings (or component terms) over a dataset, .npy [E] (splice-mean)")
        ->required();
    sub->add_option("--l1", o->params.l1, "l1 penalty (the reference's l1_penalty; sklearn alpha = l1 / (2 E))")
        ->capture_default_str();
    sub->add_option("--component", o->component, kComponentHelp);
    sub->add_option("--solver", o->solver,
                    "skl (the reference's default: sklearn's Lasso by coordinate descent) or admm")
        ->capture_default_str();
    sub->add_option("--max-iter", o->params.maxIter, "skl: maximum epochs")->capture_default_str();
    sub->add_option("--tol", o->params.tol, "skl: duality-gap tolerance; admm: residual tolerance")
        ->capture_default_str();
    sub->add_option("--show", o->show, "Concepts printed per image")->capture_default_str();
    sub->add_option("--out", o->out, "Output folder")->required();
    sub->callback([&actions, o] { actions.push_back([o] { runSpliceCommand(*o); }); });
}

void addSpliceMeanCommand(CLI::App& app, std::vector<std::function<void()>>& actions) {
    auto o = std::make_shared<SpliceMeanOptions>();
    auto* sub = app.add_subcommand(
        "splice-mean", "The mean of normalised embeddings (or a component's terms) that splice --image-mean reads");
    sub->footer(kCentring);
    sub->add_option("--cache", o->cache,
                    "Dataset cache (vitscope-cli cache build): its outputs or cached component terms");
    addModelOptions(sub, o->model, false);
    addInputOptions(sub, o->inputs);
    sub->add_option("--aligner", o->aligner, "Aligner into CLIP space (non-CLIP models / caches)");
    sub->add_option("--clip", o->clip, "CLIP model of a non-CLIP model's aligner (default: the aligner's)");
    sub->add_option("--component", o->component, kComponentHelp);
    sub->add_option("--out", o->out, "Output MEAN.npy [E] float32")->required();
    sub->callback([&actions, o] { actions.push_back([o] { runSpliceMean(*o); }); });
}

}  // namespace

void registerSpliceCommands(CLI::App& app, std::vector<std::function<void()>>& actions) {
    addSpliceCommand(app, actions);
    addSpliceMeanCommand(app, actions);
}

}  // namespace vitscope::cli
