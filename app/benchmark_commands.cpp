// vitscope-cli evaluate zero-shot / ablations: an ImageNet-style class-folder dataset cached
// (resumable, the dataset cache), scored against the class prompts; TextSpan's mean-ablation table.
#include "benchmark_commands.h"

#include "analysis/ablation_table.h"
#include "analysis/cache.h"
#include "analysis/session.h"
#include "analysis/text_embed.h"
#include "cli_common.h"
#include "error.h"
#include "io/file_util.h"
#include "resources.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
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

void runZeroShot(const ZeroShotOptions& o, bool ablations) {
    std::vector<std::string> images;
    std::vector<int64_t> labels;
    const std::vector<std::string> folders = classFolders(o.data, o.perClass, &images, &labels);
    std::vector<std::string> names;
    if (!o.classes.empty()) {
        names = readTextList(o.classes);
        if (names.size() != folders.size())
            throw InputError(o.classes, "lists " + std::to_string(names.size()) + " classes, " + o.data + " has " +
                                            std::to_string(folders.size()) + " class folders");
    } else {
        for (std::string f : folders) {
            std::replace(f.begin(), f.end(), '_', ' ');
            names.push_back(f);
        }
    }
    ensureDir(o.out);
    // The dataset cache: built, or resumed, or reused.
    CacheBuildParams params;
    params.outDir = o.out + "/cache";
    std::error_code ec;
    params.modelSpec = fs::exists(o.model.model, ec) ? fs::absolute(o.model.model).lexically_normal().string() : o.model.model;
    params.batch = o.batch;
    params.convention = parseConvention(o.convention);
    params.validate();
    std::string weights;
    {
        const Model model = openModel(o.model);
        weights = model.info.weightsPath;
        const CacheBuildResult r = buildCache(model, images, params, interruptibleJob("cache"));
        if (r.cancelled) {
            std::cout << "interrupted: " << r.rows << " images cached in " << params.outDir << "; run the same command to resume\n";
            return;
        }
    }
    const CacheSession s = openCacheSession({params.outDir, o.aligner, {}, o.model.tokenizer, o.model.device}, true);
    // Each cached row's label (unreadable images are skipped by the cache).
    std::map<std::string, int64_t> labelOf;
    for (std::size_t i = 0; i < images.size(); ++i) labelOf[images[i]] = labels[i];
    std::vector<int64_t> rowLabels;
    for (const std::string& p : s.cache->paths()) rowLabels.push_back(labelOf.at(p));
    std::vector<std::string> templates;
    std::string templatesUsed = "none (each class line is its prompt)";
    if (!o.templates.empty()) {
        templates = readTextList(o.templates);
        templatesUsed = o.templates;
    } else if (!s.text->wordVocabulary() && !dataFile("resources/templates/classes.txt").empty()) {
        templates = readTextList(dataFile("resources/templates/classes.txt"));
        templatesUsed = "resources/templates/classes.txt";
    }
    if (s.text->wordVocabulary() && !templates.empty())
        throw InputError("--templates " + o.templates, "cannot be read by a word-vocabulary model: pass class prompts in --classes");
    const at::Tensor classifier = s.text->encodeEnsemble(names, templates);
    const std::vector<AblationTableRow> rows = zeroShotAblationTable(*s.view, classifier, rowLabels, ablations);
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
    const std::time_t now = std::time(nullptr);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    const nlohmann::ordered_json record{
        {"benchmark", benchmark},
        {"protocol", ablations ? "textspan (compute_ablations.py: means over the evaluated images; MLP rows include the embedding term; "
                                 "attention layers ablated cumulatively; no class-token row)"
                               : "the model's top-1 / top-5 over the class prompts"},
        {"vitscope_version", "0.1.0"},
        {"model", o.model.model},
        {"model_sha256", fileSha256(weights)},
        {"aligner", o.aligner},
        {"convention", o.convention},
        {"data", o.data},
        {"images", rowLabels.size()},
        {"image_list_sha256", sha256Hex(list)},
        {"classes", o.classes.empty() ? "the class folders' names" : o.classes},
        {"classes_sha256", sha256Hex(joined)},
        {"templates", templatesUsed},
        {"labels", "the sorted class folders' order"},
        {"cache", params.outDir},
        {"date", date}};
    writeFileAtomic(o.out + "/record.json", record.dump(2) + "\n");
    std::cout << readFileText(o.out + "/results.md") << o.out << "/results.json\n";
}

}  // namespace

void registerBenchmarks(CLI::App& app, std::vector<std::function<void()>>& actions) {
    CLI::App* evaluate = app.get_subcommand("evaluate");
    for (const bool ablations : {false, true}) {
        auto o = std::make_shared<ZeroShotOptions>();
        auto* sub = evaluate->add_subcommand(ablations ? "ablations" : "zero-shot",
                                             ablations ? "TextSpan's mean-ablation table (compute_ablations.py) on a class-folder dataset"
                                                       : "Zero-shot top-1 / top-5 on a class-folder dataset (ImageNet val/<wnid>/*.JPEG)");
        addModelOptions(sub, o->model);
        sub->add_option("--aligner", o->aligner, "Aligner into CLIP space (non-CLIP models)");
        sub->add_option("--data", o->data, "One folder per class, sorted names in label order (ImageNet's val/<wnid>/)")->required();
        sub->add_option("--classes", o->classes, "Class names in label order, one per line (default: the folder names)");
        sub->add_option("--templates", o->templates, "Prompt templates with {} (default: resources/templates/classes.txt for BPE models)");
        sub->add_option("--convention", o->convention, "Terms cached: exact or textspan (the reference's)")->capture_default_str();
        sub->add_option("--per-class", o->perClass, "Only the first N images of each class (0: all)")->capture_default_str()->check(CLI::NonNegativeNumber);
        sub->add_option("--batch", o->batch, "Images per forward pass")->capture_default_str()->check(CLI::Range(1, 4096));
        sub->add_option("--out", o->out, "Folder for results.json / .md / .csv, record.json and the dataset cache (resumed)")->required();
        sub->callback([&actions, o, ablations] { actions.push_back([o, ablations] { runZeroShot(*o, ablations); }); });
    }
}

}  // namespace vitscope::cli
