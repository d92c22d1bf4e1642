// vitscope-cli second-order: every neuron's second-order effect for a layer, streamed to
// OUT/effects.npy [B, neurons, E] and OUT/norms.npy [B, neurons] one batch at a time (the full
// tensor of a dataset does not fit memory: 5,000 ViT-B images x 3,072 neurons x 512 floats is 31 GB).
// The run resumes: OUT/summary.json records the settings and the images done after every batch.
#include "neuron_commands.h"

#include "analysis/cache.h"
#include "analysis/cache_shards.h"
#include "analysis/neuron_shards.h"
#include "analysis/neurons.h"
#include "analysis/heatmap.h"
#include "analysis/second_order.h"
#include "analysis/text_embed.h"
#include "benchmark_commands.h"
#include "benchmark_progress.h"
#include "heatmap_options.h"
#include "neuron_describe.h"
#include "image/codec.h"
#include "image/preprocess.h"
#include "cli_common.h"
#include "error.h"
#include "io/file_util.h"
#include "io/npy_appender.h"
#include "io/safetensors.h"
#include "io/tensor_io.h"
#include "resources.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

namespace fs = std::filesystem;

namespace vitscope::cli {

namespace {

nlohmann::json readJsonFile(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw IoError(path, "cannot be read");
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw FormatError(path, std::string("is not JSON (") + e.what() + ")");
    }
}

struct SecondOrderCliOptions {
    ModelOptions model;
    InputOptions inputs;
    std::string out, convention = "reference";
    int layer = -1;
    double coefficient = 100.0;
    bool coefficientGiven = false;
    std::string shard;  // "I/N"; empty: a Slurm job array's task, if any
    double mapsBudgetGb = 1.0;  // SecondOrderSettings::cacheBytes
};

// What makes two runs the same: resuming is allowed only into the output of this key.
nlohmann::ordered_json runKey(const SecondOrderCliOptions& o, const Model& model, int64_t images) {
    nlohmann::ordered_json key;
    key["model"] = modelFingerprint(model);
    key["layer"] = o.layer;
    key["convention"] = o.convention;
    key["coefficient"] = o.coefficient;
    std::string inputs;
    if (!o.inputs.pixels.empty()) {
        inputs = "pixels:" + fs::absolute(o.inputs.pixels).lexically_normal().string() + ":" + fileSha256(o.inputs.pixels);
    } else {
        for (const std::string& p : o.inputs.images) inputs += fs::absolute(p).lexically_normal().string() + "\n";
    }
    key["inputs"] = sha256Hex(inputs);
    key["images"] = images;
    return key;
}

// Rows [from, to) of the inputs as a run of its own in `dir` (summary.json holds `key` and the
// rows done: it resumes, and refuses another run's folder). False when interrupted.
bool computeRange(const SecondOrderLens& lens, const Model& model, const Inputs& inputs, const SecondOrderCliOptions& o, int64_t from,
                  int64_t to, const std::string& dir, const nlohmann::ordered_json& key) {
    const int64_t n = to - from, M = lens.neurons(), E = model.vision.embedDim();
    ensureDir(dir);
    const std::string summaryPath = (fs::path(dir) / "summary.json").string();
    int64_t done = 0;
    std::error_code ec;
    if (fs::exists(summaryPath, ec)) {
        const nlohmann::json old = readJsonFile(summaryPath);
        if (!old.is_object() || !old.contains("key") || old["key"] != nlohmann::json(key))
            throw InputError(dir, "holds the output of another second-order run (model, layer, convention or inputs differ); choose another --out");
        try {
            done = old.value("images_done", int64_t(0));
        } catch (const nlohmann::json::exception&) {
            throw FormatError(summaryPath, "records no image count");
        }
        if (done < 0 || done > n) throw FormatError(summaryPath, "records an impossible image count");
        if (done == n) {
            std::cout << dir << " already holds this run's " << n << " images\n";
            return true;
        }
        std::cout << "resuming after " << done << " of " << n << " images in " << dir << "\n";
    }
    NpyAppender effects((fs::path(dir) / "effects.npy").string(), DType::F32, {M, E}, done);
    NpyAppender norms((fs::path(dir) / "norms.npy").string(), DType::F32, {M}, done);
    NpyAppender outputs((fs::path(dir) / "output.npy").string(), DType::F32, {E}, done);
    if (!o.inputs.images.empty()) {  // the images in row order, for retrieval and the neurons' top images
        std::string list;
        for (int64_t i = from; i < to; ++i) list += fs::absolute(o.inputs.images[static_cast<std::size_t>(i)]).lexically_normal().string() + "\n";
        writeFileAtomic((fs::path(dir) / "paths.txt").string(), list);
    }
    nlohmann::ordered_json summary;
    summary["key"] = key;
    summary["model_path"] = model.info.weightsPath;
    summary["layer"] = o.layer;
    summary["convention"] = neuronConventionName(lens.convention());
    summary["coefficient"] = lens.convention() == NeuronConvention::Reference ? nlohmann::json(o.coefficient) : nlohmann::json();
    summary["neurons"] = M;
    summary["embed_dim"] = E;
    summary["images"] = n;
    summary["effects_shape"] = {n, M, E};
    auto save = [&](int64_t rows) {
        effects.finish(rows);
        norms.finish(rows);
        outputs.finish(rows);
        summary["images_done"] = rows;
        writeFileAtomic(summaryPath, summary.dump(2) + "\n");
    };
    save(done);  // (a run of no rows, an empty shard, is finished as it starts)
    const JobContext job = interruptibleJob("second-order effects");
    job.report({done, n, 0, 0, {}});
    double seconds = 0;  // this invocation's time per batch: reading the images, the forward and the effects
    int64_t computed = 0;
    for (int64_t start = done; start < n; start += o.inputs.batch) {
        if (job.cancelled()) {
            save(start);
            std::cout << "interrupted after " << start << " of " << n << " images; run the same command to resume\n";
            return false;
        }
        const int64_t count = std::min<int64_t>(o.inputs.batch, n - start);
        const auto t0 = std::chrono::steady_clock::now();
        const SecondOrderEffects r = lens.compute(inputs.batch(from + start, count).to(model.vision.device()));
        (void)r.effects.sum().item<float>();  // (synchronises a GPU before the clock is read)
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        computed += count;
        summary["seconds_per_image"] = seconds / static_cast<double>(computed);
        effects.append(r.effects.to(at::kCPU, at::kFloat));
        norms.append(r.norms.to(at::kCPU, at::kFloat));
        outputs.append(r.output.to(at::kCPU, at::kFloat));
        save(start + count);
        job.report({start + count, n, 0, 0, {}});
    }
    std::cout << summary.dump() << "\n";
    return true;
}

// Shards cut the inputs at multiples of this many images, whatever --batch each task uses.
constexpr int kShardChunk = 64;

// The shard count of OUT/shards/I-of-N folders (0: none); InputError when they disagree.
int shardCountIn(const std::string& dir) {
    int count = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        const std::size_t of = name.find("-of-");
        if (!e.is_directory() || of == std::string::npos) continue;
        const int n = std::atoi(name.c_str() + of + 4);
        if (n < 1 || (count != 0 && n != count)) throw InputError(dir, "holds shards of different counts (" + name + "); remove the stray ones");
        count = n;
    }
    return count;
}

