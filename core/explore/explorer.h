#pragma once
// The engine behind the desktop application: one object that owns a model (and its text side),
// the current image's decomposition and the open dataset cache, and answers the GUI's questions
// with plain value types. Its header has no torch types, so ui/ includes it without LibTorch;
// every call runs on the GUI's worker thread (ui/worker.h), never on the GUI thread.
#include "analysis/ledger.h"
#include "job.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vitscope {

// 8-bit RGB, rows packed (stride = 3 * width).
struct RgbImage {
    int width = 0, height = 0;
    std::vector<uint8_t> rgb;
};

struct ModelSummary {
    std::string spec, name, family, weightsPath, fingerprint, device;
    std::string precision = "fp32";  // what the model runs in (model/precision.h)
    int layers = 0, heads = 0, imageSize = 0, patchSize = 0, embedDim = 0;
    // SigLIP: the attention-pooling head's heads. They are row `layers` of the head grid (and of
    // every (layer, head) pair the explorer takes or returns), named "pool.hK".
    int poolHeads = 0;
    int gridLayers() const { return layers + (poolHeads > 0 ? 1 : 0); }
    // Swin: heads of each layer (fewer in early stages) and each layer's stage / block label
    // ("s2.b3"); empty for plain ViTs (every layer has `heads`).
    std::vector<int> headsPerLayer;
    std::vector<std::string> layerLabels;
    // MaxViT: MBConv blocks; block K precedes grid rows layersPerConv * K and the next.
    int convBlocks = 0, layersPerConv = 0;
    int headsIn(int row) const {
        if (row == layers && poolHeads > 0) return poolHeads;
        return headsPerLayer.empty() ? heads : headsPerLayer[static_cast<std::size_t>(row)];
    }
    bool clip = false;
    bool registers = false;          // plain ViTs with a class token: token norms and test-time registers apply
    bool sigmoidScores = false;      // SigLIP: a probability is sigmoid(scale * cos + bias)
    std::string preprocessing;       // in words, for export records
    bool surgeryEnsemble = false;    // CLIP Surgery's texts through its prompt ensemble (BPE models)
    std::string aligner, textModel;  // non-CLIP models: the aligner and the CLIP model for texts
    // The text side's words when it has a word vocabulary (the bundled models); empty when it
    // reads any text (BPE, SentencePiece).
    std::vector<std::string> vocabulary;
    // The heatmap methods this model defines (heatmapMethodsFor: Swin / MaxViT only decomposition and raw).
    std::vector<std::string> heatmapMethods;
    std::vector<std::string> heatmapMethodSummaries;  // one line each (what it computes, its reference), for tooltips
    int cheferDefaultStartLayer = 0;  // the family's reference default: -1 (CLIP / SigLIP, last layer only) or 0 (every layer)
    // The property word lists that fit this model's text vocabulary (color, shape, ...).
    std::vector<std::string> propertyNames;
};

struct ImageResult {
    std::string path;
    RgbImage crop;            // the model's input crop
    int gridH = 0, gridW = 0;
    // The norm of each component's direct contribution (CLIP space), as the grid draws it: heads
    // [L, H] (SigLIP: [L + 1, H]), MLPs per row (SigLIP: the pooling row's is pool.mlp), MaxViT's
    // MBConv branch of block K on the row of its first attention unit.
    GridValues norms;
    std::string openingText;      // the opening view's text (Explorer::firstView); empty otherwise
    int sourceWidth = 0, sourceHeight = 0;
    std::string inputNote;        // what of the image the model sees (describeModelInput); "" when all of it
    bool wholeImage = false;      // analysed with setWholeImage(true): squashed, not cropped
    double seconds = 0;       // decomposition time
};

