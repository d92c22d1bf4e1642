#include "analysis_commands.h"

// vitscope-cli commands over dataset caches: cache build, textspan, rank, retrieve, ablate.
#include "analysis/ablation.h"
#include "analysis/cache.h"
#include "analysis/cache_shards.h"
#include "analysis/components.h"
#include "analysis/labels.h"
#include "analysis/property.h"
#include "analysis/retrieval.h"
#include "analysis/session.h"
#include "analysis/text_embed.h"
#include "analysis/textspan.h"
#include "cli_common.h"
#include "error.h"
#include "image/preprocess.h"
#include "io/file_util.h"
#include "model/forward.h"
#include "resources.h"

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

CacheSession openCache(const CacheOptions& o, bool needText) {
    CacheSession s = openCacheSession({o.cache, o.aligner, o.clip.model, o.clip.tokenizer, o.clip.device}, needText);
    // On stdout: stderr holds only errors (one line each).
    std::cout << "cache " << o.cache << ": terms computed in " << s.cache->precision() << "\n";
    return s;
}

std::vector<std::string> groupColumnList(const std::string& arg) { return arg.empty() ? std::vector<std::string>{} : textsOrFile(arg); }

// ---- cache build ----

struct CacheBuildOptions {
    ModelOptions model;
    std::string images;
    CacheBuildParams params;
    std::string convention = "exact";
    std::string fromBlock;  // vit-decompose's detach block "S,B"
    std::string shard;  // "I/N"; empty: from the launcher's environment, if any
    int numShards = 0;  // with JOB_COMPLETION_INDEX
};

void runCacheBuild(CacheBuildOptions o) {
    o.params.convention = parseConvention(o.convention);
    if (!o.fromBlock.empty()) parseFromBlock(o.fromBlock, &o.params.fromStage, &o.params.fromBlock);
    // Recorded so that later analyses find the model from any working directory.
    std::error_code ec;
    o.params.modelSpec = fs::exists(o.model.model, ec) ? fs::absolute(o.model.model).lexically_normal().string() : o.model.model;
    o.params.validate();
    const ShardSpec shard = resolveShard(o.shard, o.numShards);
    const std::vector<std::string> images = listImages(o.images);
    const Model model = openModel(o.model);
    std::string where = o.params.outDir;
    CacheBuildResult r;
    if (shard.defined()) {
        const auto [from, to] = shardRange(static_cast<int64_t>(images.size()), o.params.batch, shard.index, shard.count);
        where += "/shards/" + shardName(shard.index, shard.count);
        std::cout << "shard " << shard.index << " of " << shard.count << " (from " << shard.source << "): inputs " << from << ".."
                  << to << " of " << images.size() << "\n";
        r = buildCacheShard(model, images, o.params, shard, interruptibleJob("cache"));
    } else {
        r = buildCache(model, images, o.params, interruptibleJob("cache"));
    }
    if (r.cancelled) {
        std::cout << "interrupted: " << r.rows << " images cached in " << where << "; run the same command to resume\n";
        return;
    }
    std::cout << r.rows << " images cached in " << where << " (" << r.skipped << " skipped, see skipped.txt)";
    if (r.imagesPerSecond > 0) std::cout << ", " << static_cast<int>(r.imagesPerSecond * 10) / 10.0 << " images/s";
    if (r.resumed && r.imagesPerSecond == 0) std::cout << ", already complete";
    std::cout << "\n";
}

// ---- textspan ----

struct TextSpanOptions {
    CacheOptions cache;
    std::string images, convention = "textspan";  // --images: build (or resume) the cache first
    std::string texts, labels, labelColumn = "label", classes, layers;
    TextSpanParams params;
    std::string heads;
    std::string out;
};

