#pragma once
// The application's one state and the rules that keep it consistent. Views render from `state()`
// when `changed(aspects)` names what they show; user intents are the session's methods; only the
// session (and the export controller, for figures) submit jobs. The follow-on rules live here once:
// - an image or a text -> its heatmap and ledger;
// - a model -> what belonged to the old model is cleared, then the current image and dataset are
//   opened again by the new one; a model that fails to load when none is open -> the bundled one,
//   said in the status line;
// - a dataset -> descriptions, top images, retrieval and property scores are computed again;
// - a failed action leaves the state as it was (its error is the only change).
#include "engine.h"
#include "head_grid.h"
#include "jobs.h"
#include "neuron_state.h"

#include <QFlags>
#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>

#include <optional>
#include <vector>

namespace vitscope::ui {

enum class Aspect : quint32 {
    Model = 1 << 0,
    Image = 1 << 1,
    Text = 1 << 2,
    View = 1 << 3,  // method, restriction, per-head maps, reference subtraction, whole image
    Selection = 1 << 4,
    Dataset = 1 << 5,
    Descriptions = 1 << 6,
    Map = 1 << 7,
    Ledger = 1 << 8,
    Grid = 1 << 9,  // the grid's metric or its values
    Focus = 1 << 10,  // the head panel's head / MLP and its top images
    Retrieval = 1 << 11,
    Ablation = 1 << 12,
    Job = 1 << 13,  // the long job: started, progress, ended
    Message = 1 << 14,  // the last error or notice
    Reference = 1 << 15,
    Settings = 1 << 16,  // TextSpan settings
    Projection = 1 << 17,  // the projector's layout, colours and picked images
    Comparison = 1 << 18,  // the head comparison with another model
    Concepts = 1 << 19,    // the concept panel: SpLiCE's concepts, the SAE and its latents
    Partner = 1 << 20,     // the compared model's view of the same image and text
    Neurons = 1 << 21,     // the neuron tools: a property ranking, ticked neurons, token norms of every block
};
Q_DECLARE_FLAGS(Aspects, Aspect)
Q_DECLARE_OPERATORS_FOR_FLAGS(Aspects)
constexpr Aspects kAllAspects = Aspects(0x3FFFFF);

// The maps' own settings (HeatmapRequest): the references' defaults unless changed (Analysis >
// Heatmap settings).
struct MapOptions {
    std::optional<int> cheferStartLayer;  // -1 last layer only, N from layer N; unset: the family's reference default
    QString gradcamTarget = "auto";       // auto (probability over the reference texts when loaded, else the logit), probability, logit
    QString siglipMap = "pool";           // SigLIP's decomposition map: pool (TextSpan's demo) or encoder
    int inputSize = 0;                    // gradient methods' input side (LeGrad's reference: 448); 0: as analysed
    bool operator==(const MapOptions& o) const {
        return cheferStartLayer == o.cheferStartLayer && gradcamTarget == o.gradcamTarget && siglipMap == o.siglipMap && inputSize == o.inputSize;
    }
};

struct ViewSettings {
    MapOptions map;
    QString method = "decomposition";
    bool onlySelected = false;  // the map through the selected heads only
    bool perHead = false;       // small multiples: one decomposition map per selected head (up to 8)
    bool subtractReference = false;
    bool wholeImage = false;  // squash the whole image instead of the model's centre crop
    bool registersBeside = false;  // the map and the same through the test-time-register model, side by side
};

struct TextSpanSettings {
    int perHead = 10, rank = 80;
    QString convention = "exact";  // of the dataset caches: exact or textspan
};

// The map methods that need no text (attention, rollout, token norms).
inline bool textFree(const QString& method) { return method == "attention" || method == "rollout" || method == "token-norms"; }

// The map options into a request (the input size only for the methods that run the model).
void applyMapOptions(const MapOptions& options, HeatmapRequest& request);

enum class GridMetric { DirectEffect = 0, TextScore, Variance, Property, Latent, Separation };

struct DatasetState {
    QString folder;  // the open dataset's image folder ("" when none is open)
    DatasetSummary summary;
    bool ready() const { return !folder.isEmpty(); }
};

// The head panel's subject: a head of the grid, or an MLP ("mlp.L"), with its top images.
struct Focus {
    HeadId head;
    QString mlp;
    int mlpRow = -1;
    std::vector<Hit> topImages;
    NeuronList neurons;  // an MLP's neurons on the open image (layer -1 until they arrive)
    // One of the MLP's neurons (-1: none): the canvas shows its activation map, the panel its
    // dataset detail (detail.neuron -1 until it arrives or without a dataset).
    qint64 neuron = -1;
    NeuronDetail detail;
    QString detailNote;  // why there is no detail (no dataset, a failure)
    bool empty() const { return !head.valid() && mlp.isEmpty(); }
};

struct MapState {
    std::vector<HeatmapResult> maps;  // front: the canvas's map; then one per head of `heads`
    QList<HeadId> heads;              // the small multiples' heads, in head order
    bool withRegisters = false;       // maps[1]: the main map through the test-time-register model
    QList<HeadId> restrictedTo;       // the main map's restriction (empty: every head)
    int referenceCount = 0;           // the reference texts subtracted from it (0: none)
    QString referenceFile;
    MapOptions options;  // the map options it was made with
    bool empty() const { return maps.empty(); }
};

struct RetrievalState {
    QString query;  // the text, or the query image's path
    bool byImage = false;
    RetrievalResult result;  // empty lists until the answer arrives
    int top = 20;            // results per list
};

struct AblationState {
    AblationTask task;  // labels empty: no task
    QString taskText;   // what the panel says about the task
    QStringList ablated;
    AblationOutcome outcome;
    bool taskSet = false;
    QString spuriousTexts, coreTexts;  // discovery descriptions (comma separated)
};

struct ProjectionState {
    ProjectionRequest request;  // the last layout made (when `made`)
    bool made = false;          // a layout was made for this model: another dataset is laid out the same way
    bool throughSelected = false;  // its points: the selected heads (re-laid out when they change)
    ProjectionResult result;    // x empty until it arrives
    bool computing = false;
    QVector<int> picked;        // rows picked in the plot
    QString colourColumn;       // the points' colour: this labels.csv column ("": the text's score)
    // How far each head's and MLP's contributions to the picked images are from the rest's (the
    // grid's metric Separation); empty until images are picked.
    GridValues separation;
    int separationOf = 0;  // the picked images it is for
};

// The concept panel: SpLiCE's sparse text decomposition of the open image, or an SAE's latents.
// Nothing runs until it is asked for (Decompose, Open SAE); then it follows every image.
struct ConceptState {
    QString mode = "splice";  // splice | sae
    bool spliceAsked = false;
    QString vocabFile;        // "": the model's default (Session::defaultVocabulary)
    double l1 = 0.15;         // the reference's scripts' value (its SPLICE class default: 0.01)
    bool ofFocusedHead = false;  // SpLiCE of the head in focus (centred by its dataset mean) instead of the image
    std::optional<SpliceView> splice;  // of the open image
    std::optional<SaeSummary> sae;
    std::optional<SaeImageLatents> latents;  // of the open image
    QString query;                       // the latent search's text
    std::vector<SaeLatentRow> found;     // its answer
    qint64 latent = -1;                  // chosen: its map on the canvas, its split on the grid
    std::optional<SaeLatentDetail> detail;
    bool computing = false;
    QString note;  // why nothing is shown (no dataset, a failure)
};

// The compared model beside the open one (Session::compareHeads keeps it open): the open image,
// text and method through it, its ledger, the property's scores, and retrieval through the heads
// assigned to the open model's selection.
struct PartnerState {
    ModelSummary model;  // layers 0: none
    ImageResult image;
    HeatmapResult map;   // method empty: none
    QString mapNote;     // why its map is not the open model's method ("" when it is)
    std::vector<std::pair<int, int>> mapHeads;  // the heads its map went through (empty: all)
    Ledger ledger;
    PropertyScores scores;
    RetrievalResult retrieval;
    bool open() const { return model.layers > 0; }
};

struct LongJob {
    JobHandle handle;
    QString label;  // "caching the dataset"
    QString stage;  // core's name of the phase, when it gives one
    qint64 done = 0, total = 0;
    double perSecond = 0, eta = 0;
    bool running() const { return static_cast<bool>(handle); }
};

struct Message {
    QString text;
    bool error = false;
    bool aboutCanvas = false;  // about the image, its map or the model: shown on the canvas too
};

struct State {
    ModelSummary model;  // layers == 0: none open yet
    QString modelLoading;  // the spec being opened ("" when none)
    QString modelNeedingAligner;  // the last model refused for want of an aligner (File > Open aligner)
    ImageResult image;     // path empty: no image
    QString text;
    ViewSettings view;
    QList<HeadId> selection;
    DatasetState dataset;
    std::vector<HeadDescription> descriptions;
    MapState map;
    Ledger ledger;  // rows empty: none
    GridMetric metric = GridMetric::DirectEffect;
    QString property;  // the property typed (scores are for `scores.property`)
    PropertyScores scores;
    Focus focus;
    RetrievalState retrieval;
    AblationState ablation;
    LongJob job;
    Message message;
    QString referenceFile;
    int referenceCount = 0;
    TextSpanSettings textspan;
    std::optional<RegisterSummary> registers;  // the test-time-register model the explorer keeps
    ProjectionState projection;
    QString precision = "fp32";  // what models open in (Analysis > Precision); fp32 by default
    ConceptState concepts;
    std::optional<HeadComparison> comparison;  // the open model's heads against another model's
    bool comparing = false;
    PartnerState partner;  // the compared model's side (open while `comparison` is)
    NeuronToolsState neuronTools;  // ui/session_neurons.cpp