struct HeatmapRequest {
    std::string text;
    std::string method = "decomposition";
    std::vector<std::pair<int, int>> heads;  // restriction (layer, head); empty: all
    int surgeryBlocks = 6;
    bool subtractReference = false;  // the reference texts' mean (set with setReferenceTexts)
    // The references' settings (HeatmapParams; the defaults below are the references' own):
    std::optional<int> cheferStartLayer;  // Chefer: -1 the last layer only, N from layer N; unset: the family's default
    std::string gradcamTarget = "auto";   // Grad-CAM: auto (probability with a label list, else logit), probability, logit
    std::vector<std::string> labels;      // Grad-CAM's label list; empty: the reference texts stand in when subtractReference
    std::string siglipMap = "pool";       // SigLIP's decomposition map with no heads: pool (TextSpan's demo) or encoder
    int64_t classIndex = -1;              // gradient methods on a classifier: the class logit (text may then be empty)
    // LeGrad's reference input (448 in its README): the analysed image squashed to inputSize x
    // inputSize and the position embeddings resampled (setInputSize) for this map only; the
    // result's grids follow that size (not the analysed crop's). 0: the analysed image as it is.
    // Methods that run the model only (not the decomposition, which reads the analysed terms).
    int inputSize = 0;
    // method "neuron": the activation map of neuron `neuron` of block `neuronLayer` (no text needed).
    int neuronLayer = -1;
    int64_t neuron = -1;
    // The map of the test-time-register model (findTestTimeRegisters) instead of the model's.
    bool withRegisters = false;
    // method "sae-latent": the open SAE's latent `saeLatent`, its pre-activation's share per image
    // token (the heads' part; analysis/sae.h saeLatentTokenMap). No text needed.
    int64_t saeLatent = -1;
    // method "token-norms": the norms of block normLayer's output tokens (-1: the block the register
    // reference reads, RegisterFindParams' detection layer).
    int normLayer = -1;
};

struct HeatmapResult {
    std::string method, text;
    // Plain ViTs: said when most of the map's positive mass sits on high-norm outlier tokens (the
    // register reference's threshold at its detection block): artefacts, not the object.
    std::string warning;
    FloatGrid patches;  // [gh, gw]
    FloatGrid pixels;   // upsampled to the crop
    double seconds = 0;
};

struct DatasetSummary {
    std::string images, cacheDir;
    std::string labelsFile;                  // labels.csv beside the images (analysis/labels.h labelsBeside); "" when none
    std::vector<std::string> labelColumns;   // its columns other than "file"
    int64_t count = 0, skipped = 0;
    std::vector<int> cachedLayers;
    bool resumed = false;
    double imagesPerSecond = 0;
};

struct TextPick {
    std::string text;
    double explained = 0, cumulative = 0;
};

struct HeadDescription {
    std::string head;
    int layer = -1, index = -1;
    double totalVariance = 0;
    std::vector<TextPick> picks;
    std::string convention;  // of the cached terms TextSpan ran on ("exact" / "textspan" / "vit-decompose")
    int rank = 0;            // the text projection's rank (TextSpanParams::rank); 0: not projected (SigLIP pooling heads)
};

struct Hit {
    int64_t row = -1;
    std::string path;
    double score = 0;
};

// The neurons of one MLP by their second-order effect on the open image (analysis/second_order.h,
// the reference's convention: units of 100 / |output|), largest first.
struct NeuronRow {
    int64_t neuron = 0;
    double norm = 0;       // |effect|
    double textScore = 0;  // <effect, text>; NaN without a text or through an aligner
};
struct NeuronList {
    int layer = -1;
    std::string text;
    int neurons = 0;              // the layer's
    std::vector<NeuronRow> rows;  // the `top` largest effects
    std::string unavailable;      // why there are none (the last block, a windowed or pooled model)
};

