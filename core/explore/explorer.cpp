#include "explore/explorer.h"
#include "explore/concepts.h"

#include "analysis/second_order.h"
#include "analysis/neurons.h"
#include "analysis/projection.h"
#include "analysis/projection_points.h"
#include "analysis/head_matching.h"
#include "analysis/alignment.h"
#include "analysis/registers.h"

#include "analysis/ablation.h"
#include "analysis/align_fit.h"
#include "analysis/cache.h"
#include "analysis/components.h"
#include "analysis/heatmap.h"
#include "analysis/labels.h"
#include "analysis/property.h"
#include "analysis/retrieval.h"
#include "analysis/session.h"
#include "analysis/textspan.h"
#include "error.h"
#include "image/preprocess.h"
#include "io/file_util.h"
#include "io/tensor_io.h"
#include "model/forward.h"
#include "model/loader.h"
#include "resources.h"
#include "runtime.h"
#include "shapes/dataset.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>

namespace fs = std::filesystem;

namespace vitscope {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }


// Grid coordinates -> components and names: row `layers` of a SigLIP grid is its pooling heads.
Component gridComponent(int l, int h, int layers) {
    return l == layers ? Component{Component::Kind::PoolHead, -1, h} : Component{Component::Kind::Head, l, h};
}

std::string headName(int l, int h, int layers = -1) { return gridComponent(l, h, layers).name(); }

std::vector<Component> toComponents(const std::vector<std::pair<int, int>>& heads, int layers) {
    std::vector<Component> out;
    for (const auto& [l, h] : heads) out.push_back(gridComponent(l, h, layers));
    return out;
}

std::vector<Hit> toHits(const std::vector<RetrievalHit>& hits) {
    std::vector<Hit> out;
    for (const RetrievalHit& h : hits) out.push_back({h.row, h.path, h.score});
    return out;
}

// A stable folder name for an image collection: its absolute path hashed (FNV-1a).
std::string folderKey(const std::string& images) {
    const std::string abs = fs::absolute(images).lexically_normal().string();
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : abs) h = (h ^ c) * 1099511628211ull;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return fs::path(abs).filename().string() + "-" + buf;
}

}  // namespace

void configureComputeRuntime() { configureRuntime(); }

std::vector<std::string> discoveredModels() { return discoverModels(); }

void ensureShapesWorld(const std::string& outDir, int64_t count, uint64_t seed, const std::string& split, const JobContext& job) {
    std::error_code ec;
    if (fs::exists(fs::path(outDir) / "labels.csv", ec)) return;
    shapes::GenerateParams p;
    p.outDir = outDir;
    p.count = count;
    p.seed = seed;
    p.world.split = shapes::parseSplit(split);
    shapes::generateDataset(p, [&job](int64_t done, int64_t total) { job.report({done, total, 0, 0, "making the shapes world"}); });
}


GridValues componentGrid(const ModelSummary& model, const std::vector<ComponentValue>& values) {
    const std::size_t rows = static_cast<std::size_t>(model.gridLayers());
    GridValues g;
    g.heads.rows = model.gridLayers();
    g.heads.cols = model.heads;
    g.heads.values.assign(rows * static_cast<std::size_t>(model.heads), NAN);
    g.mlp.assign(rows, NAN);
    if (model.convBlocks > 0) g.side.assign(rows, NAN);
    for (const ComponentValue& c : values) {
        const float v = static_cast<float>(c.value);
        if (c.head >= 0 && c.layer >= 0 && c.layer < g.heads.rows && c.head < g.heads.cols) {
            g.heads.values[static_cast<std::size_t>(c.layer * model.heads + c.head)] = v;
        } else if (c.layer >= 0 && static_cast<std::size_t>(c.layer) < rows && c.name.rfind("mlp.", 0) == 0) {
            g.mlp[static_cast<std::size_t>(c.layer)] = v;
        } else if (c.name == "pool.mlp" && model.poolHeads > 0) {
            g.mlp[static_cast<std::size_t>(model.layers)] = v;
        } else if (c.name.rfind("conv.", 0) == 0 && model.convBlocks > 0) {
            const std::size_t row = static_cast<std::size_t>(std::stoi(c.name.substr(5)) * model.layersPerConv);
            if (row < rows) g.side[row] = v;
        }
    }
    return g;
}

std::string modelDisplayName(const std::string& spec) {
    fs::path p = fs::path(spec).lexically_normal();
    if (!p.has_filename()) p = p.parent_path();
    const std::string s = p.string();
    // A Hugging Face hub snapshot: models--ORG--NAME/snapshots/<hash>[/file] -> ORG/NAME.
    const std::size_t hub = s.find("models--");
    if (hub != std::string::npos) {
        std::string repo = s.substr(hub + 8);
        repo = repo.substr(0, repo.find('/'));
        const std::size_t sep = repo.find("--");
        if (sep != std::string::npos) return repo.substr(0, sep) + "/" + repo.substr(sep + 2);
    }
    // A weights file names its folder's model; a folder named after a layout ("hf", "timm") or a
    // checkpoint file with a generic name is named with its parent ("clip-tiny/hf").
    const bool file = p.has_extension();
    const fs::path folder = file ? p.parent_path() : p;
    const std::string leaf = folder.filename().string();
    static const std::vector<std::string> generic{"hf", "timm", "open_clip", "openai", "torchvision", "model", "weights", "checkpoint", "."};
    const bool genericLeaf = std::find(generic.begin(), generic.end(), leaf) != generic.end();
    std::string name = genericLeaf && folder.has_parent_path() ? folder.parent_path().filename().string() + "/" + leaf : leaf;
    if (file) {
        const std::string stem = p.stem().string();
        static const std::vector<std::string> genericFiles{"model", "pytorch_model", "open_clip_model", "open_clip_pytorch_model", "weights", "checkpoint"};
        if (std::find(genericFiles.begin(), genericFiles.end(), stem) == genericFiles.end()) name = stem;
    }
    return name.empty() ? s : name;
}

struct Explorer::Impl {
    std::string cacheRoot;
    ModelSummary summary;
    std::unique_ptr<HeatmapSession> session;  // model, text side, aligner
    at::Tensor reference;                     // [R, E] reference texts
    at::Tensor surgeryReference;              // the same through CLIP Surgery's prompt ensemble (when on)
    Convention convention = Convention::Exact;  // of the dataset caches opened
    std::string precision = "fp32";             // setPrecision: models opened from now on

    // Current image.
    std::string imagePath;
    bool wholeImage = false;  // setWholeImage: squash instead of the model's crop
    at::Tensor pixels;  // [1, 3, S, S]
    Decomposition dec;  // per-token heads [1, L, H, N, E]; SigLIP: per-head terms + token factors
    int gridH = 0, gridW = 0, prefix = 0;

    // Dataset.
    std::unique_ptr<DatasetCache> cache;
    std::unique_ptr<CacheView> view;
    std::string datasetFolder;
    std::vector<HeadDescription> descriptions;
    std::vector<at::Tensor> descriptionTexts;  // per description: [k, E]

    // Second-order effects of one layer's neurons (its image-independent maps kept between images),
    // and the current image's effects for that layer (a new text only rescores them).
    std::unique_ptr<SecondOrderLens> lens;
    at::Tensor neuronEffects;  // [M, E] of the current image and lens->layer(); undefined: not computed
    std::map<int, NeuronDirections> neuronSummaries;  // per layer, over the open dataset
    // The current image's high-norm outlier patches (registers.h's detection), [gh * gw] bool;
    // undefined until a map asks (then empty for models without them: hierarchical, pooled).
    at::Tensor outlierPatches;
    std::unique_ptr<Model> registerModel;  // the test-time-register model (findTestTimeRegisters)
    std::string outlierWhere;  // "norm > 30 at block 11"
    void findOutliers();
    std::string outlierWarning(const at::Tensor& patchMap);
    std::string neuronPool;                           // the pool file of the dictionary below
    std::vector<std::string> neuronPoolTexts;
    at::Tensor neuronDictionary;                      // referenceTextDictionary of the pool's embeddings
    SecondOrderLens& lensFor(int layer);
    const NeuronDirections& neuronSummary(int layer, const JobContext& job);
    // The ranking cache of one layer (rankLayerNeurons): its sums for the model, dataset, layer and
    // convention `rankKey` says.
    std::string rankKey;
    std::unique_ptr<NeuronSpanStatistics> rankStats;
    at::Tensor rankBasis(const at::Tensor& asked, int64_t neurons);

