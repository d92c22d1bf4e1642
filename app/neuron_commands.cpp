// vitscope-cli second-order: every neuron's second-order effect for a layer, streamed to
// OUT/effects.npy [B, neurons, E] and OUT/norms.npy [B, neurons] one batch at a time (the full
// tensor of a dataset does not fit memory: 5,000 ViT-B images x 3,072 neurons x 512 floats is 31 GB).
// The run resumes: OUT/summary.json records the settings and the images done after every batch.
#include "neuron_commands.h"

#include "analysis/cache.h"
#include "analysis/neurons.h"
#include "analysis/second_order.h"
#include "analysis/text_embed.h"
#include "cli_common.h"
#include "error.h"
#include "io/file_util.h"
#include "io/npy_appender.h"
#include "io/safetensors.h"
#include "io/tensor_io.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

namespace fs = std::filesystem;

namespace vitscope::cli {

namespace {

struct SecondOrderCliOptions {
    ModelOptions model;
    InputOptions inputs;
    std::string out, convention = "reference";
    int layer = -1;
    double coefficient = 100.0;
    bool coefficientGiven = false;
};

// What makes two runs the same: resuming is allowed only into the output of this key.
nlohmann::ordered_json runKey(const SecondOrderCliOptions& o, const Model& model, int64_t images) {
    nlohmann::ordered_json key;
    key["model"] = modelFingerprint(model);
    key["layer"] = o.layer;
    key["convention"] = o.convention;
    key["coefficient"] = o.coefficient;
    std::string inputs;
    if (!o.inputs.pixels.empty()) {
        inputs = "pixels:" + fs::absolute(o.inputs.pixels).lexically_normal().string() + ":" + fileSha256(o.inputs.pixels);
    } else {
        for (const std::string& p : o.inputs.images) inputs += fs::absolute(p).lexically_normal().string() + "\n";
    }
    key["inputs"] = sha256Hex(inputs);
    key["images"] = images;
    return key;
}

void runSecondOrder(const SecondOrderCliOptions& o) {
    const Model model = openModel(o.model);
    SecondOrderSettings s;
    s.layer = o.layer;
    s.convention = parseNeuronConvention(o.convention);
    s.coefficient = o.coefficient;
    if (o.coefficientGiven && s.convention == NeuronConvention::Exact)
        throw InputError("--coefficient", "scales the reference convention only; the exact convention stays in output units");
    const SecondOrderLens lens(model, s);
    const Inputs inputs(model, o.inputs);
    const int64_t n = inputs.count(), M = lens.neurons(), E = model.vision.embedDim();
    const nlohmann::ordered_json key = runKey(o, model, n);
    ensureDir(o.out);
    const std::string summaryPath = (fs::path(o.out) / "summary.json").string();
    int64_t done = 0;
    std::error_code ec;
    if (fs::exists(summaryPath, ec)) {
        nlohmann::json old;
        try {
            std::ifstream in(summaryPath);
            old = nlohmann::json::parse(in);
        } catch (const nlohmann::json::exception& e) {
            throw FormatError(summaryPath, std::string("is not a second-order summary (") + e.what() + ")");
        }
        if (!old.contains("key") || old["key"] != nlohmann::json(key))
            throw InputError(o.out, "holds the output of another second-order run (model, layer, convention or inputs differ); choose another --out");
        done = old.value("images_done", int64_t(0));
        if (done < 0 || done > n) throw FormatError(summaryPath, "records an impossible image count");
        if (done == n) {
            std::cout << o.out << " already holds this run's " << n << " images\n";
            return;
        }
        std::cout << "resuming after " << done << " of " << n << " images in " << o.out << "\n";
    }
    NpyAppender effects((fs::path(o.out) / "effects.npy").string(), DType::F32, {M, E}, done);
    NpyAppender norms((fs::path(o.out) / "norms.npy").string(), DType::F32, {M}, done);
    NpyAppender outputs((fs::path(o.out) / "output.npy").string(), DType::F32, {E}, done);
    if (!o.inputs.images.empty()) {  // the images in row order, for retrieval and the neurons' top images
        std::string list;
        for (const std::string& p : o.inputs.images) list += fs::absolute(p).lexically_normal().string() + "\n";
        writeFileAtomic((fs::path(o.out) / "paths.txt").string(), list);
    }
    nlohmann::ordered_json summary;
    summary["key"] = key;
    summary["model_path"] = model.info.weightsPath;
    summary["layer"] = o.layer;
    summary["convention"] = neuronConventionName(s.convention);
    summary["coefficient"] = s.convention == NeuronConvention::Reference ? nlohmann::json(o.coefficient) : nlohmann::json();
    summary["neurons"] = M;
    summary["embed_dim"] = E;
    summary["images"] = n;
    summary["effects_shape"] = {n, M, E};
    auto save = [&](int64_t rows) {
        effects.finish(rows);
        norms.finish(rows);
        outputs.finish(rows);
        summary["images_done"] = rows;
        writeFileAtomic(summaryPath, summary.dump(2) + "\n");
    };
    const JobContext job = interruptibleJob("second-order effects");
    job.report({done, n, 0, 0, {}});
    for (int64_t start = done; start < n; start += o.inputs.batch) {
        if (job.cancelled()) {
            save(start);
            std::cout << "interrupted after " << start << " of " << n << " images; run the same command to resume\n";
            return;
        }
        const int64_t count = std::min<int64_t>(o.inputs.batch, n - start);
        const SecondOrderEffects r = lens.compute(inputs.batch(start, count).to(model.vision.device()));
        effects.append(r.effects.to(at::kCPU, at::kFloat));
        norms.append(r.norms.to(at::kCPU, at::kFloat));
        outputs.append(r.output.to(at::kCPU, at::kFloat));
        save(start + count);
        job.report({start + count, n, 0, 0, {}});
    }
    std::cout << summary.dump() << "\n";
}

struct DescribeOptions {
    ModelOptions model;
    std::string effects, texts, out;
    int topK = 100, components = 32, show = 5;
};

// neurons describe: compute_pcas.py + compute_sparse_decomposition.py on a finished second-order
// run's effects (memory-mapped: a dataset's tensor need not fit in memory).
void runDescribe(const DescribeOptions& o) {
    const std::string summaryPath = (fs::path(o.effects) / "summary.json").string();
    nlohmann::json run;
    try {
        std::ifstream in(summaryPath);
        if (!in) throw IoError(summaryPath, "cannot be read (is --effects a second-order output folder?)");
        run = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw FormatError(summaryPath, std::string("is not a second-order summary (") + e.what() + ")");
    }
    if (!run.contains("key") || !run.contains("images") || run.value("images_done", int64_t(-1)) != run["images"].get<int64_t>())
        throw InputError(o.effects, "is not a finished second-order run; run the same second-order command to finish it");
    const Model model = openModel(o.model);
    if (run["key"].value("model", std::string()) != modelFingerprint(model))
        throw InputError(o.effects, "holds effects of another model than " + o.model.model + " (the texts must be embedded by the same CLIP)");
    const std::vector<std::string> texts = readTextList(o.texts);
    if (o.components > static_cast<int>(texts.size()))
        throw InputError("--components " + std::to_string(o.components), "is more than the " + std::to_string(texts.size()) + " texts of " + o.texts);
    const MappedFile file((fs::path(o.effects) / "effects.npy").string());
    const NpyHeader h = parseNpyHeader(file.data(), file.size(), file.path());
    if (h.dtype != DType::F32 || h.shape.size() != 3) throw FormatError(file.path(), "is not a second-order effects array [images, neurons, E] float32");
    const at::Tensor effects = at::from_blob(const_cast<uint8_t*>(file.data() + h.dataOffset), h.shape, at::kFloat);
    const JobContext job = interruptibleJob("neurons");
    const NeuronDirections dirs = neuronPrincipalDirections(effects, o.topK, job);
    const TextEncoder encoder(model);
    const at::Tensor textEmbeds = encoder.encode(texts);
    if (textEmbeds.size(1) != effects.size(2)) throw InputError(o.texts, "embeds to another dimension than the effects");
    const SparseCodes codes = orthogonalMatchingPursuit(referenceTextDictionary(textEmbeds, 100.0), dirs.directions, o.components);
    ensureDir(o.out);
    const auto out = [&](const char* name) { return (fs::path(o.out) / name).string(); };
    writeNpyTensor(out("directions.npy"), dirs.directions);
    writeNpyTensor(out("top_norms.npy"), dirs.topNorms);
    writeNpyTensor(out("top_images.npy"), dirs.topImages);
    writeNpyTensor(out("mean.npy"), dirs.mean);
    nlohmann::ordered_json decomposition;  // the reference's json: neuron -> [(text index, coefficient, text)], largest |coefficient| first
    std::string md = "# Neurons of layer " + std::to_string(run.value("layer", -1)) + " (" + run.value("convention", std::string()) +
                     " convention), largest centred effect first: principal direction of the top " + std::to_string(o.topK) + " images, sparse text decomposition (" +
                     std::to_string(o.components) + " texts)\n\n| neuron | largest centred norm | texts (coefficient) |\n|---|---|---|\n";
    std::vector<std::string> rows(static_cast<std::size_t>(dirs.directions.size(0)));
    for (int64_t n = 0; n < dirs.directions.size(0); ++n) {
        nlohmann::json list = nlohmann::json::array();
        std::string cell;
        const std::vector<NeuronText> top = topTexts(codes, n, texts, o.components);
        for (std::size_t j = 0; j < top.size(); ++j) {
            list.push_back({top[j].index, top[j].coefficient, top[j].text});
            if (static_cast<int>(j) < o.show) {
                char buf[64];
                std::snprintf(buf, sizeof buf, " (%+.3f)", top[j].coefficient);
                cell += (cell.empty() ? "" : "; ") + top[j].text + buf;
            }
        }
        decomposition[std::to_string(n)] = list;
        char norm[32];
        std::snprintf(norm, sizeof norm, "%.4g", dirs.topNorms[n][dirs.topNorms.size(1) - 1].item<double>());
        rows[static_cast<std::size_t>(n)] = "| " + std::to_string(n) + " | " + norm + " | " + cell + " |\n";
    }
    // neurons.md lists the neurons with the largest centred effects first.
    const at::Tensor order = dirs.topNorms.select(1, dirs.topNorms.size(1) - 1).argsort(0, true);
    for (int64_t i = 0; i < order.size(0); ++i) md += rows[static_cast<std::size_t>(order[i].item<int64_t>())];
    writeFileAtomic(out("decomposition.json"), decomposition.dump() + "\n");
    writeFileAtomic(out("neurons.md"), md);
    std::cout << o.out << "\n";
}

}  // namespace

void registerNeuronCommands(CLI::App& app, std::vector<std::function<void()>>& actions) {
    {
        auto o = std::make_shared<DescribeOptions>();
        auto* neurons = app.add_subcommand("neurons", "What a layer's neurons do, from a second-order run's effects");
        neurons->require_subcommand(1);
        auto* sub = neurons->add_subcommand("describe", "Each neuron's principal direction (compute_pcas.py) and its sparse text "
                                                        "decomposition (compute_sparse_decomposition.py, OMP)");
        addModelOptions(sub, o->model);
        sub->add_option("--effects", o->effects, "A finished second-order output folder (effects.npy, summary.json)")->required();
        sub->add_option("--texts", o->texts, "Text pool, one per line (the reference uses its 30k.txt)")->required();
        sub->add_option("--top-k", o->topK, "Images per neuron for its principal direction (the reference's top_k_pca)")->capture_default_str()->check(CLI::Range(1, 1000000));
        sub->add_option("--components", o->components, "Texts per neuron in the sparse decomposition (the reference's components)")->capture_default_str()->check(CLI::Range(1, 100000));
        sub->add_option("--show", o->show, "Texts per neuron in neurons.md")->capture_default_str()->check(CLI::Range(1, 1000));
        sub->add_option("--out", o->out, "Output folder: directions.npy, top_norms.npy, top_images.npy, mean.npy, decomposition.json, neurons.md")->required();
        sub->callback([&actions, o] { actions.push_back([o] { runDescribe(*o); }); });
    }
    auto o = std::make_shared<SecondOrderCliOptions>();
    auto* sub = app.add_subcommand("second-order",
                                   "Second-order effects of a layer's MLP neurons through every later attention head "
                                   "(second_order_lens): effects.npy [B, neurons, E], norms.npy [B, neurons], output.npy [B, E] (the model's output), "
                                   "paths.txt (with --image)");
    addModelOptions(sub, o->model);
    addInputOptions(sub, o->inputs);
    sub->add_option("--layer", o->layer, "The MLP block whose neurons are analysed (0-based; not the last block)")->required();
    sub->add_option("--out", o->out, "Output directory (a run resumes into its own output)")->required();
    sub->add_option("--convention", o->convention,
                    "reference: second_order_lens's even shares, scaled by coefficient / |output| (what its hook stores); "
                    "exact: vitscope's (each write centred, biases apart, output units)")
        ->capture_default_str();
    auto* coefficient = sub->add_option("--coefficient", o->coefficient, "The reference convention's scale (its hook's coefficient)")->capture_default_str();
    sub->callback([&actions, o, coefficient] {
        o->coefficientGiven = coefficient->count() > 0;
        actions.push_back([o] { runSecondOrder(*o); });
    });
}

}  // namespace vitscope::cli
