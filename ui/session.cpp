#include "session.h"

#include "resources.h"

#include <spdlog/spdlog.h>

#include <QDir>
#include <QFileInfo>

#include <algorithm>
#include <cmath>

namespace vitscope::ui {

namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }
std::string s(const QString& q) { return q.toStdString(); }


// Heads in grid order (layer, then head): small multiples and records list them so.
QList<HeadId> inHeadOrder(QList<HeadId> heads) {
    std::sort(heads.begin(), heads.end(), [](const HeadId& a, const HeadId& b) { return a.layer != b.layer ? a.layer < b.layer : a.head < b.head; });
    return heads;
}

}  // namespace

// ---- State ----

GridValues State::gridValues(QString* name) const {
    auto named = [name](const QString& n) {
        if (name) *name = n;
    };
    switch (metric) {
    case GridMetric::DirectEffect:
        named(QObject::tr("direct-effect norm"));
        return image.norms;
    case GridMetric::TextScore: {
        named(ledger.rows.empty() ? QObject::tr("score for the text") : QObject::tr("score for \"%1\"").arg(q(ledger.text)));
        GridValues g;
        if (ledger.rows.empty()) return g;
        g.heads = ledger.headScores;
        g.mlp.assign(static_cast<std::size_t>(model.gridLayers()), NAN);
        for (const LedgerRow& r : ledger.rows)
            if (r.layer >= 0 && r.head < 0 && r.name.rfind("mlp.", 0) == 0 && r.layer < model.gridLayers())
                g.mlp[static_cast<std::size_t>(r.layer)] = static_cast<float>(r.score);
        return g;
    }
    case GridMetric::Variance: {
        named(QObject::tr("TextSpan variance explained"));
        GridValues g;
        if (descriptions.empty()) return g;
        g.heads.rows = model.gridLayers();
        g.heads.cols = model.heads;
        g.heads.values.assign(static_cast<std::size_t>(model.gridLayers() * model.heads), NAN);
        for (const HeadDescription& d : descriptions)
            if (!d.picks.empty() && d.layer >= 0 && d.layer < g.heads.rows && d.index >= 0 && d.index < g.heads.cols)
                g.heads.values[static_cast<std::size_t>(d.layer * model.heads + d.index)] = static_cast<float>(d.picks.back().cumulative);
        return g;
    }
    case GridMetric::Latent:
        named(concepts.detail ? QObject::tr("latent %1's pre-activation share").arg(concepts.detail->row.latent) : QObject::tr("latent (choose one)"));
        return concepts.detail ? concepts.detail->grid : GridValues{};
    case GridMetric::Separation:
        named(projection.separationOf > 0 ? QObject::tr("separates the %1 picked images").arg(projection.separationOf)
                                          : QObject::tr("separates the picked images (pick some in the Projector)"));
        return projection.separation;
    case GridMetric::Property:
        named(scores.property.empty() ? QObject::tr("property score") : QObject::tr("property score: %1").arg(q(scores.property)));
        return scores.grid;
    }
    return {};
}

HeadId State::strongestHead() const {
    const FloatGrid& n = image.norms.heads;
    float best = -1;
    HeadId h;
    for (int l = 0; l < n.rows; ++l)
        for (int k = 0; k < n.cols; ++k)
            if (std::isfinite(n.at(l, k)) && n.at(l, k) > best) best = n.at(l, k), h = gridHead(l, k, model.layers, model.poolHeads > 0);
    return h;
}

HeadPairs State::selectedPairs() const {
    HeadPairs out;
    for (const HeadId& h : inHeadOrder(selection)) out.emplace_back(h.layer, h.head);
    return out;
}

QString State::mlpLabel(int row) const {
    if (model.poolHeads > 0 && row == model.layers) return "pool.mlp";
    // Hierarchical towers: the grid's row label ("s2.b1"), as the grid's tooltip names its heads (s2.b1.h0).
    if (row >= 0 && std::size_t(row) < model.layerLabels.size()) return q(model.layerLabels[std::size_t(row)]) + ".mlp";
    return QString("mlp.%1").arg(row);
}

QString State::textPoolFile() const {
    // The shapes world's own pool for its word-vocabulary models, the general pool otherwise.
    const bool shapes = !model.vocabulary.empty() && (QFileInfo(q(model.spec) + "/vocab.txt").exists() ||
                                                      (!model.textModel.empty() && QFileInfo(QFileInfo(q(model.textModel)).path() + "/vocab.txt").exists()));
    return q(dataFile(shapes ? "resources/shapes/text_pool.txt" : "resources/general/descriptions.txt"));
}

void applyMapOptions(const MapOptions& o, HeatmapRequest& r) {
    r.cheferStartLayer = o.cheferStartLayer;
    r.gradcamTarget = o.gradcamTarget.toStdString();
    r.siglipMap = o.siglipMap.toStdString();
    const bool gradient = r.method == "gradcam" || r.method == "chefer" || r.method == "legrad";
    r.inputSize = gradient ? o.inputSize : 0;  // the decomposition reads the analysed terms
}

// ---- Session ----

Session::Session(const SessionOptions& options, QObject* parent)
    : QObject(parent), m_options(options), m_engine(options.dataDir + "/caches") {
    qRegisterMetaType<Aspects>();
    m_state.view = options.view;
    m_state.textspan = options.textspan;
    connect(&m_engine, &Engine::started, this, [](quint64, const QString& label) { spdlog::debug("{}...", label.toStdString()); });
}

Session::~Session() { m_engine.cancelAll(); }

void Session::emitChanged(Aspects a) { emit changed(a); }

void Session::showError(const QString& message, bool aboutCanvas) { fail(message, message, aboutCanvas); }

void Session::fail(const QString& cause, const QString& shown, bool aboutCanvas) {
    // The heatmap's and the ledger's failure for one unknown word are one error: said (and
    // logged) once, in the words of the first (which says what the canvas still shows).
    if (m_state.message.error && cause == m_lastFailure) return;
    m_lastFailure = cause;
    spdlog::error("{}", shown.toStdString());
    m_state.message = {shown, true, aboutCanvas};
    emitChanged(Aspect::Message);
}

void Session::clearCanvasError() {
    if (!m_state.message.error || !m_state.message.aboutCanvas) return;
    m_lastFailure.clear();
    m_state.message = {};
    emitChanged(Aspect::Message);
}

void Session::showNotice(const QString& message) {
    m_lastFailure.clear();
    spdlog::info("{}", message.toStdString());
    m_state.message = {message, false, false};
    emitChanged(Aspect::Message);
}

