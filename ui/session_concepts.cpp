// The session's concept panel rules (session.h, ConceptState): SpLiCE's concepts and an SAE's
// latents for the open image, a chosen latent's map, grid and top images.
#include "session.h"

#include "resources.h"

#include <QFileInfo>

namespace vitscope::ui {

namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }
std::string s(const QString& q) { return q.toStdString(); }

}  // namespace

QString Session::defaultVocabulary() const {
    // The shapes world's concepts for its word-vocabulary models (every word known), else the
    // general descriptions pool.
    const QString pool = m_state.textPoolFile();
    return pool.contains("resources/shapes/") ? q(dataFile("resources/shapes/concepts.txt")) : pool;
}

void Session::setConceptMode(const QString& mode) {
    if (mode == m_state.concepts.mode) return;
    m_state.concepts.mode = mode;
    m_state.concepts.note.clear();
    emitChanged(Aspect::Concepts);
    requestConcepts();
}

void Session::decomposeConcepts(const QString& vocabFile, double l1, bool ofFocusedHead) {
    if (!vocabFile.isEmpty() && !QFileInfo(vocabFile).isFile()) {
        showError(tr("%1: no such vocabulary file (one concept per line)").arg(vocabFile));
        return;
    }
    m_state.concepts.mode = "splice";
    m_state.concepts.spliceAsked = true;
    m_state.concepts.vocabFile = vocabFile;
    m_state.concepts.l1 = l1;
    m_state.concepts.ofFocusedHead = ofFocusedHead;
    emitChanged(Aspect::Concepts);
    requestConcepts();
}

void Session::requestConcepts() {
    ConceptState& c = m_state.concepts;
    if (!m_state.hasImage()) return;
    if (c.mode == "splice" && !c.spliceAsked) return;
    if (c.mode == "sae" && !c.sae) return;
    if (c.mode == "splice" && !m_state.dataset.ready()) {
        c.splice.reset();
        c.note = tr("SpLiCE centres the image with the mean of a dataset's embeddings: open a dataset (File > Open image folder as dataset).");
        emitChanged(Aspect::Concepts);
        return;
    }
    c.computing = true;
    c.note.clear();
    emitChanged(Aspect::Concepts);
    const quint64 epoch = m_epoch;
    const QString image = m_state.imagePath();
    auto failed = [this, epoch](const JobFailure& f) {
        if (!current(epoch)) return;
        ConceptState& now = m_state.concepts;
        if (now.mode == "splice" && now.splice)  // a vocabulary that failed is not the one in use
            now.vocabFile = now.splice->vocabFile == s(defaultVocabulary()) ? QString() : q(now.splice->vocabFile);
        m_state.concepts.computing = false;
        m_state.concepts.note = f.cancelled ? tr("cancelled") : f.message;
        emitChanged(Aspect::Concepts);
        if (!f.cancelled) showError(tr("Concepts: %1").arg(f.message));
    };
    if (c.mode == "splice") {
        const QString vocab = c.vocabFile.isEmpty() ? defaultVocabulary() : c.vocabFile;
        const HeadId head = m_state.focus.head;
        if (c.ofFocusedHead && !head.valid()) {
            c.computing = false;
            c.splice.reset();
            c.note = tr("Click a head in the grid: SpLiCE decomposes its contribution.");
            emitChanged(Aspect::Concepts);
            return;
        }
        m_engine.run(
            SpliceJob{s(vocab), c.l1, c.ofFocusedHead ? s(head.name()) : std::string()}, this,
            [this, epoch, image](SpliceView v) {
                if (!current(epoch) || image != m_state.imagePath()) return;
                m_state.concepts.splice = std::move(v);
                m_state.concepts.computing = false;
                emitChanged(Aspect::Concepts);
            },
            failed);
        return;
    }
    m_engine.run(
        SaeLatentsJob{s(m_state.textPoolFile())}, this,
        [this, epoch, image](SaeImageLatents l) {
            if (!current(epoch) || image != m_state.imagePath()) return;
            m_state.concepts.latents = std::move(l);
            m_state.concepts.computing = false;
            emitChanged(Aspect::Concepts);
        },
        failed);
    requestLatentDetail();
}

void Session::openSae(const QString& path) {
    if (!m_state.hasModel()) {
        showError(tr("%1: open a model first; an SAE reads a model's activations").arg(path));
        return;
    }
    const quint64 epoch = m_epoch;
    m_engine.run(
        OpenSaeJob{s(path)}, this,
        [this, epoch](SaeSummary sum) {
            if (!current(epoch)) return;
            const bool hadLatent = m_state.concepts.latent >= 0;
            dropLatent();  // the old SAE's latent: its map and grid go
            if (hadLatent) requestMap();
            ConceptState& c = m_state.concepts;
            c.mode = "sae";
            c.sae = std::move(sum);
            c.latents.reset();
            c.found.clear();
            c.detail.reset();
            c.latent = -1;
            c.note.clear();
            emitChanged(Aspect::Concepts);
            showNotice(tr("SAE %1").arg(q(c.sae->description)));
            requestConcepts();
        },
        failure(tr("opening the SAE")));  // the SAE open before stays
}

void Session::chooseLatent(qint64 latent) {
    if (!m_state.concepts.sae || latent < 0) return;
    dropNeuron();
    m_state.concepts.latent = latent;
    m_state.concepts.detail.reset();
    emitChanged(Aspect::Concepts);
    requestMap();
    requestLatentDetail();
}

void Session::requestLatentDetail() {
    const ConceptState& c = m_state.concepts;
    if (c.latent < 0 || !c.sae || !m_state.hasImage()) return;
    const quint64 epoch = m_epoch;
    const qint64 latent = c.latent;
    const QString image = m_state.imagePath();
    m_engine.run(
        SaeLatentJob{latent, 12}, this,
        [this, epoch, latent, image](SaeLatentDetail d) {
            if (!current(epoch) || latent != m_state.concepts.latent || image != m_state.imagePath()) return;
            m_state.concepts.detail = std::move(d);
            m_state.metric = GridMetric::Latent;  // the grid shows where the latent comes from
            emitChanged(Aspect::Concepts | Aspect::Grid);
        },
        failure(tr("tracing latent %1").arg(latent)));
}

void Session::dropLatent() {
    if (m_state.concepts.latent < 0) return;
    m_state.concepts.latent = -1;
    m_state.concepts.detail.reset();
    Aspects a = Aspect::Concepts;
    if (m_state.metric == GridMetric::Latent) {
        m_state.metric = GridMetric::DirectEffect;
        a |= Aspect::Grid;
    }
    emitChanged(a);
}

void Session::searchLatents(const QString& text) {
    const QString t = text.trimmed();
    if (!m_state.concepts.sae || t.isEmpty()) return;
    m_state.concepts.query = t;
    const quint64 epoch = m_epoch;
    m_engine.run(
        SaeSearchJob{s(t), 20}, this,
        [this, epoch, t](std::vector<SaeLatentRow> rows) {
            if (!current(epoch) || t != m_state.concepts.query) return;
            m_state.concepts.found = std::move(rows);
            emitChanged(Aspect::Concepts);
        },
        failure(tr("searching the latents")));
}

}  // namespace vitscope::ui
