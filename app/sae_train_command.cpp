#include "sae_train_command.h"

#include "analysis/cache.h"
#include "analysis/sae.h"
#include "analysis/sae_train.h"
#include "analysis/sae_train_purity.h"
#include "cli_common.h"
#include "error.h"
#include "io/file_util.h"
#include "model/loader.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

namespace fs = std::filesystem;

namespace vitscope::cli {

namespace {

const char* const kDefaultColumns = "shape,color,texture,position,size,background";

struct PurityOptions {
    std::string labels, columns = kDefaultColumns, report;
    double threshold = 0.9;
    int64_t minActive = 1;
};

struct TrainOptions {
    std::string cache, at = "output", kind = "topk", nesting = "k", groups;
    ModelOptions model;
    SaeTrainParams params;
    bool noResume = false;
    PurityOptions purity;
};

struct PurityCliOptions {
    std::string sae, cache;
    ModelOptions model;
    PurityOptions purity;
};

// Core's field names as the flags that set them, so an error names what the user typed.
[[noreturn]] void rethrowAsFlag(const InputError& e) {
    static const std::map<std::string, std::string> flags = {{"site", "--at"},
                                                             {"k", "--k"},
                                                             {"width", "--width"},
                                                             {"epochs", "--epochs"},
                                                             {"batch", "--batch"},
                                                             {"lr", "--lr"},
                                                             {"normalize", "--normalize"},
                                                             {"groups", "--groups"},
                                                             {"weighting", "--weighting"},
                                                             {"out", "--out"}};
    const auto it = flags.find(e.where());
    if (it == flags.end()) throw e;
    const std::string what = e.what();
    throw InputError(it->second, what.substr(e.where().size() + 2));
}

std::vector<int> parseIntList(const std::string& text, const std::string& flag) {
    std::vector<int> out;
    std::stringstream s(text);
    for (std::string item; std::getline(s, item, ',');) {
        if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos || item.size() > 9)
            throw InputError(flag, "'" + text + "' is not a comma-separated list of positive integers");
        out.push_back(std::stoi(item));
    }
    return out;
}

void fillParams(TrainOptions& o) {
    SaeTrainParams& p = o.params;
    p.site = o.at;
    if (o.kind == "topk")
        p.kind = SaeKind::TopK;
    else if (o.kind == "matryoshka")
        p.kind = SaeKind::Matryoshka;
    else
        throw InputError("--kind", "'" + o.kind + "' is neither topk nor matryoshka");
    if (o.nesting == "k")
        p.nesting = SaeNesting::K;
    else if (o.nesting == "prefix")
        p.nesting = SaeNesting::Prefix;
    else
        throw InputError("--nesting", "'" + o.nesting + "' is neither k nor prefix");
    if (!o.groups.empty()) p.groups = parseIntList(o.groups, "--groups");
    p.resume = !o.noResume;
    try {
        p.validate();
    } catch (const InputError& e) {
        rethrowAsFlag(e);
    }
}

// labels.csv given, or the one beside the images' folder (what `shapes generate` writes).
std::string findLabels(const PurityOptions& o, const DatasetCache& cache) {
    if (!o.labels.empty()) return o.labels;
    if (cache.paths().empty()) return {};
    const fs::path guess = fs::path(cache.paths().front()).parent_path().parent_path() / "labels.csv";
    std::error_code ec;
    return fs::exists(guess, ec) ? guess.string() : std::string();
}

std::vector<std::string> splitColumns(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream s(text);
    for (std::string item; std::getline(s, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

nlohmann::ordered_json purityJson(const SaePurity& r) {
    nlohmann::ordered_json j{{"threshold", r.threshold},
                             {"min_active", r.minActive},
                             {"latents", r.latents},
                             {"alive", r.alive},
                             {"dead", r.dead}};
    for (std::size_t a = 0; a < r.attributes.size(); ++a)
        j["attributes"][r.attributes[a]] = {{"pure", r.pure[a]},
                                            {"values", r.values[a]},
                                            {"values_with_a_pure_latent", r.covered[a]},
                                            {"majority_share", r.majority[a]}};
    nlohmann::ordered_json latents = nlohmann::ordered_json::array();
    for (int64_t w = 0; w < r.latents; ++w) {
        nlohmann::ordered_json l{{"latent", w}, {"active", r.activeCount[w].item<int64_t>()}};
        for (std::size_t a = 0; a < r.attributes.size(); ++a)
            l[r.attributes[a]] = {{"value", r.bestValue[static_cast<std::size_t>(w)][a]},
                                  {"precision", r.precision[w][static_cast<int64_t>(a)].item<double>()}};
        latents.push_back(l);
    }
    j["per_latent"] = latents;
    return j;
}

// Encodes the rows with the SAE and prints (and writes, with --report) the purity figures.
void reportPurity(const PurityOptions& o, const DatasetCache& cache, const at::Tensor& rows,
                  const SparseAutoencoder& sae, nlohmann::ordered_json extra) {
    const std::string labels = findLabels(o, cache);
    if (labels.empty()) {
        std::cout << "purity: no labels.csv beside the cached images (give --labels)\n";
        return;
    }
    const at::Tensor latents = encodeSae(sae, rows).latents;
    const SaePurity r =
        saePurity(latents, rowAttributes(labels, cache.paths(), splitColumns(o.columns)), o.threshold, o.minActive);
    const at::Tensor recon = decodeSae(sae, latents, rows);
    const double fvu = (rows - recon).pow(2).sum().item<double>() / (rows - rows.mean(0)).pow(2).sum().item<double>();
    std::cout << std::fixed << std::setprecision(4) << "reconstruction: variance explained " << 1.0 - fvu << " over "
              << rows.size(0) << " rows\nlatents: " << r.latents << ", alive (active on >= " << r.minActive << " rows) "
              << r.alive << ", dead " << r.dead << "\npurity >= " << std::setprecision(2) << r.threshold
              << " (alive latents):";
    for (std::size_t a = 0; a < r.attributes.size(); ++a) std::cout << " " << r.attributes[a] << " " << r.pure[a];
    std::cout << "\nvalues with a pure latent:";
    for (std::size_t a = 0; a < r.attributes.size(); ++a)
        std::cout << " " << r.attributes[a] << " " << r.covered[a] << "/" << r.values[a] << " (majority "
                  << r.majority[a] << ")";
    std::cout << "\n";
    if (o.report.empty()) return;
    nlohmann::ordered_json j = std::move(extra);
    j["labels"] = labels;
    j["variance_explained"] = 1.0 - fvu;
    j["purity"] = purityJson(r);
    writeFileAtomic(o.report, j.dump(1) + "\n");
}

std::unique_ptr<Model> modelFor(const std::string& site, ModelOptions m, const DatasetCache& cache) {
    if (site == "output") return nullptr;
    if (m.model.empty()) m.model = cache.modelSpec();
    if (m.model.empty())
        throw InputError("--model", "site " + site + " needs the model (the cache does not record one)");
    return std::make_unique<Model>(openModel(m));
}

void runTrain(TrainOptions o) {
    fillParams(o);
    const DatasetCache cache(o.cache);
    const std::unique_ptr<Model> model = modelFor(o.params.site, o.model, cache);
    o.params.model = o.model.model.empty() ? cache.modelSpec() : o.model.model;  // recorded in the file
    const at::Tensor rows =
        saeActivations(cache, o.params.site, model.get(), interruptibleJob("sae train: activations"));
    std::cerr << "sae train: " << rows.size(0) << " rows of " << rows.size(1) << " at " << o.params.site << "; "
              << o.params.toString() << "\n";
    SaeTrainResult r;
    try {
        r = trainSae(rows, o.params, interruptibleJob("sae train"));
    } catch (const JobCancelled&) {
        std::cerr << "sae train: stopped; " << o.params.out
                  << ".ckpt holds the finished steps (the same command resumes)\n";
        throw;
    }
    std::cout << o.params.out << "\n"
              << "steps " << r.steps
              << (r.resumedAt ? " (resumed at " + std::to_string(r.resumedAt) + ")" : std::string())
              << ", last batch loss " << r.finalLoss << ", " << r.seconds << " s\n";
    reportPurity(o.purity, cache, rows, loadSae(o.params.out),
                 {{"sae", o.params.out}, {"cache", o.cache}, {"training", o.params.toString()}});
}

// Any layout loadSae reads: its site's rows from the cache (layer:L computed with the model).
void runPurity(const PurityCliOptions& o) {
    const DatasetCache cache(o.cache);
    const SparseAutoencoder sae = loadSae(o.sae);
    const std::unique_ptr<Model> model = modelFor(sae.site(), o.model, cache);
    if (model) checkSaeFitsModel(*model, sae);
    const at::Tensor rows = saeActivations(cache, sae.site(), model.get(), interruptibleJob("sae purity: activations"));
    if (rows.size(1) != sae.dIn())
        throw InputError(o.sae, "reads " + std::to_string(sae.dIn()) + "-wide vectors, but the cache's " + sae.site() +
                                    " rows are " + std::to_string(rows.size(1)) + " wide");
    std::cerr << "sae purity: " << sae.describe() << "\n";
    reportPurity(o.purity, cache, rows, sae, {{"sae", o.sae}, {"cache", o.cache}, {"layout", sae.layout}});
}

void addPurityFlags(CLI::App* sub, PurityOptions& o) {
    sub->add_option("--labels", o.labels,
                    "labels.csv of the cached images (default: the one beside their images/ folder)");
    sub->add_option("--columns", o.columns, "Attributes (labels.csv columns) to measure purity for")
        ->capture_default_str();
    sub->add_option("--threshold", o.threshold,
                    "A latent is pure for an attribute when its best value's precision reaches this")
        ->capture_default_str();
    sub->add_option("--min-active", o.minActive, "Latents active on fewer rows are not counted as alive")
        ->capture_default_str();
    sub->add_option("--report", o.report, "Write the figures and every latent's best values as JSON");
}

void addTrainFlags(CLI::App* sub, TrainOptions& o) {
    SaeTrainParams& p = o.params;
    sub->add_option("--cache", o.cache, "Dataset cache (vitscope-cli cache build)")->required();
    sub->add_option("--at", o.at,
                    "Site: output (the image embedding before L2 normalisation) or layer:L (residual after block L, "
                    "class token)")
        ->capture_default_str();
    sub->add_option("--kind", o.kind, "topk (Gao et al. 2024) or matryoshka (MSAE)")->capture_default_str();
    sub->add_option("--k", p.k, "TopK's k (matryoshka: the first nested k)")->capture_default_str();
    sub->add_option("--width", p.width, "Latents (d_sae)")->capture_default_str();
    sub->add_option("--out", p.out, "The SAE file (.safetensors); OUT.ckpt holds the checkpoint")->required();
    sub->add_option("--epochs", p.epochs, "Passes over the rows")->capture_default_str();
    sub->add_option("--batch", p.batch, "Rows per step")->capture_default_str();
    sub->add_option("--lr", p.lr, "Learning rate")->capture_default_str();
    sub->add_option("--seed", p.seed, "Seed of the initialisation and the batch order")->capture_default_str();
    sub->add_option("--normalize", p.normalize, "none or layer_norm (per vector, as ViT-Prisma)")
        ->capture_default_str();
    sub->add_option("--aux-k", p.auxK, "topk: AuxK's k (clipped to the width; 0: no AuxK loss)")->capture_default_str();
    sub->add_option("--aux-coef", p.auxCoef, "topk: AuxK loss weight")->capture_default_str();
    sub->add_option("--dead-tokens", p.deadTokens, "topk: a latent is dead after this many rows without firing")
        ->capture_default_str();
    sub->add_option("--nesting", o.nesting, "matryoshka: k (MSAE's nested k) or prefix (nested dictionary prefixes)")
        ->capture_default_str();
    sub->add_option("--groups", o.groups, "matryoshka: the levels, ascending (default: k, 2k, ... up to the width)");
    sub->add_option("--weighting", p.weighting, "matryoshka: UW (uniform) or RW (reversed 1..n)")
        ->capture_default_str();
    sub->add_option("--clip-grad", p.clipGrad, "matryoshka: gradient norm clip (0: none)")->capture_default_str();
    sub->add_option("--checkpoint-every", p.checkpointEvery, "Steps between checkpoints (0: only when interrupted)")
        ->capture_default_str();
    sub->add_flag("--no-resume", o.noResume, "Start over even when OUT.ckpt exists");
}

}  // namespace

void registerSaeTrainCommands(CLI::App& app, std::vector<std::function<void()>>& actions) {
    CLI::App* sae = nullptr;
    try {
        sae = app.get_subcommand("sae");
    } catch (const CLI::OptionNotFound&) {
        sae = app.add_subcommand("sae", "Sparse autoencoders on a dataset cache");
        sae->require_subcommand(1);
    }
    {
        auto o = std::make_shared<TrainOptions>();
        auto* sub =
            sae->add_subcommand("train",
                                "Train a TopK or Matryoshka SAE on a cache's activations (a vitscope SAE file); "
                                "prints its reconstruction and ground-truth purity when labels.csv is found");
        addTrainFlags(sub, *o);
        addModelOptions(sub, o->model, false);
        addPurityFlags(sub, o->purity);
        sub->callback([&actions, o] { actions.push_back([o] { runTrain(*o); }); });
    }
    {
        auto o = std::make_shared<PurityCliOptions>();
        auto* sub =
            sae->add_subcommand("purity", "Ground-truth purity of an SAE's latents over a cache with labels.csv");
        sub->add_option("--sae", o->sae, "SAE file or folder (vitscope, ViT-Prisma, SAELens, MSAE; as sae attribute)")
            ->required();
        sub->add_option("--cache", o->cache, "Dataset cache")->required();
        addModelOptions(sub, o->model, false);
        addPurityFlags(sub, o->purity);
        sub->callback([&actions, o] { actions.push_back([o] { runPurity(*o); }); });
    }
}

}  // namespace vitscope::cli
