// vitscope-cli evaluate waterbirds: the Waterbirds benchmark from the dataset's own files, with
// TextSpan's and vit-decompose's protocols (core/analysis/waterbirds.h defines both). The images'
// decompositions go into OUT/cache, which resumes an interrupted run image batch by batch.
#include "waterbirds_command.h"

#include "analysis/cache.h"
#include "analysis/cache_shards.h"
#include "analysis/components.h"
#include "analysis/labels.h"
#include "analysis/session.h"
#include "analysis/text_embed.h"
#include "analysis/waterbirds.h"
#include "benchmark_progress.h"
#include "cli_common.h"
#include "error.h"
#include "io/file_util.h"
#include "resources.h"

#include <nlohmann/json.hpp>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;

namespace vitscope::cli {

namespace {

using ojson = nlohmann::ordered_json;

struct WaterbirdsOptions {
    ModelOptions model;
    std::string data, protocol = "textspan", heads, classes, templates, spurious, core, out, aligner, clip;
    std::string shard;  // "I/N"; empty: from a Slurm job array's environment, if any
    int64_t limit = 0;
    int top = 10, batch = 32;
};

// vit-decompose's word lists (zs_spur_correlation.py: spur_feats_desc, core_feats_desc).
const char* kSpuriousWords = "water,ocean,lake,sky,land,forest,trees,bamboo,leaves";
const char* kCoreWords = "bird,finch,hummingbird,crow,sparrow,swan,albatross,pelican";

// Texts as the references embed them: template ensembles for BPE models when templates are
// given, each text as it is otherwise (word-vocabulary models). [T, E] unit rows.
at::Tensor embedTexts(const TextEncoder& text, const std::vector<std::string>& texts,
                      const std::vector<std::string>& templates) {
    if (text.wordVocabulary() || templates.empty()) return text.encode(texts);
    return text.encodeEnsemble(texts, templates);
}

// --classes: two class names in label order (landbird, waterbird; each a template ensemble), or
// "label<TAB>prompt" lines whose label is 0 / 1 or the class name (several prompts may vote for
// one class). Default: the references' class names.
ZeroShotClassifier waterbirdsClassifier(const std::string& file, const TextEncoder& text,
                                        const std::vector<std::string>& templates) {
    const std::vector<std::string> lines =
        file.empty() ? std::vector<std::string>{"landbird", "waterbird"} : readTextList(file);
    ZeroShotClassifier c;
    const bool tabbed = lines.front().find('\t') != std::string::npos;
    if (!tabbed) {
        if (lines.size() != 2)
            throw FormatError(file, "holds " + std::to_string(lines.size()) +
                                        " class names; Waterbirds has two (landbird, waterbird)");
        c.prompts = embedTexts(text, lines, templates);
        c.promptClass = {0, 1};
        return c;
    }
    std::vector<std::string> prompts;
    for (const std::string& line : lines) {
        const std::size_t tab = line.find('\t');
        if (tab == std::string::npos)
            throw FormatError(file, "line '" + line + "' is not label<TAB>prompt like the lines before it");
        const std::string label = line.substr(0, tab);
        if (label == "0" || label == "landbird")
            c.promptClass.push_back(0);
        else if (label == "1" || label == "waterbird")
            c.promptClass.push_back(1);
        else
            throw FormatError(file, "label '" + label + "' is not 0, 1, landbird or waterbird");
        prompts.push_back(line.substr(tab + 1));
    }
    c.prompts = text.encode(prompts);
    return c;
}

// --heads: a file or an inline list of heads, as L.H or as the reference writes them, (L, H);
// separated by commas, spaces or lines; '#' starts a comment line in a file.
std::vector<std::string> headList(const std::string& arg) {
    std::error_code ec;
    std::string text;
    if (fs::is_regular_file(arg, ec))
        for (const std::string& line : readTextList(arg)) text += line + "\n";
    else
        text = arg;
    text = std::regex_replace(text, std::regex(R"(\(\s*(\d+)\s*,\s*(\d+)\s*\))"), "$1.$2");
    for (char& c : text)
        if (c == ',') c = ' ';
    std::istringstream in(text);
    std::vector<std::string> out;
    for (std::string name; in >> name;) out.push_back(name);
    if (out.empty()) throw InputError("--heads " + arg, "lists no head (L.H or (L, H))");
    return out;
}

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& x : v) s += x + "\n";
    return s;
}