// The shards' files one after another into OUT (they are finished runs of consecutive rows).
void mergeShards(const std::string& out, int count, int64_t rows) {
    std::vector<std::string> dirs;
    for (int i = 0; i < count; ++i) dirs.push_back((fs::path(out) / "shards" / shardName(i, count)).string());
    for (const char* name : {"effects.npy", "norms.npy", "output.npy"}) mergeArray(dirs, name, (fs::path(out) / name).string(), rows);
    const std::string paths = concatenated(dirs, "paths.txt");
    if (!paths.empty()) writeFileAtomic((fs::path(out) / "paths.txt").string(), paths);
}

void runSecondOrder(const SecondOrderCliOptions& o) {
    const Model model = openModel(o.model);
    SecondOrderSettings s;
    s.layer = o.layer;
    s.convention = parseNeuronConvention(o.convention);
    s.coefficient = o.coefficient;
    if (!(o.mapsBudgetGb >= 0)) throw InputError("--maps-budget", "must be 0 or more GB");
    s.cacheBytes = static_cast<int64_t>(o.mapsBudgetGb * 1e9);
    if (o.coefficientGiven && s.convention == NeuronConvention::Exact)
        throw InputError("--coefficient", "scales the reference convention only; the exact convention stays in output units");
    const ShardSpec shard = resolveShard(o.shard, 0);
    const SecondOrderLens lens(model, s);
    const Inputs inputs(model, o.inputs);
    const int64_t n = inputs.count();
    const nlohmann::ordered_json key = runKey(o, model, n);
    auto shardKey = [&](int i, int count) {
        nlohmann::ordered_json k = key;
        k["shard"] = shardName(i, count);
        return k;
    };
    if (shard.defined()) {  // one task of a sharded run: its rows into OUT/shards/I-of-N
        const auto [from, to] = shardRange(n, kShardChunk, shard.index, shard.count);
        computeRange(lens, model, inputs, o, from, to, (fs::path(o.out) / "shards" / shardName(shard.index, shard.count)).string(),
                     shardKey(shard.index, shard.count));
        return;
    }
    const std::string shards = (fs::path(o.out) / "shards").string();
    const int count = shardCountIn(shards);
    if (count == 0) {
        computeRange(lens, model, inputs, o, 0, n, o.out, key);
        return;
    }
    // After the shards: finish what they left (unfinished or never started), then merge.
    const std::string summaryPath = (fs::path(o.out) / "summary.json").string();
    std::error_code ec;
    const nlohmann::json merged = fs::exists(summaryPath, ec) ? readJsonFile(summaryPath) : nlohmann::json::object();
    if (merged.is_object() && merged.contains("images_done") && merged["images_done"] == nlohmann::json(n) &&
        merged.value("key", nlohmann::json()) == nlohmann::json(key)) {
        std::cout << o.out << " already holds this run's " << n << " images\n";
        return;
    }
    for (int i = 0; i < count; ++i) {
        const auto [from, to] = shardRange(n, kShardChunk, i, count);
        if (!computeRange(lens, model, inputs, o, from, to, (fs::path(shards) / shardName(i, count)).string(), shardKey(i, count))) return;
    }
    mergeShards(o.out, count, n);
    nlohmann::ordered_json summary = readJsonFile((fs::path(shards) / shardName(0, count) / "summary.json").string());
    summary["key"] = key;
    summary["images"] = n;
    summary["images_done"] = n;
    summary["effects_shape"] = {n, lens.neurons(), model.vision.embedDim()};
    summary["merged_shards"] = count;
    summary.erase("seconds_per_image");
    writeFileAtomic(summaryPath, summary.dump(2) + "\n");
    std::cout << "merged " << count << " shards: " << summary.dump() << "\n";
}

struct DescribeOptions {
    ModelOptions model;
    std::string effects, summary, texts, out;
    int topK = 0, components = 32, show = 5;  // topK 0: 100 from effects, the summary's own from a summary
};

// neurons describe: compute_pcas.py + compute_sparse_decomposition.py on a finished second-order
// run's effects (memory-mapped: a dataset's tensor need not fit in memory).
// A finished second-order run (its effects memory-mapped: a dataset's tensor need not fit in memory),
// checked against the model given for its texts.
struct SecondOrderRun {
    nlohmann::json summary;
    std::unique_ptr<MappedFile> file;
    at::Tensor effects;  // [N, M, E] float32, mapped
    at::Tensor output;   // [N, E]
    std::vector<std::string> paths;  // empty for --pixels runs
    NeuronConvention convention = NeuronConvention::Reference;
    double coefficient = 100.0;
    at::Tensor total() const { return neuronTotal(output, convention, coefficient); }
};