void runTextSpanCommand(const TextSpanOptions& o) {
    if (!o.images.empty()) {
        // The reference protocol in one command: the images decomposed under the textspan
        // convention (the reference's data) into --cache, resumed when it exists, then TextSpan.
        if (o.cache.clip.model.empty()) throw InputError("--images", "needs --model (the model whose heads are described)");
        CacheBuildOptions b;
        b.model = o.cache.clip;
        b.images = o.images;
        b.params.outDir = o.cache.cache;
        b.convention = o.convention;
        runCacheBuild(b);
    }
    CacheSession c = openCache(o.cache, true);
    const std::vector<std::string> pool = readTextList(o.texts);
    o.params.validate(static_cast<int>(c.view->embedDim()), static_cast<int64_t>(pool.size()));
    if (!o.heads.empty() && !o.layers.empty()) throw InputError("textspan", "give --heads or --layers, not both");
    std::vector<Component> components = o.heads.empty() ? std::vector<Component>{} : c.view->parseList(o.heads);
    if (o.heads.empty()) {
        // SigLIP: the pooling heads first (the reference's compute_siglip.py describes those).
        if (o.layers.empty()) components = c.view->poolHeads();
        // The reference describes the heads of the last 4 layers (those the cache holds).
        const std::string layers = !o.layers.empty() ? o.layers : "last:" + std::to_string(std::min(4, c.cache->numLayers()));
        for (int l : parseLayerSelection(layers, c.cache->numLayers())) {
            const auto& cached = c.cache->cachedLayers();
            if (o.layers.empty() && std::find(cached.begin(), cached.end(), l) == cached.end()) continue;
            c.cache->cachedIndex(l);  // the layer must be in the cache
            for (int h = 0; h < c.cache->headsIn(l); ++h) components.push_back({Component::Kind::Head, l, h});
        }
        if (components.empty()) throw InputError(o.cache.cache, "holds none of the last 4 layers' heads; pass --layers or --heads");
    }
    const at::Tensor embeddings = c.text->encode(pool);
    const std::vector<HeadTexts> result = runTextSpan(*c.view, embeddings, o.params, components, interruptibleJob("textspan heads"));
    ojson j;
    j["cache"] = o.cache.cache;
    j["texts"] = o.texts;
    j["per_head"] = o.params.perHead;
    j["rank"] = o.params.rank;
    if (c.cache->numPoolHeads() > 0) j["pool_rank"] = o.params.poolRank > 0 ? o.params.poolRank : c.view->embedDim();
    j["convention"] = conventionName(c.cache->convention());
    j["algorithm"] = "reference greedy (clip_text_span replace_with_iterative_removal): texts projected onto the head's "
                     "top-rank right singular vectors of its uncentred terms, scored by the variance of the centred terms "
                     "along the deflated, unnormalised text";
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
        const RowLabels labels = loadRowLabels(o.labels, o.labelColumn, {}, o.classes, classNames, c.cache->paths());
        std::vector<Component> comps;
        std::vector<at::Tensor> bases;
        for (const HeadTexts& h : result) {
            comps.push_back(h.component);
            bases.push_back(h.basis);
        }
        const SpanAccuracy acc = textSpanAccuracy(*c.view, comps, bases, classifier, labels);
        j["accuracy_check"] = {{"labels", o.labels},
                               {"label_column", o.labelColumn},
                               {"protocol", "reference: heads of earlier layers mean-ablated, described heads replaced by "
                                            "mean + projection onto their picks' span, MLPs kept"},
                               {"earlier_heads_mean_ablated", acc.earlierHeads},
                               {"earlier_layers_not_cached", acc.earlierLayersUncached},
                               {"original", acc.original},
                               {"earlier_heads_mean_ablated_accuracy", acc.earlierMeanAblated},
                               {"described_heads_replaced_by_text_span", acc.textSpan},
                               {"described_heads_mean_ablated", acc.meanAblated}};
        std::printf("zero-shot accuracy on %s: original %.2f%%; %d earlier heads mean-ablated %.2f%%; described heads then "
                    "reduced to their text spans %.2f%% (mean-ablated instead %.2f%%)\n",
                    o.labelColumn.c_str(), 100 * acc.original, acc.earlierHeads, 100 * acc.earlierMeanAblated, 100 * acc.textSpan,
                    100 * acc.meanAblated);
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

void runRank(const RankOptions& o) {
    CacheSession c = openCache(o.cache, true);
    const std::string file = o.texts.empty() ? propertyWordList(o.property, *c.clip) : o.texts;
    const std::vector<std::string> words = readTextList(file);
    // Every component, and SigLIP's pooling heads too (each is scored on its own).
    std::vector<Component> components = c.view->allComponents();
    for (const Component& p : c.view->poolHeads()) components.push_back(p);
    const std::vector<ComponentScore> scores =
        rankComponents(*c.view, c.text->encodeDescriptions(words), components, interruptibleJob("rank components"));
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
    int topComponents = 3;
    bool headsOnly = false;
    std::string versus;  // image queries with --property: the other properties (default: every other list)
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
    CacheSession c = openCache(o.cache, !o.text.empty() || !o.property.empty());
    std::vector<Component> set;
    if (!o.heads.empty()) set = c.view->parseList(o.heads);
    std::string ranking;
    if (!o.property.empty()) {
        if (o.topComponents < 1) throw InputError("--top-components", "must be at least 1");
        const at::Tensor target = c.text->encodeDescriptions(readTextList(propertyWordList(o.property, *c.clip)));
        if (o.text.empty()) {
            // Image queries: the reference's differential ranking against the other properties.
            std::vector<std::string> others;
            if (!o.versus.empty()) others = textsOrFile(o.versus);
            else
                for (const std::string& p : propertyNames(*c.clip))
                    if (p != o.property) others.push_back(p);
            std::vector<at::Tensor> otherTexts;
            for (const std::string& p : others) otherTexts.push_back(c.text->encodeDescriptions(readTextList(propertyWordList(p, *c.clip))));
            const std::vector<ComponentScore> scores = rankDifferential(*c.view, target, otherTexts, o.headsOnly, JobContext{});
            for (int i = 0; i < o.topComponents && i < static_cast<int>(scores.size()); ++i)
                set.push_back(scores[static_cast<std::size_t>(i)].component);
            ranking = "differential: score for " + o.property + " minus max(0, best score among " + std::to_string(others.size()) +
                      " other properties)";
        } else {
            set = topComponents(*c.view, target, o.topComponents, o.headsOnly);
            ranking = "score for " + o.property;
        }
        ranking += o.headsOnly ? ", heads only" : ", over heads, MLPs and the embedding";
    }
    ojson j;
    j["cache"] = o.cache.cache;
    j["query"] = o.text.empty() ? ojson{{"image", o.image}} : ojson{{"text", o.text}};
    ojson names = ojson::array();
    for (const Component& k : set) names.push_back(k.name());
    j["components"] = names;
    if (!ranking.empty()) j["component_ranking"] = ranking;
    if (!o.image.empty() && !set.empty()) j["component_space"] = "model (summed decomposed terms, as the reference)";
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
            const Model model = openModelOn(c.cache->modelSpec(), o.cache.clip.device, {}, {}, c.cache->precision());
            c.cache->checkModel(model);
            at::NoGradGuard noGrad;
            const Decomposition dec = decomposeImages(model, loadAndPreprocess({o.image}, model.preprocess), c.cache->decomposeOptions());
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

// ---- ablate ----

struct AblateOptions {
    CacheOptions cache;
    std::string reference, labels, labelColumn = "label", classes, groupColumns, heads, spurious, core, out;
    bool discover = false, headsOnly = false;
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
    CacheSession c = openCache(o.cache, true);
    CacheOptions refOptions = o.cache;
    refOptions.cache = o.reference;
    CacheSession ref = openCache(refOptions, false);
    std::vector<std::string> classNames;
    const ZeroShotClassifier classifier = loadClassifier(o.classes, *c.text, &classNames);
    const RowLabels labels = loadRowLabels(o.labels, o.labelColumn, groupColumnList(o.groupColumns), o.classes, classNames, c.cache->paths());
    std::vector<Component> components;
    ojson j;
    if (o.discover) {
        if (o.spurious.empty() || o.core.empty()) throw InputError("--discover-spurious", "needs --spurious and --core descriptions");
        const auto found = discoverSpuriousComponents(*ref.view, c.text->encodeDescriptions(textsOrFile(o.spurious)),
                                                      c.text->encodeDescriptions(textsOrFile(o.core)), o.top, o.headsOnly);
        ojson d = ojson::array();
        for (const ComponentScore& s : found) {
            components.push_back(s.component);
            d.push_back({{"component", s.component.name()}, {"score_difference", s.score}});
        }
        j["discovered"] = d;
        j["discovered_among"] = o.headsOnly ? "heads" : "heads, MLPs and the embedding";
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
        sub->add_option("--loaders", o->params.loaders, "Image-decoding threads (0: 1 on the CPU, one per core up to 16 on a GPU)")->capture_default_str();
        sub->add_option("--convention", o->convention, "exact, textspan or vit-decompose (Swin / MaxViT)")->capture_default_str();
        sub->add_option("--from-block", o->fromBlock, "With vit-decompose: its detach block STAGE,BLOCK (default 0,0)");
        sub->add_option("--shard", o->shard,
                        "Build shard I/N (0-based) into OUT/shards/I-of-N; without it, a Slurm array task, Kubernetes indexed "
                        "job (with --num-shards) or RANK / WORLD_SIZE process builds its shard");
        sub->add_option("--num-shards", o->numShards, "Shards of a Kubernetes indexed job (JOB_COMPLETION_INDEX)");
        sub->callback([&actions, o] { actions.push_back([o] { runCacheBuild(*o); }); });
    }
    {
        auto dir = std::make_shared<std::string>();
        auto count = std::make_shared<int>(0);
        auto* sub = app.get_subcommand("cache")->add_subcommand("merge", "Merge a sharded build (CACHE/shards) into CACHE, byte-identical to one build");
        sub->add_option("cache", *dir, "The --out of the shard builds")->required();
        sub->add_option("--shards", *count, "Shard count to merge when several were started (default: the only one)");
        sub->callback([&actions, dir, count] {
            actions.push_back([dir, count] {
                const MergeResult r = mergeCacheShards(*dir, *count);
                if (r.alreadyMerged) {
                    std::cout << *dir << " is already merged from " << r.shards << " shards (" << r.rows << " rows)\n";
                    return;
                }
                std::cout << "merged " << r.shards << " shards into " << *dir << ": " << r.rows << " rows, " << r.skipped << " skipped, "
                          << r.bytes / 1e6 << " MB of arrays in " << r.seconds << " s ("
                          << (r.seconds > 0 ? r.bytes / 1e9 / r.seconds : 0.0) << " GB/s)\n";
            });
        });
    }
    {
        auto dir = std::make_shared<std::string>();
        auto* sub = app.get_subcommand("cache")->add_subcommand("status", "A cache's state: complete or not, each shard's progress, missing shards");
        sub->add_option("cache", *dir, "Cache directory")->required();
        sub->callback([&actions, dir] {
            actions.push_back([dir] {
                const CacheStatus st = cacheStatus(*dir);
                std::cout << *dir << ": " << (st.complete ? "complete cache, " + std::to_string(st.rows) + " rows" : std::string("no merged cache yet"))
                          << "\n";
                for (const ShardState& s : st.shards)
                    std::cout << "  shard " << shardName(s.index, s.count) << ": inputs " << s.from << ".." << s.to << ", "
                              << (s.complete ? "complete" : s.started ? "in progress" : "not started") << ", " << s.done << " of "
                              << s.to - s.from << " inputs done, " << s.rows << " rows" << (s.launcher.empty() ? "" : " (" + s.launcher + ")")
                              << "\n";
                for (const std::string& m : st.missing) std::cout << "  shard " << m << ": missing\n";
            });
        });
    }
    {
        auto o = std::make_shared<TextSpanOptions>();
        auto* sub = app.add_subcommand("textspan", "Describe each head with texts from a pool (TextSpan)");
        addCacheOptions(sub, o->cache);
        sub->add_option("--images", o->images,
                        "Build (or resume) --cache from these images with --model first: the reference protocol in one command");
        sub->add_option("--convention", o->convention, "With --images: the cache's convention (textspan: the reference's data)")
            ->capture_default_str();
        sub->add_option("--texts", o->texts, "Text pool, one per line")->required();
        sub->add_option("--per-head", o->params.perHead, "Texts per head (the reference's default)")->capture_default_str();
        sub->add_option("--rank", o->params.rank,
                        "Project texts onto the head's top-R right singular vectors of its uncentred terms first, as the "
                        "reference does (R >= embedding dim: no projection)")->capture_default_str();
        sub->add_option("--pool-rank", o->params.poolRank,
                        "SigLIP's pooling heads: the rank of that projection (0: the embedding dim, no projection, as the "
                        "reference's compute_siglip.py)")->capture_default_str();
        sub->add_option("--heads", o->heads, "Only these components (L.H, pool.hK, ...); default every cached head");
        sub->add_option("--layers", o->layers, "Only the heads of these layers: all or last:K (default: the cached heads of the last 4 layers, as the reference, and SigLIP's pooling heads)");
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
        sub->add_option("--heads", o->heads, "Restrict to these components: L.H,mlp.L,embed (SigLIP: pool.hK,pool.mlp)");
        sub->add_option("--property", o->property,
                        "Restrict to the top components for this property (text queries: its score; image queries: its "
                        "score minus the best other property's, as the reference)");
        sub->add_option("--top-components,--top-heads", o->topComponents, "Components taken with --property")->capture_default_str();
        sub->add_flag("--heads-only", o->headsOnly, "Rank heads only (default: heads, MLPs and the embedding, as the reference)");
        sub->add_option("--versus", o->versus, "Image queries: the other properties (comma list or file; default every other list)");
        sub->add_option("--top", o->top, "Results")->capture_default_str();
        sub->add_option("--out", o->out, "Output results.json")->required();
        sub->callback([&actions, o] { actions.push_back([o] { runRetrieve(*o); }); });
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
        sub->add_flag("--discover-spurious", o->discover,
                      "Ablate the top components (heads, MLPs, embedding) by score(spurious) - score(core) on the reference");
        sub->add_flag("--heads-only", o->headsOnly, "Discover among heads only");
        sub->add_option("--spurious", o->spurious, "Spurious descriptions: a file or a comma list");
        sub->add_option("--core", o->core, "Core descriptions: a file or a comma list");
        sub->add_option("--top", o->top, "Components discovered")->capture_default_str();
        sub->add_option("--out", o->out, "Output result.json")->required();
        sub->callback([&actions, o] { actions.push_back([o] { runAblate(*o); }); });
    }
}

}  // namespace vitscope::cli