// The data's identity for the record: metadata.csv's SHA-256, or the folder listing's.
std::string dataHash(const std::string& root, const std::vector<WaterbirdsSample>& samples) {
    const fs::path meta = fs::path(root) / "metadata.csv";
    std::error_code ec;
    if (fs::is_regular_file(meta, ec)) return fileSha256(meta.string());
    std::string listing;
    for (const WaterbirdsSample& s : samples) listing += s.path + "\t" + std::to_string(fs::file_size(s.path)) + "\n";
    return sha256Hex(listing);
}

ojson accuracyJson(const std::string& setting, const WaterbirdsAccuracy& a) {
    ojson j{{"setting", setting}};
    for (std::size_t g = 0; g < 4; ++g) j[waterbirdsGroupNames()[g]] = 100 * a.group[g];
    j["full"] = 100 * a.full;
    j["worst_group"] = 100 * a.worstGroup;
    j["average_group"] = 100 * a.averageGroup;
    return j;
}

void writeTables(const std::string& out, WaterbirdsProtocol p, const WaterbirdsResult& r, const ojson& extra) {
    const bool ts = p == WaterbirdsProtocol::TextSpan;
    const ojson rows = ojson::array(
        {accuracyJson(ts ? "Baseline" : "before", r.before), accuracyJson(ts ? "Replaced" : "after", r.after)});
    std::string md =
        "| setting | landbird on land | landbird on water | waterbird on land | waterbird on water | full | worst "
        "group | average group |\n"
        "|---|---|---|---|---|---|---|---|\n";
    std::string csv =
        "setting,landbird_on_land,landbird_on_water,waterbird_on_land,waterbird_on_water,full,worst_group,average_"
        "group\n";
    char buf[256];
    for (const auto& row : rows) {
        const std::string s = row["setting"].get<std::string>();
        const double v[7] = {row["landbird_on_land"],
                             row["landbird_on_water"],
                             row["waterbird_on_land"],
                             row["waterbird_on_water"],
                             row["full"],
                             row["worst_group"],
                             row["average_group"]};
        std::snprintf(buf, sizeof buf, "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", s.c_str(), v[0],
                      v[1], v[2], v[3], v[4], v[5], v[6]);
        md += buf;
        std::snprintf(buf, sizeof buf, "%s,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f\n", s.c_str(), v[0], v[1], v[2], v[3],
                      v[4], v[5], v[6]);
        csv += buf;
    }
    ojson counts = ojson::object();
    for (std::size_t g = 0; g < 4; ++g) counts[waterbirdsGroupNames()[g]] = r.before.count[g];
    ojson results{
        {"benchmark", "waterbirds"}, {"protocol", waterbirdsProtocolName(p)}, {"rows", rows}, {"group_counts", counts}};
    for (const auto& [k, v] : extra.items()) results[k] = v;
    writeFileAtomic(out + "/results.json", results.dump(2) + "\n");
    std::string countLine = "images per group:";
    for (std::size_t g = 0; g < 4; ++g)
        countLine += " " + waterbirdsGroupNames()[g] + " " + std::to_string(r.before.count[g]) + (g < 3 ? "," : "");
    writeFileAtomic(out + "/results.md",
                    std::string("Waterbirds, protocol ") + waterbirdsProtocolName(p) +
                        " (accuracy in percent; full = all images, average group = unweighted mean of the groups)\n\n" +
                        md + "\n" + countLine + "\n");
    writeFileAtomic(out + "/results.csv", csv);
}

// The texts a run needs, embedded as the references embed them.
struct WaterbirdsTexts {
    ZeroShotClassifier classifier;
    at::Tensor spurious, core;  // [k, E] unit rows
    std::vector<std::string> spuriousWords, coreWords, heads;
    std::string templatesUsed = "none (each text as it is)";
};