// One neuron over the open dataset (second_order_lens: compute_pcas.py's principal direction of
// its top images, compute_sparse_decomposition.py's texts for it), in the reference's convention.
struct WeightedText {
    std::string text;
    double weight = 0;
};
struct NeuronDetail {
    int layer = -1;
    int64_t neuron = -1;
    std::vector<WeightedText> texts;  // its sparse text decomposition, largest |coefficient| first
    std::vector<Hit> topImages;       // the images of its largest centred effects, largest first (score: the norm)
    int topK = 0;                     // images behind its principal direction
    int64_t images = 0;               // of the dataset
    std::string pool;                 // the texts' pool file
    std::string textsUnavailable;     // why there are no texts (a model whose output is not CLIP's space)
};

// The test-time-register model the explorer keeps (analysis/registers.h, the reference's defaults).
struct RegisterSummary {
    int images = 0, imagesWithOutliers = 0;  // read to find the register neurons
    std::vector<std::string> neurons;        // "layer.neuron", those the intervention uses, best first
    std::string settings;                    // the find and intervention parameters in words
};

// The projector: the open dataset's images laid out in 2-D (analysis/projection.h, the references'
// defaults), coloured by a text's score.
struct ProjectionRequest {
    std::string method = "umap";             // pca | umap | tsne | text-axes
    std::vector<std::pair<int, int>> heads;  // points: the sum of these heads' terms; empty: the whole representation
    bool headsAsPoints = false;              // points: the heads themselves (each its unit mean direction), `heads` ignored
    int headDirections = 0;                  // headsAsPoints: 0 - the mean direction; K - each head's top K principal directions
    std::string colorText;                   // colour: each image's score for it (through the heads); empty: none
    std::string colorColumn;                 // or: a column of the dataset's labels.csv (then colorText is not scored)
    std::vector<std::string> axes;           // text-axes: A, B, C, D (x = A - B, y = C - D)
    uint64_t seed = 0;
};
struct ProjectionResult {
    ProjectionRequest request;
    std::vector<std::string> components;  // the points' components ("" list: the whole representation)
    std::vector<float> x, y;              // per cached image, in the cache's order
    std::vector<std::string> paths;
    std::vector<float> color;             // per image (empty without a colour text)
    std::vector<std::string> labels;      // per image, request.colorColumn's value ("": no row); empty without a column
    std::vector<std::string> pointNames;  // headsAsPoints: each point's head ("3.1"; "3.1 #2": its 2nd direction); labels name its layer
    double seconds = 0;
};

// The open model's heads against another model's over the open dataset (analysis/head_matching.h):
// linear CKA of every pair in the shared CLIP space and the one-to-one assignment.
struct HeadComparison {
    std::string modelA, modelB;            // display names
    std::string specB;
    std::vector<std::string> headsA, headsB;  // components.txt order of each
    std::vector<double> cka;                  // [headsA, headsB] row-major
    std::vector<int> assigned;                // per head of A: its head of B (-1: none)
    int64_t images = 0;
    // Each head's grid cell (layer, head), in headsA / headsB order (SigLIP's pooling heads: row `layers`).
    std::vector<std::pair<int, int>> cellsA, cellsB;
    ModelSummary summaryB;  // the second model as Explorer::partner() opened it
    double ckaAt(std::size_t a, std::size_t b) const { return cka[a * headsB.size() + b]; }
    // The heads of B assigned to these heads of A (grid cells, A's order; unassigned heads left out),
    // and the heads of A assigned to these heads of B.
    std::vector<std::pair<int, int>> assignedInB(const std::vector<std::pair<int, int>>& cellsOfA) const;
    std::vector<std::pair<int, int>> assignedInA(const std::vector<std::pair<int, int>>& cellsOfB) const;
};

struct RetrievalResult {
    std::string query;     // the text, or the query image's path
    bool byImage = false;
    std::vector<std::string> components;
    std::vector<Hit> global, restricted;
};

struct GroupAccuracy {
    std::string group;
    double before = 0, after = 0;
    int64_t count = 0;
};