    // Concept dictionaries (SpLiCE's vocabulary and mean, the open SAE and the image's attribution).
    ConceptDictionaries concepts;
    std::string conceptKey;  // the open image as the concepts key it (path and crop setting)
    ConceptContext conceptContext() {
        conceptKey = imagePath + (wholeImage ? "#whole" : "");
        return ConceptContext{model(), summary, pixels, conceptKey, gridH, gridW, prefix, aligner(), session->text.get(), cache.get(), view.get()};
    }

    // The compared model (compareHeads), on the same dataset.
    std::unique_ptr<Explorer> partner;

    // Ablation.
    std::unique_ptr<DatasetCache> refCache;
    std::unique_ptr<CacheView> refView;
    ZeroShotClassifier classifier;
    RowLabels labels;
    bool ablationReady = false;

    const Model& model() const {
        if (!session) throw InputError("vitscope", "no model is open");
        return *session->model;
    }
    const Model& textModel() const { return session->clip ? *session->clip : *session->model; }
    const Aligner* aligner() const { return session && session->aligner ? &*session->aligner : nullptr; }
    at::Tensor encode(const std::string& text) const { return session->text->encode({text})[0]; }
    // The projector's text axes A, B, C, D as [4, E].
    at::Tensor axisTexts(const std::vector<std::string>& axes) const {
        if (axes.size() != 4) throw InputError("text axes", "need four texts: A and B for x, C and D for y");
        std::vector<at::Tensor> texts;
        for (const std::string& t : axes) {
            if (t.empty()) throw InputError("text axes", "need four texts: A and B for x, C and D for y");
            texts.push_back(encode(t));
        }
        return at::stack(texts);
    }
    void requireImage() const {
        if (!pixels.defined()) throw InputError("vitscope", "no image is open");
    }
    void requireDataset() const {
        if (!view) throw InputError("vitscope", "no dataset is open");
    }
    // Scores of components as the grid places them.
    std::vector<ComponentValue> componentValues(const std::vector<ComponentScore>& scores) const {
        std::vector<ComponentValue> out;
        for (const ComponentScore& s : scores) {
            const bool pool = s.component.kind == Component::Kind::PoolHead;
            // MaxViT's conv.K has no grid cell (K counts blocks, not layers): layer -1 keeps it out of the grid.
            const int layer = s.component.kind == Component::Kind::Conv ? -1 : pool ? summary.layers : s.component.layer;
            out.push_back({s.component.name(), layer, s.component.kind == Component::Kind::Head || pool ? s.component.head : -1, s.score});
        }
        return out;
    }
    // Whether a component's term can be shown in CLIP space: a per-component aligner maps the
    // encoder's components only, not SigLIP's pooling heads (another decomposition).
    bool mapped(const std::string& name) const { return alignerMaps(aligner(), name); }
    // A component's summed term of the current image in CLIP space [E].
    at::Tensor clipTerm(const at::Tensor& term, const std::string& name) const { return alignedTerm(term, name, aligner()); }
    DatasetCache& openCacheFor(const std::string& images, const JobContext& job, std::unique_ptr<DatasetCache>& slot, DatasetSummary* out);
    // The dataset's images where a component writes the most (its terms' norm), strongest first.
    std::vector<Hit> strongestImages(const Component& c, int top) const {
        const at::Tensor norms = view->terms(c).norm(2, 1);
        const at::Tensor order = std::get<1>(norms.topk(std::min<int64_t>(top, norms.size(0))));
        std::vector<Hit> out;
        for (int64_t i = 0; i < order.size(0); ++i) {
            const int64_t row = order[i].item<int64_t>();
            out.push_back({row, cache->paths()[static_cast<std::size_t>(row)], norms[row].item<double>()});
        }
        return out;
    }
};

Explorer::Explorer(std::string cacheRoot) : m(std::make_unique<Impl>()) { m->cacheRoot = std::move(cacheRoot); }
Explorer::~Explorer() = default;

void Explorer::setPrecision(const std::string& name) {
    if (name != "auto") (void)parsePrecision(name);  // InputError for an unknown name; support is checked at openModel
    m->precision = name;
}

const std::string& Explorer::precision() const { return m->precision; }

ModelSummary Explorer::openModel(const std::string& spec, const std::string& device, const std::string& alignerPath) {
    HeatmapSessionOptions o;
    o.model = spec;
    o.device = device;
    o.aligner = alignerPath;
    o.precision = m->precision;
    // A non-CLIP model directory may carry its aligner (the bundled shapes-vit does).
    if (o.aligner.empty()) o.alignerIfNotClip = alignerBesideModel(spec);
    auto session = std::make_unique<HeatmapSession>(openHeatmapSession(o));
    const Model& mdl = *session->model;
    ModelSummary s;
    s.spec = spec;
    s.name = modelDisplayName(spec);
    s.family = mdl.info.family;
    s.weightsPath = mdl.info.weightsPath;
    s.fingerprint = modelFingerprint(mdl);
    s.device = mdl.vision.device().str();
    s.precision = precisionName(mdl.precision);
    s.layers = mdl.vision.layers();
    s.heads = mdl.vision.heads();
    s.poolHeads = mdl.vision.pool.defined() ? mdl.vision.pool.heads : 0;
    if (mdl.vision.hierarchical()) {
        s.headsPerLayer = headsPerLayer(mdl.vision);
        for (std::size_t st = 0; st < mdl.vision.swin.stages.size(); ++st)
            for (int b = 0; b < mdl.vision.swin.stages[st].depth; ++b)
                s.layerLabels.push_back("s" + std::to_string(st) + ".b" + std::to_string(b));
        // MaxViT: two attention units per block, block then grid.
        for (const MaxVitStage& st : mdl.vision.maxvit.stages) s.convBlocks += st.depth;
        s.layersPerConv = s.convBlocks > 0 ? 2 : 0;
        for (std::size_t st = 0; st < mdl.vision.maxvit.stages.size(); ++st)
            for (int b = 0; b < mdl.vision.maxvit.stages[st].depth; ++b)
                for (const char* unit : {".block", ".grid"})
                    s.layerLabels.push_back("s" + std::to_string(st) + ".b" + std::to_string(b) + unit);
    }
    s.sigmoidScores = mdl.sigmoidScores;
    s.preprocessing = std::string(mdl.preprocess.bilinear ? "bilinear " : "bicubic ") +
                      (mdl.preprocess.squash ? "resize of the whole image to " + std::to_string(mdl.preprocess.imageSize) + " px (no crop)"
                                             : "resize of the shortest side to " + std::to_string(mdl.preprocess.resizeShortest) +
                                                   ", center crop " + std::to_string(mdl.preprocess.imageSize));
    s.imageSize = mdl.preprocess.imageSize;
    s.patchSize = mdl.vision.patchSize;
    s.embedDim = static_cast<int>(session->aligner ? session->aligner->weight.size(1) : mdl.vision.embedDim());
    s.clip = mdl.isClip();
    s.surgeryEnsemble = session->surgeryEnsemble;
    s.aligner = !session->aligner ? std::string() : !o.aligner.empty() ? o.aligner : o.alignerIfNotClip;
    if (session->clip) s.textModel = session->clip->info.weightsPath;
    s.vocabulary = session->text->vocabulary();
    for (HeatmapMethod method : heatmapMethodsFor(*session->model)) {
        s.heatmapMethods.push_back(heatmapMethodName(method));
        s.heatmapMethodSummaries.push_back(heatmapMethodSummary(method));
    }
    s.registers = !mdl.vision.hierarchical() && mdl.vision.hasClassToken() && !mdl.vision.pool.defined();
    if (s.registers) {
        s.heatmapMethods.push_back("token-norms");
        s.heatmapMethodSummaries.push_back("The norm of every patch token at a block's output: high-norm outlier tokens (Jiang et al., "
                                           "test-time registers, NeurIPS 2025; the grid row in focus, else the block their reference reads)");
    }
    s.cheferDefaultStartLayer = defaultCheferStartLayer(*session->model);
    // Everything of the previous model goes.
    const std::string root = m->cacheRoot;
    const bool whole = m->wholeImage;  // settings of the user's, not of the model
    const std::string precision = m->precision;
    *m = Impl{};
    m->cacheRoot = root;
    m->wholeImage = whole;
    m->precision = precision;
    m->session = std::move(session);
    m->summary = s;
    m->summary.propertyNames = propertyNames(m->textModel());
    spdlog::info("model {} ({} layers x {} heads) on {}", spec, s.layers, s.heads, s.device);
    return m->summary;
}

