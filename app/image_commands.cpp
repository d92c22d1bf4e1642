// vitscope-cli commands that run the model on images: heatmap, evaluate-heatmaps, align.
#include "image_commands.h"

#include "benchmark_progress.h"
#include "heatmap_options.h"
#include "register_commands.h"

#include "analysis/align_fit.h"
#include "analysis/alignment.h"
#include "analysis/cache.h"
#include "analysis/cache_shards.h"
#include "analysis/heatmap.h"
#include "analysis/labels.h"
#include "analysis/ledger.h"
#include "analysis/localisation.h"
#include "analysis/retrieval.h"
#include "analysis/session.h"
#include "cli_common.h"
#include "error.h"
#include "image/codec.h"
#include "image/preprocess.h"
#include "io/file_util.h"
#include "io/imagenet_seg.h"
#include "resources.h"
#include "io/tensor_io.h"
#include "model/forward.h"
#include "seg_methods.h"
#include "waterbirds_command.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <filesystem>
#include <optional>
#include <iostream>
#include <sstream>

namespace fs = std::filesystem;

namespace vitscope::cli {

namespace {

// ---- heatmap / evaluate-heatmaps ----

struct HeatmapOptions {
    HeatmapModelOptions model;
    std::string image, text, method = "decomposition", heads, out, npy, colormap = "viridis";
    std::string pixels, textEmbedding;  // preprocessed pixels / a text embedding as .npy, for towers without a text side
    double opacity = 0.55;
    int scale = 0;
    int64_t classIndex = -1;  // gradient methods on a classifier: its class logit as the score
    TestTimeRegisterOptions registers;
};

// Preprocessed pixels [3, S, S] back to 8-bit RGB with the model's mean and std (the overlay's image).
cv::Mat pixelsToRgb(const at::Tensor& pixels, const ImagePreprocess& prep) {
    const at::Tensor mean = at::tensor({prep.mean[0], prep.mean[1], prep.mean[2]}).view({3, 1, 1});
    const at::Tensor std = at::tensor({prep.std[0], prep.std[1], prep.std[2]}).view({3, 1, 1});
    const at::Tensor rgb = (pixels.to(at::kCPU, at::kFloat) * std + mean).clamp(0, 1).mul(255).round().to(at::kByte).permute({1, 2, 0}).contiguous();
    return cv::Mat(static_cast<int>(rgb.size(0)), static_cast<int>(rgb.size(1)), CV_8UC3, rgb.data_ptr()).clone();
}

// Options a method does not use are refused, never ignored (one line naming the option).
void checkOptionsForMethod(const HeatmapOptions& o, HeatmapMethod method) {
    const std::string name = heatmapMethodName(method);
    const bool gradient = isGradientMethod(method);
    if (o.classIndex >= 0 && !gradient)
        throw InputError("--class", "is the score of the gradient methods (gradcam, chefer, legrad), not of " + name);
    if (o.image.empty() == o.pixels.empty()) throw InputError("--image / --pixels", "give one of them");
    if (!o.text.empty() + !o.textEmbedding.empty() + (o.classIndex >= 0) > 1)
        throw InputError("--text / --text-embedding / --class", "give at most one of them");
    if (o.classIndex < 0 && o.text.empty() && o.textEmbedding.empty() && method != HeatmapMethod::Attention && method != HeatmapMethod::Rollout)
        throw InputError("--text", std::string("is required by ") + name + " (or --text-embedding FILE" + (gradient ? ", or --class N on a classifier)" : ")"));
    checkModelOptionsFor(o.model, {method});
    if (method == HeatmapMethod::GradCam && !o.model.labels.empty() && !o.model.referenceTexts.empty())
        throw InputError("--reference-texts " + o.model.referenceTexts, "and --labels both give Grad-CAM a label list; give one");
    if (method == HeatmapMethod::GradCam && o.classIndex >= 0 && (!o.model.labels.empty() || !o.model.referenceTexts.empty()))
        throw InputError("--class", "scores a class logit; Grad-CAM's label list (--labels / --reference-texts) is for a text");
}

void runHeatmap(const HeatmapOptions& o) {
    const HeatmapMethod method = parseHeatmapMethod(o.method);
    checkOptionsForMethod(o, method);
    const HeatmapSession c = openHeatmapContext(o.model, !o.text.empty());
    applyTestTimeRegisterOptions(*c.model, o.registers);
    const Colormap cmap = parseColormap(o.colormap);
    if (o.opacity < 0 || o.opacity > 1) throw InputError("--opacity", "must be within 0..1");
    cv::Mat crop;
    at::Tensor pixels;
    if (!o.image.empty()) {
        const cv::Mat rgb = loadImageRgb(o.image);
        crop = cropForModel(rgb, c.model->preprocess);
        pixels = preprocessImage(rgb, c.model->preprocess).unsqueeze(0);
    } else {
        pixels = readNpyTensor(o.pixels).to(at::kFloat);
        if (pixels.dim() == 3) pixels = pixels.unsqueeze(0);
        if (pixels.dim() != 4 || pixels.size(0) != 1 || pixels.size(1) != 3)
            throw InputError(o.pixels, "expected preprocessed pixels [1, 3, S, S] or [3, S, S], got " + std::to_string(pixels.dim()) + "-D");
        crop = pixelsToRgb(pixels[0], c.model->preprocess);
    }
    at::Tensor text = o.text.empty() ? at::Tensor() : c.textsFor(method, {o.text})[0];
    if (!o.textEmbedding.empty()) {
        text = readNpyTensor(o.textEmbedding).to(at::kFloat).reshape({-1});
        const int64_t e = c.aligner ? c.aligner->weight.size(1) : c.model->vision.embedDim();
        if (text.size(0) != e || text.norm().item<double>() == 0)
            throw InputError(o.textEmbedding, "expected one non-zero " + std::to_string(e) + "-dimensional text embedding, got " +
                                                  std::to_string(text.size(0)) + " values");
        text = text / text.norm();
    }
    HeatmapParams params = c.params(method, parseHeadPairs(o.heads, c.model->vision.layers(), c.model->vision.heads(), c.model->vision.pool.heads),
                                    o.model.surgeryBlocks);
    params.classIndex = o.classIndex;
    const Heatmap map = computeHeatmap(*c.model, pixels, text, params, c.aligner ? &*c.aligner : nullptr);
    const int scale = o.scale > 0 ? o.scale : std::max(1, 384 / crop.cols);
    const std::string subject = o.classIndex >= 0 ? "class " + std::to_string(o.classIndex) : !o.textEmbedding.empty() ? o.textEmbedding : o.text;
    const std::string title = std::string(heatmapMethodName(method)) + ": " + subject + (o.heads.empty() ? "" : " [" + o.heads + "]");
    const cv::Mat png = renderOverlay(crop, map.pixels, o.opacity, cmap, scale, title);
    writeImage(o.out, png);
    if (!o.npy.empty()) writeNpyTensor(o.npy, map.patches);
    if (map.registerScores.defined()) {
        // The registers' own scores stay out of the map; say where the map's mass would have gone.
        const double registers = map.registerScores.abs().sum().item<double>(), patches = map.patches.abs().sum().item<double>();
        const double share = registers / std::max(registers + patches, 1e-30);
        spdlog::log(share > 0.5 ? spdlog::level::warn : spdlog::level::info,
                    "test-time register tokens: {:.1f}% of the |score| mass, kept out of the map", 100.0 * share);
    }
    std::cout << o.out << "\n";
}

struct EvaluateHeatmapsOptions {
    HeatmapModelOptions model;
    std::string dataset, methods = "all", prompt = "a {color} {shape}", heads, out;
    int64_t count = 0;
    bool noClassMean = false;  // score the prompt's own map, not minus the mean map of all class prompts
    std::string target = "object";  // or "distractor": prompt for the distractor, scored on its mask
};

// A labels.csv row as seen by the distractor target: its distractor_* cells stand for the plain
// columns (so "a {color} object" names the distractor's colour) and its mask is distractor_mask.
std::map<std::string, std::string> distractorView(const std::map<std::string, std::string>& row) {
    std::map<std::string, std::string> out = row;
    for (const auto& [key, value] : row)
        if (key.rfind("distractor_", 0) == 0) out[key.substr(11)] = value;
    return out;
}

std::string fillPrompt(const std::string& prompt, const std::map<std::string, std::string>& row, const std::string& where) {
    std::string out = prompt;
    std::size_t pos = 0;
    while ((pos = out.find('{', pos)) != std::string::npos) {
        const std::size_t end = out.find('}', pos);
        if (end == std::string::npos) throw InputError("--prompt", "unbalanced {");
        const std::string key = out.substr(pos + 1, end - pos - 1);
        const auto it = row.find(key);
        if (it == row.end()) throw InputError(where, "has no column '" + key + "' for the prompt");
        out.replace(pos, end - pos + 1, it->second);
        pos += it->second.size();
    }
    return out;
}

void runEvaluateHeatmaps(const EvaluateHeatmapsOptions& o) {
    const HeatmapSession c = openHeatmapContext(o.model);
    const std::vector<HeatmapMethod> methods = parseMethodList(o.methods, *c.model);
    checkModelOptionsFor(o.model, methods);
    const std::string labelsPath = (fs::path(o.dataset) / "labels.csv").string();
    std::vector<std::map<std::string, std::string>> rows = readCsvTable(labelsPath);
    if (o.count > 0 && static_cast<int64_t>(rows.size()) > o.count) rows.resize(static_cast<std::size_t>(o.count));
    if (o.target != "object" && o.target != "distractor") throw InputError("--target " + o.target, "must be object or distractor");
    if (o.target == "distractor") {
        // Text grounding: the scenes with a distractor, each prompted for the distractor.
        std::vector<std::map<std::string, std::string>> kept;
        for (const auto& row : rows) {
            if (!row.count("distractor_mask"))
                throw FormatError(labelsPath, "has no distractor_mask column (regenerate the dataset with shapes generate)");
            if (!row.at("distractor_mask").empty()) kept.push_back(distractorView(row));
        }
        rows = std::move(kept);
        std::printf("target: the distractor (%zu scenes have one), prompted by its own attributes, scored on its mask\n", rows.size());
    }
    if (rows.empty()) throw InputError(labelsPath, "lists no images");
    const auto heads = parseHeadPairs(o.heads, c.model->vision.layers(), c.model->vision.heads(), c.model->vision.pool.heads);
    // As the reference (compute_segmentations.py): a text-conditioned map is the prompt's map
    // minus the mean map over every class prompt (here: every distinct prompt of the dataset).
    std::vector<std::string> prompts;
    for (const auto& row : rows) prompts.push_back(fillPrompt(o.prompt, row, labelsPath));
    std::sort(prompts.begin(), prompts.end());
    prompts.erase(std::unique(prompts.begin(), prompts.end()), prompts.end());
    // Every distinct prompt, embedded once per kind of text (Surgery's ensemble, or plain).
    std::map<bool, at::Tensor> embedded;
    auto promptTable = [&](HeatmapMethod m) -> const at::Tensor& {
        const bool surgery = m == HeatmapMethod::Surgery && c.surgeryEnsemble;
        if (!embedded.count(surgery)) embedded[surgery] = c.textsFor(m, prompts);
        return embedded[surgery];
    };
    const bool classMean = !o.noClassMean && !c.reference.defined();
    if (classMean) std::printf("maps: prompt minus the mean over %zu class prompts (--no-class-mean: the prompt's own map)\n", prompts.size());
    if (c.surgeryEnsemble) std::printf("CLIP Surgery texts through its 85-template prompt ensemble\n");
    for (HeatmapMethod m : methods) {
        if (m == HeatmapMethod::GradCam)
            std::printf("gradcam: target %s\n", c.labels.defined() ? "the prompt's probability over --labels"
                                                : c.gradcamTarget == GradCamTarget::Logit ? "the prompt's logit"
                                                : c.reference.defined() ? "the prompt's probability over --reference-texts"
                                                : classMean ? "the prompt's probability over the class prompts"
                                                            : "the prompt's logit (no label list)");
        if (m == HeatmapMethod::Chefer || m == HeatmapMethod::LeGrad)
            std::printf("%s: the prompt's own map (its reference subtracts no class mean and uses no text list)\n", heatmapMethodName(m));
    }
    if (c.model->preprocess.squash) std::printf("images squashed to the input size (no center crop)\n");
    std::vector<LocalisationMeter> meters(methods.size());
    const JobContext job = interruptibleJob("evaluate");
    for (std::size_t i = 0; i < rows.size(); ++i) {
        if (job.cancelled()) throw JobCancelled();
        const auto& row = rows[i];
        if (!row.count("file") || !row.count("mask")) throw FormatError(labelsPath, "needs the columns file and mask");
        const std::string image = (fs::path(o.dataset) / row.at("file")).string();
        const std::string maskPath = (fs::path(o.dataset) / row.at("mask")).string();
        const cv::Mat rgb = loadImageRgb(image);
        const at::Tensor pixels = preprocessImage(rgb, c.model->preprocess).unsqueeze(0);
        cv::Mat maskCrop = cropForModel(loadImageRgb(maskPath), c.model->preprocess);
        cv::cvtColor(maskCrop, maskCrop, cv::COLOR_RGB2GRAY);
        const at::Tensor mask = at::from_blob(maskCrop.data, {maskCrop.rows, maskCrop.cols}, at::kByte).gt(127).clone();
        const std::string prompt = fillPrompt(o.prompt, row, labelsPath);
        const int64_t promptIndex = std::lower_bound(prompts.begin(), prompts.end(), prompt) - prompts.begin();
        for (std::size_t m = 0; m < methods.size(); ++m) {
            HeatmapParams params = c.params(methods[m], heads, o.model.surgeryBlocks);
            const at::Tensor& table = promptTable(methods[m]);
            const at::Tensor text = table[promptIndex];
            if (classMean) params.referenceTexts = table;
            const Heatmap map = computeHeatmap(*c.model, pixels, text, params, c.aligner ? &*c.aligner : nullptr);
            meters[m].add(map.pixels, mask);
        }
        job.report({static_cast<int64_t>(i + 1), static_cast<int64_t>(rows.size()), 0, 0, "evaluate"});
    }
    std::string csv = "method,images,pixel_accuracy,miou,map,pointing_game\n";
    std::printf("%-14s %7s %9s %7s %7s %9s\n", "method", "images", "pixacc", "mIoU", "mAP", "pointing");
    for (std::size_t m = 0; m < methods.size(); ++m) {
        const LocalisationMeter& r = meters[m];
        std::printf("%-14s %7lld %8.2f%% %6.2f%% %6.2f%% %8.2f%%\n", heatmapMethodName(methods[m]), static_cast<long long>(r.images()),
                    100 * r.pixelAccuracy(), 100 * r.meanIoU(), 100 * r.meanAveragePrecision(), 100 * r.pointingGame());
        std::ostringstream line;
        line << heatmapMethodName(methods[m]) << "," << r.images() << "," << r.pixelAccuracy() << "," << r.meanIoU() << ","
             << r.meanAveragePrecision() << "," << r.pointingGame() << "\n";
        csv += line.str();
    }
    if (!o.out.empty()) {
        writeFileAtomic(o.out, csv);
        std::cout << o.out << "\n";
    }
}

// ---- evaluate imagenet-seg ----

// The named protocols of the ImageNet segmentation benchmark (the reference code defines each):
// - textspan: compute_segmentations.py (TextSpan): the image through the model's own
//   preprocessing (centre crop), the mask squashed to the input size (nearest, PIL's rule); the
//   class is the model's top-1 over the class prompts and its map is minus the mean over every
//   class's map; negatives clipped, min-max, foreground above the mean.
// - chefer: baselines/ViT/imagenet_seg_eval.py (Chefer et al.): image and mask both squashed to
//   the input size; the predicted class's own map; min-max only.
// - second-order-lens: compute_segmentation.py (second_order_lens): the model's own preprocessing,
//   the mask squashed (nearest); the class is the model's top-1 and its own map is scored; min-max
//   only (its clip is commented out), foreground above 0.5 (not the mean).
struct SegProtocol {
    std::string name;
    bool cropImage = true, classMean = true, clipNegatives = true;
    ForegroundThreshold threshold = ForegroundThreshold::Mean;
};

SegProtocol segProtocol(const std::string& name) {
    if (name == "textspan") return {name, true, true, true, ForegroundThreshold::Mean};
    if (name == "chefer") return {name, false, false, false, ForegroundThreshold::Mean};
    if (name == "second-order-lens") return {name, true, false, false, ForegroundThreshold::Half};
    throw InputError("--protocol " + name, "must be textspan, chefer or second-order-lens (LeGrad publishes no evaluation script of its own)");
}

struct EvaluateSegOptions {
    HeatmapModelOptions model;
    std::string data, protocol = "textspan", methods = "all", classes, templates, out;
    std::string shard;  // "I/N"; empty: from a Slurm job array's environment, if any
    std::string maps;   // folder for each image's map per method (METHOD/INDEX.npy); empty: none
    std::vector<std::string> describe;  // the neurons method's `neurons describe` outputs
    int neuronCount = 200;              // the neurons method's K (the reference's top_neurons)
    int64_t limit = 0;
};

// The image in the space the class prompts live in: the model's output, or its terms through
// the aligner for a non-CLIP model. [E]
at::Tensor imageInTextSpace(const HeatmapSession& c, const at::Tensor& pixels) {
    at::NoGradGuard noGrad;
    if (!c.aligner) return encodeImages(*c.model, pixels.to(c.model->vision.device())).output.to(at::kCPU, at::kFloat)[0];
    return decompositionQuery(decomposeImages(*c.model, pixels.to(c.model->vision.device())), {}, &*c.aligner);
}

// What a run depends on: a finished image of a run with the same key is not computed again.
nlohmann::ordered_json segRunKey(const EvaluateSegOptions& o, const SegProtocol& p, const std::vector<SegMethod>& methods,
                                 const std::string& modelHash, const std::string& dataHash, const std::vector<std::string>& classes,
                                 const std::string& templatesUsed, const NeuronSegMethod* neurons) {
    nlohmann::ordered_json names = nlohmann::ordered_json::array();
    for (const SegMethod& m : methods) names.push_back(m.name);
    std::string joined;
    for (const std::string& c : classes) joined += c + "\n";
    nlohmann::ordered_json key{{"benchmark", "imagenet-seg"},
                               {"protocol", p.name},
                               {"methods", names},
                               {"model_sha256", modelHash},
                               {"data_sha256", dataHash},
                               {"classes_sha256", sha256Hex(joined)},
                               {"templates", templatesUsed},
                               {"aligner", o.model.aligner},
                               {"chefer_start_layer", o.model.cheferStartLayer},
                               {"gradcam_target", o.model.gradcamTarget},
                               {"legrad_layers", o.model.legradLayers},
                               {"surgery_blocks", o.model.surgeryBlocks},
                               {"input_size", o.model.inputSize}};
    if (neurons) {  // (absent otherwise: the runs from before the neurons method still resume)
        key["neuron_describe"] = neurons->described().key;
        key["neuron_count"] = neurons->count();
    }
    return key;
}

nlohmann::json sampleJson(const LocalisationSample& x) {
    return nlohmann::json::array({x.correct, x.pixels, x.interFg, x.unionFg, x.interBg, x.unionBg, x.ap, x.hit});
}

LocalisationSample sampleFrom(const nlohmann::json& j) {
    LocalisationSample x;
    double* f[] = {&x.correct, &x.pixels, &x.interFg, &x.unionFg, &x.interBg, &x.unionBg, &x.ap, &x.hit};
    for (std::size_t i = 0; i < 8; ++i) *f[i] = j.at(i).get<double>();
    return x;
}

void writeSegTables(const std::string& out, const SegProtocol& p, const std::vector<SegMethod>& methods,
                    const std::vector<LocalisationMeter>& meters) {
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    std::string md = "| method | images | pixel accuracy (%) | mIoU | mAP | pointing game |\n|---|---|---|---|---|---|\n";
    std::string csv = "method,images,pixel_accuracy,miou,map,pointing_game\n";
    char buf[256];
    for (std::size_t m = 0; m < methods.size(); ++m) {
        const LocalisationMeter& r = meters[m];
        rows.push_back({{"method", methods[m].name},
                        {"images", r.images()},
                        {"pixel_accuracy", 100 * r.pixelAccuracy()},
                        {"miou", r.meanIoU()},
                        {"map", r.meanAveragePrecision()},
                        {"pointing_game", r.pointingGame()}});
        std::snprintf(buf, sizeof buf, "| %s | %lld | %.2f | %.4f | %.4f | %.4f |\n", methods[m].name.c_str(),
                      static_cast<long long>(r.images()), 100 * r.pixelAccuracy(), r.meanIoU(), r.meanAveragePrecision(), r.pointingGame());
        md += buf;
        std::snprintf(buf, sizeof buf, "%s,%lld,%.6f,%.6f,%.6f,%.6f\n", methods[m].name.c_str(), static_cast<long long>(r.images()),
                      100 * r.pixelAccuracy(), r.meanIoU(), r.meanAveragePrecision(), r.pointingGame());
        csv += buf;
    }
    const nlohmann::ordered_json results{{"benchmark", "imagenet-seg"}, {"protocol", p.name}, {"rows", rows}};
    writeFileAtomic(out + "/results.json", results.dump(2) + "\n");
    writeFileAtomic(out + "/results.md", "ImageNet segmentation, protocol " + p.name + " (pixel accuracy in percent; mIoU and mAP over "
                                          "background and foreground as fractions)\n\n" + md);
    writeFileAtomic(out + "/results.csv", csv);
}

// One image's map per method (the protocol's normalisation and threshold are the meter's).
struct SegImageContext {
    const HeatmapSession& c;
    const EvaluateSegOptions& o;
    const SegProtocol& protocol;
    const std::vector<SegMethod>& methods;
    const std::function<at::Tensor(HeatmapMethod)>& tableFor;
    const NeuronSegMethod* neurons;
};

Heatmap segMethodMap(const SegImageContext& x, std::size_t m, const at::Tensor& pixels, int64_t chosen) {
    const Model& model = *x.c.model;
    if (!x.methods[m].heatmap) return x.neurons->map(model, pixels.to(model.vision.device()), chosen, x.protocol.classMean);
    const HeatmapMethod method = *x.methods[m].heatmap;
    HeatmapParams params = x.c.params(method, {}, x.o.model.surgeryBlocks);
    const at::Tensor t = x.tableFor(method);
    if (x.protocol.classMean) params.referenceTexts = t;
    return computeHeatmap(model, pixels, t[chosen], params, x.c.aligner ? &*x.c.aligner : nullptr);
}

void writeSegRecord(const EvaluateSegOptions& o, const SegProtocol& protocol, const HeatmapSession& c, nlohmann::ordered_json record,
                    int64_t n, std::size_t classCount, const NeuronSegMethod* neurons) {
    record["vitscope_version"] = "0.1.0";
    record["model"] = o.model.model.model;
    record["weights"] = c.model->info.weightsPath;
    record["precision"] = precisionName(c.model->precision);
    record["data"] = o.data;
    record["images"] = n;
    record["classes_file"] = o.classes;
    record["class_count"] = classCount;
    record["image_preprocessing"] = protocol.cropImage ? "the model's own (resize, centre crop)" : "squashed to the input size";
    record["mask_preprocessing"] = "squashed to the input size, nearest neighbour (PIL's rule)";
    record["map"] = std::string(protocol.classMean ? "the top-1 class's map minus the mean of every class's map; " : "the top-1 class's map; ") +
                    (protocol.clipNegatives ? "negatives clipped, " : "") + "min-max, foreground above " +
                    (protocol.threshold == ForegroundThreshold::Half ? "0.5" : "the mean");
    if (neurons) {
        nlohmann::json dirs = nlohmann::json::array();
        for (const std::string& d : o.describe) dirs.push_back(std::filesystem::absolute(d).lexically_normal().string());
        record["neurons"] = {{"describe", dirs},
                             {"layers", neurons->described().layers},
                             {"count", neurons->count()},
                             {"map", "second_order_lens compute_segmentation.py: the class's count neurons of the layers with the largest "
                                     "|principal direction . class text|, their mean activation (after the non-linearity) at every patch, "
                                     "bilinear to the input"}};
    }
    record["metrics"] = "pixel_accuracy in percent; miou = mean of background and foreground IoU, areas pooled; map = mean over images of the two-channel AP; pointing_game = share of maxima on the object (vitscope's extra)";
    record["date"] = utcNow();
    writeFileAtomic(o.out + "/record.json", record.dump(2) + "\n");
}

void runEvaluateSeg(const EvaluateSegOptions& o) {
    const SegProtocol protocol = segProtocol(o.protocol);
    if (o.limit < 0) throw InputError("--limit", "must be 0 (every image) or positive");
    const ImagenetSegFile data(o.data);
    HeatmapModelOptions mo = o.model;
    if (!protocol.cropImage) mo.squash = true;
    const HeatmapSession c = openHeatmapContext(mo);
    const std::vector<SegMethod> methods = parseSegMethods(o.methods, *c.model, !o.describe.empty());
    checkModelOptionsFor(o.model, heatmapMethodsOf(methods));
    if (o.classes.empty()) throw InputError("--classes", "is needed: the class names (or prompts), one per line, in the label order");
    const std::vector<std::string> classes = readTextList(o.classes);
    std::string templatesUsed;
    const at::Tensor table = classTable(*c.text, classes, o.templates, &templatesUsed);  // [C, E]
    std::optional<NeuronSegMethod> neurons;
    if (!o.describe.empty()) neurons.emplace(o.describe, o.neuronCount, *c.model, o.model.model.model, table);
    std::map<bool, at::Tensor> surgeryTable;
    const std::function<at::Tensor(HeatmapMethod)> tableFor = [&](HeatmapMethod m) -> at::Tensor {
        if (m != HeatmapMethod::Surgery || !c.surgeryEnsemble) return table;
        if (!surgeryTable.count(true)) surgeryTable[true] = c.textsFor(m, classes);
        return surgeryTable[true];
    };
    ensureDir(o.out);
    std::printf("hashing the model and %s for the record\n", o.data.c_str());
    const std::string modelHash = fileSha256(c.model->info.weightsPath), dataHash = fileSha256(o.data);
    const nlohmann::ordered_json key = segRunKey(o, protocol, methods, modelHash, dataHash, classes, templatesUsed, neurons ? &*neurons : nullptr);
    const ShardSpec shard = resolveShard(o.shard, 0);
    ImageProgress progress(o.out, key, shard.defined() ? shardName(shard.index, shard.count) : std::string());
    if (!progress.done().empty()) std::printf("resuming: %zu images already evaluated in %s\n", progress.done().size(), o.out.c_str());
    if (shard.defined()) std::printf("shard %d of %d (from %s): every %d-th image\n", shard.index, shard.count, shard.source.c_str(), shard.count);
    if (!o.maps.empty())
        for (const SegMethod& m : methods) ensureDir(o.maps + "/" + m.name);
    const int64_t n = o.limit > 0 ? std::min(o.limit, data.size()) : data.size();
    std::vector<LocalisationMeter> meters(methods.size(), LocalisationMeter(protocol.clipNegatives, protocol.threshold));
    const SegImageContext context{c, o, protocol, methods, tableFor, neurons ? &*neurons : nullptr};
    const int64_t side = c.model->preprocess.imageSize;
    const JobContext job = interruptibleJob("imagenet-seg");
    const auto start = std::chrono::steady_clock::now();
    int64_t fresh = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (job.cancelled()) throw JobCancelled();
        if (const auto it = progress.done().find(i); it != progress.done().end()) {
            const nlohmann::json& samples = it->second.at("samples");
            if (samples.size() != methods.size()) throw FormatError(o.out, "a progress line of image " + std::to_string(i) + " is incomplete");
            for (std::size_t m = 0; m < methods.size(); ++m) meters[m].add(sampleFrom(samples[m]));
            continue;
        }
        if (shard.defined() && i % shard.count != shard.index) continue;  // another shard's image
        const cv::Mat rgb = data.image(i), maskFull = data.mask(i);
        if (maskFull.rows != rgb.rows || maskFull.cols != rgb.cols)
            throw FormatError(o.data, "mask " + std::to_string(i) + " is " + std::to_string(maskFull.cols) + " x " +
                                          std::to_string(maskFull.rows) + ", its image " + std::to_string(rgb.cols) + " x " +
                                          std::to_string(rgb.rows));
        const at::Tensor pixels = preprocessImage(rgb, c.model->preprocess).unsqueeze(0);
        cv::Mat maskSquashed;
        cv::resize(maskFull, maskSquashed, cv::Size(static_cast<int>(side), static_cast<int>(side)), 0, 0, cv::INTER_NEAREST_EXACT);
        const at::Tensor mask = at::from_blob(maskSquashed.data, {side, side}, at::kByte).clone();
        const int64_t chosen = at::matmul(table, imageInTextSpace(c, pixels)).argmax().item<int64_t>();
        nlohmann::json samples = nlohmann::json::array();
        for (std::size_t m = 0; m < methods.size(); ++m) {
            const Heatmap map = segMethodMap(context, m, pixels, chosen);
            if (!o.maps.empty()) writeNpyTensor(o.maps + "/" + methods[m].name + "/" + std::to_string(i) + ".npy", map.pixels);
            samples.push_back(sampleJson(meters[m].add(map.pixels, mask)));
        }
        progress.record(i, {{"class", chosen}, {"samples", samples}});
        ++fresh;
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double rate = secs > 0 ? fresh / secs : 0;
        job.report({i + 1, n, rate, rate > 0 ? (n - i - 1) / rate : 0, {}});
    }
    if (shard.defined()) {  // the tables come from a run without --shard once every shard is done
        std::printf("shard done: %s; run the command without --shard to gather the shards into the tables\n", progress.file().c_str());
        return;
    }
    writeSegTables(o.out, protocol, methods, meters);
    writeSegRecord(o, protocol, c, key, n, classes.size(), neurons ? &*neurons : nullptr);
    std::cout << readFileText(o.out + "/results.md") << o.out << "/results.json\n";
}

// ---- align ----

struct AlignOptions {
    ModelOptions model;
    std::string clip, images, out, mode = "per-component", procedure = "vitscope", convention = "exact", fromBlock;
    bool stepsGiven = false, lrGiven = false;
    double heldOut = 0.2;
    int batch = 32;
    ComponentAlignParams params;
};

void runAlign(const AlignOptions& o) {
    if (o.mode != "shared" && o.mode != "per-component") throw InputError("--mode " + o.mode, "must be shared or per-component");
    AlignerFitOptions fit;
    fit.perComponent = o.mode == "per-component";
    fit.heldOut = o.heldOut;
    fit.batch = o.batch;
    fit.params = o.params;
    fit.params.procedure = parseAlignProcedure(o.procedure);
    fit.decompose.convention = parseConvention(o.convention);
    if (!o.fromBlock.empty()) {
        if (fit.decompose.convention != Convention::VitDecompose) throw InputError("--from-block", "applies to --convention vit-decompose only");
        parseFromBlock(o.fromBlock, &fit.decompose.fromStage, &fit.decompose.fromBlock);
    }
    if (fit.params.procedure == AlignProcedure::Reference && (o.stepsGiven || o.lrGiven))
        throw InputError(o.stepsGiven ? "--steps" : "--lr", "sets vitscope's procedure; the reference procedure runs with its own settings");
    fit.validate();
    const Model model = openModel(o.model);
    const Model clip = openModelOn(o.clip, o.model.device);
    const std::vector<std::string> images = listImages(o.images);
    const AlignerFit f = fitAlignerOnImages(model, o.model.model, clip, o.clip, images, fit, interruptibleJob("align"));
    saveAligner(f.aligner, o.out);
    std::printf("%lld training / %lld held-out images; held-out cosine to %s: shared map %.4f", static_cast<long long>(f.trained),
                static_cast<long long>(f.heldOut), o.clip.c_str(), f.sharedCosine);
    if (fit.perComponent)
        std::printf(", per-component maps %.4f (%s procedure, %s steps); orthonormality E * mean((W^T W - I)^2) %.4f", f.cosine,
                    o.procedure.c_str(), f.aligner.settings.at("steps").c_str(), orthonormalityPenalty(f.aligner.componentWeights));
    std::printf("\n%s\n", o.out.c_str());
}

}  // namespace

