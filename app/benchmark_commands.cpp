// vitscope-cli evaluate zero-shot / ablations: an ImageNet-style class-folder dataset cached
// (resumable, the dataset cache), scored against the class prompts; TextSpan's mean-ablation table.
#include "benchmark_commands.h"

#include "analysis/ablation_table.h"
#include "analysis/cache.h"
#include "analysis/cache_shards.h"
#include "analysis/session.h"
#include "analysis/text_embed.h"
#include "model/forward.h"
#include "cli_common.h"
#include "benchmark_progress.h"
#include "heatmap_options.h"
#include "image/preprocess.h"
#include "error.h"
#include "io/file_util.h"
#include "io/imagenet_val.h"
#include "resources.h"

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>

namespace fs = std::filesystem;

namespace vitscope::cli {

namespace {

struct ZeroShotOptions {
    ModelOptions model;
    std::string aligner, data, classes, templates, out, convention = "exact";
    std::string cache;  // a cache built beforehand (e.g. sharded on Slurm with cache build, then merged)
    std::string groundTruth;  // a flat --data folder's labels: the devkit or Kaggle's LOC_val_solution.csv
    bool classToken = false;  // ablations: the reference's class-token rows (one per-token pass over the images)
    int batch = 32;
    int64_t perClass = 0;
};

// The class folders of `data` (sorted: ImageNet's label order is its sorted wnids), and each
// image's label; `perClass` > 0 keeps the first N images of each class.
std::vector<std::string> classFolders(const std::string& data, int64_t perClass, std::vector<std::string>* images,
                                      std::vector<int64_t>* labels) {
    std::error_code ec;
    if (!fs::is_directory(data, ec)) throw IoError(data, "is not a folder");
    std::vector<std::string> folders;
    for (const auto& e : fs::directory_iterator(data, ec))
        if (e.is_directory()) folders.push_back(e.path().filename().string());
    std::sort(folders.begin(), folders.end());
    if (folders.size() < 2) throw InputError(data, "needs one folder per class (val/<class>/*.JPEG), at least two");
    for (std::size_t c = 0; c < folders.size(); ++c) {
        std::vector<std::string> inClass = listImages((fs::path(data) / folders[c]).string());
        if (inClass.empty()) throw InputError((fs::path(data) / folders[c]).string(), "holds no images");
        if (perClass > 0 && static_cast<int64_t>(inClass.size()) > perClass) inClass.resize(static_cast<std::size_t>(perClass));
        for (const std::string& p : inClass) {
            images->push_back(p);
            labels->push_back(static_cast<int64_t>(c));
        }
    }
    return folders;
}

// Each image's attention term from its class token, per layer, summed over heads [N, L, E]: what
// the reference's `cls_attn` holds (a per-token pass, as caches keep no per-token terms). Plain
// CLIP ViTs with a class token only.
at::Tensor classTokenTerms(const ZeroShotOptions& o, const Model& model, const std::vector<std::string>& paths, Convention convention) {
    if (!o.aligner.empty()) throw InputError("--class-token", "needs a CLIP model's own output space (not through --aligner)");
    if (!model.isClip() || model.vision.hierarchical() || model.vision.pool.defined())
        throw InputError("--class-token", "needs a CLIP ViT with a class token; " + o.model.model + " is not one");
    DecomposeOptions opts;
    opts.tokens = true;
    opts.convention = convention;
    at::NoGradGuard noGrad;
    std::vector<at::Tensor> rows;
    const JobContext job = interruptibleJob("class-token terms");
    const int64_t n = static_cast<int64_t>(paths.size()), batch = 8;
    for (int64_t start = 0; start < n; start += batch) {
        if (job.cancelled()) throw JobCancelled();
        const std::vector<std::string> chunk(paths.begin() + start, paths.begin() + std::min(n, start + batch));
        const Decomposition dec = decomposeImages(model, loadAndPreprocess(chunk, model.preprocess).to(model.vision.device()), opts);
        rows.push_back(dec.heads.select(3, 0).sum(2).to(at::kCPU, at::kFloat));  // [b, L, E]: token 0 is the class token
        job.report({std::min(n, start + batch), n, 0, 0, {}});
    }
    return at::cat(rows);
}

// The record's account of --ground-truth: its layout and each file it read by SHA-256.
nlohmann::ordered_json groundTruthRecord(const std::string& arg, const ImagenetGroundTruth& truth) {
    if (arg.empty()) return "none: class folders";
    nlohmann::ordered_json files = nlohmann::ordered_json::array();
    for (const std::string& f : truth.files) files.push_back({{"file", f}, {"sha256", fileSha256(f)}});
    return {{"argument", arg}, {"layout", truth.layout}, {"files", files}};
}

void runZeroShot(const ZeroShotOptions& o, bool ablations) {
    const LabelledImages data = labelledImages(o.data, o.groundTruth, o.perClass);
    const std::vector<std::string>& images = data.images;
    std::vector<std::string> names = data.defaultNames;
    if (!o.classes.empty()) {
        names = readTextList(o.classes);
        if (names.size() != data.classes.size())
            throw InputError(o.classes, "lists " + std::to_string(names.size()) + " classes, " +
                                            (o.groundTruth.empty() ? o.data + " has " + std::to_string(data.classes.size()) + " class folders"
                                                                   : o.groundTruth + " has " + std::to_string(data.classes.size()) + " classes"));
    }
    ensureDir(o.out);
    // The dataset cache: built, or resumed, or reused.
    CacheBuildParams params;
    params.outDir = o.cache.empty() ? o.out + "/cache" : o.cache;
    std::error_code ec;
    params.modelSpec = fs::exists(o.model.model, ec) ? fs::absolute(o.model.model).lexically_normal().string() : o.model.model;
    params.batch = o.batch;
    params.convention = parseConvention(o.convention);
    params.validate();
    if (!o.cache.empty() && !o.convention.empty() && o.convention != "exact")
        throw InputError("--convention " + o.convention, "is the cache's own with --cache (set it when building the cache)");
    const Model model = openModel(o.model);
    if (!o.cache.empty()) {
        if (DatasetCache(o.cache).fingerprint() != modelFingerprint(model))
            throw InputError(o.cache, "was built with another model than " + o.model.model);
    } else {
        const CacheBuildResult r = buildCache(model, images, params, interruptibleJob("cache"));
        if (r.cancelled) {
            std::cout << "interrupted: " << r.rows << " images cached in " << params.outDir << "; run the same command to resume\n";
            return;
        }
    }
    const CacheSession s = openCacheSession({params.outDir, o.aligner, {}, o.model.tokenizer, o.model.device}, true);
    // Each cached row's label (unreadable images are skipped by the cache).
    std::map<std::string, int64_t> labelOf;
    auto key = [](const std::string& p) { return fs::weakly_canonical(p).string(); };  // however the paths were spelled
    for (std::size_t i = 0; i < images.size(); ++i) labelOf[key(images[i])] = data.labels[i];
    std::vector<int64_t> rowLabels;
    for (const std::string& p : s.cache->paths()) {
        const auto it = labelOf.find(key(p));
        if (it == labelOf.end()) throw InputError(params.outDir, "caches " + p + ", which is not an image of " + o.data + " (as listed)");
        rowLabels.push_back(it->second);
    }
    std::string templatesUsed;
    const at::Tensor classifier = classTable(*s.text, names, o.templates, &templatesUsed);
    const at::Tensor clsTerms = ablations && o.classToken ? classTokenTerms(o, model, s.cache->paths(), s.cache->convention()) : at::Tensor();
    const std::vector<AblationTableRow> rows = zeroShotAblationTable(*s.view, classifier, rowLabels, ablations, clsTerms);
    // The tables and the record.
    const std::string benchmark = ablations ? "ablations" : "zero-shot";
    nlohmann::ordered_json jr = nlohmann::ordered_json::array();
    std::string md = "| row | images | top-1 (%) | top-5 (%) |\n|---|---|---|---|\n", csv = "row,images,top1,top5\n";
    char buf[256];
    for (const AblationTableRow& r : rows) {
        jr.push_back({{"row", r.name}, {"images", rowLabels.size()}, {"top1", r.top1}, {"top5", r.top5}});
        std::snprintf(buf, sizeof buf, "| %s | %zu | %.2f | %.2f |\n", r.name.c_str(), rowLabels.size(), r.top1, r.top5);
        md += buf;
        std::snprintf(buf, sizeof buf, "%s,%zu,%.6f,%.6f\n", r.name.c_str(), rowLabels.size(), r.top1, r.top5);
        csv += buf;
    }
    writeFileAtomic(o.out + "/results.json", nlohmann::ordered_json{{"benchmark", benchmark}, {"rows", jr}}.dump(2) + "\n");
    writeFileAtomic(o.out + "/results.md", std::string(ablations ? "Mean-ablation table (TextSpan compute_ablations.py)" : "Zero-shot accuracy") +
                                               ", " + std::to_string(rowLabels.size()) + " images, " + std::to_string(names.size()) +
                                               " classes\n\n" + md);
    writeFileAtomic(o.out + "/results.csv", csv);
    std::string list, joined;
    for (const std::string& p : s.cache->paths()) list += fs::relative(p, o.data).string() + "\n";
    for (const std::string& n : names) joined += n + "\n";
    const std::string date = utcNow();
    const nlohmann::ordered_json record{
        {"benchmark", benchmark},
        {"protocol", ablations ? std::string("textspan (compute_ablations.py: means over the evaluated images; MLP rows include the embedding "
                                             "term; attention layers ablated cumulatively; ") +
                                     (o.classToken ? "class-token rows from a per-token pass)" : "no class-token rows: --class-token)")
                               : "the model's top-1 / top-5 over the class prompts"},
        {"vitscope_version", "0.1.0"},
        {"model", o.model.model},
        {"model_sha256", fileSha256(model.info.weightsPath)},
        {"aligner", o.aligner},
        {"convention", o.convention},
        {"data", o.data},
        {"images", rowLabels.size()},
        {"image_list_sha256", sha256Hex(list)},
        {"classes", !o.classes.empty() ? o.classes : o.groundTruth.empty() ? "the class folders' names" : "the ground truth's first class names"},
        {"classes_sha256", sha256Hex(joined)},
        {"templates", templatesUsed},
        {"labels", o.groundTruth.empty() ? "the sorted class folders' order"
                                         : data.truth.layout == "devkit" ? "the sorted wnids of meta.mat's leaf synsets (ILSVRC2012_IDs mapped through it)"
                                                                         : "the sorted wnids (LOC_synset_mapping.txt's, else those of LOC_val_solution.csv)"},
        {"ground_truth", groundTruthRecord(o.groundTruth, data.truth)},
        {"cache", params.outDir},
        {"precision", s.cache->precision()},  // what the cache's terms were computed in
        {"date", date}};
    writeFileAtomic(o.out + "/record.json", record.dump(2) + "\n");
    std::cout << readFileText(o.out + "/results.md") << o.out << "/results.json\n";
}

// ---- evaluate ovseg ----

struct OvsegOptions {
    HeatmapModelOptions model;
    std::string data, classes, method = "surgery", masks = "palette", split = "val", out;
    std::string shard;  // "I/N"; empty: from a Slurm job array's environment, if any
    int64_t limit = 0;
};

// Colour -> class index of VOC's palette.
std::map<uint32_t, int> vocPaletteIndex() {
    std::map<uint32_t, int> index;
    for (int i = 0; i < 256; ++i) {
        const std::array<uint8_t, 3> c = vocPaletteRgb(i);
        index[static_cast<uint32_t>(c[0] << 16 | c[1] << 8 | c[2])] = i;
    }
    return index;
}

// A mask's class indices: palette PNGs (SegmentationClass) decode to the palette's colours, gray
// ones (SegmentationClassAug) hold the index itself. 255 is "ignore".
cv::Mat readClassMask(const std::string& path, bool palette, int classes) {
    static const std::map<uint32_t, int> colours = vocPaletteIndex();
    const cv::Mat rgb = loadImageRgb(path);
    cv::Mat out(rgb.rows, rgb.cols, CV_8UC1);
    for (int y = 0; y < rgb.rows; ++y)
        for (int x = 0; x < rgb.cols; ++x) {
            const cv::Vec3b p = rgb.at<cv::Vec3b>(y, x);
            int v = p[0];
            if (palette) {
                const auto it = colours.find(static_cast<uint32_t>(p[0] << 16 | p[1] << 8 | p[2]));
                if (it == colours.end()) throw FormatError(path, "has a colour that is not in VOC's palette (gray masks: --masks gray)");
                v = it->second;
            } else if (p[0] != p[1] || p[1] != p[2]) {
                throw FormatError(path, "is not a gray mask (palette masks: --masks palette)");
            }
            if (v != 255 && v >= classes)
                throw FormatError(path, "holds class " + std::to_string(v) + ", the class list has " + std::to_string(classes));
            out.at<uint8_t>(y, x) = static_cast<uint8_t>(v);
        }
    return out;
}

void runOvseg(const OvsegOptions& o) {
    if (o.masks != "palette" && o.masks != "gray") throw InputError("--masks " + o.masks, "must be palette or gray");
    if (o.limit < 0) throw InputError("--limit", "must be 0 (every image) or positive");
    const fs::path root(o.data);
    const std::string listFile = (root / "ImageSets" / "Segmentation" / (o.split + ".txt")).string();
    std::vector<std::string> ids = readTextList(listFile);
    if (o.limit > 0 && static_cast<int64_t>(ids.size()) > o.limit) ids.resize(static_cast<std::size_t>(o.limit));
    const std::vector<std::string> names = readTextList(o.classes);
    if (names.size() < 2 || names.size() > 255) throw InputError(o.classes, "needs 2 to 255 classes, one per line in mask-index order");
    HeatmapModelOptions mo = o.model;
    mo.squash = true;  // the map covers the whole image, then is resized to the mask
    const HeatmapSession c = openHeatmapContext(mo);
    const HeatmapMethod method = parseHeatmapMethod(o.method);
    if (method == HeatmapMethod::Attention || method == HeatmapMethod::Rollout)
        throw InputError("--method " + o.method, "takes no text: every class would get the same map (use a text-conditioned method)");
    checkModelOptionsFor(o.model, {method});
    const at::Tensor table = c.textsFor(method, names);  // [C, E]
    const int64_t C = table.size(0);
    ensureDir(o.out);
    std::string joined;
    for (const std::string& n : names) joined += n + "\n";
    const std::string modelHash = fileSha256(c.model->info.weightsPath), splitHash = fileSha256(listFile);
    const nlohmann::ordered_json key{{"benchmark", "ovseg"}, {"method", o.method},    {"model_sha256", modelHash},
                                     {"split_sha256", splitHash}, {"masks", o.masks}, {"classes_sha256", sha256Hex(joined)},
                                     {"aligner", o.model.aligner}, {"surgery_blocks", o.model.surgeryBlocks}};
    const ShardSpec shard = resolveShard(o.shard, 0);
    ImageProgress progress(o.out, key, shard.defined() ? shardName(shard.index, shard.count) : std::string());
    if (!progress.done().empty()) std::printf("resuming: %zu images already evaluated in %s\n", progress.done().size(), o.out.c_str());
    std::vector<double> inter(static_cast<std::size_t>(C), 0.0), uni(static_cast<std::size_t>(C), 0.0);
    double correct = 0, labelled = 0;
    auto add = [&](const nlohmann::json& r) {
        for (int64_t k = 0; k < C; ++k) {
            inter[static_cast<std::size_t>(k)] += r.at("inter").at(static_cast<std::size_t>(k)).get<double>();
            uni[static_cast<std::size_t>(k)] += r.at("union").at(static_cast<std::size_t>(k)).get<double>();
        }
        correct += r.at("correct").get<double>();
        labelled += r.at("labelled").get<double>();
    };
    HeatmapParams params = c.params(method, {}, o.model.surgeryBlocks);
    params.referenceTexts = table;  // the class set: Surgery's redundancy, the decomposition's mean, Grad-CAM's labels
    const JobContext job = interruptibleJob("ovseg");
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (job.cancelled()) throw JobCancelled();
        if (const auto it = progress.done().find(static_cast<int64_t>(i)); it != progress.done().end()) {
            add(it->second);
            continue;
        }
        if (shard.defined() && static_cast<int>(i % static_cast<std::size_t>(shard.count)) != shard.index) continue;
        const std::string image = (root / "JPEGImages" / (ids[i] + ".jpg")).string();
        const std::string maskPath = (root / "SegmentationClass" / (ids[i] + ".png")).string();
        const cv::Mat rgb = loadImageRgb(image), mask = readClassMask(maskPath, o.masks == "palette", static_cast<int>(C));
        if (mask.rows != rgb.rows || mask.cols != rgb.cols) throw FormatError(maskPath, "is not the size of its image");
        const at::Tensor pixels = preprocessImage(rgb, c.model->preprocess).unsqueeze(0);
        std::vector<at::Tensor> maps;
        for (int64_t k = 0; k < C; ++k)
            maps.push_back(computeHeatmap(*c.model, pixels, table[k], params, c.aligner ? &*c.aligner : nullptr).pixels.to(at::kFloat));
        const at::Tensor stacked = at::stack(maps).unsqueeze(0);  // [1, C, S, S]
        const at::Tensor up = at::upsample_bilinear2d(stacked, {rgb.rows, rgb.cols}, false);
        const at::Tensor pred = up[0].argmax(0).to(at::kByte).contiguous();
        const at::Tensor gt = at::from_blob(const_cast<uint8_t*>(mask.ptr<uint8_t>()), {mask.rows, mask.cols}, at::kByte).clone();
        const at::Tensor valid = gt.ne(255);
        nlohmann::json result{{"inter", nlohmann::json::array()}, {"union", nlohmann::json::array()}};
        for (int64_t k = 0; k < C; ++k) {
            const at::Tensor p = pred.eq(k) & valid, g = gt.eq(k);
            result["inter"].push_back((p & g).sum().item<double>());
            result["union"].push_back((p | g).sum().item<double>());
        }
        result["correct"] = (pred.eq(gt) & valid).sum().item<double>();
        result["labelled"] = valid.sum().item<double>();
        progress.record(static_cast<int64_t>(i), result);
        add(result);
        job.report({static_cast<int64_t>(i + 1), static_cast<int64_t>(ids.size()), 0, 0, {}});
    }
    if (shard.defined()) {  // the tables come from a run without --shard once every shard is done
        std::printf("shard done: %s; run the command without --shard to gather the shards into the tables\n", progress.file().c_str());
        return;
    }
    nlohmann::ordered_json perClass = nlohmann::ordered_json::object();
    double sum = 0;
    int present = 0;
    for (int64_t k = 0; k < C; ++k) {
        if (uni[static_cast<std::size_t>(k)] <= 0) continue;  // neither predicted nor present: no IoU
        const double iou = inter[static_cast<std::size_t>(k)] / uni[static_cast<std::size_t>(k)];
        perClass[names[static_cast<std::size_t>(k)]] = iou;
        sum += iou;
        ++present;
    }
    const double miou = present ? sum / present : 0, acc = labelled > 0 ? 100.0 * correct / labelled : 0;
    const nlohmann::ordered_json results{{"benchmark", "ovseg"}, {"protocol", "argmax"},
                                         {"rows", {{{"method", o.method}, {"images", ids.size()}, {"miou", miou}, {"pixel_accuracy", acc}, {"class_iou", perClass}}}}};
    writeFileAtomic(o.out + "/results.json", results.dump(2) + "\n");
    char line[256];
    std::snprintf(line, sizeof line, "| %s | %zu | %.4f | %.2f |\n", o.method.c_str(), ids.size(), miou, acc);
    writeFileAtomic(o.out + "/results.md", "Open-vocabulary segmentation by argmax over the class maps\n\n| method | images | mIoU | pixel accuracy (%) |\n|---|---|---|---|\n" + std::string(line));
    std::snprintf(line, sizeof line, "method,images,miou,pixel_accuracy\n%s,%zu,%.6f,%.6f\n", o.method.c_str(), ids.size(), miou, acc);
    writeFileAtomic(o.out + "/results.csv", line);
    const std::string date = utcNow();
    const nlohmann::ordered_json record{
        {"benchmark", "ovseg"},
        {"protocol", "argmax over the classes' maps as the method returns them (CLIP Surgery's paper; it released no evaluation "
                     "code), the whole image squashed to the input, maps resized bilinearly to the mask; mask value 255 ignored; "
                     "mIoU over the classes predicted or present"},
        {"method", o.method},
        {"vitscope_version", "0.1.0"},
        {"model", o.model.model.model},
        {"model_sha256", modelHash},
        {"data", o.data},
        {"split", listFile},
        {"split_sha256", splitHash},
        {"masks", o.masks},
        {"classes", o.classes},
        {"classes_sha256", sha256Hex(joined)},
        {"images", ids.size()},
        {"date", date}};
    writeFileAtomic(o.out + "/record.json", record.dump(2) + "\n");
    std::cout << readFileText(o.out + "/results.md") << o.out << "/results.json\n";
}

}  // namespace