AlignerFitSummary Explorer::fitAligner(const std::string& spec, const std::string& out, const std::string& procedure, const JobContext& job) {
    AlignerFitOptions options;
    options.params.procedure = parseAlignProcedure(procedure);
    const Model& clip = m->model();
    if (!clip.isClip()) throw InputError(m->summary.name, "is not a CLIP model: open the CLIP model to align into first");
    m->requireDataset();
    const Model model = openModelOn(spec, clip.vision.device().is_cuda() ? "cuda" : "cpu");
    if (model.isClip()) throw InputError(spec, "is a CLIP model: it has a text side and needs no aligner");
    const AlignerFit fit = fitAlignerOnImages(model, spec, clip, m->summary.spec, m->cache->paths(), options, job);
    saveAligner(fit.aligner, out);
    return {out, spec, m->summary.spec, fit.trained, fit.heldOut, fit.cosine, fit.sharedCosine};
}

bool Explorer::hasModel() const { return m->session != nullptr; }
void Explorer::setWholeImage(bool whole) { m->wholeImage = whole; }
bool Explorer::wholeImage() const { return m->wholeImage; }
const ModelSummary& Explorer::model() const { return m->summary; }

ImageResult Explorer::analyseImage(const std::string& path) {
    const Model& model = m->model();
    const auto start = Clock::now();
    const std::vector<uint8_t> bytes = readFileBytes(path);
    const cv::Mat rgb = decodeImageRgb(bytes, path);
    ImagePreprocess prep = model.preprocess;
    prep.squash = prep.squash || m->wholeImage;
    const cv::Mat crop = cropForModel(rgb, prep);
    at::NoGradGuard noGrad;
    const at::Tensor pixels = preprocessImage(rgb, prep).unsqueeze(0).to(model.vision.device());
    Decomposition dec = decomposeImages(model, pixels, imageDecomposeOptions(model));
    dec.heads = dec.heads.to(at::kCPU);
    m->imagePath = path;
    m->pixels = pixels;
    m->neuronEffects = at::Tensor();  // the last image's
    m->outlierPatches = at::Tensor();
    m->dec = dec;
    m->gridH = static_cast<int>(pixels.size(2)) / model.vision.patchSize;
    m->gridW = static_cast<int>(pixels.size(3)) / model.vision.patchSize;
    m->prefix = model.vision.prefixTokens();
    ImageResult r;
    r.path = path;
    r.crop.width = crop.cols;
    r.crop.height = crop.rows;
    const cv::Mat packed = crop.isContinuous() ? crop : crop.clone();
    r.crop.rgb.assign(packed.data, packed.data + packed.total() * 3);
    r.gridH = m->gridH;
    r.gridW = m->gridW;
    r.sourceWidth = rgb.cols;
    r.sourceHeight = rgb.rows;
    r.inputNote = describeModelInput(rgb.cols, rgb.rows, prep);
    if (pngHasTransparency(bytes))
        r.inputNote = (r.inputNote.empty() ? "all of the image" : r.inputNote) +
                      "; its transparent parts in the colour stored under them (as PIL's convert(\"RGB\") leaves them)";
    r.wholeImage = m->wholeImage;
    const int L = model.vision.layers(), H = model.vision.heads(), rows = m->summary.gridLayers();
    at::Tensor norms = at::zeros({rows, H});
    // [rows, H, E]: per-head terms, and SigLIP's pooling heads summed over tokens as the last row.
    const at::Tensor summed = dec.pooled()   ? at::cat({dec.heads[0], dec.poolHeads[0].sum(1).unsqueeze(0).to(at::kCPU)})
                              : dec.heads.dim() == 4 ? dec.heads[0]
                                                     : dec.heads[0].sum(2);
    for (int l = 0; l < rows; ++l)
        for (int h = 0; h < H; ++h)
            norms[l][h] = h < m->summary.headsIn(l) && m->mapped(headName(l, h, L)) ? m->clipTerm(summed[l][h], headName(l, h, L)).norm()
                                                                                   : at::full({}, NAN);
    r.norms.heads = toFloatGrid(norms);
    for (int l = 0; l < L; ++l) r.norms.mlp.push_back(m->clipTerm(dec.mlps[0][l], "mlp." + std::to_string(l)).norm().item<float>());
    if (dec.pooled()) r.norms.mlp.push_back(m->clipTerm(dec.poolMlp[0], "pool.mlp").norm().item<float>());
    if (dec.convs.defined()) {
        r.norms.side.assign(static_cast<std::size_t>(rows), NAN);
        for (int64_t k = 0; k < dec.convs.size(1); ++k) {
            const std::size_t row = static_cast<std::size_t>(k * m->summary.layersPerConv);
            if (row < r.norms.side.size()) r.norms.side[row] = m->clipTerm(dec.convs[0][k], "conv." + std::to_string(k)).norm().item<float>();
        }
    }
    r.seconds = secondsSince(start);
    return r;
}

bool Explorer::hasImage() const { return m->pixels.defined(); }

HeatmapResult Explorer::heatmap(const HeatmapRequest& q) {
    m->requireImage();
    if (q.method == "neuron") return neuronMap(q.neuronLayer, q.neuron);
    if (q.method == "sae-latent") return m->concepts.latentHeatmap(m->conceptContext(), q.saeLatent);
    if (q.withRegisters && !m->registerModel) throw InputError("test-time registers", "none found yet (View > Test-time registers beside the map)");
    if (q.method == "token-norms") return tokenNormMap(q.normLayer, q.withRegisters);
    if (q.withRegisters && q.method == "neuron") throw InputError("test-time registers", "a neuron's map is shown for the model itself");
    const auto start = Clock::now();
    const HeatmapMethod method = parseHeatmapMethod(q.method);
    const Model& model = m->model();
    for (const auto& [l, h] : q.heads)
        if (l < 0 || l >= m->summary.gridLayers() || h < 0 || h >= m->summary.headsIn(l))
            throw InputError("head " + headName(l, h), "is not a head of this model");
    HeatmapParams p = m->session->params(method, q.heads, q.surgeryBlocks);
    p.referenceTexts = !q.subtractReference ? at::Tensor() : method == HeatmapMethod::Surgery ? m->surgeryReference : m->reference;
    if (q.cheferStartLayer) p.cheferStartLayer = q.cheferStartLayer;
    p.gradcamTarget = parseGradCamTarget(q.gradcamTarget);
    if (!q.labels.empty()) p.labels = m->session->textsFor(method, q.labels);
    p.pooledMap = parsePooledMap(q.siglipMap);
    p.classIndex = isGradientMethod(method) ? q.classIndex : -1;
    const at::Tensor text = q.text.empty() ? at::Tensor() : m->session->textsFor(method, {q.text})[0];
    if (!text.defined() && method != HeatmapMethod::Attention && method != HeatmapMethod::Rollout && p.classIndex < 0)
        throw InputError("heatmap", "type a text first (only attention and rollout need none)");
    at::NoGradGuard noGrad;
    Heatmap map;
    if (method == HeatmapMethod::Decomposition && q.inputSize > 0)
        throw InputError("input size", "applies to the maps that run the model; the decomposition map reads the analysed image's terms");
    if (q.withRegisters) {
        if (q.inputSize > 0) throw InputError("test-time registers", "are mapped at the analysed input size");
        map = computeHeatmap(*m->registerModel, m->pixels, text, p, m->aligner());
    } else if (method == HeatmapMethod::Decomposition) {
        // From the kept per-token terms (SigLIP: token factors): no forward pass.
        const at::Tensor scores = decompositionScoresFor(model, m->dec, text, p, m->aligner());
        map = heatmapFromTokenScores(scores, m->prefix, m->gridH, m->gridW, m->pixels.size(2), m->pixels.size(3));
    } else if (q.inputSize > 0) {
        Model sized = model;  // shares the weights; its own preprocessing and position resampling
        setInputSize(sized, q.inputSize);
        const cv::Mat rgb = decodeImageRgb(readFileBytes(m->imagePath), m->imagePath);
        const at::Tensor pixels = preprocessImage(rgb, sized.preprocess).unsqueeze(0).to(model.vision.device());
        map = computeHeatmap(sized, pixels, text, p, m->aligner());
    } else {
        map = computeHeatmap(model, m->pixels, text, p, m->aligner());
    }
    HeatmapResult r;
    r.method = q.method;
    r.text = q.text;
    r.patches = toFloatGrid(map.patches);
    r.pixels = toFloatGrid(map.pixels);
    if (q.inputSize == 0 && !q.withRegisters) r.warning = m->outlierWarning(map.patches);
    if (q.withRegisters) r.text += " (test-time register)";
    r.seconds = secondsSince(start);
    return r;
}