    bool hasModel() const { return model.layers > 0; }
    bool hasImage() const { return !image.path.empty(); }
    QString imagePath() const { return QString::fromStdString(image.path); }
    // The grid's values for the current metric, with its name ("direct-effect norm").
    GridValues gridValues(QString* name = nullptr) const;
    HeadId strongestHead() const;  // of the current image
    HeadPairs selectedPairs() const;
    QString textPoolFile() const;
    // An MLP as the grid names its row: "mlp.L", "pool.mlp", a hierarchical tower's "s2.b1.mlp".
    QString mlpLabel(int row) const;  // the model's text pool (the shapes world's for its word-vocabulary models)
};

struct SessionOptions {
    QString dataDir;  // the shapes world, the demo, the caches
    QString device = "auto";
    QString bundledModel;  // the fallback when a model fails to load and none is open
    ViewSettings view;          // as the settings had them at start
    TextSpanSettings textspan;
};

class Session : public QObject {
    Q_OBJECT
public:
    explicit Session(const SessionOptions& options, QObject* parent = nullptr);
    ~Session() override;

    const State& state() const { return m_state; }
    Engine& engine() { return m_engine; }
    const SessionOptions& options() const { return m_options; }

    // Intents. Each changes the state at once where it can and submits the jobs that follow.
    // The image and dataset the first model opens (the command line's, the last session's).
    void setStartFiles(const QString& image, const QString& dataset);
    void openModel(const QString& spec, const QString& aligner = {});
    // Fits an aligner for the model last refused for want of one, into the open CLIP model's space,
    // on the open dataset's images (vitscope-cli align); saved at `out`, then that model opens
    // through it.
    void fitAligner(const QString& out, const QString& procedure = "vitscope");  // or "reference" (align --procedure)
    void openImage(const QString& path);
    void openDataset(const QString& folder);
    void setText(const QString& text);
    void setMethod(const QString& method);
    void setOnlySelected(bool on);
    void setPerHead(bool on);
    void setWholeImage(bool on);
    // The map beside the same through the test-time-register model (its register neurons found
    // over the open dataset the first time); a model without outlier tokens is refused, said.
    void setRegistersBeside(bool on);
    // The projector: lays out the open dataset's images (method pca | umap | tsne | text-axes, through
    // the selected heads or the whole representation, coloured by the text); picks rows of it.
    // points: "whole" (the whole representation), "selected" (the selected heads' sum), "heads" (the
    // heads themselves, each its mean direction; a click focuses one, a rectangle selects them).
    void project(const QString& method, const QString& points, const QStringList& axes);
    void pickProjected(const QVector<int>& rows);
    // The projected points coloured by a column of the dataset's labels.csv ("": by the text's score).
    void colourProjectionBy(const QString& column);
    // The open model's heads against the model `spec`'s over the open dataset (caching it with that
    // model first); again for another dataset; cleared by another model.
    void compareHeads(const QString& spec);
    // Heads of the compared model clicked in its grid: the open model's heads assigned to them
    // become the selection (and the first the focus).
    void selectPartnerHeads(const QList<HeadId>& headsOfB);
    // The open model again in another precision (fp32, bf16, fp16, tf32, auto); one the device
    // lacks is refused, said, and the model stays as it was.
    void setPrecision(const QString& precision);
    // The concept panel (ui/session_concepts.cpp): SpLiCE with a vocabulary and l1 ("" vocabulary:
    // the model's default); an SAE file or folder (refused, said, when it does not fit the model);
    // a latent chosen (its map, its split on the grid, its top images); latents searched by text.
    void setConceptMode(const QString& mode);
    void decomposeConcepts(const QString& vocabFile, double l1, bool ofFocusedHead = false);
    void openSae(const QString& path);
    void chooseLatent(qint64 latent);
    void searchLatents(const QString& text);
    QString defaultVocabulary() const;
    void setSubtractReference(bool on);
    void setMapOptions(const MapOptions& options);
    void loadReferenceTexts(const QString& file);
    void select(const QList<HeadId>& heads);
    void focusHead(const HeadId& head);
    void focusMlp(int row);
    // A neuron of the focused MLP: its activation map on the canvas (until another text, method or
    // focus), its top images and texts over the open dataset in the head panel.
    void focusNeuron(qint64 neuron);
    void setMetric(GridMetric metric);
    void setProperty(const QString& property);  // a word list's name or a file; computes the scores
    void retrieveText(const QString& text);
    // The head panel's "Retrieve with this head": the head selected, the text (else its first
    // description, else "an object") retrieved through it.
    void retrieveWithHead(int layer, int head);
    void retrieveImage(const QString& path);
    void setRetrievalCount(int top);
    void describeHeads();
    void setTextSpanSettings(const TextSpanSettings& s);
    void setAblationTask(const AblationTask& task);
    void ablate(const QStringList& components);
    void discoverSpurious(const QStringList& spurious, const QStringList& core, int k);
    void loadSpuriousDemo();
    void cancelLongJob();
    void showError(const QString& message, bool aboutCanvas = false);
    void showNotice(const QString& message);

