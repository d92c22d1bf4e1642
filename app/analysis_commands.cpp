#include "analysis_commands.h"

#include "analysis/ablation.h"
#include "analysis/cache.h"
#include "analysis/components.h"
#include "analysis/heatmap.h"
#include "analysis/localisation.h"
#include "analysis/property.h"
#include "analysis/retrieval.h"
#include "analysis/text_embed.h"
#include "analysis/textspan.h"
#include "cli_common.h"
#include "error.h"
#include "image/preprocess.h"
#include "io/file_util.h"
#include "model/loader.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include "io/tensor_io.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

namespace fs = std::filesystem;

namespace vitscope::cli {

namespace {

using ojson = nlohmann::ordered_json;

// Where the project's resources are: beside the executable once installed, else the source tree.
std::string resourceFile(const std::string& relative) {
    for (const fs::path& root : {fs::path("resources"), fs::path(VITSCOPE_SOURCE_DIR) / "resources",
                                 fs::path(VITSCOPE_SOURCE_DIR) / "../share/vitscope/resources"}) {
        std::error_code ec;
        if (fs::exists(root / relative, ec)) return (root / relative).string();
    }
    return {};
}

// What every cache analysis needs: the cache, the aligner for non-CLIP caches, and a CLIP model
// for the texts.
struct CacheOptions {
    std::string cache;
    std::string aligner;
    ModelOptions clip;  // --model: the CLIP model for texts (default: the cache's model, or the aligner's CLIP)
};

void addCacheOptions(CLI::App* sub, CacheOptions& o) {
    sub->add_option("--cache", o.cache, "Dataset cache directory (vitscope-cli cache build)")->required();
    sub->add_option("--aligner", o.aligner, "Aligner into CLIP space, for caches of non-CLIP models");
    sub->add_option("--model", o.clip.model, "CLIP model for the texts (default: the cache's model, or the aligner's CLIP model)");
    sub->add_option("--tokenizer", o.clip.tokenizer, "Tokenizer of that model");
    sub->add_option("--device", o.clip.device, "cpu, cuda or auto")->capture_default_str();
}

struct OpenCache {
    std::unique_ptr<DatasetCache> cache;
    std::optional<Aligner> aligner;
    std::unique_ptr<CacheView> view;
    std::unique_ptr<Model> clip;
    std::unique_ptr<TextEncoder> text;
};

OpenCache openCache(const CacheOptions& o, bool needText) {
    OpenCache c;
    c.cache = std::make_unique<DatasetCache>(o.cache);
    std::string clipSpec = o.clip.model;
    if (!o.aligner.empty()) {
        c.aligner = loadAligner(o.aligner);
        if (clipSpec.empty()) {
            const auto it = c.aligner->settings.find("clip_model");
            if (it != c.aligner->settings.end()) clipSpec = it->second;
        }
    }
    c.view = std::make_unique<CacheView>(*c.cache, c.aligner ? &*c.aligner : nullptr);
    if (!needText) return c;
    if (clipSpec.empty()) clipSpec = c.cache->modelSpec();
    if (clipSpec.empty()) throw InputError(o.cache, "records no model; pass --model (a CLIP model for the texts)");
    ModelOptions mo = o.clip;
    mo.model = clipSpec;
    c.clip = std::make_unique<Model>(openModel(mo));
    if (!c.aligner) {
        if (!c.clip->isClip())
            throw InputError(o.cache, "was made with a non-CLIP model (" + c.clip->info.family + "); pass --aligner and a CLIP --model");
        c.cache->checkModel(*c.clip);
    }
    c.text = std::make_unique<TextEncoder>(*c.clip);
    return c;
}

// labels.csv rows as column -> value maps.
std::vector<std::map<std::string, std::string>> readLabels(const std::string& path) {
    const std::vector<std::string> lines = readTextList(path);
    std::vector<std::string> header;
    auto split = [](const std::string& line) {
        std::vector<std::string> cells;
        std::stringstream ss(line);
        std::string cell;
        while (std::getline(ss, cell, ',')) cells.push_back(cell);
        if (!line.empty() && line.back() == ',') cells.emplace_back();
        return cells;
    };
    header = split(lines.front());
    std::vector<std::map<std::string, std::string>> rows;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const std::vector<std::string> cells = split(lines[i]);
        if (cells.size() != header.size())
            throw FormatError(path, "line " + std::to_string(i + 1) + " has " + std::to_string(cells.size()) + " cells, the header " +
                                        std::to_string(header.size()));
        std::map<std::string, std::string> row;
        for (std::size_t k = 0; k < header.size(); ++k) row[header[k]] = cells[k];
        rows.push_back(row);
    }
    return rows;
}

// A file of lines, or a comma-separated list given inline.
std::vector<std::string> textsOrFile(const std::string& arg) {
    std::error_code ec;
    if (fs::is_regular_file(arg, ec)) return readTextList(arg);
    std::vector<std::string> out;
    std::stringstream ss(arg);
    std::string item;
    while (std::getline(ss, item, ',')) {
        item.erase(0, item.find_first_not_of(' '));
        item.erase(item.find_last_not_of(' ') + 1);
        if (!item.empty()) out.push_back(item);
    }
    if (out.empty()) throw InputError(arg, "names no texts");
    return out;
}

// Classes: "label<TAB>prompt" lines; several prompts may vote for one label.
ZeroShotClassifier loadClassifier(const std::string& file, const TextEncoder& text, std::vector<std::string>* classNames) {
    ZeroShotClassifier classifier;
    std::vector<std::string> prompts;
    classNames->clear();
    for (const std::string& line : readTextList(file)) {
        const std::size_t tab = line.find('\t');
        if (tab == std::string::npos) throw FormatError(file, "line '" + line + "' is not label<TAB>prompt");
        const std::string label = line.substr(0, tab);
        auto it = std::find(classNames->begin(), classNames->end(), label);
        if (it == classNames->end()) it = classNames->insert(classNames->end(), label);
        classifier.promptClass.push_back(static_cast<int>(it - classNames->begin()));
        prompts.push_back(line.substr(tab + 1));
    }
    classifier.prompts = text.encode(prompts);
    return classifier;
}

// The class (and group) of every cached row, from a labels.csv matched by path.
RowLabels loadRowLabels(const std::string& labelsFile, const std::string& labelColumn, const std::string& groupColumns,
                        const std::string& classesFile, const std::vector<std::string>& classNames, const std::vector<std::string>& paths) {
    const std::vector<std::map<std::string, std::string>> rows = readLabels(labelsFile);
    std::map<std::string, const std::map<std::string, std::string>*> byPath;
    const fs::path base = fs::path(labelsFile).parent_path();
    for (const auto& row : rows) {
        const auto f = row.find("file");
        if (f == row.end()) throw FormatError(labelsFile, "has no file column");
        byPath[fs::weakly_canonical(base / f->second).string()] = &row;
    }
    std::vector<std::string> groupCols;
    if (!groupColumns.empty()) groupCols = textsOrFile(groupColumns);
    RowLabels labels;
    for (const std::string& p : paths) {
        const auto it = byPath.find(fs::weakly_canonical(p).string());
        if (it == byPath.end()) throw InputError(labelsFile, "has no row for cached image " + p);
        const auto& row = *it->second;
        const auto v = row.find(labelColumn);
        if (v == row.end()) throw InputError(labelsFile, "has no column '" + labelColumn + "' (--label-column)");
        const auto k = std::find(classNames.begin(), classNames.end(), v->second);
        if (k == classNames.end()) throw InputError(classesFile, "has no prompt for label '" + v->second + "'");
        labels.label.push_back(static_cast<int>(k - classNames.begin()));
        if (!groupCols.empty()) {
            std::string g;
            for (const std::string& col : groupCols) {
                const auto gv = row.find(col);
                if (gv == row.end()) throw InputError(labelsFile, "has no column '" + col + "' (--group-columns)");
                g += (g.empty() ? "" : "/") + gv->second;
            }
            labels.group.push_back(g);
        }
    }
    return labels;
}

// ---- cache build ----

struct CacheBuildOptions {
    ModelOptions model;
    std::string images;
    CacheBuildParams params;
    std::string convention = "exact";
};

void runCacheBuild(CacheBuildOptions o) {
    o.params.convention = parseConvention(o.convention);
    // Recorded so that later analyses find the model from any working directory.
    std::error_code ec;
    o.params.modelSpec = fs::exists(o.model.model, ec) ? fs::absolute(o.model.model).lexically_normal().string() : o.model.model;
    o.params.validate();
    const std::vector<std::string> images = listImages(o.images);
    const Model model = openModel(o.model);
    const CacheBuildResult r = buildCache(model, images, o.params, interruptibleJob("cache"));
    if (r.cancelled) {
        std::cout << "interrupted: " << r.rows << " images cached in " << o.params.outDir
                  << "; run the same command to resume\n";
        return;
    }
    std::cout << r.rows << " images cached in " << o.params.outDir << " (" << r.skipped << " skipped, see skipped.txt)";
    if (r.imagesPerSecond > 0) std::cout << ", " << static_cast<int>(r.imagesPerSecond * 10) / 10.0 << " images/s";
    if (r.resumed && r.imagesPerSecond == 0) std::cout << ", already complete";
    std::cout << "\n";
}

// ---- textspan ----

struct TextSpanOptions {
    CacheOptions cache;
    std::string texts, labels, labelColumn = "label", classes, layers;
    TextSpanParams params;
    std::string heads;
    std::string out;
};

void runTextSpanCommand(const TextSpanOptions& o) {
    OpenCache c = openCache(o.cache, true);
    const std::vector<std::string> pool = readTextList(o.texts);
    o.params.validate(static_cast<int>(c.view->embedDim()), static_cast<int64_t>(pool.size()));
    if (!o.heads.empty() && !o.layers.empty()) throw InputError("textspan", "give --heads or --layers, not both");
    std::vector<Component> components = o.heads.empty() ? std::vector<Component>{} : c.view->parseList(o.heads);
    if (!o.layers.empty()) {
        for (int l : parseLayerSelection(o.layers, c.cache->numLayers())) {
            c.cache->cachedIndex(l);  // the layer must be in the cache
            for (int h = 0; h < c.cache->numHeads(); ++h) components.push_back({Component::Kind::Head, l, h});
        }
    }
    const at::Tensor embeddings = c.text->encode(pool);
    const std::vector<HeadTexts> result = runTextSpan(*c.view, embeddings, o.params, components, interruptibleJob("textspan heads"));
    ojson j;
    j["cache"] = o.cache.cache;
    j["texts"] = o.texts;
    j["per_head"] = o.params.perHead;
    j["rank"] = o.params.rank;
    j["aligner"] = o.cache.aligner;
    j["heads"] = ojson::array();
    for (const HeadTexts& h : result) {
        ojson e;
        e["head"] = h.component.name();
        e["layer"] = h.component.layer;
        e["index"] = h.component.head;
        e["total_variance"] = h.totalVariance;
        e["texts"] = ojson::array();
        for (const TextSpanPick& p : h.picks)
            e["texts"].push_back({{"text", pool[static_cast<std::size_t>(p.text)]}, {"explained", p.explained}, {"cumulative", p.cumulative}});
        j["heads"].push_back(e);
    }
    if (!o.labels.empty()) {
        if (o.classes.empty()) throw InputError("--labels", "needs --classes (label<TAB>prompt lines)");
        std::vector<std::string> classNames;
        const ZeroShotClassifier classifier = loadClassifier(o.classes, *c.text, &classNames);
        const RowLabels labels = loadRowLabels(o.labels, o.labelColumn, "", o.classes, classNames, c.cache->paths());
        std::vector<Component> comps;
        std::vector<at::Tensor> spans;
        for (const HeadTexts& h : result) {
            if (h.picks.empty()) continue;
            std::vector<int64_t> idx;
            for (const TextSpanPick& p : h.picks) idx.push_back(p.text);
            comps.push_back(h.component);
            spans.push_back(embeddings.index_select(0, at::tensor(idx, at::kLong)));
        }
        const SpanAccuracy acc = textSpanAccuracy(*c.view, comps, spans, classifier, labels);
        j["accuracy_check"] = {{"labels", o.labels}, {"label_column", o.labelColumn}, {"original", acc.original},
                               {"heads_mean_ablated", acc.meanAblated}, {"heads_replaced_by_text_span", acc.textSpan}};
        std::printf("zero-shot accuracy on %s: original %.2f%%, every described head mean-ablated %.2f%%, reduced to its text span %.2f%%\n",
                    o.labelColumn.c_str(), 100 * acc.original, 100 * acc.meanAblated, 100 * acc.textSpan);
    }
    writeFileAtomic(o.out, j.dump(1) + "\n");
    for (const HeadTexts& h : result) {
        std::cout << h.component.name() << ":";
        for (const TextSpanPick& p : h.picks) std::cout << "  " << pool[static_cast<std::size_t>(p.text)];
        std::cout << "  (" << static_cast<int>((h.picks.empty() ? 0 : h.picks.back().cumulative) * 1000) / 10.0 << "%)\n";
    }
    std::cout << o.out << "\n";
}

// ---- rank ----

struct RankOptions {
    CacheOptions cache;
    std::string property;
    std::string texts;
    std::string out;
};

// Word lists for --property NAME: the shapes world's lists for models with its word vocabulary
// (vocab.txt), the general lists otherwise.
std::string propertyFile(const std::string& name, const Model& textModel) {
    const bool shapesVocabulary = textModel.tokenizerPath.find("vocab.txt") != std::string::npos;
    const std::vector<std::string> dirs = shapesVocabulary ? std::vector<std::string>{"shapes/", "properties/"}
                                                           : std::vector<std::string>{"properties/", "shapes/"};
    for (const std::string& dir : dirs) {
        const std::string p = resourceFile(dir + name + ".txt");
        if (!p.empty()) return p;
    }
    throw InputError("--property " + name, "no word list resources/properties/" + name + ".txt; pass --texts FILE");
}

void runRank(const RankOptions& o) {
    OpenCache c = openCache(o.cache, true);
    const std::string file = o.texts.empty() ? propertyFile(o.property, *c.clip) : o.texts;
    const std::vector<std::string> words = readTextList(file);
    const std::vector<ComponentScore> scores = rankComponents(*c.view, c.text->encode(words), {}, interruptibleJob("rank components"));
    std::string csv = "rank,component,layer,head,score\n";
    for (std::size_t i = 0; i < scores.size(); ++i) {
        const Component& k = scores[i].component;
        std::ostringstream line;
        line << i + 1 << "," << k.name() << "," << k.layer << "," << k.head << "," << scores[i].score << "\n";
        csv += line.str();
    }
    writeFileAtomic(o.out, csv);
    for (std::size_t i = 0; i < std::min<std::size_t>(10, scores.size()); ++i)
        std::cout << i + 1 << ". " << scores[i].component.name() << "  " << scores[i].score << "\n";
    std::cout << o.out << "\n";
}

// ---- retrieve ----

struct RetrieveOptions {
    CacheOptions cache;
    std::string text, image, heads, property;
    int topHeads = 3;
    int top = 20;
    std::string out;
};

ojson hitsJson(const std::vector<RetrievalHit>& hits) {
    ojson a = ojson::array();
    for (const RetrievalHit& h : hits) a.push_back({{"row", h.row}, {"path", h.path}, {"score", h.score}});
    return a;
}

void runRetrieve(const RetrieveOptions& o) {
    if (o.text.empty() == o.image.empty()) throw InputError("retrieve", "give exactly one of --text or --image");
    if (!o.heads.empty() && !o.property.empty()) throw InputError("retrieve", "give --heads or --property, not both");
    OpenCache c = openCache(o.cache, !o.text.empty() || !o.property.empty());
    std::vector<Component> set;
    if (!o.heads.empty()) set = c.view->parseList(o.heads);
    if (!o.property.empty()) {
        if (o.topHeads < 1) throw InputError("--top-heads", "must be at least 1");
        const std::vector<ComponentScore> scores =
            rankComponents(*c.view, c.text->encode(readTextList(propertyFile(o.property, *c.clip))), c.view->heads(), JobContext{});
        for (int i = 0; i < o.topHeads && i < static_cast<int>(scores.size()); ++i) set.push_back(scores[static_cast<std::size_t>(i)].component);
    }
    ojson j;
    j["cache"] = o.cache.cache;
    j["query"] = o.text.empty() ? ojson{{"image", o.image}} : ojson{{"text", o.text}};
    ojson names = ojson::array();
    for (const Component& k : set) names.push_back(k.name());
    j["components"] = names;
    std::vector<RetrievalHit> restricted, global;
    if (!o.text.empty()) {
        const at::Tensor t = c.text->encode({o.text})[0];
        global = retrieveByText(*c.view, t, {}, o.top);
        if (!set.empty()) restricted = retrieveByText(*c.view, t, set, o.top);
    } else {
        // A cached image is its own query; any other file is decomposed with the cache's model.
        int64_t row = -1;
        const auto& paths = c.cache->paths();
        std::error_code ec;
        for (std::size_t i = 0; i < paths.size() && row < 0; ++i)
            if (fs::path(paths[i]).filename() == fs::path(o.image).filename() && fs::equivalent(paths[i], o.image, ec))
                row = static_cast<int64_t>(i);
        at::Tensor qGlobal, qSet;
        if (row >= 0) {
            qGlobal = cachedQuery(*c.view, row, {});
            if (!set.empty()) qSet = cachedQuery(*c.view, row, set);
        } else {
            ModelOptions mo;
            mo.model = c.cache->modelSpec();
            mo.device = o.cache.clip.device;
            const Model model = openModel(mo);
            c.cache->checkModel(model);
            at::NoGradGuard noGrad;
            const Decomposition dec = decomposeImages(model, loadAndPreprocess({o.image}, model.preprocess), {false, c.cache->convention()});
            const Aligner* al = c.aligner ? &*c.aligner : nullptr;
            qGlobal = decompositionQuery(dec, {}, al);
            if (!set.empty()) qSet = decompositionQuery(dec, set, al);
        }
        global = retrieveByImage(*c.view, qGlobal, {}, o.top);
        if (!set.empty()) restricted = retrieveByImage(*c.view, qSet, set, o.top);
    }
    j["global"] = hitsJson(global);
    if (!set.empty()) j["restricted"] = hitsJson(restricted);
    writeFileAtomic(o.out, j.dump(1) + "\n");
    const std::size_t show = std::min<std::size_t>(5, global.size());
    for (std::size_t i = 0; i < show; ++i) {
        std::cout << i + 1 << ". global " << global[i].path;
        if (i < restricted.size()) std::cout << "   restricted " << restricted[i].path;
        std::cout << "\n";
    }
    std::cout << o.out << "\n";
}

// ---- heatmap / evaluate-heatmaps ----

// The model whose image side is mapped, and the text side (itself when CLIP, else --clip with
// the aligner).
struct HeatmapModelOptions {
    ModelOptions model;
    std::string aligner;
    std::string clip;
    std::string referenceTexts;
    int surgeryBlocks = 6;
};

void addHeatmapModelOptions(CLI::App* sub, HeatmapModelOptions& o) {
    addModelOptions(sub, o.model);
    sub->add_option("--aligner", o.aligner, "Aligner into CLIP space (non-CLIP models)");
    sub->add_option("--clip", o.clip, "CLIP model for the texts of a non-CLIP model (default: the aligner's)");
    sub->add_option("--reference-texts", o.referenceTexts, "Texts whose mean score is removed (decomposition) / compared (surgery)");
    sub->add_option("--surgery-blocks", o.surgeryBlocks, "CLIP Surgery: last K blocks")->capture_default_str();
}

struct HeatmapContext {
    std::unique_ptr<Model> model;
    std::unique_ptr<Model> clip;  // only for non-CLIP models
    std::optional<Aligner> aligner;
    std::unique_ptr<TextEncoder> text;
    at::Tensor reference, redundant;
};

HeatmapContext openHeatmapContext(const HeatmapModelOptions& o) {
    HeatmapContext c;
    c.model = std::make_unique<Model>(openModel(o.model));
    const Model* textModel = c.model.get();
    if (!o.aligner.empty()) {
        c.aligner = loadAligner(o.aligner);
        std::string clipSpec = o.clip;
        const auto it = c.aligner->settings.find("clip_model");
        if (clipSpec.empty() && it != c.aligner->settings.end()) clipSpec = it->second;
        if (clipSpec.empty()) throw InputError(o.aligner, "records no CLIP model; pass --clip");
        ModelOptions mo;
        mo.model = clipSpec;
        mo.device = o.model.device;
        c.clip = std::make_unique<Model>(openModel(mo));
        textModel = c.clip.get();
        if (c.aligner->weight.size(0) != c.model->vision.embedDim())
            throw InputError(o.aligner, "maps " + std::to_string(c.aligner->weight.size(0)) + "-dimensional features, not this model's " +
                                            std::to_string(c.model->vision.embedDim()));
    } else if (!c.model->isClip()) {
        throw InputError(o.model.model, "is not a CLIP model; pass --aligner (and --clip) to map it into CLIP space");
    }
    c.text = std::make_unique<TextEncoder>(*textModel);
    if (!o.referenceTexts.empty()) c.reference = c.text->encode(readTextList(o.referenceTexts));
    c.redundant = c.text->encode({""})[0];
    return c;
}

std::vector<std::pair<int, int>> parseHeadPairs(const std::string& list, const Model& model) {
    std::vector<std::pair<int, int>> out;
    if (list.empty()) return out;
    std::stringstream ss(list);
    std::string item;
    const int L = model.vision.layers(), H = model.vision.heads();
    while (std::getline(ss, item, ',')) {
        const std::size_t dot = item.find('.');
        int l = -1, h = -1;
        try {
            std::size_t a = 0, b = 0;
            if (dot == std::string::npos) throw std::invalid_argument("no dot");
            l = std::stoi(item.substr(0, dot), &a);
            h = std::stoi(item.substr(dot + 1), &b);
            if (a != dot || b != item.size() - dot - 1) throw std::invalid_argument("trailing");
        } catch (const std::exception&) {
            throw InputError("--heads " + item, "unknown head name; heads are L.H, zero-based");
        }
        if (l < 0 || l >= L || h < 0 || h >= H)
            throw InputError("--heads " + item, "no such head: the model has " + std::to_string(L) + " layers x " + std::to_string(H) + " heads");
        out.emplace_back(l, h);
    }
    return out;
}

HeatmapParams heatmapParams(const HeatmapContext& c, HeatmapMethod method, const std::vector<std::pair<int, int>>& heads, int surgeryBlocks) {
    HeatmapParams p;
    p.method = method;
    p.heads = heads;
    p.referenceTexts = c.reference;
    p.redundantText = c.redundant;
    p.surgeryBlocks = surgeryBlocks;
    return p;
}

struct HeatmapOptions {
    HeatmapModelOptions model;
    std::string image, text, method = "decomposition", heads, out, npy, colormap = "viridis";
    double opacity = 0.55;
    int scale = 0;
};

void runHeatmap(const HeatmapOptions& o) {
    const HeatmapContext c = openHeatmapContext(o.model);
    const HeatmapMethod method = parseHeatmapMethod(o.method);
    const Colormap cmap = parseColormap(o.colormap);
    if (o.opacity < 0 || o.opacity > 1) throw InputError("--opacity", "must be within 0..1");
    const cv::Mat rgb = loadImageRgb(o.image);
    const cv::Mat crop = cropForModel(rgb, c.model->preprocess);
    const at::Tensor pixels = preprocessImage(rgb, c.model->preprocess).unsqueeze(0);
    const at::Tensor text = c.text->encode({o.text})[0];
    const Heatmap map = computeHeatmap(*c.model, pixels, text, heatmapParams(c, method, parseHeadPairs(o.heads, *c.model), o.model.surgeryBlocks),
                                       c.aligner ? &*c.aligner : nullptr);
    const int scale = o.scale > 0 ? o.scale : std::max(1, 384 / crop.cols);
    const std::string title = std::string(heatmapMethodName(method)) + ": " + o.text + (o.heads.empty() ? "" : " [" + o.heads + "]");
    const cv::Mat png = renderOverlay(crop, map.pixels, o.opacity, cmap, scale, title);
    if (!cv::imwrite(o.out, png)) throw IoError(o.out, "cannot write the PNG");
    if (!o.npy.empty()) writeNpyTensor(o.npy, map.patches);
    std::cout << o.out << "\n";
}

struct EvaluateHeatmapsOptions {
    HeatmapModelOptions model;
    std::string dataset, methods = "all", prompt = "a {color} {shape}", heads, out;
    int64_t count = 0;
};

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
    const HeatmapContext c = openHeatmapContext(o.model);
    std::vector<HeatmapMethod> methods;
    if (o.methods == "all") {
        methods = allHeatmapMethods();
    } else {
        std::stringstream ss(o.methods);
        std::string m;
        while (std::getline(ss, m, ',')) methods.push_back(parseHeatmapMethod(m));
    }
    const std::string labelsPath = (fs::path(o.dataset) / "labels.csv").string();
    std::vector<std::map<std::string, std::string>> rows = readLabels(labelsPath);
    if (o.count > 0 && static_cast<int64_t>(rows.size()) > o.count) rows.resize(static_cast<std::size_t>(o.count));
    if (rows.empty()) throw InputError(labelsPath, "lists no images");
    const auto heads = parseHeadPairs(o.heads, *c.model);
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
        const at::Tensor text = c.text->encode({fillPrompt(o.prompt, row, labelsPath)})[0];
        for (std::size_t m = 0; m < methods.size(); ++m) {
            const Heatmap map = computeHeatmap(*c.model, pixels, text, heatmapParams(c, methods[m], heads, o.model.surgeryBlocks),
                                               c.aligner ? &*c.aligner : nullptr);
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

// ---- ablate ----

struct AblateOptions {
    CacheOptions cache;
    std::string reference, labels, labelColumn = "label", classes, groupColumns, heads, spurious, core, out;
    bool discover = false;
    int top = 3;
};

ojson reportJson(const AccuracyReport& r) {
    ojson j;
    j["accuracy"] = r.accuracy;
    j["worst_group"] = r.worstGroup;
    j["worst_group_name"] = r.worstGroupName;
    ojson groups = ojson::object();
    for (const auto& [g, acc] : r.groupAccuracy) groups[g] = {{"accuracy", acc}, {"count", r.groupCount.at(g)}};
    j["groups"] = groups;
    return j;
}

void runAblate(const AblateOptions& o) {
    OpenCache c = openCache(o.cache, true);
    CacheOptions refOptions = o.cache;
    refOptions.cache = o.reference;
    OpenCache ref = openCache(refOptions, false);
    std::vector<std::string> classNames;
    const ZeroShotClassifier classifier = loadClassifier(o.classes, *c.text, &classNames);
    const RowLabels labels = loadRowLabels(o.labels, o.labelColumn, o.groupColumns, o.classes, classNames, c.cache->paths());
    std::vector<Component> components;
    ojson j;
    if (o.discover) {
        if (o.spurious.empty() || o.core.empty()) throw InputError("--discover-spurious", "needs --spurious and --core descriptions");
        const auto found = discoverSpuriousHeads(*ref.view, c.text->encode(textsOrFile(o.spurious)), c.text->encode(textsOrFile(o.core)), o.top);
        ojson d = ojson::array();
        for (const ComponentScore& s : found) {
            components.push_back(s.component);
            d.push_back({{"head", s.component.name()}, {"score_difference", s.score}});
        }
        j["discovered"] = d;
    } else {
        if (o.heads.empty()) throw InputError("ablate", "give --heads L.H,... or --discover-spurious");
        components = c.view->parseList(o.heads);
    }
    const AblationResult r = runAblation(*c.view, *ref.view, classifier, labels, components);
    ojson names = ojson::array();
    for (const Component& k : r.ablated) names.push_back(k.name());
    j["ablated"] = names;
    j["before"] = reportJson(r.before);
    j["after"] = reportJson(r.after);
    j["cache"] = o.cache.cache;
    j["reference"] = o.reference;
    writeFileAtomic(o.out, j.dump(1) + "\n");
    std::printf("ablated %s (means from %s)\n", names.dump().c_str(), o.reference.c_str());
    std::printf("%-24s %9s %9s\n", "", "before", "after");
    std::printf("%-24s %8.2f%% %8.2f%%\n", "accuracy", 100 * r.before.accuracy, 100 * r.after.accuracy);
    std::printf("%-24s %8.2f%% %8.2f%%\n", "worst group", 100 * r.before.worstGroup, 100 * r.after.worstGroup);
    for (const auto& [g, acc] : r.before.groupAccuracy)
        if (!g.empty())
            std::printf("  %-22s %8.2f%% %8.2f%%  (%lld images)\n", g.c_str(), 100 * acc, 100 * r.after.groupAccuracy.at(g),
                        static_cast<long long>(r.before.groupCount.at(g)));
    std::cout << o.out << "\n";
}

// ---- align ----

struct AlignOptions {
    ModelOptions model;
    std::string clip, images, out, mode = "shared";
    double heldOut = 0.2;
    int batch = 32;
    ComponentAlignParams params;
};

void runAlign(const AlignOptions& o) {
    if (o.mode != "shared" && o.mode != "per-component") throw InputError("--mode " + o.mode, "must be shared or per-component");
    if (!(o.heldOut > 0 && o.heldOut < 1)) throw InputError("--held-out", "must be a fraction within (0, 1)");
    o.params.validate();
    const Model model = openModel(o.model);
    ModelOptions co;
    co.model = o.clip;
    co.device = o.model.device;
    const Model clip = openModel(co);
    if (!clip.isClip()) throw InputError(o.clip, "is not a CLIP model (the aligner maps into a CLIP image-embedding space)");
    const std::vector<std::string> images = listImages(o.images);
    const int64_t n = static_cast<int64_t>(images.size());
    const int64_t test = std::max<int64_t>(1, static_cast<int64_t>(n * o.heldOut));
    if (n - test < 2) throw InputError(o.images, "too few images to fit and test an aligner (" + std::to_string(n) + ")");
    at::NoGradGuard noGrad;
    std::vector<at::Tensor> terms, targets;
    std::vector<std::string> names;
    const JobContext job = interruptibleJob("align: decompose");
    for (int64_t start = 0; start < n; start += o.batch) {
        if (job.cancelled()) throw JobCancelled();
        const std::vector<std::string> chunk(images.begin() + start, images.begin() + std::min<int64_t>(n, start + o.batch));
        const Decomposition dec = decomposeImages(model, loadAndPreprocess(chunk, model.preprocess).to(model.vision.patchW.device()));
        terms.push_back(stackedTerms(dec, &names).to(at::kCPU, at::kFloat));
        targets.push_back(encodeImages(clip, loadAndPreprocess(chunk, clip.preprocess).to(clip.vision.patchW.device())).output.to(at::kCPU, at::kFloat));
        job.report({std::min<int64_t>(n, start + o.batch), n, 0, 0, "align"});
    }
    const at::Tensor x = at::cat(terms), y = at::cat(targets);
    const at::Tensor xTrain = x.narrow(0, 0, n - test), yTrain = y.narrow(0, 0, n - test);
    const at::Tensor xTest = x.narrow(0, n - test, test), yTest = y.narrow(0, n - test, test);
    Aligner shared = fitSharedAligner(xTrain.sum(1), yTrain);
    const double sharedCos = meanCosine(shared.apply(xTest.sum(1)), yTest);
    Aligner aligner = shared;
    double cosine = sharedCos;
    if (o.mode == "per-component") {
        at::GradMode::set_enabled(true);
        aligner = fitComponentAligner(xTrain, names, yTrain, o.params);
        at::GradMode::set_enabled(false);
        cosine = meanCosine(applyToTerms(aligner, xTest), yTest);
    }
    aligner.settings["clip_model"] = o.clip;
    aligner.settings["model"] = o.model.model;
    aligner.settings["held_out_images"] = std::to_string(test);
    aligner.settings["held_out_cosine"] = std::to_string(cosine);
    aligner.settings["held_out_cosine_shared"] = std::to_string(sharedCos);
    saveAligner(aligner, o.out);
    std::printf("%lld training / %lld held-out images; held-out cosine to %s: shared map %.4f", static_cast<long long>(n - test),
                static_cast<long long>(test), o.clip.c_str(), sharedCos);
    if (o.mode == "per-component") std::printf(", per-component maps %.4f", cosine);
    std::printf("\n%s\n", o.out.c_str());
}

}  // namespace

void registerAnalysis(CLI::App& app, std::vector<std::function<void()>>& actions) {
    {
        auto* cache = app.add_subcommand("cache", "Dataset caches of decompositions");
        cache->require_subcommand(1);
        auto o = std::make_shared<CacheBuildOptions>();
        auto* sub = cache->add_subcommand("build", "Decompose an image collection into a resumable .npy cache");
        addModelOptions(sub, o->model);
        sub->add_option("--images", o->images, "Image folder (recursive) or a text file listing image paths")->required();
        sub->add_option("--out", o->params.outDir, "Cache directory (an unfinished one is resumed)")->required();
        sub->add_option("--layers", o->params.layers, "all or last:K (heads of the other layers are kept summed)")->capture_default_str();
        sub->add_option("--batch", o->params.batch, "Images per chunk")->capture_default_str();
        sub->add_option("--convention", o->convention, "exact or textspan")->capture_default_str();
        sub->callback([&actions, o] { actions.push_back([o] { runCacheBuild(*o); }); });
    }
    {
        auto o = std::make_shared<TextSpanOptions>();
        auto* sub = app.add_subcommand("textspan", "Describe each head with texts from a pool (TextSpan)");
        addCacheOptions(sub, o->cache);
        sub->add_option("--texts", o->texts, "Text pool, one per line")->required();
        sub->add_option("--per-head", o->params.perHead, "Texts per head")->capture_default_str();
        sub->add_option("--rank", o->params.rank, "Project texts on the head's top-R principal directions first (0: off)")->capture_default_str();
        sub->add_option("--heads", o->heads, "Only these components (L.H,...); default every cached head");
        sub->add_option("--layers", o->layers, "Only the heads of these layers: all or last:K");
        sub->add_option("--labels", o->labels, "labels.csv: also check zero-shot accuracy with heads reduced to their text spans");
        sub->add_option("--label-column", o->labelColumn, "Column holding the class")->capture_default_str();
        sub->add_option("--classes", o->classes, "label<TAB>prompt lines for that check");
        sub->add_option("--out", o->out, "Output heads.json")->required();
        sub->callback([&actions, o] { actions.push_back([o] { runTextSpanCommand(*o); }); });
    }
    {
        auto o = std::make_shared<RankOptions>();
        auto* sub = app.add_subcommand("rank", "Rank every component by a property's score");
        addCacheOptions(sub, o->cache);
        auto* prop = sub->add_option("--property", o->property, "Property word list by name (color, shape, texture, position...)");
        auto* texts = sub->add_option("--texts", o->texts, "Property descriptions, one per line");
        prop->excludes(texts);
        sub->add_option("--out", o->out, "Output ranking.csv")->required();
        sub->callback([&actions, o] {
            if (o->property.empty() && o->texts.empty()) throw CLI::ValidationError("rank", "give --property NAME or --texts FILE");
            actions.push_back([o] { runRank(*o); });
        });
    }
    {
        auto o = std::make_shared<RetrieveOptions>();
        auto* sub = app.add_subcommand("retrieve", "Retrieve cached images by text or image, globally and through chosen heads");
        addCacheOptions(sub, o->cache);
        sub->add_option("--text", o->text, "Query text");
        sub->add_option("--image", o->image, "Query image (a cached one, or any file: decomposed with the cache's model)");
        sub->add_option("--heads", o->heads, "Restrict to these components: L.H,mlp.L,embed");
        sub->add_option("--property", o->property, "Restrict to the top heads for this property");
        sub->add_option("--top-heads", o->topHeads, "Heads taken with --property")->capture_default_str();
        sub->add_option("--top", o->top, "Results")->capture_default_str();
        sub->add_option("--out", o->out, "Output results.json")->required();
        sub->callback([&actions, o] { actions.push_back([o] { runRetrieve(*o); }); });
    }
    {
        auto o = std::make_shared<HeatmapOptions>();
        auto* sub = app.add_subcommand("heatmap", "Heatmap of a text over an image (PNG overlay with colorbar, raw .npy)");
        addHeatmapModelOptions(sub, o->model);
        sub->add_option("--image", o->image, "Image file")->required();
        sub->add_option("--text", o->text, "Text")->required();
        sub->add_option("--method", o->method, "decomposition, surgery, raw, attention or rollout")->capture_default_str();
        sub->add_option("--heads", o->heads, "Decomposition restricted to these heads: L.H,...");
        sub->add_option("--opacity", o->opacity, "Overlay opacity 0..1")->capture_default_str();
        sub->add_option("--colormap", o->colormap, "viridis, inferno, jet or turbo")->capture_default_str();
        sub->add_option("--scale", o->scale, "Enlarge the model's crop by this factor (default: to ~384 px)");
        sub->add_option("--out", o->out, "Output PNG")->required();
        sub->add_option("--npy", o->npy, "Also write the patch-level map [gh, gw] as .npy");
        sub->callback([&actions, o] { actions.push_back([o] { runHeatmap(*o); }); });
    }
    {
        auto o = std::make_shared<EvaluateHeatmapsOptions>();
        auto* sub = app.add_subcommand("evaluate-heatmaps", "Localisation of heatmap methods against ground-truth masks");
        addHeatmapModelOptions(sub, o->model);
        sub->add_option("--dataset", o->dataset, "Folder with labels.csv (columns file, mask, ...) as shapes generate writes")->required();
        sub->add_option("--methods", o->methods, "all, or a comma list of methods")->capture_default_str();
        sub->add_option("--prompt", o->prompt, "Text per image; {column} takes a labels.csv value")->capture_default_str();
        sub->add_option("--heads", o->heads, "Decomposition restricted to these heads: L.H,...");
        sub->add_option("--count", o->count, "Only the first N images (0: all)")->capture_default_str();
        sub->add_option("--out", o->out, "Also write the table as CSV");
        sub->callback([&actions, o] { actions.push_back([o] { runEvaluateHeatmaps(*o); }); });
    }
    {
        auto o = std::make_shared<AblateOptions>();
        auto* sub = app.add_subcommand("ablate", "Mean-ablate components and report zero-shot accuracy per group, before and after");
        addCacheOptions(sub, o->cache);
        sub->add_option("--reference", o->reference, "Cache of another split of the same model: the means come from it")->required();
        sub->add_option("--labels", o->labels, "labels.csv with a file column (paths relative to its folder)")->required();
        sub->add_option("--label-column", o->labelColumn, "Column holding the class")->capture_default_str();
        sub->add_option("--classes", o->classes, "label<TAB>prompt lines (several prompts may vote for a label)")->required();
        sub->add_option("--group-columns", o->groupColumns, "Columns whose values form the groups, e.g. group,background");
        sub->add_option("--heads", o->heads, "Components to ablate: L.H,mlp.L,...");
        sub->add_flag("--discover-spurious", o->discover, "Ablate the top heads by score(spurious) - score(core) on the reference");
        sub->add_option("--spurious", o->spurious, "Spurious descriptions: a file or a comma list");
        sub->add_option("--core", o->core, "Core descriptions: a file or a comma list");
        sub->add_option("--top", o->top, "Heads discovered")->capture_default_str();
        sub->add_option("--out", o->out, "Output result.json")->required();
        sub->callback([&actions, o] { actions.push_back([o] { runAblate(*o); }); });
    }
    {
        auto o = std::make_shared<AlignOptions>();
        auto* sub = app.add_subcommand("align", "Fit a map of a non-CLIP model's representation into a CLIP model's space");
        addModelOptions(sub, o->model);
        sub->add_option("--clip", o->clip, "CLIP model whose image embeddings are the target")->required();
        sub->add_option("--images", o->images, "Image folder or list (the last --held-out fraction is held out)")->required();
        sub->add_option("--out", o->out, "Output aligner.safetensors")->required();
        sub->add_option("--mode", o->mode, "shared (closed form) or per-component (trained)")->capture_default_str();
        sub->add_option("--held-out", o->heldOut, "Fraction of images held out")->capture_default_str();
        sub->add_option("--batch", o->batch, "Images per forward pass")->capture_default_str()->check(CLI::Range(1, 4096));
        sub->add_option("--steps", o->params.steps, "Per-component: optimisation steps")->capture_default_str();
        sub->add_option("--lr", o->params.learningRate, "Per-component: Adam learning rate")->capture_default_str();
        sub->add_option("--ortho", o->params.orthoPenalty, "Per-component: orthonormality penalty lambda")->capture_default_str();
        sub->callback([&actions, o] { actions.push_back([o] { runAlign(*o); }); });
    }
}

}  // namespace vitscope::cli