void Explorer::Impl::findOutliers() {
    const Model& mdl = model();
    const VisionTower& v = mdl.vision;
    if (v.hierarchical() || v.pool.defined() || !v.hasClassToken()) {
        outlierPatches = at::zeros({0}, at::kBool);
        return;
    }
    const RegisterFindParams p = registerFindDefaults(mdl);
    const TokenNormReport t = tokenNorms(mdl, pixels, p);
    outlierPatches = t.outliers.narrow(0, t.prefix, int64_t(t.gridH) * t.gridW).clone();
    char where[96];
    std::snprintf(where, sizeof where, "norm > %g at block %d", p.registerNormThreshold, p.detectionLayer(v.layers()));
    outlierWhere = where;
}

std::string Explorer::Impl::outlierWarning(const at::Tensor& patchMap) {
    if (!outlierPatches.defined()) findOutliers();
    if (outlierPatches.numel() == 0 || outlierPatches.numel() != patchMap.numel() || !outlierPatches.any().item<bool>()) return {};
    const double share = outlierMassShare(patchMap, outlierPatches);
    if (share <= 0.5) return {};
    char text[256];
    std::snprintf(text, sizeof text, "%.0f%% of the map's positive mass sits on %lld high-norm outlier token(s) (%s): artefact tokens, not the object",
                  100 * share, static_cast<long long>(outlierPatches.sum().item<int64_t>()), outlierWhere.c_str());
    return text;
}

HeatmapResult Explorer::tokenNormMap(int layer, bool withRegisters) {
    m->requireImage();
    const auto start = Clock::now();
    if (withRegisters && !m->registerModel) throw InputError("test-time registers", "none found yet");
    const Model& model = withRegisters ? *m->registerModel : m->model();
    const VisionTower& v = model.vision;
    if (v.hierarchical() || !v.hasClassToken()) throw InputError("token norms", "are shown for plain ViTs with a class token");
    RegisterFindParams p = registerFindDefaults(model);
    const int block = layer >= 0 && layer < v.layers() ? layer : p.detectionLayer(v.layers());
    const TokenNormReport t = tokenNorms(model, m->pixels, p);
    const Heatmap map = heatmapFromTokenScores(t.norms[block], t.prefix, t.gridH, t.gridW, m->pixels.size(2), m->pixels.size(3), t.suffix);
    HeatmapResult r;
    r.method = "token-norms";
    r.warning.clear();
    char text[200];
    std::snprintf(text, sizeof text, "block %d output (max / median %.2f, %lld token(s) with norm > %g; class-token attention on them %.0f%%)", block,
                  t.maxOverMedian[block].item<double>(), static_cast<long long>((t.norms[block] > p.registerNormThreshold).sum().item<int64_t>()),
                  p.registerNormThreshold, 100 * t.clsShare[block].item<double>());
    r.text = text;
    r.patches = toFloatGrid(map.patches);
    r.pixels = toFloatGrid(map.pixels);
    r.seconds = secondsSince(start);
    return r;
}

std::vector<HeatmapResult> Explorer::headHeatmaps(const std::string& text, const std::vector<std::pair<int, int>>& heads) {
    std::vector<HeatmapResult> out;
    for (const auto& h : heads) {
        HeatmapRequest q;
        q.text = text;
        q.heads = {h};
        out.push_back(heatmap(q));
    }
    return out;
}

Ledger Explorer::ledger(const std::string& text) {
    m->requireImage();
    Ledger g = computeLedger(m->model(), m->dec, m->encode(text), m->aligner());
    g.text = text;
    return g;
}

void Explorer::setReferenceTexts(const std::vector<std::string>& texts) {
    m->model();
    m->reference = texts.empty() ? at::Tensor() : m->session->text->encode(texts);
    m->surgeryReference = texts.empty() || !m->session->surgeryEnsemble ? m->reference
                                                                         : m->session->textsFor(HeatmapMethod::Surgery, texts);
}

int Explorer::loadReferenceTexts(const std::string& file) {
    const std::vector<std::string> texts = readTextList(file);
    setReferenceTexts(texts);
    return static_cast<int>(texts.size());
}

DatasetCache& Explorer::Impl::openCacheFor(const std::string& images, const JobContext& job, std::unique_ptr<DatasetCache>& slot,
                                           DatasetSummary* out) {
    const Model& mdl = model();
    CacheBuildParams p;
    p.outDir = (fs::path(cacheRoot) / summary.fingerprint.substr(0, 16) /
                (folderKey(images) + (convention == Convention::Exact ? "" : std::string("-") + conventionName(convention)) +
                 (mdl.precision == Precision::Fp32 ? "" : std::string("-") + precisionName(mdl.precision))))
                   .string();
    p.convention = convention;
    p.modelSpec = fs::exists(summary.spec) ? fs::absolute(summary.spec).lexically_normal().string() : summary.spec;
    p.validate();
    const CacheBuildResult r = buildCache(mdl, listImages(images), p, job);
    if (r.cancelled) throw JobCancelled();
    slot = std::make_unique<DatasetCache>(p.outDir);
    if (out) {
        out->images = images;
        out->cacheDir = p.outDir;
        out->count = slot->size();
        out->skipped = r.skipped;
        out->cachedLayers = slot->cachedLayers();
        out->resumed = r.resumed;
        out->imagesPerSecond = r.imagesPerSecond;
    }
    return *slot;
}

DatasetSummary Explorer::openDataset(const std::string& images, const JobContext& job, const std::string& convention) {
    // The open dataset stays open until the new one is cached: a folder that fails (no images,
    // unreadable, cancelled) leaves everything as it was.
    const Convention previous = m->convention;
    m->convention = parseConvention(convention);
    DatasetSummary s;
    std::unique_ptr<DatasetCache> cache;
    try {
        m->openCacheFor(images, job, cache, &s);
    } catch (...) {
        m->convention = previous;
        throw;
    }
    m->view.reset();
    m->partner.reset();  // compared over the old images
    m->descriptions.clear();
    m->descriptionTexts.clear();
    m->neuronSummaries.clear();
    m->rankStats.reset();
    m->rankKey.clear();
    m->ablationReady = false;
    m->refView.reset();
    m->refCache.reset();
    m->cache = std::move(cache);
    m->view = std::make_unique<CacheView>(*m->cache, m->aligner());
    m->datasetFolder = images;
    s.labelsFile = labelsBeside(images);
    if (!s.labelsFile.empty()) {
        try {
            s.labelColumns = labelColumns(s.labelsFile);
        } catch (const Error& e) {
            spdlog::warn("{}", e.what());  // the dataset opens without its labels
            s.labelsFile.clear();
        }
    }
    return s;
}

SpliceView Explorer::spliceImage(const std::string& vocabFile, double l1, const std::string& component, const JobContext& job) {
    m->requireImage();
    return m->concepts.splice(m->conceptContext(), vocabFile, l1, component, job);
}

SaeSummary Explorer::openSae(const std::string& path) { return m->concepts.openSae(m->model(), m->summary, path); }

void Explorer::closeSae() { m->concepts.close(); }

SaeImageLatents Explorer::saeLatents(const std::string& poolFile) {
    m->requireImage();
    return m->concepts.latents(m->conceptContext(), poolFile);
}

SaeLatentDetail Explorer::saeLatent(int64_t latent, int topImages) {
    m->requireImage();
    return m->concepts.latent(m->conceptContext(), latent, topImages);
}

std::vector<SaeLatentRow> Explorer::searchSaeLatents(const std::string& text, int count) {
    m->requireImage();
    return m->concepts.search(m->conceptContext(), text, count);
}