std::function<void(const JobFailure&)> Session::failure(const QString& what, bool aboutCanvas) {
    return [this, what, aboutCanvas](const JobFailure& f) {
        if (f.cancelled) showNotice(tr("%1 cancelled").arg(what));
        else fail(f.message, f.message, aboutCanvas);
    };
}

void Session::startLong(JobHandle h, const QString& label) {
    m_state.job = {};
    m_state.job.handle = h;
    m_state.job.label = label;
    emitChanged(Aspect::Job);
}

void Session::endLong(JobHandle h) {
    if (!(m_state.job.handle == h)) return;
    m_state.job = {};
    emitChanged(Aspect::Job);
}

Engine::Progress Session::progressFor(const std::shared_ptr<JobHandle>& handle, const QString& label) {
    // The job that reports is the one the status line shows (a queued long job that started
    // later must not lend it its label).
    // A job that reports no rate gets one measured here (none shown until it is known).
    auto rate = std::make_shared<ProgressRate>();
    return [this, handle, label, rate](const JobProgress& reported) {
        const JobProgress p = rate->fill(reported, ProgressRate::Clock::now());
        m_state.job.handle = *handle;
        m_state.job.label = label;
        m_state.job.stage = q(p.stage);
        m_state.job.done = p.done;
        m_state.job.total = p.total;
        m_state.job.perSecond = p.perSecond;
        m_state.job.eta = p.etaSeconds;
        emitChanged(Aspect::Job);
    };
}

void Session::cancelLongJob() { m_engine.cancel(m_state.job.handle); }

void Session::setStartFiles(const QString& image, const QString& dataset) {
    m_pendingImage = image;
    m_pendingDataset = dataset;
}

// ---- model ----

void Session::openModel(const QString& spec, const QString& aligner) {
    m_state.modelLoading = spec;
    emitChanged(Aspect::Job);
    m_engine.run(
        OpenModelJob{s(spec), s(m_options.device), s(aligner), s(m_state.precision)}, this, [this](ModelSummary m) { applyModel(m); },
        [this, spec](const JobFailure& f) {
            m_state.modelLoading.clear();
            emitChanged(Aspect::Job);
            if (f.cancelled) return;
            // A classifier or an image-only tower: it opens with an aligner into a CLIP's space,
            // which the window offers (the command line's --aligner).
            if (f.message.contains("is not a CLIP model")) {
                m_state.modelNeedingAligner = spec;
                const QString why = tr("%1 is not a CLIP model: open an aligner for it (File > Open aligner for this model...) or fit one "
                                       "on the open dataset (File > Fit an aligner...) to map it into CLIP space").arg(QFileInfo(spec).fileName());
                fail(f.message, m_state.hasModel() ? tr("%1 (still using %2)").arg(why, q(m_state.model.name)) : why, true);
                if (!m_state.hasModel() && !m_options.bundledModel.isEmpty() && QFileInfo(spec) != QFileInfo(m_options.bundledModel)) openModel(m_options.bundledModel);
                else openPending();
                return;
            }
            const QString bundled = m_options.bundledModel;
            if (!m_state.hasModel() && !bundled.isEmpty() && QFileInfo(spec) != QFileInfo(bundled)) {
                showError(tr("%1; opened the bundled %2 instead").arg(f.message, QFileInfo(bundled).fileName()), true);
                m_pendingDataset.clear();
                openModel(bundled);
                return;
            }
            showError(m_state.hasModel() ? tr("%1 (still using %2)").arg(f.message, q(m_state.model.name)) : f.message, true);
            openPending();
        });
}

void Session::openPending() {
    // What was asked for while a model that then failed was loading: the open model takes it.
    const QString image = m_pendingImage, dataset = m_pendingDataset;
    m_pendingImage.clear();
    m_pendingDataset.clear();
    if (!m_state.hasModel()) return;
    openImage(image);
    openDataset(dataset);
}

void Session::clearModelResults() {
    m_state.image = {};
    m_state.map = {};
    m_state.ledger = {};
    m_state.selection.clear();
    m_state.dataset = {};
    m_state.descriptions.clear();
    m_state.scores = {};
    m_state.focus = {};
    m_state.retrieval = {};
    m_state.referenceCount = 0;
    m_state.view.subtractReference = false;
    m_state.view.registersBeside = false;  // the explorer dropped the intervened model with the model
    m_state.registers.reset();
    m_state.projection = {};
    m_state.comparison.reset();
    m_state.comparing = false;
    m_state.partner = {};
    m_partnerKey.clear();
    m_state.neuronTools = {};  // the old model's rankings, retrieval and token norms (session_neurons.cpp)
    m_state.ablation = {};
    if (m_state.metric == GridMetric::Latent || m_state.metric == GridMetric::Separation)
        m_state.metric = GridMetric::DirectEffect;  // the latent and the picked images were the old model's
    const ConceptState was = m_state.concepts;  // the explorer closed the SAE with the model; the settings stay
    m_state.concepts = {};
    m_state.concepts.mode = was.mode;
    m_state.concepts.spliceAsked = was.spliceAsked;
    m_state.concepts.vocabFile = was.vocabFile;
    m_state.concepts.l1 = was.l1;
    if (was.sae) m_state.concepts.note = tr("The SAE %1 was for the previous model: open one for this model.").arg(q(was.sae->path));
}

void Session::applyModel(const ModelSummary& m) {
    ++m_epoch;
    if (QFileInfo(q(m.spec)) == QFileInfo(m_state.modelNeedingAligner)) m_state.modelNeedingAligner.clear();  // results asked of the previous model are dropped from now on
    // What was asked for while the model loaded wins over what was open.
    const QString image = !m_pendingImage.isEmpty() ? m_pendingImage : m_state.hasImage() ? m_state.imagePath() : QString();
    QString dataset = !m_pendingDataset.isEmpty() ? m_pendingDataset : m_state.dataset.ready() ? m_state.dataset.folder : QString();
    m_pendingImage.clear();
    m_pendingDataset.clear();
    const bool bundled = QFileInfo(q(m.spec)).fileName().startsWith("shapes-");
    if (dataset.isEmpty() && bundled) dataset = m_options.dataDir + "/shapes-world/images";
    clearModelResults();
    m_state.model = m;
    m_state.modelLoading.clear();
    // The methods the model defines (Swin and MaxViT have no class-token attention).
    if (std::find(m.heatmapMethods.begin(), m.heatmapMethods.end(), s(m_state.view.method)) == m.heatmapMethods.end())
        m_state.view.method = "decomposition";
    emitChanged(kAllAspects);
    if (!m_state.referenceFile.isEmpty()) loadReferenceTexts(m_state.referenceFile);  // embeddings of this model's text side
    if (!image.isEmpty()) openImage(image);
    if (!dataset.isEmpty()) openDataset(dataset);
}

