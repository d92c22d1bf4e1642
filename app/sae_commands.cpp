// vitscope-cli sae attribute / sae describe (sae_commands.h).
#include "sae_commands.h"

#include "analysis/sae.h"
#include "analysis/text_embed.h"
#include "cli_common.h"
#include "error.h"
#include "io/tensor_io.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

namespace fs = std::filesystem;

namespace vitscope::cli {

namespace {

struct AttributeOptions {
    ModelOptions model;
    InputOptions inputs;
    std::string sae, out;
    bool maps = false;  // also maps.npy [B, R, N]: each row's latent split over image tokens
};

// What the batches of sae attribute give, joined at the end (rows padded to the largest count).
struct AttributeParts {
    std::vector<at::Tensor> latents, pre, attribution, active, maps;
    std::vector<std::string> components;
    int64_t rows = 0;
    double maxError = 0;
    void add(const SaeAttribution& a) {
        latents.push_back(a.latents);
        pre.push_back(a.pre);
        attribution.push_back(a.attribution);
        active.push_back(a.active);
        components = a.components;
        rows = std::max(rows, a.active.size(1));
        maxError = std::max(maxError, a.maxAbsError);
    }
};

// Batches of rows [b, r, ...] padded to R rows (-1 / zeros past each batch's own).
at::Tensor padRows(const std::vector<at::Tensor>& parts, int64_t rows, double fill) {
    std::vector<at::Tensor> padded;
    for (const at::Tensor& p : parts) {
        std::vector<int64_t> shape = p.sizes().vec();
        shape[1] = rows;
        at::Tensor t = at::full(shape, fill, p.options());
        t.narrow(1, 0, p.size(1)).copy_(p);
        padded.push_back(t);
    }
    return at::cat(padded, 0);
}

void writeLines(const std::string& path, const std::vector<std::string>& lines) {
    std::ofstream out(path);
    for (const std::string& l : lines) out << l << "\n";
    if (!out) throw IoError(path, "cannot be written");
}

void writeAttributeSummary(const std::string& path, const AttributeOptions& o, const SparseAutoencoder& sae,
                           int64_t images, int64_t rows, double maxError) {
    const nlohmann::ordered_json summary = {{"sae", o.sae},
                                            {"layout", sae.layout},
                                            {"site", sae.site()},
                                            {"hook", sae.hookName},
                                            {"d_in", sae.dIn()},
                                            {"d_sae", sae.dSae()},
                                            {"activation", saeActivationName(sae.activation)},
                                            {"k", sae.k},
                                            {"normalize", saeNormalizeName(sae.normalize)},
                                            {"model", o.model.model},
                                            {"images", images},
                                            {"rows", rows},
                                            {"max_abs_error", maxError}};
    std::ofstream out(path);
    out << summary.dump(2) << "\n";
    if (!out) throw IoError(path, "cannot be written");
}

void runAttribute(const AttributeOptions& o) {
    const SparseAutoencoder sae = loadSae(o.sae);
    const Model model = openModel(o.model);
    checkSaeFitsModel(model, sae);
    const Inputs inputs(model, o.inputs);
    ensureDir(o.out);
    AttributeParts parts;
    for (int64_t start = 0; start < inputs.count(); start += o.inputs.batch) {
        const int64_t n = std::min<int64_t>(o.inputs.batch, inputs.count() - start);
        const at::Tensor pixels = inputs.batch(start, n);
        parts.add(attributeSaeImages(model, sae, pixels));
        if (o.maps) parts.maps.push_back(saeTokenMaps(model, sae, pixels, parts.active.back()));
    }
    const fs::path out(o.out);
    const int64_t rows = parts.rows;
    const double maxError = parts.maxError;
    writeNpyTensor((out / "latents.npy").string(), at::cat(parts.latents, 0));
    writeNpyTensor((out / "preacts.npy").string(), at::cat(parts.pre, 0));
    writeNpyTensor((out / "attribution.npy").string(), padRows(parts.attribution, rows, 0.0));
    writeNpyTensor((out / "active.npy").string(), padRows(parts.active, rows, -1.0));
    if (o.maps) writeNpyTensor((out / "maps.npy").string(), padRows(parts.maps, rows, 0.0));
    writeLines((out / "components.txt").string(), parts.components);
    writeAttributeSummary((out / "summary.json").string(), o, sae, inputs.count(), rows, maxError);
    std::cout << sae.describe() << "\n"
              << inputs.count() << " images, up to " << rows
              << " active latents each; rows sum to the pre-activations within " << maxError << "\n";
}

struct DescribeOptions {
    ModelOptions model;
    std::string sae, texts, latents, out;
    int top = 5;
};

std::vector<int64_t> parseLatentList(const std::string& text) {
    std::vector<int64_t> out;
    std::stringstream in(text);
    for (std::string part; std::getline(in, part, ',');) {
        try {
            std::size_t used = 0;
            out.push_back(std::stoll(part, &used));
            if (used != part.size()) throw std::invalid_argument(part);
        } catch (const std::exception&) {
            throw InputError("--latents", "'" + text + "' is not a comma-separated list of latent indices");
        }
    }
    return out;
}

void runDescribe(const DescribeOptions& o) {
    const SparseAutoencoder sae = loadSae(o.sae);
    if (!sae.atOutput())
        throw InputError(o.sae, "names latents in CLIP space: it needs an SAE on the output, not " + sae.site());
    const std::vector<int64_t> which = parseLatentList(o.latents);
    const Model model = openModel(o.model);
    checkSaeFitsModel(model, sae);
    const std::vector<std::string> pool = readTextList(o.texts);
    const TextEncoder encoder(model);
    const std::vector<SaeLatentName> names = nameSaeLatents(sae, encoder.encode(pool), which, o.top);
    std::ofstream out(o.out);
    out << "latent\tname\tscore\tnext\n";
    for (const SaeLatentName& n : names) {
        out << n.latent << "\t" << pool[static_cast<std::size_t>(n.texts[0])] << "\t" << n.scores[0] << "\t";
        for (std::size_t i = 1; i < n.texts.size(); ++i)
            out << (i > 1 ? "; " : "") << pool[static_cast<std::size_t>(n.texts[i])] << " (" << n.scores[i] << ")";
        out << "\n";
    }
    if (!out) throw IoError(o.out, "cannot be written");
    std::cout << sae.describe() << "\n"
              << names.size() << " latents named from " << pool.size() << " texts -> " << o.out << "\n";
}

void addAttribute(CLI::App& family, std::vector<std::function<void()>>& actions) {
    auto o = std::make_shared<AttributeOptions>();
    auto* sub = family.add_subcommand("attribute",
                                      "Active latents of images, each pre-activation split exactly over the model's "
                                      "components (and the SAE's own constant)");
    sub->add_option("--sae", o->sae,
                    "SAE file or folder: vitscope .safetensors, ViT-Prisma folder, SAELens folder, MSAE .pth")
        ->required();
    addModelOptions(sub, o->model);
    addInputOptions(sub, o->inputs);
    sub->add_flag(
        "--maps", o->maps,
        "Also maps.npy [B, R, N]: each active latent's pre-activation split over image tokens (the heads' share; "
        "one more decomposition with per-token terms)");
    sub->add_option("--out", o->out,
                    "Output folder: latents.npy, preacts.npy [B, S]; attribution.npy [B, R, C], active.npy [B, R], "
                    "components.txt, summary.json")
        ->required();
    sub->callback([&actions, o] { actions.push_back([o] { runAttribute(*o); }); });
}

void addDescribe(CLI::App& family, std::vector<std::function<void()>>& actions) {
    auto o = std::make_shared<DescribeOptions>();
    auto* sub = family.add_subcommand(
        "describe", "Name an output SAE's latents by their decoder direction's nearest texts (MSAE's naming)");
    sub->add_option("--sae", o->sae, "SAE on the model's output")->required();
    addModelOptions(sub, o->model);
    sub->add_option("--texts", o->texts, "Text pool, one text per line (e.g. resources/general/descriptions.txt)")
        ->required();
    sub->add_option("--latents", o->latents, "Comma-separated latents (default: all)");
    sub->add_option("--top", o->top, "Texts listed per latent")->capture_default_str();
    sub->add_option("--out", o->out, "Output .tsv: latent, name, score, next texts")->required();
    sub->callback([&actions, o] { actions.push_back([o] { runDescribe(*o); }); });
}

}  // namespace

CLI::App* saeCommandFamily(CLI::App& app) {
    try {
        return app.get_subcommand("sae");
    } catch (const CLI::OptionNotFound&) {
        auto* family = app.add_subcommand("sae", "Sparse autoencoders on a model's activations");
        family->require_subcommand(1);
        return family;
    }
}

void registerSaeCommands(CLI::App& app, std::vector<std::function<void()>>& actions) {
    CLI::App* family = saeCommandFamily(app);
    addAttribute(*family, actions);
    addDescribe(*family, actions);
}

}  // namespace vitscope::cli