std::vector<std::string> Explorer::imageLabels(const std::string& column) const {
    m->requireDataset();
    const std::string file = labelsBeside(m->datasetFolder);
    if (file.empty()) throw InputError(m->datasetFolder, "has no labels.csv beside its images (in the folder or its parent)");
    return columnForPaths(file, column, m->cache->paths());
}

bool Explorer::hasDataset() const { return m->view != nullptr; }

Explorer::FirstView Explorer::firstView() const {
    m->requireDataset();
    const std::vector<std::string>& paths = m->cache->paths();
    FirstView v;
    v.image = paths.front();
    std::error_code ec;
    const fs::path labels = fs::path(paths.front()).parent_path().parent_path() / "labels.csv";
    if (!fs::exists(labels, ec)) return v;
    try {
        for (const auto& row : readCsvTable(labels.string())) {
            const auto get = [&](const char* k) { const auto it = row.find(k); return it == row.end() ? std::string() : it->second; };
            if (get("file").empty() || get("color").empty() || get("shape").empty() || !get("distractor_shape").empty()) continue;
            const std::string image = (labels.parent_path() / get("file")).lexically_normal().string();
            if (std::find(paths.begin(), paths.end(), image) == paths.end()) continue;
            v.image = image;
            v.text = "a " + get("color") + " " + get("shape");
            break;
        }
    } catch (const Error&) {
        // labels.csv of another kind: keep the first image
    }
    return v;
}

const std::vector<std::string>& Explorer::datasetPaths() const {
    m->requireDataset();
    return m->cache->paths();
}

std::vector<HeadDescription> Explorer::describeHeads(const std::string& poolFile, int perHead, int rank, const JobContext& job) {
    m->requireDataset();
    const std::vector<std::string> pool = readTextList(poolFile);
    TextSpanParams p;
    p.perHead = static_cast<int>(std::min<int64_t>({static_cast<int64_t>(perHead), static_cast<int64_t>(pool.size()), m->view->embedDim()}));
    p.rank = rank;
    p.validate(static_cast<int>(m->view->embedDim()), static_cast<int64_t>(pool.size()));
    const at::Tensor texts = m->session->text->encode(pool);
    std::vector<Component> heads = m->view->heads();
    for (const Component& c : m->view->poolHeads()) heads.push_back(c);  // SigLIP: the reference's own heads
    const std::vector<HeadTexts> result = runTextSpan(*m->view, texts, p, heads, job);
    m->descriptions.clear();
    m->descriptionTexts.clear();
    for (const HeadTexts& h : result) {
        HeadDescription d;
        d.head = h.component.name();
        d.layer = h.component.kind == Component::Kind::PoolHead ? m->summary.layers : h.component.layer;  // grid row
        d.index = h.component.head;
        d.totalVariance = h.totalVariance;
        d.convention = conventionName(m->cache->convention());
        d.rank = h.component.kind == Component::Kind::PoolHead ? (p.poolRank > 0 ? p.poolRank : 0) : p.rank;  // 0: not projected
        std::vector<int64_t> idx;
        for (const TextSpanPick& pick : h.picks) {
            d.picks.push_back({pool[static_cast<std::size_t>(pick.text)], pick.explained, pick.cumulative});
            idx.push_back(pick.text);
        }
        m->descriptions.push_back(d);
        m->descriptionTexts.push_back(idx.empty() ? at::Tensor() : texts.index_select(0, at::tensor(idx, at::kLong)));
    }
    return m->descriptions;
}

const std::vector<HeadDescription>& Explorer::descriptions() const { return m->descriptions; }

std::vector<ComponentValue> Explorer::propertyScores(const std::string& propertyOrFile, const JobContext& job) {
    m->requireDataset();
    std::error_code ec;
    const std::string file = fs::is_regular_file(propertyOrFile, ec) ? propertyOrFile : propertyWordList(propertyOrFile, m->textModel());
    std::vector<Component> components = m->view->allComponents();
    for (const Component& c : m->view->poolHeads()) components.push_back(c);  // SigLIP: the grid's pooling row too
    const std::vector<ComponentScore> scores =
        rankComponents(*m->view, m->session->text->encodeDescriptions(readTextList(file)), components, job);
    return m->componentValues(scores);
}

std::vector<ComponentValue> Explorer::selectionSeparation(const std::vector<int64_t>& rows, const JobContext& job) {
    m->requireDataset();
    return m->componentValues(vitscope::selectionSeparation(*m->view, rows, {}, job));
}

std::vector<Hit> Explorer::headTopImages(int layer, int head, int top) {
    m->requireDataset();
    const Component c = gridComponent(layer, head, m->summary.layers);
    for (std::size_t i = 0; i < m->descriptions.size(); ++i) {
        const HeadDescription& d = m->descriptions[i];
        if (d.layer == layer && d.index == head && m->descriptionTexts[i].defined())
            return toHits(retrieveByText(*m->view, m->descriptionTexts[i][0], {c}, top));
    }
    // Not described yet: the images where the head writes the most.
    return m->strongestImages(c, top);
}

namespace {

// Why block `layer`'s neurons have no second-order effect to show ("" when they have one).
std::string neuronsUnavailable(const VisionTower& v, int layer) {
    if (v.hierarchical() || v.pool.defined() || !v.hasClassToken()) return "second-order effects of neurons are computed for plain ViTs with a class token";
    if (layer == v.layers() - 1) return "the last block's neurons have no second-order effect (no attention head reads them)";
    return {};
}

void checkNeuron(const VisionTower& v, int layer, int64_t neuron) {
    if (layer < 0 || layer >= v.layers()) throw InputError("mlp." + std::to_string(layer), "is not an MLP of this model");
    const int64_t count = v.encoder.blocks[static_cast<std::size_t>(layer)].fc2W.size(1);
    if (neuron < 0 || neuron >= count)
        throw InputError("neuron " + std::to_string(neuron), "is not one of mlp." + std::to_string(layer) + "'s " + std::to_string(count));
}

}  // namespace

SecondOrderLens& Explorer::Impl::lensFor(int layer) {
    if (!lens || lens->layer() != layer) {
        SecondOrderSettings settings;
        settings.layer = layer;
        lens.reset();  // one layer's maps at a time
        neuronEffects = at::Tensor();
        lens = std::make_unique<SecondOrderLens>(model(), settings);
    }
    return *lens;
}

const NeuronDirections& Explorer::Impl::neuronSummary(int layer, const JobContext& job) {
    if (const auto it = neuronSummaries.find(layer); it != neuronSummaries.end()) return it->second;
    constexpr int kTopK = 100;  // compute_pcas.py's top_k_pca
    const std::vector<std::string>& paths = cache->paths();
    const fs::path dir = fs::path(cache->dir()) / "neurons" / ("layer-" + std::to_string(layer));
    const nlohmann::ordered_json key{{"model", summary.fingerprint}, {"cache", cache->fingerprint()}, {"layer", layer}, {"top_k", kTopK},
                                     {"convention", "reference"},     {"images", paths.size()}};
    const auto file = [&](const char* name) { return (dir / name).string(); };
    std::error_code ec;
    NeuronDirections d;
    if (fs::exists(file("summary.json"), ec) && nlohmann::json::parse(readFileText(file("summary.json")), nullptr, false) == nlohmann::json(key)) {
        d = readNeuronDirections(dir.string());
        if (d.topImages.max().item<int64_t>() >= static_cast<int64_t>(paths.size()))
            throw FormatError(dir.string(), "holds a damaged neuron summary; remove the folder to build it again");
    } else {
        fs::create_directories(dir, ec);
        const Model& mdl = model();
        const ImagePreprocess prep = mdl.preprocess;
        const auto pixels = [&](int64_t start, int64_t n) {
            return loadAndPreprocess(std::vector<std::string>(paths.begin() + start, paths.begin() + start + n), prep).to(mdl.vision.device());
        };
        d = summariseNeurons(lensFor(layer), static_cast<int64_t>(paths.size()), pixels, kTopK, 16, job, file("state.safetensors"), key.dump());
        writeNeuronDirections(dir.string(), d);
        writeFileAtomic(file("summary.json"), key.dump(2) + "\n");  // last: the others are complete
        fs::remove(file("state.safetensors"), ec);
    }
    return neuronSummaries[layer] = d;
}