void Session::fitAligner(const QString& out, const QString& procedure) {
    const QString model = m_state.modelNeedingAligner;
    if (model.isEmpty()) return showError(tr("no model is waiting for an aligner: open the classifier first (File > Open model...), then fit its aligner"));
    if (!m_state.hasModel() || !m_state.model.clip)
        return showError(tr("open the CLIP model to align %1 into first: the aligner maps into the open model's space").arg(QFileInfo(model).fileName()));
    if (!m_state.dataset.ready()) return showError(tr("open an image folder as dataset first: the aligner is fitted on its images"));
    const quint64 epoch = m_epoch;
    runLong(
        FitAlignerJob{s(model), s(out), s(procedure)}, tr("fitting an aligner for %1 on %2").arg(QFileInfo(model).fileName(), m_state.dataset.folder),
        [this, epoch, model](AlignerFitSummary r) {
            const QString figures = tr("held-out cosine %1, one shared map %2; %3 images fitted, %4 held out")
                                        .arg(r.cosine, 0, 'f', 4)
                                        .arg(r.sharedCosine, 0, 'f', 4)
                                        .arg(r.trained)
                                        .arg(r.heldOut);
            spdlog::info("aligner for {} saved to {}: {}", r.model, r.path, figures.toStdString());
            if (!current(epoch) || !m_state.modelLoading.isEmpty())  // another model was opened or asked for meanwhile: it wins
                return showNotice(tr("aligner saved to %1 (%2): open it with File > Open aligner").arg(q(r.path), figures));
            showNotice(tr("aligner saved (%1): opening %2 through it").arg(figures, QFileInfo(model).fileName()));
            openModel(model, q(r.path));
        },
        [this](const JobFailure& f) {
            if (f.cancelled) showNotice(tr("fitting the aligner cancelled: nothing was saved"));
            else showError(f.message);
        });
}

// ---- image, text, view ----

void Session::openImage(const QString& path) {
    if (path.isEmpty()) return;
    if (!m_state.modelLoading.isEmpty()) {  // opened by the model being loaded, once it is in
        m_pendingImage = path;
        return;
    }
    const quint64 epoch = m_epoch;
    m_engine.run(
        AnalyseImageJob{s(path), m_state.view.wholeImage}, this,
        [this, epoch](ImageResult r) {
            if (current(epoch)) applyImage(std::move(r));
        },
        [this](const JobFailure& f) {
            if (f.cancelled) return;
            if (m_state.hasImage()) fail(f.message, tr("%1 (still showing %2)").arg(f.message, QFileInfo(m_state.imagePath()).fileName()), true);
            else fail(f.message, f.message, true);
        });
}

void Session::openFirstView() {
    // The open dataset's opening view (Explorer::firstView: a scene and its text).
    const quint64 epoch = m_epoch;
    m_engine.run(
        AnalyseImageJob{{}, m_state.view.wholeImage}, this,
        [this, epoch](ImageResult r) {
            if (current(epoch)) applyImage(std::move(r));
        },
        failure(tr("opening the first image"), true));
}

void Session::applyImage(ImageResult r) {
    // The opening view (nothing typed yet): its text, the head that writes most for the image
    // selected and in the head panel, and the gallery for the text.
    const bool opening = !r.openingText.empty() && m_state.text.isEmpty();
    spdlog::info("{} decomposed in {:.1f} ms", r.path, 1000 * r.seconds);
    m_state.image = std::move(r);
    m_state.map = {};
    m_state.ledger = {};
    m_state.focus.neurons = {};  // the last image's: asked for again below
    Aspects a = Aspect::Image | Aspect::Map | Aspect::Ledger | Aspect::Grid;
    if (opening) {
        m_state.text = q(m_state.image.openingText);
        const HeadId strongest = m_state.strongestHead();
        if (strongest.valid()) {
            m_state.selection = {strongest};
            m_state.focus = {};
            m_state.focus.head = strongest;
            a |= Aspect::Selection | Aspect::Focus;
        }
        a |= Aspect::Text;
    }
    // The map and the ledger are asked for before the views draw the new image, so the worker
    // computes them while this thread renders.
    requestMap();
    requestLedger();
    requestNeurons();
    requestConcepts();
    requestNormBlocks();
    emitChanged(a);
    if (opening) {
        requestTopImages();
        if (m_state.dataset.ready()) retrieveText(m_state.text);
    }
}

void Session::setText(const QString& text) {
    m_state.text = text.trimmed();
    dropNeuron();  // a text asks for its own map
    dropLatent();
    recolourProjection();
    emitChanged(Aspect::Text);
    requestMap();
    requestLedger();
    requestNeurons();
}

void Session::setMethod(const QString& method) {
    if (method == m_state.view.method) return;
    m_state.view.method = method;
    dropNeuron();
    dropLatent();
    emitChanged(Aspect::View);
    requestMap();
}

void Session::setRegistersBeside(bool on) {
    if (!on || m_state.registers) {
        m_state.view.registersBeside = on;
        emitChanged(Aspect::View);
        requestMap();
        requestNormBlocks();  // every block's norms: a second row for the intervened model, or none
        return;
    }
    if (!m_state.dataset.ready()) {
        emitChanged(Aspect::View);  // (the menu's tick goes back)
        showError(tr("Test-time registers: their register neurons are found over a dataset; open one first (File > Open image folder as dataset)"));
        return;
    }
    const quint64 epoch = m_epoch;
    runLong(
        FindRegistersJob{}, tr("finding the register neurons (test-time registers)"),
        [this, epoch](RegisterSummary r) {
            if (!current(epoch)) return;
            QStringList neurons;
            for (const std::string& n : r.neurons) neurons << q(n);
            showNotice(tr("Test-time register: neurons %1, found on %2 images with outlier tokens (of %3 read)")
                           .arg(neurons.join(", "))
                           .arg(r.imagesWithOutliers)
                           .arg(r.images));
            m_state.registers = std::move(r);
            m_state.view.registersBeside = true;
            emitChanged(Aspect::View);
            requestMap();
            requestNormBlocks();
        },
        [this](const JobFailure& f) {
            emitChanged(Aspect::View);  // still off
            if (!f.cancelled) showError(tr("Test-time registers: %1").arg(f.message));
        });
}