SecondOrderRun openSecondOrderRun(const std::string& dir, const Model& model, const std::string& modelArg) {
    SecondOrderRun r;
    const std::string summaryPath = (fs::path(dir) / "summary.json").string();
    try {
        std::ifstream in(summaryPath);
        if (!in) throw IoError(summaryPath, "cannot be read (is --effects a second-order output folder?)");
        r.summary = nlohmann::json::parse(in);
        if (!r.summary.contains("key") || !r.summary.contains("images") ||
            r.summary.value("images_done", int64_t(-1)) != r.summary["images"].get<int64_t>())
            throw InputError(dir, "is not a finished second-order run; run the same second-order command to finish it");
        if (r.summary["key"].value("model", std::string()) != modelFingerprint(model))
            throw InputError(dir, "holds effects of another model than " + modelArg + " (texts must be embedded by the same CLIP)");
        r.convention = parseNeuronConvention(r.summary.value("convention", std::string("reference")));
        if (r.convention == NeuronConvention::Reference) r.coefficient = r.summary.at("coefficient").get<double>();
    } catch (const nlohmann::json::exception& e) {
        throw FormatError(summaryPath, std::string("is not a second-order summary (") + e.what() + ")");
    }
    r.file = std::make_unique<MappedFile>((fs::path(dir) / "effects.npy").string());
    const NpyHeader h = parseNpyHeader(r.file->data(), r.file->size(), r.file->path());
    if (h.dtype != DType::F32 || h.shape.size() != 3 || h.shape[0] != r.summary["images"].get<int64_t>())
        throw FormatError(r.file->path(), "is not this run's effects array [images, neurons, E] float32");
    r.effects = at::from_blob(const_cast<uint8_t*>(r.file->data() + h.dataOffset), h.shape, at::kFloat);
    r.output = readNpyTensor((fs::path(dir) / "output.npy").string()).to(at::kFloat);
    if (r.output.dim() != 2 || r.output.size(0) != h.shape[0] || r.output.size(1) != h.shape[2])
        throw FormatError((fs::path(dir) / "output.npy").string(), "does not match the run's effects");
    const std::string list = (fs::path(dir) / "paths.txt").string();
    std::error_code ec;
    if (fs::exists(list, ec)) {
        r.paths = splitLines(readFileText(list));
        if (static_cast<int64_t>(r.paths.size()) != h.shape[0]) throw FormatError(list, "does not list the run's images");
    }
    return r;
}

// What describe reads: a second-order run's effects (reduced here) or a `neurons summarise` output.
struct DescribedNeurons {
    NeuronDirections dirs;
    nlohmann::json key;  // the run's
    int layer = -1;
    NeuronConvention convention = NeuronConvention::Reference;
    double coefficient = 100.0;
    std::string source;
};

DescribedNeurons describedNeurons(const DescribeOptions& o, const Model& model) {
    DescribedNeurons d;
    if (!o.effects.empty()) {
        const SecondOrderRun run = openSecondOrderRun(o.effects, model, o.model.model);
        d.dirs = neuronPrincipalDirections(run.effects, o.topK > 0 ? o.topK : 100, interruptibleJob("neurons"));
        d.key = run.summary["key"];
        d.layer = run.summary.value("layer", -1);
        d.convention = run.convention;
        d.coefficient = run.coefficient;
        d.source = o.effects;
        return d;
    }
    const DescribeSummary sum = readDescribeSummary(o.summary);
    if (sum.model != modelFingerprint(model)) throw InputError(o.summary, "summarises another model's neurons than " + o.model.model);
    d.dirs = readNeuronDirections(o.summary);
    d.key = sum.secondOrder;
    d.layer = sum.layer;
    d.convention = parseNeuronConvention(sum.convention);
    d.coefficient = sum.coefficient;
    d.source = o.summary;
    return d;
}

void runDescribe(const DescribeOptions& o) {
    if (o.effects.empty() == o.summary.empty()) throw InputError("neurons describe", "give --effects DIR or --summary DIR (one of them)");
    const Model model = openModel(o.model);
    const std::vector<std::string> texts = readTextList(o.texts);
    const DescribedNeurons described = describedNeurons(o, model);  // (an unfinished run is refused first)
    if (o.components > static_cast<int>(texts.size()))
        throw InputError("--components " + std::to_string(o.components), "is more than the " + std::to_string(texts.size()) + " texts of " + o.texts);
    const NeuronDirections& dirs = described.dirs;
    const int topK = o.summary.empty() ? (o.topK > 0 ? o.topK : 100) : readJsonFile((fs::path(o.summary) / "summary.json").string()).value("top_k", 0);
    if (!o.summary.empty() && o.topK > 0 && o.topK != topK)
        throw InputError("--top-k " + std::to_string(o.topK), o.summary + " was summarised with top-k " + std::to_string(topK) + "; run neurons summarise again");
    const TextEncoder encoder(model);
    const at::Tensor textEmbeds = encoder.encode(texts);
    if (textEmbeds.size(1) != dirs.directions.size(1)) throw InputError(o.texts, "embeds to another dimension than the effects");
    const SparseCodes codes = orthogonalMatchingPursuit(referenceTextDictionary(textEmbeds, 100.0), dirs.directions, o.components);
    ensureDir(o.out);
    const auto out = [&](const char* name) { return (fs::path(o.out) / name).string(); };
    writeNeuronDirections(o.out, dirs);
    nlohmann::ordered_json decomposition;  // the reference's json: neuron -> [(text index, coefficient, text)], largest |coefficient| first
    std::string md = "# Neurons of layer " + std::to_string(described.layer) + " (" + neuronConventionName(described.convention) +
                     " convention), largest centred effect first: principal direction of the top " + std::to_string(topK) + " images, sparse text decomposition (" +
                     std::to_string(o.components) + " texts)\n\n| neuron | largest centred norm | texts (coefficient) |\n|---|---|---|\n";
    std::vector<std::string> rows(static_cast<std::size_t>(dirs.directions.size(0)));
    for (int64_t n = 0; n < dirs.directions.size(0); ++n) {
        nlohmann::json list = nlohmann::json::array();
        std::string cell;
        const std::vector<NeuronText> top = topTexts(codes, n, texts, o.components);
        for (std::size_t j = 0; j < top.size(); ++j) {
            list.push_back({top[j].index, top[j].coefficient, top[j].text});
            if (static_cast<int>(j) < o.show) {
                char buf[64];
                std::snprintf(buf, sizeof buf, " (%+.3f)", top[j].coefficient);
                cell += (cell.empty() ? "" : "; ") + top[j].text + buf;
            }
        }
        decomposition[std::to_string(n)] = list;
        char norm[32];
        std::snprintf(norm, sizeof norm, "%.4g", dirs.topNorms[n][dirs.topNorms.size(1) - 1].item<double>());
        rows[static_cast<std::size_t>(n)] = "| " + std::to_string(n) + " | " + norm + " | " + cell + " |\n";
    }
    // neurons.md lists the neurons with the largest centred effects first.
    const at::Tensor order = dirs.topNorms.select(1, dirs.topNorms.size(1) - 1).argsort(0, true);
    for (int64_t i = 0; i < order.size(0); ++i) md += rows[static_cast<std::size_t>(order[i].item<int64_t>())];
    writeFileAtomic(out("decomposition.json"), decomposition.dump() + "\n");
    nlohmann::ordered_json summary;
    summary["second_order"] = described.key;
    summary[o.effects.empty() ? "summary" : "effects"] = fs::absolute(described.source).lexically_normal().string();
    summary["layer"] = described.layer;
    summary["convention"] = neuronConventionName(described.convention);
    summary["coefficient"] = described.coefficient;
    summary["top_k"] = topK;
    summary["components"] = o.components;
    summary["texts"] = o.texts;
    summary["texts_sha256"] = fileSha256(o.texts);
    writeFileAtomic(out("summary.json"), summary.dump(2) + "\n");
    writeFileAtomic(out("neurons.md"), md);
    std::cout << o.out << "\n";
}