// The words and the head list: what the options say, before any model is opened.
WaterbirdsTexts readTextOptions(const WaterbirdsOptions& o) {
    WaterbirdsTexts t;
    t.spuriousWords = textsOrFile(o.spurious.empty() ? kSpuriousWords : o.spurious);
    t.coreWords = textsOrFile(o.core.empty() ? kCoreWords : o.core);
    if (!o.heads.empty()) t.heads = headList(o.heads);
    return t;
}

// The head list against the model, before any image is decomposed (names other than L.H are
// checked on the cache).
void checkHeads(const WaterbirdsOptions& o, const Model& model, const std::vector<std::string>& heads) {
    for (const std::string& h : heads) {
        int layer = -1, head = -1;
        char tail = 0;
        if (std::sscanf(h.c_str(), "%d.%d%c", &layer, &head, &tail) != 2) continue;
        if (layer < 0 || layer >= model.vision.layers() || head < 0 || head >= model.vision.headsIn(layer))
            throw InputError("--heads " + o.heads, "names head " + h + ", which " + o.model.model + " lacks (" +
                                                       std::to_string(model.vision.layers()) + " layers x " +
                                                       std::to_string(model.vision.heads()) + " heads)");
    }
}

// The texts embedded by the CLIP model's text side: the words, and the class prompts unless a
// linear head classifies (non-CLIP models).
void embedTextOptions(const WaterbirdsOptions& o, const TextEncoder& text, bool withClasses, WaterbirdsTexts& t) {
    std::vector<std::string> templates;
    if (!o.templates.empty()) {
        if (text.wordVocabulary())
            throw InputError("--templates " + o.templates,
                             "cannot be read by a word-vocabulary model: give prompts in --classes");
        templates = readTextList(o.templates), t.templatesUsed = o.templates;
    } else if (!text.wordVocabulary() && !dataFile("resources/templates/openai-imagenet.txt").empty()) {
        templates = readTextList(dataFile("resources/templates/openai-imagenet.txt"));
        t.templatesUsed = "resources/templates/openai-imagenet.txt";
    }
    if (withClasses) t.classifier = waterbirdsClassifier(o.classes, text, templates);
    t.spurious = embedTexts(text, t.spuriousWords, templates);
    t.core = embedTexts(text, t.coreWords, templates);
}

// Images decomposed into OUT/FOLDER (resumed where an earlier run stopped): the whole cache, or
// with `shard` that shard's part (OUT/FOLDER/shards/I-of-N, returned); a run without a shard
// first gathers the shards a job array left (building what they did not finish) into the cache.
// Throws JobCancelled when interrupted, FormatError naming an image that could not be read.
std::string decomposeSamples(const WaterbirdsOptions& o, const Model& model,
                             const std::vector<WaterbirdsSample>& samples, Convention convention,
                             const std::string& folder, const ShardSpec& shard) {
    CacheBuildParams cp;
    cp.outDir = o.out + "/" + folder;
    cp.modelSpec = o.model.model;
    cp.convention = convention;
    cp.batch = o.batch;
    cp.validate();
    const std::string where =
        shard.defined() ? cp.outDir + "/shards/" + shardName(shard.index, shard.count) : cp.outDir;
    std::error_code ec;
    if (fs::is_regular_file(where + "/progress.json", ec)) {
        const nlohmann::json j = nlohmann::json::parse(readFileText(where + "/progress.json"), nullptr, false);
        if (!j.is_discarded() && j.contains("next_input"))
            std::printf("resuming: %lld of %zu images already decomposed in %s\n",
                        static_cast<long long>(j["next_input"].get<int64_t>()), samples.size(), where.c_str());
    }
    std::fflush(stdout);
    std::vector<std::string> paths;
    for (const WaterbirdsSample& s : samples) paths.push_back(s.path);
    const JobContext job = interruptibleJob(folder == "cache" ? "waterbirds" : "waterbirds, train split");
    CacheBuildResult built;
    if (shard.defined()) {
        built = buildCacheShard(model, paths, cp, shard, job);
    } else {
        const GatherResult g = gatherCacheShards(model, paths, cp, job);
        if (g.gathered)
            std::printf("gathered %d shards into %s (%d finished by this run)\n", g.shards, cp.outDir.c_str(), g.built);
        built.cancelled = g.cancelled;
        if (!g.cancelled) built = buildCache(model, paths, cp, job);
    }
    if (built.cancelled) {
        std::printf("interrupted: %lld of %zu images decomposed in %s; run the same command to resume\n",
                    static_cast<long long>(built.rows), samples.size(), where.c_str());
        throw JobCancelled();
    }
    if (built.skipped > 0) {
        const std::string skipped = readFileText(where + "/skipped.txt");
        throw FormatError(skipped.substr(0, skipped.find('\t')), "could not be read as an image (" +
                                                                     std::to_string(built.skipped) + " skipped, see " +
                                                                     where + "/skipped.txt)");
    }
    return where;
}

