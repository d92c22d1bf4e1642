#include "projection_commands.h"

#include "analysis/cache_files.h"
#include "analysis/head_matching.h"
#include "analysis/projection.h"
#include "analysis/projection_points.h"
#include "analysis/session.h"
#include "cli_common.h"
#include "error.h"
#include "io/file_util.h"
#include "io/tensor_io.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

namespace fs = std::filesystem;

namespace vitscope::cli {

namespace {

using ojson = nlohmann::ordered_json;

// ---- project ----

struct ProjectOptions {
    std::string cache, aligner, clipModel, tokenizer, device = "auto";
    std::string method, component, points = "images", out;
    uint64_t seed = 0;
    int directions = 3;  // head-directions: per head
    std::vector<std::string> textX, textY;
};

// The aligner of a non-CLIP cache: --aligner, else the one beside the cache's model (if any).
std::string alignerFor(const std::string& cacheDir, const std::string& given) {
    if (!given.empty()) return given;
    const DatasetCache cache(cacheDir);
    return cache.modelSpec().empty() ? std::string() : alignerBesideModel(cache.modelSpec());
}

void checkProjectOptions(const ProjectOptions& o) {
    if (o.points != "images" && o.points != "heads" && o.points != "head-directions")
        throw InputError("--points", "'" + o.points + "': expected images, heads or head-directions");
    if (o.points != "head-directions" && o.directions != 3) throw InputError("--directions", "only with --points head-directions");
    const bool axes = o.method == "text-axes";
    if (!axes) parseLayoutMethod(o.method);
    if (axes && (o.textX.size() != 2 || o.textY.size() != 2))
        throw InputError("--method text-axes", "needs --text-x \"A\" \"B\" and --text-y \"C\" \"D\"");
    if (!axes && (!o.textX.empty() || !o.textY.empty())) throw InputError("--text-x", "only with --method text-axes");
}

Layout projectLayout(const ProjectOptions& o, const CacheSession& c, const std::vector<Component>& comps) {
    const bool heads = o.points == "heads", directions = o.points == "head-directions";
    if (directions) {
        const int64_t n = static_cast<int64_t>(comps.empty() ? c.view->heads().size() : comps.size()) * o.directions;
        const bool axes = o.method == "text-axes";
        const LayoutMethod method = axes ? LayoutMethod::Pca : parseLayoutMethod(o.method);
        if (method == LayoutMethod::Tsne) TsneParams{}.validate(n);
        if (method == LayoutMethod::Umap) UmapParams{}.validate(n);
        const JobContext job = interruptibleJob("project");
        const PointMatrix d = headDirectionPoints(*c.view, comps, o.directions, job.staged("points"));
        if (axes) return directionTextAxesLayout(d, c.text->encode({o.textX[0], o.textX[1], o.textY[0], o.textY[1]}));
        return layoutPoints(d, method, o.seed, job);
    }
    if (o.method == "text-axes") {
        const at::Tensor texts = c.text->encode({o.textX[0], o.textX[1], o.textY[0], o.textY[1]});
        return heads ? headTextAxesLayout(*c.view, texts, comps) : textAxesLayout(*c.view, texts, comps);
    }
    // Refused before the points are read (and a progress line drawn).
    const int64_t n = heads ? static_cast<int64_t>(comps.empty() ? c.view->heads().size() : comps.size()) : c.view->size();
    const LayoutMethod method = parseLayoutMethod(o.method);
    if (method == LayoutMethod::Tsne) TsneParams{}.validate(n);
    if (method == LayoutMethod::Umap) UmapParams{}.validate(n);
    const JobContext job = interruptibleJob("project");
    const PointMatrix x = heads ? headPoints(*c.view, comps, job.staged("points")) : imagePoints(*c.view, comps, job.staged("points"));
    return layoutPoints(x, method, o.seed, job);
}

void runProject(const ProjectOptions& o) {
    checkProjectOptions(o);
    const bool axes = o.method == "text-axes";
    CacheSession c = openCacheSession({o.cache, alignerFor(o.cache, o.aligner), o.clipModel, o.tokenizer, o.device}, axes);
    const std::vector<Component> comps = o.component.empty() ? std::vector<Component>{} : c.view->parseList(o.component);
    const auto start = std::chrono::steady_clock::now();
    const Layout y = projectLayout(o, c, comps);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!o.out.empty() && fs::path(o.out).has_parent_path()) ensureDir(fs::path(o.out).parent_path().string());
    writeLayoutNpy(o.out, y);
    std::printf("%s layout of %lld %s (%s) in %.2f s: %s\n", o.method.c_str(), static_cast<long long>(y.rows()), o.points.c_str(),
                o.component.empty() ? (o.points == "images" ? "whole representation" : "every cached head") : o.component.c_str(), seconds,
                o.out.c_str());
}

// ---- compare ----

struct CompareOptions {
    std::vector<std::string> models;
    std::string cacheA, cacheB, alignerA, alignerB, textsA, textsB, device = "cpu", out;
    HeadMatchParams params;
};

// A model's cache opened in CLIP space: checked against the model, through its aligner unless it is CLIP.
CacheSession openCompared(const std::string& modelSpec, const std::string& cacheDir, const std::string& aligner, const char* flag,
                          const std::string& device) {
    const Model model = openModelOn(modelSpec, device);
    CacheSession c = openCacheSession({cacheDir, std::string(), std::string(), std::string(), device}, false);
    c.cache->checkModel(model);
    if (model.isClip()) return c;
    const std::string path = aligner.empty() ? alignerBesideModel(modelSpec) : aligner;
    if (path.empty())
        throw InputError(modelSpec, std::string("is not a CLIP model and has no aligner.safetensors beside it; pass ") + flag +
                                        " (vitscope-cli align) so that its heads are compared in CLIP space");
    return openCacheSession({cacheDir, path, std::string(), std::string(), device}, false);
}

// A textspan heads.json: each head's texts, in `heads`' order (empty where it describes none).
std::vector<std::vector<std::string>> headTexts(const std::string& path, const std::vector<Component>& heads) {
    const nlohmann::json j = cache_files::readJson(path);
    std::map<std::string, std::vector<std::string>> byName;
    if (!j.contains("heads") || !j["heads"].is_array()) throw FormatError(path, "is not a textspan heads.json (no \"heads\" list)");
    for (const auto& h : j["heads"]) {
        std::vector<std::string>& texts = byName[h.value("head", std::string())];
        for (const auto& t : h.value("texts", nlohmann::json::array())) texts.push_back(t.value("text", std::string()));
    }
    std::vector<std::vector<std::string>> out;
    for (const Component& c : heads) out.push_back(byName.count(c.name()) ? byName[c.name()] : std::vector<std::string>{});
    return out;
}

void writeMatrix(const std::string& path, const std::vector<double>& values, std::size_t rows, std::size_t cols) {
    writeNpyTensor(path, at::tensor(values, at::kDouble).reshape({static_cast<int64_t>(rows), static_cast<int64_t>(cols)}).to(at::kFloat));
}

std::string names(const std::vector<Component>& heads) {
    std::string s;
    for (const Component& c : heads) s += c.name() + "\n";
    return s;
}

ojson summaryJson(const CompareOptions& o, const HeadMatching& m) {
    ojson j;
    j["model_a"] = o.models[0], j["model_b"] = o.models[1];
    j["cache_a"] = o.cacheA, j["cache_b"] = o.cacheB;
    j["method"] = o.params.toString();
    j["images"] = m.rowsA.size();
    j["heads_a"] = m.headsA.size(), j["heads_b"] = m.headsB.size();
    double sum = 0;
    int same = 0;
    for (const HeadPair& p : m.assignment) {
        sum += p.cka;
        same += m.headsA[static_cast<std::size_t>(p.a)].name() == m.headsB[static_cast<std::size_t>(p.b)].name();
    }
    j["assigned_pairs"] = m.assignment.size();
    j["mean_assigned_cka"] = m.assignment.empty() ? 0.0 : sum / static_cast<double>(m.assignment.size());
    j["pairs_matched_to_the_same_position"] = same;
    double best = 0;
    for (double v : m.cka) best = std::max(best, v);
    j["max_cka"] = best;
    return j;
}

void runCompare(const CompareOptions& o) {
    if (o.models.size() != 2) throw InputError("--model", "give it twice: --model A --model B (got " + std::to_string(o.models.size()) + ")");
    o.params.validate();
    const CacheSession a = openCompared(o.models[0], o.cacheA, o.alignerA, "--aligner-a", o.device);
    const CacheSession b = openCompared(o.models[1], o.cacheB, o.alignerB, "--aligner-b", o.device);
    const HeadMatching m = matchHeads(*a.view, *b.view, o.params, interruptibleJob("compare"));
    ensureDir(o.out);
    writeMatrix((fs::path(o.out) / "cka.npy").string(), m.cka, m.headsA.size(), m.headsB.size());
    std::ostringstream lines;
    for (const HeadPair& p : m.assignment)
        lines << m.headsA[static_cast<std::size_t>(p.a)].name() << " " << m.headsB[static_cast<std::size_t>(p.b)].name() << " " << p.cka << "\n";
    writeFileAtomic((fs::path(o.out) / "assignment.txt").string(), lines.str());
    writeFileAtomic((fs::path(o.out) / "heads_a.txt").string(), names(m.headsA));
    writeFileAtomic((fs::path(o.out) / "heads_b.txt").string(), names(m.headsB));
    ojson summary = summaryJson(o, m);
    if (!o.textsA.empty() || !o.textsB.empty()) {
        if (o.textsA.empty() || o.textsB.empty()) throw InputError(o.textsA.empty() ? "--texts-b" : "--texts-a", "needs the other model's heads.json too");
        writeMatrix((fs::path(o.out) / "text_overlap.npy").string(), textOverlap(headTexts(o.textsA, m.headsA), headTexts(o.textsB, m.headsB)),
                    m.headsA.size(), m.headsB.size());
        summary["text_overlap"] = "text_overlap.npy: Jaccard overlap of the heads' TextSpan texts (NaN: a head without texts)";
    }
    writeFileAtomic((fs::path(o.out) / "summary.json").string(), summary.dump(1) + "\n");
    std::printf("%zu x %zu heads over %zu images: mean CKA of the %zu assigned pairs %.4f (%d at the same position): %s\n", m.headsA.size(),
                m.headsB.size(), m.rowsA.size(), m.assignment.size(), summary["mean_assigned_cka"].get<double>(),
                summary["pairs_matched_to_the_same_position"].get<int>(), o.out.c_str());
}

void addProject(CLI::App& app, std::vector<std::function<void()>>& actions) {
    auto o = std::make_shared<ProjectOptions>();
    auto* sub = app.add_subcommand("project", "2-D layout of a cache's images or heads (PCA, UMAP, t-SNE, text axes) as [N, 2] float32 .npy");
    sub->add_option("--cache", o->cache, "Dataset cache directory (vitscope-cli cache build)")->required();
    sub->add_option("--method", o->method, "pca, umap, tsne or text-axes")->required();
    sub->add_option("--component", o->component,
                    "Images: this component's contribution (L.H, mlp.L, embed), or the sum over a comma list; heads: these "
                    "components only; text axes: scores through these (default: the whole representation / every cached head)");
    sub->add_option("--points", o->points, "images (one row per cached image, in the cache's order), heads (one row per head, "
                                           "components.txt order: its mean contribution direction) or head-directions (per head "
                                           "its top --directions principal directions, TextSpan's span: row h * K + k)")->capture_default_str();
    sub->add_option("--directions", o->directions, "head-directions: principal directions per head")->capture_default_str();
    sub->add_option("--seed", o->seed, "Seed of UMAP / t-SNE (the same seed gives the same layout)")->capture_default_str();
    sub->add_option("--text-x", o->textX, "Text axes: x = score(A) - score(B)")->expected(2);
    sub->add_option("--text-y", o->textY, "Text axes: y = score(C) - score(D)")->expected(2);
    sub->add_option("--aligner", o->aligner, "Aligner into CLIP space (default: aligner.safetensors beside the cache's model, if any)");
    sub->add_option("--model", o->clipModel, "CLIP model for the texts (default: the cache's model, or the aligner's CLIP model)");
    sub->add_option("--tokenizer", o->tokenizer, "Tokenizer of that model");
    sub->add_option("--device", o->device, "cpu, cuda or auto")->capture_default_str();
    sub->add_option("--out", o->out, "Output layout.npy")->required();
    sub->callback([&actions, o] { actions.push_back([o] { runProject(*o); }); });
}

void addCompare(CLI::App& app, std::vector<std::function<void()>>& actions) {
    auto o = std::make_shared<CompareOptions>();
    auto* sub = app.add_subcommand("compare", "Match the heads of two models over the same images: linear CKA in CLIP space, Hungarian assignment");
    sub->add_option("--model", o->models, "The two models: --model A --model B")->required();
    sub->add_option("--cache-a", o->cacheA, "Cache of model A (vitscope-cli cache build)")->required();
    sub->add_option("--cache-b", o->cacheB, "Cache of model B over the same images")->required();
    sub->add_option("--aligner-a", o->alignerA, "Aligner of A into CLIP space (default: aligner.safetensors beside a non-CLIP model)");
    sub->add_option("--aligner-b", o->alignerB, "Aligner of B into CLIP space (the same default)");
    sub->add_option("--texts-a", o->textsA, "A's heads.json (vitscope-cli textspan): also writes the heads' text overlap");
    sub->add_option("--texts-b", o->textsB, "B's heads.json");
    sub->add_option("--max-images", o->params.maxImages, "CKA over at most this many images, evenly spaced (0: all)")->capture_default_str();
    sub->add_option("--device", o->device, "cpu, cuda or auto")->capture_default_str();
    sub->add_option("--out", o->out, "Output folder: cka.npy, assignment.txt, heads_a.txt, heads_b.txt, summary.json")->required();
    sub->callback([&actions, o] { actions.push_back([o] { runCompare(*o); }); });
}

}  // namespace

void registerProjectionCommands(CLI::App& app, std::vector<std::function<void()>>& actions) {
    addProject(app, actions);
    addCompare(app, actions);
}

}  // namespace vitscope::cli