LabelledImages labelledImages(const std::string& data, const std::string& groundTruth, int64_t perClass) {
    LabelledImages d;
    if (groundTruth.empty()) {
        d.classes = classFolders(data, perClass, &d.images, &d.labels);
        for (std::string f : d.classes) {
            std::replace(f.begin(), f.end(), '_', ' ');
            d.defaultNames.push_back(f);
        }
        return d;
    }
    d.truth = readImagenetGroundTruth(groundTruth);
    d.classes = d.truth.wnids;
    d.defaultNames = d.truth.names;
    const std::vector<std::string> all = listImages(data);
    const std::vector<int64_t> labels = labelImages(d.truth, all, data);
    std::vector<int64_t> kept(d.classes.size(), 0);
    for (std::size_t i = 0; i < all.size(); ++i) {  // --per-class: the first N of each class in file-name order
        if (perClass > 0 && kept[static_cast<std::size_t>(labels[i])]++ >= perClass) continue;
        d.images.push_back(all[i]);
        d.labels.push_back(labels[i]);
    }
    return d;
}


void registerBenchmarks(CLI::App& app, std::vector<std::function<void()>>& actions) {
    CLI::App* evaluate = app.get_subcommand("evaluate");
    for (const bool ablations : {false, true}) {
        auto o = std::make_shared<ZeroShotOptions>();
        auto* sub = evaluate->add_subcommand(ablations ? "ablations" : "zero-shot",
                                             ablations ? "TextSpan's mean-ablation table (compute_ablations.py) on a class-folder dataset"
                                                       : "Zero-shot top-1 / top-5 on a class-folder dataset (ImageNet val/<wnid>/*.JPEG)");
        addModelOptions(sub, o->model);
        sub->add_option("--aligner", o->aligner, "Aligner into CLIP space (non-CLIP models)");
        sub->add_option("--data", o->data, "One folder per class, sorted names in label order (ImageNet's val/<wnid>/); "
                                            "with --ground-truth, the flat folder (val/ILSVRC2012_val_00000001.JPEG ...)")->required();
        sub->add_option("--ground-truth", o->groundTruth, "The flat --data folder's labels: the devkit folder (ILSVRC2012_devkit_t12: "
                                                          "data/meta.mat + data/ILSVRC2012_validation_ground_truth.txt) or Kaggle's "
                                                          "LOC_val_solution.csv (LOC_synset_mapping.txt beside it, if any); labels are "
                                                          "the sorted wnids");
        sub->add_option("--classes", o->classes, "Class names in label order, one per line (default: the folder names, or the ground truth's first class names)");
        sub->add_option("--templates", o->templates, "Prompt templates with {} (default: resources/templates/classes.txt for BPE models)");
        sub->add_option("--convention", o->convention, "Terms cached: exact or textspan (the reference's)")->capture_default_str();
        sub->add_option("--cache", o->cache, "A finished cache of these images (e.g. built on Slurm with cache build --shard and merged) "
                                             "instead of building one in OUT/cache");
        sub->add_option("--per-class", o->perClass, "Only the first N images of each class (0: all)")->capture_default_str()->check(CLI::NonNegativeNumber);
        sub->add_option("--batch", o->batch, "Images per forward pass")->capture_default_str()->check(CLI::Range(1, 4096));
        if (ablations)
            sub->add_flag("--class-token", o->classToken, "Also the reference's class-token rows (a per-token pass over the images; CLIP ViTs)");
        sub->add_option("--out", o->out, "Folder for results.json / .md / .csv, record.json and the dataset cache (resumed)")->required();
        sub->callback([&actions, o, ablations] { actions.push_back([o, ablations] { runZeroShot(*o, ablations); }); });
    }
    {
        auto o = std::make_shared<OvsegOptions>();
        auto* sub = evaluate->add_subcommand("ovseg", "Open-vocabulary segmentation by argmax over class maps (PASCAL VOC layout)");
        addHeatmapModelOptions(sub, o->model);
        sub->add_option("--data", o->data, "VOC-style folder: JPEGImages/, SegmentationClass/, ImageSets/Segmentation/SPLIT.txt")->required();
        sub->add_option("--classes", o->classes, "Class prompts in mask-index order (0: background for VOC), one per line")->required();
        sub->add_option("--method", o->method, "The heatmap method whose class maps are compared")->capture_default_str();
        sub->add_option("--masks", o->masks, "palette (SegmentationClass) or gray (SegmentationClassAug)")->capture_default_str();
        sub->add_option("--split", o->split, "ImageSets/Segmentation/SPLIT.txt")->capture_default_str();
        sub->add_option("--limit", o->limit, "Only the first N images (0: all)")->capture_default_str();
        sub->add_option("--out", o->out, "Folder for results.json / .md / .csv, record.json and progress*.jsonl (resumed)")->required();
        sub->add_option("--shard", o->shard, "I/N: evaluate every N-th image from I only (default: a Slurm job array's task); "
                                             "a run without it gathers the shards into the tables");
        sub->callback([&actions, o] { actions.push_back([o] { runOvseg(*o); }); });
    }
}

}  // namespace vitscope::cli