void Session::setOnlySelected(bool on) {
    m_state.view.onlySelected = on;
    emitChanged(Aspect::View);
    requestMap();
}

void Session::setPerHead(bool on) {
    m_state.view.perHead = on;
    emitChanged(Aspect::View);
    requestMap();
}

void Session::setWholeImage(bool on) {
    m_state.view.wholeImage = on;
    emitChanged(Aspect::View);
    if (m_state.hasImage()) openImage(m_state.imagePath());
}

void Session::setMapOptions(const MapOptions& options) {
    if (options == m_state.view.map) return;
    m_state.view.map = options;
    emitChanged(Aspect::View);
    requestMap();
}

void Session::setSubtractReference(bool on) {
    m_state.view.subtractReference = on && m_state.referenceCount > 0;
    emitChanged(Aspect::View);
    requestMap();
}

void Session::loadReferenceTexts(const QString& file) {
    const quint64 epoch = m_epoch;
    m_engine.run(
        ReferenceTextsJob{s(file)}, this,
        [this, epoch, file](int count) {
            if (!current(epoch)) return;
            m_state.referenceFile = file;
            m_state.referenceCount = count;
            m_state.view.subtractReference = count > 0;
            emitChanged(Aspect::Reference | Aspect::View);
            showNotice(tr("%1 reference texts loaded; heatmaps subtract their mean").arg(count));
            requestMap();
        },
        [this](const JobFailure& f) {
            if (f.cancelled) return;
            // Unreadable reference texts: nothing to subtract, and nothing to reload for the next model.
            m_state.referenceFile.clear();
            m_state.referenceCount = 0;
            m_state.view.subtractReference = false;
            emitChanged(Aspect::Reference | Aspect::View);
            showError(f.message);
            requestMap();
        });
}

void Session::requestMap() {
    requestPartner();  // the compared model's view follows every change of the map's request
    const State& st = m_state;
    const bool latent = st.concepts.latent >= 0 && st.concepts.sae.has_value();
    const bool neuron = (st.focus.neuron >= 0 && st.focus.mlpRow >= 0) || latent;  // a map that needs no text
    if (!st.hasImage() || (st.text.isEmpty() && !textFree(st.view.method) && !neuron)) return;
    HeatmapRequest r;
    r.text = s(st.text);
    r.method = s(st.view.method);
    if (r.method == "token-norms") r.normLayer = st.focus.mlpRow >= 0 ? st.focus.mlpRow : st.focus.head.valid() ? st.focus.head.layer : -1;
    if (neuron) {
        r.method = "neuron";
        r.neuronLayer = st.focus.mlpRow;
        r.neuron = st.focus.neuron;
    }
    if (latent) {
        r.method = "sae-latent";
        r.saeLatent = st.concepts.latent;
    }
    const QList<HeadId> ordered = inHeadOrder(st.selection);
    if (st.view.onlySelected) r.heads = st.selectedPairs();
    r.subtractReference = st.view.subtractReference && st.referenceCount > 0;
    applyMapOptions(st.view.map, r);
    HeadPairs multiples;
    QList<HeadId> multipleHeads;
    const bool withRegisters = st.view.registersBeside && st.registers && !neuron;
    if (st.view.perHead && r.method == "decomposition" && !withRegisters)
        for (const HeadId& h : ordered.mid(0, 8)) {
            multiples.emplace_back(h.layer, h.head);
            multipleHeads << h;
        }
    const QList<HeadId> restricted = st.view.onlySelected && !neuron ? ordered : QList<HeadId>{};
    const int refs = r.subtractReference ? st.referenceCount : 0;
    const QString refFile = st.referenceFile;
    const MapOptions options = st.view.map;
    const quint64 epoch = m_epoch;
    m_engine.run(
        HeatmapJob{r, multiples, withRegisters}, this,
        [this, epoch, multipleHeads, restricted, refs, refFile, options, withRegisters](std::vector<HeatmapResult> maps) {
            if (!current(epoch) || maps.empty()) return;
            spdlog::info("heatmap ({}) in {:.1f} ms", maps.front().method, 1000 * maps.front().seconds);
            m_state.map = {std::move(maps), multipleHeads, withRegisters, restricted, refs, refFile, options};
            emitChanged(Aspect::Map);
            clearCanvasError();  // the map asked for came: an error about an earlier one no longer applies
            if (!m_state.map.maps.front().warning.empty()) showNotice(tr("Map: %1").arg(q(m_state.map.maps.front().warning)));
        },
        [this](const JobFailure& f) {
            if (f.cancelled) return;
            // What the canvas shows stays; the error says which map that is, when there is one.
            if (m_state.hasImage() && !m_state.map.empty())
                fail(f.message, tr("%1 (the map shown is still the one for \"%2\")").arg(f.message, q(m_state.map.maps.front().text)), true);
            else fail(f.message, f.message, true);
        });
}

void Session::requestLedger() {
    if (!m_state.hasImage() || m_state.text.isEmpty()) return;
    const quint64 epoch = m_epoch;
    m_engine.run(
        LedgerJob{s(m_state.text)}, this,
        [this, epoch](Ledger g) {
            if (!current(epoch)) return;
            m_state.ledger = std::move(g);
            emitChanged(Aspect::Ledger | Aspect::Grid);
        },
        [this](const JobFailure& f) {
            if (!f.cancelled) fail(f.message, f.message, true);
        });
}

// ---- selection, head panel, grid ----

void Session::select(const QList<HeadId>& heads) {
    if (heads == m_state.selection) return;
    m_state.selection = heads;
    emitChanged(Aspect::Selection);
    // The shown results answer the heads shown: the last query again through them.
    rerunRetrieval();
    if (m_state.view.onlySelected || m_state.view.perHead) requestMap();
    if (m_state.projection.throughSelected && !m_state.projection.result.x.empty()) requestProjection();  // through the new heads
}

void Session::project(const QString& method, const QString& points, const QStringList& axes) {
    ProjectionRequest r;
    r.method = s(method);
    r.headsAsPoints = points == "heads" || points == "head-directions";
    r.headDirections = points == "head-directions" ? 3 : 0;  // each head's top 3 principal directions
    if (method == "text-axes")
        for (const QString& a : axes) r.axes.push_back(s(a.trimmed()));
    runProjection(r, points == "selected");
}

void Session::requestProjection() {
    if (!m_state.projection.made || !m_state.dataset.ready()) return;
    runProjection(m_state.projection.request, m_state.projection.throughSelected);
}