RegisterSummary Explorer::findTestTimeRegisters(const JobContext& job) {
    m->requireDataset();
    const Model& model = m->model();
    if (model.vision.hierarchical() || model.vision.pool.defined() || !model.vision.hasClassToken())
        throw InputError("test-time registers", "are defined for plain ViTs with a class token");
    RegisterFindParams find = registerFindDefaults(model);
    std::vector<std::string> paths = m->cache->paths();
    if (static_cast<int>(paths.size()) > find.processedImageCnt) paths.resize(static_cast<std::size_t>(find.processedImageCnt));
    RegisterSummary out;
    const std::vector<RegisterNeuron> ranked = findRegisterNeurons(model, paths, find, job, &out.imagesWithOutliers);
    auto intervened = std::make_unique<Model>(model);  // shares the weights
    const TestTimeRegisterParams params = testTimeRegisterDefaults(model);
    for (const RegisterNeuron& r : applyTestTimeRegisters(*intervened, params, ranked))
        out.neurons.push_back(std::to_string(r.layer) + "." + std::to_string(r.neuron));
    out.images = static_cast<int>(paths.size());
    out.settings = find.toString() + "; " + params.toString();
    m->registerModel = std::move(intervened);
    return out;
}

void Explorer::dropTestTimeRegisters() { m->registerModel.reset(); }
bool Explorer::hasTestTimeRegisters() const { return m->registerModel != nullptr; }

NeuronDetail Explorer::neuronDetail(int layer, int64_t neuron, const std::string& poolFile, const JobContext& job) {
    m->requireDataset();
    const VisionTower& v = m->model().vision;
    checkNeuron(v, layer, neuron);
    if (const std::string why = neuronsUnavailable(v, layer); !why.empty()) throw InputError("mlp." + std::to_string(layer), why);
    const NeuronDirections& d = m->neuronSummary(layer, job);
    NeuronDetail out;
    out.layer = layer;
    out.neuron = neuron;
    out.topK = 100;
    out.images = static_cast<int64_t>(m->cache->paths().size());
    for (int64_t j = d.topImages.size(1) - 1; j >= 0; --j) {  // stored ascending
        const int64_t row = d.topImages[neuron][j].item<int64_t>();
        out.topImages.push_back({row, m->cache->paths()[static_cast<std::size_t>(row)], d.topNorms[neuron][j].item<double>()});
    }
    if (m->aligner()) {
        out.textsUnavailable = "texts need the model's own CLIP space (this model reaches it through an aligner, which maps components, not neurons)";
        return out;
    }
    if (m->neuronPool != poolFile) {
        m->neuronPoolTexts = readTextList(poolFile);
        m->neuronDictionary = referenceTextDictionary(m->session->text->encode(m->neuronPoolTexts).to(at::kCPU, at::kFloat), 100.0);
        m->neuronPool = poolFile;
    }
    out.pool = poolFile;
    const int components = static_cast<int>(std::min<int64_t>({32, m->neuronDictionary.size(0), m->neuronDictionary.size(1)}));  // the reference's 32
    const SparseCodes codes = orthogonalMatchingPursuit(m->neuronDictionary, d.directions.narrow(0, neuron, 1), components);
    for (const NeuronText& t : topTexts(codes, 0, m->neuronPoolTexts, 10)) out.texts.push_back({t.text, t.coefficient});
    return out;
}

HeatmapResult Explorer::neuronMap(int layer, int64_t neuron) {
    m->requireImage();
    const auto start = Clock::now();
    const Model& model = m->model();
    checkNeuron(model.vision, layer, neuron);
    if (model.vision.hierarchical() || !model.vision.hasClassToken())
        throw InputError("neuron map", "is computed for plain ViTs with a class token");
    const at::Tensor patches = neuronActivationMap(model, m->pixels, {{layer, neuron}})[0];
    const Heatmap map = heatmapFromTokenScores(patches.flatten(), 0, static_cast<int>(patches.size(0)), static_cast<int>(patches.size(1)),
                                               m->pixels.size(2), m->pixels.size(3));
    HeatmapResult r;
    r.method = "neuron";
    r.text = "mlp." + std::to_string(layer) + " neuron " + std::to_string(neuron);
    r.patches = toFloatGrid(map.patches);
    r.pixels = toFloatGrid(map.pixels);
    r.seconds = secondsSince(start);
    return r;
}

NeuronList Explorer::mlpNeurons(int layer, const std::string& text, int top) {
    m->requireImage();
    const Model& model = m->model();
    NeuronList out;
    out.layer = layer;
    out.text = text;
    const VisionTower& v = model.vision;
    if (layer < 0 || layer >= v.layers()) throw InputError("mlp." + std::to_string(layer), "is not an MLP of this model");
    out.unavailable = neuronsUnavailable(v, layer);
    if (!out.unavailable.empty()) return out;
    out.neurons = static_cast<int>(v.encoder.blocks[static_cast<std::size_t>(layer)].fc2W.size(1));
    SecondOrderLens& lens = m->lensFor(layer);
    at::NoGradGuard noGrad;
    if (!m->neuronEffects.defined()) m->neuronEffects = lens.compute(m->pixels).effects[0].to(at::kCPU, at::kFloat);
    const at::Tensor& effects = m->neuronEffects;  // [M, E]
    const at::Tensor norms = effects.norm(2, 1).to(at::kDouble);
    const bool scored = !text.empty() && !m->aligner();
    const at::Tensor scores = scored ? at::matmul(effects, m->encode(text).to(at::kCPU, at::kFloat)).to(at::kDouble) : at::Tensor();
    const at::Tensor order = std::get<1>(norms.topk(std::min<int64_t>(top, norms.size(0))));
    for (int64_t i = 0; i < order.size(0); ++i) {
        const int64_t n = order[i].item<int64_t>();
        out.rows.push_back({n, norms[n].item<double>(), scored ? scores[n].item<double>() : std::nan("")});
    }
    return out;
}

std::vector<Hit> Explorer::mlpTopImages(const std::string& mlp, int top) {
    m->requireDataset();
    Component c;
    if (mlp == "pool.mlp" && m->summary.poolHeads > 0) {
        c.kind = Component::Kind::PoolMlp;
    } else {
        int layer = -1;
        try {
            if (mlp.rfind("mlp.", 0) == 0 && mlp.size() > 4 && mlp.find_first_not_of("0123456789", 4) == std::string::npos)
                layer = std::stoi(mlp.substr(4));
        } catch (const std::exception&) {
            layer = -1;
        }
        if (layer < 0 || layer >= m->summary.layers) throw InputError(mlp, "is not an MLP of this model (mlp.0 .. mlp." + std::to_string(m->summary.layers - 1) + ")");
        c.kind = Component::Kind::Mlp;
        c.layer = layer;
    }
    return m->strongestImages(c, top);
}

ProjectionResult Explorer::project(const ProjectionRequest& q, const JobContext& job) {
    m->requireDataset();
    const auto start = Clock::now();
    if (q.headsAsPoints) return projectHeads(q, job);
    const std::vector<Component> set = toComponents(q.heads, m->summary.layers);
    Layout layout;
    if (q.method == "text-axes") {
        layout = textAxesLayout(*m->view, m->axisTexts(q.axes), set);
    } else {
        layout = layoutPoints(imagePoints(*m->view, set, job), parseLayoutMethod(q.method), q.seed, job);
    }
    ProjectionResult r;
    r.request = q;
    for (const Component& c : set) r.components.push_back(c.name());
    r.paths = m->cache->paths();
    r.x.resize(static_cast<std::size_t>(layout.rows()));
    r.y.resize(static_cast<std::size_t>(layout.rows()));
    for (Eigen::Index i = 0; i < layout.rows(); ++i) {
        r.x[static_cast<std::size_t>(i)] = layout(i, 0);
        r.y[static_cast<std::size_t>(i)] = layout(i, 1);
    }
    if (!q.colorColumn.empty()) r.labels = imageLabels(q.colorColumn);
    else if (!q.colorText.empty()) r.color = imageScores(q.colorText, q.heads);
    r.seconds = secondsSince(start);
    return r;
}