void writeRecord(const WaterbirdsOptions& o, const Model& model, ojson record, const std::string& layout,
                 const ojson& extra) {
    const bool ts = record["protocol"] == "textspan";
    const std::string date = utcNow();
    record["vitscope_version"] = "0.1.0";
    record["model"] = o.model.model;
    record["weights"] = model.info.weightsPath;
    record["precision"] = precisionName(model.precision);
    record["data"] = o.data;
    record["classes_file"] = o.classes.empty() ? "default: landbird, waterbird" : o.classes;
    record["heads_source"] = extra["heads_source"];
    record["ablated"] = extra["ablated"];
    record["evaluated_split"] = layout;
    record["means"] = "over the evaluated images (as both references)";
    record["protocol_definition"] =
        ts ? "clip_text_span compute_use_specific_heads.py: Replaced mean-ablates the listed heads, every head outside "
             "the last 4 layers, "
             "every MLP and the embedding; textspan-convention terms"
           : "vit-decompose zs_spur_correlation.py: top components by variance_attributed(spurious) - "
             "variance_attributed(core) "
             "mean-ablated; ranked among every head, MLP and the embedding of vitscope's exact decomposition";
    record["metrics"] =
        "accuracy in percent; full = all images; worst_group = min over the four groups; average_group = their "
        "unweighted mean";
    record["date"] = date;
    writeFileAtomic(o.out + "/record.json", record.dump(2) + "\n");
}

// y and place of every cached row, found by path among the samples.
void rowLabels(const DatasetCache& cache, const std::vector<WaterbirdsSample>& samples, std::vector<int>* y,
               std::vector<int>* place) {
    std::map<std::string, const WaterbirdsSample*> byPath;
    for (const WaterbirdsSample& s : samples) byPath[s.path] = &s;
    for (const std::string& p : cache.paths()) {
        const auto it = byPath.find(p);
        if (it == byPath.end()) throw InputError(cache.dir(), "holds image " + p + ", which the data does not list");
        y->push_back(it->second->y), place->push_back(it->second->place);
    }
}

// vit-decompose's head for a non-CLIP model, trained on the decomposed train split (split 0).
LinearHead trainHead(const std::string& cacheDir, const std::vector<WaterbirdsSample>& train, ojson* record) {
    const DatasetCache cache(cacheDir);
    std::vector<int> y, place;
    rowLabels(cache, train, &y, &place);
    const at::Tensor features = cache.output().to(at::kFloat);
    const LinearHead head = trainLinearHead(features, y, 2, {});
    const double accuracy = waterbirdsAccuracy(head.predict(features), y, place).full;
    (*record)["classifier"] =
        "linear head (vit-decompose get_head): trained on split 0, " + std::to_string(train.size()) +
        " images in file order, 10 epochs, batches of 64, Adam lr 1e-3, weight decay 1e-6, seed 0; train accuracy " +
        std::to_string(100 * accuracy) + "%";
    return head;
}