void Session::runProjection(ProjectionRequest r, bool throughSelected) {
    if (!m_state.dataset.ready()) {
        showError(tr("The projector lays out a dataset: open one first (File > Open image folder as dataset)"));
        return;
    }
    r.heads.clear();
    if (throughSelected) {
        r.heads = m_state.selectedPairs();
        if (r.heads.empty()) {
            showError(tr("Projector: select heads in the grid first, or lay out the whole representation"));
            return;
        }
    }
    r.colorText = s(m_state.text);
    r.colorColumn = r.headsAsPoints ? std::string() : s(m_state.projection.colourColumn);  // heads: coloured by layer
    m_state.projection.computing = true;
    emitChanged(Aspect::Projection);
    const quint64 epoch = m_epoch;
    const QString folder = m_state.dataset.folder;
    runLong(
        ProjectJob{r}, tr("laying out the dataset (%1)").arg(q(r.method)),
        [this, epoch, throughSelected, folder](ProjectionResult res) {
            if (!current(epoch) || folder != m_state.dataset.folder) return;  // another dataset's: its own layout follows
            m_state.projection.request = res.request;
            m_state.projection.made = true;
            m_state.projection.throughSelected = throughSelected;
            m_state.projection.result = std::move(res);
            m_state.projection.computing = false;
            m_state.projection.picked.clear();
            m_state.projection.separation = {};
            m_state.projection.separationOf = 0;
            emitChanged(Aspect::Projection | Aspect::Grid);
        },
        [this](const JobFailure& f) {
            m_state.projection.computing = false;  // the layout shown stays
            emitChanged(Aspect::Projection);
            if (!f.cancelled) showError(tr("Projector: %1").arg(f.message));
        });
}

void Session::colourProjectionBy(const QString& column) {
    if (column == m_state.projection.colourColumn) return;
    if (!column.isEmpty() && std::find(m_state.dataset.summary.labelColumns.begin(), m_state.dataset.summary.labelColumns.end(), s(column)) ==
                                 m_state.dataset.summary.labelColumns.end()) {
        showError(tr("Projector: the dataset's labels have no column '%1'").arg(column));
        return;
    }
    m_state.projection.colourColumn = column;
    ProjectionResult& r = m_state.projection.result;
    if (!r.pointNames.empty()) {  // heads as points stay coloured by layer; image layouts take the column
        emitChanged(Aspect::Projection);
        return;
    }
    if (column.isEmpty()) {  // back to the text's score
        r.labels.clear();
        r.request.colorColumn.clear();
        r.request.colorText.clear();
        emitChanged(Aspect::Projection);
        recolourProjection();
        return;
    }
    if (r.x.empty()) {
        emitChanged(Aspect::Projection);
        return;
    }
    const quint64 epoch = m_epoch;
    const std::vector<std::string> paths = r.paths;
    m_engine.run(
        ProjectionLabelsJob{s(column)}, this,
        [this, epoch, paths, column](std::vector<std::string> labels) {
            ProjectionResult& now = m_state.projection.result;
            if (!current(epoch) || now.paths != paths || column != m_state.projection.colourColumn) return;
            now.labels = std::move(labels);
            now.color.clear();
            now.request.colorColumn = s(column);
            emitChanged(Aspect::Projection);
        },
        failure(tr("colouring the projection")));
}

void Session::recolourProjection() {
    const ProjectionResult& r = m_state.projection.result;
    if (!m_state.projection.colourColumn.isEmpty() || !r.pointNames.empty()) return;  // coloured by a labels column, or heads by layer
    if (r.x.empty() || m_state.text.isEmpty() || r.request.colorText == s(m_state.text)) return;
    const quint64 epoch = m_epoch;
    const std::string text = s(m_state.text);
    const ProjectionRequest asked = r.request;
    m_engine.run(
        ProjectionColorJob{text, asked.heads}, this,
        [this, epoch, text, asked](std::vector<float> scores) {
            ProjectionResult& now = m_state.projection.result;
            if (!current(epoch) || now.request.method != asked.method || now.request.heads != asked.heads || scores.size() != now.x.size()) return;
            now.color = std::move(scores);
            now.request.colorText = text;
            emitChanged(Aspect::Projection);
        },
        failure(tr("colouring the projection")));
}

void Session::setPrecision(const QString& precision) {
    if (precision == m_state.precision) return;
    if (!m_state.hasModel()) {
        m_state.precision = precision;
        emitChanged(Aspect::Settings);
        return;
    }
    m_pendingImage = m_state.imagePath();
    m_pendingDataset = m_state.dataset.folder;
    m_state.modelLoading = q(m_state.model.spec);
    emitChanged(Aspect::Job);
    m_engine.run(
        OpenModelJob{m_state.model.spec, s(m_options.device), m_state.model.aligner, s(precision)}, this,
        [this, precision](ModelSummary m) {
            m_state.precision = precision;
            applyModel(m);
            showNotice(tr("%1 now runs in %2").arg(q(m.name), q(m.precision)));
        },
        [this, precision](const JobFailure& f) {
            m_state.modelLoading.clear();
            m_pendingImage.clear();
            m_pendingDataset.clear();
            emitChanged(Aspect::Job | Aspect::Settings);  // (the menu's choice goes back)
            if (!f.cancelled) showError(tr("Precision %1: %2 (still %3 in %4)").arg(precision, f.message, q(m_state.model.name), m_state.precision));
        });
}

void Session::compareHeads(const QString& spec) {
    if (!m_state.dataset.ready()) {
        showError(tr("Heads are compared over a dataset: open one first (File > Open image folder as dataset)"));
        return;
    }
    m_state.comparing = true;
    emitChanged(Aspect::Comparison);
    const quint64 epoch = m_epoch;
    const QString folder = m_state.dataset.folder;
    runLong(
        CompareJob{s(spec)}, tr("comparing the heads with %1").arg(QFileInfo(spec).fileName()),
        [this, epoch, folder](HeadComparison c) {
            if (!current(epoch) || folder != m_state.dataset.folder) return;
            m_state.partner = {};
            m_state.partner.model = c.summaryB;
            m_partnerKey.clear();
            m_state.comparison = std::move(c);
            m_state.comparing = false;
            emitChanged(Aspect::Comparison | Aspect::Partner);
            requestPartner();  // the compared model beside the open one: the same image, text and selection
            requestPartnerProperty();
            requestPartnerRetrieval();
        },
        [this](const JobFailure& f) {
            m_state.comparing = false;  // the comparison shown stays
            emitChanged(Aspect::Comparison);
            if (!f.cancelled) showError(tr("Comparing the heads: %1").arg(f.message));
        });
}

