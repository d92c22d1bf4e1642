#include "register_commands.h"

#include "analysis/cache.h"
#include "analysis/heatmap.h"
#include "analysis/registers.h"
#include "cli_common.h"
#include "error.h"
#include "image/codec.h"
#include "image/preprocess.h"
#include "io/file_util.h"
#include "io/tensor_io.h"
#include "model/forward.h"

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <memory>

namespace fs = std::filesystem;

namespace vitscope::cli {

void addTestTimeRegisterOptions(CLI::App* sub, TestTimeRegisterOptions& o) {
    sub->add_option("--test-time-registers", o.count,
                    "Run the test-time-register model: K zero tokens appended after the patches, the register neurons' activations "
                    "moved onto them (needs --register-neurons)");
    sub->add_option("--register-neurons", o.neurons, "The register neurons, one layer.neuron per line, best first (registers find --out)");
    sub->add_option("--register-top-k", o.topK, "How many of the listed neurons to use (default: the reference's config, 10; DINOv2 50)");
    sub->add_option("--register-highest-layer", o.highestLayer,
                    "Use only neurons of blocks up to this one, -1 for all (default: the reference's config, 5; DINOv2 17)");
    sub->add_option("--register-scale", o.scale, "The registers' activation: scale x the sign-max over tokens and neurons")->capture_default_str();
    sub->add_option("--register-normal-values", o.normalValues, "The patches' activations at register neurons: zero, mean, only_outliers, same")
        ->capture_default_str();
}

int applyTestTimeRegisterOptions(Model& model, const TestTimeRegisterOptions& o) {
    if (o.count == 0) {
        if (!o.neurons.empty()) throw InputError("--register-neurons " + o.neurons, "needs --test-time-registers K");
        if (o.topK != 0 || o.highestLayer != -2 || o.scale != 1.0 || o.normalValues != "zero")
            throw InputError("--register-*", "the register options need --test-time-registers K");
        return 0;
    }
    if (o.neurons.empty()) throw InputError("--test-time-registers", "needs --register-neurons FILE (written by vitscope-cli registers find)");
    TestTimeRegisterParams p = testTimeRegisterDefaults(model);
    p.count = o.count;
    if (o.topK != 0) p.topK = o.topK;
    if (o.highestLayer != -2) p.highestLayer = o.highestLayer;
    p.scale = o.scale;
    p.normalValues = parseRegisterNormalValues(o.normalValues);
    const std::vector<RegisterNeuron> used = applyTestTimeRegisters(model, p, readRegisterNeurons(o.neurons, model));
    spdlog::info("test-time registers: {} ({} neurons of {})", p.toString(), used.size(), o.neurons);
    return o.count;
}

namespace {

// The find / norms flags, named as find_register_neurons' arguments.
struct FindFlags {
    RegisterFindParams params;
    CLI::Option* threshold = nullptr;
    CLI::Option* layer = nullptr;
};

void addFindFlags(CLI::App* sub, FindFlags& f, bool images) {
    f.threshold = sub->add_option("--register-norm-threshold", f.params.registerNormThreshold,
                                  "A token is an outlier where its norm exceeds this (default: the reference's config, 30; DINOv2 150)");
    f.layer = sub->add_option("--detect-outliers-layer", f.params.detectOutliersLayer,
                              "Block whose output's token norms are read, negative from the end (default: -1; DINOv2 -2)");
    if (!images) return;
    sub->add_option("--processed-image-cnt", f.params.processedImageCnt, "Images read (the first in sorted order)")->capture_default_str();
    sub->add_flag("--apply-sparsity-filter", f.params.applySparsityFilter, "Keep only neurons below the activation threshold at enough tokens");
    sub->add_option("--sparsity-frac-threshold", f.params.sparsityFracThreshold, "The filter's fraction of tokens")->capture_default_str();
    sub->add_option("--sparsity-activation-threshold", f.params.sparsityActivationThreshold, "The filter's activation threshold")->capture_default_str();
    sub->add_option("--batch", f.params.batch, "Images per forward")->capture_default_str();
}

// The flags given, over the reference's config for the model.
RegisterFindParams findParamsFor(const Model& model, const FindFlags& f) {
    RegisterFindParams p = f.params;
    const RegisterFindParams d = registerFindDefaults(model);
    if (f.threshold->count() == 0) p.registerNormThreshold = d.registerNormThreshold;
    if (f.layer->count() == 0) p.detectOutliersLayer = d.detectOutliersLayer;
    p.validate(model);
    return p;
}

struct FindOptions {
    ModelOptions model;
    std::string images, out;
    int limit = 0;
    FindFlags flags;
};

void runFind(const FindOptions& o) {
    const Model model = openModel(o.model);
    const RegisterFindParams p = findParamsFor(model, o.flags);
    const std::vector<std::string> paths = listImages(o.images);
    if (paths.empty()) throw InputError(o.images, "holds no image");
    spdlog::info("registers find: {}", p.toString());
    int withOutliers = 0;
    const std::vector<RegisterNeuron> ranked = findRegisterNeurons(model, paths, p, interruptibleJob("registers find"), &withOutliers);
    writeFileAtomic(o.out, formatRegisterNeurons(ranked, o.limit));
    nlohmann::ordered_json j;
    j["out"] = o.out;
    j["images"] = std::min<int64_t>(static_cast<int64_t>(paths.size()), p.processedImageCnt);
    j["images_with_outliers"] = withOutliers;
    j["register_norm_threshold"] = p.registerNormThreshold;
    j["detect_outliers_layer"] = p.detectOutliersLayer;
    nlohmann::ordered_json top = nlohmann::ordered_json::array();
    for (std::size_t i = 0; i < std::min<std::size_t>(10, ranked.size()); ++i)
        top.push_back({{"neuron", std::to_string(ranked[i].layer) + "." + std::to_string(ranked[i].neuron)}, {"score", ranked[i].score}});
    j["top"] = top;
    std::cout << j.dump() << "\n";
}

struct NormsOptions {
    ModelOptions model;
    std::string image, images, out;
    int count = 200;
    FindFlags flags;
    TestTimeRegisterOptions registers;
};

// Every block's patch-norm map over the crop, four to a row, each with its own colour scale.
cv::Mat normMapGrid(const TokenNormReport& r, const cv::Mat& crop) {
    const int L = static_cast<int>(r.norms.size(0)), columns = std::min(L, 4);
    const int scale = std::max(1, 192 / crop.cols);
    std::vector<cv::Mat> rows, row;
    for (int l = 0; l < L; ++l) {
        const Heatmap h = heatmapFromTokenScores(r.norms[l], r.prefix, r.gridH, r.gridW, crop.rows, crop.cols, r.suffix);
        row.push_back(renderOverlay(crop, h.pixels, 1.0, Colormap::Viridis, scale, "block " + std::to_string(l) + " token norms"));
        if (static_cast<int>(row.size()) == columns || l == L - 1) {
            while (static_cast<int>(row.size()) < columns) row.push_back(cv::Mat::zeros(row[0].size(), row[0].type()));
            cv::Mat joined;
            cv::hconcat(row, joined);
            rows.push_back(joined);
            row.clear();
        }
    }
    cv::Mat grid;
    cv::vconcat(rows, grid);
    return grid;
}

// Over many images: per block the max / median patch-norm ratio (mean and largest) and the share
// of images with a token above the threshold.
void runNormsSummary(const Model& model, const RegisterFindParams& p, const NormsOptions& o) {
    std::vector<std::string> paths = listImages(o.images);
    if (paths.empty()) throw InputError(o.images, "holds no image");
    if (static_cast<int>(paths.size()) > o.count) paths.resize(static_cast<std::size_t>(o.count));
    std::vector<at::Tensor> ratios, above, shares;
    for (const std::string& path : paths) {
        const TokenNormReport r = tokenNorms(model, loadAndPreprocess({path}, model.preprocess), p);
        ratios.push_back(r.maxOverMedian);
        above.push_back((r.norms > p.registerNormThreshold).any(1).to(at::kFloat));
        shares.push_back(r.clsShare);
    }
    const at::Tensor ratio = at::stack(ratios), any = at::stack(above), share = at::stack(shares);  // [I, L]
    nlohmann::ordered_json j;
    j["images"] = paths.size();
    j["register_norm_threshold"] = p.registerNormThreshold;
    j["detect_outliers_layer"] = p.detectOutliersLayer;
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    for (int64_t l = 0; l < ratio.size(1); ++l)
        layers.push_back({{"layer", l},
                          {"mean_max_over_median", ratio.select(1, l).mean().item<double>()},
                          {"largest_max_over_median", ratio.select(1, l).max().item<double>()},
                          {"images_with_token_above_threshold", any.select(1, l).mean().item<double>()},
                          {"mean_cls_attention_to_outliers", share.select(1, l).mean().item<double>()}});
    j["layers"] = layers;
    ensureDir(o.out);
    writeFileAtomic((fs::path(o.out) / "summary.json").string(), j.dump(2) + "\n");
    std::cout << j.dump() << "\n";
}

void runNorms(const NormsOptions& o) {
    Model model = openModel(o.model);
    applyTestTimeRegisterOptions(model, o.registers);
    const RegisterFindParams p = findParamsFor(model, o.flags);
    if (o.image.empty() == o.images.empty()) throw InputError("--image / --images", "give one of them");
    if (!o.images.empty()) return runNormsSummary(model, p, o);
    const cv::Mat rgb = loadImageRgb(o.image);
    const cv::Mat crop = cropForModel(rgb, model.preprocess);
    const TokenNormReport r = tokenNorms(model, preprocessImage(rgb, model.preprocess).unsqueeze(0), p);
    ensureDir(o.out);
    const int L = static_cast<int>(r.norms.size(0));
    const int64_t grid = static_cast<int64_t>(r.gridH) * r.gridW;
    writeNpyTensor((fs::path(o.out) / "norms.npy").string(), r.norms);
    writeNpyTensor((fs::path(o.out) / "norm_maps.npy").string(), r.norms.narrow(1, r.prefix, grid).reshape({L, r.gridH, r.gridW}).contiguous());
    writeImage((fs::path(o.out) / "norms.png").string(), normMapGrid(r, crop));
    nlohmann::ordered_json j;
    j["image"] = o.image;
    j["register_norm_threshold"] = p.registerNormThreshold;
    j["detect_outliers_layer"] = p.detectOutliersLayer;
    j["tokens"] = {{"prefix", r.prefix}, {"grid", {r.gridH, r.gridW}}, {"test_time_registers", r.suffix}};
    std::vector<int64_t> outliers;
    for (int64_t n = 0; n < r.outliers.size(0); ++n)
        if (r.outliers[n].item<bool>()) outliers.push_back(n);
    j["outlier_tokens"] = outliers;
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    for (int l = 0; l < L; ++l) {
        const at::Tensor patches = r.norms[l].narrow(0, r.prefix, grid);
        nlohmann::ordered_json e{{"layer", l},
                                 {"max_patch_norm", patches.max().item<double>()},
                                 {"median_patch_norm", patches.median().item<double>()},
                                 {"max_over_median", r.maxOverMedian[l].item<double>()},
                                 {"tokens_above_threshold", (r.norms[l] > p.registerNormThreshold).sum().item<int64_t>()},
                                 {"cls_attention_to_outliers", r.clsShare[l].item<double>()}};
        if (r.suffix > 0) e["register_token_norms"] = std::vector<float>(r.norms[l].data_ptr<float>() + r.norms.size(1) - r.suffix,
                                                                         r.norms[l].data_ptr<float>() + r.norms.size(1));
        layers.push_back(e);
    }
    j["layers"] = layers;
    writeFileAtomic((fs::path(o.out) / "attention.json").string(), j.dump(2) + "\n");
    std::cout << o.out << "\n";
}

}  // namespace

void registerRegisterCommands(CLI::App& app, std::vector<std::function<void()>>& actions) {
    auto* registers = app.add_subcommand("registers", "High-norm outlier tokens and register neurons (test-time registers)");
    registers->require_subcommand(1);
    {
        auto o = std::make_shared<FindOptions>();
        auto* sub = registers->add_subcommand("find", "Rank every MLP neuron by its mean |activation| at the outlier tokens "
                                                      "(find_register_neurons): one layer.neuron per line, best first");
        addModelOptions(sub, o->model);
        sub->add_option("--images", o->images, "Image folder (recursive), labelled dataset folder or list file")->required();
        sub->add_option("--out", o->out, "Output text file")->required();
        sub->add_option("--limit", o->limit, "Write only the first N neurons (0: all)")->capture_default_str();
        addFindFlags(sub, o->flags, true);
        sub->callback([&actions, o] { actions.push_back([o] { runFind(*o); }); });
    }
    {
        auto o = std::make_shared<NormsOptions>();
        auto* sub = registers->add_subcommand("norms", "Per-block token-norm maps of one image (norms.npy [L, N], norm_maps.npy [L, gh, gw], "
                                                       "norms.png) and the class token's attention to the outlier tokens (attention.json)");
        addModelOptions(sub, o->model);
        sub->add_option("--image", o->image, "Image file");
        sub->add_option("--images", o->images, "Instead of --image: a folder; writes only summary.json (per block over the images: "
                                               "max / median patch-norm ratio, share of images with a token above the threshold)");
        sub->add_option("--count", o->count, "With --images: the first N images")->capture_default_str();
        sub->add_option("--out", o->out, "Output directory")->required();
        addFindFlags(sub, o->flags, false);
        addTestTimeRegisterOptions(sub, o->registers);
        sub->callback([&actions, o] { actions.push_back([o] { runNorms(*o); }); });
    }
}

}  // namespace vitscope::cli