void runEvaluateWaterbirds(const WaterbirdsOptions& o) {
    WaterbirdsParams params;
    params.protocol = parseWaterbirdsProtocol(o.protocol);
    params.top = o.top;
    const bool ts = params.protocol == WaterbirdsProtocol::TextSpan, aligned = !o.aligner.empty();
    if (o.limit < 0) throw InputError("--limit", "must be 0 (every image) or positive");
    if (!o.heads.empty() && !ts)
        throw InputError("--heads " + o.heads,
                         "is textspan's head list; vit-decompose ranks its own components (drop --heads)");
    if (aligned && ts)
        throw InputError(
            "--aligner",
            "the textspan protocol is CLIP's (compute_use_specific_heads.py); use --protocol vit-decompose");
    if (aligned && !o.classes.empty())
        throw InputError("--classes " + o.classes, "is for CLIP models; a non-CLIP model's linear head classifies y");
    if (!aligned && !o.clip.empty())
        throw InputError("--clip " + o.clip, "is the text side of a non-CLIP model; give it with --aligner");
    std::string layout;
    std::vector<WaterbirdsSample> samples = readWaterbirds(o.data, 2, &layout), train;
    if (o.limit > 0 && static_cast<int64_t>(samples.size()) > o.limit)
        samples.resize(static_cast<std::size_t>(o.limit));
    if (aligned) {
        if (layout.find("metadata.csv") == std::string::npos)
            throw InputError("--aligner", "a non-CLIP model's linear head trains on metadata.csv's split 0; " + o.data +
                                              " has class folders");
        train = readWaterbirdsMetadata(o.data, 0);
    }
    const ShardSpec shard = resolveShard(o.shard, 0);
    const Model model = openModel(o.model);
    WaterbirdsTexts texts = readTextOptions(o);
    if (!aligned) embedTextOptions(o, TextEncoder(model), true, texts);
    checkHeads(o, model, texts.heads);
    ensureDir(o.out);
    std::printf("hashing the model and %s for the record\n", o.data.c_str());
    const Convention convention = ts ? Convention::TextSpan : Convention::Exact;
    ojson key{{"benchmark", "waterbirds"},
              {"protocol", waterbirdsProtocolName(params.protocol)},
              {"layout", layout},
              {"images", samples.size()},
              {"model_sha256", fileSha256(model.info.weightsPath)},
              {"data_sha256", dataHash(o.data, samples)},
              {"classes_sha256", sha256Hex(o.classes.empty() ? "landbird\nwaterbird\n" : readFileText(o.classes))},
              {"templates", o.templates.empty() ? "default" : o.templates},
              {"heads", joined(texts.heads)},
              {"top", o.top},
              {"spurious", joined(texts.spuriousWords)},
              {"core", joined(texts.coreWords)},
              {"convention", conventionName(convention)},
              {"aligner_sha256", aligned ? fileSha256(o.aligner) : ""},
              {"clip", o.clip}};
    const std::string progressName = shard.defined() ? shardName(shard.index, shard.count) : std::string();
    if (fs::exists(o.out + "/progress" + (progressName.empty() ? "" : "-" + progressName) + ".jsonl"))
        std::printf("resuming the run in %s\n", o.out.c_str());
    const ImageProgress progress(o.out, key, progressName);  // refuses a folder of other settings
    const std::string cacheDir = decomposeSamples(o, model, samples, convention, "cache", shard);
    const std::string trainDir =
        aligned ? decomposeSamples(o, model, train, Convention::Exact, "cache-train", shard) : "";
    if (shard.defined()) {  // the tables come from a run without --shard once the shards are done
        std::printf("shard done: %s; run the command without --shard to gather the shards into the tables\n",
                    progress.file().c_str());
        return;
    }
    ojson record = key;
    record["classifier"] = "zero-shot: the class prompts' template ensembles";
    std::optional<LinearHead> head;
    if (aligned) head = trainHead(trainDir, train, &record);
    const CacheSession session = openCacheSession({cacheDir, o.aligner, o.clip, "", o.model.device}, aligned);
    if (aligned) embedTextOptions(o, *session.text, false, texts);
    std::vector<int> y, place;
    rowLabels(*session.cache, samples, &y, &place);
    std::string headNames;
    for (const std::string& h : texts.heads) headNames += (headNames.empty() ? "" : ",") + h;
    if (!headNames.empty()) params.heads = session.view->parseList(headNames);
    const WaterbirdsResult r = runWaterbirds(*session.view, texts.classifier, y, place, params, texts.spurious,
                                             texts.core, head ? &*head : nullptr);
    ojson ablated = ojson::array(), ranked = ojson::array();
    for (const Component& c : r.ablated) ablated.push_back(c.name());
    for (const ComponentScore& s : r.ranked)
        ranked.push_back({{"component", s.component.name()}, {"score_difference", s.score}});
    const std::string discovered =
        "discovered by vitscope: top heads of the last 4 layers by score(spurious) - score(core) on the evaluated "
        "images";
    const ojson extra{{"ablated", ablated},
                      {"ranked", ranked},
                      {"heads_source", ts ? (r.headsDiscovered ? discovered : "--heads " + o.heads)
                                          : "none (vit-decompose ranks every component)"}};
    writeTables(o.out, params.protocol, r, extra);
    record["templates_used"] = texts.templatesUsed;
    writeRecord(o, model, record, layout, extra);
    std::cout << readFileText(o.out + "/results.md") << o.out << "/results.json\n";
}

}  // namespace