void Session::pickProjected(const QVector<int>& rows) {
    const std::vector<std::string>& names = m_state.projection.result.pointNames;
    if (!names.empty()) {  // heads as points: the picked heads become the grid's selection
        QList<HeadId> heads;
        for (int row : rows)
            if (row >= 0 && row < int(names.size())) {
                const HeadId h = pointHead(q(names[std::size_t(row)]));
                if (h.valid() && !heads.contains(h)) heads << h;
            }
        m_state.projection.picked = rows;
        emitChanged(Aspect::Projection);
        select(heads);
        return;
    }
    m_state.projection.picked = rows;
    m_state.projection.separation = {};
    m_state.projection.separationOf = 0;
    emitChanged(Aspect::Projection | Aspect::Grid);
    requestSeparation();
}

void Session::requestSeparation() {
    // The grid shows which heads and MLPs set the picked images apart from the others.
    const QVector<int>& rows = m_state.projection.picked;
    if (rows.isEmpty() || rows.size() >= int(m_state.projection.result.x.size()) || !m_state.dataset.ready()) return;
    const quint64 epoch = m_epoch;
    const QVector<int> asked = rows;
    m_engine.run(
        SeparationJob{std::vector<int64_t>(rows.begin(), rows.end())}, this,
        [this, epoch, asked](GridValues g) {
            if (!current(epoch) || m_state.projection.picked != asked) return;
            m_state.projection.separation = std::move(g);
            m_state.projection.separationOf = int(asked.size());
            m_state.metric = GridMetric::Separation;
            emitChanged(Aspect::Grid | Aspect::Projection);
        },
        failure(tr("comparing the picked images with the rest")));
}

void Session::focusHead(const HeadId& head) {
    const bool hadNeuron = m_state.focus.neuron >= 0;
    m_state.focus = {};
    m_state.focus.head = head;
    emitChanged(Aspect::Focus);
    requestTopImages();
    if (hadNeuron || m_state.view.method == "token-norms") requestMap();  // the text's map again; token norms follow the row
    if (m_state.concepts.ofFocusedHead && m_state.concepts.mode == "splice") requestConcepts();  // SpLiCE of this head
}

void Session::focusMlp(int row) {
    if (row < 0 || row >= m_state.model.gridLayers()) return;
    const bool hadNeuron = m_state.focus.neuron >= 0;
    m_state.focus = {};
    m_state.focus.mlpRow = row;
    m_state.focus.mlp = m_state.model.poolHeads > 0 && row == m_state.model.layers ? QString("pool.mlp") : QString("mlp.%1").arg(row);
    requestNeurons();  // (says at once where there is nothing to compute)
    requestNeuronRanking();  // by the property chosen, for this MLP
    emitChanged(Aspect::Focus);
    requestTopImages();
    if (hadNeuron || m_state.view.method == "token-norms") requestMap();
}

void Session::requestNeurons() {
    const Focus f = m_state.focus;
    if (f.mlp.isEmpty()) return;
    const char* none = f.mlpRow < 0 || f.mlpRow >= m_state.model.layers ? "the pooling head's MLP is not one of the encoder's blocks"
                       : m_state.image.path.empty()                      ? "open an image to see their effects on it"
                                                                         : nullptr;
    if (none) {
        m_state.focus.neurons = {};
        m_state.focus.neurons.layer = f.mlpRow;
        m_state.focus.neurons.unavailable = none;
        return;
    }
    NeuronsJob job;
    job.layer = f.mlpRow;
    job.text = s(m_state.text);
    const quint64 epoch = m_epoch;
    m_engine.run(
        job, this,
        [this, epoch, f](NeuronList list) {
            if (!current(epoch) || m_state.focus.mlp != f.mlp) return;
            m_state.focus.neurons = std::move(list);
            emitChanged(Aspect::Focus);
        },
        failure(tr("computing the neurons' effects")));
}

void Session::focusNeuron(qint64 neuron) {
    if (m_state.focus.mlp.isEmpty() || m_state.focus.mlpRow < 0 || neuron < 0) return;
    m_state.focus.neuron = neuron;
    m_state.focus.detail = {};
    m_state.focus.detailNote.clear();
    emitChanged(Aspect::Focus);
    requestMap();
    requestNeuronDetail();
}

void Session::dropNeuron() {
    if (m_state.focus.neuron < 0) return;
    m_state.focus.neuron = -1;
    m_state.focus.detail = {};
    m_state.focus.detailNote.clear();
    emitChanged(Aspect::Focus);
}

void Session::requestNeuronDetail() {
    const Focus f = m_state.focus;
    if (f.neuron < 0) return;
    if (!m_state.dataset.ready()) {
        m_state.focus.detailNote = tr("open a dataset for its top images and texts");
        return;
    }
    NeuronDetailJob job;
    job.layer = f.mlpRow;
    job.neuron = f.neuron;
    job.pool = s(m_state.textPoolFile());
    const quint64 epoch = m_epoch;
    const auto same = [this, f] { return m_state.focus.mlpRow == f.mlpRow && m_state.focus.neuron == f.neuron; };
    runLong(
        job, tr("summarising the neurons of %1 over the dataset").arg(m_state.mlpLabel(f.mlpRow)),
        [this, epoch, same](NeuronDetail d) {
            if (!current(epoch) || !same()) return;
            m_state.focus.detail = std::move(d);
            emitChanged(Aspect::Focus);
        },
        [this, same](const JobFailure& fail) {
            if (!same()) return;
            m_state.focus.detailNote = fail.cancelled ? tr("cancelled; click the neuron again to resume (the finished part is kept)") : fail.message;
            emitChanged(Aspect::Focus);
            if (!fail.cancelled) showError(tr("summarising the neurons: %1").arg(fail.message));
        });
}

void Session::requestTopImages() {
    const Focus f = m_state.focus;
    if (f.empty() || !m_state.dataset.ready()) return;
    TopImagesJob job;
    job.layer = f.head.layer;
    job.head = f.head.head;
    job.mlp = s(f.mlp);
    const quint64 epoch = m_epoch;
    m_engine.run(
        job, this,
        [this, epoch, f](std::vector<Hit> hits) {
            if (!current(epoch) || !(m_state.focus.head == f.head) || m_state.focus.mlp != f.mlp) return;
            m_state.focus.topImages = std::move(hits);
            emitChanged(Aspect::Focus);
        },
        failure(tr("finding the top images")));
}

