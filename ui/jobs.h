#pragma once
// Every kind of work the GUI asks of the engine, one struct each: its request fields, the type
// of its result (`Result`), the words the log and status bar use for it (`kLabel`) and `run`,
// which the engine's worker thread calls with the Explorer. The engine coalesces waiting jobs of
// the same struct and drops a result older than the latest request of its struct.
//
//   engine.run(LedgerJob{"a red circle"}, this, [this](Ledger g) { ... }, [this](const JobFailure& f) { ... });
#include "explore/explorer.h"

#include <optional>
#include "shapes/spurious_demo.h"

#include <string>
#include <utility>
#include <vector>

namespace vitscope::ui {

using HeadPairs = std::vector<std::pair<int, int>>;

struct OpenModelJob {
    static constexpr const char* kLabel = "opening the model";
    using Result = ModelSummary;
    std::string spec, device, aligner;
    std::string precision = "fp32";  // model/precision.h's names; a failure leaves the explorer's setting as it was
    Result run(Explorer& x, const JobContext&) const {
        const std::string before = x.precision();
        x.setPrecision(precision);
        try {
            return x.openModel(spec, device, aligner);
        } catch (...) {
            x.setPrecision(before);
            throw;
        }
    }
};

// An image file, or (path empty) the opening view of the open dataset (Explorer::firstView).
struct AnalyseImageJob {
    static constexpr const char* kLabel = "decomposing the image";
    using Result = ImageResult;
    std::string path;
    bool wholeImage = false;  // View > Whole image, as it was when the job was asked for
    Result run(Explorer& x, const JobContext&) const {
        x.setWholeImage(wholeImage);
        if (!path.empty()) return x.analyseImage(path);
        const Explorer::FirstView v = x.firstView();
        ImageResult r = x.analyseImage(v.image);
        r.openingText = v.text;
        return r;
    }
};

// The canvas's map, then (perHead) one decomposition map per listed head, from the kept terms.
struct HeatmapJob {
    static constexpr const char* kLabel = "computing the heatmap";
    using Result = std::vector<HeatmapResult>;
    HeatmapRequest request;
    HeadPairs perHead;
    bool withRegisters = false;  // then the second map: the same through the test-time-register model
    Result run(Explorer& x, const JobContext&) const {
        Result out{x.heatmap(request)};
        if (withRegisters) {
            HeatmapRequest q = request;
            q.withRegisters = true;
            out.push_back(x.heatmap(q));
        }
        for (const auto& h : perHead) {
            HeatmapRequest q = request;
            q.method = "decomposition";
            q.heads = {h};
            out.push_back(x.heatmap(q));
        }
        return out;
    }
};

struct LedgerJob {
    static constexpr const char* kLabel = "computing the ledger";
    using Result = Ledger;
    std::string text;
    Result run(Explorer& x, const JobContext&) const { return x.ledger(text); }
};

struct OpenDatasetJob {
    static constexpr const char* kLabel = "caching the dataset";
    using Result = DatasetSummary;
    std::string folder, convention = "exact";
    std::string worldDir;  // non-empty: the bundled shapes world, generated there on first use
    Result run(Explorer& x, const JobContext& job) const {
        if (!worldDir.empty()) ensureShapesWorld(worldDir, 1000, 7777, "standard", job.staged("making the shapes world"));
        return x.openDataset(folder, job.staged("caching images"), convention);
    }
};

// An aligner for a non-CLIP model, fitted into the open CLIP model's space on the open dataset.
struct FitAlignerJob {
    static constexpr const char* kLabel = "fitting an aligner";
    using Result = AlignerFitSummary;
    std::string model, out, procedure = "vitscope";
    Result run(Explorer& x, const JobContext& job) const { return x.fitAligner(model, out, procedure, job); }
};

struct DescribeHeadsJob {
    static constexpr const char* kLabel = "describing heads (TextSpan)";
    using Result = std::vector<HeadDescription>;
    std::string pool;
    int perHead = 10, rank = 80;
    Result run(Explorer& x, const JobContext& job) const { return x.describeHeads(pool, perHead, rank, job); }
};

// A head's top images (layer, head), or an MLP's ("mlp.L", "pool.mlp") when `mlp` is set.
struct TopImagesJob {
    static constexpr const char* kLabel = "finding the top images";
    using Result = std::vector<Hit>;
    int layer = -1, head = -1;
    std::string mlp;
    Result run(Explorer& x, const JobContext&) const { return mlp.empty() ? x.headTopImages(layer, head, 12) : x.mlpTopImages(mlp, 12); }
};

// The open image's neurons of an MLP by second-order effect, scored for the text.
struct NeuronsJob {
    static constexpr const char* kLabel = "computing the neurons' second-order effects";
    using Result = NeuronList;
    int layer = -1;
    std::string text;
    Result run(Explorer& x, const JobContext&) const { return x.mlpNeurons(layer, text, 12); }
};

// The register neurons over the open dataset, and the test-time-register model kept beside the model.
struct FindRegistersJob {
    static constexpr const char* kLabel = "finding the register neurons";
    using Result = RegisterSummary;
    Result run(Explorer& x, const JobContext& job) const { return x.findTestTimeRegisters(job); }
};

// The open model's heads against another model's.
struct CompareJob {
    static constexpr const char* kLabel = "comparing the heads";
    using Result = HeadComparison;
    std::string spec;
    Result run(Explorer& x, const JobContext& job) const { return x.compareHeads(spec, job); }
};

// The projector's layout of the open dataset.
struct ProjectJob {
    static constexpr const char* kLabel = "laying out the dataset";
    using Result = ProjectionResult;
    ProjectionRequest request;
    Result run(Explorer& x, const JobContext& job) const { return x.project(request, job); }
};

// The projected images' scores for a text (their colours).
struct ProjectionColorJob {
    static constexpr const char* kLabel = "scoring the projected images";
    using Result = std::vector<float>;
    std::string text;
    HeadPairs heads;
    Result run(Explorer& x, const JobContext&) const { return x.imageScores(text, heads); }
};

struct SpliceJob {
    static constexpr const char* kLabel = "decomposing the image into concepts (SpLiCE)";
    using Result = SpliceView;
    std::string vocabFile;
    double l1 = 0.15;
    std::string component;  // "" : the image's output
    Result run(Explorer& x, const JobContext& job) const { return x.spliceImage(vocabFile, l1, component, job); }
};

struct OpenSaeJob {
    static constexpr const char* kLabel = "opening the sparse autoencoder";
    using Result = SaeSummary;
    std::string path;
    Result run(Explorer& x, const JobContext&) const { return x.openSae(path); }
};

struct SaeLatentsJob {
    static constexpr const char* kLabel = "attributing the image's latents";
    using Result = SaeImageLatents;
    std::string poolFile;  // the texts that name the latents
    Result run(Explorer& x, const JobContext&) const { return x.saeLatents(poolFile); }
};

struct SaeLatentJob {
    static constexpr const char* kLabel = "tracing the latent";
    using Result = SaeLatentDetail;
    int64_t latent = -1;
    int top = 12;
    Result run(Explorer& x, const JobContext&) const { return x.saeLatent(latent, top); }
};

struct SaeSearchJob {
    static constexpr const char* kLabel = "searching the latents";
    using Result = std::vector<SaeLatentRow>;
    std::string text;
    int count = 20;
    Result run(Explorer& x, const JobContext&) const { return x.searchSaeLatents(text, count); }
};

struct ProjectionLabelsJob {
    static constexpr const char* kLabel = "reading the projected images' labels";
    using Result = std::vector<std::string>;
    std::string column;
    Result run(Explorer& x, const JobContext&) const { return x.imageLabels(column); }
};

// One neuron over the open dataset: its top images and texts (the layer's summary built on first use).
struct NeuronDetailJob {
    static constexpr const char* kLabel = "summarising the neurons over the dataset";
    using Result = NeuronDetail;
    int layer = -1;
    int64_t neuron = -1;
    std::string pool;
    Result run(Explorer& x, const JobContext& job) const { return x.neuronDetail(layer, neuron, pool, job); }
};

struct RetrieveJob {
    static constexpr const char* kLabel = "retrieving images";
    using Result = RetrievalResult;
    std::string query;  // a text, or an image's path when byImage
    bool byImage = false;
    HeadPairs heads;
    int top = 12;
    Result run(Explorer& x, const JobContext&) const {
        return byImage ? x.retrieveImage(query, heads, top) : x.retrieveText(query, heads, top);
    }
};

struct PropertyScores {
    std::string property;
    GridValues grid;
};

struct PropertyJob {
    static constexpr const char* kLabel = "scoring the property";
    using Result = PropertyScores;
    std::string property;  // a word list's name or a file of texts
    Result run(Explorer& x, const JobContext& job) const { return {property, componentGrid(x.model(), x.propertyScores(property, job))}; }
};

// The comparison's second model (Explorer::partner) on the open image and text: the same view
// through it, side by side with the open model's.
struct PartnerAnswer {
    ImageResult image;  // path empty: the image it has already (not analysed again)
    HeatmapResult map;  // method empty: no map (no text)
    Ledger ledger;      // rows empty: no text
};
struct PartnerViewJob {
    static constexpr const char* kLabel = "the second model's view";
    using Result = PartnerAnswer;
    std::string path;
    bool wholeImage = false, analyse = true;  // analyse: the image is new to it
    HeatmapRequest map;                       // text empty: the image only (a text-free method still maps)
    bool mapped = true;                       // false: no map (a method it lacks, a neuron's map)
    Result run(Explorer& x, const JobContext&) const;
};
struct PartnerPropertyJob {
    static constexpr const char* kLabel = "scoring the property on the second model";
    using Result = PropertyScores;
    std::string property;
    Result run(Explorer& x, const JobContext& job) const;
};
// Retrieval on the second model through the heads assigned to the open model's selection.
struct PartnerRetrieveJob {
    static constexpr const char* kLabel = "retrieving through the matched heads";
    using Result = RetrievalResult;
    RetrieveJob query;
    Result run(Explorer& x, const JobContext& job) const;
};

// The projector's picked images against the rest: which heads and MLPs separate them.
struct SeparationJob {
    static constexpr const char* kLabel = "finding what separates the picked images";
    using Result = GridValues;
    std::vector<int64_t> rows;
    Result run(Explorer& x, const JobContext& job) const { return componentGrid(x.model(), x.selectionSeparation(rows, job)); }
};

struct AblateJob {
    static constexpr const char* kLabel = "ablating heads";
    using Result = AblationOutcome;
    std::vector<std::string> components;
    Result run(Explorer& x, const JobContext&) const { return x.ablate(components); }
};

struct DiscoverSpuriousJob {
    static constexpr const char* kLabel = "discovering spurious heads";
    using Result = std::vector<ComponentValue>;
    std::vector<std::string> spurious, core;
    int k = 4;
    Result run(Explorer& x, const JobContext&) const { return x.discoverSpurious(spurious, core, k); }
};

// Sets the ablation task (caching the reference split for the means) and returns the outcome
// with nothing ablated.
struct AblationTaskJob {
    static constexpr const char* kLabel = "setting up the ablation task";
    using Result = AblationOutcome;
    AblationTask task;
    Result run(Explorer& x, const JobContext& job) const {
        x.setAblationTask(task, job.staged("caching the reference images (the means)"));
        return x.ablate({});
    }
};

struct SpuriousDemoLoaded {
    ModelSummary model;
    DatasetSummary dataset;
    AblationTask task;
    AblationOutcome outcome;
};

// The spurious-split demo in one job: its worlds, its model, its test split as the dataset and
// its ablation task.
struct SpuriousDemoJob {
    static constexpr const char* kLabel = "making the spurious-split demo";
    using Result = SpuriousDemoLoaded;
    shapes::SpuriousDemo demo;
    std::string model, device, convention = "exact";
    Result run(Explorer& x, const JobContext& job) const;
};

struct ReferenceTextsJob {
    static constexpr const char* kLabel = "embedding the reference texts";
    using Result = int;  // how many texts
    std::string file;
    Result run(Explorer& x, const JobContext&) const { return x.loadReferenceTexts(file); }
};

// A figure's maps: for each text, one map as `base` asks, or one decomposition map per column head.
struct FigureJob {
    static constexpr const char* kLabel = "drawing the figure";
    using Result = std::vector<HeatmapResult>;
    HeatmapRequest base;
    std::vector<std::string> texts;
    HeadPairs columns;
    Result run(Explorer& x, const JobContext&) const {
        Result out;
        for (const std::string& t : texts) {
            HeatmapRequest q = base;
            q.text = t;
            if (columns.empty()) out.push_back(x.heatmap(q));
            for (const auto& h : columns) {
                q.method = "decomposition";
                q.heads = {h};
                out.push_back(x.heatmap(q));
            }
        }
        return out;
    }
};

// ---- The neuron tools (ui/session_neurons.cpp) ----

// The layer's neurons by a property's score over the open dataset (a pass of its second-order lens).
struct RankNeuronsJob {
    static constexpr const char* kLabel = "ranking the neurons by a property";
    using Result = NeuronRanking;
    int layer = -1;
    std::string property;
    Result run(Explorer& x, const JobContext& job) const { return x.rankLayerNeurons(layer, property, job); }
};

// The open dataset's images by a text through neurons of one layer, beside global hits.
struct NeuronRetrieveJob {
    static constexpr const char* kLabel = "retrieving through the neurons";
    using Result = RetrievalResult;
    int layer = -1;
    std::vector<int64_t> neurons;
    std::string text;
    int top = 12;
    Result run(Explorer& x, const JobContext& job) const {
        return x.retrieveThroughNeurons(layer, neurons, text, top, job);
    }
};

// Every block's output token norms of the open image, and (withRegisters) the same through the
// test-time-register model.
struct TokenNormRows {
    TokenNormBlocks model;
    std::optional<TokenNormBlocks> registers;
};
struct TokenNormBlocksJob {
    static constexpr const char* kLabel = "computing the token norms of every block";
    using Result = TokenNormRows;
    bool withRegisters = false;
    Result run(Explorer& x, const JobContext&) const {
        TokenNormRows r{x.tokenNormBlocks(), std::nullopt};
        if (withRegisters) r.registers = x.tokenNormBlocks(true);
        return r;
    }
};

}  // namespace vitscope::ui