struct SummariseOptions {
    ModelOptions model;
    InputOptions inputs;
    std::string out, convention = "reference";
    int layer = -1, topK = 100;
    double mapsBudgetGb = 1.0;
    std::string shard;  // "I/N"; empty: a Slurm job array's task, if any
};

// The files of a finished summary (one run's or merged shards'): the same bytes either way.
void writeSummary(const SummariseOptions& o, const Model& model, const SecondOrderSettings& s, const nlohmann::ordered_json& key, int64_t n,
                  const NeuronDirections& dirs) {
    const auto out = [&](const char* name) { return (fs::path(o.out) / name).string(); };
    writeNeuronDirections(o.out, dirs);
    if (!o.inputs.images.empty()) {
        std::string list;
        for (const std::string& p : o.inputs.images) list += fs::absolute(p).lexically_normal().string() + "\n";
        writeFileAtomic(out("paths.txt"), list);
    }
    nlohmann::ordered_json summary;
    summary["second_order"] = key;
    summary["model_path"] = model.info.weightsPath;
    summary["layer"] = o.layer;
    summary["convention"] = neuronConventionName(s.convention);
    summary["coefficient"] = s.coefficient;
    summary["top_k"] = o.topK;
    summary["images"] = n;
    summary["kept_bytes"] = dirs.directions.size(0) * std::min<int64_t>(o.topK, n) * dirs.directions.size(1) * 4;
    writeFileAtomic(out("summary.json"), summary.dump(2) + "\n");
    std::cout << summary.dump() << "\n";
}

// One task of a sharded summary: what it did, and what is left.
void runSummariseShard(const NeuronShardPlan& plan, const ShardSpec& shard) {
    const std::string name = shardName(shard.index, shard.count);
    NeuronShardOutcome r;
    try {
        r = runNeuronShard(plan, shard.index, shard.count, interruptibleJob("neuron summary"));
    } catch (const JobCancelled&) {
        std::cout << "interrupted; shard " << name << "'s finished part is in " << neuronShardState(plan.dir, shard.index, shard.count)
                  << ": run the same command to resume\n";
        return;
    }
    std::cout << "shard " << name << " (images " << r.from << ".." << r.to << ", chosen by " << shard.source << ")";
    if (r.resumedPass > 0) std::cout << ", resumed in pass " << r.resumedPass << " after " << r.resumedDone << " images";
    if (r.finished) {
        std::cout << ": both passes done; the command without --shard merges the shards once all are done\n";
        return;
    }
    std::cout << ": pass 1 done; pass 2 needs the mean of every image and waits on shard";
    for (const std::string& w : r.waitingOn) std::cout << " " << w;
    std::cout << ": run the tasks again after them (or the command without --shard, which finishes what is left)\n";
}

// neurons summarise: what `neurons describe` reads from a second-order run's effects (each neuron's
// mean, top-k images and principal direction), in two passes over the images without storing the
// [N, M, E] tensor; resumable through OUT/state.safetensors. Sharded (--shard or a Slurm job
// array): each task's part in OUT/shards/I-of-N (analysis/neuron_shards.h), then the command
// without --shard finishes what the tasks left and merges: the files equal one run's.
void runSummarise(const SummariseOptions& o) {
    const Model model = openModel(o.model);
    SecondOrderSettings s;
    s.layer = o.layer;
    s.convention = parseNeuronConvention(o.convention);
    if (!(o.mapsBudgetGb >= 0)) throw InputError("--maps-budget", "must be 0 or more GB");
    s.cacheBytes = static_cast<int64_t>(o.mapsBudgetGb * 1e9);
    const ShardSpec shard = resolveShard(o.shard, 0);
    const SecondOrderLens lens(model, s);
    const Inputs inputs(model, o.inputs);
    const int64_t n = inputs.count();
    SecondOrderCliOptions keyOptions;
    keyOptions.inputs = o.inputs;
    keyOptions.layer = o.layer;
    keyOptions.convention = neuronConventionName(s.convention);
    nlohmann::ordered_json key = runKey(keyOptions, model, n);
    key["top_k"] = o.topK;
    ensureDir(o.out);
    const auto out = [&](const char* name) { return (fs::path(o.out) / name).string(); };
    std::error_code ec;
    if (fs::exists(out("summary.json"), ec)) {
        const nlohmann::json old = readJsonFile(out("summary.json"));
        if (old.is_object() && old.value("second_order", nlohmann::json()) == nlohmann::json(key)) {
            std::cout << o.out << " already holds this summary\n";
            return;
        }
        throw InputError(o.out, "holds another neuron summary or describe output; choose another --out");
    }
    NeuronShardPlan plan;
    plan.lens = &lens;
    plan.pixels = [&](int64_t start, int64_t count) { return inputs.batch(start, count).to(model.vision.device()); };
    plan.images = n;
    plan.topK = o.topK;
    plan.batch = o.inputs.batch;
    plan.dir = out("shards");
    plan.key = key.dump();
    if (shard.defined()) {
        runSummariseShard(plan, shard);
        return;
    }
    const int shards = shardCountIn(plan.dir);
    NeuronDirections dirs;
    try {
        dirs = shards > 0 ? mergeNeuronShards(plan, shards, interruptibleJob("neuron summary"))
                          : summariseNeurons(lens, n, plan.pixels, o.topK, o.inputs.batch, interruptibleJob("neuron summary"),
                                             out("state.safetensors"), plan.key);
    } catch (const JobCancelled&) {
        std::cout << "interrupted; the finished part is in " << (shards > 0 ? plan.dir : out("state.safetensors"))
                  << ": run the same command to resume\n";
        return;
    }
    writeSummary(o, model, s, key, n, dirs);
    fs::remove(out("state.safetensors"), ec);
    if (shards > 0) {
        fs::remove_all(plan.dir, ec);  // (the shards' candidates: M x k x E floats each)
        std::cout << "merged " << shards << " shards\n";
    }
}