    // The neuron tools (ui/session_neurons.cpp). The focused MLP's neurons ordered by a property's
    // score over the open dataset ("": by their effect on the open image, as before); ranked again
    // for another MLP or dataset, cleared by another model.
    void rankNeuronsBy(const QString& property);
    void tickNeurons(const QList<qint64>& neurons);  // of the focused MLP
    // The Retrieval dock: the text's hits through the ticked neurons (else the focused neuron)
    // beside global hits (`neurons retrieve`'s numbers); again for another dataset.
    void retrieveThroughNeurons();
    // Token norms of every block of the open image as small multiples on one scale (the method
    // becomes token-norms); refused, said, on models without them (Swin, MaxViT, SigLIP).
    void setTokenNormsPerBlock(bool on);

signals:
    void changed(vitscope::ui::Aspects aspects);

private:
    void emitChanged(Aspects a);
    // A failure: `cause` as the job said it, `shown` with what it means for the views.
    void fail(const QString& cause, const QString& shown, bool aboutCanvas);
    void requestMap();
    void requestLedger();
    void requestTopImages();
    void requestNeurons();  // the focused MLP's neurons for the open image and text
    void requestNeuronDetail();  // the focused neuron over the open dataset
    void requestProjection();    // the projection's request again (another dataset, selection)
    void requestSeparation();    // what separates the picked images (the grid's metric Separation)
    void recolourProjection();   // the text's scores as the points' colours
    void runProjection(ProjectionRequest request, bool throughSelected);
    void dropNeuron();           // back from a neuron's map to the text's
    void dropLatent();           // back from a latent's map to the text's
    void requestConcepts();      // the open image's concepts or latents (when asked for once)
    void requestLatentDetail();
    // The compared model's side (ui/session_partner.cpp): its view of the image and text, its
    // property scores, its retrieval through the heads matched to the selection.
    void requestPartner();
    void requestPartnerProperty();
    void requestPartnerRetrieval();
    QString m_partnerKey;  // what the partner's view was last asked for
    void rerunRetrieval(bool asked = false);  // asked: a search the user just asked for
    void requestProperty();
    // A long job: the status line names it and its progress, Cancel reaches it; `done` or `failed`
    // runs when it ends (after the status line has let it go).
    template <class J>
    void runLong(J job, const QString& label, std::function<void(typename J::Result)> done, std::function<void(const JobFailure&)> failed) {
        auto handle = std::make_shared<JobHandle>();
        *handle = m_engine.run(
            std::move(job), this,
            [this, handle, done = std::move(done)](typename J::Result r) {
                endLong(*handle);
                done(std::move(r));
            },
            [this, handle, failed = std::move(failed)](const JobFailure& f) {
                endLong(*handle);
                failed(f);
            },
            progressFor(handle, label));
        startLong(*handle, label);
    }
    void openFirstView();
    void startLong(JobHandle h, const QString& label);
    void endLong(JobHandle h);
    Engine::Progress progressFor(const std::shared_ptr<JobHandle>& handle, const QString& label);
    std::function<void(const JobFailure&)> failure(const QString& what, bool aboutCanvas = false);
    void applyModel(const ModelSummary& s);
    void applyImage(ImageResult r);
    void applyDataset(const QString& folder, const DatasetSummary& d);
    void clearModelResults();
    void clearCanvasError();
    void openPending();
    bool current(quint64 epoch) const { return epoch == m_epoch; }
    // The neuron tools' follow-on rules (ui/session_neurons.cpp).
    void requestNeuronRanking();   // for the focused MLP (nothing when it is already there)
    void rerunNeuronRetrieval();   // for the open dataset (nothing when it is already there)
    void requestNormBlocks();      // for the open image, when asked for
    void neuronsFollowDataset();   // the ranking and the neuron retrieval of the new dataset

    SessionOptions m_options;
    Engine m_engine;
    State m_state;
    QString m_pendingImage;    // re-opened once the new model is in
    QString m_pendingDataset;  // likewise
    QString m_lastFailure;     // the cause of the error shown (a second job failing for it says nothing new)
    quint64 m_epoch = 0;       // bumped per model: results of another model's requests are dropped
};

}  // namespace vitscope::ui

Q_DECLARE_METATYPE(vitscope::ui::Aspects)
