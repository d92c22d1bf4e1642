// vitscope-cli second-order: every neuron's second-order effect for a layer, streamed to
// OUT/effects.npy [B, neurons, E] and OUT/norms.npy [B, neurons] one batch at a time (the full
// tensor of a dataset does not fit memory: 5,000 ViT-B images x 3,072 neurons x 512 floats is 31 GB).
// The run resumes: OUT/summary.json records the settings and the images done after every batch.
#include "neuron_commands.h"

#include "analysis/cache.h"
#include "analysis/second_order.h"
#include "cli_common.h"
#include "error.h"
#include "io/file_util.h"
#include "io/npy_appender.h"

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
        save(start + count);
        job.report({start + count, n, 0, 0, {}});
    }
    std::cout << summary.dump() << "\n";
}

}  // namespace

void registerNeuronCommands(CLI::App& app, std::vector<std::function<void()>>& actions) {
    auto o = std::make_shared<SecondOrderCliOptions>();
    auto* sub = app.add_subcommand("second-order",
                                   "Second-order effects of a layer's MLP neurons through every later attention head "
                                   "(second_order_lens): effects.npy [B, neurons, E], norms.npy [B, neurons]");
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