struct NeuronRankOptions {
    ModelOptions model;
    std::string effects, property, texts, out;
};

// neurons rank: every neuron of the run by Beyond CLIP's property score (as `rank` ranks components).
void runNeuronRank(const NeuronRankOptions& o) {
    const Model model = openModel(o.model);
    if (o.property.empty() && o.texts.empty()) throw InputError("neurons rank", "give --property NAME or --texts FILE");
    const SecondOrderRun run = openSecondOrderRun(o.effects, model, o.model.model);
    const std::string file = o.texts.empty() ? propertyWordList(o.property, model) : o.texts;
    const TextEncoder encoder(model);
    const auto ranked = rankNeurons(run.effects, run.total(), encoder.encodeDescriptions(readTextList(file)), interruptibleJob("rank neurons"));
    const int layer = run.summary.value("layer", -1);
    std::string csv = "rank,neuron,layer,score\n";
    for (std::size_t i = 0; i < ranked.size(); ++i) {
        std::ostringstream line;
        line << i + 1 << "," << ranked[i].first << "," << layer << "," << ranked[i].second << "\n";
        csv += line.str();
    }
    writeFileAtomic(o.out, csv);
    for (std::size_t i = 0; i < std::min<std::size_t>(10, ranked.size()); ++i)
        std::cout << i + 1 << ". neuron " << layer << "." << ranked[i].first << "  " << ranked[i].second << "\n";
    std::cout << o.out << "\n";
}

struct NeuronRetrieveOptions {
    ModelOptions model;
    std::string effects, text, neurons, out;
    int top = 20;
    int count = 0;  // the first N of --neurons (0: all)
};

