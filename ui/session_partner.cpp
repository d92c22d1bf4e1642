// The session's rules for the compared model (session.h, PartnerState): once heads are compared
// with another model, that model stays open beside the open one and follows the same image, text,
// method and selection (through the head assignment), the property and the retrieval.
#include "session.h"

#include <spdlog/spdlog.h>

namespace vitscope::ui {

namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }
std::string s(const QString& q) { return q.toStdString(); }

}  // namespace

void Session::requestPartner() {
    const State& st = m_state;
    if (!st.comparison || !st.partner.open() || !st.hasImage()) return;
    const ModelSummary& b = st.partner.model;
    HeatmapRequest r;
    r.text = s(st.text);
    r.method = s(st.view.method);
    QString note;
    if (std::find(b.heatmapMethods.begin(), b.heatmapMethods.end(), r.method) == b.heatmapMethods.end()) {
        note = tr("%1 has no %2 map: its decomposition is shown").arg(q(b.name), st.view.method);
        r.method = "decomposition";
    }
    if (st.view.onlySelected) r.heads = st.comparison->assignedInB(st.selectedPairs());
    applyMapOptions(st.view.map, r);
    const bool mapped = !r.text.empty() || textFree(q(r.method));
    QStringList heads;
    for (const auto& [l, h] : r.heads) heads << QString("%1.%2").arg(l).arg(h);
    const QString key = QStringList{st.imagePath(), st.view.wholeImage ? "whole" : "crop", st.text, st.view.method, q(r.method), heads.join(','),
                                    QString::number(st.view.map.cheferStartLayer.value_or(-99)), st.view.map.gradcamTarget,
                                    st.view.map.siglipMap, QString::number(st.view.map.inputSize)}
                            .join('\n');
    if (key == m_partnerKey) return;
    m_partnerKey = key;
    PartnerViewJob job{st.imagePath().toStdString(), st.view.wholeImage, st.partner.image.path != st.image.path || st.partner.image.wholeImage != st.view.wholeImage,
                       r, mapped};
    const quint64 epoch = m_epoch;
    const std::string spec = st.comparison->specB;
    m_engine.run(
        job, this,
        [this, epoch, spec, note, heads = r.heads](PartnerAnswer v) {
            if (!current(epoch) || !m_state.comparison || m_state.comparison->specB != spec) return;
            if (!v.image.path.empty()) m_state.partner.image = std::move(v.image);
            m_state.partner.map = std::move(v.map);
            m_state.partner.mapNote = note;
            m_state.partner.mapHeads = heads;
            m_state.partner.ledger = std::move(v.ledger);
            emitChanged(Aspect::Partner);
        },
        [this](const JobFailure& f) {
            if (f.cancelled) return;
            m_partnerKey.clear();  // asked again next time
            showError(tr("The compared model's view: %1").arg(f.message));
        });
}

void Session::requestPartnerProperty() {
    const State& st = m_state;
    if (!st.comparison || !st.partner.open() || st.metric != GridMetric::Property || st.scores.property.empty()) return;
    const quint64 epoch = m_epoch;
    const std::string spec = st.comparison->specB;
    m_engine.run(
        PartnerPropertyJob{st.scores.property}, this,
        [this, epoch, spec](PropertyScores r) {
            if (!current(epoch) || !m_state.comparison || m_state.comparison->specB != spec) return;
            m_state.partner.scores = std::move(r);
            emitChanged(Aspect::Partner);
        },
        failure(tr("scoring the property on the compared model")));
}

void Session::requestPartnerRetrieval() {
    const State& st = m_state;
    if (!st.comparison || !st.partner.open() || st.retrieval.query.isEmpty() || !st.dataset.ready()) return;
    const HeadPairs heads = st.comparison->assignedInB(st.selectedPairs());
    const quint64 epoch = m_epoch;
    const std::string spec = st.comparison->specB;
    const QString query = st.retrieval.query;
    m_engine.run(
        PartnerRetrieveJob{RetrieveJob{s(query), st.retrieval.byImage, heads, st.retrieval.top}}, this,
        [this, epoch, spec, query](RetrievalResult r) {
            if (!current(epoch) || !m_state.comparison || m_state.comparison->specB != spec || m_state.retrieval.query != query) return;
            m_state.partner.retrieval = std::move(r);
            emitChanged(Aspect::Partner);
        },
        failure(tr("retrieving through the compared model's heads")));
}

void Session::selectPartnerHeads(const QList<HeadId>& headsOfB) {
    if (!m_state.comparison) return;
    HeadPairs cells;
    for (const HeadId& h : headsOfB) cells.emplace_back(h.layer, h.head);
    QList<HeadId> heads;
    for (const auto& [l, h] : m_state.comparison->assignedInA(cells)) heads << gridHead(l, h, m_state.model.layers, m_state.model.poolHeads > 0);
    if (heads.isEmpty()) {
        showNotice(tr("No head of %1 is assigned to that head of %2").arg(q(m_state.model.name), q(m_state.partner.model.name)));
        return;
    }
    select(heads);
    focusHead(heads.front());
}

}  // namespace vitscope::ui