ProjectionResult Explorer::projectHeads(const ProjectionRequest& q, const JobContext& job) {
    const auto start = Clock::now();
    const std::vector<Component> heads = m->view->heads();  // every cached head
    const int k = std::max(1, q.headDirections);
    Layout layout;
    if (q.headDirections > 0) {
        const PointMatrix d = headDirectionPoints(*m->view, heads, q.headDirections, job);
        layout = q.method == "text-axes" ? directionTextAxesLayout(d, m->axisTexts(q.axes)) : layoutPoints(d, parseLayoutMethod(q.method), q.seed, job);
    } else if (q.method == "text-axes") {
        layout = headTextAxesLayout(*m->view, m->axisTexts(q.axes), heads);
    } else {
        layout = layoutPoints(headPoints(*m->view, heads, job), parseLayoutMethod(q.method), q.seed, job);
    }
    ProjectionResult r;
    r.request = q;
    r.request.colorColumn = "layer";
    for (Eigen::Index i = 0; i < layout.rows(); ++i) {
        const Component& c = heads[static_cast<std::size_t>(i / k)];
        r.pointNames.push_back(q.headDirections > 0 ? c.name() + " #" + std::to_string(i % k + 1) : c.name());
        r.labels.push_back("layer " + std::to_string(c.layer));
        r.x.push_back(layout(i, 0));
        r.y.push_back(layout(i, 1));
    }
    r.seconds = secondsSince(start);
    return r;
}

std::vector<std::pair<int, int>> HeadComparison::assignedInB(const std::vector<std::pair<int, int>>& cellsOfA) const {
    std::vector<std::pair<int, int>> out;
    for (const auto& cell : cellsOfA) {
        const auto it = std::find(cellsA.begin(), cellsA.end(), cell);
        if (it == cellsA.end()) continue;
        const int b = assigned[static_cast<std::size_t>(it - cellsA.begin())];
        if (b >= 0) out.push_back(cellsB[static_cast<std::size_t>(b)]);
    }
    return out;
}

std::vector<std::pair<int, int>> HeadComparison::assignedInA(const std::vector<std::pair<int, int>>& cellsOfB) const {
    std::vector<std::pair<int, int>> out;
    for (const auto& cell : cellsOfB) {
        const auto it = std::find(cellsB.begin(), cellsB.end(), cell);
        if (it == cellsB.end()) continue;
        const auto a = std::find(assigned.begin(), assigned.end(), static_cast<int>(it - cellsB.begin()));
        if (a != assigned.end()) out.push_back(cellsA[static_cast<std::size_t>(a - assigned.begin())]);
    }
    return out;
}

namespace {

std::vector<std::pair<int, int>> gridCells(const std::vector<Component>& heads, int layers) {
    std::vector<std::pair<int, int>> out;
    for (const Component& c : heads) out.emplace_back(c.kind == Component::Kind::PoolHead ? layers : c.layer, c.head);
    return out;
}

}  // namespace

HeadComparison Explorer::compareHeads(const std::string& spec, const JobContext& job) {
    m->requireDataset();
    // The second model opens in an explorer of its own (the open one stays as it is if this fails).
    auto other = std::make_unique<Explorer>(m->cacheRoot);
    other->setPrecision(m->precision);
    other->setWholeImage(m->wholeImage);
    const ModelSummary b = other->openModel(spec, m->model().vision.device().is_cuda() ? "cuda" : "cpu");
    if (!b.clip && b.aligner.empty())
        throw InputError(spec, "is not a CLIP model and has no aligner.safetensors beside it: heads are compared in CLIP space");
    other->openDataset(m->datasetFolder, job, conventionName(m->convention));
    const HeadMatching match = matchHeads(*m->view, *other->m->view, HeadMatchParams{}, job);
    HeadComparison out;
    out.modelA = m->summary.name;
    out.modelB = b.name;
    out.specB = spec;
    out.summaryB = b;
    for (const Component& c : match.headsA) out.headsA.push_back(c.name());
    for (const Component& c : match.headsB) out.headsB.push_back(c.name());
    out.cellsA = gridCells(match.headsA, m->summary.layers);
    out.cellsB = gridCells(match.headsB, b.layers);
    out.cka = match.cka;
    out.assigned.assign(match.headsA.size(), -1);
    for (const HeadPair& pair : match.assignment) out.assigned[static_cast<std::size_t>(pair.a)] = pair.b;
    out.images = static_cast<int64_t>(match.rowsA.size());
    m->partner = std::move(other);
    return out;
}

Explorer* Explorer::partner() { return m->partner.get(); }

std::vector<float> Explorer::imageScores(const std::string& text, const std::vector<std::pair<int, int>>& heads) {
    m->requireDataset();
    const at::Tensor scores =
        textScores(*m->view, m->encode(text), toComponents(heads, m->summary.layers)).to(at::kCPU, at::kFloat).contiguous();
    return std::vector<float>(scores.data_ptr<float>(), scores.data_ptr<float>() + scores.numel());
}

RetrievalResult Explorer::retrieveText(const std::string& text, const std::vector<std::pair<int, int>>& heads, int top) {
    m->requireDataset();
    RetrievalResult r;
    r.query = text;
    const at::Tensor t = m->encode(text);
    const std::vector<Component> set = toComponents(heads, m->summary.layers);
    for (const Component& c : set) r.components.push_back(c.name());
    r.global = toHits(retrieveByText(*m->view, t, {}, top));
    if (!set.empty()) r.restricted = toHits(retrieveByText(*m->view, t, set, top));
    return r;
}

RetrievalResult Explorer::retrieveImage(const std::string& path, const std::vector<std::pair<int, int>>& heads, int top) {
    m->requireDataset();
    RetrievalResult r;
    r.query = path;
    r.byImage = true;
    const std::vector<Component> set = toComponents(heads, m->summary.layers);
    for (const Component& c : set) r.components.push_back(c.name());
    at::NoGradGuard noGrad;
    const Model& model = m->model();
    const Decomposition dec = decomposeImages(model, loadAndPreprocess({path}, model.preprocess).to(model.vision.device()),
                                              m->cache->decomposeOptions());
    r.global = toHits(retrieveByImage(*m->view, decompositionQuery(dec, {}, m->aligner()), {}, top));
    if (!set.empty()) r.restricted = toHits(retrieveByImage(*m->view, decompositionQuery(dec, set, m->aligner()), set, top));
    return r;
}

void Explorer::setAblationTask(const AblationTask& task, const JobContext& job) {
    m->requireDataset();
    m->ablationReady = false;
    std::vector<std::string> classNames;
    m->classifier = loadClassifier(task.classes, *m->session->text, &classNames);
    m->labels = loadRowLabels(task.labels, task.labelColumn, task.groupColumns, task.classes, classNames, m->cache->paths());
    m->refView.reset();
    m->openCacheFor(task.referenceImages, job, m->refCache, nullptr);
    m->refView = std::make_unique<CacheView>(*m->refCache, m->aligner());
    m->ablationReady = true;
}

bool Explorer::hasAblationTask() const { return m->ablationReady; }

AblationOutcome Explorer::ablate(const std::vector<std::string>& names) {
    if (!m->ablationReady) throw InputError("ablation", "no task is set (labels, classes and a reference split)");
    std::vector<Component> comps;
    for (const std::string& n : names) comps.push_back(m->view->parse(n));
    const AblationResult r = runAblation(*m->view, *m->refView, m->classifier, m->labels, comps);
    AblationOutcome o;
    for (const Component& c : r.ablated) o.ablated.push_back(c.name());
    o.accuracyBefore = r.before.accuracy;
    o.accuracyAfter = r.after.accuracy;
    o.worstBefore = r.before.worstGroup;
    o.worstAfter = r.after.worstGroup;
    o.worstGroupBefore = r.before.worstGroupName;
    o.worstGroupAfter = r.after.worstGroupName;
    for (const auto& [g, acc] : r.before.groupAccuracy)
        if (!g.empty()) o.groups.push_back({g, acc, r.after.groupAccuracy.at(g), r.before.groupCount.at(g)});
    return o;
}

std::vector<ComponentValue> Explorer::discoverSpurious(const std::vector<std::string>& spurious, const std::vector<std::string>& core, int k) {
    if (!m->ablationReady) throw InputError("ablation", "no task is set (labels, classes and a reference split)");
    // The ablation panel ticks heads: discovery among heads (the CLI also ranks MLPs and the embedding).
    const auto found = discoverSpuriousComponents(*m->refView, m->session->text->encodeDescriptions(spurious),
                                                  m->session->text->encodeDescriptions(core), k, true);
    std::vector<ComponentValue> out;
    for (const ComponentScore& s : found) out.push_back({s.component.name(), s.component.layer, s.component.head, s.score});
    return out;
}

