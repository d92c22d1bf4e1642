#include "neuron_tools.h"

#include "session.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QSignalBlocker>
#include <QVBoxLayout>

namespace vitscope::ui {

namespace {

constexpr int kRankedRows = 100;  // the ranking's rows shown (the best first)

QString q(const std::string& s) {
    return QString::fromStdString(s);
}

}  // namespace

NeuronTools::NeuronTools(QListWidget* list, QWidget* parent) : QWidget(parent), m_list(list) {
    auto* rows = new QVBoxLayout(this);  // two rows: the panel stays as narrow as its dock
    rows->setContentsMargins(0, 0, 0, 0);
    auto* row = new QHBoxLayout;
    m_order = new QComboBox;
    m_order->setObjectName("neuronOrderBox");
    m_order->setToolTip(
        tr("Order the neurons by their second-order effect on the open image, or by a property's score over the open "
           "dataset (Beyond CLIP's score of each neuron's effects, as vitscope-cli neurons rank computes it)"));
    m_order->addItem(tr("effect on this image"), QString());
    m_order->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_order->setMinimumContentsLength(12);
    m_retrieve = new QPushButton(tr("Retrieve through these neurons"));
    m_retrieve->setObjectName("neuronRetrieveButton");
    m_retrieve->setToolTip(
        tr("The text's images in the open dataset through the ticked neurons (else the neuron clicked), beside "
           "global retrieval (vitscope-cli neurons retrieve)"));
    row->addWidget(new QLabel(tr("Order by")));
    row->addWidget(m_order, 1);
    rows->addLayout(row);
    rows->addWidget(m_retrieve, 0, Qt::AlignLeft);
    connect(m_order, qOverload<int>(&QComboBox::activated), this,
            [this](int i) { emit rankRequested(m_order->itemData(i).toString()); });
    connect(m_retrieve, &QPushButton::clicked, this, &NeuronTools::retrieveRequested);
    connect(m_list, &QListWidget::itemChanged, this, [this] {
        if (m_filling) return;
        const QList<qint64> now = ticked();
        if (now != m_ticks) emit ticksChanged(now);
    });
}

void NeuronTools::connectTo(Session* session) {
    connect(this, &NeuronTools::rankRequested, session, &Session::rankNeuronsBy);
    // Queued: the new ticks refill the list whose item is still handling its change.
    connect(this, &NeuronTools::ticksChanged, session, &Session::tickNeurons, Qt::QueuedConnection);
    connect(this, &NeuronTools::retrieveRequested, session, &Session::retrieveThroughNeurons);
}

QList<qint64> NeuronTools::ticked() const {
    // The ticks of rows not shown stay (another order shows other neurons); the shown rows say theirs.
    QList<qint64> shown, out;
    for (int i = 0; i < m_list->count(); ++i) shown << m_list->item(i)->data(Qt::UserRole).toLongLong();
    for (qint64 n : m_ticks)
        if (!shown.contains(n)) out << n;
    for (int i = 0; i < m_list->count(); ++i)
        if (m_list->item(i)->checkState() == Qt::Checked) out << shown[i];
    return out;
}

void NeuronTools::setProperties(const State& s) {
    const QSignalBlocker block(m_order);
    while (m_order->count() > 1) m_order->removeItem(1);
    for (const std::string& p : s.model.propertyNames) m_order->addItem(tr("%1 over the dataset").arg(q(p)), q(p));
}

void NeuronTools::render(const State& s, QFlags<Aspect> changed) {
    if (changed & Aspect::Model) setProperties(s);
    const Focus& f = s.focus;
    setVisible(!f.mlp.isEmpty() && f.neurons.unavailable.empty());
    const NeuronToolsState& t = s.neuronTools;
    {
        const QSignalBlocker block(m_order);
        const int i = m_order->findData(t.rank.property);
        m_order->setCurrentIndex(i >= 0 ? i : 0);
    }
    const bool ticks = t.tickedLayer == f.mlpRow && !t.ticked.isEmpty();
    m_retrieve->setEnabled(!f.mlp.isEmpty() && (ticks || f.neuron >= 0));
    // Never wider than "...this neuron": a tick must not widen the panel (its list would reflow).
    m_retrieve->setText(ticks ? tr("Retrieve through %n ticked", nullptr, int(t.ticked.size()))
                              : tr("Retrieve through this neuron"));
}

bool NeuronTools::rankedRows(const State& s, QString* heading, std::vector<NeuronLine>* rows, QString* pending) {
    const NeuronRankState& r = s.neuronTools.rank;
    const Focus& f = s.focus;
    pending->clear();
    if (r.property.isEmpty() || f.mlp.isEmpty()) return false;
    if (!r.note.isEmpty()) {
        *heading = tr("Neurons by \"%1\": %2").arg(r.property, r.note);
        return true;
    }
    if (r.ranking.layer != f.mlpRow) {  // the image's rows stay where they are until it arrives
        *pending =
            tr("Ranking them by \"%1\" over the dataset's images (the list follows when it is done).").arg(r.property);
        return false;
    }
    *heading = tr("Its %1 neurons by property score for \"%2\" over %3 images (the best %4; second-order effects, "
                  "Beyond CLIP's score%5):")
                   .arg(r.ranking.scores.size())
                   .arg(r.property)
                   .arg(r.ranking.images)
                   .arg(std::min<std::size_t>(kRankedRows, r.ranking.scores.size()))
                   .arg(r.ranking.cached ? tr("; from the layer's cached sums") : QString());
    m_list->setToolTip(
        tr("Neuron and its property score: the mean correlation, over the property's text directions, of the neuron's "
           "second-order effect with the whole representation across the dataset's images (1: carries the property's "
           "variation)"));
    for (std::size_t i = 0; i < r.ranking.scores.size() && i < std::size_t(kRankedRows); ++i) {
        const auto& [neuron, score] = r.ranking.scores[i];
        rows->push_back({neuron, QString("%1 %2").arg(neuron, 6).arg(score, 9, 'f', 4)});
    }
    return true;
}

void NeuronTools::decorate(const State& s) {
    const NeuronToolsState& t = s.neuronTools;
    const bool ofThis = t.tickedLayer == s.focus.mlpRow;
    m_ticks = ofThis ? t.ticked : QList<qint64>{};
    m_filling = true;
    for (int i = 0; i < m_list->count(); ++i) {
        QListWidgetItem* it = m_list->item(i);
        it->setFlags(it->flags() | Qt::ItemIsUserCheckable);
        it->setCheckState(ofThis && t.ticked.contains(it->data(Qt::UserRole).toLongLong()) ? Qt::Checked
                                                                                           : Qt::Unchecked);
    }
    m_filling = false;
}

}  // namespace vitscope::ui