// "3,17,40" or a file of neuron indices (one per line; a `neurons rank` CSV's second column).
std::vector<int64_t> parseNeuronList(const std::string& arg) {
    std::error_code ec;
    std::vector<std::string> items;
    if (fs::is_regular_file(arg, ec)) {
        for (const std::string& line : splitLines(readFileText(arg))) {
            if (line.empty() || line.rfind("rank,", 0) == 0) continue;
            const std::size_t comma = line.find(',');
            items.push_back(comma == std::string::npos ? line : line.substr(comma + 1, line.find(',', comma + 1) - comma - 1));
        }
    } else {
        std::stringstream ss(arg);
        std::string item;
        while (std::getline(ss, item, ',')) items.push_back(item);
    }
    std::vector<int64_t> out;
    for (const std::string& item : items) {
        std::size_t used = 0;
        long long v = -1;
        try {
            v = std::stoll(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != item.size() || v < 0) throw InputError("--neurons " + arg, "'" + item + "' is not a neuron index");
        out.push_back(v);
    }
    if (out.empty()) throw InputError("--neurons " + arg, "lists no neuron");
    return out;
}

// neurons retrieve: the run's images by a text through a set of neurons (sum of their effects'
// scores), beside global retrieval (cosine of the outputs).
void runNeuronRetrieve(const NeuronRetrieveOptions& o) {
    const Model model = openModel(o.model);
    const SecondOrderRun run = openSecondOrderRun(o.effects, model, o.model.model);
    std::vector<int64_t> neurons = parseNeuronList(o.neurons);
    if (o.count > 0 && static_cast<int>(neurons.size()) > o.count) neurons.resize(static_cast<std::size_t>(o.count));
    const TextEncoder encoder(model);
    const at::Tensor text = encoder.encode({o.text}).select(0, 0);
    const NeuronRetrievalScores scores = neuronRetrievalScores(run.effects, run.output, neurons, text);
    auto hits = [&](const at::Tensor& s) {
        nlohmann::ordered_json a = nlohmann::ordered_json::array();
        for (const auto& [row, score] : topScores(s, o.top))
            a.push_back({{"row", row},
                         {"path", run.paths.empty() ? std::string() : run.paths[static_cast<std::size_t>(row)]},
                         {"score", score}});
        return a;
    };
    nlohmann::ordered_json j;
    j["text"] = o.text;
    j["layer"] = run.summary.value("layer", -1);
    j["neurons"] = neurons;
    j["through_neurons"] = hits(scores.through);
    j["global"] = hits(scores.global);
    writeFileAtomic(o.out, j.dump(2) + "\n");
    for (const auto& h : j["through_neurons"]) std::cout << h["row"] << "  " << h["score"] << "  " << h["path"].get<std::string>() << "\n";
    std::cout << o.out << "\n";
}

struct NeuronAblateOptions {
    ModelOptions model;
    std::string describe, data, groundTruth, classes, templates, out;
    int64_t perClass = 0;
    int batch = 16;
};

// What each convention's table is (results.md, record.json).
std::string ablationRepresentation(NeuronConvention c, double coefficient) {
    if (c == NeuronConvention::Exact)
        return "exact convention: representation = the model's output, effects in output units (each neuron's centred write "
               "through every later head, biases apart), so zero ablation removes the layer's MLP write from those paths";
    char buf[96];
    std::snprintf(buf, sizeof buf, "%g", coefficient);
    return std::string("reference convention: representation = ") + buf + " * output / |output|, effects scaled alike (compute_ablations.py)";
}

// neurons ablate's tables from every image's rows (this run's and any earlier run's).
void writeNeuronAblationTables(const NeuronAblateOptions& o, const ImageProgress& progress, const SecondOrderSettings& s,
                               NeuronConvention convention, std::size_t classes, const std::string& templatesUsed, const std::string& modelHash) {
    std::vector<int64_t> correct(NeuronAblationMeter::rowNames().size(), 0);
    for (const auto& [index, rows] : progress.done())
        for (std::size_t j = 0; j < correct.size(); ++j) correct[j] += rows.at(j).get<int>();
    const double images = static_cast<double>(progress.done().size());
    const std::string conv = neuronConventionName(convention);
    nlohmann::ordered_json rowsJson = nlohmann::ordered_json::array();
    std::string md = "Neuron ablations of layer " + std::to_string(s.layer) + " (second_order_lens compute_ablations.py, " + conv +
                     " convention), " + std::to_string(progress.done().size()) + " images, " + std::to_string(classes) + " classes\n\n" +
                     ablationRepresentation(convention, s.coefficient) + ".\n\n| row | top-1 (%) |\n|---|---|\n";
    for (std::size_t j = 0; j < correct.size(); ++j) {
        const double top1 = images > 0 ? 100.0 * static_cast<double>(correct[j]) / images : 0.0;
        rowsJson.push_back({{"row", NeuronAblationMeter::rowNames()[j]}, {"images", progress.done().size()}, {"top1", top1}});
        char buf[160];
        std::snprintf(buf, sizeof buf, "| %s | %.2f |\n", NeuronAblationMeter::rowNames()[j].c_str(), top1);
        md += buf;
    }
    writeFileAtomic((fs::path(o.out) / "results.json").string(),
                    nlohmann::ordered_json{{"analysis", "neuron ablations"}, {"layer", s.layer}, {"convention", conv}, {"rows", rowsJson}}.dump(2) + "\n");
    writeFileAtomic((fs::path(o.out) / "results.md").string(), md);
    nlohmann::ordered_json record;
    record["model"] = o.model.model;
    record["model_sha256"] = modelHash;
    record["describe"] = fs::absolute(o.describe).lexically_normal().string();
    record["layer"] = s.layer;
    record["convention"] = conv;
    record["representation"] = ablationRepresentation(convention, s.coefficient);
    record["coefficient"] = convention == NeuronConvention::Reference ? nlohmann::json(s.coefficient) : nlohmann::json();
    record["data"] = o.data;
    record["ground_truth"] = o.groundTruth.empty() ? "none: class folders" : o.groundTruth;
    record["classes"] = o.classes.empty() ? "the data's class names" : o.classes;
    record["templates"] = templatesUsed;
    record["protocol"] = "second_order_lens compute_ablations.py: training means, norms and principal directions from `neurons describe`; "
                         "significant = centred norm above the neuron's k-th largest training norm; plus zero ablation";
    record["date"] = utcNow();
    writeFileAtomic((fs::path(o.out) / "record.json").string(), record.dump(2) + "\n");
    std::cout << md;
}

// neurons ablate: compute_ablations.py's table on labelled images (class folders, or ImageNet's flat
// val folder with --ground-truth), with the training statistics of a `neurons describe` output.
// Resumes: OUT/progress.jsonl keeps each evaluated image's rows.
void runNeuronAblate(const NeuronAblateOptions& o) {
    const DescribeSummary desc = readDescribeSummary(o.describe);
    if (desc.convention != "reference" && desc.convention != "exact")
        throw InputError(o.describe, "records the convention '" + desc.convention + "'; the ablation table knows reference and exact effects");
    const NeuronConvention convention = parseNeuronConvention(desc.convention);
    const Model model = openModel(o.model);
    if (desc.model != modelFingerprint(model)) throw InputError(o.describe, "describes another model's neurons than " + o.model.model);
    const NeuronDirections train = readNeuronDirections(o.describe);
    SecondOrderSettings s;
    s.layer = desc.layer;
    s.coefficient = desc.coefficient;
    s.convention = convention;
    const SecondOrderLens lens(model, s);
    if (train.mean.dim() != 2 || train.mean.size(0) != lens.neurons() || train.mean.sizes() != train.directions.sizes() ||
        train.topNorms.size(0) != lens.neurons())
        throw FormatError(o.describe, "holds statistics of another shape than the layer's neurons");
    const LabelledImages data = labelledImages(o.data, o.groundTruth, o.perClass);
    std::vector<std::string> names = data.defaultNames;
    if (!o.classes.empty()) {
        names = readTextList(o.classes);
        if (names.size() != data.classes.size())
            throw InputError(o.classes, "lists " + std::to_string(names.size()) + " classes, the data has " + std::to_string(data.classes.size()));
    }
    const TextEncoder encoder(model);
    std::string templatesUsed;
    const at::Tensor classifier = classTable(encoder, names, o.templates, &templatesUsed);
    NeuronAblationMeter meter(train, classifier, s.coefficient, convention);
    ensureDir(o.out);
    nlohmann::ordered_json key;
    key["describe"] = desc.secondOrder;
    key["train_statistics_sha256"] = fileSha256((fs::path(o.describe) / "mean.npy").string()) + fileSha256((fs::path(o.describe) / "top_norms.npy").string()) +
                                     fileSha256((fs::path(o.describe) / "directions.npy").string());
    std::string list;
    for (const std::string& p : data.images) list += fs::absolute(p).lexically_normal().string() + "\n";
    key["images_sha256"] = sha256Hex(list);
    key["classes_sha256"] = sha256Hex(nlohmann::json(names).dump());
    key["templates"] = templatesUsed;
    ImageProgress progress(o.out, key, "");
    const int64_t n = static_cast<int64_t>(data.images.size());
    std::vector<int64_t> todo;
    for (int64_t i = 0; i < n; ++i)
        if (!progress.done().count(i)) todo.push_back(i);
    if (!progress.done().empty()) std::cout << "resuming: " << progress.done().size() << " images already evaluated in " << o.out << "\n";
    const JobContext job = interruptibleJob("neuron ablations");
    job.report({n - static_cast<int64_t>(todo.size()), n, 0, 0, {}});
    for (std::size_t start = 0; start < todo.size(); start += static_cast<std::size_t>(o.batch)) {
        if (job.cancelled()) {
            std::cout << "interrupted; run the same command to resume\n";
            return;
        }
        const std::size_t end = std::min(todo.size(), start + static_cast<std::size_t>(o.batch));
        std::vector<std::string> paths;
        std::vector<int64_t> labels;
        for (std::size_t i = start; i < end; ++i) {
            paths.push_back(data.images[static_cast<std::size_t>(todo[i])]);
            labels.push_back(data.labels[static_cast<std::size_t>(todo[i])]);
        }
        const SecondOrderEffects r = lens.compute(loadAndPreprocess(paths, model.preprocess).to(model.vision.device()));
        const at::Tensor ok = meter.correct(r.effects.cpu(), r.output.cpu(), at::tensor(labels, at::kLong)).to(at::kInt);
        for (std::size_t i = start; i < end; ++i) {
            const at::Tensor row = ok.select(0, static_cast<int64_t>(i - start));
            progress.record(todo[i], std::vector<int>(row.data_ptr<int>(), row.data_ptr<int>() + row.numel()));
        }
        job.report({n - static_cast<int64_t>(todo.size() - end), n, 0, 0, {}});
    }
    writeNeuronAblationTables(o, progress, s, convention, names.size(), templatesUsed, fileSha256(model.info.weightsPath));
}

struct NeuronMapOptions {
    ModelOptions model;
    std::vector<std::string> describe;
    std::string image, text, out, npy, colormap = "viridis";
    int topNeurons = 200;
};

// neurons map: compute_segmentation.py's map of one image for a text (the neurons whose principal
// directions best match the text, their mean activation at each patch), as a PNG overlay.
void runNeuronMap(const NeuronMapOptions& o) {
    const Model model = openModel(o.model);
    const DescribedLayers described = readDescribedLayers(o.describe, model, o.model.model);
    const std::vector<int>& layers = described.layers;
    const std::vector<at::Tensor>& directions = described.directions;
    const TextEncoder encoder(model);
    const std::vector<LayerNeuron> neurons = neuronsForText(layers, directions, encoder.encode({o.text}).select(0, 0), o.topNeurons);
    const cv::Mat rgb = loadImageRgb(o.image);
    const at::Tensor pixels = preprocessImage(rgb, model.preprocess).unsqueeze(0).to(model.vision.device());
    const at::Tensor patches = neuronActivationMap(model, pixels, neurons)[0];
    const Heatmap map = heatmapFromTokenScores(patches.flatten(), 0, static_cast<int>(patches.size(0)), static_cast<int>(patches.size(1)),
                                               pixels.size(2), pixels.size(3));
    const cv::Mat crop = cropForModel(rgb, model.preprocess);
    std::string layerList;
    for (int l : layers) layerList += (layerList.empty() ? "" : ",") + std::to_string(l);
    const cv::Mat png = renderOverlay(crop, map.pixels, 0.6, parseColormap(o.colormap), std::max(1, 384 / crop.cols),
                                      "neurons (" + std::to_string(o.topNeurons) + " of layers " + layerList + "): " + o.text);
    writeImage(o.out, png);
    if (!o.npy.empty()) writeNpyTensor(o.npy, map.patches);
    std::cout << o.out << "\n";
}

}  // namespace