// ---- Neurons over the open dataset, token norms of every block (explorer.h's last block) ----

namespace {

// The layer whose neurons a dataset pass reads: refused (one line) where it has no second-order
// effect, or where texts would not be in the neurons' space (an aligner maps components only).
void checkNeuronPass(const VisionTower& v, int layer, bool aligned, const char* what) {
    if (layer < 0 || layer >= v.layers())
        throw InputError("mlp." + std::to_string(layer), "is not an MLP of this model");
    if (const std::string why = neuronsUnavailable(v, layer); !why.empty())
        throw InputError("mlp." + std::to_string(layer), why);
    if (aligned)
        throw InputError(what,
                         "needs texts in the model's own CLIP space (this model reaches it through an aligner, which "
                         "maps components, not neurons)");
}

}  // namespace

// The ranking cache's basis: the whole embedding where its sums fit the budget, else the asked
// property's span, then the model's other properties' (in name order) as far as the rank allows.
at::Tensor Explorer::Impl::rankBasis(const at::Tensor& asked, int64_t neurons) {
    constexpr int64_t kRankCacheBytes = int64_t(256) << 20;
    const int64_t dim = asked.size(1), rank = NeuronSpanStatistics::rankForBudget(neurons, kRankCacheBytes);
    if (rank >= dim) return at::eye(dim, at::kFloat);
    at::Tensor basis = NeuronSpanStatistics::spanBasis(asked, rank);
    for (const std::string& name : summary.propertyNames) {
        if (basis.size(0) >= rank) break;
        const at::Tensor more = session->text->encodeDescriptions(readTextList(propertyWordList(name, textModel())));
        basis = NeuronSpanStatistics::spanBasis(at::cat({basis, more.to(at::kCPU, at::kFloat)}), rank);
    }
    return basis;
}

NeuronRanking Explorer::rankLayerNeurons(int layer, const std::string& propertyOrFile, const JobContext& job) {
    m->requireDataset();
    const auto start = Clock::now();
    const Model& model = m->model();
    checkNeuronPass(model.vision, layer, m->aligner() != nullptr, "ranking neurons by a property");
    std::error_code ec;
    const std::string file =
        fs::is_regular_file(propertyOrFile, ec) ? propertyOrFile : propertyWordList(propertyOrFile, m->textModel());
    const at::Tensor descriptions = m->session->text->encodeDescriptions(readTextList(file)).to(at::kCPU, at::kFloat);
    SecondOrderLens& lens = m->lensFor(layer);
    const std::vector<std::string>& paths = m->cache->paths();
    const std::string key = m->summary.fingerprint + "|" + m->cache->fingerprint() + "|" + std::to_string(layer) + "|" +
                            neuronConventionName(lens.convention()) + "|" + std::to_string(paths.size());
    NeuronRanking out;
    out.layer = layer;
    out.property = propertyOrFile;
    if (m->rankStats && m->rankKey == key) out.scores = m->rankStats->ranked(descriptions);
    out.cached = !out.scores.empty();
    if (!out.cached) {  // a pass over the images: this property's scores, and the cache for the next
        m->rankStats.reset();
        m->rankKey.clear();
        auto stats = std::make_unique<NeuronSpanStatistics>(m->rankBasis(descriptions, lens.neurons()), lens.neurons());
        NeuronPropertyScorer scorer(descriptions, lens.neurons());
        const auto pixels = [&](int64_t first, int64_t n) {
            return loadAndPreprocess(std::vector<std::string>(paths.begin() + first, paths.begin() + first + n),
                                     model.preprocess)
                .to(model.vision.device());
        };
        forEachSecondOrderBatch(lens, static_cast<int64_t>(paths.size()), pixels, 16, job, "neurons' property scores",
                                [&](int64_t, const SecondOrderEffects& e) {
                                    const at::Tensor effects = e.effects.to(at::kCPU, at::kFloat);
                                    const at::Tensor total =
                                        neuronTotal(e.output.to(at::kCPU, at::kFloat), lens.convention(), 100.0);
                                    scorer.add(effects, total);
                                    stats->add(effects, total);
                                });
        out.scores = scorer.ranked();
        m->rankStats = std::move(stats);
        m->rankKey = key;
    }
    out.images = m->rankStats->images();
    out.cacheRank = m->rankStats->rank();
    out.cacheBytes = m->rankStats->bytes();
    out.seconds = secondsSince(start);
    return out;
}

RetrievalResult Explorer::retrieveThroughNeurons(int layer, const std::vector<int64_t>& neurons,
                                                 const std::string& text, int top, const JobContext& job) {
    m->requireDataset();
    const Model& model = m->model();
    checkNeuronPass(model.vision, layer, m->aligner() != nullptr, "retrieval through neurons");
    if (neurons.empty()) throw InputError("retrieval through neurons", "choose a neuron first");
    if (text.empty()) throw InputError("retrieval through neurons", "type a text first");
    for (int64_t n : neurons) checkNeuron(model.vision, layer, n);
    const at::Tensor t = m->encode(text).to(at::kCPU, at::kFloat);
    SecondOrderLens& lens = m->lensFor(layer);
    const std::vector<std::string>& paths = m->cache->paths();
    std::vector<at::Tensor> through, global;
    const auto pixels = [&](int64_t first, int64_t n) {
        return loadAndPreprocess(std::vector<std::string>(paths.begin() + first, paths.begin() + first + n),
                                 model.preprocess)
            .to(model.vision.device());
    };
    forEachSecondOrderBatch(lens, static_cast<int64_t>(paths.size()), pixels, 16, job, "retrieving through the neurons",
                            [&](int64_t, const SecondOrderEffects& e) {
                                const NeuronRetrievalScores s = neuronRetrievalScores(
                                    e.effects.to(at::kCPU, at::kFloat), e.output.to(at::kCPU), neurons, t);
                                through.push_back(s.through);
                                global.push_back(s.global);
                            });
    RetrievalResult r;
    r.query = text;
    for (int64_t n : neurons) r.components.push_back("mlp." + std::to_string(layer) + "/" + std::to_string(n));
    const auto hits = [&](const std::vector<at::Tensor>& scores) {
        std::vector<Hit> out;
        for (const auto& [row, score] : topScores(at::cat(scores), top))
            out.push_back({row, paths[static_cast<std::size_t>(row)], score});
        return out;
    };
    r.restricted = hits(through);
    r.global = hits(global);
    return r;
}

TokenNormBlocks Explorer::tokenNormBlocks(bool withRegisters) {
    m->requireImage();
    const auto start = Clock::now();
    if (withRegisters && !m->registerModel) throw InputError("test-time registers", "none found yet");
    const Model& model = withRegisters ? *m->registerModel : m->model();
    const VisionTower& v = model.vision;
    if (v.hierarchical() || v.pool.defined() || !v.hasClassToken())
        throw InputError("token norms of every block",
                         "are shown for plain ViTs with a class token (not Swin, MaxViT or SigLIP)");
    const RegisterFindParams p = registerFindDefaults(model);
    const TokenNormReport t = tokenNorms(model, m->pixels, p);
    TokenNormBlocks out;
    out.threshold = p.registerNormThreshold;
    out.detectionLayer = p.detectionLayer(v.layers());
    const int64_t grid = int64_t(t.gridH) * t.gridW;
    for (int64_t b = 0; b < t.norms.size(0); ++b) {
        const Heatmap map = heatmapFromTokenScores(t.norms[b], t.prefix, t.gridH, t.gridW, m->pixels.size(2),
                                                   m->pixels.size(3), t.suffix);
        const at::Tensor patches = t.norms[b].narrow(0, t.prefix, grid);
        HeatmapResult r;
        r.method = "token-norms";
        r.text = "block " + std::to_string(b);
        r.patches = toFloatGrid(map.patches);
        r.pixels = toFloatGrid(map.pixels);
        out.maps.push_back(std::move(r));
        out.maxOverMedian.push_back(t.maxOverMedian[b].item<double>());
        out.maxNorm.push_back(patches.max().item<double>());
        out.medianNorm.push_back(patches.median().item<double>());
        out.outliers.push_back((t.norms[b] > p.registerNormThreshold).sum().item<int64_t>());
    }
    if (!out.maps.empty()) out.maps.front().seconds = secondsSince(start);
    return out;
}

}  // namespace vitscope
