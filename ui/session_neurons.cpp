// The session's neuron tools rules (session.h, NeuronToolsState): the focused MLP's neurons ranked
// by a property over the open dataset, the ticked neurons, retrieval through them in the Retrieval
// dock, and the token norms of every block of the open image.
// Follow-on rules: another model clears all of it (clearModelResults); another dataset ranks again
// and retrieves again (applyDataset -> neuronsFollowDataset, rerunRetrieval); another MLP ranks its
// own neurons (focusMlp); another image computes its token norms again (applyImage).
#include "session.h"

#include <spdlog/spdlog.h>

namespace vitscope::ui {

namespace {

QString q(const std::string& s) {
    return QString::fromStdString(s);
}
std::string s(const QString& q) {
    return q.toStdString();
}

}  // namespace

void Session::rankNeuronsBy(const QString& property) {
    NeuronRankState& r = m_state.neuronTools.rank;
    if (property.trimmed() == r.property && (r.computing || r.ranking.layer == m_state.focus.mlpRow)) return;
    r = {};
    r.property = property.trimmed();
    emitChanged(Aspect::Neurons);
    requestNeuronRanking();
}

void Session::requestNeuronRanking() {
    NeuronRankState& r = m_state.neuronTools.rank;
    const int layer = m_state.focus.mlpRow;
    if (r.property.isEmpty() || m_state.focus.mlp.isEmpty() || (r.ranking.layer == layer && r.ranking.layer >= 0))
        return;
    r.ranking = {};
    r.note.clear();
    r.computing = false;
    if (!m_state.dataset.ready()) {
        r.note = tr("ranking by a property reads a dataset: open one (File > Open image folder as dataset)");
        return emitChanged(Aspect::Neurons);
    }
    r.computing = true;
    emitChanged(Aspect::Neurons);
    const quint64 epoch = m_epoch;
    const QString property = r.property, folder = m_state.dataset.folder;
    const auto same = [this, property, folder, layer] {
        const NeuronRankState& now = m_state.neuronTools.rank;
        return now.property == property && m_state.focus.mlpRow == layer && m_state.dataset.folder == folder;
    };
    runLong(
        RankNeuronsJob{layer, s(property)},
        tr("ranking the neurons of %1 by %2").arg(m_state.mlpLabel(layer), property),
        [this, epoch, same](NeuronRanking ranking) {
            spdlog::info("mlp.{} neurons ranked by {} over {} images in {:.1f} s", ranking.layer, ranking.property,
                         ranking.images, ranking.seconds);
            if (!current(epoch) || !same()) return;
            m_state.neuronTools.rank.ranking = std::move(ranking);
            m_state.neuronTools.rank.computing = false;
            emitChanged(Aspect::Neurons);
        },
        [this, epoch, same](const JobFailure& f) {
            if (!current(epoch) || !same()) return;
            NeuronRankState& now = m_state.neuronTools.rank;
            now.computing = false;
            now.note = f.cancelled ? tr("cancelled; choose the property again to rank") : f.message;
            emitChanged(Aspect::Neurons);
            if (!f.cancelled) showError(tr("ranking the neurons: %1").arg(f.message));
        });
}

void Session::tickNeurons(const QList<qint64>& neurons) {
    NeuronToolsState& t = m_state.neuronTools;
    if (m_state.focus.mlp.isEmpty()) return;
    t.tickedLayer = m_state.focus.mlpRow;
    t.ticked = neurons;
    emitChanged(Aspect::Neurons);
}

void Session::retrieveThroughNeurons() {
    const Focus& f = m_state.focus;
    const NeuronToolsState& t = m_state.neuronTools;
    QList<qint64> neurons = t.tickedLayer == f.mlpRow && !f.mlp.isEmpty() ? t.ticked : QList<qint64>{};
    if (neurons.isEmpty() && f.neuron >= 0) neurons = {f.neuron};
    if (f.mlp.isEmpty() || neurons.isEmpty())
        return showError(
            tr("Retrieval through neurons: click an MLP cell, then tick its neurons (or click one) in the head panel"));
    if (!m_state.dataset.ready())
        return showError(tr("retrieval searches a dataset: open one first (File > Open image folder as dataset)"));
    QString text = m_state.text;
    if (text.isEmpty() && f.detail.neuron == f.neuron && !f.detail.texts.empty())
        text = q(f.detail.texts.front().text);  // the neuron's own text
    if (text.isEmpty()) return showError(tr("Retrieval through neurons: type a text first"));
    m_state.neuronTools.retrieval = {true, f.mlpRow, neurons, text, {}};
    m_state.retrieval = {text, false, {}, m_state.retrieval.top};
    emitChanged(Aspect::Retrieval | Aspect::Neurons);
    rerunNeuronRetrieval();
}

void Session::rerunNeuronRetrieval() {
    const NeuronRetrievalState& n = m_state.neuronTools.retrieval;
    if (!n.active || !m_state.dataset.ready()) return;
    if (n.dataset == m_state.dataset.folder && !m_state.retrieval.result.global.empty())
        return;  // (the selection changed: not about neurons)
    const quint64 epoch = m_epoch;
    const QString folder = m_state.dataset.folder, text = n.text;
    NeuronRetrieveJob job{n.layer, {}, s(text), m_state.retrieval.top};
    for (qint64 neuron : n.neurons) job.neurons.push_back(neuron);
    runLong(
        job,
        tr("retrieving \"%1\" through %n neuron(s) of %2", nullptr, int(n.neurons.size()))
            .arg(text, m_state.mlpLabel(n.layer)),
        [this, epoch, folder, text](RetrievalResult r) {
            NeuronRetrievalState& now = m_state.neuronTools.retrieval;
            if (!current(epoch) || !now.active || now.text != text || m_state.dataset.folder != folder) return;
            now.dataset = folder;
            m_state.retrieval.result = std::move(r);
            emitChanged(Aspect::Retrieval);
        },
        [this, epoch](const JobFailure& f) {
            if (!current(epoch) || f.cancelled) return;
            m_state.neuronTools.retrieval = {};
            showError(tr("retrieval through neurons: %1").arg(f.message));
        });
}

void Session::neuronsFollowDataset() {
    NeuronToolsState& t = m_state.neuronTools;
    t.rank.ranking = {};
    t.rank.computing = false;
    t.rank.note.clear();
    t.retrieval.dataset.clear();
    emitChanged(Aspect::Neurons);
    requestNeuronRanking();
}

void Session::setTokenNormsPerBlock(bool on) {
    NeuronToolsState& t = m_state.neuronTools;
    if (on && !m_state.model.registers) {
        emitChanged(Aspect::Neurons);  // (the menu's tick goes back)
        return showError(tr("Token norms of every block: %1 has no plain class-token blocks whose output tokens the "
                            "register reference "
                            "reads (Swin, MaxViT and SigLIP have none)")
                             .arg(q(m_state.model.name)));
    }
    t.normsPerBlock = on;
    t.normBlocks.reset();
    t.normBlocksRegisters.reset();
    t.normBlocksImage.clear();
    emitChanged(Aspect::Neurons | Aspect::Map);
    if (!on) return;
    if (m_state.view.method != "token-norms") setMethod("token-norms");
    requestNormBlocks();
}

void Session::requestNormBlocks() {
    if (!m_state.neuronTools.normsPerBlock || !m_state.hasImage()) return;
    m_state.neuronTools.normBlocks.reset();  // the last image's (or the same file cropped otherwise)
    m_state.neuronTools.normBlocksRegisters.reset();
    const quint64 epoch = m_epoch;
    const QString image = m_state.imagePath();
    const bool registers = m_state.view.registersBeside && m_state.registers;  // a second row
    m_engine.run(
        TokenNormBlocksJob{registers}, this,
        [this, epoch, image](TokenNormRows rows) {
            NeuronToolsState& t = m_state.neuronTools;
            if (!current(epoch) || !t.normsPerBlock || m_state.imagePath() != image) return;
            t.normBlocks = std::move(rows.model);
            t.normBlocksRegisters = std::move(rows.registers);
            t.normBlocksImage = image;
            emitChanged(Aspect::Map | Aspect::Neurons);
        },
        failure(tr("computing the token norms of every block"), true));
}

}  // namespace vitscope::ui