// ---- ledger ----

struct LedgerOptions {
    ModelOptions model;
    std::string aligner, image, text, out;
    std::string convention, fromBlock;  // empty: the GUI's decomposition (exact)
};

// The completeness ledger the GUI shows, from the same function (analysis/ledger.h's
// computeLedger, which the GUI's explorer calls too), on the decomposition the GUI makes.
void runLedger(const LedgerOptions& o) {
    HeatmapSessionOptions so;
    so.model = o.model.model;
    so.tokenizer = o.model.tokenizer;
    so.device = o.model.device;
    so.checkpointKey = o.model.checkpointKey;
    so.aligner = o.aligner;
    if (so.aligner.empty()) so.alignerIfNotClip = alignerBesideModel(o.model.model);
    const HeatmapSession session = openHeatmapSession(so);
    const Model& model = *session.model;
    at::NoGradGuard noGrad;
    const at::Tensor pixels = loadAndPreprocess({o.image}, model.preprocess).to(model.vision.device());
    DecomposeOptions decOptions = imageDecomposeOptions(model);
    if (!o.convention.empty()) decOptions.convention = parseConvention(o.convention);
    if (!o.fromBlock.empty()) parseFromBlock(o.fromBlock, &decOptions.fromStage, &decOptions.fromBlock);
    if (decOptions.convention == Convention::VitDecompose) decOptions.tokenFactors = false;
    const Decomposition dec = decomposeImages(model, pixels, decOptions);
    Ledger g = computeLedger(model, dec, session.text->encode({o.text})[0], session.aligner ? &*session.aligner : nullptr);
    g.text = o.text;
    nlohmann::ordered_json j;
    j["model"] = o.model.model;
    j["image"] = o.image;
    j["text"] = g.text;
    j["convention"] = conventionName(dec.convention);
    if (dec.convention == Convention::VitDecompose) {
        // Its terms sum to its walker's value, not to the model's output: how far, in the output space.
        j["from_block"] = {decOptions.fromStage, decOptions.fromBlock};
        j["output_miss"] = dec.outputMiss;
    }
    j["score"] = g.total;
    j["sum_of_terms"] = g.sumOfTerms;
    j["residual"] = g.residual;
    j["rows"] = nlohmann::ordered_json::array();
    std::string csv = "component,layer,head,score\n";
    for (const LedgerRow& r : g.rows) {
        nlohmann::ordered_json row{{"component", r.name}, {"score", r.score}};
        if (r.layer >= 0) row["layer"] = r.layer;
        if (r.head >= 0) row["head"] = r.head;
        j["rows"].push_back(row);
        std::ostringstream line;
        line << r.name << "," << (r.layer >= 0 ? std::to_string(r.layer) : "") << "," << (r.head >= 0 ? std::to_string(r.head) : "") << ","
             << r.score << "\n";
        csv += line.str();
    }
    const bool asCsv = o.out.size() > 4 && o.out.compare(o.out.size() - 4, 4, ".csv") == 0;
    writeFileAtomic(o.out, asCsv ? csv : j.dump(1) + "\n");
    std::printf("score %.6g = sum of %zu terms %.6g (residual %.3g)\n", g.total, g.rows.size(), g.sumOfTerms, g.residual);
    std::vector<LedgerRow> top = g.rows;
    std::sort(top.begin(), top.end(), [](const LedgerRow& a, const LedgerRow& b) { return std::abs(a.score) > std::abs(b.score); });
    for (std::size_t i = 0; i < std::min<std::size_t>(8, top.size()); ++i) std::printf("  %-14s %+.6g\n", top[i].name.c_str(), top[i].score);
    std::cout << o.out << "\n";
}