struct AblationOutcome {
    std::vector<std::string> ablated;
    double accuracyBefore = 0, accuracyAfter = 0;
    double worstBefore = 0, worstAfter = 0;
    std::string worstGroupBefore, worstGroupAfter;
    std::vector<GroupAccuracy> groups;
};

// A zero-shot task over the open dataset for the ablation panel: labels.csv (matched by path),
// the class column, "label<TAB>prompt" classes, optional group columns, and a cache of another
// split of the same model from which means are taken.
struct AblationTask {
    std::string labels, labelColumn = "label", classes;
    std::vector<std::string> groupColumns;
    std::string referenceImages;  // image folder of the reference split (cached like the dataset)
};

struct ComponentValue {
    std::string name;
    int layer = -1, head = -1;  // head -1 for MLPs / the embedding
    double value = 0;
};

// Concept dictionaries on the open image (core/explore/concepts.h): SpLiCE's sparse text
// decomposition, and a sparse autoencoder's active latents traced exactly to the components.
struct ConceptWeight {
    int64_t index = -1;  // the vocabulary line
    std::string text;
    double weight = 0;
};
struct SpliceView {
    std::vector<ConceptWeight> concepts;  // non-zero weights, largest first
    double cosine = 0;                    // the reconstruction's cosine with the image (the reference's)
    double l1 = 0;
    int64_t vocabulary = 0, meanImages = 0;  // vocabulary lines; the images the mean came from
    std::string vocabFile, settings;
    std::string component;  // "" : the image's output
};
struct SaeSummary {
    std::string path, layout, site, description;
    int64_t dIn = 0, dSae = 0;
    bool named = false;  // its latents are named by texts (an output SAE of a CLIP model)
};
struct SaeLatentRow {
    int64_t latent = -1;
    double activation = 0, pre = 0;
    std::string name;  // the nearest text of its decoder direction (MSAE's naming); "" when unnamed
    double nameScore = 0;
    double similarity = 0;  // searchSaeLatents: the searched text's cosine with its decoder direction
};
struct SaeImageLatents {
    std::vector<SaeLatentRow> active;  // by activation, largest first
    double maxAbsError = 0;            // max |row sum - pre-activation| over the rows (exactness)
    std::string namingPool;            // the texts the names come from
};
struct SaeLatentDetail {
    SaeLatentRow row;     // on the open image (activation 0 when it is not active there)
    GridValues grid;      // its pre-activation's share per head and MLP, as the grid draws values
    std::vector<ComponentValue> others;  // embed, attention biases, post_bias, sae_bias
    std::vector<Hit> topImages;  // over the open dataset (output SAEs), score: the activation
    std::string topNote;         // why there are none
};

// Component values (property scores) placed on the grid: heads at their cells (SigLIP's pooling
// heads on the last row), "mlp.L" / "pool.mlp" in the MLP column, MaxViT's "conv.K" on the row of
// block K's first attention unit; cells without a value are NaN.
GridValues componentGrid(const ModelSummary& model, const std::vector<ComponentValue>& values);

// runtime.h's process-wide compute settings, for front-ends that include no torch header.
void configureComputeRuntime();

// The name a model is shown by (window title, status line): a hub snapshot's ORG/NAME, a
// checkpoint file's stem, a folder's name (with its parent's when it is named after a layout,
// "clip-tiny/hf").
std::string modelDisplayName(const std::string& spec);

// Models found in the Hugging Face hub cache and ~/.cache/clip (for the model picker).
std::vector<std::string> discoveredModels();

// Writes a shapes-world dataset (images/, masks/, labels.csv) into outDir unless a complete one
// (labels.csv written last) is there. split: standard, spurious-train or spurious-test.
void ensureShapesWorld(const std::string& outDir, int64_t count, uint64_t seed, const std::string& split, const JobContext& job);

// An aligner fitted by Explorer::fitAligner (vitscope-cli align's figures).
struct AlignerFitSummary {
    std::string path, model, clipModel;
    int64_t trained = 0, heldOut = 0;
    double cosine = 0, sharedCosine = 0;  // held out: per-component maps, one shared ridge map
};