void Session::setMetric(GridMetric metric) {
    m_state.metric = metric;
    emitChanged(Aspect::Grid);
    if (metric == GridMetric::Property && s(m_state.property) != m_state.scores.property) requestProperty();
    else if (metric == GridMetric::Property && m_state.partner.scores.property != m_state.scores.property) requestPartnerProperty();
}

void Session::setProperty(const QString& property) {
    m_state.property = property.trimmed();
    m_state.metric = GridMetric::Property;
    emitChanged(Aspect::Grid);
    requestProperty();
}

void Session::requestProperty() {
    const QString prop = m_state.property;
    if (prop.isEmpty()) return;
    if (!m_state.dataset.ready()) {
        showError(tr("property scores need a dataset (File > Open image folder as dataset)"));
        return;
    }
    // A name of this model's word lists or a file of texts; anything else is refused here, with
    // the names, and the grid keeps the scores it has.
    QStringList known;
    for (const std::string& n : m_state.model.propertyNames) known << q(n);
    if (!known.contains(prop) && !QFileInfo(prop).isFile()) {
        showError(tr("property '%1': no word list by that name for this model (it has: %2; or give a file of texts, one per line)")
                      .arg(prop, known.join(", ")));
        return;
    }
    const quint64 epoch = m_epoch;
    m_engine.run(
        PropertyJob{s(prop)}, this,
        [this, epoch](PropertyScores r) {
            if (!current(epoch)) return;
            m_state.scores = std::move(r);
            emitChanged(Aspect::Grid);
            requestPartnerProperty();
        },
        failure(tr("scoring the property")));
}

// ---- dataset, descriptions, retrieval ----

void Session::openDataset(const QString& folder) {
    if (folder.isEmpty()) return;
    if (!m_state.modelLoading.isEmpty()) {  // cached by the model being loaded, once it is in
        m_pendingDataset = folder;
        return;
    }
    // The bundled world is generated on first use (only in vitscope's own data folder: a user's
    // folder is never written to).
    const bool world = QFileInfo(folder) == QFileInfo(m_options.dataDir + "/shapes-world/images");
    OpenDatasetJob job{s(folder), s(m_state.textspan.convention), world ? s(QFileInfo(folder).path()) : std::string()};
    const quint64 epoch = m_epoch;
    runLong(
        job, tr("caching %1").arg(folder),
        [this, epoch, folder](DatasetSummary d) {
            if (current(epoch)) applyDataset(folder, d);
        },
        [this, folder](const JobFailure& f) {
            if (f.cancelled) showNotice(tr("caching %1 cancelled (finished chunks are kept)").arg(folder));
            else showError(m_state.dataset.ready() ? tr("%1 (still using %2)").arg(f.message, m_state.dataset.folder) : f.message);
        });
}

void Session::applyDataset(const QString& folder, const DatasetSummary& d) {
    m_state.dataset = {folder, d};
    m_state.descriptions.clear();
    m_state.scores = {};
    m_state.focus.topImages.clear();
    m_state.focus.detail = {};  // the old dataset's
    m_state.focus.detailNote.clear();
    m_state.projection.result = {};  // laid out again below when one was asked for
    m_state.projection.picked.clear();
    m_state.projection.separation = {};
    m_state.projection.separationOf = 0;
    m_state.retrieval.result = {};
    // The explorer closed the old task with the old dataset; labels beside the images (the folder
    // or its parent, as the shapes world and its splits have them) are offered as the new task's.
    m_state.ablation = {};
    m_state.ablation.task.labels = d.labelsFile;
    const auto& columns = d.labelColumns;
    if (std::find(columns.begin(), columns.end(), s(m_state.projection.colourColumn)) == columns.end())
        m_state.projection.colourColumn.clear();  // the new dataset's labels lack it: coloured by the text
    m_state.ablation.taskText = tr("No task set for %1: give its labels, a classes file and a reference split, then Set task.").arg(folder);
    spdlog::info("dataset {}: {} images cached in {} ({} skipped)", d.images, d.count, d.cacheDir, d.skipped);
    emitChanged(Aspect::Dataset | Aspect::Descriptions | Aspect::Grid | Aspect::Focus | Aspect::Retrieval | Aspect::Ablation | Aspect::Projection);
    showNotice(tr("%1 images ready").arg(d.count));
    if (!m_state.hasImage() && d.count > 0) openFirstView();
    describeHeads();
    requestTopImages();
    requestNeuronDetail();
    requestProjection();
    if (m_state.hasImage()) {  // SpLiCE's image mean and a latent's top images come from the dataset
        requestConcepts();
        requestLatentDetail();
    }
    if (m_state.comparison) {  // the same comparison over the new images
        const QString spec = q(m_state.comparison->specB);
        m_state.comparison.reset();
        m_state.partner = {};  // the explorer closed it with the old dataset
        m_partnerKey.clear();
        emitChanged(Aspect::Partner);
        compareHeads(spec);
    }
    if (m_state.metric == GridMetric::Property) requestProperty();
    neuronsFollowDataset();
    rerunRetrieval();
}

void Session::describeHeads() {
    if (!m_state.dataset.ready()) {
        showError(tr("TextSpan describes heads over a dataset: open one first (File > Open image folder as dataset)"));
        return;
    }
    const QString pool = m_state.textPoolFile();
    if (pool.isEmpty()) {
        showError(tr("no text pool found (resources/)"));
        return;
    }
    const quint64 epoch = m_epoch;
    runLong(
        DescribeHeadsJob{s(pool), m_state.textspan.perHead, m_state.textspan.rank}, tr("describing heads (TextSpan)"),
        [this, epoch](std::vector<HeadDescription> d) {
            if (!current(epoch)) return;
            m_state.descriptions = std::move(d);
            emitChanged(Aspect::Descriptions | Aspect::Grid | Aspect::Focus);
            showNotice(tr("%1 heads described with TextSpan (%2 texts each): hover a cell for its texts, click it for its chart")
                           .arg(m_state.descriptions.size())
                           .arg(m_state.descriptions.empty() ? 0 : int(m_state.descriptions.front().picks.size())));
            requestTopImages();  // a head's top images follow its first description
        },
        [this](const JobFailure& f) {
            failure(tr("describing heads"))(f);
        });
}

void Session::setTextSpanSettings(const TextSpanSettings& t) {
    const bool recache = t.convention != m_state.textspan.convention;
    m_state.textspan = t;
    emitChanged(Aspect::Settings);
    if (!m_state.dataset.ready()) return;
    if (recache) openDataset(m_state.dataset.folder);  // describes the heads when cached
    else describeHeads();
}