void registerWaterbirds(CLI::App* evaluate, std::vector<std::function<void()>>& actions) {
    auto o = std::make_shared<WaterbirdsOptions>();
    auto* sub = evaluate->add_subcommand("waterbirds",
                                         "Waterbirds (group-DRO metadata.csv or vit-decompose's class folders): group "
                                         "accuracies before and after mean-ablating spurious components");
    addModelOptions(sub, o->model);
    sub->add_option("--data", o->data,
                    "Folder with metadata.csv (img_id, img_filename, y, split, place, place_filename; the test split "
                    "is evaluated) or vit-decompose's class folders")
        ->required();
    sub->add_option("--protocol", o->protocol,
                    "textspan (compute_use_specific_heads.py) or vit-decompose (zs_spur_correlation.py)")
        ->capture_default_str();
    sub->add_option(
        "--heads", o->heads,
        "textspan: the heads to replace, a file of L.H (or a comma list); default: vitscope's discovery (recorded)");
    sub->add_option("--aligner", o->aligner,
                    "vit-decompose on a non-CLIP model: its aligner into CLIP space (ranking); a linear head trained "
                    "on split 0 classifies");
    sub->add_option("--clip", o->clip, "With --aligner: the CLIP model for the words (default: the aligner's)");
    sub->add_option("--top", o->top, "vit-decompose: components ablated; textspan: heads discovered without --heads")
        ->capture_default_str();
    sub->add_option("--classes", o->classes,
                    "Two class names in label order, or label<TAB>prompt lines (default: landbird, waterbird)");
    sub->add_option("--templates", o->templates,
                    "Prompt templates with {} (default: resources/templates/openai-imagenet.txt for BPE models)");
    sub->add_option("--spurious", o->spurious,
                    "Spurious words, a file or a comma list (default: vit-decompose's water, ocean, ...)");
    sub->add_option("--core", o->core,
                    "Core words, a file or a comma list (default: vit-decompose's bird, finch, ...)");
    sub->add_option("--batch", o->batch, "Images per forward pass")->capture_default_str()->check(CLI::Range(1, 4096));
    sub->add_option("--limit", o->limit, "Only the first N images (0: all)")->capture_default_str();
    sub->add_option("--shard", o->shard,
                    "I/N: decompose shard I of N of the images (default: a Slurm job array's task); a run without it "
                    "gathers the shards (finishing what they left) into the tables");
    sub->add_option("--out", o->out,
                    "Folder for results.json / .md / .csv, record.json, progress.jsonl and the image cache (resumed)")
        ->required();
    sub->callback([o, &actions] { actions.push_back([o] { runEvaluateWaterbirds(*o); }); });
}

}  // namespace vitscope::cli