// ---- Neuron ranking and retrieval over the open dataset, token norms of every block ----
// (Explorer::rankLayerNeurons / retrieveThroughNeurons / tokenNormBlocks, at the end of explorer.cpp)

// A layer's neurons by Beyond CLIP's property score over the open dataset (analysis/neurons.h
// rankNeurons: `neurons rank`'s numbers), best first.
struct NeuronRanking {
    int layer = -1;
    std::string property;                            // as asked: a word list's name or a file
    std::vector<std::pair<int64_t, double>> scores;  // (neuron, score), every neuron of the layer
    int64_t images = 0;
    double seconds = 0;
    // The layer's ranking cache (Explorer::rankLayerNeurons): every neuron's sums along a basis of
    // `cacheRank` directions, `cacheBytes` in memory; `cached`: this ranking came from them (no pass
    // over the images).
    bool cached = false;
    int64_t cacheRank = 0, cacheBytes = 0;
};

// Every block's output token norms of the open image (analysis/registers.h tokenNorms), one map each.
struct TokenNormBlocks {
    std::vector<HeatmapResult> maps;                         // per block in order: method "token-norms", text "block L"
    std::vector<double> maxOverMedian, maxNorm, medianNorm;  // per block, over the patch tokens
    std::vector<int64_t> outliers;                           // per block: tokens whose norm is over the threshold
    double threshold = 0;     // the register reference's outlier threshold (RegisterFindParams)
    int detectionLayer = -1;  // the block where the reference reads the outliers
};

class Explorer {
public:
    explicit Explorer(std::string cacheRoot);
    ~Explorer();
    Explorer(const Explorer&) = delete;
    Explorer& operator=(const Explorer&) = delete;

    // Opens a model the CLI can load; a non-CLIP model uses `aligner` (default: aligner.safetensors
    // beside it) and the CLIP model recorded in it. Closes the image and dataset of the old model.
    ModelSummary openModel(const std::string& spec, const std::string& device = "auto", const std::string& aligner = {});
    bool hasModel() const;
    // The precision models are opened in from now on ("fp32", "bf16", "fp16", "tf32" or "auto";
    // supportedPrecisions(device) in model/precision.h lists what a device has). Takes effect at
    // the next openModel (reopen the model to switch); an unsupported name fails there with one
    // line naming the device. Default fp32.
    void setPrecision(const std::string& name);
    const std::string& precision() const;
    const ModelSummary& model() const;
    // Fits an aligner for `model` (a non-CLIP model) into the open model's space (a CLIP model)
    // on the open dataset's images, as `vitscope-cli align` does with its defaults, and saves it
    // at `out`. The open model, image and dataset stay as they are.
    // `procedure`: "vitscope" (the default) or "reference" (vit-decompose's, with its bias split).
    AlignerFitSummary fitAligner(const std::string& model, const std::string& out, const std::string& procedure, const JobContext& job);

    // Decomposes one image file (kept for heatmaps and the ledger). Throws InputError naming
    // the file for non-images, corrupt files and images over the size limit.
    ImageResult analyseImage(const std::string& path);
    // Images analysed from now on: the whole image squashed to the input size instead of the
    // model's own preprocessing (the reference's centre crop). A named option; off by default.
    void setWholeImage(bool whole);
    bool wholeImage() const;
    bool hasImage() const;

    HeatmapResult heatmap(const HeatmapRequest& request);
    // One decomposition heatmap per head (small multiples), from the kept per-token terms.
    std::vector<HeatmapResult> headHeatmaps(const std::string& text, const std::vector<std::pair<int, int>>& heads);
    Ledger ledger(const std::string& text);
    void setReferenceTexts(const std::vector<std::string>& texts);
    int loadReferenceTexts(const std::string& file);  // a text list file