void Session::retrieveText(const QString& text) {
    if (text.trimmed().isEmpty()) return;
    m_state.neuronTools.retrieval = {};  // through heads from now on
    m_state.retrieval = {text.trimmed(), false, {}, m_state.retrieval.top};
    emitChanged(Aspect::Retrieval);
    rerunRetrieval(true);
}

void Session::retrieveWithHead(int layer, int head) {
    select({gridHead(layer, head, m_state.model.layers, m_state.model.poolHeads > 0)});
    QString text = m_state.text;
    for (const HeadDescription& d : m_state.descriptions)
        if (text.isEmpty() && d.layer == layer && d.index == head && !d.picks.empty()) text = QString::fromStdString(d.picks.front().text);
    retrieveText(text.isEmpty() ? QString("an object") : text);
}

void Session::retrieveImage(const QString& path) {
    if (path.isEmpty()) return;
    m_state.neuronTools.retrieval = {};
    m_state.retrieval = {path, true, {}, m_state.retrieval.top};
    emitChanged(Aspect::Retrieval);
    rerunRetrieval(true);
}

void Session::setRetrievalCount(int top) {
    m_state.retrieval.top = std::max(1, top);
    emitChanged(Aspect::Retrieval);
}

void Session::rerunRetrieval(bool asked) {
    if (m_state.neuronTools.retrieval.active) return rerunNeuronRetrieval();  // through neurons (session_neurons.cpp)
    const RetrievalState& r = m_state.retrieval;
    if (r.query.isEmpty()) return;
    if (!m_state.dataset.ready()) {
        // Said when a search is asked for, not again at every selection change.
        if (asked) showError(tr("retrieval searches a dataset: open one first (File > Open image folder as dataset)"));
        return;
    }
    const quint64 epoch = m_epoch;
    const QString query = r.query;
    m_engine.run(
        RetrieveJob{s(r.query), r.byImage, m_state.selectedPairs(), r.top}, this,
        [this, epoch, query](RetrievalResult result) {
            if (!current(epoch) || m_state.retrieval.query != query) return;
            m_state.retrieval.result = std::move(result);
            emitChanged(Aspect::Retrieval);
        },
        failure(tr("retrieving images")));
    requestPartnerRetrieval();
}

// ---- ablation ----

void Session::setAblationTask(const AblationTask& task) {
    if (!m_state.dataset.ready()) {
        showError(tr("open a dataset first (File > Open image folder as dataset)"));
        return;
    }
    if (task.labels.empty() || task.classes.empty() || task.referenceImages.empty()) {
        showError(tr("an ablation task needs labels.csv, a classes file and a reference image folder"));
        return;
    }
    const quint64 epoch = m_epoch;
    runLong(
        AblationTaskJob{task}, tr("setting up the ablation task (caching the reference images)"),
        [this, epoch, task](AblationOutcome o) {
            if (!current(epoch)) return;
            m_state.ablation.task = task;
            m_state.ablation.taskSet = true;
            m_state.ablation.ablated.clear();
            m_state.ablation.outcome = std::move(o);
            m_state.ablation.taskText = tr("Task set on %1: %2 groups; means from the reference images. Tick heads to ablate.")
                                            .arg(m_state.dataset.folder)
                                            .arg(m_state.ablation.outcome.groups.size());
            emitChanged(Aspect::Ablation);
        },
        [this](const JobFailure& f) {
            failure(tr("setting up the ablation task"))(f);
        });
}

void Session::ablate(const QStringList& components) {
    m_state.ablation.ablated = components;
    emitChanged(Aspect::Ablation);
    if (!m_state.ablation.taskSet) {
        showError(tr("set an ablation task first (Ablation panel: Set task, or Load the spurious demo)"));
        return;
    }
    std::vector<std::string> names;
    for (const QString& c : components) names.push_back(s(c));
    const quint64 epoch = m_epoch;
    m_engine.run(
        AblateJob{names}, this,
        [this, epoch, components](AblationOutcome o) {
            if (!current(epoch) || m_state.ablation.ablated != components) return;
            m_state.ablation.outcome = std::move(o);
            emitChanged(Aspect::Ablation);
        },
        failure(tr("ablating heads")));
}

void Session::discoverSpurious(const QStringList& spurious, const QStringList& core, int k) {
    if (spurious.isEmpty() || core.isEmpty()) {
        showError(tr("discovery needs spurious and core descriptions (Ablation panel)"));
        return;
    }
    if (!m_state.ablation.taskSet) {
        showError(tr("set an ablation task first: discovery ranks heads on its reference split"));
        return;
    }
    std::vector<std::string> sp, co;
    for (const QString& t : spurious) sp.push_back(s(t));
    for (const QString& t : core) co.push_back(s(t));
    const quint64 epoch = m_epoch;
    m_engine.run(
        DiscoverSpuriousJob{sp, co, k}, this,
        [this, epoch](std::vector<ComponentValue> found) {
            if (!current(epoch)) return;
            QStringList names;
            for (const ComponentValue& c : found) names << q(c.name);
            ablate(names);
        },
        failure(tr("discovering spurious heads")));
}

void Session::loadSpuriousDemo() {
    const QString model = q(bundledModelDir("shapes-clip-spurious"));
    if (model.isEmpty()) {
        showError(tr("models/shapes-clip-spurious is missing from this installation"));
        return;
    }
    SpuriousDemoJob job;
    job.demo.dir = s(m_options.dataDir + "/spurious-demo");
    job.model = s(model);
    job.device = s(m_options.device);
    job.convention = s(m_state.textspan.convention);
    runLong(
        job, tr("loading the spurious-split demo"),
        [this, demo = job.demo](SpuriousDemoLoaded r) {
            ++m_epoch;
            clearModelResults();
            m_state.model = r.model;
            m_state.view.method = "decomposition";
            m_state.dataset = {q(r.dataset.images), r.dataset};
            m_state.ablation.task = r.task;
            m_state.ablation.taskSet = true;
            m_state.ablation.outcome = r.outcome;
            m_state.ablation.spuriousTexts = q(demo.spuriousTexts);
            m_state.ablation.coreTexts = q(demo.coreTexts);
            m_state.ablation.taskText =
                tr("Spurious-split demo: shapes-clip-spurious (trained where shape groups go with grass / water) classifies %1 "
                   "spurious-test scenes into shape groups; means from spurious-train. Tick heads, or tick the discovered ones.")
                    .arg(r.dataset.count);
            emitChanged(kAllAspects);
            openFirstView();
            describeHeads();
        },
        [this](const JobFailure& f) {
            failure(tr("loading the spurious-split demo"))(f);
        });
}

}  // namespace vitscope::ui
