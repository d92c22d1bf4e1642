#include "cli_commands.h"

#include "analysis_commands.h"
#include "benchmark_commands.h"
#include "image_commands.h"
#include "neuron_commands.h"
#include "projection_commands.h"
#include "sae_commands.h"
#include "register_commands.h"
#include "splice_command.h"
#include "sae_train_command.h"
#include "cli_common.h"

#include "demo.h"
#include "shapes_commands.h"
#include "error.h"
#include "image/preprocess.h"
#include "io/file_util.h"
#include "io/tensor_io.h"
#include "model/forward.h"
#include "model/loader.h"
#include "runtime.h"
#include "text/text_tokenizer.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <memory>

namespace fs = std::filesystem;

namespace vitscope::cli {

namespace {

std::unique_ptr<TextTokenizer> openTokenizer(const Model& model) {
    if (model.tokenizerPath.empty())
        throw InputError(model.info.weightsPath, "no tokenizer found beside the model; pass --tokenizer");
    return loadTokenizer(model.tokenizerPath);
}

at::Tensor tokenizeAll(const TextTokenizer& tok, const std::vector<std::string>& texts, int context) {
    at::Tensor out = at::zeros({static_cast<int64_t>(texts.size()), context}, at::kLong);
    for (std::size_t i = 0; i < texts.size(); ++i) {
        const std::vector<int64_t> ids = tok.tokenize(texts[i], context);
        std::copy(ids.begin(), ids.end(), out[static_cast<int64_t>(i)].data_ptr<int64_t>());
    }
    return out;
}

std::string outPath(const std::string& dir, const char* name) { return (fs::path(dir) / name).string(); }

void runInfo(const ModelOptions& o) {
    const Model model = openModel(o);
    const VisionTower& v = model.vision;
    nlohmann::ordered_json j;
    j["family"] = model.info.family;
    j["layout"] = model.info.layout;
    j["format"] = model.info.format;
    j["weights"] = model.info.weightsPath;
    if (model.info.shards > 1) j["shards"] = model.info.shards;
    j["stored_dtypes"] = model.info.storedDTypes;
    j["checkpoint_key"] = model.info.wrapperKey;
    j["checkpoint_keys_found"] = model.info.wrapperCandidates;
    j["stripped_prefix"] = model.info.strippedPrefix;
    j["ignored_tensors"] = model.info.ignoredTensors;
    j["layers"] = v.layers();
    j["heads"] = v.heads();
    j["width"] = v.width;
    j["embed_dim"] = v.embedDim();
    j["image_size"] = model.preprocess.imageSize;
    j["patch_size"] = v.patchSize;
    j["tokens"] = v.tokensFor(model.preprocess.imageSize);
    j["registers"] = v.numRegisters();
    j["layer_scale"] = !v.encoder.blocks.empty() && v.encoder.blocks[0].ls1.defined();
    j["activation"] = v.encoder.activation == Activation::QuickGelu ? "quick_gelu"
                      : v.encoder.activation == Activation::GeluTanh ? "gelu_tanh"
                                                                      : "gelu";
    j["class_token"] = v.hasClassToken();
    if (v.pool.defined()) j["pool"] = {{"kind", "attention (MAP)"}, {"heads", v.pool.heads}, {"mlp", v.pool.fc1W.size(0)}};
    if (v.swin.defined()) {
        nlohmann::ordered_json stages = nlohmann::ordered_json::array();
        for (const SwinStage& st : v.swin.stages)
            stages.push_back({{"width", st.width}, {"depth", st.depth}, {"heads", st.heads}, {"first_layer", st.firstLayer}});
        j["swin"] = {{"window", v.swin.window}, {"stages", stages}};
    }
    if (v.maxvit.defined()) {
        nlohmann::ordered_json stages = nlohmann::ordered_json::array();
        for (const MaxVitStage& st : v.maxvit.stages)
            stages.push_back({{"width", st.width}, {"blocks", st.depth}, {"heads", st.heads}, {"first_layer", st.firstLayer}});
        j["maxvit"] = {{"partition", v.maxvit.partition}, {"stem", v.maxvit.stem1W.size(0)}, {"stages", stages},
                       {"attention_units_per_block", 2}};
    }
    j["num_classes"] = model.numClasses;
    if (model.text) {
        j["text"] = {{"width", model.text->width},
                     {"layers", model.text->encoder.blocks.size()},
                     {"heads", model.text->encoder.heads},
                     {"context_length", model.text->contextLength},
                     {"vocab_size", model.text->tokenEmbedding.size(0)}};
        j["logit_scale"] = model.logitScale;
        if (model.sigmoidScores) j["logit_bias"] = model.logitBias;
        j["scores"] = model.sigmoidScores ? "sigmoid" : "softmax";
    }
    j["preprocess"] = {{"resize_shortest", model.preprocess.resizeShortest},
                       {"squash", model.preprocess.squash},
                       {"resample", model.preprocess.bilinear ? "bilinear" : "bicubic"},
                       {"crop", model.preprocess.imageSize},
                       {"mean", model.preprocess.mean},
                       {"std", model.preprocess.std}};
    j["tokenizer"] = model.tokenizerPath;
    j["device"] = v.device().str();
    j["precision"] = precisionName(model.precision);
    std::cout << j.dump(2) << "\n";
}

struct TokenizeOptions {
    ModelOptions model;
    std::string tokenizer;
    std::vector<std::string> texts;
    std::string out;
};

void runTokenize(const TokenizeOptions& o) {
    std::string path = o.tokenizer.empty() ? o.model.tokenizer : o.tokenizer;
    int context = 77;  // CLIP's context; a word-vocabulary or SigLIP model states its own
    if (path.empty()) {
        if (o.model.model.empty()) throw InputError("tokenize", "give --model or --tokenizer");
        const ModelFiles files = resolveModelFiles(o.model.model);
        path = files.tokenizer;
        if (path.empty()) throw InputError(o.model.model, "no tokenizer found beside the model; pass --tokenizer");
    }
    const bool sentencePiece = path.size() > 6 && path.compare(path.size() - 6, 6, ".model") == 0;
    if (sentencePiece) context = 64;  // SigLIP's context
    if (!o.model.model.empty() && (path.find("vocab.txt") != std::string::npos || sentencePiece)) {
        const Model model = loadModel(o.model.model);
        if (model.text) context = model.text->contextLength;
    }
    const std::unique_ptr<TextTokenizer> tok = loadTokenizer(path);
    const at::Tensor ids = tokenizeAll(*tok, o.texts, context);
    writeNpyTensor(o.out, ids);
    std::cout << o.out << "\n";
}

struct EmbedOptions {
    ModelOptions model;
    InputOptions inputs;
    std::vector<std::string> texts;
    std::string out;
    TestTimeRegisterOptions registers;
};

void runEmbed(const EmbedOptions& o) {
    Model model = openModel(o.model);
    applyTestTimeRegisterOptions(model, o.registers);
    const Inputs inputs(model, o.inputs);
    at::NoGradGuard noGrad;
    std::vector<at::Tensor> outputs, logits, preLogits;
    for (int64_t start = 0; start < inputs.count(); start += o.inputs.batch) {
        const VisionResult r = encodeImages(model, inputs.batch(start, std::min<int64_t>(o.inputs.batch, inputs.count() - start)));
        outputs.push_back(r.output.cpu());
        if (r.logits.defined()) logits.push_back(r.logits.cpu());
        if (r.features.defined()) preLogits.push_back(r.features.cpu());
    }
    ensureDir(o.out);
    if (model.isClip()) {
        writeNpyTensor(outPath(o.out, "image_embeds.npy"), at::cat(outputs));
        if (!o.texts.empty()) {
            const std::unique_ptr<TextTokenizer> tok = openTokenizer(model);
            const at::Tensor ids = tokenizeAll(*tok, o.texts, model.text->contextLength);
            const at::Tensor texts = encodeTexts(model, ids).cpu();
            writeNpyTensor(outPath(o.out, "text_embeds.npy"), texts);
            // The model's own scores: CLIP's scaled cosines and their softmax over the texts;
            // SigLIP's scale * cosine + bias and its sigmoid per pair.
            const at::Tensor images = at::cat(outputs);
            const at::Tensor cos = at::matmul(images / images.norm(2, 1, true).clamp_min(1e-12),
                                              (texts / texts.norm(2, 1, true).clamp_min(1e-12)).t());
            const at::Tensor logits = cos * model.logitScale + (model.sigmoidScores ? model.logitBias : 0.0);
            writeNpyTensor(outPath(o.out, "logits_per_image.npy"), logits);
            writeNpyTensor(outPath(o.out, "probs.npy"), model.sigmoidScores ? at::sigmoid(logits) : at::softmax(logits, 1));
        }
    } else {
        if (!o.texts.empty()) throw InputError(model.info.weightsPath, "--text needs a CLIP model (this one has no text tower)");
        // MaxViT: features.npy is the head's pre-logits (what timm and torchvision call features),
        // pooled.npy the normed pool the decomposition sums to.
        writeNpyTensor(outPath(o.out, "features.npy"), at::cat(preLogits.empty() ? outputs : preLogits));
        if (!preLogits.empty()) writeNpyTensor(outPath(o.out, "pooled.npy"), at::cat(outputs));
        if (!logits.empty()) writeNpyTensor(outPath(o.out, "logits.npy"), at::cat(logits));
    }
    std::cout << o.out << "\n";
}

struct DecomposeCliOptions {
    ModelOptions model;
    InputOptions inputs;
    std::string out;
    bool tokens = false;
    std::string convention = "exact";
    std::string fromBlock;  // vit-decompose's detach block "S,B"
    TestTimeRegisterOptions registers;
};

void runDecompose(const DecomposeCliOptions& o) {
    DecomposeOptions opts;
    opts.tokens = o.tokens;
    opts.convention = parseConvention(o.convention);
    if (!o.fromBlock.empty()) parseFromBlock(o.fromBlock, &opts.fromStage, &opts.fromBlock);
    Model model = openModel(o.model);
    const int registerTokens = applyTestTimeRegisterOptions(model, o.registers);
    const Inputs inputs(model, o.inputs);
    at::NoGradGuard noGrad;
    std::vector<at::Tensor> heads, attnBias, mlps, embed, postBias, output, terms, poolHeads, poolTerms, stageBias, convs;
    std::vector<std::string> names, poolNames;
    double maxErr = 0, miss = 0;
    for (int64_t start = 0; start < inputs.count(); start += o.inputs.batch) {
        const int64_t n = std::min<int64_t>(o.inputs.batch, inputs.count() - start);
        const Decomposition d = decomposeImages(model, inputs.batch(start, n), opts);
        heads.push_back(d.heads.cpu());
        attnBias.push_back(d.attnBias.cpu());
        mlps.push_back(d.mlps.cpu());
        embed.push_back(d.embed.cpu());
        postBias.push_back(d.postBias.cpu());
        output.push_back(d.output.cpu());
        terms.push_back(termsByComponent(d, &names).cpu());
        if (d.stageBias.defined()) stageBias.push_back(d.stageBias.cpu());
        if (d.convs.defined()) convs.push_back(d.convs.cpu());
        if (d.pooled()) {
            poolHeads.push_back(d.poolHeads.cpu());
            poolTerms.push_back(poolTermsByComponent(d, &poolNames).cpu());
        }
        maxErr = std::max(maxErr, d.maxAbsError);
        miss = std::max(miss, d.outputMiss);
        spdlog::info("decomposed images {}..{} (max abs error {:.3g})", start, start + n - 1, d.maxAbsError);
    }
    ensureDir(o.out);
    const at::Tensor allHeads = at::cat(heads);
    writeNpyTensor(outPath(o.out, "heads.npy"), allHeads);
    writeNpyTensor(outPath(o.out, "attn_bias.npy"), at::cat(attnBias));
    writeNpyTensor(outPath(o.out, "mlps.npy"), at::cat(mlps));
    writeNpyTensor(outPath(o.out, "embed.npy"), at::cat(embed));
    writeNpyTensor(outPath(o.out, "post_bias.npy"), at::cat(postBias));
    writeNpyTensor(outPath(o.out, "output.npy"), at::cat(output));
    auto writeNames = [&](const char* file, const std::vector<std::string>& list) {
        std::string text;
        for (const std::string& n : list) text += n + "\n";
        writeFileAtomic(outPath(o.out, file), text);
    };
    if (!stageBias.empty())
        writeNpyTensor(outPath(o.out, model.vision.maxvit.defined() ? "shortcut_bias.npy" : "merge_bias.npy"), at::cat(stageBias));
    if (!convs.empty()) writeNpyTensor(outPath(o.out, "convs.npy"), at::cat(convs));
    writeNpyTensor(outPath(o.out, "terms.npy"), at::cat(terms));
    writeNames("components.txt", names);
    if (!poolTerms.empty()) {
        writeNpyTensor(outPath(o.out, "pool_heads.npy"), at::cat(poolHeads));
        writeNpyTensor(outPath(o.out, "pool_terms.npy"), at::cat(poolTerms));
        writeNames("pool_components.txt", poolNames);
    }
    nlohmann::ordered_json summary;
    summary["max_abs_error"] = maxErr;
    summary["convention"] = conventionName(opts.convention);
    summary["precision"] = precisionName(model.precision);
    if (opts.convention == Convention::VitDecompose) {
        // The reference's terms sum to its walker's value (max_abs_error), not to the output.
        summary["from_block"] = {opts.fromStage, opts.fromBlock};
        summary["output_miss"] = miss;
    }
    summary["tokens"] = o.tokens;
    if (registerTokens > 0) {
        // The registers are the last tokens of the per-token terms: their own tokens in the sum.
        summary["test_time_registers"] = registerTokens;
    }
    summary["images"] = inputs.count();
    summary["heads_shape"] = allHeads.sizes().vec();
    summary["components"] = names.size();
    if (!poolNames.empty()) summary["pool_components"] = poolNames.size();
    summary["model"] = model.info.weightsPath;
    summary["family"] = model.info.family;
    writeFileAtomic(outPath(o.out, "summary.json"), summary.dump(2) + "\n");
    std::cout << summary.dump() << "\n";
}

}  // namespace

void registerCommands(CLI::App& app, std::vector<std::function<void()>>& actions) {
    {
        auto o = std::make_shared<ModelOptions>();
        auto* sub = app.add_subcommand("info", "Print a model's architecture as JSON");
        addModelOptions(sub, *o);
        sub->callback([&actions, o] { actions.push_back([o] { runInfo(*o); }); });
    }
    {
        auto o = std::make_shared<TokenizeOptions>();
        auto* sub = app.add_subcommand("tokenize", "Tokenize texts as the model's text tower reads them: int64 [T, context] .npy");
        sub->add_option("--model", o->model.model, "Model whose tokenizer to use");
        sub->add_option("--tokenizer", o->tokenizer, "BPE merges .gz, a directory with vocab.json + merges.txt, or a SentencePiece .model");
        sub->add_option("--text", o->texts, "Text (repeatable)")->required();
        sub->add_option("--out", o->out, "Output .npy")->required();
        sub->callback([&actions, o] { actions.push_back([o] { runTokenize(*o); }); });
    }
    {
        auto o = std::make_shared<EmbedOptions>();
        auto* sub = app.add_subcommand("embed", "Image (and text) embeddings, or classifier features and logits");
        addModelOptions(sub, o->model);
        addInputOptions(sub, o->inputs);
        sub->add_option("--text", o->texts, "Text to embed (repeatable, CLIP / SigLIP); adds logits_per_image.npy and probs.npy "
                                            "(softmax over the texts for CLIP, sigmoid per pair for SigLIP)");
        sub->add_option("--out", o->out, "Output directory")->required();
        addTestTimeRegisterOptions(sub, o->registers);
        sub->callback([&actions, o] { actions.push_back([o] { runEmbed(*o); }); });
    }
    {
        auto o = std::make_shared<DecomposeCliOptions>();
        auto* sub = app.add_subcommand("decompose",
                                       "Decompose image representations into layer / head / token terms (terms.npy [B, C, E] + "
                                       "components.txt for every family; SigLIP adds pool_terms.npy + pool_components.txt)");
        addModelOptions(sub, o->model);
        addInputOptions(sub, o->inputs);
        sub->add_option("--out", o->out, "Output directory")->required();
        sub->add_flag("--tokens", o->tokens, "Keep per-token head terms [B, L, H, N, E]");
        sub->add_option("--convention", o->convention,
                        "exact, textspan or vit-decompose (Swin / MaxViT: the reference's terms; output_miss in summary.json)")
            ->capture_default_str();
        sub->add_option("--from-block", o->fromBlock, "vit-decompose's detach block STAGE,BLOCK (default 0,0; its Swin-B runs 2,14)");
        addTestTimeRegisterOptions(sub, o->registers);
        sub->callback([&actions, o] { actions.push_back([o] { runDecompose(*o); }); });
    }
    registerAnalysis(app, actions);
    registerImageCommands(app, actions);
    registerNeuronCommands(app, actions);
    registerRegisterCommands(app, actions);
    registerProjectionCommands(app, actions);
    registerSpliceCommands(app, actions);
    registerSaeCommands(app, actions);
    registerSaeTrainCommands(app, actions);
    registerBenchmarks(app, actions);
    registerDemo(app, actions);
    registerShapes(app, actions);
}

}  // namespace vitscope::cli