    // Builds (or resumes, or reuses) the cache of an image folder under the cache root and opens it.
    // `convention`: of the cached terms, "exact" (vitscope's), "textspan" (the TextSpan
    // reference's data) or "vit-decompose" (Swin / MaxViT: that reference's terms, detach block
    // 0,0); each has its own cache. Reference splits opened later follow it.
    DatasetSummary openDataset(const std::string& images, const JobContext& job, const std::string& convention = "exact");
    bool hasDataset() const;
    const std::vector<std::string>& datasetPaths() const;
    // The opening view of the open dataset: for a labelled shapes-world folder, the first scene
    // with one object (no distractor to light instead) and its "a {color} {shape}"; otherwise the
    // first image and no text.
    struct FirstView {
        std::string image, text;
    };
    FirstView firstView() const;

    // TextSpan over every cached head with a text pool file; kept for the grid and head panel.
    // TextSpan over every cached head (perHead is clamped to the pool size and embedding dim).
    std::vector<HeadDescription> describeHeads(const std::string& poolFile, int perHead, int rank, const JobContext& job);
    const std::vector<HeadDescription>& descriptions() const;
    // Property score of every component for a property name (color, shape, ...) or a file of
    // descriptions.
    std::vector<ComponentValue> propertyScores(const std::string& propertyOrFile, const JobContext& job);
    // The dataset images along a head's first description (its largest term norms before TextSpan).
    std::vector<Hit> headTopImages(int layer, int head, int top);
    // An MLP's ("mlp.L", SigLIP's "pool.mlp") top images: where it writes the most (the norm of
    // its direct contribution), as a head's before it is described.
    std::vector<Hit> mlpTopImages(const std::string& mlp, int top);
    // The open image's neurons of block `layer` by second-order effect, with their scores for `text`
    // (may be empty). Not an error where there is no such effect: NeuronList::unavailable says why.
    NeuronList mlpNeurons(int layer, const std::string& text, int top);
    // Neuron `neuron` of block `layer` over the open dataset: its top images and (a CLIP model) its
    // texts from `poolFile`. The layer's summary (every neuron's mean, top images, principal
    // direction: analysis/neurons.h) is built on first use in two passes over the dataset's images
    // (cancellable; saved under the cache folder, resumed, reused by later sessions) and kept.
    NeuronDetail neuronDetail(int layer, int64_t neuron, const std::string& poolFile, const JobContext& job);
    // The neuron's activation at every patch of the open image (compute_segmentation.py's map of
    // one neuron); heatmap() answers the method "neuron" with it.
    HeatmapResult neuronMap(int layer, int64_t neuron);
    // The norms of block `layer`'s output tokens of the open image (-1: the register reference's
    // detection block); heatmap() answers the method "token-norms" with it.
    HeatmapResult tokenNormMap(int layer, bool withRegisters = false);
    // Finds the register neurons over the open dataset's images (find_register_neurons with the
    // family's defaults, at most its 500 images) and keeps the test-time-register model (one
    // register token) beside the model: HeatmapRequest::withRegisters maps through it. InputError
    // (the state unchanged) where the model has no outlier tokens on these images.
    RegisterSummary findTestTimeRegisters(const JobContext& job);
    void dropTestTimeRegisters();
    bool hasTestTimeRegisters() const;
    // The open dataset's images laid out (cancellable; deterministic for the seed).
    ProjectionResult project(const ProjectionRequest& request, const JobContext& job);
    ProjectionResult projectHeads(const ProjectionRequest& request, const JobContext& job);  // headsAsPoints
    // Caches the open dataset with the model `spec` (a CLIP model, or one with its aligner beside
    // it), then matches every head of the open model with every head of it (cancellable).
    // The compared model is kept open beside this one, on the same dataset (its own explorer, asked
    // the same questions for the side-by-side views) until another comparison, model or dataset.
    HeadComparison compareHeads(const std::string& spec, const JobContext& job);
    Explorer* partner();  // nullptr when no comparison is open
    // How far each head's and MLP's contributions to the images `rows` (the cache's order) are from
    // its contributions to the other images (analysis/projection_points.h selectionSeparation).
    std::vector<ComponentValue> selectionSeparation(const std::vector<int64_t>& rows, const JobContext& job);
    // Every cached image's score for a text (retrieval's: through the heads, else the output's cosine).
    // SpLiCE on the open image's output (analysis/splice.h, the reference's settings but l1): the
    // vocabulary's lines embedded as they are, the image mean over the open dataset's outputs.
    // component: "" (the image's output) or a component's term ("L.H", "mlp.L", "embed"), centred by
    // that component's own mean over the open dataset (its exact-convention cache), as
    // analysis/splice.h explains.
    SpliceView spliceImage(const std::string& vocabFile, double l1, const std::string& component, const JobContext& job);
    // A sparse autoencoder for this model (analysis/sae.h: vitscope / ViT-Prisma / SAELens / MSAE
    // files); refused when its width is not the model's at its site. Kept until another model.
    SaeSummary openSae(const std::string& path);
    void closeSae();
    // The open image's active latents, named by the pool's texts when the SAE allows it.
    SaeImageLatents saeLatents(const std::string& poolFile);
    SaeLatentDetail saeLatent(int64_t latent, int topImages);
    // Latents whose decoder direction is nearest the text (output SAEs of CLIP models), best first.
    std::vector<SaeLatentRow> searchSaeLatents(const std::string& text, int count);

