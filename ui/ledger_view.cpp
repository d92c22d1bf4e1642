#include "ledger_view.h"

#include "session.h"

#include "colormap.h"
#include "plot_legend.h"

#include <qcustomplot.h>

#include <QLabel>
#include <QMouseEvent>
#include <QToolTip>
#include <QVBoxLayout>

#include <cmath>
#include <map>
#include <utility>

namespace vitscope::ui {

LedgerView::LedgerView(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    m_summary = new QLabel(tr("Open an image and type a text"));
    m_summary->setWordWrap(true);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_plot = new QCustomPlot;
    m_plot->setObjectName("ledgerPlot");
    m_plot->setMinimumHeight(180);
    layout->addWidget(m_summary);
    layout->addWidget(m_plot, 1);
    m_plot->installEventFilter(this);
    m_plot->setMouseTracking(true);  // hover values without a button held
    connect(m_plot, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        const QString text = valueAt(e->position().toPoint());
        if (text.isEmpty()) QToolTip::hideText();
        else QToolTip::showText(e->globalPosition().toPoint(), text, m_plot);
    });
    applyFonts();
}

QString LedgerView::valueAt(const QPoint& pos) const {
    // The topmost segment first (stacked bars are added bottom to top).
    for (int i = m_plot->plottableCount() - 1; i >= 0; --i) {
        auto* bars = qobject_cast<QCPBars*>(m_plot->plottable(i));
        if (!bars) continue;
        QVariant details;
        if (bars->selectTest(pos, false, &details) < 0) continue;
        const QCPDataSelection hit = details.value<QCPDataSelection>();
        if (hit.isEmpty()) continue;
        const auto point = bars->data()->at(hit.dataRange().begin());
        const QString where = m_tickLabels.value(point->key, QString::number(point->key));
        const double share = m_ledger.total != 0 ? 100 * point->value / m_ledger.total : 0;
        return tr("%1, %2: %3 (%4% of %5)")
            .arg(where, bars->name())
            .arg(point->value, 0, 'g', 3)
            .arg(share, 0, 'f', 1)
            .arg(m_ledger.total, 0, 'g', 3);
    }
    return {};
}

bool LedgerView::eventFilter(QObject* watched, QEvent* event) {
    // After the plot's own resize handling (queued), so that its axis rect has the new width.
    if (watched == m_plot && event->type() == QEvent::Resize && !m_tickLabels.isEmpty())
        QMetaObject::invokeMethod(this, [this] { fitToWidth(); }, Qt::QueuedConnection);
    return QWidget::eventFilter(watched, event);
}

void LedgerView::fitToWidth() {
    if (m_tickLabels.isEmpty()) return;
    placeLegendBelow(m_plot, 6);
    m_plot->replot();  // lays out the axis rect at the legend's new height
    thinTickLabels(m_plot, m_tickLabels);
    m_plot->replot();
}

void LedgerView::setFontScale(double scale) {
    m_fontScale = scale;
    applyFonts();
    if (m_tickLabels.isEmpty()) m_plot->replot();
    else fitToWidth();
}

void LedgerView::applyFonts() {
    QFont f = font();
    f.setPointSizeF(f.pointSizeF() * m_fontScale);
    m_summary->setFont(f);
    for (QCPAxis* a : {m_plot->xAxis, m_plot->yAxis}) {
        a->setTickLabelFont(f);
        a->setLabelFont(f);
    }
    QFont legendFont = font();  // a little smaller than the ticks, as a paper's legend
    legendFont.setPointSizeF(font().pointSizeF() * 0.9 * m_fontScale);
    m_plot->legend->setFont(legendFont);
}

void LedgerView::clear() {
    m_ledger = {};
    m_tickLabels.clear();
    m_plot->clearPlottables();
    m_plot->replot(QCustomPlot::rpQueuedReplot);  // coalesced with the next ledger's, which usually follows at once
    m_summary->setText(tr("Open an image and type a text"));
}

QString LedgerView::summaryText() const {
    return tr("score of \"%1\": model %2 = sum of %3 terms %4, residual %5")
        .arg(QString::fromStdString(m_ledger.text))
        .arg(m_ledger.total, 0, 'g', 6)
        .arg(m_ledger.rows.size())
        .arg(m_ledger.sumOfTerms, 0, 'g', 6)
        .arg(m_ledger.residual, 0, 'g', 2);
}