void registerNeuronCommands(CLI::App& app, std::vector<std::function<void()>>& actions) {
    {
        auto o = std::make_shared<DescribeOptions>();
        auto* neurons = app.add_subcommand("neurons", "What a layer's neurons do, from a second-order run's effects");
        neurons->require_subcommand(1);
        auto* sub = neurons->add_subcommand("describe", "Each neuron's principal direction (compute_pcas.py) and its sparse text "
                                                        "decomposition (compute_sparse_decomposition.py, OMP)");
        addModelOptions(sub, o->model);
        auto* effects = sub->add_option("--effects", o->effects, "A finished second-order output folder (effects.npy, summary.json)");
        auto* summarised = sub->add_option("--summary", o->summary, "Or a `neurons summarise` output folder (its directions and top images are used as they are)");
        effects->excludes(summarised);
        sub->add_option("--texts", o->texts, "Text pool, one per line (the reference uses its 30k.txt)")->required();
        sub->add_option("--top-k", o->topK, "Images per neuron for its principal direction (the reference's top_k_pca; default 100, a summary's own)")->check(CLI::Range(1, 1000000));
        sub->add_option("--components", o->components, "Texts per neuron in the sparse decomposition (the reference's components)")->capture_default_str()->check(CLI::Range(1, 100000));
        sub->add_option("--show", o->show, "Texts per neuron in neurons.md")->capture_default_str()->check(CLI::Range(1, 1000));
        sub->add_option("--out", o->out, "Output folder: directions.npy, top_norms.npy, top_images.npy, mean.npy, decomposition.json, neurons.md")->required();
        sub->callback([&actions, o] { actions.push_back([o] { runDescribe(*o); }); });
        {
            auto r = std::make_shared<SummariseOptions>();
            auto* sum = neurons->add_subcommand("summarise", "Each neuron's mean, top images and principal direction over images (what describe "
                                                             "reads from effects), in two passes without storing the effects");
            addModelOptions(sum, r->model);
            addInputOptions(sum, r->inputs);
            sum->add_option("--layer", r->layer, "The MLP block whose neurons are summarised (0-based; not the last block)")->required();
            sum->add_option("--top-k", r->topK, "Images per neuron kept for its principal direction (the reference's top_k_pca)")->capture_default_str()->check(CLI::Range(1, 100000));
            sum->add_option("--convention", r->convention, "The effects summarised: reference (second_order_lens's) or exact (vitscope's), as second-order's")
                ->capture_default_str();
            sum->add_option("--maps-budget", r->mapsBudgetGb, "GB of image-independent maps kept between batches")->capture_default_str();
            sum->add_option("--shard", r->shard,
                            "I/N: this task's part of the images into OUT/shards/I-of-N (default: a Slurm job array's task); pass 2 waits for "
                            "every shard's pass 1, and the command without --shard finishes what the tasks left and merges");
            sum->add_option("--out", r->out, "Output folder: directions.npy, top_norms.npy, top_images.npy, mean.npy, paths.txt, summary.json (resumes)")->required();
            sum->callback([&actions, r] { actions.push_back([r] { runSummarise(*r); }); });
        }
        {
            auto r = std::make_shared<NeuronRankOptions>();
            auto* rank = neurons->add_subcommand("rank", "Rank a second-order run's neurons by a property's score (Beyond CLIP's, as `rank` ranks heads)");
            addModelOptions(rank, r->model);
            rank->add_option("--effects", r->effects, "A finished second-order output folder")->required();
            auto* prop = rank->add_option("--property", r->property, "A property name (color, shape, texture, ...: the bundled word lists)");
            auto* words = rank->add_option("--texts", r->texts, "Or a file of the property's descriptions");
            prop->excludes(words);
            rank->add_option("--out", r->out, "CSV: rank,neuron,layer,score")->required();
            rank->callback([&actions, r] { actions.push_back([r] { runNeuronRank(*r); }); });
        }
        {
            auto r = std::make_shared<NeuronAblateOptions>();
            auto* abl = neurons->add_subcommand("ablate", "compute_ablations.py's table: zero-shot accuracy with a layer's neurons mean-ablated "
                                                          "(all, significant, insignificant), projected on their directions, or zero-ablated");
            addModelOptions(abl, r->model);
            abl->add_option("--describe", r->describe, "A neurons describe output of the training images (means, norms, directions)")->required();
            abl->add_option("--data", r->data, "Evaluation images: class folders (val/<class>/...), or the flat folder with --ground-truth")->required();
            abl->add_option("--ground-truth", r->groundTruth, "The flat --data folder's labels: the ImageNet devkit folder or Kaggle's LOC_val_solution.csv");
            abl->add_option("--classes", r->classes, "Class names in label order, one per line (default: the data's)");
            abl->add_option("--templates", r->templates, "Prompt templates, one per line with {} (default: the bundled ones)");
            abl->add_option("--per-class", r->perClass, "Only the first N images of each class (0: all)")->capture_default_str()->check(CLI::Range(int64_t(0), int64_t(1) << 40));
            abl->add_option("--batch", r->batch, "Images per forward pass")->capture_default_str()->check(CLI::Range(1, 4096));
            abl->add_option("--out", r->out, "Folder for results.json / .md, record.json and progress.jsonl (resumed)")->required();
            abl->callback([&actions, r] { actions.push_back([r] { runNeuronAblate(*r); }); });
        }
        {
            auto r = std::make_shared<NeuronMapOptions>();
            auto* map = neurons->add_subcommand("map", "compute_segmentation.py's neuron map of an image for a text: the mean activation, at each "
                                                       "patch, of the neurons whose principal directions best match the text");
            addModelOptions(map, r->model);
            map->add_option("--describe", r->describe, "neurons describe outputs, one per layer (the reference uses layers 8, 9, 10 of ViT-B)")->required();
            map->add_option("--image", r->image, "Image file")->required();
            map->add_option("--text", r->text, "The text (a class prompt in the reference)")->required();
            map->add_option("--top-neurons", r->topNeurons, "Neurons averaged (the reference's top_neurons)")->capture_default_str();
            map->add_option("--colormap", r->colormap, "viridis, inferno, jet or turbo")->capture_default_str();
            map->add_option("--npy", r->npy, "Also write the patch map [gh, gw] as .npy");
            map->add_option("--out", r->out, "PNG overlay")->required();
            map->callback([&actions, r] { actions.push_back([r] { runNeuronMap(*r); }); });
        }
        {
            auto r = std::make_shared<NeuronRetrieveOptions>();
            auto* ret = neurons->add_subcommand("retrieve", "A second-order run's images by a text through chosen neurons, beside global retrieval");
            addModelOptions(ret, r->model);
            ret->add_option("--effects", r->effects, "A finished second-order output folder")->required();
            ret->add_option("--text", r->text, "The query text")->required();
            ret->add_option("--neurons", r->neurons, "Neuron indices \"3,17\", or a file of them (one per line, or a neurons rank CSV)")->required();
            ret->add_option("--count", r->count, "Only the first N of --neurons (e.g. the top of a ranking; 0: all)")->capture_default_str()->check(CLI::Range(0, 1000000));
            ret->add_option("--top", r->top, "Images to list")->capture_default_str()->check(CLI::Range(1, 1000000));
            ret->add_option("--out", r->out, "JSON: the hits through the neurons and the global ones")->required();
            ret->callback([&actions, r] { actions.push_back([r] { runNeuronRetrieve(*r); }); });
        }
    }
    auto o = std::make_shared<SecondOrderCliOptions>();
    auto* sub = app.add_subcommand("second-order",
                                   "Second-order effects of a layer's MLP neurons through every later attention head "
                                   "(second_order_lens): effects.npy [B, neurons, E], norms.npy [B, neurons], output.npy [B, E] (the model's output), "
                                   "paths.txt (with --image)");
    addModelOptions(sub, o->model);
    addInputOptions(sub, o->inputs);
    sub->add_option("--layer", o->layer, "The MLP block whose neurons are analysed (0-based; not the last block)")->required();
    sub->add_option("--out", o->out, "Output directory (a run resumes into its own output)")->required();
    sub->add_option("--convention", o->convention,
                    "reference: second_order_lens's even shares, scaled by coefficient / |output| (what its hook stores); "
                    "exact: vitscope's (each write centred, biases apart, output units)")
        ->capture_default_str();
    auto* coefficient = sub->add_option("--coefficient", o->coefficient, "The reference convention's scale (its hook's coefficient)")->capture_default_str();
    sub->add_option("--maps-budget", o->mapsBudgetGb, "GB of image-independent maps kept between batches (beyond it they are rebuilt "
                                                    "for every batch: ViT-L/14's layer 0 needs 4.6)")->capture_default_str();
    sub->add_option("--shard", o->shard, "I/N: this task's part into OUT/shards/I-of-N (default: a Slurm job array's task); "
                                         "the same command without it afterwards finishes what is left and merges");
    sub->callback([&actions, o, coefficient] {
        o->coefficientGiven = coefficient->count() > 0;
        actions.push_back([o] { runSecondOrder(*o); });
    });
}

}  // namespace vitscope::cli