    // The open dataset's labels.csv column for every cached image, in the cache's order.
    std::vector<std::string> imageLabels(const std::string& column) const;
    std::vector<float> imageScores(const std::string& text, const std::vector<std::pair<int, int>>& heads);
    RetrievalResult retrieveText(const std::string& text, const std::vector<std::pair<int, int>>& heads, int top);
    RetrievalResult retrieveImage(const std::string& path, const std::vector<std::pair<int, int>>& heads, int top);

    void setAblationTask(const AblationTask& task, const JobContext& job);
    bool hasAblationTask() const;
    AblationOutcome ablate(const std::vector<std::string>& components);
    // Heads ranked by score(spurious) - score(core) on the reference split; the top k.
    std::vector<ComponentValue> discoverSpurious(const std::vector<std::string>& spurious, const std::vector<std::string>& core, int k);

    // ---- Neurons over the open dataset (a pass of the layer's second-order lens over its images;
    // cancellable) and token norms of every block ----
    // The layer's neurons ranked by a property (a word list's name or a file of descriptions), as
    // `neurons rank` ranks a second-order run of the same images. InputError where the layer has no
    // second-order effect or the model reaches CLIP space through an aligner. The pass over the
    // images also keeps the layer's ranking cache (analysis/neurons.h NeuronSpanStatistics: at most
    // 256 MB, one layer; along the whole embedding where that fits, else the property's span and the
    // model's other properties' as far as it does), so another property of the same layer, dataset,
    // model and convention is ranked from it without a pass; any other key builds it again.
    NeuronRanking rankLayerNeurons(int layer, const std::string& propertyOrFile, const JobContext& job);
    // The dataset's images by `text` through the neurons of block `layer` beside global retrieval,
    // as `neurons retrieve` gives them. components: "mlp.L/N" per neuron.
    RetrievalResult retrieveThroughNeurons(int layer, const std::vector<int64_t>& neurons, const std::string& text,
                                           int top, const JobContext& job);
    // Every block's output token norms of the open image on one shared scale (InputError on models
    // without class-token blocks: Swin, MaxViT, SigLIP).
    TokenNormBlocks tokenNormBlocks(bool withRegisters = false);  // of the test-time-register model

private:
    struct Impl;
    std::unique_ptr<Impl> m;
};

}  // namespace vitscope