namespace {
// A ledger's scores summed per key (0 = embedding + final biases, 1..L = layers), one series per
// stacked part.
struct LayerSums {
    std::vector<std::vector<double>> heads;  // [H][L + 1]
    std::vector<double> mlp, bias, other;    // [L + 1]
};

LayerSums sumByLayer(const Ledger& g, int heads, int layers) {
    LayerSums s;
    s.heads.assign(static_cast<std::size_t>(heads), std::vector<double>(static_cast<std::size_t>(layers + 1), 0.0));
    s.mlp.assign(static_cast<std::size_t>(layers + 1), 0.0);
    s.bias.assign(static_cast<std::size_t>(layers + 1), 0.0);
    s.other.assign(static_cast<std::size_t>(layers + 1), 0.0);
    for (const LedgerRow& r : g.rows) {
        const std::size_t key = r.layer >= 0 ? static_cast<std::size_t>(r.layer + 1) : 0;
        if (r.head >= 0) s.heads[static_cast<std::size_t>(r.head)][key] += r.score;
        else if (r.name.rfind("mlp.", 0) == 0) s.mlp[key] += r.score;
        else if (r.name.rfind("attn_bias", 0) == 0 && r.layer >= 0) s.bias[key] += r.score;
        else s.other[key] += r.score;
    }
    return s;
}

// One stacked bar per key, bottom to top: embedding and biases, the heads, attention bias, MLP.
void addStackedBars(QCustomPlot* plot, const LayerSums& s, int layers) {
    const int heads = static_cast<int>(s.heads.size());
    QVector<double> keys;
    for (int k = 0; k <= layers; ++k) keys << k;
    QCPBars* below = nullptr;
    auto addBars = [&](const QString& name, const std::vector<double>& v, const QColor& color) {
        auto* b = new QCPBars(plot->xAxis, plot->yAxis);
        b->setName(name);
        b->setData(keys, QVector<double>(v.begin(), v.end()));
        b->setBrush(color);
        b->setPen(QPen(color.darker(130)));
        b->setWidth(0.7);
        if (below) b->moveAbove(below);
        below = b;
    };
    addBars(LedgerView::tr("emb+bias"), s.other, QColor(150, 150, 150));
    for (int h = 0; h < heads; ++h)
        addBars(LedgerView::tr("h%1").arg(h), s.heads[static_cast<std::size_t>(h)], colormapColor(ColormapKind::Viridis, heads > 1 ? h / double(heads - 1) : 0.5));
    addBars(LedgerView::tr("attn bias"), s.bias, QColor(230, 160, 60));
    addBars(LedgerView::tr("MLP"), s.mlp, QColor(200, 70, 70));
}

// Stacked bars: the range must cover the running sums of positive and negative parts.
std::pair<double, double> stackedRange(const LayerSums& s, int layers) {
    double lo = 0, hi = 0;
    for (int k = 0; k <= layers; ++k) {
        const std::size_t i = static_cast<std::size_t>(k);
        double pos = std::max(0.0, s.other[i]) + std::max(0.0, s.mlp[i]) + std::max(0.0, s.bias[i]);
        double neg = std::min(0.0, s.other[i]) + std::min(0.0, s.mlp[i]) + std::min(0.0, s.bias[i]);
        for (const std::vector<double>& head : s.heads) {
            pos += std::max(0.0, head[i]);
            neg += std::min(0.0, head[i]);
        }
        hi = std::max(hi, pos);
        lo = std::min(lo, neg);
    }
    return {lo, hi};
}
}  // namespace

void LedgerView::setLedger(const Ledger& g, int heads) {
    m_ledger = g;
    m_summary->setText(summaryText());
    m_plot->clearPlottables();
    const int layers = static_cast<int>(g.layerTotals.size());
    // Keys: 0 = embedding + final biases, 1..L = layers.
    const LayerSums sums = sumByLayer(g, heads, layers);
    addStackedBars(m_plot, sums, layers);
    m_tickLabels.clear();
    m_tickLabels.insert(0, tr("emb"));
    for (int l = 0; l < layers; ++l) m_tickLabels.insert(l + 1, QString("L%1").arg(l));
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    ticker->setTicks(m_tickLabels);
    m_plot->xAxis->setTicker(ticker);
    m_plot->xAxis->setRange(-0.6, layers + 0.6);
    m_plot->yAxis->setLabel(tr("contribution to the score"));
    m_plot->legend->setVisible(heads <= 16);
    applyFonts();
    m_plot->rescaleAxes(true);
    const auto [lo, hi] = stackedRange(sums, layers);
    const double pad = 0.08 * std::max(1e-9, hi - lo);
    m_plot->yAxis->setRange(lo - pad, hi + pad);
    m_plot->xAxis->setRange(-0.6, layers + 0.6);
    fitToWidth();
}

void LedgerView::render(const State& s, QFlags<Aspect> changed) {
    if (!(changed & (Aspect::Ledger | Aspect::Model | Aspect::Message))) return;
    if (!s.ledger.rows.empty()) {
        if (changed & (Aspect::Ledger | Aspect::Model)) setLedger(s.ledger, s.model.heads);
        return;
    }
    // A new image's ledger is on its way (tens of ms): the chart waits for it instead of being
    // redrawn empty in between (a replot that competed with the map for the cores), and says so.
    // Another model, or a failure, clears it.
    if ((changed & Aspect::Model) || s.message.error || !s.hasImage()) clear();
    else if (!m_ledger.rows.empty()) m_summary->setText(tr("computing the ledger of %1...").arg(s.imagePath().section('/', -1)));
}

}  // namespace vitscope::ui