void registerImageCommands(CLI::App& app, std::vector<std::function<void()>>& actions) {
    {
        auto o = std::make_shared<LedgerOptions>();
        auto* sub = app.add_subcommand("ledger", "An image's score for a text broken into every component's term (the GUI's ledger)");
        addModelOptions(sub, o->model);
        sub->add_option("--aligner", o->aligner, "Aligner into CLIP space (non-CLIP models; default: the one beside the model)");
        sub->add_option("--image", o->image, "Image file")->required();
        sub->add_option("--text", o->text, "Text")->required();
        sub->add_option("--out", o->out, "Output .json or .csv")->required();
        sub->add_option("--convention", o->convention, "exact (default) or vit-decompose (Swin / MaxViT; records output_miss)");
        sub->add_option("--from-block", o->fromBlock, "With vit-decompose: its detach block STAGE,BLOCK (default 0,0)");
        sub->callback([&actions, o] { actions.push_back([o] { runLedger(*o); }); });
    }
    {
        auto o = std::make_shared<HeatmapOptions>();
        auto* sub = app.add_subcommand("heatmap", "Heatmap of a text over an image (PNG overlay with colorbar, raw .npy)");
        addHeatmapModelOptions(sub, o->model);
        sub->add_option("--image", o->image, "Image file");
        sub->add_option("--pixels", o->pixels, "Instead of --image: preprocessed pixels [1, 3, S, S] as .npy");
        sub->add_option("--text", o->text, "Text (not needed by attention and rollout, nor with --class)");
        sub->add_option("--text-embedding", o->textEmbedding,
                        "Instead of --text: a text embedding [E] as .npy (normalised here), for towers without a text side");
        std::string methods = "The map:";
        for (HeatmapMethod m : allHeatmapMethods()) methods += std::string("\n  ") + heatmapMethodName(m) + ": " + heatmapMethodSummary(m);
        sub->add_option("--method", o->method, methods)->capture_default_str();
        sub->add_option("--class", o->classIndex, "Gradient methods on a classifier: the class whose logit is the score (instead of --text)");
        sub->add_option("--heads", o->heads, "Decomposition restricted to these heads: L.H,...");
        sub->add_option("--opacity", o->opacity, "Overlay opacity 0..1")->capture_default_str();
        sub->add_option("--colormap", o->colormap, "viridis, inferno, jet or turbo")->capture_default_str();
        sub->add_option("--scale", o->scale, "Enlarge the model's crop by this factor (default: to ~384 px)");
        sub->add_option("--out", o->out, "Output PNG")->required();
        sub->add_option("--npy", o->npy, "Also write the patch-level map [gh, gw] as .npy");
        addTestTimeRegisterOptions(sub, o->registers);
        sub->callback([&actions, o] { actions.push_back([o] { runHeatmap(*o); }); });
    }
    {
        auto* evaluate = app.add_subcommand("evaluate", "Benchmarks that reproduce the papers' tables from the datasets' own files");
        evaluate->require_subcommand(1);
        auto seg = std::make_shared<EvaluateSegOptions>();
        auto* imseg = evaluate->add_subcommand("imagenet-seg", "ImageNet segmentation (gtsegs_ijcv.mat): pixel accuracy, mIoU, mAP per heatmap method");
        addHeatmapModelOptions(imseg, seg->model);
        imseg->add_option("--data", seg->data, "gtsegs_ijcv.mat (MATLAB 7.3 / HDF5, Guillaumin et al.'s layout)")->required();
        imseg->add_option("--protocol", seg->protocol,
                          "textspan (compute_segmentations.py), chefer (imagenet_seg_eval.py) or second-order-lens (compute_segmentation.py: "
                          "the class's own map, min-max, foreground above 0.5)")
            ->capture_default_str();
        imseg->add_option("--methods", seg->methods,
                          "all (those the model defines, and neurons with --describe), or a comma list of methods; neurons: "
                          "second_order_lens's neuron segmentation")
            ->capture_default_str();
        imseg->add_option("--describe", seg->describe, "The neurons method: neurons describe outputs, one per layer (the reference: layers 8, 9, 10 of ViT-B)")
            ->delimiter(',');
        imseg->add_option("--neuron-count", seg->neuronCount, "The neurons method: neurons averaged per class (the reference's top_neurons)")
            ->capture_default_str();
        imseg->add_option("--maps", seg->maps, "Also write each evaluated image's map per method as scored, before the protocol's clip and min-max: DIR/METHOD/INDEX.npy [S, S]");
        imseg->add_option("--classes", seg->classes, "Class names (or prompts for word-vocabulary models), one per line, in label order")->required();
        imseg->add_option("--templates", seg->templates, "Prompt templates with {} (default: resources/templates/classes.txt for BPE models)");
        imseg->add_option("--limit", seg->limit, "Only the first N images (0: all)")->capture_default_str();
        imseg->add_option("--out", seg->out, "Folder for results.json / .md / .csv, record.json and progress*.jsonl (resumed)")->required();
        imseg->add_option("--shard", seg->shard, "I/N: evaluate every N-th image from I only (default: a Slurm job array's task); "
                                                  "a run without it gathers the shards into the tables");
        imseg->callback([seg, &actions] { actions.push_back([seg] { runEvaluateSeg(*seg); }); });
        registerWaterbirds(evaluate, actions);
    }
    {
        auto o = std::make_shared<EvaluateHeatmapsOptions>();
        auto* sub = app.add_subcommand("evaluate-heatmaps", "Localisation of heatmap methods against ground-truth masks");
        addHeatmapModelOptions(sub, o->model);
        sub->add_option("--dataset", o->dataset, "Folder with labels.csv (columns file, mask, ...) as shapes generate writes")->required();
        sub->add_option("--methods", o->methods, "all (those the model defines: decomposition and raw for Swin / MaxViT), or a comma list of methods")
            ->capture_default_str();
        sub->add_option("--prompt", o->prompt, "Text per image; {column} takes a labels.csv value")->capture_default_str();
        sub->add_option("--heads", o->heads, "Decomposition restricted to these heads: L.H,...");
        sub->add_option("--count", o->count, "Only the first N images (0: all)")->capture_default_str();
        sub->add_option("--out", o->out, "Also write the table as CSV");
        sub->add_option("--target", o->target,
                        "object: prompt and mask of the main object; distractor: of the distractor (text grounding)")
            ->capture_default_str();
        sub->add_flag("--no-class-mean", o->noClassMean,
                      "Score each prompt's own map (default: minus the mean map of all class prompts, as the reference)");
        sub->callback([&actions, o] { actions.push_back([o] { runEvaluateHeatmaps(*o); }); });
    }
    {
        auto o = std::make_shared<AlignOptions>();
        auto* sub = app.add_subcommand("align", "Fit a map of a non-CLIP model's representation into a CLIP model's space");
        addModelOptions(sub, o->model);
        sub->add_option("--clip", o->clip, "CLIP model whose image embeddings are the target")->required();
        sub->add_option("--images", o->images, "Image folder or list (the last --held-out fraction is held out)")->required();
        sub->add_option("--out", o->out, "Output aligner.safetensors")->required();
        sub->add_option("--mode", o->mode,
                        "per-component (trained with the reference's loss, as Beyond CLIP's CompAlign) or shared (one ridge map, closed form)")
            ->capture_default_str();
        sub->add_option("--held-out", o->heldOut, "Fraction of images held out")->capture_default_str();
        sub->add_option("--batch", o->batch, "Images per forward pass")->capture_default_str()->check(CLI::Range(1, 4096));
        sub->add_option("--procedure", o->procedure,
                        "Per-component fitting: vitscope (from the shared ridge map, full-batch Adam, --steps / --lr) or reference "
                        "(vit-decompose's align_with_clip: N(0, 0.02^2) start, Adam lr 3e-4, weight decay 1e-6, batches of 32, "
                        "2 epochs, stop after 50 batches without improvement)")
            ->capture_default_str();
        sub->add_option("--seed", o->params.seed, "Reference procedure: seed of its initial draw and shuffles")->capture_default_str();
        sub->add_option("--convention", o->convention,
                        "Terms fitted on: exact, or vit-decompose (Swin, MaxViT: its components after the detach block)")
            ->capture_default_str();
        sub->add_option("--from-block", o->fromBlock, "With vit-decompose: its detach block STAGE,BLOCK (default 0,0)");
        sub->add_option_function<int>("--steps", [o](int v) { o->params.steps = v, o->stepsGiven = true; },
                                      "Per-component, vitscope procedure: optimisation steps (300)");
        sub->add_option_function<double>("--lr", [o](double v) { o->params.learningRate = v, o->lrGiven = true; },
                                         "Per-component, vitscope procedure: Adam learning rate (0.001)");
        sub->add_option("--ortho", o->params.orthoPenalty, "Per-component: orthonormality penalty lambda")->capture_default_str();
        sub->callback([&actions, o] { actions.push_back([o] { runAlign(*o); }); });
    }
}

}  // namespace vitscope::cli
